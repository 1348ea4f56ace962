/*
 * webpush.c: Web Push message encryption (RFC 8291 over RFC 8188's
 * aes128gcm, one record) and VAPID (RFC 8292), with OpenSSL 3.
 *
 * Encryption, per message: a fresh P-256 key pair and salt; ECDH with the
 * subscription's p256dh key; IKM = HKDF(auth, ecdh, "WebPush: info\0" ||
 * ua_public || as_public); from HKDF(salt, IKM) the 16-byte content key and
 * the 12-byte nonce; AES-128-GCM of plaintext || 0x02 || padding; framed as
 * salt || rs (4096) || 65 || as_public || ciphertext || tag.  HKDF here is
 * one HMAC for extract and one for expand (every output fits one block).
 * VAPID: a JWT {"typ":"JWT","alg":"ES256"} with aud, exp and sub, its
 * signature the raw r || s of ECDSA P-256 / SHA-256.
 *
 * Owns nothing past a call; never trusts a key it is given (a point off
 * the curve is refused), never reuses a salt or a key pair across messages.
 */
#include "webpush.h"

#include "jose.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

/* --- keys ---------------------------------------------------------------------------- */

/* A P-256 key from its public point, and its private scalar when priv is not NULL. */
static EVP_PKEY *key_from(const uint8_t pub[WEBPUSH_KEY_LEN], const BIGNUM *priv)
{
	EVP_PKEY *key = NULL;
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!b || !ctx || !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, WEBPUSH_KEY_LEN) ||
	    (priv && !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, priv)) ||
	    !(params = OSSL_PARAM_BLD_to_param(b)) || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	if (!key)
		return NULL;
	/* the point is on the curve (a peer's key is a stranger's bytes); P-256's cofactor is 1, so a
	 * point on it has the group's order and the quick check (no scalar multiplication) is the whole check */
	EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	int ok = check && EVP_PKEY_public_check_quick(check) == 1;
	EVP_PKEY_CTX_free(check);
	if (!ok) {
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

EVP_PKEY *webpush_key_from_private(const uint8_t priv[32])
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BIGNUM *d = BN_bin2bn(priv, 32, NULL);
	EC_POINT *p = g ? EC_POINT_new(g) : NULL;
	uint8_t pub[WEBPUSH_KEY_LEN];
	EVP_PKEY *key = NULL;
	if (g && d && p && !BN_is_zero(d) && BN_cmp(d, EC_GROUP_get0_order(g)) < 0 &&
	    EC_POINT_mul(g, p, d, NULL, NULL, NULL) == 1 &&
	    EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub), NULL) == sizeof(pub))
		key = key_from(pub, d);
	EC_POINT_free(p);
	BN_clear_free(d);
	EC_GROUP_free(g);
	return key;
}

int webpush_public_key(EVP_PKEY *key, uint8_t out[WEBPUSH_KEY_LEN])
{
	size_t n = 0;
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, WEBPUSH_KEY_LEN, &n) != 1 ||
	    n != WEBPUSH_KEY_LEN || out[0] != 0x04)
		return -1;
	return 0;
}

/* --- encryption ------------------------------------------------------------------------ */

/*
 * The algorithms, fetched once from the default provider (an implicit fetch
 * per call costs more than the HMAC itself).  Kept for the process's life.
 */
static EVP_MAC *hmac_alg(void)
{
	static EVP_MAC *mac;
	if (!mac)
		mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	return mac;
}

static const EVP_CIPHER *gcm_alg(void)
{
	static EVP_CIPHER *gcm;
	if (!gcm)
		gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	return gcm;
}

/* HMAC-SHA256 of a || b (b may be NULL) || [the byte c when c >= 0] into out (32 bytes).  0 / -1. */
static int hmac3(const uint8_t *key, size_t klen, const void *a, size_t alen, const void *b, size_t blen, int c,
		 uint8_t out[32])
{
	uint8_t data[256];
	size_t n = 0, outlen = 0;
	if (alen + blen + 1 > sizeof(data))
		return -1;
	memcpy(data, a, alen);
	n = alen;
	if (b) {
		memcpy(data + n, b, blen);
		n += blen;
	}
	if (c >= 0)
		data[n++] = (uint8_t)c;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END };
	EVP_MAC *alg = hmac_alg();
	EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
	int ok = ctx && EVP_MAC_init(ctx, key, klen, params) == 1 && EVP_MAC_update(ctx, data, n) == 1 &&
		 EVP_MAC_final(ctx, out, &outlen, 32) == 1 && outlen == 32;
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(data, sizeof(data));
	return ok ? 0 : -1;
}

