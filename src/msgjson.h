/*
 * msgjson.h: the JSON form of a message and of its delivery options (msgjson.c).
 */
#ifndef PUSHGATE_MSGJSON_H
#define PUSHGATE_MSGJSON_H

#include <stddef.h>

#include "config.h"
#include "intake.h"

struct json_t;

/*
 * The body of POST /v1/messages, parsed and checked: fills the fields and
 * returns 0, or -1 with the offending field's name and a message.
 * `to` is deduplicated (first occurrence kept) and '+' stripped.
 */
struct msgjson {
	char        from[21];
	const char *text;            /* points into the parsed JSON */
	size_t      n_to;
	char      (*to)[21];         /* n_to MSISDNs, malloc'd */
	struct intake_opts opts;     /* strings point into the parsed JSON */
};
int msgjson_parse(const char *body, size_t len, const struct config *cfg,
		      struct msgjson *out, void **json_root,
		      const char **err_code, const char **err_field, char *msg, size_t msglen);
void msgjson_free(struct msgjson *m, void *json_root);

/*
 * The delivery options of POST /v1/messages (channels, push_timeout,
 * sms_text, purpose, send_at, validity, opt_out_policy, callback_url) from
 * a JSON object, for the other entry points: 0, or -1 with the field and a
 * message.  Strings in o point into root.
 */
int msgjson_options(struct json_t *root, const struct config *cfg, struct intake_opts *o,
		      const char **err_field, char *msg, size_t msglen);

#endif
