/*
 * session.c: one ESME-side SMPP session on the libev loop.
 *
 * Owns the socket, its input/output buffers, the bind FSM, the window of
 * outstanding requests (slot = sequence_number % capacity), the timers
 * (connect/handshake/bind deadline, response timeouts, enquire_link,
 * reconnect) and, when the route asks for TLS, the SSL_CTX (for the life of
 * the session) and the SSL (for the life of the socket): a handshake state
 * between connect and bind, then every byte goes through TLS, driven by the
 * same two watchers.  Reads and writes, plain or TLS, are netio's
 * (src/netio.c, as for HTTP and WebSocket).  PDUs written during one loop iteration
 * leave together just before the loop waits (one send, one TLS record).
 * sess_enter() is the only writer of s->state and logs every transition.
 * Requests the peer sends are handed to the owner, except enquire_link and
 * unbind, answered here.  A malformed PDU is answered with generic_nack;
 * an unframeable stream closes the connection.  A failed handshake or peer
 * verification closes the connection and retries with backoff.  Never
 * blocks (no blocking TLS call either); the only allocations are the
 * buffers, sized at creation and grown within bounds, and OpenSSL's per
 * connection state.  The same FSM serves the SMSC side (smpp/server.c):
 * an accepted socket starts in SESS_OPEN (after the TLS handshake, as the
 * TLS server), a bind moves it to SESS_BINDING until the owner answers,
 * then SESS_BOUND; it never reconnects.
 */
#include "session.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "netio.h"
#include "util.h"

#define OUT_MAX  (8u * 1024u * 1024u)   /* output buffer bound: a peer that stops reading gets cut */
#define IN_CAP   (SMPP_MAX_PDU_LEN + 4096u)

struct slot {
	uint32_t seq;
	int      used;
	uint64_t tag;
	uint32_t command_id;
	double   deadline;
};

struct smpp_session {
	struct ev_loop *loop;
	struct smpp_session_config cfg;
	char name[32], host[128], system_id[16], password[9], system_type[13];
	char tls_ca_file[256], tls_server_name[128];
	struct smpp_session_cb cb;
	void *arg;

	enum sess_state state;
	int fd;
	ev_io rio, wio;
	ev_prepare flush_prep;  /* what callbacks wrote leaves in one write before the loop waits */
	ev_timer tick;          /* 0.25 s: response timeouts, enquire_link, bind deadline */
	ev_timer reconnect;
	double backoff;
	double last_rx, state_since;
	int stopping;
	double stop_deadline;

	uint8_t *in;
	size_t in_len;
	uint8_t *out;
	size_t out_len, out_cap;

	struct slot *slots;
	unsigned cap;           /* power of two >= 2 * window */
	unsigned used;
	uint32_t next_seq;
	uint32_t enquire_seq;   /* outstanding enquire_link, 0 when none */

	SSL_CTX *tls_ctx;       /* cfg.tls: built at creation (again at connect if that failed) */
	SSL *ssl;               /* one per connection, freed with the socket */
	int tls_up;             /* handshake done: closing sends close_notify */
	struct netio_tls tls;   /* failed (no close_notify after it), and what a blocked read or write waits for */

	struct smpp_session_stats stats;

	/* server side (smpp_session_accept) */
	int server;
	int tls_ctx_borrowed;   /* tls_ctx belongs to the listener */
	uint32_t bind_cmd, bind_seq;
	int bind_pending;
};

static const char *const state_names[] = { "closed", "connecting", "tls_handshake", "binding", "bound", "unbinding",
					   "open" };

const char *smpp_session_state_name(enum sess_state st) { return state_names[st]; }

static void sess_close(struct smpp_session *s, const char *why);

static void sess_enter(struct smpp_session *s, enum sess_state next)
{
	if (s->state == next)
		return;
	assert((size_t)next < sizeof(state_names) / sizeof(state_names[0]));
	log_info("smpp", "bind=%s ev=state from=%s to=%s", s->name, state_names[s->state], state_names[next]);
	enum sess_state prev = s->state;
	s->state = next;
	s->state_since = ev_now(s->loop);
	if (next == SESS_BOUND && s->cb.on_bound)
		s->cb.on_bound(s->arg);
	if (s->server) {
		if (next == SESS_CLOSED && s->cb.on_down)
			s->cb.on_down(s->arg);
		return;
	}
	if (prev == SESS_BOUND && next != SESS_BOUND && next != SESS_UNBINDING && s->cb.on_down)
		s->cb.on_down(s->arg);
	if (prev == SESS_UNBINDING && next == SESS_CLOSED && s->cb.on_down)
		s->cb.on_down(s->arg);
}

