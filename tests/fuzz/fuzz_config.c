/*
 * fuzz_config.c: libFuzzer target for pushgate.ini loading (config.c over
 * libinih): the input, as a C string, goes to config_load_string() twice,
 * once with a roomy error buffer and once with an 8-byte one.  Both runs
 * must agree (same result, byte-identical struct config: nothing carried
 * over from an earlier input).  A refusal must say why; an accepted
 * configuration must hold what pushgated relies on: 1 to CONFIG_MAX_ROUTES
 * routes with valid distinct names, at most one default (the only route
 * is the default), failovers naming another route, digit prefixes and
 * command_status lists within their caps, known enumerations, ordered
 * bounds, every string terminated; config_route() finds each route and
 * config_route_for() answers a route or NULL.  PUSHGATE_DB is unset so the
 * environment plays no part.  abort() on any violation; LeakSanitizer
 * sees anything config.c keeps.  Links config.c, netpolicy.c, log.c,
 * util.c and libinih.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config cfg_a, cfg_b;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	unsetenv("PUSHGATE_DB");
	return 0;
}

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static int one_of(const char *v, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(v, *list) == 0)
			return 1;
	return 0;
}

static void check_route(const struct config *cfg, const struct route_config *r)
{
	static const char *const fmts[] = { "auto", "hex", "dec", "hex2dec", "raw", NULL };
	static const char *const modes[] = { "trx", "tx+rx", NULL };
	static const char *const concats[] = { "udh8", "udh16", "sar", "payload", NULL };
	static const char *const codings[] = { "auto", "gsm7", "latin1", "ucs2", NULL };
	static const char *const noresp[] = { "resend", "unknown", NULL };

	if (!TERMINATED(r->name) || !TERMINATED(r->host) || !TERMINATED(r->system_id) || !TERMINATED(r->password) ||
	    !TERMINATED(r->system_type) || !TERMINATED(r->bind_mode) || !TERMINATED(r->prefixes) ||
	    !TERMINATED(r->failover) || !TERMINATED(r->id_format) || !TERMINATED(r->concat) ||
	    !TERMINATED(r->coding) || !TERMINATED(r->temporary_errors) || !TERMINATED(r->no_response) ||
	    !TERMINATED(r->tls_ca_file) || !TERMINATED(r->tls_server_name))
		abort();
	size_t n = strlen(r->name);
	if (n == 0 || strspn(r->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") != n)
		abort();
	if (!one_of(r->id_format, fmts) || !one_of(r->bind_mode, modes) || !one_of(r->concat, concats) ||
	    !one_of(r->coding, codings) || !one_of(r->no_response, noresp))
		abort();
	if (r->port < 1 || r->port > 65535 || r->binds < 1 || r->binds > 64 || r->window < 1 || r->window > 10000 ||
	    r->tps < 0 || r->reconnect_max < r->reconnect_min || r->enquire_link <= 0 || r->response_timeout <= 0)
		abort();
	if (r->failover[0] && (strcmp(r->failover, r->name) == 0 || !config_route(cfg, r->failover)))
		abort();
	if (r->n_prefixes > CONFIG_MAX_PREFIXES || r->n_temp > CONFIG_MAX_TEMP)
		abort();
	for (size_t p = 0; p < r->n_prefixes; p++) {
		size_t l = strnlen(r->prefix[p], sizeof(r->prefix[p]));
		if (l == 0 || l > 20 || strspn(r->prefix[p], "0123456789") != l)
			abort();
	}
	for (size_t t = 0; t < r->n_temp; t++)
		if (!config_route_temporary(r, r->temp[t]))
			abort();
	if (config_route(cfg, r->name) != r)
		abort();
}

static void check_config(const struct config *cfg)
{
	if (cfg->n_routes < 1 || cfg->n_routes > CONFIG_MAX_ROUTES)
		abort();
	if (!TERMINATED(cfg->http_listen) || !TERMINATED(cfg->https_listen) || !TERMINATED(cfg->tls_cert) ||
	    !TERMINATED(cfg->tls_key) || !TERMINATED(cfg->tls_min_version) || !TERMINATED(cfg->log_level) ||
	    !TERMINATED(cfg->metrics_token) || !TERMINATED(cfg->node_name) || !TERMINATED(cfg->conninfo) ||
	    !TERMINATED(cfg->otp_sender) || !TERMINATED(cfg->code_prefixes) || !TERMINATED(cfg->web_root) ||
	    !TERMINATED(cfg->invite_text) || !TERMINATED(cfg->timezone) || !TERMINATED(cfg->ad_prefix) ||
	    !TERMINATED(cfg->ad_optout_line) || !TERMINATED(cfg->webhook_allow_internal) ||
	    !TERMINATED(cfg->smpps_listen) || !TERMINATED(cfg->smpps_tls_listen) ||
	    !TERMINATED(cfg->smpps_tls_cert) || !TERMINATED(cfg->smpps_tls_key) ||
	    !TERMINATED(cfg->smpps_delivered_states) || !TERMINATED(cfg->smpps_mo_keywords))
		abort();
	if (!cfg->http_listen[0] && !cfg->https_listen[0])
		abort();
	if (cfg->https_listen[0] && (!cfg->tls_cert[0] || !cfg->tls_key[0]))
		abort();
	if (cfg->ad_end_hour <= cfg->ad_start_hour || cfg->max_text < 1 || cfg->max_recipients < 1)
		abort();
	int defaults = 0;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		check_route(cfg, &cfg->routes[i]);
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->routes[i].name, cfg->routes[j].name) == 0)
				abort();
		defaults += cfg->routes[i].is_default != 0;
	}
	if (defaults > 1 || (cfg->n_routes == 1 && defaults != 1))
		abort();
	static const char *const numbers[] = { "", "8210", "821012345678", "1", "99999999999999999999", "+82" };
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		const struct route_config *r = config_route_for(cfg, numbers[i]);
		if (r && (r < cfg->routes || r >= cfg->routes + cfg->n_routes))
			abort();
		if (!r && defaults)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], small[8];
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	err[0] = '\0';
	int rc = config_load_string(&cfg_a, text, err, sizeof(err));
	if (rc != 0 && rc != -1)
		abort();
	if (rc < 0 && err[0] == '\0')
		abort();
	if (!TERMINATED(err))
		abort();
	if (rc == 0)
		check_config(&cfg_a);

	memset(small, 'x', sizeof(small));
	small[0] = '\0';
	int again = config_load_string(&cfg_b, text, small, sizeof(small));
	if (again != rc || !TERMINATED(small))
		abort();
	if (rc == 0 && memcmp(&cfg_a, &cfg_b, sizeof(cfg_a)) != 0)
		abort();
	free(text);
	return 0;
}
