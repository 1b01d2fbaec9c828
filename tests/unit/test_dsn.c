/* test_dsn — the RFC 3464 builder: a table of reports, each parsed back (top header, the
 * boundary, three parts, each delivery-status field) plus folding, sanitising, the
 * headers-only mode, boundary clashes, 8-bit and binary originals, and the fd variant.
 * Trusts: nothing; the tiny MIME reader here is independent of dsn.c. */
#include "t.h"
#include "mail/dsn.h"
#include "lib/buf.h"
#include <sys/wait.h>
#include <unistd.h>

/* --- a small reader for what dsn_build writes ------------------------------------------------ */

struct part {
	const char *hdr, *body;
	size_t hlen, blen;
};

/* header section ends at the first empty line */
static void split(const char *m, size_t n, struct part *p)
{
	const char *e = n && m[0] == '\n' ? m : memmem(m, n, "\n\n", 2);
	p->hdr = m;
	p->hlen = e ? (size_t)(e - m) + (e == m ? 0 : 1) : n;
	p->body = e ? e + (e == m ? 1 : 2) : m + n;
	p->blen = (size_t)(m + n - p->body);
}

/* unfolded value of the first field called name (case-sensitive), "" if absent */
static const char *get(const struct part *p, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name), o = 0;
	out[0] = '\0';
	for (const char *l = p->hdr; l < p->hdr + p->hlen;) {
		const char *e = memchr(l, '\n', (size_t)(p->hdr + p->hlen - l));
		if (!e)
			break;
		if ((size_t)(e - l) > nl && memcmp(l, name, nl) == 0 && l[nl] == ':') {
			const char *v = l + nl + 1;
			for (;;) {
				while (v < e && (*v == ' ' || *v == '\t') && o == 0)
					v++;
				for (; v < e && o + 1 < outsz; v++)
					out[o++] = *v;
				if (e + 1 < p->hdr + p->hlen && (e[1] == ' ' || e[1] == '\t')) {
					v = e + 1;
					e = memchr(v, '\n', (size_t)(p->hdr + p->hlen - v));
					if (!e)
						break;
					while (v < e && (*v == ' ' || *v == '\t'))
						v++;
					if (o + 1 < outsz)
						out[o++] = ' ';
					continue;
				}
				break;
			}
			out[o] = '\0';
			return out;
		}
		l = e + 1;
	}
	return out;
}

/* parts of a multipart body; returns how many, -1 if the close delimiter is missing */
static int parts(const struct part *top, const char *bd, struct part *pv, int max)
{
	char delim[200];
	int n = 0;
	snprintf(delim, sizeof delim, "\n--%s", bd);
	size_t dl = strlen(delim);
	const char *end = top->body + top->blen;
	const char *d = memmem(top->body, top->blen, delim, dl);
	while (d) {
		const char *after = d + dl;
		if (after + 2 <= end && memcmp(after, "--", 2) == 0)
			return n;
		if (after >= end || *after != '\n' || n == max)
			return -1;
		const char *start = after + 1;
		const char *next = memmem(start, (size_t)(end - start), delim, dl);
		if (!next)
			return -1;
		split(start, (size_t)(next - start), &pv[n++]);
		d = next;
	}
	return -1;
}

static const char *boundary_of(const char *ct, char *out, size_t outsz)
{
	const char *b = strstr(ct, "boundary=\"");
	out[0] = '\0';
	if (b) {
		b += 10;
		const char *q = strchr(b, '"');
		if (q && (size_t)(q - b) < outsz) {
			memcpy(out, b, (size_t)(q - b));
			out[q - b] = '\0';
		}
	}
	return out;
}

/* --- the table --------------------------------------------------------------------------- */

static const struct dsn_rcpt r_550 = { "bob@example.com", "Bob@Example.COM", "5.1.1", DSN_FAILED,
	"mx.example.com", "smtp; 550 5.1.1 <bob@example.com>: no such user", 1700000100, 0 };
