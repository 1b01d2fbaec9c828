/* sendmail_smtp — `sendmail -bs`: an SMTP dialogue on stdin/stdout for local submission
 * (RFC 5321 subset; CRLF or LF accepted on input, CRLF on output).
 * Owns: the session's I/O — reading command lines and DATA, writing replies (flushed only
 * before a read would block, so pipelined input gets its replies in one write), and one
 * maildrop file per message, committed before its 250. What to answer is decided by
 * src/mail/sendmail_bs.c; the file format and commit rule by src/mail/maildrop.c.
 * Trusts: nothing on stdin (any local user runs it); the config file for `spool` and `me`.
 * A failed maildrop write answers 451 4.3.0 (452 4.3.1 when the disk is full) and the session
 * goes on; end of input ends it with exit 0 (inside DATA the message is dropped). */
#include "ternctl/sendmail_int.h"
#include "mail/config.h"
#include "mail/maildrop.h"
#include "mail/sendmail_bs.h"
#include "mail/smtp_cmd.h"
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

struct sm_bs {
	const struct sm_opts *o;
	struct sm_in *in;
	struct config cfg;
	char *user;
	struct sendmail_bs s;
	struct buf out;                /* replies not yet written */
	struct maildrop_w *w;          /* the message being received; NULL after a failure */
	struct maildrop_err err;
	struct sendmail_bs_hdr h;
};

/* next command line, without its line end, into line[SMTP_CMD_LINE_MAX + 1]; a longer line
 * is consumed whole and reported with *len = SMTP_CMD_LINE_MAX (smtp_cmd_parse: 500 5.5.2).
 * 1 a line, 0 EOF, -1 read error. */
static int sm_smtp_getline(struct sm_in *in, char *line, size_t *len)
{
	const char *p;
	size_t n, k = 0;
	int bol, r, over = 0, any = 0;
	while ((r = sm_piece(in, &p, &n, &bol)) == 1) {
		int nl = p[n - 1] == '\n';
		size_t t = nl ? n - 1 : n;
		any = 1;
		if (over || k + t > SMTP_CMD_LINE_MAX)
			over = 1;
		else {
			memcpy(line + k, p, t);
			k += t;
		}
		if (nl)
			break;
	}
	if (r < 0)
		return -1;
	if (!any)
		return 0;
	if (!over && k && line[k - 1] == '\r')
		k--;
	*len = over ? SMTP_CMD_LINE_MAX : k;
	line[*len] = '\0';
	return 1;
}

/* the From:/Date:/Message-ID: fields the message lacks, then (body) an empty line */
static void sm_smtp_added(struct sm_bs *b, int blank)
{
	struct buf add;
	buf_init(&add);
	sm_added(&add, b->h.has_from, b->h.has_date, b->h.has_msgid, b->o, b->user, b->cfg.me);
	if (blank)
		buf_addc(&add, '\n');
	if (b->w && add.len && maildrop_put(b->w, add.p, add.len) < 0) {
		maildrop_abort(b->w);
		b->w = NULL;
	}
	buf_free(&add);
}

/* one piece of message text: the header scan, then into the file */
static void sm_smtp_put(struct sm_bs *b, const char *p, size_t n, int bol)
{
	if (bol) {
		size_t t = n && p[n - 1] == '\n' ? sm_trim_eol(p, n) : n;
		enum sendmail_bs_hdr_class k = sendmail_bs_hdr_line(&b->h, p, t);
		if (k == SENDMAIL_BS_H_BLANK || k == SENDMAIL_BS_H_BODY)
			sm_smtp_added(b, k == SENDMAIL_BS_H_BODY);
	}
	if (b->w && maildrop_put(b->w, p, n) < 0) {
		maildrop_abort(b->w);
		b->w = NULL;
	}
}

/* receive the message after 354, up to the "." line, and commit it. 0, or an exit code
 * (EOF or a read error inside DATA: the message is dropped). */
