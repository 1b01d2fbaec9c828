/* ipc_acl — see ipc_acl.h. The table below is derived from what each role's receive callback
 * handles (grep the switch statements in src/ternd/<role>/): a type a role does not handle
 * from a peer is not in that row. Adding a message type to proto.h means adding it to
 * ipc_acl_types and deciding its rows here (tests/unit/test_ipc_acl.c checks both). */
#include "ternd/ipc_acl.h"
#include "ternd/proto.h"
#include "lib/log.h"
#include "lib/msg.h"
#include <stdlib.h>
#include <string.h>

struct ipc_acl_type { uint32_t type; const char *name; int fd; };
struct ipc_acl_rule { enum role to, from; uint32_t type; };

/* every type of proto.h; fd = 1: a frame of this type may carry a descriptor */
#define T(t, fd) { t, #t, fd }
static const struct ipc_acl_type ipc_acl_types[] = {
	T(M_MAIL_CHECK, 0), T(M_RCPT_CHECK, 0), T(M_CHECK_RESULT, 0),
	T(M_MSG_OPEN, 0), T(M_MSG_OPENED, 1), T(M_MSG_COMMIT, 0), T(M_MSG_COMMITTED, 0),
	T(M_MSG_ABORT, 0),
	T(M_ROUTE, 0), T(M_ROUTE_RESULT, 0),
	T(M_SCHED_ADD, 0), T(M_SCHED_RUN, 0), T(M_SCHED_RESULT, 0), T(M_SCHED_FLUSH, 0),
	T(M_SCHED_CTL, 0),
	T(M_DELIVER, 1), T(M_DELIVERED, 0),
	T(M_FORK_LOCAL, 1), T(M_FORKED, 1), T(M_CHILD_EXIT, 0), T(M_FORK_PROG, 1),
	T(M_LOG_REOPEN, 0),
	T(M_MX_RESOLVE, 0), T(M_MX_RESULT, 0),
	T(M_SCHED_ETRN, 0), T(M_SCHED_ETRN_RESULT, 0),
	T(M_SCHED_SNAPSHOT, 0), T(M_SCHED_SNAPSHOT_RESULT, 0),
	T(M_Q_OP, 0), T(M_Q_OP_RESULT, 0), T(M_Q_LIST, 0), T(M_Q_LIST_RESULT, 0),
	T(M_Q_READ, 0), T(M_Q_READ_RESULT, 1),
	T(M_Q_AGENTS, 0), T(M_Q_STAGE_PUSH, 0), T(M_Q_STAGE_DONE, 0),
	T(M_MTA_TCPTO, 0), T(M_MTA_TCPTO_RESULT, 0),
	T(M_PEER_NEW, 1),
	T(M_AUTH_CHECK, 0), T(M_AUTH_RESULT, 0),
	T(M_POP_LOGIN, 0), T(M_POP_RESULT, 0), T(M_POP_SPAWN, 0), T(M_POP_READY, 1),
	T(M_EXPLAIN, 0), T(M_EXPLAIN_RESULT, 0),
	T(M_LIST_GET, 0), T(M_LIST_RESULT, 0),
};
#undef T

/* (receiver, sender, type): everything a receiver accepts; anything else is refused.
 * M_LOG_REOPEN is declared but nobody sends or handles it: no row. */
