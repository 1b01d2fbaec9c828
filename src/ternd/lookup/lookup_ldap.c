/* lookup_ldap — the `users ldap:` backend (see lookup_ldap.h): questions to the directory in
 * qmail-ldap's order, their answers mapped to users_result and a delivery profile, a cache.
 * Owns: the cache, the questions in flight and their waiters. Trusts: nothing in an entry
 * (every value is checked; what cannot be used is TABLE_TEMP, logged); ldapc to answer each
 * ldapc_user exactly once. */
#include "ternd/lookup/lookup_ldap.h"
#include "mail/mlist.h"
#include "ternd/lookup/ldapc.h"
#include "mail/config.h"
#include "mail/ldapprof.h"
#include "mail/route.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ldu_waiter {                  /* one asker of a question in flight */
	struct ldu_waiter *next;
	lookup_backend_done done;
	void *arg;
	char *local, *domain;            /* exactly as this asker asked */
};

struct ldu_q {                       /* one question out to the directory */
	struct hnode h;                  /* key: hash of key */
	struct ldu *b;
	char *key;                       /* local@domain, lowercased */
	char *local, *domain;            /* lowercased */
	size_t cut;                      /* length of the local part asked now */
	int steps;
	int inmap;                       /* in b->inflight (joinable) */
	struct users_result *catchall;   /* the catch-all's answer, kept for the end */
	struct ldu_waiter *w;
	lookup_ldap_walk_cb walk;        /* lookup_ldap_explain: told the entry, no mapping */
	void *walkarg;
	int walkcatch, walkfinal;        /* a catch-all seen; asking for it again at the end */
};

struct ldu_entry {                   /* one cached answer */
	struct hnode h;
	struct ldu_entry *older, *newer; /* insertion order: the oldest goes first */
	long long expires;
	char *key;
	struct users_result *r;          /* trimmed after the profile's NUL */
};

struct ldu {
	struct ldapc *l;
	const struct config *cfg;
	struct users *passwd;            /* ldaplocaldelivery: the next backend, else NULL */
	struct hmap inflight, cache;
	struct ldu_entry *oldest, *newest;
	long long ttl_ms;
	size_t max;
	unsigned long searches;
};

/* ---------------------------------------------------------------- mapping */

static int ldu_temp(struct users_result *r, const char *dn, const char *fmt, const char *v)
{
	char why[96];
	snprintf(why, sizeof why, fmt, v);
	log_warn("event=ldap_user_unusable dn=\"%s\" reason=\"%s\"", dn, why);
	r->status = TABLE_TEMP;
	snprintf(r->diag, sizeof r->diag, "directory entry unusable: %s", why);
	return TABLE_TEMP;
}

