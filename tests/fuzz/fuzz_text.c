/*
 * fuzz_text.c: libFuzzer target for SMS text encoding, splitting, decoding.
 *
 * The input, as UTF-8, goes to text_encode() in every coding (exact-size
 * heap copies, so ASan sees any read or write past a bound); valid input
 * must decode back to itself, AUTO must pick GSM7 exactly when forced GSM7
 * works and UCS-2 otherwise.  The encoded text and the raw input (as if it
 * were already encoded) go to text_split() in every coding and concat mode,
 * checking: parts contiguous, in order, covering everything, none over its
 * limit, none cut inside a GSM escape pair or a UTF-16 surrogate pair, each
 * non-last part full, -1 only when the part count really exceeds max_parts.
 * The raw input also goes to text_decode() in every coding (output must be
 * valid UTF-8 of the measured length).  abort() on any violation.  Links
 * against text.c alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum text_coding codings[] = { TEXT_GSM7, TEXT_LATIN1, TEXT_UCS2 };
static const enum text_concat concats[] = {
	TEXT_CONCAT_UDH8, TEXT_CONCAT_UDH16, TEXT_CONCAT_SAR, TEXT_CONCAT_PAYLOAD,
};

/* Limits written out independently of text.c. */
static size_t limit_of(enum text_coding c, enum text_concat k, int single)
{
	if (k == TEXT_CONCAT_PAYLOAD)
		return 65535;
	if (single)
		return c == TEXT_GSM7 ? 160 : 140;
	if (c == TEXT_GSM7)
		return k == TEXT_CONCAT_UDH16 ? 152 : 153;
	if (c == TEXT_LATIN1)
		return k == TEXT_CONCAT_UDH16 ? 133 : 134;
	return k == TEXT_CONCAT_UDH16 ? 132 : 134;
}

/* Marks in cut[0..len] the offsets where a part may begin or end. */
static void mark_cuts(const uint8_t *enc, size_t len, enum text_coding c, uint8_t *cut)
{
	size_t i = 0;

	memset(cut, 0, len + 1);
	while (i < len) {
		cut[i] = 1;
		if (c == TEXT_GSM7 && enc[i] == 0x1B && i + 1 < len)
			i += 2;
		else if (c == TEXT_UCS2 && i + 3 < len && enc[i] >= 0xD8 && enc[i] <= 0xDB &&
			 enc[i + 2] >= 0xDC && enc[i + 2] <= 0xDF)
			i += 4;
		else if (c == TEXT_UCS2)
			i += 2;
		else
			i += 1;
	}
	cut[len] = 1;
}

static void check_split(const uint8_t *enc, size_t len, enum text_coding c, enum text_concat k,
			int max_parts)
{
	static struct text_part parts[TEXT_MAX_PARTS];
	uint8_t *cut;
	size_t at = 0, limit;
	int n, all, i;

	n = text_split(enc, len, c, k, parts, max_parts);
	all = text_split(enc, len, c, k, NULL, TEXT_MAX_PARTS);
	if (c == TEXT_UCS2 && len % 2 != 0) {
		if (n != -1 || all != -1)
			abort();
		return;
	}
	if (len == 0) {
		if (n != 0 || all != 0)
			abort();
		return;
	}
	if (n == -1) {
		/* refused only when it truly needs more parts than allowed */
		if (all != -1 && all <= max_parts && max_parts >= 1)
			abort();
		if (k == TEXT_CONCAT_PAYLOAD && len <= 65535 && max_parts >= 1)
			abort();
		return;
	}
	if (n < 1 || n > max_parts || n > TEXT_MAX_PARTS || n != all)
		abort();
	if (k == TEXT_CONCAT_PAYLOAD && n != 1)
		abort();
	if (n == 1 && len > limit_of(c, k, 1))
		abort();
	if (n > 1 && len <= limit_of(c, k, 1))
		abort();
	limit = limit_of(c, k, n == 1);

	cut = malloc(len + 1);
	if (cut == NULL)
		return;
	mark_cuts(enc, len, c, cut);
	for (i = 0; i < n; i++) {
		size_t end;

		if (parts[i].offset != at || parts[i].length == 0 || parts[i].length > limit)
			abort();
		end = at + parts[i].length;
		if (end > len || !cut[end])
			abort();
		if (i + 1 < n) {
			/* greedy: the next atom would not have fitted */
			size_t next = end + 1;

			while (next <= len && !cut[next])
				next++;
			if (parts[i].length + (next - end) <= limit)
				abort();
		}
		at = end;
	}
	if (at != len)
		abort();
	free(cut);
}

/* Strict UTF-8 check by asking text_encode (UCS-2 takes every scalar value). */
static int valid_utf8(const char *s, size_t len)
{
	return text_encode(s, len, TEXT_UCS2, NULL, 0, NULL, NULL) >= 0;
}

