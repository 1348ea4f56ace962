/*
 * push.c: the push channel.  Owns the devices' WebSocket connections of
 * this process (docs/device-protocol.md), a map MSISDN -> connections, and
 * the groups it sends to PostgreSQL: device authentications, fetches of
 * pending pushes (on connect, and for message ids announced by NOTIFY
 * pushgate_push from any node), acks, and which devices hold a socket here
 * (devices.socket_node: set when one authenticates, cleared when its last
 * socket here closes; platform push, wake.c, wakes the others).  A push goes to every live device of
 * the number; the first ack moves the recipient to PUSH_DELIVERED.  Rejects
 * and allows are answered only after they are committed.  Connections are
 * kept small (no buffers while idle); a connection referenced by a group in
 * flight is freed only when the group is done with it.  Never blocks.
 */
#include "push.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "keys.h"
#include "ipcount.h"
#include "log.h"
#include "metrics.h"
#include "pgarr.h"
#include "recipient.h"
#include "stmts.h"
#include "util.h"
#include "ws.h"

#define HELLO_TIMEOUT  10.0
#define FLUSH_INTERVAL 0.002
#define BATCH_MAX      2000
#define MAP_BITS       16

enum dc_state { DC_HELLO, DC_AUTHING, DC_READY, DC_CLOSED };

/* One device connection.  Freed when closed and no group refers to it. */
struct dconn {
	struct push   *p;
	struct ws_conn *ws;
	enum dc_state  state;
	unsigned       refs;
	long long      device_id;
	char           msisdn[21];
	struct dconn  *next;            /* same bucket of the MSISDN map */
	struct dconn  *all_prev, *all_next;   /* every open connection */
	struct ipcount_entry *ipc;      /* its client address in the counts */
	ev_timer       hello_timer;
};

/* A list of items turned into one statement; at most one in flight per kind. */
struct group {
	struct push             *p;
	const struct store_stmt *stmt;
	void                   (*done)(struct group *b, PGresult *res);
	int                      in_flight;
	int                      retry;
	const char              *node;           /* when set: the statement's last parameter, this node's name */
	struct pgarr             a[3];           /* accumulating */
	struct dconn           **conns;          /* accumulating (auth: one per item) */
	size_t                   n_conns, cap_conns;
	char                    *lit[3];         /* in flight */
	const char              *params[3];
	struct dconn           **sent_conns;
	size_t                   n_sent;
	struct store_job         job;
};

/* One reject or allow, answered after its commit. */
struct optjob {
	struct store_job job;
	struct dconn    *c;
	int              reject;
	char             sender[21];
	char             p_dev[24];
	const char      *params[3];
};

struct push {
	struct metrics_histogram final_latency;   /* intake to PUSH_DELIVERED, of the acks recorded here */
	struct ev_loop      *loop;
	struct store        *store;
	const struct config *cfg;
	struct dconn        *map[1u << MAP_BITS];
	struct dconn        *all;
	size_t               n_conns, n_ready;
	struct ipcount      *ips;          /* device connections per client address */
	struct group         auth, pending, notified, acks, gone;
	char                 node[96];
	struct store_job     listen_job;
	int                  listen_in_flight;
	ev_timer             flush;
	uint64_t             sent, acked, rejects, allows, bad_frames;
};

static const struct store_stmt stmt_listen = { "listen", "LISTEN pushgate_push", 0, 1 };

/* --- connections and the MSISDN map ------------------------------------------------ */

static unsigned map_slot(const char *msisdn)
{
	uint32_t h = 2166136261u;
	for (const char *s = msisdn; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h & ((1u << MAP_BITS) - 1);
}

static void map_add(struct push *p, struct dconn *c)
{
	unsigned i = map_slot(c->msisdn);
	c->next = p->map[i];
	p->map[i] = c;
	p->n_ready++;
}

static void map_remove(struct push *p, struct dconn *c)
{
	struct dconn **pp = &p->map[map_slot(c->msisdn)];
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = c->next;
		p->n_ready--;
	}
}

