/*
 * stmts.h: the SQL statements that never change a recipient's state: API
 * key and device lookups, the status and report JSON, bind counters, push
 * reads, opt-out clearing, device verification and listing, campaign rows.
 * (Those that do are recipient.h's.)
 */
#ifndef PUSHGATE_STMTS_H
#define PUSHGATE_STMTS_H

#include <stddef.h>

#include "store.h"

/*
 * A timestamptz SQL expression as text in ISO 8601, UTC, to the millisecond
 * ("2026-01-02T03:04:05.678Z"), the same whatever the server's TimeZone and
 * DateStyle.  NULL stays NULL.
 */
#define STMTS_ISO_TS(EXPR) "to_char((" EXPR ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* API key lookup: $1 bytea hash.  Rows: account id, role, name. */
extern const struct store_stmt stmts_auth;

/* One message as the status API's JSON: $1 message id, $2 account id.  One text column or no row. */
extern const struct store_stmt stmts_message_json;

/*
 * Live SMPP bind counters of node $1, one row per bind: $2 route[], $3
 * bind[], $4 state[], $5 window_used[], $6 window_size[], $7..$16 counters
 * (submits, resp_ok, resp_temp, resp_perm, timeouts, receipts,
 * receipts_delivered, receipts_failed, throttled, reconnects).
 */
extern const struct store_stmt stmts_bind_stats;

/* Push channel.  Device hello: $1 text[] token hashes in hex, $2 this node -> rows (ordinal, device id, msisdn). */
extern const struct store_stmt stmts_device_auth;
/* Sockets closed: $1 bigint[] device ids, $2 this node (another node's newer socket stays); NOTIFY
 * pushgate_wake with their numbers. */
extern const struct store_stmt stmts_device_sockets_gone;
/* A restarted node's predecessor: $1 its name -> row (devices whose socket it held, now none). */
extern const struct store_stmt stmts_device_sockets_take_back;
/* A device by its token: $1 '\\x' hex SHA-256 -> row (id, msisdn) while verified and not revoked. */
extern const struct store_stmt stmts_device_by_token;
/* Platform push (docs/device-protocol.md section 4).  $1 device, $2 kind, $3 endpoint or token,
 * $4 p256dh hex, $5 auth hex (NULL unless webpush), $6 app: set (or replace) its endpoint. */
extern const struct store_stmt stmts_wakeup_set;
/* (NOTIFY pushgate_wake with the device's number: what waits for it may be woken now.) */
/* $1 device: its endpoint removed; row when there was one. */
extern const struct store_stmt stmts_wakeup_clear;
/* Claims: $1 bigint[] message ids, $3 most rows, $4 recipients after this id (a campaign's
 * message page by page; or, scan: $1 most rows of any PUSH_SENT recipient not claimed yet),
 * $2 this node -> rows (recipient, device, kind, endpoint, p256dh hex, auth hex,
 * app, seconds to the push deadline, purpose, sender, body, sent_at, msisdn). */
extern const struct store_stmt stmts_wake_claim_messages;
extern const struct store_stmt stmts_wake_claim_scan;
/* $1 text[] numbers (a socket closed, an endpoint registered: NOTIFY pushgate_wake), $3 most rows. */
extern const struct store_stmt stmts_wake_claim_numbers;
/* Outcomes: $1 recipients, $2 devices, $3 HTTP statuses (0: none), $4 kinds, $5 details,
 * $6 done (no retry), $7 revoke the device's endpoint -> row (endpoints revoked). */
extern const struct store_stmt stmts_wake_outcomes;
/* Pending pushes: $1 text[] MSISDNs -> rows (recipient id, msisdn, sender, body, sent_at). */
extern const struct store_stmt stmts_push_pending;
/* Pushes of new messages: $1 bigint[] message ids -> same rows. */
extern const struct store_stmt stmts_push_of_messages;
/* Allow: $1 msisdn, $2 sender, $3 device id -> opt-out cleared. */
extern const struct store_stmt stmts_push_allow;
/* Devices: verification, logout, operator listing (see stmts.c). */
extern const struct store_stmt stmts_device_verify;
extern const struct store_stmt stmts_device_revoke;
extern const struct store_stmt stmts_devices_json;

/*
 * Reports (sql/functions/report_*.sql).  A report window's start: "YYYY-MM-DD"
 * (00:00 UTC) or "YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+HH[:MM]|-HH[:MM]]"
 * (UTC when no offset; a space may replace the T), checked field by field
 * (real calendar dates, year >= 1970), written to out as a timestamptz
 * literal PostgreSQL reads the same whatever its settings.  0 / -1.
 */
int stmts_parse_since(const char *in, char *out, size_t outlen);
#define STMTS_SINCE_MAX 48

/*
 * The summary of GET /v1/reports/summary as one JSON text column:
 * report_account ($1 since, $2 account id; one row), report_named ($1
 * since, $2 account name; no row: no such account), report_all ($1 since;
 * every account).
 */
extern const struct store_stmt stmts_report_account;
extern const struct store_stmt stmts_report_named;
extern const struct store_stmt stmts_report_all;
/* report_batch: $1 since, $2 batch id, $3 account id (NULL: any).  No row: no such batch of this account. */
extern const struct store_stmt stmts_report_batch;

/* Kannel's sendsms: $1 bytea hash of the password (an API key), $2 account name.  Row: account id. */
extern const struct store_stmt stmts_kannel_auth;

/*
 * Campaigns.  batch_create: $1 account id, $2 name, $3 expected total ->
 * id (state LOADING).  batch_loaded: $1 id, $2 total loaded -> state
 * (RUNNING, or CANCELED when canceled while loading).  batch_json: $1 id, $2
 * account id -> the progress JSON (no row: not this account's batch),
 * DONE once every recipient is final; it writes nothing.  batches_done (the
 * sweeper): every RUNNING batch whose recipients are all final becomes DONE
 * with its done_at, one row per batch.  (Canceling is recipient.h's
 * batch_cancel.)
 */
extern const struct store_stmt stmts_batch_create;
extern const struct store_stmt stmts_batch_loaded;
extern const struct store_stmt stmts_batch_json;
extern const struct store_stmt stmts_batches_done;

#endif
