/* io — see io.h. One state machine per connection:
 *
 *   io_connect ─► CONNECTING ─writable─► IO_CONNECTED ─┐
 *   io_new ────────────────────────────────────────────┴─► OPEN ◄─ IO_TLSREADY ─┐
 *                                            io_start_tls_* │                    │
 *                                                           ▼                    │
 *                               (plaintext output drains) HANDSHAKE ─────────────┘
 *
 * Every entry from the event loop is a "frame": the owner's callbacks run inside it, io_free
 * inside it only marks the io, and when the outermost frame ends io sends what it can,
 * delivers a due IO_LOWAT, frees the io if marked, or re-arms its events and timer.
 * Owns: the socket, both buffers, the events and the SSL object. Trusts: nothing read. */
#include "lib/io.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/tls.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IO_RBUF      65536       /* the read buffer every io of the process shares */
#define IO_SSL_CHUNK 16384       /* one TLS record per SSL_write */
#define IO_MAX_LOOPS 64          /* reads per event: fairness between connections */

enum { ST_OPEN, ST_CONNECTING, ST_HANDSHAKE, ST_DEAD };

struct io {
	int fd;
	io_cb cb;
	void *arg;
	struct ev *rev, *wev, *tev, *kev;  /* read, write, timeout, kick: made when first needed */
	struct buf in;                     /* input the owner left, from roff on */
	size_t roff;
	char *view;                        /* borrowed input in the shared buffer (inside a read) */
	size_t vlen;
	struct buf out;
	long tmo;                          /* ms; < 0: none */
	SSL *ssl;
	uint8_t state, hwant, rwant, wwant;/* what SSL waits for: 0, EV_R or EV_W */
	uint8_t busy;                      /* frame depth */
	unsigned reading:1, rarmed:1, warmed:1, tarmed:1, freed:1, eof:1;
	unsigned lowat_due:1, datain_due:1, error_due:1, kicked:1, plain_drain:1;
	char err[120];
};

static char io_rbuf[IO_RBUF];

static void io_reload(struct io *io);
static void io_event_cb(int fd, short what, void *arg);

/* ---- frames ---------------------------------------------------------------------------- */

static void io_really_free(struct io *io)
{
	if (io->ssl) {
		if (io->state == ST_OPEN && !io->eof)
			(void)SSL_shutdown(io->ssl);  /* one close_notify, best effort: never wait */
		SSL_free(io->ssl);
		ERR_clear_error();
	}
	ev_free(io->rev);
	ev_free(io->wev);
	ev_free(io->tev);
	ev_free(io->kev);
	if (io->fd >= 0)
		close(io->fd);
	buf_free(&io->in);
	buf_free(&io->out);
	free(io);
}

static void io_enter(struct io *io) { io->busy++; }

static void io_emit(struct io *io, int evt)
{
	if (!io->freed)
		io->cb(io, evt, io->arg);
}

static int io_do_write(struct io *io);
static void io_handshake(struct io *io);
static void io_kick(struct io *io);

/* the outermost frame ends: send, deliver what is due, free or re-arm. 1 if io was freed */
static int io_leave(struct io *io)
{
	if (--io->busy > 0)
		return 0;
	for (int loops = 0; !io->freed && loops < IO_MAX_LOOPS; loops++) {
		io->busy++;
		if (io->state == ST_OPEN && io->out.len > 0 && !io->wwant && !io->error_due)
			(void)io_do_write(io);
		else if (io->state == ST_HANDSHAKE && io->plain_drain && !io->error_due)
			io_handshake(io);
		if (io->error_due) {
			io->error_due = 0;
			io->state = ST_DEAD;
			io_emit(io, IO_ERROR);
		} else if (io->lowat_due && io->out.len == 0) {
			io->lowat_due = 0;
			io_emit(io, IO_LOWAT);
		} else {
			io->busy--;
			break;
		}
		io->busy--;
	}
	if (io->freed) {
		io_really_free(io);
		return 1;
	}
	if ((io->lowat_due && io->out.len == 0) || io->error_due)
		io_kick(io);                   /* the loop's bound was reached: deliver it next turn */
	io_reload(io);
	return 0;
}

static void io_fail(struct io *io, const char *fmt, const char *detail)
{
	snprintf(io->err, sizeof io->err, fmt, detail);
	io->error_due = 1;
}

