/*
 * door.h: what every HTTP door (the API, campaigns, Kannel's sendsms) is
 * given when it is created: the loop, the store, the intake queues, the
 * configuration, the key cache, and whom to tell that SMS work was added.
 */
#ifndef PUSHGATE_DOOR_H
#define PUSHGATE_DOOR_H

#include <ev.h>

#include "auth.h"
#include "config.h"
#include "intake.h"
#include "store.h"

struct door {
	struct ev_loop      *loop;
	struct store        *store;
	struct intake_queue *intake;       /* every door's messages are stored here */
	struct intake_queue *bulk_intake;  /* campaign chunks: a queue on a connection of its own (NULL: intake) */
	const struct config *cfg;
	struct auth         *auth;         /* API keys, an account's pacing on this node */
	void               (*on_new_work)(void *arg);   /* after intake committed new SMS work */
	void                *work_arg;
};

#endif
