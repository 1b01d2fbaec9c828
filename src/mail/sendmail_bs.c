/* sendmail_bs — see sendmail_bs.h. One table maps each command id to its handler; replies
 * always carry an enhanced status code (RFC 2034/3463), and every code is one that
 * smtp_reply allows for its command (the unit test checks that). */
#include "mail/sendmail_bs.h"
#include "mail/addr.h"
#include "mail/smtp_cmd.h"
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sendmail_bs_init(struct sendmail_bs *s, const char *me)
{
	memset(s, 0, sizeof *s);
	s->me = me;
	maildrop_env_init(&s->env);
}

static void bs_reset(struct sendmail_bs *s)
{
	maildrop_env_free(&s->env);
	maildrop_env_init(&s->env);
}

void sendmail_bs_free(struct sendmail_bs *s)
{
	maildrop_env_free(&s->env);
}

static void bs_reply(struct buf *out, int code, const char *esc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void bs_reply(struct buf *out, int code, const char *esc, const char *fmt, ...)
{
	char text[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	for (char *p = text; *p; p++)          /* one line, whatever the text holds */
		if ((unsigned char)*p < 32 || *p == 127)
			*p = ' ';
	buf_printf(out, "%d %s %s\r\n", code, esc, text);
}

void sendmail_bs_greeting(const struct sendmail_bs *s, struct buf *out)
{
	buf_printf(out, "220 %s ESMTP tern (sendmail -bs)\r\n", s->me);
}

/* --- commands ---------------------------------------------------------------------------- */

typedef enum sendmail_bs_action (*bs_fn)(struct sendmail_bs *s, const char *arg, struct buf *out);

static enum sendmail_bs_action bs_ehlo(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	bs_reset(s);
	s->greeted = 1;
	buf_printf(out, "250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n",
	    s->me);
	return SENDMAIL_BS_REPLY;
}

static enum sendmail_bs_action bs_helo(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	bs_reset(s);
	s->greeted = 1;
	bs_reply(out, 250, "2.0.0", "%s", s->me);
	return SENDMAIL_BS_REPLY;
}

/* MAIL parameters: SIZE=<digits>, BODY=7BIT|8BITMIME. 0 ok, -1 replied. */
static int bs_mail_params(const char *params, struct buf *out)
{
	struct addr_param p;
	const char *why;
	uint64_t size;
	int r;
	while ((r = addr_param_next(&params, &p, &why)) > 0) {
		if (strcmp(p.key, "SIZE") == 0) {
			if (str_to_u64(p.val, 0, UINT64_MAX, &size) < 0) {
				bs_reply(out, 501, "5.5.4", "Bad SIZE parameter");
				return -1;
			}
		} else if (strcmp(p.key, "BODY") == 0) {
			if (str_casecmp(p.val, "7BIT") != 0 && str_casecmp(p.val, "8BITMIME") != 0) {
				bs_reply(out, 501, "5.5.4", "Unsupported BODY type");
				return -1;
			}
		} else {
			bs_reply(out, 555, "5.5.4", "Unsupported option: %s", p.key);
			return -1;
		}
	}
	if (r < 0)
		bs_reply(out, 501, "5.5.4", "%s", why);
	return r;
}

static enum sendmail_bs_action bs_mail(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	struct addr a;
	const char *why;
	if (s->env.sender)
		bs_reply(out, 503, "5.5.1", "Nested MAIL command");
	else if (addr_parse(arg, ADDR_SENDER, &a) < 0)
		bs_reply(out, a.code, a.code == 553 ? "5.6.7" : "5.1.7",
		    "Bad sender address syntax: %s", a.why);
	else if (maildrop_addr_ok(a.mailbox, strlen(a.mailbox), 1, &why) < 0)
		bs_reply(out, 553, "5.1.7", "Bad sender address: %s", why);
	else if (bs_mail_params(a.params, out) == 0) {
		maildrop_env_set_sender(&s->env, a.mailbox);
		bs_reply(out, 250, "2.1.0", "Ok");
	}
	return SENDMAIL_BS_REPLY;
}

static enum sendmail_bs_action bs_rcpt(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	struct addr a;
	const char *why;
	if (!s->env.sender)
		bs_reply(out, 503, "5.5.1", "Need MAIL command");
	else if (addr_parse(arg, ADDR_RCPT, &a) < 0)
		bs_reply(out, a.code, a.code == 553 ? "5.6.7" : "5.1.3",
		    "Bad recipient address syntax: %s", a.why);
	else if (*a.params)
		bs_reply(out, 555, "5.5.4", "Unsupported option: %s", a.params);
	else if (maildrop_addr_ok(a.mailbox, strlen(a.mailbox), 0, &why) < 0)
		bs_reply(out, 553, "5.1.3", "Bad recipient address: %s", why);
	else if (s->env.nrcpt >= MAILDROP_MAXRCPT)
		bs_reply(out, 452, "4.5.3", "Too many recipients");
	else {
		maildrop_env_add_rcpt(&s->env, a.mailbox);   /* bare "postmaster": the queue adds
		                                                 the default domain */
		bs_reply(out, 250, "2.1.5", "Ok");
	}
	return SENDMAIL_BS_REPLY;
}

static enum sendmail_bs_action bs_data(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	if (!s->env.sender)
		bs_reply(out, 503, "5.5.1", "Need MAIL command");
	else if (s->env.nrcpt == 0)
		bs_reply(out, 503, "5.5.1", "Need RCPT command");
	else
		return SENDMAIL_BS_DATA;
	return SENDMAIL_BS_REPLY;
}

static enum sendmail_bs_action bs_rset(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	bs_reset(s);
	bs_reply(out, 250, "2.0.0", "Ok");
	return SENDMAIL_BS_REPLY;
}

static enum sendmail_bs_action bs_noop(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	bs_reply(out, 250, "2.0.0", "Ok");
	return SENDMAIL_BS_REPLY;
}

static enum sendmail_bs_action bs_quit(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	bs_reply(out, 221, "2.0.0", "Bye");
	return SENDMAIL_BS_QUIT;
}

static enum sendmail_bs_action bs_vrfy(struct sendmail_bs *s, const char *arg, struct buf *out)
{
	bs_reply(out, 252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery");
	return SENDMAIL_BS_REPLY;
}

static enum sendmail_bs_action bs_notimpl(struct sendmail_bs *s, const char *arg,
                                          struct buf *out)
{
	bs_reply(out, 502, "5.5.1", "Command not implemented");
	return SENDMAIL_BS_REPLY;
}

/* unlisted known verbs (EXPN HELP SEND SOML SAML TURN ETRN AUTH STARTTLS BDAT): 502 */
static const bs_fn bs_cmds[SMTP_CMD_COUNT] = {
	[SMTP_CMD_EHLO] = bs_ehlo, [SMTP_CMD_HELO] = bs_helo, [SMTP_CMD_MAIL] = bs_mail,
	[SMTP_CMD_RCPT] = bs_rcpt, [SMTP_CMD_DATA] = bs_data, [SMTP_CMD_RSET] = bs_rset,
	[SMTP_CMD_NOOP] = bs_noop, [SMTP_CMD_QUIT] = bs_quit, [SMTP_CMD_VRFY] = bs_vrfy,
};

enum sendmail_bs_action sendmail_bs_command(struct sendmail_bs *s, char *line, size_t len,
                                            struct buf *out)
{
	struct smtp_cmd c;
	if (smtp_cmd_parse(line, len, &c) < 0) {
		/* a verb we do not offer earns 502 even when its arguments are bad */
		if (c.code == 501 && c.id > SMTP_CMD_UNKNOWN && c.id < SMTP_CMD_COUNT && !bs_cmds[c.id])
			return bs_notimpl(s, "", out);
		bs_reply(out, c.code, c.esc, "%s", c.text);
		return SENDMAIL_BS_REPLY;
	}
	bs_fn fn = c.id > SMTP_CMD_UNKNOWN && c.id < SMTP_CMD_COUNT ? bs_cmds[c.id] : NULL;
	return (fn ? fn : bs_notimpl)(s, c.arg, out);
}

/* --- DATA and its outcome ---------------------------------------------------------------- */

void sendmail_bs_data_start(struct sendmail_bs *s, int ok, int kind, int sys_errno,
                            struct buf *out)
{
	if (ok)       /* no enhanced code on 3xx replies (RFC 2034) */
		buf_adds(out, "354 End data with <CR><LF>.<CR><LF>\r\n");
	else
		sendmail_bs_failed(s, kind, sys_errno, out);
}

void sendmail_bs_committed(struct sendmail_bs *s, const char *id, struct buf *out)
{
	bs_reset(s);
	bs_reply(out, 250, "2.0.0", "Ok: queued as %s", id);
}

void sendmail_bs_failed(struct sendmail_bs *s, int kind, int sys_errno, struct buf *out)
{
	int full = (kind == MAILDROP_ECREATE || kind == MAILDROP_EWRITE ||
	            kind == MAILDROP_ENOQUEUE) && (sys_errno == ENOSPC || sys_errno == EDQUOT);
	bs_reset(s);
	if (full)
		bs_reply(out, 452, "4.3.1", "Insufficient system storage");
	else
		bs_reply(out, 451, "4.3.0", "Local error: cannot write the maildrop file");
}

int sendmail_bs_data_line(const char *p, size_t n, int bol, size_t *skip)
{
	*skip = 0;
	if (!bol || n == 0 || p[0] != '.')
		return 0;
	if ((n == 2 && p[1] == '\n') || (n == 3 && p[1] == '\r' && p[2] == '\n'))
		return 1;
	*skip = 1;
	return 0;
}

/* --- the header scan --------------------------------------------------------------------- */

void sendmail_bs_hdr_init(struct sendmail_bs_hdr *h)
{
	memset(h, 0, sizeof *h);
}

/* "name:" (blanks allowed before the colon) -> length of name, else 0 */
static size_t bs_field_name(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 && p[i] != ':')
		i++;
	size_t name = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return name > 0 && i < n && p[i] == ':' ? name : 0;
}

static int bs_name_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && str_ncasecmp(p, name, n) == 0;
}

enum sendmail_bs_hdr_class sendmail_bs_hdr_line(struct sendmail_bs_hdr *h, const char *p,
                                                size_t n)
{
	if (h->state == 2)
		return SENDMAIL_BS_H_PAST;
	if (n == 0) {
		h->state = 2;
		return SENDMAIL_BS_H_BLANK;
	}
	if ((p[0] == ' ' || p[0] == '\t') && h->state == 1)
		return SENDMAIL_BS_H_FIELD;
	size_t k = bs_field_name(p, n);
	if (k == 0) {
		h->state = 2;
		return SENDMAIL_BS_H_BODY;
	}
	h->state = 1;
	h->has_from |= bs_name_is(p, k, "From");
	h->has_date |= bs_name_is(p, k, "Date");
	h->has_msgid |= bs_name_is(p, k, "Message-ID");
	return SENDMAIL_BS_H_FIELD;
}
