/*
 * server.c: the SMSC role: customers' ESMEs bind to pushgate.
 *
 * Owns the listeners (plain and TLS, with the TLS server context; bound
 * when built, accepting from smpp_server_open), one
 * connection per accepted socket around a session.c session in server mode
 * (the same FSM and codec as the carrier-facing engine), the per-account
 * runtime (binds, TPS bucket), the long messages being reassembled, the
 * submits handed to the intake queue (one message each, grouped there with
 * every other door's) and the deliver_sm PDUs of the outbox in flight.
 * A submit is answered only after the intake statement that stored it
 * committed; a deliver_sm counts as delivered only after the ESME answered
 * it.  Every byte from an ESME is untrusted: addresses, UDH, TLVs and text
 * are checked before they reach SQL.  A bind's password is checked on
 * authpool.c's threads (bounded queue); addresses and system_ids that
 * failed too often are locked out (ratelimit.c), and connections that have
 * not bound are capped.  Never blocks; never frees a session inside one of
 * its callbacks (closed connections are reaped by the tick).
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "authpool.h"
#include "intake.h"
#include "log.h"
#include "netio.h"
#include "passwd.h"
#include "pgarr.h"
#include "ratelimit.h"
#include "recipient.h"
#include "session.h"
#include "text.h"
#include "util.h"

#define TICK_INTERVAL   0.05      /* reaping, reassembly timeouts, outbox polling */
#define TEXT_MAX        65536     /* octets of one reassembled message */
#define OUTBOX_BATCH    2000
#define MAX_KEYWORDS    32

struct conn;

/* Where one submit_sm / data_sm (or one part of a long message) gets its answer. */
struct ans {
	struct conn *c;
	uint32_t     seq, cmd;
};

/* One logical message (a submit_sm, data_sm or reassembled long message) on its way to the intake queue. */
struct submit {
	struct intake_req   req;         /* req.arg is the submit */
	struct smpp_server *srv;
	struct intake_opts  opts;
	long long      smpp_account_id, account_id;
	char           sender[21], to[21];
	uint8_t        registered;
	char           send_at[40];  /* schedule_delivery_time as ISO 8601 UTC, "" = now */
	double         validity;     /* seconds from now, < 0 = the default */
	char          *text;        /* UTF-8, malloc'd */
	unsigned       n_ans;
	struct ans     ans[];
};

/* A long message waiting for its parts (keyed by account, addresses, reference). */
struct part_slot {
	uint8_t  *data;
	size_t    len;
	struct ans ans;
	int       have;
};
struct reasm {
	struct reasm    *next;
	long long        smpp_account_id, account_id;
	char             sender[21], to[21];
	uint16_t         ref;
	uint8_t          total, got, coding, registered;
	double           deadline;
	char             send_at[40];
	double           validity;
	struct part_slot part[];
};

/* Per SMPP account: what its binds share. */
struct acct {
	struct acct *next;
	long long    id, account_id;
	unsigned     binds, rx_binds;
	unsigned     max_binds, window;
	double       tps, tokens, last_refill;
	unsigned     outbox_in_flight;   /* deliver_sm sent, not answered */
	unsigned     rr;
};

struct conn {
	struct conn         *next;
	struct smpp_server  *srv;
	struct smpp_session *s;
	unsigned             id;
	char                 name[32];
	char                 peer[64];      /* address only, for allowed_sources */
	int                  tls;
	int                  closed;        /* the session went down: reap it */
	unsigned             refs;          /* answers still owed through this connection */
	struct acct         *acct;          /* once bound */
	int                  can_tx, can_rx;
	unsigned             in_flight;     /* submits not yet answered */
	unsigned             ob_in_flight;  /* deliver_sm sent, not yet answered (at most the account's window) */
	/* bind check */
	char                 system_id[16], password[9];
	struct store_job     auth_job;
	const char          *auth_params[2];
	int                  auth_in_flight;    /* the lookup, then the password check (authpool) */
	/* the account's row while its password is checked */
	int                  auth_known, auth_source_ok, auth_disabled;
	long long            auth_smpp_account, auth_account;
	unsigned             auth_binds, auth_window;
	double               auth_tps;
	ev_timer             delay;         /* a refused bind waits before its answer */
	uint32_t             refuse_status;
};

/* query_sm / cancel_sm: one statement, answered after it. */
struct qjob {
	struct store_job    job;
	struct smpp_server *srv;
	struct ans          ans;
	char                message_id[65];
	const char         *params[2];
	char                p_id[24], p_acct[24];
};

/* An outbox statement (lease, ack, release) with its array literals. */
struct obatch {
	struct store_job job;
	int              in_flight;
	const char      *params[4];
	char            *lit[2];
	char             p_lease[32];
};

struct mojob {
	struct store_job    job;
	struct smpp_server *srv;
	void              (*done)(void *, uint32_t);
	void               *ctx;
	const char         *params[6];
	char                p_dcs[8], src[21], dst[21];
	char               *route, *text, *keywords;
};

struct smpp_server {
	struct ev_loop      *loop;
	struct store        *store;
	const struct config *cfg;
	char                 node[96];
	int                  lfd, tls_lfd, port, tls_port;   /* bound by smpp_server_new */
	int                  open;                            /* listening: smpp_server_open */
	ev_io                lio, tlio;
	SSL_CTX             *tls;
	ev_timer             tick;
	ev_prepare           pump;          /* end of the loop turn: acks out, the next outbox lease */
	int                  stopping;
	unsigned             next_id;
	size_t               n_conns;
	struct conn         *conns;
	struct acct         *accts;
	struct reasm        *reasm;
	struct intake_queue *intake;       /* where submits are stored (shared with the other doors) */
	size_t               jobs_in_flight;
	/* outbox */
	struct obatch        lease, ack, release;
	long long           *acked, *released;
	size_t               n_acked, cap_acked, n_released, cap_released;
	double               next_lease;    /* no lease before (the last found nothing) */
	char                 stand_in_hash[SMPP_PASSWD_HASH_MAX];   /* checked for unknown system_ids */
	struct authpool     *auth_pool;     /* PBKDF2 off the loop */
	struct ratelimit    *fail_ip;       /* failed binds per client address: a lockout when spent */
	struct ratelimit    *fail_sys;      /* and per system_id */
	/* receipt text: which states say DELIVRD */
	char                 delivered[128];
	char                 keywords[MAX_KEYWORDS][64];
	size_t               n_keywords;
	struct {
		uint64_t accepted, binds, bind_refused, submits, submit_refused, throttled, receipts_sent,
			 receipts_acked, mo_received, mo_forwarded, unbound_refused, locked_out, auth_busy;
	} c;
};

static void conn_answer(struct ans *a, uint32_t status, const char *message_id);
static const char *stat_of(struct smpp_server *srv, const char *state, uint8_t *ms);

/* The recipient states a receipt reports (sql/008 smpp_outbox_fill). */
static int is_final(const char *state)
{
	static const char *const finals[] = { "PUSH_DELIVERED", "SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED",
					      "SMS_UNKNOWN", "DROPPED", "CANCELED" };
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++)
		if (strcmp(state, finals[i]) == 0)
			return 1;
	return 0;
}

/* --- statements ------------------------------------------------------------------ */

static const struct store_stmt stmt_auth = {
	"smpps_auth",
	"SELECT s.id, s.account_id, s.password_hash, s.max_binds, s.window_size, s.tps,"
	" (s.allowed_sources IS NULL OR $2::inet <<= ANY(s.allowed_sources)), (s.disabled OR a.disabled)"
	" FROM smpp_accounts s JOIN accounts a ON a.id = s.account_id WHERE s.system_id = $1",
	2, 0,
};

/* $1 recipient id, $2 account id.  Row: state, final date (SMPP absolute time), error code. */
static const struct store_stmt stmt_query = {
	"smpps_query",
	"SELECT state, coalesce(to_char(final_at AT TIME ZONE 'UTC', 'YYMMDDHH24MISS') || '000+', ''),"
	" coalesce(error_code, 0) FROM recipients WHERE id = $1 AND account_id = $2",
	2, 0,
};

/*
 * Outbox lease: $1 node, $2 bigint[] SMPP account ids, $3 int[] rows each
 * may take now, $4 lease seconds.  Oldest first per account.
 */
static const struct store_stmt stmt_outbox_lease = {
	"smpps_outbox_lease",
	"WITH c AS (SELECT o.id FROM unnest($2::bigint[], $3::int[]) AS a(acct, lim)"
	"  CROSS JOIN LATERAL (SELECT o.id FROM smpp_outbox o WHERE o.smpp_account_id = a.acct"
	"   AND o.delivered_at IS NULL AND (o.lease_until IS NULL OR o.lease_until < now())"
	"   ORDER BY o.id LIMIT a.lim FOR UPDATE SKIP LOCKED) o)"
	" UPDATE smpp_outbox o SET lease_owner = $1, lease_until = now() + make_interval(secs => $4::float8),"
	"  attempts = o.attempts + 1"
	" FROM c WHERE o.id = c.id"
	" RETURNING o.id, o.smpp_account_id, o.kind, coalesce(o.state, ''), coalesce(o.registered, 1),"
	"  coalesce(o.error_code, 0), o.source_addr, o.dest_addr, coalesce(o.body, ''),"
	"  coalesce(to_char(o.submitted_at AT TIME ZONE 'UTC', 'YYMMDDHH24MI'), ''),"
	"  to_char(o.done_at AT TIME ZONE 'UTC', 'YYMMDDHH24MI'), coalesce(o.recipient_id, 0)",
	4, 0,
};

/*
 * Answered rows: $1 bigint[] ids.  Driven from the array by primary key;
 * no predicate on delivered_at in WHERE, so the planner never walks the
 * partial index of every undelivered row instead.
 */
