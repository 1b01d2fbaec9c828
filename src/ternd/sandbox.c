/* sandbox — see sandbox.h. Owns the allow-list of every role (which system calls it may make,
 * and with which arguments where that narrows it usefully) and the report of a forbidden call.
 * Trusts: libseccomp to compile the lists into a BPF program; nothing the role does later.
 *
 * The lists were collected by running the whole e2e and crash suites under `strace -f`, then
 * tightened by reading each role's code; the same suites run with the filters on, where a
 * missing entry kills a role and names the call (`sandbox log` instead lets the call pass and
 * the kernel's audit log name it). A call that is not listed traps: the SIGSYS handler writes one
 * log line naming the call (event=role_killed ... syscall=NAME nr=N) with write(2) and the
 * process dies of SIGSYS, so the parent restarts it like any other dead role.
 * The lists run from the moment run_role() calls sandbox_apply(), so they also cover what a
 * role does while it starts (its event base, libunbound's context, the NSS modules). */
#include "ternd/sandbox.h"
#include "lib/log.h"
#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* what every role does: its event loop (epoll, a pipe for signals), the codec (sendmsg and
 * recvmsg with SCM_RIGHTS), memory, clocks (normally the vDSO's), signal handlers (and the
 * SIGSYS report), the log (write on fd 2), and exit. Added with argument checks: kill and
 * tgkill of the role's own pid only (crash points, abort), mmap and mprotect never with
 * PROT_EXEC (no role maps new code once it runs: the NSS modules and OpenSSL's configuration
 * are loaded before the filter). */
static const char *const sb_base[] = {
	"read", "write", "close", "pipe2",
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "sendmsg", "recvmsg",
	"brk", "munmap", "mremap", "futex", "getrandom",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "restart_syscall",
	"clock_gettime", "gettimeofday", "time",
	"getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "exit_group",
	"poll", "ppoll", NULL   /* poll: telling a dead peer's channel by its hang-up (msg.c) */
};

/* looking names up through NSS (users, groups: files, nscd, systemd's userdb over AF_UNIX)
 * and reading files by name: openat is added read-only (no write access mode, no O_CREAT,
 * O_TRUNC or O_APPEND) */
#define SB_NSS_CALLS "newfstatat", "fstat", "lseek", "readlinkat", "connect", "poll", "ppoll"

/* smtp: sessions on accepted sockets, nothing else (chrooted into an empty directory) */
static const char *const sb_smtp[] = { "accept4", "sendto", NULL };
/* mta: its own outbound connections (socket() for AF_INET and AF_INET6 only; AF_UNIX stream
 * sockets too when lmtpsocketdirs is set: sandbox_mta_allow_unix), the message on a
 * descriptor the queue passed */
static const char *const sb_mta[] = {
	"connect", "bind", "getsockopt", "sendto", "pread64", NULL
};
/* lookup: tables and NSS by name, read-only, and the existence and permission checks of the
 * files it routes to (.qmail, aliases: access); libunbound's sockets and its resolver thread
 * (clone only with CLONE_THREAD: a thread, never a process); libldap's connections (uname:
 * its host name for SASL, the socket's names, writev; its non-blocking connect needs only
 * the fcntl commands every role has) */
static const char *const sb_lookup[] = {
	SB_NSS_CALLS, "access", "faccessat", "faccessat2", "socketpair", "bind", "getsockopt", "setsockopt", "sendto", "recvfrom",
	"madvise", "set_robust_list", "rseq", "exit",
	"uname", "getsockname", "getpeername", "writev", "readv", "shutdown", NULL
};
/* queue: the spool (doc/QUEUE.md) and the maildrop directory; no socket() at all */
static const char *const sb_queue[] = {
	"openat", "newfstatat", "fstat", "lseek", "pread64", "getdents64", "dup",
	"fsync", "fdatasync", "syncfs", "ftruncate", "flock", "fstatfs", "copy_file_range",
	"mkdir", "chmod", "renameat", "unlinkat", "inotify_init1", "inotify_add_watch", NULL
};
/* control: its listeners, the queue-protocol agents it connects to, NSS (peer credentials
 * to names), configured files read-only, messages on descriptors the queue passed */
