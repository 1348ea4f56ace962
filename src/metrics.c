/*
 * metrics.c: writes Prometheus text (exposition format 0.0.4) and keeps
 * latency histograms.
 *
 * Owns nothing but the text it grows while /metrics is answered.  Label
 * values come from configuration and the database (route, bind and account
 * names): each is escaped (\\, \" and \n) so that no name can break a line
 * or invent a sample.  Observing a latency never allocates: it is called on
 * the hot path of every request, response and final state.
 */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct metrics_bounds metrics_http_bounds = {
	13, { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 },
};
const struct metrics_bounds metrics_smsc_bounds = {
	14, { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 },
};
const struct metrics_bounds metrics_final_bounds = {
	16, { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 14400, 86400 },
};

static void grow(struct metrics_out *o, size_t more)
{
	if (o->oom || o->len + more + 1 <= o->cap)
		return;
	size_t cap = o->cap ? o->cap : 16384;
	while (cap < o->len + more + 1)
		cap *= 2;
	char *b = realloc(o->buf, cap);
	if (!b) {
		o->oom = 1;
		return;
	}
	o->buf = b;
	o->cap = cap;
}

static void put(struct metrics_out *o, const char *s, size_t n)
{
	grow(o, n);
	if (o->oom)
		return;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void puts_(struct metrics_out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void printf_(struct metrics_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(struct metrics_out *o, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* HELP text escapes \ and newline; a label value also ". */
static void escaped(struct metrics_out *o, const char *s, int quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(o, "\\\\");
		else if (*s == '\n')
			puts_(o, "\\n");
		else if (quote && *s == '"')
			puts_(o, "\\\"");
		else
			put(o, s, 1);
	}
}

static const char *type_name(enum metrics_type t)
{
	switch (t) {
	case METRICS_COUNTER:   return "counter";
	case METRICS_GAUGE:     return "gauge";
	case METRICS_HISTOGRAM: return "histogram";
	}
	return "untyped";
}

void metrics_family(struct metrics_out *o, const char *name, enum metrics_type type, const char *help)
{
	printf_(o, "# HELP %s ", name);
	escaped(o, help, 0);
	printf_(o, "\n# TYPE %s %s\n", name, type_name(type));
}

/* name{k="v",...,extra_k="extra_v"} */
static void series(struct metrics_out *o, const char *name, const char *suffix, const char *const *labels,
		   const char *extra_k, const char *extra_v)
{
	puts_(o, name);
	puts_(o, suffix);
	int first = 1;
	for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
		puts_(o, first ? "{" : ",");
		puts_(o, labels[i]);
		puts_(o, "=\"");
		escaped(o, labels[i + 1], 1);
		puts_(o, "\"");
		first = 0;
	}
	if (extra_k) {
		printf_(o, "%s%s=\"%s\"", first ? "{" : ",", extra_k, extra_v);
		first = 0;
	}
	if (!first)
		puts_(o, "}");
}

static void double_text(char *out, size_t cap, double v)
{
	if (isnan(v))
		snprintf(out, cap, "NaN");
	else if (isinf(v))
		snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
	else
		snprintf(out, cap, "%.9g", v);
}

void metrics_u64(struct metrics_out *o, const char *name, const char *const *labels, unsigned long long v)
{
	series(o, name, "", labels, NULL, NULL);
	printf_(o, " %llu\n", v);
}

void metrics_double(struct metrics_out *o, const char *name, const char *const *labels, double v)
{
	char t[40];
	double_text(t, sizeof(t), v);
	series(o, name, "", labels, NULL, NULL);
	printf_(o, " %s\n", t);
}

void metrics_one(struct metrics_out *o, const char *name, enum metrics_type type, const char *help,
		 unsigned long long v)
{
	metrics_family(o, name, type, help);
	metrics_u64(o, name, NULL, v);
}

void metrics_histogram_init(struct metrics_histogram *h, const struct metrics_bounds *b)
{
	memset(h, 0, sizeof(*h));
	h->b = b;
}

void metrics_observe(struct metrics_histogram *h, double seconds)
{
	if (!(seconds > 0))   /* negative, zero or NaN */
		seconds = 0;
	unsigned i = 0;
	while (i < h->b->n && seconds > h->b->le[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += seconds;
}

void metrics_observe_pgarray(struct metrics_histogram *h, const char *s)
{
	if (!s || *s != '{')
		return;
	s++;
	while (*s && *s != '}') {
		char *end;
		double v = strtod(s, &end);
		if (end == s) {   /* NULL or junk: skip the element */
			while (*s && *s != ',' && *s != '}')
				s++;
		} else {
			metrics_observe(h, v);
			s = end;
		}
		if (*s == ',')
			s++;
	}
}

void metrics_histogram_write(struct metrics_out *o, const char *name, const char *const *labels,
			     const struct metrics_histogram *h)
{
	uint64_t cum = 0;
	char le[40];
	for (unsigned i = 0; i <= h->b->n; i++) {
		cum += h->counts[i];
		if (i < h->b->n)
			double_text(le, sizeof(le), h->b->le[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		series(o, name, "_bucket", labels, "le", le);
		printf_(o, " %llu\n", (unsigned long long)cum);
	}
	char sum[40];
	double_text(sum, sizeof(sum), h->sum);
	series(o, name, "_sum", labels, NULL, NULL);
	printf_(o, " %s\n", sum);
	series(o, name, "_count", labels, NULL, NULL);
	printf_(o, " %llu\n", (unsigned long long)h->count);
}

struct metrics_accounts {
	size_t              max, n, mask;    /* mask + 1 slots, a power of two >= 2 * max */
	long long          *ids;             /* 0: a free slot */
	unsigned long long (*v)[METRICS_ACCOUNT_COLS];
	unsigned long long  other[METRICS_ACCOUNT_COLS];
};

struct metrics_accounts *metrics_accounts_new(size_t max)
{
	struct metrics_accounts *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	size_t slots = 2;
	while (slots < 2 * max)
		slots *= 2;
	a->max = max;
	a->mask = slots - 1;
	a->ids = calloc(slots, sizeof(*a->ids));
	a->v = calloc(slots, sizeof(*a->v));
	if (!a->ids || !a->v) {
		metrics_accounts_free(a);
		return NULL;
	}
	return a;
}

void metrics_accounts_add(struct metrics_accounts *a, long long account_id, unsigned col, unsigned long long n)
{
	if (!a || col >= METRICS_ACCOUNT_COLS)
		return;
	if (account_id > 0) {
		size_t i = (size_t)((unsigned long long)account_id * 0x9E3779B97F4A7C15ull) & a->mask;
		for (;; i = (i + 1) & a->mask) {
			if (a->ids[i] == account_id) {
				a->v[i][col] += n;
				return;
			}
			if (a->ids[i] == 0)
				break;
		}
		if (a->n < a->max) {   /* at most half the slots used: a free one always ends the probe */
			a->ids[i] = account_id;
			a->n++;
			a->v[i][col] += n;
			return;
		}
	}
	a->other[col] += n;
}

void metrics_accounts_write(struct metrics_out *o, const char *name, const struct metrics_accounts *a, unsigned col)
{
	if (!a || col >= METRICS_ACCOUNT_COLS)
		return;
	char id[24];
	for (size_t i = 0; i <= a->mask; i++)
		if (a->ids[i] && a->v[i][col]) {
			snprintf(id, sizeof(id), "%lld", a->ids[i]);
			const char *lab[] = { "account", id, NULL };
			metrics_u64(o, name, lab, a->v[i][col]);
		}
	if (a->other[col]) {
		const char *lab[] = { "account", "other", NULL };
		metrics_u64(o, name, lab, a->other[col]);
	}
}

void metrics_accounts_free(struct metrics_accounts *a)
{
	if (!a)
		return;
	free(a->ids);
	free(a->v);
	free(a);
}

const char *metrics_text(struct metrics_out *o)
{
	return o->buf ? o->buf : "";
}

void metrics_out_free(struct metrics_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}
