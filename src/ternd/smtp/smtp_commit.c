/* smtp_commit — see smtp_commit.h. Owns: nothing. Trusts: its callers. */
#include "ternd/smtp/smtp_commit.h"
#include "ternd/proto.h"
#include <errno.h>
#include <string.h>

uint64_t smtp_commit_rcpt_bytes(const char *rcpt)
{
	return (uint64_t)strlen(rcpt) + 6;      /* msg_str: tag, u32 length, text, NUL */
}

int smtp_commit_fits(uint32_t nrcpt, uint64_t envbytes, const char *rcpt)
{
	return nrcpt < COMMIT_MAXRCPT &&
	       envbytes + smtp_commit_rcpt_bytes(rcpt) <= SMTP_COMMIT_MAXENV;
}

void smtp_commit_msg(struct msg *m, uint32_t sid, uint64_t msgid, const char *sender,
                     char *const *rcpt, uint32_t nrcpt, const char *origin, uint64_t bytes)
{
	msg_init(m, M_MSG_COMMIT, sid);
	msg_u64(m, msgid);
	msg_str(m, sender);
	msg_u64(m, nrcpt);
	for (uint32_t i = 0; i < nrcpt; i++)
		msg_str(m, rcpt[i]);
	msg_str(m, origin);
	msg_u64(m, bytes);
}

struct smtp_commit_reply smtp_commit_werr(int werr)
{
	if (werr == ENOSPC || werr == EDQUOT)
		return (struct smtp_commit_reply){ 452, "4.3.1", "Insufficient system storage" };
	return (struct smtp_commit_reply){ 451, "4.3.0", "Local error writing the message" };
}

struct smtp_commit_reply smtp_commit_status(uint64_t status)
{
	if (status == 452)
		return (struct smtp_commit_reply){ 452, "4.3.1", "Insufficient system storage" };
	if (status == 554)
		return (struct smtp_commit_reply){ 554, "5.3.0", "Transaction failed" };
	return (struct smtp_commit_reply){ 451, "4.3.0", "Local error in processing, try again later" };
}
