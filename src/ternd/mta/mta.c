/* mta — the outbound SMTP role (MMDF's smtp channel, qmail-remote). For each M_DELIVER
 * (ternd/dreq.h) from the queue (one message, one destination, n recipients) it finds the addresses
 * (M_MX_RESOLVE to lookup: MX for a domain, A/AAAA for "name:port", none for a literal),
 * delivers through a connection of that destination (a new one, or an idle one reused after
 * RSET) and answers one M_DELIVERED with a result per recipient — always, also when the
 * connection dies half way (every unfinished recipient: D_TEMP).
 * Owns: destinations (their idle connections), DNS requests in flight, qmail-tcpto's table.
 * Concurrency per destination is the scheduler's alone (doc/ARCHITECTURE.md, "Scheduler"):
 * each job it is handed takes an idle connection of its destination or opens a new one. Never touches the spool:
 * the message arrives as a read-only fd. Trusts: the queue's jobs after validation; lookup's
 * answers after validation; nothing from the network (mta_session and the engine check it);
 * the parent for a restarted peer's channel (M_PEER_NEW). When lookup dies, the MX lookups
 * waiting on it fail as temporary (their jobs are deferred) and connections stay open; the
 * parent's channel closing ends the role.
 *
 * Destination ("host" of the job):  "[1.2.3.4]", "[IPv6:::1]:2525"  literal, no DNS;
 * "name:port" (smtproutes)  A/AAAA of name (mode 1);  "domain"  MX, port 25 (mode 0).
 * A job's channel is "smtp", "qmqp" (QMQP to qmqpservers, mta_qmqp.c) or "cluster" (a
 * forward to another node of the cluster, host = its mailHost as a relay): destinations are
 * per (channel, host); a cluster job is refused at ldapclusterhops X-Tern-Cluster lines and
 * its SIZE counts the one it adds (mta_cluster.c, CLUSTER.md). The word is looked up once in
 * the channel table (mail/channel.h): a row of transport smtp, qmqp or cluster gives enum
 * mta_channel; any other word (not in the table, or "local") is logged and the job deferred.
 * A job of a row of transport lmtp (doc/LMTP.md) speaks LMTP to its host read as lmtp's
 * nexthop: "unix:/PATH" (an AF_UNIX stream socket under lmtpsocketdirs, no DNS),
 * "[addr]"[":port"] (port 24) or "name:port" (A/AAAA, mode 1); a bare domain (a transports
 * entry without nexthop) is refused, temporarily: LMTP has no MX. Connections are reused as
 * SMTP's are; no STARTTLS and no AUTH. */
#include "ternd/mta/mta.h"
#include "ternd/mta/mta_session.h"
#include "ternd/mta/mta_qmqp.h"
#include "ternd/mta/mta_cluster.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "ternd/role.h"
#include "ternd/sandbox.h"
#include "lib/ev.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/tls.h"
#include "mail/cluster.h"
#include "mail/tlspolicy.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* transactions per connection, idle wait: the keys smtpreusecount, smtpreusetime (how many
 * connections one destination gets is the scheduler's window, capped by the row's perhost) */
#define MTA_CONN_MAXMSGS  ((size_t)cfg->smtpreusecount)
#define MTA_IDLE_MS       ((long)cfg->smtpreusetime * 1000)
#define MTA_REUSE_TRIES   2         /* a job may meet a dead reused connection this often */
#define MTA_MAXADDRS      64        /* addresses tried per delivery */
#define MTA_DEST_BUCKETS  1024
#define MTA_SCAN_CHUNK    65536
#define MTA_STOP_MS       3000      /* SIGTERM: how long QUITs may wait for their reply */

enum { DEST_MX = 0, DEST_NAME = 1, DEST_LITERAL = 2, DEST_BAD = 3, DEST_UNIX = 4 };
#define MTA_LMTP_PORT 24            /* lmtp's "[addr]" without a port (Postfix's default) */

struct mta_dest {
	struct mta_dest *hnext;
	char *host;
	enum mta_channel channel;       /* SMTP or CLUSTER: a cluster's own connections (CLUSTER.md) */
	int mode, port;
	char name[256];                 /* host name, literal, or (DEST_UNIX) the socket's path */
	const char *bad;                /* DEST_BAD: why, for the diagnostic (NULL: unparsable) */
	size_t nconn;                   /* connections open or being set up (DNS included) */
	struct mta_session **idle;
	size_t nidle, capidle;
	struct ev *kick;                /* forgets the destination once unused */
};

struct mta_dnsreq { struct hnode h; struct mta_job *j; };

static struct config *cfg;

