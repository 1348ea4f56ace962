/*
 * ipcount.h: open connections per client address, for caps such as "at most
 * N connections of one address".  A table of counts keyed by the address
 * text; an address leaves it when its last connection closes.  Used on one
 * event loop (no locking).
 */
#ifndef PUSHGATE_IPCOUNT_H
#define PUSHGATE_IPCOUNT_H

#include <stddef.h>

struct ipcount;
struct ipcount_entry;

struct ipcount *ipcount_new(void);
/* Frees the table and every entry still in it. */
void ipcount_free(struct ipcount *t);

/*
 * One more connection of `ip`, unless it has `max` already (or memory ran
 * out): its entry, to give back with ipcount_release, else NULL.
 */
struct ipcount_entry *ipcount_take(struct ipcount *t, const char *ip, unsigned max);
void ipcount_release(struct ipcount *t, struct ipcount_entry *e);

/* The address part of a peer: "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "::1". */
void ipcount_addr_of(const char *peer, char *out, size_t outlen);

#endif
