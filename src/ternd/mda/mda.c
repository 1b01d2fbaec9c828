/* mda — the local delivery role: bookkeeping for tern-local runs and, for the prog
 * transport, the runs of a channel's program (mda_prog.c). For each local M_DELIVER from
 * the queue it asks the parent to fork tern-local under the recipient's uid (M_FORK_LOCAL),
 * reads the one line the child prints, waits for its exit status (M_CHILD_EXIT) and reports
 * a per-recipient result to the queue (M_DELIVERED), mapping qmail-local's exit codes:
 * 0 delivered, 100 permanent, anything else (111, a signal, a crash) temporary.
 * Owns: the jobs in progress. Trusts: the queue for what to deliver, the parent for the
 * fork and for a restarted queue's channel (M_PEER_NEW); the child's output only as bounded,
 * sanitised text. Never runs user programs. When the queue dies the jobs it gave finish
 * unreported (the queue redoes them); the parent's channel closing ends the role. */
#include "ternd/role.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "ternd/ipc_acl.h"
#include "ternd/mda/mda_prog.h"
#include "mail/channel.h"
#include "lib/ev.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_MAX 1000

struct job {
	struct hnode h;               /* key = job number */
	uint64_t reqjob, msgid, idx;  /* the queue's request, message and slot */
	char out[OUT_MAX + 1];
	size_t outlen;
	int pipefd;
	struct ev *rev;
	int have_exit, eof;
	int orphan;                   /* asked by a queue that has died since: no report */
	int status;
	char addr[256];
};

static struct config *cfg;
static struct chan *ch_queue, *ch_parent;
static struct hmap jobs;
static uint64_t job_seq;

/* one recipient's result (ternd/dreq.h): a local delivery's temporary failure is the
 * recipient's (a full mailbox, a busy program), never the destination's */
static void report(uint64_t reqjob, uint64_t msgid, uint64_t idx, int st, const char *diag)
{
	struct msg out;
	struct dres x = { .idx = idx, .st = st, .scope = DSCOPE_RCPT, .diag = diag, .remote = "" };
	dres_begin(&out, reqjob, msgid, 1);
	dres_put(&out, &x);
	chan_send(ch_queue, &out);
}

static void clean_line(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

static void job_finish(struct job *j)
{
	if (!j->have_exit || !j->eof)
		return;
	int st, code = -1;
	char diag[OUT_MAX + 64];
	j->out[j->outlen] = '\0';
	clean_line(j->out);
	if (WIFEXITED(j->status)) {
		code = WEXITSTATUS(j->status);
		st = code == 0 ? D_OK : code == 100 ? D_PERM : D_TEMP;
		snprintf(diag, sizeof diag, "%s", *j->out ? j->out : code == 0 ? "delivered" :
		         "tern-local failed without a message");
	} else {
		st = D_TEMP;
		snprintf(diag, sizeof diag, "tern-local crashed (signal %d)%s%s",
		         WIFSIGNALED(j->status) ? WTERMSIG(j->status) : 0, *j->out ? ": " : "", j->out);
	}
	if (!j->orphan)
		report(j->reqjob, j->msgid, j->idx, st, diag);
	hmap_del(&jobs, j->h.key);
	if (j->rev)
		ev_free(j->rev);
	if (j->pipefd >= 0)
		close(j->pipefd);
	free(j);
}

static void job_read(int fd, short what, void *arg)
{
	struct job *j = arg;
	char tmp[512];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			ev_del(j->rev);
			j->eof = 1;
			job_finish(j);
			return;
		}
		size_t room = OUT_MAX - j->outlen;
		size_t take = (size_t)n < room ? (size_t)n : room;
		memcpy(j->out + j->outlen, tmp, take);
		j->outlen += take;
	}
}

