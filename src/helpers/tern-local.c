/* tern-local — the user-side delivery program (qmail-local's contract, doc/LOCAL.md).
 * Forked by ternd's parent already running as the recipient; refuses uid 0. Reads the message
 * on fd 0 (a seekable regular file), follows the .qmail rules of HOME (or the one INSTRUCTION
 * given) into Maildirs, mboxes, programs and forwards, and reports through its exit code
 * (0 ok, 100 bounce, 111 retry) and exactly one line on stdout. With -n (qmail-local -n) it
 * only prints the plan, one line per delivery, and delivers nothing.
 * Owns: the deliveries it makes for this one message. Trusts: its argv and environment (set
 * by the parent); nothing in the message, the .qmail files or the programs it runs, and no
 * .qmail file that someone besides the user could have written (dotqmail_trust: owner,
 * group and world write bits, checked on the opened descriptor).
 * With -p (a directory user's profile, doc/LDAP.md "Delivery") the store, qmailDotMode and
 * deliveryMode decide the deliveries (deliver_profile below); the profile itself, its
 * delivery lines, the store's creation, the quota, mailSizeMax and the RFC 3834 auto-reply
 * are src/helpers/local_profile.c's, which this file lends its report, exit and injection.
 * When in doubt it defers: a duplicate delivery is better than a lost one. */
#include "mail/ldapprof.h"
#include "helpers/local.h"
#include "helpers/local_profile.h"
#include "lib/buf.h"
#include "mail/dotqmail.h"
#include "mail/localargs.h"
#include "mail/mbox.h"
#include "lib/fsutil.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK          65536
#define OUT_MAX        1000          /* bytes of the report line / captured output */
#define DOTQMAIL_MAX   (1 << 20)     /* a bigger .qmail file is a mistake: defer */
#define LOCK_TIMEOUT   30            /* seconds to wait for an mbox lock */
#define DEFAULT_PATH   "/usr/local/bin:/usr/bin:/bin"

static const char usage[] = "usage: tern-local [-c] [-n] [-q] [-Q QUOTA] [-p PROFILE] [-A ARRIVAL] USER HOME "
			    "LOCAL DASH EXT DOMAIN SENDER DEFAULTDELIVERY [INSTRUCTION]";

static struct {
	const char *user, *home, *local, *dash, *ext, *domain, *sender, *aliasempty, *instr;
	char *plainsender;     /* qmail's form of SENDER, unquoted (dotqmail_sender_plain) */
	int create;            /* -c: create a missing Maildir */
	int loose;             /* -q: qmail-local's .qmail rule (only world-writable refused) */
	int dryrun;            /* -n: print the plan, deliver nothing (qmail-local -n) */
	const char *profile;   /* -p: a directory user's delivery profile (local_profile.h) */
	const char *quota;     /* -Q: the quota settings (local_profile.h) */
	const char *arrival;   /* -A: when the message was queued (unix seconds) */
	uid_t homeowner;       /* owner of HOME, for the .qmail owner rule */
	char *recip;           /* LOCAL@DOMAIN */
	char *newsender;       /* envelope sender of forwards */
	const char *dflt;      /* part of EXT matched by "default", or NULL */
	struct buf rpline, dtline, ufline, head;   /* head = rpline + dtline */
	off_t msglen;
	struct buf fwd;        /* forward addresses, NUL-separated */
	size_t nfwd;
	struct buf report;
	int forwardonly;
	const char *src;       /* where the instructions came from, for messages */
} L;

/* --- the one output line -------------------------------------------------- */

static void say(const char *s)
{
	char out[OUT_MAX + 2];
	size_t n = 0;
	for (; *s && n < OUT_MAX; s++) {
		unsigned char c = (unsigned char)*s;
		out[n++] = c == '\n' ? '/' : (c < 0x20 || c == 0x7f) ? '_' : (char)c;
	}
	while (n && out[n - 1] == ' ')
		n--;
	out[n++] = '\n';
	fs_write_all(1, out, n);
}

/* the one line, then the exit code: 100 bounce, 111 retry */
static void vdie(int code, const char *fmt, va_list ap) __attribute__((noreturn));
static void vdie(int code, const char *fmt, va_list ap)
{
	char line[2 * OUT_MAX];
	vsnprintf(line, sizeof line, fmt, ap);
	say(line);
	exit(code);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdie(code, fmt, ap);
}

/* a success, told at the end with the others */
static void vreport(const char *fmt, va_list ap)
{
	char line[2 * OUT_MAX];
	vsnprintf(line, sizeof line, fmt, ap);
	if (L.report.len)
		buf_adds(&L.report, "; ");
	if (L.report.len < 4 * OUT_MAX)
		buf_adds(&L.report, line);
}

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
}

/* enhanced status for a write error: full disk and quota are told apart */
static const char *werr(int e)
{
	return e == EDQUOT ? "(#4.2.2)" : e == ENOSPC ? "(#4.3.1)" : "(#4.3.0)";
}

