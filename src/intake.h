/*
 * intake.h: storing accepted messages, whichever door they came in by
 * (HTTP API, campaigns, Kannel's sendsms, SMPP server, pushgatectl send).
 *
 * intake_submit is the one entry point.  The intake queue groups the
 * requests that arrive during one loop turn (while the previous group is
 * in the database, everything that arrives meanwhile) into one statement
 * and one commit, answers each request with its own rows, then tells the
 * SMS engine and sends install invitations, the same for every door.
 */
#ifndef PUSHGATE_INTAKE_H
#define PUSHGATE_INTAKE_H

#include <stddef.h>

#include "config.h"
#include "store.h"

/* Per-message options; intake_opts_default() gives "none given". */
struct intake_opts {
	char        channels[16];        /* PostgreSQL text[]: "{push,sms}", "{sms}", "{push}", "{sms,push}" */
	double      push_timeout;        /* seconds; < 0: [push] push_timeout */
	const char *sms_text;            /* SMS fallback text; NULL: the text */
	char        purpose[8];          /* NORMAL | AUTH | AD */
	char        send_at[40];         /* ISO 8601; "": now */
	double      validity;            /* seconds; < 0: [smpp] validity */
	char        opt_out_policy[8];   /* sms | drop; "": the account's */
	const char *callback_url;        /* NULL: none */
	char        idempotency_key[129];/* "": none */
	long long   batch_id;            /* 0: none */
	const char *source;              /* "http", "batch", "kannel", "smpp" */
	/* where the message came from, for its reports */
	const char *dlr_url;             /* Kannel dlr-url template (NULL: none) */
	int         dlr_mask;            /* with dlr_url */
	long long   smpp_account_id;     /* 0: not from an ESME */
	int         smpp_registered;     /* its registered_delivery */
};

void intake_opts_default(struct intake_opts *o);

/* One message of an intake group.  Every pointer must outlive the statement. */
struct intake_msg {
	long long                 account_id;
	const char               *from, *text;
	size_t                    n_to;
	const char              (*to)[21];      /* n_to validated MSISDNs (digits) */
	const char *const        *texts;        /* NULL, or one rendered text per recipient */
	const struct intake_opts *opts;
};

/*
 * The intake queue.  A request (embedded in the caller's struct) carries
 * one message; done() gets the statement's result and the rows of that
 * message (first, n), or an error: STORE_UNAVAILABLE (answer 503), or
 * STORE_SQL_ERROR when the message failed alone (a group that fails is
 * run again one message at a time, so one bad request never fails its
 * neighbours).  done() runs after the commit, never inside intake_submit.
 */
struct intake_req;
typedef void (*intake_done_fn)(struct intake_req *r, enum store_error e, const char *err, PGresult *res,
			       int first, int n);
struct intake_req {
	struct intake_msg   msg;
	intake_done_fn      done;
	void               *arg;
	/* private */
	struct intake_req  *next;
	int                 alone;   /* its group failed: goes on its own */
};

struct intake_queue;
/*
 * max_recipients: the most recipients of one statement (a larger message
 * still goes alone).  on_new_work(work_arg) runs once per stored group
 * that queued SMS work ([push] invite: invitations are sent then too).
 */
struct intake_queue *intake_queue_new(struct ev_loop *loop, struct store *store, const struct config *cfg,
				      size_t max_recipients, void (*on_new_work)(void *arg), void *work_arg);
void intake_submit(struct intake_queue *q, struct intake_req *r);
/* Requests waiting or in the database (drain, metrics). */
size_t intake_queue_pending(const struct intake_queue *q);
/*
 * Counts, per account, the recipients stored (INTAKE_ACCOUNT_RECIPIENTS)
 * and the messages refused (INTAKE_ACCOUNT_REFUSED) into `accounts` (not
 * owned; it may be shared by several queues).
 */
#define INTAKE_ACCOUNT_RECIPIENTS 0
#define INTAKE_ACCOUNT_REFUSED    1
struct metrics_accounts;
void intake_queue_count_accounts(struct intake_queue *q, struct metrics_accounts *accounts);
/* pushgate_intake_recipients_total{source} and pushgate_intake_refused_total{reason}, summed over qs. */
#define INTAKE_SOURCES 5
struct metrics_out;
void intake_metrics(struct metrics_out *o, const struct intake_queue *const *qs, size_t n);
/* Fails what waits with STORE_UNAVAILABLE ("shutting down"); the group in flight is the store's. */
void intake_queue_free(struct intake_queue *q);

/*
 * What the account's limits or senders refused (sql/functions/intake_admit.sql): a
 * message refused stored nothing and has one row.  Each door answers it in
 * its own protocol.
 */
enum intake_refusal {
	INTAKE_ADMITTED = 0,
	INTAKE_REFUSED_SENDER,         /* the sender is not approved for the account (or is another's) */
	INTAKE_REFUSED_URL,            /* callback_url or dlr-url names a host the account may not reach */
	INTAKE_REFUSED_RATE,           /* recipients a minute across every node */
	INTAKE_REFUSED_DAILY_QUOTA,
	INTAKE_REFUSED_MONTHLY_QUOTA,
	INTAKE_REFUSED_BALANCE,        /* the prepaid balance cannot pay for the recipients */
};

/*
 * The verdict on the message whose rows are [first, first + n) of res;
 * *retry_after gets the seconds until it may pass (0: not by waiting).
 */
enum intake_refusal intake_refusal_of(const PGresult *res, int first, int n, int *retry_after);
/* A word for logs and error codes: "sender", "url", "rate", "daily_quota", "monthly_quota", "balance". */
const char *intake_refusal_name(enum intake_refusal r);

/*
 * Validates an ISO 8601 timestamp with a zone ("2026-11-24T21:30:00+09:00",
 * "...Z", optional seconds and fraction).  1 when well-formed.
 */
int intake_valid_time(const char *s);

#endif
