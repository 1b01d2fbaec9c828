/* lookup_pop — see lookup_pop.h. Owns nothing beyond the answer in hand (the throttle and
 * the pop-before-smtp table are lookup_auth.c's). Trusts: nothing in M_POP_LOGIN (it comes
 * from the network-facing smtp role; lookup.c checks the whole payload first); the users
 * table for the account; a directory user's uid, gid and mailMessageStore only once checked
 * here (and by the parent). The smtp role never learns the uid: the parent gets it from here and
 * checks it again (parent_fork.c). */
#include "ternd/lookup/lookup_pop.h"
#include "ternd/lookup/lookup_auth.h"
#include "ternd/proto.h"
#include "lib/log.h"
#include <string.h>
#include <unistd.h>

const char *lookup_pop_maildir(const struct config *cfg)
{
	const char *a = cfg->aliasempty;
	size_t n = a ? strlen(a) : 0;
	if (n >= 2 && a[n - 1] == '/' && (a[0] == '/' || a[0] == '.') && !strchr(a, '\n') &&
	    !strchr(a, ' ') && !strstr(a, "/../"))
		return a;
	return "./Maildir/";
}

static void lookup_pop_refuse(struct chan *smtp, uint32_t id, const struct auth_res *res)
{
	struct msg m;
	msg_init(&m, M_POP_RESULT, id);
	msg_u64(&m, (uint64_t)res->verdict);
	msg_u64(&m, res->delay_ms);
	msg_u64(&m, (uint64_t)res->close);
	chan_send(smtp, &m);
}

/* a directory user's mailbox and ids, before the parent is asked (it checks the pair again):
 * NULL, or why it cannot be served */
const char *lookup_pop_dircheck(const struct auth_res *res, uint64_t myuid, uint64_t mygid)
{
	const char *m = res->maildir;
	size_t n = strlen(m);
	if (res->user.uid == 0 || res->user.gid == 0)
		return "no qmailUID/qmailGID (nor ldapuid/ldapgid), or 0";
	if (res->user.uid == myuid || res->user.gid == mygid)
		return "the uid or gid of a role account";
	if (n < 2 || m[0] != '/' || m[n - 1] != '/')
		return "mailMessageStore is not an absolute Maildir path ending in /";
	if (strstr(m, "/../") || strchr(m, '\n') || strchr(m, ' '))
		return "mailMessageStore holds /../, a blank or a newline";
	if (res->user.home[0] != '/')
		return "no absolute home (homeDirectory or mailMessageStore)";
	return NULL;
}

void lookup_pop_answer(const struct config *cfg, struct chan *smtp, struct chan *parent,
                       uint32_t id, const struct auth_req *q, const struct auth_res *res)
{
	static struct auth_res t;            /* holds a users_result: not on the stack */
	const char *why = NULL;
	if (res->verdict == AUTH_OK && !parent) {
		log_warn("event=pop3_no_parent ip=%s login=%s", q->ip, res->login);
		why = "no parent";
	} else if (res->verdict == AUTH_OK && res->directory) {
		why = lookup_pop_dircheck(res, (uint64_t)getuid(), (uint64_t)getgid());
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
		lookup_pop_refuse(smtp, id, res);
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
