/* dsn — RFC 3464 reports; see dsn.h for the structure.
 * Owns: the report text. Trusts: nothing in addresses, diagnostics or the original message:
 * every value is cleaned (controls -> blank, bad UTF-8 -> '?') before it reaches a header
 * line, fields are folded, and the boundary is checked against all three parts. */
#include "mail/dsn.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FOLD_AT 78
#define HARD_AT 900              /* a word longer than this is split anyway (998 limit) */

enum { ENC_7BIT, ENC_8BIT, ENC_BINARY };
static const char *const enc_name[] = { "7bit", "8bit", "binary" };

void dsn_date(char *out, size_t outsz, int64_t t)
{
	static const char *const day[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	    "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d +0000", day[tm.tm_wday % 7],
	    tm.tm_mday, mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* --- cleaning ---------------------------------------------------------------------------- */

/* length of a well-formed UTF-8 sequence at s, 0 if malformed; *cp gets the code point */
static size_t utf8_dec(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0], min;
	size_t len;
	if (c < 0x80) { *cp = c; return 1; }
	if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; *cp = c & 0x1f; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; *cp = c & 0x0f; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; *cp = c & 0x07; }
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

/* Append s as one clean line: controls become one blank (runs collapse), leading and
 * trailing blanks go, at most max bytes. utf8: keep valid UTF-8, else '?' for non-ASCII. */
static void clean(struct buf *b, const char *s, size_t max, int utf8)
{
	const unsigned char *u = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)u), start = b->len;
	int blank = 0;
	for (size_t i = 0; i < n && b->len - start < max;) {
		unsigned cp;
		size_t k = utf8_dec(u + i, n - i, &cp);
		if (u[i] <= ' ' || u[i] == 0x7f) {
			blank = b->len > start;
			i++;
			continue;
		}
		if (blank)
			buf_addc(b, ' ');
		blank = 0;
		if (u[i] >= 0x80 && (!utf8 || k == 0)) {
			buf_addc(b, '?');
			i += k ? k : 1;
		} else {
			buf_add(b, u + i, k);
			i += k;
		}
	}
}

