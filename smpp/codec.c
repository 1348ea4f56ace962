/*
 * codec.c: turns bytes into SMPP 3.4 PDUs and back.
 *
 * Owns framing, the 16-byte header (explicit big-endian helpers), the layout
 * walk of every mandatory body (bounds, C-string maximums, sm_length) and all
 * TLV work: TLVs are read and written here, in wire order, never by
 * libsmpp34.  libsmpp34 is the body codec for the mandatory part of bind_*,
 * bind_*_resp, outbind, data_sm(_resp), query_sm(_resp) and cancel_sm; it
 * only ever sees a private scratch copy that this file has already proven
 * well formed, with the values it wrongly rejects (vendor command_status,
 * sequence 0, unusual TON/NPI, interface_version != 0x34) neutralised and
 * restored afterwards.  So its error buffer never overflows, it never
 * allocates a TLV list, and it can neither truncate nor read past a buffer.
 * The hot path (submit_sm, deliver_sm and their resps) is coded by hand from
 * the same layout tables (libsmpp34 is ~20x too slow there, see layout_of());
 * header-only PDUs and empty-body error responses never reach libsmpp34.
 * Never blocks, never allocates, never dumps; not reentrant (libsmpp34 keeps
 * globals, smpp_command_name() has a static buffer for unknown ids).
 */
#define _POSIX_C_SOURCE 200809L
#include "codec.h"

#include <stdio.h>
#include <string.h>

#include <smpp34.h>
#include <smpp34_structs.h>
#include <smpp34_params.h>

/* ---- big-endian helpers ------------------------------------------------ */

static inline uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(((unsigned)p[0] << 8) | (unsigned)p[1]);
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---- body layouts ---------------------------------------------------------
 * One table per PDU type, in wire order.  `max` is the SMPP 3.4 maximum of a
 * C-string including its NUL (never more than the smpp_pdu field nor the
 * libsmpp34 field), `off` the field in struct smpp_pdu.
 */
enum fkind {
	FK_CSTR,   /* C-Octet String */
	FK_U8,     /* plain integer */
	FK_PATCH,  /* integer libsmpp34 validates wrongly: neutralised, restored */
	FK_SM,     /* sm_length + short_message (always the last field) */
};

struct fdesc {
	uint8_t  kind;
	uint8_t  max;       /* FK_CSTR: size including NUL; FK_PATCH: neutral value */
	uint16_t off;       /* offsetof(struct smpp_pdu, field) */
};

#define S(f, m)  { FK_CSTR,  (m), (uint16_t)offsetof(struct smpp_pdu, f) }
#define U(f)     { FK_U8,    0,   (uint16_t)offsetof(struct smpp_pdu, f) }
#define P(f, n)  { FK_PATCH, (n), (uint16_t)offsetof(struct smpp_pdu, f) }
#define SM()     { FK_SM,    0,   (uint16_t)offsetof(struct smpp_pdu, sm_length) }

