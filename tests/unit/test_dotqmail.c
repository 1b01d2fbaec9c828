/* test_dotqmail — table-driven cases for src/mail/dotqmail (line classes, file walking,
 * extension candidates, EXTn/HOSTn, the Delivered-To scan) and src/mail/mbox (>From quoting,
 * the From_ line). Trusts nothing but the code under test. */
#include "mail/dotqmail.h"
#include "mail/mbox.h"
#include "t.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *line;
	enum dq_kind kind;
	const char *arg;
} classify_cases[] = {
	{ "", DQ_BLANK, "" },
	{ " \t \r", DQ_BLANK, "" },
	{ "# a comment", DQ_COMMENT, " a comment" },
	{ "#", DQ_COMMENT, "" },
	{ "|preline procmail", DQ_PROGRAM, "preline procmail" },
	{ "|exit 99   ", DQ_PROGRAM, "exit 99" },
	{ "|", DQ_BAD, "" },
	{ "| \t", DQ_BAD, "" },
	{ "./Maildir/", DQ_MAILDIR, "./Maildir/" },
	{ "./Maildir/ \t", DQ_MAILDIR, "./Maildir/" },
	{ "/var/mail/joe", DQ_MBOX, "/var/mail/joe" },
	{ "./mbox\r", DQ_MBOX, "./mbox" },
	{ "/", DQ_MAILDIR, "/" },
	{ ".", DQ_MBOX, "." },
	{ "&joe@example.org", DQ_FORWARD, "joe@example.org" },
	{ "& joe@example.org", DQ_FORWARD, "joe@example.org" },
	{ "joe@example.org", DQ_FORWARD, "joe@example.org" },
	{ "joe", DQ_FORWARD, "joe" },
	{ "  joe@example.org  ", DQ_FORWARD, "joe@example.org" },
	{ "&", DQ_BAD, "" },
	{ "& ", DQ_BAD, "" },
	{ "joe@x, bob@y", DQ_BAD, "joe@x, bob@y" },
	{ "&|rm -rf", DQ_BAD, "|rm -rf" },
	{ " |cmd", DQ_BAD, "|cmd" },
	{ "&/etc/passwd", DQ_BAD, "/etc/passwd" },
	{ "+list", DQ_LIST, "list" },
	{ "+list ", DQ_LIST, "list" },
	{ "+lists", DQ_IGNORE, "lists" },
	{ "+", DQ_IGNORE, "" },
	{ "jo\x01" "e", DQ_BAD, "jo\x01" "e" },
	{ "./Mail\x7f" "dir/", DQ_BAD, "./Mail\x7f" "dir/" },
	{ "|echo\ttab", DQ_PROGRAM, "echo\ttab" },
};

static void test_classify(void)
{
	for (size_t i = 0; i < sizeof classify_cases / sizeof classify_cases[0]; i++) {
		struct dq_line ln;
		const char *s = classify_cases[i].line;
		enum dq_kind k = dotqmail_classify(s, strlen(s), &ln);
		T_EQ_INT(k, classify_cases[i].kind);
		T_EQ_INT(ln.kind, classify_cases[i].kind);
		char *arg = strndup(ln.arg, ln.len);
		T_EQ_STR(arg, classify_cases[i].arg);
		free(arg);
	}
	struct dq_line ln;   /* an embedded NUL is never a usable instruction */
	T_EQ_INT(dotqmail_classify("./a\0b/", 6, &ln), DQ_BAD);
	T_EQ_INT(dotqmail_classify("#a\0b", 4, &ln), DQ_COMMENT);
	T_EQ_STR(dotqmail_kind_name(DQ_MAILDIR), "maildir");
	T_EQ_STR(dotqmail_kind_name((enum dq_kind)99), "?");
}

