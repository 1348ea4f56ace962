/*
 * dlr.c: SMPP delivery receipts and SMSC message-id normalisation.
 *
 * Turns a receipt deliver_sm/data_sm into a `struct dlr`: the TLVs
 * receipted_message_id, message_state and network_error_code are trusted
 * first, then a tolerant parse of the SMPP 3.4 appendix B text (any key
 * order, any key case, vendor fields, tabs, CRLF, "text:" always last) fills
 * what they lack.  Also maps stat words / message_state to an outcome and
 * normalises message ids so the id from submit_sm_resp and the id in the
 * receipt compare equal under a route's id format.
 *
 * Owns nothing: pure functions over caller memory.  Must never read past a
 * given length, allocate, block, or take more than O(len) time; every byte
 * comes from a carrier and is untrusted.  Links on its own (no codec.c
 * symbols) so the fuzz target needs nothing else.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "dlr.h"

/* ---- ASCII helpers (locale-free) ------------------------------------- */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }

static int is_xdigit(unsigned char c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static unsigned char to_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c; }
static unsigned char to_upper(unsigned char c) { return (c >= 'a' && c <= 'z') ? (unsigned char)(c & ~0x20) : c; }

static int xdigit_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	return (to_lower(c) - 'a') + 10;
}

/* Separators between receipt fields: blanks, line ends and stray NULs. */
static int is_sep(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0' ||
	       c == '\v' || c == '\f';
}

static int is_hblank(unsigned char c) { return c == ' ' || c == '\t'; }

/* Characters a field key may contain ("submit_date", "done-date", "mcc"). */
static int is_keychar(unsigned char c) { return is_alnum(c) || c == '_' || c == '-' || c == '.'; }

/* Case-insensitive equality of a C string and a (ptr, len) span. */
static int span_ieq(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (word[i] == '\0' || to_lower((unsigned char)s[i]) != to_lower((unsigned char)word[i]))
			return 0;
	}
	return word[n] == '\0';
}

static int str_ieq(const char *a, const char *b)
{
	while (*a && *b) {
		if (to_lower((unsigned char)*a) != to_lower((unsigned char)*b))
			return 0;
		a++;
		b++;
	}
	return *a == *b;
}

/* ---- receipt detection ----------------------------------------------- */

/*
 * esm_class bits 2-5 (mask 0x3C) give the message type of a deliver_sm or
 * data_sm coming from the SMSC:
 *   0x04 SMSC delivery receipt            -> receipt (carries a state)
 *   0x20 intermediate delivery notification -> receipt (ENROUTE, BUFFRED...)
 *   0x08 SME delivery ack, 0x10 SME manual/user ack -> NOT receipts: they
 *        come from the handset/application, carry no SMSC state and no id
 *        of ours, and are handled as ordinary messages.
 * Only deliver_sm and data_sm can be receipts; any other command is not.
 */
int dlr_is_receipt(const struct smpp_pdu *pdu)
{
	unsigned type;

	if (pdu == NULL)
		return 0;
	if (pdu->hdr.command_id != SMPP_DELIVER_SM && pdu->hdr.command_id != SMPP_DATA_SM)
		return 0;
	type = pdu->esm_class & 0x3Cu;
	return type == 0x04u || type == 0x20u;
}

/* ---- outcomes -------------------------------------------------------- */

struct stat_word {
	const char      *word;
	int              state;     /* enum smpp_message_state, 0 = none */
	enum dlr_outcome outcome;
};

/*
 * Stat words seen in receipts.  Appendix B abbreviations first (they are the
 * canonical names written back into dlr.stat), then the long forms and
 * vendor words.  ACCEPTD means "accepted on behalf of the subscriber" for
 * a few SMSCs, but most carriers send it as an intermediate state and a
 * final receipt follows, so it is DLR_ENROUTE here.  SKIPPED is SMPP 5.0
 * message_state 9: final, not transmitted on purpose, so DLR_FAILED.
 */