static const struct ipc_acl_rule ipc_acl_rules[] = {
	{ R_PARENT, R_LOOKUP, M_POP_SPAWN },
	{ R_PARENT, R_MDA, M_FORK_LOCAL }, { R_PARENT, R_MDA, M_FORK_PROG },

	{ R_SMTP, R_PARENT, M_PEER_NEW }, { R_SMTP, R_PARENT, M_POP_READY },
	{ R_SMTP, R_LOOKUP, M_CHECK_RESULT }, { R_SMTP, R_LOOKUP, M_AUTH_RESULT },
	{ R_SMTP, R_LOOKUP, M_POP_RESULT },
	{ R_SMTP, R_QUEUE, M_MSG_OPENED }, { R_SMTP, R_QUEUE, M_MSG_COMMITTED },
	{ R_SMTP, R_QUEUE, M_SCHED_ETRN_RESULT },

	{ R_LOOKUP, R_PARENT, M_PEER_NEW },
	{ R_LOOKUP, R_SMTP, M_MAIL_CHECK }, { R_LOOKUP, R_SMTP, M_RCPT_CHECK },
	{ R_LOOKUP, R_SMTP, M_AUTH_CHECK }, { R_LOOKUP, R_SMTP, M_POP_LOGIN },
	{ R_LOOKUP, R_QUEUE, M_ROUTE }, { R_LOOKUP, R_QUEUE, M_LIST_GET },
	{ R_LOOKUP, R_MTA, M_MX_RESOLVE },
	{ R_LOOKUP, R_CONTROL, M_EXPLAIN },

	{ R_QUEUE, R_PARENT, M_PEER_NEW },
	{ R_QUEUE, R_SMTP, M_MSG_OPEN }, { R_QUEUE, R_SMTP, M_MSG_COMMIT },
	{ R_QUEUE, R_SMTP, M_MSG_ABORT }, { R_QUEUE, R_SMTP, M_SCHED_ETRN },
	{ R_QUEUE, R_LOOKUP, M_ROUTE_RESULT }, { R_QUEUE, R_LOOKUP, M_LIST_RESULT },
	{ R_QUEUE, R_SCHED, M_SCHED_RUN }, { R_QUEUE, R_SCHED, M_SCHED_ETRN_RESULT },
	{ R_QUEUE, R_MDA, M_DELIVERED },
	{ R_QUEUE, R_MTA, M_DELIVERED },
	{ R_QUEUE, R_CONTROL, M_MSG_OPEN }, { R_QUEUE, R_CONTROL, M_MSG_COMMIT },
	{ R_QUEUE, R_CONTROL, M_MSG_ABORT }, { R_QUEUE, R_CONTROL, M_Q_OP },
	{ R_QUEUE, R_CONTROL, M_Q_LIST }, { R_QUEUE, R_CONTROL, M_Q_READ },
	{ R_QUEUE, R_CONTROL, M_Q_AGENTS }, { R_QUEUE, R_CONTROL, M_Q_STAGE_DONE },

	{ R_SCHED, R_PARENT, M_PEER_NEW },
	{ R_SCHED, R_QUEUE, M_SCHED_ADD }, { R_SCHED, R_QUEUE, M_SCHED_RESULT },
	{ R_SCHED, R_QUEUE, M_SCHED_FLUSH }, { R_SCHED, R_QUEUE, M_SCHED_CTL },
	{ R_SCHED, R_QUEUE, M_SCHED_ETRN },
	{ R_SCHED, R_CONTROL, M_SCHED_ETRN }, { R_SCHED, R_CONTROL, M_SCHED_SNAPSHOT },

	{ R_MDA, R_PARENT, M_PEER_NEW }, { R_MDA, R_PARENT, M_FORKED },
	{ R_MDA, R_PARENT, M_CHILD_EXIT },
	{ R_MDA, R_QUEUE, M_DELIVER },

	{ R_MTA, R_PARENT, M_PEER_NEW },
	{ R_MTA, R_QUEUE, M_DELIVER },
	{ R_MTA, R_LOOKUP, M_MX_RESULT },
	{ R_MTA, R_CONTROL, M_MTA_TCPTO },

	{ R_CONTROL, R_PARENT, M_PEER_NEW },
	{ R_CONTROL, R_QUEUE, M_MSG_OPENED }, { R_CONTROL, R_QUEUE, M_MSG_COMMITTED },
	{ R_CONTROL, R_QUEUE, M_Q_OP_RESULT }, { R_CONTROL, R_QUEUE, M_Q_LIST_RESULT },
	{ R_CONTROL, R_QUEUE, M_Q_READ_RESULT }, { R_CONTROL, R_QUEUE, M_Q_STAGE_PUSH },
	{ R_CONTROL, R_SCHED, M_SCHED_ETRN_RESULT }, { R_CONTROL, R_SCHED, M_SCHED_SNAPSHOT_RESULT },
	{ R_CONTROL, R_MTA, M_MTA_TCPTO_RESULT },
	{ R_CONTROL, R_LOOKUP, M_EXPLAIN_RESULT },
};

