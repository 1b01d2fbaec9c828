/* qp — the Bongo queue protocol's sessions in the control role (see qp.h, doc/QP.md):
 *
 *   socket ──► line splitter ──► qp_cmd_parse ──► login gate ──► handler table ──► reply
 *          └─► (QSTOR MESSAGE) CRLF/dot decoder ──► the new entry's data file
 *
 * A handler that needs another role asks it (control_ask) and the session reads nothing more
 * until the answer: commands are answered in order. Entries are created exactly as the smtp
 * role does (M_MSG_OPEN -> data fd -> M_MSG_COMMIT), so `1000 <qqq>-<id> OK` has the same
 * durability as SMTP's 250. Failed logins from one address are answered after a growing
 * delay (a timer; the loop never sleeps).
 * Login: the greeting's challenge, AUTH [SYSTEM] <md5 hex>, PASS SYS, PASS USER (refused: no
 * password store yet); clients matching `qp_trusted` are logged in by their address. The
 * secret is `qp_secret`.
 * Owns: the sessions, the failed-login table.
 * Trusts: the other roles' answers (through control.c); nothing a client sends. */
#include "ternd/control/qpd.h"
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "lib/io.h"
#include "lib/log.h"
#include "mail/digest.h"
#include "mail/table.h"
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QP_OUT_HIGH   (256 * 1024)   /* stop reading commands while this much output waits */
#define QP_FAILSLOTS  128            /* client addresses remembered for failed logins */
#define QP_FAIL_FORGET 600000        /* ms without a failure: the address starts afresh */
#define QP_PREAUTH_MS 30000           /* idle timeout before a login (at most timeoutqp) */

const struct config *qpd_cfg;
long qpd_timeout_ms = 600000;
static uint32_t qp_lastid;
static const char *qp_secret = "";

static struct qp_fail { char ip[INET6_ADDRSTRLEN]; unsigned n; long long last; } qp_fails[QP_FAILSLOTS];

typedef void (*qp_cmd_fn)(struct qpd_sess *s);
static struct buf qp_scratch;        /* replies formatted by qp_reply, on their way out */

static void qp_put(struct qpd_sess *s)
{
	qpd_write(s, qp_scratch.p, qp_scratch.len);
	buf_reset(&qp_scratch);
}

/* ---- replies and asks ----------------------------------------------------------------- */

