/* queue_list — the list channel (MMDF's list channel, qmail-group; doc/LISTS.md), run by the
 * queue role itself because it makes messages: for a routed slot of channel list it asks
 * lookup for the list (M_LIST_GET), stops loops (the message already carries this list's
 * mark: 5.4.6), gates the sender (membersonly: 5.7.2), and commits ONE new message from
 * LIST-owner@domain to the members with the list's header fields prepended. The list slot is
 * D_OK only after that commit is durable (at least once: a crash between the two expands the
 * list again, a duplicate at worst).
 * Moderation (qmail-secretary): a post that must wait is committed HELD, with a request to
 * the moderators (or, for sender confirmation, to the sender) carrying LIST-accept-COOKIE
 * and LIST-reject-COOKIE addresses; the cookie is an HMAC of the held copy's id under a key
 * only this role reads (spool file listkey, 0600, made on first use). Accept releases the
 * copy, reject removes it and tells the poster, and a copy held longer than listmodtimeout is
 * removed the same way.
 * Owns: the outstanding list requests and commits, the cookie key. Trusts: the list only
 * after mlist_get's checks; the message header only for the loop check; a cookie only after
 * its HMAC is checked. */
#include "ternd/queue/queue.h"
#include "ternd/queue/queue_fs.h"
#include "ternd/queue/queue_list.h"
#include "ternd/proto.h"
#include "ternd/dreq.h"
#include "ternd/role.h"
#include "mail/mlist.h"
#include "mail/dsn.h"
#include <fcntl.h>
#include "lib/fsutil.h"
#include "lib/log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIST_HDRMAX (64u * 1024)      /* header bytes the loop check reads */

struct lreq { struct hnode h; uint64_t msgid; uint32_t slot; };
static struct hmap lreqs;             /* M_LIST_GET id -> the slot waiting for it */
static uint32_t lseq;

/* messages committed together for one list action: when the last is durable, the slot that
 * asked gets its result and a held copy may be removed (reject, expiry) */
struct lgrp {
	int left, failed;
	int has_slot;
	uint64_t msgid;                    /* the slot's message */
	uint32_t slot;
	uint64_t remove;                   /* a held copy to remove when all are durable, or 0 */
	const char *done;                  /* the slot's diagnostic on success */
};
struct lexp { struct hnode h; struct lgrp *g; };
static struct hmap lexps;             /* a new message's id -> its group */
static struct hmap lgone;             /* held copies whose removal is under way */

static unsigned char lkey[MLIST_KEYLEN];
static int lkey_ok;

void queue_list_init(void) { hmap_init(&lreqs); hmap_init(&lexps); hmap_init(&lgone); }

/* the cookie key: spool/listkey, made on first use (0600, durable before any cookie leaves) */
static int list_key(void)
{
	if (lkey_ok)
		return 0;
	int dfd = queue_fs_dirfd(QD_SPOOL);
	int fd = openat(dfd, "listkey", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, lkey, sizeof lkey);
		close(fd);
		if (n == (ssize_t)sizeof lkey)
			return lkey_ok = 1, 0;
		log_err("event=listkey_bad reason=\"short file\"");
		return -1;
	}
	if (errno != ENOENT || getentropy(lkey, sizeof lkey) < 0)
		goto fail;
	fd = openat(dfd, "listkey.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	int ok = fs_write_all(fd, lkey, sizeof lkey) == 0 && fsync(fd) == 0;
	close(fd);
	if (!ok || renameat(dfd, "listkey.tmp", dfd, "listkey") < 0 || fsync(dfd) < 0)
		goto fail;
	log_info("event=listkey_created");
	return lkey_ok = 1, 0;
fail:
	log_err("event=listkey_failed error=\"%s\"", strerror(errno));
	return -1;
}

