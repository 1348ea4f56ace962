/*
 * outbox.c: what the SMPP server sends its ESMEs: receipts (deliver_sm with
 * the SMPP 3.4 appendix B text, and the receipt TLVs) and MO messages, from
 * smpp_outbox (filled by sql/functions/smpp_outbox_fill.sql).  Leases rows
 * per account within its window over its receiver binds, counts a row
 * delivered only after the ESME's deliver_sm_resp (acks and releases go in
 * groups at the end of the loop turn), and takes MO from carriers
 * (smpp_server_mo) into the outbox of the account whose number it names.
 * Never sends to an ESME more than its window.  The outbox is partitioned
 * by recipient id with the history ranges (sql/031): a row is named by its
 * id and its recipient's (struct ob_key), so each statement reads only the
 * ranges of its rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgarr.h"
#include "ranges.h"
#include "recipient.h"
#include "server.h"
#include "server_int.h"
#include "util.h"

/*
 * Outbox lease: $1 node, $2 bigint[] SMPP account ids, $3 int[] rows each
 * may take now, $4 lease seconds.  Oldest first per account (smpp_outbox_due
 * of each range), then updated by key in those rows' ranges (ranges.h).
 */
const struct store_stmt smpp_server_stmt_outbox_lease = {
	"smpps_outbox_lease",
	"WITH c AS (SELECT o.id, o.recipient_id AS rid FROM unnest($2::bigint[], $3::int[]) AS a(acct, lim)"
	"  CROSS JOIN LATERAL (SELECT o.id, o.recipient_id FROM smpp_outbox o WHERE o.smpp_account_id = a.acct"
	"   AND o.delivered_at IS NULL AND (o.lease_until IS NULL OR o.lease_until < now())"
	"   ORDER BY o.id LIMIT a.lim FOR UPDATE SKIP LOCKED) o)"
	" UPDATE smpp_outbox o SET lease_owner = $1, lease_until = now() + make_interval(secs => $4::float8),"
	"  attempts = o.attempts + 1"
	" FROM c WHERE " RANGES_OUTBOX_BY_KEYS("o", "c")
	" RETURNING o.id, o.smpp_account_id, o.kind, coalesce(o.state, ''), coalesce(o.registered, 1),"
	"  coalesce(o.error_code, 0), o.source_addr, o.dest_addr, coalesce(o.body, ''),"
	"  coalesce(to_char(o.submitted_at AT TIME ZONE 'UTC', 'YYMMDDHH24MI'), ''),"
	"  to_char(o.done_at AT TIME ZONE 'UTC', 'YYMMDDHH24MI'), coalesce(o.recipient_id, 0)",
	4, 0,
};

/*
 * Answered rows: $1 bigint[] ids, $2 bigint[] their recipients (NULL: an
 * MO).  Driven from the arrays by each partition's primary key, in the
 * history ranges of those recipients only (ranges.h; smpp_outbox is
 * partitioned by recipient id, sql/031); no predicate on delivered_at in
 * WHERE, so the planner never walks the partial index of every undelivered
 * row instead.
 */
#define KEYS "WITH k AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS k(id, rid))"
const struct store_stmt smpp_server_stmt_outbox_ack = {
	"smpps_outbox_ack",
	KEYS
	" UPDATE smpp_outbox o SET delivered_at = coalesce(o.delivered_at, now()), lease_owner = NULL, lease_until = NULL"
	" FROM k WHERE " RANGES_OUTBOX_BY_KEYS("o", "k"),
	2, 0,
};

/* A restarted node's own outbox leases ($1 its name; node.c runs it): free now.  Row: how many. */
const struct store_stmt smpp_server_stmt_take_back = {
	"smpps_take_back",
	"WITH t AS (UPDATE smpp_outbox SET lease_owner = NULL, lease_until = NULL"
	"  WHERE lease_owner = $1 AND delivered_at IS NULL RETURNING 1)"
	" SELECT count(*) FROM t",
	1, 0,
};

