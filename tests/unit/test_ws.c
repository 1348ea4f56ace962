/*
 * test_ws.c: the WebSocket server layer over real sockets on 127.0.0.1.
 * An http_server whose handler upgrades /ws with ws_accept(); the client
 * is a plain socket in this file that writes masked frames by hand and
 * parses the server's frames.  The loop is driven by the test (ev_run
 * NOWAIT) in loops bounded by a deadline.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "ws.h"

#define SAMPLE_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

struct fx {
	struct ev_loop *loop;
	struct http_server *srv;
	struct ws_config wcfg;
	struct ws_conn *conn;
	int accepted;
	int echo;
	int close_on_text;
	int texts;
	char last_text[4096];
	size_t last_len;
	int closes;
	int close_code;
	int send_in_close_rv;
	void *user_in_close;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_text(struct ws_conn *c, const char *data, size_t len, void *arg)
{
	struct fx *f = arg;
	assert_ptr_equal(c, f->conn);
	f->texts++;
	f->last_len = len < sizeof(f->last_text) ? len : sizeof(f->last_text) - 1;
	memcpy(f->last_text, data, f->last_len);
	f->last_text[f->last_len] = '\0';
	if (f->echo)
		assert_int_equal(ws_send_text(c, data, len), 0);
	if (f->close_on_text)
		ws_close(c, 4000, "done here");
}

static void on_close(struct ws_conn *c, int code, void *arg)
{
	struct fx *f = arg;
	assert_ptr_equal(c, f->conn);
	f->closes++;
	f->close_code = code;
	f->send_in_close_rv = ws_send_text(c, "x", 1);
	f->user_in_close = ws_user(c);
	ws_close(c, 1000, "ignored");          /* harmless while closing */
	f->conn = NULL;
}

static const struct ws_callbacks cbs = { .on_text = on_text, .on_close = on_close };

static void handler(struct http_request *req, void *arg)
{
	struct fx *f = arg;
	if (strcmp(req->path, "/ws") != 0) {
		http_respond(req, 404, NULL, "{}", 2);
		return;
	}
	char peer[64];
	snprintf(peer, sizeof(peer), "%s", req->peer);
	struct ws_conn *c = ws_accept(f->loop, req, &f->wcfg, &cbs, f);
	if (c) {
		assert_null(f->conn);
		f->conn = c;
		f->accepted++;
		assert_string_equal(ws_peer(c), peer);
		ws_set_user(c, f);
	}
}

static struct fx *fx_start(size_t max_message, double ping, double idle)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	f->wcfg.max_message = max_message;
	f->wcfg.ping_interval = ping;
	f->wcfg.idle_timeout = idle;
	f->echo = 1;
	f->send_in_close_rv = 99;
	struct http_config hc = { .listen = "127.0.0.1:0", .max_body = 4096, .max_header = 4096,
				  .idle_timeout = 5, .max_conns = 16 };
	char err[256] = "";
	f->srv = http_server_new(f->loop, &hc, handler, f, err, sizeof(err));
	if (!f->srv)
		fail_msg("http_server_new: %s", err);
	return f;
}

static void fx_stop(struct fx *f)
{
	assert_null(f->conn);                 /* every test ends with its connection closed */
	assert_int_equal(ws_count(), 0);
	http_server_free(f->srv);
	ev_loop_destroy(f->loop);
	free(f);
}

static void pump(struct fx *f, double seconds, const int *until)
{
	double end = now_s() + seconds;
	while (now_s() < end && !(until && *until)) {
		ev_run(f->loop, EVRUN_NOWAIT);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

static int client_connect(struct fx *f)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)http_server_port(f->srv)) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void client_send(int fd, const void *data, size_t len)
{
	assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads an HTTP response head (and a short body) into buf, driving the loop. */
static size_t read_http(struct fx *f, int fd, char *buf, size_t cap)
{
	size_t len = 0;
	double end = now_s() + 2.0;
	while (now_s() < end && len < cap - 1) {
		ev_run(f->loop, EVRUN_NOWAIT);
		ssize_t n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n > 0) {
			len += (size_t)n;
			buf[len] = '\0';
			const char *head_end = strstr(buf, "\r\n\r\n");
			if (head_end && strncmp(buf, "HTTP/1.1 101", 12) == 0)
				return len;    /* frames may follow: leave them */
			continue;
		}
		if (n == 0)
			break;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		poll(&pfd, 1, 1);
	}
	buf[len] = '\0';
	return len;
}

