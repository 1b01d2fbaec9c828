/* fuzz_localargs — tern-local's command line parser (src/mail/localargs.c) on argument vectors
 * cut from arbitrary bytes (NUL separates arguments). Invariants: accepted means 8 or 9
 * operands after first, every option before first, no option twice. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/localargs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[64];
	int argc = 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = "tern-local";
	for (char *p = buf; argc < 63 && p < buf + size; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	struct localargs a;
	if (localargs_parse(argc, argv, &a) == 0) {
		if (a.first < 1 || a.first > argc || (argc - a.first != 8 && argc - a.first != 9))
			__builtin_trap();
		int seen_p = 0;
		for (int i = 1; i < a.first; i++)
			if (strcmp(argv[i], "-p") == 0 && i + 1 < a.first && argv[i + 1] == a.profile)
				seen_p++;
		if (a.profile && seen_p != 1)
			__builtin_trap();
	}
	free(buf);
	return 0;
}
