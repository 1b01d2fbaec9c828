/* test_qmqp — the QMQP request parser and reply codec (src/mail/qmqp.c): a table of requests
 * with the outcome each must give (message, sender, recipients, or the refusal's text), each
 * fed whole and one octet at a time; replies written and read; netstring lengths; the
 * qmqpservers list. */
#include "t.h"
#include "mail/qmqp.h"

struct outcome {
	int ev;              /* QMQP_END, QMQP_ERR or QMQP_MORE (incomplete) */
	char text[256];
	char sender[300];
	char rcpts[600];     /* "a,b," */
	const char *why, *code;
	size_t at;           /* octets consumed when the request ended or failed */
};

static void run_req(const char *in, size_t n, size_t step, uint64_t maxtext, uint32_t maxrcpt,
                    struct outcome *o)
{
	struct qmqp_req q;
	size_t off = 0, tl = 0;
	qmqp_req_init(&q, maxtext, maxrcpt);
	memset(o, 0, sizeof *o);
	o->ev = QMQP_MORE;
	while (off < n) {
		size_t lim = step && n - off > step ? step : n - off, used;
		const char *p;
		size_t pl;
		int ev = qmqp_req_feed(&q, in + off, lim, &used, &p, &pl);
		off += used;
		if (ev == QMQP_TEXT && tl + pl < sizeof o->text) {
			memcpy(o->text + tl, p, pl);
			tl += pl;
		} else if (ev == QMQP_SENDER)
			snprintf(o->sender, sizeof o->sender, "%s", q.mailbox);
		else if (ev == QMQP_RCPT) {
			strncat(o->rcpts, q.mailbox, sizeof o->rcpts - strlen(o->rcpts) - 2);
			strcat(o->rcpts, ",");
		} else if (ev == QMQP_END || ev == QMQP_ERR) {
			o->ev = ev;
			o->why = q.why;
			o->code = q.code;
			o->at = off;
			return;
		}
	}
}

