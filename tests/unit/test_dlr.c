/*
 * test_dlr.c: delivery receipts as carriers really send them.
 *
 * Appendix B text and its real-world variants, TLV-only receipts, TLVs that
 * disagree with the text, message_payload text, the stat -> outcome table
 * and the message-id normalisation table.  Inputs are copied into buffers of
 * exactly their length so ASan catches any read past `len`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dlr.h"

/* Parses `len` bytes from a heap copy with no spare byte after them. */
static int parse_n(const char *s, size_t len, struct dlr *d)
{
	char *buf = malloc(len ? len : 1);
	int rc;

	assert_non_null(buf);
	memcpy(buf, s, len);
	rc = dlr_parse_text(buf, len, d);
	free(buf);
	return rc;
}

static int parse(const char *s, struct dlr *d)
{
	return parse_n(s, strlen(s), d);
}

/* ---- appendix B text ------------------------------------------------- */

static void test_dlr_parses_standard_appendix_b(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:1234567890 sub:001 dlvrd:001 submit date:2301021504 "
			       "done date:2301021505 stat:DELIVRD err:000 text:Hello world", &d), 0);
	assert_string_equal(d.id, "1234567890");
	assert_int_equal(d.sub, 1);
	assert_int_equal(d.dlvrd, 1);
	assert_string_equal(d.submit_date, "2301021504");
	assert_string_equal(d.done_date, "2301021505");
	assert_string_equal(d.stat, "DELIVRD");
	assert_int_equal(d.message_state, SMPP_STATE_DELIVERED);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_parses_fields_in_any_order(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("stat:UNDELIV err:001 done date:2301021505 id:abc123 "
			       "submit date:2301021504 dlvrd:000 sub:001", &d), 0);
	assert_string_equal(d.id, "abc123");
	assert_string_equal(d.stat, "UNDELIV");
	assert_int_equal(d.err, 1);
	assert_int_equal(d.sub, 1);
	assert_int_equal(d.dlvrd, 0);
	assert_string_equal(d.submit_date, "2301021504");
	assert_string_equal(d.done_date, "2301021505");
	assert_int_equal(d.outcome, DLR_FAILED);
}

static void test_dlr_parses_keys_in_any_case(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("ID:77 SUB:001 DLVRD:001 SUBMIT DATE:2301021504 DONE DATE:2301021505 "
			       "STAT:DELIVRD ERR:000 TEXT:x", &d), 0);
	assert_string_equal(d.id, "77");
	assert_string_equal(d.done_date, "2301021505");
	assert_int_equal(d.outcome, DLR_DELIVERED);

	assert_int_equal(parse("Id:78 Sub:001 Dlvrd:001 Submit Date:2301021504 Done Date:2301021505 "
			       "Stat:delivrd Err:000 Text:x", &d), 0);
	assert_string_equal(d.id, "78");
	assert_string_equal(d.submit_date, "2301021504");
	assert_string_equal(d.stat, "DELIVRD");   /* stored upper case */
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_tolerates_missing_sub_and_dlvrd(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:1001 submit date:2301021504 done date:2301021505 stat:EXPIRED err:000", &d), 0);
	assert_int_equal(d.sub, 0);
	assert_int_equal(d.dlvrd, 0);
	assert_string_equal(d.done_date, "2301021505");
	assert_int_equal(d.outcome, DLR_EXPIRED);
	assert_int_equal(d.message_state, SMPP_STATE_EXPIRED);
}

static void test_dlr_tolerates_missing_done_date(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:1002 sub:001 dlvrd:000 submit date:230102150405 stat:REJECTD err:011", &d), 0);
	assert_string_equal(d.submit_date, "230102150405");
	assert_string_equal(d.done_date, "");
	assert_int_equal(d.err, 11);
	assert_int_equal(d.outcome, DLR_FAILED);
}

static void test_dlr_skips_vendor_fields(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:5 sub:001 dlvrd:001 submit date:2301021504 done date:2301021505 "
			       "mcc:262 mnc:01 imsi:262011234567890 msc:4917 stat:DELIVRD err:000 "
			       "text:hi", &d), 0);
	assert_string_equal(d.id, "5");
	assert_int_equal(d.outcome, DLR_DELIVERED);
	assert_int_equal(d.err, 0);
}

static void test_dlr_text_field_cannot_override_real_stat(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:9 sub:001 dlvrd:001 stat:DELIVRD err:000 "
			       "text:stat:UNDELIV err:099 id:666 done date:9999999999", &d), 0);
	assert_string_equal(d.id, "9");
	assert_string_equal(d.stat, "DELIVRD");
	assert_int_equal(d.err, 0);
	assert_string_equal(d.done_date, "");
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_stops_parsing_at_text_key(void **state)
{
	struct dlr d;

	(void)state;
	/* text: is always last: a stat after it belongs to the message text */
	assert_int_equal(parse("id:10 Text:Your code: 1234 stat:DELIVRD", &d), 0);
	assert_string_equal(d.id, "10");
	assert_string_equal(d.stat, "");
	assert_int_equal(d.outcome, DLR_UNKNOWN);
}

