/*
 * passwd.h: SMPP account passwords, stored as PBKDF2-HMAC-SHA256 hashes
 * ("pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX"), checked in constant time.
 */
#ifndef PUSHGATE_SMPP_PASSWD_H
#define PUSHGATE_SMPP_PASSWD_H

#include <stddef.h>

#define SMPP_PASSWD_ITERATIONS 20000u
#define SMPP_PASSWD_HASH_MAX   160      /* bytes of the stored form, NUL included */

/* Hashes `password` with a fresh random salt into out.  0, or -1 (cap, RNG). */
int smpp_passwd_hash(const char *password, unsigned iterations, char *out, size_t cap);

/*
 * 1 when `password` matches the stored form, 0 when it does not, -1 when
 * the stored form is malformed (iterations outside 1000..10000000 included).
 */
int smpp_passwd_verify(const char *password, const char *stored);

#endif
