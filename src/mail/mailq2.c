/* mailq2 — see mailq2.h: MAILQ v2 command lines, the auth file and its ACLs, the
 * challenge/response check, saytime, and every text view of the scheduler's snapshot and
 * the queue's listing. Owns: the byte-exact formats of PROTOCOLS.md §1 and doc/ADMIN.md.
 * Trusts: nothing it parses (lines, auth files and IPC payloads are all checked). */
#include "mail/mailq2.h"
#include "mail/digest.h"
#include "mail/envelope.h"
#include "mail/table.h"
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

/* ---- command lines ---------------------------------------------------------------------- */

struct mq2_syntax {
	const char *w[3];            /* keywords (case-sensitive) */
	size_t nargs;
	enum mq2_verb verb;
	unsigned right;
};

static const struct mq2_syntax mq2_table[] = {
	{ { "AUTH", NULL, NULL }, 2, MQ2_AUTH, 0 },
	{ { "SHOW", "SNMP", NULL }, 0, MQ2_SHOW_SNMP, MQ2_SNMP },
	{ { "SHOW", "QUEUE", "SHORT" }, 0, MQ2_SHOW_SHORT, MQ2_QQ },
	{ { "SHOW", "QUEUE", "THREADS" }, 0, MQ2_SHOW_THREADS, MQ2_TT },
	{ { "SHOW", "QUEUE", "THREADS2" }, 0, MQ2_SHOW_THREADS2, MQ2_TT },
	{ { "SHOW", "THREAD", NULL }, 2, MQ2_SHOW_THREAD, MQ2_TT },
	{ { "KILL", "MSG", NULL }, 1, MQ2_KILL_MSG, MQ2_KILL },
	{ { "KILL", "THREAD", NULL }, 2, MQ2_KILL_THREAD, MQ2_KILL },
	{ { "REQUEUE", "ROUTER", NULL }, 1, MQ2_REQUEUE, MQ2_KILL },
};

#define MQ2_MAXWORDS 8

static int mq2_sp(char c) { return c == ' ' || c == '\t'; }

static size_t mq2_split(const char *p, size_t n, struct mq2_word *w, size_t max)
{
	size_t k = 0, i = 0;
	while (i < n) {
		while (i < n && mq2_sp(p[i]))
			i++;
		if (i == n)
			break;
		size_t s = i;
		while (i < n && !mq2_sp(p[i]))
			i++;
		if (k < max)
			w[k] = (struct mq2_word){ p + s, i - s };
		k++;
	}
	return k;
}

static int mq2_is(struct mq2_word w, const char *kw)
{
	return w.n == strlen(kw) && memcmp(w.p, kw, w.n) == 0;
}

static int mq2_is_ci(struct mq2_word w, const char *kw)
{
	return w.n == strlen(kw) && str_ncasecmp(w.p, kw, w.n) == 0;
}

static int mq2_match(const struct mq2_syntax *t, const struct mq2_word *w, size_t nw,
                     struct mq2_cmd *c)
{
	size_t k = 0;
	for (; k < 3 && t->w[k]; k++)
		if (k >= nw || !mq2_is(w[k], t->w[k]))
			return 0;
	if (nw - k != t->nargs)
		return 0;
	for (size_t a = 0; a < t->nargs; a++)
		c->arg[a] = w[k + a];
	c->nargs = t->nargs;
	c->verb = t->verb;
	c->right = t->right;
	return 1;
}

void mailq2_parse(const char *line, size_t len, struct mq2_cmd *c)
{
	struct mq2_word w[MQ2_MAXWORDS];
	memset(c, 0, sizeof *c);
	size_t nw = mq2_split(line, len, w, MQ2_MAXWORDS);
	if (nw == 0)
		return;
	c->vword = w[0];
	const char *r = w[0].p + w[0].n, *end = line + len;
	while (r < end && mq2_sp(*r))
		r++;
	c->rest = (struct mq2_word){ r, (size_t)(end - r) };
	if (mq2_is_ci(w[0], "QUIT") || mq2_is_ci(w[0], "EXIT")) {
		c->verb = MQ2_QUIT;
		return;
	}
	if (mq2_is(w[0], "ETRN")) {            /* the right is checked before the arguments */
		c->verb = MQ2_ETRN_CMD;
		c->right = MQ2_ETRN;
		c->nargs = nw - 1 > 2 ? 2 : nw - 1;
		c->arg[0] = nw > 1 ? w[1] : (struct mq2_word){ "", 0 };
		return;
	}
	if (nw > MQ2_MAXWORDS)
		return;
	for (size_t i = 0; i < sizeof mq2_table / sizeof mq2_table[0]; i++)
		if (mq2_match(&mq2_table[i], w, nw, c))
			return;
}

