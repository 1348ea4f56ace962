/*
 * config.c: reads pushgate.ini (libinih) into struct config.
 *
 * Two tables list every key with its type, bounds and place in its struct
 * (server/database keys in struct config, route keys in struct
 * route_config), so defaults, parsing and validation can't drift apart.
 * [route NAME] sections are applied after the whole file is read, on top
 * of [smpp], so section order does not matter.  Unknown keys, out-of-range
 * values and over-long lines are errors naming the line: a daemon that
 * guesses at its configuration is worse than one that refuses.
 */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "log.h"
#include "netpolicy.h"
#include "util.h"

enum key_type { K_STR, K_SIZE, K_INT, K_UINT, K_DOUBLE, K_BOOL };

struct key_def {
	const char   *section;    /* NULL in the route table */
	const char   *name;
	enum key_type type;
	size_t        offset;
	size_t        size;       /* K_STR: buffer size */
	double        min, max;   /* numbers */
	const char   *def;        /* default, as written in the ini */
};

#define CSTR(sec, key, field, d) { sec, key, K_STR, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0, d }
#define CNUM(sec, key, t, field, lo, hi, d) { sec, key, t, offsetof(struct config, field), 0, lo, hi, d }
#define RSTR(key, field, d) { NULL, key, K_STR, offsetof(struct route_config, field), sizeof(((struct route_config *)0)->field), 0, 0, d }
#define RNUM(key, t, field, lo, hi, d) { NULL, key, t, offsetof(struct route_config, field), 0, lo, hi, d }

