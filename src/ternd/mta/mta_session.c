/* mta_session — one outbound SMTP connection: non-blocking connect to each address in turn
 * (tcpto, timeoutconnect, outgoingip), then the engine of mail/smtp_client fed from the
 * socket, the message text read with pread in chunks as the socket drains (never the whole
 * message in memory), every wait for the server bounded by timeoutremote.
 * Owns: the socket, its events and timers, the engine. Trusts: mta.c for the job and the
 * address list; nothing the server sends (the engine checks every reply).
 *
 *   start ─► CONNECT (addr i) ─fail/timeout─► addr i+1 … none left: every recipient D_TEMP
 *               │ connected
 *               ▼
 *            SMTP ─ txn over ─► done(job) ─► IDLE ─ idle() ─► send(job) ─► SMTP …
 *               │ temp failure before MAIL on a fresh connection: next address
 *            IDLE ─ park ms ─► QUIT ─ 221 / QUIT_MS ─► closed()                        */
#include "ternd/mta/mta_session.h"
#include "ternd/mta/mta.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SESS_READ_CHUNK 4096
#define SESS_TEXT_CHUNK 32768
#define SESS_OUT_HIGH   65536     /* stop reading the message while this much waits */
#define SESS_QUIT_MS    10000     /* how long a polite QUIT waits for its reply */

enum { SS_CONNECT, SS_SMTP, SS_IDLE, SS_QUIT };
enum { T_NONE, T_PARK, T_QUIT };

struct mta_session {
	struct mta_session *next, *prev;     /* every live session */
	struct mta_session_conf conf;
	char *dest;
	struct mta_addr *addrs;
	size_t naddrs, cur;
	void *arg;
	int fd;
	struct ev *rev, *wev, *tev;
	struct smtpc *c;
	struct mta_job *job;
	uint64_t off;                        /* next byte of the message to read */
	size_t outoff;                       /* bytes of the engine's output already sent */
	unsigned nmsgs;
	int state, tmode, stopping;
	char remote[MTA_REMOTE_MAX];
	char lasterr[600];
};

static struct mta_session *sessions;

static void session_step(struct mta_session *s);
static void session_try(struct mta_session *s);

static long session_remote_ms(const struct mta_session *s)
{
	return (long)s->conf.cfg->timeoutremote * 1000;
}

/* ---- sockets ---------------------------------------------------------------------------- */

static int session_sockaddr(struct sockaddr_storage *ss, socklen_t *sl, const char *ip, int port)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*sl = sizeof *v4;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*sl = sizeof *v6;
		return 0;
	}
	return -1;
}

/* bind to outgoingip when it is set and of the same family as the destination */
static int session_bind(struct mta_session *s, int fd, int family)
{
	const char *ip = s->conf.cfg->outgoingip;
	struct sockaddr_storage ss;
	socklen_t sl;
	if (!ip || !*ip || session_sockaddr(&ss, &sl, ip, 0) < 0 || ss.ss_family != family)
		return 0;
	if (bind(fd, (struct sockaddr *)&ss, sl) == 0)
		return 0;
	snprintf(s->lasterr, sizeof s->lasterr, "cannot bind to outgoingip %s: %s", ip,
	         strerror(errno));
	return -1;
}

