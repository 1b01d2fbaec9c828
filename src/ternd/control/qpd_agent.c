/* qp_agent — Bongo's stage agents (see qp.h, doc/QP.md "Agents"):
 *
 *   QWAIT <stage> <port> <id> ──► registry: (stage, id) -> pool of endpoints (ip, port)
 *   registry changes ──► M_Q_AGENTS (the stages that have agents) ──► queue
 *   queue ──► M_Q_STAGE_PUSH (msgid, stage) ──► job: for each pool of the stage, in id order:
 *       M_Q_READ ──► connect to an endpoint ──► 6020 … control data … 6021
 *       ──► the agent's commands ──► QDONE: its edits become M_Q_OP ──► next pool
 *   ──► M_Q_STAGE_DONE (SV_NEXT; SV_GONE after a delete; SV_HOLD; none after a return)
 *
 * An agent that is down, slow or crashing never loses or stalls mail: with the policy
 * "skip" (default) the entry goes on without it (and the endpoint is unregistered when it
 * is down or dropped the connection); with "hold" the entry waits at its stage and is pushed
 * again when an agent registers or every hold-retry period.
 * Owns: the registry (in memory) and the jobs. Trusts: the queue; nothing an agent sends. */
#include "ternd/control/qpd.h"
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "lib/io.h"
#include "lib/log.h"
#include "mail/addr.h"
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define QP_MAXPOOLS  64
#define QP_MAXEP     16
#define QP_AGENT_CONC 8               /* entries at once at one endpoint */
#define QP_MAXWORK   10000            /* QMOD lines kept per entry */
#define QP_IDENT     128

struct qp_ep { char ip[INET6_ADDRSTRLEN]; int port; struct qpd_sess *owner; unsigned busy; };
struct qp_pool { unsigned stage; char ident[QP_IDENT]; struct qp_ep ep[QP_MAXEP]; size_t nep, rr; };

enum { JS_READ, JS_WAIT, JS_CONNECT, JS_RUN, JS_APPLY };

struct qp_jop { uint64_t op; char *a1; };
struct qpd_job;
typedef void (*qp_job_fn)(struct qpd_job *j, uint32_t type, struct msg_reader *r, int fd);

struct qpd_job {
	uint64_t msgid;
	unsigned stage;
	int state;
	char ident[QP_IDENT];           /* the pool serving the entry now ("" before the first) */
	int served;                     /* pools that finished with QDONE */
	size_t attempts;                /* endpoints tried in this pool */
	char epip[INET6_ADDRSTRLEN];    /* the endpoint in use */
	int epport;
	struct qpd_sess *cb;
	struct buf ctrl;                /* control data as sent */
	size_t nrcpt;
	uint64_t dwire;
	char **work;                    /* QMOD lines (control-line form) */
	size_t nwork;
	int raw;                        /* some QMOD RAW: the lines replace the envelope */
	char **rts;                     /* QRTS recipients */
	size_t nrts;
	int gone;                       /* the agent deleted the entry */
	struct qp_jop *ops;
	size_t nops, iop;
	int verdict;
	qp_job_fn cont;
	struct ev *timer;
	struct qpd_job *next;
};

static struct qp_pool qp_pools[QP_MAXPOOLS];
static size_t qp_npools;
static struct qpd_job *qp_jobs;
static unsigned char qp_sticky[QP_MAXSTAGE + 1];   /* announced with or without agents */
static unsigned char qp_announced[QP_MAXSTAGE + 1];
static int qp_hold;                                  /* policy: hold (1) or skip (0) */
static long qp_agent_ms = 60000, qp_retry_ms = 30000;
static struct ev *qp_retry_ev;

static void qp_job_next_pool(struct qpd_job *j);
static void qp_job_connect(struct qpd_job *j);
static void qp_kick(void);

/* ---- the registry ------------------------------------------------------------------------ */

static struct qp_pool *qp_pool_find(unsigned stage, const char *ident)
{
	for (size_t i = 0; i < qp_npools; i++)
		if (qp_pools[i].stage == stage && strcmp(qp_pools[i].ident, ident) == 0)
			return &qp_pools[i];
	return NULL;
}

