/* test_addr — table-driven cases for mail/addr: paths, routes, null sender, postmaster,
 * quoting, literals, limits, parameters, split and lowercasing. */
#include "t.h"
#include "mail/addr.h"

static const struct {
	const char *in;
	enum addr_kind kind;
	int rc;
	const char *mailbox;   /* on success */
	const char *params;    /* on success */
	int code;              /* on failure */
} cases[] = {
	{ "<user@example.com>", ADDR_SENDER, 0, "user@example.com", "", 0 },
	{ "<User@Example.COM>", ADDR_RCPT, 0, "User@example.com", "", 0 },
	{ "  <a@b.c>", ADDR_RCPT, 0, "a@b.c", "", 0 },
	{ "<a@b.c>  ", ADDR_RCPT, 0, "a@b.c", "", 0 },
	{ "<>", ADDR_SENDER, 0, "", "", 0 },
	{ "<> SIZE=10", ADDR_SENDER, 0, "", "SIZE=10", 0 },
	{ "<>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<@a.example,@b.example:user@c.example>", ADDR_RCPT, 0, "user@c.example", "", 0 },
	{ "<@a.example:user@c.example>", ADDR_SENDER, 0, "user@c.example", "", 0 },
	{ "<@a.example user@c.example>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<@:user@c.example>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<@a.example,user@c.example>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<postmaster>", ADDR_RCPT, 0, "postmaster", "", 0 },
	{ "<PostMaster>", ADDR_RCPT, 0, "postmaster", "", 0 },
	{ "<postmaster>", ADDR_SENDER, -1, NULL, NULL, 501 },
	{ "<user>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<Postmaster@Example.ORG>", ADDR_RCPT, 0, "Postmaster@example.org", "", 0 },
	{ "<\"john doe\"@example.com>", ADDR_RCPT, 0, "\"john doe\"@example.com", "", 0 },
	{ "<\"john\"@example.com>", ADDR_RCPT, 0, "john@example.com", "", 0 },
	{ "<\"a\\\"b\"@x.org>", ADDR_RCPT, 0, "\"a\\\"b\"@x.org", "", 0 },
	{ "<\"a\\b\"@x.org>", ADDR_RCPT, 0, "ab@x.org", "", 0 },
	{ "<\"a@b\"@x.org>", ADDR_RCPT, 0, "\"a@b\"@x.org", "", 0 },
	{ "<\"\"@x.org>", ADDR_RCPT, 0, "\"\"@x.org", "", 0 },
	{ "<\"a..b\"@x.org>", ADDR_RCPT, 0, "\"a..b\"@x.org", "", 0 },
	{ "<\"unterminated@x.org>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<\"a\x01\"@x.org>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<\"a\\\x7f\"@x.org>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<user@[127.0.0.1]>", ADDR_RCPT, 0, "user@[127.0.0.1]", "", 0 },
	{ "<user@[IPv6:::1]>", ADDR_RCPT, 0, "user@[IPv6:::1]", "", 0 },
	{ "<user@[ipv6:2001:DB8::1]>", ADDR_RCPT, 0, "user@[IPv6:2001:db8::1]", "", 0 },
	{ "<user@[1.2.3]>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<user@[256.1.1.1]>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<user@[IPv6:zz::]>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<user@[]>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<user@[127.0.0.1>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<user@[x:1.2.3.4]>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ " <a@b.c>  SIZE=100 BODY=8BITMIME", ADDR_SENDER, 0, "a@b.c", "SIZE=100 BODY=8BITMIME", 0 },
	{ "<a@b.c>SIZE=1", ADDR_SENDER, -1, NULL, NULL, 501 },
	{ "<a@b.c>>", ADDR_SENDER, -1, NULL, NULL, 501 },
	{ "a@b.c", ADDR_SENDER, 0, "a@b.c", "", 0 },
	{ "a@B.C SIZE=5", ADDR_SENDER, 0, "a@b.c", "SIZE=5", 0 },
	{ "postmaster", ADDR_RCPT, 0, "postmaster", "", 0 },
	{ "", ADDR_SENDER, -1, NULL, NULL, 501 },
	{ "   ", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a@b.c", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "a@b.c>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a..b@c.d>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<.a@c.d>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a.@c.d>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a.b+tag@c.d>", ADDR_RCPT, 0, "a.b+tag@c.d", "", 0 },
	{ "<!#$%&'*+-/=?^_`{|}~@c.d>", ADDR_RCPT, 0, "!#$%&'*+-/=?^_`{|}~@c.d", "", 0 },
	{ "<a@-b.c>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a@b-.c>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a@b..c>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a@b.c.>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a@.b.c>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a@>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<@b.c>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a@b_c.d>", ADDR_RCPT, 0, "a@b_c.d", "", 0 },
	{ "<a@b>", ADDR_RCPT, 0, "a@b", "", 0 },
	{ "<a@x-y.c0m>", ADDR_RCPT, 0, "a@x-y.c0m", "", 0 },
	{ "<a b@c.d>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a\x01@b.c>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a@b.c\x7f>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<a(comment)@b.c>", ADDR_RCPT, -1, NULL, NULL, 501 },
	{ "<\xc3\xa9@x.org>", ADDR_RCPT, -1, NULL, NULL, 553 },
	{ "<user@ex\xc3\xa4mple.org>", ADDR_SENDER, -1, NULL, NULL, 553 },
	{ "<a@b.c> X=\xc3\xa9", ADDR_SENDER, 0, "a@b.c", "X=\xc3\xa9", 0 },
};

static void run_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct addr a;
		int rc = addr_parse(cases[i].in, cases[i].kind, &a);
		if (rc != cases[i].rc)
			fprintf(stderr, "case %zu: \"%s\" why=%s\n", i, cases[i].in, a.why ? a.why : "");
		T_EQ_INT(rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0) {
			T_EQ_STR(a.mailbox, cases[i].mailbox);
			T_EQ_STR(a.params, cases[i].params);
		} else if (rc < 0 && cases[i].rc < 0) {
			T_EQ_INT(a.code, cases[i].code);
			T_CHECK(a.why != NULL);
		}
	}
}