/* the slot's result, once: it was in flight */
static void list_finish(struct qmsg *m, uint32_t i, int st, const char *diag)
{
	if (!m || i >= m->env.nslots || !(m->sf[i] & SF_INFLIGHT))
		return;
	m->sf[i] &= (unsigned char)~SF_INFLIGHT;
	m->inflight--;
	queue_record_result(m, i, st, DSCOPE_RCPT, diag, NULL);
}

static int list_has(const struct mlist_addrs *a, const char *addr)
{
	for (size_t i = 0; i < a->n; i++)
		if (str_casecmp(a->v[i], addr) == 0)
			return 1;
	return 0;
}

/* the message's header (at most LIST_HDRMAX bytes) into h; 0 / -1 */
static int list_read_header(uint64_t id, struct buf *h)
{
	int fd = queue_fs_open_data(id);
	if (fd < 0)
		return -1;
	char b[4096];
	ssize_t r;
	while (h->len < LIST_HDRMAX && (r = read(fd, b, sizeof b)) > 0) {
		buf_add(h, b, (size_t)r);
		if (memmem(h->p, h->len, "\n\n", 2) || (h->len >= 1 && h->p[0] == '\n'))
			break;
	}
	close(fd);
	return 0;
}

/* LIST-owner@domain of list address a (local@domain) */
static void list_owner_addr(const char *a, struct buf *out)
{
	const char *at = strrchr(a, '@');
	buf_printf(out, "%.*s-owner%s", (int)(at - a), a, at);
}

/* the header fields the copy gets before the original's */
static void list_fields(const char *a, const struct mlist *l, struct buf *out)
{
	struct buf owner, id;
	buf_init(&owner);
	buf_init(&id);
	list_owner_addr(a, &owner);
	if (*l->listid)
		buf_printf(&id, "%s", l->listid);
	else
		for (const char *p = a; *p; p++)
			buf_addc(&id, *p == '@' ? '.' : *p);
	buf_printf(out, "Mailing-List: list %s; contact %s\n", a, owner.p);
	buf_printf(out, "List-Id: <%s>\n", id.p);
	buf_printf(out, "List-Post: <mailto:%s>\n", a);
	buf_printf(out, "List-Owner: <mailto:%s>\n", owner.p);
	buf_printf(out, "List-Help: <mailto:%s>\n", owner.p);
	buf_printf(out, "Precedence: list\n");
	buf_free(&owner);
	buf_free(&id);
}

/* write fields + the original's data into a new data file: its fd, or -1 */
static int list_write_copy(uint64_t from, const struct buf *fields, uint64_t *newid)
{
	int in = queue_fs_open_data(from);
	if (in < 0)
		return -1;
	int out = queue_fs_create_data(newid);
	int ok = out >= 0 && fs_write_all(out, fields->p, fields->len) == 0;
	char b[16384];
	ssize_t r = 0;
	while (ok && (r = read(in, b, sizeof b)) > 0)
		ok = fs_write_all(out, b, (size_t)r) == 0;
	close(in);
	if (ok && r == 0)
		return out;
	if (out >= 0) {
		close(out);
		queue_fs_discard_uncommitted(*newid);
	}
	return -1;
}

/* ---- committing groups of messages ------------------------------------------------------- */

static struct lgrp *list_group(struct qmsg *m, uint32_t i, int has_slot, const char *done)
{
	struct lgrp *g = xcalloc(1, sizeof *g);
	g->has_slot = has_slot;
	g->msgid = m ? m->env.id : 0;
	g->slot = i;
	g->done = done;
	return g;
}

/* a new message of group g: from `from` to the n addresses rcpt, its data file fd */
static void list_commit(struct lgrp *g, uint64_t newid, int fd, const char *from,
                        char *const *rcpt, size_t n, const char *origin, int held)
{
	struct qmsg *b = queue_new_msg();
	b->env.id = newid;
	b->env.arrival = queue_now();
	b->env.sender = xstrdup(from);
	b->env.kind = EK_NORMAL;
	b->env.origin = xstrdup(origin);
	b->env.held = held;
	for (size_t k = 0; k < n; k++)
		env_add_rcpt(&b->env, rcpt[k]);
	b->env.norig = n;
	struct lexp *x = xcalloc(1, sizeof *x);
	x->h.key = newid;
	x->g = g;
	g->left++;
	hmap_put(&lexps, &x->h);
	queue_commit_add(PC_LIST, b, fd, NULL, 0, NULL, g->msgid);
}

