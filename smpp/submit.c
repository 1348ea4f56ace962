/*
 * submit.c: what an ESME sends the SMPP server to deliver: submit_sm and
 * data_sm (text decoded and checked, schedule and validity read, the
 * account's TPS taken), the parts of long messages kept until all are there
 * (then one text, answered on every part's PDU), and query_sm / cancel_sm.
 * Each message goes to the intake queue like every door's and is answered
 * only after the statement that stored it committed.  Every field comes from
 * the network: addresses, UDH, TLVs and text are checked before they reach
 * SQL.  Owns the submits and long messages in flight (in struct smpp_server,
 * server_int.h); never touches a session but to answer on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "recipient.h"
#include "server_int.h"
#include "util.h"

/* $1 recipient id, $2 account id.  Row: state, final date (SMPP absolute time), error code. */
static const struct store_stmt stmt_query = {
	"smpps_query",
	"SELECT state, coalesce(to_char(final_at AT TIME ZONE 'UTC', 'YYMMDDHH24MISS') || '000+', ''),"
	" coalesce(error_code, 0) FROM recipients WHERE id = $1 AND account_id = $2",
	2, 0,
};

/*
 * SMPP 3.4 time (7.1.1): "YYMMDDhhmmsstnnp", absolute (p '+'/'-': nn
 * quarter hours from UTC) or relative (p 'R').  Unix time in *out; 1 when
 * given, 0 when empty, -1 when malformed.
 */
