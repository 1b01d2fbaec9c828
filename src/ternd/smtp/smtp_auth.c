/* smtp_auth — see smtp_auth.h. STARTTLS: the 220 goes out in the clear, whatever the client
 * pipelined behind it is discarded unread (CVE-2011-0411), and after the handshake the
 * session forgets everything (EHLO again). AUTH: the SASL exchange (src/mail/sasl.c) runs
 * here; the complete credentials go to lookup (M_AUTH_CHECK), whose verdict is held for the
 * throttle's delay before the 235/535/454/421. The password is wiped when the exchange ends.
 * Owns: the session's SASL exchange and its authenticated login. Trusts: nothing the client
 * sends; lookup's answer is checked by smtp_session_ipc() with msg_done() before it gets here
 * (and a missing canonical login is a tempfail). */
#include "ternd/smtp/smtp_auth.h"
#include "ternd/smtp/smtp_session_priv.h"
#include "ternd/proto.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "mail/sasl.h"
#include <stdlib.h>
#include <string.h>

/* ---- STARTTLS ------------------------------------------------------------------------------ */

/* STARTTLS (RFC 3207) is offered on a listener with tls=starttls and a certificate,
 * until the session is encrypted */
int smtp_auth_tls_offered(const struct smtp_session *s)
{
	return s->policy->tls == CFG_TLS_STARTTLS && s->srv->tls && !io_tls(s->io);
}

/* AUTH (RFC 4954) is offered where the listener allows it, and only on an encrypted
 * session unless authplaintext says otherwise */
int smtp_auth_offered(const struct smtp_session *s)
{
	return s->policy->auth != CFG_AUTH_NONE && (io_tls(s->io) || s->srv->cfg->authplaintext);
}

/* STARTTLS: 220, then the handshake starts once this line is consumed (session_run), and
 * whatever the client pipelined behind it is discarded unread (CVE-2011-0411) */
void smtp_auth_starttls(struct smtp_session *s, const char *arg)
{
	if (io_tls(s->io))
		smtp_session_reply(s, 503, "5.5.1", "TLS already active");
	else if (!smtp_auth_tls_offered(s))
		smtp_session_reply(s, 502, "5.5.1", "Command not implemented");
	else {
		smtp_session_reply(s, 220, "2.0.0", "Ready to start TLS");
		s->tls_go = 1;
	}
}

/* after each consumed command line: begin a handshake STARTTLS asked for */
void smtp_auth_after_command(struct smtp_session *s)
{
	if (!s->tls_go)
		return;
	s->tls_go = 0;
	smtp_session_flush(s);                  /* the 220 goes out in the clear, then the handshake */
	long dropped = io_start_tls_server(s->io, s->srv->tls);
	if (dropped < 0) {
		log_warn("event=tls_failed sid=%u ip=%s error=\"%s\"", s->id, s->ip,
		    io_error(s->io));
		smtp_session_close(s, "tls_failed");
		return;
	}
	if (dropped > 0)
		log_warn("event=starttls_pipelined sid=%u ip=%s dropped=%ld; commands sent after "
		    "STARTTLS discarded", s->id, s->ip, dropped);
	s->wait = W_TLS;
}

/* IO_TLSREADY: smtps greets now; after STARTTLS everything learnt before is forgotten
 * (RFC 3207 4.2): the client must say EHLO again */
void smtp_auth_tls_ready(struct smtp_session *s)
{
	struct io_tls_info t;
	io_tls_info(s->io, &t);
	log_info("event=tls sid=%u ip=%s version=%s cipher=%s bits=%d", s->id, s->ip,
	    t.version ? t.version : "?", t.cipher ? t.cipher : "?", t.bits);
	s->wait = W_NONE;
	if (s->policy->tls == CFG_TLS_IMPLICIT) {
		smtp_session_greet(s);                /* smtps: nothing was said yet */
		return;
	}
	smtp_session_txn_reset(s);
	smtp_auth_clear(s);
	free(s->helo);
	s->helo = NULL;
	s->greeted = s->esmtp = 0;
}

/* ---- AUTH ---------------------------------------------------------------------------------- */

/* the exchange is over, whatever its outcome: the password goes with it */
static void smtp_auth_sasl_end(struct smtp_session *s)
{
	if (!s->sasl)
		return;
	sasl_clear(s->sasl);
	free(s->sasl);
	s->sasl = NULL;
}

/* forget the exchange and the authenticated login (STARTTLS, end of session) */
void smtp_auth_clear(struct smtp_session *s)
{
	smtp_auth_sasl_end(s);
	free(s->authlogin);
	s->authlogin = NULL;
}

