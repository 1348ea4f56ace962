/*
 * auth.c: API keys and what an account may do on this node.  One cache for
 * every door that takes a key (the API, campaigns, Kannel's sendsms): a
 * key's SHA-256 looked up once (stmts_auth, or the sendsms lookup by
 * name), then kept for a minute (less for a replaced key within its grace);
 * and the node's pacing of an account: recipients a minute (auth_admit) and
 * requests a minute (auth_request_admit, once per request).
 * Owns the cache (cleansed when an account changes) and the two rate tables.
 * Never keeps a key itself, only its hash.
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "http.h"
#include "log.h"
#include "ratelimit.h"
#include "respond.h"
#include "stmts.h"
#include "util.h"

#define AUTH_CACHE_SIZE 256
#define AUTH_CACHE_TTL  60

struct auth_entry {
	unsigned char hash[KEYS_HASH_LEN];
	long long     account_id;
	int           operator;
	char          name[AUTH_NAME_MAX];   /* the account's name (sendsms's username) */
	int           rate_limit;           /* recipients per minute on this node, 0: none */
	int           request_limit;        /* requests per minute on this node, 0: none */
	time_t        expires;
};

struct auth {
	struct store     *store;
	struct auth_entry cache[AUTH_CACHE_SIZE];
	struct ratelimit *per_account;      /* recipients of accounts with a rate_limit */
	struct ratelimit *per_request;      /* requests of accounts with a request_limit */
};

static struct auth_entry *cache_slot(struct auth *auth, const unsigned char *hash)
{
	return &auth->cache[hash[0] % AUTH_CACHE_SIZE];
}

/* The account of a key hash seen within AUTH_CACHE_TTL (name NULL: any name), else 0. */
long long auth_cached(struct auth *auth, const unsigned char *hash, const char *name, int *operator)
{
	struct auth_entry *e = cache_slot(auth, hash);
	if (e->account_id > 0 && e->expires > time(NULL) && keys_equal(e->hash, hash, KEYS_HASH_LEN) &&
	    (!name || strcmp(e->name, name) == 0)) {
		*operator = e->operator;
		return e->account_id;
	}
	return 0;
}

/* Remembers a lookup's row (id, role, name) for its key hash. */
static void cache_store(struct auth *auth, const unsigned char *hash, PGresult *res)
{
	struct auth_entry *e = cache_slot(auth, hash);
	memcpy(e->hash, hash, KEYS_HASH_LEN);
	e->account_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	e->operator = strcmp(PQgetvalue(res, 0, 1), "operator") == 0;
	util_strlcpy(e->name, PQgetvalue(res, 0, 2), sizeof(e->name));
	e->rate_limit = PQnfields(res) >= 4 ? atoi(PQgetvalue(res, 0, 3)) : 0;
	e->request_limit = PQnfields(res) >= 6 ? atoi(PQgetvalue(res, 0, 5)) : 0;
	e->expires = time(NULL) + AUTH_CACHE_TTL;
	if (PQnfields(res) >= 5 && !PQgetisnull(res, 0, 4)) {   /* a replaced key: cached no longer than its grace */
		double left = strtod(PQgetvalue(res, 0, 4), NULL);
		if (left < AUTH_CACHE_TTL)
			e->expires = time(NULL) + (time_t)(left > 0 ? left : 0);
	}
}

double auth_admit(struct auth *auth, const unsigned char *hash, long long account_id, size_t recipients)
{
	const struct auth_entry *e = cache_slot(auth, hash);   /* the key just authenticated: its row */
	int limit = e->account_id == account_id ? e->rate_limit : 0;
	if (limit <= 0 || !auth->per_account)
		return 0;
	char key[24];
	snprintf(key, sizeof(key), "%lld", account_id);
	double wait = ratelimit_take_n(auth->per_account, key, (double)util_now_ms() / 1000, (double)recipients,
				       limit / 60.0, (double)limit);
	if (wait > 0)
		log_info("auth", "ev=rate_limited account=%lld recipients=%zu limit_per_minute=%d", account_id, recipients,
			 limit);
	return wait;
}

/*
 * Counts req once against its account's request rate on this node (the
 * key just authenticated, by hash).  0 go on, -1 answered 429.
 */
int auth_request_admit(struct auth *auth, struct http_request *req, const unsigned char *hash, long long account_id)
{
	if (req->admitted)
		return 0;
	req->admitted = 1;
	const struct auth_entry *e = cache_slot(auth, hash);
	int limit = e->account_id == account_id ? e->request_limit : 0;
	if (limit <= 0 || !auth->per_request)
		return 0;
	char key[24];
	snprintf(key, sizeof(key), "%lld", account_id);
	double wait = ratelimit_take_n(auth->per_request, key, (double)util_now_ms() / 1000, 1, limit / 60.0,
				       (double)limit);
	if (wait <= 0)
		return 0;
	char extra[48], msg[120];
	long secs = util_retry_after(wait);
	snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", secs);
	snprintf(msg, sizeof(msg), "the account's request rate (%d a minute) is reached: retry after %ld s", limit, secs);
	log_info("auth", "ev=request_rate_limited account=%lld limit_per_minute=%d", account_id, limit);
	respond_json(req, 429, extra, json_pack("{s:{s:s, s:s}}", "error", "code", "rate_limited", "message", msg));
	return -1;
}

