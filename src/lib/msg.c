/* msg — see msg.h. Framing and field codec (pure) and channels (event loop + sockets). */
#include "lib/msg.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void msg_init(struct msg *m, uint32_t type, uint32_t id)
{
	static const char zero[MSG_HDRLEN];
	m->type = type;
	m->id = id;
	m->fd = -1;
	m->wipe = 0;
	buf_init(&m->b);
	buf_add(&m->b, zero, sizeof zero);
}

void msg_u64(struct msg *m, uint64_t v)
{
	unsigned char t[9];
	t[0] = 'Q';
	for (int i = 0; i < 8; i++)
		t[1 + i] = (unsigned char)(v >> (8 * i));
	buf_add(&m->b, t, sizeof t);
}

static void msg_lenfield(struct msg *m, char tag, const void *p, size_t n, int nul)
{
	unsigned char t[5];
	t[0] = (unsigned char)tag;
	put32(t + 1, (uint32_t)n);
	buf_add(&m->b, t, sizeof t);
	buf_add(&m->b, p, n);
	if (nul)
		buf_addc(&m->b, '\0');
}

void msg_str(struct msg *m, const char *s)
{
	if (!s)
		s = "";
	msg_lenfield(m, 'S', s, strlen(s), 1);
}

void msg_bytes(struct msg *m, const void *p, size_t n) { msg_lenfield(m, 'B', p, n, 0); }
void msg_fd(struct msg *m, int fd) { m->fd = fd; }

static void msg_buf_free(struct buf *b, int wipe)
{
	if (wipe && b->p)
		explicit_bzero(b->p, b->len);
	buf_free(b);
}

void msg_wipe(struct msg *m) { m->wipe = 1; }

void msg_discard(struct msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	msg_buf_free(&m->b, m->wipe);
}

void msg_reader_init(struct msg_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

uint64_t msg_get_u64(struct msg_reader *r)
{
	uint64_t v = 0;
	if (r->err || r->len - r->off < 9 || r->p[r->off] != 'Q') {
		r->err = 1;
		return 0;
	}
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)r->p[r->off + 1 + i] << (8 * i);
	r->off += 9;
	return v;
}

static const void *msg_get_len(struct msg_reader *r, char tag, size_t *n, int nul)
{
	if (r->err || r->len - r->off < 5 || r->p[r->off] != (unsigned char)tag) {
		r->err = 1;
		return NULL;
	}
	size_t l = get32(r->p + r->off + 1);
	size_t need = l + (nul ? 1 : 0);
	if (r->len - r->off - 5 < need || (nul && r->p[r->off + 5 + l] != '\0') ||
	    (nul && memchr(r->p + r->off + 5, '\0', l))) {
		r->err = 1;
		return NULL;
	}
	const void *v = r->p + r->off + 5;
	r->off += 5 + need;
	*n = l;
	return v;
}

const char *msg_get_str(struct msg_reader *r)
{
	size_t n;
	const char *s = msg_get_len(r, 'S', &n, 1);
	return s ? s : "";
}

const void *msg_get_bytes(struct msg_reader *r, size_t *n)
{
	const void *v = msg_get_len(r, 'B', n, 0);
	if (!v)
		*n = 0;
	return v;
}

int msg_done(struct msg_reader *r)
{
	if (r->err || r->off != r->len) {
		r->err = 1;
		return -1;
	}
	return 0;
}

long msg_frame(const void *buf, size_t len, uint32_t *type, uint32_t *id, int *hasfd)
{
	const unsigned char *p = buf;
	if (len < MSG_HDRLEN)
		return 0;
	uint32_t plen = get32(p);
	if (plen > MSG_MAXPAYLOAD)
		return -1;
	if (len < MSG_HDRLEN + (size_t)plen)
		return 0;
	uint32_t t = get32(p + 4);
	*hasfd = (t & MSG_FDFLAG) != 0;
	*type = t & ~MSG_FDFLAG;
	*id = get32(p + 8);
	return (long)(MSG_HDRLEN + plen);
}

/* ---- channels ---------------------------------------------------------------- */

