/* smtp_client — see smtp_client.h. The engine is a table of states; each state that expects
 * a reply names the command it answers (for diagnostics) and the handler that moves on:
 *
 *   GREET ─2xx─► EHLO ─2xx─► (STARTTLS ─220─► TLS ─done─► EHLO) ─► (AUTH) ─► READY ◄─┐
 *                 └─5xx─► HELO ─2xx─┘   │ begin: (RSET ─2xx─►) MAIL ──────────────────┤
 *   MAIL ─► RCPT×n ─► DATA ─354─► BODY (caller feeds the text) ─► DOT ─┘
 *   QUIT ─► CLOSED;  421 anywhere, a malformed reply or a lost connection ─► CLOSED
 *
 * LMTP (smtpc_set_lmtp): LHLO in EHLO's place (no HELO), and DOT takes one reply per
 * accepted recipient (on_dot_lmtp) before the transaction ends.
 *
 * Pipelined (RFC 2920): MAIL, the RCPTs and DATA are written at once and their replies are
 * taken in order; after a failed MAIL the rest are read and ignored. */
#include "mail/smtp_client.h"
#include "mail/digest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reply parsing ------------------------------------------------------------------- */

void smtpc_rparse_init(struct smtpc_rparse *p)
{
	memset(p, 0, sizeof *p);
	buf_init(&p->r.text);
}

void smtpc_rparse_free(struct smtpc_rparse *p) { buf_free(&p->r.text); }

static void rparse_restart(struct smtpc_rparse *p)
{
	p->r.code = 0;
	p->r.esc[0] = '\0';
	p->r.nlines = 0;
	buf_reset(&p->r.text);
	p->total = 0;
	p->complete = 0;
}

/* length of an RFC 3463 code "c.sss.ddd" at s whose class matches the reply, else 0 */
static size_t esc_len(const char *s, size_t n, int code)
{
	size_t i = 0;
	if (n < 5 || s[0] != '0' + code / 100 || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t d = 0;
		while (i < n && d < 4 && s[i] >= '0' && s[i] <= '9')
			i++, d++;
		if (d == 0 || d > 3 || (part == 0 && (i >= n || s[i++] != '.')))
			return 0;
	}
	return (i == n || s[i] == ' ') ? i : 0;
}

static void rparse_text(struct smtpc_rparse *p, const char *t, size_t n)
{
	size_t e = esc_len(t, n, p->r.code);
	if (e && p->r.nlines == 0 && e < sizeof p->r.esc) {
		memcpy(p->r.esc, t, e);
		p->r.esc[e] = '\0';
	}
	if (e && strlen(p->r.esc) == e && memcmp(p->r.esc, t, e) == 0) {
		t += e;
		n -= e;
		while (n && *t == ' ')
			t++, n--;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)t[i];
		buf_addc(&p->r.text, (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch);
	}
	buf_addc(&p->r.text, '\n');
	p->r.nlines++;
}

/* one line (line end removed): 1 last line of the reply, 0 more follow, -1 error */
static int rparse_line(struct smtpc_rparse *p, const char *l, size_t n)
{
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
	    l[2] > '9' || (n > 3 && l[3] != ' ' && l[3] != '-')) {
		p->err = "malformed reply line";
		return -1;
	}
	int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (p->r.nlines > 0 && code != p->r.code) {
		p->err = "reply code changed inside a multi-line reply";
		return -1;
	}
	p->r.code = code;
	rparse_text(p, n > 4 ? l + 4 : "", n > 4 ? n - 4 : 0);
	return (n == 3 || l[3] == ' ') ? 1 : 0;
}

int smtpc_rparse_feed(struct smtpc_rparse *p, const char *in, size_t n, size_t *used)
{
	if (p->complete)
		rparse_restart(p);
	for (size_t i = 0; i < n; i++) {
		if (in[i] != '\n') {
			if (p->len == SMTPC_LINE_MAX - 1) {
				p->err = "reply line too long";
				return -1;
			}
			p->line[p->len++] = in[i];
			continue;
		}
		size_t len = p->len;
		p->total += len + 1;
		p->len = 0;
		if (p->total > SMTPC_REPLY_MAX) {
			p->err = "reply too long";
			return -1;
		}
		int r = rparse_line(p, p->line, len && p->line[len - 1] == '\r' ? len - 1 : len);
		if (r < 0)
			return -1;
		if (r == 1) {
			*used = i + 1;
			p->complete = 1;
			return 1;
		}
	}
	*used = n;
	return 0;
}

