/* test_msgjson.c: the JSON form of a message (POST /v1/messages bodies), field by field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "msgjson.h"

struct outcome {
	int rc;
	const char *code, *field;
	char msg[256];
	struct msgjson m;
	void *json;
};

static struct config cfg;

static void parse(const char *body, struct outcome *o)
{
	config_defaults(&cfg);
	cfg.max_recipients = 3;
	cfg.max_text = 10;
	o->rc = msgjson_parse(body, strlen(body), &cfg, &o->m, &o->json, &o->code, &o->field,
				  o->msg, sizeof(o->msg));
}

static void done(struct outcome *o) { msgjson_free(&o->m, o->json); }

static void expect_error(const char *body, const char *code, const char *field)
{
	struct outcome o;
	parse(body, &o);
	assert_int_equal(o.rc, -1);
	assert_string_equal(o.code, code);
	if (field)
		assert_string_equal(o.field, field);
	else
		assert_null(o.field);
	assert_true(strlen(o.msg) > 0);
	done(&o);
}

static void test_msgjson_accepts_a_valid_message(void **state)
{
	(void)state;
	struct outcome o;
	parse("{\"from\":\"ACME\",\"to\":[\"+821012345678\",\"821099998888\"],\"text\":\"hi\"}", &o);
	assert_int_equal(o.rc, 0);
	assert_string_equal(o.m.from, "ACME");
	assert_int_equal(o.m.n_to, 2);
	assert_string_equal(o.m.to[0], "821012345678");   /* '+' stripped */
	assert_string_equal(o.m.text, "hi");
	done(&o);
}

static void test_msgjson_deduplicates_recipients_keeping_order(void **state)
{
	(void)state;
	struct outcome o;
	parse("{\"from\":\"A\",\"to\":[\"111\",\"222\",\"+111\"],\"text\":\"x\"}", &o);
	assert_int_equal(o.rc, 0);
	assert_int_equal(o.m.n_to, 2);
	assert_string_equal(o.m.to[0], "111");
	assert_string_equal(o.m.to[1], "222");
	done(&o);
}

static void test_msgjson_single_recipient_string_is_accepted(void **state)
{
	(void)state;
	struct outcome o;
	parse("{\"from\":\"A\",\"to\":\"821012345678\",\"text\":\"x\"}", &o);
	assert_int_equal(o.rc, 0);
	assert_int_equal(o.m.n_to, 1);
	done(&o);
}

static void test_msgjson_rejects_invalid_json(void **state)
{
	(void)state;
	expect_error("{\"from\":", "invalid_json", NULL);
	expect_error("[1,2]", "invalid_json", NULL);
	expect_error("{\"from\":\"A\",\"from\":\"B\",\"to\":[\"111\"],\"text\":\"x\"}", "invalid_json", NULL);
}

static void test_msgjson_names_the_bad_field(void **state)
{
	(void)state;
	expect_error("{\"to\":[\"111\"],\"text\":\"x\"}", "invalid_field", "from");
	expect_error("{\"from\":5,\"to\":[\"111\"],\"text\":\"x\"}", "invalid_field", "from");
	expect_error("{\"from\":\"\",\"to\":[\"111\"],\"text\":\"x\"}", "invalid_field", "from");
	expect_error("{\"from\":\"ABCDEFGHIJKLMNOPQRSTU\",\"to\":[\"111\"],\"text\":\"x\"}", "invalid_field", "from");
	expect_error("{\"from\":\"A\",\"text\":\"x\"}", "invalid_field", "to");
	expect_error("{\"from\":\"A\",\"to\":[],\"text\":\"x\"}", "invalid_field", "to");
	expect_error("{\"from\":\"A\",\"to\":[\"12\"],\"text\":\"x\"}", "invalid_field", "to");
	expect_error("{\"from\":\"A\",\"to\":[\"12a45\"],\"text\":\"x\"}", "invalid_field", "to");
	expect_error("{\"from\":\"A\",\"to\":[123456],\"text\":\"x\"}", "invalid_field", "to");
	expect_error("{\"from\":\"A\",\"to\":[\"123456789012345678901\"],\"text\":\"x\"}", "invalid_field", "to");
	expect_error("{\"from\":\"A\",\"to\":[\"111\",\"222\",\"333\",\"444\"],\"text\":\"x\"}", "invalid_field", "to");
	expect_error("{\"from\":\"A\",\"to\":[\"111\"]}", "invalid_field", "text");
	expect_error("{\"from\":\"A\",\"to\":[\"111\"],\"text\":\"\"}", "invalid_field", "text");
	expect_error("{\"from\":\"A\",\"to\":[\"111\"],\"text\":[\"x\"]}", "invalid_field", "text");
	expect_error("{\"from\":\"A\",\"to\":[\"111\"],\"text\":\"12345678901\"}", "invalid_field", "text");
	/* jansson refuses \\u0000 in strings outright */
	expect_error("{\"from\":\"A\",\"to\":[\"111\"],\"text\":\"a\\u0000b\"}", "invalid_json", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msgjson_accepts_a_valid_message),
		cmocka_unit_test(test_msgjson_deduplicates_recipients_keeping_order),
		cmocka_unit_test(test_msgjson_single_recipient_string_is_accepted),
		cmocka_unit_test(test_msgjson_rejects_invalid_json),
		cmocka_unit_test(test_msgjson_names_the_bad_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