/* a new data file holding text: its fd (id in *newid), or -1 */
static int list_write_text(const struct buf *text, uint64_t *newid)
{
	int fd = queue_fs_create_data(newid);
	if (fd < 0)
		return -1;
	if (fs_write_all(fd, text->p, text->len) < 0) {
		close(fd);
		queue_fs_discard_uncommitted(*newid);
		return -1;
	}
	return fd;
}

static void list_forget_and_remove(uint64_t id)
{
	struct qmsg *h = queue_msg_get(id);
	if (!h)
		return;
	struct msg out;                      /* the scheduler never had it (held); be sure */
	msg_init(&out, M_SCHED_CTL, 0);
	msg_u64(&out, 0);
	msg_u64(&out, id);
	chan_send(queue_ch_sched, &out);
	queue_remove(h);
}

void queue_list_committed(uint64_t parent, uint64_t newid, int ok)
{
	struct lexp *x = (struct lexp *)hmap_del(&lexps, newid);
	if (!x)
		return;
	struct lgrp *g = x->g;
	free(x);
	g->failed |= !ok;
	if (--g->left > 0)
		return;
	role_crashpoint("queue:list_before_done");
	if (g->remove) {
		free(hmap_del(&lgone, g->remove));
		if (!g->failed)
			list_forget_and_remove(g->remove);
	}
	if (g->has_slot)
		list_finish(queue_msg_get(g->msgid), g->slot, g->failed ? D_TEMP : D_OK,
		            g->failed ? "4.3.0 cannot queue the list's messages" : g->done);
	free(g);
}

/* ---- expansion ---------------------------------------------------------------------------- */

/* the origin of a held copy: "list-held LIST PURPOSE SENDER" (read back by accept, reject and
 * expiry; smtp origins begin with "smtp", so no client can make one) */
static int list_held_origin(const struct qmsg *h, const char *list, char *purpose, size_t plen,
                            const char **sender)
{
	const char *o = h->env.origin ? h->env.origin : "";
	size_t ll = list ? strlen(list) : 0;
	if (strncmp(o, "list-held ", 10) != 0)
		return 0;
	o += 10;
	if (list && (strncmp(o, list, ll) != 0 || o[ll] != ' '))
		return 0;
	o = strchr(o, ' ');
	if (!o)
		return 0;
	o++;
	size_t pn = strcspn(o, " ");
	if (!o[pn] || pn >= plen)
		return 0;
	snprintf(purpose, plen, "%.*s", (int)pn, o);
	*sender = o + pn + 1;
	return 1;
}

/* VERP: one copy per member, each from LIST-owner-user=host@domain, so that a bounce names
 * the member it is about (LIST-owner-* routes to the owners like LIST-owner) */
static void list_expand_verp(struct qmsg *m, uint32_t i, const char *a, const struct mlist *l)
{
	char id[17];
	env_idstr(m->env.id, id);
	struct buf fields, origin, from;
	buf_init(&fields);
	buf_init(&origin);
	buf_init(&from);
	list_fields(a, l, &fields);
	buf_printf(&origin, "list %s of %s (verp)", a, id);
	struct lgrp *g = list_group(m, i, 1, "expanded (verp)");
	const char *at = strrchr(a, '@');
	for (size_t k = 0; k < l->members.n; k++) {
		uint64_t newid = 0;
		int fd = list_write_copy(m->env.id, &fields, &newid);
		if (fd < 0) {
			log_err("event=list_write_failed id=%s list=<%s> error=\"%s\"", id, a, strerror(errno));
			g->failed = 1;           /* the slot defers; the copies queued so far go */
			break;
		}
		const char *mem = l->members.v[k], *mat = strrchr(mem, '@');
		buf_reset(&from);
		buf_printf(&from, "%.*s-owner-%.*s=%s%s", (int)(at - a), a, (int)(mat - mem), mem,
		           mat + 1, at);
		list_commit(g, newid, fd, from.p, &l->members.v[k], 1, origin.p, 0);
	}
	log_info("event=list_expand id=%s list=<%s> members=%zu verp=yes", id, a, l->members.n);
	if (g->left == 0) {
		free(g);
		list_finish(m, i, D_TEMP, "4.3.0 cannot write the list's copies");
	}
	buf_free(&fields);
	buf_free(&origin);
	buf_free(&from);
}