/* --- TLS -------------------------------------------------------------------- */

static SSL_CTX *tls_ctx_new(struct smpp_session *s)
{
	char err[200];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* SMPP frames itself: a TCP close without close_notify is an ordinary close */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (s->cfg.tls_verify) {
		int ok = s->tls_ca_file[0] ? SSL_CTX_load_verify_file(ctx, s->tls_ca_file)
					   : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1)
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
fail:
	log_error("smpp", "bind=%s ev=tls_config_error ca_file=\"%s\" err=\"%s\"", s->name,
		  s->tls_ca_file[0] ? s->tls_ca_file : "(system)", netio_tls_errstr(err, sizeof(err)));
	SSL_CTX_free(ctx);
	return NULL;
}

/* Logs why TLS failed on this connection (reason: netio_tls_reason's); the caller closes it. */
static void tls_log_failure(struct smpp_session *s, const char *during, const char *reason)
{
	long vr = SSL_get_verify_result(s->ssl);
	s->tls.failed = 1;
	log_warn("smpp", "bind=%s ev=tls_error during=%s verify=\"%s\" err=\"%s\"", s->name, during,
		 vr == X509_V_OK ? "ok" : X509_verify_cert_error_string(vr), reason);
}

/* Frees the connection's TLS state; close_notify first when the link was healthy. */
static void tls_drop(struct smpp_session *s)
{
	if (!s->ssl)
		return;
	if (s->tls_up && !s->tls.failed) {
		ERR_clear_error();
		SSL_shutdown(s->ssl);   /* one nonblocking attempt; the peer's reply is not awaited */
	}
	ERR_clear_error();
	SSL_free(s->ssl);
	s->ssl = NULL;
	s->tls_up = 0;
	memset(&s->tls, 0, sizeof(s->tls));
}

/* --- output ------------------------------------------------------------------ */

/* The write watcher runs while there is output TLS can take, or a read waits on it. */
static void sess_want_write(struct smpp_session *s)
{
	if (s->tls.read_wants_write || (s->out_len > 0 && !s->tls.write_wants_read))
		ev_io_start(s->loop, &s->wio);
	else
		ev_io_stop(s->loop, &s->wio);
}

/* Writes from buf: bytes written, 0 when it would block, -1 when the connection was closed. */
static ssize_t sess_send(struct smpp_session *s, const uint8_t *buf, size_t len)
{
	/* a retry after WANT_* passes the same bytes, maybe more: partial + moving buffer modes */
	char err[200];
	ssize_t n = netio_send(s->fd, s->ssl, &s->tls, buf, len > OUT_MAX ? OUT_MAX : len, 0, err, sizeof(err));
	if (n >= 0)
		return n;
	if (errno == EAGAIN)
		return 0;   /* a write that waits on a read: the read watcher (always on) resumes it */
	if (s->tls.failed) {
		tls_log_failure(s, "write", err);
		sess_close(s, "tls write failed");
	} else {
		sess_close(s, strerror(errno));
	}
	return -1;
}

static void sess_flush(struct smpp_session *s)
{
	if (s->fd < 0 || (s->ssl && !s->tls_up))
		return;   /* nothing leaves before the handshake is done */
	while (s->out_len > 0) {
		ssize_t n = sess_send(s, s->out, s->out_len);
		if (n < 0)
			return;
		if (n == 0)
			break;
		memmove(s->out, s->out + n, s->out_len - (size_t)n);
		s->out_len -= (size_t)n;
	}
	sess_want_write(s);
}

static int sess_write_pdu(struct smpp_session *s, const struct smpp_pdu *pdu)
{
	if (s->fd < 0)
		return -1;
	size_t need = s->out_len + SMPP_MAX_PDU_LEN;
	if (need > s->out_cap) {
		if (need > OUT_MAX) {
			log_warn("smpp", "bind=%s ev=output_full bytes=%zu", s->name, s->out_len);
			return -1;
		}
		size_t cap = s->out_cap * 2;
		while (cap < need)
			cap *= 2;
		uint8_t *o = realloc(s->out, cap);
		if (!o)
			return -1;
		s->out = o;
		s->out_cap = cap;
	}
	long n = smpp_encode(pdu, s->out + s->out_len, s->out_cap - s->out_len);
	if (n < 0) {
		log_warn("smpp", "bind=%s ev=encode_failed cmd=%s", s->name, smpp_command_name(pdu->hdr.command_id));
		return -1;
	}
	s->out_len += (size_t)n;
	if (!ev_is_active(&s->wio))
		ev_prepare_start(s->loop, &s->flush_prep);   /* one send / TLS record for the batch */
	return 0;
}

