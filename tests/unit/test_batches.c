/* test_batches.c: campaigns' CSV reader and text template (batch_csv.c, shared by POST /v1/batches and pushgatectl). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "batch_csv.h"

static void test_batch_tpl_renders_variables_and_keeps_other_braces(void **state)
{
	(void)state;
	struct batch_tpl t;
	char err[128], out[64];
	const char *vals[] = { "Kim", "1234" };
	const size_t lens[] = { 3, 4 };
	assert_int_equal(batch_tpl_compile(&t, "{name}: {code} {} {1x} {name}", err, sizeof(err)), 0);
	assert_int_equal(t.nvars, 2);
	assert_string_equal(t.vars[0], "name");
	assert_string_equal(t.vars[1], "code");
	assert_int_equal(batch_tpl_render(&t, vals, lens, out, sizeof(out)), 21);
	assert_string_equal(out, "Kim: 1234 {} {1x} Kim");
	assert_int_equal(batch_tpl_render(&t, vals, lens, out, 21), -1);   /* no room for the NUL */
}

static void test_batch_csv_record_keeps_line_ends_inside_quotes(void **state)
{
	(void)state;
	const char in[] = "8210111,\"a\r\nb\"\r\nrest";
	size_t rl, next;
	assert_int_equal(batch_csv_record(in, sizeof(in) - 1, &rl, &next), 1);
	assert_int_equal(rl, 14);
	assert_int_equal(next, 16);
	assert_int_equal(batch_csv_record(in + next, sizeof(in) - 1 - next, &rl, &next), 0);
	assert_int_equal(rl, 4);
}

/*
 * Regression: a header of the widest allowed size (129 columns) and a row
 * with one field more.  The row's split wrote one field past the per-field
 * arrays (a heap overflow; glibc aborts on the corrupted heap); it must be
 * refused.  fuzz_csv's widest_header seed covers the same case.
 */
static void test_batch_csv_row_with_a_field_more_than_the_widest_header_is_refused(void **state)
{
	(void)state;
	char hdr[2048] = "to", row[2048] = "8210111", msg[160], to[21];
	const char *field = NULL, *text = NULL;
	struct batch_csv c;
	for (int i = 1; i < BATCH_TPL_MAX_VARS * 4 + 1; i++) {
		char col[16];
		snprintf(col, sizeof(col), ",c%d", i);
		strcat(hdr, col);
		strcat(row, ",x");
	}
	assert_int_equal(batch_csv_open(&c, hdr, strlen(hdr), "hi {c1}", 160, &field, msg, sizeof(msg)), 0);
	assert_int_equal(c.ncols, BATCH_TPL_MAX_VARS * 4 + 1);
	assert_int_equal(batch_csv_row(&c, row, strlen(row), to, &text, &field, msg, sizeof(msg)), BATCH_ROW_OK);
	assert_string_equal(text, "hi x");
	strcat(row, ",x");
	row[1] = '9';   /* not a duplicate */
	assert_int_equal(batch_csv_row(&c, row, strlen(row), to, &text, &field, msg, sizeof(msg)), BATCH_ROW_BAD);
	assert_string_equal(field, "csv");
	assert_non_null(strstr(msg, "expected 129 fields"));
	strcat(row, ",x,x");
	assert_int_equal(batch_csv_row(&c, row, strlen(row), to, &text, &field, msg, sizeof(msg)), BATCH_ROW_BAD);
	batch_csv_close(&c);

	/* one column more is a header error */
	strcat(hdr, ",c129");
	assert_int_equal(batch_csv_open(&c, hdr, strlen(hdr), "hi", 160, &field, msg, sizeof(msg)), -1);
	assert_string_equal(field, "csv");
	batch_csv_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_tpl_renders_variables_and_keeps_other_braces),
		cmocka_unit_test(test_batch_csv_record_keeps_line_ends_inside_quotes),
		cmocka_unit_test(test_batch_csv_row_with_a_field_more_than_the_widest_header_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