static const struct key_def global_keys[] = {
	CSTR("server", "http_listen", http_listen, "127.0.0.1:8080"),
	CSTR("server", "https_listen", https_listen, ""),
	CSTR("server", "tls_cert", tls_cert, ""),
	CSTR("server", "tls_key", tls_key, ""),
	CSTR("server", "tls_min_version", tls_min_version, "1.2"),
	CNUM("server", "idle_timeout", K_DOUBLE, http_idle_timeout, 0.1, 86400, "60"),
	CNUM("server", "drain_grace", K_DOUBLE, drain_grace, 0, 300, "0"),
	CNUM("server", "header_timeout", K_DOUBLE, http_header_timeout, 0.1, 3600, "10"),
	CNUM("server", "min_body_rate", K_DOUBLE, http_min_body_rate, 0, 1e9, "1024"),
	CNUM("server", "max_conns_per_ip", K_SIZE, http_max_conns_per_ip, 1, 1000000, "256"),
	CNUM("server", "max_body", K_SIZE, max_body, 1024, 1073741824.0, "1048576"),
	CNUM("server", "max_batch_body", K_SIZE, max_batch_body, 1024, 4294967296.0, "67108864"),
	CNUM("server", "max_recipients", K_SIZE, max_recipients, 1, 1000000, "1000"),
	CNUM("server", "max_text", K_SIZE, max_text, 1, 65536, "4096"),
	CSTR("server", "log_level", log_level, "info"),
	CSTR("server", "log_file", log_file, ""),
	CSTR("server", "metrics_token", metrics_token, ""),
	CNUM("server", "metrics_accounts", K_SIZE, metrics_accounts, 0, 10000, "100"),
	CSTR("server", "node_name", node_name, ""),
	CSTR("server", "user", run_as, ""),
	CNUM("server", "allow_root", K_BOOL, allow_root, 0, 1, "no"),
	CSTR("database", "conninfo", conninfo, "dbname=pushgate"),
	CNUM("database", "batch_max", K_SIZE, batch_max, 1, 100000, "500"),
	CNUM("database", "reconnect_interval", K_DOUBLE, reconnect_interval, 0.01, 3600, "1"),
	CNUM("push", "push_timeout", K_DOUBLE, push_timeout, 0.1, 30 * 86400.0, "30"),
	CNUM("push", "heartbeat", K_DOUBLE, push_heartbeat, 0.1, 3600, "30"),
	CNUM("push", "max_connections", K_SIZE, push_max_connections, 1, 10000000, "100000"),
	CNUM("push", "max_connections_per_ip", K_SIZE, push_max_connections_per_ip, 1, 10000000, "1000"),
	CSTR("push", "otp_sender", otp_sender, "pushgate"),
	CNUM("push", "otp_ttl", K_DOUBLE, otp_ttl, 10, 86400, "300"),
	CNUM("push", "otp_echo", K_BOOL, otp_echo, 0, 1, "no"),
	CSTR("push", "code_prefixes", code_prefixes, "82"),
	CNUM("push", "code_per_ip", K_DOUBLE, code_per_ip, 1, 1e9, "10"),
	CNUM("push", "code_rate", K_DOUBLE, code_rate, 0.01, 1e6, "5"),
	CNUM("push", "code_daily_cap", K_SIZE, code_daily_cap, 0, 1e9, "10000"),
	CSTR("push", "web_root", web_root, ""),
	CSTR("console", "chart_js", console_chart_js, "/usr/share/javascript/chart.js/chart.min.js"),
	CNUM("reports", "rollup_interval", K_DOUBLE, rollup_interval, 0, 3600, "5"),
	CNUM("retention", "history_days", K_DOUBLE, retention_history_days, 1, 36500, "90"),
	CNUM("retention", "outbox_days", K_DOUBLE, retention_outbox_days, 1, 36500, "90"),
	CSTR("retention", "export_dir", retention_export_dir, ""),
	CNUM("retention", "check_interval", K_DOUBLE, retention_check_interval, 0, 86400, "3600"),
	CNUM("push", "invite", K_BOOL, invite, 0, 1, "no"),
	CNUM("push", "invite_period", K_DOUBLE, invite_period, 60, 3650 * 86400.0, "2592000"),
	CSTR("push", "invite_text", invite_text, "Get your messages free in the pushgate app: https://pushgate.example/app"),
	CNUM("rules", "ad_start_hour", K_INT, ad_start_hour, 0, 23, "8"),
	CNUM("rules", "ad_end_hour", K_INT, ad_end_hour, 1, 24, "21"),
	CSTR("rules", "timezone", timezone, "Asia/Seoul"),
	CSTR("rules", "ad_prefix", ad_prefix, "(광고)"),
	CSTR("rules", "ad_optout_line", ad_optout_line, "무료수신거부 {number}"),
	CNUM("webhook", "batch_max", K_SIZE, webhook_batch_max, 1, 1000, "100"),
	CNUM("webhook", "timeout", K_DOUBLE, webhook_timeout, 0.1, 300, "10"),
	CNUM("webhook", "connect_timeout", K_DOUBLE, webhook_connect_timeout, 0.1, 300, "3"),
	CNUM("webhook", "max_age", K_DOUBLE, webhook_max_age, 1, 30 * 86400.0, "86400"),
	CNUM("webhook", "concurrency", K_SIZE, webhook_concurrency, 1, 1000, "20"),
	CNUM("webhook", "per_account", K_SIZE, webhook_per_account, 1, 1000, "5"),
	CNUM("webhook", "per_host", K_SIZE, webhook_per_host, 1, 1000, "4"),
	CSTR("webhook", "allow_internal", webhook_allow_internal, ""),
	CNUM("webhook", "backoff_min", K_DOUBLE, webhook_backoff_min, 0.01, 86400, "1"),
	CNUM("webhook", "backoff_max", K_DOUBLE, webhook_backoff_max, 0.01, 86400, "3600"),
	CNUM("wake", "concurrency", K_SIZE, wake_concurrency, 1, 100000, "256"),
	CNUM("wake", "timeout", K_DOUBLE, wake_timeout, 0.1, 300, "10"),
	CNUM("wake", "backoff_min", K_DOUBLE, wake_backoff_min, 0.01, 3600, "1"),
	CSTR("wake", "allow_internal", wake_allow_internal, ""),
	CSTR("wake", "ca_file", wake_ca_file, ""),
	CSTR("webpush", "vapid_key", webpush_vapid_key, ""),
	CSTR("webpush", "subject", webpush_subject, "mailto:postmaster@localhost"),
	CSTR("smpp_server", "listen", smpps_listen, ""),
	CSTR("smpp_server", "tls_listen", smpps_tls_listen, ""),
	CSTR("smpp_server", "tls_cert", smpps_tls_cert, ""),
	CSTR("smpp_server", "tls_key", smpps_tls_key, ""),
	CNUM("smpp_server", "bind_timeout", K_DOUBLE, smpps_bind_timeout, 0.1, 3600, "10"),
	CNUM("smpp_server", "enquire_link", K_DOUBLE, smpps_enquire_link, 0.1, 3600, "30"),
	CNUM("smpp_server", "auth_delay", K_DOUBLE, smpps_auth_delay, 0, 60, "1"),
	CNUM("smpp_server", "receipt_retry", K_DOUBLE, smpps_receipt_retry, 0.1, 86400, "30"),
	CNUM("smpp_server", "reassembly_timeout", K_DOUBLE, smpps_reassembly_timeout, 0.1, 86400, "60"),
	CSTR("smpp_server", "delivered_states", smpps_delivered_states, "PUSH_DELIVERED,SMS_DELIVERED"),
	CSTR("smpp_server", "mo_keywords", smpps_mo_keywords, "STOP,STOPALL,UNSUBSCRIBE,END,QUIT,CANCEL,수신거부,거부"),
	CNUM("smpp_server", "max_conns", K_SIZE, smpps_max_conns, 1, 100000, "1000"),
	CNUM("smpp_server", "max_unbound", K_SIZE, smpps_max_unbound, 1, 100000, "100"),
	CNUM("smpp_server", "auth_threads", K_SIZE, smpps_auth_threads, 1, 64, "1"),
	CNUM("smpp_server", "auth_queue", K_SIZE, smpps_auth_queue, 1, 100000, "32"),
	CNUM("smpp_server", "bind_failures", K_SIZE, smpps_bind_failures, 1, 100000, "10"),
	CNUM("smpp", "retry_min", K_DOUBLE, smpp_retry_min, 0.01, 86400, "5"),
	CNUM("smpp", "idle_poll", K_DOUBLE, smpp_idle_poll, 0.05, 60, "0.25"),
	CNUM("smpp", "validity", K_DOUBLE, smpp_validity, 1, 30 * 86400.0, "86400"),
};

