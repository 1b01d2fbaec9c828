/* test_smtp_client — table-driven cases for src/mail/smtp_client.c: reply parsing, EHLO
 * keywords, the body transformation, and whole conversations scripted as
 * (server bytes -> expected client bytes) with the per-recipient results at the end. */
#include "t.h"
#include "mail/smtp_client.h"

/* ---- replies ------------------------------------------------------------------------ */

static const struct {
	const char *in;
	int ret, code;
	const char *esc, *text;      /* text: lines joined by '\n' */
	size_t used;                 /* 0 = all */
} reply_cases[] = {
	{ "250 ok\r\n", 1, 250, "", "ok\n", 0 },
	{ "250 2.1.0 Sender ok\r\n", 1, 250, "2.1.0", "Sender ok\n", 0 },
	{ "250\r\n", 1, 250, "", "\n", 0 },
	{ "250 ok\n", 1, 250, "", "ok\n", 0 },                         /* bare LF tolerated */
	{ "250-a\r\n250-b\r\n250 c\r\n", 1, 250, "", "a\nb\nc\n", 0 },
	{ "550-5.1.1 no\r\n550 5.1.1 such user\r\n", 1, 550, "5.1.1", "no\nsuch user\n", 0 },
	{ "550 4.1.1 class mismatch\r\n", 1, 550, "", "4.1.1 class mismatch\n", 0 },
	{ "550 5.1.1.1 too many parts\r\n", 1, 550, "", "5.1.1.1 too many parts\n", 0 },
	{ "550 5.1234.1 long subject\r\n", 1, 550, "", "5.1234.1 long subject\n", 0 },
	{ "550 5.1.1\r\n", 1, 550, "5.1.1", "\n", 0 },
	{ "451 a\x01" "b\r\n", 1, 451, "", "a?b\n", 0 },
	{ "250 one\r\n250 two\r\n", 1, 250, "", "one\n", 9 },           /* one reply at a time */
	{ "250-a\r\n", 0, 250, "", "a\n", 0 },                          /* incomplete */
	{ "250 partial", 0, 0, "", "", 0 },
	{ "25 short\r\n", -1, 0, NULL, NULL, 0 },
	{ "abc\r\n", -1, 0, NULL, NULL, 0 },
	{ "150 one-hundred\r\n", -1, 0, NULL, NULL, 0 },
	{ "650 six-hundred\r\n", -1, 0, NULL, NULL, 0 },
	{ "250x bad separator\r\n", -1, 0, NULL, NULL, 0 },
	{ "250-a\r\n251 b\r\n", -1, 0, NULL, NULL, 0 },                 /* code changed */
	{ "\r\n", -1, 0, NULL, NULL, 0 },
};

static void test_replies(void)
{
	for (size_t i = 0; i < sizeof reply_cases / sizeof reply_cases[0]; i++) {
		struct smtpc_rparse p;
		size_t used = 0, n = strlen(reply_cases[i].in);
		smtpc_rparse_init(&p);
		int r = smtpc_rparse_feed(&p, reply_cases[i].in, n, &used);
		T_EQ_INT(r, reply_cases[i].ret);
		if (r >= 0 && reply_cases[i].ret >= 0) {
			T_EQ_INT(used, reply_cases[i].used ? reply_cases[i].used : n);
			if (r == 1) {
				T_EQ_INT(p.r.code, reply_cases[i].code);
				T_EQ_STR(p.r.esc, reply_cases[i].esc);
				T_EQ_STR(p.r.text.p, reply_cases[i].text);
			}
		}
		smtpc_rparse_free(&p);
	}
}

static void test_reply_limits(void)
{
	struct smtpc_rparse p;
	char line[SMTPC_LINE_MAX + 10];
	size_t used;
	memset(line, 'x', sizeof line);
	memcpy(line, "250 ", 4);
	smtpc_rparse_init(&p);
	T_EQ_INT(smtpc_rparse_feed(&p, line, sizeof line, &used), -1);
	T_EQ_STR(p.err, "reply line too long");
	smtpc_rparse_free(&p);
	/* a line of exactly SMTPC_LINE_MAX bytes with its CRLF is fine */
	memcpy(line + SMTPC_LINE_MAX - 2, "\r\n", 2);
	smtpc_rparse_init(&p);
	T_EQ_INT(smtpc_rparse_feed(&p, line, SMTPC_LINE_MAX, &used), 1);
	smtpc_rparse_free(&p);
	/* a reply of many short lines is cut at SMTPC_REPLY_MAX */
	smtpc_rparse_init(&p);
	int r = 0;
	for (int i = 0; i < 2000 && r == 0; i++)
		r = smtpc_rparse_feed(&p, "250-abcdefghijklmnopqrstuvwxyz\r\n", 32, &used);
	T_EQ_INT(r, -1);
	T_EQ_STR(p.err, "reply too long");
	smtpc_rparse_free(&p);
	/* byte by byte gives the same reply; the next call starts a new one */
	const char *two = "550-5.1.1 a\r\n550 5.1.1 b\r\n221 bye\r\n";
	smtpc_rparse_init(&p);
	size_t off = 0;
	while ((r = smtpc_rparse_feed(&p, two + off, 1, &used)) == 0)
		off++;
	T_EQ_INT(r, 1);
	T_EQ_STR(p.r.text.p, "a\nb\n");
	T_EQ_INT(smtpc_rparse_feed(&p, two + off + 1, strlen(two) - off - 1, &used), 1);
	T_EQ_INT(p.r.code, 221);
	T_EQ_STR(p.r.text.p, "bye\n");
	smtpc_rparse_free(&p);
}

static void test_diag(void)
{
	struct smtpc_rparse p;
	size_t used;
	char d[SMTPC_DIAG_MAX + 100];
	const char *in = "550-5.1.1 <x@y>: no such user\r\n550 5.1.1 try again  \r\n";
	smtpc_rparse_init(&p);
	smtpc_rparse_feed(&p, in, strlen(in), &used);
	smtpc_reply_diag(&p.r, "RCPT TO command", d, sizeof d);
	T_EQ_STR(d, "smtp; 550 5.1.1 <x@y>: no such user try again (in reply to RCPT TO command)");
	smtpc_rparse_free(&p);
	smtpc_rparse_init(&p);
	smtpc_rparse_feed(&p, "554\r\n", 5, &used);
	smtpc_reply_diag(&p.r, "initial greeting", d, sizeof d);
	T_EQ_STR(d, "smtp; 554 (in reply to initial greeting)");
	smtpc_rparse_free(&p);
	/* a long reply is cut, the suffix stays */
	char big[1900];
	memset(big, 'z', sizeof big);
	memcpy(big, "452 ", 4);
	memcpy(big + sizeof big - 2, "\r\n", 2);
	smtpc_rparse_init(&p);
	T_EQ_INT(smtpc_rparse_feed(&p, big, sizeof big, &used), 1);
	smtpc_reply_diag(&p.r, "DATA command", d, sizeof d);
	T_CHECK(strlen(d) <= SMTPC_DIAG_MAX + 40);
	T_CHECK(strstr(d, "zzz (in reply to DATA command)") != NULL);
	smtpc_rparse_free(&p);
}

