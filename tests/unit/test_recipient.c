/*
 * test_recipient.c: the transition table of recipient.c against its own
 * statements and against the state machine's rules: every edge's states
 * appear in the SQL that takes it, final states have no way out, every
 * other state has one, and every statement that writes recipients is in
 * the table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "recipient.h"

static const char *const states[] = {
	"ACCEPTED", "SCHEDULED", "HELD", "PUSH_SENT", "OPTED_OUT", "SMS_QUEUED", "SMS_SUBMITTED", "SMS_ACCEPTED",
	"PUSH_DELIVERED", "SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN", "DROPPED", "CANCELED",
};
#define N_STATES (sizeof(states) / sizeof(states[0]))

static int known(const char *s)
{
	for (size_t i = 0; i < N_STATES; i++)
		if (!strcmp(states[i], s))
			return 1;
	return 0;
}

static int quoted_in(const char *sql, const char *state)
{
	char q[40];
	snprintf(q, sizeof(q), "'%s'", state);
	return strstr(sql, q) != NULL;
}

static void every_edge_is_written_by_its_statement(void **st)
{
	(void)st;
	assert_true(recipient_edges_count >= 40);
	for (size_t i = 0; i < recipient_edges_count; i++) {
		const struct recipient_edge *e = &recipient_edges[i];
		assert_non_null(e->stmt);
		assert_non_null(e->on);
		assert_true(e->from[0] == '\0' || known(e->from));
		assert_true(known(e->to));
		const char *sql = e->stmt->sql;
		if (e->from[0] && !quoted_in(sql, e->from))
			fail_msg("edge %s -> %s: %s never names %s", e->from, e->to, e->stmt->name, e->from);
		if (e->decided ? !strstr(sql, "recipient_decide(") : !quoted_in(sql, e->to))
			fail_msg("edge %s -> %s: %s never writes %s", e->from, e->to, e->stmt->name, e->to);
		/* a new recipient starts ACCEPTED, and every statement that makes one writes it */
		if (!e->from[0])
			assert_string_equal(e->to, "ACCEPTED");
	}
}

static void final_states_have_no_way_out_and_the_others_have_one(void **st)
{
	(void)st;
	size_t finals = 0;
	for (size_t s = 0; s < N_STATES; s++) {
		int out = 0, in = 0;
		for (size_t i = 0; i < recipient_edges_count; i++) {
			out += !strcmp(recipient_edges[i].from, states[s]);
			in += !strcmp(recipient_edges[i].to, states[s]);
		}
		if (recipient_state_final(states[s])) {
			finals++;
			if (out)
				fail_msg("final state %s has %d way(s) out", states[s], out);
		} else if (!out) {
			fail_msg("%s is not final and has no way out", states[s]);
		}
		if (!in)
			fail_msg("no edge reaches %s", states[s]);
		if (quoted_in(RECIPIENT_OPEN_SQL, states[s]) == recipient_state_final(states[s]))
			fail_msg("%s is %s RECIPIENT_OPEN_SQL", states[s], recipient_state_final(states[s]) ? "final and in"
				 : "open and not in");
	}
	assert_int_equal(finals, 7);
	assert_false(recipient_state_final("SMS_DELIVERE"));
	assert_false(recipient_state_final(""));
	assert_false(recipient_state_final(NULL));
	assert_true(recipient_state_final("CANCELED"));
}

static void a_cancel_reaches_every_cancelable_state_and_only_those(void **st)
{
	(void)st;
	for (size_t s = 0; s < N_STATES; s++) {
		int canceled = 0;
		for (size_t i = 0; i < recipient_edges_count; i++)
			canceled |= !strcmp(recipient_edges[i].from, states[s]) && !strcmp(recipient_edges[i].to, "CANCELED");
		assert_int_equal(canceled, quoted_in(RECIPIENT_CANCELABLE_SQL, states[s]));
		/* nothing cancelable is final */
		if (quoted_in(RECIPIENT_CANCELABLE_SQL, states[s]))
			assert_false(recipient_state_final(states[s]));
	}
}

static void every_statement_that_writes_recipients_is_in_the_table(void **st)
{
	(void)st;
	const struct store_stmt *all[] = {
		&recipient_stmt_intake, &recipient_stmt_release, &recipient_stmt_sms_lease, &recipient_stmt_sms_resp,
		&recipient_stmt_sms_receipts, &recipient_stmt_apply_parked, &recipient_stmt_sweep,
		&recipient_stmt_take_back, &recipient_stmt_push_acks, &recipient_stmt_push_reject,
		&recipient_stmt_invite, &recipient_stmt_device_register, &recipient_stmt_batch_cancel,
		&recipient_stmt_cancel_one,
	};
	for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
		int found = 0;
		for (size_t i = 0; i < recipient_edges_count; i++)
			found |= recipient_edges[i].stmt == all[k];
		if (!found)
			fail_msg("%s writes recipients and takes no edge of the table", all[k]->name);
	}
	/* the code scrub writes recipients' text, never their state */
	assert_null(strstr(recipient_stmt_code_scrub.sql, "state ="));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_edge_is_written_by_its_statement),
		cmocka_unit_test(final_states_have_no_way_out_and_the_others_have_one),
		cmocka_unit_test(a_cancel_reaches_every_cancelable_state_and_only_those),
		cmocka_unit_test(every_statement_that_writes_recipients_is_in_the_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
