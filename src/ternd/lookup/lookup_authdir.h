/* lookup_authdir — SMTP AUTH and POP3 logins of directory users (users ldap:): the
 * asynchronous lookup_auth_ask (lookup_auth.h) over the lookup role's directory client
 * (ldapc.h, lookup_backend.h's lookup_ldap), by userPassword or, with `ldaprebind yes`, by a
 * bind as the user on a client of its own.
 * Owns: the questions in flight and the bind client. Trusts: what ldapc.c checked of the
 * directory's answers; lookup_pop.c and the parent check the uid and paths again. */
#ifndef TERN_LOOKUP_AUTHDIR_H
#define TERN_LOOKUP_AUTHDIR_H
#include "ternd/lookup/lookup_auth.h"
#include "mail/config.h"

/* With users ldap:, install the directory's asker (lookup_auth_set_directory); lookup_ldap
 * must be open. 0, or -1 (logged) when it cannot be used. Nothing to do for other tables. */
int lookup_authdir_init(const struct config *cfg);
/* `ternctl ldaplookup -p` (lookup_explain.c): password against the entry dn whose
 * userPassword is pwhash, as a login checks it — every digest format, or with `ldaprebind
 * yes` (and users ldap:) a bind as dn — but never the throttle's counters nor
 * pop-before-smtp. done(arg, result) exactly once, at once or later, result an enum
 * explain_pw (proto.h). The caller keeps password until done is called; this keeps no copy
 * past it (a bind's copy is wiped). */
typedef void (*lookup_authdir_pw_done)(void *arg, int result);
void lookup_authdir_password(const char *dn, const char *pwhash, const char *password,
                             lookup_authdir_pw_done done, void *arg);
/* accountStatus -> enum users_account for a login (lookup_ldap_account; a word it does not
 * know refuses the login, logged) */
int lookup_authdir_account(const char *status);
#endif
