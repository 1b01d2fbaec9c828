/* cluster — see cluster.h. The hop counter is a small state machine over the header bytes,
 * so the mta can feed it the spool file chunk by chunk and stop at the end of the header
 * section; it keeps no text. Trusts: nothing it reads. */
#include "mail/cluster.h"
#include <stdio.h>
#include <string.h>

enum { H_BOL, H_BOL_CR, H_NAME, H_BLANK, H_SKIP };

int cluster_cookie_ok(const char *c)
{
	size_t n = 0;
	if (!c)
		return 0;
	for (; c[n]; n++)
		if ((unsigned char)c[n] <= 0x20 || (unsigned char)c[n] >= 0x7f)
			return 0;
	return n >= 1 && n <= CLUSTER_COOKIE_MAX;
}

static int cluster_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int cluster_greeting_has_cookie(const char *text, size_t n, const char *cookie)
{
	size_t cl = cookie ? strlen(cookie) : 0;
	if (cl == 0 || !text)
		return 0;
	while (n > 0 && cluster_blank(text[n - 1]))  /* the text's trailing line end, blanks */
		n--;
	if (n < cl + 1 || memcmp(text + n - cl, cookie, cl) != 0)
		return 0;
	return text[n - cl - 1] == ' ' || text[n - cl - 1] == '\t';
}

int cluster_header_line(const char *me, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s: %s\n", CLUSTER_FIELD, me ? me : "");
	if (n < 0 || (size_t)n >= outsz) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	for (int i = (int)sizeof CLUSTER_FIELD + 1; i < n - 1; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
			out[i] = '?';
	return n;
}

void cluster_hops_init(struct cluster_hops *h) { memset(h, 0, sizeof *h); }

static char cluster_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* one byte at the beginning of a line or inside the field name */
static void cluster_hops_name(struct cluster_hops *h, char c)
{
	static const char name[] = "x-tern-cluster";
	if (h->matched < sizeof name - 1 && cluster_lower(c) == name[h->matched]) {
		h->matched++;
		h->state = H_NAME;
	} else if (h->matched == sizeof name - 1 && (c == ' ' || c == '\t')) {
		h->state = H_BLANK;
	} else if (h->matched == sizeof name - 1 && c == ':') {
		h->hops++;
		h->state = H_SKIP;
	} else
		h->state = c == '\n' ? H_BOL : H_SKIP;
}

static void cluster_hops_byte(struct cluster_hops *h, char c)
{
	switch (h->state) {
	case H_BOL:
		h->matched = 0;
		if (c == '\n')
			h->done = 1;
		else if (c == '\r')
			h->state = H_BOL_CR;
		else if (c == ' ' || c == '\t')
			h->state = H_SKIP;           /* a folded continuation: never a field */
		else
			cluster_hops_name(h, c);
		break;
	case H_BOL_CR:
		if (c == '\n')
			h->done = 1;
		else
			h->state = H_SKIP;
		break;
	case H_NAME:
		cluster_hops_name(h, c);
		break;
	case H_BLANK:
		if (c == ':') {
			h->hops++;
			h->state = H_SKIP;
		} else if (c != ' ' && c != '\t')
			h->state = c == '\n' ? H_BOL : H_SKIP;
		break;
	default:
		if (c == '\n')
			h->state = H_BOL;
		break;
	}
}

int cluster_hops_feed(struct cluster_hops *h, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !h->done; i++)
		cluster_hops_byte(h, p[i]);
	return h->done;
}