static void test_dlr_keeps_id_with_leading_zeros_as_written(void **state)
{
	struct dlr d;
	char norm[DLR_ID_MAX];

	(void)state;
	assert_int_equal(parse("id:000012345 sub:001 dlvrd:001 stat:DELIVRD err:000", &d), 0);
	assert_string_equal(d.id, "000012345");
	assert_int_equal(dlr_normalise_id(d.id, DLR_ID_AUTO, 1, norm, sizeof norm), 0);
	assert_string_equal(norm, "12345");
}

static void test_dlr_parses_uuid_id(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:550e8400-e29b-41d4-a716-446655440000 sub:001 dlvrd:001 "
			       "stat:DELIVRD err:000", &d), 0);
	assert_string_equal(d.id, "550e8400-e29b-41d4-a716-446655440000");
}

static void test_dlr_parses_hex_id_with_leading_zeros(void **state)
{
	struct dlr d;
	char norm[DLR_ID_MAX];

	(void)state;
	assert_int_equal(parse("id:000A1B2C3D sub:001 dlvrd:001 stat:DELIVRD err:000", &d), 0);
	assert_string_equal(d.id, "000A1B2C3D");
	assert_int_equal(dlr_normalise_id(d.id, DLR_ID_HEX, 1, norm, sizeof norm), 0);
	assert_string_equal(norm, "a1b2c3d");
}

static void test_dlr_maps_numeric_stat_to_state_name(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:1 stat:2 err:0", &d), 0);
	assert_string_equal(d.stat, "DELIVRD");
	assert_int_equal(d.message_state, SMPP_STATE_DELIVERED);
	assert_int_equal(d.outcome, DLR_DELIVERED);

	assert_int_equal(parse("id:1 stat:5 err:0", &d), 0);
	assert_string_equal(d.stat, "UNDELIV");
	assert_int_equal(d.outcome, DLR_FAILED);

	assert_int_equal(parse("id:1 stat:03", &d), 0);
	assert_int_equal(d.outcome, DLR_EXPIRED);

	assert_int_equal(parse("id:1 stat:42", &d), 0);
	assert_string_equal(d.stat, "42");
	assert_int_equal(d.message_state, 0);
	assert_int_equal(d.outcome, DLR_UNKNOWN);
}

static void test_dlr_parses_err_decimal_and_hex(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:1 stat:UNDELIV err:0x0A", &d), 0);
	assert_int_equal(d.err, 10);
	assert_int_equal(parse("id:1 stat:UNDELIV err:0X1f", &d), 0);
	assert_int_equal(d.err, 31);
	assert_int_equal(parse("id:1 stat:UNDELIV err:021", &d), 0);
	assert_int_equal(d.err, 21);   /* decimal by default, not octal or hex */
	assert_int_equal(parse("id:1 stat:UNDELIV err:00A", &d), 0);
	assert_int_equal(d.err, 10);   /* hex letters: cannot be decimal */
	assert_int_equal(parse("id:1 stat:UNDELIV err:zz", &d), 0);
	assert_int_equal(d.err, -1);
	assert_int_equal(parse("id:1 stat:UNDELIV err:0x", &d), 0);
	assert_int_equal(d.err, -1);
	assert_int_equal(parse("id:1 stat:UNDELIV err:99999999999999999999", &d), 0);
	assert_int_equal(d.err, -1);
	assert_int_equal(parse("id:1 stat:UNDELIV", &d), 0);
	assert_int_equal(d.err, -1);
}

static void test_dlr_parses_kannel_style_receipt(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:4f3c2a10 sub:001 dlvrd:001 submit date:1501231542 "
			       "done date:1501231543 stat:DELIVRD err:000 text:Test message: ok", &d), 0);
	assert_string_equal(d.id, "4f3c2a10");
	assert_int_equal(d.sub, 1);
	assert_int_equal(d.dlvrd, 1);
	assert_string_equal(d.submit_date, "1501231542");
	assert_string_equal(d.done_date, "1501231543");
	assert_int_equal(d.err, 0);
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_accepts_tabs_between_fields(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:31\tsub:001\tdlvrd:001\tsubmit date:2301021504\tdone\tdate:2301021505"
			       "\tstat:EXPIRED\terr:000", &d), 0);
	assert_string_equal(d.id, "31");
	assert_string_equal(d.done_date, "2301021505");
	assert_int_equal(d.outcome, DLR_EXPIRED);
}

