/* mta_session — one outbound SMTP connection on lib/io: a non-blocking connect to each
 * address in turn (tcpto, timeoutconnect, outgoingip), then the engine of mail/smtp_client
 * fed from the connection, STARTTLS and AUTH as the destination's policy says, the message
 * text read with pread in chunks as the output drains (never the whole message in memory),
 * every wait for the server bounded by timeoutremote (io's inactivity timeout).
 * Owns: the io, its park/quit timer, the engine, the table of addresses whose handshake
 * failed under `may`. Trusts: mta.c for the job, the address list and the policy; nothing
 * the server sends (the engine checks every reply; io checks the TLS stream).
 *
 *   start ─► CONNECT (addr i) ─fail/timeout─► addr i+1 … none left: every recipient D_TEMP
 *               │ connected
 *               ▼
 *            SMTP ─ txn over ─► done(job) ─► IDLE ─ idle() ─► send(job) ─► SMTP …
 *               │ temp failure before MAIL on a fresh connection: next address
 *               │ handshake failed under `may`: the same address again, in plaintext
 *            IDLE ─ park ms ─► QUIT ─ 221 / QUIT_MS ─► closed()
 *
 * TLS: the engine asks for the handshake after the server's 220 to STARTTLS; the server name
 * given to io (SNI, and the name the certificate must carry) is the policy's match= name,
 * else the MX host name (or the relay's name, or the address literal). verify: a chain or a
 * name that does not verify defers (4.7.5), and another address may be tried. Every
 * diagnostic from an encrypted conversation ends with what protected it ("(TLS TLSv1.3
 * CIPHER, verified)" or "not verified: why"); one without that came in plaintext.
 *
 * The cluster (doc/CLUSTER.md): with smtpclustercookie set, a server whose greeting ends with
 * the cookie is a node of this cluster. An ordinary delivery that meets one fails (5.4.6,
 * the mail loops between nodes); a "cluster" delivery that does not meet one defers (4.4.6,
 * the mailHost is not a node). A cluster delivery puts one X-Tern-Cluster line in front of
 * the message text (mta.c counts it in SIZE and refuses a message with too many).
 *
 * LMTP (doc/LMTP.md): a session of channel MTA_CH_LMTP connects to an AF_UNIX stream socket
 * (mta_addr.unixsock) or TCP, puts the engine in LMTP mode and never asks for STARTTLS, AUTH
 * or the cluster cookie; tcpto does not count unix sockets. */
#include "lib/netaddr.h"
#include "ternd/mta/mta_session.h"
#include "ternd/mta/mta.h"
#include "lib/ev.h"
#include "lib/io.h"
#include "lib/log.h"
#include "mail/cluster.h"
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SESS_TEXT_CHUNK 32768
#define SESS_OUT_HIGH   65536     /* stop reading the message while this much waits */
#define SESS_QUIT_MS    10000     /* how long a polite QUIT waits for its reply */
#define NOTLS_MAX       256       /* addresses remembered for a failed handshake */
#define NOTLS_SECS      3600      /* ... for this long */

enum { SS_CONNECT, SS_SMTP, SS_IDLE, SS_QUIT };
enum { T_NONE, T_PARK, T_QUIT };

struct mta_session {
	struct mta_session *next, *prev;     /* every live session */
	struct mta_session_conf conf;
	char *dest;
	struct mta_addr *addrs;
	size_t naddrs, cur;
	void *arg;
	struct io *io;
	struct ev *tev;
	struct smtpc *c;
	struct mta_job *job;
	uint64_t off;                        /* next byte of the message to read */
	unsigned nmsgs;
	int state, tmode, stopping;
	int plain;                           /* this connection: no STARTTLS (fallback) */
	int xsent;                           /* the X-Tern-Cluster line of this text is out */
	char remote[MTA_REMOTE_MAX];
	char tlsdesc[200];                   /* what protects the conversation, for diagnostics */
	char tlslog[200];                    /* the same for the delivery logs */
	char lasterr[600];
};

