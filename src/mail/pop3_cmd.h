/* pop3_cmd — the POP3 command line parser (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH
 * RFC 5034: the command only; its exchange is src/mail/sasl.c's) of both halves of tern's
 * POP3 server: the AUTHORIZATION state that the smtp role's session speaks (USER PASS APOP
 * AUTH CAPA STLS QUIT) and the TRANSACTION state that the per-user worker tern-pop3 speaks
 * (STAT LIST UIDL TOP RETR DELE NOOP RSET LAST QUIT).
 * Owns: the command table (verb, states, argument shape). Trusts: nothing in the line. */
#ifndef TERN_POP3_CMD_H
#define TERN_POP3_CMD_H
#include <stddef.h>
#include <stdint.h>

#define POP3_MAXLINE 1024         /* octets of a command line, CRLF excluded (RFC 2449: 255
                                     for commands; AUTH responses may be longer) */
#define POP3_MAXARG  255          /* one argument (RFC 2449) */

enum pop3_state { POP3_AUTHZ = 1, POP3_TRANS = 2 };

enum pop3_verb {
	P3_NONE = 0, P3_USER, P3_PASS, P3_APOP, P3_AUTH, P3_CAPA, P3_STLS, P3_QUIT,
	P3_STAT, P3_LIST, P3_UIDL, P3_TOP, P3_RETR, P3_DELE, P3_NOOP, P3_RSET, P3_LAST,
	P3_UNKNOWN, P3_VERB_COUNT
};

enum pop3_perr {
	P3E_OK = 0,
	P3E_UNKNOWN,              /* no such command */
	P3E_STATE,                /* a command of the other state */
	P3E_SYNTAX,               /* arguments missing, extra or malformed */
	P3E_LONG,                 /* an argument over POP3_MAXARG */
};

struct pop3_cmd {
	enum pop3_verb verb;
	int nnum;                 /* numbers given: LIST/UIDL 0 or 1; RETR/DELE 1; TOP 2 */
	uint64_t num[2];          /* message number (>= 1), TOP's line count (>= 0) */
	const char *arg;          /* USER name, PASS password (the rest of the line, blanks
	                             included), APOP name, AUTH mechanism; NUL-terminated inside
	                             the line; "" if none */
	const char *arg2;         /* APOP digest (32 lowercase hex), AUTH initial response; or "" */
};

/* Parse one line (its CRLF already removed) of length len; the line is modified (arguments
 * are NUL-terminated in place). state: the session's state (POP3_AUTHZ or POP3_TRANS).
 * Returns P3E_OK or an error; c->verb is set whenever the verb was recognised. */
int pop3_cmd_parse(char *line, size_t len, enum pop3_state state, struct pop3_cmd *c);
const char *pop3_cmd_name(enum pop3_verb v);
const char *pop3_cmd_error(int perr);     /* the text after "-ERR " */

#endif
