/*
 * test_text.c: SMS text behaviour: the GSM 03.38 tables byte for byte, the
 * AUTO choice (GSM7 else UCS-2, never Latin-1), strict UTF-8, part limits
 * for every concat mode, escape pairs and surrogate pairs never cut, exact
 * UDH bytes, and decode(encode(x)) == x over seeded random text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "text.h"

/* GSM 03.38 default alphabet, transcribed from the standard (0x1B = escape). */
static const char *const gsm_expected[128] = {
	"@", "£", "$", "¥", "è", "é", "ù", "ì", "ò", "Ç", "\n", "Ø", "ø", "\r", "Å", "å",
	"Δ", "_", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ", "Θ", "Ξ", NULL, "Æ", "æ", "ß", "É",
	" ", "!", "\"", "#", "¤", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/",
	"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?",
	"¡", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O",
	"P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "Ä", "Ö", "Ñ", "Ü", "§",
	"¿", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
	"p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "ä", "ö", "ñ", "ü", "à",
};

static const struct { const char *utf8; uint8_t code; } gsm_ext_expected[] = {
	{ "\f", 0x0A }, { "^", 0x14 }, { "{", 0x28 }, { "}", 0x29 }, { "\\", 0x2F },
	{ "[", 0x3C }, { "~", 0x3D }, { "]", 0x3E }, { "|", 0x40 }, { "€", 0x65 },
};

static uint8_t enc[70000];
static char dec[140000];
static char big[70000];
static struct text_part parts[TEXT_MAX_PARTS];

static long encode_str(const char *s, enum text_coding coding, enum text_coding *chosen,
		       size_t *units)
{
	return text_encode(s, strlen(s), coding, enc, sizeof enc, chosen, units);
}

/* Parts must be contiguous, in order, cover [0, len) and respect limit. */
static void assert_parts_cover(int n, size_t len, size_t limit)
{
	size_t at = 0;
	int i;

	for (i = 0; i < n; i++) {
		assert_int_equal(parts[i].offset, at);
		assert_true(parts[i].length > 0);
		assert_true(parts[i].length <= limit);
		at += parts[i].length;
	}
	assert_int_equal(at, len);
}

static void test_gsm_basic_table_matches_03_38_in_both_directions(void **state)
{
	enum text_coding chosen;
	size_t units;
	unsigned c;

	(void)state;
	for (c = 0; c < 128; c++) {
		uint8_t septet = (uint8_t)c;
		long n;

		if (gsm_expected[c] == NULL)
			continue;
		n = encode_str(gsm_expected[c], TEXT_AUTO, &chosen, &units);
		assert_int_equal(n, 1);
		assert_int_equal(chosen, TEXT_GSM7);
		assert_int_equal(units, 1);
		assert_int_equal(enc[0], c);

		n = text_decode(&septet, 1, TEXT_GSM7, dec, sizeof dec);
		assert_int_equal(n, (long)strlen(gsm_expected[c]));
		assert_memory_equal(dec, gsm_expected[c], (size_t)n);
	}
}

static void test_gsm_extension_chars_are_escape_pairs_and_round_trip(void **state)
{
	enum text_coding chosen;
	size_t units, i;

	(void)state;
	for (i = 0; i < sizeof gsm_ext_expected / sizeof gsm_ext_expected[0]; i++) {
		const char *s = gsm_ext_expected[i].utf8;
		long n = encode_str(s, TEXT_AUTO, &chosen, &units);

		assert_int_equal(n, 2);
		assert_int_equal(chosen, TEXT_GSM7);
		assert_int_equal(units, 2);
		assert_int_equal(enc[0], 0x1B);
		assert_int_equal(enc[1], gsm_ext_expected[i].code);
		n = text_decode(enc, 2, TEXT_GSM7, dec, sizeof dec);
		assert_int_equal(n, (long)strlen(s));
		assert_memory_equal(dec, s, (size_t)n);
	}
}

