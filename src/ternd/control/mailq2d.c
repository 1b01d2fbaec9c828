/* mailq2 — ZMailer's MAILQ v2 protocol in the control role (PROTOCOLS.md §1): greeting and
 * challenge, AUTH against the auth file (rights and address ACLs), and the commands, each
 * answered from its owner: SHOW … from the scheduler's snapshot (M_SCHED_SNAPSHOT), ETRN from
 * the scheduler (M_SCHED_ETRN), KILL MSG / KILL THREAD / REQUEUE ROUTER from the queue
 * (M_Q_OP). Parsing and every reply format are in src/mail/mailq2.c. Each connection is an
 * io (src/lib/io.h): lines are taken from its input one request at a time, reading pauses
 * while a request is in flight or much output waits, and a session that says goodbye
 * closes once its output is sent.
 * Owns: the sessions, the cached auth file, the per-address count of failed logins (each
 * failed AUTH is answered after a growing delay — a timer, never a sleep).
 * Trusts: nothing a client sends; the auth file only after parsing (a bad line grants
 * nothing); the owners' answers only after decoding.
 *
 * The auth file is named by the key `mailq_auth` ("PATH" or "file:PATH"; the test build also
 * reads TERN_MAILQ_AUTH); it is re-read when it changes. */
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "mail/envelope.h"
#include "mail/mailq2.h"
#include "mail/table.h"
#include "lib/ev.h"
#include "lib/io.h"
#include "lib/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MQ_IDLE_MS     300000      /* idle timeout after AUTH (io's: no progress either way) */
#define MQ_PREAUTH_MS  30000       /* from connect to a successful AUTH, however busy */
#define MQ_OUT_HIGH    (256 * 1024)/* stop reading while this much output waits */
#define MQ_DELAY_MS    250         /* first failed AUTH; doubles up to MQ_DELAY_MAX */
#define MQ_DELAY_MAX   10000
#define MQ_FAIL_FORGET 600         /* seconds after which an address's failures are forgotten */
#define MQ_FAILSLOTS   256
#define MQ_AUTH_MAX    (1024 * 1024)

struct mq_sess {
	struct io *io;               /* the connection (src/lib/io.h) */
	struct mq2_addr addr;
	struct ev *preauth, *delay;  /* the deadline for AUTH; a failed AUTH's reply */
	char challenge[96];
	int authed, busy, closing;
	unsigned rights;
	enum mq2_verb want;          /* the request in flight */
	char user[64];
};

struct mq_fail { struct mq2_addr addr; unsigned count; time_t last; };

static struct {
	struct mq2_auth *auth;
	char path[1024];
	struct stat st;              /* of the loaded file */
	struct mq_fail fails[MQ_FAILSLOTS];
	struct buf scratch;          /* replies formatted by src/mail/mailq2.c, on their way out */
} mq;

static void mq_pump(struct mq_sess *s);

/* ---- the auth file ------------------------------------------------------------------------- */

static void mq_auth_path(void)
{
	const char *e = control_cfg()->mailq_auth;      /* the mailq_auth key */
#ifdef TERN_TEST
	if (!e || !*e)
		e = getenv("TERN_MAILQ_AUTH");              /* the tests' older spelling */
#endif
	if (e && strncmp(e, "file:", 5) == 0)
		e += 5;
	snprintf(mq.path, sizeof mq.path, "%s", e ? e : "");
}

/* the current auth file (re-read when it changed); an unreadable one grants nothing */
static const struct mq2_auth *mq_auth(void)
{
	struct stat st;
	if (!*mq.path || stat(mq.path, &st) < 0) {
		if (mq.auth)
			log_err("event=mailq_auth_unreadable path=%s error=\"%s\"", mq.path, strerror(errno));
		mailq2_auth_free(mq.auth);
		mq.auth = NULL;
		return NULL;
	}
	if (mq.auth && st.st_ino == mq.st.st_ino && st.st_size == mq.st.st_size &&
	    st.st_mtim.tv_sec == mq.st.st_mtim.tv_sec && st.st_mtim.tv_nsec == mq.st.st_mtim.tv_nsec)
		return mq.auth;
	char *text = NULL;
	size_t len = 0;
	struct cfg_errors errs = { .n = 0 };
	if (table_read_file(mq.path, MQ_AUTH_MAX, &text, &len) < 0) {
		log_err("event=mailq_auth_unreadable path=%s error=\"%s\"", mq.path, strerror(errno));
		return mq.auth;                     /* keep the last good one */
	}
	mailq2_auth_free(mq.auth);
	mq.auth = mailq2_auth_parse(mq.path, text, len, &errs);
	mq.st = st;
	free(text);
	for (int i = 0; i < errs.n; i++)
		log_err("event=mailq_auth_error file=%s line=%d error=\"%s\"", errs.e[i].file,
		        errs.e[i].line, errs.e[i].msg);
	log_info("event=mailq_auth_loaded path=%s entries=%zu", mq.path, mq.auth->n);
	return mq.auth;
}