static const struct store_stmt stmt_outbox_ack = {
	"smpps_outbox_ack",
	"UPDATE smpp_outbox o SET delivered_at = coalesce(o.delivered_at, now()), lease_owner = NULL, lease_until = NULL"
	" FROM unnest($1::bigint[]) AS x(id) WHERE o.id = x.id",
	1, 0,
};

/* A restarted node's own outbox leases ($1 its name; node.c runs it): free now.  Row: how many. */
const struct store_stmt smpp_server_stmt_take_back = {
	"smpps_take_back",
	"WITH t AS (UPDATE smpp_outbox SET lease_owner = NULL, lease_until = NULL"
	"  WHERE lease_owner = $1 AND delivered_at IS NULL RETURNING 1)"
	" SELECT count(*) FROM t",
	1, 0,
};

/* Rows sent on a link that went down (or not sent): $1 bigint[] ids, $2 node.  Free for the next lease. */
static const struct store_stmt stmt_outbox_release = {
	"smpps_outbox_release",
	"UPDATE smpp_outbox o SET lease_until = CASE WHEN o.lease_owner = $2 AND o.delivered_at IS NULL"
	"  THEN NULL ELSE o.lease_until END"
	" FROM unnest($1::bigint[]) AS x(id) WHERE o.id = x.id",
	2, 0,
};

/*
 * A carrier's MO: $1 route, $2 source, $3 destination, $4 text, $5
 * data_coding, $6 text[] opt-out keywords (upper case).  Stored, owner found
 * by destination, keyword -> opt_outs (+ log) for that handset and
 * destination, queued in the owner's outbox (deliver_sm), and, when the
 * owner's account has a webhook URL, in the webhook outbox too (kind 'mo',
 * event_id 0).  Row: mo id, owner SMPP account, opt-out, rows written.
 */
static const struct store_stmt stmt_mo = {
	"smpps_mo",
	"WITH o AS (SELECT id, account_id FROM smpp_accounts WHERE $3::text = ANY(mo_addresses) AND NOT disabled"
	"  ORDER BY id LIMIT 1),"
	" k AS (SELECT upper(btrim($4::text, E' \\t\\r\\n.!')) = ANY($6::text[]) AS stop),"
	" m AS (INSERT INTO mo_messages (route, source_addr, dest_addr, body, data_coding, smpp_account_id,"
	"  account_id, opt_out)"
	"  SELECT $1, $2, $3, $4, $5::smallint, (SELECT id FROM o), (SELECT account_id FROM o), k.stop FROM k"
	"  RETURNING id, smpp_account_id, account_id, opt_out),"
	" x AS (INSERT INTO opt_outs (msisdn, sender, source) SELECT $2, $3, 'sms' FROM m WHERE m.opt_out"
	"  ON CONFLICT (msisdn, sender) DO NOTHING RETURNING 1),"
	" l AS (INSERT INTO opt_out_log (msisdn, sender, action, source) SELECT $2, $3, 'reject', 'sms' FROM m"
	"  WHERE m.opt_out RETURNING 1),"
	" q AS (INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, source_addr, dest_addr, body)"
	"  SELECT m.smpp_account_id, m.account_id, 'mo', $2, $3, $4 FROM m WHERE m.smpp_account_id IS NOT NULL"
	"  RETURNING 1),"
	" w AS (INSERT INTO webhook_outbox (account_id, url, event_id, payload)"
	"  SELECT m.account_id, a.webhook_url, 0, jsonb_build_object('kind', 'mo', 'mo_id', m.id, 'from', $2::text,"
	"   'to', $3::text, 'text', $4::text, 'opt_out', m.opt_out, 'at', now())"
	"  FROM m JOIN accounts a ON a.id = m.account_id WHERE a.webhook_url IS NOT NULL RETURNING 1)"
	" SELECT m.id, coalesce(m.smpp_account_id, 0), m.opt_out, (SELECT count(*) FROM x) + (SELECT count(*) FROM l)"
	"  + (SELECT count(*) FROM q) + (SELECT count(*) FROM w) FROM m",
	6, 0,
};

/* --- helpers ------------------------------------------------------------------------- */

/* data_coding -> a coding text_decode knows; -1 when pushgate can't carry it. */
static int coding_of(uint8_t dcs)
{
	switch (dcs) {
	case 0x00: return TEXT_GSM7;
	case 0x01: return TEXT_LATIN1;   /* IA5: ASCII, a subset */
	case 0x03: return TEXT_LATIN1;
	case 0x08: return TEXT_UCS2;
	default:
		if ((dcs & 0xF0) == 0xF0)    /* message class, GSM 7-bit or 8-bit data */
			return (dcs & 0x04) ? -1 : TEXT_GSM7;
		return -1;
	}
}

/*
 * SMPP 3.4 time (7.1.1): "YYMMDDhhmmsstnnp", absolute (p '+'/'-': nn
 * quarter hours from UTC) or relative (p 'R').  Unix time in *out; 1 when
 * given, 0 when empty, -1 when malformed.
 */
static int smpp_time(const char *s, time_t now, time_t *out)
{
	if (!*s)
		return 0;
	int v[7];
	if (strlen(s) != 16)
		return -1;
	for (int i = 0; i < 15; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	for (int i = 0; i < 6; i++)
		v[i] = (s[2 * i] - '0') * 10 + (s[2 * i + 1] - '0');
	v[6] = (s[13] - '0') * 10 + (s[14] - '0');   /* nn */
	if (s[15] == 'R') {
		*out = now + (time_t)v[0] * 365 * 86400 + (time_t)v[1] * 30 * 86400 + (time_t)v[2] * 86400 +
		       (time_t)v[3] * 3600 + (time_t)v[4] * 60 + v[5];
		return 1;
	}
	if ((s[15] != '+' && s[15] != '-') || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 59 || v[6] > 48)
		return -1;
	struct tm tm = { .tm_year = 100 + v[0], .tm_mon = v[1] - 1, .tm_mday = v[2], .tm_hour = v[3],
			 .tm_min = v[4], .tm_sec = v[5] };
	time_t t = timegm(&tm);
	long off = (long)v[6] * 15 * 60;
	*out = s[15] == '+' ? t - off : t + off;
	return 1;
}

/* "1a2f" -> 6703; -1 when not 1-16 hex digits. */
static long long parse_hex_id(const char *s)
{
	long long v = 0;
	size_t n = 0;
	for (; *s; s++, n++) {
		int d = (*s >= '0' && *s <= '9') ? *s - '0' : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
			: (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10 : -1;
		if (d < 0 || n >= 15)
			return -1;
		v = v * 16 + d;
	}
	return n ? v : -1;
}

/* --- connections ---------------------------------------------------------------------- */

static void conn_unref(struct conn *c)
{
	if (c->refs > 0)
		c->refs--;
}

static void acct_release(struct smpp_server *srv, struct conn *c)
{
	struct acct *a = c->acct;
	if (!a)
		return;
	c->acct = NULL;
	a->binds--;
	if (c->can_rx)
		a->rx_binds--;
	(void)srv;
}

static void on_down(void *arg)
{
	struct conn *c = arg;
	if (c->closed)
		return;
	c->closed = 1;
	log_info("smpps", "conn=%s ev=closed bound=%s", c->name, c->acct ? "yes" : "no");
	acct_release(c->srv, c);
}

/* Frees closed connections nothing refers to any more. */
static void reap(struct smpp_server *srv)
{
	struct conn **pp = &srv->conns;
	while (*pp) {
		struct conn *c = *pp;
		if (!c->closed || c->refs > 0 || c->auth_in_flight) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		ev_timer_stop(srv->loop, &c->delay);
		smpp_session_free(c->s);
		OPENSSL_cleanse(c->password, sizeof(c->password));
		free(c);
		srv->n_conns--;
	}
}

static struct acct *acct_get(struct smpp_server *srv, long long id)
{
	for (struct acct *a = srv->accts; a; a = a->next)
		if (a->id == id)
			return a;
	struct acct *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->id = id;
	a->last_refill = ev_now(srv->loop);
	a->next = srv->accts;
	srv->accts = a;
	return a;
}

/* --- binds ---------------------------------------------------------------------------- */

static const char *bind_mode(uint32_t cmd)
{
	return cmd == SMPP_BIND_TRANSMITTER ? "tx" : cmd == SMPP_BIND_RECEIVER ? "rx" : "trx";
}

static void refuse_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct conn *c = w->data;
	if (!c->closed)
		smpp_session_answer_bind(c->s, c->refuse_status, "");
}

static void refuse(struct conn *c, uint32_t status, const char *why, double delay)
{
	char sys[80];
	util_escape(c->system_id, strlen(c->system_id), sys, sizeof(sys));
	c->srv->c.bind_refused++;
	log_warn("smpps", "conn=%s ev=bind_refused system_id=\"%s\" peer=%s status=0x%02x why=\"%s\"", c->name, sys,
		 c->peer, status, why);
	OPENSSL_cleanse(c->password, sizeof(c->password));
	c->refuse_status = status;
	if (delay <= 0) {
		smpp_session_answer_bind(c->s, status, "");
		return;
	}
	ev_timer_set(&c->delay, delay, 0.);
	ev_timer_start(c->srv->loop, &c->delay);
}

static void bind_accept(struct conn *c, long long smpp_account_id, long long account_id, unsigned max_binds,
			unsigned window, double tps);

static double mono_now(void)
{
	return (double)util_now_ms() / 1000;
}

/* A credential failure: refused after the delay, and counted against the address and the system_id. */
static void refuse_credentials(struct conn *c, const char *why)
{
	struct smpp_server *srv = c->srv;
	double now = mono_now();
	ratelimit_take(srv->fail_ip, c->peer, now);
	ratelimit_take(srv->fail_sys, c->system_id, now);
	refuse(c, SMPP_ESME_RBINDFAIL, why, srv->cfg->smpps_auth_delay);
}

/* The password checked (off the loop): now every part of the answer is known. */
static void password_checked(void *arg, int ok)
{
	struct conn *c = arg;
	c->auth_in_flight = 0;
	if (c->closed)
		return;
	if (!c->auth_known) {
		refuse_credentials(c, "unknown system_id");
		return;
	}
	if (!c->auth_source_ok) {
		refuse_credentials(c, "client address not allowed");
		return;
	}
	if (c->auth_disabled) {
		refuse_credentials(c, "account disabled");
		return;
	}
	if (ok != 1) {
		refuse_credentials(c, ok < 0 ? "stored hash unreadable" : "wrong password");
		return;
	}
	bind_accept(c, c->auth_smpp_account, c->auth_account, c->auth_binds, c->auth_window, c->auth_tps);
}

static void auth_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct conn *c = job->arg;
	struct smpp_server *srv = c->srv;
	c->auth_in_flight = 0;
	if (c->closed)
		return;
	if (err != STORE_OK) {
		log_error("smpps", "conn=%s ev=auth_failed err=\"%s\"", c->name, msg ? msg : "");
		refuse(c, SMPP_ESME_RSYSERR, "database unavailable", 0);
		return;
	}
	/*
	 * Every credential failure answers the same status after the same delay,
	 * and costs the same password check (against a stand-in hash when the
	 * system_id is unknown), run off the loop (authpool.c): the answer tells
	 * nothing of which part was wrong (only the log does), so it can't be
	 * used to find system_ids, or to try passwords from an address the
	 * account does not allow.
	 */
	c->auth_known = PQntuples(job->res) == 1;
	const char *stored = srv->stand_in_hash;
	if (c->auth_known) {
		c->auth_smpp_account = strtoll(PQgetvalue(job->res, 0, 0), NULL, 10);
		c->auth_account = strtoll(PQgetvalue(job->res, 0, 1), NULL, 10);
		c->auth_binds = (unsigned)strtoul(PQgetvalue(job->res, 0, 3), NULL, 10);
		c->auth_window = (unsigned)strtoul(PQgetvalue(job->res, 0, 4), NULL, 10);
		c->auth_tps = strtod(PQgetvalue(job->res, 0, 5), NULL);
		c->auth_source_ok = strcmp(PQgetvalue(job->res, 0, 6), "t") == 0;
		c->auth_disabled = strcmp(PQgetvalue(job->res, 0, 7), "t") == 0;
		stored = PQgetvalue(job->res, 0, 2);
	}
	int queued = authpool_verify(srv->auth_pool, c->password, stored, password_checked, c);
	OPENSSL_cleanse(c->password, sizeof(c->password));
	if (queued < 0) {
		srv->c.auth_busy++;
		refuse(c, SMPP_ESME_RSYSERR, "password checks busy", 0);   /* try again: not a credential answer */
		return;
	}
	c->auth_in_flight = 1;
}

