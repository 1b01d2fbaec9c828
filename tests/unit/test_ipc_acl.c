/* test_ipc_acl — who may say what over IPC (src/ternd/ipc_acl.c, doc/IPC.md).
 * 1. The table against an independent copy of the policy below: for every receiving role,
 *    every sending peer and every type from 0 to well past the last one of proto.h, exactly
 *    the listed frames are accepted; a descriptor only with the types that carry one.
 * 2. Every message type proto.h declares is known to ipc_acl (name and number).
 * 3. doc/IPC.md shows the table ipc_acl_markdown() prints (run from the repository root).
 * 4. The codec: with the filter installed, a refused frame never reaches the callback and
 *    the descriptor riding with it is closed; malformed payloads reach it and are logged. */
#include "t.h"
#include "ternd/ipc_acl.c"
#include "ternd/role.c"
#include "lib/ev.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* the policy, written out independently of ipc_acl.c: changing one means changing both */
static const struct { enum role to, from; uint32_t types[10]; } spec[] = {
	{ R_PARENT, R_LOOKUP, { M_POP_SPAWN } },
	{ R_PARENT, R_MDA, { M_FORK_LOCAL, M_FORK_PROG } },
	{ R_SMTP, R_PARENT, { M_PEER_NEW, M_POP_READY } },
	{ R_SMTP, R_LOOKUP, { M_CHECK_RESULT, M_AUTH_RESULT, M_POP_RESULT } },
	{ R_SMTP, R_QUEUE, { M_MSG_OPENED, M_MSG_COMMITTED, M_SCHED_ETRN_RESULT } },
	{ R_LOOKUP, R_PARENT, { M_PEER_NEW } },
	{ R_LOOKUP, R_SMTP, { M_MAIL_CHECK, M_RCPT_CHECK, M_AUTH_CHECK, M_POP_LOGIN } },
	{ R_LOOKUP, R_QUEUE, { M_ROUTE, M_LIST_GET } },
	{ R_LOOKUP, R_MTA, { M_MX_RESOLVE } },
	{ R_LOOKUP, R_CONTROL, { M_EXPLAIN } },
	{ R_QUEUE, R_PARENT, { M_PEER_NEW } },
	{ R_QUEUE, R_SMTP, { M_MSG_OPEN, M_MSG_COMMIT, M_MSG_ABORT, M_SCHED_ETRN } },
	{ R_QUEUE, R_LOOKUP, { M_ROUTE_RESULT, M_LIST_RESULT } },
	{ R_QUEUE, R_SCHED, { M_SCHED_RUN, M_SCHED_ETRN_RESULT } },
	{ R_QUEUE, R_MDA, { M_DELIVERED } },
	{ R_QUEUE, R_MTA, { M_DELIVERED } },
	{ R_QUEUE, R_CONTROL, { M_MSG_OPEN, M_MSG_COMMIT, M_MSG_ABORT, M_Q_OP, M_Q_LIST, M_Q_READ,
	                        M_Q_AGENTS, M_Q_STAGE_DONE } },
	{ R_SCHED, R_PARENT, { M_PEER_NEW } },
	{ R_SCHED, R_QUEUE, { M_SCHED_ADD, M_SCHED_RESULT, M_SCHED_FLUSH, M_SCHED_CTL,
	                      M_SCHED_ETRN } },
	{ R_SCHED, R_CONTROL, { M_SCHED_ETRN, M_SCHED_SNAPSHOT } },
	{ R_MDA, R_PARENT, { M_PEER_NEW, M_FORKED, M_CHILD_EXIT } },
	{ R_MDA, R_QUEUE, { M_DELIVER } },
	{ R_MTA, R_PARENT, { M_PEER_NEW } },
	{ R_MTA, R_QUEUE, { M_DELIVER } },
	{ R_MTA, R_LOOKUP, { M_MX_RESULT } },
	{ R_MTA, R_CONTROL, { M_MTA_TCPTO } },
	{ R_CONTROL, R_PARENT, { M_PEER_NEW } },
	{ R_CONTROL, R_QUEUE, { M_MSG_OPENED, M_MSG_COMMITTED, M_Q_OP_RESULT, M_Q_LIST_RESULT,
	                        M_Q_READ_RESULT, M_Q_STAGE_PUSH } },
	{ R_CONTROL, R_SCHED, { M_SCHED_ETRN_RESULT, M_SCHED_SNAPSHOT_RESULT } },
	{ R_CONTROL, R_MTA, { M_MTA_TCPTO_RESULT } },
	{ R_CONTROL, R_LOOKUP, { M_EXPLAIN_RESULT } },
};
/* the types that may carry a descriptor */
static const uint32_t with_fd[] = { M_MSG_OPENED, M_DELIVER, M_FORK_LOCAL, M_FORK_PROG, M_FORKED,
                                    M_Q_READ_RESULT, M_PEER_NEW,
                                    M_POP_READY };