void smtpc_reply_diag(const struct smtpc_reply *r, const char *cmd, char *out, size_t outsz)
{
	char suffix[96];
	int k = snprintf(suffix, sizeof suffix, " (in reply to %s)", cmd);
	size_t room = outsz > (size_t)k + 1 ? outsz - (size_t)k : 1;
	if (room > SMTPC_DIAG_MAX)
		room = SMTPC_DIAG_MAX;
	int m = snprintf(out, room, "smtp; %d%s%s", r->code, *r->esc ? " " : "", r->esc);
	size_t o = m > 0 && (size_t)m < room ? (size_t)m : room - 1;
	const char *t = r->text.p ? r->text.p : "";
	for (size_t i = 0; t[i] && o + 1 < room; i++) {
		if (t[i] == '\n' && !t[i + 1])
			break;
		if (i == 0 && o + 2 < room)
			out[o++] = ' ';
		out[o++] = t[i] == '\n' ? ' ' : t[i];
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	if (outsz > o + (size_t)k)
		memcpy(out + o, suffix, (size_t)k + 1);
}

/* ---- EHLO keywords --------------------------------------------------------------------- */

static void kw_pipelining(struct smtpc_caps *c, const char *a) { c->pipelining = 1; }
static void kw_8bitmime(struct smtpc_caps *c, const char *a) { c->eightbitmime = 1; }
static void kw_enhanced(struct smtpc_caps *c, const char *a) { c->enhanced = 1; }
static void kw_starttls(struct smtpc_caps *c, const char *a) { c->starttls = 1; }

/* "AUTH PLAIN LOGIN" or the old "AUTH=LOGIN PLAIN": the mechanisms are the rest of the line */
static void ehlo_auth(struct smtpc_caps *caps, const char *l, size_t n)
{
	caps->auth = 1;
	for (size_t i = 5; i < n;) {
		while (i < n && l[i] == ' ')
			i++;
		size_t b = i;
		while (i < n && l[i] != ' ')
			i++;
		if (i - b == 5 && str_ncasecmp(l + b, "PLAIN", 5) == 0)
			caps->auth_plain = 1;
		if (i - b == 5 && str_ncasecmp(l + b, "LOGIN", 5) == 0)
			caps->auth_login = 1;
	}
}

static void kw_size(struct smtpc_caps *c, const char *a)
{
	uint64_t v = 0;
	c->size = 1;
	c->sizemax = (*a && str_to_u64(a, 0, UINT64_MAX, &v) == 0) ? v : 0;
}

static const struct {
	const char *kw;
	void (*fn)(struct smtpc_caps *c, const char *arg);
} ehlo_kw[] = {
	{ "PIPELINING", kw_pipelining },
	{ "SIZE", kw_size },
	{ "8BITMIME", kw_8bitmime },
	{ "ENHANCEDSTATUSCODES", kw_enhanced },
	{ "STARTTLS", kw_starttls },
};

static void ehlo_line(struct smtpc_caps *caps, const char *l, size_t n)
{
	char kw[32], arg[32];
	size_t k = 0, a = 0, i = 0;
	if (n > 5 && str_ncasecmp(l, "AUTH", 4) == 0 && (l[4] == ' ' || l[4] == '=')) {
		ehlo_auth(caps, l, n);
		return;
	}
	while (i < n && l[i] != ' ' && k < sizeof kw - 1)
		kw[k++] = l[i++];
	kw[k] = '\0';
	if (i < n && l[i] != ' ')
		return;                            /* a keyword longer than any we know */
	while (i < n && l[i] == ' ')
		i++;
	while (i < n && l[i] != ' ' && a < sizeof arg - 1)
		arg[a++] = l[i++];
	arg[a] = '\0';
	for (size_t j = 0; j < sizeof ehlo_kw / sizeof ehlo_kw[0]; j++)
		if (str_casecmp(kw, ehlo_kw[j].kw) == 0)
			ehlo_kw[j].fn(caps, arg);
}

void smtpc_ehlo_parse(struct smtpc_caps *caps, const struct smtpc_reply *r)
{
	memset(caps, 0, sizeof *caps);
	caps->esmtp = 1;
	const char *t = r->text.p ? r->text.p : "";
	const char *nl = strchr(t, '\n');                 /* skip the first line (the name) */
	while (nl && nl[1]) {
		const char *l = nl + 1;
		nl = strchr(l, '\n');
		ehlo_line(caps, l, nl ? (size_t)(nl - l) : strlen(l));
	}
}

/* ---- body transformation ------------------------------------------------------------------ */

void smtpc_body_init(struct smtpc_body *b)
{
	memset(b, 0, sizeof *b);
	b->bol = 1;
}

void smtpc_body_feed(struct smtpc_body *b, const char *in, size_t n, struct buf *out)
{
	buf_reserve(out, 2 * n + 3 * (n / 512 + 1) + 2);
	char *o = out->p + out->len, *o0 = o;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '\0') {                          /* never sent (see smtp_client.h) */
			b->nul++;
			continue;
		}
		if (b->cr) {
			b->cr = 0;
			if (c == '\n')
				continue;                     /* the LF of a CRLF: already sent */
		}
		if (c == '\r' || c == '\n') {
			*o++ = '\r';
			*o++ = '\n';
			b->cr = c == '\r';
			b->bol = 1;
			b->col = 0;
			continue;
		}
		int stuff = b->bol && c == '.';
		if (b->col + 1 + (size_t)stuff > SMTPC_TEXT_LINE_MAX) {
			*o++ = '\r';                          /* fold: CRLF SP, as Postfix does */
			*o++ = '\n';
			*o++ = ' ';
			b->col = 1;
			b->folds++;
			stuff = 0;
		}
		if (stuff) {
			*o++ = '.';
			b->col++;
		}
		b->bol = 0;
		*o++ = c;
		b->col++;
	}
	out->len += (size_t)(o - o0);
	out->p[out->len] = '\0';
	b->in += n;
	b->out += (uint64_t)(o - o0);
}

