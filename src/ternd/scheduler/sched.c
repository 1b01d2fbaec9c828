/* sched — the scheduler role: the in-memory schedule of every deliverable recipient.
 * Owns: threads keyed by (channel, host) as in ZMailer, one concurrency limit per row of the
 * channel table (mail/channel.h; a name not in it goes to one extra bucket of concurrency 1
 * whose jobs the queue defers), a per-thread window that grows on success and
 * shrinks on temporary failure, and the wake-up heap of retry times. It touches no files and
 * no network: the queue tells it what exists (M_SCHED_ADD) and what happened
 * (M_SCHED_RESULT); it tells the queue what to run now (M_SCHED_RUN).
 * Trusts: the queue's messages after validation; it never decides a recipient's fate; the
 * parent for a restarted peer's channel (M_PEER_NEW). A peer that dies is waited for (its
 * replacement arrives from the parent); the parent's channel closing ends the role. */
#include "ternd/role.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "mail/channel.h"
#include "lib/ev.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_INIT 4
#define BATCH_MAX CHANNEL_RCPTMAX   /* recipients of one job at most */

struct thread;
struct job { size_t left; int anyok, anytemp; };   /* one RUN: counts once against limits */
struct item {
	struct item *rnext;          /* thread's ready FIFO */
	struct item *tnext, *tprev;  /* every item of the thread */
	struct thread *th;
	uint64_t msgid;
	uint32_t idx;
	int64_t next;
	uint32_t attempts;
	size_t hpos;                 /* heap index + 1; 0 = not in the heap */
	int inflight, ready;
	struct job *job;             /* while inflight */
	int64_t lastfeed;            /* when it was last handed to the queue to run */
	char *domain;                /* the recipient's domain (ETRN) */
	char *diag;                  /* last diagnostic */
	struct smsg *sm;
};

struct thread {
	struct thread *hnext, *cnext;  /* hash chain; channel's ready list */
	char *channel, *host;
	struct item *rhead, *rtail;
	struct item *ihead;          /* every item */
	size_t nitems, inflight, window;
	int on_ready;
};

struct schan {
	const char *name;
	const struct channel_row *row;   /* NULL: the bucket of names not in the table */
	size_t limit, inflight, nthreads;
	struct thread *rhead, *rtail;
};

struct smsg { struct hnode h; struct item **items; size_t n; int64_t birth; char *sender; };

static struct config *cfg;
static struct chan *ch_queue, *ch_control, *ch_parent;
static struct hmap smsgs;
static struct thread *threads[1024];
static struct schan chans[CHANNEL_MAX + 1];  /* one per table row, then the unknown bucket */
static size_t nchans;
static struct item **heap;
static size_t heap_n, heap_cap;
static struct ev *wake_ev;
static int64_t started;
static uint64_t msgs_in, msgs_out, rcpts_in, rcpts_out, nitems_total;

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* ---- heap of waiting items by next try ---------------------------------------------------- */

static void heap_set(size_t i, struct item *it) { heap[i] = it; it->hpos = i + 1; }

static void heap_up(size_t i)
{
	struct item *it = heap[i];
	while (i > 0 && heap[(i - 1) / 2]->next > it->next) {
		heap_set(i, heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(i, it);
}

static void heap_down(size_t i)
{
	struct item *it = heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= heap_n)
			break;
		if (c + 1 < heap_n && heap[c + 1]->next < heap[c]->next)
			c++;
		if (heap[c]->next >= it->next)
			break;
		heap_set(i, heap[c]);
		i = c;
	}
	heap_set(i, it);
}

static void heap_push(struct item *it)
{
	if (heap_n == heap_cap) {
		heap_cap = heap_cap ? heap_cap * 2 : 256;
		heap = xrealloc(heap, heap_cap * sizeof *heap);
	}
	heap[heap_n++] = it;
	heap_up(heap_n - 1);
}

static void heap_remove(struct item *it)
{
	if (!it->hpos)
		return;
	size_t i = it->hpos - 1;
	it->hpos = 0;
	struct item *last = heap[--heap_n];
	if (i == heap_n)
		return;
	heap_set(i, last);
	heap_up(i);
	heap_down(last->hpos - 1);
}

/* ---- threads and channels ------------------------------------------------------------------ */

