/* autoreply — RFC 3834 decisions, the reply message and the reply memory
 * (src/mail/autoreply.h). Owns: text in, text out; no I/O. Trusts: nothing it reads. */
#include "mail/autoreply.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_VALUE_MAX 2000       /* a longer value is cut: it only feeds our reply */

/* the end of the header section: the offset of its first empty line, or len */
static size_t autoreply_hdr_end(const char *hdr, size_t len)
{
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(hdr + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - hdr) : len;
		if (e == i || (e == i + 1 && hdr[i] == '\r'))
			return i;
		i = e + 1;
	}
	return len;
}

static void autoreply_value(const char *s, const char *end, struct buf *out)
{
	buf_reset(out);
	for (; s < end && out->len < HDR_VALUE_MAX; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (!out->len || out->p[out->len - 1] == ' '))
			continue;           /* leading blanks, runs of blanks (unfolding) */
		buf_addc(out, (char)c);
	}
	while (out->len && out->p[out->len - 1] == ' ')
		out->p[--out->len] = '\0';
	if (!out->p)
		buf_adds(out, "");
}

int autoreply_header(const char *hdr, size_t len, const char *name, struct buf *out)
{
	size_t end = autoreply_hdr_end(hdr, len), nl = strlen(name);
	for (size_t i = 0; i < end;) {
		size_t e = i;
		while (e < end && hdr[e] != '\n')
			e++;
		if (e - i > nl && hdr[i + nl] == ':' && str_ncasecmp(hdr + i, name, nl) == 0) {
			size_t v = e;   /* the field runs on over continuation lines */
			while (v + 1 < end && (hdr[v + 1] == ' ' || hdr[v + 1] == '\t')) {
				v++;
				while (v < end && hdr[v] != '\n')
					v++;
			}
			autoreply_value(hdr + i + nl + 1, hdr + v, out);
			return 1;
		}
		i = e + 1;
	}
	return 0;
}

static int autoreply_word_in(const char *v, const char *const *words)
{
	for (; *words; words++)
		if (str_casecmp(v, *words) == 0)
			return 1;
	return 0;
}

static int autoreply_endswith(const char *s, size_t n, const char *suf)
{
	size_t k = strlen(suf);
	return n >= k && str_ncasecmp(s + n - k, suf, k) == 0;
}

static const char *autoreply_bad_sender(const char *sender)
{
	static const char *const names[] = { "mailer-daemon", "postmaster", "listserv",
		"majordomo", "noreply", "no-reply", "donotreply", "do-not-reply", NULL };
	const char *at = strrchr(sender, '@');
	size_t n = at ? (size_t)(at - sender) : strlen(sender);
	char local[256];
	if (!*sender || strcmp(sender, "#@[]") == 0)
		return "null sender";
	if (n >= sizeof local)
		return NULL;
	memcpy(local, sender, n);
	local[n] = '\0';
	if (autoreply_word_in(local, names) || str_ncasecmp(local, "owner-", 6) == 0 ||
	    autoreply_endswith(local, n, "-owner") || autoreply_endswith(local, n, "-request"))
		return "sender is a mailer, list or no-reply address";
	return NULL;
}

/* does field value v name addr (case-insensitive) as a whole address? A match must stand
 * between delimiters: "xjoe@x" or "joe@x.evil" does not name joe@x. */
static int autoreply_names(const char *v, const char *addr)
{
	static const char before[] = " \t<,:;(\"", after[] = " \t>,;)\"";
	size_t n = strlen(addr), vl = strlen(v);
	for (size_t i = 0; n && i + n <= vl; i++)
		if (str_ncasecmp(v + i, addr, n) == 0 && (i == 0 || strchr(before, v[i - 1])) &&
		    (!v[i + n] || strchr(after, v[i + n])))
			return 1;
	return 0;
}