static const struct dsn_rcpt r_local = { "carol", NULL, "5.2.2", DSN_FAILED, "",
	"mailbox full", 1700000200, 0 };
static const struct dsn_rcpt r_delay = { "dave@slow.example", NULL, "4.4.1", DSN_DELAYED,
	NULL, "x-tern; connection timed out", 1700000300, 1700604800 };
/* a delay notice as the queue builds it (queue_bounce.c): every pending recipient already
 * tried, its status taken from the last diagnostic, Will-Retry-Until = arrival + lifetime */
static const struct dsn_rcpt r_wait1 = { "r1@remote.test", NULL, "4.3.0", DSN_DELAYED,
	"mx.remote.test", "smtp; 451 4.3.0 try again later", 1700000300, 1700003600 };
static const struct dsn_rcpt r_wait2 = { "r2@remote.test", "R2@remote.test", "4.7.1", DSN_DELAYED,
	"mx.remote.test", "smtp; 451 4.7.1 greylisted", 1700000400, 1700003600 };
static const struct dsn_rcpt r_badstatus = { "eve@x", NULL, "9.9", DSN_FAILED, NULL,
	"smtp;550 no", 0, 0 };
static const struct dsn_rcpt r_utf8 = { "j\xc3\xbcrgen@b\xc3\xbc.example", NULL, "5.1.1",
	DSN_FAILED, NULL, "x-tern; no", 0, 0 };

struct dcase {
	const char *name;
	const struct dsn_rcpt *rc[3];
	const char *msg;
	uint64_t maxbytes;
	/* expectations */
	const char *subject;
	const char *type3;            /* content type of part 3 */
	const char *cte3;             /* its Content-Transfer-Encoding ("" = none) */
	const char *final[3], *action[3], *status[3], *diag[3], *remote[3], *orig[3];
	const char *human;            /* a substring of the human part */
};

static const char small_msg[] = "From: alice@here\nTo: bob@example.com\nSubject: hi\n\nhello\n";

