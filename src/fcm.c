/*
 * fcm.c: FCM HTTP v1's pure parts (fcm.h).  The assertion is a JWT
 * {"alg":"RS256","typ":"JWT","kid":private_key_id} with iss = the account's
 * client_email, scope, aud = token_uri, iat = now and exp = now + 3600,
 * posted as grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer.
 * FCM data values must be strings, so the msg frame's id travels as a
 * decimal string.
 */
#include "fcm.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "jose.h"
#include "util.h"

static int copy_field(json_t *root, const char *name, char *out, size_t cap, char *err, size_t errlen)
{
	const char *v = json_string_value(json_object_get(root, name));
	if (!v || !*v || strlen(v) >= cap || !jose_plain(v)) {
		snprintf(err, errlen, "the service account has no usable '%s'", name);
		return -1;
	}
	util_strlcpy(out, v, cap);
	return 0;
}

int fcm_account_load(const char *path, struct fcm_account *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: not a JSON service account (%s)", path, root ? "not an object" : jerr.text);
		json_decref(root);
		return -1;
	}
	const char *pem = json_string_value(json_object_get(root, "private_key"));
	int rc = -1;
	if (copy_field(root, "project_id", a->project_id, sizeof(a->project_id), err, errlen) < 0 ||
	    copy_field(root, "client_email", a->client_email, sizeof(a->client_email), err, errlen) < 0 ||
	    copy_field(root, "private_key_id", a->key_id, sizeof(a->key_id), err, errlen) < 0 ||
	    copy_field(root, "token_uri", a->token_uri, sizeof(a->token_uri), err, errlen) < 0)
		goto out;
	if (strncmp(a->token_uri, "https://", 8) != 0) {
		snprintf(err, errlen, "%s: token_uri is not an https:// URL", path);
		goto out;
	}
	BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	a->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!a->key || EVP_PKEY_get_base_id(a->key) != EVP_PKEY_RSA) {
		snprintf(err, errlen, "%s: private_key is not a PEM RSA key", path);
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	if (rc < 0)
		fcm_account_free(a);
	return rc;
}

void fcm_account_free(struct fcm_account *a)
{
	EVP_PKEY_free(a->key);
	a->key = NULL;
}

long fcm_token_request(const struct fcm_account *a, long long now, char *out, size_t cap)
{
	char header[256], claims[1024], jwt[4096];
	int h = snprintf(header, sizeof(header), "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", a->key_id);
	int c = snprintf(claims, sizeof(claims),
			 "{\"iss\":\"%s\",\"scope\":\"" FCM_SCOPE "\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
			 a->client_email, a->token_uri, now, now + 3600);
	if (h < 0 || (size_t)h >= sizeof(header) || c < 0 || (size_t)c >= sizeof(claims) ||
	    jose_sign(a->key, header, claims, jwt, sizeof(jwt)) < 0)
		return -1;
	/* the assertion is base64url and dots: nothing to escape in a form */
	int n = snprintf(out, cap, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int fcm_token_answer(const char *json, char *token, size_t cap, double *expires_in)
{
	json_t *root = json_loads(json, 0, NULL);
	const char *t = json_string_value(json_object_get(root, "access_token"));
	json_t *e = json_object_get(root, "expires_in");
	int ok = t && *t && strlen(t) < cap && jose_plain(t) && json_is_number(e) && json_number_value(e) > 0;
	if (ok) {
		util_strlcpy(token, t, cap);
		*expires_in = json_number_value(e);
	}
	json_decref(root);
	return ok ? 0 : -1;
}

char *fcm_message(const char *token, const char *frame_json, int wake_only, const char *priority, long ttl)
{
	json_t *data = json_object();
	json_t *frame = wake_only ? NULL : json_loads(frame_json, 0, NULL);
	if (!data || (!wake_only && !json_is_object(frame))) {
		json_decref(data);
		json_decref(frame);
		return NULL;
	}
	if (wake_only) {
		json_object_set_new(data, "type", json_string("wake"));
	} else {
		const char *k;
		json_t *v;
		json_object_foreach(frame, k, v) {
			if (json_is_string(v)) {
				json_object_set(data, k, v);
			} else if (json_is_integer(v)) {
				char num[24];
				snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
				json_object_set_new(data, k, json_string(num));
			}
		}
	}
	json_decref(frame);
	char ttl_s[32];
	snprintf(ttl_s, sizeof(ttl_s), "%lds", ttl > 0 ? ttl : 0);
	json_t *msg = json_pack("{s:{s:s, s:o, s:{s:s, s:s}}}", "message", "token", token, "data", data, "android",
				"priority", priority, "ttl", ttl_s);
	char *out = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	return out;
}

void fcm_error_code(const char *json, char *out, size_t cap)
{
	out[0] = '\0';
	json_t *root = json_loads(json ? json : "", 0, NULL);
	json_t *error = json_object_get(root, "error");
	json_t *details = json_object_get(error, "details");
	size_t i;
	json_t *d;
	json_array_foreach(details, i, d) {
		const char *code = json_string_value(json_object_get(d, "errorCode"));
		if (code && jose_plain(code)) {
			util_strlcpy(out, code, cap);
			break;
		}
	}
	const char *status = json_string_value(json_object_get(error, "status"));
	if (!out[0] && status && jose_plain(status))
		util_strlcpy(out, status, cap);
	json_decref(root);
}
