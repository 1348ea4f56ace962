/*
 * client.c: the SMPP client engine (pushgate as ESME towards carriers).
 *
 * Owns, per route, its sessions (session.c), a token bucket for the TPS
 * limit, and the queue of leased recipients whose parts are not all sent;
 * engine-wide, the groups headed for PostgreSQL: submit_sm_resp outcomes
 * (one per recipient once every part is answered), receipts, and the
 * deliver_sm_resp PDUs that wait for the receipts' commit.  Leases and
 * responses go to one store (connection), receipts, parked receipts and
 * bind counters to another, so PostgreSQL works on both in parallel; a
 * receipt group waits until every response received before it committed,
 * so it finds its SMSC id instead of parking.  Every state
 * change goes through recipient.c's statements with retry=1: a database
 * outage delays them but loses none; a receipt is acknowledged to the SMSC
 * only once stored.  Throttling answers (0x58, 0x14) slow the route down.
 * What time does to recipients (release, sweep) is sweep.c's.
 * Never blocks; bytes from the network are escaped before they reach SQL.
 */
#include "client.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlr.h"
#include "log.h"
#include "metrics.h"
#include "pgarr.h"
#include "recipient.h"
#include "stmts.h"
#include "session.h"
#include "text.h"
#include "util.h"

#define BATCH_MAX      2000     /* recipients per resp statement, receipts per receipt statement */
#define PUMP_INTERVAL  0.01     /* seconds: TPS refill, group flush */
#define PARKED_INTERVAL 2.0      /* seconds between looks at parked receipts */
#define STATS_INTERVAL 5.0
#define DETAIL_MAX     512
#define MAX_TEXT_OCTETS 65535

struct sms;
struct sess;
struct route_rt;

/* One submit_sm in flight: the session's tag points here. */
struct part {
	struct sms  *sms;
	struct sess *sess;
	uint8_t      no;            /* 1-based part number */
	uint8_t      answered;
	uint32_t     status;
	double       sent_at;       /* loop time of its submit_sm */
	char         smsc_id[DLR_ID_MAX];
};

/* One leased recipient, until every part of this attempt is answered. */
struct sms {
	struct sms       *next;
	struct route_rt  *rt;
	long long         id;
	char              msisdn[21];
	char              sender[21];
	enum text_coding  coding;
	uint8_t           total;       /* parts of the whole text */
	uint8_t           n_parts;     /* parts sent in this attempt */
	uint8_t           next_part;   /* parts[] index of the next to send */
	uint8_t           unanswered;
	uint8_t          *enc;
	size_t            enc_len;
	struct text_part *slices;      /* total slices of enc */
	struct part       parts[];     /* n_parts */
};

struct counters {
	uint64_t submits, resp_ok, resp_temp, resp_perm, timeouts;
	uint64_t receipts, receipts_delivered, receipts_failed, throttled, reconnects;
};

struct sess {
	struct route_rt     *rt;
	struct smpp_session *s;
	char                 name[16];  /* "trx0", "tx0", "rx0" */
	int                  can_tx, can_rx;
	unsigned             generation;
	int                  was_bound;
	struct counters      c;
};

struct route_rt {
	struct smpp_client        *e;
	const struct route_config *cfg;
	struct sess               *sess;
	unsigned                   n_sess, rr;
	enum dlr_id_format         id_format;
	enum text_concat           concat;
	enum text_coding           coding;
	/* leased, parts still to send */
	struct sms                *q_head, *q_tail;
	size_t                     q_len;
	/* TPS: token bucket at `rate` (<= cfg->tps), slowed by throttling */
	double                     tokens, rate, last_refill;
	double                     paused_until;
	/* lease */
	int                        lease_in_flight;
	int                        kicked;             /* a kick came while the lease was in flight */
	double                     lease_idle_until;   /* the queue was empty: next look at the poll or a kick */
	struct store_job           lease_job;
	const char                *lease_params[5];
	char                       p_limit[16], p_lease[16];
	char                       p_routes[CONFIG_MAX_ROUTES * 34 + 3];
	struct metrics_histogram   resp_time;          /* submit_sm to its response, answered ones only */
	int                        paused;             /* an operator paused it (route_pauses): no lease */
};

struct resp_item {
	long long id;
	char      outcome[8];           /* ok | perm | temp | retry | unknown */
	int       status;
	int       parts;
	unsigned  n_rparts;             /* its accepted parts, next in the rparts list */
	char      smsc_id[DLR_ID_MAX];  /* first part accepted now, "" when none */
	char      detail[128];
};

struct resp_part {
	long long id;
	int       no;
	char      smsc_id[DLR_ID_MAX];
	const char *route;              /* points into the config: lives as long as the engine */
};

struct rcpt_item {
	const char  *route;
	char         smsc_id[DLR_ID_MAX];
	char         state[16];         /* "" = intermediate */
	int          err;               /* -1 = none */
	char         detail[DETAIL_MAX];
	struct sess *sess;              /* answer on this session ... */
	unsigned     generation;        /* ... if it is still the same connection */
	uint32_t     seq, command_id;
	uint64_t     after;             /* resp items pushed before it: sent once that many are done */
};

/* A group on its way to the store: the text[] literals built for it. */
struct group {
	struct store_job    job;
	struct smpp_client *e;
	int                 in_flight;
	size_t              n;
	const char         *params[16];
	char               *lit[16];
	char                p_retry[32];
};

struct smpp_client {
	struct ev_loop      *loop;
	struct store        *store;             /* leases, responses */
	struct store        *rstore;            /* receipts, parked, stats (may be store) */
	const struct config *cfg;
	char                 node[96];
	int                  stopping;
	int                  freeing;           /* smpp_client_free running: no new work */
	uint64_t             leases;            /* lease statements sent (an idle engine sends 4 a second) */
	int                  started;           /* smpp_client_start: the migrations are applied */
	int                  pauses_known;      /* route_pauses read once: leases may start */
	int                  pauses_in_flight, pauses_again;
	int                  pauses_stale;      /* the last read failed: the poll reads again */
	struct store_job     pauses_job;
	struct metrics_histogram final_latency; /* intake to a final state, of the receipts recorded here */
	struct route_rt     *routes;
	size_t               n_routes;

	struct resp_item    *resp;
	size_t               n_resp, cap_resp;
	uint64_t             resp_pushed;       /* resp items ever queued ... */
	uint64_t             resp_committed;    /* ... and ever done (committed or failed), in that order */
	struct resp_part    *rparts;
	size_t               n_rparts, cap_rparts;
	struct group         resp_group;

	struct rcpt_item    *rcpt;
	size_t               n_rcpt, cap_rcpt;
	struct group         rcpt_group;
	struct rcpt_item    *rcpt_sending;

	struct store_job     parked_job;
	int                  parked_in_flight, parked_wanted;
	struct group         stats_group;
	unsigned             stats_rounds;

	ev_timer             pump, poll, parked, stats;
	smpp_client_mo_fn    mo_fn;             /* MO messages: the SMPP server's handler */
	void                *mo_arg;
};

/* An MO handed to mo_fn: answered on its connection if that is still the same one. */
struct mo_ack {
	struct sess *sess;
	unsigned     generation;
	uint32_t     seq, command_id;
};