static const struct stat_word stat_words[] = {
	{ "ENROUTE", SMPP_STATE_ENROUTE, DLR_ENROUTE },
	{ "DELIVRD", SMPP_STATE_DELIVERED, DLR_DELIVERED },
	{ "EXPIRED", SMPP_STATE_EXPIRED, DLR_EXPIRED },
	{ "DELETED", SMPP_STATE_DELETED, DLR_FAILED },
	{ "UNDELIV", SMPP_STATE_UNDELIVERABLE, DLR_FAILED },
	{ "ACCEPTD", SMPP_STATE_ACCEPTED, DLR_ENROUTE },
	{ "UNKNOWN", SMPP_STATE_UNKNOWN, DLR_FAILED },
	{ "REJECTD", SMPP_STATE_REJECTED, DLR_FAILED },
	{ "SKIPPED", 9, DLR_FAILED },
	{ "DELIVERED", SMPP_STATE_DELIVERED, DLR_DELIVERED },
	{ "UNDELIVERABLE", SMPP_STATE_UNDELIVERABLE, DLR_FAILED },
	{ "UNDELIVERED", SMPP_STATE_UNDELIVERABLE, DLR_FAILED },
	{ "ACCEPTED", SMPP_STATE_ACCEPTED, DLR_ENROUTE },
	{ "REJECTED", SMPP_STATE_REJECTED, DLR_FAILED },
	{ "FAILED", 0, DLR_FAILED },
	{ "BUFFRED", 0, DLR_ENROUTE },
	{ "BUFFERED", 0, DLR_ENROUTE },
	{ "SCHEDUL", 0, DLR_ENROUTE },
	{ "SCHEDULED", 0, DLR_ENROUTE },
};

#define N_STAT_WORDS (sizeof stat_words / sizeof stat_words[0])

/* Canonical appendix B name of a message_state, NULL when not one. */
static const char *state_name(int state)
{
	size_t i;

	for (i = 0; i < N_STAT_WORDS; i++) {
		if (stat_words[i].state == state && state != 0)
			return stat_words[i].word;
	}
	return NULL;
}

enum dlr_outcome dlr_outcome_from_state(int message_state)
{
	switch (message_state) {
	case SMPP_STATE_ENROUTE:
	case SMPP_STATE_ACCEPTED:      /* intermediate in practice, see stat_words */
		return DLR_ENROUTE;
	case SMPP_STATE_DELIVERED:
		return DLR_DELIVERED;
	case SMPP_STATE_EXPIRED:
		return DLR_EXPIRED;
	case SMPP_STATE_DELETED:
	case SMPP_STATE_UNDELIVERABLE:
	case SMPP_STATE_UNKNOWN:
	case SMPP_STATE_REJECTED:
	case 9:                        /* SKIPPED (SMPP 5.0) */
		return DLR_FAILED;
	default:
		return DLR_UNKNOWN;
	}
}

/* Finds a stat word (case-insensitive span); NULL when unknown. */
static const struct stat_word *stat_lookup(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < N_STAT_WORDS; i++) {
		if (span_ieq(s, n, stat_words[i].word))
			return &stat_words[i];
	}
	return NULL;
}