static int sm_smtp_data(struct sm_bs *b)
{
	struct sm_in *in = b->in;
	const char *p;
	size_t n, skip;
	int bol, r;
	char id[MAILDROP_IDSZ];
	sendmail_bs_hdr_init(&b->h);
	while ((r = sm_piece(in, &p, &n, &bol)) == 1) {
		if (sendmail_bs_data_line(p, n, bol, &skip))
			break;
		sm_smtp_put(b, p + skip, n - skip, bol);
	}
	if (r != 1) {
		sm_signals(1);
		maildrop_abort(b->w);
		b->w = NULL;
		sm_set_tmp("");
		sm_signals(0);
		if (r < 0)
			return sm_fail(EX_NOINPUT, "-bs: cannot read the message: %s", strerror(errno));
		sm_fail(0, "-bs: end of input inside DATA: message not queued");
		return EX_OK;
	}
	if (b->h.state != 2)
		sm_smtp_added(b, 0);
	sm_signals(1);
	int ok = b->w && maildrop_commit(b->w, id, sizeof id) == 0;
	b->w = NULL;
	sm_set_tmp("");
	sm_signals(0);
	if (ok)
		sendmail_bs_committed(&b->s, id, &b->out);
	else {
		sm_fail(0, "-bs: %s", b->err.text);
		sendmail_bs_failed(&b->s, b->err.kind, b->err.sys_errno, &b->out);
	}
	return 0;
}

/* DATA accepted by the dialogue: open the maildrop file, answer 354 (or the failure) */
static int sm_smtp_open(struct sm_bs *b)
{
	char origin[64];
	snprintf(origin, sizeof origin, "sendmail -bs uid=%lu", (unsigned long)getuid());
	maildrop_env_set_origin(&b->s.env, origin);
	b->s.env.uid = getuid();
	b->s.env.time = time(NULL);
	sm_signals(1);
	int ok = maildrop_open(&b->w, b->cfg.spool, &b->s.env, &b->err) == 0;
	if (ok)
		sm_set_tmp(maildrop_tmppath(b->w));
	sm_signals(0);
	if (!ok)
		sm_fail(0, "-bs: %s", b->err.text);
	sendmail_bs_data_start(&b->s, ok, b->err.kind, b->err.sys_errno, &b->out);
	return ok ? sm_smtp_data(b) : 0;
}

static int sm_smtp_loop(struct sm_bs *b)
{
	char line[SMTP_CMD_LINE_MAX + 1];
	size_t len;
	int r;
	sendmail_bs_greeting(&b->s, &b->out);
	while (!b->in->outerr && (r = sm_smtp_getline(b->in, line, &len)) == 1) {
		switch (sendmail_bs_command(&b->s, line, len, &b->out)) {
		case SENDMAIL_BS_QUIT:
			return EX_OK;
		case SENDMAIL_BS_DATA:
			if ((r = sm_smtp_open(b)) != 0)
				return r;
			break;
		case SENDMAIL_BS_REPLY:
			break;
		}
	}
	if (b->in->outerr)
		return sm_fail(EX_IOERR, "-bs: cannot write the reply: %s", strerror(b->in->outerr));
	if (r < 0)
		return sm_fail(EX_NOINPUT, "-bs: cannot read the input: %s", strerror(errno));
	return EX_OK;
}

/* sendmail -bs: config and user first (a failure answers 421 instead of the greeting) */
int sm_smtp_main(const struct sm_opts *o, struct sm_in *in)
{
	struct cfg_errors errs;
	struct sm_bs *b = xcalloc(1, sizeof *b);
	const char *path = o->conf ? o->conf : maildrop_config_path();
	int r;
	signal(SIGPIPE, SIG_IGN);       /* a vanished client is a write error, not a death */
	buf_init(&b->out);
	b->o = o;
	b->in = in;
	in->out = &b->out;
	if (config_load(&b->cfg, path, &errs) < 0) {
		for (int i = 0; i < errs.n && i < CFG_MAXERRS; i++)
			sm_fail(0, "%s:%d: %s", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
		buf_adds(&b->out, "421 4.3.0 sendmail: configuration unusable\r\n");
		r = EX_TEMPFAIL;
	} else {
		struct passwd *pw = getpwuid(getuid());
		b->user = pw ? xstrdup(pw->pw_name) : NULL;
		sendmail_bs_init(&b->s, b->cfg.me);
		if (!b->user) {
			buf_printf(&b->out, "421 4.3.0 sendmail: no passwd entry for uid %lu\r\n",
			    (unsigned long)getuid());
			r = sm_fail(EX_OSERR, "no passwd entry for uid %lu", (unsigned long)getuid());
		} else
			r = sm_smtp_loop(b);
		sendmail_bs_free(&b->s);
	}
	config_free(&b->cfg);
	sm_flush_out(in);
	in->out = NULL;
	buf_free(&b->out);
	free(b->user);
	free(b);
	return r;
}
