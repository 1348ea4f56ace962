/*
 * test_codec.c: SMPP 3.4 codec behaviour: framing, round trips of every PDU
 * type pushgate speaks, TLV order, the libsmpp34 defects the codec walls off,
 * and exact bytes of a known submit_sm.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "codec.h"

static uint8_t wire[SMPP_MAX_PDU_LEN];

/* encode, frame, decode; returns the decoded PDU in *out */
static size_t round_trip(const struct smpp_pdu *in, struct smpp_pdu *out)
{
	long n = smpp_encode(in, wire, sizeof(wire));
	assert_true(n >= (long)SMPP_HEADER_LEN);
	assert_int_equal(smpp_frame(wire, (size_t)n), n);
	assert_int_equal(smpp_decode(wire, (size_t)n, out), 0);
	assert_int_equal(out->hdr.command_length, (uint32_t)n);
	assert_int_equal(out->hdr.command_id, in->hdr.command_id);
	assert_int_equal(out->hdr.command_status, in->hdr.command_status);
	assert_int_equal(out->hdr.sequence_number, in->hdr.sequence_number);
	return (size_t)n;
}

static void fill_sm(struct smpp_pdu *p, uint32_t id, uint32_t seq)
{
	smpp_pdu_init(p, id, seq);
	strcpy(p->service_type, "CMT");
	p->source_addr_ton = 5;
	p->source_addr_npi = 0;
	strcpy(p->source_addr, "Pushgate");
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	strcpy(p->destination_addr, "447700900123");
	p->esm_class = 0x40;
	p->protocol_id = 0x7f;
	p->priority_flag = 1;
	p->registered_delivery = 1;
	p->replace_if_present_flag = 0;
	p->data_coding = 8;
	p->sm_default_msg_id = 0;
	p->sm_length = 11;
	memcpy(p->short_message, "hello\0world", 11);
}

static void assert_sm_equal(const struct smpp_pdu *a, const struct smpp_pdu *b)
{
	assert_string_equal(a->service_type, b->service_type);
	assert_int_equal(a->source_addr_ton, b->source_addr_ton);
	assert_int_equal(a->source_addr_npi, b->source_addr_npi);
	assert_string_equal(a->source_addr, b->source_addr);
	assert_int_equal(a->dest_addr_ton, b->dest_addr_ton);
	assert_int_equal(a->dest_addr_npi, b->dest_addr_npi);
	assert_string_equal(a->destination_addr, b->destination_addr);
	assert_int_equal(a->esm_class, b->esm_class);
	assert_int_equal(a->registered_delivery, b->registered_delivery);
	assert_int_equal(a->data_coding, b->data_coding);
}

static void test_submit_sm_round_trips_all_fields(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	fill_sm(&in, SMPP_SUBMIT_SM, 7);
	strcpy(in.schedule_delivery_time, "240101120000000+");
	strcpy(in.validity_period, "000001000000000R");
	round_trip(&in, &out);
	assert_sm_equal(&in, &out);
	assert_int_equal(out.protocol_id, 0x7f);
	assert_int_equal(out.priority_flag, 1);
	assert_string_equal(out.schedule_delivery_time, "240101120000000+");
	assert_string_equal(out.validity_period, "000001000000000R");
	assert_int_equal(out.sm_length, 11);
	assert_memory_equal(out.short_message, "hello\0world", 11);
	assert_int_equal(out.n_tlvs, 0);
}

