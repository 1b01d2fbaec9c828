/* dotqmail — .qmail line classification, line walking, extension candidates, EXTn/HOSTn and
 * the Delivered-To header scan (see dotqmail.h). Owns nothing. Trusts nothing: any byte may
 * appear in the input; lengths are always explicit. */
#include "mail/dotqmail.h"
#include "mail/addr.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int lc(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static const char *const kind_names[] = {
	[DQ_BLANK] = "blank", [DQ_COMMENT] = "comment", [DQ_PROGRAM] = "program",
	[DQ_MAILDIR] = "maildir", [DQ_MBOX] = "mbox", [DQ_FORWARD] = "forward",
	[DQ_LIST] = "list", [DQ_IGNORE] = "ignore", [DQ_BAD] = "bad",
};

const char *dotqmail_kind_name(enum dq_kind k)
{
	if ((unsigned)k >= sizeof kind_names / sizeof kind_names[0])
		return "?";
	return kind_names[k];
}

/* control bytes other than TAB (NUL included) make a line unusable */
static int has_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 1;
	}
	return 0;
}

static enum dq_kind set(struct dq_line *out, enum dq_kind k, const char *arg, size_t len)
{
	out->kind = k;
	out->arg = arg;
	out->len = len;
	return k;
}

/* '&address' or bare text: leading blanks skipped; no blanks inside, not a program/file */
static enum dq_kind classify_forward(const char *s, size_t n, struct dq_line *out)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	if (!n || *s == '|' || *s == '/' || memchr(s, ' ', n) || memchr(s, '\t', n))
		return set(out, DQ_BAD, s, n);
	return set(out, DQ_FORWARD, s, n);
}

enum dq_kind dotqmail_classify(const char *line, size_t len, struct dq_line *out)
{
	while (len && is_blank(line[len - 1]))
		len--;
	if (!len)
		return set(out, DQ_BLANK, line, 0);
	if (line[0] == '#')
		return set(out, DQ_COMMENT, line + 1, len - 1);
	if (has_ctl(line, len))
		return set(out, DQ_BAD, line, len);
	switch (line[0]) {
	case '|':
		return set(out, len > 1 ? DQ_PROGRAM : DQ_BAD, line + 1, len - 1);
	case '.':
	case '/':
		return set(out, line[len - 1] == '/' ? DQ_MAILDIR : DQ_MBOX, line, len);
	case '+':
		if (len == 5 && memcmp(line, "+list", 5) == 0)
			return set(out, DQ_LIST, line + 1, 4);
		return set(out, DQ_IGNORE, line + 1, len - 1);
	case '&':
		return classify_forward(line + 1, len - 1, out);
	default:
		return classify_forward(line, len, out);
	}
}

void dotqmail_iter_init(struct dq_iter *it, const char *data, size_t len)
{
	it->p = data;
	it->end = data + len;
	it->lineno = 0;
}

int dotqmail_next(struct dq_iter *it, struct dq_line *out)
{
	if (it->p >= it->end)
		return 0;
	const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
	size_t n = nl ? (size_t)(nl - it->p) : (size_t)(it->end - it->p);
	dotqmail_classify(it->p, n, out);
	out->lineno = ++it->lineno;
	it->p += n + (nl ? 1 : 0);
	return 1;
}

void dotqmail_safe_ext(struct buf *out, const char *ext, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = (char)lc((unsigned char)ext[i]);
		buf_addc(out, (c == '.' || c == '/') ? ':' : c);
	}
}

/* offset of the k-th (0-based) default split point, scanning from the longest prefix:
 * positions j (len..0) with j == 0 or ext[j-1] == '-'; -1 if there are fewer */
static long default_split(const char *ext, unsigned k)
{
	size_t j = strlen(ext);
	for (;; j--) {
		if (j == 0 || ext[j - 1] == '-') {
			if (k == 0)
				return (long)j;
			k--;
		}
		if (j == 0)
			return -1;
	}
}

int dotqmail_candidate(const char *dash, const char *ext, unsigned i, struct buf *name,
		       long *dflt)
{
	buf_reset(name);
	buf_adds(name, ".qmail");
	if (i == 0) {
		buf_adds(name, dash);
		dotqmail_safe_ext(name, ext, strlen(ext));
		*dflt = -1;
		return 0;
	}
	if (!*dash && !*ext)
		return -1;
	long j = default_split(ext, i - 1);
	if (j < 0)
		return -1;
	buf_adds(name, dash);
	dotqmail_safe_ext(name, ext, (size_t)j);
	buf_adds(name, "default");
	*dflt = j;
	return 0;
}

void dotqmail_owner_name(struct buf *name, const char *dash, const char *ext)
{
	buf_reset(name);
	buf_adds(name, ".qmail");
	buf_adds(name, dash);
	dotqmail_safe_ext(name, ext, strlen(ext));
	buf_adds(name, "-owner");
}

