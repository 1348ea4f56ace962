/*
 * text.h: message text for SMS.  UTF-8 in; GSM 03.38 (default alphabet +
 * extension table, unpacked septets as SMPP data_coding 0 carries them),
 * Latin-1 (data_coding 3) or UCS-2/UTF-16BE (data_coding 8) out; and the
 * split of a long text into parts that never cut a GSM escape pair or a
 * UTF-16 surrogate pair.  Pure functions: no I/O, no allocation.
 */
#ifndef PUSHGATE_SMPP_TEXT_H
#define PUSHGATE_SMPP_TEXT_H

#include <stddef.h>
#include <stdint.h>

enum text_coding {
	TEXT_AUTO   = -1,  /* smallest that represents every character */
	TEXT_GSM7   = 0,   /* data_coding 0x00: GSM 03.38, one septet per octet */
	TEXT_LATIN1 = 3,   /* data_coding 0x03: ISO-8859-1 */
	TEXT_UCS2   = 8,   /* data_coding 0x08: UTF-16BE (surrogate pairs for > U+FFFF) */
};

/* How long texts are carried. */
enum text_concat {
	TEXT_CONCAT_UDH8 = 0,   /* UDH IEI 0x00, 8-bit reference (6 octets of UDH) */
	TEXT_CONCAT_UDH16,      /* UDH IEI 0x08, 16-bit reference (7 octets) */
	TEXT_CONCAT_SAR,        /* sar_msg_ref_num / sar_total_segments / sar_segment_seqnum TLVs */
	TEXT_CONCAT_PAYLOAD,    /* one submit_sm with the whole text in message_payload */
};

#define TEXT_MAX_PARTS 255
#define TEXT_PART_MAX  160      /* octets of one part's short_message, UDH included */

/*
 * Encodes UTF-8 `in` as `coding` (TEXT_AUTO picks GSM7 when every character
 * is in the GSM tables, else UCS-2: never Latin-1, which many SMSCs mishandle).  Writes at most cap octets; *chosen gets the coding used; *units
 * gets the length in the coding's units (septets for GSM7, incl. escapes;
 * octets for Latin-1; UTF-16 code units for UCS-2).  Returns the octet
 * count, or -1 when a character can't be represented in a forced coding,
 * the input is not valid UTF-8, or cap is too small.
 */
long text_encode(const char *in, size_t len, enum text_coding coding, uint8_t *out, size_t cap,
		 enum text_coding *chosen, size_t *units);

/* Decodes octets in `coding` back to UTF-8 (for MO and tests).  Octets written or -1. */
long text_decode(const uint8_t *in, size_t len, enum text_coding coding, char *out, size_t cap);

/* One part of a split message: a slice of the encoded octets. */
struct text_part {
	size_t offset;   /* into the encoded octets */
	size_t length;   /* octets of text in this part (UDH not included) */
};

/*
 * Splits encoded text into parts.  Single-part limits: 160 septets (GSM7),
 * 140 octets (Latin-1, UCS-2).  Multi-part limits with UDH8: 153 septets /
 * 134 octets / 67 UCS-2 units; UDH16: 152 / 133 / 66; SAR: same as UDH8 (the
 * usual carrier practice: room for the UDH a handset will add).  A GSM
 * escape (0x1B + next) and a UTF-16 surrogate pair are never cut.  Returns
 * the number of parts (1 when it fits), 0 for empty text, -1 when more than
 * max_parts would be needed.
 */
int text_split(const uint8_t *enc, size_t len, enum text_coding coding, enum text_concat concat,
	       struct text_part *parts, int max_parts);

/*
 * Builds the user data header for part `seq` (1-based) of `total` with
 * reference `ref`; returns its length (6 for UDH8, 7 for UDH16).
 */
size_t text_udh(uint8_t *out, enum text_concat concat, uint16_t ref, uint8_t total, uint8_t seq);

/* "gsm7", "latin1", "ucs2", "auto" <-> enum; -1 when unknown. */
int text_coding_parse(const char *name);
int text_concat_parse(const char *name);  /* "udh8", "udh16", "sar", "payload" */

/*
 * Like text_coding_parse, but tells "auto" (TEXT_AUTO == -1) from an unknown
 * name: 0 and *out set, or -1 when unknown.
 */
int text_coding_lookup(const char *name, enum text_coding *out);

#endif