static void test_iter(void)
{
	static const char file[] = "# c\n\n./Maildir/\n|cmd\n&a@b\nlast";
	static const enum dq_kind want[] = { DQ_COMMENT, DQ_BLANK, DQ_MAILDIR, DQ_PROGRAM,
					     DQ_FORWARD, DQ_FORWARD };
	struct dq_iter it;
	struct dq_line ln;
	unsigned n = 0;
	dotqmail_iter_init(&it, file, sizeof file - 1);
	while (dotqmail_next(&it, &ln)) {
		T_CHECK(n < 6);
		if (n < 6)
			T_EQ_INT(ln.kind, want[n]);
		T_EQ_INT(ln.lineno, n + 1);
		n++;
	}
	T_EQ_INT(n, 6);
	dotqmail_iter_init(&it, "", 0);
	T_EQ_INT(dotqmail_next(&it, &ln), 0);
	dotqmail_iter_init(&it, "\n", 1);          /* one blank line */
	T_EQ_INT(dotqmail_next(&it, &ln), 1);
	T_EQ_INT(ln.kind, DQ_BLANK);
	T_EQ_INT(dotqmail_next(&it, &ln), 0);
	dotqmail_iter_init(&it, "a\n", 2);         /* a final newline adds no line */
	T_EQ_INT(dotqmail_next(&it, &ln), 1);
	T_EQ_INT(dotqmail_next(&it, &ln), 0);
}

/* candidates joined with ' ', each default one as name=DEFAULT */
static const struct {
	const char *dash, *ext, *want;
} cand_cases[] = {
	{ "", "", ".qmail" },
	{ "-", "", ".qmail- .qmail-default=" },
	{ "-", "a", ".qmail-a .qmail-default=a" },
	{ "-", "a-b", ".qmail-a-b .qmail-a-default=b .qmail-default=a-b" },
	{ "-", "a-b-c", ".qmail-a-b-c .qmail-a-b-default=c .qmail-a-default=b-c "
			".qmail-default=a-b-c" },
	{ "-", "Lists-Foo", ".qmail-lists-foo .qmail-lists-default=Foo .qmail-default=Lists-Foo" },
	{ "-", "a.b", ".qmail-a:b .qmail-default=a.b" },
	{ "-", "x/../y", ".qmail-x::::y .qmail-default=x/../y" },
	{ "-", "foo-", ".qmail-foo- .qmail-foo-default= .qmail-default=foo-" },
	{ "-", "-", ".qmail-- .qmail--default= .qmail-default=-" },
	{ "", "x", ".qmailx .qmaildefault=x" },
};

static void test_candidates(void)
{
	struct buf name, all;
	buf_init(&name);
	buf_init(&all);
	for (size_t i = 0; i < sizeof cand_cases / sizeof cand_cases[0]; i++) {
		long dflt;
		buf_reset(&all);
		for (unsigned k = 0; dotqmail_candidate(cand_cases[i].dash, cand_cases[i].ext, k,
							&name, &dflt) == 0; k++) {
			T_CHECK(k < 64);
			if (k)
				buf_addc(&all, ' ');
			buf_adds(&all, name.p);
			if (dflt >= 0)
				buf_printf(&all, "=%s", cand_cases[i].ext + dflt);
			T_CHECK((k == 0) == (dflt < 0));
		}
		T_EQ_STR(all.p, cand_cases[i].want);
	}
	dotqmail_owner_name(&name, "-", "Lists.X");
	T_EQ_STR(name.p, ".qmail-lists:x-owner");
	dotqmail_owner_name(&name, "", "");
	T_EQ_STR(name.p, ".qmail-owner");
	buf_free(&name);
	buf_free(&all);
}

