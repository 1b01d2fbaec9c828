/* parent_spool — the spool as the parent (root) prepares it before any role starts: create
 * the spool and its directories, check what is already there, hand the directories to the
 * queue user (doc/QUEUE.md, "Owners and modes").
 * Owns: those checks, and the refusal to start (exit 78) when they fail.
 * Trusts: as root, no path by itself: every symbolic link on the way to the spool must be
 * root's, and every directory from "/" to the spool's parent root's and writable by nobody
 * else (or sticky), walked with O_NOFOLLOW from "/". Nothing inside
 * the spool, which the queue account writes: every name there is reached from a verified
 * directory descriptor with O_NOFOLLOW, and ownership and modes are changed with
 * fchown/fchmod on what was opened, never by path. The queue's lock file and the pid file are
 * the queue role's (it creates them as queueuser); root only checks they are no links. */
#include "ternd/parent/parent.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct parent_spool_owner {
	int root;                    /* we run as root: check owners, chown to the queue user */
	uid_t uid;                   /* the queue user */
	gid_t gid;
	const char *name;
};

void parent_spool_refuse(const char *dir, const char *name, const char *problem)
{
	size_t n = strlen(dir);
	const char *sep = name && n && dir[n - 1] != '/' ? "/" : "";
	log_err("event=spool_unsafe path=%s%s%s problem=\"%s\" hint=\"remove or fix it (as root), "
	        "then start ternd again\"", dir, sep, name ? name : "", problem);
	exit(78);
}

#define PARENT_SPOOL_MAXLINKS 8

/* as root: every symbolic link on path (and on the paths they point to) is root's, since a
 * link that another account made (in a sticky directory, say) could send the spool anywhere */
static void parent_spool_links(const char *path, int depth)
{
	char p[PATH_MAX], target[PATH_MAX], next[PATH_MAX], problem[96];
	snprintf(p, sizeof p, "%s", path);
	for (char *s = p + 1; ; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		struct stat st;
		if (lstat(p, &st) < 0)
			return;                    /* missing from here on: created below, as root */
		if (S_ISLNK(st.st_mode)) {
			if (st.st_uid != 0) {
				snprintf(problem, sizeof problem, "is a symbolic link owned by uid %lu, not "
				         "root", (unsigned long)st.st_uid);
				parent_spool_refuse(p, NULL, problem);
			}
			ssize_t n = readlink(p, target, sizeof target - 1);
			if (n < 0 || depth >= PARENT_SPOOL_MAXLINKS)
				parent_spool_refuse(p, NULL, n < 0 ? strerror(errno) : "too many links");
			target[n] = '\0';
			char *slash = strrchr(p, '/');
			int len = target[0] == '/' || !slash ? (int)strlen(target) :
			          (int)(slash - p) + 1 + (int)strlen(target);
			if (len >= (int)sizeof next)
				parent_spool_refuse(p, NULL, "link target too long");
			if (target[0] == '/' || !slash)
				memcpy(next, target, strlen(target) + 1);
			else {
				memcpy(next, p, (size_t)(slash - p) + 1);
				memcpy(next + (slash - p) + 1, target, strlen(target) + 1);
			}
			parent_spool_links(next, depth + 1);
		}
		*s = c;
		if (!c)
			return;
	}
}

/* may root trust directory st (named shown)? owned by root; others may not write it unless
 * it is sticky; group write only for group 0 when lax (the spool's parent, as before) */
static void parent_spool_trusted(const char *shown, const struct stat *st, int lax)
{
	int sticky = (st->st_mode & S_ISVTX) != 0;
	if (st->st_uid != 0 || (!sticky && (st->st_mode & S_IWOTH)) ||
	    (!sticky && (st->st_mode & S_IWGRP) && !(lax && st->st_gid == 0)))
		parent_spool_refuse(shown, NULL, lax ? "the spool's parent directory must belong to "
		                    "root and be writable by root only (or sticky)" : "a directory above "
		                    "the spool must belong to root and be writable by root only (or "
		                    "sticky)");
}

/* as root: the spool's parent dir, resolved, reached from "/" one directory at a time with
 * O_NOFOLLOW, each checked; returns its descriptor */
static int parent_spool_walk(const char *dir)
{
	char real[PATH_MAX], shown[PATH_MAX];
	if (!realpath(dir, real))
		parent_spool_refuse(dir, NULL, strerror(errno));
	struct stat st;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		parent_spool_refuse("/", NULL, strerror(errno));
	parent_spool_trusted("/", &st, strcmp(real, "/") == 0);
	size_t at = 0;
	shown[0] = '\0';
	for (char *c = strtok(real, "/"); c; c = strtok(NULL, "/")) {
		at += (size_t)snprintf(shown + at, sizeof shown - at, "/%s", c);
		int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 || fstat(nfd, &st) < 0)
			parent_spool_refuse(shown, NULL, errno == ELOOP ? "is a symbolic link" :
			                    strerror(errno));
		close(fd);
		fd = nfd;
		parent_spool_trusted(shown, &st, 0);
	}
	return fd;
}