static void route_pump(struct route_rt *rt);
static void route_lease(struct route_rt *rt);
static void engine_flush(struct smpp_client *e);

/* --- helpers ------------------------------------------------------------------- */

static void group_reset(struct group *bt)
{
	for (int i = 0; i < 16; i++) {
		free(bt->lit[i]);
		bt->lit[i] = NULL;
	}
	bt->in_flight = 0;
	bt->n = 0;
}

static int status_is_throttle(uint32_t status)
{
	return status == SMPP_ESME_RTHROTTLED || status == SMPP_ESME_RMSGQFUL;
}

/* --- submit_sm_resp outcomes -------------------------------------------------------- */

static struct resp_item *resp_push(struct smpp_client *e)
{
	if (util_grow((void **)&e->resp, &e->cap_resp, e->n_resp + 1, sizeof(*e->resp)) < 0)
		return NULL;
	struct resp_item *r = &e->resp[e->n_resp++];
	memset(r, 0, sizeof(*r));
	e->resp_pushed++;
	return r;
}

/* Every part of this attempt is answered: one outcome for the recipient. */
static void sms_finish(struct sms *sms)
{
	struct route_rt *rt = sms->rt;
	struct smpp_client *e = rt->e;
	struct resp_item *r = resp_push(e);
	if (!r || util_grow((void **)&e->rparts, &e->cap_rparts, e->n_rparts + sms->n_parts, sizeof(*e->rparts)) < 0) {
		if (r) {
			e->n_resp--;
			e->resp_pushed--;
		}
		log_error("smpp", "route=%s ev=out_of_memory recipient=%lld", rt->cfg->name, sms->id);
		goto out;   /* the lease expires and the sweep sends it again */
	}
	r->id = sms->id;
	r->parts = sms->total;
	uint32_t perm = 0, temp = 0, lost = 0;
	unsigned ok = 0;
	for (unsigned i = 0; i < sms->n_parts; i++) {
		struct part *p = &sms->parts[i];
		if (p->status == 0) {
			ok++;
			if (!r->smsc_id[0])
				util_strlcpy(r->smsc_id, p->smsc_id, sizeof(r->smsc_id));
			struct resp_part *rp = &e->rparts[e->n_rparts++];
			r->n_rparts++;
			rp->id = sms->id;
			rp->no = p->no;
			util_strlcpy(rp->smsc_id, p->smsc_id, sizeof(rp->smsc_id));
			rp->route = rt->cfg->name;
		} else if (p->status == SMPP_STATUS_TIMEOUT || p->status == SMPP_STATUS_LINK_LOST) {
			if (!lost || p->status == SMPP_STATUS_TIMEOUT)
				lost = p->status;
		} else if (config_route_temporary(rt->cfg, p->status)) {
			if (!temp)
				temp = p->status;
		} else if (!perm) {
			perm = p->status;
		}
	}
	const char *parts_note = sms->total > 1 ? " parts" : "";
	if (perm) {
		util_strlcpy(r->outcome, "perm", sizeof(r->outcome));
		r->status = (int)perm;
		snprintf(r->detail, sizeof(r->detail), "submit_sm_resp status 0x%08x%s", perm,
			 perm == SMPP_ESME_RINVMSGLEN && !ok ? " (text can't be sent)" : "");
	} else if (lost == SMPP_STATUS_TIMEOUT) {
		int unknown = strcmp(rt->cfg->no_response, "unknown") == 0;
		util_strlcpy(r->outcome, unknown ? "unknown" : "temp", sizeof(r->outcome));
		r->status = -1;
		snprintf(r->detail, sizeof(r->detail), "no submit_sm_resp within %.0fs: %s (policy %s)",
			 rt->cfg->response_timeout, unknown ? "outcome unknown" : "resend", rt->cfg->no_response);
	} else if (lost) {
		util_strlcpy(r->outcome, "retry", sizeof(r->outcome));
		r->status = -2;
		snprintf(r->detail, sizeof(r->detail), "not answered: connection lost or closed, resend");
	} else if (temp) {
		util_strlcpy(r->outcome, "temp", sizeof(r->outcome));
		r->status = (int)temp;
		snprintf(r->detail, sizeof(r->detail), "submit_sm_resp status 0x%08x: temporary, retry later", temp);
	} else {
		util_strlcpy(r->outcome, "ok", sizeof(r->outcome));
		snprintf(r->detail, sizeof(r->detail), "submit_sm_resp ok (%u/%u%s via %s)", ok + (sms->total - sms->n_parts),
			 (unsigned)sms->total, parts_note, rt->cfg->name);
	}
out:
	free(sms->enc);
	free(sms->slices);
	free(sms);
}

static void part_answered(struct part *p, uint32_t status, const char *message_id)
{
	struct sms *sms = p->sms;
	struct route_rt *rt = sms->rt;
	struct counters *c = p->sess ? &p->sess->c : NULL;
	if (p->answered)
		return;
	p->answered = 1;
	p->status = status;
	if (status == 0) {
		if (dlr_normalise_id(message_id ? message_id : "", rt->id_format, 0, p->smsc_id, sizeof(p->smsc_id)) < 0) {
			char esc[200];
			util_escape((const uint8_t *)(message_id ? message_id : ""), strlen(message_id ? message_id : ""),
				    esc, sizeof(esc));
			log_warn("smpp", "route=%s ev=bad_message_id recipient=%lld id=\"%s\"", rt->cfg->name, sms->id, esc);
			p->status = SMPP_ESME_RINVMSGID;
		}
	}
	if (status != SMPP_STATUS_TIMEOUT && status != SMPP_STATUS_LINK_LOST && p->sent_at > 0)
		metrics_observe(&rt->resp_time, ev_now(rt->e->loop) - p->sent_at);
	if (c) {
		if (p->status == 0)
			c->resp_ok++;
		else if (p->status == SMPP_STATUS_TIMEOUT)
			c->timeouts++;
		else if (p->status == SMPP_STATUS_LINK_LOST || config_route_temporary(rt->cfg, p->status))
			c->resp_temp++;
		else
			c->resp_perm++;
	}
	if (status_is_throttle(status)) {
		double now = ev_now(rt->e->loop);
		if (c)
			c->throttled++;
		if (rt->cfg->tps > 0) {
			rt->rate = rt->rate / 2 > 1 ? rt->rate / 2 : 1;
		} else {
			rt->paused_until = now + 1.0;
		}
		log_info("smpp", "route=%s ev=throttled status=0x%02x rate=%.1f", rt->cfg->name, status, rt->rate);
	}
	if (--sms->unanswered == 0 && sms->next_part == sms->n_parts)
		sms_finish(sms);
}

/* --- receipts --------------------------------------------------------------------------- */

static const char *state_for(enum dlr_outcome o)
{
	switch (o) {
	case DLR_DELIVERED: return "SMS_DELIVERED";
	case DLR_EXPIRED:   return "SMS_EXPIRED";
	case DLR_FAILED:    return "SMS_FAILED";
	default:            return "";
	}
}

static void answer(struct sess *s, const struct smpp_pdu *req, uint32_t status)
{
	struct smpp_pdu ack;
	smpp_pdu_resp(&ack, req, status);
	smpp_session_send(s->s, &ack);
}

