/* ternctl — the admin command. Also answers as sendmail, mailq and newaliases by argv[0].
 * Owns: the command table; the local tools (showctl, newaliases, cdb, digest); and the
 * read-only views of the spool that mailq / qread / qstat fall back to when ternd does not
 * run (they read env/ and data/ directly, as qmail-qread does, and need the queue user's
 * rights). While ternd runs, mailq, qread, qstat and flush — and every command of
 * admin_client.c — go through its control socket (doc/ADMIN.md), whose rights come from
 * the caller's uid and groups. Exit codes: 0 ok, 1 not found / refused, 64 usage,
 * 75 ternd not reachable (or a temporary failure), 78 configuration error; verify and
 * ldaplookup: 0 deliverable, 1 permanent, 2 temporary (doc/ADMIN.md).
 * Trusts: the config file; reads the spool through the envelope parser, never trusting it. */
#include "mail/config.h"
#include "mail/envelope.h"
#include "mail/aliases.h"
#include "mail/digest.h"
#include "mail/mailq2.h"
#include "mail/route.h"
#include "mail/table.h"
#include "ternctl/admin_client.h"
#include "ternctl/sendmail.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *conf_path(void)
{
	const char *e = getenv("TERN_CONF");
	if (e && *e)
		return e;
	return access("/etc/tern/tern.conf", F_OK) == 0 ? "/etc/tern/tern.conf" : NULL;
}

static int load(struct config *cfg)
{
	struct cfg_errors errs = { .n = 0 };
	if (config_load(cfg, conf_path(), &errs) == 0)
		return 0;
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%s:%d: %s\n", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
	return -1;
}

static int cmd_showctl(struct config *cfg, int argc, char **argv)
{
	config_show(cfg, stdout);
	return 0;
}

struct qentry { uint64_t id; struct envelope e; off_t size; };

static int read_file(int dfd, const char *name, struct buf *b)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char tmp[65536];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0)
		buf_add(b, tmp, (size_t)n);
	close(fd);
	return n < 0 ? -1 : 0;
}

static int qe_cmp(const void *a, const void *b)
{
	const struct qentry *x = a, *y = b;
	return x->e.arrival < y->e.arrival ? -1 : x->e.arrival > y->e.arrival;
}

/* load every committed message; returns count or -1 */
static long load_queue(struct config *cfg, struct qentry **out)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/env", cfg->spool);
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "ternctl: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "%s/data", cfg->spool);
	int datafd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct qentry *q = NULL;
	long n = 0;
	for (struct dirent *de; (de = readdir(d));) {
		struct buf b;
		size_t valid;
		char err[64];
		uint64_t id;
		if (env_idparse(de->d_name, &id) < 0)
			continue;
		buf_init(&b);
		q = xrealloc(q, (size_t)(n + 1) * sizeof *q);
		if (read_file(dirfd(d), de->d_name, &b) == 0 &&
		    env_parse(b.p ? b.p : "", b.len, &q[n].e, &valid, err, sizeof err) == 0) {
			struct stat st;
			q[n].id = id;
			q[n].size = (datafd >= 0 && fstatat(datafd, de->d_name, &st, 0) == 0) ? st.st_size : 0;
			n++;
		}
		buf_free(&b);
	}
	closedir(d);
	if (datafd >= 0)
		close(datafd);
	qsort(q, (size_t)n, sizeof *q, qe_cmp);
	*out = q;
	return n;
}

/* one spool entry as the plain listing struct of mailq2.h (the same text as ternd's) */
static void qe_view(const struct qentry *q, struct mq2_qmsg *m)
{
	memset(m, 0, sizeof *m);
	m->msgid = q->id;
	m->arrival = (uint64_t)q->e.arrival;
	m->size = (uint64_t)q->size;
	m->sender = q->e.sender ? q->e.sender : "";
	m->kind = (uint64_t)q->e.kind;
	m->held = (uint64_t)q->e.held;
	m->stage = q->e.stage;
	m->slots = xcalloc(q->e.nslots ? q->e.nslots : 1, sizeof *m->slots);
	for (size_t i = 0; i < q->e.nslots; i++) {
		const struct slot *sl = &q->e.slots[i];
		if (sl->state == SL_EXPANDED)
			continue;
		m->slots[m->nslots++] = (struct mq2_qslot){
			sl->t.address && *sl->t.address ? sl->t.address : sl->rcpt, (uint64_t)sl->state,
			sl->attempts, (uint64_t)sl->next, sl->diag ? sl->diag : "" };
	}
}

/* mailq / ternctl qread without ternd: one block per message, sendmail's mailq shape */
static int mailq_local(struct config *cfg)
{
	struct qentry *q;
	long n = load_queue(cfg, &q);
	if (n < 0)
		return 1;
	struct buf b;
	buf_init(&b);
	for (long i = 0; i < n; i++) {
		struct mq2_qmsg m;
		qe_view(&q[i], &m);
		mailq2_fmt_mailq(&b, &m);
		free(m.slots);
		env_free(&q[i].e);
	}
	mailq2_fmt_mailq_end(&b, (uint64_t)n);
	fwrite(b.p, 1, b.len, stdout);
	buf_free(&b);
	free(q);
	return 0;
}

