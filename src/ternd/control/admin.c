/* admin — ternctl's control socket (<spool>/ternctl.sock) in the control role: one request
 * line per connection, `COMMAND args…\n`; the reply is body lines (dot-stuffed), a line
 * `.`, then a status line `CODE text` (0 ok, 1 not found or refused, 64 usage,
 * 75 temporary), then the server closes (doc/ADMIN.md). Every answer comes from its owner:
 * the queue (M_Q_LIST, M_Q_READ, M_Q_OP), the scheduler (M_SCHED_SNAPSHOT), the mta
 * (M_MTA_TCPTO) and the lookup role (M_EXPLAIN: verify, ldaplookup — it writes that text
 * itself, src/ternd/lookup/lookup_explain.c); the other texts are formatted by
 * src/mail/mailq2.c.
 * Rights come from SO_PEERCRED / SO_PEERGROUPS: root, the role accounts (`user`,
 * `queueuser`, and whoever runs ternd in development) may change things; members of the
 * queueuser account's primary group may read (until a `controlgroup` key exists); anyone
 * else is refused with a message that says so. control.c checks the rights at accept (via
 * admin_rights) and counts the connection under them; a peer without rights has
 * AD_NORIGHTS_MS to send its line. The connection is an io (src/lib/io.h): the line waits in
 * its input until complete; long answers (a message, a listing) are produced as the output
 * drains (IO_LOWAT) and the session closes once the status line is sent.
 * Owns: the admin sessions. Trusts: the kernel's peer credentials; nothing the client
 * sends (the line is bounded and parsed by a table); the owners' answers after decoding.
 *
 * `ldaplookup -p` is a password oracle: it needs change rights (AR_WRITE), and the checks
 * of all callers together go at most one a second (AD_PW_GAP_MS: a request waits for its
 * turn, refused when it would wait longer than AD_PW_QUEUE_MS); the password (hex on the
 * request line, src/mail/ldapreq.h) is never logged, and the request line, the decoded copy
 * and the M_EXPLAIN frame are zeroed after use (msg_wipe). */
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "mail/envelope.h"
#include "mail/ldapreq.h"
#include "mail/mailq2.h"
#include "lib/ev.h"
#include "lib/io.h"
#include "lib/log.h"
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define AD_MAXLINE   4096
#define AD_IDLE_MS   60000        /* the request line from the connect; then between writes */
#define AD_NORIGHTS_MS 2000       /* a peer without rights: send the line now, or go */
#define AD_LOW       (64 * 1024)  /* refill the output below this */
#define AD_PAGE      200          /* messages per M_Q_LIST */
#define AD_MAXARGS   8
#define AD_PW_GAP_MS   1000       /* ldaplookup -p: one password check a second */
#define AD_PW_QUEUE_MS 10000      /* ... and none that would wait longer than this */

enum { AD_OK = 0, AD_NOTFOUND = 1, AD_USAGE = 64, AD_TEMP = 75 };
enum { AD_V_PERM = 1, AD_V_TEMP = 2 };     /* verify / ldaplookup: the answer's verdict */
enum { AR_NONE = 0, AR_READ = 1, AR_WRITE = 2 };
enum ad_view { AV_TEXT, AV_JSON, AV_QSTAT };

struct ad_sess {
	struct io *io;               /* the connection (src/lib/io.h) */
	int datafd, bol, rights, done;
	int more, asking;            /* listing: pages left / a page requested */
	uid_t uid;
	struct ev *deadline;         /* no progress while io does not wait for the peer */
	enum ad_view view;
	uint64_t off, listed, rcpts;  /* listing progress */
	int op;                      /* enum qop in flight */
	struct ev *pwturn;           /* ldaplookup -p waiting for its turn (AD_PW_GAP_MS) */
	struct msg pwmsg;            /* ... with its M_EXPLAIN (msg_wipe) */
	int pwwait;
	char what[40];               /* the object of the request, for messages */
};

