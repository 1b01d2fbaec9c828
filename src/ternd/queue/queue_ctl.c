/* queue_ctl — the queue role's management side: operations on messages asked by the control
 * role (M_Q_OP: remove, hold, release, schedule, kill, requeue, move, copy, sender and
 * recipient edits, flush), listings (M_Q_LIST), reading an entry (M_Q_READ), and the queue
 * stages of Bongo's protocol: a message waits at each stage that has an agent (M_Q_AGENTS,
 * M_Q_STAGE_PUSH, M_Q_STAGE_DONE) before it is routed.
 * Owns: the set of stages with agents. Trusts: the control role's requests after validation;
 * every change goes through the journal like any other state change (doc/QUEUE.md). */
#include "ternd/queue/queue.h"
#include "ternd/queue/queue_fs.h"
#include "ternd/proto.h"
#include "ternd/role.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXSTAGE 999

static uint32_t *agents;          /* stages with an agent, ascending */
static size_t nagents;

/* ---- stages ------------------------------------------------------------------------------ */

static int next_agent_stage(uint32_t from, uint32_t *stage)
{
	for (size_t i = 0; i < nagents; i++)
		if (agents[i] >= from) {
			*stage = agents[i];
			return 1;
		}
	return 0;
}

static void record(struct qmsg *m, struct buf *rec, int sync)
{
	queue_journal_add(m, rec, sync);
	buf_reset(rec);
}

static void push_stage(struct qmsg *m, uint32_t stage)
{
	struct msg out;
	char id[17];
	env_idstr(m->env.id, id);
	m->waiting_stage = 1;
	msg_init(&out, M_Q_STAGE_PUSH, 0);
	msg_u64(&out, m->env.id);
	msg_u64(&out, stage);
	chan_send(queue_ch_control, &out);
	log_info("event=stage_wait id=%s stage=%u", id, stage);
}

/* Move m through the stages from `from` on: wait at the first one with an agent, or end the
 * pipeline (an S record with done = 1) and route. */
static void stage_advance(struct qmsg *m, uint32_t from)
{
	struct buf rec;
	uint32_t st;
	buf_init(&rec);
	m->waiting_stage = 0;
	if (queue_ch_control && from <= MAXSTAGE && next_agent_stage(from, &st)) {
		if (st != m->env.stage) {
			env_rec_stage(&rec, st, 0);
			record(m, &rec, 0);
		}
		push_stage(m, st);
	} else {
		env_rec_stage(&rec, m->env.stage, 1);
		record(m, &rec, 1);
		for (uint32_t i = 0; i < m->env.nslots; i++)
			queue_route_slot(m, i);
	}
	buf_free(&rec);
}

/* Before the commit: with no agent at or after its stage, the entry is born past the stage
 * pipeline (the header says so), which costs nothing. */
void queue_ctl_precommit(struct qmsg *m)
{
	uint32_t st;
	if (!queue_ch_control || !next_agent_stage(m->env.stage, &st))
		m->env.staged = 1;
}

void queue_ctl_committed(struct qmsg *m)
{
	if (m->env.held)
		return;
	if (m->env.staged) {
		for (uint32_t i = 0; i < m->env.nslots; i++)
			queue_route_slot(m, i);
		return;
	}
	stage_advance(m, m->env.stage);
}

static void repush(struct qmsg *m, void *arg)
{
	uint32_t st;
	(void)st;
	if (m->env.staged || m->env.held)
		return;
	/* pushed again (control drops duplicates) or, if its agent left, moved on */
	stage_advance(m, m->env.stage);
}

static void on_agents(struct msg_reader *r)
{
	struct msg_reader v = *r;                   /* whole or not at all */
	uint64_t n = msg_get_u64(&v);
	for (uint64_t i = 0; i < n && !v.err; i++)
		(void)msg_get_u64(&v);
	if (msg_done(&v) < 0) {
		r->err = 1;                             /* dropped; the codec logs it */
		return;
	}
	n = msg_get_u64(r);
	free(agents);
	agents = NULL;
	nagents = 0;
	if (n > MAXSTAGE + 1)
		return;
	agents = xcalloc(n ? n : 1, sizeof *agents);
	for (uint64_t i = 0; i < n && !r->err; i++) {
		uint64_t st = msg_get_u64(r);
		if (st <= MAXSTAGE)
			agents[nagents++] = (uint32_t)st;
	}
	for (size_t i = 1; i < nagents; i++)          /* ascending (insertion sort: tiny) */
		for (size_t j = i; j > 0 && agents[j - 1] > agents[j]; j--) {
			uint32_t t = agents[j]; agents[j] = agents[j - 1]; agents[j - 1] = t;
		}
	log_info("event=agents stages=%zu", nagents);
	queue_foreach(repush, NULL);                /* held entries whose agent came back */
}