/* One frame from the client: masked unless told otherwise. */
static size_t frame(uint8_t *out, int fin, int opcode, const void *payload, size_t len, int masked)
{
	static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	size_t o = 0;
	out[o++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	uint8_t m = masked ? 0x80 : 0;
	if (len < 126) {
		out[o++] = (uint8_t)(m | len);
	} else if (len < 65536) {
		out[o++] = (uint8_t)(m | 126);
		out[o++] = (uint8_t)(len >> 8);
		out[o++] = (uint8_t)len;
	} else {
		out[o++] = (uint8_t)(m | 127);
		for (int i = 7; i >= 0; i--)
			out[o++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	if (masked) {
		memcpy(out + o, mask, 4);
		o += 4;
	}
	const uint8_t *p = payload;
	for (size_t i = 0; i < len; i++)
		out[o + i] = masked ? (uint8_t)(p[i] ^ mask[i % 4]) : p[i];
	return o + len;
}

static void send_frame(int fd, int fin, int opcode, const void *payload, size_t len, int masked)
{
	uint8_t *buf = malloc(len + 14);
	assert_non_null(buf);
	size_t n = frame(buf, fin, opcode, payload, len, masked);
	client_send(fd, buf, n);
	free(buf);
}

/* Client side of a connection: bytes received but not yet parsed as frames. */
struct client {
	int fd;
	uint8_t buf[1 << 17];
	size_t len;
	int eof;
};

/*
 * Next server frame (unmasked): opcode, payload (NUL-terminated in out).
 * Returns 0, or -1 on EOF / 2 s without a frame.
 */
static int read_frame(struct fx *f, struct client *cl, int *opcode, char *out, size_t cap, size_t *plen)
{
	double end = now_s() + 2.0;
	for (;;) {
		if (cl->len >= 2) {
			size_t hl = 2;
			uint64_t pl = cl->buf[1] & 0x7f;
			assert_int_equal(cl->buf[1] & 0x80, 0);   /* server frames are never masked */
			if (pl == 126) {
				hl = 4;
				if (cl->len >= 4)
					pl = ((uint64_t)cl->buf[2] << 8) | cl->buf[3];
			} else if (pl == 127) {
				hl = 10;
				if (cl->len >= 10) {
					pl = 0;
					for (int i = 0; i < 8; i++)
						pl = (pl << 8) | cl->buf[2 + i];
				}
			}
			if (cl->len >= hl && cl->len - hl >= pl) {
				assert_true(pl < cap);
				*opcode = cl->buf[0] & 0x0f;
				memcpy(out, cl->buf + hl, (size_t)pl);
				out[pl] = '\0';
				*plen = (size_t)pl;
				memmove(cl->buf, cl->buf + hl + pl, cl->len - hl - (size_t)pl);
				cl->len -= hl + (size_t)pl;
				return 0;
			}
		}
		if (cl->eof || now_s() > end)
			return -1;
		ev_run(f->loop, EVRUN_NOWAIT);
		ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, MSG_DONTWAIT);
		if (n > 0) {
			cl->len += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			cl->eof = 1;
			continue;
		}
		struct pollfd pfd = { .fd = cl->fd, .events = POLLIN };
		poll(&pfd, 1, 1);
	}
}

/* Reads frames until a close frame; returns its code (-1 if none came). */
static int read_close(struct fx *f, struct client *cl, char *reason, size_t rcap)
{
	char payload[1 << 17];
	for (int i = 0; i < 64; i++) {
		int op;
		size_t len;
		if (read_frame(f, cl, &op, payload, sizeof(payload), &len) < 0)
			return -1;
		if (op != 0x8)
			continue;
		if (len < 2)
			return 1005;
		if (reason)
			snprintf(reason, rcap, "%.*s", (int)(len - 2), payload + 2);
		return ((uint8_t)payload[0] << 8) | (uint8_t)payload[1];
	}
	return -1;
}

static const char *upgrade_req(const char *key)
{
	static char buf[512];
	snprintf(buf, sizeof(buf),
		 "GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
		 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", key);
	return buf;
}

/* Connects and upgrades; the 101 is checked.  Returns the client. */
static struct client *ws_connect(struct fx *f)
{
	struct client *cl = calloc(1, sizeof(*cl));
	assert_non_null(cl);
	cl->fd = client_connect(f);
	const char *req = upgrade_req(SAMPLE_KEY);
	client_send(cl->fd, req, strlen(req));
	char resp[1024];
	size_t n = read_http(f, cl->fd, resp, sizeof(resp));
	assert_true(n > 0);
	assert_memory_equal(resp, "HTTP/1.1 101 ", 13);
	char *end = strstr(resp, "\r\n\r\n");
	assert_non_null(end);
	size_t head = (size_t)(end - resp) + 4;
	memcpy(cl->buf, resp + head, n - head);     /* frames right behind the 101 */
	cl->len = n - head;
	assert_int_equal(f->accepted, 1);
	assert_non_null(f->conn);
	return cl;
}

static void client_free(struct client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl);
}

/* Client closes its socket and the server must notice and report it once. */
static void client_vanish(struct fx *f, struct client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	pump(f, 3.0, &f->closes);
	pump(f, 0.05, NULL);
	assert_int_equal(f->closes, 1);
}

/* ---- handshake --------------------------------------------------------- */

static void test_handshake_answers_rfc_sample_key_with_rfc_accept(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	client_vanish(f, cl);
	client_free(cl);
	assert_int_equal(f->close_code, 1006);

	f->closes = 0;
	f->accepted = 0;
	int fd = client_connect(f);
	const char *req = upgrade_req(SAMPLE_KEY);
	client_send(fd, req, strlen(req));
	char resp[1024];
	assert_true(read_http(f, fd, resp, sizeof(resp)) > 0);
	assert_non_null(strstr(resp, "HTTP/1.1 101 Switching Protocols\r\n"));
	assert_non_null(strstr(resp, "\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"));
	assert_non_null(strcasestr(resp, "\r\nUpgrade: websocket\r\n"));
	assert_non_null(strcasestr(resp, "\r\nConnection: Upgrade\r\n"));
	assert_int_equal(ws_count(), 1);
	assert_int_equal(http_server_connections(f->srv), 0);   /* http.c let it go */
	close(fd);
	pump(f, 3.0, &f->closes);
	assert_int_equal(f->closes, 1);
	fx_stop(f);
}

static void expect_refusal(struct fx *f, const char *req, const char *status_line, const char *must_have)
{
	int fd = client_connect(f);
	client_send(fd, req, strlen(req));
	char resp[2048];
	assert_true(read_http(f, fd, resp, sizeof(resp)) > 0);
	if (strncmp(resp, status_line, strlen(status_line)) != 0)
		fail_msg("want %s, got: %s", status_line, resp);
	if (must_have)
		assert_non_null(strcasestr(resp, must_have));
	close(fd);
	assert_int_equal(f->accepted, 0);
	assert_int_equal(ws_count(), 0);
}

static void test_plain_get_on_ws_path_is_426(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	expect_refusal(f, "GET /ws HTTP/1.1\r\nHost: gw\r\n\r\n", "HTTP/1.1 426 ", "\r\nUpgrade: websocket\r\n");
	expect_refusal(f, "GET /ws HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", "HTTP/1.1 426 ", NULL);
	fx_stop(f);
}

static void test_wrong_version_is_426_naming_version_13(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	expect_refusal(f, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		       "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n\r\n",
		       "HTTP/1.1 426 ", "\r\nSec-WebSocket-Version: 13\r\n");
	expect_refusal(f, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		       "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n\r\n",
		       "HTTP/1.1 426 ", "\r\nSec-WebSocket-Version: 13\r\n");
	fx_stop(f);
}

static void test_malformed_key_or_method_is_400(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	static const char *const bad_keys[] = {
		"", "short==", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ==x",
		"dGhlIHNhbXBsZSBub25j*Q==", "dGhlIHNhbXBsZSBub25jZQQQ",
	};
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
		expect_refusal(f, upgrade_req(bad_keys[i]), "HTTP/1.1 400 ", NULL);
	expect_refusal(f, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		       "Sec-WebSocket-Version: 13\r\n\r\n", "HTTP/1.1 400 ", NULL);
	expect_refusal(f, "POST /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\nContent-Length: 0\r\n\r\n",
		       "HTTP/1.1 400 ", NULL);
	fx_stop(f);
}

/* ---- messages ---------------------------------------------------------- */

static void test_masked_text_frames_are_echoed_in_order(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	send_frame(cl->fd, 1, 0x1, "hello", 5, 1);
	send_frame(cl->fd, 1, 0x1, "{\"type\":\"ping\"}", 15, 1);
	send_frame(cl->fd, 1, 0x1, "", 0, 1);
	char buf[256];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_int_equal(op, 0x1);
	assert_string_equal(buf, "hello");
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf, "{\"type\":\"ping\"}");
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_int_equal(op, 0x1);
	assert_int_equal(len, 0);
	assert_int_equal(f->texts, 3);
	client_vanish(f, cl);
	client_free(cl);
	fx_stop(f);
}

static void test_frames_sent_with_the_handshake_are_not_lost(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	int fd = client_connect(f);
	uint8_t buf[1024];
	const char *req = upgrade_req(SAMPLE_KEY);
	size_t n = strlen(req);
	memcpy(buf, req, n);
	n += frame(buf + n, 1, 0x1, "early bird", 10, 1);
	client_send(fd, buf, n);
	struct client *cl = calloc(1, sizeof(*cl));
	assert_non_null(cl);
	cl->fd = fd;
	char resp[1024];
	size_t rn = read_http(f, fd, resp, sizeof(resp));
	assert_memory_equal(resp, "HTTP/1.1 101 ", 13);
	char *end = strstr(resp, "\r\n\r\n");
	assert_non_null(end);
	size_t head = (size_t)(end - resp) + 4;
	memcpy(cl->buf, resp + head, rn - head);
	cl->len = rn - head;
	char payload[64];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, payload, sizeof(payload), &len), 0);
	assert_string_equal(payload, "early bird");
	client_vanish(f, cl);
	client_free(cl);
	fx_stop(f);
}

