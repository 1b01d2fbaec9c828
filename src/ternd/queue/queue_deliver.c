/* queue_deliver — the queue role's routing and delivery hand-off (doc/QUEUE.md steps 9-12):
 * asking lookup to route each slot, handing routed slots to mda (local) or mta (remote, one
 * transaction per message and destination), and turning results into journal records.
 * Owns: the outstanding route requests; what becomes of them and of deliveries in flight
 * when lookup, mda or mta dies and comes back; the duplicate filter of one message (a routed
 * target that another slot of the message already delivers is not added again; a slot whose
 * targets are all duplicates is withdrawn with an X record). Trusts: results only after
 * validation. */
#include "ternd/queue/queue.h"
#include "ternd/queue/queue_fs.h"
#include "ternd/queue/queue_list.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "ternd/role.h"
#include "mail/retry.h"
#include "mail/table.h"
#include "lib/log.h"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rreq { struct hnode h; uint64_t msgid; uint32_t slot; };
static struct hmap rreqs;         /* route request id -> struct rreq */
static uint32_t rreq_seq;
static uint64_t djob_seq;

/* a delivery request in flight (ternd/dreq.h): its results must name it, come from the role
 * it went to, and be about its own recipients, each once */
struct djob {
	struct hnode h;                /* key = the request's job number */
	uint64_t msgid;
	int role;                      /* R_MDA or R_MTA */
	size_t n, left;
	uint32_t *idx;                 /* the slots; UINT32_MAX once answered */
};
static struct hmap djobs;

#define REROUTE_S 30          /* a tempfailed route is tried again after this */
#define REDO_S    60          /* ...a delivery whose agent died, unless the agent is back first */

/* ---- routing ------------------------------------------------------------------------------- */

void queue_route_slot(struct qmsg *m, uint32_t i)
{
	if (m->env.held || !m->env.staged)
		return;               /* released or staged later: routed then */
	queue_sf_fit(m);
	if (m->env.slots[i].state == SL_ROUTED && !(m->sf[i] & SF_INFLIGHT)) {
		m->sf[i] |= SF_ADD;
		queue_mark_dirty(m);
	}
	if (m->env.slots[i].state != SL_UNROUTED || (m->sf[i] & SF_ROUTING))
		return;
	if (!queue_peer_up(R_LOOKUP)) {
		m->reroute_at = queue_now() + REROUTE_S;     /* or as soon as lookup is back */
		return;
	}
	struct rreq *q = xcalloc(1, sizeof *q);
	q->h.key = ++rreq_seq;
	q->msgid = m->env.id;
	q->slot = i;
	hmap_put(&rreqs, &q->h);
	m->sf[i] |= SF_ROUTING;
	m->routing++;
	struct msg out;
	msg_init(&out, M_ROUTE, (uint32_t)q->h.key);
	msg_str(&out, m->env.slots[i].rcpt);
	msg_str(&out, m->env.sender);
	chan_send(queue_ch_lookup, &out);
}

void queue_fail_slot(struct qmsg *m, uint32_t i, const char *status, const char *diag)
{
	struct buf rec;
	buf_init(&rec);
	env_rec_perm(&rec, i, queue_now(), status, NULL, diag);
	queue_journal_add(m, &rec, 1);
	buf_free(&rec);
}

/* ---- the duplicate filter ----------------------------------------------------------------- */

/* The key of a target: equal keys = the same copy. Same channel, host (without case) and
 * instruction, and the same final address — its domain without case; its local part without
 * case for local targets (qmail delivers them lowercased), with case for remote ones — and
 * for local targets the same account. */
