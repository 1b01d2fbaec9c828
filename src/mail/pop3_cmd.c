/* pop3_cmd — see pop3_cmd.h. A table gives each verb its states and the shape of its
 * arguments; one function per shape parses them.
 * Owns: the table. Trusts: nothing in the line (every number is range-checked, every
 * argument length bounded). */
#include "mail/pop3_cmd.h"
#include "lib/buf.h"
#include <string.h>

enum pop3_shape {
	SH_NONE,      /* no argument */
	SH_OPTNUM,    /* [msg] */
	SH_NUM,       /* msg */
	SH_TOP,       /* msg n */
	SH_WORD,      /* one word */
	SH_REST,      /* the rest of the line (PASS: blanks allowed) */
	SH_APOP,      /* name digest */
	SH_AUTH,      /* [mechanism [initial-response]] */
};

struct pop3_verbdef {
	const char *name;
	enum pop3_verb verb;
	unsigned states;
	enum pop3_shape shape;
};

static const struct pop3_verbdef pop3_verbs[] = {
	{ "USER", P3_USER, POP3_AUTHZ, SH_WORD },
	{ "PASS", P3_PASS, POP3_AUTHZ, SH_REST },
	{ "APOP", P3_APOP, POP3_AUTHZ, SH_APOP },
	{ "AUTH", P3_AUTH, POP3_AUTHZ, SH_AUTH },
	{ "CAPA", P3_CAPA, POP3_AUTHZ | POP3_TRANS, SH_NONE },
	{ "STLS", P3_STLS, POP3_AUTHZ, SH_NONE },
	{ "QUIT", P3_QUIT, POP3_AUTHZ | POP3_TRANS, SH_NONE },
	{ "STAT", P3_STAT, POP3_TRANS, SH_NONE },
	{ "LIST", P3_LIST, POP3_TRANS, SH_OPTNUM },
	{ "UIDL", P3_UIDL, POP3_TRANS, SH_OPTNUM },
	{ "TOP",  P3_TOP,  POP3_TRANS, SH_TOP },
	{ "RETR", P3_RETR, POP3_TRANS, SH_NUM },
	{ "DELE", P3_DELE, POP3_TRANS, SH_NUM },
	{ "NOOP", P3_NOOP, POP3_TRANS, SH_NONE },
	{ "RSET", P3_RSET, POP3_TRANS, SH_NONE },
	{ "LAST", P3_LAST, POP3_TRANS, SH_NONE },
};
#define POP3_NVERBS (sizeof pop3_verbs / sizeof pop3_verbs[0])

static const char *const pop3_errtext[] = {
	[P3E_OK] = "ok",
	[P3E_UNKNOWN] = "unknown command",
	[P3E_STATE] = "command not valid in this state",
	[P3E_SYNTAX] = "syntax error",
	[P3E_LONG] = "argument too long",
};

const char *pop3_cmd_name(enum pop3_verb v)
{
	for (size_t i = 0; i < POP3_NVERBS; i++)
		if (pop3_verbs[i].verb == v)
			return pop3_verbs[i].name;
	return "?";
}

const char *pop3_cmd_error(int perr)
{
	return perr >= P3E_OK && perr <= P3E_LONG ? pop3_errtext[perr] : "error";
}

/* the next blank-separated word of *p (NUL-terminated in place), or NULL */
static char *pop3_word(char **p)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	char *w = s;
	while (*s && *s != ' ')
		s++;
	if (*s)
		*s++ = '\0';
	*p = s;
	return w;
}

/* a decimal number without sign or blanks, in [min, 999999999] */
static int pop3_num(const char *s, uint64_t min, uint64_t *out)
{
	if (!s || !*s || strlen(s) > 9)
		return -1;
	for (const char *q = s; *q; q++)
		if (*q < '0' || *q > '9')
			return -1;
	return str_to_u64(s, min, 999999999, out);
}

static int pop3_is_hex32(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
		      (s[n] >= 'A' && s[n] <= 'F')))
			return 0;
	return n == 32;
}

static int pop3_args_nums(char *rest, int min, int max, struct pop3_cmd *c)
{
	char *w;
	while ((w = pop3_word(&rest)) != NULL) {
		if (c->nnum >= max || pop3_num(w, c->nnum == 0 ? 1 : 0, &c->num[c->nnum]) < 0)
			return P3E_SYNTAX;
		c->nnum++;
	}
	return c->nnum < min ? P3E_SYNTAX : P3E_OK;
}

static int pop3_args_words(char *rest, int min, int max, struct pop3_cmd *c)
{
	const char *v[2] = { "", "" };
	int n = 0;
	char *w;
	while ((w = pop3_word(&rest)) != NULL) {
		if (n >= max)
			return P3E_SYNTAX;
		if (strlen(w) > POP3_MAXARG && !(c->verb == P3_AUTH && n == 1))
			return P3E_LONG;
		v[n++] = w;
	}
	if (n < min)
		return P3E_SYNTAX;
	c->arg = v[0];
	c->arg2 = v[1];
	return P3E_OK;
}

static int pop3_args(const struct pop3_verbdef *d, char *rest, struct pop3_cmd *c)
{
	switch (d->shape) {
	case SH_NONE:   return pop3_word(&rest) ? P3E_SYNTAX : P3E_OK;
	case SH_OPTNUM: return pop3_args_nums(rest, 0, 1, c);
	case SH_NUM:    return pop3_args_nums(rest, 1, 1, c);
	case SH_TOP:    return pop3_args_nums(rest, 2, 2, c);
	case SH_WORD:   return pop3_args_words(rest, 1, 1, c);
	case SH_AUTH:   return pop3_args_words(rest, 0, 2, c);
	case SH_APOP: {
		int rc = pop3_args_words(rest, 2, 2, c);
		return rc == P3E_OK && !pop3_is_hex32(c->arg2) ? P3E_SYNTAX : rc;
	}
	case SH_REST:
		if (!*rest)
			return P3E_SYNTAX;
		if (strlen(rest) > POP3_MAXARG)
			return P3E_LONG;
		c->arg = rest;
		return P3E_OK;
	}
	return P3E_SYNTAX;
}

int pop3_cmd_parse(char *line, size_t len, enum pop3_state state, struct pop3_cmd *c)
{
	memset(c, 0, sizeof *c);
	c->arg = c->arg2 = "";
	c->verb = P3_UNKNOWN;
	if (len > POP3_MAXLINE || memchr(line, '\0', len))
		return P3E_SYNTAX;
	line[len] = '\0';
	size_t vl = 0;
	while (vl < len && line[vl] != ' ')
		vl++;
	const struct pop3_verbdef *d = NULL;
	for (size_t i = 0; i < POP3_NVERBS && !d; i++)
		if (strlen(pop3_verbs[i].name) == vl && str_ncasecmp(line, pop3_verbs[i].name, vl) == 0)
			d = &pop3_verbs[i];
	if (!d)
		return P3E_UNKNOWN;
	c->verb = d->verb;
	if (!(d->states & state))
		return P3E_STATE;
	/* one blank separates the verb from its arguments (PASS keeps the rest as it is) */
	char *rest = line + vl + (vl < len);
	return pop3_args(d, rest, c);
}
