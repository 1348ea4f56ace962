/*
 * jstream.h: a JSON object read as it arrives (see jstream.c).
 */
#ifndef PUSHGATE_JSTREAM_H
#define PUSHGATE_JSTREAM_H

#include <stddef.h>

#define JSTREAM_KEY_MAX   64
#define JSTREAM_DEPTH_MAX 32

enum jstream_event {
	JSTREAM_MEMBER,       /* key: a member's name; raw, len: its value's text */
	JSTREAM_ARRAY_START,  /* the array member begins (key: its name) */
	JSTREAM_ELEMENT,      /* raw, len: one element's text */
	JSTREAM_ARRAY_END,    /* the array member is over */
};

/*
 * Called for each event; raw is NUL-terminated and valid until the next
 * call.  Returns 0 to go on, 1 to stop after this event (jstream_feed
 * returns the bytes used; feed the rest later), -1 to end in error.
 */
typedef int (*jstream_fn)(void *arg, enum jstream_event ev, const char *key, const char *raw, size_t len);

struct jstream {
	const char *array_key;    /* the member whose elements come one by one */
	size_t      max_value;    /* the longest raw value or element */
	char        err[96];      /* why, once jstream_feed or jstream_finish failed */
	size_t      err_at;       /* byte offset of the error in the document */
	/* private */
	int         state, in_array, array_seen, depth, in_string, escape;
	char        key[JSTREAM_KEY_MAX];
	size_t      klen, len, offset;
	char       *buf;
};

/* 0, or -1 when out of memory. */
int jstream_init(struct jstream *js, const char *array_key, size_t max_value);
void jstream_free(struct jstream *js);

/*
 * Reads n more bytes.  Returns how many were used (n, or fewer when the
 * callback asked to stop), or -1 with js->err (the document is broken, a
 * value is too long, or the callback refused).
 */
long jstream_feed(struct jstream *js, const char *data, size_t n, jstream_fn fn, void *arg);

/* The document ended: 0 when it was a whole object, else -1 with js->err. */
int jstream_finish(struct jstream *js);

#endif