/* the spool's parent: created if missing; as root, nobody but root may rename its entries */
static int parent_spool_parent(const char *spool, char dir[PATH_MAX], char base[NAME_MAX + 1],
                               const struct parent_spool_owner *o)
{
	size_t n = strlen(spool);
	while (n > 1 && spool[n - 1] == '/')
		n--;
	if (n >= PATH_MAX || n == 0)
		parent_spool_refuse(spool, NULL, "path too long or empty");
	memcpy(dir, spool, n);
	dir[n] = '\0';
	char *slash = strrchr(dir, '/');
	if (strlen(slash ? slash + 1 : dir) > NAME_MAX)
		parent_spool_refuse(spool, NULL, "name too long");
	snprintf(base, NAME_MAX + 1, "%s", slash ? slash + 1 : dir);
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		parent_spool_refuse(spool, NULL, "the spool must be a named directory");
	if (!slash)
		snprintf(dir, PATH_MAX, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	struct stat st;
	int fd = -1;
	if (o->root)
		parent_spool_links(spool, 0);
	if (fs_mkdirs(dir, 0755) < 0)
		parent_spool_refuse(dir, NULL, strerror(errno));
	if (!o->root) {
		if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			parent_spool_refuse(dir, NULL, strerror(errno));
		return fd;
	}
	fd = parent_spool_walk(dir);
	if (fstat(fd, &st) < 0)
		parent_spool_refuse(dir, NULL, strerror(errno));
	parent_spool_trusted(dir, &st, 1);
	return fd;
}

/* open the directory name under dirfd (creating it with mode if missing), check its type and
 * owner, give it to the queue user with mode */
static int parent_spool_dir(int dirfd, const char *shown, const char *name, mode_t mode,
                            const struct parent_spool_owner *o, int root_ok)
{
	char problem[160];
	struct stat st;
	int created = mkdirat(dirfd, name, mode) == 0;
	if (!created && errno != EEXIST)
		parent_spool_refuse(shown, name, strerror(errno));
	int fd = fs_opendir_at(dirfd, name, &st);
	if (fd < 0)
		parent_spool_refuse(shown, name, errno == ELOOP ? "is a symbolic link, not a directory" :
		                    errno == ENOTDIR ? "is not a directory" : strerror(errno));
	if (o->root && st.st_uid != o->uid && !(st.st_uid == 0 && (created || root_ok))) {
		snprintf(problem, sizeof problem, "owned by uid %lu, expected %s (uid %lu)",
		         (unsigned long)st.st_uid, o->name, (unsigned long)o->uid);
		parent_spool_refuse(shown, name, problem);
	}
	if ((o->root && fchown(fd, o->uid, o->gid) < 0) || fchmod(fd, mode) < 0)
		parent_spool_refuse(shown, name, strerror(errno));
	return fd;
}

/* files of the spool's top that the queue role creates: absent or regular files, never links */
static void parent_spool_files(int sfd, const char *spool)
{
	static const char *const files[] = { "lock", "ternd.pid", "ternd.pid.tmp" };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		struct stat st;
		if (fstatat(sfd, files[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				parent_spool_refuse(spool, files[i], strerror(errno));
			continue;
		}
		if (S_ISLNK(st.st_mode))
			parent_spool_refuse(spool, files[i], "is a symbolic link");
		if (!S_ISREG(st.st_mode))
			parent_spool_refuse(spool, files[i], "is not a regular file");
	}
}

int parent_spool_prepare(const struct config *c)
{
	static const struct { const char *name; mode_t mode; } sub[] = {
		{ "data", 0700 }, { "env", 0700 }, { "tmp", 0700 }, { "maildrop", 01733 },
		{ "quarantine", 0700 },
	};
	struct parent_spool_owner o = { .root = geteuid() == 0, .name = c->queueuser };
	if (o.root) {
		struct passwd *pw = getpwnam(c->queueuser);
		if (!pw) {
			log_err("event=no_such_user user=%s hint=\"make install creates it\"", c->queueuser);
			exit(78);
		}
		o.uid = pw->pw_uid;
		o.gid = pw->pw_gid;
	}
	char dir[PATH_MAX], base[NAME_MAX + 1];
	int pfd = parent_spool_parent(c->spool, dir, base, &o);
	/* a root-owned spool is fine: only root can have put it into a parent only root writes */
	int sfd = parent_spool_dir(pfd, dir, base, 0755, &o, 1);
	close(pfd);
	for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
		close(parent_spool_dir(sfd, c->spool, sub[i].name, sub[i].mode, &o, 0));
	parent_spool_files(sfd, c->spool);
	return sfd;
}
