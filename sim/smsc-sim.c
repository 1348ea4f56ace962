/*
 * smsc-sim.c: a small SMSC that stands in for a carrier in the demo and in
 * the integration tests.  Accepts many ESME binds (libev, nonblocking
 * sockets; TLS with --tls-cert/--tls-key, handshake per connection on the
 * same watchers), answers submit_sm with a unique message id, and after a delay
 * sends the appendix-B delivery receipt on a receiver-capable bind of the
 * same system_id, keeping receipts in memory while no receiver is bound and
 * retrying those whose deliver_sm_resp does not come.  Outcomes are chosen by
 * destination suffix rules; failure rules (throttling, queue full, no
 * answer, duplicate, early or intermediate receipts, hex/decimal id mix-ups)
 * and link-level faults (--drop-after, --max-binds, --tps, --resp-delay-ms)
 * let the engine's
 * tests provoke what real carriers do.
 * Owns: its sockets, per-connection input/output buffers, every receipt,
 * deferred responses and per-destination rule counters.
 * Uses only smpp/codec.h and src/netio.h (listener, TLS context) from
 * pushgate.  Never loses a receipt because a peer reads slowly (input is
 * paused instead), never trusts a byte from the network, logs one key=value
 * line per event.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* accept4, gmtime_r */
#endif
#include "codec.h"
#include "netio.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define OUT_HIGH_WATER   (1u << 20)   /* stop reading from a peer above this */
#define OUT_HARD_LIMIT   (64u << 20)  /* a peer this far behind is closed */
#define RECEIPT_TIMEOUT  10.0         /* seconds to wait for deliver_sm_resp */
#define RECEIPT_RETRY    1.0          /* after a deliver_sm_resp with an error */
#define RECEIPT_TRIES    3
#define MAX_RULES        64
#define READS_PER_EVENT  16
#define EARLY_RESP_DELAY 0.2          /* EARLY: submit_sm_resp after the receipt */
#define DUP_DELAY        0.05         /* DUP: second copy of the receipt */
#define DST_BUCKETS      1024
#define DST_MAX          1000000u     /* counted destinations; beyond, rules pass */

/*
 * What a rule does with a submit.  The first five also name a receipt's stat
 * (O_ENROUTE too, for the intermediate receipt); the others end in DELIVRD.
 */
enum outcome {
	O_DELIVRD, O_UNDELIV, O_REJECTD, O_EXPIRED, O_NORECEIPT, O_RESP,
	O_THROTTLE, O_QFULL, O_NORESP, O_DUP, O_EARLY, O_ENROUTE, O_HEXDEC,
};

static const struct { const char *stat; const char *err; uint8_t state; } outcome_info[] = {
	[O_DELIVRD]   = { "DELIVRD", "000", SMPP_STATE_DELIVERED },
	[O_UNDELIV]   = { "UNDELIV", "001", SMPP_STATE_UNDELIVERABLE },
	[O_REJECTD]   = { "REJECTD", "002", SMPP_STATE_REJECTED },
	[O_EXPIRED]   = { "EXPIRED", "003", SMPP_STATE_EXPIRED },
	[O_NORECEIPT] = { "NORECEIPT", "000", SMPP_STATE_NONE },
	[O_RESP]      = { "RESP", "000", SMPP_STATE_NONE },
	[O_THROTTLE]  = { "THROTTLE", "000", SMPP_STATE_NONE },
	[O_QFULL]     = { "QFULL", "000", SMPP_STATE_NONE },
	[O_NORESP]    = { "NORESP", "000", SMPP_STATE_NONE },
	[O_DUP]       = { "DUP", "000", SMPP_STATE_NONE },
	[O_EARLY]     = { "EARLY", "000", SMPP_STATE_NONE },
	[O_ENROUTE]   = { "ENROUTE", "000", SMPP_STATE_ENROUTE },
	[O_HEXDEC]    = { "HEXDEC", "000", SMPP_STATE_NONE },
};

struct rule {
	char         suffix[21];
	size_t       len;
	enum outcome outcome;
	uint32_t     status;   /* O_RESP, O_THROTTLE, O_QFULL */
	uint32_t     count;    /* O_THROTTLE, O_QFULL: refusals per destination */
};

/* How many submits a THROTTLE/QFULL rule refused for one destination. */
struct dst_count {
	struct dst_count *next;
	uint32_t          refused;
	char              dst[21];
};

/* A submit_sm_resp held back (EARLY, --resp-delay-ms).  Owned by the sim's deferred list. */
struct deferred_resp {
	struct deferred_resp *next;
	double    at;
	uint32_t  slot, gen, seq;
	char      message_id[65];
};

enum bind_mode { BIND_NONE, BIND_TX, BIND_RX, BIND_TRX };
static const char *const mode_name[] = { "none", "tx", "rx", "trx" };

struct conn;

/* One receipt; it sits in exactly one rq at a time.  Owned by the sim. */
struct receipt {
	struct receipt *prev, *next;
	uint64_t     id;
	char         system_id[16];
	uint32_t     origin_slot, origin_gen;
	struct conn *conn;      /* in flight on this connection */
	uint32_t     seq;       /* its deliver_sm sequence number */
	double       at;        /* due time when scheduled, send time in flight */
	uint8_t      tries;
	uint8_t      outcome;   /* the stat it carries: O_DELIVRD..O_EXPIRED, O_ENROUTE */
	uint8_t      id_hex;    /* receipt id format */
	uint8_t      copy;      /* DUP: 1 for the second copy */
	uint8_t      src_ton, src_npi, dst_ton, dst_npi;
	char         src[21], dst[21];
	char         submit_date[11], done_date[11];
	char         text[21];
};

struct rq { struct receipt *head, *tail; size_t n; };

/* One peer.  Owned by the sim's slot table; freed by conn_close(). */
struct conn {
	struct sim    *sim;
	int            fd;
	uint32_t       slot, gen;
	ev_io          rio, wio;
	uint8_t       *in;
	size_t         in_len;
	uint8_t       *out;
	size_t         out_off, out_len, out_cap;
	enum bind_mode mode;
	char           system_id[16];
	uint32_t       next_seq;
	struct rq      inflight;   /* by send time */
	int            closing;    /* stop reading, close once out is drained */
	int            dropping;   /* --drop-after hit: close without waiting */
	uint32_t       n_submits;  /* submit_sm received while bound */
	double         tokens, tokens_at;   /* --tps bucket */
	char           peer[64];
	SSL           *ssl;        /* --tls-cert: this connection's TLS; freed by conn_close() */
	int            tls_up;     /* handshake done */
	int            tls_failed; /* fatal TLS error: no close_notify */
	int            tls_rd_wants_write, tls_wr_wants_read;
};

struct sim {
	struct ev_loop *loop;
	FILE          *log;
	int            lfd;
	ev_io          accept_io;
	ev_timer       sched_timer, sweep_timer;
	ev_signal      sigterm, sigint, sigusr1;
	ev_timer       deferred_timer;
	ev_prepare     flush_prep;

	const char    *system_id, *password;   /* NULL = accept any */
	double         dlr_delay;
	double         resp_delay;         /* --resp-delay-ms: every accepted submit's resp held back */
	int            id_hex, receipt_id_hex, receipt_tlvs;
	struct rule    rules[MAX_RULES];
	unsigned       n_rules;

	uint64_t       next_id;
	struct conn  **slots;
	uint32_t       n_slots, slot_gen, rr;

	struct rq      delay_q, retry_q, parked;
	uint64_t       submits, receipts;

	uint32_t       drop_after;         /* 0 = never */
	int            drop_every, dropped;
	uint32_t       max_binds;          /* 0 = unlimited */
	uint32_t       n_bound;            /* connections bound now */
	uint64_t       bind_total;         /* successful binds since start */
	double         tps;                /* 0 = unlimited */
	struct dst_count *dst_counts[DST_BUCKETS];
	size_t         n_dst_counts;
	struct deferred_resp *deferred_head, *deferred_tail;
	SSL_CTX       *tls;                /* --tls-cert/--tls-key: every connection speaks TLS */
};

/* ---- small helpers ------------------------------------------------------- */

static void rq_push(struct rq *q, struct receipt *r)
{
	r->next = NULL;
	r->prev = q->tail;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n++;
}

