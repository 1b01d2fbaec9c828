/* queue — the queue role: the only writer of the spool (doc/QUEUE.md is the contract).
 * Owns: message ids, the group commit, the per-recipient journal, routing requests to
 * lookup, delivery hand-off to mda, results, and recovery at start.
 * Trusts: its peers only as far as proto.h's checks go — the codec passes only the types
 * doc/IPC.md lets each peer send, every message is validated and a malformed one is dropped
 * without effect (doc/IPC.md, "Malformed messages"). A peer's death and return are
 * queue_peer.c's. */
#include "ternd/queue/queue.h"
#include "ternd/queue/queue_list.h"
#include "ternd/queue/queue_fs.h"
#include "ternd/queue/queue_pid.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "ternd/role.h"
#include "mail/retry.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct config *queue_cfg;
struct chan *queue_ch_lookup, *queue_ch_sched, *queue_ch_mda, *queue_ch_mta, *queue_ch_control;
static struct hmap msgs;          /* id -> struct qmsg */
static struct hmap opens;         /* id -> struct qopen: data files handed to smtp */
static struct ev *pass_ev, *tick_ev, *stall_ev;
static long stall_ms;             /* back-off of stalled journal writes; 0 = none stalled */
static int pass_stalled;          /* a journal write or sync failed in this pass */
static struct qmsg *dirty_head;
static int use_syncfs = 1;

struct qopen { struct hnode h; int fd; struct chan *c; };   /* c: the peer it was handed to */

struct pcommit {
	struct pcommit *next;
	enum pc_kind kind;
	struct qmsg *m;
	int datafd, envfd;
	struct chan *c;
	uint32_t reqid;
	char dropname[64];
	uint64_t parent;
	int err;                  /* errno of a failure, 0 ok */
};
static struct pcommit *batch_head, **batch_tail = &batch_head;
static size_t batch_n;

void queue_check_done(struct qmsg *m);

int64_t queue_now(void) { return (int64_t)time(NULL); }

/* ---- messages ------------------------------------------------------------------------ */

struct qmsg *queue_new_msg(void)
{
	struct qmsg *m = xcalloc(1, sizeof *m);
	env_init(&m->env);
	buf_init(&m->journal);
	return m;
}

void queue_free_msg(struct qmsg *m)
{
	env_free(&m->env);
	buf_free(&m->journal);
	free(m->sf);
	free(m);
}

struct qmsg *queue_msg_get(uint64_t id) { return (struct qmsg *)hmap_get(&msgs, id); }

void queue_msg_put(struct qmsg *m)
{
	m->h.key = m->env.id;
	hmap_put(&msgs, &m->h);
}

void queue_sf_fit(struct qmsg *m)
{
	if (m->sfcap >= m->env.nslots)
		return;
	size_t n = m->env.cap > m->env.nslots ? m->env.cap : m->env.nslots;
	m->sf = xrealloc(m->sf, n);
	memset(m->sf + m->sfcap, 0, n - m->sfcap);
	m->sfcap = n;
}

void queue_mark_dirty(struct qmsg *m)
{
	if (!m->dirty) {
		m->dirty = 1;
		m->dnext = dirty_head;
		dirty_head = m;
	}
	queue_kick();
}

/* Apply a formatted record to memory and queue it for the journal write. */
int queue_journal_add(struct qmsg *m, struct buf *rec, int sync)
{
	if (env_apply(&m->env, rec->p, rec->len - 1) < 0) {
		char id[17];
		env_idstr(m->env.id, id);
		log_err("event=bug id=%s record=\"%.*s\"", id, (int)rec->len - 1, rec->p);
		return -1;
	}
	queue_sf_fit(m);
	buf_add(&m->journal, rec->p, rec->len);
	m->journal_sync |= sync;
	queue_mark_dirty(m);
	return 0;
}

static const char *slot_host(const struct slot *s)
{
	return channel_is_local(&queue_cfg->channels, s->t.channel) ? s->t.user : s->t.host;
}

