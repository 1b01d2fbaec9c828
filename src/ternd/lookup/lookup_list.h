/* lookup_list — mailing lists held in the directory: qmail-ldap's qmailGroup entries, read for
 * the list channel (M_LIST_GET, doc/LISTS.md "Directory groups").
 * Owns: the translation of a group entry (and the entries its dnmember / filtermember /
 * dnmoderator / dnsender / filtersender values name) into a struct mlist. */
#ifndef TERN_LOOKUP_LIST_H
#define TERN_LOOKUP_LIST_H
#include <stdint.h>
#include "mail/mlist.h"

struct ldapc;
#define LOOKUP_LIST_MAXREFS 100     /* dn and filter references of one group */

/* verdict: V_OK (l filled), V_NOUSER (no such group), V_TEMP; called exactly once */
typedef void (*lookup_list_reply)(void *arg, uint64_t verdict, const char *diag,
                                  const struct mlist *l);
/* Read the group whose mail or mailAlternateAddress is addr. */
void lookup_list_ldap(struct ldapc *ld, const char *addr, lookup_list_reply reply, void *arg);
/* One "attr\tvalue" of a group entry into l (pure: unit tests, fuzzing): 1 used, 0 ignored,
 * -1 malformed. refs: dn / filter values to resolve ("d" or "f" + kind letter + value) are
 * appended to *refs (at most LOOKUP_LIST_MAXREFS, else -1). */
int lookup_list_value(struct mlist *l, const char *av, char ***refs, size_t *nrefs);
#endif
