/*
 * codec.h: SMPP 3.4 PDUs as bytes and back.
 *
 * The codec owns framing (the 16-byte header and command_length bounds), the
 * TLV pre-scan, and is the only module that talks to libsmpp34.  Everything
 * above it sees `struct smpp_pdu`, a flat, fixed-size description of one PDU
 * with C strings always NUL-terminated.  Never blocks, never allocates on the
 * hot path (submit_sm, submit_sm_resp, deliver_sm, deliver_sm_resp,
 * enquire_link); not reentrant across threads (libsmpp34 keeps globals).
 */
#ifndef PUSHGATE_SMPP_CODEC_H
#define PUSHGATE_SMPP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define SMPP_HEADER_LEN   16u
#define SMPP_MAX_PDU_LEN  (64u * 1024u)   /* larger command_length = framing error */
#define SMPP_MAX_TLVS     16              /* more than this in one PDU = ESME_RINVOPTPARSTREAM */

/* command ids */
enum {
	SMPP_GENERIC_NACK          = 0x80000000u,
	SMPP_BIND_RECEIVER         = 0x00000001u,
	SMPP_BIND_RECEIVER_RESP    = 0x80000001u,
	SMPP_BIND_TRANSMITTER      = 0x00000002u,
	SMPP_BIND_TRANSMITTER_RESP = 0x80000002u,
	SMPP_QUERY_SM              = 0x00000003u,
	SMPP_QUERY_SM_RESP         = 0x80000003u,
	SMPP_SUBMIT_SM             = 0x00000004u,
	SMPP_SUBMIT_SM_RESP        = 0x80000004u,
	SMPP_DELIVER_SM            = 0x00000005u,
	SMPP_DELIVER_SM_RESP       = 0x80000005u,
	SMPP_UNBIND                = 0x00000006u,
	SMPP_UNBIND_RESP           = 0x80000006u,
	SMPP_CANCEL_SM             = 0x00000008u,
	SMPP_CANCEL_SM_RESP        = 0x80000008u,
	SMPP_BIND_TRANSCEIVER      = 0x00000009u,
	SMPP_BIND_TRANSCEIVER_RESP = 0x80000009u,
	SMPP_OUTBIND               = 0x0000000Bu,
	SMPP_ENQUIRE_LINK          = 0x00000015u,
	SMPP_ENQUIRE_LINK_RESP     = 0x80000015u,
	SMPP_DATA_SM               = 0x00000103u,
	SMPP_DATA_SM_RESP          = 0x80000103u,
};

/* command_status values pushgate uses by name */
enum {
	SMPP_ESME_ROK              = 0x00,
	SMPP_ESME_RINVMSGLEN       = 0x01,
	SMPP_ESME_RINVCMDLEN       = 0x02,
	SMPP_ESME_RINVCMDID        = 0x03,
	SMPP_ESME_RINVBNDSTS       = 0x04,
	SMPP_ESME_RALYBND          = 0x05,
	SMPP_ESME_RSYSERR          = 0x08,
	SMPP_ESME_RINVSRCADR       = 0x0A,
	SMPP_ESME_RINVDSTADR       = 0x0B,
	SMPP_ESME_RINVMSGID        = 0x0C,
	SMPP_ESME_RBINDFAIL        = 0x0D,
	SMPP_ESME_RINVPASWD        = 0x0E,
	SMPP_ESME_RINVSYSID        = 0x0F,
	SMPP_ESME_RMSGQFUL         = 0x14,
	SMPP_ESME_RSUBMITFAIL      = 0x45,
	SMPP_ESME_RTHROTTLED       = 0x58,
	SMPP_ESME_RINVOPTPARSTREAM = 0xC0,
	SMPP_ESME_RINVPARLEN       = 0xC2,
	SMPP_ESME_RUNKNOWNERR      = 0xFF,
};

/* TLV tags pushgate reads or writes */
enum {
	SMPP_TLV_RECEIPTED_MESSAGE_ID = 0x001E,
	SMPP_TLV_MESSAGE_STATE        = 0x0427,
	SMPP_TLV_NETWORK_ERROR_CODE   = 0x0423,
	SMPP_TLV_MESSAGE_PAYLOAD      = 0x0424,
	SMPP_TLV_SAR_MSG_REF_NUM      = 0x020C,
	SMPP_TLV_SAR_TOTAL_SEGMENTS   = 0x020E,
	SMPP_TLV_SAR_SEGMENT_SEQNUM   = 0x020F,
	SMPP_TLV_SC_INTERFACE_VERSION = 0x0210,
};

/* message_state values (SMPP 3.4 section 5.2.28) */
enum smpp_message_state {
	SMPP_STATE_NONE          = 0,  /* TLV absent */
	SMPP_STATE_ENROUTE       = 1,
	SMPP_STATE_DELIVERED     = 2,
	SMPP_STATE_EXPIRED       = 3,
	SMPP_STATE_DELETED       = 4,
	SMPP_STATE_UNDELIVERABLE = 5,
	SMPP_STATE_ACCEPTED      = 6,
	SMPP_STATE_UNKNOWN       = 7,
	SMPP_STATE_REJECTED      = 8,
};

