/* pop3_maildir — a Maildir as a POP3 maildrop, with qmail-pop3d's semantics: the scan moves
 * new/ messages into cur/ (adding the ":2," info), lists cur/ oldest first, the unique id of
 * a message (UIDL) is its maildir unique name (the base name without ":2,…", stable across
 * the move and across sessions), deletions are only marks until the UPDATE state (QUIT)
 * unlinks them, so a dropped connection loses nothing. Sizes are counted as the client
 * receives the message (LF sent as CRLF, before dot-stuffing). And the encoder that sends a
 * message or its TOP lines: CRLF line ends, dot-stuffing, the final ".".
 * Owns: the listing of one session. Trusts: the directory to be the user's (the worker runs
 * with the user's uid); nothing in the file names or contents. */
#ifndef TERN_POP3_MAILDIR_H
#define TERN_POP3_MAILDIR_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "lib/buf.h"

#define POP3_UIDLMAX 70          /* RFC 1939: at most 70 characters 0x21-0x7E */

struct pop3_msg {
	char *name;                  /* file name in cur/ */
	char uidl[POP3_UIDLMAX + 1];
	uint64_t size;               /* octets as sent (CRLF line ends, no dot-stuffing) */
	time_t mtime;
	int deleted;
};

struct pop3_box {
	int dfd;                     /* the Maildir directory */
	struct pop3_msg *m;
	size_t n;
};

/* Scan the Maildir open as dfd (taken over; closed by pop3_maildir_free): new/ into cur/, then
 * the listing of cur/, sorted by mtime then name. Files that vanish meanwhile are skipped.
 * 0, or -1 with errno (new/ or cur/ cannot be read). */
int pop3_maildir_open(struct pop3_box *b, int dfd);
void pop3_maildir_free(struct pop3_box *b);
/* totals over the messages not marked deleted */
void pop3_maildir_stat(const struct pop3_box *b, size_t *count, uint64_t *octets);
/* open message i (0-based) read-only; -1 with errno */
int pop3_maildir_openmsg(const struct pop3_box *b, size_t i);
/* UPDATE: unlink every marked message; the number removed (failures are skipped and
 * counted in *failed). */
size_t pop3_maildir_commit(struct pop3_box *b, size_t *failed);

/* The UIDL of a maildir file name: the part before ':' if it is 1..70 printable non-blank
 * ASCII characters, else "x" and a hash of the whole name in hex. */
void pop3_maildir_uidl(const char *name, char out[POP3_UIDLMAX + 1]);

/* The encoder: feed the file's octets in pieces, get what goes on the wire. toplines < 0:
 * the whole message (RETR); else the header, the blank line and that many body lines (TOP).
 * count_only: count the octets (no dot-stuffing) instead of appending them. */
struct pop3_enc {
	long toplines;
	int bol;                     /* 1: at a line start; 2: only a CR on the line yet; 0 */
	int cr;                      /* the previous octet was a CR */
	int inbody;
	int done;                    /* TOP: enough lines sent; the rest is ignored */
	int stuff;                   /* dot-stuffing on */
	uint64_t octets;             /* octets produced (counting mode: the size) */
};
void pop3_maildir_enc_init(struct pop3_enc *e, long toplines, int stuff);
/* append the encoding of in[0..n) to out (NULL: count only) */
void pop3_maildir_enc_feed(struct pop3_enc *e, const char *in, size_t n, struct buf *out);
/* finish: the last line's CRLF if the data did not end with one, then (stuff) ".\r\n" */
void pop3_maildir_enc_end(struct pop3_enc *e, struct buf *out);
/* the size as sent of a whole message from its octets */
uint64_t pop3_maildir_wire_size(const char *p, size_t n);
#endif