static int smpp_time(const char *s, time_t now, time_t *out)
{
	if (!*s)
		return 0;
	int v[7];
	if (strlen(s) != 16)
		return -1;
	for (int i = 0; i < 15; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	for (int i = 0; i < 6; i++)
		v[i] = (s[2 * i] - '0') * 10 + (s[2 * i + 1] - '0');
	v[6] = (s[13] - '0') * 10 + (s[14] - '0');   /* nn */
	if (s[15] == 'R') {
		*out = now + (time_t)v[0] * 365 * 86400 + (time_t)v[1] * 30 * 86400 + (time_t)v[2] * 86400 +
		       (time_t)v[3] * 3600 + (time_t)v[4] * 60 + v[5];
		return 1;
	}
	if ((s[15] != '+' && s[15] != '-') || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 59 || v[6] > 48)
		return -1;
	struct tm tm = { .tm_year = 100 + v[0], .tm_mon = v[1] - 1, .tm_mday = v[2], .tm_hour = v[3],
			 .tm_min = v[4], .tm_sec = v[5] };
	time_t t = timegm(&tm);
	long off = (long)v[6] * 15 * 60;
	*out = s[15] == '+' ? t - off : t + off;
	return 1;
}

/* "1a2f" -> 6703; -1 when not 1-16 hex digits. */
static long long parse_hex_id(const char *s)
{
	long long v = 0;
	size_t n = 0;
	for (; *s; s++, n++) {
		int d = (*s >= '0' && *s <= '9') ? *s - '0' : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
			: (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10 : -1;
		if (d < 0 || n >= 15)
			return -1;
		v = v * 16 + d;
	}
	return n ? v : -1;
}

/* --- answers ---------------------------------------------------------------------------- */

void smpps_answer(struct ans *a, uint32_t status, const char *message_id)
{
	struct conn *c = a->c;
	if (!c)
		return;
	a->c = NULL;
	if (c->in_flight > 0)
		c->in_flight--;
	smpps_conn_unref(c);
	if (c->closed)
		return;
	struct smpp_pdu resp;
	struct smpp_pdu req;
	memset(&req, 0, sizeof(req));
	req.hdr.command_id = a->cmd;
	req.hdr.sequence_number = a->seq;
	smpp_pdu_resp(&resp, &req, status);
	if (status == 0 && message_id)
		util_strlcpy(resp.message_id, message_id, sizeof(resp.message_id));
	smpp_session_send(c->s, &resp);
}

void smpps_answer_now(struct conn *c, const struct smpp_pdu *req, uint32_t status)
{
	struct smpp_pdu resp;
	smpp_pdu_resp(&resp, req, status);
	smpp_session_send(c->s, &resp);
}

static void submit_free(struct submit *sub)
{
	free(sub->text);
	free(sub);
}

/* --- intake ------------------------------------------------------------------------------ */

/* The intake committed this submit (or could not): the ESME gets its answer(s) now. */
static void submit_done(struct intake_req *r, enum store_error err, const char *msg, PGresult *res, int first,
			int rows)
{
	struct submit *sub = r->arg;
	struct smpp_server *srv = sub->srv;
	srv->jobs_in_flight--;
	if (err != STORE_OK || rows != 1) {
		if (err != STORE_UNAVAILABLE)
			log_error("smpps", "ev=intake_failed to=%s rows=%d err=\"%s\"", sub->to, rows,
				  err != STORE_OK ? (msg ? msg : "") : "row count");
		for (unsigned k = 0; k < sub->n_ans; k++)
			smpps_answer(&sub->ans[k], SMPP_ESME_RSYSERR, NULL);
		submit_free(sub);
		return;
	}
	int wait;
	enum intake_refusal why = intake_refusal_of(res, first, rows, &wait);
	if (why != INTAKE_ADMITTED) {
		/* the account's limits: a sender not its own is 0x0A, its rate 0x58 (try again), a used-up quota or
		 * balance 0x45 (an ESME's submit names no URL) */
		uint32_t status = why == INTAKE_REFUSED_SENDER ? SMPP_ESME_RINVSRCADR
				  : why == INTAKE_REFUSED_RATE ? SMPP_ESME_RTHROTTLED : SMPP_ESME_RSUBMITFAIL;
		log_info("smpps", "ev=refused account=%lld why=%s to=%s", sub->account_id, intake_refusal_name(why), sub->to);
		srv->c.submit_refused++;
		for (unsigned k = 0; k < sub->n_ans; k++)
			smpps_answer(&sub->ans[k], status, NULL);
		submit_free(sub);
		return;
	}
	char id[24];
	snprintf(id, sizeof(id), "%llx", strtoll(PQgetvalue(res, first, 1), NULL, 10));
	const char *state = PQgetvalue(res, first, 3);
	for (unsigned k = 0; k < sub->n_ans; k++)
		smpps_answer(&sub->ans[k], 0, id);
	srv->c.submits++;
	log_debug("smpps", "ev=accepted recipient=%s to=%s state=%s", id, sub->to, state);
	submit_free(sub);
}

/* One message per submit; the intake queue groups the submits of every ESME (and every other door). */
static void enqueue(struct smpp_server *srv, struct submit *sub)
{
	sub->srv = srv;
	intake_opts_default(&sub->opts);
	sub->opts.source = "smpp";
	util_strlcpy(sub->opts.send_at, sub->send_at, sizeof(sub->opts.send_at));
	sub->opts.validity = sub->validity;
	sub->opts.smpp_account_id = sub->smpp_account_id;
	sub->opts.smpp_registered = sub->registered;
	sub->req = (struct intake_req){
		.msg = { sub->account_id, sub->sender, sub->text, 1, (const char (*)[21])&sub->to, NULL, &sub->opts },
		.done = submit_done, .arg = sub,
	};
	srv->jobs_in_flight++;
	intake_submit(srv->intake, &sub->req);
}

/* Decodes octets to a malloc'd UTF-8 string; NULL when they are not a text pushgate can carry. */
char *smpps_decode_text(const uint8_t *oct, size_t len, int coding)
{
	size_t cap = len * 3 + 1;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	long n = text_decode(oct, len, (enum text_coding)coding, out, cap - 1);
	if (n < 0 || !util_utf8_text(out, (size_t)n, 0)) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	return out;
}

/* schedule_delivery_time and validity_period of a submit; 0, or the status to refuse it with. */
static uint32_t submit_times(const struct smpp_pdu *req, time_t now, char send_at[40], double *validity)
{
	time_t t;
	send_at[0] = '\0';
	*validity = -1;
	int r = smpp_time(req->schedule_delivery_time, now, &t);
	if (r < 0)
		return 0x61;   /* ESME_RINVSCHED */
	if (r > 0 && t > now) {
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(send_at, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	r = smpp_time(req->validity_period, now, &t);
	if (r < 0 || (r > 0 && t <= now))
		return 0x62;   /* ESME_RINVEXPIRY */
	if (r > 0)
		*validity = (double)(t - now);
	return 0;
}

static struct submit *submit_new(struct conn *c, const struct smpp_pdu *req, char *text, unsigned n_ans)
{
	struct submit *sub = calloc(1, sizeof(*sub) + n_ans * sizeof(struct ans));
	if (!sub)
		return NULL;
	sub->smpp_account_id = c->acct->id;
	sub->account_id = c->acct->account_id;
	util_strlcpy(sub->sender, req->source_addr, sizeof(sub->sender));
	util_msisdn(req->destination_addr, sub->to);
	sub->registered = req->registered_delivery & 0x03;
	sub->text = text;
	sub->n_ans = n_ans;
	return sub;
}

/* --- long messages ----------------------------------------------------------------------------- */

void smpps_reasm_free(struct reasm *r)
{
	for (unsigned i = 0; i < r->total; i++)
		free(r->part[i].data);
	free(r);
}

static void reasm_fail(struct reasm *r, uint32_t status)
{
	for (unsigned i = 0; i < r->total; i++)
		if (r->part[i].have)
			smpps_answer(&r->part[i].ans, status, NULL);
}

void smpps_reasm_expire(struct smpp_server *srv, int all)
{
	double now = ev_now(srv->loop);
	struct reasm **pp = &srv->reasm;
	while (*pp) {
		struct reasm *r = *pp;
		if (!all && r->deadline > now) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		log_warn("smpps", "ev=parts_missing to=%s ref=%u got=%u total=%u", r->to, r->ref, r->got, r->total);
		reasm_fail(r, SMPP_ESME_RSUBMITFAIL);
		smpps_reasm_free(r);
	}
}

/*
 * One part of a long message: kept until all are there, then the whole
 * text goes to the intake as one submit answered on every part's PDU.
 * Returns 0 when taken (answered later), else the status to answer now.
 */
static uint32_t reasm_add(struct conn *c, const struct smpp_pdu *req, int coding, uint16_t ref, uint8_t total,
			  uint8_t seq, const uint8_t *oct, size_t len, const char *send_at, double validity)
{
	struct smpp_server *srv = c->srv;
	char to[21];
	if (total < 1 || seq < 1 || seq > total)
		return SMPP_ESME_RINVOPTPARSTREAM;
	util_msisdn(req->destination_addr, to);
	struct reasm *r;
	for (r = srv->reasm; r; r = r->next)
		if (r->smpp_account_id == c->acct->id && r->ref == ref && r->total == total && strcmp(r->to, to) == 0 &&
		    strcmp(r->sender, req->source_addr) == 0)
			break;
	if (!r) {
		r = calloc(1, sizeof(*r) + total * sizeof(struct part_slot));
		if (!r)
			return SMPP_ESME_RMSGQFUL;
		r->smpp_account_id = c->acct->id;
		r->account_id = c->acct->account_id;
		util_strlcpy(r->sender, req->source_addr, sizeof(r->sender));
		memcpy(r->to, to, sizeof(to));
		r->ref = ref;
		r->total = total;
		r->coding = (uint8_t)coding;
		r->registered = req->registered_delivery & 0x03;
		util_strlcpy(r->send_at, send_at, sizeof(r->send_at));
		r->validity = validity;
		r->deadline = ev_now(srv->loop) + srv->cfg->smpps_reassembly_timeout;
		r->next = srv->reasm;
		srv->reasm = r;
	}
	struct part_slot *p = &r->part[seq - 1];
	if (p->have || r->coding != (uint8_t)coding)
		return SMPP_ESME_RSUBMITFAIL;   /* a duplicate part, or one of another coding */
	p->data = malloc(len ? len : 1);
	if (!p->data)
		return SMPP_ESME_RMSGQFUL;
	memcpy(p->data, oct, len);
	p->len = len;
	p->have = 1;
	p->ans = (struct ans){ c, req->hdr.sequence_number, req->hdr.command_id };
	c->refs++;
	c->in_flight++;
	if (++r->got < r->total)
		return 0;
	/* complete: out of the list, one text */
	for (struct reasm **pp = &srv->reasm; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	size_t all = 0;
	for (unsigned i = 0; i < total; i++)
		all += r->part[i].len;
	uint8_t *oct_all = malloc(all ? all : 1);
	char *text = NULL;
	if (oct_all && all <= TEXT_MAX) {
		size_t o = 0;
		for (unsigned i = 0; i < total; i++) {
			memcpy(oct_all + o, r->part[i].data, r->part[i].len);
			o += r->part[i].len;
		}
		text = smpps_decode_text(oct_all, all, r->coding);
	}
	free(oct_all);
	if (text && strlen(text) > srv->cfg->max_text) {   /* [server] max_text, as for every door */
		free(text);
		reasm_fail(r, SMPP_ESME_RINVMSGLEN);
		smpps_reasm_free(r);
		return 0;
	}
	struct submit *sub = text ? calloc(1, sizeof(*sub) + total * sizeof(struct ans)) : NULL;
	if (!sub) {
		free(text);
		reasm_fail(r, text ? SMPP_ESME_RMSGQFUL : SMPP_ESME_RSUBMITFAIL);
		smpps_reasm_free(r);
		return 0;
	}
	sub->smpp_account_id = r->smpp_account_id;
	sub->account_id = r->account_id;
	memcpy(sub->sender, r->sender, sizeof(sub->sender));
	memcpy(sub->to, r->to, sizeof(sub->to));
	sub->registered = r->registered;
	memcpy(sub->send_at, r->send_at, sizeof(sub->send_at));
	sub->validity = r->validity;
	sub->text = text;
	sub->n_ans = total;
	for (unsigned i = 0; i < total; i++)
		sub->ans[i] = r->part[i].ans;
	smpps_reasm_free(r);
	enqueue(srv, sub);
	return 0;
}

/* --- requests ------------------------------------------------------------------------------------- */

/* Token bucket per account: 1 when this submit may pass. */
static int acct_take_token(struct smpp_server *srv, struct acct *a)
{
	if (a->tps <= 0)
		return 1;
	double now = ev_now(srv->loop);
	double burst = a->tps < 1 ? 1 : a->tps;
	a->tokens += (now - a->last_refill) * a->tps;
	a->last_refill = now;
	if (a->tokens > burst)
		a->tokens = burst;
	if (a->tokens < 1)
		return 0;
	a->tokens -= 1;
	return 1;
}

void smpps_handle_submit(struct conn *c, const struct smpp_pdu *req)
{
	struct smpp_server *srv = c->srv;
	char to[21];
	if (!c->can_tx) {
		smpps_answer_now(c, req, SMPP_ESME_RINVBNDSTS);
		return;
	}
	if (srv->stopping) {
		smpps_answer_now(c, req, SMPP_ESME_RSYSERR);
		return;
	}
	if (c->in_flight >= c->acct->window || !acct_take_token(srv, c->acct)) {
		srv->c.throttled++;
		smpps_answer_now(c, req, SMPP_ESME_RTHROTTLED);
		return;
	}
	if (!util_valid_sender(req->source_addr)) {
		smpps_answer_now(c, req, SMPP_ESME_RINVSRCADR);
		return;
	}
	if (util_msisdn(req->destination_addr, to) < 0) {
		smpps_answer_now(c, req, SMPP_ESME_RINVDSTADR);
		return;
	}
	int coding = smpps_coding_of(req->data_coding);
	if (coding < 0) {
		srv->c.submit_refused++;
		smpps_answer_now(c, req, SMPP_ESME_RSUBMITFAIL);
		return;
	}
	char send_at[40];
	double validity;
	uint32_t st = submit_times(req, time(NULL), send_at, &validity);
	if (st) {
		smpps_answer_now(c, req, st);
		return;
	}
	const uint8_t *oct = req->short_message;
	size_t len = req->sm_length;
	const struct smpp_tlv *payload = smpp_tlv_find(req, SMPP_TLV_MESSAGE_PAYLOAD);
	if (payload) {
		if (len > 0) {   /* both: SMPP 3.4 5.3.2.32 forbids it */
			smpps_answer_now(c, req, SMPP_ESME_RINVPARLEN);
			return;
		}
		oct = payload->value;
		len = payload->length;
	}
	const struct smpp_tlv *sar_ref = smpp_tlv_find(req, SMPP_TLV_SAR_MSG_REF_NUM);
	const struct smpp_tlv *sar_tot = smpp_tlv_find(req, SMPP_TLV_SAR_TOTAL_SEGMENTS);
	const struct smpp_tlv *sar_seq = smpp_tlv_find(req, SMPP_TLV_SAR_SEGMENT_SEQNUM);
	if ((req->esm_class & 0x40) && !payload) {
		/* UDH: length, then IEs; concatenation IE 0x00 (8-bit ref) or 0x08 (16-bit) */
		if (len < 1 || (size_t)oct[0] + 1 > len) {
			smpps_answer_now(c, req, SMPP_ESME_RINVMSGLEN);
			return;
		}
		size_t udhl = oct[0], i = 1;
		int found = 0;
		uint16_t ref = 0;
		uint8_t total = 0, seq = 0;
		while (i + 2 <= udhl + 1) {
			uint8_t iei = oct[i], iel = oct[i + 1];
			if (i + 2 + iel > udhl + 1)
				break;
			if (iei == 0x00 && iel == 3) {
				ref = oct[i + 2], total = oct[i + 3], seq = oct[i + 4], found = 1;
			} else if (iei == 0x08 && iel == 4) {
				ref = (uint16_t)(oct[i + 2] << 8 | oct[i + 3]), total = oct[i + 4], seq = oct[i + 5], found = 1;
			}
			i += 2u + iel;
		}
		oct += udhl + 1;
		len -= udhl + 1;
		if (found && total > 1) {
			st = reasm_add(c, req, coding, ref, total, seq, oct, len, send_at, validity);
			if (st)
				smpps_answer_now(c, req, st);
			return;
		}
	} else if (sar_ref && sar_tot && sar_seq && !payload) {
		if (sar_ref->length != 2 || sar_tot->length != 1 || sar_seq->length != 1) {
			smpps_answer_now(c, req, SMPP_ESME_RINVPARLEN);
			return;
		}
		uint16_t ref = (uint16_t)(sar_ref->value[0] << 8 | sar_ref->value[1]);
		if (sar_tot->value[0] > 1) {
			st = reasm_add(c, req, coding, ref, sar_tot->value[0], sar_seq->value[0], oct, len, send_at,
				       validity);
			if (st)
				smpps_answer_now(c, req, st);
			return;
		}
	}
	if (len > TEXT_MAX) {
		smpps_answer_now(c, req, SMPP_ESME_RINVMSGLEN);
		return;
	}
	char *text = smpps_decode_text(oct, len, coding);
	if (!text) {
		srv->c.submit_refused++;
		smpps_answer_now(c, req, SMPP_ESME_RSUBMITFAIL);
		return;
	}
	if (strlen(text) > srv->cfg->max_text) {   /* [server] max_text (UTF-8 bytes), as for every door */
		free(text);
		srv->c.submit_refused++;
		smpps_answer_now(c, req, SMPP_ESME_RINVMSGLEN);
		return;
	}
	struct submit *sub = submit_new(c, req, text, 1);
	if (!sub) {
		free(text);
		smpps_answer_now(c, req, SMPP_ESME_RMSGQFUL);
		return;
	}
	sub->ans[0] = (struct ans){ c, req->hdr.sequence_number, req->hdr.command_id };
	memcpy(sub->send_at, send_at, sizeof(sub->send_at));
	sub->validity = validity;
	c->refs++;
	c->in_flight++;
	enqueue(srv, sub);
}

static void qjob_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct qjob *q = job->arg;
	struct smpp_server *srv = q->srv;
	struct conn *c = q->ans.c;
	srv->jobs_in_flight--;
	if (c) {
		if (c->in_flight > 0)
			c->in_flight--;
		smpps_conn_unref(c);
	}
	if (!c || c->closed) {
		free(q);
		return;
	}
	struct smpp_pdu req, resp;
	memset(&req, 0, sizeof(req));
	req.hdr.command_id = q->ans.cmd;
	req.hdr.sequence_number = q->ans.seq;
	if (err != STORE_OK) {
		log_error("smpps", "conn=%s ev=%s_failed err=\"%s\"", c->name, smpp_command_name(q->ans.cmd), msg ? msg : "");
		smpp_pdu_resp(&resp, &req, SMPP_ESME_RSYSERR);
	} else if (q->ans.cmd == SMPP_QUERY_SM) {
		if (PQntuples(job->res) != 1) {
			smpp_pdu_resp(&resp, &req, SMPP_ESME_RINVMSGID);
		} else {
			const char *state = PQgetvalue(job->res, 0, 0);
			uint8_t ms = SMPP_STATE_ENROUTE;
			if (recipient_state_final(state))
				smpps_stat_of(srv, state, &ms);
			smpp_pdu_resp(&resp, &req, 0);
			util_strlcpy(resp.message_id, q->message_id, sizeof(resp.message_id));
			util_strlcpy(resp.final_date, PQgetvalue(job->res, 0, 1), sizeof(resp.final_date));
			resp.query_message_state = ms;
			resp.query_error_code = (uint8_t)atoi(PQgetvalue(job->res, 0, 2));
		}
	} else {
		int canceled = atoi(PQgetvalue(job->res, 0, 0)) > 0;
		int exists = strcmp(PQgetvalue(job->res, 0, 1), "t") == 0;
		smpp_pdu_resp(&resp, &req, canceled ? 0 : exists ? 0x11 /* ESME_RCANCELFAIL */ : SMPP_ESME_RINVMSGID);
	}
	smpp_session_send(c->s, &resp);
	free(q);
}

void smpps_handle_query_cancel(struct conn *c, const struct smpp_pdu *req)
{
	struct smpp_server *srv = c->srv;
	long long id = parse_hex_id(req->message_id);
	if (id < 0) {
		smpps_answer_now(c, req, SMPP_ESME_RINVMSGID);
		return;
	}
	struct qjob *q = calloc(1, sizeof(*q));
	if (!q) {
		smpps_answer_now(c, req, SMPP_ESME_RMSGQFUL);
		return;
	}
	q->srv = srv;
	q->ans = (struct ans){ c, req->hdr.sequence_number, req->hdr.command_id };
	c->refs++;
	c->in_flight++;
	util_strlcpy(q->message_id, req->message_id, sizeof(q->message_id));
	snprintf(q->p_id, sizeof(q->p_id), "%lld", id);
	snprintf(q->p_acct, sizeof(q->p_acct), "%lld", c->acct->account_id);
	q->params[0] = q->p_id;
	q->params[1] = q->p_acct;
	q->job = (struct store_job){ .stmt = req->hdr.command_id == SMPP_QUERY_SM ? &stmt_query : &recipient_stmt_cancel_one,
				     .nparams = 2, .params = q->params, .done = qjob_done, .arg = q };
	srv->jobs_in_flight++;
	store_submit(srv->store, &q->job);
}
