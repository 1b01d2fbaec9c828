/* mda_prog — the prog transport (MMDF's external channel interface, seed 004, doc/PROG.md):
 * one run of a channel's program for a request's recipients together. The mda asks the
 * parent to start the run by the channel's name (M_FORK_PROG): the program, its account
 * and its time limit are the parent's to take from its own channel row. Over the socket the
 * parent hands back, the mda writes the address list (one per line, then end of file) and
 * reads the program's replies (src/mail/progchan.c); when the parent reports the exit
 * (M_CHILD_EXIT) every recipient gets its result in one M_DELIVERED.
 * Owns: the runs in progress. Trusts: the queue for what to deliver; the parent for the
 * run; the program's replies only as progchan parses and sanitises them. */
#include "ternd/mda/mda_prog.h"
#include "ternd/proto.h"
#include "mail/channel.h"
#include "mail/progchan.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct prun {
	struct hnode h;               /* key = job number */
	uint64_t reqjob, msgid;
	size_t n;
	uint64_t *idx;                /* the queue's slots, in address-list order */
	struct buf addrs;             /* the address list still to write from off */
	size_t off;
	int sock;
	struct ev *rev, *wev;
	struct progchan pc;
	long long started_ms;
	uint64_t timeout;             /* the row's, to tell its kill from another signal */
	int orphan;
	char channel[CHANNEL_NAMEMAX + 1];
};

static const struct config *mda_prog_cfg;
static struct chan **mda_prog_queue, **mda_prog_parent;
static uint64_t *mda_prog_seq;
static struct hmap mda_prog_runs;

void mda_prog_init(const struct config *c, struct chan **queue, struct chan **parent,
                   uint64_t *seq)
{
	mda_prog_cfg = c;
	mda_prog_queue = queue;
	mda_prog_parent = parent;
	mda_prog_seq = seq;
	hmap_init(&mda_prog_runs);
}

/* one result to the queue outside a run (refused before it started) */
static void mda_prog_report_one(uint64_t reqjob, uint64_t msgid, uint64_t idx, int st,
                                int scope, const char *diag)
{
	struct msg out;
	struct dres x = { .idx = idx, .st = st, .scope = scope, .diag = diag, .remote = "" };
	dres_begin(&out, reqjob, msgid, 1);
	dres_put(&out, &x);
	chan_send(*mda_prog_queue, &out);
}

static void mda_prog_free(struct prun *p)
{
	hmap_del(&mda_prog_runs, p->h.key);
	if (p->rev)
		ev_free(p->rev);
	if (p->wev)
		ev_free(p->wev);
	if (p->sock >= 0)
		close(p->sock);
	buf_free(&p->addrs);
	progchan_free(&p->pc);
	free(p->idx);
	free(p);
}

/* every recipient of the run, in one M_DELIVERED */
static void mda_prog_report(struct prun *p)
{
	static const int st[] = { [PROGCHAN_PENDING] = D_TEMP, [PROGCHAN_OK] = D_OK,
	                          [PROGCHAN_TEMP] = D_TEMP, [PROGCHAN_PERM] = D_PERM };
	struct msg out;
	if (p->orphan)
		return;
	dres_begin(&out, p->reqjob, p->msgid, p->n);
	for (size_t i = 0; i < p->n; i++) {
		const struct progchan_rcpt *r = &p->pc.r[i];
		struct dres x = { .idx = p->idx[i], .st = st[r->st], .diag = r->text, .remote = "",
		                  .scope = r->st == PROGCHAN_TEMP && r->scope == PROGCHAN_SITE ?
		                           DSCOPE_SITE : DSCOPE_RCPT };
		dres_put(&out, &x);
	}
	chan_send(*mda_prog_queue, &out);
}

static void mda_prog_read(int fd, short what, void *arg)
{
	struct prun *p = arg;
	char tmp[1024];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			ev_del(p->rev);
			return;
		}
		progchan_feed(&p->pc, tmp, (size_t)n);
	}
}