static size_t thash(const char *c, const char *h)
{
	size_t v = 5381;
	for (; *c; c++) v = v * 33 + (unsigned char)*c;
	for (; *h; h++) v = v * 33 + (unsigned char)*h;
	return v % (sizeof threads / sizeof threads[0]);
}

static struct schan *chan_of(const char *name)
{
	const struct channel_row *r = channel_find(&cfg->channels, name);
	return r ? &chans[r - cfg->channels.row] : &chans[nchans - 1];
}

static struct thread *thread_get(const char *channel, const char *host)
{
	size_t b = thash(channel, host);
	for (struct thread *t = threads[b]; t; t = t->hnext)
		if (strcmp(t->channel, channel) == 0 && strcmp(t->host, host) == 0)
			return t;
	struct thread *t = xcalloc(1, sizeof *t);
	t->channel = xstrdup(channel);
	t->host = xstrdup(host);
	t->window = WINDOW_INIT;
	t->hnext = threads[b];
	threads[b] = t;
	return t;
}

static void thread_put(struct thread *t)
{
	if (t->nitems || t->on_ready || t->inflight)
		return;
	size_t b = thash(t->channel, t->host);
	for (struct thread **pp = &threads[b]; *pp; pp = &(*pp)->hnext)
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	free(t->channel);
	free(t->host);
	free(t);
}

static void channel_mark_ready(struct thread *t)
{
	struct schan *c = chan_of(t->channel);
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

static void make_ready(struct item *it)
{
	struct thread *t = it->th;
	heap_remove(it);
	it->ready = 1;
	it->rnext = NULL;
	if (t->rtail)
		t->rtail->rnext = it;
	else
		t->rhead = it;
	t->rtail = it;
	channel_mark_ready(t);
}

/* Unlink from t's ready FIFO other ready items of it's message, up to the channel's
 * recipients per job (smtp batches a message's recipients per transaction; local delivery
 * is one recipient per run). */
static size_t take_batch(struct thread *t, struct item *it, struct item **out)
{
	const struct channel_row *row = chan_of(t->channel)->row;
	size_t n = 0, max = row && row->rcpts < BATCH_MAX ? row->rcpts : BATCH_MAX;
	out[n++] = it;
	if (!row)
		return n;
	for (struct item **pp = &t->rhead; *pp && n < max;) {
		struct item *x = *pp;
		if (x->msgid != it->msgid) {
			pp = &x->rnext;
			continue;
		}
		*pp = x->rnext;
		if (t->rtail == x) {
			t->rtail = NULL;
			for (struct item *y = t->rhead; y; y = y->rnext)
				t->rtail = y;
		}
		x->ready = 0;
		out[n++] = x;
	}
	return n;
}

static void run_items(struct thread *t, struct item **v, size_t n)
{
	struct msg out;
	struct job *j = xcalloc(1, sizeof *j);
	j->left = n;
	t->inflight++;
	chan_of(t->channel)->inflight++;
	msg_init(&out, M_SCHED_RUN, 0);
	msg_u64(&out, v[0]->msgid);
	msg_str(&out, t->channel);
	msg_str(&out, t->host);
	msg_u64(&out, n);
	for (size_t i = 0; i < n; i++) {
		v[i]->inflight = 1;
		v[i]->job = j;
		v[i]->lastfeed = now_s();
		msg_u64(&out, v[i]->idx);
	}
	chan_send(ch_queue, &out);
}

/* Start what the limits allow, round robin over the channel's ready threads. */
static void dispatch(struct schan *c)
{
	while (c->rhead && c->inflight < c->limit) {
		struct thread *t = c->rhead;
		c->rhead = t->cnext;
		if (!c->rhead)
			c->rtail = NULL;
		t->on_ready = 0;
		if (!t->rhead) {           /* its ready items were withdrawn (hold, remove, kill) */
			thread_put(t);
			continue;
		}
		if (t->inflight >= t->window)
			continue;          /* re-marked ready when one of its deliveries ends */
		struct item *it = t->rhead;
		t->rhead = it->rnext;
		if (!t->rhead)
			t->rtail = NULL;
		it->ready = 0;
		struct item *batch[BATCH_MAX];
		run_items(t, batch, take_batch(t, it, batch));
		if (t->rhead)
			channel_mark_ready(t);
	}
}

static void wake_arm(void)
{
	ev_del(wake_ev);
	if (!heap_n)
		return;
	int64_t d = heap[0]->next - now_s();
	ev_add(wake_ev, d <= 0 ? 0 : (long)(d * 1000));
}

static void wake_cb(int fd, short what, void *arg)
{
	int64_t now = now_s();
	while (heap_n && heap[0]->next <= now)
		make_ready(heap[0]);
	for (size_t i = 0; i < nchans; i++)
		dispatch(&chans[i]);
	wake_arm();
}

/* ---- messages from the queue ---------------------------------------------------------------- */

static struct item **find_item(uint64_t msgid, uint64_t idx, struct smsg **sm)
{
	*sm = (struct smsg *)hmap_get(&smsgs, msgid);
	if (!*sm)
		return NULL;
	for (size_t i = 0; i < (*sm)->n; i++)
		if ((*sm)->items[i] && (*sm)->items[i]->idx == idx)
			return &(*sm)->items[i];
	return NULL;
}

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
	uint64_t msgid = msg_get_u64(r);
	int64_t birth = (int64_t)msg_get_u64(r);
	const char *sender = msg_get_str(r);
	uint64_t n = msg_get_u64(r);
	struct smsg *sm = (struct smsg *)hmap_get(&smsgs, msgid);
	for (uint64_t k = 0; k < n && !r->err; k++) {
		uint64_t idx = msg_get_u64(r);
		const char *channel = msg_get_str(r), *host = msg_get_str(r);
		const char *domain = msg_get_str(r);
		int64_t next = (int64_t)msg_get_u64(r);
		uint64_t attempts = msg_get_u64(r);
		struct smsg *dummy;
		if (r->err || !*channel || find_item(msgid, idx, &dummy))
			continue;
		if (!sm) {
			sm = xcalloc(1, sizeof *sm);
			sm->h.key = msgid;
			sm->birth = birth;
			sm->sender = xstrdup(sender);
			hmap_put(&smsgs, &sm->h);
			msgs_in++;
		}
		struct item *it = xcalloc(1, sizeof *it);
		it->msgid = msgid;
		it->idx = (uint32_t)idx;
		it->next = next;
		it->attempts = (uint32_t)attempts;
		it->th = thread_get(channel, host);
		it->th->nitems++;
		it->sm = sm;
		it->domain = xstrdup(domain);
		it->tnext = it->th->ihead;
		if (it->tnext)
			it->tnext->tprev = it;
		it->th->ihead = it;
		rcpts_in++;
		nitems_total++;
		sm->items = xrealloc(sm->items, (sm->n + 1) * sizeof *sm->items);
		sm->items[sm->n++] = it;
		heap_push(it);
	}
	wake_arm();
}

