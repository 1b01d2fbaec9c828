/* control_driver — test driver for tests/e2e/test_mailq2.py, test_metrics.py and
 * test_ternctl.py: runs the control role (control_main) in a child process with the
 * listeners of CONFIG (`listen mailq …`, `listen metrics …`, `listen qp …`) plus the admin
 * socket <spool>/ternctl.sock, and plays its queue, scheduler, mta and parent peers over
 * socketpairs with canned, deterministic answers (below), as proto.h says.
 *
 * usage: control_driver CONFIG        (a wall-clock limit: CONTROL_DRIVER_TIMEOUT s, 120)
 * stdin, one command a line:  close queue|scheduler|mta   close that peer's channel
 *                             hang scheduler               stop answering the scheduler's asks
 *                             quit                         SIGTERM the role, report, exit
 * stdout: "ready", then one line per request the fake peers receive
 * ("snapshot KIND CHANNEL HOST", "etrn DOMAIN", "op OP MSGID ARG1 ARG2", "list OFF LIMIT",
 * "read MSGID", "tcpto OP"), "exit N" at the end. The role logs to stderr.
 *
 * Canned data: the scheduler's clock is NOW (1000000): the snapshot of test_mailq2.c's
 * unit test; messages 0123456789abcdef (deferred, 2 recipients), 00000000000000aa (held)
 * and 00000000000000bb (a bounce) in the queue; KILL/REQUEUE/ops succeed for
 * 0123456789abcdef and "all", fail with QS_NOENT otherwise; KILL THREAD smtp example.com
 * expires 2; ETRN example.com starts 3. Trusts: its caller, the test. */
#include "ternd/control/control.h"
#include "ternd/proto.h"
#include "ternd/role.h"
#include "mail/config.h"
#include "mail/envelope.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/msg.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOW 1000000u
#define KNOWN 0x0123456789abcdefu

static pid_t child;
static struct chan *peer[R_NROLES];
static int hang_sched;
static char spool[1024];

/* ---- the scheduler ------------------------------------------------------------------------- */

static void put_thread(struct msg *m, const char *ch, const char *host, uint64_t nm, uint64_t nr,
                       uint64_t att, uint64_t oldest, uint64_t next, uint64_t infl, uint64_t state)
{
	msg_str(m, ch);
	msg_str(m, host);
	uint64_t v[] = { nm, nr, att, oldest, next, infl, state ? 1 : 4, 10, state };
	for (size_t i = 0; i < 9; i++)
		msg_u64(m, v[i]);
}

static void put_item(struct msg *m, uint64_t id, const char *sender, uint64_t idx, uint64_t next,
                     uint64_t last, uint64_t att, const char *reason, const char *diag)
{
	msg_u64(m, id);
	msg_str(m, sender);
	msg_u64(m, idx);
	msg_u64(m, 1604800);
	msg_u64(m, next);
	msg_u64(m, last);
	msg_u64(m, att);
	msg_str(m, reason);
	msg_str(m, diag);
}

static void answer_snapshot(uint32_t id, struct msg_reader *r)
{
	uint64_t kind = msg_get_u64(r);
	const char *ch = msg_get_str(r), *host = msg_get_str(r);
	printf("snapshot %" PRIu64 " %s %s%s\n", kind, *ch ? ch : "-", *host ? host : "-",
	       msg_done(r) < 0 ? " MALFORMED" : "");
	if (hang_sched)
		return;
	struct msg m;
	msg_init(&m, M_SCHED_SNAPSHOT_RESULT, id);
	uint64_t head[] = { NOW, NOW - 3723, 12, 9, 20, 15, 2, 3, 5 };
	for (size_t i = 0; i < 9; i++)
		msg_u64(&m, head[i]);
	msg_u64(&m, 2);
	msg_str(&m, "local"), msg_u64(&m, 10), msg_u64(&m, 1), msg_u64(&m, 1);
	msg_str(&m, "smtp"), msg_u64(&m, 20), msg_u64(&m, 1), msg_u64(&m, 2);
	msg_u64(&m, 3);
	put_thread(&m, "local", "", 1, 1, 0, NOW - 65, 0, 1, 0);
	put_thread(&m, "smtp", "example.com", 2, 3, 4, NOW - 151200, NOW + 300, 1, 1);
	put_thread(&m, "smtp", "a-very-long-host-name.example.org", 1, 1, 1, NOW - 40288, 0, 0, 0);
	int items = kind == 1 && strcmp(ch, "smtp") == 0 && strcmp(host, "example.com") == 0;
	msg_u64(&m, items ? 2 : 0);
	if (items) {
		put_item(&m, KNOWN, "a@b", 2, NOW + 88282, 999000, 3, "", "451 try later");
		put_item(&m, 0xfedcba9876543210u, "", 0, 0, 0, 0, "channel", "");
	}
	chan_send(peer[R_SCHED], &m);
}

static void answer_etrn(uint32_t id, struct msg_reader *r)
{
	const char *dom = msg_get_str(r);
	printf("etrn %s\n", dom);
	struct msg m;
	msg_init(&m, M_SCHED_ETRN_RESULT, id);
	msg_u64(&m, strcmp(dom, "example.com") == 0 ? 3 : 0);
	chan_send(peer[R_SCHED], &m);
}

