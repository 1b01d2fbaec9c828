/* lookup — the lookup role: answers the smtp role's MAIL/RCPT checks and the queue's routing
 * requests from the config's tables, the users table and the aliases file (src/mail/route.c
 * decides, walked by a resumable session of lookup_session.c that may park while the users
 * backend answers; this file only speaks the protocol of proto.h), and the mta role's DNS requests
 * (M_MX_RESOLVE, answered asynchronously by src/ternd/dns.c), and the smtp role's logins
 * (M_AUTH_CHECK, M_POP_LOGIN, checked by lookup_auth.c, which also keeps the pop-before-smtp
 * table that the relay decision consults; directory users' checks wait for the directory,
 * lookup_authdir.c, and their answers, like routing's, go to the asking peer's channel of
 * the moment or are dropped if that peer restarted meanwhile), and the control role's
 * M_EXPLAIN (ternctl verify / ldaplookup, answered by lookup_explain.c with the same routing
 * session).
 * Owns: the loaded users and aliases tables of this process (re-read when their files change,
 * checked at most once a second, on lookup), the channels to its peers (a restarted peer's
 * fresh one arrives from the parent: M_PEER_NEW). Trusts: no peer — the codec lets through
 * only the types doc/IPC.md lists for each peer, and a request that fails msg_done() is
 * dropped (the codec logs it; doc/IPC.md, "Malformed messages"); a table that cannot answer
 * gives V_TEMP, never V_NOUSER. RCPT of a local address is answered by the routing decision
 * itself, so only deliverable addresses get 250 (an extension needs its .qmail file, except
 * for a directory user; postmaster always has a target or tempfails): no backscatter. With
 * `users ldap:` the users backend is the directory's (lookup_ldap.c, with its cache). */
#include "ternd/role.h"
#include "ternd/proto.h"
#include "mail/mlist.h"
#include "ternd/lookup/lookup_list.h"
#include "ternd/lookup/dns.h"
#include "ternd/lookup/lookup_auth.h"
#include "ternd/lookup/lookup_explain.h"
#include "ternd/lookup/lookup_authdir.h"
#include "ternd/lookup/lookup_pop.h"
#include "ternd/lookup/lookup_session.h"
#include "ternd/lookup/ldapc.h"
#include "ternd/lookup/lookup_ldap.h"
#include "ternd/lookup/lookup_tables.h"
#include "mail/route.h"
#include "mail/table.h"
#include "mail/virtual.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/msg.h"
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct lookup {
	struct config *cfg;
	struct chan *peer[R_NROLES];    /* channels by role; replaced when a peer restarts */
	uint32_t gen[R_NROLES];         /* bumped at each replacement: stale DNS answers drop */
	struct users *users;
	struct aliases *aliases;
	struct route_ctx rc;
	struct lookup_backend be;       /* the users backend routing sessions ask */
	time_t checked;
};

static struct lookup lk;
struct ldapc *lookup_ldap;
#ifdef TERN_TEST
static long lookup_test_fake_ms;    /* unit tests: > 0 = the fake asynchronous backend */
#endif

static void lookup_log_errors(const char *what, const struct cfg_errors *errs)
{
	for (int i = 0; i < errs->n; i++)
		log_warn("event=%s_error file=%s line=%d error=\"%s\"", what, errs->e[i].file,
		         errs->e[i].line, errs->e[i].msg);
}

/* re-read the users and aliases files if they changed (at most once a second) */
static void lookup_refresh(void)
{
	time_t now = time(NULL);
	if (now == lk.checked)
		return;
	lk.checked = now;
	struct cfg_errors errs;
	errs.n = 0;
	if (users_refresh(lk.users, &errs)) {
		log_info("event=users_reloaded");
		lookup_log_errors("users", &errs);
	}
	errs.n = 0;
	if (aliases_refresh(lk.aliases, &errs)) {
		log_info("event=aliases_reloaded");
		lookup_log_errors("aliases", &errs);
	}
}

static void lookup_reply(struct chan *c, uint32_t id, int verdict, const char *text)
{
	struct msg m;
	msg_init(&m, M_CHECK_RESULT, id);
	msg_u64(&m, (uint64_t)verdict);
	msg_str(&m, text);
	chan_send(c, &m);
}

