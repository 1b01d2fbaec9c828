/* progchan — see progchan.h. */
#include "mail/progchan.h"
#include "lib/buf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the template's words, split on blanks (the config line removed its quotes) */
static size_t progchan_split(const char *program, char words[][PROGCHAN_LINEMAX + 1], size_t max,
                             int *toolong)
{
	size_t n = 0;
	*toolong = 0;
	for (const char *p = program; *p;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, " \t");
		if (n == max || len > PROGCHAN_LINEMAX) {
			*toolong = 1;
			return n;
		}
		memcpy(words[n], p, len);
		words[n++][len] = '\0';
		p += len;
	}
	return n;
}

int progchan_template_check(const char *program, char *why, size_t whylen)
{
	static char words[PROGCHAN_MAXWORDS][PROGCHAN_LINEMAX + 1];
	int toolong;
	size_t n = progchan_split(program, words, PROGCHAN_MAXWORDS, &toolong);
	if (toolong) {
		snprintf(why, whylen, "more than %d words or a word over %d bytes", PROGCHAN_MAXWORDS,
		         PROGCHAN_LINEMAX);
		return -1;
	}
	if (n == 0 || words[0][0] != '/' || strchr(words[0], '%')) {
		snprintf(why, whylen, "the first word must be the program's absolute path, without %%");
		return -1;
	}
	for (size_t i = 1; i < n; i++)
		for (const char *p = words[i]; (p = strchr(p, '%')); p += 2)
			if (p[1] != 'h' && p[1] != 's' && p[1] != '%') {
				snprintf(why, whylen, "only %%h (host), %%s (sender) and %%%% may follow %%");
				return -1;
			}
	return 0;
}

static int progchan_value_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x21 || (unsigned char)*v > 0x7e)
			return 0;
	return 1;
}

static int progchan_name_ok(const char *s)
{
	if (!*s || *s == '-')
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	       strlen(s);
}

/* one template word with its substitutions: NULL when it would start with '-' */
static char *progchan_expand(const char *w, const char *host, const char *sender)
{
	struct buf b;
	buf_init(&b);
	for (const char *p = w; *p; p++) {
		if (*p != '%') {
			buf_add(&b, p, 1);
			continue;
		}
		p++;
		buf_printf(&b, "%s", *p == 'h' ? host : *p == 's' ? sender : "%");
	}
	char *s = buf_detach(&b);
	if (!s)
		s = xstrdup("");
	if (*s == '-' && *w != '-') {
		free(s);
		return NULL;
	}
	return s;
}

char **progchan_argv(const char *program, const char *host, const char *sender,
                     const char *name, char *why, size_t whylen)
{
	static char words[PROGCHAN_MAXWORDS][PROGCHAN_LINEMAX + 1];
	if (progchan_template_check(program, why, whylen) < 0)
		return NULL;
	if (!progchan_value_ok(host) || !progchan_value_ok(sender) || *sender == '-') {
		snprintf(why, whylen, "the host or sender has a blank, a control character, a "
		         "non-ASCII byte or a leading '-'");
		return NULL;
	}
	if (!progchan_name_ok(name)) {
		snprintf(why, whylen, "a bad message name");
		return NULL;
	}
	int toolong;
	size_t n = progchan_split(program, words, PROGCHAN_MAXWORDS, &toolong), k = 0;
	char **argv = xcalloc(n + 7, sizeof *argv);
	for (size_t i = 0; i < n; i++)
		if (!(argv[k++] = progchan_expand(words[i], host, sender))) {
			snprintf(why, whylen, "a substitution would make word %zu an option ('-')", i + 1);
			progchan_argv_free(argv);
			return NULL;
		}
	const char *tail[] = { "0", "3", "4", name, sender, "y" };
	for (size_t i = 0; i < 6; i++)
		argv[k++] = xstrdup(tail[i]);
	argv[k] = NULL;
	return argv;
}

void progchan_argv_free(char **argv)
{
	for (char **a = argv; a && *a; a++)
		free(*a);
	free(argv);
}

int progchan_address_ok(const char *addr)
{
	if (!*addr)
		return 0;
	for (; *addr; addr++)
		if ((unsigned char)*addr < 0x20 || *addr == 0x7f)
			return 0;
	return 1;
}

void progchan_init(struct progchan *p, size_t n)
{
	memset(p, 0, sizeof *p);
	p->n = n;
	p->r = xcalloc(n ? n : 1, sizeof *p->r);
	p->done = n == 0;
}

void progchan_free(struct progchan *p)
{
	free(p->r);
	p->r = NULL;
}

