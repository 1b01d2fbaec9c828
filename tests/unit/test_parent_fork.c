/* test_parent_fork — which (uid, gid) the parent gives a delivery child (parent_fork.c): a
 * table of requests against fixed facts (role accounts, privileged groups, defaultprivs,
 * development mode, what the users table says), the users-table lookup, and the list of role
 * accounts. The decision is pure, so no account of this machine is needed. */
#include "t.h"
#include "ternd/parent/parent_fork.c"

/* role accounts _tern 999:995 and _ternq 995:994; defaultprivs nobody 65534:65534;
 * privileged groups 0, 995, 994 (the roles'), 42 (shadow), 6 (disk) */
static struct parent_fork_facts facts(int dev)
{
	struct parent_fork_facts f = {
		.dev = dev, .devacct = { 999, 995 }, .have_dflt = 1, .dflt = { 65534, 65534 },
		.role_uids = { 999, 995 }, .nrole = 2,
		.bad_gids = { 0, 995, 994, 42, 6 }, .nbad = 5,
	};
	return f;
}

static void test_table(void)
{
	enum { NO = PARENT_FORK_NOT_IN_TABLE, IN = PARENT_FORK_IN_TABLE, TEMP = PARENT_FORK_TABLE_TEMP };
	static const struct {
		int dev;
		uint64_t uid, gid;
		int table;
		const char *why;      /* NULL: allowed; else a word of the reason */
	} cases[] = {
		/* the users table's own pair */
		{ 0, 1001, 100, IN, NULL },
		{ 0, 1001, 100, NO, "users table" },
		{ 0, 1001, 100, TEMP, "unreadable" },
		/* never root, never group 0, even if the table said so */
		{ 0, 0, 100, IN, "root" },
		{ 0, 1001, 0, IN, "root" },
		{ 0, 0, 0, IN, "root" },
		/* a compromised mda asks for a privileged group with a real user's uid */
		{ 0, 1001, 42, NO, "privileged" },
		{ 0, 1001, 6, IN, "privileged" },
		{ 0, 1001, 995, IN, "privileged" },
		{ 0, 1001, 994, NO, "privileged" },
		/* a role account's uid, with any group */
		{ 0, 999, 995, IN, "role account" },
		{ 0, 995, 994, NO, "role account" },
		{ 0, 999, 100, IN, "role account" },
		/* defaultprivs: its own pair only */
		{ 0, 65534, 65534, NO, NULL },
		{ 0, 65534, 100, NO, "users table" },
		{ 0, 65534, 42, NO, "privileged" },
		/* out of range: (uid_t)-1 means "unchanged" to setuid */
		{ 0, 4294967295u, 100, IN, "range" },
		{ 0, 1001, 4294967295u, IN, "range" },
		{ 0, 1ull << 40, 100, IN, "range" },
		/* development (users any:): the roles' account, exactly */
		{ 1, 999, 995, NO, NULL },
		{ 1, 999, 42, NO, "role account" },
		{ 1, 995, 994, NO, "role account" },
		{ 1, 1001, 100, NO, "users table" },
		{ 1, 1001, 100, IN, "users table" },   /* there is no table in development */
		{ 1, 65534, 65534, NO, NULL },
		{ 1, 0, 0, NO, "root" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct parent_fork_facts f = facts(cases[i].dev);
		const char *why = parent_fork_check(&f, cases[i].uid, cases[i].gid, cases[i].table);
		if (!cases[i].why) {
			T_CHECK(why == NULL);
			if (why)
				fprintf(stderr, "  case %zu: refused: %s\n", i, why);
		} else {
			T_CHECK(why != NULL && strstr(why, cases[i].why) != NULL);
			if (!why || !strstr(why, cases[i].why))
				fprintf(stderr, "  case %zu: %s\n", i, why ? why : "allowed");
		}
	}
}

static void test_no_defaultprivs(void)
{
	struct parent_fork_facts f = facts(0);
	f.have_dflt = 0;
	T_CHECK(parent_fork_check(&f, 65534, 65534, PARENT_FORK_NOT_IN_TABLE) != NULL);
	T_CHECK(parent_fork_check(&f, 65534, 65534, PARENT_FORK_IN_TABLE) == NULL);
}

/* users passwd:: a system account (uid below minuid: mail 8, www-data 33, postgres) is
 * never a delivery target, even though passwd has it; defaultprivs is excepted, and an
 * explicit users file: table is not subject to minuid */
static void test_minuid(void)
{
	struct parent_fork_facts f = facts(0);
	f.passwd = 1;
	f.minuid = 1000;
	T_CHECK(parent_fork_check(&f, 1001, 100, PARENT_FORK_IN_TABLE) == NULL);
	T_CHECK(parent_fork_check(&f, 1000, 100, PARENT_FORK_IN_TABLE) == NULL);
	const char *why = parent_fork_check(&f, 33, 33, PARENT_FORK_IN_TABLE);
	T_CHECK(why != NULL && strstr(why, "minuid") != NULL);
	why = parent_fork_check(&f, 999 - 1, 100, PARENT_FORK_IN_TABLE);
	T_CHECK(why != NULL && strstr(why, "minuid") != NULL);
	T_CHECK(parent_fork_check(&f, 8, 12, PARENT_FORK_NOT_IN_TABLE) != NULL);
	f.minuid = 70000;             /* defaultprivs (65534) below minuid: still its own pair */
	T_CHECK(parent_fork_check(&f, 65534, 65534, PARENT_FORK_NOT_IN_TABLE) == NULL);
	T_CHECK(parent_fork_check(&f, 65534, 100, PARENT_FORK_IN_TABLE) != NULL);
	f.minuid = 0;                 /* minuid 0: every non-root passwd account, as before */
	T_CHECK(parent_fork_check(&f, 33, 33, PARENT_FORK_IN_TABLE) == NULL);
	f = facts(0);                 /* users file: the administrator's table */
	f.minuid = 1000;
	T_CHECK(parent_fork_check(&f, 33, 33, PARENT_FORK_IN_TABLE) == NULL);
}

/* users ldap:: the directory's pair (the parent has no table to compare with: users.c answers
 * TABLE_TEMP), still never root, a role account or a privileged group, from minuid up */
static void test_directory(void)
{
	struct parent_fork_facts f = facts(0);
	T_CHECK(parent_fork_check(&f, 2001, 2001, PARENT_FORK_TABLE_TEMP) != NULL);
	f.directory = 1;
	T_CHECK(parent_fork_check(&f, 2001, 2001, PARENT_FORK_TABLE_TEMP) == NULL);
	T_CHECK(parent_fork_check(&f, 0, 2001, PARENT_FORK_TABLE_TEMP) != NULL);
	T_CHECK(parent_fork_check(&f, 2001, 0, PARENT_FORK_TABLE_TEMP) != NULL);
	T_CHECK(parent_fork_check(&f, f.role_uids[0], 2001, PARENT_FORK_TABLE_TEMP) != NULL);
	T_CHECK(parent_fork_check(&f, 2001, f.bad_gids[3], PARENT_FORK_TABLE_TEMP) != NULL);
	f.minuid = 1000;
	T_CHECK(parent_fork_check(&f, 999, 2001, PARENT_FORK_TABLE_TEMP) != NULL);
	/* a directory user's gid is from minuid up as well (group 103 ssl-cert would read the TLS
	 * keys), unless it is ldapgid, the administrator's own choice */
	const char *why = parent_fork_check(&f, 1001, 103, PARENT_FORK_TABLE_TEMP);
	T_CHECK(why != NULL && strstr(why, "gid") != NULL);
	T_CHECK(parent_fork_check(&f, 1001, 999, PARENT_FORK_TABLE_TEMP) != NULL);
	T_CHECK(parent_fork_check(&f, 1001, 1000, PARENT_FORK_TABLE_TEMP) == NULL);
	f.ldapgid = 100;
	T_CHECK(parent_fork_check(&f, 1001, 100, PARENT_FORK_TABLE_TEMP) == NULL);
	T_CHECK(parent_fork_check(&f, 1001, 103, PARENT_FORK_TABLE_TEMP) != NULL);
}

static void test_users_table(void)
{
	struct cfg_errors errs = { .n = 0 };
	const char *text = "joe:1001:100:/home/joe\nann:1002:101:/home/ann\n";
	struct users *u = users_from_text("users", text, strlen(text), &errs);
	T_EQ_INT(errs.n, 0);
	T_EQ_INT(parent_fork_table(u, "joe", 1001, 100), PARENT_FORK_IN_TABLE);
	T_EQ_INT(parent_fork_table(u, "JOE", 1001, 100), PARENT_FORK_IN_TABLE);
	T_EQ_INT(parent_fork_table(u, "joe-ext", 1001, 100), PARENT_FORK_IN_TABLE);
	T_EQ_INT(parent_fork_table(u, "joe", 1001, 101), PARENT_FORK_NOT_IN_TABLE);   /* ann's group */
	T_EQ_INT(parent_fork_table(u, "joe", 1002, 101), PARENT_FORK_NOT_IN_TABLE);   /* ann's pair */
	T_EQ_INT(parent_fork_table(u, "ann", 1002, 101), PARENT_FORK_IN_TABLE);
	T_EQ_INT(parent_fork_table(u, "nobody-here", 1001, 100), PARENT_FORK_NOT_IN_TABLE);
	T_EQ_INT(parent_fork_table(u, NULL, 1001, 100), PARENT_FORK_NOT_IN_TABLE);
	T_EQ_INT(parent_fork_table(NULL, "joe", 1001, 100), PARENT_FORK_NOT_IN_TABLE);
	users_free(u);
	/* a users file that cannot be read: tempfail, never "allowed" */
	u = users_open("file:/nonexistent/tern-users", &errs);
	T_EQ_INT(parent_fork_table(u, "joe", 1001, 100), PARENT_FORK_TABLE_TEMP);
	users_free(u);
}

static void test_role_accounts(void)
{
	struct config c;
	memset(&c, 0, sizeof c);
	c.user = "_tern";
	c.queueuser = "_ternq";
	const char *out[4];
	T_EQ_INT(parent_fork_role_accounts(&c, out, 4), 2);
	T_EQ_STR(out[0], "_tern");
	T_EQ_STR(out[1], "_ternq");
	T_EQ_INT(parent_fork_role_accounts(&c, out, 1), 1);
	c.queueuser = "";
	T_EQ_INT(parent_fork_role_accounts(&c, out, 4), 1);
}

static void test_facts(void)
{
	/* from this machine's databases: root's group and the role accounts are refused */
	struct config c;
	memset(&c, 0, sizeof c);
	c.user = "root";               /* any account that exists everywhere */
	c.queueuser = "root";
	c.defaultprivs = "root";       /* never a defaultprivs, even if configured */
	c.users = "any:/tmp";
	struct parent_fork_facts f;
	parent_fork_facts_init(&f, &c);
	T_EQ_INT(f.dev, 1);
	T_EQ_INT(f.have_dflt, 0);
	T_EQ_INT(f.nrole, 1);
	T_CHECK(parent_fork_in(f.bad_gids, f.nbad, 0));
	T_CHECK(parent_fork_check(&f, 0, 0, PARENT_FORK_IN_TABLE) != NULL);
	T_EQ_INT(f.passwd, 0);
	/* users passwd: takes minuid; group mail (it owns the mail spool) is privileged */
	c.users = "passwd:";
	c.minuid = 1000;
	parent_fork_facts_init(&f, &c);
	T_EQ_INT(f.passwd, 1);
	T_EQ_INT(f.minuid, 1000);
	struct group *mail = getgrnam("mail");
	if (mail)
		T_CHECK(parent_fork_in(f.bad_gids, f.nbad, mail->gr_gid));
}

/* a prog channel's account (the parent's own row): never root, a role's uid or a privileged
 * group, in development (dev) too, whatever the users table and defaultprivs say */
static void test_prog(void)
{
	static const struct { int dev; uint64_t uid, gid; const char *why; } cases[] = {
		{ 0, 10, 10, NULL },                  /* uucp */
		{ 1, 10, 10, NULL },
		{ 0, 65534, 65534, NULL },            /* defaultprivs' account may be a channel's too */
		{ 0, 0, 10, "root" }, { 0, 10, 0, "root" }, { 1, 0, 0, "root" },
		{ 0, 999, 995, "role" }, { 1, 999, 995, "role" },   /* devacct: not for programs */
		{ 0, 995, 100, "role" },
		{ 0, 10, 42, "privileged" }, { 0, 10, 994, "privileged" },
		{ 0, 4294967295ull, 10, "range" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct parent_fork_facts f = facts(cases[i].dev);
		const char *why = parent_fork_prog_check(&f, cases[i].uid, cases[i].gid);
		if (!cases[i].why)
			T_CHECK(why == NULL);
		else
			T_CHECK(why && strstr(why, cases[i].why));
	}
}

static void run(void)
{
	test_prog();
	test_table();
	test_no_defaultprivs();
	test_minuid();
	test_directory();
	test_users_table();
	test_role_accounts();
	test_facts();
}

T_MAIN(run)
