/*
 * privs.h: the configuration's and keys' file modes, and leaving root.
 */
#ifndef PUSHGATE_PRIVS_H
#define PUSHGATE_PRIVS_H

#include <stddef.h>

#include "config.h"

/*
 * Before the start: the ini not open to other users, the TLS keys to
 * nobody but their owner; as root, a [server] user that exists and is not
 * root (or allow_root); not root, no user other than the current one.
 * 0 / -1 with err.
 */
int privs_check_start(const struct config *cfg, const char *ini_path, char *err, size_t errlen);

/* After binding: as root with a [server] user, switches to it for good.  0 / -1 with err. */
int privs_drop(const struct config *cfg, char *err, size_t errlen);

#endif
