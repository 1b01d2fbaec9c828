/* local_profile — tern-local's part for a directory user (-p PROFILE, doc/LDAP.md
 * "Delivery", doc/LOCAL.md "Directory users"): the profile decoded and checked, turned into
 * the directory's delivery lines, the store's creation, mailSizeMax, the Maildir++ quota
 * (src/mail/mdquota.h) and the RFC 3834 automatic reply (src/mail/autoreply.h).
 * Owns: the decoded profile and those decisions; the reply memory file. tern-local.c
 * (src/helpers/tern-local.c) keeps the message, the .qmail files and every delivery, and
 * gives this module its one-line report, exit and injection (helpers/local_profile.h).
 * Trusts: the profile (it comes from the parent's argv, like the rest of tern-local's
 * arguments), but checks that its values stay single delivery lines; nothing in
 * maildirsize, the Maildir's file names, the reply memory or the message's header, which
 * are the user's or the sender's and are parsed as hostile text. */
#include "helpers/local_profile.h"
#include "mail/autoreply.h"
#include "mail/dotqmail.h"
#include "mail/ldapprof.h"
#include "mail/mdquota.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QUOTA_STALE    (15 * 60)     /* an over-quota maildirsize older than this is redone */
#define QUOTA_BOUNCE_DAYS 5          /* quotabounce's default (src/mail/config.c) without -Q */
#define QUOTA_WARN_EVERY  (24 * 3600)  /* one quota warning per Maildir per this */
#define REPLY_HDR_MAX  65536         /* bytes of the header an auto-reply looks at */
#define REPLY_MEM_MAX  (256 * 1024)  /* a bigger reply memory is started afresh */

static struct {
	int on;                /* a profile was given and decoded */
	struct ldapprof prof;  /* ... decoded */
	const char *aliasempty;   /* DEFAULTDELIVERY, the store when the profile has none */
	char *storeline;       /* the store as a delivery line (or DEFAULTDELIVERY) */
	int ldapmodes;         /* the dot mode reads the directory's deliveries */
	struct mdquota_args qa;   /* -Q: table users' default limits, quotabounce, warning */
	uint64_t qsize, qcount;   /* the limits that apply (0 = none) */
	struct mdquota_use used;  /* the usage after the last Maildir check */
	const char *recip;        /* LOCAL@DOMAIN */
	int64_t arrival;          /* -A, or -1 */
} L = { .qa = { .bouncedays = QUOTA_BOUNCE_DAYS, .warning = "" }, .recip = "",
	.arrival = -1 };

/* --- the profile -------------------------------------------------------------- */

/* a value that becomes one delivery line: no control byte (TAB allowed in programs) */
static int line_safe(const char *v, int tab)
{
	for (; *v; v++)
		if (((unsigned char)*v < 0x20 && !(tab && *v == '\t')) || *v == 0x7f)
			return 0;
	return 1;
}

/* the profile's values become delivery lines: refuse what would not be one line */
static void check_profile(void)
{
	const char *st = L.prof.store;
	if (*st && !ldapprof_store_ok(st))
		local_die(111, "bad delivery profile: the store is not an absolute path (#4.3.0)");
	for (size_t i = 0; i < L.prof.nforward; i++)
		if (!line_safe(L.prof.forward[i], 0))
			local_die(111, "bad delivery profile: a forward has a control byte (#4.3.0)");
	for (size_t i = 0; i < L.prof.nprogram; i++)
		if (!line_safe(L.prof.program[i], 1))
			local_die(111, "bad delivery profile: a program has a control byte (#4.3.0)");
	int dm = L.prof.dotmode;
	L.ldapmodes = dm == LDAPPROF_LDAPONLY || dm == LDAPPROF_LDAPWITHPROG || dm == LDAPPROF_BOTH;
	L.storeline = xstrdup(*st ? st : L.aliasempty);
}

/* a message larger than mailSizeMax bounces before anything is done */
void local_profile_sizemax(off_t msglen)
{
	if (L.on && L.prof.sizemax && (uint64_t)msglen > L.prof.sizemax)
		local_die(100, "Sorry, message too large for this user: %lld bytes, mailSizeMax is "
			  "%llu. (#5.2.3)", (long long)msglen, (unsigned long long)L.prof.sizemax);
}

