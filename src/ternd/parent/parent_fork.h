/* parent_fork — may the parent fork a delivery child with this (uid, gid)? (parent_fork.c) */
#ifndef TERN_PARENT_FORK_H
#define TERN_PARENT_FORK_H
#include <stddef.h>
#include <stdint.h>
#include "mail/config.h"
#include "mail/users.h"

#define PARENT_FORK_MAXIDS 32

struct parent_fork_id { uint64_t uid, gid; };

/* what the parent knows, as root, about the accounts (gathered at start) */
struct parent_fork_facts {
	int dev;                          /* users any:DIR: deliveries run as devacct */
	struct parent_fork_id devacct;    /* the account the roles run as (`user`) */
	int have_dflt;
	struct parent_fork_id dflt;       /* the defaultprivs account */
	uint64_t role_uids[PARENT_FORK_MAXIDS];
	size_t nrole;
	uint64_t bad_gids[PARENT_FORK_MAXIDS];   /* privileged groups: never granted */
	size_t nbad;
	int passwd;                       /* users passwd:: the table's pairs need uid >= minuid */
	int directory;                    /* users ldap:: the parent cannot ask the directory;
	                                     any uid >= minuid (not root, no role, no privileged
	                                     group) may be a directory user's qmailUID, any gid
	                                     >= minuid or ldapgid its qmailGID */
	uint64_t minuid;
	uint64_t ldapgid;                 /* users ldap:: the one gid below minuid allowed */
};

/* does the users table give exactly this (uid, gid) to the user named in the request? */
enum parent_fork_table { PARENT_FORK_NOT_IN_TABLE = 0, PARENT_FORK_IN_TABLE, PARENT_FORK_TABLE_TEMP };

/* The decision, a pure function: NULL if a delivery child may run as (uid, gid), else the
 * reason it may not. Never uid 0 or gid 0, a role account's uid or a privileged group;
 * allowed: the users table's pair (with users passwd: only from minuid up), the defaultprivs
 * account, in development (users any:) the roles' own account. */
const char *parent_fork_check(const struct parent_fork_facts *f, uint64_t uid, uint64_t gid,
                              enum parent_fork_table table);
/* The same rules for a prog channel's account (doc/PROG.md), which the parent took from its
 * own channel row: never uid 0 or gid 0, a role account's uid or a privileged group, in
 * development too. NULL = allowed. */
const char *parent_fork_prog_check(const struct parent_fork_facts *f, uint64_t uid, uint64_t gid);
/* The accounts ternd's roles run as (add new role accounts here); returns how many, at most
 * max, into out. */
size_t parent_fork_role_accounts(const struct config *c, const char **out, size_t max);
/* Gather the facts from the passwd and group databases (as root, at start). */
void parent_fork_facts_init(struct parent_fork_facts *f, const struct config *c);
/* Look `user` up in the users table u: is (uid, gid) its pair? */
enum parent_fork_table parent_fork_table(struct users *u, const char *user, uint64_t uid,
                                         uint64_t gid);

/* The parent's use of the above: parent_fork_init once at start (opens the users table),
 * then parent_fork_allowed for each request (NULL = allowed, else why not). */
void parent_fork_init(const struct config *c);
const char *parent_fork_allowed(uint64_t uid, uint64_t gid, const char *user);
/* the account of a prog row's user= (looked up now): NULL with its uid, gid and home, or
 * why it may not run the program */
const char *parent_fork_prog_account(const char *user, uint64_t *uid, uint64_t *gid,
                                     char *home, size_t homelen);
#endif
