/*
 * fuzz_search.c: libFuzzer target for the query string of GET /v1/messages
 * (search.c: search_parse, then search_prepare).
 *
 * Input: the query string (an exact-size heap copy, NUL-terminated); its
 * length's lowest bit parses it as an operator's (account= allowed), the
 * next one prepares it for one account rather than every account.
 * Checks what a parse promises: a refusal says what is wrong; an accepted
 * query has a to of 1-20 digits or none, a printable sender within 20
 * bytes, a known state, a limit of 1..1000, a cursor of the search's own
 * kind (by number: a recipient id; by account: time, message, recipient),
 * account= only for an operator, and search_prepare fills every parameter
 * the statement needs (the account or NULL for all, the times, the cursor,
 * the limit).  abort() on any violation.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *q = malloc(size + 1);
	if (!q)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	struct search_query sq;
	const char *field;
	char msg[256];
	int rc = search_parse(q, size & 1, &sq, &field, msg, sizeof(msg));   /* the customer's and the operator's */
	free(q);
	if (rc < 0) {
		if (!msg[0] || !memchr(msg, '\0', sizeof(msg)))
			abort();
		return 0;
	}
	if (field || (sq.to[0] && (!digits(sq.to) || strlen(sq.to) > 20)))
		abort();
	if (strlen(sq.from) > 20 || (sq.state[0] && !search_state_known(sq.state)))
		abort();
	if (sq.account[0] && !(size & 1))   /* account= is the operator's alone */
		abort();
	for (const char *p = sq.from; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
	if (sq.limit < 1 || sq.limit > SEARCH_MAX_LIMIT)
		abort();
	if (sq.has_cursor && (sq.c_recipient < 0 || sq.c_message < 0 || sq.c_time_us < 0))
		abort();
	struct search_job sj;
	search_prepare(&sj, &sq, size & 2 ? 42 : 0);
	int n = sj.job.nparams;
	if (sj.job.stmt != (sq.to[0] ? &search_stmt_number : &search_stmt_account) || n != sj.job.stmt->nparams)
		abort();
	/* never NULL: the account, since, until, the limit, and the cursor ids */
	static const int by_number[] = { 0, 1, 3, 4, 6, 7 }, by_account[] = { 0, 2, 3, 6, 7, 8 };
	const int *must = sq.to[0] ? by_number : by_account;
	for (int i = (size & 2) ? 0 : 1; i < 6; i++)   /* the account: NULL for every account */
		if (!sj.params[must[i]] || !sj.params[must[i]][0])
			abort();
	if (!(size & 2) && sj.params[0])
		abort();
	return 0;
}
