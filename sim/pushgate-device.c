/*
 * pushgate-device.c: simulates N app installs speaking the device protocol
 * (docs/device-protocol.md) against one pushgated, for tests and the push
 * benchmarks.  Optionally registers the devices first (POST /v1/devices,
 * the one-time code read back from PostgreSQL, POST .../verify), then holds
 * one WebSocket per device on a libev loop (wslay in client mode, our own
 * RFC 6455 client handshake) and answers every `msg` according to the
 * device's behaviour: ack, reject, offline or drop.
 *
 * Owns: the device table (a small fixed struct per device; the wslay context
 * and the handshake buffer exist only while a connection needs them), the
 * tokens file it writes, and its own sockets.  Prints one key=value report
 * line per interval on stdout and a summary at the end; diagnostics go to
 * stderr.  Exit 0 when every device expected online said `welcome` and no
 * protocol error happened, 1 otherwise, 2 on a usage error.
 *
 * Never trusts a byte from the server (bounded handshake buffer, 64 KiB
 * frames, JSON checked field by field), never blocks the loop once the
 * WebSockets are up, never runs longer than --duration.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <ev.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "log.h"
#include "util.h"

#define PROG "pushgate-device"
#define MOD "device"
#define WS_PATH "/v1/device"
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_FRAME 65536
#define HS_BUF 2048             /* request, then the 101 response headers */
#define HS_TIMEOUT 10.0         /* connect + upgrade + welcome */
#define DROP_RECONNECT 1.0
#define BACKOFF_MAX_SHIFT 6     /* 1 s doubling to 64 s, capped at 60 */
#define TOKEN_MAX 256
#define MAX_SOURCES 64
#define HTTP_BODY_MAX 65536
#define CODE_WAIT_S 15.0

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

enum behaviour { B_ACK, B_REJECT, B_OFFLINE, B_DROP };
static const char *const behaviour_names[] = { "ack", "reject", "offline", "drop" };

enum dev_state {
	DEV_IDLE,       /* no socket; maybe a reconnect timer */
	DEV_QUEUED,     /* waiting for a connect slot */
	DEV_CONNECTING, /* nonblocking connect() in progress */
	DEV_UPGRADING,  /* request sent or being sent, reading the 101 */
	DEV_HELLO,      /* WebSocket up, hello sent, waiting for welcome */
	DEV_READY,      /* welcome received */
	DEV_OFFLINE,    /* never connects */
};
static const char *const state_names[] = {
	"idle", "queued", "connecting", "upgrading", "hello", "ready", "offline"
};

/* Handshake state, allocated from connect() until the leftover bytes after the 101 are consumed. */
struct hs {
	size_t len;             /* bytes in buf */
	size_t off;             /* sent (request) or consumed (leftover) */
	int reading;            /* 0 while the request is being written */
	char accept[32];        /* expected Sec-WebSocket-Accept */
	char buf[HS_BUF];
};

/* Flags in dev->flags. */
#define F_WELCOMED   0x01   /* welcome seen at least once */
#define F_REJECTED   0x02   /* reject already sent */
#define F_DROPPED    0x04   /* the one drop already done */
#define F_EOF        0x08   /* peer closed the TCP stream */
#define F_DROP_NOW   0x10   /* drop after this recv round */
#define F_CLOSE_NOW  0x20   /* protocol error: close after this recv round */
#define F_ERRCLOSE   0x40   /* the close is counted as an error */

/* One simulated install.  Owned by sim->devs; ws and hs freed by dev_close(). */
struct dev {
	ev_io io;
	ev_timer timer;         /* handshake timeout or reconnect delay */
	struct sim *sim;
	wslay_event_context_ptr ws;
	struct hs *hs;
	uint64_t msisdn;
	uint32_t token_off;     /* into sim->tokens */
	uint16_t token_len;
	uint8_t state;
	uint8_t behaviour;
	uint8_t flags;
	uint8_t backoff;        /* reconnect attempts since the last welcome */
	uint16_t close_code;    /* from the server's close frame */
};

/* (device, message id) pairs seen, to count duplicates.  Open addressing. */
struct seen {
	uint32_t dev1;          /* device index + 1; 0 = empty */
	int64_t id;
};

struct counters {
	uint64_t msgs, acks, rejects, dup_msgs, errors, drops, reconnects, closed_by_server;
	uint64_t welcomes, connect_fail;
};

struct sim {
	struct ev_loop *loop;
	/* options */
	char url_host[128];     /* Host header, "127.0.0.1:8080" */
	char url_base[256];     /* "http://127.0.0.1:8080" */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct in_addr sources[MAX_SOURCES];
	size_t nsources;
	size_t max_inflight;
	double duration, report_every;
	/* devices */
	struct dev *devs;
	size_t ndevs, expected;
	char *tokens;           /* all tokens, NUL-separated */
	size_t tokens_len;
	uint32_t *queue;        /* ring of device indices waiting to connect */
	size_t qhead, qlen;
	size_t inflight, connected;
	struct seen *seen;
	size_t seen_cap, seen_len;
	struct counters c;
	int stopping, all_connected_said;
	double t0;
	/* randomness for masks, keys, jitter */
	uint8_t rnd[4096];
	size_t rnd_off;
	ev_timer report_timer, stop_timer;
	ev_signal sigint, sigterm;
	ev_prepare pump;
};

static void dev_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void dev_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void dev_close(struct dev *d, int reconnect_after_ms);

/* --- small helpers ----------------------------------------------------- */

static void rnd_bytes(struct sim *s, void *out, size_t n)
{
	uint8_t *o = out;
	while (n > 0) {
		if (s->rnd_off >= sizeof(s->rnd)) {
			size_t got = 0;
			while (got < sizeof(s->rnd)) {
				ssize_t r = getrandom(s->rnd + got, sizeof(s->rnd) - got, 0);
				if (r < 0) {
					if (errno == EINTR)
						continue;
					log_error(MOD, "ev=getrandom_failed err=%s", strerror(errno));
					abort();
				}
				got += (size_t)r;
			}
			s->rnd_off = 0;
		}
		size_t k = sizeof(s->rnd) - s->rnd_off;
		if (k > n)
			k = n;
		memcpy(o, s->rnd + s->rnd_off, k);
		s->rnd_off += k;
		o += k;
		n -= k;
	}
}