/* the pool of stage whose ident comes first after `after` */
static struct qp_pool *qp_pool_after(unsigned stage, const char *after)
{
	struct qp_pool *best = NULL;
	for (size_t i = 0; i < qp_npools; i++) {
		struct qp_pool *p = &qp_pools[i];
		if (p->stage == stage && p->nep && strcmp(p->ident, after) > 0 &&
		    (!best || strcmp(p->ident, best->ident) < 0))
			best = p;
	}
	return best;
}

static void qp_announce(int force)
{
	unsigned char now[QP_MAXSTAGE + 1];
	size_t n = 0;
	memcpy(now, qp_sticky, sizeof now);
	for (size_t i = 0; i < qp_npools; i++)
		if (qp_pools[i].nep)
			now[qp_pools[i].stage] = 1;
	if (!force && memcmp(now, qp_announced, sizeof now) == 0)
		return;
	memcpy(qp_announced, now, sizeof now);
	for (size_t i = 0; i <= QP_MAXSTAGE; i++)
		n += now[i];
	struct msg m;
	msg_init(&m, M_Q_AGENTS, 0);
	msg_u64(&m, n);
	for (unsigned i = 0; i <= QP_MAXSTAGE; i++)
		if (now[i])
			msg_u64(&m, i);
	control_send(R_QUEUE, &m);
	log_info("event=qp_agents stages=%zu", n);
}

/* drop pools without endpoints (keeping the others in place is not needed: jobs find their
 * pool by stage and ident) */
static void qp_pools_prune(void)
{
	size_t k = 0;
	for (size_t i = 0; i < qp_npools; i++)
		if (qp_pools[i].nep)
			qp_pools[k++] = qp_pools[i];
	qp_npools = k;
}

static void qp_ep_remove(struct qp_pool *p, size_t i, const char *why)
{
	log_info("event=qp_agent_unregistered stage=%u agent=\"%s\" ip=%s port=%d reason=%s",
	         p->stage, p->ident, p->ep[i].ip, p->ep[i].port, why);
	p->ep[i] = p->ep[--p->nep];
}

static struct qp_ep *qp_ep_find(struct qp_pool *p, const char *ip, int port, size_t *idx)
{
	for (size_t i = 0; p && i < p->nep; i++)
		if (p->ep[i].port == port && strcmp(p->ep[i].ip, ip) == 0) {
			if (idx)
				*idx = i;
			return &p->ep[i];
		}
	return NULL;
}

/* under skip, an endpoint that is down or dropped an entry is forgotten */
static void qp_ep_forget(struct qpd_job *j, const char *why)
{
	size_t i;
	struct qp_pool *p = qp_pool_find(j->stage, j->ident);
	if (qp_hold || !qp_ep_find(p, j->epip, j->epport, &i))
		return;
	qp_ep_remove(p, i, why);
	qp_pools_prune();
	qp_announce(0);
}

static struct qp_pool *qp_pool_get(unsigned stage, const char *ident)
{
	struct qp_pool *p = qp_pool_find(stage, ident);
	if (p || qp_npools == QP_MAXPOOLS)
		return p;
	p = &qp_pools[qp_npools++];
	memset(p, 0, sizeof *p);
	p->stage = stage;
	snprintf(p->ident, sizeof p->ident, "%s", ident);
	return p;
}

