/*
 * main.c: pushgated start-up and shutdown.
 *
 * Reads the configuration, applies pending migrations (blocking, before
 * any listener opens), builds the one `struct server` (store, API, SMPP
 * client, webhooks) on one libev loop, and runs it.  Listeners are bound
 * at start but accept only once every database connection is up and the
 * schema is current (the gate; "ev=ready" in the log, /readyz, READY=1 to
 * the service manager).  SIGTERM/SIGINT (after [server] drain_grace, during
 * which /readyz says "draining") stop intake, drain the SMPP window,
 * the webhook POSTs in flight and the database batches (bounded), unbind,
 * exit (STOPPING=1 first).  SIGHUP reopens [server] log_file and reloads
 * log_level; it never stops the daemon.
 * The only place that may exit() besides config loading.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <libpq-fe.h>

#include "api.h"
#include "auth.h"
#include "batch_csv.h"
#include "client.h"
#include "config.h"
#include "devices.h"
#include "http.h"
#include "intake.h"
#include "log.h"
#include "metrics.h"
#include "depths.h"
#include "rollup.h"
#include "history.h"
#include "migrate.h"
#include "node.h"
#include "privs.h"
#include "sweep.h"
#include "sdnotify.h"
#include "push.h"
#include "server.h"
#include "store.h"
#include "util.h"
#include "wake.h"
#include "webhook.h"

#define DRAIN_SECONDS 10.0
#define INTAKE_GROUP_MAX 2000   /* recipients in one intake statement */

struct server {
	struct ev_loop     *loop;
	struct config       cfg;
	char                node[96];
	struct store       *store;        /* API (auth, status, reports), push channel, devices, webhooks */
	struct store       *intake_store; /* the intake queue: messages of every door, grouped */
	struct intake_queue *intake;
	struct store       *engine_store; /* the SMPP engine's leases and responses: its own connection */
	struct store       *receipt_store; /* the SMPP engine's receipts: a second backend working in parallel */
	struct store       *bulk_store;   /* campaign loading */
	struct store       *slow_store;   /* reports, the console, queue depths: reads that may take long */
	struct intake_queue *bulk_intake; /* campaign chunks, on bulk_store */
	struct auth        *auth;         /* API keys and accounts' pacing, for every HTTP door */
	struct api         *api;
	struct http_server *http;         /* [server] http_listen; NULL when empty */
	struct http_server *https;        /* [server] https_listen; NULL when empty */
	struct smpp_client *smpp;
	struct sweeper     *sweeper;      /* release and sweep (sweep.c), on receipt_store */
	struct depths      *depths;       /* queue depths for /metrics (depths.c), on slow_store */
	struct rollup      *rollup;       /* the report rollup job (rollup.c), on slow_store; NULL when off */
	struct history     *history;      /* history ranges made ahead (history.c), on slow_store */
	struct metrics_accounts *accounts; /* per-account counters of both intake queues */
	struct store       *smpps_store;  /* the SMPP server role: its own connection; NULL when off */
	struct smpp_server *smpps;        /* [smpp_server]; NULL when no listener is configured */
	struct push        *push;
	struct devices     *devices;
	struct webhook     *webhook;
	struct store       *wake_store;   /* platform push (wake.c): its own connection; NULL when no provider is set */
	struct wake        *wake;
	ev_signal           sigterm, sigint, sighup;
	const char         *cfg_path;     /* the ini, read again on SIGHUP */
	ev_timer            drain;
	double              drain_deadline;
	int                 stopping;
	int                 migrated;     /* the schema is current */
	struct node        *node_lock;    /* the node name, held (node.c) */
	int                 node_started; /* after the migrations: the take-back needs the tables */
	int                 claimed;      /* the name was held once, and the predecessor's leases taken back */
	int                 open;         /* listeners accept: every store was up once, schema current */
	ev_timer            gate_retry;   /* migrations could not run yet */
	int                 exit_code;    /* 1: the gate could not open (migration or listen failed) */
	struct store_job    listen_accounts;   /* LISTEN pushgate_accounts on `store`, at each (re)connect */
	struct store_job    listen_routes;     /* LISTEN pushgate_routes, the same way */
	int                 listen_in_flight;  /* of the two */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: pushgated [-c FILE]\n"
		   "  -c, --config FILE   configuration (default /etc/pushgate/pushgate.ini)\n"
		   "  -h, --help          this text\n"
		   "  -V, --version       the version\n"
		   "  PUSHGATE_DB in the environment overrides [database] conninfo\n");
}

