/* ldapc — the lookup role's asynchronous LDAP client (see ldapc.h).
 * Owns: the server connections, the requests in flight and their timers, the mapping of a
 * qmailUser entry to struct ldapc_user. Trusts: nothing the directory sends (a failed,
 * garbled or ambiguous answer is TABLE_TEMP); its caller for the configuration. */
#define LDAP_DEPRECATED 0
#include "ternd/lookup/ldapc.h"
#include "mail/config.h"
#include "mail/ldapesc.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <ldap.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LDAPC_MAXSRV     8
#define LDAPC_BACKOFF0   1000      /* ms after the first failure, doubling */
#define LDAPC_BACKOFFMAX 60000
#define LDAPC_SYSCA      "/etc/ssl/certs/ca-certificates.crt"

/* DOWN -> CONNECTING (TCP connect in progress, fd watched for writing) -> STARTTLS (the
 * extended operation out; ldap:// with tls) -> BINDING -> READY */
enum ldapc_state { LDAPC_DOWN, LDAPC_CONNECTING, LDAPC_STARTTLS, LDAPC_BINDING, LDAPC_READY };

struct ldapc_srv {
	struct ldapc *l;
	char *uri;
	LDAP *ld;
	struct ev *rev;
	int state, bindid;         /* bindid: the StartTLS operation's id, then the bind's */
	long long retry_at;
	unsigned backoff;
};

enum ldapc_kind { LDAPC_Q_USER, LDAPC_Q_LOGIN, LDAPC_Q_BIND, LDAPC_Q_SEARCH };

struct ldapc_req {
	struct ldapc_req *prev, *next;
	struct ldapc *l;
	struct ldapc_srv *srv;
	int kind;                  /* enum ldapc_kind */
	int msgid;                 /* -1 while waiting for the bind (or, a user bind, its turn) */
	int failed;                /* its server failed: being answered TABLE_TEMP */
	char *addr, *filter;       /* LDAPC_Q_BIND: the user's DN and the password */
	struct ldapc_search *search;  /* LDAPC_Q_SEARCH: base, scope, attribute */
	ldapc_cb cb;
	void *arg;
	struct ev *timer;
};

struct ldapc {
	struct ldapc_conf c;       /* strings owned (copied) */
	struct ldapc_srv srv[LDAPC_MAXSRV];
	size_t nsrv, npending;
	struct ldapc_req *reqs;
};

static void ldapc_srv_fail(struct ldapc_srv *s, const char *why, int rc);
static void ldapc_req_done(struct ldapc_req *r, int status, const struct ldapc_user *u);
struct ldapc_vals { char **v; size_t n; };
static void ldapc_vals_get(LDAP *ld, LDAPMessage *e, const char *attr, struct ldapc_vals *out,
                           int lower);
static void ldapc_vals_free(struct ldapc_vals *v);

/* ---------------------------------------------------------------- generic searches */

struct ldapc_search {          /* what an LDAPC_Q_SEARCH asks besides its filter */
	char *base;                /* "" = the basedn */
	char *attr;                /* "" = any entry is a match */
	int scope;                 /* LDAP_SCOPE_* */
	char **attrs;              /* ldapc_values: the attributes whose values are wanted */
	size_t max;                /* ldapc_values: at most this many entries */
};

static void ldapc_search_free(struct ldapc_search *q)
{
	if (!q)
		return;
	free(q->base);
	free(q->attr);
	for (size_t i = 0; q->attrs && q->attrs[i]; i++)
		free(q->attrs[i]);
	free(q->attrs);
	free(q);
}

static int ldapc_search_send(struct ldapc_req *r)
{
	struct ldapc_srv *s = r->srv;
	struct ldapc_search *q = r->search;
	char *attrs[] = { *q->attr ? q->attr : LDAP_NO_ATTRS, NULL };
	struct timeval tv = { (time_t)(s->l->c.timeout_ms / 1000 + 1), 0 };
	int limit = q->attrs ? (int)q->max + 1 : *q->attr ? 64 : 1;
	int rc = ldap_search_ext(s->ld, *q->base ? q->base : s->l->c.basedn, q->scope, r->filter,
	                         q->attrs ? q->attrs : attrs, 0, NULL, NULL, &tv, limit, &r->msgid);
	if (rc != LDAP_SUCCESS) {
		ldapc_srv_fail(s, "search", rc);
		return -1;
	}
	return 0;
}

/* ldapc_values: every value of the wanted attributes of every entry, as "attr\tvalue" (attr
 * as asked); more than max entries, or an incomplete search, is TEMP (a list is never cut
 * short silently) */
