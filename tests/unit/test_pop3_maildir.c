/* test_pop3_maildir — the POP3 view of a Maildir: the wire encoder (CRLF, dot-stuffing, TOP),
 * sizes as sent, UIDLs, and the scan/commit on a real directory (new/ -> cur/, order,
 * deletion only at commit). */
#include "t.h"
#include "mail/pop3_maildir.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct ecase {
	const char *in;
	long top;
	const char *out;        /* with dot-stuffing and the final "." */
};

static const struct ecase ecases[] = {
	{ "", -1, ".\r\n" },
	{ "a\n", -1, "a\r\n.\r\n" },
	{ "a", -1, "a\r\n.\r\n" },
	{ "a\r\n", -1, "a\r\n.\r\n" },
	{ "a\r", -1, "a\r\n.\r\n" },
	{ ".\n..x\n.", -1, "..\r\n...x\r\n..\r\n.\r\n" },
	{ "H: 1\n\nb1\nb2\nb3\n", -1, "H: 1\r\n\r\nb1\r\nb2\r\nb3\r\n.\r\n" },
	{ "H: 1\n\nb1\nb2\nb3\n", 0, "H: 1\r\n\r\n.\r\n" },
	{ "H: 1\n\nb1\nb2\nb3\n", 2, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n" },
	{ "H: 1\n\nb1\nb2\nb3\n", 9, "H: 1\r\n\r\nb1\r\nb2\r\nb3\r\n.\r\n" },
	{ "H: 1\r\n\r\n.b1\r\nb2", 1, "H: 1\r\n\r\n..b1\r\n.\r\n" },
	{ "H: 1\nH: 2\n", 0, "H: 1\r\nH: 2\r\n.\r\n" },       /* no body at all */
	{ "H: 1\n\rx\n\nb\n", 0, "H: 1\r\n\rx\r\n\r\n.\r\n" }, /* "\rx" is not the empty line */
	{ "a\r\rb\n", -1, "a\r\rb\r\n.\r\n" },
};

/* feed in pieces of every size, compare with the expected output and the size */
static void test_encoder(void)
{
	for (size_t i = 0; i < sizeof ecases / sizeof ecases[0]; i++) {
		const struct ecase *k = &ecases[i];
		size_t n = strlen(k->in);
		for (size_t step = 1; step <= n + 1; step++) {
			struct pop3_enc e;
			struct buf out;
			buf_init(&out);
			pop3_maildir_enc_init(&e, k->top, 1);
			for (size_t at = 0; at < n; at += step)
				pop3_maildir_enc_feed(&e, k->in + at, n - at < step ? n - at : step, &out);
			pop3_maildir_enc_end(&e, &out);
			buf_addc(&out, '\0');
			if (strcmp(out.p, k->out) != 0)
				fprintf(stderr, "case %zu step %zu\n", i, step);
			T_EQ_STR(out.p, k->out);
			T_EQ_INT(e.octets, out.len - 1);
			buf_free(&out);
		}
	}
	/* the size as sent: no dot-stuffing, no final "." */
	T_EQ_INT(pop3_maildir_wire_size("a\n.b\n", 5), 7);
	T_EQ_INT(pop3_maildir_wire_size("a\r\nb", 4), 6);
	T_EQ_INT(pop3_maildir_wire_size("", 0), 0);
}

static void test_uidl(void)
{
	char u[POP3_UIDLMAX + 1], v[POP3_UIDLMAX + 1];
	pop3_maildir_uidl("1700000000.M1P2.host:2,S", u);
	T_EQ_STR(u, "1700000000.M1P2.host");
	pop3_maildir_uidl("1700000000.M1P2.host", u);
	T_EQ_STR(u, "1700000000.M1P2.host");
	pop3_maildir_uidl("with blank:2,", u);
	T_EQ_INT(u[0], 'x');
	T_EQ_INT(strlen(u), 17);
	pop3_maildir_uidl(":2,", v);
	T_EQ_INT(v[0], 'x');
	T_CHECK(strcmp(u, v) != 0);
	char longname[100];
	memset(longname, 'a', 71);
	longname[71] = '\0';
	pop3_maildir_uidl(longname, u);
	T_EQ_INT(u[0], 'x');
	longname[70] = '\0';
	pop3_maildir_uidl(longname, u);
	T_EQ_STR(u, longname);
}

static void put(const char *dir, const char *name, const char *text, time_t mtime)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	struct timeval tv[2] = { { mtime, 0 }, { mtime, 0 } };
	utimes(path, tv);
}