/*
 * Migrations (blocking, before any listener opens): a daemon never serves
 * an older schema.  1 done, 0 database unreachable (try again when a
 * connection comes up), -1 a migration failed.
 */
static int migrate_now(const struct config *cfg)
{
	PGconn *conn = PQconnectdb(cfg->conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
		msg[strcspn(msg, "\n")] = '\0';
		log_warn("main", "ev=migrate_deferred why=\"database unreachable: %s\"", msg);
		PQfinish(conn);
		return 0;
	}
	char err[512];
	int functions = 0;
	int n = migrate_apply(conn, &functions, err, sizeof(err));
	if (n >= 0) {
		/* pushgate's own code sender is the system account's: no account may send as it (sql/018) */
		const char *params[1] = { cfg->otp_sender };
		PGresult *r = PQexecParams(conn,
			"INSERT INTO account_senders (account_id, sender)"
			" SELECT id, $1 FROM accounts WHERE role = 'system' ON CONFLICT DO NOTHING",
			1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			log_warn("main", "ev=code_sender_not_reserved err=\"%s\"", PQerrorMessage(conn));
		PQclear(r);
	}
	PQfinish(conn);
	if (n < 0) {
		log_error("main", "ev=migrate_failed err=\"%s\"", err);
		return -1;
	}
	if (n > 0 || functions > 0)
		log_info("main", "ev=migrated applied=%d functions=%d", n, functions);
	return 1;
}

/* 1 when every database connection of the daemon is up. */
static int stores_up(const struct server *srv)
{
	return store_is_up(srv->store) && store_is_up(srv->intake_store) && store_is_up(srv->engine_store) &&
	       store_is_up(srv->receipt_store) &&
	       store_is_up(srv->bulk_store) && store_is_up(srv->slow_store) && (!srv->smpps_store || store_is_up(srv->smpps_store)) &&
	       (!srv->wake_store || store_is_up(srv->wake_store));
}

static void gate_check(struct server *srv);

/*
 * The node's name is held and a crashed predecessor's leases are back
 * (node.c): only now may the SMPP engine and the webhooks lease, and the
 * gate open.
 */
static void node_claimed(void *arg, const struct node_taken *t)
{
	struct server *srv = arg;
	srv->claimed = 1;
	if (t->sms || t->webhooks || t->outbox || t->sockets)
		log_warn("main", "ev=taken_back node=%s sms_resent=%lld webhooks=%lld smpp_outbox=%lld sockets=%lld "
			 "why=\"leased by this node before it stopped unclean\"", srv->node, t->sms, t->webhooks,
			 t->outbox, t->sockets);
	else
		log_info("main", "ev=node_claimed node=%s", srv->node);
	sweep_count_resends(srv->sweeper, (unsigned long long)t->sms);
	smpp_client_start(srv->smpp);
	sweep_start(srv->sweeper);
	depths_start(srv->depths);
	rollup_start(srv->rollup);
	history_start(srv->history);
	webhook_start(srv->webhook);
	gate_check(srv);
}

/* Another live process holds the name: two holders would each take back the other's work. */
static void node_refused(void *arg, const char *why)
{
	struct server *srv = arg;
	log_error("main", "ev=node_name_held node=%s err=\"%s\" action=stop", srv->node, why);
	srv->exit_code = 1;
	if (!srv->open)
		ev_break(srv->loop, EVBREAK_ALL);
	else
		kill(getpid(), SIGTERM);   /* the drain, as for an operator's stop */
}

/*
 * The start-up gate: listeners are bound from the start (a busy port fails
 * at once) but accept only once every store connected and the schema is
 * current, so no request meets a daemon that cannot serve it yet.  Runs on
 * every store's first connection; after that an outage is answered with 503.
 */
static void gate_check(struct server *srv)
{
	if (srv->open || srv->stopping || !stores_up(srv))
		return;
	if (!srv->migrated) {
		int m = migrate_now(&srv->cfg);
		if (m < 0) {
			srv->exit_code = 1;
			ev_break(srv->loop, EVBREAK_ALL);
			return;
		}
		if (m == 0) {
			ev_timer_start(srv->loop, &srv->gate_retry);
			return;
		}
		srv->migrated = 1;
	}
	char err[256];
	if (!srv->claimed) {
		if (!srv->node_started) {
			srv->node_started = 1;
			node_start(srv->node_lock);   /* node_claimed() calls the gate again */
		}
		return;
	}
	if (http_server_open(srv->http, err, sizeof(err)) < 0 || http_server_open(srv->https, err, sizeof(err)) < 0 ||
	    smpp_server_open(srv->smpps, err, sizeof(err)) < 0) {
		log_error("main", "ev=open_failed err=\"%s\"", err);
		srv->exit_code = 1;
		ev_break(srv->loop, EVBREAK_ALL);
		return;
	}
	srv->open = 1;
	log_info("main", "ev=ready http_port=%d https_port=%d smpp_server_port=%d smpp_server_tls_port=%d",
		 http_server_port(srv->http), http_server_port(srv->https), smpp_server_port(srv->smpps),
		 smpp_server_tls_port(srv->smpps));
	if (sdnotify("READY=1") < 0)
		log_warn("main", "ev=notify_failed state=READY");
}

static void gate_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	ev_timer_stop(loop, w);
	gate_check(w->data);
}