/* A stat written as a message_state number ("2", "02"); 0 when not one. */
static int stat_number(const char *s, size_t n)
{
	size_t i;
	int v = 0;

	if (n == 0 || n > 3)
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

enum dlr_outcome dlr_outcome_from_stat(const char *stat)
{
	const struct stat_word *w;
	size_t n;
	int num;

	if (stat == NULL)
		return DLR_UNKNOWN;
	n = strlen(stat);
	w = stat_lookup(stat, n);
	if (w != NULL)
		return w->outcome;
	num = stat_number(stat, n);
	if (num != 0)
		return dlr_outcome_from_state(num);
	return DLR_UNKNOWN;
}

const char *dlr_outcome_name(enum dlr_outcome o)
{
	switch (o) {
	case DLR_ENROUTE:   return "enroute";
	case DLR_DELIVERED: return "delivered";
	case DLR_EXPIRED:   return "expired";
	case DLR_FAILED:    return "failed";
	case DLR_UNKNOWN:   break;
	}
	return "unknown";
}

/* ---- appendix B text ------------------------------------------------- */

enum text_key {
	KEY_OTHER = 0, KEY_ID, KEY_SUB, KEY_DLVRD, KEY_SUBMIT_DATE, KEY_DONE_DATE,
	KEY_STAT, KEY_ERR, KEY_TEXT,
};

/*
 * Classifies a key span.  '_', '-', '.' and blanks are ignored and case does
 * not matter, so "submit date", "Submit_Date" and "submitdate" are one key.
 */
static enum text_key key_classify(const char *s, size_t n)
{
	char canon[16];
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '_' || c == '-' || c == '.' || is_hblank(c))
			continue;
		if (k + 1 >= sizeof canon)
			return KEY_OTHER;
		canon[k++] = (char)to_lower(c);
	}
	canon[k] = '\0';
	if (strcmp(canon, "id") == 0)
		return KEY_ID;
	if (strcmp(canon, "sub") == 0)
		return KEY_SUB;
	if (strcmp(canon, "dlvrd") == 0)
		return KEY_DLVRD;
	if (strcmp(canon, "submitdate") == 0)
		return KEY_SUBMIT_DATE;
	if (strcmp(canon, "donedate") == 0)
		return KEY_DONE_DATE;
	if (strcmp(canon, "stat") == 0)
		return KEY_STAT;
	if (strcmp(canon, "err") == 0)
		return KEY_ERR;
	if (strcmp(canon, "text") == 0)
		return KEY_TEXT;
	return KEY_OTHER;
}

/* Length of the key-character run at s[i..len). */
static size_t word_len(const char *s, size_t i, size_t len)
{
	size_t j = i;

	while (j < len && is_keychar((unsigned char)s[j]))
		j++;
	return j - i;
}

/*
 * True when s[i..len) starts with "word:" or "word date:" (a key), so an
 * empty value ("id: sub:001") does not swallow the next field.
 */
static int looks_like_key(const char *s, size_t i, size_t len)
{
	size_t w = word_len(s, i, len);

	return w > 0 && i + w < len && s[i + w] == ':';
}

/* Unsigned decimal counter ("001"); saturates at 999999999, 0 when not digits. */
static unsigned parse_count(const char *s, size_t n)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return 0;
		if (v < 100000000u)
			v = v * 10u + (unsigned)(s[i] - '0');
		else
			v = 999999999u;
	}
	return v;
}

/*
 * err: decimal by default ("000", "021"), hex with a 0x prefix ("0x0A"),
 * and hex when the value has hex letters and so cannot be decimal ("00A").
 * -1 when empty, not a number, or above INT_MAX.
 */
static int parse_err(const char *s, size_t n)
{
	long long v = 0;
	size_t i = 0;
	int hex = 0;

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		hex = 1;
		i = 2;
	} else {
		size_t j;

		for (j = 0; j < n; j++) {
			if (!is_digit((unsigned char)s[j]))
				hex = 1;
		}
	}
	if (i >= n)
		return -1;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (hex ? !is_xdigit(c) : !is_digit(c))
			return -1;
		v = v * (hex ? 16 : 10) + xdigit_value(c);
		if (v > INT_MAX)
			return -1;
	}
	return (int)v;
}

/* Copies a printable span into dst (cap bytes incl. NUL); "" when it does not fit. */
static void copy_span(char *dst, size_t cap, const char *s, size_t n, int upper)
{
	size_t i;

	dst[0] = '\0';
	if (n + 1 > cap)
		return;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c > 0x7e)
			return;   /* control or non-ASCII byte: refuse the field */
	}
	for (i = 0; i < n; i++)
		dst[i] = (char)(upper ? to_upper((unsigned char)s[i]) : (unsigned char)s[i]);
	dst[n] = '\0';
}

