/* test_msg — the IPC codec: field round trips, type checks, truncated and oversized frames,
 * and a real channel over a socketpair carrying a file descriptor. */
#include "t.h"
#include "lib/msg.h"
#include "lib/ev.h"
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

static void fields(void)
{
	struct msg m;
	msg_init(&m, 7, 42);
	msg_u64(&m, 0);
	msg_u64(&m, UINT64_MAX);
	msg_str(&m, "hello");
	msg_str(&m, NULL);
	msg_bytes(&m, "a\0b", 3);
	struct msg_reader r;
	msg_reader_init(&r, m.b.p + MSG_HDRLEN, m.b.len - MSG_HDRLEN);
	T_EQ_INT(msg_get_u64(&r), 0);
	T_CHECK(msg_get_u64(&r) == UINT64_MAX);
	T_EQ_STR(msg_get_str(&r), "hello");
	T_EQ_STR(msg_get_str(&r), "");
	size_t n;
	const char *b = msg_get_bytes(&r, &n);
	T_EQ_INT(n, 3);
	T_CHECK(b && b[1] == '\0' && b[2] == 'b');
	T_EQ_INT(msg_done(&r), 0);
	/* reading past the end or with the wrong type fails and stays failed */
	T_EQ_INT(msg_get_u64(&r), 0);
	T_EQ_INT(msg_done(&r), -1);
	msg_reader_init(&r, m.b.p + MSG_HDRLEN, m.b.len - MSG_HDRLEN);
	T_EQ_STR(msg_get_str(&r), "");          /* a u64 is not a string */
	T_CHECK(r.err);
	msg_discard(&m);
}

static void malformed(void)
{
	static const struct { const char *p; size_t n; int ok; } cases[] = {
		{ "Q\1\2\3", 4, 0 },                           /* short u64 */
		{ "S\5\0\0\0abc", 9, 0 },                     /* length past the end */
		{ "S\3\0\0\0abc", 8, 0 },                     /* missing NUL */
		{ "S\3\0\0\0a\0c\0", 10, 0 },                 /* NUL inside */
		{ "S\3\0\0\0abc\0", 9, 1 },
		{ "B\377\377\377\377", 5, 0 },                 /* huge length */
		{ "X", 1, 0 },                                  /* unknown tag */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct msg_reader r;
		msg_reader_init(&r, cases[i].p, cases[i].n);
		if (cases[i].p[0] == 'Q')
			msg_get_u64(&r);
		else if (cases[i].p[0] == 'B') {
			size_t n;
			msg_get_bytes(&r, &n);
		} else
			msg_get_str(&r);
		if ((msg_done(&r) == 0) != cases[i].ok)
			fprintf(stderr, "case %zu\n", i);
		T_EQ_INT(msg_done(&r) == 0, cases[i].ok);
	}
	uint32_t type, id;
	int hasfd;
	unsigned char hdr[12] = { 0 };
	T_EQ_INT(msg_frame(hdr, 11, &type, &id, &hasfd), 0);       /* need more */
	T_EQ_INT(msg_frame(hdr, 12, &type, &id, &hasfd), 12);      /* empty payload */
	hdr[3] = 0x7f;                                              /* 2 GiB payload */
	T_EQ_INT(msg_frame(hdr, 12, &type, &id, &hasfd), -1);
	hdr[3] = 0; hdr[0] = 4; hdr[7] = 0x80; hdr[4] = 9; hdr[8] = 5;
	T_EQ_INT(msg_frame(hdr, 12, &type, &id, &hasfd), 0);       /* payload not here yet */
	unsigned char full[16] = { 4, 0, 0, 0, 9, 0, 0, 0x80, 5, 0, 0, 0, 'x', 'y', 'z', 'w' };
	T_EQ_INT(msg_frame(full, 16, &type, &id, &hasfd), 16);
	T_EQ_INT(type, 9);
	T_EQ_INT(id, 5);
	T_EQ_INT(hasfd, 1);
}