static void test_euro_and_bracket_count_two_septets_each(void **state)
{
	size_t units = 0;

	(void)state;
	assert_int_equal(encode_str("€", TEXT_GSM7, NULL, &units), 2);
	assert_int_equal(units, 2);
	assert_int_equal(encode_str("[", TEXT_GSM7, NULL, &units), 2);
	assert_int_equal(units, 2);
	assert_int_equal(encode_str("a[b€c", TEXT_GSM7, NULL, &units), 7);
	assert_int_equal(units, 7);
}

static void test_hello_at_dollar_underscore_is_gsm7_with_gsm_codes_not_ascii(void **state)
{
	static const uint8_t want[] = { 'h', 'e', 'l', 'l', 'o', ' ', 0x00, ' ', 0x02, ' ', 0x11 };
	enum text_coding chosen = TEXT_UCS2;
	size_t units = 0;

	(void)state;
	assert_int_equal(encode_str("hello @ $ _", TEXT_AUTO, &chosen, &units), sizeof want);
	assert_int_equal(chosen, TEXT_GSM7);
	assert_int_equal(units, sizeof want);
	assert_memory_equal(enc, want, sizeof want);
}

static void test_backtick_and_nul_are_not_gsm_so_auto_picks_ucs2(void **state)
{
	enum text_coding chosen = TEXT_GSM7;

	(void)state;
	assert_int_equal(encode_str("`", TEXT_GSM7, NULL, NULL), -1);
	assert_int_equal(encode_str("a`", TEXT_AUTO, &chosen, NULL), 4);
	assert_int_equal(chosen, TEXT_UCS2);
	assert_memory_equal(enc, "\x00" "a" "\x00" "`", 4);
	assert_int_equal(text_encode("\0", 1, TEXT_GSM7, enc, sizeof enc, NULL, NULL), -1);
}

static void test_korean_text_goes_ucs2_under_auto(void **state)
{
	static const uint8_t want[] = { 0xC5, 0x48, 0xB1, 0x55, 0xD5, 0x58, 0xC1, 0x38, 0xC6, 0x94 };
	enum text_coding chosen = TEXT_GSM7;
	size_t units = 0;

	(void)state;
	assert_int_equal(encode_str("안녕하세요", TEXT_AUTO, &chosen, &units), sizeof want);
	assert_int_equal(chosen, TEXT_UCS2);
	assert_int_equal(units, 5);
	assert_memory_equal(enc, want, sizeof want);
}

static void test_auto_never_picks_latin1_even_when_it_would_fit(void **state)
{
	enum text_coding chosen = TEXT_GSM7;
	size_t units = 0;

	(void)state;
	/* ï and ç are Latin-1 but not GSM (GSM has only Ç) */
	assert_int_equal(encode_str("naïve ça", TEXT_AUTO, &chosen, &units), 16);
	assert_int_equal(chosen, TEXT_UCS2);
	assert_int_equal(units, 8);
	assert_int_equal(encode_str("naïve ça", TEXT_LATIN1, &chosen, &units), 8);
	assert_int_equal(chosen, TEXT_LATIN1);
	assert_int_equal(enc[2], 0xEF);
}

static void test_latin1_forced_encodes_e_acute_and_refuses_hangul(void **state)
{
	enum text_coding chosen = TEXT_GSM7;
	size_t units = 0;

	(void)state;
	assert_int_equal(encode_str("café é", TEXT_LATIN1, &chosen, &units), 6);
	assert_int_equal(chosen, TEXT_LATIN1);
	assert_int_equal(units, 6);
	assert_memory_equal(enc, "caf\xE9 \xE9", 6);
	assert_int_equal(encode_str("안", TEXT_LATIN1, NULL, NULL), -1);
	assert_int_equal(encode_str("€", TEXT_LATIN1, NULL, NULL), -1);
	assert_int_equal(encode_str("안", TEXT_GSM7, NULL, NULL), -1);
}