static struct chan *ch_queue, *ch_lookup, *ch_parent, *ch_control;
static int lookup_up;               /* 0 from lookup's death until its replacement arrives */
static struct ev *lost_ev;
static struct mta_dest *dests[MTA_DEST_BUCKETS];
static struct hmap dnsreqs;
static uint32_t dns_seq;
static int stopping;
static struct ev *exit_ev;
static struct tls_ctx *tls_client;             /* made before the privilege drop */
static struct tlspolicy_tables *tlsp;          /* tlsdestinations, smtpauth: the same */

static void mta_dispatch(struct mta_job *j);
static void mta_exit(void);

/* ---- tcpto ---------------------------------------------------------------------------------- */

struct mta_tcpto { char addr[INET6_ADDRSTRLEN]; unsigned count; time_t last; };
static struct mta_tcpto tcpto[MTA_TCPTO_MAX];
static size_t ntcpto;

static struct mta_tcpto *mta_tcpto_find(const char *addr)
{
	for (size_t i = 0; i < ntcpto; i++)
		if (strcmp(tcpto[i].addr, addr) == 0)
			return &tcpto[i];
	return NULL;
}

int mta_tcpto_skip(const char *addr, time_t now)
{
	const struct mta_tcpto *e = mta_tcpto_find(addr);
	return e && e->count >= MTA_TCPTO_MIN && now - e->last < MTA_TCPTO_SECS;
}

void mta_tcpto_note(const char *addr, int timedout, time_t now)
{
	struct mta_tcpto *e = mta_tcpto_find(addr);
	if (!timedout) {
		if (e)
			*e = tcpto[--ntcpto];
		return;
	}
	if (!e && ntcpto < MTA_TCPTO_MAX)
		e = &tcpto[ntcpto++];
	else if (!e) {
		e = &tcpto[0];
		for (size_t i = 1; i < ntcpto; i++)
			if (tcpto[i].last < e->last)
				e = &tcpto[i];
	}
	if (strcmp(e->addr, addr) != 0) {
		snprintf(e->addr, sizeof e->addr, "%s", addr);
		e->count = 0;
	}
	e->count += e->count < 255;
	e->last = now;
}

void mta_tcpto_dump(struct buf *out, time_t now)
{
	for (size_t i = 0; i < ntcpto; i++)
		buf_printf(out, "%s timed out %lld seconds ago; # recent timeouts: %u%s\n",
		           tcpto[i].addr, (long long)(now - tcpto[i].last), tcpto[i].count,
		           mta_tcpto_skip(tcpto[i].addr, now) ? "; skipped" : "");
}

void mta_tcpto_clear(void) { ntcpto = 0; }

/* an address we may put between < and > in a command: no control bytes, bounded */
static int mta_addr_ok(const char *a, int empty_ok)
{
	size_t n = strlen(a);
	if ((!n && !empty_ok) || n > 1000)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f || *a == '<' || *a == '>')
			return 0;
	return 1;
}

/* ---- results -------------------------------------------------------------------------------- */

static const char *mta_event(int st)
{
	return st == D_OK ? "delivered" : st == D_PERM ? "failed" : "deferred";
}

/* a deferral says whose trouble it is (scope=rcpt: this recipient's, scope=site: the
 * destination's; ternd/dreq.h) */
static void mta_log_rcpt(const struct mta_job *j, const char *rcpt, int st, const char *diag,
                         const char *remote, int scope)
{
	char qr[300], qd[SMTPC_DIAG_MAX + 200];
	log_info("event=%s id=%016llx job=%llu rcpt=<%s> remote=%s reply=\"%s\" %s%s", mta_event(st),
	         (unsigned long long)j->msgid, (unsigned long long)j->job,
	         log_quote(qr, sizeof qr, rcpt, strlen(rcpt)), *remote ? remote : "-",
	         log_quote(qd, sizeof qd, diag, strlen(diag)), j->tls[0] ? j->tls : "tls=-",
	         st != D_TEMP ? "" : scope == DSCOPE_RCPT ? " scope=rcpt" : " scope=site");
}

static void mta_job_free(struct mta_job *j)
{
	smtpc_txn_reset(&j->txn);
	if (j->fd >= 0)
		close(j->fd);
	for (size_t i = 0; i < j->txn.n; i++)
		free((char *)j->txn.rcpt[i].addr);
	free(j->txn.rcpt);
	free(j->idx);
	free(j->badidx);
	free(j->host);
	free(j->sender);
	free(j);
}

/* the one M_DELIVERED of a job (ternd/dreq.h), a result for every recipient; frees it. A
 * temporary failure is the recipient's when the server said so about that recipient alone
 * (its RCPT reply), else the destination's (no connection, 421, MAIL or DATA refused). */
