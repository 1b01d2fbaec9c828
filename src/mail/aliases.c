/* aliases — see aliases.h. The file is parsed into a map name -> target list; expansion
 * walks it depth-first with a stack (loop detection), a set of aliases already expanded
 * (each alias and include file is expanded once per call, which also bounds the work) and a
 * set of final targets already emitted (duplicate suppression).
 * Owns: the parsed aliases file. Trusts: nothing in the aliases or include files, and not
 * even their text when someone besides their owner could have written it (aliases_unsafe,
 * checked on the descriptor that was read). */
#include "mail/aliases.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ALIASES_INCLUDE 3           /* internal kind: ":include:/path", never returned */
#define ALIASES_MAXFILE (64u * 1024 * 1024)
#define ALIASES_MAXTARGET 4096
#define ALIASES_MAXENTRY (1u * 1024 * 1024)

struct aliases {
	char *path;                 /* NULL: no aliases file */
	struct table_map *map;      /* name -> struct aliases_list */
	uint64_t uid, gid;          /* owner of the file */
	uint64_t owner_ok;          /* who besides root may own it */
	int broken;                 /* errno of a failed read (EPERM: unsafe) */
	const char *unsafe;         /* why the file is not trusted, or NULL */
	struct stat st;
	time_t checked;
};

/* ---------------------------------------------------------------- trust */

const char *aliases_unsafe(const struct stat *st, int include, uint64_t owner_ok)
{
	if (st->st_mode & S_IWOTH)
		return "world_writable";
	if (st->st_mode & S_IWGRP)
		return "group_writable";
	if (!include && st->st_uid != 0 && (uint64_t)st->st_uid != owner_ok)
		return "bad_owner";
	return NULL;
}

/* ---------------------------------------------------------------- lists */

static void aliases_add(struct aliases_list *l, int kind, const char *value, uint64_t uid,
                        uint64_t gid, int self)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	struct aliases_target *t = &l->v[l->n++];
	t->kind = kind;
	t->value = xstrdup(value);
	t->uid = uid;
	t->gid = gid;
	t->self = self;
	t->incl = 0;
}

void aliases_list_free(struct aliases_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].value);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void aliases_list_freep(void *p)
{
	aliases_list_free(p);
	free(p);
}

/* ---------------------------------------------------------------- targets */

static int aliases_ctl(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return 1;
	return 0;
}

/* classify and store one unquoted, trimmed target; NULL or an error message */
static const char *aliases_target(const char *t, int quoted, uint64_t uid, uint64_t gid,
                                  struct aliases_list *out)
{
	if (aliases_ctl(t))
		return "control character in target";
	if (strlen(t) > ALIASES_MAXTARGET)
		return "target too long";
	if (t[0] == '|') {
		if (!t[1])
			return "empty command";
		aliases_add(out, ALIASES_PROG, t, uid, gid, 0);
	} else if (t[0] == '/') {
		aliases_add(out, ALIASES_FILE, t, uid, gid, 0);
	} else if (str_ncasecmp(t, ":include:", 9) == 0) {
		const char *p = t + 9;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '/')
			return ":include: needs an absolute path";
		aliases_add(out, ALIASES_INCLUDE, p, uid, gid, 0);
	} else {
		size_t n = strlen(t);
		char *a = n >= 2 && t[0] == '<' && t[n - 1] == '>' ? xstrndup(t + 1, n - 2) :
		          xstrdup(t);
		const char *why = NULL;
		if (!a[0] || strchr(a, ' ') || strchr(a, '\t') || strchr(a, '<') || strchr(a, '>'))
			why = quoted ? "bad address" : "bad address (quote commands and paths)";
		char *at = strrchr(a, '@');
		if (at && (!at[1] || at == a))
			why = "bad address";
		if (!why) {
			if (at)
				str_lower(at);
			aliases_add(out, ALIASES_ADDR, a, uid, gid, 0);
		}
		free(a);
		return why;
	}
	return NULL;
}

/* an unquoted token that is not a command or a path may hold several blank-separated
 * addresses (old-style lists); split it */
