/*
 * fuzz_csv.c: libFuzzer target for campaigns' CSV reader and text template
 * (batch_csv.c, shared by POST /v1/batches and `pushgatectl send --csv`).
 *
 * Input: byte 0 picks max_text and how the body is cut into reads; then
 * the template up to the first '\n' (as a C string), then the CSV body.
 * The template must compile into segments that render it back to itself
 * when each {name} is given "{name}", and render exactly at the capacity
 * boundary.  The body is cut into records once whole and once through a
 * refilled read buffer (as pushgatectl reads a file), in pieces of 1 to
 * 64 bytes: both must yield the same records, none containing an unquoted
 * line end.  The first record goes to batch_csv_open(), every other one to
 * batch_csv_row(), checking what an OK row promises (a 3-20 digit number
 * never accepted twice, a rendered text within max_text, valid UTF-8 when
 * the template is).  batch_text_ok() is checked against a decoder written
 * out here.  Every buffer is an exact-size heap copy; abort() on any
 * violation.  Links batch_csv.c and util.c alone: no I/O, no HTTP side.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch_csv.h"
#include "fuzz_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Strict UTF-8, no C0 control but TAB, CR, LF, no DEL: a second implementation. */
static int text_ok_ref(const unsigned char *s, size_t len)
{
	size_t i = 0;
	uint32_t cp;
	while (i < len) {
		if (!fuzz_utf8_next(s, len, &i, &cp))
			return 0;
		if ((cp < 0x20 && cp != '\t' && cp != '\r' && cp != '\n') || cp == 0x7f)
			return 0;
	}
	return 1;
}

