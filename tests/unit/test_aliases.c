/* test_aliases — /etc/aliases parsing (continuations, comments, quotes, includes, errors
 * with line numbers), expansion (recursion, loops, depth, duplicates, self-reference), and
 * which aliases and include files are trusted (aliases_unsafe, and the refusal end to end). */
#include "t.h"
#include "mail/aliases.h"
#include "mail/table.h"
#include "lib/buf.h"
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static struct aliases *from(const char *text, struct cfg_errors *errs)
{
	if (errs)
		errs->n = 0;
	return aliases_from_text("aliases", text, strlen(text), 1000, 100, errs);
}

static int islocal(const char *domain, void *arg)
{
	if (strcmp(domain, "broken.dom") == 0)
		return TABLE_TEMP;
	return strcmp(domain, "local.dom") == 0 ? TABLE_FOUND : TABLE_NOTFOUND;
}

/* expand name; return the targets as "v1,v2" with '*' after self targets */
static int expand(struct aliases *a, const char *name, char *out, size_t outlen, char *diag)
{
	struct aliases_list l = { NULL, 0, 0 };
	char d[256];
	int rc = aliases_expand(a, name, islocal, NULL, &l, d, sizeof d);
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < l.n; i++)
		buf_printf(&b, "%s%s%s", i ? "," : "", l.v[i].value, l.v[i].self ? "*" : "");
	snprintf(out, outlen, "%s", b.p ? b.p : "");
	if (diag)
		snprintf(diag, 256, "%s", d);
	buf_free(&b);
	aliases_list_free(&l);
	return rc;
}