static void test_deliver_sm_round_trips_with_receipt_tlvs(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	uint8_t st = SMPP_STATE_DELIVERED;
	fill_sm(&in, SMPP_DELIVER_SM, 0x7fffffff);
	in.esm_class = 0x04;
	assert_int_equal(smpp_tlv_add(&in, SMPP_TLV_RECEIPTED_MESSAGE_ID, "abc123", 7), 0);
	assert_int_equal(smpp_tlv_add(&in, SMPP_TLV_MESSAGE_STATE, &st, 1), 0);
	round_trip(&in, &out);
	assert_sm_equal(&in, &out);
	assert_int_equal(out.n_tlvs, 2);
	const struct smpp_tlv *t = smpp_tlv_find(&out, SMPP_TLV_MESSAGE_STATE);
	assert_non_null(t);
	assert_int_equal(t->length, 1);
	assert_int_equal(t->value[0], SMPP_STATE_DELIVERED);
	t = smpp_tlv_find(&out, SMPP_TLV_RECEIPTED_MESSAGE_ID);
	assert_non_null(t);
	assert_string_equal((const char *)t->value, "abc123");
	assert_null(smpp_tlv_find(&out, SMPP_TLV_NETWORK_ERROR_CODE));
}

static void test_deliver_sm_with_schedule_time_is_not_encoded(void **state)
{
	(void)state;
	struct smpp_pdu in;
	fill_sm(&in, SMPP_DELIVER_SM, 1);
	strcpy(in.schedule_delivery_time, "240101120000000+");
	assert_int_equal(smpp_encode(&in, wire, sizeof(wire)), -1);
}

static void test_data_sm_and_resp_round_trip(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	static const char payload[300] = "a long payload";
	smpp_pdu_init(&in, SMPP_DATA_SM, 9);
	strcpy(in.service_type, "WAP");
	in.source_addr_ton = 1;
	in.source_addr_npi = 1;
	strcpy(in.source_addr, "4915112345678");
	in.dest_addr_ton = 1;
	in.dest_addr_npi = 1;
	strcpy(in.destination_addr, "4917612345678");
	in.esm_class = 0;
	in.registered_delivery = 1;
	in.data_coding = 4;
	assert_int_equal(smpp_tlv_add(&in, SMPP_TLV_MESSAGE_PAYLOAD, payload, sizeof(payload)), 0);
	round_trip(&in, &out);
	assert_sm_equal(&in, &out);
	assert_int_equal(out.n_tlvs, 1);
	assert_int_equal(out.tlvs[0].length, sizeof(payload));
	assert_memory_equal(out.tlvs[0].value, payload, sizeof(payload));

	struct smpp_pdu resp;
	smpp_pdu_resp(&resp, &in, 0);
	assert_int_equal(resp.hdr.command_id, SMPP_DATA_SM_RESP);
	strcpy(resp.message_id, "0123456789abcdef");
	round_trip(&resp, &out);
	assert_string_equal(out.message_id, "0123456789abcdef");
}

static void test_bind_pdus_and_resps_round_trip(void **state)
{
	(void)state;
	static const uint32_t ids[] = { SMPP_BIND_TRANSMITTER, SMPP_BIND_RECEIVER,
					SMPP_BIND_TRANSCEIVER };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct smpp_pdu in, out, resp;
		smpp_pdu_init(&in, ids[i], (uint32_t)i + 1);
		strcpy(in.system_id, "pushgate_carr_1");   /* 15 = the maximum */
		strcpy(in.password, "secret12");
		strcpy(in.system_type, "VMA");
		in.interface_version = 0x34;
		in.addr_ton = 1;
		in.addr_npi = 1;
		strcpy(in.address_range, "^44");
		round_trip(&in, &out);
		assert_string_equal(out.system_id, "pushgate_carr_1");
		assert_string_equal(out.password, "secret12");
		assert_string_equal(out.system_type, "VMA");
		assert_int_equal(out.interface_version, 0x34);
		assert_int_equal(out.addr_ton, 1);
		assert_int_equal(out.addr_npi, 1);
		assert_string_equal(out.address_range, "^44");

		uint8_t ver = 0x34;
		smpp_pdu_resp(&resp, &in, 0);
		strcpy(resp.system_id, "smscsim");
		assert_int_equal(smpp_tlv_add(&resp, SMPP_TLV_SC_INTERFACE_VERSION, &ver, 1), 0);
		round_trip(&resp, &out);
		assert_int_equal(out.hdr.command_id, ids[i] | 0x80000000u);
		assert_string_equal(out.system_id, "smscsim");
		assert_int_equal(out.n_tlvs, 1);
		assert_int_equal(out.tlvs[0].tag, SMPP_TLV_SC_INTERFACE_VERSION);
	}
}

