/* fuzz_config — config_parse on arbitrary bytes: every error is collected (never a crash),
 * the result prints with config_show, and a parse without errors parses again to the same
 * showctl text. */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "mail/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *show(const struct config *c)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		abort();
	config_show(c, f);
	fclose(f);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cfg_errors errs;
	struct config c;
	log_set_level(-1);
	int r = config_parse(&c, "fuzz.conf", (const char *)data, size, &errs);
	if ((r == 0) != (errs.n == 0))
		__builtin_trap();
	for (int i = 0; i < errs.n; i++)
		if (errs.e[i].line < 1 || !memchr(errs.e[i].msg, '\0', sizeof errs.e[i].msg))
			__builtin_trap();
	char *a = show(&c);
	config_list_has(&c.locals, "example.com");
	config_list_has(&c.rcpthosts, "a.b.example.com");
	config_free(&c);
	if (r == 0) {
		struct config d;
		if (config_parse(&d, "fuzz.conf", (const char *)data, size, &errs) != 0)
			__builtin_trap();
		char *b = show(&d);
		if (strcmp(a, b) != 0)
			__builtin_trap();
		free(b);
		config_free(&d);
	}
	free(a);
	return 0;
}