static int has_8bit(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* address for the delivery-status part: "rfc822; a@b", or RFC 6533 "utf-8; " with \x{HHHH}
 * for each non-ASCII code point */
static void status_addr(struct buf *b, const char *addr)
{
	struct buf c;
	buf_init(&c);
	clean(&c, addr, 1024, 1);
	const unsigned char *u = (const unsigned char *)(c.len ? c.p : "");
	if (!has_8bit((const char *)u)) {
		buf_printf(b, "rfc822; %s", u);
		buf_free(&c);
		return;
	}
	buf_adds(b, "utf-8; ");
	for (size_t i = 0; i < c.len;) {
		unsigned cp;
		size_t k = utf8_dec(u + i, c.len - i, &cp);   /* clean() left only valid UTF-8 */
		if (cp < 0x80)
			buf_addc(b, (char)cp);
		else
			buf_printf(b, "\\x{%04X}", cp);
		i += k ? k : 1;
	}
	buf_free(&c);
}

/* "Name: value" folded at blanks to FOLD_AT columns; value is one clean line */
static void field(struct buf *b, const char *name, const char *value)
{
	size_t col = strlen(name) + 1;
	int first = 1;
	buf_adds(b, name);
	buf_addc(b, ':');
	for (const char *p = value; *p; first = 0) {
		size_t w = strcspn(p, " ");
		if (!first && col + 1 + w > FOLD_AT) {
			buf_adds(b, "\n ");
			col = 1;
		} else {
			buf_addc(b, ' ');
			col++;
		}
		for (; w > HARD_AT; w -= HARD_AT, p += HARD_AT) {
			buf_add(b, p, HARD_AT);
			buf_adds(b, "\n ");
			col = 1;
		}
		buf_add(b, p, w);
		col += w;
		for (p += w; *p == ' '; p++)
			;
	}
	buf_addc(b, '\n');
}

/* field() with a value built by the caller in v (then reset) */
static void field_buf(struct buf *b, const char *name, struct buf *v)
{
	field(b, name, v->len ? v->p : "");
	buf_reset(v);
}

/* "Name: <date>" */
static void field_date(struct buf *b, const char *name, int64_t t)
{
	char d[64];
	dsn_date(d, sizeof d, t);
	field(b, name, d);
}

/* text wrapped at FOLD_AT for the human part (no indentation) */
static void wrap(struct buf *b, const char *text)
{
	size_t col = 0;
	for (const char *p = text; *p;) {
		size_t w = strcspn(p, " ");
		if (col && col + 1 + w > FOLD_AT) {
			buf_addc(b, '\n');
			col = 0;
		} else if (col) {
			buf_addc(b, ' ');
			col++;
		}
		for (; w > HARD_AT; w -= HARD_AT, p += HARD_AT) {
			buf_add(b, p, HARD_AT);
			buf_addc(b, '\n');
		}
		buf_add(b, p, w);
		col += w;
		for (p += w; *p == ' '; p++)
			;
	}
	buf_addc(b, '\n');
}

/* --- per-recipient values ------------------------------------------------------------------ */

static int status_ok(const char *s)
{
	int dots = 0, digits = 0;
	if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	for (const char *p = s + 2; ; p++) {
		if (*p >= '0' && *p <= '9') {
			if (++digits > 3)
				return 0;
		} else if ((*p == '.' || *p == '\0') && digits > 0) {
			if (*p == '\0')
				return dots == 1;
			dots++;
			digits = 0;
		} else
			return 0;
	}
}

static const char *rcpt_status(const struct dsn_rcpt *r)
{
	if (status_ok(r->status))
		return r->status;
	return r->action == DSN_DELAYED ? "4.0.0" : "5.0.0";
}

/* length of a "type;" prefix (RFC 3464 diagnostic-type is an atom), 0 if none */
static size_t diag_type(const char *d)
{
	size_t i = 0;
	while ((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= 'A' && d[i] <= 'Z') ||
	    (d[i] >= '0' && d[i] <= '9') || (i > 0 && d[i] == '-'))
		i++;
	return i > 0 && d[i] == ';' ? i : 0;
}

/* Diagnostic-Code value: "type; text" */
static void diag_code(struct buf *v, const char *diag)
{
	struct buf c;
	buf_init(&c);
	clean(&c, diag, DSN_MAXDIAG, 0);
	const char *d = c.len ? c.p : "";
	size_t t = diag_type(d);
	if (t) {
		buf_add(v, d, t);
		buf_adds(v, "; ");
		d += t + 1;
		d += *d == ' ';
	} else
		buf_adds(v, "x-tern; ");
	buf_adds(v, *d ? d : "(no diagnostic)");
	buf_free(&c);
}

/* --- the three parts ----------------------------------------------------------------------- */

struct parts {
	struct buf human, status;
	const char *orig;          /* the included original (whole, or its header) */
	size_t norig;
	int headers_only;
	int enc_human, enc_orig;
};

static void human_rcpts(struct buf *b, const struct dsn_report *r, int action)
{
	struct buf v;
	buf_init(&v);
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *x = &r->rcpt[i];
		if (x->action != action)
			continue;
		buf_addc(b, '<');
		clean(b, x->addr, 1024, 1);
		buf_adds(b, ">:\n");
		const char *d = x->diag ? x->diag : "";
		size_t t = diag_type(d);
		d += t ? t + 1 : 0;
		if (x->remote_mta && *x->remote_mta) {
			clean(&v, x->remote_mta, 255, 0);
			buf_adds(&v, " said: ");
		}
		clean(&v, d, DSN_MAXDIAG, 1);
		if (!v.len)
			buf_adds(&v, "(no diagnostic)");
		wrap(b, v.p);
		buf_reset(&v);
		buf_addc(b, '\n');
	}
	buf_free(&v);
}

