/* pop3_session — see pop3_session.h. States: AUTHZ (commands), SASL (AUTH PLAIN waits for
 * its response line), WAIT (lookup or the parent is asked; client input paused and kept for
 * the worker), DELAY (a refused login waits out the throttle), HELLO (the worker's first
 * line is awaited: it becomes the answer to PASS/APOP/AUTH), PUMP (octets both ways),
 * CLOSING (the last reply drains, then the end).
 * The timer: the throttle's delay (DELAY), the deferred end (CLOSING), and the bound on
 * WAIT and HELLO (timeoutpop3d: a lost request or a silent worker ends the session).
 * Owns: both ios and the timer. Trusts: nothing the client sends (lines bounded, bad commands
 * counted); plaintext passwords only over TLS unless `authplaintext yes`. */
#include "ternd/smtp/pop3_session.h"
#include "ternd/lookup/lookup_auth.h"
#include "ternd/proto.h"
#include "mail/pop3_cmd.h"
#include "mail/sasl.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/io.h"
#include "lib/log.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POP3_MAXBAD   10             /* bad commands before the session ends */
#define POP3_HIWAT    (256 * 1024)   /* pump: stop reading while the other side holds this */
#define POP3_OUT_HIGH (32 * 1024)    /* commands: stop reading while this much output waits */

enum pop3_st { PS_AUTHZ, PS_SASL, PS_WAIT, PS_DELAY, PS_HELLO, PS_PUMP, PS_CLOSING };

struct pop3_session {
	struct smtp_srv *srv;
	struct tls_ctx *tls;
	struct io *io, *w;
	struct ev *timer;                /* the throttle's delay; WAIT/HELLO's bound; the end */
	struct sasl *sasl;               /* an AUTH exchange in progress (src/mail/sasl.c) */
	uint32_t id;
	void *ipslot;
	enum pop3_st st;
	int bad, implicit, close_after, ended;
	const char *mech;
	char ip[INET6_ADDRSTRLEN];
	char user[POP3_MAXARG + 1];
	char stamp[128];                 /* APOP's timestamp, from the greeting */
};

static void pop3_io_cb(struct io *io, int evt, void *arg);
static void pop3_w_cb(struct io *io, int evt, void *arg);
static void pop3_lines(struct pop3_session *s);

/* ---- ending -------------------------------------------------------------------------------- */

static void pop3_end(struct pop3_session *s, const char *why)
{
	if (s->ended)
		return;
	s->ended = 1;
	log_info("event=pop3_close ip=%s user=%s reason=%s", s->ip, *s->user ? s->user : "-", why);
	io_free(s->io);
	io_free(s->w);                   /* the worker sees EOF: nothing is removed before QUIT */
	ev_free(s->timer);
	if (s->sasl) {
		sasl_clear(s->sasl);
		free(s->sasl);
	}
	s->srv->closed(s->srv, NULL, s->id, s->ipslot);
	free(s);
}

/* lookup's text for an -ERR line: printable, one line, bounded */
static int pop3_text_bad(const char *t)
{
	size_t n = 0;
	for (; t && *t; t++, n++)
		if ((unsigned char)*t < 0x20 || (unsigned char)*t >= 0x7f)
			return 1;
	return !t || n > 400;
}

static void pop3_timer(int fd, short what, void *arg);

static void pop3_later(struct pop3_session *s, long ms)
{
	if (!s->timer)
		s->timer = ev_new(-1, 0, pop3_timer, s);
	ev_add(s->timer, ms);
}

/* The last reply goes out, then the end (at IO_LOWAT, or at once from the loop when nothing
 * is left to send). Never frees s before returning: callers may still look at s->st. */
static void pop3_close(struct pop3_session *s, const char *line)
{
	if (line)
		io_printf(s->io, "%s\r\n", line);
	s->st = PS_CLOSING;
	io_set_read(s->io, 0);
	if (s->w) {
		io_free(s->w);
		s->w = NULL;
	}
	if (io_queued(s->io) == 0)
		pop3_later(s, 0);
}

static int pop3_plain_ok(const struct pop3_session *s)
{
	return io_tls(s->io) || s->srv->cfg->authplaintext;
}

/* ---- greeting and CAPA ---------------------------------------------------------------------- */

static void pop3_greet(struct pop3_session *s)
{
	static unsigned long long seq;
	snprintf(s->stamp, sizeof s->stamp, "<%ld.%llu.%lld@%s>", (long)getpid(), ++seq,
	         (long long)time(NULL), s->srv->cfg->me);
	io_printf(s->io, "+OK tern POP3 server ready %s\r\n", s->stamp);
}

