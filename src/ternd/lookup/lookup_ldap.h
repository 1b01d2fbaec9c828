/* lookup_ldap — the `users ldap:` backend of the lookup role: a directory (qmailUser) user
 * found through the asynchronous client ldapc.h, answered through the one backend interface
 * of lookup_backend.h, with a cache.
 * Order (qmail-ldap's): the whole address, then for an extension address the address with
 * the extension removed at each '-' from the right (joe-foo-bar, joe-foo, joe), then the
 * @domain catch-all: an exact entry beats an extension match beats the catch-all. One search
 * asks for the address and the catch-all together (ldapc's filter); each extension step is
 * one more search, only for addresses with '-' whose whole form is no entry. With
 * `ldaplocaldelivery yes` an address the directory does not know is asked of passwd: next.
 * Cache: found and not-found answers kept `ldapcachettl` seconds (at most `ldapcachesize`,
 * the oldest dropped first), temporary failures never; questions for an address whose
 * search is out join it (one search, several answers).
 * Owns: the cache, the questions in flight, the mapping of an entry to users_result and its
 * delivery profile (mail/ldapprof.h). Trusts: nothing in an entry — a value it cannot use
 * (no uid, uid 0 or a role account's, an unknown accountStatus, qmailDotMode or
 * deliveryMode word, a relative store without ldapmessagestore, a profile too long) is
 * TABLE_TEMP with the reason logged, never a delivery as someone else. */
#ifndef TERN_LOOKUP_LDAP_H
#define TERN_LOOKUP_LDAP_H
#include "ternd/lookup/lookup_backend.h"

struct config;
struct ldapc;
struct ldapc_user;

/* Make be the directory backend over l (the lookup role's client), configured from cfg
 * (ldaplocaldelivery, ldapcache*, ldapdefault*, minuid, the role accounts). */
void lookup_backend_ldap(struct lookup_backend *be, struct ldapc *l, const struct config *cfg);
/* Frees the cache (no question may be in flight: ldapc_free answers them first). */
void lookup_backend_ldap_free(struct lookup_backend *be);
/* accountStatus (any case; "" = active, nopop = noaccess) -> enum users_account; -1 for a
 * word qmail-ldap does not define. Routing and logins both use it. */
int lookup_ldap_account(const char *status);
/* Map entry u found for local@domain into r (status TABLE_FOUND, or TABLE_TEMP with r->diag
 * set and the reason logged). ext: the removed extension ("" when none). */
int lookup_ldap_map(const struct config *cfg, const struct ldapc_user *u, const char *local,
                    const char *ext, struct users_result *r);
/* ternctl ldaplookup: the entry routing's walk (above: the whole address, the extension
 * removed at each '-', the @domain catch-all) ends on for addr (local@domain), without the
 * cache or the mapping. cb gets TABLE_FOUND with the entry and the step that found it
 * ("address", "extension foo removed", "catch-all @domain"), TABLE_NOTFOUND or TABLE_TEMP
 * (u NULL, step ""), exactly once, possibly before this returns. */
typedef void (*lookup_ldap_walk_cb)(void *arg, int status, const struct ldapc_user *u,
                                    const char *step);
void lookup_ldap_explain(struct ldapc *l, const char *addr, lookup_ldap_walk_cb cb, void *arg);
#endif
