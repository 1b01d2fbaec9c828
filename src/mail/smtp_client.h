/* smtp_client — the client side of SMTP as a pure protocol engine (MMDF's smtp channel,
 * qmail-remote): no sockets, no clock, no files. The caller feeds it the server's bytes and
 * the message text; it answers with the bytes to send and a result per recipient.
 * Owns: reply parsing (multi-line replies, enhanced status codes, bounded lines and replies),
 * EHLO keywords, the transaction state machine (greeting, EHLO/HELO, MAIL, RCPT, DATA,
 * the text, the dot, RSET, QUIT) with RFC 2920 pipelining, the mapping of replies to
 * per-recipient results, and the body transformation (CRLF, dot-stuffing, no NUL, no line
 * over 998 octets, final dot).
 * Trusts: nothing the server sends — every reply is checked and a malformed one is a
 * protocol error (every unfinished recipient: temporary failure).
 *
 * Result mapping (PROTOCOLS.md §5): greeting, EHLO/HELO, MAIL, DATA and the final dot:
 * 2xx go on, 4xx defer (D_TEMP) and 5xx fail (D_PERM) every recipient still open; 5xx to
 * EHLO falls back to HELO. RCPT: per recipient. 421 anywhere ends the session. With
 * PIPELINING, MAIL, every RCPT and DATA go in one write; without it one command a reply.
 * A recipient is "open" until it has its final result; only open recipients change.
 *
 * STARTTLS (RFC 3207) and AUTH (RFC 4954), set per connection before the greeting with
 * smtpc_set_tls()/smtpc_set_auth(): after EHLO, STARTTLS when offered (tls MAY) or required
 * (ENCRYPT, VERIFY: not offered or refused = D_TEMP 4.7.4, another server may do); on 220 the
 * engine wants the handshake (SMTPC_W_TLS), drops whatever the server sent after the 220
 * (the injection class of CVE-2011-0411) and, once the caller says smtpc_tls_done(), says EHLO
 * again. Then AUTH PLAIN (or LOGIN) with the credentials, only over TLS unless plaintext is
 * allowed; a refused AUTH, or credentials that would go in clear, are D_TEMP before MAIL (the
 * caller may try another server; Postfix's smtp_sasl_auth_soft_bounce). A server that offers
 * no AUTH gets the mail without it.
 *
 * LMTP (RFC 2033), set per connection before the greeting with smtpc_set_lmtp(): LHLO instead
 * of EHLO, and a refused LHLO ends the session (no HELO fallback). After the final dot the
 * server answers once for every recipient whose RCPT it accepted, in RCPT order; each reply
 * is that recipient's final result (2xx delivered, 4xx temporary, 5xx permanent) and its own
 * (smtpc_rcpt.own: a mailbox over quota is not the destination's trouble). A 421 or a lost
 * connection among those replies leaves the recipients still waiting temporary. 354 to DATA
 * with no accepted recipient is a protocol error (the number of replies would be unknown).
 * Everything else (pipelining as offered, RSET and reuse, QUIT) is SMTP's. */
#ifndef TERN_SMTP_CLIENT_H
#define TERN_SMTP_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

#define SMTPC_LINE_MAX  2048    /* one reply line, line end included */
#define SMTPC_REPLY_MAX 16384   /* one whole (multi-line) reply */
#define SMTPC_DIAG_MAX  1000    /* a diagnostic is cut to this many bytes */

/* ---- replies ------------------------------------------------------------------------ */

struct smtpc_reply {
	int code;                   /* 200..599 */
	char esc[16];               /* enhanced status code of the first line ("5.1.1") or "" */
	struct buf text;            /* each line's text (code, separator and a repeated esc
	                               removed), control bytes made '?', a '\n' after each */
	size_t nlines;
};

struct smtpc_rparse {           /* a reply being read */
	struct smtpc_reply r;
	char line[SMTPC_LINE_MAX];
	size_t len, total;
	int complete;               /* r holds a finished reply: start afresh next time */
	const char *err;            /* why the last feed failed */
};

