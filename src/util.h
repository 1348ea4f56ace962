/*
 * util.h: small helpers shared by every module: bounded string copies,
 * address parsing, big-endian wire integers, number parsing.
 */
#ifndef PUSHGATE_UTIL_H
#define PUSHGATE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Copies at most size-1 bytes and NUL-terminates; returns strlen(src). */
size_t util_strlcpy(char *dst, const char *src, size_t size);

/*
 * "127.0.0.1:8080", "[::1]:8080", "localhost:25" -> sockaddr.  Returns 0, or
 * -1 when the form or port is invalid (numeric hosts and "localhost" only:
 * no DNS on the event loop).
 */
int util_parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len);

/* "a.b.c.d:port" / "[v6]:port" of a socket address into out. */
void util_format_addr(const struct sockaddr *sa, char *out, size_t outlen);

/* Strict decimal parsing: whole string, range-checked.  0 / -1. */
int util_parse_long(const char *s, long min, long max, long *out);
int util_parse_double(const char *s, double min, double max, double *out);

/*
 * A phone number as pushgate stores it: 3 to 20 digits, an optional
 * leading '+' dropped.  0 with the digits in out, or -1 (also for NULL).
 * util_msisdn_n reads len bytes (a NUL among them is not a digit).
 */
int util_msisdn(const char *s, char out[21]);
int util_msisdn_n(const char *s, size_t len, char out[21]);

/*
 * 1 when s[0..len) is UTF-8 as PostgreSQL takes it: no overlong form, no
 * surrogate, nothing above U+10FFFF (glibc's iconv lets more through).
 * util_utf8_text: the same for a message's text, which also holds no C0
 * control but tab, CR and LF, nor DEL when del_too.
 */
int util_utf8_valid(const char *s, size_t len);
int util_utf8_text(const char *s, size_t len, int del_too);

/* A sender (SMPP source address): 1 to 20 printable ASCII characters.  1 / 0. */
int util_valid_sender(const char *s);

/*
 * Grows *p (an array of *cap elements of `size` bytes) to hold at least
 * `need`, doubling.  0, or -1 when out of memory (*p untouched).
 */
int util_grow(void **p, size_t *cap, size_t need, size_t size);

/*
 * Network bytes as printable ASCII for logs and SQL text: anything else,
 * and '"' and '\\', as \xNN.  out always NUL-terminated (cap > 0).
 */
void util_escape(const void *in, size_t len, char *out, size_t cap);

/* Lower-cases in place; returns s. */
char *util_lower(char *s);

/* Sets O_NONBLOCK and FD_CLOEXEC.  0 / -1. */
int util_set_nonblock(int fd);

/* Milliseconds from a monotonic clock. */
uint64_t util_now_ms(void);

/*
 * A number in [0, 1) for jitter, never for secrets: xorshift64*, seeded once
 * per process from the kernel, so nodes that lost the same peer do not come
 * back in step.  The loop's thread only.
 */
double util_random_unit(void);

/* A Retry-After value for a wait in seconds: rounded up, at least 1; a wait that never ends (>= 1e9) is 60. */
long util_retry_after(double wait);

/*
 * Percent-decodes a URL query value (len bytes) into out, at most outlen - 1
 * bytes and NUL-terminated; '+' stays '+' (RFC 3986).  -1 on a bad escape,
 * a control character or when it does not fit.
 */
int util_query_decode(const char *in, size_t len, char *out, size_t outlen);

static inline uint32_t util_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t util_get_be16(const uint8_t *p)
{
	return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}
static inline void util_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void util_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v;
}

#endif
