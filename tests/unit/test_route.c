/* test_route — the routing decision: bare names, percent hack, locals, aliases before users,
 * the extension rule, remote domains, postmaster, duplicates, tempfail propagation, and
 * smtproutes (entry parsing, relay encoding, the most specific match, tables, literals). */
#include "t.h"
#include "mail/route.h"
#include "mail/table.h"
#include "mail/virtual.h"
#include "lib/buf.h"
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static struct config cfg;
static struct users *users;
static struct aliases *aliases;
static struct route_ctx rc;

static const char users_text[] =
	"joe:1001:100:/home/joe\n"
	"ann:1002:100:/home/ann\n";
static const char aliases_text[] =
	"root: joe\n"
	"staff: joe, ann, ghost, far@Remote.ORG\n"
	"prog: \"|/usr/bin/filter\", /var/log/copy\n"
	"dd: joe, joe@example.com, JOE@localhost\n"
	"ghosts: ghost1, ghost2\n"
	"loop: loop2\nloop2: loop\n"
	"selfie: selfie, ann\n";

static void setup(const char *extra)
{
	struct cfg_errors errs;
	char text[1024];
	snprintf(text, sizeof text, "me mail.example.com\nlocals example.com, localhost\n"
	         "envnoathost example.com\n%s", extra);
	T_EQ_INT(config_parse(&cfg, "t.conf", text, strlen(text), &errs), 0);
	users = users_from_text("users", users_text, sizeof users_text - 1, NULL);
	aliases = aliases_from_text("aliases", aliases_text, sizeof aliases_text - 1, 1234, 99, NULL);
	route_init(&rc, &cfg, users, aliases);
}

static void teardown(void)
{
	users_free(users);
	aliases_free(aliases);
	config_free(&cfg);
}

/* route addr; describe the targets as "channel:host:address:user:uid:local:ext:instr;..." */
static int route(const char *addr, char *out, size_t outlen)
{
	struct route_result res;
	int v = route_address(&rc, addr, &res);
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < res.n; i++) {
		const struct route_target *t = &res.t[i];
		buf_printf(&b, "%s%s:%s:%s:%s:%llu:%s:%s:%s", i ? ";" : "", t->channel, t->host,
		           t->address, t->user, (unsigned long long)t->uid, t->local, t->ext,
		           t->instruction);
	}
	snprintf(out, outlen, "%s", b.p ? b.p : "");
	buf_free(&b);
	if (v != ROUTE_OK)
		T_EQ_INT(res.n, 0);
	T_CHECK(res.diag[0] != '\0');
	route_result_free(&res);
	return v;
}

static void test_basic(void)
{
	static const struct { const char *addr; int v; const char *want; } c[] = {
		{ "joe@example.com", ROUTE_OK, "local::joe@example.com:joe:1001:joe::" },
		{ "<joe@example.com>", ROUTE_OK, "local::joe@example.com:joe:1001:joe::" },
		{ "Joe@EXAMPLE.com.", ROUTE_OK, "local::joe@example.com:joe:1001:joe::" },
		{ "joe", ROUTE_OK, "local::joe@example.com:joe:1001:joe::" },
		{ "Joe-Foo-bar@localhost", ROUTE_OK, "local::joe-foo-bar@localhost:joe:1001:joe-foo-bar:foo-bar:" },
		{ "nobody@example.com", ROUTE_NOUSER, "" },
		{ "postmaster@example.com", ROUTE_OK, "local::joe@example.com:joe:1001:joe::" },
		{ "POSTMASTER@localhost", ROUTE_OK, "local::joe@localhost:joe:1001:joe::" },
		{ "user@Remote.ORG", ROUTE_OK, "smtp:remote.org:user@remote.org::0:::" },
		{ "root@localhost", ROUTE_OK, "local::joe@localhost:joe:1001:joe::" },
		{ "staff@example.com", ROUTE_OK, "local::joe@example.com:joe:1001:joe::;"
		  "local::ann@example.com:ann:1002:ann::;smtp:remote.org:far@remote.org::0:::" },
		{ "dd@example.com", ROUTE_OK, "local::joe@example.com:joe:1001:joe::;"
		  "local::joe@localhost:joe:1001:joe::" },
		{ "ghosts@example.com", ROUTE_NOUSER, "" },
		{ "loop@example.com", ROUTE_TEMP, "" },
		{ "selfie@example.com", ROUTE_OK, "local::ann@example.com:ann:1002:ann::" },
		{ "user%remote.org@example.com", ROUTE_NOUSER, "" },   /* percenthack off */
		{ "", ROUTE_NOUSER, "" },
		{ "<>", ROUTE_NOUSER, "" },
		{ "@example.com", ROUTE_NOUSER, "" },
		{ "joe@", ROUTE_NOUSER, "" },
		{ "jo\ne@example.com", ROUTE_NOUSER, "" },
	};
	char out[1024];
	setup("");
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int v = route(c[i].addr, out, sizeof out);
		if (v != c[i].v || strcmp(out, c[i].want) != 0)
			fprintf(stderr, "case %zu (%s): v=%d out=%s\n", i, c[i].addr, v, out);
		T_EQ_INT(v, c[i].v);
		T_EQ_STR(out, c[i].want);
	}
	teardown();
}

