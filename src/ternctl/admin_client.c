/* admin_client — see admin_client.h: ternctl's client of ternd's control socket.
 * Owns: connecting, the request line, reading the dot-stuffed reply and its status line;
 * the pid-file fallback (admin_client_signal_ternd).
 * Trusts: the socket under the configured spool; prints what it reads, never executes it.
 * Not the pid file: the queue account writes it, so as root its process is checked first. */
#include "ternctl/admin_client.h"
#include "lib/buf.h"
#include "mail/ldapreq.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define ADMIN_TIMEOUT_S 300

static int admin_client_connect(const struct config *cfg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/ternctl.sock", cfg->spool);
	if (n < 0 || (size_t)n >= sizeof sa.sun_path)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	struct timeval tv = { ADMIN_TIMEOUT_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return fd;
}

static int admin_client_send(int fd, const char *request)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s\n", request);
	size_t off = 0;
	while (off < b.len) {
		ssize_t n = send(fd, b.p + off, b.len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	int ok = off == b.len;
	explicit_bzero(b.p, b.len);          /* ldaplookup -p: the password */
	buf_free(&b);
	return ok ? 0 : -1;
}

/* the status line "CODE text" -> code (-1 if malformed) and the text */
static int admin_client_status(char *line, const char **text)
{
	char *end;
	long code = strtol(line, &end, 10);
	if (end == line || code < 0 || code > 255 || (*end != ' ' && *end != '\0'))
		return -1;
	*text = *end ? end + 1 : "";
	return (int)code;
}

static int admin_client_read(FILE *in, FILE *out)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int body = 1, code = -1;
	const char *text = "";
	while ((n = getline(&line, &cap, in)) > 0) {
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (!body) {
			code = admin_client_status(line, &text);
			break;
		}
		if (n == 1 && line[0] == '.') {
			body = 0;
			continue;
		}
		size_t skip = line[0] == '.';
		fwrite(line + skip, 1, (size_t)n - skip, out);
		fputc('\n', out);
	}
	fflush(out);
	if (code < 0)
		fprintf(stderr, "ternctl: ternd closed the control connection without an answer\n");
	else if (code == 0 && strcmp(text, "ok") != 0)
		printf("%s\n", text);
	else if (code)
		fprintf(stderr, "ternctl: %s\n", text);
	free(line);
	return code < 0 ? ADMIN_EX_UNREACHABLE : code;
}

int admin_client_call(const struct config *cfg, const char *request, FILE *out)
{
	int fd = admin_client_connect(cfg);
	if (fd < 0)
		return ADMIN_UNREACHABLE;
	if (admin_client_send(fd, request) < 0) {
		close(fd);
		fprintf(stderr, "ternctl: cannot send to ternd's control socket: %s\n", strerror(errno));
		return ADMIN_EX_UNREACHABLE;
	}
	shutdown(fd, SHUT_WR);
	FILE *in = fdopen(fd, "r");
	if (!in) {
		close(fd);
		return ADMIN_EX_UNREACHABLE;
	}
	int code = admin_client_read(in, out);
	fclose(in);
	return code;
}

/* ---- the commands ------------------------------------------------------------------------------ */

static const struct admin_client_syntax {
	const char *name, *sub;      /* sub: the second word, or NULL */
	int minargs, maxargs;        /* after name (and sub) */
	const char *usage;
} admin_client_cmds[] = {
	{ "show", "queue", 0, 1, "show queue [--json]" },
	{ "show", "message", 1, 1, "show message ID" },
	{ "remove", NULL, 1, 1, "remove ID|all" },
	{ "hold", NULL, 1, 1, "hold ID" },
	{ "release", NULL, 1, 1, "release ID" },
	{ "schedule", NULL, 1, 1, "schedule ID|all" },
	{ "tcpto", NULL, 0, 0, "tcpto" },
	{ "tcpok", NULL, 0, 0, "tcpok" },
	{ "stats", NULL, 0, 0, "stats" },
	{ "verify", NULL, 1, 1, "verify ADDRESS" },
	{ "ldaplookup", NULL, 1, 3, "ldaplookup [-u] [-p] ADDRESS|UID  (-p: the password on stdin)" },
};

static int admin_client_usage(const char *name)
{
	const char *sep = "usage: ternctl ";
	for (size_t i = 0; i < sizeof admin_client_cmds / sizeof admin_client_cmds[0]; i++)
		if (strcmp(admin_client_cmds[i].name, name) == 0) {
			fprintf(stderr, "%s%s", sep, admin_client_cmds[i].usage);
			sep = " | ternctl ";
		}
	fprintf(stderr, "\n");
	return 64;
}

/* argv[0..argc) joined with blanks; -1 if a word could not travel on one line */
static int admin_client_line(int argc, char **argv, struct buf *b)
{
	for (int i = 0; i < argc; i++) {
		if (!*argv[i] || strpbrk(argv[i], " \t\r\n"))
			return -1;
		buf_printf(b, "%s%s", i ? " " : "", argv[i]);
	}
	return 0;
}

/* the password: the first line of stdin (echo off on a terminal), without its LF / CRLF;
 * 0, or -1 (said why) */
static int admin_client_password(char *pw, size_t size)
{
	struct termios old, quiet;
	int tty = isatty(0) && tcgetattr(0, &old) == 0;
	if (tty) {
		fprintf(stderr, "Password: ");
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	size_t n = 0;
	int c = 0;
	while (n + 1 < size && (c = getchar()) != EOF && c != '\n')
		pw[n++] = (char)c;
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n && pw[n - 1] == '\r')
		n--;
	pw[n] = '\0';
	if (n + 1 >= size && c != '\n' && c != EOF) {
		fprintf(stderr, "ternctl: the password is too long (at most %zu bytes)\n", size - 2);
		return -1;
	}
	if (!n || memchr(pw, '\0', n)) {
		fprintf(stderr, "ternctl: no password on stdin (ldaplookup -p reads it from there)\n");
		return -1;
	}
	return 0;
}

/* ldaplookup [-u] [-p] ARG: its request line into b (the password read from stdin) */
static int admin_client_ldaplookup(int argc, char **argv, struct buf *b)
{
	struct ldapreq q;
	char pw[LDAPREQ_MAXPW];
	if (ldapreq_cli(argv + 1, argc - 1, &q) < 0)
		return -1;
	if (q.password && admin_client_password(pw, sizeof pw) < 0) {
		explicit_bzero(pw, sizeof pw);
		return -2;
	}
	ldapreq_line(b, &q, q.password ? pw : "");
	explicit_bzero(pw, sizeof pw);
	return 0;
}

int admin_client_cmd(struct config *cfg, int argc, char **argv)
{
	const struct admin_client_syntax *c = NULL;
	for (size_t i = 0; !c && i < sizeof admin_client_cmds / sizeof admin_client_cmds[0]; i++) {
		const struct admin_client_syntax *s = &admin_client_cmds[i];
		if (strcmp(argv[0], s->name) == 0 && (!s->sub || (argc > 1 && strcmp(argv[1], s->sub) == 0)))
			c = s;
	}
	int words = c && c->sub ? 2 : 1;
	if (!c || argc - words < c->minargs || argc - words > c->maxargs)
		return admin_client_usage(argv[0]);
	struct buf b;
	buf_init(&b);
	int rc = strcmp(c->name, "ldaplookup") == 0 ? admin_client_ldaplookup(argc, argv, &b) :
	         admin_client_line(argc, argv, &b);
	if (rc < 0) {
		buf_free(&b);
		return rc == -2 ? 64 : admin_client_usage(argv[0]);
	}
	int code = admin_client_call(cfg, b.p, stdout);
	explicit_bzero(b.p, b.len);
	buf_free(&b);
	if (code == ADMIN_UNREACHABLE) {
		fprintf(stderr, "ternctl: ternd is not running (nothing answers on %s/ternctl.sock)\n",
		        cfg->spool);
		return ADMIN_EX_UNREACHABLE;
	}
	return code;
}

/* ---- the pid-file fallback ----------------------------------------------------------------- */

/* the pid in <spool>/ternd.pid, never through a link: > 0, 0 when there is none, -1 refused */
static long admin_client_read_pid(const struct config *cfg)
{
	char path[PATH_MAX], buf[32];
	snprintf(path, sizeof path, "%s/ternd.pid", cfg->spool);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP) {
		fprintf(stderr, "ternctl: %s is a symbolic link: not signalling anything (the spool "
		        "belongs to the queue account; check it as root)\n", path);
		return -1;
	}
	if (fd < 0)
		return 0;
	struct stat st;
	ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1) : -1;
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	char *end;
	long pid = strtol(buf, &end, 10);
	if (n <= 0 || end == buf || (*end && *end != '\n') || pid <= 0 || pid > INT_MAX) {
		fprintf(stderr, "ternctl: %s holds no pid: not signalling anything\n", path);
		return -1;
	}
	return pid;
}

