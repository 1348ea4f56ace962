/*
 * apns.h: Apple Push Notification service (token-based, HTTP/2), the pure
 * parts: the signing key (.p8), the provider token (a JWT, ES256, kid = the
 * key id, iss = the team id, iat), the notification payload for one
 * message, and the reason of an error answer.  No I/O but reading the key
 * file; wake.c sends.
 */
#ifndef PUSHGATE_APNS_H
#define PUSHGATE_APNS_H

#include <stddef.h>

#include <openssl/evp.h>

#define APNS_PRODUCTION "https://api.push.apple.com"
#define APNS_SANDBOX    "https://api.sandbox.push.apple.com"
#define APNS_PAYLOAD_MAX 4096

/* Reads the .p8 key (PEM PKCS#8, P-256).  NULL with a message in err. */
EVP_PKEY *apns_key_load(const char *path, char *err, size_t errlen);

/* The provider token for iat (unix seconds).  Length, or -1. */
long apns_token(EVP_PKEY *key, const char *key_id, const char *team_id, long long iat, char *out, size_t cap);

/*
 * The payload: an alert (title the sender, body the text) and the msg frame
 * under "pushgate"; wake_only: the alert says a message waits and
 * "pushgate" is {"type":"wake"} (the app fetches).  Malloc'd JSON, or NULL.
 */
char *apns_payload(const char *frame_json, int wake_only);

/* The reason of an error answer ("Unregistered", "BadDeviceToken"...), or "". */
void apns_reason(const char *json, char *out, size_t cap);

#endif
