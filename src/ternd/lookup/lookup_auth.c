/* lookup_auth — see lookup_auth.h: logins checked by the lookup role against the users
 * table's pwhash, the failure throttle and the pop-before-smtp table.
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

struct la_ctx {                    /* one check under way */
	const struct config *cfg;
	const struct auth_req *q;
	struct auth_res *r;
	char key[USERS_MAXLOCAL];      /* the login for the throttle: local part, lowercased */
	const char *reason;            /* why it failed, for the log */
};

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

/* authzid: empty, or the login itself (as sent, or as its local part: "joe", "joe@local") */
static int la_authzid_ok(const struct la_ctx *c, const char *user)
{
	const char *z = c->q->authzid;
	char local[USERS_MAXLOCAL];
	if (!*z || strcasecmp(z, c->q->login) == 0)
		return 1;
	return la_login_ok(z) && la_local(c->cfg, z, local, sizeof local) == ROUTE_LOCAL &&
	       strcasecmp(local, user) == 0;
}

static void la_ok(struct la_ctx *c, const struct users_result *ur)
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

/* the users table's entry of c->key (set to the local part) and its password check */
static void la_check_user(struct la_ctx *c, struct users *users)
{
	struct users_result *ur = xmalloc(sizeof *ur);
	memset(ur, 0, sizeof *ur);
	int st = users_valid_local(c->key) ? users_lookup(users, c->key, ur) : TABLE_NOTFOUND;
	if (st == TABLE_FOUND && *ur->pwhash)
		la_dummy_learn(ur->pwhash);
	if (st == TABLE_TEMP) {
		la_temp(c, ur->diag);
	} else if (st != TABLE_FOUND || *ur->ext) {
		/* as long as a check, so that an unknown login does not answer sooner */
		digest_verify(la_dummy, c->q->secret);
		la_fail(c, "no_user");
	} else if (!*ur->pwhash) {
		digest_verify(la_dummy, c->q->secret);
		la_fail(c, "no_password");
	} else if (!la_verify(c, ur->pwhash)) {
		la_fail(c, c->reason);
	} else if (!la_authzid_ok(c, ur->user)) {
		la_fail(c, "authzid");
	} else {
		la_ok(c, ur);
	}
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

void lookup_auth_check(const struct config *cfg, struct users *users, const struct auth_req *q,
                       struct auth_res *r)
{
	struct la_ctx c = { .cfg = cfg, .q = q, .r = r, .reason = "" };
	memset(r, 0, sizeof *r);
	r->verdict = AUTH_FAIL;
	uint64_t now = LOOKUP_AUTH_CLOCK();
	uint64_t cut = now > cfg->authfailwindow ? now - cfg->authfailwindow : 0;
	la_expire(&la_ipfail, cut + 1);
	la_expire(&la_loginfail, cut + 1);
	if (!la_ip_ok(q->ip)) {
		snprintf(c.key, sizeof c.key, "%s", "(bad)");
		r->close = 1;
		la_log_fail(&c, "bad_request");
		return;
	}
	char k[LA_MAXIP];
	uint64_t n = la_count(&la_ipfail, la_ipkey(q->ip, k));
	if (cfg->authfailclose && n >= cfg->authfailclose) {  /* refused unchecked, not counted */
		r->delay_ms = la_delay_ms(cfg, n);
		r->close = 1;
		la_log_fail(&c, "too_many_failures");
		return;
	}
	la_check(&c, users);
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
