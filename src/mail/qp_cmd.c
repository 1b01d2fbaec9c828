/* qp_cmd — see qp_cmd.h. One table: verb, sub-verb, command id, argument count and the type
 * of each argument, flags. Verbs and sub-verbs are case-insensitive; arguments are separated
 * by blanks; an argument of type 'r' takes the rest of the line (passwords, needles, raw
 * control lines, the agent identifier of QWAIT, which Bongo's agents write with a blank). */
#include "mail/qp_cmd.h"
#include "mail/addr.h"
#include "mail/smtp_data.h"
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* argument types: e entry, q stage (0..999, else 4000), n number, p port, w INFO|MESSAGE,
 * s one word, r the rest of the line */
static const struct qp_verbdef {
	const char *word, *sub;
	enum qp_verb verb;
	unsigned char min, max;
	const char *types;
	unsigned flags;
} qp_cmd_tab[] = {
	{ "AUTH",    "SYSTEM",   QP_AUTH_SYSTEM,     1, 1, "s",     QPF_PRELOGIN },
	{ "AUTH",    NULL,       QP_AUTH,            1, 1, "s",     QPF_PRELOGIN },
	{ "PASS",    "SYS",      QP_PASS_SYS,        1, 1, "r",     QPF_PRELOGIN },
	{ "PASS",    "USER",     QP_PASS_USER,       2, 2, "sr",    QPF_PRELOGIN },
	{ "HELP",    NULL,       QP_HELP,            0, 1, "r",     QPF_PRELOGIN },
	{ "NOOP",    NULL,       QP_NOOP,            0, 1, "r",     QPF_PRELOGIN },
	{ "QUIT",    NULL,       QP_QUIT,            0, 1, "r",     QPF_PRELOGIN },
	{ "ADDRESS", "RESOLVE",  QP_ADDRESS_RESOLVE, 1, 1, "s",     QPF_USER },
	{ "DOMAIN",  "LOCATION", QP_DOMAIN_LOCATION, 1, 1, "s",     QPF_PRELOGIN },
	{ "QCREA",   NULL,       QP_QCREA,           0, 1, "q",     0 },
	{ "QSTOR",   "FROM",     QP_QSTOR_FROM,      1, 2, "sr",    0 },
	{ "QSTOR",   "TO",       QP_QSTOR_TO,        1, 3, "ssr",   0 },
	{ "QSTOR",   "LOCAL",    QP_QSTOR_LOCAL,     1, 3, "ssr",   0 },
	{ "QSTOR",   "ADDRESS",  QP_QSTOR_ADDRESS,   1, 1, "r",     0 },
	{ "QSTOR",   "FLAGS",    QP_QSTOR_FLAGS,     1, 1, "r",     0 },
	{ "QSTOR",   "CAL",      QP_QSTOR_CAL,       1, 3, "ssr",   0 },
	{ "QSTOR",   "RAW",      QP_QSTOR_RAW,       1, 1, "r",     0 },
	{ "QSTOR",   "MESSAGE",  QP_QSTOR_MESSAGE,   0, 1, "n",     0 },
	{ "QRUN",    NULL,       QP_QRUN,            0, 1, "e",     0 },
	{ "QABRT",   NULL,       QP_QABRT,           0, 0, "",      0 },
	{ "QRCP",    NULL,       QP_QRCP,            0, 0, "",      0 },
	{ "QADDQ",   NULL,       QP_QADDQ,           3, 3, "enn",   0 },
	{ "QINFO",   NULL,       QP_QINFO,           1, 1, "e",     0 },
	{ "QHEAD",   NULL,       QP_QHEAD,           1, 1, "e",     0 },
	{ "QBODY",   NULL,       QP_QBODY,           1, 1, "e",     0 },
	{ "QBRAW",   NULL,       QP_QBRAW,           3, 3, "enn",   0 },
	{ "QRETR",   NULL,       QP_QRETR,           2, 2, "ew",    0 },
	{ "QGREP",   NULL,       QP_QGREP,           2, 2, "er",    0 },
	{ "QMIME",   NULL,       QP_QMIME,           1, 1, "e",     0 },
	{ "QSRCH",   "HEADER",   QP_QSRCH_HEADER,    2, 3, "esr",   0 },
	{ "QSRCH",   "BODY",     QP_QSRCH_BODY,      2, 2, "er",    0 },
	{ "QSRCH",   "BRAW",     QP_QSRCH_BRAW,      4, 4, "ennr",  0 },
	{ "QSRCH",   "DOMAIN",   QP_QSRCH_DOMAIN,    1, 1, "s",     0 },
	{ "QDELE",   NULL,       QP_QDELE,           1, 1, "e",     0 },
	{ "QMOVE",   NULL,       QP_QMOVE,           2, 2, "eq",    0 },
	{ "QCOPY",   NULL,       QP_QCOPY,           1, 2, "eq",    0 },
	{ "QDSPC",   NULL,       QP_QDSPC,           0, 0, "",      0 },
	{ "QFLUSH",  NULL,       QP_QFLUSH,          0, 0, "",      0 },
	{ "QWAIT",   NULL,       QP_QWAIT,           3, 3, "qpr",   0 },
	{ "QADDM",   NULL,       QP_QADDM,           4, 6, "essssr", 0 },
	{ "QMOD",    "FROM",     QP_QMOD_FROM,       1, 2, "sr",    QPF_SILENT | QPF_CALLBACK },
	{ "QMOD",    "TO",       QP_QMOD_TO,         1, 3, "ssr",   QPF_SILENT | QPF_CALLBACK },
	{ "QMOD",    "LOCAL",    QP_QMOD_LOCAL,      1, 3, "ssr",   QPF_SILENT | QPF_CALLBACK },
	{ "QMOD",    "MAILBOX",  QP_QMOD_MAILBOX,    1, 1, "r",     QPF_SILENT | QPF_CALLBACK },
	{ "QMOD",    "FLAGS",    QP_QMOD_FLAGS,      1, 1, "r",     QPF_SILENT | QPF_CALLBACK },
	{ "QMOD",    "RAW",      QP_QMOD_RAW,        1, 1, "r",     QPF_SILENT | QPF_CALLBACK },
	{ "QRTS",    NULL,       QP_QRTS,            3, 5, "ssssr", QPF_SILENT | QPF_CALLBACK },
	{ "QDONE",   NULL,       QP_QDONE,           0, 0, "",      QPF_CALLBACK },
};
#define QP_NVERBS (sizeof qp_cmd_tab / sizeof qp_cmd_tab[0])

