/* parent — the first ternd process. Owns: the listening sockets (bound before any privilege
 * is dropped), the socketpairs between roles, starting the roles (re-exec of ternd -R ROLE),
 * restarting a role that died alone (fresh socketpairs, handed to its running peers with
 * M_PEER_NEW; all of them when the queue died), forking tern-local under a recipient's
 * uid for the mda, and running a prog channel's program (M_FORK_PROG: program, account and
 * time limit from the parent's own channel row, never from the request; parent_prog.c).
 * Trusts: nothing from the roles beyond the fork request, whose (uid, gid) it checks against
 * the users table itself (parent_fork.c); nothing inside the spool (parent_spool.c); it hands
 * on no descriptor and no variable of its own environment by accident (parent_env.c); it
 * never parses mail or network input. */
#include "ternd/parent/parent.h"
#include "mail/localargs.h"
#include "ternd/parent/parent_env.h"
#include "ternd/parent/parent_fork.h"
#include "ternd/role.h"
#include "ternd/proto.h"
#include "helpers/local.h"
#include "mail/progchan.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/fsutil.h"
#include "lib/msg.h"
#include "lib/netaddr.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

/* which roles talk to which (both directions) */
static const int edges[][2] = {
	{ R_SMTP, R_LOOKUP }, { R_SMTP, R_QUEUE }, { R_QUEUE, R_LOOKUP },
	{ R_QUEUE, R_SCHED }, { R_QUEUE, R_MDA }, { R_QUEUE, R_MTA }, { R_MTA, R_LOOKUP },
	{ R_CONTROL, R_QUEUE }, { R_CONTROL, R_SCHED }, { R_CONTROL, R_MTA },
	{ R_CONTROL, R_LOOKUP },
};
static const int started[] = { R_LOOKUP, R_QUEUE, R_SCHED, R_MDA, R_MTA, R_CONTROL, R_SMTP };
#define NSTARTED (sizeof started / sizeof started[0])

struct kid { pid_t pid; uint64_t job; struct ev *timer; struct kid *next; };

static void kid_free(struct kid *k)
{
	if (k->timer)
		ev_free(k->timer);
	free(k);
}

/* a role's life besides its pid and the parent's channel to it: its own restart timer and
 * back-off (1 s doubling to 30 s while it keeps dying; reset once it ran for a minute) */
struct life {
	int chup;                  /* ch[] is open (the role did not close its end) */
	struct ev *timer;          /* a restart of this role alone is pending */
	long backoff_ms;
	long long started_ms;
};

#define BACKOFF_MAX_FACTOR 30

static struct config *cfg;
static const char *cfgpath;
static char self_exe[PATH_MAX], queue_exe[PATH_MAX], pop3_exe[PATH_MAX];
static int debug_flag;
static int lfd[CFG_MAXLISTEN], lkind[CFG_MAXLISTEN], nl;
static pid_t pids[R_NROLES];
static struct chan *ch[R_NROLES];
static struct life life[R_NROLES];
static struct kid *kids;
static char **delivery_env;       /* built once: see parent_env.c */
static int generation, stopping, restarting, exit_code;
static struct ev *restart_ev;
static long backoff_base_ms = 1000;
#ifdef TERN_TEST
static long spawn_delay_ms;        /* a pause between fork and exec (TERN_SPAWN_DELAY_MS) */
#endif

static void restart_all(const char *why);

/* ---- listening sockets ------------------------------------------------------------------- */

static int bind_one(const struct cfg_listen *l)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (netaddr_sockaddr(l->addr, l->port, &ss, &sl) < 0)
		log_fatal("event=bad_listen addr=%s", l->addr);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		log_fatal("event=socket_failed error=\"%s\"", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0)
		log_fatal("event=listen_failed kind=%s addr=%s port=%d error=\"%s\"", l->kind, l->addr,
		          l->port, strerror(errno));
	log_info("event=listening kind=%s addr=%s port=%d", l->kind, l->addr, l->port);
	return fd;
}

