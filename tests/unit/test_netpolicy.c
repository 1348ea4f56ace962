/* test_netpolicy.c: which addresses webhooks and dlr-url reports may reach. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "netpolicy.h"

static int allows(const struct netpolicy *np, const char *addr)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
	}
	const char *why = NULL;
	int ok = netpolicy_allows(np, (struct sockaddr *)&ss, &why);
	if (!ok)
		assert_non_null(why);
	return ok;
}

static void test_netpolicy_refuses_internal_addresses_by_default(void **state)
{
	(void)state;
	char err[128];
	struct netpolicy *np = netpolicy_new("", err, sizeof(err));
	assert_non_null(np);
	const char *internal[] = {
		"127.0.0.1", "127.255.255.254", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "255.255.255.255", "198.18.0.1",
		"::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "::7f00:1",
	};
	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		if (allows(np, internal[i]))
			fail_msg("%s allowed", internal[i]);
	}
	const char *public[] = {
		"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "192.169.0.1", "11.0.0.1",
		"2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808",
	};
	for (size_t i = 0; i < sizeof(public) / sizeof(public[0]); i++) {
		if (!allows(np, public[i]))
			fail_msg("%s refused", public[i]);
	}
	netpolicy_free(np);
}

static void test_netpolicy_operator_allows_ranges(void **state)
{
	(void)state;
	char err[128];
	struct netpolicy *np = netpolicy_new("127.0.0.0/8, 10.20.0.0/16,fd12::/16 192.168.1.7", err, sizeof(err));
	assert_non_null(np);
	assert_true(allows(np, "127.0.0.1"));
	assert_true(allows(np, "::ffff:127.0.0.2"));
	assert_true(allows(np, "10.20.5.5"));
	assert_false(allows(np, "10.21.0.1"));
	assert_true(allows(np, "fd12::9"));
	assert_false(allows(np, "fd13::9"));
	assert_true(allows(np, "192.168.1.7"));
	assert_false(allows(np, "192.168.1.8"));
	assert_false(allows(np, "169.254.169.254"));
	netpolicy_free(np);
}

static void test_netpolicy_rejects_malformed_ranges(void **state)
{
	(void)state;
	char err[128];
	const char *bad[] = { "10.0.0.0/33", "::1/129", "example.com", "10.0.0.0/", "10.0.0.0/x", "1.2.3.4/-1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_null(netpolicy_new(bad[i], err, sizeof(err)));
		assert_non_null(strstr(err, "not an address range"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netpolicy_refuses_internal_addresses_by_default),
		cmocka_unit_test(test_netpolicy_operator_allows_ranges),
		cmocka_unit_test(test_netpolicy_rejects_malformed_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