/* Rows sent on a link that went down (or not sent): $1, $2 as the ack's, $3 node.  Free for the next lease. */
const struct store_stmt smpp_server_stmt_outbox_release = {
	"smpps_outbox_release",
	KEYS
	" UPDATE smpp_outbox o SET lease_until = CASE WHEN o.lease_owner = $3 AND o.delivered_at IS NULL"
	"  THEN NULL ELSE o.lease_until END"
	" FROM k WHERE " RANGES_OUTBOX_BY_KEYS("o", "k"),
	3, 0,
};
#undef KEYS

/*
 * A carrier's MO: $1 route, $2 source, $3 destination, $4 text, $5
 * data_coding, $6 text[] opt-out keywords (upper case).  Stored, owner found
 * by destination, keyword -> opt_outs (+ log) for that handset and
 * destination, queued in the owner's outbox (deliver_sm), and, when the
 * owner's account has a webhook URL, in the webhook outbox too (kind 'mo',
 * event_id 0).  Row: mo id, owner SMPP account, opt-out, rows written.
 */
static const struct store_stmt stmt_mo = {
	"smpps_mo",
	"WITH o AS (SELECT id, account_id FROM smpp_accounts WHERE $3::text = ANY(mo_addresses) AND NOT disabled"
	"  ORDER BY id LIMIT 1),"
	" k AS (SELECT upper(btrim($4::text, E' \\t\\r\\n.!')) = ANY($6::text[]) AS stop),"
	" m AS (INSERT INTO mo_messages (route, source_addr, dest_addr, body, data_coding, smpp_account_id,"
	"  account_id, opt_out)"
	"  SELECT $1, $2, $3, $4, $5::smallint, (SELECT id FROM o), (SELECT account_id FROM o), k.stop FROM k"
	"  RETURNING id, smpp_account_id, account_id, opt_out),"
	" x AS (INSERT INTO opt_outs (msisdn, sender, source) SELECT $2, $3, 'sms' FROM m WHERE m.opt_out"
	"  ON CONFLICT (msisdn, sender) DO NOTHING RETURNING 1),"
	" l AS (INSERT INTO opt_out_log (msisdn, sender, action, source) SELECT $2, $3, 'reject', 'sms' FROM m"
	"  WHERE m.opt_out RETURNING 1),"
	" q AS (INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, source_addr, dest_addr, body)"
	"  SELECT m.smpp_account_id, m.account_id, 'mo', $2, $3, $4 FROM m WHERE m.smpp_account_id IS NOT NULL"
	"  RETURNING 1),"
	" w AS (INSERT INTO webhook_outbox (account_id, url, event_id, payload)"
	"  SELECT m.account_id, a.webhook_url, 0, jsonb_build_object('kind', 'mo', 'mo_id', m.id, 'from', $2::text,"
	"   'to', $3::text, 'text', $4::text, 'opt_out', m.opt_out, 'at', now())"
	"  FROM m JOIN accounts a ON a.id = m.account_id WHERE a.webhook_url IS NOT NULL RETURNING 1)"
	" SELECT m.id, coalesce(m.smpp_account_id, 0), m.opt_out, (SELECT count(*) FROM x) + (SELECT count(*) FROM l)"
	"  + (SELECT count(*) FROM q) + (SELECT count(*) FROM w) FROM m",
	6, 0,
};
/* --- outbox: receipts and MO towards the ESMEs ---------------------------------------------------- */

/* A row for the next ack or release statement (when memory runs out, its lease runs out instead). */
static void ob_queue(struct ob_key **keys, size_t *n, size_t *cap, struct ob_key k)
{
	if (util_grow((void **)keys, cap, *n + 1, sizeof(**keys)) == 0)
		(*keys)[(*n)++] = k;
}

void smpps_on_resp(void *arg, uint64_t tag, uint32_t status, const struct smpp_pdu *resp)
{
	struct conn *c = arg;
	struct smpp_server *srv = c->srv;
	(void)resp;
	if (c->acct && c->acct->outbox_in_flight > 0)
		c->acct->outbox_in_flight--;
	if (c->ob_in_flight > 0)
		c->ob_in_flight--;
	struct ob_key *k = (struct ob_key *)(uintptr_t)tag;
	if (status == 0) {
		ob_queue(&srv->acked, &srv->n_acked, &srv->cap_acked, *k);
		srv->c.receipts_acked++;
	} else if (status == SMPP_STATUS_LINK_LOST) {
		ob_queue(&srv->released, &srv->n_released, &srv->cap_released, *k);
	} else {
		log_warn("smpps", "conn=%s ev=deliver_sm_refused outbox=%lld status=0x%08x", c->name, k->id, status);
	}
	free(k);
	/* any other answer: the lease runs out and it is sent again */
	if (!srv->stopping)
		ev_prepare_start(srv->loop, &srv->pump);   /* the ack, and room for the next lease */
}