static void test_fragmented_message_is_delivered_whole_with_a_ping_between(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	send_frame(cl->fd, 0, 0x1, "hel", 3, 1);
	send_frame(cl->fd, 0, 0x0, "lo ", 3, 1);
	send_frame(cl->fd, 1, 0x9, "p1", 2, 1);      /* control frame inside the message */
	send_frame(cl->fd, 1, 0x0, "world", 5, 1);
	char buf[256];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_int_equal(op, 0xA);
	assert_string_equal(buf, "p1");
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_int_equal(op, 0x1);
	assert_string_equal(buf, "hello world");
	assert_int_equal(f->texts, 1);
	client_vanish(f, cl);
	client_free(cl);
	fx_stop(f);
}

static void test_ping_is_answered_with_pong_carrying_its_payload(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	send_frame(cl->fd, 1, 0x9, "are you there", 13, 1);
	char buf[256];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_int_equal(op, 0xA);
	assert_string_equal(buf, "are you there");
	assert_int_equal(f->texts, 0);
	client_vanish(f, cl);
	client_free(cl);
	fx_stop(f);
}

/* Sends a frame that must fail the connection with `code`, and checks the rest. */
static void expect_server_close(struct fx *f, struct client *cl, int code)
{
	assert_int_equal(read_close(f, cl, NULL, 0), code);
	assert_int_equal(f->closes, 0);
	/* the server stopped reading: it sent its FIN after the close frame */
	char buf[16];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), -1);
	assert_true(cl->eof);
	double t0 = now_s();
	shutdown(cl->fd, SHUT_WR);                    /* the client's FIN ends it at once */
	pump(f, 3.0, &f->closes);
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->close_code, code);
	assert_int_equal(ws_count(), 0);
}

