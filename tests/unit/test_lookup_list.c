/* test_lookup_list — directory groups (src/ternd/lookup/lookup_list.c, compiled in) over a
 * fake directory client (ldapc_values defined here): the attributes of a qmailGroup entry
 * table-driven (lookup_list_value), then whole lookups: rfc822member, dnmember and
 * filtermember members merged without duplicates, moderators making a group moderated,
 * membersonly / senderconfirm / bounceadmin, and any failing reference, too many references
 * or a malformed value making the answer V_TEMP; an unknown group is V_NOUSER. */
#include "t.h"
#include "ternd/lookup/lookup_list.c"

/* ---- the fake directory: filter or base -> values ("attr\tvalue"), or a status */
struct fake { const char *key; int status; const char *vals[8]; };
static const struct fake *fakes;
static size_t nfakes;

int ldapc_values(struct ldapc *l, const char *base, int scope, const char *filter,
                 const char *const *attrs, size_t max, ldapc_cb cb, void *arg)
{
	const char *key = scope == 0 ? base : filter;
	for (size_t i = 0; i < nfakes; i++)
		if (strstr(key, fakes[i].key)) {
			size_t n = 0;
			while (n < 8 && fakes[i].vals[n])
				n++;
			struct ldapc_user u = { .dn = "cn=x", .values = fakes[i].vals, .nvalues = n };
			cb(arg, fakes[i].status, fakes[i].status == TABLE_FOUND ? &u : NULL);
			return 0;
		}
	cb(arg, TABLE_NOTFOUND, NULL);
	return 0;
}

static uint64_t got_verdict;
static struct mlist got;
static int calls;

static void reply(void *arg, uint64_t verdict, const char *diag, const struct mlist *l)
{
	calls++;
	got_verdict = verdict;
	mlist_free(&got);
	mlist_init(&got);
	if (l) {
		got.flags = l->flags;
		for (size_t i = 0; i < l->members.n; i++)
			ll_add(&got.members, l->members.v[i], MLIST_MAXMEMBERS);
		for (size_t i = 0; i < l->moderators.n; i++)
			ll_add(&got.moderators, l->moderators.v[i], MLIST_MAXMODS);
		for (size_t i = 0; i < l->senders.n; i++)
			ll_add(&got.senders, l->senders.v[i], MLIST_MAXSENDERS);
		for (size_t i = 0; i < l->owners.n; i++)
			ll_add(&got.owners, l->owners.v[i], MLIST_MAXOWNERS);
	}
}

static void test_values(void)
{
	static const struct { const char *av; int rc; } c[] = {
		{ "rfc822member\ta@b.org", 1 }, { "RFC822Member\ta@b.org", 1 },
		{ "rfc822member\tnot an address", -1 }, { "dnmember\tuid=x,dc=t", 1 },
		{ "filtermember\t(uid=x)", 1 }, { "dnmember\t", -1 },
		{ "membersonly\tTRUE", 1 }, { "membersonly\tyes", -1 }, { "senderconfirm\tFALSE", 1 },
		{ "bounceadmin\to@b.org", 1 }, { "bounceadmin\tx", -1 }, { "confirmtext\thi", 0 },
		{ "no tab", -1 }, { "rfc822moderator\tm@b.org", 1 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct mlist l;
		char **refs = NULL;
		size_t n = 0;
		mlist_init(&l);
		T_EQ_INT(lookup_list_value(&l, c[i].av, &refs, &n), c[i].rc);
		for (size_t k = 0; k < n; k++)
			free(refs[k]);
		free(refs);
		mlist_free(&l);
	}
	struct mlist l;
	char **refs = NULL;
	size_t n = 0;
	mlist_init(&l);
	int rc = 0;
	for (int i = 0; i <= LOOKUP_LIST_MAXREFS && rc >= 0; i++)
		rc = lookup_list_value(&l, "dnmember\tuid=x", &refs, &n);
	T_EQ_INT(rc, -1);                          /* too many references */
	T_EQ_INT(n, LOOKUP_LIST_MAXREFS);
	for (size_t k = 0; k < n; k++)
		free(refs[k]);
	free(refs);
	mlist_free(&l);
}

static void test_lookup(void)
{
	static const struct fake dir[] = {
		{ "mail=team@x.org", TABLE_FOUND, { "rfc822member\ta@x.org", "dnmember\tuid=b,dc=x",
		  "filtermember\t(ou=staff)", "membersonly\tTRUE", "bounceadmin\to@x.org",
		  "rfc822moderator\tm@x.org", "rfc822sender\ts@y.org", NULL } },
		{ "uid=b,dc=x", TABLE_FOUND, { "mail\tb@x.org", NULL } },
		{ "(ou=staff)", TABLE_FOUND, { "mail\tc@x.org", "mail\tA@x.org", "mail\tbad", NULL } },
		{ "mail=broken@x.org", TABLE_FOUND, { "dnmember\tuid=down,dc=x", NULL } },
		{ "uid=down", TABLE_TEMP, { NULL } },
		{ "mail=odd@x.org", TABLE_FOUND, { "membersonly\tmaybe", NULL } },
		{ "mail=gone@x.org", TABLE_TEMP, { NULL } },
	};
	fakes = dir;
	nfakes = sizeof dir / sizeof dir[0];
	mlist_init(&got);
	calls = 0;
	lookup_list_ldap(NULL, "team@x.org", reply, NULL);
	T_EQ_INT(calls, 1);
	T_EQ_INT(got_verdict, V_OK);
	T_EQ_INT(got.members.n, 3);                /* a, b, c: A@ is a's duplicate, "bad" dropped */
	T_EQ_INT(got.flags, MLIST_F_MEMBERSONLY | MLIST_F_MODERATED);
	T_EQ_INT(got.moderators.n, 1);
	T_EQ_INT(got.senders.n, 1);
	T_EQ_INT(got.owners.n, 1);
	static const struct { const char *addr; uint64_t v; } c[] = {
		{ "broken@x.org", V_TEMP }, { "odd@x.org", V_TEMP }, { "gone@x.org", V_TEMP },
		{ "nosuch@x.org", V_NOUSER }, { "not an address", V_NOUSER },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		calls = 0;
		lookup_list_ldap(NULL, c[i].addr, reply, NULL);
		T_EQ_INT(calls, 1);
		T_EQ_INT(got_verdict, c[i].v);
	}
	mlist_free(&got);
}

static void run(void)
{
	test_values();
	test_lookup();
}
T_MAIN(run)