static void test_emoji_encodes_as_surrogate_pair_of_two_units(void **state)
{
	static const uint8_t want[] = { 0xD8, 0x3D, 0xDE, 0x00, 0x00, 0x21 };
	enum text_coding chosen = TEXT_GSM7;
	size_t units = 0;

	(void)state;
	assert_int_equal(encode_str("😀!", TEXT_AUTO, &chosen, &units), 6);
	assert_int_equal(chosen, TEXT_UCS2);
	assert_int_equal(units, 3);
	assert_memory_equal(enc, want, sizeof want);
	assert_int_equal(text_decode(enc, 6, TEXT_UCS2, dec, sizeof dec), 5);
	assert_memory_equal(dec, "😀!", 5);
}

static void test_invalid_utf8_is_rejected_in_every_coding(void **state)
{
	static const char *const bad[] = {
		"\xC0\xAF",             /* overlong '/' */
		"\xC1\xBF",             /* overlong */
		"\xE0\x80\xAF",         /* overlong 3-byte */
		"\xF0\x80\x80\xAF",     /* overlong 4-byte */
		"\xED\xA0\x80",         /* U+D800 encoded */
		"\xED\xBF\xBF",         /* U+DFFF encoded */
		"\xF4\x90\x80\x80",     /* U+110000 */
		"\xF5\x80\x80\x80",     /* lead beyond F4 */
		"\xFF",
		"\xE2\x82",             /* truncated € */
		"ok\xF0\x9F\x98",       /* truncated emoji at the end */
		"\x80",                 /* stray continuation */
		"a\xC3\x28",            /* bad continuation */
	};
	static const enum text_coding codings[] = { TEXT_AUTO, TEXT_GSM7, TEXT_LATIN1, TEXT_UCS2 };
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		for (k = 0; k < 4; k++)
			assert_int_equal(encode_str(bad[i], codings[k], NULL, NULL), -1);
	/* the extremes that are valid */
	assert_int_equal(encode_str("\xF4\x8F\xBF\xBF", TEXT_UCS2, NULL, NULL), 4);
	assert_int_equal(encode_str("\xEF\xBF\xBF", TEXT_UCS2, NULL, NULL), 2);
	assert_int_equal(encode_str("\xC2\x80", TEXT_LATIN1, NULL, NULL), 1);
}

static void test_encode_refuses_small_buffer_and_measures_with_null_out(void **state)
{
	uint8_t small[3];
	size_t units = 0;

	(void)state;
	assert_int_equal(text_encode("ab€", 5, TEXT_GSM7, small, sizeof small, NULL, NULL), -1);
	assert_int_equal(text_encode("ab€", 5, TEXT_GSM7, enc, 4, NULL, NULL), 4);
	assert_memory_equal(enc, "ab\x1B\x65", 4);
	assert_int_equal(text_encode("ab€", 5, TEXT_GSM7, NULL, 0, NULL, &units), 4);
	assert_int_equal(units, 4);
	assert_int_equal(text_encode("😀", 4, TEXT_UCS2, small, sizeof small, NULL, NULL), -1);
	assert_int_equal(text_encode("", 0, TEXT_AUTO, small, sizeof small, NULL, &units), 0);
	assert_int_equal(units, 0);
	assert_int_equal(text_encode("a", 1, (enum text_coding)5, enc, sizeof enc, NULL, NULL), -1);
}

static void fill(char c, size_t n)
{
	memset(big, c, n);
	big[n] = '\0';
}

