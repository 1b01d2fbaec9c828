/* test_pop3_cmd — the POP3 command parser (both states), table-driven. */
#include "t.h"
#include "mail/pop3_cmd.h"

struct pcase {
	const char *line;
	enum pop3_state st;
	int perr;
	enum pop3_verb verb;
	int nnum;
	uint64_t n1, n2;
	const char *arg, *arg2;
};

static const struct pcase pcases[] = {
	{ "USER joe", POP3_AUTHZ, P3E_OK, P3_USER, 0, 0, 0, "joe", "" },
	{ "user joe", POP3_AUTHZ, P3E_OK, P3_USER, 0, 0, 0, "joe", "" },
	{ "USER", POP3_AUTHZ, P3E_SYNTAX, P3_USER, 0, 0, 0, "", "" },
	{ "USER joe ann", POP3_AUTHZ, P3E_SYNTAX, P3_USER, 0, 0, 0, "", "" },
	{ "PASS secret with blanks ", POP3_AUTHZ, P3E_OK, P3_PASS, 0, 0, 0, "secret with blanks ", "" },
	{ "PASS  x", POP3_AUTHZ, P3E_OK, P3_PASS, 0, 0, 0, " x", "" },
	{ "PASS", POP3_AUTHZ, P3E_SYNTAX, P3_PASS, 0, 0, 0, "", "" },
	{ "PASS ", POP3_AUTHZ, P3E_SYNTAX, P3_PASS, 0, 0, 0, "", "" },
	{ "APOP joe c4c9334bac560ecc979e58001b3e22fb", POP3_AUTHZ, P3E_OK, P3_APOP, 0, 0, 0,
	  "joe", "c4c9334bac560ecc979e58001b3e22fb" },
	{ "APOP joe c4c9334bac560ecc979e58001b3e22f", POP3_AUTHZ, P3E_SYNTAX, P3_APOP, 0, 0, 0, "", "" },
	{ "APOP joe c4c9334bac560ecc979e58001b3e22fz", POP3_AUTHZ, P3E_SYNTAX, P3_APOP, 0, 0, 0, "", "" },
	{ "APOP joe", POP3_AUTHZ, P3E_SYNTAX, P3_APOP, 0, 0, 0, "", "" },
	{ "AUTH", POP3_AUTHZ, P3E_OK, P3_AUTH, 0, 0, 0, "", "" },
	{ "AUTH PLAIN", POP3_AUTHZ, P3E_OK, P3_AUTH, 0, 0, 0, "PLAIN", "" },
	{ "AUTH PLAIN AGpvZQBzZWNyZXQ=", POP3_AUTHZ, P3E_OK, P3_AUTH, 0, 0, 0, "PLAIN", "AGpvZQBzZWNyZXQ=" },
	{ "AUTH PLAIN a b", POP3_AUTHZ, P3E_SYNTAX, P3_AUTH, 0, 0, 0, "", "" },
	{ "CAPA", POP3_AUTHZ, P3E_OK, P3_CAPA, 0, 0, 0, "", "" },
	{ "CAPA", POP3_TRANS, P3E_OK, P3_CAPA, 0, 0, 0, "", "" },
	{ "CAPA x", POP3_AUTHZ, P3E_SYNTAX, P3_CAPA, 0, 0, 0, "", "" },
	{ "STLS", POP3_AUTHZ, P3E_OK, P3_STLS, 0, 0, 0, "", "" },
	{ "STLS", POP3_TRANS, P3E_STATE, P3_STLS, 0, 0, 0, "", "" },
	{ "QUIT", POP3_AUTHZ, P3E_OK, P3_QUIT, 0, 0, 0, "", "" },
	{ "quit", POP3_TRANS, P3E_OK, P3_QUIT, 0, 0, 0, "", "" },
	{ "STAT", POP3_TRANS, P3E_OK, P3_STAT, 0, 0, 0, "", "" },
	{ "STAT", POP3_AUTHZ, P3E_STATE, P3_STAT, 0, 0, 0, "", "" },
	{ "USER joe", POP3_TRANS, P3E_STATE, P3_USER, 0, 0, 0, "", "" },
	{ "LIST", POP3_TRANS, P3E_OK, P3_LIST, 0, 0, 0, "", "" },
	{ "LIST 3", POP3_TRANS, P3E_OK, P3_LIST, 1, 3, 0, "", "" },
	{ "LIST 0", POP3_TRANS, P3E_SYNTAX, P3_LIST, 0, 0, 0, "", "" },
	{ "LIST -1", POP3_TRANS, P3E_SYNTAX, P3_LIST, 0, 0, 0, "", "" },
	{ "LIST +1", POP3_TRANS, P3E_SYNTAX, P3_LIST, 0, 0, 0, "", "" },
	{ "LIST 1 2", POP3_TRANS, P3E_SYNTAX, P3_LIST, 0, 0, 0, "", "" },
	{ "LIST 99999999999999999999", POP3_TRANS, P3E_SYNTAX, P3_LIST, 0, 0, 0, "", "" },
	{ "UIDL 7", POP3_TRANS, P3E_OK, P3_UIDL, 1, 7, 0, "", "" },
	{ "RETR 1", POP3_TRANS, P3E_OK, P3_RETR, 1, 1, 0, "", "" },
	{ "RETR", POP3_TRANS, P3E_SYNTAX, P3_RETR, 0, 0, 0, "", "" },
	{ "RETR x", POP3_TRANS, P3E_SYNTAX, P3_RETR, 0, 0, 0, "", "" },
	{ "RETR 1x", POP3_TRANS, P3E_SYNTAX, P3_RETR, 0, 0, 0, "", "" },
	{ "DELE 12", POP3_TRANS, P3E_OK, P3_DELE, 1, 12, 0, "", "" },
	{ "TOP 1 0", POP3_TRANS, P3E_OK, P3_TOP, 2, 1, 0, "", "" },
	{ "TOP 2 10", POP3_TRANS, P3E_OK, P3_TOP, 2, 2, 10, "", "" },
	{ "TOP 2", POP3_TRANS, P3E_SYNTAX, P3_TOP, 0, 0, 0, "", "" },
	{ "TOP 0 1", POP3_TRANS, P3E_SYNTAX, P3_TOP, 0, 0, 0, "", "" },
	{ "NOOP", POP3_TRANS, P3E_OK, P3_NOOP, 0, 0, 0, "", "" },
	{ "RSET", POP3_TRANS, P3E_OK, P3_RSET, 0, 0, 0, "", "" },
	{ "LAST", POP3_TRANS, P3E_OK, P3_LAST, 0, 0, 0, "", "" },
	{ "XYZZY", POP3_TRANS, P3E_UNKNOWN, P3_UNKNOWN, 0, 0, 0, "", "" },
	{ "", POP3_AUTHZ, P3E_UNKNOWN, P3_UNKNOWN, 0, 0, 0, "", "" },
	{ " USER joe", POP3_AUTHZ, P3E_UNKNOWN, P3_UNKNOWN, 0, 0, 0, "", "" },
	{ "USERX joe", POP3_AUTHZ, P3E_UNKNOWN, P3_UNKNOWN, 0, 0, 0, "", "" },
	{ "RET", POP3_TRANS, P3E_UNKNOWN, P3_UNKNOWN, 0, 0, 0, "", "" },
};

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
		const struct pcase *k = &pcases[i];
		char line[POP3_MAXLINE + 1];
		struct pop3_cmd c;
		size_t n = strlen(k->line);
		memcpy(line, k->line, n + 1);
		int rc = pop3_cmd_parse(line, n, k->st, &c);
		if (rc != k->perr || c.verb != k->verb)
			fprintf(stderr, "case \"%s\"\n", k->line);
		T_EQ_INT(rc, k->perr);
		T_EQ_INT(c.verb, k->verb);
		if (rc != P3E_OK)
			continue;
		T_EQ_INT(c.nnum, k->nnum);
		T_EQ_INT(c.num[0], k->n1);
		T_EQ_INT(c.num[1], k->n2);
		T_EQ_STR(c.arg, k->arg);
		T_EQ_STR(c.arg2, k->arg2);
	}
}

