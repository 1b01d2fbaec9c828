/* pop3_maildir — see pop3_maildir.h. The scan renames new/X to cur/X:2, (a message another
 * session moved first is simply found in cur/), reads each message once to count its size as
 * sent, and sorts; the encoder works on runs between line feeds, so a message is copied in
 * large pieces rather than octet by octet. A name carrying Dovecot's ",W=<size>" is not read.
 * Owns: the session's listing (names, sizes, marks). Trusts: nothing in names or contents. */
#include "mail/pop3_maildir.h"
#include "lib/hmap.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POP3_READSZ 65536

/* ---- the encoder ------------------------------------------------------------------------- */

void pop3_maildir_enc_init(struct pop3_enc *e, long toplines, int stuff)
{
	memset(e, 0, sizeof *e);
	e->toplines = toplines;
	e->bol = 1;
	e->stuff = stuff;
}

static void pop3_emit(struct pop3_enc *e, struct buf *out, const char *p, size_t n)
{
	e->octets += n;
	if (out)
		buf_add(out, p, n);
}

/* a line feed ends the line: header/body and TOP's line count */
static void pop3_maildir_enc_eol(struct pop3_enc *e, int empty)
{
	if (!e->inbody) {
		if (empty) {
			e->inbody = 1;
			if (e->toplines == 0)
				e->done = 1;
		}
	} else if (e->toplines > 0 && --e->toplines == 0)
		e->done = 1;
	e->bol = 1;
	e->cr = 0;
}

void pop3_maildir_enc_feed(struct pop3_enc *e, const char *in, size_t n, struct buf *out)
{
	size_t i = 0;
	while (i < n && !e->done) {
		const char *nl = memchr(in + i, '\n', n - i);
		size_t run = nl ? (size_t)(nl - (in + i)) : n - i;
		if (run) {
			if (e->bol == 1 && e->stuff && in[i] == '.')
				pop3_emit(e, out, ".", 1);
			pop3_emit(e, out, in + i, run);
			/* bol 2: the line holds a lone CR so far (still an empty line if LF follows) */
			e->bol = e->bol == 1 && run == 1 && in[i] == '\r' ? 2 : 0;
			e->cr = in[i + run - 1] == '\r';
			i += run;
		}
		if (!nl)
			break;
		int empty = e->bol != 0;
		if (e->cr)
			pop3_emit(e, out, "\n", 1);
		else
			pop3_emit(e, out, "\r\n", 2);
		pop3_maildir_enc_eol(e, empty);
		i++;
	}
}

void pop3_maildir_enc_end(struct pop3_enc *e, struct buf *out)
{
	if (!e->done && e->bol != 1)
		pop3_emit(e, out, e->cr ? "\n" : "\r\n", e->cr ? 1 : 2);
	if (e->stuff)
		pop3_emit(e, out, ".\r\n", 3);
}

uint64_t pop3_maildir_wire_size(const char *p, size_t n)
{
	struct pop3_enc e;
	pop3_maildir_enc_init(&e, -1, 0);
	pop3_maildir_enc_feed(&e, p, n, NULL);
	pop3_maildir_enc_end(&e, NULL);
	return e.octets;
}

/* ---- UIDL --------------------------------------------------------------------------------- */

void pop3_maildir_uidl(const char *name, char out[POP3_UIDLMAX + 1])
{
	size_t n = strcspn(name, ":");
	int ok = n >= 1 && n <= POP3_UIDLMAX;
	for (size_t i = 0; ok && i < n; i++)
		if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
			ok = 0;
	if (ok) {
		memcpy(out, name, n);
		out[n] = '\0';
		return;
	}
	uint64_t h = str_hash(name);                   /* FNV-1a of the whole name */
	snprintf(out, POP3_UIDLMAX + 1, "x%016llx", (unsigned long long)h);
}

/* ---- the scan ----------------------------------------------------------------------------- */

/* new/ into cur/ with the ":2," info (a name that has an info part keeps it) */
static int pop3_move_new(int dfd)
{
	int nfd = openat(dfd, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nfd < 0)
		return -1;
	int cfd = openat(dfd, "cur", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fdopendir(nfd);
	if (cfd < 0 || !d) {
		int e = errno;
		if (d)
			closedir(d);
		else
			close(nfd);
		if (cfd >= 0)
			close(cfd);
		errno = e;
		return -1;
	}
	struct dirent *de;
	char to[NAME_MAX + 8];
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(to, sizeof to, "%s%s", de->d_name, strchr(de->d_name, ':') ? "" : ":2,");
		if (renameat(nfd, de->d_name, cfd, to) < 0 && errno != ENOENT)
			continue;            /* left in new/: listed next time */
	}
	closedir(d);
	close(cfd);
	return 0;
}