static void mta_report(struct mta_job *j)
{
	struct msg out;
	dres_begin(&out, j->job, j->msgid, j->txn.n + j->nbad);
	for (size_t i = 0; i < j->txn.n; i++) {
		const struct smtpc_rcpt *x = &j->txn.rcpt[i];
		int st = x->status == SMTPC_OPEN ? D_TEMP : x->status;
		const char *diag = x->diag ? x->diag : "internal error: no result";
		struct dres r = { .idx = j->idx[i], .st = st, .diag = diag, .remote = j->remote,
		                  .scope = x->own ? DSCOPE_RCPT : DSCOPE_SITE };
		dres_put(&out, &r);
		mta_log_rcpt(j, x->addr, st, diag, j->remote, r.scope);
	}
	const char *bad = mta_addr_ok(j->sender, 1) ? "malformed recipient address (#5.1.3)"
	                                            : "malformed sender address (#5.1.7)";
	for (size_t i = 0; i < j->nbad; i++) {
		struct dres r = { .idx = j->badidx[i], .st = D_PERM, .diag = bad, .remote = "" };
		dres_put(&out, &r);
		log_info("event=failed id=%016llx job=%llu idx=%llu reply=\"%s\"",
		         (unsigned long long)j->msgid, (unsigned long long)j->job,
		         (unsigned long long)j->badidx[i], bad);
	}
	chan_send(ch_queue, &out);
	mta_job_free(j);
}

/* every recipient gets st and diag without any SMTP (DNS failures, shutdown) */
static void mta_finish_all(struct mta_job *j, int st, const char *diag)
{
	smtpc_txn_reset(&j->txn);
	for (size_t i = 0; i < j->txn.n; i++) {
		j->txn.rcpt[i].status = st;
		j->txn.rcpt[i].own = 0;          /* the destination's, not the recipient's */
		j->txn.rcpt[i].diag = xstrdup(diag);
	}
	mta_report(j);
}

/* ---- destinations ----------------------------------------------------------------------------- */

static size_t mta_dest_hash(const char *h)
{
	size_t v = 5381;
	for (; *h; h++)
		v = v * 33 + (unsigned char)*h;
	return v % MTA_DEST_BUCKETS;
}

/* "[literal]"[":port"] | name":"port | domain */
static int mta_dest_parse(struct mta_dest *d, const char *host)
{
	const char *name = host, *end = host + strlen(host), *colon = strrchr(host, ':');
	uint64_t port = 25;
	d->mode = DEST_MX;
	if (host[0] == '[') {
		const char *rb = strchr(host, ']');
		if (!rb || (rb[1] && rb[1] != ':'))
			return -1;
		name = host + 1;
		end = rb;
		colon = rb[1] ? rb + 1 : NULL;
		if (end - name > 5 && str_ncasecmp(name, "IPv6:", 5) == 0)
			name += 5;
		d->mode = DEST_LITERAL;
	} else if (colon) {
		end = colon;
		d->mode = DEST_NAME;
	}
	if (colon && str_to_u64(colon + 1, 1, 65535, &port) < 0)
		return -1;
	if (end <= name || (size_t)(end - name) >= sizeof d->name)
		return -1;
	memcpy(d->name, name, (size_t)(end - name));
	d->name[end - name] = '\0';
	d->port = (int)port;
	struct in6_addr a6;
	if (d->mode == DEST_LITERAL && inet_pton(AF_INET, d->name, &a6) != 1 &&
	    inet_pton(AF_INET6, d->name, &a6) != 1)
		return -1;
	return 0;
}

/* why an lmtp unix:/PATH may not be used, or NULL: absolute, no empty, "." or ".."
 * component, fits sun_path, and under one of lmtpsocketdirs (blank-separated) */
static const char *mta_lmtp_path_check(const char *path)
{
	if (path[0] != '/' || strlen(path) >= sizeof ((struct sockaddr_un *)0)->sun_path)
		return "the socket path must be absolute and shorter than 108 bytes";
	for (const char *p = path; *p == '/'; ) {
		const char *e = strchrnul(p + 1, '/');
		size_t n = (size_t)(e - p - 1);
		if (n == 0 || (n == 1 && p[1] == '.') || (n == 2 && p[1] == '.' && p[2] == '.'))
			return "the socket path must have no empty, '.' or '..' component";
		p = e;
	}
	const char *dirs = cfg->lmtpsocketdirs ? cfg->lmtpsocketdirs : "";
	while (*dirs) {
		size_t n = strcspn(dirs, " \t"), l = n;
		while (l > 1 && dirs[l - 1] == '/')
			l--;
		if (l && dirs[0] == '/' && (l == 1 || (strncmp(path, dirs, l) == 0 && path[l] == '/')))
			return NULL;
		dirs += n;
		dirs += strspn(dirs, " \t");
	}
	return "the socket is not under lmtpsocketdirs";
}

