/*
 * jose.c: base64url and compact JWS signing (jose.h).  ES256 signatures
 * come from OpenSSL as DER and are turned into the raw r || s of 32 bytes
 * each that JWS wants; RS256 signatures are used as they come.
 */
#include "jose.h"

#include <stdio.h>
#include <string.h>

#include <openssl/ec.h>

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

long jose_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
	if (cap < need + 1)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);
		out[o++] = B64URL[v >> 18 & 63];
		out[o++] = B64URL[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = B64URL[v >> 6 & 63];
		if (i + 2 < len)
			out[o++] = B64URL[v & 63];
	}
	out[o] = '\0';
	return (long)o;
}

long jose_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	if (len % 4 == 1)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		const char *p = in[i] ? strchr(B64URL, in[i]) : NULL;
		if (!p)
			return -1;
		acc = acc << 6 | (uint32_t)(p - B64URL);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (acc & ((1u << bits) - 1))
		return -1;   /* leftover bits must be zero: one text per byte string */
	return (long)o;
}

int jose_plain(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return 0;
	return 1;
}

/* DER ECDSA-Sig-Value -> r || s, 32 bytes each.  0 / -1. */
static int es256_raw(const uint8_t *der, size_t dlen, uint8_t raw[64])
{
	const uint8_t *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	const BIGNUM *r = NULL, *s = NULL;
	if (sig)
		ECDSA_SIG_get0(sig, &r, &s);
	int ok = sig && BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -1;
}

long jose_sign(EVP_PKEY *key, const char *header, const char *claims, char *out, size_t cap)
{
	int type = EVP_PKEY_get_base_id(key);
	if (type != EVP_PKEY_EC && type != EVP_PKEY_RSA)
		return -1;
	long h = jose_b64url_encode((const uint8_t *)header, strlen(header), out, cap);
	if (h < 0 || (size_t)h + 1 >= cap)
		return -1;
	out[h] = '.';
	long c = jose_b64url_encode((const uint8_t *)claims, strlen(claims), out + h + 1, cap - (size_t)h - 1);
	if (c < 0)
		return -1;
	size_t ilen = (size_t)(h + 1 + c);
	uint8_t sig[1024], raw[64];
	size_t slen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestSign(md, NULL, &slen, (const uint8_t *)out, ilen) == 1 && slen <= sizeof(sig) &&
		 EVP_DigestSign(md, sig, &slen, (const uint8_t *)out, ilen) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return -1;
	const uint8_t *s = sig;
	if (type == EVP_PKEY_EC) {
		if (es256_raw(sig, slen, raw) < 0)
			return -1;
		s = raw;
		slen = sizeof(raw);
	}
	if (ilen + 1 >= cap)
		return -1;
	out[ilen] = '.';
	long g = jose_b64url_encode(s, slen, out + ilen + 1, cap - ilen - 1);
	return g < 0 ? -1 : (long)(ilen + 1 + (size_t)g);
}
