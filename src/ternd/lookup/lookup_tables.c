/* lookup_tables — the MAIL/RCPT checks' lists with their ldap: tables (see lookup_tables.h).
 * Owns: the profiles (loaded once at start), the questions in flight. Trusts: ldapc to answer
 * each search exactly once. */
#include "ternd/lookup/lookup_tables.h"
#include "ternd/lookup/ldapc.h"
#include "mail/config.h"
#include "mail/ldaptable.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <stdlib.h>
#include <string.h>

#define LT_MAXPROF 32
#define LT_MAXCAND 16                /* .suffix forms probed per item */

struct lt_prof {
	const char *ref;                 /* "ldap:PATH" (in the config) */
	struct ldaptable t;
};

static struct lt_prof lt_prof[LT_MAXPROF];
static size_t lt_nprof;
static struct ldapc *lt_ldap;

struct lt_ask {                      /* one membership question with searches out */
	int pending;                     /* searches not yet answered, + 1 while sending */
	int found, temp, answered;
	lookup_tables_cb cb;
	void *arg;
};

static const struct ldaptable *lt_find(const char *ref)
{
	for (size_t i = 0; i < lt_nprof; i++)
		if (strcmp(lt_prof[i].ref, ref) == 0)
			return &lt_prof[i].t;
	return NULL;
}

static int lt_load_list(const struct cfg_list *l)
{
	struct cfg_errors errs;
	for (size_t i = 0; i < l->ntables; i++) {
		const char *ref = l->tables[i];
		if (strncmp(ref, "ldap:", 5) != 0 || lt_find(ref))
			continue;
		if (lt_nprof == LT_MAXPROF) {
			log_err("event=ldap_table_unusable ref=%s reason=\"more than %d profiles\"", ref,
			        LT_MAXPROF);
			return -1;
		}
		errs.n = 0;
		if (ldaptable_load(ref + 5, &lt_prof[lt_nprof].t, &errs) < 0) {
			for (int e = 0; e < errs.n; e++)
				log_err("event=ldap_table_unusable file=%s line=%d error=\"%s\"",
				        errs.e[e].file, errs.e[e].line, errs.e[e].msg);
			return -1;
		}
		lt_prof[lt_nprof++].ref = ref;
	}
	return 0;
}

int lookup_tables_init(const struct config *cfg, struct ldapc *l)
{
	lt_ldap = l;
	if (lt_load_list(&cfg->rcpthosts) < 0 || lt_load_list(&cfg->badmailfrom) < 0 ||
	    lt_load_list(&cfg->badrcptto) < 0)
		return -1;
	if (lt_nprof && !l) {
		log_err("event=ldap_table_unusable reason=\"ldap: tables without ldapserver\"");
		return -1;
	}
	if (lt_nprof)
		log_info("event=ldap_tables profiles=%zu", lt_nprof);
	return 0;
}

/* answer once; free when every search has answered */
static void lt_settle(struct lt_ask *q)
{
	if (!q->answered && (q->found || q->pending == 0)) {
		q->answered = 1;
		q->cb(q->arg, q->found ? TABLE_FOUND : q->temp ? TABLE_TEMP : TABLE_NOTFOUND);
	}
	if (q->pending == 0)
		free(q);
}

static void lt_answer(void *arg, int status, const struct ldapc_user *u)
{
	struct lt_ask *q = arg;
	(void)u;
	q->pending--;
	if (status == TABLE_FOUND)
		q->found = 1;
	else if (status == TABLE_TEMP)
		q->temp = 1;
	lt_settle(q);
}

/* one search of profile t for key */
static void lt_search(struct lt_ask *q, const struct ldaptable *t, const char *key)
{
	char *filter = ldaptable_filter(t, key);
	if (!filter)
		return;                      /* cannot match (an empty %u or %d) */
	log_debug("event=ldap_table_search filter=\"%s\"", filter);
	q->pending++;
	if (ldapc_search(lt_ldap, t->base, t->scope, filter, t->attr, lt_answer, q) < 0)
		lt_answer(q, TABLE_TEMP, NULL);
	free(filter);
}

void lookup_tables_ask(const struct cfg_list *l, const char *const *items, size_t n,
                       lookup_tables_cb cb, void *arg)
{
	int temp = 0, nldap = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = table_list_lookup_noldap(l, items[i]);
		if (rc == TABLE_FOUND) {
			cb(arg, TABLE_FOUND);
			return;
		}
		temp |= rc == TABLE_TEMP;
	}
	for (size_t j = 0; j < l->ntables; j++)
		nldap += strncmp(l->tables[j], "ldap:", 5) == 0;
	if (!nldap) {
		cb(arg, temp ? TABLE_TEMP : TABLE_NOTFOUND);
		return;
	}
	struct lt_ask *q = xcalloc(1, sizeof *q);
	q->pending = 1;                  /* held while the searches go out */
	q->temp = temp;
	q->cb = cb;
	q->arg = arg;
	for (size_t j = 0; j < l->ntables && !q->found; j++) {
		if (strncmp(l->tables[j], "ldap:", 5) != 0)
			continue;
		const struct ldaptable *t = lt_find(l->tables[j]);
		if (!t || !lt_ldap) {        /* lookup_tables_init refused this: never here */
			q->temp = 1;
			continue;
		}
		for (size_t i = 0; i < n && !q->found; i++) {
			const char *cand[LT_MAXCAND];
			size_t nc = table_list_candidates(items[i], cand, LT_MAXCAND);
			for (size_t c = 0; c < nc && !q->found; c++)
				lt_search(q, t, cand[c]);
		}
	}
	q->pending--;
	lt_settle(q);
}
