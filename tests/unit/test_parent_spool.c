/* test_parent_spool — the spool as root prepares it (parent_spool.c), each case in a child
 * process because a refusal exits 78: a fresh spool gets its directories and modes; a
 * symbolic link where a directory or a file belongs, a file where the pid file belongs,
 * and (as root) a directory of another account or a spool parent others may write, stop
 * it — and the link's target is left as it was. */
#include "t.h"
#include "ternd/parent/parent_spool.c"
#include <pwd.h>
#include <sys/wait.h>

static char base[64], spool[128], target[128], qname[64];
static struct config cfg;

static void setup(void)
{
	snprintf(base, sizeof base, "/tmp/tern-spool-XXXXXX");
	if (!mkdtemp(base))
		abort();
	chmod(base, 0755);
	snprintf(spool, sizeof spool, "%s/spool", base);
	snprintf(target, sizeof target, "%s/target", base);
	memset(&cfg, 0, sizeof cfg);
	cfg.spool = spool;
	/* as root the spool goes to nobody (any account but root will do); else to ourselves */
	struct passwd *pw = getpwuid(geteuid() == 0 ? 65534 : geteuid());
	snprintf(qname, sizeof qname, "%s", pw ? pw->pw_name : "nobody");
	cfg.queueuser = qname;
}

static void cleanup(void)
{
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", base);
}

/* exit status of parent_spool_prepare in a child */
static int prepare(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = parent_spool_prepare(&cfg);
		_exit(fd >= 0 ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static mode_t mode_of(const char *name)
{
	char p[256];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", spool, name);
	return lstat(p, &st) == 0 ? st.st_mode : 0;
}

static void test_fresh(void)
{
	setup();
	T_EQ_INT(prepare(), 0);
	T_EQ_INT(mode_of("data") & 07777, 0700);
	T_EQ_INT(mode_of("maildrop") & 07777, 01733);
	T_EQ_INT(mode_of("quarantine") & 07777, 0700);
	T_EQ_INT(prepare(), 0);                          /* again, over what it made */
	cleanup();
}

/* replace spool/name by a link to a directory or file outside, which must stay untouched */
static void test_link(const char *name, int dir)
{
	setup();
	T_EQ_INT(prepare(), 0);
	char p[256];
	snprintf(p, sizeof p, "%s/%s", spool, name);
	if (dir) {
		rmdir(p);
		mkdir(target, 0750);
	} else {
		close(open(target, O_CREAT | O_WRONLY, 0640));
	}
	T_CHECK(symlink(target, p) == 0);
	T_EQ_INT(prepare(), 78);
	struct stat st;
	T_CHECK(stat(target, &st) == 0 && (st.st_mode & 07777) == (dir ? 0750 : 0640) &&
	        st.st_uid == geteuid());
	cleanup();
}

static void test_not_a_file(void)
{
	setup();
	T_EQ_INT(prepare(), 0);
	char p[256];
	snprintf(p, sizeof p, "%s/ternd.pid", spool);
	mkdir(p, 0700);
	T_EQ_INT(prepare(), 78);
	cleanup();
	setup();
	T_EQ_INT(prepare(), 0);
	snprintf(p, sizeof p, "%s/tmp", spool);
	rmdir(p);
	close(open(p, O_CREAT | O_WRONLY, 0600));        /* a file where a directory belongs */
	T_EQ_INT(prepare(), 78);
	cleanup();
}

static void test_owners(void)
{
	if (geteuid() != 0)
		return;
	setup();
	T_EQ_INT(prepare(), 0);
	char p[256];
	snprintf(p, sizeof p, "%s/env", spool);
	T_CHECK(chown(p, 4242, 4242) == 0);
	T_EQ_INT(prepare(), 78);
	struct stat st;
	T_CHECK(stat(p, &st) == 0 && st.st_uid == 4242);    /* not taken over */
	cleanup();
	setup();
	T_CHECK(chown(base, 0, 4242) == 0 && chmod(base, 0775) == 0);   /* group 4242 may rename */
	T_EQ_INT(prepare(), 78);
	T_CHECK(chmod(base, 01777) == 0);                                 /* sticky: fine */
	T_EQ_INT(prepare(), 0);
	cleanup();
}

static void run(void)
{
	test_fresh();
	test_link("data", 1);
	test_link("maildrop", 1);
	test_link("lock", 0);
	test_link("ternd.pid.tmp", 0);
	test_not_a_file();
	test_owners();
}

T_MAIN(run)