static void test_parts(void)
{
	T_EQ_STR(dotqmail_ext_part("a-b-c-d", 1), "a-b-c-d");
	T_EQ_STR(dotqmail_ext_part("a-b-c-d", 2), "b-c-d");
	T_EQ_STR(dotqmail_ext_part("a-b-c-d", 3), "c-d");
	T_EQ_STR(dotqmail_ext_part("a-b-c-d", 4), "d");
	T_EQ_STR(dotqmail_ext_part("a", 2), "");
	T_EQ_STR(dotqmail_ext_part("a-b", 4), "");
	T_EQ_STR(dotqmail_ext_part("", 2), "");
	T_EQ_INT(dotqmail_host_part("a.b.example.com", 1), 15);
	T_EQ_INT(dotqmail_host_part("a.b.example.com", 2), 11);   /* a.b.example */
	T_EQ_INT(dotqmail_host_part("a.b.example.com", 3), 3);    /* a.b */
	T_EQ_INT(dotqmail_host_part("a.b.example.com", 4), 1);    /* a */
	T_EQ_INT(dotqmail_host_part("example.org", 3), 7);        /* example: no more dots */
	T_EQ_INT(dotqmail_host_part("localhost", 2), 9);
	T_EQ_INT(dotqmail_host_part("", 4), 0);
	struct buf b;
	buf_init(&b);
	dotqmail_hdr_value(&b, "a\r\nb");
	T_EQ_STR(b.p, "a__b");
	buf_free(&b);
}

static const struct {
	const char *msg;
	int want;
} scan_cases[] = {
	{ "Received: x\nDelivered-To: joe@example.org\n\nbody\n", DQ_HS_FOUND },
	{ "Received: x\ndelivered-to: JOE@Example.ORG\n\nbody\n", DQ_HS_END },  /* qmail: */
	{ "Received: x\nDelivered-To: Joe@example.org\n\nbody\n", DQ_HS_END },  /* exact, */
	{ "Received: x\nDELIVERED-TO: joe@example.org\n\nbody\n", DQ_HS_END },  /* case */
	{ "Received: x\nDelivered-To: joe@EXAMPLE.org\n\nbody\n", DQ_HS_END },  /* counts */
	{ "Received: x\r\nDelivered-To: joe@example.org\r\n\r\nbody\r\n", DQ_HS_FOUND },
	{ "Received: x\nDelivered-To: joe@example.org", DQ_HS_FOUND },
	{ "Received: x\nDelivered-To: joe@example.org.uk\n\n", DQ_HS_END },
	{ "Received: x\nDelivered-To: joe@example.or\n\n", DQ_HS_END },
	{ "Received: x\nDelivered-To:  joe@example.org\n\n", DQ_HS_END },
	{ "Received: x\nX-Delivered-To: joe@example.org\n\n", DQ_HS_END },
	{ "Received: x\n\nDelivered-To: joe@example.org\n", DQ_HS_END },
	{ "Received: x\n\r\nDelivered-To: joe@example.org\n", DQ_HS_END },
	{ "\nDelivered-To: joe@example.org\n", DQ_HS_END },
	{ "", DQ_HS_END },
	{ "Delivered-To: bob@example.org\nDelivered-To: joe@example.org\n\n", DQ_HS_FOUND },
	{ "Delivered-To: joe@example.org\r\r\n\n", DQ_HS_END },
};

static int scan(const char *msg, size_t n, size_t step)
{
	struct dq_hscan h;
	int st = DQ_HS_MORE;
	dotqmail_hscan_init(&h, "Delivered-To: joe@example.org");
	for (size_t off = 0; off < n && st == DQ_HS_MORE; off += step)
		st = dotqmail_hscan_feed(&h, msg + off, n - off < step ? n - off : step);
	return st == DQ_HS_MORE ? dotqmail_hscan_eof(&h) : st;
}

static void test_hscan(void)
{
	for (size_t i = 0; i < sizeof scan_cases / sizeof scan_cases[0]; i++) {
		const char *m = scan_cases[i].msg;
		for (size_t step = 1; step <= 7; step += 3)     /* any chunking, same answer */
			T_EQ_INT(scan(m, strlen(m), step), scan_cases[i].want);
		T_EQ_INT(scan(m, strlen(m), 4096), scan_cases[i].want);
	}
}

