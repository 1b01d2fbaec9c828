/* test_autoreply — RFC 3834 decisions, the reply message and the reply memory
 * (src/mail/autoreply.c), table-driven. Trusts: nothing. */
#include "t.h"
#include "mail/autoreply.h"

static const char HDR[] =
	"Received: x\nSubject: lunch\n  tomorrow?\nMessage-ID: <m1@x.test>\n"
	"References: <a@x.test>\n\nPrecedence: bulk\nbody\n";

static void test_header(void)
{
	struct buf v;
	buf_init(&v);
	T_EQ_INT(autoreply_header(HDR, strlen(HDR), "subject", &v), 1);
	T_EQ_STR(v.p, "lunch tomorrow?");
	T_EQ_INT(autoreply_header(HDR, strlen(HDR), "Precedence", &v), 0);   /* in the body */
	T_EQ_INT(autoreply_header(HDR, strlen(HDR), "Subj", &v), 0);
	const char crlf[] = "A: 1\r\nB:\t two \r\n\r\nC: 3\r\n";
	T_EQ_INT(autoreply_header(crlf, strlen(crlf), "B", &v), 1);
	T_EQ_STR(v.p, "two");
	T_EQ_INT(autoreply_header(crlf, strlen(crlf), "C", &v), 0);
	T_EQ_INT(autoreply_header("X: a\rb\n", 7, "X", &v), 1);
	T_EQ_STR(v.p, "a b");
	buf_free(&v);
}

