/* users — the users table: who a local part is, and where and as whom mail for it goes.
 * Backends (the `users` key): `file:PATH` (lines `localpart:uid:gid:home[:pwhash[:quota]]`),
 * `passwd:` (the system's accounts through getpwnam_r), `any:DIR` (development: every valid
 * local part is a user with home DIR/<localpart> and the uid/gid of the running process),
 * `ldap:` (directory users: answered by the lookup role's own backend,
 * src/ternd/lookup/lookup_ldap.c; this table's users_lookup only answers TABLE_TEMP
 * "directory users are asked through the lookup role").
 * Owns: the users file format and qmail's extension rule (`joe-foo` is user joe with
 * extension foo when joe-foo itself is not a user; the longest prefix at a `-` wins).
 * Trusts: nothing in the file or the passwd database; uid 0 is never a delivery target; a
 * backend error is TABLE_TEMP, never "no such user". */
#ifndef TERN_USERS_H
#define TERN_USERS_H
#include <stddef.h>
#include <stdint.h>
#include "mail/config.h"

#define USERS_MAXLOCAL 256
#define USERS_MAXEXT   16   /* extensions: at most this many '-' split points are tried */
#define USERS_MAXHOME  1024

#define USERS_MAXHASH 256
#define USERS_MAXPROFILE 8192
/* a directory user's accountStatus (qmail-ldap); every other backend answers USERS_ACTIVE */
enum users_account { USERS_ACTIVE = 0, USERS_NOACCESS, USERS_DISABLED, USERS_DELETED };

struct users_result {
	int status;                      /* TABLE_FOUND / TABLE_NOTFOUND / TABLE_TEMP */
	char user[USERS_MAXLOCAL];       /* the account: "joe" for joe-foo */
	uint64_t uid, gid;
	char home[USERS_MAXHOME];
	char local[USERS_MAXLOCAL];      /* the whole local part asked for, lowercased */
	char dash[2];                    /* "-" when an extension was split off, else "" */
	char ext[USERS_MAXLOCAL];        /* the extension ("foo"), or "" */
	char diag[128];                  /* why not found / tempfail, for the log */
	char pwhash[USERS_MAXHASH];      /* file: the optional 5th field ("{SSHA}…"), else "" */
	uint64_t quotasize, quotacount;  /* file: the optional 6th field (Maildir++ quota), else 0 */
	/* directory (LDAP) users only; "" / 0 from the other backends */
	int account;                     /* enum users_account */
	char mailhost[256];              /* mailHost: the cluster node that holds the mailbox */
	int group;                       /* a qmailGroup entry: a mailing list (doc/LISTS.md) */
	char listaddr[256];              /* a group: its mail address, lowercased */
	char listowner[256];             /* a group: its bounceAdmin, "" = postmaster */
	char profile[USERS_MAXPROFILE];  /* the delivery profile, encoded (mail/ldapprof.h); last:
	                                    the directory cache keeps a copy cut after its NUL */
};

struct users;
/* spec: the value of the `users` key. NULL only if spec is malformed (errs says why); a file
 * that cannot be read gives a table whose every lookup answers TABLE_TEMP. */
struct users *users_open(const char *spec, struct cfg_errors *errs);
/* A file-kind table parsed from memory (unit tests, fuzzer); never NULL. */
struct users *users_from_text(const char *name, const char *text, size_t len,
                              struct cfg_errors *errs);
/* Re-read a file table if the file changed (checked at most once a second). Returns 1 if
 * it was reloaded, else 0. */
int users_refresh(struct users *u, struct cfg_errors *errs);
/* Look up a local part (case-insensitive), applying the extension rule. Returns r->status. */
int users_lookup(struct users *u, const char *local, struct users_result *r);
/* Is this a local part we are willing to deliver to (no '/', no leading '.', printable,
 * at most 64 octets)? */
int users_valid_local(const char *local);
/* Extension splitting, qmail's rule (the users table and the directory, lookup_ldap.c): the
 * length of the next shorter local part, cut at the last '-' of local[0..cut), or 0 when
 * there is none (no '-', or only a leading one). Callers try at most USERS_MAXEXT cuts. */
size_t users_ext_next(const char *local, size_t cut);
void users_free(struct users *u);
/* passwd: tables only: an account with a uid below minuid (the `minuid` key) is no mail user:
 * TABLE_NOTFOUND, as for an unknown name, so that RCPT refuses it (0, the default: any uid) */
void users_set_minuid(struct users *u, uint64_t minuid);
#endif