static struct {
	int init;
	uid_t uids[4];
	size_t nuids;
	gid_t group;
	int have_group;
	char groupname[64];
} ad;

static struct buf ad_scratch;    /* dot-stuffed output on its way into an io */

/* ---- rights ---------------------------------------------------------------------------------- */

static void ad_init(void)
{
	const struct config *cfg = control_cfg();
	const char *names[] = { cfg->user, cfg->queueuser };
	ad.init = 1;
	ad.uids[ad.nuids++] = 0;
	ad.uids[ad.nuids++] = geteuid();
	for (size_t i = 0; i < 2; i++) {
		struct passwd *pw = names[i] ? getpwnam(names[i]) : NULL;
		if (pw)
			ad.uids[ad.nuids++] = pw->pw_uid;
		if (pw && i == 1) {
			ad.group = pw->pw_gid;
			ad.have_group = 1;
			struct group *gr = getgrgid(pw->pw_gid);
			snprintf(ad.groupname, sizeof ad.groupname, "%s", gr ? gr->gr_name : "?");
		}
	}
	if (cfg->controlgroup && *cfg->controlgroup) {     /* the controlgroup key wins */
		struct group *gr = getgrnam(cfg->controlgroup);
		ad.have_group = gr != NULL;
		if (gr) {
			ad.group = gr->gr_gid;
			snprintf(ad.groupname, sizeof ad.groupname, "%s", gr->gr_name);
		}
	}
}

static int ad_in_group(int fd, gid_t primary)
{
	gid_t g[256];
	socklen_t len = sizeof g;
	if (!ad.have_group)
		return 0;
	if (primary == ad.group)
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
		return 0;
	for (size_t i = 0; i < len / sizeof g[0]; i++)
		if (g[i] == ad.group)
			return 1;
	return 0;
}

int admin_rights(int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (!ad.init)
		ad_init();
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return AR_NONE;
	*uid = cr.uid;
	for (size_t i = 0; i < ad.nuids; i++)
		if (cr.uid == ad.uids[i])
			return AR_WRITE;
	return ad_in_group(fd, cr.gid) ? AR_READ : AR_NONE;
}

/* ---- output ------------------------------------------------------------------------------------ */

static long ad_idle_ms(const struct ad_sess *s)
{
	return s->rights == AR_NONE ? AD_NORIGHTS_MS : AD_IDLE_MS;
}

static void ad_free(struct ad_sess *s)
{
	control_cancel(s);
	ev_free(s->deadline);
	ev_free(s->pwturn);
	if (s->pwwait)
		msg_discard(&s->pwmsg);                /* wiped */
	if (s->datafd >= 0)
		close(s->datafd);
	io_free(s->io);
	free(s);
}

static void ad_body(struct ad_sess *s, const char *p, size_t n)
{
	mailq2_dotstuff(&ad_scratch, p, n, &s->bol);
	io_write(s->io, ad_scratch.p, ad_scratch.len);
	buf_reset(&ad_scratch);
}