static const struct rcase {
	const char *in;
	int ev;
	const char *text, *sender, *rcpts, *why;
	uint64_t maxtext;
	uint32_t maxrcpt;
} rcases[] = {
	{ "35:6:hello\n,8:a@b.test,11:c@d.example,,", QMQP_END, "hello\n", "a@b.test",
	  "c@d.example,", NULL, 0, 0 },
	{ "28:6:hello\n,0:,5:x@y.z,5:u@v.w,,", QMQP_END, "hello\n", "", "x@y.z,u@v.w,", NULL, 0, 0 },
	{ "17:0:,3:a@b,5:X@Y.Z,,", QMQP_END, "", "a@b", "X@y.z,", NULL, 0, 0 },
	{ "21:1:x,0:,10:postmaster,,", QMQP_END, "x", "", "postmaster,", NULL, 0, 0 },
	/* framing */
	{ "", QMQP_MORE, "", "", "", NULL, 0, 0 },
	{ "35:6:hello\n,8:a@b.test,11:c@d.example,", QMQP_MORE, "hello\n", "a@b.test",
	  "c@d.example,", NULL, 0, 0 },
	{ "x", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	{ ":", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	{ "033:", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	{ "0:,", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	{ "6:0:,0:,,", QMQP_ERR, "", "", "", "no recipients", 0, 0 },
	{ "3:0:,,", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	{ "35;6:hello\n,8:a@b.test,11:c@d.example,,", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	{ "35:6:hello\n;8:a@b.test,11:c@d.example,,", QMQP_ERR, "hello\n", "", "",
	  "malformed request", 0, 0 },
	{ "35:6:hello\n,8:a@b.test,11:c@d.example,;", QMQP_ERR, "hello\n", "a@b.test",
	  "c@d.example,", "malformed request", 0, 0 },
	{ "10:99:x", QMQP_ERR, "", "", "", "malformed request", 0, 0 },       /* inner > outer */
	{ "12:6:hello\n,0:,,", QMQP_ERR, "hello\n", "", "", "no recipients", 0, 0 },
	{ "33:06:hello\n,", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	{ "33:-6:hello\n,", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	{ "999999999999999999999:", QMQP_ERR, "", "", "", "message too big", 0, 0 },
	{ "1a", QMQP_ERR, "", "", "", "malformed request", 0, 0 },
	/* limits: databytes, recipients, address length */
	{ "35:6:hello\n,8:a@b.test,11:c@d.example,,", QMQP_ERR, "", "", "", "message too big", 5, 0 },
	{ "35:6:hello\n,8:a@b.test,11:c@d.example,,", QMQP_END, "hello\n", "a@b.test",
	  "c@d.example,", NULL, 6, 0 },
	{ "99999999:", QMQP_ERR, "", "", "", "message too big", 10, 1 },
	{ "25:0:,3:a@b,5:x@y.z,5:u@v.w,,", QMQP_ERR, "", "a@b", "x@y.z,", "too many recipients", 0, 1 },
	{ "2000:0:,1001:", QMQP_ERR, "", "", "", "address too long", 0, 0 },
	/* addresses */
	{ "17:0:,3:a b,5:x@y.z,,", QMQP_ERR, "", "", "", "bad sender address", 0, 0 },
	{ "20:0:,5:<a@b>,5:x@y.z,,", QMQP_ERR, "", "", "", "bad sender address", 0, 0 },
	{ "12:0:,0:,3:x@y,,", QMQP_END, "", "", "x@y,", NULL, 0, 0 },
	{ "9:0:,0:,0:,,", QMQP_ERR, "", "", "", "bad recipient address", 0, 0 },
	{ "17:0:,3:a@b,5:x\001y.z,,", QMQP_ERR, "", "a@b", "", "bad recipient address", 0, 0 },
	{ "16:0:,3:a@b,4:x@y.,,", QMQP_ERR, "", "a@b", "", "bad recipient address", 0, 0 },
	{ "18:0:,3:a@b,6:x@y.z ,,", QMQP_ERR, "", "a@b", "", "bad recipient address", 0, 0 },
	{ "13:0:,0:,4:@y.z,,", QMQP_ERR, "", "", "", "bad recipient address", 0, 0 },
};

/* the enhanced status code each refusal carries */
static const char *code_of(const char *why)
{
	static const char *const map[][2] = {
		{ "malformed request", "5.6.0" }, { "message too big", "5.3.4" },
		{ "address too long", "5.1.3" }, { "too many recipients", "5.5.3" },
		{ "no recipients", "5.5.1" }, { "message contains NUL characters", "5.6.0" },
		{ "bad sender address", "5.1.7" }, { "bad recipient address", "5.1.3" },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(map[i][0], why) == 0)
			return map[i][1];
	return "?";
}

static void test_requests(void)
{
	for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++) {
		const struct rcase *c = &rcases[i];
		for (size_t step = 0; step <= 1; step++) {
			struct outcome o;
			run_req(c->in, strlen(c->in), step, c->maxtext, c->maxrcpt, &o);
			if (o.ev != c->ev)
				fprintf(stderr, "case %zu step %zu: %s\n", i, step, c->in);
			T_EQ_INT(o.ev, c->ev);
			if (c->ev == QMQP_END || c->maxtext == 0) {
				T_EQ_STR(o.text, c->text);
			}
			T_EQ_STR(o.sender, c->sender);
			T_EQ_STR(o.rcpts, c->rcpts);
			if (c->why)
				T_EQ_STR(o.why, c->why);
			if (c->ev == QMQP_ERR)
				T_EQ_STR(o.code, code_of(c->why));
		}
	}
}

/* framing octets past the outer netstring's declared length: refused at that very octet (an
 * inner length whose last digit is the outer netstring's last octet must not wrap what is
 * left of it, which then let recipients past the declared length in and never ended) */
static void test_outer_bound(void)
{
	static const struct { const char *in; size_t at; } bc[] = {
		{ "7:3:abc,0:,9:x@evil.cd,", 10 },
		{ "8:3:abc,0:,9:x@evil.cd,", 10 },
		{ "7:3:abc,,", 9 },
		{ "8:3:abc,0,", 10 },
		{ "6:0:,0:,3:a@b,", 9 },
	};
	for (size_t i = 0; i < sizeof bc / sizeof bc[0]; i++) {
		for (size_t step = 0; step <= 1; step++) {
			struct outcome o;
			run_req(bc[i].in, strlen(bc[i].in), step, 0, 0, &o);
			if (o.ev != QMQP_ERR || o.at != bc[i].at)
				fprintf(stderr, "bound case %zu step %zu: %s at %zu\n", i, step, bc[i].in, o.at);
			T_EQ_INT(o.ev, QMQP_ERR);
			T_EQ_STR(o.why, "malformed request");
			T_EQ_INT(o.at, bc[i].at);
			T_EQ_STR(o.rcpts, "");
		}
	}
}

static void test_nul_and_after(void)
{
	static const char in[] = "20:3:a\0b,3:a@b,5:x@y.z,,";
	struct outcome o;
	run_req(in, sizeof in - 1, 0, 0, 0, &o);
	T_EQ_INT(o.ev, QMQP_ERR);
	T_EQ_STR(o.why, "message contains NUL characters");
	T_EQ_STR(o.code, "5.6.0");
	/* after the end nothing more is consumed */
	struct qmqp_req q;
	const char *p;
	size_t used, pl;
	const char *ok = "17:0:,3:a@b,5:x@y.z,,trailing";
	qmqp_req_init(&q, 0, 0);
	size_t off = 0;
	int ev;
	while ((ev = qmqp_req_feed(&q, ok + off, strlen(ok) - off, &used, &p, &pl)) != QMQP_END &&
	       ev != QMQP_ERR)
		off += used;
	off += used;
	T_EQ_INT(ev, QMQP_END);
	T_EQ_STR(ok + off, "trailing");
	T_EQ_INT(qmqp_req_feed(&q, ok + off, strlen(ok + off), &used, &p, &pl), QMQP_END);
	T_EQ_INT(used, 0);
	/* a large message is handed out in pieces without copying */
	qmqp_req_init(&q, 0, 0);
	T_EQ_INT(qmqp_req_feed(&q, "1000032:1000000:", 16, &used, &p, &pl), QMQP_MORE);
	T_EQ_INT(used, 16);
	char big[4096];
	memset(big, 'x', sizeof big);
	T_EQ_INT(qmqp_req_feed(&q, big, sizeof big, &used, &p, &pl), QMQP_TEXT);
	T_CHECK(p == big && pl == sizeof big && used == sizeof big);
}

static void test_replies(void)
{
	struct buf b;
	buf_init(&b);
	qmqp_reply(&b, 'K', "ok queued");
	T_CHECK(b.len == 14 && memcmp(b.p, "10:Kok queued,", 14) == 0);
	buf_reset(&b);
	qmqp_reply(&b, 'D', "bad\r\nthing");
	T_CHECK(b.len == 15 && memcmp(b.p, "11:Dbad??thing,", 15) == 0);
	buf_free(&b);

	static const struct { const char *in; int rc; char code; const char *text; size_t used; }
	pc[] = {
		{ "10:Kok queued,", 1, 'K', "ok queued", 14 },
		{ "1:Z,", 1, 'Z', "", 4 },
		{ "5:Dnope,rest", 1, 'D', "nope", 8 },
		{ "5:Dno", 0, 0, NULL, 0 },
		{ "5", 0, 0, NULL, 0 },
		{ "", 0, 0, NULL, 0 },
		{ "5:Xnope,", -1, 0, NULL, 0 },
		{ "5:Dnope;", -1, 0, NULL, 0 },
		{ "0:,", -1, 0, NULL, 0 },
		{ "05:Dnope,", -1, 0, NULL, 0 },
		{ ":Dnope,", -1, 0, NULL, 0 },
		{ "99999:", -1, 0, NULL, 0 },
		{ "1002:", -1, 0, NULL, 0 },
		{ "3x", -1, 0, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
		char code = 0, text[64] = "";
		size_t used = 0;
		int rc = qmqp_reply_parse(pc[i].in, strlen(pc[i].in), &code, text, sizeof text, &used);
		if (rc != pc[i].rc)
			fprintf(stderr, "reply case %zu: %s\n", i, pc[i].in);
		T_EQ_INT(rc, pc[i].rc);
		if (pc[i].rc == 1) {
			T_EQ_INT(code, pc[i].code);
			T_EQ_STR(text, pc[i].text);
			T_EQ_INT(used, pc[i].used);
		}
	}
}

static void test_framing(void)
{
	T_EQ_INT(qmqp_ns_len(0), 3);
	T_EQ_INT(qmqp_ns_len(9), 12);
	T_EQ_INT(qmqp_ns_len(10), 14);
	struct buf b;
	buf_init(&b);
	qmqp_ns_head(&b, 123);
	qmqp_ns_str(&b, "a@b");
	buf_addc(&b, '\0');
	T_EQ_STR(b.p, "123:3:a@b,");
	buf_reset(&b);
	qmqp_received(&b, "127.0.0.1", "mx.test", 0x1234, 0);
	buf_addc(&b, '\0');
	T_CHECK(strncmp(b.p, "Received: from [127.0.0.1] ([127.0.0.1])\n\tby mx.test (tern) with "
	                     "QMQP id 0000000000001234;\n\t", 85) == 0);
	buf_free(&b);
}

static void test_servers(void)
{
	struct qmqp_server sv[QMQP_MAXSERVERS];
	T_EQ_INT(qmqp_servers_parse("127.0.0.1", sv, QMQP_MAXSERVERS), 1);
	T_EQ_STR(sv[0].addr, "127.0.0.1");
	T_EQ_INT(sv[0].port, 628);
	T_EQ_INT(qmqp_servers_parse("10.0.0.1:6280, [::1]:7 [2001:db8::1]", sv, QMQP_MAXSERVERS), 3);
	T_EQ_INT(sv[0].port, 6280);
	T_EQ_STR(sv[1].addr, "::1");
	T_EQ_INT(sv[1].port, 7);
	T_EQ_STR(sv[2].addr, "2001:db8::1");
	T_EQ_INT(sv[2].port, 628);
	T_EQ_INT(qmqp_servers_parse("", sv, QMQP_MAXSERVERS), 0);
	T_EQ_INT(qmqp_servers_parse("mx.example", sv, QMQP_MAXSERVERS), -1);
	T_EQ_INT(qmqp_servers_parse("1.2.3.4:0", sv, QMQP_MAXSERVERS), -1);
	T_EQ_INT(qmqp_servers_parse("1.2.3.4:99999", sv, QMQP_MAXSERVERS), -1);
	T_EQ_INT(qmqp_servers_parse("1.2.3.4:", sv, QMQP_MAXSERVERS), -1);
	T_EQ_INT(qmqp_servers_parse("[::1", sv, QMQP_MAXSERVERS), -1);
	T_EQ_INT(qmqp_servers_parse("1.2.3.4 5.6.7.8", sv, 1), -1);
}

static void run(void)
{
	test_requests();
	test_outer_bound();
	test_nul_and_after();
	test_replies();
	test_framing();
	test_servers();
}
T_MAIN(run)
