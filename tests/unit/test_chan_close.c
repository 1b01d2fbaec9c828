/* test_chan_close — chan_peer_closed() (src/lib/msg.c): after a channel's close callback, a
 * role must know whether the peer died (end of file: wait for its restarted successor) or
 * whether this side closed the channel on a malformed frame while the peer lives on (nobody
 * would ever reconnect: the role exits to be restarted). Real socketpairs, real event loop. */
#include "t.h"
#include "lib/ev.h"
#include "lib/msg.h"
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

static int closed, peer_closed;

static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd,
                    void *arg)
{
	if (fd >= 0)
		close(fd);
}

static void on_close(struct chan *c, void *arg)
{
	closed = 1;
	peer_closed = chan_peer_closed(c);
	ev_exit();
}

static void on_limit(int fd, short what, void *arg) { ev_exit(); }

/* what the peer does to its end (1: it closed it), then the verdict after the close
 * callback */
static int run_case(int (*peer)(int fd))
{
	int sp[2];
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	struct chan *c = chan_new(sp[0], "peer", on_recv, on_close, NULL);
	closed = 0;
	peer_closed = -1;
	int gone = peer(sp[1]);
	struct ev *limit = ev_new(-1, 0, on_limit, NULL);
	ev_add(limit, 5000);
	ev_run();
	ev_free(limit);
	T_CHECK(closed);
	chan_free(c);
	if (!gone)
		close(sp[1]);
	return peer_closed;
}

static int peer_exits(int fd) { return close(fd) == 0; }

static int peer_sends_garbage(int fd)
{
	static const unsigned char bad[12] = { 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0 };
	T_EQ_INT(write(fd, bad, sizeof bad), (long long)sizeof bad);   /* length over the limit */
	return 0;
}

static int peer_sends_then_exits(int fd)
{
	struct msg m;
	msg_init(&m, 7, 1);
	msg_u64(&m, 42);
	unsigned char *h = (unsigned char *)m.b.p;
	size_t plen = m.b.len - MSG_HDRLEN;
	h[0] = (unsigned char)plen;
	h[4] = 7;
	h[8] = 1;
	T_EQ_INT(write(fd, m.b.p, m.b.len), (long long)m.b.len);
	msg_discard(&m);
	return close(fd) == 0;
}

/* the peer sends, we fail on a write (its end is gone) before reading what it sent */
static int write_case(void)
{
	int sp[2];
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	struct chan *c = chan_new(sp[0], "peer", on_recv, on_close, NULL);
	closed = 0;
	peer_closed = -1;
	T_EQ_INT(write(sp[1], "unread", 6), 6);
	close(sp[1]);
	struct msg m;
	msg_init(&m, 7, 1);
	chan_send(c, &m);               /* EPIPE: the close callback runs inside the send */
	T_CHECK(closed);
	chan_free(c);
	return peer_closed;
}

static void run(void)
{
	signal(SIGPIPE, SIG_IGN);
	ev_init();
	T_EQ_INT(write_case(), 1);
	T_EQ_INT(run_case(peer_exits), 1);
	T_EQ_INT(run_case(peer_sends_then_exits), 1);   /* its last words are read, then EOF */
	T_EQ_INT(run_case(peer_sends_garbage), 0);      /* closed here; the peer still holds on */
}

T_MAIN(run)