static const struct fdesc L_BIND[] = {
	S(system_id, 16), S(password, 9), S(system_type, 13),
	P(interface_version, 0x34), P(addr_ton, 0), P(addr_npi, 0),
	S(address_range, 41),
};
static const struct fdesc L_BIND_RESP[] = { S(system_id, 16) };
static const struct fdesc L_OUTBIND[] = { S(system_id, 16), S(password, 9) };
static const struct fdesc L_SUBMIT[] = {
	S(service_type, 6), P(source_addr_ton, 0), P(source_addr_npi, 0),
	S(source_addr, 21), P(dest_addr_ton, 0), P(dest_addr_npi, 0),
	S(destination_addr, 21), U(esm_class), U(protocol_id), U(priority_flag),
	S(schedule_delivery_time, 17), S(validity_period, 17),
	U(registered_delivery), U(replace_if_present_flag), U(data_coding),
	U(sm_default_msg_id), SM(),
};
/* deliver_sm: schedule_delivery_time and validity_period must be NULL */
static const struct fdesc L_DELIVER[] = {
	S(service_type, 6), P(source_addr_ton, 0), P(source_addr_npi, 0),
	S(source_addr, 21), P(dest_addr_ton, 0), P(dest_addr_npi, 0),
	S(destination_addr, 21), U(esm_class), U(protocol_id), U(priority_flag),
	S(schedule_delivery_time, 1), S(validity_period, 1),
	U(registered_delivery), U(replace_if_present_flag), U(data_coding),
	U(sm_default_msg_id), SM(),
};
static const struct fdesc L_MSGID[] = { S(message_id, 65) };
static const struct fdesc L_DELIVER_RESP[] = { S(message_id, 1) };
static const struct fdesc L_DATA[] = {
	S(service_type, 6), P(source_addr_ton, 0), P(source_addr_npi, 0),
	S(source_addr, 21), P(dest_addr_ton, 0), P(dest_addr_npi, 0),
	S(destination_addr, 21), U(esm_class), U(registered_delivery),
	U(data_coding),
};
static const struct fdesc L_QUERY[] = {
	S(message_id, 65), P(source_addr_ton, 0), P(source_addr_npi, 0),
	S(source_addr, 21),
};
static const struct fdesc L_QUERY_RESP[] = {
	S(message_id, 65), S(final_date, 17), U(query_message_state),
	U(query_error_code),
};
static const struct fdesc L_CANCEL[] = {
	S(service_type, 6), S(message_id, 65), P(source_addr_ton, 0),
	P(source_addr_npi, 0), S(source_addr, 21), P(dest_addr_ton, 0),
	P(dest_addr_npi, 0), S(destination_addr, 21),
};

#undef S
#undef U
#undef P
#undef SM

struct layout_ref {
	const struct fdesc *f;
	unsigned            n;
	int                 by_hand;   /* hot path: libsmpp34 is too slow, see below */
};

#define LAYOUT(t) { (t), (unsigned)(sizeof(t) / sizeof((t)[0])), 0 }
#define HAND(t)   { (t), (unsigned)(sizeof(t) / sizeof((t)[0])), 1 }

/*
 * submit_sm, submit_sm_resp, deliver_sm and deliver_sm_resp are coded by hand
 * from the same tables: libsmpp34 costs >= 600 ns per call whatever the PDU
 * (it clears its 2 KiB error buffer and runs two snprintf per field), measured
 * 2.3 us to pack and 2.3 us to unpack one submit_sm, i.e. 200k encode+decode
 * pairs/s against the 300k/s the gateway needs.  All other PDU types go
 * through libsmpp34.
 *
 * Layout of a command's body.  Returns 1 with *lo set for body PDUs, 0 for
 * header-only PDUs, -1 for commands this codec does not know.
 */
static int layout_of(uint32_t id, struct layout_ref *lo)
{
	static const struct layout_ref bind = LAYOUT(L_BIND), bind_resp = LAYOUT(L_BIND_RESP),
		outbind = LAYOUT(L_OUTBIND), submit = HAND(L_SUBMIT),
		deliver = HAND(L_DELIVER), msgid = LAYOUT(L_MSGID), submit_resp = HAND(L_MSGID),
		deliver_resp = HAND(L_DELIVER_RESP), data = LAYOUT(L_DATA),
		query = LAYOUT(L_QUERY), query_resp = LAYOUT(L_QUERY_RESP),
		cancel = LAYOUT(L_CANCEL);

	switch (id) {
	case SMPP_BIND_RECEIVER: case SMPP_BIND_TRANSMITTER: case SMPP_BIND_TRANSCEIVER:
		*lo = bind; return 1;
	case SMPP_BIND_RECEIVER_RESP: case SMPP_BIND_TRANSMITTER_RESP:
	case SMPP_BIND_TRANSCEIVER_RESP:
		*lo = bind_resp; return 1;
	case SMPP_OUTBIND:        *lo = outbind; return 1;
	case SMPP_SUBMIT_SM:      *lo = submit; return 1;
	case SMPP_SUBMIT_SM_RESP: *lo = submit_resp; return 1;
	case SMPP_DELIVER_SM:     *lo = deliver; return 1;
	case SMPP_DELIVER_SM_RESP: *lo = deliver_resp; return 1;
	case SMPP_DATA_SM:        *lo = data; return 1;
	case SMPP_DATA_SM_RESP:   *lo = msgid; return 1;
	case SMPP_QUERY_SM:       *lo = query; return 1;
	case SMPP_QUERY_SM_RESP:  *lo = query_resp; return 1;
	case SMPP_CANCEL_SM:      *lo = cancel; return 1;
	case SMPP_GENERIC_NACK: case SMPP_UNBIND: case SMPP_UNBIND_RESP:
	case SMPP_CANCEL_SM_RESP: case SMPP_ENQUIRE_LINK: case SMPP_ENQUIRE_LINK_RESP:
		return 0;
	default:
		return -1;
	}
}

