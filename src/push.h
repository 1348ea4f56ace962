/*
 * push.h: the push channel — devices connected over WebSocket
 * (docs/device-protocol.md), what they are sent, what they answer.
 */
#ifndef PUSHGATE_PUSH_H
#define PUSHGATE_PUSH_H

#include <stddef.h>
#include <ev.h>

#include "config.h"
#include "http.h"
#include "store.h"

struct push;

/* node: this node's name (devices.socket_node), copied. */
struct push *push_new(struct ev_loop *loop, struct store *store, const struct config *cfg, const char *node);
void push_free(struct push *p);

/* GET /v1/device: upgrades the request (or answers it with an error). */
void push_accept(struct push *p, struct http_request *req);

/* The store (re)connected: LISTEN again and resend what connected devices may have missed. */
void push_on_store_up(struct push *p);

/* A device was revoked (logout): its live connections are closed. */
void push_device_revoked(struct push *p, long long device_id);

/* 1 when the device has a live, authenticated connection to this process. */
int push_device_connected(const struct push *p, long long device_id);

/* Closes every device connection (shutdown); push_open() says how many are still closing. */
void push_close_all(struct push *p);
size_t push_open(const struct push *p);

/* Prometheus text: connections, messages sent, acks, rejects. */
struct metrics_out;
void push_metrics(const struct push *p, struct metrics_out *o);
/* Seconds from intake to PUSH_DELIVERED of the acks this node recorded (NULL without p). */
struct metrics_histogram;
const struct metrics_histogram *push_final_latency(const struct push *p);

#endif