#define CHAN_MAXFDS 64

struct outq {
	struct outq *next;
	struct buf b;
	size_t off;
	int fd;                      /* to send with the first byte, or -1 */
	int wipe;                    /* msg_wipe */
};

struct chan {
	int fd;
	char peer[16];
	struct ev *rev, *wev;
	struct buf in;
	int fds[CHAN_MAXFDS];
	int nfds;
	struct outq *head, *tail;
	size_t pending;
	chan_recv_cb cb;
	chan_close_cb ccb;
	void *arg;
	int closing;
	int dispatching;
};

static chan_filter_fn chan_filter;

void chan_set_filter(chan_filter_fn fn) { chan_filter = fn; }

static void chan_fail(struct chan *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = 1;
	log_debug("event=chan_closed peer=%s reason=%s", c->peer, why);
	ev_del(c->rev);
	ev_del(c->wev);
	if (c->ccb)
		c->ccb(c, c->arg);
}

static int chan_take_fd(struct chan *c)
{
	if (c->nfds == 0)
		return -1;
	int fd = c->fds[0];
	memmove(c->fds, c->fds + 1, (size_t)(c->nfds - 1) * sizeof(int));
	c->nfds--;
	return fd;
}

static void chan_stash_fds(struct chan *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(cm);
		for (size_t i = 0; i < n; i++) {
			if (c->nfds < CHAN_MAXFDS)
				c->fds[c->nfds++] = fds[i];
			else
				close(fds[i]);
		}
	}
}

static void chan_dispatch(struct chan *c)
{
	size_t off = 0;
	c->dispatching = 1;
	while (!c->closing) {
		uint32_t type, id;
		int hasfd;
		long fl = msg_frame(c->in.p + off, c->in.len - off, &type, &id, &hasfd);
		if (fl == 0)
			break;
		if (fl < 0) {
			chan_fail(c, "bad_frame");
			break;
		}
		int fd = -1;
		if (hasfd && (fd = chan_take_fd(c)) < 0) {
			chan_fail(c, "missing_fd");
			break;
		}
		struct msg_reader r;
		msg_reader_init(&r, c->in.p + off + MSG_HDRLEN, (size_t)fl - MSG_HDRLEN);
		off += (size_t)fl;
		if (chan_filter && chan_filter(c->peer, type, hasfd) < 0) {
			log_err("event=ipc_refused peer=%s type=%u fd=%d", c->peer, type, hasfd);
			if (fd >= 0)
				close(fd);
			continue;
		}
		c->cb(c, type, id, &r, fd, c->arg);
		if (r.err)               /* the receiver found it malformed and dropped it */
			log_err("event=ipc_malformed peer=%s type=%u", c->peer, type);
	}
	c->dispatching = 0;
	if (!c->closing)
		buf_consume(&c->in, off);
}

static void chan_read(int fd, short what, void *arg)
{
	struct chan *c = arg;
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	buf_reserve(&c->in, 65536);
	struct iovec iov = { c->in.p + c->in.len, c->in.cap - c->in.len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	                     .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		chan_fail(c, n == 0 ? "eof" : "read_error");
		return;
	}
	chan_stash_fds(c, &mh);
	c->in.len += (size_t)n;
	c->in.p[c->in.len] = '\0';
	chan_dispatch(c);
}