static const char *const sb_control[] = {
	SB_NSS_CALLS, "accept4", "getsockopt", "setsockopt", "sendto", "pread64", "fsync",
	"statfs", NULL
};
/* mda: ends the address list of a prog run on the socket the parent handed it (doc/PROG.md) */
static const char *const sb_mda[] = { "shutdown", NULL };
static const char *const sb_none[] = { NULL };

/* the mta may make AF_UNIX stream sockets (lmtp's unix:/PATH). A filter cannot read the path
 * connect() is given, so which sockets it reaches is the kernel's file permissions for the
 * mta's own account (a socket needs write access) plus mta.c's lmtpsocketdirs check; off
 * unless lmtpsocketdirs is set (doc/LMTP.md says why this, and not a parent-made fd). */
static int sb_mta_unix;

void sandbox_mta_allow_unix(void) { sb_mta_unix = 1; }

enum { SB_INET = 1, SB_UNIX = 2 };
enum { SB_OPEN_RO = 1, SB_THREADS = 2, SB_NSS = 4, SB_CRYPTO = 8 };

static const struct sb_role {
	const char *const *calls;
	unsigned sockets;        /* socket() for these domains */
	unsigned flags;
} sb_roles[R_NROLES] = {
	[R_PARENT]  = { sb_none, 0, 0 },          /* never filtered (doc/ARCHITECTURE.md) */
	[R_SMTP]    = { sb_smtp, 0, 0 },
	[R_LOOKUP]  = { sb_lookup, SB_INET | SB_UNIX, SB_OPEN_RO | SB_THREADS | SB_NSS },
	[R_QUEUE]   = { sb_queue, 0, 0 },
	[R_SCHED]   = { sb_none, 0, 0 },
	[R_MDA]     = { sb_mda, 0, 0 },
	[R_MTA]     = { sb_mta, SB_INET, 0 },
	[R_CONTROL] = { sb_control, SB_INET | SB_UNIX, SB_OPEN_RO | SB_NSS | SB_CRYPTO },
};

/* ---- the report of a forbidden call (async-signal-safe: write(2) and integer formatting) ---- */

#define SB_NAMES 512
static const char *sb_names[SB_NAMES];   /* native syscall names, resolved before the filter */
static char sb_role_name[16];
static unsigned sb_arch;                 /* AUDIT_ARCH_ of this build */

static size_t sb_put(char *b, size_t n, size_t cap, const char *s)
{
	while (*s && n < cap)
		b[n++] = *s++;
	return n;
}

