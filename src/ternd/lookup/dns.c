/* dns — see dns.h. One libunbound context in threaded asynchronous mode; its result pipe
 * (ub_fd) is watched by the event loop and drained with ub_process(). A request is one name
 * resolved to an ordered address list: an MX query, then the A and AAAA queries of every MX
 * host in parallel; a timer per request bounds it and cancels what is still in flight.
 * Owns: the context, the requests in flight (a list) and their timers.
 * Trusts: the configured DNS server to be the one the operator chose, nothing in its
 * answers: names in MX records are decoded with bounds checks and must be LDH names. */
#include "ternd/lookup/dns.h"
#include "ternd/proto.h"
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#define DNS_T_A    1
#define DNS_T_MX   15
#define DNS_T_AAAA 28
#define DNS_C_IN   1
#define DNS_MAXMXRR 100          /* MX records looked at (the first DNS_MAXHOSTS are used) */

enum dns_qstate { Q_UNUSED = 0, Q_PENDING, Q_OK, Q_NONE, Q_TEMP };

struct dns_req;
struct dns_query {
	struct dns_req *req;
	int host;                    /* index into req->host; -1 for the MX query */
	int rrtype;
	int id;                      /* libunbound's async id while Q_PENDING */
	int state;                   /* enum dns_qstate */
	char why[48];                /* Q_NONE / Q_TEMP: "NXDOMAIN", "SERVFAIL", "timeout"... */
};

struct dns_host {
	unsigned pref;
	char name[DNS_NAMELEN];
	struct dns_query q[2];       /* A, AAAA */
	char addr[2][DNS_MAXADDRS][DNS_ADDRLEN];
	int naddr[2];
};

struct dns_req {
	char name[DNS_NAMELEN];
	int mode;
	dns_cb cb;
	void *arg;
	struct ev *timer;            /* the deadline; re-armed at 0 ms once res is final */
	int pending;                 /* queries in flight */
	int done;                    /* res is final: the timer delivers it */
	struct dns_query mx;
	struct dns_host host[DNS_MAXHOSTS];
	int nhost;
	struct dns_result res;
	struct dns_req *prev, *next;
};

struct dns_mx {                  /* one MX record while sorting */
	unsigned pref;
	char name[DNS_NAMELEN];
};

static struct {
	struct ub_ctx *ctx;
	struct ev *ev;               /* ub_fd() readable */
	long timeout;
	struct dns_req *reqs;        /* in flight */
	char why[128];               /* why there is no context */
} dns = { NULL, NULL, DNS_TIMEOUT_MS, NULL, "not initialised" };

/* ---------------------------------------------------------------- names */

static int dns_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* a text domain name -> lowercased, without a trailing dot, into out; 0 / -1 if it is not
 * a plausible host name (LDH and '_' labels of 1..63, at most 253 in all) */
static int dns_name_ok(const char *in, char *out)
{
	size_t n = strlen(in);
	if (n && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -1;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (!dns_ldh(c) || ++label > 63) {
			return -1;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
	return label ? 0 : -1;
}

/* a name in wire format (uncompressed, exactly len bytes) -> text; "." for the root */
static int dns_wire_name(const unsigned char *p, size_t len, char *out)
{
	char text[DNS_NAMELEN + 64];
	size_t o = 0, i = 0;
	for (;;) {
		if (i >= len)
			return -1;
		size_t l = p[i++];
		if (l == 0)
			break;
		if (l > 63 || i + l > len || o + l + 1 >= sizeof text)
			return -1;
		if (o)
			text[o++] = '.';
		memcpy(text + o, p + i, l);
		o += l;
		i += l;
	}
	if (i != len)
		return -1;
	if (o == 0) {
		strcpy(out, ".");
		return 0;
	}
	text[o] = '\0';
	if (memchr(text, '\0', o))
		return -1;
	return dns_name_ok(text, out);
}

/* 1: name is a numeric address (bare, [a.b.c.d], [v6] or [IPv6:v6]) -> canonical text in out;
 * 0: not an address literal; -1: brackets around something that is not an address */
static int dns_literal(const char *name, char *out)
{
	size_t n = strlen(name);
	const char *s = name;
	int bracket = n >= 2 && name[0] == '[' && name[n - 1] == ']';
	if (bracket) {
		s++;
		n -= 2;
		if (n >= 5 && str_ncasecmp(s, "ipv6:", 5) == 0) {
			s += 5;
			n -= 5;
		}
	}
	char tmp[DNS_ADDRLEN];
	unsigned char b[16];
	if (n >= sizeof tmp)
		return bracket ? -1 : 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, b) == 1)
		return inet_ntop(AF_INET, b, out, DNS_ADDRLEN) ? 1 : -1;
	if (inet_pton(AF_INET6, tmp, b) == 1)
		return inet_ntop(AF_INET6, b, out, DNS_ADDRLEN) ? 1 : -1;
	return bracket ? -1 : 0;
}

