/* tlspolicy — see tlspolicy.h. Both tables become in-memory maps (key -> parsed entry) at
 * load; a lookup is a few map probes.
 * Owns: the parsed entries. Trusts: nothing in the tables (every line checked). */
#include "mail/tlspolicy.h"
#include "mail/table.h"
#include "lib/buf.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TLSP_MAXFILE (4u * 1024 * 1024)

struct tlsp_auth { char *buf; const char *user, *pass; };

struct tlspolicy_tables {
	int level;                     /* smtptls */
	struct table_map *pol;         /* key -> struct tlspolicy */
	struct table_map *auth;        /* key -> struct tlsp_auth */
};

static const char *const tlsp_levels[] = { "none", "may", "encrypt", "verify" };

int tlspolicy_level(const char *w)
{
	for (int i = 0; i < 4; i++)
		if (str_casecmp(w, tlsp_levels[i]) == 0)
			return i;
	return -1;
}

const char *tlspolicy_level_name(int level)
{
	return level >= 0 && level < 4 ? tlsp_levels[level] : "?";
}

static int tlsp_blank(char c) { return c == ' ' || c == '\t'; }

/* a host name for match=: letters, digits, '-', '.', '*' (a wildcard label), not empty */
static int tlsp_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '*'))
			return 0;
	return 1;
}

static int tlsp_word(const char **s, char *out, size_t outsz)
{
	size_t n = 0;
	while (tlsp_blank(**s))
		(*s)++;
	while (**s && !tlsp_blank(**s)) {
		if (n + 1 >= outsz)
			return -1;
		out[n++] = *(*s)++;
	}
	out[n] = '\0';
	return (int)n;
}

int tlspolicy_parse(const char *value, struct tlspolicy *p, char *err, size_t errlen)
{
	char w[300];
	const char *s = value;
	memset(p, 0, sizeof *p);
	if (tlsp_word(&s, w, sizeof w) <= 0 || (p->level = tlspolicy_level(w)) < 0) {
		snprintf(err, errlen, "expected none, may, encrypt or verify, got '%.40s'", value);
		return -1;
	}
	int n;
	while ((n = tlsp_word(&s, w, sizeof w)) != 0) {
		if (n < 0 || strncmp(w, "match=", 6) != 0 || !tlsp_name_ok(w + 6) ||
		    strlen(w + 6) >= sizeof p->match) {
			snprintf(err, errlen, "unknown or malformed option '%.60s' (match=NAME)", w);
			return -1;
		}
		if (p->match[0] || p->level != TLSP_VERIFY) {
			snprintf(err, errlen, p->match[0] ? "one match= name only" :
			         "match= needs the verify level");
			return -1;
		}
		snprintf(p->match, sizeof p->match, "%s", w + 6);
	}
	return 0;
}

int tlspolicy_auth_parse(const char *value, char **buf, const char **user, const char **pass,
                         char *err, size_t errlen)
{
	const char *colon = strchr(value, ':');
	*buf = NULL;
	if (!colon || colon == value) {
		snprintf(err, errlen, "expected USER:PASSWORD");
		return -1;
	}
	for (const char *q = value; q < colon; q++)
		if (tlsp_blank(*q)) {
			snprintf(err, errlen, "blank in the user name");
			return -1;
		}
	*buf = xstrdup(value);
	(*buf)[colon - value] = '\0';
	*user = *buf;
	*pass = *buf + (colon - value) + 1;
	return 0;
}

int tlspolicy_auth_file_ok(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		snprintf(err, errlen, "%s holds passwords and is readable or writable by others "
		         "(chmod 600 or 640)", path);
		return -1;
	}
	return 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

static void tlsp_free_auth(void *v)
{
	struct tlsp_auth *a = v;
	explicit_bzero(a->buf, strlen(a->buf) + 1 + strlen(a->pass));
	free(a->buf);
	free(a);
}

/* a warning for ternd -n and the parent's start (errs may be NULL); nothing is refused */
static void tlsp_warn(struct cfg_errors *errs, const char *name, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void tlsp_warn(struct cfg_errors *errs, const char *name, int line, const char *fmt, ...)
{
	va_list ap;
	if (!errs || errs->nw >= CFG_MAXWARNS)
		return;
	struct cfg_error *w = &errs->w[errs->nw++];
	snprintf(w->file, sizeof w->file, "%s", name);
	w->line = line;
	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof w->msg, fmt, ap);
	va_end(ap);
}

/* AUTH sends the password over any TLS the level allows: unless it is verify, a man in the
 * middle with any certificate gets it (tlsdestinations are loaded before smtpauth) */
static void tlsp_check_auth_level(const struct tlspolicy_tables *t, const char *key,
                                  const char *name, int line, struct cfg_errors *errs)
{
	struct tlspolicy p;
	char err[100];
	if (tlspolicy_lookup(t, key, &p, err, sizeof err) == 0 && p.level != TLSP_VERIFY)
		tlsp_warn(errs, name, line, "smtpauth: the password for %s goes out under TLS level "
		          "%s, which does not verify the server's certificate (tlsdestinations "
		          "%s=verify)", key, tlspolicy_level_name(p.level), key);
}

