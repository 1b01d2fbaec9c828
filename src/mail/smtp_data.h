/* smtp_data — the SMTP DATA stream: a decoder that finds the end of data (CRLF.CRLF and
 * nothing else), removes dot-stuffing, stores lines with LF ends, and accounts line lengths
 * and size; plus the Received: line the server prepends. Pure: no I/O, no allocation.
 * Owns: the DATA wire rules. Trusts: nothing — every byte is client input.
 *
 * Smuggling rules: a bare LF or bare CR never ends a line for dot detection or the data;
 * a bare LF is stored as a line break (a '.' after it is kept), a bare CR is stored as is.
 * NUL octets are counted (d->nul): the caller refuses such a message (554 5.6.0), since
 * receivers that strip NULs would find an end of data in "\r\n\0.\r\n". */
#ifndef TERN_SMTP_DATA_H
#define TERN_SMTP_DATA_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "lib/buf.h"

#define SMTP_DATA_LINE_MAX 1000     /* octets in a line, CRLF included (RFC 5321 4.5.3.1.6) */

struct smtp_data {
	int state;
	size_t linelen;      /* octets of the current line so far, terminator excluded */
	uint64_t bytes;      /* octets produced so far */
	uint64_t max;        /* limit on bytes produced, 0 = none */
	unsigned toolong:1;  /* some line was longer than SMTP_DATA_LINE_MAX */
	unsigned toobig:1;   /* bytes > max */
	unsigned done:1;     /* CRLF.CRLF seen; nothing more is consumed */
	uint32_t bare_lf, bare_cr;   /* how many of each were seen (for the log) */
	uint32_t nul;        /* NUL octets seen: the message must be refused (stored as given) */
};

/* Start decoding just after the 354 reply (the first line is at a line start). */
void smtp_data_init(struct smtp_data *d, uint64_t max);
/* Decode in[0..n). Writes decoded octets to out, which must have room for n + 1 octets, and
 * their number to *outn. Returns how many input octets were consumed: all n, or fewer when
 * the end of data was reached (d->done; the rest belongs to the next command). */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t n, char *out, size_t *outn);

struct smtp_received {
	const char *helo;    /* as the client said (sanitised here), "" if none */
	const char *rdns;    /* reverse name, or NULL: "[ip]" is written */
	const char *ip;      /* numeric client address */
	const char *me;
	int esmtp;           /* "with ESMTP" after EHLO, else "with SMTP" */
	uint64_t msgid;      /* written as the queue id, %016llx */
	const char *rcpt;    /* the one recipient, or NULL when there are several */
	time_t when;
	/* RFC 3848: "ESMTPS" with TLS, "ESMTPA" after AUTH, "ESMTPSA" both */
	const char *tls_version;  /* "TLSv1.3", or NULL without TLS */
	const char *tls_cipher;   /* written in a comment with the version */
	int tls_bits;
	int auth;                 /* the client authenticated */
	const char *authlogin;    /* written in a comment (authprepend), or NULL: never */
};
/* Append the Received: header (LF line ends, folded with a tab) to b. */
void smtp_data_received(struct buf *b, const struct smtp_received *r);
/* RFC 5322 date-time of t in local time: "Tue, 21 Nov 2023 22:45:00 +0100" */
void smtp_data_date(char *out, size_t sz, time_t t);
#endif