const char *qp_cmd_name(enum qp_verb v)
{
	static char name[2][24];
	static int k;
	if (v == QP_NONE)
		return "NONE";
	for (size_t i = 0; i < QP_NVERBS; i++)
		if (qp_cmd_tab[i].verb == v) {
			const struct qp_verbdef *d = &qp_cmd_tab[i];
			if (!d->sub)
				return d->word;
			k ^= 1;
			snprintf(name[k], sizeof name[k], "%s %s", d->word, d->sub);
			return name[k];
		}
	return "UNKNOWN";
}

unsigned qp_cmd_flags(enum qp_verb v)
{
	for (size_t i = 0; i < QP_NVERBS; i++)
		if (qp_cmd_tab[i].verb == v)
			return qp_cmd_tab[i].flags;
	return QPF_PRELOGIN;                 /* unknown: 3000 for everybody */
}

void qp_cmd_help(struct buf *out)
{
	for (size_t i = 0; i < QP_NVERBS; i++) {
		if (i > 0 && strcmp(qp_cmd_tab[i - 1].word, qp_cmd_tab[i].word) == 0)
			continue;
		buf_printf(out, "%s%s", i ? " " : "", qp_cmd_tab[i].word);
	}
}

/* ---- parsing --------------------------------------------------------------------------- */

static int qp_cmd_blank(char c) { return c == ' ' || c == '\t'; }

static int qp_cmd_fail(struct qp_cmd *c, int code)
{
	c->code = code;
	c->text = code == 3000 ? "Unknown command" : code == 4000 ? "Target queue out of range"
	        : "Bad arguments";
	return -1;
}