static void ldapc_values_answer(struct ldapc_req *r, LDAP *ld, LDAPMessage *res)
{
	int err = LDAP_OTHER, got_result = 0;
	size_t nent = 0, nv = 0;
	char **v = NULL, *dn = NULL;
	for (LDAPMessage *m = ldap_first_message(ld, res); m; m = ldap_next_message(ld, m)) {
		int t = ldap_msgtype(m);
		if (t == LDAP_RES_SEARCH_ENTRY && nent++ < r->search->max) {
			if (!dn)
				dn = ldap_get_dn(ld, m);
			for (size_t a = 0; r->search->attrs[a]; a++) {
				struct ldapc_vals x;
				ldapc_vals_get(ld, m, r->search->attrs[a], &x, 0);
				for (size_t k = 0; k < x.n; k++) {
					v = xrealloc(v, (nv + 2) * sizeof *v);
					v[nv] = xmalloc(strlen(r->search->attrs[a]) + strlen(x.v[k]) + 2);
					sprintf(v[nv++], "%s\t%s", r->search->attrs[a], x.v[k]);
				}
				ldapc_vals_free(&x);
			}
		} else if (t == LDAP_RES_SEARCH_RESULT) {
			got_result = 1;
			if (ldap_parse_result(ld, m, &err, NULL, NULL, NULL, NULL, 0) != LDAP_SUCCESS)
				err = LDAP_OTHER;
		}
	}
	struct ldapc_user u = { .dn = dn ? dn : "", .uid = "", .mail = "", .messagestore = "",
		.bounceadmin = "",
		.homedir = "", .mailhost = "", .accountstatus = "", .dotmode = "", .password = "",
		.replytext = "", .program = "", .values = (const char *const *)v, .nvalues = nv };
	if (got_result && (err == LDAP_SUCCESS || err == LDAP_NO_SUCH_OBJECT) &&
	    nent <= r->search->max)
		ldapc_req_done(r, nent ? TABLE_FOUND : TABLE_NOTFOUND, nent ? &u : NULL);
	else {
		log_warn("event=ldap_search_failed server=%s filter=\"%s\" err=%s entries=%zu",
		         r->srv->uri, r->filter, ldap_err2string(got_result ? err : LDAP_OTHER), nent);
		ldapc_req_done(r, TABLE_TEMP, NULL);
	}
	for (size_t k = 0; k < nv; k++)
		free(v[k]);
	free(v);
	ldap_memfree(dn);
}

/* FOUND: an entry (with attr: one with a value of attr); NOTFOUND: the search completed
 * without one (noSuchObject: the base is not there either); TEMP otherwise. A size limit
 * reached after a match is still a match. */
static void ldapc_search_answer(struct ldapc_req *r, LDAP *ld, LDAPMessage *res)
{
	int err = LDAP_OTHER, got_result = 0, found = 0;
	const char *attr = r->search->attr;
	for (LDAPMessage *m = ldap_first_message(ld, res); m; m = ldap_next_message(ld, m)) {
		int t = ldap_msgtype(m);
		if (t == LDAP_RES_SEARCH_ENTRY && !found) {
			struct berval **bv = *attr ? ldap_get_values_len(ld, m, attr) : NULL;
			found = !*attr || (bv && ldap_count_values_len(bv) > 0);
			ldap_value_free_len(bv);
		} else if (t == LDAP_RES_SEARCH_RESULT) {
			got_result = 1;
			if (ldap_parse_result(ld, m, &err, NULL, NULL, NULL, NULL, 0) != LDAP_SUCCESS)
				err = LDAP_OTHER;
		}
	}
	if (got_result && (err == LDAP_SUCCESS || (found && err == LDAP_SIZELIMIT_EXCEEDED))) {
		ldapc_req_done(r, found ? TABLE_FOUND : TABLE_NOTFOUND, NULL);
	} else if (got_result && !found && err == LDAP_NO_SUCH_OBJECT) {
		ldapc_req_done(r, TABLE_NOTFOUND, NULL);
	} else {
		log_warn("event=ldap_search_failed server=%s filter=\"%s\" err=%s", r->srv->uri,
		         r->filter, ldap_err2string(got_result ? err : LDAP_OTHER));
		ldapc_req_done(r, TABLE_TEMP, NULL);
	}
}

/* ---------------------------------------------------------------- attributes */

/* the one list of the attributes a user or login search asks for (ldapc_req_send) and
 * ldapc_answer_entry maps, by index; mailAlternateAddress is read by ldapc_is_catchall */
enum { A_UID, A_QUID, A_QGID, A_STORE, A_HOME, A_HOST, A_MODE, A_FWD, A_QSIZE, A_QCOUNT,
       A_SMAX, A_STATUS, A_PW, A_DOT, A_REPLY, A_PROG, A_MAIL, A_ALT, A_OC, A_BADMIN, A_N };
static char *ldapc_attrnames[A_N + 1] = { "uid", "qmailUID", "qmailGID",
	"mailMessageStore", "homeDirectory", "mailHost", "deliveryMode", "mailForwardingAddress",
	"mailQuotaSize", "mailQuotaCount", "mailSizeMax", "accountStatus", "userPassword",
	"qmailDotMode", "mailReplyText", "deliveryProgramPath", "mail", "mailAlternateAddress",
	"objectClass", "bounceAdmin", NULL };

/* ---------------------------------------------------------------- requests */

static void ldapc_req_unlink(struct ldapc_req *r)
{
	struct ldapc *l = r->l;
	if (r->prev)
		r->prev->next = r->next;
	else
		l->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	l->npending--;
}

