/* fuzz_autoreply — a hostile header and reply memory through autoreply_refuse,
 * autoreply_build, autoreply_seen and autoreply_interval. Invariants: an accepted interval is
 * within 1 s .. AUTOREPLY_INTERVAL_MAX; the reply's header section has no bare CR
 * nor a control byte, and ends at the first empty line we wrote; the new memory has only
 * well-formed lines. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/autoreply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out, mem;
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	buf_init(&out);
	buf_init(&mem);
	(void)autoreply_refuse(s, "a@y.test", s, size, size & 1);
	autoreply_build(&out, "joe@x.test", "a@y.test", s, size, "text", 1000, 1);
	const char *end = strstr(out.p, "\n\n");
	if (!end)
		__builtin_trap();
	for (const char *p = out.p; p < end; p++)
		if (*p != '\n' && ((unsigned char)*p < 0x20 || *p == 0x7f))
			__builtin_trap();
	if (strstr(out.p, "Auto-Submitted: auto-replied\n") == NULL)
		__builtin_trap();
	(void)autoreply_seen(s, size, "a@y.test", 2000000, &mem);
	for (size_t i = 0; i < mem.len; i++)
		if ((unsigned char)mem.p[i] < 0x20 && mem.p[i] != '\n')
			__builtin_trap();
	long long secs = 0;
	if (autoreply_interval(s, &secs) == 0 && (secs < 1 || secs > AUTOREPLY_INTERVAL_MAX))
		__builtin_trap();
	const char *const rc[] = { "b@y.test", "a@y.test" };
	(void)autoreply_refuse_any(s, rc, 2, s, size, 1);
	buf_free(&out);
	buf_free(&mem);
	free(s);
	return 0;
}
