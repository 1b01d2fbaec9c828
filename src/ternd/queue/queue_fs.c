/* queue_fs — see queue_fs.h and doc/QUEUE.md. Every function returns 0/-1 (or an fd) and
 * logs its own failure once; callers turn failures into 451/452 or a retry. */
#include "ternd/queue/queue_fs.h"
#include "mail/envelope.h"
#include "ternd/role.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/fsutil.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Failures that repeat while the disk is full (every write fails) are logged at most once
 * per QFS_LOG_EVERY seconds per kind, with the number suppressed in between (repeated=N). */
#define QFS_LOG_EVERY 10
enum qfs_err { QE_CREATE, QE_OPEN, QE_ENV, QE_SYNC, QE_RENAME, QE_DIR, QE_APPEND, QE_TRUNC, QE_N };
static struct log_limit queue_fs_lim[QE_N];

static int queue_fs_may_log(enum qfs_err k, unsigned long long *rep)
{
	return log_limit(&queue_fs_lim[k], QFS_LOG_EVERY, rep);
}

static int queue_fs_fd[QD_N] = { -1, -1, -1, -1, -1, -1 };
static const char *queue_fs_names[QD_N] = { ".", "data", "env", "tmp", "maildrop", "quarantine" };
static uint32_t queue_fs_counter;

int queue_fs_dirfd(enum qdir d) { return queue_fs_fd[d]; }

static int queue_fs_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	log_err("event=spool_error op=mkdir path=%s error=\"%s\"", path, strerror(errno));
	return -1;
}

int queue_fs_open(const char *spool, int create)
{
	if (create && fs_mkdirs(spool, 0755) < 0) {
		log_err("event=spool_error op=mkdir path=%s error=\"%s\"", spool, strerror(errno));
		return -1;
	}
	queue_fs_fd[QD_SPOOL] = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (queue_fs_fd[QD_SPOOL] < 0) {
		log_err("event=spool_error op=open path=%s error=\"%s\"", spool, strerror(errno));
		return -1;
	}
	for (int d = QD_DATA; d < QD_N; d++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", spool, queue_fs_names[d]);
		if (create && queue_fs_mkdir(path, d == QD_DROP ? 01733 : 0700) < 0)
			return -1;
		if (d == QD_DROP)
			chmod(path, 01733);   /* mkdir honours the umask */
		queue_fs_fd[d] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (queue_fs_fd[d] < 0) {
			log_err("event=spool_error op=open path=%s error=\"%s\"", path, strerror(errno));
			return -1;
		}
	}
	int lk = openat(queue_fs_fd[QD_SPOOL], "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lk < 0 || flock(lk, LOCK_EX | LOCK_NB) < 0) {
		log_err("event=spool_locked path=%s error=\"another queue runs on this spool\"", spool);
		return -1;
	}
	unsigned seed;
	if (getentropy(&seed, sizeof seed) < 0)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	queue_fs_counter = seed;
	return 0;
}

static void idname(uint64_t id, char name[17]) { env_idstr(id, name); }

int queue_fs_create_data(uint64_t *id)
{
	for (int tries = 0; tries < 100; tries++) {
		char name[17];
		uint64_t v = (uint64_t)(uint32_t)time(NULL) << 32 | ++queue_fs_counter;
		idname(v, name);
		int fd = openat(queue_fs_fd[QD_DATA], name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			*id = v;
			return fd;
		}
		if (errno != EEXIST) {
			int e = errno;
			unsigned long long rep;
			if (queue_fs_may_log(QE_CREATE, &rep))
				log_err("event=spool_error op=create_data error=\"%s\" repeated=%llu",
				        strerror(e), rep);
			errno = e;
			return -1;
		}
	}
	return -1;
}

int queue_fs_open_data(uint64_t id)
{
	char name[17];
	idname(id, name);
	int fd = openat(queue_fs_fd[QD_DATA], name, O_RDONLY | O_CLOEXEC);
	unsigned long long rep;
	if (fd < 0 && queue_fs_may_log(QE_OPEN, &rep))
		log_err("event=spool_error op=open_data id=%s error=\"%s\" repeated=%llu", name,
		        strerror(errno), rep);
	return fd;
}

int queue_fs_write_tmp_env(uint64_t id, const char *p, size_t n)
{
	char name[17];
	idname(id, name);
	int fd = openat(queue_fs_fd[QD_TMP], name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fs_write_all(fd, p, n) < 0) {
		int e = errno;
		unsigned long long rep;
		if (queue_fs_may_log(QE_ENV, &rep))
			log_err("event=spool_error op=write_env id=%s error=\"%s\" repeated=%llu", name,
			        strerror(e), rep);
		if (fd >= 0)
			close(fd);
		unlinkat(queue_fs_fd[QD_TMP], name, 0);
		errno = e;
		return -1;
	}
	return fd;
}

