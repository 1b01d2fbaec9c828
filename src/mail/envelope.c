/* envelope — see envelope.h and doc/QUEUE.md. Owns the record syntax of env/<ID>. Trusts
 * nothing it parses: every field is checked; an unknown or malformed record makes the
 * file damaged (the queue quarantines it). */
#include "mail/envelope.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US '\x1f'   /* between the fields of a target */
#define GS '\x1d'   /* between targets */

void env_init(struct envelope *e) { memset(e, 0, sizeof *e); }

void target_free(struct target *t)
{
	free(t->channel); free(t->host); free(t->address); free(t->user);
	free(t->home); free(t->local); free(t->ext); free(t->domain); free(t->instruction);
	free(t->profile);
	memset(t, 0, sizeof *t);
}

static char *dupz(const char *s) { return xstrdup(s ? s : ""); }

void target_copy(struct target *d, const struct target *s)
{
	d->channel = dupz(s->channel); d->host = dupz(s->host); d->address = dupz(s->address);
	d->user = dupz(s->user); d->uid = s->uid; d->gid = s->gid; d->home = dupz(s->home);
	d->local = dupz(s->local); d->ext = dupz(s->ext); d->domain = dupz(s->domain);
	d->instruction = dupz(s->instruction); d->profile = dupz(s->profile);
}

void env_free(struct envelope *e)
{
	for (size_t i = 0; i < e->nslots; i++) {
		free(e->slots[i].rcpt);
		free(e->slots[i].diag);
		free(e->slots[i].remote);
		target_free(&e->slots[i].t);
	}
	free(e->slots);
	free(e->sender);
	free(e->origin);
	env_init(e);
}

static struct slot *env_new_slot(struct envelope *e)
{
	if (e->nslots == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 4;
		e->slots = xrealloc(e->slots, e->cap * sizeof *e->slots);
	}
	struct slot *s = &e->slots[e->nslots];
	memset(s, 0, sizeof *s);
	s->parent = (uint32_t)e->nslots;
	e->nslots++;
	return s;
}

size_t env_add_rcpt(struct envelope *e, const char *addr)
{
	struct slot *s = env_new_slot(e);
	s->rcpt = xstrdup(addr);
	return e->nslots - 1;
}

void env_clean(struct buf *out, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_addc(out, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
	}
}

void env_idstr(uint64_t id, char out[17]) { snprintf(out, 17, "%016" PRIx64, id); }

int env_idparse(const char *s, uint64_t *id)
{
	uint64_t v = 0;
	if (strlen(s) != 16)
		return -1;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*id = v;
	return 0;
}

void env_format_header(const struct envelope *e, struct buf *out)
{
	char id[17];
	env_idstr(e->id, id);
	buf_printf(out, "TERN-ENV 1\nI %s\nT %" PRId64 "\nF ", id, e->arrival);
	env_clean(out, e->sender);
	buf_printf(out, "\nK %d\nO ", e->kind);
	env_clean(out, e->origin);
	buf_printf(out, "\nS %u %d\n", e->stage, e->staged ? 1 : 0);
	for (size_t i = 0; i < e->norig; i++) {
		buf_adds(out, "R ");
		env_clean(out, e->slots[i].rcpt);
		buf_addc(out, '\n');
	}
	buf_adds(out, ".\n");
}

static void put_field(struct buf *out, const char *s, int last)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_addc(out, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
	}
	if (!last)
		buf_addc(out, US);
}

void env_rec_expand(struct buf *out, uint32_t slot, size_t n, const struct target *t)
{
	buf_printf(out, "E %u %zu ", slot, n);
	for (size_t i = 0; i < n; i++) {
		char num[24];
		if (i)
			buf_addc(out, GS);
		put_field(out, t[i].channel, 0); put_field(out, t[i].host, 0);
		put_field(out, t[i].address, 0); put_field(out, t[i].user, 0);
		snprintf(num, sizeof num, "%" PRIu64, t[i].uid); put_field(out, num, 0);
		snprintf(num, sizeof num, "%" PRIu64, t[i].gid); put_field(out, num, 0);
		put_field(out, t[i].home, 0); put_field(out, t[i].local, 0);
		put_field(out, t[i].ext, 0); put_field(out, t[i].domain, 0);
		put_field(out, t[i].instruction, 0); put_field(out, t[i].profile, 1);
	}
	buf_addc(out, '\n');
}