/* lmtp's nexthop (see the top): 0, or -1 with d->bad set when there is more to say */
static int mta_dest_parse_lmtp(struct mta_dest *d, const char *host)
{
	if (strncmp(host, "unix:", 5) == 0) {
		if ((d->bad = mta_lmtp_path_check(host + 5)) != NULL)
			return -1;
		snprintf(d->name, sizeof d->name, "%s", host + 5);
		d->mode = DEST_UNIX;
		return 0;
	}
	if (host[0] != '[' && !strchr(host, ':')) {
		d->bad = "lmtp needs a nexthop unix:/PATH, [ADDR]:PORT or NAME:PORT in the "
		         "transports entry (LMTP has no MX)";
		return -1;
	}
	if (mta_dest_parse(d, host) < 0)
		return -1;
	if (d->mode == DEST_LITERAL && !strchr(strchr(host, ']'), ':'))
		d->port = MTA_LMTP_PORT;
	return 0;
}

static void mta_dest_kick_cb(int fd, short what, void *arg);

/* a destination is (channel, host), as the scheduler's threads: a connection that greeted
 * as a cluster node never carries an ordinary delivery, nor the other way round */
static struct mta_dest *mta_dest_get(const char *host, enum mta_channel channel)
{
	size_t h = mta_dest_hash(host);
	for (struct mta_dest *d = dests[h]; d; d = d->hnext)
		if (strcmp(d->host, host) == 0 && d->channel == channel)
			return d;
	struct mta_dest *d = xcalloc(1, sizeof *d);
	d->host = xstrdup(host);
	d->channel = channel;
	if ((channel == MTA_CH_LMTP ? mta_dest_parse_lmtp(d, host) : mta_dest_parse(d, host)) < 0)
		d->mode = DEST_BAD;
	d->kick = ev_new(-1, 0, mta_dest_kick_cb, d);
	d->hnext = dests[h];
	dests[h] = d;
	return d;
}

static void mta_dest_gc(struct mta_dest *d)
{
	if (d->nconn || d->nidle)
		return;
	struct mta_dest **pp = &dests[mta_dest_hash(d->host)];
	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	ev_free(d->kick);
	free(d->idle);
	free(d->host);
	free(d);
}

static void mta_dest_kick(struct mta_dest *d) { ev_add(d->kick, 0); }

/* forget an unused destination (not from inside its own callbacks) */
static void mta_dest_kick_cb(int fd, short what, void *arg) { mta_dest_gc(arg); }

static void mta_dest_unidle(struct mta_dest *d, struct mta_session *s)
{
	for (size_t i = 0; i < d->nidle; i++)
		if (d->idle[i] == s) {
			d->idle[i] = d->idle[--d->nidle];
			return;
		}
}

static struct mta_session *mta_dest_take_idle(struct mta_dest *d)
{
	while (d->nidle) {
		struct mta_session *s = d->idle[--d->nidle];
		if (mta_session_idle(s))
			return s;
	}
	return NULL;
}

/* ---- DNS ------------------------------------------------------------------------------------------ */

static const struct mta_session_cb mta_cb;

/* the TLS policy and the credentials of the destination go with its session */
static void mta_start(struct mta_job *j, const struct mta_addr *addrs, size_t n)
{
	struct mta_dest *d = j->dest;
	struct mta_session_conf conf;
	char err[200];
	memset(&conf, 0, sizeof conf);
	conf.cfg = cfg;
	conf.cb = &mta_cb;
	conf.tls = tls_client;
	conf.channel = d->channel;
	conf.pol.level = TLSP_NONE;
	if (d->channel == MTA_CH_LMTP) {         /* no STARTTLS, no AUTH (doc/LMTP.md) */
		conf.tls = NULL;
		mta_session_start(&conf, d->host, addrs, n, j, d);
		return;
	}
	if (tlsp && tlspolicy_lookup(tlsp, d->host, &conf.pol, err, sizeof err) < 0) {
		d->nconn--;
		mta_finish_all(j, D_TEMP, "bad TLS policy for this destination (#4.3.5)");
		mta_dest_kick(d);
		return;
	}
	if (tlsp && tlspolicy_auth(tlsp, d->host, &conf.user, &conf.pass))
		log_debug("event=auth_credentials host=%s user=%s", d->host, conf.user);
	mta_session_start(&conf, d->host, addrs, n, j, d);
}

static void mta_dns_failed(struct mta_job *j, uint64_t st, const char *diag);

