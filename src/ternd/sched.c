/* sched — the scheduler role: the in-memory schedule of every deliverable recipient.
 * Owns: threads keyed by (channel, host) as in ZMailer, per-channel concurrency
 * (concurrencylocal / concurrencyremote), a per-thread window that grows on success and
 * shrinks on temporary failure, and the wake-up heap of retry times. It touches no files and
 * no network: the queue tells it what exists (M_SCHED_ADD) and what happened
 * (M_SCHED_RESULT); it tells the queue what to run now (M_SCHED_RUN).
 * Trusts: the queue's messages after validation; it never decides a recipient's fate. */
#include "ternd/role.h"
#include "ternd/proto.h"
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
#define BATCH_MAX 100        /* recipients of one message per SMTP transaction */

struct thread;
struct job { size_t left; int anyok, anytemp; };   /* one RUN: counts once against limits */
struct item {
	struct item *rnext;          /* thread's ready FIFO */
	struct thread *th;
	uint64_t msgid;
	uint32_t idx;
	int64_t next;
	uint32_t attempts;
	size_t hpos;                 /* heap index + 1; 0 = not in the heap */
	int inflight, ready;
	struct job *job;             /* while inflight */
};

struct thread {
	struct thread *hnext, *cnext;  /* hash chain; channel's ready list */
	char *channel, *host;
	struct item *rhead, *rtail;
	size_t nitems, inflight, window;
	int on_ready;
};

struct channel { const char *name; size_t limit, inflight; struct thread *rhead, *rtail; };

struct smsg { struct hnode h; struct item **items; size_t n; };

static struct config *cfg;
static struct chan *ch_queue;
static struct hmap smsgs;
static struct thread *threads[1024];
static struct channel chans[2];  /* 0 local, 1 everything else (smtp) */
static struct item **heap;
static size_t heap_n, heap_cap;
static struct ev *wake_ev;

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