/* Dovecot's ",W=<n>" in the unique name: the size with CRLF line ends, exactly what POP3
 * reports, so the message need not be read. 0 and *w, or -1 if absent. */
static int pop3_wsize(const char *name, uint64_t *w)
{
	size_t end = strcspn(name, ":");
	for (const char *p = strstr(name, ",W="); p && (size_t)(p - name) < end;
	     p = strstr(p + 1, ",W=")) {
		char digits[21];
		size_t n = strspn(p + 3, "0123456789");
		if (n == 0 || n >= sizeof digits || (p[3 + n] != ',' && p[3 + n] != ':' && p[3 + n]))
			continue;
		memcpy(digits, p + 3, n);
		digits[n] = '\0';
		return str_to_u64(digits, 0, UINT64_MAX, w);
	}
	return -1;
}

/* the size as sent of the file name in cur/ (cfd); -1 if it vanished or cannot be read */
static int pop3_measure(int cfd, const char *name, struct pop3_msg *m)
{
	int fd = openat(cfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	m->mtime = st.st_mtime;
	if (pop3_wsize(name, &m->size) == 0) {
		close(fd);
		return 0;
	}
	struct pop3_enc e;
	static char rb[POP3_READSZ];
	ssize_t r;
	pop3_maildir_enc_init(&e, -1, 0);
	while ((r = read(fd, rb, sizeof rb)) > 0)
		pop3_maildir_enc_feed(&e, rb, (size_t)r, NULL);
	close(fd);
	if (r < 0)
		return -1;
	pop3_maildir_enc_end(&e, NULL);
	m->size = e.octets;
	return 0;
}

static int pop3_msg_cmp(const void *a, const void *b)
{
	const struct pop3_msg *x = a, *y = b;
	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int pop3_list_cur(struct pop3_box *b)
{
	int cfd = openat(b->dfd, "cur", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = cfd >= 0 ? fdopendir(cfd) : NULL;
	if (!d) {
		int e = errno;
		if (cfd >= 0)
			close(cfd);
		errno = e;
		return -1;
	}
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (b->n == cap) {
			cap = cap ? cap * 2 : 64;
			b->m = xrealloc(b->m, cap * sizeof *b->m);
		}
		struct pop3_msg *m = &b->m[b->n];
		memset(m, 0, sizeof *m);
		if (pop3_measure(dirfd(d), de->d_name, m) < 0)
			continue;
		m->name = xstrdup(de->d_name);
		pop3_maildir_uidl(m->name, m->uidl);
		b->n++;
	}
	closedir(d);
	if (b->n > 1)
		qsort(b->m, b->n, sizeof *b->m, pop3_msg_cmp);
	return 0;
}

int pop3_maildir_open(struct pop3_box *b, int dfd)
{
	memset(b, 0, sizeof *b);
	b->dfd = dfd;
	if (pop3_move_new(dfd) < 0 || pop3_list_cur(b) < 0)
		return -1;
	return 0;
}

void pop3_maildir_free(struct pop3_box *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->m[i].name);
	free(b->m);
	if (b->dfd >= 0)
		close(b->dfd);
	memset(b, 0, sizeof *b);
	b->dfd = -1;
}

void pop3_maildir_stat(const struct pop3_box *b, size_t *count, uint64_t *octets)
{
	*count = 0;
	*octets = 0;
	for (size_t i = 0; i < b->n; i++)
		if (!b->m[i].deleted) {
			(*count)++;
			*octets += b->m[i].size;
		}
}

int pop3_maildir_openmsg(const struct pop3_box *b, size_t i)
{
	char path[NAME_MAX + 8];
	if (i >= b->n) {
		errno = ENOENT;
		return -1;
	}
	snprintf(path, sizeof path, "cur/%s", b->m[i].name);
	return openat(b->dfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

size_t pop3_maildir_commit(struct pop3_box *b, size_t *failed)
{
	char path[NAME_MAX + 8];
	size_t n = 0;
	*failed = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (!b->m[i].deleted)
			continue;
		snprintf(path, sizeof path, "cur/%s", b->m[i].name);
		if (unlinkat(b->dfd, path, 0) == 0 || errno == ENOENT)
			n++;
		else
			(*failed)++;
	}
	return n;
}