static void conn_unref(struct dconn *c)
{
	if (--c->refs == 0 && c->state == DC_CLOSED)
		free(c);
}

static void send_json(struct dconn *c, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (text && c->state != DC_CLOSED)
		ws_send_text(c->ws, text, strlen(text));
	free(text);
}

/* --- groups ---------------------------------------------------------------------- */

static void group_job_done(struct store_job *job, enum store_error e, const char *err);
static void flush_all(struct push *p);

static void group_init(struct group *b, struct push *p, const struct store_stmt *stmt,
		       void (*done)(struct group *, PGresult *), int retry)
{
	memset(b, 0, sizeof(*b));
	b->p = p;
	b->stmt = stmt;
	b->done = done;
	b->retry = retry;
}

static int group_keep_conn(struct group *b, struct dconn *c)
{
	if (b->n_conns == b->cap_conns) {
		size_t cap = b->cap_conns ? b->cap_conns * 2 : 64;
		struct dconn **n = realloc(b->conns, cap * sizeof(*n));
		if (!n)
			return -1;
		b->conns = n;
		b->cap_conns = cap;
	}
	b->conns[b->n_conns++] = c;
	c->refs++;
	return 0;
}

static void group_send(struct group *b)
{
	struct push *p = b->p;
	if (b->in_flight || b->a[0].n == 0 || !store_is_up(p->store))
		return;
	int nparams = b->stmt->nparams;
	int oom = 0;
	for (int i = 0; i < nparams - (b->node != NULL); i++) {
		b->lit[i] = pgarr_take(&b->a[i]);
		oom |= b->lit[i] == NULL;
		b->params[i] = b->lit[i];
	}
	if (b->node)
		b->params[nparams - 1] = b->node;
	b->sent_conns = b->conns;
	b->n_sent = b->n_conns;
	b->conns = NULL;
	b->n_conns = b->cap_conns = 0;
	b->in_flight = 1;
	b->job = (struct store_job){ .stmt = b->stmt, .nparams = nparams, .params = b->params,
				     .done = group_job_done, .arg = b, .retry = b->retry };
	if (oom) {
		group_job_done(&b->job, STORE_SQL_ERROR, "out of memory");
		return;
	}
	store_submit(p->store, &b->job);
}

static void group_job_done(struct store_job *job, enum store_error e, const char *err)
{
	struct group *b = job->arg;
	if (e != STORE_OK && e != STORE_UNAVAILABLE)
		log_error("push", "ev=group_failed stmt=%s err=\"%s\"", b->stmt->name, err ? err : "");
	b->done(b, e == STORE_OK ? job->res : NULL);
	for (int i = 0; i < 3; i++) {
		free(b->lit[i]);
		b->lit[i] = NULL;
	}
	for (size_t i = 0; i < b->n_sent; i++)
		conn_unref(b->sent_conns[i]);
	free(b->sent_conns);
	b->sent_conns = NULL;
	b->n_sent = 0;
	b->in_flight = 0;
	flush_all(b->p);
}

static void group_drop(struct group *b)
{
	for (int i = 0; i < 3; i++)
		pgarr_reset(&b->a[i]);
	for (size_t i = 0; i < b->n_conns; i++)
		conn_unref(b->conns[i]);
	free(b->conns);
	b->conns = NULL;
	b->n_conns = b->cap_conns = 0;
}

static void flush_all(struct push *p)
{
	group_send(&p->auth);
	group_send(&p->pending);
	group_send(&p->notified);
	group_send(&p->acks);
	group_send(&p->gone);
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	flush_all(w->data);
}

/* --- deliveries -------------------------------------------------------------------- */

