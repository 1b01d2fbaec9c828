/* fuzz_users — the users file parser on arbitrary bytes, then lookups with the extension
 * rule: a found user never has uid 0 and always an absolute home. */
#include <stdint.h>
#include <stddef.h>
#include "lib/log.h"
#include "mail/users.h"
#include "mail/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = { "a", "a-b", "a-b-c", "root", "x-", "A" };
	static struct cfg_errors errs;
	errs.n = 0;
	log_set_level(-1);
	struct users *u = users_from_text("fuzz", (const char *)data, size, &errs);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct users_result r;
		int rc = users_lookup(u, names[i], &r);
		if (rc != r.status)
			__builtin_trap();
		if (rc == TABLE_FOUND && (r.uid == 0 || r.home[0] != '/' || !r.user[0]))
			__builtin_trap();
	}
	users_free(u);
	return 0;
}
