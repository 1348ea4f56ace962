/*
 * kannel.c: Kannel's sendsms interface, GET|POST /cgi-bin/sendsms, so an
 * application written for Kannel's smsbox sends through pushgate unchanged
 * (docs/kannel.md lists what is honoured and what is ignored).
 *
 * Reads the parameters (query string, form body, or a raw text body with
 * X-Kannel-* headers), converts the text from its charset to UTF-8 (iconv),
 * checks the account (username = account name, password = its API key: the
 * key cache the API shares, else one statement) and hands the message to the intake queue every entry point
 * uses (one statement for all that arrive together).  "0: Accepted for
 * delivery" (202) goes out only after that commit.  A dlr-url and dlr-mask
 * travel with the message (sql/007_kannel.sql turns them into GET reports
 * in the webhook outbox).
 * Owns one request record per call, freed when answered.  Never logs the
 * password or the text, never blocks, never trusts a byte of the request.
 */
#include "kannel.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "keys.h"
#include "log.h"
#include "router.h"
#include "util.h"

#define TEXT_HTML      "Content-Type: text/html\r\n"
#define DLR_URL_MAX    1024
#define CHARSET_MAX    40
#define DEFERRED_MAX   525600L   /* minutes: one year */
#define VALIDITY_MAX   43200L    /* minutes: 30 days, the API's bound */

/* One sendsms request.  Owned by kannel.c from kannel_sendsms() until answered. */
struct kreq {
	struct api          *api;
	struct http_request *req;
	struct store_job     job;            /* the account check */
	const char          *params[2];
	char                 user[129];
	unsigned char        hash[KEYS_HASH_LEN];
	char                 hash_text[2 + 2 * KEYS_HASH_LEN + 1];
	long long            account_id;
	/* the message */
	char                 from[21];
	char                *text;           /* UTF-8, malloc'd */
	size_t               n_to;
	char               (*to)[21];        /* malloc'd */
	char                *denied;         /* " 12ab 34-" receivers refused, malloc'd or NULL */
	char                *dlr_url;        /* malloc'd, NULL: no reports (or mask 0) */
	int                  dlr_mask;
	struct intake_opts   opts;
	struct intake_req    intake;
	/* a request error, answered once the account is known (an unknown user learns nothing) */
	int                  bad_status;
	const char          *bad_text;
};

/* Where the parameters are: form body, X-Kannel-* headers (raw-body POST), query. */
struct ksrc {
	const char                *form;   /* NULL: no form body */
	size_t                     form_len;
	const struct http_request *hdrs;   /* NULL: headers carry no parameters */
	const char                *query;
	size_t                     query_len;
};

/* --- answers ------------------------------------------------------------------ */

static void reply(struct http_request *req, int status, const char *text)
{
	http_respond(req, status, status == 503 ? TEXT_HTML "Retry-After: 1\r\n" : TEXT_HTML, text, strlen(text));
}

static void kreq_free(struct kreq *k)
{
	free(k->text);
	free(k->to);
	free(k->denied);
	free(k->dlr_url);
	free(k);
}

/* --- parameters ---------------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * application/x-www-form-urlencoded decoding of in[0..len) into out (room for
 * len + 1 bytes): '+' is a space, %XX a byte; a '%' not followed by two hex
 * digits stays as it is.  Returns the decoded length; out is NUL-terminated
 * (the value itself may hold NULs, e.g. UTF-16 text).
 */
static size_t form_decode(const char *in, size_t len, char *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < len && hexval((unsigned char)in[i + 1]) >= 0 && hexval((unsigned char)in[i + 2]) >= 0) {
			c = (char)(hexval((unsigned char)in[i + 1]) * 16 + hexval((unsigned char)in[i + 2]));
			i += 2;
		}
		out[n++] = c;
	}
	out[n] = '\0';
	return n;
}

