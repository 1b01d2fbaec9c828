/* sched_core — the scheduler's state and decisions without IPC (sched_core.h says what it
 * owns). Time comes in as `now`; jobs go out through the run callback; state changes of a
 * destination are logged here, one line each (event=destination_dead / destination_probe /
 * destination_alive).
 * Trusts: its caller (sched.c) for validated values; the channel table for the limits. */
#include "ternd/scheduler/sched_core.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "lib/log.h"
#include "lib/buf.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SC_BATCH_MAX CHANNEL_RCPTMAX   /* recipients of one job at most */

/* ---- heap of items (next try) and dead threads (probe time) -------------------------------- */

static void heap_set(struct sched_core *s, size_t i, struct sc_hent *e)
{
	s->heap[i] = e;
	e->hpos = i + 1;
}

static void heap_up(struct sched_core *s, size_t i)
{
	struct sc_hent *e = s->heap[i];
	while (i > 0 && s->heap[(i - 1) / 2]->at > e->at) {
		heap_set(s, i, s->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(s, i, e);
}

static void heap_down(struct sched_core *s, size_t i)
{
	struct sc_hent *e = s->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->heap_n)
			break;
		if (c + 1 < s->heap_n && s->heap[c + 1]->at < s->heap[c]->at)
			c++;
		if (s->heap[c]->at >= e->at)
			break;
		heap_set(s, i, s->heap[c]);
		i = c;
	}
	heap_set(s, i, e);
}

static void heap_remove(struct sched_core *s, struct sc_hent *e)
{
	if (!e->hpos)
		return;
	size_t i = e->hpos - 1;
	e->hpos = 0;
	struct sc_hent *last = s->heap[--s->heap_n];
	if (i == s->heap_n)
		return;
	heap_set(s, i, last);
	heap_up(s, i);
	heap_down(s, last->hpos - 1);
}

/* (re)place e at time at */
static void heap_put(struct sched_core *s, struct sc_hent *e, int64_t at)
{
	heap_remove(s, e);
	e->at = at;
	if (s->heap_n == s->heap_cap) {
		s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 256;
		s->heap = xrealloc(s->heap, s->heap_cap * sizeof *s->heap);
	}
	s->heap[s->heap_n++] = e;
	heap_up(s, s->heap_n - 1);
}

/* ---- threads and channels ------------------------------------------------------------------ */

static size_t thash(const char *c, const char *h)
{
	size_t v = 5381;
	for (; *c; c++) v = v * 33 + (unsigned char)*c;
	for (; *h; h++) v = v * 33 + (unsigned char)*h;
	return v % SC_THREAD_BUCKETS;
}

static struct sc_chan *chan_of(struct sched_core *s, const char *name)
{
	const struct channel_row *r = channel_find(s->tab, name);
	return r ? &s->chans[r - s->tab->row] : &s->chans[s->nchans - 1];
}

const struct sc_chan *sched_core_chan_of(const struct sched_core *s, const char *name)
{
	return chan_of((struct sched_core *)s, name);
}

static size_t window_init(const struct sc_thread *t)
{
	return t->perhost < SC_WINDOW_INIT ? t->perhost : SC_WINDOW_INIT;
}

struct sc_thread *sched_core_thread_find(const struct sched_core *s, const char *channel,
                                         const char *host)
{
	for (struct sc_thread *t = s->threads[thash(channel, host)]; t; t = t->hnext)
		if (strcmp(t->channel, channel) == 0 && strcmp(t->host, host) == 0)
			return t;
	return NULL;
}

static struct sc_thread *thread_get(struct sched_core *s, const char *channel, const char *host)
{
	struct sc_thread *t = sched_core_thread_find(s, channel, host);
	if (t)
		return t;
	size_t b = thash(channel, host);
	const struct channel_row *row = chan_of(s, channel)->row;
	t = xcalloc(1, sizeof *t);
	t->h.isthread = 1;
	t->channel = xstrdup(channel);
	t->host = xstrdup(host);
	t->perhost = row && row->perhost ? (size_t)row->perhost : 1;
	t->window = window_init(t);
	t->hnext = s->threads[b];
	s->threads[b] = t;
	return t;
}

/* free t when nothing refers to it; a dead thread stays until its retry time (Postfix keeps a
 * throttled queue), so that new mail for it waits too */
static void thread_put(struct sched_core *s, struct sc_thread *t)
{
	if (t->nitems || t->on_ready || t->inflight || t->h.hpos)
		return;
	for (struct sc_thread **pp = &s->threads[thash(t->channel, t->host)]; *pp; pp = &(*pp)->hnext)
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	free(t->channel);
	free(t->host);
	free(t);
}

