/* test_qp_cmd — the Bongo queue protocol's parser and codecs (src/mail/qp_cmd.c): a table of
 * command lines with the verb, code and arguments each must give; entry names; replies;
 * control data; CRLF/LF and dot codecs fed in every split; the header/body split. */
#include "t.h"
#include "mail/qp_cmd.h"
#include "mail/envelope.h"

static const struct pcase {
	const char *line;
	enum qp_verb verb;
	int code;
	int argc;
	const char *a0, *a1, *alast;
} pcases[] = {
	{ "QUIT", QP_QUIT, 0, 0, NULL, NULL, NULL },
	{ "quit", QP_QUIT, 0, 0, NULL, NULL, NULL },
	{ "  QuIt  ", QP_QUIT, 0, 0, NULL, NULL, NULL },
	{ "AUTH 0376AF4B57CE88147693730583947830", QP_AUTH, 0, 1,
	  "0376AF4B57CE88147693730583947830", NULL, NULL },
	{ "auth system abc", QP_AUTH_SYSTEM, 0, 1, "abc", NULL, NULL },
	{ "AUTH SYSTEM", QP_AUTH_SYSTEM, 3010, 0, NULL, NULL, NULL },
	{ "AUTH", QP_AUTH, 3010, 0, NULL, NULL, NULL },
	{ "AUTH a b", QP_AUTH, 3010, 1, "a", NULL, NULL },
	{ "PASS SYS secret with blanks", QP_PASS_SYS, 0, 1, "secret with blanks", NULL, NULL },
	{ "PASS USER john bongo", QP_PASS_USER, 0, 2, "john", "bongo", "bongo" },
	{ "PASS USER john", QP_PASS_USER, 3010, 1, "john", NULL, NULL },
	{ "PASS", QP_UNKNOWN, 3010, 0, NULL, NULL, NULL },
	{ "PASS FOO x", QP_UNKNOWN, 3010, 0, NULL, NULL, NULL },
	{ "FROB", QP_UNKNOWN, 3000, 0, NULL, NULL, NULL },
	{ "", QP_UNKNOWN, 3000, 0, NULL, NULL, NULL },
	{ "   ", QP_UNKNOWN, 3000, 0, NULL, NULL, NULL },
	{ "QCREA", QP_QCREA, 0, 0, NULL, NULL, NULL },
	{ "QCREA 7", QP_QCREA, 0, 1, "7", NULL, NULL },
	{ "QCREA 999", QP_QCREA, 0, 1, "999", NULL, NULL },
	{ "QCREA 1000", QP_QCREA, 4000, 1, "1000", NULL, NULL },
	{ "QCREA x", QP_QCREA, 3010, 1, "x", NULL, NULL },
	{ "QCREA 1 2", QP_QCREA, 3010, 1, "1", NULL, NULL },
	{ "QSTOR FROM a@b.example -", QP_QSTOR_FROM, 0, 2, "a@b.example", "-", "-" },
	{ "qstor from a@b", QP_QSTOR_FROM, 0, 1, "a@b", NULL, NULL },
	{ "QSTOR TO x@y x@y 0", QP_QSTOR_TO, 0, 3, "x@y", "x@y", "0" },
	{ "QSTOR TO x@y x@y 0 extra words", QP_QSTOR_TO, 0, 3, "x@y", "x@y", "0 extra words" },
	{ "QSTOR", QP_UNKNOWN, 3010, 0, NULL, NULL, NULL },
	{ "QSTOR BOGUS 1", QP_UNKNOWN, 3010, 0, NULL, NULL, NULL },
	{ "QSTOR MESSAGE", QP_QSTOR_MESSAGE, 0, 0, NULL, NULL, NULL },
	{ "QSTOR MESSAGE 120", QP_QSTOR_MESSAGE, 0, 1, "120", NULL, NULL },
	{ "QSTOR MESSAGE -1", QP_QSTOR_MESSAGE, 3010, 1, "-1", NULL, NULL },
	{ "QSTOR RAW Fa@b -", QP_QSTOR_RAW, 0, 1, "Fa@b -", NULL, NULL },
	{ "QRUN", QP_QRUN, 0, 0, NULL, NULL, NULL },
	{ "QRUN 000-00000001", QP_QRUN, 0, 1, "000-00000001", NULL, NULL },
	{ "QRUN 000", QP_QRUN, 3010, 1, "000", NULL, NULL },
	{ "QINFO 005-0123456789abcdef", QP_QINFO, 0, 1, "005-0123456789abcdef", NULL, NULL },
	{ "QINFO 5-ABC", QP_QINFO, 0, 1, "5-ABC", NULL, NULL },
	{ "QINFO 0005-abc", QP_QINFO, 3010, 1, "0005-abc", NULL, NULL },
	{ "QINFO 005-0123456789abcdef0", QP_QINFO, 3010, 1, NULL, NULL, NULL },
	{ "QINFO 005-xyz", QP_QINFO, 3010, 1, NULL, NULL, NULL },
	{ "QINFO", QP_QINFO, 3010, 0, NULL, NULL, NULL },
	{ "QBRAW 000-1 10 20", QP_QBRAW, 0, 3, "000-1", "10", "20" },
	{ "QBRAW 000-1 10", QP_QBRAW, 3010, 2, NULL, NULL, NULL },
	{ "QRETR 000-1 info", QP_QRETR, 0, 2, "000-1", "info", "info" },
	{ "QRETR 000-1 MESSAGE", QP_QRETR, 0, 2, "000-1", "MESSAGE", "MESSAGE" },
	{ "QRETR 000-1 BODY", QP_QRETR, 3010, 2, NULL, NULL, NULL },
	{ "QGREP 000-1 Subject", QP_QGREP, 0, 2, "000-1", "Subject", "Subject" },
	{ "QSRCH HEADER 000-1 Subject", QP_QSRCH_HEADER, 0, 2, "000-1", "Subject", "Subject" },
	{ "QSRCH HEADER 000-1 Subject hello world", QP_QSRCH_HEADER, 0, 3, "000-1", "Subject",
	  "hello world" },
	{ "QSRCH BODY 000-1 needle in  hay", QP_QSRCH_BODY, 0, 2, "000-1", "needle in  hay",
	  "needle in  hay" },
	{ "QSRCH BRAW 000-1 0 100 x y", QP_QSRCH_BRAW, 0, 4, "000-1", "0", "x y" },
	{ "QSRCH DOMAIN example.com", QP_QSRCH_DOMAIN, 0, 1, "example.com", NULL, NULL },
	{ "QMOVE 000-1 7", QP_QMOVE, 0, 2, "000-1", "7", "7" },
	{ "QMOVE 000-1 1000", QP_QMOVE, 4000, 2, NULL, NULL, NULL },
	{ "QMOVE 000-1", QP_QMOVE, 3010, 1, NULL, NULL, NULL },
	{ "QCOPY 000-1", QP_QCOPY, 0, 1, "000-1", NULL, NULL },
	{ "QWAIT 5 8000 tern header agent", QP_QWAIT, 0, 3, "5", "8000", "tern header agent" },
	{ "QWAIT 5 0 x", QP_QWAIT, 3010, 2, NULL, NULL, NULL },
	{ "QWAIT 5 70000 x", QP_QWAIT, 3010, 2, NULL, NULL, NULL },
	{ "QWAIT 5 8000", QP_QWAIT, 3010, 2, NULL, NULL, NULL },
	{ "QADDM 000-1 a@b - c@d INBOX 0", QP_QADDM, 0, 6, "000-1", "a@b", "0" },
	{ "QMOD FROM x@y", QP_QMOD_FROM, 0, 1, "x@y", NULL, NULL },
	{ "QMOD RAW R a@b a@b 0", QP_QMOD_RAW, 0, 1, "R a@b a@b 0", NULL, NULL },
	{ "qmod to z@y", QP_QMOD_TO, 0, 1, "z@y", NULL, NULL },
	{ "QRTS a@b a@b 0", QP_QRTS, 0, 3, "a@b", "a@b", "0" },
	{ "QRTS a@b a@b 0 5 long transcript here", QP_QRTS, 0, 5, "a@b", "a@b",
	  "long transcript here" },
	{ "QDONE", QP_QDONE, 0, 0, NULL, NULL, NULL },
	{ "QDONE now", QP_QDONE, 3010, 0, NULL, NULL, NULL },
	{ "ADDRESS RESOLVE joe@localhost", QP_ADDRESS_RESOLVE, 0, 1, "joe@localhost", NULL, NULL },
	{ "DOMAIN LOCATION localhost", QP_DOMAIN_LOCATION, 0, 1, "localhost", NULL, NULL },
	{ "ADDRESS", QP_UNKNOWN, 3010, 0, NULL, NULL, NULL },
};

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
		const struct pcase *k = &pcases[i];
		char line[256];
		struct qp_cmd c;
		size_t n = strlen(k->line);
		memcpy(line, k->line, n + 1);
		int r = qp_cmd_parse(line, n, &c);
		if (c.verb != k->verb || c.code != k->code)
			fprintf(stderr, "case %zu: \"%s\"\n", i, k->line);
		T_EQ_INT(c.verb, k->verb);
		T_EQ_INT(c.code, k->code);
		T_EQ_INT(r, k->code ? -1 : 0);
		if (k->code == 0 || k->a0) {
			T_EQ_INT(c.argc, k->argc);
			if (k->a0)
				T_EQ_STR(c.argv[0], k->a0);
			if (k->a1)
				T_EQ_STR(c.argv[1], k->a1);
			if (k->alast && c.argc > 0)
				T_EQ_STR(c.argv[c.argc - 1], k->alast);
		}
	}
}

