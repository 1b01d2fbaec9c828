/* lookup_tables — list membership for the lookup role's MAIL/RCPT checks (badmailfrom,
 * badrcptto, rcpthosts) with their `ldap:PATH` tables (mail/ldaptable.h) asked of the
 * directory through the one client lookup_ldap (ldapc_search), never blocking the role:
 * inline items and file:/cdb: tables answer at once; the searches of the ldap: tables go out
 * together and the answer comes when a match is found or all have answered. No cache (the
 * users backend's cache in lookup_ldap.c holds users_result, not table answers).
 * Owns: the profiles loaded at start, the questions in flight. Trusts: ldapc to answer each
 * search exactly once; nothing the directory says beyond found / not found / could not tell. */
#ifndef TERN_LOOKUP_TABLES_H
#define TERN_LOOKUP_TABLES_H
#include <stddef.h>

struct config;
struct cfg_list;
struct ldapc;

/* rc: TABLE_FOUND, TABLE_NOTFOUND or TABLE_TEMP (mail/table.h) */
typedef void (*lookup_tables_cb)(void *arg, int rc);

/* Load the profiles of cfg's ldap: tables (l: the directory client, NULL when none).
 * 0, or -1 (logged) when one cannot be read or used. */
int lookup_tables_init(const struct config *cfg, struct ldapc *l);
/* Is any item of items[0..n) in l? Each item is probed as table_list_lookup does (itself,
 * then a domain's `.suffix` forms). FOUND when any is found; else TEMP when a table could not
 * tell (a directory that is down, times out or answers garbage); else NOTFOUND. cb is called
 * exactly once, before this returns when l has no ldap: table. */
void lookup_tables_ask(const struct cfg_list *l, const char *const *items, size_t n,
                       lookup_tables_cb cb, void *arg);
#endif
