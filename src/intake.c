/*
 * intake.c: stores accepted messages, whichever door they came in by.
 *
 * intake_prepare turns a group of messages into the parameters of the
 * intake statement (recipient.c): picks each recipient's SMS route by prefix,
 * applies the configured defaults and builds the array literals.  The
 * intake queue owns the requests waiting for a statement and the group in
 * flight: one statement (one commit) for everything that arrived during a
 * loop turn, and while a group is in the database everything that arrives
 * meanwhile waits for the next one (so the group grows with the load, and
 * an idle daemon sends a lone request at once).  Each request is answered
 * with its own rows, only after the commit; then, once per group and for
 * every door alike, the SMS engine is told and install invitations go out.
 * intake_submit is the only way in: every door (api.c, kannel.c,
 * batches.c, smpp/server.c, pushgatectl send) calls it.  Never touches the
 * database itself except through its store.
 */
#include "intake.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "pgarr.h"
#include "recipient.h"
#include "util.h"

#define INTAKE_LITERALS 23

/* One intake statement's parameters. */
struct intake {
	struct store_job job;
	const char      *params[28];
	char            *lit[INTAKE_LITERALS];   /* $1..$22 and $28: array literals, malloc'd */
	char             p_hours[2][8];
};

static void intake_release(struct intake *in);

void intake_opts_default(struct intake_opts *o)
{
	memset(o, 0, sizeof(*o));
	util_strlcpy(o->channels, "{push,sms}", sizeof(o->channels));
	o->push_timeout = -1;
	o->validity = -1;
	util_strlcpy(o->purpose, "NORMAL", sizeof(o->purpose));
	o->source = "http";
}

/* The message columns ($1..$18) and the recipient columns ($19..$22), in parameter order. */
enum { L_ACCOUNT, L_SENDER, L_BODY, L_CHANNELS, L_PUSH_TIMEOUT, L_SMS_TEXT, L_PURPOSE, L_SEND_AT, L_VALIDITY,
       L_POLICY, L_CALLBACK, L_IDEM, L_BATCH, L_SOURCE, L_DLR_URL, L_DLR_MASK, L_SMPP_ACCOUNT, L_SMPP_REG,
       L_ORD, L_TO, L_ROUTE, L_TEXT, L_COUNT };

/* Parameter slot of literal i: $1..$22, then the recipient count of each message is $28. */
static int param_of(int i)
{
	return i < L_COUNT ? i : 27;
}

static const char *empty_null(const char *s)
{
	return s && s[0] ? s : NULL;
}

/*
 * Fills in->params and in->job.stmt/nparams for n messages; the caller sets
 * job.done/arg and submits.  0, or -1 when out of memory.
 */