/* --- small I/O helpers ----------------------------------------------------- */

/* up to n bytes of the message at off; 0 at the end; -1 on error (a shrunken file is EIO) */
static ssize_t msg_read(char *p, size_t n, off_t off)
{
	if (off >= L.msglen)
		return 0;
	if ((off_t)n > L.msglen - off)
		n = (size_t)(L.msglen - off);
	for (;;) {
		ssize_t r = pread(0, p, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		return r;
	}
}

/* the whole message to a regular file: sendfile, else a read/write loop */
static int msg_copy(int out)
{
	off_t off = 0;
	while (off < L.msglen) {
		ssize_t r = sendfile(out, 0, &off, (size_t)(L.msglen - off));
		if (r > 0)
			continue;
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || (errno != EINVAL && errno != ENOSYS))
			return r == 0 ? (errno = EIO, -1) : -1;
		break;
	}
	char *chunk = xmalloc(CHUNK);
	ssize_t r = 0;
	while (off < L.msglen && (r = msg_read(chunk, CHUNK, off)) > 0 &&
	       fs_write_all(out, chunk, (size_t)r) == 0)
		off += r;
	free(chunk);
	return off == L.msglen ? 0 : -1;
}

/* --- setup: arguments, home, message, header lines, loop -------------------- */

static void parse_args(int argc, char **argv)
{
	const char **arg[] = { &L.user, &L.home, &L.local, &L.dash, &L.ext, &L.domain,
			       &L.sender, &L.aliasempty, &L.instr };
	struct localargs a;
	if (localargs_parse(argc, argv, &a) < 0)
		die(111, "%s (#4.3.0)", usage);
	L.create = a.create;
	L.dryrun = a.dryrun;
	L.loose = a.loose;
	L.profile = a.profile;
	L.quota = a.quota;
	L.arrival = a.arrival;
	for (int k = 0, i = a.first; i < argc; k++, i++)
		*arg[k] = argv[i];
	if (!*L.home)
		die(111, "%s (#4.3.0)", usage);
	if (L.home[0] != '/')     /* qmail-local refuses a relative one too */
		die(111, "Home directory %s is not an absolute path. (#4.3.0)", L.home);
}

static void check_home(void)
{
	struct stat st;
	if (chdir(L.home) == -1)
		die(111, "Unable to switch to home directory %s: %s. (#4.3.0)", L.home,
		    strerror(errno));
	if (stat(".", &st) == -1)
		die(111, "Unable to stat home directory: %s. (#4.3.0)", strerror(errno));
	if (st.st_mode & S_IWOTH)
		die(111, "Uh-oh: home directory is writable. (#4.7.0)");
	if ((st.st_mode & S_ISVTX) && L.dryrun)
		dprintf(2, "Warning: home directory is sticky.\n");
	else if (st.st_mode & S_ISVTX)
		die(111, "Home directory is sticky: user is editing his .qmail file. (#4.2.1)");
	L.homeowner = st.st_uid;
}

static void check_message(void)
{
	struct stat st;
	if (fstat(0, &st) == -1 || !S_ISREG(st.st_mode) || lseek(0, 0, SEEK_SET) == -1)
		die(111, "The message on fd 0 is not a seekable regular file. (#4.3.0)");
	L.msglen = st.st_size;
}

static void build_lines(void)
{
	struct buf r;
	buf_init(&r);
	buf_printf(&r, "%s@%s", L.local, L.domain);
	L.recip = buf_detach(&r);
	dotqmail_sender_plain(&r, L.sender);     /* qmail's forms: plain for SENDER and */
	L.plainsender = buf_detach(&r);          /* From_, quoted again for Return-Path */
	dotqmail_sender_quoted(&r, L.plainsender);
	buf_adds(&L.rpline, "Return-Path: <");
	dotqmail_hdr_value(&L.rpline, r.p ? r.p : "");
	buf_adds(&L.rpline, ">\n");
	buf_free(&r);
	buf_adds(&L.dtline, "Delivered-To: ");
	dotqmail_hdr_value(&L.dtline, L.recip);
	buf_adds(&L.dtline, "\n");
	mbox_from_line(&L.ufline, L.plainsender, time(NULL));
	buf_add(&L.head, L.rpline.p, L.rpline.len);
	buf_add(&L.head, L.dtline.p, L.dtline.len);
}

static void check_loop(void)
{
	char *needle = xstrndup(L.dtline.p, L.dtline.len - 1);
	char *chunk = xmalloc(CHUNK);
	struct dq_hscan h;
	off_t off = 0;
	ssize_t r;
	dotqmail_hscan_init(&h, needle);
	int st = DQ_HS_MORE;
	while (st == DQ_HS_MORE && (r = msg_read(chunk, CHUNK, off)) != 0) {
		if (r < 0)
			die(111, "Unable to read message: %s. (#4.3.0)", strerror(errno));
		st = dotqmail_hscan_feed(&h, chunk, (size_t)r);
		off += r;
	}
	if (st == DQ_HS_MORE)
		st = dotqmail_hscan_eof(&h);
	if (st == DQ_HS_FOUND)
		die(100, "This message is looping: it already has my Delivered-To line. (#5.4.6)");
	free(chunk);
	free(needle);
}

