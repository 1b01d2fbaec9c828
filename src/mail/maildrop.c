/* maildrop — the local submission file format: envelope helpers, the strict parser and the
 * durable writer. Format and commit rule: maildrop.h and doc/MAILDROP.md.
 * Owns: the bytes of maildrop files, their names, the tmp.* files it creates.
 * Trusts: nothing it parses (any local user can write into the maildrop); the writer checks
 * the caller's envelope with the same rules before writing a byte. */
#include "mail/maildrop.h"
#include "lib/buf.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- envelope helpers --------------------------------------------------------------------- */

void maildrop_env_init(struct maildrop_env *e)
{
	memset(e, 0, sizeof *e);
}

void maildrop_env_free(struct maildrop_env *e)
{
	free(e->sender);
	for (size_t i = 0; i < e->nrcpt; i++)
		free(e->rcpt[i]);
	free(e->rcpt);
	free(e->origin);
	const char *why = e->why;
	maildrop_env_init(e);
	e->why = why;
}

void maildrop_env_set_sender(struct maildrop_env *e, const char *sender)
{
	free(e->sender);
	e->sender = xstrdup(sender);
}

void maildrop_env_set_origin(struct maildrop_env *e, const char *origin)
{
	free(e->origin);
	e->origin = origin ? xstrdup(origin) : NULL;
}

void maildrop_env_add_rcpt(struct maildrop_env *e, const char *rcpt)
{
	if ((e->nrcpt & (e->nrcpt - 1)) == 0)   /* 0, 1, 2, 4, ...: grow to the next power */
		e->rcpt = xrealloc(e->rcpt, (e->nrcpt ? e->nrcpt * 2 : 1) * sizeof *e->rcpt);
	e->rcpt[e->nrcpt++] = xstrdup(rcpt);
}

/* --- value checks ------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0 if malformed. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min, cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; cp = c & 0x1f; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; cp = c & 0x0f; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; cp = c & 0x07; }
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* 0 if s[0..n) is UTF-8 without C0 controls or DEL, else -1 with *why. */
static int value_ok(const char *s, size_t n, const char **why)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		if (u[i] < 0x20 || u[i] == 0x7f) {
			*why = u[i] == 0 ? "NUL byte" : u[i] == '\r' || u[i] == '\n' ?
			    "CR or LF in a value" : "control character in a value";
			return -1;
		}
		size_t k = utf8_seq(u + i, n - i);
		if (k == 0) {
			*why = "malformed UTF-8";
			return -1;
		}
		i += k;
	}
	return 0;
}

int maildrop_addr_ok(const char *a, size_t len, int empty_ok, const char **why)
{
	if (len == 0 && !empty_ok) {
		*why = "empty address";
		return -1;
	}
	if (len > MAILDROP_MAXADDR) {
		*why = "address too long";
		return -1;
	}
	return value_ok(a, len, why);
}

static int env_check(const struct maildrop_env *e, const char **why, int *toolong)
{
	*toolong = 0;
	if (!e->sender || !e->rcpt || e->nrcpt == 0) {
		*why = !e->sender ? "no sender" : "no recipients";
		return -1;
	}
	if (e->nrcpt > MAILDROP_MAXRCPT) {
		*why = "too many recipients";
		*toolong = 1;
		return -1;
	}
	if (e->uid > MAILDROP_MAXUID || e->time < 0 || (uint64_t)e->time > MAILDROP_MAXTIME) {
		*why = "uid or time out of range";
		return -1;
	}
	size_t slen = strlen(e->sender);
	if (maildrop_addr_ok(e->sender, slen, 1, why) < 0) {
		*toolong = slen > MAILDROP_MAXADDR;
		return -1;
	}
	for (size_t i = 0; i < e->nrcpt; i++) {
		size_t rlen = strlen(e->rcpt[i]);
		if (maildrop_addr_ok(e->rcpt[i], rlen, 0, why) < 0) {
			*toolong = rlen > MAILDROP_MAXADDR;
			return -1;
		}
	}
	if (e->origin) {
		size_t olen = strlen(e->origin);
		if (olen == 0 || olen > MAILDROP_MAXORIGIN) {
			*why = "origin empty or too long";
			return -1;
		}
		if (value_ok(e->origin, olen, why) < 0)
			return -1;
	}
	return 0;
}

