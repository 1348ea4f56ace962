/* test_util.c: address parsing, strict numbers, keys, text encoding for submit_sm. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "keys.h"
#include "util.h"

static void test_util_parses_ipv4_ipv6_and_localhost(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len;
	char out[64];
	assert_int_equal(util_parse_addr("127.0.0.1:8080", &ss, &len), 0);
	util_format_addr((struct sockaddr *)&ss, out, sizeof(out));
	assert_string_equal(out, "127.0.0.1:8080");
	assert_int_equal(util_parse_addr("[::1]:25", &ss, &len), 0);
	util_format_addr((struct sockaddr *)&ss, out, sizeof(out));
	assert_string_equal(out, "[::1]:25");
	assert_int_equal(util_parse_addr("localhost:0", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
}

static void test_util_rejects_bad_addresses(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len;
	assert_int_equal(util_parse_addr("127.0.0.1", &ss, &len), -1);
	assert_int_equal(util_parse_addr("127.0.0.1:65536", &ss, &len), -1);
	assert_int_equal(util_parse_addr("127.0.0.1:-1", &ss, &len), -1);
	assert_int_equal(util_parse_addr("example.com:80", &ss, &len), -1);
	assert_int_equal(util_parse_addr("[::1:80", &ss, &len), -1);
}

static void test_util_strict_number_parsing(void **state)
{
	(void)state;
	long l;
	double d;
	assert_int_equal(util_parse_long("42", 0, 100, &l), 0);
	assert_int_equal(l, 42);
	assert_int_equal(util_parse_long("42x", 0, 100, &l), -1);
	assert_int_equal(util_parse_long(" 42", 0, 100, &l), -1);
	assert_int_equal(util_parse_long("", 0, 100, &l), -1);
	assert_int_equal(util_parse_long("101", 0, 100, &l), -1);
	assert_int_equal(util_parse_double("0.5", 0, 1, &d), 0);
	assert_int_equal(util_parse_double("nan", 0, 1, &d), -1);
	assert_int_equal(util_parse_double("inf", 0, 1e300, &d), -1);
}

static void test_util_strlcpy_truncates_and_terminates(void **state)
{
	(void)state;
	char b[4];
	assert_int_equal(util_strlcpy(b, "abcdef", sizeof(b)), 6);
	assert_string_equal(b, "abc");
}

static void test_util_big_endian_helpers_round_trip(void **state)
{
	(void)state;
	uint8_t b[4];
	util_put_be32(b, 0x80000004u);
	assert_int_equal(b[0], 0x80);
	assert_int_equal(b[3], 0x04);
	assert_int_equal(util_get_be32(b), 0x80000004u);
	util_put_be16(b, 0x0427);
	assert_int_equal(util_get_be16(b), 0x0427);
}

static void test_keys_are_random_prefixed_and_hash_stably(void **state)
{
	(void)state;
	char k1[KEYS_API_KEY_LEN + 1], k2[KEYS_API_KEY_LEN + 1];
	assert_int_equal(keys_generate(k1, sizeof(k1)), 0);
	assert_int_equal(keys_generate(k2, sizeof(k2)), 0);
	assert_int_equal(strlen(k1), KEYS_API_KEY_LEN);
	assert_memory_equal(k1, "pk_", 3);
	assert_string_not_equal(k1, k2);
	char h1[80], h2[80];
	keys_hash_bytea("abc", 3, h1, sizeof(h1));
	/* SHA-256("abc") */
	assert_string_equal(h1, "\\xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	keys_hash_bytea("abd", 3, h2, sizeof(h2));
	assert_string_not_equal(h1, h2);
	assert_int_equal(keys_generate(k1, 10), -1);
}

static void test_util_msisdn_keeps_digits_and_drops_the_plus(void **state)
{
	(void)state;
	char out[21];
	assert_int_equal(util_msisdn("+821012345678", out), 0);
	assert_string_equal(out, "821012345678");
	assert_int_equal(util_msisdn("123", out), 0);
	assert_int_equal(util_msisdn("12", out), -1);
	assert_int_equal(util_msisdn("12345678901234567890", out), 0);
	assert_int_equal(util_msisdn("123456789012345678901", out), -1);
	assert_int_equal(util_msisdn("82 10", out), -1);
	assert_int_equal(util_msisdn("++8210", out), -1);
	assert_int_equal(util_msisdn(NULL, out), -1);
}

static void test_util_sender_is_short_printable_ascii(void **state)
{
	(void)state;
	assert_true(util_valid_sender("ACME"));
	assert_true(util_valid_sender("12345678901234567890"));
	assert_false(util_valid_sender("123456789012345678901"));
	assert_false(util_valid_sender(""));
	assert_false(util_valid_sender(NULL));
	assert_false(util_valid_sender("a\nb"));
	assert_false(util_valid_sender("\xec\x95\x88"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_parses_ipv4_ipv6_and_localhost),
		cmocka_unit_test(test_util_rejects_bad_addresses),
		cmocka_unit_test(test_util_strict_number_parsing),
		cmocka_unit_test(test_util_strlcpy_truncates_and_terminates),
		cmocka_unit_test(test_util_big_endian_helpers_round_trip),
		cmocka_unit_test(test_keys_are_random_prefixed_and_hash_stably),
		cmocka_unit_test(test_util_msisdn_keeps_digits_and_drops_the_plus),
		cmocka_unit_test(test_util_sender_is_short_printable_ascii),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
