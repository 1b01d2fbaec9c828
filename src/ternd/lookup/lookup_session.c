/* lookup_session — resumable routing: a session per request walks src/mail/route.c with a
 * users hook that asks the backend (lookup_backend.h). An answer given at once (file, cdb,
 * passwd) lets the walk go on as before; a question left open makes the walk end with
 * ROUTE_PENDING and the session parks. When its last open question is answered the session
 * walks again from the start: the walk is a pure function of the answers, and the answers
 * that came later are kept in the session, so the new walk gets them at once (and may ask new
 * questions: an alias target behind a pending user). Then it replies, through the callback of
 * lookup.c. Other sessions go on meanwhile; each reply carries its request's frame id.
 * A session that replied early (a temporary failure while questions were still out) lives
 * until its last answer comes, then goes.
 * Owns: the sessions and their answers. Trusts: the backend to answer each question once. */
#include "ternd/lookup/lookup_session.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOKUP_SESSION_MAXWALKS 16   /* walks of one request before it tempfails */

struct lookup_answer {           /* an answer that came later, for the next walk */
	struct lookup_answer *next;
	struct users_result r;
	char key[];                  /* local@domain */
};

struct lookup_session {
	struct lookup_asker who;
	struct route_ctx *rc;
	struct lookup_backend *be;
	lookup_session_reply reply;
	int open;                    /* questions out to the backend */
	int walks;
	int replied;
	int walking;                 /* inside route_address(): answers only get stored */
	int asking;                  /* inside be->ask(): an answer to want_local is the caller's */
	int got;
	const char *want_local, *want_domain;
	struct users_result *want;   /* where the answer given at once goes */
	struct lookup_answer *ans;
	char rcpt[];
};

static int lookup_session_count;

int lookup_session_parked(void)
{
	return lookup_session_count;
}

static void lookup_session_free(struct lookup_session *s)
{
	while (s->ans) {
		struct lookup_answer *a = s->ans;
		s->ans = a->next;
		free(a);
	}
	free(s);
}

static void lookup_session_walk(struct lookup_session *s);

static void lookup_session_answer(void *arg, const char *local, const char *domain,
                                  const struct users_result *r)
{
	struct lookup_session *s = arg;
	s->open--;
	if (s->asking && !s->got && strcmp(local, s->want_local) == 0 &&
	    strcmp(domain, s->want_domain) == 0) {
		*s->want = *r;
		s->got = 1;
		return;
	}
	size_t ln = strlen(local), dn = strlen(domain) + 1;
	struct lookup_answer *a = xmalloc(sizeof *a + ln + 1 + dn);
	memcpy(a->key, local, ln);
	a->key[ln] = '@';
	memcpy(a->key + ln + 1, domain, dn);
	a->r = *r;
	a->next = s->ans;
	s->ans = a;
	if (s->walking || s->open > 0)
		return;                  /* the walk under way, or the last answer, resumes it */
	lookup_session_count--;
	if (s->replied)
		lookup_session_free(s);
	else
		lookup_session_walk(s);
}

/* route.c's users hook: an answer already in the session, else a question to the backend */
static int lookup_session_user(void *arg, const char *local, const char *domain,
                               struct users_result *r)
{
	struct lookup_session *s = arg;
	size_t ln = strlen(local);
	for (const struct lookup_answer *a = s->ans; a; a = a->next)
		if (strncmp(a->key, local, ln) == 0 && a->key[ln] == '@' &&
		    strcmp(a->key + ln + 1, domain) == 0) {
			*r = a->r;
			return r->status;
		}
	s->want = r;
	s->want_local = local;
	s->want_domain = domain;
	s->got = 0;
	s->asking = 1;
	s->open++;
	s->be->ask(s->be, local, domain, lookup_session_answer, s);
	s->asking = 0;
	return s->got ? r->status : ROUTE_ASKED;
}

static void lookup_session_walk(struct lookup_session *s)
{
	struct route_result res;
	route_user_fn fn = s->rc->user_fn;     /* a walk may nest (another session's answer) */
	void *fa = s->rc->user_arg;
	for (;;) {
		s->rc->user_fn = lookup_session_user;
		s->rc->user_arg = s;
		s->walking = 1;
		route_address(s->rc, s->rcpt, &res);
		s->walking = 0;
		s->rc->user_fn = fn;
		s->rc->user_arg = fa;
		if (res.verdict == ROUTE_PENDING && ++s->walks >= LOOKUP_SESSION_MAXWALKS) {
			res.verdict = ROUTE_TEMP;
			snprintf(res.diag, sizeof res.diag, "too many users backend questions");
		}
		if (res.verdict != ROUTE_PENDING || s->open > 0)
			break;
		route_result_free(&res);       /* everything answered during the walk: again */
	}
	if (res.verdict != ROUTE_PENDING) {
		s->reply(&s->who, &res);
		s->replied = 1;
	} else {
		log_debug("event=lookup_parked id=%u rcpt=%s open=%d", s->who.id, s->rcpt, s->open);
	}
	route_result_free(&res);
	if (s->open > 0)
		lookup_session_count++;
	else
		lookup_session_free(s);
}

void lookup_session_route(struct route_ctx *rc, struct lookup_backend *be,
                          const struct lookup_asker *who, const char *rcpt,
                          lookup_session_reply reply)
{
	size_t n = strlen(rcpt) + 1;
	struct lookup_session *s = xmalloc(sizeof *s + n);
	memset(s, 0, sizeof *s);
	memcpy(s->rcpt, rcpt, n);
	s->who = *who;
	s->rc = rc;
	s->be = be;
	s->reply = reply;
	lookup_session_walk(s);
}
