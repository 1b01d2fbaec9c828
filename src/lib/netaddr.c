/* netaddr — see netaddr.h. Pure: no I/O, no allocation. Owns: the host:port syntax.
 * Trusts: nothing it parses. */
#include "lib/netaddr.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* decimal 1..65535, digits only */
static int netaddr_port(const char *p, int *port)
{
	long v = 0;
	size_t n = strspn(p, "0123456789");
	if (n == 0 || n > 5 || p[n])
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	if (v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

int netaddr_parse(const char *s, int defport, char *addr, size_t asz, int *port)
{
	const char *h = s, *p;
	char host[INET6_ADDRSTRLEN];
	unsigned char tmp[16];
	size_t hn;
	int v6 = *s == '[', pt = defport;
	if (v6) {
		const char *e = strchr(s, ']');
		if (!e || (e[1] && e[1] != ':'))
			return -1;
		h = s + 1;
		hn = (size_t)(e - h);
		p = e[1] ? e + 2 : NULL;
	} else {
		const char *e = strchr(s, ':');
		hn = e ? (size_t)(e - s) : strlen(s);
		p = e ? e + 1 : NULL;
	}
	if (hn == 0 || hn >= sizeof host || hn >= asz)
		return -1;
	memcpy(host, h, hn);
	host[hn] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, tmp) != 1)
		return -1;
	if (p ? netaddr_port(p, &pt) < 0 : defport == 0)
		return -1;
	memcpy(addr, host, hn + 1);
	*port = pt;
	return 0;
}

int netaddr_sockaddr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof *s4;
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof *s6;
		return 0;
	}
	return -1;
}
