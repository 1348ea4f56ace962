/*
 * test_http.c: the HTTP server module.  Parser behaviour through
 * http_parse_buffer() (the server's own parsing path without sockets), then
 * real sockets on 127.0.0.1 with the server running in an ev loop that the
 * test drives itself (ev_run NOWAIT in loops bounded by a 2 s deadline).
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

#define MAX_SEEN 8

struct seen_req {
	enum http_method_id method;
	char method_name[16];
	char path[256];
	char query[256];
	char body[8192];
	size_t body_len;
	unsigned n_headers;
	char host[64];
	char ctype[64];
};

struct seen {
	int n;
	struct seen_req r[MAX_SEEN];
};

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "(null)");
}

static void record(struct seen *s, const struct http_request *req)
{
	if (s->n >= MAX_SEEN) {
		s->n++;
		return;
	}
	struct seen_req *r = &s->r[s->n++];
	r->method = req->method;
	copy_str(r->method_name, sizeof(r->method_name), req->method_name);
	copy_str(r->path, sizeof(r->path), req->path);
	copy_str(r->query, sizeof(r->query), req->query);
	r->body_len = req->body_len < sizeof(r->body) ? req->body_len : sizeof(r->body) - 1;
	memcpy(r->body, req->body, r->body_len);
	r->body[r->body_len] = '\0';
	r->n_headers = req->n_headers;
	copy_str(r->host, sizeof(r->host), http_header(req, "host"));
	copy_str(r->ctype, sizeof(r->ctype), http_header(req, "CONTENT-TYPE"));
}

static void sync_handler(struct http_request *req, void *arg)
{
	record(arg, req);
	http_respond(req, 200, NULL, "{}", 2);
}

static const struct http_config small_cfg = {
	.listen = "127.0.0.1:0", .max_body = 4096, .max_header = 1024,
	.idle_timeout = 5, .max_conns = 16,
};

static int parse(const char *text, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	return http_parse_buffer(&small_cfg, text, strlen(text), sync_handler, s);
}

/* ---- parser cases ------------------------------------------------------ */

static void test_parse_simple_get_gives_method_path_and_headers(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("GET /v1/health HTTP/1.1\r\nHost: gw\r\nAccept: */*\r\n\r\n", &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.r[0].method, HTTP_M_GET);
	assert_string_equal(s.r[0].method_name, "GET");
	assert_string_equal(s.r[0].path, "/v1/health");
	assert_string_equal(s.r[0].query, "");
	assert_int_equal(s.r[0].n_headers, 2);
	assert_string_equal(s.r[0].host, "gw");
	assert_int_equal(s.r[0].body_len, 0);
}

static void test_parse_post_body_by_content_length(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("POST /v1/messages HTTP/1.1\r\nContent-Type: application/json\r\n"
			       "Content-Length: 11\r\n\r\n{\"to\":\"1\"}X", &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.r[0].method, HTTP_M_POST);
	assert_int_equal(s.r[0].body_len, 11);
	assert_string_equal(s.r[0].body, "{\"to\":\"1\"}X");
	assert_string_equal(s.r[0].ctype, "application/json");
}

static void test_parse_chunked_body_is_reassembled(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n", &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.r[0].body_len, 12);
	assert_string_equal(s.r[0].body, "hello, world");
	assert_int_equal(s.r[0].n_headers, 1);   /* the trailer is not a header */
}

static void test_parse_pipelined_requests_are_handled_in_order(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("GET /first HTTP/1.1\r\n\r\n"
			       "POST /second HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
			       "DELETE /third HTTP/1.1\r\n\r\n", &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.r[0].path, "/first");
	assert_string_equal(s.r[1].path, "/second");
	assert_string_equal(s.r[1].body, "abc");
	assert_string_equal(s.r[2].path, "/third");
	assert_int_equal(s.r[2].method, HTTP_M_DELETE);
}

static void test_parse_connection_close_stops_after_that_request(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n", &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.r[0].path, "/a");
}

/* A head of exactly n bytes: "GET / HTTP/1.1\r\nX: aaa...\r\n\r\n". */
static char *head_of_size(size_t n)
{
	static const char pre[] = "GET / HTTP/1.1\r\nX: ";
	static const char post[] = "\r\n\r\n";
	size_t fixed = sizeof(pre) - 1 + sizeof(post) - 1;
	assert_true(n > fixed);
	char *b = malloc(n + 1);
	assert_non_null(b);
	memcpy(b, pre, sizeof(pre) - 1);
	memset(b + sizeof(pre) - 1, 'a', n - fixed);
	memcpy(b + n - (sizeof(post) - 1), post, sizeof(post));
	return b;
}

static void test_parse_head_of_exactly_max_header_is_accepted(void **state)
{
	(void)state;
	struct seen s;
	char *b = head_of_size(small_cfg.max_header);
	assert_int_equal(parse(b, &s), 0);
	assert_int_equal(s.n, 1);
	free(b);
}

