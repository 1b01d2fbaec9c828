/* test_ldapreq — ldaplookup's -u and -p on ternctl's command line and on the control
 * socket's request line (src/mail/ldapreq.c), table-driven; the round trip of a password
 * through the hex encoding. Trusts: nothing. */
#include "t.h"
#include "mail/ldapreq.h"
#include <string.h>

#define MAXW 8

/* words separated by one blank into argv (in buf) */
static int split(char *buf, char **argv)
{
	int n = 0;
	for (char *t = strtok(buf, " "); t && n < MAXW; t = strtok(NULL, " "))
		argv[n++] = t;
	return n;
}

static const struct {
	const char *line;       /* the words after `ldaplookup` */
	int ok, uid, password;
	const char *arg, *pw;
} wire_cases[] = {
	{ "joe@example.test", 1, 0, 0, "joe@example.test", "" },
	{ "-u joe", 1, 1, 0, "joe", "" },
	{ "-p 6869 joe@example.test", 1, 0, 1, "joe@example.test", "hi" },
	{ "-u -p 4869 joe", 1, 1, 1, "joe", "Hi" },
	{ "-p 4A4b -u joe", 1, 1, 1, "joe", "JK" },
	{ "-p 2070 joe", 1, 0, 1, "joe", " p" },          /* a blank travels as hex */
	{ "", 0, 0, 0, NULL, NULL },                      /* no argument */
	{ "-u", 0, 0, 0, NULL, NULL },                    /* an option is no argument */
	{ "-p 6869", 0, 0, 0, NULL, NULL },               /* the hex is no argument */
	{ "-p joe", 0, 0, 0, NULL, NULL },
	{ "-p 686 joe", 0, 0, 0, NULL, NULL },            /* odd */
	{ "-p 68zz joe", 0, 0, 0, NULL, NULL },           /* not hex */
	{ "-p 6800 joe", 0, 0, 0, NULL, NULL },           /* a NUL */
	{ "-u -u joe", 0, 0, 0, NULL, NULL },             /* twice */
	{ "-p 61 -p 62 joe", 0, 0, 0, NULL, NULL },
	{ "-x joe", 0, 0, 0, NULL, NULL },
	{ "joe extra", 0, 0, 0, NULL, NULL },             /* two arguments */
	{ "-u -joe", 0, 0, 0, NULL, NULL },               /* an argument that looks like an option */
};

static void test_wire(void)
{
	for (size_t i = 0; i < sizeof wire_cases / sizeof wire_cases[0]; i++) {
		char buf[256], *argv[MAXW];
		struct ldapreq q;
		snprintf(buf, sizeof buf, "%s", wire_cases[i].line);
		int n = split(buf, argv);
		int rc = ldapreq_parse(argv, n, &q);
		T_EQ_INT(rc, wire_cases[i].ok ? 0 : -1);
		if (rc < 0) {
			T_EQ_STR(q.pw, "");                       /* wiped */
			continue;
		}
		T_EQ_INT(q.uid, wire_cases[i].uid);
		T_EQ_INT(q.password, wire_cases[i].password);
		T_EQ_STR(q.arg, wire_cases[i].arg);
		T_EQ_STR(q.pw, wire_cases[i].pw);
		ldapreq_wipe(&q);
		T_EQ_STR(q.pw, "");
	}
}

static const struct { const char *line; int ok, uid, password; } cli_cases[] = {
	{ "joe@example.test", 1, 0, 0 },
	{ "-u joe", 1, 1, 0 },
	{ "-p joe@example.test", 1, 0, 1 },     /* -p takes no argument: stdin has it */
	{ "-p -u joe", 1, 1, 1 },
	{ "-u -p joe", 1, 1, 1 },
	{ "-p", 0, 0, 0 },
	{ "-p secret joe", 0, 0, 0 },           /* a password on argv is refused */
	{ "joe -u", 0, 0, 0 },
	{ "", 0, 0, 0 },
};

static void test_cli(void)
{
	for (size_t i = 0; i < sizeof cli_cases / sizeof cli_cases[0]; i++) {
		char buf[256], *argv[MAXW];
		struct ldapreq q;
		snprintf(buf, sizeof buf, "%s", cli_cases[i].line);
		int n = split(buf, argv);
		int rc = ldapreq_cli(argv, n, &q);
		T_EQ_INT(rc, cli_cases[i].ok ? 0 : -1);
		if (rc == 0) {
			T_EQ_INT(q.uid, cli_cases[i].uid);
			T_EQ_INT(q.password, cli_cases[i].password);
		}
	}
}

/* every byte but NUL survives ternctl's line and the control role's parse */
static void test_round_trip(void)
{
	char pw[256], *argv[MAXW];
	for (int i = 1; i < 256; i++)
		pw[i - 1] = (char)i;
	pw[255] = '\0';
	struct ldapreq q = { .uid = 1, .password = 1, .arg = "joe" }, r;
	struct buf b;
	buf_init(&b);
	ldapreq_line(&b, &q, pw);
	T_CHECK(strncmp(b.p, "ldaplookup -u -p 0102", 21) == 0);
	T_CHECK(strchr(b.p, '\n') == NULL);
	int n = split(b.p, argv);
	T_EQ_STR(argv[0], "ldaplookup");
	T_EQ_INT(ldapreq_parse(argv + 1, n - 1, &r), 0);
	T_EQ_STR(r.pw, pw);
	T_EQ_STR(r.arg, "joe");
	T_EQ_INT(r.uid, 1);
	buf_free(&b);
	/* too long for the request: refused */
	char big[2 * LDAPREQ_MAXPW + 3];
	memset(big, '6', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	char *av[] = { "-p", big, "joe" };
	T_EQ_INT(ldapreq_parse(av, 3, &r), -1);
	big[2 * (LDAPREQ_MAXPW - 1)] = '\0';             /* the longest that fits */
	T_EQ_INT(ldapreq_parse(av, 3, &r), 0);
	T_EQ_INT((int)strlen(r.pw), LDAPREQ_MAXPW - 1);
}

static void run(void)
{
	test_wire();
	test_cli();
	test_round_trip();
}
T_MAIN(run)