static const struct dcase dcases[] = {
	{ "one failed smtp", { &r_550 }, small_msg, 0, "Undelivered Mail Returned to Sender",
	  "message/rfc822", "", { "rfc822; bob@example.com" }, { "failed" }, { "5.1.1" },
	  { "smtp; 550 5.1.1 <bob@example.com>: no such user" }, { "dns; mx.example.com" },
	  { "rfc822; Bob@Example.COM" },
	  "<bob@example.com>:\nmx.example.com said: 550 5.1.1 <bob@example.com>: no such user\n" },
	{ "two failed, plain diag", { &r_550, &r_local }, small_msg, 0,
	  "Undelivered Mail Returned to Sender", "message/rfc822", "",
	  { "rfc822; bob@example.com", "rfc822; carol" }, { "failed", "failed" },
	  { "5.1.1", "5.2.2" }, { NULL, "x-tern; mailbox full" }, { NULL, "" }, { NULL, "" },
	  "<carol>:\nmailbox full\n" },
	{ "delay only", { &r_delay }, small_msg, 0, "Delayed Mail (still being retried)",
	  "message/rfc822", "", { "rfc822; dave@slow.example" }, { "delayed" }, { "4.4.1" },
	  { "x-tern; connection timed out" }, { "" }, { "" }, "This is only a warning" },
	{ "delay notice, two pending", { &r_wait1, &r_wait2 }, small_msg, 0,
	  "Delayed Mail (still being retried)", "message/rfc822", "",
	  { "rfc822; r1@remote.test", "rfc822; r2@remote.test" }, { "delayed", "delayed" },
	  { "4.3.0", "4.7.1" }, { "smtp; 451 4.3.0 try again later", "smtp; 451 4.7.1 greylisted" },
	  { "dns; mx.remote.test", "dns; mx.remote.test" }, { "", "rfc822; R2@remote.test" },
	  "This is only a warning" },
	{ "failed and delayed", { &r_local, &r_delay }, small_msg, 0,
	  "Undelivered Mail Returned to Sender", "message/rfc822", "", { NULL }, { "failed",
	  "delayed" }, { NULL }, { NULL }, { NULL }, { NULL },
	  "I haven't been able to deliver it to these addresses yet:\n\n<dave@slow.example>:" },
	{ "bad status", { &r_badstatus }, small_msg, 0, "Undelivered Mail Returned to Sender",
	  "message/rfc822", "", { NULL }, { NULL }, { "5.0.0" }, { "smtp; 550 no" }, { NULL },
	  { NULL }, NULL },
	{ "headers only", { &r_550 }, small_msg, 20, NULL, "text/rfc822-headers", "", { NULL },
	  { NULL }, { NULL }, { NULL }, { NULL }, { NULL }, "only its header is attached" },
	{ "big limit", { &r_550 }, small_msg, 100000, NULL, "message/rfc822", "", { NULL },
	  { NULL }, { NULL }, { NULL }, { NULL }, { NULL }, NULL },
	{ "8bit original", { &r_550 }, "Subject: caf\xc3\xa9\n\nd\xc3\xa9j\xc3\xa0\n", 0, NULL,
	  "message/rfc822", "8bit", { NULL }, { NULL }, { NULL }, { NULL }, { NULL }, { NULL },
	  NULL },
	{ "utf-8 recipient", { &r_utf8 }, small_msg, 0, NULL, "message/rfc822", "",
	  { "utf-8; j\\x{00FC}rgen@b\\x{00FC}.example" }, { NULL }, { NULL }, { NULL }, { NULL },
	  { NULL }, "<j\xc3\xbcrgen@b\xc3\xbc.example>:" },
	{ "no final newline", { &r_550 }, "Subject: x\n\nno newline", 0, NULL, "message/rfc822",
	  "", { NULL }, { NULL }, { NULL }, { NULL }, { NULL }, { NULL }, NULL },
};

static struct dsn_report report(const struct dsn_rcpt *rv, size_t n, uint64_t maxbytes)
{
	struct dsn_report r = { "alice@here", "1a2b3c.4d", 1700000000, rv, n, "mx.here.example",
		"MAILER-DAEMON", "bounce.here.example", maxbytes, 1700000500, 0x1234abcdULL };
	return r;
}

/* every line of the generated text (before part 3's body) is at most 998 bytes, no CR */
static void check_lines(const char *p, size_t n)
{
	size_t line = 0;
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		bad |= p[i] == '\r' || p[i] == '\0';
		line = p[i] == '\n' ? 0 : line + 1;
		bad |= line > 998;
	}
	T_CHECK(!bad);
}

