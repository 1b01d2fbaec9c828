/* test_mailq2 — MAILQ v2's pure parts byte for byte: saytime (PROTOCOLS.md §1 examples),
 * command lines, the auth file with its rights and v4/v6/negated ACLs, the challenge
 * response, every reply body (SNMP, SHORT, THREADS, THREADS2, SHOW THREAD), dot-stuffing,
 * the snapshot and listing decoders (including hostile counts), and the admin views (mailq,
 * JSON, qstat, stats, OpenMetrics). */
#include "t.h"
#include "mail/mailq2.h"
#include "mail/envelope.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

static void saytime(void)
{
	static const struct { long s; const char *want; } cases[] = {
		{ 151200, "1d18h" }, { 151259, "1d18h" }, { 40288, "11h11m28s" },
		{ 88282, "1d31m22s" }, { 300, "5m" }, { 0, "0s" }, { -5, "0s" }, { 3600, "1h" },
		{ 61, "1m1s" }, { 59, "59s" }, { 86400, "1d" }, { 90061, "1d1h" }, { 3661, "1h1m1s" },
		{ 864000 + 7200, "10d2h" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[48];
		mailq2_saytime(cases[i].s, out);
		T_EQ_STR(out, cases[i].want);
	}
}

static struct mq2_cmd parse(const char *line)
{
	struct mq2_cmd c;
	mailq2_parse(line, strlen(line), &c);
	return c;
}

static int arg_is(const struct mq2_cmd *c, size_t i, const char *s)
{
	return c->arg[i].n == strlen(s) && memcmp(c->arg[i].p, s, c->arg[i].n) == 0;
}

static void commands(void)
{
	static const struct { const char *line; enum mq2_verb verb; unsigned right; size_t nargs; } cases[] = {
		{ "AUTH bob 0123", MQ2_AUTH, 0, 2 },
		{ "AUTH bob", MQ2_BAD, 0, 0 },
		{ "QUIT", MQ2_QUIT, 0, 0 }, { "quit", MQ2_QUIT, 0, 0 }, { "Exit now", MQ2_QUIT, 0, 0 },
		{ "SHOW SNMP", MQ2_SHOW_SNMP, MQ2_SNMP, 0 },
		{ "show snmp", MQ2_BAD, 0, 0 },
		{ "SHOW QUEUE SHORT", MQ2_SHOW_SHORT, MQ2_QQ, 0 },
		{ "SHOW  QUEUE\tTHREADS", MQ2_SHOW_THREADS, MQ2_TT, 0 },
		{ "SHOW QUEUE THREADS2", MQ2_SHOW_THREADS2, MQ2_TT, 0 },
		{ "SHOW QUEUE THREADS3", MQ2_BAD, 0, 0 },
		{ "SHOW QUEUE", MQ2_BAD, 0, 0 },
		{ "SHOW THREAD smtp example.com", MQ2_SHOW_THREAD, MQ2_TT, 2 },
		{ "SHOW THREAD smtp", MQ2_BAD, 0, 0 },
		{ "KILL MSG 0123456789abcdef", MQ2_KILL_MSG, MQ2_KILL, 1 },
		{ "KILL THREAD smtp example.com", MQ2_KILL_THREAD, MQ2_KILL, 2 },
		{ "REQUEUE ROUTER 0123456789abcdef", MQ2_REQUEUE, MQ2_KILL, 1 },
		{ "ETRN example.com", MQ2_ETRN_CMD, MQ2_ETRN, 1 },
		{ "ETRN", MQ2_ETRN_CMD, MQ2_ETRN, 0 },
		{ "etrn example.com", MQ2_BAD, 0, 0 },
		{ "", MQ2_BAD, 0, 0 }, { "   ", MQ2_BAD, 0, 0 },
		{ "A B C D E F G H I J", MQ2_BAD, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mq2_cmd c = parse(cases[i].line);
		if (c.verb != cases[i].verb)
			fprintf(stderr, "line '%s'\n", cases[i].line);
		T_EQ_INT(c.verb, cases[i].verb);
		T_EQ_INT(c.right, cases[i].right);
		T_EQ_INT(c.nargs, cases[i].nargs);
	}
	struct mq2_cmd c = parse("SHOW THREAD smtp example.com");
	T_CHECK(arg_is(&c, 0, "smtp") && arg_is(&c, 1, "example.com"));
	c = parse("AUTH  alice   d2593bea");
	T_CHECK(arg_is(&c, 0, "alice") && arg_is(&c, 1, "d2593bea"));
	struct buf b;
	buf_init(&b);
	c = parse("SHOW  QUEUE FOO  bar");
	mailq2_refusal(&b, &c);
	T_EQ_STR(b.p, "-MAILQ2 Unknown command, or refused by access control; VERB='SHOW' "
	         "REST='QUEUE FOO  bar'\n");
	buf_reset(&b);
	c = parse("NOOP\x01x");
	mailq2_refusal(&b, &c);
	T_EQ_STR(b.p, "-MAILQ2 Unknown command, or refused by access control; VERB='NOOP?x' REST=''\n");
	buf_free(&b);
}

static const char authfile[] =
	"# the MAILQ v2 auth file\n"
	"alice:pw1:ALL:\n"
	"bob:pw2:SNMP QQ:[127.0.0.0]/8 [IPv6:::1]/128\r\n"
	"carol:pw3:TT ETRN:![10.1.2.3] [10.0.0.0]/8\n"
	"  dave:pw4:NONE:[IPv6:2001:db8::]/32,[192.168.1.0]/24  \n"
	"bad line\n"
	"eve:pw:FOO:\n"
	"frank:pw::[1.2.3.4]/33\n"
	":pw:ALL:\n"
	"gina:pw:KILL:[1.2.3.4]/x\n"
	"bob:other:ALL:[10.0.0.0]/8\n"
	"\n";

static struct mq2_addr addr(const char *s)
{
	struct mq2_addr a;
	T_EQ_INT(mailq2_addr_parse(s, &a), 0);
	return a;
}

static int allowed(const struct mq2_auth *a, const char *user, const char *ip)
{
	struct mq2_addr ad = addr(ip);
	return mailq2_auth_find(a, user, strlen(user), &ad) != NULL;
}

static void auth(void)
{
	struct cfg_errors errs = { .n = 0 };
	struct mq2_auth *a = mailq2_auth_parse("mailq_auth", authfile, sizeof authfile - 1, &errs);
	T_EQ_INT(a->n, 5);
	T_EQ_INT(errs.n, 5);
	T_EQ_INT(errs.e[0].line, 6);
	T_EQ_STR(errs.e[0].file, "mailq_auth");
	T_EQ_INT(errs.e[1].line, 7);
	T_EQ_INT(errs.e[2].line, 8);
	T_EQ_INT(errs.e[3].line, 9);
	T_EQ_INT(errs.e[4].line, 10);
	T_EQ_INT(a->e[0].rights, MQ2_ALL);
	T_EQ_INT(a->e[1].rights, MQ2_SNMP | MQ2_QQ);
	T_EQ_INT(a->e[2].rights, MQ2_TT | MQ2_ETRN);
	T_EQ_INT(a->e[3].rights, 0);
	T_EQ_STR(a->e[3].user, "dave");
	T_EQ_STR(a->e[1].password, "pw2");
	T_EQ_INT(a->e[3].nacl, 2);
	/* v4 and v6 prefixes */
	T_CHECK(allowed(a, "alice", "192.0.2.1"));
	T_CHECK(allowed(a, "alice", "2001:db8::1"));
	T_CHECK(allowed(a, "bob", "127.1.2.3"));
	T_CHECK(allowed(a, "bob", "::1"));
	T_CHECK(!allowed(a, "bob", "::2"));
	T_CHECK(allowed(a, "bob", "::ffff:127.0.0.1"));          /* mapped: IPv4 rules */
	/* negation: the first matching pattern decides */
	T_CHECK(!allowed(a, "carol", "10.1.2.3"));
	T_CHECK(allowed(a, "carol", "10.1.2.4"));
	T_CHECK(!allowed(a, "carol", "11.0.0.1"));
	T_CHECK(allowed(a, "dave", "2001:db8:ffff::5"));
	T_CHECK(!allowed(a, "dave", "2001:db9::5"));
	T_CHECK(allowed(a, "dave", "192.168.1.77"));
	T_CHECK(!allowed(a, "dave", "192.168.2.77"));
	T_CHECK(!allowed(a, "nobody", "127.0.0.1"));
	T_CHECK(!allowed(a, "bo", "127.0.0.1"));
	/* the first entry for the user whose ACL admits the client decides */
	struct mq2_addr ten = addr("10.9.9.9"), lo = addr("127.0.0.1");
	const struct mq2_entry *e = mailq2_auth_find(a, "bob", 3, &ten);
	T_CHECK(e && strcmp(e->password, "other") == 0 && e->rights == MQ2_ALL);
	e = mailq2_auth_find(a, "bob", 3, &lo);
	T_CHECK(e && strcmp(e->password, "pw2") == 0);
	T_CHECK(mailq2_auth_any(a, &ten));
	mailq2_auth_free(a);

	/* without an open entry some addresses get no access at all */
	static const char strict[] = "ops:pw:ALL:[127.0.0.1]\nmon:pw:SNMP:!127.0.0.1 [::1]\n";
	errs.n = 0;
	a = mailq2_auth_parse("strict", strict, sizeof strict - 1, &errs);
	T_EQ_INT(a->n, 1);                       /* "!127.0.0.1" lacks brackets: refused */
	T_EQ_INT(errs.n, 1);
	struct mq2_addr other = addr("192.0.2.9");
	T_CHECK(mailq2_auth_any(a, &lo));
	T_CHECK(!mailq2_auth_any(a, &other));
	mailq2_auth_free(a);
	a = mailq2_auth_parse("empty", "", 0, NULL);
	T_CHECK(!mailq2_auth_any(a, &lo));
	mailq2_auth_free(a);

	/* socket addresses */
	struct sockaddr_in6 s6;
	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6.sin6_addr);
	struct mq2_addr got;
	T_EQ_INT(mailq2_addr_from_sockaddr((struct sockaddr *)&s6, sizeof s6, &got), 0);
	T_EQ_INT(got.family, AF_INET);
	T_CHECK(got.a[0] == 10 && got.a[3] == 3);
	T_EQ_INT(mailq2_addr_parse("not an address", &got), -1);
}

static void response(void)
{
	const char *ch = "220 MAILQ-V2-CHALLENGE: 0123456789abcdef";
	char hex[33];
	mailq2_response(ch, "secret", hex);
	T_EQ_STR(hex, "d2593bea2d72df7dc629ce617345d4a9");
	T_CHECK(mailq2_check_response(ch, "secret", hex, 32));
	T_CHECK(mailq2_check_response(ch, "secret", "D2593BEA2D72DF7DC629CE617345D4A9", 32));
	T_CHECK(!mailq2_check_response(ch, "secreT", hex, 32));
	T_CHECK(!mailq2_check_response(ch, "secret", hex, 31));
	T_CHECK(!mailq2_check_response(ch, "secret", "d2593bea2d72df7dc629ce617345d4a99", 33));
	T_CHECK(!mailq2_check_response(ch, "secret", "", 0));
	/* the same digest as APOP's (RFC 1939's example), so one function serves both */
	mailq2_response("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf", hex);
	T_EQ_STR(hex, "c4c9334bac560ecc979e58001b3e22fb");
}

/* ---- the snapshot ------------------------------------------------------------------------- */

#define NOW 1000000u

static struct mq2_chan chans[] = { { "local", 10, 1, 1 }, { "smtp", 20, 1, 2 } };
static struct mq2_thread threads[] = {
	{ "local", "", 1, 1, 0, NOW - 65, 0, 1, 4, 10, MQ2_ALIVE },
	{ "smtp", "example.com", 2, 3, 4, NOW - 151200, NOW + 300, 1, 1, 10, MQ2_DEAD },
	{ "smtp", "a-very-long-host-name.example.org", 1, 1, 1, NOW - 40288, 0, 0, 4, 10, MQ2_ALIVE },
	{ "lmtp", "[127.0.0.1]:24", 1, 1, 0, NOW, 0, 1, 1, 5, MQ2_PROBE },
};
static struct mq2_item items[] = {
	{ 0x0123456789abcdefu, "a@b", 2, 1604800, NOW + 88282, 999000, 3, "", "451 try\tlater" },
	{ 0xfedcba9876543210u, "", 0, 1604800, 0, 0, 0, "channel", "" },
	{ 0x00000000000000aau, "", 1, 1604800, NOW + 300, 0, 0, "dead", "" },
};

static struct mq2_snap snap(void)
{
	struct mq2_snap s = { NOW, NOW - 3723, 12, 9, 20, 15, 2, 3, 5, chans, threads, items,
	                      2, 4, 3 };
	return s;
}

static void check_body(void (*fn)(struct buf *, const struct mq2_snap *), const char *want)
{
	struct buf b;
	struct mq2_snap s = snap();
	buf_init(&b);
	fn(&b, &s);
	T_EQ_STR(b.p, want);
	buf_free(&b);
}

static void fmt_short(struct buf *b, const struct mq2_snap *s) { mailq2_fmt_queue(b, s, 0); }
static void fmt_threads(struct buf *b, const struct mq2_snap *s) { mailq2_fmt_queue(b, s, 1); }

static void bodies(void)
{
	check_body(mailq2_fmt_snmp,
		"Kids: 2  Idle:  0  Msgs:   3  Thrds:   4  Rcpnts:    5  Uptime: 3723 sec\n"
		"Msgs in 12 out 9 stored 3 Rcpnts in 20 out 15 stored 5\n");
	check_body(fmt_short,
		"local/*/0\n"
		"\tThreads:    1 Msgs:     1 Procs:   1 Idle:   0 Plim:  10 Flim:   0 Tlim: 0\n"
		"smtp/*/0\n"
		"\tThreads:    2 Msgs:     3 Procs:   1 Idle:   0 Plim:  20 Flim:   0 Tlim: 0\n"
		"lmtp/*/0\n"
		"\tThreads:    1 Msgs:     1 Procs:   1 Idle:   0 Plim:   0 Flim:   0 Tlim: 0\n"
		"Kids: 2  Idle:  0  Msgs:   3  Thrds:   4  Rcpnts:    5  Uptime: 1h2m3s\n"
		"Msgs in 12 out 9 stored 3 Rcpnts in 20 out 15 stored 5\n");
	check_body(fmt_threads,
		"local/*/0\n"
		"    local//0\t\t\tN=1   R=1   A=0  QA=1m5s\n"
		"\tThreads:    1 Msgs:     1 Procs:   1 Idle:   0 Plim:  10 Flim:   0 Tlim: 0\n"
		"smtp/*/0\n"
		"    smtp/example.com/0\t\tN=2   R=3   A=4  W=300s QA=1d18h S=dead\n"
		"    smtp/a-very-long-host-name.example.org/0 N=1   R=1   A=1  QA=11h11m28s\n"
		"\tThreads:    2 Msgs:     3 Procs:   1 Idle:   0 Plim:  20 Flim:   0 Tlim: 0\n"
		"lmtp/*/0\n"
		"    lmtp/[127.0.0.1]:24/0\tN=1   R=1   A=0  QA=0s S=probe\n"
		"\tThreads:    1 Msgs:     1 Procs:   1 Idle:   0 Plim:   0 Flim:   0 Tlim: 0\n"
		"Kids: 2  Idle:  0  Msgs:   3  Thrds:   4  Rcpnts:    5  Uptime: 1h2m3s\n"
		"Msgs in 12 out 9 stored 3 Rcpnts in 20 out 15 stored 5\n");
	check_body(mailq2_fmt_threads2,
		"local\t\tN=1\tR=1\tA=0\tQA=1m5s\n"
		"smtp\texample.com\tN=2\tR=3\tA=4\tQA=1d18h\tS=dead\n"
		"smtp\ta-very-long-host-name.example.org\tN=1\tR=1\tA=1\tQA=11h11m28s\n"
		"lmtp\t[127.0.0.1]:24\tN=1\tR=1\tA=0\tQA=0s\tS=probe\n");
	check_body(mailq2_fmt_thread,
		"0123456789abcdef\t<a@b>\t2\t1604800\t1088282\t999000\t3\tretry in 1d31m22s\t451 try later\n"
		"fedcba9876543210\t<>\t0\t1604800\t0\t0\t0\tchannel\t\n"
		"00000000000000aa\t<>\t1\t1604800\t1000300\t0\t0\tdead; retry in 5m\t\n");
	/* an empty scheduler */
	struct mq2_snap e = { .now = NOW, .started = NOW };
	struct buf b;
	buf_init(&b);
	mailq2_fmt_queue(&b, &e, 1);
	T_EQ_STR(b.p, "Kids: 0  Idle:  0  Msgs:   0  Thrds:   0  Rcpnts:    0  Uptime: 0s\n"
	         "Msgs in 0 out 0 stored 0 Rcpnts in 0 out 0 stored 0\n");
	buf_reset(&b);
	mailq2_fmt_thread(&b, &e);
	T_EQ_INT(b.len, 0);
	buf_free(&b);
}

static void multiline(void)
{
	struct buf b;
	buf_init(&b);
	mailq2_multiline(&b, ".x\nabc", 6);
	T_EQ_STR(b.p, "+OK until LF.LF\n..x\nabc\n.\n");
	buf_reset(&b);
	mailq2_multiline(&b, "", 0);
	T_EQ_STR(b.p, "+OK until LF.LF\n.\n");
	buf_reset(&b);
	mailq2_multiline(&b, "a\n.\n..\n", 7);
	T_EQ_STR(b.p, "+OK until LF.LF\na\n..\n...\n.\n");
	buf_reset(&b);
	int bol = 1;                              /* carried across chunks */
	mailq2_dotstuff(&b, "ab\n", 3, &bol);
	mailq2_dotstuff(&b, ".c.", 3, &bol);
	T_EQ_STR(b.p, "ab\n..c.");
	T_EQ_INT(bol, 0);
	buf_free(&b);
}

static void put_snap(struct msg *m, const struct mq2_snap *s, int with_items)
{
	uint64_t head[] = { s->now, s->started, s->msgs_in, s->msgs_out, s->rcpts_in,
	                    s->rcpts_out, s->kids, s->nmsgs, s->nrcpts };
	for (size_t i = 0; i < 9; i++)
		msg_u64(m, head[i]);
	msg_u64(m, s->nchans);
	for (size_t i = 0; i < s->nchans; i++) {
		msg_str(m, s->chans[i].name);
		msg_u64(m, s->chans[i].limit);
		msg_u64(m, s->chans[i].inflight);
		msg_u64(m, s->chans[i].nthreads);
	}
	msg_u64(m, s->nthreads);
	for (size_t i = 0; i < s->nthreads; i++) {
		const struct mq2_thread *t = &s->threads[i];
		msg_str(m, t->channel);
		msg_str(m, t->host);
		uint64_t v[] = { t->nmsgs, t->nrcpts, t->attempts, t->oldest, t->next, t->inflight,
		                 t->window, t->perhost, t->state };
		for (size_t k = 0; k < 9; k++)
			msg_u64(m, v[k]);
	}
	if (!with_items)
		return;
	msg_u64(m, s->nitems);
	for (size_t i = 0; i < s->nitems; i++) {
		const struct mq2_item *it = &s->items[i];
		msg_u64(m, it->msgid);
		msg_str(m, it->sender);
		uint64_t v[] = { it->idx, it->expiry, it->next, it->lastfeed, it->attempts };
		for (size_t k = 0; k < 5; k++)
			msg_u64(m, v[k]);
		msg_str(m, it->reason);
		msg_str(m, it->diag);
	}
}

static int decode(struct msg *m, size_t cut, struct mq2_snap *out)
{
	struct msg_reader r;
	msg_reader_init(&r, m->b.p + MSG_HDRLEN, m->b.len - MSG_HDRLEN - cut);
	return mailq2_snap_decode(&r, out);
}

static void snap_decode(void)
{
	struct mq2_snap s = snap(), d;
	struct msg m;
	msg_init(&m, 101, 1);
	put_snap(&m, &s, 1);
	T_EQ_INT(decode(&m, 0, &d), 0);
	T_EQ_INT(d.nthreads, 4);
	T_EQ_INT(d.nitems, 3);
	T_EQ_STR(d.threads[1].host, "example.com");
	T_EQ_INT(d.threads[1].state, MQ2_DEAD);
	T_EQ_INT(d.threads[1].perhost, 10);
	T_EQ_INT(d.threads[3].state, MQ2_PROBE);
	T_EQ_STR(d.items[0].diag, "451 try\tlater");
	T_CHECK(d.items[1].msgid == 0xfedcba9876543210u);
	T_EQ_INT(d.chans[1].limit, 20);
	mailq2_snap_free(&d);
	struct msg m0;                             /* kind 0: no items part at all */
	msg_init(&m0, 101, 1);
	put_snap(&m0, &s, 0);
	for (size_t cut = 1; cut < m.b.len - MSG_HDRLEN; cut += 1)
		if (cut != m.b.len - m0.b.len)     /* cutting exactly the items part is valid */
			T_EQ_INT(decode(&m, cut, &d), -1);
	msg_discard(&m);
	m = m0;
	T_EQ_INT(decode(&m, 0, &d), 0);
	T_EQ_INT(d.nitems, 0);
	mailq2_snap_free(&d);
	msg_u64(&m, 0);                            /* or an empty one */
	T_EQ_INT(decode(&m, 0, &d), 0);
	mailq2_snap_free(&d);
	msg_discard(&m);
	msg_init(&m, 101, 1);                      /* a hostile count allocates nothing */
	for (int i = 0; i < 9; i++)
		msg_u64(&m, 1);
	msg_u64(&m, UINT64_MAX);
	T_EQ_INT(decode(&m, 0, &d), -1);
	T_CHECK(d.chans == NULL && d.nchans == 0);
	msg_discard(&m);
}

/* ---- the queue listing and the admin views ------------------------------------------------ */

static struct mq2_qslot slots[] = {
	{ "rcpt@example.com", SL_ROUTED, 2, NOW + 60, "451 4.3.0 \"busy\"" },
	{ "done@example.com", SL_DONE, 1, 0, "" },
	{ "new@example.com", SL_ROUTED, 0, 0, "" },
	{ "x@\xc3\xa9t\xe9.example", SL_FAILED, 1, 0, "550 no\nsuch" },
	{ "u@example.com", SL_UNROUTED, 0, 0, "" },
};

static void listing(void)
{
	struct mq2_qmsg m = { 0x00000000000000ffu, 0, 1234, EK_NORMAL, 1, 2, "s@example.com",
	                      slots, 5 };
	struct buf b;
	buf_init(&b);
	setenv("TZ", "UTC", 1);
	tzset();
	mailq2_fmt_mailq(&b, &m);
	T_EQ_STR(b.p, "00000000000000ff      1234 Thu Jan 01 00:00:00  <s@example.com>  (held)  (stage 2)\n"
	         "  deferred <rcpt@example.com>  451 4.3.0 \"busy\"\n"
	         "  done     <done@example.com>\n"
	         "  pending  <new@example.com>\n"
	         "  failed   <x@\xc3\xa9t\xe9.example>  550 no such\n"
	         "  unrouted <u@example.com>\n");
	buf_reset(&b);
	mailq2_fmt_mailq_end(&b, 0);
	mailq2_fmt_mailq_end(&b, 1);
	mailq2_fmt_mailq_end(&b, 7);
	T_EQ_STR(b.p, "Mail queue is empty\n-- 1 message in queue\n-- 7 messages in queue\n");
	buf_reset(&b);
	m.nslots = 1;
	m.held = 0;
	m.kind = EK_BOUNCE;
	m.sender = "";
	mailq2_fmt_json(&b, &m);
	T_EQ_STR(b.p, "{\"id\":\"00000000000000ff\",\"arrival\":0,\"size\":1234,\"sender\":\"\","
	         "\"kind\":\"bounce\",\"held\":false,\"stage\":2,\"recipients\":[{\"address\":"
	         "\"rcpt@example.com\",\"state\":\"deferred\",\"attempts\":2,\"next\":1000060,"
	         "\"diag\":\"451 4.3.0 \\\"busy\\\"\"}]}");
	buf_reset(&b);
	mailq2_json_str(&b, "x@\xc3\xa9t\xe9\x01\n\\\t\xf0\x9f\x98\x80\xed\xa0\x80");
	T_EQ_STR(b.p, "\"x@\xc3\xa9t\\ufffd\\u0001\\n\\\\\\t\xf0\x9f\x98\x80\\ufffd\\ufffd\\ufffd\"");
	buf_reset(&b);
	mailq2_fmt_qstat(&b, 3, 5);
	T_EQ_STR(b.p, "messages in queue: 3\nrecipients still to deliver: 5\n");
	buf_free(&b);
}

static void qlist_decode(void)
{
	struct msg m;
	msg_init(&m, 113, 1);
	msg_u64(&m, 9);                            /* total */
	msg_u64(&m, 1);
	msg_u64(&m, 0xabcu);
	msg_u64(&m, 100);
	msg_u64(&m, 200);
	msg_str(&m, "s@x");
	msg_u64(&m, 0);
	msg_u64(&m, 1);
	msg_u64(&m, 0);
	msg_u64(&m, 2);
	for (int i = 0; i < 2; i++) {
		msg_str(&m, i ? "b@x" : "a@x");
		msg_u64(&m, SL_ROUTED);
		msg_u64(&m, (uint64_t)i);
		msg_u64(&m, 0);
		msg_str(&m, "");
	}
	struct msg_reader r;
	struct mq2_qlist l;
	msg_reader_init(&r, m.b.p + MSG_HDRLEN, m.b.len - MSG_HDRLEN);
	T_EQ_INT(mailq2_qlist_decode(&r, &l), 0);
	T_EQ_INT(l.total, 9);
	T_EQ_INT(l.n, 1);
	T_EQ_INT(l.m[0].msgid, 0xabc);
	T_EQ_INT(l.m[0].held, 1);
	T_EQ_INT(l.m[0].nslots, 2);
	T_EQ_STR(l.m[0].slots[1].address, "b@x");
	mailq2_qlist_free(&l);
	msg_reader_init(&r, m.b.p + MSG_HDRLEN, m.b.len - MSG_HDRLEN - 3);
	T_EQ_INT(mailq2_qlist_decode(&r, &l), -1);
	msg_u64(&m, 1);                            /* trailing garbage */
	msg_reader_init(&r, m.b.p + MSG_HDRLEN, m.b.len - MSG_HDRLEN);
	T_EQ_INT(mailq2_qlist_decode(&r, &l), -1);
	msg_discard(&m);
}

static void views(void)
{
	struct buf b;
	struct mq2_snap s = snap();
	buf_init(&b);
	mailq2_fmt_stats(&b, &s);
	T_EQ_STR(b.p, "uptime: 1h2m3s (3723 s)\nmessages in: 12\nmessages out: 9\nrecipients in: 20\n"
	         "recipients out: 15\nmessages queued: 3\nrecipients queued: 5\nthreads: 4\n"
	         "deliveries running: 2\nchannel local: limit 10, running 1, threads 1\n"
	         "  thread local/: window 4 of 10, running 1, recipients 1\n"
	         "channel smtp: limit 20, running 1, threads 2\n"
	         "  thread smtp/example.com: window 1 of 10, running 1, recipients 3, dead: probe in 5m\n"
	         "  thread smtp/a-very-long-host-name.example.org: window 4 of 10, running 0, "
	         "recipients 1\n"
	         "  thread lmtp/[127.0.0.1]:24: window 1 of 5, running 1, recipients 1, dead: probing\n");
	buf_reset(&b);
	chans[0].name = "lo\"c\\al";
	mailq2_fmt_metrics(&b, &s);
	chans[0].name = "local";
	T_CHECK(strstr(b.p, "# TYPE tern_messages_received counter\n# HELP tern_messages_received ") == b.p);
	T_CHECK(strstr(b.p, "\ntern_messages_received_total 12\n") != NULL);
	T_CHECK(strstr(b.p, "\ntern_recipients_transmitted_total 15\n") != NULL);
	T_CHECK(strstr(b.p, "\ntern_queue_messages 3\n") != NULL);
	T_CHECK(strstr(b.p, "\ntern_uptime_seconds 3723\n") != NULL);
	T_CHECK(strstr(b.p, "\ntern_channel_limit{channel=\"lo\\\"c\\\\al\"} 10\n") != NULL);
	T_CHECK(strstr(b.p, "\ntern_channel_running{channel=\"smtp\"} 1\n") != NULL);
	T_CHECK(strstr(b.p, "\ntern_channel_dead_destinations{channel=\"smtp\"} 1\n") != NULL);
	T_CHECK(strstr(b.p, "\ntern_channel_dead_destinations{channel=\"lo\\\"c\\\\al\"} 0\n") != NULL);
	T_CHECK(b.len > 6 && strcmp(b.p + b.len - 6, "# EOF\n") == 0);
	buf_free(&b);
}

static void run(void)
{
	saytime();
	commands();
	auth();
	response();
	bodies();
	multiline();
	snap_decode();
	listing();
	qlist_decode();
	views();
}

T_MAIN(run)