int lookup_verdict(int route_verdict)
{
	switch (route_verdict) {
	case ROUTE_OK:     return V_OK;
	case ROUTE_NOUSER: return V_NOUSER;
	case ROUTE_DISABLED: return V_DISABLED;
	default:           return V_TEMP;
	}
}

/* A MAIL or RCPT check under way: its lists may have ldap: tables (lookup_tables.c), whose
 * answers come later; the verdict goes to the asking peer's channel of the moment, or is
 * dropped if that peer restarted meanwhile. */
struct lookup_check {
	int peer;
	uint32_t gen, id;
	char *addr;                  /* sender or recipient, as asked */
	char *ip, *auth, *domain;    /* RCPT: the client, its login, the remote domain */
};

static void lookup_session_done(const struct lookup_asker *who, const struct route_result *res);

static struct lookup_check *lookup_check_new(int peer, uint32_t id, const char *addr,
                                             const char *ip, const char *auth)
{
	struct lookup_check *q = xcalloc(1, sizeof *q);
	q->peer = peer;
	q->gen = lk.gen[peer];
	q->id = id;
	q->addr = xstrdup(addr);
	q->ip = xstrdup(ip);
	q->auth = xstrdup(auth);
	return q;
}

static void lookup_check_free(struct lookup_check *q)
{
	free(q->addr);
	free(q->ip);
	free(q->auth);
	free(q->domain);
	free(q);
}

/* the asking peer is still the one that asked (else the check ends here, logged) */
static struct chan *lookup_check_chan(const struct lookup_check *q)
{
	struct chan *c = lookup_peer_chan(q->peer, q->gen);
	if (!c)
		log_debug("event=check_result_dropped id=%u peer=%s", q->id, role_name(q->peer));
	return c;
}

/* the verdict, and the check is over */
static void lookup_check_reply(struct lookup_check *q, int verdict, const char *text)
{
	struct chan *c = lookup_check_chan(q);
	if (c)
		lookup_reply(c, q->id, verdict, text);
	lookup_check_free(q);
}

/* an address (<> removed) or its @domain in a bad* list: cb gets TABLE_FOUND / NOTFOUND /
 * TEMP */
void lookup_listed(const struct cfg_list *l, const char *addr, lookup_tables_cb cb,
                          void *arg)
{
	size_t n = strlen(addr);
	char *a = xstrdup(addr);
	if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
		memmove(a, a + 1, n - 2);
		a[n - 2] = '\0';
	}
	const char *items[2] = { a, strrchr(a, '@') };
	lookup_tables_ask(l, items, items[1] && items[1][1] ? 2 : 1, cb, arg);
	free(a);      /* the items are read before lookup_tables_ask returns */
}

static void lookup_mail_done(void *arg, int rc)
{
	struct lookup_check *q = arg;
	if (rc == TABLE_FOUND)
		lookup_check_reply(q, V_BAD, "badmailfrom");
	else if (rc == TABLE_TEMP)
		lookup_check_reply(q, V_TEMP, "badmailfrom table unreadable");
	else
		lookup_check_reply(q, V_OK, "ok");
}

static void lookup_mail_check(int peer, uint32_t id, const char *sender)
{
	struct lookup_check *q = lookup_check_new(peer, id, sender, "", "");
	if (!*sender)
		lookup_mail_done(q, TABLE_NOTFOUND);
	else
		lookup_listed(&lk.cfg->badmailfrom, q->addr, lookup_mail_done, q);
}

/* a remote recipient the client may send to: accepted, unless virtualdomains/virtualusers
 * take it — then only what routing can deliver (unknown virtual users 5.1.1) */
static void lookup_relay_ok(struct lookup_check *q, const char *why)
{
	char *l = NULL, *d = NULL;
	int v = route_normalize(lk.cfg, q->addr, &l, &d) == ROUTE_REMOTE ?
	        virtual_applies(lk.cfg, l, d) : TABLE_NOTFOUND;
	free(l);
	free(d);
	if (v == TABLE_TEMP) {
		lookup_check_reply(q, V_TEMP, "virtual domain tables unreadable");
	} else if (v == TABLE_FOUND && lookup_check_chan(q)) {
		struct lookup_asker who = { q->peer, q->gen, q->id, M_RCPT_CHECK };
		lookup_session_route(&lk.rc, &lk.be, &who, q->addr, lookup_session_done);
		lookup_check_free(q);
	} else if (v == TABLE_FOUND) {
		lookup_check_free(q);
	} else {
		lookup_check_reply(q, V_OK, why);
	}
}