static void mo_done(void *ctx, uint32_t status)
{
	struct mo_ack *ack = ctx;
	if (ack->generation == ack->sess->generation) {
		struct smpp_pdu resp;
		smpp_pdu_init(&resp, ack->command_id | 0x80000000u, ack->seq);
		resp.hdr.command_status = status;
		smpp_session_send(ack->sess->s, &resp);
	}
	free(ack);
}

static void on_request(void *arg, const struct smpp_pdu *req)
{
	struct sess *s = arg;
	struct route_rt *rt = s->rt;
	struct smpp_client *e = rt->e;
	if (req->hdr.command_id != SMPP_DELIVER_SM && req->hdr.command_id != SMPP_DATA_SM) {
		answer(s, req, SMPP_ESME_RINVCMDID);
		return;
	}
	const uint8_t *text = req->short_message;
	size_t text_len = req->sm_length;
	const struct smpp_tlv *payload = smpp_tlv_find(req, SMPP_TLV_MESSAGE_PAYLOAD);
	if (text_len == 0 && payload) {
		text = payload->value;
		text_len = payload->length;
	}
	if (!dlr_is_receipt(req) && e->mo_fn) {
		struct mo_ack *ack = malloc(sizeof(*ack));
		if (!ack) {
			answer(s, req, 0x64);   /* ESME_RX_T_APPN: temporary, the SMSC sends it again */
			return;
		}
		*ack = (struct mo_ack){ s, s->generation, req->hdr.sequence_number, req->hdr.command_id };
		e->mo_fn(e->mo_arg, rt->cfg->name, req, mo_done, ack);
		return;
	}
	if (!dlr_is_receipt(req)) {
		/* no SMPP server to take mobile-originated messages: logged only */
		char esc[DETAIL_MAX];
		util_escape(text, text_len, esc, sizeof(esc));
		log_warn("smpp", "route=%s bind=%s ev=mo_not_stored src=%s dst=%s text=\"%s\"", rt->cfg->name,
			 s->name, req->source_addr, req->destination_addr, esc);
		answer(s, req, 0);
		return;
	}
	struct dlr d;
	char norm[DLR_ID_MAX];
	if (dlr_from_pdu(req, &d) < 0 || dlr_normalise_id(d.id, rt->id_format, 1, norm, sizeof(norm)) < 0) {
		char esc[DETAIL_MAX];
		util_escape(text, text_len, esc, sizeof(esc));
		log_warn("smpp", "route=%s bind=%s ev=receipt_unreadable text=\"%s\"", rt->cfg->name, s->name, esc);
		answer(s, req, 0);   /* sending it again would not make it readable */
		return;
	}
	if (util_grow((void **)&e->rcpt, &e->cap_rcpt, e->n_rcpt + 1, sizeof(*e->rcpt)) < 0) {
		answer(s, req, 0x64);   /* ESME_RX_T_APPN: temporary, the SMSC sends it again */
		return;
	}
	struct rcpt_item *r = &e->rcpt[e->n_rcpt++];
	memset(r, 0, sizeof(*r));
	r->route = rt->cfg->name;
	util_strlcpy(r->smsc_id, norm, sizeof(r->smsc_id));
	util_strlcpy(r->state, state_for(d.outcome), sizeof(r->state));
	r->err = d.outcome == DLR_DELIVERED ? -1 : d.err;
	if (text_len)
		util_escape(text, text_len, r->detail, sizeof(r->detail));
	else
		snprintf(r->detail, sizeof(r->detail), "tlv message_state=%d", d.message_state);
	r->sess = s;
	r->generation = s->generation;
	r->seq = req->hdr.sequence_number;
	r->command_id = req->hdr.command_id;
	r->after = e->resp_pushed;
	s->c.receipts++;
	if (d.outcome == DLR_DELIVERED)
		s->c.receipts_delivered++;
	else if (d.outcome == DLR_FAILED || d.outcome == DLR_EXPIRED)
		s->c.receipts_failed++;
}

/* --- groups to the store ------------------------------------------------------------- */

static void resp_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct group *bt = job->arg;
	struct smpp_client *e = bt->e;
	if (err != STORE_OK)
		log_error("smpp", "ev=resp_group_failed n=%zu err=\"%s\"", bt->n, msg);
	e->resp_committed += bt->n;
	group_reset(bt);
	e->parked_wanted = 1;   /* receipts that beat their response may be parked */
	/* leases first: on the same connection they would otherwise wait for the next response group */
	for (size_t i = 0; i < e->n_routes; i++)
		route_lease(&e->routes[i]);
	engine_flush(e);
}

static void resp_send(struct smpp_client *e)
{
	struct group *bt = &e->resp_group;
	if (bt->in_flight || e->n_resp == 0)
		return;
	size_t n = e->n_resp < BATCH_MAX ? e->n_resp : BATCH_MAX;
	/* the parts of those n recipients come first in rparts, in the same order */
	size_t np = 0;
	for (size_t i = 0; i < n; i++)
		np += e->resp[i].n_rparts;
	struct pgarr b[10] = {{0}};
	for (size_t i = 0; i < n; i++) {
		struct resp_item *r = &e->resp[i];
		pgarr_num(&b[0], r->id, 0);
		pgarr_text(&b[1], r->outcome);
		pgarr_num(&b[2], r->status, 0);
		pgarr_text(&b[3], r->detail);
		pgarr_num(&b[4], r->parts, 0);
		pgarr_text(&b[5], r->smsc_id[0] ? r->smsc_id : NULL);
	}
	for (size_t i = 0; i < np; i++) {
		struct resp_part *p = &e->rparts[i];
		pgarr_num(&b[6], p->id, 0);
		pgarr_num(&b[7], p->no, 0);
		pgarr_text(&b[8], p->smsc_id);
		pgarr_text(&b[9], p->route);
	}
	int oom = 0;
	char *lit[10];
	for (int i = 0; i < 10; i++)
		oom |= !(lit[i] = pgarr_take(&b[i]));
	if (oom) {
		for (int i = 0; i < 10; i++)
			free(lit[i]);
		return;   /* next pump tries again */
	}
	memmove(e->resp, e->resp + n, (e->n_resp - n) * sizeof(*e->resp));
	e->n_resp -= n;
	memmove(e->rparts, e->rparts + np, (e->n_rparts - np) * sizeof(*e->rparts));
	e->n_rparts -= np;
	/* $1 ids $2 outcome $3 status $4 detail $5 retry $6 parts $7 smsc_id $8..$11 part rows */
	static const int slot[10] = { 0, 1, 2, 3, 5, 6, 7, 8, 9, 10 };
	for (int i = 0; i < 10; i++) {
		bt->lit[slot[i]] = lit[i];
		bt->params[slot[i]] = lit[i];
	}
	snprintf(bt->p_retry, sizeof(bt->p_retry), "%.3f", e->cfg->smpp_retry_min);
	bt->params[4] = bt->p_retry;
	bt->n = n;
	bt->in_flight = 1;
	bt->job = (struct store_job){ .stmt = &recipient_stmt_sms_resp, .nparams = 11, .params = bt->params,
				      .done = resp_done, .arg = bt, .retry = 1 };
	store_submit(e->store, &bt->job);
}