static const char *aliases_token(char *tok, int quoted, uint64_t uid, uint64_t gid,
                                 struct aliases_list *out)
{
	if (quoted || tok[0] == '|' || tok[0] == '/' || str_ncasecmp(tok, ":include:", 9) == 0)
		return aliases_target(tok, quoted, uid, gid, out);
	const char *why = NULL, *w;
	char *save = NULL;
	for (char *t = strtok_r(tok, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
		if ((w = aliases_target(t, 0, uid, gid, out)) && !why)
			why = w;
	return why;
}

static void aliases_trimbuf(struct buf *b)
{
	size_t i = 0;
	while (i < b->len && (b->p[i] == ' ' || b->p[i] == '\t'))
		i++;
	buf_consume(b, i);
	while (b->len && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t'))
		b->p[--b->len] = '\0';
}

static int aliases_flush(const char *name, int line, struct buf *tok, int *quoted,
                         uint64_t uid, uint64_t gid, struct aliases_list *out,
                         struct cfg_errors *errs)
{
	aliases_trimbuf(tok);
	int bad = 0;
	if (tok->len || *quoted) {
		const char *why = aliases_token(tok->p ? tok->p : "", *quoted, uid, gid, out);
		if (why) {
			table_error(errs, name, line, "%s", why);
			bad = 1;
		}
	}
	buf_reset(tok);
	*quoted = 0;
	return bad;
}

int aliases_parse_targets(const char *name, int line, const char *s, size_t n,
                          uint64_t uid, uint64_t gid, struct aliases_list *out,
                          struct cfg_errors *errs)
{
	struct buf tok;
	int inq = 0, quoted = 0, bad = 0;
	buf_init(&tok);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (inq && c == '\\' && i + 1 < n) {
			buf_addc(&tok, s[++i]);
		} else if (c == '"') {
			inq = !inq;
			quoted = 1;
		} else if (!inq && (c == ',' || c == '\n')) {
			bad += aliases_flush(name, line, &tok, &quoted, uid, gid, out, errs);
		} else {
			buf_addc(&tok, c);
		}
	}
	if (inq) {
		table_error(errs, name, line, "unterminated quote");
		bad++;
		buf_reset(&tok);
	} else {
		bad += aliases_flush(name, line, &tok, &quoted, uid, gid, out, errs);
	}
	buf_free(&tok);
	return bad;
}

/* ---------------------------------------------------------------- the aliases file */

static int aliases_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '"')
			return 0;
	return 1;
}

/* one logical entry "name: targets" */
static void aliases_entry(struct aliases *a, const char *name, int line, struct buf *e,
                          struct cfg_errors *errs)
{
	char *colon = memchr(e->p, ':', e->len);
	if (!colon) {
		table_error(errs, name, line, "expected 'name: target, ...'");
		return;
	}
	char *key = xstrndup(e->p, (size_t)(colon - e->p));
	size_t kl = strlen(key);
	while (kl && (key[kl - 1] == ' ' || key[kl - 1] == '\t'))
		key[--kl] = '\0';
	str_lower(key);
	struct aliases_list *l = xcalloc(1, sizeof *l);
	const char *rest = colon + 1;
	int bad = aliases_parse_targets(name, line, rest, e->len - (size_t)(rest - e->p),
	                                a->uid, a->gid, l, errs);
	if (!aliases_name_ok(key))
		table_error(errs, name, line, "bad alias name");
	else if (l->n == 0 && !bad)
		table_error(errs, name, line, "alias '%s' has no targets", key);
	else if (l->n && table_map_put(a->map, key, l) != 0)
		table_error(errs, name, line, "duplicate alias '%s' (the first wins)", key);
	else if (l->n)
		l = NULL;
	if (l)
		aliases_list_freep(l);
	free(key);
}