/* a recipient in a domain that is not ours: rcpthosts (rc: its answer), else a client that
 * may relay: an authenticated session (its login, "" if none), a relayclients address, or
 * one that logged in over POP3 lately (pop-before-smtp) */
static void lookup_relay_done(void *arg, int rc)
{
	struct lookup_check *q = arg;
	if (rc == TABLE_FOUND) {
		lookup_relay_ok(q, "rcpthosts");
		return;
	}
	if (*q->auth) {
		lookup_relay_ok(q, "authenticated");
		return;
	}
	int rr = table_ip_lookup(&lk.cfg->relayclients, q->ip);
	if (rr == TABLE_FOUND)
		lookup_relay_ok(q, "relayclient");
	else if (lookup_pbs_ok(q->ip))
		lookup_relay_ok(q, "pop-before-smtp");
	else if (rc == TABLE_TEMP || rr == TABLE_TEMP)
		lookup_check_reply(q, V_TEMP, "rcpthosts/relayclients table unreadable");
	else
		lookup_check_reply(q, V_NORELAY, "relaying denied");
}

int lookup_badrcptto_verdict(int rc, const char **text)
{
	*text = rc == TABLE_FOUND ? "badrcptto" : rc == TABLE_TEMP ? "badrcptto table unreadable" :
	        "";
	return rc == TABLE_FOUND ? V_BAD : rc == TABLE_TEMP ? V_TEMP : V_OK;
}

int lookup_rcpt_where(const struct config *cfg, const char *addr, char **domain, int *verdict,
                      const char **text)
{
	char *local = NULL;
	*domain = NULL;
	int where = route_normalize(cfg, addr, &local, domain);
	free(local);
	*verdict = where == ROUTE_BAD ? V_NOUSER : where == ROUTE_WTEMP ? V_TEMP : V_OK;
	*text = where == ROUTE_BAD ? "bad address" : where == ROUTE_WTEMP ?
	        "locals table unreadable" : "";
	return where;
}

/* badrcptto answered: the routing decision, or for a remote domain the relay decision */
static void lookup_rcpt_listed(void *arg, int rc)
{
	struct lookup_check *q = arg;
	const char *text;
	int v = lookup_badrcptto_verdict(rc, &text);
	if (v != V_OK) {
		lookup_check_reply(q, v, text);
		return;
	}
	if (!lookup_check_chan(q)) {     /* parked, and the asker restarted meanwhile */
		lookup_check_free(q);
		return;
	}
	char *domain;
	int where = lookup_rcpt_where(lk.cfg, q->addr, &domain, &v, &text);
	if (v != V_OK) {
		lookup_check_reply(q, v, text);
	} else if (where == ROUTE_REMOTE) {
		q->domain = domain;
		domain = NULL;
		const char *item = q->domain;
		lookup_tables_ask(&lk.cfg->rcpthosts, &item, 1, lookup_relay_done, q);
	} else {                     /* local: only what can be delivered (postmaster included) */
		struct lookup_asker who = { q->peer, q->gen, q->id, M_RCPT_CHECK };
		lookup_session_route(&lk.rc, &lk.be, &who, q->addr, lookup_session_done);
		lookup_check_free(q);
	}
	free(domain);
}

static void lookup_rcpt_check(int peer, uint32_t id, const char *ip, const char *rcpt,
                              const char *auth)
{
	struct lookup_check *q = lookup_check_new(peer, id, rcpt, ip, auth);
	lookup_listed(&lk.cfg->badrcptto, q->addr, lookup_rcpt_listed, q);
}