/* Where the walk found each field of one body. */
struct walk {
	size_t   end;            /* first byte after the mandatory part */
	size_t   sm_at;          /* offset of sm_length, 0 when none */
	unsigned npatch;
	uint16_t patch_at[8];    /* wire offsets of FK_PATCH bytes */
	uint8_t  patch_field[8]; /* index into the layout */
};

/*
 * Proves that buf[16..len) starts with a well-formed mandatory part, and
 * when `out` is given, decodes it there.  Returns 0 or the command_status
 * to answer.
 */
static uint32_t walk_wire(const struct layout_ref *lo, const uint8_t *buf, size_t len,
			  struct walk *w, struct smpp_pdu *out)
{
	size_t pos = SMPP_HEADER_LEN;
	uint8_t *raw = (uint8_t *)out;

	memset(w, 0, sizeof(*w));
	for (unsigned i = 0; i < lo->n; i++) {
		const struct fdesc *f = &lo->f[i];
		size_t left = len - pos;

		switch (f->kind) {
		case FK_CSTR: {
			size_t scan = left < f->max ? left : f->max;
			const uint8_t *nul = memchr(buf + pos, 0, scan);
			if (nul == NULL)
				return left < f->max ? SMPP_ESME_RINVCMDLEN : SMPP_ESME_RINVPARLEN;
			size_t n = (size_t)(nul - (buf + pos)) + 1;
			if (raw != NULL)
				memcpy(raw + f->off, buf + pos, n);
			pos += n;
			break;
		}
		case FK_PATCH:
			if (w->npatch >= sizeof(w->patch_at) / sizeof(w->patch_at[0]))
				return SMPP_ESME_RSYSERR;
			w->patch_at[w->npatch] = (uint16_t)pos;
			w->patch_field[w->npatch++] = (uint8_t)i;
			/* fallthrough */
		case FK_U8:
			if (left < 1)
				return SMPP_ESME_RINVCMDLEN;
			if (raw != NULL)
				raw[f->off] = buf[pos];
			pos++;
			break;
		case FK_SM:
			if (left < 1)
				return SMPP_ESME_RINVCMDLEN;
			if (buf[pos] > 254 || (size_t)buf[pos] + 1 > left)
				return SMPP_ESME_RINVMSGLEN;
			w->sm_at = pos;
			if (out != NULL) {
				out->sm_length = buf[pos];
				memcpy(out->short_message, buf + pos + 1, buf[pos]);
			}
			pos += 1u + buf[pos];
			break;
		}
	}
	w->end = pos;
	return 0;
}

/* Known fixed or bounded TLV lengths; 0 = anything that fits the PDU. */
static int tlv_length_ok(uint16_t tag, uint16_t len)
{
	switch (tag) {
	case SMPP_TLV_MESSAGE_STATE:
	case SMPP_TLV_SAR_TOTAL_SEGMENTS:
	case SMPP_TLV_SAR_SEGMENT_SEQNUM:
	case SMPP_TLV_SC_INTERFACE_VERSION:
		return len == 1;
	case SMPP_TLV_SAR_MSG_REF_NUM:
		return len == 2;
	case SMPP_TLV_NETWORK_ERROR_CODE:
		return len == 3;
	case SMPP_TLV_RECEIPTED_MESSAGE_ID:
		return len >= 1 && len <= 65;
	default:
		return 1;
	}
}

