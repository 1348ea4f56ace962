/* test_passwd.c: SMPP account passwords: PBKDF2 hashes, constant-time check, hostile stored forms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "passwd.h"

static void test_passwd_hash_verifies_the_same_password_only(void **state)
{
	(void)state;
	char h[SMPP_PASSWD_HASH_MAX];
	assert_int_equal(smpp_passwd_hash("s3cret", 1000, h, sizeof(h)), 0);
	assert_int_equal(strncmp(h, "pbkdf2-sha256$1000$", 19), 0);
	assert_null(strstr(h, "s3cret"));
	assert_int_equal(smpp_passwd_verify("s3cret", h), 1);
	assert_int_equal(smpp_passwd_verify("s3creT", h), 0);
	assert_int_equal(smpp_passwd_verify("", h), 0);
	assert_int_equal(smpp_passwd_verify("s3cret1", h), 0);
}

static void test_passwd_same_password_gets_a_different_salt_each_time(void **state)
{
	(void)state;
	char a[SMPP_PASSWD_HASH_MAX], b[SMPP_PASSWD_HASH_MAX];
	assert_int_equal(smpp_passwd_hash("pw", 1000, a, sizeof(a)), 0);
	assert_int_equal(smpp_passwd_hash("pw", 1000, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(smpp_passwd_verify("pw", a), 1);
	assert_int_equal(smpp_passwd_verify("pw", b), 1);
}

static void test_passwd_refuses_too_few_iterations_and_small_buffers(void **state)
{
	(void)state;
	char h[SMPP_PASSWD_HASH_MAX], tiny[40];
	assert_int_equal(smpp_passwd_hash("pw", 999, h, sizeof(h)), -1);
	assert_int_equal(smpp_passwd_hash("pw", 1000, tiny, sizeof(tiny)), -1);
}

static void test_passwd_malformed_stored_forms_are_errors_not_matches(void **state)
{
	(void)state;
	char h[SMPP_PASSWD_HASH_MAX], bad[SMPP_PASSWD_HASH_MAX + 8];
	assert_int_equal(smpp_passwd_hash("pw", 1000, h, sizeof(h)), 0);
	const char *salt = strchr(h + 14, '$') + 1;
	const char *cases[] = {
		"", "pw", "pbkdf2-sha256$", "pbkdf2-sha256$1000", "pbkdf2-sha256$1000$$",
		"pbkdf2-sha1$1000$00$00", "pbkdf2-sha256$999$0011$0011",
		"pbkdf2-sha256$99999999999$00112233445566778899aabbccddeeff$00",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(smpp_passwd_verify("pw", cases[i]), -1);
	assert_int_equal(smpp_passwd_verify("pw", NULL), -1);
	/* a hash cut short, one hex digit too many, a non-hex digit */
	snprintf(bad, sizeof(bad), "%.*s", (int)strlen(h) - 1, h);
	assert_int_equal(smpp_passwd_verify("pw", bad), -1);
	snprintf(bad, sizeof(bad), "%s0", h);
	assert_int_equal(smpp_passwd_verify("pw", bad), -1);
	snprintf(bad, sizeof(bad), "%s", h);
	bad[salt - h] = 'g';
	assert_int_equal(smpp_passwd_verify("pw", bad), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passwd_hash_verifies_the_same_password_only),
		cmocka_unit_test(test_passwd_same_password_gets_a_different_salt_each_time),
		cmocka_unit_test(test_passwd_refuses_too_few_iterations_and_small_buffers),
		cmocka_unit_test(test_passwd_malformed_stored_forms_are_errors_not_matches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
