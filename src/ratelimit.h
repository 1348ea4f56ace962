/*
 * ratelimit.h: token buckets keyed by a short string (a client address, a
 * number), in a table of fixed size.  A bucket holds up to `burst` tokens
 * and refills at `rate` per second; a key not seen for long enough to be
 * full again is as good as absent, so a full table evicts such entries
 * first and otherwise the least recently used in the probe window.  Used on
 * one event loop; no locking, no allocation after ratelimit_new.
 */
#ifndef PUSHGATE_RATELIMIT_H
#define PUSHGATE_RATELIMIT_H

#include <stddef.h>

struct ratelimit;

/* slots: entries kept (rounded up to a power of two); rate > 0, burst >= 1. */
struct ratelimit *ratelimit_new(size_t slots, double rate, double burst);
void ratelimit_free(struct ratelimit *rl);

/*
 * Takes one token of key's bucket at time `now` (seconds, monotonic).
 * Returns 0 when granted, else the seconds until a token will be there
 * (nothing taken).  Keys longer than 63 bytes are cut.
 */
double ratelimit_take(struct ratelimit *rl, const char *key, double now);

/*
 * ratelimit_take for `cost` tokens of a bucket with its own rate and burst
 * (the table's are ignored; keep them the same for a key).  A cost above
 * the burst is never granted.
 */
double ratelimit_take_n(struct ratelimit *rl, const char *key, double now, double cost, double rate, double burst);

/* The same answer as ratelimit_take, taking nothing (a key not in the table has a full bucket). */
double ratelimit_peek(const struct ratelimit *rl, const char *key, double now);

#endif
