/* smtp_data — see smtp_data.h. A byte state machine with a fast path for the middle of a
 * line (most octets): copy the run up to the next CR or LF in one go. */
#include "mail/smtp_data.h"
#include <stdio.h>
#include <string.h>

enum {
	SD_BOL,       /* at the start of a line (after CRLF, or the first line) */
	SD_MID,       /* inside a line (also after a bare LF: no dot-unstuffing there) */
	SD_CR,        /* a CR is pending: CRLF ends the line, anything else makes it bare */
	SD_DOT,       /* a '.' at the start of a line, not emitted yet */
	SD_DOTCR,     /* ".\r" at the start of a line: LF now ends the data */
	SD_DONE,
};

void smtp_data_init(struct smtp_data *d, uint64_t max)
{
	memset(d, 0, sizeof *d);
	d->state = SD_BOL;
	d->max = max;
}

static void smtp_data_grow(struct smtp_data *d, size_t n)
{
	d->linelen += n;
	if (d->linelen > SMTP_DATA_LINE_MAX - 2)
		d->toolong = 1;
}

/* an ordinary position: c is neither a pending CR nor a line-start dot */
static void smtp_data_mid(struct smtp_data *d, char c, char *out, size_t *o)
{
	if (c == '\r') {
		d->state = SD_CR;
		return;
	}
	d->state = SD_MID;
	out[(*o)++] = c;
	if (c == '\0')
		d->nul++;
	if (c == '\n') {
		d->bare_lf++;
		d->linelen = 0;
	} else
		smtp_data_grow(d, 1);
}

static void smtp_data_step(struct smtp_data *d, char c, char *out, size_t *o)
{
	switch (d->state) {
	case SD_BOL:
		if (c == '.') {
			d->state = SD_DOT;
			smtp_data_grow(d, 1);
		} else
			smtp_data_mid(d, c, out, o);
		return;
	case SD_DOT:                       /* the stuffed dot is dropped */
		if (c == '\r')
			d->state = SD_DOTCR;
		else
			smtp_data_mid(d, c, out, o);
		return;
	case SD_DOTCR:
		if (c == '\n') {
			d->state = SD_DONE;
			d->done = 1;
			return;
		}
		d->state = SD_CR;          /* the CR after the dot is an ordinary pending CR */
		smtp_data_step(d, c, out, o);
		return;
	case SD_CR:
		if (c == '\n') {
			out[(*o)++] = '\n';
			d->state = SD_BOL;
			d->linelen = 0;
			return;
		}
		out[(*o)++] = '\r';         /* the pending CR was bare */
		d->bare_cr++;
		smtp_data_grow(d, 1);
		smtp_data_mid(d, c, out, o);
		return;
	default:
		smtp_data_mid(d, c, out, o);
	}
}

size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t n, char *out, size_t *outn)
{
	size_t i = 0, o = 0;
	while (i < n && !d->done) {
		if (d->state == SD_MID) {
			size_t j = i;
			while (j < n && in[j] != '\r' && in[j] != '\n')
				d->nul += in[j++] == '\0';
			memcpy(out + o, in + i, j - i);
			o += j - i;
			smtp_data_grow(d, j - i);
			i = j;
			if (i == n)
				break;
		}
		smtp_data_step(d, in[i++], out, &o);
	}
	d->bytes += o;
	if (d->max && d->bytes > d->max)
		d->toobig = 1;
	*outn = o;
	return i;
}

void smtp_data_date(char *out, size_t sz, time_t t)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	if (!localtime_r(&t, &tm))
		gmtime_r(&t, &tm);
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	snprintf(out, sz, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

/* client text in a header: printable ASCII without blanks or parentheses, at most 255 */
static void smtp_data_add_clean(struct buf *b, const char *s)
{
	size_t i;
	for (i = 0; s[i] && i < 255; i++) {
		unsigned char c = (unsigned char)s[i];
		buf_addc(b, (c > 32 && c < 127 && c != '(' && c != ')') ? (char)c : '?');
	}
	if (i == 0)
		buf_adds(b, "unknown");
}

void smtp_data_received(struct buf *b, const struct smtp_received *r)
{
	char date[64];
	smtp_data_date(date, sizeof date, r->when);
	buf_adds(b, "Received: from ");
	smtp_data_add_clean(b, r->helo ? r->helo : "");
	if (r->rdns)
		buf_printf(b, " (%s [%s])", r->rdns, r->ip);
	else
		buf_printf(b, " ([%s] [%s])", r->ip, r->ip);
	if (r->tls_version) {
		buf_adds(b, "\n\t(using ");
		smtp_data_add_clean(b, r->tls_version);
		buf_adds(b, " with cipher ");
		smtp_data_add_clean(b, r->tls_cipher ? r->tls_cipher : "");
		buf_printf(b, " (%d bits))", r->tls_bits);
	}
	if (r->auth && r->authlogin) {
		buf_adds(b, "\n\t(authenticated as ");
		smtp_data_add_clean(b, r->authlogin);
		buf_adds(b, ")");
	}
	buf_printf(b, "\n\tby %s (tern) with %s%s%s id %016llx", r->me,
	    r->esmtp || r->tls_version || r->auth ? "ESMTP" : "SMTP", r->tls_version ? "S" : "",
	    r->auth ? "A" : "", (unsigned long long)r->msgid);
	if (r->rcpt)
		buf_printf(b, "\n\tfor <%s>; %s\n", r->rcpt, date);
	else
		buf_printf(b, ";\n\t%s\n", date);
}