static void dlr_clear(struct dlr *out)
{
	memset(out, 0, sizeof *out);
	out->err = -1;
}

/* Stores one field; the first occurrence of a key wins. */
static void text_store(struct dlr *out, enum text_key key, const char *v, size_t n,
		       unsigned *seen)
{
	unsigned bit = 1u << key;
	const struct stat_word *w;

	if (*seen & bit)
		return;
	*seen |= bit;
	switch (key) {
	case KEY_ID:
		copy_span(out->id, sizeof out->id, v, n, 0);
		break;
	case KEY_SUB:
		out->sub = parse_count(v, n);
		break;
	case KEY_DLVRD:
		out->dlvrd = parse_count(v, n);
		break;
	case KEY_SUBMIT_DATE:
		copy_span(out->submit_date, sizeof out->submit_date, v, n, 0);
		break;
	case KEY_DONE_DATE:
		copy_span(out->done_date, sizeof out->done_date, v, n, 0);
		break;
	case KEY_STAT:
		w = stat_lookup(v, n);
		if (w != NULL) {
			out->message_state = w->state;
			copy_span(out->stat, sizeof out->stat, v, n, 1);
		} else {
			int num = stat_number(v, n);
			const char *name = state_name(num);

			if (name != NULL) {
				out->message_state = num;
				copy_span(out->stat, sizeof out->stat, name, strlen(name), 0);
			} else {
				copy_span(out->stat, sizeof out->stat, v, n, 1);
			}
		}
		break;
	case KEY_ERR:
		out->err = parse_err(v, n);
		break;
	case KEY_OTHER:
	case KEY_TEXT:
		break;
	}
}

/*
 * One left-to-right pass.  At each token: a key is a run of key characters
 * followed by ':' ("stat:"), or two runs where the second is "date"
 * ("submit date:", "done  date:").  The value runs to the next separator;
 * blanks right after ':' are skipped unless what follows is itself a key.
 * "text:" ends the parse: its value (free text with colons and even a fake
 * "stat:") is never read.  Tokens that are not keys are skipped.  Every byte
 * is looked at a bounded number of times.
 */
int dlr_parse_text(const char *text, size_t len, struct dlr *out)
{
	unsigned seen = 0;
	size_t i = 0;

	if (out == NULL)
		return -1;
	dlr_clear(out);
	if (text == NULL)
		return -1;

	while (i < len) {
		size_t kstart, klen, w, vstart;
		enum text_key key;

		while (i < len && is_sep((unsigned char)text[i]))
			i++;
		if (i >= len)
			break;

		kstart = i;
		w = word_len(text, i, len);
		if (w == 0) {
			/* not a key: skip this token */
			while (i < len && !is_sep((unsigned char)text[i]))
				i++;
			continue;
		}
		klen = w;
		i += w;
		if (i < len && is_hblank((unsigned char)text[i])) {
			/* "submit date:" / "done date:" with blanks in between */
			size_t j = i;

			while (j < len && is_hblank((unsigned char)text[j]))
				j++;
			if (j + 4 < len && span_ieq(text + j, 4, "date") && text[j + 4] == ':') {
				klen = j + 4 - kstart;
				i = j + 4;
			}
		}
		if (i >= len || text[i] != ':') {
			while (i < len && !is_sep((unsigned char)text[i]))
				i++;
			continue;
		}
		i++;   /* the ':' */

		key = key_classify(text + kstart, klen);
		if (key == KEY_TEXT)
			break;

		if (i < len && is_hblank((unsigned char)text[i])) {
			size_t j = i;

			while (j < len && is_hblank((unsigned char)text[j]))
				j++;
			if (j < len && !is_sep((unsigned char)text[j]) && !looks_like_key(text, j, len))
				i = j;
		}
		vstart = i;
		while (i < len && !is_sep((unsigned char)text[i]))
			i++;
		text_store(out, key, text + vstart, i - vstart, &seen);
	}

	if (out->stat[0] != '\0')
		out->outcome = dlr_outcome_from_stat(out->stat);
	else
		out->outcome = dlr_outcome_from_state(out->message_state);
	return out->id[0] != '\0' ? 0 : -1;
}