void smtpc_rparse_init(struct smtpc_rparse *p);
void smtpc_rparse_free(struct smtpc_rparse *p);
/* Consume bytes up to the end of one complete reply. Returns 1 (a reply is in p->r; *used
 * bytes were consumed; call again with the rest), 0 (all n bytes consumed, need more), or
 * -1 (protocol error, p->err says why). Line ends: CRLF, or a bare LF (tolerated). */
int smtpc_rparse_feed(struct smtpc_rparse *p, const char *in, size_t n, size_t *used);
/* "smtp; 550 5.1.1 text of every line (in reply to RCPT TO command)" into out */
void smtpc_reply_diag(const struct smtpc_reply *r, const char *cmd, char *out, size_t outsz);

/* ---- EHLO keywords -------------------------------------------------------------------- */

struct smtpc_caps {
	unsigned esmtp:1, pipelining:1, eightbitmime:1, enhanced:1, starttls:1, size:1;
	unsigned auth:1, auth_plain:1, auth_login:1;    /* AUTH and two of its mechanisms */
	uint64_t sizemax;           /* SIZE n; 0 = no fixed limit */
};
/* the keywords of an EHLO reply (every line after the first) */
void smtpc_ehlo_parse(struct smtpc_caps *caps, const struct smtpc_reply *r);

/* ---- the message text ----------------------------------------------------------------- */

#define SMTPC_TEXT_LINE_MAX 998  /* octets of a text line on the wire, CRLF excluded */

struct smtpc_body {
	unsigned bol:1;             /* at the beginning of a line */
	unsigned cr:1;              /* the last byte was a CR (already sent as CRLF) */
	size_t col;                 /* octets of the current line on the wire */
	uint64_t in, out;           /* bytes consumed / produced */
	uint64_t nul, folds;        /* NULs dropped, long lines folded (for the log) */
};
void smtpc_body_init(struct smtpc_body *b);
/* Append the transformed text to out: CRLF, a bare CR and a bare LF all become CRLF; a line
 * starting with '.' gets another '.'. NUL octets are dropped (tern refuses them at every
 * intake; a NUL must never reach a receiver that strips it and then sees "\r\n.\r\n").
 * A line longer than SMTPC_TEXT_LINE_MAX octets on the wire (RFC 5321 4.5.3.1.6) is folded
 * by inserting CRLF SP (Postfix's smtp_line_length_limit rule: a header line stays one
 * folded header; nothing else is lost). Any split of the input gives the same output. */
void smtpc_body_feed(struct smtpc_body *b, const char *in, size_t n, struct buf *out);
/* Finish: a CRLF if the text did not end with a line end, then ".\r\n". */
void smtpc_body_end(struct smtpc_body *b, struct buf *out);

/* ---- transactions --------------------------------------------------------------------- */

enum { SMTPC_OPEN = 0, SMTPC_OK = 1, SMTPC_TEMP = 2, SMTPC_PERM = 3 };  /* = enum dstatus */

struct smtpc_rcpt {
	const char *addr;           /* the caller's; without <> */
	int status;                 /* SMTPC_OPEN until final */
	int accepted;               /* RCPT got 2xx; waiting for the dot's reply */
	char *diag;                 /* malloc'd final diagnostic (or NULL) */
	int own;                    /* the status is the server's answer about this recipient
	                               alone (its RCPT reply, other than 421; in LMTP also its
	                               reply after the dot): a temporary one is the recipient's
	                               trouble, not the destination's */
};

struct smtpc_txn {
	const char *sender;         /* "" for <> */
	uint64_t size;              /* for SIZE= and the server's SIZE limit */
	int eightbit;               /* the text has bytes >= 0x80: BODY=8BITMIME if offered */
	struct smtpc_rcpt *rcpt;
	size_t n;
	/* set by the engine */
	int done;                   /* every recipient has its final status */
	int retry;                  /* failed before MAIL was sent, temporarily: the caller
	                               may try another server (statuses are already TEMP) */
	size_t nok;                 /* recipients delivered */
};
void smtpc_txn_reset(struct smtpc_txn *t);  /* back to all open (free the diagnostics) */

