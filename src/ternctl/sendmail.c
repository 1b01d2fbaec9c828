/* sendmail — local submission with sendmail's command line, into the maildrop.
 * Owns: the options table, the header pass (recipients for -t, Bcc removal, the From:, Date:
 * and Message-ID: it adds), the dot rule without -i, and the sysexits.h exit codes.
 * Trusts: nothing on stdin or the command line (any local user runs it); the spool path and
 * `me` come from the config file (-C, $TERN_CONF, /etc/tern/tern.conf or the development
 * default). The queue trusts the file's owner, not anything written here.
 *
 * -bs: an SMTP dialogue on stdin/stdout, in sendmail_smtp.c (src/mail/sendmail_bs.[ch]
 * decides every reply); each message is committed into the maildrop before its 250.
 * -q: runs `ternctl flush` from this binary's directory. sendmail_int.h is what the two
 * files share.
 *
 * Exit codes: 0 queued (-bs: end of input or QUIT; -q: flush requested); 64 bad option or no
 * recipients; 65 bad address; 66 stdin unreadable; 70 internal error; 71 system error (no
 * passwd entry, exec failed); 73 cannot create the file; 74 -bs could not write a reply;
 * 75 maildrop missing, disk full or config unusable (try again later), -q: ternd does not
 * run; 77 permission denied on the maildrop. */
#include "ternctl/sendmail.h"
#include "ternctl/sendmail_int.h"
#include "lib/buf.h"
#include "mail/config.h"
#include "mail/digest.h"
#include "mail/maildrop.h"
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define SM_MAXHDR (1024 * 1024)    /* header bytes kept as header; the rest becomes body */

