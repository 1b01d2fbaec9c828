/* qmqp_session — see qmqp_session.h. States: OPEN (the data file is asked; input waits in
 * the socket), READ (the request is parsed, the message written), COMMIT (the queue is
 * asked to commit; input paused), CLOSING (the reply drains, then the end).
 * Durability as SMTP's: K is written only after M_MSG_COMMITTED 250, which the queue sends
 * once the message and its envelope are fsynced and renamed (doc/QUEUE.md).
 * Owns: the io, the data file descriptor, the envelope. Trusts: nothing from the client. */
#include "ternd/smtp/qmqp_session.h"
#include "ternd/smtp/smtp_commit.h"
#include "ternd/proto.h"
#include "mail/qmqp.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QMQP_DRAIN_MAX (1024 * 1024)  /* octets read and dropped after the reply */
#define QMQP_DRAIN_MS  5000           /* and for at most this long: the client reads, closes */

enum qmqp_session_st { QS_OPEN, QS_READ, QS_COMMIT, QS_CLOSING };

struct qmqp_session {
	struct smtp_srv *srv;
	struct io *io;
	uint32_t id;
	void *ipslot;
	enum qmqp_session_st st;
	int fd;                          /* the data file, -1 when none */
	int werr;                        /* errno of the first failed write */
	int ended;
	size_t drained;
	uint64_t msgid, written;
	char *sender;
	char **rcpt;
	uint32_t nrcpt, rcptcap;
	uint64_t rcptbytes;              /* the recipients' octets in the commit (smtp_commit.h) */
	struct qmqp_req req;
	char ip[INET6_ADDRSTRLEN];
};

static struct cfg_list qmqp_session_clients;  /* inline items only: the tables read at start */

/* ---- qmqpclients ------------------------------------------------------------------------- */

int qmqp_session_prepare(const struct config *cfg)
{
	struct cfg_list *l = &qmqp_session_clients;
	for (size_t i = 0; i < cfg->qmqpclients.n; i++) {
		l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
		l->v[l->n++] = xstrdup(cfg->qmqpclients.v[i]);
	}
	for (size_t i = 0; i < cfg->qmqpclients.ntables; i++) {
		const char *ref = cfg->qmqpclients.tables[i];
		if (strncmp(ref, "file:", 5) != 0) {
			log_err("event=config_error key=qmqpclients error=\"only file: tables are "
			        "supported\" table=%s", ref);
			return -1;
		}
		if (table_ip_file_load(ref + 5, "qmqpclients", l) < 0)
			return -1;
	}
	return 0;
}

int qmqp_session_client_ok(const char *ip)
{
	return table_ip_lookup(&qmqp_session_clients, ip) == TABLE_FOUND;
}

/* ---- ending ----------------------------------------------------------------------------- */

static void qmqp_session_abort_file(struct qmqp_session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->msgid && s->srv->queue_up) {
		struct msg m;
		msg_init(&m, M_MSG_ABORT, s->id);
		msg_u64(&m, s->msgid);
		chan_send(s->srv->queue, &m);
	}
	s->msgid = 0;
}