static void test_gsm_160_septets_is_one_part_and_161_is_153_plus_8(void **state)
{
	long n;

	(void)state;
	fill('a', 160);
	n = encode_str(big, TEXT_GSM7, NULL, NULL);
	assert_int_equal(n, 160);
	assert_int_equal(text_split(enc, 160, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 255), 1);
	assert_int_equal(parts[0].offset, 0);
	assert_int_equal(parts[0].length, 160);

	fill('a', 161);
	n = encode_str(big, TEXT_GSM7, NULL, NULL);
	assert_int_equal(text_split(enc, 161, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 255), 2);
	assert_int_equal(parts[0].length, 153);
	assert_int_equal(parts[1].offset, 153);
	assert_int_equal(parts[1].length, 8);
	assert_int_equal(text_split(enc, 161, TEXT_GSM7, TEXT_CONCAT_SAR, parts, 255), 2);
	assert_int_equal(parts[0].length, 153);
	assert_int_equal(text_split(enc, 161, TEXT_GSM7, TEXT_CONCAT_UDH16, parts, 255), 2);
	assert_int_equal(parts[0].length, 152);
	assert_int_equal(parts[1].length, 9);

	/* 159 septets + one extension char = 161 septets: two parts */
	fill('a', 159);
	strcat(big, "€");
	n = encode_str(big, TEXT_GSM7, NULL, NULL);
	assert_int_equal(n, 161);
	assert_int_equal(text_split(enc, 161, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 255), 2);
}

/* prefix septets of 'a', then €, then tail: where does the ESC land? */
static void split_with_euro_at(size_t prefix, enum text_concat concat, size_t limit)
{
	long n;
	int k;

	fill('a', prefix);
	strcat(big, "€bbbbbbbbbb");
	n = encode_str(big, TEXT_GSM7, NULL, NULL);
	assert_int_equal(n, (long)prefix + 12);
	assert_int_equal(enc[prefix], 0x1B);
	k = text_split(enc, (size_t)n, TEXT_GSM7, concat, parts, 255);
	assert_int_equal(k, 2);
	assert_parts_cover(k, (size_t)n, limit);
	if (prefix + 2 <= limit) {
		assert_int_equal(parts[0].length, prefix + 2); /* pair fits exactly */
	} else {
		assert_int_equal(parts[0].length, prefix); /* pair moves whole */
		assert_int_equal(enc[parts[1].offset], 0x1B);
		assert_int_equal(enc[parts[1].offset + 1], 0x65);
	}
}

static void test_extension_char_at_153_boundary_moves_whole_to_next_part(void **state)
{
	(void)state;
	split_with_euro_at(152, TEXT_CONCAT_UDH8, 153);  /* ESC at 153rd septet */
	assert_int_equal(parts[0].length, 152);
	split_with_euro_at(151, TEXT_CONCAT_UDH8, 153);  /* pair ends at 153: stays */
	assert_int_equal(parts[0].length, 153);
	split_with_euro_at(152, TEXT_CONCAT_SAR, 153);
	assert_int_equal(parts[0].length, 152);
	split_with_euro_at(151, TEXT_CONCAT_UDH16, 152); /* ESC at 152nd septet */
	assert_int_equal(parts[0].length, 151);
	split_with_euro_at(150, TEXT_CONCAT_UDH16, 152);
	assert_int_equal(parts[0].length, 152);
}

static void test_many_escapes_are_never_cut(void **state)
{
	size_t i, len;
	int k;

	(void)state;
	big[0] = 'x';
	memset(big + 1, '[', 400);
	big[401] = '\0';
	len = (size_t)encode_str(big, TEXT_GSM7, NULL, NULL);
	assert_int_equal(len, 801);
	k = text_split(enc, len, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 255);
	assert_true(k > 0);
	assert_parts_cover(k, len, 153);
	for (i = 1; i < (size_t)k; i++)
		assert_int_equal(enc[parts[i].offset], 0x1B); /* x + pairs: every part starts on ESC */
	assert_int_equal(parts[0].length, 153); /* x + 76 pairs */
	assert_int_equal(parts[1].length, 152); /* 76 pairs; 153 would cut one */
}

