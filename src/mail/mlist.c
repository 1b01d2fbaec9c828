/* mlist — see mlist.h. Owns the list file formats, the suffix addresses and the list
 * payload; trusts nothing it reads (files are checked for their writers, lines for form). */
#include "mail/mlist.h"
#include "mail/aliases.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

void mlist_init(struct mlist *l)
{
	memset(l, 0, sizeof *l);
	l->listid = xstrdup("");
}

static void mlist_addrs_free(struct mlist_addrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

void mlist_free(struct mlist *l)
{
	mlist_addrs_free(&l->owners);
	mlist_addrs_free(&l->members);
	mlist_addrs_free(&l->moderators);
	mlist_addrs_free(&l->senders);
	free(l->listid);
	memset(l, 0, sizeof *l);
}

int mlist_addr_ok(const char *s, size_t n)
{
	size_t at = n, nat = 0;
	if (n == 0 || n > MLIST_ADDRMAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 127 || strchr("<>\"(),;:\\[]", c))
			return 0;
		if (c == '@') {
			at = i;
			nat++;
		}
	}
	return nat == 1 && at > 0 && at + 1 < n;
}

static void mlist_add(struct mlist_addrs *a, const char *s, size_t n)
{
	a->v = xrealloc(a->v, (a->n + 1) * sizeof *a->v);
	char *c = xcalloc(1, n + 1);
	memcpy(c, s, n);
	a->v[a->n++] = c;
}

int mlist_parse_addrs(struct mlist_addrs *a, const char *text, size_t len, size_t max,
                      char *err, size_t errlen)
{
	struct table_lines it;
	const char *s;
	size_t n;
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		table_trim(&s, &n);
		if (n == 0 || s[0] == '#')
			continue;
		if (!mlist_addr_ok(s, n)) {
			snprintf(err, errlen, "line %d: not an address", it.line);
			return -1;
		}
		if (a->n >= max) {
			snprintf(err, errlen, "line %d: more than %zu addresses", it.line, max);
			return -1;
		}
		mlist_add(a, s, n);
	}
	return 0;
}

/* a yes/no value: 1, 0, or -1 */
static int mlist_bool(const char *v, size_t n)
{
	if ((n == 3 && strncmp(v, "yes", 3) == 0) || (n == 1 && v[0] == '1'))
		return 1;
	if ((n == 2 && strncmp(v, "no", 2) == 0) || (n == 1 && v[0] == '0'))
		return 0;
	return -1;
}

/* owner = ADDR[,ADDR...] (commas and blanks separate) */
static int mlist_owners(struct mlist *l, const char *v, size_t n)
{
	mlist_addrs_free(&l->owners);
	for (size_t i = 0; i < n;) {
		while (i < n && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
			i++;
		size_t j = i;
		while (j < n && v[j] != ',' && v[j] != ' ' && v[j] != '\t')
			j++;
		if (j == i)
			break;
		if (!mlist_addr_ok(v + i, j - i) || l->owners.n >= MLIST_MAXOWNERS)
			return -1;
		mlist_add(&l->owners, v + i, j - i);
		i = j;
	}
	return l->owners.n ? 0 : -1;
}

static const struct { const char *key; unsigned flag; } mlist_flags[] = {
	{ "membersonly", MLIST_F_MEMBERSONLY }, { "moderated", MLIST_F_MODERATED },
	{ "senderconfirm", MLIST_F_SENDERCONFIRM }, { "holdothers", MLIST_F_HOLDOTHERS },
	{ "verp", MLIST_F_VERP },
};

/* one key=value line (trimmed, not a comment): 0 / -1 */
static int mlist_config_line(struct mlist *l, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	if (!eq)
		return -1;
	const char *k = s, *v = eq + 1;
	size_t kn = (size_t)(eq - s), vn = n - kn - 1;
	table_trim(&k, &kn);
	table_trim(&v, &vn);
	for (size_t i = 0; i < sizeof mlist_flags / sizeof mlist_flags[0]; i++)
		if (kn == strlen(mlist_flags[i].key) && strncmp(k, mlist_flags[i].key, kn) == 0) {
			int b = mlist_bool(v, vn);
			if (b < 0)
				return -1;
			l->flags = b ? l->flags | mlist_flags[i].flag : l->flags & ~mlist_flags[i].flag;
			return 0;
		}
	if (kn == 5 && strncmp(k, "owner", 5) == 0)
		return mlist_owners(l, v, vn);
	if (kn == 6 && strncmp(k, "listid", 6) == 0) {
		if (vn == 0 || vn > MLIST_IDMAX)
			return -1;
		for (size_t i = 0; i < vn; i++)
			if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 127 || v[i] == '<' || v[i] == '>')
				return -1;
		free(l->listid);
		l->listid = xcalloc(1, vn + 1);
		memcpy(l->listid, v, vn);
		return 0;
	}
	return -1;
}

