/* fuzz_mdquota — mdquota_parse and mdquota_name_size on arbitrary bytes (a maildirsize file
 * and file names in the user's Maildir are the user's to write). Invariants: no crash, and a
 * parse that succeeds keeps the over-quota rule consistent (adding nothing never goes over
 * limits the usage is within). */
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
	free(s);
	return 0;
}