static void on_new_work(void *arg)
{
	struct server *srv = arg;
	smpp_client_kick(srv->smpp);
}

/*
 * pushgatectl account disable/enable, from any node: "ID:disabled" or
 * "ID:enabled"; smpp-account disable: "ID:login-disabled:SMPP_ACCOUNT_ID";
 * route pause/resume: pushgate_routes (the engine reads the pauses again).
 */
static void accounts_notify(void *arg, const char *channel, const char *payload)
{
	struct server *srv = arg;
	if (strcmp(channel, "pushgate_routes") == 0) {
		smpp_client_pauses_changed(srv->smpp);
		return;
	}
	if (strcmp(channel, "pushgate_accounts") != 0)
		return;
	char *end;
	long long id = strtoll(payload, &end, 10);
	if (id <= 0 || (*end != ':' && *end != '\0'))
		return;
	auth_accounts_changed(srv->auth, id);
	if (strcmp(end, ":disabled") == 0)
		smpp_server_account_disabled(srv->smpps, id);
	else if (strncmp(end, ":login-disabled:", 16) == 0 && strtoll(end + 16, NULL, 10) > 0)
		smpp_server_login_disabled(srv->smpps, strtoll(end + 16, NULL, 10));
}

static const struct store_stmt stmt_listen_accounts = { "listen_accounts", "LISTEN pushgate_accounts", 0, 1 };
static const struct store_stmt stmt_listen_routes = { "listen_routes", "LISTEN pushgate_routes", 0, 1 };

static void listen_done(struct store_job *job, enum store_error e, const char *err)
{
	struct server *srv = job->arg;
	srv->listen_in_flight--;
	if (e == STORE_SQL_ERROR)
		log_error("main", "ev=listen_failed stmt=%s err=\"%s\"", job->stmt->name, err ? err : "");
}

static void on_store_up(void *arg)
{
	struct server *srv = arg;
	if (!srv->listen_in_flight) {
		srv->listen_in_flight = 2;
		srv->listen_accounts = (struct store_job){ .stmt = &stmt_listen_accounts, .done = listen_done, .arg = srv,
							   .retry = 1 };
		store_submit(srv->store, &srv->listen_accounts);
		srv->listen_routes = (struct store_job){ .stmt = &stmt_listen_routes, .done = listen_done, .arg = srv,
							 .retry = 1 };
		store_submit(srv->store, &srv->listen_routes);
	}
	gate_check(srv);
	if (srv->push)
		push_on_store_up(srv->push);
	webhook_kick(srv->webhook);
}

