/* smtp_session — see smtp_session.h. One state machine per client:
 *
 *   io (src/lib/io.h: socket, TLS, input, timeout)
 *      ──► line splitter ──► smtp_cmd_parse ──► handler table ──► reply (staged)
 *      └─► (DATA mode) smtp_data decoder ──► 64 KiB sink ──► data file fd
 *
 * PIPELINING: all complete commands in the input are handled in order; a handler that needs
 * lookup or queue sets s->wait and processing stops (io stops reading) until the answer
 * comes; replies are staged and handed to io in one batch when the input is used up or the
 * session waits no more. Idle sessions hold no buffers: io lends its shared read buffer and
 * frees its own when empty, the staging buffer is freed when handed over, the sink exists
 * only during DATA. */
#include "ternd/smtp/smtp_session.h"
#include "ternd/smtp/smtp_session_priv.h"
#include "ternd/smtp/smtp_auth.h"
#include "ternd/smtp/smtp_commit.h"
#include "ternd/proto.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/io.h"
#include "lib/log.h"
#include "mail/addr.h"
#include "mail/sasl.h"
#include "mail/smtp_cmd.h"
#include "mail/smtp_data.h"
#include "mail/smtp_reply.h"
#include "mail/table.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef void (*session_cmd_fn)(struct smtp_session *s, const char *arg);
static void session_run(struct smtp_session *s);
static void session_finish(struct smtp_session *s);

/* ---- replies ----------------------------------------------------------------------- */