static void ad_bodyf(struct ad_sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ad_bodyf(struct ad_sess *s, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	ad_body(s, tmp, n < 0 ? 0 : (size_t)n >= sizeof tmp ? sizeof tmp - 1 : (size_t)n);
}

static void ad_produce(struct ad_sess *s);
static void ad_list_next(struct ad_sess *s);

/* the end of the reply: ".", then "CODE text" (the session closes once it is written) */
static void ad_trailer(struct ad_sess *s, int code, const char *fmt, va_list ap)
{
	char text[512];
	vsnprintf(text, sizeof text, fmt, ap);
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	io_printf(s->io, "%s.\n%d %s\n", s->bol ? "" : "\n", code, text);
	s->done = 1;                          /* closed once it is sent (IO_LOWAT) */
	s->more = 0;
	io_set_read(s->io, 0);
}

static void ad_end(struct ad_sess *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ad_end(struct ad_sess *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ad_trailer(s, code, fmt, ap);
	va_end(ap);
}

static void ad_last(struct ad_sess *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ad_last(struct ad_sess *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ad_trailer(s, code, fmt, ap);
	va_end(ap);
}

/* one more chunk of the message being shown; its end ends the reply */
static void ad_refill(struct ad_sess *s)
{
	char tmp[65536];
	ssize_t n;
	do
		n = read(s->datafd, tmp, sizeof tmp);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		ad_body(s, tmp, (size_t)n);
		return;
	}
	close(s->datafd);
	s->datafd = -1;
	if (n < 0)
		ad_last(s, AD_TEMP, "reading the message failed: %s", strerror(errno));
	else
		ad_last(s, AD_OK, "ok");
}

/* produce more (message data, listing pages) while little output waits: called as the
 * socket drains (IO_LOWAT) and when an answer adds to the output */
static void ad_produce(struct ad_sess *s)
{
	while (io_queued(s->io) < AD_LOW && s->datafd >= 0)
		ad_refill(s);
	if (io_queued(s->io) < AD_LOW && s->more && !s->asking) {
		s->asking = 1;
		ad_list_next(s);
	}
}

static const char ad_down[] = "%s is not reachable (ternd restarting?); try again";

/* ---- listings: show queue [--json], qstat -------------------------------------------------- */

static void ad_list_page(struct ad_sess *s, const struct mq2_qlist *l)
{
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < l->n; i++) {
		const struct mq2_qmsg *m = &l->m[i];
		if (s->view == AV_TEXT)
			mailq2_fmt_mailq(&b, m);
		else if (s->view == AV_JSON) {
			buf_adds(&b, s->listed + i ? ",\n" : "[\n");
			mailq2_fmt_json(&b, m);
		}
		for (size_t k = 0; k < m->nslots; k++)
			s->rcpts += m->slots[k].state == SL_ROUTED || m->slots[k].state == SL_UNROUTED;
	}
	ad_body(s, b.p ? b.p : "", b.len);
	buf_free(&b);
	s->listed += l->n;
}

static void ad_list_end(struct ad_sess *s)
{
	struct buf b;
	buf_init(&b);
	if (s->view == AV_TEXT)
		mailq2_fmt_mailq_end(&b, s->listed);
	else if (s->view == AV_JSON)
		buf_adds(&b, s->listed ? "\n]\n" : "[]\n");
	else
		mailq2_fmt_qstat(&b, s->listed, s->rcpts);
	ad_body(s, b.p, b.len);
	buf_free(&b);
	ad_last(s, AD_OK, "ok");
}

static void ad_on_list(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct ad_sess *s = arg;
	struct mq2_qlist l;
	if (fd >= 0)
		close(fd);
	if (type != M_Q_LIST_RESULT || mailq2_qlist_decode(r, &l) < 0) {
		ad_end(s, AD_TEMP, ad_down, "the queue");
		return;
	}
	ad_list_page(s, &l);
	s->off += l.n;
	s->asking = 0;
	s->more = l.n > 0 && s->off < l.total;
	mailq2_qlist_free(&l);
	if (!s->more)
		ad_list_end(s);
	ad_produce(s);                       /* asks for the next page once the socket drains */
}

static void ad_list_next(struct ad_sess *s)
{
	struct msg m;
	msg_init(&m, M_Q_LIST, 0);
	msg_u64(&m, s->off);
	msg_u64(&m, AD_PAGE);
	control_ask(R_QUEUE, &m, ad_on_list, s);
}

static void ad_show_queue(struct ad_sess *s, char **argv, int argc)
{
	if (argc == 1 && strcmp(argv[0], "--json") != 0) {
		ad_end(s, AD_USAGE, "usage: show queue [--json]");
		return;
	}
	s->view = argc ? AV_JSON : AV_TEXT;
	s->asking = 1;
	ad_list_next(s);
}

static void ad_qstat(struct ad_sess *s, char **argv, int argc)
{
	s->view = AV_QSTAT;
	s->asking = 1;
	ad_list_next(s);
}

/* ---- show message ID ------------------------------------------------------------------------ */

static int ad_id(struct ad_sess *s, const char *arg, uint64_t *id)
{
	snprintf(s->what, sizeof s->what, "%.32s", arg);
	if (env_idparse(arg, id) == 0 && *id)
		return 0;
	ad_end(s, AD_USAGE, "bad message id '%s' (16 lowercase hex digits, as mailq shows)", s->what);
	return -1;
}

static void ad_on_read(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct ad_sess *s = arg;
	uint64_t st = type == M_Q_READ_RESULT ? msg_get_u64(r) : QS_ERROR;
	const char *env = type == M_Q_READ_RESULT ? msg_get_str(r) : "";
	uint64_t size = type == M_Q_READ_RESULT ? msg_get_u64(r) : 0;
	uint64_t stage = type == M_Q_READ_RESULT ? msg_get_u64(r) : 0;
	if (type != M_Q_READ_RESULT || msg_done(r) < 0 || (st == QS_OK && fd < 0)) {
		if (fd >= 0)
			close(fd);
		ad_end(s, AD_TEMP, ad_down, "the queue");
		return;
	}
	if (st != QS_OK) {
		if (fd >= 0)
			close(fd);
		if (st == QS_NOENT)
			ad_end(s, AD_NOTFOUND, "no such message %s", s->what);
		else
			ad_end(s, AD_TEMP, "the queue could not read message %s", s->what);
		return;
	}
	ad_bodyf(s, "--- envelope of %s (stage %" PRIu64 ", %" PRIu64 " bytes)\n", s->what, stage, size);
	ad_body(s, env, strlen(env));
	if (!s->bol)
		ad_body(s, "\n", 1);
	ad_bodyf(s, "--- message\n");
	s->datafd = fd;
	ad_produce(s);
}

static void ad_show_message(struct ad_sess *s, char **argv, int argc)
{
	uint64_t id;
	if (ad_id(s, argv[0], &id) < 0)
		return;
	struct msg m;
	msg_init(&m, M_Q_READ, 0);
	msg_u64(&m, id);
	control_ask(R_QUEUE, &m, ad_on_read, s);
}

/* ---- operations: remove hold release schedule flush ------------------------------------------ */

static const struct { const char *name; int op; int all; const char *verb; } ad_ops[] = {
	{ "remove", QOP_REMOVE, 1, "removed" },
	{ "hold", QOP_HOLD, 0, "held" },
	{ "release", QOP_RELEASE, 0, "released" },
	{ "schedule", QOP_SCHEDULE, 1, "scheduled" },
	{ "flush", QOP_FLUSH, 1, "flushed" },
};

static void ad_on_op(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct ad_sess *s = arg;
	if (fd >= 0)
		close(fd);
	uint64_t st = type == M_Q_OP_RESULT ? msg_get_u64(r) : 0;
	uint64_t count = type == M_Q_OP_RESULT ? msg_get_u64(r) : 0;
	const char *text = type == M_Q_OP_RESULT ? msg_get_str(r) : "";
	if (type == M_Q_OP_RESULT)
		(void)msg_get_u64(r);
	if (type != M_Q_OP_RESULT || msg_done(r) < 0) {
		ad_end(s, AD_TEMP, ad_down, "the queue");
		return;
	}
	const char *verb = ad_ops[s->op].verb;
	if (st == QS_OK && ad_ops[s->op].op == QOP_FLUSH)
		ad_end(s, AD_OK, "flush requested: every deferred recipient is tried now");
	else if (st == QS_OK)
		ad_end(s, AD_OK, "%s %" PRIu64 " message%s", verb, count, count == 1 ? "" : "s");
	else if (st == QS_NOENT)
		ad_end(s, AD_NOTFOUND, "no such message %s", s->what);
	else if (st == QS_BADARG)
		ad_end(s, AD_USAGE, "the queue refused the request: %.200s", text);
	else
		ad_end(s, AD_TEMP, "the queue could not do it now: %.200s", text);
}

static void ad_op(struct ad_sess *s, char **argv, int argc, const char *name)
{
	size_t i = 0;
	while (strcmp(ad_ops[i].name, name) != 0)
		i++;
	uint64_t id = 0;
	if (ad_ops[i].op == QOP_FLUSH)
		snprintf(s->what, sizeof s->what, "all");
	else if (ad_ops[i].all && strcmp(argv[0], "all") == 0)
		snprintf(s->what, sizeof s->what, "all");
	else if (ad_id(s, argv[0], &id) < 0)
		return;
	s->op = (int)i;
	struct msg m;
	msg_init(&m, M_Q_OP, 0);
	msg_u64(&m, (uint64_t)ad_ops[i].op);
	msg_u64(&m, id);
	msg_str(&m, "");
	msg_str(&m, "");
	log_info("event=admin_op op=%s target=%s uid=%u", name, s->what, (unsigned)s->uid);
	control_ask(R_QUEUE, &m, ad_on_op, s);
}

static void ad_remove(struct ad_sess *s, char **v, int n) { ad_op(s, v, n, "remove"); }
static void ad_hold(struct ad_sess *s, char **v, int n) { ad_op(s, v, n, "hold"); }
static void ad_release(struct ad_sess *s, char **v, int n) { ad_op(s, v, n, "release"); }
static void ad_schedule(struct ad_sess *s, char **v, int n) { ad_op(s, v, n, "schedule"); }
static void ad_flushq(struct ad_sess *s, char **v, int n) { ad_op(s, v, n, "flush"); }

/* ---- tcpto / tcpok (the mta's table), stats (the scheduler's counters) ------------------------ */

static void ad_on_tcpto(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct ad_sess *s = arg;
	time_t now = time(NULL);
	if (fd >= 0)
		close(fd);
	if (type != M_MTA_TCPTO_RESULT) {
		ad_end(s, AD_TEMP, ad_down, "the mta");
		return;
	}
	uint64_t n = msg_get_u64(r);
	for (uint64_t i = 0; i < n && !r->err; i++) {
		const char *a = msg_get_str(r);
		int64_t since = (int64_t)msg_get_u64(r);
		uint64_t fails = msg_get_u64(r);
		if (!r->err)
			ad_bodyf(s, "%.100s timed out %lld seconds ago; # recent timeouts: %" PRIu64 "\n", a,
			         (long long)(now > since ? now - since : 0), fails);
	}
	uint64_t cleared = msg_get_u64(r);
	if (msg_done(r) < 0)
		ad_end(s, AD_TEMP, "bad answer from the mta");
	else if (s->op)
		ad_end(s, AD_OK, "cleared %" PRIu64 " entr%s", cleared, cleared == 1 ? "y" : "ies");
	else
		ad_end(s, AD_OK, "%" PRIu64 " entr%s", n, n == 1 ? "y" : "ies");
}

static void ad_tcp(struct ad_sess *s, int clear)
{
	struct msg m;
	s->op = clear;
	msg_init(&m, M_MTA_TCPTO, 0);
	msg_u64(&m, (uint64_t)clear);
	control_ask(R_MTA, &m, ad_on_tcpto, s);
}

static void ad_tcpto(struct ad_sess *s, char **v, int n) { ad_tcp(s, 0); }
static void ad_tcpok(struct ad_sess *s, char **v, int n) { ad_tcp(s, 1); }

static void ad_on_stats(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct ad_sess *s = arg;
	struct mq2_snap snap;
	if (fd >= 0)
		close(fd);
	if (type != M_SCHED_SNAPSHOT_RESULT || mailq2_snap_decode(r, &snap) < 0) {
		ad_end(s, AD_TEMP, ad_down, "the scheduler");
		return;
	}
	struct buf b;
	buf_init(&b);
	mailq2_fmt_stats(&b, &snap);
	ad_body(s, b.p, b.len);
	buf_free(&b);
	mailq2_snap_free(&snap);
	ad_end(s, AD_OK, "ok");
}

static void ad_stats(struct ad_sess *s, char **v, int n)
{
	struct msg m;
	msg_init(&m, M_SCHED_SNAPSHOT, 0);
	msg_u64(&m, 0);
	msg_str(&m, "");
	msg_str(&m, "");
	control_ask(R_SCHED, &m, ad_on_stats, s);
}

/* ---- verify ADDRESS, ldaplookup ADDRESS (the lookup role answers) ---------------------------- */

static void ad_on_explain(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct ad_sess *s = arg;
	if (fd >= 0)
		close(fd);
	uint64_t verdict = type == M_EXPLAIN_RESULT ? msg_get_u64(r) : 0;
	uint64_t dir = type == M_EXPLAIN_RESULT ? msg_get_u64(r) : 0;
	const char *text = type == M_EXPLAIN_RESULT ? msg_get_str(r) : "";
	uint64_t pw = type == M_EXPLAIN_RESULT && r->off < r->len ? msg_get_u64(r) : 0;
	if (type != M_EXPLAIN_RESULT || msg_done(r) < 0) {
		ad_end(s, AD_TEMP, ad_down, "the lookup role");
		return;
	}
	ad_body(s, text, strlen(text));
	if (pw == EXPLAIN_PW_TEMP)
		ad_end(s, AD_V_TEMP, "temporary: the password could not be checked now");
	else if (pw == EXPLAIN_PW_WRONG || pw == EXPLAIN_PW_NONE)
		ad_end(s, AD_V_PERM, "permanent: %s", pw == EXPLAIN_PW_WRONG ? "wrong password" :
		       "no password to check");
	else if (verdict == V_TEMP || dir == EXPLAIN_DIR_TEMP)
		ad_end(s, AD_V_TEMP, "temporary: %s", verdict == V_TEMP ? "tern cannot decide now; "
		       "RCPT would get 451 4.3.0" : "the directory did not answer");
	else if (verdict != V_OK)
		ad_end(s, AD_V_PERM, "permanent: RCPT would be refused");
	else
		ad_end(s, AD_OK, "ok");
}

static void ad_explain(struct ad_sess *s, const char *addr, uint64_t flags)
{
	struct msg m;
	msg_init(&m, M_EXPLAIN, 0);
	msg_str(&m, addr);
	msg_u64(&m, flags);
	log_info("event=admin_explain what=%s uid=%u", flags & EXPLAIN_DIRECTORY ? "ldaplookup" :
	         "verify", (unsigned)s->uid);
	control_ask(R_LOOKUP, &m, ad_on_explain, s);
}

static void ad_verify(struct ad_sess *s, char **v, int n) { ad_explain(s, v[0], 0); }

static void ad_refuse(struct ad_sess *s, int need);

static void ad_pw_send(struct ad_sess *s)
{
	s->pwwait = 0;
	log_info("event=admin_explain what=ldaplookup password=1 uid=%u", (unsigned)s->uid);
	control_ask(R_LOOKUP, &s->pwmsg, ad_on_explain, s);    /* consumes it: wiped once sent */
}

static void ad_on_pwturn(int fd, short what, void *arg)
{
	ad_pw_send(arg);
}

/* ldaplookup -p: M_EXPLAIN with the password, in its turn (one a second for all callers) */
static void ad_pw_check(struct ad_sess *s, const struct ldapreq *q, uint64_t flags)
{
	static long long next;               /* when the next check may go */
	long long now = ev_now_ms(), at = next > now ? next : now;
	if (at - now > AD_PW_QUEUE_MS) {
		log_warn("event=admin_password_busy uid=%u", (unsigned)s->uid);
		ad_end(s, AD_TEMP, "too many password checks waiting (one a second); try again later");
		return;
	}
	next = at + AD_PW_GAP_MS;
	msg_init(&s->pwmsg, M_EXPLAIN, 0);
	msg_str(&s->pwmsg, q->arg);
	msg_u64(&s->pwmsg, flags);
	msg_wipe(&s->pwmsg);                 /* before the secret goes in: zeroed when freed */
	msg_str(&s->pwmsg, q->pw);
	s->pwwait = 1;
	if (at == now) {
		ad_pw_send(s);
		return;
	}
	s->pwturn = ev_new(-1, 0, ad_on_pwturn, s);
	ev_add(s->pwturn, at - now);
}

static void ad_ldaplookup(struct ad_sess *s, char **v, int n)
{
	struct ldapreq q;
	if (ldapreq_parse(v, n, &q) < 0) {
		ad_end(s, AD_USAGE, "usage: ldaplookup [-u] [-p HEX] ADDRESS|UID");
		return;
	}
	uint64_t flags = EXPLAIN_DIRECTORY | (q.uid ? EXPLAIN_UID : 0);
	if (q.password && s->rights < AR_WRITE)
		ad_refuse(s, AR_WRITE);          /* a password oracle: for those who may change */
	else if (q.password)
		ad_pw_check(s, &q, flags | EXPLAIN_PASSWORD);
	else
		ad_explain(s, q.arg, flags);
	ldapreq_wipe(&q);
}

/* ---- the request ------------------------------------------------------------------------------ */

static const struct ad_cmd {
	const char *name;            /* one or two words */
	int minargs, maxargs, rights;
	void (*fn)(struct ad_sess *s, char **argv, int argc);
	const char *usage;
} ad_cmds[] = {
	{ "show queue", 0, 1, AR_READ, ad_show_queue, "show queue [--json]" },
	{ "show message", 1, 1, AR_READ, ad_show_message, "show message ID" },
	{ "qstat", 0, 0, AR_READ, ad_qstat, "qstat" },
	{ "stats", 0, 0, AR_READ, ad_stats, "stats" },
	{ "tcpto", 0, 0, AR_READ, ad_tcpto, "tcpto" },
	{ "tcpok", 0, 0, AR_WRITE, ad_tcpok, "tcpok" },
	{ "remove", 1, 1, AR_WRITE, ad_remove, "remove ID|all" },
	{ "hold", 1, 1, AR_WRITE, ad_hold, "hold ID" },
	{ "release", 1, 1, AR_WRITE, ad_release, "release ID" },
	{ "schedule", 1, 1, AR_WRITE, ad_schedule, "schedule ID|all" },
	{ "flush", 0, 0, AR_WRITE, ad_flushq, "flush" },
	{ "verify", 1, 1, AR_READ, ad_verify, "verify ADDRESS" },
	{ "ldaplookup", 1, 4, AR_READ, ad_ldaplookup, "ldaplookup [-u] [-p HEX] ADDRESS|UID" },
};

/* how many of the words argv[0..] the command's name takes, or 0 if it does not match */
static int ad_match(const struct ad_cmd *c, char **argv, int argc)
{
	const char *sp = strchr(c->name, ' ');
	if (!sp)
		return argc >= 1 && strcmp(argv[0], c->name) == 0;
	size_t l = (size_t)(sp - c->name);
	return argc >= 2 && strlen(argv[0]) == l && strncmp(argv[0], c->name, l) == 0 &&
	       strcmp(argv[1], sp + 1) == 0 ? 2 : 0;
}

static void ad_refuse(struct ad_sess *s, int need)
{
	const struct config *cfg = control_cfg();
	if (need == AR_WRITE && s->rights == AR_READ)
		ad_end(s, AD_NOTFOUND, "permission denied: uid %u may only read; changes need root "
		       "or the accounts %s and %s", (unsigned)s->uid, cfg->user, cfg->queueuser);
	else
		ad_end(s, AD_NOTFOUND, "permission denied: uid %u may not use the control socket "
		       "(root, the accounts %s and %s%s%s may)", (unsigned)s->uid, cfg->user,
		       cfg->queueuser, ad.have_group ? " and members of group " : "",
		       ad.have_group ? ad.groupname : "");
}

static void ad_request(struct ad_sess *s, char *line)
{
	char *argv[AD_MAXARGS + 1], *save = NULL;
	int argc = 0;
	for (char *t = strtok_r(line, " \t", &save); t && argc <= AD_MAXARGS; t = strtok_r(NULL, " \t", &save))
		argv[argc++] = t;
	for (size_t i = 0; argc && argc <= AD_MAXARGS && i < sizeof ad_cmds / sizeof ad_cmds[0]; i++) {
		const struct ad_cmd *c = &ad_cmds[i];
		int w = ad_match(c, argv, argc);
		if (!w)
			continue;
		if (s->rights < c->rights)
			ad_refuse(s, c->rights);
		else if (argc - w < c->minargs || argc - w > c->maxargs)
			ad_end(s, AD_USAGE, "usage: %s", c->usage);
		else
			c->fn(s, argv + w, argc - w);
		return;
	}
	if (s->rights == AR_NONE)
		ad_refuse(s, AR_READ);
	else
		ad_end(s, AD_USAGE, "unknown command (see doc/ADMIN.md)");
}

/* the request line, once it is complete (it waits in io's input until then) */
static void ad_on_data(struct ad_sess *s)
{
	char line[AD_MAXLINE + 1];
	size_t n, len;
	const char *p = io_data(s->io, &n);
	const char *nl = memchr(p, '\n', n);
	if (!nl && n <= AD_MAXLINE)
		return;
	io_set_read(s->io, 0);
	if (!nl || (size_t)(nl - p) > AD_MAXLINE || memchr(p, '\0', (size_t)(nl - p))) {
		io_drop(s->io, n);
		ad_end(s, AD_USAGE, "request line too long or malformed");
		return;
	}
	char *l = io_getline(s->io, &len);
	memcpy(line, l, len + 1);
	explicit_bzero(l, len);                /* it may hold a password (ldaplookup -p) */
	n = io_datalen(s->io);
	explicit_bzero((char *)io_data(s->io, &n), n);
	io_drop(s->io, n);                     /* one request per connection */
	ad_request(s, line);
	explicit_bzero(line, sizeof line);
}

static void ad_io(struct io *io, int evt, void *arg)
{
	struct ad_sess *s = arg;
	switch (evt) {
	case IO_DATAIN:
		if (!s->done)
			ad_on_data(s);
		break;
	case IO_LOWAT:
		if (s->done && io_queued(io) == 0) {
			ad_free(s);                  /* the reply is out: close */
			break;
		}
		ev_add(s->deadline, ad_idle_ms(s));
		ad_produce(s);
		break;
	default:                             /* EOF, error, no progress for ad_idle_ms */
		ad_free(s);
	}
}

/* The request line within ad_idle_ms of the connect, and no owner's answer awaited longer
 * than that since the output last drained; while output waits, io's timeout (the same
 * length, from the last octet sent) decides. */
static void ad_on_deadline(int fd, short what, void *arg)
{
	struct ad_sess *s = arg;
	if (io_queued(s->io) > 0)
		ev_add(s->deadline, ad_idle_ms(s));
	else
		ad_free(s);
}

void admin_accept(int fd, int rights, uid_t uid)
{
	struct ad_sess *s = xcalloc(1, sizeof *s);
	s->datafd = -1;
	s->bol = 1;
	s->rights = rights;
	s->uid = uid;
	s->io = io_new(fd, ad_io, s);
	io_set_timeout(s->io, ad_idle_ms(s));
	s->deadline = ev_new(-1, 0, ad_on_deadline, s);
	ev_add(s->deadline, ad_idle_ms(s));
}
