/*
 * batches.c: campaigns.  POST /v1/batches takes a JSON object with a
 * recipients array, or a CSV body (text/csv, template and options in the
 * query string), checks every row with batch_csv.c (a bad number, a
 * missing variable, a duplicate or an overlong text rejects that row alone,
 * reported by line), then loads the valid rows through the campaign intake
 * queue (intake.c, on a connection of its own) in chunks of BATCH_CHUNK
 * recipients (one messages row per chunk, all sharing batch_id), one chunk
 * at a time, and answers 202 only after the last chunk committed.
 * GET /v1/batches/{id} counts recipients by state (and marks the batch DONE
 * once all are final); POST /v1/batches/{id}/cancel
 * moves the not-yet-sent part to CANCELED.
 *
 * A CSV upload is streamed (batches_wants_stream): its records are read as
 * the bytes arrive (a partial record waits for the next bytes; a record is
 * at most BATCH_RECORD_MAX), the batch row is created with the first full
 * chunk, and while a chunk is with PostgreSQL the upload is paused, so a
 * file of any size costs one chunk of rows plus one input buffer.  A body
 * that fails late (over max_batch_body, broken framing, the client gone)
 * moves the batch to FAILED and cancels its committed recipients.  A JSON
 * body of at most max_body bytes is held whole by http.c and checked whole
 * before the batch row is created; a larger one (or one without a length)
 * is streamed like a CSV file through jstream.c: its members are read as
 * they come, and its recipients, which must then be the last member, one
 * element at a time.
 *
 * Owns the request's load state (struct load).  Never answers before the
 * commit, never shows a batch to another account.
 */
#include "batches.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "auth.h"
#include "jstream.h"
#include "log.h"
#include "msgjson.h"
#include "respond.h"
#include "recipient.h"
#include "stmts.h"
#include "util.h"

/* --- the HTTP side ------------------------------------------------------------ */

enum load_step { LOAD_AUTH, LOAD_CREATE, LOAD_CHUNK, LOAD_DONE, LOAD_RECANCEL, LOAD_FAIL, LOAD_GET, LOAD_CANCEL };

/* One request.  Owned by this module from batches_handle() until answered and every job returned. */
struct load {
	const struct door   *door;
	struct http_request *req;
	const struct config *cfg;
	long long            account_id;
	enum load_step       step;
	long long            batch_id;
	int                  answered;
	/* POST: the parsed request */
	int                  is_csv;
	int                  json_stream;   /* a JSON upload read as it arrives (jstream.c) */
	struct jstream       js;
	int                  array_done;    /* json_stream: the recipients member is over */
	int                  chunk_full;    /* json_stream: the element just read filled the chunk */
	json_t              *root;          /* JSON body, or the CSV query as an object */
	const char          *from, *text, *name;
	struct intake_opts   opts;
	struct batch_tpl     tpl;           /* JSON: the template */
	struct batch_csv     csv;           /* CSV: header and template */
	size_t               pos;           /* JSON: index of the next row */
	size_t               n_rows;        /* JSON: array size */
	/* CSV: bytes not yet read as records (streamed: owned; buffered: the request's body) */
	char                *ibuf;
	size_t               ioff, ilen, icap, iscan;
	int                  iquoted;       /* the scan at iscan is inside quotes */
	int                  ibuf_owned;
	size_t               line;          /* line of the record at ioff */
	int                  skipping;      /* inside a record longer than BATCH_RECORD_MAX */
	size_t               skip_line;
	int                  header_done, body_over, paused, finishing, created;
	int                  fail_status;   /* answer after the FAILED statement (0: already answered) */
	enum intake_refusal  refused;       /* the account's limits stopped the loading (sql/018) */
	int                  refused_wait;  /* its Retry-After seconds */
	int                  depth, dead;   /* inside load_pump(); load_free() asked meanwhile */
	size_t               total, rejected_count;
	json_t              *rejected;
	int                  bad;           /* answered after auth */
	const char          *bad_field;
	char                 bad_msg[256];
	/* the chunk in flight */
	char               (*to)[21];
	char               **texts;
	size_t              *offs;          /* texts as offsets into arena while filling */
	int                  has_text;
	size_t               n_chunk, loaded;
	char                *arena;
	size_t               arena_len, arena_cap;
	struct intake_req    chunk;         /* the chunk, on the campaign intake queue */
	/* other statements */
	struct store_job     job;
	const char          *params[4];
	char                 p_id[24], p_account[24], p_total[24];
	char                 err[160];
};

static void load_free(struct load *l)
{
	if (l->depth) {   /* load_pump() frees it when it returns */
		l->dead = 1;
		return;
	}
	if (l->ibuf_owned)
		free(l->ibuf);
	free(l->offs);
	if (l->root)
		json_decref(l->root);
	if (l->rejected)
		json_decref(l->rejected);
	batch_csv_close(&l->csv);
	jstream_free(&l->js);
	free(l->to);
	if (l->texts)
		free(l->texts);
	free(l->arena);
	free(l);
}

static void load_error(struct load *l, enum store_error e, const char *err)
{
	if (l->answered)
		return;
	l->answered = 1;
	if (e == STORE_UNAVAILABLE) {
		respond_error(l->req, 503, "unavailable", NULL, "database unavailable, retry later");
	} else {
		log_error("batches", "ev=store_error batch=%lld err=\"%s\"", l->batch_id, err ? err : "");
		respond_error(l->req, 500, "internal", NULL, "internal error");
	}
}