static void check_case(const struct dcase *c, const char *out, size_t outlen)
{
	char v[2048], bd[200];
	struct part top, pv[4];
	size_t nr = 0;
	while (nr < 3 && c->rc[nr])
		nr++;
	split(out, outlen, &top);
	check_lines(out, top.hlen);
	T_EQ_STR(get(&top, "From", v, sizeof v), "MAILER-DAEMON@bounce.here.example");
	T_EQ_STR(get(&top, "To", v, sizeof v), "<alice@here>");
	if (c->subject)
		T_EQ_STR(get(&top, "Subject", v, sizeof v), c->subject);
	T_EQ_STR(get(&top, "Date", v, sizeof v), "Tue, 14 Nov 2023 22:21:40 +0000");
	T_EQ_STR(get(&top, "Message-ID", v, sizeof v), "<1a2b3c.4d.000000001234abcd@mx.here.example>");
	T_EQ_STR(get(&top, "Auto-Submitted", v, sizeof v), "auto-replied");
	T_EQ_STR(get(&top, "MIME-Version", v, sizeof v), "1.0");
	get(&top, "Content-Type", v, sizeof v);
	T_CHECK(strncmp(v, "multipart/report; report-type=delivery-status; boundary=\"", 57) == 0);
	boundary_of(v, bd, sizeof bd);
	T_CHECK(strlen(bd) > 10 && strlen(bd) <= 70);
	T_CHECK(memmem(c->msg, strlen(c->msg), bd, strlen(bd)) == NULL);
	T_EQ_INT(parts(&top, bd, pv, 4), 3);
	T_EQ_STR(get(&pv[0], "Content-Type", v, sizeof v), strstr(c->name, "utf-8") ?
	    "text/plain; charset=utf-8" : "text/plain; charset=us-ascii");
	T_EQ_STR(get(&pv[1], "Content-Type", v, sizeof v), "message/delivery-status");
	T_EQ_STR(get(&pv[2], "Content-Type", v, sizeof v), c->type3);
	T_EQ_STR(get(&pv[2], "Content-Transfer-Encoding", v, sizeof v), c->cte3);
	if (c->human) {
		T_CHECK(memmem(pv[0].body, pv[0].blen, c->human, strlen(c->human)) != NULL);
		T_CHECK(memmem(pv[0].body, pv[0].blen, "Hi. This is the tern program at "
		    "mx.here.example.\n", 49) == pv[0].body);
	}
	/* delivery-status: per-message group, then one group per recipient */
	struct part g;
	split(pv[1].body, pv[1].blen, &g);
	check_lines(pv[1].body, pv[1].blen);
	T_EQ_STR(get(&g, "Reporting-MTA", v, sizeof v), "dns; mx.here.example");
	T_EQ_STR(get(&g, "X-Tern-Queue-ID", v, sizeof v), "1a2b3c.4d");
	T_EQ_STR(get(&g, "Arrival-Date", v, sizeof v), "Tue, 14 Nov 2023 22:13:20 +0000");
	for (size_t i = 0; i < nr; i++) {
		split(g.body, g.blen, &g);
		if (c->final[i])
			T_EQ_STR(get(&g, "Final-Recipient", v, sizeof v), c->final[i]);
		if (c->action[i])
			T_EQ_STR(get(&g, "Action", v, sizeof v), c->action[i]);
		if (c->status[i])
			T_EQ_STR(get(&g, "Status", v, sizeof v), c->status[i]);
		if (c->diag[i])
			T_EQ_STR(get(&g, "Diagnostic-Code", v, sizeof v), c->diag[i]);
		if (c->remote[i])
			T_EQ_STR(get(&g, "Remote-MTA", v, sizeof v), c->remote[i]);
		if (c->orig[i])
			T_EQ_STR(get(&g, "Original-Recipient", v, sizeof v), c->orig[i]);
		if (c->rc[i]->last_attempt)
			T_CHECK(*get(&g, "Last-Attempt-Date", v, sizeof v) != '\0');
		T_EQ_INT(*get(&g, "Will-Retry-Until", v, sizeof v) != '\0',
		    c->rc[i]->will_retry_until != 0);
		if (c->rc[i]->will_retry_until == 1700003600)    /* arrival + queuelifetime 3600 */
			T_EQ_STR(v, "Tue, 14 Nov 2023 23:13:20 +0000");
	}
	T_EQ_INT(g.blen, 0);
	/* part 3: the original, or exactly its header */
	size_t ml = strlen(c->msg);
	if (strcmp(c->type3, "message/rfc822") == 0) {
		int nl = c->msg[ml - 1] == '\n';
		T_EQ_INT(pv[2].blen, ml + !nl);
		T_CHECK(memcmp(pv[2].body, c->msg, ml) == 0);
	} else {
		struct part o;
		split(c->msg, ml, &o);
		T_EQ_INT(pv[2].blen, o.hlen);
		T_CHECK(memcmp(pv[2].body, c->msg, o.hlen) == 0);
	}
}

