/* route — see route.h. One call routes one recipient: normalise, decide local or remote,
 * expand aliases, look users up, and emit de-duplicated targets.
 * Owns: nothing beyond the result it builds. Trusts: the config; every lookup's tempfail is
 * passed on as ROUTE_TEMP. */
#include "mail/route.h"
#include "mail/mlist.h"
#include "mail/channel.h"
#include "mail/dotqmail.h"
#include "mail/ldapprof.h"
#include "mail/table.h"
#include "mail/virtual.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUTE_MAXADDR    1024
#define ROUTE_MAXPERCENT 10

struct rwork {
	struct route_ctx *rc;
	struct route_result *res;
	struct table_map *seen;      /* channel\naddress\ninstruction already emitted */
	int asked;                   /* users questions of this walk still unanswered */
};

void route_init(struct route_ctx *rc, const struct config *cfg, struct users *users,
                struct aliases *aliases)
{
	memset(rc, 0, sizeof *rc);
	rc->cfg = cfg;
	rc->users = users;
	rc->aliases = aliases;
}

static int route_set(struct route_result *res, int verdict, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int route_set(struct route_result *res, int verdict, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->diag, sizeof res->diag, fmt, ap);
	va_end(ap);
	res->verdict = verdict;
	return verdict;
}

/* ---------------------------------------------------------------- normalisation */

static int route_islocal(const struct config *cfg, const char *domain)
{
	int rc = table_list_lookup(&cfg->locals, domain);
	return rc == TABLE_FOUND ? ROUTE_LOCAL : rc == TABLE_TEMP ? ROUTE_WTEMP : ROUTE_REMOTE;
}

static int route_split(const struct config *cfg, const char *addr, char **local, char **domain)
{
	size_t n = strlen(addr);
	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
		addr++;
		n -= 2;
	}
	if (n == 0 || n > ROUTE_MAXADDR)
		return -1;
	char *a = xstrndup(addr, n);
	char *at = strrchr(a, '@');
	if (at)
		*at = '\0';
	*local = xstrdup(a);
	*domain = xstrdup(at ? at + 1 : cfg->envnoathost ? cfg->envnoathost : "");
	free(a);
	str_lower(*domain);
	size_t dl = strlen(*domain);
	if (dl && (*domain)[dl - 1] == '.')
		(*domain)[--dl] = '\0';
	for (const char *p = *local; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	for (const char *p = *domain; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '@')
			return -1;
	return (**local && dl) ? 0 : -1;
}

int route_normalize(const struct config *cfg, const char *addr, char **local, char **domain)
{
	*local = *domain = NULL;
	if (!addr || route_split(cfg, addr, local, domain) < 0) {
		free(*local);
		free(*domain);
		*local = *domain = NULL;
		return ROUTE_BAD;
	}
	int where = route_islocal(cfg, *domain);
	for (int i = 0; cfg->percenthack && where == ROUTE_LOCAL && i < ROUTE_MAXPERCENT; i++) {
		char *pc = strrchr(*local, '%');
		if (!pc || !pc[1] || pc == *local)
			break;
		*pc = '\0';
		free(*domain);
		*domain = xstrdup(pc + 1);
		str_lower(*domain);
		where = route_islocal(cfg, *domain);
	}
	return where;
}

/* ---------------------------------------------------------------- results */

__attribute__((format(printf, 3, 4)))
static int route_set_diag(char *diag, size_t diaglen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(diag, diaglen, fmt, ap);
	va_end(ap);
	return ROUTE_TEMP;
}

/* an address or domain with a transports entry: one target of that channel and host;
 * ROUTE_OK, ROUTE_TEMP (res->diag set), or -1 (no entry: the other rules decide) */
static int route_by_transport(struct rwork *w, const char *local, const char *domain);

static void route_add(struct rwork *w, const char *channel, const char *host,
                      const char *address, const char *user, uint64_t uid, uint64_t gid,
                      const char *home, const char *local, const char *ext,
                      const char *domain, const char *instruction, const char *profile)
{
	struct buf k;
	buf_init(&k);
	buf_printf(&k, "%s\n%s\n%s", channel, address, instruction);
	str_lower(k.p);
	int dup = table_map_put(w->seen, k.p, NULL);
	buf_free(&k);
	if (dup)
		return;
	struct route_result *res = w->res;
	if (res->n == res->cap) {
		res->cap = res->cap ? res->cap * 2 : 4;
		res->t = xrealloc(res->t, res->cap * sizeof *res->t);
	}
	struct route_target *t = &res->t[res->n++];
	t->channel = xstrdup(channel);
	t->host = xstrdup(host);
	t->address = xstrdup(address);
	t->user = xstrdup(user);
	t->uid = uid;
	t->gid = gid;
	t->home = xstrdup(home);
	t->local = xstrdup(local);
	t->ext = xstrdup(ext);
	t->domain = xstrdup(domain);
	t->instruction = xstrdup(instruction);
	t->profile = xstrdup(profile);
}

static void route_drop_targets(struct route_result *res)
{
	for (size_t i = 0; i < res->n; i++) {
		struct route_target *t = &res->t[i];
		free(t->channel);
		free(t->host);
		free(t->address);
		free(t->user);
		free(t->home);
		free(t->local);
		free(t->ext);
		free(t->domain);
		free(t->instruction);
		free(t->profile);
	}
	free(res->t);
	res->t = NULL;
	res->n = res->cap = 0;
}

void route_result_free(struct route_result *res)
{
	route_drop_targets(res);
	memset(res, 0, sizeof *res);
}

/* ---------------------------------------------------------------- virtual domains */

#define ROUTE_USER_DISABLED 101     /* route_user: a directory user whose account is disabled */

static int route_user(struct rwork *w, const char *local, const char *domain,
                      struct users_result *r);