static void rcpt_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct group *bt = job->arg;
	struct smpp_client *e = bt->e;
	struct rcpt_item *items = e->rcpt_sending;
	size_t n = bt->n;
	if (err != STORE_OK) {
		log_error("smpp", "ev=receipt_group_failed n=%zu err=\"%s\"", n, msg);
	} else {
		if (strtoll(PQgetvalue(job->res, 0, 1), NULL, 10) > 0)
			e->parked_wanted = 1;
		metrics_observe_pgarray(&e->final_latency, PQgetvalue(job->res, 0, 2));
		/* stored: now the SMSC may forget them */
		for (size_t i = 0; i < n; i++) {
			struct rcpt_item *r = &items[i];
			if (r->generation != r->sess->generation)
				continue;   /* that connection is gone: the SMSC sends it again */
			struct smpp_pdu ack;
			smpp_pdu_init(&ack, r->command_id | 0x80000000u, r->seq);
			smpp_session_send(r->sess->s, &ack);
		}
	}
	free(e->rcpt_sending);
	e->rcpt_sending = NULL;
	group_reset(bt);
	engine_flush(e);
}

static void rcpt_send(struct smpp_client *e)
{
	struct group *bt = &e->rcpt_group;
	/*
	 * A receipt usually follows its submit_sm_resp by milliseconds.  A
	 * receipt goes out only once every response received before it is
	 * committed (responses travel on the other connection): the receipt
	 * statement finds the SMSC id instead of parking.
	 */
	if (bt->in_flight || e->n_rcpt == 0)
		return;
	size_t n = 0;
	while (n < e->n_rcpt && n < BATCH_MAX && e->rcpt[n].after <= e->resp_committed)
		n++;
	if (n == 0)
		return;
	struct pgarr b[5] = {{0}};
	for (size_t i = 0; i < n; i++) {
		struct rcpt_item *r = &e->rcpt[i];
		pgarr_text(&b[0], r->route);
		pgarr_text(&b[1], r->smsc_id);
		pgarr_text(&b[2], r->state[0] ? r->state : NULL);
		pgarr_num(&b[3], r->err, r->err < 0);
		pgarr_text(&b[4], r->detail);
	}
	int oom = 0;
	char *lit[5];
	for (int i = 0; i < 5; i++)
		oom |= !(lit[i] = pgarr_take(&b[i]));
	struct rcpt_item *sending = oom ? NULL : malloc(n * sizeof(*sending));
	if (!sending) {
		for (int i = 0; i < 5; i++)
			free(lit[i]);
		return;
	}
	memcpy(sending, e->rcpt, n * sizeof(*sending));
	memmove(e->rcpt, e->rcpt + n, (e->n_rcpt - n) * sizeof(*e->rcpt));
	e->n_rcpt -= n;
	e->rcpt_sending = sending;
	for (int i = 0; i < 5; i++) {
		bt->lit[i] = lit[i];
		bt->params[i] = lit[i];
	}
	bt->n = n;
	bt->in_flight = 1;
	bt->job = (struct store_job){ .stmt = &recipient_stmt_sms_receipts, .nparams = 5, .params = bt->params,
				      .done = rcpt_done, .arg = bt, .retry = 1 };
	store_submit(e->rstore, &bt->job);
}

static void parked_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct smpp_client *e = job->arg;
	e->parked_in_flight = 0;
	if (err != STORE_OK) {
		log_error("smpp", "ev=apply_parked_failed err=\"%s\"", msg);
		return;
	}
	metrics_observe_pgarray(&e->final_latency, PQgetvalue(job->res, 0, 2));
	if (strcmp(PQgetvalue(job->res, 0, 0), "0") != 0)
		log_info("smpp", "ev=parked_applied receipts=%s final=%s", PQgetvalue(job->res, 0, 0),
			 PQgetvalue(job->res, 0, 1));
}

static void engine_flush(struct smpp_client *e)
{
	resp_send(e);
	rcpt_send(e);
	if (e->parked_wanted && !e->parked_in_flight && !e->resp_group.in_flight && store_is_up(e->rstore)) {
		e->parked_wanted = 0;
		e->parked_in_flight = 1;
		e->parked_job = (struct store_job){ .stmt = &recipient_stmt_apply_parked, .done = parked_done,
						    .arg = e, .retry = 1 };
		store_submit(e->rstore, &e->parked_job);
	}
}

/* --- submitting ------------------------------------------------------------------------- */

static struct sess *pick_tx(struct route_rt *rt)
{
	for (unsigned k = 0; k < rt->n_sess; k++) {
		struct sess *s = &rt->sess[(rt->rr + k) % rt->n_sess];
		if (s->can_tx && smpp_session_window_free(s->s) > 0) {
			rt->rr = (rt->rr + k + 1) % rt->n_sess;
			return s;
		}
	}
	return NULL;
}

static unsigned tx_free(const struct route_rt *rt, unsigned *bound)
{
	unsigned free_slots = 0;
	*bound = 0;
	for (unsigned k = 0; k < rt->n_sess; k++) {
		if (!rt->sess[k].can_tx || smpp_session_state(rt->sess[k].s) != SESS_BOUND)
			continue;
		(*bound)++;
		free_slots += smpp_session_window_free(rt->sess[k].s);
	}
	return free_slots;
}

static void send_part(struct route_rt *rt, struct sess *s, struct sms *sms, struct part *p)
{
	struct smpp_pdu pdu;
	uint8_t udh[8], ref_be[2], total = sms->total, seqn = p->no;
	const struct text_part *sl = &sms->slices[p->no - 1];
	uint16_t ref = (uint16_t)(rt->concat == TEXT_CONCAT_UDH8 ? (sms->id & 0xFF) : (sms->id & 0xFFFF));

	smpp_pdu_init(&pdu, SMPP_SUBMIT_SM, 0);
	int numeric = sms->sender[0] != '\0';
	for (const char *c = sms->sender; *c; c++)
		if (*c < '0' || *c > '9')
			numeric = 0;
	pdu.source_addr_ton = numeric ? (uint8_t)rt->cfg->source_ton : 5;
	pdu.source_addr_npi = numeric ? (uint8_t)rt->cfg->source_npi : 0;
	util_strlcpy(pdu.source_addr, sms->sender, sizeof(pdu.source_addr));
	pdu.dest_addr_ton = (uint8_t)rt->cfg->dest_ton;
	pdu.dest_addr_npi = (uint8_t)rt->cfg->dest_npi;
	util_strlcpy(pdu.destination_addr, sms->msisdn, sizeof(pdu.destination_addr));
	pdu.registered_delivery = 1;
	pdu.data_coding = (uint8_t)sms->coding;
	if (rt->concat == TEXT_CONCAT_PAYLOAD) {
		smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_PAYLOAD, sms->enc, (uint16_t)sms->enc_len);
	} else if (sms->total == 1) {
		memcpy(pdu.short_message, sms->enc + sl->offset, sl->length);
		pdu.sm_length = (uint8_t)sl->length;
	} else if (rt->concat == TEXT_CONCAT_SAR) {
		util_put_be16(ref_be, ref);
		smpp_tlv_add(&pdu, SMPP_TLV_SAR_MSG_REF_NUM, ref_be, 2);
		smpp_tlv_add(&pdu, SMPP_TLV_SAR_TOTAL_SEGMENTS, &total, 1);
		smpp_tlv_add(&pdu, SMPP_TLV_SAR_SEGMENT_SEQNUM, &seqn, 1);
		memcpy(pdu.short_message, sms->enc + sl->offset, sl->length);
		pdu.sm_length = (uint8_t)sl->length;
	} else {
		size_t ul = text_udh(udh, rt->concat, ref, total, seqn);
		pdu.esm_class |= 0x40;
		memcpy(pdu.short_message, udh, ul);
		memcpy(pdu.short_message + ul, sms->enc + sl->offset, sl->length);
		pdu.sm_length = (uint8_t)(ul + sl->length);
	}
	p->sess = s;
	p->sent_at = ev_now(rt->e->loop);
	sms->unanswered++;
	s->c.submits++;
	if (smpp_session_request(s->s, &pdu, (uint64_t)(uintptr_t)p) < 0)
		part_answered(p, SMPP_STATUS_LINK_LOST, NULL);
}