static void flush_prep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	ev_prepare_stop(loop, w);
	sess_flush(w->data);
}

/* --- window ---------------------------------------------------------------------- */

static struct slot *slot_of(struct smpp_session *s, uint32_t seq)
{
	return &s->slots[seq & (s->cap - 1)];
}

static uint32_t next_seq(struct smpp_session *s)
{
	s->next_seq++;
	if (s->next_seq == 0 || s->next_seq > 0x7FFFFFFFu)
		s->next_seq = 1;
	return s->next_seq;
}

/* Hands every outstanding request back to the owner with `status`. */
static void window_fail_all(struct smpp_session *s, uint32_t status)
{
	for (unsigned i = 0; i < s->cap && s->used > 0; i++) {
		struct slot *sl = &s->slots[i];
		if (!sl->used)
			continue;
		sl->used = 0;
		s->used--;
		/* the session's own requests stay here; every other one (submit_sm is 0x04,
		 * between the bind ids: no range test) goes back to its owner */
		int internal = sl->command_id == SMPP_ENQUIRE_LINK || sl->command_id == SMPP_UNBIND ||
			       sl->command_id == SMPP_BIND_RECEIVER || sl->command_id == SMPP_BIND_TRANSMITTER ||
			       sl->command_id == SMPP_BIND_TRANSCEIVER;
		if (!internal && s->cb.on_resp)
			s->cb.on_resp(s->arg, sl->tag, status, NULL);
	}
	s->used = 0;
}

static int send_internal(struct smpp_session *s, uint32_t command_id, struct smpp_pdu *pdu)
{
	uint32_t seq = next_seq(s);
	struct slot *sl = slot_of(s, seq);
	if (sl->used)
		return -1;
	pdu->hdr.command_id = command_id;
	pdu->hdr.sequence_number = seq;
	if (sess_write_pdu(s, pdu) < 0)
		return -1;
	*sl = (struct slot){ seq, 1, 0, command_id, ev_now(s->loop) + s->cfg.response_timeout };
	s->used++;
	assert(s->used <= s->cap);
	if (command_id == SMPP_ENQUIRE_LINK)
		s->enquire_seq = seq;
	return 0;
}

/* --- connection ---------------------------------------------------------------- */

static void schedule_reconnect(struct smpp_session *s)
{
	if (s->stopping || s->server)
		return;
	double jitter = s->backoff * 0.2 * util_random_unit();   /* seeded per process: nodes don't reconnect in step */
	ev_timer_stop(s->loop, &s->reconnect);
	ev_timer_set(&s->reconnect, s->backoff + jitter, 0.);
	ev_timer_start(s->loop, &s->reconnect);
	log_info("smpp", "bind=%s ev=reconnect_scheduled in=%.2f", s->name, s->backoff + jitter);
	s->backoff *= 2;
	if (s->backoff > s->cfg.reconnect_max)
		s->backoff = s->cfg.reconnect_max;
}

static void sess_close(struct smpp_session *s, const char *why)
{
	if (s->fd >= 0) {
		log_info("smpp", "bind=%s ev=close why=\"%s\" in_flight=%u", s->name, why, s->used);
		ev_io_stop(s->loop, &s->rio);
		ev_io_stop(s->loop, &s->wio);
		tls_drop(s);
		close(s->fd);
		s->fd = -1;
	}
	ev_prepare_stop(s->loop, &s->flush_prep);
	s->in_len = s->out_len = 0;
	s->enquire_seq = 0;
	window_fail_all(s, SMPP_STATUS_LINK_LOST);
	sess_enter(s, SESS_CLOSED);
	schedule_reconnect(s);
}

