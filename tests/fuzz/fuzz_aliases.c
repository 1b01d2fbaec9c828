/* fuzz_aliases — the aliases parser on arbitrary bytes, then expansion of a few names
 * (recursion, loops, duplicates must terminate and never crash). */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "lib/log.h"
#include "mail/aliases.h"
#include "mail/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int islocal(const char *domain, void *arg)
{
	return strcmp(domain, "l") == 0 ? TABLE_FOUND : TABLE_NOTFOUND;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = { "a", "b", "c", "d", "root", "postmaster", "a-b" };
	static struct cfg_errors errs;
	errs.n = 0;
	log_set_level(-1);
	struct aliases *a = aliases_from_text("fuzz", (const char *)data, size, 1000, 1000, &errs);
	for (int i = 0; i < errs.n; i++)
		if (errs.e[i].line < 1)
			__builtin_trap();
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct aliases_list l = { NULL, 0, 0 };
		char diag[128];
		int rc = aliases_expand(a, names[i], islocal, NULL, &l, diag, sizeof diag);
		if (rc != TABLE_FOUND && l.n != 0)
			__builtin_trap();
		for (size_t j = 0; j < l.n; j++)
			if (!l.v[j].value[0] || l.v[j].kind > ALIASES_FILE)
				__builtin_trap();
		aliases_list_free(&l);
	}
	aliases_free(a);
	return 0;
}