static const struct {
	const char *in, *out;
	int ends_nl;
} quote_cases[] = {
	{ "", "", 1 },
	{ "From me\n", ">From me\n", 1 },
	{ "a\nFrom me\nb\n", "a\n>From me\nb\n", 1 },
	{ ">From me\n", ">>From me\n", 1 },
	{ ">>>From x\n", ">>>>From x\n", 1 },
	{ "From\n", "From\n", 1 },
	{ "From", "From", 0 },
	{ ">>", ">>", 0 },
	{ "> From x\n", "> From x\n", 1 },
	{ "from x\n", "from x\n", 1 },
	{ " From x\n", " From x\n", 1 },
	{ "xFrom x\n", "xFrom x\n", 1 },
	{ ">F>From x\n", ">F>From x\n", 1 },
	{ "From x From y\n", ">From x From y\n", 1 },
	{ "\n\nFrom \n", "\n\n>From \n", 1 },
	{ "body", "body", 0 },
	{ ">Fro\nFrom ", ">Fro\n>From ", 0 },
};

static void quote(const char *in, size_t step, struct buf *out, int *nl)
{
	struct mbox_quote q;
	size_t n = strlen(in);
	buf_reset(out);
	mbox_quote_init(&q);
	for (size_t off = 0; off < n; off += step)
		mbox_quote_feed(&q, in + off, n - off < step ? n - off : step, out);
	*nl = mbox_quote_finish(&q, out);
}

static void test_quote(void)
{
	struct buf out;
	buf_init(&out);
	for (size_t i = 0; i < sizeof quote_cases / sizeof quote_cases[0]; i++)
		for (size_t step = 1; step <= 9; step += 4) {
			int nl;
			quote(quote_cases[i].in, step, &out, &nl);
			T_EQ_STR(out.p ? out.p : "", quote_cases[i].out);
			T_EQ_INT(nl, quote_cases[i].ends_nl);
		}
	buf_free(&out);
}

static void test_from_line(void)
{
	struct buf b;
	buf_init(&b);
	mbox_from_line(&b, "joe@example.org", 0);
	T_EQ_STR(b.p, "From joe@example.org Thu Jan  1 00:00:00 1970\n");
	buf_reset(&b);
	mbox_from_line(&b, "", 1700000000);
	T_EQ_STR(b.p, "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n");
	buf_reset(&b);
	mbox_from_line(&b, "a b\nc", 0);
	T_EQ_STR(b.p, "From a-b-c Thu Jan  1 00:00:00 1970\n");
	buf_free(&b);
}

