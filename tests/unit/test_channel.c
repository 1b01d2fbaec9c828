/* test_channel — the channel table (src/mail/channel.c): built-in rows and their defaults
 * from today's keys, `channel` lines table-driven (good and bad), lookups, and the line
 * through config_parse with its file:line errors. */
#include "t.h"
#include "mail/channel.h"
#include "mail/config.h"

static void test_builtin(void)
{
	struct channel_table t;
	struct channel_keys k = { 10, 20, 10, 20, 7 };
	channel_table_init(&t);
	channel_table_finish(&t, &k);
	T_EQ_INT(t.n, CHANNEL_T_COUNT);
	const struct channel_row *l = channel_find(&t, "local"), *s = channel_find(&t, "smtp");
	const struct channel_row *q = channel_find(&t, "qmqp"), *c = channel_find(&t, "cluster");
	T_CHECK(l && s && q && c);
	if (!l || !s || !q || !c)
		return;
	T_EQ_INT(channel_role(l), CHANNEL_MDA);
	T_EQ_INT(channel_role(s), CHANNEL_MTA);
	T_EQ_INT(channel_role(q), CHANNEL_MTA);
	T_EQ_INT(channel_role(c), CHANNEL_MTA);
	T_EQ_INT(l->concurrency, 10); T_EQ_INT(l->retry, 10); T_EQ_INT(l->rcpts, 1); T_EQ_INT(l->grouphost, 0);
	T_EQ_INT(s->concurrency, 20); T_EQ_INT(s->retry, 20); T_EQ_INT(s->perhost, 7);
	T_EQ_INT(s->rcpts, CHANNEL_RCPTMAX); T_EQ_INT(s->grouphost, 1);
	T_EQ_INT(q->concurrency, 20); T_EQ_INT(c->retry, 20);
	T_CHECK(channel_find(&t, "bulk") == NULL);
	T_CHECK(channel_find(&t, "LOCAL") == NULL);     /* names are exact */
	T_CHECK(channel_find(&t, NULL) == NULL);
	T_EQ_INT(channel_is_local(&t, "local"), 1);
	T_EQ_INT(channel_is_local(&t, "smtp"), 0);
	T_EQ_INT(channel_is_local(&t, "nosuch"), 0);
	T_CHECK(channel_builtin(&t, CHANNEL_T_QMQP) == q);
	const struct channel_row *p = channel_find(&t, "prog");   /* no program: never runs */
	T_CHECK(p != NULL);
	if (!p)
		return;
	T_EQ_INT(channel_role(p), CHANNEL_MDA);
	T_EQ_INT(channel_is_local(&t, "prog"), 0);      /* its threads are per host, not user */
	T_EQ_INT(p->concurrency, 10); T_EQ_INT(p->perhost, 10); T_EQ_INT(p->retry, 20);
	T_EQ_INT(p->rcpts, CHANNEL_RCPTMAX); T_EQ_INT(p->grouphost, 1);
	T_EQ_INT(p->timeout, CHANNEL_TIMEOUT);
	T_EQ_STR(p->program, "");
	/* lmtp: run by the mta, local numbers (concurrencylocal, retrylocal; every connection of
	 * the channel may go to its one destination), SMTP's batching */
	const struct channel_row *m = channel_find(&t, "lmtp");
	T_CHECK(m != NULL);
	if (!m)
		return;
	T_EQ_INT(channel_role(m), CHANNEL_MTA);
	T_EQ_INT(m->transport, CHANNEL_T_LMTP);
	T_EQ_STR(channel_transport_name(CHANNEL_T_LMTP), "lmtp");
	T_EQ_INT(m->concurrency, 10); T_EQ_INT(m->perhost, 10); T_EQ_INT(m->retry, 10);
	T_EQ_INT(m->rcpts, CHANNEL_RCPTMAX); T_EQ_INT(m->grouphost, 1);
	T_CHECK(channel_builtin(&t, CHANNEL_T_LMTP) == m);
	T_EQ_INT(channel_is_local(&t, "lmtp"), 0);
	const struct channel_row *li = channel_find(&t, "list");   /* run by the queue itself */
	T_CHECK(li != NULL);
	if (li) {
		T_EQ_INT(channel_role(li), CHANNEL_QUEUE);
		T_EQ_INT(li->rcpts, 1); T_EQ_INT(li->grouphost, 0); T_EQ_INT(li->concurrency, 10);
		T_EQ_INT(channel_is_local(&t, "list"), 0);
	}
}

