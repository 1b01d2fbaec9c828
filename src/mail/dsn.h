/* dsn — builds RFC 3464 delivery status notifications (bounces and delay warnings).
 * Owns: the text and MIME structure of every report tern sends. Pure: no clock, no
 * randomness, no files of its own — the caller passes the time and random bits (the fd
 * variant only reads the fd it is given). Trusts: nothing in the diagnostics, addresses or
 * original message (remote servers and senders choose them): control characters are
 * replaced, long fields folded, the MIME boundary is checked against every part.
 *
 * Output (LF line endings):
 *   From: <bouncefrom>@<bouncehost>, To: <sender>, Subject, Date, Message-ID,
 *   Auto-Submitted: auto-replied, MIME-Version: 1.0,
 *   Content-Type: multipart/report; report-type=delivery-status; boundary="..."
 *   1. text/plain — the human explanation, qmail's voice
 *   2. message/delivery-status — Reporting-MTA, X-Tern-Queue-ID, X-Tern-Sender, Arrival-Date,
 *      then per recipient: Final-Recipient, Original-Recipient, Action, Status, Remote-MTA,
 *      Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until
 *   3. message/rfc822 — the original message; or text/rfc822-headers — only its header,
 *      when bouncemaxbytes is non-zero and the message is larger
 * 8-bit parts carry Content-Transfer-Encoding: 8bit (binary if NULs or lines > 998 bytes). */
#ifndef TERN_DSN_H
#define TERN_DSN_H
#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

enum dsn_action { DSN_FAILED = 0, DSN_DELAYED = 1 };

struct dsn_rcpt {
	const char *addr;          /* final recipient */
	const char *orig;          /* original recipient; NULL or "" = absent */
	const char *status;        /* "5.1.1"; invalid -> 5.0.0 / 4.0.0 */
	int action;                /* enum dsn_action */
	const char *remote_mta;    /* NULL or "" = none */
	const char *diag;          /* "smtp; 550 5.1.1 no such user", "x-tern; ..." or plain
	                              text (then "x-tern; " is put in front) */
	int64_t last_attempt;      /* unix time; 0 = absent */
	int64_t will_retry_until;  /* delay notices; 0 = absent */
};

struct dsn_report {
	const char *sender;        /* original envelope sender = the report's recipient */
	const char *queue_id;
	int64_t arrival;           /* when the original was queued */
	const struct dsn_rcpt *rcpt;
	size_t nrcpt;
	const char *me;
	const char *bouncefrom;    /* NULL/"" -> MAILER-DAEMON */
	const char *bouncehost;    /* NULL/"" -> me */
	uint64_t bouncemaxbytes;   /* 0 = always return the whole message */
	int64_t now;               /* the report's Date: */
	uint64_t nonce;            /* random bits: boundary and Message-ID */
};

#define DSN_MAXDIAG 4096       /* diagnostics are cut to this many bytes */
#define DSN_MINHDR 16384       /* a returned header is cut at max(bouncemaxbytes, this) */

/* Append the complete report to out. msg/msglen = the original (LF endings). Returns 0, or
 * -1 with *why (no recipients; the sender is <> — never bounce to <>). */
int dsn_build(const struct dsn_report *r, const char *msg, size_t msglen, struct buf *out,
              const char **why);
/* The same, reading the original from fd's current offset to EOF (only as much as needed is
 * kept in memory when bouncemaxbytes applies). -1 also on a read error. */
int dsn_build_fd(const struct dsn_report *r, int fd, struct buf *out, const char **why);
/* RFC 5322 date of t in UTC, "Sat, 22 Nov 2025 10:00:00 +0000" (locale independent). */
void dsn_date(char *out, size_t outsz, int64_t t);
#endif