/* TLV pre-scan: all of buf[pos..len) must be whole TLVs, at most SMPP_MAX_TLVS. */
static uint32_t scan_tlvs(const uint8_t *buf, size_t pos, size_t len, struct smpp_pdu *out)
{
	out->n_tlvs = 0;
	while (pos < len) {
		if (len - pos < 4)
			return SMPP_ESME_RINVOPTPARSTREAM;
		if (out->n_tlvs >= SMPP_MAX_TLVS)
			return SMPP_ESME_RINVOPTPARSTREAM;
		uint16_t tag = get16(buf + pos), tlen = get16(buf + pos + 2);
		pos += 4;
		if (tlen > len - pos)
			return SMPP_ESME_RINVOPTPARSTREAM;
		if (!tlv_length_ok(tag, tlen))
			return SMPP_ESME_RINVPARLEN;
		struct smpp_tlv *t = &out->tlvs[out->n_tlvs++];
		t->tag = tag;
		t->length = tlen;
		t->value = buf + pos;
		pos += tlen;
	}
	return 0;
}

/* ---- libsmpp34 glue -------------------------------------------------------
 * Largest mandatory part is submit_sm: 16 + 6+2+21+2+21+3+17+17+4+1+254 = 364
 * (coded by hand, but the bound is kept for every type).
 */
#define SCRATCH_LEN 512u

union lib_pdu {
	bind_transmitter_t      bind;   /* same layout for receiver/transceiver */
	bind_receiver_t         bind_rx;
	bind_transceiver_t      bind_trx;
	bind_transmitter_resp_t bind_resp;
	bind_receiver_resp_t    bind_rx_resp;
	bind_transceiver_resp_t bind_trx_resp;
	outbind_t               outbind;
	data_sm_t               data;
	data_sm_resp_t          data_resp;
	query_sm_t              query;
	query_sm_resp_t         query_resp;
	cancel_sm_t             cancel;
};