static void test_lines(void)
{
	static const struct { const char *line; int ok; const char *name, *want; } cases[] = {
		{ "bulk transport=smtp concurrency=5", 1, "bulk",
		  "bulk transport=smtp concurrency=5 perhost=7 retry=20 recipients=100 grouphost=yes" },
		{ "smtp concurrency=50 retry=30", 1, "smtp",
		  "smtp transport=smtp concurrency=50 perhost=7 retry=30 recipients=100 grouphost=yes" },
		{ "local concurrency=3 transport=local", 1, "local",
		  "local transport=local concurrency=3 perhost=3 retry=10 recipients=1 grouphost=no" },
		{ "one transport=smtp recipients=1 grouphost=no perhost=2", 1, "one",
		  "one transport=smtp concurrency=20 perhost=2 retry=20 recipients=1 grouphost=no" },
		{ "ml\ttransport=local   retry=0", 1, "ml",
		  "ml transport=local concurrency=10 perhost=10 retry=0 recipients=1 grouphost=no" },
		{ "q2 transport=qmqp", 1, "q2",
		  "q2 transport=qmqp concurrency=20 perhost=7 retry=20 recipients=100 grouphost=yes" },
		{ "uucp transport=prog program=\"/usr/bin/uux - -r -gC %h!rmail\" user=uucp", 1, "uucp",
		  "uucp transport=prog concurrency=10 perhost=10 retry=20 recipients=100 grouphost=yes "
		  "program=\"/usr/bin/uux - -r -gC %h!rmail\" user=uucp timeout=3600" },
		{ "pp transport=prog program=/bin/x\" -f \"%s user=nobody timeout=60 recipients=1", 1, "pp",
		  "pp transport=prog concurrency=10 perhost=10 retry=20 recipients=1 grouphost=yes "
		  "program=\"/bin/x -f %s\" user=nobody timeout=60" },
		{ "prog program=\"/bin/true %% %h\" user=nobody", 1, "prog",
		  "prog transport=prog concurrency=10 perhost=10 retry=20 recipients=100 grouphost=yes "
		  "program=\"/bin/true %% %h\" user=nobody timeout=3600" },
		{ "pp transport=prog user=uucp", 0, NULL, NULL },                 /* no program */
		{ "pp transport=prog program=/bin/x", 0, NULL, NULL },            /* no account */
		{ "pp transport=prog program=\"x %h\" user=u", 0, NULL, NULL },   /* not absolute */
		{ "pp transport=prog program=/bin/%h user=u", 0, NULL, NULL },    /* % in the path */
		{ "pp transport=prog program=\"/bin/x %u\" user=u", 0, NULL, NULL },  /* unknown % */
		{ "pp transport=prog program=\"/bin/x %\" user=u", 0, NULL, NULL },
		{ "pp transport=prog program=\"/bin/x user=u", 0, NULL, NULL },  /* open quote */
		{ "pp transport=prog program=/bin/x user=a:b", 0, NULL, NULL },
		{ "pp transport=prog program=/bin/x user=\"a b\"", 0, NULL, NULL },
		{ "pp transport=prog program=/bin/x user=u timeout=0", 0, NULL, NULL },
		{ "pp transport=prog program=/bin/x user=u timeout=86401", 0, NULL, NULL },
		{ "bulk transport=smtp program=/bin/x", 0, NULL, NULL },         /* prog keys: prog only */
		{ "bulk transport=smtp user=nobody", 0, NULL, NULL },
		{ "smtp timeout=5", 0, NULL, NULL },
		{ "prog concurrency=3", 0, NULL, NULL },                          /* built-in: still needs one */
		{ "local transport=prog", 0, NULL, NULL },
		{ "dovecot transport=lmtp perhost=4", 1, "dovecot",
		  "dovecot transport=lmtp concurrency=10 perhost=4 retry=10 recipients=100 grouphost=yes" },
		{ "lmtp transport=smtp", 0, NULL, NULL },                /* a built-in keeps its transport */
		{ "bulk", 0, NULL, NULL },                               /* a new name needs a transport */
		{ "bulk concurrency=5", 0, NULL, NULL },
		{ "bulk transport=uucp", 0, NULL, NULL },                /* no such transport */
		{ "bulk transport=smtp color=red", 0, NULL, NULL },      /* unknown key */
		{ "bulk transport=smtp concurrency=0", 0, NULL, NULL },  /* out of range */
		{ "bulk transport=smtp concurrency=10001", 0, NULL, NULL },
		{ "bulk transport=smtp concurrency=-1", 0, NULL, NULL },
		{ "bulk transport=smtp concurrency=5x", 0, NULL, NULL },
		{ "bulk transport=smtp recipients=101", 0, NULL, NULL },
		{ "bulk transport=smtp retry=86401", 0, NULL, NULL },
		{ "bulk transport=smtp grouphost=maybe", 0, NULL, NULL },
		{ "bulk transport=smtp concurrency", 0, NULL, NULL },    /* no = */
		{ "bulk transport=smtp concurrency=", 0, NULL, NULL },
		{ "bulk transport=smtp =5", 0, NULL, NULL },
		{ "smtp transport=local", 0, NULL, NULL },               /* a built-in keeps its transport */
		{ "Bulk transport=smtp", 0, NULL, NULL },                /* names: a-z 0-9 _ - */
		{ "bu.lk transport=smtp", 0, NULL, NULL },
		{ "", 0, NULL, NULL },
		{ "abcdefghijabcdefghijabcdefghijabc transport=smtp", 0, NULL, NULL },   /* 33 bytes */
	};
	struct channel_keys k = { 10, 20, 10, 20, 7 };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct channel_table t;
		char line[200], err[256] = "", out[700];
		channel_table_init(&t);
		snprintf(line, sizeof line, "%s", cases[i].line);
		int r = channel_parse(&t, line, err, sizeof err);
		T_EQ_INT(r, cases[i].ok ? 0 : -1);
		if (!cases[i].ok) {
			T_CHECK(err[0] != '\0');
			T_EQ_INT(t.n, CHANNEL_T_COUNT);
			continue;
		}
		channel_table_finish(&t, &k);
		const struct channel_row *row = channel_find(&t, cases[i].name);
		T_CHECK(row != NULL);
		if (!row)
			continue;
		channel_format(row, out, sizeof out);
		T_EQ_STR(out, cases[i].want);
	}
}

