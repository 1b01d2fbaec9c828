/* test_mlist — the mailing list formats of src/mail/mlist.c, table-driven: addresses, the
 * members and config files, the suffix addresses through the `lists` key, the loop check,
 * the M_LIST_RESULT payload (round trip and refusals), and the file safety checks. */
#include "t.h"
#include "mail/mlist.h"
#include "mail/config.h"
#include "mail/table.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_addrs(void)
{
	static const struct { const char *s; int ok; } a[] = {
		{ "a@b", 1 }, { "first.last+x@example.org", 1 }, { "", 0 }, { "a", 0 }, { "@b", 0 },
		{ "a@", 0 }, { "a@b@c", 0 }, { "a b@c", 0 }, { "<a@b>", 0 }, { "a,b@c", 0 },
		{ "\"a\"@b", 0 }, { "a@b\x7f", 0 },
	};
	for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
		T_EQ_INT(mlist_addr_ok(a[i].s, strlen(a[i].s)), a[i].ok);
	struct mlist_addrs m = { 0 };
	char err[100];
	const char *good = "# members\n\n alice@x.org \r\nbob@y.org\n";
	T_EQ_INT(mlist_parse_addrs(&m, good, strlen(good), 10, err, sizeof err), 0);
	T_EQ_INT(m.n, 2);
	T_EQ_STR(m.v[0], "alice@x.org");
	struct mlist l = { 0 };
	l.members = m;
	l.listid = NULL;
	mlist_free(&l);
	static const char *const bad[] = { "alice\n", "a@b\nnot an address\n", "a@b\nc@d\nd@e\n" };
	for (size_t i = 0; i < 3; i++) {
		struct mlist_addrs z = { 0 };
		T_EQ_INT(mlist_parse_addrs(&z, bad[i], strlen(bad[i]), 2, err, sizeof err), -1);
		struct mlist y = { .members = z };
		mlist_free(&y);
	}
}

