/*
 * fuzz_kannel.c: libFuzzer target for Kannel's sendsms parameters
 * (kform.c): form decoding and lookup, receivers, the text's charset
 * conversion to UTF-8, and every field's checks.
 *
 * Input: byte 0 = flags (bits 0-1: the request's shape, 0 a form body,
 * 1 a raw text body with X-Kannel-* headers, 2 the query alone; bit 2: the
 * raw body is application/octet-stream; bit 3: max_recipients 2 instead
 * of 1000; bit 4: max_text 16 instead of 4096), then parts separated by
 * "\n#\n": the body, the query string, a Content-Type header, and header
 * lines "Name: value".  Every part is an exact-size heap copy.  Checks
 * what a parse promises: a refusal names Kannel's answer; an accepted
 * message has 1..max_recipients distinct 3-20 digit receivers, a printable
 * sender, a non-empty UTF-8 text without NUL within max_text, a dlr-url
 * only with a mask, fields within their bounds, a denied list safe to echo
 * in HTML.  abort() on any violation.  Links kform.c and util.c alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_utf8.h"
#include "kform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEP "\n#\n"
#define MAX_PARTS 16

struct hdrs {
	size_t n;
	char  *name[MAX_PARTS];
	char  *value[MAX_PARTS];
};

static const char *find_header(const void *arg, const char *name)
{
	const struct hdrs *h = arg;
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->name[i], name) == 0)
			return h->value[i];
	return NULL;
}

/* Strict UTF-8 (no surrogates, no overlongs, at most U+10FFFF). */
static int utf8_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;
	uint32_t cp;
	while (i < len)
		if (!fuzz_utf8_next(s, len, &i, &cp))
			return 0;
	return 1;
}

static int digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	return n >= min && n <= max && strspn(s, "0123456789") == n;
}

static void check_msg(const struct kform_msg *m, int rc, size_t max_recipients, size_t max_text)
{
	if (rc == -1) {
		if (!m->bad_text || !m->bad_text[0])
			abort();
		return;
	}
	if (rc != 0 || m->bad_text)
		abort();
	if (m->n_to < 1 || m->n_to > max_recipients || !m->to)
		abort();
	for (size_t i = 0; i < m->n_to; i++) {
		if (!digits(m->to[i], 3, 20))
			abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->to[i], m->to[j]) == 0)
				abort();
	}
	size_t fl = strnlen(m->from, sizeof(m->from));
	if (fl == 0 || fl >= sizeof(m->from))
		abort();
	for (size_t i = 0; i < fl; i++)
		if ((unsigned char)m->from[i] < 0x20 || (unsigned char)m->from[i] > 0x7e)
			abort();
	if (!m->text)
		abort();
	size_t tl = strlen(m->text);
	if (tl == 0 || tl > max_text || !utf8_ok((const unsigned char *)m->text, tl))
		abort();
	if (m->dlr_url) {
		size_t ul = strlen(m->dlr_url);
		if (m->dlr_mask < 1 || m->dlr_mask > 63 || ul > KFORM_DLR_URL_MAX ||
		    (strncasecmp(m->dlr_url, "http://", 7) != 0 && strncasecmp(m->dlr_url, "https://", 8) != 0))
			abort();
		for (size_t i = 0; i < ul; i++)
			if ((unsigned char)m->dlr_url[i] <= 0x20 || (unsigned char)m->dlr_url[i] >= 0x7f)
				abort();
	} else if (m->dlr_mask != 0) {
		abort();
	}
	if (m->validity != -1 && (m->validity < 1 || m->validity > KFORM_VALIDITY_MAX))
		abort();
	if (m->deferred != -1 && (m->deferred < 0 || m->deferred > KFORM_DEFERRED_MAX))
		abort();
	if (m->channels[0] && strcmp(m->channels, "push,sms") && strcmp(m->channels, "sms,push") &&
	    strcmp(m->channels, "sms") && strcmp(m->channels, "push"))
		abort();
	if (m->denied) {
		if (m->denied[0] != ' ')
			abort();
		for (const char *p = m->denied; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || strchr("<>&\"'", *p))
				abort();
	}
}

static void check_params(const struct kform_src *src)
{
	static const char *const names[] = { "username", "password", "text", "to", "from", "charset" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *v = NULL;
		size_t n = 0;
		int rc = kform_param(src, names[i], "user", "Username", &v, &n);
		if (rc < 0 || rc > 1 || (rc == 1 && (!v || v[n] != '\0')))
			abort();
		char small[9];
		int rs = kform_param_small(src, names[i], "user", "Username", small, sizeof(small));
		if (rs != (rc == 0 ? 0 : n < sizeof(small) && !memchr(v, '\0', n) ? 1 : -1))
			abort();
		if (rs == 1 && (strlen(small) != n || memcmp(small, v, n) != 0))
			abort();
		free(v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *part[MAX_PARTS];
	size_t plen[MAX_PARTS], np = 0;
	struct hdrs h = { 0 };

	if (size == 0)
		return 0;
	uint8_t flags = data[0];
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	while (np < MAX_PARTS) {
		const char *s = memmem(p, (size_t)(end - p), SEP, 3);
		const char *pe = s && np + 1 < MAX_PARTS ? s : end;
		plen[np] = (size_t)(pe - p);
		part[np] = malloc(plen[np] + 1);
		if (!part[np])
			goto out;
		memcpy(part[np], p, plen[np]);
		part[np][plen[np]] = '\0';
		np++;
		if (pe == end)
			break;
		p = pe + 3;
	}
	/* header lines "Name: value" from the fourth part on */
	for (size_t i = 3; i < np; i++) {
		char *colon = strchr(part[i], ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ')
			v++;
		h.name[h.n] = part[i];
		h.value[h.n++] = v;
	}

	int shape = flags & 3;
	struct kform_src src = { .query = np > 1 ? part[1] : "", .query_len = np > 1 ? plen[1] : 0 };
	const char *raw = NULL;
	size_t raw_len = 0;
	char charset[KFORM_CHARSET_MAX] = "";
	if (shape == 0) {
		src.form = part[0];
		src.form_len = plen[0];
	} else if (shape == 1) {
		raw = part[0];
		raw_len = plen[0];
		src.header = find_header;
		src.header_arg = &h;
		kform_content_charset(np > 2 ? part[2] : NULL, charset, sizeof(charset));
		if (!memchr(charset, '\0', sizeof(charset)))
			abort();
	}
	{
		char tiny[1];
		kform_content_charset(np > 2 ? part[2] : NULL, tiny, sizeof(tiny));
		if (tiny[0] != '\0')
			abort();
	}
	check_params(&src);

	size_t max_recipients = flags & 8 ? 2 : 1000, max_text = flags & 16 ? 16 : 4096;
	struct kform_msg m;
	int rc = kform_parse(&m, &src, raw, raw_len, charset, shape == 1 && (flags & 4), max_recipients, max_text);
	check_msg(&m, rc, max_recipients, max_text);
	kform_msg_free(&m);
out:
	for (size_t i = 0; i < np; i++)
		free(part[i]);
	return 0;
}
