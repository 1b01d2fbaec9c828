/* test_progchan — MMDF's program interface (src/mail/progchan.c): templates, the argument
 * vector with its safe substitutions, and the reply protocol table-driven: every mix of
 * A / M / T / P lines, protocol errors, and the end of a run (exit codes, signal, time
 * limit) for the addresses left without a reply. */
#include "t.h"
#include "mail/progchan.h"

static void test_template(void)
{
	static const struct { const char *p; int ok; } cases[] = {
		{ "/usr/bin/uux - -r -gC %h!rmail", 1 }, { "/bin/x %s %h %%", 1 }, { "/bin/x", 1 },
		{ "x", 0 }, { "", 0 }, { "   ", 0 }, { "/bin/%h", 0 }, { "/bin/x %u", 0 },
		{ "/bin/x 100%", 0 }, { "/bin/x a b c d e f g h i j k l m n o p q r s t u v w x y z "
		  "a b c d e f", 0 },       /* 33 words */
	};
	char why[128];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = progchan_template_check(cases[i].p, why, sizeof why);
		T_EQ_INT(r, cases[i].ok ? 0 : -1);
	}
}

static void test_argv(void)
{
	char why[128];
	char **a = progchan_argv("/usr/bin/uux  - -r -gC %h!rmail (%s) 100%%", "gate host",
	                         "joe@x.org", "ABC.1", why, sizeof why);
	T_CHECK(a == NULL);                         /* a blank in the host */
	a = progchan_argv("/usr/bin/uux  - -r -gC %h!rmail (%s) 100%%", "gatehost", "joe@x.org",
	                  "ABC.1", why, sizeof why);
	T_CHECK(a != NULL);
	if (a) {
		const char *want[] = { "/usr/bin/uux", "-", "-r", "-gC", "gatehost!rmail",
		                       "(joe@x.org)", "100%", "0", "3", "4", "ABC.1", "joe@x.org", "y" };
		size_t n = 0;
		while (a[n])
			n++;
		T_EQ_INT(n, 13);
		for (size_t i = 0; i < n && i < 13; i++)
			T_EQ_STR(a[i], want[i]);
		progchan_argv_free(a);
	}
	a = progchan_argv("/bin/x %s", "h", "", "ID", why, sizeof why);   /* <>: an empty word */
	T_CHECK(a && a[1] && strcmp(a[1], "") == 0 && a[6] && strcmp(a[6], "") == 0);
	progchan_argv_free(a);
	static const struct { const char *host, *sender, *name; } bad[] = {
		{ "-oX", "s@x", "ID" },          /* a substitution would start an option */
		{ "h", "-f@x", "ID" },           /* a sender that is an option in the trailing words */
		{ "h\n", "s@x", "ID" }, { "h", "s\t@x", "ID" }, { "h\xc3\xa9", "s@x", "ID" },
		{ "h", "s@x", "-ID" }, { "h", "s@x", "I D" }, { "h", "s@x", "" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		a = progchan_argv("/bin/x %h", bad[i].host, bad[i].sender, bad[i].name, why, sizeof why);
		T_CHECK(a == NULL);
		progchan_argv_free(a);
	}
	a = progchan_argv("/bin/x -%h", "-y", "s", "ID", why, sizeof why);  /* the word was one */
	T_CHECK(a && strcmp(a[1], "--y") == 0);
	progchan_argv_free(a);
	T_EQ_INT(progchan_address_ok("a@b"), 1);
	T_EQ_INT(progchan_address_ok("a\n@b"), 0);
	T_EQ_INT(progchan_address_ok(""), 0);
}

/* one run: n addresses, the replies, how it ended; want: one letter per address
 * (O ok, T temp rcpt, S temp site, P perm) */
static void run_case(size_t n, const char *replies, int exited, int code, int sig, int timedout,
                     const char *want, const char *text0)
{
	struct progchan p;
	progchan_init(&p, n);
	size_t len = strlen(replies);
	for (size_t i = 0; i < len; i += 3)       /* in small pieces */
		progchan_feed(&p, replies + i, len - i < 3 ? len - i : 3);
	progchan_end(&p, exited, code, sig, timedout);
	char got[16] = "";
	for (size_t i = 0; i < n; i++)
		got[i] = p.r[i].st == PROGCHAN_OK ? 'O' : p.r[i].st == PROGCHAN_PERM ? 'P' :
		         p.r[i].st == PROGCHAN_TEMP ? (p.r[i].scope == PROGCHAN_SITE ? 'S' : 'T') : '?';
	T_EQ_STR(got, want);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "  replies \"%s\"\n", replies);
	if (text0)
		T_EQ_STR(p.r[0].text, text0);
	progchan_free(&p);
}

