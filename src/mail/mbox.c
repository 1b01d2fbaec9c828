/* mbox — ">From " quoting, the "From " separator line, and locked appends (see mbox.h).
 * Owns: the mbox file between lock and close. Trusts nothing: the quoting state machine never
 * holds more than counters, so a line of a million '>' costs no memory. */
#include "mail/mbox.h"
#include "lib/fsutil.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MBOX_CHUNK 65536

static const char from_word[] = "From ";
#define FROM_LEN 5

void mbox_quote_init(struct mbox_quote *q)
{
	q->bol = 1;
	q->gts = 0;
	q->from = 0;
	q->last = '\n';
}

static void put_gts(struct buf *out, size_t n)
{
	char chunk[64];
	memset(chunk, '>', sizeof chunk);
	while (n) {
		size_t k = n < sizeof chunk ? n : sizeof chunk;
		buf_add(out, chunk, k);
		n -= k;
	}
}

/* write the held-back prefix (quoted with one more '>' if it completed "From ") */
static void flush_prefix(struct mbox_quote *q, struct buf *out, int quote)
{
	size_t gts = q->gts + (quote ? 1 : 0);
	put_gts(out, gts);
	buf_add(out, from_word, q->from);
	if (gts || q->from)
		q->last = q->from ? from_word[q->from - 1] : '>';
	q->gts = q->from = 0;
	q->bol = 0;
}

/* one byte while still inside a possible ^>*From prefix; 1 = consumed */
static int prefix_byte(struct mbox_quote *q, char c, struct buf *out)
{
	if (c == '>' && q->from == 0) {
		q->gts++;
		return 1;
	}
	if (c == from_word[q->from]) {
		if (++q->from == FROM_LEN)
			flush_prefix(q, out, 1);
		return 1;
	}
	flush_prefix(q, out, 0);
	return 0;
}

void mbox_quote_feed(struct mbox_quote *q, const char *p, size_t n, struct buf *out)
{
	size_t i = 0;
	while (i < n) {
		if (q->bol && prefix_byte(q, p[i], out)) {
			i++;
			continue;
		}
		const char *nl = memchr(p + i, '\n', n - i);
		size_t k = nl ? (size_t)(nl - (p + i)) + 1 : n - i;
		buf_add(out, p + i, k);
		q->last = p[i + k - 1];
		q->bol = nl != NULL;
		i += k;
	}
}

int mbox_quote_finish(struct mbox_quote *q, struct buf *out)
{
	if (q->gts || q->from)
		flush_prefix(q, out, 0);
	return q->last == '\n';
}

void mbox_from_line(struct buf *out, const char *sender, time_t when)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	buf_adds(out, "From ");
	if (!*sender)
		buf_adds(out, "MAILER-DAEMON");
	for (; *sender; sender++) {
		unsigned char c = (unsigned char)*sender;
		buf_addc(out, (c <= ' ' || c == 0x7f) ? '-' : (char)c);
	}
	if (!gmtime_r(&when, &tm))
		memset(&tm, 0, sizeof tm);
	buf_printf(out, " %s %s %2d %02d:%02d:%02d %d\n", wd[(unsigned)tm.tm_wday % 7],
		   mo[(unsigned)tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		   tm.tm_year + 1900);
}

static void on_alarm(int sig) { (void)sig; }

/* fcntl and flock locks under one alarm (no SA_RESTART, so a timeout is EINTR) */
static int lock(int fd, unsigned secs)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	alarm(secs);
	int r = fcntl(fd, F_SETLKW, &fl);
	if (r == 0)
		r = flock(fd, LOCK_EX);
	int e = errno;
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	errno = e;
	return r;
}

/* the message, quoted, then the final blank line */
static int body(int fd, int msgfd, off_t msglen)
{
	char *chunk = malloc(MBOX_CHUNK);
	struct mbox_quote q;
	struct buf out;
	off_t off = 0;
	int rc = chunk ? 0 : -1;
	buf_init(&out);
	mbox_quote_init(&q);
	while (rc == 0 && off < msglen) {
		size_t want = msglen - off < MBOX_CHUNK ? (size_t)(msglen - off) : MBOX_CHUNK;
		ssize_t r = pread(msgfd, chunk, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;     /* the message shrank */
			rc = -1;
			break;
		}
		buf_reset(&out);
		mbox_quote_feed(&q, chunk, (size_t)r, &out);
		rc = fs_write_all(fd, out.p, out.len);
		off += r;
	}
	buf_reset(&out);
	if (!mbox_quote_finish(&q, &out))
		buf_addc(&out, '\n');
	buf_addc(&out, '\n');
	if (rc == 0)
		rc = fs_write_all(fd, out.p, out.len);
	buf_free(&out);
	free(chunk);
	return rc;
}

static enum mbox_err fail(int fd, enum mbox_err err)
{
	int e = errno;
	close(fd);
	errno = e;
	return err;
}

enum mbox_err mbox_append(const char *path, const char *from_line, const char *head,
			  size_t headlen, int msgfd, off_t msglen, unsigned lock_secs)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_NONBLOCK | O_CLOEXEC,
		      0600);
	if (fd == -1)
		return MBOX_OPEN;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		return fail(fd, MBOX_NOTREG);
	if (lock(fd, lock_secs) == -1)
		return fail(fd, MBOX_LOCK);
	off_t pos = lseek(fd, 0, SEEK_END);
	if (pos == -1)
		return fail(fd, MBOX_WRITE);
	if (fs_write_all(fd, from_line, strlen(from_line)) == -1 ||
	    fs_write_all(fd, head, headlen) == -1 || body(fd, msgfd, msglen) == -1 ||
	    fsync(fd) == -1) {
		int e = errno;
		if (ftruncate(fd, pos) == 0)
			fsync(fd);
		errno = e;
		return fail(fd, MBOX_WRITE);
	}
	return close(fd) == -1 ? MBOX_WRITE : MBOX_OK;
}