/* ---- EHLO --------------------------------------------------------------------------- */

static const struct {
	const char *in;
	int pipelining, eightbit, enhanced, starttls, size;
	uint64_t sizemax;
	int auth, plain, login;
} ehlo_cases[] = {
	{ "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
	  "250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n", 1, 1, 1, 1, 1, 10240000, 0, 0, 0 },
	{ "250 mx.example\r\n", 0, 0, 0, 0, 0, 0, 0, 0, 0 },
	{ "250-mx\r\n250-pipelining\r\n250 size\r\n", 1, 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "250-mx\r\n250-SIZE junk\r\n250 8bitmime\r\n", 0, 1, 0, 0, 1, 0, 0, 0, 0 },
	{ "250-mx\r\n250-PIPELININGX\r\n250-XSIZE 5\r\n250 AUTH PLAIN\r\n", 0, 0, 0, 0, 0, 0,
	  1, 1, 0 },
	{ "250-mx\r\n250-SIZE 99999999999999999999999\r\n250 x\r\n", 0, 0, 0, 0, 1, 0, 0, 0, 0 },
	{ "250-PIPELINING\r\n250 mx\r\n", 0, 0, 0, 0, 0, 0, 0, 0, 0 },           /* first line = name */
	{ "250-mx\r\n250-VERYLONGKEYWORDTHATISNOTKNOWNATALLBYUS\r\n250 SIZE 7\r\n",
	  0, 0, 0, 0, 1, 7, 0, 0, 0 },
	{ "250-mx\r\n250 AUTH CRAM-MD5 login PLAIN\r\n", 0, 0, 0, 0, 0, 0, 1, 1, 1 },
	{ "250-mx\r\n250-AUTH=LOGIN\r\n250 AUTH CRAM-MD5\r\n", 0, 0, 0, 0, 0, 0, 1, 0, 1 },
	{ "250-mx\r\n250-AUTHX PLAIN\r\n250 AUTH PLAINX LOGINS\r\n", 0, 0, 0, 0, 0, 0, 1, 0, 0 },
};

static void test_ehlo(void)
{
	for (size_t i = 0; i < sizeof ehlo_cases / sizeof ehlo_cases[0]; i++) {
		struct smtpc_rparse p;
		struct smtpc_caps c;
		size_t used;
		smtpc_rparse_init(&p);
		T_EQ_INT(smtpc_rparse_feed(&p, ehlo_cases[i].in, strlen(ehlo_cases[i].in), &used), 1);
		smtpc_ehlo_parse(&c, &p.r);
		T_EQ_INT(c.esmtp, 1);
		T_EQ_INT(c.pipelining, ehlo_cases[i].pipelining);
		T_EQ_INT(c.eightbitmime, ehlo_cases[i].eightbit);
		T_EQ_INT(c.enhanced, ehlo_cases[i].enhanced);
		T_EQ_INT(c.starttls, ehlo_cases[i].starttls);
		T_EQ_INT(c.size, ehlo_cases[i].size);
		T_EQ_INT(c.sizemax, ehlo_cases[i].sizemax);
		T_EQ_INT(c.auth, ehlo_cases[i].auth);
		T_EQ_INT(c.auth_plain, ehlo_cases[i].plain);
		T_EQ_INT(c.auth_login, ehlo_cases[i].login);
		smtpc_rparse_free(&p);
	}
}

/* ---- body ----------------------------------------------------------------------------- */

static const struct { const char *in, *out; } body_cases[] = {
	{ "", ".\r\n" },
	{ "a\n", "a\r\n.\r\n" },
	{ "a", "a\r\n.\r\n" },
	{ "a\r\nb\r\n", "a\r\nb\r\n.\r\n" },
	{ "a\rb\n", "a\r\nb\r\n.\r\n" },                 /* bare CR */
	{ "a\r\rb", "a\r\n\r\nb\r\n.\r\n" },
	{ "a\r\r\n", "a\r\n\r\n.\r\n" },
	{ ".\n", "..\r\n.\r\n" },
	{ "a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n" },
	{ "a\n..b\n", "a\r\n...b\r\n.\r\n" },
	{ "a.\n.", "a.\r\n..\r\n.\r\n" },
	{ "x\r.\r", "x\r\n..\r\n.\r\n" },
	{ "\n\n", "\r\n\r\n.\r\n" },
	{ "\r\n.\r\n", "\r\n..\r\n.\r\n" },             /* no smuggled end of data */
	{ "caf\xc3\xa9\n", "caf\xc3\xa9\r\n.\r\n" },
};

static void body_run(const char *in, size_t step, struct buf *out)
{
	struct smtpc_body b;
	size_t n = strlen(in);
	smtpc_body_init(&b);
	for (size_t off = 0; off < n; off += step)
		smtpc_body_feed(&b, in + off, off + step > n ? n - off : step, out);
	smtpc_body_end(&b, out);
	T_EQ_INT(b.in, n);
	T_EQ_INT(b.out, out->len);
}

static void test_body(void)
{
	for (size_t i = 0; i < sizeof body_cases / sizeof body_cases[0]; i++)
		for (size_t step = 1; step <= 4; step++) {
			struct buf out;
			buf_init(&out);
			body_run(body_cases[i].in, step, &out);
			T_EQ_STR(out.p, body_cases[i].out);
			buf_free(&out);
		}
}

/* NUL octets never leave (the smuggling shape "\r\n\0.\r\n" stays data); lines over 998
 * octets on the wire are folded with CRLF SP; both fed whole and byte by byte */
static void body_feed_all(const char *in, size_t n, size_t step, struct buf *out,
                          struct smtpc_body *b)
{
	smtpc_body_init(b);
	for (size_t off = 0; off < n; off += step)
		smtpc_body_feed(b, in + off, off + step > n ? n - off : step, out);
	smtpc_body_end(b, out);
}