static void test_flags(void)
{
	char line[64];
	struct qp_cmd c;
	strcpy(line, "QSTOR BOGUS");
	qp_cmd_parse(line, strlen(line), &c);
	T_CHECK(!(c.flags & QPF_PRELOGIN));        /* 3240 before login, not 3010 */
	strcpy(line, "PASS BOGUS x");
	qp_cmd_parse(line, strlen(line), &c);
	T_CHECK(c.flags & QPF_PRELOGIN);
	strcpy(line, "NOSUCH");
	qp_cmd_parse(line, strlen(line), &c);
	T_CHECK(c.flags & QPF_PRELOGIN);
	strcpy(line, "ADDRESS RESOLVE joe@localhost");   /* a login first (user enumeration) */
	qp_cmd_parse(line, strlen(line), &c);
	T_CHECK(!(c.flags & QPF_PRELOGIN) && (c.flags & QPF_USER));
	strcpy(line, "DOMAIN LOCATION localhost");
	qp_cmd_parse(line, strlen(line), &c);
	T_CHECK(c.flags & QPF_PRELOGIN);
	strcpy(line, "QDSPC");
	qp_cmd_parse(line, strlen(line), &c);
	T_CHECK(!(c.flags & (QPF_PRELOGIN | QPF_USER)));
	strcpy(line, "QMOD TO a@b");
	qp_cmd_parse(line, strlen(line), &c);
	T_CHECK((c.flags & QPF_SILENT) && (c.flags & QPF_CALLBACK));
	T_EQ_STR(qp_cmd_name(QP_QSTOR_FROM), "QSTOR FROM");
	T_EQ_STR(qp_cmd_name(QP_QDONE), "QDONE");
	T_EQ_STR(qp_cmd_name(QP_UNKNOWN), "UNKNOWN");
	strcpy(line, "QINFO 005-00ff");
	qp_cmd_parse(line, strlen(line), &c);
	T_EQ_INT(c.ent.stage, 5);
	T_EQ_INT(c.ent.id, 0xff);
	strcpy(line, "QBRAW 1-a 123 456");
	qp_cmd_parse(line, strlen(line), &c);
	T_EQ_INT(c.num[1], 123);
	T_EQ_INT(c.num[2], 456);
	T_CHECK(c.hasnum[1] && !c.hasnum[0]);
	char nul[] = "QUIT\0x";
	T_EQ_INT(qp_cmd_parse(nul, 6, &c), -1);
	T_EQ_INT(c.code, 3000);
	struct buf b;
	buf_init(&b);
	qp_cmd_help(&b);
	T_CHECK(strstr(b.p, "QSTOR QRUN") != NULL && strstr(b.p, "QSTOR QSTOR") == NULL);
	buf_free(&b);
}

