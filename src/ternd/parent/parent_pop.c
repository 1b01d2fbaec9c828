/* parent_pop — starting the POP3 worker (tern-pop3, src/helpers/pop3w.h) for a login the
 * lookup role accepted (M_POP_SPAWN), with the same (uid, gid) check as a delivery child
 * (parent_fork_allowed: never root, a role account or a privileged group; with users passwd:
 * nothing below minuid), in the user's home, over a fresh socketpair whose other end goes to
 * the smtp role (M_POP_READY). At most maxsmtpd workers live at once.
 * Unlike a delivery child, the worker is exec'd (the tern-pop3 program next to ternd): it
 * talks to the network for as long as the client likes, and a fresh address space holds
 * nothing of the parent's (the users table with every user's password hash). An exec costs
 * about a millisecond, once per login.
 * The worker runs as the user and is dumpable after its exec: the user's own processes can
 * take its descriptors (pidfd_getfd, ptrace). So it gets its own session (no terminal of
 * ours) and, as fd 2, a pipe this file reads and logs as escaped values, never the daemon's
 * log itself.
 * Owns: the list of live workers. Trusts: nothing in the request beyond what the users table
 * confirms; the smtp role never names a uid (it cannot send M_POP_SPAWN: ipc_acl.c). */
#include "ternd/parent/parent.h"
#include "ternd/parent/parent_fork.h"
#include "ternd/proto.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/msg.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct parent_pop_kid { pid_t pid; struct parent_pop_kid *next; };
static struct parent_pop_kid *parent_pop_kids;
static uint64_t parent_pop_live;

/* a worker's stderr: lines logged as one escaped value each, at most PARENT_POP_LOGMAX (the
 * user's processes can write there too: the rest is read and dropped); freed at EOF */
#define PARENT_POP_LOGMAX 1000
struct parent_pop_log {
	struct ev *ev;
	int fd;
	long pid;
	unsigned lines;                  /* logged so far */
	size_t len;                      /* of a line not yet complete in buf */
	char buf[512];
};

static void parent_pop_log_line(struct parent_pop_log *l, size_t n)
{
	char q[1100];
	if (++l->lines < PARENT_POP_LOGMAX)          /* the user's bytes: quoted and escaped */
		log_info("event=pop3_worker_log pid=%ld line=\"%s\"", l->pid,
		         log_quote(q, sizeof q, l->buf, n));
	else if (l->lines == PARENT_POP_LOGMAX)
		log_warn("event=pop3_worker_log_dropped pid=%ld reason=\"more than %d lines\"",
		         l->pid, PARENT_POP_LOGMAX);
}

static void parent_pop_log_cb(int fd, short what, void *arg)
{
	struct parent_pop_log *l = arg;
	(void)what;
	ssize_t n = read(fd, l->buf + l->len, sizeof l->buf - l->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0)
		l->len += (size_t)n;
	char *nl;
	while ((nl = memchr(l->buf, '\n', l->len))) {
		size_t k = (size_t)(nl - l->buf);
		parent_pop_log_line(l, k);
		memmove(l->buf, nl + 1, l->len - k - 1);
		l->len -= k + 1;
	}
	if (l->len == sizeof l->buf || (n <= 0 && l->len)) {   /* overlong, or the last words */
		parent_pop_log_line(l, l->len);
		l->len = 0;
	}
	if (n <= 0) {
		ev_free(l->ev);
		close(l->fd);
		free(l);
	}
}

static void parent_pop_log_watch(int fd, pid_t pid)
{
	struct parent_pop_log *l = xcalloc(1, sizeof *l);
	l->fd = fd;
	l->pid = (long)pid;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	l->ev = ev_new(fd, EV_R | EV_PERSIST, parent_pop_log_cb, l);
	ev_add(l->ev, -1);
}

static void parent_pop_ready(struct chan *smtp, uint32_t id, int fd)
{
	struct msg m;
	if (!smtp) {
		if (fd >= 0)
			close(fd);
		return;
	}
	msg_init(&m, M_POP_READY, id);
	msg_u64(&m, fd >= 0 ? 0 : 1);
	if (fd >= 0)
		msg_fd(&m, fd);
	chan_send(smtp, &m);
}

