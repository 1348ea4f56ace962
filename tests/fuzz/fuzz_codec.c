/*
 * fuzz_codec.c: libFuzzer target for the SMPP codec.  Frames the input as a
 * stream of PDUs, decodes every framed PDU, re-encodes whatever decoded, and
 * checks that the re-encoded bytes decode again to the same header, strings
 * and TLVs.  Owns nothing; must never read outside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out_buf[SMPP_MAX_PDU_LEN];

static void check_round_trip(const struct smpp_pdu *a)
{
	struct smpp_pdu b;
	long n = smpp_encode(a, out_buf, sizeof(out_buf));
	if (n < 0)
		return;   /* e.g. a field the encoder is stricter about */
	if (smpp_frame(out_buf, (size_t)n) != n)
		abort();
	if (smpp_decode(out_buf, (size_t)n, &b) != 0)
		abort();
	if (b.hdr.command_id != a->hdr.command_id ||
	    b.hdr.command_status != a->hdr.command_status ||
	    b.hdr.sequence_number != a->hdr.sequence_number)
		abort();
	if (smpp_is_resp(a->hdr.command_id) && a->hdr.command_status != 0)
		return;   /* error responses go out with an empty body */
	if (strcmp(a->system_id, b.system_id) || strcmp(a->source_addr, b.source_addr) ||
	    strcmp(a->destination_addr, b.destination_addr) ||
	    strcmp(a->message_id, b.message_id) || a->sm_length != b.sm_length ||
	    memcmp(a->short_message, b.short_message, a->sm_length) != 0 ||
	    a->n_tlvs != b.n_tlvs)
		abort();
	for (unsigned i = 0; i < a->n_tlvs; i++)
		if (a->tlvs[i].tag != b.tlvs[i].tag || a->tlvs[i].length != b.tlvs[i].length ||
		    memcmp(a->tlvs[i].value, b.tlvs[i].value, a->tlvs[i].length) != 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	for (int guard = 0; guard < 64 && off < size; guard++) {
		long n = smpp_frame(data + off, size - off);
		if (n <= 0)
			break;
		/* decode from an exact-size heap copy so ASan sees any over-read */
		uint8_t *pdu_bytes = malloc((size_t)n);
		if (pdu_bytes == NULL)
			break;
		memcpy(pdu_bytes, data + off, (size_t)n);
		struct smpp_pdu p;
		if (smpp_decode(pdu_bytes, (size_t)n, &p) == 0)
			check_round_trip(&p);
		(void)smpp_command_name(p.hdr.command_id);
		free(pdu_bytes);
		off += (size_t)n;
	}
	return 0;
}