int queue_fs_sync_batch(int *fds, size_t nfds, int use_syncfs)
{
	unsigned long long rep;
	if (use_syncfs) {
		if (syncfs(queue_fs_fd[QD_SPOOL]) < 0) {
			int e = errno;
			if (queue_fs_may_log(QE_SYNC, &rep))
				log_err("event=spool_error op=syncfs error=\"%s\" repeated=%llu", strerror(e), rep);
			errno = e;
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0 && fdatasync(fds[i]) < 0) {
			int e = errno;
			if (queue_fs_may_log(QE_SYNC, &rep))
				log_err("event=spool_error op=fdatasync error=\"%s\" repeated=%llu", strerror(e),
				        rep);
			errno = e;
			return -1;
		}
	return queue_fs_sync_dir(QD_DATA);
}

int queue_fs_commit_rename(uint64_t id)
{
	char name[17];
	idname(id, name);
	if (renameat(queue_fs_fd[QD_TMP], name, queue_fs_fd[QD_ENV], name) < 0) {
		int e = errno;
		unsigned long long rep;
		if (queue_fs_may_log(QE_RENAME, &rep))
			log_err("event=spool_error op=rename id=%s error=\"%s\" repeated=%llu", name,
			        strerror(e), rep);
		errno = e;
		return -1;
	}
	return 0;
}

int queue_fs_sync_dir(enum qdir d)
{
	if (fsync(queue_fs_fd[d]) < 0) {
		int e = errno;
		unsigned long long rep;
		if (queue_fs_may_log(QE_DIR, &rep))
			log_err("event=spool_error op=fsync_dir dir=%s error=\"%s\" repeated=%llu",
			        queue_fs_names[d], strerror(e), rep);
		errno = e;
		return -1;
	}
	return 0;
}

int queue_fs_append(uint64_t id, const char *p, size_t n, int sync)
{
	char name[17];
	idname(id, name);
	int fd = openat(queue_fs_fd[QD_ENV], name, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0 && n > 1 && role_crashpoint_armed("queue:mid_append")) {
		/* a torn record, as a crash in the middle of write(2) would leave */
		if (fs_write_all(fd, p, n / 2) == 0)
			fdatasync(fd);
		role_crashpoint("queue:mid_append");
	}
	off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
	if (fd < 0 || end < 0 || fs_write_all(fd, p, n) < 0 || (sync && fdatasync(fd) < 0)) {
		int e = errno;
		unsigned long long rep;
		if (queue_fs_may_log(QE_APPEND, &rep))
			log_err("event=journal_append_failed id=%s error=\"%s\" repeated=%llu", name,
			        strerror(e), rep);
		if (fd >= 0 && end >= 0 && ftruncate(fd, end) < 0 &&   /* no torn or doubled records */
		    queue_fs_may_log(QE_TRUNC, &rep))
			log_err("event=spool_error op=truncate id=%s error=\"%s\" repeated=%llu", name,
			        strerror(errno), rep);
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void queue_fs_remove(uint64_t id)
{
	char name[17];
	idname(id, name);
	if (unlinkat(queue_fs_fd[QD_ENV], name, 0) < 0 && errno != ENOENT)
		log_err("event=spool_error op=unlink_env id=%s error=\"%s\"", name, strerror(errno));
	role_crashpoint("queue:after_unlink_env");
	if (unlinkat(queue_fs_fd[QD_DATA], name, 0) < 0 && errno != ENOENT)
		log_err("event=spool_error op=unlink_data id=%s error=\"%s\"", name, strerror(errno));
}

int queue_fs_unlink_env(uint64_t id)
{
	char name[17];
	idname(id, name);
	if (unlinkat(queue_fs_fd[QD_ENV], name, 0) < 0 && errno != ENOENT) {
		log_err("event=spool_error op=unlink_env id=%s error=\"%s\"", name, strerror(errno));
		return -1;
	}
	return 0;
}

void queue_fs_discard_uncommitted(uint64_t id)
{
	char name[17];
	idname(id, name);
	unlinkat(queue_fs_fd[QD_TMP], name, 0);
	unlinkat(queue_fs_fd[QD_DATA], name, 0);
}

void queue_fs_quarantine(enum qdir d, const char *name, const char *why)
{
	char to[300];
	snprintf(to, sizeof to, "%s.%s.%ld", queue_fs_names[d], name, (long)time(NULL));
	if (renameat(queue_fs_fd[d], name, queue_fs_fd[QD_QUAR], to) < 0)
		log_err("event=spool_error op=quarantine file=%s/%s error=\"%s\"", queue_fs_names[d], name,
		        strerror(errno));
	else
		log_warn("event=quarantine file=%s/%s to=quarantine/%s reason=\"%s\"", queue_fs_names[d], name,
		         to, why);
}

int queue_fs_read_env(uint64_t id, char **text, size_t *len)
{
	char name[17];
	idname(id, name);
	int fd = openat(queue_fs_fd[QD_ENV], name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct buf b;
	buf_init(&b);
	for (;;) {
		buf_reserve(&b, 65536);
		ssize_t r = read(fd, b.p + b.len, b.cap - b.len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			buf_free(&b);
			return -1;
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
	}
	close(fd);
	buf_reserve(&b, 1);
	b.p[b.len] = '\0';
	*len = b.len;
	*text = buf_detach(&b);
	return 0;
}

int queue_fs_truncate_env(uint64_t id, size_t len)
{
	char name[17];
	idname(id, name);
	int fd = openat(queue_fs_fd[QD_ENV], name, O_WRONLY | O_CLOEXEC);
	int r = (fd < 0 || ftruncate(fd, (off_t)len) < 0 || fdatasync(fd) < 0) ? -1 : 0;
	if (fd >= 0)
		close(fd);
	return r;
}

uint64_t queue_fs_free_bytes(void)
{
	struct statvfs sv;
	if (fstatvfs(queue_fs_fd[QD_SPOOL], &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

void queue_fs_uncommit(uint64_t id)
{
	char name[17];
	idname(id, name);
	unlinkat(queue_fs_fd[QD_ENV], name, 0);
	fsync(queue_fs_fd[QD_ENV]);
}