static void test_bind_with_interface_version_33_and_odd_npi_decodes(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	smpp_pdu_init(&in, SMPP_BIND_TRANSCEIVER, 3);
	strcpy(in.system_id, "old");
	in.interface_version = 0x33;
	in.addr_ton = 7;      /* not a TON libsmpp34 knows */
	in.addr_npi = 0x0e;   /* internet */
	round_trip(&in, &out);
	assert_int_equal(out.interface_version, 0x33);
	assert_int_equal(out.addr_ton, 7);
	assert_int_equal(out.addr_npi, 0x0e);
}

static void test_outbind_query_cancel_round_trip(void **state)
{
	(void)state;
	struct smpp_pdu in, out;

	smpp_pdu_init(&in, SMPP_OUTBIND, 4);
	strcpy(in.system_id, "smsc");
	strcpy(in.password, "pw");
	round_trip(&in, &out);
	assert_string_equal(out.system_id, "smsc");
	assert_string_equal(out.password, "pw");

	smpp_pdu_init(&in, SMPP_QUERY_SM, 5);
	strcpy(in.message_id, "ff01");
	in.source_addr_ton = 1;
	in.source_addr_npi = 9;
	strcpy(in.source_addr, "12345");
	round_trip(&in, &out);
	assert_string_equal(out.message_id, "ff01");
	assert_int_equal(out.source_addr_npi, 9);
	assert_string_equal(out.source_addr, "12345");

	smpp_pdu_init(&in, SMPP_QUERY_SM_RESP, 5);
	strcpy(in.message_id, "ff01");
	strcpy(in.final_date, "240101120000000+");
	in.query_message_state = SMPP_STATE_DELIVERED;
	in.query_error_code = 3;
	round_trip(&in, &out);
	assert_string_equal(out.message_id, "ff01");
	assert_string_equal(out.final_date, "240101120000000+");
	assert_int_equal(out.query_message_state, SMPP_STATE_DELIVERED);
	assert_int_equal(out.query_error_code, 3);

	smpp_pdu_init(&in, SMPP_CANCEL_SM, 6);
	strcpy(in.service_type, "");
	strcpy(in.message_id, "42");
	strcpy(in.source_addr, "Pushgate");
	in.dest_addr_ton = 1;
	strcpy(in.destination_addr, "447700900123");
	round_trip(&in, &out);
	assert_string_equal(out.message_id, "42");
	assert_string_equal(out.source_addr, "Pushgate");
	assert_string_equal(out.destination_addr, "447700900123");
	assert_int_equal(out.dest_addr_ton, 1);
}

static void test_header_only_pdus_round_trip_as_16_bytes(void **state)
{
	(void)state;
	static const uint32_t ids[] = { SMPP_ENQUIRE_LINK, SMPP_ENQUIRE_LINK_RESP, SMPP_UNBIND,
					SMPP_UNBIND_RESP, SMPP_CANCEL_SM_RESP, SMPP_GENERIC_NACK };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct smpp_pdu in, out;
		smpp_pdu_init(&in, ids[i], 100 + (uint32_t)i);
		if (ids[i] == SMPP_GENERIC_NACK)
			in.hdr.command_status = SMPP_ESME_RINVCMDID;
		assert_int_equal(round_trip(&in, &out), SMPP_HEADER_LEN);
	}
}

static void test_submit_sm_resp_and_deliver_sm_resp_round_trip(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	smpp_pdu_init(&in, SMPP_SUBMIT_SM_RESP, 11);
	strcpy(in.message_id, "0000000000000000000000000000000000000000000000000000000000000064");
	round_trip(&in, &out);
	assert_string_equal(out.message_id, in.message_id);

	smpp_pdu_init(&in, SMPP_DELIVER_SM_RESP, 12);
	assert_int_equal(round_trip(&in, &out), SMPP_HEADER_LEN + 1);
	assert_string_equal(out.message_id, "");
}