void smtpc_body_end(struct smtpc_body *b, struct buf *out)
{
	if (!b->bol) {
		buf_add(out, "\r\n", 2);
		b->out += 2;
	}
	buf_add(out, ".\r\n", 3);
	b->out += 3;
	b->bol = 1;
	b->cr = 0;
	b->col = 0;
}

/* ---- the engine ---------------------------------------------------------------------------- */

enum st { ST_GREET, ST_EHLO, ST_LHLO, ST_HELO, ST_STARTTLS, ST_TLS, ST_AUTH, ST_AUTH_USER, ST_AUTH_PASS,
          ST_READY, ST_RSET, ST_MAIL, ST_RCPT, ST_DATA, ST_BODY, ST_DOT, ST_QUIT, ST_CLOSED,
          ST_N };

struct smtpc {
	char *helo;
	char *user, *pass;             /* AUTH credentials, or NULL */
	enum smtpc_tls tlsmode;
	unsigned tls:1, authed:1, auth_plaintext:1;
	size_t tls_dropped;            /* octets after the 220 to STARTTLS, thrown away */
	smtpc_greet_fn greet_fn;       /* the caller's verdict on the greeting, or NULL */
	void *greet_arg;
	enum st state;
	struct smtpc_caps caps;
	struct smtpc_rparse rp;
	struct buf out;
	struct smtpc_body body;
	struct smtpc_txn *txn, *finished;
	size_t rsent, rrepl, naccepted;
	size_t dotnext;                /* LMTP: where the next reply after the dot looks from */
	unsigned used:1, mail_sent:1, aborted:1, discard:1, pipelined:1;
	unsigned lmtp:1;               /* RFC 2033: LHLO, one reply per accepted RCPT at the dot */
};

typedef void (*smtpc_handler)(struct smtpc *c, const struct smtpc_reply *r);
static void on_greet(struct smtpc *c, const struct smtpc_reply *r);
static void on_ehlo(struct smtpc *c, const struct smtpc_reply *r);
static void on_helo(struct smtpc *c, const struct smtpc_reply *r);
static void on_starttls(struct smtpc *c, const struct smtpc_reply *r);
static void on_auth(struct smtpc *c, const struct smtpc_reply *r);
static void on_auth_user(struct smtpc *c, const struct smtpc_reply *r);
static void on_auth_pass(struct smtpc *c, const struct smtpc_reply *r);
static void on_idle(struct smtpc *c, const struct smtpc_reply *r);
static void on_rset(struct smtpc *c, const struct smtpc_reply *r);
static void on_mail(struct smtpc *c, const struct smtpc_reply *r);
static void on_rcpt(struct smtpc *c, const struct smtpc_reply *r);
static void on_data(struct smtpc *c, const struct smtpc_reply *r);
static void on_body(struct smtpc *c, const struct smtpc_reply *r);
static void on_dot(struct smtpc *c, const struct smtpc_reply *r);
static void on_quit(struct smtpc *c, const struct smtpc_reply *r);

