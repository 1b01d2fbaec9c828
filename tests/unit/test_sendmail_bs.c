/* test_sendmail_bs — table-driven cases for mail/sendmail_bs: the `sendmail -bs` dialogue
 * (replies, sequence rules, the envelope it builds), the DATA line rule, the header scan and
 * the replies to a failed maildrop write. Every reply code is checked against smtp_reply's
 * table for its command. */
#include "t.h"
#include "mail/sendmail_bs.h"
#include "mail/smtp_cmd.h"
#include "mail/smtp_reply.h"
#include <errno.h>

/* --- dialogues: each step is a command line, the expected start of the reply and action. A
 * NULL line ends a dialogue; a dialogue starts with a fresh state. */
struct step {
	const char *line;
	const char *reply;     /* prefix of the whole reply text */
	int action;
};

#define END { NULL, NULL, 0 }
#define R SENDMAIL_BS_REPLY
#define D SENDMAIL_BS_DATA
#define Q SENDMAIL_BS_QUIT

static const struct step dialogues[] = {
	/* the whole happy path, and what a successful commit resets */
	{ "EHLO client.example", "250-me.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
	  "250 ENHANCEDSTATUSCODES\r\n", R },
	{ "MAIL FROM:<a@B.Example>", "250 2.1.0 Ok\r\n", R },
	{ "RCPT TO:<joe@localhost>", "250 2.1.5 Ok\r\n", R },
	{ "RCPT TO:<anyone@far.away.example>", "250 2.1.5 Ok\r\n", R },
	{ "DATA", "", D },
	{ "QUIT", "221 2.0.0 Bye\r\n", Q },
	END,
	/* HELO is not required; the sequence is */
	{ "RCPT TO:<a@b>", "503 5.5.1 Need MAIL", R },
	{ "DATA", "503 5.5.1 Need MAIL", R },
	{ "MAIL FROM:<>", "250 2.1.0", R },
	{ "MAIL FROM:<x@y>", "503 5.5.1 Nested MAIL", R },
	{ "DATA", "503 5.5.1 Need RCPT", R },
	{ "RSET", "250 2.0.0 Ok", R },
	{ "RCPT TO:<a@b>", "503 5.5.1 Need MAIL", R },
	{ "HELO h", "250 2.0.0 me.example\r\n", R },
	{ "mail from: a@b", "250 2.1.0", R },            /* no brackets, lower case */
	{ "EHLO again", "250-me.example", R },           /* EHLO resets the transaction */
	{ "RCPT TO:<a@b>", "503 5.5.1", R },
	END,
	/* syntax */
	{ "MAIL FROM:<a b@c>", "501 5.1.7 Bad sender address syntax", R },
	{ "MAIL FROM:<\xc3\xa9@c>", "553 5.6.7", R },
	{ "MAIL FROM:<a@b> SIZE=12 BODY=8BITMIME", "250 2.1.0", R },
	{ "RCPT TO:<a@b> NOTIFY=NEVER", "555 5.5.4 Unsupported option", R },
	{ "RCPT TO:<@>", "501 5.1.3", R },
	{ "RCPT TO:", "501 5.5.4 Syntax: RCPT", R },
	{ "RCPT TO:<postmaster>", "250 2.1.5", R },
	{ "RCPT TO:<a@[127.0.0.1]>", "250 2.1.5", R },
	{ "DATA x", "501 5.5.4 Syntax: DATA", R },
	{ "DATA", "", D },
	END,
	{ "MAIL FROM:<a@b> SIZE=x", "501 5.5.4 Bad SIZE", R },
	{ "MAIL FROM:<a@b> BODY=BINARYMIME", "501 5.5.4 Unsupported BODY", R },
	{ "MAIL FROM:<a@b> AUTH=<>", "555 5.5.4 Unsupported option: AUTH", R },
	{ "MAIL FROM:<a@b>", "250 2.1.0", R },
	END,
	/* the others */
	{ "NOOP", "250 2.0.0 Ok", R },
	{ "NOOP anything", "250 2.0.0 Ok", R },
	{ "VRFY joe", "252 2.1.5", R },
	{ "EXPN list", "502 5.5.1 Command not implemented", R },
	{ "HELP", "502 5.5.1", R },
	{ "ETRN example.org", "502 5.5.1", R },
	{ "STARTTLS", "502 5.5.1", R },
	{ "AUTH PLAIN", "502 5.5.1", R },
	{ "BDAT 10 LAST", "502 5.5.1", R },
	{ "BDAT x", "502 5.5.1", R },                      /* not offered: 502 before 501 */
	{ "TURN", "502 5.5.1", R },
	{ "XYZZY", "500 5.5.1 Command unrecognized", R },
	{ "", "500 5.5.2", R },
	{ "RSET now", "501 5.5.4", R },
	{ "MAIL FROM:<a@b>\x01", "500 5.5.2", R },
	{ "QUIT bye", "221 2.0.0", Q },
	END,
};

