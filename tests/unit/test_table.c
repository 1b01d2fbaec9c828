/* test_table — the string map, text table parsing, IP/CIDR matching, file: and cdb: lookups,
 * list membership with subdomain entries, and the cdb builder round trip in a temp dir. */
#include "t.h"
#include "mail/table.h"
#include "lib/buf.h"
#include <stdio.h>
#include <unistd.h>

static char dir[64];

static void put_file(const char *name, const char *text, size_t len)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	T_CHECK(f != NULL);
	if (!f)
		return;
	fwrite(text, 1, len, f);
	fclose(f);
}

static char *ref(const char *kind, const char *name)
{
	static char r[4][256];
	static int i;
	i = (i + 1) % 4;
	snprintf(r[i], sizeof r[i], "%s:%s/%s", kind, dir, name);
	return r[i];
}

static void test_map(void)
{
	struct table_map *m = table_map_new();
	char key[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		T_EQ_INT(table_map_put(m, key, (void *)(long)(i + 1)), 0);
	}
	T_EQ_INT(table_map_put(m, "k5", (void *)99L), 1);
	T_EQ_INT((long)table_map_get(m, "k5"), 6);
	T_EQ_INT((long)table_map_get(m, "k999"), 1000);
	T_CHECK(table_map_get(m, "nope") == NULL);
	T_EQ_INT(table_map_count(m), 1000);
	table_map_free(m, NULL);
}

static void test_lines(void)
{
	struct table_lines it;
	const char *s;
	size_t n;
	const char text[] = "a\r\n\nb c\nlast";
	table_lines_init(&it, text, sizeof text - 1);
	T_CHECK(table_lines_next(&it, &s, &n) && n == 1 && s[0] == 'a');
	T_CHECK(table_lines_next(&it, &s, &n) && n == 0);
	T_CHECK(table_lines_next(&it, &s, &n) && n == 3);
	T_CHECK(table_lines_next(&it, &s, &n) && n == 4 && it.line == 4);
	T_CHECK(!table_lines_next(&it, &s, &n));
}

static void test_parse(void)
{
	struct cfg_errors errs = { .n = 0 };
	const char list[] = "# comment\nExample.COM\n  spaced.org  \nbad item\n\nlast.net";
	struct table_map *m = table_parse("l", list, sizeof list - 1, TABLE_LIST, &errs);
	T_CHECK(table_map_get(m, "example.com") != NULL);
	T_CHECK(table_map_get(m, "spaced.org") != NULL);
	T_CHECK(table_map_get(m, "last.net") != NULL);
	T_EQ_INT(table_map_count(m), 3);
	T_EQ_INT(errs.n, 1);
	T_EQ_INT(errs.e[0].line, 4);
	table_map_free(m, free);

	errs.n = 0;
	const char colon[] = "a.com:relay.x:2525\n:default.relay\nnocolon\nb\0c:d\n";
	m = table_parse("c", colon, sizeof colon - 1, TABLE_COLON, &errs);
	T_EQ_STR(table_map_get(m, "a.com"), "relay.x:2525");
	T_EQ_STR(table_map_get(m, ""), "default.relay");
	T_EQ_INT(errs.n, 2);
	T_EQ_INT(errs.e[0].line, 3);
	T_EQ_INT(errs.e[1].line, 4);
	table_map_free(m, free);

	errs.n = 0;
	const char sp[] = "Key  value with  blanks \nalone\nkey second";
	m = table_parse("s", sp, sizeof sp - 1, TABLE_SPACE, &errs);
	T_EQ_STR(table_map_get(m, "key"), "value with  blanks");
	T_EQ_STR(table_map_get(m, "alone"), "");
	T_EQ_INT(errs.n, 0);
	table_map_free(m, free);
}

