/*
 * test_webpush.c: Web Push encryption against RFC 8291's own example
 * (Appendix A: its keys, salt and message, byte for byte), a decryption
 * written here from the RFC's steps for fresh keys and padding, refused
 * keys and sizes, base64url, and the VAPID header's JWT (RFC 8292: its
 * header and claims, the r || s signature checked with OpenSSL, k the
 * server's key).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "webpush.h"

/* RFC 8291, Appendix A (base64url, as printed there) */
#define RFC_PLAINTEXT  "When I grow up, I want to be a watermelon"
#define RFC_AS_PRIVATE "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
#define RFC_AS_PUBLIC  "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
#define RFC_UA_PRIVATE "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
#define RFC_UA_PUBLIC  "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
#define RFC_AUTH       "BTBZMqHH6r4Tts7J_aSIgg"
#define RFC_SALT       "DGv6ra1nlYgDCS1FRnbzlw"
#define RFC_MESSAGE    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"

static size_t dec(const char *s, uint8_t *out, size_t cap)
{
	long n = jose_b64url_decode(s, strlen(s), out, cap);
	assert_true(n >= 0);
	return (size_t)n;
}

static void the_rfc_8291_example_byte_for_byte(void **st)
{
	(void)st;
	uint8_t as_priv[32], ua_pub[WEBPUSH_KEY_LEN], auth[16], salt[16], want[256], out[512], pub[WEBPUSH_KEY_LEN],
		want_pub[WEBPUSH_KEY_LEN];
	assert_int_equal(dec(RFC_AS_PRIVATE, as_priv, sizeof(as_priv)), 32);
	assert_int_equal(dec(RFC_UA_PUBLIC, ua_pub, sizeof(ua_pub)), 65);
	assert_int_equal(dec(RFC_AUTH, auth, sizeof(auth)), 16);
	assert_int_equal(dec(RFC_SALT, salt, sizeof(salt)), 16);
	size_t wlen = dec(RFC_MESSAGE, want, sizeof(want));
	/* the server's public key is computed from its private one */
	EVP_PKEY *k = webpush_key_from_private(as_priv);
	assert_non_null(k);
	assert_int_equal(webpush_public_key(k, pub), 0);
	dec(RFC_AS_PUBLIC, want_pub, sizeof(want_pub));
	assert_memory_equal(pub, want_pub, 65);
	EVP_PKEY_free(k);
	size_t n = 0;
	assert_int_equal(webpush_encrypt_with(ua_pub, auth, (const uint8_t *)RFC_PLAINTEXT, strlen(RFC_PLAINTEXT), 0,
					      as_priv, salt, out, sizeof(out), &n), 0);
	assert_int_equal(n, wlen);
	assert_memory_equal(out, want, wlen);
	char text[512];
	assert_true(jose_b64url_encode(out, n, text, sizeof(text)) > 0);
	assert_string_equal(text, RFC_MESSAGE);
	/* the output buffer one byte short: refused, nothing half-written counted */
	assert_int_equal(webpush_encrypt_with(ua_pub, auth, (const uint8_t *)RFC_PLAINTEXT, strlen(RFC_PLAINTEXT), 0,
					      as_priv, salt, out, wlen - 1, &n), -1);
}

/* HMAC-SHA256 of the concatenation of up to three pieces. */
static void hmac(const uint8_t *key, size_t klen, const void *a, size_t alen, const void *b, size_t blen,
		 const void *c, size_t clen, uint8_t out[32])
{
	uint8_t buf[512];
	size_t n = 0, outlen = 0;
	memcpy(buf + n, a, alen), n += alen;
	if (b)
		memcpy(buf + n, b, blen), n += blen;
	if (c)
		memcpy(buf + n, c, clen), n += clen;
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, buf, n, out, 32, &outlen));
}

