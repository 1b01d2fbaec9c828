/* mta_driver — test driver for tests/e2e/test_mta.py: runs the mta role (mta_main) in a
 * child process and plays its queue and lookup peers over socketpairs.
 *
 * usage: mta_driver CONFIG < SCRIPT      (a wall-clock limit: MTA_DRIVER_TIMEOUT s, 60)
 * SCRIPT, one command a line (# comments):
 *   mx NAME ok HOST=ADDR...      the fake lookup's answer for NAME (any mode); names not
 *   mx NAME nodomain|nullmx|temp listed resolve to NAME=127.0.0.1
 *   job HOST SENDER FILE RCPT... send M_DELIVER (SENDER "-" = <>; FILE = the message)
 *   cjob HOST SENDER FILE RCPT... the same on channel "cluster" (doc/CLUSTER.md)
 *   chjob CHANNEL HOST SENDER FILE RCPT...  the same on channel CHANNEL (any word)
 *   wait                         until every job sent so far has its result
 *   sleep MS
 *   term                         SIGTERM to the role; wait for it to exit
 * At the end of the script: wait for the results, close the queue channel and the parent's
 * (the role exits when its parent goes away), reap the role.
 * Output, one line each: "resolve NAME MODE", "result job=J rcpt=R status=ok|temp|perm
 * remote=R scope=rcpt|site diag=D", "exit N". The role logs to stderr. Trusts: its caller, the test. */
#include "ternd/mta/mta.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "ternd/role.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/msg.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXJOBS 64
#define MAXRCPT 16
#define MAXMX   32

struct djob { char *rcpt[MAXRCPT]; size_t n; int done; };
struct dmx { char *name; int status; char *hosts[8], *addrs[8]; size_t n; };

static struct djob jobs[MAXJOBS];
static size_t njobs, outstanding;
static struct dmx mx[MAXMX];
static size_t nmx;
static char **lines;
static size_t nlines, cur;
static int waiting, ending, nclosed;
static pid_t child;
static int parentfd = -1;          /* our end of the role's parent channel */
static struct chan *chq, *chl;
static struct ev *sleep_ev, *close_ev;

static void script_run(void);
static void on_close_queue(int fd, short what, void *arg);

static void driver_finish(void)
{
	int st = 0;
	waitpid(child, &st, 0);
	printf("exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	exit(0);
}

static void on_result(struct msg_reader *r)
{
	uint64_t job = msg_get_u64(r), msgid = msg_get_u64(r), n = msg_get_u64(r);
	struct djob *j = job >= 1 && job <= njobs ? &jobs[job - 1] : NULL;
	(void)msgid;
	static const char *names[] = { "pending", "ok", "temp", "perm" };
	for (uint64_t i = 0; i < n && !r->err; i++) {
		uint64_t idx = msg_get_u64(r), st = msg_get_u64(r), scope = msg_get_u64(r);
		const char *diag = msg_get_str(r), *remote = msg_get_str(r);
		printf("result job=%llu rcpt=%s status=%s remote=%s scope=%s diag=%s\n",
		       (unsigned long long)job, j && idx < j->n ? j->rcpt[idx] : "?",
		       st < 4 ? names[st] : "?", *remote ? remote : "-",
		       scope == DSCOPE_SITE ? "site" : "rcpt", diag);
	}
	if (msg_done(r) < 0 || !j || j->done)
		printf("bad_result job=%llu\n", (unsigned long long)job);
	if (j && !j->done) {
		j->done = 1;
		outstanding--;
	}
	fflush(stdout);
	if (outstanding == 0 && waiting) {
		waiting = 0;
		script_run();
	}
}

static void answer_mx(uint32_t id, const char *name, uint64_t mode)
{
	struct msg out;
	const struct dmx *m = NULL;
	printf("resolve %s %llu\n", name, (unsigned long long)mode);
	fflush(stdout);
	for (size_t i = 0; i < nmx; i++)
		if (strcmp(mx[i].name, name) == 0)
			m = &mx[i];
	msg_init(&out, M_MX_RESULT, id);
	msg_u64(&out, m ? (uint64_t)m->status : MX_OK);
	msg_str(&out, m && m->status ? "fake lookup says so" : "");
	msg_u64(&out, m ? m->n : 1);
	for (size_t i = 0; m && i < m->n; i++) {
		msg_u64(&out, 10 * i);
		msg_str(&out, m->hosts[i]);
		msg_str(&out, m->addrs[i]);
	}
	if (!m) {
		msg_u64(&out, 0);
		msg_str(&out, name);
		msg_str(&out, "127.0.0.1");
	}
	chan_send(chl, &out);
}

static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd,
                    void *arg)
{
	if (type == M_DELIVERED) {
		on_result(r);
	} else if (type == M_MX_RESOLVE) {
		const char *name = msg_get_str(r);
		uint64_t mode = msg_get_u64(r);
		if (msg_done(r) == 0)
			answer_mx(id, name, mode);
		else
			printf("bad_resolve\n");
	} else {
		printf("unexpected type=%u\n", type);
	}
	if (fd >= 0)
		close(fd);
}

