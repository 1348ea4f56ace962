/* test_jstream.c: a JSON object read as it arrives, in any pieces. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "jstream.h"

/* What the callback saw, one line per event: "M key=raw", "[", "E raw", "]". */
struct seen {
	char log[4096];
	int  stop_every;   /* stop after every Nth event (0: never) */
	int  events;
};

static int record(void *arg, enum jstream_event ev, const char *key, const char *raw, size_t len)
{
	struct seen *s = arg;
	char line[512];
	switch (ev) {
	case JSTREAM_MEMBER: snprintf(line, sizeof(line), "M %s=%.*s\n", key, (int)len, raw); break;
	case JSTREAM_ARRAY_START: snprintf(line, sizeof(line), "[ %s\n", key); break;
	case JSTREAM_ELEMENT: snprintf(line, sizeof(line), "E %.*s\n", (int)len, raw); break;
	case JSTREAM_ARRAY_END: snprintf(line, sizeof(line), "]\n"); break;
	}
	strncat(s->log, line, sizeof(s->log) - strlen(s->log) - 1);
	s->events++;
	return s->stop_every && s->events % s->stop_every == 0;
}

/* Feeds doc in pieces of step bytes, going on after every stop; the result of jstream_finish. */
static int run(const char *doc, size_t step, int stop_every, struct seen *s, struct jstream *js)
{
	memset(s, 0, sizeof(*s));
	s->stop_every = stop_every;
	assert_int_equal(jstream_init(js, "recipients", 64), 0);
	size_t n = strlen(doc), at = 0;
	while (at < n) {
		size_t len = n - at < step ? n - at : step;
		long used = jstream_feed(js, doc + at, len, record, s);
		if (used < 0)
			return -1;
		at += (size_t)used;
	}
	return jstream_finish(js);
}

static const char DOC[] =
	" {\"from\": \"ACME\", \"text\": \"hi {name}, \\\"quoted\\\" ] } ,\",\n"
	"  \"channels\": [\"push\", \"sms\"], \"validity\": 3600,\n"
	"  \"recipients\": [\"821012345671\", {\"to\": \"821012345672\", \"name\": \"B{]\"}, 821012345673],\n"
	"  \"name\": null }\n";

static const char WANT[] =
	"M from=\"ACME\"\n"
	"M text=\"hi {name}, \\\"quoted\\\" ] } ,\"\n"
	"M channels=[\"push\", \"sms\"]\n"
	"M validity=3600\n"
	"[ recipients\n"
	"E \"821012345671\"\n"
	"E {\"to\": \"821012345672\", \"name\": \"B{]\"}\n"
	"E 821012345673\n"
	"]\n"
	"M name=null\n";

static void test_jstream_gives_members_and_elements_whatever_the_pieces(void **state)
{
	(void)state;
	struct seen s;
	struct jstream js;
	for (size_t step = 1; step <= sizeof(DOC); step++) {
		for (int stop = 0; stop <= 3; stop++) {
			assert_int_equal(run(DOC, step, stop, &s, &js), 0);
			assert_string_equal(s.log, WANT);
			jstream_free(&js);
		}
	}
}

static void test_jstream_refuses_broken_documents_with_a_reason(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"[1, 2]",                                  /* not an object */
		"{\"a\": 1",                               /* ends early */
		"{\"a\": 1,}",                             /* trailing comma */
		"{\"a\" 1}",                               /* no colon */
		"{\"a\": }",                               /* no value */
		"{\"recipients\": [1,]}",                  /* trailing comma in the array */
		"{\"recipients\": [1 2]}",                 /* no comma */
		"{\"recipients\": [1], \"recipients\": [2]}", /* repeated */
		"{\"a\": 1} x",                            /* after the object */
		"{\"a\\u0062\": 1}",                       /* escaped name */
		"{\"a\": \"" "0123456789012345678901234567890123456789012345678901234567890123456789" "\"}", /* too long */
		"{\"recipients\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct seen s;
		struct jstream js;
		int r = run(bad[i], 7, 0, &s, &js);
		if (r == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_true(js.err[0] != '\0');
		jstream_free(&js);
	}
}

static void test_jstream_an_empty_object_and_an_empty_array_are_whole(void **state)
{
	(void)state;
	struct seen s;
	struct jstream js;
	assert_int_equal(run(" {} ", 1, 0, &s, &js), 0);
	assert_string_equal(s.log, "");
	jstream_free(&js);
	assert_int_equal(run("{\"recipients\": [ ]}", 2, 0, &s, &js), 0);
	assert_string_equal(s.log, "[ recipients\n]\n");
	jstream_free(&js);
}

static int refuse_second(void *arg, enum jstream_event ev, const char *key, const char *raw, size_t len)
{
	(void)key, (void)raw, (void)len;
	int *n = arg;
	return ev == JSTREAM_ELEMENT && ++*n == 2 ? -1 : 0;
}

static void test_jstream_a_refusal_ends_the_stream(void **state)
{
	(void)state;
	struct jstream js;
	int n = 0;
	assert_int_equal(jstream_init(&js, "recipients", 64), 0);
	const char doc[] = "{\"recipients\": [1, 2, 3]}";
	assert_int_equal(jstream_feed(&js, doc, sizeof(doc) - 1, refuse_second, &n), -1);
	assert_int_equal(jstream_feed(&js, "}", 1, refuse_second, &n), -1);
	assert_int_equal(jstream_finish(&js), -1);
	jstream_free(&js);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jstream_gives_members_and_elements_whatever_the_pieces),
		cmocka_unit_test(test_jstream_refuses_broken_documents_with_a_reason),
		cmocka_unit_test(test_jstream_an_empty_object_and_an_empty_array_are_whole),
		cmocka_unit_test(test_jstream_a_refusal_ends_the_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
