/*
 * text.c: message text for SMS.  Turns UTF-8 into GSM 03.38 septets
 * (default alphabet + extension table, one septet per octet as SMPP
 * data_coding 0 carries them), Latin-1 or UCS-2 (UTF-16BE, surrogate pairs
 * above U+FFFF) and back, splits encoded text into parts that never cut a
 * GSM escape pair or a UTF-16 surrogate pair, and builds concatenation UDHs.
 *
 * TEXT_AUTO picks GSM7 when every character is in the GSM table (basic or
 * extension), otherwise UCS-2.  It never picks Latin-1: many SMSCs mishandle
 * data_coding 3, so Latin-1 is used only when a route forces it.
 *
 * Owns nothing: pure functions over caller memory.  Must never read or write
 * past a given length, allocate, block, or take more than O(len) time; text
 * from an API client or an MO from a carrier is untrusted.  Invalid UTF-8
 * (overlong forms, UTF-8-encoded surrogates, > U+10FFFF, truncated or stray
 * continuation bytes) is refused, never repaired.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "text.h"

#define GSM_ESC 0x1B
#define NO_CHAR 0xFFFFFFFFu

/* GSM 03.38 default alphabet: septet -> Unicode.  0x1B is the escape. */
static const uint16_t gsm_basic[128] = {
	0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, /* @ £ $ ¥ è é ù ì */
	0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5, /* ò Ç LF Ø ø CR Å å */
	0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, /* Δ _ Φ Γ Λ Ω Π Ψ */
	0x03A3, 0x0398, 0x039E, 0x0020, 0x00C6, 0x00E6, 0x00DF, 0x00C9, /* Σ Θ Ξ ESC Æ æ ß É */
	0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027, /* SP ! " # ¤ % & ' */
	0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F, /* ( ) * + , - . / */
	0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,
	0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F,
	0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, /* ¡ A..G */
	0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F,
	0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057,
	0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7, /* X Y Z Ä Ö Ñ Ü § */
	0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, /* ¿ a..g */
	0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F,
	0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077,
	0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0, /* x y z ä ö ñ ü à */
};
/*
 * gsm_basic[0x1B] is what ESC ESC decodes to: 03.38 reserves it for a
 * further table and says to display a space.  Encode skips that slot.
 */

/* GSM 03.38 extension table, reached by ESC + code. */
static const struct { uint8_t code; uint16_t cp; } gsm_ext[] = {
	{ 0x0A, 0x000C }, /* form feed */
	{ 0x14, 0x005E }, /* ^ */
	{ 0x28, 0x007B }, /* { */
	{ 0x29, 0x007D }, /* } */
	{ 0x2F, 0x005C }, /* \ */
	{ 0x3C, 0x005B }, /* [ */
	{ 0x3D, 0x007E }, /* ~ */
	{ 0x3E, 0x005D }, /* ] */
	{ 0x40, 0x007C }, /* | */
	{ 0x65, 0x20AC }, /* € */
};
#define GSM_EXT_N (sizeof gsm_ext / sizeof gsm_ext[0])

/* Internal encode failures; text_encode turns all of them into -1. */
#define ENC_BAD_UTF8      (-1)
#define ENC_UNREPRESENTED (-2)
#define ENC_NO_ROOM       (-3)

/* ---- UTF-8 ------------------------------------------------------------ */

/*
 * Reads one scalar value at s[*pos] (pos < len).  Strict RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF, no truncation.
 */
static int utf8_next(const uint8_t *s, size_t len, size_t *pos, uint32_t *cp)
{
	size_t i = *pos, need, k;
	uint32_t c = s[i], min;

	if (c < 0x80) {
		*cp = c;
		*pos = i + 1;
		return 0;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1; c &= 0x1F; min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2; c &= 0x0F; min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3; c &= 0x07; min = 0x10000;
	} else {
		return -1; /* continuation byte, C0/C1 overlong lead, F5..FF */
	}
	if (len - i - 1 < need)
		return -1;
	for (k = 1; k <= need; k++) {
		uint8_t b = s[i + k];

		if ((b & 0xC0) != 0x80)
			return -1;
		c = (c << 6) | (b & 0x3Fu);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return -1;
	*cp = c;
	*pos = i + 1 + need;
	return 0;
}

/* Appends cp as UTF-8 to out[*n..cap); out may be NULL to measure. */
static int utf8_put(uint32_t cp, char *out, size_t cap, size_t *n)
{
	uint8_t b[4];
	size_t k, w;

	if (cp < 0x80) {
		b[0] = (uint8_t)cp; w = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xC0 | (cp >> 6));
		b[1] = (uint8_t)(0x80 | (cp & 0x3F)); w = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xE0 | (cp >> 12));
		b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (uint8_t)(0x80 | (cp & 0x3F)); w = 3;
	} else {
		b[0] = (uint8_t)(0xF0 | (cp >> 18));
		b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (uint8_t)(0x80 | (cp & 0x3F)); w = 4;
	}
	if (out != NULL) {
		if (cap - *n < w)
			return -1;
		for (k = 0; k < w; k++)
			out[*n + k] = (char)b[k];
	}
	*n += w;
	return 0;
}