int maildrop_env_check(struct maildrop_env *e, int *toolong)
{
	int tl;
	const char *why = NULL;
	int r = env_check(e, &why, &tl);
	e->why = why;
	if (toolong)
		*toolong = tl;
	return r;
}

/* --- parser ------------------------------------------------------------------------------- */

#define PARSE_MORE (-2)          /* internal: the buffer ends inside the envelope */
#define LINE_MAX_BYTES (1 + MAILDROP_MAXADDR)

struct pstate {
	const char *buf;
	size_t len, pos;
	const char *why;
};

/* Next line (without its LF) into *l, *n; -1 if longer than max, PARSE_MORE if cut off. */
static int next_line(struct pstate *ps, size_t max, const char **l, size_t *n)
{
	size_t avail = ps->len - ps->pos;
	size_t scan = avail < max + 1 ? avail : max + 1;
	const char *nl = memchr(ps->buf + ps->pos, '\n', scan);
	if (!nl) {
		ps->why = avail > max ? "envelope line too long" : "envelope not terminated";
		return avail > max ? -1 : PARSE_MORE;
	}
	*l = ps->buf + ps->pos;
	*n = (size_t)(nl - *l);
	ps->pos += *n + 1;
	return 0;
}

/* Strict decimal: digits only, no leading zero (except "0"), value <= max. */
static int parse_num(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Read one line that must start with tag; the value goes to *v, *vn. */
static int tagged(struct pstate *ps, char tag, size_t maxval, const char **v, size_t *vn)
{
	const char *l;
	size_t n;
	int r = next_line(ps, maxval + 1, &l, &n);
	if (r < 0)
		return r;
	if (n == 0 || l[0] != tag) {
		ps->why = tag == 'U' ? "missing U line" : tag == 'T' ? "missing T line" :
		    tag == 'F' ? "missing F line" : "missing R line";
		return -1;
	}
	*v = l + 1;
	*vn = n - 1;
	return 0;
}

static int parse_head(struct pstate *ps, struct maildrop_env *e)
{
	size_t ml = sizeof MAILDROP_MAGIC - 1, n;
	const char *v;
	uint64_t num;
	int r;
	if (ps->len < ml) {
		int prefix = ps->len == 0 || memcmp(ps->buf, MAILDROP_MAGIC, ps->len) == 0;
		ps->why = ps->len == 0 ? "empty file" : prefix ? "truncated file" :
		    "not a maildrop file";
		return prefix ? PARSE_MORE : -1;
	}
	if (memcmp(ps->buf, MAILDROP_MAGIC, ml) != 0) {
		ps->why = "not a maildrop file";
		return -1;
	}
	ps->pos = ml;
	if ((r = tagged(ps, 'U', 20, &v, &n)) < 0)
		return r;
	if (parse_num(v, n, MAILDROP_MAXUID, &e->uid) < 0) {
		ps->why = "bad uid";
		return -1;
	}
	if ((r = tagged(ps, 'T', 20, &v, &n)) < 0)
		return r;
	if (parse_num(v, n, MAILDROP_MAXTIME, &num) < 0) {
		ps->why = "bad time";
		return -1;
	}
	e->time = (int64_t)num;
	if ((r = tagged(ps, 'F', MAILDROP_MAXADDR, &v, &n)) < 0)
		return r;
	if (maildrop_addr_ok(v, n, 1, &ps->why) < 0)
		return -1;
	e->sender = xstrndup(v, n);
	return 0;
}

/* R lines, an optional O line, then ".". */
static int parse_tail(struct pstate *ps, struct maildrop_env *e)
{
	const char *l;
	size_t n;
	int r;
	for (;;) {
		if ((r = next_line(ps, LINE_MAX_BYTES, &l, &n)) < 0)
			return r;
		if (n == 1 && l[0] == '.')
			break;
		if (n > 0 && l[0] == 'R' && !e->origin) {
			if (e->nrcpt >= MAILDROP_MAXRCPT) {
				ps->why = "too many recipients";
				return -1;
			}
			if (maildrop_addr_ok(l + 1, n - 1, 0, &ps->why) < 0)
				return -1;
			char *a = xstrndup(l + 1, n - 1);
			maildrop_env_add_rcpt(e, a);
			free(a);
		} else if (n > 0 && l[0] == 'O' && !e->origin && e->nrcpt > 0) {
			if (n - 1 == 0 || n - 1 > MAILDROP_MAXORIGIN ||
			    value_ok(l + 1, n - 1, &ps->why) < 0) {
				ps->why = "bad origin";
				return -1;
			}
			e->origin = xstrndup(l + 1, n - 1);
		} else {
			ps->why = n > 0 && l[0] == 'R' ? "R line after O line" :
			    n > 0 && l[0] == 'O' ? "misplaced or repeated O line" :
			    "unexpected envelope line";
			return -1;
		}
	}
	if (e->nrcpt == 0) {
		ps->why = "no recipients";
		return -1;
	}
	return 0;
}

static int parse(const char *buf, size_t len, struct maildrop_env *e, size_t *off)
{
	struct pstate ps = { buf, len, 0, NULL };
	int r;
	maildrop_env_init(e);
	if ((r = parse_head(&ps, e)) == 0)
		r = parse_tail(&ps, e);
	if (r < 0) {
		maildrop_env_free(e);
		e->why = ps.why ? ps.why : "malformed envelope";
		return r;
	}
	*off = ps.pos;
	return 0;
}

int maildrop_parse_env(const char *buf, size_t len, struct maildrop_env *out,
                       size_t *body_offset)
{
	return parse(buf, len, out, body_offset) == 0 ? 0 : -1;
}

/* pread until b holds want bytes or the file ends; 1 at EOF, 0 not yet, -1 error */
static int fill(int fd, struct buf *b, size_t want)
{
	buf_reserve(b, want - b->len);
	while (b->len < want) {
		ssize_t k = pread(fd, b->p + b->len, want - b->len, (off_t)b->len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			return 1;
		b->len += (size_t)k;
	}
	return 0;
}

int maildrop_parse_fd(int fd, struct maildrop_env *out, off_t *body_offset)
{
	struct buf b;
	size_t want = 16384, off = 0;
	int r;
	buf_init(&b);
	for (;;) {
		int eof = fill(fd, &b, want);
		if (eof < 0) {
			maildrop_env_init(out);
			out->why = "read error";
			r = -1;
			break;
		}
		r = parse(b.p, b.len, out, &off);
		if (r != PARSE_MORE)
			break;
		if (eof || want >= MAILDROP_ENV_MAX)
			break;
		want = want * 2 < MAILDROP_ENV_MAX ? want * 2 : MAILDROP_ENV_MAX;
	}
	buf_free(&b);
	if (r != 0)
		return -1;
	*body_offset = (off_t)off;
	return 0;
}

/* --- writer ------------------------------------------------------------------------------- */

#define W_BUFSZ 65536

struct maildrop_w {
	struct maildrop_err *err;
	char dir[PATH_MAX - 128];
	char tmp[PATH_MAX];
	char name[MAILDROP_IDSZ];
	int fd;              /* tmp.<name> */
	int hold;            /* message held until the envelope is known, or -1 */
	int dirfd;           /* the maildrop directory, or -1 when not readable (use syncfs) */
	int have_env;
	int pending_cr;      /* a CR ended the last put */
	int last;            /* last message byte written, -1 none */
	unsigned counter;
	size_t olen;
	char obuf[W_BUFSZ];
};

static int w_fail(struct maildrop_w *w, int kind, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int w_fail(struct maildrop_w *w, int kind, int e, const char *fmt, ...)
{
	va_list ap;
	if (w->err->kind != MAILDROP_OK)
		return -1;          /* keep the first failure */
	w->err->kind = kind;
	w->err->sys_errno = e;
	va_start(ap, fmt);
	vsnprintf(w->err->text, sizeof w->err->text, fmt, ap);
	va_end(ap);
	return -1;
}

static uint64_t w_random(void)
{
	uint64_t r;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
		return r;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
}

/* name = sec.usec.pid.counter.random, all hex: unique, unguessable, never "tmp." */
static void w_newname(struct maildrop_w *w)
{
	static unsigned counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(w->name, sizeof w->name, "%llx.%05lx.%lx.%x.%016llx",
	    (unsigned long long)ts.tv_sec, (unsigned long)(ts.tv_nsec / 1000),
	    (unsigned long)getpid(), counter++, (unsigned long long)w_random());
}

static int w_writeall(struct maildrop_w *w, int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return w_fail(w, MAILDROP_EWRITE, k < 0 ? errno : EIO,
			    "cannot write %s: %s", w->tmp, strerror(k < 0 ? errno : EIO));
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int w_flush(struct maildrop_w *w)
{
	int target = w->have_env ? w->fd : w->hold;
	size_t n = w->olen;
	w->olen = 0;
	return w_writeall(w, target, w->obuf, n);
}

static int w_out(struct maildrop_w *w, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (w->olen + n > sizeof w->obuf && w_flush(w) < 0)
		return -1;
	if (n >= sizeof w->obuf)
		return w_writeall(w, w->have_env ? w->fd : w->hold, p, n);
	memcpy(w->obuf + w->olen, p, n);
	w->olen += n;
	return 0;
}

static int w_env(struct maildrop_w *w, const struct maildrop_env *e)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%sU%llu\nT%lld\nF%s\n", MAILDROP_MAGIC, (unsigned long long)e->uid,
	    (long long)e->time, e->sender);
	for (size_t i = 0; i < e->nrcpt; i++)
		buf_printf(&b, "R%s\n", e->rcpt[i]);
	if (e->origin)
		buf_printf(&b, "O%s\n", e->origin);
	buf_adds(&b, ".\n");
	int r = w_writeall(w, w->fd, b.p, b.len);
	buf_free(&b);
	return r;
}

static int w_openhold(struct maildrop_w *w)
{
	w->hold = open(w->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (w->hold >= 0)
		return 0;
	char p[PATH_MAX + 16];
	snprintf(p, sizeof p, "%s.hold", w->tmp);
	w->hold = open(p, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->hold < 0)
		return w_fail(w, MAILDROP_ECREATE, errno, "cannot create %s: %s", p,
		    strerror(errno));
	unlink(p);
	return 0;
}

static int w_opendir(struct maildrop_w *w, const char *spool)
{
	int n = snprintf(w->dir, sizeof w->dir, "%s/%s", spool, MAILDROP_DIR);
	if (n < 0 || (size_t)n >= sizeof w->dir)
		return w_fail(w, MAILDROP_ENOQUEUE, ENAMETOOLONG, "spool path too long");
	struct stat st;
	int e = stat(w->dir, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	if (e) {
		return w_fail(w, MAILDROP_ENOQUEUE, e, "maildrop directory %s: %s (is the spool "
		    "installed? it must exist with mode 1733)", w->dir, strerror(e));
	}
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0 && errno != EACCES)
		return w_fail(w, MAILDROP_ENOQUEUE, errno, "cannot open %s: %s", w->dir,
		    strerror(errno));
	return 0;
}

static int w_create(struct maildrop_w *w)
{
	for (int tries = 0; tries < 100; tries++) {
		w_newname(w);
		snprintf(w->tmp, sizeof w->tmp, "%s/tmp.%s", w->dir, w->name);
		w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    MAILDROP_FILE_MODE);
		if (w->fd >= 0)
			break;
		int e = errno;
		if (e == EEXIST)
			continue;
		w->tmp[0] = '\0';
		if (e == EACCES || e == EPERM || e == ENOENT || e == ENOTDIR)
			return w_fail(w, MAILDROP_ENOQUEUE, e, "cannot create a file in %s: %s",
			    w->dir, strerror(e));
		return w_fail(w, MAILDROP_ECREATE, e, "cannot create a file in %s: %s", w->dir,
		    strerror(e));
	}
	if (w->fd < 0) {
		w->tmp[0] = '\0';
		return w_fail(w, MAILDROP_ECREATE, EEXIST, "no free name in %s", w->dir);
	}
	if (fchmod(w->fd, MAILDROP_FILE_MODE) < 0)
		return w_fail(w, MAILDROP_EWRITE, errno, "chmod %s: %s", w->tmp, strerror(errno));
	return 0;
}

int maildrop_open(struct maildrop_w **wp, const char *spool, const struct maildrop_env *env,
                  struct maildrop_err *err)
{
	struct maildrop_w *w = xcalloc(1, sizeof *w);
	w->err = err;
	w->fd = w->hold = w->dirfd = -1;
	w->last = -1;
	memset(err, 0, sizeof *err);
	*wp = NULL;
	const char *why = NULL;
	int toolong;
	if (env && env_check(env, &why, &toolong) < 0) {
		w_fail(w, toolong ? MAILDROP_ETOOLONG : MAILDROP_EENV, 0, "bad envelope: %s", why);
		maildrop_abort(w);
		return -1;
	}
	if (w_opendir(w, spool) < 0 || w_create(w) < 0 ||
	    (env ? maildrop_set_env(w, env) : w_openhold(w)) < 0) {
		maildrop_abort(w);
		return -1;
	}
	*wp = w;
	return 0;
}

static int w_copyhold(struct maildrop_w *w)
{
	char b[W_BUFSZ];
	off_t off = 0;
	for (;;) {
		ssize_t k = copy_file_range(w->hold, &off, w->fd, NULL, 1 << 30, 0);
		if (k == 0)
			return 0;
		if (k > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return w_fail(w, MAILDROP_EWRITE, errno, "cannot copy into %s: %s", w->tmp,
			    strerror(errno));
		break;
	}
	for (;;) {        /* the portable way */
		ssize_t k = pread(w->hold, b, sizeof b, off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return w_fail(w, MAILDROP_EWRITE, errno, "cannot read the held message: %s",
			    strerror(errno));
		if (k == 0)
			return 0;
		if (w_writeall(w, w->fd, b, (size_t)k) < 0)
			return -1;
		off += k;
	}
}

int maildrop_set_env(struct maildrop_w *w, const struct maildrop_env *env)
{
	const char *why = NULL;
	int toolong;
	if (w->have_env)
		return w_fail(w, MAILDROP_EINTERNAL, 0, "envelope given twice");
	if (env_check(env, &why, &toolong) < 0)
		return w_fail(w, toolong ? MAILDROP_ETOOLONG : MAILDROP_EENV, 0,
		    "bad envelope: %s", why);
	if (w->hold >= 0 && w_flush(w) < 0)
		return -1;
	w->have_env = 1;
	if (w_env(w, env) < 0)
		return -1;
	if (w->hold >= 0) {
		int r = w_copyhold(w);
		close(w->hold);
		w->hold = -1;
		if (r < 0)
			return -1;
	}
	return 0;
}

int maildrop_put(struct maildrop_w *w, const void *vp, size_t n)
{
	const char *p = vp, *end = p + n;
	if (n == 0)
		return 0;
	if (w->pending_cr) {
		w->pending_cr = 0;
		if (*p != '\n' && w_out(w, "\r", 1) < 0)
			return -1;
	}
	while (p < end) {
		const char *cr = memchr(p, '\r', (size_t)(end - p));
		const char *stop = cr ? cr : end;
		if (w_out(w, p, (size_t)(stop - p)) < 0)
			return -1;
		if (!cr)
			break;
		if (cr + 1 == end) {          /* decide when the next byte comes */
			w->pending_cr = 1;
			p = end;
			break;
		}
		if (cr[1] != '\n' && w_out(w, "\r", 1) < 0)
			return -1;
		p = cr + 1;
	}
	w->last = w->pending_cr ? '\r' : (unsigned char)end[-1];
	return 0;
}

int maildrop_put_fd(struct maildrop_w *w, int fd)
{
	char b[W_BUFSZ];
	for (;;) {
		ssize_t k = read(fd, b, sizeof b);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return w_fail(w, MAILDROP_EREAD, errno, "cannot read the message: %s",
			    strerror(errno));
		if (k == 0)
			return 0;
		if (maildrop_put(w, b, (size_t)k) < 0)
			return -1;
	}
}

const char *maildrop_tmppath(const struct maildrop_w *w)
{
	return w ? w->tmp : "";
}

/* rename tmp -> name without ever replacing a file; on a clash pick another name */
static int w_rename(struct maildrop_w *w, char *final, size_t finalsz)
{
	for (int tries = 0; tries < 100; tries++) {
		snprintf(final, finalsz, "%s/%s", w->dir, w->name);
		if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EINVAL || errno == ENOSYS) {     /* no RENAME_NOREPLACE here */
			if (link(w->tmp, final) == 0) {
				unlink(w->tmp);
				return 0;
			}
		}
		if (errno != EEXIST)
			return w_fail(w, MAILDROP_EWRITE, errno, "cannot rename %s: %s", w->tmp,
			    strerror(errno));
		w_newname(w);
	}
	return w_fail(w, MAILDROP_EWRITE, EEXIST, "no free name in %s", w->dir);
}

static int w_finish(struct maildrop_w *w)
{
	/* a CR at the very end is a cut-off CRLF: it ends the last line like the LF would */
	if ((w->pending_cr || (w->last != -1 && w->last != '\n')) && w_out(w, "\n", 1) < 0)
		return -1;
	if (w_flush(w) < 0)
		return -1;
	if (fsync(w->fd) < 0)
		return w_fail(w, MAILDROP_EWRITE, errno, "fsync %s: %s", w->tmp, strerror(errno));
	return 0;
}

int maildrop_commit(struct maildrop_w *w, char *idout, size_t idoutsz)
{
	char final[PATH_MAX + MAILDROP_IDSZ];
	if (!w->have_env) {
		w_fail(w, MAILDROP_EINTERNAL, 0, "commit without an envelope");
		maildrop_abort(w);
		return -1;
	}
	if (w_finish(w) < 0 || w_rename(w, final, sizeof final) < 0) {
		maildrop_abort(w);
		return -1;
	}
	w->tmp[0] = '\0';                  /* renamed: nothing to clean up under that name */
	int r = w->dirfd >= 0 ? fsync(w->dirfd) : syncfs(w->fd);
	if (r < 0) {
		w_fail(w, MAILDROP_EWRITE, errno, "cannot sync %s: %s", w->dir, strerror(errno));
		unlink(final);                 /* not acknowledged: better not delivered */
		maildrop_abort(w);
		return -1;
	}
	if (idout && idoutsz)
		snprintf(idout, idoutsz, "%s", w->name);
	maildrop_abort(w);
	return 0;
}

void maildrop_abort(struct maildrop_w *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->hold >= 0)
		close(w->hold);
	if (w->dirfd >= 0)
		close(w->dirfd);
	if (w->tmp[0])
		unlink(w->tmp);
	free(w);
}

int maildrop_write(const char *spool, const struct maildrop_env *env, int msgfd,
                   const char *msg, size_t msglen, char *idout, size_t idoutsz,
                   struct maildrop_err *err)
{
	struct maildrop_w *w;
	if (maildrop_open(&w, spool, env, err) < 0)
		return -1;
	if ((msglen && maildrop_put(w, msg, msglen) < 0) ||
	    (msgfd >= 0 && maildrop_put_fd(w, msgfd) < 0)) {
		maildrop_abort(w);
		return -1;
	}
	return maildrop_commit(w, idout, idoutsz);
}

const char *maildrop_config_path(void)
{
	const char *p = getenv("TERN_CONF");
	if (p && *p)
		return p;
	if (access("/etc/tern/tern.conf", F_OK) == 0)
		return "/etc/tern/tern.conf";
	return NULL;
}
