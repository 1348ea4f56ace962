/*
 * jose.h: the JOSE pieces platform push needs: base64url without padding
 * (RFC 4648 section 5) and compact JWS signatures (RFC 7515) with ES256
 * (P-256, the signature as raw r || s, RFC 7518 section 3.4) or RS256
 * (RSASSA-PKCS1-v1_5 with SHA-256), chosen by the key.  Pure, OpenSSL 3.
 */
#ifndef PUSHGATE_JOSE_H
#define PUSHGATE_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Encode: the length written (out NUL-terminated), or -1 when cap is short. */
long jose_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* Decode (padding, whitespace and stray bits refused): the length written, or -1. */
long jose_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/*
 * "BASE64URL(header).BASE64URL(claims).BASE64URL(signature)" of the given
 * JSON texts (the caller makes them; they are signed as given), ES256 for
 * an EC P-256 key, RS256 for an RSA key.  The length written, or -1.
 */
long jose_sign(EVP_PKEY *key, const char *header, const char *claims, char *out, size_t cap);

/* A JSON string value that needs no escaping: printable ASCII but '"' and '\'. */
int jose_plain(const char *s);

#endif
