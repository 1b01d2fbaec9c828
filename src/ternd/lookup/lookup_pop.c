/* lookup_pop — see lookup_pop.h. Owns nothing beyond the request in hand (the throttle and
 * the pop-before-smtp table are lookup_auth.c's). Trusts: nothing in M_POP_LOGIN (it comes
 * from the network-facing smtp role; the whole payload is checked first); the users table
 * for the account. The smtp role never learns the uid: the parent gets it from here and
 * checks it again (parent_fork.c). */
#include "ternd/lookup/lookup_pop.h"
#include "ternd/lookup/lookup_auth.h"
#include "ternd/proto.h"
#include "lib/log.h"
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

static void lookup_pop_refuse(struct chan *smtp, uint32_t id, const struct auth_res *res)
{
	struct msg m;
	msg_init(&m, M_POP_RESULT, id);
	msg_u64(&m, (uint64_t)res->verdict);
	msg_u64(&m, res->delay_ms);
	msg_u64(&m, (uint64_t)res->close);
	chan_send(smtp, &m);
}

void lookup_pop_login(const struct config *cfg, struct users *users, struct chan *smtp,
                      struct chan *parent, uint32_t id, struct msg_reader *r)
{
	struct auth_req q = { .service = "pop3" };
	lookup_auth_decode(r, &q);
	if (msg_done(r) < 0)
		return;                      /* dropped; the codec logs it */
	static struct auth_res res;          /* holds a users_result: not on the stack */
	memset(&res, 0, sizeof res);
	lookup_auth_check(cfg, users, &q, &res);
	explicit_bzero((char *)q.secret, strlen(q.secret));     /* in the channel's buffer */
	if (res.verdict == AUTH_OK && !parent) {
		res.verdict = AUTH_TEMP;
		log_warn("event=pop3_no_parent ip=%s login=%s", q.ip, res.login);
	}
	if (res.verdict != AUTH_OK) {
		lookup_pop_refuse(smtp, id, &res);
		return;
	}
	struct msg m;
	msg_init(&m, M_POP_SPAWN, id);
	msg_str(&m, res.user.user);
	msg_u64(&m, res.user.uid);
	msg_u64(&m, res.user.gid);
	msg_str(&m, res.user.home);
	msg_str(&m, lookup_pop_maildir(cfg));
	chan_send(parent, &m);
	log_info("event=pop3_login ip=%s login=%s user=%s uid=%llu mech=%s", q.ip, res.login,
	         res.user.user, (unsigned long long)res.user.uid, q.mech);
}
