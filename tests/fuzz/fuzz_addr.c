/* fuzz_addr — addr_parse on arbitrary text, both kinds. Invariants: a parsed mailbox fits the
 * limits, parses again to itself when written as <mailbox>, splits at its '@', and every
 * parameter list either parses to the end or stops with a reason. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "mail/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_addr_check(const char *in, enum addr_kind kind)
{
	struct addr a, b;
	char path[ADDR_PATH_MAX + 8], l[ADDR_PATH_MAX], d[ADDR_PATH_MAX];
	if (addr_parse(in, kind, &a) < 0) {
		if (!a.why || (a.code != 501 && a.code != 553))
			__builtin_trap();
		return;
	}
	size_t n = strlen(a.mailbox);
	if (n > ADDR_PATH_MAX - 2 || a.local_len > ADDR_LOCAL_MAX || (a.null && n) ||
	    (a.postmaster && kind != ADDR_RCPT) || (a.null && kind != ADDR_SENDER))
		__builtin_trap();
	snprintf(path, sizeof path, "<%s>", a.mailbox);
	if (addr_parse(path, kind, &b) < 0 || strcmp(a.mailbox, b.mailbox) != 0 || *b.params)
		__builtin_trap();
	if (!a.null && !a.postmaster) {
		if (addr_split(a.mailbox, l, sizeof l, d, sizeof d) < 0 || strlen(l) != a.local_len)
			__builtin_trap();
		if (!addr_domain_valid(d, strlen(d)))
			__builtin_trap();
	}
	const char *cur = a.params, *why;
	struct addr_param p;
	int r;
	while ((r = addr_param_next(&cur, &p, &why)) > 0)
		if (!p.key[0] || (p.hasval && !p.val[0]))
			__builtin_trap();
	if (r < 0 && !why)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_addr_check(s, ADDR_SENDER);
	fuzz_addr_check(s, ADDR_RCPT);
	free(s);
	return 0;
}
