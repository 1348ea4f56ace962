/* test_ratelimit.c: token buckets by key, on a fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "ratelimit.h"

static void test_ratelimit_grants_the_burst_then_refills_at_rate(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(64, 0.5, 3);   /* one token per 2 s, three at once */
	assert_non_null(rl);
	for (int i = 0; i < 3; i++)
		assert_true(ratelimit_take(rl, "10.0.0.1", 100.0) == 0);
	double wait = ratelimit_take(rl, "10.0.0.1", 100.0);
	assert_true(wait > 1.99 && wait < 2.01);
	/* refused requests do not earn tokens */
	assert_true(ratelimit_take(rl, "10.0.0.1", 101.0) > 0.99);
	assert_true(ratelimit_take(rl, "10.0.0.1", 102.0) == 0);
	assert_true(ratelimit_take(rl, "10.0.0.1", 102.0) > 0);
	/* never more than the burst, however long the pause */
	for (int i = 0; i < 3; i++)
		assert_true(ratelimit_take(rl, "10.0.0.1", 10000.0) == 0);
	assert_true(ratelimit_take(rl, "10.0.0.1", 10000.0) > 0);
	ratelimit_free(rl);
}

static void test_ratelimit_peek_takes_nothing(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(64, 1, 2);
	assert_true(ratelimit_peek(rl, "x", 0.0) == 0);   /* unknown: a full bucket */
	assert_true(ratelimit_take(rl, "x", 0.0) == 0);
	assert_true(ratelimit_peek(rl, "x", 0.0) == 0);
	assert_true(ratelimit_peek(rl, "x", 0.0) == 0);   /* peeking twice leaves the token */
	assert_true(ratelimit_take(rl, "x", 0.0) == 0);
	double w = ratelimit_peek(rl, "x", 0.5);
	assert_true(w > 0.49 && w < 0.51);
	assert_true(ratelimit_peek(rl, "x", 1.0) == 0);
	ratelimit_free(rl);
}

static void test_ratelimit_take_n_charges_the_cost_at_the_keys_own_rate(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(64, 1, 1e9);   /* the table's rate is not the keys' */
	/* 10 a minute, a minute's worth at once */
	assert_true(ratelimit_take_n(rl, "acct", 0.0, 8, 10 / 60.0, 10) == 0);
	double w = ratelimit_take_n(rl, "acct", 0.0, 5, 10 / 60.0, 10);
	assert_true(w > 17.9 && w < 18.1);   /* 3 missing at 1/6 a second */
	assert_true(ratelimit_take_n(rl, "acct", 0.0, 2, 10 / 60.0, 10) == 0);
	/* more than the burst at once never passes */
	assert_true(ratelimit_take_n(rl, "acct", 1e6, 11, 10 / 60.0, 10) >= 1e9);
	assert_true(ratelimit_take_n(rl, "acct", 1e6, 10, 10 / 60.0, 10) == 0);
	ratelimit_free(rl);
}

static void test_ratelimit_keys_are_independent(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(64, 1, 1);
	assert_true(ratelimit_take(rl, "a", 5.0) == 0);
	assert_true(ratelimit_take(rl, "a", 5.0) > 0);
	assert_true(ratelimit_take(rl, "b", 5.0) == 0);
	assert_true(ratelimit_take(rl, "b", 5.0) > 0);
	ratelimit_free(rl);
}

static void test_ratelimit_a_full_table_keeps_limiting_the_busy_key(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(16, 1.0 / 3600, 2);   /* two per hour */
	assert_true(ratelimit_take(rl, "busy", 0.0) == 0);
	assert_true(ratelimit_take(rl, "busy", 0.0) == 0);
	char key[32];
	/* thousands of one-off keys churn through the 16 slots while "busy" keeps asking */
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ratelimit_take(rl, key, 1.0 + i * 0.001);
		if (i % 8 == 0)
			assert_true(ratelimit_take(rl, "busy", 1.0 + i * 0.001) > 0);
	}
	ratelimit_free(rl);
}

static void test_ratelimit_the_empty_key_is_a_key(void **state)
{
	(void)state;
	/* regression: "" marked a free slot, so the empty key got a new full bucket every time */
	struct ratelimit *rl = ratelimit_new(16, 0.01, 1);
	assert_true(ratelimit_take(rl, "", 0.0) == 0);
	assert_true(ratelimit_take(rl, "", 1.0) > 0);
	ratelimit_free(rl);
}

static void test_ratelimit_refuses_nonsense(void **state)
{
	(void)state;
	assert_null(ratelimit_new(16, 0, 1));
	assert_null(ratelimit_new(16, 1, 0.5));
	/* a key longer than the slot is cut, still one bucket */
	struct ratelimit *rl = ratelimit_new(16, 1, 1);
	char longkey[200];
	for (int i = 0; i < 199; i++)
		longkey[i] = 'x';
	longkey[199] = '\0';
	assert_true(ratelimit_take(rl, longkey, 0.0) == 0);
	assert_true(ratelimit_take(rl, longkey, 0.0) > 0);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ratelimit_grants_the_burst_then_refills_at_rate),
		cmocka_unit_test(test_ratelimit_peek_takes_nothing),
		cmocka_unit_test(test_ratelimit_take_n_charges_the_cost_at_the_keys_own_rate),
		cmocka_unit_test(test_ratelimit_keys_are_independent),
		cmocka_unit_test(test_ratelimit_a_full_table_keeps_limiting_the_busy_key),
		cmocka_unit_test(test_ratelimit_the_empty_key_is_a_key),
		cmocka_unit_test(test_ratelimit_refuses_nonsense),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
