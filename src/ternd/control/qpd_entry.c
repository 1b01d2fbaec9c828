/* qp_entry — the queue protocol's commands that make and move entries (see qp.h):
 * QCREA, QSTOR FROM/TO/LOCAL/CAL/ADDRESS/FLAGS/RAW/MESSAGE, QRUN, QABRT (an entry is made
 * exactly as the smtp role makes one: M_MSG_OPEN, the data written into the descriptor the
 * queue hands over, M_MSG_COMMIT; `1000 <qqq>-<id> OK` only after M_MSG_COMMITTED says 250),
 * QDELE QMOVE QCOPY QFLUSH QRUN <entry> (M_Q_OP), QDSPC, and ADDRESS RESOLVE / DOMAIN
 * LOCATION, answered here from the configuration and this process's copy of the users and
 * aliases tables (src/mail/route.c decides, as in the lookup role).
 * Owns: the entry a session is creating, until it is committed or aborted; the tables it
 * opened. Trusts: the queue's answers; nothing a client sends (every address is checked). */
#include "ternd/control/qpd.h"
#include "mail/digest.h"
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "mail/addr.h"
#include "mail/route.h"
#include "mail/table.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define QP_SINK       65536          /* data written to the entry in pieces of this size */
#define QP_MAXRCPT    10000

static struct users *qp_users;
static struct aliases *qp_aliases;
static struct route_ctx qp_rc;
static time_t qp_checked;

void qpd_abort_id(uint64_t msgid)
{
	struct msg m;
	msg_init(&m, M_MSG_ABORT, 0);
	msg_u64(&m, msgid);
	control_send(R_QUEUE, &m);
}

static void qp_tables_refresh(void)
{
	time_t now = time(NULL);
	if (now == qp_checked)
		return;
	qp_checked = now;
	if (qp_users && users_refresh(qp_users, NULL))
		log_info("event=qp_users_reloaded");
	if (qp_aliases && aliases_refresh(qp_aliases, NULL))
		log_info("event=qp_aliases_reloaded");
}

int qpd_islocal(const char *addr, void *arg)
{
	char *local = NULL, *domain = NULL;
	int w = route_normalize(qpd_cfg, addr, &local, &domain);
	free(local);
	free(domain);
	return w == ROUTE_LOCAL;
}

/* a local address: what routing makes of it */
static void qp_resolve_local(struct qpd_sess *s, const char *addr)
{
	struct route_result res;
	int v = route_address(&qp_rc, addr, &res);
	if (v == ROUTE_NOUSER)
		qpd_say(s, 4001, "No such user");
	else if (v != ROUTE_OK || res.n == 0)
		qpd_say(s, 4000, "Internal error / loop");
	else if (res.n > 1)
		qpd_say(s, 1000, "LOCAL %s", addr);          /* a list: it stays here */
	else if (channel_is_local(&qpd_cfg->channels, res.t[0].channel))
		qpd_say(s, 1000, "LOCAL %s", *res.t[0].user ? res.t[0].user : addr);
	else
		qpd_say(s, 1002, "REMOTE %s", res.t[0].address);
	route_result_free(&res);
}

static void qp_address_resolve(struct qpd_sess *s)
{
	char *local = NULL, *domain = NULL;
	qp_tables_refresh();
	int w = route_normalize(qpd_cfg, s->cmd.argv[0], &local, &domain);
	if (w == ROUTE_BAD || !local || !domain) {
		qpd_say(s, 3010, "Bad arguments");
	} else {
		size_t n = strlen(local) + strlen(domain) + 2;
		char *addr = xmalloc(n);
		snprintf(addr, n, "%s@%s", local, domain);
		int rh = w == ROUTE_REMOTE ? table_list_lookup(&qpd_cfg->rcpthosts, domain) : 0;
		if (w == ROUTE_WTEMP || rh == TABLE_TEMP)
			qpd_say(s, 4000, "Internal error / loop");
		else if (w == ROUTE_LOCAL)
			qp_resolve_local(s, addr);
		else if (rh == TABLE_FOUND)
			qpd_say(s, 1001, "RELAY %s", addr);
		else
			qpd_say(s, 1002, "REMOTE %s", addr);
		free(addr);
	}
	free(local);
	free(domain);
}