/* envelope sender of forwards: LOCAL-owner@DOMAIN when .qmail-EXT-owner exists */
static void set_newsender(void)
{
	struct buf name;
	struct stat st;
	buf_init(&name);
	L.newsender = xstrdup(L.sender);
	if (!*L.sender || strcmp(L.sender, "#@[]") == 0)
		return;
	dotqmail_owner_name(&name, L.dash, L.ext);
	if (stat(name.p, &st) == 0) {
		struct buf s;
		buf_init(&s);
		buf_printf(&s, "%s-owner@%s", L.local, L.domain);
		free(L.newsender);
		L.newsender = buf_detach(&s);
	} else if (errno != ENOENT && errno != ENOTDIR) {
		die(111, "Unable to stat %s: %s. (#4.3.0)", name.p, strerror(errno));
	}
	buf_free(&name);
}

/* --- finding the instructions ----------------------------------------------- */

/* does group gid have a member besides owner (listed, or by its primary group)? An unknown
 * group counts as shared: when in doubt, defer. */
static int group_shared(gid_t gid, uid_t owner)
{
	struct group *gr = getgrgid(gid);
	struct passwd *pw;
	int shared = !gr;
	for (char **m = gr ? gr->gr_mem : NULL; m && *m && !shared; m++)
		shared = !(pw = getpwnam(*m)) || pw->pw_uid != owner;
	setpwent();
	while (!shared && (pw = getpwent()))
		shared = pw->pw_gid == gid && pw->pw_uid != owner;
	endpwent();
	return shared;
}

/* The strict rule opens without following a symlink; a symlinked .qmail must itself be
 * owned as the file would be, then its target is checked like a file. */
static int open_dotqmail(const char *name, const struct dq_trustctx *tc)
{
	int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd = open(name, flags | (tc->loose ? 0 : O_NOFOLLOW));
	struct stat ls;
	if (fd != -1 || errno != ELOOP || tc->loose)
		return fd;
	if (lstat(name, &ls) == -1)
		return -1;
	if (S_ISLNK(ls.st_mode) && !dotqmail_trust_owner((unsigned long long)ls.st_uid, tc))
		die(111, "Uh-oh: %s is a symlink owned by uid %u, not by the user or the home's "
		    "owner. (#4.7.0)", name, (unsigned)ls.st_uid);
	return open(name, flags);
}

/* the trust rule of dotqmail.h on the opened file; defers when it fails */
static void check_trust(const char *name, const struct stat *st, struct dq_trustctx *tc)
{
	if (dotqmail_trust_group(st, tc))
		tc->shared_group = group_shared(st->st_gid, st->st_uid);
	switch (dotqmail_trust(st, tc)) {
	case DQ_TRUST_WORLD:
		die(111, "Uh-oh: %s file is writable. (#4.7.0)", name);
	case DQ_TRUST_OWNER:
		die(111, "Uh-oh: %s is owned by uid %u, not by the user or the home's owner. "
		    "(#4.7.0)", name, (unsigned)st->st_uid);
	case DQ_TRUST_GROUP:
		die(111, "Uh-oh: %s is group-writable and group %u has other members. (#4.7.0)",
		    name, (unsigned)st->st_gid);
	case DQ_TRUST_OK:
		break;
	}
}

/* 1 = read into text, 0 = no such file (or not a regular file, as qmail-local);
 * everything else defers */