static void on_stage_done(struct msg_reader *r)
{
	uint64_t id = msg_get_u64(r), stage = msg_get_u64(r), verdict = msg_get_u64(r);
	struct qmsg *m = msg_done(r) == 0 ? queue_msg_get(id) : NULL;
	if (!m || m->env.staged || stage != m->env.stage)
		return;
	char ids[17];
	env_idstr(id, ids);
	log_info("event=stage_done id=%s stage=%" PRIu64 " verdict=%s", ids, stage,
	         verdict == SV_NEXT ? "next" : verdict == SV_HOLD ? "hold" : "gone");
	if (verdict == SV_NEXT)
		stage_advance(m, (uint32_t)stage + 1);
	else if (verdict == SV_GONE && !m->inflight && !m->routing && !m->bouncing && !m->dirty)
		queue_remove(m);
	else
		m->waiting_stage = 0;                    /* held at its stage until agents change */
}

/* ---- operations -------------------------------------------------------------------------- */

struct lctx { struct qmsg **v; size_t n, cap; };
static void collect(struct qmsg *m, void *arg);

struct opctx { uint64_t op; const char *a1, *a2; size_t count; struct buf rec; };

static void forget(struct qmsg *m, int op)
{
	struct msg out;
	msg_init(&out, M_SCHED_CTL, 0);
	msg_u64(&out, (uint64_t)op);
	msg_u64(&out, m->env.id);
	chan_send(queue_ch_sched, &out);
}

static int is_live(const struct slot *s) { return s->state == SL_UNROUTED || s->state == SL_ROUTED; }

static void op_kill_slots(struct qmsg *m, const char *channel, const char *host, struct opctx *o)
{
	int any = 0;
	for (uint32_t i = 0; i < m->env.nslots; i++) {
		struct slot *s = &m->env.slots[i];
		if (!is_live(s) || (m->sf[i] & SF_INFLIGHT))
			continue;
		if (channel && (s->state != SL_ROUTED || strcmp(s->t.channel, channel) != 0 ||
		                strcmp(s->t.host, host) != 0) &&
		    !(s->state == SL_ROUTED && strcmp(s->t.channel, channel) == 0 &&
		      channel_is_local(&queue_cfg->channels, channel) && strcmp(s->t.user, host) == 0))
			continue;
		queue_fail_slot(m, i, "4.4.7", "Message expired by the postmaster: I'm not going to "
		                "try again");
		any = 1;
	}
	if (any) {
		o->count++;
		forget(m, 0);
		queue_check_done(m);
	}
}

static void op_requeue(struct qmsg *m, struct opctx *o)
{
	size_t n = m->env.nslots;
	int any = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct slot *s = &m->env.slots[i];
		if (s->state != SL_ROUTED || (m->sf[i] & SF_INFLIGHT))
			continue;
		char *addr = xstrdup(s->t.address && *s->t.address ? s->t.address : s->rcpt);
		env_rec_drop(&o->rec, i);
		record(m, &o->rec, 0);
		env_rec_add(&o->rec, addr);
		record(m, &o->rec, 1);
		free(addr);
		any = 1;
	}
	if (any) {
		o->count++;
		forget(m, 0);
		for (uint32_t i = 0; i < m->env.nslots; i++)
			queue_route_slot(m, i);
	}
}

static void op_hold(struct qmsg *m, int held, struct opctx *o)
{
	if (m->env.held == held)
		return;
	env_rec_hold(&o->rec, held);
	record(m, &o->rec, 1);
	o->count++;
	if (held)
		forget(m, 0);
	else if (!m->env.staged)
		stage_advance(m, m->env.stage);
	else
		for (uint32_t i = 0; i < m->env.nslots; i++)
			queue_route_slot(m, i);     /* routed slots go back to the scheduler */
}