/* the role is gone once both channels are closed (each is read to its end first) */
static void on_close(struct chan *c, void *arg)
{
	if (++nclosed < 2)
		return;
	if (outstanding)
		printf("role exited with %zu jobs unanswered\n", outstanding);
	driver_finish();
}

static void cmd_mx(char **f, size_t n)
{
	static const char *st[] = { "ok", "nodomain", "nullmx", "temp" };
	struct dmx *m = &mx[nmx++];
	m->name = f[1];
	for (int i = 0; i < 4; i++)
		if (strcmp(f[2], st[i]) == 0)
			m->status = i;
	for (size_t i = 3; i < n && m->n < 8; i++) {
		char *eq = strchr(f[i], '=');
		if (!eq)
			continue;
		*eq = '\0';
		m->hosts[m->n] = f[i];
		m->addrs[m->n++] = eq + 1;
	}
}

/* f[0] job|cjob, f[1] host...; channel: the last field's word, or NULL for none */
static void cmd_job(char **f, size_t n, const char *channel)
{
	struct djob *j = &jobs[njobs++];
	int fd = open(f[3], O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		perror(f[3]);
		exit(2);
	}
	struct dreq d = { .job = njobs, .msgid = 0x1000 + njobs, .host = f[1],
	                  .channel = (char *)(channel ? channel : "smtp"),
	                  .sender = strcmp(f[2], "-") == 0 ? "" : f[2],
	                  .size = (uint64_t)sb.st_size, .arrival = 0 };
	struct dreq_rcpt rr[MAXRCPT];
	for (size_t i = 4; i < n && j->n < MAXRCPT; i++) {
		j->rcpt[j->n] = f[i];
		rr[j->n] = (struct dreq_rcpt){ .idx = j->n, .t = { .channel = d.channel, .host = f[1],
		          .address = f[i], .user = "", .home = "", .local = "", .ext = "",
		          .domain = "", .instruction = "", .profile = "" } };
		j->n++;
	}
	d.n = j->n;
	d.r = rr;
	struct msg out;
	msg_init(&out, M_DELIVER, 0);
	dreq_put(&out, &d);
	msg_fd(&out, fd);
	chan_send(chq, &out);
	outstanding++;
}

static void on_sleep(int fd, short what, void *arg) { script_run(); }