static void test_table(void)
{
	for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
		const struct dcase *c = &dcases[i];
		struct dsn_rcpt rv[3];
		size_t n = 0;
		for (; n < 3 && c->rc[n]; n++)
			rv[n] = *c->rc[n];
		struct dsn_report r = report(rv, n, c->maxbytes);
		struct buf out;
		const char *why = NULL;
		buf_init(&out);
		T_EQ_INT(dsn_build(&r, c->msg, strlen(c->msg), &out, &why), 0);
		size_t before = (size_t)t_fails;
		check_case(c, out.p, out.len);
		if ((size_t)t_fails != before)
			fprintf(stderr, "case \"%s\":\n%s\n", c->name, out.p);
		buf_free(&out);
	}
}

/* hostile diagnostics: CR/LF/controls removed, folded, unfolded value intact */
static void test_sanitise(void)
{
	struct buf diag, out;
	char v[8192], bd[200];
	struct part top, pv[4], g;
	buf_init(&diag);
	buf_init(&out);
	buf_adds(&diag, "smtp; 550-5.7.1 first line\r\n550-5.7.1\tsecond\x01line\r\n550 ");
	for (int i = 0; i < 60; i++)
		buf_adds(&diag, "word ");
	buf_adds(&diag, "\xff\xfe end\r\nX-Injected: yes");
	struct dsn_rcpt rc = r_550;
	rc.diag = diag.p;
	rc.addr = "evil@x\r\nBcc: victim@y";
	struct dsn_report r = report(&rc, 1, 0);
	const char *why;
	T_EQ_INT(dsn_build(&r, small_msg, strlen(small_msg), &out, &why), 0);
	split(out.p, out.len, &top);
	boundary_of(get(&top, "Content-Type", v, sizeof v), bd, sizeof bd);
	T_EQ_INT(parts(&top, bd, pv, 4), 3);
	check_lines(out.p, (size_t)(pv[2].body - out.p));
	/* nothing becomes a header line of its own (the human text may wrap anywhere) */
	T_CHECK(memmem(top.hdr, top.hlen, "\nX-Injected", 11) == NULL);
	T_CHECK(memmem(pv[1].body, pv[1].blen, "\nX-Injected", 11) == NULL);
	T_CHECK(memmem(pv[1].body, pv[1].blen, "\nBcc:", 5) == NULL);
	T_CHECK(memmem(pv[0].body, pv[0].blen, "\r", 1) == NULL);
	split(pv[1].body, pv[1].blen, &g);
	split(g.body, g.blen, &g);
	T_EQ_STR(get(&g, "Final-Recipient", v, sizeof v), "rfc822; evil@x Bcc: victim@y");
	get(&g, "Diagnostic-Code", v, sizeof v);
	T_CHECK(strncmp(v, "smtp; 550-5.7.1 first line 550-5.7.1 second line 550 word", 57) == 0);
	T_CHECK(strstr(v, "word ?? end X-Injected: yes") != NULL);
	/* folded: the field spans several lines, none longer than 78 */
	const char *dc = memmem(g.hdr, g.hlen, "Diagnostic-Code:", 16);
	int lines = 0, longest = 0;
	for (const char *p = dc; p && p < g.hdr + g.hlen; lines++) {
		const char *e = memchr(p, '\n', (size_t)(g.hdr + g.hlen - p));
		longest = (int)(e - p) > longest ? (int)(e - p) : longest;
		p = e + 1;
		if (p >= g.hdr + g.hlen || (*p != ' ' && *p != '\t'))
			break;
	}
	T_CHECK(lines >= 4);
	T_CHECK(longest <= 78);
	buf_free(&diag);
	buf_free(&out);
}

