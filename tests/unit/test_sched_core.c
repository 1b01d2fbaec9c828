/* test_sched_core — the scheduler's decisions (src/ternd/scheduler/sched_core.c) driven by a
 * clock of the test's own: table-driven scripts of recipients added, time passing, jobs
 * started (the run callback records them) and results, checked against the windows, the
 * channel limit, the dead-destination state and the wake-up times they must give:
 * window growth up to the row's perhost, halving on the destination's failures only, the
 * channel's total limit, a dead destination deferring all its mail until its retry time,
 * one probe, revival, doubled waits, flush, and the thread kept while dead. */
#include "t.h"
#include "ternd/scheduler/sched_core.c"
#include "mail/config.h"

#define MAXJOBS 256

struct job { uint64_t msgid; char host[64]; size_t n; uint32_t idx[4]; };
static struct job jobs[MAXJOBS];
static size_t njobs;

static void rec_run(void *arg, const struct sc_thread *t, struct sc_item *const *v, size_t n)
{
	T_CHECK(njobs < MAXJOBS);
	if (njobs >= MAXJOBS)
		return;
	struct job *j = &jobs[njobs++];
	j->msgid = v[0]->msgid;
	snprintf(j->host, sizeof j->host, "%s", t->host);
	j->n = n;
	for (size_t i = 0; i < n && i < 4; i++)
		j->idx[i] = v[i]->idx;
}

/* one channel "c" (smtp transport, one recipient per job unless said) built from line */
static void table(struct channel_table *tab, const char *line)
{
	struct channel_keys k = { 10, 20, 10, 20, 10 };
	char buf[200], err[200];
	channel_table_init(tab);
	snprintf(buf, sizeof buf, "%s", line);
	T_EQ_INT(channel_parse(tab, buf, err, sizeof err), 0);
	channel_table_finish(tab, &k);
}

enum op { ADD, ADD2, WAKE, RES, RES1, FLUSH, CHK, NEXT, JOBS, END };
/* ADD:  at now, x messages (one recipient each, ids from 1 up) for host, next try y
 * ADD2: at now, one message of two recipients for host (a job takes both), next try y
 * WAKE: the timer fires at now
 * RES:  at now, every recipient of job x gets status y, scope z, queue's next try w
 * RES1: at now, the first recipient of job x gets y/z/w, the second D_OK
 * FLUSH: ternctl flush at now
 * CHK:  the thread of host: x jobs started in all, y running, window z, state w
 * NEXT: the core's next wake-up is x
 * JOBS: x jobs started in all (every host) */
struct step { enum op op; int64_t now; const char *host; int64_t x, y, z, w; };

struct scase { const char *name, *chan; struct step s[40]; };

#define S D_TEMP
#define SITE DSCOPE_SITE
#define RCPT DSCOPE_RCPT

