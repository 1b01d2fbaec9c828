/* sched — the scheduler role: the in-memory schedule of every deliverable recipient.
 * Owns: the IPC of the schedule: it decodes what the queue tells it (M_SCHED_ADD,
 * M_SCHED_RESULT, M_SCHED_FLUSH, M_SCHED_CTL, M_SCHED_ETRN), hands it to the core
 * (sched_core.c: threads keyed by (channel, host) as in ZMailer, windows capped by the row's
 * perhost, channel limits, dead destinations, the wake-up heap) with the clock, sends the
 * jobs the core starts as M_SCHED_RUN, and answers M_SCHED_SNAPSHOT from the core's state. It
 * touches no files and no network.
 * Trusts: the queue's messages after validation; it never decides a recipient's fate; the
 * parent for a restarted peer's channel (M_PEER_NEW). A peer that dies is waited for (its
 * replacement arrives from the parent); the parent's channel closing ends the role. */
#include "ternd/role.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "ternd/scheduler/sched_core.h"
#include "mail/channel.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct config *cfg;
static struct chan *ch_queue, *ch_control, *ch_parent;
static struct sched_core core;
static struct ev *wake_ev;
static int64_t started;

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* the core's run callback: M_SCHED_RUN to the queue */
static void run_job(void *arg, const struct sc_thread *t, struct sc_item *const *v, size_t n)
{
	struct msg out;
	msg_init(&out, M_SCHED_RUN, 0);
	msg_u64(&out, v[0]->msgid);
	msg_str(&out, t->channel);
	msg_str(&out, t->host);
	msg_u64(&out, n);
	for (size_t i = 0; i < n; i++)
		msg_u64(&out, v[i]->idx);
	chan_send(ch_queue, &out);
}

static void wake_arm(void)
{
	ev_del(wake_ev);
	int64_t at = sched_core_next_wake(&core);
	if (at < 0)
		return;
	int64_t d = at - now_s();
	ev_add(wake_ev, d <= 0 ? 0 : (long)(d * 1000));
}

static void wake_cb(int fd, short what, void *arg)
{
	sched_core_wake(&core, now_s());
	wake_arm();
}

/* ---- messages from the queue ---------------------------------------------------------------- */

/* 0 if the whole M_SCHED_ADD is well-formed: a malformed one adds nothing (doc/IPC.md) */
static int add_ok(const struct msg_reader *r)
{
	struct msg_reader v = *r;
	(void)msg_get_u64(&v); (void)msg_get_u64(&v); (void)msg_get_str(&v);
	uint64_t n = msg_get_u64(&v);
	for (uint64_t k = 0; k < n && !v.err; k++) {
		(void)msg_get_u64(&v); (void)msg_get_str(&v); (void)msg_get_str(&v);
		(void)msg_get_str(&v); (void)msg_get_u64(&v); (void)msg_get_u64(&v);
	}
	return msg_done(&v);
}

static void on_add(struct msg_reader *r)
{
	if (add_ok(r) < 0) {
		r->err = 1;                   /* dropped; the codec logs it */
		return;
	}
	struct sc_add a;
	a.msgid = msg_get_u64(r);
	a.birth = (int64_t)msg_get_u64(r);
	a.sender = msg_get_str(r);
	uint64_t n = msg_get_u64(r);
	for (uint64_t k = 0; k < n && !r->err; k++) {
		a.idx = msg_get_u64(r);
		a.channel = msg_get_str(r);
		a.host = msg_get_str(r);
		a.domain = msg_get_str(r);
		a.next = (int64_t)msg_get_u64(r);
		a.attempts = msg_get_u64(r);
		if (!r->err)
			(void)sched_core_add(&core, &a);
	}
	wake_arm();
}

static void on_result(struct msg_reader *r)
{
	uint64_t msgid = msg_get_u64(r), idx = msg_get_u64(r), st = msg_get_u64(r);
	int64_t next = (int64_t)msg_get_u64(r);
	const char *diag = msg_get_str(r);
	uint64_t scope = msg_get_u64(r);
	if (msg_done(r) < 0)
		return;                       /* dropped; the codec logs it */
	sched_core_result(&core, msgid, idx, (int)st, next, diag,
	                  scope == DSCOPE_SITE ? DSCOPE_SITE : DSCOPE_RCPT, now_s());
	wake_arm();
}