static void test_body_nul_and_long_lines(void)
{
	static const struct { const char *in; size_t n; const char *out; uint64_t nul; } c[] = {
		{ "a\r\n\0.\r\nb\r\n", 9, "a\r\n..\r\nb\r\n.\r\n", 1 },
		{ "a\0b\n", 4, "ab\r\n.\r\n", 1 },
		{ "\0\0\0", 3, ".\r\n", 3 },
		{ "x\r\0\n.", 5, "x\r\n..\r\n.\r\n", 1 },     /* CR NUL LF is one line end */
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		for (size_t step = 1; step <= c[i].n; step++) {
			struct buf out;
			struct smtpc_body b;
			buf_init(&out);
			body_feed_all(c[i].in, c[i].n, step, &out, &b);
			T_EQ_STR(out.p, c[i].out);
			T_EQ_INT(b.nul, c[i].nul);
			T_EQ_INT(b.out, out.len);
			buf_free(&out);
		}
	static char in[5000 + 64];
	memset(in, 'x', 5000);
	memcpy(in + 5000, "\n.", 2);
	size_t n = 5002;
	in[0] = '.';                       /* a stuffed dot counts toward the 998 */
	for (size_t step = 1; step <= 4096; step *= 4) {
		struct buf out;
		struct smtpc_body b;
		buf_init(&out);
		body_feed_all(in, n, step, &out, &b);
		size_t col = 0, maxcol = 0, lines = 0;
		for (size_t k = 0; k < out.len; k++) {
			if (out.p[k] == '\r') {
				T_CHECK(out.p[k + 1] == '\n');
				maxcol = col > maxcol ? col : maxcol;
				col = 0;
				lines++;
				k++;
			} else
				col++;
		}
		T_EQ_INT(maxcol, SMTPC_TEXT_LINE_MAX);
		T_EQ_INT(b.folds, 5);              /* 5001 wire octets: 998, then 5 x (SP + <= 997) */
		T_EQ_INT(lines, 8);                /* 6 pieces of the long line, "..", "." */
		T_CHECK(out.p[998] == '\r' && out.p[999] == '\n' && out.p[1000] == ' ');
		buf_free(&out);
	}
	/* 998 octets exactly: not folded */
	memset(in, 'y', 998);
	struct buf out;
	struct smtpc_body b;
	buf_init(&out);
	body_feed_all(in, 998, 998, &out, &b);
	T_EQ_INT(b.folds, 0);
	T_EQ_INT(out.len, 998 + 2 + 3);
	buf_free(&out);
}

/* ---- conversations ---------------------------------------------------------------------- */

#define ESMTP "220 mx ESMTP\r\n"
#define CAPS_PIPE "250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"
#define EHLO "EHLO client.test\r\n"

struct step { const char *server, *client; };   /* server "LOST": connection lost */
struct conv {
	const char *name;
	const char *sender, *rcpt[3];
	uint64_t size;
	int eightbit;
	const char *text;
	struct step steps[10];
	const char *result[3];       /* "<status> <diag>" (status 1 ok 2 temp 3 perm) */
	int retry;
	int end;                     /* expected smtpc_want() at the end */
};

static const struct conv convs[] = {
	{ "pipelined, two recipients, 8-bit, dot-stuffing", "s@a.test", { "r1@b.test", "r2@b.test" },
	  100, 1, "Subject: x\n\n.hidden\n\xc3\xa9\n", {
		{ ESMTP, EHLO },
		{ CAPS_PIPE, "MAIL FROM:<s@a.test> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<r1@b.test>\r\n"
		             "RCPT TO:<r2@b.test>\r\nDATA\r\n" },
		{ "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n",
		  "Subject: x\r\n\r\n..hidden\r\n\xc3\xa9\r\n.\r\n" },
		{ "250 2.0.0 queued as X\r\n", "" } },
	  { "1 smtp; 250 2.0.0 queued as X (in reply to end of DATA command)",
	    "1 smtp; 250 2.0.0 queued as X (in reply to end of DATA command)" }, 0, SMTPC_W_TXN },
	{ "one command at a time without PIPELINING", "", { "r1@b.test", "r2@b.test" }, 5, 0, "hi",
	  { { ESMTP, EHLO }, { "250 mx\r\n", "MAIL FROM:<>\r\n" },
	    { "250 ok\r\n", "RCPT TO:<r1@b.test>\r\n" }, { "250 ok\r\n", "RCPT TO:<r2@b.test>\r\n" },
	    { "250 ok\r\n", "DATA\r\n" }, { "354 go\r\n", "hi\r\n.\r\n" }, { "250 ok\r\n", "" } },
	  { "1 smtp; 250 ok (in reply to end of DATA command)",
	    "1 smtp; 250 ok (in reply to end of DATA command)" }, 0, SMTPC_W_TXN },
	{ "per-recipient 5xx and 4xx", "s@a", { "r1@b", "r2@b", "r3@b" }, 1, 0, "x\n", {
		{ ESMTP, EHLO },
		{ CAPS_PIPE, "MAIL FROM:<s@a> SIZE=1\r\nRCPT TO:<r1@b>\r\nRCPT TO:<r2@b>\r\n"
		             "RCPT TO:<r3@b>\r\nDATA\r\n" },
		{ "250 ok\r\n550 5.1.1 <r1@b>: no such user\r\n451 4.3.0 later\r\n250 ok\r\n354 go\r\n",
		  "x\r\n.\r\n" },
		{ "250 done\r\n", "" } },
	  { "3 smtp; 550 5.1.1 <r1@b>: no such user (in reply to RCPT TO command)",
	    "2 smtp; 451 4.3.0 later (in reply to RCPT TO command)",
	    "1 smtp; 250 done (in reply to end of DATA command)" }, 0, SMTPC_W_TXN },
	{ "no accepted recipient without PIPELINING: no DATA", "s@a", { "r1@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250 mx\r\n", "MAIL FROM:<s@a>\r\n" },
		{ "250 ok\r\n", "RCPT TO:<r1@b>\r\n" }, { "550 nope\r\n", "" } },
	  { "3 smtp; 550 nope (in reply to RCPT TO command)" }, 0, SMTPC_W_TXN },
	{ "no accepted recipient, pipelined: DATA refused", "s@a", { "r1@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250-mx\r\n250 PIPELINING\r\n",
		  "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nDATA\r\n" },
		{ "250 ok\r\n450 4.2.1 busy\r\n554 5.5.1 no valid recipients\r\n", "" } },
	  { "2 smtp; 450 4.2.1 busy (in reply to RCPT TO command)" }, 0, SMTPC_W_TXN },
	{ "no accepted recipient, pipelined, DATA 354 anyway: empty text", "s@a", { "r1@b" }, 1, 0,
	  "x", { { ESMTP, EHLO }, { "250-mx\r\n250 PIPELINING\r\n",
	           "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nDATA\r\n" },
		{ "250 ok\r\n550 no\r\n354 go\r\n", ".\r\n" }, { "250 empty\r\n", "" } },
	  { "3 smtp; 550 no (in reply to RCPT TO command)" }, 0, SMTPC_W_TXN },
	{ "4xx greeting: defer, may try another server", "s@a", { "r1@b" }, 1, 0, "x",
	  { { "450 4.3.2 busy\r\n", "QUIT\r\n" }, { "221 bye\r\n", "" } },
	  { "2 smtp; 450 4.3.2 busy (in reply to initial greeting)" }, 1, SMTPC_W_CLOSE },
	{ "5xx greeting: fail", "s@a", { "r1@b", "r2@b" }, 1, 0, "x",
	  { { "554 5.7.1 go away\r\n", "QUIT\r\n" }, { "LOST", "" } },
	  { "3 smtp; 554 5.7.1 go away (in reply to initial greeting)",
	    "3 smtp; 554 5.7.1 go away (in reply to initial greeting)" }, 0, SMTPC_W_CLOSE },
	{ "421 greeting", "s@a", { "r1@b" }, 1, 0, "x", { { "421 closing\r\n", "" } },
	  { "2 smtp; 421 closing (in reply to initial greeting)" }, 1, SMTPC_W_CLOSE },
	{ "EHLO refused: HELO", "s@a", { "r1@b" }, 1, 1, "x", {
		{ ESMTP, EHLO }, { "502 5.5.1 no EHLO\r\n", "HELO client.test\r\n" },
		{ "250 hi\r\n", "MAIL FROM:<s@a>\r\n" }, { "250 ok\r\n", "RCPT TO:<r1@b>\r\n" },
		{ "250 ok\r\n", "DATA\r\n" }, { "354 go\r\n", "x\r\n.\r\n" }, { "250 ok\r\n", "" } },
	  { "1 smtp; 250 ok (in reply to end of DATA command)" }, 0, SMTPC_W_TXN },
	{ "HELO refused too", "s@a", { "r1@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "500 no\r\n", "HELO client.test\r\n" },
		{ "550 5.7.1 bad name\r\n", "QUIT\r\n" } },
	  { "3 smtp; 550 5.7.1 bad name (in reply to HELO command)" }, 0, SMTPC_W_REPLY },
	{ "EHLO 4xx: defer", "s@a", { "r1@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "454 4.7.0 later\r\n", "QUIT\r\n" } },
	  { "2 smtp; 454 4.7.0 later (in reply to EHLO command)" }, 1, SMTPC_W_REPLY },
	{ "MAIL 4xx without PIPELINING", "s@a", { "r1@b", "r2@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250 mx\r\n", "MAIL FROM:<s@a>\r\n" }, { "452 4.3.1 full\r\n", "" } },
	  { "2 smtp; 452 4.3.1 full (in reply to MAIL FROM command)",
	    "2 smtp; 452 4.3.1 full (in reply to MAIL FROM command)" }, 0, SMTPC_W_TXN },
	{ "MAIL 5xx pipelined: the rest is ignored", "s@a", { "r1@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250-mx\r\n250 PIPELINING\r\n",
		                   "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nDATA\r\n" },
		{ "553 5.1.8 bad sender\r\n503 5.5.1 need MAIL\r\n", "" },
		{ "503 5.5.1 need RCPT\r\n", "" } },
	  { "3 smtp; 553 5.1.8 bad sender (in reply to MAIL FROM command)" }, 0, SMTPC_W_TXN },
	{ "DATA 4xx", "s@a", { "r1@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250 mx\r\n", "MAIL FROM:<s@a>\r\n" },
		{ "250 ok\r\n", "RCPT TO:<r1@b>\r\n" }, { "250 ok\r\n", "DATA\r\n" },
		{ "451 4.3.0 no\r\n", "" } },
	  { "2 smtp; 451 4.3.0 no (in reply to DATA command)" }, 0, SMTPC_W_TXN },
	{ "5xx after the dot", "s@a", { "r1@b", "r2@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250-mx\r\n250 PIPELINING\r\n",
		  "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nRCPT TO:<r2@b>\r\nDATA\r\n" },
		{ "250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n", "x\r\n.\r\n" },
		{ "554 5.7.1 spam\r\n", "" } },
	  { "3 smtp; 554 5.7.1 spam (in reply to end of DATA command)",
	    "3 smtp; 550 no (in reply to RCPT TO command)" }, 0, SMTPC_W_TXN },
	{ "4xx after the dot", "s@a", { "r1@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250-mx\r\n250 PIPELINING\r\n",
		  "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nDATA\r\n" },
		{ "250 ok\r\n250 ok\r\n354 go\r\n", "x\r\n.\r\n" }, { "452 4.2.2 full\r\n", "" } },
	  { "2 smtp; 452 4.2.2 full (in reply to end of DATA command)" }, 0, SMTPC_W_TXN },
	{ "connection lost after RCPT", "s@a", { "r1@b", "r2@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250 mx\r\n", "MAIL FROM:<s@a>\r\n" },
		{ "250 ok\r\n", "RCPT TO:<r1@b>\r\n" }, { "550 no\r\n", "RCPT TO:<r2@b>\r\n" },
		{ "LOST", "" } },
	  { "3 smtp; 550 no (in reply to RCPT TO command)", "2 connection lost" }, 0,
	  SMTPC_W_CLOSE },
	{ "connection lost before the greeting: may try another server", "s@a", { "r1@b" }, 1, 0,
	  "x", { { "LOST", "" } }, { "2 connection lost" }, 1, SMTPC_W_CLOSE },
	{ "malformed reply", "s@a", { "r1@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250 mx\r\n", "MAIL FROM:<s@a>\r\n" }, { "hello?\r\n", "" } },
	  { "2 protocol error: malformed reply line" }, 0, SMTPC_W_CLOSE },
	{ "421 in the middle", "s@a", { "r1@b", "r2@b" }, 1, 0, "x", {
		{ ESMTP, EHLO }, { "250-mx\r\n250 PIPELINING\r\n",
		  "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nRCPT TO:<r2@b>\r\nDATA\r\n" },
		{ "250 ok\r\n550 no\r\n421 4.4.2 timeout\r\n", "" } },
	  { "3 smtp; 550 no (in reply to RCPT TO command)",
	    "2 smtp; 421 4.4.2 timeout (in reply to RCPT TO command)" }, 0, SMTPC_W_CLOSE },
	{ "message over the server's SIZE: fail without MAIL", "s@a", { "r1@b" }, 5000, 0, "x", {
		{ ESMTP, EHLO }, { CAPS_PIPE, "" } },
	  { "3 message size 5000 exceeds the size limit 1000 of the remote server (#5.3.4)" }, 0,
	  SMTPC_W_TXN },
	{ "8-bit text to a server without 8BITMIME is sent as is", "s@a", { "r1@b" }, 3, 1,
	  "\xe9\n", { { ESMTP, EHLO }, { "250-mx\r\n250-SIZE\r\n250 PIPELINING\r\n",
	  "MAIL FROM:<s@a> SIZE=3\r\nRCPT TO:<r1@b>\r\nDATA\r\n" },
		{ "250 ok\r\n250 ok\r\n354 go\r\n", "\xe9\r\n.\r\n" }, { "250 ok\r\n", "" } },
	  { "1 smtp; 250 ok (in reply to end of DATA command)" }, 0, SMTPC_W_TXN },
	{ "reply before the end of the text", "s@a", { "r1@b" }, 1, 0, NULL, {
		{ ESMTP, EHLO }, { "250 mx\r\n", "MAIL FROM:<s@a>\r\n" },
		{ "250 ok\r\n", "RCPT TO:<r1@b>\r\n" }, { "250 ok\r\n", "DATA\r\n" },
		{ "354 go\r\n", "" }, { "554 5.3.0 aborted\r\n", "" } },
	  { "3 smtp; 554 5.3.0 aborted (in reply to message text)" }, 0, SMTPC_W_CLOSE },
};