void env_rec_done(struct buf *out, uint32_t slot, int64_t when)
{
	buf_printf(out, "D %u %" PRId64 "\n", slot, when);
}

/* one token: blanks and controls become '_', empty becomes "-" */
static void put_token(struct buf *out, const char *s)
{
	if (!s || !*s) {
		buf_addc(out, '-');
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_addc(out, (c <= 0x20 || c == 0x7f) ? '_' : (char)c);
	}
}

void env_rec_perm(struct buf *out, uint32_t slot, int64_t when, const char *status,
                  const char *remote, const char *diag)
{
	buf_printf(out, "P %u %" PRId64 " ", slot, when);
	put_token(out, status && *status ? status : "5.0.0");
	buf_addc(out, ' ');
	put_token(out, remote);
	buf_addc(out, ' ');
	env_clean(out, diag);
	buf_addc(out, '\n');
}

void env_rec_defer(struct buf *out, uint32_t slot, int64_t when, int64_t next, uint32_t attempts,
                   const char *remote, const char *diag)
{
	buf_printf(out, "Z %u %" PRId64 " %" PRId64 " %u ", slot, when, next, attempts);
	put_token(out, remote);
	buf_addc(out, ' ');
	env_clean(out, diag);
	buf_addc(out, '\n');
}

void env_rec_bounce(struct buf *out, int64_t when, uint64_t bounce_id)
{
	char id[17];
	env_idstr(bounce_id, id);
	buf_printf(out, "B %" PRId64 " %s\n", when, id);
}

void env_rec_warned(struct buf *out, int64_t when, uint64_t notice_id)
{
	char id[17];
	env_idstr(notice_id, id);
	buf_printf(out, "W %" PRId64 " %s\n", when, id);
}

void env_rec_stage(struct buf *out, uint32_t stage, int done)
{
	buf_printf(out, "S %u %d\n", stage, done ? 1 : 0);
}

void env_rec_hold(struct buf *out, int held) { buf_printf(out, "H %d\n", held ? 1 : 0); }

void env_rec_add(struct buf *out, const char *addr)
{
	buf_adds(out, "A ");
	env_clean(out, addr);
	buf_addc(out, '\n');
}

void env_rec_drop(struct buf *out, uint32_t slot) { buf_printf(out, "X %u\n", slot); }

void env_rec_sender(struct buf *out, const char *sender)
{
	buf_adds(out, "F ");
	env_clean(out, sender);
	buf_addc(out, '\n');
}

/* ---- parsing --------------------------------------------------------------------- */

/* strict signed/unsigned decimal from [*p, end) up to the next space; advances *p */
static int live(const struct slot *s) { return s->state == SL_UNROUTED || s->state == SL_ROUTED; }

static int num_field(const char **p, const char *end, int64_t *out)
{
	const char *s = *p;
	int neg = 0;
	uint64_t v = 0;
	if (s < end && *s == '-') { neg = 1; s++; }
	const char *d = s;
	while (s < end && *s >= '0' && *s <= '9') {
		if (v > (uint64_t)INT64_MAX / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s++ - '0');
	}
	if (s == d || v > (uint64_t)INT64_MAX || (s < end && *s != ' '))
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	*p = (s < end) ? s + 1 : s;
	return 0;
}

static int slot_field(const char **p, const char *end, const struct envelope *e, uint32_t *slot)
{
	int64_t v;
	if (num_field(p, end, &v) < 0 || v < 0 || (uint64_t)v >= e->nslots)
		return -1;
	*slot = (uint32_t)v;
	return 0;
}

static int parse_target(const char *s, const char *end, struct target *t)
{
	char *f[TARGET_NFIELDS];
	int n = 0;
	const char *start = s;
	for (;; s++) {
		if (s == end || *s == US) {
			if (n == TARGET_NFIELDS)
				goto bad;
			f[n++] = xstrndup(start, (size_t)(s - start));
			if (s == end)
				break;
			start = s + 1;
		}
	}
	if (n == TARGET_NFIELDS - 1)
		f[n++] = xstrdup("");    /* a record from before the profile field */
	if (n != TARGET_NFIELDS)
		goto bad;
	uint64_t uid, gid;
	if (str_to_u64(f[4], 0, UINT32_MAX, &uid) < 0 || str_to_u64(f[5], 0, UINT32_MAX, &gid) < 0)
		goto bad;
	t->channel = f[0]; t->host = f[1]; t->address = f[2]; t->user = f[3];
	t->uid = uid; t->gid = gid; free(f[4]); free(f[5]);
	t->home = f[6]; t->local = f[7]; t->ext = f[8]; t->domain = f[9]; t->instruction = f[10];
	t->profile = f[11];
	if (!*t->channel)
		{ target_free(t); return -1; }
	return 0;
bad:
	for (int i = 0; i < n; i++)
		free(f[i]);
	return -1;
}

