/* addr — see addr.h. RFC 5321 4.1.2 grammar, with two tolerances found in the wild:
 * a path without angle brackets and '_' inside domain labels. Owns nothing but the caller's
 * struct; trusts nothing it parses. */
#include "mail/addr.h"
#include "lib/buf.h"
#include <arpa/inet.h>
#include <string.h>

static int addr_is_blank(int c) { return c == ' ' || c == '\t'; }
static int addr_is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int addr_is_atext(int c)
{
	return addr_is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int addr_is_ldh(int c) { return addr_is_alnum(c) || c == '-' || c == '_'; }

static const char *addr_skip_blanks(const char *p)
{
	while (addr_is_blank((unsigned char)*p))
		p++;
	return p;
}

int addr_is_dot_string(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.' : !addr_is_atext(c))
			return 0;
	}
	return 1;
}

/* a bracketed literal at s: [IPv4] or [IPv6:...]; returns octets or -1 */
static long addr_scan_literal(const char *s, const char **why)
{
	char tmp[64];
	unsigned char bin[16];
	const char *end = strchr(s, ']');
	*why = "Bad address literal";
	if (!end || (size_t)(end - s - 1) >= sizeof tmp || end == s + 1)
		return -1;
	size_t n = (size_t)(end - s - 1);
	memcpy(tmp, s + 1, n);
	tmp[n] = '\0';
	int ok = str_ncasecmp(tmp, "IPv6:", 5) == 0 ? inet_pton(AF_INET6, tmp + 5, bin)
	                                              : inet_pton(AF_INET, tmp, bin);
	return ok == 1 ? (long)n + 2 : -1;
}

/* a domain name or literal at s; returns octets or -1 */
static long addr_scan_domain(const char *s, const char **why)
{
	size_t i = 0;
	if (*s == '[')
		return addr_scan_literal(s, why);
	*why = "Bad domain";
	for (;;) {
		size_t start = i;
		while (addr_is_ldh((unsigned char)s[i]))
			i++;
		if (i == start || i - start > 63 || s[start] == '-' || s[i - 1] == '-')
			return -1;
		if (s[i] != '.')
			break;
		i++;
		if (i > ADDR_DOMAIN_MAX)
			break;
	}
	if (i > ADDR_DOMAIN_MAX) {
		*why = "Domain too long";
		return -1;
	}
	return (long)i;
}

int addr_domain_valid(const char *s, size_t len)
{
	char tmp[ADDR_DOMAIN_MAX + 1];
	const char *why;
	if (len == 0 || len > ADDR_DOMAIN_MAX || memchr(s, '\0', len))
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return addr_scan_domain(tmp, &why) == (long)len;
}

/* quoted local part at s (on the '"'); canonical form into out (ADDR_LOCAL_MAX + 1) */
static long addr_scan_quoted(const char *s, char *out, size_t *olen, const char **why)
{
	char raw[ADDR_LOCAL_MAX + 1] = "";
	size_t i = 1, n = 0;
	*why = "Bad quoted local part";
	while (s[i] != '"') {
		int esc = s[i] == '\\';
		unsigned char c = (unsigned char)s[i + (size_t)esc];
		if (c < 32 || c > 126)
			return -1;
		i += 1 + (size_t)esc;
		if (i >= ADDR_LOCAL_MAX) {
			*why = "Local part too long";
			return -1;
		}
		raw[n++] = (char)c;
	}
	i++;
	if (addr_is_dot_string(raw, n)) {
		memcpy(out, raw, n);
		*olen = n;
		return (long)i;
	}
	size_t o = 0;                       /* re-quote minimally: never longer than the input */
	out[o++] = '"';
	for (size_t k = 0; k < n; k++) {
		if (raw[k] == '"' || raw[k] == '\\')
			out[o++] = '\\';
		out[o++] = raw[k];
	}
	out[o++] = '"';
	*olen = o;
	return (long)i;
}

static long addr_scan_local(const char *s, char *out, size_t *olen, const char **why)
{
	size_t i = 0;
	if (*s == '"')
		return addr_scan_quoted(s, out, olen, why);
	while (addr_is_atext((unsigned char)s[i]) || s[i] == '.')
		i++;
	*why = "Bad address syntax";
	if (!addr_is_dot_string(s, i))
		return -1;
	if (i > ADDR_LOCAL_MAX) {
		*why = "Local part too long";
		return -1;
	}
	memcpy(out, s, i);
	*olen = i;
	return (long)i;
}

/* "@a,@b:" source route (ignored, RFC 5321 C.); returns octets or -1 */
static long addr_scan_route(const char *s, const char **why)
{
	size_t i = 0;
	for (;;) {
		if (s[i] != '@')
			break;
		long d = addr_scan_domain(s + i + 1, why);
		if (d < 0)
			break;
		i += 1 + (size_t)d;
		if (s[i] == ':')
			return (long)i + 1;
		if (s[i] != ',')
			break;
		i++;
	}
	*why = "Bad source route";
	return -1;
}

static int addr_fail(struct addr *a, const char *why)
{
	a->code = 501;
	a->why = why;
	return -1;
}