static void test_parse_head_over_max_header_is_431(void **state)
{
	(void)state;
	struct seen s;
	char *b = head_of_size(small_cfg.max_header + 1);
	assert_int_equal(parse(b, &s), 431);
	assert_int_equal(s.n, 0);
	free(b);
}

static void test_parse_too_many_header_fields_is_431(void **state)
{
	(void)state;
	char buf[1024];
	size_t off = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "H%d: v\r\n", i);
	snprintf(buf + off, sizeof(buf) - off, "\r\n");
	struct seen s;
	assert_int_equal(parse(buf, &s), 431);
	assert_int_equal(s.n, 0);
}

static void test_parse_content_length_over_max_body_is_413_before_body(void **state)
{
	(void)state;
	struct seen s;
	/* no body bytes at all: the refusal comes from the header alone */
	assert_int_equal(parse("POST /m HTTP/1.1\r\nContent-Length: 4097\r\n\r\n", &s), 413);
	assert_int_equal(s.n, 0);
	assert_int_equal(parse("POST /m HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", &s), 413);
}

static void test_parse_content_length_at_max_body_is_accepted(void **state)
{
	(void)state;
	size_t n = small_cfg.max_body;
	char *b = malloc(n + 128);
	assert_non_null(b);
	int hl = snprintf(b, 128, "POST /m HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
	memset(b + hl, 'z', n);
	struct seen s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(http_parse_buffer(&small_cfg, b, (size_t)hl + n, sync_handler, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.r[0].body_len, n);
	free(b);
}

static void test_parse_chunked_body_over_max_body_is_413(void **state)
{
	(void)state;
	struct seen s;
	/* one announced chunk too large */
	assert_int_equal(parse("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n", &s), 413);
	assert_int_equal(s.n, 0);
	/* many small chunks adding up past the limit */
	char *b = malloc(64 + 5 * 9 * 1000);
	assert_non_null(b);
	size_t off = (size_t)sprintf(b, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 1000; i++)
		off += (size_t)sprintf(b + off, "8\r\n12345678\r\n");
	memset(&s, 0, sizeof(s));
	assert_int_equal(http_parse_buffer(&small_cfg, b, off, sync_handler, &s), 413);
	assert_int_equal(s.n, 0);
	free(b);
}

static void test_parse_upload_prefix_gets_the_larger_body_limit_and_nothing_else_does(void **state)
{
	(void)state;
	struct http_config cfg = small_cfg;
	cfg.max_upload = 3 * small_cfg.max_body;
	cfg.upload_prefix = "/v1/batches";
	size_t n = 2 * small_cfg.max_body;
	char *b = malloc(n + 160);
	assert_non_null(b);
	const char *paths[] = { "/v1/batches", "/v1/batches?from=X", "/v1/batches/7/cancel",
				"/v1/batchesX", "/v1/messages", "/v1/batch" };
	const int want[] = { 0, 0, 0, 413, 413, 413 };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int hl = snprintf(b, 160, "POST %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", paths[i], n);
		memset(b + hl, 'z', n);
		struct seen s;
		memset(&s, 0, sizeof(s));
		assert_int_equal(http_parse_buffer(&cfg, b, (size_t)hl + n, sync_handler, &s), want[i]);
		assert_int_equal(s.n, want[i] ? 0 : 1);
		if (!want[i])   /* the recorder keeps a prefix of the body */
			assert_true(s.r[0].body_len > small_cfg.max_body / 2);
	}
	/* the larger limit is still a limit, for Content-Length and for chunks */
	struct seen s;
	memset(&s, 0, sizeof(s));
	const char *over = "POST /v1/batches HTTP/1.1\r\nContent-Length: 12289\r\n\r\n";
	assert_int_equal(http_parse_buffer(&cfg, over, strlen(over), sync_handler, &s), 413);
	const char *chunk = "POST /v1/batches HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3001\r\n";
	assert_int_equal(http_parse_buffer(&cfg, chunk, strlen(chunk), sync_handler, &s), 413);
	assert_int_equal(s.n, 0);
	free(b);
}

static void test_parse_malformed_requests_are_400(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("GARBAGE\r\n\r\n", &s), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", &s), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nBad Header\r\n\r\n", &s), 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &s), 400);
	assert_int_equal(s.n, 0);
	static const char nul_url[] = "GET /a\0b HTTP/1.1\r\n\r\n";
	memset(&s, 0, sizeof(s));
	assert_int_equal(http_parse_buffer(&small_cfg, nul_url, sizeof(nul_url) - 1, sync_handler, &s), 400);
	assert_int_equal(s.n, 0);
}

static void test_parse_error_after_good_request_still_answers_the_first(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("GET /ok HTTP/1.1\r\n\r\nNOT HTTP\r\n\r\n", &s), 400);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.r[0].path, "/ok");
}

static const char *lookup_name;
static char lookup_value[64];
static int lookup_found;
static char lookup_empty[64];
static void lookup_handler(struct http_request *req, void *arg)
{
	(void)arg;
	const char *v = http_header(req, lookup_name);
	lookup_found = v != NULL;
	copy_str(lookup_value, sizeof(lookup_value), v);
	copy_str(lookup_empty, sizeof(lookup_empty), http_header(req, "x-empty"));
	http_respond(req, 204, NULL, NULL, 0);
}

