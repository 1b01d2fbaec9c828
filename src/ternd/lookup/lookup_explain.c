/* lookup_explain — `ternctl verify` and `ternctl ldaplookup` in the lookup role (M_EXPLAIN
 * from the control role, doc/ADMIN.md): what the directory holds for an address (lookup_ldap,
 * every qmailUser attribute tern maps; of userPassword only whether it is there: the value
 * never leaves this process) and how tern routes it — the same resumable session
 * (lookup_session.c over the installed users backend) as M_RCPT_CHECK and M_ROUTE, after the
 * badrcptto check of RCPT. The answer is text for the operator plus the verdict and the
 * directory's status (M_EXPLAIN_RESULT), sent with the request's frame id once both parts
 * are in; a control role that restarted meanwhile gets nothing (the generation check).
 * Owns: the requests in flight (a list: the session's reply names its request by a serial).
 * Trusts: the control role as far as the IPC table lets it speak (it alone may send
 * M_EXPLAIN); the directory's and the tables' values only as text — every byte outside
 * 0x20..0x7e is printed as \xHH, so nothing reaches the operator's terminal raw. */
#include "ternd/lookup/lookup_explain.h"
#include "ternd/lookup/lookup_session.h"
#include "ternd/lookup/ldapc.h"
#include "ternd/proto.h"
#include "mail/ldapprof.h"
#include "mail/table.h"
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
	struct ev *tick;             /* the route walk after the directory's answer */
	struct buf out;
	char *norm;                  /* local@domain as route_normalize gives it: the directory's key */
	char addr[];                 /* as asked: what RCPT would get */
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
	buf_printf(b, "  found by: %s\n", u->catchall ? "the @domain catch-all entry" : "the address");
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

static void explain_target(struct buf *b, size_t i, const struct route_target *t)
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
	else if (strcmp(t->channel, "local") == 0)
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
	free(e->norm);
	free(e);
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
	if (verdict == V_OK && e->where == ROUTE_REMOTE) {
		int rc = table_list_lookup(&e->cfg->rcpthosts, strrchr(e->norm, '@') + 1);
		buf_adds(b, rc == TABLE_FOUND ? "  rcpt: a remote domain in rcpthosts: accepted from "
		         "any client\n" : "  rcpt: a remote domain: accepted only from relayclients, "
		         "authenticated or pop-before-smtp clients\n");
	}
	for (size_t i = 0; res && i < res->n; i++)
		explain_target(b, i, &res->t[i]);
	struct chan *c = lookup_peer_chan(e->peer, e->gen);
	if (c) {
		struct msg m;
		msg_init(&m, M_EXPLAIN_RESULT, e->id);
		msg_u64(&m, (uint64_t)verdict);
		msg_u64(&m, (uint64_t)e->dir);
		buf_addc(b, '\0');
		msg_str(&m, b->p);
		chan_send(c, &m);
	}
	log_debug("event=explain id=%u verdict=%d directory=%d sent=%d", e->id, verdict, e->dir,
	          c != NULL);
	explain_free(e);
}

static void explain_route_done(const struct lookup_asker *who, const struct route_result *res)
{
	struct explain *e = explain_list;
	while (e && e->serial != who->id)
		e = e->next;
	if (!e)
		return;
	int v = res->verdict == ROUTE_OK ? V_OK : res->verdict == ROUTE_NOUSER ? V_NOUSER :
	        res->verdict == ROUTE_DISABLED ? V_DISABLED : V_TEMP;
	explain_finish(e, v, res->diag, res);
}

/* RCPT's order: badrcptto (the address, then its @domain), then the routing walk */
static void explain_route(struct explain *e)
{
	const char *at = strrchr(e->addr, '@');
	int rc = table_list_lookup(&e->cfg->badrcptto, e->addr);
	if (rc == TABLE_NOTFOUND && at && at[1])
		rc = table_list_lookup(&e->cfg->badrcptto, at);
	if (rc != TABLE_NOTFOUND) {
		explain_finish(e, rc == TABLE_FOUND ? V_BAD : V_TEMP,
		               rc == TABLE_FOUND ? "badrcptto" : "badrcptto table unreadable", NULL);
		return;
	}
	if (e->where == ROUTE_BAD || e->where == ROUTE_WTEMP) {
		explain_finish(e, e->where == ROUTE_BAD ? V_NOUSER : V_TEMP,
		               e->where == ROUTE_BAD ? "bad address" : "locals table unreadable", NULL);
		return;
	}
	struct lookup_asker who = { e->peer, e->gen, e->serial, M_EXPLAIN };
	lookup_session_route(e->rc, e->be, &who, e->addr, explain_route_done);
}

static void explain_tick(int fd, short what, void *arg)
{
	explain_route(arg);
}

/* the directory's answer; the walk follows from the event loop, outside ldapc's callback */
static void explain_dir_done(void *arg, int status, const struct ldapc_user *u)
{
	struct explain *e = arg;
	struct buf *b = &e->out;
	if (status == TABLE_FOUND) {
		e->dir = EXPLAIN_DIR_FOUND;
		buf_adds(b, "directory: found\n");
		explain_user(b, e, u);
	} else if (status == TABLE_NOTFOUND) {
		e->dir = EXPLAIN_DIR_NOTFOUND;
		buf_adds(b, "directory: not found\n");
	} else {
		e->dir = EXPLAIN_DIR_TEMP;
		buf_adds(b, "directory: temporary error (451 4.3.0): the directory did not answer; "
		         "the lookup role's log says why\n");
	}
	ev_add(e->tick, 0);
}

static void explain_directory(struct explain *e)
{
	if (!lookup_ldap) {
		e->dir = EXPLAIN_DIR_NONE;
		buf_adds(&e->out, "directory: no directory configured (ldapserver is not set)\n");
		explain_route(e);
		return;
	}
	if (e->where == ROUTE_BAD) {
		e->dir = EXPLAIN_DIR_NOTFOUND;
		buf_adds(&e->out, "directory: not asked (not an address)\n");
		explain_route(e);
		return;
	}
	if (ldapc_user(lookup_ldap, e->norm, explain_dir_done, e) < 0)
		explain_dir_done(e, TABLE_TEMP, NULL);
}

void lookup_explain(const struct config *cfg, struct route_ctx *rc, struct lookup_backend *be,
                    int peer, uint32_t gen, uint32_t id, const char *addr, uint64_t flags)
{
	char *local = NULL, *domain = NULL;
	size_t n = strlen(addr);
	struct explain *e = xcalloc(1, sizeof *e + n + 1);
	memcpy(e->addr, addr, n);
	e->where = route_normalize(cfg, addr, &local, &domain);
	struct buf a;
	buf_init(&a);
	buf_printf(&a, "%s@%s", local ? local : "", domain ? domain : "");
	e->norm = buf_detach(&a);
	free(local);
	free(domain);
	e->peer = peer;
	e->gen = gen;
	e->id = id;
	e->serial = ++explain_serial;
	e->flags = flags;
	e->cfg = cfg;
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