static struct mta_session *sessions;

static void session_step(struct mta_session *s);
static void session_try(struct mta_session *s);
static void session_io_cb(struct io *io, int evt, void *arg);
static void session_on_timer_cb(int fd, short what, void *arg);

static long session_remote_ms(const struct mta_session *s)
{
	return (long)s->conf.cfg->timeoutremote * 1000;
}

/* ---- addresses whose handshake failed (`may` falls back to plaintext) ---------------------- */

struct notls { char addr[INET6_ADDRSTRLEN]; time_t until; };
static struct notls notls[NOTLS_MAX];
static size_t nnotls;

int mta_notls_skip(const char *addr, time_t now)
{
	for (size_t i = 0; i < nnotls; i++)
		if (strcmp(notls[i].addr, addr) == 0)
			return now < notls[i].until;
	return 0;
}

void mta_notls_note(const char *addr, time_t now)
{
	size_t k = 0;
	for (; k < nnotls && strcmp(notls[k].addr, addr) != 0; k++)
		;
	if (k == nnotls && nnotls < NOTLS_MAX)
		nnotls++;
	else if (k == nnotls)                    /* full: replace the oldest */
		for (size_t i = k = 0; i < nnotls; i++)
			if (notls[i].until < notls[k].until)
				k = i;
	snprintf(notls[k].addr, sizeof notls[k].addr, "%s", addr);
	notls[k].until = now + NOTLS_SECS;
}

/* ---- sockets ---------------------------------------------------------------------------- */

/* lmtp's unix:/PATH (mta.c checked the path against lmtpsocketdirs) */
static struct io *session_connect_unix(struct mta_session *s, const struct mta_addr *a)
{
	struct sockaddr_un un;
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	if (strlen(a->name) >= sizeof un.sun_path) {
		snprintf(s->lasterr, sizeof s->lasterr, "socket path too long");
		return NULL;
	}
	memcpy(un.sun_path, a->name, strlen(a->name) + 1);
	struct io *io = io_connect((struct sockaddr *)&un, sizeof un, NULL, 0, session_io_cb, s);
	if (!io)
		snprintf(s->lasterr, sizeof s->lasterr, "connect to %s: %s", s->remote,
		         strerror(errno));
	return io;
}

/* a non-blocking connect to a, from outgoingip when it is set and of the same family */
static struct io *session_connect(struct mta_session *s, const struct mta_addr *a)
{
	if (a->unixsock)
		return session_connect_unix(s, a);
	struct sockaddr_storage ss, src;
	socklen_t sl, srcl = 0;
	const char *ip = s->conf.cfg->outgoingip;
	if (netaddr_sockaddr(a->addr, a->port, &ss, &sl) < 0) {
		snprintf(s->lasterr, sizeof s->lasterr, "bad address %s", a->addr);
		return NULL;
	}
	int bind_src = ip && *ip && netaddr_sockaddr(ip, 0, &src, &srcl) == 0 &&
	               src.ss_family == ss.ss_family;
	struct io *io = io_connect((struct sockaddr *)&ss, sl, bind_src ? (struct sockaddr *)&src
	                           : NULL, bind_src ? srcl : 0, session_io_cb, s);
	if (!io)
		snprintf(s->lasterr, sizeof s->lasterr, "connect to %s port %d%s%s: %s", s->remote,
		         a->port, bind_src ? " from outgoingip " : "", bind_src ? ip : "",
		         strerror(errno));
	return io;
}

