-- 021_origin_columns: a message's origin travels in its own columns.
--
-- 007 and 008 let sendsms and the SMPP server smuggle their origin through
-- callback_url ('kannel-dlr:MASK:URL', 'smpp:ACCOUNT:REGISTERED'), decoded
-- by BEFORE INSERT triggers. The intake statement has long passed dlr_url,
-- dlr_mask, smpp_account_id and smpp_registered as parameters of their own,
-- so no door writes those strings any more; the triggers only cost a test
-- per inserted message, and would turn a customer's callback_url that
-- happened to start so into something else. They go.
-- (IF EXISTS: a database made after the functions moved to sql/functions/
-- never had them.)

DROP TRIGGER IF EXISTS messages_kannel_dlr ON messages;
DROP FUNCTION IF EXISTS kannel_dlr_take();
DROP TRIGGER IF EXISTS messages_smpp_take ON messages;
DROP FUNCTION IF EXISTS smpp_message_take();