/* ---- the login ------------------------------------------------------------------------------- */

static void pop3_login(struct pop3_session *s, const char *mech, const char *login,
                       const char *authzid, const char *secret, const char *response)
{
	if (login != s->user)
		snprintf(s->user, sizeof s->user, "%s", login);
	s->mech = mech;
	if (!s->srv->lookup_up) {
		io_print(s->io, "-ERR [SYS/TEMP] try again later\r\n");
		return;
	}
	struct msg m;
	msg_init(&m, M_POP_LOGIN, s->id);
	msg_str(&m, s->ip);
	msg_str(&m, mech);
	msg_str(&m, login);
	msg_str(&m, authzid);            /* the lookup role's rule, as for SMTP AUTH */
	msg_str(&m, secret);
	msg_str(&m, response);
	chan_send(s->srv->lookup, &m);
	s->st = PS_WAIT;
	io_set_read(s->io, 0);           /* what the client pipelined is kept for the worker */
	/* io's timer stops while reading is paused with nothing to send: this one bounds the
	 * wait for lookup, the parent and the worker's first line (a request lost on the way) */
	pop3_later(s, (long)s->srv->cfg->timeoutpop3d * 1000);
}

/* the mechanisms taken now, of those `authmechs` names (cfg->authmechmask, as for SMTP AUTH):
 * PLAIN and LOGIN carry the password, so only over TLS unless authplaintext; CRAM-MD5
 * always. CRAM-MD5 (like APOP) works only for users with a stored cleartext secret, so it
 * is taken but never advertised: clients pick the strongest mechanism listed (curl does)
 * and would fail for every user with a hashed password. */
static unsigned pop3_mechs(const struct pop3_session *s)
{
	unsigned m = SASL_MECH_BIT(SASL_CRAM_MD5);
	if (pop3_plain_ok(s))
		m |= SASL_MECH_BIT(SASL_PLAIN) | SASL_MECH_BIT(SASL_LOGIN);
	return m & s->srv->cfg->authmechmask;
}

/* the advertised mechanisms (CAPA's SASL line, AUTH without argument), each between pre
 * and post */
static void pop3_mech_list(struct pop3_session *s, const char *pre, const char *post)
{
	unsigned m = pop3_mechs(s);
	if (m & SASL_MECH_BIT(SASL_PLAIN))
		io_printf(s->io, "%sPLAIN%s", pre, post);
	if (m & SASL_MECH_BIT(SASL_LOGIN))
		io_printf(s->io, "%sLOGIN%s", pre, post);
}

/* AUTHORIZATION state's capabilities; the worker's CAPA (src/helpers/tern-pop3.c) lists the
 * TRANSACTION state's: the same without the login methods (RFC 2449 lets them differ) */