/* The raw (still encoded) value of the first `name=` in an &-separated list, or NULL. */
static const char *form_find(const char *s, size_t len, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *end = s + len;
	while (s < end) {
		const char *amp = memchr(s, '&', (size_t)(end - s));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(s, '=', (size_t)(pe - s));
		size_t klen = (size_t)((eq ? eq : pe) - s);
		if (klen == nlen && strncasecmp(s, name, nlen) == 0) {
			const char *v = eq ? eq + 1 : pe;
			*vlen = (size_t)(pe - v);
			return v;
		}
		s = pe + (amp ? 1 : 0);
	}
	return NULL;
}

/*
 * The value of a parameter (name, or its Kannel alias) as a malloc'd,
 * NUL-terminated buffer of *len bytes: the form body first, then the
 * X-Kannel-<header> header, then the query.  1 found, 0 absent, -1 no memory.
 */
static int param(const struct ksrc *src, const char *name, const char *alias, const char *header,
		 char **out, size_t *len)
{
	const char *names[2] = { name, alias };
	const char *v = NULL;
	size_t vlen = 0;
	int raw = 0;
	for (int i = 0; i < 2 && !v && src->form; i++)
		if (names[i])
			v = form_find(src->form, src->form_len, names[i], &vlen);
	if (!v && src->hdrs && header) {
		char h[64];
		snprintf(h, sizeof(h), "X-Kannel-%s", header);
		v = http_header(src->hdrs, h);
		vlen = v ? strlen(v) : 0;
		raw = 1;
	}
	for (int i = 0; i < 2 && !v; i++)
		if (names[i]) {
			v = form_find(src->query, src->query_len, names[i], &vlen);
			raw = 0;
		}
	if (!v)
		return 0;
	*out = malloc(vlen + 1);
	if (!*out)
		return -1;
	if (raw) {
		memcpy(*out, v, vlen);
		(*out)[vlen] = '\0';
		*len = vlen;
	} else {
		*len = form_decode(v, vlen, *out);
	}
	return 1;
}

/* A bounded copy of a parameter into buf (cap bytes); 1 found, 0 absent, -1 too long or NUL inside. */
static int param_small(const struct ksrc *src, const char *name, const char *alias, const char *header,
		       char *buf, size_t cap)
{
	char *v = NULL;
	size_t n = 0;
	int rc = param(src, name, alias, header, &v, &n);
	if (rc <= 0)
		return rc;
	rc = n < cap && !memchr(v, '\0', n) ? 1 : -1;
	if (rc == 1)
		memcpy(buf, v, n + 1);
	free(v);
	return rc;
}

/* An integer parameter in [min, max]; absent or empty: *out = -1.  0, or -1 when misformed. */
static int param_int(const struct ksrc *src, const char *name, const char *alias, const char *header,
		     long min, long max, long *out)
{
	char buf[24];
	*out = -1;
	int rc = param_small(src, name, alias, header, buf, sizeof(buf));
	if (rc == 0 || (rc == 1 && buf[0] == '\0'))
		return 0;
	if (rc < 0 || (strcmp(buf, "-1") != 0 && util_parse_long(buf, min, max, out) < 0))
		return -1;
	return 0;
}

/*
 * Converts text (len bytes in charset) to UTF-8 into a malloc'd buffer.
 * 0, or -1 when the charset is unknown or the bytes are not valid in it.
 */
static int to_utf8(const char *charset, const char *text, size_t len, char **out, size_t *outlen)
{
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return -1;
	size_t cap = len * 4 + 4;   /* UTF-8 needs at most 4 bytes per input byte (UTF-16/32 need fewer) */
	char *buf = malloc(cap);
	int rc = -1;
	if (buf) {
		char *in = (char *)text, *o = buf;
		size_t inleft = len, outleft = cap - 1;
		if (iconv(cd, &in, &inleft, &o, &outleft) != (size_t)-1 && inleft == 0 &&
		    iconv(cd, NULL, NULL, &o, &outleft) != (size_t)-1) {
			*o = '\0';
			*outlen = (size_t)(o - buf);
			*out = buf;
			buf = NULL;
			rc = 0;
		}
	}
	free(buf);
	iconv_close(cd);
	return rc;
}

