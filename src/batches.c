/*
 * batches.c: campaigns.  Not written yet: answers 501 so clients learn it
 * at once.
 */
#include "batches.h"

void batches_handle(struct api *api, struct http_request *req)
{
	(void)api;
	api_respond_error(req, 501, "not_implemented", NULL, "batches are not available yet");
}