/* The credentials are good: the account's limits, then bound (or refused for too many binds). */
static void bind_accept(struct conn *c, long long smpp_account_id, long long account_id, unsigned max_binds,
			unsigned window, double tps)
{
	struct smpp_server *srv = c->srv;
	struct acct *a = acct_get(srv, smpp_account_id);
	if (!a) {
		refuse(c, SMPP_ESME_RSYSERR, "out of memory", 0);
		return;
	}
	a->account_id = account_id;
	a->max_binds = max_binds;
	a->window = window;
	if (tps != a->tps) {
		a->tps = tps;
		a->tokens = tps > 0 ? (tps < 1 ? 1 : tps) : 0;
	}
	if (a->binds >= a->max_binds) {
		refuse(c, SMPP_ESME_RBINDFAIL, "too many binds for this account", 0);
		return;
	}
	uint32_t cmd = smpp_session_bind_command(c->s);
	c->acct = a;
	c->can_tx = cmd != SMPP_BIND_RECEIVER;
	c->can_rx = cmd != SMPP_BIND_TRANSMITTER;
	a->binds++;
	if (c->can_rx)
		a->rx_binds++;
	srv->c.binds++;
	char sys[80];
	util_escape(c->system_id, strlen(c->system_id), sys, sizeof(sys));
	log_info("smpps", "conn=%s ev=bound system_id=\"%s\" mode=%s peer=%s tls=%s window=%u tps=%g binds=%u/%u",
		 c->name, sys, bind_mode(cmd), c->peer, c->tls ? "yes" : "no", a->window, a->tps, a->binds,
		 a->max_binds);
	smpp_session_answer_bind(c->s, 0, "pushgate");
	if (c->can_rx)
		srv->next_lease = 0;   /* receipts waiting for this account go out now */
}

static void on_bind(void *arg, const struct smpp_pdu *bind)
{
	struct conn *c = arg;
	struct smpp_server *srv = c->srv;
	util_strlcpy(c->system_id, bind->system_id, sizeof(c->system_id));
	util_strlcpy(c->password, bind->password, sizeof(c->password));
	if (srv->stopping) {
		refuse(c, SMPP_ESME_RSYSERR, "shutting down", 0);
		return;
	}
	if (!c->system_id[0]) {
		refuse(c, SMPP_ESME_RBINDFAIL, "empty system_id", srv->cfg->smpps_auth_delay);
		return;
	}
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	/* fuzzing: no database; any credentials bind to account 1 so the bound states are reached */
	OPENSSL_cleanse(c->password, sizeof(c->password));
	bind_accept(c, 1, 1, 1000, 100, 0);
	return;
#endif
	/* an address or a system_id that failed too often is refused at once: no lookup, no PBKDF2 */
	double now = mono_now();
	if (ratelimit_peek(srv->fail_ip, c->peer, now) > 0) {
		srv->c.locked_out++;
		refuse(c, SMPP_ESME_RBINDFAIL, "address locked out after failed binds", srv->cfg->smpps_auth_delay);
		return;
	}
	if (ratelimit_peek(srv->fail_sys, c->system_id, now) > 0) {
		srv->c.locked_out++;
		refuse(c, SMPP_ESME_RBINDFAIL, "system_id locked out after failed binds", srv->cfg->smpps_auth_delay);
		return;
	}
	c->auth_params[0] = c->system_id;
	c->auth_params[1] = c->peer;
	c->auth_in_flight = 1;
	c->auth_job = (struct store_job){ .stmt = &stmt_auth, .nparams = 2, .params = c->auth_params,
					  .done = auth_done, .arg = c };
	store_submit(srv->store, &c->auth_job);
}

/* --- answers ---------------------------------------------------------------------------- */

static void conn_answer(struct ans *a, uint32_t status, const char *message_id)
{
	struct conn *c = a->c;
	if (!c)
		return;
	a->c = NULL;
	if (c->in_flight > 0)
		c->in_flight--;
	conn_unref(c);
	if (c->closed)
		return;
	struct smpp_pdu resp;
	struct smpp_pdu req;
	memset(&req, 0, sizeof(req));
	req.hdr.command_id = a->cmd;
	req.hdr.sequence_number = a->seq;
	smpp_pdu_resp(&resp, &req, status);
	if (status == 0 && message_id)
		util_strlcpy(resp.message_id, message_id, sizeof(resp.message_id));
	smpp_session_send(c->s, &resp);
}

static void answer_now(struct conn *c, const struct smpp_pdu *req, uint32_t status)
{
	struct smpp_pdu resp;
	smpp_pdu_resp(&resp, req, status);
	smpp_session_send(c->s, &resp);
}

static void submit_free(struct submit *sub)
{
	free(sub->text);
	free(sub);
}

/* --- intake ------------------------------------------------------------------------------ */

/* The intake committed this submit (or could not): the ESME gets its answer(s) now. */
static void submit_done(struct intake_req *r, enum store_error err, const char *msg, PGresult *res, int first,
			int rows)
{
	struct submit *sub = r->arg;
	struct smpp_server *srv = sub->srv;
	srv->jobs_in_flight--;
	if (err != STORE_OK || rows != 1) {
		if (err != STORE_UNAVAILABLE)
			log_error("smpps", "ev=intake_failed to=%s rows=%d err=\"%s\"", sub->to, rows,
				  err != STORE_OK ? (msg ? msg : "") : "row count");
		for (unsigned k = 0; k < sub->n_ans; k++)
			conn_answer(&sub->ans[k], SMPP_ESME_RSYSERR, NULL);
		submit_free(sub);
		return;
	}
	int wait;
	enum intake_refusal why = intake_refusal_of(res, first, rows, &wait);
	if (why != INTAKE_ADMITTED) {
		/* the account's limits: a sender not its own is 0x0A, its rate 0x58 (try again), a used-up quota or
		 * balance 0x45 (an ESME's submit names no URL) */
		uint32_t status = why == INTAKE_REFUSED_SENDER ? SMPP_ESME_RINVSRCADR
				  : why == INTAKE_REFUSED_RATE ? SMPP_ESME_RTHROTTLED : SMPP_ESME_RSUBMITFAIL;
		log_info("smpps", "ev=refused account=%lld why=%s to=%s", sub->account_id, intake_refusal_name(why), sub->to);
		srv->c.submit_refused++;
		for (unsigned k = 0; k < sub->n_ans; k++)
			conn_answer(&sub->ans[k], status, NULL);
		submit_free(sub);
		return;
	}
	char id[24];
	snprintf(id, sizeof(id), "%llx", strtoll(PQgetvalue(res, first, 1), NULL, 10));
	const char *state = PQgetvalue(res, first, 3);
	for (unsigned k = 0; k < sub->n_ans; k++)
		conn_answer(&sub->ans[k], 0, id);
	srv->c.submits++;
	log_debug("smpps", "ev=accepted recipient=%s to=%s state=%s", id, sub->to, state);
	submit_free(sub);
}

