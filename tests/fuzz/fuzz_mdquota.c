/* fuzz_mdquota — mdquota_parse, mdquota_name_size, mdquota_spec_parse and mdquota_args_parse
 * on arbitrary bytes (a maildirsize file and file names in the user's Maildir are the user's
 * to write; a users line's quota and -Q come from files and argv). Invariants: no crash, a
 * parse that succeeds keeps the over-quota rule consistent (adding nothing never goes over
 * limits the usage is within), and an accepted quota spec formats (mdquota_defline) to a
 * non-empty line no longer than itself. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/mdquota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mdquota_use u;
	uint64_t sz;
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (mdquota_parse(s, size, "1000S,10C", &u) == 0) {
		uint64_t b = u.bytes > 0 ? (uint64_t)u.bytes : 0;
		uint64_t c = u.count > 0 ? (uint64_t)u.count : 0;
		if (b <= 1000 && c <= 10 && mdquota_over(&u, 1000, 10, 0, 0))
			__builtin_trap();
	}
	(void)mdquota_name_size(s, &sz);
	uint64_t qs, qc;
	if (mdquota_spec_parse(s, &qs, &qc) == 0) {
		struct buf b;
		buf_init(&b);
		mdquota_defline(&b, qs, qc);
		if ((!qs && !qc) || !b.p || strlen(b.p) > strlen(s))
			__builtin_trap();
		buf_free(&b);
	}
	struct mdquota_args a;
	if (mdquota_args_parse(s, &a) == 0 && (a.warning < s || a.warning > s + size))
		__builtin_trap();
	free(s);
	return 0;
}