static int read_dotqmail(const char *name, struct buf *text)
{
	struct stat st;
	struct dq_trustctx tc = { .user = getuid(), .homeowner = L.homeowner, .loose = L.loose };
	int fd = open_dotqmail(name, &tc);
	if (fd == -1 && (errno == ENOENT || errno == ENOTDIR))
		return 0;
	if (fd == -1)
		die(111, "Unable to open %s: %s. (#4.3.0)", name, strerror(errno));
	if (fstat(fd, &st) == -1)
		die(111, "Unable to stat %s: %s. (#4.3.0)", name, strerror(errno));
	if (!S_ISREG(st.st_mode)) {     /* a directory, FIFO...: qmail's "no such file" */
		close(fd);
		return 0;
	}
	check_trust(name, &st, &tc);
	if (st.st_size > DOTQMAIL_MAX)
		die(111, "Uh-oh: %s is too big. (#4.2.1)", name);
	L.forwardonly = (st.st_mode & S_IXUSR) != 0;
	char chunk[4096];
	ssize_t r;
	while ((r = read(fd, chunk, sizeof chunk)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(111, "Unable to read %s: %s. (#4.3.0)", name, strerror(errno));
		buf_add(text, chunk, (size_t)r);
		if (text->len > DOTQMAIL_MAX)
			die(111, "Uh-oh: %s is too big. (#4.2.1)", name);
	}
	close(fd);
	return 1;
}

/* the first .qmail candidate that exists; 0 = none. Sets L.src, L.dflt, L.forwardonly. */
static int find_dotqmail(struct buf *text)
{
	struct buf name;
	long dflt;
	int found = 0;
	buf_init(&name);
	for (unsigned i = 0; !found && dotqmail_candidate(L.dash, L.ext, i, &name, &dflt) == 0;
	     i++) {
		found = read_dotqmail(name.p, text);
		if (found) {
			L.dflt = dflt >= 0 ? L.ext + dflt : NULL;
			L.src = xstrdup(name.p);
		}
	}
	buf_free(&name);
	return found;
}

static void load_instructions(struct buf *text)
{
	if (L.instr) {
		buf_adds(text, L.instr);
		L.src = "the delivery instruction";
		return;
	}
	if (find_dotqmail(text) && text->len)
		return;
	if (!L.src && *L.ext)
		die(100, "Sorry, no mailbox here by that name. (#5.1.1)");
	L.forwardonly = 0;     /* no file, or an empty one: the default delivery */
	buf_adds(text, L.aliasempty);
	L.src = "the default delivery";
}

/* --- Maildir ---------------------------------------------------------------- */

static void mkdir_p(const char *path)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST)
			die(111, "Unable to create %s: %s. %s", p, strerror(errno), werr(errno));
		*s = '/';
	}
	free(p);
}

static int maildir_open(const char *dir)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && L.create) {
		if (local_profile_is_store(dir))
			local_profile_make_store(dir);
		else
			mkdir_p(dir);
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd == -1)
		die(111, "Unable to open Maildir %s: %s. (#4.2.1)", dir, strerror(errno));
	for (int i = 0; L.create && i < 3; i++)
		if (mkdirat(fd, sub[i], 0700) == -1 && errno != EEXIST)
			die(111, "Unable to create %s%s: %s. %s", dir, sub[i], strerror(errno),
			    werr(errno));
	return fd;
}

static void maildir_name(struct buf *name)
{
	static unsigned seq;
	char host[256];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	if (gethostname(host, sizeof host) == -1)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	buf_reset(name);
	dotqmail_maildir_name(name, tv.tv_sec, (long)tv.tv_usec, (long)getpid(), seq++, host);
	if (local_profile_sized())  /* Maildir++: the size in the name, for quota scans */
		buf_printf(name, ",S=%lld", (long long)(L.head.len + (size_t)L.msglen));
}

/* tmp/NAME -> new/NAME without ever replacing an existing file */
static int maildir_link(int dfd, const char *tmp, struct buf *name)
{
	char newp[PATH_MAX];
	for (int tries = 0; tries < 10; tries++) {
		if (tries)
			maildir_name(name);
		snprintf(newp, sizeof newp, "new/%s", name->p);
		if (linkat(dfd, tmp, dfd, newp, 0) == 0) {
			unlinkat(dfd, tmp, 0);     /* a leftover in tmp/ is harmless */
			return 0;
		}
		if (errno == EEXIST)
			continue;
		if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS)
			return -1;
		if (renameat2(dfd, tmp, dfd, newp, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EEXIST)
			continue;
		return -1;
	}
	errno = EEXIST;
	return -1;
}

static int maildir_write(int fd)
{
	if (fs_write_all(fd, L.head.p, L.head.len) == -1 || msg_copy(fd) == -1 || fsync(fd) == -1)
		return -1;
	return 0;
}

static void deliver_maildir(const char *dir)
{
	struct buf name;
	char tmp[PATH_MAX];
	int dfd = maildir_open(dir), fd = -1, e;
	buf_init(&name);
	local_profile_quota_maildir(dfd, dir, L.head.len + (uint64_t)L.msglen);
	for (int tries = 0; fd == -1 && tries < 10; tries++) {
		maildir_name(&name);
		snprintf(tmp, sizeof tmp, "tmp/%s", name.p);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC, 0600);
		if (fd == -1 && errno != EEXIST)
			die(111, "Unable to create a file in %stmp/: %s. %s", dir, strerror(errno),
			    werr(errno));
	}
	if (fd == -1)
		die(111, "Unable to find a unique name in %stmp/. (#4.3.0)", dir);
	if (maildir_write(fd) == -1 || close(fd) == -1 || maildir_link(dfd, tmp, &name) == -1) {
		e = errno;
		unlinkat(dfd, tmp, 0);
		die(111, "Unable to write Maildir %s: %s. %s", dir, strerror(e), werr(e));
	}
	int nfd = openat(dfd, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nfd == -1 || fsync(nfd) == -1)
		die(111, "Unable to sync %snew/: %s. %s", dir, strerror(errno), werr(errno));
	close(nfd);
	local_profile_quota_added(dfd, L.head.len + (uint64_t)L.msglen);
	close(dfd);
	buf_free(&name);
	report("delivered to Maildir %s", dir);
}