static void test_selfie_and_postmaster(void)
{
	char out[1024];
	static const char u2[] = "selfie:1005:100:/home/selfie\npostmaster:1006:100:/home/pm\n";
	setup("");
	users_free(users);
	users = users_from_text("users", u2, sizeof u2 - 1, NULL);
	rc.users = users;
	/* self-reference delivers to the user; ann is no user in this table: dropped */
	T_EQ_INT(route("selfie@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::selfie@example.com:selfie:1005:selfie::");
	/* postmaster: no alias, so the user postmaster */
	T_EQ_INT(route("PostMaster@localhost", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::postmaster@localhost:postmaster:1006:postmaster::");
	teardown();
}

/* a users line's quota (6th field) travels in the target as a table=1 profile; a line
 * without one keeps the empty profile (doc/LOCAL.md "Quotas") */
static void test_table_quota_profile(void)
{
	static const char u2[] = "qa:1005:100:/home/qa::5000S,3C\nqb:1006:100:/home/qb\n";
	struct route_result res;
	setup("");
	users_free(users);
	users = users_from_text("users", u2, sizeof u2 - 1, NULL);
	rc.users = users;
	T_EQ_INT(route_address(&rc, "qa@example.com", &res), ROUTE_OK);
	T_EQ_INT(res.n, 1);
	T_EQ_STR(res.t[0].profile, "dotmode=ldaponly quotasize=5000 quotacount=3 table=1");
	route_result_free(&res);
	T_EQ_INT(route_address(&rc, "qb@example.com", &res), ROUTE_OK);
	T_EQ_STR(res.t[0].profile, "");
	route_result_free(&res);
	teardown();
}

/* the postmaster key: an implicit alias when no user or alias postmaster exists */
static void test_postmaster_key(void)
{
	static const struct { const char *extra; int v; const char *want; } c[] = {
		{ "postmaster ann\n", ROUTE_OK, "local::ann@localhost:ann:1002:ann::" },
		{ "postmaster staff\n", ROUTE_OK, "local::joe@localhost:joe:1001:joe::;"
		  "local::ann@localhost:ann:1002:ann::;smtp:remote.org:far@remote.org::0:::" },
		{ "postmaster ann@example.com\n", ROUTE_OK, "local::ann@example.com:ann:1002:ann::" },
		{ "postmaster hostmaster@Remote.ORG\n", ROUTE_OK,
		  "smtp:remote.org:hostmaster@remote.org::0:::" },
		{ "postmaster ghost\n", ROUTE_TEMP, "" },          /* never "no such user" */
		{ "postmaster postmaster\n", ROUTE_TEMP, "" },     /* no loop */
		{ "postmaster loop\n", ROUTE_TEMP, "" },
	};
	char out[1024];
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		setup(c[i].extra);
		int v = route("PostMaster@localhost", out, sizeof out);
		if (v != c[i].v || strcmp(out, c[i].want) != 0)
			fprintf(stderr, "case %zu (%s): v=%d out=%s\n", i, c[i].extra, v, out);
		T_EQ_INT(v, c[i].v);
		T_EQ_STR(out, c[i].want);
		teardown();
	}
}

/* an extension needs a .qmail file tern-local would use; a home we cannot look into
 * (missing here) is accepted: tern-local decides */
static void test_extension_dotqmail(void)
{
	char dir[] = "/tmp/test_route.XXXXXX", p[256], u[512], out[1024];
	T_CHECK(mkdtemp(dir) != NULL);
	static const char *const files[] = { "kim/.qmail-foo", "kim/.qmail-a-default",
	                                     "lee/.qmail-default" };
	snprintf(p, sizeof p, "%s/kim", dir);
	T_EQ_INT(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/lee", dir);
	T_EQ_INT(mkdir(p, 0755), 0);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		FILE *f = fopen(p, "w");
		T_CHECK(f != NULL);
		if (f)
			fclose(f);
	}
	/* not regular files: tern-local tries the next name, so they count as missing */
	snprintf(p, sizeof p, "%s/kim/.qmail-dir", dir);
	T_EQ_INT(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/kim/.qmail-fifo", dir);
	T_EQ_INT(mkfifo(p, 0644), 0);
	snprintf(p, sizeof p, "%s/kim/.qmail-ln", dir);   /* a symlink to a file is followed */
	T_EQ_INT(symlink(".qmail-foo", p), 0);
	snprintf(u, sizeof u, "kim:1005:100:%s/kim\nlee:1006:100:%s/lee\n"
	         "gone:1007:100:%s/gone\n", dir, dir, dir);
	static const struct { const char *addr; int v; } c[] = {
		{ "kim@localhost", ROUTE_OK }, { "kim-foo@localhost", ROUTE_OK },
		{ "Kim-FOO@localhost", ROUTE_OK }, { "kim-anything@localhost", ROUTE_NOUSER },
		{ "kim-foo-bar@localhost", ROUTE_NOUSER }, { "kim-a@localhost", ROUTE_NOUSER },
		{ "kim-a-b@localhost", ROUTE_OK }, { "kim-a-b-c@localhost", ROUTE_OK },
		{ "lee-x@localhost", ROUTE_OK }, { "lee-x-y@localhost", ROUTE_OK },
		{ "gone-x@localhost", ROUTE_OK }, { "kim-dir@localhost", ROUTE_NOUSER },
		{ "kim-fifo@localhost", ROUTE_NOUSER }, { "kim-ln@localhost", ROUTE_OK },
	};
	setup("");
	users_free(users);
	users = users_from_text("users", u, strlen(u), NULL);
	rc.users = users;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int v = route(c[i].addr, out, sizeof out);
		if (v != c[i].v)
			fprintf(stderr, "case %zu (%s): v=%d out=%s\n", i, c[i].addr, v, out);
		T_EQ_INT(v, c[i].v);
	}
	teardown();
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	static const char *const extra[] = { "kim/.qmail-fifo", "kim/.qmail-ln" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, extra[i]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/kim/.qmail-dir", dir);
	rmdir(p);
	snprintf(p, sizeof p, "%s/kim", dir);
	rmdir(p);
	snprintf(p, sizeof p, "%s/lee", dir);
	rmdir(p);
	rmdir(dir);
}

static void test_percent(void)
{
	char out[1024];
	setup("percenthack yes\n");
	T_EQ_INT(route("user%Remote.org@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "smtp:remote.org:user@remote.org::0:::");
	T_EQ_INT(route("joe%localhost@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::joe@localhost:joe:1001:joe::");
	T_EQ_INT(route("a%b%localhost@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "smtp:b:a@b::0:::");
	/* not applied for remote domains */
	T_EQ_INT(route("a%b@remote.org", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "smtp:remote.org:a%b@remote.org::0:::");
	char *l, *d;
	T_EQ_INT(route_normalize(&cfg, "x%y.org@localhost", &l, &d), ROUTE_REMOTE);
	T_EQ_STR(l, "x");
	T_EQ_STR(d, "y.org");
	free(l);
	free(d);
	T_EQ_INT(route_normalize(&cfg, "postmaster", &l, &d), ROUTE_LOCAL);
	T_EQ_STR(d, "example.com");
	free(l);
	free(d);
	T_EQ_INT(route_normalize(&cfg, "x@", &l, &d), ROUTE_BAD);
	T_CHECK(l == NULL && d == NULL);
	teardown();
}

/* "local::prog@example.com:USER:UID:prog::INSTR" for the account pw */
static void want_prog(char *want, size_t n, const char *user, unsigned uid, const char *instr)
{
	snprintf(want, n, "local::prog@example.com:%s:%u:prog::%s", user, uid, instr);
}

/* alias programs and files of the aliases file run as defaultprivs, whoever owns the file;
 * never as root or a role account (route.h) */
static void test_alias_accounts(void)
{
	char out[1024], want[512], w2[256];
	struct passwd *nob = getpwnam("nobody");
	if (!nob || nob->pw_uid == 0)
		return;                              /* no nobody account: nothing to compare */
	unsigned nuid = (unsigned)nob->pw_uid;
	setup("");                               /* aliases owned by 1234 */
	T_EQ_INT(route("prog@example.com", out, sizeof out), ROUTE_OK);
	want_prog(want, sizeof want, "nobody", nuid, "|/usr/bin/filter;");
	want_prog(w2, sizeof w2, "nobody", nuid, "/var/log/copy");
	strcat(want, w2);
	T_EQ_STR(out, want);
	teardown();

	static const char a2[] = "prog: \"|/bin/true\"\n";
	/* config.c refuses root and the role accounts; route.c refuses them again (set here
	 * behind the parser's back), and a missing account */
	static const char *const privs[] = { "nobody", "no-such-account-tern", "root", "_tern" };
	for (size_t i = 0; i < 4; i++) {
		setup("");
		free(cfg.defaultprivs);
		cfg.defaultprivs = xstrdup(privs[i]);
		if (i == 3 && !getpwnam("_tern"))
			cfg.defaultprivs[0] = '\0';          /* no role account here: just missing */
		aliases_free(aliases);
		aliases = aliases_from_text("aliases", a2, sizeof a2 - 1, 0, 0, NULL);
		rc.aliases = aliases;
		int v = route("prog@example.com", out, sizeof out);
		if (i == 0) {
			want_prog(want, sizeof want, "nobody", nuid, "|/bin/true");
			T_EQ_INT(v, ROUTE_OK);
			T_EQ_STR(out, want);
		} else if (getuid() != 0 && !route_role_uid(&cfg, getuid())) {
			T_EQ_INT(v, ROUTE_OK);           /* development: the running account */
			snprintf(want, sizeof want, ":%u:prog::|/bin/true", (unsigned)getuid());
			T_CHECK(strstr(out, want) != NULL);
		} else {
			T_EQ_INT(v, ROUTE_TEMP);         /* never root, never a missing account */
		}
		teardown();
	}
}

/* sendmail's rule for :include: files: their programs run as the file's owner, or as
 * defaultprivs when root or a role account owns it (root needed to chown) */
static void test_include_accounts(void)
{
	char out[1024], want[512], text[256], path[] = "/tmp/tern-route-inc-XXXXXX", name[64];
	char conf[96];
	struct passwd *pw = getpwnam("nobody");
	uid_t nuid = pw ? pw->pw_uid : 0;
	int one = (pw = getpwuid(1)) != NULL;   /* an account with uid 1 (daemon, bin) */
	snprintf(name, sizeof name, "%s", one ? pw->pw_name : "");
	int fd = mkstemp(path);
	T_CHECK(fd >= 0);
	if (fd < 0 || !nuid || !one || getuid() != 0)
		goto out;
	T_CHECK(write(fd, "\"|/bin/true\"\n", 13) == 13);
	fchmod(fd, 0644);
	snprintf(text, sizeof text, "prog: :include:%s\n", path);
	snprintf(conf, sizeof conf, "user %s\n", name);   /* the role account is uid 1 here */
	setup(conf);
	aliases_free(aliases);
	aliases = aliases_from_text("aliases", text, strlen(text), 0, 0, NULL);
	rc.aliases = aliases;
	struct { uid_t owner; const char *user; unsigned uid; } c[] = {
		{ 0, "nobody", (unsigned)nuid },                 /* root: defaultprivs */
		{ 1, "nobody", (unsigned)nuid },                 /* a role account: too */
		{ nuid, "nobody", (unsigned)nuid },              /* its owner */
	};
	for (size_t i = 0; i < 3; i++) {
		T_EQ_INT(fchown(fd, c[i].owner, 0), 0);
		T_EQ_INT(route("prog@example.com", out, sizeof out), ROUTE_OK);
		want_prog(want, sizeof want, c[i].user, c[i].uid, "|/bin/true");
		T_EQ_STR(out, want);
	}
	teardown();
	setup("");                                 /* uid 1 is no role account now: its owner */
	aliases_free(aliases);
	aliases = aliases_from_text("aliases", text, strlen(text), 0, 0, NULL);
	rc.aliases = aliases;
	if (!route_role_uid(&cfg, 1)) {
		T_EQ_INT(fchown(fd, 1, 0), 0);
		T_EQ_INT(route("prog@example.com", out, sizeof out), ROUTE_OK);
		want_prog(want, sizeof want, name, 1, "|/bin/true");
		T_EQ_STR(out, want);
	}
	teardown();
out:
	if (fd >= 0)
		close(fd);
	unlink(path);
}

static void test_tempfail(void)
{
	char out[1024];
	setup("");
	users_free(users);
	users = users_open("file:/nonexistent/users", NULL);
	rc.users = users;
	T_EQ_INT(route("joe@example.com", out, sizeof out), ROUTE_TEMP);
	T_EQ_INT(route("root@example.com", out, sizeof out), ROUTE_TEMP);
	T_EQ_INT(route("far@remote.org", out, sizeof out), ROUTE_OK);
	aliases_free(aliases);
	aliases = aliases_open("file:/nonexistent/aliases", 0, NULL);
	rc.aliases = aliases;
	T_EQ_INT(route("joe@example.com", out, sizeof out), ROUTE_TEMP);
	teardown();

	/* locals from a table that disappears: tempfail, not remote */
	char dir[] = "/tmp/tern-route-XXXXXX", path[128], extra[200];
	T_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/locals", dir);
	FILE *f = fopen(path, "w");
	fputs("tabled.example\n", f);
	fclose(f);
	snprintf(extra, sizeof extra, "locals file:%s\n", path);
	setup(extra);
	T_EQ_INT(route("joe@tabled.example", out, sizeof out), ROUTE_OK);
	unlink(path);
	rmdir(dir);
	table_flush_cache();
	T_EQ_INT(route("joe@tabled.example", out, sizeof out), ROUTE_TEMP);
	T_EQ_INT(route("joe@elsewhere.example", out, sizeof out), ROUTE_TEMP);
	teardown();
	table_flush_cache();
}

/* the users hook: names in `waiting` are asked and not answered (ROUTE_ASKED), the others
 * are answered at once from the users table; asked counts the questions */
static const char *waiting;
static int asked;

static int hook_user(void *arg, const char *local, const char *domain,
                     struct users_result *r)
{
	(void)arg;
	asked++;
	if (waiting && strstr(waiting, local))
		return ROUTE_ASKED;
	return users_lookup(users, local, r);
}

/* A walk with an open question ends ROUTE_PENDING without targets, whatever else it found
 * (an alias's other targets, NOUSER for an empty alias); a temporary failure wins over it;
 * with every answer in, the walk gives what users_lookup alone gives. */
static void test_pending_hook(void)
{
	char out[1024], want[1024];
	setup("");
	rc.user_fn = hook_user;
	waiting = ",joe,";
	asked = 0;
	T_EQ_INT(route("joe@example.com", out, sizeof out), ROUTE_PENDING);
	T_EQ_INT(asked, 1);
	asked = 0;
	T_EQ_INT(route("staff@example.com", out, sizeof out), ROUTE_PENDING);
	T_EQ_INT(asked, 3);                        /* joe, ann, ghost: all asked in one walk */
	T_EQ_INT(route("ann@example.com", out, sizeof out), ROUTE_OK);
	waiting = ",ghost1,";
	T_EQ_INT(route("ghosts@example.com", out, sizeof out), ROUTE_PENDING);
	waiting = NULL;
	T_EQ_INT(route("staff@example.com", out, sizeof out), ROUTE_OK);
	rc.user_fn = NULL;
	T_EQ_INT(route("staff@example.com", want, sizeof want), ROUTE_OK);
	T_EQ_STR(out, want);
	teardown();

	setup("");
	users_free(users);
	users = users_open("file:/nonexistent/users", NULL);
	rc.users = users;
	rc.user_fn = hook_user;
	waiting = ",joe,";                         /* root -> joe: asked; ann: TEMP at once */
	T_EQ_INT(route("joe@example.com", out, sizeof out), ROUTE_PENDING);
	T_EQ_INT(route("ann@example.com", out, sizeof out), ROUTE_TEMP);
	waiting = NULL;
	rc.user_fn = NULL;
	teardown();
}

static void test_relay(void)
{
	static const struct { const char *relay; int rc; const char *host; } c[] = {
		{ "", 0, "" },
		{ "relay.example", 0, "relay.example:25" },
		{ "Relay.Example.:2525", 0, "relay.example:2525" },
		{ "mx_1.example:65535", 0, "mx_1.example:65535" },
		{ "[192.0.2.1]", 0, "[192.0.2.1]:25" },
		{ "[192.0.2.1]:26", 0, "[192.0.2.1]:26" },
		{ "192.0.2.1", 0, "[192.0.2.1]:25" },
		{ "192.0.2.1:587", 0, "[192.0.2.1]:587" },
		{ "[IPv6:2001:DB8:0::1]:587", 0, "[2001:db8::1]:587" },
		{ "[ipv6:::1]", 0, "[::1]:25" },
		{ "[2001:db8::1]", 0, "[2001:db8::1]:25" },
		{ "relay:0", -1, "" },
		{ "relay:65536", -1, "" },
		{ "relay:", -1, "" },
		{ "relay:25:26", -1, "" },
		{ "relay:+25", -1, "" },
		{ "[192.0.2.1", -1, "" },
		{ "[192.0.2.1]x", -1, "" },
		{ "[foo]", -1, "" },
		{ "[]", -1, "" },
		{ "[IPv6:192.0.2.1]", -1, "" },
		{ "[192.0.2.256]", -1, "" },
		{ "re lay", -1, "" },
		{ "relay..example", -1, "" },
		{ ".relay", -1, "" },
		{ "relay/x", -1, "" },
		{ "2001:db8::1", -1, "" },
	};
	char host[ROUTE_HOSTLEN];
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int r = route_relay(c[i].relay, host, sizeof host);
		if (r != c[i].rc || strcmp(host, c[i].host) != 0)
			fprintf(stderr, "relay case %zu (%s): rc=%d host=%s\n", i, c[i].relay, r, host);
		T_EQ_INT(r, c[i].rc);
		T_EQ_STR(host, c[i].host);
	}
	T_EQ_INT(route_relay("relay.example:25", host, 10), -1);   /* does not fit */
}

static void test_smtproute_parse(void)
{
	static const struct { const char *e; int rc; const char *key, *host; } c[] = {
		{ "example.com:relay", 0, "example.com", "relay:25" },
		{ "Example.COM.:Relay:26", 0, "example.com", "relay:26" },
		{ ":relay:26", 0, "", "relay:26" },
		{ "example.com:", 0, "example.com", "" },
		{ ".example.com:[192.0.2.1]", 0, ".example.com", "[192.0.2.1]:25" },
		{ "[192.0.2.1]:relay", 0, "[192.0.2.1]", "relay:25" },
		{ "[IPv6:2001:db8::1]:relay:2", 0, "[ipv6:2001:db8::1]", "relay:2" },
		{ "x.example:[IPv6:2001:db8::1]:2", 0, "x.example", "[2001:db8::1]:2" },
		{ "norelay", -1, "", "" },
		{ "a@b:relay", -1, "", "" },
		{ "[192.0.2.1]relay", -1, "", "" },
		{ "example.com:bad relay", -2, "example.com", "" },
		{ "example.com:relay:99999", -2, "example.com", "" },
		{ "", -1, "", "" },
	};
	char key[ROUTE_HOSTLEN], host[ROUTE_HOSTLEN];
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int r = route_smtproute_parse(c[i].e, key, sizeof key, host, sizeof host);
		if (r != c[i].rc || strcmp(key, c[i].key) || strcmp(host, c[i].host))
			fprintf(stderr, "entry case %zu (%s): rc=%d key=%s host=%s\n", i, c[i].e, r,
			        key, host);
		T_EQ_INT(r, c[i].rc);
		T_EQ_STR(key, c[i].key);
		T_EQ_STR(host, c[i].host);
	}
}

struct hostcase { const char *domain; int rc; const char *host; };

static void check_hosts(const struct hostcase *c, size_t n)
{
	char host[ROUTE_HOSTLEN], diag[256];
	for (size_t i = 0; i < n; i++) {
		host[0] = '\0';
		int r = route_smtp_host(&cfg, c[i].domain, host, sizeof host, diag, sizeof diag);
		if (r != c[i].rc || (r == ROUTE_OK && strcmp(host, c[i].host) != 0))
			fprintf(stderr, "host case %zu (%s): rc=%d host=%s diag=%s\n", i, c[i].domain,
			        r, host, diag);
		T_EQ_INT(r, c[i].rc);
		if (r == ROUTE_OK)
			T_EQ_STR(host, c[i].host);
		T_CHECK(diag[0] != '\0');
	}
}

static void test_smtproutes(void)
{
	static const struct hostcase routed[] = {
		{ "example.net", ROUTE_OK, "relay.example.org:25" },
		{ "a.sub.example.net", ROUTE_OK, "[192.0.2.5]:2525" },
		{ "b.a.sub.example.net", ROUTE_OK, "[192.0.2.5]:2525" },
		{ "sub.example.net", ROUTE_OK, "smarthost.example.com:587" },
		{ "direct.example.net", ROUTE_OK, "direct.example.net" },
		{ "x.direct.example.net", ROUTE_OK, "smarthost.example.com:587" },
		{ "v6.example", ROUTE_OK, "[2001:db8::1]:25" },
		{ "ip.example", ROUTE_OK, "[192.0.2.9]:26" },
		{ "deep.example", ROUTE_OK, "deep-relay.example:25" },
		{ "x.deep.example", ROUTE_OK, "any-deep.example:25" },  /* .x.deep: subdomains only */
		{ "y.x.deep.example", ROUTE_OK, "x-relay.example:25" }, /* the longer suffix wins */
		{ "z.deep.example", ROUTE_OK, "any-deep.example:25" },
		{ "[192.0.2.77]", ROUTE_OK, "[192.0.2.77]:25" },       /* literal with an MX-entry */
		{ "[192.0.2.1]", ROUTE_OK, "smarthost.example.com:587" },
		{ "[ipv6:2001:db8::2]", ROUTE_OK, "smarthost.example.com:587" },
		{ "bad.example", ROUTE_TEMP, "" },
		{ "other.example", ROUTE_OK, "smarthost.example.com:587" },
		{ "[300.1.1.1]", ROUTE_NOUSER, "" },
	};
	static const struct hostcase plain[] = {
		{ "remote.org", ROUTE_OK, "remote.org" },
		{ "[192.0.2.1]", ROUTE_OK, "[192.0.2.1]:25" },
		{ "[ipv6:2001:db8:0::2]", ROUTE_OK, "[2001:db8::2]:25" },
		{ "[300.1.1.1]", ROUTE_NOUSER, "" },
		{ "[192.0.2.1]:25", ROUTE_NOUSER, "" },
		{ "[ipv6:192.0.2.1]", ROUTE_NOUSER, "" },
		{ "[]", ROUTE_NOUSER, "" },
		{ "internal:8080", ROUTE_NOUSER, "" },
		{ "a]b", ROUTE_NOUSER, "" },
	};
	char out[1024];
	setup("smtproutes example.net:relay.example.org .sub.example.net:[192.0.2.5]:2525 "
	      "direct.example.net: :smarthost.example.com:587\n"
	      "smtproutes v6.example:[IPv6:2001:DB8::1], ip.example:192.0.2.9:26\n"
	      "smtproutes deep.example:deep-relay.example .deep.example:any-deep.example\n"
	      "smtproutes .x.deep.example:x-relay.example [192.0.2.77]: bad.example:relay:0\n");
	check_hosts(routed, sizeof routed / sizeof routed[0]);
	T_EQ_INT(route("User@Example.NET", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "smtp:relay.example.org:25:User@example.net::0:::");
	T_EQ_INT(route("user@[192.0.2.1]", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "smtp:smarthost.example.com:587:user@[192.0.2.1]::0:::");
	T_EQ_INT(route("user@bad.example", out, sizeof out), ROUTE_TEMP);
	T_EQ_INT(route("joe@example.com", out, sizeof out), ROUTE_OK);     /* local: no route */
	T_EQ_STR(out, "local::joe@example.com:joe:1001:joe::");
	/* an alias target is routed the same way */
	T_EQ_INT(route("staff@example.com", out, sizeof out), ROUTE_OK);
	T_CHECK(strstr(out, "smtp:smarthost.example.com:587:far@remote.org") != NULL);
	teardown();

	setup("");
	check_hosts(plain, sizeof plain / sizeof plain[0]);
	T_EQ_INT(route("user@[IPv6:2001:DB8::5]", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "smtp:[2001:db8::5]:25:user@[ipv6:2001:db8::5]::0:::");
	T_EQ_INT(route("user@[300.1.1.1]", out, sizeof out), ROUTE_NOUSER);
	T_EQ_INT(route("user@internal:8080", out, sizeof out), ROUTE_NOUSER);
	teardown();
}

static void test_smtproutes_table(void)
{
	static const struct hostcase c[] = {
		{ "tab.example", ROUTE_OK, "tabrelay.example:2526" },
		{ "a.tabsub.example", ROUTE_OK, "[192.0.2.8]:25" },
		{ "inline.example", ROUTE_OK, "inline-relay.example:25" },   /* inline before table */
		{ "mx.example", ROUTE_OK, "mx.example" },
		{ "broken.example", ROUTE_TEMP, "" },
		{ "elsewhere.example", ROUTE_OK, "default-relay.example:25" },
	};
	char dir[] = "/tmp/tern-routes-XXXXXX", path[128], extra[300];
	T_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/smtproutes", dir);
	FILE *f = fopen(path, "w");
	fputs("# routes\ntab.example:tabrelay.example:2526\n.tabsub.example : [192.0.2.8]\n"
	      "inline.example:not-this.example\nmx.example:\nbroken.example:a b\n"
	      ":default-relay.example\n", f);
	fclose(f);
	snprintf(extra, sizeof extra, "smtproutes inline.example:inline-relay.example file:%s\n",
	         path);
	setup(extra);
	check_hosts(c, sizeof c / sizeof c[0]);
	unlink(path);
	rmdir(dir);
	table_flush_cache();
	static const struct hostcase gone[] = {
		{ "inline.example", ROUTE_OK, "inline-relay.example:25" },
		{ "tab.example", ROUTE_TEMP, "" },
		{ "elsewhere.example", ROUTE_TEMP, "" },
	};
	check_hosts(gone, sizeof gone / sizeof gone[0]);
	teardown();
	table_flush_cache();
}

static void test_transport_parse(void)
{
	static const struct { const char *e; int rc; const char *key, *ch, *next; } c[] = {
		{ "example.org:lmtp:unix:/run/dovecot/lmtp", 0, "example.org", "lmtp", "unix:/run/dovecot/lmtp" },
		{ "Bob@Example.NET:lmtp:[127.0.0.1]:24", 0, "bob@example.net", "lmtp", "[127.0.0.1]:24" },
		{ ".uucp.example:uucp", 0, ".uucp.example", "uucp", "" },
		{ "x.example:smtp:", 0, "x.example", "smtp", "" },
		{ "x.example:Lmtp", -1, "", "", "" },          /* a channel name is lowercase */
		{ "x.example:", -1, "", "", "" },
		{ ":lmtp", -1, "", "", "" },
		{ "x.example", -1, "", "", "" },
		{ "x.example:lmtp:a b", -1, "", "", "" },      /* a blank in the nexthop */
		{ "x.example:abcdefghijabcdefghijabcdefghijabc", -1, "", "", "" },   /* 33 bytes */
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		char key[ROUTE_HOSTLEN], ch[ROUTE_CHANLEN], next[ROUTE_HOSTLEN];
		T_EQ_INT(route_transport_parse(c[i].e, key, sizeof key, ch, sizeof ch, next, sizeof next), c[i].rc);
		if (c[i].rc == 0) {
			T_EQ_STR(key, c[i].key);
			T_EQ_STR(ch, c[i].ch);
			T_EQ_STR(next, c[i].next);
		}
	}
}

/* transports: the address before the domain before its parents; the channel must exist and
 * must not be the local one; smtp nexthops are relays; every rule after it is skipped */
static void test_transports(void)
{
	static const struct { const char *addr; int rc; const char *want; } c[] = {
		{ "joe@example.com", ROUTE_OK, "fast:example.com:joe@example.com::0:joe::" },
		{ "Ann@example.com", ROUTE_OK, "fast:[127.0.0.1]:24:Ann@example.com::0:Ann::" },
		{ "x@a.b.far.example", ROUTE_OK, "smtp:relay.example:25:x@a.b.far.example::0:x::" },
		{ "x@far.example", ROUTE_OK, "smtp:far.example:x@far.example::0:x::" },
		{ "x@q.example", ROUTE_OK, "qmqp:qmqpservers:x@q.example::0:x::" },
		{ "x@ghost.example", ROUTE_TEMP, "" },          /* names no configured channel */
		{ "x@loc.example", ROUTE_TEMP, "" },            /* names the local channel */
		{ "x@bad.example", ROUTE_TEMP, "" },            /* a relay smtp cannot read */
		{ "x@odd.example", ROUTE_TEMP, "" },            /* an entry that cannot be read */
		{ "x@other.example", ROUTE_OK, "smtp:other.example:x@other.example::0:::" },
		{ "ghost@localhost", ROUTE_NOUSER, "" },        /* no entry: the usual rules */
		/* lmtp: the nexthop verbatim, its case kept (a path); key and channel lowercased */
		{ "x@lm.example", ROUTE_OK, "lmtp:unix:/Run/Dovecot/lmtp:x@lm.example::0:x::" },
		{ "x@lmb.example", ROUTE_OK, "lmtp:lmb.example:x@lmb.example::0:x::" },  /* mta refuses */
	};
	char dir[] = "/tmp/tern-transports-XXXXXX", path[128], extra[600];
	T_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/transports", dir);
	FILE *f = fopen(path, "w");
	/* bad entries only reach routing from a table: inline ones are config errors (below) */
	fputs("ghost.example:nosuch\nloc.example:local\nbad.example:smtp:a:b:c\n"
	      "odd.example:Fast.out:[10.0.0.5]\n", f);
	fclose(f);
	snprintf(extra, sizeof extra, "channel fast transport=smtp concurrency=2\n"
	         "transports example.com:fast ann@example.com:fast:[127.0.0.1]:24\n"
	         "transports .far.example:smtp:relay.example far.example:smtp q.example:qmqp:x\n"
	         "transports file:%s\n"
	         "transports LM.example:LMTP:unix:/Run/Dovecot/lmtp lmb.example:lmtp\n", path);
	setup(extra);
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		char out[512];
		T_EQ_INT(route(c[i].addr, out, sizeof out), c[i].rc);
		T_EQ_STR(out, c[i].want);
	}
	teardown();
	unlink(path);
	rmdir(dir);
	table_flush_cache();
	/* an inline entry that cannot be read or names no usable channel is a config error,
	 * never an entry skipped (the mail would take another route) */
	static const char *const bad[] = { "transports x.example:nosuch\n",
		"transports x.example:local\n", "transports x.example:Fast.out:[10.0.0.5]\n",
		"transports x.example\n", "transports x.example:abcdefghijabcdefghijabcdefghijabc\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cfg_errors errs;
		struct config c2;
		T_EQ_INT(config_parse(&c2, "t.conf", bad[i], strlen(bad[i]), &errs), -1);
		T_CHECK(errs.n > 0 && errs.e[0].line == 1 && strstr(errs.e[0].msg, "transports"));
		config_free(&c2);
	}
}

/* a directory backend's answers (lookup_ldap.c fills these fields) */
static int dir_user(void *arg, const char *local, const char *domain, struct users_result *r)
{
	static const struct { const char *local, *user, *ext; int account; const char *host; } d[] = {
		{ "dir", "dir", "", USERS_ACTIVE, "" },
		{ "dir-ext", "dir", "ext", USERS_ACTIVE, "" },
		{ "noacc", "noacc", "", USERS_NOACCESS, "" },
		{ "del", "del", "", USERS_DELETED, "" },
		{ "dis", "dis", "", USERS_DISABLED, "" },
		{ "far", "far", "", USERS_ACTIVE, "Node-B.Example.com" },
		{ "far-x", "far", "x", USERS_ACTIVE, "node-b.example.com" },
		{ "self", "self", "", USERS_ACTIVE, "MAIL.example.com" },
		{ "alt", "alt", "", USERS_ACTIVE, "Other-Name.example.com" },
		{ "bad", "bad", "", USERS_ACTIVE, "no host!" },
	};
	memset(r, 0, sizeof *r);
	for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
		if (strcmp(local, d[i].local) == 0) {
			snprintf(r->user, sizeof r->user, "%s", d[i].user);
			snprintf(r->local, sizeof r->local, "%s", local);
			snprintf(r->ext, sizeof r->ext, "%s", d[i].ext);
			snprintf(r->dash, sizeof r->dash, "%s", *d[i].ext ? "-" : "");
			snprintf(r->home, sizeof r->home, "/nonexistent/%s", d[i].user);
			snprintf(r->mailhost, sizeof r->mailhost, "%s", d[i].host);
			snprintf(r->profile, sizeof r->profile, "dotmode=ldaponly");
			r->uid = r->gid = 2000;
			r->account = d[i].account;
			return r->status = TABLE_FOUND;
		}
	snprintf(r->diag, sizeof r->diag, "no such user in the directory");
	return r->status = TABLE_NOTFOUND;
}

/* Directory users: an extension needs no .qmail file; deleted is unknown, disabled is
 * ROUTE_DISABLED (and an alias target so refused is dropped); with ldapcluster a mailHost
 * that is neither `me` nor in ldapclusterhosts gives a "cluster" target at route_relay's
 * host for it. */
static void test_directory_users(void)
{
	char out[1024], host[ROUTE_HOSTLEN];
	setup("ldapcluster yes\nldapclusterhosts other-name.example.com\n");
	rc.user_fn = dir_user;
	T_EQ_INT(route("dir@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::dir@example.com:dir:2000:dir::");
	T_EQ_INT(route("dir-ext@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::dir-ext@example.com:dir:2000:dir-ext:ext:");
	T_EQ_INT(route("noacc@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_INT(route("del@example.com", out, sizeof out), ROUTE_NOUSER);
	T_EQ_INT(route("dis@example.com", out, sizeof out), ROUTE_DISABLED);
	T_EQ_INT(route_relay("Node-B.Example.com", host, sizeof host), 0);
	T_EQ_INT(route("far@example.com", out, sizeof out), ROUTE_OK);
	char want[512];
	snprintf(want, sizeof want, "cluster:%s:far@example.com::0:far::", host);
	T_EQ_STR(out, want);
	T_EQ_INT(route("far-x@example.com", out, sizeof out), ROUTE_OK);
	snprintf(want, sizeof want, "cluster:%s:far-x@example.com::0:far-x::", host);
	T_EQ_STR(out, want);
	T_EQ_INT(route("self@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::self@example.com:self:2000:self::");
	T_EQ_INT(route("alt@example.com", out, sizeof out), ROUTE_OK);
	T_CHECK(strncmp(out, "local:", 6) == 0);
	T_EQ_INT(route("bad@example.com", out, sizeof out), ROUTE_TEMP);
	T_EQ_INT(route("nobody@example.com", out, sizeof out), ROUTE_NOUSER);
	rc.user_fn = NULL;
	teardown();

	setup("");                                 /* ldapcluster no: every user is local */
	rc.user_fn = dir_user;
	T_EQ_INT(route("far@example.com", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::far@example.com:far:2000:far::");
	rc.user_fn = NULL;
	teardown();
}

/* qmail's virtualdomains: each form, the lookup order, exceptions, locals first */
static void test_virtualdomains(void)
{
	static const struct { const char *addr; int v; const char *want; } c[] = {
		/* domain:prepend -> prepend-local, user joe with the extension */
		{ "Bob@Virt.example", ROUTE_OK, "local::joe-bob@virt.example:joe:1001:joe-bob:bob:" },
		/* user@domain:prepend beats domain:prepend */
		{ "boss@virt.example", ROUTE_OK, "local::ann-boss@virt.example:ann:1002:ann-boss:boss:" },
		/* .suffix for subdomains, the longest first */
		{ "x@a.sub.example", ROUTE_OK, "local::ann-x@a.sub.example:ann:1002:ann-x:x:" },
		{ "x@b.deep.sub.example", ROUTE_OK, "local::joe-x@b.deep.sub.example:joe:1001:joe-x:x:" },
		/* domain: (empty prepend) is an exception: remote */
		{ "x@no.sub.example", ROUTE_OK, "smtp:no.sub.example:x@no.sub.example::0:::" },
		/* the suffix does not cover the bare domain */
		{ "x@sub.example", ROUTE_OK, "smtp:sub.example:x@sub.example::0:::" },
		/* locals wins over virtualdomains (qmail) */
		{ "joe@example.com", ROUTE_OK, "local::joe@example.com:joe:1001:joe::" },
		/* the prepended user must exist */
		{ "x@ghost.example", ROUTE_NOUSER, "" },
		/* from a table file */
		{ "y@tab.example", ROUTE_OK, "local::ann-y@tab.example:ann:1002:ann-y:y:" },
		{ "y@remote.org", ROUTE_OK, "smtp:remote.org:y@remote.org::0:::" },
	};
	char dir[] = "/tmp/tern-vdom-XXXXXX", path[128], extra[400], out[1024];
	T_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/virtualdomains", dir);
	FILE *f = fopen(path, "w");
	fputs("# virtual\ntab.example:ann\nexample.com:ann\n", f);
	fclose(f);
	snprintf(extra, sizeof extra, "virtualdomains virt.example:joe boss@virt.example:ann "
	         ".sub.example:ann .deep.sub.example:joe no.sub.example: ghost.example:ghost "
	         "example.com:ann file:%s\n", path);
	setup(extra);
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int v = route(c[i].addr, out, sizeof out);
		if (v != c[i].v || strcmp(out, c[i].want) != 0)
			fprintf(stderr, "case %zu (%s): v=%d out=%s\n", i, c[i].addr, v, out);
		T_EQ_INT(v, c[i].v);
		T_EQ_STR(out, c[i].want);
	}
	T_EQ_INT(virtual_applies(&cfg, "a", "virt.example"), TABLE_FOUND);
	T_EQ_INT(virtual_applies(&cfg, "a", "no.sub.example"), TABLE_NOTFOUND);
	teardown();
	/* :prepend takes every domain that is not local */
	setup("virtualdomains :ann\n");
	T_EQ_INT(route("q@anywhere.example", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::ann-q@anywhere.example:ann:1002:ann-q:q:");
	T_EQ_INT(route("joe@localhost", out, sizeof out), ROUTE_OK);
	T_EQ_STR(out, "local::joe@localhost:joe:1001:joe::");
	teardown();
	/* an unreadable table tempfails */
	unlink(path);
	table_flush_cache();
	snprintf(extra, sizeof extra, "virtualdomains file:%s\n", path);
	struct cfg_errors errs;
	T_CHECK(config_parse(&cfg, "t.conf", extra, strlen(extra), &errs) != 0);
	config_free(&cfg);
	rmdir(dir);
}

static void test_virtualdomain_parse(void)
{
	static const struct { const char *e; int rc; const char *key, *pre; } c[] = {
		{ "Virt.Example:joe", 0, "virt.example", "joe" },
		{ "a@b.example:pat", 0, "a@b.example", "pat" },
		{ ".sub.example:x", 0, ".sub.example", "x" },
		{ ":all", 0, "", "all" },
		{ "exc.example:", 0, "exc.example", "" },
		{ "nocolon", -1, "", "" },
		{ "a:b:c", -1, "", "" },
		{ "a:b@c", -1, "", "" },
		{ "a b:c", -1, "", "" },
	};
	char key[64], pre[64];
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		T_EQ_INT(virtual_domain_parse(c[i].e, key, sizeof key, pre, sizeof pre), c[i].rc);
		T_EQ_STR(key, c[i].key);
		T_EQ_STR(pre, c[i].pre);
	}
}

static void test_virtualuser_parse(void)
{
	static const struct { const char *v; int rc; uint64_t uid, gid; const char *path; } c[] = {
		{ "/srv/mail/a/Maildir/ 2001 2002", 0, 2001, 2002, "/srv/mail/a/Maildir/" },
		{ "/srv/x/\t2001\t2002", 0, 2001, 2002, "/srv/x/" },
		{ "2001:2002:/srv/mail/b/Maildir/", 0, 2001, 2002, "/srv/mail/b/Maildir/" },
		{ "2001:2002:/srv/mail/b/Maildir", -1, 0, 0, "" },      /* not a Maildir */
		{ "2001:2002:srv/", -1, 0, 0, "" },                     /* relative */
		{ "2001:2002:/srv/../etc/", -1, 0, 0, "" },
		{ "/srv/x/ 2001", -1, 0, 0, "" },
		{ "/srv/x/ 2001 2002 9", -1, 0, 0, "" },
		{ "/srv/x/ -1 2002", -1, 0, 0, "" },
		{ "2001::/srv/x/", -1, 0, 0, "" },
		{ "", -1, 0, 0, "" },
	};
	char path[VIRTUAL_MAXPATH];
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		uint64_t uid = 0, gid = 0;
		int r = virtual_user_parse(c[i].v, &uid, &gid, path, sizeof path);
		if (r != c[i].rc)
			fprintf(stderr, "case %zu (%s): rc=%d\n", i, c[i].v, r);
		T_EQ_INT(r, c[i].rc);
		T_EQ_STR(path, c[i].path);
		if (r == 0) {
			T_EQ_INT(uid, c[i].uid);
			T_EQ_INT(gid, c[i].gid);
		}
	}
}

/* virtualusers: the address, the @domain catch-all, a listed domain's unknown address,
 * the uid rules, precedence over virtualdomains, locals first */
static void test_virtualusers(void)
{
	static const struct { const char *addr; int v; const char *want; } c[] = {
		{ "Alice@VM.example", ROUTE_OK, "local::alice@vm.example:alice@vm.example:2001:alice::/srv/vm/alice/Maildir/" },
		{ "bob@vm.example", ROUTE_OK, "local::bob@vm.example:bob@vm.example:2002:bob::/srv/vm/bob/Maildir/" },
		{ "nobody@vm.example", ROUTE_NOUSER, "" },
		{ "any@catch.example", ROUTE_OK, "local::any@catch.example:any@catch.example:2003:any::/srv/catch/Maildir/" },
		{ "root@vm.example", ROUTE_TEMP, "" },       /* uid 0 */
		{ "low@vm.example", ROUTE_TEMP, "" },        /* below minuid */
		{ "bad@vm.example", ROUTE_TEMP, "" },        /* malformed */
		{ "x@other.example", ROUTE_OK, "smtp:other.example:x@other.example::0:::" },
		{ "x@both.example", ROUTE_NOUSER, "" },      /* virtualusers before virtualdomains */
		{ "joe@example.com", ROUTE_OK, "local::joe@example.com:joe:1001:joe::" },
	};
	char dir[] = "/tmp/tern-vusers-XXXXXX", path[128], extra[400], out[1024];
	T_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/virtualusers", dir);
	FILE *f = fopen(path, "w");
	fputs("vm.example\nalice@vm.example /srv/vm/alice/Maildir/ 2001 2001\n"
	      "bob@vm.example 2002:2002:/srv/vm/bob/Maildir/\n@catch.example 2003:2003:/srv/catch/Maildir/\n"
	      "root@vm.example 0:0:/root/Maildir/\nlow@vm.example 5:5:/srv/low/\n"
	      "bad@vm.example 2001:2001:Maildir\nboth.example\n"
	      "x@example.com 2001:2001:/srv/x/\n", f);
	fclose(f);
	snprintf(extra, sizeof extra, "virtualusers file:%s\nvirtualdomains both.example:joe\n",
	         path);
	setup(extra);
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int v = route(c[i].addr, out, sizeof out);
		if (v != c[i].v || strcmp(out, c[i].want) != 0)
			fprintf(stderr, "case %zu (%s): v=%d out=%s\n", i, c[i].addr, v, out);
		T_EQ_INT(v, c[i].v);
		T_EQ_STR(out, c[i].want);
	}
	T_EQ_INT(virtual_applies(&cfg, "nobody", "vm.example"), TABLE_FOUND);
	T_EQ_INT(virtual_applies(&cfg, "x", "other.example"), TABLE_NOTFOUND);
	teardown();
	unlink(path);
	rmdir(dir);
	table_flush_cache();
	/* inline entries would be lowercased: refused */
	struct cfg_errors errs;
	const char *bad = "virtualusers a@b.example:2001:2001:/srv/A/\n";
	T_CHECK(config_parse(&cfg, "t.conf", bad, strlen(bad), &errs) != 0);
	config_free(&cfg);
}

static void run(void)
{
	test_transport_parse();
	test_transports();
	test_virtualdomain_parse();
	test_virtualuser_parse();
	test_virtualdomains();
	test_virtualusers();
	test_table_quota_profile();
	test_relay();
	test_smtproute_parse();
	test_smtproutes();
	test_smtproutes_table();
	test_basic();
	test_selfie_and_postmaster();
	test_postmaster_key();
	test_extension_dotqmail();
	test_percent();
	test_alias_accounts();
	test_include_accounts();
	test_tempfail();
	test_pending_hook();
	test_directory_users();
}

T_MAIN(run)
