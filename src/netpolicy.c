/*
 * netpolicy.c: the outbound address policy (see netpolicy.h).  Addresses
 * are compared as 16-byte IPv6 values (IPv4 as ::ffff:a.b.c.d), so one
 * table of refused ranges and one list of allowed ones serve both families.
 */
#include "netpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct range {
	uint8_t  net[16];
	unsigned bits;       /* prefix length over the 16 bytes */
};

struct netpolicy {
	struct range *allow;
	size_t        n_allow;
};

/* Refused unless allowed: IPv4 ranges as ::ffff:0:0/96 + prefix. */
static const struct {
	const char *cidr;
	const char *why;
} refused[] = {
	{ "0.0.0.0/8", "unspecified" },
	{ "10.0.0.0/8", "private" },
	{ "100.64.0.0/10", "shared (carrier-grade NAT)" },
	{ "127.0.0.0/8", "loopback" },
	{ "169.254.0.0/16", "link-local (cloud metadata)" },
	{ "172.16.0.0/12", "private" },
	{ "192.0.0.0/24", "IETF protocol assignments" },
	{ "192.168.0.0/16", "private" },
	{ "198.18.0.0/15", "benchmarking" },
	{ "224.0.0.0/4", "multicast" },
	{ "240.0.0.0/4", "reserved" },
	{ "::/128", "unspecified" },
	{ "::1/128", "loopback" },
	{ "fc00::/7", "unique local (private)" },
	{ "fe80::/10", "link-local" },
	{ "ff00::/8", "multicast" },
};

static int parse_cidr(const char *text, struct range *out)
{
	char buf[64];
	size_t n = strlen(text);
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, text, n + 1);
	char *slash = strchr(buf, '/');
	long bits = -1;
	if (slash) {
		*slash = '\0';
		char *end;
		bits = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end != '\0' || bits < 0)
			return -1;
	}
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		if (bits > 32)
			return -1;
		memset(out->net, 0, 10);
		out->net[10] = out->net[11] = 0xff;
		memcpy(out->net + 12, &a4, 4);
		out->bits = 96 + (unsigned)(bits < 0 ? 32 : bits);
	} else if (inet_pton(AF_INET6, buf, &a6) == 1) {
		if (bits > 128)
			return -1;
		memcpy(out->net, &a6, 16);
		out->bits = (unsigned)(bits < 0 ? 128 : bits);
	} else {
		return -1;
	}
	return 0;
}

static int in_range(const uint8_t a[16], const struct range *r)
{
	unsigned full = r->bits / 8, rest = r->bits % 8;
	if (memcmp(a, r->net, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (r->net[full] & mask);
}

struct netpolicy *netpolicy_new(const char *allow, char *err, size_t errlen)
{
	struct netpolicy *np = calloc(1, sizeof(*np));
	if (!np) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const char *p = allow ? allow : "";
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		size_t n = strcspn(p, ", \t");
		if (n == 0)
			break;
		char item[64];
		struct range r;
		if (n >= sizeof(item) || (memcpy(item, p, n), item[n] = '\0', parse_cidr(item, &r) < 0)) {
			snprintf(err, errlen, "not an address range: \"%.*s\"", (int)(n > 60 ? 60 : n), p);
			netpolicy_free(np);
			return NULL;
		}
		struct range *grown = realloc(np->allow, (np->n_allow + 1) * sizeof(*grown));
		if (!grown) {
			snprintf(err, errlen, "out of memory");
			netpolicy_free(np);
			return NULL;
		}
		np->allow = grown;
		np->allow[np->n_allow++] = r;
		p += n;
	}
	return np;
}

void netpolicy_free(struct netpolicy *np)
{
	if (!np)
		return;
	free(np->allow);
	free(np);
}

int netpolicy_allows(const struct netpolicy *np, const struct sockaddr *sa, const char **why)
{
	uint8_t a[16];
	if (sa->sa_family == AF_INET) {
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		/* NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 4 bytes */
		static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
		if (memcmp(a, nat64, 12) == 0) {
			memset(a, 0, 10);
			a[10] = a[11] = 0xff;
		}
	} else {
		if (why)
			*why = "not an IP address";
		return 0;
	}
	for (size_t i = 0; i < np->n_allow; i++)
		if (in_range(a, &np->allow[i]))
			return 1;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct range r;
		if (parse_cidr(refused[i].cidr, &r) == 0 && in_range(a, &r)) {
			if (why)
				*why = refused[i].why;
			return 0;
		}
	}
	/* IPv4-compatible (::a.b.c.d, deprecated) and the rest of ::/96 */
	static const uint8_t zero12[12];
	if (memcmp(a, zero12, 12) == 0) {
		if (why)
			*why = "IPv4-compatible IPv6";
		return 0;
	}
	return 1;
}