/* Keeps q ordered by `at`; a new receipt usually goes last, so this is cheap. */
static void rq_insert_sorted(struct rq *q, struct receipt *r)
{
	struct receipt *after = q->tail;
	while (after && after->at > r->at)
		after = after->prev;
	r->prev = after;
	r->next = after ? after->next : q->head;
	if (r->next)
		r->next->prev = r;
	else
		q->tail = r;
	if (after)
		after->next = r;
	else
		q->head = r;
	q->n++;
}

static void rq_remove(struct rq *q, struct receipt *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		q->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		q->tail = r->prev;
	r->prev = r->next = NULL;
	q->n--;
}

static struct receipt *rq_pop(struct rq *q)
{
	struct receipt *r = q->head;
	if (r)
		rq_remove(q, r);
	return r;
}

static void rq_free_all(struct rq *q)
{
	struct receipt *r;
	while ((r = rq_pop(q)) != NULL)
		free(r);
}

/* Untrusted text made safe for one key=value log field. */
static const char *safe(const char *s, char *buf, size_t cap)
{
	size_t i = 0;
	for (; s[i] && i + 1 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[i] = (ch > 0x20 && ch < 0x7f && ch != '=') ? (char)ch : '?';
	}
	buf[i] = '\0';
	if (i == 0 && cap > 1) {
		buf[0] = '-';
		buf[1] = '\0';
	}
	return buf;
}

static void sim_log(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sim_log(struct sim *s, const char *fmt, ...)
{
	va_list ap;
	fprintf(s->log, "ts=%.3f ", ev_now(s->loop));
	va_start(ap, fmt);
	vfprintf(s->log, fmt, ap);
	va_end(ap);
	fputc('\n', s->log);
}

static void date_yymmddhhmm(double t, char out[11])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	const int v[5] = { tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min };
	for (int i = 0; i < 5; i++) {
		unsigned u = (unsigned)v[i] % 100u;
		out[2 * i] = (char)('0' + u / 10);
		out[2 * i + 1] = (char)('0' + u % 10);
	}
	out[10] = '\0';
}

static void format_id(uint64_t id, int hex, char out[21])
{
	snprintf(out, 21, hex ? "%" PRIx64 : "%" PRIu64, id);
}

/* ---- rules --------------------------------------------------------------- */

static int rule_set(struct sim *s, const char *suffix, const char *outcome)
{
	struct rule r;
	memset(&r, 0, sizeof(r));
	r.len = strlen(suffix);
	if (r.len >= sizeof(r.suffix))
		return -1;
	memcpy(r.suffix, suffix, r.len + 1);
	if (strcmp(outcome, "DELIVRD") == 0) r.outcome = O_DELIVRD;
	else if (strcmp(outcome, "UNDELIV") == 0) r.outcome = O_UNDELIV;
	else if (strcmp(outcome, "REJECTD") == 0) r.outcome = O_REJECTD;
	else if (strcmp(outcome, "EXPIRED") == 0) r.outcome = O_EXPIRED;
	else if (strcmp(outcome, "NORECEIPT") == 0) r.outcome = O_NORECEIPT;
	else if (strcmp(outcome, "NORESP") == 0) r.outcome = O_NORESP;
	else if (strcmp(outcome, "DUP") == 0) r.outcome = O_DUP;
	else if (strcmp(outcome, "EARLY") == 0) r.outcome = O_EARLY;
	else if (strcmp(outcome, "ENROUTE") == 0) r.outcome = O_ENROUTE;
	else if (strcmp(outcome, "HEXDEC") == 0) r.outcome = O_HEXDEC;
	else if (strncmp(outcome, "THROTTLE:", 9) == 0 || strncmp(outcome, "QFULL:", 6) == 0) {
		int thr = outcome[0] == 'T';
		const char *num = outcome + (thr ? 9 : 6);
		char *end;
		errno = 0;
		unsigned long v = strtoul(num, &end, 10);
		if (errno || end == num || *end || *num == '-' || v > 0xffffffffUL)
			return -1;
		r.outcome = thr ? O_THROTTLE : O_QFULL;
		r.status = thr ? SMPP_ESME_RTHROTTLED : SMPP_ESME_RMSGQFUL;
		r.count = (uint32_t)v;
	} else if (strncmp(outcome, "RESP:", 5) == 0) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(outcome + 5, &end, 16);
		if (errno || end == outcome + 5 || *end || v == 0 || v > 0xffffffffUL)
			return -1;
		r.outcome = O_RESP;
		r.status = (uint32_t)v;
	} else {
		return -1;
	}
	for (unsigned i = 0; i < s->n_rules; i++)
		if (strcmp(s->rules[i].suffix, r.suffix) == 0) {
			s->rules[i] = r;
			return 0;
		}
	if (s->n_rules >= MAX_RULES)
		return -1;
	s->rules[s->n_rules++] = r;
	return 0;
}

static const struct rule *rule_for(const struct sim *s, const char *dst)
{
	size_t dl = strlen(dst);
	const struct rule *best = NULL;
	for (unsigned i = 0; i < s->n_rules; i++) {
		const struct rule *r = &s->rules[i];
		if (r->len <= dl && memcmp(dst + dl - r->len, r->suffix, r->len) == 0 &&
		    (best == NULL || r->len > best->len))
			best = r;
	}
	return best;
}

/*
 * Counts one more refusal for `dst` under a THROTTLE/QFULL rule; returns 1
 * while the destination is still within its first `limit` submits (refuse),
 * 0 once past them (accept).
 */
static int dst_refuse(struct sim *s, const char *dst, uint32_t limit)
{
	uint32_t h = 2166136261u;
	for (const char *p = dst; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	struct dst_count **head = &s->dst_counts[h % DST_BUCKETS], *d;
	for (d = *head; d; d = d->next)
		if (strcmp(d->dst, dst) == 0)
			break;
	if (d == NULL) {
		if (limit == 0 || s->n_dst_counts >= DST_MAX ||
		    (d = calloc(1, sizeof(*d))) == NULL)
			return 0;
		snprintf(d->dst, sizeof(d->dst), "%s", dst);
		d->next = *head;
		*head = d;
		s->n_dst_counts++;
	}
	if (d->refused >= limit)
		return 0;
	d->refused++;
	return 1;
}

static void dst_free_all(struct sim *s)
{
	for (size_t i = 0; i < DST_BUCKETS; i++) {
		struct dst_count *d = s->dst_counts[i];
		while (d) {
			struct dst_count *n = d->next;
			free(d);
			d = n;
		}
		s->dst_counts[i] = NULL;
	}
}

/* ---- output -------------------------------------------------------------- */

static int conn_reserve(struct conn *c, size_t need)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_cap - c->out_len >= need)
		return 0;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
		if (c->out_cap - c->out_len >= need)
			return 0;
	}
	size_t cap = c->out_cap ? c->out_cap : 16384;
	while (cap - c->out_len < need)
		cap *= 2;
	if (cap > OUT_HARD_LIMIT)
		return -1;
	uint8_t *p = realloc(c->out, cap);
	if (p == NULL)
		return -1;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

static void conn_send(struct conn *c, const struct smpp_pdu *pdu)
{
	if (conn_reserve(c, 2048) != 0) {
		sim_log(c->sim, "ev=overflow peer=%s out=%zu", c->peer, c->out_len - c->out_off);
		c->closing = 1;
		ev_io_start(c->sim->loop, &c->wio);
		return;
	}
	long n = smpp_encode(pdu, c->out + c->out_len, c->out_cap - c->out_len);
	if (n < 0) {
		sim_log(c->sim, "ev=encode_failed cmd=%s peer=%s",
		      smpp_command_name(pdu->hdr.command_id), c->peer);
		return;
	}
	c->out_len += (size_t)n;
	ev_io_start(c->sim->loop, &c->wio);
}

static void conn_send_status(struct conn *c, uint32_t id, uint32_t seq, uint32_t status)
{
	struct smpp_pdu p;
	smpp_pdu_init(&p, id, seq);
	p.hdr.command_status = status;
	conn_send(c, &p);
}

/* ---- TLS (--tls-cert) ----------------------------------------------------- */

