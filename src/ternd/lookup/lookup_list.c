/* lookup_list — see lookup_list.h. qmail-ldap's qmailGroup: rfc822member / dnmember /
 * filtermember are the members, rfc822moderator / dnmoderator the moderators (any makes the
 * group moderated), rfc822sender / dnsender / filtersender the extra allowed senders,
 * membersonly and senderconfirm (TRUE/FALSE) the flags, bounceadmin the owner. A DN value is
 * resolved to its entry's mail attribute, a filter to the mail of every entry it matches.
 * Trusts: nothing the directory sends — every address is checked (mlist_addr_ok), every
 * reference counted; any lookup that fails makes the whole answer V_TEMP (a list is never
 * expanded with members missing). */
#include "ternd/lookup/lookup_list.h"
#include "ternd/lookup/ldapc.h"
#include "ternd/proto.h"
#include "mail/ldapesc.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LL_MAXENTRIES 10000          /* entries one filter may match */

struct llget {
	struct ldapc *ld;
	char *addr;
	struct mlist l;
	char **refs;
	size_t nrefs;
	int pending, failed;
	lookup_list_reply reply;
	void *arg;
};

struct llsub { struct llget *g; char kind; };   /* 'm' member, 'o' moderator, 's' sender */

static void ll_add(struct mlist_addrs *a, const char *s, size_t max)
{
	if (a->n >= max || !mlist_addr_ok(s, strlen(s)))
		return;
	for (size_t i = 0; i < a->n; i++)
		if (strcasecmp(a->v[i], s) == 0)
			return;
	a->v = xrealloc(a->v, (a->n + 1) * sizeof *a->v);
	a->v[a->n++] = xstrdup(s);
}

static struct mlist_addrs *ll_list(struct mlist *l, char kind)
{
	return kind == 'm' ? &l->members : kind == 'o' ? &l->moderators : &l->senders;
}

static size_t ll_max(char kind)
{
	return kind == 'm' ? MLIST_MAXMEMBERS : kind == 'o' ? MLIST_MAXMODS : MLIST_MAXSENDERS;
}

static const struct { const char *attr; char kind; char how; } ll_attrs[] = {
	{ "rfc822member", 'm', 'a' }, { "dnmember", 'm', 'd' }, { "filtermember", 'm', 'f' },
	{ "rfc822moderator", 'o', 'a' }, { "dnmoderator", 'o', 'd' },
	{ "rfc822sender", 's', 'a' }, { "dnsender", 's', 'd' }, { "filtersender", 's', 'f' },
};

int lookup_list_value(struct mlist *l, const char *av, char ***refs, size_t *nrefs)
{
	const char *tab = strchr(av, '\t');
	if (!tab)
		return -1;
	size_t an = (size_t)(tab - av);
	const char *v = tab + 1;
	for (size_t i = 0; i < sizeof ll_attrs / sizeof ll_attrs[0]; i++) {
		if (strlen(ll_attrs[i].attr) != an || strncasecmp(av, ll_attrs[i].attr, an) != 0)
			continue;
		if (ll_attrs[i].kind == 'o')
			l->flags |= MLIST_F_MODERATED;
		if (ll_attrs[i].how == 'a') {
			if (!mlist_addr_ok(v, strlen(v)))
				return -1;
			ll_add(ll_list(l, ll_attrs[i].kind), v, ll_max(ll_attrs[i].kind));
			return 1;
		}
		if (*nrefs >= LOOKUP_LIST_MAXREFS || !*v || strlen(v) > 1024)
			return -1;
		*refs = xrealloc(*refs, (*nrefs + 1) * sizeof **refs);
		(*refs)[*nrefs] = xmalloc(strlen(v) + 3);
		sprintf((*refs)[*nrefs], "%c%c%s", ll_attrs[i].how, ll_attrs[i].kind, v);
		(*nrefs)++;
		return 1;
	}
	int b = !strcasecmp(v, "TRUE") ? 1 : !strcasecmp(v, "FALSE") ? 0 : -1;
	if (an == 11 && !strncasecmp(av, "membersonly", an)) {
		if (b < 0)
			return -1;
		l->flags = b ? l->flags | MLIST_F_MEMBERSONLY : l->flags & ~MLIST_F_MEMBERSONLY;
		return 1;
	}
	if (an == 13 && !strncasecmp(av, "senderconfirm", an)) {
		if (b < 0)
			return -1;
		l->flags = b ? l->flags | MLIST_F_SENDERCONFIRM : l->flags & ~MLIST_F_SENDERCONFIRM;
		return 1;
	}
	if (an == 11 && !strncasecmp(av, "bounceadmin", an)) {
		if (!mlist_addr_ok(v, strlen(v)))
			return -1;
		ll_add(&l->owners, v, MLIST_MAXOWNERS);
		return 1;
	}
	return 0;
}

