/* virtual — see virtual.h. Pure apart from the table files it reads (table_lookup).
 * Owns: nothing beyond its answers. Trusts: nothing in the entries; each is checked. */
#include "mail/virtual.h"
#include "mail/table.h"
#include "lib/buf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int virtual_domain_parse(const char *entry, char *key, size_t keylen, char *prepend,
                         size_t prependlen)
{
	const char *colon = strchr(entry, ':');
	key[0] = prepend[0] = '\0';
	if (!colon || (size_t)(colon - entry) >= keylen || strlen(colon + 1) >= prependlen)
		return -1;
	for (const char *p = entry; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || (p > colon && (*p == ':' || *p == '@')))
			return -1;
	memcpy(key, entry, (size_t)(colon - entry));
	key[colon - entry] = '\0';
	str_lower(key);
	snprintf(prepend, prependlen, "%s", colon + 1);
	return 0;
}

/* the entry for exactly key: inline items first, then each table in order; FOUND with
 * prepend (maybe "": an exception), NOTFOUND, TEMP. A malformed table value is no entry. */
static int virtual_domain_key(const struct cfg_list *l, const char *key, char *prepend,
                              size_t prependlen)
{
	char k[512];
	for (size_t i = 0; i < l->n; i++)
		if (virtual_domain_parse(l->v[i], k, sizeof k, prepend, prependlen) == 0 &&
		    strcmp(k, key) == 0)
			return TABLE_FOUND;
	for (size_t i = 0; i < l->ntables; i++) {
		char *val = NULL;
		int rc = table_lookup(l->tables[i], TABLE_COLON, key, &val);
		if (rc == TABLE_TEMP)
			return TABLE_TEMP;
		if (rc != TABLE_FOUND)
			continue;
		int ok = strlen(val) < prependlen && !strpbrk(val, ":@ \t");
		snprintf(prepend, prependlen, "%s", ok ? val : "");
		free(val);
		if (ok)
			return TABLE_FOUND;
	}
	return TABLE_NOTFOUND;
}

int virtual_domain_find(const struct cfg_list *l, const char *local, const char *domain,
                        char *prepend, size_t prependlen)
{
	if (!l->n && !l->ntables)
		return TABLE_NOTFOUND;
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", local, domain);
	str_lower(a.p);
	int rc = virtual_domain_key(l, a.p, prepend, prependlen);
	buf_free(&a);
	if (rc == TABLE_NOTFOUND && domain[0] != '[')
		rc = virtual_domain_key(l, domain, prepend, prependlen);
	for (const char *p = domain; rc == TABLE_NOTFOUND && domain[0] != '[' &&
	     (p = strchr(p + 1, '.')); )
		rc = virtual_domain_key(l, p, prepend, prependlen);
	if (rc == TABLE_NOTFOUND)
		rc = virtual_domain_key(l, "", prepend, prependlen);
	return rc == TABLE_FOUND && !prepend[0] ? TABLE_NOTFOUND : rc;
}

static int virtual_id(const char *s, size_t n, uint64_t *v)
{
	char b[24];
	if (n == 0 || n >= sizeof b)
		return -1;
	memcpy(b, s, n);
	b[n] = '\0';
	return str_to_u64(b, 0, 4294967294ull, v);
}

static int virtual_path_ok(const char *p, size_t n)
{
	if (n < 2 || n >= VIRTUAL_MAXPATH || p[0] != '/' || p[n - 1] != '/')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
		if (p[i] == '/' && i + 3 <= n && p[i + 1] == '.' && p[i + 2] == '.' &&
		    (i + 3 == n || p[i + 3] == '/'))
			return 0;
	}
	return 1;
}

int virtual_user_parse(const char *value, uint64_t *uid, uint64_t *gid, char *path,
                       size_t pathlen)
{
	const char *f[3];
	size_t fl[3], nf = 0;
	const char *p = value;
	int colon = value[0] != '/';
	path[0] = '\0';
	while (nf < 3) {
		while (!colon && (*p == ' ' || *p == '\t'))
			p++;
		size_t n = nf == 2 && colon ? strlen(p) : strcspn(p, colon ? ":" : " \t");
		f[nf] = p;
		fl[nf++] = n;
		p += n;
		if (nf < 3 && colon && *p++ != ':')
			return -1;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	const char *ps = colon ? f[2] : f[0];
	size_t pl = colon ? fl[2] : fl[0];
	if (*p || virtual_id(colon ? f[0] : f[1], colon ? fl[0] : fl[1], uid) < 0 ||
	    virtual_id(colon ? f[1] : f[2], colon ? fl[1] : fl[2], gid) < 0 ||
	    !virtual_path_ok(ps, pl) || pl >= pathlen)
		return -1;
	memcpy(path, ps, pl);
	path[pl] = '\0';
	return 0;
}

/* key in the virtualusers tables (TABLE_SPACE): TABLE_* with *value on FOUND */
static int virtual_user_key(const struct cfg_list *l, const char *key, char **value)
{
	for (size_t i = 0; i < l->ntables; i++) {
		int rc = table_lookup(l->tables[i], TABLE_SPACE, key, value);
		if (rc != TABLE_NOTFOUND)
			return rc;
	}
	return TABLE_NOTFOUND;
}

int virtual_user_find(const struct cfg_list *l, const char *local, const char *domain,
                      char **value)
{
	static const char *const fmt[] = { "%s@%s", "@%s", "%s" };
	*value = NULL;
	if (!l->ntables)
		return VIRTUAL_NONE;
	int rc = TABLE_NOTFOUND;
	for (size_t i = 0; i < 3 && rc == TABLE_NOTFOUND; i++) {
		struct buf k;
		buf_init(&k);
		if (i == 0)
			buf_printf(&k, fmt[0], local, domain);
		else
			buf_printf(&k, fmt[i], domain);
		rc = virtual_user_key(l, k.p, value);
		buf_free(&k);
		if (rc == TABLE_FOUND && i == 2) {
			free(*value);
			*value = NULL;
			return VIRTUAL_NOUSER;
		}
	}
	return rc == TABLE_FOUND ? VIRTUAL_USER : rc == TABLE_TEMP ? VIRTUAL_TEMP : VIRTUAL_NONE;
}

int virtual_applies(const struct config *cfg, const char *local, const char *domain)
{
	char *val = NULL, prepend[VIRTUAL_MAXPREPEND];
	int v = virtual_user_find(&cfg->virtualusers, local, domain, &val);
	free(val);
	if (v == VIRTUAL_TEMP)
		return TABLE_TEMP;
	if (v != VIRTUAL_NONE)
		return TABLE_FOUND;
	return virtual_domain_find(&cfg->virtualdomains, local, domain, prepend, sizeof prepend);
}