static void mq2_echo(struct buf *out, struct mq2_word w)
{
	for (size_t i = 0; i < w.n; i++) {
		unsigned char ch = (unsigned char)w.p[i];
		buf_addc(out, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
	}
}

void mailq2_refusal(struct buf *out, const struct mq2_cmd *c)
{
	buf_adds(out, "-MAILQ2 Unknown command, or refused by access control; VERB='");
	mq2_echo(out, c->vword);
	buf_adds(out, "' REST='");
	mq2_echo(out, c->rest);
	buf_adds(out, "'\n");
}

/* ---- addresses and ACLs ---------------------------------------------------------------- */

int mailq2_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct mq2_addr *out)
{
	memset(out, 0, sizeof *out);
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		out->family = AF_INET;
		memcpy(out->a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			out->family = AF_INET;
			memcpy(out->a, a6->s6_addr + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->a, a6->s6_addr, 16);
		}
		return 0;
	}
	if (sa->sa_family == AF_UNIX) {            /* a local socket: 127.0.0.1 */
		static const unsigned char lo[4] = { 127, 0, 0, 1 };
		out->family = AF_INET;
		memcpy(out->a, lo, 4);
		return 0;
	}
	return -1;
}

int mailq2_addr_parse(const char *text, struct mq2_addr *out)
{
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, text, out->a) == 1) {
		out->family = AF_INET;
		return 0;
	}
	unsigned char a6[16];
	if (inet_pton(AF_INET6, text, a6) != 1)
		return -1;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(a6, mapped, 12) == 0) {
		out->family = AF_INET;
		memcpy(out->a, a6 + 12, 4);
	} else {
		out->family = AF_INET6;
		memcpy(out->a, a6, 16);
	}
	return 0;
}

static int mq2_prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, full) != 0)
		return 0;
	if (!rest)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

static int mq2_acl_match(const struct mq2_acl *p, const struct mq2_addr *a)
{
	return p->family == a->family && mq2_prefix_eq(p->addr, a->a, p->bits);
}

int mailq2_acl_allows(const struct mq2_entry *e, const struct mq2_addr *addr)
{
	if (e->nacl == 0)
		return 1;
	for (size_t i = 0; i < e->nacl; i++)
		if (mq2_acl_match(&e->acl[i], addr))
			return !e->acl[i].neg;
	return 0;
}

int mailq2_auth_any(const struct mq2_auth *a, const struct mq2_addr *addr)
{
	for (size_t i = 0; a && i < a->n; i++)
		if (mailq2_acl_allows(&a->e[i], addr))
			return 1;
	return 0;
}

const struct mq2_entry *mailq2_auth_find(const struct mq2_auth *a, const char *user,
                                         size_t ulen, const struct mq2_addr *addr)
{
	for (size_t i = 0; a && i < a->n; i++) {
		const struct mq2_entry *e = &a->e[i];
		if (strlen(e->user) == ulen && memcmp(e->user, user, ulen) == 0 &&
		    mailq2_acl_allows(e, addr))
			return e;
	}
	return NULL;
}

/* ---- the auth file --------------------------------------------------------------------- */

static const struct { const char *name; unsigned bits; } mq2_rights[] = {
	{ "NONE", 0 }, { "SNMP", MQ2_SNMP }, { "QQ", MQ2_QQ }, { "TT", MQ2_TT },
	{ "ETRN", MQ2_ETRN }, { "KILL", MQ2_KILL }, { "ALL", MQ2_ALL },
};

/* RIGHTS: blank-separated words; -1 on an unknown word */
static int mq2_parse_rights(const char *p, size_t n, unsigned *out)
{
	struct mq2_word w[32];
	size_t nw = mq2_split(p, n, w, 32);
	*out = 0;
	if (nw > 32)
		return -1;
	for (size_t i = 0; i < nw; i++) {
		size_t k;
		for (k = 0; k < sizeof mq2_rights / sizeof mq2_rights[0]; k++)
			if (mq2_is(w[i], mq2_rights[k].name))
				break;
		if (k == sizeof mq2_rights / sizeof mq2_rights[0])
			return -1;
		*out |= mq2_rights[k].bits;
	}
	return 0;
}

/* one pattern: [!][a.b.c.d](/bits) or [!][IPv6:addr](/bits) */
static int mq2_parse_acl(const char *p, size_t n, struct mq2_acl *acl)
{
	char tmp[64];
	memset(acl, 0, sizeof *acl);
	if (n && *p == '!') {
		acl->neg = 1;
		p++, n--;
	}
	const char *close = n ? memchr(p, ']', n) : NULL;
	if (!n || *p != '[' || !close || (size_t)(close - p - 1) >= sizeof tmp)
		return -1;
	memcpy(tmp, p + 1, (size_t)(close - p - 1));
	tmp[close - p - 1] = '\0';
	unsigned max = 32;
	if (str_ncasecmp(tmp, "IPv6:", 5) == 0 || str_ncasecmp(tmp, "IPv6.", 5) == 0) {
		acl->family = AF_INET6, max = 128;
		if (inet_pton(AF_INET6, tmp + 5, acl->addr) != 1)
			return -1;
	} else if (inet_pton(AF_INET, tmp, acl->addr) == 1)
		acl->family = AF_INET;
	else
		return -1;
	acl->bits = max;
	size_t rest = n - (size_t)(close - p) - 1;
	if (!rest)
		return 0;
	char num[8];
	uint64_t bits;
	if (close[1] != '/' || rest - 1 >= sizeof num || rest < 2)
		return -1;
	memcpy(num, close + 2, rest - 1);
	num[rest - 1] = '\0';
	if (str_to_u64(num, 0, max, &bits) < 0)
		return -1;
	acl->bits = (unsigned)bits;
	return 0;
}