/* an original that contains the first boundary candidate forces another one */
static void test_boundary_clash(void)
{
	struct dsn_report r = report(&r_550, 1, 0);
	struct buf out, msg;
	char v[512], bd[200], bd2[200];
	struct part top;
	const char *why;
	buf_init(&out);
	buf_init(&msg);
	T_EQ_INT(dsn_build(&r, small_msg, strlen(small_msg), &out, &why), 0);
	split(out.p, out.len, &top);
	boundary_of(get(&top, "Content-Type", v, sizeof v), bd, sizeof bd);
	buf_printf(&msg, "Subject: tricky\n\n--%s\n--%s--\n", bd, bd);
	buf_reset(&out);
	T_EQ_INT(dsn_build(&r, msg.p, msg.len, &out, &why), 0);
	split(out.p, out.len, &top);
	boundary_of(get(&top, "Content-Type", v, sizeof v), bd2, sizeof bd2);
	T_CHECK(strcmp(bd, bd2) != 0);
	struct part pv[4];
	T_EQ_INT(parts(&top, bd2, pv, 4), 3);
	T_EQ_INT(pv[2].blen, msg.len);
	buf_free(&out);
	buf_free(&msg);
}

static void test_binary_and_errors(void)
{
	static const char bin[] = "Subject: b\n\nnul\0byte\n";
	struct dsn_report r = report(&r_550, 1, 0);
	struct buf out;
	const char *why = NULL;
	char v[512];
	struct part top;
	buf_init(&out);
	T_EQ_INT(dsn_build(&r, bin, sizeof bin - 1, &out, &why), 0);
	split(out.p, out.len, &top);
	T_EQ_STR(get(&top, "Content-Transfer-Encoding", v, sizeof v), "binary");
	buf_reset(&out);
	r.sender = "";
	T_EQ_INT(dsn_build(&r, bin, sizeof bin - 1, &out, &why), -1);
	T_CHECK(why && strstr(why, "<>"));
	r = report(&r_550, 0, 0);
	T_EQ_INT(dsn_build(&r, bin, sizeof bin - 1, &out, &why), -1);
	T_EQ_INT(out.len, 0);
	buf_free(&out);
}

/* dsn_build_fd writes the same bytes as dsn_build, with and without the size limit */
static void test_fd(void)
{
	struct buf big, a, b;
	const char *why;
	buf_init(&big);
	buf_init(&a);
	buf_init(&b);
	buf_adds(&big, "From: x\nSubject: big\n\n");
	for (int i = 0; i < 20000; i++)
		buf_adds(&big, "0123456789 0123456789 0123456789 0123456789 0123456789\n");
	uint64_t limits[] = { 0, 1000, 50000, 100000000 };
	for (int k = 0; k < 4; k++) {
		struct dsn_report r = report(&r_550, 1, limits[k]);
		int p[2];
		T_EQ_INT(pipe(p), 0);
		if (fork() == 0) {
			ssize_t w = write(p[1], big.p, big.len);
			_exit(w == (ssize_t)big.len ? 0 : 1);
		}
		close(p[1]);
		buf_reset(&a);
		buf_reset(&b);
		T_EQ_INT(dsn_build_fd(&r, p[0], &a, &why), 0);
		close(p[0]);
		wait(NULL);
		T_EQ_INT(dsn_build(&r, big.p, big.len, &b, &why), 0);
		T_EQ_INT(a.len, b.len);
		T_CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
		T_EQ_INT(memmem(a.p, a.len, "text/rfc822-headers", 19) != NULL,
		    limits[k] != 0 && limits[k] < big.len);
	}
	buf_free(&big);
	buf_free(&a);
	buf_free(&b);
}

static void test_date(void)
{
	char d[64];
	dsn_date(d, sizeof d, 0);
	T_EQ_STR(d, "Thu, 01 Jan 1970 00:00:00 +0000");
	dsn_date(d, sizeof d, 1700000000);
	T_EQ_STR(d, "Tue, 14 Nov 2023 22:13:20 +0000");
	dsn_date(d, sizeof d, 951782400);
	T_EQ_STR(d, "Tue, 29 Feb 2000 00:00:00 +0000");
}

static void run(void)
{
	test_date();
	test_table();
	test_sanitise();
	test_boundary_clash();
	test_binary_and_errors();
	test_fd();
}

T_MAIN(run)
