/* test_envelope — the envelope file: header round trip, journal records, torn lines,
 * damaged files (table-driven). */
#include "t.h"
#include "mail/envelope.h"

static struct target tgt(const char *addr, const char *instr)
{
	struct target t = { "local", "", (char *)addr, "joe", 1000, 100, "/home/joe", "joe", "", "localhost",
	                    (char *)instr, (char *)"" };
	return t;
}

static void roundtrip(void)
{
	struct envelope e, p;
	struct buf b;
	size_t valid;
	char err[64];
	env_init(&e);
	e.id = 0x0123456789abcdefULL;
	e.arrival = 1700000000;
	e.sender = xstrdup("a@b.example");
	e.origin = xstrdup("smtp ip=127.0.0.1 helo=x\ty");
	env_add_rcpt(&e, "joe@localhost");
	env_add_rcpt(&e, "ann@localhost");
	e.norig = 2;
	buf_init(&b);
	env_format_header(&e, &b);
	struct target t[2] = { tgt("joe@localhost", "|cat > x 2>&1"), tgt("joe2@localhost", "") };
	env_rec_expand(&b, 0, 2, t);
	env_rec_done(&b, 2, 1700000001);
	env_rec_defer(&b, 3, 1700000002, 1700000100, 1, "mx.example[192.0.2.1]", "temp: disk full\r\n");
	env_rec_perm(&b, 1, 1700000003, "5.1.1", NULL, "no such user");
	env_rec_bounce(&b, 1700000004, 0xfedcba9876543210ULL);
	env_rec_warned(&b, 1700000005, 0x0123456789abcdf0ULL);
	size_t full = b.len;
	buf_adds(&b, "D 3 17000");              /* torn last line */
	T_EQ_INT(env_parse(b.p, b.len, &p, &valid, err, sizeof err), 0);
	T_EQ_INT(valid, full);
	T_EQ_INT(p.id, e.id);
	T_EQ_STR(p.sender, "a@b.example");
	T_EQ_STR(p.origin, "smtp ip=127.0.0.1 helo=x y");
	T_EQ_INT(p.norig, 2);
	T_EQ_INT(p.nslots, 4);
	T_EQ_INT(p.slots[0].state, SL_EXPANDED);
	T_EQ_INT(p.slots[1].state, SL_FAILED);
	T_EQ_STR(p.slots[1].status, "5.1.1");
	T_EQ_INT(p.slots[2].state, SL_DONE);
	T_EQ_STR(p.slots[2].t.instruction, "|cat > x 2>&1");
	T_EQ_INT(p.slots[2].t.uid, 1000);
	T_EQ_INT(p.slots[3].state, SL_ROUTED);
	T_EQ_INT(p.slots[3].attempts, 1);
	T_EQ_INT(p.slots[3].next, 1700000100);
	T_EQ_STR(p.slots[3].diag, "temp: disk full  ");
	T_EQ_STR(p.slots[3].remote, "mx.example[192.0.2.1]");
	T_CHECK(p.slots[1].remote == NULL);
	T_EQ_INT(p.bounced_upto, 1);
	T_EQ_INT(p.warned, 1700000005);          /* the W record: the delay notice was sent */
	T_EQ_INT(env_all_final(&p), 0);
	env_free(&p);
	buf_free(&b);
	free(e.sender); free(e.origin); free(e.slots[0].rcpt); free(e.slots[1].rcpt); free(e.slots);
}

static void damaged(void)
{
	static const struct { const char *text; int ok; } cases[] = {
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\n", 0 },
		{ "TERN-ENV 2\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\n", -1 },
		{ "TERN-ENV 1\nI 000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT x\nF \nK 0\nO x\nR a@b\n.\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\n.\n", -1 },       /* no R */
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n", -1 },    /* no . */
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 9\nO x\nR a@b\n.\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nD 1 5\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nD 0 5\nD 0 6\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nQ 0 5\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nE 0 1 local\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nE 0 0 \n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nZ 0 5 9 2 - x\nP 0 6 5.1.1 h[1] gone\n", 0 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nP 0 6 5.1.1 -\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nB 5 zz\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nW 5 zz\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nW x 0000000000000002\n", -1 },
		{ "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR a@b\n.\nW 5 0000000000000002\n", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct envelope e;
		size_t valid;
		char err[64];
		int r = env_parse(cases[i].text, strlen(cases[i].text), &e, &valid, err, sizeof err);
		if (r != cases[i].ok)
			fprintf(stderr, "case %zu: got %d\n", i, r);
		T_EQ_INT(r, cases[i].ok);
		if (r == 0)
			env_free(&e);
	}
}

static void management(void)
{
	const char *text = "TERN-ENV 1\nI 0000000000000001\nT 5\nF a@b\nK 0\nO x\nR c@d\nR e@f\n.\n"
	                   "S 3 0\nH 1\nA g@h\nX 1\nF new@sender\nH 0\nS 7 1\n";
	struct envelope e;
	size_t valid;
	char err[64];
	T_EQ_INT(env_parse(text, strlen(text), &e, &valid, err, sizeof err), 0);
	T_EQ_INT(e.stage, 7);
	T_EQ_INT(e.staged, 1);
	T_EQ_INT(e.held, 0);
	T_EQ_INT(e.nslots, 3);
	T_EQ_STR(e.slots[2].rcpt, "g@h");
	T_EQ_INT(e.slots[1].state, SL_DROPPED);
	T_EQ_STR(e.sender, "new@sender");
	struct buf b;
	buf_init(&b);
	env_rec_stage(&b, 4, 0);
	env_rec_hold(&b, 1);
	env_rec_add(&b, "x\ty@z");
	env_rec_drop(&b, 0);
	env_rec_sender(&b, "");
	T_EQ_STR(b.p, "S 4 0\nH 1\nA x y@z\nX 0\nF \n");
	buf_free(&b);
	env_free(&e);
	static const char *bad[] = { "S 1000 0", "S 1 2", "H 2", "A ", "X 5", "X 1" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct buf t;
		buf_init(&t);
		buf_printf(&t, "TERN-ENV 1\nI 0000000000000001\nT 5\nF \nK 0\nO x\nR c@d\nR e@f\n.\nX 1\n%s\n", bad[i]);
		T_EQ_INT(env_parse(t.p, t.len, &e, &valid, err, sizeof err), -1);
		buf_free(&t);
	}
}

static void ids(void)
{
	char s[17];
	uint64_t v;
	env_idstr(0xabcULL, s);
	T_EQ_STR(s, "0000000000000abc");
	T_EQ_INT(env_idparse(s, &v), 0);
	T_EQ_INT(v, 0xabc);
	T_EQ_INT(env_idparse("0000000000000ABC", &v), -1);
	T_EQ_INT(env_idparse("abc", &v), -1);
}

static void run(void) { roundtrip(); damaged(); management(); ids(); }
T_MAIN(run)
