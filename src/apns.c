/*
 * apns.c: APNs' pure parts (apns.h).  The provider token is
 * {"alg":"ES256","kid":KEY_ID}.{"iss":TEAM_ID,"iat":T} signed with the .p8
 * key; Apple takes one no older than an hour and refuses a new one more
 * often than every 20 minutes, which is the caller's clock to keep.
 */
#include "apns.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "jose.h"
#include "util.h"

EVP_PKEY *apns_key_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open %s", path);
		return NULL;
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC || EVP_PKEY_get_bits(k) != 256) {
		snprintf(err, errlen, "%s is not a PEM P-256 private key", path);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

long apns_token(EVP_PKEY *key, const char *key_id, const char *team_id, long long iat, char *out, size_t cap)
{
	char header[128], claims[128];
	if (!jose_plain(key_id) || !jose_plain(team_id))
		return -1;
	int h = snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", key_id);
	int c = snprintf(claims, sizeof(claims), "{\"iss\":\"%s\",\"iat\":%lld}", team_id, iat);
	if (h < 0 || (size_t)h >= sizeof(header) || c < 0 || (size_t)c >= sizeof(claims))
		return -1;
	return jose_sign(key, header, claims, out, cap);
}

char *apns_payload(const char *frame_json, int wake_only)
{
	json_t *frame = json_loads(frame_json ? frame_json : "", 0, NULL);
	const char *sender = json_string_value(json_object_get(frame, "sender"));
	const char *text = json_string_value(json_object_get(frame, "text"));
	json_t *root;
	if (wake_only || !text)
		root = json_pack("{s:{s:{s:s, s:s}, s:i}, s:{s:s}}", "aps", "alert", "title", sender ? sender : "pushgate",
				 "body", "New message", "mutable-content", 1, "pushgate", "type", "wake");
	else
		root = json_pack("{s:{s:{s:s, s:s}, s:i}, s:O}", "aps", "alert", "title", sender ? sender : "pushgate",
				 "body", text, "mutable-content", 1, "pushgate", frame);
	json_decref(frame);
	char *out = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return out;
}

void apns_reason(const char *json, char *out, size_t cap)
{
	out[0] = '\0';
	json_t *root = json_loads(json ? json : "", 0, NULL);
	const char *r = json_string_value(json_object_get(root, "reason"));
	if (r && jose_plain(r))
		util_strlcpy(out, r, cap);
	json_decref(root);
}