/* is recip named in any To, Cc, Resent-To or Resent-Cc field (every one of them)? */
static int autoreply_addressed(const char *hdr, size_t len, const char *recip)
{
	static const char *const names[] = { "To", "Cc", "Resent-To", "Resent-Cc", NULL };
	struct buf v;
	int found = 0;
	buf_init(&v);
	for (size_t end = autoreply_hdr_end(hdr, len), i = 0; i < end && !found;) {
		const char *nl = memchr(hdr + i, '\n', end - i);
		size_t e = nl ? (size_t)(nl - hdr) + 1 : end;
		for (const char *const *nm = names; *nm && !found; nm++)   /* from this line on */
			if (e - i > strlen(*nm) && hdr[i + strlen(*nm)] == ':' &&
			    str_ncasecmp(hdr + i, *nm, strlen(*nm)) == 0)
				found = autoreply_header(hdr + i, end - i, *nm, &v) &&
					autoreply_names(v.p, recip);
		i = e;
	}
	buf_free(&v);
	return found;
}

const char *autoreply_refuse(const char *sender, const char *recip, const char *hdr,
                             size_t len, int whole)
{
	return autoreply_refuse_any(sender, &recip, 1, hdr, len, whole);
}

const char *autoreply_refuse_any(const char *sender, const char *const *recips, size_t n,
                                 const char *hdr, size_t len, int whole)
{
	static const char *const bulk[] = { "bulk", "list", "junk", NULL };
	struct buf v;
	const char *why = autoreply_bad_sender(sender);
	buf_init(&v);
	if (!why && !whole && autoreply_hdr_end(hdr, len) == len)
		why = "header section too long to be read whole";
	if (!why && autoreply_header(hdr, len, "Precedence", &v) && autoreply_word_in(v.p, bulk))
		why = "Precedence bulk, list or junk";
	if (!why && (autoreply_header(hdr, len, "List-Id", &v) ||
	             autoreply_header(hdr, len, "List-Unsubscribe", &v)))
		why = "mailing list message";
	if (!why && autoreply_header(hdr, len, "Auto-Submitted", &v)) {
		size_t k = strcspn(v.p, " ;(");
		if (!(k == 2 && str_ncasecmp(v.p, "no", 2) == 0))
			why = "Auto-Submitted message";
	}
	int named = 0;
	for (size_t i = 0; !why && !named && i < n; i++)
		named = *recips[i] && autoreply_addressed(hdr, len, recips[i]);
	if (!why && !named)
		why = "recipient not in To or Cc";
	buf_free(&v);
	return why;
}

/* a msg-id "<...>" with no blank inside, or NULL */
static int autoreply_msgid(const char *v)
{
	size_t n = strlen(v);
	return n > 2 && v[0] == '<' && v[n - 1] == '>' && !strchr(v, ' ') &&
	       !strchr(v + 1, '<');
}

static void autoreply_refs(struct buf *out, const char *hdr, size_t len, const char *id)
{
	struct buf r;
	buf_init(&r);
	if (autoreply_header(hdr, len, "References", &r) && r.len && r.len < 1000) {
		int ok = 1;   /* only a list of msg-ids is carried over */
		for (const char *s = r.p; *s && ok; s++)
			ok = *s != '\\' && *s != '"';
		if (ok)
			buf_printf(out, "References: %s %s\n", r.p, id);
		else
			buf_printf(out, "References: %s\n", id);
	} else {
		buf_printf(out, "References: %s\n", id);
	}
	buf_free(&r);
}

/* an address into a header: control bytes become '_' */
static void autoreply_addr(struct buf *out, const char *a)
{
	for (; *a; a++)
		buf_addc(out, (unsigned char)*a < 0x20 || *a == 0x7f ? '_' : *a);
}

