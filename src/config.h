/*
 * config.h: pushgated's configuration (etc/pushgate.ini), with defaults.
 *
 * [smpp] holds engine-wide settings and the defaults of every route; each
 * [route NAME] section is one carrier (SMSC) and overrides what it names.
 * Without any [route ...] section, [smpp] itself is the one route, named by
 * its `route` key (default "default").
 */
#ifndef PUSHGATE_CONFIG_H
#define PUSHGATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_ROUTES   32
#define CONFIG_MAX_PREFIXES 64
#define CONFIG_MAX_TEMP     32

struct route_config {
	char     name[32];
	char     host[128];
	int      port;
	char     system_id[16];
	char     password[9];
	char     system_type[13];
	char     bind_mode[8];          /* "trx" | "tx+rx" */
	unsigned binds;                 /* sessions (pairs for tx+rx) */
	unsigned window;                /* per session */
	double   tps;                   /* submits per second for the route, 0 = unlimited */
	char     prefixes[512];         /* comma-separated MSISDN prefixes */
	int      is_default;            /* "default = yes": numbers no prefix matches */
	char     failover[32];          /* route to use while every bind of this one is down */
	char     id_format[16];         /* auto | hex | dec | hex2dec | raw */
	char     concat[16];            /* udh8 | udh16 | sar | payload */
	char     coding[16];            /* auto | gsm7 | latin1 | ucs2 */
	double   enquire_link, response_timeout, reconnect_min, reconnect_max;
	int      source_ton, source_npi, dest_ton, dest_npi;
	char     temporary_errors[256]; /* command_status values retried later */
	char     no_response[16];       /* resend | unknown */
	int      tls;                   /* TLS to the SMSC */
	int      tls_verify;            /* check the SMSC's certificate chain and name */
	char     tls_ca_file[256];      /* PEM trust anchors; empty = system default paths */
	char     tls_server_name[128];  /* SNI + name checked; empty = host */

	/* derived by config_load */
	size_t   n_prefixes;
	char     prefix[CONFIG_MAX_PREFIXES][21];
	size_t   n_temp;
	uint32_t temp[CONFIG_MAX_TEMP];
};

#define CONFIG_MAX_APPS 8

/* [fcm NAME] and [apns NAME]: one native app's platform push credentials (wake.c). */
struct app_config {
	char kind[8];                   /* "fcm" | "apns" (from the section) */
	char name[32];
	char credentials[256];          /* fcm: the service account's JSON key file */
	char project_id[128];           /* fcm: "" = the service account's project_id */
	char key_file[256];             /* apns: the .p8 signing key (PEM PKCS#8, P-256) */
	char key_id[16];                /* apns: its 10-character key id */
	char team_id[16];               /* apns: the developer team id */
	char bundle_id[128];            /* apns: the app's bundle id (apns-topic) */
	char environment[16];           /* apns: production | sandbox */
	char endpoint[256];             /* the service's base URL; "" = Google's or Apple's */
};