/* printable ASCII only, at most PROGCHAN_TEXTMAX bytes */
static void progchan_text(char *dst, const char *src, const char *dflt)
{
	size_t k = 0;
	if (!*src)
		src = dflt;
	for (; *src && k < PROGCHAN_TEXTMAX; src++)
		dst[k++] = (unsigned char)*src < 0x20 || (unsigned char)*src > 0x7e ? '?' : *src;
	dst[k] = '\0';
}

static void progchan_set(struct progchan_rcpt *r, int st, int scope, const char *text,
                         const char *dflt)
{
	r->st = st;
	r->scope = st == PROGCHAN_TEMP ? scope : PROGCHAN_RCPT;
	r->addr_ok = 0;
	progchan_text(r->text, text, dflt);
}

static void progchan_break(struct progchan *p, const char *why)
{
	p->broken = 1;
	snprintf(p->why, sizeof p->why, "%s", why);
}

/* is anyone still waiting for the final line? */
static int progchan_waiting(const struct progchan *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].addr_ok)
			return 1;
	return 0;
}

/* the final line: what became of the text for every address answered A */
static void progchan_final(struct progchan *p, char code, const char *text)
{
	int st = code == 'M' ? PROGCHAN_OK : code == 'T' ? PROGCHAN_TEMP : PROGCHAN_PERM;
	if (code == 'A') {
		progchan_break(p, "'A' where the message's reply was due");
		return;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].addr_ok)
			progchan_set(&p->r[i], st, PROGCHAN_SITE, text,
			             st == PROGCHAN_OK ? "message sent" : "the program refused the message");
	p->done = 1;
}

static void progchan_line(struct progchan *p, char *s)
{
	size_t len = strlen(s);
	if (len && s[len - 1] == '\r')
		s[--len] = '\0';
	if (p->done || p->broken)
		return;                        /* after the last result: nothing changes */
	if (!len || !strchr("AMTP", s[0]) || (s[1] && s[1] != ' ')) {
		progchan_break(p, "a reply line that is not A, M, T or P [text]");
		return;
	}
	const char *text = s[1] ? s + 2 : "";
	p->answered = 1;
	if (p->next == p->n) {
		progchan_final(p, s[0], text);
		return;
	}
	if ((s[0] == 'A' || s[0] == 'M') && p->mode && p->mode != s[0]) {
		progchan_break(p, "both 'A' and 'M' in one run");
		return;
	}
	if (s[0] == 'A' || s[0] == 'M')
		p->mode = s[0];
	struct progchan_rcpt *r = &p->r[p->next++];
	if (s[0] == 'A') {
		r->addr_ok = 1;
		progchan_text(r->text, text, "address ok");
	} else
		progchan_set(r, s[0] == 'M' ? PROGCHAN_OK : s[0] == 'T' ? PROGCHAN_TEMP : PROGCHAN_PERM,
		             PROGCHAN_RCPT, text, s[0] == 'M' ? "delivered" : s[0] == 'T' ?
		             "temporary failure" : "permanent failure");
	if (p->next == p->n && !progchan_waiting(p))
		p->done = 1;
}

void progchan_feed(struct progchan *p, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			p->line[p->linelen] = '\0';
			progchan_line(p, p->line);
			p->linelen = 0;
		} else if (data[i] == '\0') {
			if (!p->done)
				progchan_break(p, "a NUL byte in a reply");
		} else if (p->linelen == PROGCHAN_LINEMAX) {
			if (!p->done)
				progchan_break(p, "a reply line over 512 bytes");
		} else
			p->line[p->linelen++] = data[i];
	}
}

void progchan_end(struct progchan *p, int exited, int code, int sig, int timedout)
{
	char why[200];
	if (p->linelen && !p->broken && !p->done) {
		progchan_break(p, "a reply line without its line feed");
	}
	if (timedout)
		snprintf(why, sizeof why, "the program did not finish within its time limit");
	else if (!exited)
		snprintf(why, sizeof why, "the program was killed by signal %d", sig);
	else if (p->broken)
		snprintf(why, sizeof why, "protocol error: %s", p->why);
	else
		snprintf(why, sizeof why, "the program exited %d without a reply for this address", code);
	if (!p->answered && !p->broken && exited && !timedout && (code == 0 || code == 100)) {
		snprintf(why, sizeof why, "the program exited %d without replies", code);
		for (size_t i = 0; i < p->n; i++)
			progchan_set(&p->r[i], code == 0 ? PROGCHAN_OK : PROGCHAN_PERM, PROGCHAN_RCPT, why, "");
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].st == PROGCHAN_PENDING)
			progchan_set(&p->r[i], PROGCHAN_TEMP, PROGCHAN_SITE, why, "");
	p->done = 1;
}
