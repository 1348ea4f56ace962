/*
 * batches.h: campaigns.  POST /v1/batches (JSON array or CSV with a {name}
 * template), GET /v1/batches/{id} (live progress), POST
 * /v1/batches/{id}/cancel.
 */
#ifndef PUSHGATE_BATCHES_H
#define PUSHGATE_BATCHES_H

#include "api.h"

void batches_handle(struct api *api, struct http_request *req);

#endif