static void test_error_resp_is_encoded_with_empty_body(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	smpp_pdu_init(&in, SMPP_SUBMIT_SM_RESP, 13);
	in.hdr.command_status = SMPP_ESME_RTHROTTLED;
	strcpy(in.message_id, "ignored");
	assert_int_equal(round_trip(&in, &out), SMPP_HEADER_LEN);
	assert_string_equal(out.message_id, "");
}

static void test_tlv_order_is_preserved(void **state)
{
	(void)state;
	static const uint16_t tags[] = { 0x1403, SMPP_TLV_MESSAGE_STATE, 0x0005,
					 SMPP_TLV_RECEIPTED_MESSAGE_ID, 0x1500 };
	static const uint8_t v[] = { 2 };
	struct smpp_pdu in, out;
	fill_sm(&in, SMPP_DELIVER_SM, 21);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(smpp_tlv_add(&in, tags[i], tags[i] == SMPP_TLV_MESSAGE_STATE ? v :
					      (const void *)"x", 1), 0);
	round_trip(&in, &out);
	assert_int_equal(out.n_tlvs, 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(out.tlvs[i].tag, tags[i]);
}

static void test_short_message_of_254_octets_round_trips(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	fill_sm(&in, SMPP_SUBMIT_SM, 22);
	in.sm_length = 254;
	for (int i = 0; i < 254; i++)
		in.short_message[i] = (uint8_t)(i + 1);
	round_trip(&in, &out);
	assert_int_equal(out.sm_length, 254);
	assert_memory_equal(out.short_message, in.short_message, 254);

	in.sm_length = 255;
	assert_int_equal(smpp_encode(&in, wire, sizeof(wire)), -1);
}

static void test_frame_waits_for_whole_pdu_and_rejects_bad_lengths(void **state)
{
	(void)state;
	uint8_t b[32] = { 0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1 };
	assert_int_equal(smpp_frame(b, 0), 0);
	assert_int_equal(smpp_frame(b, 3), 0);
	assert_int_equal(smpp_frame(b, 10), 0);
	assert_int_equal(smpp_frame(b, 15), 0);
	assert_int_equal(smpp_frame(b, 16), 16);
	assert_int_equal(smpp_frame(b, 32), 16);
	b[3] = 15;
	assert_int_equal(smpp_frame(b, 4), -1);
	b[3] = 0;
	assert_int_equal(smpp_frame(b, 16), -1);
	b[1] = 0x01; b[2] = 0x00; b[3] = 0x01;   /* 64 KiB + 1 */
	assert_int_equal(smpp_frame(b, 16), -1);
	b[1] = 0x01; b[3] = 0x00;                /* exactly 64 KiB: wait for it */
	assert_int_equal(smpp_frame(b, 32), 0);
}

static void test_unknown_command_gives_rinvcmdid_with_header(void **state)
{
	(void)state;
	static const uint8_t b[] = { 0, 0, 0, 20, 0, 0, 0, 0x07, 0, 0, 0, 0, 0, 0, 0x12, 0x34,
				     1, 2, 3, 4 };  /* replace_sm: not spoken */
	struct smpp_pdu out;
	assert_int_equal(smpp_decode(b, sizeof(b), &out), SMPP_ESME_RINVCMDID);
	assert_int_equal(out.hdr.command_id, 0x07);
	assert_int_equal(out.hdr.sequence_number, 0x1234);
	assert_int_equal(out.hdr.command_length, 20);
	assert_string_equal(smpp_command_name(0x07), "0x00000007");
	assert_string_equal(smpp_command_name(SMPP_SUBMIT_SM), "submit_sm");
}

static void test_empty_body_error_resp_decodes(void **state)
{
	(void)state;
	static const uint8_t b[] = { 0, 0, 0, 16, 0x80, 0, 0, 0x04, 0, 0, 0, 0x58, 0, 0, 0, 9 };
	struct smpp_pdu out;
	assert_int_equal(smpp_decode(b, sizeof(b), &out), 0);
	assert_int_equal(out.hdr.command_status, SMPP_ESME_RTHROTTLED);
	assert_string_equal(out.message_id, "");

	/* ...but an OK submit_sm_resp must carry its message_id */
	static const uint8_t ok[] = { 0, 0, 0, 16, 0x80, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 9 };
	assert_int_equal(smpp_decode(ok, sizeof(ok), &out), SMPP_ESME_RINVCMDLEN);
}

static void test_vendor_command_status_decodes(void **state)
{
	(void)state;
	static const uint8_t b[] = { 0, 0, 0, 19, 0x80, 0, 0, 0x04, 0, 0, 0x04, 0, 0, 0, 0, 10,
				     'a', 'b', 0 };
	struct smpp_pdu out;
	assert_int_equal(smpp_decode(b, sizeof(b), &out), 0);
	assert_int_equal(out.hdr.command_status, 0x400);
	assert_string_equal(out.message_id, "ab");

	/* same through the libsmpp34 path (data_sm_resp) */
	static const uint8_t d[] = { 0, 0, 0, 19, 0x80, 0, 0x01, 0x03, 0, 0, 0x04, 0x01, 0, 0, 0, 11,
				     'c', 'd', 0 };
	assert_int_equal(smpp_decode(d, sizeof(d), &out), 0);
	assert_int_equal(out.hdr.command_status, 0x401);
	assert_string_equal(out.message_id, "cd");
}

static void test_sequence_zero_still_decodes(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	fill_sm(&in, SMPP_SUBMIT_SM, 0);
	round_trip(&in, &out);
	assert_int_equal(out.hdr.sequence_number, 0);
	assert_string_equal(out.destination_addr, "447700900123");
}

static size_t deliver_with_tlvs(unsigned n_tlvs)
{
	struct smpp_pdu in;
	fill_sm(&in, SMPP_DELIVER_SM, 30);
	long n = smpp_encode(&in, wire, sizeof(wire));
	assert_true(n > 0);
	size_t len = (size_t)n;
	for (unsigned i = 0; i < n_tlvs; i++) {
		static const uint8_t t[] = { 0x14, 0x00, 0x00, 0x01, 'z' };
		memcpy(wire + len, t, sizeof(t));
		len += sizeof(t);
	}
	wire[0] = (uint8_t)(len >> 24); wire[1] = (uint8_t)(len >> 16);
	wire[2] = (uint8_t)(len >> 8); wire[3] = (uint8_t)len;
	return len;
}

static void test_more_than_16_tlvs_are_rejected(void **state)
{
	(void)state;
	struct smpp_pdu out;
	size_t len = deliver_with_tlvs(16);
	assert_int_equal(smpp_decode(wire, len, &out), 0);
	assert_int_equal(out.n_tlvs, 16);
	len = deliver_with_tlvs(17);
	assert_int_equal(smpp_decode(wire, len, &out), SMPP_ESME_RINVOPTPARSTREAM);
	assert_int_equal(out.hdr.sequence_number, 30);
	len = deliver_with_tlvs(40);   /* enough to overflow libsmpp34's error buffer */
	assert_int_equal(smpp_decode(wire, len, &out), SMPP_ESME_RINVOPTPARSTREAM);

	struct smpp_pdu in;
	fill_sm(&in, SMPP_SUBMIT_SM, 1);
	for (int i = 0; i < SMPP_MAX_TLVS; i++)
		assert_int_equal(smpp_tlv_add(&in, 0x1400, "a", 1), 0);
	assert_int_equal(smpp_tlv_add(&in, 0x1400, "a", 1), -1);
}

static void test_tlv_running_past_pdu_is_rejected(void **state)
{
	(void)state;
	struct smpp_pdu out;
	size_t len = deliver_with_tlvs(1);
	wire[len - 2] = 0x02;   /* length 2, one byte present */
	assert_int_equal(smpp_decode(wire, len, &out), SMPP_ESME_RINVOPTPARSTREAM);
	wire[len - 2] = 0x01;
	assert_int_equal(smpp_decode(wire, len, &out), 0);
	/* a dangling partial TLV header */
	len = deliver_with_tlvs(0);
	wire[len] = 0x14; wire[len + 1] = 0; wire[len + 2] = 0;
	len += 3;
	wire[3] = (uint8_t)len;
	assert_int_equal(smpp_decode(wire, len, &out), SMPP_ESME_RINVOPTPARSTREAM);
}

static void test_message_state_tlv_of_wrong_length_is_rejected(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	fill_sm(&in, SMPP_DELIVER_SM, 31);
	assert_int_equal(smpp_tlv_add(&in, SMPP_TLV_MESSAGE_STATE, "ab", 2), 0);
	long n = smpp_encode(&in, wire, sizeof(wire));
	assert_true(n > 0);
	assert_int_equal(smpp_decode(wire, (size_t)n, &out), SMPP_ESME_RINVPARLEN);
}

static void test_truncated_mandatory_part_is_rejected(void **state)
{
	(void)state;
	struct smpp_pdu in, out;
	fill_sm(&in, SMPP_SUBMIT_SM, 32);
	long n = smpp_encode(&in, wire, sizeof(wire));
	assert_true(n > 20);
	/* cut inside destination_addr */
	size_t cut = 16 + 4 + 3 + 9 + 2 + 5;
	wire[2] = 0; wire[3] = (uint8_t)cut;
	assert_int_equal(smpp_decode(wire, cut, &out), SMPP_ESME_RINVCMDLEN);
	/* sm_length larger than what is left */
	n = smpp_encode(&in, wire, sizeof(wire));
	wire[n - 12] = 200;
	assert_int_equal(smpp_decode(wire, (size_t)n, &out), SMPP_ESME_RINVMSGLEN);
	/* source_addr without NUL within 21 octets */
	static const uint8_t b[] = { 0, 0, 0, 0x30, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1,
		'1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '1', '2', '3', '4', '5', '6', '7',
		'8', '9', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9' };
	assert_int_equal(smpp_decode(b, sizeof(b), &out), SMPP_ESME_RINVPARLEN);
	/* enquire_link with a body */
	static const uint8_t el[] = { 0, 0, 0, 17, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	assert_int_equal(smpp_decode(el, sizeof(el), &out), SMPP_ESME_RINVCMDLEN);
	/* command_length disagreeing with the buffer */
	assert_int_equal(smpp_decode(el, 16, &out), SMPP_ESME_RINVCMDLEN);
}

static void test_over_long_fields_are_refused_by_encode(void **state)
{
	(void)state;
	struct smpp_pdu in;
	smpp_pdu_init(&in, SMPP_BIND_TRANSCEIVER, 1);
	memset(in.system_id, 'x', sizeof(in.system_id));   /* 16 chars, no NUL */
	in.interface_version = 0x34;
	assert_int_equal(smpp_encode(&in, wire, sizeof(wire)), -1);
	in.system_id[15] = '\0';
	assert_true(smpp_encode(&in, wire, sizeof(wire)) > 0);

	fill_sm(&in, SMPP_SUBMIT_SM, 1);
	memset(in.destination_addr, '9', sizeof(in.destination_addr));
	assert_int_equal(smpp_encode(&in, wire, sizeof(wire)), -1);
}

static void test_encode_refuses_too_small_buffer(void **state)
{
	(void)state;
	struct smpp_pdu in;
	fill_sm(&in, SMPP_SUBMIT_SM, 1);
	long n = smpp_encode(&in, wire, sizeof(wire));
	assert_true(n > 0);
	assert_int_equal(smpp_encode(&in, wire, (size_t)n - 1), -1);
	assert_int_equal(smpp_encode(&in, wire, (size_t)n), n);   /* no spare byte needed */
	smpp_pdu_init(&in, SMPP_ENQUIRE_LINK, 1);
	assert_int_equal(smpp_encode(&in, wire, 15), -1);
}

static void test_submit_sm_bytes_match_known_hex(void **state)
{
	(void)state;
	static const uint8_t expect[] = {
		0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x04,  /* len 64, submit_sm */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  /* status 0, seq 1 */
		0x00,                                            /* service_type "" */
		0x05, 0x00, 'P', 'u', 's', 'h', 'g', 'a', 't', 'e', 0x00,
		0x01, 0x01, '4', '4', '7', '7', '0', '0', '9', '0', '0', '1', '2', '3', 0x00,
		0x00, 0x00, 0x00,                                /* esm, pid, priority */
		0x00, 0x00,                                      /* schedule, validity */
		0x01, 0x00, 0x00, 0x00,                          /* regdlv, replace, dc, dflt */
		0x05, 'h', 'e', 'l', 'l', 'o',
		0x02, 0x0c, 0x00, 0x02, 0x00, 0x2a,              /* sar_msg_ref_num 42 */
	};
	static const uint8_t ref[] = { 0x00, 0x2a };
	struct smpp_pdu in, out;
	smpp_pdu_init(&in, SMPP_SUBMIT_SM, 1);
	in.source_addr_ton = 5;
	strcpy(in.source_addr, "Pushgate");
	in.dest_addr_ton = 1;
	in.dest_addr_npi = 1;
	strcpy(in.destination_addr, "447700900123");
	in.registered_delivery = 1;
	in.sm_length = 5;
	memcpy(in.short_message, "hello", 5);
	assert_int_equal(smpp_tlv_add(&in, SMPP_TLV_SAR_MSG_REF_NUM, ref, 2), 0);
	long n = smpp_encode(&in, wire, sizeof(wire));
	assert_int_equal(n, sizeof(expect));
	assert_memory_equal(wire, expect, sizeof(expect));

	assert_int_equal(smpp_decode(expect, sizeof(expect), &out), 0);
	assert_string_equal(out.source_addr, "Pushgate");
	assert_int_equal(out.source_addr_ton, 5);
	assert_int_equal(out.sm_length, 5);
	assert_int_equal(out.n_tlvs, 1);
	assert_int_equal(out.tlvs[0].tag, SMPP_TLV_SAR_MSG_REF_NUM);
	assert_ptr_equal(out.tlvs[0].value, expect + 62);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_submit_sm_round_trips_all_fields),
		cmocka_unit_test(test_deliver_sm_round_trips_with_receipt_tlvs),
		cmocka_unit_test(test_deliver_sm_with_schedule_time_is_not_encoded),
		cmocka_unit_test(test_data_sm_and_resp_round_trip),
		cmocka_unit_test(test_bind_pdus_and_resps_round_trip),
		cmocka_unit_test(test_bind_with_interface_version_33_and_odd_npi_decodes),
		cmocka_unit_test(test_outbind_query_cancel_round_trip),
		cmocka_unit_test(test_header_only_pdus_round_trip_as_16_bytes),
		cmocka_unit_test(test_submit_sm_resp_and_deliver_sm_resp_round_trip),
		cmocka_unit_test(test_error_resp_is_encoded_with_empty_body),
		cmocka_unit_test(test_tlv_order_is_preserved),
		cmocka_unit_test(test_short_message_of_254_octets_round_trips),
		cmocka_unit_test(test_frame_waits_for_whole_pdu_and_rejects_bad_lengths),
		cmocka_unit_test(test_unknown_command_gives_rinvcmdid_with_header),
		cmocka_unit_test(test_empty_body_error_resp_decodes),
		cmocka_unit_test(test_vendor_command_status_decodes),
		cmocka_unit_test(test_sequence_zero_still_decodes),
		cmocka_unit_test(test_more_than_16_tlvs_are_rejected),
		cmocka_unit_test(test_tlv_running_past_pdu_is_rejected),
		cmocka_unit_test(test_message_state_tlv_of_wrong_length_is_rejected),
		cmocka_unit_test(test_truncated_mandatory_part_is_rejected),
		cmocka_unit_test(test_over_long_fields_are_refused_by_encode),
		cmocka_unit_test(test_encode_refuses_too_small_buffer),
		cmocka_unit_test(test_submit_sm_bytes_match_known_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