static void sched_add(struct qmsg *m, uint32_t *idx, size_t n)
{
	struct msg out;
	msg_init(&out, M_SCHED_ADD, 0);
	msg_u64(&out, m->env.id);
	msg_u64(&out, (uint64_t)m->env.arrival);
	msg_str(&out, m->env.sender);
	msg_u64(&out, n);
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &m->env.slots[idx[i]];
		msg_u64(&out, idx[i]);
		msg_str(&out, s->t.channel);
		msg_str(&out, slot_host(s));
		const char *at = strrchr(s->t.address ? s->t.address : "", '@');
		msg_str(&out, at ? at + 1 : "");
		msg_u64(&out, (uint64_t)s->next);
		msg_u64(&out, s->attempts);
	}
	chan_send(queue_ch_sched, &out);
}

static void sched_result(struct qmsg *m, uint32_t i)
{
	struct slot *s = &m->env.slots[i];
	struct msg out;
	int st = s->state == SL_FAILED ? D_PERM : (s->state == SL_UNROUTED || s->state == SL_ROUTED)
	         ? D_TEMP : D_OK;           /* delivered, expanded or withdrawn: gone */
	msg_init(&out, M_SCHED_RESULT, 0);
	msg_u64(&out, m->env.id);
	msg_u64(&out, i);
	msg_u64(&out, (uint64_t)st);
	msg_u64(&out, (uint64_t)s->next);
	msg_str(&out, s->diag);
	msg_u64(&out, st == D_TEMP && (m->sf[i] & SF_SITE) ? DSCOPE_SITE : DSCOPE_RCPT);
	chan_send(queue_ch_sched, &out);
}

/* After the journal of m is durable: tell the scheduler, then see if m is finished. */
static void msg_after_sync(struct qmsg *m)
{
	uint32_t *add = NULL;
	size_t nadd = 0;
	for (uint32_t i = 0; i < m->env.nslots; i++) {
		if (m->sf[i] & SF_RESULT) {
			m->sf[i] &= (unsigned char)~SF_RESULT;
			sched_result(m, i);
		}
		if ((m->sf[i] & SF_ADD) && !m->routing) {
			/* announced together once every slot is routed, so that the scheduler can
			 * put one message's recipients for one host into one transaction */
			m->sf[i] &= (unsigned char)~SF_ADD;
			if (m->env.slots[i].state == SL_ROUTED) {
				add = xrealloc(add, (nadd + 1) * sizeof *add);
				add[nadd++] = i;
			}
		}
	}
	if (nadd && !m->env.held)
		sched_add(m, add, nadd);
	free(add);
	queue_delay_check(m);
	queue_check_done(m);
}

/* ---- a journal that cannot be written (disk full, EIO) -------------------------------------- */

/* A write or sync failed: the records stay in memory (journal.len / journal_sync) and the
 * message leaves the dirty list — retrying in the very next pass spun on ENOSPC. It is tried
 * again when a new record arrives, at the tick, or when this back-off timer fires (1 s,
 * doubling to 30 s while writes keep failing; back to 1 s once nothing is stalled). */
static void journal_stall(void) { pass_stalled = 1; }

static void journal_stall_arm(void)
{
	pass_stalled = 0;
	if (ev_pending(stall_ev))
		return;
	stall_ms = stall_ms ? (stall_ms * 2 > 30000 ? 30000 : stall_ms * 2) : 1000;
	ev_add(stall_ev, stall_ms);
}

static void stall_cb(int fd, short what, void *arg)
{
	size_t b = 0;
	int any = 0;
	for (struct hnode *h = NULL; (h = hmap_next(&msgs, &b, h));) {
		struct qmsg *m = (struct qmsg *)h;
		if ((m->journal.len || m->journal_sync) && !m->dirty) {
			queue_mark_dirty(m);
			any = 1;
		}
	}
	if (!any)
		stall_ms = 0;                /* everything got written: the next failure starts at 1 s */
}

/* A message whose every slot is final and that needs no bounce does not need its last
 * records: removing its envelope (durably) says the same, and needs no space — this is how
 * delivery frees a full disk. 1 if m was finished (and freed). */
static int journal_finish_by_removal(struct qmsg *m)
{
	if (m->routing || m->inflight || m->bouncing || !env_all_final(&m->env) ||
	    (int64_t)m->env.nperm > m->env.bounced_upto || queue_fs_unlink_env(m->env.id) < 0)
		return 0;
	queue_fs_sync_dir(QD_ENV);       /* if this fails, a crash may deliver again: the window
	                                    of a D record that was not yet durable */
	buf_reset(&m->journal);
	m->journal_sync = 0;
	msg_after_sync(m);               /* tells the scheduler, then queue_remove() */
	return 1;
}

