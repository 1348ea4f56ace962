/*
 * fuzz_dlr.c: libFuzzer target for receipt text and message-id parsing.
 *
 * Feeds the raw input to dlr_parse_text() (exact length, no spare byte, so
 * ASan sees any read past len) and, as a C string, to dlr_normalise_id() in
 * every format and from both sides, and builds a receipt PDU from it for
 * dlr_from_pdu() (TLVs as [tag:2][len:1][value], then short_message); then
 * checks the invariants callers rely on: NUL-terminated fields, ids within
 * DLR_ID_MAX, outcomes in range, normalisation idempotent.  Links against
 * dlr.c alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dlr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_dlr(const struct dlr *d, int rc)
{
	if (memchr(d->id, '\0', sizeof d->id) == NULL ||
	    memchr(d->stat, '\0', sizeof d->stat) == NULL ||
	    memchr(d->submit_date, '\0', sizeof d->submit_date) == NULL ||
	    memchr(d->done_date, '\0', sizeof d->done_date) == NULL)
		abort();
	if ((rc == 0) != (d->id[0] != '\0'))
		abort();
	if (d->outcome < DLR_UNKNOWN || d->outcome > DLR_FAILED)
		abort();
	if (d->err < -1)
		abort();
}

static void check_normalise(const char *id)
{
	static const enum dlr_id_format fmts[] = {
		DLR_ID_AUTO, DLR_ID_HEX, DLR_ID_DEC, DLR_ID_HEX_TO_DEC, DLR_ID_RAW,
	};
	char out[DLR_ID_MAX], again[DLR_ID_MAX], tiny[3];
	size_t f;
	int side;

	for (f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
		for (side = 0; side < 2; side++) {
			int rc = dlr_normalise_id(id, fmts[f], side, out, sizeof out);

			if (memchr(out, '\0', sizeof out) == NULL)
				abort();
			if (rc != 0) {
				if (rc != -1 || out[0] != '\0')
					abort();
				continue;
			}
			if (out[0] == '\0')
				abort();
			/* a normalised id normalises to itself (hex2dec: as the decimal side) */
			if (dlr_normalise_id(out, fmts[f], fmts[f] == DLR_ID_HEX_TO_DEC ? 1 : side,
					     again, sizeof again) != 0 || strcmp(out, again) != 0)
				abort();
			(void)dlr_normalise_id(id, fmts[f], side, tiny, sizeof tiny);
			if (memchr(tiny, '\0', sizeof tiny) == NULL)
				abort();
		}
	}
}

/*
 * Input layout for the PDU path: byte 0 = number of TLVs (mod 8), then for
 * each TLV 2 bytes tag (low 2 bits pick a receipt tag or keep the raw one),
 * 1 byte length, value (clipped to what is left); the rest is
 * short_message (<= 254 bytes), or message_payload text when empty.
 */
static void fuzz_pdu(const uint8_t *data, size_t size)
{
	static const uint16_t tags[] = {
		SMPP_TLV_RECEIPTED_MESSAGE_ID, SMPP_TLV_MESSAGE_STATE,
		SMPP_TLV_NETWORK_ERROR_CODE, SMPP_TLV_MESSAGE_PAYLOAD,
	};
	struct smpp_pdu pdu;
	struct dlr d;
	size_t pos = 1, rest;
	unsigned n, i;
	int rc;

	if (size == 0)
		return;
	memset(&pdu, 0, sizeof pdu);
	pdu.hdr.command_id = SMPP_DELIVER_SM;
	pdu.esm_class = 0x04;
	n = data[0] % 8u;
	for (i = 0; i < n && pos + 3 <= size; i++) {
		uint16_t tag = (uint16_t)((data[pos] << 8) | data[pos + 1]);
		size_t len = data[pos + 2];

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		pdu.tlvs[pdu.n_tlvs].tag = (tag & 0x8000u) ? tag : tags[tag & 3u];
		pdu.tlvs[pdu.n_tlvs].length = (uint16_t)len;
		pdu.tlvs[pdu.n_tlvs].value = data + pos;
		pdu.n_tlvs++;
		pos += len;
	}
	rest = size - pos;
	if (rest > 254)
		rest = 254;
	pdu.sm_length = (uint8_t)rest;
	memcpy(pdu.short_message, data + pos, rest);

	if (!dlr_is_receipt(&pdu))
		abort();
	rc = dlr_from_pdu(&pdu, &d);
	check_dlr(&d, rc);
	if (d.message_state < 0 || d.message_state > 9)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dlr d;
	char *copy;
	int rc;

	/* exact-size heap copy: any read past `size` is a heap overflow */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	if (size)
		memcpy(copy, data, size);
	rc = dlr_parse_text(copy, size, &d);
	check_dlr(&d, rc);
	(void)dlr_outcome_from_stat(d.stat);
	(void)dlr_outcome_name(d.outcome);
	if (rc == 0)
		check_normalise(d.id);
	free(copy);

	/* the whole input as a C string id (stops at the first NUL) */
	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	if (size)
		memcpy(copy, data, size);
	copy[size] = '\0';
	check_normalise(copy);
	(void)dlr_outcome_from_stat(copy);
	(void)dlr_id_format_parse(copy);
	free(copy);

	fuzz_pdu(data, size);
	return 0;
}