/* the next blank-separated word at *p (NUL-terminated in place), or NULL at the end */
static char *qp_cmd_word(char **p)
{
	char *s = *p;
	while (qp_cmd_blank(*s))
		s++;
	if (!*s)
		return *p = s, NULL;
	char *e = s;
	while (*e && !qp_cmd_blank(*e))
		e++;
	if (*e)
		*e++ = '\0';
	*p = e;
	return s;
}

/* the rest of the line at *p, leading blanks skipped, or NULL if empty */
static char *qp_cmd_rest(char **p)
{
	char *s = *p;
	while (qp_cmd_blank(*s))
		s++;
	*p = s + strlen(s);
	return *s ? s : NULL;
}

static int qp_cmd_digits(const char *s, uint64_t max, uint64_t *out)
{
	if (!*s || strlen(s) > 19 || strspn(s, "0123456789") != strlen(s))
		return -1;
	*out = strtoull(s, NULL, 10);
	return *out <= max ? 0 : -1;
}

/* check and convert argument i of type t; 0 or a reply code */
static int qp_cmd_arg(struct qp_cmd *c, int i, char t)
{
	const char *s = c->argv[i];
	uint64_t v = 0;
	switch (t) {
	case 'e':
		return qp_entry_parse(s, &c->ent) < 0 ? 3010 : 0;
	case 'q':
		if (qp_cmd_digits(s, UINT64_MAX / 10, &v) < 0)
			return 3010;
		if (v > QP_MAXSTAGE)
			return 4000;
		break;
	case 'n':
		if (qp_cmd_digits(s, UINT64_MAX / 10, &v) < 0)
			return 3010;
		break;
	case 'p':
		if (qp_cmd_digits(s, 65535, &v) < 0 || v == 0)
			return 3010;
		break;
	case 'w':
		if (str_casecmp(s, "INFO") == 0)
			v = 0;
		else if (str_casecmp(s, "MESSAGE") == 0)
			v = 1;
		else
			return 3010;
		break;
	default:
		return 0;
	}
	c->num[i] = v;
	c->hasnum[i] = 1;
	return 0;
}

/* the row for word [sub-verb]; *flags = what every row of word allows (for an unknown
 * sub-verb), QPF_PRELOGIN when the word is unknown */
static const struct qp_verbdef *qp_cmd_lookup(const char *word, char **p, unsigned *flags)
{
	const struct qp_verbdef *plain = NULL;
	char *save = *p, *sub = NULL;
	int subread = 0;
	*flags = ~0u;
	for (size_t i = 0; i < QP_NVERBS; i++) {
		const struct qp_verbdef *d = &qp_cmd_tab[i];
		if (str_casecmp(d->word, word) != 0)
			continue;
		*flags &= d->flags;
		if (!d->sub) {
			plain = d;
			continue;
		}
		if (!subread) {
			sub = qp_cmd_word(p);
			subread = 1;
		}
		if (sub && str_casecmp(d->sub, sub) == 0)
			return d;
	}
	if (plain && subread) {              /* "AUTH <hex>": the word read was an argument */
		if (sub && *p > sub + strlen(sub))
			sub[strlen(sub)] = ' ';
		*p = save;
	}
	return plain;
}

int qp_cmd_parse(char *line, size_t len, struct qp_cmd *c)
{
	memset(c, 0, sizeof *c);
	c->verb = QP_UNKNOWN;
	line[len] = '\0';
	if (memchr(line, '\0', len))
		return qp_cmd_fail(c, 3000);
	while (len > 0 && (qp_cmd_blank(line[len - 1]) || line[len - 1] == '\r'))
		line[--len] = '\0';
	char *p = line, *word = qp_cmd_word(&p);
	c->flags = QPF_PRELOGIN;
	if (!word)
		return qp_cmd_fail(c, 3000);
	const struct qp_verbdef *d = qp_cmd_lookup(word, &p, &c->flags);
	if (!d) {
		int known = c->flags != ~0u;
		if (!known)
			c->flags = QPF_PRELOGIN;
		return qp_cmd_fail(c, known ? 3010 : 3000);
	}
	c->verb = d->verb;
	c->flags = d->flags;
	for (int i = 0; i < d->max; i++) {
		char t = d->types[i];
		char *a = t == 'r' ? qp_cmd_rest(&p) : qp_cmd_word(&p);
		if (!a)
			break;
		c->argv[c->argc++] = a;
		int code = qp_cmd_arg(c, i, t);
		if (code)
			return qp_cmd_fail(c, code);
	}
	if (c->argc < d->min || qp_cmd_word(&p))
		return qp_cmd_fail(c, 3010);
	return 0;
}

