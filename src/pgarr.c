/*
 * pgarr.c: PostgreSQL array literal builder.  Text elements are always
 * double-quoted with '"' and '\' escaped, so any string is safe; callers
 * must still not pass NUL bytes or invalid UTF-8 (the server refuses them).
 * Allocation grows geometrically; an allocation failure is remembered and
 * reported once by pgarr_take.
 */
#include "pgarr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct pgarr *a, const char *s, size_t n)
{
	if (a->oom)
		return;
	if (a->len + n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		while (cap < a->len + n + 2)
			cap *= 2;
		char *p = realloc(a->p, cap);
		if (!p) {
			a->oom = 1;
			return;
		}
		a->p = p;
		a->cap = cap;
	}
	memcpy(a->p + a->len, s, n);
	a->len += n;
	a->p[a->len] = '\0';
}

static void sep(struct pgarr *a)
{
	put(a, a->n++ ? "," : "{", 1);
}

void pgarr_text(struct pgarr *a, const char *s)
{
	sep(a);
	if (!s) {
		put(a, "NULL", 4);
		return;
	}
	put(a, "\"", 1);
	while (*s) {
		size_t run = strcspn(s, "\"\\");
		put(a, s, run);
		s += run;
		if (*s) {
			put(a, "\\", 1);
			put(a, s, 1);
			s++;
		}
	}
	put(a, "\"", 1);
}

void pgarr_num(struct pgarr *a, long long v, int is_null)
{
	char num[24];
	sep(a);
	int n = is_null ? snprintf(num, sizeof(num), "NULL") : snprintf(num, sizeof(num), "%lld", v);
	put(a, num, (size_t)n);
}

char *pgarr_take(struct pgarr *a)
{
	if (a->n == 0)
		put(a, "{", 1);
	put(a, "}", 1);
	char *p = a->oom ? NULL : a->p;
	if (a->oom)
		free(a->p);
	*a = (struct pgarr){0};
	return p;
}

void pgarr_reset(struct pgarr *a)
{
	free(a->p);
	*a = (struct pgarr){0};
}