/* answer r and free it (it must be linked) */
static void ldapc_req_done(struct ldapc_req *r, int status, const struct ldapc_user *u)
{
	ldapc_req_unlink(r);
	ev_free(r->timer);
	ldapc_cb cb = r->cb;
	void *arg = r->arg;
	free(r->addr);
	if (r->kind == LDAPC_Q_BIND && r->filter)
		explicit_bzero(r->filter, strlen(r->filter));
	free(r->filter);
	ldapc_search_free(r->search);
	free(r);
	cb(arg, status, u);
}

/* a user bind (ldapc_bind) is sent when no other one is in flight on its connection: binds
 * on one connection are answered in turn (RFC 4511 4.2.1) */
static int ldapc_userbind_send(struct ldapc_req *r)
{
	struct ldapc_srv *s = r->srv;
	for (struct ldapc_req *o = s->l->reqs; o; o = o->next)
		if (o != r && o->srv == s && o->kind == LDAPC_Q_BIND && o->msgid >= 0)
			return 0;                /* its turn comes in ldapc_userbind_done */
	struct berval cred = { strlen(r->filter), r->filter };
	int rc = ldap_sasl_bind(s->ld, r->addr, LDAP_SASL_SIMPLE, &cred, NULL, NULL, &r->msgid);
	if (rc != LDAP_SUCCESS) {
		r->msgid = -1;
		ldapc_srv_fail(s, "userbind", rc);
		return -1;
	}
	return 0;
}

static int ldapc_req_send(struct ldapc_req *r)
{
	struct ldapc_srv *s = r->srv;
	if (r->kind == LDAPC_Q_BIND)
		return ldapc_userbind_send(r);
	if (r->kind == LDAPC_Q_SEARCH)
		return ldapc_search_send(r);
	struct timeval tv = { (time_t)(s->l->c.timeout_ms / 1000 + 1), 0 };
	int rc = ldap_search_ext(s->ld, s->l->c.basedn, LDAP_SCOPE_SUBTREE, r->filter,
	                         ldapc_attrnames, 0,
	                         NULL, NULL, &tv, 16, &r->msgid);
	if (rc != LDAP_SUCCESS) {
		ldapc_srv_fail(s, "search", rc);
		return -1;
	}
	return 0;
}

static void ldapc_req_timeout(int fd, short what, void *arg)
{
	struct ldapc_req *r = arg;
	struct ldapc_srv *s = r->srv;
	log_warn("event=ldap_timeout server=%s %s=%s", s ? s->uri : "-",
	         r->kind == LDAPC_Q_BIND ? "dn" : "addr", r->addr);
	/* a server that lets a request time out is treated as down: its connection is closed
	 * (every request on it answered TABLE_TEMP) and it is avoided during the back-off */
	if (s)
		ldapc_srv_fail(s, "timeout", LDAP_TIMEOUT);
	else
		ldapc_req_done(r, TABLE_TEMP, NULL);
}

/* ---------------------------------------------------------------- entries */