void smtp_session_reply(struct smtp_session *s, int code, const char *esc, const char *fmt, ...)
{
	char text[600], q[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	smtp_reply_check(s->cmd, code);
	if (esc && (s->esmtp || s->cmd == SMTP_CMD_NONE))
		buf_printf(&s->out, "%d %s %s\r\n", code, esc, text);
	else
		buf_printf(&s->out, "%d %s\r\n", code, text);
	if (code >= 400)
		log_info("event=reject sid=%u ip=%s cmd=%s code=%d text=\"%s\"", s->id, s->ip,
		    smtp_cmd_name(s->cmd), code, log_quote(q, sizeof q, text, strlen(text)));
	if (code >= 500 && code <= 503 && ++s->nerr == SMTP_MAX_ERRORS) {
		s->cmd = SMTP_CMD_NONE;
		smtp_session_reply(s, 421, "4.7.0", "%s Too many errors; closing connection",
		    s->srv->cfg->me);
		s->quit = 1;
		s->endwhy = "too_many_errors";
	}
}

/* a complete reply line "NNN text" (src/mail/sasl.h's replies and prompts) */
void smtp_session_reply_line(struct smtp_session *s, const char *line)
{
	int code = atoi(line);
	smtp_session_reply(s, code, NULL, "%s", line[0] && line[1] && line[2] && line[3] ? line + 4 : "");
}

void smtp_session_close(struct smtp_session *s, const char *reason)
{
	if (s->dead)
		return;
	s->dead = 1;
	log_info("event=disconnect sid=%u ip=%s reason=%s cmds=%u msgs=%u rcpts=%u errors=%u",
	    s->id, s->ip, reason, s->ncmd, s->nmsg, s->nrcpt_total, s->nerr);
}

/* hand the staged replies to io, which sends them at the end of its callback or when the
 * socket is writable */
void smtp_session_flush(struct smtp_session *s)
{
	if (s->out.len == 0)
		return;
	io_write(s->io, s->out.p, s->out.len);
	buf_free(&s->out);
}

/* the last words before hanging up: staged replies out now, as far as the socket takes them */
static void session_flush_now(struct smtp_session *s)
{
	smtp_session_flush(s);
	(void)io_flush(s->io);
}

/* ---- the transaction ------------------------------------------------------------------ */

void smtp_session_txn_reset(struct smtp_session *s)
{
	free(s->sender);
	s->sender = NULL;
	for (uint32_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
	s->rcpt = NULL;
	s->nrcpt = s->rcptcap = s->rcpt_tries = 0;
	s->rcptbytes = 0;
	table_map_free(s->rcptset, NULL);
	s->rcptset = NULL;
	free(s->pend);
	s->pend = NULL;
	free(s->mailauth);
	s->mailauth = NULL;
}

static void session_add_rcpt(struct smtp_session *s, char *addr)
{
	if (s->nrcpt == s->rcptcap) {
		s->rcptcap = s->rcptcap ? s->rcptcap * 2 : 4;
		s->rcpt = xrealloc(s->rcpt, s->rcptcap * sizeof *s->rcpt);
	}
	s->rcpt[s->nrcpt++] = addr;
	s->rcptbytes += smtp_commit_rcpt_bytes(addr);
	s->nrcpt_total++;
	if (!s->rcptset)
		s->rcptset = table_map_new();
	table_map_put(s->rcptset, addr, addr);       /* non-NULL: table_map_get finds it */
}

/* tell the queue to remove an opened data file */
static void session_send_abort(struct smtp_session *s, uint64_t msgid)
{
	struct msg m;
	if (!msgid || !s->srv->queue_up)
		return;
	msg_init(&m, M_MSG_ABORT, s->id);
	msg_u64(&m, msgid);
	chan_send(s->srv->queue, &m);
}

/* abort the message being received (if any) and drop the sink */
static void session_sink_abort(struct smtp_session *s)
{
	if (s->sink) {
		if (s->sink->fd >= 0)
			close(s->sink->fd);
		free(s->sink);
		s->sink = NULL;
	}
	session_send_abort(s, s->msgid);
	s->msgid = 0;
}

void smtp_session_set_pend(struct smtp_session *s, char *addr)
{
	free(s->pend);
	s->pend = addr;
}

/* send a request to lookup or queue; -1 (and a 451 reply) when that peer is gone */
static int session_ask(struct smtp_session *s, int toqueue, struct msg *m, int wait)
{
	if (!(toqueue ? s->srv->queue_up : s->srv->lookup_up)) {
		msg_discard(m);
		smtp_session_reply(s, 451, "4.3.0", "Temporary failure, try again later");
		return -1;
	}
	s->wait = (uint8_t)wait;
	chan_send(toqueue ? s->srv->queue : s->srv->lookup, m);
	return 0;
}

/* ---- commands --------------------------------------------------------------------------- */

static void session_helo_common(struct smtp_session *s, const char *arg, int esmtp)
{
	size_t n = strlen(arg);
	if (n > SMTP_HELO_MAX)
		n = SMTP_HELO_MAX;
	free(s->helo);
	s->helo = xstrndup(arg, n);
	for (char *p = s->helo; *p; p++)       /* one token of printable ASCII for logs/headers */
		if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127)
			*p = '_';
	smtp_session_txn_reset(s);
	s->greeted = 1;
	s->esmtp = esmtp ? 1 : 0;
}

static void session_ehlo(struct smtp_session *s, const char *arg)
{
	const struct config *cfg = s->srv->cfg;
	session_helo_common(s, arg, 1);
	smtp_reply_check(s->cmd, 250);
	buf_printf(&s->out, "250-%s\r\n250-PIPELINING\r\n", cfg->me);
	if (cfg->databytes)
		buf_printf(&s->out, "250-SIZE %llu\r\n", (unsigned long long)cfg->databytes);
	else
		buf_adds(&s->out, "250-SIZE\r\n");
	if (smtp_auth_tls_offered(s))
		buf_adds(&s->out, "250-STARTTLS\r\n");
	if (smtp_auth_offered(s))
		buf_printf(&s->out, "250-AUTH %s\r\n", cfg->authmechs);
	buf_adds(&s->out, "250-8BITMIME\r\n250-ETRN\r\n250 ENHANCEDSTATUSCODES\r\n");
}

static void session_helo(struct smtp_session *s, const char *arg)
{
	session_helo_common(s, arg, 0);
	smtp_session_reply(s, 250, NULL, "%s", s->srv->cfg->me);
}

/* xtext (RFC 3461 4): printable ASCII but "+" and "=", or "+" and two uppercase hex digits;
 * at most 500 octets (the value is a mailbox or <>) */
static int session_xtext_ok(const char *v)
{
	size_t n = 0;
	for (; *v; v++, n++) {
		unsigned char c = (unsigned char)*v;
		if (c == '+') {
			if (!strchr("0123456789ABCDEF", v[1]) || !v[1] ||
			    !strchr("0123456789ABCDEF", v[2]) || !v[2])
				return 0;
			v += 2;
		} else if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return n > 0 && n <= 500;
}

/* ESMTP parameters of MAIL FROM: SIZE, BODY, AUTH; 0 ok, -1 replied */
static int session_mail_params(struct smtp_session *s, const char *params)
{
	struct addr_param p;
	const char *why;
	uint64_t size, max = s->srv->cfg->databytes;
	int r;
	while ((r = addr_param_next(&params, &p, &why)) > 0) {
		if (strcmp(p.key, "SIZE") == 0) {
			if (str_to_u64(p.val, 0, UINT64_MAX, &size) < 0) {
				smtp_session_reply(s, 501, "5.5.4", "Bad SIZE parameter");
				return -1;
			}
			if (max && size > max) {
				smtp_session_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
				return -1;
			}
		} else if (strcmp(p.key, "BODY") == 0) {
			if (str_casecmp(p.val, "7BIT") != 0 && str_casecmp(p.val, "8BITMIME") != 0) {
				smtp_session_reply(s, 501, "5.5.4", "Unsupported BODY type");
				return -1;
			}
		} else if (strcmp(p.key, "AUTH") == 0 && (s->authlogin || smtp_auth_offered(s))) {
			if (!session_xtext_ok(p.val)) {
				smtp_session_reply(s, 501, "5.5.4", "Bad AUTH parameter");
				return -1;
			}
			/* kept only from an authenticated session; otherwise it is <> (RFC 4954 5) */
			free(s->mailauth);
			s->mailauth = s->authlogin ? xstrdup(p.val) : NULL;
		} else {
			smtp_session_reply(s, 555, "5.5.4", "Unsupported option: %s", p.key);
			return -1;
		}
	}
	if (r < 0)
		smtp_session_reply(s, 501, "5.5.4", "%s", why);
	return r;
}

static void session_mail(struct smtp_session *s, const char *arg)
{
	struct addr a;
	struct msg m;
	if (!s->greeted)
		smtp_session_reply(s, 503, "5.5.1", "Send HELO or EHLO first");
	else if (s->sender)
		smtp_session_reply(s, 503, "5.5.1", "Nested MAIL command");
	else if (s->policy->auth == CFG_AUTH_REQUIRED && !s->authlogin)
		smtp_session_reply_line(s, SASL_REPLY_NEEDED);
	else if (addr_parse(arg, ADDR_SENDER, &a) < 0)
		smtp_session_reply(s, a.code, a.code == 553 ? "5.6.7" : "5.1.7",
		    "Bad sender address syntax: %s", a.why);
	else if (session_mail_params(s, a.params) == 0) {
		smtp_session_set_pend(s, xstrdup(a.mailbox));
		msg_init(&m, M_MAIL_CHECK, s->id);
		msg_str(&m, s->pend);
		session_ask(s, 0, &m, W_MAIL);
	}
}

static void session_rcpt_ask(struct smtp_session *s, int wait)
{
	struct msg m;
	msg_init(&m, M_RCPT_CHECK, s->id);
	msg_str(&m, s->ip);
	msg_str(&m, s->pend);
	if (s->authlogin && s->policy->relayauth)
		msg_str(&m, s->authlogin);       /* authenticated: lookup grants relay */
	session_ask(s, 0, &m, wait);
}

/* the session's one timer: a tarpitted RCPT goes on, or a held AUTH answer goes out */
static void session_timer(int fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	if (s->wait == W_TARPIT) {
		s->wait = W_NONE;
		session_rcpt_ask(s, W_RCPT);
	} else if (s->wait == W_AUTHDELAY)
		smtp_auth_delayed(s);
	session_finish(s);
}

void smtp_session_timer_start(struct smtp_session *s, int wait, long ms)
{
	if (!s->tev)
		s->tev = ev_new(-1, 0, session_timer, s);
	s->wait = (uint8_t)wait;
	ev_add(s->tev, ms);
}

/* RCPT TO: ESMTP parameters (none are advertised); 0 none, -1 replied */
static int session_rcpt_params(struct smtp_session *s, const char *params)
{
	struct addr_param p;
	const char *why;
	if (!*params)
		return 0;
	if (addr_param_next(&params, &p, &why) < 0)
		smtp_session_reply(s, 501, "5.5.4", "%s", why);
	else
		smtp_session_reply(s, 555, "5.5.4", "Unsupported option: %s", p.key);
	return -1;
}

static void session_rcpt(struct smtp_session *s, const char *arg)
{
	const struct config *cfg = s->srv->cfg;
	struct addr a;
	if (!s->sender) {
		smtp_session_reply(s, 503, "5.5.1", "Need MAIL command");
		return;
	}
	if (addr_parse(arg, ADDR_RCPT, &a) < 0) {
		smtp_session_reply(s, a.code, a.code == 553 ? "5.6.7" : "5.1.3",
		    "Bad recipient address syntax: %s", a.why);
		return;
	}
	if (session_rcpt_params(s, a.params) < 0)
		return;
	char *canon;
	if (a.postmaster) {
		size_t n = strlen(cfg->me) + 12;
		canon = xmalloc(n);
		snprintf(canon, n, "postmaster@%s", cfg->me);
		addr_domain_lower(canon + 11);
	} else
		canon = xstrdup(a.mailbox);
	/* the same recipient again (after addr_parse's canonicalisation: domain lowercased,
	 * needless quotes gone): 250, recorded once, not counted again. Local parts keep their
	 * case here (the smtp role cannot tell local domains); routing merges the rest. */
	if (s->rcptset && table_map_get(s->rcptset, canon)) {
		log_debug("event=rcpt_duplicate sid=%u", s->id);
		free(canon);
		smtp_session_reply(s, 250, "2.1.5", "Ok");
		return;
	}
	/* maxrcptcount, and always what one commit to the queue can carry (maxrcptcount 0) */
	if ((cfg->maxrcptcount && s->nrcpt >= cfg->maxrcptcount) ||
	    !smtp_commit_fits(s->nrcpt, s->rcptbytes, canon)) {
		free(canon);
		smtp_session_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	smtp_session_set_pend(s, canon);
	if (cfg->tarpitcount && cfg->tarpitdelay && ++s->rcpt_tries > cfg->tarpitcount) {
		smtp_session_timer_start(s, W_TARPIT, (long)(cfg->tarpitdelay * 1000));
		return;
	}
	session_rcpt_ask(s, W_RCPT);
}

static void session_data(struct smtp_session *s, const char *arg)
{
	struct msg m;
	if (!s->sender)
		smtp_session_reply(s, 503, "5.5.1", "Need MAIL command");
	else if (s->nrcpt == 0)
		smtp_session_reply(s, 503, "5.5.1", "Need RCPT command");
	else {
		msg_init(&m, M_MSG_OPEN, s->id);
		session_ask(s, 1, &m, W_OPEN);
	}
}

static void session_rset(struct smtp_session *s, const char *arg)
{
	smtp_session_txn_reset(s);
	smtp_session_reply(s, 250, "2.0.0", "Ok");
}

static void session_noop(struct smtp_session *s, const char *arg)
{
	smtp_session_reply(s, 250, "2.0.0", "Ok");
}

static void session_quit(struct smtp_session *s, const char *arg)
{
	smtp_session_reply(s, 221, "2.0.0", "Bye");
	s->quit = 1;
	s->endwhy = "quit";
}

static void session_vrfy(struct smtp_session *s, const char *arg)
{
	struct addr a;
	if (!s->srv->cfg->vrfy || addr_parse(arg, ADDR_RCPT, &a) < 0 || a.postmaster) {
		smtp_session_reply(s, 252, "2.1.5",
		    "Cannot VRFY user, but will accept message and attempt delivery");
		return;
	}
	smtp_session_set_pend(s, xstrdup(a.mailbox));
	session_rcpt_ask(s, W_VRFY);
}

static void session_expn(struct smtp_session *s, const char *arg)
{
	if (!s->srv->cfg->expn)
		smtp_session_reply(s, 502, "5.5.1", "Command not implemented");
	else
		smtp_session_reply(s, 252, "2.1.5", "Cannot EXPN list, but will accept message");
}

static void session_help(struct smtp_session *s, const char *arg)
{
	smtp_session_reply(s, 214, "2.0.0",
	    "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP; see RFC 5321");
}

/* ETRN (RFC 1985): start the queue for a domain; the scheduler says how many recipients it
 * made ready. Option characters '@' (subdomains too) and '#' (queue name) are accepted. */
static void session_etrn(struct smtp_session *s, const char *arg)
{
	const char *dom = (*arg == '@' || *arg == '#') ? arg + 1 : arg;
	if (!s->greeted) {
		smtp_session_reply(s, 503, "5.5.1", "Send HELO/EHLO first");
		return;
	}
	if (s->sender) {
		smtp_session_reply(s, 503, "5.5.1", "ETRN not allowed inside a mail transaction");
		return;
	}
	if (!addr_domain_valid(dom, strlen(dom))) {
		smtp_session_reply(s, 501, "5.5.4", "Syntax: ETRN domain");
		return;
	}
	if (!s->srv->queue_up) {
		smtp_session_reply(s, 458, "4.3.0", "Unable to queue messages for node %s", dom);
		return;
	}
	struct msg m;
	msg_init(&m, M_SCHED_ETRN, s->id);
	msg_str(&m, arg);
	chan_send(s->srv->queue, &m);
	smtp_session_set_pend(s, xstrdup(dom));
	s->wait = W_ETRN;
}

static void session_etrn_result(struct smtp_session *s, uint64_t n, int ok)
{
	s->wait = W_NONE;
	if (!ok || n == SCHED_ETRN_DOWN)
		smtp_session_reply(s, 458, "4.3.0", "Unable to queue messages for node %s", s->pend);
	else if (n == 0)
		smtp_session_reply(s, 251, "2.0.0", "OK, no messages waiting for node %s", s->pend);
	else
		smtp_session_reply(s, 253, "2.0.0", "OK, %llu pending messages for node %s started",
		    (unsigned long long)n, s->pend);
	smtp_session_set_pend(s, NULL);
}

static void session_notimpl(struct smtp_session *s, const char *arg)
{
	smtp_session_reply(s, 502, "5.5.1", "Command not implemented");
}

static const session_cmd_fn session_cmds[SMTP_CMD_COUNT] = {
	[SMTP_CMD_EHLO] = session_ehlo,   [SMTP_CMD_HELO] = session_helo,
	[SMTP_CMD_MAIL] = session_mail,   [SMTP_CMD_RCPT] = session_rcpt,
	[SMTP_CMD_DATA] = session_data,   [SMTP_CMD_RSET] = session_rset,
	[SMTP_CMD_NOOP] = session_noop,   [SMTP_CMD_QUIT] = session_quit,
	[SMTP_CMD_VRFY] = session_vrfy,   [SMTP_CMD_EXPN] = session_expn,
	[SMTP_CMD_HELP] = session_help,   [SMTP_CMD_SEND] = session_notimpl,
	[SMTP_CMD_SOML] = session_notimpl, [SMTP_CMD_SAML] = session_notimpl,
	[SMTP_CMD_TURN] = session_notimpl, [SMTP_CMD_ETRN] = session_etrn,
	[SMTP_CMD_AUTH] = smtp_auth_cmd, [SMTP_CMD_STARTTLS] = smtp_auth_starttls,
	[SMTP_CMD_BDAT] = session_notimpl,
};

static void session_command(struct smtp_session *s, char *line, size_t len)
{
	struct smtp_cmd c;
	s->ncmd++;
	if (s->srv->draining) {
		s->cmd = SMTP_CMD_NONE;
		smtp_session_reply(s, 421, "4.3.2", "%s Service shutting down", s->srv->cfg->me);
		s->quit = 1;
		s->endwhy = "shutdown";
		return;
	}
	int r = smtp_cmd_parse(line, len, &c);
	s->cmd = c.id;
	if (r == 0 && session_cmds[c.id])
		session_cmds[c.id](s, c.arg);
	else
		smtp_session_reply(s, r < 0 ? c.code : 500, r < 0 ? c.esc : "5.5.1", "%s",
		    r < 0 ? c.text : "Command unrecognized");
}

/* ---- DATA --------------------------------------------------------------------------------- */

static void session_sink_write(struct smtp_sink *k)
{
	size_t off = 0;
	if (k->werr || k->dec.toolong || k->dec.toobig || k->dec.nul) {
		k->len = 0;
		return;
	}
	while (off < k->len) {
		ssize_t n = write(k->fd, k->buf + off, k->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			k->werr = n < 0 ? errno : EIO;
			break;
		}
		off += (size_t)n;
		k->written += (size_t)n;
	}
	k->len = 0;
}

static void session_data_start(struct smtp_session *s, int fd)
{
	const struct config *cfg = s->srv->cfg;
	struct buf h;
	struct io_tls_info t;
	io_tls_info(s->io, &t);
	struct smtp_received r = { .helo = s->helo, .ip = s->ip, .me = cfg->me, .esmtp = s->esmtp,
	                           .msgid = s->msgid, .rcpt = s->nrcpt == 1 ? s->rcpt[0] : NULL,
	                           .when = time(NULL), .tls_version = t.version,
	                           .tls_cipher = t.cipher, .tls_bits = t.bits,
	                           .auth = s->authlogin != NULL,
	                           .authlogin = cfg->authprepend ? s->authlogin : NULL };
	struct smtp_sink *k = xmalloc(sizeof *k);
	k->fd = fd;
	k->werr = 0;
	k->written = 0;
	smtp_data_init(&k->dec, cfg->databytes);
	buf_init(&h);
	smtp_data_received(&h, &r);
	k->len = h.len < SMTP_SINK_SIZE / 2 ? h.len : SMTP_SINK_SIZE / 2;
	memcpy(k->buf, h.p, k->len);
	buf_free(&h);
	s->sink = k;
	s->mode = MODE_DATA;
	smtp_session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* one word of client text in the origin: printable, no blanks */
static void session_origin_word(struct buf *b, const char *key, const char *v)
{
	buf_printf(b, " %s=", key);
	for (size_t i = 0; v[i] && i < 255; i++)
		buf_addc(b, (unsigned char)v[i] > 32 && (unsigned char)v[i] < 127 ? v[i] : '?');
}

/* the envelope's origin (doc/QUEUE.md): where the message came from, and as whom */
static void session_origin(struct smtp_session *s, struct buf *b)
{
	buf_init(b);
	buf_printf(b, "smtp ip=%s", s->ip);
	session_origin_word(b, "helo", s->helo ? s->helo : "");
	if (io_tls(s->io))
		buf_adds(b, " tls=yes");
	if (s->authlogin)
		session_origin_word(b, "login", s->authlogin);
	if (s->mailauth)
		session_origin_word(b, "mailauth", s->mailauth);
}

static void session_data_end(struct smtp_session *s)
{
	struct smtp_sink *k = s->sink;
	struct msg m;
	struct buf origin;
	session_sink_write(k);
	s->mode = MODE_CMD;
	int werr = k->werr, toolong = k->dec.toolong, toobig = k->dec.toobig, nul = k->dec.nul > 0;
	if (k->dec.bare_lf || k->dec.bare_cr)
		log_info("event=bare_eol sid=%u ip=%s bare_lf=%u bare_cr=%u", s->id, s->ip,
		    k->dec.bare_lf, k->dec.bare_cr);
	s->msgbytes = k->written;
	if (toolong || toobig || werr || nul) {
		session_sink_abort(s);
		smtp_session_txn_reset(s);
		if (nul)                          /* 554: DATA's "transaction failed" (seed 001) */
			smtp_session_reply(s, 554, "5.6.0", "Message contains NUL characters");
		else if (toolong)
			smtp_session_reply(s, 500, "5.5.2", "Line too long");
		else if (toobig)
			smtp_session_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
		else {
			struct smtp_commit_reply e = smtp_commit_werr(werr);
			smtp_session_reply(s, e.code, e.enh, "%s", e.text);
		}
		return;
	}
	close(k->fd);
	free(k);
	s->sink = NULL;
	session_origin(s, &origin);
	smtp_commit_msg(&m, s->id, s->msgid, s->sender, s->rcpt, s->nrcpt, origin.p, s->msgbytes);
	buf_free(&origin);
	if (session_ask(s, 1, &m, W_COMMIT) < 0) {
		s->msgid = 0;                      /* the queue is gone: nothing to abort */
		smtp_session_txn_reset(s);
	}
}

/* DATA mode input: decode into the sink; returns octets consumed */
static size_t session_data_input(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_sink *k = s->sink;
	size_t i = 0;
	while (i < n && !k->dec.done) {
		if (SMTP_SINK_SIZE - k->len < 4096)
			session_sink_write(k);
		size_t room = SMTP_SINK_SIZE - k->len - 1, out;
		size_t chunk = n - i < room ? n - i : room;
		i += smtp_data_feed(&k->dec, p + i, chunk, k->buf + k->len, &out);
		k->len += out;
		if (k->werr || k->dec.toolong || k->dec.toobig || k->dec.nul)
			k->len = 0;
	}
	if (k->dec.done)
		session_data_end(s);
	return i;
}

/* ---- input --------------------------------------------------------------------------------- */

/* command mode: handle one line; 0 if it is not complete yet */
static size_t session_line_input(struct smtp_session *s, const char *p, size_t n)
{
	char line[SMTP_CMD_LINE_MAX + 1];
	const char *nl = memchr(p, '\n', n);
	if (!nl) {
		if (n < SMTP_CMD_LINE_MAX)
			return 0;
		s->mode = MODE_SKIP;           /* answer once, when the line finally ends */
		return n;
	}
	size_t len = (size_t)(nl - p);
	if (len > 0 && p[len - 1] == '\r')
		len--;
	if (len > SMTP_CMD_LINE_MAX - 2) {
		s->cmd = SMTP_CMD_UNKNOWN;
		smtp_session_reply(s, 500, "5.5.2", "Line too long");
	} else {
		memcpy(line, p, len);
		session_command(s, line, len);
	}
	return (size_t)(nl - p) + 1;
}

static size_t session_skip_input(struct smtp_session *s, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	if (!nl)
		return n;
	s->mode = MODE_CMD;
	s->cmd = SMTP_CMD_UNKNOWN;
	smtp_session_reply(s, 500, "5.5.2", "Line too long");
	return (size_t)(nl - p) + 1;
}

static int session_can_work(struct smtp_session *s)
{
	return !s->dead && !s->quit && s->wait == W_NONE &&
	       s->out.len + io_queued(s->io) < SMTP_OUT_HIGH;
}

/* handle what io holds, one command line or DATA chunk at a time, each consumed (io_drop)
 * before the next: a command that changes the connection (STARTTLS) finds only what came
 * after it still buffered */
static void session_run(struct smtp_session *s)
{
	while (session_can_work(s)) {
		size_t n, k;
		const char *p = io_data(s->io, &n);
		if (n == 0)
			return;
		if (s->mode == MODE_DATA)
			k = session_data_input(s, p, n);
		else if (s->mode == MODE_SKIP)
			k = session_skip_input(s, p, n);
		else if (s->mode == MODE_AUTH)
			k = smtp_auth_input(s, p, n);
		else
			k = session_line_input(s, p, n);
		io_drop(s->io, k);
		if (k == 0)
			return;                     /* a partial line: io keeps it */
		smtp_auth_after_command(s);
	}
}

/* handle buffered input, then stage the batch of replies out unless a reply is still owed */
static void session_pump(struct smtp_session *s)
{
	session_run(s);
	if (s->srv->draining && !s->dead && !s->quit && s->mode == MODE_CMD &&
	    s->wait == W_NONE) {
		s->cmd = SMTP_CMD_NONE;
		smtp_session_reply(s, 421, "4.3.2", "%s Service shutting down", s->srv->cfg->me);
		s->quit = 1;
		s->endwhy = "shutdown";
	}
	if (!s->dead && (s->wait == W_NONE || s->wait == W_TARPIT || s->wait == W_TLS ||
	                 s->wait == W_AUTHDELAY || s->quit))
		smtp_session_flush(s);
}

/* after every event: hand replies to io, read on or pause, free the session when done */
static void session_finish(struct smtp_session *s)
{
	session_pump(s);
	if (!s->dead && s->quit && s->out.len == 0 && io_queued(s->io) == 0)
		smtp_session_close(s, s->endwhy ? s->endwhy : "quit");
	if (!s->dead) {
		/* reading stays on during a handshake: io reads the peer's flight itself */
		io_set_read(s->io, session_can_work(s) || s->wait == W_TLS);
		return;
	}
	if (s->wait == W_COMMIT)
		s->msgid = 0;                  /* the queue decides that one: never abort it */
	session_sink_abort(s);
	smtp_session_txn_reset(s);
	smtp_auth_clear(s);
	ev_free(s->tev);
	io_free(s->io);
	buf_free(&s->out);
	free(s->helo);
	s->srv->closed(s->srv, s, s->id, s->ipslot);
	free(s);
}

static void session_timeout(struct smtp_session *s)
{
	s->cmd = SMTP_CMD_NONE;
	smtp_session_reply(s, 421, "4.4.2", "%s Timeout; closing connection", s->srv->cfg->me);
	session_flush_now(s);
	smtp_session_close(s, "timeout");
}

static void session_io(struct io *io, int evt, void *arg)
{
	struct smtp_session *s = arg;
	switch (evt) {
	case IO_TLSREADY:
		smtp_auth_tls_ready(s);
		break;
	case IO_TIMEOUT:
		session_timeout(s);
		break;
	case IO_DISCONNECTED:
		smtp_session_close(s, "eof");
		break;
	case IO_ERROR:
		log_info("event=io_error sid=%u ip=%s tls=%s error=\"%s\"", s->id, s->ip,
		    s->wait == W_TLS ? "handshake" : io_tls(io) ? "yes" : "no", io_error(io));
		smtp_session_close(s, s->wait == W_TLS ? "tls_failed" : "io_error");
		break;
	default:                            /* IO_DATAIN, IO_LOWAT: run what can run now */
		break;
	}
	session_finish(s);
}

/* ---- IPC answers ------------------------------------------------------------------------- */

/* lookup verdict -> reply, per question asked; row V_TEMP doubles as the default.
 * Texts take the address being checked as their one %s. */
struct session_verdict { short code; const char *esc, *text; };
#define SESSION_NV (V_DISABLED + 1)
static const struct session_verdict session_verdicts[3][SESSION_NV] = {
	{   /* W_MAIL */
		[V_OK]      = { 250, "2.1.0", "Ok" },
		[V_NOUSER]  = { 553, "5.7.1", "<%s>: Sender address rejected" },
		[V_NORELAY] = { 553, "5.7.1", "<%s>: Sender address rejected" },
		[V_TEMP]    = { 451, "4.3.0", "Temporary lookup failure, try again later" },
		[V_BAD]     = { 553, "5.7.1", "<%s>: Sender address rejected" },
		[V_DISABLED] = { 553, "5.7.1", "<%s>: Sender address rejected" },
	}, { /* W_RCPT */
		[V_OK]      = { 250, "2.1.5", "Ok" },
		[V_NOUSER]  = { 550, "5.1.1", "<%s>: Recipient address rejected: User unknown" },
		[V_NORELAY] = { 553, "5.7.1", "<%s>: Relaying denied" },
		[V_TEMP]    = { 451, "4.3.0", "Temporary lookup failure, try again later" },
		[V_BAD]     = { 550, "5.7.1", "<%s>: Recipient address rejected" },
		[V_DISABLED] = { 550, "5.2.1", "<%s>: Recipient address rejected: Mailbox disabled" },
	}, { /* W_VRFY */
		[V_OK]      = { 250, "2.1.5", "<%s>" },
		[V_NOUSER]  = { 550, "5.1.1", "<%s>: User unknown" },
		[V_NORELAY] = { 553, "5.7.1", "<%s>: Not verifiable here" },
		[V_TEMP]    = { 252, "2.1.5", "Cannot VRFY user, but will accept message" },
		[V_BAD]     = { 553, "5.7.1", "<%s>: Not verifiable here" },
		[V_DISABLED] = { 550, "5.2.1", "<%s>: Mailbox disabled" },
	},
};

static void session_check_result(struct smtp_session *s, uint64_t v)
{
	int w = s->wait;
	const struct session_verdict *r =
	    &session_verdicts[w - W_MAIL][v < SESSION_NV ? v : V_TEMP];
	s->wait = W_NONE;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	smtp_session_reply(s, r->code, r->esc, r->text, s->pend);
#pragma GCC diagnostic pop
	if (v == V_OK && w == W_MAIL) {
		s->sender = s->pend;
		s->pend = NULL;
		s->rcpt_tries = 0;
	} else if (v == V_OK && w == W_RCPT) {
		session_add_rcpt(s, s->pend);
		s->pend = NULL;
	}
	smtp_session_set_pend(s, NULL);
}

static void session_opened(struct smtp_session *s, uint64_t status, uint64_t msgid, int fd)
{
	s->wait = W_NONE;
	if (status == 0 && fd >= 0) {
		s->msgid = msgid;
		session_data_start(s, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	if (status == 0)                      /* opened without a file: give it back */
		session_send_abort(s, msgid);
	struct smtp_commit_reply e = smtp_commit_status(status == 554 ? 451 : status);
	smtp_session_reply(s, e.code, e.enh, "%s", e.text);
}

static void session_committed(struct smtp_session *s, uint64_t status, const char *text)
{
	char id[17], q[300];
	size_t n = strspn(text, "0123456789abcdefABCDEF");
	s->wait = W_NONE;
	if (status == 250) {
		if (n == 0 || n > 16 || text[n])
			snprintf(id, sizeof id, "%016llx", (unsigned long long)s->msgid);
		else
			memcpy(id, text, n + 1);
		log_info("event=queued id=%s sid=%u ip=%s from=<%s> nrcpt=%u size=%llu", id, s->id,
		    s->ip, log_quote(q, sizeof q, s->sender, strlen(s->sender)), s->nrcpt,
		    (unsigned long long)s->msgbytes);
		s->nmsg++;
		smtp_session_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
	} else {
		struct smtp_commit_reply e = smtp_commit_status(status);
		smtp_session_reply(s, e.code, e.enh, "%s", e.text);
	}
	s->msgid = 0;
	smtp_session_txn_reset(s);
}

/* The commit was sent and its outcome cannot be known (the queue's channel closed, or its
 * answer does not decode): the message may be queued (doc/QUEUE.md, the SMTP duplicate
 * window), so no reply may claim either outcome. A 4xx would make the client send it again
 * (a duplicate), a 250 could be a lie: hang up without a word, as a crash would. */
static void session_commit_unknown(struct smtp_session *s, const char *why)
{
	log_warn("event=commit_unknown sid=%u ip=%s msgid=%016llx reason=%s; closing without a reply",
	    s->id, s->ip, (unsigned long long)s->msgid, why);
	s->msgid = 0;                        /* the queue decides that one: never abort it */
	s->wait = W_NONE;
	smtp_session_txn_reset(s);
	session_flush_now(s);                /* replies to earlier commands, if any wait */
	smtp_session_close(s, "commit_unknown");
}

static int session_expects(int wait, uint32_t type)
{
	switch (type) {
	case M_CHECK_RESULT:  return wait == W_MAIL || wait == W_RCPT || wait == W_VRFY;
	case M_MSG_OPENED:    return wait == W_OPEN;
	case M_MSG_COMMITTED: return wait == W_COMMIT;
	case M_SCHED_ETRN_RESULT: return wait == W_ETRN;
	case M_AUTH_RESULT:   return wait == W_AUTH;
	default:              return 0;
	}
}

static void smtp_session_ipc(void *sess, uint32_t type, struct msg_reader *r, int fd)
{
	struct smtp_session *s = sess;
	uint64_t a = msg_get_u64(r), b = 0, c = 0;
	const char *text = "";
	if (type == M_MSG_OPENED)
		b = msg_get_u64(r);
	else if (type == M_AUTH_RESULT) {
		b = msg_get_u64(r);
		c = msg_get_u64(r);
		text = msg_get_str(r);
	} else if (type != M_SCHED_ETRN_RESULT)
		text = msg_get_str(r);
	int ok = msg_done(r) == 0;
	if (!session_expects(s->wait, type)) {
		log_warn("event=unexpected_answer sid=%u type=%u wait=%d", s->id, type, s->wait);
		if (fd >= 0)
			close(fd);
		if (type == M_MSG_OPENED && ok && a == 0)
			session_send_abort(s, b);
		return;
	}
	/* !ok: malformed (the codec logs it); the session takes it as a temporary failure */
	if (type == M_CHECK_RESULT) {
		if (*text)
			log_debug("event=check sid=%u verdict=%llu text=%s", s->id,
			    (unsigned long long)a, text);
		session_check_result(s, ok ? a : V_TEMP);
	} else if (type == M_SCHED_ETRN_RESULT)
		session_etrn_result(s, a, ok);
	else if (type == M_AUTH_RESULT)
		smtp_auth_result(s, ok ? a : AUTH_TEMP, ok ? b : 0, ok ? c : 0, ok ? text : "");
	else if (type == M_MSG_OPENED)
		session_opened(s, ok ? a : 451, b, fd);
	else if (!ok)
		session_commit_unknown(s, "bad_answer");
	else
		session_committed(s, a, text);
	session_run(s);
	session_finish(s);
}

static void smtp_session_peer_lost(void *sess)
{
	struct smtp_session *s = sess;
	if ((s->wait == W_MAIL || s->wait == W_RCPT || s->wait == W_VRFY) && !s->srv->lookup_up)
		session_check_result(s, V_TEMP);
	else if (s->wait == W_OPEN && !s->srv->queue_up)
		session_opened(s, 451, 0, -1);
	else if (s->wait == W_COMMIT && !s->srv->queue_up)
		session_commit_unknown(s, "queue_lost");
	else if (s->wait == W_ETRN && !s->srv->queue_up)
		session_etrn_result(s, 0, 0);
	else if (s->wait == W_AUTH && !s->srv->lookup_up)
		smtp_auth_result(s, AUTH_TEMP, 0, 0, "");
	else
		return;
	session_run(s);
	session_finish(s);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

struct smtp_session *smtp_session_new(struct smtp_srv *srv, int fd, uint32_t id,
                                      const char *ip, void *ipslot,
                                      const struct cfg_policy *policy)
{
	struct smtp_session *s = xcalloc(1, sizeof *s);
	s->policy = policy;
	s->srv = srv;
	s->id = id;
	s->ipslot = ipslot;
	snprintf(s->ip, sizeof s->ip, "%s", ip);
	buf_init(&s->out);
	s->io = io_new(fd, session_io, s);
	io_set_timeout(s->io, (long)(srv->cfg->timeoutsmtpd * 1000));
	log_info("event=connect sid=%u ip=%s", id, ip);
	return s;
}

void smtp_session_greet(struct smtp_session *s)
{
	s->cmd = SMTP_CMD_NONE;
	const char *cookie = s->srv->cfg->smtpclustercookie;  /* the cluster's mark (CLUSTER.md) */
	smtp_session_reply(s, 220, NULL, "%s ESMTP tern%s%s", s->srv->cfg->smtpgreeting,
	                   cookie && *cookie ? " " : "", cookie ? cookie : "");
}

void smtp_session_start(struct smtp_session *s)
{
	if (s->policy->tls != CFG_TLS_IMPLICIT)
		smtp_session_greet(s);
	else if (!s->srv->tls || io_start_tls_server(s->io, s->srv->tls) < 0) {
		log_warn("event=tls_failed sid=%u ip=%s error=\"%s\"", s->id, s->ip,
		    s->srv->tls ? io_error(s->io) : "no server certificate");
		smtp_session_close(s, "tls_failed");
	} else
		s->wait = W_TLS;                  /* the greeting follows the handshake */
	session_finish(s);
}

static void smtp_session_drain(void *sess)
{
	struct smtp_session *s = sess;
	if (s->dead || s->quit || s->mode == MODE_DATA || s->wait == W_OPEN || s->wait == W_COMMIT)
		return;                     /* a message is in flight: 421 after its reply */
	if (s->wait == W_TLS) {         /* mid-handshake: a 421 could not be sent anyway */
		smtp_session_close(s, "shutdown");
		session_finish(s);
		return;
	}
	if (s->tev)
		ev_del(s->tev);
	s->wait = W_NONE;
	s->cmd = SMTP_CMD_NONE;
	smtp_session_reply(s, 421, "4.3.2", "%s Service shutting down", s->srv->cfg->me);
	s->quit = 1;
	s->endwhy = "shutdown";
	session_finish(s);
}

static void smtp_session_kill(void *sess)
{
	struct smtp_session *s = sess;
	if (!s->dead && s->wait == W_COMMIT)
		session_commit_unknown(s, "shutdown");
	if (!s->dead) {
		s->cmd = SMTP_CMD_NONE;
		smtp_session_reply(s, 421, "4.3.2", "%s Service shutting down", s->srv->cfg->me);
		session_flush_now(s);
		smtp_session_close(s, "shutdown");
	}
	session_finish(s);
}

const struct smtp_proto_ops smtp_session_ops = {
	.ipc = smtp_session_ipc,
	.peer_lost = smtp_session_peer_lost,
	.drain = smtp_session_drain,
	.kill = smtp_session_kill,
};