static void item_drop(struct smsg *sm, struct item **slot)
{
	struct item *it = *slot;
	struct thread *t = it->th;
	heap_remove(it);
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
	rcpts_out++;
	nitems_total--;
	thread_put(t);
	size_t live = 0;
	for (size_t i = 0; i < sm->n; i++)
		live += sm->items[i] != NULL;
	if (!live) {
		hmap_del(&smsgs, sm->h.key);
		free(sm->items);
		free(sm->sender);
		free(sm);
		msgs_out++;
	}
}

static void on_result(struct msg_reader *r)
{
	uint64_t msgid = msg_get_u64(r), idx = msg_get_u64(r), st = msg_get_u64(r);
	int64_t next = (int64_t)msg_get_u64(r);
	const char *diag = msg_get_str(r);
	uint64_t scope = msg_get_u64(r);
	struct smsg *sm;
	struct item **slot = msg_done(r) == 0 ? find_item(msgid, idx, &sm) : NULL;
	if (!slot)
		return;
	struct item *it = *slot;
	struct thread *t = it->th;
	struct schan *c = chan_of(t->channel);
	free(it->diag);
	it->diag = xstrdup(diag);
	if (it->inflight) {
		struct job *j = it->job;
		it->inflight = 0;
		it->job = NULL;
		j->anyok |= st != D_TEMP;
		j->anytemp |= st == D_TEMP && scope == DSCOPE_SITE;   /* a recipient's 4xx is not the site's */
		if (--j->left == 0) {
			/* the window grows on success and shrinks on temporary failure (qmgr) */
			t->inflight--;
			c->inflight--;
			if (j->anytemp && !j->anyok)
				t->window = t->window > 1 ? t->window / 2 : 1;
			else if (t->window < c->limit)
				t->window++;
			free(j);
		}
	}
	if (t->rhead)
		channel_mark_ready(t);       /* before a drop: a thread with ready items stays */
	if (st == D_TEMP && !it->ready) {
		it->attempts++;
		it->next = next;
		heap_push(it);
	} else if (st != D_TEMP && !it->ready)
		item_drop(sm, slot);         /* may free t */
	dispatch(c);
	wake_arm();
}

