/*
 * config.h: pushgated's configuration (etc/pushgate.ini), with defaults.
 */
#ifndef PUSHGATE_CONFIG_H
#define PUSHGATE_CONFIG_H

#include <stddef.h>

struct config {
	/* [server] */
	char   http_listen[128];
	size_t max_body;
	size_t max_recipients;
	size_t max_text;
	char   log_level[16];
	char   node_name[64];
	/* [database] */
	char   conninfo[512];
	size_t batch_max;
	double reconnect_interval;
	/* [smpp] */
	char   smpp_host[128];
	int    smpp_port;
	char   smpp_system_id[16];
	char   smpp_password[9];
	char   smpp_system_type[13];
	char   smpp_route[32];
	unsigned smpp_window;
	double smpp_enquire_link;
	double smpp_response_timeout;
	double smpp_reconnect_min;
	double smpp_reconnect_max;
	int    smpp_source_ton, smpp_source_npi, smpp_dest_ton, smpp_dest_npi;
	char   smpp_id_format[16];
	double smpp_retry_min;
	double smpp_validity;
};

/* Fills every field with its documented default. */
void config_defaults(struct config *cfg);

/*
 * Loads `path` over the defaults; then PUSHGATE_DB from the environment
 * overrides database.conninfo.  Returns 0, or -1 with a message naming the
 * line / key / value in err.  Unknown sections or keys are errors.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Same from a string (for tests). */
int config_load_string(struct config *cfg, const char *text, char *err, size_t errlen);

#endif