/* ---- receipts from PDUs ---------------------------------------------- */

/*
 * receipted_message_id: a C-Octet string, with or without its NUL, bounded
 * by the TLV length.  Surrounding blanks are dropped; an id longer than
 * DLR_ID_MAX-1 is refused (a truncated id could only match the wrong
 * message).
 */
static void tlv_take_id(struct dlr *out, const struct smpp_tlv *t)
{
	size_t n = 0, a = 0;

	if (t->value == NULL)
		return;
	while (n < t->length && t->value[n] != '\0')
		n++;
	while (a < n && is_sep(t->value[a]))
		a++;
	while (n > a && is_sep(t->value[n - 1]))
		n--;
	copy_span(out->id, sizeof out->id, (const char *)t->value + a, n - a, 0);
}

int dlr_from_pdu(const struct smpp_pdu *pdu, struct dlr *out)
{
	const uint8_t *text = NULL;
	size_t text_len = 0;
	unsigned n, i;
	int have_id = 0, have_state = 0, have_err = 0, have_payload = 0;
	struct dlr t;

	if (out == NULL)
		return -1;
	dlr_clear(out);
	if (pdu == NULL)
		return -1;

	n = pdu->n_tlvs < SMPP_MAX_TLVS ? pdu->n_tlvs : SMPP_MAX_TLVS;
	for (i = 0; i < n; i++) {
		const struct smpp_tlv *tlv = &pdu->tlvs[i];

		switch (tlv->tag) {
		case SMPP_TLV_RECEIPTED_MESSAGE_ID:
			if (!have_id) {
				have_id = 1;
				tlv_take_id(out, tlv);
			}
			break;
		case SMPP_TLV_MESSAGE_STATE:
			if (!have_state && tlv->length == 1 && tlv->value != NULL &&
			    state_name(tlv->value[0]) != NULL) {
				have_state = 1;
				out->message_state = tlv->value[0];
				copy_span(out->stat, sizeof out->stat, state_name(tlv->value[0]),
					  strlen(state_name(tlv->value[0])), 0);
			}
			break;
		case SMPP_TLV_NETWORK_ERROR_CODE:
			/* network type (1 byte) + error code (2 bytes, big-endian) */
			if (!have_err && tlv->length == 3 && tlv->value != NULL) {
				have_err = 1;
				out->err = (tlv->value[1] << 8) | tlv->value[2];
			}
			break;
		case SMPP_TLV_MESSAGE_PAYLOAD:
			if (!have_payload && tlv->value != NULL) {
				have_payload = 1;
				if (pdu->sm_length == 0) {
					text = tlv->value;
					text_len = tlv->length;
				}
			}
			break;
		default:
			break;
		}
	}
	if (pdu->sm_length > 0) {
		text = pdu->short_message;
		text_len = pdu->sm_length;   /* uint8_t: within short_message[256] */
	}

	dlr_parse_text((const char *)text, text_len, &t);
	if (out->id[0] == '\0')
		memcpy(out->id, t.id, sizeof out->id);
	if (!have_state) {
		out->message_state = t.message_state;
		memcpy(out->stat, t.stat, sizeof out->stat);
	}
	if (!have_err)
		out->err = t.err;
	out->sub = t.sub;
	out->dlvrd = t.dlvrd;
	memcpy(out->submit_date, t.submit_date, sizeof out->submit_date);
	memcpy(out->done_date, t.done_date, sizeof out->done_date);

	if (have_state)
		out->outcome = dlr_outcome_from_state(out->message_state);
	else
		out->outcome = t.outcome;
	return out->id[0] != '\0' ? 0 : -1;
}

/* ---- message-id normalisation ---------------------------------------- */

/* Writes the decimal form of v into out; -1 when it does not fit. */
static int write_u64_dec(uint64_t v, char *out, size_t outlen)
{
	char tmp[21];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + (v % 10u));
		v /= 10u;
	} while (v != 0);
	if (n + 1 > outlen)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return 0;
}

