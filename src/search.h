/*
 * search.h: finding an account's messages (GET /v1/messages), newest first,
 * one page at a time (search.c).
 */
#ifndef PUSHGATE_SEARCH_H
#define PUSHGATE_SEARCH_H

#include <stddef.h>

#include "stmts.h"
#include "store.h"

#define SEARCH_DEFAULT_LIMIT 100
#define SEARCH_MAX_LIMIT     1000

/* A parsed query: every field checked; "" for a filter not given. */
struct search_query {
	char      to[21];                     /* digits */
	char      from[21];                   /* a sender */
	char      since[STMTS_SINCE_MAX];     /* normalised times ("" none) */
	char      until[STMTS_SINCE_MAX];
	char      state[16];                  /* a recipient state */
	char      account[129];               /* an account's name (operators only) */
	long      limit;
	/* the cursor: by number, the last recipient id; else (message time, message id, recipient id) */
	int       has_cursor;
	long long c_time_us, c_message, c_recipient;
};

/*
 * Parses the query string of GET /v1/messages (to, from, since, until,
 * state, cursor, limit; operator: account too).  0, or -1 with *field
 * (NULL: an unknown or repeated parameter) and msg saying what is wrong.
 */
int search_parse(const char *query, int operator, struct search_query *q, const char **field, char *msg,
		 size_t msglen);

/* 1 when s is a recipient state (one the state machine can reach). */
int search_state_known(const char *s);

/*
 * A search for one account, ready to submit: the caller sets job.done and
 * job.arg.  The result is one row, one column: the JSON page
 * {"recipients": [...], "next_cursor": "..." | null}.
 */
struct search_job {
	struct store_job job;
	const char      *params[9];
	char             p_account[24], p_cursor[3][24], p_limit[16];
};
void search_prepare(struct search_job *sj, const struct search_query *q, long long account_id);   /* <= 0: every account */

/* The statements (for pushgatectl plan). */
extern const struct store_stmt search_stmt_number, search_stmt_account;

#endif
