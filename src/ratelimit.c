/*
 * ratelimit.c: token buckets keyed by string in an open-addressed table
 * (see ratelimit.h).  Lookups probe at most PROBE slots; a new key takes a
 * free slot, else a bucket that would be full again by now (forgetting it
 * changes nothing), else the least recently used slot of its window, which
 * at worst grants that key's next request early.
 */
#include "ratelimit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 64
#define PROBE   16

struct bucket {
	char   key[KEY_MAX];
	int    used;
	double tokens;
	double at;              /* when tokens was computed */
};

struct ratelimit {
	struct bucket *b;
	size_t         mask;
	double         rate, burst;
};

struct ratelimit *ratelimit_new(size_t slots, double rate, double burst)
{
	if (rate <= 0 || burst < 1)
		return NULL;
	size_t n = 16;
	while (n < slots && n < ((size_t)1 << 24))
		n <<= 1;
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl || !(rl->b = calloc(n, sizeof(*rl->b)))) {
		free(rl);
		return NULL;
	}
	rl->mask = n - 1;
	rl->rate = rate;
	rl->burst = burst;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->b);
	free(rl);
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static double level_at(const struct bucket *b, double now, double rate, double burst)
{
	double t = b->tokens + (now - b->at) * rate;
	return t > burst ? burst : t;
}

static double level(const struct ratelimit *rl, const struct bucket *b, double now)
{
	return level_at(b, now, rl->rate, rl->burst);
}

/* key cut to a slot's size into k; its first slot.  Returns the length. */
static size_t key_of(const struct ratelimit *rl, const char *key, char k[KEY_MAX], size_t *start)
{
	size_t len = strlen(key);
	if (len >= KEY_MAX)
		len = KEY_MAX - 1;
	memcpy(k, key, len);
	k[len] = '\0';
	*start = (size_t)hash(k) & rl->mask;
	return len;
}

double ratelimit_peek(const struct ratelimit *rl, const char *key, double now)
{
	char k[KEY_MAX];
	size_t start;
	key_of(rl, key, k, &start);
	for (size_t i = 0; i < PROBE; i++) {
		const struct bucket *b = &rl->b[(start + i) & rl->mask];
		if (b->used && strcmp(b->key, k) == 0) {
			double t = level(rl, b, now);
			return t >= 1 ? 0 : (1 - t) / rl->rate;
		}
	}
	return 0;
}

double ratelimit_take_n(struct ratelimit *rl, const char *key, double now, double cost, double rate, double burst)
{
	char k[KEY_MAX];
	size_t start, len = key_of(rl, key, k, &start);
	struct bucket *found = NULL, *spare = NULL, *oldest = NULL;
	for (size_t i = 0; i < PROBE; i++) {
		struct bucket *b = &rl->b[(start + i) & rl->mask];
		if (b->used && strcmp(b->key, k) == 0) {
			found = b;
			break;
		}
		if (!spare && (!b->used || level(rl, b, now) >= rl->burst))
			spare = b;
		if (!oldest || b->at < oldest->at)
			oldest = b;
	}
	if (!found) {
		found = spare ? spare : oldest;
		memcpy(found->key, k, len + 1);
		found->used = 1;
		found->tokens = burst;
		found->at = now;
	}
	double t = level_at(found, now, rate, burst);
	found->at = now;
	if (t >= cost) {
		found->tokens = t - cost;
		return 0;
	}
	found->tokens = t;
	return cost > burst ? 1e9 : (cost - t) / rate;
}

double ratelimit_take(struct ratelimit *rl, const char *key, double now)
{
	return ratelimit_take_n(rl, key, now, 1, rl->rate, rl->burst);
}