static void test_header_lookup_is_case_insensitive_and_trims_values(void **state)
{
	(void)state;
	static const char text[] = "GET / HTTP/1.1\r\nX-Empty:\r\nX-Api-Key:   s3cret \t \r\n\r\n";
	lookup_name = "x-api-KEY";
	assert_int_equal(http_parse_buffer(&small_cfg, text, sizeof(text) - 1, lookup_handler, NULL), 0);
	assert_true(lookup_found);
	assert_string_equal(lookup_value, "s3cret");
	assert_string_equal(lookup_empty, "");   /* an empty value does not swallow the next name */
	lookup_name = "X-Absent";
	assert_int_equal(http_parse_buffer(&small_cfg, text, sizeof(text) - 1, lookup_handler, NULL), 0);
	assert_false(lookup_found);
}

static void test_query_is_split_from_path_and_path_is_not_decoded(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("GET /v1/messages/a%2Fb?status=x&q=%20y HTTP/1.1\r\n\r\n", &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.r[0].path, "/v1/messages/a%2Fb");
	assert_string_equal(s.r[0].query, "status=x&q=%20y");
}

/* ---- real sockets ------------------------------------------------------ */

struct fx {
	struct ev_loop *loop;
	struct http_server *srv;
	struct seen seen;
	int mode;                  /* 0 sync, 1 async (10 ms timer), 2 hold */
	struct http_request *held;
	ev_timer later;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void answer_with_path(struct http_request *req)
{
	char body[300];
	int n = snprintf(body, sizeof(body), "{\"path\":\"%s\",\"len\":%zu}", req->path, req->body_len);
	http_respond(req, 200, "X-Test: 1\r\n", body, (size_t)n);
}

static void later_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct fx *f = w->data;
	struct http_request *req = f->held;
	f->held = NULL;
	answer_with_path(req);
}

static void socket_handler(struct http_request *req, void *arg)
{
	struct fx *f = arg;
	record(&f->seen, req);
	if (f->mode == 0) {
		answer_with_path(req);
		return;
	}
	assert_null(f->held);       /* one pending request at a time per connection */
	f->held = req;
	if (f->mode == 1) {
		ev_timer_set(&f->later, 0.010, 0.);
		ev_timer_start(f->loop, &f->later);
	}
}

static struct fx *fx_start(const struct http_config *cfg, int mode)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	f->mode = mode;
	ev_init(&f->later, later_cb);
	f->later.data = f;
	char err[256] = "";
	f->srv = http_server_new(f->loop, cfg, socket_handler, f, err, sizeof(err));
	if (!f->srv)
		fail_msg("http_server_new: %s", err);
	assert_true(http_server_port(f->srv) > 0);
	return f;
}

