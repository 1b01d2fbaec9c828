/* test_smtp_cmd — table-driven cases for mail/smtp_cmd (verbs, arguments, 500/501 replies)
 * and mail/smtp_reply (the command–reply table of seed 001 and later RFCs). */
#include "t.h"
#include "mail/smtp_cmd.h"
#include "mail/smtp_reply.h"

static const struct {
	const char *line;
	int rc;
	enum smtp_cmd_id id;
	const char *arg;      /* on success */
	int code;             /* on failure */
	const char *esc;
} cases[] = {
	{ "EHLO foo", 0, SMTP_CMD_EHLO, "foo", 0, NULL },
	{ "ehlo foo.example ", 0, SMTP_CMD_EHLO, "foo.example", 0, NULL },
	{ "EhLo [127.0.0.1]", 0, SMTP_CMD_EHLO, "[127.0.0.1]", 0, NULL },
	{ "EHLO", -1, SMTP_CMD_EHLO, NULL, 501, "5.5.4" },
	{ "EHLO   ", -1, SMTP_CMD_EHLO, NULL, 501, "5.5.4" },
	{ "HELO  x", 0, SMTP_CMD_HELO, "x", 0, NULL },
	{ "HELO a b", 0, SMTP_CMD_HELO, "a b", 0, NULL },
	{ "MAIL FROM:<a@b>", 0, SMTP_CMD_MAIL, "<a@b>", 0, NULL },
	{ "mail from:<a@b> SIZE=10", 0, SMTP_CMD_MAIL, "<a@b> SIZE=10", 0, NULL },
	{ "MAIL FROM: <a@b>", 0, SMTP_CMD_MAIL, "<a@b>", 0, NULL },
	{ "MAIL FROM:\t<a@b>", 0, SMTP_CMD_MAIL, "<a@b>", 0, NULL },
	{ "MAIL  FROM:<>", 0, SMTP_CMD_MAIL, "<>", 0, NULL },
	{ "MAIL FROM:", -1, SMTP_CMD_MAIL, NULL, 501, "5.5.4" },
	{ "MAIL FROM:   ", -1, SMTP_CMD_MAIL, NULL, 501, "5.5.4" },
	{ "MAIL FROM <a@b>", -1, SMTP_CMD_MAIL, NULL, 501, "5.5.4" },
	{ "MAIL TO:<a@b>", -1, SMTP_CMD_MAIL, NULL, 501, "5.5.4" },
	{ "MAIL", -1, SMTP_CMD_MAIL, NULL, 501, "5.5.4" },
	{ "MAILFROM:<a@b>", -1, SMTP_CMD_UNKNOWN, NULL, 500, "5.5.1" },
	{ "RCPT TO:<a@b>", 0, SMTP_CMD_RCPT, "<a@b>", 0, NULL },
	{ "RCPT TO:  <a@b>", 0, SMTP_CMD_RCPT, "<a@b>", 0, NULL },
	{ "rcpt to:<postmaster>", 0, SMTP_CMD_RCPT, "<postmaster>", 0, NULL },
	{ "Rcpt To:<a@b> NOTIFY=NEVER", 0, SMTP_CMD_RCPT, "<a@b> NOTIFY=NEVER", 0, NULL },
	{ "RCPT FROM:<a@b>", -1, SMTP_CMD_RCPT, NULL, 501, "5.5.4" },
	{ "RCPT TO:", -1, SMTP_CMD_RCPT, NULL, 501, "5.5.4" },
	{ "RCPT", -1, SMTP_CMD_RCPT, NULL, 501, "5.5.4" },
	{ "DATA", 0, SMTP_CMD_DATA, "", 0, NULL },
	{ "data", 0, SMTP_CMD_DATA, "", 0, NULL },
	{ "DATA  ", 0, SMTP_CMD_DATA, "", 0, NULL },
	{ "DATA x", -1, SMTP_CMD_DATA, NULL, 501, "5.5.4" },
	{ "RSET", 0, SMTP_CMD_RSET, "", 0, NULL },
	{ "RSET x", -1, SMTP_CMD_RSET, NULL, 501, "5.5.4" },
	{ "NOOP", 0, SMTP_CMD_NOOP, "", 0, NULL },
	{ "NOOP hello there", 0, SMTP_CMD_NOOP, "hello there", 0, NULL },
	{ "QUIT", 0, SMTP_CMD_QUIT, "", 0, NULL },
	{ "quit now", 0, SMTP_CMD_QUIT, "now", 0, NULL },
	{ "VRFY", -1, SMTP_CMD_VRFY, NULL, 501, "5.5.4" },
	{ "VRFY user", 0, SMTP_CMD_VRFY, "user", 0, NULL },
	{ "EXPN list", 0, SMTP_CMD_EXPN, "list", 0, NULL },
	{ "EXPN", -1, SMTP_CMD_EXPN, NULL, 501, "5.5.4" },
	{ "HELP", 0, SMTP_CMD_HELP, "", 0, NULL },
	{ "HELP MAIL", 0, SMTP_CMD_HELP, "MAIL", 0, NULL },
	{ "SEND FROM:<a@b>", 0, SMTP_CMD_SEND, "FROM:<a@b>", 0, NULL },
	{ "SOML FROM:<a@b>", 0, SMTP_CMD_SOML, "FROM:<a@b>", 0, NULL },
	{ "SAML", 0, SMTP_CMD_SAML, "", 0, NULL },
	{ "TURN", 0, SMTP_CMD_TURN, "", 0, NULL },
	{ "ETRN example.com", 0, SMTP_CMD_ETRN, "example.com", 0, NULL },
	{ "ETRN", -1, SMTP_CMD_ETRN, NULL, 501, "5.5.4" },
	{ "AUTH PLAIN AGFAYg==", 0, SMTP_CMD_AUTH, "PLAIN AGFAYg==", 0, NULL },
	{ "AUTH", -1, SMTP_CMD_AUTH, NULL, 501, "5.5.4" },
	{ "STARTTLS", 0, SMTP_CMD_STARTTLS, "", 0, NULL },
	{ "starttls x", -1, SMTP_CMD_STARTTLS, NULL, 501, "5.5.4" },
	{ "BDAT 100", 0, SMTP_CMD_BDAT, "100", 0, NULL },
	{ "BDAT 0 LAST", 0, SMTP_CMD_BDAT, "0 LAST", 0, NULL },
	{ "bdat 5 last", 0, SMTP_CMD_BDAT, "5 last", 0, NULL },
	{ "BDAT", -1, SMTP_CMD_BDAT, NULL, 501, "5.5.4" },
	{ "BDAT x", -1, SMTP_CMD_BDAT, NULL, 501, "5.5.4" },
	{ "BDAT 10 FIRST", -1, SMTP_CMD_BDAT, NULL, 501, "5.5.4" },
	{ "BDAT 99999999999999999999", -1, SMTP_CMD_BDAT, NULL, 501, "5.5.4" },
	{ "", -1, SMTP_CMD_UNKNOWN, NULL, 500, "5.5.2" },
	{ "   ", -1, SMTP_CMD_UNKNOWN, NULL, 500, "5.5.2" },
	{ "FOO bar", -1, SMTP_CMD_UNKNOWN, NULL, 500, "5.5.1" },
	{ "GET / HTTP/1.0", -1, SMTP_CMD_UNKNOWN, NULL, 500, "5.5.1" },
	{ "EHLOX foo", -1, SMTP_CMD_UNKNOWN, NULL, 500, "5.5.1" },
	{ "\tNOOP", 0, SMTP_CMD_NOOP, "", 0, NULL },
	{ "noop\t", 0, SMTP_CMD_NOOP, "", 0, NULL },
	{ "NOOP\r", -1, SMTP_CMD_UNKNOWN, NULL, 500, "5.5.2" },
	{ "NOOP \r", -1, SMTP_CMD_NOOP, NULL, 500, "5.5.2" },
	{ "MAIL FROM:<a@b>\x1b", -1, SMTP_CMD_MAIL, NULL, 500, "5.5.2" },
	{ "HELO x\x7f", -1, SMTP_CMD_HELO, NULL, 500, "5.5.2" },
	{ "HELO \xc3\xa9t\xc3\xa9", 0, SMTP_CMD_HELO, "\xc3\xa9t\xc3\xa9", 0, NULL },
};