int mlist_parse_config(struct mlist *l, const char *text, size_t len, char *err, size_t errlen)
{
	struct table_lines it;
	const char *s;
	size_t n;
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		table_trim(&s, &n);
		if (n == 0 || s[0] == '#')
			continue;
		if (memchr(s, '\0', n) || mlist_config_line(l, s, n) < 0) {
			snprintf(err, errlen, "config line %d: bad or unknown setting", it.line);
			return -1;
		}
	}
	return 0;
}

/* read dir/name if it is there and safe: 1 read (*text), 0 absent (optional), -1 err */
static int mlist_read(const char *dir, const char *name, int optional, uint64_t owner_ok,
                      char **text, size_t *len, char *err, size_t errlen)
{
	struct buf p;
	struct stat st;
	buf_init(&p);
	buf_printf(&p, "%s/%s", dir, name);
	int rc = table_read_file_stat(p.p, MLIST_FILEMAX, text, len, &st);
	if (rc < 0) {
		int absent = errno == ENOENT;
		snprintf(err, errlen, "%s: %s", p.p, strerror(errno));
		buf_free(&p);
		return absent && optional ? 0 : -1;
	}
	const char *why = aliases_unsafe(&st, 0, owner_ok);
	if (why) {
		log_err("event=list_unsafe path=%s reason=%s owner=%llu mode=%04o", p.p, why,
		        (unsigned long long)st.st_uid, (unsigned)(st.st_mode & 07777));
		snprintf(err, errlen, "%s: unsafe (%s): must be writable by root only", p.p, why);
		free(*text);
		*text = NULL;
		buf_free(&p);
		return -1;
	}
	buf_free(&p);
	return 1;
}

/* one address file into a; 0 / -1 (err) */
static int mlist_load_addrs(const char *dir, const char *name, int optional, uint64_t owner_ok,
                            struct mlist_addrs *a, size_t max, char *err, size_t errlen)
{
	char *text = NULL, e[160];
	size_t len = 0;
	int rc = mlist_read(dir, name, optional, owner_ok, &text, &len, err, errlen);
	if (rc <= 0)
		return rc;
	rc = mlist_parse_addrs(a, text, len, max, e, sizeof e);
	if (rc < 0)
		snprintf(err, errlen, "%s/%s: %s", dir, name, e);
	free(text);
	return rc;
}

int mlist_load(const char *dir, uint64_t owner_ok, struct mlist *l, char *err, size_t errlen)
{
	char *text = NULL, e[160];
	size_t len = 0;
	int rc = mlist_read(dir, "config", 1, owner_ok, &text, &len, err, errlen);
	if (rc > 0 && mlist_parse_config(l, text, len, e, sizeof e) < 0) {
		snprintf(err, errlen, "%s/config: %s", dir, e);
		rc = -1;
	}
	free(text);
	if (rc < 0 ||
	    mlist_load_addrs(dir, "members", 0, owner_ok, &l->members, MLIST_MAXMEMBERS, err, errlen) < 0 ||
	    mlist_load_addrs(dir, "moderators", 1, owner_ok, &l->moderators, MLIST_MAXMODS, err, errlen) < 0 ||
	    mlist_load_addrs(dir, "senders", 1, owner_ok, &l->senders, MLIST_MAXSENDERS, err, errlen) < 0)
		return TABLE_TEMP;
	if ((l->flags & (MLIST_F_MODERATED | MLIST_F_HOLDOTHERS)) && l->moderators.n == 0) {
		snprintf(err, errlen, "%s: moderated, but no moderators", dir);
		return TABLE_TEMP;
	}
	return TABLE_FOUND;
}