static void copy_cstr(char *dst, size_t cap, const void *src, size_t srccap)
{
	size_t n = strnlen((const char *)src, srccap);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

#define IN_S(f)  copy_cstr(out->f, sizeof(out->f), t->f, sizeof(t->f))
#define IN_U(f)  (out->f = t->f)
#define OUT_S(f) copy_cstr((char *)t->f, sizeof(t->f), in->f, sizeof(in->f))
#define OUT_U(f) (t->f = in->f)

/* libsmpp34 struct -> smpp_pdu, for the mandatory part. */
static void lib_to_pdu(const union lib_pdu *u, struct smpp_pdu *out)
{
	switch (out->hdr.command_id) {
	case SMPP_BIND_RECEIVER: case SMPP_BIND_TRANSMITTER: case SMPP_BIND_TRANSCEIVER: {
		const bind_transmitter_t *t = &u->bind;
		IN_S(system_id); IN_S(password); IN_S(system_type);
		IN_U(interface_version); IN_U(addr_ton); IN_U(addr_npi);
		IN_S(address_range);
		break;
	}
	case SMPP_BIND_RECEIVER_RESP: case SMPP_BIND_TRANSMITTER_RESP:
	case SMPP_BIND_TRANSCEIVER_RESP: {
		const bind_transmitter_resp_t *t = &u->bind_resp;
		IN_S(system_id);
		break;
	}
	case SMPP_OUTBIND: {
		const outbind_t *t = &u->outbind;
		IN_S(system_id); IN_S(password);
		break;
	}
	case SMPP_DATA_SM: {
		const data_sm_t *t = &u->data;
		IN_S(service_type); IN_S(source_addr); IN_S(destination_addr);
		IN_U(esm_class); IN_U(registered_delivery); IN_U(data_coding);
		break;
	}
	case SMPP_DATA_SM_RESP: {
		const data_sm_resp_t *t = &u->data_resp;
		IN_S(message_id);
		break;
	}
	case SMPP_QUERY_SM: {
		const query_sm_t *t = &u->query;
		IN_S(message_id); IN_S(source_addr);
		break;
	}
	case SMPP_QUERY_SM_RESP: {
		const query_sm_resp_t *t = &u->query_resp;
		IN_S(message_id); IN_S(final_date);
		out->query_message_state = t->message_state;
		out->query_error_code = t->error_code;
		break;
	}
	case SMPP_CANCEL_SM: {
		const cancel_sm_t *t = &u->cancel;
		IN_S(service_type); IN_S(message_id); IN_S(source_addr);
		IN_S(destination_addr);
		break;
	}
	default:
		break;
	}
}

/* smpp_pdu -> libsmpp34 struct (header set by the caller), sm_length 0. */
static void pdu_to_lib(const struct smpp_pdu *in, union lib_pdu *u)
{
	switch (in->hdr.command_id) {
	case SMPP_BIND_RECEIVER: case SMPP_BIND_TRANSMITTER: case SMPP_BIND_TRANSCEIVER: {
		bind_transmitter_t *t = &u->bind;
		OUT_S(system_id); OUT_S(password); OUT_S(system_type);
		OUT_S(address_range);
		break;
	}
	case SMPP_BIND_RECEIVER_RESP: case SMPP_BIND_TRANSMITTER_RESP:
	case SMPP_BIND_TRANSCEIVER_RESP: {
		bind_transmitter_resp_t *t = &u->bind_resp;
		OUT_S(system_id);
		break;
	}
	case SMPP_OUTBIND: {
		outbind_t *t = &u->outbind;
		OUT_S(system_id); OUT_S(password);
		break;
	}
	case SMPP_DATA_SM: {
		data_sm_t *t = &u->data;
		OUT_S(service_type); OUT_S(source_addr); OUT_S(destination_addr);
		OUT_U(esm_class); OUT_U(registered_delivery); OUT_U(data_coding);
		break;
	}
	case SMPP_DATA_SM_RESP: {
		data_sm_resp_t *t = &u->data_resp;
		OUT_S(message_id);
		break;
	}
	case SMPP_QUERY_SM: {
		query_sm_t *t = &u->query;
		OUT_S(message_id); OUT_S(source_addr);
		break;
	}
	case SMPP_QUERY_SM_RESP: {
		query_sm_resp_t *t = &u->query_resp;
		OUT_S(message_id); OUT_S(final_date);
		t->message_state = in->query_message_state;
		t->error_code = in->query_error_code;
		break;
	}
	case SMPP_CANCEL_SM: {
		cancel_sm_t *t = &u->cancel;
		OUT_S(service_type); OUT_S(message_id); OUT_S(source_addr);
		OUT_S(destination_addr);
		break;
	}
	default:
		break;
	}
}

/* The list libsmpp34 may have hung off a struct (never expected here). */
static tlv_t **lib_tlv_list(union lib_pdu *u, uint32_t id)
{
	switch (id) {
	case SMPP_BIND_RECEIVER_RESP: case SMPP_BIND_TRANSMITTER_RESP:
	case SMPP_BIND_TRANSCEIVER_RESP:
		return &u->bind_resp.tlv;
	case SMPP_DATA_SM:    return &u->data.tlv;
	default:              return NULL;
	}
}

/* ---- public API ---------------------------------------------------------- */

long smpp_frame(const uint8_t *buf, size_t len)
{
	if (len < 4)
		return 0;
	uint32_t cl = get32(buf);
	if (cl < SMPP_HEADER_LEN || cl > SMPP_MAX_PDU_LEN)
		return -1;
	if (len < cl)
		return 0;
	return (long)cl;
}

void smpp_read_header(const uint8_t *buf, struct smpp_header *out)
{
	out->command_length = get32(buf);
	out->command_id = get32(buf + 4);
	out->command_status = get32(buf + 8);
	out->sequence_number = get32(buf + 12);
}

static void clear_body(struct smpp_pdu *out)
{
	struct smpp_header h = out->hdr;
	memset(out, 0, sizeof(*out));
	out->hdr = h;
}

uint32_t smpp_decode(const uint8_t *buf, size_t len, struct smpp_pdu *out)
{
	struct layout_ref lo;
	struct walk w;
	uint32_t st;

	memset(out, 0, sizeof(*out));
	if (len < SMPP_HEADER_LEN) {
		if (len >= 4)
			out->hdr.command_length = get32(buf);
		return SMPP_ESME_RINVCMDLEN;
	}
	smpp_read_header(buf, &out->hdr);
	if (out->hdr.command_length != len || len > SMPP_MAX_PDU_LEN)
		return SMPP_ESME_RINVCMDLEN;

	/* an error response may carry no (or a broken) body: its status is what counts */
	int lenient = smpp_is_resp(out->hdr.command_id) && out->hdr.command_status != 0;
	int kind = layout_of(out->hdr.command_id, &lo);
	if (kind < 0)
		return SMPP_ESME_RINVCMDID;
	if (len == SMPP_HEADER_LEN && (kind == 0 || lenient))
		return 0;
	if (kind == 0)
		return lenient ? 0 : SMPP_ESME_RINVCMDLEN;

	st = walk_wire(&lo, buf, len, &w, lo.by_hand ? out : NULL);
	if (st == 0)
		st = scan_tlvs(buf, w.end, len, out);
	if (st != 0 || w.end + 1 > SCRATCH_LEN) {
		clear_body(out);
		return lenient ? 0 : (st ? st : SMPP_ESME_RINVCMDLEN);
	}
	if (lo.by_hand)
		return 0;

	/* libsmpp34 decodes a private copy of the header + mandatory part */
	uint8_t scratch[SCRATCH_LEN];
	union lib_pdu u;
	memcpy(scratch, buf, w.end);
	scratch[w.end] = 0;
	put32(scratch, (uint32_t)w.end);
	put32(scratch + 8, 0);
	put32(scratch + 12, 1);
	for (unsigned i = 0; i < w.npatch; i++)
		scratch[w.patch_at[i]] = lo.f[w.patch_field[i]].max;
	memset(&u, 0, sizeof(u));
	int rc = smpp34_unpack(out->hdr.command_id, &u, scratch, (int)w.end);
	tlv_t **tl = lib_tlv_list(&u, out->hdr.command_id);
	if (tl != NULL && *tl != NULL) {
		destroy_tlv(*tl);
		*tl = NULL;
	}
	if (rc != 0) {
		clear_body(out);
		return lenient ? 0 : SMPP_ESME_RINVCMDLEN;
	}
	lib_to_pdu(&u, out);
	for (unsigned i = 0; i < w.npatch; i++)
		((uint8_t *)out)[lo.f[w.patch_field[i]].off] = buf[w.patch_at[i]];
	return 0;
}

/* Mandatory part by hand: buf has room (checked by the caller). */
static void encode_by_hand(const struct layout_ref *lo, const struct smpp_pdu *pdu,
			   uint8_t *buf)
{
	const uint8_t *raw = (const uint8_t *)pdu;
	size_t pos = SMPP_HEADER_LEN;

	for (unsigned i = 0; i < lo->n; i++) {
		const struct fdesc *f = &lo->f[i];
		if (f->kind == FK_CSTR) {
			size_t n = strlen((const char *)raw + f->off) + 1;
			memcpy(buf + pos, raw + f->off, n);
			pos += n;
		} else if (f->kind == FK_SM) {
			buf[pos] = pdu->sm_length;
			memcpy(buf + pos + 1, pdu->short_message, pdu->sm_length);
			pos += 1u + pdu->sm_length;
		} else {
			buf[pos++] = raw[f->off];
		}
	}
}

/*
 * Mandatory part through libsmpp34, packed into scratch (it wants a spare
 * byte) with neutral values for what it would refuse, then copied and the
 * real values restored.  `mand` is the size the layout promised, `sm_at` the
 * offset of sm_length or 0.  Returns 0 or -1.
 */
static int encode_by_lib(const struct layout_ref *lo, const struct smpp_pdu *pdu,
			 uint8_t *buf, size_t mand, size_t sm_at)
{
	const uint8_t *raw = (const uint8_t *)pdu;
	const uint32_t id = pdu->hdr.command_id;
	union lib_pdu u;
	uint8_t scratch[SCRATCH_LEN];
	int packed = 0;

	memset(&u, 0, sizeof(u));
	u.bind.command_id = id;
	u.bind.command_status = 0;
	u.bind.sequence_number = 1;
	pdu_to_lib(pdu, &u);
	if (id == SMPP_BIND_RECEIVER || id == SMPP_BIND_TRANSMITTER ||
	    id == SMPP_BIND_TRANSCEIVER)
		u.bind.interface_version = 0x34;
	if (smpp34_pack(id, scratch, (int)sizeof(scratch), &packed, &u) != 0)
		return -1;
	size_t expect = sm_at ? sm_at + 1 : mand;
	if ((size_t)packed != expect)
		return -1;   /* libsmpp34 disagreed with the layout: never ship that */
	memcpy(buf, scratch, expect);

	size_t pos = SMPP_HEADER_LEN;
	for (unsigned i = 0; i < lo->n; i++) {
		const struct fdesc *f = &lo->f[i];
		if (f->kind == FK_CSTR)
			pos += strlen((const char *)raw + f->off) + 1;
		else if (f->kind == FK_PATCH)
			buf[pos++] = raw[f->off];
		else
			pos++;
	}
	if (sm_at) {
		buf[sm_at] = pdu->sm_length;
		memcpy(buf + sm_at + 1, pdu->short_message, pdu->sm_length);
	}
	return 0;
}

long smpp_encode(const struct smpp_pdu *pdu, uint8_t *buf, size_t cap)
{
	const uint32_t id = pdu->hdr.command_id;
	const uint8_t *raw = (const uint8_t *)pdu;
	struct layout_ref lo;
	size_t mand = SMPP_HEADER_LEN, total, sm_at = 0;
	int kind = layout_of(id, &lo);

	if (kind < 0 || pdu->n_tlvs > SMPP_MAX_TLVS)
		return -1;
	if (kind == 0 || (smpp_is_resp(id) && pdu->hdr.command_status != 0)) {
		if (kind == 0 && pdu->n_tlvs != 0)
			return -1;
		if (cap < SMPP_HEADER_LEN)
			return -1;
		put32(buf, SMPP_HEADER_LEN);
		put32(buf + 4, id);
		put32(buf + 8, pdu->hdr.command_status);
		put32(buf + 12, pdu->hdr.sequence_number);
		return SMPP_HEADER_LEN;
	}

	/* validate every field against the SMPP maximums and size the result */
	for (unsigned i = 0; i < lo.n; i++) {
		const struct fdesc *f = &lo.f[i];
		switch (f->kind) {
		case FK_CSTR: {
			size_t n = strnlen((const char *)raw + f->off, f->max);
			if (n >= f->max)
				return -1;   /* would be truncated */
			mand += n + 1;
			break;
		}
		case FK_U8: case FK_PATCH:
			mand++;
			break;
		case FK_SM:
			if (pdu->sm_length > 254)
				return -1;
			sm_at = mand;
			mand += 1u + pdu->sm_length;
			break;
		}
	}
	total = mand;
	for (unsigned i = 0; i < pdu->n_tlvs; i++) {
		if (pdu->tlvs[i].length != 0 && pdu->tlvs[i].value == NULL)
			return -1;
		total += 4u + pdu->tlvs[i].length;
	}
	if (total > cap || total > SMPP_MAX_PDU_LEN)
		return -1;

	if (lo.by_hand)
		encode_by_hand(&lo, pdu, buf);
	else if (encode_by_lib(&lo, pdu, buf, mand, sm_at) != 0)
		return -1;

	size_t pos = mand;
	for (unsigned i = 0; i < pdu->n_tlvs; i++) {
		const struct smpp_tlv *t = &pdu->tlvs[i];
		put16(buf + pos, t->tag);
		put16(buf + pos + 2, t->length);
		if (t->length)
			memcpy(buf + pos + 4, t->value, t->length);
		pos += 4u + t->length;
	}
	put32(buf, (uint32_t)total);
	put32(buf + 4, id);
	put32(buf + 8, pdu->hdr.command_status);
	put32(buf + 12, pdu->hdr.sequence_number);
	return (long)total;
}

void smpp_pdu_init(struct smpp_pdu *pdu, uint32_t command_id, uint32_t seq)
{
	memset(pdu, 0, sizeof(*pdu));
	pdu->hdr.command_id = command_id;
	pdu->hdr.sequence_number = seq;
}

void smpp_pdu_resp(struct smpp_pdu *resp, const struct smpp_pdu *req, uint32_t status)
{
	uint32_t seq = req->hdr.sequence_number;
	uint32_t id = req->hdr.command_id | 0x80000000u;
	smpp_pdu_init(resp, id, seq);
	resp->hdr.command_status = status;
}

int smpp_tlv_add(struct smpp_pdu *pdu, uint16_t tag, const void *value, uint16_t length)
{
	if (pdu->n_tlvs >= SMPP_MAX_TLVS || (length != 0 && value == NULL))
		return -1;
	struct smpp_tlv *t = &pdu->tlvs[pdu->n_tlvs++];
	t->tag = tag;
	t->length = length;
	t->value = value;
	return 0;
}

const struct smpp_tlv *smpp_tlv_find(const struct smpp_pdu *pdu, uint16_t tag)
{
	for (unsigned i = 0; i < pdu->n_tlvs && i < SMPP_MAX_TLVS; i++)
		if (pdu->tlvs[i].tag == tag)
			return &pdu->tlvs[i];
	return NULL;
}

const char *smpp_command_name(uint32_t command_id)
{
	static char unknown[16];

	switch (command_id) {
	case SMPP_GENERIC_NACK:          return "generic_nack";
	case SMPP_BIND_RECEIVER:         return "bind_receiver";
	case SMPP_BIND_RECEIVER_RESP:    return "bind_receiver_resp";
	case SMPP_BIND_TRANSMITTER:      return "bind_transmitter";
	case SMPP_BIND_TRANSMITTER_RESP: return "bind_transmitter_resp";
	case SMPP_QUERY_SM:              return "query_sm";
	case SMPP_QUERY_SM_RESP:         return "query_sm_resp";
	case SMPP_SUBMIT_SM:             return "submit_sm";
	case SMPP_SUBMIT_SM_RESP:        return "submit_sm_resp";
	case SMPP_DELIVER_SM:            return "deliver_sm";
	case SMPP_DELIVER_SM_RESP:       return "deliver_sm_resp";
	case SMPP_UNBIND:                return "unbind";
	case SMPP_UNBIND_RESP:           return "unbind_resp";
	case SMPP_CANCEL_SM:             return "cancel_sm";
	case SMPP_CANCEL_SM_RESP:        return "cancel_sm_resp";
	case SMPP_BIND_TRANSCEIVER:      return "bind_transceiver";
	case SMPP_BIND_TRANSCEIVER_RESP: return "bind_transceiver_resp";
	case SMPP_OUTBIND:               return "outbind";
	case SMPP_ENQUIRE_LINK:          return "enquire_link";
	case SMPP_ENQUIRE_LINK_RESP:     return "enquire_link_resp";
	case SMPP_DATA_SM:               return "data_sm";
	case SMPP_DATA_SM_RESP:          return "data_sm_resp";
	default:
		snprintf(unknown, sizeof(unknown), "0x%08x", (unsigned)command_id);
		return unknown;
	}
}
