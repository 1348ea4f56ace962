/*
 * node.c: this pushgated's name among the nodes that share a database, and
 * what the name is worth after a crash.
 *
 * Leases record the name of the node that holds them (recipients while
 * SMS_SUBMITTED, webhook_outbox, smpp_outbox).  The name is stable across
 * restarts (node_default_name), and a session advisory lock on it, held on
 * a connection of this module's own (a store: nonblocking, reconnecting),
 * makes sure no two live processes hold it at once.  So whatever the
 * database still shows leased under the name when a process first takes
 * the lock was leased by a predecessor that is gone (kill -9, power cut):
 * it is taken back at once, in the transaction that follows the lock,
 * instead of waiting for the leases' expiry (a minute for an SMS).  Each SMS
 * taken back is queued again as a recorded resend (events.kind 'resend'):
 * the carrier may have it already.  Leases of other nodes still wait for
 * their expiry (recipient_stmt_sweep).  The device sockets the predecessor
 * held (devices.socket_node) are marked gone in the same transaction, so
 * platform push wakes those devices again.
 *
 * The state machine (one writer: this file):
 *   WANT --lock 't'--> [first time: TAKING --take-back committed-->] HELD
 *   WANT --lock 'f'--> WANT again in a second (at start, up to CLAIM_TRIES:
 *                      a dead predecessor's session may not be over yet),
 *                      REFUSED after that, or at once once the name was held
 *   HELD --connection lost--> WANT (at the store's next connection)
 * Owns: its store, the lock's session, the retry timer.
 */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "config.h"
#include "log.h"
#include "recipient.h"
#include "server.h"
#include "stmts.h"
#include "util.h"
#include "webhook.h"

/*
 * Seconds a dead predecessor's session may keep the name at start: with
 * its host gone, the server's keepalives (set below) end it within 25.
 */
#define CLAIM_TRIES 60

enum node_state { N_WANT, N_ASKING, N_TAKING, N_HELD, N_REFUSED };

struct node {
	struct ev_loop     *loop;
	struct store       *st;
	char                name[96];
	struct node_events  ev;
	enum node_state     state;
	int                 held_once;   /* the take-back is done: never again in this process */
	int                 tries;
	ev_timer            retry;
	struct store_job    lock_job, take_job[4];
	const char         *params[1];
	struct node_taken   taken;
	int                 take_left, take_failed;
	int                 closing;     /* node_free: the store's last callbacks change nothing */
};

/*
 * If this host dies without closing the socket, the server must still end
 * the session (and the lock) soon, or the restarted node waits for TCP's two
 * hours: keepalives of this session only, from the server's side.  Then the
 * lock: key1 says "a pushgated node name", key2 is the name's hash.
 */
static const struct store_stmt stmt_lock = {
	"node_lock",
	"SELECT pg_try_advisory_lock(1886745448, hashtext($1)),"
	" set_config('tcp_keepalives_idle', '10', false), set_config('tcp_keepalives_interval', '5', false),"
	" set_config('tcp_keepalives_count', '3', false)",
	1, 0,
};

/* The port of "ADDR:PORT" when fixed (not 0), else 0. */
static long listen_port(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	if (!colon || !colon[1])
		return 0;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	return *end == '\0' && p > 0 && p < 65536 ? p : 0;
}

void node_default_name(const struct config *cfg, char *out, size_t cap, int *stable)
{
	if (cfg->node_name[0]) {
		util_strlcpy(out, cfg->node_name, cap);
		*stable = 1;
		return;
	}
	char host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	const char *const listeners[] = { cfg->http_listen, cfg->https_listen, cfg->smpps_listen,
					  cfg->smpps_tls_listen };
	for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++) {
		long p = listen_port(listeners[i]);
		if (p) {
			snprintf(out, cap, "%s:%ld", host, p);
			*stable = 1;
			return;
		}
	}
	snprintf(out, cap, "%s:pid%ld", host, (long)getpid());
	*stable = 0;
}

static void ask(struct node *n);

static void refuse(struct node *n, const char *why)
{
	n->state = N_REFUSED;
	log_error("node", "ev=name_held_elsewhere node=%s why=\"%s\"", n->name, why);
	n->ev.refused(n->ev.arg, why);
}