static void test_entry_reply(void)
{
	char out[24];
	struct qp_entry e;
	qp_entry_format(out, 5, 0x0123456789abcdefULL);
	T_EQ_STR(out, "005-0123456789abcdef");
	T_EQ_INT(qp_entry_parse(out, &e), 0);
	T_EQ_INT(e.stage, 5);
	T_CHECK(e.id == 0x0123456789abcdefULL);
	T_EQ_INT(qp_entry_parse("-1", &e), -1);
	T_EQ_INT(qp_entry_parse("1-", &e), -1);
	T_EQ_INT(qp_entry_parse("1-1 ", &e), -1);
	struct buf b;
	buf_init(&b);
	qp_reply(&b, 1000, "%s OK", out);
	qp_reply_more(&b, 2002, "Subject: a\r\nb");
	T_EQ_STR(b.p, "1000 005-0123456789abcdef OK\r\n2002-Subject: a  b\r\n");
	buf_free(&b);
}

static int islocal(const char *addr, void *arg)
{
	const char *at = strrchr(addr, '@');
	return !at || strcmp(at + 1, (const char *)arg) == 0;
}

static void test_ctrl(void)
{
	struct envelope e;
	struct buf b;
	env_init(&e);
	e.arrival = 1700000000;
	e.sender = xstrdup("s@x.example");
	env_add_rcpt(&e, "joe@localhost");
	env_add_rcpt(&e, "ann@remote.example");
	env_add_rcpt(&e, "gone@localhost");
	e.slots[2].state = SL_DROPPED;
	buf_init(&b);
	T_EQ_INT(qp_ctrl_build(&b, &e, islocal, "localhost"), 2);
	T_EQ_STR(b.p, "D1700000000\r\nFs@x.example -\r\nLjoe@localhost joe@localhost 0\r\n"
	              "Rann@remote.example ann@remote.example 0\r\n");
	buf_reset(&b);
	free(e.sender);
	e.sender = xstrdup("");
	qp_ctrl_build(&b, &e, NULL, NULL);
	T_CHECK(strstr(b.p, "F- -\r\n") != NULL);
	buf_free(&b);
	env_free(&e);
	char kind, a[64], bb[64];
	T_EQ_INT(qp_ctrl_split("Rx@y z@y 0", &kind, a, sizeof a, bb, sizeof bb), 0);
	T_CHECK(kind == 'R');
	T_EQ_STR(a, "x@y");
	T_EQ_STR(bb, "z@y");
	T_EQ_INT(qp_ctrl_split("F", &kind, a, sizeof a, bb, sizeof bb), 0);
	T_EQ_STR(a, "");
	T_EQ_INT(qp_ctrl_split("", &kind, a, sizeof a, bb, sizeof bb), -1);
	T_EQ_INT(qp_ctrl_split("Fxxxxxxxx", &kind, a, 4, bb, sizeof bb), -1);
}