static const char *env_get(char **env, const char *k)
{
	size_t n = strlen(k);
	for (; *env; env++)
		if (strncmp(*env, k, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

static void test_env(void)
{
	struct dq_vars v = {
		.sender = "a@b", .newsender = "joe-owner@x.example.org", .recipient = "joe-l-x@h",
		.user = "joe", .home = "/home/joe", .host = "mx.dept.example.org",
		.local = "joe-l-x", .ext = "l-x", .dflt = "x", .dtline = "Delivered-To: j\n",
		.rpline = "Return-Path: <a@b>\n", .ufline = "From a@b Thu\n", .path = "/bin",
		.qmailqueue = "/usr/sbin/tern-queue",
	};
	static const char *const want[][2] = {
		{ "SENDER", "a@b" }, { "NEWSENDER", "joe-owner@x.example.org" },
		{ "RECIPIENT", "joe-l-x@h" }, { "USER", "joe" }, { "HOME", "/home/joe" },
		{ "HOST", "mx.dept.example.org" }, { "HOST2", "mx.dept.example" },
		{ "HOST3", "mx.dept" }, { "HOST4", "mx" }, { "LOCAL", "joe-l-x" },
		{ "EXT", "l-x" }, { "EXT2", "x" }, { "EXT3", "" }, { "EXT4", "" },
		{ "DEFAULT", "x" }, { "DTLINE", "Delivered-To: j\n" },
		{ "RPLINE", "Return-Path: <a@b>\n" }, { "UFLINE", "From a@b Thu\n" },
		{ "PATH", "/bin" }, { "QMAILQUEUE", "/usr/sbin/tern-queue" },
	};
	char **env = dotqmail_env(&v);
	size_t n = 0;
	while (env[n])
		n++;
	T_EQ_INT(n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		T_EQ_STR(env_get(env, want[i][0]), want[i][1]);
	dotqmail_env_free(env);
	v.dflt = NULL;                      /* DEFAULT only for a -default match */
	v.qmailqueue = NULL;
	env = dotqmail_env(&v);
	T_CHECK(env_get(env, "DEFAULT") == NULL);
	T_CHECK(env_get(env, "QMAILQUEUE") == NULL);
	dotqmail_env_free(env);
}

static void test_envelope(void)
{
	struct buf b;
	buf_init(&b);
	dotqmail_envelope(&b, "a@b", "x@y\0z@w", 2);
	T_EQ_INT(b.len, 16);
	T_CHECK(memcmp(b.p, "Fa@b\0Tx@y\0Tz@w\0\0", 16) == 0);
	buf_reset(&b);
	dotqmail_envelope(&b, "", "x@y", 1);
	T_EQ_INT(b.len, 8);
	T_CHECK(memcmp(b.p, "F\0Tx@y\0\0", 8) == 0);
	buf_free(&b);
}

static void test_prog_status(void)
{
	static const struct { int code; enum dq_prog want; } cases[] = {
		{ 0, DQ_PROG_OK }, { 99, DQ_PROG_STOP }, { 100, DQ_PROG_PERM },
		{ 64, DQ_PROG_PERM }, { 65, DQ_PROG_PERM }, { 70, DQ_PROG_PERM },
		{ 76, DQ_PROG_PERM }, { 77, DQ_PROG_PERM }, { 78, DQ_PROG_PERM },
		{ 112, DQ_PROG_PERM }, { 111, DQ_PROG_TEMP }, { 1, DQ_PROG_TEMP },
		{ 75, DQ_PROG_TEMP }, { 101, DQ_PROG_TEMP }, { 255, DQ_PROG_TEMP },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		T_EQ_INT(dotqmail_prog_status(cases[i].code), cases[i].want);
}

/* qmail-queue's exit codes as qmail-local reads them for a forward: 11-40 permanent, the
 * rest temporary, each with its enhanced status */
static void test_queue_status(void)
{
	static const struct { int code; enum dq_prog want; const char *status; } cases[] = {
		{ 0, DQ_PROG_OK, "" }, { 11, DQ_PROG_PERM, "5.1.3" },
		{ 31, DQ_PROG_PERM, "5.3.0" }, { 12, DQ_PROG_PERM, "5.3.0" },
		{ 40, DQ_PROG_PERM, "5.3.0" }, { 115, DQ_PROG_PERM, "5.1.3" },
		{ 10, DQ_PROG_TEMP, "4.3.0" }, { 41, DQ_PROG_TEMP, "4.3.0" },
		{ 53, DQ_PROG_TEMP, "4.3.0" }, { 72, DQ_PROG_TEMP, "4.4.1" },
		{ 73, DQ_PROG_TEMP, "4.4.1" }, { 74, DQ_PROG_TEMP, "4.4.2" },
		{ 81, DQ_PROG_TEMP, "4.3.0" }, { 120, DQ_PROG_TEMP, "4.3.0" },
		{ 1, DQ_PROG_TEMP, "4.3.0" }, { 99, DQ_PROG_TEMP, "4.3.0" },
		{ 100, DQ_PROG_TEMP, "4.3.0" }, { 255, DQ_PROG_TEMP, "4.3.0" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *what = NULL, *status = NULL;
		T_EQ_INT(dotqmail_queue_status(cases[i].code, &what, &status), cases[i].want);
		T_EQ_STR(status, cases[i].status);
		T_CHECK(what != NULL && (cases[i].code == 0 || *what));
	}
}

/* qmail's forms of a sender: SENDER without quotes, Return-Path quoted where needed */
static void test_sender_forms(void)
{
	static const struct { const char *in, *plain, *quoted; } cases[] = {
		{ "", "", "" },
		{ "alice@example.net", "alice@example.net", "alice@example.net" },
		{ "\"a b\"@x.org", "a b@x.org", "\"a b\"@x.org" },
		{ "\"a\\\"b\"@x.org", "a\"b@x.org", "\"a\\\"b\"@x.org" },
		{ "\".a\"@x.org", ".a@x.org", "\".a\"@x.org" },
		{ "\"joe\"@x.org", "joe@x.org", "joe@x.org" },
		{ "#@[]", "#@[]", "#@[]" },
		{ "\"a@b\"@x.org", "a@b@x.org", "\"a@b\"@x.org" },
		{ "postmaster", "postmaster", "postmaster" },
		{ "\"unterminated@x", "\"unterminated@x", "\"\\\"unterminated\"@x" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf p, q;
		buf_init(&p);
		buf_init(&q);
		dotqmail_sender_plain(&p, cases[i].in);
		dotqmail_sender_quoted(&q, p.p ? p.p : "");
		T_EQ_STR(p.p ? p.p : "", cases[i].plain);
		T_EQ_STR(q.p ? q.p : "", cases[i].quoted);
		buf_free(&p);
		buf_free(&q);
	}
}

static void test_maildir_name(void)
{
	struct buf b;
	buf_init(&b);
	dotqmail_maildir_name(&b, 1700000000, 42, 1234, 7, "mx:1/a");
	T_EQ_STR(b.p, "1700000000.M000042P1234_7.mx\\0721\\057a");
	buf_free(&b);
}

/* mbox_append into a temporary file: two appends, then a message that shrank under us
 * must leave the file exactly as it was (truncated back) */
static void test_mbox_append(void)
{
	char box[] = "/tmp/test_mbox_XXXXXX", msgp[] = "/tmp/test_msg_XXXXXX";
	int bfd = mkstemp(box), mfd = mkstemp(msgp);
	T_CHECK(bfd >= 0 && mfd >= 0);
	close(bfd);
	unlink(box);
	static const char msg[] = "Subject: x\n\nFrom here\nend";
	T_CHECK(write(mfd, msg, sizeof msg - 1) == (ssize_t)(sizeof msg - 1));
	static const char head[] = "Return-Path: <a@b>\n";
	for (int i = 0; i < 2; i++)
		T_EQ_INT(mbox_append(box, "From a@b X\n", head, sizeof head - 1, mfd,
				     sizeof msg - 1, 5), MBOX_OK);
	static const char one[] = "From a@b X\nReturn-Path: <a@b>\nSubject: x\n\n>From here\n"
				  "end\n\n";
	char got[256];
	int fd = open(box, O_RDONLY);
	ssize_t n = read(fd, got, sizeof got);
	close(fd);
	T_EQ_INT(n, 2 * (sizeof one - 1));
	T_CHECK(n > 0 && memcmp(got, one, sizeof one - 1) == 0 &&
		memcmp(got + sizeof one - 1, one, sizeof one - 1) == 0);
	T_EQ_INT(mbox_append(box, "From a@b X\n", head, sizeof head - 1, mfd, 4096, 5),
		 MBOX_WRITE);
	struct stat st;
	T_CHECK(stat(box, &st) == 0 && st.st_size == n);
	T_EQ_INT(mbox_append("/nonexistent/dir/box", "F\n", "", 0, mfd, 1, 5), MBOX_OPEN);
	T_EQ_INT(mbox_append("/dev/null", "F\n", "", 0, mfd, 1, 5), MBOX_NOTREG);
	close(mfd);
	unlink(msgp);
	unlink(box);
}

/* which .qmail files tern-local follows: every bit and owner combination that matters */
static void test_trust(void)
{
	enum { U = 1000, H = 1001, O = 4242 };     /* user, home owner, someone else */
	static const struct {
		unsigned mode, uid;
		int loose, shared, group;              /* group: the decision asks shared_group */
		enum dq_trust want;
	} c[] = {
		{ 0644, U, 0, 0, 0, DQ_TRUST_OK },
		{ 0600, U, 0, 0, 0, DQ_TRUST_OK },
		{ 0744, U, 0, 0, 0, DQ_TRUST_OK },     /* forward-only: execute bit, still trusted */
		{ 0644, H, 0, 0, 0, DQ_TRUST_OK },     /* the home's owner */
		{ 0644, 0, 0, 0, 0, DQ_TRUST_OK },     /* root */
		{ 0644, O, 0, 0, 0, DQ_TRUST_OWNER },
		{ 0600, O, 0, 0, 0, DQ_TRUST_OWNER },
		{ 0664, O, 0, 0, 0, DQ_TRUST_OWNER },  /* owner first: no group lookup needed */
		{ 0664, U, 0, 0, 1, DQ_TRUST_OK },     /* a private group (Debian's usergroups) */
		{ 0664, U, 0, 1, 1, DQ_TRUST_GROUP },
		{ 0620, H, 0, 1, 1, DQ_TRUST_GROUP },
		{ 02664, U, 0, 1, 1, DQ_TRUST_GROUP },
		{ 0666, U, 0, 0, 0, DQ_TRUST_WORLD },
		{ 0646, U, 0, 1, 0, DQ_TRUST_WORLD },
		{ 0602, 0, 0, 0, 0, DQ_TRUST_WORLD },
		{ 0666, O, 0, 0, 0, DQ_TRUST_WORLD },
		/* qmail-local's rule: only world-writable */
		{ 0644, O, 1, 0, 0, DQ_TRUST_OK },
		{ 0664, U, 1, 1, 0, DQ_TRUST_OK },
		{ 0664, O, 1, 1, 0, DQ_TRUST_OK },
		{ 0666, U, 1, 0, 0, DQ_TRUST_WORLD },
		{ 0602, O, 1, 0, 0, DQ_TRUST_WORLD },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct stat st;
		memset(&st, 0, sizeof st);
		st.st_mode = S_IFREG | c[i].mode;
		st.st_uid = c[i].uid;
		struct dq_trustctx tc = { .user = U, .homeowner = H, .loose = c[i].loose,
		                          .shared_group = c[i].shared };
		if (dotqmail_trust(&st, &tc) != c[i].want ||
		    dotqmail_trust_group(&st, &tc) != c[i].group)
			fprintf(stderr, "trust case %zu: got %d/%d\n", i, dotqmail_trust(&st, &tc),
			        dotqmail_trust_group(&st, &tc));
		T_EQ_INT(dotqmail_trust(&st, &tc), c[i].want);
		T_EQ_INT(dotqmail_trust_group(&st, &tc), c[i].group);
	}
	struct dq_trustctx strict = { .user = U, .homeowner = H }, loose = { .loose = 1 };
	T_CHECK(dotqmail_trust_owner(U, &strict) && dotqmail_trust_owner(H, &strict));
	T_CHECK(dotqmail_trust_owner(0, &strict) && !dotqmail_trust_owner(O, &strict));
	T_CHECK(dotqmail_trust_owner(O, &loose));
}

static void run(void)
{
	test_env();
	test_trust();
	test_envelope();
	test_queue_status();
	test_sender_forms();
	test_prog_status();
	test_maildir_name();
	test_mbox_append();
	test_classify();
	test_iter();
	test_candidates();
	test_parts();
	test_hscan();
	test_quote();
	test_from_line();
}

T_MAIN(run)
