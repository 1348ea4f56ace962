/*
 * client.c: the SMPP client engine (ESME towards a carrier), first cut.
 *
 * Owns one session (session.c), the lease of queued recipients, and three
 * batches headed for PostgreSQL: submit_sm_resp outcomes, receipts, and the
 * deliver_sm_resp PDUs that wait for the receipts' commit.  Every state
 * change goes through router.c's statements with retry=1, so a database
 * outage delays them but loses none; a receipt is acknowledged to the SMSC
 * only once stored (the SMSC resends otherwise).  Never blocks; text that
 * comes from the network is escaped before it reaches SQL parameters.
 */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlr.h"
#include "log.h"
#include "router.h"
#include "session.h"
#include "util.h"

#define BATCH_MAX     2000      /* items per resp/receipt statement */
#define FLUSH_DELAY   0.002     /* seconds an item may wait for company */
#define POLL_INTERVAL 0.25      /* seconds between looks at the queue when idle */
#define SWEEP_INTERVAL 2.0
#define DETAIL_MAX    512

struct resp_item {
	long long id;
	int       status;
	char      outcome[5];           /* ok | perm | temp */
	char      smsc_id[DLR_ID_MAX];
	char      detail[96];
};

struct rcpt_item {
	char     smsc_id[DLR_ID_MAX];
	char     state[16];             /* "" = intermediate */
	int      err;                   /* -1 = none */
	char     detail[DETAIL_MAX];
	uint32_t seq, command_id;       /* deliver_sm to answer after commit */
	unsigned generation;
};

/* A batch on its way to the store: items + the text[] literals built for it. */
struct batch {
	struct store_job job;
	struct smpp_client *c;
	int      in_flight;
	size_t   n;
	const char *params[6];
	char    *lit[6];
	char     p_route[40], p_retry[32];
};

struct smpp_client {
	struct ev_loop *loop;
	struct store *store;
	const struct config *cfg;
	char node[96];
	enum dlr_id_format id_format;
	struct smpp_session *sess;
	unsigned generation;            /* bumps on every bind */
	int stopping;

	/* lease */
	struct store_job lease_job;
	const char *lease_params[4];
	char p_limit[16], p_lease_secs[16];
	int lease_in_flight;
	int lease_more;                 /* the last lease filled its limit: look again soon */
	ev_timer poll;

	/* submit_sm_resp outcomes */
	struct resp_item *resp;
	size_t n_resp, resp_cap;
	struct batch resp_batch;
	struct resp_item *resp_sending;

	/* receipts */
	struct rcpt_item *rcpt;
	size_t n_rcpt;
	struct batch rcpt_batch;
	struct rcpt_item *rcpt_sending;

	/* parked receipts and housekeeping */
	struct store_job parked_job;
	int parked_in_flight, parked_wanted;
	struct store_job sweep_job;
	int sweep_in_flight;
	ev_timer sweep;

	ev_timer flush;
};

static void client_lease(struct smpp_client *c);
static void client_flush(struct smpp_client *c);

/* --- text ---------------------------------------------------------------------- */

long smpp_client_encode_text(const char *utf8, size_t len, uint8_t *out, size_t cap, uint8_t *dc)
{
	int plain = 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)utf8[i];
		/* ASCII that GSM 03.38's default table writes at the same code point */
		if (ch >= 0x80 || (ch < 0x20 && ch != '\n' && ch != '\r') || strchr("@$_`{}[]~\\^|", ch)) {
			plain = 0;
			break;
		}
	}
	if (plain) {
		if (len > cap)
			return -1;
		memcpy(out, utf8, len);
		*dc = 0;
		return (long)len;
	}
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		unsigned char b = (unsigned char)utf8[i];
		uint32_t cp;
		size_t n;
		if (b < 0x80) { cp = b; n = 1; }
		else if ((b & 0xE0) == 0xC0 && i + 1 < len) { cp = ((b & 0x1Fu) << 6) | (utf8[i + 1] & 0x3F); n = 2; }
		else if ((b & 0xF0) == 0xE0 && i + 2 < len) {
			cp = ((b & 0x0Fu) << 12) | ((utf8[i + 1] & 0x3Fu) << 6) | (utf8[i + 2] & 0x3F); n = 3;
		} else if ((b & 0xF8) == 0xF0 && i + 3 < len) {
			cp = ((b & 0x07u) << 18) | ((utf8[i + 1] & 0x3Fu) << 12) | ((utf8[i + 2] & 0x3Fu) << 6) |
			     (utf8[i + 3] & 0x3F); n = 4;
		} else { cp = 0xFFFD; n = 1; }
		i += n;
		if (cp >= 0x10000) {
			if (o + 4 > cap)
				return -1;
			cp -= 0x10000;
			util_put_be16(out + o, (uint16_t)(0xD800 + (cp >> 10)));
			util_put_be16(out + o + 2, (uint16_t)(0xDC00 + (cp & 0x3FF)));
			o += 4;
		} else {
			if (o + 2 > cap)
				return -1;
			util_put_be16(out + o, (uint16_t)cp);
			o += 2;
		}
	}
	*dc = 8;
	return (long)o;
}

