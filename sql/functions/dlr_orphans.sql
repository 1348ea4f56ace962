-- Orphan receipts (parked longer than a minute: no submit of ours carries that id).
CREATE OR REPLACE VIEW dlr_orphans AS
    SELECT * FROM dlr_parked WHERE received_at < now() - interval '1 minute';