static void dup_key(struct buf *k, const struct target *t)
{
	int local = channel_is_local(&queue_cfg->channels, t->channel);
	const char *at = strrchr(t->address, '@');
	size_t ll = at ? (size_t)(at - t->address) : strlen(t->address);
	buf_reset(k);
	buf_printf(k, "%s\n", t->channel);
	for (const char *p = t->host; *p; p++)
		buf_addc(k, (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p);
	buf_printf(k, "\n%s\n", t->instruction);
	for (size_t i = 0; i < ll; i++) {
		char c = t->address[i];
		buf_addc(k, local && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
	}
	for (const char *p = at ? at : ""; *p; p++)
		buf_addc(k, (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p);
	if (local)
		buf_printf(k, "\n%" PRIu64 "\n%s", t->uid, t->user);
}

/* a slot whose target counts: it delivers (or delivered, or bounced) that copy */
static int dup_counts(const struct slot *s)
{
	return s->t.channel && (s->state == SL_ROUTED || s->state == SL_DONE || s->state == SL_FAILED);
}

/* The keys of one message's routed slots (key -> slot + 1), kept for the message whose
 * routing results are coming in (they come in bursts per message) and extended as slots are
 * added; another message rebuilds it. A slot's target never changes once made, but a slot
 * may be withdrawn later (X): a hit is checked against the slot's state. */
static struct { uint64_t msgid; size_t upto; struct table_map *keys; } dups;

static void dup_sync(const struct qmsg *m, struct buf *k)
{
	if (!dups.keys || dups.msgid != m->env.id || dups.upto > m->env.nslots) {
		table_map_free(dups.keys, NULL);
		dups.keys = table_map_new();
		dups.msgid = m->env.id;
		dups.upto = 0;
	}
	for (; dups.upto < m->env.nslots; dups.upto++) {
		const struct slot *s = &m->env.slots[dups.upto];
		if (s->t.channel) {
			dup_key(k, &s->t);
			table_map_put(dups.keys, k->p, (void *)(uintptr_t)(dups.upto + 1));
		}
	}
}

/* does a counting slot of m have key k? (the map's first slot of that key may have been
 * withdrawn since: then look at every slot, which is rare) */
static int dup_in_message(const struct qmsg *m, const struct buf *k)
{
	uintptr_t v = (uintptr_t)table_map_get(dups.keys, k->p);
	if (!v)
		return 0;
	if (v - 1 < m->env.nslots && dup_counts(&m->env.slots[v - 1]))
		return 1;
	struct buf k2;
	buf_init(&k2);
	int dup = 0;
	for (size_t i = 0; !dup && i < m->env.nslots; i++)
		if (dup_counts(&m->env.slots[i])) {
			dup_key(&k2, &m->env.slots[i].t);
			dup = strcmp(k2.p, k->p) == 0;
		}
	buf_free(&k2);
	return dup;
}

/* Postfix's duplicate filter for one message: drop (and free) the targets that a slot of m
 * already delivers, or that came earlier in t; returns how many remain, compacted at the
 * front */
static uint64_t dedupe_targets(const struct qmsg *m, struct target *t, uint64_t n)
{
	struct buf k;
	struct table_map *here = n > 1 ? table_map_new() : NULL;
	uint64_t keep = 0;
	buf_init(&k);
	dup_sync(m, &k);
	for (uint64_t j = 0; j < n; j++) {
		dup_key(&k, &t[j]);
		if (dup_in_message(m, &k) || (here && table_map_put(here, k.p, here) != 0))
			target_free(&t[j]);
		else
			t[keep++] = t[j];
	}
	table_map_free(here, NULL);
	buf_free(&k);
	return keep;
}

void queue_on_route_result(uint32_t reqid, struct msg_reader *r)
{
	struct rreq *q = (struct rreq *)hmap_del(&rreqs, reqid);
	if (!q)
		return;
	struct qmsg *m = queue_msg_get(q->msgid);
	uint32_t i = q->slot;
	free(q);
	if (!m)
		return;
	m->sf[i] &= (unsigned char)~SF_ROUTING;
	m->routing--;
	uint64_t verdict = msg_get_u64(r);
	const char *diag = msg_get_str(r);
	uint64_t n = msg_get_u64(r);
	struct target *t = (!r->err && n <= 10000) ? xcalloc(n + 1, sizeof *t) : NULL;
	uint64_t got = 0;
	while (t && got < n && proto_get_target(r, &t[got]) == 0)
		got++;
	char id[17];
	env_idstr(m->env.id, id);
	int ok = msg_done(r) == 0 && t && got == n;
	if (!ok || (verdict == V_OK && n == 0)) {
		if (!r->err)                     /* a malformed one is logged by the codec */
			log_err("event=bad_route_result id=%s", id);
		verdict = V_TEMP;
		diag = "internal routing error";
	}
	if (verdict == V_OK && (got = n = dedupe_targets(m, t, n)) == 0) {
		struct buf rec;                  /* every target is delivered by another slot */
		buf_init(&rec);
		env_rec_drop(&rec, i);
		queue_journal_add(m, &rec, 1);
		buf_free(&rec);
		log_info("event=duplicate id=%s rcpt=<%s>", id, m->env.slots[i].rcpt);
	} else if (verdict == V_OK) {
		struct buf rec;
		buf_init(&rec);
		env_rec_expand(&rec, i, n, t);
		queue_journal_add(m, &rec, 1);
		buf_free(&rec);
		for (uint32_t j = (uint32_t)(m->env.nslots - n); j < m->env.nslots; j++)
			m->sf[j] |= SF_ADD;
		log_info("event=routed id=%s rcpt=<%s> targets=%" PRIu64, id, m->env.slots[i].rcpt, n);
	} else if (verdict == V_TEMP) {
		log_warn("event=route_deferred id=%s rcpt=<%s> reason=\"%s\"", id, m->env.slots[i].rcpt, diag);
		m->reroute_at = queue_now() + REROUTE_S;
		queue_mark_dirty(m);             /* the recipients that did route go on meanwhile */
	} else if (verdict == V_DISABLED)
		queue_fail_slot(m, i, "5.2.1", *diag ? diag : "Mailbox disabled.");
	else
		queue_fail_slot(m, i, "5.1.1", *diag ? diag : "Sorry, no mailbox here by that name.");
	for (uint64_t j = 0; t && j < got; j++)
		target_free(&t[j]);
	free(t);
	queue_check_done(m);
}

/* ---- delivery ---------------------------------------------------------------------------- */

static int64_t retry_c(const struct slot *s)
{
	const struct channel_row *r = channel_find(&queue_cfg->channels, s->t.channel);
	return (int64_t)(r ? r->retry : queue_cfg->retryremote);
}

/* the enhanced status code in a diagnostic: qmail's "(#5.1.1)" or an RFC 3463 token such as
 * the "5.1.1" of "smtp; 550 5.1.1 <x>: no such user"; its class is forced to cls */
static int status_token(const char *p, size_t *len)
{
	size_t n = 0;
	int dots = 0, digits = 0;
	if ((p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
		return 0;
	for (n = 1; p[n] == '.' || (p[n] >= '0' && p[n] <= '9'); n++) {
		if (p[n] == '.') {
			if (digits == 0 && n > 1)
				return 0;
			dots++;
			digits = 0;
		} else if (++digits > 3)
			return 0;
	}
	*len = n;
	return dots == 2 && digits > 0;
}

void status_from_diag(const char *diag, char cls, char *out, size_t outsz)
{
	for (const char *p = diag; *p; p++) {
		size_t n;
		if ((p == diag || p[-1] == ' ' || p[-1] == '#' || p[-1] == '(') && status_token(p, &n) &&
		    n < outsz) {
			memcpy(out, p, n);
			out[n] = '\0';
			out[0] = cls;
			return;
		}
	}
	snprintf(out, outsz, "%c.0.0", cls);
}

void queue_record_result(struct qmsg *m, uint32_t i, int st, int scope, const char *diag,
                         const char *remote)
{
	struct slot *s = &m->env.slots[i];
	struct buf rec;
	char status[12];
	int64_t now = queue_now();
	buf_init(&rec);
	if (st == D_TEMP && retry_expired(m->env.arrival, now, queue_cfg->queuelifetime)) {
		struct buf d;
		buf_init(&d);
		buf_printf(&d, "I'm not going to try again; this message has been in the queue too long. "
		           "Last error: %s", diag);
		status_from_diag(diag, '4', status, sizeof status);
		env_rec_perm(&rec, i, now, status, remote, d.p);
		buf_free(&d);
	} else if (st == D_OK)
		env_rec_done(&rec, i, now);
	else if (st == D_PERM) {
		status_from_diag(diag, '5', status, sizeof status);
		env_rec_perm(&rec, i, now, status, remote, diag);
	} else
		env_rec_defer(&rec, i, now, retry_next(m->env.arrival, now, (uint64_t)retry_c(s)),
		              s->attempts + 1, remote, diag);
	queue_journal_add(m, &rec, rec.p[0] != 'Z');
	buf_free(&rec);
	m->sf[i] |= SF_RESULT;
	if (st == D_TEMP && scope == DSCOPE_SITE)
		m->sf[i] |= SF_SITE;
	else
		m->sf[i] &= (unsigned char)~SF_SITE;
	char id[17];
	env_idstr(m->env.id, id);
	log_info("event=delivery id=%s slot=%u rcpt=<%s> channel=%s relay=%s status=%s diag=\"%s\"",
	         id, i, s->t.address, s->t.channel, remote && *remote ? remote : s->t.channel,
	         s->state == SL_DONE ? "sent" : s->state == SL_FAILED ? "bounced" : "deferred",
	         s->diag ? s->diag : "");
}

/* A delivery whose agent died in flight, or that cannot start while the agent restarts:
 * deferred in memory only (no attempt counted, nothing journaled; at least once, as after a
 * crash), and run again as soon as the agent is back (queue_deliver_peer_back). */
static void defer_redo(struct qmsg *m, uint32_t i, const char *why)
{
	if (m->sf[i] & SF_INFLIGHT) {
		m->sf[i] &= (unsigned char)~SF_INFLIGHT;
		m->inflight--;
	}
	m->sf[i] |= SF_REDO;
	struct msg out;
	msg_init(&out, M_SCHED_RESULT, 0);
	msg_u64(&out, m->env.id); msg_u64(&out, i); msg_u64(&out, D_TEMP);
	msg_u64(&out, (uint64_t)(queue_now() + REDO_S));
	msg_str(&out, why);
	msg_u64(&out, DSCOPE_RCPT);          /* the agent's trouble, not the destination's */
	chan_send(queue_ch_sched, &out);
}

/* the role that runs a row's transport */
static int row_role(const struct channel_row *row)
{
	enum channel_role cr = channel_role(row);
	return cr == CHANNEL_MDA ? R_MDA : cr == CHANNEL_QUEUE ? R_QUEUE : R_MTA;
}

/* the role that runs a routed slot's channel, or -1 (a channel not in the table) */
static int slot_role(const struct slot *s)
{
	const struct channel_row *row = channel_find(&queue_cfg->channels, s->t.channel);
	return row ? row_role(row) : -1;
}

/* the channel to the role that runs a row's transport, or NULL when none runs now */
static struct chan *transport_chan(const struct channel_row *row, int *role)
{
	*role = row_role(row);
	return *role == R_MDA ? queue_ch_mda : queue_ch_mta;
}

/* One delivery request (ternd/dreq.h): the slots idx[0..n) of m, all of one channel and one
 * host, to the role that runs the channel. A transport that takes the address list first
 * (smtp) gets the n recipients in one transaction; one that takes text after each address
 * (local) is given n = 1 by the scheduler's batching rule (the row's recipients per job). */
static void deliver_batch(struct qmsg *m, const struct channel_row *row, const uint32_t *idx, size_t n)
{
	struct stat st;
	int role;
	if (channel_role(row) == CHANNEL_QUEUE) {     /* the list channel: run here */
		queue_list_deliver(m, idx, n);
		return;
	}
	struct chan *c = transport_chan(row, &role);
	const char *who = role == R_MDA ? "local delivery agent" : "remote delivery agent";
	if (c && !queue_peer_up(role)) {
		for (size_t k = 0; k < n; k++) {
			char why[64];
			snprintf(why, sizeof why, "%s restarting", who);
			defer_redo(m, idx[k], why);
		}
		return;
	}
	int fd = c ? queue_fs_open_data(m->env.id) : -1;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		for (size_t k = 0; k < n; k++)
			queue_record_result(m, idx[k], D_TEMP, DSCOPE_RCPT, c ? "cannot open the queued message"
			              : role == R_MDA ? "no local delivery agent runs"
			              : "no remote delivery agent runs", NULL);
		return;
	}
	struct djob *dj = xcalloc(1, sizeof *dj);
	dj->h.key = ++djob_seq;
	dj->msgid = m->env.id;
	dj->role = role;
	dj->n = dj->left = n;
	dj->idx = xcalloc(n, sizeof *dj->idx);
	memcpy(dj->idx, idx, n * sizeof *idx);
	hmap_put(&djobs, &dj->h);
	struct dreq d = {
		.job = dj->h.key, .msgid = m->env.id,
		.channel = m->env.slots[idx[0]].t.channel, .host = m->env.slots[idx[0]].t.host,
		.sender = m->env.sender, .size = (uint64_t)st.st_size, .arrival = m->env.arrival, .n = n,
	};
	d.r = xcalloc(n, sizeof *d.r);
	for (size_t k = 0; k < n; k++) {
		d.r[k].idx = idx[k];
		d.r[k].t = m->env.slots[idx[k]].t;      /* borrowed: not freed here */
		m->sf[idx[k]] |= SF_INFLIGHT;
		m->inflight++;
	}
	struct msg out;
	msg_init(&out, M_DELIVER, 0);
	dreq_put(&out, &d);
	msg_fd(&out, fd);
	chan_send(c, &out);
	free(d.r);
}

static int runnable(struct qmsg *m, uint64_t i)
{
	return !m->env.held && i < m->env.nslots && m->env.slots[i].state == SL_ROUTED && !(m->sf[i] & SF_INFLIGHT);
}

/* the scheduler asked for a slot that is not (or no longer) deliverable: tell it the truth so
 * that it does not wait for a result that will never come */
static void sched_stale(uint64_t id, uint64_t i, struct qmsg *m)
{
	int st = D_OK;
	if (m && i < m->env.nslots) {
		if (m->sf[i] & SF_INFLIGHT)
			return;                 /* a result will come */
		st = m->env.slots[i].state == SL_FAILED ? D_PERM : D_OK;
	}
	struct msg out;
	msg_init(&out, M_SCHED_RESULT, 0);
	msg_u64(&out, id); msg_u64(&out, i); msg_u64(&out, (uint64_t)st); msg_u64(&out, 0);
	msg_str(&out, "not deliverable now");
	msg_u64(&out, DSCOPE_RCPT);
	chan_send(queue_ch_sched, &out);
}

/* a slot whose channel is not in the channel table (a `channel` line removed since it was
 * routed): never guessed at, deferred with its retry schedule and logged */
static void defer_unknown(struct qmsg *m, uint32_t i)
{
	char diag[200], id[17];
	env_idstr(m->env.id, id);
	log_warn("event=channel_unknown id=%s slot=%u channel=%s", id, i, m->env.slots[i].t.channel);
	snprintf(diag, sizeof diag, "channel %.64s is not configured (tern.conf `channel`)",
	         m->env.slots[i].t.channel);
	queue_record_result(m, i, D_TEMP, DSCOPE_RCPT, diag, NULL);
}

/* a malformed list is refused whole: nothing of it runs (doc/IPC.md, "Malformed messages") */
static int sched_run_ok(const struct msg_reader *r)
{
	struct msg_reader v = *r;
	(void)msg_get_u64(&v); (void)msg_get_str(&v); (void)msg_get_str(&v);
	uint64_t n = msg_get_u64(&v);
	for (uint64_t k = 0; k < n && !v.err; k++)
		(void)msg_get_u64(&v);
	return msg_done(&v);
}

void queue_on_sched_run(struct msg_reader *r)
{
	if (sched_run_ok(r) < 0) {
		r->err = 1;
		return;
	}
	uint64_t id = msg_get_u64(r);
	const char *channel = msg_get_str(r);
	(void)msg_get_str(r);
	uint64_t n = msg_get_u64(r);
	struct qmsg *m = queue_msg_get(id);
	const struct channel_row *row = channel_find(&queue_cfg->channels, channel);
	size_t per = row && row->rcpts ? (size_t)row->rcpts : 1;
	if (per > DREQ_MAXRCPT)
		per = DREQ_MAXRCPT;
	uint32_t *batch = xcalloc(n ? n : 1, sizeof *batch);
	size_t nb = 0;
	for (uint64_t k = 0; k < n && !r->err; k++) {
		uint64_t i = msg_get_u64(r);
		if (r->err)
			break;
		if (!m || !runnable(m, i))
			sched_stale(id, i, m);
		else if (!row)
			defer_unknown(m, (uint32_t)i);
		else {
			/* one request per destination (and per host, for a grouping channel) */
			const struct target *t0 = nb ? &m->env.slots[batch[0]].t : NULL, *t = &m->env.slots[i].t;
			if (nb && (nb == per || strcmp(t->channel, t0->channel) != 0 ||
			           strcmp(t->host, t0->host) != 0)) {
				deliver_batch(m, row, batch, nb);
				nb = 0;
			}
			batch[nb++] = (uint32_t)i;
		}
	}
	if (nb)
		deliver_batch(m, row, batch, nb);
	free(batch);
}

static void djob_free(struct djob *dj)
{
	hmap_del(&djobs, dj->h.key);
	free(dj->idx);
	free(dj);
}

/* one result of request dj for slot x->idx of m (m may be gone: removed meanwhile) */
static void djob_result(struct djob *dj, struct qmsg *m, const struct dres *x)
{
	size_t k = 0;
	while (k < dj->n && dj->idx[k] != x->idx)
		k++;
	if (k == dj->n) {                    /* not one of its recipients, or answered already */
		log_err("event=bad_result peer=%s id=%016llx job=%llu slot=%llu", role_name(dj->role),
		        (unsigned long long)dj->msgid, (unsigned long long)dj->h.key,
		        (unsigned long long)x->idx);
		return;
	}
	dj->idx[k] = UINT32_MAX;
	dj->left--;
	if (!m || x->idx >= m->env.nslots || !(m->sf[x->idx] & SF_INFLIGHT))
		return;
	m->sf[x->idx] &= (unsigned char)~SF_INFLIGHT;
	m->inflight--;
	queue_record_result(m, (uint32_t)x->idx, x->st, x->scope, x->diag, x->remote);
}

/* M_DELIVERED from the mda or the mta: a malformed one is refused whole (doc/IPC.md,
 * "Malformed messages"); one with no result (n = 0) is the role refusing a request it could
 * not read: every recipient of it not answered yet is deferred. */
void queue_on_delivered(int from, struct msg_reader *r)
{
	if (dres_check(r) < 0) {
		r->err = 1;
		return;
	}
	uint64_t job, id, n;
	dres_get_head(r, &job, &id, &n);
	struct djob *dj = (struct djob *)hmap_get(&djobs, job);
	if (!dj || dj->role != from || dj->msgid != id) {
		log_err("event=bad_result peer=%s id=%016llx job=%llu", role_name(from),
		        (unsigned long long)id, (unsigned long long)job);
		return;
	}
	struct qmsg *m = queue_msg_get(id);
	for (uint64_t k = 0; k < n; k++) {
		struct dres x;
		dres_get(r, &x);
		djob_result(dj, m, &x);
	}
	if (n == 0) {
		for (size_t k = 0; k < dj->n; k++)
			if (dj->idx[k] != UINT32_MAX) {
				struct dres x = { .idx = dj->idx[k], .st = D_TEMP, .scope = DSCOPE_RCPT,
				                  .diag = "the delivery agent could not read the request (#4.3.0)" };
				djob_result(dj, m, &x);
			}
	}
	if (dj->left == 0)
		djob_free(dj);
}

void queue_deliver_init(void) { hmap_init(&rreqs); hmap_init(&djobs); }

void queue_reroute(struct qmsg *m, int64_t now)
{
	m->reroute_at = 0;
	for (uint32_t i = 0; i < m->env.nslots; i++)
		if (m->env.slots[i].state == SL_UNROUTED) {
			if (retry_expired(m->env.arrival, now, queue_cfg->queuelifetime))
				queue_fail_slot(m, i, "4.3.0", "I'm not going to try again; this message has "
				          "been in the queue too long. Last error: address lookup failed");
			else
				queue_route_slot(m, i);
		}
}

/* ---- a peer dies, a peer comes back (queue_peer.c) --------------------------------------- */

/* lookup died: its answers will not come; the slots are routed again when it is back */
static void routes_lost(void)
{
	size_t b = 0, n = 0;
	struct hnode *h;
	while ((h = hmap_next(&rreqs, &b, NULL))) {
		struct rreq *q = (struct rreq *)hmap_del(&rreqs, h->key);
		struct qmsg *m = queue_msg_get(q->msgid);
		if (m && (m->sf[q->slot] & SF_ROUTING)) {
			m->sf[q->slot] &= (unsigned char)~SF_ROUTING;
			m->routing--;
			m->reroute_at = queue_now() + REROUTE_S;
			n++;
		}
		free(q);
	}
	if (n)
		log_info("event=route_requests_lost n=%zu", n);
}

struct peerwalk { int role; size_t n; };

static void inflight_lost(struct qmsg *m, void *arg)
{
	struct peerwalk *w = arg;
	for (uint32_t i = 0; i < m->env.nslots; i++)
		if ((m->sf[i] & SF_INFLIGHT) && slot_role(&m->env.slots[i]) == w->role) {
			defer_redo(m, i, w->role == R_MDA ? "local delivery agent died"
			                                  : "remote delivery agent died");
			w->n++;
		}
}

static void redo_now(struct qmsg *m, void *arg)
{
	struct peerwalk *w = arg;
	int any = 0;
	for (uint32_t i = 0; i < m->env.nslots; i++)
		if ((m->sf[i] & SF_REDO) && slot_role(&m->env.slots[i]) == w->role) {
			m->sf[i] &= (unsigned char)~SF_REDO;
			any = 1;
		}
	if (any) {                           /* M_SCHED_CTL op 1: ready now */
		struct msg out;
		msg_init(&out, M_SCHED_CTL, 0);
		msg_u64(&out, 1);
		msg_u64(&out, m->env.id);
		chan_send(queue_ch_sched, &out);
		w->n++;
	}
}

static void reroute_now(struct qmsg *m, void *arg)
{
	if (m->reroute_at)
		queue_reroute(m, queue_now());
}

void queue_reroute_all(void)
{
	queue_foreach(reroute_now, NULL);
}

void queue_deliver_peer_lost(int role)
{
	struct peerwalk w = { role, 0 };
	if (role == R_LOOKUP) {
		routes_lost();
		queue_list_peer_lost();
		return;
	}
	queue_foreach(inflight_lost, &w);
	size_t b = 0, nd = 0, cap = 0;       /* its requests are gone with it */
	struct djob **gone = NULL;
	for (struct hnode *h = NULL; (h = hmap_next(&djobs, &b, h));)
		if (((struct djob *)h)->role == role) {
			if (nd == cap)
				gone = xrealloc(gone, (cap = cap ? 2 * cap : 16) * sizeof *gone);
			gone[nd++] = (struct djob *)h;
		}
	for (size_t k = 0; k < nd; k++)
		djob_free(gone[k]);
	free(gone);
	if (w.n)
		log_info("event=deliveries_deferred peer=%s n=%zu", role_name(role), w.n);
}

void queue_deliver_peer_back(int role)
{
	struct peerwalk w = { role, 0 };
	queue_foreach(role == R_LOOKUP ? reroute_now : redo_now, &w);
}