static void test_dlr_accepts_multiple_spaces_and_crlf(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("  id:32   sub:001  dlvrd:001   submit   date:2301021504  "
			       "done date:2301021505   stat:DELIVRD   err:000\r\n", &d), 0);
	assert_string_equal(d.id, "32");
	assert_string_equal(d.submit_date, "2301021504");
	assert_int_equal(d.err, 0);
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_accepts_underscore_and_joined_date_keys(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:33 submit_date:2301021504 done_date:2301021505 stat:DELIVRD", &d), 0);
	assert_string_equal(d.submit_date, "2301021504");
	assert_string_equal(d.done_date, "2301021505");

	assert_int_equal(parse("id:34 submitdate:2301021500 DoneDate:2301021501 stat:DELIVRD", &d), 0);
	assert_string_equal(d.submit_date, "2301021500");
	assert_string_equal(d.done_date, "2301021501");

	assert_int_equal(parse("id:35 Submit-Date:2301021502 done-date:2301021503", &d), 0);
	assert_string_equal(d.submit_date, "2301021502");
	assert_string_equal(d.done_date, "2301021503");
}

static void test_dlr_rejects_empty_text(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("", &d), -1);
	assert_string_equal(d.id, "");
	assert_int_equal(d.err, -1);
	assert_int_equal(d.outcome, DLR_UNKNOWN);
	assert_int_equal(dlr_parse_text(NULL, 0, &d), -1);
}

static void test_dlr_rejects_garbage(void **state)
{
	static const char bin[] = "\xff\xfe\x01:::: ::id ::: id\x7f:x";
	static const char ctl[] = "id:\x01\x02 stat:DELIVRD";
	struct dlr d;

	(void)state;
	assert_int_equal(parse("hello world, this is not a receipt", &d), -1);
	assert_int_equal(d.outcome, DLR_UNKNOWN);
	assert_int_equal(parse_n(bin, sizeof bin - 1, &d), -1);
	assert_string_equal(d.id, "");
	/* an id made of control bytes is refused, not copied */
	assert_int_equal(parse_n(ctl, sizeof ctl - 1, &d), -1);
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_accepts_full_word_stats(void **state)
{
	static const struct { const char *text; enum dlr_outcome o; int st; } cases[] = {
		{ "id:1 stat:DELIVERED", DLR_DELIVERED, SMPP_STATE_DELIVERED },
		{ "id:1 stat:UNDELIVERABLE", DLR_FAILED, SMPP_STATE_UNDELIVERABLE },
		{ "id:1 stat:EXPIRED", DLR_EXPIRED, SMPP_STATE_EXPIRED },
		{ "id:1 stat:REJECTED", DLR_FAILED, SMPP_STATE_REJECTED },
		{ "id:1 stat:ENROUTE", DLR_ENROUTE, SMPP_STATE_ENROUTE },
		{ "id:1 stat:ACCEPTED", DLR_ENROUTE, SMPP_STATE_ACCEPTED },
		{ "id:1 stat:UNKNOWN", DLR_FAILED, SMPP_STATE_UNKNOWN },
		{ "id:1 stat:DELETED", DLR_FAILED, SMPP_STATE_DELETED },
		{ "id:1 stat:BUFFRED", DLR_ENROUTE, 0 },
	};
	struct dlr d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(parse(cases[i].text, &d), 0);
		assert_int_equal(d.outcome, cases[i].o);
		assert_int_equal(d.message_state, cases[i].st);
	}
}

static void test_dlr_id_padded_with_nuls_and_blanks(void **state)
{
	static const char txt[] = "id:12345\0\0\0  \t sub:001 dlvrd:001 stat:DELIVRD err:000\0\0";
	struct dlr d;

	(void)state;
	assert_int_equal(parse_n(txt, sizeof txt - 1, &d), 0);
	assert_string_equal(d.id, "12345");
	assert_int_equal(d.sub, 1);
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_skips_blank_after_colon_unless_next_is_a_key(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id: 12345 sub: 001 stat: DELIVRD", &d), 0);
	assert_string_equal(d.id, "12345");
	assert_int_equal(d.sub, 1);
	assert_int_equal(d.outcome, DLR_DELIVERED);

	/* empty id: the next field is not taken as its value */
	assert_int_equal(parse("id: sub:001 stat:DELIVRD", &d), -1);
	assert_string_equal(d.id, "");
	assert_int_equal(d.sub, 1);
}

static void test_dlr_never_reads_past_len(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse_n("id:12345 stat:DELIVRD", 5, &d), 0);
	assert_string_equal(d.id, "12");
	assert_string_equal(d.stat, "");
	assert_int_equal(parse_n("id:1 stat:DELIVRD", 15, &d), 0);
	assert_int_equal(d.outcome, DLR_UNKNOWN);   /* "DELIV" is not a stat */
	assert_int_equal(parse_n("id:1 submit date", 16, &d), 0);
	assert_int_equal(parse_n("id:1 submit date:", 17, &d), 0);
	assert_string_equal(d.submit_date, "");
}

static void test_dlr_rejects_id_longer_than_64(void **state)
{
	char txt[128];
	struct dlr d;

	(void)state;
	memset(txt, 0, sizeof txt);
	memcpy(txt, "id:", 3);
	memset(txt + 3, '7', 65);
	assert_int_equal(parse(txt, &d), -1);
	assert_string_equal(d.id, "");

	txt[3 + 64] = '\0';   /* exactly 64 characters fits */
	assert_int_equal(parse(txt, &d), 0);
	assert_int_equal(strlen(d.id), 64);
}