int sm_fail(int code, const char *fmt, ...)
{
	va_list ap;
	fputs("sendmail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* --- options ----------------------------------------------------------------------------- */

/* Every letter sendmail-compatible callers use. arg: 1 = takes an argument. */
struct sm_opt {
	char letter;
	int arg;
	int (*fn)(struct sm_opts *o, const char *arg);
};

#define UNUSED __attribute__((unused))
static int opt_ignore(UNUSED struct sm_opts *o, UNUSED const char *a) { return 0; }
static int opt_t(struct sm_opts *o, UNUSED const char *a) { o->t = 1; return 0; }
static int opt_i(struct sm_opts *o, UNUSED const char *a) { o->i = 1; return 0; }
static int opt_v(struct sm_opts *o, UNUSED const char *a) { o->verbose = 1; return 0; }
static int opt_f(struct sm_opts *o, const char *a) { o->sender = a; return 0; }
static int opt_F(struct sm_opts *o, const char *a) { o->fullname = a; return 0; }
static int opt_C(struct sm_opts *o, const char *a) { o->conf = a; return 0; }
static int opt_I(struct sm_opts *o, UNUSED const char *a) { o->mode = 'i'; return 0; }
static int opt_q(struct sm_opts *o, const char *a) { o->mode = 'q'; o->qarg = a; return 0; }

static int opt_o(struct sm_opts *o, const char *a)
{
	if (strcmp(a, "i") == 0)       /* -oi; every other -o<x> is an old knob we ignore */
		o->i = 1;
	return 0;
}

static int opt_b(struct sm_opts *o, const char *a)
{
	if (strlen(a) != 1 || !strchr("mpsi", a[0]))
		return sm_fail(EX_USAGE, "-b%s is not supported", a);
	o->mode = a[0];
	return 0;
}

static const struct sm_opt sm_opts_table[] = {
	{ 'A', 1, opt_ignore }, { 'B', 1, opt_ignore }, { 'C', 1, opt_C },
	{ 'F', 1, opt_F }, { 'G', 0, opt_ignore }, { 'I', 0, opt_I },
	{ 'L', 1, opt_ignore }, { 'N', 1, opt_ignore }, { 'O', 1, opt_ignore },
	{ 'R', 1, opt_ignore }, { 'U', 0, opt_ignore }, { 'V', 1, opt_ignore },
	{ 'X', 1, opt_ignore }, { 'b', 1, opt_b }, { 'c', 0, opt_ignore },
	{ 'e', 1, opt_ignore }, { 'f', 1, opt_f }, { 'h', 1, opt_ignore },
	{ 'i', 0, opt_i }, { 'm', 0, opt_ignore }, { 'n', 0, opt_ignore },
	{ 'o', 1, opt_o }, { 'p', 1, opt_ignore }, { 'r', 1, opt_f },
	{ 't', 0, opt_t }, { 'v', 0, opt_v }, { 'x', 0, opt_ignore },
};

static const struct sm_opt *sm_opt_find(char c)
{
	for (size_t i = 0; i < sizeof sm_opts_table / sizeof sm_opts_table[0]; i++)
		if (sm_opts_table[i].letter == c)
			return &sm_opts_table[i];
	return NULL;
}

/* getopt-style: clustered flags, -xARG or -x ARG; stops at "--" or the first non-option.
 * -q takes only an attached argument (-q, -q30m). Returns 0 and *first = first recipient. */
static int sm_parse_opts(int argc, char **argv, struct sm_opts *o, int *first)
{
	int ai = 1;
	for (; ai < argc && argv[ai][0] == '-' && argv[ai][1]; ai++) {
		if (strcmp(argv[ai], "--") == 0) {
			ai++;
			break;
		}
		for (const char *p = argv[ai] + 1; *p; p++) {
			const struct sm_opt *op = sm_opt_find(*p);
			if (*p == 'q') {
				opt_q(o, p + 1);
				break;
			}
			if (!op)
				return sm_fail(EX_USAGE, "unknown option -%c", *p);
			const char *arg = NULL;
			if (op->arg) {
				arg = p[1] ? p + 1 : (ai + 1 < argc ? argv[++ai] : NULL);
				if (!arg)
					return sm_fail(EX_USAGE, "option -%c needs an argument", *p);
			}
			if (op->fn(o, arg ? arg : "") != 0)
				return EX_USAGE;
			if (op->arg)
				break;
		}
	}
	*first = ai;
	return 0;
}

/* --- addresses --------------------------------------------------------------------------- */

struct sm_al {
	struct buf plain, angle;
	int has_angle;
};

static void sm_al_finish(struct sm_al *a, struct maildrop_env *out)
{
	struct buf *src = a->has_angle ? &a->angle : &a->plain;
	const char *p = src->len ? src->p : "";
	size_t n = src->len;
	if (a->has_angle && n && p[0] == '@') {          /* drop a source route @a,@b: */
		const char *colon = memchr(p, ':', n);
		if (colon) {
			n -= (size_t)(colon + 1 - p);
			p = colon + 1;
		}
	}
	if (n) {
		char *s = xstrndup(p, n);
		maildrop_env_add_rcpt(out, s);
		free(s);
	}
	buf_reset(&a->plain);
	buf_reset(&a->angle);
	a->has_angle = 0;
}

/* copy a "quoted string" or [domain literal] starting at s[i] verbatim; returns its end */
static size_t sm_al_copy(const char *s, size_t n, size_t i, char close, struct buf *dst)
{
	buf_addc(dst, s[i]);
	for (i++; i < n && s[i] != close; i++) {
		if (s[i] == '\\' && i + 1 < n)
			buf_addc(dst, s[i++]);
		buf_addc(dst, s[i]);
	}
	buf_addc(dst, close);
	return i;
}

static size_t sm_al_comment(const char *s, size_t n, size_t i)
{
	int depth = 0;
	for (; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && --depth == 0)
			break;
	}
	return i;
}

/* RFC 5322 address-list (with groups, comments, display names) -> addr-specs in out */
static void sm_addrlist(const char *s, size_t n, struct maildrop_env *out)
{
	struct sm_al a;
	int inangle = 0;
	memset(&a, 0, sizeof a);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		struct buf *dst = inangle ? &a.angle : &a.plain;
		if (c == '"' || c == '[')
			i = sm_al_copy(s, n, i, c == '"' ? '"' : ']', dst);
		else if (c == '(')
			i = sm_al_comment(s, n, i);
		else if (c == '<' && !inangle) {
			inangle = a.has_angle = 1;
			buf_reset(&a.angle);
		} else if (c == '>' && inangle)
			inangle = 0;
		else if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		else if (inangle)
			buf_addc(&a.angle, c);
		else if (c == ',' || c == ';')
			sm_al_finish(&a, out);
		else if (c == ':')
			buf_reset(&a.plain);        /* a group's display name */
		else
			buf_addc(&a.plain, c);
	}
	sm_al_finish(&a, out);
	buf_free(&a.plain);
	buf_free(&a.angle);
}