const char *dotqmail_ext_part(const char *ext, int n)
{
	for (; n > 1; n--) {
		const char *d = strchr(ext, '-');
		if (!d)
			return ext + strlen(ext);
		ext = d + 1;
	}
	return ext;
}

size_t dotqmail_host_part(const char *host, int n)
{
	size_t len = strlen(host);
	for (; n > 1; n--) {
		size_t j = len;
		while (j && host[j - 1] != '.')
			j--;
		if (j)
			len = j - 1;
	}
	return len;
}

void dotqmail_sender_plain(struct buf *out, const char *s)
{
	const char *at = strrchr(s, '@');
	size_t i = 1;
	while (s[0] == '"' && s[i] && s[i] != '"')
		i += s[i] == '\\' && s[i + 1] ? 2 : 1;
	if (s[0] != '"' || !at || s[i] != '"' || s + i + 1 != at) {
		buf_adds(out, s);
		return;
	}
	for (size_t k = 1; k < i; k++) {
		if (s[k] == '\\')
			k++;
		buf_addc(out, s[k]);
	}
	buf_adds(out, at);
}

void dotqmail_sender_quoted(struct buf *out, const char *plain)
{
	const char *at = strrchr(plain, '@');
	size_t ll = at ? (size_t)(at - plain) : strlen(plain);
	if (!*plain || addr_is_dot_string(plain, ll)) {
		buf_adds(out, plain);
		return;
	}
	buf_addc(out, '"');
	for (size_t k = 0; k < ll; k++) {
		if (plain[k] == '"' || plain[k] == '\\')
			buf_addc(out, '\\');
		buf_addc(out, plain[k]);
	}
	buf_addc(out, '"');
	if (at)
		buf_adds(out, at);
}

void dotqmail_hdr_value(struct buf *out, const char *s)
{
	for (; *s; s++)
		buf_addc(out, (*s == '\n' || *s == '\r') ? '_' : *s);
}

static void env_put(char **env, int *n, const char *k, const char *v, size_t len)
{
	struct buf b;
	buf_init(&b);
	buf_adds(&b, k);
	buf_addc(&b, '=');
	buf_add(&b, v, len);
	env[(*n)++] = buf_detach(&b);
}

char **dotqmail_env(const struct dq_vars *v)
{
	static const char *const extn[] = { "EXT2", "EXT3", "EXT4" };
	static const char *const hostn[] = { "HOST2", "HOST3", "HOST4" };
	const struct { const char *k, *v; } plain[] = {
		{ "SENDER", v->sender }, { "NEWSENDER", v->newsender },
		{ "RECIPIENT", v->recipient }, { "USER", v->user }, { "HOME", v->home },
		{ "HOST", v->host }, { "LOCAL", v->local }, { "EXT", v->ext },
		{ "DEFAULT", v->dflt }, { "DTLINE", v->dtline }, { "RPLINE", v->rpline },
		{ "UFLINE", v->ufline }, { "PATH", v->path }, { "QMAILQUEUE", v->qmailqueue },
		{ "TERN_CONF", v->ternconf },
	};
	size_t np = sizeof plain / sizeof plain[0];
	char **env = xcalloc(np + 7, sizeof *env);
	int n = 0;
	for (size_t i = 0; i < np; i++)
		if (plain[i].v)
			env_put(env, &n, plain[i].k, plain[i].v, strlen(plain[i].v));
	for (int i = 0; i < 3; i++) {
		const char *e = dotqmail_ext_part(v->ext, i + 2);
		env_put(env, &n, extn[i], e, strlen(e));
		env_put(env, &n, hostn[i], v->host, dotqmail_host_part(v->host, i + 2));
	}
	env[n] = NULL;
	return env;
}

void dotqmail_env_free(char **env)
{
	for (char **e = env; e && *e; e++)
		free(*e);
	free(env);
}

void dotqmail_envelope(struct buf *out, const char *sender, const char *addrs, size_t n)
{
	buf_addc(out, 'F');
	buf_add(out, sender, strlen(sender) + 1);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(addrs);
		buf_addc(out, 'T');
		buf_add(out, addrs, len + 1);
		addrs += len + 1;
	}
	buf_addc(out, '\0');
}

enum dq_prog dotqmail_prog_status(int code)
{
	static const int perm[] = { 64, 65, 70, 76, 77, 78, 100, 112 };
	if (code == 0)
		return DQ_PROG_OK;
	if (code == 99)
		return DQ_PROG_STOP;
	for (size_t i = 0; i < sizeof perm / sizeof perm[0]; i++)
		if (code == perm[i])
			return DQ_PROG_PERM;
	return DQ_PROG_TEMP;
}

