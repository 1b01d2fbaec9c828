/* dns — asynchronous resolution of mail destinations for the lookup role, with libunbound
 * inside the role's event loop (ub_fd() watched by the loop, ub_process() when readable).
 * Owns: the process's one libunbound context and every query in flight; nothing is cached
 * here beyond libunbound's own cache (which honours TTLs).
 * Trusts: the DNS server named by the `resolver` key (or /etc/resolv.conf when it is ""),
 * but not its answers' shape: every record is bounds-checked. No DNSSEC validation.
 *
 * Semantics (RFC 5321 §5, RFC 7505), reported as enum mxstatus of proto.h:
 *   mode 0 (DNS_MODE_MX), name is a mail domain:
 *     MX query: NXDOMAIN -> MX_NODOMAIN; SERVFAIL, any other error rcode, resolver error or
 *     the deadline -> MX_TEMP; the only MX is "." (RFC 7505 null MX) -> MX_NULLMX;
 *     MX records -> the hosts in preference order, shuffled among equal preferences, at
 *     most DNS_MAXHOSTS ("." entries ignored when real ones exist); the A and AAAA of every
 *     host are asked in parallel; the answer lists each host's IPv4 then IPv6 addresses,
 *     host after host, at most DNS_MAXADDRS, duplicates dropped. A host without an address
 *     is skipped. No address at all -> MX_TEMP if any address lookup failed temporarily
 *     (or ran out of time), else MX_NODOMAIN.
 *     No MX (NODATA) -> the name's own A/AAAA as an implicit MX of preference 0.
 *   mode 1 (DNS_MODE_HOST), name is a relay host (smtproutes): its A/AAAA only, with the
 *     same rules as one MX host.
 *   A name that is a numeric IPv4/IPv6 address (bare or in brackets, `[IPv6:...]` too) is
 *   answered with itself in both modes, without DNS. CNAMEs are followed by libunbound.
 * Every request ends within the timeout (default DNS_TIMEOUT_MS; libunbound has no
 * per-query timeout, so a timer per request cancels what is still in flight). The callback
 * is called exactly once per accepted request, always from the event loop, never from
 * inside dns_resolve(). */
#ifndef TERN_DNS_H
#define TERN_DNS_H
#include <stddef.h>
#include "mail/config.h"

#define DNS_MODE_MX    0
#define DNS_MODE_HOST  1
#define DNS_MAXHOSTS   10
#define DNS_MAXADDRS   20
#define DNS_TIMEOUT_MS 15000
#define DNS_NAMELEN    256        /* a domain name in text, with its NUL */
#define DNS_ADDRLEN    46         /* INET6_ADDRSTRLEN */

struct dns_addr {
	unsigned pref;                /* MX preference (0 for an implicit MX and mode 1) */
	char host[DNS_NAMELEN];       /* the MX host (or the name itself), no trailing dot */
	char addr[DNS_ADDRLEN];       /* numeric IPv4 or IPv6 */
};

struct dns_result {
	int status;                   /* enum mxstatus (src/ternd/proto.h) */
	char diag[256];               /* for the log and the delivery status */
	size_t n;
	struct dns_addr a[DNS_MAXADDRS];   /* in the order to try them */
};

typedef void (*dns_cb)(const struct dns_result *res, void *arg);

/* Create the resolver context from cfg->resolver ("" = /etc/resolv.conf; "ADDR",
 * "ADDR:PORT" or "[IPv6]:PORT" = that server only, loopback allowed). Call after ev_init().
 * 0 / -1 (logged); after -1 every request answers MX_TEMP. */
int dns_init(const struct config *cfg);
/* The deadline of each later request, in milliseconds (> 0). */
void dns_set_timeout(long msec);
/* Start resolving name in mode DNS_MODE_MX or DNS_MODE_HOST; cb(res, arg) follows later,
 * exactly once. Never fails: bad input or a resolver error also answers through cb. */
void dns_resolve(const char *name, int mode, dns_cb cb, void *arg);
/* Cancel everything in flight (callbacks are not called) and free the context. */
void dns_shutdown(void);
#endif