static void fx_stop(struct fx *f)
{
	ev_timer_stop(f->loop, &f->later);
	http_server_free(f->srv);
	ev_loop_destroy(f->loop);
	free(f);
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

static void client_send(int fd, const char *data)
{
	size_t len = strlen(data);
	assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Drives the loop for about ms milliseconds or until *flag becomes true. */
static void pump_until(struct fx *f, const int *flag, double seconds)
{
	double end = now_s() + seconds;
	while (now_s() < end && !(flag && *flag)) {
		ev_run(f->loop, EVRUN_NOWAIT);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* Complete response (head + Content-Length body) at buf? Its length or 0. */
static size_t response_size(const char *buf, size_t len, int head_only)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t hl = (size_t)(end - buf) + 4;
	if (head_only)
		return hl;
	const char *cl = strcasestr(buf, "Content-Length:");
	size_t bl = 0;
	if (cl && cl < end)
		bl = strtoul(cl + 15, NULL, 10);
	return len >= hl + bl ? hl + bl : 0;
}

/*
 * Reads from fd (driving the server loop) until buf holds want complete
 * responses, the peer closes, or 2 s pass.  Returns the bytes read.
 */
static size_t client_read(struct fx *f, int fd, char *buf, size_t cap, int want, int head_only, int *closed)
{
	size_t len = 0;
	double end = now_s() + 2.0;
	*closed = 0;
	while (now_s() < end) {
		ev_run(f->loop, EVRUN_NOWAIT);
		ssize_t n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n > 0) {
			len += (size_t)n;
			buf[len] = '\0';
			size_t off = 0;
			int got = 0;
			while (got < want) {
				size_t one = response_size(buf + off, len - off, head_only);
				if (!one)
					break;
				off += one;
				got++;
			}
			if (got >= want)
				return len;
			continue;
		}
		if (n == 0) {
			*closed = 1;
			return len;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*closed = 1;
			return len;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		poll(&pfd, 1, 1);
	}
	return len;
}

static const struct http_config sock_cfg = {
	.listen = "127.0.0.1:0", .max_body = 1024, .max_header = 1024,
	.idle_timeout = 5, .max_conns = 8,
};

static void test_socket_round_trip(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 0);
	int fd = client_connect(f);
	client_send(fd, "POST /v1/x?y=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody");
	char buf[4096];
	int closed;
	size_t n = client_read(f, fd, buf, sizeof(buf), 1, 0, &closed);
	assert_true(n > 0);
	assert_int_equal(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_non_null(strstr(buf, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(buf, "X-Test: 1\r\n"));
	assert_null(strstr(buf, "Connection: close"));
	assert_non_null(strstr(buf, "\r\n\r\n{\"path\":\"/v1/x\",\"len\":4}"));
	assert_int_equal(f->seen.n, 1);
	assert_string_equal(f->seen.r[0].query, "y=1");
	assert_string_equal(f->seen.r[0].body, "body");
	close(fd);
	fx_stop(f);
}

static void test_socket_keep_alive_serves_two_requests_on_one_connection(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 0);
	int fd = client_connect(f);
	char buf[4096];
	int closed;
	client_send(fd, "GET /one HTTP/1.1\r\n\r\n");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_non_null(strstr(buf, "\"/one\""));
	client_send(fd, "GET /two HTTP/1.1\r\n\r\n");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_false(closed);
	assert_non_null(strstr(buf, "\"/two\""));
	assert_int_equal(f->seen.n, 2);
	assert_int_equal(http_server_connections(f->srv), 1);
	close(fd);
	fx_stop(f);
}

static void test_socket_http10_closes_unless_keep_alive_asked(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 0);
	char buf[4096];
	int closed;
	int fd = client_connect(f);
	client_send(fd, "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_non_null(strstr(buf, "Connection: keep-alive\r\n"));
	client_send(fd, "GET /plain HTTP/1.0\r\n\r\n");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	assert_non_null(strstr(buf, "\"/plain\""));
	client_read(f, fd, buf, sizeof(buf), 1, 0, &closed);
	assert_true(closed);
	close(fd);
	fx_stop(f);
}

static void test_socket_async_responses_keep_pipelined_order(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 1);
	int fd = client_connect(f);
	client_send(fd, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\nzz");
	char buf[8192];
	int closed;
	size_t n = client_read(f, fd, buf, sizeof(buf), 3, 0, &closed);
	assert_true(n > 0);
	char *a = strstr(buf, "\"/a\"");
	char *b = strstr(buf, "\"/b\"");
	char *c = strstr(buf, "\"/c\",\"len\":2");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(a < b && b < c);
	assert_int_equal(f->seen.n, 3);
	close(fd);
	fx_stop(f);
}

static void test_socket_head_response_has_no_body(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 0);
	int fd = client_connect(f);
	char buf[4096];
	int closed;
	client_send(fd, "HEAD /h HTTP/1.1\r\n\r\n");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 1, &closed) > 0);
	assert_non_null(strstr(buf, "Content-Length: 21\r\n"));
	client_send(fd, "GET /g HTTP/1.1\r\n\r\n");
	size_t n = client_read(f, fd, buf, sizeof(buf), 1, 0, &closed);
	assert_true(n > 0);
	/* the next bytes are the GET's status line, not the HEAD's body */
	assert_int_equal(strncmp(buf, "HTTP/1.1 200 OK", 15), 0);
	assert_non_null(strstr(buf, "\"/g\""));
	close(fd);
	fx_stop(f);
}

static void test_socket_expect_100_continue_gets_interim_response(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 0);
	int fd = client_connect(f);
	char buf[4096];
	int closed;
	client_send(fd, "POST /e HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 1, &closed) > 0);
	assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
	client_send(fd, "hello");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_non_null(strstr(buf, "\"/e\",\"len\":5"));
	close(fd);
	fx_stop(f);
}

static void test_socket_oversized_content_length_gets_413_and_close(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 0);
	int fd = client_connect(f);
	char buf[4096];
	int closed;
	client_send(fd, "POST /big HTTP/1.1\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_int_equal(strncmp(buf, "HTTP/1.1 413 Payload Too Large\r\n", 32), 0);
	assert_null(strstr(buf, "100 Continue"));
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	assert_non_null(strstr(buf, "{\"error\":{\"code\":\"too_large\""));
	client_read(f, fd, buf, sizeof(buf), 1, 0, &closed);
	assert_true(closed);
	assert_int_equal(f->seen.n, 0);
	close(fd);
	fx_stop(f);
}

static void test_socket_malformed_request_gets_400_json(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 0);
	int fd = client_connect(f);
	char buf[4096];
	int closed;
	client_send(fd, "GET / HTTP/1.1\r\nNo Colon Here\r\n\r\n");
	assert_true(client_read(f, fd, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_int_equal(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26), 0);
	assert_non_null(strstr(buf, "\r\n\r\n{\"error\":{\"code\":\"bad_request\",\"message\":\""));
	client_read(f, fd, buf, sizeof(buf), 1, 0, &closed);
	assert_true(closed);
	close(fd);
	fx_stop(f);
}