static void test_ucs2_70_units_is_one_part_and_71_is_67_plus_4(void **state)
{
	long n;

	(void)state;
	fill('a', 70);
	n = encode_str(big, TEXT_UCS2, NULL, NULL);
	assert_int_equal(n, 140);
	assert_int_equal(text_split(enc, 140, TEXT_UCS2, TEXT_CONCAT_UDH8, parts, 255), 1);

	fill('a', 71);
	n = encode_str(big, TEXT_UCS2, NULL, NULL);
	assert_int_equal(n, 142);
	assert_int_equal(text_split(enc, 142, TEXT_UCS2, TEXT_CONCAT_UDH8, parts, 255), 2);
	assert_int_equal(parts[0].length, 134);
	assert_int_equal(parts[1].offset, 134);
	assert_int_equal(parts[1].length, 8);
	assert_int_equal(text_split(enc, 142, TEXT_UCS2, TEXT_CONCAT_UDH16, parts, 255), 2);
	assert_int_equal(parts[0].length, 132);
	assert_int_equal(parts[1].length, 10);
	assert_int_equal(text_split(enc, 141, TEXT_UCS2, TEXT_CONCAT_UDH8, parts, 255), -1);
}

static void test_emoji_straddling_unit_67_moves_whole_to_next_part(void **state)
{
	long n;

	(void)state;
	fill('a', 66);
	strcat(big, "😀bbb");        /* units 67 and 68 are the pair; 71 units */
	n = encode_str(big, TEXT_UCS2, NULL, NULL);
	assert_int_equal(n, 142);
	assert_int_equal(text_split(enc, 142, TEXT_UCS2, TEXT_CONCAT_UDH8, parts, 255), 2);
	assert_int_equal(parts[0].length, 132);  /* 66 units */
	assert_int_equal(parts[1].offset, 132);
	assert_int_equal(parts[1].length, 10);
	assert_int_equal(enc[132], 0xD8);

	fill('a', 65);
	strcat(big, "😀bbbb");       /* pair at units 66/67: fits UDH8, not UDH16 */
	n = encode_str(big, TEXT_UCS2, NULL, NULL);
	assert_int_equal(n, 142);
	assert_int_equal(text_split(enc, 142, TEXT_UCS2, TEXT_CONCAT_UDH8, parts, 255), 2);
	assert_int_equal(parts[0].length, 134);
	assert_int_equal(text_split(enc, 142, TEXT_UCS2, TEXT_CONCAT_UDH16, parts, 255), 2);
	assert_int_equal(parts[0].length, 130);  /* 65 units */
	assert_int_equal(enc[parts[1].offset], 0xD8);
}

static void test_latin1_splits_at_140_then_134_or_133(void **state)
{
	(void)state;
	memset(enc, 'z', 141);
	assert_int_equal(text_split(enc, 140, TEXT_LATIN1, TEXT_CONCAT_UDH8, parts, 255), 1);
	assert_int_equal(text_split(enc, 141, TEXT_LATIN1, TEXT_CONCAT_UDH8, parts, 255), 2);
	assert_int_equal(parts[0].length, 134);
	assert_int_equal(parts[1].length, 7);
	assert_int_equal(text_split(enc, 141, TEXT_LATIN1, TEXT_CONCAT_UDH16, parts, 255), 2);
	assert_int_equal(parts[0].length, 133);
	assert_int_equal(parts[1].length, 8);
}

static void test_payload_is_one_part_up_to_65535_octets(void **state)
{
	(void)state;
	memset(enc, 'a', 65536);
	assert_int_equal(text_split(enc, 1000, TEXT_GSM7, TEXT_CONCAT_PAYLOAD, parts, 1), 1);
	assert_int_equal(parts[0].length, 1000);
	assert_int_equal(text_split(enc, 65535, TEXT_LATIN1, TEXT_CONCAT_PAYLOAD, parts, 1), 1);
	assert_int_equal(parts[0].offset, 0);
	assert_int_equal(parts[0].length, 65535);
	assert_int_equal(text_split(enc, 65536, TEXT_UCS2, TEXT_CONCAT_PAYLOAD, parts, 1), -1);
}

