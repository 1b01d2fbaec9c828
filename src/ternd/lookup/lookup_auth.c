/* lookup_auth — see lookup_auth.h: logins checked by the lookup role against the users
 * table's pwhash (or what the directory found, answered later: struct auth_pending), the
 * failure throttle and the pop-before-smtp table.
 * Owns: the throttle's and pbs's memory (bounded tables, entries expire). Trusts: nothing
 * in the request (the network-facing smtp role relays what a client sent): every field is
 * checked, a login is looked up only as a valid local part, secrets are never logged.
 *
 * The throttle (Postfix anvil / qmail-ldap style): failures are counted per client address
 * and per login (the local part, lowercased) and forgotten authfailwindow seconds after the
 * last one. An answer waits delay(n) = 2^(n-1) s (at most authfaildelaymax) where n is the
 * larger count — after this failure for a failure, before this attempt for a success, so
 * that a client cannot learn the outcome sooner by hanging up early. A success forgets
 * both counts. Once an address has authfailclose failures, its attempts are refused with
 * close = 1 without any password being checked, until the window has passed. The tables
 * hold hashes of the names (with a per-process random seed), at most LA_MAX entries each:
 * when full, the entry updated longest ago goes. A client address is counted by its IPv6
 * /64 (one host commonly has a whole /64), an IPv4-mapped address as its IPv4 address.
 * close applies per address only: a lockout per login would let anyone lock a user out.
 * Directory checks wait for an answer: those in flight count too (la_flight_begin), so that
 * parallel attempts get no more guesses than serial ones.
 *
 * Timing: an unknown login, or one without a pwhash, is checked against a dummy hash of the
 * same cost as the hashes the table holds: the dummy follows the scheme of the last real
 * pwhash looked up (a crypt hash "$id$[rounds=N$]salt$…" gives a dummy crypt of the same
 * id and rounds with a fixed salt; any other scheme costs about a microsecond, as the
 * default {SSHA} dummy does), so the answer's timing does not tell which logins exist. */
#include "ternd/lookup/lookup_auth.h"
#include "lib/msg.h"
#include "mail/digest.h"
#include "mail/route.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LA_MAX        16384        /* entries per table */
#define LA_MAXIP      64           /* bytes of a client address */
#define LA_LOGLOGIN   64           /* bytes of a login in a log line */

struct la_ent {                    /* struct hnode first: hmap's nodes are cast back */
	struct hnode h;                /* key: the seeded hash of the name */
	struct la_ent *prev, *next;    /* oldest first */
	uint64_t t;                    /* fail tables: last failure; pbs: expiry (seconds) */
	uint64_t count;                /* consecutive failures */
};

struct la_tab {
	struct hmap m;
	struct la_ent *head, *tail;
	size_t n;
};

static struct la_tab la_ipfail, la_loginfail, la_pbs;
static struct la_tab la_ipflight, la_loginflight;   /* directory checks in flight (count) */
static uint64_t la_seed;
#define LA_DUMMY_SSHA "{SSHA}uJDd0BIdJ9Z7yDCZNWdgYeb33+cBAgME"
static char la_dummy[160] = LA_DUMMY_SSHA;   /* what an unknown login is checked against */

/* the clock: monotonic seconds; the unit test compiles this file with its own */
#ifndef LOOKUP_AUTH_CLOCK
static uint64_t la_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}
#define LOOKUP_AUTH_CLOCK la_clock
#endif

/* ---- the tables ----------------------------------------------------------------------- */

static uint64_t la_hash(const char *s)
{
	if (!la_seed && getentropy(&la_seed, sizeof la_seed) < 0)
		la_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 40);
	la_seed |= 1;
	uint64_t h = 14695981039346656037ull ^ la_seed;
	for (; *s; s++) {
		h ^= (unsigned char)tolower((unsigned char)*s);
		h *= 1099511628211ull;
	}
	h ^= h >> 29;                  /* finalise (splitmix64's) so the seed reaches every bit */
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}

static void la_unlink(struct la_tab *t, struct la_ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		t->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		t->tail = e->prev;
	e->prev = e->next = NULL;
}

static void la_append(struct la_tab *t, struct la_ent *e)
{
	e->prev = t->tail;
	e->next = NULL;
	if (t->tail)
		t->tail->next = e;
	else
		t->head = e;
	t->tail = e;
}

static void la_drop(struct la_tab *t, struct la_ent *e)
{
	la_unlink(t, e);
	hmap_del(&t->m, e->h.key);
	t->n--;
	free(e);
}

