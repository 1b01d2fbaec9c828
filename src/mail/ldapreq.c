/* ldapreq — see ldapreq.h: ldaplookup's -u and -p on ternctl's command line and on the
 * control socket's request line. Owns: parsing and encoding. Trusts: nothing it parses. */
#include "mail/ldapreq.h"
#include "lib/buf.h"
#include <string.h>
#include <strings.h>

void ldapreq_wipe(struct ldapreq *q)
{
	explicit_bzero(q->pw, sizeof q->pw);
}

/* printable, no blank: a word that travels on the request line as it is */
static int ldapreq_word_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/* HEX -> q->pw: 0, or -1 (odd length, not hex, a NUL, empty, too long) */
static int ldapreq_unhex(const char *h, struct ldapreq *q)
{
	size_t n = strlen(h);
	if (n == 0 || n % 2 || n / 2 >= sizeof q->pw)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = str_hexval((unsigned char)h[2 * i]);
		int lo = str_hexval((unsigned char)h[2 * i + 1]);
		if (hi < 0 || lo < 0 || (hi | lo) == 0)
			return -1;
		q->pw[i] = (char)(hi << 4 | lo);
	}
	q->pw[n / 2] = '\0';
	return 0;
}

/* options, then exactly one argument; wire: -p takes the HEX word */
static int ldapreq_words(char **argv, int argc, struct ldapreq *q, int wire)
{
	memset(q, 0, sizeof *q);
	int i = 0;
	for (; i < argc - 1; i++) {
		if (strcmp(argv[i], "-u") == 0 && !q->uid) {
			q->uid = 1;
		} else if (strcmp(argv[i], "-p") == 0 && !q->password) {
			q->password = 1;
			if (wire && (i + 1 >= argc - 1 || ldapreq_unhex(argv[++i], q) < 0))
				return -1;
		} else {
			return -1;
		}
	}
	if (i != argc - 1 || !ldapreq_word_ok(argv[i]) || (argv[i][0] == '-' && argv[i][1]))
		return -1;
	q->arg = argv[i];
	return 0;
}

int ldapreq_cli(char **argv, int argc, struct ldapreq *q)
{
	return ldapreq_words(argv, argc, q, 0);
}

int ldapreq_parse(char **argv, int argc, struct ldapreq *q)
{
	int rc = ldapreq_words(argv, argc, q, 1);
	if (rc < 0)
		ldapreq_wipe(q);
	return rc;
}

void ldapreq_line(struct buf *b, const struct ldapreq *q, const char *pw)
{
	buf_reserve(b, 2 * LDAPREQ_MAXPW + strlen(q->arg) + 32);   /* no copy left by growing */
	buf_adds(b, "ldaplookup");
	if (q->uid)
		buf_adds(b, " -u");
	if (q->password) {
		buf_adds(b, " -p ");
		for (const unsigned char *p = (const unsigned char *)pw; *p; p++)
			buf_printf(b, "%02x", *p);
	}
	buf_printf(b, " %s", q->arg);
}