#define NELEM(a) (sizeof (a) / sizeof (a)[0])

static const struct ipc_acl_type *ipc_acl_type(uint32_t type)
{
	for (size_t i = 0; i < NELEM(ipc_acl_types); i++)
		if (ipc_acl_types[i].type == type)
			return &ipc_acl_types[i];
	return NULL;
}

const char *ipc_acl_type_name(uint32_t type)
{
	const struct ipc_acl_type *t = ipc_acl_type(type);
	return t ? t->name : NULL;
}

int ipc_acl_type_by_name(const char *name, uint32_t *type)
{
	for (size_t i = 0; i < NELEM(ipc_acl_types); i++)
		if (strcmp(ipc_acl_types[i].name, name) == 0) {
			*type = ipc_acl_types[i].type;
			return 0;
		}
	return -1;
}

int ipc_acl_allows(enum role self, enum role from, uint32_t type, int hasfd)
{
	const struct ipc_acl_type *t = ipc_acl_type(type);
	if (!t || (hasfd && !t->fd))
		return 0;
	for (size_t i = 0; i < NELEM(ipc_acl_rules); i++)
		if (ipc_acl_rules[i].to == self && ipc_acl_rules[i].from == from &&
		    ipc_acl_rules[i].type == type)
			return 1;
	return 0;
}

/* ---- the codec's filter -------------------------------------------------------------------- */

static enum role ipc_acl_self = R_NROLES;

static int ipc_acl_filter(const char *peer, uint32_t type, int hasfd)
{
	int from = role_by_name(peer);
	return from >= 0 && ipc_acl_allows(ipc_acl_self, (enum role)from, type, hasfd) ? 0 : -1;
}

void ipc_acl_install(enum role self)
{
	ipc_acl_self = self;
	chan_set_filter(ipc_acl_filter);
}

/* ---- doc/IPC.md ------------------------------------------------------------------------------ */

void ipc_acl_markdown(struct buf *out)
{
	buf_adds(out, "| receiver | sender | types it accepts (+fd: may carry a descriptor) |\n"
	              "|---|---|---|\n");
	for (size_t i = 0; i < NELEM(ipc_acl_rules);) {
		const struct ipc_acl_rule *row = &ipc_acl_rules[i];
		buf_printf(out, "| %s | %s | ", role_name(row->to), role_name(row->from));
		for (size_t k = i; i < NELEM(ipc_acl_rules) && ipc_acl_rules[i].to == row->to &&
		     ipc_acl_rules[i].from == row->from; i++) {
			const struct ipc_acl_type *t = ipc_acl_type(ipc_acl_rules[i].type);
			buf_printf(out, "%s`%s`%s", i > k ? ", " : "", t ? t->name : "?",
			           t && t->fd ? "+fd" : "");
		}
		buf_adds(out, " |\n");
	}
}

/* ---- the test build's forbidden frames ------------------------------------------------------- */

#ifdef TERN_TEST
#include <errno.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define ATK_ID 0xE71u           /* the frame id of the attack's own request */

/* m on the still blocking socket fd, before the role makes it a channel; consumes m */
static void atk_send(int fd, struct msg *m)
{
	uint32_t type = m->type;
	if (msg_write_blocking(fd, m) < 0)
		log_warn("event=evil_send_failed type=%u", type);
}

/* the next frame on fd into in (consumed by the caller); its descriptor into *fd */
static long atk_recv(int sock, struct buf *in, uint32_t *type, uint32_t *id, int *fd)
{
	int hasfd;
	long fl;
	while ((fl = msg_frame(in->p, in->len, type, id, &hasfd)) == 0) {
		char tmp[4096], cbuf[CMSG_SPACE(sizeof(int) * 4)];
		struct iovec iov = { tmp, sizeof tmp };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		                     .msg_control = cbuf, .msg_controllen = sizeof cbuf };
		ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			return -1;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
				if (*fd >= 0)
					close(*fd);
				memcpy(fd, CMSG_DATA(cm), sizeof(int));
			}
		buf_add(in, tmp, (size_t)n);
	}
	return fl;
}