enum dq_prog dotqmail_queue_status(int code, const char **what, const char **status)
{
	static const struct { int lo, hi; const char *what, *status; } tab[] = {
		{ 0, 0, "", "" },
		{ 11, 11, "envelope address too long", "5.1.3" },
		{ 115, 115, "envelope address too long", "5.1.3" },
		{ 31, 31, "message refused for good", "5.3.0" },
		{ 51, 51, "out of memory", "4.3.0" },
		{ 52, 52, "timeout", "4.3.0" },
		{ 53, 53, "write error or disk full", "4.3.0" },
		{ 54, 54, "read error", "4.3.0" },
		{ 55, 55, "cannot read its configuration", "4.3.0" },
		{ 56, 56, "network trouble", "4.3.0" },
		{ 61, 61, "trouble in its home directory", "4.3.0" },
		{ 62, 66, "cannot create files in the queue", "4.3.0" },
		{ 71, 71, "message refused for now", "4.3.0" },
		{ 72, 73, "mail server connection failed", "4.4.1" },
		{ 74, 74, "mail server communication failed", "4.4.2" },
		{ 81, 81, "internal bug", "4.3.0" },
		{ 91, 91, "bad envelope", "4.3.0" },
		{ 120, 120, "could not run", "4.3.0" },
		{ 11, 40, "permanent problem", "5.3.0" },   /* the rest of qmail's permanent range */
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (code >= tab[i].lo && code <= tab[i].hi) {
			*what = tab[i].what;
			*status = tab[i].status;
			return code == 0 ? DQ_PROG_OK : *status[0] == '5' ? DQ_PROG_PERM : DQ_PROG_TEMP;
		}
	*what = "temporary problem";
	*status = "4.3.0";
	return DQ_PROG_TEMP;
}

void dotqmail_maildir_name(struct buf *out, long long sec, long usec, long pid,
			   unsigned seq, const char *host)
{
	buf_printf(out, "%lld.M%06ldP%ld_%u.", sec, usec, pid, seq);
	for (; *host; host++) {
		if (*host == '/')
			buf_adds(out, "\\057");
		else if (*host == ':')
			buf_adds(out, "\\072");
		else
			buf_addc(out, *host);
	}
}

void dotqmail_hscan_init(struct dq_hscan *h, const char *needle)
{
	h->needle = needle;
	h->nlen = strlen(needle);
	h->pos = 0;
	h->match = 1;
	h->first = h->last = 0;
	h->state = DQ_HS_MORE;
}

/* decide at the end of a line: found, end of header, or go on */
static int line_end(struct dq_hscan *h)
{
	if (h->pos == 0 || (h->pos == 1 && h->first == '\r'))
		return DQ_HS_END;
	if (h->match && (h->pos == h->nlen || (h->pos == h->nlen + 1 && h->last == '\r')))
		return DQ_HS_FOUND;
	return DQ_HS_MORE;
}

static void line_char(struct dq_hscan *h, char c)
{
	if (h->match) {
		if (h->pos < h->nlen)
			h->match = c == h->needle[h->pos];     /* byte for byte, as qmail */
		else
			h->match = h->pos == h->nlen && c == '\r';
	}
	if (h->pos == 0)
		h->first = c;
	h->last = c;
	h->pos++;
}

int dotqmail_hscan_feed(struct dq_hscan *h, const char *p, size_t n)
{
	for (size_t i = 0; i < n && h->state == DQ_HS_MORE; i++) {
		if (p[i] != '\n') {
			line_char(h, p[i]);
			continue;
		}
		h->state = line_end(h);
		h->pos = 0;
		h->match = 1;
	}
	return h->state;
}

int dotqmail_hscan_eof(struct dq_hscan *h)
{
	if (h->state == DQ_HS_MORE)
		h->state = line_end(h) == DQ_HS_FOUND ? DQ_HS_FOUND : DQ_HS_END;
	return h->state;
}

/* --- which .qmail files are trusted ------------------------------------------ */

int dotqmail_trust_owner(unsigned long long uid, const struct dq_trustctx *c)
{
	return c->loose || uid == c->user || uid == c->homeowner || uid == 0;
}

int dotqmail_trust_group(const struct stat *st, const struct dq_trustctx *c)
{
	return !c->loose && (st->st_mode & S_IWGRP) && !(st->st_mode & S_IWOTH) &&
	       dotqmail_trust_owner((unsigned long long)st->st_uid, c);
}

enum dq_trust dotqmail_trust(const struct stat *st, const struct dq_trustctx *c)
{
	if (st->st_mode & S_IWOTH)
		return DQ_TRUST_WORLD;
	if (c->loose)
		return DQ_TRUST_OK;
	if (!dotqmail_trust_owner((unsigned long long)st->st_uid, c))
		return DQ_TRUST_OWNER;
	if ((st->st_mode & S_IWGRP) && c->shared_group)
		return DQ_TRUST_GROUP;
	return DQ_TRUST_OK;
}
