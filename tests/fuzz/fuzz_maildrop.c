/* fuzz_maildrop — libFuzzer harness for the maildrop envelope parser.
 * Property: the parser never crashes or leaks; what it accepts passes maildrop_env_check and
 * re-serialises to exactly the bytes it consumed (the format has one spelling per envelope).
 * Trusts: nothing; the input is arbitrary bytes. */
#include "mail/maildrop.h"
#include "lib/buf.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reserialise(const struct maildrop_env *e, struct buf *b)
{
	buf_printf(b, "%sU%llu\nT%lld\nF%s\n", MAILDROP_MAGIC, (unsigned long long)e->uid,
	    (long long)e->time, e->sender);
	for (size_t i = 0; i < e->nrcpt; i++)
		buf_printf(b, "R%s\n", e->rcpt[i]);
	if (e->origin)
		buf_printf(b, "O%s\n", e->origin);
	buf_adds(b, ".\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildrop_env e;
	size_t off = 0;
	if (maildrop_parse_env((const char *)data, size, &e, &off) != 0) {
		if (!e.why || e.sender || e.nrcpt)
			abort();
		return 0;
	}
	if (off > size || e.nrcpt == 0 || maildrop_env_check(&e, NULL) != 0)
		abort();
	struct buf b;
	buf_init(&b);
	reserialise(&e, &b);
	if (b.len != off || memcmp(b.p, data, off) != 0)
		abort();
	buf_free(&b);
	maildrop_env_free(&e);
	return 0;
}