/* Network bytes -> printable ASCII for SQL text (valid UTF-8, no NUL). */
static void escape_text(const uint8_t *in, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		uint8_t ch = in[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '\\'; out[o++] = 'x';
			out[o++] = hex[ch >> 4]; out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

/* --- PostgreSQL array literals --------------------------------------------------- */

struct sbuf { char *p; size_t len, cap; int oom; };

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_elem_text(struct sbuf *b, const char *s, int first)
{
	if (!first)
		sb_put(b, ",", 1);
	if (!s) {
		sb_put(b, "NULL", 4);
		return;
	}
	sb_put(b, "\"", 1);
	for (const char *q = s; *q; q++) {
		if (*q == '"' || *q == '\\')
			sb_put(b, "\\", 1);
		sb_put(b, q, 1);
	}
	sb_put(b, "\"", 1);
}

static void sb_elem_num(struct sbuf *b, long long v, int is_null, int first)
{
	char num[32];
	if (!first)
		sb_put(b, ",", 1);
	if (is_null) {
		sb_put(b, "NULL", 4);
		return;
	}
	int n = snprintf(num, sizeof(num), "%lld", v);
	sb_put(b, num, (size_t)n);
}

static void batch_reset(struct batch *bt)
{
	for (int i = 0; i < 6; i++) {
		free(bt->lit[i]);
		bt->lit[i] = NULL;
	}
	bt->in_flight = 0;
	bt->n = 0;
}

/* --- submit_sm_resp outcomes --------------------------------------------------------- */

static int status_is_temporary(uint32_t status)
{
	switch (status) {
	case SMPP_ESME_RTHROTTLED:
	case SMPP_ESME_RMSGQFUL:
	case SMPP_ESME_RSYSERR:
	case SMPP_STATUS_TIMEOUT:
	case SMPP_STATUS_LINK_LOST:
		return 1;
	default:
		return 0;
	}
}

static void resp_done(struct store_job *job, enum store_error e, const char *err)
{
	struct batch *bt = job->arg;
	struct smpp_client *c = bt->c;
	if (e != STORE_OK) {
		/* retry=1 jobs only fail on an SQL error: a bug, not an outage */
		log_error("smpp", "route=%s ev=resp_batch_failed n=%zu err=\"%s\"", c->cfg->smpp_route, bt->n, err);
	} else {
		log_debug("smpp", "route=%s ev=resp_batch_stored n=%zu", c->cfg->smpp_route, bt->n);
	}
	batch_reset(bt);
	/* receipts that beat their response may be parked: apply them now */
	c->parked_wanted = 1;
	client_flush(c);
	client_lease(c);
}

static void resp_send(struct smpp_client *c)
{
	struct batch *bt = &c->resp_batch;
	if (bt->in_flight || c->n_resp == 0)
		return;
	size_t n = c->n_resp < BATCH_MAX ? c->n_resp : BATCH_MAX;
	struct sbuf ids = {0}, sids = {0}, st = {0}, oc = {0}, det = {0};
	sb_put(&ids, "{", 1); sb_put(&sids, "{", 1); sb_put(&st, "{", 1); sb_put(&oc, "{", 1); sb_put(&det, "{", 1);
	for (size_t i = 0; i < n; i++) {
		struct resp_item *r = &c->resp[i];
		sb_elem_num(&ids, r->id, 0, i == 0);
		sb_elem_text(&sids, r->smsc_id[0] ? r->smsc_id : NULL, i == 0);
		sb_elem_num(&st, r->status, 0, i == 0);
		sb_elem_text(&oc, r->outcome, i == 0);
		sb_elem_text(&det, r->detail[0] ? r->detail : NULL, i == 0);
	}
	sb_put(&ids, "}", 1); sb_put(&sids, "}", 1); sb_put(&st, "}", 1); sb_put(&oc, "}", 1); sb_put(&det, "}", 1);
	if (ids.oom || sids.oom || st.oom || oc.oom || det.oom) {
		free(ids.p); free(sids.p); free(st.p); free(oc.p); free(det.p);
		return;   /* try again on the next flush */
	}
	memmove(c->resp, c->resp + n, (c->n_resp - n) * sizeof(*c->resp));
	c->n_resp -= n;
	bt->lit[0] = ids.p; bt->lit[1] = sids.p; bt->lit[2] = st.p; bt->lit[3] = oc.p; bt->lit[5] = det.p;
	snprintf(bt->p_retry, sizeof(bt->p_retry), "%.3f", c->cfg->smpp_retry_min);
	bt->params[0] = bt->lit[0];
	bt->params[1] = bt->lit[1];
	bt->params[2] = bt->lit[2];
	bt->params[3] = bt->lit[3];
	bt->params[4] = bt->p_retry;
	bt->params[5] = bt->lit[5];
	bt->n = n;
	bt->in_flight = 1;
	bt->job = (struct store_job){ .stmt = &router_stmt_sms_resp, .nparams = 6, .params = bt->params,
				      .done = resp_done, .arg = bt, .retry = 1 };
	store_submit(c->store, &bt->job);
}

static struct resp_item *resp_push(struct smpp_client *c)
{
	if (c->n_resp >= c->resp_cap) {
		struct resp_item *r = realloc(c->resp, (c->resp_cap + BATCH_MAX) * sizeof(*r));
		if (!r)
			return NULL;
		c->resp = r;
		c->resp_cap += BATCH_MAX;
	}
	return &c->resp[c->n_resp++];
}

static void on_resp(void *arg, uint64_t tag, uint32_t status, const struct smpp_pdu *resp)
{
	struct smpp_client *c = arg;
	struct resp_item *r = resp_push(c);
	if (!r) {
		log_error("smpp", "route=%s ev=out_of_memory recipient=%llu", c->cfg->smpp_route, (unsigned long long)tag);
		return;   /* the lease expires and the sweep resends it */
	}
	memset(r, 0, sizeof(*r));
	r->id = (long long)tag;
	if (status == 0 && resp) {
		if (dlr_normalise_id(resp->message_id, c->id_format, 0, r->smsc_id, sizeof(r->smsc_id)) < 0) {
			char esc[200];
			escape_text((const uint8_t *)resp->message_id, strlen(resp->message_id), esc, sizeof(esc));
			log_warn("smpp", "route=%s ev=bad_message_id recipient=%lld id=\"%s\"", c->cfg->smpp_route, r->id, esc);
			util_strlcpy(r->outcome, "perm", sizeof(r->outcome));
			r->status = SMPP_ESME_RINVMSGID;
			snprintf(r->detail, sizeof(r->detail), "submit_sm_resp without a usable message_id");
		} else {
			util_strlcpy(r->outcome, "ok", sizeof(r->outcome));
			snprintf(r->detail, sizeof(r->detail), "submit_sm_resp ok");
		}
	} else if (status == SMPP_STATUS_TIMEOUT || status == SMPP_STATUS_LINK_LOST) {
		util_strlcpy(r->outcome, "temp", sizeof(r->outcome));
		r->status = status == SMPP_STATUS_TIMEOUT ? -1 : -2;
		snprintf(r->detail, sizeof(r->detail), "no submit_sm_resp (%s): resend",
			 status == SMPP_STATUS_TIMEOUT ? "timeout" : "connection lost");
	} else {
		util_strlcpy(r->outcome, status_is_temporary(status) ? "temp" : "perm", sizeof(r->outcome));
		r->status = (int)status;
		snprintf(r->detail, sizeof(r->detail), "submit_sm_resp status 0x%08x", status);
	}
	client_flush(c);
}

/* --- receipts ------------------------------------------------------------------------ */

static void rcpt_done(struct store_job *job, enum store_error e, const char *err)
{
	struct batch *bt = job->arg;
	struct smpp_client *c = bt->c;
	struct rcpt_item *items = c->rcpt_sending;
	size_t n = bt->n;
	if (e != STORE_OK) {
		log_error("smpp", "route=%s ev=receipt_batch_failed n=%zu err=\"%s\"", c->cfg->smpp_route, n, err);
	} else {
		long long matched = strtoll(PQgetvalue(job->res, 0, 0), NULL, 10);
		long long parked = strtoll(PQgetvalue(job->res, 0, 1), NULL, 10);
		log_debug("smpp", "route=%s ev=receipts_stored n=%zu final=%lld parked=%lld",
			  c->cfg->smpp_route, n, matched, parked);
		if (parked > 0)
			c->parked_wanted = 1;
		/* stored: now the SMSC may forget them */
		for (size_t i = 0; i < n; i++) {
			if (items[i].generation != c->generation)
				continue;   /* that connection is gone: the SMSC will resend */
			struct smpp_pdu ack;
			smpp_pdu_init(&ack, items[i].command_id | 0x80000000u, items[i].seq);
			smpp_session_send(c->sess, &ack);
		}
	}
	free(c->rcpt_sending);
	c->rcpt_sending = NULL;
	batch_reset(bt);
	client_flush(c);
}

static void rcpt_send(struct smpp_client *c)
{
	struct batch *bt = &c->rcpt_batch;
	if (bt->in_flight || c->n_rcpt == 0)
		return;
	size_t n = c->n_rcpt < BATCH_MAX ? c->n_rcpt : BATCH_MAX;
	struct sbuf sids = {0}, st = {0}, er = {0}, det = {0};
	sb_put(&sids, "{", 1); sb_put(&st, "{", 1); sb_put(&er, "{", 1); sb_put(&det, "{", 1);
	for (size_t i = 0; i < n; i++) {
		struct rcpt_item *r = &c->rcpt[i];
		sb_elem_text(&sids, r->smsc_id, i == 0);
		sb_elem_text(&st, r->state[0] ? r->state : NULL, i == 0);
		sb_elem_num(&er, r->err, r->err < 0, i == 0);
		sb_elem_text(&det, r->detail, i == 0);
	}
	sb_put(&sids, "}", 1); sb_put(&st, "}", 1); sb_put(&er, "}", 1); sb_put(&det, "}", 1);
	struct rcpt_item *sending = malloc(n * sizeof(*sending));
	if (sids.oom || st.oom || er.oom || det.oom || !sending) {
		free(sids.p); free(st.p); free(er.p); free(det.p); free(sending);
		return;
	}
	memcpy(sending, c->rcpt, n * sizeof(*sending));
	memmove(c->rcpt, c->rcpt + n, (c->n_rcpt - n) * sizeof(*c->rcpt));
	c->n_rcpt -= n;
	c->rcpt_sending = sending;
	util_strlcpy(bt->p_route, c->cfg->smpp_route, sizeof(bt->p_route));
	bt->lit[1] = sids.p; bt->lit[2] = st.p; bt->lit[3] = er.p; bt->lit[4] = det.p;
	bt->params[0] = bt->p_route;
	for (int i = 1; i < 5; i++)
		bt->params[i] = bt->lit[i];
	bt->n = n;
	bt->in_flight = 1;
	bt->job = (struct store_job){ .stmt = &router_stmt_sms_receipts, .nparams = 5, .params = bt->params,
				      .done = rcpt_done, .arg = bt, .retry = 1 };
	store_submit(c->store, &bt->job);
}

static const char *state_for(enum dlr_outcome o)
{
	switch (o) {
	case DLR_DELIVERED: return "SMS_DELIVERED";
	case DLR_EXPIRED:   return "SMS_EXPIRED";
	case DLR_FAILED:    return "SMS_FAILED";
	default:            return "";
	}
}

static void on_request(void *arg, const struct smpp_pdu *req)
{
	struct smpp_client *c = arg;
	struct smpp_pdu ack;
	if (req->hdr.command_id != SMPP_DELIVER_SM && req->hdr.command_id != SMPP_DATA_SM) {
		smpp_pdu_resp(&ack, req, SMPP_ESME_RINVCMDID);
		smpp_session_send(c->sess, &ack);
		return;
	}
	const uint8_t *text = req->short_message;
	size_t text_len = req->sm_length;
	const struct smpp_tlv *payload = smpp_tlv_find(req, SMPP_TLV_MESSAGE_PAYLOAD);
	if (text_len == 0 && payload) {
		text = payload->value;
		text_len = payload->length;
	}
	if (!dlr_is_receipt(req)) {
		/* mobile-originated messages are stored by the SMPP server role; log them for now */
		char esc[DETAIL_MAX];
		escape_text(text, text_len, esc, sizeof(esc));
		log_warn("smpp", "route=%s ev=mo_not_stored src=%s dst=%s text=\"%s\"", c->cfg->smpp_route,
			 req->source_addr, req->destination_addr, esc);
		smpp_pdu_resp(&ack, req, 0);
		smpp_session_send(c->sess, &ack);
		return;
	}
	struct dlr d;
	char norm[DLR_ID_MAX];
	if (dlr_from_pdu(req, &d) < 0 || dlr_normalise_id(d.id, c->id_format, 1, norm, sizeof(norm)) < 0) {
		char esc[DETAIL_MAX];
		escape_text(text, text_len, esc, sizeof(esc));
		log_warn("smpp", "route=%s ev=receipt_unreadable text=\"%s\"", c->cfg->smpp_route, esc);
		smpp_pdu_resp(&ack, req, 0);   /* resending it would not make it readable */
		smpp_session_send(c->sess, &ack);
		return;
	}
	if (c->n_rcpt % 256 == 0) {
		struct rcpt_item *r = realloc(c->rcpt, (c->n_rcpt + 256) * sizeof(*r));
		if (!r) {
			smpp_pdu_resp(&ack, req, 0x64);
			smpp_session_send(c->sess, &ack);
			return;
		}
		c->rcpt = r;
	}
	struct rcpt_item *r = &c->rcpt[c->n_rcpt++];
	memset(r, 0, sizeof(*r));
	util_strlcpy(r->smsc_id, norm, sizeof(r->smsc_id));
	util_strlcpy(r->state, state_for(d.outcome), sizeof(r->state));
	r->err = d.outcome == DLR_DELIVERED ? -1 : d.err;
	if (text_len)
		escape_text(text, text_len, r->detail, sizeof(r->detail));
	else
		snprintf(r->detail, sizeof(r->detail), "tlv message_state=%d", d.message_state);
	r->seq = req->hdr.sequence_number;
	r->command_id = req->hdr.command_id;
	r->generation = c->generation;
	client_flush(c);
}

/* --- parked receipts and housekeeping ----------------------------------------------- */

static void parked_done(struct store_job *job, enum store_error e, const char *err)
{
	struct smpp_client *c = job->arg;
	c->parked_in_flight = 0;
	if (e != STORE_OK)
		log_error("smpp", "route=%s ev=apply_parked_failed err=\"%s\"", c->cfg->smpp_route, err);
	else if (strcmp(PQgetvalue(job->res, 0, 0), "0") != 0)
		log_info("smpp", "route=%s ev=parked_applied receipts=%s final=%s", c->cfg->smpp_route,
			 PQgetvalue(job->res, 0, 0), PQgetvalue(job->res, 0, 1));
	client_flush(c);
}

static void sweep_done(struct store_job *job, enum store_error e, const char *err)
{
	struct smpp_client *c = job->arg;
	c->sweep_in_flight = 0;
	if (e != STORE_OK) {
		if (e == STORE_SQL_ERROR)
			log_error("smpp", "ev=sweep_failed err=\"%s\"", err);
		return;
	}
	const char *a = PQgetvalue(job->res, 0, 0), *b = PQgetvalue(job->res, 0, 1), *d = PQgetvalue(job->res, 0, 2);
	if (strcmp(a, "0") || strcmp(b, "0") || strcmp(d, "0"))
		log_info("smpp", "ev=sweep requeued=%s expired=%s unknown=%s", a, b, d);
	if (strcmp(a, "0"))
		client_lease(c);
}

static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_client *c = w->data;
	if (!c->sweep_in_flight && store_is_up(c->store)) {
		c->sweep_in_flight = 1;
		c->sweep_job = (struct store_job){ .stmt = &router_stmt_sweep, .done = sweep_done, .arg = c };
		store_submit(c->store, &c->sweep_job);
	}
	c->parked_wanted = 1;
	client_flush(c);
}

/* --- flushing ------------------------------------------------------------------------ */

static void client_flush(struct smpp_client *c)
{
	resp_send(c);
	rcpt_send(c);
	if (c->parked_wanted && !c->parked_in_flight && !c->resp_batch.in_flight && store_is_up(c->store)) {
		c->parked_wanted = 0;
		c->parked_in_flight = 1;
		c->parked_job = (struct store_job){ .stmt = &router_stmt_apply_parked, .done = parked_done,
						    .arg = c, .retry = 1 };
		store_submit(c->store, &c->parked_job);
	}
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	client_flush(w->data);
}

/* --- lease and submit ---------------------------------------------------------------- */

static void submit_row(struct smpp_client *c, long long id, const char *msisdn, const char *sender, const char *body)
{
	struct smpp_pdu pdu;
	static uint8_t text[65536];
	smpp_pdu_init(&pdu, SMPP_SUBMIT_SM, 0);
	int numeric = sender[0] != '\0';
	for (const char *s = sender; *s; s++)
		if (*s < '0' || *s > '9')
			numeric = 0;
	pdu.source_addr_ton = numeric ? (uint8_t)c->cfg->smpp_source_ton : 5;
	pdu.source_addr_npi = numeric ? (uint8_t)c->cfg->smpp_source_npi : 0;
	util_strlcpy(pdu.source_addr, sender, sizeof(pdu.source_addr));
	pdu.dest_addr_ton = (uint8_t)c->cfg->smpp_dest_ton;
	pdu.dest_addr_npi = (uint8_t)c->cfg->smpp_dest_npi;
	util_strlcpy(pdu.destination_addr, msisdn, sizeof(pdu.destination_addr));
	pdu.registered_delivery = 1;
	uint8_t dc;
	long n = smpp_client_encode_text(body, strlen(body), text, sizeof(text), &dc);
	pdu.data_coding = dc;
	if (n < 0 || n > 65000) {
		on_resp(c, (uint64_t)id, SMPP_ESME_RINVMSGLEN, NULL);
		return;
	}
	if ((dc == 0 && n <= 160) || (dc == 8 && n <= 140)) {
		memcpy(pdu.short_message, text, (size_t)n);
		pdu.sm_length = (uint8_t)n;
	} else {
		smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_PAYLOAD, text, (uint16_t)n);
	}
	if (smpp_session_request(c->sess, &pdu, (uint64_t)id) < 0)
		on_resp(c, (uint64_t)id, SMPP_STATUS_LINK_LOST, NULL);
}