static void channel_mark_ready(struct sched_core *s, struct sc_thread *t)
{
	struct sc_chan *c = chan_of(s, t->channel);
	if (t->on_ready)
		return;
	t->on_ready = 1;
	t->cnext = NULL;
	if (c->rtail)
		c->rtail->cnext = t;
	else
		c->rhead = t;
	c->rtail = t;
}

static void make_ready(struct sched_core *s, struct sc_item *it)
{
	struct sc_thread *t = it->th;
	heap_remove(s, &it->h);
	it->ready = 1;
	it->rnext = NULL;
	if (t->rtail)
		t->rtail->rnext = it;
	else
		t->rhead = it;
	t->rtail = it;
	channel_mark_ready(s, t);
}

/* ---- the state of a destination --------------------------------------------------------------- */

const char *sched_core_state_name(enum sc_state st)
{
	return st == SC_DEAD ? "dead" : st == SC_PROBE ? "probe" : "alive";
}

/* a failed cohort at window 1, or a failed probe: nothing of t runs until now + its backoff
 * (the queue's retry time for the cohort, or twice the last wait up to SC_DEAD_MAXBACKOFF) */
static void thread_die(struct sched_core *s, struct sc_thread *t, int64_t retry, int64_t now)
{
	int64_t wait = retry - now, twice = t->backoff * 2;
	if (twice > SC_DEAD_MAXBACKOFF)
		twice = SC_DEAD_MAXBACKOFF;
	if (wait < twice)
		wait = twice;
	if (wait < 1)
		wait = 1;
	t->backoff = wait;
	t->state = SC_DEAD;
	t->window = 1;
	heap_put(s, &t->h, now + wait);
	log_info("event=destination_dead channel=%s host=%s next=%lld wait=%lld", t->channel,
	         t->host, (long long)(now + wait), (long long)wait);
}

static void thread_revive(struct sched_core *s, struct sc_thread *t)
{
	log_info("event=destination_alive channel=%s host=%s next=0", t->channel, t->host);
	heap_remove(s, &t->h);
	t->state = SC_ALIVE;
	t->backoff = 0;
	t->window = window_init(t);
	if (t->rhead)
		channel_mark_ready(s, t);
}

/* a dead thread's time came: one probe job may run (window 1) */
static void thread_wake(struct sched_core *s, struct sc_thread *t, int64_t now)
{
	heap_remove(s, &t->h);
	if (!t->nitems && !t->inflight) {     /* nothing to probe with: forget it */
		t->state = SC_ALIVE;
		thread_put(s, t);
		return;
	}
	t->state = SC_PROBE;
	t->window = 1;
	log_info("event=destination_probe channel=%s host=%s next=%lld", t->channel, t->host,
	         (long long)now);
	if (t->rhead)
		channel_mark_ready(s, t);
}

/* a job of t ended: the window grows when a recipient got a final answer and halves on the
 * destination's failure; a job whose recipients were all deferred by the destination one by
 * one (every RCPT 451: a greylisting server) neither grows nor shrinks it; a failure at window
 * 1 (or of the probe) marks it dead, any answer revives it */
static void job_end(struct sched_core *s, struct sc_thread *t, const struct sc_job *j, int64_t now)
{
	int failed = j->anytemp && !j->anyok;
	if (!failed) {
		if (t->state != SC_ALIVE)
			thread_revive(s, t);
		else if (j->anyok && t->window < t->perhost)
			t->window++;
		return;
	}
	if (t->state == SC_DEAD || (t->state == SC_PROBE && !j->probe))
		return;                        /* a job started before it died: nothing new */
	if (t->state == SC_ALIVE && t->window > 1)
		t->window /= 2;
	else
		thread_die(s, t, j->retry, now);
}

/* ---- running jobs ------------------------------------------------------------------------------ */

/* Unlink from t's ready FIFO other ready items of it's message, up to the channel's
 * recipients per job (smtp batches a message's recipients per transaction; local delivery
 * is one recipient per run). */
static size_t take_batch(struct sched_core *s, struct sc_thread *t, struct sc_item *it,
                         struct sc_item **out)
{
	const struct channel_row *row = chan_of(s, t->channel)->row;
	size_t n = 0, max = row && row->rcpts < SC_BATCH_MAX ? row->rcpts : SC_BATCH_MAX;
	out[n++] = it;
	if (!row)
		return n;
	for (struct sc_item **pp = &t->rhead; *pp && n < max;) {
		struct sc_item *x = *pp;
		if (x->msgid != it->msgid) {
			pp = &x->rnext;
			continue;
		}
		*pp = x->rnext;
		if (t->rtail == x) {
			t->rtail = NULL;
			for (struct sc_item *y = t->rhead; y; y = y->rnext)
				t->rtail = y;
		}
		x->ready = 0;
		out[n++] = x;
	}
	return n;
}

