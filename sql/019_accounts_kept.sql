-- 019_accounts_kept: accounts are never deleted (pushgatectl account disable
-- stops one; its history stays), so a message's account_id cannot dangle:
-- triggers refuse deleting an account, truncating accounts or changing an
-- account's id, and messages give up their foreign key on accounts.  That
-- key's check locked the account's row once per message stored (1 to 4 us a
-- message on the everyday path, more as the same row is locked by every
-- intake); the intake statement's admission (intake_admit, sql/018) fails a
-- group that names an account that does not exist, once per group.
CREATE FUNCTION accounts_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'accounts are never deleted nor renumbered (pushgatectl account disable stops one)'
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER accounts_never_deleted BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_kept();
CREATE TRIGGER accounts_never_renumbered BEFORE UPDATE OF id ON accounts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION accounts_kept();
CREATE TRIGGER accounts_never_truncated BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_kept();

ALTER TABLE messages DROP CONSTRAINT messages_account_id_fkey;