static int session_socket(struct mta_session *s, const struct mta_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (session_sockaddr(&ss, &sl, a->addr, a->port) < 0) {
		snprintf(s->lasterr, sizeof s->lasterr, "bad address %s", a->addr);
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(s->lasterr, sizeof s->lasterr, "socket: %s", strerror(errno));
		return -1;
	}
	if (session_bind(s, fd, ss.ss_family) < 0) {
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		snprintf(s->lasterr, sizeof s->lasterr, "connect to %s port %d: %s", s->remote,
		         a->port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void session_drop_conn(struct mta_session *s)
{
	ev_free(s->rev);
	ev_free(s->wev);
	s->rev = s->wev = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	smtpc_free(s->c);
	s->c = NULL;
	s->outoff = 0;
	s->off = 0;
}

/* ---- end of a session ------------------------------------------------------------------- */

static void session_close(struct mta_session *s, const char *reason)
{
	if (s->c)
		log_info("event=disconnect host=%s remote=%s msgs=%u reason=%s", s->dest, s->remote,
		         s->nmsgs, reason);
	session_drop_conn(s);
	ev_free(s->tev);
	if (s->prev)
		s->prev->next = s->next;
	else
		sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->conf.cb->closed(s);
	free(s->addrs);
	free(s->dest);
	free(s);
}

static void session_report(struct mta_session *s)
{
	struct mta_job *j = s->job;
	snprintf(j->remote, sizeof j->remote, "%s", s->remote);
	s->job = NULL;
	s->conf.cb->done(s, j);
}

/* no address could be reached: every recipient D_TEMP with the last error */
static void session_fail_all(struct mta_session *s)
{
	struct mta_job *j = s->job;
	char diag[700];
	snprintf(diag, sizeof diag, "Sorry, I wasn't able to establish an SMTP connection. "
	         "(#4.4.1) %s", s->lasterr);
	smtpc_txn_reset(&j->txn);
	for (size_t i = 0; i < j->txn.n; i++) {
		j->txn.rcpt[i].status = SMTPC_TEMP;
		j->txn.rcpt[i].diag = xstrdup(diag);
	}
	j->txn.done = 1;
	j->txn.retry = 0;
	session_report(s);
	session_close(s, "no_connection");
}

/* ---- connecting --------------------------------------------------------------------------- */

static void session_connected(struct mta_session *s)
{
	const struct mta_addr *a = &s->addrs[s->cur];
	mta_tcpto_note(a->addr, 0, time(NULL));
	log_info("event=connect host=%s mx=%s addr=%s port=%d", s->dest, a->name, a->addr, a->port);
	s->c = smtpc_new(s->conf.cfg->helohost);
	smtpc_begin(s->c, &s->job->txn);
	s->state = SS_SMTP;
	ev_add(s->rev, session_remote_ms(s));
}

static void session_connect_failed(struct mta_session *s, int timedout, int err)
{
	const struct mta_addr *a = &s->addrs[s->cur];
	mta_tcpto_note(a->addr, timedout, time(NULL));
	snprintf(s->lasterr, sizeof s->lasterr, "connect to %s port %d: %s", s->remote, a->port,
	         timedout ? "timed out" : strerror(err));
	log_info("event=connect_failed host=%s addr=%s port=%d error=\"%s\"", s->dest, a->addr,
	         a->port, timedout ? "timed out" : strerror(err));
	session_drop_conn(s);
	s->cur++;
	session_try(s);
}

static void session_on_write(int fd, short what, void *arg)
{
	struct mta_session *s = arg;
	if (s->state == SS_CONNECT) {
		int err = 0;
		socklen_t len = sizeof err;
		if (what & EV_TIMEOUT_FIRED)
			session_connect_failed(s, 1, ETIMEDOUT);
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
			session_connect_failed(s, 0, err ? err : errno);
		else
			session_connected(s);
		return;
	}
	if (what & EV_TIMEOUT_FIRED) {
		char why[700];
		snprintf(why, sizeof why, "conversation with %s timed out while sending (%s)",
		         s->remote, smtpc_state_name(s->c));
		smtpc_lost(s->c, why);
	}
	session_step(s);
}

static void session_on_read(int fd, short what, void *arg);
static void session_on_timer(int fd, short what, void *arg);

static void session_set_remote(struct mta_session *s, const struct mta_addr *a)
{
	snprintf(s->remote, sizeof s->remote, "%s[%s]", a->name, a->addr);
}

static void session_try(struct mta_session *s)
{
	time_t now = time(NULL);
	for (; !s->stopping && s->cur < s->naddrs; s->cur++) {
		const struct mta_addr *a = &s->addrs[s->cur];
		session_set_remote(s, a);
		if (s->cur + 1 < s->naddrs && mta_tcpto_skip(a->addr, now)) {
			log_info("event=tcpto_skip host=%s addr=%s", s->dest, a->addr);
			snprintf(s->lasterr, sizeof s->lasterr, "connect to %s port %d: skipped, it "
			         "timed out recently", s->remote, a->port);
			continue;
		}
		s->fd = session_socket(s, a);
		if (s->fd < 0) {
			log_info("event=connect_failed host=%s addr=%s port=%d error=\"%s\"", s->dest,
			         a->addr, a->port, s->lasterr);
			continue;
		}
		s->state = SS_CONNECT;
		s->rev = ev_new(s->fd, EV_R | EV_PERSIST, session_on_read, s);
		s->wev = ev_new(s->fd, EV_W, session_on_write, s);
		ev_add(s->wev, (long)s->conf.cfg->timeoutconnect * 1000);
		return;
	}
	if (s->stopping)
		snprintf(s->lasterr, sizeof s->lasterr, "mta shutting down");
	session_fail_all(s);
}

void mta_session_start(const struct mta_session_conf *conf, const char *dest,
                       const struct mta_addr *addrs, size_t n, struct mta_job *j, void *arg)
{
	struct mta_session *s = xcalloc(1, sizeof *s);
	s->conf = *conf;
	s->dest = xstrdup(dest);
	s->addrs = xcalloc(n ? n : 1, sizeof *addrs);
	memcpy(s->addrs, addrs, n * sizeof *addrs);
	s->naddrs = n;
	s->arg = arg;
	s->fd = -1;
	s->job = j;
	s->tev = ev_new(-1, 0, session_on_timer, s);
	snprintf(s->lasterr, sizeof s->lasterr, "no address to connect to");
	s->next = sessions;
	if (sessions)
		sessions->prev = s;
	sessions = s;
	session_try(s);                          /* may report and free s at once */
}

/* ---- the conversation --------------------------------------------------------------------- */

/* the text left changed: NULs dropped or long lines folded (smtp_client.h); say so once */
static void session_text_log(struct mta_session *s)
{
	const struct smtpc_body *b = smtpc_body(s->c);
	if (b->nul || b->folds)
		log_info("event=text_rewritten id=%016llx host=%s nul_dropped=%llu lines_folded=%llu",
		         (unsigned long long)s->job->msgid, s->dest, (unsigned long long)b->nul,
		         (unsigned long long)b->folds);
}

/* read more of the message into the engine's output while it wants text and little waits */
static void session_pump(struct mta_session *s)
{
	struct buf *out = smtpc_out(s->c);
	char chunk[SESS_TEXT_CHUNK];
	if (smtpc_want(s->c) == SMTPC_W_BODY && s->outoff) {
		buf_consume(out, s->outoff);         /* keep only what is still to be sent */
		s->outoff = 0;
	}
	while (smtpc_want(s->c) == SMTPC_W_BODY && out->len - s->outoff < SESS_OUT_HIGH) {
		ssize_t n = pread(s->job->fd, chunk, sizeof chunk, (off_t)s->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			char why[200];
			snprintf(why, sizeof why, "cannot read the message: %s", strerror(errno));
			log_err("event=message_read_failed host=%s error=\"%s\"", s->dest, strerror(errno));
			smtpc_lost(s->c, why);
			return;
		}
		if (n == 0) {
			session_text_log(s);
			smtpc_text_done(s->c);
		} else
			smtpc_body_feed(smtpc_body(s->c), chunk, (size_t)n, out);
		s->off += (uint64_t)n;
	}
}

/* 1 everything sent, 0 the socket is full (write event armed), -1 the connection failed */
static int session_flush(struct mta_session *s)
{
	struct buf *out = smtpc_out(s->c);
	while (s->outoff < out->len) {
		ssize_t n = send(s->fd, out->p + s->outoff, out->len - s->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_add(s->wev, session_remote_ms(s));
			return 0;
		}
		if (n < 0) {
			char why[700];
			snprintf(why, sizeof why, "lost connection with %s while sending (%s): %s",
			         s->remote, smtpc_state_name(s->c), strerror(errno));
			smtpc_lost(s->c, why);
			return -1;
		}
		s->outoff += (size_t)n;
		if (s->state != SS_IDLE)
			ev_add(s->rev, session_remote_ms(s));   /* progress: the wait starts again */
	}
	buf_reset(out);
	s->outoff = 0;
	return 1;
}

static void session_io(struct mta_session *s)
{
	if (smtpc_want(s->c) == SMTPC_W_CLOSE)
		return;                              /* nothing more goes out on a dead session */
	do
		session_pump(s);
	while (session_flush(s) > 0 && smtpc_want(s->c) == SMTPC_W_BODY);
}

/* the job's transaction is over: try the next address, or report it. 1 if s is gone or
 * busy with another connection attempt */
static int session_finished(struct mta_session *s)
{
	struct mta_job *j = s->job;
	if (j->txn.retry && s->nmsgs == 0 && !s->stopping && s->cur + 1 < s->naddrs) {
		snprintf(s->lasterr, sizeof s->lasterr, "%s: %s", s->remote,
		         j->txn.rcpt[0].diag ? j->txn.rcpt[0].diag : "failed");
		log_info("event=try_next_address host=%s remote=%s reason=\"%s\"", s->dest, s->remote,
		         j->txn.rcpt[0].diag ? j->txn.rcpt[0].diag : "");
		session_drop_conn(s);
		s->cur++;
		session_try(s);
		return 1;
	}
	s->nmsgs++;
	session_report(s);
	return 0;
}

static void session_step(struct mta_session *s)
{
	session_io(s);
	if (smtpc_finished(s->c) && session_finished(s))
		return;
	enum smtpc_want w = smtpc_want(s->c);
	if (w == SMTPC_W_CLOSE) {
		session_close(s, s->state == SS_QUIT ? "quit" : "closed");
	} else if (w == SMTPC_W_TXN && !s->job && s->state == SS_SMTP) {
		s->state = SS_IDLE;
		if (smtpc_out(s->c)->len == 0)
			buf_free(smtpc_out(s->c));       /* an idle connection keeps no text buffer */
		ev_del(s->rev);                      /* idle: no reply is due, drop the timeout */
		ev_add(s->rev, -1);
		s->conf.cb->idle(s);                 /* last: it may send a job, park or close s */
	}
}

static void session_on_read(int fd, short what, void *arg)
{
	struct mta_session *s = arg;
	char buf[SESS_READ_CHUNK], why[700];
	if (what & EV_TIMEOUT_FIRED) {
		snprintf(why, sizeof why, "conversation with %s timed out (no reply in %llu s, %s)",
		         s->remote, (unsigned long long)s->conf.cfg->timeoutremote,
		         smtpc_state_name(s->c));
		smtpc_lost(s->c, why);
	}
	for (int i = 0; i < 16 && smtpc_want(s->c) != SMTPC_W_CLOSE; i++) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			snprintf(why, sizeof why, "lost connection with %s (%s)%s%s", s->remote,
			         smtpc_state_name(s->c), n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			smtpc_lost(s->c, why);
			break;
		}
		smtpc_feed(s->c, buf, (size_t)n);
	}
	session_step(s);
}

static void session_on_timer(int fd, short what, void *arg)
{
	struct mta_session *s = arg;
	int mode = s->tmode;
	s->tmode = T_NONE;
	switch (mode) {
	case T_PARK: mta_session_quit(s, 0); break;
	case T_QUIT: session_close(s, "quit_timeout"); break;
	default: break;
	}
}

/* ---- interface ---------------------------------------------------------------------------- */

void mta_session_send(struct mta_session *s, struct mta_job *j)
{
	ev_del(s->tev);
	s->tmode = T_NONE;
	s->job = j;
	s->off = 0;
	s->state = SS_SMTP;
	if (smtpc_begin(s->c, &j->txn) < 0)
		smtpc_lost(s->c, "internal error: the connection was not idle");
	ev_add(s->rev, session_remote_ms(s));
	session_step(s);
}

void mta_session_park(struct mta_session *s, long ms)
{
	s->tmode = T_PARK;
	ev_add(s->tev, ms);
}

void mta_session_quit(struct mta_session *s, int now)
{
	if (s->state == SS_CONNECT) {
		s->stopping = 1;
		session_drop_conn(s);
		session_try(s);                      /* stopping: fails the job, closes */
		return;
	}
	s->stopping = 1;
	if (s->state == SS_IDLE) {
		ev_del(s->tev);
		smtpc_quit(s->c);
		s->state = SS_QUIT;
		session_io(s);
		if (now || smtpc_want(s->c) == SMTPC_W_CLOSE) {
			session_close(s, "quit");
			return;
		}
		s->tmode = T_QUIT;
		ev_add(s->tev, SESS_QUIT_MS);
		return;
	}
	if (s->state == SS_QUIT) {
		if (now)
			session_close(s, "quit");
		return;
	}
	smtpc_lost(s->c, "mta shutting down");
	session_step(s);
}

void mta_session_quit_all(int now)
{
	struct mta_session *s = sessions, *next;
	for (; s; s = next) {
		next = s->next;
		mta_session_quit(s, now);
	}
}

size_t mta_session_count(void)
{
	size_t n = 0;
	for (struct mta_session *s = sessions; s; s = s->next)
		n++;
	return n;
}

int mta_session_idle(const struct mta_session *s) { return s->state == SS_IDLE && !s->stopping; }
void *mta_session_arg(const struct mta_session *s) { return s->arg; }
const char *mta_session_dest(const struct mta_session *s) { return s->dest; }
unsigned mta_session_msgs(const struct mta_session *s) { return s->nmsgs; }