static int mq2_acl_sep(char c) { return c == ' ' || c == '\t' || c == ','; }

static int mq2_parse_acls(const char *p, size_t n, struct mq2_entry *e)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && mq2_acl_sep(p[i]))
			i++;
		if (i == n)
			break;
		size_t s = i;
		while (i < n && !mq2_acl_sep(p[i]))
			i++;
		e->acl = xrealloc(e->acl, (e->nacl + 1) * sizeof *e->acl);
		if (mq2_parse_acl(p + s, i - s, &e->acl[e->nacl]) < 0)
			return -1;
		e->nacl++;
	}
	return 0;
}

static void mq2_entry_free(struct mq2_entry *e)
{
	free(e->user);
	free(e->password);
	free(e->acl);
}

/* user:password:RIGHTS:ACL (the ACL may contain ':' inside [IPv6:...]) */
static const char *mq2_parse_line(const char *s, size_t n, struct mq2_entry *e)
{
	const char *f[3], *end = s + n, *p = s;
	for (int k = 0; k < 3; k++) {
		const char *c = memchr(p, ':', (size_t)(end - p));
		if (!c)
			return "expected user:password:RIGHTS:ACL";
		f[k] = c;
		p = c + 1;
	}
	if (f[0] == s)
		return "empty user name";
	if (memchr(s, '\0', n))
		return "NUL byte in line";
	e->user = xstrndup(s, (size_t)(f[0] - s));
	e->password = xstrndup(f[0] + 1, (size_t)(f[1] - f[0] - 1));
	if (mq2_parse_rights(f[1] + 1, (size_t)(f[2] - f[1] - 1), &e->rights) < 0)
		return "unknown right (ALL SNMP QQ TT ETRN KILL NONE)";
	if (mq2_parse_acls(f[2] + 1, (size_t)(end - f[2] - 1), e) < 0)
		return "bad ACL (want [a.b.c.d]/bits or [IPv6:addr]/bits, optionally after !)";
	return NULL;
}

struct mq2_auth *mailq2_auth_parse(const char *name, const char *text, size_t len,
                                   struct cfg_errors *errs)
{
	struct mq2_auth *a = xcalloc(1, sizeof *a);
	struct table_lines it;
	const char *s;
	size_t n;
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		table_trim(&s, &n);
		if (n == 0 || *s == '#')
			continue;
		struct mq2_entry e;
		memset(&e, 0, sizeof e);
		e.line = it.line;
		const char *err = mq2_parse_line(s, n, &e);
		if (err) {
			table_error(errs, name, it.line, "%s", err);
			mq2_entry_free(&e);
			continue;
		}
		a->e = xrealloc(a->e, (a->n + 1) * sizeof *a->e);
		a->e[a->n++] = e;
	}
	return a;
}

void mailq2_auth_free(struct mq2_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		mq2_entry_free(&a->e[i]);
	free(a->e);
	free(a);
}

/* ---- challenge / response ------------------------------------------------------------ */

/* hex(MD5(challenge || password)): the APOP digest (digest_apop); "" if OpenSSL fails */
void mailq2_response(const char *challenge, const char *password, char out[33])
{
	if (digest_apop(password, challenge, out) < 0)
		out[0] = '\0';
}

int mailq2_check_response(const char *challenge, const char *password, const char *hex,
                          size_t hexlen)
{
	char want[33];
	if (digest_apop(password, challenge, want) < 0)
		return 0;
	unsigned diff = hexlen != 32;
	for (size_t i = 0; i < 32; i++) {
		unsigned char c = i < hexlen ? (unsigned char)hex[i] : 0;
		if (c >= 'A' && c <= 'F')
			c = (unsigned char)(c - 'A' + 'a');
		diff |= (unsigned)(c ^ (unsigned char)want[i]);
	}
	return diff == 0;
}

/* ---- saytime ---------------------------------------------------------------------------- */

