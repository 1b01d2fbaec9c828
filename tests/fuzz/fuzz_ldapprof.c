/* fuzz_ldapprof — ldapprof_decode on arbitrary bytes. Invariants: a profile that decodes
 * encodes to printable text without newlines that decodes again to the same encoding. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/ldapprof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[128];
	struct ldapprof p, q;
	if (size > 8192)
		return 0;
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (ldapprof_decode(s, &p, why, sizeof why) == 0) {
		struct buf a, b;
		buf_init(&a);
		buf_init(&b);
		ldapprof_encode(&p, &a);
		for (size_t i = 0; i < a.len; i++)
			if ((unsigned char)a.p[i] < 0x20 || (unsigned char)a.p[i] >= 0x7f)
				__builtin_trap();
		if (ldapprof_decode(a.p ? a.p : "", &q, why, sizeof why) != 0)
			__builtin_trap();
		ldapprof_encode(&q, &b);
		if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0))
			__builtin_trap();
		ldapprof_free(&q);
		buf_free(&a);
		buf_free(&b);
	}
	ldapprof_free(&p);
	free(s);
	return 0;
}
