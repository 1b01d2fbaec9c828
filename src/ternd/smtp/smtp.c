/* smtp — the smtp role: accepts inbound SMTP connections and runs every session in one
 * event loop. Owns: the listening sockets it was handed, the connection limits (total and
 * per client IP), the table that maps a correlation id to its session, and the channels to
 * lookup and queue. Trusts: the parent (fds, config); lookup and queue answers are checked by
 * the session; nothing from the network. Never touches the spool, never resolves names.
 *
 * Correlation ids: id = generation << 20 | slot. An answer for a session that has gone away
 * finds a different id in the slot and is dropped (a data file it opened is aborted). */
#include "ternd/role.h"
#include "ternd/proto.h"
#include "ternd/smtp/smtp_session.h"
#include "ternd/smtp/pop3_session.h"
#include "ternd/smtp/qmqp_session.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/tls.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SMTP_SLOTBITS  20
#define SMTP_IPBUCKETS 4096
#define SMTP_GRACE_MS  60000        /* shutdown: how long sessions may finish a message */
#define SMTP_ACCEPT_BURST 64

struct smtp_ip {                    /* sessions from one client address */
	struct smtp_ip *next;
	uint32_t count;
	char ip[INET6_ADDRSTRLEN];
};

struct smtp_slot {                  /* one session, tagged by its protocol */
	void *sess;                     /* smtp_, pop3_ or qmqp_session, as proto says */
	const struct smtp_proto_ops *ops;  /* that session module's */
	uint32_t id;                    /* 0 when free */
	uint32_t gen;
	uint32_t nextfree;
	uint8_t proto;                  /* enum cfg_proto; 0: no session */
};

/* one listening socket: what it serves is decided by its kind, how by its policy */
struct smtp_listener {
	struct ev *ev;
	int fd;
	const struct cfg_listen *conf;  /* kind, address, policy (cfg->listen[]) */
};

static struct smtp_role {
	struct smtp_srv srv;
	struct chan *parent;
	struct smtp_listener l[CFG_MAXLISTEN];
	int nlisten;
	struct ev *resume, *grace, *lost, *sigterm, *sigint;
	struct smtp_slot *slot;
	uint32_t nslot, freehead, nsessions;
	struct smtp_ip *ipb[SMTP_IPBUCKETS];
} smtp;

/* ---- per-IP counts -------------------------------------------------------------------- */

static uint32_t smtp_ip_hash(const char *ip)
{
	uint32_t h = 2166136261u;
	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h & (SMTP_IPBUCKETS - 1);
}

static struct smtp_ip *smtp_ip_get(const char *ip)
{
	struct smtp_ip **b = &smtp.ipb[smtp_ip_hash(ip)];
	for (struct smtp_ip *e = *b; e; e = e->next)
		if (strcmp(e->ip, ip) == 0)
			return e;
	struct smtp_ip *e = xcalloc(1, sizeof *e);
	snprintf(e->ip, sizeof e->ip, "%s", ip);
	e->next = *b;
	*b = e;
	return e;
}