/* --- mbox ------------------------------------------------------------------- */

static unsigned lock_timeout(void)
{
#ifdef TERN_TEST
	const char *s = getenv("TERN_LOCAL_LOCK_TIMEOUT");
	uint64_t v;
	return s && str_to_u64(s, 1, 3600, &v) == 0 ? (unsigned)v : LOCK_TIMEOUT;
#else
	return LOCK_TIMEOUT;
#endif
}

static void deliver_mbox(const char *path)
{
	local_profile_quota_mbox(path, L.ufline.len + L.head.len + (uint64_t)L.msglen + 1);
	enum mbox_err err = mbox_append(path, L.ufline.p, L.head.p, L.head.len, 0, L.msglen,
					lock_timeout());
	int e = errno;
	switch (err) {
	case MBOX_OK:
		report("delivered to mbox %s", path);
		return;
	case MBOX_OPEN:     /* qmail: a mailbox problem (a directory, no permission), 4.2.1 */
		die(111, "Unable to open mbox %s: %s. %s", path, strerror(e),
		    e == EDQUOT || e == ENOSPC ? werr(e) : "(#4.2.1)");
	case MBOX_NOTREG:
		die(111, "Uh-oh: mbox %s is not a regular file. (#4.2.1)", path);
	case MBOX_LOCK:
		if (e == EINTR)
			die(111, "Timeout while locking mbox %s. (#4.2.1)", path);
		die(111, "Unable to lock mbox %s: %s. (#4.2.1)", path, strerror(e));
	case MBOX_WRITE:
		break;
	}
	die(111, "Unable to write mbox %s: %s. %s", path, strerror(e), werr(e));
}

/* --- feeding children: pipes written and read without deadlock ---------------- */

struct feed {
	int fd;                /* write end of a pipe (non-blocking); -1 when finished */
	const char *head;      /* bytes before the message */
	size_t hlen, hoff;
	int with_msg;          /* then the message */
	off_t moff;
	char *chunk;
	size_t clen, coff;
};

static void feed_close(struct feed *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->chunk);
	f->chunk = NULL;
}

/* 0 = progress or finished, -1 = message read error */
static int feed_step(struct feed *f)
{
	const char *p;
	size_t n;
	if (f->hoff < f->hlen) {
		p = f->head + f->hoff;
		n = f->hlen - f->hoff;
	} else {
		if (f->with_msg && f->coff == f->clen) {
			if (!f->chunk)
				f->chunk = xmalloc(CHUNK);
			ssize_t r = msg_read(f->chunk, CHUNK, f->moff);
			if (r < 0)
				return -1;
			f->moff += r;
			f->clen = (size_t)r;
			f->coff = 0;
		}
		if (f->coff == f->clen) {       /* all written: EOF for the reader */
			feed_close(f);
			return 0;
		}
		p = f->chunk + f->coff;
		n = f->clen - f->coff;
	}
	ssize_t w = write(f->fd, p, n);
	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (w < 0) {               /* EPIPE: the reader is gone; its exit code tells */
		feed_close(f);
		return 0;
	}
	if (f->hoff < f->hlen)
		f->hoff += (size_t)w;
	else
		f->coff += (size_t)w;
	return 0;
}

/* read once: keep the first OUT_MAX bytes, discard the rest; 0 = EOF or error */
static int capture(int fd, struct buf *out)
{
	char tmp[4096];
	ssize_t r = read(fd, tmp, sizeof tmp);
	if (r < 0 && errno == EINTR)
		return 1;
	if (r < 0 && errno == EAGAIN)
		return -1;
	if (r <= 0)
		return 0;
	size_t keep = out->len >= OUT_MAX ? 0 : (size_t)r;
	if (out->len + keep > OUT_MAX)
		keep = OUT_MAX - out->len;
	buf_add(out, tmp, keep);
	return 1;
}

/* the captured output as one clean string: trailing newlines and blanks dropped */
static const char *said_text(struct buf *said)
{
	while (said->len && strchr(" \t\r\n", said->p[said->len - 1]))
		said->p[--said->len] = '\0';
	return said->len ? said->p : "no output";
}

/* after the child exited: take the output already there, but never wait for it (a
 * daemonised grandchild may hold the pipe open forever) */
static void drain_rest(int outfd, struct buf *out)
{
	fcntl(outfd, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 256 && capture(outfd, out) > 0; i++)
		;
}

/* Write every feed and read outfd until: feeds done and outfd at EOF, or the child exited
 * (pidfd readable; then the rest of its output is drained). Feeds are closed on return.
 * 0 ok, -1 message read error (the caller kills the child before anything commits). */
