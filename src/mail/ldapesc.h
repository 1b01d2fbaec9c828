/* ldapesc — LDAP search filters built from untrusted addresses: RFC 4515 value escaping and
 * the qmail-ldap user filter. Owns: the filter text. Trusts: nothing in the address — every
 * byte that could change a filter's meaning (* ( ) \ NUL, and every control or non-ASCII
 * byte) is written as \XX, so an address can only ever be compared as one value. */
#ifndef TERN_LDAPESC_H
#define TERN_LDAPESC_H
#include <stddef.h>

/* Escape the n bytes of v into out (size outsz, NUL-terminated). Returns the length written,
 * or -1 when out is too small (out is then ""). At most 3*n+1 bytes are needed. */
int ldapesc_value(const char *v, size_t n, char *out, size_t outsz);
/* The user filter of qmail-ldap for address a (n bytes):
 *   (&(objectClass=OC)(|(mail=A)(mailAlternateAddress=A)[(mailAlternateAddress=@DOMAIN)]))
 * the catch-all term only when a has exactly one '@' with a non-empty domain after it. OC is
 * ldapobjectclass (escaped too). Returns a malloc'd string, or NULL when a is empty or over
 * 1024 bytes. */
char *ldapesc_user_filter(const char *objectclass, const char *a, size_t n);
/* The login filter of qmail-ldap's auth_pop/auth_smtp for login name s (n bytes): with an
 * '@' the entry whose mail or mailAlternateAddress is s,
 *   (&(objectClass=OC)(|(mail=S)(mailAlternateAddress=S)))
 * else the entry whose uid is s, (&(objectClass=OC)(uid=S)); never the @domain catch-all.
 * NULL when s is empty, starts with '@' (a catch-all value) or is over 1024 bytes. */
char *ldapesc_login_filter(const char *objectclass, const char *s, size_t n);
#endif