static void mta_resolve(struct mta_job *j)
{
	struct mta_dest *d = j->dest;
	if (d->mode == DEST_UNIX) {               /* lmtp's unix:/PATH: no DNS */
		struct mta_addr a;
		memset(&a, 0, sizeof a);
		snprintf(a.name, sizeof a.name, "%s", d->name);
		snprintf(a.addr, sizeof a.addr, "unix");
		a.unixsock = 1;
		mta_start(j, &a, 1);
		return;
	}
	if (d->mode == DEST_LITERAL) {
		struct mta_addr a;
		memset(&a, 0, sizeof a);
		snprintf(a.name, sizeof a.name, "%s", d->name);
		snprintf(a.addr, sizeof a.addr, "%.45s", d->name);
		a.port = d->port;
		mta_start(j, &a, 1);
		return;
	}
	if (!lookup_up) {
		mta_dns_failed(j, MX_TEMP, "lookup is restarting");
		return;
	}
	struct mta_dnsreq *q = xcalloc(1, sizeof *q);
	j->dnsid = ++dns_seq ? dns_seq : ++dns_seq;
	q->h.key = j->dnsid;
	q->j = j;
	hmap_put(&dnsreqs, &q->h);
	struct msg out;
	msg_init(&out, M_MX_RESOLVE, j->dnsid);
	msg_str(&out, d->name);
	msg_u64(&out, d->mode == DEST_NAME ? 1 : 0);
	chan_send(ch_lookup, &out);
}

/* a DNS answer that gives no address: the job ends here and frees its slot */
static void mta_dns_failed(struct mta_job *j, uint64_t st, const char *diag)
{
	struct mta_dest *d = j->dest;
	char text[700];
	char qd[300];
	log_quote(qd, sizeof qd, diag, strlen(diag));
	if (st == MX_NODOMAIN)
		snprintf(text, sizeof text, "Sorry, I couldn't find any host named %s. (#5.1.2)",
		         d->name);
	else if (st == MX_NULLMX)
		snprintf(text, sizeof text, "Sorry, %s does not accept mail (null MX). (#5.1.10)",
		         d->name);
	else
		snprintf(text, sizeof text, "Sorry, I couldn't look up %s: %s. (#4.4.3)", d->name,
		         *diag ? qd : "temporary DNS failure");
	log_info("event=dns_failed host=%s status=%llu diag=\"%s\"", d->host,
	         (unsigned long long)st, qd);
	d->nconn--;
	mta_finish_all(j, st == MX_NODOMAIN || st == MX_NULLMX ? D_PERM : D_TEMP, text);
	mta_dest_kick(d);
}

static size_t mta_dns_addrs(struct msg_reader *r, uint64_t n, int port, struct mta_addr *a)
{
	size_t k = 0;
	for (uint64_t i = 0; i < n && !r->err; i++) {
		(void)msg_get_u64(r);
		const char *name = msg_get_str(r), *addr = msg_get_str(r);
		struct in6_addr tmp;
		if (k == MTA_MAXADDRS || (inet_pton(AF_INET, addr, &tmp) != 1 &&
		                          inet_pton(AF_INET6, addr, &tmp) != 1))
			continue;
		snprintf(a[k].name, sizeof a[k].name, "%s", *name ? name : addr);
		snprintf(a[k].addr, sizeof a[k].addr, "%s", addr);
		a[k++].port = port;
	}
	return k;
}

static void mta_on_mx_result(uint32_t id, struct msg_reader *r)
{
	struct mta_dnsreq *q = (struct mta_dnsreq *)hmap_del(&dnsreqs, id);
	if (!q) {
		log_warn("event=unexpected_mx_result id=%u", id);
		return;
	}
	struct mta_job *j = q->j;
	free(q);
	j->dnsid = 0;
	uint64_t st = msg_get_u64(r);
	const char *diag = msg_get_str(r);
	uint64_t n = msg_get_u64(r);
	struct mta_addr *a = xcalloc(MTA_MAXADDRS, sizeof *a);
	size_t k = mta_dns_addrs(r, n, ((struct mta_dest *)j->dest)->port, a);
	if (msg_done(r) < 0) {                   /* the codec logs it (event=ipc_malformed) */
		mta_dns_failed(j, MX_TEMP, "malformed answer from lookup");
	} else if (st == MX_OK && k == 0) {
		mta_dns_failed(j, MX_TEMP, "no usable address");
	} else if (st != MX_OK) {
		mta_dns_failed(j, st == MX_NODOMAIN || st == MX_NULLMX ? st : MX_TEMP, diag);
	} else {
		mta_start(j, a, k);
	}
	free(a);
}

/* ---- jobs ------------------------------------------------------------------------------------------ */

static void mta_dispatch(struct mta_job *j)
{
	struct mta_dest *d = j->dest;
	struct mta_session *s = j->reuse_fail < MTA_REUSE_TRIES ? mta_dest_take_idle(d) : NULL;
	if (s) {
		j->reused = 1;
		mta_session_send(s, j);
	} else {
		d->nconn++;
		j->reused = 0;
		mta_resolve(j);
	}
}

