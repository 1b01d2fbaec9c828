/* table — generic tables: the string map, file:/cdb: lookups with a per-process cache of
 * file tables, list membership, IP/CIDR matching and the cdb builder. See table.h.
 * Owns: the cache of loaded file tables. Trusts: nothing read from files; a table that
 * cannot be read answers TABLE_TEMP. */
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include <arpa/inet.h>
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TABLE_MAXLINE  65536
#define TABLE_MAXKEY   1024
#define TABLE_MAXFILE  (256u * 1024 * 1024)

/* ---------------------------------------------------------------- string map */

struct table_ent {
	char *key;
	void *val;
	struct table_ent *next;
};

struct table_map {
	struct table_ent **b;
	size_t nb, n;
};

struct table_map *table_map_new(void)
{
	struct table_map *m = xcalloc(1, sizeof *m);
	m->nb = 64;
	m->b = xcalloc(m->nb, sizeof *m->b);
	return m;
}

static void table_map_grow(struct table_map *m)
{
	size_t nb = m->nb * 2;
	struct table_ent **b = xcalloc(nb, sizeof *b);
	for (size_t i = 0; i < m->nb; i++) {
		struct table_ent *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			size_t h = (size_t)(str_hash(e->key) & (nb - 1));
			e->next = b[h];
			b[h] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

static struct table_ent *table_map_find(const struct table_map *m, const char *key)
{
	struct table_ent *e = m->b[str_hash(key) & (m->nb - 1)];
	for (; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

int table_map_put(struct table_map *m, const char *key, void *val)
{
	if (table_map_find(m, key))
		return 1;
	if (m->n >= m->nb)
		table_map_grow(m);
	size_t h = (size_t)(str_hash(key) & (m->nb - 1));
	struct table_ent *e = xmalloc(sizeof *e);
	e->key = xstrdup(key);
	e->val = val;
	e->next = m->b[h];
	m->b[h] = e;
	m->n++;
	return 0;
}

void *table_map_get(const struct table_map *m, const char *key)
{
	struct table_ent *e = m ? table_map_find(m, key) : NULL;
	return e ? e->val : NULL;
}

size_t table_map_count(const struct table_map *m) { return m ? m->n : 0; }

void table_map_free(struct table_map *m, void (*freeval)(void *))
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		struct table_ent *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			if (freeval)
				freeval(e->val);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	free(m);
}

/* ---------------------------------------------------------------- text helpers */

void table_error(struct cfg_errors *errs, const char *name, int line, const char *fmt, ...)
{
	if (!errs || errs->n >= CFG_MAXERRS)
		return;
	struct cfg_error *e = &errs->e[errs->n++];
	snprintf(e->file, sizeof e->file, "%s", name ? name : "");
	e->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

void table_lines_init(struct table_lines *it, const char *text, size_t len)
{
	it->p = text;
	it->len = text ? len : 0;
	it->off = 0;
	it->line = 0;
}

int table_lines_next(struct table_lines *it, const char **s, size_t *n)
{
	if (it->off >= it->len)
		return 0;
	const char *start = it->p + it->off;
	const char *nl = memchr(start, '\n', it->len - it->off);
	size_t l = nl ? (size_t)(nl - start) : it->len - it->off;
	it->off += l + (nl ? 1 : 0);
	it->line++;
	if (l && start[l - 1] == '\r')
		l--;
	*s = start;
	*n = l;
	return 1;
}

static int table_isblank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

void table_trim(const char **s, size_t *n)
{
	while (*n && table_isblank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && table_isblank((*s)[*n - 1]))
		(*n)--;
}

int table_read_file(const char *path, size_t maxlen, char **out, size_t *len)
{
	struct stat st;
	return table_read_file_stat(path, maxlen, out, len, &st);
}

int table_read_file_stat(const char *path, size_t maxlen, char **out, size_t *len,
                         struct stat *stp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1;
	struct stat st;
	int e = 0;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if ((uint64_t)st.st_size > maxlen)
		e = EFBIG;
	if (e) {
		close(fd);
		errno = e;
		return -1;
	}
	struct buf b;
	buf_init(&b);
	for (;;) {
		buf_reserve(&b, 65536);
		ssize_t r = read(fd, b.p + b.len, b.cap - b.len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || b.len + (size_t)(r > 0 ? r : 0) > maxlen) {
			e = r < 0 ? errno : EFBIG;
			buf_free(&b);
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
		b.p[b.len] = '\0';
	}
	close(fd);
	*len = b.len;
	*out = buf_detach(&b);
	*stp = st;
	return 0;
}

/* ---------------------------------------------------------------- text tables */

typedef void (*table_entry_cb)(const char *key, const char *val, int line, void *arg);

/* split one trimmed, non-comment line into key and value; -1 with a message on error */
static int table_split(const char *s, size_t n, enum table_kind kind, struct buf *key,
                       struct buf *val, const char **why)
{
	size_t k = 0;
	if (kind == TABLE_COLON) {
		const char *c = memchr(s, ':', n);
		if (!c) {
			*why = "missing ':' between key and value";
			return -1;
		}
		k = (size_t)(c - s);
	} else {
		while (k < n && !table_isblank(s[k]))
			k++;
	}
	const char *ks = s, *vs = s + k + (kind == TABLE_COLON && k < n ? 1 : 0);
	size_t kn = k, vn = n - (size_t)(vs - s);
	table_trim(&ks, &kn);
	table_trim(&vs, &vn);
	if (kind == TABLE_LIST && vn) {
		*why = "extra text after the item";
		return -1;
	}
	if (kn > TABLE_MAXKEY) {
		*why = "key too long";
		return -1;
	}
	buf_reset(key);
	buf_add(key, ks, kn);
	str_lower(key->p);
	buf_reset(val);
	buf_add(val, vs, vn);
	return 0;
}

/* calls cb for each good entry; returns the number of bad lines (each reported) */
static int table_parse_cb(const char *name, const char *text, size_t len,
                          enum table_kind kind, struct cfg_errors *errs,
                          table_entry_cb cb, void *arg)
{
	int bad = 0;
	struct table_lines it;
	const char *s, *why = NULL;
	size_t n;
	struct buf key, val;
	buf_init(&key);
	buf_init(&val);
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		if (n > TABLE_MAXLINE || memchr(s, '\0', n)) {
			table_error(errs, name, it.line, n > TABLE_MAXLINE ?
			            "line too long" : "NUL byte in line");
			bad++;
			continue;
		}
		table_trim(&s, &n);
		if (n == 0 || *s == '#')
			continue;
		if (table_split(s, n, kind, &key, &val, &why) < 0) {
			table_error(errs, name, it.line, "%s", why);
			bad++;
			continue;
		}
		cb(key.p ? key.p : "", val.p ? val.p : "", it.line, arg);
	}
	buf_free(&key);
	buf_free(&val);
	return bad;
}

static void table_put_cb(const char *key, const char *val, int line, void *arg)
{
	char *v = xstrdup(val);
	if (table_map_put(arg, key, v) != 0)
		free(v);   /* first entry wins */
}

struct table_map *table_parse(const char *name, const char *text, size_t len,
                              enum table_kind kind, struct cfg_errors *errs)
{
	struct table_map *m = table_map_new();
	table_parse_cb(name, text, len, kind, errs, table_put_cb, m);
	return m;
}

/* ---------------------------------------------------------------- file table cache */

struct table_cached {
	char *path;
	enum table_kind kind;
	struct table_map *map;     /* NULL while the file cannot be read */
	int err;                   /* errno of the last failed load */
	struct stat st;
	time_t checked;
	struct table_cached *next;
};

static struct table_cached *table_cache;

static int table_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void table_load(struct table_cached *tc, const struct stat *st)
{
	char *text = NULL;
	size_t len = 0;
	struct cfg_errors errs;
	errs.n = 0;
	table_map_free(tc->map, free);
	tc->map = NULL;
	memset(&tc->st, 0, sizeof tc->st);
	if (table_read_file(tc->path, TABLE_MAXFILE, &text, &len) < 0) {
		tc->err = errno;
		log_err("event=table_unreadable file=%s error=\"%s\"", tc->path, strerror(errno));
		return;
	}
	tc->map = table_parse(tc->path, text, len, tc->kind, &errs);
	tc->st = *st;
	tc->err = 0;
	for (int i = 0; i < errs.n; i++)
		log_warn("event=table_error file=%s line=%d error=\"%s\"", errs.e[i].file,
		         errs.e[i].line, errs.e[i].msg);
	free(text);
}

/* the current map of a file table, or NULL (errno-style failure: TABLE_TEMP) */
static struct table_map *table_file(const char *path, enum table_kind kind)
{
	struct table_cached *tc;
	for (tc = table_cache; tc; tc = tc->next)
		if (tc->kind == kind && strcmp(tc->path, path) == 0)
			break;
	if (!tc) {
		tc = xcalloc(1, sizeof *tc);
		tc->path = xstrdup(path);
		tc->kind = kind;
		tc->next = table_cache;
		table_cache = tc;
	} else if (tc->checked == time(NULL)) {
		return tc->map;
	}
	tc->checked = time(NULL);
	struct stat st;
	if (stat(path, &st) < 0) {
		if (tc->map || tc->err != errno)
			log_err("event=table_unreadable file=%s error=\"%s\"", path, strerror(errno));
		tc->err = errno;
		table_map_free(tc->map, free);
		tc->map = NULL;
		return NULL;
	}
	if (!tc->map || !table_same_file(&st, &tc->st))
		table_load(tc, &st);
	return tc->map;
}

void table_flush_cache(void)
{
	while (table_cache) {
		struct table_cached *tc = table_cache;
		table_cache = tc->next;
		table_map_free(tc->map, free);
		free(tc->path);
		free(tc);
	}
}

/* ---------------------------------------------------------------- lookups */

static int table_cdb_get(const char *path, const char *key, char **val)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		log_err("event=table_unreadable file=%s error=\"%s\"", path, strerror(errno));
		return TABLE_TEMP;
	}
	unsigned dlen = 0;
	int r = cdb_seek(fd, key, (unsigned)strlen(key), &dlen);
	int rc = r > 0 ? TABLE_FOUND : r == 0 ? TABLE_NOTFOUND : TABLE_TEMP;
	if (rc == TABLE_FOUND && val) {
		char *v = dlen < TABLE_MAXLINE ? xmalloc((size_t)dlen + 1) : NULL;
		if (!v || cdb_bread(fd, v, (int)dlen) < 0) {
			free(v);
			rc = TABLE_TEMP;
		} else {
			v[dlen] = '\0';
			*val = v;
		}
	}
	if (rc == TABLE_TEMP)
		log_err("event=table_unreadable file=%s error=\"bad cdb\"", path);
	close(fd);
	return rc;
}

int table_lookup(const char *ref, enum table_kind kind, const char *key, char **val)
{
	char *k = xstrdup(key);
	str_lower(k);
	int rc = TABLE_TEMP;
	if (strncmp(ref, "file:", 5) == 0) {
		struct table_map *m = table_file(ref + 5, kind);
		if (m) {
			const char *v = table_map_get(m, k);
			rc = v ? TABLE_FOUND : TABLE_NOTFOUND;
			if (v && val)
				*val = xstrdup(v);
		}
	} else if (strncmp(ref, "cdb:", 4) == 0) {
		rc = table_cdb_get(ref + 4, k, val);
	} else if (strncmp(ref, "ldap:", 5) == 0) {
		log_debug("event=table_ldap_not_here ref=%s", ref);  /* the lookup role asks it */
	} else {
		log_err("event=table_unsupported ref=%s", ref);
	}
	free(k);
	return rc;
}

/* one candidate against inline items and tables (skipping ldap: ones when noldap); *temp
 * set when a table failed */
static int table_list_probe(const struct cfg_list *l, const char *item, int *temp, int noldap)
{
	for (size_t i = 0; i < l->n; i++)
		if (str_casecmp(l->v[i], item) == 0)
			return 1;
	for (size_t i = 0; i < l->ntables; i++) {
		if (noldap && strncmp(l->tables[i], "ldap:", 5) == 0)
			continue;
		int rc = table_lookup(l->tables[i], TABLE_LIST, item, NULL);
		if (rc == TABLE_FOUND)
			return 1;
		if (rc == TABLE_TEMP)
			*temp = 1;
	}
	return 0;
}

static int table_list_lookup2(const struct cfg_list *l, const char *item, int noldap)
{
	int temp = 0;
	if (!l || !item)
		return TABLE_NOTFOUND;
	if (table_list_probe(l, item, &temp, noldap))
		return TABLE_FOUND;
	if (!strchr(item, '@')) {
		for (const char *d = strchr(item, '.'); d; d = strchr(d + 1, '.'))
			if (d[1] && table_list_probe(l, d, &temp, noldap))
				return TABLE_FOUND;
	}
	return temp ? TABLE_TEMP : TABLE_NOTFOUND;
}

int table_list_lookup(const struct cfg_list *l, const char *item)
{
	return table_list_lookup2(l, item, 0);
}

int table_list_lookup_noldap(const struct cfg_list *l, const char *item)
{
	return table_list_lookup2(l, item, 1);
}

size_t table_list_candidates(const char *item, const char **out, size_t max)
{
	size_t n = 0;
	if (n < max)
		out[n++] = item;
	if (!strchr(item, '@'))
		for (const char *d = strchr(item, '.'); d && n < max; d = strchr(d + 1, '.'))
			if (d[1])
				out[n++] = d;
	return n;
}

/* ---------------------------------------------------------------- IP matching */

struct table_ip {
	int v4;                    /* 1: a[0..3] is IPv4 */
	unsigned char a[16];
};

static int table_ip_parse(const char *s, struct table_ip *ip)
{
	memset(ip, 0, sizeof *ip);
	if (inet_pton(AF_INET, s, ip->a) == 1) {
		ip->v4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip->a) != 1)
		return -1;
	static const unsigned char mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
	if (memcmp(ip->a, mapped, 12) == 0) {
		memmove(ip->a, ip->a + 12, 4);
		memset(ip->a + 4, 0, 12);
		ip->v4 = 1;
	}
	return 0;
}

/* tcprules-style IPv4 prefix "a." "a.b." "a.b.c." -> address and bits */
static int table_ip_prefix(const char *p, struct table_ip *ip, int *bits)
{
	unsigned oct[4] = { 0, 0, 0, 0 };
	int n = 0;
	memset(ip, 0, sizeof *ip);
	while (*p && n < 3) {
		unsigned v = 0;
		int digits = 0;
		for (; *p >= '0' && *p <= '9' && digits < 4; p++, digits++)
			v = v * 10 + (unsigned)(*p - '0');
		if (!digits || digits > 3 || v > 255 || *p != '.')
			return -1;
		oct[n++] = v;
		p++;
	}
	if (*p || n == 0)
		return -1;
	for (int i = 0; i < 4; i++)
		ip->a[i] = (unsigned char)oct[i];
	ip->v4 = 1;
	*bits = 8 * n;
	return 0;
}

static int table_pattern_parse(const char *pattern, struct table_ip *net, int *bits)
{
	char p[128];
	size_t n = strlen(pattern);
	if (n >= sizeof p)
		return -1;
	memcpy(p, pattern, n + 1);
	char *slash = strchr(p, '/');
	uint64_t b = 0;
	if (slash) {
		*slash = '\0';
		if (str_to_u64(slash + 1, 0, 128, &b) < 0)
			return -1;
	}
	size_t pl = strlen(p);
	if (pl >= 2 && p[0] == '[' && p[pl - 1] == ']') {
		p[pl - 1] = '\0';
		memmove(p, p + 1, pl - 1);
	}
	if (!slash && pl && p[pl - 1] == '.')
		return table_ip_prefix(p, net, bits);
	if (table_ip_parse(p, net) < 0)
		return -1;
	int max = net->v4 ? 32 : 128;
	if (slash && (int)b > max)
		return -1;
	*bits = slash ? (int)b : max;
	return 0;
}

int table_ip_match(const char *pattern, const char *ip)
{
	struct table_ip net, a;
	int bits;
	if (table_pattern_parse(pattern, &net, &bits) < 0 || table_ip_parse(ip, &a) < 0)
		return -1;
	if (net.v4 != a.v4)
		return 0;
	int full = bits / 8, rest = bits % 8;
	if (memcmp(net.a, a.a, (size_t)full) != 0)
		return 0;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((net.a[full] & mask) != (a.a[full] & mask))
			return 0;
	}
	return 1;
}