/* Carriers' MO messages go to the SMPP server role (stored, keywords, forwarded). */
static void mo_to_server(void *arg, const char *route, const struct smpp_pdu *pdu,
			 void (*done)(void *ctx, uint32_t status), void *ctx)
{
	smpp_server_mo(arg, route, pdu, done, ctx);
}

static void on_engine_store_up(void *arg)
{
	struct server *srv = arg;
	gate_check(srv);
	if (srv->smpp) {
		smpp_client_pauses_changed(srv->smpp);   /* a pause may have come while it was down */
		smpp_client_kick(srv->smpp);
	}
}

static void on_wake_store_up(void *arg)
{
	struct server *srv = arg;
	gate_check(srv);
	wake_on_store_up(srv->wake);
}

/* A store with nothing to resume: only the gate cares that it came up. */
static void on_other_store_up(void *arg)
{
	gate_check(arg);
}

static void readiness_of(void *arg, struct api_readiness *r)
{
	struct server *srv = arg;
	r->db_up = stores_up(srv);
	r->open = srv->open;
	r->draining = srv->stopping;
	r->smpp = smpp_client_state(srv->smpp);
}

/* /metrics after the database's and HTTP's (api.c): every module's own */
static void daemon_metrics(void *arg, struct metrics_out *o)
{
	struct server *srv = arg;
	metrics_one(o, "pushgate_http_connections", METRICS_GAUGE, "HTTP and HTTPS connections open",
		    (srv->http ? http_server_connections(srv->http) : 0) +
		    (srv->https ? http_server_connections(srv->https) : 0));
	depths_metrics(srv->depths, o);
	rollup_metrics(srv->rollup, o);
	history_metrics(srv->history, o);
	const struct intake_queue *queues[] = { srv->intake, srv->bulk_intake };
	intake_metrics(o, queues, 2);
	metrics_family(o, "pushgate_account_recipients_total", METRICS_COUNTER,
		       "recipients stored by this node per account id ([server] metrics_accounts; the rest: other)");
	metrics_accounts_write(o, "pushgate_account_recipients_total", srv->accounts, INTAKE_ACCOUNT_RECIPIENTS);
	metrics_family(o, "pushgate_account_refused_total", METRICS_COUNTER,
		       "messages refused by the account's limits or senders, per account id");
	metrics_accounts_write(o, "pushgate_account_refused_total", srv->accounts, INTAKE_ACCOUNT_REFUSED);
	metrics_family(o, "pushgate_intake_to_final_seconds", METRICS_HISTOGRAM,
		       "from intake to the final state this node recorded: push acked, or an SMS's receipt");
	const struct metrics_histogram *fp = push_final_latency(srv->push), *fs = smpp_client_final_latency(srv->smpp);
	const char *lp[] = { "channel", "push", NULL }, *ls[] = { "channel", "sms", NULL };
	if (fp)
		metrics_histogram_write(o, "pushgate_intake_to_final_seconds", lp, fp);
	if (fs)
		metrics_histogram_write(o, "pushgate_intake_to_final_seconds", ls, fs);
	push_metrics(srv->push, o);
	smpp_client_metrics(srv->smpp, o);
	sweep_metrics(srv->sweeper, o);
	webhook_metrics(srv->webhook, o);
	wake_metrics(srv->wake, o);
	smpp_server_metrics(srv->smpps, o);
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct server *srv = w->data;
	int busy = smpp_client_busy(srv->smpp) || store_pending(srv->store) > 0 ||
		   intake_queue_pending(srv->intake) > 0 || store_pending(srv->intake_store) > 0 ||
		   intake_queue_pending(srv->bulk_intake) > 0 ||
		   store_pending(srv->engine_store) > 0 || store_pending(srv->receipt_store) > 0 ||
		   store_pending(srv->bulk_store) > 0 || store_pending(srv->slow_store) > 0 || push_open(srv->push) > 0 || webhook_busy(srv->webhook) ||
		   smpp_server_busy(srv->smpps) || (srv->smpps_store && store_pending(srv->smpps_store) > 0) ||
		   wake_busy(srv->wake) || (srv->wake_store && store_pending(srv->wake_store) > 0);
	if (busy && ev_now(loop) < srv->drain_deadline)
		return;
	if (busy)
		log_warn("main", "ev=drain_timeout db_pending=%zu", store_pending(srv->store));
	ev_timer_stop(loop, w);
	ev_break(loop, EVBREAK_ALL);
}