static struct channel *chan_of(const char *name)
{
	return strcmp(name, "local") == 0 ? &chans[0] : &chans[1];
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
	if (t->nitems || t->on_ready)
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
	struct channel *c = chan_of(t->channel);
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

/* Unlink from t's ready FIFO every other ready item of it's message (remote channels batch
 * recipients of one message per transaction; local delivery is one recipient per run). */
static size_t take_batch(struct thread *t, struct item *it, struct item **out)
{
	size_t n = 0;
	out[n++] = it;
	if (strcmp(t->channel, "local") == 0)
		return n;
	for (struct item **pp = &t->rhead; *pp && n < BATCH_MAX;) {
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
		msg_u64(&out, v[i]->idx);
	}
	chan_send(ch_queue, &out);
}

/* Start what the limits allow, round robin over the channel's ready threads. */
static void dispatch(struct channel *c)
{
	while (c->rhead && c->inflight < c->limit) {
		struct thread *t = c->rhead;
		c->rhead = t->cnext;
		if (!c->rhead)
			c->rtail = NULL;
		t->on_ready = 0;
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
	dispatch(&chans[0]);
	dispatch(&chans[1]);
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

static void on_add(struct msg_reader *r)
{
	uint64_t msgid = msg_get_u64(r);
	(void)msg_get_u64(r);
	uint64_t n = msg_get_u64(r);
	struct smsg *sm = (struct smsg *)hmap_get(&smsgs, msgid);
	for (uint64_t k = 0; k < n && !r->err; k++) {
		uint64_t idx = msg_get_u64(r);
		const char *channel = msg_get_str(r), *host = msg_get_str(r);
		int64_t next = (int64_t)msg_get_u64(r);
		uint64_t attempts = msg_get_u64(r);
		struct smsg *dummy;
		if (r->err || !*channel || find_item(msgid, idx, &dummy))
			continue;
		if (!sm) {
			sm = xcalloc(1, sizeof *sm);
			sm->h.key = msgid;
			hmap_put(&smsgs, &sm->h);
		}
		struct item *it = xcalloc(1, sizeof *it);
		it->msgid = msgid;
		it->idx = (uint32_t)idx;
		it->next = next;
		it->attempts = (uint32_t)attempts;
		it->th = thread_get(channel, host);
		it->th->nitems++;
		sm->items = xrealloc(sm->items, (sm->n + 1) * sizeof *sm->items);
		sm->items[sm->n++] = it;
		heap_push(it);
	}
	if (r->err)
		log_err("event=bad_message peer=queue type=sched_add");
	wake_arm();
}

static void item_drop(struct smsg *sm, struct item **slot)
{
	struct item *it = *slot;
	struct thread *t = it->th;
	heap_remove(it);
	t->nitems--;
	*slot = NULL;
	free(it);
	thread_put(t);
	size_t live = 0;
	for (size_t i = 0; i < sm->n; i++)
		live += sm->items[i] != NULL;
	if (!live) {
		hmap_del(&smsgs, sm->h.key);
		free(sm->items);
		free(sm);
	}
}

static void on_result(struct msg_reader *r)
{
	uint64_t msgid = msg_get_u64(r), idx = msg_get_u64(r), st = msg_get_u64(r);
	int64_t next = (int64_t)msg_get_u64(r);
	(void)msg_get_str(r);
	struct smsg *sm;
	struct item **slot = msg_done(r) == 0 ? find_item(msgid, idx, &sm) : NULL;
	if (!slot)
		return;
	struct item *it = *slot;
	struct thread *t = it->th;
	struct channel *c = chan_of(t->channel);
	if (it->inflight) {
		struct job *j = it->job;
		it->inflight = 0;
		it->job = NULL;
		j->anyok |= st != D_TEMP;
		j->anytemp |= st == D_TEMP;
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
	if (st == D_TEMP && !it->ready) {
		it->attempts++;
		it->next = next;
		heap_push(it);
	} else if (st != D_TEMP && !it->ready)
		item_drop(sm, slot);
	if (t->rhead)
		channel_mark_ready(t);
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

static void on_etrn(uint32_t id, struct msg_reader *r)
{
	const char *dom = msg_get_str(r);
	if (*dom == '@' || *dom == '#' || *dom == '.')
		dom++;
	size_t n = 0;
	int64_t now = now_s();
	for (size_t i = 0; i < heap_n; i++) {
		struct item *it = heap[i];
		if (strcmp(it->th->channel, "local") != 0 && etrn_match(it->th->host, dom)) {
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
	chan_send(ch_queue, &out);
	wake_arm();
}

static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd, void *arg)
{
	if (fd >= 0)
		close(fd);
	switch (type) {
	case M_SCHED_ADD: on_add(r); break;
	case M_SCHED_RESULT: on_result(r); break;
	case M_SCHED_FLUSH: on_flush(); break;
	case M_SCHED_ETRN: on_etrn(id, r); break;
	default: log_err("event=unexpected_message peer=%s type=%u", chan_peer(c), type);
	}
}

static void on_close(struct chan *c, void *arg)
{
	log_info("event=peer_closed peer=%s; exiting", chan_peer(c));
	exit(0);
}

static void on_term(int sig, short what, void *arg) { ev_exit(); }
static void on_alrm(int sig, short what, void *arg) { on_flush(); }

int sched_main(struct role_ctx *ctx)
{
	cfg = ctx->cfg;
	ev_init();
	hmap_init(&smsgs);
	chans[0] = (struct channel){ "local", cfg->concurrencylocal ? cfg->concurrencylocal : 1, 0, NULL, NULL };
	chans[1] = (struct channel){ "smtp", cfg->concurrencyremote ? cfg->concurrencyremote : 1, 0, NULL, NULL };
	wake_ev = ev_new(-1, 0, wake_cb, NULL);
	ch_queue = chan_new(ctx->peer[R_QUEUE], "queue", on_recv, on_close, NULL);
	if (ctx->peer[R_PARENT] >= 0)
		chan_new(ctx->peer[R_PARENT], "parent", on_recv, on_close, NULL);
	struct ev *s1 = ev_signal(SIGTERM, on_term, NULL), *s2 = ev_signal(SIGALRM, on_alrm, NULL);
	ev_add(s1, -1);
	ev_add(s2, -1);
	ev_run();
	return 0;
}