static int table_ip_file(const char *path, const char *ip)
{
	struct table_map *m = table_file(path, TABLE_LIST);
	if (!m)
		return TABLE_TEMP;
	if (table_map_get(m, ip))
		return TABLE_FOUND;
	for (size_t i = 0; i < m->nb; i++)
		for (struct table_ent *e = m->b[i]; e; e = e->next)
			if (table_ip_match(e->key, ip) == 1)
				return TABLE_FOUND;
	return TABLE_NOTFOUND;
}

int table_ip_file_load(const char *path, const char *key, struct cfg_list *out)
{
	struct table_map *m = table_file(path, TABLE_LIST);
	if (!m)
		return -1;                       /* logged by table_file */
	for (size_t i = 0; i < m->nb; i++)
		for (struct table_ent *e = m->b[i]; e; e = e->next) {
			if (table_ip_match(e->key, "127.0.0.1") < 0) {
				char q[80];
				log_warn("event=table_bad_pattern key=%s file=%s pattern=%s", key, path,
				         log_quote(q, sizeof q, e->key, strlen(e->key)));
				continue;
			}
			out->v = xrealloc(out->v, (out->n + 1) * sizeof *out->v);
			out->v[out->n++] = xstrdup(e->key);
		}
	return 0;
}

static int table_ip_cdb(const char *path, const char *ip)
{
	struct table_ip a;
	char probe[INET6_ADDRSTRLEN + 8];
	int rc = table_cdb_get(path, ip, NULL);
	if (rc != TABLE_NOTFOUND || table_ip_parse(ip, &a) < 0 || !a.v4)
		return rc;
	for (int n = 3; n >= 1; n--) {
		int l = 0;
		for (int i = 0; i < n; i++)
			l += snprintf(probe + l, sizeof probe - (size_t)l, "%u.", a.a[i]);
		if ((rc = table_cdb_get(path, probe, NULL)) != TABLE_NOTFOUND)
			return rc;
	}
	return TABLE_NOTFOUND;
}