static int pump(struct feed *f, int nf, int outfd, struct buf *out, int pidfd)
{
	struct pollfd pfd[4];
	int out_open = 1, rc = 0;
	for (;;) {
		int n = 0, exited = 0;
		for (int i = 0; i < nf; i++)
			if (f[i].fd >= 0)
				pfd[n++] = (struct pollfd){ .fd = f[i].fd, .events = POLLOUT };
		int nfeeds = n;
		if (out_open)
			pfd[n++] = (struct pollfd){ .fd = outfd, .events = POLLIN };
		if (!n)
			break;
		if (pidfd >= 0)
			pfd[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		for (int i = 0, k = 0; i < nf && rc == 0; i++)
			if (f[i].fd >= 0 && pfd[k++].revents)
				rc = feed_step(&f[i]);
		if (rc == 0 && out_open && pfd[nfeeds].revents)
			out_open = capture(outfd, out) != 0;
		if (pidfd >= 0 && pfd[n - 1].revents)
			exited = 1;
		if (rc || exited)
			break;
	}
	if (rc == 0 && out_open)
		drain_rest(outfd, out);
	for (int i = 0; i < nf; i++)
		feed_close(&f[i]);
	return rc;
}

static int pipe_nb(int p[2], int nonblock_end)
{
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	if (nonblock_end >= 0)
		fcntl(p[nonblock_end], F_SETFL, O_NONBLOCK);
	return 0;
}

static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return 120 << 8;        /* as if it could not run: temporary */
	return st;
}

static void child_exec(const char *path, char *const argv[], char *const env[], int in[][2],
		       int nf, int out)
{
	for (int i = 0; i < nf; i++)
		if (dup2(in[i][0], i) == -1)
			_exit(120);
	for (int i = nf; i <= 2; i++)
		if (dup2(out, i) == -1)
			_exit(120);
	signal(SIGPIPE, SIG_DFL);
	if (env)
		execve(path, argv, env);
	else
		execv(path, argv);
	dprintf(2, "Unable to run %s: %s.", path, strerror(errno));
	_exit(120);
}

/* Run path (env NULL = ours) with feed i on its fd i (nf <= 2) and its other fds up to 2 on
 * one pipe captured into said. watch_exit: stop reading when the child exits. Returns the
 * wait status; if the message cannot be read, the child is killed before it sees EOF. */
static int run_child(const char *path, char *const argv[], char *const env[], struct feed *f,
		     int nf, int watch_exit, struct buf *said)
{
	int in[2][2], out[2];
	for (int i = 0; i < nf; i++)
		if (pipe_nb(in[i], 1) == -1)
			die(111, "Unable to create a pipe: %s. (#4.3.0)", strerror(errno));
	if (pipe_nb(out, -1) == -1)
		die(111, "Unable to create a pipe: %s. (#4.3.0)", strerror(errno));
	pid_t pid = fork();
	if (pid == -1)
		die(111, "Unable to fork: %s. (#4.3.0)", strerror(errno));
	if (pid == 0)
		child_exec(path, argv, env, in, nf, out[1]);
	for (int i = 0; i < nf; i++) {
		close(in[i][0]);
		f[i].fd = in[i][1];
	}
	close(out[1]);
	int pidfd = watch_exit ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pump(f, nf, out[0], said, pidfd) == -1) {
		int e = errno;
		kill(pid, SIGKILL);
		reap(pid);
		die(111, "Unable to read message while feeding %s: %s. (#4.3.0)", path,
		    strerror(e));
	}
	close(out[0]);
	if (pidfd >= 0)
		close(pidfd);
	return reap(pid);
}

/* --- |program ------------------------------------------------------------------ */

/* tern-queue: $TERN_QUEUE, else next to this binary */
static char *queue_path(void)
{
	const char *env = getenv("TERN_QUEUE");
	char self[PATH_MAX];
	if (env && *env)
		return xstrdup(env);
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		die(111, "Unable to find tern-queue: %s. (#4.3.0)", strerror(errno));
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%.*s/tern-queue", slash ? (int)(slash - self) : 1, slash ? self : ".");
	return buf_detach(&b);
}

/* runs cmd in HOME with the message on stdin; returns 1 to stop (99), 0 to go on */
static int deliver_program(const char *cmd)
{
	struct buf ns;
	buf_init(&ns);
	dotqmail_sender_plain(&ns, L.newsender);
	struct dq_vars v = {
		.sender = L.plainsender, .newsender = ns.p ? ns.p : "", .recipient = L.recip,
		.user = L.user, .home = L.home, .host = L.domain, .local = L.local,
		.ext = L.ext, .dflt = L.dflt, .dtline = L.dtline.p, .rpline = L.rpline.p,
		.ufline = L.ufline.p, .path = DEFAULT_PATH, .qmailqueue = queue_path(),
	};  /* no TERN_CONF: programs see only doc/LOCAL.md's variables */
	char **env = dotqmail_env(&v);
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	struct feed f = { .head = L.head.p, .hlen = L.head.len, .with_msg = 1 };
	struct buf said;
	buf_init(&said);
	int st = run_child("/bin/sh", argv, env, &f, 1, 1, &said);
	dotqmail_env_free(env);
	free((char *)v.qmailqueue);
	buf_free(&ns);
	const char *text = said_text(&said);
	if (WIFSIGNALED(st))
		die(111, "Program was killed by signal %d: %s (#4.3.0)", WTERMSIG(st), text);
	int code = WEXITSTATUS(st);
	enum dq_prog ps = dotqmail_prog_status(code);
	if (ps == DQ_PROG_PERM || ps == DQ_PROG_TEMP)
		die(ps == DQ_PROG_PERM ? 100 : 111, "Program exited %d: %s", code, text);
	report("program exited %d%s%s", code, said.len ? ": " : "", said.len ? said.p : "");
	buf_free(&said);
	return ps == DQ_PROG_STOP;
}

