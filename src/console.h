/*
 * console.h: the operator console's read API, /v1/operator/... (console.c).
 */
#ifndef PUSHGATE_CONSOLE_H
#define PUSHGATE_CONSOLE_H

#include "http.h"
#include "store.h"

/*
 * Answers GET /v1/operator/REST for a request already authenticated with
 * an operator key: "overview", "messages" (a search across accounts) or
 * "messages/ID" (one message, its account and its history).  Always
 * answers req (now, or after the store).
 */
void console_handle(struct store *store, struct http_request *req, const char *rest);

/* The statements (for pushgatectl plan). */
extern const struct store_stmt console_stmt_overview;

#endif