/* Bind the UNIX socket `name` in the directory dirfd (shown as dir in logs). What is at name
 * must be absent or a socket (a link or a file there stops ternd); the socket is created
 * through the verified descriptor (/proc/self/fd/N/name) with its mode set by the umask at
 * bind time, so nothing is ever changed by path. */
static int bind_unix(int dirfd, const char *dir, const char *name, mode_t mode)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISSOCK(st.st_mode))
			parent_spool_refuse(dir, name, S_ISLNK(st.st_mode) ? "is a symbolic link" :
			                    "is not a socket");
		if (unlinkat(dirfd, name, 0) < 0)
			parent_spool_refuse(dir, name, strerror(errno));
	}
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if ((size_t)snprintf(sun.sun_path, sizeof sun.sun_path, "/proc/self/fd/%d/%s", dirfd, name) >=
	    sizeof sun.sun_path)
		log_fatal("event=listen_failed path=%s/%s error=\"name too long\"", dir, name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(~mode & 0777);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rc < 0 || listen(fd, 128) < 0)
		log_fatal("event=listen_failed path=%s/%s error=\"%s\"", dir, name, strerror(errno));
	log_info("event=listening kind=unix path=%s/%s", dir, name);
	return fd;
}

/* a configured socket path (listen mailq unix:PATH): its directory is the administrator's */
static int bind_unix_path(const char *path, mode_t mode)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	const char *name = slash ? slash + 1 : path;
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		log_fatal("event=listen_failed path=%s error=\"%s\"", path, strerror(errno));
	int fd = bind_unix(dfd, dir, name, mode);
	close(dfd);
	return fd;
}

/* each listener goes to the role its kind names (config_listen_kind: smtp, submission, smtps,
 * pop3 and pop3s to the smtp role; mailq, qp and metrics to the control role), and the admin
 * socket <spool>/ternctl.sock (kind -1) to the control role */
static void bind_all(int spoolfd)
{
	for (int i = 0; i < cfg->nlisten; i++) {
		const struct cfg_listen *l = &cfg->listen[i];
		lkind[nl] = i;
		lfd[nl++] = strcmp(l->addr, "unix") == 0 ? bind_unix_path(l->path, 0660) : bind_one(l);
	}
	lkind[nl] = -1;
	lfd[nl++] = bind_unix(spoolfd, cfg->spool, "ternctl.sock", 0666);
}

static int listener_for(int role, int i)
{
	int smtp = lkind[i] >= 0 &&
	           config_listen_kind(&cfg->listen[lkind[i]])->server == CFG_SERVER_SMTP;
	return role == R_SMTP ? smtp : role == R_CONTROL ? !smtp : 0;
}

/* ---- roles ------------------------------------------------------------------------------------ */

static void on_role_msg(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd, void *arg);

/* A role closed its end (it is dying): the restart waits for its exit status (reap), and
 * until then no new peer channel is handed to it. Closed here for a malformed frame: the
 * role could never be reached again, so it is killed (and restarted). Nothing may be freed
 * here: the channel is inside its own callback. */
static void on_role_close(struct chan *c, void *arg)
{
	int r = (int)(intptr_t)arg;
	life[r].chup = 0;
	log_debug("event=role_channel_closed role=%s", role_name(r));
	if (!chan_peer_closed(c) && pids[r] > 0 && !stopping) {
		log_err("event=role_channel_broken role=%s reason=\"malformed frame\"; killing it",
		        role_name(r));
		kill(pids[r], SIGKILL);
	}
}

static void keep_fd(int fd) { fcntl(fd, F_SETFD, 0); }

/* the control role is linked only once its module exists (see role.h) */
static int role_runs(int r) { return r != R_CONTROL || control_main != NULL; }

/* a role that can be handed a new peer channel now */
static int role_alive(int r) { return pids[r] > 0 && ch[r] && life[r].chup; }

/* In the child between fork and exec: libevent's handlers of the parent are still installed
 * and would write a signal meant for this child (a SIGTERM of stop_all) into the parent's
 * signal pipe. Every disposition back to the default, then the mask (blocked across fork by
 * spawn_role) emptied: a signal that arrived meanwhile now acts on this child alone. */
