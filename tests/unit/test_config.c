/* test_config.c: pushgate.ini parsing, defaults and refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static void test_config_defaults_match_the_documented_values(void **state)
{
	(void)state;
	struct config c;
	config_defaults(&c);
	assert_string_equal(c.http_listen, "127.0.0.1:8080");
	assert_int_equal(c.max_body, 1048576);
	assert_int_equal(c.max_recipients, 1000);
	assert_int_equal(c.smpp_port, 2775);
	assert_int_equal(c.smpp_window, 100);
	assert_string_equal(c.smpp_route, "default");
	assert_string_equal(c.smpp_id_format, "auto");
	assert_true(c.smpp_validity == 86400.0);
}

static void test_config_reads_every_section(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	unsetenv("PUSHGATE_DB");
	int rc = config_load_string(&c,
		"[server]\nhttp_listen = 127.0.0.1:9000\nmax_body = 2048\n"
		"[database]\nconninfo = host=/tmp dbname=x\nbatch_max = 7\n"
		"[smpp]\nport = 2776\nwindow = 5\nsystem_id = abc\nid_format = hex2dec\n", err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(c.http_listen, "127.0.0.1:9000");
	assert_int_equal(c.max_body, 2048);
	assert_string_equal(c.conninfo, "host=/tmp dbname=x");
	assert_int_equal(c.batch_max, 7);
	assert_int_equal(c.smpp_port, 2776);
	assert_int_equal(c.smpp_window, 5);
	assert_string_equal(c.smpp_system_id, "abc");
}

static void test_config_refuses_unknown_keys_naming_them(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, "[server]\nhttp_listn = x\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "http_listn"));
	assert_int_equal(config_load_string(&c, "[nosuch]\nport = 1\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nosuch"));
}

static void test_config_refuses_out_of_range_numbers(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, "[smpp]\nport = 70000\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "port"));
	assert_int_equal(config_load_string(&c, "[smpp]\nwindow = 0\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[smpp]\nwindow = 12abc\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[server]\nmax_body = -1\n", err, sizeof(err)), -1);
}

static void test_config_refuses_overlong_strings_and_bad_enums(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, "[smpp]\npassword = 123456789\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "password"));
	assert_int_equal(config_load_string(&c, "[smpp]\nid_format = octal\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[server]\nlog_level = loud\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[server]\nhttp_listen = nohostport\n", err, sizeof(err)), -1);
}

static void test_config_syntax_error_names_the_line(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, "[server]\nlog_level = info\nthis is not ini\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 3"));
}

static void test_config_environment_overrides_conninfo(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	setenv("PUSHGATE_DB", "dbname=fromenv", 1);
	assert_int_equal(config_load_string(&c, "[database]\nconninfo = dbname=fromfile\n", err, sizeof(err)), 0);
	assert_string_equal(c.conninfo, "dbname=fromenv");
	unsetenv("PUSHGATE_DB");
}

static void test_config_missing_file_is_an_error(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load(&c, "/nonexistent/pushgate.ini", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/pushgate.ini"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults_match_the_documented_values),
		cmocka_unit_test(test_config_reads_every_section),
		cmocka_unit_test(test_config_refuses_unknown_keys_naming_them),
		cmocka_unit_test(test_config_refuses_out_of_range_numbers),
		cmocka_unit_test(test_config_refuses_overlong_strings_and_bad_enums),
		cmocka_unit_test(test_config_syntax_error_names_the_line),
		cmocka_unit_test(test_config_environment_overrides_conninfo),
		cmocka_unit_test(test_config_missing_file_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