static void lease_done(struct store_job *job, enum store_error e, const char *err)
{
	struct smpp_client *c = job->arg;
	c->lease_in_flight = 0;
	if (e != STORE_OK) {
		if (e == STORE_SQL_ERROR)
			log_error("smpp", "route=%s ev=lease_failed err=\"%s\"", c->cfg->smpp_route, err);
		return;
	}
	int rows = PQntuples(job->res);
	long limit = strtol(c->p_limit, NULL, 10);
	for (int i = 0; i < rows; i++)
		submit_row(c, strtoll(PQgetvalue(job->res, i, 0), NULL, 10), PQgetvalue(job->res, i, 1),
			   PQgetvalue(job->res, i, 2), PQgetvalue(job->res, i, 3));
	if (rows)
		log_debug("smpp", "route=%s ev=leased n=%d", c->cfg->smpp_route, rows);
	c->lease_more = rows >= limit;
	if (c->lease_more)
		client_lease(c);
}

static void client_lease(struct smpp_client *c)
{
	if (c->stopping || c->lease_in_flight || !store_is_up(c->store))
		return;
	unsigned free_slots = smpp_session_window_free(c->sess);
	/* wait for a meaningful chunk of the window unless it is nearly empty */
	if (free_slots == 0 || (free_slots < c->cfg->smpp_window / 4 && free_slots < c->cfg->smpp_window))
		return;
	snprintf(c->p_limit, sizeof(c->p_limit), "%u", free_slots);
	double lease = c->cfg->smpp_response_timeout * 6;
	snprintf(c->p_lease_secs, sizeof(c->p_lease_secs), "%.0f", lease < 60 ? 60 : lease);
	c->lease_params[0] = c->node;
	c->lease_params[1] = c->cfg->smpp_route;
	c->lease_params[2] = c->p_limit;
	c->lease_params[3] = c->p_lease_secs;
	c->lease_in_flight = 1;
	c->lease_job = (struct store_job){ .stmt = &router_stmt_sms_lease, .nparams = 4,
					   .params = c->lease_params, .done = lease_done, .arg = c };
	store_submit(c->store, &c->lease_job);
}

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	client_lease(w->data);
}