static void test_twice_and_full(void)
{
	struct channel_table t;
	char line[80], err[256];
	channel_table_init(&t);
	snprintf(line, sizeof line, "smtp concurrency=5");
	T_EQ_INT(channel_parse(&t, line, err, sizeof err), 0);
	snprintf(line, sizeof line, "smtp concurrency=6");
	T_EQ_INT(channel_parse(&t, line, err, sizeof err), -1);  /* declared twice */
	for (int i = 0; i < CHANNEL_MAX - CHANNEL_T_COUNT; i++) {
		snprintf(line, sizeof line, "c%d transport=local", i);
		T_EQ_INT(channel_parse(&t, line, err, sizeof err), 0);
	}
	snprintf(line, sizeof line, "one-too-many transport=local");
	T_EQ_INT(channel_parse(&t, line, err, sizeof err), -1);
	T_EQ_INT(t.n, CHANNEL_MAX);
}

/* through tern.conf: the keys are the built-ins' defaults, a line overrides them, errors
 * carry the line */
static void test_config(void)
{
	struct config c;
	struct cfg_errors errs;
	const char *ok = "concurrencyremote 30\nretrylocal 5\nsmtpconnperhost 4\n"
	                 "channel bulk transport=smtp concurrency=5\nchannel qmqp concurrency=2\n";
	T_EQ_INT(config_parse(&c, "t.conf", ok, strlen(ok), &errs), 0);
	const struct channel_row *s = channel_find(&c.channels, "smtp");
	const struct channel_row *b = channel_find(&c.channels, "bulk");
	const struct channel_row *q = channel_find(&c.channels, "qmqp");
	const struct channel_row *l = channel_find(&c.channels, "local");
	T_CHECK(s && b && q && l);
	if (s && b && q && l) {
		T_EQ_INT(s->concurrency, 30); T_EQ_INT(s->perhost, 4);
		T_EQ_INT(b->concurrency, 5); T_EQ_INT(b->perhost, 4); T_EQ_INT(b->retry, 20);
		T_EQ_INT(q->concurrency, 2);
		T_EQ_INT(l->retry, 5); T_EQ_INT(l->concurrency, 10);
	}
	config_free(&c);
	const char *bad = "me x.org\nchannel bulk transport=uucp\nchannel smtp speed=9\n";
	T_EQ_INT(config_parse(&c, "t.conf", bad, strlen(bad), &errs), -1);
	T_EQ_INT(errs.n, 2);
	if (errs.n == 2) {
		T_EQ_INT(errs.e[0].line, 2);
		T_EQ_INT(errs.e[1].line, 3);
		T_CHECK(strstr(errs.e[0].msg, "transport") != NULL);
		T_CHECK(strstr(errs.e[1].msg, "speed") != NULL);
		T_EQ_STR(errs.e[0].file, "t.conf");
	}
	config_free(&c);
	/* a prog row: its account and program are checked, errors on the channel line */
	const char *pok = "me x.org\nchannel uucp transport=prog program=\"/bin/sh %h\" user=nobody\n";
	T_EQ_INT(config_parse(&c, "t.conf", pok, strlen(pok), &errs), 0);
	config_free(&c);
	const char *pbad = "me x.org\nchannel a transport=prog program=/bin/sh user=root\n"
	                   "channel b transport=prog program=/nonexistent/x user=nobody\n"
	                   "channel c transport=prog program=/bin/sh user=no-such-account-x\n"
	                   "user daemon\nchannel d transport=prog program=/bin/sh user=daemon\n"
	                   "channel e transport=prog program=/etc user=nobody\n";
	T_EQ_INT(config_parse(&c, "t.conf", pbad, strlen(pbad), &errs), -1);
	T_EQ_INT(errs.n, 5);
	for (int i = 0; i < errs.n && i < 5; i++) {
		static const char *const want[] = { "root", "no such file", "no such account",
		                                    "account of ternd's roles", "not an executable" };
		T_EQ_INT(errs.e[i].line, i < 3 ? i + 2 : i + 3);
		T_CHECK(strstr(errs.e[i].msg, want[i]) != NULL);
	}
	config_free(&c);
}

static void run(void)
{
	test_builtin();
	test_lines();
	test_twice_and_full();
	test_config();
}
T_MAIN(run)
