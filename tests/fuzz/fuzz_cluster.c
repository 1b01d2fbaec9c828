/* fuzz_cluster — the cluster's parsers (src/mail/cluster.c) on arbitrary bytes. Invariants:
 * the hop count of a header section does not depend on how it is split; it never exceeds
 * the number of lines; a greeting test never reads past n; a cookie that passes is printable. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct cluster_hops a, b;
	size_t lines = 1, split = size ? data[0] % (size + 1) : 0;
	cluster_hops_init(&a);
	cluster_hops_init(&b);
	int da = cluster_hops_feed(&a, p, size);
	int db = cluster_hops_feed(&b, p, split);
	if (!db)
		db = cluster_hops_feed(&b, p + split, size - split);
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (da != db || a.hops != b.hops || a.hops > lines)
		__builtin_trap();
	char *copy = malloc(size ? size : 1);        /* exactly n bytes: ASan sees an overread */
	memcpy(copy, data, size);
	(void)cluster_greeting_has_cookie(copy, size, "c00kie");
	free(copy);
	char *s = malloc(size + 1), line[128];
	memcpy(s, data, size);
	s[size] = '\0';
	if (cluster_cookie_ok(s))
		for (size_t i = 0; s[i]; i++)
			if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
				__builtin_trap();
	int n = cluster_header_line(s, line, sizeof line);
	for (int i = 0; i < n - 1; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			__builtin_trap();
	free(s);
	return 0;
}