/* One message per submit; the intake queue groups the submits of every ESME (and every other door). */
static void enqueue(struct smpp_server *srv, struct submit *sub)
{
	sub->srv = srv;
	intake_opts_default(&sub->opts);
	sub->opts.source = "smpp";
	util_strlcpy(sub->opts.send_at, sub->send_at, sizeof(sub->opts.send_at));
	sub->opts.validity = sub->validity;
	sub->opts.smpp_account_id = sub->smpp_account_id;
	sub->opts.smpp_registered = sub->registered;
	sub->req = (struct intake_req){
		.msg = { sub->account_id, sub->sender, sub->text, 1, (const char (*)[21])&sub->to, NULL, &sub->opts },
		.done = submit_done, .arg = sub,
	};
	srv->jobs_in_flight++;
	intake_submit(srv->intake, &sub->req);
}

/* Decodes octets to a malloc'd UTF-8 string; NULL when they are not a text pushgate can carry. */
static char *decode_text(const uint8_t *oct, size_t len, int coding)
{
	size_t cap = len * 3 + 1;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	long n = text_decode(oct, len, (enum text_coding)coding, out, cap - 1);
	if (n < 0 || !util_utf8_text(out, (size_t)n, 0)) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	return out;
}

/* schedule_delivery_time and validity_period of a submit; 0, or the status to refuse it with. */
static uint32_t submit_times(const struct smpp_pdu *req, time_t now, char send_at[40], double *validity)
{
	time_t t;
	send_at[0] = '\0';
	*validity = -1;
	int r = smpp_time(req->schedule_delivery_time, now, &t);
	if (r < 0)
		return 0x61;   /* ESME_RINVSCHED */
	if (r > 0 && t > now) {
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(send_at, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	r = smpp_time(req->validity_period, now, &t);
	if (r < 0 || (r > 0 && t <= now))
		return 0x62;   /* ESME_RINVEXPIRY */
	if (r > 0)
		*validity = (double)(t - now);
	return 0;
}

static struct submit *submit_new(struct conn *c, const struct smpp_pdu *req, char *text, unsigned n_ans)
{
	struct submit *sub = calloc(1, sizeof(*sub) + n_ans * sizeof(struct ans));
	if (!sub)
		return NULL;
	sub->smpp_account_id = c->acct->id;
	sub->account_id = c->acct->account_id;
	util_strlcpy(sub->sender, req->source_addr, sizeof(sub->sender));
	util_msisdn(req->destination_addr, sub->to);
	sub->registered = req->registered_delivery & 0x03;
	sub->text = text;
	sub->n_ans = n_ans;
	return sub;
}

/* --- long messages ----------------------------------------------------------------------------- */

static void reasm_free(struct reasm *r)
{
	for (unsigned i = 0; i < r->total; i++)
		free(r->part[i].data);
	free(r);
}

static void reasm_fail(struct reasm *r, uint32_t status)
{
	for (unsigned i = 0; i < r->total; i++)
		if (r->part[i].have)
			conn_answer(&r->part[i].ans, status, NULL);
}

static void reasm_expire(struct smpp_server *srv, int all)
{
	double now = ev_now(srv->loop);
	struct reasm **pp = &srv->reasm;
	while (*pp) {
		struct reasm *r = *pp;
		if (!all && r->deadline > now) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		log_warn("smpps", "ev=parts_missing to=%s ref=%u got=%u total=%u", r->to, r->ref, r->got, r->total);
		reasm_fail(r, SMPP_ESME_RSUBMITFAIL);
		reasm_free(r);
	}
}

/*
 * One part of a long message: kept until all are there, then the whole
 * text goes to the intake as one submit answered on every part's PDU.
 * Returns 0 when taken (answered later), else the status to answer now.
 */
static uint32_t reasm_add(struct conn *c, const struct smpp_pdu *req, int coding, uint16_t ref, uint8_t total,
			  uint8_t seq, const uint8_t *oct, size_t len, const char *send_at, double validity)
{
	struct smpp_server *srv = c->srv;
	char to[21];
	if (total < 1 || seq < 1 || seq > total)
		return SMPP_ESME_RINVOPTPARSTREAM;
	util_msisdn(req->destination_addr, to);
	struct reasm *r;
	for (r = srv->reasm; r; r = r->next)
		if (r->smpp_account_id == c->acct->id && r->ref == ref && r->total == total && strcmp(r->to, to) == 0 &&
		    strcmp(r->sender, req->source_addr) == 0)
			break;
	if (!r) {
		r = calloc(1, sizeof(*r) + total * sizeof(struct part_slot));
		if (!r)
			return SMPP_ESME_RMSGQFUL;
		r->smpp_account_id = c->acct->id;
		r->account_id = c->acct->account_id;
		util_strlcpy(r->sender, req->source_addr, sizeof(r->sender));
		memcpy(r->to, to, sizeof(to));
		r->ref = ref;
		r->total = total;
		r->coding = (uint8_t)coding;
		r->registered = req->registered_delivery & 0x03;
		util_strlcpy(r->send_at, send_at, sizeof(r->send_at));
		r->validity = validity;
		r->deadline = ev_now(srv->loop) + srv->cfg->smpps_reassembly_timeout;
		r->next = srv->reasm;
		srv->reasm = r;
	}
	struct part_slot *p = &r->part[seq - 1];
	if (p->have || r->coding != (uint8_t)coding)
		return SMPP_ESME_RSUBMITFAIL;   /* a duplicate part, or one of another coding */
	p->data = malloc(len ? len : 1);
	if (!p->data)
		return SMPP_ESME_RMSGQFUL;
	memcpy(p->data, oct, len);
	p->len = len;
	p->have = 1;
	p->ans = (struct ans){ c, req->hdr.sequence_number, req->hdr.command_id };
	c->refs++;
	c->in_flight++;
	if (++r->got < r->total)
		return 0;
	/* complete: out of the list, one text */
	for (struct reasm **pp = &srv->reasm; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	size_t all = 0;
	for (unsigned i = 0; i < total; i++)
		all += r->part[i].len;
	uint8_t *oct_all = malloc(all ? all : 1);
	char *text = NULL;
	if (oct_all && all <= TEXT_MAX) {
		size_t o = 0;
		for (unsigned i = 0; i < total; i++) {
			memcpy(oct_all + o, r->part[i].data, r->part[i].len);
			o += r->part[i].len;
		}
		text = decode_text(oct_all, all, r->coding);
	}
	free(oct_all);
	if (text && strlen(text) > srv->cfg->max_text) {   /* [server] max_text, as for every door */
		free(text);
		reasm_fail(r, SMPP_ESME_RINVMSGLEN);
		reasm_free(r);
		return 0;
	}
	struct submit *sub = text ? calloc(1, sizeof(*sub) + total * sizeof(struct ans)) : NULL;
	if (!sub) {
		free(text);
		reasm_fail(r, text ? SMPP_ESME_RMSGQFUL : SMPP_ESME_RSUBMITFAIL);
		reasm_free(r);
		return 0;
	}
	sub->smpp_account_id = r->smpp_account_id;
	sub->account_id = r->account_id;
	memcpy(sub->sender, r->sender, sizeof(sub->sender));
	memcpy(sub->to, r->to, sizeof(sub->to));
	sub->registered = r->registered;
	memcpy(sub->send_at, r->send_at, sizeof(sub->send_at));
	sub->validity = r->validity;
	sub->text = text;
	sub->n_ans = total;
	for (unsigned i = 0; i < total; i++)
		sub->ans[i] = r->part[i].ans;
	reasm_free(r);
	enqueue(srv, sub);
	return 0;
}

/* --- requests ------------------------------------------------------------------------------------- */

/* Token bucket per account: 1 when this submit may pass. */
static int acct_take_token(struct smpp_server *srv, struct acct *a)
{
	if (a->tps <= 0)
		return 1;
	double now = ev_now(srv->loop);
	double burst = a->tps < 1 ? 1 : a->tps;
	a->tokens += (now - a->last_refill) * a->tps;
	a->last_refill = now;
	if (a->tokens > burst)
		a->tokens = burst;
	if (a->tokens < 1)
		return 0;
	a->tokens -= 1;
	return 1;
}

static void handle_submit(struct conn *c, const struct smpp_pdu *req)
{
	struct smpp_server *srv = c->srv;
	char to[21];
	if (!c->can_tx) {
		answer_now(c, req, SMPP_ESME_RINVBNDSTS);
		return;
	}
	if (srv->stopping) {
		answer_now(c, req, SMPP_ESME_RSYSERR);
		return;
	}
	if (c->in_flight >= c->acct->window || !acct_take_token(srv, c->acct)) {
		srv->c.throttled++;
		answer_now(c, req, SMPP_ESME_RTHROTTLED);
		return;
	}
	if (!util_valid_sender(req->source_addr)) {
		answer_now(c, req, SMPP_ESME_RINVSRCADR);
		return;
	}
	if (util_msisdn(req->destination_addr, to) < 0) {
		answer_now(c, req, SMPP_ESME_RINVDSTADR);
		return;
	}
	int coding = coding_of(req->data_coding);
	if (coding < 0) {
		srv->c.submit_refused++;
		answer_now(c, req, SMPP_ESME_RSUBMITFAIL);
		return;
	}
	char send_at[40];
	double validity;
	uint32_t st = submit_times(req, time(NULL), send_at, &validity);
	if (st) {
		answer_now(c, req, st);
		return;
	}
	const uint8_t *oct = req->short_message;
	size_t len = req->sm_length;
	const struct smpp_tlv *payload = smpp_tlv_find(req, SMPP_TLV_MESSAGE_PAYLOAD);
	if (payload) {
		if (len > 0) {   /* both: SMPP 3.4 5.3.2.32 forbids it */
			answer_now(c, req, SMPP_ESME_RINVPARLEN);
			return;
		}
		oct = payload->value;
		len = payload->length;
	}
	const struct smpp_tlv *sar_ref = smpp_tlv_find(req, SMPP_TLV_SAR_MSG_REF_NUM);
	const struct smpp_tlv *sar_tot = smpp_tlv_find(req, SMPP_TLV_SAR_TOTAL_SEGMENTS);
	const struct smpp_tlv *sar_seq = smpp_tlv_find(req, SMPP_TLV_SAR_SEGMENT_SEQNUM);
	if ((req->esm_class & 0x40) && !payload) {
		/* UDH: length, then IEs; concatenation IE 0x00 (8-bit ref) or 0x08 (16-bit) */
		if (len < 1 || (size_t)oct[0] + 1 > len) {
			answer_now(c, req, SMPP_ESME_RINVMSGLEN);
			return;
		}
		size_t udhl = oct[0], i = 1;
		int found = 0;
		uint16_t ref = 0;
		uint8_t total = 0, seq = 0;
		while (i + 2 <= udhl + 1) {
			uint8_t iei = oct[i], iel = oct[i + 1];
			if (i + 2 + iel > udhl + 1)
				break;
			if (iei == 0x00 && iel == 3) {
				ref = oct[i + 2], total = oct[i + 3], seq = oct[i + 4], found = 1;
			} else if (iei == 0x08 && iel == 4) {
				ref = (uint16_t)(oct[i + 2] << 8 | oct[i + 3]), total = oct[i + 4], seq = oct[i + 5], found = 1;
			}
			i += 2u + iel;
		}
		oct += udhl + 1;
		len -= udhl + 1;
		if (found && total > 1) {
			st = reasm_add(c, req, coding, ref, total, seq, oct, len, send_at, validity);
			if (st)
				answer_now(c, req, st);
			return;
		}
	} else if (sar_ref && sar_tot && sar_seq && !payload) {
		if (sar_ref->length != 2 || sar_tot->length != 1 || sar_seq->length != 1) {
			answer_now(c, req, SMPP_ESME_RINVPARLEN);
			return;
		}
		uint16_t ref = (uint16_t)(sar_ref->value[0] << 8 | sar_ref->value[1]);
		if (sar_tot->value[0] > 1) {
			st = reasm_add(c, req, coding, ref, sar_tot->value[0], sar_seq->value[0], oct, len, send_at,
				       validity);
			if (st)
				answer_now(c, req, st);
			return;
		}
	}
	if (len > TEXT_MAX) {
		answer_now(c, req, SMPP_ESME_RINVMSGLEN);
		return;
	}
	char *text = decode_text(oct, len, coding);
	if (!text) {
		srv->c.submit_refused++;
		answer_now(c, req, SMPP_ESME_RSUBMITFAIL);
		return;
	}
	if (strlen(text) > srv->cfg->max_text) {   /* [server] max_text (UTF-8 bytes), as for every door */
		free(text);
		srv->c.submit_refused++;
		answer_now(c, req, SMPP_ESME_RINVMSGLEN);
		return;
	}
	struct submit *sub = submit_new(c, req, text, 1);
	if (!sub) {
		free(text);
		answer_now(c, req, SMPP_ESME_RMSGQFUL);
		return;
	}
	sub->ans[0] = (struct ans){ c, req->hdr.sequence_number, req->hdr.command_id };
	memcpy(sub->send_at, send_at, sizeof(sub->send_at));
	sub->validity = validity;
	c->refs++;
	c->in_flight++;
	enqueue(srv, sub);
}

static void qjob_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct qjob *q = job->arg;
	struct smpp_server *srv = q->srv;
	struct conn *c = q->ans.c;
	srv->jobs_in_flight--;
	if (c) {
		if (c->in_flight > 0)
			c->in_flight--;
		conn_unref(c);
	}
	if (!c || c->closed) {
		free(q);
		return;
	}
	struct smpp_pdu req, resp;
	memset(&req, 0, sizeof(req));
	req.hdr.command_id = q->ans.cmd;
	req.hdr.sequence_number = q->ans.seq;
	if (err != STORE_OK) {
		log_error("smpps", "conn=%s ev=%s_failed err=\"%s\"", c->name, smpp_command_name(q->ans.cmd), msg ? msg : "");
		smpp_pdu_resp(&resp, &req, SMPP_ESME_RSYSERR);
	} else if (q->ans.cmd == SMPP_QUERY_SM) {
		if (PQntuples(job->res) != 1) {
			smpp_pdu_resp(&resp, &req, SMPP_ESME_RINVMSGID);
		} else {
			const char *state = PQgetvalue(job->res, 0, 0);
			uint8_t ms = SMPP_STATE_ENROUTE;
			if (is_final(state))
				stat_of(srv, state, &ms);
			smpp_pdu_resp(&resp, &req, 0);
			util_strlcpy(resp.message_id, q->message_id, sizeof(resp.message_id));
			util_strlcpy(resp.final_date, PQgetvalue(job->res, 0, 1), sizeof(resp.final_date));
			resp.query_message_state = ms;
			resp.query_error_code = (uint8_t)atoi(PQgetvalue(job->res, 0, 2));
		}
	} else {
		int canceled = atoi(PQgetvalue(job->res, 0, 0)) > 0;
		int exists = strcmp(PQgetvalue(job->res, 0, 1), "t") == 0;
		smpp_pdu_resp(&resp, &req, canceled ? 0 : exists ? 0x11 /* ESME_RCANCELFAIL */ : SMPP_ESME_RINVMSGID);
	}
	smpp_session_send(c->s, &resp);
	free(q);
}

static void handle_query_cancel(struct conn *c, const struct smpp_pdu *req)
{
	struct smpp_server *srv = c->srv;
	long long id = parse_hex_id(req->message_id);
	if (id < 0) {
		answer_now(c, req, SMPP_ESME_RINVMSGID);
		return;
	}
	struct qjob *q = calloc(1, sizeof(*q));
	if (!q) {
		answer_now(c, req, SMPP_ESME_RMSGQFUL);
		return;
	}
	q->srv = srv;
	q->ans = (struct ans){ c, req->hdr.sequence_number, req->hdr.command_id };
	c->refs++;
	c->in_flight++;
	util_strlcpy(q->message_id, req->message_id, sizeof(q->message_id));
	snprintf(q->p_id, sizeof(q->p_id), "%lld", id);
	snprintf(q->p_acct, sizeof(q->p_acct), "%lld", c->acct->account_id);
	q->params[0] = q->p_id;
	q->params[1] = q->p_acct;
	q->job = (struct store_job){ .stmt = req->hdr.command_id == SMPP_QUERY_SM ? &stmt_query : &recipient_stmt_cancel_one,
				     .nparams = 2, .params = q->params, .done = qjob_done, .arg = q };
	srv->jobs_in_flight++;
	store_submit(srv->store, &q->job);
}

static void on_request(void *arg, const struct smpp_pdu *req)
{
	struct conn *c = arg;
	if (!c->acct) {
		answer_now(c, req, SMPP_ESME_RINVBNDSTS);
		return;
	}
	switch (req->hdr.command_id) {
	case SMPP_SUBMIT_SM:
	case SMPP_DATA_SM:
		handle_submit(c, req);
		return;
	case SMPP_QUERY_SM:
	case SMPP_CANCEL_SM:
		if (!c->can_tx) {
			answer_now(c, req, SMPP_ESME_RINVBNDSTS);
			return;
		}
		handle_query_cancel(c, req);
		return;
	default:
		log_warn("smpps", "conn=%s ev=unsupported cmd=%s", c->name, smpp_command_name(req->hdr.command_id));
		if (req->hdr.command_id == SMPP_DELIVER_SM)
			answer_now(c, req, SMPP_ESME_RINVCMDID);
		else {
			struct smpp_pdu nack;
			smpp_pdu_init(&nack, SMPP_GENERIC_NACK, req->hdr.sequence_number);
			nack.hdr.command_status = SMPP_ESME_RINVCMDID;
			smpp_session_send(c->s, &nack);
		}
	}
}

/* --- outbox: receipts and MO towards the ESMEs ---------------------------------------------------- */

static void on_resp(void *arg, uint64_t tag, uint32_t status, const struct smpp_pdu *resp)
{
	struct conn *c = arg;
	struct smpp_server *srv = c->srv;
	(void)resp;
	if (c->acct && c->acct->outbox_in_flight > 0)
		c->acct->outbox_in_flight--;
	if (c->ob_in_flight > 0)
		c->ob_in_flight--;
	long long id = (long long)tag;
	if (status == 0) {
		if (util_grow((void **)&srv->acked, &srv->cap_acked, srv->n_acked + 1, sizeof(*srv->acked)) == 0)
			srv->acked[srv->n_acked++] = id;
		srv->c.receipts_acked++;
	} else if (status == SMPP_STATUS_LINK_LOST) {
		if (util_grow((void **)&srv->released, &srv->cap_released, srv->n_released + 1, sizeof(*srv->released)) == 0)
			srv->released[srv->n_released++] = id;
	} else {
		log_warn("smpps", "conn=%s ev=deliver_sm_refused outbox=%lld status=0x%08x", c->name, id, status);
	}
	/* any other answer: the lease runs out and it is sent again */
	if (!srv->stopping)
		ev_prepare_start(srv->loop, &srv->pump);   /* the ack, and room for the next lease */
}

/* deliver_sm this bind may take now: the session's window, bounded by the account's. */
static unsigned rx_room(const struct conn *c)
{
	if (c->closed || !c->acct || !c->can_rx)
		return 0;
	unsigned w = smpp_session_window_free(c->s);
	unsigned acct = c->acct->window > c->ob_in_flight ? c->acct->window - c->ob_in_flight : 0;
	return w < acct ? w : acct;
}

static struct conn *pick_rx(struct smpp_server *srv, struct acct *a)
{
	unsigned k = 0;
	struct conn *found = NULL;
	for (struct conn *c = srv->conns; c; c = c->next) {
		if (c->acct != a || rx_room(c) == 0)
			continue;
		if (k++ == a->rr % (a->rx_binds ? a->rx_binds : 1) || !found)
			found = c;
	}
	a->rr++;
	return found;
}

/* The appendix-B stat of a recipient state, with its message_state. */
static const char *stat_of(struct smpp_server *srv, const char *state, uint8_t *ms)
{
	char key[24];
	snprintf(key, sizeof(key), ",%s,", state);
	if (strstr(srv->delivered, key)) {
		*ms = SMPP_STATE_DELIVERED;
		return "DELIVRD";
	}
	if (!strcmp(state, "SMS_EXPIRED")) {
		*ms = SMPP_STATE_EXPIRED;
		return "EXPIRED";
	}
	if (!strcmp(state, "CANCELED")) {
		*ms = SMPP_STATE_DELETED;
		return "DELETED";
	}
	if (!strcmp(state, "DROPPED")) {
		*ms = SMPP_STATE_REJECTED;
		return "REJECTD";
	}
	if (!strcmp(state, "SMS_UNKNOWN")) {
		*ms = SMPP_STATE_UNKNOWN;
		return "UNKNOWN";
	}
	if (!strcmp(state, "PUSH_DELIVERED") || !strcmp(state, "SMS_DELIVERED")) {
		*ms = SMPP_STATE_ACCEPTED;
		return "ACCEPTD";
	}
	*ms = SMPP_STATE_UNDELIVERABLE;
	return "UNDELIV";
}

static void set_addr(const char *a, uint8_t *ton, uint8_t *npi)
{
	int numeric = *a != '\0';
	for (const char *p = a; *p; p++)
		if (*p < '0' || *p > '9')
			numeric = 0;
	*ton = numeric ? (strlen(a) <= 8 ? 3 : 1) : 5;
	*npi = numeric ? 1 : 0;
}

/* One leased outbox row as a deliver_sm; 1 sent, 0 not needed (acked), -1 not sent now. */
static int outbox_send(struct smpp_server *srv, PGresult *res, int row)
{
	long long id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	long long acct_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
	const char *kind = PQgetvalue(res, row, 2);
	struct acct *a = NULL;
	for (struct acct *x = srv->accts; x; x = x->next)
		if (x->id == acct_id)
			a = x;
	struct conn *c = a ? pick_rx(srv, a) : NULL;
	if (!c)
		return -1;
	struct smpp_pdu pdu;
	static uint8_t enc[65536];
	char msgid[24], body[256];
	uint8_t ms = 0, err3[3];
	smpp_pdu_init(&pdu, SMPP_DELIVER_SM, 0);
	util_strlcpy(pdu.source_addr, PQgetvalue(res, row, 6), sizeof(pdu.source_addr));
	util_strlcpy(pdu.destination_addr, PQgetvalue(res, row, 7), sizeof(pdu.destination_addr));
	set_addr(pdu.source_addr, &pdu.source_addr_ton, &pdu.source_addr_npi);
	set_addr(pdu.destination_addr, &pdu.dest_addr_ton, &pdu.dest_addr_npi);
	if (strcmp(kind, "receipt") == 0) {
		const char *stat = stat_of(srv, PQgetvalue(res, row, 3), &ms);
		int registered = atoi(PQgetvalue(res, row, 4));
		if (registered == 2 && ms == SMPP_STATE_DELIVERED)
			return 0;   /* failures only were asked for */
		int err = atoi(PQgetvalue(res, row, 5));
		snprintf(msgid, sizeof(msgid), "%llx", strtoll(PQgetvalue(res, row, 11), NULL, 10));
		/* the first 20 characters of the text, as GSM-safe ASCII */
		char excerpt[21];
		const char *t = PQgetvalue(res, row, 8);
		size_t k = 0;
		for (; *t && k < 20; t++) {
			unsigned char ch = (unsigned char)*t;
			if ((ch & 0xC0) == 0x80)
				continue;
			excerpt[k++] = ch >= 0x20 && ch < 0x7f && ch != '@' && ch != '`' ? (char)ch : '?';
		}
		excerpt[k] = '\0';
		const char *sub_date = PQgetvalue(res, row, 9);
		int n = snprintf(body, sizeof(body), "id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%03d text:%s",
				 msgid, ms == SMPP_STATE_DELIVERED ? "001" : "000", sub_date[0] ? sub_date : PQgetvalue(res, row, 10),
				 PQgetvalue(res, row, 10), stat, err % 1000, excerpt);
		if (n < 0 || (size_t)n > 254)
			n = 254;
		pdu.esm_class = 0x04;
		pdu.data_coding = 0;
		memcpy(pdu.short_message, body, (size_t)n);
		pdu.sm_length = (uint8_t)n;
		smpp_tlv_add(&pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, msgid, (uint16_t)(strlen(msgid) + 1));
		smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_STATE, &ms, 1);
		if (ms != SMPP_STATE_DELIVERED && err > 0) {
			err3[0] = 3;   /* GSM */
			util_put_be16(err3 + 1, (uint16_t)err);
			smpp_tlv_add(&pdu, SMPP_TLV_NETWORK_ERROR_CODE, err3, 3);
		}
	} else {
		const char *t = PQgetvalue(res, row, 8);
		enum text_coding chosen;
		size_t units;
		long n = text_encode(t, strlen(t), TEXT_AUTO, enc, sizeof(enc), &chosen, &units);
		if (n < 0)
			return 0;   /* stored text we can't encode: nothing will change that */
		pdu.data_coding = (uint8_t)chosen;
		if (n <= 254) {
			memcpy(pdu.short_message, enc, (size_t)n);
			pdu.sm_length = (uint8_t)n;
		} else {
			smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_PAYLOAD, enc, (uint16_t)(n > 65000 ? 65000 : n));
		}
	}
	if (smpp_session_request(c->s, &pdu, (uint64_t)id) < 0)
		return -1;
	a->outbox_in_flight++;
	c->ob_in_flight++;
	if (strcmp(kind, "receipt") == 0)
		srv->c.receipts_sent++;
	else
		srv->c.mo_forwarded++;
	return 1;
}