static void lookup_route_result(struct chan *c, uint32_t id, const struct route_result *res)
{
	struct msg m;
	msg_init(&m, M_ROUTE_RESULT, id);
	msg_u64(&m, (uint64_t)lookup_verdict(res->verdict));
	msg_str(&m, res->diag);
	msg_u64(&m, res->n);
	for (size_t i = 0; i < res->n; i++) {
		const struct route_target *t = &res->t[i];
		msg_str(&m, t->channel);
		msg_str(&m, t->host);
		msg_str(&m, t->address);
		msg_str(&m, t->user);
		msg_u64(&m, t->uid);
		msg_u64(&m, t->gid);
		msg_str(&m, t->home);
		msg_str(&m, t->local);
		msg_str(&m, t->ext);
		msg_str(&m, t->domain);
		msg_str(&m, t->instruction);
		msg_str(&m, t->profile);
	}
	chan_send(c, &m);
}

/* a routing session's answer (at once or after it parked): to the asking peer's channel of
 * the moment, if it is still the same */
static void lookup_session_done(const struct lookup_asker *who, const struct route_result *res)
{
	if (who->gen != lk.gen[who->peer] || !lk.peer[who->peer]) {
		log_debug("event=route_result_dropped id=%u peer=%s", who->id, role_name(who->peer));
		return;
	}
	if (who->type == M_RCPT_CHECK)
		lookup_reply(lk.peer[who->peer], who->id, lookup_verdict(res->verdict), res->diag);
	else
		lookup_route_result(lk.peer[who->peer], who->id, res);
	log_debug("event=route id=%u verdict=%d targets=%zu diag=\"%s\"", who->id, res->verdict,
	          res->n, res->diag);
}

struct chan *lookup_peer_chan(int peer, uint32_t gen)
{
	return peer > R_PARENT && peer < R_NROLES && gen == lk.gen[peer] ? lk.peer[peer] : NULL;
}

static void lookup_route(int peer, uint32_t id, const char *rcpt)
{
	struct lookup_asker who = { peer, lk.gen[peer], id, M_ROUTE };
	lookup_session_route(&lk.rc, &lk.be, &who, rcpt, lookup_session_done);
}

struct lookup_mx {               /* an M_MX_RESOLVE waiting for its answer */
	int peer;
	uint32_t gen, id;
};

static void lookup_mx_done(const struct dns_result *res, void *arg)
{
	struct lookup_mx *q = arg;
	struct msg m;
	if (q->gen != lk.gen[q->peer]) {  /* asked by a peer that has restarted since */
		log_debug("event=mx_result_dropped id=%u peer=%s", q->id, role_name(q->peer));
		free(q);
		return;
	}
	msg_init(&m, M_MX_RESULT, q->id);
	msg_u64(&m, (uint64_t)res->status);
	msg_str(&m, res->diag);
	msg_u64(&m, res->n);
	for (size_t i = 0; i < res->n; i++) {
		msg_u64(&m, res->a[i].pref);
		msg_str(&m, res->a[i].host);
		msg_str(&m, res->a[i].addr);
	}
	chan_send(lk.peer[q->peer], &m);
	log_debug("event=mx_result id=%u status=%d n=%zu diag=\"%s\"", q->id, res->status, res->n,
	          res->diag);
	free(q);
}

/* the answer goes to the asking peer's channel of the moment, if it is still the same */
static void lookup_mx(int peer, uint32_t id, const char *name, uint64_t mode)
{
	struct lookup_mx *q = xmalloc(sizeof *q);
	q->peer = peer;
	q->gen = lk.gen[peer];
	q->id = id;
	dns_resolve(name, mode <= DNS_MODE_HOST ? (int)mode : -1, lookup_mx_done, q);
}

struct lookup_login {             /* an M_AUTH_CHECK or M_POP_LOGIN being checked */
	int peer;
	uint32_t gen, id, type;
};

/* a login's verdict (at once, or when the directory answered): to the asking peer's channel
 * of the moment, if it is still the same. M_AUTH_CHECK: the verdict, its delay and whether
 * to hang up (doc/IPC.md); M_POP_LOGIN: lookup_pop.c */
