/* mta_qmqp — see mta_qmqp.h. One connection per job: connect (timeoutconnect) to each of
 * qmqpservers in order until one answers; the request is the netstring of
 * netstring(message) netstring(sender) netstring(recipient)..., the message streamed from
 * the job's descriptor with pread in chunks as output drains; then one reply netstring
 * (timeoutremote); a D or Z may come before the whole request was sent (the server refuses
 * early), a K may not (it cannot have committed what it did not read): that server failed.
 * Any failure before a reply (refused, timeout, reset, a short file read)
 * moves on to the next server: the server sent no K, so at worst a server that committed
 * and lost its reply gets a duplicate (tern's rule: a duplicate rather than a loss).
 * Owns: the connections and jobs in flight. Trusts: nothing the servers send. */
#include "ternd/mta/mta_qmqp.h"
#include "ternd/proto.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/netaddr.h"
#include "mail/qmqp.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MTA_QMQP_CHUNK 65536

enum { MTA_QMQP_CONNECT, MTA_QMQP_SEND, MTA_QMQP_REPLY };

struct mta_qmqp {
	struct mta_qmqp *next, *prev;
	const struct config *cfg;
	struct mta_job *j;
	void (*done)(struct mta_job *j);
	struct qmqp_server sv[QMQP_MAXSERVERS];
	int nsv, cur, st;
	struct io *io;
	uint64_t off;                   /* octets of the message sent */
	char err[200];                  /* the last failure, for the deferral's diagnostic */
};

static struct mta_qmqp *mta_qmqp_all;

static void mta_qmqp_try(struct mta_qmqp *q);

static void mta_qmqp_unlink(struct mta_qmqp *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		mta_qmqp_all = q->next;
	if (q->next)
		q->next->prev = q->prev;
}

/* every recipient gets st and diag; the job is reported and q freed */
static void mta_qmqp_finish(struct mta_qmqp *q, int st, const char *diag)
{
	struct mta_job *j = q->j;
	smtpc_txn_reset(&j->txn);
	for (size_t i = 0; i < j->txn.n; i++) {
		j->txn.rcpt[i].status = st;
		j->txn.rcpt[i].diag = xstrdup(diag);
	}
	if (q->io)
		io_free(q->io);
	mta_qmqp_unlink(q);
	void (*done)(struct mta_job *) = q->done;
	free(q);
	done(j);
}

/* this server failed before a reply: the next one */
static void mta_qmqp_next(struct mta_qmqp *q, const char *why)
{
	const struct qmqp_server *sv = &q->sv[q->cur];
	snprintf(q->err, sizeof q->err, "qmqp server [%s]:%d: %s", sv->addr, sv->port, why);
	log_info("event=qmqp_server_failed id=%016llx server=[%s]:%d error=\"%s\"",
	         (unsigned long long)q->j->msgid, sv->addr, sv->port, why);
	if (q->io)
		io_free(q->io);
	q->io = NULL;
	q->cur++;
	mta_qmqp_try(q);
}

static void mta_qmqp_send_head(struct mta_qmqp *q)
{
	struct mta_job *j = q->j;
	struct buf b;
	uint64_t outer = qmqp_ns_len(j->txn.size) + qmqp_ns_len(strlen(j->sender));
	for (size_t i = 0; i < j->txn.n; i++)
		outer += qmqp_ns_len(strlen(j->txn.rcpt[i].addr));
	buf_init(&b);
	qmqp_ns_head(&b, outer);
	qmqp_ns_head(&b, j->txn.size);
	io_write(q->io, b.p, b.len);
	buf_free(&b);
	q->st = MTA_QMQP_SEND;
	q->off = 0;
}

/* the next chunk of the message, or the envelope after its last octet; -1: short file */
static int mta_qmqp_send_more(struct mta_qmqp *q)
{
	struct mta_job *j = q->j;
	if (q->off < j->txn.size) {
		char *b = xmalloc(MTA_QMQP_CHUNK);
		uint64_t rest = j->txn.size - q->off;
		size_t want = rest < MTA_QMQP_CHUNK ? (size_t)rest : MTA_QMQP_CHUNK;
		ssize_t n;
		while ((n = pread(j->fd, b, want, (off_t)q->off)) < 0 && errno == EINTR)
			;
		if (n > 0)
			io_write(q->io, b, (size_t)n);
		free(b);
		if (n <= 0)
			return -1;
		q->off += (uint64_t)n;
		return 0;
	}
	struct buf e;
	buf_init(&e);
	buf_addc(&e, ',');
	qmqp_ns_str(&e, j->sender);
	for (size_t i = 0; i < j->txn.n; i++)
		qmqp_ns_str(&e, j->txn.rcpt[i].addr);
	buf_addc(&e, ',');
	io_write(q->io, e.p, e.len);
	buf_free(&e);
	q->st = MTA_QMQP_REPLY;
	return 0;
}

