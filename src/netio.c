/*
 * netio.c: the network twins of the HTTP server, the WebSocket layer, the
 * SMPP server and the simulators in one place (after Redis's anet).  A plain
 * socket is read with recv/send (EINTR retried, EWOULDBLOCK reported as
 * EAGAIN); a TLS one with SSL_read/SSL_write, where "would block" may need
 * the other direction (recorded in struct netio_tls for the caller's
 * watchers).  Listening sockets are bound here (netio_bind) and TLS server
 * contexts built here (netio_tls_server_ctx), with one set of options.
 * Owns nothing; never blocks; never logs (the caller knows the connection).
 */
#include "netio.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>

void netio_tls_reason(int ssl_error, int saved_errno, char *out, size_t outlen)
{
	unsigned long e = ERR_peek_error();
	snprintf(out, outlen, "-");
	if (e)
		ERR_error_string_n(e, out, outlen);
	else if (ssl_error == SSL_ERROR_SYSCALL && saved_errno)
		snprintf(out, outlen, "%s", strerror(saved_errno));
	ERR_clear_error();
	for (char *p = out; *p; p++)
		if (*p == '"')
			*p = '\'';
}

static ssize_t tls_failed(struct netio_tls *t, int ssl_error, char *err, size_t errlen)
{
	int saved = errno;
	t->failed = 1;
	if (err && errlen)
		netio_tls_reason(ssl_error, saved, err, errlen);
	else
		ERR_clear_error();
	errno = EPROTO;
	return -1;
}

ssize_t netio_recv(int fd, SSL *ssl, struct netio_tls *t, void *buf, size_t len, char *err, size_t errlen)
{
	if (!ssl) {
		for (;;) {
			ssize_t n = recv(fd, buf, len, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EWOULDBLOCK)
				errno = EAGAIN;
			return n;
		}
	}
	ERR_clear_error();
	int n = SSL_read(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0) {
		t->read_wants_write = 0;
		return n;
	}
	int e = SSL_get_error(ssl, n);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->read_wants_write = 1;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:   /* close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
		return 0;
	default:
		return tls_failed(t, e, err, errlen);
	}
}

ssize_t netio_send(int fd, SSL *ssl, struct netio_tls *t, const void *buf, size_t len, int more,
		   char *err, size_t errlen)
{
	if (!ssl) {
		for (;;) {
			ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EWOULDBLOCK)
				errno = EAGAIN;
			if (n == 0 && len > 0) {
				errno = EAGAIN;
				return -1;
			}
			return n;
		}
	}
	if (len == 0)
		return 0;
	ERR_clear_error();
	int n = SSL_write(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0) {
		t->write_wants_read = 0;
		return n;
	}
	int e = SSL_get_error(ssl, n);
	if (e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_WANT_READ) {   /* the read watcher resumes us */
		t->write_wants_read = 1;
		errno = EAGAIN;
		return -1;
	}
	return tls_failed(t, e, err, errlen);
}

/* --- listeners and TLS server contexts ------------------------------------ */

/* "host:port", "[v6]:port", ":port" -> host (NULL = any) and port. */
static int split_listen(const char *listen, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	const char *h = listen;
	size_t hl;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (!end || end[1] != ':')
			return -1;
		h = listen + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - listen);
	}
	if (hl >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0')
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	return 0;
}

int netio_bind(const char *addr, int *port_out, char *err, size_t errlen)
{
	char host[128], port[16];
	if (split_listen(addr, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errlen, "bad listen address \"%s\" (want host:port or [v6]:port)", addr);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s", addr, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	int saved = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;   /* listen() is the caller's: at its gate */
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot bind %s: %s", addr, strerror(saved));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	*port_out = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			*port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			*port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
}

const char *netio_tls_errstr(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_error();
	if (e)
		ERR_error_string_n(e, buf, cap);
	else
		snprintf(buf, cap, "-");
	ERR_clear_error();
	for (char *p = buf; *p; p++)
		if (*p == '"')
			*p = '\'';
	return buf;
}

/* "1.2" / "1.3" -> TLS1_2_VERSION / TLS1_3_VERSION, 0 otherwise. */
static int tls_version_parse(const char *v)
{
	if (!v || !*v || !strcmp(v, "1.2"))
		return TLS1_2_VERSION;
	if (!strcmp(v, "1.3"))
		return TLS1_3_VERSION;
	return 0;
}

SSL_CTX *netio_tls_server_ctx(const char *cert, const char *key, const char *min_version, char *err, size_t errlen)
{
	char detail[200];
	int minv = tls_version_parse(min_version);
	if (!minv) {
		snprintf(err, errlen, "tls_min_version: '%s' is not 1.2 or 1.3", min_version);
		return NULL;
	}
	if (!cert || !*cert || !key || !*key) {
		snprintf(err, errlen, "TLS needs both tls_cert and tls_key");
		return NULL;
	}
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "SSL_CTX_new: %s", netio_tls_errstr(detail, sizeof(detail)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, minv);
	/* HTTP, WebSocket and SMPP frame themselves: a TCP close without close_notify is an ordinary close */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
			    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* partial + moving: a retried write may pass the same bytes from another address;
	 * release: an idle connection gives its record buffers back */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_RELEASE_BUFFERS);
	/* no server-side session cache (memory per device); TLS 1.3 tickets still resume */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "tls_cert %s: %s", cert, netio_tls_errstr(detail, sizeof(detail)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "tls_key %s: %s", key, netio_tls_errstr(detail, sizeof(detail)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "tls_key %s does not match tls_cert %s", key, cert);
		goto fail;
	}
	ERR_clear_error();
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}