/* ---- failed logins ----------------------------------------------------------------------- */

static struct mq_fail *mq_fail_slot(const struct mq2_addr *a)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ a->a[i]) * 16777619u;
	struct mq_fail *f = &mq.fails[h % MQ_FAILSLOTS];
	time_t now = time(NULL);
	if (memcmp(&f->addr, a, sizeof *a) != 0 || now - f->last > MQ_FAIL_FORGET) {
		f->addr = *a;
		f->count = 0;
	}
	f->last = now;
	return f;
}

static long mq_fail_delay(const struct mq2_addr *a)
{
	struct mq_fail *f = mq_fail_slot(a);
	unsigned n = ++f->count;
	long d = MQ_DELAY_MS << (n > 7 ? 6 : n - 1);
	return d > MQ_DELAY_MAX ? MQ_DELAY_MAX : d;
}

/* ---- session I/O --------------------------------------------------------------------------- */

static void mq_free(struct mq_sess *s)
{
	control_cancel(s);
	ev_free(s->preauth);
	ev_free(s->delay);
	io_free(s->io);
	free(s);
}

static void mq_say(struct mq_sess *s, const char *text) { io_print(s->io, text); }

/* what was formatted into mq.scratch goes out */
static void mq_put(struct mq_sess *s)
{
	io_write(s->io, mq.scratch.p, mq.scratch.len);
	buf_reset(&mq.scratch);
}

/* a request finished: go on with the next line */
static void mq_done(struct mq_sess *s)
{
	s->busy = 0;
	mq_pump(s);
}

/* ---- answers from the owners ----------------------------------------------------------- */

static const char mq_tempfail[] = "-Temporary failure: the scheduler or the queue did not "
                                  "answer; try again later.\n";

static void mq_on_snapshot(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct mq_sess *s = arg;
	struct mq2_snap snap;
	if (fd >= 0)
		close(fd);
	if (type != M_SCHED_SNAPSHOT_RESULT || mailq2_snap_decode(r, &snap) < 0) {
		if (type)
			log_err("event=bad_message peer=scheduler type=%u", type);
		mq_say(s, mq_tempfail);
		mq_done(s);
		return;
	}
	struct buf body;
	buf_init(&body);
	switch (s->want) {
	case MQ2_SHOW_SNMP: mailq2_fmt_snmp(&body, &snap); break;
	case MQ2_SHOW_SHORT: mailq2_fmt_queue(&body, &snap, 0); break;
	case MQ2_SHOW_THREADS: mailq2_fmt_queue(&body, &snap, 1); break;
	case MQ2_SHOW_THREADS2: mailq2_fmt_threads2(&body, &snap); break;
	default: mailq2_fmt_thread(&body, &snap); break;
	}
	mailq2_multiline(&mq.scratch, body.p ? body.p : "", body.len);
	mq_put(s);
	buf_free(&body);
	mailq2_snap_free(&snap);
	mq_done(s);
}

static void mq_on_etrn(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct mq_sess *s = arg;
	if (fd >= 0)
		close(fd);
	uint64_t n = type == M_SCHED_ETRN_RESULT ? msg_get_u64(r) : 0;
	if (type != M_SCHED_ETRN_RESULT || msg_done(r) < 0)
		mq_say(s, mq_tempfail);
	else
		mq_say(s, n ? "+OK; an ETRN started something.\n" : "+OK; an ETRN didn't start anything.\n");
	mq_done(s);
}

