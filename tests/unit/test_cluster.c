/* test_cluster — the cluster's loop rules (src/mail/cluster.c), table-driven: cookie syntax,
 * the greeting test, the header line and the X-Tern-Cluster counter (folded lines, case,
 * CRLF, the end of the header section, any split of the input). Trusts: nothing. */
#include "t.h"
#include "mail/cluster.h"

static const struct { const char *c; int ok; } cookie_cases[] = {
	{ "s3cr3t-cookie", 1 },
	{ "a", 1 },
	{ "0123456789abcdef0123456789abcdef", 1 },        /* 32 */
	{ "0123456789abcdef0123456789abcdef0", 0 },       /* 33 */
	{ "", 0 },
	{ "two words", 0 },
	{ "tab\there", 0 },
	{ "nl\n", 0 },
	{ "caf\xc3\xa9", 0 },
	{ "del\x7f", 0 },
	{ "!#$%&'*+-/=?^_`{|}~", 1 },
};

static void test_cookie(void)
{
	for (size_t i = 0; i < sizeof cookie_cases / sizeof cookie_cases[0]; i++)
		T_EQ_INT(cluster_cookie_ok(cookie_cases[i].c), cookie_cases[i].ok);
	T_EQ_INT(cluster_cookie_ok(NULL), 0);
}

static const struct { const char *text; const char *cookie; int has; } greet_cases[] = {
	{ "node-b.example ESMTP tern c00kie\n", "c00kie", 1 },
	{ "node-b.example ESMTP tern c00kie", "c00kie", 1 },
	{ "node-b.example ESMTP tern c00kie  \r\n", "c00kie", 1 },
	{ "node-b.example ESMTP tern\tc00kie\n", "c00kie", 1 },
	{ "first line c00kie\nsecond line\n", "c00kie", 0 },    /* only the last line counts */
	{ "first line\nsecond line c00kie\n", "c00kie", 1 },
	{ "node-b.example ESMTP tern xc00kie\n", "c00kie", 0 }, /* a whole word */
	{ "node-b.example ESMTP tern C00KIE\n", "c00kie", 0 },  /* exact case */
	{ "c00kie\n", "c00kie", 0 },                            /* after a blank */
	{ "node-b.example ESMTP tern c00kie-2\n", "c00kie", 0 },
	{ "node-b.example ESMTP tern\n", "c00kie", 0 },
	{ "node-b.example ESMTP tern c00kie\n", "", 0 },
	{ "", "c00kie", 0 },
};

static void test_greeting(void)
{
	for (size_t i = 0; i < sizeof greet_cases / sizeof greet_cases[0]; i++) {
		const char *t = greet_cases[i].text;
		int got = cluster_greeting_has_cookie(t, strlen(t), greet_cases[i].cookie);
		if (got != greet_cases[i].has)
			fprintf(stderr, "case %zu: \"%s\"\n", i, t);
		T_EQ_INT(got, greet_cases[i].has);
	}
	T_EQ_INT(cluster_greeting_has_cookie(NULL, 0, "c"), 0);
	T_EQ_INT(cluster_greeting_has_cookie("x c", 3, NULL), 0);
	/* n bounds the text: what follows is not read */
	T_EQ_INT(cluster_greeting_has_cookie("x c00kie", 4, "c00kie"), 0);
}

static void test_header_line(void)
{
	char out[64];
	T_EQ_INT(cluster_header_line("node-a.example", out, sizeof out), 31);
	T_EQ_STR(out, "X-Tern-Cluster: node-a.example\n");
	T_EQ_INT(cluster_header_line("a\r\nb\x80", out, sizeof out), 22);
	T_EQ_STR(out, "X-Tern-Cluster: a??b?\n");
	T_EQ_INT(cluster_header_line("node-a.example", out, 31), -1);
	T_EQ_STR(out, "");
	T_EQ_INT(cluster_header_line("node-a.example", out, 32), 31);
}

static const struct { const char *msg; unsigned hops; int done; } hop_cases[] = {
	{ "Received: x\nX-Tern-Cluster: a\nX-Tern-Cluster: b\n\nbody\n", 2, 1 },
	{ "x-tern-cluster: a\nX-TERN-CLUSTER: b\nX-Tern-Cluster : c\nX-Tern-Cluster\t:d\n\n", 4, 1 },
	{ "Subject: hi\n X-Tern-Cluster: folded\n\tX-Tern-Cluster: folded\n\n", 0, 1 },
	{ "Subject: X-Tern-Cluster: a\nX-Tern-Clusters: b\nX-Tern-Cluste: c\nXX-Tern-Cluster: d\n\n", 0, 1 },
	{ "X-Tern-Cluster a\nX-Tern-Cluster\nX-Tern-Cluster\n: a\n\n", 0, 1 },
	{ "A: b\n\nX-Tern-Cluster: body\nX-Tern-Cluster: body\n", 0, 1 },
	{ "A: b\r\nX-Tern-Cluster: a\r\n\r\nX-Tern-Cluster: body\r\n", 1, 1 },
	{ "X-Tern-Cluster: a\nX-Tern-Cluster: b", 2, 0 },  /* no body: the section never ends */
	{ "\nX-Tern-Cluster: a\n", 0, 1 },                   /* empty header section */
	{ "A: b\n\r\rX-Tern-Cluster: a\n\n", 0, 1 },
	{ "A: b\n\r X\nX-Tern-Cluster: a\n\n", 1, 1 },       /* CR then not LF: a line */
	{ "", 0, 0 },
};

static void test_hops(void)
{
	for (size_t i = 0; i < sizeof hop_cases / sizeof hop_cases[0]; i++) {
		const char *m = hop_cases[i].msg;
		size_t n = strlen(m);
		for (size_t split = 0; split <= n; split++) {   /* any split, same answer */
			struct cluster_hops h;
			cluster_hops_init(&h);
			int d = cluster_hops_feed(&h, m, split);
			if (!d)
				d = cluster_hops_feed(&h, m + split, n - split);
			if (h.hops != hop_cases[i].hops || d != hop_cases[i].done)
				fprintf(stderr, "case %zu split %zu: hops %u done %d\n", i, split, h.hops, d);
			T_EQ_INT(h.hops, hop_cases[i].hops);
			T_EQ_INT(d, hop_cases[i].done);
		}
	}
	struct cluster_hops h;                                /* one byte at a time */
	cluster_hops_init(&h);
	const char *m = hop_cases[0].msg;
	for (size_t i = 0; m[i]; i++)
		cluster_hops_feed(&h, m + i, 1);
	T_EQ_INT(h.hops, 2);
	T_EQ_INT(h.done, 1);
}

static void run(void)
{
	test_cookie();
	test_greeting();
	test_header_line();
	test_hops();
}

T_MAIN(run)