/* the mailbox (or bare postmaster) at *pp; fills a->mailbox */
static int addr_mailbox(const char **pp, enum addr_kind kind, struct addr *a)
{
	char local[ADDR_LOCAL_MAX + 1];
	size_t llen;
	const char *why, *p = *pp;
	long n = addr_scan_local(p, local, &llen, &why);
	if (n < 0)
		return addr_fail(a, why);
	p += n;
	if (*p != '@') {
		if (kind != ADDR_RCPT || llen != 10 || str_ncasecmp(local, "postmaster", 10) != 0)
			return addr_fail(a, (*p == '>' || *p == '\0' ||
			    (!a->bracketed && addr_is_blank((unsigned char)*p)))
			                   ? "Missing domain" : "Bad address syntax");
		memcpy(a->mailbox, "postmaster", 11);
		a->local_len = 10;
		a->postmaster = 1;
		*pp = p;
		return 0;
	}
	long d = addr_scan_domain(++p, &why);
	if (d < 0)
		return addr_fail(a, why);
	if (llen + 1 + (size_t)d > ADDR_PATH_MAX - 2)
		return addr_fail(a, "Path too long");
	memcpy(a->mailbox, local, llen);
	a->mailbox[llen] = '@';
	memcpy(a->mailbox + llen + 1, p, (size_t)d);
	a->mailbox[llen + 1 + (size_t)d] = '\0';
	addr_domain_lower(a->mailbox + llen + 1);
	a->local_len = llen;
	*pp = p + d;
	return 0;
}

static void addr_reset(struct addr *a)
{
	a->mailbox[0] = '\0';
	a->local_len = 0;
	a->null = a->postmaster = a->bracketed = 0;
	a->params = "";
	a->code = 0;
	a->why = NULL;
}

static int addr_parse_path(const char *arg, enum addr_kind kind, struct addr *a)
{
	const char *why, *p = addr_skip_blanks(arg), *start = p;
	addr_reset(a);
	if (*p == '\0')
		return addr_fail(a, "Missing address");
	if (*p == '<') {
		a->bracketed = 1;
		p++;
		if (*p == '>') {
			if (kind == ADDR_RCPT)
				return addr_fail(a, "Null recipient");
			a->null = 1;
			p++;
			goto rest;
		}
		if (*p == '@') {
			long r = addr_scan_route(p, &why);
			if (r < 0)
				return addr_fail(a, why);
			p += r;
		}
	}
	if (addr_mailbox(&p, kind, a) < 0)
		return -1;
	if (a->bracketed && *p++ != '>')
		return addr_fail(a, "Bad address syntax");
	if ((size_t)(p - start) > ADDR_PATH_MAX)
		return addr_fail(a, "Path too long");
rest:
	if (*p && !addr_is_blank((unsigned char)*p))
		return addr_fail(a, "Junk after address");
	a->params = addr_skip_blanks(p);
	return 0;
}

int addr_param_next(const char **cur, struct addr_param *p, const char **why)
{
	const char *s = addr_skip_blanks(*cur);
	size_t k = 0, v = 0;
	*cur = s;
	if (!*s)
		return 0;
	*why = "Bad parameter syntax";
	while (addr_is_alnum((unsigned char)s[k]) || (k > 0 && s[k] == '-'))
		k++;
	if (k == 0 || k >= sizeof p->key)
		return -1;
	for (size_t i = 0; i < k; i++)
		p->key[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
	p->key[k] = '\0';
	s += k;
	p->hasval = *s == '=';
	if (p->hasval) {
		s++;
		while ((unsigned char)s[v] >= 33 && (unsigned char)s[v] <= 126 && s[v] != '=')
			v++;
		if (v == 0 || v >= sizeof p->val)
			return -1;
		memcpy(p->val, s, v);
		s += v;
	}
	p->val[v] = '\0';
	if (*s && !addr_is_blank((unsigned char)*s))
		return -1;
	*cur = s;
	return 1;
}

int addr_split(const char *mailbox, char *local, size_t lsz, char *domain, size_t dsz)
{
	const char *at = NULL;
	int q = 0;
	for (const char *p = mailbox; *p; p++) {
		if (q && *p == '\\' && p[1])
			p++;
		else if (*p == '"')
			q = !q;
		else if (!q && *p == '@')
			at = p;
	}
	if (!at || at[1] == '\0')
		return -1;
	size_t ln = (size_t)(at - mailbox), dn = strlen(at + 1);
	if (ln >= lsz || dn >= dsz)
		return -1;
	memcpy(local, mailbox, ln);
	local[ln] = '\0';
	memcpy(domain, at + 1, dn + 1);
	return 0;
}

void addr_domain_lower(char *domain)
{
	if (domain[0] == '[' && str_ncasecmp(domain + 1, "ipv6:", 5) == 0) {
		memcpy(domain + 1, "IPv6:", 5);
		domain += 6;
	}
	str_lower(domain);
}

int addr_parse(const char *arg, enum addr_kind kind, struct addr *a)
{
	if (addr_parse_path(arg, kind, a) == 0)
		return 0;
	for (const char *p = addr_skip_blanks(arg); *p && !addr_is_blank((unsigned char)*p); p++)
		if (*p & 0x80) {
			a->code = 553;
			a->why = "8-bit address requires SMTPUTF8";
			break;
		}
	return -1;
}