static const struct {
	const char *name;              /* for logs */
	const char *cmd;               /* "in reply to ..." */
	smtpc_handler fn;              /* NULL: input is ignored */
} states[ST_N] = {
	[ST_GREET]  = { "greeting", "initial greeting", on_greet },
	[ST_EHLO]   = { "ehlo", "EHLO command", on_ehlo },
	[ST_LHLO]   = { "lhlo", "LHLO command", on_ehlo },
	[ST_HELO]   = { "helo", "HELO command", on_helo },
	[ST_STARTTLS] = { "starttls", "STARTTLS command", on_starttls },
	[ST_TLS]    = { "tls", "TLS handshake", NULL },
	[ST_AUTH]   = { "auth", "AUTH command", on_auth },
	[ST_AUTH_USER] = { "auth", "AUTH command", on_auth_user },
	[ST_AUTH_PASS] = { "auth", "AUTH command", on_auth_pass },
	[ST_READY]  = { "ready", "no command", on_idle },
	[ST_RSET]   = { "rset", "RSET command", on_rset },
	[ST_MAIL]   = { "mail", "MAIL FROM command", on_mail },
	[ST_RCPT]   = { "rcpt", "RCPT TO command", on_rcpt },
	[ST_DATA]   = { "data", "DATA command", on_data },
	[ST_BODY]   = { "text", "message text", on_body },
	[ST_DOT]    = { "dot", "end of DATA command", on_dot },
	[ST_QUIT]   = { "quit", "QUIT command", on_quit },
	[ST_CLOSED] = { "closed", "no command", NULL },
};

static void set_final(struct smtpc_rcpt *x, int st, const char *diag)
{
	x->status = st;
	x->accepted = 0;
	x->own = 0;
	free(x->diag);
	x->diag = xstrdup(diag);
}

/* every open recipient gets st and diag */
static void fail_open(struct smtpc *c, int st, const char *diag)
{
	struct smtpc_txn *t = c->txn;
	size_t changed = 0;
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		if (t->rcpt[i].status == SMTPC_OPEN) {
			set_final(&t->rcpt[i], st, diag);
			changed++;
		}
	if (changed && !c->mail_sent && st == SMTPC_TEMP)
		t->retry = 1;
}

static int class_status(int code) { return code / 100 == 5 ? SMTPC_PERM : SMTPC_TEMP; }

static void fail_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	char diag[SMTPC_DIAG_MAX + 100];
	smtpc_reply_diag(r, states[c->state].cmd, diag, sizeof diag);
	fail_open(c, class_status(r->code), diag);
}

static void txn_end(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;
	if (!t)
		return;
	fail_open(c, SMTPC_TEMP, "internal error: transaction ended without a result");
	t->done = 1;
	t->nok = 0;
	for (size_t i = 0; i < t->n; i++)
		t->nok += t->rcpt[i].status == SMTPC_OK;
	c->finished = t;
	c->txn = NULL;
	if (c->mail_sent)
		c->used = 1;
	if (c->state != ST_CLOSED && c->state != ST_QUIT)
		c->state = ST_READY;
}

static void closed(struct smtpc *c)
{
	c->state = ST_CLOSED;
	txn_end(c);
	c->state = ST_CLOSED;
}

static void send_quit(struct smtpc *c)
{
	txn_end(c);
	buf_adds(&c->out, "QUIT\r\n");
	c->state = ST_QUIT;
}

static void send_rcpt(struct smtpc *c)
{
	buf_printf(&c->out, "RCPT TO:<%s>\r\n", c->txn->rcpt[c->rsent++].addr);
}

