/*
 * server_int.h: what the files of the SMPP server role share, and nothing
 * outside them may use: its connections, accounts, submits, long messages
 * and outbox groups (server.c owns them), and the calls between
 * server.c (listeners, connections, binds, the dispatch of requests),
 * submit.c (submits, long messages, query and cancel, through the intake)
 * and outbox.c (receipts and MO towards the ESMEs, MO from carriers).
 */
#ifndef PUSHGATE_SMPP_SERVER_INT_H
#define PUSHGATE_SMPP_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "authpool.h"
#include "codec.h"
#include "config.h"
#include "intake.h"
#include "passwd.h"
#include "ratelimit.h"
#include "session.h"
#include "store.h"
#include "text.h"

#define TICK_INTERVAL   0.05      /* reaping, reassembly timeouts, outbox polling */
#define TEXT_MAX        65536     /* octets of one reassembled message */
#define OUTBOX_BATCH    2000
#define MAX_KEYWORDS    32

struct conn;

/* Where one submit_sm / data_sm (or one part of a long message) gets its answer. */
struct ans {
	struct conn *c;
	uint32_t     seq, cmd;
};

/* One logical message (a submit_sm, data_sm or reassembled long message) on its way to the intake queue. */
struct submit {
	struct intake_req   req;         /* req.arg is the submit */
	struct smpp_server *srv;
	struct intake_opts  opts;
	long long      smpp_account_id, account_id;
	char           sender[21], to[21];
	uint8_t        registered;
	char           send_at[40];  /* schedule_delivery_time as ISO 8601 UTC, "" = now */
	double         validity;     /* seconds from now, < 0 = the default */
	char          *text;        /* UTF-8, malloc'd */
	unsigned       n_ans;
	struct ans     ans[];
};

/* A long message waiting for its parts (keyed by account, addresses, reference). */
struct part_slot {
	uint8_t  *data;
	size_t    len;
	struct ans ans;
	int       have;
};
struct reasm {
	struct reasm    *next;
	long long        smpp_account_id, account_id;
	char             sender[21], to[21];
	uint16_t         ref;
	uint8_t          total, got, coding, registered;
	double           deadline;
	char             send_at[40];
	double           validity;
	struct part_slot part[];
};

/* Per SMPP account: what its binds share. */
struct acct {
	struct acct *next;
	long long    id, account_id;
	unsigned     binds, rx_binds;
	unsigned     max_binds, window;
	double       tps, tokens, last_refill;
	unsigned     outbox_in_flight;   /* deliver_sm sent, not answered */
	unsigned     rr;
};

struct conn {
	struct conn         *next;
	struct smpp_server  *srv;
	struct smpp_session *s;
	unsigned             id;
	char                 name[32];
	char                 peer[64];      /* address only, for allowed_sources */
	int                  tls;
	int                  closed;        /* the session went down: reap it */
	unsigned             refs;          /* answers still owed through this connection */
	struct acct         *acct;          /* once bound */
	int                  can_tx, can_rx;
	unsigned             in_flight;     /* submits not yet answered */
	unsigned             ob_in_flight;  /* deliver_sm sent, not yet answered (at most the account's window) */
	/* bind check */
	char                 system_id[16], password[9];
	struct store_job     auth_job;
	const char          *auth_params[2];
	int                  auth_in_flight;    /* the lookup, then the password check (authpool) */
	/* the account's row while its password is checked */
	int                  auth_known, auth_source_ok, auth_disabled;
	long long            auth_smpp_account, auth_account;
	unsigned             auth_binds, auth_window;
	double               auth_tps;
	ev_timer             delay;         /* a refused bind waits before its answer */
	uint32_t             refuse_status;
};

/* query_sm / cancel_sm: one statement, answered after it. */
struct qjob {
	struct store_job    job;
	struct smpp_server *srv;
	struct ans          ans;
	char                message_id[65];
	const char         *params[2];
	char                p_id[24], p_acct[24];
};

/* An outbox statement (lease, ack, release) with its array literals. */
struct ogroup {
	struct store_job job;
	int              in_flight;
	const char      *params[4];
	char            *lit[2];
	char             p_lease[32];
};