static const struct mq_opdef {
	enum mq2_verb verb;
	int op;
	const char *ok, *none, *noent;   /* done / nothing could be done now / no such message */
} mq_ops[] = {
	{ MQ2_KILL_MSG, QOP_KILL, "+OK; KILLed something.\n",
	  "-Nothing KILLed: no recipient of it could be expired now.\n",
	  "-No such message; nothing KILLed.\n" },
	{ MQ2_KILL_THREAD, QOP_KILL_THREAD, "+OK; KILLed something.\n",
	  "-No such thread; nothing KILLed.\n", "-No such thread; nothing KILLed.\n" },
	{ MQ2_REQUEUE, QOP_REQUEUE, "+OK; REQUEUEd something.\n",
	  "-Nothing REQUEUEd: no recipient of it could be routed again now.\n",
	  "-No such message; nothing REQUEUEd.\n" },
};

static const struct mq_opdef *mq_op_of(enum mq2_verb v)
{
	for (size_t i = 0; i < sizeof mq_ops / sizeof mq_ops[0]; i++)
		if (mq_ops[i].verb == v)
			return &mq_ops[i];
	return &mq_ops[0];
}

static void mq_on_op(void *arg, uint32_t type, struct msg_reader *r, int fd)
{
	struct mq_sess *s = arg;
	const struct mq_opdef *d = mq_op_of(s->want);
	if (fd >= 0)
		close(fd);
	uint64_t st = 0, count = 0;
	const char *text = "";
	if (type == M_Q_OP_RESULT) {
		st = msg_get_u64(r);
		count = msg_get_u64(r);
		text = msg_get_str(r);
		(void)msg_get_u64(r);
	}
	if (type != M_Q_OP_RESULT || msg_done(r) < 0)
		mq_say(s, mq_tempfail);
	else if (st == QS_OK && count)
		mq_say(s, d->ok);
	else if (st == QS_OK)
		mq_say(s, d->none);
	else if (st == QS_NOENT)
		mq_say(s, d->noent);
	else
		io_printf(s->io, "-%s: %.200s\n", st == QS_BADARG ? "Bad arguments" :
		          "Temporary failure", text);
	mq_done(s);
}

/* ---- commands -------------------------------------------------------------------------------- */

static char *mq_dup(struct mq2_word w) { return xstrndup(w.p, w.n); }

static void mq_set_user(struct mq_sess *s, struct mq2_word w)
{
	size_t ul = w.n < sizeof s->user - 1 ? w.n : sizeof s->user - 1;
	if (ul)
		memcpy(s->user, w.p, ul);
	s->user[ul] = '\0';
	for (char *p = s->user; *p; p++)
		if ((unsigned char)*p < 0x21 || *p == '"' || *p == '\\' || (unsigned char)*p > 0x7e)
			*p = '?';
}

/* AUTH user hex (a malformed AUTH is a failed one) */
static void mq_cmd_auth(struct mq_sess *s, const struct mq2_cmd *c)
{
	const struct mq2_entry *e = NULL;
	int ok = 0;
	if (c->verb == MQ2_AUTH) {
		mq_set_user(s, c->arg[0]);
		e = mailq2_auth_find(mq_auth(), c->arg[0].p, c->arg[0].n, &s->addr);
		ok = mailq2_check_response(s->challenge, e ? e->password : "", c->arg[1].p,
		                           c->arg[1].n) && e;
	}
	if (ok) {
		s->authed = 1;
		s->rights = e->rights;
		ev_del(s->preauth);
		io_set_timeout(s->io, MQ_IDLE_MS);
		mq_fail_slot(&s->addr)->count = 0;
		log_info("event=mailq_login user=%s rights=0x%x", s->user, s->rights);
		mq_say(s, "+OK\n");
		return;
	}
	long d = mq_fail_delay(&s->addr);
	log_warn("event=mailq_login_failed user=%s delay_ms=%ld", s->user, d);
	s->busy = 1;                             /* the reply waits for the timer */
	ev_add(s->delay, d);
}

static void mq_cmd_quit(struct mq_sess *s, const struct mq2_cmd *c)
{
	mq_say(s, "+Bye bye\n");
	s->closing = 1;
}