static const char *dns_rcode(int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
	                                     "NOTIMP", "REFUSED" };
	static char other[24];
	if (rcode >= 0 && rcode < (int)(sizeof names / sizeof names[0]))
		return names[rcode];
	snprintf(other, sizeof other, "rcode %d", rcode);
	return other;
}

/* ---------------------------------------------------------------- completion */

static void dns_complete(struct dns_req *q)
{
	q->done = 1;
	ev_del(q->timer);
	ev_add(q->timer, 0);
}

/* the diagnostic (truncated if need be: it is only for people) */
static void dns_diag(struct dns_req *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void dns_diag(struct dns_req *q, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->res.diag, sizeof q->res.diag, fmt, ap);
	va_end(ap);
}

static void dns_set(struct dns_req *q, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void dns_set(struct dns_req *q, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->res.diag, sizeof q->res.diag, fmt, ap);
	va_end(ap);
	q->res.status = status;
	q->res.n = 0;
	dns_complete(q);
}

static void dns_append(struct dns_result *res, const struct dns_host *h, const char *addr)
{
	if (res->n >= DNS_MAXADDRS)
		return;
	for (size_t i = 0; i < res->n; i++)
		if (strcmp(res->a[i].addr, addr) == 0)
			return;
	struct dns_addr *a = &res->a[res->n++];
	a->pref = h->pref;
	snprintf(a->host, sizeof a->host, "%s", h->name);
	snprintf(a->addr, sizeof a->addr, "%s", addr);
}

/* the address phase is over (answered or expired): build the final result */
static void dns_fill(struct dns_req *q)
{
	static const char *const tname[2] = { "A", "AAAA" };
	const struct dns_query *temp = NULL;
	q->res.n = 0;
	for (int i = 0; i < q->nhost; i++) {
		const struct dns_host *h = &q->host[i];
		for (int t = 0; t < 2; t++) {
			for (int k = 0; k < h->naddr[t]; k++)
				dns_append(&q->res, h, h->addr[t][k]);
			if (h->q[t].state == Q_TEMP && !temp)
				temp = &h->q[t];
		}
	}
	if (q->res.n) {
		q->res.status = MX_OK;
		dns_diag(q, "%zu address(es) for %s", q->res.n, q->name);
	} else if (temp) {
		q->res.status = MX_TEMP;
		dns_diag(q, "no address for %s yet: %s %s: %s", q->name,
		         tname[temp->rrtype == DNS_T_AAAA], q->host[temp->host].name, temp->why);
	} else {
		q->res.status = MX_NODOMAIN;
		if (q->mx.state == Q_OK)
			dns_diag(q, "no MX host of %s has an address", q->name);
		else
			dns_diag(q, "%s has no %saddress", q->name,
			         q->mode == DNS_MODE_MX ? "MX and no " : "");
	}
	dns_complete(q);
}

/* ---------------------------------------------------------------- queries */

static void dns_ub_cb(void *mydata, int err, struct ub_result *r);

static void dns_start(struct dns_query *qq, const char *name)
{
	struct dns_req *q = qq->req;
	int rc = ub_resolve_async(dns.ctx, name, qq->rrtype, DNS_C_IN, qq, dns_ub_cb, &qq->id);
	if (rc != 0) {
		qq->state = Q_TEMP;
		snprintf(qq->why, sizeof qq->why, "%s", ub_strerror(rc));
		log_warn("event=dns_query_failed name=%s type=%d error=\"%s\"", name, qq->rrtype,
		         ub_strerror(rc));
		return;
	}
	qq->state = Q_PENDING;
	q->pending++;
}

static void dns_add_host(struct dns_req *q, unsigned pref, const char *name)
{
	static const int types[2] = { DNS_T_A, DNS_T_AAAA };
	struct dns_host *h = &q->host[q->nhost];
	h->pref = pref;
	snprintf(h->name, sizeof h->name, "%s", name);
	for (int t = 0; t < 2; t++) {
		h->q[t].req = q;
		h->q[t].host = q->nhost;
		h->q[t].rrtype = types[t];
	}
	q->nhost++;
}

static void dns_start_hosts(struct dns_req *q)
{
	for (int i = 0; i < q->nhost; i++)
		for (int t = 0; t < 2; t++)
			dns_start(&q->host[i].q[t], q->host[i].name);
	if (q->pending == 0)
		dns_fill(q);
}