static int intake_prepare(struct intake *in, const struct config *cfg, const struct intake_msg *msgs, size_t n)
{
	struct pgarr a[INTAKE_LITERALS];
	memset(a, 0, sizeof(a));
	memset(in, 0, sizeof(*in));
	for (size_t i = 0; i < n; i++) {
		const struct intake_msg *m = &msgs[i];
		const struct intake_opts *o = m->opts;
		char num[40], chan[sizeof(o->channels)];
		pgarr_num(&a[L_ACCOUNT], m->account_id, 0);
		pgarr_text(&a[L_SENDER], m->from);
		pgarr_text(&a[L_BODY], m->text);
		/* "{push,sms}" -> "push,sms": an element of a text[] parameter */
		util_strlcpy(chan, o->channels[0] == '{' ? o->channels + 1 : o->channels, sizeof(chan));
		size_t cl = strlen(chan);
		if (cl && chan[cl - 1] == '}')
			chan[cl - 1] = '\0';
		pgarr_text(&a[L_CHANNELS], chan);
		snprintf(num, sizeof(num), "%.3f", o->push_timeout >= 0 ? o->push_timeout : cfg->push_timeout);
		pgarr_text(&a[L_PUSH_TIMEOUT], num);
		pgarr_text(&a[L_SMS_TEXT], o->sms_text);
		pgarr_text(&a[L_PURPOSE], o->purpose);
		pgarr_text(&a[L_SEND_AT], empty_null(o->send_at));
		snprintf(num, sizeof(num), "%.3f", o->validity >= 0 ? o->validity : cfg->smpp_validity);
		pgarr_text(&a[L_VALIDITY], num);
		pgarr_text(&a[L_POLICY], empty_null(o->opt_out_policy));
		pgarr_text(&a[L_CALLBACK], o->callback_url);
		pgarr_text(&a[L_IDEM], empty_null(o->idempotency_key));
		pgarr_num(&a[L_BATCH], o->batch_id, o->batch_id <= 0);
		pgarr_text(&a[L_SOURCE], o->source);
		pgarr_text(&a[L_DLR_URL], o->dlr_url);
		pgarr_num(&a[L_DLR_MASK], o->dlr_mask, o->dlr_url == NULL);
		pgarr_num(&a[L_SMPP_ACCOUNT], o->smpp_account_id, o->smpp_account_id <= 0);
		pgarr_num(&a[L_SMPP_REG], o->smpp_registered, o->smpp_account_id <= 0);
		pgarr_num(&a[L_COUNT], (long long)m->n_to, 0);
		for (size_t j = 0; j < m->n_to; j++) {
			const struct route_config *route = config_route_for(cfg, m->to[j]);
			pgarr_num(&a[L_ORD], (long long)i + 1, 0);
			pgarr_text(&a[L_TO], m->to[j]);
			pgarr_text(&a[L_ROUTE], route ? route->name : NULL);
			pgarr_text(&a[L_TEXT], m->texts ? m->texts[j] : NULL);
		}
	}
	int oom = 0;
	for (int i = 0; i < INTAKE_LITERALS; i++) {
		in->lit[i] = pgarr_take(&a[i]);
		oom |= in->lit[i] == NULL;
		in->params[param_of(i)] = in->lit[i];
	}
	if (oom) {
		intake_release(in);
		return -1;
	}
	snprintf(in->p_hours[0], sizeof(in->p_hours[0]), "%d", cfg->ad_start_hour);
	snprintf(in->p_hours[1], sizeof(in->p_hours[1]), "%d", cfg->ad_end_hour);
	in->params[22] = in->p_hours[0];
	in->params[23] = in->p_hours[1];
	in->params[24] = cfg->timezone;
	in->params[25] = cfg->ad_prefix;
	in->params[26] = cfg->ad_optout_line;
	in->job.stmt = &recipient_stmt_intake;
	in->job.nparams = 28;
	in->job.params = in->params;
	return 0;
}

static const char *const refusal_names[] = {
	[INTAKE_ADMITTED] = "", [INTAKE_REFUSED_SENDER] = "sender", [INTAKE_REFUSED_URL] = "url",
	[INTAKE_REFUSED_RATE] = "rate",
	[INTAKE_REFUSED_DAILY_QUOTA] = "daily_quota", [INTAKE_REFUSED_MONTHLY_QUOTA] = "monthly_quota",
	[INTAKE_REFUSED_BALANCE] = "balance",
};

const char *intake_refusal_name(enum intake_refusal r)
{
	return (size_t)r < sizeof(refusal_names) / sizeof(refusal_names[0]) ? refusal_names[r] : "";
}

enum intake_refusal intake_refusal_of(const PGresult *res, int first, int n, int *retry_after)
{
	*retry_after = 0;
	if (n != 1 || strcmp(PQgetvalue(res, first, 3), "REFUSED") != 0)
		return INTAKE_ADMITTED;
	const char *why = PQgetvalue(res, first, 4);
	if (!PQgetisnull(res, first, 7))
		*retry_after = (int)strtol(PQgetvalue(res, first, 7), NULL, 10);
	for (size_t i = 1; i < sizeof(refusal_names) / sizeof(refusal_names[0]); i++)
		if (!strcmp(why, refusal_names[i]))
			return (enum intake_refusal)i;
	return INTAKE_REFUSED_SENDER;   /* unknown: refused all the same, never stored */
}

/* Frees what intake_prepare allocated. */
static void intake_release(struct intake *in)
{
	for (int i = 0; i < INTAKE_LITERALS; i++) {
		free(in->lit[i]);
		in->lit[i] = NULL;
	}
}

/* --- the queue ----------------------------------------------------------------------- */

