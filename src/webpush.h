/*
 * webpush.h: Web Push message encryption (RFC 8291: the aes128gcm content
 * coding of RFC 8188, one record) and VAPID (RFC 8292: an ES256 JWT and the
 * server's public key in the Authorization header), with OpenSSL.  Pure:
 * no I/O, no state; the sender that posts to push services comes apart.
 */
#ifndef PUSHGATE_WEBPUSH_H
#define PUSHGATE_WEBPUSH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "jose.h"   /* jose_b64url_*: the keys of a subscription travel in base64url */

#define WEBPUSH_KEY_LEN     65     /* an uncompressed P-256 point: 0x04, x, y */
#define WEBPUSH_AUTH_LEN    16     /* the subscription's auth secret */
#define WEBPUSH_SALT_LEN    16
#define WEBPUSH_HEADER_LEN  86     /* salt, record size (4), key id length (1), the server's key */
#define WEBPUSH_TAG_LEN     16
#define WEBPUSH_RECORD_SIZE 4096

/*
 * The body of a push message for one subscription: its p256dh key
 * (ua_public) and auth secret, the plaintext, then at least pad zero bytes
 * of padding (to hide the length; 0: none).  A fresh server key pair and
 * salt each call.  Writes header + ciphertext into out (cap bytes) and its
 * length into *out_len.  0, or -1 (a bad key, too long for one record, or
 * out doesn't fit: WEBPUSH_HEADER_LEN + len + 1 + pad + WEBPUSH_TAG_LEN).
 */
int webpush_encrypt(const uint8_t ua_public[WEBPUSH_KEY_LEN], const uint8_t auth[WEBPUSH_AUTH_LEN],
		    const uint8_t *plain, size_t len, size_t pad, uint8_t *out, size_t cap, size_t *out_len);

/* The same with the server's private key (32 bytes) and the salt given: for tests (RFC 8291, Appendix A). */
int webpush_encrypt_with(const uint8_t ua_public[WEBPUSH_KEY_LEN], const uint8_t auth[WEBPUSH_AUTH_LEN],
			 const uint8_t *plain, size_t len, size_t pad, const uint8_t as_private[32],
			 const uint8_t salt[WEBPUSH_SALT_LEN], uint8_t *out, size_t cap, size_t *out_len);

/* A P-256 key from its 32-byte private scalar (public key computed), or NULL. */
EVP_PKEY *webpush_key_from_private(const uint8_t priv[32]);

/* The uncompressed public key of a P-256 key.  0 / -1. */
int webpush_public_key(EVP_PKEY *key, uint8_t out[WEBPUSH_KEY_LEN]);

/*
 * The Authorization header value of RFC 8292, "vapid t=JWT, k=KEY": the
 * JWT claims aud (the push service's origin, "https://host[:port]"), exp
 * (unix time, at most 24 h ahead) and sub (a mailto: or https: contact),
 * signed ES256 with key; k is key's public key, base64url.  0 / -1.
 */
int webpush_vapid(EVP_PKEY *key, const char *audience, long long exp, const char *subject, char *out, size_t cap);

#endif