void mailq2_saytime(long secs, char out[48])
{
	long v[4], div[4] = { 86400, 3600, 60, 1 }, mod[4] = { 0, 24, 60, 60 };
	static const char unit[4] = { 'd', 'h', 'm', 's' };
	size_t off = 0;
	int big = 0;
	if (secs < 0)
		secs = 0;
	for (int i = 0; i < 4; i++) {
		v[i] = secs / div[i];
		if (mod[i])
			v[i] %= mod[i];
		if (!v[i] || (i >= 2 && big >= 2))
			continue;
		off += (size_t)snprintf(out + off, 48 - off, "%ld%c", v[i], unit[i]);
		big += i < 2;
	}
	if (!off)
		snprintf(out, 48, "0s");
}

/* ---- decoding the owners' answers ---------------------------------------------------- */

/* a count read from the wire, bounded by what the rest of the payload could hold */
static size_t mq2_count(struct msg_reader *r, size_t minsize)
{
	uint64_t n = msg_get_u64(r);
	if (r->err || n > (r->len - r->off) / minsize) {
		r->err = 1;
		return 0;
	}
	return (size_t)n;
}

static void mq2_get_chans(struct msg_reader *r, struct mq2_snap *s)
{
	s->nchans = mq2_count(r, 33);
	s->chans = s->nchans ? xcalloc(s->nchans, sizeof *s->chans) : NULL;
	for (size_t i = 0; i < s->nchans && !r->err; i++) {
		struct mq2_chan *c = &s->chans[i];
		c->name = msg_get_str(r);
		c->limit = msg_get_u64(r);
		c->inflight = msg_get_u64(r);
		c->nthreads = msg_get_u64(r);
	}
}

static void mq2_get_threads(struct msg_reader *r, struct mq2_snap *s)
{
	s->nthreads = mq2_count(r, 93);
	s->threads = s->nthreads ? xcalloc(s->nthreads, sizeof *s->threads) : NULL;
	for (size_t i = 0; i < s->nthreads && !r->err; i++) {
		struct mq2_thread *t = &s->threads[i];
		t->channel = msg_get_str(r);
		t->host = msg_get_str(r);
		t->nmsgs = msg_get_u64(r);
		t->nrcpts = msg_get_u64(r);
		t->attempts = msg_get_u64(r);
		t->oldest = msg_get_u64(r);
		t->next = msg_get_u64(r);
		t->inflight = msg_get_u64(r);
		t->window = msg_get_u64(r);
		t->perhost = msg_get_u64(r);
		t->state = msg_get_u64(r);
	}
}

static void mq2_get_items(struct msg_reader *r, struct mq2_snap *s)
{
	s->nitems = mq2_count(r, 72);
	s->items = s->nitems ? xcalloc(s->nitems, sizeof *s->items) : NULL;
	for (size_t i = 0; i < s->nitems && !r->err; i++) {
		struct mq2_item *it = &s->items[i];
		it->msgid = msg_get_u64(r);
		it->sender = msg_get_str(r);
		it->idx = msg_get_u64(r);
		it->expiry = msg_get_u64(r);
		it->next = msg_get_u64(r);
		it->lastfeed = msg_get_u64(r);
		it->attempts = msg_get_u64(r);
		it->reason = msg_get_str(r);
		it->diag = msg_get_str(r);
	}
}

int mailq2_snap_decode(struct msg_reader *r, struct mq2_snap *s)
{
	memset(s, 0, sizeof *s);
	uint64_t *head[] = { &s->now, &s->started, &s->msgs_in, &s->msgs_out, &s->rcpts_in,
	                     &s->rcpts_out, &s->kids, &s->nmsgs, &s->nrcpts };
	for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
		*head[i] = msg_get_u64(r);
	mq2_get_chans(r, s);
	mq2_get_threads(r, s);
	if (!r->err && r->off < r->len)
		mq2_get_items(r, s);
	if (msg_done(r) < 0) {
		mailq2_snap_free(s);
		return -1;
	}
	return 0;
}

void mailq2_snap_free(struct mq2_snap *s)
{
	free(s->chans);
	free(s->threads);
	free(s->items);
	memset(s, 0, sizeof *s);
}

static void mq2_get_slots(struct msg_reader *r, struct mq2_qmsg *m)
{
	m->nslots = mq2_count(r, 39);
	m->slots = m->nslots ? xcalloc(m->nslots, sizeof *m->slots) : NULL;
	for (size_t i = 0; i < m->nslots && !r->err; i++) {
		struct mq2_qslot *s = &m->slots[i];
		s->address = msg_get_str(r);
		s->state = msg_get_u64(r);
		s->attempts = msg_get_u64(r);
		s->next = msg_get_u64(r);
		s->diag = msg_get_str(r);
	}
}

int mailq2_qlist_decode(struct msg_reader *r, struct mq2_qlist *l)
{
	memset(l, 0, sizeof *l);
	l->total = msg_get_u64(r);
	l->n = mq2_count(r, 60);
	l->m = l->n ? xcalloc(l->n, sizeof *l->m) : NULL;
	for (size_t i = 0; i < l->n && !r->err; i++) {
		struct mq2_qmsg *m = &l->m[i];
		m->msgid = msg_get_u64(r);
		m->arrival = msg_get_u64(r);
		m->size = msg_get_u64(r);
		m->sender = msg_get_str(r);
		m->kind = msg_get_u64(r);
		m->held = msg_get_u64(r);
		m->stage = msg_get_u64(r);
		mq2_get_slots(r, m);
	}
	if (msg_done(r) < 0) {
		mailq2_qlist_free(l);
		return -1;
	}
	return 0;
}