/* One receiver: '+' first, digits, '-' ignored; 3 to 20 digits. 0 / -1. */
static int receiver(const char *s, size_t len, char out[21])
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+' && i == 0)
			continue;
		if (c == '-')
			continue;
		if (!isdigit((unsigned char)c) || n >= 20)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return n >= 3 ? 0 : -1;
}

static int append_denied(struct kreq *k, const char *w, size_t n)
{
	size_t have = k->denied ? strlen(k->denied) : 0;
	char *d = realloc(k->denied, have + n + 2);
	if (!d)
		return -1;
	d[have] = ' ';
	/* echoed in a text/html answer: printable ASCII without markup, the rest as '?' */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)w[i];
		d[have + 1 + i] = c > 0x20 && c < 0x7f && !strchr("<>&\"'", c) ? (char)c : '?';
	}
	d[have + n + 1] = '\0';
	k->denied = d;
	return 0;
}

/* to: receivers separated by blanks (Kannel splits on white space), deduplicated. */
static int parse_to(struct kreq *k, const char *to, size_t max)
{
	size_t words = 0;
	for (const char *p = to; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (*p)
			words++;
		while (*p && !isspace((unsigned char)*p))
			p++;
	}
	if (words > max) {
		k->bad_text = "Too many receivers, rejected";
		return -1;
	}
	k->to = calloc(words ? words : 1, sizeof(*k->to));
	if (!k->to)
		return -2;
	for (const char *p = to; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		const char *w = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		size_t n = (size_t)(p - w);
		if (!n)
			break;
		char num[21];
		if (receiver(w, n, num) < 0) {
			if (append_denied(k, w, n > 32 ? 32 : n) < 0)
				return -2;
			continue;
		}
		size_t j;
		for (j = 0; j < k->n_to && strcmp(k->to[j], num); j++)
			;
		if (j == k->n_to)
			memcpy(k->to[k->n_to++], num, sizeof(num));
	}
	if (k->n_to == 0) {
		k->bad_text = "Number(s) has/have been denied by white- and/or black-lists.";
		return -1;
	}
	return 0;
}

static int charset_name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n < CHARSET_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:") == n;
}

/* The charset parameter of a Content-Type header into out ("" when none). */
static void content_charset(const char *ct, char *out, size_t cap)
{
	out[0] = '\0';
	const char *p = ct ? strcasestr(ct, "charset=") : NULL;
	if (!p)
		return;
	p += 8;
	if (*p == '"')
		p++;
	size_t n = strcspn(p, "\";, \t");
	if (n < cap) {
		memcpy(out, p, n);
		out[n] = '\0';
	}
}

/*
 * Every parameter into k.  0, or -1 with k->bad_status/bad_text set (the
 * answer after the account check), or -2 when out of memory.
 */