/* One statement in flight: its requests in order (message ordinal i + 1 is reqs[i]). */
struct group {
	struct intake        in;
	struct intake_queue *q;
	struct intake_req  **reqs;
	struct intake_msg   *msgs;
	size_t               n;
};

struct intake_queue {
	struct ev_loop      *loop;
	struct store        *store;
	const struct config *cfg;
	size_t               max_recipients;
	struct intake_req   *head, *tail;    /* waiting, in arrival order */
	size_t               n_waiting;
	struct group        *flight;         /* the group in the database (at most one) */
	void               (*on_new_work)(void *arg);   /* after a group queued SMS work */
	void                *work_arg;
	ev_prepare           flush;          /* end of the loop turn: send what came */
	int                  freeing;
	/* for /metrics */
	unsigned long long   recipients[INTAKE_SOURCES];   /* stored, by door */
	unsigned long long   refused[sizeof(refusal_names) / sizeof(refusal_names[0])];
	struct metrics_accounts *accounts;   /* not owned; NULL: none */
};

static const char *const source_names[INTAKE_SOURCES] = { "http", "batch", "kannel", "smpp", "other" };

static unsigned source_of(const char *s)
{
	for (unsigned i = 0; s && i + 1 < INTAKE_SOURCES; i++)
		if (!strcmp(s, source_names[i]))
			return i;
	return INTAKE_SOURCES - 1;
}

/* Counts a message answered from the rows [first, first + n) of res. */
static void count_message(struct intake_queue *q, const struct intake_msg *m, const PGresult *res, int first, int n)
{
	int retry;
	enum intake_refusal why = intake_refusal_of(res, first, n, &retry);
	if (why != INTAKE_ADMITTED) {
		q->refused[why]++;
		metrics_accounts_add(q->accounts, m->account_id, INTAKE_ACCOUNT_REFUSED, 1);
		return;
	}
	q->recipients[source_of(m->opts->source)] += (unsigned)n;
	metrics_accounts_add(q->accounts, m->account_id, INTAKE_ACCOUNT_RECIPIENTS, (unsigned)n);
}

static void group_free(struct group *g)
{
	intake_release(&g->in);
	free(g->reqs);
	free(g->msgs);
	free(g);
}

static void queue_front(struct intake_queue *q, struct intake_req **reqs, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		reqs[i]->next = q->head;
		q->head = reqs[i];
		if (!q->tail)
			q->tail = reqs[i];
		q->n_waiting++;
	}
}

static void flush_soon(struct intake_queue *q)
{
	if (q->head && !q->flight && !q->freeing)
		ev_prepare_start(q->loop, &q->flush);
}

/* Install invitations: one statement per group, for the numbers that went SMS for lack of an app. */
struct invite_job {
	struct store_job job;
	struct intake_queue *q;
	const char      *params[6];
	char            *to, *routes;
	char             p_period[32], p_validity[32];
};

static void invite_done(struct store_job *job, enum store_error e, const char *err)
{
	struct invite_job *ij = job->arg;
	if (e == STORE_SQL_ERROR)
		log_error("intake", "ev=invite_failed err=\"%s\"", err ? err : "");
	else if (e == STORE_OK && PQntuples(job->res) > 0) {
		log_info("intake", "ev=invited numbers=%d", PQntuples(job->res));
		if (ij->q && ij->q->on_new_work)
			ij->q->on_new_work(ij->q->work_arg);   /* the invitations are SMS work too */
	}
	free(ij->to);
	free(ij->routes);
	free(ij);
}