static void mta_qmqp_reply(struct mta_qmqp *q)
{
	size_t n, used;
	const char *in = io_data(q->io, &n);
	char code, text[QMQP_REPLY_MAX + 1], diag[QMQP_REPLY_MAX + 80];
	int rc = qmqp_reply_parse(in, n, &code, text, sizeof text, &used);
	if (rc == 0)
		return;
	if (rc > 0 && code == 'K' && q->st != MTA_QMQP_REPLY) {
		mta_qmqp_next(q, "protocol error: K before the whole request was sent");
		return;
	}
	const struct qmqp_server *sv = &q->sv[q->cur];
	snprintf(q->j->remote, sizeof q->j->remote, "[%s]:%d", sv->addr, sv->port);
	if (rc < 0) {
		mta_qmqp_finish(q, D_TEMP, "qmqp server sent a malformed reply");
		return;
	}
	snprintf(diag, sizeof diag, "qmqp %c %s", code, text);
	mta_qmqp_finish(q, code == 'K' ? D_OK : code == 'Z' ? D_TEMP : D_PERM, code == 'D' ? text : diag);
}

static void mta_qmqp_io_cb(struct io *io, int evt, void *arg)
{
	struct mta_qmqp *q = arg;
	switch (evt) {
	case IO_CONNECTED:
		io_set_timeout(io, (long)q->cfg->timeoutremote * 1000);
		mta_qmqp_send_head(q);
		if (mta_qmqp_send_more(q) < 0)
			mta_qmqp_next(q, "cannot read the queued message");
		break;
	case IO_LOWAT:
		if (q->st == MTA_QMQP_SEND && mta_qmqp_send_more(q) < 0)
			mta_qmqp_next(q, "cannot read the queued message");
		break;
	case IO_DATAIN:
		mta_qmqp_reply(q);                 /* also early: a D or Z (not K) before it was all sent */
		break;
	case IO_TIMEOUT:
		mta_qmqp_next(q, q->st == MTA_QMQP_CONNECT ? "connect timed out" : "timed out");
		break;
	case IO_DISCONNECTED:
		mta_qmqp_next(q, "connection closed without a reply");
		break;
	default:
		mta_qmqp_next(q, io_error(io));
		break;
	}
}

static void mta_qmqp_try(struct mta_qmqp *q)
{
	for (; q->cur < q->nsv; q->cur++) {
		const struct qmqp_server *sv = &q->sv[q->cur];
		struct sockaddr_storage ss;
		socklen_t len;
		if (netaddr_sockaddr(sv->addr, sv->port, &ss, &len) < 0)
			continue;
		q->st = MTA_QMQP_CONNECT;
		q->io = io_connect((struct sockaddr *)&ss, len, NULL, 0, mta_qmqp_io_cb, q);
		if (!q->io) {
			snprintf(q->err, sizeof q->err, "qmqp server [%s]:%d: %s", sv->addr, sv->port,
			         strerror(errno));
			continue;
		}
		io_set_timeout(q->io, (long)q->cfg->timeoutconnect * 1000);
		return;
	}
	mta_qmqp_finish(q, D_TEMP, *q->err ? q->err : "no QMQP server configured (qmqpservers)");
}

void mta_qmqp_start(const struct config *cfg, struct mta_job *j, void (*done)(struct mta_job *j))
{
	struct mta_qmqp *q = xcalloc(1, sizeof *q);
	q->cfg = cfg;
	q->j = j;
	q->done = done;
	q->nsv = qmqp_servers_parse(cfg->qmqpservers, q->sv, QMQP_MAXSERVERS);
	if (q->nsv < 0)
		q->nsv = 0;
	q->next = mta_qmqp_all;
	if (mta_qmqp_all)
		mta_qmqp_all->prev = q;
	mta_qmqp_all = q;
	snprintf(j->tls, sizeof j->tls, "tls=no proto=qmqp");
	mta_qmqp_try(q);
}

void mta_qmqp_stop_all(void)
{
	while (mta_qmqp_all)
		mta_qmqp_finish(mta_qmqp_all, D_TEMP, "mta shutting down");
}