static void test_parse(void)
{
	struct cfg_errors errs;
	const char *text =
		"# system aliases\n"
		"Postmaster: root\n"
		"root: joe,\n"
		"  ann , \"bob\",\n"
		"# a comment inside does not end the entry\n"
		"\tcarl@Remote.DOM\n"
		"prog: \"|/usr/bin/filter -x, y\", |/bin/true\n"
		"file: /var/log/mail.copy, \"/var/mail/with space\"\n"
		"brackets: <dan@Example.ORG>\n"
		"old: a b   c\n"
		"\n"
		"last: z";
	struct aliases *a = from(text, &errs);
	T_EQ_INT(errs.n, 0);
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%d: %s\n", errs.e[i].line, errs.e[i].msg);
	char out[1024];
	T_EQ_INT(expand(a, "postmaster", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "joe,ann,bob,carl@remote.dom");
	T_EQ_INT(expand(a, "PROG", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "|/usr/bin/filter -x, y,|/bin/true");
	T_EQ_INT(expand(a, "file", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "/var/log/mail.copy,/var/mail/with space");
	T_EQ_INT(expand(a, "brackets", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "dan@example.org");
	T_EQ_INT(expand(a, "old", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "a,b,c");
	T_EQ_INT(expand(a, "last", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "z");
	T_EQ_INT(expand(a, "nobody", out, sizeof out, NULL), TABLE_NOTFOUND);
	T_EQ_INT(aliases_has(a, "ROOT"), TABLE_FOUND);
	T_EQ_INT(aliases_has(a, "joe"), TABLE_NOTFOUND);

	struct aliases_list l = { NULL, 0, 0 };
	T_EQ_INT(aliases_expand(a, "prog", NULL, NULL, &l, NULL, 0), TABLE_FOUND);
	T_EQ_INT(l.n, 2);
	T_EQ_INT(l.v[0].kind, ALIASES_PROG);
	T_EQ_INT(l.v[0].uid, 1000);
	T_EQ_INT(l.v[0].gid, 100);
	aliases_list_free(&l);
	T_EQ_INT(aliases_expand(a, "file", NULL, NULL, &l, NULL, 0), TABLE_FOUND);
	T_EQ_INT(l.v[1].kind, ALIASES_FILE);
	aliases_list_free(&l);
	aliases_free(a);
}

static void test_errors(void)
{
	static const struct { const char *text; int line; const char *msg; } c[] = {
		{ "a: b\nno colon here\n", 2, "expected 'name: target" },
		{ "a: b\nempty:\n", 2, "has no targets" },
		{ "a: b\nempty: , ,\n", 2, "has no targets" },
		{ "a: b\nA: c\n", 2, "duplicate alias 'a'" },
		{ "  x: y\na: b\n", 1, "continuation line without an alias" },
		{ "a: \"|prog\n", 1, "unterminated quote" },
		{ "a: b\nc: :include:relative/file\n", 2, "absolute path" },
		{ "a: b\nc: |\n", 2, "empty command" },
		{ "a: b\n\"q\": x\n", 2, "bad alias name" },
		{ "a: b\nc: @x.com\n", 2, "bad address" },
		{ "a: b\nc: x@\n", 2, "bad address" },
		{ "a: b\nc: <>\n", 2, "bad address" },
		{ "a: b\nc: \"x\001y\"\n", 2, "control character" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct cfg_errors errs;
		struct aliases *a = from(c[i].text, &errs);
		T_EQ_INT(errs.n, 1);
		if (errs.n) {
			T_EQ_INT(errs.e[0].line, c[i].line);
			T_EQ_STR(errs.e[0].file, "aliases");
			if (!strstr(errs.e[0].msg, c[i].msg))
				fprintf(stderr, "case %zu: got \"%s\"\n", i, errs.e[0].msg);
			T_CHECK(strstr(errs.e[0].msg, c[i].msg) != NULL);
		}
		T_EQ_INT(aliases_has(a, "a"), i == 5 ? TABLE_NOTFOUND : TABLE_FOUND);
		aliases_free(a);
	}
	/* NUL bytes and missing final newline */
	const char nul[] = "a: b\nc: d\0e\n  f\ng: h";
	struct cfg_errors errs = { .n = 0 };
	struct aliases *a = aliases_from_text("aliases", nul, sizeof nul - 1, 1, 1, &errs);
	T_EQ_INT(errs.n, 1);
	T_EQ_INT(errs.e[0].line, 2);
	T_EQ_INT(aliases_has(a, "c"), TABLE_NOTFOUND);
	T_EQ_INT(aliases_has(a, "g"), TABLE_FOUND);
	aliases_free(a);
}

static void test_expand(void)
{
	char out[1024], diag[256];
	struct aliases *a = from(
		"a: b, c\nb: d\n"
		"dup: x, X, b2\nb2: x, d\n"
		"joe: joe, ann\n"
		"self2: Self2@Local.Dom, ann\n"
		"viaDomain: b@local.dom, r@remote.dom\n"
		"loop1: loop2\nloop2: loop1, z\n"
		"me: me\n"
		"tmp: q@broken.dom\n"
		"diamond: l, r\nl: end\nr: end\nend: final\n", NULL);
	T_EQ_INT(expand(a, "a", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "d,c");
	T_EQ_INT(expand(a, "dup", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "x,d");
	T_EQ_INT(expand(a, "joe", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "joe*,ann");
	T_EQ_INT(expand(a, "self2", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "Self2@local.dom*,ann");
	T_EQ_INT(expand(a, "viadomain", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "d,r@remote.dom");
	T_EQ_INT(expand(a, "loop1", out, sizeof out, diag), TABLE_TEMP);
	T_CHECK(strstr(diag, "loop") != NULL);
	T_EQ_INT(expand(a, "me", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "me*");
	T_EQ_INT(expand(a, "tmp", out, sizeof out, diag), TABLE_TEMP);
	T_EQ_INT(expand(a, "diamond", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "final");
	aliases_free(a);

	/* depth: a chain of 10 aliases is fine, 11 is a loop error */
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 11; i++)
		buf_printf(&b, "c%d: c%d\n", i, i + 1);
	a = from(b.p, NULL);
	T_EQ_INT(expand(a, "c1", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "c11");
	T_EQ_INT(expand(a, "c0", out, sizeof out, diag), TABLE_TEMP);
	T_CHECK(strstr(diag, "deeper than 10") != NULL);
	aliases_free(a);

	/* a wide, deep fan-out finishes quickly: each alias is expanded once per call */
	buf_reset(&b);
	for (int i = 0; i < 9; i++) {
		buf_printf(&b, "f%d: ", i);
		for (int j = 0; j < 200; j++)
			buf_printf(&b, "%sf%d", j ? "," : "", i + 1);
		buf_printf(&b, ", leaf%d\n", i);
	}
	buf_printf(&b, "f9: end\n");
	a = from(b.p, NULL);
	T_EQ_INT(expand(a, "f0", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "end,leaf8,leaf7,leaf6,leaf5,leaf4,leaf3,leaf2,leaf1,leaf0");
	aliases_free(a);
	buf_free(&b);
}

static void write_file(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	T_CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_include(void)
{
	char text[1024], out[1024], diag[256], path[256];
	write_file("list", "# members\nx, y\n\"|/bin/cat\"\n  z@remote.dom\nsub\nstaff\n");
	write_file("list2", "sub2\n");
	snprintf(text, sizeof text,
	         "staff: :include:%s/list, boss\n"
	         "sub: :include:%s/list2\nsub2: w\n"
	         "missing: :include:%s/nope\n", dir, dir, dir);
	struct aliases *a = from(text, NULL);
	T_EQ_INT(expand(a, "staff", out, sizeof out, NULL), TABLE_FOUND);
	T_EQ_STR(out, "x,y,|/bin/cat,z@remote.dom,w,staff*,boss");
	struct aliases_list l = { NULL, 0, 0 };
	T_EQ_INT(aliases_expand(a, "staff", NULL, NULL, &l, NULL, 0), TABLE_FOUND);
	struct stat st;
	snprintf(path, sizeof path, "%s/list", dir);
	T_EQ_INT(stat(path, &st), 0);
	T_EQ_INT(l.v[2].uid, st.st_uid);      /* include targets carry the include's owner */
	T_EQ_INT(l.v[6].uid, 1000);           /* aliases file targets, the aliases owner */
	aliases_list_free(&l);
	T_EQ_INT(expand(a, "missing", out, sizeof out, diag), TABLE_TEMP);
	T_CHECK(strstr(diag, "cannot read include") != NULL);
	aliases_free(a);

	/* a real file, its owner, reload, and an unreadable file */
	snprintf(path, sizeof path, "file:%s/aliases", dir);
	write_file("aliases", "r: s\n");
	struct cfg_errors errs = { .n = 0 };
	a = aliases_open(path, getuid(), &errs);
	T_EQ_INT(errs.n, 0);
	T_EQ_INT(aliases_has(a, "r"), TABLE_FOUND);
	write_file("aliases", "t: u\nbad line\n");
	sleep(1);
	T_EQ_INT(aliases_refresh(a, &errs), 1);
	T_EQ_INT(errs.n, 1);
	T_EQ_INT(aliases_has(a, "r"), TABLE_NOTFOUND);
	T_EQ_INT(aliases_has(a, "t"), TABLE_FOUND);
	aliases_free(a);
	a = aliases_open("file:/nonexistent/aliases", 0, NULL);
	T_CHECK(a != NULL);
	T_EQ_INT(aliases_has(a, "t"), TABLE_TEMP);
	T_EQ_INT(expand(a, "t", out, sizeof out, NULL), TABLE_TEMP);
	aliases_free(a);
	a = aliases_open("", 0, NULL);
	T_EQ_INT(aliases_has(a, "t"), TABLE_NOTFOUND);
	aliases_free(a);
	T_CHECK(aliases_open("relative", 0, NULL) == NULL);

	static const char *files[] = { "list", "list2", "aliases", "open", "openlist" };
	for (size_t i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
}

/* the trust decision alone, on a struct stat built here */
static void test_unsafe_table(void)
{
	static const struct {
		unsigned mode, uid;
		int include;
		unsigned owner_ok;
		const char *want;             /* NULL = trusted */
	} cases[] = {
		{ 0644, 0, 0, 0, NULL },
		{ 0600, 0, 0, 0, NULL },
		{ 0444, 0, 0, 0, NULL },
		{ 0640, 0, 0, 0, NULL },
		{ 0664, 0, 0, 0, "group_writable" },
		{ 02664, 0, 0, 0, "group_writable" },
		{ 0620, 0, 0, 0, "group_writable" },
		{ 0646, 0, 0, 0, "world_writable" },
		{ 0666, 0, 0, 0, "world_writable" },
		{ 0662, 1000, 0, 0, "world_writable" },     /* the worst reason first */
		{ 0644, 1000, 0, 0, "bad_owner" },
		{ 0644, 1000, 0, 1000, NULL },               /* development: the running account */
		{ 0644, 1000, 0, 1001, "bad_owner" },
		{ 0664, 1000, 0, 1000, "group_writable" },
		{ 0644, 1000, 1, 0, NULL },                  /* include: any owner (runs as it) */
		{ 0600, 4242, 1, 0, NULL },
		{ 0664, 1000, 1, 0, "group_writable" },
		{ 0606, 0, 1, 0, "world_writable" },
		{ 0644, 0, 1, 0, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct stat st;
		memset(&st, 0, sizeof st);
		st.st_mode = S_IFREG | cases[i].mode;
		st.st_uid = cases[i].uid;
		const char *got = aliases_unsafe(&st, cases[i].include, cases[i].owner_ok);
		if (cases[i].want)
			T_EQ_STR(got, cases[i].want);
		else if (got)
			T_EQ_STR(got, "(trusted)");
	}
}

/* an unsafe aliases file answers TABLE_TEMP with the reason; an unsafe include too; include
 * targets are marked as such (route.c runs their programs as the include's owner) */
static void test_unsafe_files(void)
{
	char path[256], text[512], out[256], diag[256];
	write_file("open", "r: s\n");
	snprintf(path, sizeof path, "%s/open", dir);
	T_EQ_INT(chmod(path, 0666), 0);
	struct cfg_errors errs = { .n = 0 };
	snprintf(text, sizeof text, "file:%s", path);
	struct aliases *a = aliases_open(text, getuid(), &errs);
	T_CHECK(a != NULL);
	T_EQ_INT(errs.n, 1);
	T_CHECK(errs.n && strstr(errs.e[0].msg, "world_writable") != NULL);
	T_EQ_INT(aliases_has(a, "r"), TABLE_TEMP);
	T_EQ_INT(expand(a, "r", out, sizeof out, diag), TABLE_TEMP);
	T_CHECK(strstr(diag, "is unsafe (world_writable)") != NULL);
	aliases_free(a);
	T_EQ_INT(chmod(path, 0644), 0);
	a = aliases_open(text, getuid() + 1, NULL);  /* neither root nor the allowed owner */
	T_EQ_INT(aliases_has(a, "r"), getuid() == 0 ? TABLE_FOUND : TABLE_TEMP);
	aliases_free(a);

	write_file("openlist", "x, \"|/bin/true\"\n");
	snprintf(path, sizeof path, "%s/openlist", dir);
	T_EQ_INT(chmod(path, 0664), 0);
	snprintf(text, sizeof text, "l: :include:%s, \"|/bin/false\"\n", path);
	a = from(text, NULL);
	T_EQ_INT(expand(a, "l", out, sizeof out, diag), TABLE_TEMP);
	T_CHECK(strstr(diag, "is unsafe (group_writable)") != NULL);
	T_EQ_INT(chmod(path, 0644), 0);
	struct aliases_list l = { NULL, 0, 0 };
	T_EQ_INT(aliases_expand(a, "l", NULL, NULL, &l, NULL, 0), TABLE_FOUND);
	T_EQ_INT(l.n, 3);
	if (l.n == 3) {
		T_EQ_INT(l.v[0].incl, 1);
		T_EQ_INT(l.v[1].incl, 1);
		T_EQ_STR(l.v[1].value, "|/bin/true");
		T_EQ_INT(l.v[1].uid, getuid());
		T_EQ_INT(l.v[2].incl, 0);               /* from the aliases file itself */
		T_EQ_STR(l.v[2].value, "|/bin/false");
	}
	aliases_list_free(&l);
	aliases_free(a);
}

static void run(void)
{
	snprintf(dir, sizeof dir, "/tmp/tern-aliases-XXXXXX");
	T_CHECK(mkdtemp(dir) != NULL);
	test_parse();
	test_errors();
	test_expand();
	test_include();
	test_unsafe_table();
	test_unsafe_files();
	rmdir(dir);
}

T_MAIN(run)
