/* fuzz_virtual — the virtualdomains entry parser and the virtualusers value parser of
 * src/mail/virtual.c on arbitrary text. Input: one line (up to the first newline) as a
 * virtualdomains entry, the rest as a virtualusers value.
 * Invariants: an entry parses (0) with a lowercased key free of blanks and a prepend free of
 * ':' and '@', or is refused (-1) with both ""; a value parses (0) into an absolute Maildir
 * path (leading and trailing '/', no "/../", no control characters) and uids below 2^32-1,
 * or is refused (-1) with path "". */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/virtual.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_virtual_entry(const char *e)
{
	char key[256], pre[VIRTUAL_MAXPREPEND];
	int rc = virtual_domain_parse(e, key, sizeof key, pre, sizeof pre);
	if (rc != 0 && rc != -1)
		__builtin_trap();
	if (rc == -1 && (key[0] || pre[0]))
		__builtin_trap();
	for (const char *p = key; rc == 0 && *p; p++)
		if ((unsigned char)*p <= 0x20 || (*p >= 'A' && *p <= 'Z'))
			__builtin_trap();
	if (rc == 0 && strpbrk(pre, ":@ \t"))
		__builtin_trap();
}

static void fuzz_virtual_value(const char *v)
{
	char path[VIRTUAL_MAXPATH];
	uint64_t uid = 0, gid = 0;
	int rc = virtual_user_parse(v, &uid, &gid, path, sizeof path);
	size_t n = strlen(path);
	if (rc != 0 && rc != -1)
		__builtin_trap();
	if (rc == -1 && n)
		__builtin_trap();
	if (rc == 0 && (n < 2 || path[0] != '/' || path[n - 1] != '/' || strstr(path, "/../") ||
	                uid > 4294967294ull || gid > 4294967294ull))
		__builtin_trap();
	for (size_t i = 0; rc == 0 && i < n; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char *nl = strchr(s, '\n');
	if (nl)
		*nl = '\0';
	fuzz_virtual_entry(s);
	fuzz_virtual_value(nl ? nl + 1 : "");
	free(s);
	return 0;
}