/* Rows (recipient id, msisdn, sender, body, sent_at): to every live device of the number. */
static void deliver_rows(struct push *p, PGresult *res)
{
	if (!res)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *msisdn = PQgetvalue(res, i, 1);
		struct dconn *c = p->map[map_slot(msisdn)];
		json_t *msg = NULL;
		for (; c; c = c->next) {
			if (c->state != DC_READY || strcmp(c->msisdn, msisdn) != 0)
				continue;
			if (!msg) {
				const char *sender = PQgetvalue(res, i, 2);
				msg = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "type", "msg",
						"id", (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10),
						"sender", sender, "sender_name", sender, "text", PQgetvalue(res, i, 3),
						"folder", sender, "sent_at", PQgetvalue(res, i, 4));
				if (!msg)
					break;
			}
			json_incref(msg);
			send_json(c, msg);
			p->sent++;
		}
		json_decref(msg);
	}
}

static void pending_done(struct group *b, PGresult *res)
{
	deliver_rows(b->p, res);
}

static void auth_done(struct group *b, PGresult *res)
{
	struct push *p = b->p;
	/* rows: ordinal (1-based, into sent_conns), device id, msisdn */
	char *ok = calloc(b->n_sent + 1, 1);
	for (int i = 0; res && ok && i < PQntuples(res); i++) {
		long ord = strtol(PQgetvalue(res, i, 0), NULL, 10);
		if (ord < 1 || (size_t)ord > b->n_sent)
			continue;
		struct dconn *c = b->sent_conns[ord - 1];
		ok[ord] = 1;
		if (c->state != DC_AUTHING)
			continue;
		c->device_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		util_strlcpy(c->msisdn, PQgetvalue(res, i, 2), sizeof(c->msisdn));
		c->state = DC_READY;
		map_add(p, c);
		send_json(c, json_pack("{s:s, s:I, s:s, s:f}", "type", "welcome", "device_id",
				       (json_int_t)c->device_id, "msisdn", c->msisdn, "heartbeat",
				       p->cfg->push_heartbeat));
		pgarr_text(&p->pending.a[0], c->msisdn);
		log_debug("push", "ev=device_ready device=%lld msisdn=%s peer=%s", c->device_id, c->msisdn,
			  ws_peer(c->ws));
	}
	for (size_t k = 0; k < b->n_sent; k++) {
		struct dconn *c = b->sent_conns[k];
		if (c->state != DC_AUTHING)
			continue;
		if (!res) {
			/* database unavailable: the device retries later */
			ws_close(c->ws, 1013, "try again later");
		} else if (!ok || !ok[k + 1]) {
			log_info("push", "ev=auth_refused peer=%s", ws_peer(c->ws));
			ws_close(c->ws, 1008, "invalid token");
		}
	}
	free(ok);
}

static void acks_done(struct group *b, PGresult *res)
{
	if (res) {
		b->p->acked += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		metrics_observe_pgarray(&b->p->final_latency, PQgetvalue(res, 0, 1));
	}
}

static void gone_done(struct group *b, PGresult *res)
{
	(void)b; (void)res;
}

/* --- frames from devices ---------------------------------------------------------------- */

static void opt_done(struct store_job *job, enum store_error e, const char *err)
{
	struct optjob *o = job->arg;
	struct dconn *c = o->c;
	if (e != STORE_OK) {
		if (e == STORE_SQL_ERROR)
			log_error("push", "ev=opt_failed err=\"%s\"", err ? err : "");
		send_json(c, json_pack("{s:s, s:s, s:s}", "type", "error", "code", "unavailable", "message",
				       "not recorded, send it again later"));
	} else {
		send_json(c, json_pack("{s:s, s:s}", "type", o->reject ? "rejected" : "allowed", "sender", o->sender));
		log_info("push", "ev=%s device=%lld msisdn=%s sender=\"%s\" moved=%s", o->reject ? "reject" : "allow",
			 c->device_id, c->msisdn, o->sender, PQgetvalue(job->res, 0, 0));
	}
	conn_unref(c);
	free(o);
}