static void start_mail(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;
	if (c->caps.size && c->caps.sizemax && t->size > c->caps.sizemax) {
		char d[160];
		snprintf(d, sizeof d, "message size %llu exceeds the size limit %llu of the "
		         "remote server (#5.3.4)", (unsigned long long)t->size,
		         (unsigned long long)c->caps.sizemax);
		fail_open(c, SMTPC_PERM, d);
		txn_end(c);
		return;
	}
	buf_printf(&c->out, "MAIL FROM:<%s>", t->sender);
	if (c->caps.size)
		buf_printf(&c->out, " SIZE=%llu", (unsigned long long)t->size);
	if (c->caps.eightbitmime && t->eightbit)
		buf_adds(&c->out, " BODY=8BITMIME");
	buf_adds(&c->out, "\r\n");
	c->mail_sent = 1;
	c->pipelined = c->caps.pipelining;
	while (c->pipelined && c->rsent < t->n)
		send_rcpt(c);
	if (c->pipelined)
		buf_adds(&c->out, "DATA\r\n");
	c->state = ST_MAIL;
}

static void ready(struct smtpc *c)
{
	c->state = ST_READY;
	if (c->txn)
		start_mail(c);
}

/* EHLO, or LHLO in LMTP mode (RFC 2033 4.1) */
static void hello(struct smtpc *c)
{
	buf_printf(&c->out, "%s %s\r\n", c->lmtp ? "LHLO" : "EHLO", c->helo);
	c->state = c->lmtp ? ST_LHLO : ST_EHLO;
}

static void on_greet(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 != 2) {
		fail_reply(c, r);
		send_quit(c);
		return;
	}
	char diag[SMTPC_DIAG_MAX];
	int st = c->greet_fn ? c->greet_fn(c->greet_arg, r, diag, sizeof diag) : SMTPC_OPEN;
	if (st == SMTPC_TEMP || st == SMTPC_PERM) {
		fail_open(c, st, diag);
		send_quit(c);
		return;
	}
	hello(c);
}

/* a failure of the TLS or AUTH steps: D_TEMP before MAIL (another server may do), QUIT */
static void fail_setup(struct smtpc *c, const char *diag)
{
	fail_open(c, SMTPC_TEMP, diag);
	send_quit(c);
}

static void b64_line(struct smtpc *c, const char *pre, const char *s, size_t n)
{
	buf_adds(&c->out, pre);
	digest_b64_encode(&c->out, (const unsigned char *)s, n);
	buf_adds(&c->out, "\r\n");
}

/* after EHLO (and after TLS): AUTH if there are credentials and the server offers it */
static void authenticate(struct smtpc *c)
{
	if (!c->user || !c->caps.auth || (!c->caps.auth_plain && !c->caps.auth_login)) {
		ready(c);                          /* no AUTH offered (or no usable mechanism) */
		return;
	}
	if (!c->tls && !c->auth_plaintext) {
		fail_setup(c, "not sending the AUTH password over an unencrypted connection "
		           "(#4.7.0)");
		return;
	}
	if (c->caps.auth_plain) {
		size_t u = strlen(c->user), p = strlen(c->pass);
		char *ir = xmalloc(u + p + 2);
		ir[0] = '\0';
		memcpy(ir + 1, c->user, u + 1);
		memcpy(ir + 2 + u, c->pass, p);
		b64_line(c, "AUTH PLAIN ", ir, u + p + 2);
		explicit_bzero(ir, u + p + 2);
		free(ir);
		c->state = ST_AUTH;
	} else {
		buf_adds(&c->out, "AUTH LOGIN\r\n");
		c->state = ST_AUTH_USER;
	}
}

/* after EHLO: STARTTLS when the policy wants it, else on to AUTH */
static void secure(struct smtpc *c)
{
	if (c->tls || c->tlsmode == SMTPC_TLS_NONE ||
	    (!c->caps.starttls && c->tlsmode == SMTPC_TLS_MAY)) {
		authenticate(c);
		return;
	}
	if (!c->caps.starttls) {
		fail_setup(c, "TLS is required, but the server did not offer STARTTLS (#4.7.4)");
		return;
	}
	buf_adds(&c->out, "STARTTLS\r\n");
	c->state = ST_STARTTLS;
}

static void on_starttls(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 220) {
		c->state = ST_TLS;                 /* the caller runs the handshake */
		return;
	}
	if (c->tlsmode == SMTPC_TLS_MAY) {
		authenticate(c);                   /* refused: go on in plaintext */
		return;
	}
	/* the prefix comes out of the reply's room: a diagnostic stays within the bound every
	 * other one keeps (SMTPC_DIAG_MAX of reply text plus the command's name) */
	static const char pfx[] = "TLS is required, but STARTTLS was refused (#4.7.4): ";
	char diag[SMTPC_DIAG_MAX + 64 - (sizeof pfx - 1)], full[SMTPC_DIAG_MAX + 64];
	smtpc_reply_diag(r, states[c->state].cmd, diag, sizeof diag);
	snprintf(full, sizeof full, "%s%s", pfx, diag);
	fail_setup(c, full);
}