static void smtp_ip_put(struct smtp_ip *e)
{
	if (--e->count > 0)
		return;
	for (struct smtp_ip **pp = &smtp.ipb[smtp_ip_hash(e->ip)]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
}

/* ---- the session table ------------------------------------------------------------------ */

static uint32_t smtp_slot_take(void)
{
	if (smtp.freehead == UINT32_MAX) {
		uint32_t n = smtp.nslot ? smtp.nslot * 2 : 256;
		if (n > (1u << SMTP_SLOTBITS))
			n = 1u << SMTP_SLOTBITS;
		if (n == smtp.nslot)
			return UINT32_MAX;
		smtp.slot = xrealloc(smtp.slot, n * sizeof *smtp.slot);
		for (uint32_t i = smtp.nslot; i < n; i++)
			smtp.slot[i] = (struct smtp_slot){ .gen = 1,
			                                   .nextfree = i + 1 < n ? i + 1 : UINT32_MAX };
		smtp.freehead = smtp.nslot;
		smtp.nslot = n;
	}
	uint32_t i = smtp.freehead;
	smtp.freehead = smtp.slot[i].nextfree;
	smtp.slot[i].gen = (smtp.slot[i].gen + 1) & 0xfff;
	if (smtp.slot[i].gen == 0)
		smtp.slot[i].gen = 1;
	smtp.slot[i].id = smtp.slot[i].gen << SMTP_SLOTBITS | i;
	return i;
}

/* the slot holding session id (NULL: gone or never was) */
static struct smtp_slot *smtp_find(uint32_t id)
{
	uint32_t i = id & ((1u << SMTP_SLOTBITS) - 1);
	if (i >= smtp.nslot || smtp.slot[i].id != id || id == 0 || !smtp.slot[i].proto)
		return NULL;
	return &smtp.slot[i];
}

/* ---- per-protocol dispatch: the slot's session module's operations -------------------------- */

static void smtp_slot_ipc(struct smtp_slot *sl, uint32_t type, struct msg_reader *r, int fd)
{
	sl->ops->ipc(sl->sess, type, r, fd);
}

static void smtp_slot_peer_lost(struct smtp_slot *sl)
{
	sl->ops->peer_lost(sl->sess);
}

static void smtp_slot_drain(struct smtp_slot *sl)
{
	if (sl->ops->drain)
		sl->ops->drain(sl->sess);
}

static void smtp_slot_kill(struct smtp_slot *sl)
{
	sl->ops->kill(sl->sess);
}

/* fn on every live session (a slot freed meanwhile, by a session closing, is skipped) */
static void smtp_each(void (*fn)(struct smtp_slot *))
{
	for (uint32_t i = 0; i < smtp.nslot; i++)
		if (smtp.slot[i].proto)
			fn(&smtp.slot[i]);
}

static void smtp_closed(struct smtp_srv *srv, struct smtp_session *s, uint32_t id, void *ipslot)
{
	uint32_t i = id & ((1u << SMTP_SLOTBITS) - 1);
	if (i < smtp.nslot && smtp.slot[i].id == id) {
		smtp.slot[i].sess = NULL;
		smtp.slot[i].ops = NULL;
		smtp.slot[i].proto = 0;
		smtp.slot[i].id = 0;
		smtp.slot[i].nextfree = smtp.freehead;
		smtp.freehead = i;
		smtp.nsessions--;
	}
	smtp_ip_put(ipslot);
	if (srv->draining && smtp.nsessions == 0)
		ev_exit();
}

/* ---- accepting ------------------------------------------------------------------------------ */

static void smtp_peer_ip(const struct sockaddr_storage *ss, char *ip, size_t sz)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, (socklen_t)sz);
	else if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, (socklen_t)sz);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)sz);
	else
		snprintf(ip, sz, "127.0.0.1");       /* a unix socket: local */
}

/* A refusal in the listener's protocol: SMTP's 421, POP3's -ERR; on an implicit-TLS port
 * (smtps, pop3s) the client expects a handshake, so plaintext would be garbage: just close. */
