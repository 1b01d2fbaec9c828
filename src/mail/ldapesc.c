/* ldapesc — RFC 4515 filter value escaping and the qmail-ldap user and login filters (see
 * ldapesc.h).
 * Owns: the filter text. Trusts: nothing in the address. */
#include "mail/ldapesc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LDAPESC_MAXADDR 1024

/* a byte that may stand for itself in a filter value: printable ASCII but * ( ) \ */
static int ldapesc_plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '*' && c != '(' && c != ')' && c != '\\';
}

int ldapesc_value(const char *v, size_t n, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (!outsz)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		size_t need = ldapesc_plain(c) ? 1 : 3;
		if (o + need >= outsz) {
			out[0] = '\0';
			return -1;
		}
		if (need == 1) {
			out[o++] = (char)c;
			continue;
		}
		out[o++] = '\\';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	out[o] = '\0';
	return (int)o;
}

char *ldapesc_user_filter(const char *objectclass, const char *a, size_t n)
{
	if (!n || n > LDAPESC_MAXADDR)
		return NULL;
	char oc[3 * 128 + 1], addr[3 * LDAPESC_MAXADDR + 1], dom[3 * LDAPESC_MAXADDR + 2];
	if (ldapesc_value(objectclass, strlen(objectclass), oc, sizeof oc) < 0 ||
	    ldapesc_value(a, n, addr, sizeof addr) < 0)
		return NULL;
	const char *at = memchr(a, '@', n);
	dom[0] = '\0';
	if (at && !memchr(at + 1, '@', n - (size_t)(at + 1 - a)) && at + 1 < a + n) {
		dom[0] = '@';
		if (ldapesc_value(at + 1, n - (size_t)(at + 1 - a), dom + 1, sizeof dom - 1) < 0)
			return NULL;
	}
	size_t sz = strlen(oc) + 2 * strlen(addr) + strlen(dom) + 128;
	char *f = malloc(sz);
	if (!f)
		return NULL;
	if (dom[0])
		snprintf(f, sz, "(&(objectClass=%s)(|(mail=%s)(mailAlternateAddress=%s)"
		         "(mailAlternateAddress=%s)))", oc, addr, addr, dom);
	else
		snprintf(f, sz, "(&(objectClass=%s)(|(mail=%s)(mailAlternateAddress=%s)))",
		         oc, addr, addr);
	return f;
}

char *ldapesc_login_filter(const char *objectclass, const char *s, size_t n)
{
	if (!n || n > LDAPESC_MAXADDR || s[0] == '@')
		return NULL;
	char oc[3 * 128 + 1], v[3 * LDAPESC_MAXADDR + 1];
	if (ldapesc_value(objectclass, strlen(objectclass), oc, sizeof oc) < 0 ||
	    ldapesc_value(s, n, v, sizeof v) < 0)
		return NULL;
	size_t sz = strlen(oc) + 2 * strlen(v) + 96;
	char *f = malloc(sz);
	if (!f)
		return NULL;
	if (memchr(s, '@', n))
		snprintf(f, sz, "(&(objectClass=%s)(|(mail=%s)(mailAlternateAddress=%s)))", oc, v, v);
	else
		snprintf(f, sz, "(&(objectClass=%s)(uid=%s))", oc, v);
	return f;
}
