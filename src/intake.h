/*
 * intake.h: the parameters of router_stmt_intake, built from a request of
 * any entry point (HTTP API, campaigns, Kannel's sendsms, SMPP server).
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
};

void intake_opts_default(struct intake_opts *o);

/* One intake statement's parameters (embedded in the caller's request). */
struct intake {
	struct store_job job;
	const char      *params[22];
	char             p_account[24], p_validity[32], p_push_timeout[32], p_batch[24];
	char            *p_to, *p_routes, *p_texts;   /* text[] literals, malloc'd */
};

/*
 * Fills in->params and in->job.stmt/nparams; the caller sets job.done/arg
 * and submits.  to: n_to validated MSISDNs (digits); texts: NULL or one
 * rendered text per recipient.  from, text and every option string must
 * outlive the job.  0, or -1 when out of memory.
 */
int intake_prepare(struct intake *in, const struct config *cfg, long long account_id, const char *from,
		   const char *text, size_t n_to, const char (*to)[21], const char *const *texts,
		   const struct intake_opts *o);

/* Frees what intake_prepare allocated. */
void intake_release(struct intake *in);

/*
 * Validates an ISO 8601 timestamp with a zone ("2026-11-24T21:30:00+09:00",
 * "...Z", optional seconds and fraction).  1 when well-formed.
 */
int intake_valid_time(const char *s);

#endif