static void tls_log_error(struct conn *c, const char *during)
{
	char err[200] = "-";
	unsigned long e = ERR_peek_error();
	if (e != 0)
		ERR_error_string_n(e, err, sizeof(err));
	ERR_clear_error();
	for (char *p = err; *p; p++)
		if (*p == ' ' || *p == '"')
			*p = '_';
	c->tls_failed = 1;
	sim_log(c->sim, "ev=tls_error peer=%s during=%s err=%s", c->peer, during, err);
}

/* read() or SSL_read(): >0 bytes, 0 end of stream, -1 with errno (EAGAIN: wait). */
static ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	if (c->ssl == NULL)
		return read(c->fd, buf, len);
	ERR_clear_error();
	int n = SSL_read(c->ssl, buf, (int)len);   /* len <= SMPP_MAX_PDU_LEN */
	if (n > 0) {
		c->tls_rd_wants_write = 0;
		return n;
	}
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:   /* write_cb resumes the read */
		c->tls_rd_wants_write = 1;
		ev_io_start(c->sim->loop, &c->wio);
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		tls_log_error(c, "read");
		errno = EIO;
		return -1;
	}
}

/* write() or SSL_write(); a retry after EAGAIN passes the same bytes (maybe more). */
static ssize_t conn_write(struct conn *c, const void *buf, size_t len)
{
	if (c->ssl == NULL)
		return write(c->fd, buf, len);
	ERR_clear_error();
	int n = SSL_write(c->ssl, buf, (int)len);   /* len <= OUT_HARD_LIMIT */
	if (n > 0) {
		c->tls_wr_wants_read = 0;
		return n;
	}
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_READ:   /* read_cb resumes the write, even past the high water */
		c->tls_wr_wants_read = 1;
		ev_io_start(c->sim->loop, &c->rio);
		errno = EAGAIN;
		return -1;
	default:
		tls_log_error(c, "write");
		errno = EIO;
		return -1;
	}
}

/* ---- connections --------------------------------------------------------- */

static void receipt_dispatch(struct sim *s, struct receipt *r);

static void conn_close(struct conn *c, const char *why)
{
	struct sim *s = c->sim;
	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	if (c->ssl != NULL) {
		if (c->tls_up && !c->tls_failed)
			SSL_shutdown(c->ssl);   /* close_notify, one nonblocking try */
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	close(c->fd);
	c->fd = -1;
	s->slots[c->slot] = NULL;
	if (c->mode != BIND_NONE && s->n_bound > 0)
		s->n_bound--;
	sim_log(s, "ev=close peer=%s system_id=%s why=%s inflight=%zu", c->peer,
	      c->system_id[0] ? c->system_id : "-", why, c->inflight.n);
	struct receipt *r;
	while ((r = rq_pop(&c->inflight)) != NULL) {
		r->conn = NULL;
		receipt_dispatch(s, r);   /* another bind, or parked */
	}
	free(c->in);
	free(c->out);
	free(c);
}

/* Writes what it can; returns -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->dropping) {   /* a dropped link waits for nobody */
				conn_close(c, "drop_after");
				return -1;
			}
			if (c->tls_wr_wants_read)
				ev_io_stop(c->sim->loop, &c->wio);
			else
				ev_io_start(c->sim->loop, &c->wio);
			return 0;
		}
		conn_close(c, "write_error");
		return -1;
	}
	c->out_off = c->out_len = 0;
	ev_io_stop(c->sim->loop, &c->wio);
	if (c->closing) {
		conn_close(c, c->dropping ? "drop_after" : "done");
		return -1;
	}
	return 0;
}

static void conn_process(struct conn *c);

/*
 * Writes pending output and, once a backed-up peer has drained, handles the
 * PDUs that waited and reads again.
 */
static void conn_pump(struct conn *c)
{
	for (int i = 0; i < 4; i++) {
		if (conn_flush(c) < 0)
			return;
		if (c->closing || ev_is_active(&c->rio) ||
		    c->out_len - c->out_off >= OUT_HIGH_WATER / 2)
			return;
		conn_process(c);
		if (!c->closing && c->out_len - c->out_off < OUT_HIGH_WATER) {
			ev_io_start(c->sim->loop, &c->rio);
			if (c->ssl != NULL && SSL_has_pending(c->ssl))   /* decrypted, not on the socket */
				ev_feed_event(c->sim->loop, &c->rio, EV_READ);
		}
	}
}

static int rx_capable(const struct conn *c)
{
	return c->mode == BIND_RX || c->mode == BIND_TRX;
}

static struct conn *find_receiver(struct sim *s, const struct receipt *r)
{
	if (r->origin_slot < s->n_slots) {
		struct conn *c = s->slots[r->origin_slot];
		if (c && c->gen == r->origin_gen && rx_capable(c) && !c->closing)
			return c;
	}
	for (uint32_t k = 0; k < s->n_slots; k++) {
		uint32_t i = (s->rr + k) % s->n_slots;
		struct conn *c = s->slots[i];
		if (c && rx_capable(c) && !c->closing && strcmp(c->system_id, r->system_id) == 0) {
			s->rr = i + 1;
			return c;
		}
	}
	return NULL;
}

/* ---- receipts ------------------------------------------------------------ */

static void sched_rearm(struct sim *s)
{
	double next = 0;
	if (s->delay_q.head)
		next = s->delay_q.head->at;
	if (s->retry_q.head && (next == 0 || s->retry_q.head->at < next))
		next = s->retry_q.head->at;
	ev_timer_stop(s->loop, &s->sched_timer);
	if (next > 0) {
		double after = next - ev_now(s->loop);
		ev_timer_set(&s->sched_timer, after > 0 ? after : 0, 0);
		ev_timer_start(s->loop, &s->sched_timer);
	}
}

static void receipt_send(struct sim *s, struct conn *c, struct receipt *r)
{
	struct smpp_pdu p;
	char rid[21];
	uint8_t state = outcome_info[r->outcome].state;
	int dlvrd = r->outcome == O_DELIVRD;
	int intermediate = r->outcome == O_ENROUTE;

	if (r->tries == 0)
		date_yymmddhhmm(ev_now(s->loop), r->done_date);
	format_id(r->id, r->id_hex, rid);
	if (c->next_seq == 0 || c->next_seq > 0x7fffffffu)
		c->next_seq = 1;
	smpp_pdu_init(&p, SMPP_DELIVER_SM, c->next_seq++);
	p.source_addr_ton = r->dst_ton;
	p.source_addr_npi = r->dst_npi;
	memcpy(p.source_addr, r->dst, sizeof(p.source_addr));
	p.dest_addr_ton = r->src_ton;
	p.dest_addr_npi = r->src_npi;
	memcpy(p.destination_addr, r->src, sizeof(p.destination_addr));
	p.esm_class = 0x04;
	int n = snprintf((char *)p.short_message, sizeof(p.short_message),
			 "id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s",
			 rid, dlvrd ? "001" : "000", r->submit_date, r->done_date,
			 outcome_info[r->outcome].stat, outcome_info[r->outcome].err, r->text);
	p.sm_length = (uint8_t)(n > 254 ? 254 : n);
	if (s->receipt_tlvs) {
		smpp_tlv_add(&p, SMPP_TLV_RECEIPTED_MESSAGE_ID, rid, (uint16_t)(strlen(rid) + 1));
		smpp_tlv_add(&p, SMPP_TLV_MESSAGE_STATE, &state, 1);
	}
	r->seq = p.hdr.sequence_number;
	r->conn = c;
	r->at = ev_now(s->loop);
	if (r->tries++ == 0)
		s->receipts++;
	rq_push(&c->inflight, r);
	conn_send(c, &p);
	char b1[24];
	sim_log(s, "ev=receipt id=%s stat=%s dst=%s seq=%" PRIu32 " try=%u system_id=%s%s%s", rid,
	      outcome_info[r->outcome].stat, safe(r->src, b1, sizeof(b1)), r->seq,
	      (unsigned)r->tries, r->system_id, r->copy ? " copy=2" : "",
	      intermediate ? " intermediate=1" : "");
}

static void receipt_dispatch(struct sim *s, struct receipt *r)
{
	struct conn *c = find_receiver(s, r);
	if (c == NULL) {
		char rid[21];
		format_id(r->id, r->id_hex, rid);
		rq_push(&s->parked, r);
		sim_log(s, "ev=receipt_parked id=%s system_id=%s parked=%zu", rid, r->system_id,
		      s->parked.n);
		return;
	}
	receipt_send(s, c, r);
}