/* Phase 1 of a pass: append every message's pending records. With syncfs the one sync of
 * the pass (batch_run or pass_cb) makes them durable; otherwise each file is fdatasync'ed
 * here. Returns the messages written (their records are not yet known to be durable). */
static struct qmsg *journal_write(int *need_sync)
{
	struct qmsg *list = dirty_head, *done = NULL;
	dirty_head = NULL;
	for (struct qmsg *m = list, *next; m; m = next) {
		next = m->dnext;
		m->dirty = 0;
		if (m->journal.len) {
			if (queue_fs_append(m->env.id, m->journal.p, m->journal.len,
			               m->journal_sync && !use_syncfs) < 0) {
				if (journal_finish_by_removal(m))
					continue;
				if (m->journal_sync) {
					journal_stall();    /* the records stay in memory */
					continue;
				}
				/* only records that may be lost (a deferral, Z, is never synced: losing it
				 * makes a retry come sooner): the scheduler must hear of it all the same,
				 * or the recipient would wait for a result forever */
			}
			m->routed_rec |= m->journal.p[0] == 'E';
			buf_reset(&m->journal);
		}
		*need_sync |= m->journal_sync && use_syncfs;
		m->dnext = done;
		done = m;
	}
	return done;
}

/* Phase 3: the records are durable (sync_ok) — tell the scheduler, finish messages. */
static void journal_done(struct qmsg *list, int sync_ok)
{
	for (struct qmsg *m = list, *next; m; m = next) {
		next = m->dnext;
		if (!sync_ok) {
			journal_stall();             /* journal_sync stays set: synced again later */
			continue;
		}
		if (m->journal_sync)
			role_crashpoint(m->routed_rec ? "queue:after_route" : "queue:after_result");
		m->journal_sync = 0;
		m->routed_rec = 0;
		msg_after_sync(m);
	}
}

void queue_foreach(void (*fn)(struct qmsg *m, void *arg), void *arg)
{
	size_t b = 0;
	for (struct hnode *h = NULL; (h = hmap_next(&msgs, &b, h));)
		fn((struct qmsg *)h, arg);
}

/* ---- finishing a message ---------------------------------------------------------------- */

void queue_remove(struct qmsg *m)
{
	if (m->dirty)                        /* pending records die with the message */
		for (struct qmsg **pp = &dirty_head; *pp; pp = &(*pp)->dnext)
			if (*pp == m) {
				*pp = m->dnext;
				break;
			}
	char id[17];
	env_idstr(m->env.id, id);
	queue_fs_remove(m->env.id);
	hmap_del(&msgs, m->env.id);
	log_info("event=removed id=%s", id);
	queue_free_msg(m);
}

void queue_check_done(struct qmsg *m)
{
	if (m->routing || m->inflight || m->bouncing || m->journal.len || !env_all_final(&m->env))
		return;
	if ((int64_t)m->env.nperm > m->env.bounced_upto) {
		int r = queue_bounce_start(m);
		if (r == 0) {
			m->bouncing = 1;
			return;
		}
		if (r < 0)
			return;       /* retried at the next tick */
	}
	queue_remove(m);
}

/* called by the commit batch when the bounce for parent is durable */
static void bounce_committed(uint64_t parent, uint64_t bounce_id, int ok)
{
	struct qmsg *m = queue_msg_get(parent);
	if (!m)
		return;
	m->bouncing = 0;
	if (!ok)
		return;            /* msg_check_done retries on the next tick */
	struct buf rec;
	buf_init(&rec);
	env_rec_bounce(&rec, queue_now(), bounce_id);
	if (queue_fs_append(parent, rec.p, rec.len, 1) == 0) {
		env_apply(&m->env, rec.p, rec.len - 1);
		role_crashpoint("queue:after_bounce");
		queue_mark_dirty(m);     /* finished in a later pass: we may be inside one now */
	}
	buf_free(&rec);
}

/* called by the commit batch when the delay notice for parent is durable: the W record
 * follows (a crash between the two sends the notice again: doc/QUEUE.md) */
