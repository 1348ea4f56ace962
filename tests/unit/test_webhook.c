/*
 * test_webhook.c: the signature a receiver recomputes, the retry schedule, the JSON batch shape,
 * what per_host counts a URL as, and the fair start queue (turns over accounts, caps, order).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
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


static void test_host_key_is_host_and_port_as_libcurl_reads_the_url(void **state)
{
	(void)state;
	char k[WEBHOOK_HOST_MAX];
	webhook_host_key("http://Example.COM/hook?x=1", k);
	assert_string_equal(k, "example.com:80");
	webhook_host_key("https://example.com/hook", k);
	assert_string_equal(k, "example.com:443");
	webhook_host_key("http://example.com:8080/a", k);
	assert_string_equal(k, "example.com:8080");
	webhook_host_key("https://user:pw@hooks.example.net:8443/x#f", k);
	assert_string_equal(k, "hooks.example.net:8443");
	webhook_host_key("http://127.0.0.1:9/dlr?t=%d", k);
	assert_string_equal(k, "127.0.0.1:9");
	webhook_host_key("http://[::1]:9000/", k);
	assert_string_equal(k, "[::1]:9000");
	webhook_host_key("http://", k);
	assert_string_equal(k, "");
}

/* Items of the fair queue for the tests: a name to follow them by. */
struct t_item {
	struct webhook_fair_item fq;
	const char *name;
	long long account;
	const char *host;
};

static struct t_item *t_put(struct webhook_fair *q, struct t_item *it, const char *name, long long account,
			    const char *host, double now)
{
	it->name = name;
	it->account = account;
	it->host = host;
	assert_int_equal(webhook_fair_put(q, &it->fq, it, account, host, now), 0);
	return it;
}

static const char *t_next(struct webhook_fair *q)
{
	struct webhook_fair_item *it = webhook_fair_next(q);
	return it ? ((struct t_item *)it->owner)->name : "-";
}

static void test_fair_takes_turns_over_the_accounts(void **state)
{
	(void)state;
	struct webhook_fair *q = webhook_fair_new(10, 10);
	struct t_item it[8];
	t_put(q, &it[0], "a1", 1, "h:80", 0);
	t_put(q, &it[1], "a2", 1, "h:80", 0);
	t_put(q, &it[2], "a3", 1, "h:80", 0);
	t_put(q, &it[3], "a4", 1, "h:80", 0);
	t_put(q, &it[4], "b1", 2, "h:80", 0);
	t_put(q, &it[5], "b2", 2, "h:80", 0);
	t_put(q, &it[6], "c1", 3, "h:80", 0);
	assert_int_equal(webhook_fair_waiting(q), 7);
	const char *want[] = { "a1", "b1", "c1", "a2", "b2", "a3", "a4", "-" };
	for (size_t i = 0; i < 8; i++)
		assert_string_equal(t_next(q), want[i]);
	/* an account that comes back joins at the end of the round */
	t_put(q, &it[7], "c2", 3, "h:80", 0);
	assert_string_equal(t_next(q), "c2");
	assert_int_equal(webhook_fair_account_load(q, 1), 4);   /* started, not done */
	assert_int_equal(webhook_fair_waiting(q), 0);
	for (size_t i = 0; i < 8; i++)
		webhook_fair_done(q, &it[i].fq);
	assert_int_equal(webhook_fair_account_load(q, 1), 0);
	webhook_fair_free(q);
}