static void obatch_reset(struct obatch *b)
{
	for (int i = 0; i < 2; i++) {
		free(b->lit[i]);
		b->lit[i] = NULL;
	}
	b->in_flight = 0;
}

static int cmp_ll(const void *x, const void *y)
{
	long long a = *(const long long *)x, b = *(const long long *)y;
	return a < b ? -1 : a > b;
}

static void lease_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct smpp_server *srv = job->arg;
	obatch_reset(&srv->lease);
	if (err != STORE_OK) {
		if (err == STORE_SQL_ERROR)
			log_error("smpps", "ev=outbox_lease_failed err=\"%s\"", msg ? msg : "");
		srv->next_lease = ev_now(srv->loop) + 0.2;
		return;
	}
	int rows = PQntuples(job->res);
	if (rows == 0) {
		srv->next_lease = ev_now(srv->loop) + 0.2;   /* nothing waits: look again in a while */
		return;
	}
	/* oldest first: row numbers sorted by outbox id */
	long long *order = malloc((size_t)rows * 2 * sizeof(*order));
	if (!order)
		return;   /* the leases run out and they are sent again */
	for (int i = 0; i < rows; i++) {
		order[2 * i] = strtoll(PQgetvalue(job->res, i, 0), NULL, 10);
		order[2 * i + 1] = i;
	}
	qsort(order, (size_t)rows, 2 * sizeof(*order), cmp_ll);
	for (int i = 0; i < rows; i++) {
		int r = (int)order[2 * i + 1];
		int sent = outbox_send(srv, job->res, r);
		if (sent == 0) {
			if (util_grow((void **)&srv->acked, &srv->cap_acked, srv->n_acked + 1, sizeof(*srv->acked)) == 0)
				srv->acked[srv->n_acked++] = order[2 * i];
		} else if (sent < 0) {
			if (util_grow((void **)&srv->released, &srv->cap_released, srv->n_released + 1,
				 sizeof(*srv->released)) == 0)
				srv->released[srv->n_released++] = order[2 * i];
		}
	}
	free(order);
	srv->next_lease = 0;   /* more may be waiting: leased again as soon as the ESME makes room */
}