static void aliases_parse(struct aliases *a, const char *name, const char *text, size_t len,
                          struct cfg_errors *errs)
{
	struct table_lines it;
	struct buf e;
	const char *s;
	size_t n;
	int first = 0, skip = 0;
	buf_init(&e);
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		int cont = n && (s[0] == ' ' || s[0] == '\t');
		const char *t = s;
		size_t tn = n;
		table_trim(&t, &tn);
		if (tn == 0 || t[0] == '#')
			continue;
		if (!cont) {
			if (first && !skip)
				aliases_entry(a, name, first, &e, errs);
			buf_reset(&e);
			first = it.line;
			skip = 0;
		} else if (!first) {
			table_error(errs, name, it.line, "continuation line without an alias");
			continue;
		}
		if (skip)
			continue;
		if (memchr(s, '\0', n) || e.len + n > ALIASES_MAXENTRY) {
			table_error(errs, name, it.line, memchr(s, '\0', n) ? "NUL byte in line" :
			            "alias entry too long");
			skip = 1;
			continue;
		}
		if (cont)
			buf_addc(&e, ' ');
		buf_add(&e, t, tn);
	}
	if (first && !skip)
		aliases_entry(a, name, first, &e, errs);
	buf_free(&e);
}

struct aliases *aliases_from_text(const char *name, const char *text, size_t len,
                                  uint64_t uid, uint64_t gid, struct cfg_errors *errs)
{
	struct aliases *a = xcalloc(1, sizeof *a);
	a->map = table_map_new();
	a->uid = uid;
	a->gid = gid;
	a->checked = (time_t)-1;
	aliases_parse(a, name, text, len, errs);
	return a;
}

/* an unsafe aliases file: nothing of it is used; logged when first seen (or the reason
 * changes), not on each re-check */
static void aliases_refuse(struct aliases *a, const struct stat *st, const char *why,
                           struct cfg_errors *errs)
{
	if (!a->unsafe || strcmp(a->unsafe, why) != 0)
		log_err("event=alias_unsafe path=%s reason=%s owner=%llu mode=%04o", a->path, why,
		        (unsigned long long)st->st_uid, (unsigned)(st->st_mode & 07777));
	table_error(errs, a->path, 0, "unsafe aliases file (%s): it must be owned by root and "
	            "writable by its owner only", why);
	table_map_free(a->map, aliases_list_freep);
	a->map = table_map_new();
	a->broken = EPERM;
	a->unsafe = why;
	a->st = *st;
}

static void aliases_load(struct aliases *a, struct cfg_errors *errs)
{
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	if (table_read_file_stat(a->path, ALIASES_MAXFILE, &text, &len, &st) < 0) {
		a->broken = errno ? errno : EIO;
		a->unsafe = NULL;
		table_error(errs, a->path, 0, "cannot read aliases file: %s", strerror(a->broken));
		log_err("event=aliases_unreadable file=%s error=\"%s\"", a->path,
		        strerror(a->broken));
		return;
	}
	const char *why = aliases_unsafe(&st, 0, a->owner_ok);
	if (why) {
		aliases_refuse(a, &st, why, errs);
		free(text);
		return;
	}
	table_map_free(a->map, aliases_list_freep);
	a->map = table_map_new();
	a->unsafe = NULL;
	a->uid = st.st_uid;
	a->gid = st.st_gid;
	a->st = st;
	a->broken = 0;
	aliases_parse(a, a->path, text, len, errs);
	free(text);
}

struct aliases *aliases_open(const char *spec, uint64_t owner_ok, struct cfg_errors *errs)
{
	const char *path = !spec || !*spec ? "" : strncmp(spec, "file:", 5) == 0 ? spec + 5 :
	                   spec[0] == '/' ? spec : NULL;
	if (!path || (spec && *spec && !*path)) {
		table_error(errs, "aliases", 0, "expected file:PATH");
		return NULL;
	}
	struct aliases *a = xcalloc(1, sizeof *a);
	a->map = table_map_new();
	a->checked = (time_t)-1;
	a->owner_ok = owner_ok;
	if (*path) {
		a->path = xstrdup(path);
		a->checked = time(NULL);
		aliases_load(a, errs);
	}
	return a;
}