static const struct key_def route_keys[] = {
	RSTR("route", name, "default"),          /* [smpp] only: the single route's name */
	RSTR("host", host, "127.0.0.1"),
	RNUM("port", K_INT, port, 1, 65535, "2775"),
	RSTR("system_id", system_id, "pushgate"),
	RSTR("password", password, "secret"),
	RSTR("system_type", system_type, ""),
	RSTR("bind_mode", bind_mode, "trx"),
	RNUM("binds", K_UINT, binds, 1, 64, "1"),
	RNUM("window", K_UINT, window, 1, 10000, "100"),
	RNUM("tps", K_DOUBLE, tps, 0, 1000000, "0"),
	RSTR("prefixes", prefixes, ""),
	RNUM("default", K_BOOL, is_default, 0, 1, "no"),
	RSTR("failover", failover, ""),
	RSTR("id_format", id_format, "auto"),
	RSTR("concat", concat, "udh8"),
	RSTR("coding", coding, "auto"),
	RNUM("enquire_link", K_DOUBLE, enquire_link, 0.1, 3600, "30"),
	RNUM("response_timeout", K_DOUBLE, response_timeout, 0.1, 3600, "10"),
	RNUM("reconnect_min", K_DOUBLE, reconnect_min, 0.01, 3600, "1"),
	RNUM("reconnect_max", K_DOUBLE, reconnect_max, 0.01, 86400, "30"),
	RNUM("source_ton", K_INT, source_ton, 0, 6, "1"),
	RNUM("source_npi", K_INT, source_npi, 0, 18, "1"),
	RNUM("dest_ton", K_INT, dest_ton, 0, 6, "1"),
	RNUM("dest_npi", K_INT, dest_npi, 0, 18, "1"),
	RSTR("temporary_errors", temporary_errors, "0x58,0x14,0x08,0x64,0xfe"),
	RSTR("no_response", no_response, "resend"),
	RNUM("tls", K_BOOL, tls, 0, 1, "no"),
	RNUM("tls_verify", K_BOOL, tls_verify, 0, 1, "yes"),
	RSTR("tls_ca_file", tls_ca_file, ""),
	RSTR("tls_server_name", tls_server_name, ""),
};