/* deliver_sm this bind may take now: the session's window, bounded by the account's. */
static unsigned rx_room(const struct conn *c)
{
	if (c->closed || !c->acct || !c->can_rx)
		return 0;
	unsigned w = smpp_session_window_free(c->s);
	unsigned acct = c->acct->window > c->ob_in_flight ? c->acct->window - c->ob_in_flight : 0;
	return w < acct ? w : acct;
}

static struct conn *pick_rx(struct smpp_server *srv, struct acct *a)
{
	unsigned k = 0;
	struct conn *found = NULL;
	for (struct conn *c = srv->conns; c; c = c->next) {
		if (c->acct != a || rx_room(c) == 0)
			continue;
		if (k++ == a->rr % (a->rx_binds ? a->rx_binds : 1) || !found)
			found = c;
	}
	a->rr++;
	return found;
}

/* The appendix-B stat of a recipient state, with its message_state. */
const char *smpps_stat_of(struct smpp_server *srv, const char *state, uint8_t *ms)
{
	char key[24];
	snprintf(key, sizeof(key), ",%s,", state);
	if (strstr(srv->delivered, key)) {
		*ms = SMPP_STATE_DELIVERED;
		return "DELIVRD";
	}
	if (!strcmp(state, "SMS_EXPIRED")) {
		*ms = SMPP_STATE_EXPIRED;
		return "EXPIRED";
	}
	if (!strcmp(state, "CANCELED")) {
		*ms = SMPP_STATE_DELETED;
		return "DELETED";
	}
	if (!strcmp(state, "DROPPED")) {
		*ms = SMPP_STATE_REJECTED;
		return "REJECTD";
	}
	if (!strcmp(state, "SMS_UNKNOWN")) {
		*ms = SMPP_STATE_UNKNOWN;
		return "UNKNOWN";
	}
	if (!strcmp(state, "PUSH_DELIVERED") || !strcmp(state, "SMS_DELIVERED")) {
		*ms = SMPP_STATE_ACCEPTED;
		return "ACCEPTD";
	}
	*ms = SMPP_STATE_UNDELIVERABLE;
	return "UNDELIV";
}

static void set_addr(const char *a, uint8_t *ton, uint8_t *npi)
{
	int numeric = *a != '\0';
	for (const char *p = a; *p; p++)
		if (*p < '0' || *p > '9')
			numeric = 0;
	*ton = numeric ? (strlen(a) <= 8 ? 3 : 1) : 5;
	*npi = numeric ? 1 : 0;
}

