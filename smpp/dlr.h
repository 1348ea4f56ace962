/*
 * dlr.h: delivery receipts.
 *
 * Turns a deliver_sm (or data_sm) receipt into a `struct dlr`: TLVs
 * receipted_message_id + message_state first, then a tolerant parse of the
 * SMPP 3.4 appendix B text ("id:... sub:... dlvrd:... submit date:...
 * done date:... stat:DELIVRD err:000 text:...").  Also normalises SMSC
 * message ids so the id in a receipt matches the one from submit_sm_resp.
 * Pure functions: no I/O, no allocation, bounded by the input length.
 */
#ifndef PUSHGATE_SMPP_DLR_H
#define PUSHGATE_SMPP_DLR_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define DLR_ID_MAX 65   /* bytes incl. NUL */

/* Final outcome a receipt says, as pushgate's recipient states see it. */
enum dlr_outcome {
	DLR_UNKNOWN = 0,   /* could not tell */
	DLR_ENROUTE,       /* intermediate: ENROUTE, ACCEPTD, BUFFRED ... (not final) */
	DLR_DELIVERED,     /* DELIVRD */
	DLR_EXPIRED,       /* EXPIRED */
	DLR_FAILED,        /* UNDELIV, REJECTD, DELETED, UNKNOWN */
};

struct dlr {
	char     id[DLR_ID_MAX];    /* message id as the SMSC wrote it */
	char     stat[16];          /* stat text (upper case) or the TLV state's name */
	int      message_state;     /* enum smpp_message_state, 0 when absent */
	int      err;               /* err: field / network_error_code, -1 when absent */
	enum dlr_outcome outcome;
	unsigned sub, dlvrd;        /* counts from the text, 0 when absent */
	char     submit_date[16];   /* "YYMMDDhhmm[ss]" as sent, "" when absent */
	char     done_date[16];
};

/* True when the PDU is a delivery receipt (esm_class bits 2-5 say so). */
int dlr_is_receipt(const struct smpp_pdu *pdu);

/*
 * Fills `out` from a receipt PDU: TLVs first, text for what they lack.
 * Returns 0 when an id was found, -1 otherwise.
 */
int dlr_from_pdu(const struct smpp_pdu *pdu, struct dlr *out);

/* Parses appendix-B text alone (len bytes, not NUL-terminated). 0 / -1 as above. */
int dlr_parse_text(const char *text, size_t len, struct dlr *out);

/* Maps stat text ("DELIVRD", "delivrd", "UNDELIV", ...) to an outcome. */
enum dlr_outcome dlr_outcome_from_stat(const char *stat);
enum dlr_outcome dlr_outcome_from_state(int message_state);

/* How a route's SMSC writes ids. */
enum dlr_id_format {
	DLR_ID_AUTO = 0,  /* strip blanks, lower-case, strip leading zeros */
	DLR_ID_HEX,       /* value is hex: written as lower-case hex, no leading zeros */
	DLR_ID_DEC,       /* value is decimal: written as decimal, no leading zeros */
	DLR_ID_HEX_TO_DEC,/* resp gives hex, receipt gives decimal: both to decimal */
	DLR_ID_RAW,       /* compare as sent */
};

/*
 * Normalises `id` for `fmt` into out (DLR_ID_MAX bytes).  `from_receipt`
 * tells which side the id came from (matters for DLR_ID_HEX_TO_DEC).
 * Returns 0, or -1 when id is empty or not valid for fmt.
 */
int dlr_normalise_id(const char *id, enum dlr_id_format fmt, int from_receipt,
		     char *out, size_t outlen);

/* "auto", "hex", "dec", "hex2dec", "raw" -> format; -1 when unknown. */
int dlr_id_format_parse(const char *name);

const char *dlr_outcome_name(enum dlr_outcome o);

#endif