static void human_part(struct parts *pt, const struct dsn_report *r, size_t msglen)
{
	struct buf *b = &pt->human;
	int failed = 0, delayed = 0;
	for (size_t i = 0; i < r->nrcpt; i++)
		*(r->rcpt[i].action == DSN_DELAYED ? &delayed : &failed) += 1;
	buf_adds(b, "Hi. This is the tern program at ");
	clean(b, r->me, 255, 0);
	buf_adds(b, ".\n");
	if (failed) {
		buf_adds(b, "I'm afraid I wasn't able to deliver your message to the following "
		    "addresses.\nThis is a permanent error; I've given up. Sorry it didn't work "
		    "out.\n\n");
		human_rcpts(b, r, DSN_FAILED);
	}
	if (delayed) {
		buf_adds(b, failed ? "I haven't been able to deliver it to these addresses yet:\n"
		    "\n" : "I haven't been able to deliver your message to the following "
		    "addresses yet.\nThis is only a warning: I'm still trying, and you don't need "
		    "to send it again.\nI'll give up when it has been in the queue too long.\n\n");
		human_rcpts(b, r, DSN_DELAYED);
	}
	if (pt->headers_only)
		buf_printf(b, "Your message was %zu bytes long, more than the %llu bytes I return;"
		    "\nonly its header is attached.\n", msglen,
		    (unsigned long long)r->bouncemaxbytes);
	pt->enc_human = has_8bit(b->p) ? ENC_8BIT : ENC_7BIT;
}

static void status_rcpt(struct buf *b, const struct dsn_rcpt *x)
{
	struct buf v;
	buf_init(&v);
	buf_addc(b, '\n');
	status_addr(&v, x->addr);
	field_buf(b, "Final-Recipient", &v);
	if (x->orig && *x->orig) {
		status_addr(&v, x->orig);
		field_buf(b, "Original-Recipient", &v);
	}
	field(b, "Action", x->action == DSN_DELAYED ? "delayed" : "failed");
	field(b, "Status", rcpt_status(x));
	if (x->remote_mta && *x->remote_mta) {
		buf_adds(&v, "dns; ");
		clean(&v, x->remote_mta, 255, 0);
		field_buf(b, "Remote-MTA", &v);
	}
	diag_code(&v, x->diag);
	field_buf(b, "Diagnostic-Code", &v);
	if (x->last_attempt)
		field_date(b, "Last-Attempt-Date", x->last_attempt);
	if (x->action == DSN_DELAYED && x->will_retry_until)
		field_date(b, "Will-Retry-Until", x->will_retry_until);
	buf_free(&v);
}

static void status_part(struct parts *pt, const struct dsn_report *r)
{
	struct buf *b = &pt->status, v;
	buf_init(&v);
	buf_adds(&v, "dns; ");
	clean(&v, r->me, 255, 0);
	field_buf(b, "Reporting-MTA", &v);
	clean(&v, r->queue_id, 255, 0);
	field_buf(b, "X-Tern-Queue-ID", &v);
	status_addr(&v, r->sender);
	field_buf(b, "X-Tern-Sender", &v);
	if (r->arrival)
		field_date(b, "Arrival-Date", r->arrival);
	for (size_t i = 0; i < r->nrcpt; i++)
		status_rcpt(b, &r->rcpt[i]);
	buf_free(&v);
}

/* 7bit / 8bit / binary for the original: NUL or a line over 998 bytes makes it binary */
static int encoding_of(const char *p, size_t n)
{
	int enc = ENC_7BIT;
	size_t line = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\n') {
			line = 0;
			continue;
		}
		if (c == 0 || ++line > 998)
			return ENC_BINARY;
		if (c >= 0x80)
			enc = ENC_8BIT;
	}
	return enc;
}