/* qmail's virtualdomains: local@domain -> the local part prepend-local, routed through the
 * users table (the user prepend, extension local: its .qmail-local or .qmail-default) */
static int route_vdomain(struct rwork *w, const char *local, const char *domain,
                         const char *prepend)
{
	struct users_result ur;
	struct buf l;
	buf_init(&l);
	buf_printf(&l, "%s-%s", prepend, local);
	str_lower(l.p);
	int u = users_valid_local(l.p) ? route_user(w, l.p, domain, &ur) : TABLE_NOTFOUND;
	if (u == TABLE_NOTFOUND && !users_valid_local(l.p))
		snprintf(ur.diag, sizeof ur.diag, "not a valid local part");
	int rc = u == ROUTE_ASKED ? route_set(w->res, ROUTE_PENDING, "%s", ur.diag) :
	         u == TABLE_FOUND ? route_set(w->res, ROUTE_OK, "virtual %s: user %s", domain,
	                                      ur.user) :
	         u == TABLE_TEMP ? route_set(w->res, ROUTE_TEMP, "%s", ur.diag) :
	         u == ROUTE_USER_DISABLED ? route_set(w->res, ROUTE_DISABLED, "%s", ur.diag) :
	         route_set(w->res, ROUTE_NOUSER, "%s@%s (virtual, %s): %s", local, domain, l.p,
	                   ur.diag[0] ? ur.diag : "no such user");
	buf_free(&l);
	return rc;
}

/* why a virtualusers uid:gid may not deliver (the users' rules), else NULL */
static const char *route_vuser_bad(const struct config *cfg, uint64_t uid, uint64_t gid)
{
	if (uid == 0 || gid == 0)
		return "uid or gid 0";
	if (route_role_uid(cfg, uid))
		return "the uid of a role account";
	if (uid < cfg->minuid)
		return "uid below minuid";
	return NULL;
}

/* a Postfix-style virtual mailbox: the address's Maildir, written as its uid:gid */
static int route_vuser(struct rwork *w, const char *local, const char *domain,
                       const char *value)
{
	uint64_t uid, gid;
	char path[VIRTUAL_MAXPATH];
	const char *bad = virtual_user_parse(value, &uid, &gid, path, sizeof path) < 0 ?
	                  "malformed entry" : route_vuser_bad(w->rc->cfg, uid, gid);
	if (bad) {
		log_warn("event=virtualuser_refused address=%s@%s reason=\"%s\"", local, domain, bad);
		return route_set(w->res, ROUTE_TEMP, "virtualusers entry for %s@%s: %s", local,
		                 domain, bad);
	}
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", local, domain);
	str_lower(a.p);
	char *l = xstrdup(local);
	str_lower(l);
	route_add(w, "local", "", a.p, a.p, uid, gid, "/", l, "", domain, path, "");
	free(l);
	buf_free(&a);
	return route_set(w->res, ROUTE_OK, "virtual mailbox %s", path);
}

/* A domain that is not in locals: virtualusers, then virtualdomains (route.h). -1 when
 * neither applies (the address is remote), else the verdict. */
static int route_virtual(struct rwork *w, const char *local, const char *domain)
{
	const struct config *cfg = w->rc->cfg;
	char *val = NULL, prepend[VIRTUAL_MAXPREPEND];
	int rc = -1;
	int v = virtual_user_find(&cfg->virtualusers, local, domain, &val);
	if (v == VIRTUAL_USER)
		rc = route_vuser(w, local, domain, val);
	else if (v == VIRTUAL_NOUSER)
		rc = route_set(w->res, ROUTE_NOUSER, "%s@%s: no such virtual user", local, domain);
	else if (v == VIRTUAL_TEMP)
		rc = route_set(w->res, ROUTE_TEMP, "virtualusers table unreadable");
	free(val);
	if (rc != -1)
		return rc;
	v = virtual_domain_find(&cfg->virtualdomains, local, domain, prepend, sizeof prepend);
	if (v == TABLE_TEMP)
		return route_set(w->res, ROUTE_TEMP, "virtualdomains table unreadable");
	return v == TABLE_FOUND ? route_vdomain(w, local, domain, prepend) : -1;
}

static int route_alias_addr(struct rwork *w, const char *alias, const char *domain,
                            const struct aliases_target *t);
static int route_postmaster(struct rwork *w, const char *domain);

/* LIST-owner: the list's owner addresses, each routed as an alias address target (a user
 * or a remote address); none given: postmaster */
static int route_list_owner(struct rwork *w, const char *list, const char *dir,
                            const char *domain)
{
	struct mlist l;
	char err[300];
	mlist_init(&l);
	int rc = mlist_load(dir, route_aliases_owner(w->rc->cfg), &l, err, sizeof err);
	if (rc != TABLE_FOUND)
		rc = route_set(w->res, ROUTE_TEMP, "list %s: %s", list, err);
	else if (l.owners.n == 0)
		rc = route_postmaster(w, domain);
	else {
		rc = ROUTE_OK;
		for (size_t i = 0; i < l.owners.n && rc == ROUTE_OK; i++) {
			struct aliases_target t = { .kind = ALIASES_ADDR, .value = l.owners.v[i] };
			rc = route_alias_addr(w, list, domain, &t);
		}
		if (rc == ROUTE_OK && w->res->n == 0 && !w->asked)
			rc = route_set(w->res, ROUTE_TEMP, "list %s: no owner is deliverable", list);
		else if (rc == ROUTE_OK)
			rc = route_set(w->res, ROUTE_OK, "owner of list %s", list);
	}
	mlist_free(&l);
	return rc;
}

/* A mailing list (`lists`, src/mail/mlist.h): the list address, LIST-accept-COOKIE and
 * LIST-reject-COOKIE go to channel list (host = the list address, instruction = what the
 * address asks: post, accept, reject; ext = the cookie); LIST-owner to the owners. -1 when
 * the address is no list's. */