static void ll_finish(struct llget *g)
{
	if (g->failed)
		g->reply(g->arg, V_TEMP, "a group reference could not be read", NULL);
	else
		g->reply(g->arg, V_OK, "", &g->l);
	mlist_free(&g->l);
	for (size_t i = 0; i < g->nrefs; i++)
		free(g->refs[i]);
	free(g->refs);
	free(g->addr);
	free(g);
}

/* the entries a reference names: their mail values join the list of its kind */
static void ll_sub_done(void *arg, int status, const struct ldapc_user *u)
{
	struct llsub *s = arg;
	struct llget *g = s->g;
	if (status == TABLE_TEMP)
		g->failed = 1;
	for (size_t i = 0; status == TABLE_FOUND && u && i < u->nvalues; i++)
		if (!strncasecmp(u->values[i], "mail\t", 5))
			ll_add(ll_list(&g->l, s->kind), u->values[i] + 5, ll_max(s->kind));
	free(s);
	if (--g->pending == 0)
		ll_finish(g);
}

static void ll_group_done(void *arg, int status, const struct ldapc_user *u)
{
	struct llget *g = arg;
	if (status != TABLE_FOUND) {
		g->reply(g->arg, status == TABLE_NOTFOUND ? V_NOUSER : V_TEMP,
		         status == TABLE_NOTFOUND ? "no such group" : "directory unavailable", NULL);
		mlist_free(&g->l);
		free(g->addr);
		free(g);
		return;
	}
	for (size_t i = 0; i < u->nvalues && !g->failed; i++)
		if (lookup_list_value(&g->l, u->values[i], &g->refs, &g->nrefs) < 0) {
			log_warn("event=ldap_group_bad dn=%s value=\"%.80s\"", u->dn, u->values[i]);
			g->failed = 1;
		}
	if (g->failed || g->nrefs == 0) {
		ll_finish(g);
		return;
	}
	g->pending = (int)g->nrefs + 1;          /* + 1: none finishes before all are asked */
	static const char *const mail[] = { "mail", NULL };
	for (size_t i = 0; i < g->nrefs; i++) {
		struct llsub *s = xcalloc(1, sizeof *s);
		s->g = g;
		s->kind = g->refs[i][1];
		const char *v = g->refs[i] + 2;
		if (g->refs[i][0] == 'd')
			ldapc_values(g->ld, v, 0, "(objectClass=*)", mail, 1, ll_sub_done, s);
		else {
			struct buf f;                    /* a filter from the directory: one term */
			buf_init(&f);
			buf_printf(&f, v[0] == '(' ? "%s" : "(%s)", v);
			ldapc_values(g->ld, "", 2, f.p, mail, LL_MAXENTRIES, ll_sub_done, s);
			buf_free(&f);
		}
	}
	if (--g->pending == 0)
		ll_finish(g);
}

void lookup_list_ldap(struct ldapc *ld, const char *addr, lookup_list_reply reply, void *arg)
{
	static const char *const attrs[] = { "rfc822member", "dnmember", "filtermember",
		"rfc822moderator", "dnmoderator", "rfc822sender", "dnsender", "filtersender",
		"membersonly", "senderconfirm", "bounceadmin", NULL };
	char esc[3 * MLIST_ADDRMAX + 1];
	if (!mlist_addr_ok(addr, strlen(addr)) || ldapesc_value(addr, strlen(addr), esc, sizeof esc) < 0) {
		reply(arg, V_NOUSER, "not a list address", NULL);
		return;
	}
	struct llget *g = xcalloc(1, sizeof *g);
	g->ld = ld;
	g->addr = xstrdup(addr);
	mlist_init(&g->l);
	g->reply = reply;
	g->arg = arg;
	struct buf f;
	buf_init(&f);
	buf_printf(&f, "(&(objectClass=qmailGroup)(|(mail=%s)(mailAlternateAddress=%s)))", esc, esc);
	ldapc_values(ld, "", 2, f.p, attrs, 1, ll_group_done, g);
	buf_free(&f);
}
