/* mdquota — the Maildir++ `maildirsize` format and the over-quota rule (src/mail/mdquota.h).
 * Owns: parsing and formatting only; tern-local does the file I/O. Trusts: nothing it
 * parses. */
#include "mail/mdquota.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void mdquota_defline(struct buf *out, uint64_t size, uint64_t count)
{
	if (size)
		buf_printf(out, "%lluS", (unsigned long long)size);
	if (size && count)
		buf_addc(out, ',');
	if (count)
		buf_printf(out, "%lluC", (unsigned long long)count);
}

/* one signed decimal at *p (leading blanks skipped); 0 ok / -1 */
static int mdquota_num(const char **p, const char *end, int64_t *v)
{
	const char *s = *p;
	int neg = 0;
	uint64_t n = 0;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s < end && (*s == '-' || *s == '+'))
		neg = *s++ == '-';
	if (s == end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (n > (uint64_t)INT64_MAX / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (n > (uint64_t)INT64_MAX)
		return -1;
	*v = neg ? -(int64_t)n : (int64_t)n;
	*p = s;
	return 0;
}

static int mdquota_add(int64_t *sum, int64_t v)
{
	if ((v > 0 && *sum > INT64_MAX - v) || (v < 0 && *sum < INT64_MIN - v))
		return -1;
	*sum += v;
	return 0;
}

/* one "BYTES COUNT" line (without its newline) added to use */
static int mdquota_line(const char *s, const char *end, struct mdquota_use *use)
{
	int64_t b, c;
	if (mdquota_num(&s, end, &b) < 0 || mdquota_num(&s, end, &c) < 0)
		return -1;
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	if (s != end)
		return -1;
	return mdquota_add(&use->bytes, b) < 0 || mdquota_add(&use->count, c) < 0 ? -1 : 0;
}

int mdquota_parse(const char *text, size_t len, const char *want, struct mdquota_use *use)
{
	const char *end = text + len, *nl = memchr(text, '\n', len);
	use->bytes = use->count = 0;
	if (!len || text[len - 1] != '\n' || !nl)
		return -1;
	size_t dl = (size_t)(nl - text);
	if (dl && text[dl - 1] == '\r')
		dl--;
	if (dl != strlen(want) || memcmp(text, want, dl) != 0)
		return -1;
	for (const char *s = nl + 1; s < end; s = nl + 1) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (nl == s)
			continue;               /* an empty line: nothing to add */
		if (mdquota_line(s, nl, use) < 0)
			return -1;
	}
	return 0;
}

int mdquota_over(const struct mdquota_use *use, uint64_t size, uint64_t count,
                 uint64_t addbytes, uint64_t addcount)
{
	uint64_t b = use->bytes > 0 ? (uint64_t)use->bytes : 0;
	uint64_t c = use->count > 0 ? (uint64_t)use->count : 0;
	if (size && (b > size || addbytes > size - b))
		return 1;
	if (count && (c > count || addcount > count - c))
		return 1;
	return 0;
}

void mdquota_add_file(struct mdquota_use *use, uint64_t size)
{
	int64_t v = size > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)size;
	if (use->bytes < 0)
		use->bytes = 0;
	use->bytes = use->bytes > INT64_MAX - v ? INT64_MAX : use->bytes + v;
	if (use->count < INT64_MAX)
		use->count++;
}

int mdquota_name_size(const char *name, uint64_t *size)
{
	const char *s = strstr(name, ",S=");
	uint64_t n = 0;
	int digits = 0;
	if (!s)
		return -1;
	for (s += 3; *s >= '0' && *s <= '9'; s++, digits++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (!digits || (*s && *s != ',' && *s != ':'))
		return -1;
	*size = n;
	return 0;
}

/* one unsigned decimal at *p, >= 1, no sign; 0 / -1 */
static int mdquota_u64(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (n > UINT64_MAX / 10 || (n == UINT64_MAX / 10 && d > UINT64_MAX % 10))
			return -1;
		n = n * 10 + d;
	}
	*v = n;
	*p = s;
	return 0;
}

int mdquota_spec_parse(const char *s, uint64_t *size, uint64_t *count)
{
	uint64_t v;
	*size = *count = 0;
	for (int part = 0; part < 2; part++) {
		if (mdquota_u64(&s, &v) < 0 || v == 0)
			return -1;
		uint64_t *d = *s == 'S' ? size : *s == 'C' ? count : NULL;
		if (!d || *d)
			return -1;
		*d = v;
		s++;
		if (!*s)
			return 0;
		if (*s++ != ',')
			return -1;
	}
	return -1;
}

int mdquota_args_parse(const char *s, struct mdquota_args *a)
{
	uint64_t *f[3] = { &a->size, &a->count, &a->bouncedays };
	for (int i = 0; i < 3; i++) {
		*f[i] = 0;
		if (mdquota_u64(&s, f[i]) < 0 || *s++ != ',')
			return -1;
	}
	a->warning = s;
	return 0;
}

/* is n at least MDQUOTA_WARN_PCT % of limit (limit 0: never)? */
static int mdquota_pct(int64_t n, uint64_t limit)
{
	if (!limit || n <= 0)
		return 0;
	return (uint64_t)n >= limit - limit / 100 * (100 - MDQUOTA_WARN_PCT) -
	       limit % 100 * (100 - MDQUOTA_WARN_PCT) / 100;
}

int mdquota_warn_due(const struct mdquota_use *use, uint64_t size, uint64_t count)
{
	return mdquota_pct(use->bytes, size) || mdquota_pct(use->count, count);
}

/* an address into a header: control bytes (CR, LF...) become '_' */
static void mdquota_hdr_addr(struct buf *out, const char *a)
{
	for (; *a; a++)
		buf_addc(out, (unsigned char)*a < 0x20 || *a == 0x7f ? '_' : *a);
}

void mdquota_warning(struct buf *out, const char *to, const char *text, time_t now,
                     long usec, long pid)
{
	char date[64];
	struct tm tm;
	const char *dom = strrchr(to, '@');
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_adds(out, "From: Mail Delivery System <MAILER-DAEMON>\nTo: <");
	mdquota_hdr_addr(out, to);
	buf_printf(out, ">\nSubject: Warning: your mailbox is almost full\nDate: %s\n"
		   "Message-ID: <%lld.%06ld.%ld.quotawarn@", date, (long long)now, usec, pid);
	mdquota_hdr_addr(out, dom && dom[1] ? dom + 1 : "localhost");
	buf_printf(out, ">\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n"
		   "Content-Type: text/plain; charset=utf-8\n\n%s\n", text);
}
