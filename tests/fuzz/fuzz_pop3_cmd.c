/* fuzz_pop3_cmd — the POP3 command parser and the Maildir wire encoder on arbitrary bytes.
 * Invariants: the parser returns one of its codes with a known verb, its string arguments
 * lie inside the line and are bounded, numbers are in range; the encoder gives the same
 * output whatever the split of its input, its size count equals the output without the
 * dot-stuffing and the final ".", and the output ends in CRLF "." CRLF. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/pop3_cmd.h"
#include "mail/pop3_maildir.h"

static int inside(const char *p, const char *line, size_t size)
{
	return (p >= line && p <= line + size) || (p && *p == '\0' && strlen(p) == 0);
}

static void fuzz_parse(const uint8_t *data, size_t size, enum pop3_state st)
{
	char *line = malloc(size + 1);
	struct pop3_cmd c;
	memcpy(line, data, size);
	int r = pop3_cmd_parse(line, size, st, &c);
	if (r < P3E_OK || r > P3E_LONG || c.verb <= P3_NONE || c.verb >= P3_VERB_COUNT)
		__builtin_trap();
	if (r == P3E_OK) {
		if (!inside(c.arg, line, size) || !inside(c.arg2, line, size) ||
		    c.nnum < 0 || c.nnum > 2)
			__builtin_trap();
		if (strlen(c.arg) > POP3_MAXARG || (c.nnum && (c.num[0] < 1 || c.num[0] > 999999999)))
			__builtin_trap();
		if (c.verb == P3_APOP && strlen(c.arg2) != 32)
			__builtin_trap();
	}
	free(line);
}

static void fuzz_enc(const uint8_t *data, size_t size)
{
	long top = size ? (long)(data[0] % 5) - 1 : -1;
	size_t cut = size ? data[size - 1] % (size + 1) : 0;
	struct pop3_enc e1, e2;
	struct buf a, b;
	buf_init(&a);
	buf_init(&b);
	pop3_maildir_enc_init(&e1, top, 1);
	pop3_maildir_enc_feed(&e1, (const char *)data, size, &a);
	pop3_maildir_enc_end(&e1, &a);
	pop3_maildir_enc_init(&e2, top, 1);
	pop3_maildir_enc_feed(&e2, (const char *)data, cut, &b);
	pop3_maildir_enc_feed(&e2, (const char *)data + cut, size - cut, &b);
	pop3_maildir_enc_end(&e2, &b);
	if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0 || e1.octets != a.len)
		__builtin_trap();
	if (a.len < 3 || memcmp(a.p + a.len - 3, ".\r\n", 3) != 0 ||
	    (a.len > 3 && memcmp(a.p + a.len - 5, "\r\n", 2) != 0))
		__builtin_trap();
	if (top < 0) {
		size_t dots = 0;             /* the stuffed dots: a '.' opening a line */
		for (size_t i = 0; i + 3 < a.len; i++)
			if (a.p[i] == '.' && (i == 0 || (a.p[i - 1] == '\n' && a.p[i - 2] == '\r')))
				dots++, i++;
		if (pop3_maildir_wire_size((const char *)data, size) + dots + 3 != a.len)
			__builtin_trap();
	}
	buf_free(&a);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > POP3_MAXLINE + 16)
		return 0;
	fuzz_parse(data, size, POP3_AUTHZ);
	fuzz_parse(data, size, POP3_TRANS);
	fuzz_enc(data, size);
	return 0;
}
