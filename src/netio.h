/*
 * netio.h: nonblocking reads and writes on a socket, or through TLS on it
 * (OpenSSL), with one contract for both, shared by http.c and ws.c; and the
 * listening sockets and TLS server contexts of every listener (netio.c).
 */
#ifndef PUSHGATE_NETIO_H
#define PUSHGATE_NETIO_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/ssl.h>

/* What a TLS connection is waiting for; zeroed with its owner. */
struct netio_tls {
	int failed;            /* fatal TLS error: no close_notify after it */
	int read_wants_write;  /* the last SSL_read needs the socket writable */
	int write_wants_read;  /* the last SSL_write needs the socket readable */
};

/*
 * Reads into buf from fd, or from ssl when not NULL: bytes (> 0), 0 at the
 * peer's end, -1 with errno EAGAIN (would block) or another errno; a TLS
 * failure sets t->failed, errno EPROTO, and its reason in err (errlen bytes).
 */
ssize_t netio_recv(int fd, SSL *ssl, struct netio_tls *t, void *buf, size_t len, char *err, size_t errlen);

/* Writes like netio_recv reads (more: MSG_MORE on a plain socket).  Never returns 0 for len > 0. */
ssize_t netio_send(int fd, SSL *ssl, struct netio_tls *t, const void *buf, size_t len, int more,
		   char *err, size_t errlen);

/* OpenSSL's queued reason (or strerror of errno after SSL_ERROR_SYSCALL), quotes made safe for logs. */
void netio_tls_reason(int ssl_error, int saved_errno, char *out, size_t outlen);

/*
 * A listener's socket for "host:port" ("[v6]:port", "*:port" or ":port" for
 * any address; port 0: any free port): bound, nonblocking, close-on-exec,
 * SO_REUSEADDR.  listen() is the caller's (a daemon binds at start and
 * listens at its gate).  The fd and *port_out (the bound port), or -1 with err.
 */
int netio_bind(const char *addr, int *port_out, char *err, size_t errlen);

/*
 * A TLS server context: the PEM certificate chain and its key (checked
 * against each other), TLS min_version ("1.2", "1.3"; empty: 1.2) and up, no
 * renegotiation or compression, partial and moving writes, buffers released
 * by idle connections, no server-side session cache (one ticket).  NULL with
 * err naming the file at fault.
 */
SSL_CTX *netio_tls_server_ctx(const char *cert, const char *key, const char *min_version, char *err, size_t errlen);

/* OpenSSL's first queued error into buf, quotes made single (for key="value" logs); the queue is cleared. */
const char *netio_tls_errstr(char *buf, size_t cap);

#endif
