/* test_maildrop — the maildrop parser (table of good and bad envelopes) and the writer
 * (CRLF handling, deferred envelope, durable rename, failures leave nothing behind).
 * Trusts: nothing; writes only below a fresh mkdtemp directory it removes at the end. */
#include "t.h"
#include "mail/maildrop.h"
#include "lib/buf.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define M MAILDROP_MAGIC

struct pcase {
	const char *in;
	size_t len;          /* 0: strlen(in) */
	int ok;
	const char *why;     /* expected reason when !ok (NULL: any) */
	size_t nrcpt;        /* when ok */
};

static const struct pcase pcases[] = {
	{ M "U0\nT0\nF\nRa\n.\n", 0, 1, NULL, 1 },
	{ M "U1000\nT1700000000\nFbob@example.org\nRa@b\nRc@d\nOsendmail uid=1000\n.\nhi\n",
	  0, 1, NULL, 2 },
	{ M "U4294967295\nT253402300799\nF\xc3\xa9@x\nR\xe2\x82\xac@y\n.\n", 0, 1, NULL, 1 },
	{ M "U1\nT1\nF\nRa\n.\n\0\r\nbinary body is fine", 38, 1, NULL, 1 },
	{ "", 0, 0, "empty file", 0 },
	{ "TERN-MAILDROP", 0, 0, "truncated file", 0 },
	{ "TERN-MAIx", 0, 0, "not a maildrop file", 0 },
	{ "TERN-MAILDROP 2\nU0\nT0\nF\nRa\n.\n", 0, 0, "not a maildrop file", 0 },
	{ "From: x\n\nbody\n", 0, 0, "not a maildrop file", 0 },
	{ M "T0\nF\nRa\n.\n", 0, 0, "missing U line", 0 },
	{ M "U01\nT0\nF\nRa\n.\n", 0, 0, "bad uid", 0 },
	{ M "U-1\nT0\nF\nRa\n.\n", 0, 0, "bad uid", 0 },
	{ M "U+1\nT0\nF\nRa\n.\n", 0, 0, "bad uid", 0 },
	{ M "U\nT0\nF\nRa\n.\n", 0, 0, "bad uid", 0 },
	{ M "U 1\nT0\nF\nRa\n.\n", 0, 0, "bad uid", 0 },
	{ M "U4294967296\nT0\nF\nRa\n.\n", 0, 0, "bad uid", 0 },
	{ M "U99999999999999999999\nT0\nF\nRa\n.\n", 0, 0, "bad uid", 0 },
	{ M "U123456789012345678901\nT0\nF\nRa\n.\n", 0, 0, "envelope line too long", 0 },
	{ M "U0\nT253402300800\nF\nRa\n.\n", 0, 0, "bad time", 0 },
	{ M "U0\nF\nRa\n.\n", 0, 0, "missing T line", 0 },
	{ M "U0\nT0\nRa\n.\n", 0, 0, "missing F line", 0 },
	{ M "U0\nT0\nFa\rb\nRa\n.\n", 0, 0, "CR or LF in a value", 0 },
	{ M "U0\nT0\nFa\tb\nRa\n.\n", 0, 0, "control character in a value", 0 },
	{ M "U0\nT0\nFa\x7f\nRa\n.\n", 0, 0, "control character in a value", 0 },
	{ M "U0\nT0\nFa\0b\nRa\n.\n", 32, 0, "NUL byte", 0 },
	{ M "U0\nT0\nF\xc0\x80\nRa\n.\n", 0, 0, "malformed UTF-8", 0 },
	{ M "U0\nT0\nF\xed\xa0\x80\nRa\n.\n", 0, 0, "malformed UTF-8", 0 },
	{ M "U0\nT0\nF\xf4\x90\x80\x80\nRa\n.\n", 0, 0, "malformed UTF-8", 0 },
	{ M "U0\nT0\nF\xe2\x82\nRa\n.\n", 0, 0, "malformed UTF-8", 0 },
	{ M "U0\nT0\nF\xff\nRa\n.\n", 0, 0, "malformed UTF-8", 0 },
	{ M "U0\nT0\nF\n.\n", 0, 0, "no recipients", 0 },
	{ M "U0\nT0\nF\nR\n.\n", 0, 0, "empty address", 0 },
	{ M "U0\nT0\nF\nRa\nOx\nOy\n.\n", 0, 0, "misplaced or repeated O line", 0 },
	{ M "U0\nT0\nF\nOx\nRa\n.\n", 0, 0, "misplaced or repeated O line", 0 },
	{ M "U0\nT0\nF\nRa\nOx\nRb\n.\n", 0, 0, "R line after O line", 0 },
	{ M "U0\nT0\nF\nRa\nO\n.\n", 0, 0, "bad origin", 0 },
	{ M "U0\nT0\nF\nRa\nO\x01\n.\n", 0, 0, "bad origin", 0 },
	{ M "U0\nT0\nF\nRa\nXb\n.\n", 0, 0, "unexpected envelope line", 0 },
	{ M "U0\nT0\nF\nRa\n\n.\n", 0, 0, "unexpected envelope line", 0 },
	{ M "U0\nT0\nF\nRa\n..\n", 0, 0, "unexpected envelope line", 0 },
	{ M "U0\nT0\nF\nRa\n. \n", 0, 0, "unexpected envelope line", 0 },
	{ M "U0\nT0\nF\nRa\n.\r\n", 0, 0, "unexpected envelope line", 0 },
	{ M "U0\r\nT0\nF\nRa\n.\n", 0, 0, "bad uid", 0 },
	{ M "U0\nT0\nF\nRa\n", 0, 0, "envelope not terminated", 0 },
	{ M "U0\nT0\nF\nRa\n.", 0, 0, "envelope not terminated", 0 },
	{ M "U0\nT0\nF\nRa", 0, 0, "envelope not terminated", 0 },
	{ M "U0\nT0\nF\nRa\nFb\n.\n", 0, 0, "unexpected envelope line", 0 },
	{ M "U0\nT0\nFa\nFb\nRa\n.\n", 0, 0, "unexpected envelope line", 0 },
};

