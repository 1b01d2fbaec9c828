/* msg — the one IPC codec between tern's roles: typed, framed messages over a stream
 * socketpair, each optionally carrying one file descriptor (SCM_RIGHTS).
 * Owns: framing, field encoding, per-channel buffers, and the gate every received frame
 * passes before its callback (chan_set_filter: the caller says who may send what; this
 * module knows no message type). Trusts: nothing it reads — every frame and field is
 * bounds- and type-checked; a malformed frame closes the channel (the stream cannot be
 * resynchronised); a frame the filter refuses is logged and dropped, its descriptor closed;
 * a payload its receiver found malformed (msg_done() failed) is logged after the callback.
 *
 * Frame: u32 payload length, u32 type (bit 31 = an fd rides with this frame), u32 id,
 * then the payload: fields, each a tag byte then data:
 *   'Q' u64 (8 bytes little endian) | 'S' u32 len, bytes, NUL | 'B' u32 len, bytes
 * See doc/IPC.md. */
#ifndef TERN_MSG_H
#define TERN_MSG_H
#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

#define MSG_MAXPAYLOAD (16u * 1024 * 1024)
#define MSG_HDRLEN 12
#define MSG_FDFLAG 0x80000000u

struct msg {               /* a message being built */
	uint32_t type, id;
	int fd;                /* -1: none; ownership passes to chan_send */
	int wipe;              /* msg_wipe: the bytes are zeroed when the buffer goes */
	struct buf b;          /* header + payload */
};

void msg_init(struct msg *m, uint32_t type, uint32_t id);
void msg_u64(struct msg *m, uint64_t v);
void msg_str(struct msg *m, const char *s);          /* NULL is sent as "" */
void msg_bytes(struct msg *m, const void *p, size_t n);
void msg_fd(struct msg *m, int fd);
void msg_discard(struct msg *m);
/* m holds a secret (a password): its buffer is zeroed (explicit_bzero) when it is freed —
 * after chan_send has written it, or by msg_discard. Add the secret as the last field: a
 * buffer that grows leaves a copy of what it held before behind. */
void msg_wipe(struct msg *m);

struct msg_reader {        /* reading one received payload */
	const unsigned char *p;
	size_t len, off;
	int err;               /* sticky: set by any failed get */
};
void msg_reader_init(struct msg_reader *r, const void *p, size_t len);
uint64_t msg_get_u64(struct msg_reader *r);
const char *msg_get_str(struct msg_reader *r);       /* "" on error (check r->err) */
const void *msg_get_bytes(struct msg_reader *r, size_t *n);
/* 0 if all read without error, else -1 — and the error sticks: the channel that delivered
 * the payload then logs it as malformed (event=ipc_malformed) after the callback returns */
int msg_done(struct msg_reader *r);

/* Split a byte stream into frames: returns the frame length (header+payload) if buf holds a
 * complete frame, 0 if more bytes are needed, -1 if the header is invalid. */
long msg_frame(const void *buf, size_t len, uint32_t *type, uint32_t *id, int *hasfd);

/* Write m as one frame on a blocking socket outside any channel (tests' and the test build's
 * raw senders); consumes m (and its fd). 0 ok, -1 short or failed write. */
int msg_write_blocking(int fd, struct msg *m);

/* A channel: one end of a socketpair inside the event loop. */
struct chan;
typedef void (*chan_recv_cb)(struct chan *c, uint32_t type, uint32_t id,
                             struct msg_reader *r, int fd, void *arg);
typedef void (*chan_close_cb)(struct chan *c, void *arg);
struct chan *chan_new(int fd, const char *peer, chan_recv_cb cb, chan_close_cb ccb, void *arg);
/* The process-wide gate of every channel: asked about each complete frame before its
 * callback (peer = the chan_new() name, hasfd = a descriptor rides with it); -1 refuses it:
 * the frame is logged (event=ipc_refused peer= type=), its descriptor closed, and dropped.
 * None installed: every frame is delivered. */
typedef int (*chan_filter_fn)(const char *peer, uint32_t type, int hasfd);
void chan_set_filter(chan_filter_fn fn);
void chan_send(struct chan *c, struct msg *m);        /* consumes m */
int  chan_flush_blocking(struct chan *c);            /* write everything now (shutdown) */
void chan_free(struct chan *c);
const char *chan_peer(struct chan *c);
size_t chan_pending(struct chan *c);                 /* bytes waiting to be written */
/* after the close callback: 1 if the peer closed its end, 0 if this side closed the channel
 * (a malformed frame) and the peer still holds its end */
int  chan_peer_closed(struct chan *c);
/* a dead peer: read and dispatch the rest of what it wrote now, then close (the close
 * callback runs); 0 if the channel is closed after it, -1 if the peer's end is still open */
int  chan_read_to_eof(struct chan *c);
#endif