static void qp_domain_location(struct qpd_sess *s)
{
	const char *arg = s->cmd.argv[0], *at = strrchr(arg, '@');
	char dom[256];
	snprintf(dom, sizeof dom, "%s", at ? at + 1 : arg);
	str_lower(dom);
	size_t n = strlen(dom);
	if (n > 0 && dom[n - 1] == '.')
		dom[--n] = '\0';
	if (n == 0) {
		qpd_say(s, 3010, "Bad arguments");
		return;
	}
	int st = table_list_lookup(&qpd_cfg->locals, dom);
	if (st == TABLE_TEMP)
		qpd_say(s, 4000, "Internal error");
	else
		qpd_say(s, st == TABLE_FOUND ? 1000 : 1002, "%s %s",
		       st == TABLE_FOUND ? "LOCAL" : "REMOTE", dom);
}

/* ---- creating an entry ---------------------------------------------------------------- */

void qpd_new_free(struct qpd_new *nw, int abort)
{
	if (!nw)
		return;
	if (nw->fd >= 0)
		close(nw->fd);
	if (nw->srcfd >= 0)
		close(nw->srcfd);
	if (abort && !nw->committing && nw->msgid)
		qpd_abort_id(nw->msgid);
	for (size_t i = 0; i < nw->nrcpt; i++)
		free(nw->rcpt[i]);
	free(nw->rcpt);
	free(nw->sender);
	buf_free(&nw->pend);
	free(nw);
}

int qpd_new_flush(struct qpd_new *nw)
{
	if (nw->pend.len && !nw->werr && !nw->toobig && fs_write_all(nw->fd, nw->pend.p, nw->pend.len) < 0)
		nw->werr = errno ? errno : EIO;
	buf_reset(&nw->pend);
	return nw->werr || nw->toobig ? -1 : 0;
}

int qpd_new_write(struct qpd_sess *s, const char *p, size_t n)
{
	struct qpd_new *nw = s->nw;
	if (!nw || nw->werr || nw->toobig || nw->fd < 0)
		return -1;
	if (!nw->started) {
		size_t before = nw->pend.len;
		qp_received(&nw->pend, s->ip, qpd_cfg->me, nw->msgid, time(NULL));
		nw->bytes += nw->pend.len - before;
		nw->started = 1;
	}
	if ((qpd_cfg->databytes && nw->bytes + n > qpd_cfg->databytes) ||
	    (n && memchr(p, '\0', n))) {  /* no NUL enters the queue (doc/QP.md) */
		nw->nul = n && memchr(p, '\0', n);
		nw->toobig = 1;
		buf_reset(&nw->pend);
		return -1;
	}
	buf_add(&nw->pend, p, n);
	nw->bytes += n;
	return nw->pend.len >= QP_SINK ? qpd_new_flush(nw) : 0;
}

static void qp_opened(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	uint64_t status = 1, msgid = 0;
	if (type == M_MSG_OPENED) {
		status = msg_get_u64(r);
		msgid = msg_get_u64(r);
		if (msg_done(r) < 0)
			status = 1;
	}
	if (status == 0 && fd >= 0) {
		struct qpd_new *nw = xcalloc(1, sizeof *nw);
		nw->msgid = msgid;
		nw->fd = fd;
		nw->stage = s->cmd.hasnum[0] ? (unsigned)s->cmd.num[0] : 0;
		nw->srcfd = -1;
		buf_init(&nw->pend);
		s->nw = nw;
		qpd_say(s, 1000, "Entry made");
		return;
	}
	if (fd >= 0)
		close(fd);
	if (status == 0 && msgid)
		qpd_abort_id(msgid);                 /* opened without a file: give it back */
	if (status == 452)
		qpd_say(s, 5221, "Disk space low");
	else
		qpd_say(s, 5004, "Internal error, try again later");
}

static void qp_qcrea(struct qpd_sess *s)
{
	struct msg m;
	if (s->nw) {
		qpd_say(s, 4226, "Queue entry still open");
		return;
	}
	msg_init(&m, M_MSG_OPEN, 0);
	qpd_ask(s, R_QUEUE, &m, qp_opened);
}

static int qp_need_entry(struct qpd_sess *s)
{
	if (s->nw)
		return 1;
	qpd_say(s, 4260, "No queue entry open");
	return 0;
}

static int qp_add_rcpt(struct qpd_sess *s, const char *arg)
{
	char addr[ADDR_PATH_MAX];
	struct qpd_new *nw = s->nw;
	if (qp_addr(arg, 0, addr, sizeof addr) < 0 || nw->nrcpt >= QP_MAXRCPT)
		return -1;
	if (nw->nrcpt == nw->cap) {
		nw->cap = nw->cap ? 2 * nw->cap : 4;
		nw->rcpt = xrealloc(nw->rcpt, nw->cap * sizeof *nw->rcpt);
	}
	nw->rcpt[nw->nrcpt++] = xstrdup(addr);
	return 0;
}