static void pop3_capa(struct pop3_session *s)
{
	io_print(s->io, "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
	                "AUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (pop3_plain_ok(s))
		io_print(s->io, "USER\r\n");
	if (pop3_mechs(s) & (SASL_MECH_BIT(SASL_PLAIN) | SASL_MECH_BIT(SASL_LOGIN))) {
		io_print(s->io, "SASL");
		pop3_mech_list(s, " ", "");
		io_print(s->io, "\r\n");
	}
	if (s->tls && !io_tls(s->io))
		io_print(s->io, "STLS\r\n");
	io_print(s->io, "IMPLEMENTATION tern\r\n.\r\n");
}

/* sasl.c speaks SMTP's replies: "334 X" goes out as "+ X", an error as -ERR and its text */
static void pop3_sasl_reply(struct pop3_session *s, const char *r)
{
	if (strncmp(r, "334", 3) == 0) {
		io_printf(s->io, "+ %s\r\n", r[3] ? r + 4 : "");
		return;
	}
	const char *t = r + strcspn(r, " ");
	t += strspn(t, " ");
	if (*t >= '2' && *t <= '5' && t[1] == '.')
		t += strcspn(t, " "), t += strspn(t, " ");      /* the enhanced status code */
	io_printf(s->io, "-ERR [AUTH] %s\r\n", t);
}

static void pop3_sasl_end(struct pop3_session *s)
{
	sasl_clear(s->sasl);
	free(s->sasl);
	s->sasl = NULL;
	if (s->st == PS_SASL)
		s->st = PS_AUTHZ;
}

/* what sasl_start/sasl_step said: prompt again, log in, or refuse */
static void pop3_sasl_rc(struct pop3_session *s, int rc)
{
	const struct sasl_cred *c = &s->sasl->cred;
	if (rc == SASL_NEXT) {
		s->st = PS_SASL;
		pop3_sasl_reply(s, s->sasl->reply);
		return;
	}
	s->st = PS_AUTHZ;
	if (rc != SASL_DONE) {
		if (rc != SASL_E_CANCEL)
			s->bad++;
		pop3_sasl_reply(s, s->sasl->reply);
	} else
		pop3_login(s, c->mech, c->login, c->authzid, c->secret, c->response);
	pop3_sasl_end(s);
}

static void pop3_auth(struct pop3_session *s, const struct pop3_cmd *c)
{
	char arg[POP3_MAXLINE + 2];
	if (!*c->arg) {
		io_print(s->io, "+OK\r\n");
		pop3_mech_list(s, "", "\r\n");
		io_print(s->io, ".\r\n");
		return;
	}
	int m = sasl_mech_parse(c->arg, strlen(c->arg));
	if ((m == SASL_PLAIN || m == SASL_LOGIN) && !pop3_plain_ok(s) &&
	    (s->srv->cfg->authmechmask & SASL_MECH_BIT(m))) {
		io_print(s->io, "-ERR [AUTH] use STLS first\r\n");
		return;
	}
	snprintf(arg, sizeof arg, "%s%s%s", c->arg, *c->arg2 ? " " : "", c->arg2);
	s->sasl = xcalloc(1, sizeof *s->sasl);
	pop3_sasl_rc(s, sasl_start(s->sasl, arg, pop3_mechs(s), s->srv->cfg->me));
	explicit_bzero(arg, sizeof arg);
}

static void pop3_stls(struct pop3_session *s)
{
	if (!s->tls || io_tls(s->io)) {
		io_print(s->io, "-ERR STLS not available\r\n");
		return;
	}
	io_print(s->io, "+OK begin TLS negotiation\r\n");
	long dropped = io_start_tls_server(s->io, s->tls);
	if (dropped > 0)
		log_warn("event=pop3_stls_pipelined ip=%s dropped=%ld", s->ip, dropped);
	if (dropped < 0)
		pop3_close(s, NULL);
	s->user[0] = '\0';               /* the state starts over on the protected channel */
}

/* ---- commands -------------------------------------------------------------------------------- */

static void pop3_command(struct pop3_session *s, char *line, size_t len)
{
	struct pop3_cmd c;
	int perr = pop3_cmd_parse(line, len, POP3_AUTHZ, &c);
	if (perr != P3E_OK) {
		s->bad++;
		io_printf(s->io, "-ERR %s\r\n", perr == P3E_STATE ? "not logged in" : pop3_cmd_error(perr));
		return;
	}
	switch (c.verb) {
	case P3_CAPA: pop3_capa(s); break;
	case P3_QUIT: pop3_close(s, "+OK bye"); break;
	case P3_STLS: pop3_stls(s); break;
	case P3_AUTH: pop3_auth(s, &c); break;
	case P3_APOP: pop3_login(s, "APOP", c.arg, "", s->stamp, c.arg2); break;
	case P3_USER:
		if (!pop3_plain_ok(s)) {
			io_print(s->io, "-ERR [AUTH] use STLS first\r\n");
			break;
		}
		snprintf(s->user, sizeof s->user, "%s", c.arg);
		io_print(s->io, "+OK\r\n");
		break;
	case P3_PASS:
		if (!*s->user || !pop3_plain_ok(s)) {
			s->bad++;
			io_print(s->io, "-ERR USER first\r\n");
			break;
		}
		pop3_login(s, "USER", s->user, "", c.arg, "");
		break;
	default:
		io_print(s->io, "-ERR not logged in\r\n");
		break;
	}
}

static int pop3_takes_commands(const struct pop3_session *s)
{
	return s->st == PS_AUTHZ || s->st == PS_SASL;
}

/* every complete line while the session takes commands; a client that pipelines without
 * reading the answers finds reading paused while POP3_OUT_HIGH waits (resumed at IO_LOWAT) */
static void pop3_lines(struct pop3_session *s)
{
	char *line;
	size_t len;
	while (pop3_takes_commands(s)) {
		if (io_queued(s->io) >= POP3_OUT_HIGH) {
			io_set_read(s->io, 0);
			return;
		}
		if (!(line = io_getline(s->io, &len)))
			break;
		if (len > POP3_MAXLINE) {
			pop3_close(s, "-ERR line too long");
			return;
		}
		/* the line may hold a password (PASS, APOP, AUTH, a SASL response): copied and
		 * wiped in io's buffer before any io_* call (which may move it), the copy after */
		char copy[POP3_MAXLINE + 1];
		memcpy(copy, line, len);
		copy[len] = '\0';
		explicit_bzero(line, len);
		if (s->st == PS_SASL)
			pop3_sasl_rc(s, sasl_step(s->sasl, copy, len));
		else
			pop3_command(s, copy, len);
		explicit_bzero(copy, len);
		if (s->bad >= POP3_MAXBAD) {
			pop3_close(s, "-ERR too many errors");
			return;
		}
	}
	if (pop3_takes_commands(s) && io_datalen(s->io) > POP3_MAXLINE)
		pop3_close(s, "-ERR line too long");
}

/* ---- the pump ------------------------------------------------------------------------------- */

/* what `from` holds goes to `to`; reading from `from` pauses while `to` is backed up */
static void pop3_pump(struct io *from, struct io *to)
{
	size_t n;
	const char *p = io_data(from, &n);
	if (n) {
		io_write(to, p, n);
		io_drop(from, n);
	}
	if (io_queued(to) > POP3_HIWAT)
		io_set_read(from, 0);
}

static void pop3_io_cb(struct io *io, int evt, void *arg)
{
	struct pop3_session *s = arg;
	switch (evt) {
	case IO_TLSREADY:
		if (s->implicit && !*s->stamp)
			pop3_greet(s);
		break;
	case IO_DATAIN:
		if (s->st == PS_PUMP)
			pop3_pump(s->io, s->w);
		else
			pop3_lines(s);
		break;
	case IO_LOWAT:
		if (s->st == PS_CLOSING)
			pop3_end(s, "closed");
		else if (s->st == PS_PUMP)
			io_set_read(s->w, 1);
		else if (pop3_takes_commands(s)) {
			io_set_read(s->io, 1);
			pop3_lines(s);           /* what was read before the pause */
		}
		break;
	case IO_TIMEOUT:
		if (s->st == PS_CLOSING || s->st == PS_PUMP)
			pop3_end(s, "timeout");
		else
			pop3_close(s, "-ERR timeout");
		break;
	case IO_DISCONNECTED:
		pop3_end(s, "disconnected");
		break;
	case IO_ERROR:
		log_info("event=pop3_error ip=%s error=\"%s\"", s->ip, io_error(io));
		pop3_end(s, "error");
		break;
	}
}

/* the worker's first line answers the login; then everything is pumped */
static void pop3_w_hello(struct pop3_session *s)
{
	size_t len;
	char *line = io_getline(s->w, &len);
	if (!line) {
		if (io_datalen(s->w) > POP3_MAXLINE)
			pop3_close(s, "-ERR [SYS/TEMP] unable to open the mailbox");
		return;
	}
	io_printf(s->io, "%s\r\n", line);
	if (strncmp(line, "+OK", 3) != 0) {
		pop3_close(s, NULL);
		return;
	}
	log_info("event=pop3_session ip=%s user=%s mech=%s tls=%s", s->ip, s->user, s->mech,
	         io_tls(s->io) ? "yes" : "no");
	s->st = PS_PUMP;
	pop3_pump(s->w, s->io);
	io_set_read(s->io, 1);           /* pipelined commands, kept so far, go to the worker */
}

static void pop3_w_cb(struct io *io, int evt, void *arg)
{
	struct pop3_session *s = arg;
	switch (evt) {
	case IO_DATAIN:
		if (s->st == PS_HELLO)
			pop3_w_hello(s);
		else if (s->st == PS_PUMP)
			pop3_pump(s->w, s->io);
		break;
	case IO_LOWAT:
		if (s->st == PS_PUMP)
			io_set_read(s->io, 1);
		break;
	case IO_DISCONNECTED:
	case IO_ERROR:                   /* the worker is done (QUIT) or gone: drain the client */
		if (s->st == PS_HELLO)
			io_print(s->io, "-ERR [SYS/TEMP] unable to open the mailbox\r\n");
		pop3_close(s, NULL);
		break;
	}
}

/* ---- answers --------------------------------------------------------------------------------- */

static void pop3_refused(struct pop3_session *s, uint64_t verdict, const char *text)
{
	if (text && *text)
		io_printf(s->io, "-ERR %s\r\n", text);
	else
		io_print(s->io, verdict == AUTH_TEMP ? "-ERR [SYS/TEMP] try again later\r\n" :
		                                       "-ERR [AUTH] authentication failed\r\n");
	if (s->close_after) {
		pop3_close(s, NULL);
		return;
	}
	s->st = PS_AUTHZ;
	s->user[0] = '\0';
	io_set_read(s->io, 1);
}

static void pop3_timer(int fd, short what, void *arg)
{
	struct pop3_session *s = arg;
	if (s->st == PS_CLOSING) {
		pop3_end(s, "closed");
		return;
	}
	if (s->st == PS_DELAY) {
		s->st = PS_WAIT;
		pop3_refused(s, AUTH_FAIL, NULL);
	} else if (s->st == PS_WAIT || s->st == PS_HELLO) {
		log_warn("event=pop3_login_timeout ip=%s user=%s state=%s", s->ip, s->user,
		         s->st == PS_WAIT ? "wait" : "hello");
		pop3_close(s, "-ERR [SYS/TEMP] try again later");
	}
}

static void pop3_result(struct pop3_session *s, struct msg_reader *r)
{
	uint64_t verdict = msg_get_u64(r), delay = msg_get_u64(r), hangup = msg_get_u64(r);
	const char *text = msg_get_str(r);
	if (msg_done(r) < 0 || pop3_text_bad(text))
		verdict = AUTH_TEMP, delay = 0, hangup = 0, text = "";
	log_info("event=pop3_auth_fail ip=%s login=%s mech=%s verdict=%llu delay_ms=%llu close=%llu",
	         s->ip, s->user, s->mech ? s->mech : "-", (unsigned long long)verdict,
	         (unsigned long long)delay, (unsigned long long)hangup);
	s->close_after = hangup != 0;
	if (verdict != AUTH_TEMP && delay > 0) {
		s->st = PS_DELAY;
		pop3_later(s, delay > 60000 ? 60000 : (long)delay);
		return;
	}
	pop3_refused(s, verdict, text);
}

static void pop3_ready(struct pop3_session *s, struct msg_reader *r, int fd)
{
	uint64_t status = msg_get_u64(r);
	if (msg_done(r) < 0 || status != 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		pop3_close(s, "-ERR [SYS/TEMP] unable to open the mailbox");
		return;
	}
	s->w = io_new(fd, pop3_w_cb, s);
	s->st = PS_HELLO;
}

static void pop3_session_ipc(void *sess, uint32_t type, struct msg_reader *r, int fd)
{
	struct pop3_session *s = sess;
	if (s->st != PS_WAIT) {          /* not asked (or given up): drop it */
		if (fd >= 0)
			close(fd);
		return;
	}
	if (type == M_POP_RESULT) {
		if (fd >= 0)
			close(fd);
		pop3_result(s, r);
	} else if (type == M_POP_READY)
		pop3_ready(s, r, fd);
	else if (fd >= 0)
		close(fd);
}

static void pop3_session_peer_lost(void *sess)
{
	struct pop3_session *s = sess;
	if (s->st != PS_WAIT || s->srv->lookup_up)
		return;
	pop3_refused(s, AUTH_TEMP, NULL);
}

/* Shutdown: a session that takes commands is told; one with a worker is cut (the worker
 * sees EOF before QUIT and removes nothing, so the client loses nothing but the session). */
static void pop3_session_drain(void *sess)
{
	struct pop3_session *s = sess;
	if (s->st == PS_AUTHZ || s->st == PS_SASL)
		pop3_close(s, "-ERR [SYS/TEMP] server shutting down");
	else if (s->st != PS_CLOSING)
		pop3_close(s, NULL);
}

static void pop3_session_kill(void *sess)
{
	struct pop3_session *s = sess;
	pop3_end(s, "shutdown");
}

const struct smtp_proto_ops pop3_session_ops = {
	.ipc = pop3_session_ipc,
	.peer_lost = pop3_session_peer_lost,
	.drain = pop3_session_drain,
	.kill = pop3_session_kill,
};

struct pop3_session *pop3_session_new(struct smtp_srv *srv, struct tls_ctx *tls, int implicit,
                                      int fd, uint32_t id, const char *ip, void *ipslot)
{
	struct pop3_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	s->tls = tls;
	s->id = id;
	s->ipslot = ipslot;
	s->implicit = implicit;
	snprintf(s->ip, sizeof s->ip, "%s", ip);
	s->io = io_new(fd, pop3_io_cb, s);
	io_set_timeout(s->io, (long)srv->cfg->timeoutpop3d * 1000);
	log_info("event=pop3_connect ip=%s tls=%s", ip, implicit ? "implicit" : "no");
	if (!implicit)
		pop3_greet(s);
	else if (!tls || io_start_tls_server(s->io, tls) < 0) {
		log_warn("event=pop3s_no_tls ip=%s reason=\"%s\"", ip, tls ? io_error(s->io) :
		         "no servercert");
		pop3_end(s, "no_tls");
		return NULL;
	}
	return s;
}