static void op_rcpt(struct qmsg *m, int add, const char *addr, struct opctx *o)
{
	size_t before = o->count;
	if (add) {
		env_rec_add(&o->rec, addr);
		record(m, &o->rec, 1);
		if (m->env.staged && !m->env.held)
			queue_route_slot(m, (uint32_t)m->env.nslots - 1);
		o->count++;
		return;
	}
	for (uint32_t i = 0; i < m->env.nslots; i++) {
		struct slot *s = &m->env.slots[i];
		if (!is_live(s) || (m->sf[i] & SF_INFLIGHT) ||
		    (strcmp(s->rcpt, addr) != 0 && !(s->t.address && strcmp(s->t.address, addr) == 0)))
			continue;
		env_rec_drop(&o->rec, i);
		record(m, &o->rec, 1);
		o->count++;
	}
	if (o->count > before) {
		forget(m, 0);
		for (uint32_t i = 0; i < m->env.nslots; i++)
			queue_route_slot(m, i);     /* re-announce the slots that remain */
		queue_check_done(m);
	}
}

static void op_fail_rcpt(struct qmsg *m, struct opctx *o)
{
	size_t before = o->count;
	for (uint32_t i = 0; i < m->env.nslots; i++) {
		struct slot *s = &m->env.slots[i];
		if (!is_live(s) || (m->sf[i] & SF_INFLIGHT) ||
		    (strcmp(s->rcpt, o->a1) != 0 && !(s->t.address && strcmp(s->t.address, o->a1) == 0)))
			continue;
		queue_fail_slot(m, i, "5.7.1", *o->a2 ? o->a2 : "Returned to the sender by a queue agent");
		o->count++;
	}
	if (o->count > before) {
		forget(m, 0);
		for (uint32_t i = 0; i < m->env.nslots; i++)
			queue_route_slot(m, i);     /* re-announce the slots that remain */
		queue_check_done(m);
	}
}

static void apply_one(struct qmsg *m, void *arg)
{
	struct opctx *o = arg;
	switch (o->op) {
	case QOP_REMOVE:
		/* not while a delivery, a route, a bounce or an unreported result is pending:
		 * count 0, and the caller tries later */
		if (!m->inflight && !m->routing && !m->bouncing && !m->dirty) {
			forget(m, 0);
			queue_remove(m);
			o->count++;
		}
		break;
	case QOP_HOLD: op_hold(m, 1, o); break;
	case QOP_RELEASE: op_hold(m, 0, o); break;
	case QOP_SCHEDULE: forget(m, 1); o->count++; break;
	case QOP_KILL: op_kill_slots(m, NULL, NULL, o); break;
	case QOP_KILL_THREAD: op_kill_slots(m, o->a1, o->a2, o); break;
	case QOP_REQUEUE: op_requeue(m, o); break;
	case QOP_ADD_RCPT: op_rcpt(m, 1, o->a1, o); break;
	case QOP_DEL_RCPT: op_rcpt(m, 0, o->a1, o); break;
	case QOP_FAIL_RCPT: op_fail_rcpt(m, o); break;
	case QOP_SET_SENDER:
		env_rec_sender(&o->rec, o->a1);
		record(m, &o->rec, 1);
		o->count++;
		break;
	case QOP_MOVE: {
		uint64_t st;
		if (str_to_u64(o->a1, 0, MAXSTAGE, &st) < 0)
			break;
		env_rec_stage(&o->rec, (uint32_t)st, 0);
		record(m, &o->rec, 1);
		if (!m->env.held && !m->inflight && !m->routing)
			stage_advance(m, (uint32_t)st);
		o->count++;
		break;
	}
	}
}

static void op_reply(struct chan *c, uint32_t id, int status, size_t count, const char *text,
                     uint64_t newid)
{
	struct msg out;
	msg_init(&out, M_Q_OP_RESULT, id);
	msg_u64(&out, (uint64_t)status);
	msg_u64(&out, count);
	msg_str(&out, text);
	msg_u64(&out, newid);
	chan_send(c, &out);
}

