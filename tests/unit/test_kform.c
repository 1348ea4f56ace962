/* test_kform.c: Kannel sendsms parameters: form decoding, where each parameter is read, charsets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "kform.h"

static int parse_query(const char *query, struct kform_msg *m)
{
	struct kform_src src = { .query = query, .query_len = strlen(query) };
	return kform_parse(m, &src, NULL, 0, "", 0, 1000, 4096);
}

static void test_kform_decodes_form_values_and_keeps_each_receiver_once(void **state)
{
	(void)state;
	struct kform_msg m;
	assert_int_equal(parse_query("to=8210111+%2B82-10-222+8210111+12ab&from=ACME&text=Hello+%ED%95%9C+100%25+%zz"
				     "&dlr-url=http://h/d?s=%25d&dlr-mask=3&validity=60&channels=sms", &m), 0);
	assert_int_equal(m.n_to, 2);
	assert_string_equal(m.to[0], "8210111");
	assert_string_equal(m.to[1], "8210222");
	assert_string_equal(m.denied, " 12ab");
	assert_string_equal(m.from, "ACME");
	assert_string_equal(m.text, "Hello \xed\x95\x9c 100% %zz");
	assert_string_equal(m.dlr_url, "http://h/d?s=%d");
	assert_int_equal(m.dlr_mask, 3);
	assert_int_equal(m.validity, 60);
	assert_int_equal(m.deferred, -1);
	assert_string_equal(m.channels, "sms");
	kform_msg_free(&m);
}

static const char *headers(const void *arg, const char *name)
{
	(void)arg;
	if (strcasecmp(name, "X-Kannel-From") == 0)
		return "HDR";
	if (strcasecmp(name, "X-Kannel-To") == 0)
		return "8210999";
	return NULL;
}

static void test_kform_reads_the_form_then_the_headers_then_the_query(void **state)
{
	(void)state;
	static const char form[] = "to=8210111&text=form";
	static const char query[] = "from=Q&to=8210333&text=q&charset=ISO-8859-1";
	struct kform_src src = { .form = form, .form_len = strlen(form), .header = headers,
				 .query = query, .query_len = strlen(query) };
	struct kform_msg m;
	assert_int_equal(kform_parse(&m, &src, NULL, 0, "", 0, 1000, 4096), 0);
	assert_int_equal(m.n_to, 1);
	assert_string_equal(m.to[0], "8210111");
	assert_string_equal(m.from, "HDR");
	assert_string_equal(m.text, "form");
	kform_msg_free(&m);
}

static void test_kform_raw_body_is_read_in_the_content_type_charset(void **state)
{
	(void)state;
	char cs[KFORM_CHARSET_MAX];
	kform_content_charset("text/plain; charset=\"ISO-8859-1\"", cs, sizeof(cs));
	assert_string_equal(cs, "ISO-8859-1");
	kform_content_charset("text/plain", cs, sizeof(cs));
	assert_string_equal(cs, "");
	kform_content_charset(NULL, cs, sizeof(cs));
	assert_string_equal(cs, "");

	static const char query[] = "to=8210111&from=A";
	struct kform_src src = { .header = headers, .query = query, .query_len = strlen(query) };
	struct kform_msg m;
	assert_int_equal(kform_parse(&m, &src, "caf\xe9", 4, "ISO-8859-1", 0, 1000, 4096), 0);
	assert_string_equal(m.text, "caf\xc3\xa9");
	kform_msg_free(&m);
	/* application/octet-stream is 8-bit, which pushgate does not send */
	assert_int_equal(kform_parse(&m, &src, "caf\xe9", 4, "", 1, 1000, 4096), -1);
	assert_string_equal(m.bad_text, "8-bit (binary) coding is not supported, rejected");
	kform_msg_free(&m);
}

/*
 * Regression (fuzz_kannel): glibc's iconv passes code points past U+10FFFF
 * from UTF-8 (and UCS-4) to UTF-8; PostgreSQL refuses such text, so the
 * message failed its intake statement (500) instead of being refused.
 */
static void test_kform_refuses_text_past_u10ffff_whatever_the_charset(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"to=8210111&from=A&text=%F4%90%80%80",
		"to=8210111&from=A&text=ok%F7%BF%BF%BF",
		"to=8210111&from=A&text=%F8%88%80%80%80",
		"to=8210111&from=A&charset=UCS-4&text=%00%11%00%00",
		"to=8210111&from=A&text=%ED%A0%80",
	};
	struct kform_msg m;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_query(bad[i], &m), -1);
		assert_string_equal(m.bad_text, "Charset or body misformed, rejected");
		kform_msg_free(&m);
	}
	assert_int_equal(parse_query("to=8210111&from=A&text=%F4%8F%BF%BF%F0%9F%99%82", &m), 0);
	assert_string_equal(m.text, "\xf4\x8f\xbf\xbf\xf0\x9f\x99\x82");
	kform_msg_free(&m);
	assert_int_equal(parse_query("to=8210111&from=A&coding=2&text=%D8%3D%DE%42", &m), 0);
	assert_string_equal(m.text, "\xf0\x9f\x99\x82");
	kform_msg_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kform_decodes_form_values_and_keeps_each_receiver_once),
		cmocka_unit_test(test_kform_reads_the_form_then_the_headers_then_the_query),
		cmocka_unit_test(test_kform_raw_body_is_read_in_the_content_type_charset),
		cmocka_unit_test(test_kform_refuses_text_past_u10ffff_whatever_the_charset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