/* ---- GSM 03.38 -------------------------------------------------------- */

/* Septets for cp: 1 (code in *c0), 2 (ESC, *c0 = ext code) or 0 if none. */
static int gsm_lookup(uint32_t cp, uint8_t *c0)
{
	size_t i;

	if (cp < 128 && gsm_basic[cp] == cp && cp != GSM_ESC) {
		*c0 = (uint8_t)cp; /* the common case: same code as ASCII */
		return 1;
	}
	for (i = 0; i < 128; i++) {
		if (i != GSM_ESC && gsm_basic[i] == cp) {
			*c0 = (uint8_t)i;
			return 1;
		}
	}
	for (i = 0; i < GSM_EXT_N; i++) {
		if (gsm_ext[i].cp == cp) {
			*c0 = gsm_ext[i].code;
			return 2;
		}
	}
	return 0;
}

static uint32_t gsm_ext_char(uint8_t code)
{
	size_t i;

	for (i = 0; i < GSM_EXT_N; i++)
		if (gsm_ext[i].code == code)
			return gsm_ext[i].cp;
	return NO_CHAR;
}

/* ---- encode ----------------------------------------------------------- */

static int put_octet(uint8_t *out, size_t cap, size_t *n, uint8_t b)
{
	if (out != NULL) {
		if (*n >= cap)
			return -1;
		out[*n] = b;
	}
	(*n)++;
	return 0;
}

/*
 * Encodes in[0..len) as one fixed coding into out (NULL: measure only).
 * Returns octets, or ENC_*; *units gets the coding's unit count.
 */
static long encode_as(const uint8_t *in, size_t len, enum text_coding coding, uint8_t *out,
		      size_t cap, size_t *units)
{
	size_t pos = 0, n = 0, u = 0;
	uint32_t cp;
	uint8_t c0;
	int w;

	while (pos < len) {
		if (utf8_next(in, len, &pos, &cp) != 0)
			return ENC_BAD_UTF8;
		switch (coding) {
		case TEXT_GSM7:
			w = gsm_lookup(cp, &c0);
			if (w == 0)
				return ENC_UNREPRESENTED;
			if (w == 2 && put_octet(out, cap, &n, GSM_ESC) != 0)
				return ENC_NO_ROOM;
			if (put_octet(out, cap, &n, c0) != 0)
				return ENC_NO_ROOM;
			u += (size_t)w;
			break;
		case TEXT_LATIN1:
			if (cp > 0xFF)
				return ENC_UNREPRESENTED;
			if (put_octet(out, cap, &n, (uint8_t)cp) != 0)
				return ENC_NO_ROOM;
			u++;
			break;
		case TEXT_UCS2:
			if (cp >= 0x10000) {
				uint32_t v = cp - 0x10000;
				uint32_t hi = 0xD800 | (v >> 10), lo = 0xDC00 | (v & 0x3FF);

				if (put_octet(out, cap, &n, (uint8_t)(hi >> 8)) != 0 ||
				    put_octet(out, cap, &n, (uint8_t)hi) != 0 ||
				    put_octet(out, cap, &n, (uint8_t)(lo >> 8)) != 0 ||
				    put_octet(out, cap, &n, (uint8_t)lo) != 0)
					return ENC_NO_ROOM;
				u += 2;
			} else {
				if (put_octet(out, cap, &n, (uint8_t)(cp >> 8)) != 0 ||
				    put_octet(out, cap, &n, (uint8_t)cp) != 0)
					return ENC_NO_ROOM;
				u++;
			}
			break;
		default:
			return ENC_UNREPRESENTED;
		}
	}
	*units = u;
	return (long)n;
}

/*
 * out may be NULL to measure (cap ignored); a cap of 2 * len always
 * suffices.  chosen and units may be NULL.  Output is never larger than
 * LONG_MAX in practice (len is a message, not a file).
 */