static int sm_check_rcpts(const struct maildrop_env *e)
{
	const char *why;
	if (e->nrcpt > MAILDROP_MAXRCPT)
		return sm_fail(EX_DATAERR, "too many recipients (at most %d)", MAILDROP_MAXRCPT);
	for (size_t i = 0; i < e->nrcpt; i++)
		if (maildrop_addr_ok(e->rcpt[i], strlen(e->rcpt[i]), 0, &why) < 0)
			return sm_fail(EX_DATAERR, "bad recipient address: %s", why);
	return 0;
}

/* a command-line value may not hide line breaks or controls in what parsing would skip */
static int sm_arg_ok(const char *arg, const char *what)
{
	for (const unsigned char *p = (const unsigned char *)arg; *p; p++)
		if (*p < 32 && *p != ' ')
			return sm_fail(EX_DATAERR, "bad %s address: control character", what);
	return 0;
}

/* -f value: "" and "<>" are the null sender; otherwise exactly one address */
static int sm_sender(const char *arg, char **out)
{
	struct maildrop_env l;
	const char *why;
	if (sm_arg_ok(arg, "sender"))
		return EX_DATAERR;
	maildrop_env_init(&l);
	sm_addrlist(arg, strlen(arg), &l);
	if (l.nrcpt > 1) {
		maildrop_env_free(&l);
		return sm_fail(EX_DATAERR, "bad sender address: more than one address");
	}
	*out = xstrdup(l.nrcpt ? l.rcpt[0] : "");
	maildrop_env_free(&l);
	if (maildrop_addr_ok(*out, strlen(*out), 1, &why) < 0) {
		free(*out);
		*out = NULL;
		return sm_fail(EX_DATAERR, "bad sender address: %s", why);
	}
	return 0;
}

/* --- input ------------------------------------------------------------------------------- */

void sm_flush_out(struct sm_in *in)
{
	size_t off = 0;
	while (in->out && off < in->out->len && !in->outerr) {
		ssize_t w = write(1, in->out->p + off, in->out->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			in->outerr = w < 0 ? errno : EIO;
		else
			off += (size_t)w;
	}
	if (in->out)
		buf_reset(in->out);
}

int sm_piece(struct sm_in *in, const char **p, size_t *n, int *bol)
{
	for (;;) {
		size_t avail = in->len - in->pos;
		char *nl = memchr(in->b + in->pos, '\n', avail);
		if (nl || in->eof || avail == sizeof in->b) {
			if (!nl && avail == 0)
				return 0;
			size_t k = nl ? (size_t)(nl - (in->b + in->pos)) + 1 : avail;
			*p = in->b + in->pos;
			*n = k;
			*bol = in->bol;
			in->pos += k;
			in->bol = nl != NULL;
			return 1;
		}
		memmove(in->b, in->b + in->pos, avail);
		in->len = avail;
		in->pos = 0;
		sm_flush_out(in);           /* pipelining: answer what we have before waiting */
		ssize_t r = read(in->fd, in->b + in->len, sizeof in->b - in->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			in->eof = 1;
		in->len += r > 0 ? (size_t)r : 0;
	}
}

size_t sm_trim_eol(const char *p, size_t n)
{
	if (n && p[n - 1] == '\n')
		n--;
	if (n && p[n - 1] == '\r')
		n--;
	return n;
}

static int sm_is_dot(const struct sm_opts *o, const char *p, size_t n, int bol)
{
	return !o->i && bol && sm_trim_eol(p, n) == 1 && p[0] == '.';
}

/* --- the header pass --------------------------------------------------------------------- */

enum sm_end { SM_BLANK, SM_BODYLINE, SM_EOF, SM_DOT };

struct sm_hdr {
	struct buf out;                /* header fields kept, LF endings */
	struct buf cur;                /* the field being read (with continuations) */
	struct maildrop_env to, resent;   /* -t recipients: plain and Resent- fields */
	int has_from, has_date, has_msgid;
	enum sm_end end;
	const char *pending;           /* SM_BODYLINE: the first body piece */
	size_t npending;
};

/* "name:" at the start of a line -> length of name, else 0 */
static size_t sm_hdr_name(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] > 32 && p[i] < 127 && p[i] != ':')
		i++;
	size_t name = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return name > 0 && i < n && p[i] == ':' ? name : 0;
}