static void on_opt(struct dconn *c, int reject, const char *sender)
{
	struct push *p = c->p;
	struct optjob *o = calloc(1, sizeof(*o));
	if (!o)
		return;
	o->c = c;
	c->refs++;
	o->reject = reject;
	util_strlcpy(o->sender, sender, sizeof(o->sender));
	snprintf(o->p_dev, sizeof(o->p_dev), "%lld", c->device_id);
	o->params[0] = c->msisdn;
	o->params[1] = o->sender;
	o->params[2] = o->p_dev;
	if (reject)
		p->rejects++;
	else
		p->allows++;
	o->job = (struct store_job){ .stmt = reject ? &recipient_stmt_push_reject : &stmts_push_allow,
				     .nparams = 3, .params = o->params, .done = opt_done, .arg = o };
	store_submit(p->store, &o->job);
}

static void bad_frame(struct dconn *c, int code, const char *why)
{
	c->p->bad_frames++;
	log_debug("push", "ev=bad_frame peer=%s why=\"%s\"", ws_peer(c->ws), why);
	ws_close(c->ws, code, why);
}

static void on_text(struct ws_conn *ws, const char *data, size_t len, void *arg)
{
	struct dconn *c = arg;   /* may run inside ws_accept, before it returned ws */
	struct push *p = c->p;
	c->ws = ws;
	json_error_t jerr;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *type = root ? json_string_value(json_object_get(root, "type")) : NULL;
	if (!type) {
		bad_frame(c, 1007, root ? "no type" : "not JSON");
		json_decref(root);
		return;
	}
	if (c->state == DC_HELLO) {
		const char *token = json_string_value(json_object_get(root, "token"));
		if (strcmp(type, "hello") != 0 || !token || strlen(token) > 256) {
			bad_frame(c, 1008, "hello with a token first");
		} else {
			unsigned char h[KEYS_HASH_LEN];
			char hex[2 * KEYS_HASH_LEN + 1];
			keys_hash(token, strlen(token), h);
			for (int i = 0; i < KEYS_HASH_LEN; i++)
				snprintf(hex + 2 * i, 3, "%02x", h[i]);
			ev_timer_stop(p->loop, &c->hello_timer);
			c->state = DC_AUTHING;
			pgarr_text(&p->auth.a[0], hex);
			group_keep_conn(&p->auth, c);
		}
	} else if (c->state != DC_READY) {
		bad_frame(c, 1008, "wait for welcome");
	} else if (strcmp(type, "ack") == 0) {
		json_t *id = json_object_get(root, "id");
		if (!json_is_integer(id) || json_integer_value(id) <= 0) {
			send_json(c, json_pack("{s:s, s:s, s:s}", "type", "error", "code", "invalid_field",
					       "message", "ack needs a positive integer id"));
		} else {
			pgarr_num(&p->acks.a[0], json_integer_value(id), 0);
			pgarr_num(&p->acks.a[1], c->device_id, 0);
		}
	} else if (strcmp(type, "reject") == 0 || strcmp(type, "allow") == 0) {
		const char *sender = json_string_value(json_object_get(root, "sender"));
		if (!sender || !util_valid_sender(sender))
			send_json(c, json_pack("{s:s, s:s, s:s}", "type", "error", "code", "invalid_field",
					       "message", "sender must be 1 to 20 printable ASCII characters"));
		else
			on_opt(c, type[0] == 'r', sender);
	} else if (strcmp(type, "ping") == 0) {
		send_json(c, json_pack("{s:s}", "type", "pong"));
	} else {
		bad_frame(c, 1007, "unknown type");
	}
	json_decref(root);
	if (p->auth.a[0].n >= BATCH_MAX || p->acks.a[0].n >= BATCH_MAX)
		flush_all(p);
}