static void conv_check_results(const struct conv *cv, struct smtpc_txn *t)
{
	T_CHECK(t->done);
	T_EQ_INT(t->retry, cv->retry);
	for (size_t i = 0; i < t->n; i++) {
		char got[1200];
		snprintf(got, sizeof got, "%d %s", t->rcpt[i].status,
		         t->rcpt[i].diag ? t->rcpt[i].diag : "");
		T_EQ_STR(got, cv->result[i]);
	}
}

static void conv_step(struct smtpc *c, const struct conv *cv, const struct step *s)
{
	if (strcmp(s->server, "LOST") == 0)
		smtpc_lost(c, "connection lost");
	else
		smtpc_feed(c, s->server, strlen(s->server));
	if (smtpc_want(c) == SMTPC_W_BODY && cv->text) {
		smtpc_body_feed(smtpc_body(c), cv->text, strlen(cv->text), smtpc_out(c));
		smtpc_text_done(c);
	}
	struct buf *out = smtpc_out(c);
	T_EQ_STR(out->len ? out->p : "", s->client);
	buf_reset(out);
}

static void test_conversations(void)
{
	for (size_t k = 0; k < sizeof convs / sizeof convs[0]; k++) {
		const struct conv *cv = &convs[k];
		struct smtpc_rcpt r[3] = { { 0 } };
		struct smtpc_txn t = { cv->sender, cv->size, cv->eightbit, r, 0, 0, 0, 0 };
		while (t.n < 3 && cv->rcpt[t.n])
			r[t.n].addr = cv->rcpt[t.n], t.n++;
		fprintf(stderr, "conversation: %s\n", cv->name);
		struct smtpc *c = smtpc_new("client.test");
		T_EQ_INT(smtpc_begin(c, &t), 0);
		for (size_t i = 0; i < 10 && cv->steps[i].server; i++)
			conv_step(c, cv, &cv->steps[i]);
		T_CHECK(smtpc_finished(c) == &t);
		T_CHECK(smtpc_finished(c) == NULL);
		conv_check_results(cv, &t);
		T_EQ_INT(smtpc_want(c), cv->end);
		smtpc_txn_reset(&t);
		smtpc_free(c);
	}
}