static int cmd_mailq(struct config *cfg, int argc, char **argv)
{
	int code = admin_client_call(cfg, "show queue", stdout);
	return code == ADMIN_UNREACHABLE ? mailq_local(cfg) : code;
}

/* the maildrop is read by the caller (ternd cannot list it for us) */
static void qstat_maildrop(struct config *cfg)
{
	char path[4096];
	long drop = 0;
	snprintf(path, sizeof path, "%s/maildrop", cfg->spool);
	DIR *d = opendir(path);
	if (!d) {
		printf("messages in maildrop not yet picked up: unknown (%s: %s)\n", path, strerror(errno));
		return;
	}
	for (struct dirent *de; (de = readdir(d));)
		drop += de->d_name[0] != '.' && strncmp(de->d_name, "tmp.", 4) != 0;
	closedir(d);
	printf("messages in maildrop not yet picked up: %ld\n", drop);
}

/* qmail-qstat: from ternd when it runs, else from the spool */
static int cmd_qstat(struct config *cfg, int argc, char **argv)
{
	int code = admin_client_call(cfg, "qstat", stdout);
	if (code != ADMIN_UNREACHABLE) {
		if (code == 0)
			qstat_maildrop(cfg);
		return code;
	}
	struct qentry *q;
	long n = load_queue(cfg, &q), pend = 0;
	if (n < 0)
		return 1;
	for (long i = 0; i < n; i++) {
		for (size_t s = 0; s < q[i].e.nslots; s++)
			pend += q[i].e.slots[s].state == SL_ROUTED || q[i].e.slots[s].state == SL_UNROUTED;
		env_free(&q[i].e);
	}
	free(q);
	struct buf b;
	buf_init(&b);
	mailq2_fmt_qstat(&b, (uint64_t)n, (uint64_t)pend);
	fwrite(b.p, 1, b.len, stdout);
	buf_free(&b);
	qstat_maildrop(cfg);
	return 0;
}

static int cmd_flush(struct config *cfg, int argc, char **argv)
{
	int code = admin_client_call(cfg, "flush", stdout);
	if (code != ADMIN_UNREACHABLE)
		return code;
	code = admin_client_signal_ternd(cfg, SIGUSR1);
	if (code != 0)
		return code;
	printf("flush requested: every deferred recipient is tried now\n");
	return 0;
}

static int cmd_newaliases(struct config *cfg, int argc, char **argv)
{
	if (!cfg->aliases || !*cfg->aliases) {
		printf("newaliases: no aliases table is configured (key aliases)\n");
		return 0;
	}
	struct cfg_errors errs = { .n = 0 };
	struct aliases *a = aliases_open(cfg->aliases, route_aliases_owner(cfg), &errs);
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%s:%d: %s\n", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
	if (!a || errs.n) {
		fprintf(stderr, "newaliases: %s has errors\n", cfg->aliases);
		if (a)
			aliases_free(a);
		return 75;
	}
	printf("newaliases: %s is valid; ternd reads it directly (no database to rebuild) and "
	       "notices changes within a second\n", cfg->aliases);
	aliases_free(a);
	return 0;
}

/* ternctl cdb TEXTFILE CDBFILE: `key value` lines into a cdb (qmail-cdb) */
static int cmd_cdb(struct config *cfg, int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: ternctl cdb TEXTFILE CDBFILE\n");
		return 64;
	}
	if (table_cdb_build(argv[1], argv[2]) < 0) {
		fprintf(stderr, "ternctl: %s: not built (see the errors above)\n", argv[2]);
		return 1;
	}
	return 0;
}

static int digest_usage(void)
{
	fprintf(stderr, "usage: ternctl digest [-s BASE64SALT | -S HEXSALT] FORMAT PASSWORD\n"
	                "       ternctl digest -v HASH [FORMAT] PASSWORD\n"
	                "FORMAT: SSHA SHA SMD5 MD5 crypt (for crypt, -s is the crypt(3) setting, "
	                "e.g. '$6$salt$')\n");
	return 64;
}

/* the salt given with -s / -S into salt; -1 if malformed */
static long digest_salt(int fmt, const char *b64, const char *hex, unsigned char *salt, size_t sz)
{
	if (hex)
		return digest_hex_decode(hex, salt, sz);
	if (fmt == DG_CRYPT) {
		size_t n = strlen(b64);
		if (n >= sz)
			return -1;
		memcpy(salt, b64, n);
		return (long)n;
	}
	return digest_b64_decode(b64, strlen(b64), salt, sz);
}