static void delay_committed(uint64_t parent, uint64_t notice_id, int ok)
{
	struct qmsg *m = queue_msg_get(parent);
	if (!m)
		return;
	m->warning = 0;
	if (!ok)
		return;            /* tried again at the next result or tick */
	role_crashpoint("queue:before_delay_record");
	struct buf rec;
	buf_init(&rec);
	env_rec_warned(&rec, queue_now(), notice_id);
	if (queue_fs_append(parent, rec.p, rec.len, 1) == 0) {
		env_apply(&m->env, rec.p, rec.len - 1);
		role_crashpoint("queue:after_delay_record");
	} else
		m->env.warned = queue_now();   /* no second notice from this process; a restart
		                                  may send one (the record is not on disk) */
	buf_free(&rec);
}

/* ---- group commit ---------------------------------------------------------------------- */

int queue_commit_add(enum pc_kind kind, struct qmsg *m, int datafd, struct chan *c,
                     uint32_t reqid, const char *dropname, uint64_t parent)
{
	struct pcommit *pc = xcalloc(1, sizeof *pc);
	struct buf hdr;
	pc->kind = kind;
	pc->m = m;
	pc->datafd = datafd;
	pc->c = c;
	pc->reqid = reqid;
	pc->parent = parent;
	snprintf(pc->dropname, sizeof pc->dropname, "%s", dropname ? dropname : "");
	buf_init(&hdr);
	queue_ctl_precommit(m);
	env_format_header(&m->env, &hdr);
	if (m->env.held)             /* committed held (a list post awaiting moderation) */
		env_rec_hold(&hdr, 1);
	pc->envfd = queue_fs_write_tmp_env(m->env.id, hdr.p, hdr.len);
	pc->err = pc->envfd < 0 ? (errno ? errno : EIO) : 0;
	buf_free(&hdr);
	role_crashpoint("queue:after_env_write");
	*batch_tail = pc;
	batch_tail = &pc->next;
	batch_n++;
	queue_kick();
	return 0;
}

static void commit_reply(struct pcommit *pc, int ok)
{
	char id[17];
	env_idstr(pc->m->env.id, id);
	if ((pc->kind == PC_SMTP || pc->kind == PC_CTL) && !pc->c)
		return;                      /* the requester died meanwhile (queue_forget_chan) */
	if (pc->kind == PC_SMTP) {
		struct msg out;
		int full = pc->err == ENOSPC || pc->err == EDQUOT;
		msg_init(&out, M_MSG_COMMITTED, pc->reqid);
		msg_u64(&out, ok ? 250 : full ? 452 : 451);
		msg_str(&out, ok ? id : full ? "insufficient system storage" : "queue write error");
		chan_send(pc->c, &out);
	} else if (pc->kind == PC_DROP) {
		if (ok)
			queue_drop_committed(pc->dropname);
		else
			queue_drop_failed(pc->dropname);
	} else if (pc->kind == PC_CTL)
		queue_ctl_copy_committed(pc->c, pc->reqid, pc->m->env.id, ok);
	else if (pc->kind == PC_DELAY)
		delay_committed(pc->parent, pc->m->env.id, ok);
	else if (pc->kind == PC_LIST)
		queue_list_committed(pc->parent, pc->m->env.id, ok);
	else
		bounce_committed(pc->parent, pc->m->env.id, ok);
}

static void commit_one_done(struct pcommit *pc, int ok)
{
	struct qmsg *m = pc->m;
	char id[17];
	env_idstr(m->env.id, id);
	if (!ok) {
		static struct log_limit lim;
		unsigned long long rep;
		if (log_limit(&lim, 10, &rep))
			log_warn("event=commit_failed id=%s error=\"%s\" repeated=%llu", id,
			         strerror(pc->err ? pc->err : EIO), rep);
		queue_fs_discard_uncommitted(m->env.id);
		commit_reply(pc, 0);
		queue_free_msg(m);
		return;
	}
	queue_sf_fit(m);
	m->h.key = m->env.id;
	hmap_put(&msgs, &m->h);
	log_info("event=committed id=%s from=<%s> nrcpt=%zu origin=\"%s\"", id, m->env.sender,
	         m->env.norig, m->env.origin);
	commit_reply(pc, 1);
	queue_ctl_committed(m);
}

/* Commit the batch; extra_sync: journal records written this pass need the same sync.
 * Returns 0 if that sync succeeded (or none was needed). */
