/*
 * server.c: the SMSC role: customers' ESMEs bind to pushgate.
 *
 * Owns the listeners (plain and TLS, with the TLS server context; bound
 * when built, accepting from smpp_server_open), one connection per accepted
 * socket around a session.c session in server mode (the same FSM and codec
 * as the carrier-facing engine), the per-account runtime (binds, TPS
 * bucket), the binds, and the dispatch of what a bound ESME asks: submits,
 * long messages, query and cancel are submit.c's, the deliver_sm PDUs of
 * the outbox (receipts, MO) outbox.c's; their state lives in struct
 * smpp_server (server_int.h), which this file creates and frees.  A bind's
 * password is checked on authpool.c's threads (bounded queue); addresses
 * and system_ids that failed too often are locked out (ratelimit.c), and
 * connections that have not bound are capped.  Never blocks; never frees a
 * session inside one of its callbacks (closed connections are reaped by the
 * tick).
 */
#include "server.h"
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "authpool.h"
#include "intake.h"
#include "log.h"
#include "metrics.h"
#include "netio.h"
#include "passwd.h"
#include "ratelimit.h"
#include "session.h"
#include "util.h"


/* --- statements ------------------------------------------------------------------ */

static const struct store_stmt stmt_auth = {
	"smpps_auth",
	"SELECT s.id, s.account_id, s.password_hash, s.max_binds, s.window_size, s.tps,"
	" (s.allowed_sources IS NULL OR $2::inet <<= ANY(s.allowed_sources)), (s.disabled OR a.disabled)"
	" FROM smpp_accounts s JOIN accounts a ON a.id = s.account_id WHERE s.system_id = $1",
	2, 0,
};

/* --- connections ---------------------------------------------------------------------- */

void smpps_conn_unref(struct conn *c)
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

static void on_request(void *arg, const struct smpp_pdu *req)
{
	struct conn *c = arg;
	if (!c->acct) {
		smpps_answer_now(c, req, SMPP_ESME_RINVBNDSTS);
		return;
	}
	switch (req->hdr.command_id) {
	case SMPP_SUBMIT_SM:
	case SMPP_DATA_SM:
		smpps_handle_submit(c, req);
		return;
	case SMPP_QUERY_SM:
	case SMPP_CANCEL_SM:
		if (!c->can_tx) {
			smpps_answer_now(c, req, SMPP_ESME_RINVBNDSTS);
			return;
		}
		smpps_handle_query_cancel(c, req);
		return;
	default:
		log_warn("smpps", "conn=%s ev=unsupported cmd=%s", c->name, smpp_command_name(req->hdr.command_id));
		if (req->hdr.command_id == SMPP_DELIVER_SM)
			smpps_answer_now(c, req, SMPP_ESME_RINVCMDID);
		else {
			struct smpp_pdu nack;
			smpp_pdu_init(&nack, SMPP_GENERIC_NACK, req->hdr.sequence_number);
			nack.hdr.command_status = SMPP_ESME_RINVCMDID;
			smpp_session_send(c->s, &nack);
		}
	}
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
	struct smpp_session_cb cb = { NULL, on_down, smpps_on_resp, on_request, on_bind };
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
	smpps_outbox_updates(srv);
	smpps_outbox_lease(srv);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_server *srv = w->data;
	reap(srv);
	smpps_reasm_expire(srv, 0);
	smpps_outbox_updates(srv);
	smpps_outbox_lease(srv);
}

/* --- public -------------------------------------------------------------------------------------------- */

/* Unbinds the binds of an account (smpp_account_id 0) or of one login: their submits in flight are still answered. */
static unsigned unbind_where(struct smpp_server *srv, long long account_id, long long smpp_account_id)
{
	unsigned n = 0;
	for (struct conn *c = srv->conns; c; c = c->next) {
		if (c->closed || !c->acct || (smpp_account_id ? c->acct->id != smpp_account_id
							      : c->acct->account_id != account_id))
			continue;
		smpp_session_stop(c->s, 2.0);
		n++;
	}
	return n;
}

void smpp_server_account_disabled(struct smpp_server *srv, long long account_id)
{
	if (srv)
		log_info("smpps", "ev=account_disabled account=%lld binds_closed=%u", account_id,
			 unbind_where(srv, account_id, 0));
}

void smpp_server_login_disabled(struct smpp_server *srv, long long smpp_account_id)
{
	if (srv && smpp_account_id > 0)
		log_info("smpps", "ev=login_disabled smpp_account=%lld binds_closed=%u", smpp_account_id,
			 unbind_where(srv, 0, smpp_account_id));
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
	smpps_reasm_expire(srv, 1);   /* parts of a message never completed: refused, the ESME resends them */
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

void smpp_server_metrics(const struct smpp_server *srv, struct metrics_out *o)
{
	if (!srv)
		return;
	size_t bound = 0;
	for (const struct conn *c = srv->conns; c; c = c->next)
		bound += !c->closed && c->acct;
	metrics_one(o, "pushgate_smpps_binds", METRICS_GAUGE, "ESME binds open on this node", bound);
	metrics_one(o, "pushgate_smpps_submits_total", METRICS_COUNTER, "submit_sm from ESMEs stored and answered",
		    srv->c.submits);
	metrics_one(o, "pushgate_smpps_throttled_total", METRICS_COUNTER, "submit_sm answered ESME_RTHROTTLED",
		    srv->c.throttled);
	metrics_one(o, "pushgate_smpps_bind_refused_total", METRICS_COUNTER, "binds refused", srv->c.bind_refused);
	metrics_one(o, "pushgate_smpps_receipts_sent_total", METRICS_COUNTER, "receipts sent to ESMEs as deliver_sm",
		    srv->c.receipts_sent);
	metrics_one(o, "pushgate_smpps_deliver_sm_acked_total", METRICS_COUNTER, "deliver_sm an ESME acknowledged",
		    srv->c.receipts_acked);
	metrics_one(o, "pushgate_smpps_mo_received_total", METRICS_COUNTER, "mobile-originated messages for ESMEs",
		    srv->c.mo_received);
	metrics_one(o, "pushgate_smpps_unbound_refused_total", METRICS_COUNTER,
		    "connections refused beyond max_unbound", srv->c.unbound_refused);
	metrics_one(o, "pushgate_smpps_bind_locked_out_total", METRICS_COUNTER,
		    "binds refused while their address or system_id was locked out", srv->c.locked_out);
	metrics_one(o, "pushgate_smpps_bind_checks_busy_total", METRICS_COUNTER,
		    "binds refused because every password check was busy", srv->c.auth_busy);
	metrics_one(o, "pushgate_smpps_bind_checks_queued", METRICS_GAUGE, "password checks waiting for a thread",
		    srv->auth_pool ? authpool_queued(srv->auth_pool) : 0u);
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
		smpps_reasm_free(r);
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
	smpps_ogroup_reset(&srv->lease);
	smpps_ogroup_reset(&srv->ack);
	smpps_ogroup_reset(&srv->release);
	free(srv->acked);
	free(srv->released);
	ratelimit_free(srv->fail_ip);
	ratelimit_free(srv->fail_sys);
	SSL_CTX_free(srv->tls);
	free(srv);
}
