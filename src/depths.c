/*
 * depths.c: counts the recipients waiting in each queue of the database,
 * for /metrics: SMS queued, SMS submitted without a response (in flight),
 * SMS accepted and waiting for their receipt, pushes waiting for an app's
 * ack, and scheduled or held messages.  One statement every DEPTHS_INTERVAL,
 * each count on its state's partial index and capped at DEPTHS_CAP (a count
 * is never worth a long scan), on a connection the requests do not wait on
 * (the campaigns'); the figures cover every node.  Owns its job (a
 * periodic: one in flight) and the last figures.  Never blocks, never
 * writes.
 */
#include "depths.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "metrics.h"
#include "periodic.h"

#define DEPTHS_INTERVAL 5.0      /* seconds between counts */
#define DEPTHS_CAP      "1000000"   /* a count costs its rows: the gauge saturates here */

#define QUEUE_NAME(NAME, COND)  NAME,
#define QUEUE_COUNT(NAME, COND) DEPTHS_COUNT(COND, DEPTHS_CAP)

static const char *const queue_names[] = { DEPTHS_QUEUES(QUEUE_NAME, ) };
enum { Q_COUNT = sizeof(queue_names) / sizeof(queue_names[0]) };

/* One row: each queue's count, in queue_names' order. */
static const struct store_stmt stmt_depths = {
	"queue_depths",
	"SELECT " DEPTHS_QUEUES(QUEUE_COUNT, ", "),
	0, 0,
};

struct depths {
	struct ev_loop     *loop;
	struct periodic     count;
	unsigned long long  v[Q_COUNT];
	double              counted_at;   /* loop time of the last count (0: none yet) */
};

static void depths_done(void *arg, const PGresult *res, enum store_error err, const char *msg)
{
	struct depths *d = arg;
	if (err == STORE_SQL_ERROR)
		log_error("depths", "ev=count_failed err=\"%s\"", msg);
	if (err != STORE_OK || PQntuples(res) != 1 || PQnfields(res) != Q_COUNT)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		d->v[i] = strtoull(PQgetvalue(res, 0, i), NULL, 10);
	d->counted_at = ev_now(d->loop);
}

struct depths *depths_new(struct ev_loop *loop, struct store *store)
{
	struct depths *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->loop = loop;
	periodic_init(&d->count, loop, store, &stmt_depths, NULL, depths_done, d);
	return d;
}

void depths_start(struct depths *d)
{
	if (d)
		periodic_start(&d->count, 0.5, DEPTHS_INTERVAL);
}

void depths_stop(struct depths *d)
{
	if (d)
		periodic_stop(&d->count);
}

void depths_free(struct depths *d)
{
	if (!d)
		return;
	depths_stop(d);
	free(d);
}

void depths_metrics(const struct depths *d, struct metrics_out *o)
{
	if (!d)
		return;
	metrics_family(o, "pushgate_queue_depth", METRICS_GAUGE,
		       "recipients waiting in each queue, every node together (counted every few seconds)");
	for (int i = 0; i < Q_COUNT; i++) {
		const char *lab[] = { "queue", queue_names[i], NULL };
		metrics_u64(o, "pushgate_queue_depth", lab, d->v[i]);
	}
	metrics_family(o, "pushgate_queue_depth_age_seconds", METRICS_GAUGE,
		       "seconds since the queue depths were counted (-1: not yet)");
	metrics_double(o, "pushgate_queue_depth_age_seconds", NULL,
		       d->counted_at > 0 ? ev_now(d->loop) - d->counted_at : -1);
}
