/* fsutil — see fsutil.h. */
#include "lib/fsutil.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdirs(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -1;
			*s = '/';
		}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int fs_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int fs_opendir_at(int dirfd, const char *name, struct stat *st)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat lst;
		/* O_NOFOLLOW|O_DIRECTORY on a link gives ELOOP or ENOTDIR: say which it was */
		if ((e == ELOOP || e == ENOTDIR) && fstatat(dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0)
			e = S_ISLNK(lst.st_mode) ? ELOOP : ENOTDIR;
		errno = e;
		return -1;
	}
	if (fstat(fd, st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int fs_cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int fs_close_except(int low, const int *keep, size_t n)
{
	int k[256];
	if (n > sizeof k / sizeof k[0]) {
		errno = E2BIG;
		return -1;
	}
	if (n)
		memcpy(k, keep, n * sizeof *k);
	qsort(k, n, sizeof *k, fs_cmp_int);
	unsigned from = (unsigned)low;
	for (size_t i = 0; i < n; i++) {
		if (k[i] < low || (unsigned)k[i] < from)
			continue;                    /* below the range, or a duplicate */
		if ((unsigned)k[i] > from)
			close_range(from, (unsigned)k[i] - 1, 0);
		from = (unsigned)k[i] + 1;
	}
	close_range(from, ~0U, 0);
	return 0;
}

void fs_std_fds(void)
{
	/* in order: the lower ones are open, so open() returns exactly fd */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", O_RDWR) < 0)
			return;
}