static void auth_failed(struct smtpc *c, const struct smtpc_reply *r)
{
	char diag[SMTPC_DIAG_MAX + 100];
	smtpc_reply_diag(r, states[c->state].cmd, diag, sizeof diag);
	fail_setup(c, diag);
}

static void on_auth(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 != 2) {
		auth_failed(c, r);
		return;
	}
	c->authed = 1;
	ready(c);
}

static void on_auth_user(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code != 334) {
		auth_failed(c, r);
		return;
	}
	b64_line(c, "", c->user, strlen(c->user));
	c->state = ST_AUTH_PASS;
}

static void on_auth_pass(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code != 334) {
		auth_failed(c, r);
		return;
	}
	b64_line(c, "", c->pass, strlen(c->pass));
	c->state = ST_AUTH;
}

static void on_ehlo(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		smtpc_ehlo_parse(&c->caps, r);
		secure(c);
	} else if (r->code / 100 == 5 && !c->tls && !c->lmtp) {  /* LMTP has no HELO */
		memset(&c->caps, 0, sizeof c->caps);
		buf_printf(&c->out, "HELO %s\r\n", c->helo);
		c->state = ST_HELO;
	} else if (c->tls) {
		auth_failed(c, r);                 /* EHLO refused after TLS: D_TEMP */
	} else {
		fail_reply(c, r);
		send_quit(c);
	}
}

static void on_helo(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		secure(c);                         /* no STARTTLS without EHLO: MAY goes on */
		return;
	}
	fail_reply(c, r);
	send_quit(c);
}

static void on_idle(struct smtpc *c, const struct smtpc_reply *r)
{
	closed(c);                             /* unsolicited: the server is leaving */
}

static void on_rset(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		ready(c);
		return;
	}
	char diag[SMTPC_DIAG_MAX + 100];
	smtpc_reply_diag(r, states[c->state].cmd, diag, sizeof diag);
	fail_open(c, SMTPC_TEMP, diag);        /* nothing was sent: another connection may do */
	send_quit(c);
}

static void on_mail(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 != 2) {
		fail_reply(c, r);
		c->aborted = 1;
		if (!c->pipelined)
			txn_end(c);
		else
			c->state = c->txn->n ? ST_RCPT : ST_DATA;
		return;
	}
	c->state = ST_RCPT;
	if (!c->pipelined)
		send_rcpt(c);
}

static void rcpt_result(struct smtpc *c, struct smtpc_rcpt *x, const struct smtpc_reply *r)
{
	if (c->aborted || x->status != SMTPC_OPEN)
		return;
	if (r->code / 100 == 2) {
		x->accepted = 1;
		c->naccepted++;
		return;
	}
	char diag[SMTPC_DIAG_MAX + 100];
	smtpc_reply_diag(r, states[ST_RCPT].cmd, diag, sizeof diag);
	set_final(x, class_status(r->code), diag);
	x->own = r->code != 421;
}

static void on_rcpt(struct smtpc *c, const struct smtpc_reply *r)
{
	rcpt_result(c, &c->txn->rcpt[c->rrepl++], r);
	if (c->rrepl < c->txn->n) {
		if (!c->pipelined)
			send_rcpt(c);
		return;
	}
	if (c->pipelined) {
		c->state = ST_DATA;
	} else if (c->naccepted) {
		buf_adds(&c->out, "DATA\r\n");
		c->state = ST_DATA;
	} else {
		txn_end(c);
	}
}

static void on_data(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 354 && c->lmtp && (c->aborted || !c->naccepted)) {
		/* an LMTP server answers the dot once per recipient it accepted: with none, how
		 * many replies an empty text would get is unknowable (RFC 2033 4.2) */
		smtpc_lost(c, "protocol error: 354 to DATA with no accepted recipient");
	} else if (r->code == 354 && (c->aborted || !c->naccepted)) {
		buf_adds(&c->out, ".\r\n");         /* nobody to deliver to: an empty text */
		c->discard = 1;
		c->state = ST_DOT;
	} else if (r->code == 354) {
		smtpc_body_init(&c->body);
		c->state = ST_BODY;
	} else if (r->code / 100 == 2 || r->code / 100 == 3) {
		smtpc_lost(c, "protocol error: unexpected reply to DATA");
	} else {
		if (!c->aborted)
			fail_reply(c, r);
		txn_end(c);
	}
}