static int apply_expand(struct envelope *e, const char *p, const char *end)
{
	uint32_t slot;
	int64_t n;
	if (slot_field(&p, end, e, &slot) < 0 || num_field(&p, end, &n) < 0 || n < 1 || n > 100000)
		return -1;
	if (e->slots[slot].state != SL_UNROUTED && e->slots[slot].state != SL_ROUTED)
		return -1;
	size_t first = e->nslots;
	for (int64_t i = 0; i < n; i++) {
		const char *q = memchr(p, GS, (size_t)(end - p));
		const char *te = q ? q : end;
		struct target t;
		if ((i + 1 < n) != (q != NULL) || parse_target(p, te, &t) < 0)
			goto bad;
		struct slot *s = env_new_slot(e);
		s->t = t;
		s->rcpt = xstrdup(t.address);
		s->state = SL_ROUTED;
		s->parent = slot;
		p = q ? q + 1 : end;
	}
	e->slots[slot].state = SL_EXPANDED;
	return 0;
bad:
	while (e->nslots > first) {
		struct slot *s = &e->slots[--e->nslots];
		free(s->rcpt);
		target_free(&s->t);
	}
	return -1;
}


static void set_diag(struct slot *s, const char *p, const char *end)
{
	free(s->diag);
	s->diag = xstrndup(p, (size_t)(end - p));
}

/* the remote token, then a blank; "-" = none. Advances *p. */
static int remote_field(const char **p, const char *end, struct slot *s)
{
	const char *sp = memchr(*p, ' ', (size_t)(end - *p));
	if (!sp || sp == *p)
		return -1;
	free(s->remote);
	s->remote = (sp - *p == 1 && **p == '-') ? NULL : xstrndup(*p, (size_t)(sp - *p));
	*p = sp + 1;
	return 0;
}

static int apply_result(struct envelope *e, char kind, const char *p, const char *end)
{
	uint32_t slot;
	int64_t when, next, att;
	if (slot_field(&p, end, e, &slot) < 0 || num_field(&p, end, &when) < 0)
		return -1;
	struct slot *s = &e->slots[slot];
	if (!live(s))
		return -1;
	s->last = when;
	if (kind == 'D') {
		if (p != end)
			return -1;
		s->state = SL_DONE;
		return 0;
	}
	if (kind == 'P') {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		if (!sp || sp == p || (size_t)(sp - p) >= sizeof s->status)
			return -1;
		memcpy(s->status, p, (size_t)(sp - p));
		s->status[sp - p] = '\0';
		p = sp + 1;
		if (remote_field(&p, end, s) < 0)
			return -1;
		set_diag(s, p, end);
		s->state = SL_FAILED;
		e->nperm++;
		return 0;
	}
	if (num_field(&p, end, &next) < 0 || num_field(&p, end, &att) < 0 || att < 0 || att > UINT32_MAX)
		return -1;
	s->next = next;
	s->attempts = (uint32_t)att;
	if (remote_field(&p, end, s) < 0)
		return -1;
	set_diag(s, p, end);
	return 0;
}

