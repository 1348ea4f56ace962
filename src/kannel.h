/*
 * kannel.h: Kannel's sendsms HTTP interface (GET|POST /cgi-bin/sendsms), so
 * applications written for Kannel's smsbox switch to pushgate unchanged.
 * The subset honoured is documented in docs/kannel.md.
 *
 * A dlr-url/dlr-mask reaches the intake as the message's own dlr_url and
 * dlr_mask (intake_opts); sql/functions/kannel_dlr_fill.sql turns each matching state
 * change into a GET row of the webhook outbox.
 */
#ifndef PUSHGATE_KANNEL_H
#define PUSHGATE_KANNEL_H

#include "door.h"
#include "http.h"

/* Answers req (now, or after the account check and the intake commit). */
void kannel_sendsms(const struct door *door, struct http_request *req);

#endif