static double rnd_unit(struct sim *s)
{
	uint32_t v;
	rnd_bytes(s, &v, sizeof(v));
	return (double)v / 4294967296.0;
}

static size_t dev_index(const struct dev *d) { return (size_t)(d - d->sim->devs); }

static const char *dev_token(const struct dev *d) { return d->sim->tokens + d->token_off; }

/* Base64 of SHA-1(key + GUID), the Sec-WebSocket-Accept a correct server sends. */
static int ws_accept_for(const char *key, char *out, size_t outlen)
{
	char in[64 + sizeof(WS_GUID)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n = snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
	if (n < 0 || (size_t)n >= sizeof(in) || outlen < 29)
		return -1;
	if (EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	return 0;
}

/* Only printable ASCII without quotes/backslashes goes into our log lines. */
static void safe_copy(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t j = 0;
	for (size_t i = 0; i < srclen && j + 1 < dstlen; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[j++] = (ch >= 0x21 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '_';
	}
	dst[j] = '\0';
}

/* --- duplicate tracking ------------------------------------------------ */

static uint64_t seen_hash(uint32_t dev1, int64_t id)
{
	uint64_t h = ((uint64_t)dev1 * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)id * 0xC2B2AE3D27D4EB4Full);
	return h ^ (h >> 29);
}

static int seen_insert_into(struct seen *tab, size_t cap, uint32_t dev1, int64_t id)
{
	size_t i = (size_t)seen_hash(dev1, id) & (cap - 1);
	for (;;) {
		if (tab[i].dev1 == 0) {
			tab[i].dev1 = dev1;
			tab[i].id = id;
			return 1;
		}
		if (tab[i].dev1 == dev1 && tab[i].id == id)
			return 0;
		i = (i + 1) & (cap - 1);
	}
}

/* 1 when (dev, id) is new, 0 when seen before, -1 out of memory. */
static int seen_add(struct sim *s, size_t dev, int64_t id)
{
	if ((s->seen_len + 1) * 2 > s->seen_cap) {
		size_t cap = s->seen_cap ? s->seen_cap * 2 : 4096;
		struct seen *t = calloc(cap, sizeof(*t));
		if (!t)
			return -1;
		for (size_t i = 0; i < s->seen_cap; i++)
			if (s->seen[i].dev1)
				seen_insert_into(t, cap, s->seen[i].dev1, s->seen[i].id);
		free(s->seen);
		s->seen = t;
		s->seen_cap = cap;
	}
	int r = seen_insert_into(s->seen, s->seen_cap, (uint32_t)(dev + 1), id);
	s->seen_len += (size_t)r;
	return r;
}

/* --- connection state machine ------------------------------------------ */

static int state_inflight(int st) { return st == DEV_CONNECTING || st == DEV_UPGRADING || st == DEV_HELLO; }

/* The only writer of d->state; keeps the inflight/connected gauges true. */
static void dev_enter(struct dev *d, enum dev_state next)
{
	struct sim *s = d->sim;
	if (state_inflight(d->state))
		s->inflight--;
	if (d->state == DEV_READY)
		s->connected--;
	log_debug(MOD, "dev=%" PRIu64 " ev=state from=%s to=%s", d->msisdn, state_names[d->state],
		  state_names[next]);
	d->state = (uint8_t)next;
	if (state_inflight(next))
		s->inflight++;
	if (next == DEV_READY)
		s->connected++;
}

static void dev_error(struct dev *d, const char *what)
{
	d->sim->c.errors++;
	log_warn(MOD, "dev=%" PRIu64 " ev=error what=%s state=%s", d->msisdn, what, state_names[d->state]);
}

static void dev_set_events(struct dev *d, int events)
{
	if (d->io.events == events)
		return;
	ev_io_stop(d->sim->loop, &d->io);
	ev_io_set(&d->io, d->io.fd, events);
	ev_io_start(d->sim->loop, &d->io);
}

static void dev_queue(struct dev *d)
{
	struct sim *s = d->sim;
	if (s->stopping || d->state != DEV_IDLE)
		return;
	s->queue[(s->qhead + s->qlen) % s->ndevs] = (uint32_t)dev_index(d);
	s->qlen++;
	dev_enter(d, DEV_QUEUED);
}

static void dev_connect(struct dev *d)
{
	struct sim *s = d->sim;
	int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn(MOD, "dev=%" PRIu64 " ev=socket_failed err=%s", d->msisdn, strerror(errno));
		goto fail;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s->nsources > 0 && s->addr.ss_family == AF_INET) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		src.sin_addr = s->sources[dev_index(d) % s->nsources];
		/* the port is picked at connect() per 4-tuple, not per source address */
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			log_warn(MOD, "dev=%" PRIu64 " ev=bind_failed err=%s", d->msisdn, strerror(errno));
			close(fd);
			goto fail;
		}
	}
	if (connect(fd, (struct sockaddr *)&s->addr, s->addrlen) < 0 && errno != EINPROGRESS) {
		log_warn(MOD, "dev=%" PRIu64 " ev=connect_failed err=%s", d->msisdn, strerror(errno));
		close(fd);
		goto fail;
	}
	d->flags &= (uint8_t)~(F_EOF | F_DROP_NOW | F_CLOSE_NOW | F_ERRCLOSE);
	d->close_code = 0;
	ev_io_init(&d->io, dev_io_cb, fd, EV_WRITE);
	ev_io_start(s->loop, &d->io);
	ev_timer_set(&d->timer, HS_TIMEOUT, 0.);
	ev_timer_start(s->loop, &d->timer);
	dev_enter(d, DEV_CONNECTING);
	return;
fail:
	s->c.connect_fail++;
	s->c.errors++;
	dev_enter(d, DEV_IDLE);
	dev_close(d, -1);
}

/* Reconnect delay after an unwanted close: 1 s doubling to 60 s, +-25 % jitter. */
static int backoff_ms(struct dev *d)
{
	unsigned shift = d->backoff < BACKOFF_MAX_SHIFT ? d->backoff : BACKOFF_MAX_SHIFT;
	if (d->backoff < 255)
		d->backoff++;
	double base = (double)(1u << shift);
	if (base > 60.0)
		base = 60.0;
	return (int)(1000.0 * base * (0.75 + 0.5 * rnd_unit(d->sim)));
}

/*
 * Tears the connection down (if any) and frees its buffers.  reconnect_after_ms
 * >= 0 schedules a new connect, -1 picks a backoff delay, -2 never reconnects.
 */
