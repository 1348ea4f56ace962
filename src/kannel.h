/*
 * kannel.h: Kannel's sendsms HTTP interface (GET|POST /cgi-bin/sendsms), so
 * applications written for Kannel's smsbox switch to pushgate unchanged.
 */
#ifndef PUSHGATE_KANNEL_H
#define PUSHGATE_KANNEL_H

#include "api.h"

void kannel_sendsms(struct api *api, struct http_request *req);

#endif