static void sched_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sim *s = w->data;
	double now = ev_now(loop);
	(void)revents;
	while (s->delay_q.head && s->delay_q.head->at <= now)
		receipt_dispatch(s, rq_pop(&s->delay_q));
	while (s->retry_q.head && s->retry_q.head->at <= now)
		receipt_dispatch(s, rq_pop(&s->retry_q));
	sched_rearm(s);
}

/* Receipts whose deliver_sm_resp did not come in time. */
static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sim *s = w->data;
	double now = ev_now(loop);
	(void)revents;
	for (uint32_t i = 0; i < s->n_slots; i++) {
		struct conn *c = s->slots[i];
		if (c == NULL)
			continue;
		while (c->inflight.head && c->inflight.head->at + RECEIPT_TIMEOUT <= now) {
			struct receipt *r = rq_pop(&c->inflight);
			char rid[21];
			format_id(r->id, r->id_hex, rid);
			r->conn = NULL;
			if (r->tries >= RECEIPT_TRIES) {
				sim_log(s, "ev=receipt_dropped id=%s tries=%u", rid, (unsigned)r->tries);
				free(r);
				continue;
			}
			sim_log(s, "ev=receipt_timeout id=%s seq=%" PRIu32 " try=%u", rid, r->seq,
			      (unsigned)r->tries);
			receipt_dispatch(s, r);
		}
	}
}

static void unpark_for(struct sim *s, const char *system_id)
{
	struct rq keep = { 0 };
	struct receipt *r;
	while ((r = rq_pop(&s->parked)) != NULL) {
		if (strcmp(r->system_id, system_id) == 0)
			receipt_dispatch(s, r);
		else
			rq_push(&keep, r);
	}
	s->parked = keep;
}

/* ---- PDU handlers -------------------------------------------------------- */

static void on_bind(struct conn *c, const struct smpp_pdu *req, enum bind_mode mode)
{
	struct sim *s = c->sim;
	struct smpp_pdu resp;
	uint32_t st = 0;
	char b1[24];

	if (c->mode != BIND_NONE)
		st = SMPP_ESME_RALYBND;
	else if (s->system_id && strcmp(s->system_id, req->system_id) != 0)
		st = SMPP_ESME_RINVSYSID;
	else if (s->password && strcmp(s->password, req->password) != 0)
		st = SMPP_ESME_RINVPASWD;
	else if (s->max_binds && s->n_bound >= s->max_binds)
		st = SMPP_ESME_RBINDFAIL;
	smpp_pdu_resp(&resp, req, st);
	strcpy(resp.system_id, "smscsim");
	conn_send(c, &resp);
	sim_log(s, "ev=bind system_id=%s mode=%s peer=%s status=0x%02" PRIx32,
	      safe(req->system_id, b1, sizeof(b1)), mode_name[mode], c->peer, st);
	if (st != 0)
		return;
	c->mode = mode;
	s->n_bound++;
	s->bind_total++;
	c->tokens = s->tps;
	c->tokens_at = ev_now(s->loop);
	memcpy(c->system_id, req->system_id, sizeof(c->system_id));
	if (rx_capable(c))
		unpark_for(s, c->system_id);
}

/*
 * How a submit_sm carries a long text, for the log: the UDH in hex when
 * esm_class has UDHI (the UDHL octet plus UDHL octets; "bad" when that runs
 * past sm_length), the SAR TLVs as ref/total/seq, the message_payload
 * length.  "-" for each one absent.
 */
static void describe_concat(const struct smpp_pdu *req, char *udh, size_t udh_cap,
			    char *sar, size_t sar_cap, char *payload, size_t payload_cap)
{
	static const char hex[] = "0123456789abcdef";

	snprintf(udh, udh_cap, "-");
	if ((req->esm_class & 0x40) != 0) {
		size_t ul = req->sm_length > 0 ? (size_t)req->short_message[0] + 1 : 0;
		if (ul == 0 || ul > req->sm_length || ul * 2 + 1 > udh_cap) {
			snprintf(udh, udh_cap, "bad");
		} else {
			for (size_t i = 0; i < ul; i++) {
				udh[2 * i] = hex[req->short_message[i] >> 4];
				udh[2 * i + 1] = hex[req->short_message[i] & 0x0F];
			}
			udh[2 * ul] = '\0';
		}
	}
	const struct smpp_tlv *ref = smpp_tlv_find(req, SMPP_TLV_SAR_MSG_REF_NUM);
	const struct smpp_tlv *tot = smpp_tlv_find(req, SMPP_TLV_SAR_TOTAL_SEGMENTS);
	const struct smpp_tlv *seq = smpp_tlv_find(req, SMPP_TLV_SAR_SEGMENT_SEQNUM);
	if (ref == NULL && tot == NULL && seq == NULL)
		snprintf(sar, sar_cap, "-");
	else if (ref == NULL || tot == NULL || seq == NULL || ref->length != 2 ||
		 tot->length != 1 || seq->length != 1)
		snprintf(sar, sar_cap, "bad");
	else
		snprintf(sar, sar_cap, "%u/%u/%u", (unsigned)ref->value[0] << 8 | ref->value[1],
			 (unsigned)tot->value[0], (unsigned)seq->value[0]);
	const struct smpp_tlv *pl = smpp_tlv_find(req, SMPP_TLV_MESSAGE_PAYLOAD);
	if (pl == NULL)
		snprintf(payload, payload_cap, "-");
	else
		snprintf(payload, payload_cap, "%u", (unsigned)pl->length);
}

/*
 * The short_message as one log token: printable ASCII of a GSM default
 * alphabet text without UDH, a space as '_', '=' and anything else as '?';
 * "-" when none.  Lets tests see what the SMSC got (a registration code).
 */
static const char *text_of(const struct smpp_pdu *req, char *buf, size_t cap)
{
	size_t o = 0;
	if (req->data_coding == 0 && !(req->esm_class & 0x40))
		for (size_t i = 0; i < req->sm_length && o + 1 < cap; i++) {
			unsigned char ch = req->short_message[i];
			buf[o++] = ch == ' ' ? '_' : ch > 0x20 && ch < 0x7f && ch != '=' ? (char)ch : '?';
		}
	if (o == 0)
		buf[o++] = '-';
	buf[o] = '\0';
	return buf;
}

static void log_submit(struct conn *c, const struct smpp_pdu *req, const char *id,
		       const char *status, const char *outcome)
{
	char b1[24], b2[24], udh[2 * 256 + 1], sar[24], payload[8], text[257];
	describe_concat(req, udh, sizeof(udh), sar, sizeof(sar), payload, sizeof(payload));
	sim_log(c->sim, "ev=submit_sm seq=%" PRIu32 " src=%s dst=%s id=%s status=%s outcome=%s"
		" len=%u esm=0x%02x dcs=%u udh=%s sar=%s payload=%s text=%s", req->hdr.sequence_number,
		safe(req->source_addr, b1, sizeof(b1)), safe(req->destination_addr, b2, sizeof(b2)),
		id, status, outcome, (unsigned)req->sm_length, (unsigned)req->esm_class,
		(unsigned)req->data_coding, udh, sar, payload, text_of(req, text, sizeof(text)));
}

static void log_submit_refused(struct conn *c, const struct smpp_pdu *req, uint32_t st,
			       const char *outcome)
{
	char sts[16];
	snprintf(sts, sizeof(sts), "0x%02" PRIx32, st);
	log_submit(c, req, "-", sts, outcome);
}

/* A receipt for `req`, not yet queued anywhere. */
static struct receipt *receipt_new(struct conn *c, const struct smpp_pdu *req, uint64_t id,
				   enum outcome stat, int id_hex)
{
	struct sim *s = c->sim;
	struct receipt *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		sim_log(s, "ev=oom what=receipt");
		return NULL;
	}
	r->id = id;
	r->id_hex = (uint8_t)id_hex;
	memcpy(r->system_id, c->system_id, sizeof(r->system_id));
	r->origin_slot = c->slot;
	r->origin_gen = c->gen;
	r->outcome = (uint8_t)stat;
	r->src_ton = req->source_addr_ton;
	r->src_npi = req->source_addr_npi;
	r->dst_ton = req->dest_addr_ton;
	r->dst_npi = req->dest_addr_npi;
	memcpy(r->src, req->source_addr, sizeof(r->src));
	memcpy(r->dst, req->destination_addr, sizeof(r->dst));
	date_yymmddhhmm(ev_now(s->loop), r->submit_date);
	size_t tl = req->sm_length < 20 ? req->sm_length : 20;
	for (size_t i = 0; i < tl; i++) {
		uint8_t ch = req->short_message[i];
		r->text[i] = (ch >= 0x20 && ch != 0x7f) ? (char)ch : '.';
	}
	return r;
}

