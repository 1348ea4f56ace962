-- Accounts are never deleted, truncated nor renumbered (pushgatectl account
-- disable stops one): messages, usage and reports keep naming them, and
-- messages hold no foreign key on accounts (its check locked the account's
-- row once per message stored).
CREATE OR REPLACE FUNCTION accounts_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'accounts are never deleted nor renumbered (pushgatectl account disable stops one)'
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE OR REPLACE TRIGGER accounts_never_deleted BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_kept();

CREATE OR REPLACE TRIGGER accounts_never_renumbered BEFORE UPDATE OF id ON accounts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION accounts_kept();

CREATE OR REPLACE TRIGGER accounts_never_truncated BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_kept();
