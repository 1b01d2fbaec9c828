/* ternctl — the admin command. Also answers as sendmail, mailq and newaliases by argv[0].
 * Owns: the command table and the read-only views of the spool (mailq / qread / qstat read
 * env/ and data/ directly, as qmail-qread does; they need the queue user's rights).
 * Trusts: the config file; reads the spool through the envelope parser, never trusting it. */
#include "mail/config.h"
#include "mail/envelope.h"
#include "mail/aliases.h"
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

static const char *slot_word(const struct slot *s)
{
	switch (s->state) {
	case SL_DONE: return "done";
	case SL_FAILED: return "failed";
	case SL_UNROUTED: return "unrouted";
	default: return s->attempts ? "deferred" : "pending";
	}
}

/* mailq / ternctl qread: one block per message, sendmail's mailq shape */
static int cmd_mailq(struct config *cfg, int argc, char **argv)
{
	struct qentry *q;
	long n = load_queue(cfg, &q);
	if (n < 0)
		return 1;
	if (n == 0) {
		printf("Mail queue is empty\n");
		return 0;
	}
	for (long i = 0; i < n; i++) {
		char id[17], date[64];
		time_t t = (time_t)q[i].e.arrival;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(date, sizeof date, "%a %b %d %H:%M:%S", &tm);
		env_idstr(q[i].id, id);
		printf("%s %9lld %s  <%s>\n", id, (long long)q[i].size, date, q[i].e.sender);
		for (size_t s = 0; s < q[i].e.nslots; s++) {
			const struct slot *sl = &q[i].e.slots[s];
			if (sl->state == SL_EXPANDED)
				continue;
			printf("  %-8s <%s>%s%s\n", slot_word(sl), sl->rcpt, sl->diag ? "  " : "",
			       sl->diag ? sl->diag : "");
		}
		env_free(&q[i].e);
	}
	printf("-- %ld message%s in queue\n", n, n == 1 ? "" : "s");
	free(q);
	return 0;
}

/* qmail-qstat */
static int cmd_qstat(struct config *cfg, int argc, char **argv)
{
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
	char path[4096];
	long drop = 0;
	snprintf(path, sizeof path, "%s/maildrop", cfg->spool);
	DIR *d = opendir(path);
	for (struct dirent *de; d && (de = readdir(d));)
		drop += de->d_name[0] != '.' && strncmp(de->d_name, "tmp.", 4) != 0;
	if (d)
		closedir(d);
	printf("messages in queue: %ld\nrecipients still to deliver: %ld\n"
	       "messages in maildrop not yet picked up: %ld\n", n, pend, drop);
	return 0;
}

static pid_t read_pid(struct config *cfg)
{
	char path[4096], buf[32] = "";
	snprintf(path, sizeof path, "%s/ternd.pid", cfg->spool);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof buf, f))
		buf[0] = '\0';
	fclose(f);
	return (pid_t)atol(buf);
}

static int cmd_flush(struct config *cfg, int argc, char **argv)
{
	pid_t pid = read_pid(cfg);
	if (pid <= 0 || kill(pid, SIGUSR1) < 0) {
		fprintf(stderr, "ternctl: ternd does not seem to run (%s/ternd.pid): %s\n", cfg->spool,
		        pid <= 0 ? "no pid file" : strerror(errno));
		return 1;
	}
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
	struct aliases *a = aliases_open(cfg->aliases, &errs);
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

struct cmd { const char *name; int (*fn)(struct config *, int, char **); const char *help; };
static const struct cmd cmds[] = {
	{ "showctl", cmd_showctl, "print the effective configuration and what each key means" },
	{ "mailq", cmd_mailq, "list the queue: messages, recipients and their state" },
	{ "qread", cmd_mailq, "same as mailq (qmail-qread)" },
	{ "qstat", cmd_qstat, "summarise the queue (qmail-qstat)" },
	{ "flush", cmd_flush, "try every deferred recipient now" },
	{ "newaliases", cmd_newaliases, "check the aliases file" },
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
			if (load(&cfg) < 0)
				return 78;
			return cmds[i].fn(&cfg, argc, argv);
		}
	fprintf(stderr, "ternctl: unknown command %s\n", cmd);
	return usage();
}