static void outbox_lease(struct smpp_server *srv)
{
	if (srv->lease.in_flight || srv->stopping || !store_is_up(srv->store) || ev_now(srv->loop) < srv->next_lease)
		return;
	struct pgarr ids = {0}, lims = {0};
	for (struct acct *a = srv->accts; a; a = a->next) {
		if (!a->rx_binds)
			continue;
		unsigned room = 0;
		for (struct conn *c = srv->conns; c; c = c->next)
			if (c->acct == a)
				room += rx_room(c);
		if (room < 1)
			continue;
		pgarr_num(&ids, a->id, 0);
		pgarr_num(&lims, room > OUTBOX_BATCH ? OUTBOX_BATCH : room, 0);
	}
	if (ids.n == 0) {   /* no room: the answers that make some start the pump */
		pgarr_reset(&ids);
		pgarr_reset(&lims);
		return;
	}
	char *a = pgarr_take(&ids), *b = pgarr_take(&lims);
	if (!a || !b) {
		free(a);
		free(b);
		return;
	}
	struct obatch *bt = &srv->lease;
	bt->lit[0] = a;
	bt->lit[1] = b;
	snprintf(bt->p_lease, sizeof(bt->p_lease), "%.3f", srv->cfg->smpps_receipt_retry);
	bt->params[0] = srv->node;
	bt->params[1] = a;
	bt->params[2] = b;
	bt->params[3] = bt->p_lease;
	bt->in_flight = 1;
	bt->job = (struct store_job){ .stmt = &stmt_outbox_lease, .nparams = 4, .params = bt->params,
				      .done = lease_done, .arg = srv };
	store_submit(srv->store, &bt->job);
}