static void test_message_over_max_message_closes_1009(void **state)
{
	(void)state;
	struct fx *f = fx_start(1024, 0, 0);
	struct client *cl = ws_connect(f);
	char big[2000];
	memset(big, 'a', sizeof(big));
	send_frame(cl->fd, 1, 0x1, big, 1024, 1);     /* exactly the limit passes */
	char buf[2048];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 1024);
	send_frame(cl->fd, 0, 0x1, big, 600, 1);      /* 600 + 600 fragments exceed it */
	send_frame(cl->fd, 1, 0x0, big, 600, 1);
	expect_server_close(f, cl, 1009);
	assert_int_equal(f->texts, 1);
	client_free(cl);
	fx_stop(f);
}

static void test_binary_message_closes_1003(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	send_frame(cl->fd, 1, 0x2, "\x01\x02\x03", 3, 1);
	expect_server_close(f, cl, 1003);
	assert_int_equal(f->texts, 0);
	client_free(cl);
	fx_stop(f);
}

static void test_unmasked_client_frame_closes_1002(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	send_frame(cl->fd, 1, 0x1, "naked", 5, 0);
	expect_server_close(f, cl, 1002);
	assert_int_equal(f->texts, 0);
	client_free(cl);
	fx_stop(f);
}

static void test_invalid_utf8_text_closes_1007(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	send_frame(cl->fd, 1, 0x1, "ok \xc3\xa9", 5, 1);          /* valid: é */
	char buf[64];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf, "ok \xc3\xa9");
	send_frame(cl->fd, 1, 0x1, "bad \xc3\x28", 6, 1);         /* broken 2-byte sequence */
	expect_server_close(f, cl, 1007);
	assert_int_equal(f->texts, 1);
	client_free(cl);
	fx_stop(f);
}