static int got_n, got_fd_ok;
static void on_recv(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd, void *arg)
{
	got_n++;
	if (type == 2) {
		char b[8] = "";
		got_fd_ok = fd >= 0 && pread(fd, b, 5, 0) == 5 && memcmp(b, "tern!", 5) == 0;
		close(fd);
		ev_exit();
	} else
		T_EQ_INT(msg_get_u64(r), 1000 + id);
}

static void channel(void)
{
	int sp[2];
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ev_init();
	struct chan *a = chan_new(sp[0], "a", on_recv, NULL, NULL);
	struct chan *b = chan_new(sp[1], "b", on_recv, NULL, NULL);
	for (uint32_t i = 0; i < 2000; i++) {            /* more than a socket buffer */
		struct msg m;
		msg_init(&m, 1, i);
		msg_u64(&m, 1000 + i);
		msg_bytes(&m, "................................................................", 64);
		chan_send(a, &m);
	}
	char path[] = "/tmp/test_msg_XXXXXX";
	int fd = mkstemp(path);
	T_CHECK(fd >= 0 && write(fd, "tern!", 5) == 5);
	unlink(path);
	struct msg m;
	msg_init(&m, 2, 0);
	msg_fd(&m, fd);
	chan_send(a, &m);
	ev_run();
	T_EQ_INT(got_n, 2001);
	T_CHECK(got_fd_ok);
	chan_free(a);
	chan_free(b);
}

/* chan_read_to_eof: what a dead peer wrote before it died is read and dispatched at once,
 * outside the event loop, frames with descriptors included, then the end is seen. */
static int drained, drained_fd_ok, drain_closed;
static void on_drain(struct chan *c, uint32_t type, uint32_t id, struct msg_reader *r, int fd, void *arg)
{
	if (type == 2) {
		char b[8] = "";
		drained_fd_ok = fd >= 0 && pread(fd, b, 5, 0) == 5 && memcmp(b, "tern!", 5) == 0;
		close(fd);
		return;
	}
	size_t n = 0;
	uint64_t v = msg_get_u64(r);
	if (v == 1000 + id && msg_get_bytes(r, &n) && n == 64 && msg_done(r) == 0 &&
	    id == (uint32_t)drained)
		drained++;
}
static void on_drain_closed(struct chan *c, void *arg) { drain_closed++; }

static void drain_send(struct chan *a, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		struct msg m;
		msg_init(&m, 1, i);
		msg_u64(&m, 1000 + i);
		msg_bytes(&m, "................................................................", 64);
		chan_send(a, &m);
	}
	T_EQ_INT(chan_flush_blocking(a), 0);
}

static void drain(void)
{
	int sp[2];
	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	struct chan *a = chan_new(sp[0], "a", on_recv, NULL, NULL);   /* channel()'s loop, */
	struct chan *b = chan_new(sp[1], "b", on_drain, on_drain_closed, NULL);   /* not run */
	drain_send(a, 0, 10);                        /* the peer lives: what is there, no wait */
	T_EQ_INT(chan_read_to_eof(b), -1);
	T_EQ_INT(drained, 10);
	T_EQ_INT(drain_closed, 0);
	drain_send(a, 10, 100);                      /* then a descriptor: two reads at least */
	char path[] = "/tmp/test_msg_XXXXXX";
	int fd = mkstemp(path);
	T_CHECK(fd >= 0 && write(fd, "tern!", 5) == 5);
	unlink(path);
	struct msg m;
	msg_init(&m, 2, 0);
	msg_fd(&m, fd);
	chan_send(a, &m);
	drain_send(a, 100, 101);
	chan_free(a);                                /* the peer dies */
	T_EQ_INT(chan_read_to_eof(b), 0);
	T_EQ_INT(drained, 101);
	T_CHECK(drained_fd_ok);
	T_EQ_INT(drain_closed, 1);
	T_EQ_INT(chan_peer_closed(b), 1);
	chan_free(b);
}

static void run(void) { fields(); malformed(); channel(); drain(); }
T_MAIN(run)