static int qp_set_sender(struct qpd_sess *s, const char *arg)
{
	char addr[ADDR_PATH_MAX];
	if (qp_addr(arg, 1, addr, sizeof addr) < 0)
		return -1;
	free(s->nw->sender);
	s->nw->sender = xstrdup(addr);
	return 0;
}

static void qp_stor_done(struct qpd_sess *s, int rc)
{
	if (rc < 0)
		qpd_say(s, 3010, "Bad arguments");
	else
		qpd_say(s, 1000, "OK");
}

static void qp_stor_from(struct qpd_sess *s)
{
	if (qp_need_entry(s))
		qp_stor_done(s, qp_set_sender(s, s->cmd.argv[0]));
}

/* QSTOR TO / LOCAL / CAL: a recipient (tern has no calendars: CAL delivers as mail) */
static void qp_stor_to(struct qpd_sess *s)
{
	if (qp_need_entry(s))
		qp_stor_done(s, qp_add_rcpt(s, s->cmd.argv[0]));
}

static void qp_stor_address(struct qpd_sess *s)
{
	if (!qp_need_entry(s))
		return;
	snprintf(s->nw->address, sizeof s->nw->address, "%s", s->cmd.argv[0]);
	for (char *p = s->nw->address; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127)
			*p = '_';
	qpd_say(s, 1000, "OK");
}

static void qp_stor_flags(struct qpd_sess *s)
{
	if (qp_need_entry(s))
		qpd_say(s, 1000, "OK");               /* Bongo's routing flags mean nothing here */
}

/* QSTOR RAW <control line>: the same as the QSTOR command its first letter names */
static void qp_stor_raw(struct qpd_sess *s)
{
	char kind, a[ADDR_PATH_MAX + 8], b[64];
	int rc = 0;
	if (!qp_need_entry(s))
		return;
	if (qp_ctrl_split(s->cmd.argv[0], &kind, a, sizeof a, b, sizeof b) < 0)
		rc = -1;
	else if (kind == 'F')
		rc = qp_set_sender(s, a);
	else if (kind == 'R' || kind == 'L' || kind == 'C')
		rc = qp_add_rcpt(s, a);
	else if (kind == 'A')
		snprintf(s->nw->address, sizeof s->nw->address, "%.63s", a);
	qp_stor_done(s, rc);
}

/* QSTOR MESSAGE [<bytes>]: the data follows at once, with no reply in between. Without an
 * open entry it is read all the same (never taken for commands) and then refused. */
static void qp_stor_message(struct qpd_sess *s)
{
	if (s->cmd.hasnum[0]) {
		s->mode = QM_MSGN;
		s->msgleft = s->cmd.num[0];
	} else {
		s->mode = QM_MSGDOT;
		memset(&s->dot, 0, sizeof s->dot);
	}
	memset(&s->crlf, 0, sizeof s->crlf);
}

void qpd_msg_end(struct qpd_sess *s)
{
	struct qpd_new *nw = s->nw;
	s->mode = QM_CMD;
	if (!nw) {
		qpd_say(s, 4260, "No queue entry open");
		return;
	}
	if (nw->werr == 0 && !nw->toobig && !nw->started)
		qpd_new_write(s, "", 0);
	qpd_new_flush(nw);
	if (!nw->werr && !nw->toobig) {
		qpd_say(s, 1000, "OK");
		return;
	}
	if (nw->nul)
		qpd_say(s, 3010, "Message contains NUL characters; entry discarded");
	else if (nw->toobig)
		qpd_say(s, 5220, "Message exceeds the size limit; entry discarded");
	else if (nw->werr == ENOSPC || nw->werr == EDQUOT)
		qpd_say(s, 5221, "Disk space low; entry discarded");
	else
		qpd_say(s, 5004, "Internal error writing the entry; entry discarded");
	qpd_new_free(nw, 1);
	s->nw = NULL;
}

/* ---- QRCP: commit the open entry and go on with a copy of it (same envelope and data) --- */

static void qp_rcp_fail(struct qpd_sess *s, const char *why)
{
	char name[24];
	qp_entry_format(name, s->nw->stage, s->nw->msgid);
	qpd_say(s, 5004, "%s OK, but no copy: %s", name, why);
	qpd_new_free(s->nw, 0);
	s->nw = NULL;
}

