/*
 * fuzz_smpp_server.c: libFuzzer target for the SMPP server's PDU handling,
 * through the real session state machine (session.c in server mode) and
 * server.c: the input is the byte stream an ESME sends on one connection
 * (a socketpair), fed in pieces with the event loop run between them, so
 * framing, bind, submits, long-message parts, query/cancel and unbind meet
 * the same FSM as in pushgated.  Built with
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION: any bind is accepted without a
 * database (account 1, window 100), and the store is never started, so
 * every intake job fails at once and is answered with an error.  Owns the
 * loop, store and server of one input; frees them all before returning.
 */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <ev.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "store.h"

static void pump(struct ev_loop *loop, int fd, int rounds)
{
	uint8_t sink[65536];
	for (int i = 0; i < rounds; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		while (read(fd, sink, sizeof(sink)) > 0)
			;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static int ready;
	char err[256];
	if (!ready) {
		config_defaults(&cfg);
		cfg.smpps_reassembly_timeout = 0.001;
		log_set_level((enum log_level)(LOG_ERROR + 1));   /* quiet */
		signal(SIGPIPE, SIG_IGN);   /* the server may close while input is still being written */
		ready = 1;
	}
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct store_config sc = { "host=/nonexistent", 100, 1, 1, 0 };
	struct store *st = store_new(loop, &sc);   /* never started: down */
	struct intake_queue *iq = st ? intake_queue_new(loop, st, &cfg, 1000, NULL, NULL) : NULL;
	struct smpp_server *srv = iq ? smpp_server_new(loop, st, iq, &cfg, "fuzz", err, sizeof(err)) : NULL;
	int sv[2];
	if (!srv || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		goto out;
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if (smpp_server_adopt(srv, sv[0], 0) < 0) {
		close(sv[1]);
		goto out;
	}
	/* pieces of varying size: PDUs split across reads and several in one */
	size_t off = 0, step = 1;
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);
		if (w > 0)
			off += (size_t)w;
		pump(loop, sv[1], 2);
		step = step * 3 + 7;
		if (step > 4096)
			step = 1;
		if (w <= 0)
			break;
	}
	pump(loop, sv[1], 4);
	shutdown(sv[1], SHUT_WR);
	pump(loop, sv[1], 4);
	close(sv[1]);
	pump(loop, -1, 2);
out:
	store_free(st);   /* first: its last callbacks still find the queue and the server */
	intake_queue_free(iq);
	smpp_server_free(srv);
	ev_loop_destroy(loop);
	return 0;
}