static void test_config(void)
{
	static const struct { const char *text; int ok; unsigned flags; size_t owners; } c[] = {
		{ "", 0, 0, 0 },
		{ "membersonly=yes\nmoderated = no\n# c\n", 0, MLIST_F_MEMBERSONLY, 0 },
		{ "moderated=1\nsenderconfirm=yes\nholdothers=yes\nverp=yes\n", 0,
		  MLIST_F_MODERATED | MLIST_F_SENDERCONFIRM | MLIST_F_HOLDOTHERS | MLIST_F_VERP, 0 },
		{ "owner = a@b, c@d\nlistid=dev.example.org\n", 0, 0, 2 },
		{ "membersonly=maybe\n", -1, 0, 0 }, { "colour=blue\n", -1, 0, 0 },
		{ "owner=\n", -1, 0, 0 }, { "owner=not-an-address\n", -1, 0, 0 },
		{ "listid=<x>\n", -1, 0, 0 }, { "no equals sign\n", -1, 0, 0 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct mlist l;
		char err[100];
		mlist_init(&l);
		T_EQ_INT(mlist_parse_config(&l, c[i].text, strlen(c[i].text), err, sizeof err), c[i].ok);
		if (c[i].ok == 0) {
			T_EQ_INT(l.flags, c[i].flags);
			T_EQ_INT(l.owners.n, c[i].owners);
		}
		mlist_free(&l);
	}
}

static void test_loop(void)
{
	static const struct { const char *h; int loop; } c[] = {
		{ "Subject: x\n\nList-Id: <dev.x.org>\n", 0 },            /* in the body: not a loop */
		{ "List-Id: Dev <dev.x.org>\nSubject: x\n\n", 1 },
		{ "list-id:\n <DEV.x.org>\n\n", 1 },                       /* folded, any case */
		{ "List-Id: <other.x.org>\n\n", 0 },
		{ "Mailing-List: list dev@x.org; contact dev-owner@x.org\n\n", 1 },
		{ "Mailing-List: list other@x.org\n\n", 0 },
		{ "X-List-Id: <dev.x.org>\n\n", 0 },
		{ "", 0 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		T_EQ_INT(mlist_loop_check(c[i].h, strlen(c[i].h), "dev@x.org", "dev.x.org"), c[i].loop);
}

static void test_payload(void)
{
	struct mlist l, g;
	mlist_init(&l);
	const char *mem = "a@b\nc@d\n", *cfg = "owner=o@b\nmembersonly=yes\nlistid=l.b\n";
	char err[100];
	T_EQ_INT(mlist_parse_addrs(&l.members, mem, strlen(mem), 10, err, sizeof err), 0);
	T_EQ_INT(mlist_parse_config(&l, cfg, strlen(cfg), err, sizeof err), 0);
	struct msg out;
	msg_init(&out, 0, 0);
	mlist_put(&out, 0, "ok", &l);
	struct msg_reader r;
	msg_reader_init(&r, out.b.p + MSG_HDRLEN, out.b.len - MSG_HDRLEN);
	uint64_t v = 9;
	mlist_init(&g);
	T_EQ_INT(mlist_get(&r, &v, err, sizeof err, &g), 0);
	T_EQ_INT(v, 0);
	T_EQ_STR(err, "ok");
	T_EQ_INT(g.flags, MLIST_F_MEMBERSONLY);
	T_EQ_STR(g.listid, "l.b");
	T_EQ_INT(g.members.n, 2);
	T_EQ_STR(g.members.v[1], "c@d");
	T_EQ_STR(g.owners.v[0], "o@b");
	mlist_free(&g);
	/* truncated payloads and a bad address are refused whole */
	for (size_t cut = 0; cut < out.b.len - MSG_HDRLEN; cut += 3) {
		msg_reader_init(&r, out.b.p + MSG_HDRLEN, cut);
		mlist_init(&g);
		T_EQ_INT(mlist_get(&r, &v, err, sizeof err, &g), -1);
		T_EQ_INT(g.members.n, 0);
		mlist_free(&g);
	}
	msg_discard(&out);
	free(l.members.v[0]);
	l.members.v[0] = strdup("not an address");
	msg_init(&out, 0, 0);
	mlist_put(&out, 0, "", &l);
	msg_reader_init(&r, out.b.p + MSG_HDRLEN, out.b.len - MSG_HDRLEN);
	mlist_init(&g);
	T_EQ_INT(mlist_get(&r, &v, err, sizeof err, &g), -1);
	mlist_free(&g);
	msg_discard(&out);
	mlist_free(&l);
}

static void test_route_and_load(void)
{
	char dir[] = "/tmp/test_mlist.XXXXXX";
	T_CHECK(mkdtemp(dir) != NULL);
	char p[256], entry[300];
	snprintf(p, sizeof p, "%s/members", dir);
	FILE *f = fopen(p, "w");
	fputs("a@b\n", f);
	fclose(f);
	chmod(p, 0644);
	struct config c;
	memset(&c, 0, sizeof c);
	snprintf(entry, sizeof entry, "dev-list@x.org:%s", dir);
	char *v[] = { entry };
	c.lists.v = v;
	c.lists.n = 1;
	static const struct { const char *local; int rc, kind; const char *cookie; } r[] = {
		{ "dev-list", TABLE_FOUND, MLIST_POST, "" },
		{ "dev-list-owner", TABLE_FOUND, MLIST_OWNER, "" },
		{ "dev-list-owner-alice=y.org", TABLE_FOUND, MLIST_OWNER, "" },      /* VERP */
		{ "dev-list-owner-a-owner-b=y.org", TABLE_FOUND, MLIST_OWNER, "" },
		{ "x-owner-dev-list", TABLE_NOTFOUND, 0, "" },
		{ "dev-list-accept-0123456789abcdef0123456789abcdef0123456789abcdef", TABLE_FOUND, MLIST_ACCEPT,
		  "0123456789abcdef0123456789abcdef0123456789abcdef" },
		{ "dev-list-reject-0123456789abcdef0123456789abcdef0123456789abcdef", TABLE_FOUND, MLIST_REJECT,
		  "0123456789abcdef0123456789abcdef0123456789abcdef" },
		{ "dev-list-accept-xyz", TABLE_FOUND, MLIST_ACCEPT, "" },   /* malformed: empty */
		{ "dev-list-nosuch", TABLE_NOTFOUND, 0, "" },
		{ "dev", TABLE_NOTFOUND, 0, "" }, { "list-owner", TABLE_NOTFOUND, 0, "" },
	};
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
		char list[400], cookie[80], *d = NULL;
		int kind = -1;
		T_EQ_INT(mlist_route(&c, r[i].local, "x.org", &kind, list, sizeof list, cookie,
		                     sizeof cookie, &d), r[i].rc);
		if (r[i].rc == TABLE_FOUND) {
			T_EQ_INT(kind, r[i].kind);
			T_EQ_STR(list, "dev-list@x.org");
			T_EQ_STR(cookie, r[i].cookie);
			T_EQ_STR(d, dir);
		}
		free(d);
	}
	struct mlist l;
	char err[300];
	mlist_init(&l);
	T_EQ_INT(mlist_load(dir, getuid(), &l, err, sizeof err), TABLE_FOUND);
	T_EQ_INT(l.members.n, 1);
	mlist_free(&l);
	chmod(p, 0666);                       /* anyone could add members: refused */
	mlist_init(&l);
	T_EQ_INT(mlist_load(dir, getuid(), &l, err, sizeof err), TABLE_TEMP);
	T_CHECK(strstr(err, "unsafe") != NULL);
	mlist_free(&l);
	chmod(p, 0644);
	snprintf(p, sizeof p, "%s/config", dir);
	f = fopen(p, "w");
	fputs("moderated=yes\n", f);          /* moderated without moderators */
	fclose(f);
	chmod(p, 0644);
	mlist_init(&l);
	T_EQ_INT(mlist_load(dir, getuid(), &l, err, sizeof err), TABLE_TEMP);
	mlist_free(&l);
	unlink(p);
	snprintf(p, sizeof p, "%s/members", dir);
	unlink(p);
	mlist_init(&l);                       /* no members file: cannot tell, never "empty" */
	T_EQ_INT(mlist_load(dir, getuid(), &l, err, sizeof err), TABLE_TEMP);
	mlist_free(&l);
	rmdir(dir);
}

static void test_cookie(void)
{
	unsigned char key[MLIST_KEYLEN], other[MLIST_KEYLEN];
	memset(key, 7, sizeof key);
	memset(other, 8, sizeof other);
	char c[MLIST_COOKIEHEX + 1], bad[MLIST_COOKIEHEX + 1];
	uint64_t id = 0;
	T_EQ_INT(mlist_cookie(key, sizeof key, "dev@x.org", 0x6b11dc9b555e1e7eULL, "moderate", c), 0);
	T_EQ_INT(strlen(c), MLIST_COOKIEHEX);
	T_CHECK(strncmp(c, "6b11dc9b555e1e7e", 16) == 0);
	T_EQ_INT(mlist_cookie_check(key, sizeof key, "dev@x.org", "moderate", c, &id), 1);
	T_EQ_INT(id, 0x6b11dc9b555e1e7eULL);
	/* another key, list, purpose, id or a changed digit: refused */
	T_EQ_INT(mlist_cookie_check(other, sizeof other, "dev@x.org", "moderate", c, &id), 0);
	T_EQ_INT(mlist_cookie_check(key, sizeof key, "ops@x.org", "moderate", c, &id), 0);
	T_EQ_INT(mlist_cookie_check(key, sizeof key, "dev@x.org", "confirm", c, &id), 0);
	for (size_t i = 0; i < MLIST_COOKIEHEX; i += 5) {
		memcpy(bad, c, sizeof bad);
		bad[i] = bad[i] == '0' ? '1' : '0';
		T_EQ_INT(mlist_cookie_check(key, sizeof key, "dev@x.org", "moderate", bad, &id), 0);
	}
	static const char *const malformed[] = { "", "xyz", "6b11dc9b555e1e7e",
		"6B11DC9B555E1E7E0123456789ABCDEF0123456789ABCDEF",
		"6b11dc9b555e1e7e0123456789abcdef0123456789abcdef0" };
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
		T_EQ_INT(mlist_cookie_check(key, sizeof key, "dev@x.org", "moderate", malformed[i], &id), 0);
}

static void run(void)
{
	test_cookie();
	test_addrs();
	test_config();
	test_loop();
	test_payload();
	test_route_and_load();
}
T_MAIN(run)