static void run_items(struct sched_core *s, struct sc_thread *t, struct sc_item **v, size_t n,
                      int64_t now)
{
	struct sc_job *j = xcalloc(1, sizeof *j);
	j->left = n;
	j->probe = t->state == SC_PROBE;
	t->inflight++;
	chan_of(s, t->channel)->inflight++;
	for (size_t i = 0; i < n; i++) {
		v[i]->inflight = 1;
		v[i]->job = j;
		v[i]->lastfeed = now;
	}
	s->run(s->arg, t, v, n);
}

/* Start what the limits allow, round robin over the channel's ready threads. */
static void dispatch(struct sched_core *s, struct sc_chan *c, int64_t now)
{
	while (c->rhead && c->inflight < c->limit) {
		struct sc_thread *t = c->rhead;
		c->rhead = t->cnext;
		if (!c->rhead)
			c->rtail = NULL;
		t->on_ready = 0;
		if (!t->rhead) {           /* its ready items were withdrawn (hold, remove, kill) */
			thread_put(s, t);
			continue;
		}
		if (t->state == SC_DEAD || t->inflight >= t->window)
			continue;          /* re-marked ready when it may run again */
		struct sc_item *it = t->rhead;
		t->rhead = it->rnext;
		if (!t->rhead)
			t->rtail = NULL;
		it->ready = 0;
		struct sc_item *batch[SC_BATCH_MAX];
		run_items(s, t, batch, take_batch(s, t, it, batch), now);
		if (t->rhead)
			channel_mark_ready(s, t);
	}
}

void sched_core_wake(struct sched_core *s, int64_t now)
{
	while (s->heap_n && s->heap[0]->at <= now) {
		struct sc_hent *e = s->heap[0];
		if (e->isthread)
			thread_wake(s, (struct sc_thread *)e, now);
		else
			make_ready(s, (struct sc_item *)e);
	}
	for (size_t i = 0; i < s->nchans; i++)
		dispatch(s, &s->chans[i], now);
}

int64_t sched_core_next_wake(const struct sched_core *s)
{
	return s->heap_n ? s->heap[0]->at : -1;
}

/* ---- items --------------------------------------------------------------------------------------- */

static struct sc_item **find_item(struct sched_core *s, uint64_t msgid, uint64_t idx,
                                  struct sc_msg **sm)
{
	*sm = (struct sc_msg *)hmap_get(&s->msgs, msgid);
	if (!*sm)
		return NULL;
	for (size_t i = 0; i < (*sm)->n; i++)
		if ((*sm)->items[i] && (*sm)->items[i]->idx == idx)
			return &(*sm)->items[i];
	return NULL;
}

int sched_core_add(struct sched_core *s, const struct sc_add *a)
{
	struct sc_msg *sm;
	if (!*a->channel || find_item(s, a->msgid, a->idx, &sm))
		return -1;
	if (!sm) {
		sm = xcalloc(1, sizeof *sm);
		sm->h.key = a->msgid;
		sm->birth = a->birth;
		sm->sender = xstrdup(a->sender);
		hmap_put(&s->msgs, &sm->h);
		s->msgs_in++;
	}
	struct sc_item *it = xcalloc(1, sizeof *it);
	it->msgid = a->msgid;
	it->idx = (uint32_t)a->idx;
	it->attempts = (uint32_t)a->attempts;
	it->th = thread_get(s, a->channel, a->host);
	it->th->nitems++;
	it->sm = sm;
	it->domain = xstrdup(a->domain);
	it->tnext = it->th->ihead;
	if (it->tnext)
		it->tnext->tprev = it;
	it->th->ihead = it;
	s->rcpts_in++;
	s->nitems++;
	sm->items = xrealloc(sm->items, (sm->n + 1) * sizeof *sm->items);
	sm->items[sm->n++] = it;
	heap_put(s, &it->h, a->next);
	return 0;
}

