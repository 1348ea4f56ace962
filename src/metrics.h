/*
 * metrics.h: Prometheus text exposition (format 0.0.4) and latency
 * histograms (metrics.c).
 *
 * Each module keeps its own counters and writes them through a struct
 * metrics_out when /metrics is read: a family (HELP and TYPE once), then its
 * samples.  Label values are escaped here, whatever they hold.  A histogram
 * has fixed bucket bounds (seconds); observing is a few comparisons and no
 * allocation.
 */
#ifndef PUSHGATE_METRICS_H
#define PUSHGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* The text being written; grows as needed.  oom set once an allocation failed (the text is cut). */
struct metrics_out {
	char  *buf;
	size_t len, cap;
	int    oom;
};

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* "# HELP name help" and "# TYPE name type"; a counter's name ends in _total. */
void metrics_family(struct metrics_out *o, const char *name, enum metrics_type type, const char *help);

/*
 * One sample: name{k1="v1",k2="v2"} value.  labels is NULL or a
 * NULL-terminated list of name, value pairs; values are escaped.
 */
void metrics_u64(struct metrics_out *o, const char *name, const char *const *labels, unsigned long long v);
void metrics_double(struct metrics_out *o, const char *name, const char *const *labels, double v);

/* A family of one unlabelled sample: the common case. */
void metrics_one(struct metrics_out *o, const char *name, enum metrics_type type, const char *help,
		 unsigned long long v);

#define METRICS_MAX_BUCKETS 20

/* Bucket bounds (seconds, ascending) shared by every histogram of a kind. */
struct metrics_bounds {
	unsigned n;
	double   le[METRICS_MAX_BUCKETS];
};

extern const struct metrics_bounds metrics_http_bounds;      /* 1 ms .. 10 s */
extern const struct metrics_bounds metrics_smsc_bounds;      /* 1 ms .. 30 s */
extern const struct metrics_bounds metrics_final_bounds;     /* 50 ms .. 1 day */

/* Counts per bucket (not cumulative), the sum and the count of observations. */
struct metrics_histogram {
	const struct metrics_bounds *b;
	uint64_t counts[METRICS_MAX_BUCKETS + 1];   /* the last one: above every bound (+Inf) */
	uint64_t count;
	double   sum;
};

void metrics_histogram_init(struct metrics_histogram *h, const struct metrics_bounds *b);
/* A negative or NaN value counts as 0. */
void metrics_observe(struct metrics_histogram *h, double seconds);
/* Observes each number of a PostgreSQL array literal ("{0.5,12.25}"); NULL or "" observe nothing. */
void metrics_observe_pgarray(struct metrics_histogram *h, const char *array);
/* name_bucket{labels,le="…"} (cumulative), name_sum{labels}, name_count{labels}; no HELP/TYPE. */
void metrics_histogram_write(struct metrics_out *o, const char *name, const char *const *labels,
			     const struct metrics_histogram *h);

/*
 * Counters per account id, for at most `max` accounts (the first seen);
 * the rest are summed under account="other".  max 0: none kept, every
 * account is "other".  Adding is a hash probe, no allocation.
 */
#define METRICS_ACCOUNT_COLS 2
struct metrics_accounts;
struct metrics_accounts *metrics_accounts_new(size_t max);
void metrics_accounts_add(struct metrics_accounts *a, long long account_id, unsigned col, unsigned long long n);
/* Samples name{account="ID"} of column col (accounts with 0 left out), "other" last when not 0. */
void metrics_accounts_write(struct metrics_out *o, const char *name, const struct metrics_accounts *a, unsigned col);
void metrics_accounts_free(struct metrics_accounts *a);

/* The text so far (NUL-terminated; "" when empty).  metrics_out_free releases it. */
const char *metrics_text(struct metrics_out *o);
void metrics_out_free(struct metrics_out *o);

#endif
