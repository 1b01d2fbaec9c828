/* lookup_explain — `ternctl verify` and `ternctl ldaplookup` in the lookup role (M_EXPLAIN
 * from the control role, doc/ADMIN.md): what the directory holds for an address (lookup_ldap,
 * every qmailUser attribute tern maps; of userPassword only whether it is there: the value
 * never leaves this process) and how tern routes it — the same resumable session
 * (lookup_session.c over the installed users backend) as M_RCPT_CHECK and M_ROUTE, after the
 * badrcptto check of RCPT. The answer is text for the operator plus the verdict and the
 * directory's status (M_EXPLAIN_RESULT), sent with the request's frame id once both parts
 * are in; a control role that restarted meanwhile gets nothing (the generation check).
 * With EXPLAIN_UID the entry is the one whose uid is asked (ldapc_login, as a login finds
 * it) and the route walked is its mail address's. With EXPLAIN_PASSWORD the password that
 * came in the request is checked as a login checks it (lookup_authdir_password: the digest
 * formats or ldaprebind's bind) — outside the login throttle and without pop-before-smtp;
 * the control role lets only callers with change rights ask, at most once a second. The
 * password is copied once, never logged, and wiped (explicit_bzero) when the request ends;
 * the answer says only ok / wrong / no password stored / temporary.
 * Owns: the requests in flight (a list: the session's reply names its request by a serial).
 * Trusts: the control role as far as the IPC table lets it speak (it alone may send
 * M_EXPLAIN); the directory's and the tables' values only as text — every byte outside
 * 0x20..0x7e is printed as \xHH, so nothing reaches the operator's terminal raw. */
#include "ternd/lookup/lookup_explain.h"
#include "ternd/lookup/lookup_session.h"
#include "ternd/lookup/lookup_authdir.h"
#include "ternd/lookup/lookup_ldap.h"
#include "ternd/lookup/ldapc.h"
#include "ternd/proto.h"
#include "mail/ldapprof.h"
#include "mail/table.h"
#include "mail/virtual.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/msg.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct explain {
	struct explain *next;
	int peer;
	uint32_t gen, id, serial;
	uint64_t flags;
	const struct config *cfg;
	struct route_ctx *rc;
	struct lookup_backend *be;
	int dir;                     /* enum explain_dir */
	int where;                   /* enum route_where of the address */
	int pw;                      /* enum explain_pw */
	int rcpthosts;               /* a remote address: rcpthosts' answer (TABLE_*) */
	struct ev *tick;             /* the route walk after the directory's answer */
	struct buf out;
	char *secret;                /* EXPLAIN_PASSWORD: the password (wiped when freed) */
	char *norm;                  /* local@domain as route_normalize gives it: the directory's key */
	char *step;                  /* the step of the directory's walk that found the entry */
	char *addr;                  /* what RCPT would get: asked, or the -u entry's mail; NULL
	                                while a uid's entry is not in */
	char asked[];                /* as asked: the address, or with EXPLAIN_UID the uid */
};

static struct explain *explain_list;
static uint32_t explain_serial;

/* ---- text ------------------------------------------------------------------------------------ */

static void explain_val(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '\\')
			buf_printf(b, "\\x%02x", *p);
		else
			buf_addc(b, (char)*p);
}

static void explain_attr(struct buf *b, const char *name, const char *v, const char *none)
{
	buf_printf(b, "  %s: ", name);
	if (*v)
		explain_val(b, v);
	else
		buf_adds(b, none);
	buf_addc(b, '\n');
}

static void explain_num(struct buf *b, const char *name, uint64_t v)
{
	if (v)
		buf_printf(b, "  %s: %" PRIu64 "\n", name, v);
	else
		buf_printf(b, "  %s: (none)\n", name);
}

static void explain_list_attr(struct buf *b, const char *name, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		explain_attr(b, name, v[i], "\"\"");
	if (!n)
		buf_printf(b, "  %s: (none)\n", name);
}

/* ` key=value`, the value quoted when empty or holding a blank */
static void explain_kv(struct buf *b, const char *key, const char *v)
{
	int q = !*v || strchr(v, ' ');
	buf_printf(b, " %s=%s", key, q ? "\"" : "");
	explain_val(b, v);
	if (q)
		buf_addc(b, '"');
}