void local_profile_parse(const char *profile, const char *aliasempty)
{
	char why[128];
	L.aliasempty = aliasempty;
	if (ldapprof_decode(profile, &L.prof, why, sizeof why) < 0)
		local_die(111, "bad delivery profile: %s (#4.3.0)", why);
	L.qsize = L.prof.quotasize;     /* the directory's (or the users row's) limits win */
	L.qcount = L.prof.quotacount;
	if (L.prof.table)               /* a users-table user's quota: nothing else */
		return;
	check_profile();
	L.on = 1;
}

void local_profile_quota_args(const char *q)
{
	if (!q)
		return;
	if (mdquota_args_parse(q, &L.qa) < 0)
		local_die(111, "bad quota argument: expected SIZE,COUNT,DAYS,TEXT (#4.3.0)");
	L.qsize = L.qa.size;
	L.qcount = L.qa.count;
}

int local_profile_sized(void)
{
	return L.on || L.qsize || L.qcount;
}

int local_profile_on(void)
{
	return L.on;
}

int local_profile_dotmode(void)
{
	return L.prof.dotmode;
}

const char *local_profile_storeline(void)
{
	return L.storeline;
}

int local_profile_is_store(const char *dir)
{
	return L.on && strcmp(dir, L.storeline) == 0;
}

/* --- the store, the quota (mailQuotaSize / mailQuotaCount, Maildir++ maildirsize) ---- */

/* -p: the store is made only inside a directory that exists and is the user's; never its
 * parents (a typo in the directory must not grow a tree somewhere) */
void local_profile_make_store(const char *dir)
{
	char *parent = xstrdup(dir);
	struct stat st;
	size_t n = strlen(parent);
	while (n > 1 && parent[n - 1] == '/')
		parent[--n] = '\0';
	char *slash = strrchr(parent, '/');
	if (slash)
		slash[slash == parent] = '\0';
	if (stat(parent, &st) == -1 || !S_ISDIR(st.st_mode))
		local_die(111, "Unable to create Maildir %s: its parent directory %s is missing. (#4.2.1)",
		    dir, parent);
	if (st.st_uid != getuid())
		local_die(111, "Unable to create Maildir %s: its parent directory %s does not belong to the "
		    "user. (#4.2.1)", dir, parent);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		local_die(111, "Unable to create %s: %s. %s", dir, strerror(errno), local_werr(errno));
	free(parent);
}


static int quota_on(void)
{
	return L.qsize || L.qcount;
}

void local_profile_message(const char *recip, const char *arrival)
{
	uint64_t t;
	L.recip = recip;
	if (!arrival)
		return;
	if (str_to_u64(arrival, 0, INT64_MAX, &t) < 0)
		local_die(111, "bad arrival time %.40s: expected unix seconds (#4.3.0)", arrival);
	L.arrival = (int64_t)t;
}

/* the message's age in seconds: from its arrival time (-A, the mda passes the queue's);
 * without it from the mtime of the spool's data file on fd 0 (written once, at arrival) */
static int64_t quota_msg_age(void)
{
	struct stat st;
	int64_t at = L.arrival;
	if (at < 0 && fstat(0, &st) == -1)
		return 0;
	if (at < 0)
		at = (int64_t)st.st_mtime;
	int64_t age = (int64_t)time(NULL) - at;
	return age > 0 ? age : 0;
}

/* over quota: deferred (4.2.2) until the message is quotabounce days old, then bounced */
static void quota_full(const char *what)
{
	uint64_t days = L.qa.bouncedays;
	if (days && (uint64_t)quota_msg_age() < days * 86400)
		local_die(111, "The user's %s is full: it is over the allowed quota; trying again "
			  "later. (#4.2.2)", what);
	local_die(100, "Sorry, the user's %s is full: it is over the allowed quota. (#5.2.2)", what);
}