static void test_fair_caps_an_account_and_another_account_starts_meanwhile(void **state)
{
	(void)state;
	struct webhook_fair *q = webhook_fair_new(2, 10);
	struct t_item a[4], b;
	t_put(q, &a[0], "a1", 1, "slow:443", 0);
	t_put(q, &a[1], "a2", 1, "other:443", 0);
	t_put(q, &a[2], "a3", 1, "slow:443", 0);
	t_put(q, &a[3], "a4", 1, "slow:443", 0);
	assert_string_equal(t_next(q), "a1");
	assert_string_equal(t_next(q), "a2");
	assert_string_equal(t_next(q), "-");   /* the account has two in flight */
	t_put(q, &b, "b1", 2, "fast:443", 0);
	assert_string_equal(t_next(q), "b1");   /* starts at once, not behind a3 and a4 */
	webhook_fair_done(q, &a[0].fq);
	assert_string_equal(t_next(q), "a3");
	assert_string_equal(t_next(q), "-");
	long long busy[4];
	assert_int_equal(webhook_fair_loaded_accounts(q, 3, busy, 4), 1);   /* a2, a3 started, a4 waits */
	assert_int_equal(busy[0], 1);
	assert_int_equal(webhook_fair_loaded_accounts(q, 4, busy, 4), 0);
	webhook_fair_done(q, &a[1].fq);
	webhook_fair_done(q, &b.fq);
	assert_string_equal(t_next(q), "a4");
	webhook_fair_done(q, &a[2].fq);
	webhook_fair_done(q, &a[3].fq);
	webhook_fair_free(q);
}

static void test_fair_caps_a_host_over_every_account(void **state)
{
	(void)state;
	struct webhook_fair *q = webhook_fair_new(10, 2);
	struct t_item it[5];
	t_put(q, &it[0], "a1", 1, "h:80", 0);
	t_put(q, &it[1], "a2", 1, "h:80", 0);
	t_put(q, &it[2], "a3", 1, "x:80", 0);
	t_put(q, &it[3], "b1", 2, "h:80", 0);
	t_put(q, &it[4], "b2", 2, "y:80", 0);
	assert_string_equal(t_next(q), "a1");
	assert_string_equal(t_next(q), "b1");   /* h has two in flight now */
	assert_string_equal(t_next(q), "a3");   /* passes a2: another host */
	assert_string_equal(t_next(q), "b2");
	assert_string_equal(t_next(q), "-");    /* a2 waits for h */
	webhook_fair_done(q, &it[3].fq);        /* b1 */
	assert_string_equal(t_next(q), "a2");
	for (size_t i = 0; i < 5; i++)
		if (i != 3)
			webhook_fair_done(q, &it[i].fq);
	webhook_fair_free(q);
}

static void test_fair_keeps_the_order_of_one_account_and_host(void **state)
{
	(void)state;
	struct webhook_fair *q = webhook_fair_new(10, 1);
	struct t_item it[4];
	t_put(q, &it[0], "p1", 1, "h1:80", 0);
	t_put(q, &it[1], "q1", 1, "h2:80", 0);
	t_put(q, &it[2], "p2", 1, "h1:80", 0);
	t_put(q, &it[3], "q2", 1, "h2:80", 0);
	assert_string_equal(t_next(q), "p1");
	assert_string_equal(t_next(q), "q1");
	assert_string_equal(t_next(q), "-");
	webhook_fair_done(q, &it[1].fq);
	assert_string_equal(t_next(q), "q2");   /* p2 still waits for p1's host */
	webhook_fair_done(q, &it[0].fq);
	assert_string_equal(t_next(q), "p2");
	webhook_fair_done(q, &it[2].fq);
	webhook_fair_done(q, &it[3].fq);
	webhook_fair_free(q);
}

static void test_fair_oldest_and_remove_hand_batches_back_unstarted(void **state)
{
	(void)state;
	struct webhook_fair *q = webhook_fair_new(1, 1);
	struct t_item it[4];
	t_put(q, &it[0], "a1", 1, "h:80", 1.0);
	t_put(q, &it[1], "b1", 2, "g:80", 2.0);
	t_put(q, &it[2], "a2", 1, "h:80", 3.0);
	t_put(q, &it[3], "a3", 1, "h:80", 4.0);
	assert_ptr_equal(webhook_fair_oldest(q), &it[0].fq);
	assert_true(webhook_fair_oldest(q)->since == 1.0);
	webhook_fair_remove(q, &it[0].fq);
	assert_ptr_equal(webhook_fair_oldest(q), &it[1].fq);
	webhook_fair_remove(q, &it[2].fq);   /* from the middle of its account's queue */
	assert_int_equal(webhook_fair_waiting(q), 2);
	assert_int_equal(webhook_fair_account_load(q, 1), 1);
	assert_string_equal(t_next(q), "a3");
	assert_string_equal(t_next(q), "b1");
	assert_string_equal(t_next(q), "-");
	assert_null(webhook_fair_oldest(q));
	webhook_fair_free(q);   /* a3 and b1 are still counted: the queue frees its counts */
}