static void receipt_schedule(struct sim *s, struct receipt *r, double at)
{
	r->at = at;
	rq_insert_sorted(&s->delay_q, r);
	if (s->delay_q.head == r)
		sched_rearm(s);
}

static void deferred_rearm(struct sim *s)
{
	ev_timer_stop(s->loop, &s->deferred_timer);
	if (s->deferred_head) {
		double after = s->deferred_head->at - ev_now(s->loop);
		ev_timer_set(&s->deferred_timer, after > 0 ? after : 0, 0);
		ev_timer_start(s->loop, &s->deferred_timer);
	}
}

/*
 * Holds a submit_sm_resp back for `delay` seconds (EARLY, --resp-delay-ms).
 * The list stays ordered by `at`: a new resp goes after the last one due no
 * later (two constant delays, so the walk from the head is short).
 */
static void deferred_add(struct conn *c, uint32_t seq, const char *message_id, double delay)
{
	struct sim *s = c->sim;
	struct deferred_resp *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		sim_log(s, "ev=oom what=deferred_resp");
		return;
	}
	d->at = ev_now(s->loop) + delay;
	d->slot = c->slot;
	d->gen = c->gen;
	d->seq = seq;
	snprintf(d->message_id, sizeof(d->message_id), "%s", message_id);
	if (s->deferred_tail == NULL || s->deferred_tail->at <= d->at) {
		if (s->deferred_tail)
			s->deferred_tail->next = d;
		else
			s->deferred_head = d;
		s->deferred_tail = d;
	} else {
		struct deferred_resp **pp = &s->deferred_head;
		while (*pp && (*pp)->at <= d->at)
			pp = &(*pp)->next;
		d->next = *pp;
		*pp = d;
	}
	if (s->deferred_head == d)
		deferred_rearm(s);
}

static void deferred_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sim *s = w->data;
	double now = ev_now(loop);
	(void)revents;
	struct deferred_resp *d;
	while ((d = s->deferred_head) != NULL && d->at <= now) {
		s->deferred_head = d->next;
		if (s->deferred_head == NULL)
			s->deferred_tail = NULL;
		struct conn *c = d->slot < s->n_slots ? s->slots[d->slot] : NULL;
		if (c && c->gen == d->gen && !c->closing) {
			struct smpp_pdu resp;
			smpp_pdu_init(&resp, SMPP_SUBMIT_SM_RESP, d->seq);
			memcpy(resp.message_id, d->message_id, sizeof(d->message_id));
			conn_send(c, &resp);
			sim_log(s, "ev=submit_sm_resp seq=%" PRIu32 " id=%s deferred=1", d->seq,
				d->message_id);
		} else {
			sim_log(s, "ev=submit_sm_resp seq=%" PRIu32 " id=%s deferred=1 lost=1",
				d->seq, d->message_id);
		}
		free(d);
	}
	deferred_rearm(s);
}

/* --tps: one token per submit, refilled at tps per second up to tps. */
static int tps_allow(struct conn *c)
{
	struct sim *s = c->sim;
	if (s->tps <= 0)
		return 1;
	double now = ev_now(s->loop);
	c->tokens += (now - c->tokens_at) * s->tps;
	c->tokens_at = now;
	if (c->tokens > s->tps)
		c->tokens = s->tps;
	if (c->tokens < 1.0)
		return 0;
	c->tokens -= 1.0;
	return 1;
}

static void on_submit(struct conn *c, const struct smpp_pdu *req)
{
	struct sim *s = c->sim;
	struct smpp_pdu resp;
	double now = ev_now(s->loop);

	if (c->mode != BIND_TX && c->mode != BIND_TRX) {
		conn_send_status(c, SMPP_SUBMIT_SM_RESP, req->hdr.sequence_number,
				 SMPP_ESME_RINVBNDSTS);
		sim_log(s, "ev=submit_sm seq=%" PRIu32 " status=0x04 why=not_bound_tx peer=%s",
		      req->hdr.sequence_number, c->peer);
		return;
	}
	s->submits++;
	c->n_submits++;
	if (s->drop_after && c->n_submits == s->drop_after && (s->drop_every || !s->dropped)) {
		s->dropped = 1;
		log_submit(c, req, "-", "none", "DROP");
		sim_log(s, "ev=drop_after submits=%" PRIu32 " peer=%s system_id=%s", c->n_submits,
			c->peer, c->system_id);
		c->closing = 1;
		c->dropping = 1;
		return;
	}
	if (!tps_allow(c)) {
		conn_send_status(c, SMPP_SUBMIT_SM_RESP, req->hdr.sequence_number,
				 SMPP_ESME_RTHROTTLED);
		log_submit_refused(c, req, SMPP_ESME_RTHROTTLED, "TPS");
		return;
	}
	const struct rule *rule = rule_for(s, req->destination_addr);
	enum outcome oc = rule ? rule->outcome : O_DELIVRD;
	switch (oc) {
	case O_RESP:
		conn_send_status(c, SMPP_SUBMIT_SM_RESP, req->hdr.sequence_number, rule->status);
		{
			char name[24];
			snprintf(name, sizeof(name), "RESP:0x%02" PRIx32, rule->status);
			log_submit_refused(c, req, rule->status, name);
		}
		return;
	case O_THROTTLE:
	case O_QFULL:
		if (dst_refuse(s, req->destination_addr, rule->count)) {
			conn_send_status(c, SMPP_SUBMIT_SM_RESP, req->hdr.sequence_number,
					 rule->status);
			log_submit_refused(c, req, rule->status, outcome_info[oc].stat);
			return;
		}
		oc = O_DELIVRD;   /* past its first N: an ordinary accepted message */
		break;
	case O_NORESP:
		log_submit(c, req, "-", "none", "NORESP");
		return;
	default:
		break;
	}

	uint64_t id = s->next_id++;
	int want_receipt = oc != O_NORECEIPT && (req->registered_delivery & 1) != 0;
	int rid_hex = oc == O_HEXDEC ? 0 : s->receipt_id_hex;
	enum outcome stat = oc <= O_EXPIRED ? oc : O_DELIVRD;
	smpp_pdu_resp(&resp, req, 0);
	format_id(id, oc == O_HEXDEC ? 1 : s->id_hex, resp.message_id);
	log_submit(c, req, resp.message_id, "0x00", outcome_info[oc].stat);

	if (oc == O_EARLY) {
		/* the receipt goes out first; the resp follows EARLY_RESP_DELAY later */
		if (want_receipt) {
			struct receipt *r = receipt_new(c, req, id, O_DELIVRD, rid_hex);
			if (r)
				receipt_dispatch(s, r);
		}
		deferred_add(c, req->hdr.sequence_number, resp.message_id, EARLY_RESP_DELAY + s->resp_delay);
		return;
	}
	if (s->resp_delay > 0)
		deferred_add(c, req->hdr.sequence_number, resp.message_id, s->resp_delay);
	else
		conn_send(c, &resp);
	if (!want_receipt)
		return;
	if (oc == O_ENROUTE) {
		struct receipt *r = receipt_new(c, req, id, O_ENROUTE, rid_hex);
		if (r)
			receipt_dispatch(s, r);
	}
	struct receipt *r = receipt_new(c, req, id, stat, rid_hex);
	if (r == NULL)
		return;
	receipt_schedule(s, r, now + s->dlr_delay);
	if (oc == O_DUP) {
		struct receipt *r2 = receipt_new(c, req, id, O_DELIVRD, rid_hex);
		if (r2) {
			r2->copy = 1;
			receipt_schedule(s, r2, now + s->dlr_delay + DUP_DELAY);
		}
	}
}