int aliases_refresh(struct aliases *a, struct cfg_errors *errs)
{
	if (!a || !a->path || a->checked == time(NULL))
		return 0;
	a->checked = time(NULL);
	struct stat st;
	/* ctime too: a chmod or chown changes whether the file is trusted */
	if (stat(a->path, &st) == 0 && (!a->broken || a->unsafe) && st.st_ino == a->st.st_ino &&
	    st.st_dev == a->st.st_dev && st.st_size == a->st.st_size &&
	    st.st_mtim.tv_sec == a->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == a->st.st_mtim.tv_nsec &&
	    st.st_ctim.tv_sec == a->st.st_ctim.tv_sec && st.st_ctim.tv_nsec == a->st.st_ctim.tv_nsec)
		return 0;
	aliases_load(a, errs);
	return 1;
}

void aliases_free(struct aliases *a)
{
	if (!a)
		return;
	table_map_free(a->map, aliases_list_freep);
	free(a->path);
	free(a);
}

int aliases_has(struct aliases *a, const char *name)
{
	if (!a)
		return TABLE_NOTFOUND;
	if (a->broken)
		return TABLE_TEMP;
	char *k = xstrdup(name);
	str_lower(k);
	int rc = table_map_get(a->map, k) ? TABLE_FOUND : TABLE_NOTFOUND;
	free(k);
	return rc;
}

/* ---------------------------------------------------------------- expansion */

struct aexp {
	struct aliases *a;
	aliases_islocal_fn islocal;
	void *arg;
	struct aliases_list *out;
	char *diag;
	size_t dlen;
	const char *stack[ALIASES_MAXDEPTH + 1];
	int depth;
	struct table_map *done;     /* "a:name" aliases and "i:path" includes expanded */
	struct table_map *seen;     /* final targets emitted: kind + lowercased value */
};

static int aexp_fail(struct aexp *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int aexp_fail(struct aexp *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->diag, x->dlen, fmt, ap);
	va_end(ap);
	return TABLE_TEMP;
}

/* mark "tag:name" as expanded in this call; 1 if it already was */
static int aexp_once(struct aexp *x, char tag, const char *name)
{
	struct buf k;
	buf_init(&k);
	buf_printf(&k, "%c:%s", tag, name);
	int r = table_map_put(x->done, k.p, NULL);
	buf_free(&k);
	return r;
}

static void aexp_final(struct aexp *x, const struct aliases_target *t, int self)
{
	struct buf k;
	buf_init(&k);
	buf_printf(&k, "%d%s", t->kind, t->value);
	if (t->kind == ALIASES_ADDR)
		str_lower(k.p);
	if (table_map_put(x->seen, k.p, NULL) == 0) {
		aliases_add(x->out, t->kind, t->value, t->uid, t->gid, self);
		x->out->v[x->out->n - 1].incl = t->incl;
	}
	buf_free(&k);
}

static int aexp_list(struct aexp *x, const char *self, const struct aliases_list *l);

static int aexp_name(struct aexp *x, const char *name)
{
	if (aexp_once(x, 'a', name))
		return TABLE_FOUND;         /* already expanded in this call */
	if (x->depth >= ALIASES_MAXDEPTH)
		return aexp_fail(x, "alias nesting deeper than 10 at '%s' (loop?)", name);
	const struct aliases_list *l = table_map_get(x->a->map, name);
	x->stack[x->depth++] = name;
	int rc = aexp_list(x, name, l);
	x->depth--;
	return rc;
}

static int aexp_include(struct aexp *x, const char *self, const char *path)
{
	if (aexp_once(x, 'i', path))
		return TABLE_FOUND;
	if (x->depth >= ALIASES_MAXDEPTH)
		return aexp_fail(x, "include nesting deeper than 10 at %s", path);
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	if (table_read_file_stat(path, ALIASES_MAXFILE, &text, &len, &st) < 0)
		return aexp_fail(x, "cannot read include file %s", path);
	const char *why = aliases_unsafe(&st, 1, 0);
	if (why) {
		log_err("event=alias_unsafe path=%s reason=%s alias=%s owner=%llu mode=%04o", path,
		        why, self, (unsigned long long)st.st_uid, (unsigned)(st.st_mode & 07777));
		free(text);
		return aexp_fail(x, "include file %s is unsafe (%s)", path, why);
	}
	struct aliases_list inc = { NULL, 0, 0 };
	struct cfg_errors errs;
	errs.n = 0;
	struct table_lines it;
	const char *s;
	size_t n;
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		table_trim(&s, &n);
		if (n && s[0] != '#' && !memchr(s, '\0', n))
			aliases_parse_targets(path, it.line, s, n, st.st_uid, st.st_gid, &inc, &errs);
	}
	for (int i = 0; i < errs.n; i++)
		log_warn("event=include_error file=%s line=%d error=\"%s\"", errs.e[i].file,
		         errs.e[i].line, errs.e[i].msg);
	for (size_t i = 0; i < inc.n; i++)
		inc.v[i].incl = 1;
	free(text);
	x->stack[x->depth++] = self;
	int rc = aexp_list(x, self, &inc);
	x->depth--;
	aliases_list_free(&inc);
	return rc;
}