static int route_list(struct rwork *w, const char *local, const char *domain)
{
	static const char *const what[] = { "post", "owner", "accept", "reject" };
	char list[MLIST_ADDRMAX + 2], cookie[80], *dir = NULL;
	int kind = MLIST_POST;
	int rc = mlist_route(w->rc->cfg, local, domain, &kind, list, sizeof list, cookie,
	                     sizeof cookie, &dir);
	if (rc == TABLE_NOTFOUND)
		return -1;
	if (rc == TABLE_TEMP)
		return route_set(w->res, ROUTE_TEMP, "lists table unreadable");
	if (kind == MLIST_OWNER)
		rc = route_list_owner(w, list, dir, domain);
	else {
		struct buf a;
		buf_init(&a);
		buf_printf(&a, "%s@%s", local, domain);
		route_add(w, channel_builtin(&w->rc->cfg->channels, CHANNEL_T_LIST)->name, list, a.p,
		          "", 0, 0, "", local, cookie, domain, what[kind], "");
		buf_free(&a);
		rc = route_set(w->res, ROUTE_OK, "list %s (%s)", list, what[kind]);
	}
	free(dir);
	return rc;
}

/* a non-local recipient: a virtual one (route_virtual), else one smtp target whose host
 * comes from smtproutes or the domain;
 * with qmqpservers, one qmqp target (host "qmqpservers": all go to those servers, mini-qmail);
 * ROUTE_OK, else the verdict with res->diag set */
static int route_remote(struct rwork *w, const char *local, const char *domain)
{
	char host[ROUTE_HOSTLEN], diag[256];
	int v = route_list(w, local, domain);
	if (v == -1)
		v = route_virtual(w, local, domain);
	if (v != -1)
		return v;
	int qmqp = w->rc->cfg->qmqpservers && *w->rc->cfg->qmqpservers;
	int rc = qmqp ? ROUTE_OK : route_smtp_host(w->rc->cfg, domain, host, sizeof host, diag,
	                                           sizeof diag);
	if (rc != ROUTE_OK)
		return route_set(w->res, rc, "%s", diag);
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", local, domain);
	route_add(w, qmqp ? "qmqp" : "smtp", qmqp ? "qmqpservers" : host, a.p, "", 0, 0, "", "", "",
	          domain, "", "");
	buf_free(&a);
	return ROUTE_OK;
}

/* An extension address (r->ext set) is deliverable only through a .qmail file: does one of
 * the names tern-local tries (.qmail-a-b, .qmail-a-default, .qmail-default) exist under the
 * home as a regular file? 1 yes; 0 no (every name ENOENT/ENOTDIR or not a regular file — a
 * directory, a FIFO: tern-local treats those as missing too); -1 cannot
 * tell (home missing or not searchable by this unprivileged process, I/O error) — then the
 * caller accepts, as tern-local decides later (a blind spot is never "no such user"). */