static void on_deliver_resp(struct conn *c, const struct smpp_pdu *resp)
{
	struct sim *s = c->sim;
	uint32_t seq = resp->hdr.sequence_number, st = resp->hdr.command_status;
	struct receipt *r = c->inflight.head;
	while (r && r->seq != seq)
		r = r->next;
	if (r == NULL) {
		sim_log(s, "ev=deliver_sm_resp seq=%" PRIu32 " status=0x%02" PRIx32 " unknown=1", seq, st);
		return;
	}
	char rid[21];
	format_id(r->id, r->id_hex, rid);
	sim_log(s, "ev=deliver_sm_resp seq=%" PRIu32 " status=0x%02" PRIx32 " id=%s", seq, st, rid);
	rq_remove(&c->inflight, r);
	r->conn = NULL;
	if (st == 0) {
		free(r);
		return;
	}
	if (r->tries >= RECEIPT_TRIES) {
		sim_log(s, "ev=receipt_dropped id=%s tries=%u", rid, (unsigned)r->tries);
		free(r);
		return;
	}
	r->at = ev_now(s->loop) + RECEIPT_RETRY;
	int was_empty = s->retry_q.head == NULL;
	rq_push(&s->retry_q, r);
	if (was_empty)
		sched_rearm(s);
}

static void on_pdu(struct conn *c, const uint8_t *buf, size_t len)
{
	struct sim *s = c->sim;
	struct smpp_pdu p;
	uint32_t st = smpp_decode(buf, len, &p);
	uint32_t id = p.hdr.command_id, seq = p.hdr.sequence_number;

	if (st != 0) {
		sim_log(s, "ev=bad_pdu cmd=%s seq=%" PRIu32 " status=0x%02" PRIx32 " peer=%s",
		      smpp_command_name(id), seq, st, c->peer);
		conn_send_status(c, SMPP_GENERIC_NACK, seq, st);
		return;
	}
	switch (id) {
	case SMPP_BIND_TRANSMITTER:  on_bind(c, &p, BIND_TX); break;
	case SMPP_BIND_RECEIVER:     on_bind(c, &p, BIND_RX); break;
	case SMPP_BIND_TRANSCEIVER:  on_bind(c, &p, BIND_TRX); break;
	case SMPP_SUBMIT_SM:         on_submit(c, &p); break;
	case SMPP_DELIVER_SM_RESP:   on_deliver_resp(c, &p); break;
	case SMPP_ENQUIRE_LINK:
		conn_send_status(c, SMPP_ENQUIRE_LINK_RESP, seq, 0);
		sim_log(s, "ev=enquire_link seq=%" PRIu32 " system_id=%s peer=%s", seq,
			c->system_id[0] ? c->system_id : "-", c->peer);
		break;
	case SMPP_UNBIND:
		conn_send_status(c, SMPP_UNBIND_RESP, seq, 0);
		sim_log(s, "ev=unbind system_id=%s peer=%s", c->system_id[0] ? c->system_id : "-",
		      c->peer);
		c->closing = 1;
		break;
	case SMPP_ENQUIRE_LINK_RESP:
	case SMPP_UNBIND_RESP:
		break;
	case SMPP_OUTBIND:   /* only an SMSC sends it */
		conn_send_status(c, SMPP_GENERIC_NACK, seq, SMPP_ESME_RINVCMDID);
		break;
	case SMPP_GENERIC_NACK:
		sim_log(s, "ev=generic_nack seq=%" PRIu32 " status=0x%02" PRIx32 " peer=%s", seq,
		      p.hdr.command_status, c->peer);
		break;
	default:
		/* known to the codec but not offered by this SMSC */
		if (smpp_is_resp(id)) {
			sim_log(s, "ev=unexpected cmd=%s seq=%" PRIu32, smpp_command_name(id), seq);
		} else {
			conn_send_status(c, id | 0x80000000u, seq, SMPP_ESME_RINVCMDID);
			sim_log(s, "ev=unsupported cmd=%s seq=%" PRIu32, smpp_command_name(id), seq);
		}
		break;
	}
}

/* Handles every whole PDU in the input buffer, unless output backs up. */
static void conn_process(struct conn *c)
{
	size_t off = 0;
	while (!c->closing && c->out_len - c->out_off < OUT_HIGH_WATER) {
		long n = smpp_frame(c->in + off, c->in_len - off);
		if (n == 0)
			break;
		if (n < 0) {
			struct smpp_header h = { 0 };
			if (c->in_len - off >= SMPP_HEADER_LEN)
				smpp_read_header(c->in + off, &h);
			sim_log(c->sim, "ev=bad_length command_length=%" PRIu32 " peer=%s",
			      h.command_length, c->peer);
			conn_send_status(c, SMPP_GENERIC_NACK, h.sequence_number,
					 SMPP_ESME_RINVCMDLEN);
			c->closing = 1;
			off = c->in_len;
			break;
		}
		on_pdu(c, c->in + off, (size_t)n);
		off += (size_t)n;
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	if (c->closing || c->out_len - c->out_off >= OUT_HIGH_WATER)
		ev_io_stop(c->sim->loop, &c->rio);
}

/* Drives a TLS connection's handshake on its watchers; closes it on failure. */
static void conn_tls_accept(struct conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->tls_up = 1;
		ev_io_stop(c->sim->loop, &c->wio);
		ev_feed_event(c->sim->loop, &c->rio, EV_READ);   /* a bind may already be buffered */
		sim_log(c->sim, "ev=tls peer=%s version=%s cipher=%s", c->peer,
			SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		ev_io_stop(c->sim->loop, &c->wio);
		return;
	case SSL_ERROR_WANT_WRITE:
		ev_io_start(c->sim->loop, &c->wio);
		return;
	default:
		tls_log_error(c, "handshake");
		conn_close(c, "tls_handshake");
	}
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	(void)loop;
	(void)revents;
	if (c->ssl != NULL && !c->tls_up) {
		conn_tls_accept(c);
		return;
	}
	c->tls_wr_wants_read = 0;   /* conn_pump below writes again */
	for (int i = 0; i < READS_PER_EVENT && ev_is_active(&c->rio); i++) {
		ssize_t n = conn_read(c, c->in + c->in_len, SMPP_MAX_PDU_LEN - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			conn_process(c);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_close(c, n == 0 ? "eof" : "read_error");
		return;
	}
	if (c->ssl != NULL && ev_is_active(&c->rio) && SSL_has_pending(c->ssl))
		ev_feed_event(loop, &c->rio, EV_READ);   /* out of rounds with decrypted bytes left */
	conn_pump(c);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	(void)revents;
	if (c->ssl != NULL && !c->tls_up) {
		conn_tls_accept(c);
		return;
	}
	if (c->tls_rd_wants_write) {
		c->tls_rd_wants_write = 0;
		read_cb(loop, &c->rio, EV_READ);   /* ends in conn_pump */
		return;
	}
	conn_pump(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sim *s = w->data;
	(void)revents;
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				sim_log(s, "ev=accept_error errno=%d", errno);
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		uint8_t *in = malloc(SMPP_MAX_PDU_LEN);
		uint32_t slot = 0;
		while (slot < s->n_slots && s->slots[slot])
			slot++;
		if (slot == s->n_slots) {
			uint32_t n = s->n_slots ? s->n_slots * 2 : 64;
			struct conn **ns = realloc(s->slots, n * sizeof(*ns));
			if (ns) {
				memset(ns + s->n_slots, 0, (n - s->n_slots) * sizeof(*ns));
				s->slots = ns;
				s->n_slots = n;
			}
		}
		if (c == NULL || in == NULL || slot >= s->n_slots) {
			free(c);
			free(in);
			close(fd);
			sim_log(s, "ev=oom what=connection");
			continue;
		}
		c->sim = s;
		c->fd = fd;
		c->in = in;
		c->slot = slot;
		c->gen = ++s->slot_gen;
		c->next_seq = 1;
		char host[48] = "?", port[8] = "?";
		getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
		s->slots[slot] = c;
		ev_io_init(&c->rio, read_cb, fd, EV_READ);
		ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
		c->rio.data = c->wio.data = c;
		ev_io_start(loop, &c->rio);
		sim_log(s, "ev=connect peer=%s", c->peer);
		if (s->tls != NULL) {   /* the handshake runs from read_cb/write_cb */
			c->ssl = SSL_new(s->tls);
			if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
				tls_log_error(c, "setup");
				conn_close(c, "tls_setup");
				continue;
			}
			SSL_set_accept_state(c->ssl);
		}
	}
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void stats_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct sim *s = w->data;
	size_t conns = 0, inflight = 0;
	(void)loop;
	(void)revents;
	for (uint32_t i = 0; i < s->n_slots; i++)
		if (s->slots[i]) {
			conns++;
			inflight += s->slots[i]->inflight.n;
		}
	sim_log(s, "ev=stats submits=%" PRIu64 " receipts=%" PRIu64 " binds=%" PRIu32
		" bind_total=%" PRIu64 " conns=%zu parked=%zu pending=%zu inflight=%zu",
		s->submits, s->receipts, s->n_bound, s->bind_total, conns, s->parked.n,
		s->delay_q.n + s->retry_q.n, inflight);
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct sim *s = w->data;
	(void)loop;
	(void)revents;
	fflush(s->log);   /* every line is out before the loop waits */
}

/* ---- --state: receipts that outlive a clean stop --------------------------- */

static void hex_put(FILE *f, const char *s)
{
	if (*s == '\0')
		fputc('-', f);
	for (; *s; s++)
		fprintf(f, "%02x", (unsigned)(unsigned char)*s);
}

/* Hex field -> C string of at most cap-1 bytes; "-" is empty. 0 / -1. */
static int hex_get(const char *h, char *out, size_t cap)
{
	size_t n = 0;
	if (strcmp(h, "-") == 0) {
		out[0] = '\0';
		return 0;
	}
	for (; h[0] && h[1]; h += 2) {
		unsigned v;
		if (n + 1 >= cap || sscanf(h, "%2x", &v) != 1 || v == 0)
			return -1;
		out[n++] = (char)v;
	}
	if (*h)
		return -1;
	out[n] = '\0';
	return 0;
}

static size_t state_save_q(struct sim *s, FILE *f, const struct rq *q)
{
	size_t n = 0;
	double now = ev_now(s->loop);
	for (const struct receipt *r = q->head; r; r = r->next, n++) {
		double due = r->at - now;
		fprintf(f, "r %" PRIu64 " %u %u %u %u %u %u %u %ld ", r->id, (unsigned)r->id_hex,
			(unsigned)r->outcome, (unsigned)r->copy, (unsigned)r->src_ton,
			(unsigned)r->src_npi, (unsigned)r->dst_ton, (unsigned)r->dst_npi,
			q == &s->delay_q && due > 0 ? (long)(due * 1000) : 0L);
		hex_put(f, r->system_id);
		fputc(' ', f);
		hex_put(f, r->src);
		fputc(' ', f);
		hex_put(f, r->dst);
		fputc(' ', f);
		hex_put(f, r->submit_date);
		fputc(' ', f);
		hex_put(f, r->text);
		fputc('\n', f);
	}
	return n;
}

/* Writes every receipt not yet acknowledged (all connections are closed by now). */
static void state_save(struct sim *s, const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		sim_log(s, "ev=state_save_failed why=path_too_long");
		return;
	}
	FILE *f = fopen(tmp, "w");
	if (f == NULL) {
		sim_log(s, "ev=state_save_failed errno=%d", errno);
		return;
	}
	fprintf(f, "smsc-sim-state 1\n");
	size_t n = state_save_q(s, f, &s->parked) + state_save_q(s, f, &s->delay_q) +
		   state_save_q(s, f, &s->retry_q);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		sim_log(s, "ev=state_save_failed errno=%d", errno);
		unlink(tmp);
		return;
	}
	sim_log(s, "ev=state_saved receipts=%zu file=%s", n, path);
}