static void reject(struct load *l, size_t where, const char *field, const char *msg)
{
	l->rejected_count++;
	if (json_array_size(l->rejected) < BATCH_REJECTED_SHOWN)
		json_array_append_new(l->rejected, json_pack("{s:I, s:s, s:s}", l->is_csv ? "line" : "index",
							     (json_int_t)where, "field", field, "message", msg));
}

/*
 * JSON: the next valid recipient from the cursor: 1 with to and *text
 * (NULL: the message's text), 0 at the end, -1 out of memory.  Bad rows are
 * counted (and listed) when `count` is set: the validation pass.
 */
/*
 * One recipients element: 1 valid (to, *text: its rendered text or NULL),
 * 0 refused (*field and msg say why), -1 out of memory.
 */
static int check_row(struct load *l, json_t *row, char to[21], const char **text, const char **field, char *msg,
		     size_t msglen)
{
	const char *num = json_string_value(json_object_get(row, "to"));
	*field = "to";
	if (!json_is_object(row)) {
		snprintf(msg, msglen, "must be an object with \"to\"");
		return 0;
	}
	if (!num || batch_msisdn(num, strlen(num), to) < 0) {
		snprintf(msg, msglen, "not a phone number of 3 to 20 digits");
		return 0;
	}
	const char *vals[BATCH_TPL_MAX_VARS];
	size_t lens[BATCH_TPL_MAX_VARS];
	char nums[BATCH_TPL_MAX_VARS][32];
	for (size_t v = 0; v < l->tpl.nvars; v++) {
		json_t *x = json_object_get(row, l->tpl.vars[v]);
		if (json_is_string(x) && !memchr(json_string_value(x), '\0', json_string_length(x))) {
			vals[v] = json_string_value(x);
			lens[v] = json_string_length(x);
		} else if (json_is_integer(x) || json_is_real(x)) {
			int n = json_is_integer(x)
				? snprintf(nums[v], sizeof(nums[v]), "%" JSON_INTEGER_FORMAT, json_integer_value(x))
				: snprintf(nums[v], sizeof(nums[v]), "%.15g", json_real_value(x));
			vals[v] = nums[v];
			lens[v] = n > 0 ? (size_t)n : 0;
		} else {
			*field = l->tpl.vars[v];
			snprintf(msg, msglen, "missing, or not a string or number, but the text uses {%s}", *field);
			return 0;
		}
	}
	if (l->tpl.nvars && batch_tpl_render(&l->tpl, vals, lens, l->csv.text, l->cfg->max_text + 1) < 0) {
		*field = "text";
		snprintf(msg, msglen, "the rendered text is longer than %zu bytes", l->cfg->max_text);
		return 0;
	}
	*text = l->tpl.nvars ? l->csv.text : NULL;
	int fresh = batch_seen_add(&l->csv.seen, to);
	if (fresh < 0)
		return -1;
	if (!fresh) {
		*field = "to";
		snprintf(msg, msglen, "duplicate of an earlier row");
		return 0;
	}
	return 1;
}

static int next_row(struct load *l, char to[21], const char **text, int count)
{
	char msg[160];
	const char *field = NULL;
	json_t *list = json_object_get(l->root, "recipients");
	while (l->pos < l->n_rows) {
		size_t at = l->pos++;
		int r = check_row(l, json_array_get(list, at), to, text, &field, msg, sizeof(msg));
		if (r != 0)
			return r;
		if (count)
			reject(l, at, field, msg);
	}
	return 0;
}

/* JSON: back to the first row, for the loading pass. */
static void rewind_rows(struct load *l)
{
	l->pos = 0;
	batch_seen_reset(&l->csv.seen);
}

static void step_done(struct store_job *job, enum store_error e, const char *err);

/* The error code of a failed upload's status: 413 too_large, 503 unavailable, else bad_request. */
static const char *fail_code(int status)
{
	return status == 413 ? "too_large" : status == 503 ? "unavailable" : "bad_request";
}

static void submit(struct load *l, enum load_step step, const struct store_stmt *stmt, int n)
{
	l->step = step;
	l->job = (struct store_job){ .stmt = stmt, .nparams = n, .params = l->params, .done = step_done, .arg = l };
	store_submit(l->door->store, &l->job);
}

static void fail_batch(struct load *l, const char *why)
{
	util_strlcpy(l->err, why, sizeof(l->err));
	snprintf(l->p_id, sizeof(l->p_id), "%lld", l->batch_id);
	l->params[0] = l->p_id;
	l->params[1] = NULL;
	l->params[2] = "FAILED";
	l->params[3] = l->err;
	submit(l, LOAD_FAIL, &recipient_stmt_batch_cancel, 4);
}

static void chunk_done(struct intake_req *r, enum store_error e, const char *err, PGresult *res, int first, int n);
static int load_pump(struct load *l);

/* Adds one recipient to the chunk being filled.  0 / -1 (out of memory). */
static int chunk_add(struct load *l, const char to[21], const char *text)
{
	memcpy(l->to[l->n_chunk], to, 21);
	if (text) {
		size_t n = strlen(text) + 1;
		if (l->arena_cap - l->arena_len < n) {
			size_t cap = (l->arena_cap ? l->arena_cap * 2 : 64 * 1024) + n;
			char *a = realloc(l->arena, cap);
			if (!a)
				return -1;
			l->arena = a;
			l->arena_cap = cap;
		}
		memcpy(l->arena + l->arena_len, text, n);
		l->offs[l->n_chunk] = l->arena_len;
		l->arena_len += n;
		l->has_text = 1;
	}
	l->n_chunk++;
	return 0;
}