static int sm_name_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && str_ncasecmp(p, name, n) == 0;
}

/* a complete field is in h->cur: note it, collect -t recipients, keep it unless Bcc */
static void sm_hdr_field(struct sm_hdr *h)
{
	const char *p = h->cur.p;
	size_t n = sm_hdr_name(p, h->cur.len);
	const char *v = memchr(p, ':', h->cur.len) + 1;
	size_t vn = h->cur.len - (size_t)(v - p);
	static const char *const rc[] = { "To", "Cc", "Bcc" };
	h->has_from |= sm_name_is(p, n, "From");
	h->has_date |= sm_name_is(p, n, "Date");
	h->has_msgid |= sm_name_is(p, n, "Message-ID");
	for (int k = 0; k < 3; k++) {
		if (sm_name_is(p, n, rc[k]))
			sm_addrlist(v, vn, &h->to);
		if (n == 7 + strlen(rc[k]) && str_ncasecmp(p, "Resent-", 7) == 0 &&
		    sm_name_is(p + 7, n - 7, rc[k]))
			sm_addrlist(v, vn, &h->resent);
	}
	if (!sm_name_is(p, n, "Bcc") && !sm_name_is(p, n, "Resent-Bcc"))
		buf_add(&h->out, h->cur.p, h->cur.len);
	buf_reset(&h->cur);
}

/* one line of the header section; returns 1 when the section has ended */
static int sm_hdr_line(struct sm_hdr *h, const struct sm_opts *o, const char *p, size_t n,
                       int bol, int first)
{
	size_t t = sm_trim_eol(p, n);
	int whole = (n && p[n - 1] == '\n') || n < SM_BUFSZ;   /* short and unterminated = EOF */
	if (first && t >= 5 && memcmp(p, "From ", 5) == 0 && whole)
		return 0;                      /* an mbox "From " line: drop it */
	if (sm_is_dot(o, p, n, bol))
		h->end = SM_DOT;
	else if (whole && t == 0)
		h->end = SM_BLANK;
	else if (whole && h->out.len + h->cur.len + n <= SM_MAXHDR &&
	         (p[0] == ' ' || p[0] == '\t') && h->cur.len) {
		buf_add(&h->cur, p, t);
		buf_addc(&h->cur, '\n');
		return 0;
	} else if (whole && h->out.len + h->cur.len + n <= SM_MAXHDR && sm_hdr_name(p, t)) {
		if (h->cur.len)
			sm_hdr_field(h);
		buf_add(&h->cur, p, t);
		buf_addc(&h->cur, '\n');
		return 0;
	} else {
		h->end = SM_BODYLINE;
		h->pending = p;
		h->npending = n;
	}
	return 1;
}

/* Read the header section. 0, or an exit code. */
static int sm_read_header(struct sm_in *in, const struct sm_opts *o, struct sm_hdr *h)
{
	const char *p;
	size_t n;
	int bol, r, first = 1;
	h->end = SM_EOF;
	while ((r = sm_piece(in, &p, &n, &bol)) == 1) {
		if (sm_hdr_line(h, o, p, n, bol, first))
			break;
		first = 0;
	}
	if (r < 0)
		return sm_fail(EX_NOINPUT, "cannot read the message: %s", strerror(errno));
	if (h->cur.len)
		sm_hdr_field(h);
	return 0;
}