static const struct acase { const char *in; int sender; int rc; const char *out; } acases[] = {
	{ "a@B.Example", 0, 0, "a@b.example" },
	{ "<a@b.example>", 0, 0, "a@b.example" },
	{ "joe", 0, 0, "joe" },
	{ "-", 1, 0, "" },
	{ "<>", 1, 0, "" },
	{ "<>", 0, -1, NULL },
	{ "-", 0, -1, NULL },
	{ "a b@c", 0, -1, NULL },
	{ "<a@b> SIZE=10", 1, -1, NULL },
	{ "a@", 0, -1, NULL },
	{ "", 0, -1, NULL },
};

static void test_addr(void)
{
	for (size_t i = 0; i < sizeof acases / sizeof acases[0]; i++) {
		char out[300];
		int r = qp_addr(acases[i].in, acases[i].sender, out, sizeof out);
		T_EQ_INT(r, acases[i].rc);
		if (r == 0)
			T_EQ_STR(out, acases[i].out);
	}
}

/* feed in every two-piece split and compare */
static void dot_case(const char *in, const char *want, size_t wantused)
{
	size_t n = strlen(in);
	for (size_t cut = 0; cut <= n; cut++) {
		struct qp_dot d = { 0 };
		char out[256];
		size_t o = 0, on, used = qp_dot_feed(&d, in, cut, out, &on);
		o += on;
		if (!d.done) {
			used += qp_dot_feed(&d, in + cut, n - cut, out + o, &on);
			o += on;
		}
		out[o] = '\0';
		T_EQ_STR(out, want);
		T_EQ_INT(used, wantused);
		T_CHECK(d.done);
	}
}

