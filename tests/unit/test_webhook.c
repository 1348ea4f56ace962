/* test_webhook.c: the signature a receiver recomputes, the retry schedule, the JSON batch shape. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "webhook.h"

/* Expected values from Python: hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest() */
static void test_signature_is_hmac_sha256_of_timestamp_dot_body(void **state)
{
	(void)state;
	char sig[WEBHOOK_SIG_HEX + 1];
	const char body[] = "{\"events\":[]}";
	assert_int_equal(webhook_sign("whsec_test", 10, 1700000000, body, sizeof(body) - 1, sig), 0);
	assert_string_equal(sig, "4f6f9b7a41398ad124e52a1320534f978e522923f3f2b2724e31d7a9dbf78a7f");
	assert_int_equal(webhook_sign("key", 3, 0, "", 0, sig), 0);
	assert_string_equal(sig, "85841b4efc3cd7776c3c8f9b7cca9e281c550e5d19889d78e9e669c6337f000d");
}

static void test_signature_changes_with_body_timestamp_and_secret(void **state)
{
	(void)state;
	char a[WEBHOOK_SIG_HEX + 1], b[WEBHOOK_SIG_HEX + 1];
	const char body[] = "{\"events\":[{\"event_id\":1}]}";
	assert_int_equal(webhook_sign("s1", 2, 100, body, sizeof(body) - 1, a), 0);
	assert_int_equal(webhook_sign("s1", 2, 101, body, sizeof(body) - 1, b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(webhook_sign("s2", 2, 100, body, sizeof(body) - 1, b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(webhook_sign("s1", 2, 100, body, sizeof(body) - 2, b), 0);
	assert_string_not_equal(a, b);
	/* the body is taken by length, not up to a NUL */
	const char with_nul[] = "ab\0cd";
	assert_int_equal(webhook_sign("s1", 2, 1, with_nul, 5, a), 0);
	assert_int_equal(webhook_sign("s1", 2, 1, with_nul, 2, b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(strlen(a), WEBHOOK_SIG_HEX);
	assert_int_equal(strspn(a, "0123456789abcdef"), WEBHOOK_SIG_HEX);
}

static void test_backoff_doubles_from_min_and_stops_at_max(void **state)
{
	(void)state;
	/* r = 0: no jitter */
	assert_true(webhook_backoff(0, 1, 3600, 0) == 1.0);
	assert_true(webhook_backoff(1, 1, 3600, 0) == 2.0);
	assert_true(webhook_backoff(5, 1, 3600, 0) == 32.0);
	assert_true(webhook_backoff(11, 1, 3600, 0) == 2048.0);
	assert_true(webhook_backoff(12, 1, 3600, 0) == 3600.0);
	assert_true(webhook_backoff(1000000, 1, 3600, 0) == 3600.0);
	assert_true(webhook_backoff(-3, 1, 3600, 0) == 1.0);
	assert_true(webhook_backoff(3, 0.25, 1, 0) == 1.0);
	/* 24 h of retries from 1 s: the schedule reaches the cap after 12 attempts */
	double total = 0;
	int n = 0;
	while (total < 86400 && n < 1000)
		total += webhook_backoff(n++, 1, 3600, 0);
	assert_in_range(n, 33, 36);
}

static void test_backoff_jitter_takes_off_at_most_a_quarter(void **state)
{
	(void)state;
	for (int a = 0; a < 20; a++) {
		double full = webhook_backoff(a, 1, 3600, 0);
		for (double r = 0; r < 1; r += 0.0625) {
			double d = webhook_backoff(a, 1, 3600, r);
			assert_true(d <= full);
			assert_true(d > full * 0.75);
		}
		assert_true(webhook_backoff(a, 1, 3600, 0.5) < full);
		/* out-of-range r is clamped */
		assert_true(webhook_backoff(a, 1, 3600, 7) > full * 0.75);
		assert_true(webhook_backoff(a, 1, 3600, -1) == full);
	}
}

static void test_body_is_events_array_in_given_order(void **state)
{
	(void)state;
	const char *p[3] = { "{\"event_id\": 7, \"state\": \"ACCEPTED\"}", "{\"event_id\": 8}",
			     "{\"event_id\": 9, \"detail\": \"a,b]}\"}" };
	size_t len = 0;
	char *b = webhook_body(p, 3, &len);
	assert_non_null(b);
	assert_int_equal(len, strlen(b));
	json_error_t err;
	json_t *j = json_loadb(b, len, 0, &err);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	json_t *ev = json_object_get(j, "events");
	assert_true(json_is_array(ev));
	assert_int_equal(json_array_size(ev), 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, i), "event_id")), 7 + (int)i);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 2), "detail")), "a,b]}");
	json_decref(j);
	free(b);
}

static void test_body_of_no_events_is_an_empty_array(void **state)
{
	(void)state;
	size_t len = 99;
	char *b = webhook_body(NULL, 0, &len);
	assert_non_null(b);
	assert_string_equal(b, "{\"events\":[]}");
	assert_int_equal(len, 13);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature_is_hmac_sha256_of_timestamp_dot_body),
		cmocka_unit_test(test_signature_changes_with_body_timestamp_and_secret),
		cmocka_unit_test(test_backoff_doubles_from_min_and_stops_at_max),
		cmocka_unit_test(test_backoff_jitter_takes_off_at_most_a_quarter),
		cmocka_unit_test(test_body_is_events_array_in_given_order),
		cmocka_unit_test(test_body_of_no_events_is_an_empty_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
