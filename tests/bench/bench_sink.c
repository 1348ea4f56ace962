/*
 * bench_sink.c: the receiver of delivery reports in the benchmarks.
 *
 * An HTTP server on 127.0.0.1 (pushgate's own http.c, keep-alive) that
 * answers every request 200 with an empty body and counts GETs by their
 * first path segment and their "type" query parameter, so one sink serves
 * several gateways at once (/p?type=1 and /k?type=1 are counted apart).
 * GET /count answers the counts as lines "SEGMENT TYPE N" and the time of
 * the last request of each (seconds since the epoch, microseconds), so a
 * benchmark measures "until the last report" without a clock of its own.
 * Prints "port=N" when it listens; runs until SIGTERM.  Python receivers
 * top out at a few thousand requests a second and would measure themselves.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <ev.h>

#include "http.h"
#include "log.h"

#define MAX_KEYS 64

struct key {
	char               seg[16], type[8];
	unsigned long long n;
	double             last;
};

static struct key keys[MAX_KEYS];
static size_t n_keys;

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void count(const char *path, const char *query)
{
	char seg[16] = "", type[8] = "-";
	size_t n = strcspn(path + 1, "/");
	if (n >= sizeof(seg))
		n = sizeof(seg) - 1;
	memcpy(seg, path + 1, n);
	seg[n] = '\0';
	for (const char *p = query; p && *p;) {
		if (!strncmp(p, "type=", 5)) {
			size_t t = strcspn(p + 5, "&");
			if (t >= sizeof(type))
				t = sizeof(type) - 1;
			memcpy(type, p + 5, t);
			type[t] = '\0';
			break;
		}
		p = strchr(p, '&');
		if (p)
			p++;
	}
	struct key *k = NULL;
	for (size_t i = 0; i < n_keys && !k; i++)
		if (!strcmp(keys[i].seg, seg) && !strcmp(keys[i].type, type))
			k = &keys[i];
	if (!k && n_keys < MAX_KEYS) {
		k = &keys[n_keys++];
		strcpy(k->seg, seg);
		strcpy(k->type, type);
	}
	if (k) {
		k->n++;
		k->last = now_s();
	}
}

static void handle(struct http_request *req, void *arg)
{
	(void)arg;
	if (!strcmp(req->path, "/count")) {
		char out[MAX_KEYS * 64 + 1];
		size_t o = 0;
		for (size_t i = 0; i < n_keys; i++)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s %s %llu %.6f\n", keys[i].seg, keys[i].type,
					      keys[i].n, keys[i].last);
		http_respond(req, 200, "Content-Type: text/plain\r\n", out, o);
		return;
	}
	count(req->path, req->query);
	http_respond(req, 200, NULL, "", 0);
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w; (void)revents;
	ev_break(loop, EVBREAK_ALL);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	struct http_config cfg = { .listen = "127.0.0.1:0", .max_body = 65536, .max_conns = 5000,
				   .idle_timeout = 600 };
	char err[256];
	struct http_server *srv = http_server_new(loop, &cfg, handle, NULL, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "bench-sink: %s\n", err);
		return 1;
	}
	printf("port=%d\n", http_server_port(srv));
	fflush(stdout);
	ev_signal term, intr;
	ev_signal_init(&term, stop_cb, SIGTERM);
	ev_signal_start(loop, &term);
	ev_signal_init(&intr, stop_cb, SIGINT);
	ev_signal_start(loop, &intr);
	ev_run(loop, 0);
	http_server_free(srv);
	return 0;
}