static void ldapc_vals_get(LDAP *ld, LDAPMessage *e, const char *attr, struct ldapc_vals *out,
                           int lower)
{
	struct berval **bv = ldap_get_values_len(ld, e, attr);
	out->n = bv ? (size_t)ldap_count_values_len(bv) : 0;
	out->v = xcalloc(out->n + 1, sizeof *out->v);
	for (size_t i = 0; i < out->n; i++) {
		out->v[i] = strndup(bv[i]->bv_val, bv[i]->bv_len);
		if (!out->v[i])
			log_fatal("event=oom");
		for (char *p = out->v[i]; lower && *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	ldap_value_free_len(bv);
}

static void ldapc_vals_free(struct ldapc_vals *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
}

static int ldapc_vals_has(const struct ldapc_vals *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcasecmp(v->v[i], s) == 0)
			return 1;
	return 0;
}

/* a number attribute: 0 when absent, -1 when garbage */
static int ldapc_num(const struct ldapc_vals *v, uint64_t max, uint64_t *out)
{
	*out = 0;
	if (!v->n)
		return 0;
	return str_to_u64(v->v[0], 0, max, out);
}


static const char *ldapc_first(const struct ldapc_vals *v)
{
	return v->n ? v->v[0] : "";
}

/* the dn's leading uid= RDN value into buf, or "" */
static void ldapc_dn_uid(const char *dn, char *buf, size_t size)
{
	buf[0] = '\0';
	if (strncasecmp(dn, "uid=", 4) == 0)
		snprintf(buf, size, "%.*s", (int)strcspn(dn + 4, ",+"), dn + 4);
}

/* map entry e and answer r with it; TABLE_TEMP when a number is garbage */
static void ldapc_answer_entry(struct ldapc_req *r, LDAP *ld, LDAPMessage *e, int catchall)
{
	const struct ldapc_conf *c = &r->l->c;
	struct ldapc_vals a[A_N];
	for (int i = 0; i < A_N; i++)
		ldapc_vals_get(ld, e, ldapc_attrnames[i], &a[i], i == A_MODE || i == A_STATUS);
	char *dn = ldap_get_dn(ld, e), dnuid[256], *store = NULL;
	struct ldapc_user u = { .dn = dn ? dn : "", .catchall = catchall };
	uint64_t quid, qgid;
	int bad = ldapc_num(&a[A_QUID], 4294967294ull, &quid) < 0 ||
	          ldapc_num(&a[A_QGID], 4294967294ull, &qgid) < 0 ||
	          ldapc_num(&a[A_QSIZE], UINT64_MAX, &u.quotasize) < 0 ||
	          ldapc_num(&a[A_QCOUNT], UINT64_MAX, &u.quotacount) < 0 ||
	          ldapc_num(&a[A_SMAX], UINT64_MAX, &u.sizemax) < 0;
	ldapc_dn_uid(u.dn, dnuid, sizeof dnuid);
	u.uid = a[A_UID].n ? a[A_UID].v[0] : dnuid;
	u.qmailuid = a[A_QUID].n ? (uint32_t)quid : c->defuid;
	u.qmailgid = a[A_QGID].n ? (uint32_t)qgid : c->defgid;
	const char *ms = ldapc_first(&a[A_STORE]);
	if (*ms && *ms != '/' && *c->messagestore) {
		size_t n = strlen(c->messagestore);
		store = xmalloc(n + strlen(ms) + 2);
		sprintf(store, "%s%s%s", c->messagestore, c->messagestore[n - 1] == '/' ? "" : "/",
		        ms);
		ms = store;
	}
	u.messagestore = ms;
	u.homedir = ldapc_first(&a[A_HOME]);
	u.mailhost = ldapc_first(&a[A_HOST]);
	u.accountstatus = ldapc_first(&a[A_STATUS]);
	u.dotmode = ldapc_first(&a[A_DOT]);
	u.password = ldapc_first(&a[A_PW]);
	u.replytext = ldapc_first(&a[A_REPLY]);
	u.program = ldapc_first(&a[A_PROG]);
	u.mail = ldapc_first(&a[A_MAIL]);
	u.deliverymode = (const char *const *)a[A_MODE].v;
	u.ndeliverymode = a[A_MODE].n;
	u.forward = (const char *const *)a[A_FWD].v;
	u.nforward = a[A_FWD].n;
	u.group = ldapc_vals_has(&a[A_OC], "qmailGroup");     /* a mailing list (doc/LISTS.md) */
	u.bounceadmin = ldapc_first(&a[A_BADMIN]);
	if (bad)
		log_warn("event=ldap_garbage dn=%s addr=%s", u.dn, r->addr);
	ldapc_req_done(r, bad ? TABLE_TEMP : TABLE_FOUND, bad ? NULL : &u);
	free(store);
	ldap_memfree(dn);
	for (int i = 0; i < A_N; i++)
		ldapc_vals_free(&a[i]);
}

/* is e matched by the address itself (0) or only by the @domain catch-all (1)? */
static int ldapc_is_catchall(LDAP *ld, LDAPMessage *e, const char *addr)
{
	struct ldapc_vals mail, alt;
	ldapc_vals_get(ld, e, "mail", &mail, 0);
	ldapc_vals_get(ld, e, "mailAlternateAddress", &alt, 0);
	const char *at = strchr(addr, '@');
	int exact = ldapc_vals_has(&mail, addr) || ldapc_vals_has(&alt, addr);
	int catchall = !exact && at && ldapc_vals_has(&alt, at);
	ldapc_vals_free(&mail);
	ldapc_vals_free(&alt);
	return catchall;
}

/* a login search's answer: exactly one entry (the login filter has no catch-all term, so
 * every entry counts as exact), else no login (several: ambiguous, refused and logged) */
static void ldapc_login_done(struct ldapc_req *r, LDAP *ld, int err, LDAPMessage *e, int n)
{
	if (err != LDAP_SUCCESS) {
		log_warn("event=ldap_search_failed server=%s login=%s err=%s", r->srv->uri, r->addr,
		         ldap_err2string(err));
		ldapc_req_done(r, TABLE_TEMP, NULL);
	} else if (n == 1) {
		ldapc_answer_entry(r, ld, e, 0);
	} else {
		if (n > 1)
			log_warn("event=ldap_login_ambiguous login=%s entries=%d", r->addr, n);
		ldapc_req_done(r, TABLE_NOTFOUND, NULL);
	}
}

/* a user bind's answer: FOUND = the password is right, NOTFOUND = invalidCredentials (or the
 * entry gone), TEMP otherwise; then the next bind waiting on the connection goes */
static void ldapc_userbind_done(struct ldapc_req *r, LDAP *ld, LDAPMessage *m)
{
	struct ldapc_srv *s = r->srv;
	int err = LDAP_OTHER;
	if (ldap_parse_result(ld, m, &err, NULL, NULL, NULL, NULL, 0) != LDAP_SUCCESS)
		err = LDAP_OTHER;
	int st = err == LDAP_SUCCESS ? TABLE_FOUND :
	         err == LDAP_INVALID_CREDENTIALS || err == LDAP_NO_SUCH_OBJECT ? TABLE_NOTFOUND :
	         TABLE_TEMP;
	if (st == TABLE_TEMP)
		log_warn("event=ldap_userbind_failed server=%s dn=%s err=%s", s->uri, r->addr,
		         ldap_err2string(err));
	struct ldapc *l = r->l;
	ldapc_req_done(r, st, NULL);
	for (struct ldapc_req *o = l->reqs; o; o = o->next)
		if (o->srv == s && s->state == LDAPC_READY && o->kind == LDAPC_Q_BIND &&
		    o->msgid < 0) {
			ldapc_userbind_send(o);
			return;
		}
}

/* a complete search answer (entries + result) for r */
static void ldapc_search_done(struct ldapc_req *r, LDAP *ld, LDAPMessage *res)
{
	LDAPMessage *exact = NULL, *catchall = NULL;
	int nexact = 0, ncatch = 0, err = LDAP_OTHER, got_result = 0;
	if (r->kind == LDAPC_Q_SEARCH && r->search->attrs) {
		ldapc_values_answer(r, ld, res);
		return;
	}
	if (r->kind == LDAPC_Q_SEARCH) {
		ldapc_search_answer(r, ld, res);
		return;
	}
	for (LDAPMessage *m = ldap_first_message(ld, res); m; m = ldap_next_message(ld, m)) {
		int t = ldap_msgtype(m);
		if (t == LDAP_RES_SEARCH_ENTRY) {
			if (ldapc_is_catchall(ld, m, r->addr)) {
				catchall = m;
				ncatch++;
			} else {
				exact = m;
				nexact++;
			}
		} else if (t == LDAP_RES_SEARCH_RESULT) {
			got_result = 1;
			if (ldap_parse_result(ld, m, &err, NULL, NULL, NULL, NULL, 0) != LDAP_SUCCESS)
				err = LDAP_OTHER;
		}
	}
	if (r->kind == LDAPC_Q_LOGIN) {
		ldapc_login_done(r, ld, got_result ? err : LDAP_OTHER, exact, nexact + ncatch);
		return;
	}
	if (!got_result || err != LDAP_SUCCESS || nexact > 1 || (!nexact && ncatch > 1)) {
		log_warn("event=ldap_search_failed server=%s addr=%s err=%s exact=%d catchall=%d",
		         r->srv->uri, r->addr, ldap_err2string(err), nexact, ncatch);
		ldapc_req_done(r, TABLE_TEMP, NULL);
	} else if (nexact || ncatch) {
		ldapc_answer_entry(r, ld, nexact ? exact : catchall, !nexact);
	} else {
		ldapc_req_done(r, TABLE_NOTFOUND, NULL);
	}
}

/* ---------------------------------------------------------------- servers */

static void ldapc_srv_close(struct ldapc_srv *s)
{
	if (s->rev)
		ev_free(s->rev);
	s->rev = NULL;
	if (s->ld)
		ldap_unbind_ext(s->ld, NULL, NULL);
	s->ld = NULL;
	s->state = LDAPC_DOWN;
}

/* close s, start its back-off, answer every request on it TABLE_TEMP */
static void ldapc_srv_fail(struct ldapc_srv *s, const char *why, int rc)
{
	struct ldapc *l = s->l;
	s->backoff = s->backoff ? s->backoff * 2 : LDAPC_BACKOFF0;
	if (s->backoff > LDAPC_BACKOFFMAX)
		s->backoff = LDAPC_BACKOFFMAX;
	s->retry_at = ev_now_ms() + s->backoff;
	log_warn("event=ldap_server_down server=%s why=%s err=%s backoff_ms=%u", s->uri, why,
	         ldap_err2string(rc), s->backoff);
	ldapc_srv_close(s);
	/* mark first: a callback may start new requests, even on s (reopened) */
	for (struct ldapc_req *r = l->reqs; r; r = r->next)
		if (r->srv == s) {
			r->srv = NULL;
			r->failed = 1;
		}
	for (struct ldapc_req *r = l->reqs; r; ) {
		if (!r->failed) {
			r = r->next;
			continue;
		}
		ldapc_req_done(r, TABLE_TEMP, NULL);
		r = l->reqs;             /* the list may have changed under the callback */
	}
}

static int ldapc_send_bind(struct ldapc_srv *s)
{
	const struct ldapc_conf *c = &s->l->c;
	struct berval cred = { strlen(c->password), (char *)c->password };
	int rc = ldap_sasl_bind(s->ld, c->binddn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, &s->bindid);
	if (rc != LDAP_SUCCESS) {
		ldapc_srv_fail(s, "bind", rc);
		return -1;
	}
	s->state = LDAPC_BINDING;
	return 0;
}

/* the answer to StartTLS: the handshake (bounded by the timeout), then the bind */
static void ldapc_starttls_done(struct ldapc_srv *s, LDAPMessage *m)
{
	int err = LDAP_OTHER;
	if (ldap_parse_result(s->ld, m, &err, NULL, NULL, NULL, NULL, 0) != LDAP_SUCCESS ||
	    err != LDAP_SUCCESS) {
		ldapc_srv_fail(s, "starttls", err);
		return;
	}
	if ((err = ldap_install_tls(s->ld)) != LDAP_SUCCESS) {
		ldapc_srv_fail(s, "tls", err);
		return;
	}
	ldapc_send_bind(s);
}

static void ldapc_bind_done(struct ldapc_srv *s, LDAPMessage *m)
{
	int err = LDAP_OTHER;
	if (ldap_parse_result(s->ld, m, &err, NULL, NULL, NULL, NULL, 0) != LDAP_SUCCESS ||
	    err != LDAP_SUCCESS) {
		ldapc_srv_fail(s, "bind", err);
		return;
	}
	s->state = LDAPC_READY;
	s->backoff = 0;
	log_info("event=ldap_connected server=%s", s->uri);
	for (struct ldapc_req *r = s->l->reqs; r && s->state == LDAPC_READY; r = r->next)
		if (r->srv == s && r->msgid < 0 && ldapc_req_send(r) < 0)
			return;
}

static void ldapc_dispatch(struct ldapc_srv *s, LDAPMessage *res)
{
	int id = ldap_msgid(res);
	if (s->state == LDAPC_STARTTLS && id == s->bindid) {
		ldapc_starttls_done(s, res);
		return;
	}
	if (s->state == LDAPC_BINDING && id == s->bindid) {
		ldapc_bind_done(s, res);
		return;
	}
	for (struct ldapc_req *r = s->l->reqs; r; r = r->next) {
		if (r->srv == s && r->msgid == id) {
			if (r->kind == LDAPC_Q_BIND)
				ldapc_userbind_done(r, s->ld, res);
			else
				ldapc_search_done(r, s->ld, res);
			return;
		}
	}
}

static void ldapc_readable(int fd, short what, void *arg)
{
	struct ldapc_srv *s = arg;
	LDAP *ld = s->ld;
	while (s->ld == ld && ld) {
		struct timeval zero = { 0, 0 };
		LDAPMessage *res = NULL;
		int rc = ldap_result(ld, LDAP_RES_ANY, LDAP_MSG_ALL, &zero, &res);
		if (rc < 0) {
			int err = LDAP_SERVER_DOWN;
			ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &err);
			ldapc_srv_fail(s, "read", err);
			return;
		}
		if (rc == 0)
			return;
		ldapc_dispatch(s, res);
		ldap_msgfree(res);
	}
}