static void smtp_refuse(const struct smtp_listener *l, int fd, const char *ip, const char *why)
{
	static const char smtp_msg[] = "421 4.7.0 Too many connections\r\n";
	static const char pop3_msg[] = "-ERR [SYS/TEMP] too many connections\r\n";
	int pop3 = config_listen_kind(l->conf)->proto == CFG_PROTO_POP3;
	if (l->conf->policy.tls != CFG_TLS_IMPLICIT &&          /* QMQP has no greeting: close */
	    config_listen_kind(l->conf)->proto != CFG_PROTO_QMQP) {
		ssize_t n = pop3 ? send(fd, pop3_msg, sizeof pop3_msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT)
		                 : send(fd, smtp_msg, sizeof smtp_msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
	}
	close(fd);
	log_info("event=refused kind=%s ip=%s reason=%s", l->conf->kind, ip, why);
}

static void smtp_new_conn(const struct smtp_listener *l, int fd, const struct sockaddr_storage *ss)
{
	const struct config *cfg = smtp.srv.cfg;
	char ip[INET6_ADDRSTRLEN];
	smtp_peer_ip(ss, ip, sizeof ip);
	int qmqp = config_listen_kind(l->conf)->proto == CFG_PROTO_QMQP;
	if (qmqp && !qmqp_session_client_ok(ip)) {    /* qmail-qmqpd's tcpserver rules */
		smtp_refuse(l, fd, ip, "qmqpclients");
		return;
	}
	if (cfg->maxsmtpd && smtp.nsessions >= cfg->maxsmtpd) {
		smtp_refuse(l, fd, ip, "maxsmtpd");
		return;
	}
	struct smtp_ip *e = smtp_ip_get(ip);
	uint32_t i = UINT32_MAX;
	e->count++;
	if (cfg->maxsmtpdperip && e->count > cfg->maxsmtpdperip)
		smtp_refuse(l, fd, ip, "maxsmtpdperip");
	else if ((i = smtp_slot_take()) == UINT32_MAX)
		smtp_refuse(l, fd, ip, "table_full");
	if (i == UINT32_MAX) {
		smtp_ip_put(e);
		return;
	}
	smtp.nsessions++;
	if (qmqp) {
		smtp.slot[i].ops = &qmqp_session_ops;
		smtp.slot[i].sess = qmqp_session_new(&smtp.srv, fd, smtp.slot[i].id, ip, e);
		smtp.slot[i].proto = smtp.slot[i].sess ? CFG_PROTO_QMQP : 0;
		return;
	}
	if (config_listen_kind(l->conf)->proto == CFG_PROTO_POP3) {
		smtp.slot[i].ops = &pop3_session_ops;
		smtp.slot[i].sess = pop3_session_new(&smtp.srv, smtp.srv.tls,
		                                    l->conf->policy.tls == CFG_TLS_IMPLICIT, fd,
		                                    smtp.slot[i].id, ip, e);
		smtp.slot[i].proto = smtp.slot[i].sess ? CFG_PROTO_POP3 : 0;
		return;
	}
	smtp.slot[i].ops = &smtp_session_ops;
	struct smtp_session *s = smtp_session_new(&smtp.srv, fd, smtp.slot[i].id, ip, e,
	                                          &l->conf->policy);
	smtp.slot[i].sess = s;
	smtp.slot[i].proto = s ? CFG_PROTO_SMTP : 0;
	smtp_session_start(s);
}

static void smtp_listen_set(int on)
{
	for (int i = 0; i < smtp.nlisten; i++)
		if (smtp.l[i].ev) {
			if (on)
				ev_add(smtp.l[i].ev, -1);
			else
				ev_del(smtp.l[i].ev);
		}
}

static void smtp_resume(int fd, short what, void *arg)
{
	if (!smtp.srv.draining)
		smtp_listen_set(1);
}

static void smtp_accept(int lfd, short what, void *arg)
{
	const struct smtp_listener *l = arg;
	for (int k = 0; k < SMTP_ACCEPT_BURST; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			smtp_new_conn(l, fd, &ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn("event=accept_paused errno=%d", errno);
			smtp_listen_set(0);
			ev_add(smtp.resume, 1000);
		} else if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_warn("event=accept_error errno=%d", errno);
		return;
	}
}

/* ---- channels ---------------------------------------------------------------------------- */

/* an answer for a session that is gone: give back an opened data file */
static void smtp_stale(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd)
{
	if (fd >= 0)
		close(fd);
	if (type != M_MSG_OPENED)
		return;
	uint64_t status = msg_get_u64(r), msgid = msg_get_u64(r);
	if (msg_done(r) == 0 && status == 0 && msgid && smtp.srv.queue_up) {
		struct msg m;
		msg_init(&m, M_MSG_ABORT, id);
		msg_u64(&m, msgid);
		chan_send(c, &m);
	}
}

static void smtp_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r,
                      int fd, void *arg)
{
	struct smtp_slot *sl = smtp_find(id);
	if (sl)
		smtp_slot_ipc(sl, type, r, fd);
	else {
		log_debug("event=stale_answer id=%u type=%u", id, type);
		smtp_stale(c, type, id, r, fd);
	}
}

