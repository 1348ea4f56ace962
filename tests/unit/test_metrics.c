/* test_metrics.c: Prometheus text (families, labels escaped), histograms, per-account counters. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static void test_metrics_family_has_help_and_type_then_samples(void **state)
{
	(void)state;
	struct metrics_out o = { 0 };
	metrics_one(&o, "pushgate_x_total", METRICS_COUNTER, "things\\done\nhere", 42);
	const char *lab[] = { "route", "a", "bind", "b", NULL };
	metrics_family(&o, "pushgate_g", METRICS_GAUGE, "a gauge");
	metrics_u64(&o, "pushgate_g", lab, 7);
	metrics_double(&o, "pushgate_g", NULL, -1);
	assert_false(o.oom);
	assert_string_equal(metrics_text(&o),
			    "# HELP pushgate_x_total things\\\\done\\nhere\n"
			    "# TYPE pushgate_x_total counter\n"
			    "pushgate_x_total 42\n"
			    "# HELP pushgate_g a gauge\n"
			    "# TYPE pushgate_g gauge\n"
			    "pushgate_g{route=\"a\",bind=\"b\"} 7\n"
			    "pushgate_g -1\n");
	metrics_out_free(&o);
}

static void test_metrics_label_values_cannot_break_the_line(void **state)
{
	(void)state;
	struct metrics_out o = { 0 };
	const char *lab[] = { "route", "evil\"} 1\nfake_metric{x=\"\\", NULL };
	metrics_u64(&o, "pushgate_g", lab, 1);
	assert_string_equal(metrics_text(&o), "pushgate_g{route=\"evil\\\"} 1\\nfake_metric{x=\\\"\\\\\"} 1\n");
	metrics_out_free(&o);
}

static void test_metrics_histogram_is_cumulative_with_inf_sum_and_count(void **state)
{
	(void)state;
	static const struct metrics_bounds b = { 3, { 0.1, 1, 10 } };
	struct metrics_histogram h;
	metrics_histogram_init(&h, &b);
	metrics_observe(&h, 0.05);
	metrics_observe(&h, 0.1);    /* le is inclusive */
	metrics_observe(&h, 0.5);
	metrics_observe(&h, 100);
	metrics_observe(&h, -3);     /* a clock step back counts as 0 */
	struct metrics_out o = { 0 };
	const char *lab[] = { "route", "r", NULL };
	metrics_histogram_write(&o, "pushgate_h_seconds", lab, &h);
	assert_string_equal(metrics_text(&o),
			    "pushgate_h_seconds_bucket{route=\"r\",le=\"0.1\"} 3\n"
			    "pushgate_h_seconds_bucket{route=\"r\",le=\"1\"} 4\n"
			    "pushgate_h_seconds_bucket{route=\"r\",le=\"10\"} 4\n"
			    "pushgate_h_seconds_bucket{route=\"r\",le=\"+Inf\"} 5\n"
			    "pushgate_h_seconds_sum{route=\"r\"} 100.65\n"
			    "pushgate_h_seconds_count{route=\"r\"} 5\n");
	metrics_out_free(&o);
}

static void test_metrics_observes_a_postgres_array(void **state)
{
	(void)state;
	struct metrics_histogram h;
	metrics_histogram_init(&h, &metrics_final_bounds);
	metrics_observe_pgarray(&h, "{0.250,12.000,NULL,3600.5}");
	assert_int_equal(h.count, 3);
	assert_true(h.sum > 3612.7 && h.sum < 3612.8);
	metrics_observe_pgarray(&h, NULL);
	metrics_observe_pgarray(&h, "");
	metrics_observe_pgarray(&h, "{}");
	metrics_observe_pgarray(&h, "{junk,1}");
	assert_int_equal(h.count, 4);
}

static void test_metrics_accounts_stop_at_max_then_other(void **state)
{
	(void)state;
	struct metrics_accounts *a = metrics_accounts_new(2);
	assert_non_null(a);
	metrics_accounts_add(a, 7, 0, 5);
	metrics_accounts_add(a, 9, 0, 1);
	metrics_accounts_add(a, 11, 0, 3);   /* a third: other */
	metrics_accounts_add(a, 7, 0, 1);
	metrics_accounts_add(a, 12, 1, 2);
	struct metrics_out o = { 0 };
	metrics_accounts_write(&o, "pushgate_a_total", a, 0);
	const char *t = metrics_text(&o);
	assert_non_null(strstr(t, "pushgate_a_total{account=\"7\"} 6\n"));
	assert_non_null(strstr(t, "pushgate_a_total{account=\"9\"} 1\n"));
	assert_non_null(strstr(t, "pushgate_a_total{account=\"other\"} 3\n"));
	assert_null(strstr(t, "\"11\""));
	metrics_out_free(&o);
	metrics_accounts_write(&o, "pushgate_b_total", a, 1);
	assert_string_equal(metrics_text(&o), "pushgate_b_total{account=\"other\"} 2\n");
	metrics_out_free(&o);
	metrics_accounts_free(a);

	a = metrics_accounts_new(0);   /* none kept */
	metrics_accounts_add(a, 1, 0, 4);
	metrics_accounts_write(&o, "pushgate_a_total", a, 0);
	assert_string_equal(metrics_text(&o), "pushgate_a_total{account=\"other\"} 4\n");
	metrics_out_free(&o);
	metrics_accounts_free(a);
}

static void test_metrics_accounts_keep_many_without_losing_one(void **state)
{
	(void)state;
	struct metrics_accounts *a = metrics_accounts_new(1000);
	for (long long id = 1; id <= 1000; id++)
		metrics_accounts_add(a, id * 4096, 0, (unsigned long long)id);   /* ids that share low bits */
	metrics_accounts_add(a, 5, 0, 1);
	struct metrics_out o = { 0 };
	metrics_accounts_write(&o, "pushgate_a_total", a, 0);
	assert_non_null(strstr(metrics_text(&o), "pushgate_a_total{account=\"4096000\"} 1000\n"));
	assert_non_null(strstr(metrics_text(&o), "pushgate_a_total{account=\"other\"} 1\n"));
	metrics_out_free(&o);
	metrics_accounts_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_family_has_help_and_type_then_samples),
		cmocka_unit_test(test_metrics_label_values_cannot_break_the_line),
		cmocka_unit_test(test_metrics_histogram_is_cumulative_with_inf_sum_and_count),
		cmocka_unit_test(test_metrics_observes_a_postgres_array),
		cmocka_unit_test(test_metrics_accounts_stop_at_max_then_other),
		cmocka_unit_test(test_metrics_accounts_keep_many_without_losing_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