static void test_utf8_sequence_cut_at_message_end_closes_1007(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	send_frame(cl->fd, 0, 0x1, "x\xe2\x82", 3, 1);   /* a 3-byte sequence split across frames is fine */
	send_frame(cl->fd, 1, 0x0, "\xac", 1, 1);
	char buf[64];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf, "x\xe2\x82\xac");
	send_frame(cl->fd, 1, 0x1, "y\xe2\x82", 3, 1);   /* ...but not one the message ends in */
	expect_server_close(f, cl, 1007);
	assert_int_equal(f->texts, 1);
	client_free(cl);
	fx_stop(f);
}

/* ---- closing ----------------------------------------------------------- */

static void test_peer_vanishing_calls_on_close_once_with_1006(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	ws_set_user(f->conn, cl);
	client_vanish(f, cl);
	assert_int_equal(f->close_code, 1006);
	assert_int_equal(f->send_in_close_rv, -1);     /* ws_send_text from on_close is refused */
	assert_ptr_equal(f->user_in_close, cl);
	assert_int_equal(ws_count(), 0);
	client_free(cl);
	fx_stop(f);
}

static void test_ws_close_sends_code_and_reason_then_on_close(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	ws_close(f->conn, 4001, "bye now");
	assert_int_equal(f->closes, 0);                 /* never from inside ws_close */
	assert_int_equal(ws_send_text(f->conn, "late", 4), -1);
	char reason[128];
	assert_int_equal(read_close(f, cl, reason, sizeof(reason)), 4001);
	assert_string_equal(reason, "bye now");
	uint8_t code[2] = { 0x0f, 0xa1 };
	send_frame(cl->fd, 1, 0x8, code, 2, 1);         /* the client's half of the handshake */
	/* the server closes TCP first (RFC 6455 7.1.1): FIN, then waits for ours */
	char buf[16];
	int op;
	size_t len;
	assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), -1);
	assert_true(cl->eof);
	assert_int_equal(f->closes, 0);
	double t0 = now_s();
	shutdown(cl->fd, SHUT_WR);
	pump(f, 3.0, &f->closes);
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->close_code, 4001);
	client_free(cl);
	fx_stop(f);
}

static void test_close_from_on_text_skips_later_messages(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	f->echo = 0;
	f->close_on_text = 1;
	uint8_t two[64];
	size_t n = frame(two, 1, 0x1, "first", 5, 1);
	n += frame(two + n, 1, 0x1, "second", 6, 1);
	client_send(cl->fd, two, n);                    /* one segment: both parsed in one pass */
	assert_int_equal(read_close(f, cl, NULL, 0), 4000);
	assert_int_equal(f->texts, 1);
	assert_string_equal(f->last_text, "first");
	client_vanish(f, cl);                          /* no close reply: the socket just goes */
	assert_int_equal(f->close_code, 4000);
	client_free(cl);
	fx_stop(f);
}

static void test_peer_close_is_echoed_and_reported_with_its_code(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	uint8_t payload[] = { 0x03, 0xe9, 'a', 'w', 'a', 'y' };    /* 1001 "away" */
	send_frame(cl->fd, 1, 0x8, payload, sizeof(payload), 1);
	char reason[64];
	assert_int_equal(read_close(f, cl, reason, sizeof(reason)), 1001);
	assert_string_equal(reason, "away");
	shutdown(cl->fd, SHUT_WR);
	pump(f, 3.0, &f->closes);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->close_code, 1001);
	client_free(cl);
	fx_stop(f);
}

