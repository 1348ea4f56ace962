/*
 * search.c: GET /v1/messages, an account's recipients newest first, with
 * filters (to, from, since, until, state) and keyset pagination: a page
 * ends with an opaque cursor naming its last row, and the next page starts
 * strictly after it, so pages never repeat nor skip a row while new
 * messages arrive.  Two statements: by number (prepared, one plan whatever
 * the filters: its final recipients on index recipients_msisdn and its
 * pushes in flight, newest recipient id first; an SMS in flight shows once
 * final) and by account (newest message first, then its recipients; see
 * search_stmt_account).  Every row names its account (read by key for the
 * rows of the page only), so that an operator's search across accounts
 * tells whose each recipient is.  Both run on the daemon's slow store,
 * which plans each call for its values.  Parses the query string (every
 * byte from the network: checked, bounded); never writes.
 */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recipient.h"
#include "util.h"

/*
 * The JSON page from x (ordered rows, one more than the limit $L when there
 * is a next page).  Each row's account name is read by key, for the rows
 * returned only (at most $L): the filters and the row that only tells
 * whether there is a next page never read accounts.
 */
#define SEARCH_PAGE(L, CURSOR) \
	" p AS (SELECT x.*, row_number() OVER () AS n FROM x)" \
	" SELECT json_build_object('recipients', coalesce((SELECT json_agg(json_build_object(" \
	"   'id', id, 'message_id', message_id," \
	"   'account', (SELECT a.name FROM accounts a WHERE a.id = p.account_id)," \
	"   'to', msisdn, 'from', sender, 'state', state," \
	"   'channel', channel, 'route', route, 'error_code', error_code, 'created_at', created_at," \
	"   'updated_at', updated_at, 'final_at', final_at) ORDER BY n) FROM p WHERE n <= " L "), '[]'::json)," \
	"  'next_cursor', (SELECT " CURSOR " FROM p WHERE n = " L " AND EXISTS (SELECT 1 FROM p WHERE n > " L ")))::text"

#define SEARCH_COLUMNS \
	"r.id, r.message_id, r.account_id, r.msisdn, m.sender, r.state, r.channel, r.route, r.error_code, r.created_at," \
	" r.updated_at, r.final_at"

/* One side of the search by number: its rows on one partial index, newest first. */
#define NUMBER_SIDE(COND) \
	"  (SELECT " SEARCH_COLUMNS " FROM recipients r" \
	/* its message by key (LIMIT: a nested loop, whatever the statistics say) */ \
	"   CROSS JOIN LATERAL (SELECT sender FROM messages WHERE id = r.message_id LIMIT 1) m" \
	"   WHERE r.msisdn = $2 AND " COND " AND r.id < $7::bigint" \
	"     AND ($1::bigint IS NULL OR r.account_id = $1::bigint)" \
	"     AND r.created_at >= $4::timestamptz AND r.created_at < $5::timestamptz" \
	"     AND ($3::text IS NULL OR m.sender = $3) AND ($6::text IS NULL OR r.state = $6)" \
	"   ORDER BY r.id DESC LIMIT $8::int + 1)"

/*
 * $1 account (NULL: every account), $2 to, $3 from, $4 since, $5 until,
 * $6 state, $7 after this recipient id, $8 limit.  A number's final
 * recipients (recipients_msisdn) and its pushes waiting for an app
 * (recipients_push_pending); an SMS still in flight shows once final.
 */
const struct store_stmt search_stmt_number = {
	"search_number",
	"WITH x AS ("
	"  SELECT * FROM (" NUMBER_SIDE("r.final_at IS NOT NULL") " UNION ALL " NUMBER_SIDE("r.state = 'PUSH_SENT'")
	"  ) u ORDER BY id DESC LIMIT $8::int + 1),"
	SEARCH_PAGE("$8::int", "'r' || id"),
	8, 0,
};