/* headers-only: the header section, cut at a line end within max(bouncemaxbytes, DSN_MINHDR) */
static size_t header_len(const char *msg, size_t len, uint64_t maxbytes)
{
	size_t lim = maxbytes > DSN_MINHDR ? (size_t)maxbytes : DSN_MINHDR;
	const char *end = len && msg[0] == '\n' ? msg : memmem(msg, len, "\n\n", 2);
	size_t n = end ? (size_t)(end - msg) + (end == msg ? 0 : 1) : len;
	if (n > lim) {
		const char *nl = memrchr(msg, '\n', lim);
		n = nl ? (size_t)(nl - msg) + 1 : 0;
	}
	return n;
}

static void orig_part(struct parts *pt, const struct dsn_report *r, const char *msg,
                      size_t have, size_t total)
{
	pt->headers_only = r->bouncemaxbytes && total > r->bouncemaxbytes;
	pt->orig = msg ? msg : "";
	pt->norig = pt->headers_only ? header_len(pt->orig, have, r->bouncemaxbytes) : have;
	pt->enc_orig = encoding_of(pt->orig, pt->norig);
}

/* --- assembly ------------------------------------------------------------------------------ */

static int clash(const struct parts *pt, const char *bd)
{
	size_t n = strlen(bd);
	return memmem(pt->human.p, pt->human.len, bd, n) ||
	    memmem(pt->status.p, pt->status.len, bd, n) || memmem(pt->orig, pt->norig, bd, n);
}

/* the queue id reduced to characters safe in a boundary and a Message-ID */
static void safe_id(char *out, size_t outsz, const char *id)
{
	size_t o = 0;
	for (const char *p = id ? id : ""; *p && o + 1 < outsz; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '-')
			out[o++] = *p;
	if (o == 0 && outsz > 7)
		o = (size_t)snprintf(out, outsz, "report");
	out[o] = '\0';
}

/* "=_" never occurs in base64 or quoted-printable text; the loop also rules out raw text:
 * a message of N bytes holds fewer than N distinct candidates, so it ends */
static void boundary(char *bd, size_t sz, const struct parts *pt, const struct dsn_report *r)
{
	char id[48];
	uint64_t x = r->nonce;
	safe_id(id, sizeof id, r->queue_id);
	for (unsigned n = 0;; n++) {
		snprintf(bd, sz, "=_tern_%s_%016llx_%u", id, (unsigned long long)x, n);
		if (!clash(pt, bd))
			return;
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	}
}

static void top_header(struct buf *b, const struct dsn_report *r, const char *bd, int enc)
{
	struct buf v;
	char id[48];
	int failed = 0;
	buf_init(&v);
	for (size_t i = 0; i < r->nrcpt; i++)
		failed |= r->rcpt[i].action != DSN_DELAYED;
	clean(&v, r->bouncefrom && *r->bouncefrom ? r->bouncefrom : "MAILER-DAEMON", 255, 1);
	buf_addc(&v, '@');
	clean(&v, r->bouncehost && *r->bouncehost ? r->bouncehost : r->me, 255, 1);
	field_buf(b, "From", &v);
	buf_addc(&v, '<');
	clean(&v, r->sender, 1024, 1);
	buf_addc(&v, '>');
	field_buf(b, "To", &v);
	field(b, "Subject", failed ? "Undelivered Mail Returned to Sender" :
	    "Delayed Mail (still being retried)");
	field_date(b, "Date", r->now);
	safe_id(id, sizeof id, r->queue_id);
	buf_printf(&v, "<%s.%016llx@", id, (unsigned long long)r->nonce);
	clean(&v, r->me, 255, 0);
	buf_addc(&v, '>');
	field_buf(b, "Message-ID", &v);
	field(b, "Auto-Submitted", "auto-replied");
	field(b, "MIME-Version", "1.0");
	buf_printf(b, "Content-Type: multipart/report; report-type=delivery-status;\n"
	    "\tboundary=\"%s\"\n", bd);
	if (enc != ENC_7BIT)
		buf_printf(b, "Content-Transfer-Encoding: %s\n", enc_name[enc]);
	buf_adds(b, "\nThis is a MIME-encapsulated message.\n");
	buf_free(&v);
}