static void fill(char *p, char c, size_t n)
{
	memset(p, c, n);
	p[n] = '\0';
}

static void run_limits(void)
{
	char buf[1000], local[100], lab[100], dom[500];
	struct addr a;
	fill(local, 'l', 64);
	snprintf(buf, sizeof buf, "<%s@x.org>", local);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), 0);
	T_EQ_INT(a.local_len, 64);
	fill(local, 'l', 65);
	snprintf(buf, sizeof buf, "<%s@x.org>", local);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), -1);
	T_EQ_STR(a.why, "Local part too long");
	fill(local, 'q', 62);                                /* quoted: 62 + 2 = 64, the limit */
	snprintf(buf, sizeof buf, "<\"%s\"@x.org>", local);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), 0);
	fill(local, 'q', 63);
	snprintf(buf, sizeof buf, "<\"%s\"@x.org>", local);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), -1);
	T_EQ_STR(a.why, "Local part too long");
	fill(lab, 'd', 63);
	snprintf(buf, sizeof buf, "<a@%s.org>", lab);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), 0);
	fill(lab, 'd', 64);
	snprintf(buf, sizeof buf, "<a@%s.org>", lab);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), -1);
	/* domain of 252 octets: path "<a@" + 252 + ">" = 256, the limit */
	fill(lab, 'd', 63);
	snprintf(dom, sizeof dom, "%s.%s.%s.%.60s", lab, lab, lab, lab);
	T_EQ_INT(strlen(dom), 252);
	snprintf(buf, sizeof buf, "<a@%s>", dom);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), 0);
	snprintf(buf, sizeof buf, "<ab@%s>", dom);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), -1);
	T_EQ_STR(a.why, "Path too long");
	snprintf(dom, sizeof dom, "%s.%s.%s.%s.x", lab, lab, lab, lab);   /* 257 */
	snprintf(buf, sizeof buf, "<a@%s>", dom);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), -1);
	T_EQ_STR(a.why, "Domain too long");
	/* a long source route counts against the path */
	snprintf(buf, sizeof buf, "<@%s.%s.%s:a@%.60s>", lab, lab, lab, lab);
	T_EQ_INT(addr_parse(buf, ADDR_RCPT, &a), -1);
}