static void mq_ask_snapshot(struct mq_sess *s, uint64_t kind, const char *ch, const char *host)
{
	struct msg m;
	msg_init(&m, M_SCHED_SNAPSHOT, 0);
	msg_u64(&m, kind);
	msg_str(&m, ch);
	msg_str(&m, host);
	s->busy = 1;
	control_ask(R_SCHED, &m, mq_on_snapshot, s);
}

static void mq_cmd_show(struct mq_sess *s, const struct mq2_cmd *c)
{
	if (c->verb != MQ2_SHOW_THREAD) {
		mq_ask_snapshot(s, 0, "", "");
		return;
	}
	char *ch = mq_dup(c->arg[0]), *host = mq_dup(c->arg[1]);
	mq_ask_snapshot(s, 1, ch, host);
	free(ch);
	free(host);
}

static void mq_cmd_etrn(struct mq_sess *s, const struct mq2_cmd *c)
{
	struct msg m;
	char *dom = mq_dup(c->arg[0]);
	msg_init(&m, M_SCHED_ETRN, 0);
	msg_str(&m, dom);
	log_info("event=mailq_etrn user=%s domain_len=%zu", s->user, strlen(dom));
	free(dom);
	s->busy = 1;
	control_ask(R_SCHED, &m, mq_on_etrn, s);
}

static void mq_cmd_op(struct mq_sess *s, const struct mq2_cmd *c)
{
	const struct mq_opdef *d = mq_op_of(c->verb);
	uint64_t id = 0;
	char *a1 = mq_dup(c->arg[0]), *a2 = c->nargs > 1 ? mq_dup(c->arg[1]) : xstrdup("");
	if (c->verb != MQ2_KILL_THREAD && env_idparse(a1, &id) < 0)
		mq_say(s, "-Bad spool id; tern's spool ids are 16 lowercase hex digits.\n");
	else {
		struct msg m;
		msg_init(&m, M_Q_OP, 0);
		msg_u64(&m, (uint64_t)d->op);
		msg_u64(&m, id);
		msg_str(&m, c->verb == MQ2_KILL_THREAD ? a1 : "");
		msg_str(&m, a2);
		log_info("event=mailq_op user=%s op=%d", s->user, d->op);
		s->busy = 1;
		control_ask(R_QUEUE, &m, mq_on_op, s);
	}
	free(a1);
	free(a2);
}

static const struct mq_handler {
	enum mq2_verb verb;
	void (*fn)(struct mq_sess *s, const struct mq2_cmd *c);
} mq_handlers[] = {
	{ MQ2_AUTH, mq_cmd_auth }, { MQ2_QUIT, mq_cmd_quit }, { MQ2_ETRN_CMD, mq_cmd_etrn },
	{ MQ2_SHOW_SNMP, mq_cmd_show }, { MQ2_SHOW_SHORT, mq_cmd_show },
	{ MQ2_SHOW_THREADS, mq_cmd_show }, { MQ2_SHOW_THREADS2, mq_cmd_show },
	{ MQ2_SHOW_THREAD, mq_cmd_show }, { MQ2_KILL_MSG, mq_cmd_op },
	{ MQ2_KILL_THREAD, mq_cmd_op }, { MQ2_REQUEUE, mq_cmd_op },
};

static void mq_line(struct mq_sess *s, const char *line, size_t len)
{
	struct mq2_cmd c;
	mailq2_parse(line, len, &c);
	if (!s->authed && c.vword.n == 4 && memcmp(c.vword.p, "AUTH", 4) == 0) {
		mq_cmd_auth(s, &c);
		return;
	}
	if (c.verb != MQ2_QUIT && !s->authed) {
		mq_say(s, "-BAD; USER MUST AUTHENTICATE\n");
		return;
	}
	if (c.verb == MQ2_ETRN_CMD && !(s->rights & MQ2_ETRN)) {
		mq_say(s, "-No ETRN allowed for you.\n");
		return;
	}
	if (c.verb == MQ2_BAD || (c.verb == MQ2_AUTH && s->authed) || (c.right && !(c.right & s->rights)) ||
	    (c.verb == MQ2_ETRN_CMD && c.nargs != 1)) {
		mailq2_refusal(&mq.scratch, &c);
		mq_put(s);
		return;
	}
	s->want = c.verb;
	for (size_t i = 0; i < sizeof mq_handlers / sizeof mq_handlers[0]; i++)
		if (mq_handlers[i].verb == c.verb) {
			mq_handlers[i].fn(s, &c);
			return;
		}
}