static int qp_rcp_copydata(int from, int to, uint64_t *bytes)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(from, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)n;
		if (fs_write_all(to, buf, (size_t)n) < 0)
			return -1;
		*bytes += (uint64_t)n;
	}
}

static void qp_rcp_opened(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	struct qpd_new *old = s->nw;
	uint64_t status = 1, msgid = 0, bytes = 0;
	char name[24];
	if (type == M_MSG_OPENED) {
		status = msg_get_u64(r);
		msgid = msg_get_u64(r);
		if (msg_done(r) < 0)
			status = 1;
	}
	if (status != 0 || fd < 0 || qp_rcp_copydata(old->srcfd, fd, &bytes) < 0) {
		if (fd >= 0)
			close(fd);
		if (status == 0 && msgid)
			qpd_abort_id(msgid);
		qp_rcp_fail(s, status == 452 ? "disk space low" : "cannot copy the entry");
		return;
	}
	qp_entry_format(name, old->stage, old->msgid);
	close(old->srcfd);
	old->srcfd = -1;
	buf_free(&old->pend);
	struct qpd_new *nw = xcalloc(1, sizeof *nw);
	*nw = *old;                               /* sender, recipients, stage, address */
	old->sender = NULL;
	old->rcpt = NULL;
	old->nrcpt = 0;
	nw->msgid = msgid;
	nw->fd = fd;
	nw->bytes = bytes;
	nw->started = 1;                          /* the copy keeps the original's Received: */
	nw->committing = 0;
	buf_init(&nw->pend);
	qpd_new_free(old, 0);
	s->nw = nw;
	qpd_say(s, 1000, "%s OK", name);
}

static void qp_rcp_read(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	uint64_t status = QS_ERROR;
	if (type == M_Q_READ_RESULT) {
		status = msg_get_u64(r);
		(void)msg_get_str(r);
		(void)msg_get_u64(r);
		(void)msg_get_u64(r);
		if (msg_done(r) < 0)
			status = QS_ERROR;
	}
	if (status != QS_OK || fd < 0) {
		if (fd >= 0)
			close(fd);
		qp_rcp_fail(s, "cannot read the entry");
		return;
	}
	s->nw->srcfd = fd;
	struct msg m;
	msg_init(&m, M_MSG_OPEN, 0);
	qpd_ask(s, R_QUEUE, &m, qp_rcp_opened);
}

static void qp_rcp_copy(struct qpd_sess *s)
{
	struct msg m;
	msg_init(&m, M_Q_READ, 0);
	msg_u64(&m, s->nw->msgid);
	qpd_ask(s, R_QUEUE, &m, qp_rcp_read);
}

static void qp_committed(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	struct qpd_new *nw = s->nw;
	uint64_t status = 0, id = nw->msgid;
	const char *text = "";
	char name[24];
	if (fd >= 0)
		close(fd);
	if (type == M_MSG_COMMITTED) {
		status = msg_get_u64(r);
		text = msg_get_str(r);
		if (msg_done(r) < 0)
			status = 0;
	}
	size_t n = strspn(text, "0123456789abcdefABCDEF");
	if (status == 250 && n > 0 && n <= 16 && !text[n])
		id = strtoull(text, NULL, 16);
	qp_entry_format(name, nw->stage, id);
	if (status == 250) {
		log_info("event=qp_queued id=%016" PRIx64 " sid=%u ip=%s from=<%s> nrcpt=%zu size=%" PRIu64
		         " stage=%u", id, s->id, s->ip, nw->sender, nw->nrcpt, nw->bytes, nw->stage);
		if (s->cmd.verb == QP_QRCP) {
			nw->msgid = id;
			qp_rcp_copy(s);
			return;
		}
		qpd_say(s, 1000, "%s OK", name);
	} else if (status == 452)
		qpd_say(s, 5221, "Disk space low");
	else
		qpd_say(s, 5004, "Internal error, entry not queued");
	qpd_new_free(nw, 0);
	s->nw = NULL;
}