static void check_decode(const uint8_t *in, size_t len, enum text_coding c)
{
	long want = text_decode(in, len, c, NULL, 0), got;
	char *out;

	if (want < 0)
		return;
	out = malloc((size_t)want + 1);
	if (out == NULL)
		return;
	got = text_decode(in, len, c, out, (size_t)want);  /* exact room, no NUL */
	if (got != want || !valid_utf8(out, (size_t)got))
		abort();
	if (want > 0 && text_decode(in, len, c, out, (size_t)want - 1) != -1)
		abort();
	free(out);
}

static void check_encode(const char *text, size_t len, int max_parts)
{
	size_t cap = 2 * len + 1, units, i, k;
	uint8_t *enc = malloc(cap);
	char *back = malloc(len + 1);
	enum text_coding chosen, auto_chosen = TEXT_AUTO;
	long n_auto, n;
	int forced_ok[3];

	if (enc == NULL || back == NULL)
		goto out;
	n_auto = text_encode(text, len, TEXT_AUTO, enc, cap, &auto_chosen, &units);
	if ((n_auto >= 0) != valid_utf8(text, len))
		abort();
	if (n_auto >= 0 && auto_chosen != TEXT_GSM7 && auto_chosen != TEXT_UCS2)
		abort();

	for (i = 0; i < 3; i++) {
		enum text_coding c = codings[i];
		long m;

		chosen = TEXT_AUTO;
		n = text_encode(text, len, c, enc, cap, &chosen, &units);
		forced_ok[i] = n >= 0;
		if (n < 0)
			continue;
		if (n_auto < 0 || chosen != c || (size_t)n > 2 * len)
			abort();
		if ((c == TEXT_UCS2 ? units * 2 : units) != (size_t)n)
			abort();
		if (c == TEXT_LATIN1 && (size_t)n > len)
			abort();
		m = text_encode(text, len, c, NULL, 0, NULL, NULL);
		if (m != n)
			abort();
		if (n > 0 && text_encode(text, len, c, enc, (size_t)n - 1, NULL, NULL) != -1)
			abort();
		/* round trip: decode(encode(x)) == x */
		if (text_decode(enc, (size_t)n, c, back, len + 1) != (long)len ||
		    memcmp(back, text, len) != 0)
			abort();
		for (k = 0; k < sizeof concats / sizeof concats[0]; k++)
			check_split(enc, (size_t)n, c, concats[k], max_parts);
	}
	if (n_auto >= 0) {
		if (!forced_ok[2])
			abort();
		if ((auto_chosen == TEXT_GSM7) != (forced_ok[0] != 0))
			abort();
	} else if (forced_ok[0] || forced_ok[1] || forced_ok[2]) {
		abort();
	}
out:
	free(enc);
	free(back);
}

static void check_udh(const uint8_t *data, size_t size)
{
	uint8_t udh[8];
	uint16_t ref;

	if (size < 4)
		return;
	ref = (uint16_t)(data[0] << 8 | data[1]);
	if (text_udh(udh, TEXT_CONCAT_UDH8, ref, data[2], data[3]) != 6 ||
	    udh[0] != 5 || udh[1] != 0 || udh[2] != 3 || udh[3] != data[1] ||
	    udh[4] != data[2] || udh[5] != data[3])
		abort();
	if (text_udh(udh, TEXT_CONCAT_UDH16, ref, data[2], data[3]) != 7 ||
	    udh[0] != 6 || udh[1] != 8 || udh[2] != 4 || udh[3] != data[0] ||
	    udh[4] != data[1] || udh[5] != data[2] || udh[6] != data[3])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	char *str;
	size_t i, k;
	int max_parts;

	if (size == 0)
		return 0;
	/* byte 0 picks max_parts (0..255, sometimes over the cap); the rest is text */
	max_parts = data[0] == 0xFF ? 1000 : data[0];
	data++;
	size--;

	/* exact-size heap copy: any read past `size` is a heap overflow */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	if (size)
		memcpy(copy, data, size);

	check_encode((const char *)copy, size, max_parts);
	for (i = 0; i < 3; i++) {
		for (k = 0; k < sizeof concats / sizeof concats[0]; k++)
			check_split(copy, size, codings[i], concats[k], max_parts);
		check_decode(copy, size, codings[i]);
	}
	if (text_decode(copy, size, TEXT_AUTO, NULL, 0) != -1)
		abort();
	check_udh(copy, size);
	free(copy);

	str = malloc(size + 1);
	if (str == NULL)
		return 0;
	if (size)
		memcpy(str, data, size);
	str[size] = '\0';
	{
		enum text_coding c;
		int p = text_coding_parse(str);

		if (text_coding_lookup(str, &c) == 0) {
			if (p != (int)c)
				abort();
		} else if (p != -1) {
			abort();
		}
		p = text_concat_parse(str);
		if (p < -1 || p > TEXT_CONCAT_PAYLOAD)
			abort();
	}
	free(str);
	return 0;
}