static void test_codecs(void)
{
	dot_case("a\r\n.\r\n", "a\n", 6);
	dot_case("a\n.\nNEXT", "a\n", 4);
	dot_case("..x\r\n.\r\n", ".x\n", 8);
	dot_case(".x\r\n.\r\n", "x\n", 7);
	dot_case("a\rb\r\n\r\n.\r\n", "a\rb\n\n", 10);
	dot_case(".\r\n", "", 3);
	dot_case(".\rx\n.\n", "\rx\n", 6);
	dot_case("x\r\r\n.\r\n", "x\r\n", 7);
	const char *in = "a\r\nb\rc\r\r\nd\r";
	for (size_t cut = 0; cut <= strlen(in); cut++) {
		struct qp_crlf d = { 0 };
		char out[64];
		size_t o = qp_crlf_feed(&d, in, cut, out);
		o += qp_crlf_feed(&d, in + cut, strlen(in) - cut, out + o);
		o += qp_crlf_end(&d, out + o);
		out[o] = '\0';
		T_EQ_STR(out, "a\nb\rc\r\nd\r");
	}
	char w[32];
	size_t k = qp_lf2crlf("a\nb\n\n", 5, w);
	w[k] = '\0';
	T_EQ_STR(w, "a\r\nb\r\n\r\n");
}

static void split_case(const char *data, uint64_t hw, uint64_t bw, int found)
{
	size_t n = strlen(data);
	for (size_t cut = 0; cut <= n; cut++) {
		struct qp_split s;
		qp_split_init(&s);
		qp_split_feed(&s, data, cut);
		qp_split_feed(&s, data + cut, n - cut);
		T_EQ_INT(qp_split_hwire(&s), hw);
		T_EQ_INT(qp_split_bwire(&s, n), bw);
		T_EQ_INT(s.found, found);
	}
}