/* --- added header fields ----------------------------------------------------------------- */

static int sm_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    strchr("!#$%&'*+-/=?^_`{|}~ ", c) != NULL;
}

/* -F name as a display name: plain, "quoted", or RFC 2047 words (UTF-8, base64) */
static void sm_display(struct buf *b, const char *name)
{
	struct buf clean;
	int eight = 0, special = 0;
	buf_init(&clean);
	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		if (*s < 32 || *s == 127)
			continue;
		eight |= *s >= 128;
		special |= *s < 128 && !sm_atext(*s);
		buf_addc(&clean, (char)*s);
	}
	const unsigned char *s = (const unsigned char *)(clean.len ? clean.p : "");
	if (eight) {
		for (size_t i = 0; i < clean.len;) {
			size_t k = clean.len - i < 45 ? clean.len - i : 45;
			while (k > 1 && i + k < clean.len && (s[i + k] & 0xc0) == 0x80)
				k--;                  /* never split a UTF-8 sequence */
			buf_adds(b, i ? " =?UTF-8?B?" : "=?UTF-8?B?");
			digest_b64_encode(b, s + i, k);
			buf_adds(b, "?=");
			i += k;
		}
	} else if (special) {
		buf_addc(b, '"');
		for (size_t i = 0; i < clean.len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				buf_addc(b, '\\');
			buf_addc(b, (char)s[i]);
		}
		buf_addc(b, '"');
	} else
		buf_add(b, s, clean.len);
	buf_free(&clean);
}

void sm_added(struct buf *b, int has_from, int has_date, int has_msgid,
              const struct sm_opts *o, const char *user, const char *me)
{
	time_t now = time(NULL);
	struct tm tm;
	char date[64];
	uint64_t r = 0;
	if (!has_from) {
		buf_adds(b, "From: ");
		if (o->fullname && *o->fullname) {
			sm_display(b, o->fullname);
			buf_printf(b, " <%s@%s>\n", user, me);
		} else
			buf_printf(b, "%s@%s\n", user, me);
	}
	localtime_r(&now, &tm);
	if (!has_date) {
		strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
		buf_printf(b, "Date: %s\n", date);
	}
	if (!has_msgid) {
		if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
			r = (uint64_t)now ^ ((uint64_t)getpid() << 32);
		strftime(date, sizeof date, "%Y%m%d%H%M%S", &tm);
		buf_printf(b, "Message-ID: <%s.%lu.%016llx@%s>\n", date, (unsigned long)getpid(),
		    (unsigned long long)r, me);
	}
}

/* --- writing ----------------------------------------------------------------------------- */

static char sm_tmp[4200];          /* removed by a signal that interrupts the write */

static void sm_signal(int sig)
{
	(void)sig;
	if (sm_tmp[0])
		unlink(sm_tmp);
	_exit(EX_TEMPFAIL);
}

void sm_signals(int block)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL);
}

void sm_set_tmp(const char *path)
{
	snprintf(sm_tmp, sizeof sm_tmp, "%s", path);
}

static int sm_maildrop_exit(const struct maildrop_err *err)
{
	int e = err->sys_errno;
	sm_fail(0, "%s", err->text);
	switch (err->kind) {
	case MAILDROP_ENOQUEUE: return e == EACCES || e == EPERM ? EX_NOPERM : EX_TEMPFAIL;
	case MAILDROP_ECREATE: return e == ENOSPC || e == EDQUOT ? EX_TEMPFAIL : EX_CANTCREAT;
	case MAILDROP_EWRITE: return EX_TEMPFAIL;
	case MAILDROP_EREAD: return EX_NOINPUT;
	case MAILDROP_EENV: case MAILDROP_ETOOLONG: return EX_DATAERR;
	default: return EX_SOFTWARE;
	}
}

/* the rest of stdin, up to EOF or the dot line */
static int sm_body(struct maildrop_w *w, struct sm_in *in, const struct sm_opts *o)
{
	const char *p;
	size_t n;
	int bol, r;
	while ((r = sm_piece(in, &p, &n, &bol)) == 1) {
		if (sm_is_dot(o, p, n, bol))
			return 0;
		if (maildrop_put(w, p, n) < 0)
			return -1;
	}
	if (r < 0)
		return sm_fail(EX_NOINPUT, "cannot read the message: %s", strerror(errno));
	return 0;
}

