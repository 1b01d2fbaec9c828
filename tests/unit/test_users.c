/* test_users — the users file format and its errors, qmail's extension rule, the any: and
 * passwd: backends, reload on change, and tempfail (never "no such user") when unreadable. */
#include "t.h"
#include "lib/hmap.h"
#include "mail/users.h"
#include "mail/table.h"
#include <pwd.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static struct users *from(const char *text, struct cfg_errors *errs)
{
	errs->n = 0;
	return users_from_text("users", text, strlen(text), errs);
}

static void test_parse(void)
{
	struct cfg_errors errs;
	const char *text =
		"# localpart:uid:gid:home\n"
		"joe:1001:100:/home/joe\n"
		"  Ann:1002:100:/home/ann  \n"
		"joe-foo:1003:100:/home/joefoo\n"
		"root:0:0:/root\n"
		"bad line\n"
		"x:abc:1:/h\n"
		"y:1:-1:/h\n"
		"z:1:1:relative\n"
		"joe:1009:100:/elsewhere\n"
		"../evil:5:5:/tmp\n"
		"\n"
		"last:1004:100:/home/last";
	struct users *u = from(text, &errs);
	T_EQ_INT(errs.n, 7);
	static const int lines[] = { 5, 6, 7, 8, 9, 10, 11 };
	for (int i = 0; i < errs.n && i < 7; i++) {
		T_EQ_INT(errs.e[i].line, lines[i]);
		T_EQ_STR(errs.e[i].file, "users");
	}
	T_CHECK(strstr(errs.e[0].msg, "uid 0") != NULL);
	T_CHECK(strstr(errs.e[5].msg, "duplicate") != NULL);

	struct users_result r;
	T_EQ_INT(users_lookup(u, "joe", &r), TABLE_FOUND);
	T_EQ_STR(r.user, "joe");
	T_EQ_INT(r.uid, 1001);
	T_EQ_INT(r.gid, 100);
	T_EQ_STR(r.home, "/home/joe");       /* the first of duplicate lines wins */
	T_EQ_STR(r.ext, "");
	T_EQ_STR(r.dash, "");
	T_EQ_INT(users_lookup(u, "ANN", &r), TABLE_FOUND);
	T_EQ_STR(r.user, "ann");
	T_EQ_STR(r.local, "ann");
	T_EQ_INT(users_lookup(u, "last", &r), TABLE_FOUND);
	T_EQ_INT(users_lookup(u, "root", &r), TABLE_NOTFOUND);
	T_EQ_INT(users_lookup(u, "nobody-here", &r), TABLE_NOTFOUND);
	T_EQ_INT(users_lookup(u, "", &r), TABLE_NOTFOUND);
	users_free(u);

	/* NUL bytes and a huge line do not stop the parser */
	const char nul[] = "a:1:1:/a\nb\0:2:2:/b\nc:3:3:/c";
	errs.n = 0;
	u = users_from_text("users", nul, sizeof nul - 1, &errs);
	T_EQ_INT(errs.n, 1);
	T_EQ_INT(errs.e[0].line, 2);
	T_EQ_INT(users_lookup(u, "c", &r), TABLE_FOUND);
	users_free(u);
	size_t n = 100000;
	char *huge = malloc(n + 20);
	memset(huge, 'x', n);
	memcpy(huge + n, "\nd:4:4:/d\n", 11);
	errs.n = 0;
	u = users_from_text("users", huge, n + 10, &errs);
	T_EQ_INT(errs.n, 1);
	T_EQ_INT(users_lookup(u, "d", &r), TABLE_FOUND);
	users_free(u);
	free(huge);
}