static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void begin_drain(struct server *srv);

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	struct server *srv = w->data;
	if (srv->stopping) {
		log_warn("main", "ev=second_signal action=exit_now");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	srv->stopping = 1;
	ev_timer_stop(loop, &srv->gate_retry);
	log_info("main", "ev=stopping signal=%d drain_grace=%g", w->signum, srv->open ? srv->cfg.drain_grace : 0);
	sdnotify("STOPPING=1");
	if (srv->open && srv->cfg.drain_grace > 0) {
		/* /readyz says 503 "draining" (readiness_of) while everything still serves */
		ev_timer_init(&srv->drain, grace_cb, srv->cfg.drain_grace, 0.);
		srv->drain.data = srv;
		ev_timer_start(loop, &srv->drain);
		return;
	}
	begin_drain(srv);
}

/* The grace is over: the drain proper. */
static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	ev_timer_stop(loop, w);
	begin_drain(w->data);
}

/* Listeners closed, no new leases, windows, webhooks and batches drained (bounded), then the loop ends. */
static void begin_drain(struct server *srv)
{
	struct ev_loop *loop = srv->loop;
	log_info("main", "ev=drain");
	http_server_close(srv->http);
	http_server_close(srv->https);
	push_close_all(srv->push);
	smpp_client_stop(srv->smpp, DRAIN_SECONDS);
	sweep_stop(srv->sweeper);
	depths_stop(srv->depths);
	rollup_stop(srv->rollup);
	history_stop(srv->history);
	smpp_server_stop(srv->smpps, DRAIN_SECONDS);
	webhook_stop(srv->webhook);
	wake_stop(srv->wake);
	srv->drain_deadline = ev_now(loop) + DRAIN_SECONDS + 2;
	ev_timer_init(&srv->drain, drain_cb, 0.05, 0.05);
	srv->drain.data = srv;
	ev_timer_start(loop, &srv->drain);
}

/* [server] log_file appended to as stderr (every log line goes to fd 2).  0, or -1 (stderr kept). */
static int open_log_file(const char *path)
{
	if (!path[0])
		return 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	int r = dup2(fd, STDERR_FILENO);
	close(fd);
	return r < 0 ? -1 : 0;
}

/* SIGHUP (logrotate): the log file reopened, log_level read again; never a stop. */
static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop, (void)revents;
	struct server *srv = w->data;
	int reopened = srv->cfg.log_file[0] ? open_log_file(srv->cfg.log_file) : 1;
	struct config *fresh = malloc(sizeof(*fresh));
	char err[512];
	if (!fresh || config_load(fresh, srv->cfg_path, err, sizeof(err)) < 0) {
		log_warn("main", "ev=reload_failed log_reopened=%s err=\"%s\" action=kept_running",
			 reopened == 0 ? "yes" : reopened > 0 ? "none" : "no", fresh ? err : "out of memory");
		free(fresh);
		return;
	}
	int level = log_level_parse(fresh->log_level);
	if (level >= 0) {
		log_set_level((enum log_level)level);
		util_strlcpy(srv->cfg.log_level, fresh->log_level, sizeof(srv->cfg.log_level));
	}
	log_info("main", "ev=reloaded log_reopened=%s log_level=%s note=\"other settings take effect at a restart\"",
		 reopened == 0 ? "yes" : reopened > 0 ? "none" : "no", srv->cfg.log_level);
	free(fresh);
}