static void qmqp_session_end(struct qmqp_session *s, const char *why)
{
	if (s->ended)
		return;
	s->ended = 1;
	if (s->st != QS_COMMIT)
		qmqp_session_abort_file(s);
	log_info("event=qmqp_close sid=%u ip=%s reason=%s", s->id, s->ip, why);
	io_free(s->io);
	free(s->sender);
	for (uint32_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
	s->srv->closed(s->srv, NULL, s->id, s->ipslot);
	free(s);
}

/* the one reply; the connection ends once it is sent (IO_LOWAT) */
static void qmqp_session_answer(struct qmqp_session *s, char code, const char *text)
{
	struct buf b;
	if (s->st != QS_COMMIT)
		qmqp_session_abort_file(s);
	buf_init(&b);
	qmqp_reply(&b, code, text);
	io_write(s->io, b.p, b.len);
	buf_free(&b);
	s->st = QS_CLOSING;         /* reading goes on, dropped: no reset before the reply */
	if (code != 'K')
		log_info("event=qmqp_reply sid=%u ip=%s code=%c text=\"%s\"", s->id, s->ip, code, text);
}

/* a refusal shared with SMTP (smtp_commit.h): Z for 4xx, D for 5xx, "text (#x.y.z)" */
static void qmqp_session_answer_as(struct qmqp_session *s, struct smtp_commit_reply e)
{
	char text[160];
	snprintf(text, sizeof text, "%s (#%s)", e.text, e.enh);
	qmqp_session_answer(s, e.code >= 500 ? 'D' : 'Z', text);
}

/* ---- the request ---------------------------------------------------------------------------- */

static void qmqp_session_write(struct qmqp_session *s, const char *p, size_t n)
{
	while (n > 0 && !s->werr) {
		ssize_t k = write(s->fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			s->werr = k < 0 ? errno : EIO;
			break;
		}
		p += k;
		n -= (size_t)k;
		s->written += (uint64_t)k;
	}
}

static void qmqp_session_commit(struct qmqp_session *s)
{
	struct msg m;
	if (s->werr) {
		qmqp_session_answer_as(s, smtp_commit_werr(s->werr));
		return;
	}
	if (!s->srv->queue_up) {
		qmqp_session_answer(s, 'Z', "queue unavailable, try again later (#4.3.0)");
		return;
	}
	close(s->fd);
	s->fd = -1;
	char origin[INET6_ADDRSTRLEN + 16];
	snprintf(origin, sizeof origin, "qmqp ip=%s", s->ip);
	smtp_commit_msg(&m, s->id, s->msgid, s->sender, s->rcpt, s->nrcpt, origin, s->written);
	chan_send(s->srv->queue, &m);
	s->st = QS_COMMIT;
	io_set_read(s->io, 0);
	log_debug("event=qmqp_commit sid=%u id=%016llx nrcpt=%u", s->id,
	          (unsigned long long)s->msgid, s->nrcpt);
}

/* one more recipient; 0, or -1 when the commit could not carry it (D answered) */
static int qmqp_session_add_rcpt(struct qmqp_session *s, const char *a)
{
	if (!smtp_commit_fits(s->nrcpt, s->rcptbytes, a)) {
		qmqp_session_answer(s, 'D', "too many recipients (#5.5.3)");
		return -1;
	}
	s->rcptbytes += smtp_commit_rcpt_bytes(a);
	if (s->nrcpt == s->rcptcap) {
		s->rcptcap = s->rcptcap ? s->rcptcap * 2 : 4;
		s->rcpt = xrealloc(s->rcpt, s->rcptcap * sizeof *s->rcpt);
	}
	s->rcpt[s->nrcpt++] = xstrdup(a);
	return 0;
}

/* everything buffered, through the parser */
static void qmqp_session_input(struct qmqp_session *s)
{
	while (s->st == QS_READ) {
		size_t n, used, pl;
		const char *in = io_data(s->io, &n), *piece;
		if (n == 0)
			return;
		int ev = qmqp_req_feed(&s->req, in, n, &used, &piece, &pl);
		if (ev == QMQP_TEXT)
			qmqp_session_write(s, piece, pl);
		io_drop(s->io, used);
		if (ev == QMQP_SENDER)
			s->sender = xstrdup(s->req.mailbox);
		else if (ev == QMQP_RCPT)
			(void)qmqp_session_add_rcpt(s, s->req.mailbox);
		else if (ev == QMQP_END)
			qmqp_session_commit(s);
		else if (ev == QMQP_ERR) {
			char why[160];
			snprintf(why, sizeof why, "%s (#%s)", s->req.why, s->req.code);
			qmqp_session_answer(s, 'D', why);
		}
	}
}

static void qmqp_session_io_cb(struct io *io, int evt, void *arg)
{
	struct qmqp_session *s = arg;
	switch (evt) {
	case IO_DATAIN:
		if (s->st == QS_CLOSING) {
			s->drained += io_datalen(io);
			io_drop(io, io_datalen(io));
			if (s->drained > QMQP_DRAIN_MAX)
				qmqp_session_end(s, "done");
		} else
			qmqp_session_input(s);
		break;
	case IO_LOWAT:
		if (s->st == QS_CLOSING) {
			io_set_read(io, 1);
			io_set_timeout(io, QMQP_DRAIN_MS);
		}
		break;
	case IO_TIMEOUT:
		qmqp_session_end(s, s->st == QS_CLOSING ? "done" : "timeout");
		break;
	case IO_DISCONNECTED:
		qmqp_session_end(s, s->st == QS_READ ? "client_gone_midrequest" :
		            s->st == QS_CLOSING ? "done" : "client_gone");
		break;
	default:
		qmqp_session_end(s, "io_error");
		break;
	}
}

/* ---- queue answers ------------------------------------------------------------------------- */

static void qmqp_session_opened(struct qmqp_session *s, uint64_t status, uint64_t msgid, int fd)
{
	if (status != 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		s->msgid = status == 0 ? msgid : 0;       /* opened without a file: give it back */
		qmqp_session_answer_as(s, smtp_commit_status(status == 554 ? 451 : status));
		return;
	}
	struct buf h;
	const struct config *cfg = s->srv->cfg;
	s->fd = fd;
	s->msgid = msgid;
	buf_init(&h);
	qmqp_received(&h, s->ip, cfg->me, msgid, time(NULL));
	qmqp_session_write(s, h.p, h.len);
	buf_free(&h);
	s->st = QS_READ;
	log_debug("event=qmqp_opened sid=%u id=%016llx", s->id, (unsigned long long)msgid);
	io_set_read(s->io, 1);
	qmqp_session_input(s);
}

static void qmqp_session_committed(struct qmqp_session *s, uint64_t status, const char *text)
{
	char msg[128];
	if (status == 250) {
		log_info("event=queued id=%016llx sid=%u ip=%s proto=qmqp nrcpt=%u size=%llu",
		         (unsigned long long)s->msgid, s->id, s->ip, s->nrcpt,
		         (unsigned long long)s->written);
		snprintf(msg, sizeof msg, "ok %016llx qp %u", (unsigned long long)s->msgid, s->id);
		s->msgid = 0;
		qmqp_session_answer(s, 'K', msg);
	} else {
		s->msgid = 0;
		qmqp_session_answer_as(s, smtp_commit_status(status));
	}
}

static void qmqp_session_ipc(void *sess, uint32_t type, struct msg_reader *r, int fd)
{
	struct qmqp_session *s = sess;
	uint64_t a = msg_get_u64(r), b = 0;
	const char *text = "";
	if (type == M_MSG_OPENED)
		b = msg_get_u64(r);
	else
		text = msg_get_str(r);
	int ok = msg_done(r) == 0;
	if ((type == M_MSG_OPENED && s->st == QS_OPEN) ||
	    (type == M_MSG_COMMITTED && s->st == QS_COMMIT)) {
		if (type == M_MSG_OPENED)
			qmqp_session_opened(s, ok ? a : 451, ok ? b : 0, fd);
		else
			qmqp_session_committed(s, ok ? a : 451, text);
		return;
	}
	log_warn("event=unexpected_answer sid=%u type=%u", s->id, type);
	if (fd >= 0)
		close(fd);
	if (type == M_MSG_OPENED && ok && a == 0 && s->srv->queue_up) {
		struct msg m;
		msg_init(&m, M_MSG_ABORT, s->id);
		msg_u64(&m, b);
		chan_send(s->srv->queue, &m);
	}
}

/* The queue went away: a data file not yet committed is gone with it; a commit in flight has
 * an unknown outcome — Z either way (the client sends again: a duplicate at worst). */
static void qmqp_session_peer_lost(void *sess)
{
	struct qmqp_session *s = sess;
	if (s->srv->queue_up || s->st == QS_CLOSING)
		return;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->msgid = 0;
	s->st = QS_OPEN;
	qmqp_session_answer(s, 'Z', "queue unavailable, try again later (#4.3.0)");
}

static void qmqp_session_kill(void *sess)
{
	struct qmqp_session *s = sess;
	qmqp_session_end(s, "shutdown");
}

const struct smtp_proto_ops qmqp_session_ops = {
	.ipc = qmqp_session_ipc,
	.peer_lost = qmqp_session_peer_lost,
	.drain = NULL,
	.kill = qmqp_session_kill,
};

struct qmqp_session *qmqp_session_new(struct smtp_srv *srv, int fd, uint32_t id,
                                      const char *ip, void *ipslot)
{
	const struct config *cfg = srv->cfg;
	struct qmqp_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	s->id = id;
	s->ipslot = ipslot;
	s->fd = -1;
	s->st = QS_OPEN;
	snprintf(s->ip, sizeof s->ip, "%s", ip);
	qmqp_req_init(&s->req, cfg->databytes, cfg->maxrcptcount && cfg->maxrcptcount <
	              COMMIT_MAXRCPT ? (uint32_t)cfg->maxrcptcount : COMMIT_MAXRCPT);
	s->io = io_new(fd, qmqp_session_io_cb, s);
	io_set_timeout(s->io, (long)(cfg->timeoutsmtpd * 1000));
	io_set_read(s->io, 0);
	log_info("event=qmqp_connect sid=%u ip=%s", id, ip);
	if (!srv->queue_up) {
		qmqp_session_answer(s, 'Z', "queue unavailable, try again later (#4.3.0)");
		return s;
	}
	struct msg m;
	msg_init(&m, M_MSG_OPEN, id);
	chan_send(srv->queue, &m);
	return s;
}
