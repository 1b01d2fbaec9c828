/* test_ldapprof — the delivery profile's encoding (src/mail/ldapprof.c), table-driven:
 * round trips, the escaping, and every malformed form decode must refuse. Trusts: nothing. */
#include "t.h"
#include "mail/ldapprof.h"

static void test_roundtrip(void)
{
	struct ldapprof p, q;
	struct buf b;
	char why[80];
	ldapprof_init(&p);
	free(p.store);
	p.store = xstrdup("/var/mail/ex ample/joe/Maildir/");
	p.dotmode = LDAPPROF_BOTH;
	p.mode = LDAPPROF_NOMBOX | LDAPPROF_REPLY;
	p.forward[p.nforward++] = xstrdup("a@example.test");
	p.forward[p.nforward++] = xstrdup("b%x=y@example.test");
	p.program[p.nprogram++] = xstrdup("/usr/bin/filter -v");
	p.quotasize = 1000000;
	p.quotacount = 50;
	p.sizemax = 20000;
	free(p.reply);
	p.reply = xstrdup("Away.\nBack on Monday. \xc3\xa9");
	buf_init(&b);
	ldapprof_encode(&p, &b);
	T_CHECK(strchr(b.p, '\n') == NULL);
	for (const char *s = b.p; *s; s++)
		T_CHECK(*s >= 0x20 && *s < 0x7f);
	T_EQ_INT(ldapprof_decode(b.p, &q, why, sizeof why), 0);
	T_EQ_STR(q.store, p.store);
	T_EQ_INT(q.dotmode, LDAPPROF_BOTH);
	T_EQ_INT((int)q.mode, (int)(LDAPPROF_NOMBOX | LDAPPROF_REPLY));
	T_EQ_INT((int)q.nforward, 2);
	T_EQ_STR(q.forward[1], "b%x=y@example.test");
	T_EQ_INT((int)q.nprogram, 1);
	T_EQ_STR(q.program[0], "/usr/bin/filter -v");
	T_CHECK(q.quotasize == 1000000 && q.quotacount == 50 && q.sizemax == 20000);
	T_EQ_STR(q.reply, p.reply);
	ldapprof_free(&p);
	ldapprof_free(&q);
	buf_free(&b);
}

static void test_empty(void)
{
	struct ldapprof p;
	struct buf b;
	char why[80];
	ldapprof_init(&p);
	buf_init(&b);
	ldapprof_encode(&p, &b);
	T_EQ_STR(b.p, "dotmode=ldaponly");
	ldapprof_free(&p);
	T_EQ_INT(ldapprof_decode("", &p, why, sizeof why), 0);
	T_EQ_STR(p.store, "");
	T_EQ_INT(p.dotmode, LDAPPROF_LDAPONLY);
	ldapprof_free(&p);
	T_EQ_INT(ldapprof_decode("future=1  dotmode=none ", &p, why, sizeof why), 0);
	T_EQ_INT(p.dotmode, LDAPPROF_NONE);
	T_EQ_INT(p.table, 0);
	ldapprof_free(&p);
	/* a users-table user's quota (route.c): table=1 survives the round trip */
	ldapprof_init(&p);
	p.table = 1;
	p.quotasize = 2000;
	buf_reset(&b);
	ldapprof_encode(&p, &b);
	ldapprof_free(&p);
	T_EQ_STR(b.p, "dotmode=ldaponly quotasize=2000 table=1");
	T_EQ_INT(ldapprof_decode(b.p, &p, why, sizeof why), 0);
	T_CHECK(p.table == 1 && p.quotasize == 2000 && p.quotacount == 0);
	ldapprof_free(&p);
	buf_free(&b);
}

static const char *const bad[] = {
	"store", "=x", "store=%", "store=%4", "store=%zz", "store=%00", "dotmode=sometimes",
	"mode=often", "quotasize=-1", "quotasize=0", "quotasize=1x", "sizemax=99999999999999999999",
	"store=a store=b", "reply=a reply=b", "dotmode=both dotmode=none", "forward=",
	"table=0", "table=yes", "table=1 table=1",
};

static void test_bad(void)
{
	struct ldapprof p;
	char why[80];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		int rc = ldapprof_decode(bad[i], &p, why, sizeof why);
		if (rc != -1)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		T_EQ_INT(rc, -1);
		T_CHECK(why[0] != '\0');
		ldapprof_free(&p);
	}
	struct buf b;
	buf_init(&b);
	for (int i = 0; i <= LDAPPROF_MAXLIST; i++)
		buf_adds(&b, "forward=a@b ");
	T_EQ_INT(ldapprof_decode(b.p, &p, why, sizeof why), -1);
	ldapprof_free(&p);
	buf_free(&b);
}

static void test_words(void)
{
	unsigned f = 99;
	T_EQ_INT(ldapprof_mode("ForwardOnly", &f), 0);
	T_EQ_INT((int)f, LDAPPROF_NOMBOX);
	T_EQ_INT(ldapprof_mode("localdelivery", &f), 0);
	T_EQ_INT((int)f, 0);
	T_EQ_INT(ldapprof_mode("vacation", &f), -1);
	T_EQ_INT(ldapprof_dotmode("LDAPWITHPROG"), LDAPPROF_LDAPWITHPROG);
	T_EQ_INT(ldapprof_dotmode("dot"), -1);
	T_EQ_STR(ldapprof_dotmode_name(LDAPPROF_DOTONLY), "dotonly");
}

/* the word tables config.c and lookup_explain.c use, and the one store rule */
static void test_tables(void)
{
	size_t n = 0;
	for (; ldapprof_dotmode_words[n]; n++)
		T_EQ_INT(ldapprof_dotmode(ldapprof_dotmode_words[n]), (int)n);
	T_EQ_INT(n, LDAPPROF_NONE + 1);
	T_EQ_STR(ldapprof_mode_name(LDAPPROF_NOMBOX), "nombox");
	T_EQ_STR(ldapprof_mode_name(LDAPPROF_NOFORWARD), "noforward");
	T_EQ_STR(ldapprof_mode_name(LDAPPROF_NOPROGRAM), "noprogram");
	T_EQ_STR(ldapprof_mode_name(LDAPPROF_REPLY), "reply");
	static const struct { const char *s; int ok; } st[] = {
		{ "/var/mail/dj/Maildir/", 1 }, { "/var/mail/dj/mbox", 1 }, { "/a b/", 1 },
		{ "", 0 }, { "/", 0 }, { "Maildir/", 0 }, { "./Maildir/", 0 },
		{ "/var/mail/../etc/", 0 }, { "/var/mail/..", 0 }, { "/var/d\nj/", 0 },
		{ "/var/d\tj/", 0 }, { "/var/d\x7fj/", 0 }, { "/var/dj ", 0 },
	};
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
		T_EQ_INT(ldapprof_store_ok(st[i].s), st[i].ok);
}

static void run(void)
{
	test_roundtrip();
	test_empty();
	test_bad();
	test_words();
	test_tables();
}

T_MAIN(run)
