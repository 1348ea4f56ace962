/*
 * tenants.h: pushgatectl account quota|balance|senders|sender|rotate|show
 * (what an account may send, and its key).
 */
#ifndef PUSHGATE_TENANTS_H
#define PUSHGATE_TENANTS_H

#include <libpq-fe.h>

/* 1 when sub is one of this module's account subcommands. */
int tenants_handles(const char *sub);

/*
 * Runs "account SUB NAME ..." (argv[0] is SUB).  conn NULL: only checks the
 * arguments.  Exit status: 0, 1 failed, 2 usage.
 */
int tenants_ctl(PGconn *conn, int argc, char **argv);

#endif