static void run_cases(void)
{
	char line[SMTP_CMD_LINE_MAX + 8];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct smtp_cmd c;
		size_t n = strlen(cases[i].line);
		memcpy(line, cases[i].line, n + 1);
		int rc = smtp_cmd_parse(line, n, &c);
		if (rc != cases[i].rc || c.id != cases[i].id)
			fprintf(stderr, "case %zu: \"%s\"\n", i, cases[i].line);
		T_EQ_INT(rc, cases[i].rc);
		T_EQ_INT(c.id, cases[i].id);
		if (rc == 0 && cases[i].rc == 0) {
			T_EQ_STR(c.arg, cases[i].arg);
			T_EQ_INT(c.code, 0);
		} else if (rc < 0 && cases[i].rc < 0) {
			T_EQ_INT(c.code, cases[i].code);
			T_EQ_STR(c.esc, cases[i].esc);
			T_CHECK(c.text && *c.text);
		}
	}
}

static void run_binary(void)
{
	char line[64];
	struct smtp_cmd c;
	memcpy(line, "MAIL FROM:<a@b>\0x", 17);        /* an embedded NUL */
	T_EQ_INT(smtp_cmd_parse(line, 17, &c), -1);
	T_EQ_INT(c.code, 500);
	memcpy(line, "\0", 1);
	T_EQ_INT(smtp_cmd_parse(line, 1, &c), -1);
	T_EQ_INT(c.id, SMTP_CMD_UNKNOWN);

	char big[SMTP_CMD_LINE_MAX + 8];
	memcpy(big, "NOOP ", 5);
	memset(big + 5, 'x', sizeof big - 5);
	T_EQ_INT(smtp_cmd_parse(big, SMTP_CMD_LINE_MAX - 2, &c), 0);     /* 998 + CRLF = 1000 */
	memset(big + 5, 'x', sizeof big - 5);
	T_EQ_INT(smtp_cmd_parse(big, SMTP_CMD_LINE_MAX - 1, &c), -1);
	T_EQ_INT(c.code, 500);
	T_EQ_STR(c.esc, "5.5.2");
}

