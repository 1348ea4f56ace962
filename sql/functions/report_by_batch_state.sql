-- One batch's recipients per current state (index-only on recipients_batch_state).
CREATE OR REPLACE VIEW report_by_batch_state AS
    SELECT batch_id, state, count(*) AS recipients
    FROM recipients WHERE batch_id IS NOT NULL
    GROUP BY batch_id, state;