static int route_dotqmail(const struct users_result *r)
{
	int dfd = open(r->home, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int found = -1, err = errno;
	struct buf name;
	buf_init(&name);
	long dflt;
	for (unsigned i = 0; dfd >= 0 && dotqmail_candidate(r->dash, r->ext, i, &name, &dflt) == 0;
	     i++) {
		struct stat st;
		found = 0;
		if (fstatat(dfd, name.p, &st, 0) == 0) {
			if (!S_ISREG(st.st_mode))
				continue;   /* a directory, a FIFO: tern-local tries the next name */
			found = 1;
			break;
		}
		if (errno != ENOENT && errno != ENOTDIR) {
			found = -1;
			err = errno;
			break;
		}
	}
	if (found < 0)
		log_debug("event=dotqmail_unknown user=%s home=%s ext=%s file=%s error=\"%s\"",
		          r->user, r->home, r->ext, dfd >= 0 && name.p ? name.p : "-", strerror(err));
	if (dfd >= 0)
		close(dfd);
	buf_free(&name);
	return found;
}


int route_other_node(const struct config *cfg, const char *mailhost)
{
	if (!cfg->ldapcluster || !*mailhost || (cfg->me && str_casecmp(mailhost, cfg->me) == 0))
		return 0;
	for (size_t i = 0; i < cfg->ldapclusterhosts.n; i++)
		if (str_casecmp(cfg->ldapclusterhosts.v[i], mailhost) == 0)
			return 0;
	char *h = xstrdup(mailhost);
	str_lower(h);
	int rc = table_list_lookup(&cfg->ldapclusterhosts, h);
	free(h);
	return rc == TABLE_FOUND ? 0 : rc == TABLE_TEMP ? -1 : 1;
}

/* the profile a local target carries: the directory's, or for a users-table row with a
 * quota (6th field) a `table=1` profile holding only that quota (doc/LOCAL.md "Quotas") */
static void route_user_profile(const struct users_result *r, struct buf *out)
{
	if (r->profile[0] || (!r->quotasize && !r->quotacount)) {
		buf_adds(out, r->profile);
		return;
	}
	struct ldapprof p;
	ldapprof_init(&p);
	p.table = 1;
	p.quotasize = r->quotasize;
	p.quotacount = r->quotacount;
	ldapprof_encode(&p, out);
	ldapprof_free(&p);
}

/* a found user: its local target, or (cluster) a target for the node that holds it */
static int route_user_target(struct rwork *w, const char *domain, struct users_result *r)
{
	struct buf a;
	char host[ROUTE_HOSTLEN];
	int other = route_other_node(w->rc->cfg, r->mailhost);
	if (other < 0 || (other && route_relay(r->mailhost, host, sizeof host) < 0)) {
		snprintf(r->diag, sizeof r->diag, other < 0 ? "ldapclusterhosts table unreadable" :
		         "mailHost %.100s is not a host name", r->mailhost);
		return TABLE_TEMP;
	}
	buf_init(&a);
	buf_printf(&a, "%s@%s", r->local, domain);
	if (other)
		route_add(w, "cluster", host, a.p, "", 0, 0, "", r->local, "", domain, "", "");
	else {
		struct buf prof;
		buf_init(&prof);
		route_user_profile(r, &prof);
		route_add(w, "local", "", a.p, r->user, r->uid, r->gid, r->home, r->local, r->ext,
		          domain, "", prof.p ? prof.p : "");
		buf_free(&prof);
	}
	buf_free(&a);
	return TABLE_FOUND;
}

static int route_alias_addr(struct rwork *w, const char *alias, const char *domain,
                            const struct aliases_target *t);

/* A directory group (qmailGroup, doc/LISTS.md): GROUP@ -> channel list (host = the group's
 * mail address); GROUP-owner (and GROUP-owner-*, VERP) -> its bounceAdmin (else postmaster);
 * GROUP-accept-COOKIE / GROUP-reject-COOKIE -> channel list; any other extension is no
 * user. Returns a users answer (TABLE_*), r->diag set when not found. */
static int route_group(struct rwork *w, const char *domain, struct users_result *r)
{
	const char *ext = r->ext, *ch = channel_builtin(&w->rc->cfg->channels, CHANNEL_T_LIST)->name;
	if (!strcmp(ext, "owner") || !strncmp(ext, "owner-", 6)) {
		int rc;
		if (r->listowner[0]) {
			struct aliases_target t = { .kind = ALIASES_ADDR, .value = r->listowner };
			rc = route_alias_addr(w, r->listaddr, domain, &t);
		} else
			rc = route_postmaster(w, domain);
		if (rc == ROUTE_OK && (w->res->n || w->asked))
			return TABLE_FOUND;
		snprintf(r->diag, sizeof r->diag, "owner of group %.80s not deliverable", r->listaddr);
		return TABLE_TEMP;
	}
	const char *what = !ext[0] ? "post" : !strncmp(ext, "accept-", 7) ? "accept" :
	                   !strncmp(ext, "reject-", 7) ? "reject" : NULL;
	if (!what) {
		snprintf(r->diag, sizeof r->diag, "group %.60s has no address -%.30s", r->listaddr, ext);
		return TABLE_NOTFOUND;
	}
	const char *cookie = ext[0] ? ext + 7 : "";
	size_t cl = strlen(cookie);
	if (cl != MLIST_COOKIEHEX || strspn(cookie, "0123456789abcdef") != cl)
		cookie = "";                      /* malformed: the queue refuses it */
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", r->local, domain);
	route_add(w, ch, r->listaddr, a.p, "", 0, 0, "", r->local, cookie, domain, what, "");
	buf_free(&a);
	return TABLE_FOUND;
}

/* a user's default delivery; returns the users table's answer (r filled), or
 * ROUTE_USER_DISABLED. An extension without a .qmail file for it is no user (tern-local
 * would bounce it: 5.1.1) — except for a directory user (a profile): its mailbox takes
 * extensions, and its home may be out of this process's sight. A deleted directory account
 * is no user; a disabled one is refused (5.2.1). */
static int route_user(struct rwork *w, const char *local, const char *domain,
                      struct users_result *r)
{
	struct route_ctx *rc0 = w->rc;
	int rc = rc0->user_fn ? rc0->user_fn(rc0->user_arg, local, domain, r) :
	         users_lookup(rc0->users, local, r);
	if (rc == ROUTE_ASKED) {
		w->asked++;
		snprintf(r->diag, sizeof r->diag, "waiting for the users backend");
		return rc;
	}
	if (rc == TABLE_FOUND && r->account == USERS_DELETED) {
		snprintf(r->diag, sizeof r->diag, "account %.100s deleted", r->user);
		rc = TABLE_NOTFOUND;
	}
	if (rc == TABLE_FOUND && r->account == USERS_DISABLED) {
		snprintf(r->diag, sizeof r->diag, "Mailbox disabled (account %.100s)", r->user);
		return ROUTE_USER_DISABLED;
	}
	if (rc == TABLE_FOUND && r->group)
		return route_group(w, domain, r);
	if (rc == TABLE_FOUND && r->ext[0] && !r->profile[0] && route_dotqmail(r) == 0) {
		snprintf(r->diag, sizeof r->diag, "no .qmail file for the extension %.80s", r->ext);
		rc = TABLE_NOTFOUND;
	}
	if (rc == TABLE_FOUND)
		rc = route_user_target(w, domain, r);
	return rc;
}

/* ---------------------------------------------------------------- aliases */

static void route_uidname(uint64_t uid, char *out, size_t outlen)
{
	struct passwd pw, *res = NULL;
	char b[4096];
	if (getpwuid_r((uid_t)uid, &pw, b, sizeof b, &res) == 0 && res)
		snprintf(out, outlen, "%s", pw.pw_name);
	else
		snprintf(out, outlen, "%llu", (unsigned long long)uid);
}

int route_role_uid(const struct config *cfg, uint64_t uid)
{
	const char *roles[] = { cfg->user, cfg->queueuser };
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		struct passwd pw, *res = NULL;
		char b[4096];
		if (roles[i] && getpwnam_r(roles[i], &pw, b, sizeof b, &res) == 0 && res &&
		    (uint64_t)pw.pw_uid == uid)
			return 1;
	}
	return 0;
}

uint64_t route_aliases_owner(const struct config *cfg)
{
	uid_t me = getuid();
	return me == 0 || route_role_uid(cfg, me) ? 0 : (uint64_t)me;
}

/* the defaultprivs account; in development (this process runs neither as root nor as a
 * role account) the running account when defaultprivs does not exist. Cached once found. */