static void run_dialogues(void)
{
	size_t i = 0, n = sizeof dialogues / sizeof dialogues[0];
	while (i < n) {
		struct sendmail_bs s;
		struct buf out;
		sendmail_bs_init(&s, "me.example");
		buf_init(&out);
		for (; i < n && dialogues[i].line; i++) {
			char line[SMTP_CMD_LINE_MAX + 1], copy[SMTP_CMD_LINE_MAX + 1];
			struct smtp_cmd c;
			size_t len = strlen(dialogues[i].line);
			memcpy(line, dialogues[i].line, len + 1);
			memcpy(copy, line, len + 1);
			buf_reset(&out);
			int a = (int)sendmail_bs_command(&s, line, len, &out);
			const char *got = out.len ? out.p : "";
			T_EQ_INT(a, dialogues[i].action);
			if (strncmp(got, dialogues[i].reply, strlen(dialogues[i].reply)) != 0) {
				t_fails++;
				fprintf(stderr, "step %zu \"%s\": reply \"%s\", expected \"%s...\"\n", i,
				    dialogues[i].line, got, dialogues[i].reply);
			}
			t_checks++;
			/* one reply, CRLF-terminated, with a code its command may answer */
			smtp_cmd_parse(copy, len, &c);
			if (out.len) {
				T_CHECK(out.len >= 2 && got[out.len - 2] == '\r' && got[out.len - 1] == '\n');
				T_CHECK(smtp_reply_allowed(c.id, atoi(got)));
			}
		}
		i++;                    /* the END row */
		sendmail_bs_free(&s);
		buf_free(&out);
	}
}

