-- 022_wakeups: platform push (docs/device-protocol.md section 4).  A
-- device may register one platform endpoint through which pushgated wakes
-- it while it has no live WebSocket: a Web Push subscription (endpoint,
-- p256dh, auth), an FCM registration token or an APNs device token.
-- devices.socket_node names the node that holds the device's authenticated
-- WebSocket (NULL: none; a node that holds no advisory lock on its name is
-- gone, so its sockets count as none).  wakes: one row per platform push
-- of a recipient to a device, claimed by the node that sends it (the
-- primary key makes the claim unique across nodes), then its outcome; each
-- attempt is also an event of kind 'wake' in the recipient's history.

ALTER TABLE devices ADD COLUMN socket_node text;

CREATE TABLE device_wakeups (
    device_id    bigint PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('webpush', 'fcm', 'apns')),
    endpoint     text NOT NULL,                -- webpush: the push service URL; fcm, apns: the token
    p256dh       bytea,                        -- webpush: the user agent's public key (65 bytes)
    auth         bytea,                        -- webpush: the subscription's auth secret (16 bytes)
    app          text NOT NULL DEFAULT '',     -- fcm, apns: the app's configuration section
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,                  -- the device removed it, or the push service said it is gone
    revoked_why  text,
    CHECK (kind <> 'webpush' OR (octet_length(p256dh) = 65 AND octet_length(auth) = 16))
);

CREATE TABLE wakes (
    recipient_id  bigint NOT NULL,
    device_id     bigint NOT NULL,
    node          text NOT NULL,                -- the node that claimed and sends it
    kind          text NOT NULL,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    status        integer,                      -- the push service's last HTTP status (0: no answer)
    done_at       timestamptz,                  -- accepted, refused for good, or given up
    PRIMARY KEY (recipient_id, device_id)
);

-- A message's recipients in id order: a campaign's message is claimed in
-- pages (r.id > the last one claimed), each read from this index instead of
-- every recipient of the message again.  It replaces the index on
-- message_id alone, which it also serves.
CREATE INDEX recipients_message_id ON recipients (message_id, id);
DROP INDEX recipients_message;