static int parse_request(struct kreq *k, const struct ksrc *src, const char *raw_body, size_t raw_len,
			 const char *raw_charset, int binary_body)
{
	const struct config *cfg = api_deps_of(k->api)->cfg;
	char *v = NULL;
	size_t vlen = 0;
	long coding, mask, validity, deferred;
	int rc;

	k->bad_status = 400;
#define BAD(t) do { k->bad_text = (t); goto bad; } while (0)
	/* to */
	rc = param(src, "to", NULL, "To", &v, &vlen);
	if (rc < 0)
		goto oom;
	if (rc == 0)
		BAD(src->hdrs ? "Missing receiver(s) number(s), rejected" : "Missing receiver number, rejected");
	if (vlen == 0)
		BAD("Empty receiver number not allowed, rejected");
	if (memchr(v, '\0', vlen))
		BAD("Number(s) has/have been denied by white- and/or black-lists.");
	rc = parse_to(k, v, cfg->max_recipients);
	free(v);
	v = NULL;
	if (rc == -2)
		goto oom;
	if (rc < 0)
		goto bad;

	/* from */
	rc = param_small(src, "from", NULL, "From", k->from, sizeof(k->from));
	if (rc == 0 || (rc == 1 && k->from[0] == '\0'))
		BAD("Sender missing and no global set, rejected");
	if (rc < 0)
		BAD("Sender field misformed, rejected");
	for (const char *p = k->from; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			BAD("Sender field misformed, rejected");

	/* dlr-url, dlr-mask */
	char *url = NULL;
	size_t ulen = 0;
	rc = param(src, "dlr-url", "dlrurl", "DLR-Url", &url, &ulen);
	if (rc < 0)
		goto oom;
	if (param_int(src, "dlr-mask", "dlrmask", "DLR-Mask", 0, 63, &mask) < 0) {
		free(url);
		BAD("DLR-Mask field misformed, rejected");
	}
	if (rc == 1 && ulen > 0) {
		int ok = ulen <= DLR_URL_MAX && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
		for (size_t i = 0; ok && i < ulen; i++)
			ok = (unsigned char)url[i] > 0x20 && (unsigned char)url[i] < 0x7f;
		if (!ok) {
			free(url);
			BAD("DLR-URL field misformed, rejected");
		}
		if (mask > 0) {
			k->dlr_url = url;   /* kept */
			url = NULL;
			k->dlr_mask = (int)mask;
		}
	}
	free(url);

	/* coding, charset, text */
	if (param_int(src, "coding", NULL, "Coding", 0, 2, &coding) < 0)
		BAD("Coding field misformed, rejected");
	if (coding < 0 && binary_body)
		coding = 1;   /* Kannel: application/octet-stream is 8-bit */
	if (coding == 1)
		BAD("8-bit (binary) coding is not supported, rejected");
	char charset[CHARSET_MAX];
	if (raw_charset && raw_charset[0]) {
		util_strlcpy(charset, raw_charset, sizeof(charset));
	} else {
		rc = param_small(src, "charset", NULL, "Charset", charset, sizeof(charset));
		if (rc < 0)
			BAD("Charset or body misformed, rejected");
		if (rc == 0 || charset[0] == '\0')
			util_strlcpy(charset, coding == 2 ? "UTF-16BE" : "UTF-8", sizeof(charset));
	}
	if (!charset_name_ok(charset))
		BAD("Charset or body misformed, rejected");
	char *tv = NULL;
	const char *text = raw_body;
	size_t tlen = raw_len;
	if (!raw_body) {
		rc = param(src, "text", NULL, NULL, &tv, &tlen);
		if (rc < 0)
			goto oom;
		text = tv;
	}
	size_t ulen8 = 0;
	rc = text && tlen > 0 ? to_utf8(charset, text, tlen, &k->text, &ulen8) : 1;
	free(tv);
	if (rc > 0)
		BAD("Missing text, rejected");
	if (rc < 0)
		BAD("Charset or body misformed, rejected");
	if (ulen8 == 0)
		BAD("Missing text, rejected");
	if (memchr(k->text, '\0', ulen8))
		BAD("Charset or body misformed, rejected");
	if (ulen8 > cfg->max_text)
		BAD("Text too long, rejected");

	/* validity, deferred (minutes), channels (pushgate's) */
	intake_opts_default(&k->opts);
	k->opts.source = "kannel";
	k->opts.dlr_url = k->dlr_url;
	k->opts.dlr_mask = k->dlr_mask;
	if (param_int(src, "validity", NULL, "Validity", 1, VALIDITY_MAX, &validity) < 0)
		BAD("Validity field misformed, rejected");
	if (validity > 0)
		k->opts.validity = (double)validity * 60;
	if (param_int(src, "deferred", NULL, "Deferred", 0, DEFERRED_MAX, &deferred) < 0)
		BAD("Deferred field misformed, rejected");
	if (deferred > 0) {
		time_t at = time(NULL) + (time_t)deferred * 60;
		struct tm tm;
		if (!gmtime_r(&at, &tm))
			BAD("Deferred field misformed, rejected");
		strftime(k->opts.send_at, sizeof(k->opts.send_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	char ch[16];
	rc = param_small(src, "channels", NULL, "Channels", ch, sizeof(ch));
	if (rc < 0)
		BAD("Channels field misformed, rejected");
	if (rc == 1 && ch[0]) {
		static const char *const ok[] = { "push,sms", "sms,push", "sms", "push" };
		size_t i;
		for (i = 0; i < sizeof(ok) / sizeof(ok[0]) && strcmp(ch, ok[i]); i++)
			;
		if (i == sizeof(ok) / sizeof(ok[0]))
			BAD("Channels field misformed, rejected");
		snprintf(k->opts.channels, sizeof(k->opts.channels), "{%s}", ok[i]);
	}
#undef BAD
	k->bad_text = NULL;
	k->bad_status = 0;
	return 0;
bad:
	free(v);
	return -1;
oom:
	free(v);
	return -2;
}

/* --- store ------------------------------------------------------------------------ */

static void store_failed(struct kreq *k, enum store_error e, const char *err)
{
	if (e == STORE_UNAVAILABLE) {
		reply(k->req, 503, "Sending failed.");
	} else {
		log_error("kannel", "ev=store_error err=\"%s\"", err ? err : "");
		reply(k->req, 500, "Sending failed.");
	}
	kreq_free(k);
}

static void intake_done(struct intake_req *r, enum store_error e, const char *err, PGresult *res, int first,
			int rows)
{
	struct kreq *k = r->arg;
	if (e != STORE_OK) {
		store_failed(k, e, err);
		return;
	}
	long long mid = rows > 0 ? strtoll(PQgetvalue(res, first, 0), NULL, 10) : 0;
	log_info("kannel", "ev=accepted message=%lld account=%lld recipients=%d denied=%d dlr=%s", mid,
		 k->account_id, rows, k->denied != NULL, k->dlr_url ? "yes" : "no");
	if (k->denied) {
		static const char head[] = "0: Accepted for delivery Denied receivers are:";
		size_t n = sizeof(head) - 1 + strlen(k->denied);
		char *body = malloc(n + 1);
		if (body) {
			memcpy(body, head, sizeof(head) - 1);
			memcpy(body + sizeof(head) - 1, k->denied, n - (sizeof(head) - 1) + 1);
			reply(k->req, 202, body);
			free(body);
		} else {
			reply(k->req, 202, "0: Accepted for delivery");
		}
	} else {
		reply(k->req, 202, "0: Accepted for delivery");
	}
	kreq_free(k);
}

static void authorized(struct kreq *k);

static void auth_done(struct store_job *job, enum store_error e, const char *err)
{
	struct kreq *k = job->arg;
	if (e != STORE_OK) {
		store_failed(k, e, err);
		return;
	}
	if (PQntuples(job->res) != 1) {
		log_info("kannel", "ev=auth_failed peer=%s", k->req->peer);
		reply(k->req, 403, "Authorization failed for sendsms");
		kreq_free(k);
		return;
	}
	k->account_id = strtoll(PQgetvalue(job->res, 0, 0), NULL, 10);
	api_key_remember(k->api, k->hash, job->res);
	authorized(k);
}

/* The account is known: a request error is answered now, a message goes to the intake queue. */
static void authorized(struct kreq *k)
{
	if (k->bad_text) {
		reply(k->req, k->bad_status, k->bad_text);
		kreq_free(k);
		return;
	}
	double wait = api_admit(k->api, k->hash, k->account_id, k->n_to);
	if (wait > 0) {   /* the account's rate limit: nothing stored, the client retries later */
		char extra[80];
		snprintf(extra, sizeof(extra), TEXT_HTML "Retry-After: %ld\r\n", util_retry_after(wait));
		static const char text[] = "Rate limit exceeded for this account";
		http_respond(k->req, 429, extra, text, sizeof(text) - 1);
		kreq_free(k);
		return;
	}
	const struct api_deps *d = api_deps_of(k->api);
	k->intake = (struct intake_req){
		.msg = { k->account_id, k->from, k->text, k->n_to, (const char (*)[21])k->to, NULL, &k->opts },
		.done = intake_done, .arg = k,
	};
	intake_submit(d->intake, &k->intake);
}

/* --- entry --------------------------------------------------------------------------- */

static int content_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);
	return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void kannel_sendsms(struct api *api, struct http_request *req)
{
	if (req->method != HTTP_M_GET && req->method != HTTP_M_POST) {
		http_respond(req, 405, TEXT_HTML "Allow: GET, POST\r\n", "Use GET or POST", 15);
		return;
	}
	struct ksrc src = { .query = req->query ? req->query : "" };
	src.query_len = strlen(src.query);
	const char *raw = NULL;
	size_t raw_len = 0;
	char raw_charset[CHARSET_MAX] = "";
	int binary = 0;
	if (req->method == HTTP_M_POST && req->body_len > 0) {
		const char *ct = http_header(req, "Content-Type");
		if (content_type_is(ct, "application/x-www-form-urlencoded")) {
			src.form = req->body;
			src.form_len = req->body_len;
		} else if (content_type_is(ct, "text/plain") || content_type_is(ct, "application/octet-stream")) {
			/* smsbox's POST: the body is the text, the rest in X-Kannel-* headers */
			raw = req->body;
			raw_len = req->body_len;
			src.hdrs = req;
			binary = content_type_is(ct, "application/octet-stream");
			content_charset(ct, raw_charset, sizeof(raw_charset));
		} else {
			reply(req, 400, "Invalid content-type");
			return;
		}
	}

	struct kreq *k = calloc(1, sizeof(*k));
	if (!k) {
		reply(req, 503, "Sending failed.");
		return;
	}
	k->api = api;
	k->req = req;

	/* who: username/user + password/pass; the password is hashed and never kept */
	char *pass = NULL;
	size_t plen = 0;
	int urc = param_small(&src, "username", "user", "Username", k->user, sizeof(k->user));
	int prc = param(&src, "password", "pass", "Password", &pass, &plen);
	if (prc < 0) {
		reply(req, 503, "Sending failed.");
		kreq_free(k);
		return;
	}
	if (urc != 1 || k->user[0] == '\0' || prc != 1 || plen == 0 || plen > 256 || memchr(pass, '\0', plen)) {
		if (pass)
			memset(pass, 0, plen);
		free(pass);
		reply(req, 403, "Authorization failed for sendsms");
		kreq_free(k);
		return;
	}
	keys_hash(pass, plen, k->hash);
	keys_hash_bytea(pass, plen, k->hash_text, sizeof(k->hash_text));
	memset(pass, 0, plen);
	free(pass);

	int rc = parse_request(k, &src, raw, raw_len, raw_charset, binary);
	if (rc == -2) {
		reply(req, 503, "Sending failed.");
		kreq_free(k);
		return;
	}
	const struct api_deps *d = api_deps_of(api);
	if (!store_is_up(d->store)) {
		reply(req, 503, "Sending failed.");
		kreq_free(k);
		return;
	}
	/* the key cache the API shares: a key seen within the minute skips the lookup */
	k->account_id = api_key_cached(api, k->hash, k->user);
	if (k->account_id > 0) {
		authorized(k);
		return;
	}
	k->params[0] = k->hash_text;
	k->params[1] = k->user;
	k->job = (struct store_job){ .stmt = &router_stmt_kannel_auth, .nparams = 2, .params = k->params,
				     .done = auth_done, .arg = k };
	store_submit(d->store, &k->job);
}