static void lookup_login_done(void *arg, const struct auth_req *q, const struct auth_res *res)
{
	struct lookup_login *w = arg;
	if (w->gen != lk.gen[w->peer] || !lk.peer[w->peer]) {
		log_info("event=login_result_dropped id=%u peer=%s", w->id, role_name(w->peer));
	} else if (w->type == M_POP_LOGIN) {
		lookup_pop_answer(lk.cfg, lk.peer[w->peer], lk.peer[R_PARENT], w->id, q, res);
	} else {
		struct msg m;
		msg_init(&m, M_AUTH_RESULT, w->id);
		msg_u64(&m, (uint64_t)res->verdict);
		msg_u64(&m, res->delay_ms);
		msg_u64(&m, (uint64_t)res->close);
		msg_str(&m, res->verdict == AUTH_OK ? res->login : "");
		chan_send(lk.peer[w->peer], &m);
	}
	free(w);
}

static void lookup_login(int peer, uint32_t id, uint32_t type, const struct auth_req *q)
{
	struct lookup_login *w = xmalloc(sizeof *w);
	w->peer = peer;
	w->gen = lk.gen[peer];
	w->id = id;
	w->type = type;
	lookup_auth_start(lk.cfg, lk.users, q, lookup_login_done, w);    /* copies q */
	explicit_bzero((char *)q->secret, strlen(q->secret));   /* in the channel's buffer */
}

/* M_LIST_GET: a mailing list's files, read and checked here (src/mail/mlist.h), or a
 * directory group (lookup_list.c) when the address is in no `lists` entry */
struct lookup_listq { int peer; uint32_t gen, id; };

static void lookup_list_send(int peer, uint32_t gen, uint32_t id, uint64_t verdict,
                             const char *diag, const struct mlist *l)
{
	struct mlist empty;
	mlist_init(&empty);
	if (verdict != V_OK)
		log_warn("event=list_unavailable reason=\"%s\"", diag);
	if (lk.peer[peer] && lk.gen[peer] == gen) {
		struct msg m;
		msg_init(&m, M_LIST_RESULT, id);
		mlist_put(&m, verdict, diag, verdict == V_OK && l ? l : &empty);
		chan_send(lk.peer[peer], &m);
	}
	mlist_free(&empty);
}

static void lookup_list_ldap_done(void *arg, uint64_t verdict, const char *diag,
                                  const struct mlist *l)
{
	struct lookup_listq *q = arg;
	lookup_list_send(q->peer, q->gen, q->id, verdict, diag, l);
	free(q);
}

static void lookup_list_get(int peer, uint32_t id, const char *addr)
{
	struct mlist l;
	char *dir = NULL, err[300] = "";
	mlist_init(&l);
	int rc = mlist_addr_ok(addr, strlen(addr)) ? mlist_find(lk.cfg, addr, &dir) : TABLE_NOTFOUND;
	if (rc == TABLE_NOTFOUND && lookup_ldap && mlist_addr_ok(addr, strlen(addr))) {
		struct lookup_listq *q = xcalloc(1, sizeof *q);
		*q = (struct lookup_listq){ peer, lk.gen[peer], id };
		lookup_list_ldap(lookup_ldap, addr, lookup_list_ldap_done, q);
		mlist_free(&l);
		return;
	}
	if (rc == TABLE_FOUND)
		rc = mlist_load(dir, route_aliases_owner(lk.cfg), &l, err, sizeof err);
	else
		snprintf(err, sizeof err, rc == TABLE_TEMP ? "lists table unreadable" : "not a list");
	lookup_list_send(peer, lk.gen[peer], id, rc == TABLE_FOUND ? V_OK : rc == TABLE_TEMP ?
	                 V_TEMP : V_NOUSER, err, &l);
	mlist_free(&l);
	free(dir);
}