long text_encode(const char *in, size_t len, enum text_coding coding, uint8_t *out, size_t cap,
		 enum text_coding *chosen, size_t *units)
{
	const uint8_t *s = (const uint8_t *)in;
	enum text_coding use = coding;
	size_t u = 0;
	long n;

	if (in == NULL && len > 0)
		return -1;
	if (coding == TEXT_AUTO) {
		/* GSM7 when all of it fits the GSM table, else UCS-2 (never Latin-1) */
		n = encode_as(s, len, TEXT_GSM7, NULL, 0, &u);
		if (n == ENC_BAD_UTF8)
			return -1;
		use = n >= 0 ? TEXT_GSM7 : TEXT_UCS2;
	} else if (coding != TEXT_GSM7 && coding != TEXT_LATIN1 && coding != TEXT_UCS2) {
		return -1;
	}
	n = encode_as(s, len, use, out, cap, &u);
	if (n < 0)
		return -1;
	if (chosen != NULL)
		*chosen = use;
	if (units != NULL)
		*units = u;
	return n;
}

/* ---- decode ----------------------------------------------------------- */

/*
 * GSM7: octets above 0x7F are not septets -> -1.  ESC + a code the extension
 * table lacks decodes as the basic-table character for that code (03.38:
 * "display the character in the main table"); ESC ESC and a trailing lone
 * ESC decode as a space.  UCS-2: odd length -> -1; an unpaired surrogate
 * decodes as U+FFFD so one bad MO unit does not lose the message.  out may
 * be NULL to measure; when out has room after the text a NUL is written
 * (not counted).
 */
long text_decode(const uint8_t *in, size_t len, enum text_coding coding, char *out, size_t cap)
{
	size_t i = 0, n = 0;
	uint32_t cp;

	if (in == NULL && len > 0)
		return -1;
	switch (coding) {
	case TEXT_GSM7:
		while (i < len) {
			uint8_t c = in[i++];

			if (c > 0x7F)
				return -1;
			if (c != GSM_ESC) {
				cp = gsm_basic[c];
			} else if (i >= len) {
				cp = 0x20;
			} else {
				uint8_t e = in[i++];

				if (e > 0x7F)
					return -1;
				cp = gsm_ext_char(e);
				if (cp == NO_CHAR)
					cp = gsm_basic[e];
			}
			if (utf8_put(cp, out, cap, &n) != 0)
				return -1;
		}
		break;
	case TEXT_LATIN1:
		for (i = 0; i < len; i++)
			if (utf8_put(in[i], out, cap, &n) != 0)
				return -1;
		break;
	case TEXT_UCS2:
		if (len % 2 != 0)
			return -1;
		while (i < len) {
			uint32_t u = (uint32_t)in[i] << 8 | in[i + 1];

			i += 2;
			cp = u;
			if (u >= 0xD800 && u <= 0xDBFF && i < len) {
				uint32_t l = (uint32_t)in[i] << 8 | in[i + 1];

				if (l >= 0xDC00 && l <= 0xDFFF) {
					cp = 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00);
					i += 2;
				}
			}
			if (cp >= 0xD800 && cp <= 0xDFFF)
				cp = 0xFFFD;
			if (utf8_put(cp, out, cap, &n) != 0)
				return -1;
		}
		break;
	default:
		return -1;
	}
	if (out != NULL && n < cap)
		out[n] = '\0';
	return (long)n;
}

/* ---- split ------------------------------------------------------------ */

/*
 * Limits in octets of text per part (UDH excluded):
 *
 *                 single   UDH8/SAR   UDH16
 *   GSM7 septets    160       153      152
 *   Latin-1         140       134      133
 *   UCS-2           140       134      132   (70 / 67 / 66 units)
 *
 * PAYLOAD: one part of up to 65535 octets (message_payload's length field).
 */
#define PAYLOAD_MAX 65535u

static size_t single_limit(enum text_coding coding)
{
	return coding == TEXT_GSM7 ? 160 : 140;
}

static size_t multi_limit(enum text_coding coding, enum text_concat concat)
{
	int udh16 = concat == TEXT_CONCAT_UDH16;

	switch (coding) {
	case TEXT_GSM7:   return udh16 ? 152 : 153;
	case TEXT_LATIN1: return udh16 ? 133 : 134;
	default:          return udh16 ? 132 : 134;
	}
}

/* Octets of the indivisible unit at enc[pos]: escape pair, surrogate pair. */
static size_t atom_len(const uint8_t *enc, size_t len, size_t pos, enum text_coding coding)
{
	if (coding == TEXT_GSM7)
		return enc[pos] == GSM_ESC && len - pos >= 2 ? 2 : 1;
	if (coding == TEXT_UCS2) {
		if (len - pos >= 4 && (enc[pos] & 0xFC) == 0xD8 && (enc[pos + 2] & 0xFC) == 0xDC)
			return 4;
		return 2;
	}
	return 1;
}

