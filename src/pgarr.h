/*
 * pgarr.h: PostgreSQL array literals ('{1,2,NULL}', '{"a","b\"c"}') built
 * element by element, so a batch of any size travels as one parameter of
 * one statement (unnest on the server side).
 */
#ifndef PUSHGATE_PGARR_H
#define PUSHGATE_PGARR_H

#include <stddef.h>

struct pgarr {
	char  *p;
	size_t len, cap;
	size_t n;      /* elements so far */
	int    oom;
};

/* Appends a quoted text element (NULL: SQL NULL). */
void pgarr_text(struct pgarr *a, const char *s);
/* Appends a number (is_null: SQL NULL). */
void pgarr_num(struct pgarr *a, long long v, int is_null);
/*
 * Closes the literal and hands it over (malloc'd, the caller frees);
 * NULL when memory ran out at any point.  The pgarr is empty afterwards.
 */
char *pgarr_take(struct pgarr *a);
/* Drops what was built. */
void pgarr_reset(struct pgarr *a);

#endif