#define N_GLOBAL (sizeof(global_keys) / sizeof(global_keys[0]))
#define N_ROUTE  (sizeof(route_keys) / sizeof(route_keys[0]))

#define ASTR(key, field) { NULL, key, K_STR, offsetof(struct app_config, field), sizeof(((struct app_config *)0)->field), 0, 0, "" }

static const struct key_def fcm_keys[] = {
	ASTR("credentials", credentials), ASTR("project_id", project_id), ASTR("endpoint", endpoint),
};
static const struct key_def apns_keys[] = {
	ASTR("key_file", key_file), ASTR("key_id", key_id), ASTR("team_id", team_id), ASTR("bundle_id", bundle_id),
	ASTR("environment", environment), ASTR("endpoint", endpoint),
};

/* A [route NAME] key seen while reading, applied at the end. */
struct route_value {
	unsigned route;
	unsigned key;
	int      line;
	char    *value;
};

struct load_ctx {
	struct config      *cfg;
	char               *err;
	size_t              errlen;
	int                 failed;
	int                 line;
	struct route_value *vals;
	size_t              n_vals, cap_vals;
	int                 smpp_route_keys;   /* [smpp] set a connection key */
};

static int set_key(void *base, const struct key_def *k, const char *section, const char *value,
		   char *err, size_t errlen)
{
	char *field = (char *)base + k->offset;
	long l;
	double d;
	switch (k->type) {
	case K_STR:
		if (strlen(value) >= k->size) {
			snprintf(err, errlen, "[%s] %s: value longer than %zu characters",
				 section, k->name, k->size - 1);
			return -1;
		}
		util_strlcpy(field, value, k->size);
		return 0;
	case K_BOOL:
		if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") || !strcmp(value, "1") || !strcasecmp(value, "on"))
			*(int *)(void *)field = 1;
		else if (!strcasecmp(value, "no") || !strcasecmp(value, "false") || !strcmp(value, "0") || !strcasecmp(value, "off"))
			*(int *)(void *)field = 0;
		else {
			snprintf(err, errlen, "[%s] %s: '%s' is not yes or no", section, k->name, value);
			return -1;
		}
		return 0;
	case K_SIZE:
	case K_INT:
	case K_UINT:
		if (util_parse_long(value, (long)k->min, (long)k->max, &l) < 0)
			goto range;
		if (k->type == K_SIZE)
			*(size_t *)(void *)field = (size_t)l;
		else if (k->type == K_UINT)
			*(unsigned *)(void *)field = (unsigned)l;
		else
			*(int *)(void *)field = (int)l;
		return 0;
	case K_DOUBLE:
		if (util_parse_double(value, k->min, k->max, &d) < 0)
			goto range;
		*(double *)(void *)field = d;
		return 0;
	}
range:
	snprintf(err, errlen, "[%s] %s: '%s' is not a number from %g to %g",
		 section, k->name, value, k->min, k->max);
	return -1;
}

static void route_defaults(struct route_config *r)
{
	char ignored[8];
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < N_ROUTE; i++)
		set_key(r, &route_keys[i], "smpp", route_keys[i].def, ignored, sizeof(ignored));
}

void config_defaults(struct config *cfg)
{
	char ignored[8];
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_GLOBAL; i++)
		set_key(cfg, &global_keys[i], global_keys[i].section, global_keys[i].def, ignored, sizeof(ignored));
	route_defaults(&cfg->smpp);
	cfg->routes[0] = cfg->smpp;
	cfg->routes[0].is_default = 1;
	cfg->n_routes = 1;
}