/* --- session events -------------------------------------------------------------------- */

static void on_bound(void *arg)
{
	struct smpp_client *c = arg;
	c->generation++;
	client_lease(c);
}

static void on_down(void *arg)
{
	struct smpp_client *c = arg;
	log_warn("smpp", "route=%s ev=link_down", c->cfg->smpp_route);
}

/* --- public ------------------------------------------------------------------------------ */

struct smpp_client *smpp_client_new(struct ev_loop *loop, struct store *store,
				    const struct config *cfg, const char *node)
{
	struct smpp_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = loop;
	c->store = store;
	c->cfg = cfg;
	util_strlcpy(c->node, node, sizeof(c->node));
	int fmt = dlr_id_format_parse(cfg->smpp_id_format);
	c->id_format = fmt < 0 ? DLR_ID_AUTO : (enum dlr_id_format)fmt;
	struct smpp_session_config sc = {
		.name = cfg->smpp_route, .host = cfg->smpp_host, .port = cfg->smpp_port,
		.system_id = cfg->smpp_system_id, .password = cfg->smpp_password,
		.system_type = cfg->smpp_system_type, .bind_command = SMPP_BIND_TRANSCEIVER,
		.window = cfg->smpp_window, .enquire_link = cfg->smpp_enquire_link,
		.response_timeout = cfg->smpp_response_timeout,
		.reconnect_min = cfg->smpp_reconnect_min, .reconnect_max = cfg->smpp_reconnect_max,
	};
	struct smpp_session_cb cb = { on_bound, on_down, on_resp, on_request };
	c->sess = smpp_session_new(loop, &sc, &cb, c);
	c->resp_cap = (size_t)cfg->smpp_window * 4 + BATCH_MAX;
	c->resp = malloc(c->resp_cap * sizeof(*c->resp));
	if (!c->sess || !c->resp) {
		smpp_client_free(c);
		return NULL;
	}
	c->resp_batch.c = c;
	c->rcpt_batch.c = c;
	ev_timer_init(&c->poll, poll_cb, POLL_INTERVAL, POLL_INTERVAL);
	c->poll.data = c;
	ev_timer_init(&c->sweep, sweep_cb, SWEEP_INTERVAL, SWEEP_INTERVAL);
	c->sweep.data = c;
	ev_timer_init(&c->flush, flush_cb, FLUSH_DELAY, FLUSH_DELAY);
	c->flush.data = c;
	return c;
}

