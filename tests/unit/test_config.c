/* test_config.c: pushgate.ini parsing, defaults and refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
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
	assert_int_equal(c.n_routes, 1);
	assert_int_equal(c.routes[0].port, 2775);
	assert_int_equal(c.routes[0].window, 100);
	assert_string_equal(c.routes[0].name, "default");
	assert_string_equal(c.routes[0].id_format, "auto");
	assert_true(c.routes[0].is_default);
	assert_true(c.smpp_validity == 86400.0);
	assert_int_equal(c.webhook_concurrency, 20);
	assert_int_equal(c.webhook_per_account, 5);
	assert_int_equal(c.webhook_per_host, 4);
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
		"[smpp]\nport = 2776\nwindow = 5\nsystem_id = abc\nid_format = hex2dec\n"
		"[webhook]\nper_account = 3\nper_host = 2\n", err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(c.http_listen, "127.0.0.1:9000");
	assert_int_equal(c.max_body, 2048);
	assert_string_equal(c.conninfo, "host=/tmp dbname=x");
	assert_int_equal(c.batch_max, 7);
	assert_int_equal(c.n_routes, 1);
	assert_int_equal(c.routes[0].port, 2776);
	assert_int_equal(c.routes[0].window, 5);
	assert_string_equal(c.routes[0].system_id, "abc");
	assert_int_equal(c.webhook_per_account, 3);
	assert_int_equal(c.webhook_per_host, 2);
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
	assert_int_equal(config_load_string(&c, "[webhook]\nper_account = 0\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "per_account"));
	assert_int_equal(config_load_string(&c, "[webhook]\nper_host = 1001\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "per_host"));
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

static const char *routes_ini =
	"[route kt]\nport = 3000\nprefixes = 8210, 82101\nfailover = lg\n"
	"[smpp]\nwindow = 7\nsystem_id = shared\n"
	"[route lg]\nport = 3001\nprefixes = +8211\ndefault = yes\nbind_mode = tx+rx\nbinds = 2\ntps = 50\n"
	"[route skt]\nport = 3002\nprefixes = 821012\ntemporary_errors = 0x58, 20 ,0x400\nno_response = unknown\n";

static void test_config_routes_inherit_smpp_in_any_order(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, routes_ini, err, sizeof(err)), 0);
	assert_int_equal(c.n_routes, 3);
	const struct route_config *kt = config_route(&c, "kt"), *lg = config_route(&c, "lg");
	assert_non_null(kt);
	assert_non_null(lg);
	assert_int_equal(kt->window, 7);                 /* from [smpp], though declared later */
	assert_string_equal(kt->system_id, "shared");
	assert_int_equal(kt->port, 3000);
	assert_string_equal(kt->failover, "lg");
	assert_false(kt->is_default);
	assert_true(lg->is_default);
	assert_string_equal(lg->bind_mode, "tx+rx");
	assert_int_equal(lg->binds, 2);
	assert_true(lg->tps == 50.0);
	assert_null(config_route(&c, "nosuch"));
}

static void test_config_longest_prefix_wins_else_default(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, routes_ini, err, sizeof(err)), 0);
	assert_string_equal(config_route_for(&c, "821012345678")->name, "skt");   /* 821012 beats 82101 */
	assert_string_equal(config_route_for(&c, "821013345678")->name, "kt");    /* 82101 */
	assert_string_equal(config_route_for(&c, "821099999999")->name, "kt");    /* 8210 */
	assert_string_equal(config_route_for(&c, "821199999999")->name, "lg");
	assert_string_equal(config_route_for(&c, "447700900000")->name, "lg");    /* default */
}

static void test_config_without_default_route_some_numbers_have_none(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, "[route a]\nprefixes = 82\n[route b]\nprefixes = 44\n",
					    err, sizeof(err)), 0);
	assert_string_equal(config_route_for(&c, "8210")->name, "a");
	assert_null(config_route_for(&c, "3312345"));
}

