/*
 * batches.h: campaigns.  POST /v1/batches (JSON array or CSV with a {name}
 * template), GET /v1/batches/{id} (live progress), POST
 * /v1/batches/{id}/cancel: the HTTP loader.  Its rows are read by
 * batch_csv.c, shared with `pushgatectl send --csv`.
 */
#ifndef PUSHGATE_BATCHES_H
#define PUSHGATE_BATCHES_H

#include "batch_csv.h"
#include "door.h"
#include "http.h"

void batches_handle(const struct door *door, struct http_request *req);
/*
 * Whether a POST /v1/batches is streamed: CSV always, JSON beyond
 * max_body or of unknown length (arg: the door; NULL: CSV only).
 */
int batches_wants_stream(const struct http_request *req, void *arg);

#endif