void smpp_client_start(struct smpp_client *c)
{
	ev_timer_start(c->loop, &c->poll);
	ev_timer_start(c->loop, &c->sweep);
	ev_timer_start(c->loop, &c->flush);
	smpp_session_start(c->sess);
}

void smpp_client_kick(struct smpp_client *c)
{
	client_lease(c);
}

void smpp_client_stop(struct smpp_client *c, double grace)
{
	c->stopping = 1;
	ev_timer_stop(c->loop, &c->poll);
	ev_timer_stop(c->loop, &c->sweep);
	smpp_session_stop(c->sess, grace);
}

int smpp_client_busy(const struct smpp_client *c)
{
	enum sess_state st = smpp_session_state(c->sess);
	int window = (st == SESS_BOUND || st == SESS_UNBINDING);
	return (window && smpp_session_window_free(c->sess) != c->cfg->smpp_window && !c->stopping) ||
	       st == SESS_UNBINDING || c->n_resp || c->n_rcpt || c->resp_batch.in_flight ||
	       c->rcpt_batch.in_flight || c->lease_in_flight;
}

const char *smpp_client_state(void *arg)
{
	struct smpp_client *c = arg;
	return smpp_session_state(c->sess) == SESS_BOUND ? "bound" : "down";
}

void smpp_client_free(struct smpp_client *c)
{
	if (!c)
		return;
	ev_timer_stop(c->loop, &c->poll);
	ev_timer_stop(c->loop, &c->sweep);
	ev_timer_stop(c->loop, &c->flush);
	smpp_session_free(c->sess);
	batch_reset(&c->resp_batch);
	batch_reset(&c->rcpt_batch);
	free(c->rcpt_sending);
	free(c->resp);
	free(c->rcpt);
	free(c);
}
