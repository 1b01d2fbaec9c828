/* fuzz_sendmail_bs — the `sendmail -bs` dialogue on arbitrary input: split into lines at LF,
 * each line fed to sendmail_bs_command (DATA is answered by a simulated open that fails or
 * succeeds and commits at once). Invariants: every reply is a run of CRLF-terminated lines
 * whose code its command may answer; the envelope only ever holds addresses the maildrop
 * accepts; the header scan and the DATA line rule never read outside their input. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/sendmail_bs.h"
#include "mail/smtp_cmd.h"
#include "mail/smtp_reply.h"

static void check_reply(const char *line, size_t len, const struct buf *out)
{
	char copy[SMTP_CMD_LINE_MAX + 1];
	struct smtp_cmd c;
	if (out->len < 6 || out->p[out->len - 2] != '\r' || out->p[out->len - 1] != '\n')
		__builtin_trap();
	memcpy(copy, line, len);
	smtp_cmd_parse(copy, len, &c);
	if (!smtp_reply_allowed(c.id, atoi(out->p)))
		__builtin_trap();
	for (size_t i = 0; i + 1 < out->len; i++)
		if ((out->p[i] == '\r') != (out->p[i + 1] == '\n'))
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sendmail_bs s;
	struct sendmail_bs_hdr h;
	struct buf out;
	const char *p = (const char *)data, *end = p + size;
	unsigned turn = 0;
	sendmail_bs_init(&s, "fuzz.example");
	sendmail_bs_hdr_init(&h);
	buf_init(&out);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), skip;
		char line[SMTP_CMD_LINE_MAX + 1];
		size_t len = n > SMTP_CMD_LINE_MAX ? SMTP_CMD_LINE_MAX : n;
		memcpy(line, p, len);
		sendmail_bs_data_line(p, nl ? n + 1 : n, 1, &skip);
		if (skip > 1)
			__builtin_trap();
		sendmail_bs_hdr_line(&h, p, n);
		buf_reset(&out);
		enum sendmail_bs_action a = sendmail_bs_command(&s, line, len, &out);
		if (a == SENDMAIL_BS_DATA) {
			if (out.len || !s.env.sender || s.env.nrcpt == 0 ||
			    maildrop_env_check(&s.env, NULL) < 0)
				__builtin_trap();
			if (turn++ & 1)
				sendmail_bs_committed(&s, "id", &out);
			else
				sendmail_bs_data_start(&s, 0, MAILDROP_EWRITE, 28, &out);
		}
		memcpy(line, p, len);
		check_reply(line, len, &out);
		if (a == SENDMAIL_BS_QUIT)
			break;
		p += n + (nl != NULL);
	}
	sendmail_bs_free(&s);
	buf_free(&out);
	return 0;
}