static void qp_qwait(struct qpd_sess *s)
{
	unsigned stage = (unsigned)s->cmd.num[0];
	int port = (int)s->cmd.num[1], one = 1;
	char ident[QP_IDENT];
	snprintf(ident, sizeof ident, "%s", s->cmd.argv[2]);
	struct qp_pool *p = qp_pool_get(stage, ident);
	struct qp_ep *e = qp_ep_find(p, s->ip, port, NULL);
	if (!e && p && p->nep < QP_MAXEP) {
		e = &p->ep[p->nep++];
		memset(e, 0, sizeof *e);
		snprintf(e->ip, sizeof e->ip, "%s", s->ip);
		e->port = port;
	}
	if (!e) {
		qp_pools_prune();
		qpd_say(s, 5004, "Too many agents");
		return;
	}
	e->owner = s;
	s->watching = 1;
	setsockopt(io_fd(s->io), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	if (qp_hold)
		qp_sticky[stage] = 1;               /* mail waits here even while the agent is away */
	log_info("event=qp_agent_registered sid=%u stage=%u agent=\"%s\" ip=%s port=%d", s->id, stage,
	         ident, s->ip, port);
	qpd_say(s, 1000, "OK Queue Watch mode");
	qp_announce(1);                         /* also makes the queue push held entries again */
	qp_kick();
}

/* a registering connection ends: after QUIT its registrations stay (Bongo's agents register
 * and quit); a connection that breaks takes them along */
static void qp_watch_end(struct qpd_sess *s)
{
	for (size_t i = 0; i < qp_npools; i++)
		for (size_t k = qp_pools[i].nep; k-- > 0;) {
			struct qp_ep *e = &qp_pools[i].ep[k];
			if (e->owner != s)
				continue;
			e->owner = NULL;
			if (!s->cleanquit)
				qp_ep_remove(&qp_pools[i], k, "connection_lost");
		}
	qp_pools_prune();
	qp_announce(0);
}

/* ---- jobs --------------------------------------------------------------------------------- */

static void qp_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void qp_job_reset_edits(struct qpd_job *j)
{
	qp_strv_free(j->work, j->nwork);
	qp_strv_free(j->rts, j->nrts);
	for (size_t i = 0; i < j->nops; i++)
		free(j->ops[i].a1);
	free(j->ops);
	j->work = j->rts = NULL;
	j->ops = NULL;
	j->nwork = j->nrts = j->nops = j->iop = 0;
	j->raw = j->gone = 0;
	buf_reset(&j->ctrl);
}

static void qp_job_free(struct qpd_job *j)
{
	for (struct qpd_job **pp = &qp_jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (j->cb) {
		j->cb->job = NULL;
		qpd_sess_close(j->cb, "entry_finished");
		qpd_sess_finish(j->cb);
	}
	qp_job_reset_edits(j);
	buf_free(&j->ctrl);
	ev_free(j->timer);
	free(j);
}

static void qp_retry_cb(int fd, short what, void *arg)
{
	log_info("event=qp_hold_retry");
	qp_announce(1);
}

/* verdict QP_RETURNED: the entry was returned to its sender (QOP_KILL): the queue bounces
 * and removes it by itself, and SV_GONE (remove now) must not overtake its bounce */
#define QP_RETURNED (-1)

static void qp_job_finish(struct qpd_job *j, int verdict, const char *why)
{
	struct msg m;
	if (verdict != QP_RETURNED) {
		msg_init(&m, M_Q_STAGE_DONE, 0);
		msg_u64(&m, j->msgid);
		msg_u64(&m, j->stage);
		msg_u64(&m, (uint64_t)verdict);
		control_send(R_QUEUE, &m);
	}
	log_info("event=qp_stage_done id=%016" PRIx64 " stage=%u verdict=%s why=%s", j->msgid, j->stage,
	         verdict == SV_NEXT ? "next" : verdict == SV_HOLD ? "hold" : verdict == SV_GONE ? "gone"
	         : "returned", why);
	if (verdict == SV_HOLD && !ev_pending(qp_retry_ev))
		ev_add(qp_retry_ev, qp_retry_ms);
	qp_job_free(j);
	qp_kick();
}

/* the agent of this pool could not do its work: the policy decides */
static void qp_job_pool_failed(struct qpd_job *j, const char *why)
{
	log_warn("event=qp_agent_%s id=%016" PRIx64 " stage=%u agent=\"%s\" policy=%s", why, j->msgid,
	         j->stage, j->ident, qp_hold ? "hold" : "skip");
	if (qp_hold) {
		qp_job_finish(j, SV_HOLD, why);
		return;
	}
	qp_job_next_pool(j);
}

static void qp_job_ipc(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct qpd_job *j = arg;
	qp_job_fn fn = j->cont;
	j->cont = NULL;
	if (!r || !fn) {                    /* the queue is gone: the roles restart */
		if (fd >= 0)
			close(fd);
		qp_job_free(j);
		return;
	}
	fn(j, type, r, fd);
}

static void qp_job_ask(struct qpd_job *j, struct msg *m, qp_job_fn fn)
{
	j->cont = fn;
	control_ask(R_QUEUE, m, qp_job_ipc, j);
}

/* M_Q_READ_RESULT -> the parsed envelope, the data descriptor, the data size and the stage
 * the queue holds the entry at: 1; 0 the entry is gone; -1 it cannot be read (fd closed) */
static int qp_job_envelope(uint32_t type, struct msg_reader *r, int fd, struct envelope *e,
                           uint64_t *size, uint64_t *stage)
{
	size_t valid;
	char err[128];
	uint64_t status = type == M_Q_READ_RESULT ? msg_get_u64(r) : QS_ERROR;
	const char *text = msg_get_str(r);
	*size = msg_get_u64(r);
	*stage = msg_get_u64(r);
	env_init(e);
	err[0] = '\0';
	if (msg_done(r) == 0 && status == QS_OK && fd >= 0 &&
	    env_parse(text, strlen(text), e, &valid, err, sizeof err) == 0)
		return 1;
	if (fd >= 0)
		close(fd);
	env_free(e);
	if (msg_done(r) == 0 && status == QS_NOENT)
		return 0;
	log_err("event=qp_entry_unreadable status=%" PRIu64 " error=\"%s\"", status, err);
	return -1;
}

static void qp_job_read_done(struct qpd_job *j, uint32_t type, struct msg_reader *r, int fd)
{
	struct envelope e;
	struct qp_split sp;
	uint64_t size, stage;
	int rc = qp_job_envelope(type, r, fd, &e, &size, &stage);
	if (rc == 0) {
		log_info("event=qp_stage_gone id=%016" PRIx64 " stage=%u", j->msgid, j->stage);
		qp_job_free(j);                  /* deleted meanwhile: nothing waits for an answer */
		return;
	}
	if (rc < 0) {
		qp_job_pool_failed(j, "unreadable");
		return;
	}
	int stale = stage != j->stage;
	if (!stale && qpd_scan(fd, size, &sp) == 0) {
		buf_reset(&j->ctrl);
		j->nrcpt = qp_ctrl_build(&j->ctrl, &e, qpd_islocal, NULL);
		j->dwire = qp_split_hwire(&sp) + qp_split_bwire(&sp, size) + (sp.found ? 2 : 0);
	}
	close(fd);
	env_free(&e);
	if (stale)
		qp_job_free(j);                  /* it moved on: the queue expects nothing here */
	else if (!j->ctrl.len)
		qp_job_pool_failed(j, "unreadable");
	else {
		j->attempts = 0;
		qp_job_connect(j);
	}
}

static void qp_job_read(struct qpd_job *j)
{
	struct msg m;
	j->state = JS_READ;
	msg_init(&m, M_Q_READ, 0);
	msg_u64(&m, j->msgid);
	qp_job_ask(j, &m, qp_job_read_done);
}

static void qp_job_next_pool(struct qpd_job *j)
{
	struct qp_pool *p = qp_pool_after(j->stage, j->ident);
	if (p) {
		snprintf(j->ident, sizeof j->ident, "%s", p->ident);
		qp_job_reset_edits(j);
		qp_job_read(j);
	} else if (!j->served && qp_hold && qp_sticky[j->stage])
		qp_job_finish(j, SV_HOLD, "no_agent");
	else
		qp_job_finish(j, SV_NEXT, j->served ? "done" : "no_agent");
}

static void qp_job_timeout(int fd, short what, void *arg)
{
	struct qpd_job *j = arg;
	if (!j->cb)
		return;
	log_warn("event=qp_agent_slow id=%016" PRIx64 " agent=\"%s\" after_ms=%ld", j->msgid, j->ident,
	         qp_agent_ms);
	struct qpd_sess *s = j->cb;
	s->endwhy = "agent_timeout";
	qpd_sess_close(s, "agent_timeout");
	qpd_sess_finish(s);                  /* -> qpd_agent_sess_end -> the policy */
}

/* a session connecting to ip:port (io_connect); NULL if it failed at once */
static struct qpd_sess *qp_dial(const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof *a4;
	} else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		len = sizeof *a6;
	} else {
		errno = EINVAL;
		return NULL;
	}
	return qpd_sess_dial((struct sockaddr *)&ss, len, ip);
}

