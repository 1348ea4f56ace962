/*
 * batch_csv.h: a campaign's rows, without I/O: the CSV reader (records,
 * header, rows), the text template ("Dear {name}"), the check that a number
 * comes once, and the checks of a number and a text.  Shared by the HTTP
 * loader (batches.c) and `pushgatectl send --csv`; fuzzed by fuzz_csv.
 */
#ifndef PUSHGATE_BATCH_CSV_H
#define PUSHGATE_BATCH_CSV_H

#include <stddef.h>
#include <stdint.h>

/* Recipients per intake statement (one messages row each, sharing batch_id). */
#define BATCH_CHUNK 5000
/* Rejected rows listed in an answer (all are counted). */
#define BATCH_REJECTED_SHOWN 100
/* Longest CSV record (a quoted field may span lines). */
#define BATCH_RECORD_MAX (64 * 1024)
#define BATCH_TPL_MAX_VARS 32
#define BATCH_TPL_MAX_SEGS 128
#define BATCH_NAME_MAX 64

/*
 * A text template: "{name}" (a letter or '_', then letters, digits, '_', at
 * most 64) is replaced by the recipient's value of that variable; every
 * other character, braces included, is literal.
 */
struct batch_seg { size_t off, len; int var; };   /* var < 0: the literal src[off..off+len) */
struct batch_tpl {
	const char *src;                        /* not owned */
	size_t      nseg;
	struct batch_seg seg[BATCH_TPL_MAX_SEGS];
	size_t      nvars;
	char        vars[BATCH_TPL_MAX_VARS][BATCH_NAME_MAX + 1];
};

/* 0, or -1 with a message (too many variables or pieces). */
int batch_tpl_compile(struct batch_tpl *t, const char *src, char *err, size_t errlen);

/* Renders into out (NUL-terminated); vals[i] for vars[i].  Length, or -1 when longer than cap - 1. */
long batch_tpl_render(const struct batch_tpl *t, const char *const *vals, const size_t *lens, char *out,
		      size_t cap);

/* Numbers seen in one campaign (8 bytes each): the second occurrence of a number is rejected. */
struct batch_seen {
	uint64_t *slot;
	size_t    cap, n;
};
/* 1: new, 0: seen before, -1: out of memory. */
int batch_seen_add(struct batch_seen *s, const char *msisdn);
void batch_seen_reset(struct batch_seen *s);

/* MSISDN of 3 to 20 digits, an optional leading '+', surrounding blanks ignored.  0 / -1. */
int batch_msisdn(const char *s, size_t len, char out[21]);

/* 1 when s[0..len) is valid UTF-8 without NUL or other C0 controls except TAB, CR, LF. */
int batch_text_ok(const char *s, size_t len);

/*
 * The end of the CSV record starting at p: its length without the line
 * end, and in *next the offset after the line end.  0 when no line end
 * outside quotes is in p[0..len) (the record is incomplete unless at EOF:
 * then it is the whole rest).
 */
int batch_csv_record(const char *p, size_t len, size_t *rec_len, size_t *next);

/* One campaign's CSV: the header's columns, the template and what is reused per row. */
struct batch_csv {
	size_t      ncols;
	char      **cols;                        /* header names, malloc'd */
	size_t      to_col;
	int         var_col[BATCH_TPL_MAX_VARS];
	struct batch_tpl tpl;
	size_t      max_text;
	struct batch_seen seen;
	char       *scratch;                     /* unquoted fields */
	const char **val;
	size_t     *vlen;
	char       *text;                        /* rendered text, max_text + 1 */
};

/*
 * Reads the header record (a `to` column, names unique) and checks that
 * every variable of the template is a column.  0, or -1 with *field
 * ("csv" or "text") and a message.
 */
int batch_csv_open(struct batch_csv *c, const char *rec, size_t len, const char *tpl_text, size_t max_text,
		   const char **field, char *msg, size_t msglen);

enum batch_row { BATCH_ROW_OK, BATCH_ROW_BAD, BATCH_ROW_EMPTY, BATCH_ROW_NOMEM };
/*
 * One data record: OK with to and *text (NULL when the template has no
 * variables; valid until the next call), BAD with *field and a message,
 * EMPTY for a blank line.
 */
enum batch_row batch_csv_row(struct batch_csv *c, const char *rec, size_t len, char to[21], const char **text,
			     const char **field, char *msg, size_t msglen);
void batch_csv_close(struct batch_csv *c);

#endif