int table_ip_lookup(const struct cfg_list *l, const char *ip)
{
	int temp = 0;
	if (!l || !ip)
		return TABLE_NOTFOUND;
	for (size_t i = 0; i < l->n; i++)
		if (table_ip_match(l->v[i], ip) == 1)
			return TABLE_FOUND;
	for (size_t i = 0; i < l->ntables; i++) {
		const char *ref = l->tables[i];
		int rc = TABLE_TEMP;
		if (strncmp(ref, "file:", 5) == 0)
			rc = table_ip_file(ref + 5, ip);
		else if (strncmp(ref, "cdb:", 4) == 0)
			rc = table_ip_cdb(ref + 4, ip);
		if (rc == TABLE_FOUND)
			return TABLE_FOUND;
		if (rc == TABLE_TEMP)
			temp = 1;
	}
	return temp ? TABLE_TEMP : TABLE_NOTFOUND;
}

/* ---------------------------------------------------------------- cdb builder */

struct table_make {
	struct cdb_make cm;
	int err;
};

static void table_make_cb(const char *key, const char *val, int line, void *arg)
{
	struct table_make *tm = arg;
	if (tm->err)
		return;
	if (cdb_make_put(&tm->cm, key, (unsigned)strlen(key), val, (unsigned)strlen(val),
	                 CDB_PUT_INSERT) < 0)
		tm->err = errno ? errno : EIO;
}

