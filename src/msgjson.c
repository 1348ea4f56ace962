/*
 * msgjson.c: the JSON form of a message (the body of POST /v1/messages) and
 * of its delivery options (also a campaign's, and pushgatectl send's):
 * parsed with jansson and checked field by field, each error naming its
 * field.  Never trusts a byte: every field is type- and length-checked.
 * Owns nothing beyond the parsed document it hands back.
 */
#include "msgjson.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "util.h"

/* The delivery options of a message, each checked; unknown fields are ignored. */
static int parse_options(json_t *root, const struct config *cfg, struct intake_opts *o,
			 const char **err_field, char *msg, size_t msglen)
{
	json_t *v;
	intake_opts_default(o);
	if ((v = json_object_get(root, "channels"))) {
		*err_field = "channels";
		int push = 0, sms = 0;
		size_t n = json_is_array(v) ? json_array_size(v) : 0;
		char list[16] = "{";
		for (size_t i = 0; i < n; i++) {
			const char *c = json_string_value(json_array_get(v, i));
			int is_push = c && !strcmp(c, "push"), is_sms = c && !strcmp(c, "sms");
			if ((!is_push && !is_sms) || (is_push && push) || (is_sms && sms))
				goto bad_channels;
			push |= is_push;
			sms |= is_sms;
			strcat(list, i ? "," : "");
			strcat(list, c);
		}
		if (n == 0) {
bad_channels:
			snprintf(msg, msglen, "channels must list \"push\" and/or \"sms\", each once, in the order to try");
			return -1;
		}
		strcat(list, "}");
		util_strlcpy(o->channels, list, sizeof(o->channels));
	}
	if ((v = json_object_get(root, "push_timeout"))) {
		*err_field = "push_timeout";
		if (!json_is_number(v) || json_number_value(v) < 1 || json_number_value(v) > 7 * 86400) {
			snprintf(msg, msglen, "push_timeout must be a number of seconds from 1 to 604800");
			return -1;
		}
		o->push_timeout = json_number_value(v);
	}
	if ((v = json_object_get(root, "sms_text"))) {
		*err_field = "sms_text";
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > cfg->max_text ||
		    memchr(json_string_value(v), '\0', json_string_length(v))) {
			snprintf(msg, msglen, "sms_text must be a non-empty string of at most %zu bytes", cfg->max_text);
			return -1;
		}
		o->sms_text = json_string_value(v);
	}
	if ((v = json_object_get(root, "purpose"))) {
		*err_field = "purpose";
		const char *pu = json_string_value(v);
		if (!pu || (strcmp(pu, "NORMAL") && strcmp(pu, "AUTH") && strcmp(pu, "AD"))) {
			snprintf(msg, msglen, "purpose must be NORMAL, AUTH or AD");
			return -1;
		}
		util_strlcpy(o->purpose, pu, sizeof(o->purpose));
	}
	if ((v = json_object_get(root, "send_at"))) {
		*err_field = "send_at";
		const char *t = json_string_value(v);
		if (!t || strlen(t) >= sizeof(o->send_at) || !intake_valid_time(t)) {
			snprintf(msg, msglen, "send_at must be an ISO 8601 time with its zone, e.g. 2026-11-24T21:30:00+09:00");
			return -1;
		}
		util_strlcpy(o->send_at, t, sizeof(o->send_at));
	}
	if ((v = json_object_get(root, "validity"))) {
		*err_field = "validity";
		if (!json_is_number(v) || json_number_value(v) < 60 || json_number_value(v) > 30 * 86400) {
			snprintf(msg, msglen, "validity must be a number of seconds from 60 to 2592000");
			return -1;
		}
		o->validity = json_number_value(v);
	}
	if ((v = json_object_get(root, "opt_out_policy"))) {
		*err_field = "opt_out_policy";
		const char *pol = json_string_value(v);
		if (!pol || (strcmp(pol, "sms") && strcmp(pol, "drop"))) {
			snprintf(msg, msglen, "opt_out_policy must be \"sms\" or \"drop\"");
			return -1;
		}
		util_strlcpy(o->opt_out_policy, pol, sizeof(o->opt_out_policy));
	}
	if ((v = json_object_get(root, "callback_url"))) {
		*err_field = "callback_url";
		const char *u = json_string_value(v);
		if (!u || strlen(u) > 512 || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) ||
		    strpbrk(u, " \t\r\n")) {
			snprintf(msg, msglen, "callback_url must be an http:// or https:// URL of at most 512 characters");
			return -1;
		}
		o->callback_url = u;
	}
	return 0;
}