/* the next endpoint of the pool with room, from its round-robin position */
static struct qp_ep *qp_pick(struct qp_pool *p)
{
	for (size_t k = 0; k < p->nep; k++) {
		struct qp_ep *e = &p->ep[(p->rr + k) % p->nep];
		if (e->busy < QP_AGENT_CONC) {
			p->rr = (p->rr + k + 1) % p->nep;
			return e;
		}
	}
	return NULL;
}

static void qp_job_connect(struct qpd_job *j)
{
	struct qp_pool *p = qp_pool_find(j->stage, j->ident);
	if (!p || !p->nep || j->attempts >= p->nep) {
		qp_job_pool_failed(j, "down");
		return;
	}
	struct qp_ep *e = qp_pick(p);
	if (!e) {
		j->state = JS_WAIT;                 /* every endpoint is busy: qp_kick starts it */
		return;
	}
	j->attempts++;
	snprintf(j->epip, sizeof j->epip, "%s", e->ip);
	j->epport = e->port;
	struct qpd_sess *cb = qp_dial(e->ip, e->port);
	if (!cb) {
		log_warn("event=qp_agent_connect_failed agent=\"%s\" ip=%s port=%d error=\"%s\"", j->ident,
		         e->ip, e->port, strerror(errno));
		qp_ep_forget(j, "connect_failed");
		qp_job_connect(j);
		return;
	}
	e->busy++;
	j->state = JS_CONNECT;
	j->cb = cb;
	cb->job = j;
	if (!j->timer)
		j->timer = ev_new(-1, 0, qp_job_timeout, j);
	ev_add(j->timer, qp_agent_ms);
	qpd_sess_finish(j->cb);
}

