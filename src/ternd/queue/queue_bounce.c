/* queue_bounce — turning a finished message's permanent failures into one RFC 3464 report
 * (src/mail/dsn.c builds the text) and committing it as a new message from <>; and the one
 * delay notice (Action: delayed) for a message still not delivered after delaywarn
 * (doc/QUEUE.md, "Delay notices").
 * Owns: who receives a report: the sender; for a failed bounce or a message from <>,
 * doublebounceto@doublebouncehost (a double bounce); a failed double bounce is logged and
 * dropped. Nothing is ever sent to <>. Trusts: the envelope in memory. */
#include "ternd/queue/queue.h"
#include "ternd/queue/queue_fs.h"
#include "mail/dsn.h"
#include "lib/log.h"
#include "lib/fsutil.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *orig_rcpt(const struct envelope *e, const struct slot *s)
{
	for (int guard = 0; guard < 64 && s->parent < e->nslots; guard++) {
		const struct slot *p = &e->slots[s->parent];
		if (p == s)
			break;
		s = p;
	}
	return s->rcpt;
}

static void log_dropped(const struct qmsg *m)
{
	char id[17];
	env_idstr(m->env.id, id);
	for (size_t i = 0; i < m->env.nslots; i++)
		if (m->env.slots[i].state == SL_FAILED)
			log_warn("event=doublebounce_dropped id=%s rcpt=<%s> diag=\"%s\"", id,
			         m->env.slots[i].rcpt, m->env.slots[i].diag ? m->env.slots[i].diag : "");
}

/* the slots a report lists: failed ones for a bounce; for a delay notice, recipients still
 * pending that were tried at least once */
static int listed(const struct slot *s, int action)
{
	if (action == DSN_FAILED)
		return s->state == SL_FAILED;
	return s->state == SL_ROUTED && s->attempts > 0;
}

static int build(const struct qmsg *m, const char *to, int action, struct buf *out)
{
	const struct envelope *e = &m->env;
	struct dsn_rcpt *r = xcalloc(e->nslots, sizeof *r);
	char (*mta)[256] = xcalloc(e->nslots, sizeof *mta);
	char (*stat)[12] = xcalloc(e->nslots, sizeof *stat);
	size_t n = 0;
	char id[17];
	env_idstr(e->id, id);
	for (size_t i = 0; i < e->nslots; i++) {
		const struct slot *s = &e->slots[i];
		if (!listed(s, action))
			continue;
		const char *orig = orig_rcpt(e, s);
		r[n].addr = s->t.address && *s->t.address ? s->t.address : s->rcpt;
		r[n].orig = strcmp(orig, r[n].addr) ? orig : NULL;
		if (action == DSN_DELAYED) {     /* a deferral keeps no status: the diagnostic's */
			status_from_diag(s->diag ? s->diag : "", '4', stat[n], sizeof stat[n]);
			r[n].status = stat[n];
			r[n].will_retry_until = e->arrival + (int64_t)queue_cfg->queuelifetime;
		} else
			r[n].status = s->status;
		r[n].action = action;
		r[n].diag = s->diag ? s->diag : "";
		if (s->remote) {
			/* Remote-MTA is a host name ("dns; name"); drop our "[address]" suffix */
			snprintf(mta[n], sizeof mta[n], "%.*s", (int)strcspn(s->remote, "["), s->remote);
			r[n].remote_mta = mta[n];
		}
		r[n].last_attempt = s->last;
		n++;
	}
	uint64_t nonce;
	if (getentropy(&nonce, sizeof nonce) < 0)
		nonce = e->id ^ (uint64_t)queue_now();
	struct dsn_report rep = {
		.sender = to, .queue_id = id, .arrival = e->arrival, .rcpt = r, .nrcpt = n,
		.me = queue_cfg->me, .bouncefrom = queue_cfg->bouncefrom,
		.bouncehost = queue_cfg->bouncehost, .bouncemaxbytes = queue_cfg->bouncemaxbytes,
		.now = queue_now(), .nonce = nonce,
	};
	const char *why = NULL;
	int fd = queue_fs_open_data(e->id), rc = -1;
	if (fd >= 0) {
		rc = dsn_build_fd(&rep, fd, out, &why);
		close(fd);
	}
	if (rc < 0)
		log_err("event=bounce_build_failed id=%s reason=\"%s\"", id, why ? why : "read error");
	free(r);
	free(mta);
	free(stat);
	return rc;
}