static struct la_ent *la_get(struct la_tab *t, const char *name)
{
	return (struct la_ent *)hmap_get(&t->m, la_hash(name));
}

/* the entry of name, made if new (the oldest one goes when the table is full), its time set
 * to when and moved to the end of the list */
static struct la_ent *la_touch(struct la_tab *t, const char *name, uint64_t when)
{
	struct la_ent *e = la_get(t, name);
	if (e) {
		la_unlink(t, e);
	} else {
		if (t->n >= LA_MAX)
			la_drop(t, t->head);
		e = xcalloc(1, sizeof *e);
		e->h.key = la_hash(name);
		hmap_put(&t->m, &e->h);
		t->n++;
	}
	e->t = when;
	la_append(t, e);
	return e;
}

/* drop the entries whose time is before `before` (the list is in time order) */
static void la_expire(struct la_tab *t, uint64_t before)
{
	while (t->head && t->head->t < before)
		la_drop(t, t->head);
}

static void la_forget(struct la_tab *t, const char *name)
{
	struct la_ent *e = la_get(t, name);
	if (e)
		la_drop(t, e);
}

/* the throttle's name of a client address: an IPv6 address's /64, an IPv4-mapped one as
 * IPv4, anything else as given */
static const char *la_ipkey(const char *ip, char out[LA_MAXIP])
{
	unsigned char a[16];
	if (inet_pton(AF_INET6, ip, a) != 1)
		return ip;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(a, mapped, 12) == 0)
		return inet_ntop(AF_INET, a + 12, out, LA_MAXIP) ? out : ip;
	memset(a + 8, 0, 8);
	if (!inet_ntop(AF_INET6, a, out, LA_MAXIP - 3))
		return ip;
	strcat(out, "/64");
	return out;
}

/* ---- pop-before-smtp ------------------------------------------------------------------ */

static int la_ip_ok(const char *ip)
{
	size_t n = strlen(ip);
	return n > 0 && n < LA_MAXIP;
}

void lookup_pbs_add(const struct config *cfg, const char *ip)
{
	if (!cfg->pbstimeout || !la_ip_ok(ip))
		return;
	uint64_t now = LOOKUP_AUTH_CLOCK();
	la_expire(&la_pbs, now);
	/* every entry has the same lifetime: appending keeps the list in expiry order */
	la_touch(&la_pbs, ip, now + cfg->pbstimeout);
	log_info("event=pbs_add ip=%s timeout=%llu", ip, (unsigned long long)cfg->pbstimeout);
}

int lookup_pbs_ok(const char *ip)
{
	if (!la_ip_ok(ip) || !la_pbs.n)
		return 0;
	uint64_t now = LOOKUP_AUTH_CLOCK();
	la_expire(&la_pbs, now + 1);               /* expired at `now` already */
	return la_get(&la_pbs, ip) != NULL;
}

/* ---- the check -------------------------------------------------------------------------- */

static const char *const la_mechs[] = { "PLAIN", "LOGIN", "CRAM-MD5", "APOP", "USER" };

static int la_mech_ok(const char *mech)
{
	for (size_t i = 0; i < sizeof la_mechs / sizeof la_mechs[0]; i++)
		if (strcmp(mech, la_mechs[i]) == 0)
			return 1;
	return 0;
}

static int la_challenge_mech(const char *mech)
{
	return strcmp(mech, "CRAM-MD5") == 0 || strcmp(mech, "APOP") == 0;
}

/* printable, no blank, not empty, bounded: anything else is no login of ours */
static int la_login_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= USERS_MAXLOCAL)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

static uint64_t la_delay_ms(const struct config *cfg, uint64_t n)
{
	if (n == 0 || cfg->authfaildelaymax == 0)
		return 0;
	uint64_t cap = cfg->authfaildelaymax * 1000;
	return n > 20 || (1000ull << (n - 1)) > cap ? cap : 1000ull << (n - 1);
}

static uint64_t la_count(struct la_tab *t, const char *name)
{
	struct la_ent *e = la_get(t, name);
	return e ? e->count : 0;
}

/* a directory check parked: counted for its address and login until it is answered */
static void la_flight(struct la_tab *t, const char *name, int up)
{
	struct la_ent *e = up ? la_touch(t, name, 0) : la_get(t, name);
	if (!e)
		return;                    /* dropped from a full table: nothing to release */
	if (up)
		e->count++;
	else if (--e->count == 0)
		la_drop(t, e);
}