/* 1 if the message has a byte >= 0x80 (BODY=8BITMIME); read in chunks with pread */
static int mta_eightbit(int fd)
{
	unsigned char *b = xmalloc(MTA_SCAN_CHUNK);
	off_t off = 0;
	ssize_t n;
	int found = 0;
	while (!found && ((n = pread(fd, b, MTA_SCAN_CHUNK, off)) > 0 || (n < 0 && errno == EINTR))) {
		for (ssize_t i = 0; i < n && !found; i++)
			found = b[i] >= 0x80;
		off += n > 0 ? n : 0;
	}
	free(b);
	return found;
}

static void mta_job_rcpts(struct mta_job *j, const struct dreq *d)
{
	j->txn.rcpt = xcalloc(d->n ? d->n : 1, sizeof *j->txn.rcpt);
	j->idx = xcalloc(d->n ? d->n : 1, sizeof *j->idx);
	j->badidx = xcalloc(d->n ? d->n : 1, sizeof *j->badidx);
	int sender_ok = mta_addr_ok(j->sender, 1);
	for (size_t i = 0; i < d->n; i++) {
		const char *a = d->r[i].t.address;
		if (!sender_ok || !mta_addr_ok(a, 0)) {
			j->badidx[j->nbad++] = d->r[i].idx;
			continue;
		}
		j->idx[j->txn.n] = d->r[i].idx;
		j->txn.rcpt[j->txn.n++].addr = xstrdup(a);
	}
}

/* a request's channel: 0, or -1 for one the mta does not deliver (not in the channel table,
 * or run by another role) */
static int mta_channel_parse(const char *word, enum mta_channel *ch)
{
	const struct channel_row *r = channel_find(&cfg->channels, word);
	if (!r || channel_role(r) != CHANNEL_MTA)
		return -1;
	*ch = r->transport == CHANNEL_T_QMQP ? MTA_CH_QMQP :
	      r->transport == CHANNEL_T_CLUSTER ? MTA_CH_CLUSTER :
	      r->transport == CHANNEL_T_LMTP ? MTA_CH_LMTP : MTA_CH_SMTP;
	return 0;
}

/* M_DELIVER (ternd/dreq.h): one message, one destination, n recipients */
static void mta_on_deliver(struct msg_reader *r, int fd)
{
	struct dreq d;
	if (dreq_get(r, &d) < 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		if (!r->err)                         /* else the codec logs it */
			log_err("event=bad_message peer=queue type=deliver job=%llu",
			        (unsigned long long)d.job);
		struct msg out;                    /* refused whole: the queue defers its recipients */
		dres_begin(&out, d.job, d.msgid, 0);
		chan_send(ch_queue, &out);
		dreq_free(&d);
		return;
	}
	struct mta_job *j = xcalloc(1, sizeof *j);
	j->fd = fd;
	j->job = d.job;
	j->msgid = d.msgid;
	j->host = xstrdup(d.host);
	j->sender = xstrdup(d.sender);
	j->txn.sender = j->sender;
	j->txn.size = d.size;
	mta_job_rcpts(j, &d);
	if (mta_channel_parse(d.channel, &j->channel) < 0) {
		char q[80];
		log_err("event=unknown_channel job=%llu id=%016llx channel=%s",
		        (unsigned long long)j->job, (unsigned long long)j->msgid,
		        log_quote(q, sizeof q, d.channel, strlen(d.channel)));
		dreq_free(&d);
		mta_finish_all(j, D_TEMP, "unknown delivery channel (#4.3.5)");
		return;
	}
	dreq_free(&d);
	if (j->txn.n == 0 || stopping) {
		if (stopping)
			mta_finish_all(j, D_TEMP, "mta shutting down");
		else
			mta_report(j);                   /* only malformed addresses */
		return;
	}
	if (j->channel == MTA_CH_QMQP) {         /* qmqpservers (mta_qmqp.c) */
		mta_qmqp_start(cfg, j, mta_report);
		return;
	}
	if (j->channel == MTA_CH_CLUSTER && mta_cluster_job(cfg, j) < 0) {
		mta_finish_all(j, D_PERM, CLUSTER_LOOP_DIAG);
		return;
	}
	struct mta_dest *d2 = j->dest = mta_dest_get(j->host, j->channel);
	if (d2->mode == DEST_BAD && j->channel == MTA_CH_LMTP) {
		char diag[600], qh[300];
		snprintf(diag, sizeof diag, "bad lmtp destination %s: %s (#4.3.5)",
		         log_quote(qh, sizeof qh, j->host, strlen(j->host)),
		         d2->bad ? d2->bad : "cannot parse the host");
		log_warn("event=lmtp_bad_destination host=%s reason=\"%s\"", qh,
		         d2->bad ? d2->bad : "cannot parse the host");
		mta_finish_all(j, D_TEMP, diag);
		mta_dest_kick(d2);
		return;
	}
	if (d2->mode == DEST_BAD) {
		mta_finish_all(j, D_TEMP, "bad destination (check smtproutes): cannot parse the host");
		mta_dest_kick(d2);
		return;
	}
	j->txn.eightbit = mta_eightbit(fd);
	mta_dispatch(j);
}

