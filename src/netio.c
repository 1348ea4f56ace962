/*
 * netio.c: the I/O twins of the HTTP server and the WebSocket layer in one
 * place.  A plain socket is read with recv/send (EINTR retried, EWOULDBLOCK
 * reported as EAGAIN); a TLS one with SSL_read/SSL_write, where "would
 * block" may need the other direction (recorded in struct netio_tls for the
 * caller's watchers).  Owns nothing; never blocks; never logs (the caller
 * knows the connection).
 */
#include "netio.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
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