/* the messages in SUB (new/ or cur/ of the Maildir or a folder) added to u */
static void quota_scan(int dfd, const char *sub, struct mdquota_use *u)
{
	int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *e;
	if (!d) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		uint64_t sz;
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		if (mdquota_name_size(e->d_name, &sz) < 0) {
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
				continue;   /* gone meanwhile: it no longer counts */
			sz = (uint64_t)st.st_size;
		}
		mdquota_add_file(u, sz);
	}
	closedir(d);
}

/* recount the Maildir and its folders (.NAME/), write maildirsize anew (tmp + rename) */
static void quota_recalc(int dfd, const char *dir, const char *def, struct mdquota_use *u)
{
	char tmp[PATH_MAX], sub[PATH_MAX];
	struct dirent *e;
	int fd = dup(dfd);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	if (!d)
		local_die(111, "Unable to read Maildir %s: %s. (#4.3.0)", dir, strerror(errno));
	u->bytes = u->count = 0;
	quota_scan(dfd, "new", u);
	quota_scan(dfd, "cur", u);
	while ((e = readdir(d))) {
		if (e->d_name[0] != '.' || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof sub, "%s/new", e->d_name);
		quota_scan(dfd, sub, u);
		snprintf(sub, sizeof sub, "%s/cur", e->d_name);
		quota_scan(dfd, sub, u);
	}
	closedir(d);
	struct buf text;
	buf_init(&text);
	buf_printf(&text, "%s\n%lld %lld\n", def, (long long)u->bytes, (long long)u->count);
	snprintf(tmp, sizeof tmp, "tmp/maildirsize.%ld.%lld", (long)getpid(), (long long)time(NULL));
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || fs_write_all(fd, text.p, text.len) == -1 || fsync(fd) == -1 ||
	    close(fd) == -1 || renameat(dfd, tmp, dfd, "maildirsize") == -1) {
		int e2 = errno;
		unlinkat(dfd, tmp, 0);
		local_die(111, "Unable to write %smaildirsize: %s. %s", dir, strerror(e2), local_werr(e2));
	}
	buf_free(&text);
}

/* 1 = maildirsize read into u and still valid; *fresh = younger than QUOTA_STALE */
static int quota_read(int dfd, const char *def, struct mdquota_use *u, int *fresh)
{
	char text[MDQUOTA_MAXFILE];
	struct stat st = { 0 };
	int fd = openat(dfd, "maildirsize", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t n = -1;
	if (fd == -1)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < MDQUOTA_MAXFILE)
		n = read(fd, text, sizeof text);
	close(fd);
	*fresh = st.st_mtime > time(NULL) - QUOTA_STALE;
	return n > 0 && n < (ssize_t)sizeof text && mdquota_parse(text, (size_t)n, def, u) == 0;
}

/* before a Maildir delivery: bounce when the message would go over the quota */
void local_profile_quota_maildir(int dfd, const char *dir, uint64_t add)
{
	struct mdquota_use u;
	struct buf def;
	int fresh = 0, again;
	if (!quota_on())
		return;
	buf_init(&def);
	mdquota_defline(&def, L.qsize, L.qcount);
	if (!(again = !quota_read(dfd, def.p, &u, &fresh)))
		again = !fresh && mdquota_over(&u, L.qsize, L.qcount, add, 1);
	if (again)
		quota_recalc(dfd, dir, def.p, &u);
	buf_free(&def);
	if (mdquota_over(&u, L.qsize, L.qcount, add, 1))
		quota_full("mailbox");
	L.used = u;
}