/* the credentials are complete: lookup checks them (the smtp role never sees a hash) */
static void smtp_auth_check(struct smtp_session *s)
{
	const struct sasl_cred *c = &s->sasl->cred;
	struct msg m;
	s->authmech = c->mech;
	smtp_session_set_pend(s, xstrdup(c->login));
	if (!s->srv->lookup_up) {
		smtp_auth_sasl_end(s);
		smtp_session_reply_line(s, SASL_REPLY_TEMP);
		smtp_session_set_pend(s, NULL);
		return;
	}
	msg_init(&m, M_AUTH_CHECK, s->id);
	msg_str(&m, "smtp");
	msg_str(&m, s->ip);
	msg_str(&m, c->mech);
	msg_str(&m, c->login);
	msg_str(&m, c->authzid);
	msg_str(&m, c->secret);
	msg_str(&m, c->response);
	smtp_auth_sasl_end(s);
	s->wait = W_AUTH;
	chan_send(s->srv->lookup, &m);
}

/* what sasl_start/sasl_step said: a 334 prompt, the check, or an error (exchange over) */
static void smtp_auth_rc(struct smtp_session *s, int rc)
{
	if (rc == SASL_NEXT) {
		smtp_session_reply_line(s, s->sasl->reply);
		s->mode = MODE_AUTH;
		return;
	}
	s->mode = MODE_CMD;
	if (rc == SASL_DONE) {
		smtp_auth_check(s);
		return;
	}
	smtp_session_reply_line(s, s->sasl->reply[0] ? s->sasl->reply : sasl_reply(rc));
	smtp_auth_sasl_end(s);
}

void smtp_auth_cmd(struct smtp_session *s, const char *arg)
{
	if (s->policy->auth == CFG_AUTH_NONE)
		smtp_session_reply(s, 502, "5.5.1", "Command not implemented");
	else if (!smtp_auth_offered(s))
		smtp_session_reply_line(s, SASL_REPLY_NOTLS);
	else if (!s->greeted || !s->esmtp)
		smtp_session_reply(s, 503, "5.5.1", "Send EHLO first");
	else if (s->authlogin)
		smtp_session_reply_line(s, SASL_REPLY_DONE);
	else if (s->sender)
		smtp_session_reply(s, 503, "5.5.1", "AUTH not permitted during a mail transaction");
	else {
		s->sasl = xcalloc(1, sizeof *s->sasl);
		smtp_auth_rc(s, sasl_start(s->sasl, arg, s->srv->cfg->authmechmask,
		    s->srv->cfg->me));
	}
}

/* MODE_AUTH: one line answers the prompt; 0 until it is complete */
size_t smtp_auth_input(struct smtp_session *s, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	if (!nl) {
		if (n <= SASL_MAXLINE + 2)
			return 0;
		smtp_auth_sasl_end(s);          /* far too long: 500 once the line ends, no exchange */
		s->mode = MODE_SKIP;
		return n;
	}
	size_t len = (size_t)(nl - p);
	if (len > 0 && p[len - 1] == '\r')
		len--;
	smtp_auth_rc(s, sasl_step(s->sasl, p, len));
	return (size_t)(nl - p) + 1;
}

/* the answer goes out now (or after the throttle's delay): 235, 535, 454 or 421 */
void smtp_auth_delayed(struct smtp_session *s)
{
	static const char *const what[] = { "ok", "fail", "temp" };
	char q[300];
	int v = s->authverdict <= AUTH_TEMP ? s->authverdict : AUTH_TEMP;
	const char *login = s->pend ? s->pend : "";
	s->wait = W_NONE;
	s->cmd = SMTP_CMD_AUTH;
	log_info("event=auth sid=%u ip=%s mech=%s login=\"%s\" result=%s%s", s->id, s->ip,
	    s->authmech ? s->authmech : "?", log_quote(q, sizeof q, login, strlen(login)),
	    what[v], s->authclose && v != AUTH_OK ? " close=yes" : "");
	if (v == AUTH_OK) {
		s->authlogin = s->pend;
		s->pend = NULL;
		smtp_session_reply_line(s, SASL_REPLY_OK);
	} else if (s->authclose) {
		smtp_session_reply_line(s, SASL_REPLY_CLOSE);
		s->quit = 1;
		s->endwhy = "auth_failures";
	} else
		smtp_session_reply_line(s, v == AUTH_FAIL ? SASL_REPLY_FAIL : SASL_REPLY_TEMP);
	smtp_session_set_pend(s, NULL);
}

/* M_AUTH_RESULT: hold it for the delay lookup asks for (the session reads nothing meanwhile) */
void smtp_auth_result(struct smtp_session *s, uint64_t verdict, uint64_t delay,
                                uint64_t close, const char *login)
{
	s->authverdict = (uint8_t)(verdict <= AUTH_TEMP ? verdict : AUTH_TEMP);
	s->authclose = close != 0;
	if (s->authverdict == AUTH_OK) {
		if (!*login || strlen(login) > SASL_MAXFIELD) {
			log_warn("event=auth_bad_answer sid=%u reason=\"no canonical login\"", s->id);
			s->authverdict = AUTH_TEMP;
		} else
			smtp_session_set_pend(s, xstrdup(login));
	}
	if (delay > 0)
		smtp_session_timer_start(s, W_AUTHDELAY,
		    (long)(delay < SESSION_AUTH_DELAY_MAX ? delay : SESSION_AUTH_DELAY_MAX));
	else
		smtp_auth_delayed(s);
}

