/* netaddr — numeric socket addresses as tern's settings write them: "IPv4:PORT" and
 * "[IPv6]:PORT" (the port optional where a default exists) parsed, and the socket address
 * of a numeric address and a port built. Never resolves a name.
 * Owns: that syntax. Trusts: nothing it parses. */
#ifndef TERN_NETADDR_H
#define TERN_NETADDR_H
#include <stddef.h>
#include <sys/socket.h>

/* s ("1.2.3.4", "1.2.3.4:25", "[::1]", "[::1]:25") into addr (numeric, no brackets; asz
 * octets) and *port (1..65535; defport when s has none, which defport 0 forbids). An IPv6
 * address needs its brackets. 0, or -1 if malformed (addr and *port then unchanged). */
int netaddr_parse(const char *s, int defport, char *addr, size_t asz, int *port);
/* The socket address of numeric addr (IPv4 or IPv6) and port into *ss, its length *len.
 * 0, or -1 when addr is not numeric. */
int netaddr_sockaddr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len);
#endif