static void on_flush(void)
{
	int64_t now = now_s();
	for (size_t i = 0; i < heap_n; i++)
		heap[i]->next = now;
	log_info("event=flush waiting=%zu", heap_n);
	wake_arm();
}

/* ETRN <domain> (RFC 1985): every waiting recipient of the smtp threads for domain (or
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

static void on_etrn(struct chan *c, uint32_t id, struct msg_reader *r)
{
	const char *dom = msg_get_str(r);
	if (msg_done(r) < 0)
		return;                       /* dropped; the codec logs it */
	if (*dom == '@' || *dom == '#' || *dom == '.')
		dom++;
	size_t n = 0;
	int64_t now = now_s();
	for (size_t i = 0; i < heap_n; i++) {
		struct item *it = heap[i];
		if (!channel_is_local(&cfg->channels, it->th->channel) &&
		    (etrn_match(it->th->host, dom) || etrn_match(it->domain, dom))) {
			it->next = now;
			n++;
		}
	}
	for (size_t i = heap_n; i-- > 0;)
		heap_down(i);
	log_info("event=etrn domain=%s recipients=%zu", dom, n);
	struct msg out;
	msg_init(&out, M_SCHED_ETRN_RESULT, id);
	msg_u64(&out, n);
	chan_send(c, &out);
	wake_arm();
}

/* ---- management: control ops from the queue, snapshots for the control role -------------- */

