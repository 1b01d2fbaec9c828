/* parent_prog — the child side of a prog channel's run (doc/PROG.md), between the parent's
 * fork and the program's exec: its own session (so the time limit kills the whole process
 * group), the account the parent chose from its own channel row, the message on fd 0,
 * /dev/null on 1 and 2, the address/reply socket on 3 and 4, nothing else open, the
 * account's home as working directory and a clean environment (HOME USER LOGNAME PATH SHELL
 * and TZ; no variable of ternd's). Owns: that set-up. Trusts: its caller for the account and
 * the argument vector (built by src/mail/progchan.c from the parent's own row). */
#include "ternd/parent/parent.h"
#include "ternd/parent/parent_env.h"
#include "mail/progchan.h"
#include "lib/buf.h"
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

char **parent_prog_env(const char *user, const char *home)
{
	char extra[5][300];
	const char *e[5];
	snprintf(extra[0], sizeof extra[0], "HOME=%s", home);
	snprintf(extra[1], sizeof extra[1], "USER=%s", user);
	snprintf(extra[2], sizeof extra[2], "LOGNAME=%s", user);
	snprintf(extra[3], sizeof extra[3], "PATH=/usr/local/bin:/usr/bin:/bin");
	snprintf(extra[4], sizeof extra[4], "SHELL=/bin/sh");
	for (int i = 0; i < 5; i++)
		e[i] = extra[i];
	return parent_env_build(environ, e, 5, 0, NULL);   /* TZ only: no test hook either */
}

/* the descriptor fd moved to 10 or above (so that the dup2 calls below cannot clobber it) */
static int parent_prog_high(int fd)
{
	int h = fcntl(fd, F_DUPFD, 10);
	if (h < 0)
		_exit(111);
	return h;
}

void parent_prog_exec(uint64_t uid, uint64_t gid, const char *home, char **argv, char **envp,
                      int msgfd, int sock)
{
	if (setsid() < 0)
		_exit(111);
	int m = parent_prog_high(msgfd), s = parent_prog_high(sock);
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0)
		_exit(111);
	nul = parent_prog_high(nul);
	if (geteuid() == 0) {
		gid_t g = (gid_t)gid;
		if (setgroups(1, &g) < 0 || setgid(g) < 0 || setuid((uid_t)uid) < 0 ||
		    getuid() != (uid_t)uid || geteuid() != (uid_t)uid)
			_exit(111);
	}
	if (dup2(m, PROGCHAN_MSGFD) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0 ||
	    dup2(s, PROGCHAN_ADDRFD) < 0 || dup2(s, PROGCHAN_RESPFD) < 0)
		_exit(111);
	lseek(PROGCHAN_MSGFD, 0, SEEK_SET);
	close_range(PROGCHAN_RESPFD + 1, ~0U, 0);
	if (chdir(home) < 0 && chdir("/") < 0)
		_exit(111);
	execve(argv[0], argv, envp);
	_exit(111);
}