static int find_key(const struct key_def *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int route_name_valid(const char *s)
{
	if (!*s || strlen(s) >= sizeof(((struct route_config *)0)->name) || strcasecmp(s, "null") == 0)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return 0;
	return 1;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	struct config *cfg = ctx->cfg;
	if (ctx->failed)
		return 0;
	for (size_t i = 0; i < N_GLOBAL; i++) {
		if (strcmp(global_keys[i].section, section) == 0 && strcmp(global_keys[i].name, name) == 0) {
			if (set_key(cfg, &global_keys[i], section, value, ctx->err, ctx->errlen) < 0)
				goto fail;
			return 1;
		}
	}
	if (strcmp(section, "smpp") == 0) {
		int k = find_key(route_keys, N_ROUTE, name);
		if (k >= 0) {
			if (set_key(&cfg->smpp, &route_keys[k], section, value, ctx->err, ctx->errlen) < 0)
				goto fail;
			return 1;
		}
	} else if (strncmp(section, "fcm ", 4) == 0 || strncmp(section, "apns ", 5) == 0) {
		int fcm = section[0] == 'f';
		const char *aname = section + (fcm ? 4 : 5);
		while (*aname == ' ')
			aname++;
		if (!route_name_valid(aname)) {
			snprintf(ctx->err, ctx->errlen, "[%s]: app names are 1-31 letters, digits, '_', '-', '.'", section);
			goto fail;
		}
		const struct key_def *table = fcm ? fcm_keys : apns_keys;
		int k = find_key(table, fcm ? sizeof(fcm_keys) / sizeof(fcm_keys[0]) : sizeof(apns_keys) / sizeof(apns_keys[0]),
				 name);
		if (k >= 0) {
			size_t a;
			for (a = 0; a < cfg->n_apps; a++)
				if (strcmp(cfg->apps[a].kind, fcm ? "fcm" : "apns") == 0 && strcmp(cfg->apps[a].name, aname) == 0)
					break;
			if (a == cfg->n_apps) {
				if (a >= CONFIG_MAX_APPS) {
					snprintf(ctx->err, ctx->errlen, "more than %d [fcm] and [apns] apps", CONFIG_MAX_APPS);
					goto fail;
				}
				memset(&cfg->apps[a], 0, sizeof(cfg->apps[a]));
				util_strlcpy(cfg->apps[a].kind, fcm ? "fcm" : "apns", sizeof(cfg->apps[a].kind));
				util_strlcpy(cfg->apps[a].name, aname, sizeof(cfg->apps[a].name));
				cfg->n_apps++;
			}
			if (set_key(&cfg->apps[a], &table[k], section, value, ctx->err, ctx->errlen) < 0)
				goto fail;
			return 1;
		}
	} else if (strncmp(section, "route ", 6) == 0) {
		const char *rname = section + 6;
		while (*rname == ' ')
			rname++;
		int k = find_key(route_keys, N_ROUTE, name);
		if (k > 0) {   /* 0 is "route", meaningless inside a [route] */
			if (!route_name_valid(rname)) {
				snprintf(ctx->err, ctx->errlen, "[%s]: route names are 1-31 letters, digits, '_', '-', '.'", section);
				goto fail;
			}
			unsigned r;
			for (r = 0; r < cfg->n_routes; r++)
				if (strcmp(cfg->routes[r].name, rname) == 0)
					break;
			if (r == cfg->n_routes) {
				if (r >= CONFIG_MAX_ROUTES) {
					snprintf(ctx->err, ctx->errlen, "more than %d routes", CONFIG_MAX_ROUTES);
					goto fail;
				}
				memset(&cfg->routes[r], 0, sizeof(cfg->routes[r]));
				util_strlcpy(cfg->routes[r].name, rname, sizeof(cfg->routes[r].name));
				cfg->n_routes++;
			}
			if (ctx->n_vals == ctx->cap_vals) {
				size_t cap = ctx->cap_vals ? ctx->cap_vals * 2 : 32;
				struct route_value *v = realloc(ctx->vals, cap * sizeof(*v));
				if (!v) {
					snprintf(ctx->err, ctx->errlen, "out of memory");
					goto fail;
				}
				ctx->vals = v;
				ctx->cap_vals = cap;
			}
			char *copy = strdup(value);
			if (!copy) {
				snprintf(ctx->err, ctx->errlen, "out of memory");
				goto fail;
			}
			ctx->vals[ctx->n_vals++] = (struct route_value){ r, (unsigned)k, ctx->line, copy };
			return 1;
		}
	}
	snprintf(ctx->err, ctx->errlen, "unknown key '%s' in section [%s]", name, section);
fail:
	ctx->failed = 1;
	return 0;
}

/*
 * Calls item(r, token) for each comma/blank separated token of list (at
 * most 63 characters each).  0, or -1 as soon as item refuses one.
 */
static int each_item(struct route_config *r, const char *list, int (*item)(struct route_config *, const char *))
{
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, " ,");
		if (n == 0)
			break;
		char tok[64];
		if (n >= sizeof(tok))
			return -1;
		memcpy(tok, p, n);
		tok[n] = '\0';
		if (item(r, tok) < 0)
			return -1;
		p += n;
	}
	return 0;
}

