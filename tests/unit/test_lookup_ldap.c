/* test_lookup_ldap — the `users ldap:` backend (src/ternd/lookup/lookup_ldap.c, compiled in)
 * over a fake directory client (ldapc_user defined here): qmail-ldap's order (an exact entry
 * beats an extension match beats the @domain catch-all, extensions removed at each '-' from
 * the right), the mapping of an entry to users_result and its delivery profile (defaults from
 * the config, every value checked: uid 0, role accounts, unknown accountStatus /
 * deliveryMode / qmailDotMode, a relative store, a profile too long are TABLE_TEMP), the
 * cache (found and not found kept, TEMP never, ttl 0 = off) and questions joining a search
 * in flight. */
#include "t.h"
#include "ternd/lookup/lookup_ldap.c"
#include "mail/ldapprof.h"
#include <pwd.h>

/* ---------------------------------------------------------------- the fake directory */

struct fake_entry {
	const char *key;             /* address, or "@domain" for a catch-all */
	struct ldapc_user u;
};

static struct fake_entry *fake_dir;
static size_t fake_n;
static int fake_temp;            /* answer TABLE_TEMP */
static int fake_defer;           /* keep the question for fake_release() */
static unsigned fake_searches;
static char fake_asked[16][128];
static struct { ldapc_cb cb; void *arg; char addr[256]; } fake_held[8];
static size_t fake_nheld;

static void fake_answer(const char *address, ldapc_cb cb, void *arg)
{
	const char *at = strrchr(address, '@');
	const struct fake_entry *catchall = NULL;
	if (fake_temp) {
		cb(arg, TABLE_TEMP, NULL);
		return;
	}
	for (size_t i = 0; i < fake_n; i++) {
		if (str_casecmp(fake_dir[i].key, address) == 0) {
			struct ldapc_user u = fake_dir[i].u;
			u.catchall = 0;
			cb(arg, TABLE_FOUND, &u);
			return;
		}
		if (at && str_casecmp(fake_dir[i].key, at) == 0)
			catchall = &fake_dir[i];
	}
	if (catchall) {
		struct ldapc_user u = catchall->u;
		u.catchall = 1;
		cb(arg, TABLE_FOUND, &u);
	} else {
		cb(arg, TABLE_NOTFOUND, NULL);
	}
}

int ldapc_user(struct ldapc *l, const char *address, ldapc_cb cb, void *arg)
{
	if (fake_searches < 16)
		snprintf(fake_asked[fake_searches], sizeof fake_asked[0], "%s", address);
	fake_searches++;
	if (fake_defer && fake_nheld < 8) {
		fake_held[fake_nheld].cb = cb;
		fake_held[fake_nheld].arg = arg;
		snprintf(fake_held[fake_nheld].addr, sizeof fake_held[0].addr, "%s", address);
		fake_nheld++;
		return 0;
	}
	fake_answer(address, cb, arg);
	return 0;
}

static void fake_release(void)
{
	fake_defer = 0;
	while (fake_nheld) {
		fake_nheld--;
		fake_answer(fake_held[fake_nheld].addr, fake_held[fake_nheld].cb,
		            fake_held[fake_nheld].arg);
	}
}

/* ---------------------------------------------------------------- answers */

struct got { int n; struct users_result r; char local[64]; };

static void got_done(void *arg, const char *local, const char *domain,
                     const struct users_result *r)
{
	struct got *g = arg;
	g->n++;
	g->r = *r;
	snprintf(g->local, sizeof g->local, "%s", local);
}

static struct config cfg;

static void load_cfg(const char *extra)
{
	struct cfg_errors errs;
	char text[512];
	snprintf(text, sizeof text, "users ldap:\nldapserver ldap://127.0.0.1/\n%s", extra);
	config_free(&cfg);
	T_CHECK(config_parse(&cfg, "t", text, strlen(text), &errs) == 0);
}

static struct ldapc_user user(const char *uid, uint32_t id, const char *store)
{
	struct ldapc_user u;
	memset(&u, 0, sizeof u);
	u.dn = uid;
	u.uid = uid;
	u.qmailuid = u.qmailgid = id;
	u.messagestore = store;
	u.homedir = u.mailhost = u.accountstatus = u.dotmode = u.password = "";
	u.replytext = u.program = "";
	return u;
}

static struct got ask(struct lookup_backend *be, const char *local, const char *domain)
{
	struct got g;
	memset(&g, 0, sizeof g);
	be->ask(be, local, domain, got_done, &g);
	return g;
}