/* QCOPY: a new message with the same data and envelope (its original recipients), at a stage */
static int op_copy(struct qmsg *m, const char *stage, struct chan *c, uint32_t reqid)
{
	uint64_t st = 0, nid;
	if (*stage && str_to_u64(stage, 0, MAXSTAGE, &st) < 0)
		return QS_BADARG;
	int in = queue_fs_open_data(m->env.id), out = in >= 0 ? queue_fs_create_data(&nid) : -1;
	struct stat sb;
	int ok = in >= 0 && out >= 0 && fstat(in, &sb) == 0;
	for (off_t off = 0; ok && off < sb.st_size;) {
		ssize_t n = copy_file_range(in, &off, out, NULL, (size_t)(sb.st_size - off), 0);
		ok = n > 0;
	}
	if (in >= 0)
		close(in);
	if (!ok) {
		if (out >= 0) {
			close(out);
			queue_fs_discard_uncommitted(nid);
		}
		return errno == ENOSPC ? QS_NOSPACE : QS_ERROR;
	}
	struct qmsg *n = queue_new_msg();
	n->env.id = nid;
	n->env.arrival = queue_now();
	n->env.sender = xstrdup(m->env.sender);
	n->env.kind = m->env.kind;
	struct buf o;
	buf_init(&o);
	char ids[17];
	env_idstr(m->env.id, ids);
	buf_printf(&o, "copy of %s", ids);
	n->env.origin = buf_detach(&o);
	for (size_t i = 0; i < m->env.norig; i++)
		env_add_rcpt(&n->env, m->env.slots[i].rcpt);
	n->env.norig = n->env.nslots;
	n->env.stage = (uint32_t)st;
	queue_commit_add(PC_CTL, n, out, c, reqid, NULL, 0);
	return QS_OK;
}

static void on_op(struct chan *c, uint32_t id, struct msg_reader *r)
{
	struct opctx o = { .op = msg_get_u64(r) };
	uint64_t msgid = msg_get_u64(r);
	o.a1 = msg_get_str(r);
	o.a2 = msg_get_str(r);
	buf_init(&o.rec);
	if (msg_done(r) < 0 || o.op < QOP_REMOVE || o.op > QOP_FAIL_RCPT) {
		op_reply(c, id, QS_BADARG, 0, "bad request", 0);
		return;
	}
	if (o.op == QOP_FLUSH) {          /* deferred routes too (a directory that is back) */
		queue_reroute_all();
		struct msg out;
		msg_init(&out, M_SCHED_FLUSH, 0);
		chan_send(queue_ch_sched, &out);
		op_reply(c, id, QS_OK, 0, "flush started", 0);
		return;
	}
	struct qmsg *m = msgid ? queue_msg_get(msgid) : NULL;
	int every = o.op == QOP_REMOVE || o.op == QOP_SCHEDULE || o.op == QOP_KILL ||
	            o.op == QOP_KILL_THREAD || o.op == QOP_REQUEUE || o.op == QOP_HOLD ||
	            o.op == QOP_RELEASE;
	if (!msgid && !every) {
		op_reply(c, id, QS_BADARG, 0, "this operation needs a message", 0);
		return;
	}
	if (msgid && !m) {
		op_reply(c, id, QS_NOENT, 0, "no such message", 0);
		return;
	}
	if (o.op == QOP_COPY) {
		int st = op_copy(m, o.a1, c, id);
		if (st != QS_OK)
			op_reply(c, id, st, 0, st == QS_NOSPACE ? "disk space low" : "cannot copy", 0);
		return;                          /* replied once the copy is committed */
	}
	if (m)
		apply_one(m, &o);
	else {
		/* every message: collect first, since an operation may remove the one it acts on */
		struct lctx l = { NULL, 0, 0 };
		queue_foreach(collect, &l);
		for (size_t i = 0; i < l.n; i++)
			apply_one(l.v[i], &o);
		free(l.v);
	}
	buf_free(&o.rec);
	op_reply(c, id, QS_OK, o.count, o.count ? "done" : "nothing to do", 0);
}

/* ---- listing and reading ------------------------------------------------------------------ */

static void collect(struct qmsg *m, void *arg)
{
	struct lctx *l = arg;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = m;
}

static int by_arrival(const void *a, const void *b)
{
	const struct qmsg *x = *(struct qmsg *const *)a, *y = *(struct qmsg *const *)b;
	if (x->env.arrival != y->env.arrival)
		return x->env.arrival < y->env.arrival ? -1 : 1;
	return x->env.id < y->env.id ? -1 : x->env.id > y->env.id;
}