/* in the child: become the user, go home, run the worker on sock */
static void parent_pop_child(const struct config *cfg, const char *exe, uint64_t uid,
                             uint64_t gid, const char *user, const char *home,
                             const char *maildir, int sock, int errfd)
{
	static char *noenv[] = { NULL };
	char tmo[24];
	if (setsid() < 0 || dup2(errfd, 2) < 0)
		_exit(111);
	if (geteuid() == 0) {
		gid_t g = (gid_t)gid;
		if (setgroups(1, &g) < 0 || setgid(g) < 0 || setuid((uid_t)uid) < 0)
			_exit(111);
	}
	if (dup2(sock, 0) < 0 || dup2(sock, 1) < 0)
		_exit(111);
	close_range(3, ~0U, 0);
	if (chdir(home) < 0) {
		static const char err[] = "-ERR [SYS/TEMP] no home directory\r\n";
		log_warn("event=pop3_no_home user=%s home=%s error=\"%s\"", user, home, strerror(errno));
		if (fs_write_all(1, err, sizeof err - 1) < 0)
			_exit(111);
		_exit(111);
	}
	snprintf(tmo, sizeof tmo, "%llu", (unsigned long long)cfg->timeoutpop3d);
	char *argv[] = { "tern-pop3", "-t", tmo, "-u", (char *)user, (char *)maildir, NULL };
	execve(exe, argv, noenv);
	static const char err[] = "-ERR [SYS/TEMP] unable to start the mailbox reader\r\n";
	log_err("event=exec_failed path=%s error=\"%s\"", exe, strerror(errno));
	if (fs_write_all(1, err, sizeof err - 1) < 0)
		_exit(111);
	_exit(111);
}

static int parent_pop_fork(const struct config *cfg, const char *exe, uint64_t uid,
                           uint64_t gid, const char *user, const char *home,
                           const char *maildir)
{
	int sv[2], ep[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_err("event=pop3_spawn_failed error=\"%s\"", strerror(errno));
		return -1;
	}
	if (pipe2(ep, O_CLOEXEC) < 0) {
		log_err("event=pop3_spawn_failed error=\"%s\"", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	pid_t pid = parent_fork();
	if (pid == 0)
		parent_pop_child(cfg, exe, uid, gid, user, home, maildir, sv[1], ep[1]);
	close(sv[1]);
	close(ep[1]);
	if (pid < 0) {
		log_err("event=pop3_spawn_failed error=\"%s\"", strerror(errno));
		close(sv[0]);
		close(ep[0]);
		return -1;
	}
	parent_pop_log_watch(ep[0], pid);
	struct parent_pop_kid *k = xcalloc(1, sizeof *k);
	k->pid = pid;
	k->next = parent_pop_kids;
	parent_pop_kids = k;
	parent_pop_live++;
	log_info("event=pop3_worker pid=%ld user=%s uid=%llu gid=%llu", (long)pid, user,
	         (unsigned long long)uid, (unsigned long long)gid);
	return sv[0];
}

void parent_pop_spawn(const struct config *cfg, const char *exe, struct chan *smtp,
                      uint32_t id, struct msg_reader *r)
{
	const char *user = msg_get_str(r);
	uint64_t uid = msg_get_u64(r), gid = msg_get_u64(r);
	const char *home = msg_get_str(r), *maildir = msg_get_str(r);
	if (msg_done(r) < 0)
		return;                          /* the codec logs it; the session times out */
#ifdef TERN_TEST
	if (getenv("TERN_TEST_POP_DROP_SPAWN"))
		return;                          /* tests: as a malformed request */
#endif
	const char *why = geteuid() == 0 ? parent_fork_allowed(uid, gid, user) : NULL;
	if (!why && parent_pop_live >= cfg->maxsmtpd)
		why = "too many POP3 workers";
	if (!why && (*home != '/' || !*maildir))
		why = "home is not an absolute path";
	if (why) {
		char q[128];
		log_err("event=fork_refused kind=pop3 uid=%llu gid=%llu user=\"%s\" reason=\"%s\"",
		        (unsigned long long)uid, (unsigned long long)gid,
		        log_quote(q, sizeof q, user, strlen(user)), why);
		parent_pop_ready(smtp, id, -1);
		return;
	}
	parent_pop_ready(smtp, id, parent_pop_fork(cfg, exe, uid, gid, user, home, maildir));
}

int parent_pop_reaped(pid_t pid)
{
	for (struct parent_pop_kid **kp = &parent_pop_kids; *kp; kp = &(*kp)->next)
		if ((*kp)->pid == pid) {
			struct parent_pop_kid *k = *kp;
			*kp = k->next;
			free(k);
			parent_pop_live--;
			return 1;
		}
	return 0;
}