/* shuffle, then sort by preference (stable), so equal preferences come in random order */
static void dns_order(struct dns_mx *mx, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = arc4random_uniform((uint32_t)i);
		struct dns_mx t = mx[i - 1];
		mx[i - 1] = mx[j];
		mx[j] = t;
	}
	for (size_t i = 1; i < n; i++) {
		struct dns_mx t = mx[i];
		size_t j = i;
		for (; j > 0 && mx[j - 1].pref > t.pref; j--)
			mx[j] = mx[j - 1];
		mx[j] = t;
	}
}

/* MX rdata -> records; returns how many, *bad = unparsable ones, *nullmx = "." pref 0 seen */
static size_t dns_parse_mx(const struct ub_result *r, struct dns_mx *mx, int *bad,
                           int *nullmx)
{
	size_t n = 0;
	for (int i = 0; r->data[i] && n < DNS_MAXMXRR; i++) {
		const unsigned char *p = (const unsigned char *)r->data[i];
		if (r->len[i] < 3 || dns_wire_name(p + 2, (size_t)r->len[i] - 2, mx[n].name) < 0) {
			(*bad)++;
			continue;
		}
		mx[n].pref = (unsigned)p[0] << 8 | p[1];
		if (strcmp(mx[n].name, ".") == 0) {
			*nullmx += mx[n].pref == 0;
			continue;          /* the root is never a host to try */
		}
		n++;
	}
	return n;
}

/* the MX records are in: pick the hosts and start their address queries */
static void dns_use_mx(struct dns_req *q, const struct ub_result *r)
{
	struct dns_mx *mx = xcalloc(DNS_MAXMXRR, sizeof *mx);
	int bad = 0, nullmx = 0;
	size_t n = dns_parse_mx(r, mx, &bad, &nullmx);
	dns_order(mx, n);
	for (size_t i = 0; i < n && q->nhost < DNS_MAXHOSTS; i++) {
		int dup = 0;
		for (int k = 0; k < q->nhost && !dup; k++)
			dup = strcmp(q->host[k].name, mx[i].name) == 0;
		if (!dup)
			dns_add_host(q, mx[i].pref, mx[i].name);
	}
	free(mx);
	if (q->nhost)
		dns_start_hosts(q);
	else if (nullmx && !bad)
		dns_set(q, MX_NULLMX, "%s does not accept mail (null MX)", q->name);
	else if (bad)
		dns_set(q, MX_TEMP, "MX %s: %d record(s) that cannot be used", q->name, bad);
	else
		dns_set(q, MX_NODOMAIN, "MX %s: no usable MX host", q->name);
}

static void dns_on_mx(struct dns_req *q, int err, const struct ub_result *r)
{
	if (err) {
		dns_set(q, MX_TEMP, "MX %s: %s", q->name, ub_strerror(err));
	} else if (r->rcode == 3 || r->nxdomain) {
		dns_set(q, MX_NODOMAIN, "%s: no such domain (NXDOMAIN)", q->name);
	} else if (r->rcode != 0) {
		dns_set(q, MX_TEMP, "MX %s: %s", q->name, dns_rcode(r->rcode));
	} else if (!r->havedata) {               /* NODATA: the implicit MX */
		q->mx.state = Q_NONE;
		dns_add_host(q, 0, q->name);
		dns_start_hosts(q);
	} else {
		q->mx.state = Q_OK;
		dns_use_mx(q, r);
	}
}

static void dns_on_addr(struct dns_query *qq, int err, const struct ub_result *r)
{
	struct dns_host *h = &qq->req->host[qq->host];
	int t = qq->rrtype == DNS_T_AAAA, af = t ? AF_INET6 : AF_INET, alen = t ? 16 : 4;
	qq->state = Q_TEMP;
	if (err)
		snprintf(qq->why, sizeof qq->why, "%s", ub_strerror(err));
	else if (r->rcode != 0)
		snprintf(qq->why, sizeof qq->why, "%s", dns_rcode(r->rcode));
	if (err || (r->rcode != 0 && r->rcode != 3))
		return;
	qq->state = Q_NONE;
	snprintf(qq->why, sizeof qq->why, "%s", r->rcode == 3 ? "NXDOMAIN" : "no record");
	for (int i = 0; r->havedata && r->data[i] && h->naddr[t] < DNS_MAXADDRS; i++) {
		if (r->len[i] != alen || !inet_ntop(af, r->data[i], h->addr[t][h->naddr[t]],
		                                    DNS_ADDRLEN))
			continue;
		h->naddr[t]++;
		qq->state = Q_OK;
	}
}