static void ack_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct obatch *bt = job->arg;
	if (err != STORE_OK)
		log_error("smpps", "ev=outbox_update_failed err=\"%s\"", msg ? msg : "");
	obatch_reset(bt);
}

/* Acked rows -> delivered; rows not sent or lost with a link -> free for the next lease. */
static void outbox_updates(struct smpp_server *srv)
{
	struct {
		struct obatch *bt;
		long long **ids;
		size_t *n;
		const struct store_stmt *stmt;
	} w[2] = { { &srv->ack, &srv->acked, &srv->n_acked, &stmt_outbox_ack },
		   { &srv->release, &srv->released, &srv->n_released, &stmt_outbox_release } };
	for (int k = 0; k < 2; k++) {
		if (w[k].bt->in_flight || *w[k].n == 0)
			continue;
		struct pgarr ids = {0};
		for (size_t i = 0; i < *w[k].n; i++)
			pgarr_num(&ids, (*w[k].ids)[i], 0);
		char *lit = pgarr_take(&ids);
		if (!lit)
			continue;
		*w[k].n = 0;
		w[k].bt->lit[0] = lit;
		w[k].bt->params[0] = lit;
		w[k].bt->params[1] = srv->node;
		w[k].bt->in_flight = 1;
		w[k].bt->job = (struct store_job){ .stmt = w[k].stmt, .nparams = k == 0 ? 1 : 2,
						   .params = w[k].bt->params, .done = ack_done, .arg = w[k].bt,
						   .retry = 1 };
		store_submit(srv->store, &w[k].bt->job);
	}
}

/* --- MO from carriers ----------------------------------------------------------------------------- */

static void mo_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct mojob *m = job->arg;
	struct smpp_server *srv = m->srv;
	srv->jobs_in_flight--;
	if (err != STORE_OK)
		log_error("smpps", "ev=mo_store_failed err=\"%s\"", msg ? msg : "");
	else {
		srv->c.mo_received++;
		log_info("smpps", "ev=mo_stored id=%s route=%s src=%s dst=%s owner=%s opt_out=%s", PQgetvalue(job->res, 0, 0),
			 m->route, m->src, m->dst, PQgetvalue(job->res, 0, 1), PQgetvalue(job->res, 0, 2));
		srv->next_lease = 0;
	}
	if (m->done)
		m->done(m->ctx, err == STORE_OK ? 0 : 0x64 /* ESME_RX_T_APPN: the carrier sends it again */);
	free(m->route);
	free(m->text);
	free(m->keywords);
	free(m);
}

void smpp_server_mo(struct smpp_server *srv, const char *route, const struct smpp_pdu *pdu,
		    void (*done)(void *ctx, uint32_t status), void *ctx)
{
	const uint8_t *oct = pdu->short_message;
	size_t len = pdu->sm_length;
	const struct smpp_tlv *payload = smpp_tlv_find(pdu, SMPP_TLV_MESSAGE_PAYLOAD);
	if (len == 0 && payload) {
		oct = payload->value;
		len = payload->length;
	}
	if ((pdu->esm_class & 0x40) && len > 0 && (size_t)oct[0] + 1 <= len) {
		len -= (size_t)oct[0] + 1;
		oct += oct[0] + 1;
	}
	int coding = coding_of(pdu->data_coding);
	char *text = decode_text(oct, len, coding < 0 ? TEXT_LATIN1 : coding);
	struct mojob *m = calloc(1, sizeof(*m));
	struct pgarr kw = {0};
	for (size_t i = 0; i < srv->n_keywords; i++)
		pgarr_text(&kw, srv->keywords[i]);
	if (!m || !text || !(m->keywords = pgarr_take(&kw)) || !(m->route = strdup(route ? route : ""))) {
		if (m) {
			free(m->keywords);
			free(m);
		}
		pgarr_reset(&kw);
		char esc[64];
		util_escape(pdu->source_addr, strlen(pdu->source_addr), esc, sizeof(esc));
		log_warn("smpps", "ev=mo_unreadable route=%s src=\"%s\" dcs=0x%02x", route ? route : "-", esc,
			 pdu->data_coding);
		free(text);
		if (done)
			done(ctx, text ? 0x64 : 0);   /* unreadable: sending it again would not help */
		return;
	}
	m->srv = srv;
	m->done = done;
	m->ctx = ctx;
	m->text = text;
	/* addresses: printable ASCII only, else stored as "?" */
	util_strlcpy(m->src, util_valid_sender(pdu->source_addr) ? pdu->source_addr : "?", sizeof(m->src));
	util_strlcpy(m->dst, util_valid_sender(pdu->destination_addr) ? pdu->destination_addr : "?", sizeof(m->dst));
	char plus[21];
	if (util_msisdn(m->src, plus) == 0)
		memcpy(m->src, plus, sizeof(plus));
	snprintf(m->p_dcs, sizeof(m->p_dcs), "%u", pdu->data_coding);
	m->params[0] = m->route;
	m->params[1] = m->src;
	m->params[2] = m->dst;
	m->params[3] = m->text;
	m->params[4] = m->p_dcs;
	m->params[5] = m->keywords;
	m->job = (struct store_job){ .stmt = &stmt_mo, .nparams = 6, .params = m->params, .done = mo_done, .arg = m,
				     .retry = 1 };
	srv->jobs_in_flight++;
	store_submit(srv->store, &m->job);
}

/* --- listeners -------------------------------------------------------------------------------------- */

static unsigned unbound_conns(const struct smpp_server *srv)
{
	unsigned n = 0;
	for (const struct conn *c = srv->conns; c; c = c->next)
		n += !c->closed && !c->acct;
	return n;
}

static void accept_one(struct smpp_server *srv, int fd, const struct sockaddr_storage *ss, int tls)
{
	if (srv->n_conns >= srv->cfg->smpps_max_conns || srv->stopping) {
		close(fd);
		return;
	}
	/* connections that have not bound yet cost a session each, and may all be bad binds */
	if (unbound_conns(srv) >= srv->cfg->smpps_max_unbound) {
		srv->c.unbound_refused++;
		close(fd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->id = ++srv->next_id;
	c->tls = tls;
	snprintf(c->name, sizeof(c->name), "esme%u", c->id);
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, c->peer, sizeof(c->peer));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, c->peer, sizeof(c->peer));
	else
		util_strlcpy(c->peer, "0.0.0.0", sizeof(c->peer));
	if (!strncmp(c->peer, "::ffff:", 7) && strchr(c->peer + 7, '.'))
		memmove(c->peer, c->peer + 7, strlen(c->peer + 7) + 1);
	ev_timer_init(&c->delay, refuse_cb, 1., 0.);
	c->delay.data = c;
	c->next = srv->conns;
	srv->conns = c;
	srv->n_conns++;
	srv->c.accepted++;
	struct smpp_session_config sc = {
		.name = c->name, .window = 10000, .enquire_link = srv->cfg->smpps_enquire_link,
		.response_timeout = srv->cfg->smpps_bind_timeout,
	};
	struct smpp_session_cb cb = { NULL, on_down, on_resp, on_request, on_bind };
	log_info("smpps", "conn=%s ev=accepted peer=%s tls=%s", c->name, c->peer, tls ? "yes" : "no");
	c->s = smpp_session_accept(srv->loop, fd, tls ? srv->tls : NULL, &sc, &cb, c);
	if (!c->s)
		c->closed = 1;
}

int smpp_server_adopt(struct smpp_server *srv, int fd, int tls)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		ss.ss_family = AF_UNSPEC;
	if (tls && !srv->tls) {
		close(fd);
		return -1;
	}
	accept_one(srv, fd, &ss, tls);
	return 0;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_server *srv = w->data;
	int tls = w == &srv->tlio;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept(w->fd, (struct sockaddr *)&ss, &len);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_warn("smpps", "ev=accept_failed err=\"%s\"", strerror(errno));
			return;
		}
		accept_one(srv, fd, &ss, tls);
	}
}

/* --- tick ---------------------------------------------------------------------------------------------- */

/*
 * The outbox between ticks: answered deliver_sm are marked delivered and,
 * while rows wait, the room they freed is leased at the end of the loop turn
 * in which the answers came, one statement of each in flight (a tick-paced
 * outbox sent at most one window per tick).
 */
static void pump_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	struct smpp_server *srv = w->data;
	ev_prepare_stop(loop, w);
	outbox_updates(srv);
	outbox_lease(srv);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_server *srv = w->data;
	reap(srv);
	reasm_expire(srv, 0);
	outbox_updates(srv);
	outbox_lease(srv);
}

/* --- public -------------------------------------------------------------------------------------------- */

void smpp_server_account_disabled(struct smpp_server *srv, long long account_id)
{
	if (!srv)
		return;
	unsigned n = 0;
	for (struct conn *c = srv->conns; c; c = c->next) {
		if (c->closed || !c->acct || c->acct->account_id != account_id)
			continue;
		smpp_session_stop(c->s, 2.0);   /* unbind: its submits in flight are still answered */
		n++;
	}
	log_info("smpps", "ev=account_disabled account=%lld binds_closed=%u", account_id, n);
}