static void test_too_many_parts_is_refused(void **state)
{
	(void)state;
	memset(enc, 'a', 255 * 153 + 1);
	assert_int_equal(text_split(enc, 255 * 153, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 255), 255);
	assert_parts_cover(255, 255 * 153, 153);
	assert_int_equal(text_split(enc, 255 * 153 + 1, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 255), -1);
	assert_int_equal(text_split(enc, 255 * 153, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 1000), 255);
	assert_int_equal(text_split(enc, 4 * 153, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 4), 4);
	assert_int_equal(text_split(enc, 4 * 153 + 1, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 4), -1);
	assert_int_equal(text_split(enc, 161, TEXT_GSM7, TEXT_CONCAT_UDH8, NULL, 4), 2);
	assert_int_equal(text_split(enc, 161, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 0), -1);
}

static void test_empty_text_is_zero_parts(void **state)
{
	(void)state;
	assert_int_equal(text_split(enc, 0, TEXT_GSM7, TEXT_CONCAT_UDH8, parts, 255), 0);
	assert_int_equal(text_split(NULL, 0, TEXT_UCS2, TEXT_CONCAT_PAYLOAD, parts, 255), 0);
	assert_int_equal(text_split(enc, 10, TEXT_AUTO, TEXT_CONCAT_UDH8, parts, 255), -1);
}

static void test_udh_bytes_are_exact(void **state)
{
	static const uint8_t want8[] = { 0x05, 0x00, 0x03, 0x34, 0x03, 0x01 };
	static const uint8_t want16[] = { 0x06, 0x08, 0x04, 0x12, 0x34, 0x03, 0x02 };
	uint8_t udh[8];

	(void)state;
	memset(udh, 0xEE, sizeof udh);
	assert_int_equal(text_udh(udh, TEXT_CONCAT_UDH8, 0x1234, 3, 1), 6);
	assert_memory_equal(udh, want8, sizeof want8);
	assert_int_equal(udh[6], 0xEE);
	assert_int_equal(text_udh(udh, TEXT_CONCAT_UDH16, 0x1234, 3, 2), 7);
	assert_memory_equal(udh, want16, sizeof want16);
	assert_int_equal(udh[7], 0xEE);
	assert_int_equal(text_udh(udh, TEXT_CONCAT_SAR, 1, 2, 1), 0);
	assert_int_equal(text_udh(udh, TEXT_CONCAT_PAYLOAD, 1, 2, 1), 0);
	/* UDH + longest multipart text still fits one short_message */
	assert_true(6 + 153 <= TEXT_PART_MAX && 7 + 152 <= TEXT_PART_MAX && 6 + 134 <= 140);
}

static void test_gsm_decode_of_unknown_escape_gives_base_char(void **state)
{
	static const uint8_t unknown[] = { 0x1B, 0x41, 0x1B, 0x00 };
	static const uint8_t esc_esc[] = { 'a', 0x1B, 0x1B, 'b' };
	static const uint8_t lone[] = { 'a', 0x1B };
	static const uint8_t high[] = { 'a', 0x80 };

	(void)state;
	assert_int_equal(text_decode(unknown, 4, TEXT_GSM7, dec, sizeof dec), 2);
	assert_string_equal(dec, "A@");
	assert_int_equal(text_decode(esc_esc, 4, TEXT_GSM7, dec, sizeof dec), 3);
	assert_string_equal(dec, "a b");
	assert_int_equal(text_decode(lone, 2, TEXT_GSM7, dec, sizeof dec), 2);
	assert_string_equal(dec, "a ");
	assert_int_equal(text_decode(high, 2, TEXT_GSM7, dec, sizeof dec), -1);
	assert_int_equal(text_decode(unknown, 4, TEXT_GSM7, dec, 1), -1);
	assert_int_equal(text_decode(unknown, 4, TEXT_AUTO, dec, sizeof dec), -1);
}