/* ---- the queue --------------------------------------------------------------------------------- */

static void answer_op(uint32_t id, struct msg_reader *r)
{
	uint64_t op = msg_get_u64(r), msgid = msg_get_u64(r);
	const char *a1 = msg_get_str(r), *a2 = msg_get_str(r);
	printf("op %" PRIu64 " %016" PRIx64 " %s %s%s\n", op, msgid, *a1 ? a1 : "-", *a2 ? a2 : "-",
	       msg_done(r) < 0 ? " MALFORMED" : "");
	uint64_t st = QS_NOENT, count = 0;
	if (op == QOP_KILL_THREAD) {
		st = QS_OK;
		count = strcmp(a1, "smtp") == 0 && strcmp(a2, "example.com") == 0 ? 2 : 0;
	} else if (msgid == KNOWN || msgid == 0)
		st = QS_OK, count = msgid ? 1 : 3;
	struct msg m;
	msg_init(&m, M_Q_OP_RESULT, id);
	msg_u64(&m, st);
	msg_u64(&m, count);
	msg_str(&m, "");
	msg_u64(&m, 0);
	chan_send(peer[R_QUEUE], &m);
}

static void put_qmsg(struct msg *m, uint64_t id, uint64_t held, uint64_t kind, const char *sender)
{
	msg_u64(m, id);
	msg_u64(m, 0);
	msg_u64(m, 1234);
	msg_str(m, sender);
	msg_u64(m, kind);
	msg_u64(m, held);
	msg_u64(m, 0);
	msg_u64(m, id == KNOWN ? 2 : 1);
	msg_str(m, "rcpt@example.com"), msg_u64(m, SL_ROUTED), msg_u64(m, 2), msg_u64(m, NOW + 60);
	msg_str(m, "451 4.3.0 busy");
	if (id == KNOWN)
		msg_str(m, "done@example.com"), msg_u64(m, SL_DONE), msg_u64(m, 1), msg_u64(m, 0),
		msg_str(m, "");
}

static void answer_list(uint32_t id, struct msg_reader *r)
{
	uint64_t off = msg_get_u64(r), limit = msg_get_u64(r);
	static const uint64_t ids[] = { KNOWN, 0xaa, 0xbb };
	printf("list %" PRIu64 " %" PRIu64 "\n", off, limit);
	struct msg m;
	msg_init(&m, M_Q_LIST_RESULT, id);
	msg_u64(&m, 3);
	uint64_t n = off >= 3 ? 0 : 3 - off;
	if (n > limit)
		n = limit;
	if (n > 2)
		n = 2;                           /* make the client page */
	msg_u64(&m, n);
	for (uint64_t i = off; i < off + n; i++)
		put_qmsg(&m, ids[i], ids[i] == 0xaa, ids[i] == 0xbb ? EK_BOUNCE : EK_NORMAL,
		         ids[i] == 0xbb ? "" : "s@example.com");
	chan_send(peer[R_QUEUE], &m);
}

static void answer_read(uint32_t id, struct msg_reader *r)
{
	uint64_t msgid = msg_get_u64(r);
	printf("read %016" PRIx64 "\n", msgid);
	struct msg m;
	msg_init(&m, M_Q_READ_RESULT, id);
	if (msgid != KNOWN) {
		msg_u64(&m, QS_NOENT), msg_str(&m, ""), msg_u64(&m, 0), msg_u64(&m, 0);
		chan_send(peer[R_QUEUE], &m);
		return;
	}
	char path[1100];
	snprintf(path, sizeof path, "%s/message.txt", spool);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	msg_u64(&m, fd >= 0 ? QS_OK : QS_ERROR);
	msg_str(&m, "TERN-ENV 1\nI 0123456789abcdef\nT 0\nF s@example.com\n.\n");
	msg_u64(&m, 1234);
	msg_u64(&m, 0);
	if (fd >= 0)
		msg_fd(&m, fd);
	chan_send(peer[R_QUEUE], &m);
}

static void answer_tcpto(uint32_t id, struct msg_reader *r)
{
	uint64_t op = msg_get_u64(r);
	printf("tcpto %" PRIu64 "\n", op);
	struct msg m;
	msg_init(&m, M_MTA_TCPTO_RESULT, id);
	msg_u64(&m, op ? 0 : 2);
	if (!op) {
		msg_str(&m, "192.0.2.1"), msg_u64(&m, (uint64_t)time(NULL) - 100), msg_u64(&m, 3);
		msg_str(&m, "2001:db8::1"), msg_u64(&m, (uint64_t)time(NULL) - 5), msg_u64(&m, 1);
	}
	msg_u64(&m, op ? 2 : 0);
	chan_send(peer[R_MTA], &m);
}

