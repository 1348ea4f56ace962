/*
 * intake.c: turns an accepted request into the parameters of the intake
 * statement (router.c), whichever door it came in by.  Picks each
 * recipient's SMS route by prefix, applies the configured defaults, and
 * builds the array literals.  Owns only those literals.  Never touches the
 * database itself: the caller submits the job, so the answer to the client
 * still waits for the commit.
 */
#include "intake.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgarr.h"
#include "router.h"
#include "util.h"

void intake_opts_default(struct intake_opts *o)
{
	memset(o, 0, sizeof(*o));
	util_strlcpy(o->channels, "{push,sms}", sizeof(o->channels));
	o->push_timeout = -1;
	o->validity = -1;
	util_strlcpy(o->purpose, "NORMAL", sizeof(o->purpose));
	o->source = "http";
}

int intake_prepare(struct intake *in, const struct config *cfg, long long account_id, const char *from,
		   const char *text, size_t n_to, const char (*to)[21], const char *const *texts,
		   const struct intake_opts *o)
{
	struct pgarr t = {0}, r = {0}, x = {0};
	memset(in, 0, sizeof(*in));
	for (size_t i = 0; i < n_to; i++) {
		const struct route_config *route = config_route_for(cfg, to[i]);
		pgarr_text(&t, to[i]);
		pgarr_text(&r, route ? route->name : NULL);
		if (texts)
			pgarr_text(&x, texts[i]);
	}
	in->p_to = pgarr_take(&t);
	in->p_routes = pgarr_take(&r);
	in->p_texts = texts ? pgarr_take(&x) : NULL;
	if (!in->p_to || !in->p_routes || (texts && !in->p_texts)) {
		intake_release(in);
		return -1;
	}
	snprintf(in->p_account, sizeof(in->p_account), "%lld", account_id);
	snprintf(in->p_validity, sizeof(in->p_validity), "%.3f", o->validity >= 0 ? o->validity : cfg->smpp_validity);
	snprintf(in->p_push_timeout, sizeof(in->p_push_timeout), "%.3f",
		 o->push_timeout >= 0 ? o->push_timeout : cfg->push_timeout);
	if (o->batch_id > 0)
		snprintf(in->p_batch, sizeof(in->p_batch), "%lld", o->batch_id);
	const char **p = in->params;
	p[0] = in->p_account;
	p[1] = from;
	p[2] = text;
	p[3] = in->p_to;
	p[4] = in->p_routes;
	p[5] = in->p_validity;
	p[6] = in->p_push_timeout;
	p[7] = o->channels;
	p[8] = o->sms_text;
	p[9] = o->purpose;
	p[10] = o->send_at[0] ? o->send_at : NULL;
	p[11] = o->opt_out_policy[0] ? o->opt_out_policy : NULL;
	p[12] = o->callback_url;
	p[13] = o->idempotency_key[0] ? o->idempotency_key : NULL;
	p[14] = o->batch_id > 0 ? in->p_batch : NULL;
	p[15] = in->p_texts;
	/* [rules]: formatted once per request, cheap */
	static char start[8], end[8];
	snprintf(start, sizeof(start), "%d", cfg->ad_start_hour);
	snprintf(end, sizeof(end), "%d", cfg->ad_end_hour);
	p[16] = start;
	p[17] = end;
	p[18] = cfg->timezone;
	p[19] = cfg->ad_prefix;
	p[20] = cfg->ad_optout_line;
	p[21] = o->source;
	in->job.stmt = &router_stmt_intake;
	in->job.nparams = 22;
	in->job.params = in->params;
	return 0;
}

void intake_release(struct intake *in)
{
	free(in->p_to);
	free(in->p_routes);
	free(in->p_texts);
	in->p_to = in->p_routes = in->p_texts = NULL;
}

int intake_valid_time(const char *s)
{
	/* YYYY-MM-DDTHH:MM[:SS[.f+]](Z|+HH:MM|-HH:MM) */
	const char *shape = "dddd-dd-ddTdd:dd";
	size_t i = 0;
	for (; shape[i]; i++) {
		char c = s[i];
		if (shape[i] == 'd' ? !isdigit((unsigned char)c) : (c != shape[i] && !(shape[i] == 'T' && c == ' ')))
			return 0;
	}
	s += i;
	if (*s == ':') {
		if (!isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
			return 0;
		s += 3;
		if (*s == '.') {
			s++;
			if (!isdigit((unsigned char)*s))
				return 0;
			while (isdigit((unsigned char)*s))
				s++;
		}
	}
	if (*s == 'Z')
		return s[1] == '\0';
	if ((*s == '+' || *s == '-') && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) && s[3] == ':' &&
	    isdigit((unsigned char)s[4]) && isdigit((unsigned char)s[5]) && s[6] == '\0')
		return 1;
	return 0;
}