static int route_privs(struct route_ctx *rc)
{
	struct passwd pw, *res = NULL;
	char b[4096];
	if (rc->privs_ok)
		return 0;
	const char *u = rc->cfg->defaultprivs ? rc->cfg->defaultprivs : "nobody";
	if (getpwnam_r(u, &pw, b, sizeof b, &res) == 0 && res && pw.pw_uid != 0 &&
	    !route_role_uid(rc->cfg, pw.pw_uid)) {
		rc->privs_uid = pw.pw_uid;
		rc->privs_gid = pw.pw_gid;
		snprintf(rc->privs_user, sizeof rc->privs_user, "%s", u);
	} else if (route_aliases_owner(rc->cfg) != 0) {
		rc->privs_uid = getuid();
		rc->privs_gid = getgid();
		route_uidname(rc->privs_uid, rc->privs_user, sizeof rc->privs_user);
	} else {
		return -1;
	}
	rc->privs_ok = 1;
	return 0;
}

/* who runs a |command or /file target (route.h); -1 with why set when nobody may */
static int route_runas(struct route_ctx *rc, const struct aliases_target *t, uint64_t *uid,
                       uint64_t *gid, char *user, size_t ulen, char *why, size_t wlen)
{
	if (t->incl && t->uid != 0 && !route_role_uid(rc->cfg, t->uid)) {
		struct passwd pw, *res = NULL;
		char b[4096];
		if (getpwuid_r((uid_t)t->uid, &pw, b, sizeof b, &res) != 0 || !res || pw.pw_uid == 0) {
			snprintf(why, wlen, "the owner (uid %llu) of its include file has no account",
			         (unsigned long long)t->uid);
			return -1;
		}
		*uid = pw.pw_uid;
		*gid = pw.pw_gid;
		snprintf(user, ulen, "%s", pw.pw_name);
		return 0;
	}
	if (route_privs(rc) < 0) {
		snprintf(why, wlen, "no account defaultprivs=%s to run it as (create it, or name "
		         "an unprivileged account that is no role account)", rc->cfg->defaultprivs);
		return -1;
	}
	*uid = rc->privs_uid;
	*gid = rc->privs_gid;
	snprintf(user, ulen, "%s", rc->privs_user);
	return 0;
}

static int route_alias_prog(struct rwork *w, const char *alias, const char *domain,
                            const struct aliases_target *t)
{
	uint64_t uid, gid;
	char user[64], why[160];
	if (route_runas(w->rc, t, &uid, &gid, user, sizeof user, why, sizeof why) < 0)
		return route_set(w->res, ROUTE_TEMP, "alias %s: cannot run %.60s: %s", alias,
		                 t->value, why);
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", alias, domain);
	route_add(w, "local", "", a.p, user, uid, gid, "/", alias, "", domain, t->value, "");
	buf_free(&a);
	return ROUTE_OK;
}

/* an address target of an alias: a local user (no further aliasing) or remote */
static int route_alias_addr(struct rwork *w, const char *alias, const char *domain,
                            const struct aliases_target *t)
{
	char *l, *d;
	const char *at = strrchr(t->value, '@');
	struct buf full;
	buf_init(&full);
	buf_printf(&full, "%s%s%s", t->value, at ? "" : "@", at ? "" : domain);
	int where = route_normalize(w->rc->cfg, full.p, &l, &d);
	buf_free(&full);
	int rc = ROUTE_OK;
	struct users_result ur;
	if (where == ROUTE_WTEMP) {
		rc = route_set(w->res, ROUTE_TEMP, "cannot tell whether %s is local", t->value);
	} else if (where == ROUTE_REMOTE) {
		rc = route_remote(w, l, d);
		if (rc == ROUTE_NOUSER) {
			log_warn("event=alias_target_dropped alias=%s reason=\"%s\"", alias, w->res->diag);
			rc = ROUTE_OK;
		}
	} else if (where == ROUTE_LOCAL) {
		int u = route_user(w, l, d, &ur);   /* ROUTE_ASKED: counted in w->asked */
		if (u == TABLE_TEMP)
			rc = route_set(w->res, ROUTE_TEMP, "alias %s: %s: %s", alias, t->value, ur.diag);
		else if (u == TABLE_NOTFOUND || u == ROUTE_USER_DISABLED)
			log_warn("event=alias_target_dropped alias=%s target=%s reason=\"%s\"", alias,
			         t->value, ur.diag);
	} else {
		log_warn("event=alias_target_dropped alias=%s reason=bad_address", alias);
	}
	free(l);
	free(d);
	return rc;
}

static int route_islocal_cb(const char *domain, void *arg)
{
	int w = route_islocal(arg, domain);
	return w == ROUTE_LOCAL ? TABLE_FOUND : w == ROUTE_WTEMP ? TABLE_TEMP : TABLE_NOTFOUND;
}

static int route_alias(struct rwork *w, const char *local, const char *domain,
                       const struct aliases_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct aliases_target *t = &l->v[i];
		int rc = t->kind == ALIASES_ADDR ? route_alias_addr(w, local, domain, t) :
		         route_alias_prog(w, local, domain, t);
		if (rc != ROUTE_OK)
			return rc;
	}
	if (w->res->n == 0)
		return route_set(w->res, ROUTE_NOUSER, "alias %s has no deliverable target", local);
	return route_set(w->res, ROUTE_OK, "alias %s: %zu target(s)", local, w->res->n);
}

/* ---------------------------------------------------------------- entry */

static int route_local(struct rwork *w, const char *local, const char *domain);

/* postmaster with no user or alias of that name: the `postmaster` key, an implicit alias
 * (a local part or an address; aliases apply to it, so `root: admin` works). Postmaster is
 * never "no such user": without a deliverable target it is a temporary failure, logged. */