static void send_bind(struct smpp_session *s)
{
	struct smpp_pdu pdu;
	smpp_pdu_init(&pdu, s->cfg.bind_command, 0);
	util_strlcpy(pdu.system_id, s->system_id, sizeof(pdu.system_id));
	util_strlcpy(pdu.password, s->password, sizeof(pdu.password));
	util_strlcpy(pdu.system_type, s->system_type, sizeof(pdu.system_type));
	pdu.interface_version = 0x34;
	if (send_internal(s, s->cfg.bind_command, &pdu) < 0) {
		sess_close(s, "cannot send bind");
		return;
	}
	sess_enter(s, SESS_BINDING);
}

/* Drives the handshake; on success the bind goes out. */
static void tls_handshake(struct smpp_session *s)
{
	ERR_clear_error();
	int r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->tls_up = 1;
		ev_io_stop(s->loop, &s->wio);
		long vr = SSL_get_verify_result(s->ssl);
		log_info("smpp", "bind=%s ev=tls_established version=%s cipher=%s verified=%s", s->name,
			 SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl),
			 !s->cfg.tls_verify ? "no" : vr == X509_V_OK ? "yes" : "failed");
		if (s->server)
			sess_enter(s, SESS_OPEN);
		else
			send_bind(s);
		return;
	}
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		ev_io_stop(s->loop, &s->wio);   /* the read watcher is on */
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		ev_io_start(s->loop, &s->wio);
		return;
	}
	char err[200];
	netio_tls_reason(e, errno, err, sizeof(err));
	tls_log_failure(s, "handshake", err);
	sess_close(s, "tls handshake failed");
}

static int is_ip_literal(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static void tls_start(struct smpp_session *s)
{
	char err[200];
	if (!s->tls_ctx && !(s->tls_ctx = tls_ctx_new(s))) {
		sess_close(s, "tls not configured");
		return;
	}
	const char *name = s->tls_server_name[0] ? s->tls_server_name : s->host;
	ERR_clear_error();
	s->ssl = SSL_new(s->tls_ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 ||
	    (!is_ip_literal(name) && SSL_set_tlsext_host_name(s->ssl, name) != 1) ||
	    (s->cfg.tls_verify && SSL_set1_host(s->ssl, name) != 1)) {
		log_error("smpp", "bind=%s ev=tls_setup_failed name=%s err=\"%s\"", s->name, name,
			  netio_tls_errstr(err, sizeof(err)));
		sess_close(s, "tls setup failed");
		return;
	}
	SSL_set_connect_state(s->ssl);
	sess_enter(s, SESS_TLS_HANDSHAKE);
	tls_handshake(s);
}

static void on_connected(struct smpp_session *s)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		sess_close(s, strerror(err ? err : errno));
		return;
	}
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->last_rx = ev_now(s->loop);
	ev_io_start(s->loop, &s->rio);
	if (s->cfg.tls)
		tls_start(s);
	else
		send_bind(s);
}