static int table_fsync_dir(const char *file)
{
	char *dir = xstrdup(file);
	char *slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';
	int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

static int table_make_write(int fd, const char *name, const char *text, size_t len,
                            enum table_kind kind, struct cfg_errors *errs)
{
	struct table_make tm;
	memset(&tm, 0, sizeof tm);
	if (cdb_make_start(&tm.cm, fd) < 0)
		return -1;
	int bad = table_parse_cb(name, text, len, kind, errs, table_make_cb, &tm);
	if (tm.err || bad) {
		cdb_make_finish(&tm.cm);
		errno = tm.err ? tm.err : EINVAL;
		return -1;
	}
	if (cdb_make_finish(&tm.cm) < 0 || fsync(fd) < 0)
		return -1;
	return 0;
}

int table_cdb_build_kind(const char *textfile, const char *cdbfile, enum table_kind kind,
                         struct cfg_errors *errs)
{
	char *text = NULL, *tmp = NULL;
	size_t len = 0;
	if (table_read_file(textfile, TABLE_MAXFILE, &text, &len) < 0) {
		table_error(errs, textfile, 0, "cannot read: %s", strerror(errno));
		return -1;
	}
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s.tmp", cdbfile);
	tmp = buf_detach(&b);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	int r = -1;
	if (fd < 0) {
		table_error(errs, tmp, 0, "cannot create: %s", strerror(errno));
	} else {
		int w = table_make_write(fd, textfile, text, len, kind, errs);
		if (w < 0)
			table_error(errs, tmp, 0, "cannot write: %s", strerror(errno));
		if (close(fd) < 0 && w == 0) {
			table_error(errs, tmp, 0, "cannot write: %s", strerror(errno));
			w = -1;
		}
		if (w == 0 && rename(tmp, cdbfile) < 0)
			table_error(errs, cdbfile, 0, "cannot install: %s", strerror(errno));
		else if (w == 0)
			r = 0;
		if (r == 0 && table_fsync_dir(cdbfile) < 0)
			log_warn("event=fsync_dir file=%s error=\"%s\"", cdbfile, strerror(errno));
	}
	if (r < 0 && fd >= 0)
		unlink(tmp);
	free(tmp);
	free(text);
	return r;
}

int table_cdb_build(const char *textfile, const char *cdbfile)
{
	struct cfg_errors errs;
	errs.n = 0;
	int r = table_cdb_build_kind(textfile, cdbfile, TABLE_SPACE, &errs);
	for (int i = 0; i < errs.n; i++)
		log_err("event=cdb_build file=%s line=%d error=\"%s\"", errs.e[i].file,
		        errs.e[i].line, errs.e[i].msg);
	return r;
}
