/*
 * fuzz_jstream: the streamed JSON reader of campaign uploads (jstream.c).
 * The first byte picks the piece size and where the callback stops; the
 * rest is the document.  Checks: no read or write out of bounds, values
 * never longer than the bound and NUL-terminated, and the same events and
 * verdict whatever the pieces (the whole document in one feed is the
 * reference).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jstream.h"

#define MAXV 256

struct trace {
	uint64_t hash;
	int      events, stop_every;
};

static int cb(void *arg, enum jstream_event ev, const char *key, const char *raw, size_t len)
{
	struct trace *t = arg;
	if (raw && (len > MAXV || raw[len] != '\0'))
		abort();
	t->hash = t->hash * 1099511628211u ^ (uint64_t)ev;
	for (const char *k = key; k && *k; k++)
		t->hash = t->hash * 1099511628211u ^ (unsigned char)*k;
	for (size_t i = 0; raw && i < len; i++)
		t->hash = t->hash * 1099511628211u ^ (unsigned char)raw[i];
	t->events++;
	return t->stop_every && t->events % t->stop_every == 0;
}

static int run(const uint8_t *d, size_t n, size_t step, int stop_every, struct trace *t)
{
	struct jstream js;
	memset(t, 0, sizeof(*t));
	t->stop_every = stop_every;
	if (jstream_init(&js, "recipients", MAXV) < 0)
		return -2;
	int r = 0;
	size_t at = 0;
	while (at < n) {
		size_t len = n - at < step ? n - at : step;
		long used = jstream_feed(&js, (const char *)d + at, len, cb, t);
		if (used < 0) {
			r = -1;
			break;
		}
		if ((size_t)used > len)
			abort();
		at += (size_t)used;
	}
	if (r == 0)
		r = jstream_finish(&js);
	jstream_free(&js);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] & 0x1f) + 1;
	int stop_every = data[0] >> 5;
	struct trace whole, pieces;
	int a = run(data + 1, size - 1, size, 0, &whole);
	int b = run(data + 1, size - 1, step, stop_every, &pieces);
	if (a != b || (a == 0 && (whole.hash != pieces.hash || whole.events != pieces.events)))
		abort();
	return 0;
}