static int ldapc_set_tls(struct ldapc_srv *s)
{
	const struct ldapc_conf *c = &s->l->c;
	int demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	const char *ca = *c->cafile ? c->cafile : LDAPC_SYSCA;
	int rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_CACERTFILE, ca);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	return rc;
}

/* the TCP connect finished (or timed out): read from now on; StartTLS or the bind */
static void ldapc_connected(int fd, short what, void *arg)
{
	struct ldapc_srv *s = arg;
	int err = 0;
	socklen_t len = sizeof err;
	if (!(what & EV_W)) {
		ldapc_srv_fail(s, "connect_timeout", LDAP_TIMEOUT);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		log_debug("event=ldap_connect_failed server=%s error=\"%s\"", s->uri,
		          strerror(err ? err : errno));
		ldapc_srv_fail(s, "connect", LDAP_SERVER_DOWN);
		return;
	}
	ev_free(s->rev);
	s->rev = ev_new(fd, EV_R | EV_PERSIST, ldapc_readable, s);
	ev_add(s->rev, -1);
	const struct ldapc_conf *c = &s->l->c;
	int plain = strncasecmp(s->uri, "ldap://", 7) == 0;
	if (!(c->starttls && plain)) {
		ldapc_send_bind(s);        /* ldaps: libldap's handshake comes first, bounded */
		return;
	}
	int rc = ldap_start_tls(s->ld, NULL, NULL, &s->bindid);
	if (rc != LDAP_SUCCESS) {
		ldapc_srv_fail(s, "starttls", rc);
		return;
	}
	s->state = LDAPC_STARTTLS;
}

