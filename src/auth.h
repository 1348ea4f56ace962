/*
 * auth.h: API keys and an account's pacing on this node (auth.c).
 */
#ifndef PUSHGATE_AUTH_H
#define PUSHGATE_AUTH_H

#include <stddef.h>
#include <libpq-fe.h>

#include "keys.h"
#include "store.h"

struct auth;
struct http_request;

#define AUTH_NAME_MAX 65   /* an account's name, with its NUL */

struct auth *auth_new(struct store *store);
void auth_free(struct auth *auth);

/*
 * A request's API key (key NULL: its "Authorization: Bearer"), from the
 * cache or the database.  fn gets account_id > 0 and the operator flag; or
 * 0 when the request was already answered (401, 429, 503, 500): then it only
 * cleans up.  fn may run before auth_key returns.  The request is counted
 * once against its account's requests a minute.
 */
typedef void (*auth_fn)(void *arg, long long account_id, int operator);
void auth_key(struct auth *auth, struct http_request *req, const char *key, auth_fn fn, void *arg);

/*
 * The cache itself, for a door with a lookup of its own (sendsms by name):
 * the account of a key hash (keys.h) seen within the last minute, with the
 * account's name (NULL: any name), else 0; auth_remember takes a row of
 * stmts_auth or stmts_kannel_auth (id, role, name[, limits]).
 */
long long auth_cached(struct auth *auth, const unsigned char *hash, const char *name, int *operator);
void auth_remember(struct auth *auth, const unsigned char *hash, PGresult *res);

/*
 * Counts req once against its account's request rate on this node (the
 * key just authenticated, by hash).  0 go on, -1 answered 429.
 */
int auth_request_admit(struct auth *auth, struct http_request *req, const unsigned char *hash, long long account_id);

/*
 * The account's rate limit (accounts.rate_limit: recipients per minute on
 * this node, bursts up to a minute's worth) for `recipients` more: 0 when
 * admitted (taken), else seconds to wait (>= 1e9: more than a minute's
 * worth at once).  hash: the key authenticated just before (its cached
 * row has the limit).
 */
double auth_admit(struct auth *auth, const unsigned char *hash, long long account_id, size_t recipients);

/*
 * An account was disabled, enabled or changed (NOTIFY pushgate_accounts,
 * from any node): its cached keys are forgotten, so the next request looks
 * it up.
 */
void auth_accounts_changed(struct auth *auth, long long account_id);

#endif