static const struct scase cases[] = {
	{ "window grows by one per success up to perhost", "c transport=smtp perhost=6 recipients=1",
	  { { ADD, 0, "h", 20, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { CHK, 0, "h", 4, 4, 4, SC_ALIVE },
	    { RES, 1, NULL, 0, D_OK, 0, 0 }, { CHK, 0, "h", 6, 5, 5, SC_ALIVE },
	    { RES, 2, NULL, 1, D_OK, 0, 0 }, { CHK, 0, "h", 8, 6, 6, SC_ALIVE },
	    { RES, 3, NULL, 2, D_OK, 0, 0 }, { RES, 3, NULL, 3, D_OK, 0, 0 },
	    { CHK, 0, "h", 10, 6, 6, SC_ALIVE },     /* 6 = perhost: no further */
	    { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "a small perhost caps the first window too", "c transport=smtp perhost=2 recipients=1",
	  { { ADD, 0, "h", 5, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { CHK, 0, "h", 2, 2, 2, SC_ALIVE }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "only the destination's failure halves the window", "c transport=smtp perhost=8 recipients=1",
	  { { ADD, 0, "h", 30, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { CHK, 0, "h", 4, 4, 4, SC_ALIVE },
	    { RES, 1, NULL, 0, S, RCPT, 500 },          /* greylisted at RCPT: neither grows nor halves */
	    { CHK, 0, "h", 5, 4, 4, SC_ALIVE },
	    { RES, 2, NULL, 1, S, SITE, 500 },          /* 421 / no connection: halves */
	    { CHK, 0, "h", 5, 3, 2, SC_ALIVE },
	    { RES, 3, NULL, 2, D_PERM, SITE, 0 },       /* a 5xx is an answer: grows */
	    { CHK, 0, "h", 6, 3, 3, SC_ALIVE },
	    { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "a job with one delivered recipient is no failure", "c transport=smtp perhost=8 recipients=2",
	  { { ADD2, 0, "h", 0, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { CHK, 0, "h", 1, 1, 4, SC_ALIVE },
	    { RES1, 1, NULL, 0, S, SITE, 500 }, { CHK, 0, "h", 1, 0, 5, SC_ALIVE }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "the channel's concurrency caps the sum of its threads", "c transport=smtp concurrency=3 perhost=10 recipients=1",
	  { { ADD, 0, "a", 5, 0, 0, 0 }, { ADD, 0, "b", 5, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 3, 0, 0, 0 },
	    { CHK, 0, "a", 0, 2, 4, SC_ALIVE }, { CHK, 0, "b", 0, 1, 4, SC_ALIVE },
	    { RES, 1, NULL, 0, D_OK, 0, 0 }, { JOBS, 0, NULL, 4, 0, 0, 0 }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "retry timing: nothing runs before its time", "c transport=smtp perhost=4 recipients=1",
	  { { ADD, 0, "h", 1, 100, 0, 0 }, { NEXT, 0, NULL, 100, 0, 0, 0 }, { WAKE, 99, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 0, 0, 0, 0 },
	    { WAKE, 100, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 1, 0, 0, 0 }, { RES, 101, NULL, 0, S, SITE, 300 },
	    { NEXT, 0, NULL, 300, 0, 0, 0 }, { WAKE, 299, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 1, 0, 0, 0 }, { WAKE, 300, NULL, 0, 0, 0, 0 },
	    { JOBS, 0, NULL, 2, 0, 0, 0 }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "a failure at window 1 marks the destination dead until its retry time", "c transport=smtp perhost=1 recipients=1",
	  { { ADD, 0, "h", 3, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { CHK, 0, "h", 1, 1, 1, SC_ALIVE },
	    { RES, 10, NULL, 0, S, SITE, 100 }, { CHK, 0, "h", 1, 0, 1, SC_DEAD },
	    { NEXT, 0, NULL, 100, 0, 0, 0 },                    /* both others are ready since 0, held */
	    { WAKE, 50, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 1, 0, 0, 0 },
	    { ADD, 60, "h", 1, 60, 0, 0 }, { WAKE, 60, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 1, 0, 0, 0 },   /* new mail waits too */
	    { WAKE, 100, NULL, 0, 0, 0, 0 }, { CHK, 0, "h", 2, 1, 1, SC_PROBE },             /* one probe */
	    { WAKE, 101, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 2, 0, 0, 0 },
	    { RES, 102, NULL, 1, D_OK, 0, 0 }, { CHK, 0, "h", 3, 1, 1, SC_ALIVE },  /* revived */
	    { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "revival brings the window back up", "c transport=smtp perhost=10 recipients=1",
	  { { ADD, 0, "h", 20, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 },
	    { RES, 1, NULL, 0, S, SITE, 50 }, { RES, 1, NULL, 1, S, SITE, 50 },  /* 4 -> 2 -> 1 */
	    { CHK, 0, "h", 4, 2, 1, SC_ALIVE },
	    { RES, 1, NULL, 2, S, SITE, 50 }, { CHK, 0, "h", 4, 1, 1, SC_DEAD },
	    { RES, 2, NULL, 3, S, SITE, 70 }, { CHK, 0, "h", 4, 0, 1, SC_DEAD },  /* started before */
	    { NEXT, 0, NULL, 50, 0, 0, 0 },                     /* 70 is job 3's own; the thread's is 50 */
	    { WAKE, 50, NULL, 0, 0, 0, 0 }, { CHK, 0, "h", 5, 1, 1, SC_PROBE }, { RES, 51, NULL, 4, D_OK, 0, 0 },
	    { CHK, 0, "h", 9, 4, 4, SC_ALIVE }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "a failed probe keeps it dead with a doubled wait", "c transport=smtp perhost=1 recipients=1",
	  { { ADD, 0, "h", 3, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { RES, 10, NULL, 0, S, SITE, 100 },
	    { CHK, 0, "h", 1, 0, 1, SC_DEAD }, { NEXT, 0, NULL, 100, 0, 0, 0 },
	    { WAKE, 100, NULL, 0, 0, 0, 0 }, { CHK, 0, "h", 2, 1, 1, SC_PROBE },
	    { RES, 100, NULL, 1, S, SITE, 150 },        /* queue says 150; twice 90 s is later */
	    { CHK, 0, "h", 2, 0, 1, SC_DEAD },
	    { NEXT, 0, NULL, 150, 0, 0, 0 },            /* the item's own time: it is held */
	    { WAKE, 150, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 2, 0, 0, 0 },
	    { NEXT, 0, NULL, 280, 0, 0, 0 }, { WAKE, 279, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 2, 0, 0, 0 }, { WAKE, 280, NULL, 0, 0, 0, 0 }, { JOBS, 0, NULL, 3, 0, 0, 0 },
	    { RES, 280, NULL, 2, S, SITE, 9000 },       /* the queue's later time wins */
	    { NEXT, 0, NULL, 9000, 0, 0, 0 }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "a recipient's failure at window 1 does not kill", "c transport=smtp perhost=1 recipients=1",
	  { { ADD, 0, "h", 2, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { RES, 1, NULL, 0, S, RCPT, 100 },
	    { CHK, 0, "h", 2, 1, 1, SC_ALIVE }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "a success started before the death revives", "c transport=smtp perhost=4 recipients=1",
	  { { ADD, 0, "h", 8, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 },
	    { RES, 1, NULL, 0, S, SITE, 60 }, { RES, 1, NULL, 1, S, SITE, 60 },
	    { RES, 1, NULL, 2, S, SITE, 60 }, { CHK, 0, "h", 4, 1, 1, SC_DEAD },
	    { RES, 2, NULL, 3, D_OK, 0, 0 }, { CHK, 0, "h", 8, 4, 4, SC_ALIVE }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "flush gives a dead destination its probe now", "c transport=smtp perhost=1 recipients=1",
	  { { ADD, 0, "h", 2, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { RES, 1, NULL, 0, S, SITE, 1000 },
	    { CHK, 0, "h", 1, 0, 1, SC_DEAD }, { FLUSH, 5, NULL, 0, 0, 0, 0 }, { NEXT, 0, NULL, 5, 0, 0, 0 }, { WAKE, 5, NULL, 0, 0, 0, 0 },
	    { CHK, 0, "h", 2, 1, 1, SC_PROBE }, { END, 0, NULL, 0, 0, 0, 0 } } },
	{ "another destination of the channel is not held", "c transport=smtp perhost=1 recipients=1",
	  { { ADD, 0, "a", 2, 0, 0, 0 }, { WAKE, 0, NULL, 0, 0, 0, 0 }, { RES, 1, NULL, 0, S, SITE, 1000 },
	    { CHK, 0, "a", 0, 0, 1, SC_DEAD }, { ADD, 2, "b", 1, 2, 0, 0 }, { WAKE, 2, NULL, 0, 0, 0, 0 },
	    { CHK, 0, "b", 0, 1, 1, SC_ALIVE }, { JOBS, 0, NULL, 2, 0, 0, 0 }, { END, 0, NULL, 0, 0, 0, 0 } } },
};

static void run_case(const struct scase *c)
{
	struct channel_table tab;
	struct sched_core s;
	uint64_t nextid = 1;
	table(&tab, c->chan);
	sched_core_init(&s, &tab, rec_run, NULL);
	njobs = 0;
	fprintf(stderr, "case: %s\n", c->name);
	for (const struct step *p = c->s; p->op != END; p++) {
		int fails = t_fails;
		if (p->op == ADD || p->op == ADD2) {
			int64_t nmsg = p->op == ADD ? p->x : 1;
			for (int64_t k = 0; k < nmsg; k++) {
				uint64_t id = nextid++;
				for (uint64_t i = 0; i < (p->op == ADD ? 1u : 2u); i++) {
					struct sc_add a = { .msgid = id, .idx = i, .birth = p->now, .next = p->y,
					                    .sender = "s@x", .channel = "c", .host = p->host,
					                    .domain = p->host };
					T_EQ_INT(sched_core_add(&s, &a), 0);
				}
			}
		} else if (p->op == WAKE) {
			sched_core_wake(&s, p->now);
		} else if (p->op == RES || p->op == RES1) {
			T_CHECK((size_t)p->x < njobs);
			const struct job *j = &jobs[p->x];
			for (size_t i = 0; (size_t)p->x < njobs && i < j->n; i++) {
				int first = i == 0 || p->op == RES;
				sched_core_result(&s, j->msgid, j->idx[i], first ? (int)p->y : D_OK,
				                  first ? p->w : 0, "diag", first ? (int)p->z : RCPT, p->now);
			}
		} else if (p->op == FLUSH) {
			sched_core_flush(&s, p->now);
		} else if (p->op == CHK) {
			const struct sc_thread *t = sched_core_thread_find(&s, "c", p->host);
			T_CHECK(t != NULL);
			if (p->x)
				T_EQ_INT(njobs, p->x);
			if (t) {
				T_EQ_INT(t->inflight, p->y);
				T_EQ_INT(t->window, p->z);
				T_EQ_INT(t->state, p->w);
				T_CHECK(t->window <= t->perhost);
			}
		} else if (p->op == NEXT) {
			T_EQ_INT(sched_core_next_wake(&s), p->x);
		} else if (p->op == JOBS) {
			T_EQ_INT(njobs, p->x);
		}
		if (t_fails != fails)
			fprintf(stderr, "  ... at step %td of \"%s\"\n", p - c->s, c->name);
	}
	size_t sum = 0;                      /* the channel's count (its row: the first declared) is the threads' sum */
	for (size_t b = 0; b < SC_THREAD_BUCKETS; b++)
		for (const struct sc_thread *t = s.threads[b]; t; t = t->hnext)
			sum += t->inflight;
	T_EQ_INT(s.chans[CHANNEL_T_COUNT].inflight, sum);
	T_CHECK(s.chans[CHANNEL_T_COUNT].inflight <= s.chans[CHANNEL_T_COUNT].limit);
	sched_core_free(&s);
}

/* a dead thread outlives its last item until its retry time, so new mail waits too; then it
 * is forgotten */
static void dead_thread_kept(void)
{
	struct channel_table tab;
	struct sched_core s;
	table(&tab, "c transport=smtp perhost=1 recipients=1");
	sched_core_init(&s, &tab, rec_run, NULL);
	njobs = 0;
	struct sc_add a = { .msgid = 7, .idx = 0, .birth = 0, .next = 0, .sender = "",
	                    .channel = "c", .host = "h", .domain = "h" };
	sched_core_add(&s, &a);
	sched_core_wake(&s, 0);
	sched_core_result(&s, 7, 0, D_TEMP, 100, "421", DSCOPE_SITE, 1);
	sched_core_ctl(&s, 0, 7, 2);                 /* the message is removed */
	T_EQ_INT(s.nitems, 0);
	const struct sc_thread *t = sched_core_thread_find(&s, "c", "h");
	T_CHECK(t && t->state == SC_DEAD);
	a.msgid = 8;
	a.next = 3;
	sched_core_add(&s, &a);
	sched_core_wake(&s, 3);
	T_EQ_INT(njobs, 1);
	sched_core_ctl(&s, 0, 8, 4);
	sched_core_wake(&s, 100);                    /* nothing to probe with: forgotten */
	T_CHECK(sched_core_thread_find(&s, "c", "h") == NULL);
	T_EQ_INT(sched_core_next_wake(&s), -1);
	sched_core_free(&s);
}

/* a snapshot's view of a dead thread: its next is the probe time, ready items say "dead" */
static void snapshot_view(void)
{
	struct channel_table tab;
	struct sched_core s;
	table(&tab, "c transport=smtp perhost=1 recipients=1");
	sched_core_init(&s, &tab, rec_run, NULL);
	njobs = 0;
	for (uint64_t id = 1; id <= 2; id++) {
		struct sc_add a = { .msgid = id, .idx = 0, .birth = 0, .next = 0, .sender = "",
		                    .channel = "c", .host = "h", .domain = "h" };
		sched_core_add(&s, &a);
	}
	sched_core_wake(&s, 0);
	sched_core_result(&s, jobs[0].msgid, 0, D_TEMP, 100, "421", DSCOPE_SITE, 10);
	const struct sc_thread *t = sched_core_thread_find(&s, "c", "h");
	T_EQ_INT(sched_core_thread_next(t), 100);
	for (const struct sc_item *it = t->ihead; it; it = it->tnext) {
		T_EQ_INT(sched_core_item_next(it, 10), 100);
		T_EQ_STR(sched_core_item_reason(&s, it), it->ready ? "dead" : "");
	}
	T_EQ_STR(sched_core_state_name(t->state), "dead");
	sched_core_free(&s);
}

/* ETRN for a dead destination whose recipients are all held ready: its probe goes now */
static void etrn_dead(void)
{
	struct channel_table tab;
	struct sched_core s;
	table(&tab, "c transport=smtp perhost=1 recipients=1");
	sched_core_init(&s, &tab, rec_run, NULL);
	njobs = 0;
	for (uint64_t id = 1; id <= 2; id++) {
		struct sc_add a = { .msgid = id, .idx = 0, .birth = 0, .next = 0, .sender = "",
		                    .channel = "c", .host = "mx.example.org:25", .domain = "example.org" };
		sched_core_add(&s, &a);
	}
	sched_core_wake(&s, 0);
	sched_core_result(&s, jobs[0].msgid, 0, D_TEMP, 500, "421", DSCOPE_SITE, 1);
	sched_core_ctl(&s, 0, jobs[0].msgid, 2);      /* only the held ready one is left */
	sched_core_wake(&s, 3);
	T_EQ_INT(njobs, 1);
	T_EQ_INT(sched_core_etrn(&s, "other.org", 4), 0);
	T_EQ_INT(sched_core_etrn(&s, "mx.example.org", 4), 1);
	T_EQ_INT(sched_core_next_wake(&s), 4);
	sched_core_wake(&s, 4);
	T_EQ_INT(njobs, 2);
	T_EQ_INT(sched_core_thread_find(&s, "c", "mx.example.org:25")->state, SC_PROBE);
	sched_core_free(&s);
}

static void run(void)
{
	etrn_dead();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i]);
	dead_thread_kept();
	snapshot_view();
}

T_MAIN(run)