void qpd_agent_connected(struct qpd_sess *s, const char *fail)
{
	struct qpd_job *j = s->job;
	if (fail) {
		s->endwhy = "connect_failed";
		qpd_sess_close(s, fail);
		return;
	}
	char name[24];
	s->wait = QW_NONE;
	j->state = JS_RUN;
	qp_entry_format(name, j->stage, j->msgid);
	log_info("event=qp_agent_push id=%016" PRIx64 " stage=%u agent=\"%s\" ip=%s port=%d", j->msgid,
	         j->stage, j->ident, j->epip, j->epport);
	io_printf(s->io, "6020 %s %zu %" PRIu64 " %zu\r\n", name, j->ctrl.len, j->dwire, j->nrcpt);
	io_write(s->io, j->ctrl.p, j->ctrl.len);
	io_print(s->io, "6021 Get busy!\r\n");
}

static void qp_ep_release(struct qpd_job *j)
{
	struct qp_ep *e = qp_ep_find(qp_pool_find(j->stage, j->ident), j->epip, j->epport, NULL);
	if (e && e->busy)
		e->busy--;
}

/* a session ends: its registrations, or the entry it was serving */
void qpd_agent_sess_end(struct qpd_sess *s)
{
	if (s->watching)
		qp_watch_end(s);
	struct qpd_job *j = s->job;
	if (!j)
		return;
	s->job = NULL;
	j->cb = NULL;
	qp_ep_release(j);
	if (j->state == JS_APPLY)
		return;                          /* QDONE came: the edits go on without the agent */
	ev_del(j->timer);
	if (j->state == JS_CONNECT) {
		log_warn("event=qp_agent_connect_failed agent=\"%s\" ip=%s port=%d", j->ident, j->epip,
		         j->epport);
		qp_ep_forget(j, "connect_failed");
		qp_job_connect(j);
	} else {
		int slow = s->endwhy && strcmp(s->endwhy, "agent_timeout") == 0;
		if (!slow)
			qp_ep_forget(j, "dropped_entry");
		qp_job_pool_failed(j, slow ? "slow" : "dropped");
	}
	qp_kick();
}

