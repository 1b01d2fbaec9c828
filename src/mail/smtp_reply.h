/* smtp_reply — which reply codes each SMTP command may answer: seed 001's command–reply
 * table (RFC 821), plus the codes RFC 5321 4.3.2 and the extension RFCs (1985 ETRN,
 * 3030 BDAT, 3207 STARTTLS, 4954 AUTH) add. The session checks every reply against it.
 * Owns: that table. Trusts: nothing; a disallowed code is logged (and aborts when strict). */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H
#include "mail/smtp_cmd.h"

/* 1 if `code` is an allowed reply to command `id` (SMTP_CMD_NONE: greeting/unsolicited) */
int smtp_reply_allowed(enum smtp_cmd_id id, int code);
/* 1 if `code` came from seed 001's table itself rather than from a later RFC */
int smtp_reply_in_seed(enum smtp_cmd_id id, int code);
/* The debug assertion: returns smtp_reply_allowed(); on a violation logs
 * event=reply_not_allowed once per call and, when strict, aborts. */
int smtp_reply_check(enum smtp_cmd_id id, int code);
/* strict mode (tests): abort on a violation. Also enabled by TERN_STRICT_REPLIES=1. */
void smtp_reply_set_strict(int on);
#endif