static void dev_close(struct dev *d, int reconnect_after_ms)
{
	struct sim *s = d->sim;
	if (ev_is_active(&d->io) || d->state == DEV_CONNECTING || d->state == DEV_UPGRADING ||
	    d->state == DEV_HELLO || d->state == DEV_READY) {
		ev_io_stop(s->loop, &d->io);
		if (d->io.fd >= 0)
			close(d->io.fd);
		d->io.fd = -1;
	}
	ev_timer_stop(s->loop, &d->timer);
	if (d->ws) {
		wslay_event_context_free(d->ws);
		d->ws = NULL;
	}
	free(d->hs);
	d->hs = NULL;
	if (d->state != DEV_OFFLINE)
		dev_enter(d, DEV_IDLE);
	if (s->stopping || d->state == DEV_OFFLINE || reconnect_after_ms == -2)
		return;
	if (reconnect_after_ms == -1)
		reconnect_after_ms = backoff_ms(d);
	s->c.reconnects++;
	ev_timer_set(&d->timer, reconnect_after_ms / 1000.0, 0.);
	ev_timer_start(s->loop, &d->timer);
}

static void dev_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct dev *d = (struct dev *)((char *)w - offsetof(struct dev, timer));
	if (d->state == DEV_IDLE) {
		dev_queue(d);
		return;
	}
	/* handshake or welcome did not come in time */
	dev_error(d, "timeout");
	dev_close(d, -1);
}

/* --- WebSocket handshake ------------------------------------------------- */

static int hs_start(struct dev *d)
{
	struct sim *s = d->sim;
	uint8_t raw[16];
	char key[32];
	d->hs = malloc(sizeof(*d->hs));
	if (!d->hs)
		return -1;
	rnd_bytes(s, raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	if (ws_accept_for(key, d->hs->accept, sizeof(d->hs->accept)) < 0)
		return -1;
	int n = snprintf(d->hs->buf, sizeof(d->hs->buf),
			 "GET " WS_PATH " HTTP/1.1\r\n"
			 "Host: %s\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n"
			 "User-Agent: " PROG "\r\n"
			 "\r\n", s->url_host, key);
	if (n < 0 || (size_t)n >= sizeof(d->hs->buf))
		return -1;
	d->hs->len = (size_t)n;
	d->hs->off = 0;
	d->hs->reading = 0;
	return 0;
}

/* Value of header `name` in the header block [p, end), or NULL.  *vlen gets its length. */
static const char *hs_header(const char *p, const char *end, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;
			const char *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol + 1;
	}
	return NULL;
}

/* Whether the comma-separated header value contains token (case-insensitive). */
static int hs_has_token(const char *v, size_t vlen, const char *token)
{
	size_t tlen = strlen(token);
	size_t i = 0;
	while (i < vlen) {
		while (i < vlen && (v[i] == ' ' || v[i] == ','))
			i++;
		size_t j = i;
		while (j < vlen && v[j] != ',')
			j++;
		size_t e = j;
		while (e > i && v[e - 1] == ' ')
			e--;
		if (e - i == tlen && strncasecmp(v + i, token, tlen) == 0)
			return 1;
		i = j;
	}
	return 0;
}

/*
 * Checks the response headers in hs->buf[0, hdr_len).  0 when it is a valid
 * 101 for our key, -1 otherwise (what says why).
 */
static int hs_check_response(struct hs *h, size_t hdr_len, const char **what)
{
	const char *p = h->buf, *end = h->buf + hdr_len;
	if (hdr_len < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0) {
		*what = "bad_status_line";
		return -1;
	}
	if (memcmp(p + 9, "101", 3) != 0) {
		*what = "not_101";
		return -1;
	}
	const char *line2 = memchr(p, '\n', hdr_len);
	if (!line2) {
		*what = "bad_status_line";
		return -1;
	}
	line2++;
	size_t vlen;
	const char *v = hs_header(line2, end, "Upgrade", &vlen);
	if (!v || !hs_has_token(v, vlen, "websocket")) {
		*what = "no_upgrade_header";
		return -1;
	}
	v = hs_header(line2, end, "Connection", &vlen);
	if (!v || !hs_has_token(v, vlen, "upgrade")) {
		*what = "no_connection_upgrade";
		return -1;
	}
	v = hs_header(line2, end, "Sec-WebSocket-Accept", &vlen);
	if (!v || vlen != strlen(h->accept) || memcmp(v, h->accept, vlen) != 0) {
		*what = "bad_accept";
		return -1;
	}
	return 0;
}

/* --- wslay glue ---------------------------------------------------------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	(void)flags;
	struct dev *d = user;
	if (d->hs) {                    /* bytes that came right behind the 101 */
		size_t k = d->hs->len - d->hs->off;
		if (k > len)
			k = len;
		memcpy(buf, d->hs->buf + d->hs->off, k);
		d->hs->off += k;
		if (d->hs->off >= d->hs->len) {
			free(d->hs);
			d->hs = NULL;
		}
		return (ssize_t)k;
	}
	for (;;) {
		ssize_t r = recv(d->io.fd, buf, len, 0);
		if (r > 0)
			return r;
		if (r == 0) {
			d->flags |= F_EOF;
			wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		else {
			d->flags |= F_EOF;
			wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		}
		return -1;
	}
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	(void)flags;
	struct dev *d = user;
	for (;;) {
		ssize_t r = send(d->io.fd, data, len, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		else
			wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	struct dev *d = user;
	rnd_bytes(d->sim, buf, len);
	return 0;
}

static int dev_send_text(struct dev *d, const char *text, size_t len)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)text, len };
	if (!d->ws || wslay_event_queue_msg(d->ws, &m) != 0) {
		dev_error(d, "queue_failed");
		return -1;
	}
	return 0;
}

static void dev_send_ack(struct dev *d, json_int_t id)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "{\"type\":\"ack\",\"id\":%" JSON_INTEGER_FORMAT "}", id);
	if (dev_send_text(d, buf, (size_t)n) == 0)
		d->sim->c.acks++;
}

static void dev_send_reject(struct dev *d, const char *sender)
{
	json_t *o = json_pack("{s:s, s:s}", "type", "reject", "sender", sender);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (text && dev_send_text(d, text, strlen(text)) == 0)
		d->sim->c.rejects++;
	free(text);
	json_decref(o);
}