static void explain_user(struct buf *b, const struct explain *e, const struct ldapc_user *u)
{
	char dm[80];
	explain_attr(b, "dn", u->dn, "(none)");
	explain_attr(b, "uid", u->uid, "(none)");
	explain_attr(b, "mail", u->mail, "(none)");
	explain_num(b, "qmailUID", u->qmailuid);
	explain_num(b, "qmailGID", u->qmailgid);
	explain_attr(b, "homeDirectory", u->homedir, "(none)");
	explain_attr(b, "mailMessageStore", u->messagestore, "(none)");
	explain_attr(b, "accountStatus", u->accountstatus, "(none: active)");
	explain_list_attr(b, "deliveryMode", u->deliverymode, u->ndeliverymode);
	snprintf(dm, sizeof dm, "(none: ldapdefaultdotmode %s)", e->cfg->ldapdefaultdotmode);
	explain_attr(b, "qmailDotMode", u->dotmode, dm);
	explain_list_attr(b, "mailForwardingAddress", u->forward, u->nforward);
	explain_attr(b, "deliveryProgramPath", u->program, "(none)");
	explain_num(b, "mailQuotaSize", u->quotasize);
	explain_num(b, "mailQuotaCount", u->quotacount);
	explain_num(b, "mailSizeMax", u->sizemax);
	explain_attr(b, "mailReplyText", u->replytext, "(none)");
	explain_attr(b, "mailHost", u->mailhost, "(none)");
	buf_printf(b, "  userPassword: %s\n", *u->password ? "present" : "absent");
	buf_adds(b, "  found by: ");
	explain_val(b, e->step ? e->step : "uid");
	buf_addc(b, '\n');
}

static void explain_profile(struct buf *b, const char *enc)
{
	static const unsigned modes[] = { LDAPPROF_NOMBOX, LDAPPROF_NOFORWARD, LDAPPROF_NOPROGRAM,
	                                  LDAPPROF_REPLY };
	struct ldapprof p;
	char why[128];
	buf_adds(b, "    profile:");
	if (ldapprof_decode(enc, &p, why, sizeof why) < 0) {
		buf_adds(b, " undecodable:");
		explain_kv(b, "why", why);
	} else if (p.table) {          /* a users line's quota only (doc/LOCAL.md "Quotas") */
		buf_printf(b, " users-table quotasize=%" PRIu64 " quotacount=%" PRIu64,
		           p.quotasize, p.quotacount);
	} else {
		explain_kv(b, "store", p.store);
		explain_kv(b, "dotmode", ldapprof_dotmode_name(p.dotmode));
		for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
			if (p.mode & modes[i])
				explain_kv(b, "mode", ldapprof_mode_name(modes[i]));
		for (size_t i = 0; i < p.nforward; i++)
			explain_kv(b, "forward", p.forward[i]);
		for (size_t i = 0; i < p.nprogram; i++)
			explain_kv(b, "program", p.program[i]);
		buf_printf(b, " quotasize=%" PRIu64 " quotacount=%" PRIu64 " sizemax=%" PRIu64,
		           p.quotasize, p.quotacount, p.sizemax);
		explain_kv(b, "reply", p.reply);
	}
	ldapprof_free(&p);
	buf_addc(b, '\n');
}

static void explain_target(struct buf *b, size_t i, const struct route_target *t,
                           const struct channel_table *tab)
{
	buf_printf(b, "  target %zu:", i + 1);
	explain_kv(b, "channel", t->channel);
	explain_kv(b, "host", t->host);
	explain_kv(b, "address", t->address);
	if (*t->user) {
		explain_kv(b, "user", t->user);
		buf_printf(b, " uid=%" PRIu64 " gid=%" PRIu64, t->uid, t->gid);
		explain_kv(b, "home", t->home);
	}
	if (*t->ext)
		explain_kv(b, "ext", t->ext);
	if (*t->instruction)
		explain_kv(b, "instruction", t->instruction);
	else if (channel_is_local(tab, t->channel))
		buf_adds(b, " instruction=(default delivery)");
	buf_addc(b, '\n');
	if (*t->profile)
		explain_profile(b, t->profile);
}

/* ---- the answer ------------------------------------------------------------------------------ */