static void spawn_reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
#ifdef TERN_TEST
	if (spawn_delay_ms > 0)
		usleep((useconds_t)spawn_delay_ms * 1000);
#endif
}

/* fork() with every signal blocked across it, so that no handler of the parent runs in the
 * child; the child starts with default dispositions and an empty mask (spawn_reset_signals),
 * the parent gets its mask back. fork()'s value. */
pid_t parent_fork(void)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		spawn_reset_signals();
	else
		sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

/* the role's whole environment (parent_env.c): ROLE_FDS (parent=N, then peer=N for every
 * peer fd given, peerfd[r] >= 0), ROLE_LISTEN, TZ */
static char **spawn_env(int rl, const int *peerfd, int parentfd)
{
	char fds[512] = "", lst[256] = "", tmp[64];
	snprintf(fds, sizeof fds, "parent=%d", parentfd);
	keep_fd(parentfd);
	for (int r = 1; r < R_NROLES; r++)
		if (peerfd[r] >= 0) {
			keep_fd(peerfd[r]);
			snprintf(tmp, sizeof tmp, ",%s=%d", role_name(r), peerfd[r]);
			strncat(fds, tmp, sizeof fds - strlen(fds) - 1);
		}
	for (int i = 0; i < nl; i++)
		if (listener_for(rl, i)) {
			keep_fd(lfd[i]);
			snprintf(tmp, sizeof tmp, "%s%d:%d", *lst ? "," : "", lfd[i], lkind[i]);
			strncat(lst, tmp, sizeof lst - strlen(lst) - 1);
		}
	return parent_env_role(fds, lst, generation > 1);
}

/* In the child: 0 and 1 of the parent (a terminal, root's files) are no role's; 2 stays, it
 * is the log. */
static void spawn_null_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0) {
		log_err("event=exec_failed path=/dev/null error=\"%s\"", strerror(errno));
		_exit(111);
	}
	if (fd > 1)
		close(fd);
}

static pid_t spawn_role(int rl, const int *peerfd, int parentfd)
{
	pid_t pid = parent_fork();
	if (pid != 0)
		return pid;
	spawn_null_stdio();
	char **envp = spawn_env(rl, peerfd, parentfd);
	const char *argv[8];
	int a = 0;
	argv[a++] = self_exe;
	argv[a++] = "-R";
	argv[a++] = role_name(rl);
	if (cfgpath) {
		argv[a++] = "-f";
		argv[a++] = cfgpath;
	}
	if (debug_flag)
		argv[a++] = "-d";
	argv[a] = NULL;
	execve(self_exe, (char **)argv, envp);
	log_err("event=exec_failed path=%s error=\"%s\"", self_exe, strerror(errno));
	_exit(111);
}