static void test_ucs2_decode_replaces_unpaired_surrogate_and_refuses_odd_length(void **state)
{
	static const uint8_t lone_hi[] = { 0xD8, 0x3D, 0x00, 0x41 };
	static const uint8_t lone_lo[] = { 0xDE, 0x00 };

	(void)state;
	assert_int_equal(text_decode(lone_hi, 4, TEXT_UCS2, dec, sizeof dec), 4);
	assert_string_equal(dec, "\xEF\xBF\xBD" "A");
	assert_int_equal(text_decode(lone_lo, 2, TEXT_UCS2, dec, sizeof dec), 3);
	assert_string_equal(dec, "\xEF\xBF\xBD");
	assert_int_equal(text_decode(lone_hi, 3, TEXT_UCS2, dec, sizeof dec), -1);
}

static void test_names_parse_and_auto_is_told_from_unknown(void **state)
{
	enum text_coding c = TEXT_UCS2;

	(void)state;
	assert_int_equal(text_coding_parse("gsm7"), TEXT_GSM7);
	assert_int_equal(text_coding_parse("latin1"), TEXT_LATIN1);
	assert_int_equal(text_coding_parse("UCS2"), TEXT_UCS2);
	assert_int_equal(text_coding_parse("auto"), TEXT_AUTO);
	assert_int_equal(text_coding_parse("utf8"), -1);
	assert_int_equal(text_coding_lookup("auto", &c), 0);
	assert_int_equal(c, TEXT_AUTO);
	assert_int_equal(text_coding_lookup("gsm", &c), -1);
	assert_int_equal(text_coding_lookup("gsm77", &c), -1);
	assert_int_equal(text_concat_parse("udh8"), TEXT_CONCAT_UDH8);
	assert_int_equal(text_concat_parse("udh16"), TEXT_CONCAT_UDH16);
	assert_int_equal(text_concat_parse("sar"), TEXT_CONCAT_SAR);
	assert_int_equal(text_concat_parse("payload"), TEXT_CONCAT_PAYLOAD);
	assert_int_equal(text_concat_parse("udh"), -1);
	assert_int_equal(text_concat_parse(""), -1);
}

/* ---- seeded random round trips --------------------------------------- */

static uint32_t rng_state = 20240611u;

static uint32_t rng(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return rng_state >> 8;
}