/* the copy for the members; held: it waits for a moderator or its sender (purpose), who get
 * the request; else it goes at once */
static void list_expand(struct qmsg *m, uint32_t i, const char *a, const struct mlist *l,
                        const char *purpose)
{
	char id[17], nid[17], cookie[MLIST_COOKIEHEX + 1];
	env_idstr(m->env.id, id);
	if (!purpose && (l->flags & MLIST_F_VERP)) {
		list_expand_verp(m, i, a, l);
		return;
	}
	if (purpose && list_key() < 0) {
		list_finish(m, i, D_TEMP, "4.3.0 the list's cookie key cannot be read");
		return;
	}
	struct buf fields, owner, origin;
	buf_init(&fields);
	buf_init(&owner);
	buf_init(&origin);
	list_fields(a, l, &fields);
	list_owner_addr(a, &owner);
	uint64_t newid = 0;
	int fd = list_write_copy(m->env.id, &fields, &newid);
	if (fd < 0) {
		log_err("event=list_write_failed id=%s list=<%s> error=\"%s\"", id, a, strerror(errno));
		list_finish(m, i, D_TEMP, "4.3.0 cannot write the list's copy");
		goto out;
	}
	env_idstr(newid, nid);
	struct lgrp *g = list_group(m, i, 1, purpose ? "held for moderation" : "expanded");
	if (purpose)
		buf_printf(&origin, "list-held %s %s %s", a, purpose, m->env.sender);
	else
		buf_printf(&origin, "list %s of %s", a, id);
	list_commit(g, newid, fd, owner.p, l->members.v, l->members.n, origin.p, purpose != NULL);
	log_info("event=%s id=%s list=<%s> copy_id=%s members=%zu", purpose ? "list_hold" :
	         "list_expand", id, a, nid, l->members.n);
	if (!purpose)
		goto out;
	/* the request: to the moderators, or to the sender for a confirmation */
	int confirm = strcmp(purpose, "confirm") == 0;
	struct buf req;
	buf_init(&req);
	mlist_cookie(lkey, sizeof lkey, a, newid, purpose, cookie);
	const char *at = strrchr(a, '@');
	char date[64];
	dsn_date(date, sizeof date, queue_now());
	buf_printf(&req, "From: %s\nTo: ", owner.p);
	if (confirm)
		buf_printf(&req, "%s", m->env.sender);
	for (size_t k = 0; !confirm && k < l->moderators.n; k++)
		buf_printf(&req, "%s%s", k ? ",\n " : "", l->moderators.v[k]);
	buf_printf(&req, "\nSubject: %s %s\nReply-To: %.*s-accept-%s%s\nDate: %s\n"
	           "Message-ID: <%s.%s@%s>\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n"
	           "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n",
	           confirm ? "confirm your message to" : "moderate a message to", a,
	           (int)(at - a), a, cookie, at, date, nid, purpose, queue_cfg->me);
	buf_printf(&req, "%s to the list %s from <%s> waits for %s.\n\n"
	           "To send it to the list, reply to this message, or send any message to\n"
	           "    %.*s-accept-%s%s\n\nTo %s it, send any message to\n    %.*s-reject-%s%s\n\n"
	           "Without an answer it is removed after %llu hours.\n\n"
	           "------ the message follows ------\n", confirm ? "Your message" : "A message", a,
	           m->env.sender, confirm ? "your confirmation" : "a moderator's decision",
	           (int)(at - a), a, cookie, at, confirm ? "withdraw" : "reject", (int)(at - a), a,
	           cookie, at, (unsigned long long)(queue_cfg->listmodtimeout / 3600));
	uint64_t rid = 0;
	int rfd = queue_fs_create_data(&rid);
	int in = rfd >= 0 ? queue_fs_open_data(m->env.id) : -1;
	int ok = in >= 0 && fs_write_all(rfd, req.p, req.len) == 0;
	char b[16384];
	ssize_t r = 0;
	while (ok && (r = read(in, b, sizeof b)) > 0)
		ok = fs_write_all(rfd, b, (size_t)r) == 0;
	if (in >= 0)
		close(in);
	buf_free(&req);
	if (!ok || r < 0) {                  /* the held copy alone: it expires unasked */
		log_err("event=list_request_failed id=%s list=<%s> error=\"%s\"", id, a, strerror(errno));
		if (rfd >= 0) {
			close(rfd);
			queue_fs_discard_uncommitted(rid);
		}
		goto out;
	}
	char *me[1] = { m->env.sender };
	buf_reset(&origin);
	buf_printf(&origin, "list %s %s request for %s", a, purpose, nid);
	list_commit(g, rid, rfd, owner.p, confirm ? me : l->moderators.v,
	            confirm ? 1 : l->moderators.n, origin.p, 0);
out:
	buf_free(&fields);
	buf_free(&owner);
	buf_free(&origin);
}