/* as root: is process pid root's, running a binary named ternd? NULL if so, else why not */
static const char *admin_client_not_ternd(long pid, char *why, size_t len)
{
	char proc[64], exe[PATH_MAX];
	struct stat st;
	snprintf(proc, sizeof proc, "/proc/%ld", pid);
	if (stat(proc, &st) < 0)
		return snprintf(why, len, "%s", strerror(errno)), why;
	if (st.st_uid != 0)
		return snprintf(why, len, "it runs as uid %lu, ternd as root",
		                (unsigned long)st.st_uid), why;
	snprintf(proc, sizeof proc, "/proc/%ld/exe", pid);
	ssize_t n = readlink(proc, exe, sizeof exe - 1);
	if (n < 0)
		return snprintf(why, len, "its binary is unknown: %s", strerror(errno)), why;
	exe[n] = '\0';
	size_t k = strlen("/ternd");
	if ((size_t)n < k || strcmp(exe + n - k, "/ternd") != 0)
		return snprintf(why, len, "it runs %s", exe), why;
	return NULL;
}

int admin_client_signal_ternd(const struct config *cfg, int sig)
{
	long pid = admin_client_read_pid(cfg);
	if (pid < 0)
		return ADMIN_EX_UNREACHABLE;
	if (pid == 0) {
		fprintf(stderr, "ternctl: ternd does not seem to run (%s/ternd.pid): no pid file\n",
		        cfg->spool);
		return 1;
	}
	/* a pidfd first: if pid is reused after the check, the signal goes nowhere (ESRCH) */
	int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pfd < 0 && errno != ENOSYS) {
		fprintf(stderr, "ternctl: ternd does not seem to run (%s/ternd.pid: process %ld): "
		        "%s\n", cfg->spool, pid, strerror(errno));
		return 1;
	}
	char why[PATH_MAX + 64];
	if (geteuid() == 0 && admin_client_not_ternd(pid, why, sizeof why)) {
		fprintf(stderr, "ternctl: %s/ternd.pid names process %ld, which is not ternd (%s): "
		        "not signalling it\n", cfg->spool, pid, why);
		if (pfd >= 0)
			close(pfd);
		return ADMIN_EX_UNREACHABLE;
	}
	int r = pfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) :
	        kill((pid_t)pid, sig);
	int e = errno;
	if (pfd >= 0)
		close(pfd);
	if (r < 0) {
		fprintf(stderr, "ternctl: ternd does not seem to run (%s/ternd.pid: process %ld): "
		        "%s\n", cfg->spool, pid, strerror(e));
		return 1;
	}
	return 0;
}