static int in_spec(enum role to, enum role from, uint32_t type)
{
	for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
		if (spec[i].to == to && spec[i].from == from)
			for (size_t k = 0; k < 10 && spec[i].types[k]; k++)
				if (spec[i].types[k] == type)
					return 1;
	return 0;
}

static int fd_type(uint32_t type)
{
	for (size_t i = 0; i < sizeof with_fd / sizeof with_fd[0]; i++)
		if (with_fd[i] == type)
			return 1;
	return 0;
}

static void table(void)
{
	static const uint32_t far[] = { 0x7fffffffu, 0x80000000u, 0xffffffffu, 1000, 65536 };
	int accepted = 0;
	for (int to = 0; to < R_NROLES; to++)
		for (int from = 0; from < R_NROLES; from++)
			for (uint32_t i = 0; i < 256 + sizeof far / sizeof far[0]; i++) {
				uint32_t t = i < 256 ? i : far[i - 256];
				int want = in_spec((enum role)to, (enum role)from, t);
				int got = ipc_acl_allows((enum role)to, (enum role)from, t, 0);
				int gotfd = ipc_acl_allows((enum role)to, (enum role)from, t, 1);
				if (got != want || gotfd != (want && fd_type(t)))
					fprintf(stderr, "receiver %s sender %s type %u: allows %d/%d with fd, "
					        "want %d/%d\n", role_name((enum role)to), role_name((enum role)from),
					        t, got, gotfd, want, want && fd_type(t));
				T_EQ_INT(got, want);
				T_EQ_INT(gotfd, want && fd_type(t));
				accepted += got;
			}
	int rows = 0;
	for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
		for (size_t k = 0; k < 10 && spec[i].types[k]; k++)
			rows++;
	T_EQ_INT(accepted, rows);
	T_EQ_INT(ipc_acl_allows(R_QUEUE, R_SMTP, M_Q_OP, 0), 0);    /* the attack */
	T_EQ_INT(ipc_acl_allows(R_QUEUE, R_SMTP, M_Q_READ, 0), 0);
	T_EQ_INT(ipc_acl_allows(R_PARENT, R_SMTP, M_FORK_LOCAL, 1), 0);
	T_EQ_INT(ipc_acl_allows(R_PARENT, R_MDA, M_FORK_LOCAL, 1), 1);
	T_EQ_INT(ipc_acl_allows(R_PARENT, R_SMTP, M_FORK_PROG, 1), 0);   /* the prog channel's */
	T_EQ_INT(ipc_acl_allows(R_PARENT, R_MTA, M_FORK_PROG, 1), 0);
	T_EQ_INT(ipc_acl_allows(R_PARENT, R_MDA, M_FORK_PROG, 1), 1);
}

/* every "M_NAME = N," / "M_NAME," member of enum msgtype in proto.h, numbered as C does */
static void proto_names(void)
{
	FILE *f = fopen("src/ternd/proto.h", "r");
	T_CHECK(f != NULL);
	if (!f) {
		fprintf(stderr, "run from the repository root (src/ternd/proto.h)\n");
		return;
	}
	char line[512];
	int in_enum = 0, n = 0;
	long next = 0;
	while (fgets(line, sizeof line, f)) {
		if (strstr(line, "enum msgtype {"))
			in_enum = 1;
		else if (in_enum && strstr(line, "};"))
			break;
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!in_enum || strncmp(p, "M_", 2) != 0)
			continue;
		char name[64];
		size_t k = 0;
		while ((isupper((unsigned char)p[k]) || isdigit((unsigned char)p[k]) || p[k] == '_') &&
		       k < sizeof name - 1) {
			name[k] = p[k];
			k++;
		}
		name[k] = '\0';
		char *eq = strchr(p + k, '=');
		char *comma = strchr(p + k, ',');
		if (eq && (!comma || eq < comma))
			next = strtol(eq + 1, NULL, 0);
		uint32_t t = UINT32_MAX;
		T_EQ_INT(ipc_acl_type_by_name(name, &t), 0);
		T_EQ_INT(t, next);
		T_EQ_STR(ipc_acl_type_name((uint32_t)next), name);
		next++;
		n++;
	}
	fclose(f);
	T_EQ_INT(n, (int)(sizeof ipc_acl_types / sizeof ipc_acl_types[0]));
	T_CHECK(ipc_acl_type_name(199) == NULL);
}