/* the list's verdict on slot i of m */
static void list_run(struct qmsg *m, uint32_t i, const struct mlist *l)
{
	const char *a = m->env.slots[i].t.host, *sender = m->env.sender;
	char diag[600];
	struct buf h, idb;
	buf_init(&h);
	buf_init(&idb);
	int hr = list_read_header(m->env.id, &h);
	if (*l->listid)
		buf_printf(&idb, "%s", l->listid);
	else
		for (const char *p = a; *p; p++)
			buf_addc(&idb, *p == '@' ? '.' : *p);
	int allowed = !(l->flags & MLIST_F_MEMBERSONLY) || list_has(&l->members, sender) ||
	              list_has(&l->senders, sender);
	if (hr < 0)
		list_finish(m, i, D_TEMP, "4.3.0 cannot open the queued message");
	else if (mlist_loop_check(h.p ? h.p : "", h.len, a, idb.p)) {
		snprintf(diag, sizeof diag, "5.4.6 mailing list loop: this message already went "
		         "through list %s", a);
		list_finish(m, i, D_PERM, diag);
	} else if (!allowed && !(l->flags & MLIST_F_HOLDOTHERS)) {
		snprintf(diag, sizeof diag, "5.7.2 only members may post to list %s", a);
		list_finish(m, i, D_PERM, diag);
	} else if (l->members.n == 0)
		list_finish(m, i, D_OK, "list has no members");
	else if (l->flags & MLIST_F_MODERATED || !allowed)
		list_expand(m, i, a, l, "moderate");
	else if (l->flags & MLIST_F_SENDERCONFIRM) {
		if (!*sender) {
			snprintf(diag, sizeof diag, "5.7.1 list %s asks its senders to confirm; <> "
			         "cannot", a);
			list_finish(m, i, D_PERM, diag);
		} else
			list_expand(m, i, a, l, "confirm");
	} else
		list_expand(m, i, a, l, NULL);
	buf_free(&idb);
	buf_free(&h);
}

