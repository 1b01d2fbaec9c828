/* fuzz_ldaptable — ldaptable_parse (the ldap: table profile) on arbitrary bytes, then the
 * filter for a key taken from the input. Invariants: a profile that parses has a filter that
 * ldaptable_check_filter accepts, a scope in range, strings without newlines; the filter made
 * for any key is balanced, holds no raw byte of the key that could change its meaning
 * (* ( ) \ NUL, controls) beyond the template's own, and is no longer than the template
 * plus three bytes per key byte for each key escape. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/config.h"
#include "mail/ldaptable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_balanced(const char *f)
{
	int depth = 0;
	for (; *f; f++) {
		if ((unsigned char)*f < 0x20)
			return 0;
		if (*f == '(')
			depth++;
		else if (*f == ')' && --depth < 0)
			return 0;
	}
	return depth == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ldaptable t;
	struct cfg_errors errs;
	char why[256];
	if (size > 8192)
		return 0;
	/* the input: profile text, then after the first 0xff byte (if any) the key */
	const uint8_t *sep = memchr(data, 0xff, size);
	size_t plen = sep ? (size_t)(sep - data) : size;
	char *key = sep ? strndup((const char *)sep + 1, size - plen - 1) : strdup("a@b.test");
	errs.n = 0;
	if (ldaptable_parse("fuzz", (const char *)data, plen, &t, &errs) == 0) {
		if (ldaptable_check_filter(t.filter, why, sizeof why) != 0)
			__builtin_trap();
		if (t.scope < LDAPTABLE_BASE || t.scope > LDAPTABLE_SUB)
			__builtin_trap();
		if (strchr(t.base, '\n') || strchr(t.attr, '\n') || strchr(t.filter, '\n'))
			__builtin_trap();
		char *f = ldaptable_filter(&t, key);
		if (f) {
			size_t nesc = 0;
			for (const char *p = t.filter; *p; p++)
				if (*p == '%' && p[1]) {
					nesc += p[1] != '%';
					p++;
				}
			if (!fz_balanced(f) || strlen(f) > strlen(t.filter) + nesc * 3 * strlen(key))
				__builtin_trap();
		}
		free(f);
		ldaptable_free(&t);
	} else if (errs.n == 0 || t.filter || t.base || t.attr) {
		__builtin_trap();
	}
	free(key);
	return 0;
}