/*
 * $1 account (NULL: every account), $2 from, $3 since, $4 until, $5 state, after ($6 message time
 * in microseconds since the epoch, NULL: none; $7 message id, $8 recipient
 * id), $9 limit.  The message time is compared twice: alone it bounds the
 * index scan, with the ids it orders ties.  It runs on a store that plans
 * each call for its values (store_config.plan_per_call): how many messages an
 * account has is data, and a generic plan cannot know it (it took
 * messages_created for every account, a scan of everyone's messages for a
 * small one; with the values, a small account gets messages_account_created
 * and the largest may get the other).
 */
const struct store_stmt search_stmt_account = {
	"search_account",
	"WITH c AS (SELECT coalesce('epoch'::timestamptz + $6::bigint * interval '1 microsecond', 'infinity') AS at),"
	" x AS ("
	"  SELECT " SEARCH_COLUMNS ", m.created_at AS m_at FROM c, messages m"
	"  JOIN recipients r ON r.message_id = m.id"
	"  WHERE ($1::bigint IS NULL OR m.account_id = $1::bigint)"
	"    AND m.created_at >= $3::timestamptz AND m.created_at < $4::timestamptz"
	"    AND m.created_at <= c.at AND (m.created_at, m.id, r.id) < (c.at, $7::bigint, $8::bigint)"
	"    AND ($2::text IS NULL OR m.sender = $2) AND ($5::text IS NULL OR r.state = $5)"
	"  ORDER BY m.created_at DESC, m.id DESC, r.id DESC LIMIT $9::int + 1),"
	SEARCH_PAGE("$9::int", "'m' || (extract(epoch FROM m_at) * 1000000)::bigint || '.' || message_id || '.' || id"),
	9, 0,
};

