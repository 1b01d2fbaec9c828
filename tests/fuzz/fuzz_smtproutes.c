/* fuzz_smtproutes — the smtproutes parser and the host choice of src/mail/route.c on
 * arbitrary text. Input: comma-separated entries, a newline, a recipient domain.
 * Invariants: an entry parses (0), has an unreadable key (-1, key "") or a bad relay (-2,
 * host ""); every host produced is short, and one with a ':' is a relay that route_relay()
 * parses back to itself; route_smtp_host() answers OK / TEMP / NOUSER, and an OK host without
 * ':' is the domain itself. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/route.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a host from the parser: "" or "relay:port" that parses back to itself */
static void fuzz_smtproutes_host(const char *host)
{
	char again[ROUTE_HOSTLEN];
	size_t n = strlen(host);
	if (n >= ROUTE_HOSTLEN)
		__builtin_trap();
	if (n == 0)
		return;
	if (!strchr(host, ':') || route_relay(host, again, sizeof again) != 0 ||
	    strcmp(again, host) != 0)
		__builtin_trap();
}

static void fuzz_smtproutes_entry(const char *e)
{
	char key[ROUTE_HOSTLEN], host[ROUTE_HOSTLEN];
	int rc = route_smtproute_parse(e, key, sizeof key, host, sizeof host);
	if (rc < -2 || rc > 0 || (rc == -1 && (key[0] || host[0])) || (rc == -2 && host[0]))
		__builtin_trap();
	if (rc == 0)
		fuzz_smtproutes_host(host);
	if (route_relay(e, host, sizeof host) == 0)
		fuzz_smtproutes_host(host);
	else if (host[0])
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096 || memchr(data, '\0', size))
		return 0;
	char *text = xstrndup((const char *)data, size);
	char *nl = strchr(text, '\n');
	const char *domain = nl ? nl + 1 : "example.com";
	if (nl)
		*nl = '\0';
	struct config cfg;
	memset(&cfg, 0, sizeof cfg);
	char *save = NULL, *items[64];
	for (char *t = strtok_r(text, ",", &save); t && cfg.smtproutes.n < 64;
	     t = strtok_r(NULL, ",", &save)) {
		fuzz_smtproutes_entry(t);
		str_lower(t);
		items[cfg.smtproutes.n++] = t;
	}
	cfg.smtproutes.v = items;
	char *dom = xstrdup(domain), host[ROUTE_HOSTLEN], diag[256];
	str_lower(dom);
	int rc = route_smtp_host(&cfg, dom, host, sizeof host, diag, sizeof diag);
	if (rc == ROUTE_OK) {
		if (!host[0] || strlen(host) >= ROUTE_HOSTLEN)
			__builtin_trap();
		if (strchr(host, ':'))
			fuzz_smtproutes_host(host);
		else if (strcmp(host, dom) != 0)
			__builtin_trap();
	} else if (rc != ROUTE_TEMP && rc != ROUTE_NOUSER) {
		__builtin_trap();
	}
	free(dom);
	free(text);
	return 0;
}