struct la_ctx {                    /* one check under way */
	const struct config *cfg;
	const struct auth_req *q;
	struct auth_res *r;
	char key[USERS_MAXLOCAL];      /* the login for the throttle: local part, lowercased */
	const char *reason;            /* why it failed, for the log */
};

/* one check waiting for the directory: the request copied (the channel's buffer goes on),
 * the result on the heap (it holds a users_result) */
struct auth_pending {
	struct la_ctx c;
	struct auth_req q;
	struct auth_res r;
	lookup_auth_done done;
	void *arg;
	int flying;                    /* counted in la_ipflight / la_loginflight */
	char ipkey[LA_MAXIP];          /* the address's throttle name, as counted */
	size_t len;                    /* of buf */
	char buf[];                    /* the request's strings */
};

static lookup_auth_ask la_dir;     /* the directory's asker (users ldap:), else NULL */

/* every value bounded (the request may be anything), never the secret */
static void la_log_fail(const struct la_ctx *c, const char *reason)
{
	char login[LA_LOGLOGIN], ip[LA_MAXIP], svc[16], mech[16];
	const struct auth_req *q = c->q;
	log_quote(login, sizeof login, q->login, strlen(q->login));
	log_quote(ip, sizeof ip, q->ip, strlen(q->ip));
	log_quote(svc, sizeof svc, q->service, strlen(q->service));
	log_quote(mech, sizeof mech, q->mech, strlen(q->mech));
	log_msg(c->r->close ? LOG_WARN : LOG_INFO,
	        "event=auth_fail service=%s ip=%s login=\"%s\" mech=%s reason=%s delay_ms=%llu "
	        "close=%d", svc, ip, login, mech, reason, (unsigned long long)c->r->delay_ms,
	        c->r->close);
}

/* a failure: counted for the address and the login, delayed, maybe the last one allowed */
static void la_fail(struct la_ctx *c, const char *reason)
{
	uint64_t now = LOOKUP_AUTH_CLOCK();
	char k[LA_MAXIP];
	struct la_ent *ip = la_touch(&la_ipfail, la_ipkey(c->q->ip, k), now);
	struct la_ent *lg = la_touch(&la_loginfail, c->key, now);
	ip->count++;
	lg->count++;
	c->r->verdict = AUTH_FAIL;
	c->r->delay_ms = la_delay_ms(c->cfg, ip->count > lg->count ? ip->count : lg->count);
	c->r->close = c->cfg->authfailclose && ip->count >= c->cfg->authfailclose;
	c->r->login[0] = '\0';
	memset(&c->r->user, 0, sizeof c->r->user);
	la_log_fail(c, reason);
}

/* "user" or "user@local.domain" -> the local part in out; ROUTE_* (ROUTE_LOCAL: found) */
static int la_local(const struct config *cfg, const char *login, char *out, size_t outsz)
{
	if (!strchr(login, '@')) {
		snprintf(out, outsz, "%s", login);
		return ROUTE_LOCAL;
	}
	char *local = NULL, *domain = NULL;
	int where = route_normalize(cfg, login, &local, &domain);
	if (where == ROUTE_LOCAL && (!local || strlen(local) >= outsz))
		where = ROUTE_BAD;
	if (where == ROUTE_LOCAL)
		snprintf(out, outsz, "%s", local);
	free(local);
	free(domain);
	return where;
}

/* the password (or the challenge's digest) against the stored value: 1 / 0, reason set */
static int la_verify(struct la_ctx *c, const char *pwhash)
{
	const struct auth_req *q = c->q;
	if (!la_challenge_mech(q->mech)) {
		int v = digest_verify(pwhash, q->secret);
		c->reason = v == 0 ? "bad_password" : "bad_hash";
		if (v < 0)
			log_warn("event=bad_pwhash login=%s: not a hash tern knows (ternctl digest)",
			         c->key);
		return v == 1;
	}
	const char *clear = digest_cleartext(pwhash);
	char want[33], got[33];
	size_t n = strlen(q->response);
	if (!clear) {
		c->reason = "no_cleartext";
		return 0;
	}
	c->reason = "bad_password";
	if (!*q->secret || n != 32)
		return 0;
	for (size_t i = 0; i <= n; i++)
		got[i] = (char)tolower((unsigned char)q->response[i]);
	int rc = strcmp(q->mech, "APOP") == 0 ? digest_apop(clear, q->secret, want) :
	         digest_cram_md5(clear, q->secret, want);
	int ok = rc == 0 && CRYPTO_memcmp(want, got, 32) == 0;
	explicit_bzero(want, sizeof want);
	return ok;
}