static void dns_ub_cb(void *mydata, int err, struct ub_result *r)
{
	struct dns_query *qq = mydata;
	struct dns_req *q = qq->req;
	q->pending--;
	if (r)
		log_debug("event=dns_answer name=%s type=%d rcode=%d havedata=%d", r->qname,
		          r->qtype, r->rcode, r->havedata);
	if (qq->host < 0) {
		dns_on_mx(q, err, r);
	} else {
		dns_on_addr(qq, err, r);
		if (q->pending == 0 && !q->done)
			dns_fill(q);
	}
	if (r)
		ub_resolve_free(r);
}

/* ---------------------------------------------------------------- requests */

static void dns_cancel(struct dns_req *q)
{
	struct dns_query *all[1 + 2 * DNS_MAXHOSTS];
	int n = 0;
	all[n++] = &q->mx;
	for (int i = 0; i < q->nhost; i++) {
		all[n++] = &q->host[i].q[0];
		all[n++] = &q->host[i].q[1];
	}
	for (int i = 0; i < n; i++) {
		if (all[i]->state != Q_PENDING)
			continue;
		ub_cancel(dns.ctx, all[i]->id);
		all[i]->state = Q_TEMP;
		snprintf(all[i]->why, sizeof all[i]->why, "timeout after %ld ms", dns.timeout);
	}
	q->pending = 0;
}

static void dns_unlink(struct dns_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		dns.reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	ev_free(q->timer);
}

/* the request's timer: either its result is final, or its deadline has come */
static void dns_timer(int fd, short what, void *arg)
{
	struct dns_req *q = arg;
	if (!q->done) {
		int inmx = q->mx.state == Q_PENDING;
		dns_cancel(q);
		if (inmx)
			dns_set(q, MX_TEMP, "MX %s: timeout after %ld ms", q->name, dns.timeout);
		else
			dns_fill(q);
		log_info("event=dns_timeout name=%s mode=%d status=%d", q->name, q->mode,
		         q->res.status);
	}
	dns_unlink(q);
	log_debug("event=dns_result name=%s mode=%d status=%d n=%zu diag=\"%s\"", q->name,
	          q->mode, q->res.status, q->res.n, q->res.diag);
	q->cb(&q->res, q->arg);
	free(q);
}

/* a request whose name is a numeric address: answered with itself */
static void dns_answer_literal(struct dns_req *q, const char *addr)
{
	int t = strchr(addr, ':') != NULL;
	dns_add_host(q, 0, addr);
	snprintf(q->host[0].addr[t][0], DNS_ADDRLEN, "%s", addr);
	q->host[0].naddr[t] = 1;
	dns_fill(q);
}

static struct dns_req *dns_new(const char *name, int mode, dns_cb cb, void *arg)
{
	struct dns_req *q = xcalloc(1, sizeof *q);
	q->mode = mode;
	q->cb = cb;
	q->arg = arg;
	q->mx.req = q;
	q->mx.host = -1;
	q->mx.rrtype = DNS_T_MX;
	snprintf(q->name, sizeof q->name, "%.*s", (int)strnlen(name, 200), name);
	q->timer = ev_new(-1, 0, dns_timer, q);
	q->next = dns.reqs;
	if (dns.reqs)
		dns.reqs->prev = q;
	dns.reqs = q;
	ev_add(q->timer, dns.timeout);
	return q;
}

void dns_resolve(const char *name, int mode, dns_cb cb, void *arg)
{
	struct dns_req *q = dns_new(name, mode, cb, arg);
	char lit[DNS_ADDRLEN], norm[DNS_NAMELEN];
	int l = dns_literal(name, lit);
	if (l > 0) {
		dns_answer_literal(q, lit);
	} else if (mode != DNS_MODE_MX && mode != DNS_MODE_HOST) {
		dns_set(q, MX_TEMP, "bad resolution mode %d", mode);
	} else if (l < 0 || dns_name_ok(name, norm) < 0) {
		dns_set(q, MX_NODOMAIN, "invalid domain name");
	} else if (!dns.ctx) {
		dns_set(q, MX_TEMP, "resolver unavailable: %s", dns.why);
	} else if (mode == DNS_MODE_HOST) {
		snprintf(q->name, sizeof q->name, "%s", norm);
		dns_add_host(q, 0, q->name);
		dns_start_hosts(q);
	} else {
		snprintf(q->name, sizeof q->name, "%s", norm);
		dns_start(&q->mx, q->name);
		if (q->pending == 0)
			dns_set(q, MX_TEMP, "MX %s: %s", q->name, q->mx.why);
	}
}