static void test_ext(void)
{
	struct cfg_errors errs;
	struct users *u = from("joe:1001:100:/home/joe\njoe-list:1002:100:/home/list\n"
	                       "a-b:1003:100:/home/ab\n", &errs);
	struct users_result r;
	static const struct { const char *in, *user, *ext, *dash; } c[] = {
		{ "joe", "joe", "", "" },
		{ "joe-foo", "joe", "foo", "-" },
		{ "Joe-Foo-Bar", "joe", "foo-bar", "-" },
		{ "joe-list", "joe-list", "", "" },
		{ "joe-list-x", "joe-list", "x", "-" },
		{ "joe-", "joe", "", "-" },
		{ "a-b-c-d", "a-b", "c-d", "-" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		T_EQ_INT(users_lookup(u, c[i].in, &r), TABLE_FOUND);
		T_EQ_STR(r.user, c[i].user);
		T_EQ_STR(r.ext, c[i].ext);
		T_EQ_STR(r.dash, c[i].dash);
	}
	T_EQ_INT(users_lookup(u, "joe-foo", &r), TABLE_FOUND);
	T_EQ_STR(r.local, "joe-foo");
	T_EQ_INT(users_lookup(u, "ann-joe", &r), TABLE_NOTFOUND);
	T_EQ_INT(users_lookup(u, "-joe", &r), TABLE_NOTFOUND);
	users_free(u);
}

static void test_valid(void)
{
	T_CHECK(users_valid_local("joe"));
	T_CHECK(users_valid_local("joe.smith+tag"));
	T_CHECK(!users_valid_local(""));
	T_CHECK(!users_valid_local(".hidden"));
	T_CHECK(!users_valid_local("a/b"));
	T_CHECK(!users_valid_local("a b"));
	T_CHECK(!users_valid_local("a\nb"));
	T_CHECK(!users_valid_local("0123456789012345678901234567890123456789012345678901234567890123456789"));
}

/* any: hands out the running uid, and uid 0 is never a target: as root, check as nobody */
static void test_any_checks(void)
{
	struct users_result r;
	struct users *u = users_open("any:/srv/mail", NULL);
	T_CHECK(u != NULL);
	T_EQ_INT(users_lookup(u, "Joe-Foo", &r), TABLE_FOUND);
	T_EQ_STR(r.user, "joe-foo");
	T_EQ_STR(r.home, "/srv/mail/joe-foo");
	T_EQ_INT(r.uid, getuid());
	T_EQ_INT(r.gid, getgid());
	T_EQ_INT(users_lookup(u, "../etc", &r), TABLE_NOTFOUND);
	T_EQ_INT(users_lookup(u, ".x", &r), TABLE_NOTFOUND);
	users_free(u);
	char cwd[1024], want[1200];
	T_CHECK(getcwd(cwd, sizeof cwd) != NULL);
	snprintf(want, sizeof want, "%s/var/mail/ann", cwd);
	u = users_open("any:./var/mail", NULL);
	T_EQ_INT(users_lookup(u, "ann", &r), TABLE_FOUND);
	T_EQ_STR(r.home, want);
	users_free(u);
	struct cfg_errors errs = { .n = 0 };
	T_CHECK(users_open("bogus", &errs) == NULL);
	T_EQ_INT(errs.n, 1);
	T_CHECK(users_open("any:", NULL) == NULL);
}

static void test_any(void)
{
	struct users_result r;
	if (getuid() != 0) {
		test_any_checks();
		return;
	}
	struct users *u = users_open("any:/srv/mail", NULL);
	T_EQ_INT(users_lookup(u, "joe", &r), TABLE_NOTFOUND);
	users_free(u);
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		test_any_checks();
		_exit(t_fails ? 1 : 0);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_passwd(void)
{
	struct users_result r;
	struct users *u = users_open("passwd:", NULL);
	T_CHECK(u != NULL);
	T_EQ_INT(users_lookup(u, "root", &r), TABLE_NOTFOUND);     /* uid 0: alias it */
	T_CHECK(strstr(r.diag, "uid 0") != NULL);
	T_EQ_INT(users_lookup(u, "no-such-account-xyzzy", &r), TABLE_NOTFOUND);
	struct passwd *pw;
	setpwent();
	while ((pw = getpwent()) && (pw->pw_uid == 0 || !users_valid_local(pw->pw_name)))
		;
	if (pw) {
		char name[256], ext[300];
		snprintf(name, sizeof name, "%s", pw->pw_name);
		uid_t uid = pw->pw_uid;
		endpwent();
		T_EQ_INT(users_lookup(u, name, &r), TABLE_FOUND);
		T_EQ_INT(r.uid, uid);
		snprintf(ext, sizeof ext, "%s-some-ext", name);
		T_EQ_INT(users_lookup(u, ext, &r), TABLE_FOUND);
		T_EQ_STR(r.user, name);
		T_EQ_STR(r.ext, "some-ext");
		/* minuid: an account below it is no mail user (refused at RCPT, never forked) */
		users_set_minuid(u, (uint64_t)uid + 1);
		T_EQ_INT(users_lookup(u, name, &r), TABLE_NOTFOUND);
		T_CHECK(strstr(r.diag, "below minuid") != NULL);
		users_set_minuid(u, (uint64_t)uid);
		T_EQ_INT(users_lookup(u, name, &r), TABLE_FOUND);
	}
	users_free(u);
}

static void test_file(void)
{
	char dir[] = "/tmp/tern-users-XXXXXX", path[128], spec[140];
	T_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/users", dir);
	snprintf(spec, sizeof spec, "file:%s", path);
	FILE *f = fopen(path, "w");
	fputs("joe:1001:100:/home/joe\n", f);
	fclose(f);
	struct users_result r;
	struct users *u = users_open(spec, NULL);
	T_EQ_INT(users_lookup(u, "joe", &r), TABLE_FOUND);
	T_EQ_INT(users_lookup(u, "ann", &r), TABLE_NOTFOUND);
	f = fopen(path, "w");
	fputs("ann:1002:100:/home/ann\n", f);
	fclose(f);
	sleep(1);
	T_EQ_INT(users_refresh(u, NULL), 1);
	T_EQ_INT(users_refresh(u, NULL), 0);   /* at most once a second */
	T_EQ_INT(users_lookup(u, "ann", &r), TABLE_FOUND);
	T_EQ_INT(users_lookup(u, "joe", &r), TABLE_NOTFOUND);
	unlink(path);
	sleep(1);
	T_EQ_INT(users_refresh(u, NULL), 1);
	T_EQ_INT(users_lookup(u, "ann", &r), TABLE_TEMP);  /* never "no such user" */
	users_free(u);
	rmdir(dir);

	struct cfg_errors errs = { .n = 0 };
	u = users_open("file:/nonexistent/users", &errs);
	T_CHECK(u != NULL);
	T_EQ_INT(errs.n, 1);
	T_EQ_INT(users_lookup(u, "joe", &r), TABLE_TEMP);
	users_free(u);
}

/* the optional 5th field: a password hash for logins (queue protocol PASS USER) */
static void test_pwhash(void)
{
	struct cfg_errors errs = { .n = 0 };
	struct users_result r;
	const char *text = "ann:1001:100:/home/ann:{SSHA}abcdefgh\n"
	                   "bob:1002:100:/home/bob\n"
	                   "eve:1003:100:/home/eve:nohash\n";
	struct users *u = users_from_text("users", text, strlen(text), &errs);
	T_EQ_INT(errs.n, 1);                     /* eve's 5th field is no hash */
	T_EQ_INT(errs.e[0].line, 3);
	T_EQ_INT(users_lookup(u, "ann", &r), TABLE_FOUND);
	T_EQ_STR(r.pwhash, "{SSHA}abcdefgh");
	T_EQ_STR(r.home, "/home/ann");
	T_EQ_INT(users_lookup(u, "bob", &r), TABLE_FOUND);
	T_EQ_STR(r.pwhash, "");
	users_free(u);
}

/* the one extension splitter (users.c and lookup_ldap.c) and the one string hash */
static void test_ext_next(void)
{
	const char *s = "joe-foo-bar";
	T_EQ_INT(users_ext_next(s, strlen(s)), 7);      /* joe-foo */
	T_EQ_INT(users_ext_next(s, 7), 3);              /* joe */
	T_EQ_INT(users_ext_next(s, 3), 0);
	T_EQ_INT(users_ext_next("-joe", 4), 0);         /* a leading '-' is no split */
	T_EQ_INT(users_ext_next("a--b", 4), 2);
	T_EQ_INT(users_ext_next("a--b", 2), 1);
	T_EQ_INT(users_ext_next("", 0), 0);
	T_CHECK(str_hash("") == 14695981039346656037ull);     /* FNV-1a: pop3 UIDLs depend on it */
	T_CHECK(str_hash("a") == 0xaf63dc4c8601ec8cull);
}

/* the optional 6th field: a Maildir++ quota (the hash may then be empty) */
static void test_quota(void)
{
	struct cfg_errors errs = { .n = 0 };
	struct users_result r;
	const char *text = "ann:1001:100:/home/ann:{SSHA}abcdefgh:1000000S,50C\n"
	                   "bob:1002:100:/home/bob::2000S\n"
	                   "cy:1004:100:/home/cy\n"
	                   "eve:1003:100:/home/eve::lots\n"
	                   "fay:1005:100:/home/fay::\n"
	                   "gil:1006:100:/home/gil::5C:extra\n";
	struct users *u = users_from_text("users", text, strlen(text), &errs);
	T_EQ_INT(errs.n, 3);                     /* eve, fay, gil */
	T_EQ_INT(errs.e[0].line, 4);
	T_EQ_INT(errs.e[1].line, 5);
	T_EQ_INT(errs.e[2].line, 6);
	T_EQ_INT(users_lookup(u, "ann", &r), TABLE_FOUND);
	T_EQ_STR(r.pwhash, "{SSHA}abcdefgh");
	T_CHECK(r.quotasize == 1000000 && r.quotacount == 50);
	T_EQ_INT(users_lookup(u, "bob", &r), TABLE_FOUND);
	T_EQ_STR(r.pwhash, "");
	T_EQ_STR(r.home, "/home/bob");
	T_CHECK(r.quotasize == 2000 && r.quotacount == 0);
	T_EQ_INT(users_lookup(u, "cy", &r), TABLE_FOUND);
	T_CHECK(r.quotasize == 0 && r.quotacount == 0);
	T_EQ_INT(users_lookup(u, "eve", &r), TABLE_NOTFOUND);
	users_free(u);
}

static void run(void)
{
	test_quota();
	test_ext_next();
	test_pwhash();
	test_parse();
	test_ext();
	test_valid();
	test_any();
	test_passwd();
	test_file();
}

T_MAIN(run)
