/*
 * fcm.h: Firebase Cloud Messaging HTTP v1, the pure parts: the service
 * account (its JSON key file), the OAuth 2.0 JWT bearer assertion that buys
 * an access token (RFC 7523, RS256, scope firebase.messaging), the token
 * answer, the messages:send body for one device, and the error code of an
 * answer.  No I/O but reading the key file; wake.c sends.
 */
#ifndef PUSHGATE_FCM_H
#define PUSHGATE_FCM_H

#include <stddef.h>

#include <openssl/evp.h>

#define FCM_DEFAULT_ENDPOINT "https://fcm.googleapis.com"
#define FCM_SCOPE            "https://www.googleapis.com/auth/firebase.messaging"
#define FCM_DATA_MAX         4000   /* bytes of data the message may carry (FCM takes 4096 in all) */

struct fcm_account {
	char      project_id[128];
	char      client_email[256];
	char      key_id[128];       /* private_key_id: the assertion's kid */
	char      token_uri[256];
	EVP_PKEY *key;               /* RSA */
};

/* Reads a service account JSON key file.  0, or -1 with a message (never the key) in err. */
int fcm_account_load(const char *path, struct fcm_account *a, char *err, size_t errlen);
void fcm_account_free(struct fcm_account *a);

/* The form body for token_uri: grant_type=jwt-bearer and the assertion for now (unix seconds).  Length, or -1. */
long fcm_token_request(const struct fcm_account *a, long long now, char *out, size_t cap);
/* A token answer: the access token and its lifetime in seconds.  0 / -1. */
int fcm_token_answer(const char *json, char *token, size_t cap, double *expires_in);

/*
 * The messages:send body for one registration token: data holds the msg
 * frame's fields as strings (or just type "wake"), android priority and
 * ttl ("Ns").  Malloc'd JSON, or NULL.
 */
char *fcm_message(const char *token, const char *frame_json, int wake_only, const char *priority, long ttl);

/* The FcmError errorCode of an error answer (UNREGISTERED, QUOTA_EXCEEDED...), else its status, else "". */
void fcm_error_code(const char *json, char *out, size_t cap);

#endif