/* one request on the blocking socket sock and the payload of its answer of type want into
 * r (which points into in); the descriptor of the answer into *fd. -1: no answer in 5 s. */
static int atk_ask(int sock, struct msg *m, uint32_t want, struct buf *in,
                   struct msg_reader *r, int *fd)
{
	struct timeval tv = { 5, 0 };
	uint32_t type, id;
	long fl;
	buf_reset(in);
	atk_send(sock, m);
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	while ((fl = atk_recv(sock, in, &type, &id, fd)) > 0 && (type != want || id != ATK_ID))
		buf_consume(in, (size_t)fl);
	tv.tv_sec = 0;
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	msg_reader_init(r, in->p + MSG_HDRLEN, fl > 0 ? (size_t)fl - MSG_HDRLEN : 0);
	return fl > 0 ? 0 : -1;
}

/* What can the smtp role do with the data file the queue opens for it? Write it, never read
 * it back (doc/IPC.md), and never commit it past the queue's stage agents (a stage is
 * control's to give, for QP QCREA). Logs what it could do. */
static void atk_data_fd(int qfd)
{
	struct msg m;
	struct msg_reader r;
	struct buf in;
	int fd = -1, nofd = -1;
	buf_init(&in);
	msg_init(&m, M_MSG_OPEN, ATK_ID);
	int ok = atk_ask(qfd, &m, M_MSG_OPENED, &in, &r, &fd) == 0;
	uint64_t status = msg_get_u64(&r), msgid = msg_get_u64(&r);
	if (!ok || msg_done(&r) < 0 || status != 0 || fd < 0) {
		log_warn("event=evil_data_fd error=\"no data descriptor\"");
	} else {
		char c = 0;
		ssize_t w = write(fd, "x", 1);
		ssize_t rd = pread(fd, &c, 1, 0);
		log_warn("event=evil_data_fd write=%zd read=%zd read_errno=%d", w, rd, rd < 0 ? errno : 0);
		msg_init(&m, M_MSG_COMMIT, ATK_ID);
		msg_u64(&m, msgid); msg_str(&m, ""); msg_u64(&m, 1); msg_str(&m, "postmaster@localhost");
		msg_str(&m, "evil"); msg_u64(&m, 1); msg_u64(&m, 999);
		ok = atk_ask(qfd, &m, M_MSG_COMMITTED, &in, &r, &nofd) == 0;
		status = msg_get_u64(&r);
		log_warn("event=evil_staged_commit status=%llu", ok ? (unsigned long long)status : 0ULL);
	}
	if (fd >= 0)
		close(fd);
	if (nofd >= 0)
		close(nofd);
	buf_free(&in);
}

/* a well-formed payload for the types that would hurt most; victim: a queued message */
static void atk_payload(struct msg *m, uint32_t type, uint64_t victim)
{
	switch (type) {
	case M_Q_OP:              /* ternctl remove all: delete every message, no bounce */
		msg_u64(m, QOP_REMOVE); msg_u64(m, 0); msg_str(m, ""); msg_str(m, "");
		break;
	case M_Q_READ: msg_u64(m, victim); break;
	case M_SCHED_CTL: msg_u64(m, 0); msg_u64(m, victim); break;
	case M_Q_STAGE_DONE: msg_u64(m, victim); msg_u64(m, 0); msg_u64(m, SV_GONE); break;
	case M_DELIVERED:         /* slot 0 of the victim "delivered" (ternd/dreq.h) */
		msg_u64(m, 1); msg_u64(m, victim); msg_u64(m, 1);
		msg_u64(m, 0); msg_u64(m, D_OK); msg_u64(m, 0); msg_str(m, "evil"); msg_str(m, "");
		break;
	case M_ROUTE: msg_str(m, "postmaster@localhost"); msg_str(m, ""); break;
	case M_MAIL_CHECK: msg_str(m, ""); break;
	case M_EXPLAIN:           /* a password oracle, outside the rate limit and the rights */
		msg_str(m, "postmaster@localhost"); msg_u64(m, EXPLAIN_DIRECTORY | EXPLAIN_PASSWORD);
		msg_str(m, "guess");
		break;
	case M_FORK_LOCAL:        /* a delivery child as anyone the attacker likes */
		msg_u64(m, 1); msg_u64(m, 65534); msg_u64(m, 65534); msg_str(m, "/");
		msg_u64(m, 2); msg_str(m, "tern-local"); msg_str(m, "-c");
		break;
	case M_POP_SPAWN:         /* a POP3 worker as anyone the attacker likes */
		msg_str(m, "root"); msg_u64(m, 0); msg_u64(m, 0); msg_str(m, "/"); msg_str(m, "/");
		break;
	default: break;
	}
}