struct sm_ctx {
	struct sm_opts o;
	struct config cfg;
	struct maildrop_env env;
	struct sm_hdr h;
	struct sm_in in;
	const char *user;
};

/* open, write header + added fields + body, commit. Returns the exit code. */
static int sm_write(struct sm_ctx *c)
{
	struct maildrop_err err;
	struct maildrop_w *w;
	struct buf b;
	char id[MAILDROP_IDSZ];
	sm_signals(1);
	if (maildrop_open(&w, c->cfg.spool, &c->env, &err) < 0) {
		sm_signals(0);
		return sm_maildrop_exit(&err);
	}
	snprintf(sm_tmp, sizeof sm_tmp, "%s", maildrop_tmppath(w));
	sm_signals(0);
	buf_init(&b);
	buf_add(&b, c->h.out.p, c->h.out.len);
	sm_added(&b, c->h.has_from, c->h.has_date, c->h.has_msgid, &c->o, c->user, c->cfg.me);
	if (c->h.end == SM_BLANK || c->h.end == SM_BODYLINE)
		buf_addc(&b, '\n');
	if (c->h.end == SM_BODYLINE)
		buf_add(&b, c->h.pending, c->h.npending);
	int r = maildrop_put(w, b.p, b.len);
	buf_free(&b);
	if (r == 0 && (c->h.end == SM_BLANK || c->h.end == SM_BODYLINE) &&
	    (r = sm_body(w, &c->in, &c->o)) > 0) {
		maildrop_abort(w);
		sm_tmp[0] = '\0';
		return r;
	}
	sm_signals(1);
	r = r < 0 ? (maildrop_abort(w), -1) : maildrop_commit(w, id, sizeof id);
	sm_tmp[0] = '\0';
	sm_signals(0);
	if (r < 0)
		return sm_maildrop_exit(&err);
	if (c->o.verbose)
		fprintf(stderr, "sendmail: queued as %s\n", id);
	return EX_OK;
}

/* sendmail -q: `ternctl flush` next to this binary (the scheduler retries everything now).
 * -q<interval> (sendmail's daemon mode) is accepted and ignored. 0, or 75 when ternd does not
 * run (or flush failed otherwise), 71 when ternctl cannot be run. */