static void test_split(void)
{
	split_case("A: 1\nB: 2\n\nbody\nline\n", 12, 12, 1);
	split_case("A: 1\n", 6, 0, 0);
	split_case("\nbody", 0, 4, 1);
	split_case("A: 1\n\n", 6, 0, 1);
	split_case("A: 1", 4, 0, 0);
	split_case("", 0, 0, 0);
	T_CHECK(qp_hdr_is("Subject: x", 10, "subject"));
	T_CHECK(qp_hdr_is("Subject : x", 11, "Subject:"));
	T_CHECK(!qp_hdr_is("Subjects: x", 11, "Subject"));
	T_CHECK(!qp_hdr_is(" Subject: x", 11, "Subject"));
	T_CHECK(!qp_hdr_is("Subject", 7, "Subject"));
	T_EQ_INT(qp_find("Hello World", 11, "WORLD", 5), 6);
	T_EQ_INT(qp_find("Hello", 5, "lo!", 3), -1);
	T_EQ_INT(qp_find("aaab", 4, "aab", 3), 1);
	struct buf b;
	buf_init(&b);
	qp_received(&b, "127.0.0.1", "tern.test", 0xabc, 0);
	T_CHECK(strncmp(b.p, "Received: from [127.0.0.1] by tern.test with NMAP (tern bongoqueue) "
	                "id 0000000000000abc;\n\t", 86) == 0);
	T_CHECK(b.p[b.len - 1] == '\n');
	buf_reset(&b);
	qp_received(&b, "1.2.3.4\r\nX: y", "h", 1, 0);
	T_CHECK(strchr(b.p, '\r') == NULL && strstr(b.p, "X: y") == NULL);
	buf_free(&b);
}

/* one plan: the ops as "S:x A:y D:z R:" joined by blanks */
static void plan_case(const char *const *work, size_t nwork, int raw, const char *const *rts,
                      size_t nrts, const char *want, int partial, size_t ignored)
{
	static const char opc[] = { 0, 'S', 'A', 'D', 'R' };
	struct envelope e;
	struct qp_plan p;
	struct buf b;
	env_init(&e);
	e.sender = xstrdup("s@x.example");
	env_add_rcpt(&e, "joe@localhost");
	env_add_rcpt(&e, "ann@localhost");
	env_add_rcpt(&e, "old@localhost");
	e.slots[2].state = SL_DONE;
	qp_plan_make(&p, (char *const *)work, nwork, raw, (char *const *)rts, nrts, &e);
	buf_init(&b);
	for (size_t i = 0; i < p.n; i++)
		buf_printf(&b, "%s%c:%s", i ? " " : "", opc[p.v[i].op], p.v[i].arg);
	T_EQ_STR(b.len ? b.p : "", want);
	T_EQ_INT(p.partial, partial);
	T_EQ_INT(p.ignored, ignored);
	T_EQ_INT(p.returned, strcmp(want, "R:") == 0);
	buf_free(&b);
	qp_plan_free(&p);
	env_free(&e);
}

static void test_plan(void)
{
	const char *edit[] = { "Fnew@x.example -", "Rextra@localhost extra@localhost 0",
	                       "Rjoe@localhost joe@localhost 0" };
	plan_case(edit, 3, 0, NULL, 0, "S:new@x.example A:extra@localhost", 0, 0);
	/* Bongo: copy every line, add one, leave ann out */
	const char *raw[] = { "D1700000000", "Fs@x.example -", "Ljoe@localhost joe@localhost 0",
	                      "Rarch@localhost arch@localhost 0", "Xflags", "Q?", "R<bad@" };
	plan_case(raw, 7, 1, NULL, 0, "A:arch@localhost D:ann@localhost", 0, 2);
	plan_case(raw, 0, 1, NULL, 0, "D:joe@localhost D:ann@localhost", 0, 0);
	plan_case(NULL, 0, 0, NULL, 0, "", 0, 0);
	const char *both[] = { "joe@localhost", "ann@localhost" };
	plan_case(edit, 3, 0, both, 2, "R:", 0, 0);
	plan_case(NULL, 0, 0, both, 1, "", 1, 0);
	const char *null[] = { "F- -" };
	plan_case(null, 1, 0, NULL, 0, "S:", 0, 0);
}

static void run(void)
{
	test_plan();
	test_parse();
	test_flags();
	test_entry_reply();
	test_ctrl();
	test_addr();
	test_codecs();
	test_split();
}

T_MAIN(run)