static void take_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct node *n = job->arg;
	if (n->closing)
		return;
	long long v = err == STORE_OK && PQntuples(job->res) == 1 ? strtoll(PQgetvalue(job->res, 0, 0), NULL, 10) : -1;
	if (v < 0) {
		n->take_failed = 1;
		if (err == STORE_SQL_ERROR)
			log_error("node", "ev=take_back_failed stmt=%s err=\"%s\"", job->stmt->name, msg ? msg : "");
	}
	if (job == &n->take_job[0])
		n->taken.sms = v;
	else if (job == &n->take_job[1])
		n->taken.webhooks = v;
	else if (job == &n->take_job[2])
		n->taken.outbox = v;
	else
		n->taken.sockets = v;
	if (--n->take_left > 0)
		return;
	if (n->take_failed) {
		/* one batch, one transaction: nothing was taken; the lock is still ours, so again */
		n->take_failed = 0;
		n->state = N_WANT;
		ev_timer_start(n->loop, &n->retry);
		return;
	}
	n->state = N_HELD;
	n->held_once = 1;
	n->ev.claimed(n->ev.arg, &n->taken);
}

/* The predecessor's leases, in one pipeline (one transaction: the store's batch). */
static void take_back(struct node *n)
{
	static const struct store_stmt *const stmts[4] = {
		&recipient_stmt_take_back, &webhook_stmt_take_back, &smpp_server_stmt_take_back,
		&stmts_device_sockets_take_back,
	};
	n->state = N_TAKING;
	n->take_left = 4;
	n->take_failed = 0;
	memset(&n->taken, 0, sizeof(n->taken));
	for (int i = 0; i < 4; i++) {
		n->take_job[i] = (struct store_job){ .stmt = stmts[i], .nparams = 1, .params = n->params,
						     .done = take_done, .arg = n };
		store_submit(n->st, &n->take_job[i]);
	}
}

static void lock_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct node *n = job->arg;
	if (n->closing)
		return;
	if (err != STORE_OK) {
		if (err == STORE_SQL_ERROR)
			log_error("node", "ev=lock_failed err=\"%s\"", msg ? msg : "");
		n->state = N_WANT;
		ev_timer_start(n->loop, &n->retry);   /* or at the next connection */
		return;
	}
	if (strcmp(PQgetvalue(job->res, 0, 0), "t") == 0) {
		n->tries = 0;
		if (!n->held_once) {
			take_back(n);
		} else {
			n->state = N_HELD;
			log_info("node", "ev=name_held_again node=%s", n->name);
		}
		return;
	}
	if (n->held_once) {
		refuse(n, "another process took the name while this one's connection was down");
		return;
	}
	if (++n->tries >= CLAIM_TRIES) {
		refuse(n, "another live pushgated holds the name (set [server] node_name)");
		return;
	}
	log_warn("node", "ev=name_busy node=%s try=%d why=\"held by another live pushgated, or a dead one's session"
		 " that has not ended yet\"", n->name, n->tries);
	n->state = N_WANT;
	ev_timer_start(n->loop, &n->retry);
}

static void ask(struct node *n)
{
	if (n->state != N_WANT || !store_is_up(n->st))
		return;
	n->state = N_ASKING;
	n->lock_job = (struct store_job){ .stmt = &stmt_lock, .nparams = 1, .params = n->params,
					  .done = lock_done, .arg = n };
	store_submit(n->st, &n->lock_job);
}

/* Every (re)connection: a new session, so no lock until it is taken again. */
static void on_up(void *arg)
{
	struct node *n = arg;
	if (n->state == N_REFUSED)
		return;
	if (n->state == N_HELD)
		n->state = N_WANT;
	ask(n);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	ev_timer_stop(loop, w);
	ask(w->data);
}

struct node *node_new(struct ev_loop *loop, const struct store_config *sc, const char *name,
		      const struct node_events *ev)
{
	struct node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->st = store_new(loop, sc);
	if (!n->st) {
		free(n);
		return NULL;
	}
	n->loop = loop;
	util_strlcpy(n->name, name, sizeof(n->name));
	n->params[0] = n->name;
	n->ev = *ev;
	n->state = N_WANT;
	ev_timer_init(&n->retry, retry_cb, 1.0, 0.);
	n->retry.data = n;
	store_on_up(n->st, on_up, n);
	return n;
}

void node_start(struct node *n)
{
	store_start(n->st);
}

void node_free(struct node *n)
{
	if (!n)
		return;
	n->closing = 1;
	ev_timer_stop(n->loop, &n->retry);
	store_free(n->st);   /* the lock goes with the session */
	free(n);
}