/* the local name an address target refers to (malloc'd, lowercased), or NULL if remote */
static int aexp_localname(struct aexp *x, const char *addr, char **name)
{
	const char *at = strrchr(addr, '@');
	*name = NULL;
	if (at) {
		int rc = x->islocal ? x->islocal(at + 1, x->arg) : TABLE_NOTFOUND;
		if (rc == TABLE_TEMP)
			return aexp_fail(x, "cannot tell whether %s is local", at + 1);
		if (rc != TABLE_FOUND)
			return TABLE_FOUND;
	}
	*name = at ? xstrndup(addr, (size_t)(at - addr)) : xstrdup(addr);
	str_lower(*name);
	return TABLE_FOUND;
}

static int aexp_addr(struct aexp *x, const char *self, const struct aliases_target *t)
{
	char *name;
	if (aexp_localname(x, t->value, &name) != TABLE_FOUND)
		return TABLE_TEMP;
	int rc = TABLE_FOUND;
	if (!name || (strcmp(name, self) != 0 && !table_map_get(x->a->map, name))) {
		aexp_final(x, t, 0);
	} else if (strcmp(name, self) == 0) {
		aexp_final(x, t, 1);
	} else {
		for (int i = 0; i < x->depth; i++)
			if (strcmp(x->stack[i], name) == 0) {
				free(name);
				return aexp_fail(x, "alias loop through '%s'", x->stack[i]);
			}
		rc = aexp_name(x, name);
	}
	free(name);
	return rc;
}

static int aexp_list(struct aexp *x, const char *self, const struct aliases_list *l)
{
	for (size_t i = 0; l && i < l->n; i++) {
		const struct aliases_target *t = &l->v[i];
		int rc = TABLE_FOUND;
		if (t->kind == ALIASES_INCLUDE)
			rc = aexp_include(x, self, t->value);
		else if (t->kind == ALIASES_ADDR)
			rc = aexp_addr(x, self, t);
		else
			aexp_final(x, t, 0);
		if (rc != TABLE_FOUND)
			return rc;
	}
	return TABLE_FOUND;
}

int aliases_expand(struct aliases *a, const char *name, aliases_islocal_fn islocal, void *arg,
                   struct aliases_list *out, char *diag, size_t dlen)
{
	char dummy[8];
	if (!diag || !dlen) {
		diag = dummy;
		dlen = sizeof dummy;
	}
	diag[0] = '\0';
	int rc = aliases_has(a, name);
	if (rc == TABLE_TEMP && a->unsafe)
		snprintf(diag, dlen, "aliases file %s is unsafe (%s)", a->path, a->unsafe);
	else if (rc == TABLE_TEMP)
		snprintf(diag, dlen, "aliases file unreadable");
	if (rc != TABLE_FOUND)
		return rc;
	struct aexp x;
	memset(&x, 0, sizeof x);
	x.a = a;
	x.islocal = islocal;
	x.arg = arg;
	x.out = out;
	x.diag = diag;
	x.dlen = dlen;
	x.done = table_map_new();
	x.seen = table_map_new();
	char *k = xstrdup(name);
	str_lower(k);
	size_t before = out->n;
	rc = aexp_name(&x, k);
	free(k);
	while (rc != TABLE_FOUND && out->n > before)   /* no partial answer */
		free(out->v[--out->n].value);
	table_map_free(x.done, NULL);
	table_map_free(x.seen, NULL);
	return rc;
}