static void on_welcome(struct dev *d, json_t *j)
{
	struct sim *s = d->sim;
	if (d->state != DEV_HELLO) {
		dev_error(d, "unexpected_welcome");
		return;
	}
	json_t *m = json_object_get(j, "msisdn");
	if (!json_is_string(m) || strtoull(json_string_value(m), NULL, 10) != d->msisdn ||
	    !json_is_integer(json_object_get(j, "device_id"))) {
		dev_error(d, "bad_welcome");
		d->flags |= F_CLOSE_NOW;
		return;
	}
	ev_timer_stop(s->loop, &d->timer);
	dev_enter(d, DEV_READY);
	d->flags |= F_WELCOMED;
	d->backoff = 0;
	s->c.welcomes++;
	log_debug(MOD, "dev=%" PRIu64 " ev=welcome behaviour=%s", d->msisdn, behaviour_names[d->behaviour]);
}

static void on_msg(struct dev *d, json_t *j)
{
	struct sim *s = d->sim;
	json_t *id = json_object_get(j, "id");
	json_t *sender = json_object_get(j, "sender");
	if (d->state != DEV_READY) {
		dev_error(d, "msg_before_welcome");
		return;
	}
	if (!json_is_integer(id) || !json_is_string(sender)) {
		dev_error(d, "bad_msg");
		return;
	}
	s->c.msgs++;
	int fresh = seen_add(s, dev_index(d), (int64_t)json_integer_value(id));
	if (fresh < 0) {
		dev_error(d, "out_of_memory");
		return;
	}
	if (fresh == 0)
		s->c.dup_msgs++;
	switch ((enum behaviour)d->behaviour) {
	case B_REJECT:
		if (!(d->flags & F_REJECTED)) {
			d->flags |= F_REJECTED;
			dev_send_reject(d, json_string_value(sender));
		}
		break;
	case B_DROP:
		dev_send_ack(d, json_integer_value(id));
		if (!(d->flags & F_DROPPED)) {
			d->flags |= F_DROPPED | F_DROP_NOW;
			s->c.drops++;
		}
		break;
	case B_ACK:
		dev_send_ack(d, json_integer_value(id));
		break;
	case B_OFFLINE:
		dev_error(d, "msg_to_offline_device");
		break;
	}
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	(void)ctx;
	struct dev *d = user;
	if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		d->close_code = arg->status_code;
		return;
	}
	if (arg->opcode != WSLAY_TEXT_FRAME)
		return;                 /* pings are answered by wslay; binary is not in the protocol */
	json_error_t err;
	json_t *j = json_loadb((const char *)arg->msg, arg->msg_length, JSON_REJECT_DUPLICATES, &err);
	const char *type = j ? json_string_value(json_object_get(j, "type")) : NULL;
	if (!type) {
		dev_error(d, "frame_not_json_object_with_type");
		json_decref(j);
		return;
	}
	if (strcmp(type, "msg") == 0)
		on_msg(d, j);
	else if (strcmp(type, "welcome") == 0)
		on_welcome(d, j);
	else if (strcmp(type, "pong") == 0 || strcmp(type, "rejected") == 0 || strcmp(type, "allowed") == 0)
		;
	else if (strcmp(type, "error") == 0) {
		char code[64], msg[160];
		const char *c = json_string_value(json_object_get(j, "code"));
		const char *m = json_string_value(json_object_get(j, "message"));
		safe_copy(code, sizeof(code), c ? c : "-", c ? strlen(c) : 1);
		safe_copy(msg, sizeof(msg), m ? m : "-", m ? strlen(m) : 1);
		d->sim->c.errors++;
		log_warn(MOD, "dev=%" PRIu64 " ev=server_error code=%s message=\"%s\"", d->msisdn, code, msg);
	} else {
		char t[64];
		safe_copy(t, sizeof(t), type, strlen(type));
		dev_error(d, "unknown_frame_type");
		log_warn(MOD, "dev=%" PRIu64 " ev=unknown_type type=%s", d->msisdn, t);
	}
	json_decref(j);
}

static const struct wslay_event_callbacks ws_callbacks = {
	.recv_callback = ws_recv_cb,
	.send_callback = ws_send_cb,
	.genmask_callback = ws_genmask_cb,
	.on_msg_recv_callback = ws_msg_cb,
};

/* The 101 is in; leftover bytes (if any) stay in d->hs for ws_recv_cb. */
static int dev_ws_start(struct dev *d, size_t hdr_len)
{
	struct hs *h = d->hs;
	if (wslay_event_context_client_init(&d->ws, &ws_callbacks, d) != 0) {
		d->ws = NULL;
		return -1;
	}
	wslay_event_config_set_max_recv_msg_length(d->ws, MAX_FRAME);
	h->off = hdr_len;
	if (h->off >= h->len) {
		free(d->hs);
		d->hs = NULL;
	}
	char hello[TOKEN_MAX + 40];
	int n = snprintf(hello, sizeof(hello), "{\"type\":\"hello\",\"token\":\"%s\"}", dev_token(d));
	if (n < 0 || (size_t)n >= sizeof(hello))
		return -1;
	dev_enter(d, DEV_HELLO);
	return dev_send_text(d, hello, (size_t)n);
}

/* Drives wslay after readiness; closes the connection when it is over. */
static void dev_ws_io(struct dev *d, int revents)
{
	struct sim *s = d->sim;
	if ((revents & EV_READ) || d->hs) {
		if (wslay_event_recv(d->ws) != 0 && !(d->flags & F_EOF)) {
			dev_error(d, "ws_protocol");
			dev_close(d, -1);
			return;
		}
	}
	if (wslay_event_want_write(d->ws) && wslay_event_send(d->ws) != 0) {
		/* after the server's close frame a failed write is part of that close */
		if (!(d->flags & (F_DROP_NOW | F_EOF)) && !wslay_event_get_close_received(d->ws)) {
			dev_error(d, "ws_send");
			dev_close(d, -1);
			return;
		}
		d->flags |= F_EOF;
	}
	if (d->flags & F_DROP_NOW) {    /* the ack went out (or is in the kernel): vanish */
		dev_close(d, (int)(DROP_RECONNECT * 1000));
		return;
	}
	if (d->flags & F_CLOSE_NOW) {
		dev_close(d, -1);
		return;
	}
	if ((d->flags & F_EOF) || (!wslay_event_want_read(d->ws) && !wslay_event_want_write(d->ws))) {
		if (!s->stopping) {
			s->c.closed_by_server++;
			s->c.errors++;
			log_warn(MOD, "dev=%" PRIu64 " ev=closed_by_server code=%u state=%s", d->msisdn,
				 (unsigned)d->close_code, state_names[d->state]);
		}
		dev_close(d, -1);
		return;
	}
	dev_set_events(d, EV_READ | (wslay_event_want_write(d->ws) ? EV_WRITE : 0));
}