static void run_names(void)
{
	T_EQ_STR(smtp_cmd_name(SMTP_CMD_MAIL), "MAIL");
	T_EQ_STR(smtp_cmd_name(SMTP_CMD_STARTTLS), "STARTTLS");
	T_EQ_STR(smtp_cmd_name(SMTP_CMD_NONE), "NONE");
	T_EQ_STR(smtp_cmd_name(SMTP_CMD_UNKNOWN), "UNKNOWN");
	for (int id = SMTP_CMD_EHLO; id < SMTP_CMD_COUNT; id++)
		T_CHECK(strcmp(smtp_cmd_name(id), "UNKNOWN") != 0);
}

/* seed 001's table, row by row, and what tern adds from later RFCs */
static const struct {
	enum smtp_cmd_id id;
	int code;
	int allowed;
	int seed;
} replies[] = {
	{ SMTP_CMD_NONE, 220, 1, 1 }, { SMTP_CMD_NONE, 421, 1, 1 }, { SMTP_CMD_NONE, 250, 0, 0 },
	{ SMTP_CMD_HELO, 250, 1, 1 }, { SMTP_CMD_HELO, 501, 1, 1 }, { SMTP_CMD_HELO, 503, 0, 0 },
	{ SMTP_CMD_EHLO, 250, 1, 0 }, { SMTP_CMD_EHLO, 502, 1, 0 },
	{ SMTP_CMD_MAIL, 250, 1, 1 }, { SMTP_CMD_MAIL, 552, 1, 1 }, { SMTP_CMD_MAIL, 451, 1, 1 },
	{ SMTP_CMD_MAIL, 452, 1, 1 }, { SMTP_CMD_MAIL, 500, 1, 1 }, { SMTP_CMD_MAIL, 501, 1, 1 },
	{ SMTP_CMD_MAIL, 421, 1, 1 }, { SMTP_CMD_MAIL, 503, 1, 0 }, { SMTP_CMD_MAIL, 553, 1, 0 },
	{ SMTP_CMD_MAIL, 555, 1, 0 }, { SMTP_CMD_MAIL, 354, 0, 0 }, { SMTP_CMD_MAIL, 550, 1, 0 },
	{ SMTP_CMD_RCPT, 250, 1, 1 }, { SMTP_CMD_RCPT, 251, 1, 1 }, { SMTP_CMD_RCPT, 550, 1, 1 },
	{ SMTP_CMD_RCPT, 551, 1, 1 }, { SMTP_CMD_RCPT, 552, 1, 1 }, { SMTP_CMD_RCPT, 553, 1, 1 },
	{ SMTP_CMD_RCPT, 450, 1, 1 }, { SMTP_CMD_RCPT, 451, 1, 1 }, { SMTP_CMD_RCPT, 452, 1, 1 },
	{ SMTP_CMD_RCPT, 500, 1, 1 }, { SMTP_CMD_RCPT, 501, 1, 1 }, { SMTP_CMD_RCPT, 503, 1, 1 },
	{ SMTP_CMD_RCPT, 421, 1, 1 }, { SMTP_CMD_RCPT, 354, 0, 0 }, { SMTP_CMD_RCPT, 221, 0, 0 },
	{ SMTP_CMD_DATA, 354, 1, 1 }, { SMTP_CMD_DATA, 250, 1, 1 }, { SMTP_CMD_DATA, 552, 1, 1 },
	{ SMTP_CMD_DATA, 554, 1, 1 }, { SMTP_CMD_DATA, 451, 1, 1 }, { SMTP_CMD_DATA, 452, 1, 1 },
	{ SMTP_CMD_DATA, 503, 1, 1 }, { SMTP_CMD_DATA, 550, 0, 0 }, { SMTP_CMD_DATA, 553, 0, 0 },
	{ SMTP_CMD_RSET, 250, 1, 1 }, { SMTP_CMD_RSET, 504, 1, 1 }, { SMTP_CMD_RSET, 503, 0, 0 },
	{ SMTP_CMD_SEND, 502, 1, 1 }, { SMTP_CMD_SOML, 502, 1, 1 }, { SMTP_CMD_SAML, 502, 1, 1 },
	{ SMTP_CMD_VRFY, 250, 1, 1 }, { SMTP_CMD_VRFY, 252, 1, 0 }, { SMTP_CMD_VRFY, 553, 1, 1 },
	{ SMTP_CMD_VRFY, 451, 0, 0 },
	{ SMTP_CMD_EXPN, 502, 1, 1 }, { SMTP_CMD_EXPN, 252, 1, 0 }, { SMTP_CMD_EXPN, 551, 0, 0 },
	{ SMTP_CMD_HELP, 211, 1, 1 }, { SMTP_CMD_HELP, 214, 1, 1 }, { SMTP_CMD_HELP, 250, 0, 0 },
	{ SMTP_CMD_NOOP, 250, 1, 1 }, { SMTP_CMD_NOOP, 500, 1, 1 }, { SMTP_CMD_NOOP, 501, 0, 0 },
	{ SMTP_CMD_QUIT, 221, 1, 1 }, { SMTP_CMD_QUIT, 500, 1, 1 }, { SMTP_CMD_QUIT, 421, 0, 0 },
	{ SMTP_CMD_QUIT, 501, 0, 0 },
	{ SMTP_CMD_TURN, 502, 1, 1 }, { SMTP_CMD_TURN, 250, 1, 1 }, { SMTP_CMD_TURN, 421, 0, 0 },
	{ SMTP_CMD_ETRN, 502, 1, 0 }, { SMTP_CMD_AUTH, 502, 1, 0 }, { SMTP_CMD_AUTH, 235, 1, 0 },
	{ SMTP_CMD_STARTTLS, 502, 1, 0 }, { SMTP_CMD_STARTTLS, 220, 1, 0 },
	{ SMTP_CMD_BDAT, 502, 1, 0 }, { SMTP_CMD_BDAT, 354, 0, 0 },
	{ SMTP_CMD_UNKNOWN, 500, 1, 1 }, { SMTP_CMD_UNKNOWN, 501, 0, 0 },
	{ SMTP_CMD_UNKNOWN, 502, 0, 0 },
};