static int sm_flush(const struct sm_ctx *c)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	const char *q = c->o.qarg ? c->o.qarg : "";
	if (*q && *q != 'R' && *q != 'S' && *q != 'I') {
		fprintf(stderr, "sendmail: -q%s: queue run intervals are ignored; ternd retries on its "
		    "own schedule\n", q);
		return EX_OK;
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return sm_fail(EX_OSERR, "cannot find my own binary: %s", strerror(errno));
	self[n] = '\0';
	snprintf(path, sizeof path, "%s/ternctl", dirname(self));
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return sm_fail(EX_OSERR, "fork: %s", strerror(errno));
	if (pid == 0) {
		char *args[] = { (char *)"ternctl", (char *)"flush", NULL };
		if (c->o.conf)
			setenv("TERN_CONF", c->o.conf, 1);
		execv(path, args);
		fprintf(stderr, "sendmail: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return sm_fail(EX_OSERR, "waitpid: %s", strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return EX_OK;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return EX_OSERR;
	return EX_TEMPFAIL;
}

/* --- modes other than delivery ---------------------------------------------------------- */

static int sm_exec_sibling(const char *name)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return sm_fail(EX_OSERR, "cannot find my own binary: %s", strerror(errno));
	self[n] = '\0';
	snprintf(path, sizeof path, "%s/%s", dirname(self), name);
	char *args[] = { (char *)name, NULL };
	execv(path, args);
	return sm_fail(EX_OSERR, "cannot run %s: %s", path, strerror(errno));
}

static int sm_other_mode(char mode)
{
	switch (mode) {
	case 'p': return sm_exec_sibling("mailq");
	case 'i': return sm_exec_sibling("newaliases");
	}
	return EX_SOFTWARE;
}

/* --- main -------------------------------------------------------------------------------- */

static int sm_setup(struct sm_ctx *c, int argc, char **argv, int first)
{
	struct cfg_errors errs;
	const char *path = c->o.conf ? c->o.conf : maildrop_config_path();
	if (config_load(&c->cfg, path, &errs) < 0) {
		for (int i = 0; i < errs.n && i < CFG_MAXERRS; i++)
			sm_fail(0, "%s:%d: %s", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
		return EX_TEMPFAIL;
	}
	struct passwd *pw = getpwuid(getuid());
	c->user = pw ? xstrdup(pw->pw_name) : NULL;
	for (int i = first; i < argc; i++) {
		if (sm_arg_ok(argv[i], "recipient"))
			return EX_DATAERR;
		sm_addrlist(argv[i], strlen(argv[i]), &c->env);
	}
	if (!c->o.t && c->env.nrcpt == 0)
		return sm_fail(EX_USAGE, "no recipients given (use -t to read them from the header)");
	if (c->o.sender) {
		int r = sm_sender(c->o.sender, &c->env.sender);
		if (r)
			return r;
	} else if (!c->user)
		return sm_fail(EX_OSERR, "no passwd entry for uid %lu", (unsigned long)getuid());
	else {
		c->env.sender = xmalloc(strlen(c->user) + strlen(c->cfg.me) + 2);
		snprintf(c->env.sender, strlen(c->user) + strlen(c->cfg.me) + 2, "%s@%s", c->user,
		    c->cfg.me);
	}
	return sm_check_rcpts(&c->env);
}

static int sm_deliver(struct sm_ctx *c)
{
	int r = sm_read_header(&c->in, &c->o, &c->h);
	if (r)
		return r;
	if (c->o.t) {
		struct maildrop_env *l = c->h.resent.nrcpt ? &c->h.resent : &c->h.to;
		for (size_t i = 0; i < l->nrcpt; i++)
			maildrop_env_add_rcpt(&c->env, l->rcpt[i]);
		if (c->env.nrcpt == 0)
			return sm_fail(EX_USAGE, "no recipients in the message header");
		if ((r = sm_check_rcpts(&c->env)) != 0)
			return r;
	}
	if (!c->h.has_from && !c->user)
		return sm_fail(EX_OSERR, "no passwd entry for uid %lu", (unsigned long)getuid());
	return sm_write(c);
}

int sendmail_main(int argc, char **argv)
{
	struct sm_ctx *c = xcalloc(1, sizeof *c);
	int first = 1, r;
	c->o.mode = 'm';
	c->in.fd = 0;
	c->in.bol = 1;
	maildrop_env_init(&c->env);
	maildrop_env_init(&c->h.to);
	maildrop_env_init(&c->h.resent);
	signal(SIGINT, sm_signal);
	signal(SIGTERM, sm_signal);
	signal(SIGHUP, sm_signal);
	if ((r = sm_parse_opts(argc, argv, &c->o, &first)) != 0)
		goto out;
	if (c->o.mode == 's' || c->o.mode == 'q') {
		r = c->o.mode == 's' ? sm_smtp_main(&c->o, &c->in) : sm_flush(c);
		goto out;
	}
	if (c->o.mode != 'm') {
		r = sm_other_mode(c->o.mode);
		goto out;
	}
	c->env.uid = getuid();
	c->env.time = time(NULL);
	char origin[64];
	snprintf(origin, sizeof origin, "sendmail uid=%lu", (unsigned long)getuid());
	maildrop_env_set_origin(&c->env, origin);
	if ((r = sm_setup(c, argc, argv, first)) == 0)
		r = sm_deliver(c);
	config_free(&c->cfg);
out:
	maildrop_env_free(&c->env);
	maildrop_env_free(&c->h.to);
	maildrop_env_free(&c->h.resent);
	buf_free(&c->h.out);
	buf_free(&c->h.cur);
	free((char *)c->user);
	free(c);
	return r;
}