static void sess_connect(struct smpp_session *s)
{
	char addr[160];
	struct sockaddr_storage ss;
	socklen_t sl;
	snprintf(addr, sizeof(addr), strchr(s->host, ':') ? "[%s]:%d" : "%s:%d", s->host, s->cfg.port);
	if (util_parse_addr(addr, &ss, &sl) < 0) {
		log_error("smpp", "bind=%s ev=bad_address addr=%s", s->name, addr);
		schedule_reconnect(s);
		return;
	}
	s->fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (s->fd < 0 || util_set_nonblock(s->fd) < 0) {
		sess_close(s, strerror(errno));
		return;
	}
	ev_io_set(&s->rio, s->fd, EV_READ);
	ev_io_set(&s->wio, s->fd, EV_WRITE);
	sess_enter(s, SESS_CONNECTING);
	if (connect(s->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		sess_close(s, strerror(errno));
		return;
	}
	ev_io_start(s->loop, &s->wio);   /* writable = connected (or failed) */
}

/* --- input ------------------------------------------------------------------- */

static void answer(struct smpp_session *s, const struct smpp_pdu *req, uint32_t status)
{
	struct smpp_pdu resp;
	smpp_pdu_resp(&resp, req, status);
	sess_write_pdu(s, &resp);
}

static void handle_resp(struct smpp_session *s, const struct smpp_pdu *pdu)
{
	uint32_t seq = pdu->hdr.sequence_number;
	struct slot *sl = slot_of(s, seq);
	if (!sl->used || sl->seq != seq) {
		log_warn("smpp", "bind=%s ev=unexpected_resp cmd=%s seq=%u", s->name,
			 smpp_command_name(pdu->hdr.command_id), seq);
		return;
	}
	uint32_t req_id = sl->command_id;
	uint64_t tag = sl->tag;
	sl->used = 0;
	s->used--;
	s->stats.responses++;
	if (pdu->hdr.command_id != SMPP_GENERIC_NACK && pdu->hdr.command_id != (req_id | 0x80000000u))
		log_warn("smpp", "bind=%s ev=resp_mismatch seq=%u got=%s", s->name, seq,
			 smpp_command_name(pdu->hdr.command_id));

	if (req_id == SMPP_ENQUIRE_LINK) {
		s->enquire_seq = 0;
		return;
	}
	if (req_id == s->cfg.bind_command) {
		if (pdu->hdr.command_status != 0) {
			log_warn("smpp", "bind=%s ev=bind_refused status=0x%08x", s->name, pdu->hdr.command_status);
			sess_close(s, "bind refused");
			return;
		}
		s->backoff = s->cfg.reconnect_min;
		log_info("smpp", "bind=%s ev=bound peer=%s", s->name, pdu->system_id);
		sess_enter(s, SESS_BOUND);
		return;
	}
	if (req_id == SMPP_UNBIND) {
		sess_close(s, "unbound");
		return;
	}
	if (s->cb.on_resp)
		s->cb.on_resp(s->arg, tag, pdu->hdr.command_status, pdu);
}

static void handle_pdu(struct smpp_session *s, const uint8_t *buf, size_t len)
{
	struct smpp_pdu pdu;
	uint32_t status = smpp_decode(buf, len, &pdu);
	s->stats.received++;
	if (status != 0) {
		log_warn("smpp", "bind=%s ev=bad_pdu cmd=0x%08x seq=%u status=0x%02x", s->name,
			 pdu.hdr.command_id, pdu.hdr.sequence_number, status);
		if (!smpp_is_resp(pdu.hdr.command_id)) {
			struct smpp_pdu nack;
			smpp_pdu_init(&nack, SMPP_GENERIC_NACK, pdu.hdr.sequence_number);
			nack.hdr.command_status = status;
			sess_write_pdu(s, &nack);
		}
		return;
	}
	if (smpp_is_resp(pdu.hdr.command_id)) {
		handle_resp(s, &pdu);
		return;
	}
	switch (pdu.hdr.command_id) {
	case SMPP_ENQUIRE_LINK:
		answer(s, &pdu, 0);
		return;
	case SMPP_UNBIND:
		answer(s, &pdu, 0);
		sess_flush(s);
		sess_close(s, "peer unbound");
		return;
	case SMPP_BIND_RECEIVER:
	case SMPP_BIND_TRANSMITTER:
	case SMPP_BIND_TRANSCEIVER:
		if (!s->server) {
			answer(s, &pdu, SMPP_ESME_RINVCMDID);
			return;
		}
		if (s->state != SESS_OPEN) {
			log_warn("smpp", "bind=%s ev=unexpected_bind state=%s", s->name, state_names[s->state]);
			answer(s, &pdu, SMPP_ESME_RALYBND);
			return;
		}
		s->bind_cmd = pdu.hdr.command_id;
		s->bind_seq = pdu.hdr.sequence_number;
		s->bind_pending = 1;
		sess_enter(s, SESS_BINDING);
		if (s->cb.on_bind)
			s->cb.on_bind(s->arg, &pdu);
		else
			smpp_session_answer_bind(s, SMPP_ESME_RBINDFAIL, "");
		return;
	default:
		if (s->state != SESS_BOUND && s->state != SESS_UNBINDING) {
			answer(s, &pdu, SMPP_ESME_RINVBNDSTS);
			return;
		}
		if (s->cb.on_request)
			s->cb.on_request(s->arg, &pdu);
		else
			answer(s, &pdu, SMPP_ESME_RINVCMDID);
	}
}

/* Reads into buf: bytes read, 0 when nothing more for now, -1 when the connection was closed. */
static ssize_t sess_recv(struct smpp_session *s, uint8_t *buf, size_t len)
{
	char err[200];
	ssize_t n = netio_recv(s->fd, s->ssl, &s->tls, buf, len, err, sizeof(err));   /* len <= IN_CAP */
	if (n > 0)
		return n;
	if (n == 0) {   /* the peer's end (a TCP close, close_notify, or EOF without it) */
		sess_close(s, "peer closed");
		return -1;
	}
	if (errno == EAGAIN) {
		if (s->tls.read_wants_write)
			sess_want_write(s);   /* the write watcher resumes the read */
		return 0;
	}
	if (s->tls.failed) {
		tls_log_failure(s, "read", err);
		sess_close(s, "tls read failed");
	} else {
		sess_close(s, strerror(errno));
	}
	return -1;
}

static void sess_read(struct smpp_session *s)
{
	for (int rounds = 0; rounds < 16 && s->fd >= 0; rounds++) {
		ssize_t n = sess_recv(s, s->in + s->in_len, IN_CAP - s->in_len);
		if (n <= 0)
			return;
		s->in_len += (size_t)n;
		s->last_rx = ev_now(s->loop);
		size_t off = 0;
		while (s->fd >= 0) {
			long len = smpp_frame(s->in + off, s->in_len - off);
			if (len < 0) {
				struct smpp_pdu nack;
				smpp_pdu_init(&nack, SMPP_GENERIC_NACK, 0);
				nack.hdr.command_status = SMPP_ESME_RINVCMDLEN;
				sess_write_pdu(s, &nack);
				sess_flush(s);
				sess_close(s, "invalid command_length");
				return;
			}
			if (len == 0)
				break;
			handle_pdu(s, s->in + off, (size_t)len);
			off += (size_t)len;
		}
		if (s->fd < 0)
			return;
		memmove(s->in, s->in + off, s->in_len - off);
		s->in_len -= off;
	}
	/* out of rounds: what TLS already decrypted would not wake the socket watcher */
	if (s->fd >= 0 && s->ssl && SSL_has_pending(s->ssl))
		ev_feed_event(s->loop, &s->rio, EV_READ);
}

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_session *s = w->data;
	if (s->state == SESS_TLS_HANDSHAKE) {
		tls_handshake(s);
		return;
	}
	sess_read(s);
	if (s->fd >= 0 && s->tls.write_wants_read) {
		s->tls.write_wants_read = 0;
		sess_flush(s);
	}
}