static int route_postmaster(struct rwork *w, const char *domain)
{
	const char *pm = w->rc->cfg->postmaster ? w->rc->cfg->postmaster : "";
	char *l = NULL, *d = NULL;
	struct buf full;
	buf_init(&full);
	buf_printf(&full, "%s%s%s", pm, strchr(pm, '@') ? "" : "@", strchr(pm, '@') ? "" : domain);
	int where = *pm ? route_normalize(w->rc->cfg, full.p, &l, &d) : ROUTE_BAD;
	int rc = ROUTE_NOUSER;
	if (where == ROUTE_WTEMP)
		rc = route_set(w->res, ROUTE_TEMP, "cannot tell whether %s is local", d);
	else if (where == ROUTE_REMOTE && (rc = route_remote(w, l, d)) == ROUTE_OK)
		route_set(w->res, ROUTE_OK, "postmaster: remote %s", d);
	else if (where == ROUTE_LOCAL && str_casecmp(l, "postmaster") != 0)
		rc = route_local(w, l, d);
	if (rc == ROUTE_NOUSER) {
		log_warn("event=postmaster_undeliverable postmaster=%s reason=\"%s\"", full.p,
		         where == ROUTE_BAD ? "bad address" : w->res->diag);
		rc = route_set(w->res, ROUTE_TEMP, "postmaster has no deliverable target (postmaster "
		               "key %s); add a postmaster alias", full.p);
	}
	buf_free(&full);
	free(l);
	free(d);
	return rc;
}

static int route_local(struct rwork *w, const char *local, const char *domain)
{
	struct aliases_list l = { NULL, 0, 0 };
	char diag[200];
	char *lname = xstrdup(local);
	str_lower(lname);
	int rc = aliases_expand(w->rc->aliases, lname, route_islocal_cb, (void *)w->rc->cfg, &l,
	                        diag, sizeof diag);
	if (rc == TABLE_TEMP)
		rc = route_set(w->res, ROUTE_TEMP, "%s", diag);
	else if (rc == TABLE_FOUND)
		rc = route_alias(w, lname, domain, &l);
	else if ((rc = route_list(w, lname, domain)) != -1)
		;                        /* a mailing list (after aliases, DESIGN.md §4) */
	else {
		struct users_result ur;
		int u = route_user(w, lname, domain, &ur);
		rc = u == ROUTE_ASKED ? route_set(w->res, ROUTE_PENDING, "%s", ur.diag) :
		     u == TABLE_FOUND ? route_set(w->res, ROUTE_OK, "user %s", ur.user) :
		     u == TABLE_TEMP ? route_set(w->res, ROUTE_TEMP, "%s", ur.diag) :
		     u == ROUTE_USER_DISABLED ? route_set(w->res, ROUTE_DISABLED, "%s", ur.diag) :
		     strcmp(lname, "postmaster") == 0 ? route_postmaster(w, domain) :
		     route_set(w->res, ROUTE_NOUSER, "%s@%s: %s", lname, domain,
		               ur.diag[0] ? ur.diag : "no such user");
	}
	aliases_list_free(&l);
	free(lname);
	return rc;
}

static int route_by_transport(struct rwork *w, const char *local, const char *domain)
{
	char channel[ROUTE_CHANLEN], host[ROUTE_HOSTLEN], diag[256];
	int rc = route_transport(w->rc->cfg, local, domain, channel, sizeof channel, host,
	                         sizeof host, diag, sizeof diag);
	if (rc == -1)
		return -1;
	if (rc != ROUTE_OK)
		return route_set(w->res, rc, "%s", diag);
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", local, domain);
	route_add(w, channel, host, a.p, "", 0, 0, "", local, "", domain, "", "");
	buf_free(&a);
	return route_set(w->res, ROUTE_OK, "%s", diag);
}

int route_address(struct route_ctx *rc, const char *addr, struct route_result *res)
{
	char *local, *domain;
	memset(res, 0, sizeof *res);
	struct rwork w = { rc, res, table_map_new(), 0 };
	int where = route_normalize(rc->cfg, addr, &local, &domain);
	if (where == ROUTE_BAD)
		route_set(res, ROUTE_NOUSER, "bad address");
	else if (where == ROUTE_WTEMP)
		route_set(res, ROUTE_TEMP, "cannot tell whether %s is local", domain);
	else if (route_by_transport(&w, local, domain) != -1)
		;                        /* res says it */
	else if (where == ROUTE_REMOTE) {
		if (route_remote(&w, local, domain) == ROUTE_OK && res->n &&
		    strcmp(res->t[res->n - 1].channel, "local") != 0)
			route_set(res, ROUTE_OK, "remote %s via %s", domain, res->t[res->n - 1].host);
	} else {
		route_local(&w, local, domain);
	}
	if (w.asked && res->verdict != ROUTE_TEMP)    /* a temporary failure needs no answer */
		route_set(res, ROUTE_PENDING, "waiting for %d users answer(s)", w.asked);
	if (res->verdict != ROUTE_OK)
		route_drop_targets(res);
	table_map_free(w.seen, NULL);
	free(local);
	free(domain);
	return res->verdict;
}

/* ---------------------------------------------------------------- smtproutes */

enum { RT_NONE, RT_FOUND, RT_TEMP, RT_BAD };

/* a host name of n bytes -> lowercased, one trailing dot dropped; 0 / -1 */
static int route_hostname(const char *s, size_t n, char *out, size_t outlen)
{
	if (n && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= outlen || s[0] == '.')
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		         c == '-' || c == '_' || (c == '.' && s[i + 1] != '.');
		if (!ok)
			return -1;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	str_lower(out);
	return 0;
}

/* "[1.2.3.4]", "[IPv6:2001:db8::1]" or "[2001:db8::1]" (n bytes, brackets included) ->
 * "[canonical address]"; 0 / -1 */
