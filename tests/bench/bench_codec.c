/*
 * bench_codec.c: pushgate-bench-codec, the SMPP codec's throughput on one
 * core.  Measures the PDUs of the hot path as the engine uses them:
 * submit_sm encode+decode (160-char GSM text; 70-char UCS-2 in a
 * message_payload TLV), submit_sm_resp encode+decode, deliver_sm receipt
 * decode, and receipt decode + dlr_from_pdu.  Each case runs for about
 * BENCH_SECONDS (default 2) per repetition, BENCH_REPS (default 5) times,
 * and prints min/median/max operations per second.
 * Owns nothing beyond its static buffers; pins itself to the CPU it starts
 * on.  Never touches the network or disk; exits 0 unless the codec gives a
 * wrong answer (a benchmark of a broken codec is worthless).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* sched_setaffinity, sched_getcpu */
#endif
#include "codec.h"
#include "dlr.h"

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_EVERY 1024u   /* iterations between clock reads */
#define MAX_REPS    50
#define TARGET_SUBMIT_PER_S 300000.0

static uint8_t wire[SMPP_MAX_PDU_LEN];
static uint8_t receipt_wire[1024];
static size_t  receipt_len;
static uint8_t ucs2_text[140];
static volatile uint64_t sink;   /* keeps results observable */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "pushgate-bench-codec: %s\n", what);
	exit(1);
}

/* A submit_sm between two international numbers asking for a receipt: no text yet. */
static void fill_submit(struct smpp_pdu *p, uint32_t seq, uint8_t data_coding)
{
	smpp_pdu_init(p, SMPP_SUBMIT_SM, seq);
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	strcpy(p->source_addr, "447700900123");
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	strcpy(p->destination_addr, "447700900456");
	p->registered_delivery = 1;
	p->data_coding = data_coding;
	p->sm_length = 0;
}

static void fill_submit_gsm(struct smpp_pdu *p, uint32_t seq)
{
	static const char text[] =
		"Your pushgate verification code is 482913. It expires in 10 minutes. "
		"Do not share it with anyone. If you did not ask for it, please ignore this SMS now. Thanks!";
	fill_submit(p, seq, 0);
	_Static_assert(sizeof(text) - 1 == 160, "a full single GSM segment");
	memcpy(p->short_message, text, 160);
	p->sm_length = 160;
}

static void fill_submit_ucs2(struct smpp_pdu *p, uint32_t seq)
{
	fill_submit(p, seq, 0x08);
	if (smpp_tlv_add(p, SMPP_TLV_MESSAGE_PAYLOAD, ucs2_text, sizeof(ucs2_text)) != 0)
		die("cannot add message_payload");
}

/* ---- the cases: each does `n` operations and returns a checksum ---------- */

static uint64_t run_submit(uint64_t n, int ucs2)
{
	struct smpp_pdu in, out;
	uint64_t acc = 0;
	if (ucs2)
		fill_submit_ucs2(&in, 1);
	else
		fill_submit_gsm(&in, 1);
	for (uint64_t i = 0; i < n; i++) {
		in.hdr.sequence_number = (uint32_t)(i & 0x7fffffffu) + 1;
		long len = smpp_encode(&in, wire, sizeof(wire));
		if (len <= 0 || smpp_decode(wire, (size_t)len, &out) != 0)
			die("submit_sm round trip failed");
		acc += out.hdr.sequence_number + out.sm_length + out.n_tlvs;
	}
	return acc;
}

static uint64_t run_submit_gsm(uint64_t n) { return run_submit(n, 0); }
static uint64_t run_submit_ucs2(uint64_t n) { return run_submit(n, 1); }

static uint64_t run_submit_resp(uint64_t n)
{
	struct smpp_pdu req, in, out;
	uint64_t acc = 0;
	smpp_pdu_init(&req, SMPP_SUBMIT_SM, 1);
	for (uint64_t i = 0; i < n; i++) {
		req.hdr.sequence_number = (uint32_t)(i & 0x7fffffffu) + 1;
		smpp_pdu_resp(&in, &req, 0);
		memcpy(in.message_id, "6b05950721b294", 15);
		long len = smpp_encode(&in, wire, sizeof(wire));
		if (len <= 0 || smpp_decode(wire, (size_t)len, &out) != 0)
			die("submit_sm_resp round trip failed");
		acc += out.hdr.sequence_number + (uint8_t)out.message_id[0];
	}
	return acc;
}

static uint64_t run_receipt_decode(uint64_t n)
{
	struct smpp_pdu out;
	uint64_t acc = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (smpp_decode(receipt_wire, receipt_len, &out) != 0)
			die("deliver_sm decode failed");
		acc += out.sm_length + out.n_tlvs;
	}
	return acc;
}

static uint64_t run_receipt_dlr(uint64_t n)
{
	struct smpp_pdu out;
	struct dlr d;
	uint64_t acc = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (smpp_decode(receipt_wire, receipt_len, &out) != 0 || dlr_from_pdu(&out, &d) != 0)
			die("receipt parse failed");
		acc += (uint64_t)d.outcome + (uint8_t)d.id[0];
	}
	return acc;
}

/* ---- setup and checks ---------------------------------------------------- */

