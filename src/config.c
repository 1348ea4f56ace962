/*
 * config.c: reads pushgate.ini (libinih) into struct config.
 *
 * One table lists every key with its type, bounds and place in the struct,
 * so defaults, parsing and validation can't drift apart.  Unknown keys,
 * out-of-range values and over-long lines are errors naming the line: a
 * daemon that guesses at its configuration is worse than one that refuses.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "log.h"
#include "util.h"

enum key_type { K_STR, K_SIZE, K_INT, K_UINT, K_DOUBLE };

struct key_def {
	const char   *section;
	const char   *name;
	enum key_type type;
	size_t        offset;
	size_t        size;       /* K_STR: buffer size */
	double        min, max;   /* numbers */
	const char   *def;        /* default, as written in the ini */
};

#define STR(sec, key, field, d) { sec, key, K_STR, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0, d }
#define NUM(sec, key, t, field, lo, hi, d) { sec, key, t, offsetof(struct config, field), 0, lo, hi, d }

static const struct key_def keys[] = {
	STR("server", "http_listen", http_listen, "127.0.0.1:8080"),
	NUM("server", "max_body", K_SIZE, max_body, 1024, 1073741824.0, "1048576"),
	NUM("server", "max_recipients", K_SIZE, max_recipients, 1, 1000000, "1000"),
	NUM("server", "max_text", K_SIZE, max_text, 1, 65536, "4096"),
	STR("server", "log_level", log_level, "info"),
	STR("server", "node_name", node_name, ""),
	STR("database", "conninfo", conninfo, "dbname=pushgate"),
	NUM("database", "batch_max", K_SIZE, batch_max, 1, 100000, "500"),
	NUM("database", "reconnect_interval", K_DOUBLE, reconnect_interval, 0.01, 3600, "1"),
	STR("smpp", "host", smpp_host, "127.0.0.1"),
	NUM("smpp", "port", K_INT, smpp_port, 1, 65535, "2775"),
	STR("smpp", "system_id", smpp_system_id, "pushgate"),
	STR("smpp", "password", smpp_password, "secret"),
	STR("smpp", "system_type", smpp_system_type, ""),
	STR("smpp", "route", smpp_route, "default"),
	NUM("smpp", "window", K_UINT, smpp_window, 1, 10000, "100"),
	NUM("smpp", "enquire_link", K_DOUBLE, smpp_enquire_link, 0.1, 3600, "30"),
	NUM("smpp", "response_timeout", K_DOUBLE, smpp_response_timeout, 0.1, 3600, "10"),
	NUM("smpp", "reconnect_min", K_DOUBLE, smpp_reconnect_min, 0.01, 3600, "1"),
	NUM("smpp", "reconnect_max", K_DOUBLE, smpp_reconnect_max, 0.01, 86400, "30"),
	NUM("smpp", "source_ton", K_INT, smpp_source_ton, 0, 6, "5"),
	NUM("smpp", "source_npi", K_INT, smpp_source_npi, 0, 18, "0"),
	NUM("smpp", "dest_ton", K_INT, smpp_dest_ton, 0, 6, "1"),
	NUM("smpp", "dest_npi", K_INT, smpp_dest_npi, 0, 18, "1"),
	STR("smpp", "id_format", smpp_id_format, "auto"),
	NUM("smpp", "retry_min", K_DOUBLE, smpp_retry_min, 0.01, 86400, "5"),
	NUM("smpp", "validity", K_DOUBLE, smpp_validity, 1, 30 * 86400.0, "86400"),
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

struct load_ctx {
	struct config *cfg;
	char          *err;
	size_t         errlen;
	int            failed;
};

static int set_key(struct config *cfg, const struct key_def *k, const char *value,
		   char *err, size_t errlen)
{
	char *field = (char *)cfg + k->offset;
	long l;
	double d;
	switch (k->type) {
	case K_STR:
		if (strlen(value) >= k->size) {
			snprintf(err, errlen, "[%s] %s: value longer than %zu characters",
				 k->section, k->name, k->size - 1);
			return -1;
		}
		util_strlcpy(field, value, k->size);
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
		 k->section, k->name, value, k->min, k->max);
	return -1;
}

void config_defaults(struct config *cfg)
{
	char ignored[8];
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_KEYS; i++)
		set_key(cfg, &keys[i], keys[i].def, ignored, sizeof(ignored));
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	if (ctx->failed)
		return 0;
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0) {
			if (set_key(ctx->cfg, &keys[i], value, ctx->err, ctx->errlen) < 0) {
				ctx->failed = 1;
				return 0;
			}
			return 1;
		}
	}
	snprintf(ctx->err, ctx->errlen, "unknown key '%s' in section [%s]", name, section);
	ctx->failed = 1;
	return 0;
}

static int validate(struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (util_parse_addr(cfg->http_listen, &ss, &len) < 0) {
		snprintf(err, errlen, "[server] http_listen: '%s' is not host:port", cfg->http_listen);
		return -1;
	}
	if (log_level_parse(cfg->log_level) < 0) {
		snprintf(err, errlen, "[server] log_level: '%s' is not debug|info|warn|error", cfg->log_level);
		return -1;
	}
	if (cfg->smpp_reconnect_max < cfg->smpp_reconnect_min) {
		snprintf(err, errlen, "[smpp] reconnect_max is smaller than reconnect_min");
		return -1;
	}
	const char *fmts[] = { "auto", "hex", "dec", "hex2dec", "raw" };
	int ok = 0;
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
		ok |= strcmp(cfg->smpp_id_format, fmts[i]) == 0;
	if (!ok) {
		snprintf(err, errlen, "[smpp] id_format: '%s' is not auto|hex|dec|hex2dec|raw", cfg->smpp_id_format);
		return -1;
	}
	return 0;
}

static int finish(struct config *cfg, struct load_ctx *ctx, int rc)
{
	if (ctx->failed)
		return -1;
	if (rc > 0) {
		snprintf(ctx->err, ctx->errlen, "line %d: syntax error (or longer than 200 characters)", rc);
		return -1;
	}
	if (rc < 0) {
		snprintf(ctx->err, ctx->errlen, "cannot read the configuration file");
		return -1;
	}
	const char *env = getenv("PUSHGATE_DB");
	if (env && *env) {
		if (strlen(env) >= sizeof(cfg->conninfo)) {
			snprintf(ctx->err, ctx->errlen, "PUSHGATE_DB is too long");
			return -1;
		}
		util_strlcpy(cfg->conninfo, env, sizeof(cfg->conninfo));
	}
	return validate(cfg, ctx->err, ctx->errlen);
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct load_ctx ctx = { cfg, err, errlen, 0 };
	config_defaults(cfg);
	int rc = ini_parse(path, on_key, &ctx);
	if (rc > 0 && ctx.failed) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (line %d)", rc);
	}
	if (rc < 0 && !ctx.failed) {
		snprintf(err, errlen, "cannot open %s", path);
		return -1;
	}
	return finish(cfg, &ctx, rc);
}

int config_load_string(struct config *cfg, const char *text, char *err, size_t errlen)
{
	struct load_ctx ctx = { cfg, err, errlen, 0 };
	config_defaults(cfg);
	int rc = ini_parse_string(text, on_key, &ctx);
	if (rc > 0 && ctx.failed) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (line %d)", rc);
	}
	return finish(cfg, &ctx, rc);
}