static void route_refill(struct route_rt *rt, double now)
{
	if (rt->cfg->tps <= 0)
		return;
	double dt = now - rt->last_refill;
	rt->last_refill = now;
	/* after throttling, creep back to the configured rate (+10% of it per second) */
	if (rt->rate < rt->cfg->tps) {
		rt->rate += rt->cfg->tps * 0.1 * dt;
		if (rt->rate > rt->cfg->tps)
			rt->rate = rt->cfg->tps;
	}
	double cap = rt->rate / 5 > 1 ? rt->rate / 5 : 1;
	rt->tokens += dt * rt->rate;
	if (rt->tokens > cap)
		rt->tokens = cap;
}

static void route_pump(struct route_rt *rt)
{
	double now = ev_now(rt->e->loop);
	route_refill(rt, now);
	while (rt->q_head) {
		if (rt->paused_until > now)
			break;
		if (rt->cfg->tps > 0 && rt->tokens < 1)
			break;
		struct sess *s = pick_tx(rt);
		if (!s)
			break;
		struct sms *sms = rt->q_head;
		struct part *p = &sms->parts[sms->next_part++];
		if (sms->next_part == sms->n_parts) {
			rt->q_head = sms->next;
			if (!rt->q_head)
				rt->q_tail = NULL;
			rt->q_len--;
		}
		if (rt->cfg->tps > 0)
			rt->tokens -= 1;
		send_part(rt, s, sms, p);
	}
	route_lease(rt);
}

/* Leased recipients that can't go out (no bind, stopping): back to the queue in PostgreSQL. */
static void route_give_back(struct route_rt *rt, const char *why)
{
	size_t n = 0;
	while (rt->q_head) {
		struct sms *sms = rt->q_head;
		rt->q_head = sms->next;
		rt->q_len--;
		n++;
		unsigned n_parts = sms->n_parts, unsent = n_parts - sms->next_part;
		sms->next_part = sms->n_parts;
		sms->unanswered += (uint8_t)unsent;
		/* the last answer may finish (free) the sms: bounds and parts taken beforehand */
		struct part *parts = sms->parts;
		for (unsigned i = n_parts - unsent; i < n_parts; i++)
			part_answered(&parts[i], SMPP_STATUS_LINK_LOST, NULL);
	}
	rt->q_tail = NULL;
	if (n)
		log_info("smpp", "route=%s ev=gave_back recipients=%zu why=\"%s\"", rt->cfg->name, n, why);
}

/* A leased recipient becomes an sms with its parts. */
static void route_enqueue(struct route_rt *rt, long long id, const char *msisdn, const char *sender,
			  const char *body, const char *done_parts)
{
	static uint8_t enc[MAX_TEXT_OCTETS];
	static struct text_part slices[TEXT_MAX_PARTS];
	enum text_coding chosen;
	size_t units;
	long n = text_encode(body, strlen(body), rt->coding, enc, sizeof(enc), &chosen, &units);
	if (n < 0 && rt->coding != TEXT_AUTO)
		n = text_encode(body, strlen(body), TEXT_AUTO, enc, sizeof(enc), &chosen, &units);
	int total = n < 0 ? -1 : text_split(enc, (size_t)n, chosen, rt->concat, slices, TEXT_MAX_PARTS);
	if (total == 0) {   /* empty text: one empty part */
		slices[0] = (struct text_part){ 0, 0 };
		total = 1;
	}
	int failed = total < 0;
	unsigned char done[TEXT_MAX_PARTS + 1] = {0};
	unsigned n_done = 0;
	for (const char *p = done_parts; !failed && *p;) {
		if (*p >= '0' && *p <= '9') {
			long v = strtol(p, (char **)&p, 10);
			if (v >= 1 && v <= total && !done[v]) {
				done[v] = 1;
				n_done++;
			}
		} else {
			p++;
		}
	}
	unsigned n_parts = failed ? 1 : (unsigned)total - n_done;
	struct sms *sms = calloc(1, sizeof(*sms) + (n_parts ? n_parts : 1) * sizeof(struct part));
	if (!sms)
		return;   /* the lease expires and the sweep sends it again */
	sms->rt = rt;
	sms->id = id;
	util_strlcpy(sms->msisdn, msisdn, sizeof(sms->msisdn));
	util_strlcpy(sms->sender, sender, sizeof(sms->sender));
	if (failed) {
		/* the text can't be carried: answer for it at once */
		sms->total = 1;
		sms->n_parts = 1;
		sms->next_part = 1;
		sms->unanswered = 1;
		sms->parts[0] = (struct part){ .sms = sms, .no = 1 };
		part_answered(&sms->parts[0], SMPP_ESME_RINVMSGLEN, NULL);
		return;
	}
	sms->coding = chosen;
	sms->total = (uint8_t)total;
	sms->n_parts = (uint8_t)n_parts;
	sms->enc = malloc((size_t)n ? (size_t)n : 1);
	sms->slices = malloc((size_t)total * sizeof(*sms->slices));
	if (!sms->enc || !sms->slices) {
		free(sms->enc);
		free(sms->slices);
		free(sms);
		return;
	}
	memcpy(sms->enc, enc, (size_t)n);
	sms->enc_len = (size_t)n;
	memcpy(sms->slices, slices, (size_t)total * sizeof(*slices));
	unsigned k = 0;
	for (int no = 1; no <= total; no++)
		if (!done[no])
			sms->parts[k++] = (struct part){ .sms = sms, .no = (uint8_t)no };
	if (n_parts == 0) {
		/* every part was accepted in an earlier attempt */
		sms->n_parts = 0;
		sms_finish(sms);
		return;
	}
	if (rt->q_tail)
		rt->q_tail->next = sms;
	else
		rt->q_head = sms;
	rt->q_tail = sms;
	rt->q_len++;
}

static void lease_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct route_rt *rt = job->arg;
	assert(rt->lease_in_flight);   /* one lease per route in the database at a time */
	rt->lease_in_flight = 0;
	if (err != STORE_OK) {
		if (err == STORE_SQL_ERROR)
			log_error("smpp", "route=%s ev=lease_failed err=\"%s\"", rt->cfg->name, msg);
		return;
	}
	int rows = PQntuples(job->res);
	for (int i = 0; i < rows; i++)
		route_enqueue(rt, strtoll(PQgetvalue(job->res, i, 0), NULL, 10), PQgetvalue(job->res, i, 1),
			      PQgetvalue(job->res, i, 2), PQgetvalue(job->res, i, 3), PQgetvalue(job->res, i, 5));
	if (rows)
		log_debug("smpp", "route=%s ev=leased n=%d", rt->cfg->name, rows);
	if (rt->e->stopping) {
		route_give_back(rt, "stopping");
		return;
	}
	/*
	 * nothing due: don't ask again before the poll timer (or a kick) says so;
	 * unless a kick came meanwhile: its work committed after this lease's
	 * snapshot, so an empty answer says nothing about it
	 */
	if (rows == 0 && !rt->kicked)
		rt->lease_idle_until = ev_now(rt->e->loop) + rt->e->cfg->smpp_idle_poll;
	rt->kicked = 0;
	route_pump(rt);
}