static void build_fixtures(void)
{
	for (size_t i = 0; i < sizeof(ucs2_text); i += 2) {   /* Cyrillic, 70 chars */
		ucs2_text[i] = 0x04;
		ucs2_text[i + 1] = (uint8_t)(0x10 + (i / 2) % 32);
	}

	/* the receipt smsc-sim sends: appendix-B text plus the two TLVs */
	static const char rid[] = "6b05950721b294";
	static const uint8_t state = SMPP_STATE_DELIVERED;
	struct smpp_pdu p;
	smpp_pdu_init(&p, SMPP_DELIVER_SM, 7);
	p.source_addr_ton = 1;
	p.source_addr_npi = 1;
	strcpy(p.source_addr, "447700900456");
	p.dest_addr_ton = 1;
	p.dest_addr_npi = 1;
	strcpy(p.destination_addr, "447700900123");
	p.esm_class = 0x04;
	int n = snprintf((char *)p.short_message, sizeof(p.short_message),
			 "id:%s sub:001 dlvrd:001 submit date:2405011200 done date:2405011201 "
			 "stat:DELIVRD err:000 text:Your pushgate verif", rid);
	p.sm_length = (uint8_t)n;
	smpp_tlv_add(&p, SMPP_TLV_RECEIPTED_MESSAGE_ID, rid, sizeof(rid));
	smpp_tlv_add(&p, SMPP_TLV_MESSAGE_STATE, &state, 1);
	long len = smpp_encode(&p, receipt_wire, sizeof(receipt_wire));
	if (len <= 0)
		die("cannot encode the receipt fixture");
	receipt_len = (size_t)len;
}

/* One careful round trip of each fixture before timing anything. */
static void check_fixtures(void)
{
	struct smpp_pdu in, out;
	struct dlr d;

	fill_submit_gsm(&in, 42);
	long len = smpp_encode(&in, wire, sizeof(wire));
	if (len <= 0 || smpp_decode(wire, (size_t)len, &out) != 0 || out.sm_length != 160 ||
	    memcmp(out.short_message, in.short_message, 160) != 0 ||
	    strcmp(out.destination_addr, "447700900456") != 0)
		die("GSM submit_sm does not round-trip");

	fill_submit_ucs2(&in, 43);
	len = smpp_encode(&in, wire, sizeof(wire));
	const struct smpp_tlv *t;
	if (len <= 0 || smpp_decode(wire, (size_t)len, &out) != 0 || out.data_coding != 0x08 ||
	    (t = smpp_tlv_find(&out, SMPP_TLV_MESSAGE_PAYLOAD)) == NULL || t->length != 140 ||
	    memcmp(t->value, ucs2_text, 140) != 0)
		die("UCS-2 submit_sm does not round-trip");

	if (smpp_decode(receipt_wire, receipt_len, &out) != 0 || dlr_from_pdu(&out, &d) != 0 ||
	    strcmp(d.id, "6b05950721b294") != 0 || d.outcome != DLR_DELIVERED)
		die("receipt fixture does not parse");
}

struct bench_case {
	const char *name;
	uint64_t  (*run)(uint64_t n);
};

static const struct bench_case cases[] = {
	{ "submit_sm gsm160 encode+decode", run_submit_gsm },
	{ "submit_sm ucs2-70 payload-tlv encode+decode", run_submit_ucs2 },
	{ "submit_sm_resp encode+decode", run_submit_resp },
	{ "deliver_sm receipt decode", run_receipt_decode },
	{ "deliver_sm receipt decode+dlr_from_pdu", run_receipt_dlr },
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Operations per second over one timed run of about `seconds`. */
static double measure(const struct bench_case *bc, double seconds)
{
	uint64_t ops = 0;
	double start = now_s(), t;
	do {
		sink += bc->run(CHECK_EVERY);
		ops += CHECK_EVERY;
	} while ((t = now_s()) - start < seconds);
	return (double)ops / (t - start);
}

static double env_double(const char *name, double def, double lo, double hi)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0')
		return def;
	char *end;
	double d = strtod(v, &end);
	if (*end || d < lo || d > hi)
		die("bad BENCH_SECONDS or BENCH_REPS");
	return d;
}

int main(void)
{
	double seconds = env_double("BENCH_SECONDS", 2.0, 0.01, 600.0);
	int reps = (int)env_double("BENCH_REPS", 5, 1, MAX_REPS);
	double median_submit = 0;

	int cpu = sched_getcpu();
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			cpu = -1;
	}
	build_fixtures();
	check_fixtures();

	printf("pushgate-bench-codec: %d runs x %.1f s per case, one thread, cpu=%d%s\n",
	       reps, seconds, cpu, cpu < 0 ? " (not pinned)" : " (pinned)");
	printf("%-46s %12s %12s %12s %9s\n", "case", "min ops/s", "median ops/s",
	       "max ops/s", "ns/op");
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		double r[MAX_REPS];
		measure(&cases[c], seconds / 10);   /* warm caches and branch predictors */
		for (int i = 0; i < reps; i++)
			r[i] = measure(&cases[c], seconds);
		qsort(r, (size_t)reps, sizeof(r[0]), cmp_double);
		double med = reps % 2 ? r[reps / 2] : (r[reps / 2 - 1] + r[reps / 2]) / 2;
		if (c == 0)
			median_submit = med;
		printf("%-46s %12.0f %12.0f %12.0f %9.1f\n", cases[c].name, r[0], med,
		       r[reps - 1], 1e9 / med);
		fflush(stdout);
	}
	printf("target: >= %.0f submit_sm encode+decode/s per core: %s (median %.0f)\n",
	       TARGET_SUBMIT_PER_S, median_submit >= TARGET_SUBMIT_PER_S ? "met" : "NOT met",
	       median_submit);
	return 0;
}
