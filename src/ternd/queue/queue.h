/* queue — internal interface between the parts of the queue role: queue.c (IPC, commit,
 * routing, results), queue_drop.c (maildrop pickup), queue_bounce.c (bounces), queue_fs.c
 * (files), queue_recover.c (recovery at start), queue_peer.c (peers dying and coming back).
 * Owns: struct qmsg, the in-memory image of one committed message. */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H
#include "lib/hmap.h"
#include "lib/buf.h"
#include "lib/msg.h"
#include "mail/envelope.h"
#include "mail/config.h"

#define SF_INFLIGHT 0x01   /* a delivery is running */
#define SF_ROUTING  0x02   /* a route request is outstanding */
#define SF_ADD      0x04   /* tell the scheduler about it after the journal sync */
#define SF_RESULT   0x08   /* report its result to the scheduler after the sync */
#define SF_REDO     0x10   /* deferred because its delivery agent died: run it when it is back */
#define SF_SITE     0x20   /* its last temporary failure was the destination's (DSCOPE_SITE) */

struct qmsg {
	struct hnode h;            /* key = id; must be first */
	struct envelope env;
	unsigned char *sf;         /* per-slot transient flags, sized env.cap */
	size_t sfcap;
	struct buf journal;        /* records appended in memory, not yet written */
	int journal_sync;          /* the pending records need a sync before anyone acts on them */
	int routed_rec;            /* an E record is among them (names the crash point) */
	int dirty;                 /* on the dirty list */
	struct qmsg *dnext;
	int routing, inflight;     /* outstanding route requests / deliveries */
	int bouncing;              /* a bounce commit for it is in the batch */
	int warning;               /* its delay notice's commit is in the batch */
	int64_t reroute_at;        /* a tempfailed route is retried at this time (0 = none) */
	int waiting_stage;         /* pushed to the agent of env.stage; waiting for its verdict */
};

enum pc_kind { PC_SMTP, PC_DROP, PC_BOUNCE, PC_CTL, PC_DELAY, PC_LIST };

/* queue.c */
extern struct config *queue_cfg;
extern struct chan *queue_ch_lookup, *queue_ch_sched, *queue_ch_mda, *queue_ch_mta, *queue_ch_control;
extern struct chan *queue_ch_smtp, *queue_ch_parent;         /* queue_peer.c */
struct qmsg *queue_msg_get(uint64_t id);
void queue_msg_put(struct qmsg *m);             /* known from now on, under m->env.id */
void queue_sf_fit(struct qmsg *m);
void queue_mark_dirty(struct qmsg *m);
/* apply a formatted record (one line, LF) to m and queue it for the next pass's journal
 * write; sync: it must be durable before anyone acts on it */
int queue_journal_add(struct qmsg *m, struct buf *rec, int sync);
void queue_check_done(struct qmsg *m);          /* finished? bounce, then remove */
void queue_remove(struct qmsg *m);              /* unlink and forget (no bounce) */
/* iterate over every message; fn may not remove messages */
void queue_foreach(void (*fn)(struct qmsg *m, void *arg), void *arg);
void queue_exit(const char *why);               /* make results durable, then exit(0) */
void queue_forget_chan(struct chan *c);         /* its opened data files go, its replies drop */
void queue_sched_announce_all(void);            /* feed a new scheduler */

/* queue_deliver.c */
void queue_route_slot(struct qmsg *m, uint32_t slot);  /* ask lookup (or tell the scheduler) */
void queue_fail_slot(struct qmsg *m, uint32_t i, const char *status, const char *diag);
/* st: enum dstatus; scope: enum dscope (ternd/dreq.h) of a D_TEMP */
void queue_record_result(struct qmsg *m, uint32_t i, int st, int scope, const char *diag,
                         const char *remote);
void queue_on_route_result(uint32_t reqid, struct msg_reader *r);
/* the enhanced status in a diagnostic ("451 4.7.1 ..."), its class forced to cls; else cls.0.0 */
void status_from_diag(const char *diag, char cls, char *out, size_t outsz);
/* every recipient whose routing was deferred (a lookup tempfail) is routed again now */
void queue_reroute_all(void);
void queue_on_sched_run(struct msg_reader *r);
/* M_DELIVERED from role `from` (R_MDA or R_MTA) */
void queue_on_delivered(int from, struct msg_reader *r);
void queue_deliver_init(void);
void queue_reroute(struct qmsg *m, int64_t now);       /* route its unrouted slots again */
void queue_deliver_peer_lost(int role);         /* lookup, mda or mta died: fail over */
void queue_deliver_peer_back(int role);         /* ...and is back: go on at once */

/* queue_peer.c: the channels to the peers (restarted peers arrive by M_PEER_NEW) */
struct role_ctx;
void queue_peers_open(struct role_ctx *ctx, chan_recv_cb cb);
void queue_peer_new(struct msg_reader *r, int fd);     /* M_PEER_NEW from the parent */
int queue_peer_up(int role);
/* queue_etrn.c: ETRN relayed between smtp and the scheduler, answered if the scheduler is not */
void queue_etrn_recv(uint32_t type, uint32_t id, struct msg_reader *r);
void queue_etrn_peer_lost(int role);               /* R_SCHED or R_SMTP died */
struct qmsg *queue_new_msg(void);
void queue_free_msg(struct qmsg *m);
/* Enqueue an uncommitted message (data file written, m->env filled) for the next group
 * commit. On success the caller's callback data travel with it. */
int queue_commit_add(enum pc_kind kind, struct qmsg *m, int datafd, struct chan *c,
                     uint32_t reqid, const char *dropname, uint64_t parent);
void queue_kick(void);
int64_t queue_now(void);
/* free spool space below which new messages are refused: queuefreebytes, by default
 * 2 x databytes and at least 20 MiB (doc/QUEUE.md "Disk full") */
uint64_t queue_free_need(void);

/* queue_recover.c: at start, before anything is accepted */
void queue_recover(void);                       /* clean tmp/ and data/, load env/ */
void queue_recover_schedule(void);              /* route, schedule or finish what was loaded */

/* queue_drop.c */
void queue_drop_init(void);
void queue_drop_scan(void);
void queue_drop_committed(const char *name);          /* unlink after commit */
void queue_drop_failed(const char *name);

/* queue_ctl.c: management and stages */
void queue_ctl_precommit(struct qmsg *m);        /* no agents: the entry skips the stages */
void queue_ctl_committed(struct qmsg *m);        /* start the stage pipeline, then routing */
int queue_ctl_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r);
void queue_ctl_copy_committed(struct chan *c, uint32_t reqid, uint64_t newid, int ok);

/* queue_bounce.c: build and enqueue the bounce for m's failed slots. 0 queued / 1 nothing
 * to send (double bounce dropped) / -1 error (retry later) */
int queue_bounce_start(struct qmsg *m);
/* the one delay notice: committed when m is due (delaywarn passed, a recipient tried and
 * still pending, never for <> or a bounce); its W record follows the commit */
void queue_delay_check(struct qmsg *m);
#endif