/* The full (or last) chunk goes to the campaign intake queue (its own connection); chunk_done() follows. */
static void chunk_send(struct load *l)
{
	for (size_t i = 0; l->has_text && i < l->n_chunk; i++)
		l->texts[i] = l->arena + l->offs[i];
	l->opts.batch_id = l->batch_id;
	l->chunk.msg = (struct intake_msg){ .account_id = l->account_id, .from = l->from, .text = l->text,
					  .n_to = l->n_chunk, .to = (const char (*)[21])l->to,
					  .texts = l->has_text ? (const char *const *)l->texts : NULL, .opts = &l->opts };
	l->chunk.done = chunk_done;
	l->chunk.arg = l;
	l->step = LOAD_CHUNK;
	/* a long load never queues API requests and acks behind it */
	const struct door *d = l->door;
	intake_submit(d->bulk_intake ? d->bulk_intake : d->intake, &l->chunk);
}

/* The "loaded" statement: the total is what the chunks stored. */
static void load_done(struct load *l)
{
	snprintf(l->p_id, sizeof(l->p_id), "%lld", l->batch_id);
	snprintf(l->p_total, sizeof(l->p_total), "%zu", l->loaded);
	l->params[0] = l->p_id;
	l->params[1] = l->p_total;
	submit(l, LOAD_DONE, &stmts_batch_loaded, 2);
}

/* JSON: fills and submits the next chunk; or, when none is left, the "loaded" statement. */
static void next_chunk(struct load *l)
{
	while (l->n_chunk < BATCH_CHUNK) {
		char to[21];
		const char *text = NULL;
		int r = next_row(l, to, &text, 0);
		if (r > 0 && chunk_add(l, to, text) < 0)
			r = -1;
		if (r < 0) {
			load_error(l, STORE_SQL_ERROR, "out of memory");
			fail_batch(l, "out of memory while loading");
			return;
		}
		if (r == 0)
			break;
	}
	if (l->n_chunk == 0)
		load_done(l);
	else
		chunk_send(l);
}

/* The chunk is committed (the queue told the engine and sent invitations), or it failed. */
static void chunk_done(struct intake_req *r, enum store_error e, const char *err, PGresult *res, int first, int n)
{
	struct load *l = r->arg;
	if (e != STORE_OK) {
		load_error(l, e, err);
		fail_batch(l, e == STORE_UNAVAILABLE ? "database unavailable while loading" : "statement failed while loading");
		return;
	}
	int wait;
	enum intake_refusal why = intake_refusal_of(res, first, n, &wait);
	l->n_chunk = 0;
	l->arena_len = 0;
	l->has_text = 0;
	if (why != INTAKE_ADMITTED) {
		/* what was loaded stays (it is paid for and on its way); the rest is not read */
		log_info("batches", "ev=refused batch=%lld account=%lld why=%s loaded=%zu", l->batch_id, l->account_id,
			 intake_refusal_name(why), l->loaded);
		l->refused = why;
		l->refused_wait = wait;
		l->finishing = 1;
		load_done(l);
		return;
	}
	l->loaded += (size_t)n;
	l->step = LOAD_AUTH;
	if (l->is_csv || l->json_stream)
		load_pump(l);
	else
		next_chunk(l);
}

static void answer_loaded(struct load *l, const char *state)
{
	if (l->answered)
		return;
	l->answered = 1;
	log_info("batches", "ev=loaded batch=%lld account=%lld total=%zu rejected=%zu state=%s", l->batch_id,
		 l->account_id, l->loaded, l->rejected_count, state);
	json_t *rej = l->rejected;
	l->rejected = NULL;
	if (l->refused != INTAKE_ADMITTED) {
		respond_refused(l->req, l->refused, l->refused_wait,
				    json_pack("{s:I, s:s, s:I, s:I, s:o}", "id", (json_int_t)l->batch_id, "state", state,
					      "total", (json_int_t)l->loaded, "rejected_count",
					      (json_int_t)l->rejected_count, "rejected", rej));
		return;
	}
	respond_json(l->req, 202, NULL,
			 json_pack("{s:I, s:s, s:I, s:I, s:o}", "id", (json_int_t)l->batch_id, "state", state,
				   "total", (json_int_t)l->loaded, "rejected_count", (json_int_t)l->rejected_count,
				   "rejected", rej));
}

