-- 016_account_rate_limit: recipients an account may send per minute, per
-- pushgated node, over the HTTP API and Kannel's sendsms (0: no limit);
-- bursts up to a minute's worth. Set with pushgatectl account limit.
ALTER TABLE accounts ADD COLUMN rate_limit integer NOT NULL DEFAULT 0 CHECK (rate_limit >= 0);
