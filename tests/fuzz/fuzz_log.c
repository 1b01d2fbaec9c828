/* fuzz_log — log_format's escaping of arbitrary values. Invariants: the event text holds no
 * byte below 0x20 or above 0x7e (one event, one line); inside the format's quotes every '"'
 * and '\' of the value is escaped, so the quoted value ends where the format says; and
 * unescaping gives back the value byte for byte. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* unescape p[0..n) into out; -1 on a malformed escape or an unescaped quote */
static long unescape(const char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"')
			return -1;
		if (p[i] != '\\') {
			out[o++] = p[i];
			continue;
		}
		if (++i == n)
			return -1;
		switch (p[i]) {
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case '\\': case '"': out[o++] = p[i]; break;
		case 'x':
			if (i + 2 >= n || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0)
				return -1;
			out[o++] = (char)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
			i += 2;
			break;
		default: return -1;
		}
	}
	return (long)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char val[1025], out[4200], back[1025];
	if (size > 1024)
		size = 1024;
	memcpy(val, data, size);
	val[size] = '\0';
	size_t vlen = strlen(val);
	size_t n = log_format(out, sizeof out, "v=\"%s\"", val);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			__builtin_trap();
	if (n < 4 || memcmp(out, "v=\"", 3) != 0 || out[n - 1] != '"')
		__builtin_trap();
	long b = unescape(out + 3, n - 4, back);
	if (b != (long)vlen || memcmp(back, val, vlen) != 0)
		__builtin_trap();
	return 0;
}