/* the address list, as the program takes it; then end of file on its addressfd */
static void mda_prog_write(int fd, short what, void *arg)
{
	struct prun *p = arg;
	while (p->off < p->addrs.len) {
		ssize_t n = write(fd, p->addrs.p + p->off, p->addrs.len - p->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			break;                     /* it closed its end: the replies will tell */
		p->off += (size_t)n;
	}
	ev_del(p->wev);
	shutdown(fd, SHUT_WR);
}

/* the run the parent would refuse for this sender or host (a leading '-', a blank, a control
 * byte): refused here, permanently — retrying cannot change the envelope */
static int mda_prog_args_ok(const struct dreq *d, const struct channel_row *row)
{
	char why[160], name[24], diag[300];
	snprintf(name, sizeof name, "%016llx", (unsigned long long)d->msgid);
	char **argv = progchan_argv(row->program, d->host, d->sender, name, why, sizeof why);
	if (argv) {
		progchan_argv_free(argv);
		return 1;
	}
	snprintf(diag, sizeof diag, "program channel %s cannot be given this message: %s (#5.1.7)",
	         row->name, why);
	log_warn("event=prog_refused id=%016llx channel=%s reason=\"%s\"",
	         (unsigned long long)d->msgid, row->name, why);
	for (size_t k = 0; k < d->n; k++)
		mda_prog_report_one(d->job, d->msgid, d->r[k].idx, D_PERM, DSCOPE_RCPT, diag);
	return 0;
}

void mda_prog_deliver(const struct dreq *d, const struct channel_row *row, int fd)
{
	if (!mda_prog_args_ok(d, row))
		return;
	struct prun *p = xcalloc(1, sizeof *p);
	p->idx = xcalloc(d->n ? d->n : 1, sizeof *p->idx);
	p->sock = -1;
	buf_init(&p->addrs);
	for (size_t k = 0; k < d->n; k++) {
		if (!progchan_address_ok(d->r[k].t.address)) {
			mda_prog_report_one(d->job, d->msgid, d->r[k].idx, D_PERM, DSCOPE_RCPT,
			                    "an address that cannot be one line of a program's address "
			                    "list (#5.1.3)");
			continue;
		}
		p->idx[p->n++] = d->r[k].idx;
		buf_printf(&p->addrs, "%s\n", d->r[k].t.address);
	}
	if (p->n == 0) {
		free(p->idx);
		buf_free(&p->addrs);
		free(p);
		return;
	}
	p->h.key = ++*mda_prog_seq;
	p->reqjob = d->job;
	p->msgid = d->msgid;
	p->timeout = row->timeout;
	snprintf(p->channel, sizeof p->channel, "%s", row->name);
	progchan_init(&p->pc, p->n);
	hmap_put(&mda_prog_runs, &p->h);
	char name[24];
	snprintf(name, sizeof name, "%016llx", (unsigned long long)d->msgid);
	struct msg out;
	msg_init(&out, M_FORK_PROG, 0);
	msg_u64(&out, p->h.key);
	const char *chname = row->name;
#ifdef TERN_TEST
	const char *tc = getenv("TERN_TEST_MDA_PROG_CHANNEL");   /* test: a compromised mda */
	if (tc && *tc)
		chname = tc;
#endif
	msg_str(&out, chname);
	msg_str(&out, d->host);
	msg_str(&out, d->sender);
	msg_str(&out, name);
#ifdef TERN_TEST
	const char *tu = getenv("TERN_TEST_MDA_PROG_UID");       /* test: asks for an account */
	if (tu && *tu)
		msg_u64(&out, strtoull(tu, NULL, 10));
#endif
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0) {
		msg_discard(&out);
		progchan_end(&p->pc, 0, 0, 0, 0);
		snprintf(p->pc.r[0].text, sizeof p->pc.r[0].text, "cannot duplicate the message");
		mda_prog_report(p);
		mda_prog_free(p);
		return;
	}
	msg_fd(&out, dup);
	chan_send(*mda_prog_parent, &out);
}

int mda_prog_forked(uint64_t jn, uint64_t st, int fd)
{
	struct prun *p = (struct prun *)hmap_get(&mda_prog_runs, jn);
	if (!p)
		return 0;
	if (st != 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		for (size_t i = 0; i < p->n; i++) {   /* refused or failed: the whole run waits */
			p->pc.r[i].st = PROGCHAN_TEMP;
			p->pc.r[i].scope = PROGCHAN_SITE;
			snprintf(p->pc.r[i].text, sizeof p->pc.r[i].text, "could not start the program "
			         "of channel %s (#4.3.0)", p->channel);
		}
		mda_prog_report(p);
		mda_prog_free(p);
		return 1;
	}
	p->sock = fd;
	p->started_ms = ev_now_ms();
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	p->rev = ev_new(fd, EV_R | EV_PERSIST, mda_prog_read, p);
	p->wev = ev_new(fd, EV_W | EV_PERSIST, mda_prog_write, p);
	ev_add(p->rev, -1);
	ev_add(p->wev, -1);
	return 1;
}

int mda_prog_exited(uint64_t jn, uint64_t ws)
{
	struct prun *p = (struct prun *)hmap_get(&mda_prog_runs, jn);
	if (!p)
		return 0;
	int st = (int)ws;
	if (p->sock >= 0)
		mda_prog_read(p->sock, EV_R, p);   /* whatever it wrote before it ended */
	int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	int timedout = sig == SIGKILL &&
	               ev_now_ms() - p->started_ms + 1000 >= (long long)p->timeout * 1000;
	progchan_end(&p->pc, WIFEXITED(st), WIFEXITED(st) ? WEXITSTATUS(st) : 0, sig, timedout);
	log_info("event=prog_done job=%llu channel=%s recipients=%zu %s=%d%s",
	         (unsigned long long)jn, p->channel, p->n, WIFEXITED(st) ? "exit" : "signal",
	         WIFEXITED(st) ? WEXITSTATUS(st) : sig, timedout ? " timeout=yes" : "");
	mda_prog_report(p);
	mda_prog_free(p);
	return 1;
}

void mda_prog_orphan_all(void)
{
	size_t b = 0;
	for (struct hnode *h = NULL; (h = hmap_next(&mda_prog_runs, &b, h));)
		((struct prun *)h)->orphan = 1;
}