static size_t sb_putu(char *b, size_t n, size_t cap, unsigned long v, int width)
{
	char d[24];
	int k = 0;
	do {
		d[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v || k < width);
	while (k && n < cap)
		b[n++] = d[--k];
	return n;
}

/* the log's timestamp (log.c) without gmtime_r, which takes a lock: days to civil date */
static size_t sb_stamp(char *b, size_t n, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
	long z = days + 719468, era = z / 146097, doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	long y = yoe + era * 400 + (m <= 2);
	unsigned long f[] = { (unsigned long)y, (unsigned long)m, (unsigned long)d,
	                      (unsigned long)secs / 3600, (unsigned long)secs / 60 % 60,
	                      (unsigned long)secs % 60, (unsigned long)ts.tv_nsec / 1000000 };
	static const char *const sep[] = { "-", "-", "T", ":", ":", ".", "Z " };
	for (int i = 0; i < 7; i++) {
		n = sb_putu(b, n, cap, f[i], i == 0 ? 4 : i == 6 ? 3 : 2);
		n = sb_put(b, n, cap, sep[i]);
	}
	return n;
}

static void sb_on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char b[320];
	size_t n = 0, cap = sizeof b - 1;
	int nr = si->si_syscall;
	const char *name = si->si_arch == sb_arch && nr >= 0 &&
	                   nr < SB_NAMES && sb_names[nr] ? sb_names[nr] : "?";
	n = sb_stamp(b, n, cap);
	n = sb_put(b, n, cap, sb_role_name);
	n = sb_put(b, n, cap, "[");
	n = sb_putu(b, n, cap, (unsigned long)getpid(), 1);
	n = sb_put(b, n, cap, "] err: event=role_killed role=");
	n = sb_put(b, n, cap, sb_role_name);
	n = sb_put(b, n, cap, " signal=SIGSYS syscall=");
	n = sb_put(b, n, cap, name);
	n = sb_put(b, n, cap, " nr=");
	n = sb_putu(b, n, cap, (unsigned long)(unsigned)nr, 1);
	n = sb_put(b, n, cap, " arch=0x");
	for (int s = 28; s >= 0 && n < cap; s -= 4)
		b[n++] = "0123456789abcdef"[(si->si_arch >> s) & 15];
	n = sb_put(b, n, cap, " reason=\"seccomp: forbidden system call\"\n");
	ssize_t w = write(2, b, n);
	(void)w;
	/* die of SIGSYS, so the parent sees how the role ended: default action, unblocked, and a
	 * kill of our own pid, which the filter allows */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t set;
	sigaction(SIGSYS, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	kill(getpid(), SIGSYS);
	_exit(128 + SIGSYS);
}

/* ---- capabilities ------------------------------------------------------------------------- */

int sandbox_drop_caps(void)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		log_err("event=sandbox_failed step=ambient_caps error=\"%s\"", strerror(errno));
		return -1;
	}
	if (geteuid() != 0)
		return 0;
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EPERM) {   /* a container that took CAP_SETPCAP from root: the role
		                         * still loses every capability at the setuid, and
		                         * no_new_privs and the filter stop any exec */
			log_warn("event=capbset_kept reason=\"no CAP_SETPCAP\"");
			return 0;
		}
		log_err("event=sandbox_failed step=capbset_drop cap=%d error=\"%s\"", cap,
		        strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the filter --------------------------------------------------------------------------- */

static int sb_allow(scmp_filter_ctx ctx, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0;     /* not a system call of this architecture (e.g. epoll_wait on arm64) */
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	if (rc < 0)
		log_err("event=sandbox_failed step=rule syscall=%s error=\"%s\"", name, strerror(-rc));
	return rc;
}

static int sb_allow_list(scmp_filter_ctx ctx, const char *const *calls)
{
	for (; *calls; calls++)
		if (sb_allow(ctx, *calls) < 0)
			return -1;
	return 0;
}

/* the rules that look at arguments */
static int sb_allow_args(scmp_filter_ctx ctx, const struct sb_role *sr)
{
	const scmp_datum_t self = (scmp_datum_t)getpid();
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, SCMP_A0(SCMP_CMP_EQ, self));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, self));
	static const struct { unsigned want; int domain; } doms[] = {
		{ SB_INET, AF_INET }, { SB_INET, AF_INET6 }, { SB_UNIX, AF_UNIX },
	};
	for (size_t i = 0; i < sizeof doms / sizeof doms[0]; i++)
		if (sr->sockets & doms[i].want)
			rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			                       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)doms[i].domain));
	if (sr == &sb_roles[R_MTA] && sb_mta_unix)       /* stream only: the type's low bits */
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
		                       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_UNIX),
		                       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)SOCK_STREAM));
	/* fcntl: descriptor and status flags and duplication only; F_SETOWN/F_SETSIG with
	 * O_ASYNC would make the kernel signal another process of the same account for us */
	static const int fcntl_ok[] = { F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD, F_DUPFD_CLOEXEC };
	for (size_t i = 0; i < sizeof fcntl_ok / sizeof fcntl_ok[0]; i++)
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
		                       SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)fcntl_ok[i]));
	/* setsockopt: TCP_NODELAY only (src/lib/io.c sets it on every connection it owns) */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
	                       SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)IPPROTO_TCP),
	                       SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)TCP_NODELAY));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
	                       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	                       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (sr->flags & SB_OPEN_RO)
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
		                       SCMP_A2(SCMP_CMP_MASKED_EQ,
		                               O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND, O_RDONLY));
	if (sr->flags & SB_THREADS) {
		/* threads, never processes: clone only with CLONE_THREAD; clone3 keeps its flags in
		 * memory the filter cannot read, so it answers ENOSYS and glibc falls back to clone */
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
		                       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	}
	if (sr->flags & SB_NSS)   /* libnss_systemd reads the bounding set when it loads */
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		                       SCMP_A0(SCMP_CMP_EQ, PR_CAPBSET_READ));
	if (rc != 0)
		log_err("event=sandbox_failed step=argument_rules");
	return rc != 0 ? -1 : 0;
}