static void io_fail_ssl(struct io *io, const char *what)
{
	char e[96] = "";
	unsigned long code = ERR_get_error();
	if (code)
		ERR_error_string_n(code, e, sizeof e);
	else if (errno)
		snprintf(e, sizeof e, "%s", strerror(errno));
	else
		snprintf(e, sizeof e, "unexpected end of stream");
	if (io->ssl && SSL_get_verify_result(io->ssl) != X509_V_OK && io->state == ST_HANDSHAKE)
		snprintf(e, sizeof e, "certificate: %s",
		    X509_verify_cert_error_string(SSL_get_verify_result(io->ssl)));
	snprintf(io->err, sizeof io->err, "tls %s: %s", what, e);
	ERR_clear_error();
	io->error_due = 1;
}

/* ---- arming ------------------------------------------------------------------------------ */

static void io_arm(struct io *io, struct ev **e, int flag, int want)
{
	if (want && !*e)
		*e = ev_new(io->fd, flag | EV_PERSIST, io_event_cb, io);
	if (want)
		ev_add(*e, -1);
	else if (*e)
		ev_del(*e);
}

static void io_timer_cb(int fd, short what, void *arg);
static void io_kick_cb(int fd, short what, void *arg);

static void io_progress(struct io *io)
{
	if (io->tarmed && io->tmo >= 0)
		ev_add(io->tev, io->tmo);          /* the wait starts again */
}

static void io_reload(struct io *io)
{
	int r = 0, w = 0;
	if (io->state == ST_DEAD)
		r = w = 0;
	else if (io->state == ST_CONNECTING)
		w = 1;
	else if (io->state == ST_HANDSHAKE) {
		if (io->plain_drain)
			w = 1;
		else if (io->hwant == EV_W)
			w = 1;
		else
			r = 1;
	} else {
		if (io->reading && !io->eof) {
			if (io->rwant == EV_W)
				w = 1;
			else
				r = 1;
		}
		if (io->out.len > 0) {
			if (io->wwant == EV_R)
				r = 1;
			else
				w = 1;
		}
	}
	if (r != io->rarmed) {
		io_arm(io, &io->rev, EV_R, r);
		io->rarmed = r ? 1 : 0;
	}
	if (w != io->warmed) {
		io_arm(io, &io->wev, EV_W, w);
		io->warmed = w ? 1 : 0;
	}
	int waiting = (r || w) && io->tmo >= 0;
	if (waiting && !io->tarmed) {
		if (!io->tev)
			io->tev = ev_new(-1, 0, io_timer_cb, io);
		ev_add(io->tev, io->tmo);
		io->tarmed = 1;
	} else if (!waiting && io->tarmed) {
		ev_del(io->tev);
		io->tarmed = 0;
	}
	/* input freed when used up: an idle connection holds no buffer */
	if (io->roff == io->in.len && io->in.cap) {
		buf_free(&io->in);
		io->roff = 0;
	}
	if (io->out.len == 0 && io->out.cap)
		buf_free(&io->out);
}

/* run the frame machinery from outside the event loop (a due event, a resumed read) */
static void io_kick(struct io *io)
{
	if (io->busy || io->kicked)
		return;                        /* the frame's end or the pending kick handles it */
	if (!io->kev)
		io->kev = ev_new(-1, 0, io_kick_cb, io);
	io->kicked = 1;
	ev_add(io->kev, 0);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* one read into the shared buffer: > 0 octets, 0 would block, -1 EOF or error (flagged) */
static ssize_t io_read_once(struct io *io)
{
	ssize_t n;
	if (!io->ssl) {
		do
			n = read(io->fd, io_rbuf, sizeof io_rbuf);
		while (n < 0 && errno == EINTR);
		if (n > 0)
			return n;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n == 0)
			io->eof = 1;
		else
			io_fail(io, "read: %s", strerror(errno));
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	int k = SSL_read(io->ssl, io_rbuf, sizeof io_rbuf);
	io->rwant = 0;
	if (k > 0)
		return k;
	switch (SSL_get_error(io->ssl, k)) {
	case SSL_ERROR_WANT_READ:  io->rwant = EV_R; return 0;
	case SSL_ERROR_WANT_WRITE: io->rwant = EV_W; return 0;
	case SSL_ERROR_ZERO_RETURN:
		io->eof = 1;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 || errno == ECONNRESET) {   /* EOF without close_notify */
			io->eof = 1;
			ERR_clear_error();
			return -1;
		}
		/* fall through */
	default:
		io_fail_ssl(io, "read");
		return -1;
	}
}