int msgjson_options(json_t *root, const struct config *cfg, struct intake_opts *o,
		      const char **err_field, char *msg, size_t msglen)
{
	return parse_options(root, cfg, o, err_field, msg, msglen);
}

void msgjson_free(struct msgjson *m, void *json_root)
{
	free(m->to);
	m->to = NULL;
	m->n_to = 0;
	if (json_root)
		json_decref((json_t *)json_root);
}

int msgjson_parse(const char *body, size_t len, const struct config *cfg,
		      struct msgjson *out, void **json_root,
		      const char **err_code, const char **err_field, char *msg, size_t msglen)
{
	json_error_t jerr;
	memset(out, 0, sizeof(*out));
	*json_root = NULL;
	*err_code = "invalid_field";
	*err_field = NULL;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		*err_code = "invalid_json";
		snprintf(msg, msglen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return -1;
	}
	*json_root = root;
	if (!json_is_object(root)) {
		*err_code = "invalid_json";
		snprintf(msg, msglen, "the body must be a JSON object");
		return -1;
	}
	json_t *from = json_object_get(root, "from");
	json_t *to = json_object_get(root, "to");
	json_t *text = json_object_get(root, "text");

	*err_field = "from";
	if (!from) {
		snprintf(msg, msglen, "from is required");
		return -1;
	}
	if (!json_is_string(from) || !util_valid_sender(json_string_value(from))) {
		snprintf(msg, msglen, "from must be a string of 1 to 20 printable ASCII characters");
		return -1;
	}
	util_strlcpy(out->from, json_string_value(from), sizeof(out->from));

	*err_field = "to";
	if (!to) {
		snprintf(msg, msglen, "to is required");
		return -1;
	}
	if (json_is_string(to)) {
		/* a single recipient may be given as a string */
	} else if (!json_is_array(to) || json_array_size(to) == 0) {
		snprintf(msg, msglen, "to must be a non-empty array of phone numbers");
		return -1;
	}
	size_t n = json_is_string(to) ? 1 : json_array_size(to);
	if (n > cfg->max_recipients) {
		snprintf(msg, msglen, "to has %zu recipients; at most %zu are allowed per request",
			 n, cfg->max_recipients);
		return -1;
	}
	out->to = calloc(n, sizeof(*out->to));
	if (!out->to) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_is_string(to) ? to : json_array_get(to, i);
		char num[21];
		if (!json_is_string(v) || util_msisdn(json_string_value(v), num) < 0) {
			snprintf(msg, msglen, "to[%zu] must be a phone number of 3 to 20 digits, optionally with a leading +", i);
			return -1;
		}
		size_t j;
		for (j = 0; j < out->n_to; j++)
			if (strcmp(out->to[j], num) == 0)
				break;
		if (j == out->n_to)
			memcpy(out->to[out->n_to++], num, sizeof(num));
	}

	*err_field = "text";
	if (!text) {
		snprintf(msg, msglen, "text is required");
		return -1;
	}
	if (!json_is_string(text) || json_string_length(text) == 0) {
		snprintf(msg, msglen, "text must be a non-empty string");
		return -1;
	}
	if (json_string_length(text) > cfg->max_text) {
		snprintf(msg, msglen, "text is %zu bytes; at most %zu are allowed",
			 json_string_length(text), cfg->max_text);
		return -1;
	}
	if (memchr(json_string_value(text), '\0', json_string_length(text))) {
		snprintf(msg, msglen, "text must not contain NUL characters");
		return -1;
	}
	out->text = json_string_value(text);
	if (parse_options(root, cfg, &out->opts, err_field, msg, msglen) < 0)
		return -1;
	*err_field = NULL;
	*err_code = NULL;
	return 0;
}
