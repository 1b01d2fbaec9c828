/* parent_fork — which (uid, gid) the parent gives a delivery child that the mda asks for.
 * Owns: that decision (parent_fork_check, pure and table-tested) and the facts it rests on,
 * gathered as root: the role accounts, the privileged groups, the defaultprivs account,
 * minuid (users passwd: only: a file: table is the administrator's own list), and
 * the users table (read with the lookup role's own parser, src/mail/users.c), and for a
 * virtual mailbox (the request names an address) the virtualusers table (src/mail/virtual.c).
 * Trusts: nothing in the mda's request — a compromised mda may ask for any pair; the users
 * table, the passwd and the group databases. */
#include "ternd/parent/parent_fork.h"
#include "mail/table.h"
#include "mail/virtual.h"
#include "lib/log.h"
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARENT_FORK_IDMAX 4294967294u     /* (uid_t)-1 means "unchanged" to setuid */

/* groups that give more than a mailbox: never a delivery child's */
static const char *const parent_fork_bad_groups[] = {
	"root", "adm", "disk", "kmem", "mem", "shadow", "sudo", "wheel", "staff", "docker", "lxd",
	"systemd-journal", "tty", "mail",
};

static int parent_fork_in(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

static int parent_fork_is(const struct parent_fork_id *a, uint64_t uid, uint64_t gid)
{
	return a->uid == uid && a->gid == gid;
}

const char *parent_fork_check(const struct parent_fork_facts *f, uint64_t uid, uint64_t gid,
                              enum parent_fork_table table)
{
	if (uid == 0 || gid == 0)
		return "never deliver as root or group 0";
	if (uid > PARENT_FORK_IDMAX || gid > PARENT_FORK_IDMAX)
		return "uid or gid out of range";
	if (f->dev && parent_fork_is(&f->devacct, uid, gid))
		return NULL;
	if (parent_fork_in(f->role_uids, f->nrole, uid))
		return "the uid of a role account";
	if (parent_fork_in(f->bad_gids, f->nbad, gid))
		return "a privileged group";
	if (f->have_dflt && parent_fork_is(&f->dflt, uid, gid))
		return NULL;
	if (table == PARENT_FORK_IN_TABLE && !f->dev && f->passwd && uid < f->minuid)
		return "a system account (uid below minuid) found through passwd";
	if (table == PARENT_FORK_IN_TABLE && !f->dev)
		return NULL;
	if (f->directory && uid < f->minuid)
		return "below minuid (a directory user's qmailUID must not be a system account)";
	if (f->directory && gid < f->minuid && gid != f->ldapgid)
		return "gid below minuid and not ldapgid (a directory user's qmailGID must not be a "
		       "system group)";
	if (f->directory)
		return NULL;
	if (table == PARENT_FORK_TABLE_TEMP)
		return "users table unreadable";
	return "not the users table's uid and gid for this user, nor defaultprivs";
}

const char *parent_fork_prog_check(const struct parent_fork_facts *f, uint64_t uid, uint64_t gid)
{
	struct parent_fork_facts g = *f;   /* the account is the parent's own choice: as if */
	g.dev = g.passwd = g.directory = 0;   /* the administrator's users table named it */
	return parent_fork_check(&g, uid, gid, PARENT_FORK_IN_TABLE);
}

size_t parent_fork_role_accounts(const struct config *c, const char **out, size_t max)
{
	const char *names[] = { c->user, c->queueuser, c->smtpuser, c->mtauser };
	size_t n = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0] && n < max; i++)
		if (names[i] && *names[i])
			out[n++] = names[i];
	return n;
}

static void parent_fork_add(uint64_t *v, size_t *n, uint64_t x)
{
	if (*n < PARENT_FORK_MAXIDS && !parent_fork_in(v, *n, x))
		v[(*n)++] = x;
}