int mlist_find(const struct config *cfg, const char *addr, char **dir)
{
	const struct cfg_list *l = &cfg->lists;
	size_t an = strlen(addr);
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->v[i], addr, an) == 0 && l->v[i][an] == ':' && l->v[i][an + 1]) {
			*dir = xstrdup(l->v[i] + an + 1);
			return TABLE_FOUND;
		}
	for (size_t i = 0; i < l->ntables; i++) {
		char *val = NULL;
		int rc = table_lookup(l->tables[i], TABLE_COLON, addr, &val);
		if (rc == TABLE_FOUND && (!val || !*val)) {
			free(val);
			return TABLE_TEMP;          /* an entry without a directory */
		}
		if (rc == TABLE_FOUND) {
			*dir = val;
			return TABLE_FOUND;
		}
		if (rc == TABLE_TEMP)
			return TABLE_TEMP;
	}
	return TABLE_NOTFOUND;
}

/* is LIST@domain (LIST = local[0..n)) a list? */
static int mlist_try(const struct config *cfg, const char *local, size_t n, const char *domain,
                     char *list, size_t listlen, char **dir)
{
	if (n == 0 || n + strlen(domain) + 2 > listlen)
		return TABLE_NOTFOUND;
	snprintf(list, listlen, "%.*s@%s", (int)n, local, domain);
	return mlist_find(cfg, list, dir);
}