struct config {
	/* [server] */
	char   http_listen[128];          /* plain HTTP; empty = none (then https_listen is required) */
	char   https_listen[128];         /* HTTPS + wss; empty = none */
	char   tls_cert[256];             /* PEM certificate chain for https_listen, leaf first */
	char   tls_key[256];              /* PEM private key of tls_cert */
	char   run_as[33];                /* [server] user: switched to after binding when started as root */
	char   log_file[256];             /* appended to instead of stderr; reopened on SIGHUP ("": stderr) */
	int    allow_root;                /* yes: may keep running as root (no user) */
	char   tls_min_version[8];        /* "1.2" | "1.3" */
	double http_idle_timeout;         /* seconds a connection may idle (and a TLS handshake may take) */
	double drain_grace;               /* seconds of SIGTERM before the drain: /readyz 503, still serving */
	size_t max_body;
	size_t max_batch_body;          /* POST /v1/batches: CSV or JSON campaign bodies */
	size_t max_recipients;
	size_t max_text;
	char   log_level[16];
	char   metrics_token[128];
	size_t metrics_accounts;          /* accounts with their own series in /metrics (the rest: "other") */
	double http_header_timeout;     /* seconds from a request's first byte to its last header */
	double http_min_body_rate;      /* bytes/s a body must average after 10 s (0: any) */
	size_t http_max_conns_per_ip;      /* GET /metrics needs it as a bearer token; "" = this host only */
	char   node_name[64];
	/* [database] */
	char   conninfo[512];
	size_t batch_max;
	double reconnect_interval;
	/* [push] */
	double push_timeout;            /* seconds a push waits for the app's ack before SMS */
	double push_heartbeat;          /* seconds between WebSocket pings */
	size_t push_max_connections;    /* device connections of this node */
	size_t push_max_connections_per_ip;
	char   otp_sender[21];          /* sender of registration codes */
	double otp_ttl;                 /* seconds a registration code is valid */
	int    otp_echo;                /* yes: the code is also in the HTTP answer (demo only) */
	char   code_prefixes[256];      /* numbers a code SMS may go to (comma-separated prefixes; "*": any) */
	double code_per_ip;             /* code SMS per client address per hour */
	double code_rate;               /* code SMS per second, this node, all clients */
	size_t code_daily_cap;          /* code SMS per UTC day, every node together (0: no cap) */
	char   web_root[256];           /* directory of the inbox page; "" = built-in default */
	char   console_chart_js[256];   /* the console's charting library (Debian: libjs-chart.js) */
	/* [reports] */
	double rollup_interval;         /* seconds between report rollup runs (rollup.c); 0: not on this node */
	/* [retention]: pushgated (history.c) and pushgatectl retention (ctl_retention.c) */
	double retention_history_days;  /* history ranges older than this may be dropped */
	double retention_outbox_days;   /* their outboxes (webhook, SMPP) may be emptied after this */
	char   retention_export_dir[256]; /* "": drop without exporting */
	double retention_check_interval; /* seconds between pushgated's drops of old ranges; 0: none */
	int    invite;                  /* yes: numbers with no app get an install invitation by SMS */
	double invite_period;           /* seconds between two invitations to one number */
	char   invite_text[160];        /* the invitation (GSM 03.38 keeps it one SMS) */
	/* [rules]: what carriers and regulators expect */
	int    ad_start_hour;           /* ads only from this local hour ... */
	int    ad_end_hour;             /* ... until this one (exclusive) */
	char   timezone[64];            /* of those hours */
	char   ad_prefix[64];           /* put before an ad's text */
	char   ad_optout_line[128];     /* put after it; {number} = the account's opt-out number */
	/* [webhook] */
	size_t webhook_batch_max;       /* events per POST */
	double webhook_timeout;         /* seconds per request */
	double webhook_connect_timeout; /* seconds to connect (and TLS), within timeout */
	double webhook_max_age;         /* seconds an event is retried before it is given up */
	size_t webhook_concurrency;     /* requests in flight */
	size_t webhook_per_account;     /* requests in flight for one account */
	size_t webhook_per_host;        /* requests in flight to one host[:port] */
	double webhook_backoff_min;     /* seconds before the first retry (doubles per attempt) */
	double webhook_backoff_max;     /* seconds, the longest wait between two attempts */
	char   webhook_allow_internal[512]; /* address ranges webhooks and dlr-urls may reach although internal */
	/* [wake]: platform push to devices with no live socket (wake.c) */
	size_t wake_concurrency;        /* platform pushes in flight, this node */
	double wake_timeout;            /* seconds per request to a push service */
	double wake_backoff_min;        /* seconds before the first retry after 429/5xx (doubles) */
	char   wake_allow_internal[512]; /* address ranges a device's endpoint may reach although internal */
	char   wake_ca_file[256];       /* PEM trust anchors for push services; "" = the system's */
	/* [webpush]: Web Push (RFC 8030, 8291, 8292) */
	char   webpush_vapid_key[256];  /* PEM file of the P-256 VAPID key; "" = Web Push off */
	char   webpush_subject[128];    /* VAPID sub: mailto: or https: contact of the operator */
	struct app_config apps[CONFIG_MAX_APPS];   /* [fcm NAME], [apns NAME] */
	size_t n_apps;
	/* [smpp_server]: pushgate as an SMSC for customers' ESMEs (smpp/server.c) */
	char   smpps_listen[128];         /* plain SMPP; empty = none */
	char   smpps_tls_listen[128];     /* SMPP over TLS; empty = none */
	char   smpps_tls_cert[256];       /* PEM chain for tls_listen, leaf first */
	char   smpps_tls_key[256];
	double smpps_bind_timeout;        /* seconds from connect (and TLS) to bind, and per deliver_sm */
	double smpps_enquire_link;        /* idle seconds before we send enquire_link */
	double smpps_auth_delay;          /* seconds before a refused bind is answered */
	double smpps_receipt_retry;       /* seconds before an unanswered deliver_sm is sent again */
	double smpps_reassembly_timeout;  /* seconds a long message waits for its missing parts */
	char   smpps_delivered_states[128]; /* recipient states reported as DELIVRD */
	char   smpps_mo_keywords[256];    /* MO texts that opt the handset out (comma-separated) */
	size_t smpps_max_conns;
	size_t smpps_max_unbound;         /* connections not bound yet */
	size_t smpps_auth_threads;        /* threads checking bind passwords (PBKDF2) */
	size_t smpps_auth_queue;          /* password checks waiting at most; beyond, a bind gets 0x08 */
	size_t smpps_bind_failures;       /* failed binds of an address (system_id: twice) before a lockout */
	/* [smpp]: engine-wide */
	double smpp_retry_min;
	double smpp_validity;
	double smpp_idle_poll;           /* seconds between looks at an idle queue (new work kicks at once) */
	struct route_config smpp;       /* defaults for routes; the route itself when none is declared */
	/* [route NAME] */
	struct route_config routes[CONFIG_MAX_ROUTES];
	size_t n_routes;                /* >= 1 after config_load */
};

/* Fills every field with its documented default (one route: "default"). */
void config_defaults(struct config *cfg);

/*
 * Loads `path` over the defaults; then PUSHGATE_DB from the environment
 * overrides database.conninfo.  Returns 0, or -1 with a message naming the
 * line / key / value in err.  Unknown sections or keys are errors.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Same from a string (for tests). */
int config_load_string(struct config *cfg, const char *text, char *err, size_t errlen);

/* Route by name, or NULL. */
const struct route_config *config_route(const struct config *cfg, const char *name);

/*
 * The route for an MSISDN: longest matching prefix, else the default route,
 * else NULL (no route: the recipient can't be sent by SMS).
 */
const struct route_config *config_route_for(const struct config *cfg, const char *msisdn);

/* 1 when command_status is in the route's temporary_errors list. */
int config_route_temporary(const struct route_config *r, uint32_t status);

#endif