/* One leased outbox row (its key) as a deliver_sm; 1 sent, 0 not needed (acked), -1 not sent now. */
static int outbox_send(struct smpp_server *srv, PGresult *res, int row, struct ob_key key)
{
	long long acct_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
	const char *kind = PQgetvalue(res, row, 2);
	struct acct *a = NULL;
	for (struct acct *x = srv->accts; x; x = x->next)
		if (x->id == acct_id)
			a = x;
	struct conn *c = a ? pick_rx(srv, a) : NULL;
	if (!c)
		return -1;
	struct smpp_pdu pdu;
	static uint8_t enc[65536];
	char msgid[24], body[256];
	uint8_t ms = 0, err3[3];
	smpp_pdu_init(&pdu, SMPP_DELIVER_SM, 0);
	util_strlcpy(pdu.source_addr, PQgetvalue(res, row, 6), sizeof(pdu.source_addr));
	util_strlcpy(pdu.destination_addr, PQgetvalue(res, row, 7), sizeof(pdu.destination_addr));
	set_addr(pdu.source_addr, &pdu.source_addr_ton, &pdu.source_addr_npi);
	set_addr(pdu.destination_addr, &pdu.dest_addr_ton, &pdu.dest_addr_npi);
	if (strcmp(kind, "receipt") == 0) {
		const char *stat = smpps_stat_of(srv, PQgetvalue(res, row, 3), &ms);
		int registered = atoi(PQgetvalue(res, row, 4));
		if (registered == 2 && ms == SMPP_STATE_DELIVERED)
			return 0;   /* failures only were asked for */
		int err = atoi(PQgetvalue(res, row, 5));
		snprintf(msgid, sizeof(msgid), "%llx", key.rid);
		/* the first 20 characters of the text, as GSM-safe ASCII */
		char excerpt[21];
		const char *t = PQgetvalue(res, row, 8);
		size_t k = 0;
		for (; *t && k < 20; t++) {
			unsigned char ch = (unsigned char)*t;
			if ((ch & 0xC0) == 0x80)
				continue;
			excerpt[k++] = ch >= 0x20 && ch < 0x7f && ch != '@' && ch != '`' ? (char)ch : '?';
		}
		excerpt[k] = '\0';
		const char *sub_date = PQgetvalue(res, row, 9);
		int n = snprintf(body, sizeof(body), "id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%03d text:%s",
				 msgid, ms == SMPP_STATE_DELIVERED ? "001" : "000", sub_date[0] ? sub_date : PQgetvalue(res, row, 10),
				 PQgetvalue(res, row, 10), stat, err % 1000, excerpt);
		if (n < 0 || (size_t)n > 254)
			n = 254;
		pdu.esm_class = 0x04;
		pdu.data_coding = 0;
		memcpy(pdu.short_message, body, (size_t)n);
		pdu.sm_length = (uint8_t)n;
		smpp_tlv_add(&pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, msgid, (uint16_t)(strlen(msgid) + 1));
		smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_STATE, &ms, 1);
		if (ms != SMPP_STATE_DELIVERED && err > 0) {
			err3[0] = 3;   /* GSM */
			util_put_be16(err3 + 1, (uint16_t)err);
			smpp_tlv_add(&pdu, SMPP_TLV_NETWORK_ERROR_CODE, err3, 3);
		}
	} else {
		const char *t = PQgetvalue(res, row, 8);
		enum text_coding chosen;
		size_t units;
		long n = text_encode(t, strlen(t), TEXT_AUTO, enc, sizeof(enc), &chosen, &units);
		if (n < 0)
			return 0;   /* stored text we can't encode: nothing will change that */
		pdu.data_coding = (uint8_t)chosen;
		if (n <= 254) {
			memcpy(pdu.short_message, enc, (size_t)n);
			pdu.sm_length = (uint8_t)n;
		} else {
			smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_PAYLOAD, enc, (uint16_t)(n > 65000 ? 65000 : n));
		}
	}
	struct ob_key *tag = malloc(sizeof(*tag));
	if (!tag)
		return -1;
	*tag = key;
	if (smpp_session_request(c->s, &pdu, (uint64_t)(uintptr_t)tag) < 0) {
		free(tag);
		return -1;
	}
	a->outbox_in_flight++;
	c->ob_in_flight++;
	if (strcmp(kind, "receipt") == 0)
		srv->c.receipts_sent++;
	else
		srv->c.mo_forwarded++;
	return 1;
}

void smpps_ogroup_reset(struct ogroup *b)
{
	for (int i = 0; i < 2; i++) {
		free(b->lit[i]);
		b->lit[i] = NULL;
	}
	b->in_flight = 0;
}

static int cmp_ll(const void *x, const void *y)
{
	long long a = *(const long long *)x, b = *(const long long *)y;
	return a < b ? -1 : a > b;
}

