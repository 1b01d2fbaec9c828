/* fuzz_envelope — env_parse on arbitrary bytes; a parsed envelope re-formatted must parse. */
#include <stdint.h>
#include <stddef.h>
#include "mail/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope e, f;
	size_t valid;
	char err[64];
	if (env_parse((const char *)data, size, &e, &valid, err, sizeof err) == 0) {
		struct buf b;
		buf_init(&b);
		env_format_header(&e, &b);
		if (env_parse(b.p, b.len, &f, &valid, err, sizeof err) != 0)
			__builtin_trap();
		env_free(&f);
		buf_free(&b);
		env_free(&e);
	}
	return 0;
}