/* one tern-local run for one recipient of a request; fd is the message (kept open) */
static void deliver_one(const struct dreq *d, const struct target *tp, uint64_t idx, int fd)
{
	struct target t = *tp;
	struct job *j = xcalloc(1, sizeof *j);
	j->h.key = ++job_seq;
	j->reqjob = d->job;
	j->msgid = d->msgid;
	j->idx = idx;
	j->pipefd = -1;
	snprintf(j->addr, sizeof j->addr, "%s", t.address);
	hmap_put(&jobs, &j->h);
	const char *dash = *t.ext ? "-" : "";
	const char *argv[20];
	char arrival[24];
	struct buf quota;
	size_t argc = 0;
	argv[argc++] = "tern-local";
	argv[argc++] = "-c";
	if (strcmp(cfg->dotqmailcheck, "qmail") == 0)
		argv[argc++] = "-q";       /* qmail-local's .qmail rule (doc/LOCAL.md) */
	buf_init(&quota);              /* the quota settings (doc/LOCAL.md "Quotas"), before -p */
	buf_printf(&quota, "%llu,%llu,%llu,%s", (unsigned long long)cfg->quotadefaultsize,
	           (unsigned long long)cfg->quotadefaultcount, (unsigned long long)cfg->quotabounce,
	           cfg->quotawarning ? cfg->quotawarning : "");
	argv[argc++] = "-Q";
	argv[argc++] = quota.p;
	if (t.profile && *t.profile) {
		argv[argc++] = "-p";       /* a directory user's delivery profile */
		argv[argc++] = t.profile;
	}
	snprintf(arrival, sizeof arrival, "%lld", (long long)d->arrival);
	if (d->arrival > 0) {
		argv[argc++] = "-A";       /* the message's arrival: its age for quotabounce */
		argv[argc++] = arrival;
	}
	const char *rest[] = { t.user, t.home, t.local, dash, t.ext, t.domain, d->sender,
	                       cfg->aliasempty, t.instruction };
	for (size_t i = 0; i < (*t.instruction ? 9u : 8u); i++)
		argv[argc++] = rest[i];
	struct msg out;
	msg_init(&out, M_FORK_LOCAL, 0);
	msg_u64(&out, j->h.key);
	msg_u64(&out, t.uid);
#ifdef TERN_TEST
	const char *tg = getenv("TERN_TEST_MDA_FORK_GID");   /* test: a compromised mda's request */
	if (tg && *tg)
		t.gid = strtoull(tg, NULL, 10);
#endif
	msg_u64(&out, t.gid);
	msg_str(&out, t.home);
	msg_u64(&out, argc);
	for (size_t i = 0; i < argc; i++)
		msg_str(&out, argv[i]);
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0) {
		report(j->reqjob, j->msgid, j->idx, D_TEMP, "cannot duplicate the message descriptor");
		hmap_del(&jobs, j->h.key);
		free(j);
		msg_discard(&out);
		buf_free(&quota);
		return;
	}
	msg_fd(&out, dup);
	chan_send(ch_parent, &out);
	buf_free(&quota);
}

/* M_DELIVER (ternd/dreq.h): each recipient of a local-transport request is its own
 * tern-local run (text after each address, seed 004), reported on its own */
static void on_deliver(struct msg_reader *r, int fd)
{
	struct dreq d;
	if (dreq_get(r, &d) < 0 || fd < 0) {   /* a malformed one: the codec logs it */
		if (fd >= 0)
			close(fd);
		if (!r->err)
			log_err("event=bad_message peer=queue type=deliver");
		struct msg out;                    /* refused whole: the queue defers its recipients */
		dres_begin(&out, d.job, d.msgid, 0);
		chan_send(ch_queue, &out);
		dreq_free(&d);
		return;
	}
#ifdef TERN_TEST
	ipc_acl_forge_results(ch_queue, d.msgid);   /* a compromised mda (test_ipc_attack.py) */
#endif
	const struct channel_row *row = channel_find(&cfg->channels, d.channel);
	if (row && row->transport == CHANNEL_T_PROG) {   /* one run for them all (doc/PROG.md) */
		mda_prog_deliver(&d, row, fd);
		close(fd);
		dreq_free(&d);
		return;
	}
	for (size_t k = 0; k < d.n; k++) {
		if (!row || row->transport != CHANNEL_T_LOCAL)
			report(d.job, d.msgid, d.r[k].idx, D_TEMP, "channel not run by the local delivery agent (#4.3.5)");
		else
			deliver_one(&d, &d.r[k].t, d.r[k].idx, fd);
	}
	close(fd);
	dreq_free(&d);
}