static void lookup_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r,
                        int fd, void *arg)
{
	if (fd >= 0)
		close(fd);
	const char *a = "", *b = "", *auth = "";
	uint64_t mode = 0;
	struct auth_req q;
	switch (type) {
	case M_MAIL_CHECK:
		a = msg_get_str(r);
		break;
	case M_RCPT_CHECK:             /* the authenticated login is optional (older senders) */
		a = msg_get_str(r);
		b = msg_get_str(r);
		if (r->off < r->len)
			auth = msg_get_str(r);
		break;
	case M_ROUTE:
		a = msg_get_str(r);
		b = msg_get_str(r);
		break;
	case M_LIST_GET:
		a = msg_get_str(r);
		break;
	case M_AUTH_CHECK:
		q.service = msg_get_str(r);
		lookup_auth_decode(r, &q);
		break;
	case M_POP_LOGIN:
		q.service = "pop3";
		lookup_auth_decode(r, &q);
		break;
	case M_MX_RESOLVE:
		a = msg_get_str(r);
		mode = msg_get_u64(r);
		break;
	case M_EXPLAIN:                /* S address, Q flags, [S password] */
		a = msg_get_str(r);
		mode = msg_get_u64(r);
		if (r->off < r->len)
			b = msg_get_str(r);
		break;
	default:
		log_warn("event=unexpected_message peer=%s type=%u", chan_peer(c), type);
		return;
	}
	if (msg_done(r) < 0) {
		if (type == M_EXPLAIN)   /* a password in the channel's buffer */
			explicit_bzero((char *)b, strlen(b));
		return;                  /* dropped; the codec logs it (event=ipc_malformed) */
	}
	if (type == M_MX_RESOLVE) {
		lookup_mx((int)(intptr_t)arg, id, a, mode);
		return;
	}
	lookup_refresh();
	if (type == M_MAIL_CHECK)
		lookup_mail_check((int)(intptr_t)arg, id, a);
	else if (type == M_RCPT_CHECK)
		lookup_rcpt_check((int)(intptr_t)arg, id, a, b, auth);
	else if (type == M_AUTH_CHECK || type == M_POP_LOGIN)
		lookup_login((int)(intptr_t)arg, id, type, &q);
	else if (type == M_LIST_GET)
		lookup_list_get((int)(intptr_t)arg, id, a);
	else if (type == M_EXPLAIN) {
		lookup_explain(lk.cfg, &lk.rc, &lk.be, (int)(intptr_t)arg,
		               lk.gen[(int)(intptr_t)arg], id, a, mode, b);   /* copies b */
		explicit_bzero((char *)b, strlen(b));     /* the password, in the channel's buffer */
	}
	else
		lookup_route((int)(intptr_t)arg, id, a);
}

/* A peer went away: lookup keeps no state for it but its DNS questions, parked routing
 * sessions and login checks, whose answers drop (the generation check).
 * The parent gone: nobody will restart anything, leave. */
static void lookup_closed(struct chan *c, void *arg)
{
	int peer = (int)(intptr_t)arg;
	if (peer == R_PARENT) {
		log_info("event=parent_gone; exiting");
		exit(0);
	}
	if (role_peer_lost(c) < 0)
		exit(1);
}

static void lookup_parent_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r,
                               int fd, void *arg);

static void lookup_open(int peer, int fd)
{
	chan_recv_cb cb = peer == R_PARENT ? lookup_parent_recv : lookup_recv;
	lk.peer[peer] = chan_new(fd, role_name(peer), cb, lookup_closed, (void *)(intptr_t)peer);
}

/* M_PEER_NEW: a restarted smtp, queue, mta or control; the old channel (closed, or about to be) goes */
static void lookup_parent_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r,
                               int fd, void *arg)
{
	int peer;
	if (type != M_PEER_NEW) {
		log_warn("event=unexpected_message peer=parent type=%u", type);
		if (fd >= 0)
			close(fd);
		return;
	}
	if ((peer = role_peer_new(R_LOOKUP, r, fd)) < 0)
		return;
	if (peer != R_SMTP && peer != R_QUEUE && peer != R_MTA && peer != R_CONTROL) {
		log_warn("event=unexpected_peer peer=%s", role_name(peer));
		close(fd);
		return;
	}
	chan_free(lk.peer[peer]);
	lk.gen[peer]++;
	lookup_open(peer, fd);
	log_info("event=peer_new peer=%s", role_name(peer));
}

/* a missing defaultprivs account defers the aliases file's programs and files: say so at
 * start (config.c refuses one that is root or a role account) */
static void lookup_check_defaultprivs(const struct config *cfg)
{
	if (*cfg->aliases && !getpwnam(cfg->defaultprivs))
		log_warn("event=no_defaultprivs defaultprivs=%s: alias programs and files defer "
		         "until the account exists", cfg->defaultprivs);
}