static void dev_upgrade_io(struct dev *d, int revents)
{
	struct hs *h = d->hs;
	if (!h->reading) {
		if (!(revents & EV_WRITE))
			return;
		ssize_t r = send(d->io.fd, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r < 0) {
			dev_error(d, "handshake_send");
			dev_close(d, -1);
			return;
		}
		h->off += (size_t)r;
		if (h->off < h->len)
			return;
		h->reading = 1;
		h->len = h->off = 0;
		dev_set_events(d, EV_READ);
		return;
	}
	if (!(revents & EV_READ))
		return;
	ssize_t r = recv(d->io.fd, h->buf + h->len, sizeof(h->buf) - 1 - h->len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r <= 0) {
		dev_error(d, r == 0 ? "handshake_eof" : "handshake_recv");
		dev_close(d, -1);
		return;
	}
	h->len += (size_t)r;
	h->buf[h->len] = '\0';
	char *end = strstr(h->buf, "\r\n\r\n");
	if (!end) {
		if (h->len >= sizeof(h->buf) - 1) {
			dev_error(d, "handshake_too_long");
			dev_close(d, -1);
		}
		return;
	}
	size_t hdr_len = (size_t)(end - h->buf) + 4;
	const char *what = NULL;
	if (hs_check_response(h, hdr_len, &what) < 0) {
		char line[80];
		const char *eol = memchr(h->buf, '\r', hdr_len);
		safe_copy(line, sizeof(line), h->buf, eol ? (size_t)(eol - h->buf) : 0);
		dev_error(d, what);
		log_warn(MOD, "dev=%" PRIu64 " ev=handshake_refused status=\"%s\"", d->msisdn, line);
		dev_close(d, -1);
		return;
	}
	if (dev_ws_start(d, hdr_len) < 0) {
		dev_error(d, "ws_init");
		dev_close(d, -1);
		return;
	}
	dev_ws_io(d, EV_WRITE);
}

static void dev_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct dev *d = (struct dev *)((char *)w - offsetof(struct dev, io));
	switch ((enum dev_state)d->state) {
	case DEV_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(d->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			d->sim->c.connect_fail++;
			log_warn(MOD, "dev=%" PRIu64 " ev=connect_failed err=%s", d->msisdn, strerror(err));
			dev_error(d, "connect");
			dev_close(d, -1);
			return;
		}
		if (hs_start(d) < 0) {
			dev_error(d, "handshake_alloc");
			dev_close(d, -1);
			return;
		}
		dev_enter(d, DEV_UPGRADING);
		dev_upgrade_io(d, EV_WRITE);
		return;
	}
	case DEV_UPGRADING:
		dev_upgrade_io(d, revents);
		return;
	case DEV_HELLO:
	case DEV_READY:
		dev_ws_io(d, revents);
		return;
	case DEV_IDLE:
	case DEV_QUEUED:
	case DEV_OFFLINE:
		log_warn(MOD, "dev=%" PRIu64 " ev=io_in_unexpected_state state=%s", d->msisdn,
			 state_names[d->state]);
		ev_io_stop(d->sim->loop, &d->io);
		return;
	}
}

/* --- the run ------------------------------------------------------------- */

static void print_report(struct sim *s, const char *prefix)
{
	printf("%sdevices=%zu connected=%zu msgs=%" PRIu64 " acks=%" PRIu64 " rejects=%" PRIu64
	       " dup_msgs=%" PRIu64 " errors=%" PRIu64 "\n", prefix, s->ndevs, s->connected, s->c.msgs,
	       s->c.acks, s->c.rejects, s->c.dup_msgs, s->c.errors);
	fflush(stdout);
}

static void pump_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	struct sim *s = w->data;
	while (!s->stopping && s->qlen > 0 && s->inflight < s->max_inflight) {
		struct dev *d = &s->devs[s->queue[s->qhead]];
		s->qhead = (s->qhead + 1) % s->ndevs;
		s->qlen--;
		dev_enter(d, DEV_IDLE);
		dev_connect(d);
	}
	if (!s->all_connected_said && s->connected == s->expected) {
		s->all_connected_said = 1;
		printf("event=all_connected devices=%zu connected=%zu t=%.3f\n", s->ndevs, s->connected,
		       ev_now(s->loop) - s->t0);
		fflush(stdout);
	}
}

static void report_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	print_report(w->data, "");
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct sim *s = w->data;
	s->stopping = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	struct sim *s = w->data;
	log_info(MOD, "ev=signal sig=%d", w->signum);
	s->stopping = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void raise_nofile(size_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rlim_t want = (rlim_t)need;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		struct rlimit more = { want, want };   /* works with CAP_SYS_RESOURCE */
		if (setrlimit(RLIMIT_NOFILE, &more) == 0) {
			log_info(MOD, "ev=nofile_raised soft=%zu hard=%zu", need, need);
			return;
		}
	}
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warn(MOD, "ev=nofile_too_low limit=%llu need=%zu hint=\"ulimit -Hn or run as root\"",
			 (unsigned long long)rl.rlim_cur, need);
}

/* Gives each device its behaviour: exact counts from the ratios, shuffled. */
static void assign_behaviours(struct sim *s, double ack, double reject, double offline, double drop)
{
	double total = ack + reject + offline + drop;
	size_t n = s->ndevs;
	size_t nrej = (size_t)(n * reject / total + 0.5);
	size_t noff = (size_t)(n * offline / total + 0.5);
	size_t ndrop = (size_t)(n * drop / total + 0.5);
	if (nrej > n)
		nrej = n;
	if (noff > n - nrej)
		noff = n - nrej;
	if (ndrop > n - nrej - noff)
		ndrop = n - nrej - noff;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = B_ACK;
		if (i < nrej)
			b = B_REJECT;
		else if (i < nrej + noff)
			b = B_OFFLINE;
		else if (i < nrej + noff + ndrop)
			b = B_DROP;
		s->devs[i].behaviour = b;
	}
	for (size_t i = n; i > 1; i--) {        /* Fisher-Yates */
		uint64_t r;
		rnd_bytes(s, &r, sizeof(r));
		size_t j = (size_t)(r % i);
		uint8_t t = s->devs[i - 1].behaviour;
		s->devs[i - 1].behaviour = s->devs[j].behaviour;
		s->devs[j].behaviour = t;
	}
	s->expected = n - noff;
	log_info(MOD, "ev=behaviours ack=%zu reject=%zu offline=%zu drop=%zu", n - nrej - noff - ndrop, nrej,
		 noff, ndrop);
}