/*
 * Loads receipts a clean stop saved; they are due after what was left of
 * their delay and go to the first receiver of their system_id that binds.
 * The file is removed once read, so a crash later loses them, as it would at
 * a real SMSC without persistence.
 */
static void state_load(struct sim *s, const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[1024];
	size_t n = 0, bad = 0;
	double now = ev_now(s->loop);
	if (fgets(line, sizeof(line), f) == NULL || strcmp(line, "smsc-sim-state 1\n") != 0) {
		sim_log(s, "ev=state_load_failed why=bad_header file=%s", path);
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char sys[64], src[64], dst[64], sub[64], text[64];
		unsigned idh, oc, cp, st, sn, dt, dn;
		long due;
		uint64_t id;
		struct receipt *r;
		if (sscanf(line, "r %" SCNu64 " %u %u %u %u %u %u %u %ld %63s %63s %63s %63s %63s",
			   &id, &idh, &oc, &cp, &st, &sn, &dt, &dn, &due, sys, src, dst, sub,
			   text) != 14 || oc > O_ENROUTE || idh > 1 || cp > 1 || st > 255 ||
		    sn > 255 || dt > 255 || dn > 255 || due < 0 ||
		    (r = calloc(1, sizeof(*r))) == NULL) {
			bad++;
			continue;
		}
		if (hex_get(sys, r->system_id, sizeof(r->system_id)) != 0 ||
		    hex_get(src, r->src, sizeof(r->src)) != 0 ||
		    hex_get(dst, r->dst, sizeof(r->dst)) != 0 ||
		    hex_get(sub, r->submit_date, sizeof(r->submit_date)) != 0 ||
		    hex_get(text, r->text, sizeof(r->text)) != 0) {
			free(r);
			bad++;
			continue;
		}
		r->id = id;
		r->id_hex = (uint8_t)idh;
		r->outcome = (uint8_t)oc;
		r->copy = (uint8_t)cp;
		r->src_ton = (uint8_t)st;
		r->src_npi = (uint8_t)sn;
		r->dst_ton = (uint8_t)dt;
		r->dst_npi = (uint8_t)dn;
		r->origin_slot = UINT32_MAX;
		r->at = now + (double)due / 1000.0;
		rq_insert_sorted(&s->delay_q, r);
		n++;
	}
	fclose(f);
	unlink(path);
	sched_rearm(s);
	sim_log(s, "ev=state_loaded receipts=%zu bad=%zu file=%s", n, bad, path);
}

/* ---- startup ------------------------------------------------------------- */

enum { OPT_TLS_CERT = 0x100, OPT_TLS_KEY };

/* On stdout when asked for (--help), on stderr after a usage error. */
static void usage_to(FILE *out)
{
	fprintf(out,
		"usage: smsc-sim [--listen ADDR:PORT] [--system-id ID --password PW]\n"
		"                [--dlr-delay-ms N] [--resp-delay-ms N] [--rule SUFFIX=OUTCOME]...\n"
		"                [--log FILE]\n"
		"                [--id-format hex|dec] [--receipt-id-format hex|dec]\n"
		"                [--receipt-tlvs yes|no] [--drop-after N [--drop-every]]\n"
		"                [--max-binds N] [--tps N] [--state FILE]\n"
		"                [--tls-cert FILE --tls-key FILE]\n"
		"OUTCOME: DELIVRD UNDELIV REJECTD EXPIRED NORECEIPT RESP:0xNN\n"
		"         THROTTLE:N QFULL:N NORESP DUP EARLY ENROUTE HEXDEC\n"
		"  THROTTLE:N / QFULL:N  first N submits per destination get 0x58 / 0x14,\n"
		"                        later ones are accepted (DELIVRD)\n"
		"  NORESP     no submit_sm_resp, no receipt\n"
		"  DUP        DELIVRD receipt sent twice, 50 ms apart\n"
		"  EARLY      DELIVRD receipt at once, submit_sm_resp 200 ms later\n"
		"  ENROUTE    ENROUTE receipt (message_state 1) at once, DELIVRD after the delay\n"
		"  HEXDEC     resp id in hex, receipt id in decimal\n"
		"--resp-delay-ms N  every submit_sm_resp N ms after its submit (a slow carrier)\n"
		"--drop-after N  close the connection on its N-th submit_sm, unanswered\n"
		"                (once per process; every connection with --drop-every)\n"
		"--max-binds N   binds beyond N bound connections get 0x0D (ESME_RBINDFAIL)\n"
		"--tps N         submits beyond N per second per bind get 0x58\n"
		"--state FILE    on SIGTERM/SIGINT save unacknowledged receipts to FILE;\n"
		"                at start load them (and remove FILE)\n"
		"--tls-cert FILE --tls-key FILE  the listener speaks TLS (PEM chain, PEM key)\n"
		"SIGUSR1 logs ev=stats; SIGTERM exits 0.\n");
}