/* authzid: empty, or the login itself (as sent, or as its local part: "joe", "joe@local"; a
 * directory user also by the entry's uid, name) */
static int la_authzid_ok(const struct la_ctx *c, const char *user, const char *name)
{
	const char *z = c->q->authzid;
	char local[USERS_MAXLOCAL];
	if (!*z || strcasecmp(z, c->q->login) == 0 || (*name && strcasecmp(z, name) == 0))
		return 1;
	if (la_dir)
		return 0;
	return la_login_ok(z) && la_local(c->cfg, z, local, sizeof local) == ROUTE_LOCAL &&
	       strcasecmp(local, user) == 0;
}

static void la_ok(struct la_ctx *c, const struct users_result *ur, const char *maildir)
{
	struct auth_res *r = c->r;
	char k[LA_MAXIP];
	const char *ipk = la_ipkey(c->q->ip, k);
	uint64_t ni = la_count(&la_ipfail, ipk), nl = la_count(&la_loginfail, c->key);
	r->verdict = AUTH_OK;
	r->delay_ms = la_delay_ms(c->cfg, ni > nl ? ni : nl);
	r->close = 0;
	snprintf(r->login, sizeof r->login, "%s", ur->user);
	r->user = *ur;
	memset(r->user.pwhash, 0, sizeof r->user.pwhash);
	r->directory = la_dir != NULL;
	snprintf(r->maildir, sizeof r->maildir, "%s", maildir ? maildir : "");
	la_forget(&la_ipfail, ipk);
	la_forget(&la_loginfail, c->key);
	log_info("event=auth_ok service=%s ip=%s login=%s mech=%s", c->q->service, c->q->ip,
	         r->login, c->q->mech);
	if (strcmp(c->q->service, "pop3") == 0)
		lookup_pbs_add(c->cfg, c->q->ip);
}

static void la_temp(struct la_ctx *c, const char *diag)
{
	c->r->verdict = AUTH_TEMP;
	log_warn("event=auth_temp service=%s ip=%s login=%s mech=%s diag=\"%s\"", c->q->service,
	         c->q->ip, c->key, c->q->mech, diag);
}

/* a well-formed request with a login that could be ours: its local part into c->key */
static int la_request(struct la_ctx *c)
{
	const struct auth_req *q = c->q;
	if (!la_login_ok(q->login)) {
		snprintf(c->key, sizeof c->key, "%s", "(bad)");
		return -1;
	}
	snprintf(c->key, sizeof c->key, "%s", q->login);
	str_lower(c->key);
	return (strcmp(q->service, "smtp") == 0 || strcmp(q->service, "pop3") == 0) &&
	       la_mech_ok(q->mech) && strlen(q->secret) < 1024 ? 0 : -1;
}

/* the dummy follows pwhash's cost: a crypt "$id$[rounds=N$]salt$hash" (with or without the
 * {crypt} prefix) gives "{crypt}$id$[rounds=N$]ternsalt$"; anything else the {SSHA} one */
static void la_dummy_learn(const char *pwhash)
{
	const char *h = pwhash;
	if (strncasecmp(h, "{crypt}", 7) == 0)
		h += 7;
	const char *end = strrchr(h, '$');
	if (*h != '$' || end == h) {
		snprintf(la_dummy, sizeof la_dummy, "%s", LA_DUMMY_SSHA);
		return;
	}
	const char *salt = end - 1;       /* the salt is the field before the last '$' */
	while (salt > h && *salt != '$')
		salt--;
	size_t keep = (size_t)(salt - h) + 1;
	if (keep + 20 > sizeof la_dummy)
		return;
	snprintf(la_dummy, sizeof la_dummy, "{crypt}%.*sternsalt$", (int)keep, h);
}

static const char *la_account_reason(int account)
{
	switch (account) {
	case USERS_NOACCESS: return "account_noaccess";
	case USERS_DISABLED: return "account_disabled";
	case USERS_DELETED:  return "account_deleted";
	default:             return "";
	}
}

/* what the backend found for the login, and the verdict: the password (or the directory's
 * bind) first, then the authzid, then accountStatus, so that the account's state is told to
 * nobody who does not know its password */