static void test_parse_table(void)
{
	for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
		const struct pcase *c = &pcases[i];
		size_t len = c->len ? c->len : strlen(c->in), off = 0;
		struct maildrop_env e;
		int r = maildrop_parse_env(c->in, len, &e, &off);
		if ((r == 0) != c->ok)
			fprintf(stderr, "case %zu: r=%d why=%s\n", i, r, e.why ? e.why : "-");
		T_EQ_INT(r, c->ok ? 0 : -1);
		if (c->ok && r == 0) {
			T_EQ_INT(e.nrcpt, c->nrcpt);
			T_CHECK(off <= len && off >= 2 && c->in[off - 1] == '\n' &&
			    c->in[off - 2] == '.');
			T_CHECK(e.why == NULL);
			maildrop_env_free(&e);
		} else if (r != 0) {
			T_CHECK(e.why != NULL && e.nrcpt == 0 && e.sender == NULL);
			if (c->why && e.why && strcmp(c->why, e.why) != 0)
				fprintf(stderr, "case %zu: why=%s\n", i, e.why);
			if (c->why)
				T_EQ_STR(e.why, c->why);
		}
	}
}

static void test_parse_fields(void)
{
	const char *in = M "U1000\nT1700000000\nFbob@example.org\nRa@b\nRc@d\nOsendmail uid=1000\n"
	    ".\nSubject: x\n\nhi\n";
	struct maildrop_env e;
	size_t off;
	T_EQ_INT(maildrop_parse_env(in, strlen(in), &e, &off), 0);
	T_EQ_INT(e.uid, 1000);
	T_EQ_INT(e.time, 1700000000);
	T_EQ_STR(e.sender, "bob@example.org");
	T_EQ_STR(e.rcpt[0], "a@b");
	T_EQ_STR(e.rcpt[1], "c@d");
	T_EQ_STR(e.origin, "sendmail uid=1000");
	T_EQ_STR(in + off, "Subject: x\n\nhi\n");
	maildrop_env_free(&e);
}

/* limits: 320-byte addresses and 10000 recipients pass, one more fails */
static void test_parse_limits(void)
{
	char addr[MAILDROP_MAXADDR + 2];
	struct buf b;
	struct maildrop_env e;
	size_t off;
	memset(addr, 'a', sizeof addr);
	addr[MAILDROP_MAXADDR] = '\0';
	buf_init(&b);
	buf_printf(&b, "%sU0\nT0\nF%s\n", M, addr);
	for (int i = 0; i < MAILDROP_MAXRCPT; i++)
		buf_printf(&b, "R%s\n", addr);
	buf_adds(&b, ".\n");
	T_CHECK(b.len <= MAILDROP_ENV_MAX);
	T_EQ_INT(maildrop_parse_env(b.p, b.len, &e, &off), 0);
	T_EQ_INT(e.nrcpt, MAILDROP_MAXRCPT);
	T_EQ_INT(off, b.len);
	maildrop_env_free(&e);
	b.len -= 2;
	buf_printf(&b, "Rx\n.\n");
	T_EQ_INT(maildrop_parse_env(b.p, b.len, &e, &off), -1);
	T_EQ_STR(e.why, "too many recipients");
	buf_reset(&b);
	addr[MAILDROP_MAXADDR] = 'a';
	addr[MAILDROP_MAXADDR + 1] = '\0';
	buf_printf(&b, "%sU0\nT0\nF\nR%s\n.\n", M, addr);
	T_EQ_INT(maildrop_parse_env(b.p, b.len, &e, &off), -1);
	T_EQ_STR(e.why, "envelope line too long");
	buf_free(&b);
}