static void list_one(struct msg *out, struct qmsg *m)
{
	struct stat sb;
	int fd = queue_fs_open_data(m->env.id);
	uint64_t size = (fd >= 0 && fstat(fd, &sb) == 0) ? (uint64_t)sb.st_size : 0;
	if (fd >= 0)
		close(fd);
	size_t n = 0;
	for (size_t i = 0; i < m->env.nslots; i++)
		n += m->env.slots[i].state != SL_EXPANDED;
	msg_u64(out, m->env.id);
	msg_u64(out, (uint64_t)m->env.arrival);
	msg_u64(out, size);
	msg_str(out, m->env.sender);
	msg_u64(out, (uint64_t)m->env.kind);
	msg_u64(out, (uint64_t)m->env.held);
	msg_u64(out, m->env.stage);
	msg_u64(out, n);
	for (size_t i = 0; i < m->env.nslots; i++) {
		const struct slot *s = &m->env.slots[i];
		if (s->state == SL_EXPANDED)
			continue;
		msg_str(out, s->t.address && *s->t.address ? s->t.address : s->rcpt);
		msg_u64(out, (uint64_t)s->state);
		msg_u64(out, s->attempts);
		msg_u64(out, (uint64_t)s->next);
		msg_str(out, s->diag);
	}
}

static void on_list(struct chan *c, uint32_t id, struct msg_reader *r)
{
	uint64_t off = msg_get_u64(r), lim = msg_get_u64(r);
	struct lctx l = { NULL, 0, 0 };
	if (msg_done(r) < 0)
		return;                                 /* dropped; the codec logs it */
	queue_foreach(collect, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, by_arrival);
	struct msg out;
	msg_init(&out, M_Q_LIST_RESULT, id);
	msg_u64(&out, l.n);
	size_t from = off < l.n ? (size_t)off : l.n;
	size_t cnt = l.n - from;
	if (lim && cnt > lim)
		cnt = (size_t)lim;
	if (cnt > 10000)
		cnt = 10000;                    /* keep one reply well under the codec's limit */
	msg_u64(&out, cnt);
	for (size_t i = 0; i < cnt; i++)
		list_one(&out, l.v[from + i]);
	chan_send(c, &out);
	free(l.v);
}

static void on_read(struct chan *c, uint32_t id, struct msg_reader *r)
{
	uint64_t msgid = msg_get_u64(r);
	struct qmsg *m = msg_done(r) == 0 ? queue_msg_get(msgid) : NULL;
	char *text = NULL;
	size_t len = 0;
	int fd = m ? queue_fs_open_data(msgid) : -1;
	struct stat sb;
	struct msg out;
	msg_init(&out, M_Q_READ_RESULT, id);
	if (!m || fd < 0 || fstat(fd, &sb) < 0 || queue_fs_read_env(msgid, &text, &len) < 0) {
		if (fd >= 0)
			close(fd);
		msg_u64(&out, m ? QS_ERROR : QS_NOENT);
		msg_str(&out, "");
		msg_u64(&out, 0);
		msg_u64(&out, 0);
	} else {
		struct buf t;                      /* the file, then records not yet written */
		buf_init(&t);
		buf_add(&t, text, len);
		buf_add(&t, m->journal.p ? m->journal.p : "", m->journal.len);
		msg_u64(&out, QS_OK);
		msg_str(&out, t.p);
		buf_free(&t);
		msg_u64(&out, (uint64_t)sb.st_size);
		msg_u64(&out, m->env.stage);
		msg_fd(&out, fd);
	}
	free(text);
	chan_send(c, &out);
}

void queue_ctl_copy_committed(struct chan *c, uint32_t reqid, uint64_t newid, int ok)
{
	op_reply(c, reqid, ok ? QS_OK : QS_ERROR, ok, ok ? "copied" : "copy failed", ok ? newid : 0);
}

int queue_ctl_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r)
{
	switch (type) {
	case M_Q_OP: on_op(c, id, r); return 1;
	case M_Q_LIST: on_list(c, id, r); return 1;
	case M_Q_READ: on_read(c, id, r); return 1;
	case M_Q_AGENTS: on_agents(r); return 1;
	case M_Q_STAGE_DONE: on_stage_done(r); return 1;
	default: return 0;
	}
}
