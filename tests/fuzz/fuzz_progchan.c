/* fuzz_progchan — the reply protocol and the argument vector of src/mail/progchan.c on
 * arbitrary bytes. Invariants: after progchan_end every address has a result with a
 * printable text within PROGCHAN_TEXTMAX; an argument vector, when one is made, has the
 * template's word count plus MMDF's six trailing words, none holding a control byte. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/progchan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t n = data[0] % 8, cut = data[1] % 16 + 1;
	struct progchan p;
	progchan_init(&p, n);
	for (size_t i = 2; i < size; i += cut)
		progchan_feed(&p, (const char *)data + i, size - i < cut ? size - i : cut);
	progchan_end(&p, data[1] & 1, data[1] & 2 ? 100 : 0, 9, data[1] & 4);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(p.r[i].text);
		if (p.r[i].st == PROGCHAN_PENDING || len > PROGCHAN_TEXTMAX)
			__builtin_trap();
		for (size_t k = 0; k < len; k++)
			if (p.r[i].text[k] < 0x20 || p.r[i].text[k] > 0x7e)
				__builtin_trap();
	}
	progchan_free(&p);
	/* the same bytes as host and sender of a fixed template */
	char *s = malloc(size - 1);
	memcpy(s, data + 2, size - 2);
	s[size - 2] = '\0';
	char *sender = strchr(s, '|'), why[128];
	if (sender)
		*sender++ = '\0';
	char **a = progchan_argv("/bin/x -a %h!rmail (%s)", s, sender ? sender : "", "ID", why,
	                         sizeof why);
	size_t k = 0;
	for (; a && a[k]; k++)
		for (const char *c = a[k]; *c; c++)
			if ((unsigned char)*c < 0x20)
				__builtin_trap();
	if (a && (k != 10 || a[3][0] == '-' || a[4][0] == '-'))
		__builtin_trap();
	progchan_argv_free(a);
	free(s);
	return 0;
}
