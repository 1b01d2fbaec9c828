/* control — the control role's core: the channels to queue, scheduler, mta, lookup and parent, the
 * request/reply table behind control_ask (frame ids allocated here; a reply is matched by id
 * and peer), the listeners (accept loops with a connection limit per kind) and the dispatch
 * of accepted sockets to the protocol modules: admin.c (ternctl's UNIX socket), mailq2.c
 * (MAILQ v2), qp.c (Bongo's queue protocol, when linked in) and metrics.c (OpenMetrics).
 * Owns: the listening sockets it is handed, the pending-request table, the live-connection
 * registry used for the limits. Keeps no state about mail: every answer comes from its owner.
 * Trusts: the parent (fds, config); peers' replies only as far as msg_done() checks them;
 * nothing a client sends (the modules parse that).
 *
 * A peer channel that closes answers every request pending on it with type 0 (the sessions
 * then give their clients a temporary error) and the peer is down until the parent hands
 * over its restarted successor's channel (M_PEER_NEW); the role exits when the parent's
 * channel closes or on SIGTERM. */
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "lib/ev.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include "lib/msg.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* qp.c is written separately: until it is linked in, its listeners just close */
void qpd_init(void) __attribute__((weak));
void qpd_accept(int fd, const struct sockaddr *peer, socklen_t len) __attribute__((weak));

#define CTL_MAXCONN      64        /* per kind of listener */
#define CTL_MAXPERKEY    16        /* per client address (TCP) or uid (UNIX sockets) */
#define CTL_NORIGHTS     16        /* admin socket: peers without rights, in all ... */
#define CTL_NORIGHTS_KEY 4         /* ... and per uid */
#define CTL_TABLE        (K_N * CTL_MAXCONN + CTL_NORIGHTS + CTL_MAXCONN)
#define CTL_ACCEPT_BURST 32
#define CTL_MAXHANDLERS  16

enum ctl_kind { K_ADMIN = 0, K_MAILQ, K_QP, K_METRICS, K_N };

static void ctl_qp(int fd, const struct sockaddr *sa, socklen_t sl)
{
	if (qpd_accept)
		qpd_accept(fd, sa, sl);
	else
		close(fd);
}

static const struct ctl_kinddef {
	const char *name;            /* cfg_listen kind ("" for the admin socket) */
	void (*accept)(int fd, const struct sockaddr *sa, socklen_t sl);
} ctl_kinds[K_N] = {
	[K_ADMIN] = { "", NULL },                 /* admin_accept, with the peer's rights */
	[K_MAILQ] = { "mailq", mailq2d_accept },
	[K_QP] = { "qp", ctl_qp },
	[K_METRICS] = { "metrics", metrics_accept },
};

struct ctl_pending {
	struct hnode h;              /* key = frame id */
	enum role peer;
	control_reply_fn cb;
	void *arg;
};

struct ctl_listener { int fd, kind; struct ev *ev; };
struct ctl_conn {
	int fd, kind, norights;      /* norights: an admin peer without rights (own pool) */
	dev_t dev;
	ino_t ino;
	char key[INET6_ADDRSTRLEN + 8];  /* client address, or "uid N" */
};
struct ctl_handler { uint32_t type; void (*fn)(struct msg_reader *r, int fd); };

static struct {
	struct config *cfg;
	struct chan *peer[R_NROLES];
	int up[R_NROLES];
	struct hmap pending;
	uint32_t nextid;
	struct ev *lost, *resume, *sigterm, *sigint;
	struct ctl_handler on[CTL_MAXHANDLERS];
	size_t non;
	struct ctl_listener lst[CFG_MAXLISTEN];
	int nl;
	struct ctl_conn conns[CTL_TABLE];
	size_t nconns;
	struct log_limit refused[K_N];
} ctl;

const struct config *control_cfg(void) { return ctl.cfg; }

/* ---- requests and replies ------------------------------------------------------------------ */

static uint32_t ctl_newid(void)
{
	do {
		if (++ctl.nextid == 0)
			ctl.nextid = 1;
	} while (hmap_get(&ctl.pending, ctl.nextid));
	return ctl.nextid;
}

