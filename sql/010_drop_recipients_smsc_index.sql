-- 010_drop_recipients_smsc_index: receipts find their recipient through
-- sms_parts (route, smsc_id) since 002; nothing reads recipients by
-- (route, smsc_id) any more, yet every response and every final receipt
-- (two updates per SMS recipient, neither of them HOT: the state is in
-- partial index predicates) inserted an entry into this index.
-- Operators looking up an SMSC id use sms_parts_route_smsc_id.
DROP INDEX IF EXISTS recipients_route_smsc_id;