/* one entry: 0 added (or a duplicate: the first wins), -1 bad (reported) */
static int tlsp_add(struct tlspolicy_tables *t, int auth, const char *key, const char *val,
                    const char *name, int line, struct cfg_errors *errs)
{
	char err[200], *k = xstrdup(key);
	str_lower(k);
	if (!auth) {
		struct tlspolicy *p = xcalloc(1, sizeof *p);
		if (tlspolicy_parse(val, p, err, sizeof err) < 0) {
			table_error(errs, name, line, "tlsdestinations: %s", err);
			free(p);
			free(k);
			return -1;
		}
		if (table_map_put(t->pol, k, p) != 0)
			free(p);
	} else {
		struct tlsp_auth *a = xcalloc(1, sizeof *a);
		if (tlspolicy_auth_parse(val, &a->buf, &a->user, &a->pass, err, sizeof err) < 0) {
			table_error(errs, name, line, "smtpauth: %s", err);
			free(a);
			free(k);
			return -1;
		}
		if (table_map_put(t->auth, k, a) != 0)
			tlsp_free_auth(a);
		tlsp_check_auth_level(t, k, name, line, errs);
	}
	free(k);
	return 0;
}

/* a file of `KEY VALUE` lines; -1 if unreadable or any line is bad */
static int tlsp_file(struct tlspolicy_tables *t, int auth, const char *ref,
                     struct cfg_errors *errs)
{
	const char *what = auth ? "smtpauth" : "tlsdestinations", *path = ref + 5;
	char *text = NULL, err[300];
	size_t len = 0;
	int bad = 0;
	if (strncmp(ref, "file:", 5) != 0) {
		table_error(errs, ref, 0, "%s: only file: tables are supported", what);
		return -1;
	}
	if (auth && tlspolicy_auth_file_ok(path, err, sizeof err) < 0) {
		table_error(errs, path, 0, "smtpauth: %s", err);
		return -1;
	}
	if (table_read_file(path, TLSP_MAXFILE, &text, &len) < 0) {
		table_error(errs, path, 0, "%s: cannot read %s: %s", what, path, strerror(errno));
		return -1;
	}
	struct table_lines it;
	const char *s;
	size_t n;
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		table_trim(&s, &n);
		if (n == 0 || *s == '#')
			continue;
		char *l = memchr(s, '\0', n) ? NULL : xstrndup(s, n), *v = l;
		while (v && *v && !tlsp_blank(*v))
			v++;
		if (!l || !*v) {
			table_error(errs, path, it.line, "%s: expected KEY VALUE", what);
			bad++;
			free(l);
			continue;
		}
		*v++ = '\0';
		while (tlsp_blank(*v))
			v++;
		bad += tlsp_add(t, auth, l, v, path, it.line, errs) < 0;
		free(l);
	}
	explicit_bzero(text, len);
	free(text);
	return bad ? -1 : 0;
}

static void tlsp_free_pol(void *v) { free(v); }

void tlspolicy_free(struct tlspolicy_tables *t)
{
	if (!t)
		return;
	table_map_free(t->pol, tlsp_free_pol);
	table_map_free(t->auth, tlsp_free_auth);
	free(t);
}

struct tlspolicy_tables *tlspolicy_load(const struct config *cfg, struct cfg_errors *errs)
{
	struct tlspolicy_tables *t = xcalloc(1, sizeof *t);
	int bad = 0;
	t->pol = table_map_new();
	t->auth = table_map_new();
	t->level = tlspolicy_level(cfg->smtptls ? cfg->smtptls : "may");
	if (t->level < 0) {
		table_error(errs, cfg->path, 0, "smtptls: unknown level '%s'", cfg->smtptls);
		bad++;
	}
	const struct cfg_list *l = &cfg->tlsdestinations;
	for (size_t i = 0; i < l->n; i++) {
		char *k = xstrdup(l->v[i]), *eq = strrchr(k, '=');
		if (eq)
			*eq = '\0';
		if (!eq || eq == k) {
			table_error(errs, cfg->path, 0, "tlsdestinations: expected KEY=LEVEL, got '%s'",
			            l->v[i]);
			bad++;
		} else
			bad += tlsp_add(t, 0, k, eq + 1, cfg->path, 0, errs) < 0;
		free(k);
	}
	for (size_t i = 0; i < l->ntables; i++)
		bad += tlsp_file(t, 0, l->tables[i], errs) < 0;
	if (cfg->smtpauth && *cfg->smtpauth)
		bad += tlsp_file(t, 1, cfg->smtpauth, errs) < 0;
	if (bad) {
		tlspolicy_free(t);
		return NULL;
	}
	return t;
}

/* ---- lookups ------------------------------------------------------------------------------ */

/* the entry of the first candidate key of dest that has one (tlspolicy.h), or NULL */
static void *tlsp_find(const struct table_map *m, const char *dest)
{
	char d[512];
	void *v;
	snprintf(d, sizeof d, "%s", dest);
	str_lower(d);
	if ((v = table_map_get(m, d)) != NULL)
		return v;
	char *end = d[0] == '[' ? strchr(d, ']') : strrchr(d, ':');
	if (end) {
		end[d[0] == '['] = '\0';
		if ((v = table_map_get(m, d)) != NULL)
			return v;
	}
	if (d[0] == '[')
		return NULL;
	for (char *dot = strchr(d, '.'); dot; dot = strchr(dot + 1, '.'))
		if ((v = table_map_get(m, dot)) != NULL)
			return v;
	return NULL;
}

int tlspolicy_lookup(const struct tlspolicy_tables *t, const char *dest, struct tlspolicy *p,
                     char *err, size_t errlen)
{
	const struct tlspolicy *e = tlsp_find(t->pol, dest);
	memset(p, 0, sizeof *p);
	if (e) {
		*p = *e;
		p->key = "tlsdestinations";
	} else
		p->level = t->level;
	return 0;
}

int tlspolicy_auth(const struct tlspolicy_tables *t, const char *dest, const char **user,
                   const char **pass)
{
	const struct tlsp_auth *a = tlsp_find(t->auth, dest);
	if (!a)
		return 0;
	*user = a->user;
	*pass = a->pass;
	return 1;
}
