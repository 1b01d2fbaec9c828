/* fuzz_transports — the transports entry parser of src/mail/route.c on arbitrary text.
 * Invariants: a refused entry leaves the key empty; an accepted one has a lowercase key
 * without ':', a channel of 1..32 bytes [a-z0-9_-] and a nexthop without blanks or control
 * bytes, and "channel:nexthop" reads back to the same two parts. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char key[ROUTE_HOSTLEN], ch[ROUTE_CHANLEN], next[ROUTE_HOSTLEN];
	char ch2[ROUTE_CHANLEN], next2[ROUTE_HOSTLEN], again[ROUTE_HOSTLEN + ROUTE_CHANLEN + 2];
	memcpy(s, data, size);
	s[size] = '\0';
	if (route_transport_parse(s, key, sizeof key, ch, sizeof ch, next, sizeof next) < 0) {
		if (key[0])
			__builtin_trap();
	} else {
		size_t cl = strlen(ch);
		if (!key[0] || strchr(key, ':') || cl == 0 || cl > 32 || strspn(ch,
		    "abcdefghijklmnopqrstuvwxyz0123456789_-") != cl)
			__builtin_trap();
		for (const char *p = key; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				__builtin_trap();
		for (const char *p = next; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				__builtin_trap();
		snprintf(again, sizeof again, "%s%s%s", ch, next[0] ? ":" : "", next);
		if (route_transport_value(again, ch2, sizeof ch2, next2, sizeof next2) < 0 ||
		    strcmp(ch, ch2) || strcmp(next, next2))
			__builtin_trap();
	}
	free(s);
	return 0;
}