static int batch_run(int extra_sync)
{
	struct pcommit *list = batch_head;
	size_t n = batch_n;
	batch_head = NULL;
	batch_tail = &batch_head;
	batch_n = 0;
	int *fds = xcalloc(2 * n + 1, sizeof *fds);
	size_t nf = 0;
	for (struct pcommit *pc = list; pc; pc = pc->next)
		if (!pc->err) {
			fds[nf++] = pc->datafd;
			fds[nf++] = pc->envfd;
		}
	int syncerr = 0;
	if ((nf || extra_sync) && queue_fs_sync_batch(fds, nf, use_syncfs) < 0)
		syncerr = errno ? errno : EIO;
	free(fds);
	role_crashpoint("queue:after_sync");
	int renamed = 0;
	for (struct pcommit *pc = list; pc; pc = pc->next) {
		if (!pc->err && syncerr)
			pc->err = syncerr;
		if (!pc->err && queue_fs_commit_rename(pc->m->env.id) < 0)
			pc->err = errno ? errno : EIO;
		renamed |= !pc->err;
	}
	role_crashpoint("queue:after_rename");
	if (renamed && queue_fs_sync_dir(QD_ENV) < 0) {
		/* the renames may not be durable: we must not acknowledge, so take them back */
		for (struct pcommit *pc = list; pc; pc = pc->next)
			if (!pc->err) {
				queue_fs_uncommit(pc->m->env.id);
				pc->err = EIO;
			}
	}
	role_crashpoint("queue:after_commit");
	for (struct pcommit *pc = list, *next; pc; pc = next) {
		next = pc->next;
		if (pc->envfd >= 0)
			close(pc->envfd);
		if (pc->datafd >= 0)
			close(pc->datafd);
		commit_one_done(pc, !pc->err);
		free(pc);
	}
	return syncerr ? -1 : 0;
}

/* ---- the pass: runs once per event-loop iteration when there is work ------------------ */

/* One pass = one group commit: journal records and new messages share one sync. */
static void pass_cb(int fd, short what, void *arg)
{
	int need_sync = 0, ok = 1;
	struct qmsg *written = journal_write(&need_sync);
	if (batch_head)
		ok = batch_run(need_sync) == 0;
	else if (need_sync)
		ok = queue_fs_sync_batch(NULL, 0, 1) == 0;
	journal_done(written, ok);
	if (pass_stalled)
		journal_stall_arm();
}

void queue_kick(void)
{
	if (!ev_pending(pass_ev))
		ev_add(pass_ev, 0);
}

/* ---- smtp: open / commit / abort ---------------------------------------------------------- */

static void reply_opened(struct chan *c, uint32_t reqid, int status, uint64_t id, int fd)
{
	struct msg out;
	msg_init(&out, M_MSG_OPENED, reqid);
	msg_u64(&out, (uint64_t)status);
	msg_u64(&out, id);
	if (fd >= 0)
		msg_fd(&out, fd);
	chan_send(c, &out);
}

uint64_t queue_free_need(void)
{
	uint64_t need = queue_cfg->queuefreebytes;
	if (!need)
		need = queue_cfg->databytes && 2 * queue_cfg->databytes > 20u * 1024 * 1024
		       ? 2 * queue_cfg->databytes : 20u * 1024 * 1024;
	return need;
}

static void on_msg_open(struct chan *c, uint32_t reqid)
{
	static struct log_limit lim;
	unsigned long long rep;
	uint64_t need = queue_free_need(), free = queue_fs_free_bytes();
	if (free < need) {
		if (log_limit(&lim, 10, &rep))
			log_warn("event=spool_full free=%" PRIu64 " need=%" PRIu64 " repeated=%llu", free,
			         need, rep);
		reply_opened(c, reqid, 452, 0, -1);
		return;
	}
	uint64_t id;
	int fd = queue_fs_create_data(&id);
	if (fd < 0) {
		reply_opened(c, reqid, (errno == ENOSPC || errno == EDQUOT) ? 452 : 451, 0, -1);
		return;
	}
	role_crashpoint("queue:open");
	int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dupfd < 0) {
		close(fd);
		queue_fs_discard_uncommitted(id);
		reply_opened(c, reqid, 451, 0, -1);
		return;
	}
	struct qopen *o = xcalloc(1, sizeof *o);
	o->h.key = id;
	o->fd = fd;
	o->c = c;
	hmap_put(&opens, &o->h);
	reply_opened(c, reqid, 0, id, dupfd);
}

