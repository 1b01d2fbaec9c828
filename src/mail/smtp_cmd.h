/* smtp_cmd — the SMTP server's command line parser: one table of verbs (RFC 5321 and the
 * extensions tern knows) mapping to a command id, the argument rules of each verb, and the
 * 500/501 reply a malformed line earns. Pure: no I/O, no allocation.
 * Owns: the command vocabulary. Trusts: nothing — every line is client input. */
#ifndef TERN_SMTP_CMD_H
#define TERN_SMTP_CMD_H
#include <stddef.h>

enum smtp_cmd_id {
	SMTP_CMD_NONE = 0,     /* not a command: the greeting, an unsolicited 421 */
	SMTP_CMD_UNKNOWN,      /* unrecognised verb or unparseable line */
	SMTP_CMD_EHLO, SMTP_CMD_HELO, SMTP_CMD_MAIL, SMTP_CMD_RCPT, SMTP_CMD_DATA,
	SMTP_CMD_RSET, SMTP_CMD_NOOP, SMTP_CMD_QUIT, SMTP_CMD_VRFY, SMTP_CMD_EXPN,
	SMTP_CMD_HELP, SMTP_CMD_SEND, SMTP_CMD_SOML, SMTP_CMD_SAML, SMTP_CMD_TURN,
	SMTP_CMD_ETRN, SMTP_CMD_AUTH, SMTP_CMD_STARTTLS, SMTP_CMD_BDAT,
	SMTP_CMD_COUNT
};

/* the longest command line accepted, terminator included (RFC 5321 says 512; tolerate more) */
#define SMTP_CMD_LINE_MAX 1000

struct smtp_cmd {
	enum smtp_cmd_id id;   /* set even when the arguments are bad (UNKNOWN if the verb is) */
	const char *arg;       /* into the line, NUL-terminated, blanks trimmed; MAIL/RCPT: the
	                          text after "FROM:"/"TO:"; "" when none */
	int code;              /* 0 parsed; else the reply: 500 (line) or 501 (arguments) */
	const char *esc;       /* enhanced status for the error reply: 5.5.1, 5.5.2 or 5.5.4 */
	const char *text;      /* error reply text */
};

/* Parse one command line of len octets, terminator (CRLF or LF) already removed; line[len]
 * must be writable (the parser NUL-terminates the argument in place). Returns 0, or -1 with
 * c->code/esc/text set. */
int smtp_cmd_parse(char *line, size_t len, struct smtp_cmd *c);
/* the verb's name ("MAIL"), "NONE" or "UNKNOWN" */
const char *smtp_cmd_name(enum smtp_cmd_id id);
#endif
