/*
 * ipcount.c: connections per client address (see ipcount.h): a chained
 * hash table of counts, an entry freed when its count drops to zero.
 */
#include "ipcount.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

struct ipcount_entry {
	struct ipcount_entry *next;
	unsigned n;
	unsigned bucket;
	char     ip[48];
};

struct ipcount {
	struct ipcount_entry *b[BUCKETS];
};

struct ipcount *ipcount_new(void)
{
	return calloc(1, sizeof(struct ipcount));
}

void ipcount_free(struct ipcount *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < BUCKETS; i++)
		while (t->b[i]) {
			struct ipcount_entry *e = t->b[i];
			t->b[i] = e->next;
			free(e);
		}
	free(t);
}

static unsigned bucket_of(const char *ip)
{
	unsigned h = 2166136261u;
	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % BUCKETS;
}

struct ipcount_entry *ipcount_take(struct ipcount *t, const char *ip, unsigned max)
{
	unsigned b = bucket_of(ip);
	struct ipcount_entry *e = t->b[b];
	while (e && strncmp(e->ip, ip, sizeof(e->ip) - 1) != 0)
		e = e->next;
	if (e && e->n >= max)
		return NULL;
	if (!e) {
		if (max == 0 || !(e = calloc(1, sizeof(*e))))
			return NULL;
		snprintf(e->ip, sizeof(e->ip), "%s", ip);
		e->bucket = b;
		e->next = t->b[b];
		t->b[b] = e;
	}
	e->n++;
	return e;
}

void ipcount_release(struct ipcount *t, struct ipcount_entry *e)
{
	if (!e || --e->n > 0)
		return;
	for (struct ipcount_entry **pp = &t->b[e->bucket]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
}

void ipcount_addr_of(const char *peer, char *out, size_t outlen)
{
	if (peer[0] == '[') {
		size_t n = strcspn(peer + 1, "]");
		snprintf(out, outlen, "%.*s", (int)n, peer + 1);
	} else {
		const char *colon = strrchr(peer, ':');
		size_t n = colon && strchr(peer, ':') == colon ? (size_t)(colon - peer) : strlen(peer);
		snprintf(out, outlen, "%.*s", (int)n, peer);
	}
}