void mailq2_qlist_free(struct mq2_qlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->m[i].slots);
	free(l->m);
	memset(l, 0, sizeof *l);
}

/* ---- MAILQ v2 reply bodies -------------------------------------------------------------- */

static long mq2_age(const struct mq2_snap *s, uint64_t t)
{
	return t && t < s->now ? (long)(s->now - t) : 0;
}

/* text from another role inside a TAB-separated line: controls become spaces */
static void mq2_clean(struct buf *out, const char *s)
{
	for (; *s; s++)
		buf_addc(out, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

static void mq2_globals(struct buf *out, const struct mq2_snap *s, int snmp)
{
	long up = mq2_age(s, s->started);
	buf_printf(out, "Kids: %" PRIu64 "  Idle: %2d  Msgs: %3" PRIu64 "  Thrds: %3zu  Rcpnts: %4"
	           PRIu64 "  Uptime: ", s->kids, 0, s->nmsgs, s->nthreads, s->nrcpts);
	if (snmp)
		buf_printf(out, "%ld sec\n", up);
	else {
		char t[48];
		mailq2_saytime(up, t);
		buf_printf(out, "%s\n", t);
	}
	buf_printf(out, "Msgs in %" PRIu64 " out %" PRIu64 " stored %" PRIu64 " Rcpnts in %" PRIu64
	           " out %" PRIu64 " stored %" PRIu64 "\n", s->msgs_in, s->msgs_out, s->nmsgs,
	           s->rcpts_in, s->rcpts_out, s->nrcpts);
}

void mailq2_fmt_snmp(struct buf *out, const struct mq2_snap *s) { mq2_globals(out, s, 1); }

/* a thread that is not alive: SEP "S=dead" / "S=probe" (nothing for a live one) */
static const char *mq2_state_tag(uint64_t state, const char *sep)
{
	if (state == MQ2_ALIVE)
		return "";
	return state == MQ2_DEAD ? (*sep == ' ' ? " S=dead" : "\tS=dead")
	                         : (*sep == ' ' ? " S=probe" : "\tS=probe");
}

/* "    channel/host/0" padded with TABs to the next stop of 8, up to column 40 */
static void mq2_thread_line(struct buf *out, const struct mq2_snap *s, const struct mq2_thread *t)
{
	size_t start = out->len;
	buf_printf(out, "    %s/", t->channel);
	mq2_clean(out, t->host);
	buf_adds(out, "/0");
	size_t width = out->len - start + 7;
	for (size_t stop = 16; stop <= 32; stop += 8)
		if (width < stop - 1)
			buf_addc(out, '\t');
	buf_addc(out, width < 39 ? '\t' : ' ');
	buf_printf(out, "N=%-3" PRIu64 " R=%-3" PRIu64 " A=%-2" PRIu64, t->nmsgs, t->nrcpts,
	           t->attempts);
	if (t->next > s->now)
		buf_printf(out, " W=%lds", (long)(t->next - s->now));
	char qa[48];
	mailq2_saytime(mq2_age(s, t->oldest), qa);
	buf_printf(out, " QA=%s%s\n", qa, mq2_state_tag(t->state, " "));
}

static void mq2_group(struct buf *out, const struct mq2_snap *s, const char *channel,
                      const struct mq2_chan *c, int threads)
{
	uint64_t nthr = 0, msgs = 0, procs = 0;
	buf_printf(out, "%s/*/0\n", channel);
	for (size_t i = 0; i < s->nthreads; i++) {
		const struct mq2_thread *t = &s->threads[i];
		if (strcmp(t->channel, channel) != 0)
			continue;
		nthr++;
		msgs += t->nmsgs;
		procs += t->inflight;
		if (threads)
			mq2_thread_line(out, s, t);
	}
	buf_printf(out, "\tThreads: %4" PRIu64 " Msgs: %5" PRIu64 " Procs: %3" PRIu64 " Idle: %3d"
	           " Plim: %3" PRIu64 " Flim: %3d Tlim: %d\n", nthr, msgs, c ? c->inflight : procs,
	           0, c ? c->limit : 0, 0, 0);
}

static const struct mq2_chan *mq2_chan_of(const struct mq2_snap *s, const char *name)
{
	for (size_t i = 0; i < s->nchans; i++)
		if (strcmp(s->chans[i].name, name) == 0)
			return &s->chans[i];
	return NULL;
}

/* channel groups in the scheduler's channel order, then channels only threads name */
void mailq2_fmt_queue(struct buf *out, const struct mq2_snap *s, int threads)
{
	for (size_t i = 0; i < s->nchans; i++) {
		size_t k;
		for (k = 0; k < s->nthreads; k++)
			if (strcmp(s->threads[k].channel, s->chans[i].name) == 0)
				break;
		if (k < s->nthreads && mq2_chan_of(s, s->chans[i].name) == &s->chans[i])
			mq2_group(out, s, s->chans[i].name, &s->chans[i], threads);
	}
	for (size_t i = 0; i < s->nthreads; i++) {
		const char *ch = s->threads[i].channel;
		size_t k;
		for (k = 0; k < i; k++)
			if (strcmp(s->threads[k].channel, ch) == 0)
				break;
		if (k == i && !mq2_chan_of(s, ch))
			mq2_group(out, s, ch, NULL, threads);
	}
	mq2_globals(out, s, 0);
}

void mailq2_fmt_threads2(struct buf *out, const struct mq2_snap *s)
{
	for (size_t i = 0; i < s->nthreads; i++) {
		const struct mq2_thread *t = &s->threads[i];
		char qa[48];
		mailq2_saytime(mq2_age(s, t->oldest), qa);
		mq2_clean(out, t->channel);
		buf_addc(out, '\t');
		mq2_clean(out, t->host);
		buf_printf(out, "\tN=%" PRIu64 "\tR=%" PRIu64 "\tA=%" PRIu64 "\tQA=%s%s\n", t->nmsgs,
		           t->nrcpts, t->attempts, qa, mq2_state_tag(t->state, "\t"));
	}
}

void mailq2_fmt_thread(struct buf *out, const struct mq2_snap *s)
{
	for (size_t i = 0; i < s->nitems; i++) {
		const struct mq2_item *it = &s->items[i];
		char id[17];
		env_idstr(it->msgid, id);
		buf_printf(out, "%s\t<", id);
		mq2_clean(out, it->sender);
		buf_printf(out, ">\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t",
		           it->idx, it->expiry, it->next, it->lastfeed, it->attempts);
		if (it->next > s->now) {      /* "dead; retry in …": held for its destination */
			char t[48];
			mailq2_saytime((long)(it->next - s->now), t);
			mq2_clean(out, it->reason);
			buf_printf(out, "%sretry in %s", *it->reason ? "; " : "", t);
		} else
			mq2_clean(out, it->reason);
		buf_addc(out, '\t');
		mq2_clean(out, it->diag);
		buf_addc(out, '\n');
	}
}

void mailq2_dotstuff(struct buf *out, const char *p, size_t n, int *bol)
{
	for (size_t i = 0; i < n; i++) {
		if (*bol && p[i] == '.')
			buf_addc(out, '.');
		buf_addc(out, p[i]);
		*bol = p[i] == '\n';
	}
}

void mailq2_multiline(struct buf *out, const char *body, size_t len)
{
	int bol = 1;
	buf_adds(out, "+OK until LF.LF\n");
	mailq2_dotstuff(out, body, len, &bol);
	if (!bol)
		buf_addc(out, '\n');
	buf_adds(out, ".\n");
}

/* ---- stats and OpenMetrics ------------------------------------------------------------- */

/* "  thread smtp/example.com: window 2 of 10, running 1, recipients 3[, dead: next try in 5m]" */
static void mq2_stats_thread(struct buf *out, const struct mq2_snap *s, const struct mq2_thread *t)
{
	buf_adds(out, "  thread ");
	mq2_clean(out, t->channel);
	buf_addc(out, '/');
	mq2_clean(out, t->host);
	buf_printf(out, ": window %" PRIu64 " of %" PRIu64 ", running %" PRIu64 ", recipients %"
	           PRIu64, t->window, t->perhost, t->inflight, t->nrcpts);
	if (t->state == MQ2_DEAD) {
		char w[48];
		mailq2_saytime(t->next > s->now ? (long)(t->next - s->now) : 0, w);
		buf_printf(out, ", dead: probe in %s", w);
	} else if (t->state == MQ2_PROBE)
		buf_adds(out, ", dead: probing");
	buf_addc(out, '\n');
}

void mailq2_fmt_stats(struct buf *out, const struct mq2_snap *s)
{
	char up[48];
	long secs = mq2_age(s, s->started);
	mailq2_saytime(secs, up);
	buf_printf(out, "uptime: %s (%ld s)\nmessages in: %" PRIu64 "\nmessages out: %" PRIu64
	           "\nrecipients in: %" PRIu64 "\nrecipients out: %" PRIu64 "\nmessages queued: %"
	           PRIu64 "\nrecipients queued: %" PRIu64 "\nthreads: %zu\ndeliveries running: %"
	           PRIu64 "\n", up, secs, s->msgs_in, s->msgs_out, s->rcpts_in, s->rcpts_out,
	           s->nmsgs, s->nrcpts, s->nthreads, s->kids);
	for (size_t i = 0; i < s->nchans; i++) {
		buf_adds(out, "channel ");
		mq2_clean(out, s->chans[i].name);
		buf_printf(out, ": limit %" PRIu64 ", running %" PRIu64 ", threads %" PRIu64 "\n",
		           s->chans[i].limit, s->chans[i].inflight, s->chans[i].nthreads);
		for (size_t k = 0; k < s->nthreads; k++)
			if (strcmp(s->threads[k].channel, s->chans[i].name) == 0)
				mq2_stats_thread(out, s, &s->threads[k]);
	}
	for (size_t k = 0; k < s->nthreads; k++)     /* channels not in the table: the bucket's */
		if (!mq2_chan_of(s, s->threads[k].channel))
			mq2_stats_thread(out, s, &s->threads[k]);
}

static void mq2_om_family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

static void mq2_om_label(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_addc(out, '\\');
		if (*v == '\n')
			buf_adds(out, "\\n");
		else
			buf_addc(out, *v);
	}
}

static const struct mq2_om {
	const char *name, *type, *help;
	size_t off;                 /* offsetof(struct mq2_snap, field) */
} mq2_om_scalars[] = {
	{ "tern_messages_received", "counter", "Messages queued since the scheduler started.",
	  offsetof(struct mq2_snap, msgs_in) },
	{ "tern_messages_transmitted", "counter", "Messages finished (every recipient final) since the scheduler started.",
	  offsetof(struct mq2_snap, msgs_out) },
	{ "tern_recipients_received", "counter", "Recipients queued since the scheduler started.",
	  offsetof(struct mq2_snap, rcpts_in) },
	{ "tern_recipients_transmitted", "counter", "Recipients finished since the scheduler started.",
	  offsetof(struct mq2_snap, rcpts_out) },
	{ "tern_queue_messages", "gauge", "Messages in the queue now.",
	  offsetof(struct mq2_snap, nmsgs) },
	{ "tern_queue_recipients", "gauge", "Recipients waiting for delivery now.",
	  offsetof(struct mq2_snap, nrcpts) },
	{ "tern_deliveries_running", "gauge", "Deliveries in progress (ZMailer's Kids).",
	  offsetof(struct mq2_snap, kids) },
	{ "tern_start_time_seconds", "gauge", "Unix time the scheduler started.",
	  offsetof(struct mq2_snap, started) },
};

static const struct { const char *name, *help; size_t off; } mq2_om_chans[] = {
	{ "tern_channel_limit", "Concurrency limit of the channel.", offsetof(struct mq2_chan, limit) },
	{ "tern_channel_running", "Deliveries in progress on the channel.", offsetof(struct mq2_chan, inflight) },
	{ "tern_channel_threads", "Threads (channel, host) of the channel.", offsetof(struct mq2_chan, nthreads) },
};

void mailq2_fmt_metrics(struct buf *out, const struct mq2_snap *s)
{
	for (size_t i = 0; i < sizeof mq2_om_scalars / sizeof mq2_om_scalars[0]; i++) {
		const struct mq2_om *m = &mq2_om_scalars[i];
		uint64_t v = *(const uint64_t *)((const char *)s + m->off);
		int counter = strcmp(m->type, "counter") == 0;
		mq2_om_family(out, m->name, m->type, m->help);
		buf_printf(out, "%s%s %" PRIu64 "\n", m->name, counter ? "_total" : "", v);
	}
	mq2_om_family(out, "tern_threads", "gauge", "Scheduler threads (channel, host) now.");
	buf_printf(out, "tern_threads %zu\n", s->nthreads);
	mq2_om_family(out, "tern_uptime_seconds", "gauge", "Seconds since the scheduler started.");
	buf_printf(out, "tern_uptime_seconds %ld\n", mq2_age(s, s->started));
	for (size_t k = 0; k < sizeof mq2_om_chans / sizeof mq2_om_chans[0]; k++) {
		mq2_om_family(out, mq2_om_chans[k].name, "gauge", mq2_om_chans[k].help);
		for (size_t i = 0; i < s->nchans; i++) {
			uint64_t v = *(const uint64_t *)((const char *)&s->chans[i] + mq2_om_chans[k].off);
			buf_printf(out, "%s{channel=\"", mq2_om_chans[k].name);
			mq2_om_label(out, s->chans[i].name);
			buf_printf(out, "\"} %" PRIu64 "\n", v);
		}
	}
	mq2_om_family(out, "tern_channel_dead_destinations", "gauge",
	              "Destinations (threads) of the channel marked dead or probing now.");
	for (size_t i = 0; i < s->nchans; i++) {
		uint64_t dead = 0;
		for (size_t k = 0; k < s->nthreads; k++)
			dead += s->threads[k].state != MQ2_ALIVE &&
			        strcmp(s->threads[k].channel, s->chans[i].name) == 0;
		buf_adds(out, "tern_channel_dead_destinations{channel=\"");
		mq2_om_label(out, s->chans[i].name);
		buf_printf(out, "\"} %" PRIu64 "\n", dead);
	}
	buf_adds(out, "# EOF\n");
}

/* ---- the queue listing: mailq, JSON, qstat ------------------------------------------- */

const char *mailq2_state_word(uint64_t state, uint64_t attempts)
{
	switch (state) {
	case SL_DONE: return "done";
	case SL_FAILED: return "failed";
	case SL_UNROUTED: return "unrouted";
	default: return attempts ? "deferred" : "pending";
	}
}

void mailq2_fmt_mailq(struct buf *out, const struct mq2_qmsg *m)
{
	char id[17], date[64];
	time_t t = (time_t)m->arrival;
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(date, sizeof date, "%a %b %d %H:%M:%S", &tm);
	env_idstr(m->msgid, id);
	buf_printf(out, "%s %9" PRIu64 " %s  <", id, m->size, date);
	mq2_clean(out, m->sender);
	buf_adds(out, ">");
	if (m->held)
		buf_adds(out, "  (held)");
	if (m->stage)
		buf_printf(out, "  (stage %" PRIu64 ")", m->stage);
	buf_addc(out, '\n');
	for (size_t i = 0; i < m->nslots; i++) {
		const struct mq2_qslot *s = &m->slots[i];
		buf_printf(out, "  %-8s <", mailq2_state_word(s->state, s->attempts));
		mq2_clean(out, s->address);
		buf_adds(out, *s->diag ? ">  " : ">");
		mq2_clean(out, s->diag);
		buf_addc(out, '\n');
	}
}

void mailq2_fmt_mailq_end(struct buf *out, uint64_t count)
{
	if (count == 0)
		buf_adds(out, "Mail queue is empty\n");
	else
		buf_printf(out, "-- %" PRIu64 " message%s in queue\n", count, count == 1 ? "" : "s");
}

/* length of a valid UTF-8 sequence at p (at most n bytes), or 0 */
static size_t mq2_utf8(const unsigned char *p, size_t n)
{
	size_t len = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3 :
	             p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	unsigned char lo = 0x80, hi = 0xbf;
	if (p[0] == 0xe0) lo = 0xa0;
	if (p[0] == 0xed) hi = 0x9f;
	if (p[0] == 0xf0) lo = 0x90;
	if (p[0] == 0xf4) hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

void mailq2_json_str(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	buf_addc(out, '"');
	for (size_t i = 0; i < n;) {
		size_t l;
		if (p[i] == '"' || p[i] == '\\')
			buf_printf(out, "\\%c", p[i]);
		else if (p[i] == '\n')
			buf_adds(out, "\\n");
		else if (p[i] == '\t')
			buf_adds(out, "\\t");
		else if (p[i] < 0x20 || p[i] == 0x7f)
			buf_printf(out, "\\u%04x", p[i]);
		else if (p[i] < 0x80)
			buf_addc(out, (char)p[i]);
		else if ((l = mq2_utf8(p + i, n - i)) != 0) {
			buf_add(out, p + i, l);
			i += l;
			continue;
		} else
			buf_adds(out, "\\ufffd");
		i++;
	}
	buf_addc(out, '"');
}

static const char *mq2_kind_word(uint64_t kind)
{
	return kind == EK_BOUNCE ? "bounce" : kind == EK_DOUBLEBOUNCE ? "doublebounce" : "normal";
}

void mailq2_fmt_json(struct buf *out, const struct mq2_qmsg *m)
{
	char id[17];
	env_idstr(m->msgid, id);
	buf_printf(out, "{\"id\":\"%s\",\"arrival\":%" PRIu64 ",\"size\":%" PRIu64 ",\"sender\":",
	           id, m->arrival, m->size);
	mailq2_json_str(out, m->sender);
	buf_printf(out, ",\"kind\":\"%s\",\"held\":%s,\"stage\":%" PRIu64 ",\"recipients\":[",
	           mq2_kind_word(m->kind), m->held ? "true" : "false", m->stage);
	for (size_t i = 0; i < m->nslots; i++) {
		const struct mq2_qslot *s = &m->slots[i];
		buf_adds(out, i ? ",{\"address\":" : "{\"address\":");
		mailq2_json_str(out, s->address);
		buf_printf(out, ",\"state\":\"%s\",\"attempts\":%" PRIu64 ",\"next\":%" PRIu64
		           ",\"diag\":", mailq2_state_word(s->state, s->attempts), s->attempts, s->next);
		mailq2_json_str(out, s->diag);
		buf_addc(out, '}');
	}
	buf_adds(out, "]}");
}

void mailq2_fmt_qstat(struct buf *out, uint64_t msgs, uint64_t rcpts)
{
	buf_printf(out, "messages in queue: %" PRIu64 "\nrecipients still to deliver: %" PRIu64 "\n",
	           msgs, rcpts);
}