/* ---- entry names and replies ------------------------------------------------------------- */

int qp_entry_parse(const char *s, struct qp_entry *e)
{
	size_t nd = strspn(s, "0123456789");
	if (nd < 1 || nd > 3 || s[nd] != '-')
		return -1;
	const char *h = s + nd + 1;
	size_t nh = strspn(h, "0123456789abcdefABCDEF");
	if (nh < 1 || nh > 16 || h[nh])
		return -1;
	e->stage = (unsigned)strtoul(s, NULL, 10);
	e->id = strtoull(h, NULL, 16);
	return 0;
}

void qp_entry_format(char out[24], unsigned stage, uint64_t id)
{
	snprintf(out, 24, "%03u-%016" PRIx64, stage % 1000, id);
}

static void qp_vreply(struct buf *out, int code, char sep, const char *fmt, va_list ap)
{
	char text[1024];
	vsnprintf(text, sizeof text, fmt, ap);
	for (char *t = text; *t; t++)          /* one line, whatever the text holds */
		if (*t == '\r' || *t == '\n')
			*t = ' ';
	buf_printf(out, "%04d%c%s\r\n", code, sep, text);
}

void qp_reply(struct buf *out, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qp_vreply(out, code, ' ', fmt, ap);
	va_end(ap);
}

void qp_reply_more(struct buf *out, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qp_vreply(out, code, '-', fmt, ap);
	va_end(ap);
}

/* ---- control data ---------------------------------------------------------------------- */

static int qp_live(const struct slot *s) { return s->state == SL_UNROUTED || s->state == SL_ROUTED; }

size_t qp_ctrl_build(struct buf *out, const struct envelope *e, qp_islocal_fn islocal, void *arg)
{
	size_t n = 0;
	buf_printf(out, "D%" PRId64 "\r\nF%s -\r\n", e->arrival,
	           e->sender && *e->sender ? e->sender : "-");
	for (size_t i = 0; i < e->nslots; i++) {
		const struct slot *s = &e->slots[i];
		if (!qp_live(s) || !s->rcpt || !*s->rcpt)
			continue;
		int local = islocal ? islocal(s->rcpt, arg) : 0;
		buf_printf(out, "%c%s %s 0\r\n", local ? 'L' : 'R', s->rcpt, s->rcpt);
		n++;
	}
	return n;
}