static void wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_session *s = w->data;
	if (s->state == SESS_CONNECTING) {
		ev_io_stop(s->loop, &s->wio);
		on_connected(s);
		return;
	}
	if (s->state == SESS_TLS_HANDSHAKE) {
		tls_handshake(s);
		return;
	}
	if (s->tls.read_wants_write) {
		s->tls.read_wants_write = 0;
		sess_read(s);
		if (s->fd < 0)
			return;
	}
	sess_flush(s);
}

/* --- timers ---------------------------------------------------------------------- */

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct smpp_session *s = w->data;
	double now = ev_now(loop);
	if (s->fd < 0)
		return;
	if ((s->state == SESS_CONNECTING || s->state == SESS_TLS_HANDSHAKE || s->state == SESS_BINDING ||
	     s->state == SESS_OPEN) &&
	    now - s->state_since > s->cfg.response_timeout * (s->state == SESS_BINDING && s->server ? 3 : 1)) {
		char why[48];
		snprintf(why, sizeof(why), "%s timed out", state_names[s->state]);
		sess_close(s, why);
		return;
	}
	for (unsigned i = 0; i < s->cap && s->used > 0; i++) {
		struct slot *sl = &s->slots[i];
		if (!sl->used || sl->deadline > now)
			continue;
		if (sl->command_id == SMPP_ENQUIRE_LINK) {
			sess_close(s, "enquire_link not answered");
			return;
		}
		if (sl->command_id == SMPP_UNBIND) {
			sess_close(s, "unbind not answered");
			return;
		}
		sl->used = 0;
		s->used--;
		s->stats.timeouts++;
		log_warn("smpp", "bind=%s ev=response_timeout cmd=%s seq=%u", s->name,
			 smpp_command_name(sl->command_id), sl->seq);
		if (s->cb.on_resp)
			s->cb.on_resp(s->arg, sl->tag, SMPP_STATUS_TIMEOUT, NULL);
		if (s->fd < 0)
			return;
	}
	if (s->state == SESS_BOUND && !s->enquire_seq && now - s->last_rx >= s->cfg.enquire_link) {
		struct smpp_pdu pdu;
		smpp_pdu_init(&pdu, SMPP_ENQUIRE_LINK, 0);
		if (send_internal(s, SMPP_ENQUIRE_LINK, &pdu) < 0)
			sess_close(s, "cannot send enquire_link");
		return;
	}
	if (s->stopping && s->state == SESS_BOUND && (s->used == 0 || now >= s->stop_deadline)) {
		struct smpp_pdu pdu;
		smpp_pdu_init(&pdu, SMPP_UNBIND, 0);
		if (send_internal(s, SMPP_UNBIND, &pdu) < 0)
			sess_close(s, "cannot send unbind");
		else
			sess_enter(s, SESS_UNBINDING);
	}
}

