/*
 * ctl_routes.h: pushgatectl route, pausing and resuming SMS routes on every
 * node (ctl_routes.c).
 */
#ifndef PUSHGATE_CTL_ROUTES_H
#define PUSHGATE_CTL_ROUTES_H

#include <libpq-fe.h>

/*
 * argv[0] is "route".  With conn NULL only the arguments are checked.
 * Returns the exit status: 0 ok, 1 error, 2 usage error.
 */
int ctl_routes(PGconn *conn, int argc, char **argv);

#endif