/* the envelope the dialogue builds, and that DATA's outcomes reset it */
static void run_envelope(void)
{
	struct sendmail_bs s;
	struct buf out;
	char l1[] = "MAIL FROM:<Joe@Example.ORG>", l2[] = "RCPT TO:<a@B.example>",
	     l3[] = "RCPT TO:<postmaster>", l4[] = "DATA", l5[] = "MAIL FROM:<>",
	     l6[] = "RCPT TO:x@y", l7[] = "DATA";
	sendmail_bs_init(&s, "me.example");
	buf_init(&out);
	sendmail_bs_command(&s, l1, strlen(l1), &out);
	sendmail_bs_command(&s, l2, strlen(l2), &out);
	sendmail_bs_command(&s, l3, strlen(l3), &out);
	T_EQ_INT(sendmail_bs_command(&s, l4, strlen(l4), &out), SENDMAIL_BS_DATA);
	T_EQ_STR(s.env.sender, "Joe@example.org");
	T_EQ_INT(s.env.nrcpt, 2);
	if (s.env.nrcpt == 2) {
		T_EQ_STR(s.env.rcpt[0], "a@b.example");
		T_EQ_STR(s.env.rcpt[1], "postmaster");
	}
	buf_reset(&out);
	sendmail_bs_data_start(&s, 1, 0, 0, &out);
	T_EQ_STR(out.p, "354 End data with <CR><LF>.<CR><LF>\r\n");
	T_CHECK(s.env.sender != NULL);                  /* still the transaction's */
	buf_reset(&out);
	sendmail_bs_committed(&s, "abc.123", &out);
	T_EQ_STR(out.p, "250 2.0.0 Ok: queued as abc.123\r\n");
	T_CHECK(s.env.sender == NULL && s.env.nrcpt == 0);
	/* the null sender, then a failed open */
	sendmail_bs_command(&s, l5, strlen(l5), &out);
	sendmail_bs_command(&s, l6, strlen(l6), &out);
	T_EQ_STR(s.env.sender, "");
	T_EQ_INT(sendmail_bs_command(&s, l7, strlen(l7), &out), SENDMAIL_BS_DATA);
	buf_reset(&out);
	sendmail_bs_data_start(&s, 0, MAILDROP_ENOQUEUE, ENOENT, &out);
	T_EQ_STR(out.p, "451 4.3.0 Local error: cannot write the maildrop file\r\n");
	T_CHECK(s.env.sender == NULL && s.env.nrcpt == 0);
	buf_reset(&out);
	sendmail_bs_greeting(&s, &out);
	T_EQ_STR(out.p, "220 me.example ESMTP tern (sendmail -bs)\r\n");
	sendmail_bs_free(&s);
	buf_free(&out);
}

/* a line longer than SMTP allows: 500 5.5.2, and the transaction is untouched */
static void run_long_line(void)
{
	struct sendmail_bs s;
	struct buf out;
	char line[SMTP_CMD_LINE_MAX + 1];
	sendmail_bs_init(&s, "me.example");
	buf_init(&out);
	memset(line, 'x', sizeof line);
	memcpy(line, "NOOP ", 5);
	T_EQ_INT(sendmail_bs_command(&s, line, SMTP_CMD_LINE_MAX, &out), SENDMAIL_BS_REPLY);
	T_CHECK(strncmp(out.p, "500 5.5.2", 9) == 0);
	buf_reset(&out);
	memset(line, 'x', sizeof line);                 /* 998 octets: the most allowed */
	memcpy(line, "NOOP ", 5);
	sendmail_bs_command(&s, line, SMTP_CMD_LINE_MAX - 2, &out);
	T_CHECK(strncmp(out.p, "250 2.0.0", 9) == 0);
	sendmail_bs_free(&s);
	buf_free(&out);
}

static const struct {
	int kind, err;
	const char *reply;
} failed[] = {
	{ MAILDROP_ECREATE, ENOSPC, "452 4.3.1 " },
	{ MAILDROP_EWRITE, ENOSPC, "452 4.3.1 " },
	{ MAILDROP_EWRITE, EDQUOT, "452 4.3.1 " },
	{ MAILDROP_ENOQUEUE, ENOSPC, "452 4.3.1 " },
	{ MAILDROP_EWRITE, EIO, "451 4.3.0 " },
	{ MAILDROP_ECREATE, EROFS, "451 4.3.0 " },
	{ MAILDROP_ENOQUEUE, EACCES, "451 4.3.0 " },
	{ MAILDROP_EENV, 0, "451 4.3.0 " },
	{ MAILDROP_EINTERNAL, 0, "451 4.3.0 " },
	{ MAILDROP_EREAD, ENOSPC, "451 4.3.0 " },       /* not our disk */
};