static void test_socket_peer_close_while_pending_then_respond_is_harmless(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 2);
	int fd = client_connect(f);
	client_send(fd, "POST /slow HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
	pump_until(f, &f->seen.n, 2.0);
	assert_int_equal(f->seen.n, 1);
	assert_non_null(f->held);
	assert_string_equal(f->held->body, "ok");
	close(fd);
	double end = now_s() + 2.0;
	while (http_server_connections(f->srv) > 0 && now_s() < end)
		pump_until(f, NULL, 0.005);
	assert_int_equal(http_server_connections(f->srv), 0);
	/* the request is still valid: its fields can be read, then answered */
	assert_string_equal(f->held->path, "/slow");
	http_respond(f->held, 202, NULL, "{}", 2);
	f->held = NULL;
	pump_until(f, NULL, 0.02);
	fx_stop(f);
}

static void test_socket_request_pending_across_server_free_is_answered_safely(void **state)
{
	(void)state;
	struct fx *f = fx_start(&sock_cfg, 2);
	int fd = client_connect(f);
	client_send(fd, "GET /held HTTP/1.1\r\n\r\n");
	pump_until(f, &f->seen.n, 2.0);
	assert_non_null(f->held);
	struct http_request *held = f->held;
	http_server_free(f->srv);
	f->srv = NULL;
	http_respond(held, 200, NULL, "{}", 2);   /* frees the orphaned request */
	char buf[64];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);   /* the server closed the socket */
	assert_true(n <= 0);
	close(fd);
	ev_loop_destroy(f->loop);
	free(f);
}

static void test_socket_idle_connection_is_closed_after_timeout(void **state)
{
	(void)state;
	struct http_config cfg = sock_cfg;
	cfg.idle_timeout = 0.05;
	struct fx *f = fx_start(&cfg, 0);
	int fd = client_connect(f);
	double end = now_s() + 2.0;
	while (http_server_connections(f->srv) == 0 && now_s() < end)
		pump_until(f, NULL, 0.002);
	assert_int_equal(http_server_connections(f->srv), 1);
	double start = now_s();
	while (http_server_connections(f->srv) > 0 && now_s() < end)
		pump_until(f, NULL, 0.002);
	assert_int_equal(http_server_connections(f->srv), 0);
	assert_true(now_s() - start >= 0.03);
	close(fd);
	fx_stop(f);
}

