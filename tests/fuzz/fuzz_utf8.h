/*
 * fuzz_utf8.h: a strict UTF-8 decoder written out for the fuzz targets
 * (no overlongs, no surrogates, nothing past U+10FFFF), so the checks they
 * make on the code's texts don't reuse the code's own decoder.
 */
#ifndef PUSHGATE_FUZZ_UTF8_H
#define PUSHGATE_FUZZ_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The code point at s[*i] into *cp, *i past it: 1; 0 when it is not strict UTF-8. */
static inline int fuzz_utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
	unsigned c = s[*i];
	size_t n;
	if (c < 0x80) {
		*cp = c;
		n = 1;
	} else if ((c & 0xe0) == 0xc0) {
		*cp = c & 0x1f;
		n = 2;
	} else if ((c & 0xf0) == 0xe0) {
		*cp = c & 0x0f;
		n = 3;
	} else if ((c & 0xf8) == 0xf0) {
		*cp = c & 0x07;
		n = 4;
	} else {
		return 0;
	}
	if (*i + n > len)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[*i + k] & 0x3f);
	}
	if ((n == 2 && *cp < 0x80) || (n == 3 && *cp < 0x800) || (n == 4 && *cp < 0x10000) || *cp > 0x10ffff ||
	    (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	*i += n;
	return 1;
}

#endif