static void test_replies(void)
{
	run_case(3, "M ok\nT busy\nP no such user\n", 1, 0, 0, 0, "OTP", "ok");
	run_case(3, "A\nP unknown\nA\nM queued for gatehost\n", 1, 0, 0, 0, "OPO",
	         "queued for gatehost");
	run_case(2, "A\nA\nT spool full\n", 1, 0, 0, 0, "SS", "spool full");
	run_case(2, "A\nA\nP text refused\n", 1, 0, 0, 0, "PP", "text refused");
	run_case(2, "A\nA\n", 1, 0, 0, 0, "SS", NULL);                /* no final line */
	run_case(2, "A\nA\n", 1, 1, 9, 1, "SS",
	         "the program did not finish within its time limit");
	run_case(3, "M\n", 0, 0, 11, 0, "OSS", "delivered");          /* crashed after one */
	run_case(2, "", 1, 0, 0, 0, "OO", NULL);                      /* qmail's exit codes */
	run_case(2, "", 1, 100, 0, 0, "PP", NULL);
	run_case(2, "", 1, 111, 0, 0, "SS", NULL);
	run_case(2, "", 1, 1, 0, 0, "SS", NULL);
	run_case(2, "", 0, 0, 9, 1, "SS", NULL);
	run_case(2, "M\n", 1, 100, 0, 0, "OS", NULL);                 /* answered: codes ignored */
	run_case(2, "A\nM\n", 1, 0, 0, 0, "SS", NULL);               /* MMDF: one kind of ok */
	run_case(2, "M\nA\n", 1, 0, 0, 0, "OS", NULL);
	run_case(2, "X\nM\n", 1, 0, 0, 0, "SS", NULL);               /* not a reply */
	run_case(2, "Mok\nM\n", 1, 0, 0, 0, "SS", NULL);
	run_case(1, "\n", 1, 0, 0, 0, "S", NULL);
	run_case(1, "M", 1, 0, 0, 0, "S", NULL);                     /* no line feed */
	run_case(1, "M ok\r\n", 1, 0, 0, 0, "O", "ok");
	run_case(1, "P bad\x01\xff text\n", 1, 0, 0, 0, "P", "bad?? text");
	run_case(1, "M\nP too late\n", 1, 0, 0, 0, "O", NULL);       /* after the last result */
	run_case(2, "A\nA\nA\n", 1, 0, 0, 0, "SS", NULL);            /* A as the final line */
	run_case(0, "", 1, 0, 0, 0, "", NULL);
	char big[700];
	memset(big, 'x', sizeof big);
	big[0] = 'P';
	big[1] = ' ';
	big[sizeof big - 1] = '\0';
	run_case(1, big, 1, 0, 0, 0, "S", NULL);                     /* over PROGCHAN_LINEMAX */
	struct progchan p;                                           /* a long text is cut */
	progchan_init(&p, 1);
	big[500] = '\n';
	big[501] = '\0';
	progchan_feed(&p, big, strlen(big));
	progchan_end(&p, 1, 0, 0, 0);
	T_EQ_INT(p.r[0].st, PROGCHAN_PERM);
	T_EQ_INT(strlen(p.r[0].text), PROGCHAN_TEXTMAX);
	progchan_free(&p);
}

static void run(void)
{
	test_template();
	test_argv();
	test_replies();
}
T_MAIN(run)