static void on_body(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2 || r->code / 100 == 3) {
		smtpc_lost(c, "protocol error: reply before the end of the message text");
		return;
	}
	fail_reply(c, r);
	closed(c);                             /* it stopped reading mid-text */
}

/* LMTP (RFC 2033 4.2): the reply is the next accepted recipient's own, in RCPT order; the
 * transaction ends with the last one. A 421 or a lost connection before the last leaves the
 * rest temporary (handle_reply, smtpc_lost). */
static void on_dot_lmtp(struct smtpc *c, const struct smtpc_reply *r)
{
	struct smtpc_txn *t = c->txn;
	char diag[SMTPC_DIAG_MAX + 100];
	size_t i = c->dotnext;
	while (i < t->n && !(t->rcpt[i].status == SMTPC_OPEN && t->rcpt[i].accepted))
		i++;
	if (i == t->n) {                       /* cannot happen: the last reply ended it */
		smtpc_lost(c, "protocol error: more replies than accepted recipients");
		return;
	}
	smtpc_reply_diag(r, states[ST_DOT].cmd, diag, sizeof diag);
	set_final(&t->rcpt[i], r->code / 100 == 2 ? SMTPC_OK : class_status(r->code), diag);
	t->rcpt[i].own = 1;                    /* about this recipient alone (Dovecot's 452) */
	c->dotnext = i + 1;
	while (i < t->n && !(t->rcpt[i].status == SMTPC_OPEN && t->rcpt[i].accepted))
		i++;
	if (i == t->n)
		txn_end(c);
}

static void on_dot(struct smtpc *c, const struct smtpc_reply *r)
{
	struct smtpc_txn *t = c->txn;
	char diag[SMTPC_DIAG_MAX + 100];
	if (c->lmtp && !c->discard) {
		on_dot_lmtp(c, r);
		return;
	}
	if (!c->discard) {
		smtpc_reply_diag(r, states[ST_DOT].cmd, diag, sizeof diag);
		for (size_t i = 0; i < t->n; i++)
			if (t->rcpt[i].status == SMTPC_OPEN && t->rcpt[i].accepted)
				set_final(&t->rcpt[i], r->code / 100 == 2 ? SMTPC_OK :
				          class_status(r->code), diag);
	}
	txn_end(c);
}

static void on_quit(struct smtpc *c, const struct smtpc_reply *r) { closed(c); }

static void handle_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 421 && c->state != ST_QUIT) {
		char diag[SMTPC_DIAG_MAX + 100];
		smtpc_reply_diag(r, states[c->state].cmd, diag, sizeof diag);
		fail_open(c, SMTPC_TEMP, diag);
		closed(c);
		return;
	}
	if (states[c->state].fn)
		states[c->state].fn(c, r);
}

/* ---- the engine's interface ------------------------------------------------------------------ */

struct smtpc *smtpc_new(const char *helohost)
{
	struct smtpc *c = xcalloc(1, sizeof *c);
	c->helo = xstrdup(helohost && *helohost ? helohost : "localhost");
	smtpc_rparse_init(&c->rp);
	buf_init(&c->out);
	c->state = ST_GREET;
	return c;
}

void smtpc_free(struct smtpc *c)
{
	if (!c)
		return;
	free(c->helo);
	free(c->user);
	if (c->pass) {
		explicit_bzero(c->pass, strlen(c->pass));
		free(c->pass);
	}
	smtpc_rparse_free(&c->rp);
	buf_free(&c->out);
	free(c);
}

void smtpc_txn_reset(struct smtpc_txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->rcpt[i].diag);
		t->rcpt[i].diag = NULL;
		t->rcpt[i].status = SMTPC_OPEN;
		t->rcpt[i].accepted = 0;
	}
	t->done = t->retry = 0;
	t->nok = 0;
}