static void test_dlr_intermediate_states_are_enroute(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:2 sub:001 dlvrd:000 stat:ENROUTE err:000", &d), 0);
	assert_int_equal(d.outcome, DLR_ENROUTE);
	assert_int_equal(parse("id:2 sub:001 dlvrd:000 stat:ACCEPTD err:000", &d), 0);
	assert_int_equal(d.outcome, DLR_ENROUTE);
	assert_int_equal(parse("id:2 stat:SCHEDUL", &d), 0);
	assert_int_equal(d.outcome, DLR_ENROUTE);
}

static void test_dlr_keeps_unknown_stat_word(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:3 stat:Foo err:000", &d), 0);
	assert_string_equal(d.stat, "FOO");
	assert_int_equal(d.outcome, DLR_UNKNOWN);
}

static void test_dlr_first_occurrence_of_a_key_wins(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:first stat:DELIVRD id:second stat:UNDELIV", &d), 0);
	assert_string_equal(d.id, "first");
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_saturates_huge_counts(void **state)
{
	struct dlr d;

	(void)state;
	assert_int_equal(parse("id:4 sub:99999999999999999999 dlvrd:x1", &d), 0);
	assert_int_equal(d.sub, 999999999u);
	assert_int_equal(d.dlvrd, 0);
}

/* ---- receipts from PDUs ---------------------------------------------- */

static void receipt_pdu(struct smpp_pdu *p, const char *text)
{
	memset(p, 0, sizeof *p);
	p->hdr.command_id = SMPP_DELIVER_SM;
	p->esm_class = 0x04;
	if (text != NULL) {
		p->sm_length = (uint8_t)strlen(text);
		memcpy(p->short_message, text, p->sm_length);
	}
}

static void add_tlv(struct smpp_pdu *p, uint16_t tag, const void *v, uint16_t len)
{
	assert_true(p->n_tlvs < SMPP_MAX_TLVS);
	p->tlvs[p->n_tlvs].tag = tag;
	p->tlvs[p->n_tlvs].length = len;
	p->tlvs[p->n_tlvs].value = v;
	p->n_tlvs++;
}

static void test_dlr_is_receipt_checks_esm_class_message_type(void **state)
{
	struct smpp_pdu p;

	(void)state;
	receipt_pdu(&p, NULL);
	assert_true(dlr_is_receipt(&p));
	p.esm_class = 0x20;   /* intermediate delivery notification */
	assert_true(dlr_is_receipt(&p));
	p.esm_class = 0x44;   /* receipt with UDHI set */
	assert_true(dlr_is_receipt(&p));
	p.esm_class = 0x08;   /* SME delivery ack */
	assert_false(dlr_is_receipt(&p));
	p.esm_class = 0x10;   /* SME manual/user ack */
	assert_false(dlr_is_receipt(&p));
	p.esm_class = 0x00;
	assert_false(dlr_is_receipt(&p));
	p.esm_class = 0x0C;
	assert_false(dlr_is_receipt(&p));
	p.esm_class = 0x04;
	p.hdr.command_id = SMPP_DATA_SM;
	assert_true(dlr_is_receipt(&p));
	p.hdr.command_id = SMPP_SUBMIT_SM;
	assert_false(dlr_is_receipt(&p));
	assert_false(dlr_is_receipt(NULL));
}

static void test_dlr_reads_tlv_only_receipt(void **state)
{
	static const uint8_t id[] = "ABC123";         /* with its NUL */
	static const uint8_t st[] = { SMPP_STATE_DELIVERED };
	static const uint8_t nec[] = { 0x03, 0x00, 0x0A };
	struct smpp_pdu p;
	struct dlr d;

	(void)state;
	receipt_pdu(&p, NULL);
	add_tlv(&p, SMPP_TLV_RECEIPTED_MESSAGE_ID, id, sizeof id);
	add_tlv(&p, SMPP_TLV_MESSAGE_STATE, st, 1);
	add_tlv(&p, SMPP_TLV_NETWORK_ERROR_CODE, nec, 3);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_string_equal(d.id, "ABC123");
	assert_int_equal(d.message_state, SMPP_STATE_DELIVERED);
	assert_string_equal(d.stat, "DELIVRD");
	assert_int_equal(d.err, 10);
	assert_int_equal(d.outcome, DLR_DELIVERED);
	assert_int_equal(d.sub, 0);
	assert_string_equal(d.done_date, "");
}

static void test_dlr_tlv_id_without_nul_is_bounded_by_length(void **state)
{
	static const uint8_t id[] = { 'X', 'Y', 'Z', '1' };  /* no NUL */
	static const uint8_t id_nul_inside[] = { 'A', 'B', 0, 'C', 'D' };
	static const uint8_t st[] = { SMPP_STATE_UNDELIVERABLE };
	struct smpp_pdu p;
	struct dlr d;

	(void)state;
	receipt_pdu(&p, NULL);
	add_tlv(&p, SMPP_TLV_RECEIPTED_MESSAGE_ID, id, 3);
	add_tlv(&p, SMPP_TLV_MESSAGE_STATE, st, 1);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_string_equal(d.id, "XYZ");
	assert_int_equal(d.outcome, DLR_FAILED);

	receipt_pdu(&p, NULL);
	add_tlv(&p, SMPP_TLV_RECEIPTED_MESSAGE_ID, id_nul_inside, sizeof id_nul_inside);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_string_equal(d.id, "AB");
	assert_int_equal(d.outcome, DLR_UNKNOWN);
}

static void test_dlr_tlv_wins_over_disagreeing_text(void **state)
{
	static const uint8_t id[] = "tlv-id-7";
	static const uint8_t st[] = { SMPP_STATE_UNDELIVERABLE };
	struct smpp_pdu p;
	struct dlr d;

	(void)state;
	receipt_pdu(&p, "id:text-id-9 sub:001 dlvrd:001 submit date:2301021504 "
		    "done date:2301021505 stat:DELIVRD err:000 text:hi");
	add_tlv(&p, SMPP_TLV_RECEIPTED_MESSAGE_ID, id, sizeof id);
	add_tlv(&p, SMPP_TLV_MESSAGE_STATE, st, 1);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_string_equal(d.id, "tlv-id-7");
	assert_int_equal(d.message_state, SMPP_STATE_UNDELIVERABLE);
	assert_string_equal(d.stat, "UNDELIV");
	assert_int_equal(d.outcome, DLR_FAILED);
	/* what the TLVs lack still comes from the text */
	assert_int_equal(d.err, 0);
	assert_int_equal(d.sub, 1);
	assert_string_equal(d.done_date, "2301021505");
}

static void test_dlr_text_fills_what_tlvs_lack(void **state)
{
	static const uint8_t st[] = { SMPP_STATE_EXPIRED };
	static const uint8_t bad_state[] = { 42 };
	struct smpp_pdu p;
	struct dlr d;

	(void)state;
	receipt_pdu(&p, "id:555 stat:DELIVRD err:000");
	add_tlv(&p, SMPP_TLV_MESSAGE_STATE, st, 1);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_string_equal(d.id, "555");
	assert_int_equal(d.outcome, DLR_EXPIRED);

	/* a message_state TLV with an undefined value is ignored */
	receipt_pdu(&p, "id:556 stat:DELIVRD err:000");
	add_tlv(&p, SMPP_TLV_MESSAGE_STATE, bad_state, 1);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_int_equal(d.outcome, DLR_DELIVERED);
	assert_string_equal(d.stat, "DELIVRD");

	/* a wrong-length message_state TLV is ignored */
	receipt_pdu(&p, "id:557 stat:EXPIRED");
	add_tlv(&p, SMPP_TLV_MESSAGE_STATE, "\x02\x02", 2);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_int_equal(d.outcome, DLR_EXPIRED);
}

static void test_dlr_reads_text_from_message_payload(void **state)
{
	static const char payload[] = "id:7777 sub:001 dlvrd:001 stat:UNDELIV err:0x0B";
	struct smpp_pdu p;
	struct dlr d;

	(void)state;
	receipt_pdu(&p, NULL);
	add_tlv(&p, SMPP_TLV_MESSAGE_PAYLOAD, payload, sizeof payload - 1);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_string_equal(d.id, "7777");
	assert_int_equal(d.err, 11);
	assert_int_equal(d.outcome, DLR_FAILED);

	/* short_message is the text source whenever sm_length > 0 */
	receipt_pdu(&p, "id:8888 stat:DELIVRD");
	add_tlv(&p, SMPP_TLV_MESSAGE_PAYLOAD, payload, sizeof payload - 1);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_string_equal(d.id, "8888");
	assert_int_equal(d.outcome, DLR_DELIVERED);
}

static void test_dlr_network_error_code_uses_two_byte_error(void **state)
{
	static const uint8_t nec[] = { 0x03, 0x01, 0x02 };
	static const uint8_t nec_short[] = { 0x03, 0x01 };
	struct smpp_pdu p;
	struct dlr d;

	(void)state;
	receipt_pdu(&p, "id:9 stat:UNDELIV err:005");
	add_tlv(&p, SMPP_TLV_NETWORK_ERROR_CODE, nec, 3);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_int_equal(d.err, 0x0102);

	receipt_pdu(&p, "id:9 stat:UNDELIV err:005");
	add_tlv(&p, SMPP_TLV_NETWORK_ERROR_CODE, nec_short, 2);
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_int_equal(d.err, 5);
}

static void test_dlr_from_pdu_without_id_fails(void **state)
{
	static const uint8_t st[] = { SMPP_STATE_DELIVERED };
	struct smpp_pdu p;
	struct dlr d;

	(void)state;
	receipt_pdu(&p, "stat:DELIVRD err:000");
	add_tlv(&p, SMPP_TLV_MESSAGE_STATE, st, 1);
	assert_int_equal(dlr_from_pdu(&p, &d), -1);
	assert_int_equal(d.outcome, DLR_DELIVERED);
	assert_int_equal(dlr_from_pdu(NULL, &d), -1);
	assert_int_equal(dlr_from_pdu(&p, NULL), -1);
}

static void test_dlr_from_pdu_bounds_tlv_count(void **state)
{
	static const uint8_t id[] = "tlv";
	struct smpp_pdu p;
	struct dlr d;

	(void)state;
	receipt_pdu(&p, NULL);
	add_tlv(&p, SMPP_TLV_RECEIPTED_MESSAGE_ID, id, sizeof id);
	p.n_tlvs = 100000;   /* a corrupt count never walks past tlvs[] */
	assert_int_equal(dlr_from_pdu(&p, &d), 0);
	assert_string_equal(d.id, "tlv");
}

/* ---- outcomes -------------------------------------------------------- */

static void test_dlr_outcome_mapping_table(void **state)
{
	static const struct { const char *stat; enum dlr_outcome o; } cases[] = {
		{ "DELIVRD", DLR_DELIVERED }, { "delivrd", DLR_DELIVERED },
		{ "DELIVERED", DLR_DELIVERED }, { "2", DLR_DELIVERED },
		{ "EXPIRED", DLR_EXPIRED }, { "3", DLR_EXPIRED },
		{ "UNDELIV", DLR_FAILED }, { "UNDELIVERABLE", DLR_FAILED }, { "5", DLR_FAILED },
		{ "REJECTD", DLR_FAILED }, { "REJECTED", DLR_FAILED }, { "8", DLR_FAILED },
		{ "DELETED", DLR_FAILED }, { "4", DLR_FAILED },
		{ "UNKNOWN", DLR_FAILED }, { "7", DLR_FAILED },
		{ "ENROUTE", DLR_ENROUTE }, { "1", DLR_ENROUTE },
		{ "ACCEPTD", DLR_ENROUTE }, { "ACCEPTED", DLR_ENROUTE }, { "6", DLR_ENROUTE },
		{ "BUFFRED", DLR_ENROUTE }, { "SCHEDUL", DLR_ENROUTE },
		{ "SKIPPED", DLR_FAILED },
		{ "", DLR_UNKNOWN }, { "0", DLR_UNKNOWN }, { "42", DLR_UNKNOWN },
		{ "DELIVRDX", DLR_UNKNOWN }, { "DELIV", DLR_UNKNOWN }, { "whatever", DLR_UNKNOWN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (dlr_outcome_from_stat(cases[i].stat) != cases[i].o)
			fail_msg("stat '%s': got %s, want %s", cases[i].stat,
				 dlr_outcome_name(dlr_outcome_from_stat(cases[i].stat)),
				 dlr_outcome_name(cases[i].o));
	}
	assert_int_equal(dlr_outcome_from_stat(NULL), DLR_UNKNOWN);

	assert_int_equal(dlr_outcome_from_state(0), DLR_UNKNOWN);
	assert_int_equal(dlr_outcome_from_state(SMPP_STATE_ENROUTE), DLR_ENROUTE);
	assert_int_equal(dlr_outcome_from_state(SMPP_STATE_DELIVERED), DLR_DELIVERED);
	assert_int_equal(dlr_outcome_from_state(SMPP_STATE_EXPIRED), DLR_EXPIRED);
	assert_int_equal(dlr_outcome_from_state(SMPP_STATE_DELETED), DLR_FAILED);
	assert_int_equal(dlr_outcome_from_state(SMPP_STATE_UNDELIVERABLE), DLR_FAILED);
	assert_int_equal(dlr_outcome_from_state(SMPP_STATE_ACCEPTED), DLR_ENROUTE);
	assert_int_equal(dlr_outcome_from_state(SMPP_STATE_UNKNOWN), DLR_FAILED);
	assert_int_equal(dlr_outcome_from_state(SMPP_STATE_REJECTED), DLR_FAILED);
	assert_int_equal(dlr_outcome_from_state(42), DLR_UNKNOWN);
	assert_int_equal(dlr_outcome_from_state(-1), DLR_UNKNOWN);

	assert_string_equal(dlr_outcome_name(DLR_DELIVERED), "delivered");
	assert_string_equal(dlr_outcome_name(DLR_FAILED), "failed");
	assert_string_equal(dlr_outcome_name(DLR_EXPIRED), "expired");
	assert_string_equal(dlr_outcome_name(DLR_ENROUTE), "enroute");
	assert_string_equal(dlr_outcome_name(DLR_UNKNOWN), "unknown");
	assert_string_equal(dlr_outcome_name((enum dlr_outcome)99), "unknown");
}

/* ---- id normalisation ------------------------------------------------ */

#define ID65 "12345678901234567890123456789012345678901234567890123456789012345"
#define ID64 "1234567890123456789012345678901234567890123456789012345678901234"

static void test_dlr_normalise_id_table(void **state)
{
	static const struct {
		const char *in;
		enum dlr_id_format fmt;
		int from_receipt;
		int rc;
		const char *out;
	} cases[] = {
		{ "  00ABC123  ", DLR_ID_AUTO, 0, 0, "abc123" },
		{ "\t12\r\n", DLR_ID_AUTO, 1, 0, "12" },
		{ "0000", DLR_ID_AUTO, 0, 0, "0" },
		{ "550E8400-E29B-41D4-A716-446655440000", DLR_ID_AUTO, 1, 0,
		  "550e8400-e29b-41d4-a716-446655440000" },
		{ "", DLR_ID_AUTO, 0, -1, "" },
		{ "   ", DLR_ID_AUTO, 0, -1, "" },
		{ "ab c", DLR_ID_AUTO, 0, -1, "" },
		{ "ab\x01", DLR_ID_AUTO, 0, -1, "" },
		{ ID65, DLR_ID_AUTO, 0, -1, "" },
		{ ID64, DLR_ID_AUTO, 0, 0, ID64 },

		{ "0x00FF", DLR_ID_HEX, 0, 0, "ff" },
		{ "00ff", DLR_ID_HEX, 1, 0, "ff" },
		{ "0XABCDEF", DLR_ID_HEX, 0, 0, "abcdef" },
		{ "0000", DLR_ID_HEX, 0, 0, "0" },
		{ "0x", DLR_ID_HEX, 0, -1, "" },
		{ "12g", DLR_ID_HEX, 0, -1, "" },
		{ "ab-cd", DLR_ID_HEX, 0, -1, "" },
		{ ID65, DLR_ID_HEX, 0, -1, "" },

		{ "000123", DLR_ID_DEC, 0, 0, "123" },
		{ "0", DLR_ID_DEC, 1, 0, "0" },
		{ "12a", DLR_ID_DEC, 0, -1, "" },
		{ "-12", DLR_ID_DEC, 0, -1, "" },
		{ "0x12", DLR_ID_DEC, 0, -1, "" },

		{ "0a1b2c", DLR_ID_HEX_TO_DEC, 0, 0, "662316" },
		{ "0x0A1B2C", DLR_ID_HEX_TO_DEC, 0, 0, "662316" },
		{ "662316", DLR_ID_HEX_TO_DEC, 1, 0, "662316" },
		{ "00662316", DLR_ID_HEX_TO_DEC, 1, 0, "662316" },
		{ "ffffffffffffffff", DLR_ID_HEX_TO_DEC, 0, 0, "18446744073709551615" },
		{ "0000000000000000ff", DLR_ID_HEX_TO_DEC, 0, 0, "255" },
		{ "10000000000000000", DLR_ID_HEX_TO_DEC, 0, -1, "" },
		{ "18446744073709551615", DLR_ID_HEX_TO_DEC, 1, 0, "18446744073709551615" },
		{ "18446744073709551616", DLR_ID_HEX_TO_DEC, 1, -1, "" },
		{ "abc", DLR_ID_HEX_TO_DEC, 1, -1, "" },
		{ "xyz", DLR_ID_HEX_TO_DEC, 0, -1, "" },

		{ " 00AbC ", DLR_ID_RAW, 0, 0, "00AbC" },
		{ "a b", DLR_ID_RAW, 0, 0, "a b" },
		{ ID65, DLR_ID_RAW, 0, -1, "" },

		{ "123", (enum dlr_id_format)77, 0, -1, "" },
	};
	char out[DLR_ID_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc;

		memset(out, 'X', sizeof out);
		rc = dlr_normalise_id(cases[i].in, cases[i].fmt, cases[i].from_receipt, out, sizeof out);
		if (rc != cases[i].rc || strcmp(out, cases[i].out) != 0)
			fail_msg("case %zu '%s' fmt %d: rc %d out '%s', want rc %d out '%s'",
				 i, cases[i].in, cases[i].fmt, rc, out, cases[i].rc, cases[i].out);
	}
}

static void test_dlr_hex2dec_resp_and_receipt_normalise_equal(void **state)
{
	char resp[DLR_ID_MAX], rcpt[DLR_ID_MAX];
	struct dlr d;

	(void)state;
	assert_int_equal(dlr_normalise_id("0a1b2c", DLR_ID_HEX_TO_DEC, 0, resp, sizeof resp), 0);
	assert_int_equal(parse("id:662316 sub:001 dlvrd:001 stat:DELIVRD err:000", &d), 0);
	assert_int_equal(dlr_normalise_id(d.id, DLR_ID_HEX_TO_DEC, 1, rcpt, sizeof rcpt), 0);
	assert_string_equal(resp, rcpt);

	/* the same ids compared as AUTO would not match: the format matters */
	assert_int_equal(dlr_normalise_id("0a1b2c", DLR_ID_AUTO, 0, resp, sizeof resp), 0);
	assert_string_not_equal(resp, rcpt);
}

static void test_dlr_normalise_id_refuses_small_output(void **state)
{
	char out[4];

	(void)state;
	assert_int_equal(dlr_normalise_id("123", DLR_ID_DEC, 0, out, sizeof out), 0);
	assert_string_equal(out, "123");
	assert_int_equal(dlr_normalise_id("1234", DLR_ID_DEC, 0, out, sizeof out), -1);
	assert_string_equal(out, "");
	assert_int_equal(dlr_normalise_id("ffff", DLR_ID_HEX_TO_DEC, 0, out, sizeof out), -1);
	assert_int_equal(dlr_normalise_id("abcd", DLR_ID_RAW, 0, out, sizeof out), -1);
	assert_int_equal(dlr_normalise_id("1", DLR_ID_DEC, 0, out, 0), -1);
	assert_int_equal(dlr_normalise_id("1", DLR_ID_DEC, 0, NULL, 4), -1);
	assert_int_equal(dlr_normalise_id(NULL, DLR_ID_DEC, 0, out, sizeof out), -1);
}

static void test_dlr_id_format_parse_names(void **state)
{
	(void)state;
	assert_int_equal(dlr_id_format_parse("auto"), DLR_ID_AUTO);
	assert_int_equal(dlr_id_format_parse("hex"), DLR_ID_HEX);
	assert_int_equal(dlr_id_format_parse("dec"), DLR_ID_DEC);
	assert_int_equal(dlr_id_format_parse("hex2dec"), DLR_ID_HEX_TO_DEC);
	assert_int_equal(dlr_id_format_parse("raw"), DLR_ID_RAW);
	assert_int_equal(dlr_id_format_parse("HEX"), DLR_ID_HEX);
	assert_int_equal(dlr_id_format_parse("hex2"), -1);
	assert_int_equal(dlr_id_format_parse(""), -1);
	assert_int_equal(dlr_id_format_parse(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dlr_parses_standard_appendix_b),
		cmocka_unit_test(test_dlr_parses_fields_in_any_order),
		cmocka_unit_test(test_dlr_parses_keys_in_any_case),
		cmocka_unit_test(test_dlr_tolerates_missing_sub_and_dlvrd),
		cmocka_unit_test(test_dlr_tolerates_missing_done_date),
		cmocka_unit_test(test_dlr_skips_vendor_fields),
		cmocka_unit_test(test_dlr_text_field_cannot_override_real_stat),
		cmocka_unit_test(test_dlr_stops_parsing_at_text_key),
		cmocka_unit_test(test_dlr_keeps_id_with_leading_zeros_as_written),
		cmocka_unit_test(test_dlr_parses_uuid_id),
		cmocka_unit_test(test_dlr_parses_hex_id_with_leading_zeros),
		cmocka_unit_test(test_dlr_maps_numeric_stat_to_state_name),
		cmocka_unit_test(test_dlr_parses_err_decimal_and_hex),
		cmocka_unit_test(test_dlr_parses_kannel_style_receipt),
		cmocka_unit_test(test_dlr_accepts_tabs_between_fields),
		cmocka_unit_test(test_dlr_accepts_multiple_spaces_and_crlf),
		cmocka_unit_test(test_dlr_accepts_underscore_and_joined_date_keys),
		cmocka_unit_test(test_dlr_rejects_empty_text),
		cmocka_unit_test(test_dlr_rejects_garbage),
		cmocka_unit_test(test_dlr_accepts_full_word_stats),
		cmocka_unit_test(test_dlr_id_padded_with_nuls_and_blanks),
		cmocka_unit_test(test_dlr_skips_blank_after_colon_unless_next_is_a_key),
		cmocka_unit_test(test_dlr_never_reads_past_len),
		cmocka_unit_test(test_dlr_rejects_id_longer_than_64),
		cmocka_unit_test(test_dlr_intermediate_states_are_enroute),
		cmocka_unit_test(test_dlr_keeps_unknown_stat_word),
		cmocka_unit_test(test_dlr_first_occurrence_of_a_key_wins),
		cmocka_unit_test(test_dlr_saturates_huge_counts),
		cmocka_unit_test(test_dlr_is_receipt_checks_esm_class_message_type),
		cmocka_unit_test(test_dlr_reads_tlv_only_receipt),
		cmocka_unit_test(test_dlr_tlv_id_without_nul_is_bounded_by_length),
		cmocka_unit_test(test_dlr_tlv_wins_over_disagreeing_text),
		cmocka_unit_test(test_dlr_text_fills_what_tlvs_lack),
		cmocka_unit_test(test_dlr_reads_text_from_message_payload),
		cmocka_unit_test(test_dlr_network_error_code_uses_two_byte_error),
		cmocka_unit_test(test_dlr_from_pdu_without_id_fails),
		cmocka_unit_test(test_dlr_from_pdu_bounds_tlv_count),
		cmocka_unit_test(test_dlr_outcome_mapping_table),
		cmocka_unit_test(test_dlr_normalise_id_table),
		cmocka_unit_test(test_dlr_hex2dec_resp_and_receipt_normalise_equal),
		cmocka_unit_test(test_dlr_normalise_id_refuses_small_output),
		cmocka_unit_test(test_dlr_id_format_parse_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