void control_ask(enum role peer, struct msg *m, control_reply_fn cb, void *arg)
{
	struct ctl_pending *p = xcalloc(1, sizeof *p);
	p->h.key = ctl_newid();
	p->peer = peer;
	p->cb = cb;
	p->arg = arg;
	hmap_put(&ctl.pending, &p->h);
	m->id = (uint32_t)p->h.key;
	if (peer > R_PARENT && peer < R_NROLES && ctl.up[peer]) {
		chan_send(ctl.peer[peer], m);
		return;
	}
	msg_discard(m);
	ev_add(ctl.lost, 0);                    /* answered "peer gone" from the loop */
}

void control_send(enum role peer, struct msg *m)
{
	if (peer >= 0 && peer < R_NROLES && ctl.up[peer])
		chan_send(ctl.peer[peer], m);
	else
		msg_discard(m);
}

void control_cancel(void *arg)
{
	for (;;) {
		struct hnode *n = NULL;
		size_t b = 0;
		while ((n = hmap_next(&ctl.pending, &b, n)))
			if (((struct ctl_pending *)n)->arg == arg)
				break;
		if (!n)
			return;
		free(hmap_del(&ctl.pending, n->key));
	}
}

void control_on(uint32_t type, void (*fn)(struct msg_reader *r, int fd))
{
	if (ctl.non == CTL_MAXHANDLERS)
		log_fatal("event=too_many_handlers type=%u", type);
	ctl.on[ctl.non++] = (struct ctl_handler){ type, fn };
}

/* one pending request on a peer that is down, or NULL */
static struct ctl_pending *ctl_find_lost(void)
{
	struct hnode *n = NULL;
	size_t b = 0;
	while ((n = hmap_next(&ctl.pending, &b, n))) {
		struct ctl_pending *p = (struct ctl_pending *)n;
		if (p->peer <= R_PARENT || p->peer >= R_NROLES || !ctl.up[p->peer])
			return p;
	}
	return NULL;
}

/* answer "peer gone" one at a time: a callback may cancel or add requests */
static void ctl_lost(int fd, short what, void *arg)
{
	struct ctl_pending *p;
	while ((p = ctl_find_lost())) {
		hmap_del(&ctl.pending, p->h.key);
		p->cb(p->arg, 0, NULL, -1);
		free(p);
	}
}

static void ctl_peer_new(struct msg_reader *r, int fd);

static void ctl_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd,
                     void *arg)
{
	enum role peer = (enum role)(intptr_t)arg;
	if (peer == R_PARENT && type == M_PEER_NEW) {
		ctl_peer_new(r, fd);
		return;
	}
	for (size_t i = 0; i < ctl.non; i++)
		if (ctl.on[i].type == type) {
			ctl.on[i].fn(r, fd);
			return;
		}
	struct ctl_pending *p = (struct ctl_pending *)hmap_get(&ctl.pending, id);
	if (!p || p->peer != peer) {
		log_debug("event=stale_reply peer=%s type=%u id=%u", chan_peer(c), type, id);
		if (fd >= 0)
			close(fd);
		return;
	}
	hmap_del(&ctl.pending, p->h.key);
	p->cb(p->arg, type, r, fd);
	free(p);
}

static void ctl_closed(struct chan *c, void *arg)
{
	enum role peer = (enum role)(intptr_t)arg;
	if (peer == R_PARENT) {
		log_info("event=parent_gone; exiting");
		exit(0);
	}
	if (role_peer_lost(c) < 0)
		exit(1);
	ctl.up[peer] = 0;
	ev_add(ctl.lost, 0);
}

/* A restarted queue, scheduler, mta or lookup: what was asked of the old one is answered "peer
 * gone" first, then requests go to the new channel. */
static void ctl_peer_new(struct msg_reader *r, int fd)
{
	int peer = role_peer_new(R_CONTROL, r, fd);
	if (peer < 0)
		return;
	if (peer != R_QUEUE && peer != R_SCHED && peer != R_MTA && peer != R_LOOKUP) {
		log_warn("event=unexpected_peer peer=%s", role_name(peer));
		close(fd);
		return;
	}
	if (ctl.up[peer])
		log_warn("event=peer_lost peer=%s reason=replaced", role_name(peer));
	ctl.up[peer] = 0;
	ev_del(ctl.lost);
	ctl_lost(-1, 0, NULL);
	chan_free(ctl.peer[peer]);
	ctl.peer[peer] = chan_new(fd, role_name(peer), ctl_recv, ctl_closed, (void *)(intptr_t)peer);
	ctl.up[peer] = 1;
	log_info("event=peer_new peer=%s", role_name(peer));
}