static void qp_kick(void)
{
	for (struct qpd_job *j = qp_jobs; j; j = j->next)
		if (j->state == JS_WAIT) {
			qp_job_connect(j);
			return;                      /* the list may have changed; the next end kicks again */
		}
}

static void qp_on_push(struct msg_reader *r, int fd)
{
	uint64_t msgid = msg_get_u64(r), stage = msg_get_u64(r);
	if (fd >= 0)
		close(fd);
	if (msg_done(r) < 0 || stage > QP_MAXSTAGE)
		return;
	for (struct qpd_job *j = qp_jobs; j; j = j->next)
		if (j->msgid == msgid && j->stage == stage)
			return;                      /* already on it (the queue pushes again on changes) */
	struct qpd_job *j = xcalloc(1, sizeof *j);
	j->msgid = msgid;
	j->stage = (unsigned)stage;
	buf_init(&j->ctrl);
	j->next = qp_jobs;
	qp_jobs = j;
	qp_job_next_pool(j);
}

/* ---- the agent's commands --------------------------------------------------------------- */

int qpd_agent_current(const struct qpd_sess *s, uint64_t msgid)
{
	return s->job && s->job->msgid == msgid;
}

void qpd_agent_entry_gone(struct qpd_sess *s)
{
	if (s->job)
		s->job->gone = 1;
}

static void qp_work_add(struct qpd_job *j, char kind, const char *a, const char *b, const char *c)
{
	struct buf l;
	if (j->nwork >= QP_MAXWORK)
		return;
	buf_init(&l);
	buf_printf(&l, "%c%s%s%s%s%s", kind, a, b ? " " : "", b ? b : "", c ? " " : "", c ? c : "");
	j->work = xrealloc(j->work, (j->nwork + 1) * sizeof *j->work);
	j->work[j->nwork++] = buf_detach(&l);
}

/* QMOD FROM/TO/LOCAL/MAILBOX/FLAGS/RAW and QRTS: no reply, as in Bongo */
static void qp_qmod(struct qpd_sess *s)
{
	struct qpd_job *j = s->job;
	struct qp_cmd *c = &s->cmd;
	const char *a1 = c->argc > 1 ? c->argv[1] : NULL, *a2 = c->argc > 2 ? c->argv[2] : NULL;
	switch (c->verb) {
	case QP_QMOD_FROM: qp_work_add(j, 'F', c->argv[0], a1 ? a1 : "-", NULL); break;
	case QP_QMOD_TO: qp_work_add(j, 'R', c->argv[0], a1 ? a1 : c->argv[0], a2 ? a2 : "0"); break;
	case QP_QMOD_LOCAL: qp_work_add(j, 'L', c->argv[0], a1 ? a1 : c->argv[0], a2 ? a2 : "0"); break;
	case QP_QMOD_MAILBOX: qp_work_add(j, 'M', c->argv[0], NULL, NULL); break;
	case QP_QMOD_FLAGS: qp_work_add(j, 'X', c->argv[0], NULL, NULL); break;
	case QP_QMOD_RAW:
		if (j->nwork < QP_MAXWORK) {
			j->work = xrealloc(j->work, (j->nwork + 1) * sizeof *j->work);
			j->work[j->nwork++] = xstrdup(c->argv[0]);
		}
		j->raw = 1;
		break;
	default: {
		char addr[ADDR_PATH_MAX];
		if (qp_addr(c->argv[0], 0, addr, sizeof addr) == 0 && j->nrts < QP_MAXWORK) {
			j->rts = xrealloc(j->rts, (j->nrts + 1) * sizeof *j->rts);
			j->rts[j->nrts++] = xstrdup(addr);
		}
	}
	}
}