static void test_order(void)
{
	struct fake_entry dir[] = {
		{ "joe@d.test", user("joe", 2001, "/m/joe/Maildir/") },
		{ "joe-foo@d.test", user("joefoo", 2002, "/m/joefoo/Maildir/") },
		{ "@d.test", user("catch", 2003, "/m/catch/Maildir/") },
	};
	struct lookup_backend be;
	fake_dir = dir;
	fake_n = 3;
	load_cfg("ldapcachettl 0\n");
	lookup_backend_ldap(&be, (struct ldapc *)&cfg, &cfg);
	struct {
		const char *local, *user, *ext;
		unsigned searches;
	} cases[] = {
		{ "joe", "joe", "", 1 },                 /* exact beats the catch-all */
		{ "joe-foo", "joefoo", "", 1 },          /* exact beats the extension joe + foo */
		{ "joe-foo-bar", "joefoo", "bar", 2 },   /* longest prefix at a '-' */
		{ "joe-x-y", "joe", "x-y", 3 },
		{ "JOE-Y", "joe", "y", 2 },              /* case-insensitive, ext lowercased */
		{ "zed", "catch", "", 1 },               /* the catch-all, one search */
		{ "a-b-c", "catch", "", 3 },             /* extension steps first, then catch-all */
		{ "-lead", "catch", "", 1 },             /* no user "" */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fake_searches = 0;
		struct got g = ask(&be, cases[i].local, "d.test");
		T_CHECK(g.n == 1);
		T_CHECK(g.r.status == TABLE_FOUND);
		T_EQ_STR(g.r.user, cases[i].user);
		T_EQ_STR(g.r.ext, cases[i].ext);
		T_EQ_STR(g.r.dash, *cases[i].ext ? "-" : "");
		T_EQ_STR(g.local, cases[i].local);    /* answered with the key as asked */
		T_CHECK(fake_searches == cases[i].searches);
	}
	fake_searches = 0;
	struct got g = ask(&be, "joe-x-y", "d.test");
	T_EQ_STR(fake_asked[0], "joe-x-y@d.test");
	T_EQ_STR(fake_asked[1], "joe-x@d.test");
	T_EQ_STR(fake_asked[2], "joe@d.test");
	fake_n = 2;                                 /* no catch-all: not found */
	g = ask(&be, "nobody-else", "d.test");
	T_CHECK(g.r.status == TABLE_NOTFOUND);
	fake_temp = 1;
	g = ask(&be, "joe", "d.test");
	T_CHECK(g.n == 1 && g.r.status == TABLE_TEMP);
	fake_temp = 0;
	lookup_backend_ldap_free(&be);
}

static int map(struct ldapc_user *u, struct users_result *r)
{
	return lookup_ldap_map(&cfg, u, "joe", "", r);
}

static void test_profile(void)
{
	struct users_result r;
	struct ldapprof p;
	char why[128];
	load_cfg("ldapdefaultdotmode dotonly\nldapdefaultquotasize 5000\n"
	         "ldapdefaultquotacount 7\n");
	struct ldapc_user u = user("joe", 2001, "/var/mail/joe/Maildir");
	const char *modes[] = { "nombox", "reply" }, *fwd[] = { "a@x.test", "b@y.test" };
	u.deliverymode = modes;
	u.ndeliverymode = 2;
	u.forward = fwd;
	u.nforward = 2;
	u.program = "/usr/bin/procmail -t";
	u.sizemax = 99;
	u.replytext = "away\nback monday";
	u.mailhost = "node-b.test";
	T_CHECK(map(&u, &r) == TABLE_FOUND);
	T_EQ_STR(r.user, "joe");
	T_CHECK(r.uid == 2001 && r.gid == 2001);
	T_EQ_STR(r.home, "/var/mail/joe");       /* no homeDirectory: the store's directory */
	T_EQ_STR(r.mailhost, "node-b.test");
	T_CHECK(r.account == USERS_ACTIVE);
	T_CHECK(ldapprof_decode(r.profile, &p, why, sizeof why) == 0);
	T_EQ_STR(p.store, "/var/mail/joe/Maildir/");   /* a Maildir: '/' appended */
	T_CHECK(p.dotmode == LDAPPROF_DOTONLY);
	T_CHECK(p.mode == (LDAPPROF_NOMBOX | LDAPPROF_REPLY));
	T_CHECK(p.nforward == 2 && strcmp(p.forward[1], "b@y.test") == 0);
	T_CHECK(p.nprogram == 1 && strcmp(p.program[0], "/usr/bin/procmail -t") == 0);
	T_CHECK(p.quotasize == 5000 && p.quotacount == 7 && p.sizemax == 99);
	T_EQ_STR(p.reply, "away\nback monday");
	ldapprof_free(&p);

	u = user("joe", 2001, "/s/joe/");
	u.homedir = "/home/joe";
	u.dotmode = "LDAPwithProg";
	u.quotasize = 10;
	u.accountstatus = "nopop";
	T_CHECK(map(&u, &r) == TABLE_FOUND);
	T_EQ_STR(r.home, "/home/joe");
	T_CHECK(r.account == USERS_NOACCESS);
	T_CHECK(ldapprof_decode(r.profile, &p, why, sizeof why) == 0);
	T_CHECK(p.dotmode == LDAPPROF_LDAPWITHPROG && p.quotasize == 10 && p.quotacount == 7);
	T_EQ_STR(p.store, "/s/joe/");
	ldapprof_free(&p);
	u.accountstatus = "Disabled";
	T_CHECK(map(&u, &r) == TABLE_FOUND && r.account == USERS_DISABLED);
	u.accountstatus = "deleted";
	T_CHECK(map(&u, &r) == TABLE_FOUND && r.account == USERS_DELETED);
}