static void qp_commit(struct qpd_sess *s)
{
	struct qpd_new *nw = s->nw;
	struct msg m;
	char origin[200];
	if (!nw->started)
		qpd_new_write(s, "", 0);
	if (qpd_new_flush(nw) < 0 || fsync(nw->fd) < 0) {
		if (!nw->werr)
			nw->werr = errno;
		qpd_say(s, nw->werr == ENOSPC || nw->werr == EDQUOT ? 5221 : 5004,
		       "Cannot write the entry; entry discarded");
		qpd_new_free(nw, 1);
		s->nw = NULL;
		return;
	}
	close(nw->fd);
	nw->fd = -1;
	nw->committing = 1;
	snprintf(origin, sizeof origin, "qp ip=%s%s%s", s->ip, *nw->address ? " address=" : "",
	         nw->address);
	msg_init(&m, M_MSG_COMMIT, 0);
	msg_u64(&m, nw->msgid);
	msg_str(&m, nw->sender);
	msg_u64(&m, nw->nrcpt);
	for (size_t i = 0; i < nw->nrcpt; i++)
		msg_str(&m, nw->rcpt[i]);
	msg_str(&m, origin);
	msg_u64(&m, nw->bytes);
	msg_u64(&m, nw->stage);
	qpd_ask(s, R_QUEUE, &m, qp_committed);
}

static void qp_run_result(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	uint64_t st, count, newid;
	char name[24];
	if (qpd_op_result(type, r, &st, &count, &newid) < 0)
		qpd_say(s, 5004, "Internal error, try again later");
	else if (st == QS_NOENT)
		qpd_say(s, 4224, "Cannot read queue entry");
	else if (st != QS_OK)
		qpd_say(s, 5004, "Internal error, try again later");
	else {
		qp_entry_format(name, s->cmd.ent.stage, s->cmd.ent.id);
		qpd_say(s, 1000, "%s OK", name);
	}
}

/* QRUN: commit the open entry; QRUN <entry>: try it now */
static void qp_qrun(struct qpd_sess *s)
{
	if (s->cmd.argc == 1) {
		qpd_op(s, QOP_SCHEDULE, s->cmd.ent.id, "", "", qp_run_result);
		return;
	}
	if (!qp_need_entry(s))
		return;
	if (!s->nw->sender)
		qpd_say(s, 3010, "No sender (QSTOR FROM)");
	else if (s->nw->nrcpt == 0)
		qpd_say(s, 3010, "No recipient (QSTOR TO)");
	else
		qp_commit(s);
}

/* QRCP: QRUN, then a new open entry with the same envelope and data */
static void qp_qrcp(struct qpd_sess *s)
{
	if (!s->nw)
		qpd_say(s, 4000, "No queue entry open");
	else if (!s->nw->sender || s->nw->nrcpt == 0)
		qpd_say(s, 3010, "No sender or no recipient");
	else
		qp_commit(s);
}

static void qp_qabrt(struct qpd_sess *s)
{
	qpd_new_free(s->nw, 1);
	s->nw = NULL;
	qpd_say(s, 1000, "OK");
}

/* ---- moving entries ---------------------------------------------------------------------- */

static void qp_dele_result(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	uint64_t st, count, newid;
	if (qpd_op_result(type, r, &st, &count, &newid) < 0 || (st != QS_OK && st != QS_NOENT))
		qpd_say(s, 5004, "Internal error, try again later");
	else if (st == QS_NOENT)
		qpd_say(s, 4224, "No such queue entry");
	else if (count == 0)
		qpd_say(s, 4000, "Queue entry is being processed, try again later");
	else {
		if (qpd_agent_current(s, s->cmd.ent.id))
			qpd_agent_entry_gone(s);
		qpd_say(s, 1000, "Entry removed");
	}
}

static void qp_qdele(struct qpd_sess *s)
{
	qpd_op(s, QOP_REMOVE, s->cmd.ent.id, "", "", qp_dele_result);
}

static void qp_ok_result(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd)
{
	uint64_t st, count, newid;
	char name[24];
	if (qpd_op_result(type, r, &st, &count, &newid) < 0)
		qpd_say(s, 5004, "Internal error, try again later");
	else if (st == QS_NOENT)
		qpd_say(s, 4224, "No such queue entry");
	else if (st == QS_NOSPACE)
		qpd_say(s, 5221, "Disk space low");
	else if (st == QS_BADARG)
		qpd_say(s, 3010, "Bad arguments");
	else if (st != QS_OK)
		qpd_say(s, 5004, "Internal error, try again later");
	else if (newid) {
		qp_entry_format(name, s->cmd.hasnum[1] ? (unsigned)s->cmd.num[1] : 0, newid);
		qpd_say(s, 1000, "OK %s", name);
	} else
		qpd_say(s, 1000, "OK");
}