/* smtproutes entries that cannot be used tempfail their recipients: say so at start */
static void lookup_check_routes(const struct config *cfg)
{
	char key[ROUTE_HOSTLEN], host[ROUTE_HOSTLEN];
	for (size_t i = 0; i < cfg->smtproutes.n; i++)
		if (route_smtproute_parse(cfg->smtproutes.v[i], key, sizeof key, host, sizeof host) < 0)
			log_warn("event=bad_smtproute entry=\"%s\"", cfg->smtproutes.v[i]);
}

/* postmaster must have a target: say so at start when it has none (route.c logs it) */
static void lookup_check_postmaster(void)
{
	struct route_result res;
	char *l = NULL, *d = NULL;
	const char *dom = lk.cfg->doublebouncehost;
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "postmaster@%s", dom);
	if (route_normalize(lk.cfg, a.p, &l, &d) == ROUTE_LOCAL) {
		route_address(&lk.rc, a.p, &res);
		route_result_free(&res);
	}
	free(l);
	free(d);
	buf_free(&a);
}

/* the directory client, when ldapserver is set; a password file that cannot be read is fatal
 * (the operator must know at start, not at the first RCPT) */
static void lookup_open_ldap(const struct config *cfg)
{
	static char pw[1024];
	struct ldapc_conf lc;
	if (!*cfg->ldapserver)
		return;
	if (ldapc_conf_from(&lc, cfg, pw, sizeof pw) < 0)
		log_fatal("event=ldap_unusable reason=\"ldappassword file unreadable\"");
	if (!(lookup_ldap = ldapc_new(&lc)))
		log_fatal("event=ldap_unusable reason=\"no usable URI in ldapserver\"");
}

int lookup_main(struct role_ctx *ctx)
{
	static const enum role peers[] = { R_SMTP, R_QUEUE, R_PARENT, R_MTA, R_CONTROL };
	struct cfg_errors errs;
	errs.n = 0;
	ev_init();
	memset(&lk, 0, sizeof lk);
	lk.cfg = ctx->cfg;
	lk.users = users_open(lk.cfg->users, &errs);
	users_set_minuid(lk.users, lk.cfg->minuid);
	lookup_log_errors("users", &errs);
	if (!lk.users)
		log_fatal("event=bad_users_spec users=%s", lk.cfg->users);
	errs.n = 0;
	lookup_check_defaultprivs(lk.cfg);
	lk.aliases = aliases_open(lk.cfg->aliases, route_aliases_owner(lk.cfg), &errs);
	lookup_log_errors("aliases", &errs);
	if (!lk.aliases)
		log_fatal("event=bad_aliases_spec aliases=%s", lk.cfg->aliases);
	route_init(&lk.rc, lk.cfg, lk.users, lk.aliases);
	lookup_backend_users(&lk.be, lk.users);
#ifdef TERN_TEST
	if (lookup_test_fake_ms > 0)
		lookup_backend_fake(&lk.be, lk.users, lookup_test_fake_ms);
#endif
	lookup_open_ldap(lk.cfg);
	if (strcmp(lk.cfg->users, "ldap:") == 0) {
		if (!lookup_ldap)          /* config.c refuses users ldap: without ldapserver */
			log_fatal("event=ldap_unusable reason=\"users ldap: without ldapserver\"");
		lookup_backend_ldap(&lk.be, lookup_ldap, lk.cfg);
	}
	if (lookup_tables_init(lk.cfg, lookup_ldap) < 0)
		log_fatal("event=ldap_unusable reason=\"ldap: tables cannot be asked\"");
	if (lookup_authdir_init(lk.cfg) < 0)
		log_fatal("event=ldap_unusable reason=\"directory logins cannot be checked\"");
	lookup_check_routes(lk.cfg);
	lookup_check_postmaster();
	dns_init(lk.cfg);               /* on failure every M_MX_RESOLVE answers MX_TEMP */
	lk.checked = time(NULL);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++)
		if (ctx->peer[peers[i]] >= 0)
			lookup_open(peers[i], ctx->peer[peers[i]]);
	log_info("event=lookup_ready users=%s aliases=%s", lk.cfg->users,
	         *lk.cfg->aliases ? lk.cfg->aliases : "(none)");
	ev_run();
	return 0;
}
