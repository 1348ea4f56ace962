/*
 * fuzz_platform: what pushgated reads from FCM, Google's token endpoint and
 * APNs (untrusted: any answer a network path can forge).  The first byte
 * picks the reader, the rest is the answer's body: fcm_token_answer,
 * fcm_error_code, apns_reason.  Whatever they accept must be printable
 * ASCII without quotes or backslashes (it goes to logs, tables and
 * headers) and fit its buffer.  abort() on any violation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apns.h"
#include "fcm.h"
#include "jose.h"

static void check_plain(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	if (n == cap)
		abort();
	if (n && !jose_plain(s))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	char out[64];
	double exp = 0;
	switch (data[0] % 3) {
	case 0:
		if (fcm_token_answer(text, out, sizeof(out), &exp) == 0) {
			check_plain(out, sizeof(out));
			if (!out[0] || !(exp > 0))
				abort();
		}
		break;
	case 1:
		fcm_error_code(text, out, sizeof(out));
		check_plain(out, sizeof(out));
		break;
	default:
		apns_reason(text, out, sizeof(out));
		check_plain(out, sizeof(out));
	}
	free(text);
	return 0;
}