static void test_unusable(void)
{
	struct users_result r;
	char big[300];
	const char *fwd[64], *mode[] = { "nosuchmode" };
	load_cfg("");
	memset(big, 'f', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	for (int i = 0; i < 64; i++)
		fwd[i] = big;
	struct ldapc_user u = user("joe", 0, "/m/joe/");
	T_CHECK(map(&u, &r) == TABLE_TEMP);            /* no uid (0): never root */
	T_CHECK(strstr(r.diag, "qmailUID") != NULL);
	u = user("joe", 999, "/m/joe/");
	T_CHECK(map(&u, &r) == TABLE_TEMP);            /* below minuid (1000) */
	u = user("joe", 2001, "/m/joe/");
	u.qmailgid = 0;
	T_CHECK(map(&u, &r) == TABLE_TEMP);
	u = user("joe", 2001, "/m/joe/");
	u.qmailgid = 103;                              /* a system group (ssl-cert): below minuid */
	T_CHECK(map(&u, &r) == TABLE_TEMP);
	T_CHECK(strstr(r.diag, "qmailGID") != NULL);
	load_cfg("ldapgid 100\n");                     /* ldapgid: the administrator's choice */
	u.qmailgid = 100;
	T_CHECK(map(&u, &r) == TABLE_FOUND);
	u.qmailgid = 103;
	T_CHECK(map(&u, &r) == TABLE_TEMP);
	load_cfg("");
	struct passwd *pw = getpwnam(cfg.user);
	if (pw && pw->pw_uid >= 1000) {
		u = user("joe", (uint32_t)pw->pw_uid, "/m/joe/");
		T_CHECK(map(&u, &r) == TABLE_TEMP);        /* a role account */
	}
	u = user("joe", 2001, "/m/joe/");
	u.accountstatus = "sleeping";
	T_CHECK(map(&u, &r) == TABLE_TEMP);
	u = user("joe", 2001, "/m/joe/");
	u.dotmode = "dotsome";
	T_CHECK(map(&u, &r) == TABLE_TEMP);
	u = user("joe", 2001, "/m/joe/");
	u.deliverymode = mode;
	u.ndeliverymode = 1;
	T_CHECK(map(&u, &r) == TABLE_TEMP);
	u = user("joe", 2001, "joe/Maildir/");
	T_CHECK(map(&u, &r) == TABLE_TEMP);            /* relative store, no ldapmessagestore */
	u = user("joe", 2001, "");
	T_CHECK(map(&u, &r) == TABLE_TEMP);            /* neither home nor store */
	u = user("", 2001, "/m/joe/");
	T_CHECK(map(&u, &r) == TABLE_TEMP);            /* no uid attribute */
	u = user("joe", 2001, "/m/joe/");
	u.homedir = "home/joe";
	T_CHECK(map(&u, &r) == TABLE_TEMP);
	u = user("joe", 2001, "/m/joe/");
	u.forward = fwd;
	u.nforward = 64;
	T_CHECK(map(&u, &r) == TABLE_TEMP);            /* profile over USERS_MAXPROFILE */
	T_CHECK(strstr(r.diag, "profile") != NULL);
	u.nforward = 3;
	T_CHECK(map(&u, &r) == TABLE_FOUND);
	const char *empty[] = { "", "a@x.test" };    /* an empty value is skipped (fuzz) */
	struct ldapprof p;
	char why[128];
	u.forward = empty;
	u.nforward = 2;
	T_CHECK(map(&u, &r) == TABLE_FOUND);
	T_CHECK(ldapprof_decode(r.profile, &p, why, sizeof why) == 0);
	T_CHECK(p.nforward == 1);
	ldapprof_free(&p);
}

static void test_cache(void)
{
	struct fake_entry dir[] = { { "joe@d.test", user("joe", 2001, "/m/joe/") } };
	struct lookup_backend be;
	fake_dir = dir;
	fake_n = 1;
	load_cfg("ldapcachettl 60\nldapcachesize 2\n");
	lookup_backend_ldap(&be, (struct ldapc *)&cfg, &cfg);
	fake_searches = 0;
	for (int i = 0; i < 20; i++) {
		struct got g = ask(&be, i % 2 ? "JOE" : "joe", "d.test");
		T_CHECK(g.r.status == TABLE_FOUND);
		T_EQ_STR(g.r.user, "joe");
	}
	T_CHECK(fake_searches == 1);
	ask(&be, "nobody", "d.test");
	ask(&be, "nobody", "d.test");
	T_CHECK(fake_searches == 2);                /* not found: cached too */
	fake_temp = 1;
	ask(&be, "temp", "d.test");
	ask(&be, "temp", "d.test");
	T_CHECK(fake_searches == 4);                /* TEMP never cached */
	fake_temp = 0;
	ask(&be, "other", "d.test");                /* size 2: joe, the oldest, goes */
	ask(&be, "joe", "d.test");
	T_CHECK(fake_searches == 6);

	/* questions for one address while its search is out join it */
	fake_searches = 0;
	fake_defer = 1;
	struct got g[3];
	memset(g, 0, sizeof g);
	be.ask(&be, "late", "d.test", got_done, &g[0]);
	be.ask(&be, "LATE", "d.test", got_done, &g[1]);
	be.ask(&be, "late", "d.test", got_done, &g[2]);
	T_CHECK(fake_searches == 1 && g[0].n == 0);
	fake_dir[0].key = "late@d.test";
	fake_release();
	for (int i = 0; i < 3; i++)
		T_CHECK(g[i].n == 1 && g[i].r.status == TABLE_FOUND);
	T_EQ_STR(g[1].local, "LATE");
	ask(&be, "late", "d.test");
	T_CHECK(fake_searches == 1);

	lookup_backend_ldap_free(&be);
	load_cfg("ldapcachettl 0\n");
	lookup_backend_ldap(&be, (struct ldapc *)&cfg, &cfg);
	fake_searches = 0;
	ask(&be, "late", "d.test");
	ask(&be, "late", "d.test");
	T_CHECK(fake_searches == 2);
	lookup_backend_ldap_free(&be);
}

/* ldaplocaldelivery: an address the directory does not know is asked of passwd: next */
static void test_localdelivery(void)
{
	struct lookup_backend be;
	struct passwd *pw = getpwnam("nobody");
	fake_n = 0;
	load_cfg("ldapcachettl 0\n");
	lookup_backend_ldap(&be, (struct ldapc *)&cfg, &cfg);
	T_CHECK(ask(&be, "nobody", "d.test").r.status == TABLE_NOTFOUND);
	lookup_backend_ldap_free(&be);
	load_cfg("ldapcachettl 0\nldaplocaldelivery yes\n");
	lookup_backend_ldap(&be, (struct ldapc *)&cfg, &cfg);
	if (pw && pw->pw_uid >= 1000) {
		struct got g = ask(&be, "nobody", "d.test");
		T_CHECK(g.r.status == TABLE_FOUND);
		T_EQ_STR(g.r.user, "nobody");
		T_EQ_STR(g.r.profile, "");
	}
	T_CHECK(ask(&be, "root", "d.test").r.status == TABLE_NOTFOUND);   /* below minuid */
	T_CHECK(ask(&be, "no-such-account-x", "d.test").r.status == TABLE_NOTFOUND);
	lookup_backend_ldap_free(&be);
}

static void run(void)
{
	test_order();
	test_profile();
	test_unusable();
	test_cache();
	test_localdelivery();
	config_free(&cfg);
}

T_MAIN(run)