/* one sendmsg of n bytes at p, with passfd attached (SCM_RIGHTS) when >= 0 */
static ssize_t msg_sendmsg(int fd, const void *p, size_t n, int passfd)
{
	struct iovec iov = { (void *)p, n };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (passfd >= 0) {
		memset(cbuf, 0, sizeof cbuf);
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &passfd, sizeof(int));
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

/* the frame header of a finished message */
static void msg_seal(struct msg *m)
{
	unsigned char *h = (unsigned char *)m->b.p;
	put32(h, (uint32_t)(m->b.len - MSG_HDRLEN));
	put32(h + 4, m->type | (m->fd >= 0 ? MSG_FDFLAG : 0));
	put32(h + 8, m->id);
}

int msg_write_blocking(int fd, struct msg *m)
{
	msg_seal(m);
	int ok = msg_sendmsg(fd, m->b.p, m->b.len, m->fd) == (ssize_t)m->b.len;
	msg_discard(m);
	return ok ? 0 : -1;
}

static int chan_write_one(struct chan *c, struct outq *q)
{
	ssize_t n = msg_sendmsg(c->fd, q->b.p + q->off, q->b.len - q->off, q->fd);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	if (q->fd >= 0) {
		close(q->fd);
		q->fd = -1;
	}
	q->off += (size_t)n;
	c->pending -= (size_t)n;
	return 1;
}

static int chan_drain(struct chan *c)
{
	while (c->head) {
		struct outq *q = c->head;
		int r = chan_write_one(c, q);
		if (r < 0)
			return -1;
		if (r == 0 || q->off < q->b.len)
			return 0;
		c->head = q->next;
		if (!c->head)
			c->tail = NULL;
		msg_buf_free(&q->b, q->wipe);
		free(q);
	}
	return 0;
}

static void chan_write(int fd, short what, void *arg)
{
	struct chan *c = arg;
	if (chan_drain(c) < 0) {
		chan_fail(c, "write_error");
		return;
	}
	if (!c->head)
		ev_del(c->wev);
}

struct chan *chan_new(int fd, const char *peer, chan_recv_cb cb, chan_close_cb ccb, void *arg)
{
	struct chan *c = xcalloc(1, sizeof *c);
	c->fd = fd;
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	c->cb = cb;
	c->ccb = ccb;
	c->arg = arg;
	buf_init(&c->in);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->rev = ev_new(fd, EV_R | EV_PERSIST, chan_read, c);
	c->wev = ev_new(fd, EV_W | EV_PERSIST, chan_write, c);
	ev_add(c->rev, -1);
	return c;
}

void chan_send(struct chan *c, struct msg *m)
{
	msg_seal(m);
	if (c->closing) {
		msg_discard(m);
		return;
	}
	struct outq *q = xcalloc(1, sizeof *q);
	q->b = m->b;
	q->fd = m->fd;
	q->wipe = m->wipe;
	c->pending += q->b.len;
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	if (q == c->head && chan_drain(c) < 0) {
		chan_fail(c, "write_error");
		return;
	}
	if (c->head && !ev_pending(c->wev))
		ev_add(c->wev, -1);
}

int chan_flush_blocking(struct chan *c)
{
	int fl = fcntl(c->fd, F_GETFL);
	fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	int r = chan_drain(c);
	fcntl(c->fd, F_SETFL, fl);
	return r;
}

void chan_free(struct chan *c)
{
	if (!c)
		return;
	ev_free(c->rev);
	ev_free(c->wev);
	close(c->fd);
	for (int i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	while (c->head) {
		struct outq *q = c->head;
		c->head = q->next;
		if (q->fd >= 0)
			close(q->fd);
		msg_buf_free(&q->b, q->wipe);
		free(q);
	}
	buf_free(&c->in);
	free(c);
}

const char *chan_peer(struct chan *c) { return c->peer; }
size_t chan_pending(struct chan *c) { return c->pending; }

/* A closed channel: did the peer close its end, or was it closed on this side for a
 * malformed frame while the peer lives on? Roles wait for a dead peer's successor and must
 * not wait for one that did not die. The socket says so even with unread data left in it
 * (the channel may have failed on a write): a hang-up. */
int chan_peer_closed(struct chan *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
}

/* Read what the peer wrote, to its end, now (not from the loop), dispatching every frame as
 * the loop would (descriptors included); the close callback runs at the end of the stream.
 * For a peer known to be dead whose successor's channel has arrived: what it said before it
 * died still counts. Never blocks: a peer that still holds its end leaves it at what is
 * there. 0: the channel is closed now; -1: it is not (or it is in its own dispatch). */
int chan_read_to_eof(struct chan *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	if (c->dispatching)
		return -1;
	while (!c->closing && poll(&p, 1, 0) == 1)
		chan_read(c->fd, EV_R, c);
	return c->closing ? 0 : -1;
}