static void test_config_temporary_errors_are_per_route(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, routes_ini, err, sizeof(err)), 0);
	const struct route_config *skt = config_route(&c, "skt"), *kt = config_route(&c, "kt");
	assert_true(config_route_temporary(skt, 0x58));
	assert_true(config_route_temporary(skt, 20));
	assert_true(config_route_temporary(skt, 0x400));
	assert_false(config_route_temporary(skt, 0x08));
	assert_true(config_route_temporary(kt, 0x08));    /* default list */
	assert_false(config_route_temporary(kt, 0x0B));
	assert_string_equal(skt->no_response, "unknown");
}

static void test_config_refuses_bad_routes(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load_string(&c, "[route a]\nfailover = b\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "failover"));
	assert_int_equal(config_load_string(&c, "[route a]\nfailover = a\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[route a]\nprefixes = 82x\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[route a]\nbind_mode = rx\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[route a]\nconcat = udh7\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[route a]\ntemporary_errors = fast\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[route a b]\nport = 1\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[route null]\nport = 1\n", err, sizeof(err)), -1);
	/* the single route's name obeys the same rule (regression, fuzz_config: it went to logs and metrics as written) */
	assert_int_equal(config_load_string(&c, "[smpp]\nroute = a b\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "[smpp] route"));
	assert_int_equal(config_load_string(&c, "[smpp]\nroute = kt\"x\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[smpp]\nroute =\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[smpp]\nroute = NULL\n", err, sizeof(err)), -1);
	assert_int_equal(config_load_string(&c, "[smpp]\nroute = kt-1.a_b\n", err, sizeof(err)), 0);
	assert_string_equal(c.routes[0].name, "kt-1.a_b");
	assert_int_equal(config_load_string(&c, "[route a]\ndefault = yes\n[route b]\ndefault = yes\n",
					    err, sizeof(err)), -1);
}

/* etc/pushgate.ini documents every default: loading it must change nothing. */
static void test_config_shipped_ini_matches_the_built_in_defaults(void **state)
{
	(void)state;
	const char *src = getenv("PUSHGATE_SRCDIR");
	char path[1024], err[256];
	snprintf(path, sizeof(path), "%s/etc/pushgate.ini", src ? src : ".");
	unsetenv("PUSHGATE_DB");
	struct config def, file;
	config_defaults(&def);
	int rc = config_load(&file, path, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s: %s", path, err);
	assert_memory_equal(&def.smpp, &file.smpp, sizeof(def.smpp));
	assert_string_equal(def.http_listen, file.http_listen);
	assert_int_equal(def.max_body, file.max_body);
	assert_int_equal(def.max_recipients, file.max_recipients);
	assert_int_equal(def.max_text, file.max_text);
	assert_string_equal(def.log_level, file.log_level);
	assert_string_equal(def.conninfo, file.conninfo);
	assert_int_equal(def.batch_max, file.batch_max);
	assert_int_equal(def.webhook_concurrency, file.webhook_concurrency);
	assert_int_equal(def.webhook_per_account, file.webhook_per_account);
	assert_int_equal(def.webhook_per_host, file.webhook_per_host);
	assert_true(def.reconnect_interval == file.reconnect_interval);
	assert_true(def.smpp_retry_min == file.smpp_retry_min);
	assert_true(def.smpp_validity == file.smpp_validity);
	assert_int_equal(file.n_routes, 1);
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
		cmocka_unit_test(test_config_routes_inherit_smpp_in_any_order),
		cmocka_unit_test(test_config_longest_prefix_wins_else_default),
		cmocka_unit_test(test_config_without_default_route_some_numbers_have_none),
		cmocka_unit_test(test_config_temporary_errors_are_per_route),
		cmocka_unit_test(test_config_refuses_bad_routes),
		cmocka_unit_test(test_config_shipped_ini_matches_the_built_in_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