static int encrypt_core(const uint8_t ua_public[WEBPUSH_KEY_LEN], const uint8_t auth[WEBPUSH_AUTH_LEN],
			const uint8_t *plain, size_t len, size_t pad, EVP_PKEY *as_key,
			const uint8_t salt[WEBPUSH_SALT_LEN], uint8_t *out, size_t cap, size_t *out_len)
{
	size_t body = len + 1 + pad;   /* the plaintext, its delimiter, the padding */
	if (len > WEBPUSH_RECORD_SIZE || pad > WEBPUSH_RECORD_SIZE || body + WEBPUSH_TAG_LEN > WEBPUSH_RECORD_SIZE ||
	    cap < WEBPUSH_HEADER_LEN + body + WEBPUSH_TAG_LEN)
		return -1;
	int rc = -1;
	uint8_t as_public[WEBPUSH_KEY_LEN], secret[32], prk[32], ikm[32], cek[32], nonce[32];
	size_t slen = sizeof(secret);
	EVP_PKEY *peer = key_from(ua_public, NULL);
	EVP_PKEY_CTX *dctx = NULL;
	EVP_CIPHER_CTX *c = NULL;
	if (!peer || webpush_public_key(as_key, as_public) < 0)
		goto out;
	dctx = EVP_PKEY_CTX_new_from_pkey(NULL, as_key, NULL);
	if (!dctx || EVP_PKEY_derive_init(dctx) <= 0 || EVP_PKEY_derive_set_peer(dctx, peer) <= 0 ||
	    EVP_PKEY_derive(dctx, secret, &slen) <= 0 || slen != sizeof(secret))
		goto out;
	/* IKM: HKDF(salt = auth, ikm = the ECDH secret, info = "WebPush: info\0" || ua || as) */
	static const char info[] = "WebPush: info";   /* with its NUL */
	uint8_t keys[2 * WEBPUSH_KEY_LEN];
	memcpy(keys, ua_public, WEBPUSH_KEY_LEN);
	memcpy(keys + WEBPUSH_KEY_LEN, as_public, WEBPUSH_KEY_LEN);
	if (hmac3(auth, WEBPUSH_AUTH_LEN, secret, sizeof(secret), NULL, 0, -1, prk) < 0 ||
	    hmac3(prk, sizeof(prk), info, sizeof(info), keys, sizeof(keys), 1, ikm) < 0)
		goto out;
	/* content key and nonce: HKDF(salt, IKM) */
	static const char cek_info[] = "Content-Encoding: aes128gcm", nonce_info[] = "Content-Encoding: nonce";
	if (hmac3(salt, WEBPUSH_SALT_LEN, ikm, sizeof(ikm), NULL, 0, -1, prk) < 0 ||
	    hmac3(prk, sizeof(prk), cek_info, sizeof(cek_info), NULL, 0, 1, cek) < 0 ||
	    hmac3(prk, sizeof(prk), nonce_info, sizeof(nonce_info), NULL, 0, 1, nonce) < 0)
		goto out;
	/* the header */
	memcpy(out, salt, WEBPUSH_SALT_LEN);
	out[16] = (uint8_t)(WEBPUSH_RECORD_SIZE >> 24);
	out[17] = (uint8_t)(WEBPUSH_RECORD_SIZE >> 16);
	out[18] = (uint8_t)(WEBPUSH_RECORD_SIZE >> 8);
	out[19] = (uint8_t)WEBPUSH_RECORD_SIZE;
	out[20] = WEBPUSH_KEY_LEN;
	memcpy(out + 21, as_public, WEBPUSH_KEY_LEN);
	/* one record: plaintext || 0x02 (the last record) || pad zero bytes, then the tag */
	uint8_t *ct = out + WEBPUSH_HEADER_LEN;
	memmove(ct, plain, len);   /* plain may lie in out */
	ct[len] = 0x02;
	memset(ct + len + 1, 0, pad);
	int n1 = 0, n2 = 0;
	c = EVP_CIPHER_CTX_new();
	if (!c || !gcm_alg() || EVP_EncryptInit_ex(c, gcm_alg(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_EncryptInit_ex(c, NULL, NULL, cek, nonce) != 1 ||
	    EVP_EncryptUpdate(c, ct, &n1, ct, (int)body) != 1 || EVP_EncryptFinal_ex(c, ct + n1, &n2) != 1 ||
	    (size_t)(n1 + n2) != body || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, WEBPUSH_TAG_LEN, ct + body) != 1)
		goto out;
	*out_len = WEBPUSH_HEADER_LEN + body + WEBPUSH_TAG_LEN;
	rc = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(prk, sizeof(prk));
	OPENSSL_cleanse(ikm, sizeof(ikm));
	OPENSSL_cleanse(cek, sizeof(cek));
	EVP_CIPHER_CTX_free(c);
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(peer);
	return rc;
}

int webpush_encrypt_with(const uint8_t ua_public[WEBPUSH_KEY_LEN], const uint8_t auth[WEBPUSH_AUTH_LEN],
			 const uint8_t *plain, size_t len, size_t pad, const uint8_t as_private[32],
			 const uint8_t salt[WEBPUSH_SALT_LEN], uint8_t *out, size_t cap, size_t *out_len)
{
	EVP_PKEY *as_key = webpush_key_from_private(as_private);
	if (!as_key)
		return -1;
	int rc = encrypt_core(ua_public, auth, plain, len, pad, as_key, salt, out, cap, out_len);
	EVP_PKEY_free(as_key);
	return rc;
}

int webpush_encrypt(const uint8_t ua_public[WEBPUSH_KEY_LEN], const uint8_t auth[WEBPUSH_AUTH_LEN],
		    const uint8_t *plain, size_t len, size_t pad, uint8_t *out, size_t cap, size_t *out_len)
{
	/* the key generation context, set up once (EVP_EC_gen fetches and sets up one per call) */
	static EVP_PKEY_CTX *gen;
	if (!gen) {
		EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (!g || EVP_PKEY_keygen_init(g) <= 0 || EVP_PKEY_CTX_set_group_name(g, "P-256") <= 0) {
			EVP_PKEY_CTX_free(g);
			return -1;
		}
		gen = g;
	}
	uint8_t salt[WEBPUSH_SALT_LEN];
	EVP_PKEY *as_key = NULL;
	if (EVP_PKEY_generate(gen, &as_key) <= 0 || RAND_bytes(salt, sizeof(salt)) != 1) {
		EVP_PKEY_free(as_key);
		return -1;
	}
	int rc = encrypt_core(ua_public, auth, plain, len, pad, as_key, salt, out, cap, out_len);
	EVP_PKEY_free(as_key);
	return rc;
}

/* --- VAPID ------------------------------------------------------------------------------ */

int webpush_vapid(EVP_PKEY *key, const char *audience, long long exp, const char *subject, char *out, size_t cap)
{
	static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ES256\"}";
	char claims[1024], jwt[2048], k64[96];
	uint8_t pub[WEBPUSH_KEY_LEN];
	if (!jose_plain(audience) || !jose_plain(subject) || exp <= 0 || webpush_public_key(key, pub) < 0)
		return -1;
	int cl = snprintf(claims, sizeof(claims), "{\"aud\":\"%s\",\"exp\":%lld,\"sub\":\"%s\"}", audience, exp, subject);
	if (cl < 0 || (size_t)cl >= sizeof(claims) || jose_sign(key, header, claims, jwt, sizeof(jwt)) < 0 ||
	    jose_b64url_encode(pub, sizeof(pub), k64, sizeof(k64)) < 0)
		return -1;
	int n = snprintf(out, cap, "vapid t=%s, k=%s", jwt, k64);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}
