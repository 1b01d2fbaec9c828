/* io — one buffered, non-blocking connection, as every protocol session of tern sees it:
 * input (bytes or lines), batched output, one inactivity timeout, a non-blocking connect,
 * and TLS (server or client side) behind the same calls, so that the smtp server and
 * client, POP3, MAILQ, the queue protocol, admin and metrics sessions all read, write, time
 * out and encrypt the same way.
 *
 * Owns: the socket (closed by io_free), its input and output buffers, its events and timer,
 * and its TLS state. Trusts: nothing the peer sends; the owner to follow the contract below.
 *
 * Contract:
 * - Events reach the owner through one callback, io_cb(io, evt, arg). Inside it the owner may
 *   call any io_* function, io_free included (the free is deferred until the callback
 *   returns). After a callback, io re-arms its events by itself: output is sent, reading
 *   goes on while it is on, the timer runs while io waits for the peer.
 * - Input: IO_DATAIN says new input is buffered. io_data()/io_drop() and io_getline() read
 *   it, inside the callback or later (an owner that paused to ask another process may take up
 *   its buffered input when the answer comes). Input nobody consumed stays buffered. An idle
 *   connection holds no buffer: reads land in a buffer shared by every io of the process and
 *   only what the owner leaves unconsumed is copied into the io's own.
 * - Output: io_write()/io_printf() append; the octets leave at the end of the current io
 *   callback, at io_flush(), or when the socket is writable. IO_LOWAT: everything queued was
 *   sent (only after output was pending).
 * - The timeout counts from the last progress (octets read or written, handshake step) and
 *   runs only while io waits for the peer: reading is on, or output or a handshake is
 *   pending. A paused io with nothing to send never times out.
 * - TLS: io_start_tls_server/io_start_tls_client begin a handshake on the same socket. Any
 *   plaintext input still buffered is discarded first (the STARTTLS command injection class,
 *   CVE-2011-0411, on both sides): the octets dropped are returned so the owner can log them.
 *   IO_TLSREADY when the handshake finished; IO_ERROR if it failed. From then on every
 *   io_* call works on the decrypted stream. */
#ifndef TERN_IO_H
#define TERN_IO_H
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>

struct io;
struct tls_ctx;

enum io_evt {
	IO_CONNECTED = 1,   /* io_connect: the connection is up */
	IO_TLSREADY,        /* a TLS handshake finished */
	IO_DATAIN,          /* new input is buffered */
	IO_LOWAT,           /* all queued output was sent */
	IO_TIMEOUT,         /* no progress within the timeout */
	IO_DISCONNECTED,    /* the peer closed its side (EOF, or TLS close_notify) */
	IO_ERROR,           /* connect, read, write or TLS failure: io_error() says what */
};
typedef void (*io_cb)(struct io *io, int evt, void *arg);

/* An io on a connected socket (made non-blocking here). Reading is on. */
struct io *io_new(int fd, io_cb cb, void *arg);
/* A non-blocking connect to sa (from src if not NULL); IO_CONNECTED or IO_ERROR (or
 * IO_TIMEOUT) follows. NULL with errno set if the socket cannot even be made. */
struct io *io_connect(const struct sockaddr *sa, socklen_t salen, const struct sockaddr *src,
                      socklen_t srclen, io_cb cb, void *arg);
/* Close the socket and free everything (deferred if called inside a callback). */
void io_free(struct io *io);
int  io_fd(const struct io *io);
void io_set_cb(struct io *io, io_cb cb, void *arg);

/* inactivity timeout in milliseconds; < 0 none (the default). Setting a new value restarts
 * the clock; setting the same value again leaves it running. */
void io_set_timeout(struct io *io, long ms);
/* reading on (1) or paused (0); turning it on with input buffered gives an IO_DATAIN soon */
void io_set_read(struct io *io, int on);

/* buffered input */
const char *io_data(const struct io *io, size_t *len);
size_t io_datalen(const struct io *io);
void io_drop(struct io *io, size_t n);
/* The next complete line (through LF), or NULL. The line is returned NUL-terminated without
 * its LF and without one CR before it; *len is its length; it is consumed. The pointer is
 * valid until the next io_* call on this io. */
char *io_getline(struct io *io, size_t *len);

/* output */
void io_write(struct io *io, const void *p, size_t n);
void io_print(struct io *io, const char *s);
void io_printf(struct io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void io_vprintf(struct io *io, const char *fmt, va_list ap);
size_t io_queued(const struct io *io);
/* Send what can be sent now. 0, or -1 when the connection failed (IO_ERROR is not called
 * for it: the caller is told here). */
int io_flush(struct io *io);

/* TLS. Return the number of plaintext octets discarded (>= 0), or -1 if the handshake cannot
 * start (io_error() says why). servername: SNI and the name verified (RFC 6125) if any. */
long io_start_tls_server(struct io *io, struct tls_ctx *ctx);
long io_start_tls_client(struct io *io, struct tls_ctx *ctx, const char *servername);

struct io_tls_info {
	const char *version;     /* "TLSv1.3"; NULL when the session is not encrypted */
	const char *cipher;      /* "TLS_AES_256_GCM_SHA384" */
	int bits;                /* symmetric key bits */
	int peer_cert;           /* the peer showed a certificate */
	int verified;            /* its chain verified (and, on a client, the name matched) */
	const char *verify_error;/* why not, when peer_cert && !verified */
	char peer_cn[256];       /* subject CN of the peer certificate, or "" */
};
int io_tls(const struct io *io);         /* 1 when TLS is established */
void io_tls_info(const struct io *io, struct io_tls_info *out);

/* the last error, for logs: "connection refused", "tls: certificate verify failed", ... */
const char *io_error(const struct io *io);

/* for tests and metrics: memory held by an idle io, in octets */
size_t io_footprint(const struct io *io);
#endif
