/*
 * batch_csv.c: a campaign's rows, without I/O (batch_csv.h): RFC 4180
 * records (a quoted field may span lines; at most BATCH_RECORD_MAX bytes),
 * the header (a `to` column, names unique, every template variable a
 * column), each row checked (a number of 3 to 20 digits, seen once in the
 * campaign; a rendered text within max_text, valid UTF-8 without controls),
 * and the text template compiled once and rendered per row.  Every byte is
 * a customer's: nothing is trusted, nothing is read past a length.  Owns no
 * state but what struct batch_csv and struct batch_seen hold.
 */
#include "batch_csv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* --- template --------------------------------------------------------------- */

static int name_start(int c)
{
	return isalpha(c) || c == '_';
}

static int name_char(int c)
{
	return isalnum(c) || c == '_';
}

int batch_tpl_compile(struct batch_tpl *t, const char *src, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->src = src;
	size_t i = 0, lit = 0;
	while (src[i]) {
		size_t n = 0;
		if (src[i] == '{' && name_start((unsigned char)src[i + 1])) {
			n = 1;
			while (name_char((unsigned char)src[i + 1 + n]) && n <= BATCH_NAME_MAX)
				n++;
			if (n > BATCH_NAME_MAX || src[i + 1 + n] != '}')
				n = 0;
		}
		if (n == 0) {
			i++;
			continue;
		}
		/* a variable at src[i+1 .. i+1+n) */
		size_t v;
		for (v = 0; v < t->nvars; v++)
			if (strlen(t->vars[v]) == n && memcmp(t->vars[v], src + i + 1, n) == 0)
				break;
		if (v == t->nvars) {
			if (t->nvars == BATCH_TPL_MAX_VARS) {
				snprintf(err, errlen, "text has more than %d different {variables}", BATCH_TPL_MAX_VARS);
				return -1;
			}
			memcpy(t->vars[v], src + i + 1, n);
			t->vars[v][n] = '\0';
			t->nvars++;
		}
		if (t->nseg + 2 > BATCH_TPL_MAX_SEGS) {
			snprintf(err, errlen, "text has more than %d {variables}", BATCH_TPL_MAX_SEGS / 2 - 1);
			return -1;
		}
		if (i > lit)
			t->seg[t->nseg++] = (struct batch_seg){ lit, i - lit, -1 };
		t->seg[t->nseg++] = (struct batch_seg){ 0, 0, (int)v };
		i += n + 2;
		lit = i;
	}
	if (i > lit) {
		if (t->nseg + 1 > BATCH_TPL_MAX_SEGS) {
			snprintf(err, errlen, "text has too many {variables}");
			return -1;
		}
		t->seg[t->nseg++] = (struct batch_seg){ lit, i - lit, -1 };
	}
	return 0;
}

long batch_tpl_render(const struct batch_tpl *t, const char *const *vals, const size_t *lens, char *out,
		      size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < t->nseg; i++) {
		const char *p = t->seg[i].var < 0 ? t->src + t->seg[i].off : vals[t->seg[i].var];
		size_t n = t->seg[i].var < 0 ? t->seg[i].len : lens[t->seg[i].var];
		if (n >= cap - o)
			return -1;
		memcpy(out + o, p, n);
		o += n;
	}
	out[o] = '\0';
	return (long)o;
}

/* --- numbers seen ----------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

int batch_seen_add(struct batch_seen *s, const char *msisdn)
{
	if (s->n + 1 > s->cap / 2) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *slot = calloc(cap, sizeof(*slot));
		if (!slot)
			return -1;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slot[i])
				continue;
			size_t j = (size_t)(s->slot[i] & (cap - 1));
			while (slot[j])
				j = (j + 1) & (cap - 1);
			slot[j] = s->slot[i];
		}
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	uint64_t h = fnv1a(msisdn);
	size_t j = (size_t)(h & (s->cap - 1));
	while (s->slot[j]) {
		if (s->slot[j] == h)
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->slot[j] = h;
	s->n++;
	return 1;
}

void batch_seen_reset(struct batch_seen *s)
{
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* --- rows ------------------------------------------------------------------- */

