-- migrate: online
-- 033_sms_parts_smsc_newest: a receipt names its part by (route, smsc_id),
-- and the newest such part is taken (ORDER BY recipient_id DESC LIMIT 1).
-- With sms_parts_route_smsc_id on (route, smsc_id) alone, that sorted what
-- every history range held, one probe per range for each receipt: the cost
-- grew with the ranges kept.  With recipient_id in the key, each range gives
-- its parts newest first, and since the ranges are ordered (sms_parts has no
-- default partition) the plan is an ordered Append read newest range first
-- that stops at the first part found: a receipt for a recent message costs
-- one probe of the newest range or two.
-- Built CONCURRENTLY on each partition (the statement list is made from the
-- catalog and run by migrate), each attached to the parent's index made ON
-- ONLY, which becomes valid with the last one; a range made meanwhile gets
-- its index from the parent's.  Safe to run again: a partition whose index
-- is not attached yet has it dropped and built again.
CREATE INDEX IF NOT EXISTS sms_parts_smsc_newest ON ONLY sms_parts (route, smsc_id, recipient_id);
SELECT l.stmt AS migrate_run
FROM (SELECT c.relname, 'sms_parts_smsc_newest_' || substr(c.relname, length('sms_parts_') + 1) AS idx
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'sms_parts'::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_inherits ii JOIN pg_index x ON x.indexrelid = ii.inhrelid
                        WHERE ii.inhparent = 'sms_parts_smsc_newest'::regclass AND x.indrelid = c.oid)) p
CROSS JOIN LATERAL unnest(ARRAY[
    format('DROP INDEX CONCURRENTLY IF EXISTS %I', p.idx),
    format('CREATE INDEX CONCURRENTLY %I ON %I (route, smsc_id, recipient_id)', p.idx, p.relname),
    format('ALTER INDEX sms_parts_smsc_newest ATTACH PARTITION %I', p.idx)]) WITH ORDINALITY AS l(stmt, n)
ORDER BY p.relname, l.n;
DROP INDEX IF EXISTS sms_parts_route_smsc_id;