int main(int argc, char **argv)
{
	const char *path = "/etc/pushgate/pushgate.ini";
	int opt;
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("pushgated %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	static struct server srv;
	char err[512];
	if (config_load(&srv.cfg, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "pushgated: %s: %s\n", path, err);
		return 1;
	}
	if (privs_check_start(&srv.cfg, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "pushgated: %s\n", err);
		return 1;
	}
	srv.cfg_path = path;
	if (open_log_file(srv.cfg.log_file) < 0) {
		fprintf(stderr, "pushgated: [server] log_file %s: %s\n", srv.cfg.log_file, strerror(errno));
		return 1;
	}
	log_set_level((enum log_level)log_level_parse(srv.cfg.log_level));
	int stable_name;
	node_default_name(&srv.cfg, srv.node, sizeof(srv.node), &stable_name);
	if (!stable_name)
		log_warn("main", "ev=node_name_unstable node=%s why=\"no node_name and no fixed listener port: after "
			 "a crash this node's leases wait for their expiry\"", srv.node);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);   /* until its handler runs on the loop: a SIGHUP never stops the daemon */
	/* every device holds a socket: take all the descriptors the system allows */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_info("main", "ev=fd_limit nofile=%llu", (unsigned long long)rl.rlim_cur);
	int m = migrate_now(&srv.cfg);
	if (m < 0)
		return 1;
	srv.migrated = m;   /* else when the database answers, before any listener opens */

	srv.loop = ev_default_loop(EVFLAG_AUTO);
	struct store_config sc = { srv.cfg.conninfo, srv.cfg.batch_max, srv.cfg.reconnect_interval, 120.0, 0 };
	srv.store = store_new(srv.loop, &sc);
	srv.intake_store = store_new(srv.loop, &sc);
	srv.intake = srv.intake_store ? intake_queue_new(srv.loop, srv.intake_store, &srv.cfg, INTAKE_GROUP_MAX,
										 on_new_work, &srv) : NULL;
	srv.engine_store = store_new(srv.loop, &sc);
	srv.receipt_store = store_new(srv.loop, &sc);
	srv.bulk_store = store_new(srv.loop, &sc);
	struct store_config slow = sc;
	slow.plan_per_call = 1;   /* reports, the console, searches: planned for whose rows they read */
	slow.round_max = 1;       /* each job its own transaction: a retention drop's locks end with it (history.h) */
	srv.slow_store = store_new(srv.loop, &slow);
	srv.bulk_intake = srv.bulk_store ? intake_queue_new(srv.loop, srv.bulk_store, &srv.cfg, BATCH_CHUNK,
							    on_new_work, &srv) : NULL;
	srv.smpp = srv.store && srv.intake && srv.bulk_intake && srv.engine_store && srv.receipt_store && srv.slow_store
		   ? smpp_client_new(srv.loop, srv.engine_store, &srv.cfg, srv.node) : NULL;
	if (srv.smpp)
		smpp_client_set_receipt_store(srv.smpp, srv.receipt_store);
	srv.sweeper = srv.smpp ? sweep_new(srv.loop, srv.receipt_store, &srv.cfg, on_new_work, &srv) : NULL;
	/* on a connection of its own: a count never holds up the API's statements */
	srv.depths = srv.sweeper ? depths_new(srv.loop, srv.slow_store) : NULL;
	srv.rollup = srv.depths ? rollup_new(srv.loop, srv.slow_store, srv.cfg.rollup_interval) : NULL;
	struct history_config hic = { srv.cfg.retention_history_days, srv.cfg.retention_outbox_days,
				     srv.cfg.retention_check_interval, srv.cfg.retention_export_dir[0] != 0 };
	srv.history = srv.depths && (srv.rollup || srv.cfg.rollup_interval <= 0) ? history_new(srv.loop, srv.slow_store, &hic)
		      : NULL;
	srv.accounts = srv.history ? metrics_accounts_new(srv.cfg.metrics_accounts) : NULL;
	if (srv.accounts) {
		intake_queue_count_accounts(srv.intake, srv.accounts);
		intake_queue_count_accounts(srv.bulk_intake, srv.accounts);
	}
	srv.push = srv.accounts ? push_new(srv.loop, srv.store, &srv.cfg, srv.node) : NULL;
	if (srv.cfg.webpush_vapid_key[0] || srv.cfg.n_apps > 0) {
		srv.wake_store = store_new(srv.loop, &sc);
		srv.wake = srv.wake_store ? wake_new(srv.loop, srv.wake_store, &srv.cfg, srv.node, err, sizeof(err)) : NULL;
		if (!srv.wake) {
			fprintf(stderr, "pushgated: %s\n", srv.wake_store ? err : "out of memory");
			return 1;
		}
		store_on_up(srv.wake_store, on_wake_store_up, &srv);
	}
	srv.devices = srv.push ? devices_new(srv.loop, srv.store, &srv.cfg, srv.push, srv.wake, on_new_work, &srv)
		      : NULL;
	srv.webhook = srv.devices ? webhook_new(srv.loop, srv.store, &srv.cfg, srv.node) : NULL;
	srv.auth = srv.webhook ? auth_new(srv.store) : NULL;
	struct api_deps deps = {
		.door = { .loop = srv.loop, .store = srv.store, .intake = srv.intake, .bulk_intake = srv.bulk_intake,
			  .cfg = &srv.cfg, .auth = srv.auth, .on_new_work = on_new_work, .work_arg = &srv },
		.readiness = readiness_of, .metrics = daemon_metrics, .arg = &srv,
		.push = srv.push, .devices = srv.devices, .slow_store = srv.slow_store,
	};
	srv.api = srv.auth ? api_new(&deps) : NULL;
	if (!srv.api) {
		fprintf(stderr, "pushgated: out of memory\n");
		return 1;
	}
	struct http_config hc = { .listen = srv.cfg.http_listen, .max_body = srv.cfg.max_body,
				  .max_upload = srv.cfg.max_batch_body, .upload_prefix = "/v1/batches",
				  .wants_stream = api_wants_stream, .on_response = api_on_response,
				  .max_header = 16384, .idle_timeout = srv.cfg.http_idle_timeout, .max_conns = 10000,
				  .header_timeout = srv.cfg.http_header_timeout,
				  .min_body_rate = srv.cfg.http_min_body_rate > 0 ? srv.cfg.http_min_body_rate : -1,
				  .max_conns_per_ip = (unsigned)srv.cfg.http_max_conns_per_ip,
				  .deferred = 1 };
	if (srv.cfg.http_listen[0]) {
		srv.http = http_server_new(srv.loop, &hc, api_handle, srv.api, err, sizeof(err));
		if (!srv.http) {
			fprintf(stderr, "pushgated: http_listen: %s\n", err);
			return 1;
		}
	}
	if (srv.cfg.https_listen[0]) {
		hc.listen = srv.cfg.https_listen;
		hc.tls_cert = srv.cfg.tls_cert;
		hc.tls_key = srv.cfg.tls_key;
		hc.tls_min_version = srv.cfg.tls_min_version;
		srv.https = http_server_new(srv.loop, &hc, api_handle, srv.api, err, sizeof(err));
		if (!srv.https) {
			fprintf(stderr, "pushgated: https_listen: %s\n", err);
			return 1;
		}
	}
	if (srv.cfg.smpps_listen[0] || srv.cfg.smpps_tls_listen[0]) {
		srv.smpps_store = store_new(srv.loop, &sc);
		srv.smpps = srv.smpps_store ? smpp_server_new(srv.loop, srv.smpps_store, srv.intake, &srv.cfg, srv.node,
							      err, sizeof(err)) : NULL;
		if (!srv.smpps) {
			fprintf(stderr, "pushgated: [smpp_server]: %s\n", srv.smpps_store ? err : "out of memory");
			return 1;
		}
		smpp_client_on_mo(srv.smpp, mo_to_server, srv.smpps);
		store_on_up(srv.smpps_store, on_other_store_up, &srv);
	}
	/* every port is bound and every key loaded: root is no longer needed */
	if (privs_drop(&srv.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "pushgated: %s\n", err);
		return 1;
	}
	if (srv.cfg.run_as[0])
		log_info("main", "ev=user_switched user=%s uid=%ld", srv.cfg.run_as, (long)getuid());
	ev_timer_init(&srv.gate_retry, gate_retry_cb, 1.0, 0.);
	srv.gate_retry.data = &srv;
	struct node_events nev = { node_claimed, node_refused, &srv };
	srv.node_lock = node_new(srv.loop, &sc, srv.node, &nev);
	if (!srv.node_lock) {
		fprintf(stderr, "pushgated: out of memory\n");
		return 1;
	}
	store_on_up(srv.bulk_store, on_other_store_up, &srv);
	store_on_up(srv.slow_store, on_other_store_up, &srv);
	store_on_up(srv.intake_store, on_other_store_up, &srv);
	store_on_up(srv.store, on_store_up, &srv);
	store_on_notify(srv.store, accounts_notify, &srv);
	store_on_up(srv.engine_store, on_engine_store_up, &srv);
	store_on_up(srv.receipt_store, on_engine_store_up, &srv);
	store_start(srv.store);
	store_start(srv.intake_store);
	store_start(srv.engine_store);
	store_start(srv.receipt_store);
	store_start(srv.bulk_store);
	store_start(srv.slow_store);
	if (srv.smpps_store)
		store_start(srv.smpps_store);
	if (srv.wake_store)
		store_start(srv.wake_store);
	/* the engine and the webhooks start at the gate, once the node's name is held (claim_and_take_back) */

	ev_signal_init(&srv.sigterm, signal_cb, SIGTERM);
	srv.sigterm.data = &srv;
	ev_signal_start(srv.loop, &srv.sigterm);
	ev_signal_init(&srv.sigint, signal_cb, SIGINT);
	srv.sigint.data = &srv;
	ev_signal_start(srv.loop, &srv.sigint);
	ev_signal_init(&srv.sighup, sighup_cb, SIGHUP);
	srv.sighup.data = &srv;
	ev_signal_start(srv.loop, &srv.sighup);

	log_info("main", "ev=started node=%s http=%s port=%d https=%s https_port=%d routes=%zu", srv.node,
		 srv.cfg.http_listen[0] ? srv.cfg.http_listen : "-", http_server_port(srv.http),
		 srv.cfg.https_listen[0] ? srv.cfg.https_listen : "-", http_server_port(srv.https),
		 srv.cfg.n_routes);
	for (size_t i = 0; i < srv.cfg.n_routes; i++) {
		const struct route_config *r = &srv.cfg.routes[i];
		log_info("main", "ev=route name=%s smsc=%s:%d bind_mode=%s binds=%u window=%u tps=%g prefixes=\"%s\" "
			 "default=%s failover=%s", r->name, r->host, r->port, r->bind_mode, r->binds, r->window,
			 r->tps, r->prefixes, r->is_default ? "yes" : "no", r->failover[0] ? r->failover : "-");
	}
	if (srv.smpps)
		log_info("main", "ev=smpp_server port=%d tls_port=%d", smpp_server_port(srv.smpps),
			 smpp_server_tls_port(srv.smpps));
	ev_run(srv.loop, 0);

	/* stores first: their last callbacks still find the API, the intake queue and the client alive */
	store_free(srv.intake_store);
	intake_queue_free(srv.intake);
	store_free(srv.engine_store);
	store_free(srv.receipt_store);
	store_free(srv.bulk_store);
	store_free(srv.slow_store);
	intake_queue_free(srv.bulk_intake);
	store_free(srv.store);
	store_free(srv.smpps_store);
	store_free(srv.wake_store);
	smpp_server_free(srv.smpps);
	smpp_client_free(srv.smpp);
	sweep_free(srv.sweeper);
	depths_free(srv.depths);
	rollup_free(srv.rollup);
	history_free(srv.history);
	metrics_accounts_free(srv.accounts);
	http_server_free(srv.http);
	http_server_free(srv.https);
	push_free(srv.push);
	devices_free(srv.devices);
	webhook_free(srv.webhook);
	wake_free(srv.wake);
	node_free(srv.node_lock);   /* the name is free for the next process (the session ends) */
	api_free(srv.api);
	auth_free(srv.auth);   /* after the API and the doors that hold it */
	ev_loop_destroy(srv.loop);
	log_info("main", "ev=stopped");
	return srv.exit_code;
}