static int ldapc_srv_options(struct ldapc_srv *s)
{
	const struct ldapc_conf *c = &s->l->c;
	struct timeval tv = { (time_t)(c->timeout_ms / 1000), (long)(c->timeout_ms % 1000) * 1000 };
	int v3 = LDAP_VERSION3, rc;
	int ldaps = strncasecmp(s->uri, "ldaps://", 8) == 0;
	int ldapi = strncasecmp(s->uri, "ldapi://", 8) == 0;
	rc = ldap_set_option(s->ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(s->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(s->ld, LDAP_OPT_CONNECT_ASYNC, LDAP_OPT_ON);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(s->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(s->ld, LDAP_OPT_TIMEOUT, &tv);
	if (rc == LDAP_SUCCESS && (ldaps || (c->starttls && !ldapi)))
		rc = ldapc_set_tls(s);
	return rc;
}

/* Start connecting without waiting (LDAP_OPT_CONNECT_ASYNC): the fd is watched for the
 * connect's end, then StartTLS and the bind are sent and answered from the loop. */
static int ldapc_srv_open(struct ldapc_srv *s)
{
	int rc, fd = -1;
	if ((rc = ldap_initialize(&s->ld, s->uri)) != LDAP_SUCCESS) {
		s->ld = NULL;
		ldapc_srv_fail(s, "initialize", rc);
		return -1;
	}
	rc = ldapc_srv_options(s);
	if (rc == LDAP_SUCCESS)
		rc = ldap_connect(s->ld);
	if (rc == LDAP_SUCCESS)
		rc = ldap_get_option(s->ld, LDAP_OPT_DESC, &fd);
	if (rc != LDAP_SUCCESS || fd < 0) {
		ldapc_srv_fail(s, "connect", rc != LDAP_SUCCESS ? rc : LDAP_SERVER_DOWN);
		return -1;
	}
	s->rev = ev_new(fd, EV_W, ldapc_connected, s);
	ev_add(s->rev, (long)s->l->c.timeout_ms);
	s->state = LDAPC_CONNECTING;
	return 0;
}

/* the first server not in back-off, else the one whose back-off ends first */
static struct ldapc_srv *ldapc_pick(struct ldapc *l, unsigned tried)
{
	long long now = ev_now_ms();
	struct ldapc_srv *best = NULL;
	for (size_t i = 0; i < l->nsrv; i++) {
		struct ldapc_srv *s = &l->srv[i];
		if (tried & (1u << i))
			continue;
		if (s->state != LDAPC_DOWN || s->retry_at <= now)
			return s;
		if (!best || s->retry_at < best->retry_at)
			best = s;
	}
	return best;
}

/* ---------------------------------------------------------------- API */

void ldapc_preinit(void)
{
	LDAP *ld = NULL;
	char **mechs = NULL;
	int zero = 0, demand = LDAP_OPT_X_TLS_DEMAND;
	setenv("LDAPNOINIT", "1", 1);
	/* the SASL mechanism list makes libldap load every Cyrus SASL plugin now */
	if (ldap_get_option(NULL, LDAP_OPT_X_SASL_MECHLIST, &mechs) != LDAP_OPT_SUCCESS)
		log_warn("event=ldap_preinit_failed");
	if (ldap_initialize(&ld, "ldap://127.0.0.1/") != LDAP_SUCCESS || !ld)
		return;                  /* the first real connection will say what is wrong */
	ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	ldap_unbind_ext(ld, NULL, NULL);
}

/* queue a request of kind on key (filter: its search filter, or a user bind's password;
 * taken over; search: an LDAPC_Q_SEARCH's, taken over) and start it on the first usable
 * server */
static int ldapc_request_with(struct ldapc *l, int kind, const char *key, char *filter,
                              struct ldapc_search *search, ldapc_cb cb, void *arg)
{
	struct ldapc_req *r = xcalloc(1, sizeof *r);
	r->l = l;
	r->kind = kind;
	r->search = search;
	r->msgid = -1;
	r->addr = xstrdup(key);
	r->filter = filter;
	r->cb = cb;
	r->arg = arg;
	r->timer = ev_new(-1, 0, ldapc_req_timeout, r);
	r->next = l->reqs;
	if (l->reqs)
		l->reqs->prev = r;
	l->reqs = r;
	l->npending++;
	ev_add(r->timer, (long)l->c.timeout_ms);
	unsigned tried = 0;
	struct ldapc_srv *s;
	while ((s = ldapc_pick(l, tried)) != NULL) {
		tried |= 1u << (s - l->srv);
		if (s->state == LDAPC_DOWN && ldapc_srv_open(s) < 0)
			continue;
		r->srv = s;
		if (s->state == LDAPC_READY)
			ldapc_req_send(r);   /* on failure the request was answered TABLE_TEMP */
		return 0;
	}
	ldapc_req_done(r, TABLE_TEMP, NULL);
	return 0;
}

static int ldapc_request(struct ldapc *l, int kind, const char *key, char *filter, ldapc_cb cb,
                         void *arg)
{
	return ldapc_request_with(l, kind, key, filter, NULL, cb, arg);
}

int ldapc_user(struct ldapc *l, const char *address, ldapc_cb cb, void *arg)
{
	char *filter = ldapesc_user_filter(l->c.objectclass, address, strlen(address));
	if (!filter) {            /* empty or longer than any mailbox */
		cb(arg, TABLE_NOTFOUND, NULL);
		return 0;
	}
	return ldapc_request(l, LDAPC_Q_USER, address, filter, cb, arg);
}

int ldapc_login(struct ldapc *l, const char *name, ldapc_cb cb, void *arg)
{
	char *filter = ldapesc_login_filter(l->c.objectclass, name, strlen(name));
	if (!filter) {            /* empty, a catch-all value, or too long */
		cb(arg, TABLE_NOTFOUND, NULL);
		return 0;
	}
	return ldapc_request(l, LDAPC_Q_LOGIN, name, filter, cb, arg);
}

int ldapc_bind(struct ldapc *l, const char *dn, const char *password, ldapc_cb cb, void *arg)
{
	if (!*dn || !*password) {  /* an empty password would be an unauthenticated bind */
		cb(arg, TABLE_NOTFOUND, NULL);
		return 0;
	}
	return ldapc_request(l, LDAPC_Q_BIND, dn, xstrdup(password), cb, arg);
}

int ldapc_search(struct ldapc *l, const char *base, int scope, const char *filter,
                 const char *attr, ldapc_cb cb, void *arg)
{
	struct ldapc_search *q = xcalloc(1, sizeof *q);     /* attrs NULL: not ldapc_values */
	q->base = xstrdup(base ? base : "");
	q->attr = xstrdup(attr ? attr : "");
	q->scope = scope == 0 ? LDAP_SCOPE_BASE : scope == 1 ? LDAP_SCOPE_ONELEVEL :
	           LDAP_SCOPE_SUBTREE;
	return ldapc_request_with(l, LDAPC_Q_SEARCH, filter, xstrdup(filter), q, cb, arg);
}

int ldapc_values(struct ldapc *l, const char *base, int scope, const char *filter,
                 const char *const *attrs, size_t max, ldapc_cb cb, void *arg)
{
	struct ldapc_search *q = xcalloc(1, sizeof *q);
	size_t n = 0;
	while (attrs[n])
		n++;
	q->base = xstrdup(base ? base : "");
	q->attr = xstrdup("");
	q->scope = scope == 0 ? LDAP_SCOPE_BASE : scope == 1 ? LDAP_SCOPE_ONELEVEL :
	           LDAP_SCOPE_SUBTREE;
	q->attrs = xcalloc(n + 1, sizeof *q->attrs);
	for (size_t i = 0; i < n; i++)
		q->attrs[i] = xstrdup(attrs[i]);
	q->max = max;
	return ldapc_request_with(l, LDAPC_Q_SEARCH, filter, xstrdup(filter), q, cb, arg);
}

size_t ldapc_pending(const struct ldapc *l)
{
	return l->npending;
}

struct ldapc *ldapc_new(const struct ldapc_conf *c)
{
	struct ldapc *l = xcalloc(1, sizeof *l);
	l->c = *c;
	l->c.basedn = xstrdup(c->basedn ? c->basedn : "");
	l->c.binddn = xstrdup(c->binddn ? c->binddn : "");
	l->c.password = xstrdup(c->password ? c->password : "");
	l->c.objectclass = xstrdup(c->objectclass && *c->objectclass ? c->objectclass : "qmailUser");
	l->c.cafile = xstrdup(c->cafile ? c->cafile : "");
	l->c.messagestore = xstrdup(c->messagestore ? c->messagestore : "");
	if (!l->c.timeout_ms)
		l->c.timeout_ms = 30000;
	char *list = xstrdup(c->servers ? c->servers : ""), *save = NULL;
	for (char *u = strtok_r(list, " \t,", &save); u; u = strtok_r(NULL, " \t,", &save)) {
		if (l->nsrv == LDAPC_MAXSRV) {
			log_warn("event=ldap_too_many_servers max=%d ignored=%s", LDAPC_MAXSRV, u);
			continue;
		}
		l->srv[l->nsrv].l = l;
		l->srv[l->nsrv++].uri = xstrdup(u);
	}
	free(list);
	/* ldap.conf, ldaprc and LDAP* variables must not change what tern asks for */
	setenv("LDAPNOINIT", "1", 1);
	if (!l->nsrv) {
		log_err("event=ldap_no_server");
		ldapc_free(l);
		return NULL;
	}
	return l;
}

void ldapc_free(struct ldapc *l)
{
	if (!l)
		return;
	while (l->reqs)
		ldapc_req_done(l->reqs, TABLE_TEMP, NULL);
	for (size_t i = 0; i < l->nsrv; i++) {
		ldapc_srv_close(&l->srv[i]);
		free(l->srv[i].uri);
	}
	free((char *)l->c.basedn);
	free((char *)l->c.binddn);
	free((char *)l->c.password);
	free((char *)l->c.objectclass);
	free((char *)l->c.cafile);
	free((char *)l->c.messagestore);
	free(l);
}

int ldapc_conf_from(struct ldapc_conf *out, const struct config *cfg, char *pwbuf,
                    size_t pwsize)
{
	memset(out, 0, sizeof *out);
	out->servers = cfg->ldapserver;
	out->basedn = cfg->ldapbasedn;
	out->binddn = cfg->ldaplogin;
	out->objectclass = cfg->ldapobjectclass;
	out->cafile = cfg->ldapcafile;
	out->messagestore = cfg->ldapmessagestore;
	out->timeout_ms = (unsigned)cfg->ldaptimeout * 1000;
	out->starttls = cfg->ldaptls;
	out->defuid = (uint32_t)cfg->ldapuid;
	out->defgid = (uint32_t)cfg->ldapgid;
	out->password = cfg->ldappassword;
	if (strncmp(cfg->ldappassword, "file:", 5) != 0)
		return 0;
	FILE *f = fopen(cfg->ldappassword + 5, "r");
	if (!f || !fgets(pwbuf, (int)pwsize, f)) {
		log_err("event=ldap_password_unreadable file=%s err=%s", cfg->ldappassword + 5,
		        strerror(f ? EINVAL : errno));
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	pwbuf[strcspn(pwbuf, "\r\n")] = '\0';
	out->password = pwbuf;
	return 0;
}