/* ---- LMTP (RFC 2033) ---------------------------------------------------------------------- */

#define LHLO "LHLO client.test\r\n"
#define LMTP_GREET "220 dovecot ready.\r\n"
#define LMTP_CAPS "250-dovecot\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 PIPELINING\r\n"
#define LDOT "(in reply to end of DATA command)"

struct lconv { struct conv cv; int own[3]; };

static const struct lconv lconvs[] = {
	{ { "one reply per accepted recipient after the dot, in RCPT order", "s@a",
	    { "r1@b", "r2@b", "r3@b" }, 1, 0, "x\n", {
		{ LMTP_GREET, LHLO },
		{ LMTP_CAPS, "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nRCPT TO:<r2@b>\r\n"
		             "RCPT TO:<r3@b>\r\nDATA\r\n" },
		{ "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <r2@b> User doesn't exist: r2@b\r\n"
		  "250 2.1.5 OK\r\n354 OK\r\n", "x\r\n.\r\n" },
		{ "250 2.0.0 <r1@b> Saved\r\n", "" },
		{ "452 4.2.2 <r3@b> Quota exceeded (mailbox for user is full)\r\n", "" } },
	  { "1 smtp; 250 2.0.0 <r1@b> Saved " LDOT,
	    "3 smtp; 550 5.1.1 <r2@b> User doesn't exist: r2@b (in reply to RCPT TO command)",
	    "2 smtp; 452 4.2.2 <r3@b> Quota exceeded (mailbox for user is full) " LDOT },
	    0, SMTPC_W_TXN }, { 1, 1, 1 } },
	{ { "the replies after the dot in one read, a 5xx among them", "s@a",
	    { "r1@b", "r2@b", "r3@b" }, 1, 0, "x", {
		{ LMTP_GREET, LHLO },
		{ LMTP_CAPS, "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nRCPT TO:<r2@b>\r\n"
		             "RCPT TO:<r3@b>\r\nDATA\r\n" },
		{ "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "x\r\n.\r\n" },
		{ "250 a\r\n554 5.6.0 b\r\n250 c\r\n", "" } },
	  { "1 smtp; 250 a " LDOT, "3 smtp; 554 5.6.0 b " LDOT, "1 smtp; 250 c " LDOT },
	    0, SMTPC_W_TXN }, { 1, 1, 1 } },
	{ { "one command at a time without PIPELINING", "", { "r1@b", "r2@b" }, 5, 0, "hi",
	  { { LMTP_GREET, LHLO }, { "250 mx\r\n", "MAIL FROM:<>\r\n" },
	    { "250 ok\r\n", "RCPT TO:<r1@b>\r\n" }, { "250 ok\r\n", "RCPT TO:<r2@b>\r\n" },
	    { "250 ok\r\n", "DATA\r\n" }, { "354 go\r\n", "hi\r\n.\r\n" },
	    { "550 5.2.0 no\r\n", "" }, { "250 2.0.0 yes\r\n", "" } },
	  { "3 smtp; 550 5.2.0 no " LDOT, "1 smtp; 250 2.0.0 yes " LDOT }, 0, SMTPC_W_TXN },
	  { 1, 1 } },
	{ { "connection lost among the replies: the rest is temporary, the site's", "s@a",
	    { "r1@b", "r2@b", "r3@b" }, 1, 0, "x", {
		{ LMTP_GREET, LHLO },
		{ LMTP_CAPS, "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nRCPT TO:<r2@b>\r\n"
		             "RCPT TO:<r3@b>\r\nDATA\r\n" },
		{ "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "x\r\n.\r\n" },
		{ "250 2.0.0 saved\r\n", "" }, { "LOST", "" } },
	  { "1 smtp; 250 2.0.0 saved " LDOT, "2 connection lost", "2 connection lost" },
	    0, SMTPC_W_CLOSE }, { 1, 0, 0 } },
	{ { "421 among the replies", "s@a", { "r1@b", "r2@b" }, 1, 0, "x", {
		{ LMTP_GREET, LHLO },
		{ LMTP_CAPS, "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nRCPT TO:<r2@b>\r\nDATA\r\n" },
		{ "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "x\r\n.\r\n" },
		{ "421 4.3.2 shutting down\r\n", "" } },
	  { "2 smtp; 421 4.3.2 shutting down " LDOT,
	    "2 smtp; 421 4.3.2 shutting down " LDOT }, 0, SMTPC_W_CLOSE }, { 0, 0 } },
	{ { "LHLO refused: no HELO fallback", "s@a", { "r1@b" }, 1, 0, "x", {
		{ LMTP_GREET, LHLO }, { "500 5.5.1 unknown command\r\n", "QUIT\r\n" } },
	  { "3 smtp; 500 5.5.1 unknown command (in reply to LHLO command)" }, 0, SMTPC_W_REPLY },
	  { 0 } },
	{ { "354 with no accepted recipient: the reply count is unknown, close", "s@a",
	    { "r1@b" }, 1, 0, "x", {
		{ LMTP_GREET, LHLO },
		{ LMTP_CAPS, "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nDATA\r\n" },
		{ "250 ok\r\n550 5.1.1 no\r\n354 go\r\n", "" } },
	  { "3 smtp; 550 5.1.1 no (in reply to RCPT TO command)" }, 0, SMTPC_W_CLOSE }, { 1 } },
	{ { "no accepted recipient, DATA refused", "s@a", { "r1@b" }, 1, 0, "x", {
		{ LMTP_GREET, LHLO },
		{ LMTP_CAPS, "MAIL FROM:<s@a>\r\nRCPT TO:<r1@b>\r\nDATA\r\n" },
		{ "250 ok\r\n451 4.3.0 later\r\n503 5.5.1 No valid recipients\r\n", "" } },
	  { "2 smtp; 451 4.3.0 later (in reply to RCPT TO command)" }, 0, SMTPC_W_TXN },
	  { 1 } },
};

static void test_lmtp_conversations(void)
{
	for (size_t k = 0; k < sizeof lconvs / sizeof lconvs[0]; k++) {
		const struct conv *cv = &lconvs[k].cv;
		struct smtpc_rcpt r[3] = { { 0 } };
		struct smtpc_txn t = { cv->sender, cv->size, cv->eightbit, r, 0, 0, 0, 0 };
		while (t.n < 3 && cv->rcpt[t.n])
			r[t.n].addr = cv->rcpt[t.n], t.n++;
		fprintf(stderr, "lmtp conversation: %s\n", cv->name);
		struct smtpc *c = smtpc_new("client.test");
		smtpc_set_lmtp(c, 1);
		T_EQ_INT(smtpc_lmtp(c), 1);
		T_EQ_INT(smtpc_begin(c, &t), 0);
		for (size_t i = 0; i < 10 && cv->steps[i].server; i++) {
			T_CHECK(smtpc_finished(c) == NULL);   /* not before its last reply */
			conv_step(c, cv, &cv->steps[i]);
		}
		T_CHECK(smtpc_finished(c) == &t);
		conv_check_results(cv, &t);
		for (size_t i = 0; i < t.n; i++)
			T_EQ_INT(r[i].own, lconvs[k].own[i]);
		T_EQ_INT(smtpc_want(c), cv->end);
		smtpc_txn_reset(&t);
		smtpc_free(c);
	}
}

#define FEED(c, s) smtpc_feed((c), (s), strlen(s))

/* two messages on one connection: RSET before the second; then QUIT */
static void test_reuse(void)
{
	struct smtpc_rcpt r1[1] = { { "a@b", 0, 0, NULL, 0 } }, r2[1] = { { "c@d", 0, 0, NULL, 0 } };
	struct smtpc_txn t1 = { "s@x", 1, 0, r1, 1, 0, 0, 0 }, t2 = { "", 1, 0, r2, 1, 0, 0, 0 };
	struct smtpc *c = smtpc_new("me.test");
	struct buf *out = smtpc_out(c);
	smtpc_begin(c, &t1);
	FEED(c, "220 hi\r\n250-mx\r\n250 PIPELINING\r\n");
	T_EQ_STR(out->p, "EHLO me.test\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@b>\r\nDATA\r\n");
	buf_reset(out);
	FEED(c, "250 ok\r\n250 ok\r\n354 go\r\n");
	T_EQ_INT(smtpc_want(c), SMTPC_W_BODY);
	T_EQ_INT(smtpc_begin(c, &t2), -1);                 /* busy */
	smtpc_text_done(c);
	FEED(c, "250 ok\r\n");
	T_CHECK(smtpc_finished(c) == &t1);
	T_EQ_INT(r1[0].status, SMTPC_OK);
	T_EQ_INT(smtpc_usable(c), 1);
	buf_reset(out);
	T_EQ_INT(smtpc_begin(c, &t2), 0);
	T_EQ_STR(out->p, "RSET\r\n");
	buf_reset(out);
	FEED(c, "250 2.0.0 reset\r\n");
	T_EQ_STR(out->p, "MAIL FROM:<>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
	buf_reset(out);
	FEED(c, "250 ok\r\n250 ok\r\n354 go\r\n");
	smtpc_text_done(c);
	T_EQ_STR(out->p, ".\r\n");
	buf_reset(out);
	FEED(c, "250 ok\r\n");
	T_CHECK(smtpc_finished(c) == &t2);
	T_EQ_INT(r2[0].status, SMTPC_OK);
	smtpc_quit(c);
	T_EQ_STR(out->p, "QUIT\r\n");
	T_EQ_INT(smtpc_want(c), SMTPC_W_REPLY);
	T_EQ_INT(FEED(c, "221 bye\r\n"), -1);
	T_EQ_INT(smtpc_want(c), SMTPC_W_CLOSE);
	smtpc_txn_reset(&t1);
	smtpc_txn_reset(&t2);
	smtpc_free(c);
}

/* LMTP: two messages on one connection (LHLO once, RSET before the second), then QUIT */
static void test_lmtp_reuse(void)
{
	struct smtpc_rcpt r1[2] = { { "a@b", 0, 0, NULL, 0 }, { "e@b", 0, 0, NULL, 0 } };
	struct smtpc_rcpt r2[1] = { { "c@d", 0, 0, NULL, 0 } };
	struct smtpc_txn t1 = { "s@x", 1, 0, r1, 2, 0, 0, 0 }, t2 = { "", 1, 0, r2, 1, 0, 0, 0 };
	struct smtpc *c = smtpc_new("me.test");
	struct buf *out = smtpc_out(c);
	smtpc_set_lmtp(c, 1);
	smtpc_begin(c, &t1);
	FEED(c, "220 lmtp\r\n250-mx\r\n250 PIPELINING\r\n");
	T_EQ_STR(out->p, "LHLO me.test\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@b>\r\nRCPT TO:<e@b>\r\n"
	         "DATA\r\n");
	buf_reset(out);
	FEED(c, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	smtpc_text_done(c);
	FEED(c, "250 ok\r\n");
	T_CHECK(smtpc_finished(c) == NULL);                /* one reply still due */
	T_EQ_INT(smtpc_usable(c), 0);
	FEED(c, "250 ok\r\n");
	T_CHECK(smtpc_finished(c) == &t1);
	T_EQ_INT(t1.nok, 2);
	buf_reset(out);
	T_EQ_INT(smtpc_begin(c, &t2), 0);
	T_EQ_STR(out->p, "RSET\r\n");
	buf_reset(out);
	FEED(c, "250 2.0.0 OK\r\n");
	T_EQ_STR(out->p, "MAIL FROM:<>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
	buf_reset(out);
	FEED(c, "250 ok\r\n250 ok\r\n354 go\r\n");
	smtpc_text_done(c);
	FEED(c, "452 4.2.2 full\r\n");
	T_CHECK(smtpc_finished(c) == &t2);
	T_EQ_INT(r2[0].status, SMTPC_TEMP);
	T_EQ_INT(r2[0].own, 1);
	buf_reset(out);
	smtpc_quit(c);
	T_EQ_STR(out->p, "QUIT\r\n");
	T_EQ_INT(FEED(c, "221 bye\r\n"), -1);
	smtpc_txn_reset(&t1);
	smtpc_txn_reset(&t2);
	smtpc_free(c);
}

/* a failed RSET on a reused connection: retry elsewhere, nothing was sent */
static void test_rset_fails(void)
{
	struct smtpc_rcpt r1[1] = { { "a@b", 0, 0, NULL, 0 } }, r2[1] = { { "c@d", 0, 0, NULL, 0 } };
	struct smtpc_txn t1 = { "s@x", 1, 0, r1, 1, 0, 0, 0 }, t2 = { "s@x", 1, 0, r2, 1, 0, 0, 0 };
	struct smtpc *c = smtpc_new("me.test");
	smtpc_begin(c, &t1);
	FEED(c, "220 hi\r\n250 mx\r\n250 ok\r\n550 no\r\n");
	T_CHECK(smtpc_finished(c) == &t1);
	T_EQ_INT(r1[0].status, SMTPC_PERM);
	buf_reset(smtpc_out(c));
	T_EQ_INT(smtpc_begin(c, &t2), 0);
	FEED(c, "500 what?\r\n");
	T_CHECK(smtpc_finished(c) == &t2);
	T_EQ_INT(r2[0].status, SMTPC_TEMP);
	T_EQ_INT(t2.retry, 1);
	T_EQ_STR(smtpc_out(c)->p, "RSET\r\nQUIT\r\n");
	smtpc_lost(c, "eof");
	T_EQ_INT(smtpc_want(c), SMTPC_W_CLOSE);
	smtpc_txn_reset(&t1);
	smtpc_txn_reset(&t2);
	smtpc_free(c);
}

/* ---- STARTTLS and AUTH ------------------------------------------------------------------ */

struct tconv {
	const char *name;
	int tls;                     /* enum smtpc_tls */
	const char *user, *pass;
	int plaintext;
	struct step steps[10];       /* server "TLS": the handshake succeeded (smtpc_tls_done) */
	const char *result;
	int retry, end, tls_active, authed;
};

#define CAPS_TLS "250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n"
#define CAPS_AUTH "250-mx\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n"
#define TXN "MAIL FROM:<s@a>\r\nRCPT TO:<r@b>\r\nDATA\r\n"
#define TXN_OK "250 ok\r\n250 ok\r\n354 go\r\n"
#define DOT_OK "1 smtp; 250 ok (in reply to end of DATA command)"

static const struct tconv tconvs[] = {
	{ "may: STARTTLS offered, taken, EHLO again", SMTPC_TLS_MAY, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { CAPS_TLS, "STARTTLS\r\n" }, { "220 go ahead\r\n", "" },
		{ "TLS", EHLO }, { "250-mx\r\n250 PIPELINING\r\n", TXN },
		{ TXN_OK, "x\r\n.\r\n" }, { "250 ok\r\n", "" } },
	  DOT_OK, 0, SMTPC_W_TXN, 1, 0 },
	{ "may: not offered, plaintext", SMTPC_TLS_MAY, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { "250-mx\r\n250 PIPELINING\r\n", TXN },
		{ TXN_OK, "x\r\n.\r\n" }, { "250 ok\r\n", "" } },
	  DOT_OK, 0, SMTPC_W_TXN, 0, 0 },
	{ "none: offered but not used", SMTPC_TLS_NONE, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { CAPS_TLS, TXN }, { TXN_OK, "x\r\n.\r\n" }, { "250 ok\r\n", "" } },
	  DOT_OK, 0, SMTPC_W_TXN, 0, 0 },
	{ "may: STARTTLS refused, plaintext", SMTPC_TLS_MAY, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { CAPS_TLS, "STARTTLS\r\n" }, { "454 4.7.0 not now\r\n", TXN },
		{ TXN_OK, "x\r\n.\r\n" }, { "250 ok\r\n", "" } },
	  DOT_OK, 0, SMTPC_W_TXN, 0, 0 },
	{ "encrypt: not offered, 4.7.4, another server may do", SMTPC_TLS_ENCRYPT, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { "250-mx\r\n250 PIPELINING\r\n", "QUIT\r\n" } },
	  "2 TLS is required, but the server did not offer STARTTLS (#4.7.4)", 1, SMTPC_W_REPLY,
	  0, 0 },
	{ "verify: refused", SMTPC_TLS_VERIFY, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { CAPS_TLS, "STARTTLS\r\n" }, { "554 5.7.0 no\r\n", "QUIT\r\n" } },
	  "2 TLS is required, but STARTTLS was refused (#4.7.4): smtp; 554 5.7.0 no (in reply to "
	  "STARTTLS command)", 1, SMTPC_W_REPLY, 0, 0 },
	{ "encrypt: HELO-only server", SMTPC_TLS_ENCRYPT, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { "500 what\r\n", "HELO client.test\r\n" },
		{ "250 hi\r\n", "QUIT\r\n" } },
	  "2 TLS is required, but the server did not offer STARTTLS (#4.7.4)", 1, SMTPC_W_REPLY,
	  0, 0 },
	{ "plaintext after 220 is dropped (injection)", SMTPC_TLS_MAY, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { CAPS_TLS, "STARTTLS\r\n" },
		{ "220 go\r\n250-fake\r\n250 AUTH PLAIN\r\n", "" },
		{ "TLS", EHLO }, { "250 mx\r\n", "MAIL FROM:<s@a>\r\n" } },
	  NULL, 0, SMTPC_W_REPLY, 1, 0 },
	{ "AUTH PLAIN over TLS", SMTPC_TLS_MAY, "joe", "s3cret", 0, {
		{ ESMTP, EHLO }, { CAPS_TLS, "STARTTLS\r\n" }, { "220 go\r\n", "" },
		{ "TLS", EHLO }, { CAPS_AUTH, "AUTH PLAIN AGpvZQBzM2NyZXQ=\r\n" },
		{ "235 2.7.0 ok\r\n", TXN }, { TXN_OK, "x\r\n.\r\n" }, { "250 ok\r\n", "" } },
	  DOT_OK, 0, SMTPC_W_TXN, 1, 1 },
	{ "AUTH LOGIN when PLAIN is not offered", SMTPC_TLS_NONE, "joe", "s3cret", 1, {
		{ ESMTP, EHLO }, { "250-mx\r\n250 AUTH=LOGIN\r\n", "AUTH LOGIN\r\n" },
		{ "334 VXNlcm5hbWU6\r\n", "am9l\r\n" }, { "334 UGFzc3dvcmQ6\r\n", "czNjcmV0\r\n" },
		{ "235 ok\r\n", "MAIL FROM:<s@a>\r\n" } },
	  NULL, 0, SMTPC_W_REPLY, 0, 1 },
	{ "AUTH refused: 4.x defer, another server may do", SMTPC_TLS_NONE, "joe", "bad", 1, {
		{ ESMTP, EHLO }, { CAPS_AUTH, "AUTH PLAIN AGpvZQBiYWQ=\r\n" },
		{ "535 5.7.8 bad credentials\r\n", "QUIT\r\n" } },
	  "2 smtp; 535 5.7.8 bad credentials (in reply to AUTH command)", 1, SMTPC_W_REPLY, 0, 0 },
	{ "AUTH never in clear unless allowed", SMTPC_TLS_MAY, "joe", "s3cret", 0, {
		{ ESMTP, EHLO }, { CAPS_AUTH, "QUIT\r\n" } },
	  "2 not sending the AUTH password over an unencrypted connection (#4.7.0)", 1,
	  SMTPC_W_REPLY, 0, 0 },
	{ "credentials, server without AUTH: mail without it", SMTPC_TLS_NONE, "joe", "x", 1, {
		{ ESMTP, EHLO }, { "250 mx\r\n", "MAIL FROM:<s@a>\r\n" } },
	  NULL, 0, SMTPC_W_REPLY, 0, 0 },
	{ "EHLO refused after TLS: defer", SMTPC_TLS_ENCRYPT, NULL, NULL, 0, {
		{ ESMTP, EHLO }, { CAPS_TLS, "STARTTLS\r\n" }, { "220 go\r\n", "" },
		{ "TLS", EHLO }, { "554 5.7.1 no\r\n", "QUIT\r\n" } },
	  "2 smtp; 554 5.7.1 no (in reply to EHLO command)", 1, SMTPC_W_REPLY, 1, 0 },
};