/* --- forwards -------------------------------------------------------------------- */

/* one tern-queue run: head (then the message when with_msg) on fd 0, the envelope of sender
 * and the n NUL-separated addrs on fd 1; returns the wait status, stderr in said */
static int inject(const char *head, size_t hlen, int with_msg, const char *sender,
		  const char *addrs, size_t n, struct buf *said)
{
	struct buf envl;
	buf_init(&envl);
	dotqmail_envelope(&envl, sender, addrs, n);
	char *path = queue_path();
	char *argv[] = { path, NULL };
	struct feed f[2] = {
		{ .head = head, .hlen = hlen, .with_msg = with_msg },
		{ .head = envl.p, .hlen = envl.len },
	};
	int st = run_child(path, argv, NULL, f, 2, 0, said);
	free(path);
	buf_free(&envl);
	return st;
}

/* one tern-queue run for all forwards; its exit codes mean what qmail-queue's mean to
 * qmail-local (dotqmail_queue_status: 11-40 cannot get better with a retry) */
static void deliver_forwards(void)
{
	struct buf said;
	buf_init(&said);
	int st = inject(L.dtline.p, L.dtline.len, 1, L.newsender, L.fwd.p, L.nfwd, &said);
	const char *text = said_text(&said);
	if (WIFSIGNALED(st))
		die(111, "Unable to forward message: tern-queue killed by signal %d: %s (#4.3.0)",
		    WTERMSIG(st), text);
	int code = WEXITSTATUS(st);
	const char *what, *status;
	enum dq_prog qs = dotqmail_queue_status(code, &what, &status);
	if (qs != DQ_PROG_OK)   /* the diagnostic is cut so that the status stays on the line */
		die(qs == DQ_PROG_PERM ? 100 : 111,
		    "Unable to forward message: tern-queue exited %d (%s): %.400s (#%s)", code,
		    what, text, status);
	report("forwarded to %zu address%s", L.nfwd, L.nfwd == 1 ? "" : "es");
	buf_free(&said);
}

/* --- the instructions ------------------------------------------------------------- */

/* before any delivery: first line, syntax, forward-only; nothing is done on a bad file.
 * L.forwardonly (the execute bit) covers the whole text from L.src; +list, as in
 * qmail-local, only the lines after it. */
static void check_lines(const char *text, size_t len)
{
	struct dq_iter it;
	struct dq_line ln;
	dotqmail_iter_init(&it, text, len);
	if (!dotqmail_next(&it, &ln) || ln.kind == DQ_BLANK)
		die(111, "Uh-oh: first line of %s is blank. (#4.2.1)", L.src);
	dotqmail_iter_init(&it, text, len);
	while (dotqmail_next(&it, &ln)) {
		if (ln.kind == DQ_LIST)
			L.forwardonly = 1;
		if (ln.kind == DQ_BAD)
			die(111, "Uh-oh: line %u of %s is not a valid delivery instruction. (#4.7.0)",
			    ln.lineno, L.src);
		if (L.forwardonly && (ln.kind == DQ_PROGRAM || ln.kind == DQ_MAILDIR ||
				      ln.kind == DQ_MBOX))
			die(111, "Uh-oh: %s is forward-only (execute bit or +list) but has %s "
			    "delivery. (#4.7.0)", L.src, dotqmail_kind_name(ln.kind));
	}
}

/* -n: what a line would do, one line each, qmail-local -n's words */
static void plan_line(const struct dq_line *ln, const char *arg)
{
	static const struct { enum dq_kind kind; const char *word; } words[] = {
		{ DQ_MAILDIR, "maildir" }, { DQ_MBOX, "mbox" }, { DQ_PROGRAM, "program" },
		{ DQ_FORWARD, "forward" },
	};
	char line[2 * OUT_MAX];
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (ln->kind == words[i].kind) {
			snprintf(line, sizeof line, "%s %s", words[i].word, arg);
			say(line);
		}
}

