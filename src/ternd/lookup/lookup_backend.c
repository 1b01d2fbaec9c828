/* lookup_backend — the users backends behind the one asynchronous interface of
 * lookup_backend.h: the synchronous adapter over src/mail/users.c (file, cdb, passwd, any:)
 * and, in the test build only, a fake that answers later from the event loop.
 * Owns: nothing but the adapters' state. Trusts: users.c's answers. */
#include "ternd/lookup/lookup_backend.h"
#include "mail/table.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/buf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void lookup_backend_users_ask(struct lookup_backend *be, const char *local,
                                     const char *domain, lookup_backend_done done, void *arg)
{
	struct users_result r;
	users_lookup(be->priv, local, &r);
	done(arg, local, domain, &r);
}

void lookup_backend_users(struct lookup_backend *be, struct users *u)
{
	be->name = "users";
	be->ask = lookup_backend_users_ask;
	be->priv = u;
}

#ifdef TERN_TEST
struct lookup_fake_q {               /* one question the fake answers later */
	struct ev *ev;
	struct users *u;
	lookup_backend_done done;
	void *arg;
	char *domain;                    /* points into local[], after its NUL */
	char local[];
};

struct lookup_fake {
	struct users *u;
	long delay_ms;
};

static void lookup_backend_fake_fire(int fd, short what, void *arg)
{
	struct lookup_fake_q *q = arg;
	struct users_result r;
	(void)fd;
	(void)what;
	if (strncmp(q->local, "tempslow", 8) == 0) {
		memset(&r, 0, sizeof r);
		r.status = TABLE_TEMP;
		snprintf(r.diag, sizeof r.diag, "fake backend unreachable");
	} else {
		users_lookup(q->u, q->local, &r);
	}
	log_debug("event=fake_backend_answer local=%s status=%d", q->local, r.status);
	ev_free(q->ev);
	q->done(q->arg, q->local, q->domain, &r);
	free(q);
}

static void lookup_backend_fake_ask(struct lookup_backend *be, const char *local,
                                    const char *domain, lookup_backend_done done, void *arg)
{
	struct lookup_fake *f = be->priv;
	if (strncmp(local, "slow", 4) != 0 && strncmp(local, "tempslow", 8) != 0) {
		struct users_result r;
		if (strncmp(local, "tempnow", 7) == 0) {
			memset(&r, 0, sizeof r);
			r.status = TABLE_TEMP;
			snprintf(r.diag, sizeof r.diag, "fake backend refuses at once");
		} else {
			users_lookup(f->u, local, &r);
		}
		done(arg, local, domain, &r);
		return;
	}
	size_t n = strlen(local) + 1, dn = strlen(domain) + 1;
	struct lookup_fake_q *q = xmalloc(sizeof *q + n + dn);
	memcpy(q->local, local, n);
	q->domain = q->local + n;
	memcpy(q->domain, domain, dn);
	q->u = f->u;
	q->done = done;
	q->arg = arg;
	q->ev = ev_new(-1, 0, lookup_backend_fake_fire, q);
	ev_add(q->ev, f->delay_ms);
	log_debug("event=fake_backend_ask local=%s", local);
}

void lookup_backend_fake(struct lookup_backend *be, struct users *u, long delay_ms)
{
	static struct lookup_fake f;
	f.u = u;
	f.delay_ms = delay_ms;
	be->name = "fake";
	be->ask = lookup_backend_fake_ask;
	be->priv = &f;
}
#endif