/*
 * Beyond text.h: parts may be NULL to count only; max_parts is capped at
 * TEXT_MAX_PARTS; -1 also for an unknown coding/concat or odd-length UCS-2.
 * GSM7 atoms are read left to right, so ESC ESC is one pair and a trailing
 * lone ESC is one septet.
 */
int text_split(const uint8_t *enc, size_t len, enum text_coding coding, enum text_concat concat,
	       struct text_part *parts, int max_parts)
{
	size_t pos = 0, limit;
	int count = 0;

	if (coding != TEXT_GSM7 && coding != TEXT_LATIN1 && coding != TEXT_UCS2)
		return -1;
	if (concat != TEXT_CONCAT_UDH8 && concat != TEXT_CONCAT_UDH16 &&
	    concat != TEXT_CONCAT_SAR && concat != TEXT_CONCAT_PAYLOAD)
		return -1;
	if (coding == TEXT_UCS2 && len % 2 != 0)
		return -1;
	if (len == 0)
		return 0;
	if (enc == NULL || max_parts < 1)
		return -1;
	if (max_parts > TEXT_MAX_PARTS)
		max_parts = TEXT_MAX_PARTS;

	if (len <= single_limit(coding) || concat == TEXT_CONCAT_PAYLOAD) {
		if (concat == TEXT_CONCAT_PAYLOAD && len > PAYLOAD_MAX)
			return -1;
		if (parts != NULL) {
			parts[0].offset = 0;
			parts[0].length = len;
		}
		return 1;
	}

	limit = multi_limit(coding, concat);
	while (pos < len) {
		size_t start = pos;

		while (pos < len) {
			size_t a = atom_len(enc, len, pos, coding);

			if (pos - start + a > limit)
				break;
			pos += a;
		}
		if (count >= max_parts)
			return -1;
		if (parts != NULL) {
			parts[count].offset = start;
			parts[count].length = pos - start;
		}
		count++;
	}
	return count;
}

/* ---- UDH and names ---------------------------------------------------- */

/* Returns 0 (writes nothing) for SAR and PAYLOAD, which carry no UDH. */
size_t text_udh(uint8_t *out, enum text_concat concat, uint16_t ref, uint8_t total, uint8_t seq)
{
	switch (concat) {
	case TEXT_CONCAT_UDH8:
		out[0] = 0x05;  /* UDHL */
		out[1] = 0x00;  /* IEI: concatenated SM, 8-bit reference */
		out[2] = 0x03;  /* IEDL */
		out[3] = (uint8_t)(ref & 0xFF);
		out[4] = total;
		out[5] = seq;
		return 6;
	case TEXT_CONCAT_UDH16:
		out[0] = 0x06;  /* UDHL */
		out[1] = 0x08;  /* IEI: concatenated SM, 16-bit reference */
		out[2] = 0x04;  /* IEDL */
		out[3] = (uint8_t)(ref >> 8);
		out[4] = (uint8_t)(ref & 0xFF);
		out[5] = total;
		out[6] = seq;
		return 7;
	default:
		return 0;
	}
}

static int name_is(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		char c = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;

		if (c != *b)
			return 0;
	}
	return *a == *b;
}

int text_coding_lookup(const char *name, enum text_coding *out)
{
	static const struct { const char *name; enum text_coding c; } names[] = {
		{ "gsm7", TEXT_GSM7 }, { "latin1", TEXT_LATIN1 },
		{ "ucs2", TEXT_UCS2 }, { "auto", TEXT_AUTO },
	};
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (name_is(name, names[i].name)) {
			*out = names[i].c;
			return 0;
		}
	}
	return -1;
}

/* Note: "auto" yields TEXT_AUTO, which equals -1; text_coding_lookup tells them apart. */
int text_coding_parse(const char *name)
{
	enum text_coding c;

	return text_coding_lookup(name, &c) == 0 ? (int)c : -1;
}

int text_concat_parse(const char *name)
{
	static const struct { const char *name; enum text_concat c; } names[] = {
		{ "udh8", TEXT_CONCAT_UDH8 }, { "udh16", TEXT_CONCAT_UDH16 },
		{ "sar", TEXT_CONCAT_SAR }, { "payload", TEXT_CONCAT_PAYLOAD },
	};
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (name_is(name, names[i].name))
			return (int)names[i].c;
	return -1;
}
