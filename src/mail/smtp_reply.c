/* smtp_reply — see smtp_reply.h. Each row: the command, the codes seed 001 lists for it
 * (S/I, F and E columns together), then the codes later RFCs added that tern uses. */
#include "mail/smtp_reply.h"
#include "lib/log.h"
#include <stdlib.h>

#define SMTP_REPLY_MAXCODES 16
static const struct smtp_reply_row {
	enum smtp_cmd_id id;
	short seed[SMTP_REPLY_MAXCODES];     /* 0-terminated */
	short later[SMTP_REPLY_MAXCODES];    /* 0-terminated; the RFC is named in the comment */
} smtp_reply_tab[] = {
	/* connection establishment; 554 RFC 5321 3.1; 421 also for timeouts and shutdown */
	{ SMTP_CMD_NONE,    { 220, 421 }, { 554 } },
	{ SMTP_CMD_UNKNOWN, { 500, 421 }, { 0 } },
	/* EHLO is not in seed 001: RFC 5321 gives it HELO's codes plus 502 550 */
	{ SMTP_CMD_EHLO,    { 0 }, { 250, 500, 501, 504, 421, 502, 550 } },
	{ SMTP_CMD_HELO,    { 250, 500, 501, 504, 421 }, { 502, 550 } },
	/* MAIL: RFC 5321 adds 503 (sequence), 550/553 (policy), 455/555 (parameters);
	 * RFC 4954 6 530 (authentication required) */
	{ SMTP_CMD_MAIL,    { 250, 552, 451, 452, 500, 501, 421 }, { 503, 550, 553, 455, 555,
	                                                           530 } },
	{ SMTP_CMD_RCPT,    { 250, 251, 550, 551, 552, 553, 450, 451, 452, 500, 501, 503, 421 },
	                    { 455, 555 } },
	/* DATA: 354, then after the data 250 / 552 554 451 452; errors 500 501 503 421 */
	{ SMTP_CMD_DATA,    { 354, 250, 552, 554, 451, 452, 500, 501, 503, 421 }, { 0 } },
	{ SMTP_CMD_RSET,    { 250, 500, 501, 504, 421 }, { 0 } },
	{ SMTP_CMD_SEND,    { 250, 552, 451, 452, 500, 501, 502, 421 }, { 0 } },
	{ SMTP_CMD_SOML,    { 250, 552, 451, 452, 500, 501, 502, 421 }, { 0 } },
	{ SMTP_CMD_SAML,    { 250, 552, 451, 452, 500, 501, 502, 421 }, { 0 } },
	/* VRFY/EXPN: RFC 5321 3.5.3 adds 252 (cannot verify, will accept) */
	{ SMTP_CMD_VRFY,    { 250, 251, 550, 551, 553, 500, 501, 502, 504, 421 }, { 252 } },
	{ SMTP_CMD_EXPN,    { 250, 550, 500, 501, 502, 504, 421 }, { 252 } },
	{ SMTP_CMD_HELP,    { 211, 214, 500, 501, 502, 504, 421 }, { 0 } },
	{ SMTP_CMD_NOOP,    { 250, 500, 421 }, { 0 } },
	{ SMTP_CMD_QUIT,    { 221, 500 }, { 0 } },
	{ SMTP_CMD_TURN,    { 250, 502, 500, 503 }, { 0 } },
	/* RFC 1985 */
	{ SMTP_CMD_ETRN,    { 0 }, { 250, 251, 252, 253, 458, 459, 500, 501, 502, 503, 421 } },
	/* RFC 4954 */
	{ SMTP_CMD_AUTH,    { 0 }, { 235, 334, 432, 454, 500, 501, 502, 503, 504, 530, 534, 535,
	                             538, 421 } },
	/* RFC 3207 */
	{ SMTP_CMD_STARTTLS,{ 0 }, { 220, 454, 500, 501, 502, 503, 421 } },
	/* RFC 3030 */
	{ SMTP_CMD_BDAT,    { 0 }, { 250, 451, 452, 500, 501, 502, 503, 552, 554, 421 } },
};
#define SMTP_REPLY_NROWS (sizeof smtp_reply_tab / sizeof smtp_reply_tab[0])

static int smtp_reply_strict = -1;

static const struct smtp_reply_row *smtp_reply_row(enum smtp_cmd_id id)
{
	for (size_t i = 0; i < SMTP_REPLY_NROWS; i++)
		if (smtp_reply_tab[i].id == id)
			return &smtp_reply_tab[i];
	return NULL;
}

static int smtp_reply_in(const short *codes, int code)
{
	for (int i = 0; i < SMTP_REPLY_MAXCODES && codes[i]; i++)
		if (codes[i] == code)
			return 1;
	return 0;
}

int smtp_reply_in_seed(enum smtp_cmd_id id, int code)
{
	const struct smtp_reply_row *r = smtp_reply_row(id);
	return r && smtp_reply_in(r->seed, code);
}

int smtp_reply_allowed(enum smtp_cmd_id id, int code)
{
	const struct smtp_reply_row *r = smtp_reply_row(id);
	return r && (smtp_reply_in(r->seed, code) || smtp_reply_in(r->later, code));
}

void smtp_reply_set_strict(int on) { smtp_reply_strict = on; }

int smtp_reply_check(enum smtp_cmd_id id, int code)
{
	if (smtp_reply_allowed(id, code))
		return 1;
	if (smtp_reply_strict < 0) {
#ifdef TERN_TEST
		const char *e = getenv("TERN_STRICT_REPLIES");
		smtp_reply_strict = e && *e == '1';
#else
		smtp_reply_strict = 0;
#endif
	}
	log_err("event=reply_not_allowed cmd=%s code=%d", smtp_cmd_name(id), code);
	if (smtp_reply_strict)
		abort();
	return 0;
}
