/*
 * ctl_messages.h: pushgatectl messages, the operator's message search
 * (ctl_messages.c).
 */
#ifndef PUSHGATE_CTL_MESSAGES_H
#define PUSHGATE_CTL_MESSAGES_H

#include <libpq-fe.h>

/*
 * argv[0] is "messages".  With conn NULL only the arguments are checked.
 * Returns the exit status: 0 ok, 1 error, 2 usage error.
 */
int ctl_messages(PGconn *conn, int argc, char **argv);

#endif
