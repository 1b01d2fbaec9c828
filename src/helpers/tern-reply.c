/* tern-reply — qmail-reply's role for every user: a program a user names in a .qmail line
 * (`|tern-reply .vacation.msg`), run by tern-local as the user with tern-local's program
 * environment (SENDER, RECIPIENT, HOME, QMAILQUEUE; doc/LOCAL.md) and the message on stdin.
 * It answers once per sender per interval, through tern-queue, with RFC 3834's headers.
 * Owns: its command line, the per-user reply memory file (locked, 0600, never through a
 * symlink) and the injection of the reply. Every decision and format is src/mail/autoreply.c.
 * Trusts: the environment as tern-local built it; nothing in the message or the memory file.
 *
 * Exit codes (qmail's): 0 replied, or decided not to, or — without -e — failed to reply (a
 * failure to reply never fails the delivery: the line says why); with -e a failure exits 111
 * (temporary) or 100 (tern-queue refused the reply for good), as a qmail program. */
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "mail/autoreply.h"
#include "mail/dotqmail.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HDR_MAX    65536          /* bytes of the message's header looked at */
#define TEXT_MAX   65536          /* the largest reply text */
#define MEM_MAX    (256 * 1024)   /* a bigger memory file is started afresh */
#define ADDR_MAX   16             /* -a addresses */
#define MEM_DEFAULT ".tern-reply" /* in HOME */

static struct {
	int strict;                   /* -e: failures exit 100/111 */
	long long interval;           /* -t, seconds */
	const char *memfile, *textfile;
	const char *addrs[ADDR_MAX + 1];   /* RECIPIENT, then the -a addresses */
	size_t naddrs;
	const char *sender, *home;
} R = { .interval = AUTOREPLY_WINDOW, .memfile = MEM_DEFAULT };

/* the one line on stdout (tern-local makes it part of its report), then exit */
__attribute__((noreturn, format(printf, 2, 3)))
static void reply_exit(int code, const char *fmt, ...)
{
	va_list ap;
	fputs("tern-reply: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(code && !R.strict ? 0 : code);
}

static void usage(void)
{
	reply_exit(111, "no reply: usage: tern-reply [-e] [-t INTERVAL] [-m MEMFILE] "
		   "[-a ADDRESS]... TEXTFILE (#4.3.0)");
}

static void parse_args(int argc, char **argv)
{
	int c;
	R.addrs[R.naddrs++] = getenv("RECIPIENT") ? getenv("RECIPIENT") : "";
	while ((c = getopt(argc, argv, "+et:m:a:")) != -1) {
		if (c == 'e')
			R.strict = 1;
		else if (c == 't' && autoreply_interval(optarg, &R.interval) == 0)
			continue;
		else if (c == 'm' && *optarg)
			R.memfile = optarg;
		else if (c == 'a' && *optarg && R.naddrs < ADDR_MAX + 1)
			R.addrs[R.naddrs++] = optarg;
		else
			usage();
	}
	if (optind != argc - 1 || !*argv[optind])
		usage();
	R.textfile = argv[optind];
	R.sender = getenv("SENDER");
	R.home = getenv("HOME");
	if (!R.sender || !R.home || *R.home != '/' || !*R.addrs[0])
		reply_exit(111, "no reply: SENDER, RECIPIENT and HOME must be set, as tern-local "
			   "sets them (#4.3.0)");
}

/* a path relative to HOME */
static char *home_path(const char *p)
{
	struct buf b;
	buf_init(&b);
	if (*p == '/')
		buf_adds(&b, p);
	else
		buf_printf(&b, "%s/%s", R.home, p);
	return buf_detach(&b);
}

/* the header section from stdin (at most HDR_MAX bytes), then the rest drained so that
 * tern-local's writer finishes; returns 1 when what was kept is the whole message */
static int read_message(struct buf *hdr)
{
	char chunk[8192];
	ssize_t r;
	int whole = 1;
	while ((r = read(0, chunk, sizeof chunk)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			reply_exit(111, "no reply: cannot read the message: %s (#4.3.0)", strerror(errno));
		size_t room = HDR_MAX - hdr->len;
		buf_add(hdr, chunk, (size_t)r < room ? (size_t)r : room);
		if ((size_t)r > room)
			whole = 0;
	}
	if (!hdr->p)
		buf_adds(hdr, "");
	return whole;
}

/* reads fd whole into b, at most max bytes; -1 when larger or unreadable */
static int read_all(int fd, struct buf *b, size_t max)
{
	char chunk[4096];
	ssize_t r;
	while ((r = read(fd, chunk, sizeof chunk)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || b->len + (size_t)r > max)
			return -1;
		buf_add(b, chunk, (size_t)r);
	}
	if (!b->p)
		buf_adds(b, "");
	return 0;
}

/* the memory file, opened without following a symlink, created 0600, a regular file of
 * ours that nobody else can write, locked; its text into mem (a too large one reads empty) */
static int mem_open(const char *path, struct buf *mem)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd == -1)
		reply_exit(111, "no reply: cannot open %s: %s (#4.3.0)", path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || st.st_nlink != 1)
		reply_exit(111, "no reply: %s is not a private regular file of the user (#4.7.0)",
			   path);
	if (flock(fd, LOCK_EX) == -1)
		reply_exit(111, "no reply: cannot lock %s: %s (#4.3.0)", path, strerror(errno));
	if (read_all(fd, mem, MEM_MAX) == -1)
		buf_reset(mem);
	if (!mem->p)
		buf_adds(mem, "");
	return fd;
}