static void test_ip(void)
{
	static const struct { const char *pat, *ip; int want; } c[] = {
		{ "127.0.0.1", "127.0.0.1", 1 },
		{ "127.0.0.1", "127.0.0.2", 0 },
		{ "10.0.0.0/8", "10.255.1.2", 1 },
		{ "10.0.0.0/8", "11.0.0.1", 0 },
		{ "192.168.1.0/25", "192.168.1.127", 1 },
		{ "192.168.1.0/25", "192.168.1.128", 0 },
		{ "0.0.0.0/0", "8.8.8.8", 1 },
		{ "192.168.", "192.168.77.1", 1 },
		{ "192.168.", "192.169.0.1", 0 },
		{ "10.", "10.9.9.9", 1 },
		{ "10.1.2.", "10.1.2.200", 1 },
		{ "::1", "::1", 1 },
		{ "[::1]", "::1", 1 },
		{ "::1", "127.0.0.1", 0 },
		{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
		{ "2001:db8::/32", "2001:db9::1", 0 },
		{ "2001:db8::/33", "2001:db8:8000::1", 0 },
		{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },
		{ "10.0.0.0/8", "2001:db8::1", 0 },
		{ "300.1.1.1", "1.1.1.1", -1 },
		{ "10.0.0.0/33", "10.0.0.1", -1 },
		{ "10.0.0.0/x", "10.0.0.1", -1 },
		{ "1.2.3", "1.2.3.4", -1 },
		{ "1.2.3.4.", "1.2.3.4", -1 },
		{ "abc", "1.2.3.4", -1 },
		{ "", "1.2.3.4", -1 },
		{ "10.0.0.0/8", "not-an-ip", -1 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int got = table_ip_match(c[i].pat, c[i].ip);
		if (got != c[i].want)
			fprintf(stderr, "ip case %zu: %s vs %s\n", i, c[i].pat, c[i].ip);
		T_EQ_INT(got, c[i].want);
	}
}

static void test_cdb(void)
{
	const char text[] = "# domains\nExample.com relay1\nfoo.org  bar baz\nexample.com second\n"
	                    "10.1. yes\n.sub.net\n";
	put_file("t.txt", text, sizeof text - 1);
	char txt[256], cdb[256];
	snprintf(txt, sizeof txt, "%s/t.txt", dir);
	snprintf(cdb, sizeof cdb, "%s/t.cdb", dir);
	T_EQ_INT(table_cdb_build(txt, cdb), 0);
	T_CHECK(access(cdb, R_OK) == 0);
	char tmp[300];
	snprintf(tmp, sizeof tmp, "%s.tmp", cdb);
	T_CHECK(access(tmp, F_OK) < 0);
	char *v = NULL;
	T_EQ_INT(table_lookup(ref("cdb", "t.cdb"), TABLE_SPACE, "EXAMPLE.com", &v), TABLE_FOUND);
	T_EQ_STR(v, "relay1");          /* the first of duplicate keys wins */
	free(v);
	v = NULL;
	T_EQ_INT(table_lookup(ref("cdb", "t.cdb"), TABLE_SPACE, "foo.org", &v), TABLE_FOUND);
	T_EQ_STR(v, "bar baz");
	free(v);
	T_EQ_INT(table_lookup(ref("cdb", "t.cdb"), TABLE_SPACE, "nope.org", NULL), TABLE_NOTFOUND);
	T_EQ_INT(table_lookup(ref("cdb", "missing.cdb"), TABLE_SPACE, "x", NULL), TABLE_TEMP);

	/* a bad line makes the build fail and leaves the old cdb in place */
	const char bad[] = "ok 1\nnul\0here\n";
	put_file("bad.txt", bad, sizeof bad - 1);
	snprintf(txt, sizeof txt, "%s/bad.txt", dir);
	T_EQ_INT(table_cdb_build(txt, cdb), -1);
	T_EQ_INT(table_lookup(ref("cdb", "t.cdb"), TABLE_SPACE, "foo.org", NULL), TABLE_FOUND);
	T_CHECK(access(tmp, F_OK) < 0);
	snprintf(txt, sizeof txt, "%s/none.txt", dir);
	T_EQ_INT(table_cdb_build(txt, cdb), -1);
}

static void test_lists(void)
{
	char *inl[] = { "example.com", ".wild.org", "@bad.com", "joe@x.com" };
	const char files[] = "filed.net\n# c\n.deep.io\n";
	put_file("domains", files, sizeof files - 1);
	char *tabs[] = { ref("file", "domains"), ref("cdb", "t.cdb") };
	struct cfg_list l = { inl, 4, tabs, 2 };
	T_EQ_INT(table_list_lookup(&l, "EXAMPLE.com"), TABLE_FOUND);
	T_EQ_INT(table_list_lookup(&l, "sub.example.com"), TABLE_NOTFOUND);
	T_EQ_INT(table_list_lookup(&l, "a.wild.org"), TABLE_FOUND);
	T_EQ_INT(table_list_lookup(&l, "a.b.wild.org"), TABLE_FOUND);
	T_EQ_INT(table_list_lookup(&l, "wild.org"), TABLE_NOTFOUND);
	T_EQ_INT(table_list_lookup(&l, "filed.net"), TABLE_FOUND);
	T_EQ_INT(table_list_lookup(&l, "x.deep.io"), TABLE_FOUND);
	T_EQ_INT(table_list_lookup(&l, "foo.org"), TABLE_FOUND);      /* from the cdb */
	T_EQ_INT(table_list_lookup(&l, "x.sub.net"), TABLE_FOUND);    /* cdb .sub.net */
	T_EQ_INT(table_list_lookup(&l, "@bad.com"), TABLE_FOUND);
	T_EQ_INT(table_list_lookup(&l, "Joe@X.com"), TABLE_FOUND);
	T_EQ_INT(table_list_lookup(&l, "x@wild.org"), TABLE_NOTFOUND);
	T_EQ_INT(table_list_lookup(&l, "other.com"), TABLE_NOTFOUND);

	/* a table that cannot be read: tempfail, unless an earlier source matches */
	char *bad[] = { ref("file", "does-not-exist") };
	struct cfg_list lb = { inl, 4, bad, 1 };
	T_EQ_INT(table_list_lookup(&lb, "other.com"), TABLE_TEMP);
	T_EQ_INT(table_list_lookup(&lb, "example.com"), TABLE_FOUND);

	/* reload after a change */
	const char more[] = "filed.net\nnew.net\n";
	put_file("domains", more, sizeof more - 1);
	table_flush_cache();
	T_EQ_INT(table_list_lookup(&l, "new.net"), TABLE_FOUND);
	T_EQ_INT(table_list_lookup(&l, "x.deep.io"), TABLE_NOTFOUND);
}

static void test_iplists(void)
{
	char *inl[] = { "127.0.0.1", "::1" };
	const char nets[] = "10.0.0.0/8\n2001:db8::/32\n172.16.\n";
	put_file("nets", nets, sizeof nets - 1);
	char *tabs[] = { ref("file", "nets"), ref("cdb", "t.cdb") };
	struct cfg_list l = { inl, 2, tabs, 2 };
	T_EQ_INT(table_ip_lookup(&l, "127.0.0.1"), TABLE_FOUND);
	T_EQ_INT(table_ip_lookup(&l, "::1"), TABLE_FOUND);
	T_EQ_INT(table_ip_lookup(&l, "10.2.3.4"), TABLE_FOUND);
	T_EQ_INT(table_ip_lookup(&l, "172.16.9.9"), TABLE_FOUND);
	T_EQ_INT(table_ip_lookup(&l, "2001:db8::5"), TABLE_FOUND);
	T_EQ_INT(table_ip_lookup(&l, "192.0.2.1"), TABLE_NOTFOUND);
	T_EQ_INT(table_ip_lookup(&l, "::ffff:10.0.0.1"), TABLE_FOUND);
	struct cfg_list lc = { NULL, 0, tabs + 1, 1 };
	T_EQ_INT(table_ip_lookup(&lc, "10.1.7.7"), TABLE_FOUND);      /* cdb prefix "10.1." */
	T_EQ_INT(table_ip_lookup(&lc, "10.2.7.7"), TABLE_NOTFOUND);
	char *bad[] = { ref("cdb", "missing.cdb") };
	struct cfg_list lb = { NULL, 0, bad, 1 };
	T_EQ_INT(table_ip_lookup(&lb, "10.2.7.7"), TABLE_TEMP);
}

/* a role's copy of an IP file table (qmqpclients before the chroot): the same patterns as
 * table_ip_lookup reads, bad ones skipped, appended after the inline items */
static void test_ip_file_load(void)
{
	const char text[] = "# clients\n10.0.0.0/8\n  192.168.\nnot-an-ip\n\n[::1]\n1.2.3.4/99\n";
	put_file("clients", text, sizeof text - 1);
	char *one = xstrdup("127.0.0.1");
	struct cfg_list l = { NULL, 0, NULL, 0 };
	l.v = xmalloc(sizeof *l.v);
	l.v[l.n++] = one;
	T_EQ_INT(table_ip_file_load(ref("file", "clients") + 5, "qmqpclients", &l), 0);
	T_EQ_INT(l.n, 4);
	T_EQ_STR(l.v[0], "127.0.0.1");
	T_EQ_INT(table_ip_lookup(&l, "10.9.9.9"), TABLE_FOUND);
	T_EQ_INT(table_ip_lookup(&l, "192.168.3.3"), TABLE_FOUND);
	T_EQ_INT(table_ip_lookup(&l, "::1"), TABLE_FOUND);
	T_EQ_INT(table_ip_lookup(&l, "1.2.3.4"), TABLE_NOTFOUND);
	for (size_t i = 0; i < l.n; i++)
		T_CHECK(table_ip_match(l.v[i], "127.0.0.1") >= 0);
	T_EQ_INT(table_ip_file_load(ref("file", "absent") + 5, "qmqpclients", &l), -1);
	T_EQ_INT(l.n, 4);
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
}

static void cleanup(void)
{
	static const char *files[] = { "t.txt", "t.cdb", "bad.txt", "domains", "nets", "clients" };
	char p[256];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void run(void)
{
	snprintf(dir, sizeof dir, "/tmp/tern-table-XXXXXX");
	T_CHECK(mkdtemp(dir) != NULL);
	test_map();
	test_lines();
	test_parse();
	test_ip();
	test_cdb();
	test_lists();
	test_iplists();
	test_ip_file_load();
	table_flush_cache();
	cleanup();
}

T_MAIN(run)
