/*
 * sweep.h: the recipient transitions that time makes (sweep.c).
 */
#ifndef PUSHGATE_SWEEP_H
#define PUSHGATE_SWEEP_H

#include <stddef.h>
#include <ev.h>

#include "config.h"
#include "store.h"

struct sweeper;

/*
 * On `store`, every SWEEP_INTERVAL: scheduled and held recipients released
 * (recipient_stmt_release), and the sweep (recipient_stmt_sweep: expired SMS
 * leases sent again, validity and push deadlines).  on_work(arg) when either
 * made SMS work (the engine's kick).
 */
struct sweeper *sweep_new(struct ev_loop *loop, struct store *store, const struct config *cfg,
			void (*on_work)(void *arg), void *arg);
void sweep_start(struct sweeper *s);
void sweep_stop(struct sweeper *s);   /* no new statements; those in flight finish with their store */
void sweep_free(struct sweeper *s);

/* SMS a restarted node took back and sent again (node.c), counted with the sweep's resends. */
void sweep_count_resends(struct sweeper *s, unsigned long long n);

/* Prometheus text: pushgate_sms_resends_total{cause="restart"|"lease_expired"}. */
struct metrics_out;
void sweep_metrics(const struct sweeper *s, struct metrics_out *o);

#endif