/* --- registration (blocking, before the loop runs) ------------------------ */

struct body {
	char *data;
	size_t len;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct body *b = user;
	size_t n = size * nmemb;
	if (b->len + n > HTTP_BODY_MAX)
		return 0;
	char *p = realloc(b->data, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, ptr, n);
	b->data = p;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* POST url with a JSON body.  Returns the HTTP status (0 on transport error); *out gets parsed JSON or NULL. */
static long http_post_json(CURL *curl, const char *url, const char *json, json_t **out)
{
	struct body b = { NULL, 0 };
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	long status = 0;
	*out = NULL;
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (b.data)
		*out = json_loadb(b.data, b.len, 0, NULL);
	curl_slist_free_all(hdrs);
	free(b.data);
	return status;
}

/* Newest OTP message id for msisdn and its 6-digit code (code[0] = 0 when none). */
static int db_newest_code(PGconn *pg, const char *msisdn, long long *id, char code[7])
{
	const char *params[1] = { msisdn };
	PGresult *r = PQexecParams(pg,
				   "SELECT m.id, coalesce(r.text, m.body) FROM messages m JOIN recipients r ON r.message_id = m.id"
				   " WHERE r.msisdn = $1 ORDER BY m.id DESC LIMIT 1", 1, NULL, params, NULL, NULL, 0);
	*id = 0;
	code[0] = '\0';
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_error(MOD, "ev=code_query_failed err=\"%s\"", PQerrorMessage(pg));
		PQclear(r);
		return -1;
	}
	if (PQntuples(r) == 1) {
		*id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		const char *b = PQgetvalue(r, 0, 1);
		for (size_t i = 0; b[i]; i++) {
			size_t k = 0;
			while (k < 7 && b[i + k] >= '0' && b[i + k] <= '9')
				k++;
			if (k == 6 && (i == 0 || b[i - 1] < '0' || b[i - 1] > '9')) {
				memcpy(code, b + i, 6);
				code[6] = '\0';
				break;
			}
			if (k > 0)
				i += k - 1;
		}
	}
	PQclear(r);
	return 0;
}

static int valid_token(const char *t, size_t len)
{
	if (len == 0 || len >= TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='))
			return 0;
	}
	return 1;
}

/* Registers one device; writes its token into tok (NUL-terminated). */
static int register_one(CURL *curl, PGconn *pg, const char *base, const char *msisdn, char *tok, size_t toklen)
{
	char url[512], body[128];
	json_t *j = NULL;
	long long before = 0, id = 0;
	char code[7];
	if (db_newest_code(pg, msisdn, &before, code) < 0)
		return -1;
	snprintf(url, sizeof(url), "%.255s/v1/devices", base);
	snprintf(body, sizeof(body), "{\"msisdn\":\"%s\",\"platform\":\"" PROG "\"}", msisdn);
	long st = 0;
	for (int attempt = 0; attempt < 3; attempt++) {
		st = http_post_json(curl, url, body, &j);
		if (st != 429)
			break;
		json_decref(j);
		j = NULL;
		log_info(MOD, "msisdn=%s ev=register_rate_limited wait_s=31", msisdn);
		sleep(31);
	}
	json_t *dev_id = json_object_get(j, "device_id");
	if (st != 202 || !json_is_integer(dev_id)) {
		log_error(MOD, "msisdn=%s ev=register_failed status=%ld", msisdn, st);
		json_decref(j);
		return -1;
	}
	json_int_t device_id = json_integer_value(dev_id);
	json_decref(j);
	j = NULL;
	uint64_t until = util_now_ms() + (uint64_t)(CODE_WAIT_S * 1000);
	for (;;) {
		if (db_newest_code(pg, msisdn, &id, code) < 0)
			return -1;
		if (id > before && code[0])
			break;
		if (util_now_ms() > until) {
			log_error(MOD, "msisdn=%s ev=no_code_in_db wait_s=%.0f", msisdn, CODE_WAIT_S);
			return -1;
		}
		usleep(50 * 1000);
	}
	snprintf(url, sizeof(url), "%.255s/v1/devices/%" JSON_INTEGER_FORMAT "/verify", base, device_id);
	snprintf(body, sizeof(body), "{\"code\":\"%s\"}", code);
	st = http_post_json(curl, url, body, &j);
	const char *t = json_string_value(json_object_get(j, "token"));
	if (st != 200 || !t || !valid_token(t, strlen(t)) || strlen(t) >= toklen) {
		log_error(MOD, "msisdn=%s ev=verify_failed status=%ld", msisdn, st);
		json_decref(j);
		return -1;
	}
	util_strlcpy(tok, t, toklen);
	json_decref(j);
	return 0;
}

static int register_all(const char *base, const char *conninfo, uint64_t msisdn_base, size_t n, const char *path)
{
	int rc = -1;
	FILE *f = fopen(path, "w");
	CURL *curl = curl_easy_init();
	PGconn *pg = PQconnectdb(conninfo);
	if (!f || !curl || PQstatus(pg) != CONNECTION_OK) {
		log_error(MOD, "ev=register_setup_failed tokens=%s db=\"%s\"", f ? "ok" : strerror(errno),
			  pg ? PQerrorMessage(pg) : "no memory");
		goto out;
	}
	uint64_t t0 = util_now_ms();
	for (size_t i = 0; i < n; i++) {
		char msisdn[24], tok[TOKEN_MAX];
		snprintf(msisdn, sizeof(msisdn), "%" PRIu64, msisdn_base + i);
		if (register_one(curl, pg, base, msisdn, tok, sizeof(tok)) < 0)
			goto out;
		fprintf(f, "%s %s\n", msisdn, tok);
	}
	log_info(MOD, "ev=registered devices=%zu ms=%" PRIu64, n, util_now_ms() - t0);
	rc = 0;
out:
	if (f && fclose(f) != 0)
		rc = -1;
	if (curl)
		curl_easy_cleanup(curl);
	PQfinish(pg);
	return rc;
}

