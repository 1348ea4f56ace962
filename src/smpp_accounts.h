/*
 * smpp_accounts.h: pushgatectl's smpp-account commands (SMPP server accounts,
 * sql/008): add and list (pushgatectl account disable/enable covers an
 * account's binds too).
 */
#ifndef PUSHGATE_SMPP_ACCOUNTS_H
#define PUSHGATE_SMPP_ACCOUNTS_H

#include <libpq-fe.h>

/* argv[0] is "smpp-account".  Returns the exit status: 0 ok, 1 error, 2 usage error. */
int smpp_accounts_ctl(PGconn *conn, int argc, char **argv);

#endif