static void run_params(void)
{
	static const struct {
		const char *in;
		int n;                      /* parameters parsed before the end or the error */
		int rc;                     /* last return: 0 end, -1 error */
		const char *k1, *v1;
	} pc[] = {
		{ "SIZE=100 BODY=8BITMIME", 2, 0, "SIZE", "100" },
		{ "size=1", 1, 0, "SIZE", "1" },
		{ "", 0, 0, NULL, NULL },
		{ "   ", 0, 0, NULL, NULL },
		{ "FOO", 1, 0, "FOO", "" },
		{ "A-B=c  D", 2, 0, "A-B", "c" },
		{ "=x", 0, -1, NULL, NULL },
		{ "SIZE=", 0, -1, NULL, NULL },
		{ "-A", 0, -1, NULL, NULL },
		{ "SIZE=1=2", 0, -1, NULL, NULL },
		{ "SIZE=a b", 2, 0, "SIZE", "a" },
		{ "K\x01=1", 0, -1, NULL, NULL },
		{ "X=\xc3\xa9", 0, -1, NULL, NULL },
		{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=1", 0, -1, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
		const char *cur = pc[i].in, *why;
		struct addr_param p;
		int n = 0, r;
		while ((r = addr_param_next(&cur, &p, &why)) > 0) {
			if (n == 0 && pc[i].k1) {
				T_EQ_STR(p.key, pc[i].k1);
				T_EQ_STR(p.val, pc[i].v1);
				T_EQ_INT(p.hasval, *pc[i].v1 != '\0');
			}
			n++;
		}
		T_EQ_INT(n, pc[i].n);
		T_EQ_INT(r, pc[i].rc);
	}
}

static void run_split(void)
{
	char l[80], d[80];
	T_EQ_INT(addr_split("a@b.c", l, sizeof l, d, sizeof d), 0);
	T_EQ_STR(l, "a");
	T_EQ_STR(d, "b.c");
	T_EQ_INT(addr_split("\"x@y\"@b.c", l, sizeof l, d, sizeof d), 0);
	T_EQ_STR(l, "\"x@y\"");
	T_EQ_STR(d, "b.c");
	T_EQ_INT(addr_split("\"x\\\"@y\"@z", l, sizeof l, d, sizeof d), 0);
	T_EQ_STR(d, "z");
	T_EQ_INT(addr_split("postmaster", l, sizeof l, d, sizeof d), -1);
	T_EQ_INT(addr_split("a@", l, sizeof l, d, sizeof d), -1);
	T_EQ_INT(addr_split("\"a@b\"", l, sizeof l, d, sizeof d), -1);
	T_EQ_INT(addr_split("abc@d", l, 3, d, sizeof d), -1);
	T_EQ_INT(addr_split("ab@def", l, 3, d, 3), -1);

	char dom[64];
	snprintf(dom, sizeof dom, "ExAmple.COM");
	addr_domain_lower(dom);
	T_EQ_STR(dom, "example.com");
	snprintf(dom, sizeof dom, "[IPV6:AB::1]");
	addr_domain_lower(dom);
	T_EQ_STR(dom, "[IPv6:ab::1]");

	T_EQ_INT(addr_domain_valid("example.com", 11), 1);
	T_EQ_INT(addr_domain_valid("", 0), 0);
	T_EQ_INT(addr_domain_valid("a..b", 4), 0);
	T_EQ_INT(addr_domain_valid("[1.2.3.4]", 9), 1);
	T_EQ_INT(addr_domain_valid("a.b x", 5), 0);
	T_EQ_INT(addr_is_dot_string("a.b", 3), 1);
	T_EQ_INT(addr_is_dot_string("a..b", 4), 0);
	T_EQ_INT(addr_is_dot_string("", 0), 0);
}

static void run(void)
{
	run_cases();
	run_limits();
	run_params();
	run_split();
}

T_MAIN(run)
