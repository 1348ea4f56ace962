/*
 * node.h: this pushgated's name among the nodes that share a database, held
 * so that no other live process can hold it, and the work a crashed
 * process left under it taken back at start.
 */
#ifndef PUSHGATE_NODE_H
#define PUSHGATE_NODE_H

#include <stddef.h>

struct config;
struct node;

/*
 * The name leases are recorded under: [server] node_name; else host:PORT of
 * the first listener with a fixed port ([server] http_listen, https_listen,
 * [smpp_server] listen, tls_listen), which no other live process on the host
 * can hold; else host:pid, which a restart does not keep (*stable = 0).
 */
void node_default_name(const struct config *cfg, char *out, size_t cap, int *stable);

struct node *node_new(const char *conninfo, const char *name);
void node_free(struct node *n);

/*
 * Takes the name (blocking; the gate calls it once the database answered):
 * a session advisory lock on a connection of its own, kept for the
 * process's life.  1 held, 0 another live process holds it (try again: a
 * killed predecessor's backend may not have noticed yet), -1 the database
 * could not be asked; err says why.
 */
int node_claim(struct node *n, char *err, size_t errlen);

/* What node_take_back found under the name. */
struct node_taken {
	long long sms;       /* recipients SMS_SUBMITTED: queued again, each a recorded resend */
	long long webhooks;  /* webhook_outbox rows leased: due now */
	long long outbox;    /* smpp_outbox rows leased (deliver_sm to ESMEs): free now */
};

/*
 * Once, after the first claim and before this process leases anything: the
 * leases still recorded under the name belong to a process that is gone
 * (the lock says no live one holds the name), so they come back at once
 * instead of at their expiry.  One transaction.  0, or -1 with err.
 */
int node_take_back(struct node *n, struct node_taken *out, char *err, size_t errlen);

/*
 * Still holding the name?  Reads what the server sent on the lock's
 * connection (never blocks): 1 held, 0 the connection is gone (the lock
 * with it; node_claim again once the database is back).
 */
int node_holds(struct node *n);

#endif