static int script_cmd(char **f, size_t n)
{
	if (strcmp(f[0], "mx") == 0 && n >= 3 && nmx < MAXMX) {
		cmd_mx(f, n);
	} else if ((strcmp(f[0], "job") == 0 || strcmp(f[0], "cjob") == 0) && n >= 5 && njobs < MAXJOBS) {
		cmd_job(f, n, strcmp(f[0], "cjob") == 0 ? "cluster" : NULL);
	} else if (strcmp(f[0], "chjob") == 0 && n >= 6 && njobs < MAXJOBS) {
		cmd_job(f + 1, n - 1, f[1]);
	} else if (strcmp(f[0], "wait") == 0) {
		if (outstanding) {
			waiting = 1;
			return 1;
		}
	} else if (strcmp(f[0], "sleep") == 0 && n == 2) {
		ev_add(sleep_ev, atol(f[1]));
		return 1;
	} else if (strcmp(f[0], "term") == 0) {
		kill(child, SIGTERM);
		return 1;                              /* on_close reaps it */
	} else {
		fprintf(stderr, "mta_driver: bad line: %s\n", f[0]);
		exit(2);
	}
	return 0;
}

static void script_run(void)
{
	while (cur < nlines) {
		char *f[MAXRCPT + 8], *save = NULL;
		size_t n = 0;
		for (char *t = strtok_r(lines[cur++], " \t", &save); t && n < MAXRCPT + 8;
		     t = strtok_r(NULL, " \t", &save))
			f[n++] = t;
		if (n == 0 || f[0][0] == '#')
			continue;
		if (script_cmd(f, n))
			return;
	}
	if (!ending && outstanding) {
		waiting = 1;
		return;
	}
	ending = 1;
	ev_add(close_ev, 0);                       /* not inside the channel's own callback */
}

static void on_close_queue(int fd, short what, void *arg)
{
	chan_free(chq);
	chq = NULL;
	nclosed++;
	close(parentfd);                           /* the role exits when its parent goes away */
	parentfd = -1;
}

static void read_script(void)
{
	static char text[1 << 16];
	size_t len = fread(text, 1, sizeof text - 1, stdin);
	text[len] = '\0';
	lines = calloc(len + 1, sizeof *lines);
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		lines[nlines++] = l;
}

static int run_child(const char *conf, int q, int l, int p)
{
	struct config cfg;
	struct cfg_errors errs = { .n = 0 };
	log_init("mta", LOG_DEBUG);
	if (config_load(&cfg, conf, &errs) < 0) {
		for (int i = 0; i < errs.n; i++)
			fprintf(stderr, "%s:%d: %s\n", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
		return 78;
	}
	struct role_ctx ctx = { .self = R_MTA, .cfg = &cfg };
	for (int i = 0; i < R_NROLES; i++)
		ctx.peer[i] = -1;
	ctx.peer[R_QUEUE] = q;
	ctx.peer[R_LOOKUP] = l;
	ctx.peer[R_PARENT] = p;
	if (mta_preinit(&cfg) < 0)              /* the TLS client context, as run_role does */
		return 78;
	int rc = mta_main(&ctx);
	config_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	int q[2], l[2], p[2];
	if (argc != 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	read_script();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, q) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, l) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0)
		return 2;
	const char *tmo = getenv("MTA_DRIVER_TIMEOUT");
	child = fork();
	if (child == 0) {
		close(q[0]);
		close(l[0]);
		close(p[0]);
		exit(run_child(argv[1], q[1], l[1], p[1]));
	}
	close(q[1]);
	close(l[1]);
	close(p[1]);
	parentfd = p[0];
	alarm(tmo ? (unsigned)atoi(tmo) : 60);     /* SIGALRM kills the driver; the role sees EOF */
	signal(SIGPIPE, SIG_IGN);
	log_init("driver", LOG_INFO);
	ev_init();
	sleep_ev = ev_new(-1, 0, on_sleep, NULL);
	close_ev = ev_new(-1, 0, on_close_queue, NULL);
	chq = chan_new(q[0], "mta", on_recv, on_close, NULL);
	chl = chan_new(l[0], "mta", on_recv, on_close, NULL);
	script_run();
	ev_run();
	driver_finish();
	return 0;
}