static void reconnect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct smpp_session *s = w->data;
	if (s->state == SESS_CLOSED && !s->stopping)
		sess_connect(s);
}

/* --- public ---------------------------------------------------------------------- */

struct smpp_session *smpp_session_new(struct ev_loop *loop, const struct smpp_session_config *cfg,
				      const struct smpp_session_cb *cb, void *arg)
{
	struct smpp_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->cfg = *cfg;
	util_strlcpy(s->name, cfg->name ? cfg->name : "smsc", sizeof(s->name));
	util_strlcpy(s->host, cfg->host, sizeof(s->host));
	util_strlcpy(s->system_id, cfg->system_id, sizeof(s->system_id));
	util_strlcpy(s->password, cfg->password, sizeof(s->password));
	util_strlcpy(s->system_type, cfg->system_type ? cfg->system_type : "", sizeof(s->system_type));
	util_strlcpy(s->tls_ca_file, cfg->tls_ca_file ? cfg->tls_ca_file : "", sizeof(s->tls_ca_file));
	util_strlcpy(s->tls_server_name, cfg->tls_server_name ? cfg->tls_server_name : "",
		     sizeof(s->tls_server_name));
	s->cfg.name = s->name;
	s->cfg.host = s->host;
	s->cfg.tls_ca_file = s->tls_ca_file;
	s->cfg.tls_server_name = s->tls_server_name;
	if (!s->cfg.bind_command)
		s->cfg.bind_command = SMPP_BIND_TRANSCEIVER;
	if (!s->cfg.window)
		s->cfg.window = 10;
	s->cap = 16;
	while (s->cap < 2 * s->cfg.window)
		s->cap *= 2;
	assert((s->cap & (s->cap - 1)) == 0);   /* slot_of() masks the sequence number */
	s->slots = calloc(s->cap, sizeof(*s->slots));
	s->in = malloc(IN_CAP);
	s->out_cap = 2 * SMPP_MAX_PDU_LEN;
	s->out = malloc(s->out_cap);
	if (!s->slots || !s->in || !s->out) {
		smpp_session_free(s);
		return NULL;
	}
	s->cb = *cb;
	s->arg = arg;
	s->fd = -1;
	s->state = SESS_CLOSED;
	s->backoff = cfg->reconnect_min > 0 ? cfg->reconnect_min : 1;
	ev_init(&s->rio, rio_cb);
	s->rio.data = s;
	ev_init(&s->wio, wio_cb);
	s->wio.data = s;
	ev_prepare_init(&s->flush_prep, flush_prep_cb);
	s->flush_prep.data = s;
	ev_timer_init(&s->tick, tick_cb, 0.25, 0.25);
	s->tick.data = s;
	ev_init(&s->reconnect, reconnect_cb);
	s->reconnect.data = s;
	if (s->cfg.tls)
		s->tls_ctx = tls_ctx_new(s);   /* NULL: logged, built again at each connect */
	return s;
}

struct smpp_session *smpp_session_accept(struct ev_loop *loop, int fd, struct ssl_ctx_st *tls,
					 const struct smpp_session_config *cfg,
					 const struct smpp_session_cb *cb, void *arg)
{
	struct smpp_session_config c = *cfg;
	char err[200];
	c.host = c.host ? c.host : "";
	c.system_id = c.system_id ? c.system_id : "";
	c.password = c.password ? c.password : "";
	c.tls = 0;   /* no client context */
	struct smpp_session *s = smpp_session_new(loop, &c, cb, arg);
	if (!s || util_set_nonblock(fd) < 0) {
		smpp_session_free(s);
		close(fd);
		return NULL;
	}
	s->server = 1;
	s->stopping = 0;
	s->fd = fd;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev_io_set(&s->rio, fd, EV_READ);
	ev_io_set(&s->wio, fd, EV_WRITE);
	s->last_rx = ev_now(loop);
	ev_io_start(loop, &s->rio);
	ev_timer_start(loop, &s->tick);
	if (!tls) {
		sess_enter(s, SESS_OPEN);
		return s;
	}
	s->tls_ctx = (SSL_CTX *)tls;
	s->tls_ctx_borrowed = 1;
	ERR_clear_error();
	s->ssl = SSL_new(s->tls_ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1) {
		log_error("smpp", "bind=%s ev=tls_setup_failed err=\"%s\"", s->name, netio_tls_errstr(err, sizeof(err)));
		sess_close(s, "tls setup failed");
		return s;   /* closed: the owner sees on_down at once... */
	}
	SSL_set_accept_state(s->ssl);
	sess_enter(s, SESS_TLS_HANDSHAKE);
	tls_handshake(s);
	return s;
}