static void io_do_read(struct io *io)
{
	for (int loops = 0; loops < IO_MAX_LOOPS && !io->freed && io->reading; loops++) {
		ssize_t n = io_read_once(io);
		if (n == 0)
			return;
		if (n < 0) {
			if (io->eof)
				io_emit(io, IO_DISCONNECTED);
			return;
		}
		io_progress(io);
		if (io->roff == io->in.len) {       /* nothing left over: lend the shared buffer */
			buf_reset(&io->in);
			io->roff = 0;
			io->view = io_rbuf;
			io->vlen = (size_t)n;
			io_emit(io, IO_DATAIN);
			if (io->vlen && !io->freed)
				buf_add(&io->in, io->view, io->vlen);
			io->view = NULL;
			io->vlen = 0;
		} else {
			if (io->roff > 0) {
				buf_consume(&io->in, io->roff);
				io->roff = 0;
			}
			buf_add(&io->in, io_rbuf, (size_t)n);
			io_emit(io, IO_DATAIN);
		}
		if (!io->ssl || !SSL_pending(io->ssl))
			return;                     /* the socket will say when there is more */
	}
}

/* ---- writing ------------------------------------------------------------------------------ */

/* 0 all sent (or nothing to send), 1 blocked, -1 failed (flagged) */
static int io_do_write(struct io *io)
{
	size_t before = io->out.len;
	if (before == 0)
		return 0;
	if (!io->ssl || io->plain_drain) {
		int r = buf_send(&io->out, io->fd);
		if (r < 0) {
			io_fail(io, "write: %s", errno ? strerror(errno) : "connection closed");
			return -1;
		}
	} else {
		io->wwant = 0;
		while (io->out.len > 0) {
			ERR_clear_error();
			errno = 0;
			size_t n = io->out.len < IO_SSL_CHUNK ? io->out.len : IO_SSL_CHUNK;
			int k = SSL_write(io->ssl, io->out.p, (int)n);
			if (k > 0) {
				buf_consume(&io->out, (size_t)k);
				continue;
			}
			int e = SSL_get_error(io->ssl, k);
			if (e == SSL_ERROR_WANT_WRITE)
				io->wwant = EV_W;
			else if (e == SSL_ERROR_WANT_READ)
				io->wwant = EV_R;
			else {
				io_fail_ssl(io, "write");
				return -1;
			}
			break;
		}
	}
	if (io->out.len < before)
		io_progress(io);
	if (io->out.len == 0) {
		io->lowat_due = 1;
		return 0;
	}
	return 1;
}

/* ---- the handshake ------------------------------------------------------------------------ */

static void io_handshake(struct io *io)
{
	if (io->plain_drain) {                 /* the plaintext reply (220 …) goes out first */
		if (io_do_write(io) != 0)
			return;
		io->lowat_due = 0;
		io->plain_drain = 0;
	}
	ERR_clear_error();
	errno = 0;
	int k = SSL_do_handshake(io->ssl);
	if (k == 1) {
		io->state = ST_OPEN;
		io->hwant = 0;
		io_progress(io);
		io_emit(io, IO_TLSREADY);
		return;
	}
	switch (SSL_get_error(io->ssl, k)) {
	case SSL_ERROR_WANT_READ:  io->hwant = EV_R; io_progress(io); return;
	case SSL_ERROR_WANT_WRITE: io->hwant = EV_W; io_progress(io); return;
	default:
		io_fail_ssl(io, "handshake");
	}
}

/* ---- event entry points ------------------------------------------------------------------- */

static void io_connected(struct io *io)
{
	int e = 0;
	socklen_t l = sizeof e;
	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
		e = errno;
	if (e) {
		io_fail(io, "connect: %s", strerror(e));
		return;
	}
	io->state = ST_OPEN;
	io_progress(io);
	io_emit(io, IO_CONNECTED);
}

static void io_event_cb(int fd, short what, void *arg)
{
	struct io *io = arg;
	(void)fd;
	io_enter(io);
	if (io->state == ST_CONNECTING)
		io_connected(io);
	else if (io->state == ST_HANDSHAKE) {
		io_handshake(io);
		if (io->state == ST_OPEN && io->reading && !io->freed)
			io_do_read(io);             /* what came with the last flight */
	} else if (io->state == ST_OPEN) {
		int r = (what & EV_R) != 0, w = (what & EV_W) != 0;
		if (io->out.len > 0 && ((w && io->wwant != EV_R) || (r && io->wwant == EV_R)))
			(void)io_do_write(io);
		if (!io->error_due && io->reading && !io->eof &&
		    ((r && io->rwant != EV_W) || (w && io->rwant == EV_W)))
			io_do_read(io);
	}
	io_leave(io);
}