void qpd_say(struct qpd_sess *s, int code, const char *fmt, ...)
{
	char text[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	qp_reply(&qp_scratch, code, "%s", text);
	qp_put(s);
	if (code >= 3000)
		log_info("event=qp_reject sid=%u ip=%s cmd=\"%s\" code=%d text=\"%s\"", s->id, s->ip,
		         qp_cmd_name(s->cmd.verb), code, text);
}

/* the answer to a session that is gone: give back what it holds */
static void qp_dead_answer(uint32_t type, struct msg_reader *r, int fd)
{
	if (fd >= 0)
		close(fd);
	if (type != M_MSG_OPENED || !r)
		return;
	uint64_t status = msg_get_u64(r), msgid = msg_get_u64(r);
	if (msg_done(r) == 0 && status == 0 && msgid)
		qpd_abort_id(msgid);
}

static void qp_ipc_cb(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct qpd_sess *s = arg;
	qpd_cont_fn fn = s->cont;
	s->cont = NULL;
	s->pending = 0;
	if (s->wait == QW_IPC)
		s->wait = QW_NONE;
	if (s->dead || !fn)
		qp_dead_answer(r ? type : 0, r, fd);
	else
		fn(s, r ? type : 0, r, fd);
	qpd_sess_finish(s);
}

void qpd_ask(struct qpd_sess *s, enum role peer, struct msg *m, qpd_cont_fn cont)
{
	s->cont = cont;
	s->pending = 1;
	s->wait = QW_IPC;
	control_ask(peer, m, qp_ipc_cb, s);
}

void qpd_op(struct qpd_sess *s, uint64_t op, uint64_t msgid, const char *a1, const char *a2,
           qpd_cont_fn cont)
{
	struct msg m;
	msg_init(&m, M_Q_OP, 0);
	msg_u64(&m, op);
	msg_u64(&m, msgid);
	msg_str(&m, a1);
	msg_str(&m, a2);
	qpd_ask(s, R_QUEUE, &m, cont);
}

int qpd_op_result(uint32_t type, struct msg_reader *r, uint64_t *status, uint64_t *count,
                 uint64_t *newid)
{
	if (type != M_Q_OP_RESULT || !r)
		return -1;
	*status = msg_get_u64(r);
	*count = msg_get_u64(r);
	(void)msg_get_str(r);
	*newid = msg_get_u64(r);
	return msg_done(r);
}

/* ---- login ------------------------------------------------------------------------------ */

/* equal strings, in a time that does not depend on where they differ */
static int qp_same(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

static struct qp_fail *qp_fail_slot(const char *ip, int create)
{
	struct qp_fail *victim = NULL;
	long long now = ev_now_ms();
	for (size_t i = 0; i < QP_FAILSLOTS; i++) {
		struct qp_fail *f = &qp_fails[i];
		if (f->n && now - f->last > QP_FAIL_FORGET)
			f->n = 0;
		if (f->n && strcmp(f->ip, ip) == 0)
			return f;
		if (!victim || (victim->n && (!f->n || f->last < victim->last)))
			victim = f;                  /* a free slot, else the oldest */
	}
	if (!create)
		return NULL;
	snprintf(victim->ip, sizeof victim->ip, "%s", ip);
	victim->n = 0;
	return victim;
}

/* the delay before a 3242: none for the first failure, then 0.5 s doubling up to 8 s */
static long qp_fail_delay(unsigned n)
{
	if (n < 2)
		return 0;
	return n - 2 >= 4 ? 8000 : 500L << (n - 2);
}

static void qp_delay_cb(int fd, short what, void *arg)
{
	struct qpd_sess *s = arg;
	s->wait = QW_NONE;
	qpd_say(s, 3242, "Bad authentication");
	qpd_sess_finish(s);
}

static void qp_login_fail(struct qpd_sess *s, const char *how, const char *why)
{
	struct qp_fail *f = qp_fail_slot(s->ip, 1);
	f->n++;
	f->last = ev_now_ms();
	long delay = qp_fail_delay(f->n);
	log_info("event=qp_login_failed sid=%u ip=%s how=%s why=%s failures=%u delay_ms=%ld", s->id,
	         s->ip, how, why, f->n, delay);
	if (delay == 0) {
		qpd_say(s, 3242, "Bad authentication");
		return;
	}
	if (!s->tev)
		s->tev = ev_new(-1, 0, qp_delay_cb, s);
	s->wait = QW_DELAY;
	ev_add(s->tev, delay);
}

static void qp_login_ok(struct qpd_sess *s, const char *how)
{
	struct qp_fail *f = qp_fail_slot(s->ip, 0);
	if (f)
		f->n = 0;
	s->auth = QA_SYS;
	log_info("event=qp_login sid=%u ip=%s how=%s", s->id, s->ip, how);
	qpd_say(s, 1000, "OK");
}

static void qpd_auth(struct qpd_sess *s)
{
	char want[33], got[40];
	snprintf(got, sizeof got, "%s", s->cmd.argv[0]);
	str_lower(got);
	if (*qp_secret && *s->challenge && digest_apop(qp_secret, s->challenge, want) == 0 &&
	    qp_same(got, want))
		qp_login_ok(s, "auth");
	else
		qp_login_fail(s, "auth", *qp_secret ? "bad_digest" : "no_secret");
}

static void qp_pass_sys(struct qpd_sess *s)
{
	if (*qp_secret && qp_same(s->cmd.argv[0], qp_secret))
		qp_login_ok(s, "pass_sys");
	else
		qp_login_fail(s, "pass_sys", *qp_secret ? "bad_password" : "no_secret");
}

/* PASS USER <user> <password>: checked against the password hash in the users file (its
 * optional 5th field); success binds the user's identity, not manager rights */
static void qp_pass_user(struct qpd_sess *s)
{
	int ok = qpd_user_check(s->cmd.argv[0], s->cmd.argv[1]);
	if (ok == 1) {
		s->auth = QA_USER;
		log_info("event=qp_login sid=%u ip=%s how=pass_user user=%s", s->id, s->ip,
		         s->cmd.argv[0]);
		qpd_say(s, 1000, "OK");
		return;
	}
	qp_login_fail(s, "pass_user", ok < 0 ? "users_tempfail" : "bad_user_or_password");
}

/* ---- session commands ------------------------------------------------------------------- */

static void qp_help(struct qpd_sess *s)
{
	struct buf b;
	buf_init(&b);
	qp_cmd_help(&b);
	qp_reply_more(&qp_scratch, 2001, "Commands: %s", b.p);
	qp_put(s);
	qpd_say(s, 1000, "OK");
	buf_free(&b);
}

static void qp_noop(struct qpd_sess *s) { qpd_say(s, 1000, "OK"); }

static void qp_quit(struct qpd_sess *s)
{
	qpd_say(s, 1000, "OK Signing Off");
	s->quit = 1;
	s->cleanquit = 1;
	s->endwhy = "quit";
}

static void qp_unsupported(struct qpd_sess *s)
{
	qpd_say(s, 4244, "Not supported");
}

static const qp_cmd_fn qp_cmds[QP_VERB_COUNT] = {
	[QP_AUTH] = qpd_auth,               [QP_AUTH_SYSTEM] = qpd_auth,
	[QP_PASS_SYS] = qp_pass_sys,       [QP_PASS_USER] = qp_pass_user,
	[QP_HELP] = qp_help,               [QP_NOOP] = qp_noop,
	[QP_QUIT] = qp_quit,               [QP_ADDRESS_RESOLVE] = qpd_entry_cmd,
	[QP_DOMAIN_LOCATION] = qpd_entry_cmd,
	[QP_QCREA] = qpd_entry_cmd,         [QP_QSTOR_FROM] = qpd_entry_cmd,
	[QP_QSTOR_TO] = qpd_entry_cmd,      [QP_QSTOR_LOCAL] = qpd_entry_cmd,
	[QP_QSTOR_CAL] = qpd_entry_cmd,     [QP_QSTOR_ADDRESS] = qpd_entry_cmd,
	[QP_QSTOR_FLAGS] = qpd_entry_cmd,   [QP_QSTOR_RAW] = qpd_entry_cmd,
	[QP_QSTOR_MESSAGE] = qpd_entry_cmd,
	[QP_QRUN] = qpd_entry_cmd,          [QP_QABRT] = qpd_entry_cmd,
	[QP_QRCP] = qpd_entry_cmd,           [QP_QADDQ] = qpd_read_cmd,
	[QP_QINFO] = qpd_read_cmd,          [QP_QHEAD] = qpd_read_cmd,
	[QP_QBODY] = qpd_read_cmd,          [QP_QBRAW] = qpd_read_cmd,
	[QP_QRETR] = qpd_read_cmd,          [QP_QGREP] = qpd_read_cmd,
	[QP_QMIME] = qp_unsupported,       [QP_QSRCH_HEADER] = qpd_read_cmd,
	[QP_QSRCH_BODY] = qpd_read_cmd,     [QP_QSRCH_BRAW] = qpd_read_cmd,
	[QP_QSRCH_DOMAIN] = qpd_srch_domain,
	[QP_QDELE] = qpd_entry_cmd,         [QP_QMOVE] = qpd_entry_cmd,
	[QP_QCOPY] = qpd_entry_cmd,         [QP_QDSPC] = qpd_entry_cmd,
	[QP_QFLUSH] = qpd_entry_cmd,        [QP_QWAIT] = qpd_agent_cmd,
	[QP_QADDM] = qpd_agent_cmd,         [QP_QMOD_FROM] = qpd_agent_cmd,
	[QP_QMOD_TO] = qpd_agent_cmd,       [QP_QMOD_LOCAL] = qpd_agent_cmd,
	[QP_QMOD_MAILBOX] = qpd_agent_cmd,  [QP_QMOD_FLAGS] = qpd_agent_cmd,
	[QP_QMOD_RAW] = qpd_agent_cmd,      [QP_QRTS] = qpd_agent_cmd,
	[QP_QDONE] = qpd_agent_cmd,
};

static void qp_command(struct qpd_sess *s, const char *p, size_t len)
{
	struct qp_cmd *c = &s->cmd;
	free(s->line);
	s->line = xstrndup(p, len);
	int r = qp_cmd_parse(s->line, len, c);
	log_debug("event=qp_cmd sid=%u cmd=\"%s\"", s->id, qp_cmd_name(c->verb));
	if (!(c->flags & QPF_PRELOGIN) && s->auth != QA_SYS &&
	    !((c->flags & QPF_USER) && s->auth == QA_USER))
		qpd_say(s, 3240, "AUTH first");
	else if (r < 0)
		qpd_say(s, c->code, "%s", c->text);
	else if ((c->flags & QPF_CALLBACK) && !s->job)
		qpd_say(s, 3012, "Bad queue state: no entry is being processed");
	else if (qp_cmds[c->verb])
		qp_cmds[c->verb](s);
	else
		qpd_say(s, 3000, "Unknown command");
}

/* ---- input -------------------------------------------------------------------------------- */

static size_t qp_line_input(struct qpd_sess *s, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	size_t len = nl ? (size_t)(nl - p) : n;
	if (len > 0 && nl && p[len - 1] == '\r')
		len--;
	if (len > QP_LINE_MAX) {
		s->cmd.verb = QP_NONE;
		qpd_say(s, 5003, "Line too long, closing connection");
		s->quit = 1;
		s->endwhy = "line_too_long";
		return n;
	}
	if (!nl)
		return 0;
	qp_command(s, p, len);
	return (size_t)(nl - p) + 1;
}

/* QSTOR MESSAGE data; returns octets consumed */
static size_t qp_msg_input(struct qpd_sess *s, const char *p, size_t n)
{
	char out[16385];
	size_t used, o;
	if (n > sizeof out - 1)
		n = sizeof out - 1;
	if (s->mode == QM_MSGN) {
		used = n < s->msgleft ? n : (size_t)s->msgleft;
		o = qp_crlf_feed(&s->crlf, p, used, out);
		s->msgleft -= used;
		if (s->msgleft == 0)
			o += qp_crlf_end(&s->crlf, out + o);
	} else
		used = qp_dot_feed(&s->dot, p, n, out, &o);
	if (o)
		qpd_new_write(s, out, o);
	if ((s->mode == QM_MSGN && s->msgleft == 0) || (s->mode == QM_MSGDOT && s->dot.done))
		qpd_msg_end(s);
	return used;
}

static int qp_can_work(const struct qpd_sess *s)
{
	return !s->dead && !s->quit && s->wait == QW_NONE && qpd_queued(s) < QP_OUT_HIGH;
}

/* complete commands and message data from io's input, while the session may work */
static void qp_run(struct qpd_sess *s)
{
	while (qp_can_work(s)) {
		if (s->mode == QM_MSGN && s->msgleft == 0) {
			qpd_msg_end(s);                   /* QSTOR MESSAGE 0 */
			continue;
		}
		size_t n;
		const char *p = io_data(s->io, &n);
		if (n == 0)
			break;
		size_t k = s->mode == QM_CMD ? qp_line_input(s, p, n) : qp_msg_input(s, p, n);
		if (k == 0)
			break;
		io_drop(s->io, k);
	}
}

/* ---- output and life cycle ------------------------------------------------------------------ */

void qpd_write(struct qpd_sess *s, const void *p, size_t n)
{
	if (s->io)
		io_write(s->io, p, n);
}

size_t qpd_queued(const struct qpd_sess *s) { return s->io ? io_queued(s->io) : 0; }

void qpd_sess_close(struct qpd_sess *s, const char *why)
{
	if (s->dead)
		return;
	s->dead = 1;
	log_info("event=qp_disconnect sid=%u ip=%s reason=%s", s->id, s->ip, why);
}

static void qp_sess_free(struct qpd_sess *s)
{
	qpd_agent_sess_end(s);
	qpd_new_free(s->nw, 1);
	if (s->src.fd >= 0)
		close(s->src.fd);
	ev_free(s->tev);
	io_free(s->io);
	free(s->line);
	free(s);
}

/* stream and run commands until neither adds output or uses input (the output leaves at
 * the end of io's callback, or when the socket takes it) */
static void qp_pump(struct qpd_sess *s)
{
	for (int progress = 1; progress && !s->dead;) {
		size_t in = io_datalen(s->io), out = qpd_queued(s);
		progress = 0;
		if (s->wait == QW_STREAM)
			progress |= qpd_stream_pump(s);
		if ((io_datalen(s->io) || s->mode == QM_MSGN) && qp_can_work(s))
			qp_run(s);
		progress |= !s->dead && (io_datalen(s->io) != in || qpd_queued(s) != out);
	}
}

/* io's timeout and reading for what the session does now: while output waits (or a
 * connect), timeoutqp without a reply from the peer; otherwise the idle timeout of a
 * client (none for registered agents and the queue's own connections, 30 s before a
 * login). The timeout is only set when it changes: setting it restarts the clock. */
static void qp_arm(struct qpd_sess *s)
{
	long tmo = s->watching || s->job ? -1 : qpd_timeout_ms;
	if (s->auth == QA_NONE && tmo > QP_PREAUTH_MS)
		tmo = QP_PREAUTH_MS;
	if (s->wait == QW_CONNECT || s->wait == QW_STREAM || qpd_queued(s) > 0)
		tmo = qpd_timeout_ms;
	if (tmo != s->tmo) {
		s->tmo = tmo;
		io_set_timeout(s->io, tmo);
	}
	io_set_read(s->io, qp_can_work(s));
}

void qpd_sess_finish(struct qpd_sess *s)
{
	if (!s->dead)
		qp_pump(s);
	if (!s->dead && s->quit && qpd_queued(s) == 0 && s->wait != QW_STREAM && !s->pending)
		qpd_sess_close(s, s->endwhy ? s->endwhy : "quit");
	if (!s->dead) {
		qp_arm(s);
		return;
	}
	if (s->io) {                            /* the connection goes now; the session waits */
		io_free(s->io);                     /* for the answer in flight, if any */
		s->io = NULL;
	}
	if (s->pending) {
		if (s->tev)
			ev_del(s->tev);
		return;
	}
	qp_sess_free(s);
}

static void qp_timeout(struct qpd_sess *s)
{
	if (s->wait == QW_CONNECT)
		qpd_agent_connected(s, "connect_timeout");
	else if (qpd_queued(s))
		qpd_sess_close(s, "write_timeout");
	else {
		s->cmd.verb = QP_NONE;
		qpd_say(s, 5002, "Idle timeout, closing connection");
		(void)io_flush(s->io);             /* what the socket takes now; then it closes */
		qpd_sess_close(s, "timeout");
	}
}

static void qp_io(struct io *io, int evt, void *arg)
{
	struct qpd_sess *s = arg;
	switch (evt) {
	case IO_CONNECTED:
		qpd_agent_connected(s, NULL);
		break;
	case IO_TIMEOUT:
		qp_timeout(s);
		break;
	case IO_DISCONNECTED:
		qpd_sess_close(s, "eof");
		break;
	case IO_ERROR:
		log_debug("event=qp_io_error sid=%u error=\"%s\"", s->id, io_error(io));
		if (s->wait == QW_CONNECT)
			qpd_agent_connected(s, "connect_failed");
		else
			qpd_sess_close(s, strncmp(io_error(io), "read", 4) == 0 ? "read_error" : "write_error");
		break;
	default:                                /* IO_DATAIN, IO_LOWAT: the pump below */
		break;
	}
	qpd_sess_finish(s);
}

struct qpd_sess *qpd_sess_new(struct io *io, const char *ip, int agent)
{
	struct qpd_sess *s = xcalloc(1, sizeof *s);
	s->id = ++qp_lastid;
	s->io = io;
	s->tmo = -1;
	s->src.fd = -1;
	snprintf(s->ip, sizeof s->ip, "%s", ip);
	io_set_cb(io, qp_io, s);
	if (agent)
		s->auth = QA_SYS;                   /* the queue called the agent: no login */
	return s;
}

struct qpd_sess *qpd_sess_dial(const struct sockaddr *sa, socklen_t len, const char *ip)
{
	struct io *io = io_connect(sa, len, NULL, 0, qp_io, NULL);
	if (!io)
		return NULL;
	struct qpd_sess *s = qpd_sess_new(io, ip, 1);
	s->wait = QW_CONNECT;
	return s;
}

/* ---- the role's entry points ------------------------------------------------------------------ */

static void qp_peer_ip(const struct sockaddr *sa, char *out, size_t n)
{
	snprintf(out, n, "unknown");
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
	else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)n);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)n);
	}
}