/* ---- listeners ---------------------------------------------------------------------------- */

/* The live-connection registry behind the limits. Entries whose fd was closed (or reused for
 * another socket: a different inode) are dropped here, so the modules need not report
 * closes. Limits: per kind CTL_MAXCONN, per client address or uid CTL_MAXPERKEY; on the admin
 * socket the rights are checked first (SO_PEERCRED): peers without rights share a small pool
 * of their own (and admin.c gives them a short idle timeout), and uid 0 is never refused for
 * the total, so no one can lock root out by holding connections. */
static void ctl_prune(void)
{
	for (size_t i = 0; i < ctl.nconns;) {
		struct stat st;
		struct ctl_conn *k = &ctl.conns[i];
		if (fstat(k->fd, &st) < 0 || st.st_ino != k->ino || st.st_dev != k->dev)
			*k = ctl.conns[--ctl.nconns];
		else
			i++;
	}
}

static unsigned ctl_count(int kind, int norights, const char *key)
{
	unsigned n = 0;
	for (size_t i = 0; i < ctl.nconns; i++) {
		const struct ctl_conn *k = &ctl.conns[i];
		n += k->kind == kind && k->norights == norights && (!key || strcmp(k->key, key) == 0);
	}
	return n;
}

/* NULL if the connection may stay, else why not */
static const char *ctl_admit(int kind, int norights, const char *key, int root)
{
	ctl_prune();
	if (ctl.nconns == CTL_TABLE)
		return "table_full";
	unsigned total = norights ? CTL_NORIGHTS : CTL_MAXCONN;
	unsigned perkey = norights ? CTL_NORIGHTS_KEY : CTL_MAXPERKEY;
	if (!root && ctl_count(kind, norights, NULL) >= total)
		return "too_many_connections";
	if (ctl_count(kind, norights, key) >= perkey)
		return strncmp(key, "uid ", 4) == 0 ? "too_many_from_uid" : "too_many_from_address";
	return NULL;
}

static int ctl_register(int fd, int kind, int norights, const char *key)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	struct ctl_conn *k = &ctl.conns[ctl.nconns++];
	*k = (struct ctl_conn){ fd, kind, norights, st.st_dev, st.st_ino, "" };
	snprintf(k->key, sizeof k->key, "%s", key);
	return 0;
}

/* the key a connection is counted under: the client's address, or the uid on a UNIX socket */
static void ctl_peer_key(int fd, const struct sockaddr_storage *ss, char *key, size_t sz)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, key, (socklen_t)sz);
	else if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], key, (socklen_t)sz);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &s6->sin6_addr, key, (socklen_t)sz);
	else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
		snprintf(key, sz, "uid %lu", (unsigned long)cr.uid);
	else
		snprintf(key, sz, "unknown");
}

static void ctl_listen_set(int on)
{
	for (int i = 0; i < ctl.nl; i++)
		if (on)
			ev_add(ctl.lst[i].ev, -1);
		else
			ev_del(ctl.lst[i].ev);
}

static void ctl_resume(int fd, short what, void *arg) { ctl_listen_set(1); }

