/* queue_drop — the maildrop pickup of the queue role (doc/QUEUE.md "Maildrop pickup").
 * Owns: reading <spool>/maildrop/, turning each file into a committed queue message, and
 * removing the file only after that commit. Trusts nothing in the files: any local user can
 * write there; the envelope parser is strict and a bad file goes to quarantine/. */
#include "ternd/queue/queue.h"
#include "ternd/queue/queue_fs.h"
#include "mail/maildrop.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/fsutil.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DROP_PER_PASS 256
#define DROP_STALE_TMP 86400       /* a writer's tmp.* file untouched this long is garbage */

struct inprog { struct inprog *next; char name[64]; };
static struct inprog *inprog;      /* files whose commit is in the batch */
static int drop_ino = -1;
static struct ev *drop_ev, *drop_again;

static int drop_busy(const char *name)
{
	for (struct inprog *p = inprog; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return 1;
	return 0;
}

static void drop_forget(const char *name)
{
	for (struct inprog **pp = &inprog; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0) {
			struct inprog *p = *pp;
			*pp = p->next;
			free(p);
			return;
		}
}

void queue_drop_committed(const char *name)
{
	if (unlinkat(queue_fs_dirfd(QD_DROP), name, 0) < 0 && errno != ENOENT)
		log_err("event=maildrop_unlink_failed file=%s error=\"%s\"", name, strerror(errno));
	drop_forget(name);
}

void queue_drop_failed(const char *name)
{
	drop_forget(name);    /* stays in maildrop/: picked up again at the next scan */
}

/* data file = our Received: line + the message from the maildrop file, at most max bytes
 * of it (the owner may still be writing to the file): 0 ok, -1 error, -2 over max, -3 the
 * message holds a NUL octet (refused at every intake: doc/MAILDROP.md) */
static int drop_copy(int in, off_t off, int out, uint64_t id, uid_t uid, uint64_t max)
{
	uint64_t copied = 0;
	char line[512], date[64], ids[17];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	env_idstr(id, ids);
	int n = snprintf(line, sizeof line, "Received: (from uid %lu)\n\tby %s (tern) with local id %s;\n\t%s\n",
	                 (unsigned long)uid, queue_cfg->me, ids, date);
	if (fs_write_all(out, line, (size_t)n) < 0)
		return -1;
	char buf[65536];
	for (;;) {
		ssize_t r = pread(in, buf, sizeof buf, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		if ((copied += (uint64_t)r) > max)
			return -2;
		if (memchr(buf, '\0', (size_t)r))
			return -3;
		if (fs_write_all(out, buf, (size_t)r) < 0)
			return -1;
		off += r;
	}
}

/* over databytes: quarantined, never copied (a sparse file would become real blocks) */
static void drop_too_big(const char *name, uid_t uid, uint64_t size)
{
	log_warn("event=maildrop_too_big file=%s uid=%lu size=%" PRIu64 " databytes=%" PRIu64, name,
	         (unsigned long)uid, size, queue_cfg->databytes);
	queue_fs_quarantine(QD_DROP, name, "message over databytes");
}

/* below queuefreebytes (plus the message): the file waits in maildrop/ for space, as SMTP
 * clients get 452 — it is good mail, quarantine would lose it */
static int drop_no_room(const char *name, uint64_t size)
{
	static struct log_limit lim;
	unsigned long long rep;
	uint64_t need = queue_free_need(), free = queue_fs_free_bytes();
	if (free >= need && free - need >= size)
		return 0;
	if (log_limit(&lim, 60, &rep))
		log_warn("event=spool_full op=maildrop file=%s size=%" PRIu64 " free=%" PRIu64
		         " need=%" PRIu64 " repeated=%llu", name, size, free, need, rep);
	return 1;
}

static void drop_copy_failed(const char *name, int err)
{
	static struct log_limit lim;
	unsigned long long rep;
	if (log_limit(&lim, 60, &rep))
		log_err("event=maildrop_copy_failed file=%s error=\"%s\" repeated=%llu", name,
		        strerror(err), rep);
}

static void drop_one(const char *name)
{
	int fd = openat(queue_fs_dirfd(QD_DROP), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		/* a hard link to someone else's file would lend us its owner's identity */
		if (fd >= 0)
			close(fd);
		queue_fs_quarantine(QD_DROP, name, "not a regular file with one link");
		return;
	}
	struct maildrop_env me;
	off_t body;
	maildrop_env_init(&me);
	if (maildrop_parse_fd(fd, &me, &body) < 0) {
		close(fd);
		queue_fs_quarantine(QD_DROP, name, me.why ? me.why : "malformed");
		maildrop_env_free(&me);
		return;
	}
	uint64_t id, max = queue_cfg->databytes ? queue_cfg->databytes : UINT64_MAX;
	uint64_t size = st.st_size > body ? (uint64_t)(st.st_size - body) : 0;
	if (size > max || drop_no_room(name, size)) {
		close(fd);
		maildrop_env_free(&me);
		if (size > max)
			drop_too_big(name, st.st_uid, size);
		return;
	}
	int dfd = queue_fs_create_data(&id), r = dfd < 0 ? -1 : drop_copy(fd, body, dfd, id, st.st_uid, max);
	if (r < 0) {
		if (r == -1)
			drop_copy_failed(name, errno);
		if (dfd >= 0) {
			close(dfd);
			queue_fs_discard_uncommitted(id);
		}
		close(fd);
		maildrop_env_free(&me);
		if (r == -2)                 /* it grew while we copied */
			drop_too_big(name, st.st_uid, max + 1);
		else if (r == -3)
			queue_fs_quarantine(QD_DROP, name, "message contains NUL characters");
		return;                      /* an I/O error: retried at the next scan */
	}
	close(fd);
	struct qmsg *m = queue_new_msg();
	m->env.id = id;
	m->env.arrival = queue_now();
	m->env.sender = xstrdup(me.sender);
	struct buf o;
	buf_init(&o);
	buf_printf(&o, "maildrop uid=%lu file=%s%s%s", (unsigned long)st.st_uid, name,
	           me.origin ? " " : "", me.origin ? me.origin : "");
	m->env.origin = buf_detach(&o);
	for (size_t i = 0; i < me.nrcpt; i++)
		env_add_rcpt(&m->env, me.rcpt[i]);
	m->env.norig = m->env.nslots;
	maildrop_env_free(&me);
	struct inprog *p = xcalloc(1, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	p->next = inprog;
	inprog = p;
	queue_commit_add(PC_DROP, m, dfd, NULL, 0, name, 0);
}

/* a writer that crashed leaves its tmp.* file (doc/MAILDROP.md): gone after a day untouched */
static void drop_stale_tmp(const char *name)
{
	struct stat st;
	time_t now = time(NULL);
	if (fstatat(queue_fs_dirfd(QD_DROP), name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_mtime > now - DROP_STALE_TMP)
		return;
	if (unlinkat(queue_fs_dirfd(QD_DROP), name, 0) < 0)
		log_err("event=maildrop_unlink_failed file=%s error=\"%s\"", name, strerror(errno));
	else
		log_info("event=maildrop_stale_tmp file=%s uid=%lu age=%lld", name,
		         (unsigned long)st.st_uid, (long long)(now - st.st_mtime));
}

void queue_drop_scan(void)
{
	int dup_fd = dup(queue_fs_dirfd(QD_DROP));
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	int n = 0;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return;
	}
	rewinddir(d);
	for (struct dirent *de; (de = readdir(d));) {
		const char *nm = de->d_name;
		if (strncmp(nm, "tmp.", 4) == 0)
			drop_stale_tmp(nm);
		if (nm[0] == '.' || strncmp(nm, "tmp.", 4) == 0 || strlen(nm) >= 64 || drop_busy(nm))
			continue;
		if (n++ == DROP_PER_PASS) {
			ev_add(drop_again, 0);  /* more next pass: don't starve the other work */
			break;
		}
		drop_one(nm);
	}
	closedir(d);
}

static void drop_notify(int fd, short what, void *arg)
{
	char buf[4096];
	while (read(fd, buf, sizeof buf) > 0)
		;
	queue_drop_scan();
}

static void drop_again_cb(int fd, short what, void *arg) { queue_drop_scan(); }

void queue_drop_init(void)
{
	drop_again = ev_new(-1, 0, drop_again_cb, NULL);
	drop_ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (drop_ino >= 0) {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", queue_fs_dirfd(QD_DROP));
		if (inotify_add_watch(drop_ino, path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
			log_warn("event=inotify_unavailable error=\"%s\"; polling maildrop", strerror(errno));
		drop_ev = ev_new(drop_ino, EV_R | EV_PERSIST, drop_notify, NULL);
		ev_add(drop_ev, -1);
	}
	queue_drop_scan();
}