static void route_lease(struct route_rt *rt)
{
	struct smpp_client *e = rt->e;
	/* no new submits while their receipts could not be stored (receipt connection down), nor on
	 * a paused route, nor before the pauses are known */
	if (e->stopping || rt->lease_in_flight || !store_is_up(e->store) || !store_is_up(e->rstore)
	    || ev_now(e->loop) < rt->lease_idle_until || rt->paused || !e->pauses_known)
		return;
	unsigned bound;
	unsigned free_slots = tx_free(rt, &bound);
	if (!bound || free_slots <= rt->q_len)
		return;
	size_t limit = free_slots - rt->q_len, cap = 1000;
	if (rt->cfg->tps > 0) {
		size_t per_sec = (size_t)(rt->rate > 1 ? rt->rate : 1);
		if (rt->q_len >= per_sec / 2 + 1)
			return;   /* half a second of work is waiting already */
		if (cap > per_sec)
			cap = per_sec;
	}
	if (limit > cap)
		limit = cap;
	/* lease in chunks of a quarter of the windows: one row per freed slot costs a statement per submit */
	size_t chunk = (size_t)bound * rt->cfg->window / 4;
	if (chunk > cap)
		chunk = cap;
	if (limit < chunk && limit < free_slots)
		return;
	/* this route, and every route failing over to it while all its transmitters are down (or paused) */
	char *w = rt->p_routes;
	w += sprintf(w, "{%s", rt->cfg->name);
	for (size_t i = 0; i < e->n_routes; i++) {
		struct route_rt *o = &e->routes[i];
		unsigned ob;
		if (o == rt || strcmp(o->cfg->failover, rt->cfg->name) != 0)
			continue;
		tx_free(o, &ob);
		if (!ob || o->paused)
			w += sprintf(w, ",%s", o->cfg->name);
	}
	sprintf(w, "}");
	snprintf(rt->p_limit, sizeof(rt->p_limit), "%zu", limit);
	double lease = rt->cfg->response_timeout * 6;
	snprintf(rt->p_lease, sizeof(rt->p_lease), "%.0f", lease < 60 ? 60 : lease);
	rt->lease_params[0] = e->node;
	rt->lease_params[1] = rt->p_routes;
	rt->lease_params[2] = rt->p_limit;
	rt->lease_params[3] = rt->p_lease;
	rt->lease_params[4] = rt->cfg->name;
	rt->lease_in_flight = 1;
	rt->kicked = 0;   /* this lease sees everything committed before it */
	e->leases++;
	rt->lease_job = (struct store_job){ .stmt = &recipient_stmt_sms_lease, .nparams = 5,
					    .params = rt->lease_params, .done = lease_done, .arg = rt };
	store_submit(e->store, &rt->lease_job);
}

/* --- operator pauses (route_pauses) ------------------------------------------------------- */

static const struct store_stmt stmt_route_pauses = {
	"route_pauses", "SELECT route, coalesce(reason, '') FROM route_pauses", 0, 0,
};

static void pauses_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct smpp_client *e = job->arg;
	e->pauses_in_flight = 0;
	if (err != STORE_OK) {
		if (err == STORE_SQL_ERROR && !e->pauses_stale)   /* once, not at every poll while it fails */
			log_error("smpp", "ev=route_pauses_failed err=\"%s\"", msg);
		e->pauses_stale = 1;   /* the poll reads again; until then what was known holds */
		return;
	}
	for (size_t i = 0; i < e->n_routes; i++) {
		struct route_rt *rt = &e->routes[i];
		int paused = 0;
		const char *why = "";
		for (int r = 0; r < PQntuples(job->res) && !paused; r++)
			if (!strcmp(PQgetvalue(job->res, r, 0), rt->cfg->name)) {
				paused = 1;
				why = PQgetvalue(job->res, r, 1);
			}
		if (paused != rt->paused || !e->pauses_known)
			log_info("smpp", "route=%s ev=%s reason=\"%s\"", rt->cfg->name, paused ? "paused" : "running", why);
		rt->paused = paused;
	}
	e->pauses_known = 1;
	e->pauses_stale = 0;
	if (e->pauses_again) {   /* a notice came while this read was in flight */
		e->pauses_again = 0;
		smpp_client_pauses_changed(e);
		return;
	}
	for (size_t i = 0; i < e->n_routes; i++) {
		e->routes[i].lease_idle_until = 0;
		route_lease(&e->routes[i]);
	}
}

void smpp_client_pauses_changed(struct smpp_client *e)
{
	if (!e || e->stopping || !e->started)
		return;
	if (e->pauses_in_flight) {
		e->pauses_again = 1;
		return;
	}
	e->pauses_in_flight = 1;
	e->pauses_job = (struct store_job){ .stmt = &stmt_route_pauses, .done = pauses_done, .arg = e, .retry = 1 };
	store_submit(e->store, &e->pauses_job);
}

/* --- session events ----------------------------------------------------------------------- */

static void on_resp(void *arg, uint64_t tag, uint32_t status, const struct smpp_pdu *resp)
{
	struct sess *s = arg;
	struct part *p = (struct part *)(uintptr_t)tag;
	part_answered(p, status, resp ? resp->message_id : NULL);
	if (!s->rt->e->freeing)
		route_pump(s->rt);
}

static void on_bound(void *arg)
{
	struct sess *s = arg;
	s->generation++;
	if (s->was_bound)
		s->c.reconnects++;
	s->was_bound = 1;
	route_pump(s->rt);
}

static void on_down(void *arg)
{
	struct sess *s = arg;
	struct route_rt *rt = s->rt;
	s->generation++;   /* receipts of that connection will not be answered on another */
	unsigned bound;
	tx_free(rt, &bound);
	log_warn("smpp", "route=%s bind=%s ev=link_down transmitters_left=%u", rt->cfg->name, s->name, bound);
	if (!bound)
		route_give_back(rt, "no transmitter bound");
}

/* --- timers --------------------------------------------------------------------------------- */

static void pump_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_client *e = w->data;
	for (size_t i = 0; i < e->n_routes; i++)
		if (e->routes[i].q_head)
			route_pump(&e->routes[i]);
	engine_flush(e);
}

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_client *e = w->data;
	if (!e->pauses_known || e->pauses_stale)   /* the last read failed: read again */
		smpp_client_pauses_changed(e);
	smpp_client_kick(e);   /* the idle look: a kick from the clock */
}

/* Every PARKED_INTERVAL: receipts parked before their response was stored are looked at again. */
static void parked_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_client *e = w->data;
	e->parked_wanted = 1;
}

static void stats_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct group *bt = job->arg;
	if (err == STORE_SQL_ERROR)
		log_error("smpp", "ev=stats_failed err=\"%s\"", msg);
	group_reset(bt);
}

