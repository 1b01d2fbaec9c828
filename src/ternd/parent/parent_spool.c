/* parent_spool — the spool as the parent (root) prepares it before any role starts: create
 * the spool and its directories, check what is already there, hand the directories to the
 * queue user (doc/QUEUE.md, "Owners and modes").
 * Owns: those checks, and the refusal to start (exit 78) when they fail.
 * Trusts: the path of the spool's parent directory (the configuration's), and nothing inside
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
	if (fs_mkdirs(dir, 0755) < 0 || (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) < 0)
		parent_spool_refuse(dir, NULL, strerror(errno));
	int sticky = (st.st_mode & S_ISVTX) != 0;
	if (o->root && (st.st_uid != 0 || (!sticky && (st.st_mode & S_IWOTH)) ||
	                (!sticky && (st.st_mode & S_IWGRP) && st.st_gid != 0)))
		parent_spool_refuse(dir, NULL, "the spool's parent directory must belong to root and "
		                    "be writable by root only (or sticky)");
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
