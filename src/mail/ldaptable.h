/* ldaptable — `ldap:PATH` table references: the profile file PATH (in the spirit of Postfix's
 * ldap_table(5)) and the search filter it makes for one key. The server, bind and TLS are
 * tern.conf's ldap* keys; a profile says only what to search for.
 * Owns: the profile format and the filter text. Trusts: nothing in the profile (every line is
 * checked, errors name file:line) nor in the key (RFC 4515-escaped, src/mail/ldapesc.c, so a
 * key can only ever be compared as one value).
 *
 * Profile: `name = value` lines, `#` comment lines, blank lines ignored. Names:
 *   query_filter      required; an RFC 4515 filter with balanced parentheses in which %s is
 *                     the key, %u its local part (the whole key when it has no '@'), %d its
 *                     domain, %% a '%'; any other % escape is an error. A key whose %u or %d
 *                     is empty is looked up without asking (not found), as in Postfix.
 *   search_base       default: "" = tern.conf's ldapbasedn
 *   result_attribute  optional: an entry counts only when it has a value of it; without it,
 *                     any entry found is a match
 *   scope             sub (default), one or base */
#ifndef TERN_LDAPTABLE_H
#define TERN_LDAPTABLE_H
#include <stddef.h>

struct cfg_errors;

enum ldaptable_scope { LDAPTABLE_BASE = 0, LDAPTABLE_ONE = 1, LDAPTABLE_SUB = 2 };

struct ldaptable {
	char *filter;      /* query_filter, as written (validated) */
	char *base;        /* search_base, "" = ldapbasedn */
	char *attr;        /* result_attribute, "" = none */
	int scope;         /* enum ldaptable_scope */
};

/* Parse a profile from memory into *t (strings malloc'd). Errors go to errs as "name:line:
 * msg" (may be NULL). 0, or -1 (t then holds nothing to free). */
int ldaptable_parse(const char *name, const char *text, size_t len, struct ldaptable *t,
                    struct cfg_errors *errs);
/* The same from the file path (at most 64 KiB). */
int ldaptable_load(const char *path, struct ldaptable *t, struct cfg_errors *errs);
void ldaptable_free(struct ldaptable *t);
/* Is tmpl a usable query_filter? 0, or -1 with a reason in why. */
int ldaptable_check_filter(const char *tmpl, char *why, size_t whysize);
/* The filter for key: a malloc'd string, or NULL when the key cannot match (empty, over 1024
 * bytes, or an empty %u / %d). */
char *ldaptable_filter(const struct ldaptable *t, const char *key);
#endif
