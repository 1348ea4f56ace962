/*
 * kannel.c: GET|POST /cgi-bin/sendsms with Kannel's parameters.  Not
 * written yet: answers 501 so clients learn it at once.
 */
#include "kannel.h"

void kannel_sendsms(struct api *api, struct http_request *req)
{
	(void)api;
	api_respond_error(req, 501, "not_implemented", NULL, "sendsms is not available yet");
}
