/* qmqp — the QMQP wire rules (see qmqp.h). Pure: no I/O, no allocation.
 * Owns: netstring framing and the request/reply grammar. Trusts: nothing it is fed. */
#include "mail/qmqp.h"
#include "mail/smtp_data.h"
#include "lib/netaddr.h"
#include <stdio.h>
#include <string.h>

enum { S_OLEN, S_ILEN, S_IDATA, S_ICOMMA, S_OCOMMA, S_END, S_ERR };

#define QMQP_ENV_SLACK 64      /* per envelope netstring: its length digits, ':' and ',' */

void qmqp_req_init(struct qmqp_req *q, uint64_t maxtext, uint32_t maxrcpt)
{
	memset(q, 0, sizeof *q);
	q->maxtext = maxtext ? maxtext : QMQP_TEXT_MAX;
	q->maxrcpt = maxrcpt ? maxrcpt : 1000000;
	q->state = S_OLEN;
}

uint64_t qmqp_req_max(const struct qmqp_req *q)
{
	return q->maxtext + QMQP_ENV_SLACK +
	       ((uint64_t)q->maxrcpt + 1) * (QMQP_ADDR_MAX + QMQP_ENV_SLACK);
}

/* the request is refused: code is its enhanced status code (RFC 3463), why the text */
static int qmqp_fail(struct qmqp_req *q, const char *code, const char *why)
{
	q->state = S_ERR;
	q->code = code;
	q->why = why;
	return QMQP_ERR;
}

/* one octet of a netstring length into *v; 0 = go on, 1 = the ':' ended it, -1 = syntax */
static int qmqp_digit(struct qmqp_req *q, char c, uint64_t *v)
{
	if (c == ':')
		return q->digits ? 1 : -1;
	if (c < '0' || c > '9' || (q->digits == 1 && *v == 0) || q->digits >= QMQP_LEN_DIGITS ||
	    *v > (UINT64_MAX - 9) / 10)
		return -1;
	*v = *v * 10 + (uint64_t)(c - '0');
	q->digits++;
	return 0;
}

/* the address in abuf: printable, no blanks or angle brackets, addr_parse's syntax */
static int qmqp_addr(struct qmqp_req *q, int rcpt)
{
	struct addr a;
	q->abuf[q->alen] = '\0';
	for (size_t i = 0; i < q->alen; i++) {
		unsigned char c = (unsigned char)q->abuf[i];
		if (c <= 32 || c >= 127 || c == '<' || c == '>')
			return -1;
	}
	if (q->alen == 0) {
		q->mailbox[0] = '\0';
		return rcpt ? -1 : 0;
	}
	if (addr_parse(q->abuf, rcpt ? ADDR_RCPT : ADDR_SENDER, &a) < 0 || *a.params || a.null)
		return -1;
	memcpy(q->mailbox, a.mailbox, sizeof q->mailbox);
	return 0;
}

/* the ',' after an inner netstring: the field is complete */
static int qmqp_field_end(struct qmqp_req *q)
{
	uint32_t f = q->field++;
	q->state = q->oleft ? S_ILEN : S_OCOMMA;
	q->digits = 0;
	q->ilen = 0;
	if (f == 0)
		return QMQP_MORE;
	if (qmqp_addr(q, f >= 2) < 0)
		return qmqp_fail(q, f >= 2 ? "5.1.3" : "5.1.7",
		                 f >= 2 ? "bad recipient address" : "bad sender address");
	if (f >= 2)
		q->nrcpt++;
	return f >= 2 ? QMQP_RCPT : QMQP_SENDER;
}

/* the ':' after an inner length: check it against what is left and the limits */
static int qmqp_inner_start(struct qmqp_req *q)
{
	if (q->ilen >= q->oleft)                 /* its ',' must fit too */
		return qmqp_fail(q, "5.6.0", "malformed request");
	if (q->field == 0 && q->ilen > q->maxtext)
		return qmqp_fail(q, "5.3.4", "message too big");
	if (q->field >= 1 && q->ilen > QMQP_ADDR_MAX)
		return qmqp_fail(q, "5.1.3", "address too long");
	if (q->field >= 2 && q->nrcpt >= q->maxrcpt)
		return qmqp_fail(q, "5.5.3", "too many recipients");
	q->ileft = q->ilen;
	q->alen = 0;
	q->state = q->ilen ? S_IDATA : S_ICOMMA;
	return QMQP_MORE;
}

static int qmqp_outer_end(struct qmqp_req *q)
{
	if (q->field < 2)
		return qmqp_fail(q, "5.6.0", "malformed request");
	if (q->nrcpt == 0)
		return qmqp_fail(q, "5.5.1", "no recipients");
	if (q->nul)
		return qmqp_fail(q, "5.6.0", "message contains NUL characters");
	q->state = S_END;
	return QMQP_END;
}

/* inner content: a piece of the message is handed out, an address is collected */
static int qmqp_data(struct qmqp_req *q, const char *in, size_t n, size_t *i,
                     const char **piece, size_t *plen)
{
	size_t k = n - *i < q->ileft ? n - *i : (size_t)q->ileft;
	const char *p = in + *i;
	*i += k;
	q->ileft -= k;
	q->oleft -= k;
	if (q->ileft == 0)
		q->state = S_ICOMMA;
	if (q->field > 0) {
		memcpy(q->abuf + q->alen, p, k);
		q->alen += k;
		return QMQP_MORE;
	}
	q->nul += memchr(p, '\0', k) != NULL;
	q->textbytes += k;
	*piece = p;
	*plen = k;
	return QMQP_TEXT;
}