static void qp_addm_result(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	uint64_t st, count, newid;
	if (qpd_op_result(type, r, &st, &count, &newid) < 0 || (st != QS_OK && st != QS_NOENT))
		qpd_say(s, 4120, "Mailbox locked, try again later");
	else if (st == QS_NOENT)
		qpd_say(s, 4224, "Cannot read queue entry");
	else
		qpd_say(s, 1000, "OK");
}

/* QADDM <entry> <sender> <authsender> <recipient> [<mailbox> <flags>]: one more recipient */
static void qp_qaddm(struct qpd_sess *s)
{
	char addr[ADDR_PATH_MAX];
	if (qp_addr(s->cmd.argv[3], 0, addr, sizeof addr) < 0)
		qpd_say(s, 3010, "Bad arguments");
	else
		qpd_op(s, QOP_ADD_RCPT, s->cmd.ent.id, addr, "", qp_addm_result);
}

/* ---- QDONE: the agent's edits become queue operations ----------------------------------------- */

static void qp_plan_add(struct qpd_job *j, uint64_t op, const char *a1)
{
	j->ops = xrealloc(j->ops, (j->nops + 1) * sizeof *j->ops);
	j->ops[j->nops].op = op;
	j->ops[j->nops++].a1 = xstrdup(a1);
}

static const uint64_t qp_edit_ops[] = {
	[QPE_SENDER] = QOP_SET_SENDER, [QPE_ADD] = QOP_ADD_RCPT, [QPE_DEL] = QOP_DEL_RCPT,
	[QPE_RETURN] = QOP_KILL,
};

/* the agent's edits as queue operations (qp_plan_make says what they mean) */
static void qp_job_plan(struct qpd_job *j, const struct envelope *e)
{
	struct qp_plan p;
	j->verdict = SV_NEXT;
	if (j->gone) {
		j->verdict = SV_GONE;
		return;
	}
	qp_plan_make(&p, j->work, j->nwork, j->raw, j->rts, j->nrts, e);
	for (size_t i = 0; i < p.n; i++)
		qp_plan_add(j, qp_edit_ops[p.v[i].op], p.v[i].arg);
	if (p.returned)
		j->verdict = QP_RETURNED;
	if (p.partial) {
		/* QRTS for some recipients: each named one fails and bounces to the sender */
		for (size_t i = 0; i < j->nrts; i++)
			qp_plan_add(j, QOP_FAIL_RCPT, j->rts[i]);
		log_info("event=qp_rts_partial id=%016" PRIx64 " returned=%zu", j->msgid, j->nrts);
	}
	if (p.ignored)
		log_info("event=qp_agent_lines_ignored id=%016" PRIx64 " lines=%zu", j->msgid, p.ignored);
	qp_plan_free(&p);
}

static void qp_done_step(struct qpd_job *j);

static void qp_done_op(struct qpd_job *j, uint32_t type, struct msg_reader *r, int fd)
{
	uint64_t st = QS_ERROR, count = 0, newid;
	const struct qp_jop *o = &j->ops[j->iop++];
	if (fd >= 0)
		close(fd);
	if (qpd_op_result(type, r, &st, &count, &newid) < 0 || st != QS_OK)
		log_warn("event=qp_agent_edit_failed id=%016" PRIx64 " op=%" PRIu64 " arg=\"%s\" status=%"
		         PRIu64, j->msgid, o->op, o->a1, st);
	else
		log_info("event=qp_agent_edit id=%016" PRIx64 " op=%" PRIu64 " arg=\"%s\" count=%" PRIu64,
		         j->msgid, o->op, o->a1, count);
	qp_done_step(j);
}