/* --- writer ------------------------------------------------------------------------------ */

static char spool[256];

static int count_files(const char *prefix)
{
	char d[300];
	snprintf(d, sizeof d, "%s/maildrop", spool);
	DIR *dp = opendir(d);
	int n = 0;
	struct dirent *de;
	if (!dp)
		return -1;
	while ((de = readdir(dp)))
		if (de->d_name[0] != '.' && (!prefix || strncmp(de->d_name, prefix, strlen(prefix)) == 0))
			n++;
	closedir(dp);
	return n;
}

static char *slurp(const char *id, size_t *len, struct stat *st)
{
	char p[400];
	struct buf b;
	char tmp[4096];
	ssize_t k;
	snprintf(p, sizeof p, "%s/maildrop/%s", spool, id);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return NULL;
	fstat(fd, st);
	buf_init(&b);
	while ((k = read(fd, tmp, sizeof tmp)) > 0)
		buf_add(&b, tmp, (size_t)k);
	close(fd);
	*len = b.len;
	return buf_detach(&b);
}

static void env_basic(struct maildrop_env *e)
{
	maildrop_env_init(e);
	e->uid = 1000;
	e->time = 1700000000;
	maildrop_env_set_sender(e, "bob@example.org");
	maildrop_env_add_rcpt(e, "a@b");
	maildrop_env_add_rcpt(e, "c");
	maildrop_env_set_origin(e, "test uid=1000");
}

/* read back file id: the envelope parses and the body is as expected */
static void check_file(const char *id, const char *body)
{
	size_t len, off;
	struct stat st;
	char *s = slurp(id, &len, &st);
	struct maildrop_env e;
	T_CHECK(s != NULL);
	if (!s)
		return;
	T_EQ_INT(st.st_mode & 07777, MAILDROP_FILE_MODE);
	T_EQ_INT(maildrop_parse_env(s, len, &e, &off), 0);
	T_EQ_STR(e.sender, "bob@example.org");
	T_EQ_INT(e.nrcpt, 2);
	T_EQ_STR(s + off, body);
	T_EQ_INT(len - off, strlen(body));
	maildrop_env_free(&e);
	free(s);
}

struct wcase {
	const char *chunks[4];
	const char *body;
};

static const struct wcase wcases[] = {
	{ { "a\r\nb\r\n", NULL }, "a\nb\n" },
	{ { "a\r", "\nb\r", "c", NULL }, "a\nb\rc\n" },
	{ { "no final newline", NULL }, "no final newline\n" },
	{ { "cut CR\r", NULL }, "cut CR\n" },
	{ { "", NULL }, "" },
	{ { "\r", "\r", "\n", NULL }, "\r\n" },
	{ { "x\r\r\n", NULL }, "x\r\n" },
	{ { "lf only\n\n", NULL }, "lf only\n\n" },
};

static void test_write_table(void)
{
	for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++) {
		struct maildrop_env e;
		struct maildrop_err err;
		struct maildrop_w *w;
		char id[MAILDROP_IDSZ];
		env_basic(&e);
		T_EQ_INT(maildrop_open(&w, spool, (i & 1) ? NULL : &e, &err), 0);
		for (int k = 0; k < 4 && wcases[i].chunks[k]; k++)
			T_EQ_INT(maildrop_put(w, wcases[i].chunks[k], strlen(wcases[i].chunks[k])), 0);
		if (i & 1)     /* the deferred-envelope path, as tern-queue uses it */
			T_EQ_INT(maildrop_set_env(w, &e), 0);
		T_EQ_INT(maildrop_commit(w, id, sizeof id), 0);
		T_CHECK(strncmp(id, "tmp.", 4) != 0 && id[0] != '.');
		check_file(id, wcases[i].body);
		maildrop_env_free(&e);
	}
	T_EQ_INT(count_files("tmp."), 0);
	T_EQ_INT(count_files(NULL), (int)(sizeof wcases / sizeof wcases[0]));
}

static void test_write_fd(void)
{
	int p[2];
	char id[MAILDROP_IDSZ];
	struct maildrop_env e;
	struct maildrop_err err;
	static const char msg[] = "Subject: piped\r\n\r\nbody\r\n";
	T_EQ_INT(pipe(p), 0);
	T_EQ_INT(write(p[1], msg, sizeof msg - 1), (long)(sizeof msg - 1));
	close(p[1]);
	env_basic(&e);
	T_EQ_INT(maildrop_write(spool, &e, p[0], "X-Top: 1\n", 9, id, sizeof id, &err), 0);
	close(p[0]);
	check_file(id, "X-Top: 1\nSubject: piped\n\nbody\n");
	maildrop_env_free(&e);
	/* a bad fd is a read error and leaves nothing behind */
	int before = count_files(NULL);
	env_basic(&e);
	T_EQ_INT(maildrop_write(spool, &e, 999, NULL, 0, id, sizeof id, &err), -1);
	T_EQ_INT(err.kind, MAILDROP_EREAD);
	T_EQ_INT(count_files(NULL), before);
	maildrop_env_free(&e);
}