static void lease_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct smpp_server *srv = job->arg;
	smpps_ogroup_reset(&srv->lease);
	if (err != STORE_OK) {
		if (err == STORE_SQL_ERROR)
			log_error("smpps", "ev=outbox_lease_failed err=\"%s\"", msg ? msg : "");
		srv->next_lease = ev_now(srv->loop) + 0.2;
		return;
	}
	int rows = PQntuples(job->res);
	if (rows == 0) {
		srv->next_lease = ev_now(srv->loop) + 0.2;   /* nothing waits: look again in a while */
		return;
	}
	/* oldest first: row numbers sorted by outbox id */
	long long *order = malloc((size_t)rows * 2 * sizeof(*order));
	if (!order)
		return;   /* the leases run out and they are sent again */
	for (int i = 0; i < rows; i++) {
		order[2 * i] = strtoll(PQgetvalue(job->res, i, 0), NULL, 10);
		order[2 * i + 1] = i;
	}
	qsort(order, (size_t)rows, 2 * sizeof(*order), cmp_ll);
	for (int i = 0; i < rows; i++) {
		int r = (int)order[2 * i + 1];
		struct ob_key k = { order[2 * i], strtoll(PQgetvalue(job->res, r, 11), NULL, 10) };
		int sent = outbox_send(srv, job->res, r, k);
		if (sent == 0)
			ob_queue(&srv->acked, &srv->n_acked, &srv->cap_acked, k);
		else if (sent < 0)
			ob_queue(&srv->released, &srv->n_released, &srv->cap_released, k);
	}
	free(order);
	srv->next_lease = 0;   /* more may be waiting: leased again as soon as the ESME makes room */
}

void smpps_outbox_lease(struct smpp_server *srv)
{
	if (srv->lease.in_flight || srv->stopping || !store_is_up(srv->store) || ev_now(srv->loop) < srv->next_lease)
		return;
	struct pgarr ids = {0}, lims = {0};
	for (struct acct *a = srv->accts; a; a = a->next) {
		if (!a->rx_binds)
			continue;
		unsigned room = 0;
		for (struct conn *c = srv->conns; c; c = c->next)
			if (c->acct == a)
				room += rx_room(c);
		if (room < 1)
			continue;
		pgarr_num(&ids, a->id, 0);
		pgarr_num(&lims, room > OUTBOX_BATCH ? OUTBOX_BATCH : room, 0);
	}
	if (ids.n == 0) {   /* no room: the answers that make some start the pump */
		pgarr_reset(&ids);
		pgarr_reset(&lims);
		return;
	}
	char *a = pgarr_take(&ids), *b = pgarr_take(&lims);
	if (!a || !b) {
		free(a);
		free(b);
		return;
	}
	struct ogroup *bt = &srv->lease;
	bt->lit[0] = a;
	bt->lit[1] = b;
	snprintf(bt->p_lease, sizeof(bt->p_lease), "%.3f", srv->cfg->smpps_receipt_retry);
	bt->params[0] = srv->node;
	bt->params[1] = a;
	bt->params[2] = b;
	bt->params[3] = bt->p_lease;
	bt->in_flight = 1;
	bt->job = (struct store_job){ .stmt = &smpp_server_stmt_outbox_lease, .nparams = 4, .params = bt->params,
				      .done = lease_done, .arg = srv };
	store_submit(srv->store, &bt->job);
}

static void ack_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct ogroup *bt = job->arg;
	if (err != STORE_OK)
		log_error("smpps", "ev=outbox_update_failed err=\"%s\"", msg ? msg : "");
	smpps_ogroup_reset(bt);
}

/* Acked rows -> delivered; rows not sent or lost with a link -> free for the next lease. */
void smpps_outbox_updates(struct smpp_server *srv)
{
	struct {
		struct ogroup *bt;
		struct ob_key **keys;
		size_t *n;
		const struct store_stmt *stmt;
	} w[2] = { { &srv->ack, &srv->acked, &srv->n_acked, &smpp_server_stmt_outbox_ack },
		   { &srv->release, &srv->released, &srv->n_released, &smpp_server_stmt_outbox_release } };
	for (int k = 0; k < 2; k++) {
		if (w[k].bt->in_flight || *w[k].n == 0)
			continue;
		struct pgarr ids = {0}, rids = {0};
		for (size_t i = 0; i < *w[k].n; i++) {
			pgarr_num(&ids, (*w[k].keys)[i].id, 0);
			pgarr_num(&rids, (*w[k].keys)[i].rid, (*w[k].keys)[i].rid == 0);
		}
		char *lit = pgarr_take(&ids), *rlit = pgarr_take(&rids);
		if (!lit || !rlit) {
			free(lit);
			free(rlit);
			continue;
		}
		*w[k].n = 0;
		w[k].bt->lit[0] = lit;
		w[k].bt->lit[1] = rlit;
		w[k].bt->params[0] = lit;
		w[k].bt->params[1] = rlit;
		w[k].bt->params[2] = srv->node;
		w[k].bt->in_flight = 1;
		w[k].bt->job = (struct store_job){ .stmt = w[k].stmt, .nparams = k == 0 ? 2 : 3,
						   .params = w[k].bt->params, .done = ack_done, .arg = w[k].bt,
						   .retry = 1 };
		store_submit(srv->store, &w[k].bt->job);
	}
}