static int qp_copy(const char *s, size_t n, char *out, size_t sz)
{
	if (n >= sz)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int qp_ctrl_split(const char *line, char *kind, char *a, size_t asz, char *b, size_t bsz)
{
	if (!*line)
		return -1;
	*kind = line[0];
	const char *p = line + 1, *sp = strchr(p, ' ');
	size_t n = sp ? (size_t)(sp - p) : strlen(p);
	if (qp_copy(p, n, a, asz) < 0)
		return -1;
	p = sp ? sp + 1 : p + n;
	while (*p == ' ')
		p++;
	sp = strchr(p, ' ');
	n = sp ? (size_t)(sp - p) : strlen(p);
	return qp_copy(p, n, b, bsz);
}

int qp_addr(const char *arg, int sender, char *out, size_t outsz)
{
	struct addr a;
	if (sender && (!*arg || strcmp(arg, "-") == 0 || strcmp(arg, "<>") == 0)) {
		*out = '\0';
		return 0;
	}
	if (!strchr(arg, '@') && !strchr(arg, '<')) {
		size_t n = strlen(arg);
		if (n == 0 || strcmp(arg, "-") == 0 || n > ADDR_LOCAL_MAX || !addr_is_dot_string(arg, n))
			return -1;
		return qp_copy(arg, n, out, outsz);
	}
	if (addr_parse(arg, sender ? ADDR_SENDER : ADDR_RCPT, &a) < 0 || *a.params)
		return -1;
	if (a.null && !sender)
		return -1;
	return qp_copy(a.mailbox, strlen(a.mailbox), out, outsz);
}

/* ---- QDONE ----------------------------------------------------------------------------- */

static int qp_in(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static void qp_plan_add(struct qp_plan *p, int op, const char *arg)
{
	p->v = xrealloc(p->v, (p->n + 1) * sizeof *p->v);
	p->v[p->n].op = op;
	p->v[p->n++].arg = xstrdup(arg);
}

/* the live recipients of e, each once (pointers into e) */
static size_t qp_plan_live(const struct envelope *e, char ***out)
{
	size_t n = 0;
	*out = xcalloc(e->nslots + 1, sizeof **out);
	for (size_t i = 0; i < e->nslots; i++)
		if (qp_live(&e->slots[i]) && e->slots[i].rcpt && !qp_in(*out, n, e->slots[i].rcpt))
			(*out)[n++] = e->slots[i].rcpt;
	return n;
}

/* the sender (NULL: unchanged) and the recipients the lines name */
static size_t qp_plan_wanted(struct qp_plan *p, char *const *work, size_t nwork, char **sender,
                             char ***rc)
{
	size_t n = 0;
	char kind, a[ADDR_PATH_MAX + 8], b[64], addr[ADDR_PATH_MAX];
	*sender = NULL;
	*rc = xcalloc(nwork + 1, sizeof **rc);
	for (size_t i = 0; i < nwork; i++) {
		int ok = qp_ctrl_split(work[i], &kind, a, sizeof a, b, sizeof b) == 0;
		if (ok && kind == 'F' && qp_addr(a, 1, addr, sizeof addr) == 0) {
			free(*sender);
			*sender = xstrdup(addr);
		} else if (ok && (kind == 'R' || kind == 'L' || kind == 'C') &&
		           qp_addr(a, 0, addr, sizeof addr) == 0) {
			if (!qp_in(*rc, n, addr))
				(*rc)[n++] = xstrdup(addr);
		} else if (!ok || !strchr("DXMA", kind))
			p->ignored++;
	}
	return n;
}

void qp_plan_make(struct qp_plan *p, char *const *work, size_t nwork, int raw, char *const *rts,
                  size_t nrts, const struct envelope *e)
{
	char **live, **want, *sender;
	memset(p, 0, sizeof *p);
	size_t nl = qp_plan_live(e, &live), nw = qp_plan_wanted(p, work, nwork, &sender, &want);
	int all = nl > 0;
	for (size_t i = 0; i < nl; i++)
		all &= qp_in(rts, nrts, live[i]);
	if (nrts && all) {
		qp_plan_add(p, QPE_RETURN, "");
		p->returned = 1;
	} else {
		p->partial = nrts > 0;
		if (sender && strcmp(sender, e->sender ? e->sender : "") != 0)
			qp_plan_add(p, QPE_SENDER, sender);
		for (size_t i = 0; i < nw; i++)
			if (!qp_in(live, nl, want[i]))
				qp_plan_add(p, QPE_ADD, want[i]);
		for (size_t i = 0; raw && i < nl; i++)
			if (!qp_in(want, nw, live[i]))
				qp_plan_add(p, QPE_DEL, live[i]);
	}
	for (size_t i = 0; i < nw; i++)
		free(want[i]);
	free(want);
	free(live);
	free(sender);
}

void qp_plan_free(struct qp_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].arg);
	free(p->v);
	memset(p, 0, sizeof *p);
}

/* ---- message data --------------------------------------------------------------------- */

size_t qp_crlf_feed(struct qp_crlf *d, const char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = in[i];
		if (d->cr && ch != '\n')
			out[o++] = '\r';
		d->cr = ch == '\r';
		if (!d->cr)
			out[o++] = ch;
	}
	return o;
}

size_t qp_crlf_end(struct qp_crlf *d, char *out)
{
	if (!d->cr)
		return 0;
	d->cr = 0;
	out[0] = '\r';
	return 1;
}