static void qp_qmove(struct qpd_sess *s)
{
	qpd_op(s, QOP_MOVE, s->cmd.ent.id, s->cmd.argv[1], "", qp_ok_result);
}

static void qp_qcopy(struct qpd_sess *s)
{
	if (s->nw) {
		qpd_say(s, 4226, "Queue entry still open");
		return;
	}
	qpd_op(s, QOP_COPY, s->cmd.ent.id, s->cmd.argc > 1 ? s->cmd.argv[1] : "", "", qp_ok_result);
}

static void qp_qflush(struct qpd_sess *s)
{
	qpd_op(s, QOP_FLUSH, 0, "", "", qp_ok_result);
}

/* QDSPC: free space of the spool's file system above the floor below which the queue
 * refuses new mail (queuefreebytes; by default 2 x databytes, at least 20 MiB) */
static void qp_qdspc(struct qpd_sess *s)
{
	struct statvfs v;
	uint64_t floor = qpd_cfg->queuefreebytes;
	if (!floor)
		floor = qpd_cfg->databytes * 2 > 20u << 20 ? qpd_cfg->databytes * 2 : 20u << 20;
	if (statvfs(qpd_cfg->spool, &v) < 0) {
		qpd_say(s, 5004, "Internal error: %s", strerror(errno));
		return;
	}
	uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
	qpd_say(s, 1000, "%" PRIu64 " free", avail > floor ? avail - floor : 0);
}

typedef void (*qp_entry_fn)(struct qpd_sess *s);
static const qp_entry_fn qp_entry_cmds[QP_VERB_COUNT] = {
	[QP_ADDRESS_RESOLVE] = qp_address_resolve, [QP_DOMAIN_LOCATION] = qp_domain_location,
	[QP_QCREA] = qp_qcrea,             [QP_QSTOR_FROM] = qp_stor_from,
	[QP_QSTOR_TO] = qp_stor_to,        [QP_QSTOR_LOCAL] = qp_stor_to,
	[QP_QSTOR_CAL] = qp_stor_to,       [QP_QSTOR_ADDRESS] = qp_stor_address,
	[QP_QSTOR_FLAGS] = qp_stor_flags,  [QP_QSTOR_RAW] = qp_stor_raw,
	[QP_QSTOR_MESSAGE] = qp_stor_message,
	[QP_QRUN] = qp_qrun,               [QP_QABRT] = qp_qabrt,
	[QP_QRCP] = qp_qrcp,
	[QP_QDELE] = qp_qdele,             [QP_QMOVE] = qp_qmove,
	[QP_QCOPY] = qp_qcopy,             [QP_QDSPC] = qp_qdspc,
	[QP_QFLUSH] = qp_qflush,
};

void qpd_entry_cmd(struct qpd_sess *s)
{
	qp_entry_cmds[s->cmd.verb](s);
}

/* PASS USER: the user's password hash from the users file (5th field); 1 = the password
 * matches, 0 = no such user or no match, -1 = the table could not answer */
int qpd_user_check(const char *user, const char *password)
{
	struct users_result ur;
	struct cfg_errors errs = { .n = 0 };
	memset(&ur, 0, sizeof ur);
	if (qp_users)
		users_refresh(qp_users, &errs);         /* a changed users file, at most once a second */
	int st = qp_users ? users_lookup(qp_users, user, &ur) : TABLE_TEMP;
	if (st == TABLE_TEMP)
		return -1;
	if (st != TABLE_FOUND || !*ur.pwhash || *ur.ext)
		return 0;
	return digest_verify(ur.pwhash, password) == 1;
}

void qpd_entry_init(void)
{
	struct cfg_errors errs;
	errs.n = 0;
	qp_users = users_open(qpd_cfg->users, &errs);
	users_set_minuid(qp_users, qpd_cfg->minuid);
	qp_aliases = aliases_open(qpd_cfg->aliases, route_aliases_owner(qpd_cfg), &errs);
	for (int i = 0; i < errs.n; i++)
		log_warn("event=qp_table_error file=%s line=%d error=\"%s\"", errs.e[i].file,
		         errs.e[i].line, errs.e[i].msg);
	if (!qp_users || !qp_aliases)
		log_err("event=qp_tables_unusable users=%s aliases=%s: ADDRESS RESOLVE tempfails",
		        qpd_cfg->users, qpd_cfg->aliases);
	route_init(&qp_rc, qpd_cfg, qp_users, qp_aliases);
	qp_checked = time(NULL);
}