static int mq_may_read(const struct mq_sess *s)
{
	return !s->busy && !s->closing && io_queued(s->io) < MQ_OUT_HIGH;
}

/* run complete lines while nothing is in flight and little output waits; read more only
 * when it may be used; close once a closing session's output is sent. The last thing its
 * callers do: it may free s. */
static void mq_pump(struct mq_sess *s)
{
	char line[MQ2_LINEMAX + 1];
	while (mq_may_read(s)) {
		size_t n, len;
		const char *p = io_data(s->io, &n), *nl = memchr(p, '\n', n);
		if ((nl ? (size_t)(nl - p) : n) > MQ2_LINEMAX) {
			log_warn("event=mailq_line_too_long user=%s", s->user);
			mq_free(s);
			return;
		}
		if (!nl)
			break;
		char *l = io_getline(s->io, &len);
		memcpy(line, l, len + 1);
		mq_line(s, line, len);
	}
	if (s->closing && io_queued(s->io) == 0) {
		mq_free(s);
		return;
	}
	io_set_read(s->io, mq_may_read(s));
}

static void mq_io(struct io *io, int evt, void *arg)
{
	struct mq_sess *s = arg;
	switch (evt) {
	case IO_DATAIN:
	case IO_LOWAT:
		mq_pump(s);
		break;
	case IO_TIMEOUT:
		log_info("event=mailq_timeout user=%s", s->user);
		mq_free(s);
		break;
	default:                             /* EOF or a broken connection */
		mq_free(s);
	}
}

/* no successful AUTH within MQ_PREAUTH_MS of the connect, however busy the client is */
static void mq_on_preauth(int fd, short what, void *arg)
{
	struct mq_sess *s = arg;
	log_info("event=mailq_timeout user=%s", s->user);
	mq_free(s);
}

static void mq_on_delay(int fd, short what, void *arg)
{
	struct mq_sess *s = arg;
	mq_say(s, "-BAD USER OR PASSWORD\n");
	mq_done(s);
}

/* ---- accepting --------------------------------------------------------------------------------- */

static int mq_challenge(struct mq_sess *s)
{
	unsigned char rnd[16];
	if (getentropy(rnd, sizeof rnd) < 0)
		return -1;
	int off = snprintf(s->challenge, sizeof s->challenge, "220 MAILQ-V2-CHALLENGE: ");
	for (size_t i = 0; i < sizeof rnd; i++)
		off += snprintf(s->challenge + off, sizeof s->challenge - (size_t)off, "%02x", rnd[i]);
	return 0;
}

void mailq2d_accept(int fd, const struct sockaddr *peer, socklen_t len)
{
	struct mq_sess *s = xcalloc(1, sizeof *s);
	s->io = io_new(fd, mq_io, s);
	s->preauth = ev_new(-1, 0, mq_on_preauth, s);
	s->delay = ev_new(-1, 0, mq_on_delay, s);
	ev_add(s->preauth, MQ_PREAUTH_MS);
	if (mailq2_addr_from_sockaddr(peer, len, &s->addr) < 0 || !mailq2_auth_any(mq_auth(), &s->addr)) {
		log_info("event=mailq_no_access");
		mq_say(s, "550 NO ACCESS FOR YOU\n");
		s->closing = 1;
	} else if (mq_challenge(s) < 0) {
		log_err("event=getentropy_failed error=\"%s\"", strerror(errno));
		s->closing = 1;
	} else
		io_printf(s->io, "version zmailer 2.0\n%s\n", s->challenge);
	mq_pump(s);
}

void mailq2d_init(void)
{
	mq_auth_path();
	if (*mq.path && !mq_auth())
		log_err("event=mailq_auth_unreadable path=%s error=\"%s\" hint=\"every client gets 550\"",
		        mq.path, strerror(errno));
	else if (!*mq.path)
		log_debug("event=mailq_no_auth_file hint=\"set the mailq_auth key; every client gets 550\"");
}
