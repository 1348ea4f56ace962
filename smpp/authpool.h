/*
 * authpool.h: SMPP bind passwords checked off the event loop.  A few worker
 * threads run the PBKDF2 of smpp_passwd_verify() for jobs from a bounded
 * queue; answers come back on the loop (ev_async), in no particular order.
 * The queue bound is the back-pressure: a bind that finds it full is
 * refused at once instead of waiting behind a flood of bad ones.
 */
#ifndef PUSHGATE_SMPP_AUTHPOOL_H
#define PUSHGATE_SMPP_AUTHPOOL_H

#include <ev.h>

struct authpool;

/* result: 1 the password matches, 0 it does not, -1 the stored form is unreadable. */
typedef void (*authpool_done_fn)(void *arg, int result);

/* NULL when threads can't be started. */
struct authpool *authpool_new(struct ev_loop *loop, unsigned threads, unsigned max_queue);

/*
 * Queues one check (password and stored form are copied, the copy of the
 * password wiped after use); fn runs later on the loop.  0, or -1 when the
 * queue is full or the strings too long (nothing queued, fn never runs).
 */
int authpool_verify(struct authpool *p, const char *password, const char *stored, authpool_done_fn fn, void *arg);

/* Checks queued or in the workers when this runs: not answered. */
unsigned authpool_queued(const struct authpool *p);

/* Stops and joins the workers; checks not answered yet never are. */
void authpool_free(struct authpool *p);

#endif