static void explain_free(struct explain *e)
{
	for (struct explain **pp = &explain_list; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	ev_free(e->tick);
	buf_free(&e->out);
	if (e->secret) {
		explicit_bzero(e->secret, strlen(e->secret));
		free(e->secret);
	}
	if (e->addr != e->asked)
		free(e->addr);
	free(e->norm);
	free(e->step);
	free(e);
}

/* M_EXPLAIN_RESULT with the text so far, then free e */
static void explain_reply(struct explain *e, int verdict)
{
	struct buf *b = &e->out;
	struct chan *c = lookup_peer_chan(e->peer, e->gen);
	if (c) {
		struct msg m;
		msg_init(&m, M_EXPLAIN_RESULT, e->id);
		msg_u64(&m, (uint64_t)verdict);
		msg_u64(&m, (uint64_t)e->dir);
		buf_addc(b, '\0');
		msg_str(&m, b->p);
		msg_u64(&m, (uint64_t)e->pw);
		chan_send(c, &m);
	}
	log_debug("event=explain id=%u verdict=%d directory=%d password=%d sent=%d", e->id,
	          verdict, e->dir, e->pw, c != NULL);
	explain_free(e);
}

/* which virtual rule takes a non-local address (route.c's route_virtual order: virtualusers,
 * then virtualdomains); nothing when neither does */
static void explain_virtual(struct buf *b, const struct config *cfg, const char *norm)
{
	const char *at = strrchr(norm, '@');
	if (!at)
		return;
	char *local = xstrndup(norm, (size_t)(at - norm)), *val = NULL, *other = NULL;
	const char *domain = at + 1;
	char prepend[VIRTUAL_MAXPREPEND];
	int v = virtual_user_find(&cfg->virtualusers, local, domain, &val);
	if (v == VIRTUAL_USER) {   /* its own entry, or the catch-all when "\1" (never a local
	                            * part) finds the same one */
		int own = virtual_user_find(&cfg->virtualusers, "\1", domain, &other) !=
		          VIRTUAL_USER || strcmp(other, val) != 0;
		buf_adds(b, "  virtual: virtualusers ");
		if (own) {
			buf_adds(b, "entry for ");
			explain_val(b, norm);
		} else {
			buf_adds(b, "catch-all @");
			explain_val(b, domain);
		}
		buf_adds(b, ": ");
		explain_val(b, val);
		buf_addc(b, '\n');
	} else if (v == VIRTUAL_NOUSER) {
		buf_adds(b, "  virtual: virtualusers lists ");
		explain_val(b, domain);
		buf_adds(b, ", not ");
		explain_val(b, norm);
		buf_addc(b, '\n');
	} else if (v == VIRTUAL_TEMP) {
		buf_adds(b, "  virtual: virtualusers could not be read\n");
	} else if ((v = virtual_domain_find(&cfg->virtualdomains, local, domain, prepend,
	                                    sizeof prepend)) == TABLE_FOUND) {
		buf_adds(b, "  virtual: virtualdomains maps ");
		explain_val(b, domain);
		buf_adds(b, " to prepend ");
		explain_val(b, prepend);
		buf_adds(b, ": local part ");
		explain_val(b, prepend);
		buf_addc(b, '-');
		explain_val(b, local);
		buf_adds(b, " (that user's .qmail files)\n");
	} else if (v == TABLE_TEMP) {
		buf_adds(b, "  virtual: virtualdomains could not be read\n");
	}
	free(val);
	free(other);
	free(local);
}

/* the verdict line, what RCPT does with a remote address, the targets; then send and free */
static void explain_finish(struct explain *e, int verdict, const char *diag,
                           const struct route_result *res)
{
	static const char *const text[] = {
		[V_OK] = "deliverable", [V_NOUSER] = "unknown (550 5.1.1 ", [V_NORELAY] = "?",
		[V_TEMP] = "temporary (451 4.3.0 ", [V_BAD] = "refused (550 5.7.1 ",
		[V_DISABLED] = "disabled (550 5.2.1 ",
	};
	struct buf *b = &e->out;
	explain_val(b, e->addr);
	buf_printf(b, ": %s", text[verdict]);
	if (verdict != V_OK) {
		explain_val(b, diag);
		buf_addc(b, ')');
	}
	buf_addc(b, '\n');
	if (e->where == ROUTE_REMOTE && e->norm)
		explain_virtual(b, e->cfg, e->norm);
	if (verdict == V_OK && e->where == ROUTE_REMOTE)
		buf_adds(b, e->rcpthosts == TABLE_FOUND ? "  rcpt: a remote domain in rcpthosts: "
		         "accepted from any client\n" : e->rcpthosts == TABLE_TEMP ? "  rcpt: a remote "
		         "domain; rcpthosts could not answer: accepted from relayclients, "
		         "authenticated or pop-before-smtp clients, 451 4.3.0 for others\n" :
		         "  rcpt: a remote domain: accepted only from relayclients, authenticated or "
		         "pop-before-smtp clients\n");
	for (size_t i = 0; res && i < res->n; i++)
		explain_target(b, i, &res->t[i], &e->cfg->channels);
	explain_reply(e, verdict);
}

/* -u UID without an address to walk: the entry is missing, has no mail, or is unknown now */
static void explain_no_address(struct explain *e)
{
	struct buf *b = &e->out;
	buf_adds(b, "uid ");
	explain_val(b, e->asked);
	buf_adds(b, e->dir == EXPLAIN_DIR_FOUND ? ": no mail address\n" :
	         e->dir == EXPLAIN_DIR_TEMP ? ": temporary (451 4.3.0 the directory did not "
	         "answer)\n" : e->dir == EXPLAIN_DIR_NONE ? ": not looked up (no directory)\n" :
	         ": not found\n");
	explain_reply(e, e->dir == EXPLAIN_DIR_TEMP ? V_TEMP : V_NOUSER);
}

/* e->addr and what routing makes of it */
static void explain_set_addr(struct explain *e, const char *addr)
{
	char *local = NULL, *domain = NULL;
	if (addr != e->asked) {
		free(e->addr == e->asked ? NULL : e->addr);
		e->addr = xstrdup(addr);
	} else {
		e->addr = e->asked;
	}
	e->where = route_normalize(e->cfg, addr, &local, &domain);
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", local ? local : "", domain ? domain : "");
	free(e->norm);
	e->norm = buf_detach(&a);
	free(local);
	free(domain);
}

static void explain_route_done(const struct lookup_asker *who, const struct route_result *res)
{
	struct explain *e = explain_list;
	while (e && e->serial != who->id)
		e = e->next;
	if (e)
		explain_finish(e, lookup_verdict(res->verdict), res->diag, res);
}

/* the routing walk (the same session as RCPT's and M_ROUTE's) */
static void explain_walk(struct explain *e)
{
	struct lookup_asker who = { e->peer, e->gen, e->serial, M_EXPLAIN };
	lookup_session_route(e->rc, e->be, &who, e->addr, explain_route_done);
}

static void explain_rcpthosts(void *arg, int rc)
{
	struct explain *e = arg;
	e->rcpthosts = rc;
	explain_walk(e);
}

/* badrcptto answered (lookup.c's RCPT check, ldap: tables included): the address's place,
 * for a remote domain rcpthosts, then the routing walk */
static void explain_listed(void *arg, int rc)
{
	struct explain *e = arg;
	const char *text;
	char *domain;
	int v = lookup_badrcptto_verdict(rc, &text);
	if (v != V_OK) {
		explain_finish(e, v, text, NULL);
		return;
	}
	e->where = lookup_rcpt_where(e->cfg, e->addr, &domain, &v, &text);
	if (v != V_OK) {
		explain_finish(e, v, text, NULL);
	} else if (e->where == ROUTE_REMOTE) {
		const char *item = domain;
		lookup_tables_ask(&e->cfg->rcpthosts, &item, 1, explain_rcpthosts, e);
	} else {
		explain_walk(e);
	}
	free(domain);
}

/* RCPT's order (lookup.c): badrcptto (the address, then its @domain), the address's place,
 * then the routing walk */
static void explain_route(struct explain *e)
{
	if (!e->addr) {
		explain_no_address(e);
		return;
	}
	lookup_listed(&e->cfg->badrcptto, e->addr, explain_listed, e);
}

static void explain_tick(int fd, short what, void *arg)
{
	explain_route(arg);
}

/* the password line (EXPLAIN_PASSWORD); the route walk follows */
static void explain_pw_line(struct explain *e, int pw, const char *why)
{
	static const char *const text[] = {
		[EXPLAIN_PW_OK] = "ok", [EXPLAIN_PW_WRONG] = "wrong",
		[EXPLAIN_PW_NONE] = "no password stored", [EXPLAIN_PW_TEMP] = "temporary",
	};
	e->pw = pw;
	buf_printf(&e->out, "password: %s%s\n", text[pw], why);
	if (e->secret)
		explicit_bzero(e->secret, strlen(e->secret));
	ev_add(e->tick, 0);
}

static void explain_pw_done(void *arg, int result)
{
	explain_pw_line(arg, result, result == EXPLAIN_PW_TEMP ?
	                " (the directory did not answer the bind)" : "");
}

/* the entry found: its lines, the -u entry's address, the password check */
static void explain_found(struct explain *e, const struct ldapc_user *u)
{
	e->dir = EXPLAIN_DIR_FOUND;
	buf_adds(&e->out, "directory: found\n");
	explain_user(&e->out, e, u);
	if (e->flags & EXPLAIN_UID && *u->mail)
		explain_set_addr(e, u->mail);
	if (e->secret)
		lookup_authdir_password(u->dn, u->password, e->secret, explain_pw_done, e);
	else
		ev_add(e->tick, 0);
}

/* the directory's answer; the walk follows from the event loop, outside ldapc's callback */
static void explain_dir_done(void *arg, int status, const struct ldapc_user *u)
{
	struct explain *e = arg;
	struct buf *b = &e->out;
	if (status == TABLE_FOUND && u) {
		explain_found(e, u);
		return;
	}
	if (status == TABLE_NOTFOUND) {
		e->dir = EXPLAIN_DIR_NOTFOUND;
		buf_adds(b, "directory: not found\n");
	} else {
		e->dir = EXPLAIN_DIR_TEMP;
		buf_adds(b, "directory: temporary error (451 4.3.0): the directory did not answer; "
		         "the lookup role's log says why\n");
	}
	if (e->secret)
		explain_pw_line(e, e->dir == EXPLAIN_DIR_TEMP ? EXPLAIN_PW_TEMP : EXPLAIN_PW_NONE,
		                e->dir == EXPLAIN_DIR_TEMP ? " (the directory did not answer)" :
		                " (no entry)");
	else
		ev_add(e->tick, 0);
}

/* the walk routing does (lookup_ldap_explain) ended: its entry and the step that found it */
static void explain_walk_done(void *arg, int status, const struct ldapc_user *u,
                              const char *step)
{
	struct explain *e = arg;
	free(e->step);
	e->step = xstrdup(step);
	explain_dir_done(e, status, u);
}

/* a uid as ldapc_login takes it: printable, no blank, no '@' (that would search by mail) */
static int explain_uid_ok(const char *uid)
{
	size_t n = strlen(uid);
	if (!n || n >= USERS_MAXLOCAL)
		return 0;
	for (const unsigned char *p = (const unsigned char *)uid; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '@')
			return 0;
	return 1;
}

static void explain_directory(struct explain *e)
{
	if (!lookup_ldap) {
		e->dir = EXPLAIN_DIR_NONE;
		buf_adds(&e->out, "directory: no directory configured (ldapserver is not set)\n");
		if (e->secret)
			buf_adds(&e->out, "password: not checked (no directory)\n");
		e->pw = e->secret ? EXPLAIN_PW_NONE : EXPLAIN_PW_NOTASKED;
		explain_route(e);
		return;
	}
	if (e->flags & EXPLAIN_UID) {
		if (explain_uid_ok(e->asked) && ldapc_login(lookup_ldap, e->asked, explain_dir_done,
		                                            e) == 0)
			return;
		if (!explain_uid_ok(e->asked)) {
			e->dir = EXPLAIN_DIR_NOTFOUND;
			buf_adds(&e->out, "directory: not asked (not a uid)\n");
			if (e->secret)
				buf_adds(&e->out, "password: not checked (no entry)\n");
			e->pw = e->secret ? EXPLAIN_PW_NONE : EXPLAIN_PW_NOTASKED;
			explain_route(e);
		} else {
			explain_dir_done(e, TABLE_TEMP, NULL);
		}
		return;
	}
	if (e->where == ROUTE_BAD) {
		e->dir = EXPLAIN_DIR_NOTFOUND;
		buf_adds(&e->out, "directory: not asked (not an address)\n");
		if (e->secret)
			buf_adds(&e->out, "password: not checked (no entry)\n");
		e->pw = e->secret ? EXPLAIN_PW_NONE : EXPLAIN_PW_NOTASKED;
		explain_route(e);
		return;
	}
	lookup_ldap_explain(lookup_ldap, e->norm, explain_walk_done, e);
}

void lookup_explain(const struct config *cfg, struct route_ctx *rc, struct lookup_backend *be,
                    int peer, uint32_t gen, uint32_t id, const char *addr, uint64_t flags,
                    const char *password)
{
	size_t n = strlen(addr);
	struct explain *e = xcalloc(1, sizeof *e + n + 1);
	memcpy(e->asked, addr, n);
	e->cfg = cfg;
	if (flags & (EXPLAIN_UID | EXPLAIN_PASSWORD))
		flags |= EXPLAIN_DIRECTORY;
	if (flags & EXPLAIN_PASSWORD)
		e->secret = xstrdup(password ? password : "");
	if (!(flags & EXPLAIN_UID))
		explain_set_addr(e, e->asked);
	e->peer = peer;
	e->gen = gen;
	e->id = id;
	e->serial = ++explain_serial;
	e->flags = flags;
	e->rc = rc;
	e->be = be;
	e->tick = ev_new(-1, 0, explain_tick, e);
	buf_init(&e->out);
	e->next = explain_list;
	explain_list = e;
	if (flags & EXPLAIN_DIRECTORY)
		explain_directory(e);
	else
		explain_route(e);
}