static void item_drop(struct sched_core *s, struct sc_msg *sm, struct sc_item **slot)
{
	struct sc_item *it = *slot;
	struct sc_thread *t = it->th;
	heap_remove(s, &it->h);
	t->nitems--;
	if (it->tprev)
		it->tprev->tnext = it->tnext;
	else
		t->ihead = it->tnext;
	if (it->tnext)
		it->tnext->tprev = it->tprev;
	*slot = NULL;
	free(it->diag);
	free(it->domain);
	free(it);
	s->rcpts_out++;
	s->nitems--;
	thread_put(s, t);
	size_t live = 0;
	for (size_t i = 0; i < sm->n; i++)
		live += sm->items[i] != NULL;
	if (!live) {
		hmap_del(&s->msgs, sm->h.key);
		free(sm->items);
		free(sm->sender);
		free(sm);
		s->msgs_out++;
	}
}

void sched_core_result(struct sched_core *s, uint64_t msgid, uint64_t idx, int st, int64_t next,
                       const char *diag, int scope, int64_t now)
{
	struct sc_msg *sm;
	struct sc_item **slot = find_item(s, msgid, idx, &sm);
	if (!slot)
		return;
	struct sc_item *it = *slot;
	struct sc_thread *t = it->th;
	struct sc_chan *c = chan_of(s, t->channel);
	free(it->diag);
	it->diag = xstrdup(diag);
	if (it->inflight) {
		struct sc_job *j = it->job;
		it->inflight = 0;
		it->job = NULL;
		j->anyok |= st != D_TEMP;
		if (st == D_TEMP && scope == DSCOPE_SITE) {   /* a recipient's 4xx is not the site's */
			j->anytemp = 1;
			if (next > j->retry)
				j->retry = next;
		}
		if (--j->left == 0) {
			t->inflight--;
			c->inflight--;
			job_end(s, t, j, now);
			free(j);
		}
	}
	if (t->rhead)
		channel_mark_ready(s, t);    /* before a drop: a thread with ready items stays */
	if (st == D_TEMP && !it->ready) {
		it->attempts++;
		heap_put(s, &it->h, next);
	} else if (st != D_TEMP && !it->ready)
		item_drop(s, sm, slot);      /* may free t */
	dispatch(s, c, now);
}

/* ---- operator requests: flush, ETRN, schedule, forget -------------------------------------- */

static void heap_rebuild(struct sched_core *s)
{
	for (size_t i = s->heap_n; i-- > 0;)
		heap_down(s, i);
}

/* a waiting item or a dead destination the operator wants tried now (Postfix's flush also
 * revives dead destinations: they get their probe now) */
size_t sched_core_flush(struct sched_core *s, int64_t now)
{
	for (size_t i = 0; i < s->heap_n; i++)
		s->heap[i]->at = now;
	log_info("event=flush waiting=%zu", s->heap_n);
	return s->heap_n;
}

/* ETRN <domain> (RFC 1985): every waiting recipient of the non-local threads for domain (or
 * below it, for "@domain" / ".domain" style requests) becomes ready now. */
static int etrn_match(const char *host, const char *dom)
{
	size_t hl = strlen(host), dl = strlen(dom);
	const char *colon = strchr(host, ':');
	if (colon)
		hl = (size_t)(colon - host);     /* "relay:port" threads from smtproutes */
	if (hl == dl && strncasecmp(host, dom, dl) == 0)
		return 1;
	return hl > dl && host[hl - dl - 1] == '.' && strncasecmp(host + hl - dl, dom, dl) == 0;
}

size_t sched_core_etrn(struct sched_core *s, const char *dom, int64_t now)
{
	size_t n = 0;
	if (*dom == '@' || *dom == '#' || *dom == '.')
		dom++;
	for (size_t i = 0; i < s->heap_n; i++) {
		if (s->heap[i]->isthread) {           /* a dead destination: its probe goes now */
			struct sc_thread *t = (struct sc_thread *)s->heap[i];
			if (!channel_is_local(s->tab, t->channel) && etrn_match(t->host, dom)) {
				t->h.at = now;
				for (const struct sc_item *x = t->rhead; x; x = x->rnext)
					n++;             /* held ready: they go after the probe */
			}
			continue;
		}
		struct sc_item *it = (struct sc_item *)s->heap[i];
		if (!channel_is_local(s->tab, it->th->channel) &&
		    (etrn_match(it->th->host, dom) || etrn_match(it->domain, dom))) {
			it->h.at = now;
			if (it->th->h.hpos)
				it->th->h.at = now;   /* its dead destination: the probe goes now */
			n++;
		}
	}
	heap_rebuild(s);
	log_info("event=etrn domain=%s recipients=%zu", dom, n);
	return n;
}

