/* dns_probe — test driver for tests/e2e/test_dns.py: resolves names with src/ternd/dns.c
 * against a given resolver, all requests at once in one event loop, and prints the results
 * in the order of the arguments:
 *     usage: dns_probe RESOLVER TIMEOUT_MS MODE:NAME...     (RESOLVER "" = resolv.conf)
 *     output, per request I (from 0):  result I STATUS ELAPSED_MS DIAG
 *                                      addr I PREF HOST ADDR        (one line per address)
 * Exit 0 when every request was answered, 2 on bad usage, 3 when dns_init failed.
 * Trusts: its caller, the test. */
#include "ternd/lookup/dns.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct probe {
	int idx;
	long long start, end;
	struct dns_result res;
	int answered;
};

static int probe_left;

static void probe_done(const struct dns_result *res, void *arg)
{
	struct probe *p = arg;
	p->res = *res;
	p->end = ev_now_ms();
	p->answered++;
	if (--probe_left == 0)
		ev_exit();
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	log_init("dns_probe", getenv("DNS_PROBE_DEBUG") ? LOG_DEBUG : LOG_WARN);
	ev_init();
	struct config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.resolver = argv[1];
	dns_set_timeout(atol(argv[2]));
	if (dns_init(&cfg) < 0)
		return 3;
	int n = argc - 3;
	struct probe *p = xcalloc((size_t)n, sizeof *p);
	probe_left = n;
	for (int i = 0; i < n; i++) {
		char *arg = argv[3 + i], *colon = strchr(arg, ':');
		if (!colon)
			return 2;
		p[i].idx = i;
		p[i].start = ev_now_ms();
		dns_resolve(colon + 1, atoi(arg), probe_done, &p[i]);
	}
	ev_run();
	int rc = 0;
	for (int i = 0; i < n; i++) {
		if (p[i].answered != 1)
			rc = 1;
		printf("result %d %d %lld %s\n", i, p[i].res.status, p[i].end - p[i].start,
		       p[i].res.diag);
		for (size_t k = 0; k < p[i].res.n; k++)
			printf("addr %d %u %s %s\n", i, p[i].res.a[k].pref, p[i].res.a[k].host,
			       p[i].res.a[k].addr);
	}
	dns_shutdown();
	free(p);
	return rc;
}
