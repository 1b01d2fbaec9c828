/* queue — internal interface between the parts of the queue role: queue.c (IPC, commit,
 * routing, results), queue_drop.c (maildrop pickup), queue_bounce.c (bounces), queue_fs.c
 * (files). Owns: struct qmsg, the in-memory image of one committed message. */
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
	int64_t reroute_at;        /* a tempfailed route is retried at this time (0 = none) */
};

enum pc_kind { PC_SMTP, PC_DROP, PC_BOUNCE };

/* queue.c */
extern struct config *queue_cfg;
struct qmsg *queue_new_msg(void);
void queue_free_msg(struct qmsg *m);
/* Enqueue an uncommitted message (data file written, m->env filled) for the next group
 * commit. On success the caller's callback data travel with it. */
int queue_commit_add(enum pc_kind kind, struct qmsg *m, int datafd, struct chan *c,
                     uint32_t reqid, const char *dropname, uint64_t parent);
void queue_kick(void);
int64_t queue_now(void);

/* queue_drop.c */
void drop_init(void);
void drop_scan(void);
void drop_committed(const char *name);          /* unlink after commit */
void drop_failed(const char *name);

/* queue_bounce.c: build and enqueue the bounce for m's failed slots. 0 queued / 1 nothing
 * to send (double bounce dropped) / -1 error (retry later) */
int bounce_start(struct qmsg *m);
#endif