/* deferred from the close callback: answer every session waiting on a lost peer */
static void smtp_lost(int fd, short what, void *arg)
{
	smtp_each(smtp_slot_peer_lost);
}

static void smtp_drain(const char *why);

static void smtp_chan_closed(struct chan *c, void *arg)
{
	if (c == smtp.parent) {
		smtp_drain("parent_gone");
		return;
	}
	int broken = role_peer_lost(c) < 0;
	if (c == smtp.srv.lookup)
		smtp.srv.lookup_up = 0;
	if (c == smtp.srv.queue)
		smtp.srv.queue_up = 0;
	ev_add(smtp.lost, 0);
	if (broken)
		smtp_drain("peer_channel_broken");   /* then exit: restarted with fresh channels */
}

static struct chan *smtp_chan(int fd, const char *name);

/* A restarted lookup or queue (M_PEER_NEW): whatever waited on the old one is answered
 * first (a tempfail), then requests go to the new channel. */
static void smtp_peer_new(int peer, int fd)
{
	struct chan **cp = peer == R_LOOKUP ? &smtp.srv.lookup : &smtp.srv.queue;
	int *up = peer == R_LOOKUP ? &smtp.srv.lookup_up : &smtp.srv.queue_up;
	if (*up)
		log_warn("event=peer_lost peer=%s reason=replaced", role_name(peer));
	*up = 0;
	ev_del(smtp.lost);
	smtp_lost(-1, 0, NULL);
	chan_free(*cp);
	*cp = smtp_chan(fd, role_name(peer));
	*up = 1;
	log_info("event=peer_new peer=%s", role_name(peer));
}

