/* sendmail_bs — the SMTP dialogue of `sendmail -bs` (local submission over stdin/stdout),
 * as a pure state machine: command line in, reply text (CRLF lines) out, plus what the
 * caller must do next (nothing, receive DATA, quit). Also the DATA line rule (end at a line
 * ".", dot-unstuffing), the header scan that says which of From:/Date:/Message-ID: are
 * missing, and the reply to a failed maildrop write.
 * Owns: that dialogue (RFC 5321 subset). Trusts: nothing in the lines — they come from any
 * local user; command lines go through smtp_cmd_parse, addresses through addr_parse and
 * maildrop_addr_ok. Every recipient with a valid syntax is accepted: local submission is
 * trusted to relay, like Postfix's sendmail -bs; routing decides later.
 * No I/O; allocation only through xmalloc (the envelope). src/ternctl/sendmail.c does the
 * reading, writing and the maildrop commit. */
#ifndef TERN_SENDMAIL_BS_H
#define TERN_SENDMAIL_BS_H
#include <stddef.h>
#include "lib/buf.h"
#include "mail/maildrop.h"

enum sendmail_bs_action {
	SENDMAIL_BS_REPLY = 0,   /* the reply is in out; read the next command */
	SENDMAIL_BS_DATA,        /* DATA accepted so far: open the maildrop file, then call
	                            sendmail_bs_data_start (nothing was written to out) */
	SENDMAIL_BS_QUIT         /* the reply (221) is in out; exit after writing it */
};

struct sendmail_bs {
	const char *me;          /* host name for the greeting and EHLO/HELO replies */
	struct maildrop_env env; /* the transaction: sender (NULL = no MAIL yet) and recipients */
	int greeted;             /* EHLO/HELO seen (informational: MAIL does not require it) */
};

/* s->me must outlive s. */
void sendmail_bs_init(struct sendmail_bs *s, const char *me);
void sendmail_bs_free(struct sendmail_bs *s);
/* "220 <me> ESMTP tern (sendmail -bs)\r\n" */
void sendmail_bs_greeting(const struct sendmail_bs *s, struct buf *out);
/* One command line of len octets without its line end; line[len] must be writable. A line
 * longer than SMTP_CMD_LINE_MAX - 2 gets 500 5.5.2 (the caller may pass a truncated line
 * with len == SMTP_CMD_LINE_MAX to say "too long"). Appends the reply to out. */
enum sendmail_bs_action sendmail_bs_command(struct sendmail_bs *s, char *line, size_t len,
                                            struct buf *out);
/* After SENDMAIL_BS_DATA: the maildrop file is open (ok = 1): 354; or it could not be opened
 * (ok = 0): the failure reply for kind/sys_errno (see sendmail_bs_failed) and the
 * transaction is reset. */
void sendmail_bs_data_start(struct sendmail_bs *s, int ok, int kind, int sys_errno,
                            struct buf *out);
/* The message was committed as id: 250 2.0.0 Ok: queued as <id>; the transaction is reset. */
void sendmail_bs_committed(struct sendmail_bs *s, const char *id, struct buf *out);
/* The message could not be written (enum maildrop_errkind kind, errno): 452 4.3.1 when the
 * disk or quota is full, else 451 4.3.0; the transaction is reset. */
void sendmail_bs_failed(struct sendmail_bs *s, int kind, int sys_errno, struct buf *out);

/* A DATA line: p/n is a piece of input starting a line (bol = 1) or continuing one (bol = 0),
 * with its LF or CRLF if it has one. Returns 1 if it is the end-of-data line ("." then LF or
 * CRLF, at a line start), else 0 with *skip = number of leading octets to drop (1 for a
 * stuffed dot, else 0). */
int sendmail_bs_data_line(const char *p, size_t n, int bol, size_t *skip);

/* The header scan of a message being received, line by line, to learn which fields to add. */
struct sendmail_bs_hdr {
	int state;               /* 0 header section (nothing yet), 1 in it, 2 ended */
	int has_from, has_date, has_msgid;
};
enum sendmail_bs_hdr_class {
	SENDMAIL_BS_H_FIELD = 0, /* a header field (or a continuation of one): keep going */
	SENDMAIL_BS_H_BLANK,     /* the empty line ending the header: add fields before it */
	SENDMAIL_BS_H_BODY,      /* a line that is no header field: add fields and an empty
	                            line before it */
	SENDMAIL_BS_H_PAST       /* the header section had already ended */
};
void sendmail_bs_hdr_init(struct sendmail_bs_hdr *h);
/* Classify a whole line p/n (without its line end; a piece of a longer line counts as the
 * line). Updates h. */
enum sendmail_bs_hdr_class sendmail_bs_hdr_line(struct sendmail_bs_hdr *h, const char *p,
                                                size_t n);
#endif