static void assemble(struct buf *out, const struct dsn_report *r, struct parts *pt)
{
	char bd[128];
	int enc = pt->enc_orig > pt->enc_human ? pt->enc_orig : pt->enc_human;
	boundary(bd, sizeof bd, pt, r);
	top_header(out, r, bd, enc);
	buf_printf(out, "\n--%s\nContent-Description: Notification\nContent-Type: text/plain; "
	    "charset=%s\n", bd, pt->enc_human == ENC_7BIT ? "us-ascii" : "utf-8");
	if (pt->enc_human != ENC_7BIT)
		buf_adds(out, "Content-Transfer-Encoding: 8bit\n");
	buf_addc(out, '\n');
	buf_add(out, pt->human.p, pt->human.len);
	buf_printf(out, "\n--%s\nContent-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n", bd);
	buf_add(out, pt->status.p, pt->status.len);
	buf_printf(out, "\n--%s\nContent-Description: %s\nContent-Type: %s\n", bd,
	    pt->headers_only ? "Undelivered message header" : "Undelivered message",
	    pt->headers_only ? "text/rfc822-headers" : "message/rfc822");
	if (pt->enc_orig != ENC_7BIT)
		buf_printf(out, "Content-Transfer-Encoding: %s\n", enc_name[pt->enc_orig]);
	buf_addc(out, '\n');
	buf_add(out, pt->orig, pt->norig);
	if (pt->norig && pt->orig[pt->norig - 1] != '\n')
		buf_addc(out, '\n');
	buf_printf(out, "\n--%s--\n", bd);
}

/* have = bytes of the original in msg; total = its full length (> have only when the
 * header-only rule applies and the caller did not keep the rest) */
static int build(const struct dsn_report *r, const char *msg, size_t have, size_t total,
                 struct buf *out, const char **why)
{
	struct parts pt;
	if (r->nrcpt == 0 || !r->rcpt) {
		*why = "no recipients to report on";
		return -1;
	}
	if (!r->sender || !*r->sender) {
		*why = "the sender is <>: never bounce to <>";
		return -1;
	}
	memset(&pt, 0, sizeof pt);
	buf_init(&pt.human);
	buf_init(&pt.status);
	orig_part(&pt, r, msg, have, total);
	human_part(&pt, r, total);
	status_part(&pt, r);
	assemble(out, r, &pt);
	buf_free(&pt.human);
	buf_free(&pt.status);
	return 0;
}

int dsn_build(const struct dsn_report *r, const char *msg, size_t msglen, struct buf *out,
              const char **why)
{
	return build(r, msg, msglen, msglen, out, why);
}

/* keep reading into b while the report may still need the bytes */
static int need_more(const struct dsn_report *r, const struct buf *b)
{
	if (!r->bouncemaxbytes || b->len <= r->bouncemaxbytes)
		return 1;
	size_t lim = r->bouncemaxbytes > DSN_MINHDR ? (size_t)r->bouncemaxbytes : DSN_MINHDR;
	return b->len < lim && (b->p[0] != '\n' && !memmem(b->p, b->len, "\n\n", 2));
}

int dsn_build_fd(const struct dsn_report *r, int fd, struct buf *out, const char **why)
{
	struct buf b;
	char tmp[65536];
	size_t total = 0;
	buf_init(&b);
	for (;;) {
		ssize_t k = read(fd, tmp, sizeof tmp);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			buf_free(&b);
			*why = "cannot read the original message";
			return -1;
		}
		if (k == 0)
			break;
		if (need_more(r, &b))
			buf_add(&b, tmp, (size_t)k);
		total += (size_t)k;
	}
	int ret = build(r, b.p, b.len, total, out, why);
	buf_free(&b);
	return ret;
}