static void ready_unlink(struct sc_item *it)
{
	struct sc_thread *t = it->th;
	struct sc_item *prev = NULL;
	for (struct sc_item *x = t->rhead; x; prev = x, x = x->rnext)
		if (x == it) {
			if (prev)
				prev->rnext = x->rnext;
			else
				t->rhead = x->rnext;
			if (t->rtail == x)
				t->rtail = prev;
			break;
		}
	it->ready = 0;
}

void sched_core_ctl(struct sched_core *s, uint64_t op, uint64_t msgid, int64_t now)
{
	struct sc_msg *sm = (struct sc_msg *)hmap_get(&s->msgs, msgid);
	if (!sm)
		return;
	size_t n = sm->n;
	for (size_t i = 0; i < n && hmap_get(&s->msgs, msgid) == &sm->h; i++) {
		struct sc_item *it = sm->items[i];
		if (!it || it->inflight)
			continue;
		if (op == 1) {
			if (it->h.hpos)
				heap_put(s, &it->h, now);
			if (it->th->h.hpos)
				heap_put(s, &it->th->h, now);
			continue;
		}
		if (it->ready)
			ready_unlink(it);
		item_drop(s, sm, &sm->items[i]);
	}
}

/* ---- snapshot helpers --------------------------------------------------------------------------- */

size_t sched_core_thread_msgs(const struct sc_thread *t)
{
	size_t n = 0, cap = t->nitems ? t->nitems : 1;
	uint64_t *ids = xcalloc(cap, sizeof *ids);
	for (const struct sc_item *it = t->ihead; it; it = it->tnext) {
		size_t j = 0;
		while (j < n && ids[j] != it->msgid)
			j++;
		if (j == n && n < cap)
			ids[n++] = it->msgid;
	}
	free(ids);
	return n;
}

int64_t sched_core_thread_next(const struct sc_thread *t)
{
	if (t->state == SC_DEAD)
		return t->h.at;
	int64_t next = -1;
	for (const struct sc_item *it = t->ihead; it; it = it->tnext) {
		int64_t w = (it->ready || it->inflight) ? 0 : it->h.at;
		if (next < 0 || w < next)
			next = w;
	}
	return next < 0 ? 0 : next;
}

int64_t sched_core_item_next(const struct sc_item *it, int64_t now)
{
	int64_t at = (it->ready || it->inflight) ? now : it->h.at;
	return it->th->state == SC_DEAD && !it->inflight && it->th->h.at > at ? it->th->h.at : at;
}

const char *sched_core_item_reason(const struct sched_core *s, const struct sc_item *it)
{
	if (!it->ready)
		return "";
	if (it->th->state == SC_DEAD)
		return "dead";
	const struct sc_chan *c = sched_core_chan_of(s, it->th->channel);
	return c->inflight >= c->limit ? "channel" : "thread";
}

/* ---- setup --------------------------------------------------------------------------------------- */

void sched_core_init(struct sched_core *s, const struct channel_table *tab,
                     sched_core_run_fn *run, void *arg)
{
	memset(s, 0, sizeof *s);
	s->tab = tab;
	s->run = run;
	s->arg = arg;
	hmap_init(&s->msgs);
	for (size_t i = 0; i < tab->n; i++)
		s->chans[i] = (struct sc_chan){ .name = tab->row[i].name, .row = &tab->row[i],
		                                .limit = tab->row[i].concurrency ? tab->row[i].concurrency : 1 };
	s->chans[tab->n] = (struct sc_chan){ .name = "(unknown)", .row = NULL, .limit = 1 };
	s->nchans = tab->n + 1;
}

void sched_core_free(struct sched_core *s)
{
	for (size_t b = 0; b < SC_THREAD_BUCKETS; b++)
		while (s->threads[b]) {
			struct sc_thread *t = s->threads[b];
			s->threads[b] = t->hnext;
			for (struct sc_item *it = t->ihead, *nx; it; it = nx) {
				nx = it->tnext;
				if (it->job && --it->job->left == 0)
					free(it->job);
				free(it->diag);
				free(it->domain);
				free(it);
			}
			free(t->channel);
			free(t->host);
			free(t);
		}
	size_t b = 0;
	struct hnode *n;
	while ((n = hmap_next(&s->msgs, &b, NULL)) != NULL) {
		struct sc_msg *sm = (struct sc_msg *)hmap_del(&s->msgs, n->key);
		free(sm->items);
		free(sm->sender);
		free(sm);
	}
	hmap_free(&s->msgs);
	free(s->heap);
	memset(s, 0, sizeof *s);
}