/* ---- session callbacks ---------------------------------------------------------------------------- */

static void mta_sess_done(struct mta_session *s, struct mta_job *j)
{
	if (j->txn.retry && j->reused && !stopping && ++j->reuse_fail <= MTA_REUSE_TRIES) {
		log_info("event=reuse_failed host=%s id=%016llx; retrying on a new connection",
		         j->host, (unsigned long long)j->msgid);
		mta_dispatch(j);
		return;
	}
	mta_report(j);
}

static void mta_sess_idle(struct mta_session *s)
{
	struct mta_dest *d = mta_session_arg(s);
	if (stopping || mta_session_msgs(s) >= MTA_CONN_MAXMSGS) {
		mta_session_quit(s, 0);
		return;
	}
	if (d->nidle == d->capidle) {
		d->capidle = d->capidle ? 2 * d->capidle : 4;
		d->idle = xrealloc(d->idle, d->capidle * sizeof *d->idle);
	}
	d->idle[d->nidle++] = s;
	mta_session_park(s, MTA_IDLE_MS);
}

static void mta_sess_closed(struct mta_session *s)
{
	struct mta_dest *d = mta_session_arg(s);
	mta_dest_unidle(d, s);
	d->nconn--;
	mta_dest_kick(d);
	if (stopping && mta_session_count() == 0)
		mta_exit();
}

static const struct mta_session_cb mta_cb = { mta_sess_done, mta_sess_idle, mta_sess_closed };

/* ---- the role ---------------------------------------------------------------------------------------- */

/* ternctl tcpto / tcpok, through the control role */
static void mta_on_tcpto(struct chan *c, uint32_t id, struct msg_reader *r)
{
	uint64_t op = msg_get_u64(r);
	size_t cleared = 0;
	struct msg out;
	if (msg_done(r) == 0 && op == 1) {
		cleared = ntcpto;
		mta_tcpto_clear();
		log_info("event=tcpok cleared=%zu", cleared);
	}
	msg_init(&out, M_MTA_TCPTO_RESULT, id);
	msg_u64(&out, ntcpto);
	for (size_t i = 0; i < ntcpto; i++) {
		msg_str(&out, tcpto[i].addr);
		msg_u64(&out, (uint64_t)tcpto[i].last);
		msg_u64(&out, tcpto[i].count);
	}
	msg_u64(&out, cleared);
	chan_send(c, &out);
}

/* every MX lookup in flight: a temporary failure (lookup died, or stopping) */
static void mta_dns_fail_all(const char *why)
{
	size_t i = 0;
	struct hnode *n;
	while ((n = hmap_next(&dnsreqs, &i, NULL)) != NULL) {
		struct mta_dnsreq *q = (struct mta_dnsreq *)hmap_del(&dnsreqs, n->key);
		struct mta_job *j = q->j;
		free(q);
		j->dnsid = 0;
		if (stopping) {
			((struct mta_dest *)j->dest)->nconn--;
			mta_finish_all(j, D_TEMP, why);
		} else
			mta_dns_failed(j, MX_TEMP, why);
	}
}

static void mta_lost_cb(int fd, short what, void *arg)
{
	if (!lookup_up)
		mta_dns_fail_all("lookup died");
}

static void mta_on_close(struct chan *c, void *arg);
static void mta_on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd,
                        void *arg);

static void mta_peer_new(struct msg_reader *r, int fd)
{
	int peer = role_peer_new(R_MTA, r, fd);
	struct chan **cp = peer == R_QUEUE ? &ch_queue : peer == R_LOOKUP ? &ch_lookup
	                 : peer == R_CONTROL ? &ch_control : NULL;
	if (peer < 0)
		return;
	if (!cp) {
		log_warn("event=unexpected_peer peer=%s", role_name(peer));
		close(fd);
		return;
	}
	if (peer == R_LOOKUP) {              /* whatever the old lookup was asked is lost */
		lookup_up = 0;
		ev_del(lost_ev);
		mta_dns_fail_all("lookup died");
	}
	chan_free(*cp);
	*cp = chan_new(fd, role_name(peer), mta_on_recv, mta_on_close, NULL);
	lookup_up |= peer == R_LOOKUP;
	log_info("event=peer_new peer=%s", role_name(peer));
}