static int addr_sane(const char *a)
{
	size_t n = strlen(a);
	if (n > 1024)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f)
			return 0;
	return 1;
}

static void on_msg_commit(struct chan *c, uint32_t reqid, struct msg_reader *r)
{
	uint64_t id = msg_get_u64(r);
	const char *sender = msg_get_str(r);
	uint64_t n = msg_get_u64(r);
	struct qopen *o = (struct qopen *)hmap_get(&opens, id);
	if (o && o->c != c)
		o = NULL;                        /* another peer's file: not this one's to commit */
	struct qmsg *m = queue_new_msg();
	int ok = o && !r->err && n > 0 && n <= COMMIT_MAXRCPT && addr_sane(sender);
	for (uint64_t i = 0; !r->err && i < n; i++) {  /* read all: bad address (554) or bad payload? */
		const char *rc = msg_get_str(r);
		ok = ok && !r->err && *rc && addr_sane(rc);
		if (ok)
			env_add_rcpt(&m->env, rc);
	}
	const char *origin = msg_get_str(r);
	(void)msg_get_u64(r);
	int staged = r->off < r->len;             /* QP: QCREA <queue>, the control role's only */
	uint64_t stage = staged ? msg_get_u64(r) : 0;
	if (msg_done(r) < 0 || !ok || stage > 999 || (staged && c != queue_ch_control)) {
		if (!r->err)                     /* a malformed one is logged by the codec */
			log_err("event=bad_commit peer=%s", chan_peer(c));
		if (o) {                         /* the client gets 554: nothing stays behind */
			hmap_del(&opens, id);
			close(o->fd);
			queue_fs_discard_uncommitted(id);
			free(o);
		}
		struct msg out;
		msg_init(&out, M_MSG_COMMITTED, reqid);
		msg_u64(&out, 554);
		msg_str(&out, "bad commit request");
		chan_send(c, &out);
		queue_free_msg(m);
		return;
	}
	hmap_del(&opens, id);
	m->env.id = id;
	m->env.arrival = queue_now();
	m->env.sender = xstrdup(sender);
	m->env.origin = xstrdup(origin);
	m->env.norig = m->env.nslots;
	m->env.kind = EK_NORMAL;
	m->env.stage = (uint32_t)stage;
	queue_commit_add(PC_SMTP, m, o->fd, c, reqid, NULL, 0);
	free(o);
}

static void on_msg_abort(struct chan *c, struct msg_reader *r)
{
	uint64_t id = msg_get_u64(r);
	struct qopen *o = msg_done(r) == 0 ? (struct qopen *)hmap_get(&opens, id) : NULL;
	if (!o || o->c != c)
		return;
	hmap_del(&opens, id);
	close(o->fd);
	queue_fs_discard_uncommitted(id);
	free(o);
}

/* A peer's channel closed: the data files handed to it will never be committed or aborted;
 * drop them (their descriptors and files), or they would stay for the queue's lifetime. */
static void opens_drop(struct chan *c)
{
	size_t n = 0, cap = 0, b = 0;
	uint64_t *ids = NULL;
	for (struct hnode *h = NULL; (h = hmap_next(&opens, &b, h));)
		if (((struct qopen *)h)->c == c) {
			if (n == cap)
				ids = xrealloc(ids, (cap = cap ? 2 * cap : 16) * sizeof *ids);
			ids[n++] = h->key;
		}
	for (size_t i = 0; i < n; i++) {
		struct qopen *o = (struct qopen *)hmap_del(&opens, ids[i]);
		close(o->fd);
		queue_fs_discard_uncommitted(ids[i]);
		free(o);
	}
	free(ids);
	if (n)
		log_info("event=open_files_dropped peer=%s count=%zu", chan_peer(c), n);
}

/* ---- channels ------------------------------------------------------------------------------ */

