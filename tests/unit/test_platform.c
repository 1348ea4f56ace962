/*
 * test_platform.c: the pure parts of FCM and APNs (fcm.c, apns.c) and the
 * JWS signatures they rest on (jose.c): an RS256 and an ES256 signature
 * checked with OpenSSL's verify, the FCM assertion's header and claims as
 * Google's token endpoint reads them, a service account file, the
 * messages:send body (data values as strings, priority, ttl), error codes
 * from Google's and Apple's documented error bodies, the APNs provider
 * token and payload, and what a hostile answer gets (nothing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "apns.h"
#include "fcm.h"
#include "jose.h"

/* The three parts of a compact JWS, decoded: header and claims as JSON, the signature's bytes. */
static void jws_split(const char *jws, json_t **header, json_t **claims, uint8_t *sig, size_t *sig_len,
		      size_t *signed_len)
{
	const char *d1 = strchr(jws, '.');
	assert_non_null(d1);
	const char *d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	char buf[4096];
	long n = jose_b64url_decode(jws, (size_t)(d1 - jws), (uint8_t *)buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	*header = json_loads(buf, 0, NULL);
	n = jose_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), (uint8_t *)buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	*claims = json_loads(buf, 0, NULL);
	assert_non_null(*header);
	assert_non_null(*claims);
	n = jose_b64url_decode(d2 + 1, strlen(d2 + 1), sig, 1024);
	assert_true(n > 0);
	*sig_len = (size_t)n;
	*signed_len = (size_t)(d2 - jws);
}

static int verify(EVP_PKEY *key, const char *jws, size_t signed_len, const uint8_t *sig, size_t sig_len)
{
	uint8_t der[128];
	const uint8_t *s = sig;
	size_t slen = sig_len;
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
		/* JWS r || s -> DER for OpenSSL */
		assert_int_equal(sig_len, 64);
		ECDSA_SIG *es = ECDSA_SIG_new();
		ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
		uint8_t *p = der;
		int dl = i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		s = der;
		slen = (size_t)dl;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestVerify(md, s, slen, (const uint8_t *)jws, signed_len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

static EVP_PKEY *rsa_key(void)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	assert_non_null(k);
	return k;
}

static char *pem_of(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static void jws_signatures_verify_with_openssl_and_tampering_fails(void **st)
{
	(void)st;
	EVP_PKEY *keys[2] = { rsa_key(), EVP_EC_gen("P-256") };
	const char *algs[2] = { "RS256", "ES256" };
	for (int i = 0; i < 2; i++) {
		char hdr[64], jws[2048];
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", algs[i]);
		long n = jose_sign(keys[i], hdr, "{\"x\":1}", jws, sizeof(jws));
		assert_true(n > 0 && (size_t)n == strlen(jws));
		json_t *h, *c;
		uint8_t sig[1024];
		size_t sl, signed_len;
		jws_split(jws, &h, &c, sig, &sl, &signed_len);
		assert_string_equal(json_string_value(json_object_get(h, "alg")), algs[i]);
		assert_int_equal(json_integer_value(json_object_get(c, "x")), 1);
		assert_true(verify(keys[i], jws, signed_len, sig, sl));
		jws[signed_len - 1] ^= 1;   /* the claims changed: the signature no longer holds */
		assert_false(verify(keys[i], jws, signed_len, sig, sl));
		json_decref(h);
		json_decref(c);
		/* a buffer too small is refused, not overrun */
		assert_int_equal(jose_sign(keys[i], hdr, "{\"x\":1}", jws, 40), -1);
		EVP_PKEY_free(keys[i]);
	}
}

static void the_fcm_assertion_is_what_googles_token_endpoint_reads(void **st)
{
	(void)st;
	EVP_PKEY *k = rsa_key();
	char *pem = pem_of(k);
	json_t *sa = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "service_account", "project_id", "pg-test",
			       "private_key_id", "0123abcd", "private_key", pem, "client_email",
			       "pushgate@pg-test.iam.gserviceaccount.com", "token_uri", "https://oauth2.example/token");
	char path[] = "/tmp/test_platform_saXXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(json_dump_file(sa, path, 0), 0);
	struct fcm_account a;
	char err[256];
	assert_int_equal(fcm_account_load(path, &a, err, sizeof(err)), 0);
	assert_string_equal(a.project_id, "pg-test");
	char body[8192];
	long n = fcm_token_request(&a, 1800000000, body, sizeof(body));
	assert_true(n > 0);
	const char *prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
	assert_memory_equal(body, prefix, strlen(prefix));
	const char *jws = body + strlen(prefix);
	json_t *h, *c;
	uint8_t sig[1024];
	size_t sl, signed_len;
	jws_split(jws, &h, &c, sig, &sl, &signed_len);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), "0123abcd");
	assert_string_equal(json_string_value(json_object_get(c, "iss")), "pushgate@pg-test.iam.gserviceaccount.com");
	assert_string_equal(json_string_value(json_object_get(c, "scope")), FCM_SCOPE);
	assert_string_equal(json_string_value(json_object_get(c, "aud")), "https://oauth2.example/token");
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1800000000);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1800003600);
	assert_true(verify(k, jws, signed_len, sig, sl));
	json_decref(h);
	json_decref(c);
	fcm_account_free(&a);
	/* a file that is not a service account, or whose key is not RSA, is refused with a reason */
	json_object_set_new(sa, "token_uri", json_string("http://plain.example/token"));
	assert_int_equal(json_dump_file(sa, path, 0), 0);
	assert_int_equal(fcm_account_load(path, &a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "token_uri"));
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	char *ec_pem = pem_of(ec);
	json_object_set_new(sa, "token_uri", json_string("https://oauth2.example/token"));
	json_object_set_new(sa, "private_key", json_string(ec_pem));
	assert_int_equal(json_dump_file(sa, path, 0), 0);
	assert_int_equal(fcm_account_load(path, &a, err, sizeof(err)), -1);
	assert_null(strstr(err, "BEGIN"));   /* never the key in a message */
	unlink(path);
	json_decref(sa);
	free(pem);
	free(ec_pem);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(k);
}