/* perform the lines (checked before); 1 when a program said stop (99) */
static int run_lines(const char *text, size_t len)
{
	struct dq_iter it;
	struct dq_line ln;
	int stop = 0;
	dotqmail_iter_init(&it, text, len);
	while (dotqmail_next(&it, &ln)) {
		char *arg = xstrndup(ln.arg, ln.len);
		if (L.dryrun) {
			plan_line(&ln, arg);
			free(arg);
			continue;
		}
		switch (ln.kind) {
		case DQ_MAILDIR: deliver_maildir(arg); break;
		case DQ_MBOX: deliver_mbox(arg); break;
		case DQ_PROGRAM: stop = deliver_program(arg); break;
		case DQ_FORWARD:
			buf_add(&L.fwd, arg, ln.len + 1);    /* with its NUL */
			L.nfwd++;
			break;
		default: break;
		}
		free(arg);
		if (stop)
			break;
	}
	return stop;
}

/* --- directory users (-p): which deliveries the profile asks for --------------------- */

/* The user's .qmail part under dotonly and both. dotonly: as for any user, the store being
 * the default delivery. both: a file's lines after the directory's; no file (or an empty
 * one) adds nothing, the store being delivered already. An extension without a file
 * bounces in both. 1 = a file was found (text may be empty). */
static int profile_dotqmail(struct buf *file)
{
	int dm = local_profile_dotmode();
	if (dm != LDAPPROF_DOTONLY && dm != LDAPPROF_BOTH)
		return 0;
	if (find_dotqmail(file) && file->len)
		return 1;
	if (!L.src && *L.ext)
		die(100, "Sorry, no mailbox here by that name. (#5.1.1)");
	L.forwardonly = 0;
	if (dm == LDAPPROF_BOTH)
		return 0;
	buf_adds(file, local_profile_storeline());
	L.src = "the default delivery";
	return 1;
}

/* everything a directory user's message gets, checked whole before anything is done */
static void deliver_profile(void)
{
	struct buf dir, file;
	buf_init(&dir);
	buf_init(&file);
	int dm = local_profile_dotmode();
	if (dm == LDAPPROF_DOTONLY || dm == LDAPPROF_BOTH)
		set_newsender();
	else
		L.newsender = xstrdup(L.sender);
	local_profile_lines(&dir);
	int dotfile = profile_dotqmail(&file);
	if (!dir.len && !dotfile && !local_profile_reply_wanted())
		die(100, "Sorry, no mailbox here by that name. (#5.1.1)");
	const char *filesrc = L.src;
	int filefo = L.forwardonly;
	if (dir.len) {
		L.src = "the directory's deliveries";
		L.forwardonly = 0;
		check_lines(dir.p, dir.len);
	}
	if (dotfile) {
		L.src = filesrc;
		L.forwardonly = filefo;
		check_lines(file.p, file.len);
	}
	if (!(dir.len && run_lines(dir.p, dir.len)) && dotfile)
		run_lines(file.p, file.len);
	if (L.dryrun)
		exit(0);
	if (L.nfwd)
		deliver_forwards();
	if (local_profile_reply_wanted())
		local_profile_reply(L.sender, L.recip, L.msglen);
	if (!L.report.len)
		report("no delivery instructions in %s: message discarded", L.src ? L.src : "the profile");
	buf_free(&dir);
	buf_free(&file);
}

/* --- lent to local_profile.c (helpers/local_profile.h) ---------------------------- */

void local_die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdie(code, fmt, ap);
}

void local_report(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
}

const char *local_werr(int e)
{
	return werr(e);
}

ssize_t local_msg_read(char *p, size_t n, off_t off)
{
	return msg_read(p, n, off);
}

int local_inject(const char *head, size_t hlen, int with_msg, const char *sender,
		 const char *addrs, size_t n, struct buf *said)
{
	return inject(head, hlen, with_msg, sender, addrs, n, said);
}

const char *local_said_text(struct buf *said)
{
	return said_text(said);
}

/* a parent's ignored SIGCHLD or blocked SIGALRM would break waitpid and the mbox lock
 * timeout; a closed fd 1 or 2 would let a pipe end land there */
static void clean_process(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	while (fcntl(2, F_GETFD) == -1 && open("/dev/null", O_RDWR) != -1)
		;
}

int local_main(int argc, char **argv)
{
	struct buf text;
	buf_init(&text);
	clean_process();
	if (getuid() == 0 || geteuid() == 0)
		die(111, "tern-local refuses to run as root. (#4.3.0)");
	parse_args(argc, argv);
	local_profile_quota_args(L.quota);
	if (L.profile)
		local_profile_parse(L.profile, L.aliasempty);
	umask(077);
	check_home();
	if (!L.dryrun) {        /* -n reads no message, as qmail-local -n */
		check_message();
		local_profile_sizemax(L.msglen);
	}
	build_lines();
	local_profile_message(L.recip, L.arrival);
	if (!L.dryrun)
		check_loop();
	if (local_profile_on() && !L.instr) {
		deliver_profile();
		say(L.report.p);
		return 0;
	}
	set_newsender();
	load_instructions(&text);
	check_lines(text.p, text.len);
	run_lines(text.p, text.len);
	if (L.dryrun)
		return 0;
	if (L.nfwd)
		deliver_forwards();
	if (!L.report.len)
		report("no delivery instructions in %s: message discarded", L.src);
	say(L.report.p);
	return 0;
}