/* What a stored group sets going: the SMS engine (once), and invitations when configured. */
static void group_follow_up(struct intake_queue *q, PGresult *res)
{
	struct pgarr to = {0}, routes = {0};
	int queued = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 3), "SMS_QUEUED") != 0 || strcmp(PQgetvalue(res, i, 5), "f") != 0)
			continue;   /* not SMS, or a replay's recipient stored before */
		queued = 1;
		if (q->cfg->invite) {
			pgarr_text(&to, PQgetvalue(res, i, 2));
			pgarr_text(&routes, PQgetvalue(res, i, 4));
		}
	}
	if (queued && q->on_new_work)
		q->on_new_work(q->work_arg);
	struct invite_job *ij = to.n ? calloc(1, sizeof(*ij)) : NULL;
	if (!ij) {
		pgarr_reset(&to);
		pgarr_reset(&routes);
		return;
	}
	ij->q = q;
	ij->to = pgarr_take(&to);
	ij->routes = pgarr_take(&routes);
	snprintf(ij->p_period, sizeof(ij->p_period), "%.0f", q->cfg->invite_period);
	snprintf(ij->p_validity, sizeof(ij->p_validity), "%.0f", q->cfg->smpp_validity);
	ij->params[0] = ij->to;
	ij->params[1] = ij->p_period;
	ij->params[2] = q->cfg->otp_sender;
	ij->params[3] = q->cfg->invite_text;
	ij->params[4] = ij->routes;
	ij->params[5] = ij->p_validity;
	if (!ij->to || !ij->routes) {
		invite_done(&ij->job, STORE_SQL_ERROR, "out of memory");
		return;
	}
	ij->job = (struct store_job){ .stmt = &recipient_stmt_invite, .nparams = 6, .params = ij->params,
				      .done = invite_done, .arg = ij };
	store_submit(q->store, &ij->job);
}

static void group_done(struct store_job *job, enum store_error e, const char *err)
{
	struct group *g = job->arg;
	struct intake_queue *q = g->q;
	assert(q->flight == g);   /* one group in the database at a time, and it is this one */
	q->flight = NULL;
	if (e == STORE_SQL_ERROR && g->n > 1) {
		/* which message failed is unknown: each goes again on its own, in order */
		log_warn("intake", "ev=group_failed messages=%zu err=\"%s\" action=one_by_one", g->n, err ? err : "");
		for (size_t i = 0; i < g->n; i++)
			g->reqs[i]->alone = 1;
		queue_front(q, g->reqs, g->n);
		group_free(g);
		flush_soon(q);
		return;
	}
	PGresult *res = e == STORE_OK ? job->res : NULL;
	int rows = res ? PQntuples(res) : 0, row = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct intake_req *r = g->reqs[i];
		if (!res) {
			r->done(r, e, err, NULL, 0, 0);
			continue;
		}
		/* rows come by message ordinal, then recipient id */
		int first = row;
		while (row < rows && strtol(PQgetvalue(res, row, 6), NULL, 10) == (long)i + 1)
			row++;
		count_message(q, &r->msg, res, first, row - first);
		r->done(r, STORE_OK, NULL, res, first, row - first);
	}
	if (res && row != rows)   /* rows out of ordinal order: a bug in the statement, not in the data */
		log_error("intake", "ev=rows_unmatched rows=%d matched=%d messages=%zu", rows, row, g->n);
	if (res && !q->freeing)
		group_follow_up(q, res);
	group_free(g);
	flush_soon(q);
}

/* Same account and idempotency key as a request already in the group (they must go apart). */
static int same_key(struct group *g, const struct intake_req *r)
{
	const char *key = r->msg.opts->idempotency_key;
	if (!key[0])
		return 0;
	for (size_t i = 0; i < g->n; i++)
		if (g->msgs[i].account_id == r->msg.account_id && !strcmp(g->msgs[i].opts->idempotency_key, key))
			return 1;
	return 0;
}

static void queue_flush(struct intake_queue *q)
{
	if (q->flight || !q->head || q->freeing)
		return;
	size_t cap = q->n_waiting;
	struct group *g = calloc(1, sizeof(*g));
	if (g) {
		g->reqs = calloc(cap, sizeof(*g->reqs));
		g->msgs = calloc(cap, sizeof(*g->msgs));
	}
	if (!g || !g->reqs || !g->msgs) {
		if (g)
			group_free(g);
		log_error("intake", "ev=out_of_memory waiting=%zu", q->n_waiting);
		return;   /* the next loop turn tries again */
	}
	g->q = q;
	size_t recipients = 0;
	while (q->head) {
		struct intake_req *r = q->head;
		if (g->n > 0 && (r->alone || g->reqs[0]->alone || recipients + r->msg.n_to > q->max_recipients ||
				 same_key(g, r)))
			break;
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		q->n_waiting--;
		r->next = NULL;
		g->reqs[g->n] = r;
		g->msgs[g->n] = r->msg;
		g->n++;
		recipients += r->msg.n_to;
	}
	assert(g->n > 0 && recipients > 0);
	if (intake_prepare(&g->in, q->cfg, g->msgs, g->n) < 0) {
		log_error("intake", "ev=out_of_memory messages=%zu", g->n);
		queue_front(q, g->reqs, g->n);
		group_free(g);
		return;
	}
	g->in.job.done = group_done;
	g->in.job.arg = g;
	q->flight = g;
	store_submit(q->store, &g->in.job);   /* may answer at once (database down) */
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	ev_prepare_stop(loop, w);
	queue_flush(w->data);
}