static int route_literal(const char *s, size_t n, char *out, size_t outlen)
{
	char a[64], canon[INET6_ADDRSTRLEN];
	unsigned char bin[16];
	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return -1;
	s++;
	n -= 2;
	int v6 = n > 5 && str_ncasecmp(s, "ipv6:", 5) == 0;
	if (v6) {
		s += 5;
		n -= 5;
	}
	if (n >= sizeof a)
		return -1;
	memcpy(a, s, n);
	a[n] = '\0';
	int af = !v6 && inet_pton(AF_INET, a, bin) == 1 ? AF_INET :
	         inet_pton(AF_INET6, a, bin) == 1 ? AF_INET6 : -1;
	if (af < 0 || !inet_ntop(af, bin, canon, sizeof canon))
		return -1;
	int w = snprintf(out, outlen, "[%s]", canon);
	return w < 0 || (size_t)w >= outlen ? -1 : 0;
}

int route_relay(const char *relay, char *host, size_t hostlen)
{
	char name[ROUTE_HOSTLEN];
	unsigned char bin[4];
	const char *rest;
	uint64_t port = 25;
	host[0] = '\0';
	if (!*relay)
		return 0;
	if (relay[0] == '[') {
		const char *e = strchr(relay, ']');
		if (!e || route_literal(relay, (size_t)(e - relay) + 1, name, sizeof name) < 0)
			return -1;
		rest = e + 1;
	} else {
		size_t n = strcspn(relay, ":");
		if (route_hostname(relay, n, name, sizeof name - 2) < 0)
			return -1;
		if (inet_pton(AF_INET, name, bin) == 1) {       /* 192.0.2.1 -> [192.0.2.1] */
			size_t l = strlen(name);
			memmove(name + 1, name, l);
			name[0] = '[';
			name[l + 1] = ']';
			name[l + 2] = '\0';
		}
		rest = relay + n;
	}
	if (*rest && (*rest != ':' || str_to_u64(rest + 1, 1, 65535, &port) < 0))
		return -1;
	int w = snprintf(host, hostlen, "%s:%u", name, (unsigned)port);
	if (w < 0 || (size_t)w >= hostlen) {
		host[0] = '\0';
		return -1;
	}
	return 0;
}

/* key characters: printable, no blanks, no '@' (a domain, .suffix, [literal] or "") */
static int route_key(const char *s, size_t n, char *key, size_t keylen)
{
	if (n > 1 && s[n - 1] == '.')
		n--;
	if (n >= keylen)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '@')
			return -1;
	memcpy(key, s, n);
	key[n] = '\0';
	str_lower(key);
	return 0;
}

int route_smtproute_parse(const char *entry, char *key, size_t keylen, char *host,
                          size_t hostlen)
{
	const char *colon = NULL;
	key[0] = host[0] = '\0';
	if (entry[0] == '[') {
		const char *e = strchr(entry, ']');
		if (e && e[1] == ':')
			colon = e + 1;
	} else {
		colon = strchr(entry, ':');
	}
	if (!colon || route_key(entry, (size_t)(colon - entry), key, keylen) < 0) {
		key[0] = '\0';
		return -1;
	}
	return route_relay(colon + 1, host, hostlen) < 0 ? -2 : 0;
}

/* the entry for exactly cand: inline items first, then each table in order */
static int route_find(const struct cfg_list *l, const char *cand, char *host, size_t hostlen)
{
	char key[ROUTE_HOSTLEN];
	for (size_t i = 0; i < l->n; i++) {
		int rc = route_smtproute_parse(l->v[i], key, sizeof key, host, hostlen);
		if (rc != -1 && strcmp(key, cand) == 0)
			return rc == 0 ? RT_FOUND : RT_BAD;
	}
	for (size_t i = 0; i < l->ntables; i++) {
		char *val = NULL;
		int rc = table_lookup(l->tables[i], TABLE_COLON, cand, &val);
		if (rc == TABLE_TEMP)
			return RT_TEMP;
		if (rc == TABLE_FOUND) {
			rc = route_relay(val, host, hostlen);
			free(val);
			return rc == 0 ? RT_FOUND : RT_BAD;
		}
	}
	return RT_NONE;
}

/* the exact domain, its .parent suffixes (longest first; not for literals), the default */
static int route_find_best(const struct cfg_list *l, const char *domain, char *host,
                           size_t hostlen, const char **matched)
{
	int rc = route_find(l, domain, host, hostlen);
	*matched = domain;
	for (const char *p = domain; rc == RT_NONE && domain[0] != '[' && (p = strchr(p, '.'));
	     p++) {
		*matched = p;
		rc = route_find(l, p, host, hostlen);
	}
	if (rc == RT_NONE) {
		*matched = "";
		rc = route_find(l, "", host, hostlen);
	}
	return rc;
}

int route_smtp_host(const struct config *cfg, const char *domain, char *host, size_t hostlen,
                    char *diag, size_t diaglen)
{
	char def[ROUTE_HOSTLEN];
	size_t dl = strlen(domain);
	const char *matched;
	snprintf(diag, diaglen, "ok");
	if (domain[0] == '[') {
		if (domain[dl - 1] != ']' || route_relay(domain, def, sizeof def) < 0) {
			snprintf(diag, diaglen, "invalid address literal %s", domain);
			return ROUTE_NOUSER;
		}
	} else if (dl == 0 || dl >= sizeof def || strpbrk(domain, ":[]")) {
		snprintf(diag, diaglen, "invalid domain %s", domain);   /* ':' would mean a port */
		return ROUTE_NOUSER;
	} else {
		memcpy(def, domain, dl + 1);
	}
	const struct cfg_list *l = &cfg->smtproutes;
	int rc = l->n || l->ntables ? route_find_best(l, domain, host, hostlen, &matched) : RT_NONE;
	if (rc == RT_TEMP || rc == RT_BAD) {
		snprintf(diag, diaglen, rc == RT_TEMP ? "smtproutes table unreadable" :
		         "smtproutes entry for '%s' cannot be used", matched);
		return ROUTE_TEMP;
	}
	if (rc == RT_NONE || host[0] == '\0')
		snprintf(host, hostlen, "%s", def);
	return ROUTE_OK;
}

