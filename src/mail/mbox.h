/* mbox — appending one message to an mbox (mboxrd) mailbox: the "From " separator line, the
 * streaming ">From " quoting of every line matching ^>*From (pure, unit-tested), and
 * mbox_append, which locks (fcntl + flock under an alarm), writes, fsyncs, and on any error
 * truncates the file back to its old size. Owns: the mbox file while it holds the lock.
 * Trusts nothing in the message: any byte sequence, cut into chunks anywhere, is quoted. */
#ifndef TERN_MBOX_H
#define TERN_MBOX_H
#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include "lib/buf.h"

struct mbox_quote {
	int bol;        /* at the beginning of a line (or inside its ">*From" prefix) */
	size_t gts;     /* '>' seen at the start of the current line, not yet written */
	size_t from;    /* bytes of "From " matched after them, not yet written */
	char last;      /* last byte written to out ('\n' before any input) */
};

void mbox_quote_init(struct mbox_quote *q);
/* Quote n bytes of message into out (appended). */
void mbox_quote_feed(struct mbox_quote *q, const char *p, size_t n, struct buf *out);
/* Flush a pending partial prefix. Returns 1 if the output so far ends with '\n'
 * (or is empty), 0 otherwise. */
int mbox_quote_finish(struct mbox_quote *q, struct buf *out);

/* Append "From <sender or MAILER-DAEMON> <Www Mmm dd hh:mm:ss yyyy>\n" (UTC) to out.
 * Blanks and control bytes in sender become '-'. */
void mbox_from_line(struct buf *out, const char *sender, time_t when);
/* Where mbox_append failed (errno tells why; MBOX_LOCK with EINTR = timeout). */
enum mbox_err { MBOX_OK, MBOX_OPEN, MBOX_NOTREG, MBOX_LOCK, MBOX_WRITE };

/* Append to path (created 0600): from_line, head (e.g. Return-Path + Delivered-To), the
 * msglen bytes of msgfd from offset 0 >From-quoted, a final newline if missing, and a blank
 * line; then fsync. Waits lock_secs at most for the locks (uses SIGALRM meanwhile). On a
 * write error the file is truncated back to its old length. */
enum mbox_err mbox_append(const char *path, const char *from_line, const char *head,
			  size_t headlen, int msgfd, off_t msglen, unsigned lock_secs);
#endif