void queue_list_result(uint32_t reqid, struct msg_reader *r)
{
	struct lreq *q = (struct lreq *)hmap_del(&lreqs, reqid);
	struct mlist l;
	uint64_t verdict;
	char diag[300], why[400];
	mlist_init(&l);
	int ok = mlist_get(r, &verdict, diag, sizeof diag, &l) == 0;
	struct qmsg *m = q ? queue_msg_get(q->msgid) : NULL;
	if (!m || q->slot >= m->env.nslots || !(m->sf[q->slot] & SF_INFLIGHT))
		;                                     /* removed meanwhile, or a stray answer */
	else if (!ok)
		list_finish(m, q->slot, D_TEMP, "4.3.0 malformed list definition from lookup");
	else if (verdict == V_OK)
		list_run(m, q->slot, &l);
	else {
		snprintf(why, sizeof why, "%s list %s: %s", verdict == V_NOUSER ? "5.1.1" : "4.3.0",
		         m->env.slots[q->slot].t.host, diag);
		list_finish(m, q->slot, verdict == V_NOUSER ? D_PERM : D_TEMP, why);
	}
	mlist_free(&l);
	free(q);
}

/* ---- moderation replies, expiry ---------------------------------------------------------- */

/* tell the poster (for <>, the list's owner) that held copy h of list a went nowhere (why),
 * then remove h once the notice is durable; g: the group the notice joins (its slot's result
 * follows). Never removes h here: the tick walks the messages when it calls this. */
static int list_drop_held(struct qmsg *h, const char *a, const char *sender, const char *why,
                          struct lgrp *g)
{
	char hid[17], date[64];
	env_idstr(h->env.id, hid);
	g->remove = h->env.id;
	struct hnode *mark = xcalloc(1, sizeof *mark);
	mark->key = h->env.id;
	hmap_put(&lgone, mark);
	struct buf t, owner, origin;
	buf_init(&t);
	buf_init(&owner);
	buf_init(&origin);
	list_owner_addr(a, &owner);
	if (!*sender)
		sender = owner.p;
	dsn_date(date, sizeof date, queue_now());
	buf_printf(&t, "From: %s\nTo: %s\nSubject: your message to %s was not posted\nDate: %s\n"
	           "Message-ID: <%s.dropped@%s>\nAuto-Submitted: auto-replied\n\n"
	           "Your message to the list %s was not posted: %s.\n\n", owner.p, sender, a, date,
	           hid, queue_cfg->me, a, why);
	uint64_t nid;
	int fd = list_write_text(&t, &nid);
	int rc = 0;
	if (fd < 0) {
		free(hmap_del(&lgone, h->env.id));
		g->remove = 0;
		rc = -1;
	} else {
		char *to[1] = { (char *)sender };
		buf_printf(&origin, "list %s notice for %s", a, hid);
		list_commit(g, nid, fd, owner.p, to, 1, origin.p, 0);
	}
	buf_free(&t);
	buf_free(&owner);
	buf_free(&origin);
	return rc;
}

