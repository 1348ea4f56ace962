/*
 * jstream.c: reads a JSON object as it arrives, without building it: each
 * member's value is handed over as its raw text, except the array member
 * named at init, whose elements are handed over one by one.  Campaign
 * uploads stream this way (batches.c): memory is bounded by one value, not
 * by the upload.
 *
 * Owns the bytes of the value being read (at most max_value) and its
 * state; checks the document's structure (braces, brackets, strings,
 * commas and colons) but not the values' syntax: the caller decodes each
 * raw value (it is short) and refuses what it cannot read.  Member names
 * are plain (no escapes, at most JSTREAM_KEY_MAX - 1 bytes).  Never reads
 * past the length it is given; one error ends the stream.
 */
#include "jstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	S_BEGIN,       /* before '{' */
	S_KEY_OR_END,  /* after '{': a name or '}' */
	S_KEY_NEXT,    /* after ',': a name */
	S_KEY,         /* inside a name */
	S_COLON,       /* after a name */
	S_VALUE,       /* before a member's value */
	S_ELEM_FIRST,  /* after '[' of the array member: an element or ']' */
	S_ELEM,        /* after ',' in the array: an element */
	S_RAW,         /* inside a value or an element */
	S_AFTER_MEMBER,/* after a member's value: ',' or '}' */
	S_AFTER_ELEM,  /* after an element: ',' or ']' */
	S_TRAILER,     /* after the final '}': blanks only */
	S_ERROR,
};

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int jstream_init(struct jstream *js, const char *array_key, size_t max_value)
{
	memset(js, 0, sizeof(*js));
	js->array_key = array_key;
	js->max_value = max_value;
	js->buf = malloc(max_value + 1);
	js->state = S_BEGIN;
	return js->buf ? 0 : -1;
}

void jstream_free(struct jstream *js)
{
	free(js->buf);
	js->buf = NULL;
}

static long fail(struct jstream *js, size_t at, const char *fmt, const char *what)
{
	js->state = S_ERROR;
	snprintf(js->err, sizeof(js->err), fmt, what);
	js->err_at = js->offset + at;
	return -1;
}

/* The callback asked to stop: consumed bytes of this feed are used. */
static long paused(struct jstream *js, size_t consumed)
{
	js->offset += consumed;
	return (long)consumed;
}

/* A value or an element begins. */
static void start_raw(struct jstream *js)
{
	js->depth = 0;
	js->in_string = 0;
	js->escape = 0;
	js->len = 0;
	js->state = S_RAW;
}

/* The array member's ']': back among the members.  The callback's answer. */
static int end_array(struct jstream *js, jstream_fn fn, void *arg)
{
	js->in_array = 0;
	js->state = S_AFTER_MEMBER;
	return fn(arg, JSTREAM_ARRAY_END, js->key, NULL, 0);
}

/* The raw value in buf is complete: hands it over.  The callback's answer. */
static int emit(struct jstream *js, jstream_fn fn, void *arg)
{
	js->buf[js->len] = '\0';
	int elem = js->in_array;
	int r = fn(arg, elem ? JSTREAM_ELEMENT : JSTREAM_MEMBER, js->key, js->buf, js->len);
	js->len = 0;
	js->state = elem ? S_AFTER_ELEM : S_AFTER_MEMBER;
	return r;
}