/* "0x58", "20": a command_status value. */
static int add_status(struct route_config *r, const char *tok)
{
	char *end;
	unsigned long v = strtoul(tok, &end, 0);
	if (*end || !isdigit((unsigned char)tok[0]) || v > 0xFFFFFFFFul || r->n_temp >= CONFIG_MAX_TEMP)
		return -1;
	r->temp[r->n_temp++] = (uint32_t)v;
	return 0;
}

/* "8210", "+8211": an MSISDN prefix of 1-20 digits. */
static int add_prefix(struct route_config *r, const char *tok)
{
	if (*tok == '+')
		tok++;
	size_t n = strlen(tok);
	if (n == 0 || n > 20 || strspn(tok, "0123456789") != n || r->n_prefixes >= CONFIG_MAX_PREFIXES)
		return -1;
	memcpy(r->prefix[r->n_prefixes++], tok, n + 1);
	return 0;
}

static int parse_lists(struct route_config *r, char *err, size_t errlen)
{
	r->n_temp = r->n_prefixes = 0;
	if (each_item(r, r->temporary_errors, add_status) < 0) {
		snprintf(err, errlen, "[route %s] temporary_errors: '%s' is not a list of command_status values",
			 r->name, r->temporary_errors);
		return -1;
	}
	if (each_item(r, r->prefixes, add_prefix) < 0) {
		snprintf(err, errlen, "[route %s] prefixes: '%s' is not a list of digit prefixes", r->name, r->prefixes);
		return -1;
	}
	return 0;
}

static int one_of(const char *v, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(v, *list) == 0)
			return 1;
	return 0;
}

static int validate_route(struct config *cfg, struct route_config *r, char *err, size_t errlen)
{
	static const char *const fmts[] = { "auto", "hex", "dec", "hex2dec", "raw", NULL };
	static const char *const modes[] = { "trx", "tx+rx", NULL };
	static const char *const concats[] = { "udh8", "udh16", "sar", "payload", NULL };
	static const char *const codings[] = { "auto", "gsm7", "latin1", "ucs2", NULL };
	static const char *const noresp[] = { "resend", "unknown", NULL };
	const char *bad = NULL, *val = NULL;
	if (!one_of(r->id_format, fmts)) bad = "id_format", val = r->id_format;
	else if (!one_of(r->bind_mode, modes)) bad = "bind_mode", val = r->bind_mode;
	else if (!one_of(r->concat, concats)) bad = "concat", val = r->concat;
	else if (!one_of(r->coding, codings)) bad = "coding", val = r->coding;
	else if (!one_of(r->no_response, noresp)) bad = "no_response", val = r->no_response;
	if (bad) {
		snprintf(err, errlen, "[route %s] %s: '%s' is not allowed", r->name, bad, val);
		return -1;
	}
	if (r->reconnect_max < r->reconnect_min) {
		snprintf(err, errlen, "[route %s] reconnect_max is smaller than reconnect_min", r->name);
		return -1;
	}
	if (r->failover[0] && (!config_route(cfg, r->failover) || !strcmp(r->failover, r->name))) {
		snprintf(err, errlen, "[route %s] failover: no other route named '%s'", r->name, r->failover);
		return -1;
	}
	if (parse_lists(r, err, errlen) < 0)
		return -1;
	return 0;
}