/* qmail-ldap's digest: print the hash of PASSWORD, or check it against HASH (-v) */
static int cmd_digest(struct config *cfg, int argc, char **argv)
{
	const char *b64 = NULL, *hex = NULL, *hash = NULL;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "+s:S:v:")) != -1)
		switch (c) {
		case 's': b64 = optarg; break;
		case 'S': hex = optarg; break;
		case 'v': hash = optarg; break;
		default: return digest_usage();
		}
	int left = argc - optind;
	if ((b64 && hex) || left < 1 || left > 2 || (!hash && left != 2))
		return digest_usage();
	int fmt = left == 2 ? digest_fmt_parse(argv[optind]) : -1;
	if (left == 2 && fmt < 0) {
		fprintf(stderr, "ternctl: unknown format %s (SSHA SHA SMD5 MD5 crypt PLAIN)\n", argv[optind]);
		return 64;
	}
	const char *pw = argv[argc - 1];
	if (hash) {
		int r = digest_verify(hash, pw);
		if (r < 0)
			fprintf(stderr, "ternctl: %s is not a hash tern knows\n", hash);
		printf("%s\n", r > 0 ? "match" : "no match");
		return r > 0 ? 0 : 1;
	}
	unsigned char salt[DIGEST_SALT_MAX + 1];
	long sl = (b64 || hex) ? digest_salt(fmt, b64, hex, salt, sizeof salt - 1) : 0;
	struct buf b;
	buf_init(&b);
	if (sl < 0 || digest_make(fmt, pw, (b64 || hex) ? salt : NULL, (size_t)sl, &b) < 0) {
		fprintf(stderr, "ternctl: bad salt, or the hash could not be made\n");
		buf_free(&b);
		return 64;
	}
	printf("%s\n", b.p);
	buf_free(&b);
	return 0;
}

struct cmd {
	const char *name;
	int (*fn)(struct config *, int, char **);
	int nocfg;                   /* runs without reading the configuration */
	const char *help;
};
static const struct cmd cmds[] = {
	{ "showctl", cmd_showctl, 0, "print the effective configuration and what each key means" },
	{ "mailq", cmd_mailq, 0, "list the queue: messages, recipients and their state" },
	{ "qread", cmd_mailq, 0, "same as mailq (qmail-qread)" },
	{ "qstat", cmd_qstat, 0, "summarise the queue (qmail-qstat)" },
	{ "flush", cmd_flush, 0, "try every deferred recipient now" },
	{ "show", admin_client_cmd, 0, "show queue [--json] | show message ID" },
	{ "remove", admin_client_cmd, 0, "remove ID|all: delete without a bounce" },
	{ "hold", admin_client_cmd, 0, "hold ID: deliver nothing of it until released" },
	{ "release", admin_client_cmd, 0, "release ID: undo hold" },
	{ "schedule", admin_client_cmd, 0, "schedule ID|all: try its recipients now" },
	{ "tcpto", admin_client_cmd, 0, "list remote hosts that timed out (qmail-tcpto)" },
	{ "tcpok", admin_client_cmd, 0, "forget those timeouts (qmail-tcpok)" },
	{ "stats", admin_client_cmd, 0, "counters: messages and recipients in/out, queued, uptime" },
	{ "verify", admin_client_cmd, 0, "verify ADDRESS: would tern accept it, where would it go "
	  "(exit 0 deliverable, 1 permanent, 2 temporary)" },
	{ "ldaplookup", admin_client_cmd, 0, "ldaplookup [-u] [-p] ADDRESS|UID: the directory's entry "
	  "(-u: by uid; -p: check the password read from stdin) and the route" },
	{ "newaliases", cmd_newaliases, 0, "check the aliases file" },
	{ "cdb", cmd_cdb, 1, "cdb TEXTFILE CDBFILE: build a cdb table from `key value` lines" },
	{ "digest", cmd_digest, 1, "digest [-s salt|-S hexsalt] [-v hash] FORMAT PASSWORD" },
};

static int usage(void)
{
	fprintf(stderr, "usage: ternctl COMMAND [ARGS]\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(stderr, "  %-12s %s\n", cmds[i].name, cmds[i].help);
	return 64;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	log_init("ternctl", LOG_WARN);
	if (strcmp(base, "sendmail") == 0)
		return sendmail_main(argc, argv);
	struct config cfg;
	const char *cmd = NULL;
	if (strcmp(base, "mailq") == 0)
		cmd = "mailq";
	else if (strcmp(base, "newaliases") == 0)
		cmd = "newaliases";
	else if (argc >= 2) {
		cmd = argv[1];
		argc--;
		argv++;
	}
	if (!cmd)
		return usage();
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmds[i].name, cmd) == 0) {
			if (!cmds[i].nocfg && load(&cfg) < 0)
				return 78;
			return cmds[i].fn(cmds[i].nocfg ? NULL : &cfg, argc, argv);
		}
	fprintf(stderr, "ternctl: unknown command %s\n", cmd);
	return usage();
}
