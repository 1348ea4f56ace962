/*
 * keys.h: API keys.  A key is "pk_" + 64 hex digits from the OS CSPRNG;
 * only its SHA-256 is stored (accounts.api_key_hash).
 */
#ifndef PUSHGATE_KEYS_H
#define PUSHGATE_KEYS_H

#include <stddef.h>

#define KEYS_API_KEY_LEN 67   /* "pk_" + 64 hex, without NUL */
#define KEYS_HASH_LEN    32

/* Writes a new key (NUL-terminated) into out; outlen >= KEYS_API_KEY_LEN + 1. 0 / -1. */
int keys_generate(char *out, size_t outlen);

/* SHA-256 of the key bytes. */
void keys_hash(const char *key, size_t len, unsigned char out[KEYS_HASH_LEN]);

/* "\\x..." bytea text form of the hash, for SQL parameters (out >= 2 + 64 + 1). */
void keys_hash_bytea(const char *key, size_t len, char *out, size_t outlen);

/* Constant-time comparison of n bytes: 1 when equal. */
int keys_equal(const void *a, const void *b, size_t n);

#endif