static int exists(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void test_box(void)
{
	char dir[] = "/tmp/test_pop3_maildirXXXXXX", sub[600];
	T_CHECK(mkdtemp(dir) != NULL);
	const char *subs[] = { "new", "cur", "tmp" };
	for (int i = 0; i < 3; i++) {
		snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]);
		mkdir(sub, 0700);
	}
	put(dir, "new/300.a.h", "S: 3\n\nthree\n", 3000);
	put(dir, "new/100.a.h", "S: 1\n\none\n", 1000);
	put(dir, "cur/200.a.h:2,S", "S: 2\r\n\r\ntwo\r\n", 2000);
	put(dir, "new/400.a.h,S=9,W=99", "S: 4\n\nfour\n", 4000);   /* W= is believed */
	put(dir, "new/.hidden", "x\n", 10);
	put(dir, "tmp/50.a.h", "x\n", 10);
	struct pop3_box b;
	T_EQ_INT(pop3_maildir_open(&b, open(dir, O_RDONLY | O_DIRECTORY)), 0);
	T_EQ_INT(b.n, 4);
	T_EQ_STR(b.m[3].uidl, "400.a.h,S=9,W=99");
	T_EQ_INT(b.m[3].size, 99);
	T_EQ_STR(b.m[0].uidl, "100.a.h");
	T_EQ_STR(b.m[0].name, "100.a.h:2,");
	T_EQ_STR(b.m[1].uidl, "200.a.h");
	T_EQ_STR(b.m[2].uidl, "300.a.h");
	T_EQ_INT(b.m[0].size, 13);
	T_EQ_INT(b.m[1].size, 13);
	T_EQ_INT(b.m[2].size, 15);
	T_CHECK(!exists(dir, "new/100.a.h") && exists(dir, "cur/100.a.h:2,"));
	T_CHECK(exists(dir, "new/.hidden") && exists(dir, "tmp/50.a.h"));
	size_t n, failed;
	uint64_t oct;
	b.m[1].deleted = 1;
	pop3_maildir_stat(&b, &n, &oct);
	T_EQ_INT(n, 3);
	T_EQ_INT(oct, 13 + 15 + 99);
	int fd = pop3_maildir_openmsg(&b, 2);
	T_CHECK(fd >= 0);
	close(fd);
	T_CHECK(pop3_maildir_openmsg(&b, 4) < 0);
	pop3_maildir_free(&b);                      /* no commit: nothing removed */
	T_CHECK(exists(dir, "cur/200.a.h:2,S"));
	T_EQ_INT(pop3_maildir_open(&b, open(dir, O_RDONLY | O_DIRECTORY)), 0);
	T_EQ_INT(b.n, 4);
	T_EQ_STR(b.m[1].uidl, "200.a.h");       /* the same UIDL in the next session */
	b.m[1].deleted = 1;
	T_EQ_INT(pop3_maildir_commit(&b, &failed), 1);
	T_EQ_INT(failed, 0);
	pop3_maildir_free(&b);
	T_CHECK(!exists(dir, "cur/200.a.h:2,S"));
	T_CHECK(exists(dir, "cur/300.a.h:2,"));
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	T_EQ_INT(system(cmd), 0);
	T_EQ_INT(pop3_maildir_open(&b, open("/nonexistent", O_RDONLY | O_DIRECTORY)), -1);
	pop3_maildir_free(&b);
}

static void run(void)
{
	test_encoder();
	test_uidl();
	test_box();
}

T_MAIN(run)