static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd,
                    void *arg)
{
	static const struct { uint32_t type; void (*fn)(uint32_t, struct msg_reader *); } t[] = {
		{ M_SCHED_SNAPSHOT, answer_snapshot }, { M_SCHED_ETRN, answer_etrn },
		{ M_Q_OP, answer_op }, { M_Q_LIST, answer_list }, { M_Q_READ, answer_read },
		{ M_MTA_TCPTO, answer_tcpto },
	};
	if (fd >= 0)
		close(fd);
	size_t i;
	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i].type == type)
			break;
	if (i < sizeof t / sizeof t[0])
		t[i].fn(id, r);
	else
		printf("unexpected type=%u\n", type);
	fflush(stdout);
}

static void on_close(struct chan *c, void *arg) { }

/* ---- listeners and the child ------------------------------------------------------------- */

static int bind_tcp(const struct cfg_listen *l)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl = sizeof *s4;
	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, l->addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)l->port);
	} else {
		inet_pton(AF_INET6, l->addr, &s6->sin6_addr);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)l->port);
		sl = sizeof *s6;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0)
		log_fatal("event=bind_failed port=%d error=\"%s\"", l->port, strerror(errno));
	return fd;
}

static int bind_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path)
		log_fatal("event=path_too_long path=%s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0)
		log_fatal("event=bind_failed path=%s error=\"%s\"", path, strerror(errno));
	chmod(path, mode);
	return fd;
}

static void start_child(struct config *cfg)
{
	struct role_ctx ctx = { .self = R_CONTROL, .cfg = cfg };
	static const enum role roles[] = { R_PARENT, R_QUEUE, R_SCHED, R_MTA };
	static const char *names[] = { "parent", "queue", "scheduler", "mta" };
	int mine[R_NROLES];
	for (int i = 0; i < R_NROLES; i++)
		ctx.peer[i] = -1;
	for (size_t i = 0; i < 4; i++) {
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			log_fatal("event=socketpair_failed");
		ctx.peer[roles[i]] = sp[0];
		mine[roles[i]] = sp[1];
	}
	for (int i = 0; i < cfg->nlisten; i++) {
		ctx.listen_kind[ctx.nlisten] = i;
		ctx.listen[ctx.nlisten++] = strcmp(cfg->listen[i].addr, "unix") == 0 ?
			bind_unix(cfg->listen[i].path, 0666) : bind_tcp(&cfg->listen[i]);
	}
	char path[1100];
	snprintf(path, sizeof path, "%s/ternctl.sock", cfg->spool);
	ctx.listen_kind[ctx.nlisten] = -1;
	ctx.listen[ctx.nlisten++] = bind_unix(path, 0666);
	child = fork();
	if (child == 0) {
		for (size_t i = 0; i < 4; i++)
			close(mine[roles[i]]);
		log_init("control", LOG_DEBUG);
		_exit(control_main(&ctx));
	}
	for (size_t i = 0; i < 4; i++) {
		close(ctx.peer[roles[i]]);
		peer[roles[i]] = chan_new(mine[roles[i]], names[i], on_recv, on_close, NULL);
	}
	for (int i = 0; i < ctx.nlisten; i++)
		close(ctx.listen[i]);
}

static void finish(void)
{
	int st = 0;
	kill(child, SIGTERM);
	waitpid(child, &st, 0);
	printf("exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	fflush(stdout);
	exit(0);
}

static void on_stdin(int fd, short what, void *arg)
{
	static char line[256];
	static size_t len;
	ssize_t n = read(fd, line + len, sizeof line - 1 - len);
	if (n <= 0)
		finish();
	len += (size_t)n;
	char *nl;
	while ((nl = memchr(line, '\n', len))) {
		*nl = '\0';
		enum role r = strstr(line, "queue") ? R_QUEUE : strstr(line, "scheduler") ? R_SCHED : R_MTA;
		if (strcmp(line, "quit") == 0)
			finish();
		else if (strncmp(line, "close ", 6) == 0 && peer[r]) {
			chan_free(peer[r]);
			peer[r] = NULL;
		} else if (strcmp(line, "hang scheduler") == 0)
			hang_sched = 1;
		printf("did %s\n", line);
		fflush(stdout);
		len -= (size_t)(nl + 1 - line);
		memmove(line, nl + 1, len);
	}
}

static void on_alarm(int sig) { kill(child, SIGKILL); _exit(3); }

int main(int argc, char **argv)
{
	struct config cfg;
	struct cfg_errors errs = { .n = 0 };
	if (argc != 2)
		return 64;
	log_init("driver", LOG_INFO);
	if (config_load(&cfg, argv[1], &errs) < 0) {
		for (int i = 0; i < errs.n; i++)
			fprintf(stderr, "%s:%d: %s\n", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
		return 78;
	}
	snprintf(spool, sizeof spool, "%s", cfg.spool);
	setvbuf(stdout, NULL, _IOLBF, 0);         /* a request is logged before it is answered */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	const char *lim = getenv("CONTROL_DRIVER_TIMEOUT");
	alarm(lim ? (unsigned)atoi(lim) : 120);
	ev_init();                          /* the child makes its own loop in control_main */
	start_child(&cfg);
	printf("ready\n");
	fflush(stdout);
	struct ev *in = ev_new(0, EV_R | EV_PERSIST, on_stdin, NULL);
	ev_add(in, -1);
	ev_run();
	finish();
}