static void parse_lists(struct smpp_server *srv)
{
	/* ",A,B," so a state is found as ",NAME," */
	size_t o = 0;
	srv->delivered[o++] = ',';
	for (const char *p = srv->cfg->smpps_delivered_states; *p && o + 2 < sizeof(srv->delivered); p++)
		if (*p != ' ')
			srv->delivered[o++] = *p;
	srv->delivered[o++] = ',';
	srv->delivered[o] = '\0';
	const char *p = srv->cfg->smpps_mo_keywords;
	while (*p && srv->n_keywords < MAX_KEYWORDS) {
		while (*p == ',' || *p == ' ')
			p++;
		size_t n = strcspn(p, ",");
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n > 0 && n < sizeof(srv->keywords[0])) {
			char *k = srv->keywords[srv->n_keywords++];
			memcpy(k, p, n);
			k[n] = '\0';
			for (char *q = k; *q; q++)
				if (*q >= 'a' && *q <= 'z')
					*q = (char)(*q - 32);
		}
		p += strcspn(p, ",");
	}
}

struct smpp_server *smpp_server_new(struct ev_loop *loop, struct store *store, struct intake_queue *intake,
				    const struct config *cfg, const char *node, char *err, size_t errlen)
{
	struct smpp_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->loop = loop;
	srv->store = store;
	srv->intake = intake;
	srv->cfg = cfg;
	srv->lfd = srv->tls_lfd = -1;
	util_strlcpy(srv->node, node, sizeof(srv->node));
	parse_lists(srv);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION   /* fuzzing binds without a database (on_bind) */
	/* an unknown system_id costs the same PBKDF2 as a known one (auth_done) */
	if (smpp_passwd_hash("stand-in", SMPP_PASSWD_ITERATIONS, srv->stand_in_hash, sizeof(srv->stand_in_hash)) < 0) {
		snprintf(err, errlen, "no randomness for the stand-in password hash");
		goto fail;
	}
	if (!(srv->auth_pool = authpool_new(loop, (unsigned)cfg->smpps_auth_threads, (unsigned)cfg->smpps_auth_queue))) {
		snprintf(err, errlen, "cannot start the password-check threads");
		goto fail;
	}
#endif
	/* failures an address (a system_id: twice as many) may make; then one more a minute */
	srv->fail_ip = ratelimit_new(8192, 1.0 / 60, (double)cfg->smpps_bind_failures);
	srv->fail_sys = ratelimit_new(8192, 1.0 / 60, 2.0 * (double)cfg->smpps_bind_failures);
	if (!srv->fail_ip || !srv->fail_sys) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (cfg->smpps_listen[0] && (srv->lfd = netio_bind(cfg->smpps_listen, &srv->port, err, errlen)) < 0)
		goto fail;
	if (cfg->smpps_tls_listen[0]) {
		if (!(srv->tls = netio_tls_server_ctx(cfg->smpps_tls_cert, cfg->smpps_tls_key, cfg->tls_min_version, err, errlen)))
			goto fail;
		if ((srv->tls_lfd = netio_bind(cfg->smpps_tls_listen, &srv->tls_port, err, errlen)) < 0)
			goto fail;
	}
	ev_io_init(&srv->lio, accept_cb, srv->lfd, EV_READ);
	srv->lio.data = srv;
	ev_io_init(&srv->tlio, accept_cb, srv->tls_lfd, EV_READ);
	srv->tlio.data = srv;
	ev_timer_init(&srv->tick, tick_cb, TICK_INTERVAL, TICK_INTERVAL);
	srv->tick.data = srv;
	ev_prepare_init(&srv->pump, pump_cb);
	srv->pump.data = srv;
	ev_timer_start(loop, &srv->tick);
	log_info("smpps", "ev=bound port=%d tls_port=%d delivered=\"%s\" keywords=%zu", srv->port, srv->tls_port,
		 cfg->smpps_delivered_states, srv->n_keywords);
	return srv;
fail:
	smpp_server_free(srv);
	return NULL;
}

int smpp_server_open(struct smpp_server *srv, char *err, size_t errlen)
{
	if (!srv || srv->open)
		return 0;
	if (srv->stopping || (srv->lfd >= 0 && listen(srv->lfd, 512) < 0) ||
	    (srv->tls_lfd >= 0 && listen(srv->tls_lfd, 512) < 0)) {
		snprintf(err, errlen, "listen: %s", srv->stopping ? "stopping" : strerror(errno));
		return -1;
	}
	srv->open = 1;
	if (srv->lfd >= 0)
		ev_io_start(srv->loop, &srv->lio);
	if (srv->tls_lfd >= 0)
		ev_io_start(srv->loop, &srv->tlio);
	log_info("smpps", "ev=listening port=%d tls_port=%d", srv->port, srv->tls_port);
	return 0;
}

int smpp_server_port(const struct smpp_server *srv) { return srv ? srv->port : 0; }
int smpp_server_tls_port(const struct smpp_server *srv) { return srv ? srv->tls_port : 0; }

void smpp_server_stop(struct smpp_server *srv, double grace)
{
	if (!srv)
		return;
	srv->stopping = 1;
	ev_io_stop(srv->loop, &srv->lio);
	ev_io_stop(srv->loop, &srv->tlio);
	reasm_expire(srv, 1);   /* parts of a message never completed: refused, the ESME resends them */
	for (struct conn *c = srv->conns; c; c = c->next)
		if (!c->closed)
			smpp_session_stop(c->s, grace);
}

int smpp_server_busy(const struct smpp_server *srv)
{
	if (!srv)
		return 0;
	if (srv->jobs_in_flight || srv->lease.in_flight || srv->ack.in_flight ||
	    srv->release.in_flight || srv->n_acked || srv->n_released)
		return 1;
	for (const struct conn *c = srv->conns; c; c = c->next)
		if (!c->closed)
			return 1;
	return 0;
}

size_t smpp_server_metrics(const struct smpp_server *srv, char *buf, size_t cap)
{
	if (!srv)
		return 0;
	size_t bound = 0;
	for (const struct conn *c = srv->conns; c; c = c->next)
		bound += !c->closed && c->acct;
	int n = snprintf(buf, cap,
			 "# TYPE pushgate_smpps_binds gauge\npushgate_smpps_binds %zu\n"
			 "# TYPE pushgate_smpps_submits counter\npushgate_smpps_submits %llu\n"
			 "# TYPE pushgate_smpps_throttled counter\npushgate_smpps_throttled %llu\n"
			 "# TYPE pushgate_smpps_bind_refused counter\npushgate_smpps_bind_refused %llu\n"
			 "# TYPE pushgate_smpps_receipts_sent counter\npushgate_smpps_receipts_sent %llu\n"
			 "# TYPE pushgate_smpps_deliver_sm_acked counter\npushgate_smpps_deliver_sm_acked %llu\n"
			 "# TYPE pushgate_smpps_mo_received counter\npushgate_smpps_mo_received %llu\n"
			 "# TYPE pushgate_smpps_unbound_refused counter\npushgate_smpps_unbound_refused %llu\n"
			 "# TYPE pushgate_smpps_bind_locked_out counter\npushgate_smpps_bind_locked_out %llu\n"
			 "# TYPE pushgate_smpps_bind_checks_busy counter\npushgate_smpps_bind_checks_busy %llu\n"
			 "# TYPE pushgate_smpps_bind_checks_queued gauge\npushgate_smpps_bind_checks_queued %u\n",
			 bound, (unsigned long long)srv->c.submits, (unsigned long long)srv->c.throttled,
			 (unsigned long long)srv->c.bind_refused, (unsigned long long)srv->c.receipts_sent,
			 (unsigned long long)srv->c.receipts_acked, (unsigned long long)srv->c.mo_received,
			 (unsigned long long)srv->c.unbound_refused, (unsigned long long)srv->c.locked_out,
			 (unsigned long long)srv->c.auth_busy, srv->auth_pool ? authpool_queued(srv->auth_pool) : 0u);
	size_t o = n > 0 ? (size_t)n : 0;
	return o < cap ? o : cap;
}

void smpp_server_free(struct smpp_server *srv)
{
	if (!srv)
		return;
	srv->stopping = 1;
	authpool_free(srv->auth_pool);   /* joined first: no answer arrives for a freed connection */
	srv->auth_pool = NULL;
	ev_timer_stop(srv->loop, &srv->tick);
	ev_prepare_stop(srv->loop, &srv->pump);
	ev_io_stop(srv->loop, &srv->lio);
	ev_io_stop(srv->loop, &srv->tlio);
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->tls_lfd >= 0)
		close(srv->tls_lfd);
	while (srv->reasm) {
		struct reasm *r = srv->reasm;
		srv->reasm = r->next;
		reasm_free(r);
	}
	/* sessions first (their windows hand back deliver_sm in flight), then the connections */
	for (struct conn *c = srv->conns; c; c = c->next) {
		c->closed = 1;
		smpp_session_free(c->s);
		c->s = NULL;
	}
	while (srv->conns) {
		struct conn *c = srv->conns;
		srv->conns = c->next;
		ev_timer_stop(srv->loop, &c->delay);
		OPENSSL_cleanse(c->password, sizeof(c->password));
		free(c);
	}
	while (srv->accts) {
		struct acct *a = srv->accts;
		srv->accts = a->next;
		free(a);
	}
	obatch_reset(&srv->lease);
	obatch_reset(&srv->ack);
	obatch_reset(&srv->release);
	free(srv->acked);
	free(srv->released);
	ratelimit_free(srv->fail_ip);
	ratelimit_free(srv->fail_sys);
	SSL_CTX_free(srv->tls);
	free(srv);
}