/* LIST-accept-COOKIE / LIST-reject-COOKIE: slot i of m */
static void list_reply(struct qmsg *m, uint32_t i, int accept)
{
	const struct target *t = &m->env.slots[i].t;
	const char *a = t->host, *sender;
	char purpose[16], id[17];
	uint64_t hid = 0;
	struct qmsg *h = NULL;
	int valid = list_key() == 0 &&
	            (mlist_cookie_check(lkey, sizeof lkey, a, "moderate", t->ext, &hid) ||
	             mlist_cookie_check(lkey, sizeof lkey, a, "confirm", t->ext, &hid));
	if (valid)
		h = queue_msg_get(hid);
	env_idstr(m->env.id, id);
	if (!valid || !h || !list_held_origin(h, a, purpose, sizeof purpose, &sender) ||
	    hmap_get(&lgone, hid)) {
		log_warn("event=list_cookie_refused id=%s list=<%s> reply=%s valid=%d", id, a,
		         accept ? "accept" : "reject", valid);
		list_finish(m, i, D_PERM, "5.7.1 this moderation address is invalid or expired, or "
		            "the message was already handled");
		return;
	}
	char hs[17];
	env_idstr(hid, hs);
	if (accept && !h->env.held) {
		list_finish(m, i, D_OK, "already accepted");
		return;
	}
	if (accept) {
		struct buf rec;
		buf_init(&rec);
		env_rec_hold(&rec, 0);
		queue_journal_add(h, &rec, 1);
		buf_free(&rec);
		queue_ctl_committed(h);          /* routed (or staged) now, as ternctl release does */
		log_info("event=list_accept id=%s list=<%s> held_id=%s by=<%s>", id, a, hs, m->env.sender);
		list_finish(m, i, D_OK, "accepted");
		return;
	}
	if (!h->env.held || h->inflight || h->routing) {
		list_finish(m, i, D_PERM, "5.7.1 the message was already accepted");
		return;
	}
	log_info("event=list_reject id=%s list=<%s> held_id=%s by=<%s>", id, a, hs, m->env.sender);
	struct lgrp *g = list_group(m, i, 1, "rejected");
	if (list_drop_held(h, a, sender, strcmp(purpose, "confirm") == 0 ? "you withdrew it" :
	                   "a moderator rejected it", g) < 0) {
		free(g);
		list_finish(m, i, D_TEMP, "4.3.0 cannot write the notice");
	}
}

void queue_list_tick(struct qmsg *m, int64_t now)
{
	char purpose[16];
	const char *sender, *o = m->env.origin ? m->env.origin : "";
	if (!m->env.held || now < m->env.arrival + (int64_t)queue_cfg->listmodtimeout ||
	    !list_held_origin(m, NULL, purpose, sizeof purpose, &sender) || hmap_get(&lgone, m->env.id))
		return;
	char list[MLIST_ADDRMAX + 1], id[17];
	snprintf(list, sizeof list, "%.*s", (int)strcspn(o + 10, " "), o + 10);
	env_idstr(m->env.id, id);
	log_info("event=list_expire held_id=%s list=<%s>", id, list);
	struct lgrp *g = list_group(NULL, 0, 0, "");
	if (list_drop_held(m, list, sender, "nobody approved it in time", g) < 0)
		free(g);
}

void queue_list_deliver(struct qmsg *m, const uint32_t *idx, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		uint32_t i = idx[k];
		const struct target *t = &m->env.slots[i].t;
		m->sf[i] |= SF_INFLIGHT;
		m->inflight++;
		if (!mlist_addr_ok(t->host, strlen(t->host))) {     /* a damaged journal's target */
			list_finish(m, i, D_PERM, "5.3.5 the list target names no list address");
			continue;
		}
		if (strcmp(t->instruction, "accept") == 0 || strcmp(t->instruction, "reject") == 0) {
			list_reply(m, i, t->instruction[0] == 'a');
			continue;
		}
		if (strcmp(t->instruction, "post") != 0) {
			list_finish(m, i, D_PERM, "5.3.5 unknown list instruction");
			continue;
		}
		if (!queue_peer_up(R_LOOKUP)) {
			list_finish(m, i, D_TEMP, "4.3.0 lookup restarting");
			continue;
		}
		struct lreq *q = xcalloc(1, sizeof *q);
		q->h.key = ++lseq;
		q->msgid = m->env.id;
		q->slot = i;
		hmap_put(&lreqs, &q->h);
		struct msg out;
		msg_init(&out, M_LIST_GET, (uint32_t)q->h.key);
		msg_str(&out, t->host);
		chan_send(queue_ch_lookup, &out);
	}
}

void queue_list_peer_lost(void)
{
	size_t b = 0;
	struct hnode *h;
	while ((h = hmap_next(&lreqs, &b, NULL))) {
		struct lreq *q = (struct lreq *)hmap_del(&lreqs, h->key);
		list_finish(queue_msg_get(q->msgid), q->slot, D_TEMP, "4.3.0 lookup restarted");
		free(q);
	}
}