static int validate(struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (!cfg->http_listen[0] && !cfg->https_listen[0]) {
		snprintf(err, errlen, "[server] http_listen and https_listen are both empty: nothing to listen on");
		return -1;
	}
	if (cfg->http_listen[0] && util_parse_addr(cfg->http_listen, &ss, &len) < 0) {
		snprintf(err, errlen, "[server] http_listen: '%s' is not host:port", cfg->http_listen);
		return -1;
	}
	if (cfg->https_listen[0]) {
		if (util_parse_addr(cfg->https_listen, &ss, &len) < 0) {
			snprintf(err, errlen, "[server] https_listen: '%s' is not host:port", cfg->https_listen);
			return -1;
		}
		if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
			snprintf(err, errlen, "[server] https_listen needs tls_cert and tls_key");
			return -1;
		}
	}
	if ((cfg->smpps_listen[0] && util_parse_addr(cfg->smpps_listen, &ss, &len) < 0) ||
	    (cfg->smpps_tls_listen[0] && util_parse_addr(cfg->smpps_tls_listen, &ss, &len) < 0)) {
		snprintf(err, errlen, "[smpp_server] listen / tls_listen: not host:port");
		return -1;
	}
	if (cfg->smpps_tls_listen[0] && (!cfg->smpps_tls_cert[0] || !cfg->smpps_tls_key[0])) {
		snprintf(err, errlen, "[smpp_server] tls_listen needs tls_cert and tls_key");
		return -1;
	}
	char why[160];
	struct netpolicy *np = netpolicy_new(cfg->webhook_allow_internal, why, sizeof(why));
	if (!np) {
		snprintf(err, errlen, "[webhook] allow_internal: %s", why);
		return -1;
	}
	netpolicy_free(np);
	if (!(np = netpolicy_new(cfg->wake_allow_internal, why, sizeof(why)))) {
		snprintf(err, errlen, "[wake] allow_internal: %s", why);
		return -1;
	}
	netpolicy_free(np);
	if (strncmp(cfg->webpush_subject, "mailto:", 7) != 0 && strncmp(cfg->webpush_subject, "https:", 6) != 0) {
		snprintf(err, errlen, "[webpush] subject: '%s' is not a mailto: or https: contact", cfg->webpush_subject);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_apps; i++) {
		const struct app_config *ap = &cfg->apps[i];
		const char *missing = !strcmp(ap->kind, "fcm") ? (!ap->credentials[0] ? "credentials" : NULL)
				    : !ap->key_file[0] ? "key_file" : !ap->key_id[0] ? "key_id" : !ap->team_id[0] ? "team_id"
				    : !ap->bundle_id[0] ? "bundle_id" : NULL;
		if (missing) {
			snprintf(err, errlen, "[%s %s] %s is required", ap->kind, ap->name, missing);
			return -1;
		}
		if (ap->endpoint[0] && strncmp(ap->endpoint, "https://", 8) != 0) {
			snprintf(err, errlen, "[%s %s] endpoint: '%s' is not an https:// URL", ap->kind, ap->name, ap->endpoint);
			return -1;
		}
		if (!strcmp(ap->kind, "apns") && ap->environment[0] && strcmp(ap->environment, "production") != 0 &&
		    strcmp(ap->environment, "sandbox") != 0) {
			snprintf(err, errlen, "[apns %s] environment: '%s' is not production or sandbox", ap->name,
				 ap->environment);
			return -1;
		}
	}
	if (strcmp(cfg->tls_min_version, "1.2") != 0 && strcmp(cfg->tls_min_version, "1.3") != 0) {
		snprintf(err, errlen, "[server] tls_min_version: '%s' is not 1.2 or 1.3", cfg->tls_min_version);
		return -1;
	}
	if (cfg->ad_end_hour <= cfg->ad_start_hour) {
		snprintf(err, errlen, "[rules] ad_end_hour must be after ad_start_hour");
		return -1;
	}
	if (log_level_parse(cfg->log_level) < 0) {
		snprintf(err, errlen, "[server] log_level: '%s' is not debug|info|warn|error", cfg->log_level);
		return -1;
	}
	int defaults = 0;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		if (!route_name_valid(cfg->routes[i].name)) {   /* [route NAME] is checked as it is read; [smpp] route here */
			snprintf(err, errlen, "[smpp] route: route names are 1-31 letters, digits, '_', '-', '.'");
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->routes[i].name, cfg->routes[j].name) == 0) {
				snprintf(err, errlen, "route '%s' is declared twice", cfg->routes[i].name);
				return -1;
			}
		if (validate_route(cfg, &cfg->routes[i], err, errlen) < 0)
			return -1;
		defaults += cfg->routes[i].is_default;
	}
	if (defaults > 1) {
		snprintf(err, errlen, "more than one route says 'default = yes'");
		return -1;
	}
	return 0;
}