struct smpp_header {
	uint32_t command_length;
	uint32_t command_id;
	uint32_t command_status;
	uint32_t sequence_number;
};

/* One TLV as seen on the wire; `value` points into the decoded buffer. */
struct smpp_tlv {
	uint16_t       tag;
	uint16_t       length;
	const uint8_t *value;
};

/*
 * One PDU, flat.  Which fields mean something depends on hdr.command_id;
 * the rest stay zero.  Ownership: plain values, except tlvs[].value and
 * payload, which point into the buffer given to smpp_decode() and live only
 * as long as it does.
 */
struct smpp_pdu {
	struct smpp_header hdr;

	/* bind_* and bind_*_resp (system_id is also the resp's field) */
	char    system_id[16];
	char    password[9];
	char    system_type[13];
	uint8_t interface_version;
	uint8_t addr_ton, addr_npi;
	char    address_range[41];

	/* submit_sm, deliver_sm, data_sm */
	char    service_type[6];
	uint8_t source_addr_ton, source_addr_npi;
	char    source_addr[21];
	uint8_t dest_addr_ton, dest_addr_npi;
	char    destination_addr[21];
	uint8_t esm_class, protocol_id, priority_flag;
	char    schedule_delivery_time[17];
	char    validity_period[17];
	uint8_t registered_delivery, replace_if_present_flag;
	uint8_t data_coding, sm_default_msg_id;
	uint8_t sm_length;                 /* 0..254 (libsmpp34 packs <= 253) */
	uint8_t short_message[256];

	/* *_resp carrying a message_id (submit_sm_resp, data_sm_resp, query_sm) */
	char    message_id[65];

	/* TLVs, in wire order, as decoded (or to encode) */
	unsigned        n_tlvs;
	struct smpp_tlv tlvs[SMPP_MAX_TLVS];

	/* query_sm_resp (with message_id above) */
	char    final_date[17];
	uint8_t query_message_state;       /* enum smpp_message_state */
	uint8_t query_error_code;
};

/*
 * Framing.  Looks at the first bytes of a receive buffer.
 * Returns the full PDU length when `len` bytes hold at least one whole PDU,
 * 0 when more bytes are needed, and -1 when the header is invalid
 * (command_length < 16 or > SMPP_MAX_PDU_LEN): the stream can't be resynced,
 * the caller answers generic_nack(ESME_RINVCMDLEN) and closes.
 */
long smpp_frame(const uint8_t *buf, size_t len);

/* Reads the 16-byte header (big-endian) of a framed PDU. */
void smpp_read_header(const uint8_t *buf, struct smpp_header *out);

/*
 * Decodes one framed PDU (buf/len exactly as smpp_frame() measured).
 * Returns 0 on success, else the command_status the peer should get:
 * ESME_RINVCMDID for an unknown command (answer generic_nack),
 * ESME_RINVCMDLEN / ESME_RINVMSGLEN / ESME_RINVOPTPARSTREAM / ESME_RINVPARLEN
 * for a malformed body.  `out` always gets the header, even on error, so the
 * caller can answer with the right sequence_number.  A response PDU with a
 * non-zero command_status and an empty body decodes fine.
 */
uint32_t smpp_decode(const uint8_t *buf, size_t len, struct smpp_pdu *out);

/*
 * Encodes `pdu` (command_length is computed, everything else taken as given)
 * into buf.  Returns the number of bytes written, or -1 when it does not fit
 * or a field is out of range.  Error responses (command_status != 0) of
 * *_resp PDUs are encoded with an empty body, as SMPP 3.4 allows.
 */
long smpp_encode(const struct smpp_pdu *pdu, uint8_t *buf, size_t cap);

/* Helpers to build common PDUs.  They zero `pdu` first. */
void smpp_pdu_init(struct smpp_pdu *pdu, uint32_t command_id, uint32_t seq);
void smpp_pdu_resp(struct smpp_pdu *resp, const struct smpp_pdu *req, uint32_t status);

/* Adds a TLV (value not copied: it must outlive smpp_encode()). -1 when full. */
int smpp_tlv_add(struct smpp_pdu *pdu, uint16_t tag, const void *value, uint16_t length);

/* First TLV with `tag`, or NULL. */
const struct smpp_tlv *smpp_tlv_find(const struct smpp_pdu *pdu, uint16_t tag);

/* "submit_sm", "0x00000123" for unknown ids: a static string. */
const char *smpp_command_name(uint32_t command_id);

/* True for *_resp and generic_nack command ids. */
static inline int smpp_is_resp(uint32_t command_id) { return (command_id & 0x80000000u) != 0; }

#endif