/*
 * Copies s[0..n) without leading zeros (a single "0" when all zeros),
 * lower-cased.  -1 when it does not fit.
 */
static int write_stripped(const char *s, size_t n, char *out, size_t outlen)
{
	size_t a = 0, i;

	while (a + 1 < n && s[a] == '0')
		a++;
	if (n - a + 1 > outlen)
		return -1;
	for (i = a; i < n; i++)
		out[i - a] = (char)to_lower((unsigned char)s[i]);
	out[n - a] = '\0';
	return 0;
}

/* Skips an optional 0x prefix; the rest must be >= 1 hex digit. */
static int hex_body(const char **s, size_t *n)
{
	size_t i;

	if (*n >= 2 && (*s)[0] == '0' && ((*s)[1] == 'x' || (*s)[1] == 'X')) {
		*s += 2;
		*n -= 2;
	}
	if (*n == 0)
		return -1;
	for (i = 0; i < *n; i++) {
		if (!is_xdigit((unsigned char)(*s)[i]))
			return -1;
	}
	return 0;
}

static int dec_body(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
	}
	return 0;
}

/* Significant digits of a digit string (after leading zeros), at least 1. */
static size_t significant(const char *s, size_t n)
{
	size_t a = 0;

	while (a + 1 < n && s[a] == '0')
		a++;
	return n - a;
}

int dlr_normalise_id(const char *id, enum dlr_id_format fmt, int from_receipt,
		     char *out, size_t outlen)
{
	const char *s;
	size_t n, i;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (id == NULL)
		return -1;

	s = id;
	n = strlen(id);
	while (n > 0 && is_sep((unsigned char)s[0])) {
		s++;
		n--;
	}
	while (n > 0 && is_sep((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n > DLR_ID_MAX - 1)
		return -1;

	switch (fmt) {
	case DLR_ID_RAW:
		if (n + 1 > outlen)
			return -1;
		memcpy(out, s, n);
		out[n] = '\0';
		return 0;

	case DLR_ID_AUTO:
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c < 0x21 || c > 0x7e)
				return -1;
		}
		return write_stripped(s, n, out, outlen);

	case DLR_ID_HEX:
		if (hex_body(&s, &n) < 0)
			return -1;
		return write_stripped(s, n, out, outlen);

	case DLR_ID_DEC:
		if (dec_body(s, n) < 0)
			return -1;
		return write_stripped(s, n, out, outlen);

	case DLR_ID_HEX_TO_DEC:
		if (from_receipt) {
			/* decimal side: same rules, and must fit the hex side's 64 bits */
			uint64_t v = 0;

			if (dec_body(s, n) < 0)
				return -1;
			if (significant(s, n) > 20)
				return -1;
			for (i = 0; i < n; i++) {
				unsigned d = (unsigned)(s[i] - '0');

				if (v > (UINT64_MAX - d) / 10u)
					return -1;
				v = v * 10u + d;
			}
			return write_u64_dec(v, out, outlen);
		} else {
			uint64_t v = 0;

			if (hex_body(&s, &n) < 0)
				return -1;
			if (significant(s, n) > 16)
				return -1;
			for (i = 0; i < n; i++)
				v = (v << 4) | (uint64_t)xdigit_value((unsigned char)s[i]);
			return write_u64_dec(v, out, outlen);
		}
	}
	return -1;
}

int dlr_id_format_parse(const char *name)
{
	if (name == NULL)
		return -1;
	if (str_ieq(name, "auto"))
		return DLR_ID_AUTO;
	if (str_ieq(name, "hex"))
		return DLR_ID_HEX;
	if (str_ieq(name, "dec"))
		return DLR_ID_DEC;
	if (str_ieq(name, "hex2dec"))
		return DLR_ID_HEX_TO_DEC;
	if (str_ieq(name, "raw"))
		return DLR_ID_RAW;
	return -1;
}