/* A decimal in [0, 2^63): *p moves past it.  0 / -1. */
static int take_id(const char **p, long long *out)
{
	const char *s = *p;
	long long v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (0x7fffffffffffffffLL - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

/* "r<id>" (by number) or "m<us>.<message>.<recipient>" (by account). */
static int parse_cursor(const char *s, struct search_query *q)
{
	q->has_cursor = 1;
	if (*s == 'r') {
		s++;
		if (take_id(&s, &q->c_recipient) < 0 || *s)
			return -1;
		return q->to[0] ? 0 : -1;
	}
	if (*s++ != 'm' || take_id(&s, &q->c_time_us) < 0 || *s++ != '.' || take_id(&s, &q->c_message) < 0
	    || *s++ != '.' || take_id(&s, &q->c_recipient) < 0 || *s)
		return -1;
	return q->to[0] ? -1 : 0;
}

int search_state_known(const char *s)
{
	for (size_t i = 0; i < recipient_edges_count; i++)
		if (!strcmp(recipient_edges[i].to, s))
			return 1;
	return 0;
}

int search_parse(const char *query, int operator, struct search_query *q, const char **field, char *msg,
		 size_t msglen)
{
	static const char *const names[] = { "to", "from", "since", "until", "state", "cursor", "limit", "account" };
	const size_t n_names = operator ? 8 : 7;
	char seen[8] = { 0 }, cursor[80] = "", val[160];
	memset(q, 0, sizeof(*q));
	q->limit = SEARCH_DEFAULT_LIMIT;
	*field = NULL;
	for (const char *s = query ? query : ""; *s; ) {
		size_t len = strcspn(s, "&");
		const char *eq = memchr(s, '=', len);
		size_t klen = eq ? (size_t)(eq - s) : len;
		const char *v = eq ? eq + 1 : s + len;
		size_t k;
		for (k = 0; k < n_names; k++)
			if (strlen(names[k]) == klen && !memcmp(s, names[k], klen))
				break;
		if (k == n_names || seen[k]++) {
			snprintf(msg, msglen, "unknown or repeated query parameter: use to, from, since, until, state, "
				 "cursor, limit%s", operator ? ", account" : "");
			return -1;
		}
		*field = names[k];
		if (util_query_decode(v, (size_t)(s + len - v), val, sizeof(val)) < 0 || !val[0]) {
			snprintf(msg, msglen, "%s: empty, too long or badly escaped", names[k]);
			return -1;
		}
		int bad = 0;
		switch (k) {
		case 0: bad = util_msisdn(val, q->to) < 0; break;
		case 1: bad = strlen(val) >= sizeof(q->from) || !util_valid_sender(val);
			if (!bad) util_strlcpy(q->from, val, sizeof(q->from));
			break;
		case 2: bad = stmts_parse_since(val, q->since, sizeof(q->since)) < 0; break;
		case 3: bad = stmts_parse_since(val, q->until, sizeof(q->until)) < 0; break;
		case 4: bad = !search_state_known(val) || strlen(val) >= sizeof(q->state);
			if (!bad) util_strlcpy(q->state, val, sizeof(q->state));
			break;
		case 5: util_strlcpy(cursor, val, sizeof(cursor)); break;
		case 6: bad = util_parse_long(val, 1, SEARCH_MAX_LIMIT, &q->limit) < 0; break;
		case 7: bad = strlen(val) >= sizeof(q->account);
			if (!bad) util_strlcpy(q->account, val, sizeof(q->account));
			break;
		}
		if (bad) {
			static const char *const why[] = {
				"to must be a phone number (digits, E.164 without +)",
				"from must be a sender (1 to 20 printable characters)",
				"since must be YYYY-MM-DD or an ISO 8601 time (YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])",
				"until must be YYYY-MM-DD or an ISO 8601 time (YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])",
				"state must be a recipient state (ACCEPTED, PUSH_DELIVERED, SMS_DELIVERED, SMS_FAILED, ...)",
				"", "limit must be 1 to 1000", "account must be an account name",
			};
			snprintf(msg, msglen, "%s", why[k]);
			return -1;
		}
		s += len;
		if (*s == '&')
			s++;
	}
	if (cursor[0] && parse_cursor(cursor, q) < 0) {   /* after the loop: a cursor belongs to to= or not */
		*field = "cursor";
		snprintf(msg, msglen, "cursor is not one this search gave (pass the next_cursor of the same search)");
		return -1;
	}
	*field = NULL;
	return 0;
}

void search_prepare(struct search_job *sj, const struct search_query *q, long long account_id)
{
	memset(sj, 0, sizeof(*sj));
	snprintf(sj->p_account, sizeof(sj->p_account), "%lld", account_id);
	const char *account = account_id > 0 ? sj->p_account : NULL;
	snprintf(sj->p_limit, sizeof(sj->p_limit), "%ld", q->limit);
	const char *since = q->since[0] ? q->since : "-infinity", *until = q->until[0] ? q->until : "infinity";
	const char *from = q->from[0] ? q->from : NULL, *state = q->state[0] ? q->state : NULL;
	if (q->to[0]) {
		snprintf(sj->p_cursor[0], sizeof(sj->p_cursor[0]), "%lld",
			 q->has_cursor ? q->c_recipient : 0x7fffffffffffffffLL);
		const char *p[8] = { account, q->to, from, since, until, state, sj->p_cursor[0], sj->p_limit };
		memcpy(sj->params, p, sizeof(p));
		sj->job.stmt = &search_stmt_number;
		sj->job.nparams = 8;
	} else {
		snprintf(sj->p_cursor[0], sizeof(sj->p_cursor[0]), "%lld", q->c_time_us);
		snprintf(sj->p_cursor[1], sizeof(sj->p_cursor[1]), "%lld",
			 q->has_cursor ? q->c_message : 0x7fffffffffffffffLL);
		snprintf(sj->p_cursor[2], sizeof(sj->p_cursor[2]), "%lld",
			 q->has_cursor ? q->c_recipient : 0x7fffffffffffffffLL);
		const char *p[9] = { account, from, since, until, state, q->has_cursor ? sj->p_cursor[0] : NULL,
				     sj->p_cursor[1], sj->p_cursor[2], sj->p_limit };
		memcpy(sj->params, p, sizeof(p));
		sj->job.stmt = &search_stmt_account;
		sj->job.nparams = 9;
	}
	sj->job.params = sj->params;
}
