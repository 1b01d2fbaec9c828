/* fuzz_smtp_cmd — smtp_cmd_parse on arbitrary lines. Invariants: success means no error
 * code and an argument inside the line; failure means 500 or 501 with text, and 501 only for
 * a known verb; every id maps to a reply-table row that allows 500. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/smtp_cmd.h"
#include "mail/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct smtp_cmd c;
	memcpy(line, data, size);
	int r = smtp_cmd_parse(line, size, &c);
	if (c.id <= SMTP_CMD_NONE || c.id >= SMTP_CMD_COUNT || !smtp_reply_allowed(c.id, 500))
		__builtin_trap();
	if (r == 0) {
		if (c.code || c.arg < line || c.arg > line + size || strlen(c.arg) > size ||
		    c.id == SMTP_CMD_UNKNOWN)
			__builtin_trap();
	} else {
		if ((c.code != 500 && c.code != 501) || !c.text || !c.esc ||
		    (c.code == 501 && c.id == SMTP_CMD_UNKNOWN))
			__builtin_trap();
		if (!smtp_reply_allowed(c.id, c.code))
			__builtin_trap();
	}
	free(line);
	return 0;
}