static void test_limits(void)
{
	char line[POP3_MAXLINE + 8];
	struct pop3_cmd c;
	memcpy(line, "USER ", 5);
	memset(line + 5, 'a', 256);
	T_EQ_INT(pop3_cmd_parse(line, 5 + 256, POP3_AUTHZ, &c), P3E_LONG);
	memset(line + 5, 'a', 255);
	T_EQ_INT(pop3_cmd_parse(line, 5 + 255, POP3_AUTHZ, &c), P3E_OK);
	memset(line, 'x', POP3_MAXLINE + 1);
	T_EQ_INT(pop3_cmd_parse(line, POP3_MAXLINE + 1, POP3_AUTHZ, &c), P3E_SYNTAX);
	memcpy(line, "PASS a\0b", 8);
	T_EQ_INT(pop3_cmd_parse(line, 8, POP3_AUTHZ, &c), P3E_SYNTAX);
	/* a long SASL initial response is allowed (the line limit bounds it) */
	memcpy(line, "AUTH PLAIN ", 11);
	memset(line + 11, 'A', 400);
	T_EQ_INT(pop3_cmd_parse(line, 411, POP3_AUTHZ, &c), P3E_OK);
	T_EQ_STR(pop3_cmd_name(P3_RETR), "RETR");
	T_EQ_STR(pop3_cmd_error(P3E_UNKNOWN), "unknown command");
}

static void run(void)
{
	test_parse();
	test_limits();
}

T_MAIN(run)
