/* ldaptable — `ldap:PATH` profiles and their filters (see ldaptable.h).
 * Owns: the profile format, the filter text. Trusts: nothing in the profile or the key. */
#include "mail/ldaptable.h"
#include "mail/config.h"
#include "mail/ldapesc.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LDAPTABLE_MAXKEY    1024
#define LDAPTABLE_MAXFILE   65536
#define LDAPTABLE_MAXFILTER 4096

int ldaptable_check_filter(const char *f, char *why, size_t whysize)
{
	int depth = 0;
	size_t n = strlen(f);
	if (n == 0 || f[0] != '(' || f[n - 1] != ')') {
		snprintf(why, whysize, "query_filter must be one filter in parentheses");
		return -1;
	}
	if (n > LDAPTABLE_MAXFILTER) {
		snprintf(why, whysize, "query_filter longer than %d bytes", LDAPTABLE_MAXFILTER);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)f[i];
		if (c < 0x20 || c == 0x7f) {
			snprintf(why, whysize, "query_filter: control character at offset %zu", i);
			return -1;
		}
		if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (--depth < 0) {
				snprintf(why, whysize, "query_filter: unbalanced parentheses");
				return -1;
			}
			if (depth == 0 && i + 1 < n) {
				snprintf(why, whysize, "query_filter: text after the filter's last ')'");
				return -1;
			}
		}
		if (c != '%')
			continue;
		char e = f[i + 1];
		if (e != 's' && e != 'u' && e != 'd' && e != '%') {
			snprintf(why, whysize, "query_filter: unknown escape '%%%.1s' (only %%s %%u %%d %%%%)",
			         e ? &f[i + 1] : "");
			return -1;
		}
		i++;
	}
	if (depth != 0) {
		snprintf(why, whysize, "query_filter: unbalanced parentheses");
		return -1;
	}
	if (!strstr(f, "%s") && !strstr(f, "%u") && !strstr(f, "%d")) {
		snprintf(why, whysize, "query_filter: no %%s, %%u or %%d (every key would match alike)");
		return -1;
	}
	return 0;
}

/* a result_attribute: an attribute description (letters, digits, '-', ';', '.') */
static int ldaptable_attr_ok(const char *s)
{
	if (!*s || strlen(s) > 128)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == ';' || *s == '.'))
			return 0;
	return 1;
}

/* one `name = value` line (trimmed, not a comment) into t; 0 / -1 with why */
static int ldaptable_line(struct ldaptable *t, const char *s, size_t n, char *why, size_t wsz)
{
	const char *eq = memchr(s, '=', n);
	if (!eq) {
		snprintf(why, wsz, "expected name = value");
		return -1;
	}
	const char *k = s, *v = eq + 1;
	size_t kn = (size_t)(eq - s), vn = n - kn - 1;
	table_trim(&k, &kn);
	table_trim(&v, &vn);
	char *val = xmalloc(vn + 1);
	memcpy(val, v, vn);
	val[vn] = '\0';
	char **slot = NULL;
	int rc = 0;
	if (kn == 12 && memcmp(k, "query_filter", kn) == 0) {
		slot = &t->filter;
		rc = ldaptable_check_filter(val, why, wsz);
	} else if (kn == 11 && memcmp(k, "search_base", kn) == 0) {
		slot = &t->base;
	} else if (kn == 16 && memcmp(k, "result_attribute", kn) == 0) {
		slot = &t->attr;
		if (!ldaptable_attr_ok(val) && (rc = -1))
			snprintf(why, wsz, "result_attribute: not one attribute name");
	} else if (kn == 5 && memcmp(k, "scope", kn) == 0) {
		t->scope = strcmp(val, "sub") == 0 ? LDAPTABLE_SUB : strcmp(val, "one") == 0 ?
		           LDAPTABLE_ONE : strcmp(val, "base") == 0 ? LDAPTABLE_BASE : -1;
		if (t->scope < 0 && (rc = -1))
			snprintf(why, wsz, "scope: expected sub, one or base");
	} else {
		snprintf(why, wsz, "unknown name '%.*s' (query_filter, search_base, "
		         "result_attribute, scope; the server, bind and TLS are tern.conf's ldap* keys)",
		         (int)(kn > 40 ? 40 : kn), k);
		rc = -1;
	}
	if (rc == 0 && slot && *slot) {
		snprintf(why, wsz, "'%.*s' set twice", (int)kn, k);
		rc = -1;
	}
	if (rc == 0 && slot)
		*slot = val;
	else
		free(val);
	return rc;
}

int ldaptable_parse(const char *name, const char *text, size_t len, struct ldaptable *t,
                    struct cfg_errors *errs)
{
	struct table_lines it;
	const char *s;
	size_t n;
	char why[200];
	int bad = 0;
	memset(t, 0, sizeof *t);
	t->scope = LDAPTABLE_SUB;
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		if (memchr(s, '\0', n)) {
			table_error(errs, name, it.line, "NUL byte in line");
			bad++;
			continue;
		}
		table_trim(&s, &n);
		if (n == 0 || *s == '#')
			continue;
		if (ldaptable_line(t, s, n, why, sizeof why) < 0) {
			table_error(errs, name, it.line, "%s", why);
			bad++;
			if (t->scope < 0)
				t->scope = LDAPTABLE_SUB;
		}
	}
	if (!bad && !t->filter) {
		table_error(errs, name, it.line, "query_filter missing");
		bad++;
	}
	if (bad) {
		ldaptable_free(t);
		return -1;
	}
	if (!t->base)
		t->base = xstrdup("");
	if (!t->attr)
		t->attr = xstrdup("");
	return 0;
}

int ldaptable_load(const char *path, struct ldaptable *t, struct cfg_errors *errs)
{
	char *text;
	size_t len;
	memset(t, 0, sizeof *t);
	if (table_read_file(path, LDAPTABLE_MAXFILE, &text, &len) < 0) {
		table_error(errs, path, 0, "cannot read LDAP profile: %s", strerror(errno));
		return -1;
	}
	int rc = ldaptable_parse(path, text, len, t, errs);
	free(text);
	return rc;
}

void ldaptable_free(struct ldaptable *t)
{
	free(t->filter);
	free(t->base);
	free(t->attr);
	memset(t, 0, sizeof *t);
}

/* append the escaped n bytes of v to b */
static void ldaptable_put(struct buf *b, const char *v, size_t n)
{
	char out[3 * LDAPTABLE_MAXKEY + 1];
	ldapesc_value(v, n, out, sizeof out);     /* n <= LDAPTABLE_MAXKEY: always fits */
	buf_adds(b, out);
}

char *ldaptable_filter(const struct ldaptable *t, const char *key)
{
	size_t n = strlen(key);
	if (!n || n > LDAPTABLE_MAXKEY || !t->filter)
		return NULL;
	const char *at = strrchr(key, '@');
	const char *dom = at ? at + 1 : "";
	size_t un = at ? (size_t)(at - key) : n, dn = strlen(dom);
	struct buf b;
	buf_init(&b);
	for (const char *p = t->filter; *p; p++) {
		if (*p != '%') {
			buf_addc(&b, *p);
			continue;
		}
		p++;
		if ((*p == 'u' && !un) || (*p == 'd' && !dn)) {
			buf_free(&b);
			return NULL;
		}
		if (*p == 's')
			ldaptable_put(&b, key, n);
		else if (*p == 'u')
			ldaptable_put(&b, key, un);
		else if (*p == 'd')
			ldaptable_put(&b, dom, dn);
		else
			buf_addc(&b, '%');
	}
	return buf_detach(&b);
}