static void test_refuse(void)
{
	static const struct { const char *sender, *hdr; int refused; } cases[] = {
		{ "alice@x.test", "To: joe@x.test\nSubject: hi\n\n", 0 },
		{ "", "\n", 1 }, { "#@[]", "\n", 1 },
		{ "MAILER-DAEMON@x.test", "\n", 1 }, { "Postmaster@x.test", "\n", 1 },
		{ "owner-l@x.test", "\n", 1 }, { "l-owner@x.test", "\n", 1 },
		{ "l-request@x.test", "\n", 1 }, { "noreply@x.test", "\n", 1 },
		{ "requester@x.test", "To: joe@x.test\n\n", 0 },
		{ "a@x.test", "To: joe@x.test\nPrecedence: BULK\n\n", 1 },
		{ "a@x.test", "To: joe@x.test\nprecedence: list\n\n", 1 },
		{ "a@x.test", "To: joe@x.test\nPrecedence: junk\n\n", 1 },
		{ "a@x.test", "To: joe@x.test\nPrecedence: first\n\n", 0 },
		{ "a@x.test", "To: joe@x.test\nList-Id: <l>\n\n", 1 },
		{ "a@x.test", "To: joe@x.test\nList-Unsubscribe: <u>\n\n", 1 },
		{ "a@x.test", "To: joe@x.test\nAuto-Submitted: auto-replied\n\n", 1 },
		{ "a@x.test", "To: joe@x.test\nAuto-Submitted: no\n\n", 0 },
		{ "a@x.test", "To: joe@x.test\nAuto-Submitted: No (comment)\n\n", 0 },
		{ "a@x.test", "To: joe@x.test\nAuto-Submitted: nope\n\n", 1 },
		/* RFC 3834 §2: the recipient must be named in To, Cc, Resent-To or Resent-Cc */
		{ "a@x.test", "Subject: hi\n\n", 1 },                         /* Bcc */
		{ "a@x.test", "To: other@x.test\nCc: more@x.test\n\n", 1 },
		{ "a@x.test", "To: other@x.test\nCc: Joe <JOE@X.Test>\n\n", 0 },
		{ "a@x.test", "To: a@b,\n  \"J\" <joe@x.test> (c)\n\n", 0 },   /* folded */
		{ "a@x.test", "Resent-To: joe@x.test\n\n", 0 },
		{ "a@x.test", "Resent-Cc: x@y, joe@x.test\n\n", 0 },
		{ "a@x.test", "To: x@y\nTo: joe@x.test\n\n", 0 },            /* the second */
		{ "a@x.test", "To: xjoe@x.test, joe@x.test.evil\n\n", 1 },
		{ "a@x.test", "To: other@x.test\n\nTo: joe@x.test\n", 1 },   /* in the body */
		{ "a@x.test", "Bcc: joe@x.test\nX-To: joe@x.test\n\n", 1 },
		{ "a@x.test", "From: joe@x.test\n\n", 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = autoreply_refuse(cases[i].sender, "joe@x.test", cases[i].hdr,
						   strlen(cases[i].hdr), 1);
		if ((why != NULL) != cases[i].refused)
			fprintf(stderr, "case %zu: %s\n", i, why ? why : "(answered)");
		T_EQ_INT(why != NULL, cases[i].refused);
	}
}

/* a header section longer than what was read is refused: a field beyond it is unknown */
static void test_refuse_partial(void)
{
	const char full[] = "To: joe@x.test\nSubject: x\n\nbody";
	const char cut[] = "To: joe@x.test\nSubject: x\nX-Pad: aaaa";
	T_CHECK(autoreply_refuse("a@x.test", "joe@x.test", full, strlen(full), 0) == NULL);
	T_CHECK(autoreply_refuse("a@x.test", "joe@x.test", cut, strlen(cut), 0) != NULL);
	/* the whole message without a body: nothing unread, answered */
	T_CHECK(autoreply_refuse("a@x.test", "joe@x.test", cut, strlen(cut), 1) == NULL);
}

static void test_build(void)
{
	struct buf b;
	buf_init(&b);
	autoreply_build(&b, "joe@x.test", "alice@y.test", HDR, strlen(HDR), "Away.\r\nBack.",
			0, 42);
	T_EQ_STR(b.p, "From: <joe@x.test>\nTo: <alice@y.test>\nSubject: Re: lunch tomorrow?\n"
		 "Date: Thu, 01 Jan 1970 00:00:00 +0000\nMessage-ID: <0.42.autoreply@x.test>\n"
		 "In-Reply-To: <m1@x.test>\nReferences: <a@x.test> <m1@x.test>\n"
		 "Auto-Submitted: auto-replied\nPrecedence: bulk\nMIME-Version: 1.0\n"
		 "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
		 "Away.\nBack.\n");
	buf_reset(&b);
	const char h2[] = "Subject: RE: x\nMessage-ID: bogus\n\n";
	autoreply_build(&b, "joe@x.test", "a\nb@y", h2, strlen(h2), "t\n", 0, 1);
	T_CHECK(strstr(b.p, "\nSubject: RE: x\n") != NULL);
	T_CHECK(strstr(b.p, "In-Reply-To") == NULL);
	T_CHECK(strstr(b.p, "To: <a_b@y>\n") != NULL);
	buf_free(&b);
}

static void test_seen(void)
{
	struct buf m;
	buf_init(&m);
	time_t now = 1000000;
	T_EQ_INT(autoreply_seen("", 0, "a@x", now, &m), 0);
	T_EQ_STR(m.p, "1000000 a@x\n");
	const char mem[] = "999000 A@X\n100 old@x\ngarbage\n2000000 future@x\n999999 b@x\n";
	T_EQ_INT(autoreply_seen(mem, strlen(mem), "a@x", now, &m), 1);
	T_EQ_STR(m.p, "999000 A@X\n999999 b@x\n");
	T_EQ_INT(autoreply_seen(mem, strlen(mem), "c d@x", now, &m), 0);
	T_EQ_STR(m.p, "999000 A@X\n999999 b@x\n1000000 c_d@x\n");
	/* the limit: the oldest go first */
	struct buf big;
	buf_init(&big);
	for (int i = 0; i < AUTOREPLY_MAXMEM + 5; i++)
		buf_printf(&big, "%d u%d@x\n", 900000 + i, i);
	T_EQ_INT(autoreply_seen(big.p, big.len, "new@x", now, &m), 0);
	size_t lines = 0;
	for (size_t i = 0; i < m.len; i++)
		lines += m.p[i] == '\n';
	T_EQ_INT(lines, AUTOREPLY_MAXMEM);
	T_CHECK(strstr(m.p, " u5@x\n") == NULL && strstr(m.p, " u6@x\n") != NULL);
	buf_free(&big);
	buf_free(&m);
}

/* tern-reply's -t: seconds or one unit, 1 s .. a year, nothing else */
static void test_interval(void)
{
	static const struct { const char *in; long long secs; } cases[] = {
		{ "1", 1 }, { "3600", 3600 }, { "90s", 90 }, { "5m", 300 }, { "2h", 7200 },
		{ "7d", 604800 }, { "1w", 604800 }, { "365d", 31536000 }, { "31536000", 31536000 },
		{ "", -1 }, { "0", -1 }, { "0d", -1 }, { "d", -1 }, { "-1", -1 }, { "+5", -1 },
		{ "5x", -1 }, { "5dd", -1 }, { "5 d", -1 }, { " 5", -1 }, { "366d", -1 },
		{ "53w", -1 }, { "31536001", -1 }, { "99999999999999999999999", -1 },
		{ "1.5h", -1 }, { "5D", -1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long long secs = -1;
		int rc = autoreply_interval(cases[i].in, &secs);
		T_EQ_INT(rc, cases[i].secs < 0 ? -1 : 0);
		if (cases[i].secs >= 0)
			T_EQ_INT(secs, cases[i].secs);
	}
}

/* a window of one hour: an answer 59 minutes ago counts, one 61 minutes ago does not */
static void test_seen_for(void)
{
	struct buf m;
	buf_init(&m);
	const char mem[] = "996460 a@x\n996340 b@x\n";
	T_EQ_INT(autoreply_seen_for(mem, strlen(mem), "a@x", 1000000, 3600, &m), 1);
	T_EQ_STR(m.p, "996460 a@x\n");
	T_EQ_INT(autoreply_seen_for(mem, strlen(mem), "b@x", 1000000, 3600, &m), 0);
	T_EQ_STR(m.p, "996460 a@x\n1000000 b@x\n");
	buf_free(&m);
}

/* tern-reply's -a: any of the user's addresses in To/Cc will do; an empty one never */
static void test_refuse_any(void)
{
	const char h[] = "To: Joe <joe.smith@x.test>\nSubject: hi\n\n";
	const char *const one[] = { "joe@x.test" }, *const two[] = { "joe@x.test",
		"joe.smith@x.test" }, *const empty[] = { "" };
	T_CHECK(autoreply_refuse_any("a@y.test", one, 1, h, strlen(h), 1) != NULL);
	T_CHECK(autoreply_refuse_any("a@y.test", two, 2, h, strlen(h), 1) == NULL);
	T_CHECK(autoreply_refuse_any("a@y.test", empty, 1, h, strlen(h), 1) != NULL);
	T_CHECK(autoreply_refuse_any("", two, 2, h, strlen(h), 1) != NULL);
}

static void run(void)
{
	test_interval();
	test_seen_for();
	test_refuse_any();
	test_header();
	test_refuse();
	test_refuse_partial();
	test_build();
	test_seen();
}
T_MAIN(run)