static void test_socket_connections_beyond_max_conns_get_503(void **state)
{
	(void)state;
	struct http_config cfg = sock_cfg;
	cfg.max_conns = 1;
	struct fx *f = fx_start(&cfg, 0);
	int fd1 = client_connect(f);
	double end = now_s() + 2.0;
	while (http_server_connections(f->srv) == 0 && now_s() < end)
		pump_until(f, NULL, 0.002);
	int fd2 = client_connect(f);
	char buf[4096];
	int closed;
	assert_true(client_read(f, fd2, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_int_equal(strncmp(buf, "HTTP/1.1 503 ", 13), 0);
	assert_int_equal(http_server_connections(f->srv), 1);
	client_send(fd1, "GET /still HTTP/1.1\r\n\r\n");
	assert_true(client_read(f, fd1, buf, sizeof(buf), 1, 0, &closed) > 0);
	assert_non_null(strstr(buf, "\"/still\""));
	close(fd1);
	close(fd2);
	fx_stop(f);
}

/* ---- http_takeover ----------------------------------------------------- */

struct tk {
	struct ev_loop *loop;
	struct http_server *srv;
	int hold;                    /* keep the request for the test to take over */
	struct http_request *held;
	int calls, rv, fd;
	char extra[256];
	size_t extra_len;
};

static void tk_take(struct tk *t, struct http_request *req)
{
	char *extra = NULL;
	size_t extra_len = 0;
	t->fd = -1;
	t->rv = http_takeover(req, &t->fd, &extra, &extra_len);
	if (t->rv == 0) {
		t->extra_len = extra_len;
		assert_true(extra_len < sizeof(t->extra));
		if (extra_len)
			memcpy(t->extra, extra, extra_len);
		free(extra);
	} else {
		assert_null(extra);
		http_respond(req, 200, NULL, "{}", 2);
	}
}

static void tk_handler(struct http_request *req, void *arg)
{
	struct tk *t = arg;
	t->calls++;
	if (strcmp(req->path, "/take") != 0) {
		http_respond(req, 200, NULL, "{}", 2);
		return;
	}
	if (t->hold) {
		t->held = req;
		return;
	}
	tk_take(t, req);
}

static struct tk *tk_start(int hold)
{
	struct tk *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->loop = ev_loop_new(EVFLAG_AUTO);
	t->hold = hold;
	t->rv = 99;
	t->fd = -1;
	char err[256] = "";
	t->srv = http_server_new(t->loop, &sock_cfg, tk_handler, t, err, sizeof(err));
	if (!t->srv)
		fail_msg("http_server_new: %s", err);
	return t;
}

static void tk_stop(struct tk *t)
{
	http_server_free(t->srv);
	ev_loop_destroy(t->loop);
	free(t);
}

static int tk_connect(struct tk *t)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)http_server_port(t->srv)) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void tk_pump(struct tk *t, const int *until, int want)
{
	double end = now_s() + 2.0;
	while (now_s() < end && *until < want) {
		ev_run(t->loop, EVRUN_NOWAIT);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

static void test_takeover_hands_over_fd_and_the_bytes_after_an_upgrade(void **state)
{
	(void)state;
	struct tk *t = tk_start(0);
	int fd = tk_connect(t);
	client_send(fd, "GET /take HTTP/1.1\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n\x81\x02rest");
	tk_pump(t, &t->calls, 1);
	assert_int_equal(t->calls, 1);
	assert_int_equal(t->rv, 0);
	assert_true(t->fd >= 0);
	assert_int_equal(t->extra_len, 6);          /* exactly what followed the head */
	assert_memory_equal(t->extra, "\x81\x02rest", 6);
	assert_int_equal(http_server_connections(t->srv), 0);
	/* the fd is open and ours: bytes go straight through, http.c writes nothing */
	assert_int_equal(send(t->fd, "raw", 3, MSG_NOSIGNAL), 3);
	char buf[16];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "raw", 3);
	close(t->fd);
	close(fd);
	tk_stop(t);
}

static void test_takeover_later_from_outside_the_handler_works(void **state)
{
	(void)state;
	struct tk *t = tk_start(1);
	int fd = tk_connect(t);
	client_send(fd, "GET /take HTTP/1.1\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n");
	tk_pump(t, &t->calls, 1);
	assert_non_null(t->held);
	tk_take(t, t->held);
	assert_int_equal(t->rv, 0);
	assert_int_equal(t->extra_len, 0);
	assert_int_equal(http_server_connections(t->srv), 0);
	close(t->fd);
	close(fd);
	tk_stop(t);
}

static void test_takeover_refused_when_a_request_is_pipelined_behind(void **state)
{
	(void)state;
	struct tk *t = tk_start(0);
	int fd = tk_connect(t);
	client_send(fd, "GET /take HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
	tk_pump(t, &t->calls, 2);
	assert_int_equal(t->calls, 2);              /* the second request is still served */
	assert_int_equal(t->rv, -1);
	char buf[2048];
	size_t len = 0;
	double end = now_s() + 2.0;
	while (now_s() < end && len < sizeof(buf) - 1) {
		ev_run(t->loop, EVRUN_NOWAIT);
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (n > 0)
			len += (size_t)n;
		buf[len] = '\0';
		char *second = strstr(buf, "HTTP/1.1 200");
		if (second && strstr(second + 1, "HTTP/1.1 200") && strstr(strstr(second + 1, "HTTP/1.1 200"), "{}"))
			break;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		poll(&pfd, 1, 1);
	}
	char *first = strstr(buf, "HTTP/1.1 200");
	assert_non_null(first);
	assert_non_null(strstr(first + 1, "HTTP/1.1 200"));
	close(fd);
	tk_stop(t);
}

static void test_takeover_refused_when_the_peer_is_gone(void **state)
{
	(void)state;
	struct tk *t = tk_start(1);
	int fd = tk_connect(t);
	client_send(fd, "GET /take HTTP/1.1\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n");
	tk_pump(t, &t->calls, 1);
	assert_non_null(t->held);
	close(fd);
	double end = now_s() + 2.0;
	while (now_s() < end && http_server_connections(t->srv) > 0) {
		ev_run(t->loop, EVRUN_NOWAIT);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(http_server_connections(t->srv), 0);
	tk_take(t, t->held);                        /* refused, then answered: frees the request */
	assert_int_equal(t->rv, -1);
	tk_stop(t);
}

/* ---- streamed bodies ----------------------------------------------------- */

struct sink_fx {
	char   got[65536];
	size_t len;
	int    calls, ends, end_status, pause_first, others;
	struct http_request *req;
	struct ev_loop *loop;
	struct http_server *srv;
};

static int wants_up(const struct http_request *req, void *arg)
{
	(void)arg;
	return strcmp(req->path, "/up") == 0;
}

static int sink_data(void *arg, const char *data, size_t len)
{
	struct sink_fx *s = arg;
	assert_true(s->len + len <= sizeof(s->got));
	memcpy(s->got + s->len, data, len);
	s->len += len;
	s->calls++;
	return s->pause_first && s->calls == 1 ? HTTP_SINK_PAUSE : HTTP_SINK_MORE;
}

static void sink_end(void *arg, int status)
{
	struct sink_fx *s = arg;
	s->ends++;
	s->end_status = status;
	char body[64];
	int n = snprintf(body, sizeof(body), "{\"len\":%zu}", s->len);
	struct http_request *req = s->req;
	s->req = NULL;
	http_respond(req, status == 0 ? 200 : status > 0 ? status : 400, NULL, body, (size_t)n);
}

static void stream_handler(struct http_request *req, void *arg)
{
	struct sink_fx *s = arg;
	if (!req->body_streamed) {
		s->others++;
		http_respond(req, 200, NULL, "{}", 2);
		return;
	}
	assert_int_equal(req->body_len, 0);
	assert_string_equal(req->path, "/up");
	s->req = req;
	assert_int_equal(http_request_set_sink(req, sink_data, sink_end, s), 0);
	assert_int_equal(http_request_set_sink(req, sink_data, sink_end, s), -1);   /* once */
}

static const struct http_config stream_cfg = {
	.listen = "127.0.0.1:0", .max_body = 64, .max_header = 1024, .max_upload = 4000,
	.upload_prefix = "/up", .wants_stream = wants_up, .idle_timeout = 5, .max_conns = 8,
};

static void test_stream_sink_gets_every_chunked_byte_in_order_then_the_pipelined_request_runs(void **state)
{
	(void)state;
	struct sink_fx s;
	memset(&s, 0, sizeof(s));
	const char in[] = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "5\r\nto,na\r\n7\r\nme\n1,a\n\r\n3\r\n2,b\r\n0\r\n\r\n"
			  "GET /after HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(http_parse_buffer(&stream_cfg, in, sizeof(in) - 1, stream_handler, &s), 0);
	assert_int_equal(s.len, 15);
	assert_memory_equal(s.got, "to,name\n1,a\n2,b", 15);
	assert_true(s.calls >= 1);
	assert_int_equal(s.ends, 1);
	assert_int_equal(s.end_status, 0);
	assert_int_equal(s.others, 1);   /* the GET behind it was parsed after the stream ended */
}

static void test_stream_over_the_upload_limit_ends_the_sink_with_413(void **state)
{
	(void)state;
	struct sink_fx s;
	memset(&s, 0, sizeof(s));
	char in[8192];
	int n = snprintf(in, sizeof(in), "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 5; i++) {   /* 5 x 1000 bytes against max_upload 4000 */
		n += snprintf(in + n, sizeof(in) - (size_t)n, "3e8\r\n");
		memset(in + n, 'a' + i, 1000);
		n += 1000;
		n += snprintf(in + n, sizeof(in) - (size_t)n, "\r\n");
	}
	n += snprintf(in + n, sizeof(in) - (size_t)n, "0\r\n\r\n");
	assert_int_equal(http_parse_buffer(&stream_cfg, in, (size_t)n, stream_handler, &s), 413);
	assert_int_equal(s.ends, 1);
	assert_int_equal(s.end_status, 413);
	assert_int_equal(s.len, 4000);   /* every byte under the limit, none beyond */
	assert_int_equal(s.got[3999], 'd');
}

static void stream_socket_handler(struct http_request *req, void *arg)
{
	stream_handler(req, arg);
}

static void test_socket_stream_pause_stops_reading_until_resume(void **state)
{
	(void)state;
	struct sink_fx s;
	memset(&s, 0, sizeof(s));
	s.pause_first = 1;
	s.loop = ev_loop_new(EVFLAG_AUTO);
	char err[256] = "";
	s.srv = http_server_new(s.loop, &stream_cfg, stream_socket_handler, &s, err, sizeof(err));
	assert_non_null(s.srv);
	struct fx f = { .loop = s.loop, .srv = s.srv };
	int fd = client_connect(&f);
	client_send(fd, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n");
	char part[1000];
	memset(part, 'p', sizeof(part));
	assert_int_equal(send(fd, part, sizeof(part), MSG_NOSIGNAL), (ssize_t)sizeof(part));
	pump_until(&f, &s.calls, 2.0);
	assert_int_equal(s.calls, 1);
	size_t first = s.len;
	assert_true(first > 0 && first <= 1000);
	/* paused: the rest of the body is sent but must not reach the sink */
	memset(part, 'q', sizeof(part));
	assert_int_equal(send(fd, part, sizeof(part), MSG_NOSIGNAL), (ssize_t)sizeof(part));
	assert_int_equal(send(fd, part, sizeof(part), MSG_NOSIGNAL), (ssize_t)sizeof(part));
	pump_until(&f, NULL, 0.2);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.len, first);
	assert_int_equal(s.ends, 0);
	http_request_resume(s.req);
	pump_until(&f, &s.ends, 2.0);
	assert_int_equal(s.ends, 1);
	assert_int_equal(s.end_status, 0);
	assert_int_equal(s.len, 3000);
	assert_int_equal(s.got[999], 'p');
	assert_int_equal(s.got[1000], 'q');
	char buf[1024];
	int closed;
	size_t n = client_read(&f, fd, buf, sizeof(buf), 1, 0, &closed);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
	assert_non_null(strstr(buf, "{\"len\":3000}"));
	close(fd);
	http_server_free(s.srv);
	ev_loop_destroy(s.loop);
}

static void test_socket_stream_client_gone_mid_body_ends_the_sink_with_minus_one(void **state)
{
	(void)state;
	struct sink_fx s;
	memset(&s, 0, sizeof(s));
	s.loop = ev_loop_new(EVFLAG_AUTO);
	char err[256] = "";
	s.srv = http_server_new(s.loop, &stream_cfg, stream_socket_handler, &s, err, sizeof(err));
	assert_non_null(s.srv);
	struct fx f = { .loop = s.loop, .srv = s.srv };
	int fd = client_connect(&f);
	client_send(fd, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\nto,name\n");
	pump_until(&f, &s.calls, 2.0);
	assert_int_equal(s.calls, 1);
	close(fd);
	pump_until(&f, &s.ends, 2.0);
	assert_int_equal(s.ends, 1);
	assert_int_equal(s.end_status, -1);
	assert_int_equal(s.len, 8);
	pump_until(&f, NULL, 0.05);
	assert_int_equal(http_server_connections(s.srv), 0);
	http_server_free(s.srv);
	ev_loop_destroy(s.loop);
}

static void test_server_listens_on_ipv6_loopback(void **state)
{
	(void)state;
	struct http_config cfg = sock_cfg;
	cfg.listen = "[::1]:0";
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char err[256] = "";
	struct http_server *srv = http_server_new(loop, &cfg, sync_handler, NULL, err, sizeof(err));
	if (!srv) {   /* a host without IPv6 loopback: nothing to test */
		ev_loop_destroy(loop);
		skip();
	}
	assert_true(http_server_port(srv) > 0);
	http_server_free(srv);
	ev_loop_destroy(loop);
}

static void test_server_rejects_bad_listen_address(void **state)
{
	(void)state;
	struct http_config cfg = sock_cfg;
	cfg.listen = "no-port-here";
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char err[256] = "";
	assert_null(http_server_new(loop, &cfg, sync_handler, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "no-port-here"));
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_simple_get_gives_method_path_and_headers),
		cmocka_unit_test(test_parse_post_body_by_content_length),
		cmocka_unit_test(test_parse_chunked_body_is_reassembled),
		cmocka_unit_test(test_parse_pipelined_requests_are_handled_in_order),
		cmocka_unit_test(test_parse_connection_close_stops_after_that_request),
		cmocka_unit_test(test_parse_head_of_exactly_max_header_is_accepted),
		cmocka_unit_test(test_parse_head_over_max_header_is_431),
		cmocka_unit_test(test_parse_too_many_header_fields_is_431),
		cmocka_unit_test(test_parse_content_length_over_max_body_is_413_before_body),
		cmocka_unit_test(test_parse_content_length_at_max_body_is_accepted),
		cmocka_unit_test(test_parse_chunked_body_over_max_body_is_413),
		cmocka_unit_test(test_parse_upload_prefix_gets_the_larger_body_limit_and_nothing_else_does),
		cmocka_unit_test(test_parse_malformed_requests_are_400),
		cmocka_unit_test(test_parse_error_after_good_request_still_answers_the_first),
		cmocka_unit_test(test_header_lookup_is_case_insensitive_and_trims_values),
		cmocka_unit_test(test_query_is_split_from_path_and_path_is_not_decoded),
		cmocka_unit_test(test_socket_round_trip),
		cmocka_unit_test(test_socket_keep_alive_serves_two_requests_on_one_connection),
		cmocka_unit_test(test_socket_http10_closes_unless_keep_alive_asked),
		cmocka_unit_test(test_socket_async_responses_keep_pipelined_order),
		cmocka_unit_test(test_socket_head_response_has_no_body),
		cmocka_unit_test(test_socket_expect_100_continue_gets_interim_response),
		cmocka_unit_test(test_socket_oversized_content_length_gets_413_and_close),
		cmocka_unit_test(test_socket_malformed_request_gets_400_json),
		cmocka_unit_test(test_socket_peer_close_while_pending_then_respond_is_harmless),
		cmocka_unit_test(test_socket_request_pending_across_server_free_is_answered_safely),
		cmocka_unit_test(test_socket_idle_connection_is_closed_after_timeout),
		cmocka_unit_test(test_socket_connections_beyond_max_conns_get_503),
		cmocka_unit_test(test_takeover_hands_over_fd_and_the_bytes_after_an_upgrade),
		cmocka_unit_test(test_takeover_later_from_outside_the_handler_works),
		cmocka_unit_test(test_takeover_refused_when_a_request_is_pipelined_behind),
		cmocka_unit_test(test_takeover_refused_when_the_peer_is_gone),
		cmocka_unit_test(test_stream_sink_gets_every_chunked_byte_in_order_then_the_pipelined_request_runs),
		cmocka_unit_test(test_stream_over_the_upload_limit_ends_the_sink_with_413),
		cmocka_unit_test(test_socket_stream_pause_stops_reading_until_resume),
		cmocka_unit_test(test_socket_stream_client_gone_mid_body_ends_the_sink_with_minus_one),
		cmocka_unit_test(test_server_listens_on_ipv6_loopback),
		cmocka_unit_test(test_server_rejects_bad_listen_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
