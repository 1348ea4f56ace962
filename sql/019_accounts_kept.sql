-- 019_accounts_kept: accounts are never deleted (pushgatectl account disable
-- stops one; its history stays), so a message's account_id cannot dangle:
-- triggers refuse deleting an account, truncating accounts or changing an
-- account's id, and messages give up their foreign key on accounts.  That
-- key's check locked the account's row once per message stored (1 to 4 us a
-- message on the everyday path, more as the same row is locked by every
-- intake); the intake statement's admission (intake_admit, sql/018) fails a
-- group that names an account that does not exist, once per group.

ALTER TABLE messages DROP CONSTRAINT messages_account_id_fkey;

-- Its functions, triggers and views are in sql/functions/ now, where each
-- is kept up to date (src/migrate.c applies them after the migrations).