/*
 * An outbox row by its key: its id and its recipient's, which names the
 * history range (partition) it is in; 0 for none (an MO).  A deliver_sm in
 * flight carries one (malloc'd, its session tag) until the ESME answers.
 */
struct ob_key {
	long long id, rid;
};

struct mojob {
	struct store_job    job;
	struct smpp_server *srv;
	void              (*done)(void *, uint32_t);
	void               *ctx;
	const char         *params[6];
	char                p_dcs[8], src[21], dst[21];
	char               *route, *text, *keywords;
};

struct smpp_server {
	struct ev_loop      *loop;
	struct store        *store;
	const struct config *cfg;
	char                 node[96];
	int                  lfd, tls_lfd, port, tls_port;   /* bound by smpp_server_new */
	int                  open;                            /* listening: smpp_server_open */
	ev_io                lio, tlio;
	SSL_CTX             *tls;
	ev_timer             tick;
	ev_prepare           pump;          /* end of the loop turn: acks out, the next outbox lease */
	int                  stopping;
	unsigned             next_id;
	size_t               n_conns;
	struct conn         *conns;
	struct acct         *accts;
	struct reasm        *reasm;
	struct intake_queue *intake;       /* where submits are stored (shared with the other doors) */
	size_t               jobs_in_flight;
	/* outbox */
	struct ogroup        lease, ack, release;
	struct ob_key       *acked, *released;
	size_t               n_acked, cap_acked, n_released, cap_released;
	double               next_lease;    /* no lease before (the last found nothing) */
	char                 stand_in_hash[SMPP_PASSWD_HASH_MAX];   /* checked for unknown system_ids */
	struct authpool     *auth_pool;     /* PBKDF2 off the loop */
	struct ratelimit    *fail_ip;       /* failed binds per client address: a lockout when spent */
	struct ratelimit    *fail_sys;      /* and per system_id */
	/* receipt text: which states say DELIVRD */
	char                 delivered[128];
	char                 keywords[MAX_KEYWORDS][64];
	size_t               n_keywords;
	struct {
		uint64_t accepted, binds, bind_refused, submits, submit_refused, throttled, receipts_sent,
			 receipts_acked, mo_received, mo_forwarded, unbound_refused, locked_out, auth_busy;
	} c;
};

/* data_coding -> a coding text_decode knows; -1 when pushgate can't carry it. */
static inline int smpps_coding_of(uint8_t dcs)
{
	switch (dcs) {
	case 0x00: return TEXT_GSM7;
	case 0x01: return TEXT_LATIN1;   /* IA5: ASCII, a subset */
	case 0x03: return TEXT_LATIN1;
	case 0x08: return TEXT_UCS2;
	default:
		if ((dcs & 0xF0) == 0xF0)    /* message class, GSM 7-bit or 8-bit data */
			return (dcs & 0x04) ? -1 : TEXT_GSM7;
		return -1;
	}
}

/* server.c */
void smpps_conn_unref(struct conn *c);

/* submit.c */
void smpps_answer(struct ans *a, uint32_t status, const char *message_id);   /* the PDU's resp; drops the ref */
void smpps_answer_now(struct conn *c, const struct smpp_pdu *req, uint32_t status);
char *smpps_decode_text(const uint8_t *oct, size_t len, int coding);          /* UTF-8, malloc'd; NULL: bad */
void smpps_handle_submit(struct conn *c, const struct smpp_pdu *req);
void smpps_handle_query_cancel(struct conn *c, const struct smpp_pdu *req);
void smpps_reasm_expire(struct smpp_server *srv, int all);                     /* all: every one, now */
void smpps_reasm_free(struct reasm *r);

/* outbox.c */
void smpps_on_resp(void *arg, uint64_t tag, uint32_t status, const struct smpp_pdu *resp);
void smpps_outbox_lease(struct smpp_server *srv);
void smpps_outbox_updates(struct smpp_server *srv);
void smpps_ogroup_reset(struct ogroup *b);
const char *smpps_stat_of(struct smpp_server *srv, const char *state, uint8_t *ms);   /* appendix-B stat, message_state */

#endif