static void on_etrn(struct chan *c, uint32_t id, struct msg_reader *r)
{
	const char *dom = msg_get_str(r);
	if (msg_done(r) < 0)
		return;                       /* dropped; the codec logs it */
	size_t n = sched_core_etrn(&core, dom, now_s());
	struct msg out;
	msg_init(&out, M_SCHED_ETRN_RESULT, id);
	msg_u64(&out, n);
	chan_send(c, &out);
	wake_arm();
}

/* op 0: forget the message's waiting items (held, removed, expired); in-flight ones end with
 * their result. op 1: make them ready now (ternctl schedule). */
static void on_ctl(struct msg_reader *r)
{
	uint64_t op = msg_get_u64(r), msgid = msg_get_u64(r);
	if (msg_done(r) < 0)
		return;
	sched_core_ctl(&core, op, msgid, now_s());
	wake_arm();
}

/* ---- snapshots for the control role ------------------------------------------------------------ */

static void snap_thread(struct msg *out, const struct sc_thread *t)
{
	uint32_t att = 0;
	int64_t oldest = 0;
	for (const struct sc_item *it = t->ihead; it; it = it->tnext) {
		if (it->attempts > att)
			att = it->attempts;
		if (!oldest || it->sm->birth < oldest)
			oldest = it->sm->birth;
	}
	msg_str(out, t->channel);
	msg_str(out, t->host);
	msg_u64(out, sched_core_thread_msgs(t));
	msg_u64(out, t->nitems);
	msg_u64(out, att);
	msg_u64(out, (uint64_t)oldest);
	msg_u64(out, (uint64_t)sched_core_thread_next(t));
	msg_u64(out, t->inflight);
	msg_u64(out, t->window);
	msg_u64(out, t->perhost);
	msg_u64(out, (uint64_t)t->state);
}

static void snap_items(struct msg *out, const struct sc_thread *t, int64_t now)
{
	msg_u64(out, t ? t->nitems : 0);
	for (const struct sc_item *it = t ? t->ihead : NULL; it; it = it->tnext) {
		msg_u64(out, it->msgid);
		msg_str(out, it->sm->sender);
		msg_u64(out, it->idx);
		msg_u64(out, (uint64_t)(it->sm->birth + (int64_t)cfg->queuelifetime));
		msg_u64(out, (uint64_t)sched_core_item_next(it, now));
		msg_u64(out, (uint64_t)it->lastfeed);
		msg_u64(out, it->attempts);
		msg_str(out, sched_core_item_reason(&core, it));
		msg_str(out, it->diag ? it->diag : "");
	}
}

static void snap_chans(struct msg *out, size_t *total)
{
	size_t listed = 0;
	for (size_t i = 0; i < core.nchans; i++)
		core.chans[i].nthreads = 0;
	*total = 0;
	for (size_t b = 0; b < SC_THREAD_BUCKETS; b++)
		for (struct sc_thread *t = core.threads[b]; t; t = t->hnext) {
			((struct sc_chan *)sched_core_chan_of(&core, t->channel))->nthreads++;
			(*total)++;
		}
	for (size_t i = 0; i < core.nchans; i++)
		listed += core.chans[i].row || core.chans[i].nthreads;   /* the bucket when it has any */
	msg_u64(out, listed);
	for (size_t i = 0; i < core.nchans; i++) {
		if (!core.chans[i].row && !core.chans[i].nthreads)
			continue;
		msg_str(out, core.chans[i].name);
		msg_u64(out, core.chans[i].limit);
		msg_u64(out, core.chans[i].inflight);
		msg_u64(out, core.chans[i].nthreads);
	}
}

