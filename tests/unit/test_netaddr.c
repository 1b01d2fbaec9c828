/* test_netaddr — numeric host[:port] parsing and socket addresses (src/lib/netaddr.c), the
 * one parser of listen addresses (config.c) and qmqpservers items (qmqp.c). */
#include "t.h"
#include "lib/netaddr.h"
#include <netinet/in.h>

static void test_parse(void)
{
	static const struct { const char *in; int defport, rc; const char *addr; int port; } c[] = {
		{ "127.0.0.1:25", 0, 0, "127.0.0.1", 25 },
		{ "127.0.0.1", 628, 0, "127.0.0.1", 628 },
		{ "127.0.0.1", 0, -1, NULL, 0 },               /* a port is required */
		{ "[::1]:2525", 0, 0, "::1", 2525 },
		{ "[2001:db8::1]", 628, 0, "2001:db8::1", 628 },
		{ "[::1]", 0, -1, NULL, 0 },
		{ "::1:25", 0, -1, NULL, 0 },                  /* IPv6 needs its brackets */
		{ "[::1]25", 0, -1, NULL, 0 },
		{ "[::1", 628, -1, NULL, 0 },
		{ "[]:25", 0, -1, NULL, 0 },
		{ "[1.2.3.4]:25", 0, -1, NULL, 0 },
		{ "1.2.3.4:0", 628, -1, NULL, 0 },
		{ "1.2.3.4:65536", 628, -1, NULL, 0 },
		{ "1.2.3.4:65535", 628, 0, "1.2.3.4", 65535 },
		{ "1.2.3.4:", 628, -1, NULL, 0 },
		{ "1.2.3.4:+25", 628, -1, NULL, 0 },
		{ "1.2.3.4:25x", 628, -1, NULL, 0 },
		{ "1.2.3.4:100000", 628, -1, NULL, 0 },
		{ "mx.example:25", 0, -1, NULL, 0 },           /* never a name */
		{ ":25", 0, -1, NULL, 0 },
		{ "", 628, -1, NULL, 0 },
		{ "1.2.3:25", 0, -1, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		char addr[64] = "unchanged";
		int port = -7;
		int rc = netaddr_parse(c[i].in, c[i].defport, addr, sizeof addr, &port);
		if (rc != c[i].rc)
			fprintf(stderr, "case %zu: %s\n", i, c[i].in);
		T_EQ_INT(rc, c[i].rc);
		if (c[i].rc == 0) {
			T_EQ_STR(addr, c[i].addr);
			T_EQ_INT(port, c[i].port);
		} else {
			T_EQ_STR(addr, "unchanged");
			T_EQ_INT(port, -7);
		}
	}
	char small[4];
	int port;
	T_EQ_INT(netaddr_parse("127.0.0.1:25", 0, small, sizeof small, &port), -1);
}

static void test_sockaddr(void)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	T_EQ_INT(netaddr_sockaddr("127.0.0.1", 628, &ss, &len), 0);
	T_EQ_INT(ss.ss_family, AF_INET);
	T_EQ_INT(len, sizeof(struct sockaddr_in));
	T_EQ_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 628);
	T_EQ_INT(netaddr_sockaddr("::1", 25, &ss, &len), 0);
	T_EQ_INT(ss.ss_family, AF_INET6);
	T_EQ_INT(len, sizeof(struct sockaddr_in6));
	T_EQ_INT(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 25);
	T_EQ_INT(netaddr_sockaddr("localhost", 25, &ss, &len), -1);
	T_EQ_INT(netaddr_sockaddr("[::1]", 25, &ss, &len), -1);
}

static void run(void)
{
	test_parse();
	test_sockaddr();
}
T_MAIN(run)