enum { DOT_BOL = 0, DOT_DOT, DOT_DOTCR, DOT_MID, DOT_CR };

/* one input octet in the dot decoder; returns octets written to out */
static size_t qp_dot_step(struct qp_dot *d, char ch, char *out)
{
	size_t o = 0;
	switch (d->state) {
	case DOT_BOL:
		if (ch == '.') {
			d->state = DOT_DOT;
			return 0;
		}
		break;
	case DOT_DOT:
		if (ch == '\r') {
			d->state = DOT_DOTCR;
			return 0;
		}
		if (ch == '\n') {
			d->done = 1;
			return 0;
		}
		break;                            /* the leading dot is dropped */
	case DOT_DOTCR:
		if (ch == '\n') {
			d->done = 1;
			return 0;
		}
		out[o++] = '\r';
		break;
	case DOT_CR:
		if (ch == '\n') {
			out[o++] = '\n';
			d->state = DOT_BOL;
			return o;
		}
		out[o++] = '\r';
		break;
	}
	if (ch == '\r') {
		d->state = DOT_CR;
		return o;
	}
	out[o++] = ch;
	d->state = ch == '\n' ? DOT_BOL : DOT_MID;
	return o;
}

size_t qp_dot_feed(struct qp_dot *d, const char *in, size_t n, char *out, size_t *outn)
{
	size_t i = 0, o = 0;
	while (i < n && !d->done)
		o += qp_dot_step(d, in[i++], out + o);
	d->bytes += o;
	*outn = o;
	return i;
}

size_t qp_lf2crlf(const char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\n')
			out[o++] = '\r';
		out[o++] = in[i];
	}
	return o;
}

void qp_split_init(struct qp_split *s)
{
	memset(s, 0, sizeof *s);
	s->state = 1;                       /* at the beginning of a line */
}

void qp_split_feed(struct qp_split *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++, s->off++) {
		char ch = p[i];
		if (s->found) {
			s->blf += ch == '\n';
			continue;
		}
		if (ch == '\n' && s->state) {   /* the empty line */
			s->found = 1;
			s->bstart = s->off + 1;
			continue;
		}
		s->hbytes++;
		s->hlf += ch == '\n';
		s->state = ch == '\n';
	}
}

uint64_t qp_split_hwire(const struct qp_split *s) { return s->hbytes + s->hlf; }

uint64_t qp_split_bwire(const struct qp_split *s, uint64_t total)
{
	return s->found && total >= s->bstart ? total - s->bstart + s->blf : 0;
}

int qp_hdr_is(const char *line, size_t n, const char *field)
{
	size_t f = strlen(field);
	if (f > 0 && field[f - 1] == ':')
		f--;
	if (f == 0 || n < f || str_ncasecmp(line, field, f) != 0)
		return 0;
	size_t i = f;
	while (i < n && qp_cmd_blank(line[i]))
		i++;
	return i < n && line[i] == ':';
}

static unsigned char qp_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

long qp_find(const char *hay, size_t n, const char *needle, size_t m)
{
	if (m == 0)
		return 0;
	if (m > n)
		return -1;
	unsigned char first = qp_lower((unsigned char)needle[0]);
	for (size_t i = 0; i + m <= n; i++) {
		if (qp_lower((unsigned char)hay[i]) != first)
			continue;
		size_t k = 1;
		while (k < m && qp_lower((unsigned char)hay[i + k]) == qp_lower((unsigned char)needle[k]))
			k++;
		if (k == m)
			return (long)i;
	}
	return -1;
}

void qp_received(struct buf *out, const char *ip, const char *me, uint64_t id, time_t when)
{
	char date[64];
	smtp_data_date(date, sizeof date, when);
	buf_adds(out, "Received: from [");
	for (const char *p = ip; *p; p++)      /* a numeric address; anything else is masked */
		buf_addc(out, (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		         (*p >= 'A' && *p <= 'F') || *p == '.' || *p == ':' ? *p : '_');
	buf_printf(out, "] by %s with NMAP (tern bongoqueue) id %016" PRIx64 ";\n\t%s\n", me, id,
	           date);
}