void auth_accounts_changed(struct auth *auth, long long account_id)
{
	size_t n = 0;
	for (size_t i = 0; i < AUTH_CACHE_SIZE; i++)
		if (auth->cache[i].account_id == account_id) {
			OPENSSL_cleanse(&auth->cache[i], sizeof(auth->cache[i]));
			n++;
		}
	log_info("auth", "ev=account_changed account=%lld cached_keys_forgotten=%zu", account_id, n);
}

void auth_remember(struct auth *auth, const unsigned char *hash, PGresult *res)
{
	if (PQntuples(res) == 1 && PQnfields(res) >= 3)
		cache_store(auth, hash, res);
}

/* auth_key: a request's key, from the cache or by stmts_auth. */
struct auth_req {
	struct store_job     job;
	struct auth         *auth;
	struct http_request *req;
	auth_fn          fn;
	void                *arg;
	unsigned char        hash[KEYS_HASH_LEN];
	char                 hash_text[2 + 2 * KEYS_HASH_LEN + 1];
	const char          *params[1];
};

static void auth_key_done(struct store_job *job, enum store_error e, const char *err)
{
	struct auth_req *a = job->arg;
	long long id = 0;
	int op = 0;
	if (e == STORE_UNAVAILABLE) {
		respond_error(a->req, 503, "unavailable", NULL, "database unavailable, retry later");
	} else if (e != STORE_OK) {
		log_error("auth", "ev=store_error path=%s err=\"%s\"", a->req->path, err ? err : "");
		respond_error(a->req, 500, "internal", NULL, "internal error");
	} else if (PQntuples(job->res) != 1) {
		respond_error(a->req, 401, "unauthorized", NULL, "unknown API key");
	} else {
		id = strtoll(PQgetvalue(job->res, 0, 0), NULL, 10);
		op = strcmp(PQgetvalue(job->res, 0, 1), "operator") == 0;
		cache_store(a->auth, a->hash, job->res);
		if (auth_request_admit(a->auth, a->req, a->hash, id) < 0)
			id = 0, op = 0;   /* answered */
	}
	a->fn(a->arg, id, op);
	free(a);
}

void auth_key(struct auth *auth, struct http_request *req, const char *key, auth_fn fn, void *arg)
{
	if (!key) {
		const char *h = http_header(req, "Authorization");
		key = h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
		while (key && *key == ' ')
			key++;
	}
	size_t klen = key ? strlen(key) : 0;
	if (klen == 0 || klen > 256) {
		respond_error(req, 401, "unauthorized", NULL, key ? "unknown API key" : "missing 'Authorization: Bearer <key>'");
		fn(arg, 0, 0);
		return;
	}
	struct auth_req *a = calloc(1, sizeof(*a));
	if (!a) {
		respond_error(req, 503, "unavailable", NULL, "out of memory");
		fn(arg, 0, 0);
		return;
	}
	keys_hash(key, klen, a->hash);
	int op = 0;
	long long id = auth_cached(auth, a->hash, NULL, &op);
	if (id > 0) {
		if (auth_request_admit(auth, req, a->hash, id) < 0)
			id = 0, op = 0;   /* answered */
		free(a);
		fn(arg, id, op);
		return;
	}
	a->auth = auth;
	a->req = req;
	a->fn = fn;
	a->arg = arg;
	keys_hash_bytea(key, klen, a->hash_text, sizeof(a->hash_text));
	a->params[0] = a->hash_text;
	a->job = (struct store_job){ .stmt = &stmts_auth, .nparams = 1, .params = a->params,
				     .done = auth_key_done, .arg = a };
	store_submit(auth->store, &a->job);
}

struct auth *auth_new(struct store *store)
{
	struct auth *auth = calloc(1, sizeof(*auth));
	if (!auth)
		return NULL;
	auth->store = store;
	/* rates come with each call (the account's own); the table's matter only for slot reuse */
	if (!(auth->per_account = ratelimit_new(4096, 1, 1e9)) || !(auth->per_request = ratelimit_new(4096, 1, 1e9))) {
		ratelimit_free(auth->per_account);
		free(auth);
		return NULL;
	}
	return auth;
}

void auth_free(struct auth *auth)
{
	if (!auth)
		return;
	OPENSSL_cleanse(auth->cache, sizeof(auth->cache));
	ratelimit_free(auth->per_account);
	ratelimit_free(auth->per_request);
	free(auth);
}