static void ready_unlink(struct item *it)
{
	struct thread *t = it->th;
	struct item *prev = NULL;
	for (struct item *x = t->rhead; x; prev = x, x = x->rnext)
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

/* op 0: forget the message's waiting items (held, removed, expired); in-flight ones end with
 * their result. op 1: make them ready now (ternctl schedule). */
static void on_ctl(struct msg_reader *r)
{
	uint64_t op = msg_get_u64(r), msgid = msg_get_u64(r);
	struct smsg *sm = msg_done(r) == 0 ? (struct smsg *)hmap_get(&smsgs, msgid) : NULL;
	if (!sm)
		return;
	int64_t now = now_s();
	size_t n = sm->n;
	for (size_t i = 0; i < n && hmap_get(&smsgs, msgid) == &sm->h; i++) {
		struct item *it = sm->items[i];
		if (!it || it->inflight)
			continue;
		if (op == 1) {
			if (it->hpos) {
				it->next = now;
				heap_up(it->hpos - 1);
			}
			continue;
		}
		if (it->ready)
			ready_unlink(it);
		item_drop(sm, &sm->items[i]);
	}
	wake_arm();
}

static size_t distinct_msgs(const struct thread *t)
{
	size_t n = 0, cap = t->nitems ? t->nitems : 1;
	uint64_t *ids = xcalloc(cap, sizeof *ids);
	for (const struct item *it = t->ihead; it; it = it->tnext) {
		size_t j = 0;
		while (j < n && ids[j] != it->msgid)
			j++;
		if (j == n && n < cap)
			ids[n++] = it->msgid;
	}
	free(ids);
	return n;
}

static void snap_thread(struct msg *out, const struct thread *t)
{
	uint32_t att = 0;
	int64_t oldest = 0, next = -1;
	for (const struct item *it = t->ihead; it; it = it->tnext) {
		if (it->attempts > att)
			att = it->attempts;
		if (!oldest || it->sm->birth < oldest)
			oldest = it->sm->birth;
		int64_t w = (it->ready || it->inflight) ? 0 : it->next;
		if (next < 0 || w < next)
			next = w;
	}
	msg_str(out, t->channel);
	msg_str(out, t->host);
	msg_u64(out, distinct_msgs(t));
	msg_u64(out, t->nitems);
	msg_u64(out, att);
	msg_u64(out, (uint64_t)oldest);
	msg_u64(out, (uint64_t)(next < 0 ? 0 : next));
	msg_u64(out, t->inflight);
	msg_u64(out, t->window);
}

static void snap_items(struct msg *out, const struct thread *t)
{
	msg_u64(out, t ? t->nitems : 0);
	for (const struct item *it = t ? t->ihead : NULL; it; it = it->tnext) {
		const struct schan *c = chan_of(t->channel);
		const char *reason = !it->ready ? "" : c->inflight >= c->limit ? "channel" : "thread";
		msg_u64(out, it->msgid);
		msg_str(out, it->sm->sender);
		msg_u64(out, it->idx);
		msg_u64(out, (uint64_t)(it->sm->birth + (int64_t)cfg->queuelifetime));
		msg_u64(out, (uint64_t)((it->ready || it->inflight) ? now_s() : it->next));
		msg_u64(out, (uint64_t)it->lastfeed);
		msg_u64(out, it->attempts);
		msg_str(out, reason);
		msg_str(out, it->diag);
	}
}

static struct thread *thread_find(const char *channel, const char *host)
{
	for (struct thread *t = threads[thash(channel, host)]; t; t = t->hnext)
		if (strcmp(t->channel, channel) == 0 && strcmp(t->host, host) == 0)
			return t;
	return NULL;
}

static void on_snapshot(struct chan *c, uint32_t id, struct msg_reader *r)
{
	uint64_t kind = msg_get_u64(r);
	const char *channel = msg_get_str(r), *host = msg_get_str(r);
	struct msg out;
	if (msg_done(r) < 0)
		return;                       /* dropped; the codec logs it */
	size_t total = 0, inflight = 0, listed = 0;
	for (size_t i = 0; i < nchans; i++) {
		chans[i].nthreads = 0;
		inflight += chans[i].inflight;
	}
	for (size_t b = 0; b < sizeof threads / sizeof threads[0]; b++)
		for (struct thread *t = threads[b]; t; t = t->hnext) {
			chan_of(t->channel)->nthreads++;
			total++;
		}
	for (size_t i = 0; i < nchans; i++)
		listed += chans[i].row || chans[i].nthreads;   /* the unknown bucket when it has any */
	msg_init(&out, M_SCHED_SNAPSHOT_RESULT, id);
	msg_u64(&out, (uint64_t)now_s());
	msg_u64(&out, (uint64_t)started);
	msg_u64(&out, msgs_in); msg_u64(&out, msgs_out);
	msg_u64(&out, rcpts_in); msg_u64(&out, rcpts_out);
	msg_u64(&out, inflight);
	msg_u64(&out, smsgs.n);
	msg_u64(&out, nitems_total);
	msg_u64(&out, listed);
	for (size_t i = 0; i < nchans; i++) {
		if (!chans[i].row && !chans[i].nthreads)
			continue;
		msg_str(&out, chans[i].name);
		msg_u64(&out, chans[i].limit);
		msg_u64(&out, chans[i].inflight);
		msg_u64(&out, chans[i].nthreads);
	}
	msg_u64(&out, total);
	for (size_t b = 0; b < sizeof threads / sizeof threads[0]; b++)
		for (struct thread *t = threads[b]; t; t = t->hnext)
			snap_thread(&out, t);
	snap_items(&out, kind == 1 ? thread_find(channel, host) : NULL);
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
		if (msg_done(r) == 0)         /* else dropped; the codec logs it */
			on_flush();
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

/* one scheduler channel per row of the table, then the bucket of names not in it */
static void sched_channels(void)
{
	const struct channel_table *tab = &cfg->channels;
	for (size_t i = 0; i < tab->n; i++)
		chans[i] = (struct schan){ .name = tab->row[i].name, .row = &tab->row[i],
		                           .limit = tab->row[i].concurrency ? tab->row[i].concurrency : 1 };
	chans[tab->n] = (struct schan){ .name = "(unknown)", .row = NULL, .limit = 1 };
	nchans = tab->n + 1;
}

static void on_term(int sig, short what, void *arg) { ev_exit(); }
static void on_alrm(int sig, short what, void *arg) { on_flush(); }

int sched_main(struct role_ctx *ctx)
{
	cfg = ctx->cfg;
	ev_init();
	hmap_init(&smsgs);
	sched_channels();
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
