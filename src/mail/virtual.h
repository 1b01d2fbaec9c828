/* virtual — the two virtual-domain tables: qmail's `virtualdomains` (an address in a virtual
 * domain becomes local part `prepend-localpart`, handled by that user's .qmail files) and
 * Postfix-style `virtualusers` (an address owns a Maildir and the uid:gid that writes it).
 * Owns: the lookup order of both tables and the virtualusers value format. Route.c turns the
 * answers into targets; the parent checks a virtual user's uid:gid against the same table.
 * Trusts: nothing in the tables' text; an unreadable table answers TABLE_TEMP. */
#ifndef TERN_VIRTUAL_H
#define TERN_VIRTUAL_H
#include <stddef.h>
#include <stdint.h>
#include "mail/config.h"

#define VIRTUAL_MAXPREPEND 128
#define VIRTUAL_MAXPATH    1024

/* One inline virtualdomains entry `key:prepend` -> key (lowercased: `user@domain`, `domain`,
 * `.suffix` or "" for all) and prepend ("" = an exception: not virtual). 0 / -1 malformed. */
int virtual_domain_parse(const char *entry, char *key, size_t keylen, char *prepend,
                         size_t prependlen);
/* The virtualdomains entry for local@domain (normalised, domain lowercased), qmail-send's
 * order: the whole address, the domain, each `.suffix` (longest first), then "". TABLE_FOUND
 * with prepend set (never empty), TABLE_NOTFOUND (no entry, or an exception `key:`),
 * TABLE_TEMP (a table cannot be read). */
int virtual_domain_find(const struct cfg_list *l, const char *local, const char *domain,
                        char *prepend, size_t prependlen);

/* One virtualusers value: `/path/Maildir/ UID GID` or `UID:GID:/path/Maildir/`. The path is
 * absolute, ends in '/' (a Maildir), has no "/../" nor control characters. 0 / -1. */
int virtual_user_parse(const char *value, uint64_t *uid, uint64_t *gid, char *path,
                       size_t pathlen);
enum virtual_user_rc { VIRTUAL_NONE = 0,   /* the domain is not in the table */
	VIRTUAL_USER,                          /* *value: the address's (or @domain's) entry */
	VIRTUAL_NOUSER,                        /* the domain is listed, the address is not */
	VIRTUAL_TEMP };                        /* a table cannot be read */
/* The virtualusers entry of local@domain: `local@domain`, else the catch-all `@domain`; a
 * domain is listed by either of those or a bare `domain` line. *value malloc'd on
 * VIRTUAL_USER (free it). */
int virtual_user_find(const struct cfg_list *l, const char *local, const char *domain,
                      char **value);
/* Does either table take local@domain (a domain not in locals)? TABLE_FOUND / NOTFOUND /
 * TEMP. The RCPT check routes such a recipient instead of accepting it blindly. */
int virtual_applies(const struct config *cfg, const char *local, const char *domain);
#endif