static void la_verdict(struct la_ctx *c, const struct auth_entry *e)
{
	const struct users_result *ur = e->user;
	const char *pw = e->pwhash ? e->pwhash : "";
	if (e->status == TABLE_FOUND && *pw)
		la_dummy_learn(pw);
	if (e->status == TABLE_TEMP) {
		la_temp(c, e->diag ? e->diag : "users backend unreachable");
	} else if (e->status != TABLE_FOUND || !ur || *ur->ext) {
		/* as long as a check, so that an unknown login does not answer sooner */
		digest_verify(la_dummy, c->q->secret);
		la_fail(c, "no_user");
	} else if (e->bound == AUTH_BIND_NONE && !*pw) {
		digest_verify(la_dummy, c->q->secret);
		la_fail(c, "no_password");
	} else if (e->bound == AUTH_BIND_BAD) {
		la_fail(c, "bad_password");
	} else if (e->bound == AUTH_BIND_NONE && !la_verify(c, pw)) {
		la_fail(c, c->reason);
	} else if (!la_authzid_ok(c, ur->user, e->name ? e->name : "")) {
		la_fail(c, "authzid");
	} else if (e->account != USERS_ACTIVE) {
		la_fail(c, la_account_reason(e->account));
	} else {
		la_ok(c, ur, e->maildir);
	}
}

/* the users table's entry of c->key (set to the local part) and its password check */
static void la_check_user(struct la_ctx *c, struct users *users)
{
	struct users_result *ur = xmalloc(sizeof *ur);
	memset(ur, 0, sizeof *ur);
	int st = users_valid_local(c->key) ? users_lookup(users, c->key, ur) : TABLE_NOTFOUND;
	struct auth_entry e = { .status = st, .diag = ur->diag, .pwhash = ur->pwhash,
	                        .bound = AUTH_BIND_NONE, .account = ur->account, .name = "",
	                        .user = ur, .maildir = "" };
	la_verdict(c, &e);
	explicit_bzero(ur, sizeof *ur);
	free(ur);
}

static void la_check(struct la_ctx *c, struct users *users)
{
	char local[USERS_MAXLOCAL];
	int where = la_request(c) < 0 ? ROUTE_BAD :
	            la_local(c->cfg, c->q->login, local, sizeof local);
	if (where == ROUTE_WTEMP) {
		la_temp(c, "locals table unreadable");
	} else if (where != ROUTE_LOCAL) {
		la_fail(c, where == ROUTE_BAD ? "bad_request" : "not_local");
	} else {
		snprintf(c->key, sizeof c->key, "%s", local);
		str_lower(c->key);
		la_check_user(c, users);
	}
}

/* the throttle's part before any check: 1 = go on, 0 = refused unchecked (r final) */
static int la_begin(struct la_ctx *c)
{
	const struct config *cfg = c->cfg;
	memset(c->r, 0, sizeof *c->r);
	c->r->verdict = AUTH_FAIL;
	uint64_t now = LOOKUP_AUTH_CLOCK();
	uint64_t cut = now > cfg->authfailwindow ? now - cfg->authfailwindow : 0;
	la_expire(&la_ipfail, cut + 1);
	la_expire(&la_loginfail, cut + 1);
	if (!la_ip_ok(c->q->ip)) {
		snprintf(c->key, sizeof c->key, "%s", "(bad)");
		c->r->close = 1;
		la_log_fail(c, "bad_request");
		return 0;
	}
	char k[LA_MAXIP];
	uint64_t n = la_count(&la_ipfail, la_ipkey(c->q->ip, k));
	if (cfg->authfailclose && n >= cfg->authfailclose) {  /* refused unchecked, not counted */
		c->r->delay_ms = la_delay_ms(cfg, n);
		c->r->close = 1;
		la_log_fail(c, "too_many_failures");
		return 0;
	}
	return 1;
}

void lookup_auth_check(const struct config *cfg, struct users *users, const struct auth_req *q,
                       struct auth_res *r)
{
	struct la_ctx c = { .cfg = cfg, .q = q, .r = r, .reason = "" };
	if (la_begin(&c))
		la_check(&c, users);
}

/* ---- the directory: asynchronous checks -------------------------------------------------- */

void lookup_auth_set_directory(lookup_auth_ask ask)
{
	la_dir = ask;
}

static const char *la_copy(struct auth_pending *p, size_t *off, const char *v)
{
	size_t n = strlen(v) + 1;
	char *d = p->buf + *off;
	memcpy(d, v, n);
	*off += n;
	return d;
}

