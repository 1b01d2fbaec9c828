/* test_mdquota — the Maildir++ maildirsize format and over-quota rule (src/mail/mdquota.c),
 * table-driven: definition lines, sums, every malformed form, the limits' edges and the
 * ",S=" size in file names. Trusts: nothing. */
#include "t.h"
#include "mail/mdquota.h"

static void test_defline(void)
{
	static const struct { uint64_t s, c; const char *want; } cases[] = {
		{ 1000, 50, "1000S,50C" }, { 1000, 0, "1000S" }, { 0, 7, "7C" }, { 0, 0, "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b;
		buf_init(&b);
		mdquota_defline(&b, cases[i].s, cases[i].c);
		T_EQ_STR(b.p ? b.p : "", cases[i].want);
		buf_free(&b);
	}
}

static void test_parse(void)
{
	static const struct { const char *text, *def; int rc; long long bytes, count; } cases[] = {
		{ "1000S\n", "1000S", 0, 0, 0 },
		{ "1000S\n0 0\n12 1\n30 2\n", "1000S", 0, 42, 3 },
		{ "1000S,5C\n  100   4\n-20 -1\n", "1000S,5C", 0, 80, 3 },
		{ "1000S\r\n10 1\r\n", "1000S", 0, 10, 1 },
		{ "1000S\n\n10 1\n", "1000S", 0, 10, 1 },
		{ "2000S\n10 1\n", "1000S", -1, 0, 0 },          /* the limits changed */
		{ "1000S\n10 1", "1000S", -1, 0, 0 },            /* half-written last line */
		{ "1000S\n10\n", "1000S", -1, 0, 0 },
		{ "1000S\n10 x\n", "1000S", -1, 0, 0 },
		{ "1000S\n10 1 2\n", "1000S", -1, 0, 0 },
		{ "1000S\n99999999999999999999 1\n", "1000S", -1, 0, 0 },
		{ "1000S\n9223372036854775807 1\n1 1\n", "1000S", -1, 0, 0 },   /* overflow */
		{ "", "1000S", -1, 0, 0 },
		{ "1000S", "1000S", -1, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mdquota_use u;
		int rc = mdquota_parse(cases[i].text, strlen(cases[i].text), cases[i].def, &u);
		T_EQ_INT(rc, cases[i].rc);
		if (rc == 0) {
			T_EQ_INT(u.bytes, cases[i].bytes);
			T_EQ_INT(u.count, cases[i].count);
		}
	}
}

static void test_over(void)
{
	struct mdquota_use u = { 90, 4 }, neg = { -50, -3 };
	T_EQ_INT(mdquota_over(&u, 100, 5, 10, 1), 0);      /* exactly full is allowed */
	T_EQ_INT(mdquota_over(&u, 100, 5, 11, 1), 1);
	T_EQ_INT(mdquota_over(&u, 100, 4, 1, 1), 1);
	T_EQ_INT(mdquota_over(&u, 0, 0, UINT64_MAX, UINT64_MAX), 0);
	T_EQ_INT(mdquota_over(&u, 100, 0, UINT64_MAX, 1), 1);
	T_EQ_INT(mdquota_over(&neg, 10, 1, 10, 1), 0);
	struct mdquota_use big = { 200, 0 };
	T_EQ_INT(mdquota_over(&big, 100, 0, 0, 0), 1);
}

static void test_name_size(void)
{
	static const struct { const char *name; int rc; unsigned long long size; } cases[] = {
		{ "1.M1P1_1.host,S=1234", 0, 1234 }, { "1.M1P1_1.host,S=1234:2,S", 0, 1234 },
		{ "1.host,S=12,W=14:2,", 0, 12 }, { "1.host", -1, 0 }, { "1.host,S=", -1, 0 },
		{ "1.host,S=12x", -1, 0 }, { "1.host,S=99999999999999999999999", -1, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t sz = 0;
		T_EQ_INT(mdquota_name_size(cases[i].name, &sz), cases[i].rc);
		if (cases[i].rc == 0)
			T_EQ_INT(sz, cases[i].size);
	}
}

/* a scan's sums saturate: huge ",S=" sizes must never wrap to a negative (= empty) usage */
static void test_add_file(void)
{
	struct mdquota_use u = { 0, 0 };
	mdquota_add_file(&u, 10);
	mdquota_add_file(&u, 5);
	T_EQ_INT(u.bytes, 15);
	T_EQ_INT(u.count, 2);
	mdquota_add_file(&u, UINT64_MAX);
	T_CHECK(u.bytes == INT64_MAX);
	T_EQ_INT(u.count, 3);
	mdquota_add_file(&u, 1);
	T_CHECK(u.bytes == INT64_MAX);
	T_EQ_INT(mdquota_over(&u, 1000, 0, 0, 0), 1);
	struct mdquota_use v = { 0, 0 };
	mdquota_add_file(&v, (uint64_t)INT64_MAX);
	mdquota_add_file(&v, (uint64_t)INT64_MAX);
	T_CHECK(v.bytes == INT64_MAX);
	struct mdquota_use c = { 0, INT64_MAX };
	mdquota_add_file(&c, 0);
	T_CHECK(c.count == INT64_MAX);
}

/* the users file's 6th field, Maildir++ notation */
static void test_spec(void)
{
	static const struct { const char *s; int rc; uint64_t size, count; } cases[] = {
		{ "1000000S,500C", 0, 1000000, 500 }, { "500C,1000S", 0, 1000, 500 },
		{ "1000S", 0, 1000, 0 }, { "7C", 0, 0, 7 },
		{ "18446744073709551615S", 0, UINT64_MAX - 0, 0 },
		{ "", -1, 0, 0 }, { "1000", -1, 0, 0 }, { "0S", -1, 0, 0 }, { "1000S,", -1, 0, 0 },
		{ "1000S,2000S", -1, 0, 0 }, { "1000S,5C,6C", -1, 0, 0 }, { "-5S", -1, 0, 0 },
		{ "10s", -1, 0, 0 }, { "1000S 5C", -1, 0, 0 }, { "99999999999999999999S", -1, 0, 0 },
		{ "S", -1, 0, 0 }, { "1000S5C", -1, 0, 0 }, { " 1000S", -1, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t sz = 9, ct = 9;
		int rc = mdquota_spec_parse(cases[i].s, &sz, &ct);
		T_EQ_INT(rc, cases[i].rc);
		if (rc == 0)
			T_CHECK(sz == cases[i].size && ct == cases[i].count);
	}
}

/* tern-local's -Q SIZE,COUNT,DAYS,TEXT */
static void test_args(void)
{
	struct mdquota_args a;
	T_EQ_INT(mdquota_args_parse("1000,50,5,Your mailbox is almost full, really.", &a), 0);
	T_CHECK(a.size == 1000 && a.count == 50 && a.bouncedays == 5);
	T_EQ_STR(a.warning, "Your mailbox is almost full, really.");
	T_EQ_INT(mdquota_args_parse("0,0,0,", &a), 0);
	T_CHECK(a.size == 0 && a.count == 0 && a.bouncedays == 0);
	T_EQ_STR(a.warning, "");
	static const char *const bad[] = { "", "1,2,3", "1,2", "a,2,3,", "1,,3,", "-1,2,3,",
		"1,2,99999999999999999999,", " 1,2,3,", "1 ,2,3," };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		T_EQ_INT(mdquota_args_parse(bad[i], &a), -1);
}

/* the 90 % warning threshold, either limit */
static void test_warn(void)
{
	struct mdquota_use u = { 899, 0 };
	T_EQ_INT(mdquota_warn_due(&u, 1000, 0), 0);
	u.bytes = 900;
	T_EQ_INT(mdquota_warn_due(&u, 1000, 0), 1);
	T_EQ_INT(mdquota_warn_due(&u, 0, 0), 0);          /* no limits, no warning */
	u = (struct mdquota_use){ 0, 9 };
	T_EQ_INT(mdquota_warn_due(&u, 0, 10), 1);
	T_EQ_INT(mdquota_warn_due(&u, 0, 11), 0);
	u = (struct mdquota_use){ -5, -1 };
	T_EQ_INT(mdquota_warn_due(&u, 1, 1), 0);
	u = (struct mdquota_use){ INT64_MAX, 0 };
	T_EQ_INT(mdquota_warn_due(&u, UINT64_MAX, 0), 0);
	T_EQ_INT(mdquota_warn_due(&u, (uint64_t)INT64_MAX, 0), 1);
	u = (struct mdquota_use){ 9, 0 };                 /* 9 of 10: 90 % */
	T_EQ_INT(mdquota_warn_due(&u, 10, 0), 1);
	u.bytes = 8;
	T_EQ_INT(mdquota_warn_due(&u, 10, 0), 0);
}

/* the warning is a whole RFC 5322 message addressed to the user */
static void test_warning_message(void)
{
	struct buf m;
	buf_init(&m);
	mdquota_warning(&m, "joe@example.org", "Clean up.", 1000000000, 42, 7);
	const char *end = strstr(m.p, "\n\n");
	T_CHECK(end != NULL);
	static const char from[] = "From: Mail Delivery System <MAILER-DAEMON>\n";
	T_CHECK(strncmp(m.p, from, strlen(from)) == 0);
	T_CHECK(strstr(m.p, "\nTo: <joe@example.org>\n") != NULL);
	T_CHECK(strstr(m.p, "\nSubject: Warning: your mailbox is almost full\n") != NULL);
	T_CHECK(strstr(m.p, "\nDate: ") != NULL && strstr(m.p, "\nDate: ") < end);
	T_CHECK(strstr(m.p, "\nMessage-ID: <1000000000.000042.7.quotawarn@example.org>\n") != NULL);
	T_CHECK(strstr(m.p, "\nAuto-Submitted: auto-generated\n") != NULL);
	T_EQ_STR(end, "\n\nClean up.\n");
	buf_reset(&m);   /* a hostile address stays on its line */
	mdquota_warning(&m, "a\r\nBcc: x@y", "t", 1, 0, 1);
	T_CHECK(strstr(m.p, "\nTo: <a__Bcc: x@y>\n") != NULL);
	T_CHECK(strstr(m.p, "quotawarn@y>\n") != NULL);
	buf_reset(&m);
	mdquota_warning(&m, "nodomain", "t", 1, 0, 1);
	T_CHECK(strstr(m.p, "quotawarn@localhost>\n") != NULL);
	buf_free(&m);
}

static void run(void)
{
	test_warning_message();
	test_spec();
	test_args();
	test_warn();
	test_defline();
	test_parse();
	test_over();
	test_name_size();
	test_add_file();
}
T_MAIN(run)