/* doc/IPC.md holds ipc_acl_markdown() between its markers */
static void doc(void)
{
	static const char begin[] = "<!-- ipc_acl table: generated, tests/unit/test_ipc_acl.c -->\n";
	static const char end[] = "<!-- end of ipc_acl table -->\n";
	struct buf want, doc;
	buf_init(&want);
	buf_init(&doc);
	ipc_acl_markdown(&want);
	FILE *f = fopen("doc/IPC.md", "r");
	T_CHECK(f != NULL);
	char tmp[4096];
	size_t n;
	while (f && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_add(&doc, tmp, n);
	if (f)
		fclose(f);
	const char *b = doc.p ? strstr(doc.p, begin) : NULL;
	const char *e = b ? strstr(b, end) : NULL;
	T_CHECK(b && e);
	int same = b && e && (size_t)(e - b) - strlen(begin) == want.len &&
	           memcmp(b + strlen(begin), want.p, want.len) == 0;
	T_CHECK(same);
	if (!same)
		fprintf(stderr, "doc/IPC.md must hold, between\n%sand\n%s:\n%s", begin, end, want.p);
	buf_free(&want);
	buf_free(&doc);
}

/* ---- the codec ------------------------------------------------------------------------------ */

static struct { int calls, last_type, malformed_seen; } got;

static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd,
                    void *arg)
{
	got.calls++;
	got.last_type = (int)type;
	if (fd >= 0)
		close(fd);
	if (type == M_MSG_ABORT) {           /* Q msgid: the test's last, well-formed frame */
		(void)msg_get_u64(r);
		T_EQ_INT(msg_done(r), 0);
		ev_exit();
	} else if (msg_done(r) < 0)
		got.malformed_seen++;
}

static void on_close(struct chan *c, void *arg) { ev_exit(); }

static int closed_by_receiver(int rd)
{
	char ch;
	return read(rd, &ch, 1) == 0;    /* EOF: every copy of the write end is closed */
}

static void codec(void)
{
	int sv[2], p1[2], p2[2];
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	T_EQ_INT(pipe2(p1, O_NONBLOCK), 0);
	T_EQ_INT(pipe2(p2, O_NONBLOCK), 0);
	char logname[] = "/tmp/test_ipc_acl.XXXXXX";
	int logfd = mkstemp(logname), saved = dup(2);
	unlink(logname);
	dup2(logfd, 2);
	ev_init();
	ipc_acl_install(R_QUEUE);          /* this process is the queue; sv[0]'s peer the smtp role */
	struct chan *rx = chan_new(sv[0], "smtp", on_recv, on_close, NULL);
	struct chan *tx = chan_new(sv[1], "queue", on_recv, on_close, NULL);
	struct msg m;
	msg_init(&m, M_Q_OP, 1);            /* refused, with a descriptor */
	msg_u64(&m, QOP_REMOVE); msg_u64(&m, 0); msg_str(&m, ""); msg_str(&m, "");
	msg_fd(&m, p1[1]);
	chan_send(tx, &m);
	msg_init(&m, M_MSG_COMMIT, 2);      /* accepted type, but never with a descriptor */
	msg_fd(&m, p2[1]);
	chan_send(tx, &m);
	msg_init(&m, M_Q_READ, 3);          /* refused */
	msg_u64(&m, 42);
	chan_send(tx, &m);
	msg_init(&m, M_MSG_OPEN, 4);        /* accepted, malformed payload */
	msg_bytes(&m, "x", 1);
	chan_send(tx, &m);
	msg_init(&m, M_MSG_ABORT, 5);       /* accepted */
	msg_u64(&m, 7);
	chan_send(tx, &m);
	ev_run();
	T_EQ_INT(got.calls, 2);             /* M_MSG_OPEN and M_MSG_ABORT only */
	T_EQ_INT(got.last_type, M_MSG_ABORT);
	T_EQ_INT(got.malformed_seen, 1);
	T_CHECK(closed_by_receiver(p1[0]));
	T_CHECK(closed_by_receiver(p2[0]));
	chan_free(rx);
	chan_free(tx);
	dup2(saved, 2);
	close(saved);
	char log[8192] = "";
	ssize_t n = pread(logfd, log, sizeof log - 1, 0);
	log[n > 0 ? n : 0] = '\0';
	close(logfd);
	T_CHECK(strstr(log, "event=ipc_refused peer=smtp type=110 fd=1") != NULL);
	T_CHECK(strstr(log, "event=ipc_refused peer=smtp type=12 fd=1") != NULL);
	T_CHECK(strstr(log, "event=ipc_refused peer=smtp type=114 fd=0") != NULL);
	T_CHECK(strstr(log, "event=ipc_malformed peer=smtp type=10") != NULL);
	T_CHECK(strstr(log, "type=13") == NULL);
	close(p1[0]);
	close(p2[0]);
	chan_set_filter(NULL);
}

static void run(void)
{
	table();
	proto_names();
	doc();
	codec();
}
T_MAIN(run)
