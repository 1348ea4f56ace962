/*
 * keys.c: API key generation and hashing (OpenSSL).  Keys are random
 * (RAND_bytes), high-entropy, so a plain SHA-256 is the right stored form:
 * lookups stay one index probe, and a leaked table does not leak keys.
 * Never logs a key.
 */
#include "keys.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static const char hexdigits[] = "0123456789abcdef";

int keys_generate(char *out, size_t outlen)
{
	unsigned char raw[32];
	if (outlen < KEYS_API_KEY_LEN + 1 || RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	memcpy(out, "pk_", 3);
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[3 + 2 * i] = hexdigits[raw[i] >> 4];
		out[4 + 2 * i] = hexdigits[raw[i] & 15];
	}
	out[KEYS_API_KEY_LEN] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

void keys_hash(const char *key, size_t len, unsigned char out[KEYS_HASH_LEN])
{
	unsigned int n = KEYS_HASH_LEN;
	EVP_Digest(key, len, out, &n, EVP_sha256(), NULL);
}

void keys_hash_bytea(const char *key, size_t len, char *out, size_t outlen)
{
	unsigned char h[KEYS_HASH_LEN];
	if (outlen < 2 + 2 * KEYS_HASH_LEN + 1) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	keys_hash(key, len, h);
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < KEYS_HASH_LEN; i++) {
		out[2 + 2 * i] = hexdigits[h[i] >> 4];
		out[3 + 2 * i] = hexdigits[h[i] & 15];
	}
	out[2 + 2 * KEYS_HASH_LEN] = '\0';
}

int keys_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