static int atk_named(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

/* every type to one peer: refused ones well-formed where it matters, accepted ones malformed,
 * and one accepted type with a descriptor it never carries */
static void atk_peer(enum role self, enum role p, int sock, uint64_t victim)
{
	static const uint32_t unknown[] = { 0, 7, 255, 0x7fffffff };
	size_t nt = NELEM(ipc_acl_types), refused = 0, malformed = 0;
	int fdsent = 0;
	struct msg m;
	for (size_t i = 0; i < nt + NELEM(unknown); i++) {
		uint32_t type = i < nt ? ipc_acl_types[i].type : unknown[i - nt];
		const struct ipc_acl_type *t = ipc_acl_type(type);
		msg_init(&m, type, 0);
		if (!ipc_acl_allows(p, self, type, 0)) {
			atk_payload(&m, type, victim);
			if (t && t->fd)
				msg_fd(&m, dup(2));
			refused++;
		} else {
			msg_bytes(&m, "evil", 4);           /* no receiver reads a B field first */
			malformed++;
		}
		atk_send(sock, &m);
	}
	for (size_t i = 0; i < nt && !fdsent; i++)
		if (!ipc_acl_types[i].fd && ipc_acl_allows(p, self, ipc_acl_types[i].type, 0)) {
			msg_init(&m, ipc_acl_types[i].type, 0);
			msg_bytes(&m, "evil", 4);
			msg_fd(&m, dup(2));
			atk_send(sock, &m);
			refused++;
			fdsent = 1;
		}
	log_warn("event=evil_sent peer=%s refused=%zu malformed=%zu", role_name(p), refused, malformed);
}

#define ATK_JOBS 32
void ipc_acl_forge_results(struct chan *queue, uint64_t msgid)
{
	const char *on = getenv("TERN_TEST_EVIL_RESULTS");
	if (!on || !*on)
		return;
	uint64_t victim = msgid - 1;          /* the message queued just before (ids ascend) */
	for (uint64_t job = 1; job <= ATK_JOBS; job++) {
		struct msg m;
		msg_init(&m, M_DELIVERED, 0);
		msg_u64(&m, job); msg_u64(&m, victim); msg_u64(&m, 4);
		for (uint64_t idx = 0; idx < 4; idx++) {   /* the first slots, whichever are routed */
			msg_u64(&m, idx); msg_u64(&m, D_OK); msg_u64(&m, 0);
			msg_str(&m, "evil"); msg_str(&m, "");
		}
		chan_send(queue, &m);
	}
	log_warn("event=evil_results peer=queue id=%016llx n=%d", (unsigned long long)victim, ATK_JOBS);
}

void ipc_acl_attack(const struct role_ctx *ctx)
{
	const char *who = getenv("TERN_TEST_EVIL"), *v = getenv("TERN_TEST_EVIL_ID");
	if (!atk_named(who, role_name(ctx->self)))
		return;
	uint64_t victim = v ? strtoull(v, NULL, 16) : 0;
	if (ctx->self == R_SMTP && ctx->peer[R_QUEUE] >= 0)
		atk_data_fd(ctx->peer[R_QUEUE]);
	for (int p = 0; p < R_NROLES; p++)
		if (p != (int)ctx->self && ctx->peer[p] >= 0)
			atk_peer(ctx->self, (enum role)p, ctx->peer[p], victim);
}
#endif
