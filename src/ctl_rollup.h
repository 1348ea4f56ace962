/*
 * ctl_rollup.h: pushgatectl rollup, the report rollups by hand (ctl_rollup.c).
 */
#ifndef PUSHGATE_CTL_ROLLUP_H
#define PUSHGATE_CTL_ROLLUP_H

#include <libpq-fe.h>

/*
 * argv[0] is "rollup".  With conn NULL only the arguments are checked.
 * Returns the exit status: 0 ok, 1 error, 2 usage error.
 */
int ctl_rollup(PGconn *conn, int argc, char **argv);

#endif