int batch_msisdn(const char *s, size_t len, char out[21])
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return util_msisdn_n(s, len, out);
}

int batch_text_ok(const char *s, size_t len)
{
	return util_utf8_text(s, len, 1);
}

int batch_csv_record(const char *p, size_t len, size_t *rec_len, size_t *next)
{
	int quoted = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '"')
			quoted = !quoted;
		else if (p[i] == '\n' && !quoted) {
			*rec_len = i > 0 && p[i - 1] == '\r' ? i - 1 : i;
			*next = i + 1;
			return 1;
		}
	}
	*rec_len = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
	*next = len;
	return 0;
}

/*
 * Splits a record into at most max fields (RFC 4180: "" inside quotes is
 * a quote), unquoted into scratch (at least len + 1 bytes).  Field count,
 * or -1 (too many fields, or a quote in the middle of a field).
 */
static long csv_split(const char *rec, size_t len, char *scratch, const char **val, size_t *vlen, size_t max)
{
	size_t nf = 0, o = 0, i = 0;
	for (;;) {
		if (nf == max)
			return -1;
		val[nf] = scratch + o;
		size_t start = o;
		if (i < len && rec[i] == '"') {
			i++;
			for (;;) {
				if (i >= len)
					return -1;   /* unterminated */
				if (rec[i] == '"') {
					if (i + 1 < len && rec[i + 1] == '"') {
						scratch[o++] = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				scratch[o++] = rec[i++];
			}
			if (i < len && rec[i] != ',')
				return -1;
		} else {
			while (i < len && rec[i] != ',') {
				if (rec[i] == '"')
					return -1;
				scratch[o++] = rec[i++];
			}
		}
		vlen[nf] = o - start;
		scratch[o++] = '\0';
		nf++;
		if (i >= len)
			return (long)nf;
		i++;   /* the comma */
	}
}

int batch_csv_open(struct batch_csv *c, const char *rec, size_t len, const char *tpl_text, size_t max_text,
		   const char **field, char *msg, size_t msglen)
{
	memset(c, 0, sizeof(*c));
	c->max_text = max_text;
	*field = "text";
	if (batch_tpl_compile(&c->tpl, tpl_text, msg, msglen) < 0)
		return -1;
	*field = "csv";
	if (len >= 3 && memcmp(rec, "\xef\xbb\xbf", 3) == 0) {   /* UTF-8 byte order mark */
		rec += 3;
		len -= 3;
	}
	size_t maxf = BATCH_TPL_MAX_VARS * 4 + 1;
	c->scratch = malloc(BATCH_RECORD_MAX + 1);
	/* a row is split into up to ncols + 1 fields (the extra one tells it has too many) */
	c->val = calloc(maxf + 1, sizeof(*c->val));
	c->vlen = calloc(maxf + 1, sizeof(*c->vlen));
	c->text = malloc(max_text + 1);
	if (!c->scratch || !c->val || !c->vlen || !c->text) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	long nf = len > BATCH_RECORD_MAX ? -1 : csv_split(rec, len, c->scratch, c->val, c->vlen, maxf);
	if (nf < 0) {
		snprintf(msg, msglen, "the header (line 1) must be comma-separated column names, at most %zu", maxf);
		return -1;
	}
	c->cols = calloc((size_t)nf, sizeof(*c->cols));
	if (!c->cols) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	c->ncols = (size_t)nf;
	int have_to = 0;
	for (size_t i = 0; i < c->ncols; i++) {
		const char *v = c->val[i];
		size_t n = c->vlen[i];
		while (n && (*v == ' ' || *v == '\t')) {
			v++;
			n--;
		}
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		int ok = n > 0 && n <= BATCH_NAME_MAX && name_start((unsigned char)v[0]);
		for (size_t k = 1; ok && k < n; k++)
			ok = name_char((unsigned char)v[k]);
		if (!ok) {
			snprintf(msg, msglen, "column %zu of the header is not a name (letters, digits, _; at most %d)",
				 i + 1, BATCH_NAME_MAX);
			return -1;
		}
		c->cols[i] = strndup(v, n);
		if (!c->cols[i]) {
			snprintf(msg, msglen, "out of memory");
			return -1;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(c->cols[k], c->cols[i]) == 0) {
				snprintf(msg, msglen, "column '%s' appears twice in the header", c->cols[i]);
				return -1;
			}
		}
		if (strcmp(c->cols[i], "to") == 0) {
			c->to_col = i;
			have_to = 1;
		}
	}
	if (!have_to) {
		snprintf(msg, msglen, "the header (line 1) needs a 'to' column");
		return -1;
	}
	*field = "text";
	for (size_t v = 0; v < c->tpl.nvars; v++) {
		c->var_col[v] = -1;
		for (size_t i = 0; i < c->ncols; i++)
			if (strcmp(c->cols[i], c->tpl.vars[v]) == 0)
				c->var_col[v] = (int)i;
		if (c->var_col[v] < 0) {
			snprintf(msg, msglen, "text uses {%s} but the CSV has no such column", c->tpl.vars[v]);
			return -1;
		}
	}
	return 0;
}

enum batch_row batch_csv_row(struct batch_csv *c, const char *rec, size_t len, char to[21], const char **text,
			     const char **field, char *msg, size_t msglen)
{
	size_t blank = 0;
	while (blank < len && (rec[blank] == ' ' || rec[blank] == '\t'))
		blank++;
	if (blank == len)
		return BATCH_ROW_EMPTY;
	*field = "csv";
	if (len > BATCH_RECORD_MAX) {
		snprintf(msg, msglen, "record longer than %d bytes", BATCH_RECORD_MAX);
		return BATCH_ROW_BAD;
	}
	long nf = csv_split(rec, len, c->scratch, c->val, c->vlen, c->ncols + 1);
	if (nf != (long)c->ncols) {
		snprintf(msg, msglen, nf < 0 && nf != -1 ? "bad quoting" : "expected %zu fields as in the header",
			 c->ncols);
		if (nf == -1 && memchr(rec, '"', len))
			snprintf(msg, msglen, "expected %zu fields as in the header (or bad quoting)", c->ncols);
		return BATCH_ROW_BAD;
	}
	*field = "to";
	if (batch_msisdn(c->val[c->to_col], c->vlen[c->to_col], to) < 0) {
		snprintf(msg, msglen, "not a phone number of 3 to 20 digits");
		return BATCH_ROW_BAD;
	}
	*text = NULL;
	if (c->tpl.nvars) {
		const char *vals[BATCH_TPL_MAX_VARS];
		size_t lens[BATCH_TPL_MAX_VARS];
		for (size_t v = 0; v < c->tpl.nvars; v++) {
			vals[v] = c->val[c->var_col[v]];
			lens[v] = c->vlen[c->var_col[v]];
			if (!batch_text_ok(vals[v], lens[v])) {
				*field = c->tpl.vars[v];
				snprintf(msg, msglen, "not valid UTF-8 text");
				return BATCH_ROW_BAD;
			}
		}
		*field = "text";
		if (batch_tpl_render(&c->tpl, vals, lens, c->text, c->max_text + 1) < 0) {
			snprintf(msg, msglen, "the rendered text is longer than %zu bytes", c->max_text);
			return BATCH_ROW_BAD;
		}
		*text = c->text;
	}
	int fresh = batch_seen_add(&c->seen, to);
	if (fresh < 0)
		return BATCH_ROW_NOMEM;
	if (!fresh) {
		*field = "to";
		snprintf(msg, msglen, "duplicate of an earlier row");
		return BATCH_ROW_BAD;
	}
	return BATCH_ROW_OK;
}

void batch_csv_close(struct batch_csv *c)
{
	for (size_t i = 0; c->cols && i < c->ncols; i++)
		free(c->cols[i]);
	free(c->cols);
	free(c->scratch);
	free(c->val);
	free(c->vlen);
	free(c->text);
	batch_seen_reset(&c->seen);
	memset(c, 0, sizeof(*c));
}