static void token_answers_and_error_bodies_as_documented(void **st)
{
	(void)st;
	char tok[256], code[64];
	double exp = 0;
	assert_int_equal(fcm_token_answer("{\"access_token\":\"ya29.abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}",
					  tok, sizeof(tok), &exp), 0);
	assert_string_equal(tok, "ya29.abc");
	assert_true(exp == 3599);
	assert_int_equal(fcm_token_answer("{\"error\":\"invalid_grant\"}", tok, sizeof(tok), &exp), -1);
	assert_int_equal(fcm_token_answer("{\"access_token\":\"a\\\"b\",\"expires_in\":10}", tok, sizeof(tok), &exp), -1);
	assert_int_equal(fcm_token_answer("not json", tok, sizeof(tok), &exp), -1);
	fcm_error_code("{\"error\":{\"code\":404,\"message\":\"Requested entity was not found.\",\"status\":\"NOT_FOUND\","
		       "\"details\":[{\"@type\":\"type.googleapis.com/google.firebase.fcm.v1.FcmError\","
		       "\"errorCode\":\"UNREGISTERED\"}]}}", code, sizeof(code));
	assert_string_equal(code, "UNREGISTERED");
	fcm_error_code("{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}", code, sizeof(code));
	assert_string_equal(code, "UNAUTHENTICATED");
	fcm_error_code("<html>bad gateway</html>", code, sizeof(code));
	assert_string_equal(code, "");
	fcm_error_code(NULL, code, sizeof(code));
	assert_string_equal(code, "");
	apns_reason("{\"reason\":\"Unregistered\",\"timestamp\":1800000000000}", code, sizeof(code));
	assert_string_equal(code, "Unregistered");
	apns_reason("{\"reason\":\"bad\\nline\"}", code, sizeof(code));
	assert_string_equal(code, "");   /* nothing unprintable reaches a log or a table */
	apns_reason("", code, sizeof(code));
	assert_string_equal(code, "");
}