/* write the warning into new/ (tmp/ then link) and count it in maildirsize; 0 / -1 */
static int quota_warn_put(int dfd, time_t now)
{
	struct buf m, name;
	char host[256], tmp[PATH_MAX], newp[PATH_MAX];
	struct timeval tv;
	int rc = -1;
	buf_init(&m);
	buf_init(&name);
	gettimeofday(&tv, NULL);   /* the warning: qmail-ldap's qmail-quotawarn, into the Maildir */
	mdquota_warning(&m, L.recip, L.qa.warning, now, (long)tv.tv_usec, (long)getpid());
	if (gethostname(host, sizeof host) == -1)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	dotqmail_maildir_name(&name, tv.tv_sec, (long)tv.tv_usec, (long)getpid(), 9999, host);
	buf_printf(&name, ",S=%zu", m.len);
	snprintf(tmp, sizeof tmp, "tmp/%s", name.p);
	snprintf(newp, sizeof newp, "new/%s", name.p);
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd != -1 && fs_write_all(fd, m.p, m.len) == 0 && fsync(fd) == 0 && close(fd) == 0) {
		fd = -1;
		rc = linkat(dfd, tmp, dfd, newp, 0);
		unlinkat(dfd, tmp, 0);
	}
	if (fd != -1)
		close(fd);
	int qfd = rc == 0 ? openat(dfd, "maildirsize", O_WRONLY | O_APPEND | O_NOFOLLOW |
				   O_NONBLOCK | O_CLOEXEC) : -1;
	if (qfd != -1) {
		dprintf(qfd, "%zu 1\n", m.len);
		close(qfd);
	}
	buf_free(&m);
	buf_free(&name);
	return rc;
}

/* at MDQUOTA_WARN_PCT % of a limit, with a quotawarning text: one warning per
 * QUOTA_WARN_EVERY, its time kept as the mtime of the Maildir's `quotawarn` file (locked) */
static void quota_warn(int dfd)
{
	struct stat st;
	time_t now = time(NULL);
	if (!*L.qa.warning || !mdquota_warn_due(&L.used, L.qsize, L.qcount))
		return;
	int fd = openat(dfd, "quotawarn", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
			0600);
	if (fd == -1 || flock(fd, LOCK_EX) == -1 || fstat(fd, &st) == -1) {
		local_report("quota warning not written: quotawarn: %s", strerror(errno));
	} else if (st.st_size > 0 && st.st_mtime > now - QUOTA_WARN_EVERY && st.st_mtime <= now) {
		/* warned within the interval */
	} else if (quota_warn_put(dfd, now) == -1) {
		local_report("quota warning not written: %s", strerror(errno));
	} else {
		dprintf(fd, "%lld\n", (long long)now);   /* the write sets the mtime */
		futimens(fd, NULL);
		local_report("quota warning written");
	}
	if (fd != -1)
		close(fd);
}

/* after it: one more line in maildirsize (a failure only costs a recount later) */
void local_profile_quota_added(int dfd, uint64_t add)
{
	if (!quota_on())
		return;
	int fd = openat(dfd, "maildirsize", O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK |
			O_CLOEXEC);
	if (fd == -1)
		return;
	dprintf(fd, "%llu 1\n", (unsigned long long)add);
	close(fd);
	mdquota_add_file(&L.used, add);
	quota_warn(dfd);
}

/* an mbox store: its size only */
void local_profile_quota_mbox(const char *path, uint64_t add)
{
	struct stat st;
	if (!L.qsize)
		return;
	if (stat(path, &st) == -1) {
		if (errno != ENOENT)
			local_die(111, "Unable to stat mbox %s: %s. (#4.3.0)", path, strerror(errno));
		st.st_size = 0;
	}
	struct mdquota_use u = { .bytes = st.st_size, .count = 0 };
	if (mdquota_over(&u, L.qsize, 0, add, 0))
		quota_full("mailbox");
}


/* --- the directory's deliveries ------------------------------------------------ */

/* the directory's own deliveries as .qmail lines: the store, forwards, programs */
void local_profile_lines(struct buf *dir)
{
	int dm = L.prof.dotmode;
	if (dm == LDAPPROF_NONE || (L.ldapmodes && !(L.prof.mode & LDAPPROF_NOMBOX)))
		buf_printf(dir, "%s\n", L.storeline);
	if (!L.ldapmodes)
		return;
	for (size_t i = 0; !(L.prof.mode & LDAPPROF_NOFORWARD) && i < L.prof.nforward; i++)
		buf_printf(dir, "&%s\n", L.prof.forward[i]);
	if (dm == LDAPPROF_LDAPONLY || (L.prof.mode & LDAPPROF_NOPROGRAM))
		return;
	for (size_t i = 0; i < L.prof.nprogram; i++)
		buf_printf(dir, "|%s\n", L.prof.program[i]);
}

