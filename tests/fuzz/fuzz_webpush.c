/*
 * fuzz_webpush: what webpush.c reads from a subscription (its keys come in
 * base64url from a browser: untrusted).  The input is base64url text:
 * jose_b64url_decode must never write past its buffer, and what it
 * accepts must encode back to the same text (one text per byte string).  A
 * decoded 65-byte key goes to webpush_encrypt as the p256dh key: a point
 * off the curve is refused, one on it gives a body of the exact length.
 * abort() on any violation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webpush.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 512)
		return 0;
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	size_t cap = size * 3 / 4 + 1;
	uint8_t *raw = malloc(cap);
	if (!raw) {
		free(text);
		return 0;
	}
	long n = jose_b64url_decode(text, size, raw, cap);
	if (n > (long)cap)
		abort();
	if (n >= 0) {
		char *back = malloc(size + 1);
		if (!back || jose_b64url_encode(raw, (size_t)n, back, size + 1) != (long)size ||
		    memcmp(back, text, size) != 0)
			abort();
		free(back);
		if (n == WEBPUSH_KEY_LEN) {
			static const uint8_t auth[WEBPUSH_AUTH_LEN] = "fuzzfuzzfuzzfuzz";
			uint8_t out[WEBPUSH_HEADER_LEN + 5 + 1 + WEBPUSH_TAG_LEN];
			size_t olen = 0;
			if (webpush_encrypt(raw, auth, (const uint8_t *)"hello", 5, 0, out, sizeof(out), &olen) == 0 &&
			    olen != sizeof(out))
				abort();
		}
	}
	free(raw);
	free(text);
	return 0;
}