static void step_done(struct store_job *job, enum store_error e, const char *err)
{
	struct load *l = job->arg;
	PGresult *res = job->res;
	if (e != STORE_OK) {
		load_error(l, e, err);
		if (l->step == LOAD_CREATE || l->step == LOAD_FAIL || l->step == LOAD_GET || l->step == LOAD_CANCEL ||
		    l->step == LOAD_RECANCEL) {
			load_free(l);
			return;
		}
		fail_batch(l, "database error at the end of loading");
		return;
	}
	switch (l->step) {
	case LOAD_CREATE:
		l->batch_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		l->created = 1;
		log_info("batches", "ev=loading batch=%lld account=%lld total=%zu", l->batch_id, l->account_id, l->total);
		if (l->is_csv || l->json_stream)
			chunk_send(l);
		else
			next_chunk(l);
		return;
	case LOAD_DONE: {
		const char *state = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "RUNNING";
		answer_loaded(l, state);
		if (strcmp(state, "CANCELED") == 0) {
			/* canceled while loading: the chunks loaded after the cancel go too */
			l->params[0] = l->p_id;
			l->params[1] = NULL;
			l->params[2] = "CANCELED";
			l->params[3] = "batch canceled";
			submit(l, LOAD_RECANCEL, &recipient_stmt_batch_cancel, 4);
			return;
		}
		load_free(l);
		return;
	}
	case LOAD_FAIL:
		log_warn("batches", "ev=load_failed batch=%lld loaded=%zu err=\"%s\"", l->batch_id, l->loaded, l->err);
		if (!l->answered) {   /* a late upload failure: answered once its rows are canceled */
			l->answered = 1;
			respond_error(l->req, l->fail_status > 0 ? l->fail_status : 400,
					  fail_code(l->fail_status), NULL, l->err);
		}
		load_free(l);
		return;
	case LOAD_GET:
		if (PQntuples(res) != 1) {
			respond_error(l->req, 404, "not_found", NULL, "no such batch");
		} else {
			respond_json_text(l->req, 200, NULL, PQgetvalue(res, 0, 0));
		}
		load_free(l);
		return;
	case LOAD_CANCEL:
		if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
			respond_error(l->req, 404, "not_found", NULL, "no such batch");
		} else {
			log_info("batches", "ev=canceled batch=%lld account=%lld recipients=%s", l->batch_id,
				 l->account_id, PQgetvalue(res, 0, 2));
			respond_json(l->req, 200, NULL,
					 json_pack("{s:I, s:s, s:b, s:I}", "id", (json_int_t)l->batch_id,
						   "state", PQgetvalue(res, 0, 0), "changed", strcmp(PQgetvalue(res, 0, 1), "0") != 0,
						   "canceled", (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10)));
		}
		load_free(l);
		return;
	case LOAD_RECANCEL:
	default:
		load_free(l);
		return;
	}
}

/* Percent-decodes one query value ('+' is a space, as HTML forms send it).  0 / -1. */
static int query_value(const char *in, size_t len, char *out, size_t outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%') {
			if (i + 2 >= len ||
			    !isxdigit((unsigned char)in[i + 1]) || !isxdigit((unsigned char)in[i + 2]))
				return -1;
			char hex[3] = { in[i + 1], in[i + 2], '\0' };
			c = (unsigned char)strtol(hex, NULL, 16);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == 0 || n + 1 >= outlen)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* The CSV query string as the JSON object the options parser reads.  0, or -1 with l->bad_*. */
static int query_object(struct load *l)
{
	static const char *const numeric[] = { "push_timeout", "validity" };
	l->root = json_object();
	const char *q = l->req->query;
	char *val = malloc(l->cfg->max_text * 6 + 1024);
	if (!l->root || !val) {
		free(val);
		snprintf(l->bad_msg, sizeof(l->bad_msg), "out of memory");
		return -1;
	}
	size_t vcap = l->cfg->max_text * 6 + 1024;
	while (q && *q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		char key[32];
		if (klen == 0 || klen >= sizeof(key)) {
			l->bad_field = "query";
			snprintf(l->bad_msg, sizeof(l->bad_msg), "unknown query parameter");
			free(val);
			return -1;
		}
		memcpy(key, q, klen);
		key[klen] = '\0';
		const char *v = eq ? eq + 1 : q + len;
		l->bad_field = json_object_get(l->root, key) ? "query" : key;
		if (json_object_get(l->root, key) || query_value(v, (size_t)(q + len - v), val, vcap) < 0 ||
		    !batch_text_ok(val, strlen(val))) {
			snprintf(l->bad_msg, sizeof(l->bad_msg), "%s: repeated, badly percent-encoded or not UTF-8 text", key);
			free(val);
			return -1;
		}
		json_t *j = NULL;
		for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++) {
			double d;
			if (strcmp(key, numeric[i]) == 0 && util_parse_double(val, -1e18, 1e18, &d) == 0)
				j = json_real(d);
		}
		if (!j && strcmp(key, "channels") == 0) {
			j = json_array();
			for (char *s = val, *tok; (tok = strsep(&s, ","));)
				json_array_append_new(j, json_string(tok));
		}
		if (!j)
			j = json_string(val);
		json_object_set_new(l->root, key, j);
		q += len;
		if (*q == '&')
			q++;
	}
	free(val);
	return 0;
}

/* The longest member or element of a streamed JSON upload: a text, its template, a row's variables. */
#define JSON_VALUE_MAX(cfg) ((cfg)->max_text * 6 + 64 * 1024)

static int parse_members(struct load *l);