void parent_fork_facts_init(struct parent_fork_facts *f, const struct config *c)
{
	memset(f, 0, sizeof *f);
	const char *roles[8];
	size_t nr = parent_fork_role_accounts(c, roles, 8);
	parent_fork_add(f->bad_gids, &f->nbad, 0);
	for (size_t i = 0; i < nr; i++) {
		struct passwd *pw = getpwnam(roles[i]);
		if (!pw)
			continue;
		parent_fork_add(f->role_uids, &f->nrole, pw->pw_uid);
		parent_fork_add(f->bad_gids, &f->nbad, pw->pw_gid);
		if (i == 0) {
			f->devacct.uid = pw->pw_uid;
			f->devacct.gid = pw->pw_gid;
		}
	}
	for (size_t i = 0; i < sizeof parent_fork_bad_groups / sizeof parent_fork_bad_groups[0]; i++) {
		struct group *gr = getgrnam(parent_fork_bad_groups[i]);
		if (gr)
			parent_fork_add(f->bad_gids, &f->nbad, gr->gr_gid);
	}
	struct group *cg = c->controlgroup && *c->controlgroup ? getgrnam(c->controlgroup) : NULL;
	if (cg)
		parent_fork_add(f->bad_gids, &f->nbad, cg->gr_gid);
	struct passwd *dp = c->defaultprivs && *c->defaultprivs ? getpwnam(c->defaultprivs) : NULL;
	if (dp && dp->pw_uid != 0) {
		f->have_dflt = 1;
		f->dflt.uid = dp->pw_uid;
		f->dflt.gid = dp->pw_gid;
	}
	f->dev = c->users && strncmp(c->users, "any:", 4) == 0;
	f->passwd = c->users && strcmp(c->users, "passwd:") == 0;
	f->directory = c->users && strcmp(c->users, "ldap:") == 0;
	f->minuid = c->minuid;
	f->ldapgid = c->ldapgid;
}

enum parent_fork_table parent_fork_table(struct users *u, const char *user, uint64_t uid,
                                         uint64_t gid)
{
	struct users_result r;
	if (!u || !user)
		return PARENT_FORK_NOT_IN_TABLE;
	int rc = users_lookup(u, user, &r);
	if (rc == TABLE_TEMP)
		return PARENT_FORK_TABLE_TEMP;
	return rc == TABLE_FOUND && r.uid == uid && r.gid == gid ? PARENT_FORK_IN_TABLE :
	       PARENT_FORK_NOT_IN_TABLE;
}

static struct parent_fork_facts parent_fork_facts;
static struct users *parent_fork_users;
static const struct config *parent_fork_cfg;

/* a virtual mailbox's request: is (uid, gid) the virtualusers pair of the address user, from
 * minuid up? */
static enum parent_fork_table parent_fork_virtual(const char *user, uint64_t uid, uint64_t gid)
{
	const char *at = strrchr(user, '@');
	char *local = strndup(user, (size_t)(at - user)), *val = NULL, path[VIRTUAL_MAXPATH];
	uint64_t vu, vg;
	int rc = local ? virtual_user_find(&parent_fork_cfg->virtualusers, local, at + 1, &val) :
	         VIRTUAL_TEMP;
	free(local);
	int ok = rc == VIRTUAL_USER && virtual_user_parse(val, &vu, &vg, path, sizeof path) == 0 &&
	         vu == uid && vg == gid && uid >= parent_fork_cfg->minuid;
	free(val);
	return ok ? PARENT_FORK_IN_TABLE : rc == VIRTUAL_TEMP ? PARENT_FORK_TABLE_TEMP :
	       PARENT_FORK_NOT_IN_TABLE;
}

void parent_fork_init(const struct config *c)
{
	parent_fork_facts_init(&parent_fork_facts, c);
	parent_fork_cfg = c;
	if (parent_fork_facts.dev || !c->users)
		return;
	struct cfg_errors errs = { .n = 0 };
	parent_fork_users = users_open(c->users, &errs);    /* errors: logged by users.c */
}

const char *parent_fork_prog_account(const char *user, uint64_t *uid, uint64_t *gid,
                                     char *home, size_t homelen)
{
	struct passwd *pw = user && *user ? getpwnam(user) : NULL;
	if (!pw)
		return "no such account";
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	snprintf(home, homelen, "%s", pw->pw_dir && *pw->pw_dir == '/' ? pw->pw_dir : "/");
	return parent_fork_prog_check(&parent_fork_facts, *uid, *gid);
}

const char *parent_fork_allowed(uint64_t uid, uint64_t gid, const char *user)
{
	struct cfg_errors errs = { .n = 0 };
	users_refresh(parent_fork_users, &errs);
	enum parent_fork_table t = user && strchr(user, '@') && parent_fork_cfg ?
	                           parent_fork_virtual(user, uid, gid) :
	                           parent_fork_table(parent_fork_users, user, uid, gid);
	return parent_fork_check(&parent_fork_facts, uid, gid, t);
}
