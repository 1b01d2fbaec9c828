/* smtp_cmd — see smtp_cmd.h. One table: verb, id, argument rule, syntax hint. Verbs are
 * case-insensitive; MAIL/RCPT tolerate blanks after the colon, as most MTAs do. */
#include "mail/smtp_cmd.h"
#include "lib/buf.h"
#include <string.h>

enum smtp_arg {
	ARG_NONE,      /* no argument allowed */
	ARG_ANY,       /* optional free text (NOOP, HELP, QUIT; verbs always refused) */
	ARG_REQ,       /* an argument is required */
	ARG_FROM,      /* "FROM:" then the path */
	ARG_TO,        /* "TO:" then the path */
	ARG_BDAT,      /* chunk-size [SP "LAST"] (RFC 3030) */
};

static const struct smtp_verb {
	const char *verb;
	enum smtp_cmd_id id;
	enum smtp_arg arg;
	const char *syntax;
} smtp_cmd_tab[] = {
	{ "EHLO",     SMTP_CMD_EHLO,     ARG_REQ,  "Syntax: EHLO hostname" },
	{ "HELO",     SMTP_CMD_HELO,     ARG_REQ,  "Syntax: HELO hostname" },
	{ "MAIL",     SMTP_CMD_MAIL,     ARG_FROM, "Syntax: MAIL FROM:<address>" },
	{ "RCPT",     SMTP_CMD_RCPT,     ARG_TO,   "Syntax: RCPT TO:<address>" },
	{ "DATA",     SMTP_CMD_DATA,     ARG_NONE, "Syntax: DATA" },
	{ "RSET",     SMTP_CMD_RSET,     ARG_NONE, "Syntax: RSET" },
	{ "NOOP",     SMTP_CMD_NOOP,     ARG_ANY,  "Syntax: NOOP" },
	{ "QUIT",     SMTP_CMD_QUIT,     ARG_ANY,  "Syntax: QUIT" },
	{ "VRFY",     SMTP_CMD_VRFY,     ARG_REQ,  "Syntax: VRFY address" },
	{ "EXPN",     SMTP_CMD_EXPN,     ARG_REQ,  "Syntax: EXPN list" },
	{ "HELP",     SMTP_CMD_HELP,     ARG_ANY,  "Syntax: HELP [command]" },
	{ "SEND",     SMTP_CMD_SEND,     ARG_ANY,  "Syntax: SEND FROM:<address>" },
	{ "SOML",     SMTP_CMD_SOML,     ARG_ANY,  "Syntax: SOML FROM:<address>" },
	{ "SAML",     SMTP_CMD_SAML,     ARG_ANY,  "Syntax: SAML FROM:<address>" },
	{ "TURN",     SMTP_CMD_TURN,     ARG_ANY,  "Syntax: TURN" },
	{ "ETRN",     SMTP_CMD_ETRN,     ARG_REQ,  "Syntax: ETRN domain" },
	{ "AUTH",     SMTP_CMD_AUTH,     ARG_REQ,  "Syntax: AUTH mechanism [initial-response]" },
	{ "STARTTLS", SMTP_CMD_STARTTLS, ARG_NONE, "Syntax: STARTTLS" },
	{ "BDAT",     SMTP_CMD_BDAT,     ARG_BDAT, "Syntax: BDAT chunk-size [LAST]" },
};
#define SMTP_NVERBS (sizeof smtp_cmd_tab / sizeof smtp_cmd_tab[0])

const char *smtp_cmd_name(enum smtp_cmd_id id)
{
	if (id == SMTP_CMD_NONE)
		return "NONE";
	for (size_t i = 0; i < SMTP_NVERBS; i++)
		if (smtp_cmd_tab[i].id == id)
			return smtp_cmd_tab[i].verb;
	return "UNKNOWN";
}

static int smtp_cmd_is_blank(char c) { return c == ' ' || c == '\t'; }

static int smtp_cmd_fail(struct smtp_cmd *c, int code, const char *esc, const char *text)
{
	c->code = code;
	c->esc = esc;
	c->text = text;
	return -1;
}

static const struct smtp_verb *smtp_cmd_lookup(const char *v, size_t n)
{
	for (size_t i = 0; i < SMTP_NVERBS; i++)
		if (strlen(smtp_cmd_tab[i].verb) == n && str_ncasecmp(v, smtp_cmd_tab[i].verb, n) == 0)
			return &smtp_cmd_tab[i];
	return NULL;
}

/* 1 if a BDAT argument is `digits [SP LAST]` */
static int smtp_cmd_bdat_ok(const char *a)
{
	size_t n = strspn(a, "0123456789");
	if (n == 0 || n > 19)
		return 0;
	a += n;
	if (!*a)
		return 1;
	while (smtp_cmd_is_blank(*a))
		a++;
	return str_casecmp(a, "LAST") == 0;
}

/* 1 if the argument suits the verb's rule; for FROM/TO moves c->arg past the keyword */
static int smtp_cmd_arg_ok(const struct smtp_verb *v, struct smtp_cmd *c)
{
	const char *kw = v->arg == ARG_FROM ? "FROM:" : "TO:";
	switch (v->arg) {
	case ARG_NONE: return *c->arg == '\0';
	case ARG_ANY:  return 1;
	case ARG_REQ:  return *c->arg != '\0';
	case ARG_BDAT: return smtp_cmd_bdat_ok(c->arg);
	case ARG_FROM:
	case ARG_TO:
		if (str_ncasecmp(c->arg, kw, strlen(kw)) != 0)
			return 0;
		c->arg += strlen(kw);
		while (smtp_cmd_is_blank(*c->arg))
			c->arg++;
		return *c->arg != '\0';
	}
	return 0;
}

int smtp_cmd_parse(char *line, size_t len, struct smtp_cmd *c)
{
	size_t i = 0, vs;
	c->id = SMTP_CMD_UNKNOWN;
	c->arg = "";
	c->code = 0;
	c->esc = c->text = NULL;
	if (len > SMTP_CMD_LINE_MAX - 2)
		return smtp_cmd_fail(c, 500, "5.5.2", "Line too long");
	line[len] = '\0';
	while (i < len && smtp_cmd_is_blank(line[i]))
		i++;
	for (vs = i; i < len && !smtp_cmd_is_blank(line[i]); i++)
		;
	const struct smtp_verb *v = smtp_cmd_lookup(line + vs, i - vs);
	if (v)
		c->id = v->id;
	for (size_t k = 0; k < len; k++) {
		unsigned char ch = (unsigned char)line[k];
		if ((ch < 32 && ch != '\t') || ch == 127)
			return smtp_cmd_fail(c, 500, "5.5.2", "Syntax error: bad character in command");
	}
	if (i == vs)
		return smtp_cmd_fail(c, 500, "5.5.2", "Syntax error: empty command");
	if (!v)
		return smtp_cmd_fail(c, 500, "5.5.1", "Command unrecognized");
	while (len > i && smtp_cmd_is_blank(line[len - 1]))
		line[--len] = '\0';
	while (i < len && smtp_cmd_is_blank(line[i]))
		i++;
	c->arg = line + i;
	if (!smtp_cmd_arg_ok(v, c))
		return smtp_cmd_fail(c, 501, "5.5.4", v->syntax);
	return 0;
}