static void test_silent_peer_gets_pings_then_idle_close(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0.15, 0.5);
	struct client *cl = ws_connect(f);
	double start = now_s();
	int pings = 0;
	char buf[256];
	int op;
	size_t len;
	int code = -1;
	while (now_s() - start < 3.0 && read_frame(f, cl, &op, buf, sizeof(buf), &len) == 0) {
		if (op == 0x9)
			pings++;
		if (op == 0x8) {
			code = ((uint8_t)buf[0] << 8) | (uint8_t)buf[1];
			break;
		}
	}
	double took = now_s() - start;
	assert_int_equal(code, 1001);
	assert_true(pings >= 2);
	assert_true(took >= 0.45 && took < 1.5);
	pump(f, 3.0, &f->closes);                 /* no reply from the client: bounded by 2 s */
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->close_code, 1001);
	client_free(cl);
	fx_stop(f);
}

static void test_pongs_keep_a_connection_alive(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0.1, 0.4);
	struct client *cl = ws_connect(f);
	double start = now_s();
	char buf[256];
	int op;
	size_t len;
	while (now_s() - start < 1.2) {
		assert_int_equal(read_frame(f, cl, &op, buf, sizeof(buf), &len), 0);
		assert_int_equal(op, 0x9);
		send_frame(cl->fd, 1, 0xA, buf, len, 1);
	}
	assert_int_equal(f->closes, 0);
	assert_non_null(f->conn);
	client_vanish(f, cl);
	client_free(cl);
	fx_stop(f);
}

static void test_peer_that_stops_reading_is_closed_1008_at_queue_cap(void **state)
{
	(void)state;
	struct fx *f = fx_start(0, 0, 0);
	struct client *cl = ws_connect(f);
	int rcv = 4096;
	setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	size_t chunk = 64 * 1024;
	char *data = malloc(chunk);
	assert_non_null(data);
	memset(data, 'z', chunk);
	int refused = 0;
	for (int i = 0; i < 2000 && !refused; i++) {     /* bounded: 125 MiB at most */
		if (ws_send_text(f->conn, data, chunk) < 0)
			refused = 1;
		ev_run(f->loop, EVRUN_NOWAIT);
	}
	free(data);
	assert_true(refused);
	assert_int_equal(f->closes, 0);
	pump(f, 3.0, &f->closes);                      /* the close handshake cannot finish: 2 s cap */
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->close_code, 1008);
	client_free(cl);
	fx_stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_answers_rfc_sample_key_with_rfc_accept),
		cmocka_unit_test(test_plain_get_on_ws_path_is_426),
		cmocka_unit_test(test_wrong_version_is_426_naming_version_13),
		cmocka_unit_test(test_malformed_key_or_method_is_400),
		cmocka_unit_test(test_masked_text_frames_are_echoed_in_order),
		cmocka_unit_test(test_frames_sent_with_the_handshake_are_not_lost),
		cmocka_unit_test(test_fragmented_message_is_delivered_whole_with_a_ping_between),
		cmocka_unit_test(test_ping_is_answered_with_pong_carrying_its_payload),
		cmocka_unit_test(test_message_over_max_message_closes_1009),
		cmocka_unit_test(test_binary_message_closes_1003),
		cmocka_unit_test(test_unmasked_client_frame_closes_1002),
		cmocka_unit_test(test_invalid_utf8_text_closes_1007),
		cmocka_unit_test(test_utf8_sequence_cut_at_message_end_closes_1007),
		cmocka_unit_test(test_peer_vanishing_calls_on_close_once_with_1006),
		cmocka_unit_test(test_ws_close_sends_code_and_reason_then_on_close),
		cmocka_unit_test(test_close_from_on_text_skips_later_messages),
		cmocka_unit_test(test_peer_close_is_echoed_and_reported_with_its_code),
		cmocka_unit_test(test_silent_peer_gets_pings_then_idle_close),
		cmocka_unit_test(test_pongs_keep_a_connection_alive),
		cmocka_unit_test(test_peer_that_stops_reading_is_closed_1008_at_queue_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