int smpp_session_answer_bind(struct smpp_session *s, uint32_t status, const char *system_id)
{
	if (!s->server || !s->bind_pending || s->state != SESS_BINDING || s->fd < 0)
		return -1;
	struct smpp_pdu resp;
	smpp_pdu_init(&resp, s->bind_cmd | 0x80000000u, s->bind_seq);
	resp.hdr.command_status = status;
	util_strlcpy(resp.system_id, system_id ? system_id : "", sizeof(resp.system_id));
	s->bind_pending = 0;
	sess_write_pdu(s, &resp);
	if (status != 0) {
		sess_flush(s);
		sess_close(s, "bind refused");
		return 0;
	}
	sess_enter(s, SESS_BOUND);
	return 0;
}

uint32_t smpp_session_bind_command(const struct smpp_session *s) { return s->bind_cmd; }

void smpp_session_start(struct smpp_session *s)
{
	s->stopping = 0;
	if (s->cfg.tls && !s->cfg.tls_verify)
		log_warn("smpp", "bind=%s ev=tls_unverified host=%s why=\"tls_verify = no: any certificate is accepted\"",
			 s->name, s->host);
	ev_timer_start(s->loop, &s->tick);
	if (s->state == SESS_CLOSED && s->fd < 0)
		sess_connect(s);
}

void smpp_session_stop(struct smpp_session *s, double grace)
{
	s->stopping = 1;
	s->stop_deadline = ev_now(s->loop) + grace;
	ev_timer_stop(s->loop, &s->reconnect);
	if (s->state != SESS_BOUND && s->state != SESS_UNBINDING && s->fd >= 0)
		sess_close(s, "stopping");
}

enum sess_state smpp_session_state(const struct smpp_session *s) { return s->state; }

unsigned smpp_session_window_free(const struct smpp_session *s)
{
	if (s->state != SESS_BOUND || s->stopping)
		return 0;
	return s->used >= s->cfg.window ? 0 : s->cfg.window - s->used;
}

int smpp_session_request(struct smpp_session *s, struct smpp_pdu *pdu, uint64_t tag)
{
	if (smpp_session_window_free(s) == 0)
		return -1;
	uint32_t seq = next_seq(s);
	struct slot *sl = slot_of(s, seq);
	if (sl->used)
		return -1;
	pdu->hdr.sequence_number = seq;
	if (sess_write_pdu(s, pdu) < 0)
		return -1;
	*sl = (struct slot){ seq, 1, tag, pdu->hdr.command_id, ev_now(s->loop) + s->cfg.response_timeout };
	s->used++;
	assert(s->used <= s->cfg.window);   /* smpp_session_window_free() said there was room */
	s->stats.requests++;
	return 0;
}

int smpp_session_send(struct smpp_session *s, const struct smpp_pdu *pdu)
{
	return sess_write_pdu(s, pdu);
}

const struct smpp_session_stats *smpp_session_stats(const struct smpp_session *s) { return &s->stats; }

void smpp_session_free(struct smpp_session *s)
{
	if (!s)
		return;
	s->stopping = 1;
	window_fail_all(s, SMPP_STATUS_LINK_LOST);   /* the owner frees what the window still holds */
	if (s->fd >= 0) {
		ev_io_stop(s->loop, &s->rio);
		ev_io_stop(s->loop, &s->wio);
		tls_drop(s);
		close(s->fd);
		s->fd = -1;
	}
	if (!s->tls_ctx_borrowed)
		SSL_CTX_free(s->tls_ctx);
	ev_prepare_stop(s->loop, &s->flush_prep);
	ev_timer_stop(s->loop, &s->tick);
	ev_timer_stop(s->loop, &s->reconnect);
	free(s->slots);
	free(s->in);
	free(s->out);
	free(s);
}
