/*
 * kform.c: the parameters of Kannel's sendsms, read from a request's form
 * body, X-Kannel-* headers and query string (docs/kannel.md lists what is
 * honoured).  Decodes application/x-www-form-urlencoded values, converts
 * the text from its charset to UTF-8 (iconv, whose output is checked
 * again: glibc passes code points past U+10FFFF), splits and checks the
 * receivers, and checks every other field against Kannel's rules, naming a
 * refusal with Kannel's own answer text.
 *
 * Owns nothing beyond the struct kform_msg it fills.  Never does I/O, never
 * logs (the password and the text pass through it), never trusts a byte:
 * every value is bounded by the length it came with.  kannel.c is the door.
 */
#include "kform.h"

#include <ctype.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

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

int kform_param(const struct kform_src *src, const char *name, const char *alias, const char *header,
		char **out, size_t *len)
{
	const char *names[2] = { name, alias };
	const char *v = NULL;
	size_t vlen = 0;
	int raw = 0;
	for (int i = 0; i < 2 && !v && src->form; i++)
		if (names[i])
			v = form_find(src->form, src->form_len, names[i], &vlen);
	if (!v && src->header && header) {
		char h[64];
		snprintf(h, sizeof(h), "X-Kannel-%s", header);
		v = src->header(src->header_arg, h);
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

int kform_param_small(const struct kform_src *src, const char *name, const char *alias, const char *header,
		      char *buf, size_t cap)
{
	char *v = NULL;
	size_t n = 0;
	int rc = kform_param(src, name, alias, header, &v, &n);
	if (rc <= 0)
		return rc;
	rc = n < cap && !memchr(v, '\0', n) ? 1 : -1;
	if (rc == 1)
		memcpy(buf, v, n + 1);
	free(v);
	return rc;
}

/* An integer parameter in [min, max]; absent or empty: *out = -1.  0, or -1 when misformed. */
static int param_int(const struct kform_src *src, const char *name, const char *alias, const char *header,
		     long min, long max, long *out)
{
	char buf[24];
	*out = -1;
	int rc = kform_param_small(src, name, alias, header, buf, sizeof(buf));
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

static int append_denied(struct kform_msg *m, const char *w, size_t n)
{
	size_t have = m->denied ? strlen(m->denied) : 0;
	char *d = realloc(m->denied, have + n + 2);
	if (!d)
		return -1;
	d[have] = ' ';
	/* echoed in a text/html answer: printable ASCII without markup, the rest as '?' */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)w[i];
		d[have + 1 + i] = c > 0x20 && c < 0x7f && !strchr("<>&\"'", c) ? (char)c : '?';
	}
	d[have + n + 1] = '\0';
	m->denied = d;
	return 0;
}

/* to: receivers separated by blanks (Kannel splits on white space), deduplicated. */
static int parse_to(struct kform_msg *m, const char *to, size_t max)
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
		m->bad_text = "Too many receivers, rejected";
		return -1;
	}
	m->to = calloc(words ? words : 1, sizeof(*m->to));
	if (!m->to)
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
			if (append_denied(m, w, n > 32 ? 32 : n) < 0)
				return -2;
			continue;
		}
		size_t j;
		for (j = 0; j < m->n_to && strcmp(m->to[j], num); j++)
			;
		if (j == m->n_to)
			memcpy(m->to[m->n_to++], num, sizeof(num));
	}
	if (m->n_to == 0) {
		m->bad_text = "Number(s) has/have been denied by white- and/or black-lists.";
		return -1;
	}
	return 0;
}

static int charset_name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n < KFORM_CHARSET_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:") == n;
}

void kform_content_charset(const char *ct, char *out, size_t cap)
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