/* ---------------------------------------------------------------- context */

static void dns_readable(int fd, short what, void *arg)
{
	int rc = ub_process(dns.ctx);
	if (rc != 0)
		log_err("event=dns_process_failed error=\"%s\"", ub_strerror(rc));
}

/* "ADDR" / "ADDR:PORT" / "[IPv6]:PORT" / bare IPv6 -> libunbound's "ADDR[@PORT]" */
static void dns_forwarder(const char *resolver, char *out, size_t outlen)
{
	const char *c = strrchr(resolver, ':');
	const char *e = strchr(resolver, ']');
	if (resolver[0] == '[' && e)
		snprintf(out, outlen, "%.*s%s%s", (int)(e - resolver - 1), resolver + 1,
		         e[1] == ':' ? "@" : "", e[1] == ':' ? e + 2 : "");
	else if (c && strchr(resolver, ':') == c)
		snprintf(out, outlen, "%.*s@%s", (int)(c - resolver), resolver, c + 1);
	else
		snprintf(out, outlen, "%s", resolver);
}

static int dns_fail(const char *what, int rc)
{
	snprintf(dns.why, sizeof dns.why, "%s: %s", what, rc ? ub_strerror(rc) : "failed");
	log_err("event=dns_init_failed step=%s error=\"%s\"", what, rc ? ub_strerror(rc) : "");
	if (dns.ctx)
		ub_ctx_delete(dns.ctx);
	dns.ctx = NULL;
	return -1;
}

int dns_init(const struct config *cfg)
{
	static const char *const opts[][2] = {
		{ "do-not-query-localhost:", "no" },   /* tests and local caches live on loopback */
		{ "module-config:", "iterator" },      /* no DNSSEC validation */
		/* the configured server is the only authority: none of libunbound's built-in
		 * RFC 6761 local zones answers in its place (mail to host.home.arpa works, and
		 * tests can serve .test). "transparent" without local data = resolve normally;
		 * libunbound 1.17 ignores "nodefault" set through ub_ctx_set_option() */
		{ "local-zone:", "localhost. transparent" },
		{ "local-zone:", "test. transparent" },
		{ "local-zone:", "invalid. transparent" },
		{ "local-zone:", "onion. transparent" },
		{ "local-zone:", "home.arpa. transparent" },
	};
	char fwd[128];
	int rc;
	dns_shutdown();
	if (!(dns.ctx = ub_ctx_create()))
		return dns_fail("ub_ctx_create", 0);
	if ((rc = ub_ctx_async(dns.ctx, 1)) != 0)
		return dns_fail("ub_ctx_async", rc);
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if ((rc = ub_ctx_set_option(dns.ctx, opts[i][0], opts[i][1])) != 0)
			return dns_fail(opts[i][0], rc);
	/* notice soon when a dead server is back; not essential (older libunbound lacks it) */
	if ((rc = ub_ctx_set_option(dns.ctx, "infra-keep-probing:", "yes")) != 0)
		log_warn("event=dns_option_ignored option=infra-keep-probing error=\"%s\"",
		         ub_strerror(rc));
	const char *res = cfg->resolver ? cfg->resolver : "";
	if (*res) {
		dns_forwarder(res, fwd, sizeof fwd);
		if ((rc = ub_ctx_set_fwd(dns.ctx, fwd)) != 0)
			return dns_fail("resolver", rc);
	} else if ((rc = ub_ctx_resolvconf(dns.ctx, NULL)) != 0) {
		return dns_fail("/etc/resolv.conf", rc);
	}
	dns.ev = ev_new(ub_fd(dns.ctx), EV_R | EV_PERSIST, dns_readable, NULL);
	ev_add(dns.ev, -1);
	log_info("event=dns_ready resolver=%s timeout_ms=%ld", *res ? fwd : "/etc/resolv.conf",
	         dns.timeout);
	return 0;
}

void dns_set_timeout(long msec)
{
	if (msec > 0)
		dns.timeout = msec;
}

void dns_shutdown(void)
{
	while (dns.reqs) {
		struct dns_req *q = dns.reqs;
		if (dns.ctx)
			dns_cancel(q);
		dns_unlink(q);
		free(q);
	}
	if (dns.ev)
		ev_free(dns.ev);
	dns.ev = NULL;
	if (dns.ctx)
		ub_ctx_delete(dns.ctx);
	dns.ctx = NULL;
	snprintf(dns.why, sizeof dns.why, "not initialised");
}