static void usage(void)
{
	usage_to(stderr);
}

static int parse_count(const char *v, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || *v == '\0' || *v == '-' || *end || n > 0xffffffffUL)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

static int parse_hexdec(const char *v, int *out)
{
	if (strcmp(v, "hex") == 0) *out = 1;
	else if (strcmp(v, "dec") == 0) *out = 0;
	else return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct sim sim;
	struct sim *s = &sim;
	const char *listen_spec = "127.0.0.1:2775", *log_path = NULL, *state_path = NULL;
	const char *tls_cert = NULL, *tls_key = NULL;
	int receipt_fmt = -1;
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "system-id", required_argument, NULL, 's' },
		{ "password", required_argument, NULL, 'p' },
		{ "dlr-delay-ms", required_argument, NULL, 'd' },
		{ "resp-delay-ms", required_argument, NULL, 'R' },
		{ "rule", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'L' },
		{ "id-format", required_argument, NULL, 'i' },
		{ "receipt-id-format", required_argument, NULL, 'I' },
		{ "receipt-tlvs", required_argument, NULL, 't' },
		{ "drop-after", required_argument, NULL, 'D' },
		{ "drop-every", no_argument, NULL, 'E' },
		{ "max-binds", required_argument, NULL, 'B' },
		{ "tps", required_argument, NULL, 'T' },
		{ "state", required_argument, NULL, 'S' },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};

	s->dlr_delay = 0.2;
	s->id_hex = 1;
	s->receipt_tlvs = 1;
	rule_set(s, "9", "UNDELIV");
	rule_set(s, "8", "REJECTD");
	rule_set(s, "7", "EXPIRED");
	rule_set(s, "6", "RESP:0x0B");

	int ch;
	while ((ch = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_spec = optarg; break;
		case 's': s->system_id = optarg; break;
		case 'p': s->password = optarg; break;
		case 'd': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || v < 0 || v > 86400000) {
				usage();
				return 2;
			}
			s->dlr_delay = (double)v / 1000.0;
			break;
		}
		case 'R': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || v < 0 || v > 600000) {
				usage();
				return 2;
			}
			s->resp_delay = (double)v / 1000.0;
			break;
		}
		case 'r': {
			char buf[128];
			char *eq;
			if (strlen(optarg) >= sizeof(buf)) {
				usage();
				return 2;
			}
			strcpy(buf, optarg);
			eq = strchr(buf, '=');
			if (eq == NULL || (*eq = '\0', rule_set(s, buf, eq + 1) != 0)) {
				fprintf(stderr, "smsc-sim: bad --rule %s\n", optarg);
				return 2;
			}
			break;
		}
		case 'L': log_path = optarg; break;
		case 'i':
			if (parse_hexdec(optarg, &s->id_hex) != 0) { usage(); return 2; }
			break;
		case 'I':
			if (parse_hexdec(optarg, &receipt_fmt) != 0) { usage(); return 2; }
			break;
		case 't':
			if (strcmp(optarg, "yes") == 0) s->receipt_tlvs = 1;
			else if (strcmp(optarg, "no") == 0) s->receipt_tlvs = 0;
			else { usage(); return 2; }
			break;
		case 'D':
			if (parse_count(optarg, &s->drop_after) != 0) { usage(); return 2; }
			break;
		case 'E': s->drop_every = 1; break;
		case 'S': state_path = optarg; break;
		case OPT_TLS_CERT: tls_cert = optarg; break;
		case OPT_TLS_KEY: tls_key = optarg; break;
		case 'B':
			if (parse_count(optarg, &s->max_binds) != 0) { usage(); return 2; }
			break;
		case 'T': {
			uint32_t v;
			if (parse_count(optarg, &v) != 0) { usage(); return 2; }
			s->tps = v;
			break;
		}
		case 'h': usage_to(stdout); return 0;
		case 'V': printf("smsc-sim %s\n", PACKAGE_VERSION); return 0;
		default: usage(); return 2;
		}
	}
	if (optind != argc || (s->system_id == NULL) != (s->password == NULL)) {
		usage();
		return 2;
	}
	s->receipt_id_hex = receipt_fmt < 0 ? s->id_hex : receipt_fmt;

	s->log = stderr;
	if (log_path && (s->log = fopen(log_path, "a")) == NULL) {
		fprintf(stderr, "smsc-sim: cannot open log %s: %s\n", log_path, strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((tls_cert == NULL) != (tls_key == NULL)) {
		usage();
		return 2;
	}
	char err[256];
	if (tls_cert != NULL && (s->tls = netio_tls_server_ctx(tls_cert, tls_key, "1.2", err, sizeof(err))) == NULL) {
		fprintf(stderr, "smsc-sim: --tls-cert %s --tls-key %s: %s\n", tls_cert, tls_key, err);
		return 1;
	}

	int port = 0;
	s->lfd = netio_bind(listen_spec, &port, err, sizeof(err));
	if (s->lfd < 0 || listen(s->lfd, 1024) < 0) {
		fprintf(stderr, "smsc-sim: cannot listen on %s: %s\n", listen_spec, s->lfd < 0 ? err : strerror(errno));
		return 1;
	}
	/* a random-ish start so ids differ between runs */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->next_id = (((uint64_t)ts.tv_sec << 24) ^ ((uint64_t)ts.tv_nsec << 4) ^
		      (uint64_t)getpid()) & 0x00ffffffffffffffULL;

	s->loop = EV_DEFAULT;
	ev_io_init(&s->accept_io, accept_cb, s->lfd, EV_READ);
	s->accept_io.data = s;
	ev_io_start(s->loop, &s->accept_io);
	ev_init(&s->sched_timer, sched_cb);
	s->sched_timer.data = s;
	ev_timer_init(&s->sweep_timer, sweep_cb, 1.0, 1.0);
	s->sweep_timer.data = s;
	ev_timer_start(s->loop, &s->sweep_timer);
	ev_signal_init(&s->sigterm, signal_cb, SIGTERM);
	ev_signal_start(s->loop, &s->sigterm);
	ev_signal_init(&s->sigint, signal_cb, SIGINT);
	ev_signal_start(s->loop, &s->sigint);
	ev_signal_init(&s->sigusr1, stats_cb, SIGUSR1);
	s->sigusr1.data = s;
	ev_signal_start(s->loop, &s->sigusr1);
	ev_init(&s->deferred_timer, deferred_cb);
	s->deferred_timer.data = s;
	ev_prepare_init(&s->flush_prep, flush_cb);
	s->flush_prep.data = s;
	ev_prepare_start(s->loop, &s->flush_prep);

	if (state_path)   /* before "ready": a test may look at the file then */
		state_load(s, state_path);
	sim_log(s, "ev=listen addr=%s port=%d dlr_delay_ms=%.0f rules=%u drop_after=%" PRIu32
		" max_binds=%" PRIu32 " tps=%.0f", listen_spec, port, s->dlr_delay * 1000.0,
		s->n_rules, s->drop_after, s->max_binds, s->tps);
	fflush(s->log);
	printf("ready port=%d\n", port);
	fflush(stdout);

	ev_run(s->loop, 0);

	for (uint32_t i = 0; i < s->n_slots; i++)
		if (s->slots[i]) {
			conn_flush(s->slots[i]);
			if (s->slots[i])
				conn_close(s->slots[i], "shutdown");
		}
	close(s->lfd);
	if (state_path)
		state_save(s, state_path);
	sim_log(s, "ev=exit submits=%" PRIu64 " receipts=%" PRIu64 " parked=%zu pending=%zu",
	      s->submits, s->receipts, s->parked.n, s->delay_q.n + s->retry_q.n);
	fflush(s->log);
	rq_free_all(&s->parked);
	rq_free_all(&s->delay_q);
	rq_free_all(&s->retry_q);
	dst_free_all(s);
	while (s->deferred_head) {
		struct deferred_resp *d = s->deferred_head;
		s->deferred_head = d->next;
		free(d);
	}
	free(s->slots);
	SSL_CTX_free(s->tls);
	if (s->log != stderr)
		fclose(s->log);
	return 0;
}
