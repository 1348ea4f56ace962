/*
 * fuzz_ws.c: libFuzzer target for the WebSocket layer (ws.c + wslay).  The
 * input is the client side of an established connection on a socketpair:
 * written to the server, then EOF.  on_text parses JSON with jansson like
 * the push module and answers, closes or ignores; the server's output is
 * read and dropped.  Every input must end in exactly one on_close, with
 * nothing leaked and the loop never stuck.
 *
 * Inputs starting with 'F' are "framed": after it, records of
 * [header byte][length byte][payload] each become one masked frame with
 * that first header byte, so the fuzzer reaches on_text without having to
 * learn masking (wslay itself is not instrumented).  Other inputs go raw.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "ws.h"

struct fuzz_state {
	struct ws_conn *c;
	int closes;
	int texts;
};

static void fuzz_on_text(struct ws_conn *c, const char *data, size_t len, void *arg)
{
	struct fuzz_state *st = arg;
	st->texts++;
	json_error_t err;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
	const char *type = root ? json_string_value(json_object_get(root, "type")) : NULL;
	if (!type)
		ws_close(c, 1007, root ? "no type" : "not JSON");
	else if (strcmp(type, "bye") == 0)
		ws_close(c, 4000, "bye");
	else if (strcmp(type, "ping") == 0)
		(void)ws_send_text(c, "{\"type\":\"pong\"}", 15);
	else if (strcmp(type, "echo") == 0)
		(void)ws_send_text(c, data, len);
	json_decref(root);
}

static void fuzz_on_close(struct ws_conn *c, int code, void *arg)
{
	struct fuzz_state *st = arg;
	if (c != st->c || code < 1000 || code > 4999)
		__builtin_trap();
	if (ws_send_text(c, "x", 1) != -1)
		__builtin_trap();
	st->closes++;
}

static const struct ws_callbacks fuzz_cbs = { .on_text = fuzz_on_text, .on_close = fuzz_on_close };

/* 'F' inputs -> masked frames; returns the malloc'd stream and its length. */
static uint8_t *build_frames(const uint8_t *data, size_t size, size_t *out_len)
{
	static const uint8_t mask[4] = { 0xa5, 0x1c, 0x00, 0x7e };
	uint8_t *out = malloc(size * 3 + 16);
	if (!out)
		return NULL;
	size_t o = 0, i = 1;
	while (i + 2 <= size) {
		uint8_t b0 = data[i], pl = data[i + 1];
		i += 2;
		size_t n = pl;
		if (n > size - i)
			n = size - i;
		out[o++] = b0;
		out[o++] = (uint8_t)(0x80 | (n < 126 ? n : 126));
		if (n >= 126) {
			out[o++] = 0;
			out[o++] = (uint8_t)n;
		}
		memcpy(out + o, mask, 4);
		o += 4;
		for (size_t k = 0; k < n; k++)
			out[o + k] = data[i + k] ^ mask[k % 4];
		o += n;
		i += n;
	}
	*out_len = o;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ev_loop *loop;
	if (!loop) {
		log_set_level(LOG_ERROR);
		loop = ev_loop_new(EVFLAG_AUTO);
		if (!loop)
			abort();
	}
	const uint8_t *stream = data;
	size_t stream_len = size;
	uint8_t *framed = NULL;
	if (size > 0 && data[0] == 'F') {
		framed = build_frames(data, size, &stream_len);
		if (!framed)
			return 0;
		stream = framed;
	}

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	struct fuzz_state st = { 0 };
	/* no timer may fire during a run: every end comes from the bytes */
	struct ws_config cfg = { .max_message = 4096, .ping_interval = 1e6, .idle_timeout = 1e6 };
	st.c = ws_adopt(loop, sv[0], "fuzz", &cfg, &fuzz_cbs, &st);
	if (!st.c)
		abort();

	size_t off = 0;
	int shut = 0;
	char sink[65536];
	for (int round = 0; round < 100000 && !st.closes; round++) {
		if (off < stream_len) {
			ssize_t n = send(sv[1], stream + off, stream_len - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
		} else if (!shut) {
			shutdown(sv[1], SHUT_WR);
			shut = 1;
		}
		ev_run(loop, EVRUN_NOWAIT);
		while (recv(sv[1], sink, sizeof(sink), 0) > 0)
			;
	}
	if (st.closes != 1 || ws_count() != 0)
		__builtin_trap();   /* stuck, or on_close missing or doubled */
	close(sv[1]);
	free(framed);
	return 0;
}