static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_client *e = w->data;
	struct group *bt = &e->stats_group;
	int log_now = (e->stats_rounds++ % 12) == 0;
	struct pgarr b[15] = {{0}};
	size_t n = 0;
	for (size_t i = 0; i < e->n_routes; i++) {
		struct route_rt *rt = &e->routes[i];
		for (unsigned k = 0; k < rt->n_sess; k++, n++) {
			struct sess *s = &rt->sess[k];
			unsigned window = rt->cfg->window;
			unsigned used = smpp_session_state(s->s) == SESS_BOUND ? window - smpp_session_window_free(s->s) : 0;
			const char *st = smpp_session_state_name(smpp_session_state(s->s));
			pgarr_text(&b[0], rt->cfg->name);
			pgarr_text(&b[1], s->name);
			pgarr_text(&b[2], st);
			pgarr_num(&b[3], used, 0);
			pgarr_num(&b[4], window, 0);
			const uint64_t v[10] = { s->c.submits, s->c.resp_ok, s->c.resp_temp, s->c.resp_perm, s->c.timeouts,
						 s->c.receipts, s->c.receipts_delivered, s->c.receipts_failed,
						 s->c.throttled, s->c.reconnects };
			for (int j = 0; j < 10; j++)
				pgarr_num(&b[5 + j], (long long)v[j], 0);
			if (log_now)
				log_info("smpp", "route=%s bind=%s ev=stats state=%s window=%u/%u submits=%llu resp_ok=%llu "
					 "resp_temp=%llu resp_perm=%llu timeouts=%llu receipts=%llu throttled=%llu reconnects=%llu",
					 rt->cfg->name, s->name, st, used, window, (unsigned long long)v[0],
					 (unsigned long long)v[1], (unsigned long long)v[2], (unsigned long long)v[3],
					 (unsigned long long)v[4], (unsigned long long)v[5], (unsigned long long)v[8],
					 (unsigned long long)v[9]);
		}
	}
	int oom = 0;
	char *lit[15];
	for (int i = 0; i < 15; i++)
		oom |= !(lit[i] = pgarr_take(&b[i]));
	if (oom || bt->in_flight || !store_is_up(e->rstore)) {
		for (int i = 0; i < 15; i++)
			free(lit[i]);
		return;
	}
	bt->params[0] = e->node;
	for (int i = 0; i < 15; i++) {
		bt->lit[i] = lit[i];
		bt->params[i + 1] = lit[i];
	}
	bt->in_flight = 1;
	bt->job = (struct store_job){ .stmt = &stmts_bind_stats, .nparams = 16, .params = bt->params,
				      .done = stats_done, .arg = bt };
	store_submit(e->rstore, &bt->job);
}

/* --- public --------------------------------------------------------------------------------- */

static int parse_enum(const char *name, int (*fn)(const char *), int fallback)
{
	int v = fn(name);
	return v < 0 ? fallback : v;
}

struct smpp_client *smpp_client_new(struct ev_loop *loop, struct store *store,
				    const struct config *cfg, const char *node)
{
	struct smpp_client *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->loop = loop;
	e->store = store;
	e->rstore = store;
	e->cfg = cfg;
	util_strlcpy(e->node, node, sizeof(e->node));
	e->n_routes = cfg->n_routes;
	metrics_histogram_init(&e->final_latency, &metrics_final_bounds);
	e->routes = calloc(cfg->n_routes, sizeof(*e->routes));
	if (!e->routes)
		goto fail;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		struct route_rt *rt = &e->routes[i];
		const struct route_config *rc = &cfg->routes[i];
		rt->e = e;
		rt->cfg = rc;
		rt->id_format = (enum dlr_id_format)parse_enum(rc->id_format, dlr_id_format_parse, DLR_ID_AUTO);
		rt->concat = (enum text_concat)parse_enum(rc->concat, text_concat_parse, TEXT_CONCAT_UDH8);
		rt->coding = (enum text_coding)parse_enum(rc->coding, text_coding_parse, TEXT_AUTO);
		if (strcmp(rc->coding, "auto") == 0)
			rt->coding = TEXT_AUTO;
		rt->rate = rc->tps;
		rt->tokens = rc->tps > 0 ? 1 : 0;
		metrics_histogram_init(&rt->resp_time, &metrics_smsc_bounds);
		rt->last_refill = ev_now(loop);
		int pair = strcmp(rc->bind_mode, "tx+rx") == 0;
		rt->n_sess = rc->binds * (pair ? 2 : 1);
		rt->sess = calloc(rt->n_sess, sizeof(*rt->sess));
		if (!rt->sess)
			goto fail;
		for (unsigned k = 0; k < rt->n_sess; k++) {
			struct sess *s = &rt->sess[k];
			uint32_t bind = SMPP_BIND_TRANSCEIVER;
			s->rt = rt;
			if (pair) {
				int tx = (k % 2) == 0;
				bind = tx ? SMPP_BIND_TRANSMITTER : SMPP_BIND_RECEIVER;
				s->can_tx = tx;
				s->can_rx = !tx;
				snprintf(s->name, sizeof(s->name), "%s%u", tx ? "tx" : "rx", k / 2);
			} else {
				s->can_tx = s->can_rx = 1;
				snprintf(s->name, sizeof(s->name), "trx%u", k);
			}
			char sname[48];
			snprintf(sname, sizeof(sname), "%s/%s", rc->name, s->name);
			struct smpp_session_config sc = {
				.name = sname, .host = rc->host, .port = rc->port,
				.system_id = rc->system_id, .password = rc->password, .system_type = rc->system_type,
				.bind_command = bind, .window = rc->window, .enquire_link = rc->enquire_link,
				.response_timeout = rc->response_timeout,
				.reconnect_min = rc->reconnect_min, .reconnect_max = rc->reconnect_max,
				.tls = rc->tls, .tls_verify = rc->tls_verify,
				.tls_ca_file = rc->tls_ca_file, .tls_server_name = rc->tls_server_name,
			};
			struct smpp_session_cb cb = { .on_bound = on_bound, .on_down = on_down, .on_resp = on_resp,
						      .on_request = on_request };
			s->s = smpp_session_new(loop, &sc, &cb, s);
			if (!s->s)
				goto fail;
		}
	}
	e->resp_group.e = e;
	e->rcpt_group.e = e;
	e->stats_group.e = e;
	ev_timer_init(&e->pump, pump_cb, PUMP_INTERVAL, PUMP_INTERVAL);
	e->pump.data = e;
	ev_timer_init(&e->poll, poll_cb, cfg->smpp_idle_poll, cfg->smpp_idle_poll);
	e->poll.data = e;
	ev_timer_init(&e->parked, parked_cb, PARKED_INTERVAL, PARKED_INTERVAL);
	e->parked.data = e;
	ev_timer_init(&e->stats, stats_cb, 0.5, STATS_INTERVAL);
	e->stats.data = e;
	return e;
fail:
	smpp_client_free(e);
	return NULL;
}