/* Reads "msisdn token" lines; sets s->ndevs to min(want, lines) (want 0 = all). */
static int load_tokens(struct sim *s, const char *path, size_t want)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		log_error(MOD, "ev=tokens_open_failed path=%s err=%s", path, strerror(errno));
		return -1;
	}
	size_t cap = 0, lineno = 0;
	char line[512];
	int rc = -1;
	s->ndevs = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (want && s->ndevs == want)
			break;
		char *msisdn = strtok(line, " \t\r\n");
		char *tok = msisdn ? strtok(NULL, " \t\r\n") : NULL;
		if (!msisdn || msisdn[0] == '#')
			continue;
		long long m;
		char *end;
		errno = 0;
		m = strtoll(msisdn, &end, 10);
		if (!tok || *end || errno || m <= 0 || !valid_token(tok, strlen(tok))) {
			log_error(MOD, "ev=tokens_bad_line path=%s line=%zu", path, lineno);
			goto out;
		}
		if (s->ndevs == cap) {
			cap = cap ? cap * 2 : 1024;
			struct dev *d = realloc(s->devs, cap * sizeof(*d));
			if (!d)
				goto out;
			s->devs = d;
		}
		size_t tl = strlen(tok);
		char *t = realloc(s->tokens, s->tokens_len + tl + 1);
		if (!t || s->tokens_len > UINT32_MAX - TOKEN_MAX)
			goto out;
		s->tokens = t;
		memcpy(s->tokens + s->tokens_len, tok, tl + 1);
		struct dev *d = &s->devs[s->ndevs++];
		memset(d, 0, sizeof(*d));
		d->msisdn = (uint64_t)m;
		d->token_off = (uint32_t)s->tokens_len;
		d->token_len = (uint16_t)tl;
		s->tokens_len += tl + 1;
	}
	if (want && s->ndevs < want) {
		log_error(MOD, "ev=tokens_too_few path=%s have=%zu want=%zu", path, s->ndevs, want);
		goto out;
	}
	if (s->ndevs == 0) {
		log_error(MOD, "ev=tokens_empty path=%s", path);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

/* --- main ------------------------------------------------------------------ */

static const char usage_text[] =
	"usage: " PROG " --url http://HOST:PORT [options]\n"
	"\n"
	"  --devices N            devices to simulate (default: every line of --tokens, or 1)\n"
	"  --msisdn-base NUM      first number for --register (default 821090000000)\n"
	"  --tokens FILE          \"msisdn token\" lines: read, or written by --register\n"
	"  --register             register the devices first (needs --codes-from-db)\n"
	"  --codes-from-db CONN   libpq conninfo of pushgated's database, to read the codes\n"
	"  --ack-ratio R          share of devices that ack every msg (default: the rest)\n"
	"  --reject-ratio R       share that rejects the sender of its first msg (default 0)\n"
	"  --offline-ratio R      share that never connects (default 0)\n"
	"  --drop-ratio R         share that acks, drops the link after its first msg, reconnects 1 s later\n"
	"  --duration S           run for S seconds (default 10)\n"
	"  --source-addrs A,B,... bind client sockets to these IPv4 sources, round robin\n"
	"  --report-every S       report line interval (default 1)\n"
	"  --max-connecting N     connections in handshake at once (default 256)\n"
	"  --verbose              log every state change\n"
	"\n"
	"Prints \"devices=N connected=N msgs=N acks=N rejects=N dup_msgs=N errors=N\" per\n"
	"interval and a summary.  Exit 0 when every expected device connected and no\n"
	"protocol error happened, 1 otherwise, 2 on a usage error.\n";

static int usage_error(const char *what)
{
	fprintf(stderr, PROG ": %s\n\n%s", what, usage_text);
	return EXIT_USAGE;
}

static int parse_url(struct sim *s, const char *url)
{
	if (strncmp(url, "http://", 7) != 0)
		return -1;
	const char *host = url + 7;
	size_t hl = strcspn(host, "/");
	if (hl == 0 || hl >= sizeof(s->url_host))
		return -1;
	memcpy(s->url_host, host, hl);
	s->url_host[hl] = '\0';
	if (host[hl] != '\0' && strcmp(host + hl, "/") != 0)
		return -1;      /* no path prefix: the protocol's paths are absolute */
	snprintf(s->url_base, sizeof(s->url_base), "http://%s", s->url_host);
	return util_parse_addr(s->url_host, &s->addr, &s->addrlen);
}

static int parse_sources(struct sim *s, const char *list)
{
	char buf[2048];
	if (util_strlcpy(buf, list, sizeof(buf)) >= sizeof(buf))
		return -1;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (s->nsources == MAX_SOURCES || inet_pton(AF_INET, tok, &s->sources[s->nsources]) != 1)
			return -1;
		s->nsources++;
	}
	return s->nsources > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "devices", required_argument, NULL, 'n' },
		{ "msisdn-base", required_argument, NULL, 'm' },
		{ "tokens", required_argument, NULL, 't' },
		{ "register", no_argument, NULL, 'R' },
		{ "codes-from-db", required_argument, NULL, 'd' },
		{ "ack-ratio", required_argument, NULL, 'a' },
		{ "reject-ratio", required_argument, NULL, 'j' },
		{ "offline-ratio", required_argument, NULL, 'o' },
		{ "drop-ratio", required_argument, NULL, 'x' },
		{ "duration", required_argument, NULL, 'D' },
		{ "source-addrs", required_argument, NULL, 's' },
		{ "report-every", required_argument, NULL, 'r' },
		{ "max-connecting", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct sim sim;          /* large (rnd pool); one per process */
	struct sim *s = &sim;
	const char *url = NULL, *tokens = NULL, *conninfo = NULL;
	long ndev = 0, msisdn_base_l = 0, max_conn = 256;
	uint64_t msisdn_base = 821090000000ull;
	double ack = -1, reject = 0, offline = 0, drop = 0;
	int do_register = 0, opt;
	s->duration = 10;
	s->report_every = 1;
	s->rnd_off = sizeof(s->rnd);
	while ((opt = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		int bad = 0;
		switch (opt) {
		case 'u': url = optarg; break;
		case 'n': bad = util_parse_long(optarg, 1, 10000000, &ndev); break;
		case 'm':
			bad = util_parse_long(optarg, 1, 999999999999999L, &msisdn_base_l);
			msisdn_base = (uint64_t)msisdn_base_l;
			break;
		case 't': tokens = optarg; break;
		case 'R': do_register = 1; break;
		case 'd': conninfo = optarg; break;
		case 'a': bad = util_parse_double(optarg, 0, 1, &ack); break;
		case 'j': bad = util_parse_double(optarg, 0, 1, &reject); break;
		case 'o': bad = util_parse_double(optarg, 0, 1, &offline); break;
		case 'x': bad = util_parse_double(optarg, 0, 1, &drop); break;
		case 'D': bad = util_parse_double(optarg, 0.1, 86400 * 7, &s->duration); break;
		case 's': bad = parse_sources(s, optarg); break;
		case 'r': bad = util_parse_double(optarg, 0.05, 3600, &s->report_every); break;
		case 'c': bad = util_parse_long(optarg, 1, 100000, &max_conn); break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': fputs(usage_text, stdout); return EXIT_OK;
		case 'V': printf(PROG " %s\n", PACKAGE_VERSION); return EXIT_OK;
		default: return usage_error("unknown option");
		}
		if (bad)
			return usage_error("bad option value");
	}
	if (optind != argc)
		return usage_error("unexpected argument");
	if (!url || parse_url(s, url) < 0)
		return usage_error("--url http://HOST:PORT is required (numeric host or localhost)");
	if (s->nsources && s->addr.ss_family != AF_INET)
		return usage_error("--source-addrs needs an IPv4 --url");
	if (do_register && (!conninfo || !tokens || !ndev))
		return usage_error("--register needs --devices, --tokens and --codes-from-db");
	if (!tokens)
		return usage_error("--tokens FILE is required");
	if (ack < 0)
		ack = reject + offline + drop >= 1 ? 0 : 1 - (reject + offline + drop);
	if (ack + reject + offline + drop <= 0)
		return usage_error("the ratios add up to 0");
	s->max_inflight = (size_t)max_conn;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	if (do_register &&
	    register_all(s->url_base, conninfo, msisdn_base, (size_t)ndev, tokens) < 0) {
		curl_global_cleanup();
		return EXIT_FAIL;
	}
	if (load_tokens(s, tokens, (size_t)ndev) < 0) {
		curl_global_cleanup();
		free(s->devs);
		free(s->tokens);
		return EXIT_FAIL;
	}
	raise_nofile(s->ndevs + 64);
	s->queue = calloc(s->ndevs, sizeof(*s->queue));
	if (!s->queue) {
		log_error(MOD, "ev=out_of_memory");
		return EXIT_FAIL;
	}
	s->loop = ev_default_loop(EVFLAG_AUTO);
	for (size_t i = 0; i < s->ndevs; i++) {
		struct dev *d = &s->devs[i];
		d->sim = s;
		d->io.fd = -1;
		ev_init(&d->io, dev_io_cb);
		ev_init(&d->timer, dev_timer_cb);
	}
	assign_behaviours(s, ack, reject, offline, drop);
	for (size_t i = 0; i < s->ndevs; i++) {
		if (s->devs[i].behaviour == B_OFFLINE)
			s->devs[i].state = DEV_OFFLINE;
		else
			dev_queue(&s->devs[i]);
	}
	log_info(MOD, "ev=start devices=%zu expected_online=%zu url=%s sources=%zu duration=%.1f "
		 "bytes_per_device=%zu", s->ndevs, s->expected, s->url_base, s->nsources, s->duration,
		 sizeof(struct dev));
	s->t0 = ev_now(s->loop);
	ev_prepare_init(&s->pump, pump_cb);
	s->pump.data = s;
	ev_prepare_start(s->loop, &s->pump);
	ev_timer_init(&s->report_timer, report_cb, s->report_every, s->report_every);
	s->report_timer.data = s;
	ev_timer_start(s->loop, &s->report_timer);
	ev_timer_init(&s->stop_timer, stop_cb, s->duration, 0.);
	s->stop_timer.data = s;
	ev_timer_start(s->loop, &s->stop_timer);
	ev_signal_init(&s->sigint, signal_cb, SIGINT);
	s->sigint.data = s;
	ev_signal_start(s->loop, &s->sigint);
	ev_signal_init(&s->sigterm, signal_cb, SIGTERM);
	s->sigterm.data = s;
	ev_signal_start(s->loop, &s->sigterm);

	ev_run(s->loop, 0);

	s->stopping = 1;
	size_t welcomed = 0;
	for (size_t i = 0; i < s->ndevs; i++)
		welcomed += (s->devs[i].flags & F_WELCOMED) != 0;
	size_t connected_at_end = s->connected;
	print_report(s, "");
	int ok = welcomed == s->expected && s->c.errors == 0;
	printf("summary devices=%zu expected=%zu ever_connected=%zu connected=%zu msgs=%" PRIu64
	       " acks=%" PRIu64 " rejects=%" PRIu64 " dup_msgs=%" PRIu64 " drops=%" PRIu64
	       " reconnects=%" PRIu64 " closed_by_server=%" PRIu64 " connect_failures=%" PRIu64
	       " errors=%" PRIu64 " elapsed=%.3f ok=%d\n", s->ndevs, s->expected, welcomed,
	       connected_at_end, s->c.msgs, s->c.acks, s->c.rejects, s->c.dup_msgs, s->c.drops,
	       s->c.reconnects, s->c.closed_by_server, s->c.connect_fail, s->c.errors,
	       ev_now(s->loop) - s->t0, ok);
	fflush(stdout);

	for (size_t i = 0; i < s->ndevs; i++) {
		struct dev *d = &s->devs[i];
		if (d->ws) {            /* polite close; no wait for the answer */
			wslay_event_queue_close(d->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
			(void)wslay_event_send(d->ws);
		}
		dev_close(d, -2);
	}
	ev_prepare_stop(s->loop, &s->pump);
	ev_timer_stop(s->loop, &s->report_timer);
	ev_timer_stop(s->loop, &s->stop_timer);
	ev_signal_stop(s->loop, &s->sigint);
	ev_signal_stop(s->loop, &s->sigterm);
	ev_loop_destroy(s->loop);
	free(s->devs);
	free(s->tokens);
	free(s->queue);
	free(s->seen);
	curl_global_cleanup();
	return ok ? EXIT_OK : EXIT_FAIL;
}