/* build the report for action, write it as a new data file and enqueue its commit as a
 * message from <> to `to`; the commit batch tells queue.c (B or W record). 0 / -1 */
static int commit_report(struct qmsg *m, const char *to, int kind, int action)
{
	char id[17];
	env_idstr(m->env.id, id);
	struct buf text;
	buf_init(&text);
	if (build(m, to, action, &text) < 0) {
		buf_free(&text);
		return -1;
	}
	uint64_t bid;
	int fd = queue_fs_create_data(&bid);
	if (fd < 0 || fs_write_all(fd, text.p, text.len) < 0) {
		static struct log_limit lim;      /* a full disk fails this at every tick */
		unsigned long long rep;
		if (log_limit(&lim, 60, &rep))
			log_err("event=bounce_write_failed id=%s error=\"%s\" repeated=%llu", id,
			        strerror(errno), rep);
		if (fd >= 0) {
			close(fd);
			queue_fs_discard_uncommitted(bid);
		}
		buf_free(&text);
		return -1;
	}
	buf_free(&text);
	const char *what = action == DSN_DELAYED ? "delay notice" :
	                   kind == EK_BOUNCE ? "bounce" : "double bounce";
	struct qmsg *b = queue_new_msg();
	b->env.id = bid;
	b->env.arrival = queue_now();
	b->env.sender = xstrdup("");
	b->env.kind = kind;
	struct buf o;
	buf_init(&o);
	buf_printf(&o, "%s of %s", what, id);
	b->env.origin = buf_detach(&o);
	env_add_rcpt(&b->env, to);
	b->env.norig = 1;
	char bids[17];
	env_idstr(bid, bids);
	log_info("event=%s id=%s bounce_id=%s to=<%s> kind=%s",
	         action == DSN_DELAYED ? "delay_notice" : "bounce", id, bids, to,
	         action == DSN_DELAYED ? "delay" : kind == EK_BOUNCE ? "bounce" : "doublebounce");
	return queue_commit_add(action == DSN_DELAYED ? PC_DELAY : PC_BOUNCE, b, fd, NULL, 0, NULL,
	                        m->env.id);
}

int queue_bounce_start(struct qmsg *m)
{
	char to[600];
	int kind = EK_BOUNCE;
	if (m->env.kind == EK_DOUBLEBOUNCE) {
		log_dropped(m);
		return 1;
	}
	if (m->env.kind == EK_BOUNCE || !*m->env.sender) {
		const char *dbt = queue_cfg->doublebounceto;
		if (!dbt || !*dbt) {
			log_dropped(m);
			return 1;
		}
		snprintf(to, sizeof to, "%s%s%s", dbt, strchr(dbt, '@') ? "" : "@",
		         strchr(dbt, '@') ? "" : queue_cfg->doublebouncehost);
		kind = EK_DOUBLEBOUNCE;
	} else
		snprintf(to, sizeof to, "%s", m->env.sender);
	return commit_report(m, to, kind, DSN_FAILED);
}

/* 1 if m is owed its delay notice now: delaywarn is on and has passed since arrival, no
 * notice was committed or is in the batch, m is an ordinary message with a sender (never
 * for a bounce, a notice or <>), not held, and a recipient tried at least once is pending */
static int delay_due(const struct qmsg *m, int64_t now)
{
	uint64_t dw = queue_cfg->delaywarn;
	if (!dw || m->env.warned || m->warning || m->env.kind != EK_NORMAL || !*m->env.sender ||
	    m->env.held || now < m->env.arrival + (int64_t)dw)
		return 0;
	for (size_t i = 0; i < m->env.nslots; i++)
		if (listed(&m->env.slots[i], DSN_DELAYED))
			return 1;
	return 0;
}

void queue_delay_check(struct qmsg *m)
{
	if (!delay_due(m, queue_now()))
		return;
	if (commit_report(m, m->env.sender, EK_BOUNCE, DSN_DELAYED) == 0)
		m->warning = 1;          /* until the commit batch reports (queue.c, W record) */
}