static void *dup_exact(const void *p, size_t n)
{
	void *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

static void check_template(const char *tpl)
{
	static struct batch_tpl t;
	char err[128];
	size_t srclen = strlen(tpl);

	err[0] = '\0';
	if (batch_tpl_compile(&t, tpl, err, sizeof(err)) < 0) {
		if (err[0] == '\0')
			abort();
		return;
	}
	if (t.nseg > BATCH_TPL_MAX_SEGS || t.nvars > BATCH_TPL_MAX_VARS)
		abort();
	/* each {name} rendered as "{name}" gives the template back */
	const char *vals[BATCH_TPL_MAX_VARS];
	size_t lens[BATCH_TPL_MAX_VARS];
	char names[BATCH_TPL_MAX_VARS][BATCH_NAME_MAX + 3];
	for (size_t v = 0; v < t.nvars; v++) {
		size_t n = strlen(t.vars[v]);
		if (n == 0 || n > BATCH_NAME_MAX)
			abort();
		names[v][0] = '{';
		memcpy(names[v] + 1, t.vars[v], n);
		names[v][n + 1] = '}';
		names[v][n + 2] = '\0';
		vals[v] = names[v];
		lens[v] = n + 2;
	}
	char *out = malloc(srclen + 1);
	if (!out)
		return;
	if (batch_tpl_render(&t, vals, lens, out, srclen + 1) != (long)srclen || memcmp(out, tpl, srclen + 1) != 0)
		abort();
	free(out);
	if (srclen > 0) {   /* one byte short of room: refused, nothing written past cap */
		out = malloc(srclen);
		if (!out)
			return;
		if (batch_tpl_render(&t, vals, lens, out, srclen) != -1)
			abort();
		free(out);
	}
}

/* Records of body[0..len) read whole: offsets and lengths into recs (2 per record). */
static size_t records_whole(const char *body, size_t len, size_t *recs, size_t max)
{
	size_t off = 0, n = 0;
	while (off < len && n < max) {
		size_t rl, next;
		int complete = batch_csv_record(body + off, len - off, &rl, &next);
		if (rl > next || next > len - off || next == 0)
			abort();
		if (complete) {
			if (body[off + next - 1] != '\n')
				abort();
		} else if (next != len - off) {
			abort();
		}
		/* no line end outside quotes inside the record */
		int quoted = 0;
		for (size_t i = 0; i < rl; i++) {
			if (body[off + i] == '"')
				quoted = !quoted;
			else if (body[off + i] == '\n' && !quoted)
				abort();
		}
		recs[2 * n] = off;
		recs[2 * n + 1] = rl;
		n++;
		off += next;
	}
	return n;
}

/*
 * The same records read as pushgatectl reads a file: a buffer of cap
 * bytes refilled by reads of 1..64 bytes (sizes from seed), a partial
 * record kept at its start.  Each record must equal the whole read's.
 */
static void records_chunked(const char *body, size_t len, const size_t *recs, size_t nrec, uint8_t seed)
{
	size_t cap = len + 1, have = 0, off = 0, fed = 0, n = 0;
	int eof = 0;
	uint32_t rng = seed * 2654435761u + 1;
	char *buf = malloc(cap);
	if (!buf)
		return;
	for (;;) {
		size_t rl, next;
		int complete = batch_csv_record(buf + off, have - off, &rl, &next);
		if (!complete && !eof) {
			memmove(buf, buf + off, have - off);
			have -= off;
			off = 0;
			rng = rng * 1103515245u + 12345u;
			size_t want = 1 + (rng >> 16) % 64;
			if (want > len - fed)
				want = len - fed;
			if (want == 0)
				eof = 1;
			memcpy(buf + have, body + fed, want);
			have += want;
			fed += want;
			continue;
		}
		if (!complete && off == have)
			break;
		if (n >= nrec || rl != recs[2 * n + 1] || memcmp(buf + off, body + recs[2 * n], rl) != 0)
			abort();
		n++;
		off += next;
	}
	if (n != nrec)
		abort();
	free(buf);
}

static int cmp_to(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void check_rows(const char *tpl, const char *body, const size_t *recs, size_t nrec, size_t max_text)
{
	struct batch_csv c;
	const char *field = NULL;
	char msg[160];
	char (*tos)[21] = NULL;
	size_t ntos = 0;
	int tpl_utf8 = batch_text_ok(tpl, strlen(tpl));

	if (nrec == 0)
		return;
	char *hdr = dup_exact(body + recs[0], recs[1]);
	if (!hdr)
		return;
	msg[0] = '\0';
	int rc = batch_csv_open(&c, hdr, recs[1], tpl, max_text, &field, msg, sizeof(msg));
	free(hdr);
	if (rc < 0) {
		if (!field || msg[0] == '\0')
			abort();
		batch_csv_close(&c);
		return;
	}
	if (c.ncols == 0 || c.to_col >= c.ncols || strcmp(c.cols[c.to_col], "to") != 0)
		abort();
	tos = calloc(nrec, sizeof(*tos));
	if (!tos)
		goto out;
	for (size_t r = 1; r < nrec; r++) {
		char *rec = dup_exact(body + recs[2 * r], recs[2 * r + 1]);
		char to[21];
		const char *text = NULL;
		if (!rec)
			break;
		field = NULL;
		msg[0] = '\0';
		enum batch_row row = batch_csv_row(&c, rec, recs[2 * r + 1], to, &text, &field, msg, sizeof(msg));
		switch (row) {
		case BATCH_ROW_OK: {
			size_t n = strlen(to);
			if (n < 3 || n > 20 || strspn(to, "0123456789") != n)
				abort();
			if ((text == NULL) != (c.tpl.nvars == 0))
				abort();
			if (text && (strlen(text) > max_text || (tpl_utf8 && !batch_text_ok(text, strlen(text)))))
				abort();
			memcpy(tos[ntos++], to, 21);
			break;
		}
		case BATCH_ROW_BAD:
			if (!field || msg[0] == '\0')
				abort();
			break;
		case BATCH_ROW_EMPTY:
			break;
		case BATCH_ROW_NOMEM:
		default:
			abort();
		}
		free(rec);
	}
	/* a number is accepted once */
	qsort(tos, ntos, sizeof(*tos), cmp_to);
	for (size_t i = 1; i < ntos; i++)
		if (strcmp(tos[i - 1], tos[i]) == 0)
			abort();
out:
	free(tos);
	batch_csv_close(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_texts[] = { 1, 10, 160, 2000 };
	if (size == 0)
		return 0;
	uint8_t flags = data[0];
	data++;
	size--;

	const uint8_t *nl = memchr(data, '\n', size);
	size_t tlen = nl ? (size_t)(nl - data) : size;
	char *tpl = malloc(tlen + 1);
	if (!tpl)
		return 0;
	memcpy(tpl, data, tlen);
	tpl[tlen] = '\0';
	size_t blen = nl ? size - tlen - 1 : 0;
	char *body = dup_exact(nl ? nl + 1 : data + size, blen);
	if (!body) {
		free(tpl);
		return 0;
	}

	check_template(tpl);

	/* batch_text_ok and batch_msisdn on the raw bytes */
	if (batch_text_ok(body, blen) != text_ok_ref((const unsigned char *)body, blen))
		abort();
	{
		char out[21];
		if (batch_msisdn(body, blen, out) == 0) {
			size_t n = strlen(out);
			if (n < 3 || n > 20 || strspn(out, "0123456789") != n)
				abort();
		}
	}

	size_t maxrec = blen + 1;
	size_t *recs = malloc(2 * maxrec * sizeof(*recs));
	if (recs) {
		size_t nrec = records_whole(body, blen, recs, maxrec);
		records_chunked(body, blen, recs, nrec, flags);
		check_rows(tpl, body, recs, nrec, max_texts[flags & 3]);
		free(recs);
	}
	free(body);
	free(tpl);
	return 0;
}