static struct auth_pending *la_pending_new(const struct config *cfg, const struct auth_req *q,
                                           lookup_auth_done done, void *arg)
{
	const char *f[] = { q->service, q->ip, q->mech, q->login, q->authzid, q->secret,
	                    q->response };
	size_t len = 0, off = 0;
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		len += strlen(f[i]) + 1;
	struct auth_pending *p = xmalloc(sizeof *p + len);
	memset(p, 0, sizeof *p);
	p->len = len;
	p->q.service = la_copy(p, &off, q->service);
	p->q.ip = la_copy(p, &off, q->ip);
	p->q.mech = la_copy(p, &off, q->mech);
	p->q.login = la_copy(p, &off, q->login);
	p->q.authzid = la_copy(p, &off, q->authzid);
	p->q.secret = la_copy(p, &off, q->secret);
	p->q.response = la_copy(p, &off, q->response);
	p->c.cfg = cfg;
	p->c.q = &p->q;
	p->c.r = &p->r;
	p->c.reason = "";
	p->done = done;
	p->arg = arg;
	return p;
}

static void la_pending_free(struct auth_pending *p)
{
	explicit_bzero(p, sizeof *p + p->len);     /* the secret, the account */
	free(p);
}

/* a login for the directory: the name as sent (qmail-ldap's rule: a uid, or an address),
 * lowercased for the throttle; 0, or -1 when it is no login at all */
static int la_dir_request(struct la_ctx *c)
{
	if (la_request(c) < 0)
		return -1;
	return c->q->login[0] == '@' ? -1 : 0;     /* a catch-all value is nobody's login */
}

/* checks in flight count as failures to come: an address whose failures and parked checks
 * reach authfailclose, or a login with authfailclose checks parked (from anywhere: a login's
 * failures never lock it out, but its parallel guesses are bounded), is refused without the
 * directory being asked, not counted. 1 = ask (now counted in flight), 0 = refused (r final) */
static int la_flight_begin(struct auth_pending *p)
{
	const struct config *cfg = p->c.cfg;
	char k[LA_MAXIP];
	snprintf(p->ipkey, sizeof p->ipkey, "%s", la_ipkey(p->q.ip, k));
	uint64_t ni = la_count(&la_ipfail, p->ipkey) + la_count(&la_ipflight, p->ipkey);
	uint64_t nl = la_count(&la_loginflight, p->c.key);
	if (cfg->authfailclose && (ni >= cfg->authfailclose || nl >= cfg->authfailclose)) {
		p->r.delay_ms = la_delay_ms(cfg, la_count(&la_ipfail, p->ipkey));
		p->r.close = ni >= cfg->authfailclose;
		la_log_fail(&p->c, "too_many_failures");
		return 0;
	}
	la_flight(&la_ipflight, p->ipkey, 1);
	la_flight(&la_loginflight, p->c.key, 1);
	p->flying = 1;
	return 1;
}

void lookup_auth_start(const struct config *cfg, struct users *users, const struct auth_req *q,
                       lookup_auth_done done, void *arg)
{
	struct auth_pending *p = la_pending_new(cfg, q, done, arg);
	if (!la_dir) {
		lookup_auth_check(cfg, users, &p->q, &p->r);
	} else if (la_begin(&p->c)) {
		if (la_dir_request(&p->c) < 0) {
			la_fail(&p->c, "bad_request");
		} else if (la_flight_begin(p)) {
			la_dir(p, &p->q, la_challenge_mech(p->q.mech));
			return;                            /* answered by lookup_auth_answer */
		}
	}
	done(arg, &p->q, &p->r);
	la_pending_free(p);
}

void lookup_auth_answer(struct auth_pending *p, const struct auth_entry *e)
{
	if (p->flying) {
		la_flight(&la_ipflight, p->ipkey, 0);
		la_flight(&la_loginflight, p->c.key, 0);
		p->flying = 0;
	}
	la_verdict(&p->c, e);
	p->done(p->arg, &p->q, &p->r);
	la_pending_free(p);
}

void lookup_auth_decode(struct msg_reader *r, struct auth_req *q)
{
	q->ip = msg_get_str(r);
	q->mech = msg_get_str(r);
	q->login = msg_get_str(r);
	q->authzid = msg_get_str(r);
	q->secret = msg_get_str(r);
	q->response = msg_get_str(r);
}