int lookup_ldap_account(const char *s)
{
	static const struct { const char *w; int a; } t[] = {
		{ "", USERS_ACTIVE }, { "active", USERS_ACTIVE }, { "noaccess", USERS_NOACCESS },
		{ "nopop", USERS_NOACCESS }, { "disabled", USERS_DISABLED },
		{ "deleted", USERS_DELETED },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (str_casecmp(s, t[i].w) == 0)
			return t[i].a;
	return -1;
}

/* the store: always a Maildir ending in '/'; ldapprof_store_ok (ldapc prepended
 * ldapmessagestore to a relative value) */
static char *ldu_store(const char *ms)
{
	size_t n = strlen(ms);
	if (!n)
		return xstrdup("");
	if (!ldapprof_store_ok(ms))
		return NULL;
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s%s", ms, ms[n - 1] == '/' ? "" : "/");
	return buf_detach(&b);
}

/* home: homeDirectory, else the directory that holds the store */
static int ldu_home(const struct ldapc_user *u, const char *store, struct users_result *r)
{
	if (*u->homedir) {
		if (u->homedir[0] != '/' || strlen(u->homedir) >= sizeof r->home)
			return ldu_temp(r, u->dn, "homeDirectory %.60s is not an absolute path",
			                u->homedir);
		snprintf(r->home, sizeof r->home, "%s", u->homedir);
		return TABLE_FOUND;
	}
	size_t n = strlen(store);
	while (n > 1 && store[n - 1] == '/')
		n--;
	while (n > 1 && store[n - 1] != '/')
		n--;
	while (n > 1 && store[n - 1] == '/')
		n--;
	if (!*store || n >= sizeof r->home)
		return ldu_temp(r, u->dn, "%sneither homeDirectory nor a usable mailMessageStore", "");
	snprintf(r->home, sizeof r->home, "%.*s", (int)n, store);
	return TABLE_FOUND;
}

static int ldu_ids(const struct config *cfg, const struct ldapc_user *u, struct users_result *r)
{
	char v[24];
	snprintf(v, sizeof v, "%lu", (unsigned long)u->qmailuid);
	if (!u->qmailuid)
		return ldu_temp(r, u->dn, "%sno qmailUID (and no ldapuid default) or uid 0", "");
	if (!u->qmailgid)
		return ldu_temp(r, u->dn, "%sno qmailGID (and no ldapgid default) or gid 0", "");
	if (route_role_uid(cfg, u->qmailuid))
		return ldu_temp(r, u->dn, "qmailUID %s is a role account of ternd", v);
	if (u->qmailuid < cfg->minuid)
		return ldu_temp(r, u->dn, "qmailUID %s is below minuid (a system account)", v);
	if (u->qmailgid < cfg->minuid && u->qmailgid != cfg->ldapgid) {
		snprintf(v, sizeof v, "%lu", (unsigned long)u->qmailgid);
		return ldu_temp(r, u->dn, "qmailGID %s is below minuid and not ldapgid (a system "
		                "group)", v);
	}
	r->uid = u->qmailuid;
	r->gid = u->qmailgid;
	return TABLE_FOUND;
}

/* the delivery profile's modes, dot mode, lists and numbers */
static int ldu_profile_fill(const struct config *cfg, const struct ldapc_user *u,
                            struct ldapprof *p, struct users_result *r)
{
	const char *dm = *u->dotmode ? u->dotmode : cfg->ldapdefaultdotmode;
	if ((p->dotmode = ldapprof_dotmode(dm)) < 0)
		return ldu_temp(r, u->dn, "unknown qmailDotMode %.40s", dm);
	for (size_t i = 0; i < u->ndeliverymode; i++) {
		unsigned f;
		if (ldapprof_mode(u->deliverymode[i], &f) < 0)
			return ldu_temp(r, u->dn, "unknown deliveryMode %.40s", u->deliverymode[i]);
		p->mode |= f;
	}
	if (u->nforward > LDAPPROF_MAXLIST)
		return ldu_temp(r, u->dn, "more than %s mailForwardingAddress values", "64");
	for (size_t i = 0; i < u->nforward; i++)
		if (*u->forward[i])          /* an empty value forwards nowhere */
			p->forward[p->nforward++] = xstrdup(u->forward[i]);
	if (*u->program)
		p->program[p->nprogram++] = xstrdup(u->program);
	p->quotasize = u->quotasize ? u->quotasize : cfg->ldapdefaultquotasize;
	p->quotacount = u->quotacount ? u->quotacount : cfg->ldapdefaultquotacount;
	p->sizemax = u->sizemax;
	free(p->reply);
	p->reply = xstrdup(u->replytext);
	return TABLE_FOUND;
}

static int ldu_profile(const struct config *cfg, const struct ldapc_user *u, char *store,
                       struct users_result *r)
{
	struct ldapprof p;
	ldapprof_init(&p);
	free(p.store);
	p.store = store;
	int rc = ldu_profile_fill(cfg, u, &p, r);
	if (rc == TABLE_FOUND) {
		struct buf b;
		buf_init(&b);
		ldapprof_encode(&p, &b);
		if (b.len >= sizeof r->profile)
			rc = ldu_temp(r, u->dn, "delivery profile longer than %s bytes", "8191");
		else
			memcpy(r->profile, b.p, b.len + 1);
		buf_free(&b);
	}
	ldapprof_free(&p);
	return rc;
}

/* a qmailGroup entry: its address (the mail attribute) and owner (bounceAdmin) for the
 * list channel; neither uid nor mailbox is needed */
static int ldu_group(const struct ldapc_user *u, const char *local, const char *ext, int acct,
                     struct users_result *r)
{
	const char *owner = u->bounceadmin ? u->bounceadmin : "";
	if (!mlist_addr_ok(u->mail, strlen(u->mail)) || strlen(u->mail) >= sizeof r->listaddr)
		return ldu_temp(r, u->dn, "group without a usable mail attribute (%.60s)", u->mail);
	if (*owner && (!mlist_addr_ok(owner, strlen(owner)) || strlen(owner) >= sizeof r->listowner))
		return ldu_temp(r, u->dn, "group with a bad bounceAdmin (%.60s)", owner);
	r->group = 1;
	r->account = acct;
	snprintf(r->listaddr, sizeof r->listaddr, "%s", u->mail);
	str_lower(r->listaddr);
	snprintf(r->listowner, sizeof r->listowner, "%s", owner);
	snprintf(r->user, sizeof r->user, "%s", users_valid_local(u->uid) ? u->uid : "group");
	snprintf(r->local, sizeof r->local, "%s", local);
	snprintf(r->ext, sizeof r->ext, "%s", ext);
	snprintf(r->dash, sizeof r->dash, "%s", *ext ? "-" : "");
	snprintf(r->diag, sizeof r->diag, "directory group %.100s", r->listaddr);
	return TABLE_FOUND;
}

int lookup_ldap_map(const struct config *cfg, const struct ldapc_user *u, const char *local,
                    const char *ext, struct users_result *r)
{
	memset(r, 0, sizeof *r);
	r->status = TABLE_FOUND;
	int acct = lookup_ldap_account(u->accountstatus);
	if (acct < 0)
		return ldu_temp(r, u->dn, "unknown accountStatus %.40s", u->accountstatus);
	if (u->group)                /* a qmailGroup: a mailing list, no mailbox (doc/LISTS.md) */
		return ldu_group(u, local, ext, acct, r);
	if (!users_valid_local(u->uid) || strlen(u->uid) >= sizeof r->user)
		return ldu_temp(r, u->dn, "no usable uid attribute (%.60s)", u->uid);
	if (strlen(u->mailhost) >= sizeof r->mailhost)
		return ldu_temp(r, u->dn, "mailHost longer than %s bytes", "255");
	if (ldu_ids(cfg, u, r) != TABLE_FOUND)
		return TABLE_TEMP;
	char *store = ldu_store(u->messagestore);
	if (!store)
		return ldu_temp(r, u->dn, "mailMessageStore %.60s is relative (and no "
		                "ldapmessagestore), has /../ or a control byte", u->messagestore);
	if (ldu_home(u, store, r) != TABLE_FOUND) {
		free(store);
		return TABLE_TEMP;
	}
	if (ldu_profile(cfg, u, store, r) != TABLE_FOUND)   /* store is the profile's now */
		return TABLE_TEMP;
	r->account = acct;
	snprintf(r->user, sizeof r->user, "%s", u->uid);
	snprintf(r->local, sizeof r->local, "%s", local);
	snprintf(r->ext, sizeof r->ext, "%s", ext);
	snprintf(r->dash, sizeof r->dash, "%s", *ext ? "-" : "");
	snprintf(r->mailhost, sizeof r->mailhost, "%s", u->mailhost);
	snprintf(r->diag, sizeof r->diag, "directory user %.100s", u->uid);
	return TABLE_FOUND;
}

/* ---------------------------------------------------------------- cache */

static void ldu_entry_drop(struct ldu *b, struct ldu_entry *e)
{
	hmap_del(&b->cache, e->h.key);
	if (e->older)
		e->older->newer = e->newer;
	else
		b->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		b->newest = e->older;
	free(e->key);
	free(e->r);
	free(e);
}

static const struct users_result *ldu_cache_get(struct ldu *b, const char *key)
{
	uint64_t h = str_hash(key);
	struct ldu_entry *e = (struct ldu_entry *)hmap_get(&b->cache, h);
	if (!e || strcmp(e->key, key) != 0)
		return NULL;
	if (e->expires <= ev_now_ms()) {
		ldu_entry_drop(b, e);
		return NULL;
	}
	return e->r;
}

static void ldu_cache_put(struct ldu *b, const char *key, const struct users_result *r)
{
	if (!b->ttl_ms || !b->max || (r->status != TABLE_FOUND && r->status != TABLE_NOTFOUND))
		return;
	uint64_t h = str_hash(key);
	struct ldu_entry *old = (struct ldu_entry *)hmap_get(&b->cache, h);
	if (old)
		ldu_entry_drop(b, old);   /* the same key answered again, or a hash collision */
	long long now = ev_now_ms();
	while (b->oldest && (b->cache.n >= b->max || b->oldest->expires <= now))
		ldu_entry_drop(b, b->oldest);
	size_t n = offsetof(struct users_result, profile) + strlen(r->profile) + 1;
	struct ldu_entry *e = xcalloc(1, sizeof *e);
	e->h.key = h;
	e->key = xstrdup(key);
	e->r = xmalloc(n);
	memcpy(e->r, r, n);
	e->expires = now + b->ttl_ms;
	e->older = b->newest;
	if (b->newest)
		b->newest->newer = e;
	else
		b->oldest = e;
	b->newest = e;
	hmap_put(&b->cache, &e->h);
}

/* a cached answer into a full users_result (the trimmed copy ends after the profile) */
static void ldu_cache_copy(const struct users_result *c, struct users_result *r)
{
	size_t n = offsetof(struct users_result, profile) + strlen(c->profile) + 1;
	memcpy(r, c, n);
}

/* ---------------------------------------------------------------- questions */

static void ldu_ask_next(struct ldu_q *q);
static int ldu_walk_answer(struct ldu_q *q, int status, const struct ldapc_user *u);
static void ldu_walk_end(struct ldu_q *q);

/* answer every waiter of q with r and free q (r may point into q) */
static void ldu_finish(struct ldu_q *q, struct users_result *r)
{
	struct ldu *b = q->b;
	if (q->inmap)
		hmap_del(&b->inflight, q->h.key);
	ldu_cache_put(b, q->key, r);
	log_debug("event=ldap_user key=%s status=%d user=%s ext=%s", q->key, r->status, r->user,
	          r->ext);
	for (struct ldu_waiter *w = q->w, *next; w; w = next) {
		next = w->next;
		w->done(w->arg, w->local, w->domain, r);   /* may ask again: q is out of the map */
		free(w->local);
		free(w->domain);
		free(w);
	}
	free(q->catchall);
	free(q->key);
	free(q->local);
	free(q->domain);
	free(q);
}

/* nothing in the directory: passwd: next (ldaplocaldelivery), else not found */
static void ldu_notfound(struct ldu_q *q)
{
	struct users_result r;
	if (q->b->passwd) {
		users_lookup(q->b->passwd, q->local, &r);
	} else {
		memset(&r, 0, sizeof r);
		r.status = TABLE_NOTFOUND;
		snprintf(r.diag, sizeof r.diag, "no such user in the directory");
	}
	ldu_finish(q, &r);
}

static void ldu_answer(void *arg, int status, const struct ldapc_user *u)
{
	struct ldu_q *q = arg;
	struct users_result r;
	if (q->walk && ldu_walk_answer(q, status, u))
		return;
	if (status == TABLE_TEMP) {
		memset(&r, 0, sizeof r);
		r.status = TABLE_TEMP;
		snprintf(r.diag, sizeof r.diag, "directory unreachable or answered garbage");
		ldu_finish(q, &r);
		return;
	}
	if (status == TABLE_FOUND && !u->catchall) {
		const char *ext = q->local + q->cut + (q->local[q->cut] == '-');
		lookup_ldap_map(q->b->cfg, u, q->local, ext, &r);
		ldu_finish(q, &r);
		return;
	}
	if (status == TABLE_FOUND && !q->catchall) {    /* the same for every step: keep one */
		q->catchall = xmalloc(sizeof *q->catchall);
		lookup_ldap_map(q->b->cfg, u, q->local, "", q->catchall);
	}
	ldu_ask_next(q);
}

/* the next shorter address at a '-' from the right; then the catch-all or not found */
static void ldu_ask_next(struct ldu_q *q)
{
	size_t next = users_ext_next(q->local, q->cut);
	if (q->steps == 0 || (next > 0 && q->steps <= USERS_MAXEXT)) {
		if (q->steps++ > 0)
			q->cut = next;
		struct buf a;
		buf_init(&a);
		buf_printf(&a, "%.*s@%s", (int)q->cut, q->local, q->domain);
		q->b->searches++;
		log_debug("event=ldap_search addr=%s searches=%lu", a.p, q->b->searches);
		if (!q->b->l || ldapc_user(q->b->l, a.p, ldu_answer, q) < 0) {
			buf_free(&a);
			ldu_answer(q, TABLE_TEMP, NULL);
			return;
		}
		buf_free(&a);
		return;
	}
	if (q->walk)
		ldu_walk_end(q);
	else if (q->catchall)
		ldu_finish(q, q->catchall);
	else
		ldu_notfound(q);
}

static void ldu_waiter_add(struct ldu_q *q, const char *local, const char *domain,
                           lookup_backend_done done, void *arg)
{
	struct ldu_waiter *w = xcalloc(1, sizeof *w);
	w->done = done;
	w->arg = arg;
	w->local = xstrdup(local);
	w->domain = xstrdup(domain);
	w->next = q->w;
	q->w = w;
}

static void ldu_ask(struct lookup_backend *be, const char *local, const char *domain,
                    lookup_backend_done done, void *arg)
{
	struct ldu *b = be->priv;
	if (!*local || strlen(local) >= USERS_MAXLOCAL) {
		struct users_result r;
		memset(&r, 0, sizeof r);
		r.status = TABLE_NOTFOUND;
		snprintf(r.diag, sizeof r.diag, "bad local part");
		done(arg, local, domain, &r);
		return;
	}
	struct buf k;
	buf_init(&k);
	buf_printf(&k, "%s@%s", local, domain);
	str_lower(k.p);
	const struct users_result *c = ldu_cache_get(b, k.p);
	struct ldu_q *q = (struct ldu_q *)hmap_get(&b->inflight, str_hash(k.p));
	if (c) {
		struct users_result r;
		log_debug("event=ldap_cache_hit key=%s status=%d", k.p, c->status);
		ldu_cache_copy(c, &r);
		buf_free(&k);
		done(arg, local, domain, &r);
		return;
	}
	if (q && strcmp(q->key, k.p) == 0) {
		log_debug("event=ldap_search_joined key=%s", k.p);
		ldu_waiter_add(q, local, domain, done, arg);
		buf_free(&k);
		return;
	}
	q = xcalloc(1, sizeof *q);
	q->b = b;
	q->key = buf_detach(&k);
	q->h.key = str_hash(q->key);
	q->local = xstrndup(q->key, (size_t)(strrchr(q->key, '@') - q->key));
	q->domain = xstrdup(strrchr(q->key, '@') + 1);
	q->cut = strlen(q->local);
	ldu_waiter_add(q, local, domain, done, arg);
	if (!hmap_get(&b->inflight, q->h.key)) {   /* a colliding key simply is not joinable */
		hmap_put(&b->inflight, &q->h);
		q->inmap = 1;
	}
	ldu_ask_next(q);
}

/* ---------------------------------------------------------------- the walk, explained */

static void ldu_walk_free(struct ldu_q *q)
{
	free(q->b);
	free(q->key);
	free(q->local);
	free(q->domain);
	free(q);
}

/* lookup_ldap_explain's answers: the entry the walk ends on goes to q->walk with the step
 * that found it; a catch-all is remembered and asked again at the end (an entry is valid
 * only in its callback). 0: the routing walk goes on (not found: the next step). */
static int ldu_walk_answer(struct ldu_q *q, int status, const struct ldapc_user *u)
{
	if (status == TABLE_NOTFOUND && !q->walkfinal)
		return 0;
	if (status == TABLE_FOUND && u->catchall && !q->walkfinal) {
		q->walkcatch = 1;
		ldu_ask_next(q);
		return 1;
	}
	struct buf how;
	buf_init(&how);
	if (status == TABLE_FOUND && u->catchall)
		buf_printf(&how, "catch-all @%s", q->domain);
	else if (status == TABLE_FOUND && q->local[q->cut])
		buf_printf(&how, "extension %s removed", q->local + q->cut + 1);
	else
		buf_adds(&how, status == TABLE_FOUND ? "address" : "");
	q->walk(q->walkarg, status, status == TABLE_FOUND ? u : NULL, how.p ? how.p : "");
	buf_free(&how);
	ldu_walk_free(q);
	return 1;
}

/* every step asked: the catch-all's entry once more, else not found */
static void ldu_walk_end(struct ldu_q *q)
{
	if (!q->walkcatch) {
		q->walk(q->walkarg, TABLE_NOTFOUND, NULL, "");
		ldu_walk_free(q);
		return;
	}
	q->walkfinal = 1;
	q->cut = strlen(q->local);
	if (ldapc_user(q->b->l, q->key, ldu_answer, q) < 0)
		ldu_answer(q, TABLE_TEMP, NULL);
}

void lookup_ldap_explain(struct ldapc *l, const char *addr, lookup_ldap_walk_cb cb, void *arg)
{
	const char *at = strrchr(addr, '@');
	if (!at || at == addr || (size_t)(at - addr) >= USERS_MAXLOCAL) {
		cb(arg, TABLE_NOTFOUND, NULL, "");
		return;
	}
	struct ldu_q *q = xcalloc(1, sizeof *q);
	q->b = xcalloc(1, sizeof *q->b);
	q->b->l = l;
	q->key = xstrdup(addr);
	str_lower(q->key);
	q->local = xstrndup(q->key, (size_t)(at - addr));
	q->domain = xstrdup(q->key + (at - addr) + 1);
	q->cut = strlen(q->local);
	q->walk = cb;
	q->walkarg = arg;
	ldu_ask_next(q);
}

void lookup_backend_ldap(struct lookup_backend *be, struct ldapc *l, const struct config *cfg)
{
	struct ldu *b = xcalloc(1, sizeof *b);
	b->l = l;
	b->cfg = cfg;
	b->ttl_ms = (long long)cfg->ldapcachettl * 1000;
	b->max = (size_t)cfg->ldapcachesize;
	hmap_init(&b->inflight);
	hmap_init(&b->cache);
	if (cfg->ldaplocaldelivery) {
		struct cfg_errors errs;
		errs.n = 0;
		b->passwd = users_open("passwd:", &errs);
		users_set_minuid(b->passwd, cfg->minuid);
	}
	be->name = "ldap";
	be->ask = ldu_ask;
	be->priv = b;
}

void lookup_backend_ldap_free(struct lookup_backend *be)
{
	struct ldu *b = be->priv;
	if (!b)
		return;
	while (b->oldest)
		ldu_entry_drop(b, b->oldest);
	hmap_free(&b->cache);
	hmap_free(&b->inflight);
	users_free(b->passwd);
	free(b);
	be->priv = NULL;
}