static int qp_is_trusted(const char *ip)
{
	return table_ip_lookup(&qpd_cfg->qp_trusted, ip) == TABLE_FOUND;
}

static void qp_challenge(char out[40])
{
	unsigned char r[16];
	if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
		long long t = ev_now_ms() ^ ((long long)getpid() << 32) ^ qp_lastid;
		memcpy(r, &t, sizeof t);
		memcpy(r + 8, &qp_lastid, sizeof qp_lastid);
	}
	for (size_t i = 0; i < sizeof r; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

void qpd_accept(int fd, const struct sockaddr *peer, socklen_t len)
{
	char ip[INET6_ADDRSTRLEN];
	qp_peer_ip(peer, ip, sizeof ip);
	struct qpd_sess *s = qpd_sess_new(io_new(fd, qp_io, NULL), ip, 0);
	if (qp_is_trusted(ip)) {
		s->auth = QA_SYS;
		qp_reply(&qp_scratch, 1000, "%s bongoqueue server ready", qpd_cfg->me);
	} else {
		qp_challenge(s->challenge);
		qp_reply(&qp_scratch, 4242, "bongoqueue %s", s->challenge);
	}
	qp_put(s);
	log_info("event=qp_connect sid=%u ip=%s trusted=%d", s->id, ip, s->auth == QA_SYS);
	qpd_sess_finish(s);
}

void qpd_init(void)
{
	const char *v __attribute__((unused));
	qpd_cfg = control_cfg();
	qp_secret = qpd_cfg->qp_secret ? qpd_cfg->qp_secret : "";
	if (qpd_cfg->timeoutqp)
		qpd_timeout_ms = (long)qpd_cfg->timeoutqp * 1000;
#ifdef TERN_TEST
	if ((v = getenv("TERN_QP_TIMEOUT")) != NULL && atol(v) > 0)    /* tests: below 1 s */
		qpd_timeout_ms = atol(v) * 1000;
#endif
	qpd_entry_init();
	qpd_agent_init();
	log_info("event=qp_ready trusted=%zu secret=%s timeout=%lds",
	         qpd_cfg->qp_trusted.n + qpd_cfg->qp_trusted.ntables, *qp_secret ? "set" : "none",
	         qpd_timeout_ms / 1000);
}