static int mlist_hex(const char *s)
{
	size_t n = strlen(s);
	if (n != MLIST_COOKIEHEX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int mlist_route(const struct config *cfg, const char *local, const char *domain, int *kind,
                char *list, size_t listlen, char *cookie, size_t cookielen, char **dir)
{
	size_t n = strlen(local);
	*cookie = '\0';
	if (!cfg->lists.n && !cfg->lists.ntables)
		return TABLE_NOTFOUND;
	int rc = mlist_try(cfg, local, n, domain, list, listlen, dir);
	if (rc != TABLE_NOTFOUND) {
		*kind = MLIST_POST;
		return rc;
	}
	if (n > 6 && strcmp(local + n - 6, "-owner") == 0) {
		*kind = MLIST_OWNER;
		return mlist_try(cfg, local, n - 6, domain, list, listlen, dir);
	}
	for (const char *p = local; (p = strstr(p, "-owner-")); p++) {   /* VERP: any of them */
		rc = p == local ? TABLE_NOTFOUND :
		     mlist_try(cfg, local, (size_t)(p - local), domain, list, listlen, dir);
		if (rc != TABLE_NOTFOUND) {
			*kind = MLIST_OWNER;
			return rc;
		}
	}
	static const struct { const char *mid; int kind; } sfx[] = {
		{ "-accept-", MLIST_ACCEPT }, { "-reject-", MLIST_REJECT },
	};
	for (size_t k = 0; k < 2; k++) {
		const char *p = NULL;             /* the last occurrence: the cookie has no '-' */
		for (const char *q = local; (q = strstr(q, sfx[k].mid)); q++)
			p = q;
		if (!p || p == local)
			continue;
		rc = mlist_try(cfg, local, (size_t)(p - local), domain, list, listlen, dir);
		if (rc != TABLE_NOTFOUND) {
			*kind = sfx[k].kind;
			snprintf(cookie, cookielen, "%s", p + strlen(sfx[k].mid));
			if (rc == TABLE_FOUND && !mlist_hex(cookie))
				*cookie = '\0';           /* a malformed cookie: the queue refuses it */
			return rc;
		}
	}
	return TABLE_NOTFOUND;
}

/* case-insensitive search of needle (n bytes) in s[0..len) */
static int mlist_contains(const char *s, size_t len, const char *needle, size_t n)
{
	for (size_t i = 0; n && i + n <= len; i++) {
		size_t k = 0;
		while (k < n) {
			char a = s[i + k], b = needle[k];
			if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
			if (b >= 'A' && b <= 'Z') b = (char)(b + 32);
			if (a != b)
				break;
			k++;
		}
		if (k == n)
			return 1;
	}
	return 0;
}

static int mlist_field(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n > k && line[k] == ':' && mlist_contains(line, k, name, k);
}

int mlist_loop_check(const char *hdr, size_t len, const char *list, const char *listid)
{
	struct buf id;
	buf_init(&id);
	buf_printf(&id, "<%s>", listid);
	size_t off = 0;
	int loop = 0, infield = 0;     /* infield: 1 Mailing-List, 2 List-Id (continued lines) */
	while (!loop && off < len) {
		const char *s = hdr + off, *nl = memchr(s, '\n', len - off);
		size_t n = nl ? (size_t)(nl - s) : len - off;
		off += n + 1;
		if (n && s[n - 1] == '\r')
			n--;
		if (n == 0)
			break;                     /* the end of the header */
		if (s[0] != ' ' && s[0] != '\t')
			infield = mlist_field(s, n, "mailing-list") ? 1 : mlist_field(s, n, "list-id") ? 2 : 0;
		if (infield == 1)
			loop = mlist_contains(s, n, list, strlen(list));
		else if (infield == 2)
			loop = mlist_contains(s, n, id.p, id.len);
	}
	buf_free(&id);
	return loop;
}

static void mlist_put_addrs(struct msg *out, const struct mlist_addrs *a)
{
	msg_u64(out, a->n);
	for (size_t i = 0; i < a->n; i++)
		msg_str(out, a->v[i]);
}

void mlist_put(struct msg *out, uint64_t verdict, const char *diag, const struct mlist *l)
{
	msg_u64(out, verdict);
	msg_str(out, diag);
	msg_u64(out, l->flags);
	msg_str(out, l->listid);
	mlist_put_addrs(out, &l->owners);
	mlist_put_addrs(out, &l->members);
	mlist_put_addrs(out, &l->moderators);
	mlist_put_addrs(out, &l->senders);
}

static int mlist_get_addrs(struct msg_reader *r, struct mlist_addrs *a, size_t max)
{
	uint64_t n = msg_get_u64(r);
	if (r->err || n > max)
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		const char *s = msg_get_str(r);
		if (r->err || !mlist_addr_ok(s, strlen(s)))
			return -1;
		mlist_add(a, s, strlen(s));
	}
	return 0;
}

int mlist_get(struct msg_reader *r, uint64_t *verdict, char *diag, size_t diaglen,
              struct mlist *l)
{
	*verdict = msg_get_u64(r);
	snprintf(diag, diaglen, "%s", msg_get_str(r));
	uint64_t flags = msg_get_u64(r);
	const char *id = msg_get_str(r);
	int ok = !r->err && flags <= MLIST_F_ALL && strlen(id) <= MLIST_IDMAX;
	if (ok) {
		l->flags = (unsigned)flags;
		free(l->listid);
		l->listid = xstrdup(id);
		for (const char *p = id; *p && ok; p++)
			ok = (unsigned char)*p > ' ' && (unsigned char)*p < 127 && *p != '<' && *p != '>';
	}
	if (!ok || mlist_get_addrs(r, &l->owners, MLIST_MAXOWNERS) < 0 ||
	    mlist_get_addrs(r, &l->members, MLIST_MAXMEMBERS) < 0 ||
	    mlist_get_addrs(r, &l->moderators, MLIST_MAXMODS) < 0 ||
	    mlist_get_addrs(r, &l->senders, MLIST_MAXSENDERS) < 0 || msg_done(r) < 0) {
		r->err = 1;
		mlist_free(l);
		mlist_init(l);
		return -1;
	}
	return 0;
}

int mlist_cookie(const unsigned char *key, size_t keylen, const char *list, uint64_t id,
                 const char *purpose, char *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	struct buf d;
	buf_init(&d);
	buf_printf(&d, "tern-list-cookie\n%s\n%016llx\n%s", list, (unsigned long long)id, purpose);
	int ok = HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)d.p, d.len, mac,
	              &maclen) != NULL && maclen >= 16;
	buf_free(&d);
	if (!ok)
		return -1;
	snprintf(out, 17, "%016llx", (unsigned long long)id);
	for (int i = 0; i < 16; i++)
		snprintf(out + 16 + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

int mlist_cookie_check(const unsigned char *key, size_t keylen, const char *list,
                       const char *purpose, const char *cookie, uint64_t *id)
{
	char want[MLIST_COOKIEHEX + 1];
	if (!mlist_hex(cookie))
		return 0;
	uint64_t v = 0;
	for (int i = 0; i < 16; i++)
		v = v << 4 | (uint64_t)(cookie[i] <= '9' ? cookie[i] - '0' : cookie[i] - 'a' + 10);
	if (mlist_cookie(key, keylen, list, v, purpose, want) < 0 ||
	    CRYPTO_memcmp(want, cookie, MLIST_COOKIEHEX) != 0)
		return 0;
	*id = v;
	return 1;
}