/* --- MO from carriers ----------------------------------------------------------------------------- */

static void mo_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct mojob *m = job->arg;
	struct smpp_server *srv = m->srv;
	srv->jobs_in_flight--;
	if (err != STORE_OK)
		log_error("smpps", "ev=mo_store_failed err=\"%s\"", msg ? msg : "");
	else {
		srv->c.mo_received++;
		log_info("smpps", "ev=mo_stored id=%s route=%s src=%s dst=%s owner=%s opt_out=%s", PQgetvalue(job->res, 0, 0),
			 m->route, m->src, m->dst, PQgetvalue(job->res, 0, 1), PQgetvalue(job->res, 0, 2));
		srv->next_lease = 0;
	}
	if (m->done)
		m->done(m->ctx, err == STORE_OK ? 0 : 0x64 /* ESME_RX_T_APPN: the carrier sends it again */);
	free(m->route);
	free(m->text);
	free(m->keywords);
	free(m);
}

void smpp_server_mo(struct smpp_server *srv, const char *route, const struct smpp_pdu *pdu,
		    void (*done)(void *ctx, uint32_t status), void *ctx)
{
	const uint8_t *oct = pdu->short_message;
	size_t len = pdu->sm_length;
	const struct smpp_tlv *payload = smpp_tlv_find(pdu, SMPP_TLV_MESSAGE_PAYLOAD);
	if (len == 0 && payload) {
		oct = payload->value;
		len = payload->length;
	}
	if ((pdu->esm_class & 0x40) && len > 0 && (size_t)oct[0] + 1 <= len) {
		len -= (size_t)oct[0] + 1;
		oct += oct[0] + 1;
	}
	int coding = smpps_coding_of(pdu->data_coding);
	char *text = smpps_decode_text(oct, len, coding < 0 ? TEXT_LATIN1 : coding);
	struct mojob *m = calloc(1, sizeof(*m));
	struct pgarr kw = {0};
	for (size_t i = 0; i < srv->n_keywords; i++)
		pgarr_text(&kw, srv->keywords[i]);
	if (!m || !text || !(m->keywords = pgarr_take(&kw)) || !(m->route = strdup(route ? route : ""))) {
		if (m) {
			free(m->keywords);
			free(m);
		}
		pgarr_reset(&kw);
		char esc[64];
		util_escape(pdu->source_addr, strlen(pdu->source_addr), esc, sizeof(esc));
		log_warn("smpps", "ev=mo_unreadable route=%s src=\"%s\" dcs=0x%02x", route ? route : "-", esc,
			 pdu->data_coding);
		free(text);
		if (done)
			done(ctx, text ? 0x64 : 0);   /* unreadable: sending it again would not help */
		return;
	}
	m->srv = srv;
	m->done = done;
	m->ctx = ctx;
	m->text = text;
	/* addresses: printable ASCII only, else stored as "?" */
	util_strlcpy(m->src, util_valid_sender(pdu->source_addr) ? pdu->source_addr : "?", sizeof(m->src));
	util_strlcpy(m->dst, util_valid_sender(pdu->destination_addr) ? pdu->destination_addr : "?", sizeof(m->dst));
	char plus[21];
	if (util_msisdn(m->src, plus) == 0)
		memcpy(m->src, plus, sizeof(plus));
	snprintf(m->p_dcs, sizeof(m->p_dcs), "%u", pdu->data_coding);
	m->params[0] = m->route;
	m->params[1] = m->src;
	m->params[2] = m->dst;
	m->params[3] = m->text;
	m->params[4] = m->p_dcs;
	m->params[5] = m->keywords;
	m->job = (struct store_job){ .stmt = &stmt_mo, .nparams = 6, .params = m->params, .done = mo_done, .arg = m,
				     .retry = 1 };
	srv->jobs_in_flight++;
	store_submit(srv->store, &m->job);
}