static void on_forked(struct msg_reader *r, int fd)
{
	uint64_t jn = msg_get_u64(r), st = msg_get_u64(r);
	struct job *j = (struct job *)hmap_get(&jobs, jn);
	if (msg_done(r) == 0 && !j && mda_prog_forked(jn, st, fd))
		return;
	if (!j || msg_done(r) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (st != 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		report(j->reqjob, j->msgid, j->idx, D_TEMP, "could not start tern-local");
		hmap_del(&jobs, jn);
		free(j);
		return;
	}
	j->pipefd = fd;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	j->rev = ev_new(fd, EV_R | EV_PERSIST, job_read, j);
	ev_add(j->rev, -1);
}

static void on_exit_status(struct msg_reader *r)
{
	uint64_t jn = msg_get_u64(r), ws = msg_get_u64(r);
	struct job *j = (struct job *)hmap_get(&jobs, jn);
	if (msg_done(r) == 0 && !j && mda_prog_exited(jn, ws))
		return;
	if (!j || msg_done(r) < 0)
		return;
	j->status = (int)ws;
	j->have_exit = 1;
	job_finish(j);
}

static void on_close(struct chan *c, void *arg);
static void peer_new(struct msg_reader *r, int fd);

static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd, void *arg)
{
	if (type == M_PEER_NEW && c == ch_parent) {
		peer_new(r, fd);
		return;
	}
	switch (type) {
	case M_DELIVER: on_deliver(r, fd); return;
	case M_FORKED: on_forked(r, fd); return;
	case M_CHILD_EXIT: on_exit_status(r); break;
	default: log_err("event=unexpected_message peer=%s type=%u", chan_peer(c), type);
	}
	if (fd >= 0)
		close(fd);
}

static void on_close(struct chan *c, void *arg)
{
	if (c == ch_parent) {
		log_info("event=parent_gone; exiting");
		exit(0);
	}
	if (role_peer_lost(c) < 0)
		exit(1);
	mda_prog_orphan_all();
	size_t b = 0;
	for (struct hnode *h = NULL; (h = hmap_next(&jobs, &b, h));)
		((struct job *)h)->orphan = 1;
}

/* a restarted queue: its channel replaces the old one */
static void peer_new(struct msg_reader *r, int fd)
{
	int peer = role_peer_new(R_MDA, r, fd);
	if (peer < 0)
		return;
	if (peer != R_QUEUE) {
		log_warn("event=unexpected_peer peer=%s", role_name(peer));
		close(fd);
		return;
	}
	mda_prog_orphan_all();
	size_t b = 0;
	for (struct hnode *h = NULL; (h = hmap_next(&jobs, &b, h));)
		((struct job *)h)->orphan = 1;
	chan_free(ch_queue);
	ch_queue = chan_new(fd, "queue", on_recv, on_close, NULL);
	log_info("event=peer_new peer=queue");
}

static void on_term(int sig, short what, void *arg) { ev_exit(); }

int mda_main(struct role_ctx *ctx)
{
	cfg = ctx->cfg;
	ev_init();
	hmap_init(&jobs);
	mda_prog_init(cfg, &ch_queue, &ch_parent, &job_seq);
	ch_queue = chan_new(ctx->peer[R_QUEUE], "queue", on_recv, on_close, NULL);
	ch_parent = chan_new(ctx->peer[R_PARENT], "parent", on_recv, on_close, NULL);
	struct ev *s = ev_signal(SIGTERM, on_term, NULL);
	ev_add(s, -1);
	signal(SIGPIPE, SIG_IGN);
	ev_run();
	return 0;
}
