/* test_ipcount.c: connections per client address. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "ipcount.h"

static void test_ipcount_caps_each_address_and_gives_places_back(void **state)
{
	(void)state;
	struct ipcount *t = ipcount_new();
	assert_non_null(t);
	struct ipcount_entry *a[3];
	for (int i = 0; i < 3; i++)
		assert_non_null(a[i] = ipcount_take(t, "10.0.0.1", 3));
	assert_null(ipcount_take(t, "10.0.0.1", 3));
	assert_non_null(ipcount_take(t, "10.0.0.2", 3));   /* another address */
	ipcount_release(t, a[0]);
	assert_non_null(a[0] = ipcount_take(t, "10.0.0.1", 3));
	for (int i = 0; i < 3; i++)
		ipcount_release(t, a[i]);
	/* the address left the table with its last connection: a fresh count */
	for (int i = 0; i < 3; i++)
		assert_non_null(a[i] = ipcount_take(t, "10.0.0.1", 3));
	assert_null(ipcount_take(t, "10.0.0.1", 0));
	ipcount_release(t, NULL);
	ipcount_free(t);   /* frees what is still counted */
}

static void test_ipcount_many_addresses(void **state)
{
	(void)state;
	struct ipcount *t = ipcount_new();
	char ip[48];
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		assert_non_null(ipcount_take(t, ip, 1));
		assert_null(ipcount_take(t, ip, 1));
	}
	ipcount_free(t);
}

static void test_ipcount_addr_of_strips_the_port(void **state)
{
	(void)state;
	char out[48];
	ipcount_addr_of("127.0.0.1:5555", out, sizeof(out));
	assert_string_equal(out, "127.0.0.1");
	ipcount_addr_of("[::1]:80", out, sizeof(out));
	assert_string_equal(out, "::1");
	ipcount_addr_of("[2001:db8::7]:443", out, sizeof(out));
	assert_string_equal(out, "2001:db8::7");
	ipcount_addr_of("10.0.0.9", out, sizeof(out));
	assert_string_equal(out, "10.0.0.9");
	ipcount_addr_of("[", out, sizeof(out));
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipcount_caps_each_address_and_gives_places_back),
		cmocka_unit_test(test_ipcount_many_addresses),
		cmocka_unit_test(test_ipcount_addr_of_strips_the_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