/* The user agent's side, from RFC 8291 section 3.4 and RFC 8188 section 2: plaintext length or -1. */
static long ua_decrypt(EVP_PKEY *ua, const uint8_t auth[16], const uint8_t *msg, size_t len, uint8_t *plain)
{
	uint8_t ua_pub[65], secret[32], prk[32], ikm[32], cek[32], nonce[32];
	size_t slen = sizeof(secret), pl = 0;
	if (len < 86 + 17 || msg[20] != 65 || ((uint32_t)msg[16] << 24 | msg[17] << 16 | msg[18] << 8 | msg[19]) != 4096)
		return -1;
	assert_int_equal(webpush_public_key(ua, ua_pub), 0);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(msg + 21), 65),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *as = NULL;
	EVP_PKEY_CTX *fc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	assert_true(EVP_PKEY_fromdata_init(fc) > 0 && EVP_PKEY_fromdata(fc, &as, EVP_PKEY_PUBLIC_KEY, params) > 0);
	EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(NULL, ua, NULL);
	assert_true(EVP_PKEY_derive_init(d) > 0 && EVP_PKEY_derive_set_peer(d, as) > 0 &&
		    EVP_PKEY_derive(d, secret, &slen) > 0);
	uint8_t one = 1;
	hmac(auth, 16, secret, 32, NULL, 0, NULL, 0, prk);
	uint8_t info[14 + 130 + 1];
	memcpy(info, "WebPush: info", 14);
	memcpy(info + 14, ua_pub, 65);
	memcpy(info + 79, msg + 21, 65);
	info[144] = 1;
	hmac(prk, 32, info, sizeof(info), NULL, 0, NULL, 0, ikm);
	hmac(msg, 16, ikm, 32, NULL, 0, NULL, 0, prk);
	hmac(prk, 32, "Content-Encoding: aes128gcm", 28, &one, 1, NULL, 0, cek);
	hmac(prk, 32, "Content-Encoding: nonce", 24, &one, 1, NULL, 0, nonce);
	const uint8_t *ct = msg + 86;
	size_t clen = len - 86 - 16;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0;
	int ok = EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, cek, nonce) == 1 &&
		 EVP_DecryptUpdate(c, plain, &n1, ct, (int)clen) == 1 &&
		 EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(ct + clen)) == 1 &&
		 EVP_DecryptFinal_ex(c, plain + n1, &n2) == 1;
	EVP_CIPHER_CTX_free(c);
	EVP_PKEY_CTX_free(d);
	EVP_PKEY_CTX_free(fc);
	EVP_PKEY_free(as);
	if (!ok)
		return -1;
	/* padding: zeros after the last record's 0x02 delimiter */
	pl = (size_t)(n1 + n2);
	while (pl > 0 && plain[pl - 1] == 0)
		pl--;
	if (pl == 0 || plain[pl - 1] != 0x02)
		return -1;
	return (long)(pl - 1);
}

static void fresh_keys_and_padding_decrypt_on_the_other_side(void **st)
{
	(void)st;
	EVP_PKEY *ua = EVP_EC_gen("P-256");
	uint8_t ua_pub[65], auth[16] = "0123456789abcdef", out[4200], out2[4200], plain[4200];
	assert_non_null(ua);
	assert_int_equal(webpush_public_key(ua, ua_pub), 0);
	const char *msg = "{\"id\":\"42\",\"from\":\"ACME\",\"text\":\"Your code is 123456\"}";
	size_t n = 0, n2 = 0;
	for (size_t pad = 0; pad <= 300; pad += 150) {
		assert_int_equal(webpush_encrypt(ua_pub, auth, (const uint8_t *)msg, strlen(msg), pad, out, sizeof(out), &n), 0);
		assert_int_equal(n, 86 + strlen(msg) + 1 + pad + 16);
		long pl = ua_decrypt(ua, auth, out, n, plain);
		assert_int_equal(pl, (long)strlen(msg));
		assert_memory_equal(plain, msg, strlen(msg));
	}
	/* a fresh salt and key pair every message */
	assert_int_equal(webpush_encrypt(ua_pub, auth, (const uint8_t *)msg, strlen(msg), 0, out2, sizeof(out2), &n2), 0);
	assert_int_equal(webpush_encrypt(ua_pub, auth, (const uint8_t *)msg, strlen(msg), 0, out, sizeof(out), &n), 0);
	assert_memory_not_equal(out, out2, 16);
	assert_memory_not_equal(out + 21, out2 + 21, 65);
	/* a wrong auth secret does not open it */
	uint8_t bad[16] = "0123456789abcdeX";
	assert_int_equal(ua_decrypt(ua, bad, out, n, plain), -1);
	/* one record at most: 4096 bytes with the delimiter and the tag */
	static uint8_t big[4096];
	assert_int_equal(webpush_encrypt(ua_pub, auth, big, 4096 - 17, 0, out, sizeof(out), &n), 0);
	assert_int_equal(webpush_encrypt(ua_pub, auth, big, 4096 - 16, 0, out, sizeof(out), &n), -1);
	assert_int_equal(webpush_encrypt(ua_pub, auth, big, 100, 4096 - 116, out, sizeof(out), &n), -1);
	EVP_PKEY_free(ua);
}

static void a_key_off_the_curve_is_refused(void **st)
{
	(void)st;
	uint8_t ua_pub[65], auth[16] = { 0 }, out[512], as_priv[32];
	size_t n = 0;
	dec(RFC_UA_PUBLIC, ua_pub, sizeof(ua_pub));
	ua_pub[64] ^= 1;   /* y no longer matches x */
	assert_int_equal(webpush_encrypt(ua_pub, auth, (const uint8_t *)"x", 1, 0, out, sizeof(out), &n), -1);
	dec(RFC_UA_PUBLIC, ua_pub, sizeof(ua_pub));
	ua_pub[0] = 0x02;   /* not an uncompressed point */
	assert_int_equal(webpush_encrypt(ua_pub, auth, (const uint8_t *)"x", 1, 0, out, sizeof(out), &n), -1);
	memset(as_priv, 0, sizeof(as_priv));   /* 0 is no private key */
	assert_null(webpush_key_from_private(as_priv));
	memset(as_priv, 0xff, sizeof(as_priv));   /* above the group order */
	assert_null(webpush_key_from_private(as_priv));
}