void smpp_client_start(struct smpp_client *e)
{
	e->started = 1;
	smpp_client_pauses_changed(e);   /* the schema is current now: route_pauses exists */
	ev_timer_start(e->loop, &e->pump);
	ev_timer_start(e->loop, &e->poll);
	ev_timer_start(e->loop, &e->parked);
	ev_timer_start(e->loop, &e->stats);
	for (size_t i = 0; i < e->n_routes; i++)
		for (unsigned k = 0; k < e->routes[i].n_sess; k++)
			smpp_session_start(e->routes[i].sess[k].s);
}

void smpp_client_set_receipt_store(struct smpp_client *e, struct store *rstore)
{
	e->rstore = rstore ? rstore : e->store;
}

void smpp_client_kick(struct smpp_client *e)
{
	for (size_t i = 0; i < e->n_routes; i++) {
		e->routes[i].lease_idle_until = 0;
		if (e->routes[i].lease_in_flight)
			e->routes[i].kicked = 1;
		route_lease(&e->routes[i]);
	}
}

void smpp_client_stop(struct smpp_client *e, double grace)
{
	stats_cb(e->loop, &e->stats, 0);   /* the counters as they stand, for operators */
	e->stopping = 1;
	ev_timer_stop(e->loop, &e->poll);
	ev_timer_stop(e->loop, &e->parked);
	for (size_t i = 0; i < e->n_routes; i++) {
		struct route_rt *rt = &e->routes[i];
		route_give_back(rt, "stopping");
		for (unsigned k = 0; k < rt->n_sess; k++)
			smpp_session_stop(rt->sess[k].s, grace);
	}
	engine_flush(e);
}

int smpp_client_busy(const struct smpp_client *e)
{
	if (e->n_resp || e->n_rcpt || e->resp_group.in_flight || e->rcpt_group.in_flight || e->parked_in_flight)
		return 1;
	for (size_t i = 0; i < e->n_routes; i++) {
		const struct route_rt *rt = &e->routes[i];
		if (rt->lease_in_flight || rt->q_head)
			return 1;
		for (unsigned k = 0; k < rt->n_sess; k++) {
			enum sess_state st = smpp_session_state(rt->sess[k].s);
			if (st == SESS_UNBINDING || (st == SESS_BOUND && e->stopping))
				return 1;
		}
	}
	return 0;
}

const char *smpp_client_state(void *arg)
{
	struct smpp_client *e = arg;
	size_t up = 0;
	for (size_t i = 0; i < e->n_routes; i++) {
		unsigned bound;
		tx_free(&e->routes[i], &bound);
		up += bound > 0;
	}
	return up == e->n_routes ? "bound" : up ? "partial" : "down";
}

const struct metrics_histogram *smpp_client_final_latency(const struct smpp_client *e)
{
	return e ? &e->final_latency : NULL;
}

void smpp_client_metrics(const struct smpp_client *e, struct metrics_out *o)
{
	if (!e)
		return;
	metrics_one(o, "pushgate_smpp_leases_total", METRICS_COUNTER, "lease statements that took SMS for this node",
		    e->leases);
	static const struct { const char *name, *help; } fam[] = {
		{ "pushgate_smpp_bound", "1 while the bind is bound" },
		{ "pushgate_smpp_submits_total", "submit_sm sent" },
		{ "pushgate_smpp_resp_ok_total", "submit_sm_resp with status 0" },
		{ "pushgate_smpp_resp_temp_total", "submit_sm_resp with a temporary error, or the link lost" },
		{ "pushgate_smpp_resp_perm_total", "submit_sm_resp with a permanent error" },
		{ "pushgate_smpp_timeouts_total", "submit_sm without a response in time" },
		{ "pushgate_smpp_receipts_total", "delivery receipts received" },
		{ "pushgate_smpp_receipts_delivered_total", "receipts that said delivered" },
		{ "pushgate_smpp_receipts_failed_total", "receipts that said failed, expired or rejected" },
		{ "pushgate_smpp_throttled_total", "submit_sm_resp ESME_RTHROTTLED or queue full" },
		{ "pushgate_smpp_reconnects_total", "connections opened again after a loss" },
	};
	for (size_t j = 0; j < sizeof(fam) / sizeof(fam[0]); j++) {
		metrics_family(o, fam[j].name, j ? METRICS_COUNTER : METRICS_GAUGE, fam[j].help);
		for (size_t i = 0; i < e->n_routes; i++) {
			const struct route_rt *rt = &e->routes[i];
			for (unsigned k = 0; k < rt->n_sess; k++) {
				const struct sess *s = &rt->sess[k];
				const uint64_t v[] = { smpp_session_state(s->s) == SESS_BOUND, s->c.submits, s->c.resp_ok,
						       s->c.resp_temp, s->c.resp_perm, s->c.timeouts, s->c.receipts,
						       s->c.receipts_delivered, s->c.receipts_failed, s->c.throttled,
						       s->c.reconnects };
				const char *lab[] = { "route", rt->cfg->name, "bind", s->name, NULL };
				metrics_u64(o, fam[j].name, lab, v[j]);
			}
		}
	}
	metrics_family(o, "pushgate_smpp_route_paused", METRICS_GAUGE, "1 while an operator paused the route");
	for (size_t i = 0; i < e->n_routes; i++) {
		const char *lab[] = { "route", e->routes[i].cfg->name, NULL };
		metrics_u64(o, "pushgate_smpp_route_paused", lab, (unsigned long long)e->routes[i].paused);
	}
	metrics_family(o, "pushgate_smpp_response_seconds", METRICS_HISTOGRAM,
		       "from submit_sm to its submit_sm_resp, by route (timeouts and lost links left out)");
	for (size_t i = 0; i < e->n_routes; i++) {
		const char *lab[] = { "route", e->routes[i].cfg->name, NULL };
		metrics_histogram_write(o, "pushgate_smpp_response_seconds", lab, &e->routes[i].resp_time);
	}
}

void smpp_client_on_mo(struct smpp_client *e, smpp_client_mo_fn fn, void *arg)
{
	e->mo_fn = fn;
	e->mo_arg = arg;
}

void smpp_client_free(struct smpp_client *e)
{
	if (!e)
		return;
	e->stopping = e->freeing = 1;
	ev_timer_stop(e->loop, &e->pump);
	ev_timer_stop(e->loop, &e->poll);
	ev_timer_stop(e->loop, &e->parked);
	ev_timer_stop(e->loop, &e->stats);
	/*
	 * Sessions first: their windows answer every part in flight (LINK_LOST),
	 * which finishes (frees) the sms that are out of the queue; what is
	 * still queued is freed after, when nothing refers to it any more.
	 */
	for (size_t i = 0; e->routes && i < e->n_routes; i++) {
		struct route_rt *rt = &e->routes[i];
		for (unsigned k = 0; rt->sess && k < rt->n_sess; k++)
			smpp_session_free(rt->sess[k].s);
	}
	for (size_t i = 0; e->routes && i < e->n_routes; i++) {
		struct route_rt *rt = &e->routes[i];
		while (rt->q_head) {
			struct sms *sms = rt->q_head;
			rt->q_head = sms->next;
			free(sms->enc);
			free(sms->slices);
			free(sms);
		}
		free(rt->sess);
	}
	free(e->routes);
	group_reset(&e->resp_group);
	group_reset(&e->rcpt_group);
	group_reset(&e->stats_group);
	free(e->rcpt_sending);
	free(e->resp);
	free(e->rparts);
	free(e->rcpt);
	free(e);
}