static void test_write_errors(void)
{
	struct maildrop_env e;
	struct maildrop_err err;
	char id[MAILDROP_IDSZ], big[MAILDROP_MAXADDR + 2];
	int before = count_files(NULL);
	env_basic(&e);
	char nospool[300];
	snprintf(nospool, sizeof nospool, "%s/nonexistent", spool);
	T_EQ_INT(maildrop_write(nospool, &e, -1, "x\n", 2, id, sizeof id, &err), -1);
	T_EQ_INT(err.kind, MAILDROP_ENOQUEUE);
	T_EQ_INT(err.sys_errno, ENOENT);
	T_CHECK(strstr(err.text, "nonexistent/maildrop") != NULL);
	maildrop_env_add_rcpt(&e, "bad\r\nrcpt");
	T_EQ_INT(maildrop_write(spool, &e, -1, "x\n", 2, id, sizeof id, &err), -1);
	T_EQ_INT(err.kind, MAILDROP_EENV);
	T_EQ_INT(maildrop_env_check(&e, NULL), -1);
	T_EQ_STR(e.why, "CR or LF in a value");
	maildrop_env_free(&e);
	env_basic(&e);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	maildrop_env_add_rcpt(&e, big);
	T_EQ_INT(maildrop_write(spool, &e, -1, "x\n", 2, id, sizeof id, &err), -1);
	T_EQ_INT(err.kind, MAILDROP_ETOOLONG);
	maildrop_env_free(&e);
	maildrop_env_init(&e);
	maildrop_env_set_sender(&e, "");
	T_EQ_INT(maildrop_write(spool, &e, -1, "x\n", 2, id, sizeof id, &err), -1);
	T_EQ_INT(err.kind, MAILDROP_EENV);
	maildrop_env_free(&e);
	T_EQ_INT(count_files(NULL), before);
	/* abort removes the file; commit without an envelope is refused */
	struct maildrop_w *w;
	T_EQ_INT(maildrop_open(&w, spool, NULL, &err), 0);
	T_EQ_INT(maildrop_put(w, "x", 1), 0);
	T_EQ_INT(count_files("tmp."), 1);
	T_CHECK(strstr(maildrop_tmppath(w), "/maildrop/tmp.") != NULL);
	maildrop_abort(w);
	T_EQ_INT(maildrop_open(&w, spool, NULL, &err), 0);
	T_EQ_INT(maildrop_commit(w, id, sizeof id), -1);
	T_EQ_INT(err.kind, MAILDROP_EINTERNAL);
	T_EQ_INT(count_files(NULL), before);
}

static void test_parse_fd(void)
{
	char p[400], id[MAILDROP_IDSZ];
	struct maildrop_env e, g;
	struct maildrop_err err;
	off_t off;
	env_basic(&e);
	for (int i = 0; i < 3000; i++)       /* an envelope bigger than the first read */
		maildrop_env_add_rcpt(&e, "someone.with.a.long.name@example.org");
	T_EQ_INT(maildrop_write(spool, &e, -1, "body\n", 5, id, sizeof id, &err), 0);
	snprintf(p, sizeof p, "%s/maildrop/%s", spool, id);
	int fd = open(p, O_RDONLY);
	T_EQ_INT(maildrop_parse_fd(fd, &g, &off), 0);
	T_EQ_INT(g.nrcpt, 3002);
	char b[8] = { 0 };
	T_EQ_INT(pread(fd, b, sizeof b, off), 5);
	T_EQ_STR(b, "body\n");
	close(fd);
	maildrop_env_free(&g);
	maildrop_env_free(&e);
	fd = open("/dev/null", O_RDONLY);
	T_EQ_INT(maildrop_parse_fd(fd, &g, &off), -1);
	T_EQ_STR(g.why, "empty file");
	close(fd);
}

static void rmtree(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", spool);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", spool);
}

static void run(void)
{
	test_parse_table();
	test_parse_fields();
	test_parse_limits();
	snprintf(spool, sizeof spool, "/tmp/test_maildrop.XXXXXX");
	if (!mkdtemp(spool)) {
		T_CHECK(!"mkdtemp");
		return;
	}
	char d[300];
	snprintf(d, sizeof d, "%s/maildrop", spool);
	T_EQ_INT(mkdir(d, 01733), 0);
	test_write_table();
	test_write_fd();
	test_write_errors();
	test_parse_fd();
	rmtree();
}

T_MAIN(run)