static void test_tls_auth(void)
{
	for (size_t k = 0; k < sizeof tconvs / sizeof tconvs[0]; k++) {
		const struct tconv *cv = &tconvs[k];
		struct smtpc_rcpt r[1] = { { "r@b", 0, 0, NULL, 0 } };
		struct smtpc_txn t = { "s@a", 1, 0, r, 1, 0, 0, 0 };
		fprintf(stderr, "tls/auth conversation: %s\n", cv->name);
		struct smtpc *c = smtpc_new("client.test");
		smtpc_set_tls(c, cv->tls);
		if (cv->user)
			smtpc_set_auth(c, cv->user, cv->pass, cv->plaintext);
		T_EQ_INT(smtpc_begin(c, &t), 0);
		for (size_t i = 0; i < 10 && cv->steps[i].server; i++) {
			const struct step *st = &cv->steps[i];
			if (strcmp(st->server, "TLS") == 0) {
				T_EQ_INT(smtpc_want(c), SMTPC_W_TLS);
				smtpc_tls_done(c);
			} else {
				smtpc_feed(c, st->server, strlen(st->server));
			}
			if (smtpc_want(c) == SMTPC_W_BODY) {
				smtpc_body_feed(smtpc_body(c), "x", 1, smtpc_out(c));
				smtpc_text_done(c);
			}
			struct buf *out = smtpc_out(c);
			T_EQ_STR(out->len ? out->p : "", st->client);
			buf_reset(out);
		}
		if (cv->result) {
			char got[1200];
			T_CHECK(smtpc_finished(c) == &t);
			snprintf(got, sizeof got, "%d %s", r[0].status, r[0].diag ? r[0].diag : "");
			T_EQ_STR(got, cv->result);
			T_EQ_INT(t.retry, cv->retry);
		}
		T_EQ_INT(smtpc_want(c), cv->end);
		T_EQ_INT(smtpc_tls_active(c), cv->tls_active);
		T_EQ_INT(smtpc_authed(c), cv->authed);
		smtpc_txn_reset(&t);
		smtpc_free(c);
	}
}