static void the_fcm_message_carries_the_frame_as_strings(void **st)
{
	(void)st;
	const char *frame = "{\"type\":\"msg\",\"id\":4711,\"sender\":\"ACME\",\"text\":\"카드 승인\",\"sent_at\":\"2026-12-05T10:00:00.000Z\"}";
	char *m = fcm_message("tok:en_1", frame, 0, "high", 27);
	assert_non_null(m);
	json_t *root = json_loads(m, 0, NULL);
	json_t *msg = json_object_get(root, "message");
	assert_string_equal(json_string_value(json_object_get(msg, "token")), "tok:en_1");
	json_t *data = json_object_get(msg, "data");
	assert_string_equal(json_string_value(json_object_get(data, "id")), "4711");
	assert_string_equal(json_string_value(json_object_get(data, "text")), "카드 승인");
	const char *k;
	json_t *v;
	json_object_foreach(data, k, v)
		assert_true(json_is_string(v));   /* FCM refuses any other type */
	json_t *android = json_object_get(msg, "android");
	assert_string_equal(json_string_value(json_object_get(android, "priority")), "high");
	assert_string_equal(json_string_value(json_object_get(android, "ttl")), "27s");
	assert_int_equal(json_object_size(msg), 3);
	json_decref(root);
	free(m);
	m = fcm_message("t", NULL, 1, "normal", -5);
	root = json_loads(m, 0, NULL);
	msg = json_object_get(root, "message");
	assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "data"), "type")), "wake");
	assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "android"), "ttl")), "0s");
	json_decref(root);
	free(m);
	assert_null(fcm_message("t", "[1,2]", 0, "high", 1));
}

static void the_apns_token_and_payload(void **st)
{
	(void)st;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char jws[1024];
	assert_true(apns_token(k, "ABC123DEFG", "TEAM123456", 1800000000, jws, sizeof(jws)) > 0);
	json_t *h, *c;
	uint8_t sig[1024];
	size_t sl, signed_len;
	jws_split(jws, &h, &c, sig, &sl, &signed_len);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), "ABC123DEFG");
	assert_string_equal(json_string_value(json_object_get(c, "iss")), "TEAM123456");
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1800000000);
	assert_true(verify(k, jws, signed_len, sig, sl));
	json_decref(h);
	json_decref(c);
	assert_int_equal(apns_token(k, "AB\"C", "T", 1, jws, sizeof(jws)), -1);
	EVP_PKEY_free(k);
	const char *frame = "{\"type\":\"msg\",\"id\":7,\"sender\":\"ACME\",\"text\":\"hello\"}";
	char *p = apns_payload(frame, 0);
	json_t *root = json_loads(p, 0, NULL);
	json_t *alert = json_object_get(json_object_get(root, "aps"), "alert");
	assert_string_equal(json_string_value(json_object_get(alert, "title")), "ACME");
	assert_string_equal(json_string_value(json_object_get(alert, "body")), "hello");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "pushgate"), "id")), 7);
	json_decref(root);
	free(p);
	p = apns_payload(frame, 1);
	root = json_loads(p, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(root, "pushgate"), "type")), "wake");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(root, "aps"), "alert"),
							      "body")), "New message");
	json_decref(root);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jws_signatures_verify_with_openssl_and_tampering_fails),
		cmocka_unit_test(the_fcm_assertion_is_what_googles_token_endpoint_reads),
		cmocka_unit_test(token_answers_and_error_bodies_as_documented),
		cmocka_unit_test(the_fcm_message_carries_the_frame_as_strings),
		cmocka_unit_test(the_apns_token_and_payload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
