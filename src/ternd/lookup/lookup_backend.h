/* lookup_backend — the one interface through which the lookup role asks a users backend
 * (file, cdb, passwd, any:, and the directory: lookup_ldap.c) who a local part is: found / not found /
 * tempfail, answered through a completion callback, either at once (from inside ask(), as the
 * file/passwd backends do) or later from the event loop (an asynchronous backend). Callers
 * (lookup_session.c) never assume which.
 * Owns: the interface and the synchronous adapter over src/mail/users.c (the directory
 * backend is lookup_ldap.c's); in the test build
 * a fake asynchronous backend. Trusts: the backend to call done exactly once per ask. */
#ifndef TERN_LOOKUP_BACKEND_H
#define TERN_LOOKUP_BACKEND_H
#include "mail/users.h"

/* The answer: r->status is TABLE_FOUND / TABLE_NOTFOUND / TABLE_TEMP (r->diag says why for
 * the last two); local and domain are the key exactly as it was asked. r is only valid
 * during the call. */
typedef void (*lookup_backend_done)(void *arg, const char *local, const char *domain,
                                    const struct users_result *r);

struct lookup_backend {
	const char *name;
	/* Ask who local@domain is (domain: a local domain, normalised; the extension rule
	 * included, as users_lookup; the table backends ignore the domain, a directory does
	 * not). done(arg, local, domain, r) is called exactly once, possibly before ask
	 * returns. Never fails otherwise: a backend that cannot ask answers TABLE_TEMP. */
	void (*ask)(struct lookup_backend *be, const char *local, const char *domain,
	            lookup_backend_done done, void *arg);
	void *priv;
};

struct ldapc;
/* The lookup role's one directory client (src/ternd/lookup/ldapc.h), made at start by
 * lookup.c when `ldapserver` is set, else NULL: the `users ldap:` backend, the login checks
 * and the admin's questions share its connections. */
extern struct ldapc *lookup_ldap;

/* the synchronous adapter: users_lookup(u, ...) answered from inside ask() */
void lookup_backend_users(struct lookup_backend *be, struct users *u);
#ifdef TERN_TEST
/* Test fake over u: local parts starting with "slow" are answered delay_ms later from the
 * event loop with users_lookup's answer, those starting with "tempslow" later with
 * TABLE_TEMP; those starting with "tempnow" at once with TABLE_TEMP; every
 * other one at once with users_lookup's answer. */
void lookup_backend_fake(struct lookup_backend *be, struct users *u, long delay_ms);
#endif
#endif