enum smtpc_want {
	SMTPC_W_REPLY,              /* waiting for the server */
	SMTPC_W_BODY,               /* give the text: smtpc_body_* into smtpc_out(), then
	                               smtpc_text_done() */
	SMTPC_W_TXN,                /* idle: ready for smtpc_begin() or smtpc_quit() */
	SMTPC_W_CLOSE,              /* finished: flush smtpc_out() and close */
	SMTPC_W_TLS,                /* the server said 220 to STARTTLS: flush smtpc_out(), run
	                               the handshake, then smtpc_tls_done() (or smtpc_lost()) */
};

/* TLS policy of one connection (the smtptls key's words, in order) */
enum smtpc_tls { SMTPC_TLS_NONE = 0, SMTPC_TLS_MAY, SMTPC_TLS_ENCRYPT, SMTPC_TLS_VERIFY };

struct smtpc;
struct smtpc *smtpc_new(const char *helohost);
void smtpc_free(struct smtpc *c);
/* Start a transaction: at once if idle (after RSET if the connection was used), or after
 * the greeting and EHLO on a new connection. -1 if the engine cannot take one now. */
int smtpc_begin(struct smtpc *c, struct smtpc_txn *t);
/* Server bytes. Returns 0, or -1 once the session is over (want() is SMTPC_W_CLOSE). */
int smtpc_feed(struct smtpc *c, const char *in, size_t n);
enum smtpc_want smtpc_want(const struct smtpc *c);
struct buf *smtpc_out(struct smtpc *c);     /* bytes to send; the caller consumes them */
struct smtpc_body *smtpc_body(struct smtpc *c); /* the transformer state for this text */
void smtpc_text_done(struct smtpc *c);      /* the whole text was fed: send the dot */
/* The transaction that just finished (every recipient final), once; NULL if none. */
struct smtpc_txn *smtpc_finished(struct smtpc *c);
void smtpc_quit(struct smtpc *c);           /* QUIT if idle; else close at once */
/* The connection is gone (EOF, error, timeout, local read error): every open recipient
 * gets D_TEMP with `why`; the session is over. */
void smtpc_lost(struct smtpc *c, const char *why);
const struct smtpc_caps *smtpc_caps(const struct smtpc *c);
int smtpc_usable(const struct smtpc *c);    /* 1 if another transaction may follow */
/* Before the greeting: the TLS policy (default SMTPC_TLS_NONE: STARTTLS never sent) and the
 * AUTH credentials (copied; the password is wiped when the engine is freed). */
void smtpc_set_tls(struct smtpc *c, enum smtpc_tls mode);
/* Before the greeting: speak LMTP (RFC 2033) instead of SMTP (see above) */
void smtpc_set_lmtp(struct smtpc *c, int on);
int smtpc_lmtp(const struct smtpc *c);
void smtpc_set_auth(struct smtpc *c, const char *user, const char *pass, int plaintext_ok);
/* Before the greeting: the caller's verdict on a 2xx greeting (the cluster cookie,
 * doc/CLUSTER.md). fn returns SMTPC_OPEN to go on, or SMTPC_TEMP / SMTPC_PERM with a
 * diagnostic in diag: every open recipient gets that result, and QUIT instead of EHLO. */
typedef int (*smtpc_greet_fn)(void *arg, const struct smtpc_reply *r, char *diag, size_t dsz);
void smtpc_set_greet_check(struct smtpc *c, smtpc_greet_fn fn, void *arg);
/* The handshake that SMTPC_W_TLS asked for succeeded: EHLO again, on the encrypted stream. */
void smtpc_tls_done(struct smtpc *c);
int smtpc_tls_active(const struct smtpc *c);   /* 1 once smtpc_tls_done() was called */
/* octets smtpc_feed threw away because they followed the 220 to STARTTLS in plaintext
 * (response injection, the client side of CVE-2011-0411): for the caller's log */
size_t smtpc_tls_dropped(const struct smtpc *c);
int smtpc_authed(const struct smtpc *c);       /* 1 once the server accepted AUTH */
const char *smtpc_state_name(const struct smtpc *c);
#endif
