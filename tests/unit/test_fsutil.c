/* test_fsutil — the descriptor and no-follow helpers of src/lib/fsutil.c: fs_opendir_at
 * refuses a symbolic link (ELOOP) and a non-directory (ENOTDIR); fs_close_except keeps
 * exactly the listed descriptors; fs_std_fds reopens a closed 0-2 on /dev/null. */
#include "t.h"
#include "lib/fsutil.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static void test_opendir_at(void)
{
	char dir[] = "/tmp/tern-fsutil-XXXXXX";
	T_CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	T_CHECK(mkdirat(dfd, "sub", 0700) == 0);
	T_CHECK(symlinkat("sub", dfd, "link") == 0);
	int f = openat(dfd, "file", O_CREAT | O_WRONLY, 0600);
	close(f);
	struct stat st;
	int fd = fs_opendir_at(dfd, "sub", &st);
	T_CHECK(fd >= 0 && S_ISDIR(st.st_mode));
	close(fd);
	errno = 0;
	T_EQ_INT(fs_opendir_at(dfd, "link", &st), -1);
	T_EQ_INT(errno, ELOOP);
	T_EQ_INT(fs_opendir_at(dfd, "file", &st), -1);
	T_EQ_INT(errno, ENOTDIR);
	T_EQ_INT(fs_opendir_at(dfd, "missing", &st), -1);
	T_EQ_INT(errno, ENOENT);
	unlinkat(dfd, "link", 0);
	unlinkat(dfd, "file", 0);
	unlinkat(dfd, "sub", AT_REMOVEDIR);
	close(dfd);
	rmdir(dir);
}

/* in a child: open some descriptors, keep a few, report which survived in the exit code */
static void test_close_except(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fds[6];
		for (int i = 0; i < 6; i++)
			fds[i] = open("/dev/null", O_RDONLY);
		int high = dup2(fds[0], 200);
		int keep[] = { fds[4], fds[1], high, fds[1], 1 };   /* unsorted, a duplicate, < low */
		fs_close_except(3, keep, 5);
		int ok = is_open(0) && is_open(1) && is_open(2) && is_open(fds[1]) && is_open(fds[4]) &&
		         is_open(high) && !is_open(fds[0]) && !is_open(fds[2]) && !is_open(fds[3]) &&
		         !is_open(fds[5]) && !is_open(high + 1);
		fs_close_except(3, NULL, 0);
		ok = ok && is_open(2) && !is_open(fds[1]) && !is_open(high);
		_exit(ok ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_std_fds(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		close(0);
		close(2);
		fs_std_fds();
		int fd = open("/dev/null", O_RDONLY);     /* takes no place of 0-2 */
		_exit(is_open(0) && is_open(1) && is_open(2) && fd > 2 ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void run(void)
{
	test_opendir_at();
	test_close_except();
	test_std_fds();
}

T_MAIN(run)