static void sb_resolve_names(void)
{
	sb_arch = seccomp_arch_native();
	for (int nr = 0; nr < SB_NAMES; nr++)
		if (!sb_names[nr])
			sb_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
}

static int sb_trap_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = sb_on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		log_err("event=sandbox_failed step=sigaction error=\"%s\"", strerror(errno));
		return -1;
	}
	return 0;
}

/* the NSS modules are loaded on first use, by dlopen(), which the filter does not allow:
 * ask for a name that does not exist once, so that every module of nsswitch.conf loads now */
static void sb_load_nss(void)
{
	(void)getpwnam("_tern-sandbox-nss-probe");
	(void)getgrnam("_tern-sandbox-nss-probe");
}

/* OpenSSL reads its configuration file (and would load what it names) on first use */
static void sb_load_crypto(void)
{
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
		log_warn("event=sandbox_openssl_init_failed");
}

static int sb_load(enum role r, const char *mode)
{
	const struct sb_role *sr = &sb_roles[r];
	int log_only = strcmp(mode, "log") == 0;
	if (!log_only && (sb_resolve_names(), sb_trap_handler() < 0))
		return -1;
	if (sr->flags & SB_NSS)
		sb_load_nss();
	if (sr->flags & SB_CRYPTO)
		sb_load_crypto();
	scmp_filter_ctx ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	if (!ctx) {
		log_err("event=sandbox_failed step=seccomp_init");
		return -1;
	}
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, log_only ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	if (rc == 0 && (sb_allow_list(ctx, sb_base) < 0 || sb_allow_list(ctx, sr->calls) < 0 ||
	                sb_allow_args(ctx, sr) < 0))
		rc = -1;
	if (rc == 0 && (rc = seccomp_load(ctx)) < 0)
		log_err("event=sandbox_failed step=seccomp_load error=\"%s\" hint=\"the kernel must "
		        "offer seccomp filters; 'sandbox no' runs the roles without them\"", strerror(-rc));
	seccomp_release(ctx);
	return rc == 0 ? 0 : -1;
}

#ifdef TERN_TEST
/* TERN_TEST_SYSCALL=ROLE:NAME: on SIGUSR2, that role makes system call NAME with every
 * argument -1 (harmless where it is allowed: EINVAL, EFAULT, EBADF), to show that the filter
 * stops it and the log names it (tests/e2e/test_sandbox.py) */
static long sb_test_nr = -1;

static void sb_test_call(int sig)
{
	syscall(sb_test_nr, -1L, -1L, -1L, -1L, -1L, -1L);
}

static void sb_test_hook(enum role r)
{
	const char *spec = getenv("TERN_TEST_SYSCALL");
	const char *colon = spec ? strchr(spec, ':') : NULL;
	size_t len = strlen(role_name(r));
	if (!colon || (size_t)(colon - spec) != len || strncmp(spec, role_name(r), len) != 0)
		return;
	if ((sb_test_nr = seccomp_syscall_resolve_name(colon + 1)) == __NR_SCMP_ERROR)
		log_fatal("event=test_syscall_unknown name=%s", colon + 1);
	signal(SIGUSR2, sb_test_call);
	log_info("event=test_syscall_armed role=%s syscall=%s signal=SIGUSR2", role_name(r), colon + 1);
}
#endif

int sandbox_apply(enum role r, const char *mode)
{
	snprintf(sb_role_name, sizeof sb_role_name, "%s", role_name(r));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("event=sandbox_failed step=no_new_privs error=\"%s\"", strerror(errno));
		return -1;
	}
	if (mode && strcmp(mode, "no") != 0 && r > R_PARENT && r < R_NROLES && sb_load(r, mode) < 0)
		return -1;
#ifdef TERN_TEST
	sb_test_hook(r);   /* armed (and logged) once the filter is in place */
#endif
	return 0;
}
