/* fuzz_ldapc_escape — ldapesc_value, ldapesc_user_filter and ldapesc_login_filter on
 * arbitrary bytes. Invariants: the escaped value holds no byte that could change a filter's
 * meaning (* ( ) NUL, and a backslash only as the start of \XX), it unescapes to the input,
 * and the user filter's parentheses balance with exactly the structure of the template; so
 * do the login filter's. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/ldapesc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void fuzz_check_value(const char *in, size_t n)
{
	size_t sz = 3 * n + 1;
	char *out = malloc(sz), *back = malloc(n + 1);
	int len = ldapesc_value(in, n, out, sz);
	if (len < 0 || (size_t)len != strlen(out))
		__builtin_trap();
	size_t b = 0;
	for (int i = 0; i < len; i++) {
		char c = out[i];
		if (c == '*' || c == '(' || c == ')' || c == '\0')
			__builtin_trap();
		if (c != '\\') {
			back[b++] = c;
			continue;
		}
		if (i + 2 >= len)
			__builtin_trap();
		int h = fuzz_hex(out[i + 1]), l = fuzz_hex(out[i + 2]);
		if (h < 0 || l < 0)
			__builtin_trap();
		back[b++] = (char)(h << 4 | l);
		i += 2;
	}
	if (b != n || memcmp(back, in, n) != 0)
		__builtin_trap();
	free(out);
	free(back);
}

static void fuzz_check_filter(const char *in, size_t n)
{
	char *f = ldapesc_user_filter("qmailUser", in, n);
	if (!f)
		return;
	int depth = 0, opens = 0;
	for (const char *p = f; *p; p++) {
		if (*p == '(') {
			depth++;
			opens++;
		} else if (*p == ')' && --depth < 0) {
			__builtin_trap();
		}
	}
	/* (& (oc) (| (mail) (alt) [(catch-all)] ) ) */
	if (depth != 0 || (opens != 5 && opens != 6))
		__builtin_trap();
	free(f);
}

/* the login filter: (&(oc)(uid)) or (&(oc)(|(mail)(alt))) and nothing else */
static void fuzz_check_login(const char *in, size_t n)
{
	char *f = ldapesc_login_filter("qmailUser", in, n);
	if (!f)
		return;
	int depth = 0, opens = 0;
	for (const char *p = f; *p; p++) {
		if (*p == '(') {
			depth++;
			opens++;
		} else if (*p == ')' && --depth < 0) {
			__builtin_trap();
		}
	}
	if (depth != 0 || opens != (memchr(in, '@', n) ? 5 : 3))
		__builtin_trap();
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2048)
		return 0;
	fuzz_check_value((const char *)data, size);
	fuzz_check_filter((const char *)data, size);
	fuzz_check_login((const char *)data, size);
	return 0;
}