static void smtp_parent_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r,
                             int fd, void *arg)
{
	if (type == M_PEER_NEW) {
		int peer = role_peer_new(R_SMTP, r, fd);
		if (peer == R_LOOKUP || peer == R_QUEUE)
			smtp_peer_new(peer, fd);
		else if (peer >= 0) {
			log_warn("event=unexpected_peer peer=%s", role_name(peer));
			close(fd);
		}
		return;
	}
	struct smtp_slot *sl = smtp_find(id);
	if (type == M_POP_READY && sl && sl->proto == CFG_PROTO_POP3) {  /* the user's worker */
		smtp_slot_ipc(sl, type, r, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	log_debug("event=parent_message type=%u", type);
}

/* ---- shutdown ------------------------------------------------------------------------------ */

static void smtp_grace_over(int fd, short what, void *arg)
{
	smtp_each(smtp_slot_kill);
	ev_exit();
}

static void smtp_drain(const char *why)
{
	if (smtp.srv.draining)
		return;
	smtp.srv.draining = 1;
	log_info("event=shutdown reason=%s sessions=%u", why, smtp.nsessions);
	for (int i = 0; i < smtp.nlisten; i++) {
		ev_free(smtp.l[i].ev);
		smtp.l[i].ev = NULL;
		close(smtp.l[i].fd);
	}
	smtp_each(smtp_slot_drain);
	if (smtp.nsessions == 0)
		ev_exit();
	else
		ev_add(smtp.grace, SMTP_GRACE_MS);
}

static void smtp_signal(int sig, short what, void *arg)
{
	smtp_drain(sig == SIGTERM ? "sigterm" : "sigint");
}

/* ---- main -------------------------------------------------------------------------------- */

static struct chan *smtp_chan(int fd, const char *name)
{
	return fd >= 0 ? chan_new(fd, name, smtp_recv, smtp_chan_closed, NULL) : NULL;
}

static void smtp_setup(struct role_ctx *ctx)
{
	smtp.srv.cfg = ctx->cfg;
	smtp.srv.closed = smtp_closed;
	smtp.srv.lookup = smtp_chan(ctx->peer[R_LOOKUP], "lookup");
	smtp.srv.queue = smtp_chan(ctx->peer[R_QUEUE], "queue");
	smtp.srv.lookup_up = smtp.srv.lookup != NULL;
	smtp.srv.queue_up = smtp.srv.queue != NULL;
	if (ctx->peer[R_PARENT] >= 0)
		smtp.parent = chan_new(ctx->peer[R_PARENT], "parent", smtp_parent_recv,
		    smtp_chan_closed, NULL);
	smtp.freehead = UINT32_MAX;
	smtp.resume = ev_new(-1, 0, smtp_resume, NULL);
	smtp.grace = ev_new(-1, 0, smtp_grace_over, NULL);
	smtp.lost = ev_new(-1, 0, smtp_lost, NULL);
	smtp.sigterm = ev_signal(SIGTERM, smtp_signal, NULL);
	smtp.sigint = ev_signal(SIGINT, smtp_signal, NULL);
	ev_add(smtp.sigterm, -1);
	ev_add(smtp.sigint, -1);
	for (int i = 0; i < ctx->nlisten && i < CFG_MAXLISTEN; i++) {
		int fd = ctx->listen[i], k = ctx->listen_kind[i];
		if (k < 0 || k >= ctx->cfg->nlisten) {
			log_warn("event=listen_ignored fd=%d reason=\"no such listen line\"", fd);
			close(fd);
			continue;
		}
		struct smtp_listener *l = &smtp.l[smtp.nlisten++];
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		l->fd = fd;
		l->conf = &ctx->cfg->listen[k];
		l->ev = ev_new(fd, EV_R | EV_PERSIST, smtp_accept, l);
		ev_add(l->ev, -1);
	}
}

static void smtp_teardown(void)
{
	smtp_each(smtp_slot_kill);
	if (smtp.srv.queue && smtp.srv.queue_up)
		chan_flush_blocking(smtp.srv.queue);
	chan_free(smtp.srv.lookup);
	chan_free(smtp.srv.queue);
	chan_free(smtp.parent);
	for (int i = 0; i < smtp.nlisten; i++)
		if (smtp.l[i].ev) {
			ev_free(smtp.l[i].ev);
			close(smtp.l[i].fd);
		}
	ev_free(smtp.resume);
	ev_free(smtp.grace);
	ev_free(smtp.lost);
	ev_free(smtp.sigterm);
	ev_free(smtp.sigint);
	free(smtp.slot);
	tls_ctx_free(smtp.srv.tls);
}

/* Before the chroot, the privilege drop and the sandbox: OpenSSL's own files and random
 * seed, and the server certificate with its private key, which stays in this process
 * (doc/ARCHITECTURE.md, "TLS keys"). A SIGHUP restarts the role: a renewed certificate is
 * loaded then. -1 (logged): the role cannot serve as configured. */
int smtp_prepare(struct role_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	char err[256];
	if (qmqp_session_prepare(cfg) < 0)
		return -1;
	if (!cfg->servercert || !*cfg->servercert)
		return 0;
	if (tls_init() < 0) {
		log_err("event=tls_init_failed");
		return -1;
	}
	struct tls_conf tc;
	config_tls_server(cfg, &tc);
	time_t expires = 0;
	smtp.srv.tls = tls_server_new(&tc, err, sizeof err);
	if (!smtp.srv.tls) {
		log_err("event=tls_cert_failed file=%s error=\"%s\"", cfg->servercert, err);
		return -1;
	}
	if (tls_cert_check(cfg->servercert, &expires, err, sizeof err) == 0)
		log_info("event=tls_cert_loaded file=%s expires=%lld%s", cfg->servercert,
		    (long long)expires, expires < time(NULL) ? " expired=yes" : "");
	return 0;
}

int smtp_main(struct role_ctx *ctx)
{
	ev_init();
	signal(SIGPIPE, SIG_IGN);
	smtp_setup(ctx);
	log_info("event=smtp_ready listeners=%d maxsmtpd=%llu maxsmtpdperip=%llu", smtp.nlisten,
	    (unsigned long long)ctx->cfg->maxsmtpd, (unsigned long long)ctx->cfg->maxsmtpdperip);
	ev_run();
	smtp_teardown();
	log_info("event=smtp_exit");
	return 0;
}