static void session_drop_conn(struct mta_session *s)
{
	io_free(s->io);
	s->io = NULL;
	smtpc_free(s->c);
	s->c = NULL;
	s->off = 0;
	s->xsent = 0;
	s->tlsdesc[0] = '\0';
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

/* every diagnostic of the conversation says what protected it (MAILQ, ternctl show queue) */
static void session_diag_tls(struct mta_session *s, struct mta_job *j)
{
	for (size_t i = 0; i < j->txn.n && s->tlsdesc[0]; i++) {
		char *d = j->txn.rcpt[i].diag;
		if (!d)
			continue;
		size_t n = strlen(d) + strlen(s->tlsdesc) + 4;
		char *nd = xmalloc(n);
		snprintf(nd, n, "%s (%s)", d, s->tlsdesc);
		free(d);
		j->txn.rcpt[i].diag = nd;
	}
}

static void session_report(struct mta_session *s)
{
	struct mta_job *j = s->job;
	snprintf(j->remote, sizeof j->remote, "%s", s->remote);
	if (s->c) {
		session_diag_tls(s, j);
		snprintf(j->tls, sizeof j->tls, "%s", s->tlslog);
	}
	s->job = NULL;
	s->conf.cb->done(s, j);
}

/* no address could be reached: every recipient D_TEMP with the last error */
static void session_fail_all(struct mta_session *s)
{
	struct mta_job *j = s->job;
	char diag[700];
	snprintf(diag, sizeof diag, "Sorry, I wasn't able to establish an %s connection. "
	         "(#4.4.1) %s", s->conf.channel == MTA_CH_LMTP ? "LMTP" : "SMTP", s->lasterr);
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

/* ---- the cluster (doc/CLUSTER.md) --------------------------------------------------------- */

/* the engine's verdict hook on the server's 2xx greeting (smtpc_set_greet_check) */
static int session_cluster_greet(void *arg, const struct smtpc_reply *r, char *diag, size_t dsz)
{
	struct mta_session *s = arg;
	const char *cookie = s->conf.cfg->smtpclustercookie;
	int node = cluster_greeting_has_cookie(r->text.p, r->text.len, cookie);
	if (node && s->conf.channel != MTA_CH_CLUSTER) {
		log_warn("event=cluster_loop host=%s remote=%s reason=\"the server greets with our "
		         "cluster cookie\"", s->dest, s->remote);
		snprintf(diag, dsz, "%s (%s is a node of this cluster)", CLUSTER_LOOP_DIAG, s->remote);
		return SMTPC_PERM;
	}
	if (!node && s->conf.channel == MTA_CH_CLUSTER) {
		log_warn("event=cluster_stranger host=%s remote=%s", s->dest, s->remote);
		snprintf(diag, dsz, "mailHost %s is not a node of this cluster: %s does not greet "
		         "with the cluster cookie (#4.4.6)", s->dest, s->remote);
		return SMTPC_TEMP;
	}
	return SMTPC_OPEN;
}

/* a cluster delivery's text starts with our X-Tern-Cluster line (once per transaction) */
static void session_cluster_line(struct mta_session *s)
{
	char line[300];
	int n;
	if (s->conf.channel != MTA_CH_CLUSTER || s->xsent || s->off != 0)
		return;
	s->xsent = 1;
	n = cluster_header_line(s->conf.cfg->me, line, sizeof line);
	if (n > 0)
		smtpc_body_feed(smtpc_body(s->c), line, (size_t)n, smtpc_out(s->c));
}

/* ---- connecting --------------------------------------------------------------------------- */

static void session_connected(struct mta_session *s)
{
	const struct mta_addr *a = &s->addrs[s->cur];
	int level = s->conf.tls ? s->conf.pol.level : TLSP_NONE;
	int lmtp = s->conf.channel == MTA_CH_LMTP;
	if (!a->unixsock)
		mta_tcpto_note(a->addr, 0, time(NULL));
	if (level == TLSP_MAY && (s->plain || mta_notls_skip(a->addr, time(NULL))))
		level = TLSP_NONE;
	log_info("event=connect host=%s mx=%s addr=%s port=%d smtptls=%s%s%s", s->dest, a->name,
	         a->addr, a->port, tlspolicy_level_name(level), s->plain ? " fallback=plaintext"
	         : "", lmtp ? " protocol=lmtp" : "");
	s->c = smtpc_new(s->conf.cfg->helohost);
	smtpc_set_tls(s->c, (enum smtpc_tls)level);
	smtpc_set_lmtp(s->c, lmtp);
	if (s->conf.user)
		smtpc_set_auth(s->c, s->conf.user, s->conf.pass, s->conf.cfg->smtpauthplaintext);
	if (*s->conf.cfg->smtpclustercookie && !lmtp)
		smtpc_set_greet_check(s->c, session_cluster_greet, s);
	s->tlsdesc[0] = '\0';                    /* no TLS: the diagnostics say nothing */
	snprintf(s->tlslog, sizeof s->tlslog, "tls=no");
	smtpc_begin(s->c, &s->job->txn);
	s->state = SS_SMTP;
	io_set_timeout(s->io, session_remote_ms(s));
}

static void session_connect_failed(struct mta_session *s, int timedout, const char *err)
{
	const struct mta_addr *a = &s->addrs[s->cur];
	if (!a->unixsock)
		mta_tcpto_note(a->addr, timedout, time(NULL));
	snprintf(s->lasterr, sizeof s->lasterr, "connect to %s port %d: %s", s->remote, a->port,
	         timedout ? "timed out" : err);
	log_info("event=connect_failed host=%s addr=%s port=%d error=\"%s\"", s->dest, a->addr,
	         a->port, timedout ? "timed out" : err);
	session_drop_conn(s);
	s->cur++;
	s->plain = 0;
	session_try(s);
}

static void session_set_remote(struct mta_session *s, const struct mta_addr *a)
{
	if (a->unixsock)
		snprintf(s->remote, sizeof s->remote, "unix:%s", a->name);
	else
		snprintf(s->remote, sizeof s->remote, "%s[%s]", a->name, a->addr);
}

static void session_try(struct mta_session *s)
{
	time_t now = time(NULL);
	for (; !s->stopping && s->cur < s->naddrs; s->cur++, s->plain = 0) {
		const struct mta_addr *a = &s->addrs[s->cur];
		session_set_remote(s, a);
		if (s->cur + 1 < s->naddrs && !a->unixsock && mta_tcpto_skip(a->addr, now)) {
			log_info("event=tcpto_skip host=%s addr=%s", s->dest, a->addr);
			snprintf(s->lasterr, sizeof s->lasterr, "connect to %s port %d: skipped, it "
			         "timed out recently", s->remote, a->port);
			continue;
		}
		s->io = session_connect(s, a);
		if (!s->io) {
			log_info("event=connect_failed host=%s addr=%s port=%d error=\"%s\"", s->dest,
			         a->addr, a->port, s->lasterr);
			continue;
		}
		s->state = SS_CONNECT;
		io_set_timeout(s->io, (long)s->conf.cfg->timeoutconnect * 1000);
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
	s->job = j;
	s->tev = ev_new(-1, 0, session_on_timer_cb, s);
	snprintf(s->lasterr, sizeof s->lasterr, "no address to connect to");
	s->next = sessions;
	if (sessions)
		sessions->prev = s;
	sessions = s;
	session_try(s);                          /* may report and free s at once */
}

/* ---- TLS ---------------------------------------------------------------------------------- */

/* the server said 220 to STARTTLS: start the handshake (the name: match=, else the MX's) */
static void session_start_tls(struct mta_session *s)
{
	const struct mta_addr *a = &s->addrs[s->cur];
	const char *name = s->conf.pol.match[0] ? s->conf.pol.match : a->name;
	long dropped = io_start_tls_client(s->io, s->conf.tls, name);   /* still unread */
	if (dropped >= 0)
		dropped += (long)smtpc_tls_dropped(s->c);                   /* read, thrown away */
	if (dropped < 0) {
		char why[700];
		snprintf(why, sizeof why, "cannot start TLS with %s: %s (#4.7.5)", s->remote,
		         io_error(s->io));
		smtpc_lost(s->c, why);
	} else if (dropped > 0)
		log_warn("event=tls_injection host=%s remote=%s dropped=%ld", s->dest, s->remote,
		         dropped);
}

/* the handshake failed: under `may` the same address again in plaintext (remembered for a
 * while); under encrypt/verify the job defers with 4.7.5 (another address may be tried) */
static void session_tls_failed(struct mta_session *s, const char *err)
{
	char why[700];
	log_info("event=tls_failed host=%s remote=%s smtptls=%s error=\"%s\"%s", s->dest,
	         s->remote, tlspolicy_level_name(s->conf.pol.level), err,
	         s->conf.pol.level == TLSP_MAY ? " action=retry_plaintext" : "");
	if (s->conf.pol.level == TLSP_MAY && !s->stopping) {
		mta_notls_note(s->addrs[s->cur].addr, time(NULL));
		session_drop_conn(s);
		s->plain = 1;
		s->io = session_connect(s, &s->addrs[s->cur]);
		if (!s->io) {
			s->cur++;
			s->plain = 0;
			session_try(s);
			return;
		}
		s->state = SS_CONNECT;
		io_set_timeout(s->io, (long)s->conf.cfg->timeoutconnect * 1000);
		return;
	}
	snprintf(why, sizeof why, "TLS handshake with %s failed: %s (#4.7.5)", s->remote, err);
	smtpc_lost(s->c, why);
	s->tlsdesc[0] = '\0';
	session_step(s);
}

static void session_tls_ready(struct mta_session *s)
{
	struct io_tls_info ti;
	io_tls_info(s->io, &ti);
	const char *name = s->conf.pol.match[0] ? s->conf.pol.match : s->addrs[s->cur].name;
	const char *why = ti.verified ? "" : ti.peer_cert ? ti.verify_error : "no certificate";
	char qcn[300];
	log_info("event=tls host=%s remote=%s version=%s cipher=%s bits=%d verified=%s name=%s "
	         "peer_cn=\"%s\"%s%s%s", s->dest, s->remote, ti.version, ti.cipher, ti.bits,
	         ti.verified ? "yes" : "no", name, log_quote(qcn, sizeof qcn, ti.peer_cn,
	         strlen(ti.peer_cn)), ti.verified ? "" : " verify_error=\"", why,
	         ti.verified ? "" : "\"");
	snprintf(s->tlsdesc, sizeof s->tlsdesc, "TLS %s %s, %s%s", ti.version, ti.cipher,
	         ti.verified ? "verified" : "not verified: ", why);
	snprintf(s->tlslog, sizeof s->tlslog, "tls=%s cipher=%s verified=%s", ti.version,
	         ti.cipher, ti.verified ? "yes" : "no");
	if (s->conf.pol.level == TLSP_VERIFY && !ti.verified) {
		char d[700];
		snprintf(d, sizeof d, "the certificate of %s does not verify for %s: %s (#4.7.5)",
		         s->remote, name, why);
		smtpc_lost(s->c, d);
		s->tlsdesc[0] = '\0';
		return;
	}
	smtpc_tls_done(s->c);
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

/* the engine's output to io */
static void session_move_out(struct mta_session *s)
{
	struct buf *out = smtpc_out(s->c);
	if (out->len)
		io_write(s->io, out->p, out->len);
	buf_reset(out);
}

/* read more of the message into io's output while the engine wants text and little waits */
static void session_pump(struct mta_session *s)
{
	char chunk[SESS_TEXT_CHUNK];
	session_move_out(s);
	while (smtpc_want(s->c) == SMTPC_W_BODY && io_queued(s->io) < SESS_OUT_HIGH) {
		session_cluster_line(s);
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
			smtpc_body_feed(smtpc_body(s->c), chunk, (size_t)n, smtpc_out(s->c));
		s->off += (uint64_t)n;
		session_move_out(s);
	}
}

/* the engine's output leaves now (io_flush: also outside io's callbacks) */
static void session_io(struct mta_session *s)
{
	if (smtpc_want(s->c) == SMTPC_W_CLOSE) {
		session_move_out(s);                 /* a last QUIT, if any */
		(void)io_flush(s->io);
		return;
	}
	do {                                     /* until the socket is full or the text ends: */
		session_pump(s);                     /* IO_LOWAT brings the next round */
		if (io_flush(s->io) < 0) {
			char why[700];
			snprintf(why, sizeof why, "lost connection with %s while sending (%s): %s",
			         s->remote, smtpc_state_name(s->c), io_error(s->io));
			smtpc_lost(s->c, why);
			return;
		}
	} while (smtpc_want(s->c) == SMTPC_W_BODY && io_queued(s->io) == 0);
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
		s->plain = 0;
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
	} else if (w == SMTPC_W_TLS) {
		session_start_tls(s);
		if (smtpc_want(s->c) == SMTPC_W_CLOSE)
			session_step(s);
	} else if (w == SMTPC_W_TXN && !s->job && s->state == SS_SMTP) {
		s->state = SS_IDLE;
		buf_free(smtpc_out(s->c));           /* an idle connection keeps no text buffer */
		io_set_timeout(s->io, -1);           /* idle: no reply is due */
		s->conf.cb->idle(s);                 /* last: it may send a job, park or close s */
	}
}

static void session_lost(struct mta_session *s, int evt)
{
	char why[700];
	if (evt == IO_TIMEOUT)
		snprintf(why, sizeof why, "conversation with %s timed out (no reply in %llu s, %s)",
		         s->remote, (unsigned long long)s->conf.cfg->timeoutremote,
		         smtpc_state_name(s->c));
	else
		snprintf(why, sizeof why, "lost connection with %s (%s)%s%s", s->remote,
		         smtpc_state_name(s->c), evt == IO_ERROR ? ": " : "",
		         evt == IO_ERROR ? io_error(s->io) : "");
	smtpc_lost(s->c, why);
}

static void session_event(struct mta_session *s, int evt)
{
	if (s->state == SS_CONNECT) {
		if (evt == IO_CONNECTED)
			session_connected(s);
		else if (evt == IO_TIMEOUT || evt == IO_ERROR || evt == IO_DISCONNECTED) {
			session_connect_failed(s, evt == IO_TIMEOUT, evt == IO_ERROR ?
			                       io_error(s->io) : "connection closed");
			return;
		}
		session_step(s);
		return;
	}
	if (smtpc_want(s->c) == SMTPC_W_TLS && evt != IO_TLSREADY && evt != IO_LOWAT &&
	    evt != IO_DATAIN) {
		session_tls_failed(s, evt == IO_TIMEOUT ? "timed out" : evt == IO_DISCONNECTED ?
		                   "connection closed" : io_error(s->io));
		return;
	}
	switch (evt) {
	case IO_TLSREADY:
		session_tls_ready(s);
		break;
	case IO_DATAIN: {
		size_t n;
		const char *d = io_data(s->io, &n);
		if (smtpc_want(s->c) != SMTPC_W_TLS)
			smtpc_feed(s->c, d, n);
		io_drop(s->io, n);
		break;
	}
	case IO_TIMEOUT:
	case IO_DISCONNECTED:
	case IO_ERROR:
		session_lost(s, evt);
		break;
	default:
		break;                               /* IO_LOWAT: pump more text below */
	}
	session_step(s);
}

static void session_io_cb(struct io *io, int evt, void *arg) { session_event(arg, evt); }

static void session_on_timer_cb(int fd, short what, void *arg)
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
	s->xsent = 0;
	s->state = SS_SMTP;
	if (smtpc_begin(s->c, &j->txn) < 0)
		smtpc_lost(s->c, "internal error: the connection was not idle");
	io_set_timeout(s->io, session_remote_ms(s));
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