static void base64url_both_ways(void **st)
{
	(void)st;
	uint8_t buf[64];
	char text[64];
	assert_int_equal(jose_b64url_encode((const uint8_t *)"\xfb\xff\xbf", 3, text, sizeof(text)), 4);
	assert_string_equal(text, "-_-_");
	assert_int_equal(jose_b64url_encode((const uint8_t *)"ab", 2, text, sizeof(text)), 3);
	assert_string_equal(text, "YWI");
	assert_int_equal(jose_b64url_encode((const uint8_t *)"ab", 2, text, 3), -1);   /* no room for the NUL */
	assert_int_equal(jose_b64url_decode("YWI", 3, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "ab", 2);
	assert_int_equal(jose_b64url_decode("YWI=", 4, buf, sizeof(buf)), -1);    /* padding */
	assert_int_equal(jose_b64url_decode("YW+I", 4, buf, sizeof(buf)), -1);    /* not the url alphabet */
	assert_int_equal(jose_b64url_decode("YWJ", 3, buf, sizeof(buf)), -1);     /* stray bits */
	assert_int_equal(jose_b64url_decode("Y", 1, buf, sizeof(buf)), -1);
	assert_int_equal(jose_b64url_decode("YWJj", 4, buf, 2), -1);              /* no room */
	assert_int_equal(jose_b64url_decode("YW\0j", 4, buf, sizeof(buf)), -1);   /* a NUL inside */
}

static void vapid_header_is_an_es256_jwt_with_the_servers_key(void **st)
{
	(void)st;
	uint8_t priv[32], pub[65], k[65], raw[64], part[512];
	dec(RFC_AS_PRIVATE, priv, sizeof(priv));
	EVP_PKEY *key = webpush_key_from_private(priv);
	assert_non_null(key);
	assert_int_equal(webpush_public_key(key, pub), 0);
	char h[1024];
	assert_int_equal(webpush_vapid(key, "https://push.example.net", 1796500000LL, "mailto:ops@pushgate.example", h,
				       sizeof(h)), 0);
	assert_int_equal(strncmp(h, "vapid t=", 8), 0);
	char *t = h + 8, *comma = strstr(t, ", k="), *dot1 = strchr(t, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	assert_non_null(comma);
	assert_non_null(dot2);
	assert_true(dot2 < comma);
	long n = jose_b64url_decode(t, (size_t)(dot1 - t), part, sizeof(part));
	assert_int_equal(n, 27);
	assert_memory_equal(part, "{\"typ\":\"JWT\",\"alg\":\"ES256\"}", 27);
	n = jose_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), part, sizeof(part));
	part[n] = '\0';
	assert_string_equal((char *)part, "{\"aud\":\"https://push.example.net\",\"exp\":1796500000,"
					 "\"sub\":\"mailto:ops@pushgate.example\"}");
	assert_int_equal(jose_b64url_decode(dot2 + 1, (size_t)(comma - dot2 - 1), raw, sizeof(raw)), 64);
	assert_int_equal(jose_b64url_decode(comma + 4, strlen(comma + 4), k, sizeof(k)), 65);
	assert_memory_equal(k, pub, 65);
	/* the signature, r || s back to DER, verifies over header.claims with the public key alone */
	ECDSA_SIG *sig = ECDSA_SIG_new();
	assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)), 1);
	uint8_t der[80], *dp = der;
	int dlen = i2d_ECDSA_SIG(sig, &dp);
	ECDSA_SIG_free(sig);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, k, 65),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *verify = NULL;
	EVP_PKEY_CTX *fc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	assert_true(EVP_PKEY_fromdata_init(fc) > 0 && EVP_PKEY_fromdata(fc, &verify, EVP_PKEY_PUBLIC_KEY, params) > 0);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, verify), 1);
	assert_int_equal(EVP_DigestVerify(md, der, (size_t)dlen, (const uint8_t *)t, (size_t)(dot2 - t)), 1);
	/* and not over anything else */
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, verify), 1);
	assert_int_not_equal(EVP_DigestVerify(md, der, (size_t)dlen, (const uint8_t *)t, (size_t)(dot2 - t) - 1), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(fc);
	EVP_PKEY_free(verify);
	/* claims that would need escaping, no expiry, no room: refused */
	assert_int_equal(webpush_vapid(key, "https://a\"b", 1796500000LL, "mailto:x@y", h, sizeof(h)), -1);
	assert_int_equal(webpush_vapid(key, "https://a", 1796500000LL, "mailto:x\\y", h, sizeof(h)), -1);
	assert_int_equal(webpush_vapid(key, "https://a", 0, "mailto:x@y", h, sizeof(h)), -1);
	assert_int_equal(webpush_vapid(key, "https://a", 1796500000LL, "mailto:x@y", h, 40), -1);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_rfc_8291_example_byte_for_byte),
		cmocka_unit_test(fresh_keys_and_padding_decrypt_on_the_other_side),
		cmocka_unit_test(a_key_off_the_curve_is_refused),
		cmocka_unit_test(base64url_both_ways),
		cmocka_unit_test(vapid_header_is_an_es256_jwt_with_the_servers_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