/* from, text, name, options; then the CSV header or the recipients array.  0, or -1 with l->bad_*. */
static int parse_post(struct load *l)
{
	const char *ctype = http_header(l->req, "Content-Type");
	l->is_csv = ctype && strncasecmp(ctype, "text/csv", 8) == 0;
	l->bad_field = NULL;
	if (l->is_csv) {
		if (query_object(l) < 0)
			return -1;
	} else {
		json_error_t jerr;
		if (ctype && strncasecmp(ctype, "application/json", 16) != 0) {
			l->bad_field = "Content-Type";
			snprintf(l->bad_msg, sizeof(l->bad_msg), "send application/json or text/csv");
			return -1;
		}
		if (l->req->body_streamed) {   /* the members come with the body: checked when recipients begins */
			l->json_stream = 1;
			l->root = json_object();
			if (!l->root || jstream_init(&l->js, "recipients", JSON_VALUE_MAX(l->cfg)) < 0) {
				snprintf(l->bad_msg, sizeof(l->bad_msg), "out of memory");
				return -1;
			}
			return 0;
		}
		l->root = json_loadb(l->req->body, l->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
		if (!l->root || !json_is_object(l->root)) {
			snprintf(l->bad_msg, sizeof(l->bad_msg), "invalid JSON (line %d column %d: %s): the body must be an object",
				 jerr.line, jerr.column, l->root ? "not an object" : jerr.text);
			return -1;
		}
	}
	return parse_members(l);
}

/* from, text, name and the options of l->root; the recipients array when held whole.  0, or -1 with l->bad_*. */
static int parse_members(struct load *l)
{
	json_t *from = json_object_get(l->root, "from"), *text = json_object_get(l->root, "text");
	json_t *name = json_object_get(l->root, "name");
	l->bad_field = "from";
	const char *f = json_string_value(from);
	size_t flen = f ? strlen(f) : 0;
	int ok = flen >= 1 && flen <= 20;
	for (size_t i = 0; ok && i < flen; i++)
		ok = f[i] >= 0x20 && f[i] <= 0x7e;
	if (!ok) {
		snprintf(l->bad_msg, sizeof(l->bad_msg), "from must be a string of 1 to 20 printable ASCII characters");
		return -1;
	}
	l->from = f;
	l->bad_field = "text";
	l->text = json_string_value(text);
	if (!l->text || !l->text[0] || json_string_length(text) > l->cfg->max_text ||
	    memchr(l->text, '\0', json_string_length(text))) {
		snprintf(l->bad_msg, sizeof(l->bad_msg), "text must be a non-empty string of at most %zu bytes",
			 l->cfg->max_text);
		return -1;
	}
	l->bad_field = "name";
	if (name && (!json_is_string(name) || json_string_length(name) > 200 ||
		     !batch_text_ok(json_string_value(name), json_string_length(name)))) {
		snprintf(l->bad_msg, sizeof(l->bad_msg), "name must be a string of at most 200 bytes");
		return -1;
	}
	l->name = name ? json_string_value(name) : NULL;
	if (msgjson_options(l->root, l->cfg, &l->opts, &l->bad_field, l->bad_msg, sizeof(l->bad_msg)) < 0)
		return -1;
	l->opts.source = "batch";
	l->bad_field = "text";
	if (batch_tpl_compile(&l->tpl, l->text, l->bad_msg, sizeof(l->bad_msg)) < 0)
		return -1;
	if (l->json_stream) {   /* the rows come one by one (json_event) */
		l->csv.text = malloc(l->cfg->max_text + 1);
		if (!l->csv.text) {
			snprintf(l->bad_msg, sizeof(l->bad_msg), "out of memory");
			return -1;
		}
	} else if (!l->is_csv) {   /* CSV: the header and the rows are read by load_pump() */
		json_t *list = json_object_get(l->root, "recipients");
		l->bad_field = "recipients";
		if (!json_is_array(list) || json_array_size(list) == 0) {
			snprintf(l->bad_msg, sizeof(l->bad_msg), "recipients must be a non-empty array of {\"to\": ...} objects");
			return -1;
		}
		l->n_rows = json_array_size(list);
		l->csv.text = malloc(l->cfg->max_text + 1);
		if (!l->csv.text) {
			snprintf(l->bad_msg, sizeof(l->bad_msg), "out of memory");
			return -1;
		}
	}
	if (l->tpl.nvars && strcmp(l->opts.purpose, "AD") == 0) {
		l->bad_field = "text";
		snprintf(l->bad_msg, sizeof(l->bad_msg), "ads take one fixed text: {variables} are not allowed with purpose AD");
		return -1;
	}
	if (l->tpl.nvars && l->opts.sms_text) {
		l->bad_field = "sms_text";
		snprintf(l->bad_msg, sizeof(l->bad_msg), "sms_text cannot be combined with a text using {variables}");
		return -1;
	}
	return 0;
}

/* --- CSV, read as it arrives ------------------------------------------------- */

static void batch_create(struct load *l);

/* Answers a campaign refused whole (nothing was stored) and frees it. */
static void refuse_whole(struct load *l, const char *field, const char *msg)
{
	l->answered = 1;
	respond_error(l->req, 400, "invalid_field", field, msg);
	load_free(l);
}

/* The upload failed after rows may have been stored: FAILED, committed rows canceled, then answered. */
static void fail_upload(struct load *l, int status, const char *why)
{
	log_warn("batches", "ev=upload_failed batch=%lld status=%d loaded=%zu why=\"%s\"", l->batch_id, status,
		 l->loaded, why);
	if (!l->created) {
		l->answered = 1;
		respond_error(l->req, status > 0 ? status : 400, fail_code(status), NULL,
				  why);
		load_free(l);
		return;
	}
	l->fail_status = status;
	l->finishing = 1;
	fail_batch(l, why);
}

/*
 * The next record of the CSV input: 1 with *rec (rl bytes, no line end)
 * starting on line *at; 2 when a record longer than BATCH_RECORD_MAX
 * ended (its bytes were dropped as they came); 0 when more bytes are
 * needed (or, once the body is over, at the end).
 */
static int take_record(struct load *l, const char **rec, size_t *rl, size_t *at)
{
	const char *b = l->ibuf;
	size_t i = l->iscan;
	int q = l->iquoted;
	for (; i < l->ilen; i++) {
		if (b[i] == '"')
			q = !q;
		else if (b[i] == '\n' && !q)
			break;
	}
	if (i == l->ilen && !l->body_over) {
		if (i - l->ioff > BATCH_RECORD_MAX) {   /* overlong: drop it as it comes, report it at its end */
			if (!l->skipping)
				l->skip_line = l->line;
			l->skipping = 1;
			for (size_t k = l->ioff; k < i; k++)
				l->line += b[k] == '\n';
			l->ioff = i;
		}
		l->iscan = i;
		l->iquoted = q;
		return 0;
	}
	if (i == l->ilen && l->ioff == l->ilen && !l->skipping)
		return 0;   /* the end, after a line end */
	size_t start = l->ioff, next = i < l->ilen ? i + 1 : i;
	*at = l->skipping ? l->skip_line : l->line;
	for (size_t k = start; k < next; k++)
		l->line += b[k] == '\n';
	size_t len = i - start;
	if (len && b[i - 1] == '\r')
		len--;
	l->ioff = l->iscan = next;
	l->iquoted = 0;
	if (l->skipping || len > BATCH_RECORD_MAX) {
		l->skipping = 0;
		return 2;
	}
	*rec = b + start;
	*rl = len;
	return 1;
}

/* A streamed upload's full (or last) chunk: stored, or the batch row first with the first one. */
static void chunk_or_create(struct load *l)
{
	if (l->created) {
		chunk_send(l);
	} else {
		l->total = l->n_chunk;
		batch_create(l);
	}
}

/* The body is read: the last chunk, or the "loaded" statement; or 400 when nothing was valid. */
static void finish_upload(struct load *l)
{
	if (!l->header_done) {
		if (l->json_stream)
			refuse_whole(l, "recipients", "recipients must be a non-empty array of {\"to\": ...} objects");
		else
			refuse_whole(l, "csv", "the body is empty: a header line with a 'to' column is required");
		return;
	}
	if (l->n_chunk) {   /* the last chunk; after its commit this runs again */
		chunk_or_create(l);
		return;
	}
	if (!l->created) {
		json_t *rej = l->rejected;
		l->rejected = NULL;
		l->answered = 1;
		respond_json(l->req, 400, NULL,
				 json_pack("{s:{s:s, s:s, s:s}, s:I, s:o}", "error", "code", "invalid_field", "field",
					   "recipients", "message", "no valid recipient: nothing was stored",
					   "rejected_count", (json_int_t)l->rejected_count, "rejected", rej));
		load_free(l);
		return;
	}
	l->finishing = 1;
	load_done(l);
}

/* --- JSON, read as it arrives ------------------------------------------------ */

/* jstream.c's events: members into l->root, then the rows into chunks.  0 go on, 1 a chunk is full, -1 answered. */
static int json_event(void *arg, enum jstream_event ev, const char *key, const char *raw, size_t len)
{
	struct load *l = arg;
	char msg[160];
	json_error_t jerr;
	switch (ev) {
	case JSTREAM_MEMBER: {
		if (l->header_done) {
			snprintf(msg, sizeof(msg), "in an upload of more than %zu bytes, recipients must be the last member",
				 l->cfg->max_body);
			refuse_whole(l, key, msg);
			return -1;
		}
		json_t *v = json_loadb(raw, len, JSON_DECODE_ANY, &jerr);
		if (!v || json_object_get(l->root, key)) {
			snprintf(msg, sizeof(msg), v ? "repeated member" : "invalid JSON value (%.100s)", jerr.text);
			json_decref(v);
			refuse_whole(l, key, msg);
			return -1;
		}
		json_object_set_new(l->root, key, v);
		return 0;
	}
	case JSTREAM_ARRAY_START:
		l->header_done = 1;   /* what the rows need is known now */
		if (parse_members(l) < 0) {
			snprintf(msg, sizeof(msg), " (in an upload of more than %zu bytes, recipients must be the last member)",
				 l->cfg->max_body);
			util_strlcpy(l->bad_msg + strlen(l->bad_msg), msg, sizeof(l->bad_msg) - strlen(l->bad_msg));
			refuse_whole(l, l->bad_field, l->bad_msg);
			return -1;
		}
		return 0;
	case JSTREAM_ELEMENT: {
		size_t at = l->pos++;
		json_t *row = json_loadb(raw, len, JSON_DECODE_ANY, &jerr);
		char to[21];
		const char *text = NULL, *field = "to";
		int r = row ? check_row(l, row, to, &text, &field, msg, sizeof(msg)) : 0;
		if (!row)
			snprintf(msg, sizeof(msg), "invalid JSON (%.100s)", jerr.text);
		if (r > 0 && chunk_add(l, to, text) < 0)
			r = -1;
		json_decref(row);
		if (r < 0) {
			fail_upload(l, 503, "out of memory while loading");
			return -1;
		}
		if (r == 0) {
			reject(l, at, field, msg);
			return 0;
		}
		if (l->n_chunk < BATCH_CHUNK)
			return 0;
		l->chunk_full = 1;
		return 1;
	}
	case JSTREAM_ARRAY_END:
		l->array_done = 1;
		return 0;
	}
	return 0;
}

/* The JSON reader refused the document (json_event answered what it refused itself). */
static void json_broken(struct load *l)
{
	char msg[200];
	snprintf(msg, sizeof(msg), "invalid JSON at byte %zu: %s", l->js.err_at, l->js.err);
	if (l->created)
		fail_upload(l, 400, msg);
	else
		refuse_whole(l, "body", msg);
}

/* load_pump for a streamed JSON upload. */
static void json_pump(struct load *l)
{
	while (!l->answered && !l->finishing && l->step != LOAD_CHUNK && l->step != LOAD_CREATE) {
		if (l->ioff < l->ilen) {
			long used = jstream_feed(&l->js, l->ibuf + l->ioff, l->ilen - l->ioff, json_event, l);
			if (used < 0) {
				if (!l->answered && !l->finishing)
					json_broken(l);
				break;
			}
			l->ioff += (size_t)used;
			l->iscan = l->ioff;
			if (l->chunk_full) {
				l->chunk_full = 0;
				chunk_or_create(l);
				break;
			}
			continue;
		}
		if (l->body_over) {
			if (jstream_finish(&l->js) < 0)
				json_broken(l);
			else
				finish_upload(l);
		} else if (l->paused) {
			l->paused = 0;
			http_request_resume(l->req);
		}
		break;
	}
}

/*
 * Reads records until a chunk is full (then submits it and waits for its
 * commit, the upload paused), the input runs dry (then asks http.c for
 * more) or the body is over (then finishes).  -1 when l was freed.
 */
static int load_pump(struct load *l)
{
	l->depth++;
	if (l->json_stream)
		json_pump(l);
	while (!l->json_stream && !l->answered && !l->finishing && l->step != LOAD_CHUNK && l->step != LOAD_CREATE) {
		const char *rec = NULL;
		size_t rl = 0, at = 0;
		int got = take_record(l, &rec, &rl, &at);
		if (got == 0) {
			if (l->body_over) {
				finish_upload(l);
			} else if (l->paused) {
				l->paused = 0;
				http_request_resume(l->req);
			}
			break;
		}
		char msg[160];
		const char *field = "csv";
		if (!l->header_done) {
			if (got == 2 || batch_csv_open(&l->csv, rec, rl, l->text, l->cfg->max_text, &field, msg,
						      sizeof(msg)) < 0) {
				if (got == 2)
					snprintf(msg, sizeof(msg), "the header (line 1) is longer than %d bytes", BATCH_RECORD_MAX);
				refuse_whole(l, field, msg);
				break;
			}
			l->header_done = 1;
			continue;
		}
		if (got == 2) {
			snprintf(msg, sizeof(msg), "record longer than %d bytes (an unclosed quote?)", BATCH_RECORD_MAX);
			reject(l, at, "csv", msg);
			continue;
		}
		char to[21];
		const char *text = NULL;
		enum batch_row r = batch_csv_row(&l->csv, rec, rl, to, &text, &field, msg, sizeof(msg));
		if (r == BATCH_ROW_BAD)
			reject(l, at, field, msg);
		if (r == BATCH_ROW_NOMEM || (r == BATCH_ROW_OK && chunk_add(l, to, text) < 0)) {
			fail_upload(l, 503, "out of memory while loading");
			break;
		}
		if (l->n_chunk == BATCH_CHUNK) {
			chunk_or_create(l);
			break;
		}
	}
	if (--l->depth == 0 && l->dead) {
		l->dead = 0;
		load_free(l);
		return -1;
	}
	return 0;
}

/* http.c sink: more bytes of a streamed CSV upload. */
static int csv_data(void *arg, const char *data, size_t len)
{
	struct load *l = arg;
	if (l->answered || l->finishing)
		return HTTP_SINK_PAUSE;   /* failing: the answer ends the upload */
	if (l->ioff > 0) {   /* drop what was read */
		memmove(l->ibuf, l->ibuf + l->ioff, l->ilen - l->ioff);
		l->ilen -= l->ioff;
		l->iscan -= l->ioff;
		l->ioff = 0;
	}
	if (l->icap - l->ilen < len) {
		size_t cap = l->ilen + len + 4096;
		char *b = realloc(l->ibuf, cap);
		if (!b) {
			fail_upload(l, 503, "out of memory while loading");
			return HTTP_SINK_MORE;
		}
		l->ibuf = b;
		l->icap = cap;
		l->ibuf_owned = 1;
	}
	memcpy(l->ibuf + l->ilen, data, len);
	l->ilen += len;
	if (load_pump(l) < 0)
		return HTTP_SINK_MORE;
	if (l->step == LOAD_CHUNK || l->step == LOAD_CREATE) {   /* with PostgreSQL: wait for the commit */
		l->paused = 1;
		return HTTP_SINK_PAUSE;
	}
	return HTTP_SINK_MORE;
}

/* http.c sink: the upload is over (status 0) or failed (413, 400, -1: the client went away). */
static void csv_end(void *arg, int status)
{
	struct load *l = arg;
	if (l->answered || l->finishing)
		return;
	if (status != 0) {
		fail_upload(l, status, status == 413 ? "the upload is larger than max_batch_body"
				       : status < 0 ? "the client went away during the upload" : "broken upload framing");
		return;
	}
	l->body_over = 1;
	load_pump(l);
}

int batches_wants_stream(const struct http_request *req, void *arg)
{
	const struct door *door = arg;
	if (req->method != HTTP_M_POST || strcmp(req->path, "/v1/batches") != 0)
		return 0;
	const char *ctype = http_header(req, "Content-Type");
	if (ctype && strncasecmp(ctype, "text/csv", 8) == 0)
		return 1;
	if (!door || (ctype && strncasecmp(ctype, "application/json", 16) != 0))
		return 0;
	/* JSON beyond max_body (or of unknown length) streams too; a smaller one is held whole */
	const char *cl = http_header(req, "Content-Length");
	long n;
	return !cl || util_parse_long(cl, 0, 0x7fffffffffffffffL, &n) < 0 ||
	       (unsigned long)n > door->cfg->max_body;
}

static void post_authed(void *arg, long long account_id, int operator)
{
	struct load *l = arg;
	(void)operator;
	if (account_id <= 0) {
		load_free(l);
		return;
	}
	l->account_id = account_id;
	if (l->bad) {
		respond_error(l->req, 400, "invalid_field", l->bad_field, l->bad_msg);
		load_free(l);
		return;
	}
	l->to = calloc(BATCH_CHUNK, sizeof(*l->to));
	l->texts = calloc(BATCH_CHUNK, sizeof(*l->texts));
	l->offs = calloc(BATCH_CHUNK, sizeof(*l->offs));
	if (!l->to || !l->texts || !l->offs) {
		respond_error(l->req, 503, "unavailable", NULL, "out of memory");
		load_free(l);
		return;
	}
	if (l->is_csv || l->json_stream) {
		l->line = 1;
		l->step = LOAD_AUTH;   /* LOAD_CREATE / LOAD_CHUNK: a statement in flight */
		if (l->req->body_streamed) {
			if (http_request_set_sink(l->req, csv_data, csv_end, l) < 0) {
				respond_error(l->req, 400, "bad_request", NULL, "the upload is gone");
				load_free(l);
			}
			return;
		}
		l->ibuf = (char *)l->req->body;   /* buffered: read in place */
		l->ilen = l->req->body_len;
		l->body_over = 1;
		load_pump(l);
		return;
	}
	/* JSON validation pass: count the valid rows, list the bad ones */
	char to[21];
	const char *text;
	int r;
	while ((r = next_row(l, to, &text, 1)) > 0)
		l->total++;
	if (r < 0) {
		respond_error(l->req, 503, "unavailable", NULL, "out of memory");
		load_free(l);
		return;
	}
	if (l->total == 0) {
		json_t *rej = l->rejected;
		l->rejected = NULL;
		respond_json(l->req, 400, NULL,
				 json_pack("{s:{s:s, s:s, s:s}, s:I, s:o}", "error", "code", "invalid_field", "field",
					   "recipients", "message", "no valid recipient: nothing was stored",
					   "rejected_count", (json_int_t)l->rejected_count, "rejected", rej));
		load_free(l);
		return;
	}
	rewind_rows(l);
	batch_create(l);
}

static void batch_create(struct load *l)
{
	snprintf(l->p_account, sizeof(l->p_account), "%lld", l->account_id);
	snprintf(l->p_total, sizeof(l->p_total), "%zu", l->total);
	l->params[0] = l->p_account;
	l->params[1] = l->name;
	l->params[2] = l->p_total;
	submit(l, LOAD_CREATE, &stmts_batch_create, 3);
}

static void id_authed(void *arg, long long account_id, int operator)
{
	struct load *l = arg;
	(void)operator;
	if (account_id <= 0) {
		load_free(l);
		return;
	}
	l->account_id = account_id;
	snprintf(l->p_id, sizeof(l->p_id), "%lld", l->batch_id);
	snprintf(l->p_account, sizeof(l->p_account), "%lld", l->account_id);
	l->params[0] = l->p_id;
	l->params[1] = l->p_account;
	if (l->step == LOAD_GET) {
		submit(l, LOAD_GET, &stmts_batch_json, 2);
	} else {
		l->params[2] = "CANCELED";
		l->params[3] = "batch canceled";
		submit(l, LOAD_CANCEL, &recipient_stmt_batch_cancel, 4);
	}
}

void batches_handle(const struct door *door, struct http_request *req)
{
	const struct door *d = door;
	const char *rest = req->path[11] ? req->path + 12 : NULL;   /* after "/v1/batches/" */
	enum load_step step;
	long long id = 0;
	if (!rest) {
		if (req->method != HTTP_M_POST) {
			respond_not_allowed(req, "POST");
			return;
		}
		step = LOAD_CREATE;
	} else {
		size_t n = strspn(rest, "0123456789");
		const char *tail = rest + n;
		long v;
		char num[24];
		if (n == 0 || n >= sizeof(num) || (strcmp(tail, "") && strcmp(tail, "/cancel")) ||
		    (memcpy(num, rest, n), num[n] = '\0', util_parse_long(num, 1, 0x7fffffffffffffffL, &v) < 0)) {
			respond_error(req, 404, "not_found", NULL, "no such batch");
			return;
		}
		id = v;
		step = *tail ? LOAD_CANCEL : LOAD_GET;
		if (req->method != (step == LOAD_GET ? HTTP_M_GET : HTTP_M_POST)) {
			respond_not_allowed(req, step == LOAD_GET ? "GET" : "POST");
			return;
		}
	}
	if (!store_is_up(d->store)) {
		respond_error(req, 503, "unavailable", NULL, "database unavailable, retry later");
		return;
	}
	struct load *l = calloc(1, sizeof(*l));
	if (!l || !(l->rejected = json_array())) {
		free(l);
		respond_error(req, 503, "unavailable", NULL, "out of memory");
		return;
	}
	l->door = door;
	l->req = req;
	l->cfg = d->cfg;
	l->step = step;
	l->batch_id = id;
	if (step != LOAD_CREATE) {
		auth_key(door->auth, req, NULL, id_authed, l);
		return;
	}
	/* validated now, answered after auth: an unknown key learns nothing */
	if (parse_post(l) < 0)
		l->bad = 1;
	auth_key(door->auth, req, NULL, post_authed, l);
}