/* the new memory over the old, under the lock: written first, then cut to length, so that
 * a crash leaves at worst a malformed tail, which autoreply_seen drops; 0 / -1 */
static int mem_write(int fd, const struct buf *mem)
{
	if (pwrite(fd, mem->p, mem->len, 0) != (ssize_t)mem->len ||
	    ftruncate(fd, (off_t)mem->len) == -1 || fsync(fd) == -1)
		return -1;
	return 0;
}

/* the reply text: a regular file of at most TEXT_MAX bytes */
static void read_text(const char *path, struct buf *text)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		reply_exit(111, "no reply: cannot open %s: %s (#4.3.0)", path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || read_all(fd, text, TEXT_MAX) == -1)
		reply_exit(111, "no reply: %s is not a readable file of at most %d bytes (#4.3.0)",
			   path, TEXT_MAX);
	close(fd);
	for (size_t i = 0; i < text->len; i++)   /* a NUL would cut the text short */
		if (!text->p[i])
			text->p[i] = ' ';
}

/* $QMAILQUEUE (tern-local sets it), else tern-queue next to this binary */
static char *queue_path(void)
{
	const char *env = getenv("QMAILQUEUE");
	char self[PATH_MAX];
	if (env && *env)
		return xstrdup(env);
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		reply_exit(111, "no reply: cannot find tern-queue (#4.3.0)");
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		reply_exit(111, "no reply: cannot find tern-queue (#4.3.0)");
	*slash = '\0';
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s/tern-queue", self);
	return buf_detach(&b);
}

/* the reply into tern-queue: the message in a memfd on fd 0, the envelope (small enough
 * for a pipe's buffer) on fd 1. The envelope sender is <>, as RFC 3834 advises for a
 * personal responder: a reply that cannot be delivered makes no bounce that another
 * responder could answer (doc/LOCAL.md "Automatic replies"). Returns the wait status. */
static int inject(const struct buf *msg, const char *to)
{
	int mfd = memfd_create("tern-reply", MFD_CLOEXEC), env[2];
	struct buf e;
	buf_init(&e);
	buf_add(&e, "F\0T", 3);
	buf_add(&e, to, strlen(to) + 1);
	buf_addc(&e, '\0');
	if (mfd == -1 || fs_write_all(mfd, msg->p, msg->len) == -1 || lseek(mfd, 0, SEEK_SET) ||
	    e.len > 4096 || pipe2(env, O_CLOEXEC) == -1 || fs_write_all(env[1], e.p, e.len) == -1)
		reply_exit(111, "no reply: cannot prepare the reply: %s (#4.3.0)", strerror(errno));
	close(env[1]);
	buf_free(&e);
	char *qq = queue_path();
	fflush(stdout);
	pid_t pid = fork();
	if (pid == -1)
		reply_exit(111, "no reply: cannot fork: %s (#4.3.0)", strerror(errno));
	if (pid == 0) {
		if (dup2(mfd, 0) == -1 || dup2(env[0], 1) == -1)
			_exit(120);
		char *argv[] = { qq, NULL };
		execv(qq, argv);
		_exit(120);
	}
	close(mfd);
	close(env[0]);
	int st;
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			reply_exit(111, "no reply: waitpid: %s (#4.3.0)", strerror(errno));
	free(qq);
	return st;
}

int main(int argc, char **argv)
{
	struct buf hdr, mem, newmem, text, msg, to;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	fs_std_fds();
	umask(077);
	parse_args(argc, argv);
	buf_init(&hdr);
	buf_init(&mem);
	buf_init(&newmem);
	buf_init(&text);
	buf_init(&msg);
	buf_init(&to);
	int whole = read_message(&hdr);
	const char *why = autoreply_refuse_any(R.sender, R.addrs, R.naddrs, hdr.p, hdr.len, whole);
	if (why)
		reply_exit(0, "no reply: %s", why);
	dotqmail_sender_quoted(&to, R.sender);     /* tern's form of the address */
	char *mempath = home_path(R.memfile), *textpath = home_path(R.textfile);
	int mfd = mem_open(mempath, &mem);
	time_t now = time(NULL);
	if (autoreply_seen_for(mem.p, mem.len, to.p, now, R.interval, &newmem))
		reply_exit(0, "no reply: %s was answered within %lld seconds", to.p, R.interval);
	read_text(textpath, &text);
	autoreply_build(&msg, R.addrs[0], to.p, hdr.p, hdr.len, text.p, now, (long)getpid());
	int st = inject(&msg, to.p);
	if (!WIFEXITED(st))
		reply_exit(111, "no reply: tern-queue killed by signal %d (#4.3.0)", WTERMSIG(st));
	const char *what, *status;
	enum dq_prog k = dotqmail_queue_status(WEXITSTATUS(st), &what, &status);
	if (k == DQ_PROG_PERM)
		reply_exit(100, "no reply: tern-queue exited %d (%s) (#%s)", WEXITSTATUS(st), what,
			   status);
	if (WEXITSTATUS(st) != 0)
		reply_exit(111, "no reply: tern-queue exited %d (%s) (#%s)", WEXITSTATUS(st), what,
			   status);
	if (mem_write(mfd, &newmem) == -1)
		reply_exit(0, "reply sent to %s, but %s was not updated: %s", to.p, mempath,
			   strerror(errno));
	reply_exit(0, "reply sent to %s", to.p);
}