static void make_pair(int p[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
		log_fatal("event=socketpair_failed error=\"%s\"", strerror(errno));
}

/* start role r with the peer channels in peerfd (closed here once the child has them) */
static void start_role(int r, int *peerfd)
{
	int p[2];
	make_pair(p);
	pids[r] = spawn_role(r, peerfd, p[1]);
	close(p[1]);
	for (int k = 0; k < R_NROLES; k++)
		if (peerfd[k] >= 0) {
			close(peerfd[k]);
			peerfd[k] = -1;
		}
	if (pids[r] < 0)
		log_fatal("event=fork_failed error=\"%s\"", strerror(errno));
	ch[r] = chan_new(p[0], role_name(r), on_role_msg, on_role_close, (void *)(intptr_t)r);
	life[r].chup = 1;
	life[r].started_ms = ev_now_ms();
}

static void start_all(void)
{
	size_t ne = sizeof edges / sizeof edges[0];
	int fds[R_NROLES][R_NROLES];         /* fds[a][b]: a's end of the channel to b */
	for (int a = 0; a < R_NROLES; a++)
		for (int b = 0; b < R_NROLES; b++)
			fds[a][b] = -1;
	generation++;
	for (size_t e = 0; e < ne; e++) {
		int a = edges[e][0], b = edges[e][1], p[2];
		if (!role_runs(a) || !role_runs(b))
			continue;
		make_pair(p);
		fds[a][b] = p[0];
		fds[b][a] = p[1];
	}
	for (size_t k = 0; k < NSTARTED; k++)
		if (role_runs(started[k]))
			start_role(started[k], fds[started[k]]);
	log_info("event=started generation=%d", generation);
	unsetenv("TERN_CRASHPOINT");         /* crash points fire in the first roles only */
}

/* Restart role r alone: a fresh socketpair for each edge to a peer that runs; the peer gets
 * its end over its parent channel (M_PEER_NEW), r the other at exec. A peer that is down
 * itself gets its channel to r when it starts. */
static void restart_one(int fd, short what, void *arg)
{
	int r = (int)(intptr_t)arg, peerfd[R_NROLES];
	size_t ne = sizeof edges / sizeof edges[0];
	if (stopping || restarting || pids[r] > 0)
		return;
	if (!role_alive(R_QUEUE)) {          /* dying: restart_all follows, or try again */
		ev_add(life[r].timer, backoff_base_ms);
		return;
	}
	for (int k = 0; k < R_NROLES; k++)
		peerfd[k] = -1;
	for (size_t e = 0; e < ne; e++)
		for (int side = 0; side < 2; side++) {
			int peer = edges[e][!side], p[2];
			if (edges[e][side] != r || !role_runs(peer) || !role_alive(peer))
				continue;
			make_pair(p);
			struct msg m;
			msg_init(&m, M_PEER_NEW, 0);
			msg_u64(&m, (uint64_t)r);
			msg_fd(&m, p[0]);
			chan_send(ch[peer], &m);
			peerfd[peer] = p[1];
		}
	start_role(r, peerfd);
	log_info("event=started role=%s pid=%ld", role_name(r), (long)pids[r]);
}

/* the delay before role r starts again: 1 s doubling to 30 s while it keeps dying */
static long next_backoff(int r)
{
	struct life *l = &life[r];
	if (l->backoff_ms == 0 || ev_now_ms() - l->started_ms > 60000)
		l->backoff_ms = backoff_base_ms;
	long d = l->backoff_ms, max = BACKOFF_MAX_FACTOR * backoff_base_ms;
	l->backoff_ms = d < max / 2 ? d * 2 : max;
	return d;
}

static void forget_role(int r)
{
	pids[r] = 0;
	life[r].chup = 0;
	if (ch[r]) {
		chan_free(ch[r]);
		ch[r] = NULL;
	}
	if (r == R_MDA)
		while (kids) {
			/* its delivery children report to nobody: a new mda numbers its jobs afresh,
			 * and the queue redoes their recipients (at least once, doc/QUEUE.md) */
			struct kid *k = kids;
			kids = k->next;
			if (k->timer)          /* a prog run: its time limit would go with it */
				kill(-k->pid, SIGKILL);
			kid_free(k);
		}
}

static void schedule_restart(int r, const char *why)
{
	long d = next_backoff(r);
	log_warn("event=restarting role=%s reason=\"%s\" backoff_ms=%ld", role_name(r), why, d);
	ev_add(life[r].timer, d);
}

/* Orderly: first the roles that take or hand out work (smtp stops accepting, mta and mda
 * report what they finished), then the queue, which makes those results durable. */
static void stop_all(void)
{
	static const int first[] = { R_SMTP, R_CONTROL, R_MTA, R_MDA };
	for (int r = 1; r < R_NROLES; r++)
		ev_del(life[r].timer);
	for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
		if (pids[first[i]] > 0)
			kill(pids[first[i]], SIGTERM);
	for (long long end = ev_now_ms() + 3000; ev_now_ms() < end;) {
		int alive = 0;
		for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
			if (pids[first[i]] > 0 && waitpid(pids[first[i]], NULL, WNOHANG) == 0)
				alive = 1;
			else
				pids[first[i]] = 0;
		if (!alive)
			break;
		usleep(10000);
	}
	for (int r = 1; r < R_NROLES; r++)
		if (pids[r] > 0)
			kill(pids[r], SIGTERM);
	long long deadline = ev_now_ms() + 5000;
	for (int r = 1; r < R_NROLES; r++) {
		while (pids[r] > 0) {
			int st;
			pid_t p = waitpid(pids[r], &st, WNOHANG);
			if (p == pids[r] || (p < 0 && errno == ECHILD))
				break;
			if (ev_now_ms() > deadline)
				kill(pids[r], SIGKILL);
			usleep(10000);
		}
		forget_role(r);
	}
}

static void restart_cb(int fd, short what, void *arg)
{
	restarting = 0;
	start_all();
}

/* The queue died (or SIGHUP): every role starts over after the queue's back-off; the new
 * queue recovers from the spool exactly as after a crash of the machine (doc/QUEUE.md). */
static void restart_all(const char *why)
{
	if (restarting || stopping)
		return;
	restarting = 1;
	long d = next_backoff(R_QUEUE);
	log_warn("event=restarting role=all reason=\"%s\" backoff_ms=%ld", why, d);
	stop_all();
	ev_add(restart_ev, d);
}

/* ---- forking tern-local --------------------------------------------------------------------- */

static void forked_reply(uint64_t job, int ok, int fd)
{
	struct msg out;
	msg_init(&out, M_FORKED, 0);
	msg_u64(&out, job);
	msg_u64(&out, ok ? 0 : (uint64_t)-1);
	if (fd >= 0)
		msg_fd(&out, fd);
	chan_send(ch[R_MDA], &out);
}

static void child_exec(uint64_t uid, uint64_t gid, const char *home, char **argv, int msgfd, int outfd)
{
	if (geteuid() == 0) {
		gid_t g = (gid_t)gid;
		if (setgroups(1, &g) < 0 || setgid(g) < 0 || setuid((uid_t)uid) < 0)
			_exit(111);
	}
	if (cfg->users && strncmp(cfg->users, "any:", 4) == 0)
		fs_mkdirs(home, 0700);         /* users any:DIR (development) creates homes on demand */
	if (dup2(msgfd, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0)
		_exit(111);
	/* No exec: the delivery code is linked in (src/helpers/local.h), because an exec costs
	 * about a millisecond of CPU per delivery in the dynamic loader alone (measured; see
	 * doc/ARCHITECTURE.md). Leave nothing of the parent behind: no descriptor but 0-2, no
	 * signal handler (reset by the caller before anything else: libevent's would write into
	 * the parent's signal pipe). */
	close_range(3, ~0U, 0);
	environ = delivery_env;            /* TERN_CONF, TERN_QUEUE for forwards; no secrets */
	int argc = 0;
	while (argv[argc])
		argc++;
	_exit(local_main(argc, argv));
}

/* the local deliveries the scheduler may run at once: every mda channel's concurrency */
static uint64_t local_concurrency(void)
{
	uint64_t n = 0;
	for (size_t i = 0; i < cfg->channels.n; i++)
		if (channel_role(&cfg->channels.row[i]) == CHANNEL_MDA)
			n += cfg->channels.row[i].concurrency;
	return n;
}

/* At most 2 x the local channels' concurrency + 8 live delivery children (doc/ARCHITECTURE.md,
 * "Privileges"): a compromised mda cannot make the parent fork without end. The first
 * refusal of a run is logged; the next successful fork re-arms the log. */
static int kids_at_cap(void)
{
	static int logged;
	uint64_t live = 0, max = 2 * local_concurrency() + 8;
	for (struct kid *k = kids; k; k = k->next)
		live++;
	if (live < max) {
		logged = 0;
		return 0;
	}
	if (!logged)
		log_err("event=fork_refused reason=\"too many delivery children\" live=%llu max=%llu",
		        (unsigned long long)live, (unsigned long long)max);
	logged = 1;
	return 1;
}

static struct kid *kid_add(pid_t pid, uint64_t job)
{
	struct kid *k = xcalloc(1, sizeof *k);
	k->pid = pid;
	k->job = job;
	k->next = kids;
	kids = k;
	return k;
}

static void on_fork_local(struct msg_reader *r, int fd)
{
	uint64_t job = msg_get_u64(r), uid = msg_get_u64(r), gid = msg_get_u64(r);
	const char *home = msg_get_str(r);
	uint64_t argc = msg_get_u64(r);
	char *argv[20];
	size_t n = 0;
	for (; n < argc && n < 19 && !r->err; n++)
		argv[n] = (char *)msg_get_str(r);
	argv[n] = NULL;
	if (msg_done(r) < 0 || fd < 0 || argc > 19 || argc < 2) {
		log_err("event=bad_fork_request");
		goto fail;
	}
	/* the user is tern-local's first operand: found with tern-local's own parser, so the
	 * account checked here is the one it delivers for */
	struct localargs la;
	if (localargs_parse((int)n, argv, &la) < 0) {
		log_err("event=bad_fork_request reason=\"not tern-local's arguments\"");
		goto fail;
	}
	const char *user = argv[la.first];
	const char *why = geteuid() == 0 ? parent_fork_allowed(uid, gid, user) : NULL;
	if (why) {
		char q[128];
		log_err("event=fork_refused job=%llu uid=%llu gid=%llu user=\"%s\" reason=\"%s\"",
		        (unsigned long long)job, (unsigned long long)uid, (unsigned long long)gid,
		        log_quote(q, sizeof q, user ? user : "", user ? strlen(user) : 0), why);
		goto fail;
	}
	int p[2];
	if (kids_at_cap() || pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	pid_t pid = parent_fork();
	if (pid == 0)
		child_exec(uid, gid, home, argv, fd, p[1]);
	close(p[1]);
	close(fd);
	if (pid < 0) {
		close(p[0]);
		forked_reply(job, 0, -1);
		return;
	}
	kid_add(pid, job);
	forked_reply(job, 1, p[0]);
	return;
fail:
	if (fd >= 0)
		close(fd);
	forked_reply(job, 0, -1);
}

/* ---- running a prog channel's program (doc/PROG.md) ---------------------------------------- */

/* its time limit: the whole process group (the program ran setsid) is killed; the reap
 * reports the signal to the mda, which defers every recipient left without a reply */
static void prog_timeout(int fd, short what, void *arg)
{
	struct kid *k = arg;
	log_warn("event=prog_timeout job=%llu pid=%ld; killing its process group",
	         (unsigned long long)k->job, (long)k->pid);
	kill(-k->pid, SIGKILL);
	kill(k->pid, SIGKILL);
}

/* M_FORK_PROG: the mda names a channel; the program, its account and time limit are the
 * parent's own row's. The host, sender and name only fill %h, %s and MMDF's trailing words,
 * each inside its own word (progchan_argv refuses what could become an option). */
static void on_fork_prog(struct msg_reader *r, int fd)
{
	uint64_t job = msg_get_u64(r), uid = 0, gid = 0;
	const char *chname = msg_get_str(r), *host = msg_get_str(r), *sender = msg_get_str(r);
	const char *name = msg_get_str(r), *why = NULL;
	char home[256] = "/", q[128];
	if (msg_done(r) < 0 || fd < 0) {
		log_err("event=bad_fork_request type=prog");
		goto fail;
	}
	const struct channel_row *row = channel_find(&cfg->channels, chname);
	if (!row || row->transport != CHANNEL_T_PROG || !*row->program || !*row->user)
		why = "not a prog channel with a program and an account";
	else if (geteuid() == 0)
		why = parent_fork_prog_account(row->user, &uid, &gid, home, sizeof home);
	char wbuf[128];
	char **argv = why ? NULL : progchan_argv(row->program, host, sender, name, wbuf, sizeof wbuf);
	if (!why && !argv)
		why = wbuf;
	if (why) {
		log_err("event=fork_refused job=%llu channel=\"%s\" reason=\"%s\"",
		        (unsigned long long)job, log_quote(q, sizeof q, chname ? chname : "",
		        chname ? strlen(chname) : 0), why);
		goto fail;
	}
	int sp[2];
	if (kids_at_cap() || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		progchan_argv_free(argv);
		goto fail;
	}
	char **envp = parent_prog_env(row->user, home);
	pid_t pid = parent_fork();
	if (pid == 0)
		parent_prog_exec(uid, gid, home, argv, envp, fd, sp[1]);
	progchan_argv_free(argv);
	parent_env_free(envp);
	close(sp[1]);
	close(fd);
	if (pid < 0) {
		close(sp[0]);
		forked_reply(job, 0, -1);
		return;
	}
	struct kid *k = kid_add(pid, job);
	k->timer = ev_new(-1, 0, prog_timeout, k);
	ev_add(k->timer, (long)row->timeout * 1000);
	log_info("event=prog_started job=%llu channel=%s pid=%ld user=%s", (unsigned long long)job,
	         row->name, (long)pid, row->user);
	forked_reply(job, 1, sp[0]);
	return;
fail:
	if (fd >= 0)
		close(fd);
	forked_reply(job, 0, -1);
}

static void on_role_msg(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd, void *arg)
{
	if (type == M_FORK_LOCAL && c == ch[R_MDA]) {
		on_fork_local(r, fd);
		return;
	}
	if (type == M_FORK_PROG && c == ch[R_MDA]) {
		on_fork_prog(r, fd);
		return;
	}
	if (type == M_POP_SPAWN && c == ch[R_LOOKUP] && fd < 0) {
		parent_pop_spawn(cfg, pop3_exe, ch[R_SMTP], id, r);
		return;
	}
	if (fd >= 0)
		close(fd);
	log_err("event=unexpected_message peer=%s type=%u", chan_peer(c), type);
}

/* ---- signals ---------------------------------------------------------------------------------- */

/* Role r exited with wait status st: exit 78 (configuration) stops ternd; the queue takes
 * every role with it (restart_all); any other role starts again alone after its back-off. */
static void role_exited(int r, int st)
{
	char why[96];
	snprintf(why, sizeof why, "role %s exited (%s %d)", role_name(r),
	         WIFSIGNALED(st) ? "signal" : "status",
	         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	forget_role(r);
	if (stopping)
		return;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 78) {
		log_err("event=fatal role=%s reason=\"configuration or setup error, see above\"; "
		        "stopping", role_name(r));
		stopping = 1;
		exit_code = 78;
		stop_all();
		ev_exit();
	} else if (r == R_QUEUE)
		restart_all(why);
	else if (!restarting)
		schedule_restart(r, why);
}

static void reap(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (parent_pop_reaped(pid))
			continue;
		for (struct kid **kp = &kids; *kp; kp = &(*kp)->next)
			if ((*kp)->pid == pid) {
				struct kid *k = *kp;
				*kp = k->next;
				if (ch[R_MDA]) {
					struct msg out;
					msg_init(&out, M_CHILD_EXIT, 0);
					msg_u64(&out, k->job);
					msg_u64(&out, (uint64_t)st);
					chan_send(ch[R_MDA], &out);
				}
				kid_free(k);
				goto next;
			}
		for (int r = 1; r < R_NROLES; r++)
			if (pids[r] == pid)
				role_exited(r, st);
next:;
	}
}

/* SIGHUP: the roles will parse the file again as they start, so it is checked here first,
 * as `ternd -n` would (certificates and keys included: the parent may read them). A file
 * with errors is refused and the running roles keep serving on the old one: a broken edit
 * or a renewed certificate that does not load must not stop the mail. 1 = go ahead. */
static int reload_checked(void)
{
	struct config nc;
	struct cfg_errors errs = { .n = 0 };
	if (!cfgpath)
		return 1;                      /* the embedded default cannot have changed */
	int r = config_load(&nc, cfgpath, &errs);
	for (int i = 0; i < errs.n; i++)
		log_err("event=reload_refused file=%s line=%d error=\"%s\"", errs.e[i].file,
		        errs.e[i].line, errs.e[i].msg);
	for (int i = 0; i < errs.nw; i++)
		log_warn("event=config_warning file=%s line=%d text=\"%s\"", errs.w[i].file,
		         errs.w[i].line, errs.w[i].msg);
	config_free(&nc);
	if (r < 0)
		log_warn("event=reload_refused errors=%d; the running configuration stays", errs.n);
	return r == 0;
}

static void on_signal(int sig, short what, void *arg)
{
	if (sig == SIGCHLD) {
		reap();
		return;
	}
	if (sig == SIGUSR1) {
		if (pids[R_SCHED] > 0)
			kill(pids[R_SCHED], SIGALRM);
		log_info("event=flush_requested");
		return;
	}
	if (sig == SIGHUP) {
		if (reload_checked())
			restart_all("SIGHUP: reloading configuration");
		return;
	}
	log_info("event=stopping signal=%d", sig);
	stopping = 1;
	stop_all();
	ev_exit();
}

/* the test build's hooks: a shorter back-off (tests restart roles many times) and a pause
 * between fork and exec (where the race with the parent's signal handlers was) */
static void test_hooks(void)
{
#ifdef TERN_TEST
	const char *v;
	if ((v = getenv("TERN_RESTART_BACKOFF_MS")) != NULL && atol(v) > 0)
		backoff_base_ms = atol(v);
	if ((v = getenv("TERN_SPAWN_DELAY_MS")) != NULL && atol(v) > 0)
		spawn_delay_ms = atol(v);
#endif
}


/* `users any:DIR` (the development default): DIR holds every user's home, created on
 * demand by the delivery child, which runs as `user` when we are root: let it write there. */
static void prepare_any_users(void)
{
	if (!cfg->users || strncmp(cfg->users, "any:", 4) != 0)
		return;
	const char *dir = cfg->users + 4;
	if (fs_mkdirs(dir, 0755) < 0) {
		log_warn("event=mkdir_failed path=%s error=\"%s\"", dir, strerror(errno));
		return;
	}
	if (geteuid() != 0)
		return;
	struct passwd *pw = getpwnam(cfg->user);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);   /* never via a link */
	if (pw && (fd < 0 || fchown(fd, pw->pw_uid, pw->pw_gid) < 0))
		log_warn("event=chown_failed path=%s error=\"%s\"", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void find_exes(const char *argv0)
{
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n <= 0)
		log_fatal("event=no_self_exe argv0=%s", argv0);
	self_exe[n] = '\0';
	char dir[PATH_MAX - 16];
	if (cfg->libexec && *cfg->libexec)
		snprintf(dir, sizeof dir, "%.*s", (int)sizeof dir - 1, cfg->libexec);
	else {
		snprintf(dir, sizeof dir, "%.*s", (int)sizeof dir - 1, self_exe);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
	}
	snprintf(queue_exe, sizeof queue_exe, "%s/tern-queue", dir);
	snprintf(pop3_exe, sizeof pop3_exe, "%s/tern-pop3", dir);
}

int parent_main(struct config *c, const char *path, const char *argv0, int debug)
{
	cfg = c;
	debug_flag = debug;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)   /* no core file of the users table, keys */
		log_fatal("event=prctl_failed error=\"%s\"", strerror(errno));
	if (path) {
		static char abs[PATH_MAX];
		cfgpath = realpath(path, abs) ? abs : path;
	}
	find_exes(argv0);
	ev_init();
	int spoolfd = parent_spool_prepare(cfg);
	bind_all(spoolfd);
	close(spoolfd);
	delivery_env = parent_env_delivery(cfgpath, queue_exe);
	if (geteuid() == 0)
		parent_fork_init(cfg);
	signal(SIGPIPE, SIG_IGN);
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		ev_add(ev_signal(sigs[i], on_signal, NULL), -1);
	restart_ev = ev_new(-1, 0, restart_cb, NULL);
	for (int r = 1; r < R_NROLES; r++)
		life[r].timer = ev_new(-1, 0, restart_one, (void *)(intptr_t)r);
	test_hooks();
	log_info("event=start config=\"%s\" uid=%d spool=%s", cfg->path, (int)geteuid(), cfg->spool);
	prepare_any_users();
	start_all();
	ev_run();
	log_info("event=stopped");
	return exit_code;
}
