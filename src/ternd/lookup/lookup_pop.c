/* lookup_pop — see lookup_pop.h. Owns nothing beyond the answer in hand (the throttle and
 * the pop-before-smtp table are lookup_auth.c's). Trusts: nothing in M_POP_LOGIN (it comes
 * from the network-facing smtp role; lookup.c checks the whole payload first); the users
 * table for the account; a directory user's entry as lookup_ldap_map mapped it (the same
 * checks as for delivery; the parent checks the ids again). The smtp role never learns the uid: the parent gets it from here and
 * checks it again (parent_fork.c). */
#include "ternd/lookup/lookup_pop.h"
#include "ternd/lookup/lookup_auth.h"
#include "ternd/proto.h"
#include "mail/route.h"
#include "lib/log.h"
#include <stdio.h>
#include <string.h>

const char *lookup_pop_maildir(const struct config *cfg)
{
	const char *a = cfg->aliasempty;
	size_t n = a ? strlen(a) : 0;
	if (n >= 2 && a[n - 1] == '/' && (a[0] == '/' || a[0] == '.') && !strchr(a, '\n') &&
	    !strchr(a, ' ') && !strstr(a, "/../"))
		return a;
	return "./Maildir/";
}

static void lookup_pop_refuse(struct chan *smtp, uint32_t id, const struct auth_res *res,
                              const char *text)
{
	struct msg m;
	msg_init(&m, M_POP_RESULT, id);
	msg_u64(&m, (uint64_t)res->verdict);
	msg_u64(&m, res->delay_ms);
	msg_u64(&m, (uint64_t)res->close);
	msg_str(&m, text);
	chan_send(smtp, &m);
}

int lookup_pop_elsewhere(const struct config *cfg, const struct auth_res *res, char *text,
                         size_t size)
{
	const char *h = res->user.mailhost;
	if (route_other_node(cfg, h) != 1)
		return 0;                  /* here; or the hosts table unreadable: routing decides */
	int safe = strlen(h) < 128;
	for (const char *c = h; *c && safe; c++)
		safe = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		       (*c >= '0' && *c <= '9') || strchr(".-:[]_", *c);
	snprintf(text, size, "[SYS/PERM] your mailbox is on %s: connect there",
	         safe ? h : "another node");
	return 1;
}

/* what is POP3's own about a directory user: the entry was mapped by lookup_ldap_map as for
 * delivery (uid, gid, home, the store: lookup_authdir.c) and the parent checks the ids again;
 * POP3 needs a mailbox to serve */
const char *lookup_pop_dircheck(const struct config *cfg, const struct auth_res *res)
{
	(void)cfg;
	if (!*res->maildir)
		return "no mailMessageStore (forwards only): no mailbox to serve";
	return NULL;
}

void lookup_pop_answer(const struct config *cfg, struct chan *smtp, struct chan *parent,
                       uint32_t id, const struct auth_req *q, const struct auth_res *res)
{
	static struct auth_res t;            /* holds a users_result: not on the stack */
	const char *why = NULL;
	char text[200] = "";
	if (res->verdict == AUTH_OK && res->directory &&
	    lookup_pop_elsewhere(cfg, res, text, sizeof text)) {
		log_warn("event=pop3_refused ip=%s login=%s mailhost=%s reason=\"mailbox on another "
		         "cluster node\"", q->ip, res->login, res->user.mailhost);
		memset(&t, 0, sizeof t);
		t.verdict = AUTH_FAIL;
		lookup_pop_refuse(smtp, id, &t, text);
		return;
	}
	if (res->verdict == AUTH_OK && !parent) {
		log_warn("event=pop3_no_parent ip=%s login=%s", q->ip, res->login);
		why = "no parent";
	} else if (res->verdict == AUTH_OK && res->directory) {
		why = lookup_pop_dircheck(cfg, res);
		if (why)
			log_err("event=pop3_refused ip=%s login=%s uid=%llu gid=%llu reason=\"%s\"",
			        q->ip, res->login, (unsigned long long)res->user.uid,
			        (unsigned long long)res->user.gid, why);
	}
	if (why) {
		memset(&t, 0, sizeof t);
		t.verdict = AUTH_TEMP;
		res = &t;
	}
	if (res->verdict != AUTH_OK) {
		lookup_pop_refuse(smtp, id, res, "");
		return;
	}
	struct msg m;
	msg_init(&m, M_POP_SPAWN, id);
	msg_str(&m, res->user.user);
	msg_u64(&m, res->user.uid);
	msg_u64(&m, res->user.gid);
	msg_str(&m, res->user.home);
	msg_str(&m, res->directory ? res->maildir : lookup_pop_maildir(cfg));
	chan_send(parent, &m);
	log_info("event=pop3_login ip=%s login=%s user=%s uid=%llu mech=%s", q->ip, res->login,
	         res->user.user, (unsigned long long)res->user.uid, q->mech);
}