/* rights (admin) and limits first, then the protocol module gets the socket */
static void ctl_admit_one(int fd, int kind, const struct sockaddr_storage *ss, socklen_t sl)
{
	char key[INET6_ADDRSTRLEN + 8];
	uid_t uid = (uid_t)-1;
	int rights = kind == K_ADMIN ? admin_rights(fd, &uid) : 1;
	if (kind == K_ADMIN)
		snprintf(key, sizeof key, "uid %lu", (unsigned long)uid);
	else
		ctl_peer_key(fd, ss, key, sizeof key);
	const char *why = ctl_admit(kind, rights == 0, key, kind == K_ADMIN && uid == 0);
	if (why || ctl_register(fd, kind, rights == 0, key) < 0) {
		unsigned long long rep;
		if (log_limit(&ctl.refused[kind], 10, &rep))
			log_warn("event=refused kind=%s peer=\"%s\" reason=%s repeated=%llu",
			         kind == K_ADMIN ? "admin" : ctl_kinds[kind].name, key,
			         why ? why : "fstat_failed", rep);
		close(fd);
		return;
	}
	if (kind == K_ADMIN)
		admin_accept(fd, rights, uid);
	else
		ctl_kinds[kind].accept(fd, (const struct sockaddr *)ss, sl);
}

static void ctl_accept(int lfd, short what, void *arg)
{
	struct ctl_listener *l = arg;
	for (int k = 0; k < CTL_ACCEPT_BURST; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn("event=accept_paused errno=%d", errno);
				ctl_listen_set(0);
				ev_add(ctl.resume, 1000);
			}
			return;
		}
		ctl_admit_one(fd, l->kind, &ss, sl);
	}
}

static int ctl_kind_of(int idx)
{
	if (idx < 0)
		return K_ADMIN;
	if (idx >= ctl.cfg->nlisten)
		return -1;
	for (int k = K_MAILQ; k < K_N; k++)
		if (strcmp(ctl.cfg->listen[idx].kind, ctl_kinds[k].name) == 0)
			return k;
	return -1;
}

static void ctl_listeners(struct role_ctx *ctx)
{
	for (int i = 0; i < ctx->nlisten && i < CFG_MAXLISTEN; i++) {
		int fd = ctx->listen[i], kind = ctl_kind_of(ctx->listen_kind[i]);
		if (kind < 0) {
			log_warn("event=listener_ignored index=%d", ctx->listen_kind[i]);
			close(fd);
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		struct ctl_listener *l = &ctl.lst[ctl.nl++];
		l->fd = fd;
		l->kind = kind;
		l->ev = ev_new(fd, EV_R | EV_PERSIST, ctl_accept, l);
		ev_add(l->ev, -1);
		log_info("event=listening kind=%s", kind == K_ADMIN ? "admin" : ctl_kinds[kind].name);
	}
}

/* ---- main ---------------------------------------------------------------------------------- */

static void ctl_signal(int sig, short what, void *arg)
{
	log_info("event=shutdown reason=%s", sig == SIGTERM ? "sigterm" : "sigint");
	ev_exit();
}

static void ctl_peers(struct role_ctx *ctx)
{
	static const enum role peers[] = { R_PARENT, R_QUEUE, R_SCHED, R_MTA, R_LOOKUP };
	for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
		enum role p = peers[i];
		if (ctx->peer[p] < 0)
			continue;
		ctl.peer[p] = chan_new(ctx->peer[p], role_name(p), ctl_recv, ctl_closed, (void *)(intptr_t)p);
		ctl.up[p] = 1;
	}
}

int control_main(struct role_ctx *ctx)
{
	ctl.cfg = ctx->cfg;
	ev_init();
	signal(SIGPIPE, SIG_IGN);
	hmap_init(&ctl.pending);
	ctl.lost = ev_new(-1, 0, ctl_lost, NULL);
	ctl.resume = ev_new(-1, 0, ctl_resume, NULL);
	ctl.sigterm = ev_signal(SIGTERM, ctl_signal, NULL);
	ctl.sigint = ev_signal(SIGINT, ctl_signal, NULL);
	ev_add(ctl.sigterm, -1);
	ev_add(ctl.sigint, -1);
	ctl_peers(ctx);
	mailq2d_init();
	if (qpd_init)
		qpd_init();
	ctl_listeners(ctx);
	log_info("event=control_ready listeners=%d queue=%d scheduler=%d mta=%d", ctl.nl,
	         ctl.up[R_QUEUE], ctl.up[R_SCHED], ctl.up[R_MTA]);
	ev_run();
	for (int i = 0; i < R_NROLES; i++)
		if (ctl.peer[i] && ctl.up[i])
			chan_flush_blocking(ctl.peer[i]);
	log_info("event=control_exit");
	return 0;
}
