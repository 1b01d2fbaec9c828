/* fuzz_lookup_list — lookup_list_value (src/ternd/lookup/lookup_list.c, compiled in) on a
 * qmailGroup entry made of arbitrary bytes: the input is split at '\n' into "attr\tvalue"
 * values. Invariants: every address that reaches the list passes mlist_addr_ok, the
 * references stay within LOOKUP_LIST_MAXREFS and start with their kind letters, and the
 * flags stay within MLIST_F_ALL. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "ternd/lookup/lookup_list.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int ldapc_values(struct ldapc *l, const char *base, int scope, const char *filter,
                 const char *const *attrs, size_t max, ldapc_cb cb, void *arg)
{
	cb(arg, TABLE_TEMP, NULL);
	return 0;
}

static void check(const struct mlist_addrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		if (!mlist_addr_ok(a->v[i], strlen(a->v[i])))
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	struct mlist l;
	char **refs = NULL;
	size_t n = 0;
	mlist_init(&l);
	for (char *p = s, *nl; p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		if (lookup_list_value(&l, p, &refs, &n) < 0)
			break;
	}
	if (n > LOOKUP_LIST_MAXREFS || (l.flags & ~MLIST_F_ALL))
		__builtin_trap();
	for (size_t k = 0; k < n; k++) {
		if ((refs[k][0] != 'd' && refs[k][0] != 'f') || !strchr("mos", refs[k][1]))
			__builtin_trap();
		free(refs[k]);
	}
	check(&l.members);
	check(&l.moderators);
	check(&l.senders);
	check(&l.owners);
	free(refs);
	mlist_free(&l);
	free(s);
	return 0;
}