int smtpc_begin(struct smtpc *c, struct smtpc_txn *t)
{
	int setup = c->state < ST_READY;
	if (c->txn || (!setup && c->state != ST_READY))
		return -1;
	smtpc_txn_reset(t);
	c->txn = t;
	c->finished = NULL;
	c->rsent = c->rrepl = c->naccepted = c->dotnext = 0;
	c->mail_sent = c->aborted = c->discard = c->pipelined = 0;
	if (t->n == 0) {
		txn_end(c);
		return 0;
	}
	if (setup)
		return 0;
	if (c->used) {
		buf_adds(&c->out, "RSET\r\n");
		c->state = ST_RSET;
		return 0;
	}
	start_mail(c);
	return 0;
}

int smtpc_feed(struct smtpc *c, const char *in, size_t n)
{
	while (n > 0 && c->state != ST_CLOSED) {
		size_t used = 0;
		int r = smtpc_rparse_feed(&c->rp, in, n, &used);
		if (r < 0) {
			char why[128];
			snprintf(why, sizeof why, "protocol error: %s", c->rp.err);
			smtpc_lost(c, why);
			break;
		}
		in += used;
		n -= used;
		if (r == 1)
			handle_reply(c, &c->rp.r);
		if (c->state == ST_TLS) {
			c->tls_dropped += n;           /* the rest came before TLS: dropped */
			break;
		}
	}
	return c->state == ST_CLOSED ? -1 : 0;
}

enum smtpc_want smtpc_want(const struct smtpc *c)
{
	switch (c->state) {
	case ST_CLOSED: return SMTPC_W_CLOSE;
	case ST_BODY: return SMTPC_W_BODY;
	case ST_TLS: return SMTPC_W_TLS;
	case ST_READY: return c->txn ? SMTPC_W_REPLY : SMTPC_W_TXN;
	default: return SMTPC_W_REPLY;
	}
}

struct buf *smtpc_out(struct smtpc *c) { return &c->out; }
struct smtpc_body *smtpc_body(struct smtpc *c) { return &c->body; }

void smtpc_text_done(struct smtpc *c)
{
	if (c->state != ST_BODY)
		return;
	smtpc_body_end(&c->body, &c->out);
	c->state = ST_DOT;
}

struct smtpc_txn *smtpc_finished(struct smtpc *c)
{
	struct smtpc_txn *t = c->finished;
	c->finished = NULL;
	return t;
}

void smtpc_quit(struct smtpc *c)
{
	if (c->state == ST_READY && !c->txn)
		send_quit(c);
	else if (c->state != ST_QUIT)
		smtpc_lost(c, "connection closed by us (shutting down)");
}

void smtpc_lost(struct smtpc *c, const char *why)
{
	if (c->state == ST_CLOSED)
		return;
	fail_open(c, SMTPC_TEMP, why);
	closed(c);
}

const struct smtpc_caps *smtpc_caps(const struct smtpc *c) { return &c->caps; }
int smtpc_usable(const struct smtpc *c) { return c->state == ST_READY && !c->txn; }
const char *smtpc_state_name(const struct smtpc *c) { return states[c->state].name; }

void smtpc_set_tls(struct smtpc *c, enum smtpc_tls mode) { c->tlsmode = mode; }
void smtpc_set_lmtp(struct smtpc *c, int on) { c->lmtp = on != 0; }
int smtpc_lmtp(const struct smtpc *c) { return c->lmtp; }

void smtpc_set_greet_check(struct smtpc *c, smtpc_greet_fn fn, void *arg)
{
	c->greet_fn = fn;
	c->greet_arg = arg;
}

void smtpc_set_auth(struct smtpc *c, const char *user, const char *pass, int plaintext_ok)
{
	free(c->user);
	if (c->pass) {
		explicit_bzero(c->pass, strlen(c->pass));
		free(c->pass);
	}
	c->user = user ? xstrdup(user) : NULL;
	c->pass = user ? xstrdup(pass ? pass : "") : NULL;
	c->auth_plaintext = plaintext_ok != 0;
}

void smtpc_tls_done(struct smtpc *c)
{
	if (c->state != ST_TLS)
		return;
	c->tls = 1;
	memset(&c->caps, 0, sizeof c->caps);     /* RFC 3207 4.2: forget what was said before */
	hello(c);
}

int smtpc_tls_active(const struct smtpc *c) { return c->tls; }
size_t smtpc_tls_dropped(const struct smtpc *c) { return c->tls_dropped; }
int smtpc_authed(const struct smtpc *c) { return c->authed; }
