-- 020_resends: an SMS sent again because its submit_sm_resp was never
-- recorded (the node holding its lease crashed, or the lease expired) is an
-- event of kind 'resend' (state SMS_QUEUED): the carrier may deliver it
-- twice, and operators count these (`pushgatectl resends`, /metrics
-- pushgate_sms_resends_total).  They are rare, so a partial index finds them
-- by time without reading the history.  Events of the expiry path written
-- before this migration stay kind 'state' (their detail says "resend").

CREATE INDEX events_resend ON events (at) WHERE kind = 'resend';