struct intake_queue *intake_queue_new(struct ev_loop *loop, struct store *store, const struct config *cfg,
				      size_t max_recipients, void (*on_new_work)(void *arg), void *work_arg)
{
	struct intake_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->loop = loop;
	q->store = store;
	q->cfg = cfg;
	q->max_recipients = max_recipients ? max_recipients : 1000;
	q->on_new_work = on_new_work;
	q->work_arg = work_arg;
	ev_prepare_init(&q->flush, flush_cb);
	q->flush.data = q;
	return q;
}

void intake_submit(struct intake_queue *q, struct intake_req *r)
{
	assert(r->done && r->msg.opts && r->msg.n_to > 0 && r->msg.to);
	r->next = NULL;
	r->alone = 0;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n_waiting++;
	flush_soon(q);
}

size_t intake_queue_pending(const struct intake_queue *q)
{
	return q ? q->n_waiting + (q->flight ? q->flight->n : 0) : 0;
}

void intake_queue_free(struct intake_queue *q)
{
	if (!q)
		return;
	q->freeing = 1;
	ev_prepare_stop(q->loop, &q->flush);
	while (q->head) {
		struct intake_req *r = q->head;
		q->head = r->next;
		q->n_waiting--;
		r->done(r, STORE_UNAVAILABLE, "shutting down", NULL, 0, 0);
	}
	q->tail = NULL;
	free(q);
}

int intake_valid_time(const char *s)
{
	/* YYYY-MM-DDTHH:MM[:SS[.f+]](Z|+HH:MM|-HH:MM) */
	const char *shape = "dddd-dd-ddTdd:dd";
	size_t i = 0;
	for (; shape[i]; i++) {
		char c = s[i];
		if (shape[i] == 'd' ? !isdigit((unsigned char)c) : (c != shape[i] && !(shape[i] == 'T' && c == ' ')))
			return 0;
	}
	s += i;
	if (*s == ':') {
		if (!isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
			return 0;
		s += 3;
		if (*s == '.') {
			s++;
			if (!isdigit((unsigned char)*s))
				return 0;
			while (isdigit((unsigned char)*s))
				s++;
		}
	}
	if (*s == 'Z')
		return s[1] == '\0';
	if ((*s == '+' || *s == '-') && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) && s[3] == ':' &&
	    isdigit((unsigned char)s[4]) && isdigit((unsigned char)s[5]) && s[6] == '\0')
		return 1;
	return 0;
}

void intake_queue_count_accounts(struct intake_queue *q, struct metrics_accounts *accounts)
{
	q->accounts = accounts;
}

void intake_metrics(struct metrics_out *o, const struct intake_queue *const *qs, size_t n)
{
	metrics_family(o, "pushgate_intake_recipients_total", METRICS_COUNTER,
		       "recipients stored (and acknowledged) by this node, by door");
	for (unsigned k = 0; k < INTAKE_SOURCES; k++) {
		unsigned long long v = 0;
		for (size_t i = 0; i < n; i++)
			v += qs[i] ? qs[i]->recipients[k] : 0;
		const char *lab[] = { "source", source_names[k], NULL };
		metrics_u64(o, "pushgate_intake_recipients_total", lab, v);
	}
	metrics_family(o, "pushgate_intake_refused_total", METRICS_COUNTER,
		       "messages the account's limits or senders refused, by reason");
	for (size_t k = 1; k < sizeof(refusal_names) / sizeof(refusal_names[0]); k++) {
		unsigned long long v = 0;
		for (size_t i = 0; i < n; i++)
			v += qs[i] ? qs[i]->refused[k] : 0;
		const char *lab[] = { "reason", refusal_names[k], NULL };
		metrics_u64(o, "pushgate_intake_refused_total", lab, v);
	}
}