long jstream_feed(struct jstream *js, const char *data, size_t n, jstream_fn fn, void *arg)
{
	if (js->state == S_ERROR)
		return -1;
	size_t i = 0;
	while (i < n) {
		char c = data[i];
		switch (js->state) {
		case S_BEGIN:
			if (blank(c))
				break;
			if (c != '{')
				return fail(js, i, "%s", "the body must be a JSON object");
			js->state = S_KEY_OR_END;
			break;
		case S_KEY_OR_END:
		case S_KEY_NEXT:
			if (blank(c))
				break;
			if (c == '}' && js->state == S_KEY_OR_END) {
				js->state = S_TRAILER;
				break;
			}
			if (c != '"')
				return fail(js, i, "%s", "a member name in quotes was expected");
			js->klen = 0;
			js->state = S_KEY;
			break;
		case S_KEY:
			if (c == '"') {
				js->key[js->klen] = '\0';
				js->state = S_COLON;
				break;
			}
			if (c == '\\' || (unsigned char)c < 0x20 || js->klen + 1 >= JSTREAM_KEY_MAX)
				return fail(js, i, "%s", "member names are plain and short");
			js->key[js->klen++] = c;
			break;
		case S_COLON:
			if (blank(c))
				break;
			if (c != ':')
				return fail(js, i, "%s", "':' was expected after a member name");
			js->state = S_VALUE;
			break;
		case S_VALUE:
			if (blank(c))
				break;
			if (c == '[' && js->array_key && strcmp(js->key, js->array_key) == 0) {
				if (js->array_seen)
					return fail(js, i, "member \"%s\" is repeated", js->array_key);
				js->array_seen = 1;
				js->in_array = 1;
				js->state = S_ELEM_FIRST;
				int r = fn(arg, JSTREAM_ARRAY_START, js->key, NULL, 0);
				if (r != 0)
					return r < 0 ? fail(js, i, "%s", "refused") : paused(js, i + 1);
				break;
			}
			if (c == ',' || c == '}' || c == ']' || c == ':')
				return fail(js, i, "%s", "a value was expected");
			start_raw(js);
			continue;   /* the same byte starts the value */
		case S_ELEM_FIRST:
		case S_ELEM:
			if (blank(c))
				break;
			if (c == ']' && js->state == S_ELEM_FIRST) {
				int r = end_array(js, fn, arg);
				if (r != 0)
					return r < 0 ? fail(js, i, "%s", "refused") : paused(js, i + 1);
				break;
			}
			if (c == ',' || c == ']' || c == '}' || c == ':')
				return fail(js, i, "%s", "an array element was expected");
			start_raw(js);
			continue;
		case S_RAW: {
			int end = 0;
			if (js->in_string) {
				if (js->escape)
					js->escape = 0;
				else if (c == '\\')
					js->escape = 1;
				else if (c == '"')
					js->in_string = 0;
			} else if (c == '"') {
				js->in_string = 1;
			} else if (c == '{' || c == '[') {
				if (++js->depth > JSTREAM_DEPTH_MAX)
					return fail(js, i, "%s", "values nest too deep");
			} else if (c == '}' || c == ']') {
				if (js->depth == 0)
					end = 1;
				else
					js->depth--;
			} else if (js->depth == 0 && (c == ',' || blank(c))) {
				end = 1;
			}
			if (end) {
				/* c belongs to what follows the value: handled in the next state */
				int r = emit(js, fn, arg);
				if (r < 0)
					return fail(js, i, "%s", "refused");
				if (r > 0)
					return paused(js, i);
				continue;
			}
			if (js->len >= js->max_value)
				return fail(js, i, js->in_array ? "an element of \"%s\" is too long"
								: "member \"%s\" is too long", js->key);
			js->buf[js->len++] = c;
			break;
		}
		case S_AFTER_ELEM:
			if (blank(c))
				break;
			if (c == ',') {
				js->state = S_ELEM;
			} else if (c == ']') {
				int r = end_array(js, fn, arg);
				if (r != 0)
					return r < 0 ? fail(js, i, "%s", "refused") : paused(js, i + 1);
			} else {
				return fail(js, i, "%s", "',' or ']' was expected after an array element");
			}
			break;
		case S_AFTER_MEMBER:
			if (blank(c))
				break;
			if (c == ',')
				js->state = S_KEY_NEXT;
			else if (c == '}')
				js->state = S_TRAILER;
			else
				return fail(js, i, "%s", "',' or '}' was expected after a member");
			break;
		case S_TRAILER:
			if (!blank(c))
				return fail(js, i, "%s", "nothing may follow the object");
			break;
		default:
			return -1;
		}
		i++;
	}
	js->offset += n;
	return (long)n;
}

int jstream_finish(struct jstream *js)
{
	if (js->state == S_TRAILER)
		return 0;
	if (js->state != S_ERROR) {
		snprintf(js->err, sizeof(js->err), "the body ends before its object does");
		js->err_at = js->offset;
		js->state = S_ERROR;
	}
	return -1;
}
