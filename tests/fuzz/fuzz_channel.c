/* fuzz_channel — the `channel` line parser of src/mail/channel.c on arbitrary text.
 * Invariants: a refusal leaves the table as it was and says why; an accepted line leaves a
 * row with a valid name and transport and, once finished, values inside their bounds. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct channel_table t, before;
	struct channel_keys k = { 10, 20, 10, 20, 10 };
	char *s = malloc(size + 1), err[256] = "";
	memcpy(s, data, size);
	s[size] = '\0';
	channel_table_init(&t);
	before = t;
	if (channel_parse(&t, s, err, sizeof err) < 0) {
		if (!err[0] || memcmp(&t, &before, sizeof t) != 0)
			__builtin_trap();
	} else {
		channel_table_finish(&t, &k);
		for (size_t i = 0; i < t.n; i++) {
			const struct channel_row *r = &t.row[i];
			size_t n = strlen(r->name);
			if (!n || n > CHANNEL_NAMEMAX || r->transport < 0 || r->transport >= CHANNEL_T_COUNT ||
			    r->concurrency < 1 || r->perhost < 1 || r->rcpts < 1 || r->rcpts > CHANNEL_RCPTMAX ||
			    channel_find(&t, r->name) != r)
				__builtin_trap();
		}
	}
	free(s);
	return 0;
}