static void io_timer_cb(int fd, short what, void *arg)
{
	struct io *io = arg;
	(void)fd; (void)what;
	io->tarmed = 0;
	io_enter(io);
	snprintf(io->err, sizeof io->err, "timeout");
	io_emit(io, IO_TIMEOUT);
	io_leave(io);
}

static void io_kick_cb(int fd, short what, void *arg)
{
	struct io *io = arg;
	(void)fd; (void)what;
	io->kicked = 0;
	io_enter(io);
	if (io->datain_due && io->reading && io->state == ST_OPEN && !io->freed) {
		io->datain_due = 0;
		if (io->ssl && SSL_pending(io->ssl))
			io_do_read(io);
		else if (io_datalen(io) > 0)
			io_emit(io, IO_DATAIN);
	}
	io_leave(io);
}

/* ---- the interface --------------------------------------------------------------------- */

struct io *io_new(int fd, io_cb cb, void *arg)
{
	struct io *io = xcalloc(1, sizeof *io);
	int fl = fcntl(fd, F_GETFL), one = 1;
	if (fl >= 0 && !(fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	/* io sends each batch of output in one write: Nagle's algorithm could only hold a reply
	 * back for the peer's delayed ACK (a TLS handshake's last flight, a pipelined batch).
	 * Fails harmlessly on a unix socket. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	io->fd = fd;
	io->cb = cb;
	io->arg = arg;
	io->tmo = -1;
	io->reading = 1;
	buf_init(&io->in);
	buf_init(&io->out);
	io_reload(io);
	return io;
}

struct io *io_connect(const struct sockaddr *sa, socklen_t salen, const struct sockaddr *src,
                      socklen_t srclen, io_cb cb, void *arg)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (src && bind(fd, src, srclen) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	struct io *io = io_new(fd, cb, arg);
	io->state = ST_CONNECTING;
	if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS && errno != EINTR) {
		io_fail(io, "connect: %s", strerror(errno));
		io_kick(io);
	}
	io_reload(io);
	return io;
}

void io_free(struct io *io)
{
	if (!io || io->freed)
		return;
	io->freed = 1;
	if (io->busy)
		return;                        /* the frame's end frees it */
	io_really_free(io);
}

int io_fd(const struct io *io) { return io->fd; }

void io_set_cb(struct io *io, io_cb cb, void *arg)
{
	io->cb = cb;
	io->arg = arg;
}

void io_set_timeout(struct io *io, long ms)
{
	if (ms == io->tmo)
		return;                        /* the same value: the clock keeps running */
	io->tmo = ms;
	if (io->tarmed) {
		if (ms >= 0)
			ev_add(io->tev, ms);
		else {
			ev_del(io->tev);
			io->tarmed = 0;
		}
	}
	if (!io->busy)
		io_reload(io);
}

void io_set_read(struct io *io, int on)
{
	int was = io->reading;
	io->reading = on ? 1 : 0;
	if (on && !was && (io_datalen(io) > 0 || (io->ssl && SSL_pending(io->ssl)))) {
		io->datain_due = 1;
		io_kick(io);
	}
	if (!io->busy)
		io_reload(io);
}

const char *io_data(const struct io *io, size_t *len)
{
	if (io->vlen) {
		*len = io->vlen;
		return io->view;
	}
	*len = io->in.len - io->roff;
	return *len ? io->in.p + io->roff : "";
}

size_t io_datalen(const struct io *io)
{
	return io->vlen ? io->vlen : io->in.len - io->roff;
}

void io_drop(struct io *io, size_t n)
{
	if (io->vlen) {
		if (n > io->vlen)
			n = io->vlen;
		io->view += n;
		io->vlen -= n;
		return;
	}
	if (n > io->in.len - io->roff)
		n = io->in.len - io->roff;
	io->roff += n;
}

char *io_getline(struct io *io, size_t *len)
{
	size_t n;
	char *p = (char *)io_data(io, &n);
	char *nl = n ? memchr(p, '\n', n) : NULL;
	if (!nl)
		return NULL;
	size_t k = (size_t)(nl - p);
	*nl = '\0';
	io_drop(io, k + 1);
	if (k > 0 && p[k - 1] == '\r')
		p[--k] = '\0';
	*len = k;
	return p;
}

void io_write(struct io *io, const void *p, size_t n)
{
	if (io->freed || n == 0)
		return;
	buf_add(&io->out, p, n);
	if (!io->busy && !io->warmed)
		io_reload(io);
}

void io_print(struct io *io, const char *s) { io_write(io, s, strlen(s)); }

void io_vprintf(struct io *io, const char *fmt, va_list ap)
{
	char small[512];
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(small, sizeof small, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		io_write(io, small, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	io_write(io, big, (size_t)n);
	free(big);
}

void io_printf(struct io *io, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	io_vprintf(io, fmt, ap);
	va_end(ap);
}

size_t io_queued(const struct io *io) { return io->out.len; }

int io_flush(struct io *io)
{
	if (io->freed || io->state == ST_DEAD || io->error_due)
		return -1;
	if (io->state != ST_OPEN || io->wwant)
		return 0;                      /* the handshake or SSL's own wait comes first */
	if (io_do_write(io) < 0) {
		io->error_due = 0;             /* told here, not through IO_ERROR */
		io->state = ST_DEAD;
		return -1;
	}
	if (!io->busy) {
		if (io->lowat_due)
			io_kick(io);
		io_reload(io);
	}
	return 0;
}

/* ---- TLS ------------------------------------------------------------------------------------ */

static long io_start_tls(struct io *io, struct tls_ctx *ctx, int server, const char *name)
{
	long dropped = (long)io_datalen(io);
	if (io->ssl || io->state != ST_OPEN) {
		snprintf(io->err, sizeof io->err, "tls: already started or not connected");
		return -1;
	}
	io_drop(io, io_datalen(io));            /* never read plaintext as if it were protected */
	SSL *ssl = SSL_new((SSL_CTX *)tls_ctx_ssl_ctx(ctx));
	if (!ssl || !SSL_set_fd(ssl, io->fd)) {
		io_fail_ssl(io, "setup");
		io->error_due = 0;
		SSL_free(ssl);
		return -1;
	}
	if (server)
		SSL_set_accept_state(ssl);
	else {
		SSL_set_connect_state(ssl);
		if (name && *name) {
			(void)SSL_set_tlsext_host_name(ssl, name);
			(void)SSL_set1_host(ssl, name);
			SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		}
	}
	io->ssl = ssl;
	io->state = ST_HANDSHAKE;
	io->plain_drain = io->out.len > 0;
	io->hwant = server ? EV_R : EV_W;
	io->rwant = io->wwant = 0;
	if (!io->busy)
		io_reload(io);
	return dropped;
}

long io_start_tls_server(struct io *io, struct tls_ctx *ctx) { return io_start_tls(io, ctx, 1, NULL); }

long io_start_tls_client(struct io *io, struct tls_ctx *ctx, const char *servername)
{
	return io_start_tls(io, ctx, 0, servername);
}

int io_tls(const struct io *io) { return io->ssl && io->state == ST_OPEN; }

void io_tls_info(const struct io *io, struct io_tls_info *o)
{
	memset(o, 0, sizeof *o);
	if (!io_tls(io))
		return;
	const SSL_CIPHER *c = SSL_get_current_cipher(io->ssl);
	o->version = SSL_get_version(io->ssl);
	o->cipher = c ? SSL_CIPHER_get_name(c) : "unknown";
	o->bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
	X509 *peer = SSL_get0_peer_certificate(io->ssl);
	if (!peer)
		return;
	o->peer_cert = 1;
	long v = SSL_get_verify_result(io->ssl);
	o->verified = v == X509_V_OK;
	o->verify_error = o->verified ? NULL : X509_verify_cert_error_string(v);
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, o->peer_cn,
	        sizeof o->peer_cn) < 0)
		o->peer_cn[0] = '\0';
	for (char *p = o->peer_cn; *p; p++)    /* a peer's bytes, headed for logs */
		if ((unsigned char)*p < 32 || (unsigned char)*p > 126 || *p == '"' || *p == '\\')
			*p = '?';
}

const char *io_error(const struct io *io) { return io->err[0] ? io->err : "no error"; }

size_t io_footprint(const struct io *io)
{
	return sizeof *io + io->in.cap + io->out.cap + (io->rev ? 128 : 0) + (io->wev ? 128 : 0) +
	       (io->tev ? 128 : 0) + (io->kev ? 128 : 0);
}