void autoreply_build(struct buf *out, const char *from, const char *to, const char *hdr,
                     size_t len, const char *text, time_t now, long pid)
{
	struct buf v;
	char date[64];
	struct tm tm;
	const char *dom = strrchr(from, '@');
	buf_init(&v);
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_adds(out, "From: <");
	autoreply_addr(out, from);
	buf_adds(out, ">\nTo: <");
	autoreply_addr(out, to);
	buf_adds(out, ">\n");
	if (autoreply_header(hdr, len, "Subject", &v) && v.len)
		buf_printf(out, "Subject: %s%s\n", str_ncasecmp(v.p, "Re:", 3) ? "Re: " : "", v.p);
	else
		buf_adds(out, "Subject: Re: your message\n");
	buf_printf(out, "Date: %s\n", date);
	buf_printf(out, "Message-ID: <%lld.%ld.autoreply@%s>\n", (long long)now, pid,
		   dom && dom[1] ? dom + 1 : "localhost");
	if (autoreply_header(hdr, len, "Message-ID", &v) && autoreply_msgid(v.p)) {
		char *id = xstrdup(v.p);
		buf_printf(out, "In-Reply-To: %s\n", id);
		autoreply_refs(out, hdr, len, id);
		free(id);
	}
	buf_adds(out, "Auto-Submitted: auto-replied\nPrecedence: bulk\nMIME-Version: 1.0\n"
	              "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n");
	for (const char *s = text; *s; s++)   /* LF line ends, no NUL possible */
		if (!(*s == '\r' && s[1] == '\n'))
			buf_addc(out, *s == '\r' ? '\n' : *s);
	if (!out->len || out->p[out->len - 1] != '\n')
		buf_addc(out, '\n');
	buf_free(&v);
}

/* "SECONDS ADDRESS" -> 0 with *t and the address span, or -1 */
static int autoreply_memline(const char *s, const char *e, long long *t, const char **a,
                             size_t *alen)
{
	long long n = 0;
	const char *p = s;
	for (; p < e && *p >= '0' && *p <= '9' && p - s < 18; p++)
		n = n * 10 + (*p - '0');
	if (p == s || p >= e || *p != ' ' || p + 1 == e)
		return -1;
	*t = n;
	*a = p + 1;
	*alen = (size_t)(e - *a);
	for (const char *q = *a; q < e; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return -1;
	return 0;
}

int autoreply_seen(const char *mem, size_t len, const char *addr, time_t now,
                   struct buf *newmem)
{
	return autoreply_seen_for(mem, len, addr, now, AUTOREPLY_WINDOW, newmem);
}

int autoreply_seen_for(const char *mem, size_t len, const char *addr, time_t now,
                       long long window, struct buf *newmem)
{
	size_t total = 0;
	const char *end = mem + len;
	int seen = 0;
	char *clean = xstrdup(addr);   /* one word: blanks and controls become '_' */
	size_t alen = strlen(clean);
	for (char *c = clean; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			*c = '_';
	buf_reset(newmem);
	/* first pass counts the entries kept, so that the oldest are the ones dropped */
	for (int pass = 0; pass < 2; pass++) {
		size_t idx = 0;
		for (const char *s = mem, *e; s < end; s = e + 1) {
			const char *a;
			size_t n;
			long long t;
			e = memchr(s, '\n', (size_t)(end - s));
			if (!e)
				e = end;
			if (autoreply_memline(s, e, &t, &a, &n) < 0 || t > (long long)now ||
			    (long long)now - t >= window)
				continue;
			if (pass == 0) {
				total++;
				if (n == alen && str_ncasecmp(a, clean, n) == 0)
					seen = 1;
				continue;
			}
			if (idx++ + (AUTOREPLY_MAXMEM - 1) < total)
				continue;           /* one of the oldest beyond the limit */
			buf_add(newmem, s, (size_t)(e - s));
			buf_addc(newmem, '\n');
		}
	}
	if (!seen)
		buf_printf(newmem, "%lld %s\n", (long long)now, clean);
	free(clean);
	return seen;
}

int autoreply_interval(const char *s, long long *secs)
{
	static const struct { char u; long long mul; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 } };
	long long n = 0, mul = 1;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > AUTOREPLY_INTERVAL_MAX)
			return -1;
	}
	if (p == s)
		return -1;
	if (*p) {
		size_t i = 0;
		while (i < sizeof units / sizeof units[0] && units[i].u != *p)
			i++;
		if (i == sizeof units / sizeof units[0] || p[1])
			return -1;
		mul = units[i].mul;
	}
	if (n == 0 || n > AUTOREPLY_INTERVAL_MAX / mul)
		return -1;
	*secs = n * mul;
	return 0;
}