/* one octet of framing (lengths and commas) */
static int qmqp_frame(struct qmqp_req *q, char c)
{
	int rc;
	switch (q->state) {
	case S_OLEN:
		if ((rc = qmqp_digit(q, c, &q->olen)) < 0)
			return qmqp_fail(q, "5.6.0", "malformed request");
		if (q->olen > qmqp_req_max(q))
			return qmqp_fail(q, "5.3.4", "message too big");
		if (rc == 1) {
			q->oleft = q->olen;
			q->digits = 0;
			q->state = q->oleft ? S_ILEN : S_OCOMMA;
		}
		return QMQP_MORE;
	case S_ILEN:
		if (q->oleft == 0)                   /* past the outer netstring's length */
			return qmqp_fail(q, "5.6.0", "malformed request");
		q->oleft--;
		if ((rc = qmqp_digit(q, c, &q->ilen)) < 0 || q->ilen > q->oleft)
			return qmqp_fail(q, "5.6.0", "malformed request");
		return rc == 1 ? qmqp_inner_start(q) : QMQP_MORE;
	case S_ICOMMA:
		if (q->oleft == 0)
			return qmqp_fail(q, "5.6.0", "malformed request");
		q->oleft--;
		if (c != ',')
			return qmqp_fail(q, "5.6.0", "malformed request");
		return qmqp_field_end(q);
	default:                                 /* S_OCOMMA */
		if (c != ',')
			return qmqp_fail(q, "5.6.0", "malformed request");
		return qmqp_outer_end(q);
	}
}

int qmqp_req_feed(struct qmqp_req *q, const char *in, size_t n, size_t *used,
                  const char **piece, size_t *plen)
{
	size_t i = 0;
	int ev = QMQP_MORE;
	*piece = NULL;
	*plen = 0;
	if (q->state == S_END || q->state == S_ERR) {
		*used = 0;
		return q->state == S_END ? QMQP_END : QMQP_ERR;
	}
	while (i < n && ev == QMQP_MORE) {
		if (q->state == S_IDATA)
			ev = qmqp_data(q, in, n, &i, piece, plen);
		else
			ev = qmqp_frame(q, in[i++]);
	}
	*used = i;
	return ev;
}

/* ---- replies ------------------------------------------------------------------------------ */

void qmqp_reply(struct buf *b, char code, const char *text)
{
	char t[QMQP_REPLY_MAX + 1];
	size_t n = 0;
	for (; text && text[n] && n < sizeof t - 1; n++)
		t[n] = (unsigned char)text[n] < 32 || text[n] == 127 ? '?' : text[n];
	buf_printf(b, "%zu:%c", n + 1, code);
	buf_add(b, t, n);
	buf_addc(b, ',');
}

int qmqp_reply_parse(const char *in, size_t n, char *code, char *text, size_t tsz, size_t *used)
{
	size_t i = 0, len = 0;
	for (; i < n && in[i] >= '0' && in[i] <= '9'; i++) {
		if ((i == 1 && in[0] == '0') || i >= 5)
			return -1;
		len = len * 10 + (size_t)(in[i] - '0');
	}
	if (len > QMQP_REPLY_MAX + 1 || (i < n && (i == 0 || in[i] != ':')))
		return -1;
	if (i == n || n - i - 1 < len + 1)
		return i > 5 ? -1 : 0;
	const char *p = in + i + 1;
	if (len == 0 || p[len] != ',' || (p[0] != 'K' && p[0] != 'Z' && p[0] != 'D'))
		return -1;
	*code = p[0];
	size_t k = 0;
	for (size_t j = 1; j < len && k + 1 < tsz; j++)
		text[k++] = (unsigned char)p[j] < 32 || p[j] == 127 ? '?' : p[j];
	if (tsz)
		text[k] = '\0';
	*used = i + 1 + len + 1;
	return 1;
}

/* ---- framing for the client ----------------------------------------------------------------- */

uint64_t qmqp_ns_len(uint64_t n)
{
	uint64_t d = 1;
	for (uint64_t v = n; v >= 10; v /= 10)
		d++;
	return d + 1 + n + 1;
}

void qmqp_ns_head(struct buf *b, uint64_t n)
{
	buf_printf(b, "%llu:", (unsigned long long)n);
}

void qmqp_ns_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	qmqp_ns_head(b, n);
	buf_add(b, s, n);
	buf_addc(b, ',');
}

void qmqp_received(struct buf *b, const char *ip, const char *me, uint64_t msgid, time_t when)
{
	char date[64];
	smtp_data_date(date, sizeof date, when);
	buf_printf(b, "Received: from [%s] ([%s])\n\tby %s (tern) with QMQP id %016llx;\n\t%s\n",
	           ip, ip, me, (unsigned long long)msgid, date);
}

/* ---- qmqpservers ------------------------------------------------------------------------------ */

int qmqp_servers_parse(const char *s, struct qmqp_server *out, size_t max)
{
	char tmp[64];
	size_t n = 0;
	while (s && *s) {
		size_t k = strcspn(s, " \t,");
		if (k >= sizeof tmp || (k && n >= max))
			return -1;
		if (k) {
			memcpy(tmp, s, k);
			tmp[k] = '\0';
			if (netaddr_parse(tmp, QMQP_PORT, out[n].addr, sizeof out[n].addr,
			                  &out[n].port) < 0)
				return -1;
			n++;
		}
		s += k;
		s += strspn(s, " \t,");
	}
	return (int)n;
}
