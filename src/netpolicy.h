/*
 * netpolicy.h: which addresses pushgated may connect to on a customer's
 * behalf (webhooks, Kannel dlr-url reports).  Loopback, private, shared
 * (CGNAT), link-local (cloud metadata), multicast, reserved and unspecified
 * addresses are refused, IPv4 inside IPv6 (mapped, NAT64) by its IPv4
 * address; an operator may allow ranges explicitly.  The check is made on
 * the address actually connected to, so a name that resolves to a public
 * address when the URL is stored and to an internal one later (DNS
 * rebinding) is still refused.
 */
#ifndef PUSHGATE_NETPOLICY_H
#define PUSHGATE_NETPOLICY_H

#include <stddef.h>
#include <sys/socket.h>

struct netpolicy;

/*
 * allow: comma-separated CIDR ranges (IPv4 or IPv6, "10.1.0.0/16",
 * "::1/128"; a bare address is one host) connected to although internal;
 * "" for none.  NULL with a message in err when a range is malformed.
 */
struct netpolicy *netpolicy_new(const char *allow, char *err, size_t errlen);
void netpolicy_free(struct netpolicy *np);

/* 1: sa may be connected to; 0: refused (why, when not NULL, gets a short reason). */
int netpolicy_allows(const struct netpolicy *np, const struct sockaddr *sa, const char **why);

#endif
