/* queue_pid — <spool>/ternd.pid: the pid of ternd's parent, which `ternctl flush` and
 * `sendmail -q` signal (SIGUSR1) when the control socket does not answer. The queue role
 * writes it, as the queue user, in the spool it owns: root never writes into the spool
 * (doc/ARCHITECTURE.md, "Privileges").
 * Owns: that file. Trusts: the parent (getppid) and the spool directory descriptor. */
#include "ternd/queue/queue_pid.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void queue_pid_write(int spoolfd)
{
	char line[32];
	int n = snprintf(line, sizeof line, "%ld\n", (long)getppid());
	int fd = openat(spoolfd, "ternd.pid.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	                0644);
	if (fd < 0 || fs_write_all(fd, line, (size_t)n) < 0 || close(fd) < 0 ||
	    renameat(spoolfd, "ternd.pid.tmp", spoolfd, "ternd.pid") < 0) {
		log_warn("event=pidfile_failed name=ternd.pid error=\"%s\"", strerror(errno));
		if (fd >= 0)
			unlinkat(spoolfd, "ternd.pid.tmp", 0);
	}
}

void queue_pid_remove(int spoolfd)
{
	if (spoolfd >= 0 && unlinkat(spoolfd, "ternd.pid", 0) < 0 && errno != ENOENT)
		log_warn("event=pidfile_failed name=ternd.pid op=unlink error=\"%s\"", strerror(errno));
}