static int finish(struct config *cfg, struct load_ctx *ctx, int rc)
{
	int result = -1;
	if (ctx->failed)
		goto out;
	if (rc > 0) {
		snprintf(ctx->err, ctx->errlen, "line %d: syntax error (or longer than 200 characters)", rc);
		goto out;
	}
	if (rc < 0) {
		snprintf(ctx->err, ctx->errlen, "cannot read the configuration file");
		goto out;
	}
	if (cfg->n_routes == 0) {
		/* [smpp] is the route */
		cfg->routes[0] = cfg->smpp;
		cfg->routes[0].is_default = 1;
		cfg->n_routes = 1;
	} else {
		/* every [route] starts from [smpp], then its own keys, in file order */
		for (size_t r = 0; r < cfg->n_routes; r++) {
			char name[32];
			util_strlcpy(name, cfg->routes[r].name, sizeof(name));
			cfg->routes[r] = cfg->smpp;
			cfg->routes[r].is_default = 0;
			cfg->routes[r].prefixes[0] = '\0';
			cfg->routes[r].failover[0] = '\0';
			util_strlcpy(cfg->routes[r].name, name, sizeof(cfg->routes[r].name));
		}
		for (size_t i = 0; i < ctx->n_vals; i++) {
			struct route_value *v = &ctx->vals[i];
			char section[64];
			snprintf(section, sizeof(section), "route %s", cfg->routes[v->route].name);
			if (set_key(&cfg->routes[v->route], &route_keys[v->key], section, v->value,
				    ctx->err, ctx->errlen) < 0)
				goto out;
		}
		if (cfg->n_routes == 1)
			cfg->routes[0].is_default = 1;
	}
	const char *env = getenv("PUSHGATE_DB");
	if (env && *env) {
		if (strlen(env) >= sizeof(cfg->conninfo)) {
			snprintf(ctx->err, ctx->errlen, "PUSHGATE_DB is too long");
			goto out;
		}
		util_strlcpy(cfg->conninfo, env, sizeof(cfg->conninfo));
	}
	result = validate(cfg, ctx->err, ctx->errlen);
out:
	for (size_t i = 0; i < ctx->n_vals; i++)
		free(ctx->vals[i].value);
	free(ctx->vals);
	return result;
}

static int load_common(struct config *cfg, const char *path, const char *text, char *err, size_t errlen)
{
	struct load_ctx ctx = { .cfg = cfg, .err = err, .errlen = errlen };
	config_defaults(cfg);
	cfg->n_routes = 0;   /* [route] sections decide; none -> [smpp] */
	int rc = path ? ini_parse(path, on_key, &ctx) : ini_parse_string(text, on_key, &ctx);
	if (rc > 0 && ctx.failed) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (line %d)", rc);
	}
	if (rc < 0 && !ctx.failed && path) {
		snprintf(err, errlen, "cannot open %s", path);
		free(ctx.vals);
		return -1;
	}
	return finish(cfg, &ctx, rc);
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	return load_common(cfg, path, NULL, err, errlen);
}

int config_load_string(struct config *cfg, const char *text, char *err, size_t errlen)
{
	return load_common(cfg, NULL, text, err, errlen);
}

const struct route_config *config_route(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_routes; i++)
		if (strcmp(cfg->routes[i].name, name) == 0)
			return &cfg->routes[i];
	return NULL;
}

const struct route_config *config_route_for(const struct config *cfg, const char *msisdn)
{
	const struct route_config *best = NULL, *def = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct route_config *r = &cfg->routes[i];
		if (r->is_default)
			def = r;
		for (size_t p = 0; p < r->n_prefixes; p++) {
			size_t l = strlen(r->prefix[p]);
			if (l > best_len && strncmp(msisdn, r->prefix[p], l) == 0) {
				best = r;
				best_len = l;
			}
		}
	}
	return best ? best : def;
}

int config_route_temporary(const struct route_config *r, uint32_t status)
{
	for (size_t i = 0; i < r->n_temp; i++)
		if (r->temp[i] == status)
			return 1;
	return 0;
}
