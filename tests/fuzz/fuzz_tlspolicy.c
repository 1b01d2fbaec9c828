/* fuzz_tlspolicy — the entry parsers of src/mail/tlspolicy.c (tlsdestinations values and
 * smtpauth USER:PASSWORD values) on arbitrary text. Invariants: a parsed policy has a level
 * in range, a match name only with verify, shorter than its buffer; a parsed credential has
 * a non-empty user without blanks and user:pass rebuilds the input. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/tlspolicy.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), err[200], *b = NULL;
	const char *u, *p;
	struct tlspolicy pol;
	memcpy(s, data, size);
	s[size] = '\0';
	if (tlspolicy_parse(s, &pol, err, sizeof err) == 0) {
		if (pol.level < TLSP_NONE || pol.level > TLSP_VERIFY ||
		    strlen(pol.match) >= sizeof pol.match || (pol.match[0] && pol.level != TLSP_VERIFY))
			__builtin_trap();
	}
	if (tlspolicy_auth_parse(s, &b, &u, &p, err, sizeof err) == 0) {
		size_t ul = strlen(u);
		if (!ul || strchr(u, ' ') || strchr(u, '\t') || strncmp(s, u, ul) != 0 ||
		    s[ul] != ':' || strcmp(s + ul + 1, p) != 0)
			__builtin_trap();
		free(b);
	}
	free(s);
	return 0;
}
