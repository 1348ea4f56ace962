/*
 * fuzz_http.c: libFuzzer target for the HTTP request parser.  Feeds the
 * input through http_parse_buffer() (the server's own parse path) with small
 * limits, and a handler that touches every field it was given (so ASan sees
 * any pointer that escapes the request) and answers synchronously.  Bodies
 * of paths starting /s and /r are streamed, as pushgated streams every body
 * (api.c): /s ones are gathered with http_request_read_body (64 bytes at
 * most), /r ones are answered with the body unread (a refused key).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "log.h"

static void touch_body(const struct http_request *req, size_t *sum)
{
	for (size_t i = 0; i < req->body_len; i++)
		*sum += (unsigned char)req->body[i];
	if (req->body[req->body_len] != '\0')
		__builtin_trap();
}

static void body_read(struct http_request *req, int status, void *arg)
{
	size_t *sum = arg;
	if (status == 0) {
		if (req->body_streamed)
			__builtin_trap();
		touch_body(req, sum);
		http_respond(req, 202, NULL, req->body, req->body_len);
	} else {
		if (status != 400 && status != 413 && status != 503 && status != -1)
			__builtin_trap();
		http_respond(req, status > 0 ? status : 400, NULL, "{}", 2);
	}
}

static int fuzz_wants_stream(const struct http_request *req, void *arg)
{
	(void)arg;
	return req->path[0] == '/' && (req->path[1] == 's' || req->path[1] == 'r');
}

static void fuzz_handler(struct http_request *req, void *arg)
{
	size_t *sum = arg;
	if (req->body_streamed) {
		if (req->path[1] == 'r' || http_request_read_body(req, 64, body_read, sum) < 0)
			http_respond(req, 401, NULL, "{}", 2);
		return;
	}
	*sum += strlen(req->method_name) + strlen(req->path) + strlen(req->query) + strlen(req->peer);
	for (unsigned i = 0; i < req->n_headers; i++)
		*sum += strlen(req->headers[i].name) + strlen(req->headers[i].value);
	touch_body(req, sum);
	if (http_header(req, "content-length"))
		(*sum)++;
	http_respond(req, req->body_len ? 202 : 200, "X-Fuzz: 1\r\n", req->body, req->body_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) {
		log_set_level(LOG_ERROR);
		quiet = 1;
	}
	struct http_config cfg = { .listen = "fuzz", .max_body = 4096, .max_header = 1024,
				   .idle_timeout = 1, .max_conns = 1, .wants_stream = fuzz_wants_stream };
	size_t sum = 0;
	int st = http_parse_buffer(&cfg, (const char *)data, size, fuzz_handler, &sum);
	if (st != 0 && st != 400 && st != 413 && st != 431 && st != 503)
		__builtin_trap();
	return 0;
}
