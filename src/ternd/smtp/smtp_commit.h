/* smtp_commit — what the smtp role's two intake protocols (SMTP, QMQP) share about handing a
 * message to the queue: the M_MSG_COMMIT frame, the bound that keeps its envelope inside one
 * IPC frame, and the meaning of the queue's statuses and of a failed data file write as a
 * reply (code, enhanced status, text), which each protocol words its own way.
 * Owns: nothing (pure helpers). Trusts: its callers' envelopes (already checked addresses). */
#ifndef TERN_SMTP_COMMIT_H
#define TERN_SMTP_COMMIT_H
#include <stdint.h>
#include "lib/msg.h"

/* octets the recipients of one commit may take, encoded: the frame (sender, origin and
 * the counts beside them) stays well below MSG_MAXPAYLOAD */
#define SMTP_COMMIT_MAXENV (MSG_MAXPAYLOAD - 64u * 1024)

/* The octets recipient rcpt takes in an M_MSG_COMMIT frame. */
uint64_t smtp_commit_rcpt_bytes(const char *rcpt);
/* 1 when one more recipient rcpt fits in a commit already holding nrcpt recipients of
 * envbytes encoded octets (COMMIT_MAXRCPT, SMTP_COMMIT_MAXENV), else 0. */
int smtp_commit_fits(uint32_t nrcpt, uint64_t envbytes, const char *rcpt);

/* The M_MSG_COMMIT frame (see proto.h) built into *m (frame id = the session's id). */
void smtp_commit_msg(struct msg *m, uint32_t sid, uint64_t msgid, const char *sender,
                     char *const *rcpt, uint32_t nrcpt, const char *origin, uint64_t bytes);

/* A refusal as a reply: SMTP code, enhanced status code, text. */
struct smtp_commit_reply {
	int code;
	const char *enh, *text;
};
/* A data file write that failed with errno werr: 452 4.3.1 when storage ran out, else
 * 451 4.3.0. */
struct smtp_commit_reply smtp_commit_werr(int werr);
/* A queue status other than success (M_MSG_OPENED's, M_MSG_COMMITTED's): 452 4.3.1, 554
 * 5.3.0, anything else 451 4.3.0. */
struct smtp_commit_reply smtp_commit_status(uint64_t status);
#endif
