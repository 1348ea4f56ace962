/*
 * passwd.c: hashing and checking SMPP account passwords (PBKDF2-HMAC-SHA256
 * from OpenSSL, 16-byte random salt, 32-byte key).  Owns nothing; never
 * compares secrets with an early exit (CRYPTO_memcmp), never logs them.
 * The stored form is parsed with every length checked: it comes from the
 * database, which an operator may have edited by hand.
 */
#include "passwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define SALT_LEN 16
#define KEY_LEN  32

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly n bytes of hex from s up to `end`.  0 / -1. */
static int from_hex(const char *s, const char *end, unsigned char *out, size_t n)
{
	if ((size_t)(end - s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int derive(const char *password, const unsigned char *salt, unsigned iterations, unsigned char *key)
{
	return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, SALT_LEN, (int)iterations, EVP_sha256(),
				 KEY_LEN, key) == 1 ? 0 : -1;
}

int smpp_passwd_hash(const char *password, unsigned iterations, char *out, size_t cap)
{
	unsigned char salt[SALT_LEN], key[KEY_LEN];
	char salt_hex[2 * SALT_LEN + 1], key_hex[2 * KEY_LEN + 1];
	if (iterations < 1000 || RAND_bytes(salt, SALT_LEN) != 1 || derive(password, salt, iterations, key) < 0)
		return -1;
	to_hex(salt, SALT_LEN, salt_hex);
	to_hex(key, KEY_LEN, key_hex);
	OPENSSL_cleanse(key, sizeof(key));
	int n = snprintf(out, cap, "pbkdf2-sha256$%u$%s$%s", iterations, salt_hex, key_hex);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

int smpp_passwd_verify(const char *password, const char *stored)
{
	static const char prefix[] = "pbkdf2-sha256$";
	unsigned char salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
	if (!stored || strncmp(stored, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	const char *p = stored + sizeof(prefix) - 1;
	unsigned long iterations = 0;
	int digits = 0;
	while (*p >= '0' && *p <= '9' && digits < 9) {
		iterations = iterations * 10 + (unsigned long)(*p++ - '0');
		digits++;
	}
	if (*p != '$' || iterations < 1000 || iterations > 10000000)
		return -1;
	const char *salt_s = ++p;
	const char *dollar = strchr(salt_s, '$');
	if (!dollar || from_hex(salt_s, dollar, salt, SALT_LEN) < 0 ||
	    from_hex(dollar + 1, dollar + 1 + strlen(dollar + 1), want, KEY_LEN) < 0)
		return -1;
	if (derive(password, salt, (unsigned)iterations, got) < 0)
		return -1;
	int same = CRYPTO_memcmp(got, want, KEY_LEN) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return same;
}