static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd, void *arg)
{
	if (type == M_PEER_NEW && c == queue_ch_parent) {
		queue_peer_new(r, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	if (queue_ctl_recv(c, type, id, r))
		return;
	switch (type) {
	case M_MSG_OPEN:
		if (msg_done(r) == 0)            /* else dropped: the codec logs it (doc/IPC.md) */
			on_msg_open(c, id);
		break;
	case M_MSG_COMMIT: on_msg_commit(c, id, r); break;
	case M_MSG_ABORT: on_msg_abort(c, r); break;
	case M_ROUTE_RESULT: queue_on_route_result(id, r); break;
	case M_LIST_RESULT: queue_list_result(id, r); break;
	case M_SCHED_RUN: queue_on_sched_run(r); break;
	case M_DELIVERED: queue_on_delivered(c == queue_ch_mda ? R_MDA : R_MTA, r); break;
	case M_SCHED_ETRN:            /* smtp -> scheduler, through us (same id, same payload) */
	case M_SCHED_ETRN_RESULT:     /* scheduler -> smtp */
		queue_etrn_recv(type, id, r);
		break;
	default:
		log_err("event=unexpected_message peer=%s type=%u", chan_peer(c), type);
	}
}

/* Leaving: make what we already know durable first (results that arrived in this very
 * pass), so that a restart does not deliver again what was delivered. */
void queue_exit(const char *why)
{
	log_info("event=shutdown reason=%s", why);
	pass_cb(-1, 0, NULL);
	queue_pid_remove(queue_fs_dirfd(QD_SPOOL));
	exit(0);
}

/* A requester of data files and commits died (smtp, control): the data files it had opened
 * go (never acknowledged), and replies to its commits in the batch go nowhere. */
void queue_forget_chan(struct chan *c)
{
	opens_drop(c);
	for (struct pcommit *pc = batch_head; pc; pc = pc->next)
		if (pc->c == c)
			pc->c = NULL;
}

/* A new scheduler knows nothing: tell it every routed recipient of every live message, as
 * at start (those in flight too: their results will come). */
void queue_sched_announce_all(void)
{
	size_t b = 0, nmsg = 0;
	for (struct hnode *h = NULL; (h = hmap_next(&msgs, &b, h));) {
		struct qmsg *m = (struct qmsg *)h;
		uint32_t *idx = xcalloc(m->env.nslots ? m->env.nslots : 1, sizeof *idx);
		size_t n = 0;
		for (uint32_t i = 0; i < m->env.nslots; i++)
			if (m->env.slots[i].state == SL_ROUTED && !(m->sf[i] & SF_ADD))
				idx[n++] = i;
		if (n && !m->env.held && m->env.staged) {
			sched_add(m, idx, n);
			nmsg++;
		}
		free(idx);
	}
	log_info("event=scheduler_fed messages=%zu", nmsg);
}

/* ---- ticks: route retries, stalled finishes -------------------------------------------------- */

static void tick_cb(int fd, short what, void *arg)
{
	int64_t now = queue_now();
	size_t b = 0;
	for (struct hnode *h = NULL; (h = hmap_next(&msgs, &b, h));) {
		struct qmsg *m = (struct qmsg *)h;
		if (m->reroute_at && m->reroute_at <= now)
			queue_reroute(m, now);
		if (env_all_final(&m->env) && !m->bouncing && !m->dirty)
			queue_mark_dirty(m);
		queue_delay_check(m);
		queue_list_tick(m, now);
	}
	queue_drop_scan();
	ev_add(tick_ev, 10000);
}

static void on_term(int sig, short what, void *arg) { queue_exit("sigterm"); }

int queue_main(struct role_ctx *ctx)
{
	queue_cfg = ctx->cfg;
	ev_init();
	hmap_init(&msgs);
	hmap_init(&opens);
	queue_deliver_init();
	queue_list_init();
	use_syncfs = strcmp(queue_cfg->spoolsync, "fsync") != 0;
	if (queue_fs_open(queue_cfg->spool, 1) < 0)
		return 111;
	queue_pid_write(queue_fs_dirfd(QD_SPOOL));
	queue_recover();
	pass_ev = ev_new(-1, 0, pass_cb, NULL);
	tick_ev = ev_new(-1, 0, tick_cb, NULL);
	stall_ev = ev_new(-1, 0, stall_cb, NULL);
	queue_peers_open(ctx, on_recv);
	struct ev *sig = ev_signal(SIGTERM, on_term, NULL);
	ev_add(sig, -1);
	signal(SIGPIPE, SIG_IGN);
	queue_drop_init();
	queue_recover_schedule();
	ev_add(tick_ev, 10000);
	ev_run();
	return 0;
}
