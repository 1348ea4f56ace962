/*
 * sdnotify.h: the service manager's notification socket ($NOTIFY_SOCKET).
 */
#ifndef PUSHGATE_SDNOTIFY_H
#define PUSHGATE_SDNOTIFY_H

#include <stddef.h>

/* Sends state ("READY=1", "STOPPING=1", ...): 1 sent, 0 no socket set, -1 not sent (errno). */
int sdnotify(const char *state);

#endif
