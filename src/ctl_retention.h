/*
 * ctl_retention.h: pushgatectl retention, the history's retention by range
 * (ctl_retention.c).
 */
#ifndef PUSHGATE_CTL_RETENTION_H
#define PUSHGATE_CTL_RETENTION_H

#include <libpq-fe.h>

#include "config.h"

/*
 * argv[0] is "retention".  With conn NULL only the arguments are checked.
 * cfg gives [retention]'s defaults.  Returns the exit status: 0 ok, 1 error,
 * 2 usage error.
 */
int ctl_retention(PGconn *conn, int argc, char **argv, const struct config *cfg);

#endif