int kform_parse(struct kform_msg *m, const struct kform_src *src, const char *raw_body, size_t raw_len,
		const char *raw_charset, int binary_body, size_t max_recipients, size_t max_text)
{
	char *v = NULL;
	size_t vlen = 0;
	long coding, mask;
	int rc;

	memset(m, 0, sizeof(*m));
	m->validity = m->deferred = -1;
#define BAD(t) do { m->bad_text = (t); goto bad; } while (0)
	/* to */
	rc = kform_param(src, "to", NULL, "To", &v, &vlen);
	if (rc < 0)
		goto oom;
	if (rc == 0)
		BAD(src->header ? "Missing receiver(s) number(s), rejected" : "Missing receiver number, rejected");
	if (vlen == 0)
		BAD("Empty receiver number not allowed, rejected");
	if (memchr(v, '\0', vlen))
		BAD("Number(s) has/have been denied by white- and/or black-lists.");
	rc = parse_to(m, v, max_recipients);
	free(v);
	v = NULL;
	if (rc == -2)
		goto oom;
	if (rc < 0)
		goto bad;

	/* from */
	rc = kform_param_small(src, "from", NULL, "From", m->from, sizeof(m->from));
	if (rc == 0 || (rc == 1 && m->from[0] == '\0'))
		BAD("Sender missing and no global set, rejected");
	if (rc < 0)
		BAD("Sender field misformed, rejected");
	for (const char *p = m->from; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			BAD("Sender field misformed, rejected");

	/* dlr-url, dlr-mask */
	char *url = NULL;
	size_t ulen = 0;
	rc = kform_param(src, "dlr-url", "dlrurl", "DLR-Url", &url, &ulen);
	if (rc < 0)
		goto oom;
	if (param_int(src, "dlr-mask", "dlrmask", "DLR-Mask", 0, 63, &mask) < 0) {
		free(url);
		BAD("DLR-Mask field misformed, rejected");
	}
	if (rc == 1 && ulen > 0) {
		int ok = ulen <= KFORM_DLR_URL_MAX &&
			 (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
		for (size_t i = 0; ok && i < ulen; i++)
			ok = (unsigned char)url[i] > 0x20 && (unsigned char)url[i] < 0x7f;
		if (!ok) {
			free(url);
			BAD("DLR-URL field misformed, rejected");
		}
		if (mask > 0) {
			m->dlr_url = url;   /* kept */
			url = NULL;
			m->dlr_mask = (int)mask;
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
	char charset[KFORM_CHARSET_MAX];
	if (raw_charset && raw_charset[0]) {
		util_strlcpy(charset, raw_charset, sizeof(charset));
	} else {
		rc = kform_param_small(src, "charset", NULL, "Charset", charset, sizeof(charset));
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
		rc = kform_param(src, "text", NULL, NULL, &tv, &tlen);
		if (rc < 0)
			goto oom;
		text = tv;
	}
	size_t ulen8 = 0;
	rc = text && tlen > 0 ? to_utf8(charset, text, tlen, &m->text, &ulen8) : 1;
	free(tv);
	if (rc > 0)
		BAD("Missing text, rejected");
	if (rc < 0)
		BAD("Charset or body misformed, rejected");
	if (ulen8 == 0)
		BAD("Missing text, rejected");
	if (memchr(m->text, '\0', ulen8) || !util_utf8_valid(m->text, ulen8))
		BAD("Charset or body misformed, rejected");
	if (ulen8 > max_text)
		BAD("Text too long, rejected");

	/* validity, deferred (minutes), channels (pushgate's) */
	if (param_int(src, "validity", NULL, "Validity", 1, KFORM_VALIDITY_MAX, &m->validity) < 0)
		BAD("Validity field misformed, rejected");
	if (param_int(src, "deferred", NULL, "Deferred", 0, KFORM_DEFERRED_MAX, &m->deferred) < 0)
		BAD("Deferred field misformed, rejected");
	char ch[16];
	rc = kform_param_small(src, "channels", NULL, "Channels", ch, sizeof(ch));
	if (rc < 0)
		BAD("Channels field misformed, rejected");
	if (rc == 1 && ch[0]) {
		static const char *const ok[] = { "push,sms", "sms,push", "sms", "push" };
		size_t i;
		for (i = 0; i < sizeof(ok) / sizeof(ok[0]) && strcmp(ch, ok[i]); i++)
			;
		if (i == sizeof(ok) / sizeof(ok[0]))
			BAD("Channels field misformed, rejected");
		util_strlcpy(m->channels, ok[i], sizeof(m->channels));
	}
#undef BAD
	m->bad_text = NULL;
	return 0;
bad:
	free(v);
	return -1;
oom:
	free(v);
	return -2;
}

void kform_msg_free(struct kform_msg *m)
{
	free(m->text);
	free(m->to);
	free(m->denied);
	free(m->dlr_url);
	m->text = NULL;
	m->to = NULL;
	m->denied = NULL;
	m->dlr_url = NULL;
}