static size_t put_utf8(char *p, uint32_t cp)
{
	if (cp < 0x80) {
		p[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (char)(0xC0 | (cp >> 6));
		p[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (char)(0xE0 | (cp >> 12));
		p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		p[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	p[0] = (char)(0xF0 | (cp >> 18));
	p[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	p[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	p[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* pool 1: Latin-1; otherwise any Unicode scalar value, all UTF-8 lengths */
static uint32_t random_char(int pool)
{
	uint32_t cp;

	if (pool == 1)
		return rng() % 0x100u;
	do {
		switch (rng() % 4u) {
		case 0: cp = rng() % 0x80u; break;
		case 1: cp = rng() % 0x800u; break;
		case 2: cp = rng() % 0x10000u; break;
		default: cp = 0x10000u + rng() % 0x100000u; break;
		}
	} while (cp >= 0xD800 && cp <= 0xDFFF);
	return cp;
}

static void test_decode_of_encode_is_identity_for_random_text(void **state)
{
	static const enum text_coding per_pool[] = { TEXT_GSM7, TEXT_LATIN1, TEXT_UCS2 };
	enum text_coding chosen;
	int iter;

	(void)state;
	for (iter = 0; iter < 3000; iter++) {
		int pool = iter % 3;
		size_t n = rng() % 200u, len = 0, i, units;
		long e, d;

		for (i = 0; i < n; i++) {
			if (pool == 0) {
				unsigned c = rng() % 138u;
				const char *s;

				if (c >= 128)
					s = gsm_ext_expected[c - 128].utf8;
				else
					s = gsm_expected[c] != NULL ? gsm_expected[c] : "x";
				memcpy(big + len, s, strlen(s));
				len += strlen(s);
			} else {
				len += put_utf8(big + len, random_char(pool));
			}
		}
		e = text_encode(big, len, TEXT_AUTO, enc, sizeof enc, &chosen, &units);
		assert_true(e >= 0);
		if (pool == 0 || n == 0)
			assert_int_equal(chosen, TEXT_GSM7);
		d = text_decode(enc, (size_t)e, chosen, dec, sizeof dec);
		assert_int_equal(d, (long)len);
		assert_memory_equal(dec, big, len);

		e = text_encode(big, len, per_pool[pool], enc, sizeof enc, &chosen, &units);
		assert_true(e >= 0);
		assert_int_equal(chosen, per_pool[pool]);
		if (pool == 2)
			assert_int_equal(units * 2, (size_t)e);
		d = text_decode(enc, (size_t)e, chosen, dec, sizeof dec);
		assert_int_equal(d, (long)len);
		assert_memory_equal(dec, big, len);

		/* any valid text is UCS-2 encodable and round-trips */
		e = text_encode(big, len, TEXT_UCS2, enc, sizeof enc, NULL, NULL);
		assert_true(e >= 0);
		d = text_decode(enc, (size_t)e, TEXT_UCS2, dec, sizeof dec);
		assert_int_equal(d, (long)len);
		assert_memory_equal(dec, big, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gsm_basic_table_matches_03_38_in_both_directions),
		cmocka_unit_test(test_gsm_extension_chars_are_escape_pairs_and_round_trip),
		cmocka_unit_test(test_euro_and_bracket_count_two_septets_each),
		cmocka_unit_test(test_hello_at_dollar_underscore_is_gsm7_with_gsm_codes_not_ascii),
		cmocka_unit_test(test_backtick_and_nul_are_not_gsm_so_auto_picks_ucs2),
		cmocka_unit_test(test_korean_text_goes_ucs2_under_auto),
		cmocka_unit_test(test_auto_never_picks_latin1_even_when_it_would_fit),
		cmocka_unit_test(test_latin1_forced_encodes_e_acute_and_refuses_hangul),
		cmocka_unit_test(test_emoji_encodes_as_surrogate_pair_of_two_units),
		cmocka_unit_test(test_invalid_utf8_is_rejected_in_every_coding),
		cmocka_unit_test(test_encode_refuses_small_buffer_and_measures_with_null_out),
		cmocka_unit_test(test_gsm_160_septets_is_one_part_and_161_is_153_plus_8),
		cmocka_unit_test(test_extension_char_at_153_boundary_moves_whole_to_next_part),
		cmocka_unit_test(test_many_escapes_are_never_cut),
		cmocka_unit_test(test_ucs2_70_units_is_one_part_and_71_is_67_plus_4),
		cmocka_unit_test(test_emoji_straddling_unit_67_moves_whole_to_next_part),
		cmocka_unit_test(test_latin1_splits_at_140_then_134_or_133),
		cmocka_unit_test(test_payload_is_one_part_up_to_65535_octets),
		cmocka_unit_test(test_too_many_parts_is_refused),
		cmocka_unit_test(test_empty_text_is_zero_parts),
		cmocka_unit_test(test_udh_bytes_are_exact),
		cmocka_unit_test(test_gsm_decode_of_unknown_escape_gives_base_char),
		cmocka_unit_test(test_ucs2_decode_replaces_unpaired_surrogate_and_refuses_odd_length),
		cmocka_unit_test(test_names_parse_and_auto_is_told_from_unknown),
		cmocka_unit_test(test_decode_of_encode_is_identity_for_random_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