int local_profile_reply_wanted(void)
{
	return L.ldapmodes && (L.prof.mode & LDAPPROF_REPLY) && *L.prof.reply;
}


/* --- the automatic reply (deliveryMode reply) ------------------------------------ */

/* where the reply memory lives: in a Maildir store, else in HOME */
static const char *reply_dir(const char **name)
{
	size_t n = strlen(L.prof.store);
	if (n && L.prof.store[n - 1] == '/') {
		*name = "tern-replied";
		return L.prof.store;
	}
	*name = ".tern-replied";
	return ".";
}

/* the memory file read whole (a missing or oversized one reads as empty) */
static void reply_mem_read(int dfd, const char *name, struct buf *mem)
{
	char chunk[4096];
	ssize_t r;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return;
	while ((r = read(fd, chunk, sizeof chunk)) > 0 && mem->len < REPLY_MEM_MAX)
		buf_add(mem, chunk, (size_t)r);
	close(fd);
	if (mem->len >= REPLY_MEM_MAX)
		buf_reset(mem);
}

/* tmp + fsync + rename: never a half-written memory; 0 / -1 */
static int reply_mem_write(int dfd, const char *name, const struct buf *mem)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", name, (long)getpid());
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (fs_write_all(fd, mem->p, mem->len) == -1 || fsync(fd) == -1 || close(fd) == -1 ||
	    renameat(dfd, tmp, dfd, name) == -1) {
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	return 0;
}

/* the header section of the message (at most REPLY_HDR_MAX bytes); 1 = the whole message */
static int reply_header(struct buf *hdr, off_t msglen)
{
	char *chunk = xmalloc(REPLY_HDR_MAX);
	ssize_t r = local_msg_read(chunk, REPLY_HDR_MAX, 0);
	if (r > 0)
		buf_add(hdr, chunk, (size_t)r);
	else
		buf_adds(hdr, "");
	free(chunk);
	return r >= 0 && (off_t)r == msglen;
}

/* send the reply once per sender per window; its failures are told, never fatal: the
 * message itself is delivered by now */
void local_profile_reply(const char *sender, const char *recip, off_t msglen)
{
	struct buf hdr, mem, out, said;
	const char *name, *dir = reply_dir(&name), *why;
	buf_init(&hdr);
	buf_init(&mem);
	buf_init(&out);
	buf_init(&said);
	int whole = reply_header(&hdr, msglen);
	time_t now = time(NULL);
	int dfd = -1;
	if ((why = autoreply_refuse(sender, recip, hdr.p, hdr.len, whole))) {
		local_report("auto-reply suppressed: %s", why);
		goto done;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1 || flock(dfd, LOCK_EX) == -1) {
		local_report("auto-reply not sent: %s: %s", dir, strerror(errno));
		goto done;
	}
	reply_mem_read(dfd, name, &mem);
	if (autoreply_seen(mem.p ? mem.p : "", mem.len, sender, now, &out)) {
		local_report("auto-reply suppressed: %s was answered within 7 days", sender);
		goto done;
	}
	struct buf t = mem;         /* the new memory, kept until the reply is out */
	mem = out;
	out = t;
	buf_reset(&out);
	autoreply_build(&out, recip, sender, hdr.p, hdr.len, L.prof.reply, now,
			(long)getpid());
	int st = local_inject(out.p, out.len, 0, "", sender, 1, &said);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		local_report("auto-reply not sent: tern-queue failed: %s", local_said_text(&said));
		goto done;
	}
	if (reply_mem_write(dfd, name, &mem) == -1)
		local_report("auto-reply sent to %s, but its memory %s in %s was not written: %s",
		       sender, name, dir, strerror(errno));
	else
		local_report("auto-reply sent to %s", sender);
done:
	if (dfd != -1)
		close(dfd);
	buf_free(&hdr);
	buf_free(&mem);
	buf_free(&out);
	buf_free(&said);
}
