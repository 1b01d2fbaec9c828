/* sched_core — the scheduler's state without IPC: items (one per deliverable recipient),
 * threads keyed by (channel, host) with their windows and dead-destination state, one
 * channel per row of the channel table, and the wake-up heap. Every function that depends on
 * time takes `now` (unix seconds), so the unit test (tests/unit/test_sched_core.c) drives it
 * with its own clock. It asks for a job to be run through the run callback; sched.c turns
 * that into M_SCHED_RUN and the snapshot into M_SCHED_SNAPSHOT_RESULT.
 * Owns: the concurrency of every destination (doc/ARCHITECTURE.md, "Scheduler"): a thread's
 * window grows by one per job with a final answer up to its row's perhost, halves when a job fails
 * for the destination (DSCOPE_SITE, every recipient temporary), and a failure at window 1
 * marks the destination dead (Postfix's qmgr): nothing of it runs until its retry time, then
 * one probe job; success revives it. The channel's concurrency caps the sum of its threads.
 * Trusts: its caller for well-formed values (sched.c validates the queue's messages). */
#ifndef TERN_SCHED_CORE_H
#define TERN_SCHED_CORE_H
#include "lib/hmap.h"
#include "mail/channel.h"
#include <stddef.h>
#include <stdint.h>

#define SC_WINDOW_INIT     4        /* a new (or revived) thread's window, at most its perhost */
#define SC_THREAD_BUCKETS  1024
#define SC_DEAD_MAXBACKOFF 4000     /* s: a dead destination's wait doubles per failed probe up
                                       to this (Postfix's maximal_backoff_time), unless the
                                       queue's own retry time is later */

enum sc_state { SC_ALIVE = 0, SC_DEAD = 1, SC_PROBE = 2 };   /* the snapshot's numbers */

/* a heap entry: an item's next try, or a dead thread's retry time; first member of both */
struct sc_hent { int64_t at; size_t hpos; int isthread; };

struct sc_thread;
struct sc_msg;
struct sc_job { size_t left; int anyok, anytemp, probe; int64_t retry; };

struct sc_item {
	struct sc_hent h;            /* h.at: the next try (the queue's) */
	struct sc_item *rnext;       /* thread's ready FIFO */
	struct sc_item *tnext, *tprev;  /* every item of the thread */
	struct sc_thread *th;
	struct sc_msg *sm;
	uint64_t msgid;
	uint32_t idx, attempts;
	int inflight, ready;
	struct sc_job *job;          /* while inflight */
	int64_t lastfeed;            /* when it was last handed to the queue to run */
	char *domain, *diag;         /* the recipient's domain (ETRN); last diagnostic */
};

struct sc_thread {
	struct sc_hent h;            /* SC_DEAD: h.at = when the probe may go */
	struct sc_thread *hnext, *cnext;  /* hash chain; channel's ready list */
	char *channel, *host;
	struct sc_item *rhead, *rtail, *ihead;
	size_t nitems, inflight, window, perhost;
	int on_ready;
	enum sc_state state;
	int64_t backoff;             /* the last dead interval (s); 0 while alive */
};

struct sc_chan {
	const char *name;
	const struct channel_row *row;   /* NULL: the bucket of names not in the table */
	size_t limit, inflight, nthreads;
	struct sc_thread *rhead, *rtail;
};

struct sc_msg { struct hnode h; struct sc_item **items; size_t n; int64_t birth; char *sender; };

/* run the n items v (one message, one thread) now: the caller sends M_SCHED_RUN */
typedef void sched_core_run_fn(void *arg, const struct sc_thread *t, struct sc_item *const *v,
                               size_t n);

struct sched_core {
	const struct channel_table *tab;
	sched_core_run_fn *run;
	void *arg;
	struct hmap msgs;
	struct sc_thread *threads[SC_THREAD_BUCKETS];
	struct sc_chan chans[CHANNEL_MAX + 1];   /* one per table row, then the unknown bucket */
	size_t nchans;
	struct sc_hent **heap;
	size_t heap_n, heap_cap;
	uint64_t msgs_in, msgs_out, rcpts_in, rcpts_out, nitems;
};

/* one recipient the queue tells about (M_SCHED_ADD) */
struct sc_add {
	uint64_t msgid, idx, attempts;
	int64_t birth, next;
	const char *sender, *channel, *host, *domain;
};

void sched_core_init(struct sched_core *s, const struct channel_table *tab,
                     sched_core_run_fn *run, void *arg);
void sched_core_free(struct sched_core *s);
/* 0 added, -1 ignored (no channel, or the item exists) */
int sched_core_add(struct sched_core *s, const struct sc_add *a);
/* a recipient's result (st: D_OK / D_TEMP / D_PERM, scope: DSCOPE_*); starts what it allows */
void sched_core_result(struct sched_core *s, uint64_t msgid, uint64_t idx, int st, int64_t next,
                       const char *diag, int scope, int64_t now);
/* what is due at now becomes ready (dead threads whose time came: one probe); start jobs */
void sched_core_wake(struct sched_core *s, int64_t now);
/* the earliest time sched_core_wake has something to do, or -1 */
int64_t sched_core_next_wake(const struct sched_core *s);
/* every waiting item and dead destination is due now (ternctl flush): their count */
size_t sched_core_flush(struct sched_core *s, int64_t now);
/* ETRN dom: the waiting items of the non-local threads for dom (and below) due now */
size_t sched_core_etrn(struct sched_core *s, const char *dom, int64_t now);
/* op 0: forget the message's waiting items; op 1: make them (and their dead threads) due now */
void sched_core_ctl(struct sched_core *s, uint64_t op, uint64_t msgid, int64_t now);

struct sc_thread *sched_core_thread_find(const struct sched_core *s, const char *channel,
                                         const char *host);
const struct sc_chan *sched_core_chan_of(const struct sched_core *s, const char *channel);
/* snapshot helpers: distinct messages of t; t's next wake-up (0 = ready now); an item's next
 * try as shown; why a ready item waits ("" / "channel" / "thread" / "dead") */
size_t sched_core_thread_msgs(const struct sc_thread *t);
int64_t sched_core_thread_next(const struct sc_thread *t);
int64_t sched_core_item_next(const struct sc_item *it, int64_t now);
const char *sched_core_item_reason(const struct sched_core *s, const struct sc_item *it);
const char *sched_core_state_name(enum sc_state st);
#endif