/* ---------------------------------------------------------------- transports */

int route_transport_value(const char *v, char *channel, size_t chlen, char *next,
                          size_t nextlen)
{
	size_t n = strcspn(v, ":");
	channel[0] = next[0] = '\0';
	if (n == 0 || n > 32 || n >= chlen)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return -1;
	}
	const char *rest = v[n] == ':' ? v + n + 1 : "";
	size_t rl = strlen(rest);
	if (rl >= nextlen || rl >= ROUTE_HOSTLEN)
		return -1;
	for (size_t i = 0; i < rl; i++)
		if ((unsigned char)rest[i] <= ' ' || rest[i] == 0x7f)
			return -1;           /* a host goes into logs and the queue's records */
	memcpy(channel, v, n);
	channel[n] = '\0';
	memcpy(next, rest, rl + 1);
	return 0;
}

/* the key of an inline entry (before its first ':', lowercased): 0, or -1 when it has none */
static int route_transport_key(const char *entry, char *key, size_t keylen)
{
	const char *colon = strchr(entry, ':');
	key[0] = '\0';
	if (!colon || colon == entry || (size_t)(colon - entry) >= keylen)
		return -1;
	memcpy(key, entry, (size_t)(colon - entry));
	key[colon - entry] = '\0';
	str_lower(key);
	return 0;
}

int route_transport_parse(const char *entry, char *key, size_t keylen, char *channel,
                          size_t chlen, char *next, size_t nextlen)
{
	if (route_transport_key(entry, key, keylen) < 0 ||
	    route_transport_value(strchr(entry, ':') + 1, channel, chlen, next, nextlen) < 0) {
		key[0] = '\0';
		return -1;
	}
	return 0;
}

/* the entry for exactly cand: inline items first, then each table in order */
static int route_transport_find(const struct cfg_list *l, const char *cand, char *channel,
                                size_t chlen, char *next, size_t nextlen)
{
	char key[ROUTE_HOSTLEN];
	for (size_t i = 0; i < l->n; i++)      /* an entry for cand that cannot be read is bad */
		if (route_transport_key(l->v[i], key, sizeof key) == 0 && strcmp(key, cand) == 0)
			return route_transport_value(strchr(l->v[i], ':') + 1, channel, chlen, next,
			                             nextlen) == 0 ? RT_FOUND : RT_BAD;
	for (size_t i = 0; i < l->ntables; i++) {
		char *val = NULL;
		int rc = table_lookup(l->tables[i], TABLE_COLON, cand, &val);
		if (rc == TABLE_TEMP)
			return RT_TEMP;
		if (rc == TABLE_FOUND) {
			rc = route_transport_value(val, channel, chlen, next, nextlen);
			free(val);
			return rc == 0 ? RT_FOUND : RT_BAD;
		}
	}
	return RT_NONE;
}

/* the nexthop of an entry made into the host of a target of row's transport */
static int route_transport_host(const struct channel_row *row, const char *next,
                                const char *domain, char *host, size_t hostlen)
{
	if (row->transport == CHANNEL_T_QMQP) {
		snprintf(host, hostlen, "qmqpservers");
		return 0;
	}
	if (!*next) {
		snprintf(host, hostlen, "%s", domain);
		return 0;
	}
	if (row->transport == CHANNEL_T_SMTP || row->transport == CHANNEL_T_CLUSTER)
		return route_relay(next, host, hostlen);   /* smtproutes' relay[:port] */
	snprintf(host, hostlen, "%s", next);          /* the transport reads its own form */
	return 0;
}

int route_transport(const struct config *cfg, const char *local, const char *domain,
                    char *channel, size_t chlen, char *host, size_t hostlen, char *diag,
                    size_t diaglen)
{
	const struct cfg_list *l = &cfg->transports;
	char next[ROUTE_HOSTLEN];
	if (!l->n && !l->ntables)
		return -1;
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", local, domain);
	str_lower(a.p);
	const char *matched = a.p;
	int rc = route_transport_find(l, a.p, channel, chlen, next, sizeof next);
	if (rc == RT_NONE) {
		matched = domain;
		rc = route_transport_find(l, domain, channel, chlen, next, sizeof next);
	}
	for (const char *p = domain; rc == RT_NONE && domain[0] != '[' && (p = strchr(p, '.')); p++) {
		matched = p;
		rc = route_transport_find(l, p, channel, chlen, next, sizeof next);
	}
	const struct channel_row *row = rc == RT_FOUND ? channel_find(&cfg->channels, channel) : NULL;
	if (rc == RT_NONE)
		rc = -1;
	else if (rc == RT_TEMP)
		rc = route_set_diag(diag, diaglen, "transports table unreadable");
	else if (rc == RT_BAD)
		rc = route_set_diag(diag, diaglen, "transports entry for '%s' cannot be used", matched);
	else if (!row)
		rc = route_set_diag(diag, diaglen, "transports entry for '%s' names channel %s, which "
		                    "is not configured", matched, channel);
	else if (row->transport == CHANNEL_T_LOCAL)
		rc = route_set_diag(diag, diaglen, "transports entry for '%s' names the local channel "
		                    "%s (local domains go in locals)", matched, channel);
	else if (route_transport_host(row, next, domain, host, hostlen) < 0)
		rc = route_set_diag(diag, diaglen, "transports entry for '%s' has a bad nexthop", matched);
	else {
		snprintf(diag, diaglen, "transports %s: %s via %s", matched, channel, host);
		rc = ROUTE_OK;
	}
	buf_free(&a);
	return rc;
}