static int apply_mgmt(struct envelope *e, char kind, const char *p, const char *end)
{
	int64_t a, b;
	uint32_t slot;
	switch (kind) {
	case 'S':
		if (num_field(&p, end, &a) < 0 || a < 0 || a > 999 || num_field(&p, end, &b) < 0 ||
		    b < 0 || b > 1 || p != end)
			return -1;
		e->stage = (uint32_t)a;
		e->staged = (int)b;
		return 0;
	case 'H':
		if (num_field(&p, end, &a) < 0 || a < 0 || a > 1 || p != end)
			return -1;
		e->held = (int)a;
		return 0;
	case 'A':
		if (p == end)
			return -1;
		env_add_rcpt(e, "");
		free(e->slots[e->nslots - 1].rcpt);
		e->slots[e->nslots - 1].rcpt = xstrndup(p, (size_t)(end - p));
		return 0;
	case 'X':
		if (slot_field(&p, end, e, &slot) < 0 || p != end || !live(&e->slots[slot]))
			return -1;
		e->slots[slot].state = SL_DROPPED;
		return 0;
	default:   /* 'F' */
		free(e->sender);
		e->sender = xstrndup(p, (size_t)(end - p));
		return 0;
	}
}

int env_apply(struct envelope *e, const char *line, size_t len)
{
	const char *end = line + len;
	if (len < 2 || line[1] != ' ')
		return -1;
	const char *p = line + 2;
	switch (line[0]) {
	case 'E':
		return apply_expand(e, p, end);
	case 'D': case 'P': case 'Z':
		return apply_result(e, line[0], p, end);
	case 'S': case 'H': case 'A': case 'X': case 'F':
		return apply_mgmt(e, line[0], p, end);
	case 'B': case 'W': {
		int64_t when;
		uint64_t id;
		char idb[17];
		if (num_field(&p, end, &when) < 0 || end - p != 16)
			return -1;
		memcpy(idb, p, 16);
		idb[16] = '\0';
		if (env_idparse(idb, &id) < 0)
			return -1;
		if (line[0] == 'W')
			e->warned = when > 0 ? when : 1;
		else
			e->bounced_upto = (int64_t)e->nperm;
		return 0;
	}
	default:
		return -1;
	}
}

static int header_line(struct envelope *e, const char *l, size_t n, int lineno)
{
	if (lineno == 0)
		return (n == 10 && memcmp(l, "TERN-ENV 1", 10) == 0) ? 0 : -1;
	if (n < 2 || l[1] != ' ')
		return -1;
	const char *v = l + 2, *end = l + n;
	int64_t num;
	switch (l[0]) {
	case 'I': {
		char idb[17];
		if (n != 18)
			return -1;
		memcpy(idb, v, 16); idb[16] = '\0';
		return env_idparse(idb, &e->id);
	}
	case 'T':
		if (num_field(&v, end, &num) < 0 || v != end)
			return -1;
		e->arrival = num;
		return 0;
	case 'F': free(e->sender); e->sender = xstrndup(v, (size_t)(end - v)); return 0;
	case 'O': free(e->origin); e->origin = xstrndup(v, (size_t)(end - v)); return 0;
	case 'K':
		if (num_field(&v, end, &num) < 0 || v != end || num < 0 || num > 2)
			return -1;
		e->kind = (int)num;
		return 0;
	case 'S':
		return apply_mgmt(e, 'S', v, end);
	case 'R':
		if (e->nslots != e->norig || v == end)
			return -1;
		env_add_rcpt(e, "");
		free(e->slots[e->nslots - 1].rcpt);
		e->slots[e->nslots - 1].rcpt = xstrndup(v, (size_t)(end - v));
		e->norig++;
		return 0;
	}
	return -1;
}

int env_parse(const char *text, size_t len, struct envelope *e, size_t *validlen,
              char *err, size_t errsz)
{
	size_t off = 0;
	int lineno = 0, inheader = 1;
	env_init(e);
	*validlen = 0;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		if (!nl)
			break;                      /* torn last line: ignored */
		const char *l = text + off;
		size_t n = (size_t)(nl - l);
		if (memchr(l, '\0', n))
			goto bad;
		if (inheader && n == 1 && l[0] == '.') {
			inheader = 0;
		} else if (inheader ? header_line(e, l, n, lineno) < 0 : env_apply(e, l, n) < 0)
			goto bad;
		off += n + 1;
		lineno++;
		if (!inheader)
			*validlen = off;
	}
	if (inheader || !e->sender || e->norig == 0 || e->id == 0) {
		snprintf(err, errsz, "incomplete header");
		env_free(e);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errsz, "bad record on line %d", lineno + 1);
	env_free(e);
	return -1;
}

int env_all_final(const struct envelope *e)
{
	for (size_t i = 0; i < e->nslots; i++)
		if (live(&e->slots[i]))
			return 0;
	return 1;
}