static void mta_on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd,
                        void *arg)
{
	if (type == M_PEER_NEW && c == ch_parent) {
		mta_peer_new(r, fd);
		return;
	}
	switch (type) {
	case M_DELIVER: mta_on_deliver(r, fd); return;
	case M_MX_RESULT: mta_on_mx_result(id, r); break;
	case M_MTA_TCPTO: mta_on_tcpto(c, id, r); break;
	default: log_err("event=unexpected_message peer=%s type=%u", chan_peer(c), type);
	}
	if (fd >= 0)
		close(fd);
}

static void mta_on_close(struct chan *c, void *arg)
{
	if (c == ch_parent) {
		log_info("event=parent_gone; exiting");
		exit(0);
	}
	if (role_peer_lost(c) < 0)
		exit(1);
	if (c == ch_lookup) {
		lookup_up = 0;
		ev_add(lost_ev, 0);          /* not from here: we may be inside a send */
	}
}

static void mta_exit(void)
{
	chan_flush_blocking(ch_queue);
	ev_exit();
}

static void mta_exit_cb(int fd, short what, void *arg)
{
	mta_session_quit_all(1);
	mta_exit();
}

/* SIGTERM: D_TEMP for every job not finished, QUIT idle connections (waiting up to
 * MTA_STOP_MS for the replies), then exit */
static void mta_on_term(int sig, short what, void *arg)
{
	stopping = 1;
	log_info("event=stopping");
	mta_dns_fail_all("mta shutting down");
	mta_qmqp_stop_all();
	mta_session_quit_all(0);
	if (mta_session_count() == 0)
		mta_exit();
	else
		ev_add(exit_ev, MTA_STOP_MS);        /* then whatever still waits for a 221 */
}

int mta_preinit(struct config *c)
{
	struct cfg_errors errs;
	char err[300];
	memset(&errs, 0, sizeof errs);
	if (tls_init() < 0) {
		log_err("event=tls_init_failed");
		return -1;
	}
	tlsp = tlspolicy_load(c, &errs);
	for (int i = 0; i < errs.n; i++)
		log_err("event=config_error file=%s line=%d error=\"%s\"", errs.e[i].file,
		        errs.e[i].line, errs.e[i].msg);
	if (!tlsp)
		return -1;
	struct tls_conf tc;
	memset(&tc, 0, sizeof tc);
	tc.certfile = *c->clientcert ? c->clientcert : NULL;
	tc.cafile = *c->tlscafile ? c->tlscafile : NULL;   /* tls.c reads the system bundle */
	tc.ciphers = *c->tlsclientciphers ? c->tlsclientciphers : NULL;
	tc.protocols = c->tlsprotocols;
	tls_client = tls_client_new(&tc, err, sizeof err);
	if (!tls_client) {
		log_err("event=tls_client_failed error=\"%s\"", err);
		return -1;
	}
	if (c->lmtpsocketdirs && *c->lmtpsocketdirs)
		sandbox_mta_allow_unix();            /* lmtp's unix:/PATH (doc/LMTP.md) */
	return 0;
}

int mta_main(struct role_ctx *ctx)
{
	cfg = ctx->cfg;
	ev_init();
	hmap_init(&dnsreqs);
	lost_ev = ev_new(-1, 0, mta_lost_cb, NULL);
	ch_queue = chan_new(ctx->peer[R_QUEUE], "queue", mta_on_recv, mta_on_close, NULL);
	if (ctx->peer[R_LOOKUP] >= 0)        /* else it is restarting: M_PEER_NEW brings it */
		ch_lookup = chan_new(ctx->peer[R_LOOKUP], "lookup", mta_on_recv, mta_on_close, NULL);
	lookup_up = ch_lookup != NULL;
	if (ctx->peer[R_PARENT] >= 0)
		ch_parent = chan_new(ctx->peer[R_PARENT], "parent", mta_on_recv, mta_on_close, NULL);
	if (ctx->peer[R_CONTROL] >= 0)
		ch_control = chan_new(ctx->peer[R_CONTROL], "control", mta_on_recv, mta_on_close, NULL);
	exit_ev = ev_new(-1, 0, mta_exit_cb, NULL);
	struct ev *s = ev_signal(SIGTERM, mta_on_term, NULL);
	ev_add(s, -1);
	signal(SIGPIPE, SIG_IGN);
	log_info("event=started helohost=%s timeoutconnect=%llu timeoutremote=%llu smtptls=%s "
	         "clientcert=%s", cfg->helohost, (unsigned long long)cfg->timeoutconnect,
	         (unsigned long long)cfg->timeoutremote, cfg->smtptls,
	         *cfg->clientcert ? "yes" : "no");
	ev_run();
	return 0;
}
