/* fuzz_netaddr — netaddr_parse on arbitrary bytes. Invariants: on success the address is
 * numeric (netaddr_sockaddr takes it), NUL-terminated inside its buffer, and the port is in
 * 1..65535; on failure nothing is written. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "lib/netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), addr[64];
	int port = -1;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(addr, 'x', sizeof addr);
	if (netaddr_parse(s, size & 1 ? 628 : 0, addr, sizeof addr, &port) == 0) {
		struct sockaddr_storage ss;
		socklen_t len;
		if (!memchr(addr, '\0', sizeof addr) || port < 1 || port > 65535 ||
		    netaddr_sockaddr(addr, port, &ss, &len) < 0)
			__builtin_trap();
	} else if (port != -1 || addr[0] != 'x')
		__builtin_trap();
	free(s);
	return 0;
}
