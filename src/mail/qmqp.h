/* qmqp — qmail's Quick Mail Queueing Protocol (D. J. Bernstein, cr.yp.to/proto/qmqp.html):
 * the request (one netstring holding netstring(message) netstring(sender) and one
 * netstring per recipient), read incrementally as octets arrive; the one-netstring reply
 * (K accepted, Z temporary failure, D permanent failure, then text), written and read; the
 * framing a client writes; the Received: line of the server; the qmqpservers list.
 * Pure: no I/O, no allocation. Owns: the QMQP wire rules and their limits. Trusts: nothing —
 * every octet is peer input; every length is checked before it is believed. */
#ifndef TERN_QMQP_H
#define TERN_QMQP_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "lib/buf.h"
#include "mail/addr.h"

#define QMQP_PORT       628
#define QMQP_ADDR_MAX   1000    /* octets of one envelope address in a request */
#define QMQP_TEXT_MAX   4294967295ull  /* message octets when databytes is 0 (unlimited) */
#define QMQP_REPLY_MAX  1000    /* octets of a reply's text */
#define QMQP_LEN_DIGITS 20      /* digits of a netstring length (no leading zeros) */

/* what qmqp_req_feed() found */
enum qmqp_evt {
	QMQP_MORE = 0,   /* everything given was consumed: feed more */
	QMQP_TEXT,       /* a piece of the message: *piece, *plen (inside the input) */
	QMQP_SENDER,     /* the sender is complete and valid: q->mailbox ("" for <>) */
	QMQP_RCPT,       /* a recipient is complete and valid: q->mailbox */
	QMQP_END,        /* the request is complete (at least one recipient): reply now */
	QMQP_ERR,        /* refused: q->code, q->why (for the D reply); nothing more is read */
};

struct qmqp_req {
	uint64_t maxtext;          /* message octets allowed (databytes) */
	uint32_t maxrcpt;          /* recipients allowed */
	int state;
	uint64_t olen, oleft;      /* the outer netstring's length, and octets of it still due */
	uint64_t ilen, ileft;      /* the current inner netstring's */
	int digits;                /* digits read of the length being read */
	uint32_t field;            /* inner netstrings finished: 0 = text, 1 = sender, 2.. rcpt */
	uint32_t nrcpt;
	uint64_t textbytes;
	uint32_t nul;              /* NUL octets in the message (refused at the end) */
	size_t alen;
	char abuf[QMQP_ADDR_MAX + 1];
	char mailbox[ADDR_PATH_MAX];
	const char *code;          /* after QMQP_ERR: the enhanced status code ("5.3.4") */
	const char *why;           /* and the text */
};

/* maxtext: databytes (0 = QMQP_TEXT_MAX); maxrcpt: maxrcptcount (0 = 1000000) */
void qmqp_req_init(struct qmqp_req *q, uint64_t maxtext, uint32_t maxrcpt);
/* The outer length a request may declare: maxtext plus an envelope bound. */
uint64_t qmqp_req_max(const struct qmqp_req *q);
/* Read in[0..n): returns an event and sets *used to the octets consumed (call again with the
 * rest). After QMQP_END or QMQP_ERR every further call returns the same with *used = 0. */
int qmqp_req_feed(struct qmqp_req *q, const char *in, size_t n, size_t *used,
                  const char **piece, size_t *plen);

/* The reply netstring "LEN:Ctext," (code 'K', 'Z' or 'D'; text cleaned of control octets and
 * cut at QMQP_REPLY_MAX octets) appended to b. */
void qmqp_reply(struct buf *b, char code, const char *text);
/* Read a reply from in[0..n): 1 complete (*code, text NUL-terminated, *used = its length),
 * 0 incomplete, -1 malformed (too long, bad length, code not K/Z/D, missing comma). */
int qmqp_reply_parse(const char *in, size_t n, char *code, char *text, size_t tsz, size_t *used);

/* octets of the netstring of n octets: digits + ':' + n + ',' */
uint64_t qmqp_ns_len(uint64_t n);
/* "N:" appended to b */
void qmqp_ns_head(struct buf *b, uint64_t n);
/* The whole netstring of s appended to b. */
void qmqp_ns_str(struct buf *b, const char *s);

/* The server's Received: line (LF ends) for a message from ip, queue id msgid. */
void qmqp_received(struct buf *b, const char *ip, const char *me, uint64_t msgid, time_t when);

/* qmqpservers: numeric IPv4[:port] or [IPv6][:port] items separated by blanks or commas. */
#define QMQP_MAXSERVERS 16
struct qmqp_server { char addr[64]; int port; };
/* Parse s into out[0..max): the number of servers (>= 0), or -1 (a bad item, or too many). */
int qmqp_servers_parse(const char *s, struct qmqp_server *out, size_t max);
#endif