/*
 * Random puts, starts and ends against a plain model: a start never passes
 * a cap, a batch never starts before an earlier one of its account and host,
 * and nothing comes back only when no waiting batch may start.
 */
#define R_N 400
static void test_fair_random_work_keeps_the_caps_and_the_order(void **state)
{
	(void)state;
	const size_t per_account = 3, per_host = 2;
	static const char *hosts[] = { "h0:80", "h1:80", "h2:80", "h3:80" };
	struct webhook_fair *q = webhook_fair_new(per_account, per_host);
	static struct t_item items[R_N];
	int st[R_N] = {0};   /* 0 not put, 1 waiting, 2 started, 3 done */
	size_t put = 0, acc_started[5] = {0}, host_started[4] = {0}, blocked = 0;
	unsigned seed = 12345;
	for (int step = 0; step < 20000 && !(put == R_N && webhook_fair_waiting(q) == 0); step++) {
		seed = seed * 1103515245u + 12345u;
		unsigned r = (seed >> 16) % 3;
		if (r == 0 && put < R_N) {
			long long acc = (long long)((seed >> 8) % 5);
			t_put(q, &items[put], "x", acc, hosts[(seed >> 4) % 4], (double)put);
			st[put++] = 1;
		} else if (r == 1) {
			struct webhook_fair_item *it = webhook_fair_next(q);
			if (!it) {   /* then nothing waiting may start */
				blocked += webhook_fair_waiting(q) > 0;
				for (size_t i = 0; i < put; i++) {
					if (st[i] != 1)
						continue;
					size_t h = (size_t)(items[i].host[1] - '0');
					assert_true(acc_started[items[i].account] >= per_account ||
						    host_started[h] >= per_host);
				}
				continue;
			}
			struct t_item *t = it->owner;
			size_t i = (size_t)(t - items), h = (size_t)(t->host[1] - '0');
			assert_int_equal(st[i], 1);
			for (size_t j = 0; j < i; j++)   /* every earlier one of its account and host started */
				if (items[j].account == t->account && items[j].host == t->host)
					assert_true(st[j] >= 2);
			st[i] = 2;
			assert_true(++acc_started[t->account] <= per_account);
			assert_true(++host_started[h] <= per_host);
		} else {
			for (size_t i = 0; i < put; i++)
				if (st[i] == 2 && (seed >> 20) % 2) {
					st[i] = 3;
					acc_started[items[i].account]--;
					host_started[items[i].host[1] - '0']--;
					webhook_fair_done(q, &items[i].fq);
					break;
				}
		}
	}
	assert_int_equal(put, R_N);
	assert_int_equal(webhook_fair_waiting(q), 0);   /* every one started */
	assert_true(blocked > 10);                      /* and the caps held some back */
	webhook_fair_free(q);
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
		cmocka_unit_test(test_host_key_is_host_and_port_as_libcurl_reads_the_url),
		cmocka_unit_test(test_fair_takes_turns_over_the_accounts),
		cmocka_unit_test(test_fair_caps_an_account_and_another_account_starts_meanwhile),
		cmocka_unit_test(test_fair_caps_a_host_over_every_account),
		cmocka_unit_test(test_fair_keeps_the_order_of_one_account_and_host),
		cmocka_unit_test(test_fair_oldest_and_remove_hand_batches_back_unstarted),
		cmocka_unit_test(test_fair_random_work_keeps_the_caps_and_the_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