static void run_replies(void)
{
	for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
		if (smtp_reply_allowed(replies[i].id, replies[i].code) != replies[i].allowed)
			fprintf(stderr, "reply row %zu: %s %d\n", i, smtp_cmd_name(replies[i].id),
			    replies[i].code);
		T_EQ_INT(smtp_reply_allowed(replies[i].id, replies[i].code), replies[i].allowed);
		if (smtp_reply_in_seed(replies[i].id, replies[i].code) != replies[i].seed)
			fprintf(stderr, "seed row %zu\n", i);
		T_EQ_INT(smtp_reply_in_seed(replies[i].id, replies[i].code), replies[i].seed);
	}
	/* every command can be told 500 (line too long, bad characters) */
	for (int id = SMTP_CMD_UNKNOWN; id < SMTP_CMD_COUNT; id++)
		T_EQ_INT(smtp_reply_allowed(id, 500), 1);
	/* every command but QUIT/TURN can get an unsolicited 421 */
	for (int id = SMTP_CMD_NONE; id < SMTP_CMD_COUNT; id++)
		T_EQ_INT(smtp_reply_allowed(id, 421), id != SMTP_CMD_QUIT && id != SMTP_CMD_TURN);
	/* the codes the session actually sends, per command */
	static const struct { enum smtp_cmd_id id; int code; } used[] = {
		{ SMTP_CMD_MAIL, 250 }, { SMTP_CMD_MAIL, 553 }, { SMTP_CMD_MAIL, 451 },
		{ SMTP_CMD_MAIL, 552 }, { SMTP_CMD_MAIL, 503 }, { SMTP_CMD_MAIL, 501 },
		{ SMTP_CMD_MAIL, 555 },
		{ SMTP_CMD_RCPT, 250 }, { SMTP_CMD_RCPT, 550 }, { SMTP_CMD_RCPT, 553 },
		{ SMTP_CMD_RCPT, 451 }, { SMTP_CMD_RCPT, 452 }, { SMTP_CMD_RCPT, 503 },
		{ SMTP_CMD_RCPT, 501 }, { SMTP_CMD_RCPT, 555 },
		{ SMTP_CMD_DATA, 354 }, { SMTP_CMD_DATA, 250 }, { SMTP_CMD_DATA, 451 },
		{ SMTP_CMD_DATA, 452 }, { SMTP_CMD_DATA, 500 }, { SMTP_CMD_DATA, 552 },
		{ SMTP_CMD_DATA, 554 }, { SMTP_CMD_DATA, 503 },
		{ SMTP_CMD_VRFY, 252 }, { SMTP_CMD_VRFY, 250 }, { SMTP_CMD_VRFY, 550 },
		{ SMTP_CMD_EXPN, 502 }, { SMTP_CMD_EXPN, 252 }, { SMTP_CMD_HELP, 214 },
		{ SMTP_CMD_QUIT, 221 }, { SMTP_CMD_NOOP, 250 }, { SMTP_CMD_RSET, 250 },
		{ SMTP_CMD_EHLO, 250 }, { SMTP_CMD_HELO, 250 }, { SMTP_CMD_NONE, 220 },
	};
	for (size_t i = 0; i < sizeof used / sizeof used[0]; i++)
		T_EQ_INT(smtp_reply_check(used[i].id, used[i].code), 1);
	T_EQ_INT(smtp_reply_check(SMTP_CMD_QUIT, 250), 0);    /* logged, not strict: no abort */
}

static void run(void)
{
	smtp_reply_set_strict(0);
	run_cases();
	run_binary();
	run_names();
	run_replies();
}

T_MAIN(run)
