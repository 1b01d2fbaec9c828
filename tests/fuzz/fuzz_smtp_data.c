/* fuzz_smtp_data — the DATA decoder against a plain reference: the data ends at the first
 * CRLF.CRLF (counting a CRLF before the first line), each CRLF-terminated line loses a
 * leading dot and its CR, everything else (bare CR, bare LF) is kept. The input is fed whole
 * and in pieces whose sizes come from the first byte; all three results must agree, and the
 * NUL count is the number of NULs in the decoded octets. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* reference decoder over the whole input (which always contains an end marker) */
static size_t fuzz_ref(const char *in, size_t n, char *out, size_t *used, int *toolong)
{
	size_t o = 0, i = 0, seg = 0;
	*toolong = 0;
	for (;;) {                                  /* i: start of a CRLF-delimited line */
		const char *e = NULL;
		for (size_t k = i; k + 1 < n; k++)
			if (in[k] == '\r' && in[k + 1] == '\n') {
				e = in + k;
				break;
			}
		size_t len = (size_t)(e - (in + i));
		if (len == 1 && in[i] == '.') {
			*used = i + 3;
			return o;
		}
		for (size_t k = i; k < i + len; k++) {   /* line length: bare LF restarts it */
			seg = in[k] == '\n' ? 0 : seg + 1;
			if (seg > SMTP_DATA_LINE_MAX - 2)
				*toolong = 1;
		}
		seg = 0;
		size_t skip = len > 0 && in[i] == '.';
		memcpy(out + o, in + i + skip, len - skip);
		o += len - skip;
		out[o++] = '\n';
		i += len + 2;
	}
}

static size_t fuzz_feed(const char *in, size_t n, unsigned seed, char *out, size_t *used,
                        struct smtp_data *d)
{
	size_t off = 0, o = 0;
	smtp_data_init(d, 100);
	while (off < n && !d->done) {
		size_t len = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 37 : n;
		if (len > n - off)
			len = n - off;
		size_t got, k = smtp_data_feed(d, in + off, len, out + o, &got);
		if (got > len + 1 || (k < len && !d->done))
			__builtin_trap();
		o += got;
		off += k;
	}
	*used = off;
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size + 5, u0, u1, u2;
	char *in = malloc(n), *r = malloc(n * 2), *a = malloc(n * 2), *b = malloc(n * 2);
	struct smtp_data d1, d2;
	int toolong;
	memcpy(in, data, size);
	memcpy(in + size, "\r\n.\r\n", 5);
	size_t rn = fuzz_ref(in, n, r, &u0, &toolong);
	size_t an = fuzz_feed(in, n, 0, a, &u1, &d1);
	size_t bn = fuzz_feed(in, n, size ? data[0] + 1u : 1u, b, &u2, &d2);
	if (!d1.done || !d2.done || u0 != u1 || u0 != u2 || rn != an || rn != bn ||
	    memcmp(r, a, rn) != 0 || memcmp(r, b, rn) != 0 || d1.toolong != toolong ||
	    d2.toolong != toolong || d1.bytes != an || d1.toobig != (an > 100) ||
	    d2.toobig != d1.toobig || d1.nul != d2.nul)
		__builtin_trap();
	uint32_t nul = 0;                 /* every NUL is counted, and stored as given */
	for (size_t k = 0; k < rn; k++)
		nul += r[k] == '\0';
	if (d1.nul != nul)
		__builtin_trap();
	free(in);
	free(r);
	free(a);
	free(b);
	return 0;
}