/* what came after the 220 to STARTTLS in the same read is counted, for the caller's log */
static void test_tls_dropped(void)
{
	static const char inj[] = "250-fake\r\n250 AUTH PLAIN\r\n";
	struct smtpc_rcpt r[1] = { { "r@b", 0, 0, NULL, 0 } };
	struct smtpc_txn t = { "s@a", 1, 0, r, 1, 0, 0, 0 };
	struct smtpc *c = smtpc_new("client.test");
	smtpc_set_tls(c, SMTPC_TLS_MAY);
	T_EQ_INT(smtpc_begin(c, &t), 0);
	smtpc_feed(c, ESMTP, strlen(ESMTP));
	smtpc_feed(c, CAPS_TLS, strlen(CAPS_TLS));
	T_EQ_INT((int)smtpc_tls_dropped(c), 0);
	char in[200];
	snprintf(in, sizeof in, "220 go\r\n%s", inj);
	smtpc_feed(c, in, strlen(in));
	T_EQ_INT(smtpc_want(c), SMTPC_W_TLS);
	T_EQ_INT((int)smtpc_tls_dropped(c), (int)strlen(inj));
	smtpc_txn_reset(&t);
	smtpc_free(c);
}

/* the caller's verdict on the greeting: go on, or every recipient fails and QUIT follows */
static int greet_verdict(void *arg, const struct smtpc_reply *rep, char *diag, size_t dsz)
{
	int st = *(int *)arg;
	snprintf(diag, dsz, "verdict on: %.*s", (int)rep->text.len - 1, rep->text.p);
	return st;
}

