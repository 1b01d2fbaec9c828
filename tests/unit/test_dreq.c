/* test_dreq — the delivery request and result payloads of src/ternd/dreq.c: what dreq_put
 * writes dreq_get reads back; every malformed request and result is refused whole. */
#include "t.h"
#include "ternd/dreq.c"
#include "ternd/proto.c"

static struct target tgt(const char *ch, const char *host, const char *addr)
{
	struct target t = { .channel = (char *)ch, .host = (char *)host, .address = (char *)addr,
	                    .user = "u", .uid = 1000, .gid = 100, .home = "/home/u", .local = "u",
	                    .ext = "", .domain = "d.test", .instruction = "", .profile = "" };
	return t;
}

/* the payload of out, for a reader */
static struct msg_reader rd(struct msg *out)
{
	struct msg_reader r;
	msg_reader_init(&r, out->b.p + MSG_HDRLEN, out->b.len - MSG_HDRLEN);
	return r;
}

static void roundtrip(void)
{
	struct dreq_rcpt rr[2] = { { 3, tgt("smtp", "b.test", "x@b.test") },
	                           { 7, tgt("smtp", "b.test", "y@b.test") } };
	struct dreq d = { .job = 9, .msgid = 0x1234, .channel = "smtp", .host = "b.test",
	                  .sender = "s@a.test", .size = 555, .arrival = 1700000000, .n = 2, .r = rr };
	struct msg out;
	msg_init(&out, M_DELIVER, 0);
	dreq_put(&out, &d);
	struct msg_reader r = rd(&out);
	struct dreq g;
	T_EQ_INT(dreq_get(&r, &g), 0);
	T_EQ_INT(g.job, 9);
	T_EQ_INT(g.msgid, 0x1234);
	T_EQ_STR(g.channel, "smtp");
	T_EQ_STR(g.host, "b.test");
	T_EQ_STR(g.sender, "s@a.test");
	T_EQ_INT(g.size, 555);
	T_EQ_INT(g.arrival, 1700000000);
	T_EQ_INT(g.n, 2);
	T_EQ_INT(g.r[1].idx, 7);
	T_EQ_STR(g.r[1].t.address, "y@b.test");
	T_EQ_INT(g.r[0].t.uid, 1000);
	dreq_free(&g);
	msg_discard(&out);
}

/* a request whose recipients are not all of its channel and host, an empty one, one with too
 * many recipients, a short one and one with a byte more are refused whole */
static void refused(void)
{
	static const struct { const char *ch, *host, *ch1, *host1; size_t n; int extra, cut; } c[] = {
		{ "smtp", "b.test", "smtp", "c.test", 2, 0, 0 },     /* another host */
		{ "smtp", "b.test", "local", "b.test", 2, 0, 0 },    /* another channel */
		{ "smtp", "b.test", "smtp", "b.test", 0, 0, 0 },     /* no recipient */
		{ "", "b.test", "", "b.test", 1, 0, 0 },             /* no channel */
		{ "smtp", "b.test", "smtp", "b.test", 2, 1, 0 },     /* a trailing field */
		{ "smtp", "b.test", "smtp", "b.test", 2, 0, 1 },     /* cut short */
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct dreq_rcpt rr[2] = { { 0, tgt(c[i].ch, c[i].host, "x@b.test") },
		                           { 1, tgt(c[i].ch1, c[i].host1, "y@b.test") } };
		struct dreq d = { .job = 1, .msgid = 2, .channel = (char *)c[i].ch,
		                  .host = (char *)c[i].host, .sender = "", .n = c[i].n, .r = rr };
		struct msg out;
		msg_init(&out, M_DELIVER, 0);
		dreq_put(&out, &d);
		if (c[i].extra)
			msg_u64(&out, 1);
		struct msg_reader r = rd(&out);
		if (c[i].cut)
			r.len -= 3;
		struct dreq g;
		T_EQ_INT(dreq_get(&r, &g), -1);
		T_EQ_INT(g.n, 0);
		T_CHECK(g.r == NULL && g.channel == NULL);
		T_EQ_INT(g.job, 1);
		msg_discard(&out);
	}
	struct msg out;                      /* more recipients than a request may carry */
	msg_init(&out, M_DELIVER, 0);
	msg_u64(&out, 1); msg_u64(&out, 2); msg_str(&out, "smtp"); msg_str(&out, "b");
	msg_str(&out, ""); msg_u64(&out, 0); msg_u64(&out, 0); msg_u64(&out, DREQ_MAXRCPT + 1);
	struct msg_reader r = rd(&out);
	struct dreq g;
	T_EQ_INT(dreq_get(&r, &g), -1);
	msg_discard(&out);
}

static void results(void)
{
	struct msg out;
	struct dres a = { .idx = 4, .st = D_TEMP, .scope = DSCOPE_SITE, .diag = "421 busy", .remote = "mx[1.2.3.4]" };
	struct dres b = { .idx = 5, .st = D_OK, .scope = DSCOPE_SITE, .diag = NULL, .remote = NULL };
	dres_begin(&out, 8, 0x99, 2);
	dres_put(&out, &a);
	dres_put(&out, &b);
	struct msg_reader r = rd(&out);
	T_EQ_INT(dres_check(&r), 0);
	uint64_t job, id, n;
	dres_get_head(&r, &job, &id, &n);
	T_EQ_INT(job, 8); T_EQ_INT(id, 0x99); T_EQ_INT(n, 2);
	struct dres x;
	dres_get(&r, &x);
	T_EQ_INT(x.idx, 4); T_EQ_INT(x.st, D_TEMP); T_EQ_INT(x.scope, DSCOPE_SITE);
	T_EQ_STR(x.diag, "421 busy"); T_EQ_STR(x.remote, "mx[1.2.3.4]");
	dres_get(&r, &x);
	T_EQ_INT(x.st, D_OK);
	T_EQ_INT(x.scope, 0);                /* a scope only travels with a temporary failure */
	T_EQ_STR(x.diag, "");
	T_EQ_INT(msg_done(&r), 0);
	msg_discard(&out);

	/* a bad status, a bad scope, a count that does not match, a trailing byte: refused */
	static const struct { uint64_t st, scope, n, items; int extra; } c[] = {
		{ 0, 0, 1, 1, 0 }, { 4, 0, 1, 1, 0 }, { D_TEMP, 2, 1, 1, 0 }, { D_OK, 0, 2, 1, 0 },
		{ D_OK, 0, 1, 1, 1 }, { D_OK, 0, DREQ_MAXRCPT + 1, 1, 0 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		msg_init(&out, M_DELIVERED, 0);
		msg_u64(&out, 1); msg_u64(&out, 2); msg_u64(&out, c[i].n);
		for (uint64_t k = 0; k < c[i].items; k++) {
			msg_u64(&out, k); msg_u64(&out, c[i].st); msg_u64(&out, c[i].scope);
			msg_str(&out, "d"); msg_str(&out, "");
		}
		if (c[i].extra)
			msg_u64(&out, 0);
		r = rd(&out);
		T_EQ_INT(dres_check(&r), -1);
		msg_discard(&out);
	}
}

static void run(void)
{
	roundtrip();
	refused();
	results();
}
T_MAIN(run)