static void on_snapshot(struct chan *c, uint32_t id, struct msg_reader *r)
{
	uint64_t kind = msg_get_u64(r);
	const char *channel = msg_get_str(r), *host = msg_get_str(r);
	struct msg out;
	if (msg_done(r) < 0)
		return;                       /* dropped; the codec logs it */
	int64_t now = now_s();
	size_t inflight = 0, total;
	for (size_t i = 0; i < core.nchans; i++)
		inflight += core.chans[i].inflight;
	msg_init(&out, M_SCHED_SNAPSHOT_RESULT, id);
	msg_u64(&out, (uint64_t)now);
	msg_u64(&out, (uint64_t)started);
	msg_u64(&out, core.msgs_in); msg_u64(&out, core.msgs_out);
	msg_u64(&out, core.rcpts_in); msg_u64(&out, core.rcpts_out);
	msg_u64(&out, inflight);
	msg_u64(&out, core.msgs.n);
	msg_u64(&out, core.nitems);
	snap_chans(&out, &total);
	msg_u64(&out, total);
	for (size_t b = 0; b < SC_THREAD_BUCKETS; b++)
		for (struct sc_thread *t = core.threads[b]; t; t = t->hnext)
			snap_thread(&out, t);
	snap_items(&out, kind == 1 ? sched_core_thread_find(&core, channel, host) : NULL, now);
	chan_send(c, &out);
}

static void peer_new(struct msg_reader *r, int fd);

static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd, void *arg)
{
	if (type == M_PEER_NEW && c == ch_parent) {
		peer_new(r, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	switch (type) {
	case M_SCHED_ADD: on_add(r); break;
	case M_SCHED_RESULT: on_result(r); break;
	case M_SCHED_FLUSH:
		if (msg_done(r) == 0) {       /* else dropped; the codec logs it */
			sched_core_flush(&core, now_s());
			wake_arm();
		}
		break;
	case M_SCHED_ETRN: on_etrn(c, id, r); break;
	case M_SCHED_CTL: on_ctl(r); break;
	case M_SCHED_SNAPSHOT: on_snapshot(c, id, r); break;
	default: log_err("event=unexpected_message peer=%s type=%u", chan_peer(c), type);
	}
}

static void on_close(struct chan *c, void *arg)
{
	if (c == ch_parent) {
		log_info("event=parent_gone; exiting");
		exit(0);
	}
	if (role_peer_lost(c) < 0)
		exit(1);
}

/* a restarted control (or queue: in practice every role restarts with the queue) */
static void peer_new(struct msg_reader *r, int fd)
{
	int peer = role_peer_new(R_SCHED, r, fd);
	struct chan **cp = peer == R_QUEUE ? &ch_queue : peer == R_CONTROL ? &ch_control : NULL;
	if (peer < 0)
		return;
	if (!cp) {
		log_warn("event=unexpected_peer peer=%s", role_name(peer));
		close(fd);
		return;
	}
	chan_free(*cp);
	*cp = chan_new(fd, role_name(peer), on_recv, on_close, NULL);
	log_info("event=peer_new peer=%s", role_name(peer));
}

static void on_term(int sig, short what, void *arg) { ev_exit(); }
static void on_alrm(int sig, short what, void *arg)
{
	sched_core_flush(&core, now_s());
	wake_arm();
}

int sched_main(struct role_ctx *ctx)
{
	cfg = ctx->cfg;
	ev_init();
	sched_core_init(&core, &cfg->channels, run_job, NULL);
	wake_ev = ev_new(-1, 0, wake_cb, NULL);
	started = now_s();
	signal(SIGPIPE, SIG_IGN);
	if (ctx->peer[R_CONTROL] >= 0)
		ch_control = chan_new(ctx->peer[R_CONTROL], "control", on_recv, on_close, NULL);
	if (ctx->peer[R_QUEUE] >= 0)
		ch_queue = chan_new(ctx->peer[R_QUEUE], "queue", on_recv, on_close, NULL);
	if (ctx->peer[R_PARENT] >= 0)
		ch_parent = chan_new(ctx->peer[R_PARENT], "parent", on_recv, on_close, NULL);
	struct ev *s1 = ev_signal(SIGTERM, on_term, NULL), *s2 = ev_signal(SIGALRM, on_alrm, NULL);
	ev_add(s1, -1);
	ev_add(s2, -1);
	ev_run();
	return 0;
}