static void qp_done_step(struct qpd_job *j)
{
	if (j->iop < j->nops) {
		struct msg m;
		msg_init(&m, M_Q_OP, 0);
		msg_u64(&m, j->ops[j->iop].op);
		msg_u64(&m, j->msgid);
		msg_str(&m, j->ops[j->iop].a1);
		msg_str(&m, "");
		qp_job_ask(j, &m, qp_done_op);
		return;
	}
	struct qpd_sess *s = j->cb;
	if (s) {                                  /* the edits are made: say so, and hang up */
		s->job = NULL;
		j->cb = NULL;
		qp_ep_release(j);
		s->wait = QW_NONE;
		qpd_say(s, 1000, "OK");
		s->quit = 1;
		s->cleanquit = 1;
		s->endwhy = "qdone";
		qpd_sess_finish(s);
	}
	j->served++;
	if (j->verdict != SV_NEXT)
		qp_job_finish(j, j->verdict, j->gone ? "deleted" : "returned");
	else
		qp_job_next_pool(j);
}

static void qp_done_read(struct qpd_job *j, uint32_t type, struct msg_reader *r, int fd)
{
	struct envelope e;
	uint64_t size, stage;
	int rc = qp_job_envelope(type, r, fd, &e, &size, &stage);
	if (rc < 0) {                             /* the edits cannot be worked out: not made */
		if (j->cb) {
			qp_ep_release(j);
			j->cb->job = NULL;
			j->cb->wait = QW_NONE;
			qpd_say(j->cb, 4224, "Cannot read queue entry; edits not made");
			j->cb->quit = 1;
			qpd_sess_finish(j->cb);
			j->cb = NULL;
		}
		qp_job_pool_failed(j, "unreadable");
		return;
	}
	if (rc == 0)
		j->gone = 1;                          /* nothing left to edit */
	else
		close(fd);
	qp_job_plan(j, &e);
	env_free(&e);
	qp_done_step(j);
}

static void qp_qdone(struct qpd_sess *s)
{
	struct qpd_job *j = s->job;
	struct msg m;
	ev_del(j->timer);
	j->state = JS_APPLY;
	s->wait = QW_IPC;                         /* nothing more from the agent until we answer */
	msg_init(&m, M_Q_READ, 0);
	msg_u64(&m, j->msgid);
	qp_job_ask(j, &m, qp_done_read);
}

void qpd_agent_cmd(struct qpd_sess *s)
{
	switch (s->cmd.verb) {
	case QP_QWAIT: qp_qwait(s); break;
	case QP_QADDM: qp_qaddm(s); break;
	case QP_QDONE: qp_qdone(s); break;
	default: qp_qmod(s); break;
	}
}

static void qp_stages_declared(const char *v)
{
	char *copy = xstrdup(v), *save = NULL;
	uint64_t st;
	for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save))
		if (str_to_u64(t, 0, QP_MAXSTAGE, &st) == 0)
			qp_sticky[st] = 1;
		else
			log_warn("event=qp_bad_stage value=\"%s\"", t);
	free(copy);
}

void qpd_agent_init(void)
{
	const char *v __attribute__((unused));
	qp_hold = qpd_cfg->qp_agentpolicy && strcmp(qpd_cfg->qp_agentpolicy, "hold") == 0;
	if (qpd_cfg->qp_agenttimeout)
		qp_agent_ms = (long)qpd_cfg->qp_agenttimeout * 1000;
	if (qpd_cfg->qp_holdretry)
		qp_retry_ms = (long)qpd_cfg->qp_holdretry * 1000;
#ifdef TERN_TEST
	if ((v = getenv("TERN_QP_HOLD_RETRY")) != NULL && atol(v) > 0)
		qp_retry_ms = atol(v) * 1000;
#endif
	for (size_t i = 0; i < qpd_cfg->qp_stages.n; i++)
		qp_stages_declared(qpd_cfg->qp_stages.v[i]);
#ifdef TERN_TEST
	if ((v = getenv("TERN_QP_STAGES")) != NULL)
		qp_stages_declared(v);
#endif
	qp_retry_ev = ev_new(-1, 0, qp_retry_cb, NULL);
	control_on(M_Q_STAGE_PUSH, qp_on_push);
	qp_announce(1);
	log_info("event=qp_agents_ready policy=%s agent_timeout=%lds hold_retry=%lds",
	         qp_hold ? "hold" : "skip", qp_agent_ms / 1000, qp_retry_ms / 1000);
}
