/*
 * kform.h: the parameters of Kannel's sendsms (docs/kannel.md): where they
 * are (form body, X-Kannel-* headers, query string), how they decode
 * (application/x-www-form-urlencoded, the text from its charset to UTF-8)
 * and what a valid request holds.  No I/O: kannel.c is the door that reads
 * the request, checks the account and hands the message to the intake.
 */
#ifndef PUSHGATE_KFORM_H
#define PUSHGATE_KFORM_H

#include <stddef.h>

#define KFORM_CHARSET_MAX 40
#define KFORM_DLR_URL_MAX 1024
#define KFORM_DEFERRED_MAX 525600L   /* minutes: one year */
#define KFORM_VALIDITY_MAX 43200L    /* minutes: 30 days, the API's bound */

/* Where the parameters are, in the order they are looked up: form body, X-Kannel-* headers, query. */
struct kform_src {
	const char *form;                                       /* NULL: no form body */
	size_t      form_len;
	const char *(*header)(const void *arg, const char *name); /* NULL: headers carry no parameters */
	const void *header_arg;
	const char *query;                                      /* never NULL */
	size_t      query_len;
};

/*
 * The value of a parameter (name, or its Kannel alias; header names the
 * X-Kannel-<header> header, NULL: none) as a malloc'd, NUL-terminated
 * buffer of *len bytes (it may hold NULs).  1 found, 0 absent, -1 no memory.
 */
int kform_param(const struct kform_src *src, const char *name, const char *alias, const char *header,
		char **out, size_t *len);

/* A bounded copy into buf (cap bytes); 1 found, 0 absent, -1 too long, NUL inside or no memory. */
int kform_param_small(const struct kform_src *src, const char *name, const char *alias, const char *header,
		      char *buf, size_t cap);

/* The charset parameter of a Content-Type header (ct may be NULL) into out ("" when none). */
void kform_content_charset(const char *ct, char *out, size_t cap);

/* One sendsms message.  Owned by the caller; kform_msg_free() frees what kform_parse() allocated. */
struct kform_msg {
	char        from[21];
	char       *text;            /* UTF-8, no NUL inside, malloc'd */
	size_t      n_to;
	char      (*to)[21];         /* n_to distinct receivers (digits), malloc'd */
	char       *denied;          /* " 12ab 34-" receivers refused, malloc'd or NULL */
	char       *dlr_url;         /* malloc'd, NULL: no reports (or mask 0) */
	int         dlr_mask;
	long        validity;        /* minutes, 1..KFORM_VALIDITY_MAX; -1: absent */
	long        deferred;        /* minutes, 0..KFORM_DEFERRED_MAX; -1: absent */
	char        channels[9];     /* "push,sms", "sms,push", "sms", "push"; "": not given */
	const char *bad_text;        /* after -1: Kannel's answer text */
};

/*
 * Every parameter of a request into m (zeroed first).  raw_body: the text
 * of a raw-body POST (NULL: the text parameter), in raw_charset when that
 * is not empty; binary_body: it came as application/octet-stream.  0, or
 * -1 with m->bad_text set (answered with 400), or -2 when out of memory.
 * Call kform_msg_free() in every case.
 */
int kform_parse(struct kform_msg *m, const struct kform_src *src, const char *raw_body, size_t raw_len,
		const char *raw_charset, int binary_body, size_t max_recipients, size_t max_text);

void kform_msg_free(struct kform_msg *m);

#endif