static void run_failed(void)
{
	for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++) {
		struct sendmail_bs s;
		struct buf out;
		sendmail_bs_init(&s, "me");
		buf_init(&out);
		maildrop_env_set_sender(&s.env, "a@b");
		sendmail_bs_failed(&s, failed[i].kind, failed[i].err, &out);
		T_CHECK(strncmp(out.p, failed[i].reply, strlen(failed[i].reply)) == 0);
		T_CHECK(s.env.sender == NULL);
		T_CHECK(smtp_reply_allowed(SMTP_CMD_DATA, atoi(out.p)));
		sendmail_bs_free(&s);
		buf_free(&out);
	}
}

static const struct {
	const char *piece;
	int bol, end;
	size_t skip;
} data_lines[] = {
	{ ".\n", 1, 1, 0 },
	{ ".\r\n", 1, 1, 0 },
	{ ".\n", 0, 0, 0 },          /* not at a line start: the tail of a long line */
	{ ".", 1, 0, 1 },            /* "." then EOF: no end of data (stuffing rule applies) */
	{ ".\r", 1, 0, 1 },
	{ "..\n", 1, 0, 1 },
	{ "..\r\n", 1, 0, 1 },
	{ ".x\n", 1, 0, 1 },
	{ ". \n", 1, 0, 1 },
	{ "x.\n", 1, 0, 0 },
	{ "\n", 1, 0, 0 },
	{ "", 1, 0, 0 },
	{ "abc\n", 1, 0, 0 },
	{ "..", 0, 0, 0 },
};

static void run_data_lines(void)
{
	for (size_t i = 0; i < sizeof data_lines / sizeof data_lines[0]; i++) {
		size_t skip = 99;
		const char *p = data_lines[i].piece;
		int r = sendmail_bs_data_line(p, strlen(p), data_lines[i].bol, &skip);
		if (r != data_lines[i].end || (!r && skip != data_lines[i].skip)) {
			t_fails++;
			fprintf(stderr, "data line %zu: got %d/%zu\n", i, r, skip);
		}
		t_checks++;
	}
}

/* header scans: lines (without line ends) separated by '|' -> classes and what was found */
static const struct {
	const char *lines;
	const char *classes;   /* one letter per line: F field, B blank, Y body, P past */
	int from, date, msgid;
} hdrs[] = {
	{ "Subject: x|From: a@b||body", "FFBP", 1, 0, 0 },
	{ "from : a|DATE:x|message-id: <m>|", "FFFB", 1, 1, 1 },
	{ "Subject: x| folded From: a|\tmore||x", "FFFBP", 0, 0, 0 },
	{ "no header line|From: a@b", "YP", 0, 0, 0 },
	{ " starts with a blank|Subject: x", "YP", 0, 0, 0 },
	{ "From a@b Mon Jan  1 00:00:00 2024|Subject: x", "YP", 0, 0, 0 },
	{ "|From: a", "BP", 0, 0, 0 },
	{ "X-Long-Name-With-Dashes: 1|Resent-From: x|Message-IDs: y", "FFF", 0, 0, 0 },
	{ ":no name|x", "YP", 0, 0, 0 },
	{ "Date: now", "F", 0, 1, 0 },
};

static void run_hdrs(void)
{
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		struct sendmail_bs_hdr h;
		char got[32] = "";
		const char *p = hdrs[i].lines;
		size_t k = 0;
		sendmail_bs_hdr_init(&h);
		for (;;) {
			const char *e = strchr(p, '|');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			enum sendmail_bs_hdr_class c = sendmail_bs_hdr_line(&h, p, n);
			got[k++] = "FBYP"[c];
			if (!e)
				break;
			p = e + 1;
		}
		got[k] = '\0';
		T_EQ_STR(got, hdrs[i].classes);
		T_EQ_INT(h.has_from, hdrs[i].from);
		T_EQ_INT(h.has_date, hdrs[i].date);
		T_EQ_INT(h.has_msgid, hdrs[i].msgid);
	}
}

static void run(void)
{
	run_dialogues();
	run_envelope();
	run_long_line();
	run_failed();
	run_data_lines();
	run_hdrs();
}

T_MAIN(run)
