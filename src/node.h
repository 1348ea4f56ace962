/*
 * node.h: this pushgated's name among the nodes that share a database, held
 * so that no other live process can hold it, and the work a crashed
 * process left under it taken back at start.
 */
#ifndef PUSHGATE_NODE_H
#define PUSHGATE_NODE_H

#include <stddef.h>
#include <ev.h>

#include "store.h"

struct config;
struct node;

/*
 * The name leases are recorded under: [server] node_name; else host:PORT of
 * the first listener with a fixed port ([server] http_listen, https_listen,
 * [smpp_server] listen, tls_listen), which no other live process on the host
 * can hold; else host:pid, which a restart does not keep (*stable = 0).
 */
void node_default_name(const struct config *cfg, char *out, size_t cap, int *stable);

/* What was found under the name when it was first held. */
struct node_taken {
	long long sms;       /* recipients SMS_SUBMITTED: queued again, each a recorded resend */
	long long webhooks;  /* webhook_outbox rows leased: due now */
	long long outbox;    /* smpp_outbox rows leased (deliver_sm to ESMEs): free now */
	long long sockets;   /* devices whose WebSocket it held: without one now (platform push wakes them) */
};

struct node_events {
	/* first hold: the predecessor's leases are back (taken); the caller may lease now */
	void (*claimed)(void *arg, const struct node_taken *taken);
	/* another live process holds the name: at start after tries, later at once (the caller stops) */
	void (*refused)(void *arg, const char *why);
	void *arg;
};

/*
 * Holds the name on a connection (store) of its own: a session advisory
 * lock, taken when the store connects and again after each reconnect (a
 * lost connection takes the lock with it).  Never blocks.  The store (its
 * connection, never the caller's) is the node's.
 */
struct node *node_new(struct ev_loop *loop, const struct store_config *sc, const char *name,
		      const struct node_events *ev);
void node_start(struct node *n);
void node_free(struct node *n);

#endif