static void on_close(struct ws_conn *ws, int code, void *arg)
{
	(void)ws;
	struct dconn *c = arg;
	struct push *p = c->p;
	if (c->state == DC_READY) {
		map_remove(p, c);
		/* its last socket here: the device has none now (platform push may wake it) */
		struct dconn *o = p->map[map_slot(c->msisdn)];
		while (o && !(o->state == DC_READY && o->device_id == c->device_id))
			o = o->next;
		if (!o)
			pgarr_num(&p->gone.a[0], c->device_id, 0);
	}
	ev_timer_stop(p->loop, &c->hello_timer);
	if (c->all_prev)
		c->all_prev->all_next = c->all_next;
	else
		p->all = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;
	log_debug("push", "ev=device_gone device=%lld code=%d", c->device_id, code);
	c->state = DC_CLOSED;
	c->ws = NULL;
	p->n_conns--;
	ipcount_release(p->ips, c->ipc);
	c->ipc = NULL;
	c->refs++;
	conn_unref(c);
}

static void hello_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct dconn *c = w->data;
	if (c->state == DC_HELLO)
		bad_frame(c, 1008, "no hello in time");
}

/* --- public -------------------------------------------------------------------------------- */

void push_accept(struct push *p, struct http_request *req)
{
	/* device connections outlive their HTTP request: counted and capped here, overall and per address */
	char ip[48];
	ipcount_addr_of(req->peer, ip, sizeof(ip));
	struct ipcount_entry *ipc = p->n_conns < p->cfg->push_max_connections
		? ipcount_take(p->ips, ip, (unsigned)p->cfg->push_max_connections_per_ip) : NULL;
	if (!ipc) {
		static const char busy[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many device connections\"}}";
		log_warn("push", "ev=device_conn_refused peer=%s conns=%zu", req->peer, p->n_conns);
		http_respond(req, 503, "Retry-After: 30\r\n", busy, sizeof(busy) - 1);
		return;
	}
	struct dconn *c = calloc(1, sizeof(*c));
	if (!c) {
		ipcount_release(p->ips, ipc);
		http_respond(req, 503, "Retry-After: 1\r\n",
			     "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}", 61);
		return;
	}
	c->ipc = ipc;
	struct ws_config wc = { .max_message = 65536, .ping_interval = p->cfg->push_heartbeat,
				.idle_timeout = 3 * p->cfg->push_heartbeat };
	struct ws_callbacks cb = { on_text, on_close };
	c->p = p;
	c->state = DC_HELLO;
	c->refs = 1;   /* held across ws_accept, which may already deliver frames */
	c->all_next = p->all;
	if (p->all)
		p->all->all_prev = c;
	p->all = c;
	ev_timer_init(&c->hello_timer, hello_timeout_cb, HELLO_TIMEOUT, 0.);
	c->hello_timer.data = c;
	p->n_conns++;
	struct ws_conn *ws = ws_accept(p->loop, req, &wc, &cb, c);
	if (!ws) {
		p->n_conns--;
		ipcount_release(p->ips, c->ipc);
		p->all = c->all_next;
		if (p->all)
			p->all->all_prev = NULL;
		free(c);
		return;
	}
	if (c->state != DC_CLOSED) {
		c->ws = ws;
		ws_set_user(ws, c);
		if (c->state == DC_HELLO)
			ev_timer_start(p->loop, &c->hello_timer);
	}
	conn_unref(c);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct push *p = arg;
	if (strcmp(channel, "pushgate_push") != 0 || p->n_ready == 0)
		return;
	long id;
	if (util_parse_long(payload, 1, 0x7fffffffffffffffL, &id) == 0)
		pgarr_num(&p->notified.a[0], id, 0);
}

static void listen_done(struct store_job *job, enum store_error e, const char *err)
{
	struct push *p = job->arg;
	p->listen_in_flight = 0;
	if (e == STORE_SQL_ERROR)
		log_error("push", "ev=listen_failed err=\"%s\"", err ? err : "");
}

void push_on_store_up(struct push *p)
{
	if (!p->listen_in_flight) {
		p->listen_in_flight = 1;
		p->listen_job = (struct store_job){ .stmt = &stmt_listen, .done = listen_done, .arg = p, .retry = 1 };
		store_submit(p->store, &p->listen_job);
	}
	/* whatever was announced while the link was down: ask again for every connected number */
	for (unsigned i = 0; i < (1u << MAP_BITS); i++)
		for (struct dconn *c = p->map[i]; c; c = c->next)
			if (c->state == DC_READY)
				pgarr_text(&p->pending.a[0], c->msisdn);
}

/* ws_close may call on_close at once, which unlinks (and may free) c: walk with the next in hand. */
static void close_where(struct push *p, long long device_id, int all, int code, const char *why)
{
	struct dconn *c = p->all;
	while (c) {
		struct dconn *next = c->all_next;
		if (c->ws && (all || (c->state == DC_READY && c->device_id == device_id)))
			ws_close(c->ws, code, why);
		c = next;
	}
}

void push_device_revoked(struct push *p, long long device_id)
{
	close_where(p, device_id, 0, 1008, "device revoked");
}

int push_device_connected(const struct push *p, long long device_id)
{
	for (unsigned i = 0; i < (1u << MAP_BITS); i++)
		for (struct dconn *c = p->map[i]; c; c = c->next)
			if (c->device_id == device_id && c->state == DC_READY)
				return 1;
	return 0;
}

void push_close_all(struct push *p)
{
	close_where(p, 0, 1, 1001, "server going away");
}

size_t push_open(const struct push *p)
{
	return p->n_conns;
}

const struct metrics_histogram *push_final_latency(const struct push *p)
{
	return p ? &p->final_latency : NULL;
}

void push_metrics(const struct push *p, struct metrics_out *o)
{
	if (!p)
		return;
	metrics_one(o, "pushgate_push_connections", METRICS_GAUGE, "device WebSocket connections open on this node",
		    p->n_conns);
	metrics_one(o, "pushgate_push_devices_ready", METRICS_GAUGE, "devices connected and ready for pushes",
		    p->n_ready);
	metrics_one(o, "pushgate_push_sent_total", METRICS_COUNTER, "pushes written to a device socket", p->sent);
	metrics_one(o, "pushgate_push_acked_total", METRICS_COUNTER, "pushes a device acknowledged", p->acked);
	metrics_one(o, "pushgate_push_rejects_total", METRICS_COUNTER, "senders a device's user rejected", p->rejects);
	metrics_one(o, "pushgate_push_allows_total", METRICS_COUNTER, "senders a device's user allowed again",
		    p->allows);
	metrics_one(o, "pushgate_push_bad_frames_total", METRICS_COUNTER, "device frames refused as malformed",
		    p->bad_frames);
}

struct push *push_new(struct ev_loop *loop, struct store *store, const struct config *cfg, const char *node)
{
	struct push *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->loop = loop;
	p->store = store;
	p->cfg = cfg;
	metrics_histogram_init(&p->final_latency, &metrics_final_bounds);
	if (!(p->ips = ipcount_new())) {
		free(p);
		return NULL;
	}
	group_init(&p->auth, p, &stmts_device_auth, auth_done, 0);
	group_init(&p->pending, p, &stmts_push_pending, pending_done, 0);
	group_init(&p->notified, p, &stmts_push_of_messages, pending_done, 0);
	group_init(&p->acks, p, &recipient_stmt_push_acks, acks_done, 1);
	group_init(&p->gone, p, &stmts_device_sockets_gone, gone_done, 1);
	util_strlcpy(p->node, node, sizeof(p->node));
	p->auth.node = p->node;
	p->gone.node = p->node;
	store_on_notify(store, on_notify, p);
	ev_timer_init(&p->flush, flush_cb, FLUSH_INTERVAL, FLUSH_INTERVAL);
	p->flush.data = p;
	ev_timer_start(loop, &p->flush);
	return p;
}

void push_free(struct push *p)
{
	if (!p)
		return;
	ev_timer_stop(p->loop, &p->flush);
	group_drop(&p->auth);
	group_drop(&p->pending);
	group_drop(&p->notified);
	group_drop(&p->acks);
	group_drop(&p->gone);
	ipcount_free(p->ips);
	free(p);
}
