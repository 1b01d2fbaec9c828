/* fuzz_ldapreq — ldapreq_parse on arbitrary request words (the control socket's
 * `ldaplookup` line). Invariants: a request that parses encodes (ldapreq_line) to one line
 * that parses again to the same uid, password flag, password and argument. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/ldapreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int words(char *s, char **argv, int max)
{
	int n = 0;
	for (char *t = strtok(s, " \t"); t && n < max; t = strtok(NULL, " \t"))
		argv[n++] = t;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[8], *argv2[9];
	struct ldapreq q, r;
	if (size > 8192)
		return 0;
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	int n = words(s, argv, 8);
	if (ldapreq_parse(argv, n, &q) == 0) {
		struct buf b;
		buf_init(&b);
		ldapreq_line(&b, &q, q.pw);
		if (memchr(b.p, '\n', b.len))
			__builtin_trap();
		int m = words(b.p, argv2, 9);
		if (m < 2 || strcmp(argv2[0], "ldaplookup") != 0 ||
		    ldapreq_parse(argv2 + 1, m - 1, &r) != 0 || r.uid != q.uid ||
		    r.password != q.password || strcmp(r.pw, q.pw) != 0 || strcmp(r.arg, q.arg) != 0)
			__builtin_trap();
		buf_free(&b);
	}
	free(s);
	return 0;
}