static void test_greet_check(void)
{
	static const int verdicts[] = { SMTPC_OPEN, SMTPC_TEMP, SMTPC_PERM };
	for (size_t i = 0; i < 3; i++) {
		int v = verdicts[i];
		struct smtpc_rcpt r[2] = { { "r@b", 0, 0, NULL, 0 }, { "q@b", 0, 0, NULL, 0 } };
		struct smtpc_txn t = { "s@a", 1, 0, r, 2, 0, 0, 0 };
		struct smtpc *c = smtpc_new("client.test");
		smtpc_set_greet_check(c, greet_verdict, &v);
		T_EQ_INT(smtpc_begin(c, &t), 0);
		smtpc_feed(c, "220 mx ESMTP c00kie\r\n", 21);
		struct buf *out = smtpc_out(c);
		T_EQ_STR(out->len ? out->p : "", v == SMTPC_OPEN ? "EHLO client.test\r\n" : "QUIT\r\n");
		if (v != SMTPC_OPEN) {
			T_CHECK(smtpc_finished(c) == &t);
			T_EQ_INT(r[0].status, v);
			T_EQ_INT(r[1].status, v);
			T_EQ_STR(r[1].diag, "verdict on: mx ESMTP c00kie");
			T_EQ_INT(t.retry, v == SMTPC_TEMP);    /* before MAIL: another address may do */
		}
		smtpc_txn_reset(&t);
		smtpc_free(c);
	}
}

static void run(void)
{
	test_greet_check();
	test_tls_auth();
	test_tls_dropped();
	test_replies();
	test_reply_limits();
	test_diag();
	test_ehlo();
	test_body();
	test_body_nul_and_long_lines();
	test_conversations();
	test_lmtp_conversations();
	test_lmtp_reuse();
	test_reuse();
	test_rset_fails();
}

T_MAIN(run)
