/* test_log — log.c escapes every logged value in one place: table-driven cases for the
 * escaping (control characters, backslash, quotes inside quoted values, bytes above 0x7e),
 * for the printf conversions it re-implements, for truncation (never half an escape), for
 * log_quote's bounded copy, for the rate limit, and a whole line through log_msg: one event
 * is exactly one line. */
#include "t.h"
#include "lib/log.h"
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

static void escaping(void)
{
	static const struct { const char *fmt, *val, *want; } cases[] = {
		{ "file=%s", "plain", "file=plain" },
		{ "file=%s", "a\nevent=forged x=1", "file=a\\nevent=forged x=1" },
		{ "file=%s", "cr\rlf\ntab\t", "file=cr\\rlf\\ntab\\t" },
		{ "file=%s", "back\\slash", "file=back\\\\slash" },
		{ "file=%s", "\x01\x1f\x7f", "file=\\x01\\x1f\\x7f" },
		{ "file=%s", "caf\xc3\xa9", "file=caf\\xc3\\xa9" },
		{ "file=%s", "\x1b[31mred", "file=\\x1b[31mred" },
		{ "reason=\"%s\"", "say \"hi\"", "reason=\"say \\\"hi\\\"\"" },
		{ "reason=\"%s\" next=%s", "a\"b", "reason=\"a\\\"b\" next=a\"b" },
		{ "from=<%s>", "\"a b\"@x", "from=<\"a b\"@x>" },
		{ "a=\"%s\" b=\"%s\"", "\"", "a=\"\\\"\" b=\"\\\"\"" },
		{ "text=%s", "", "text=" },
		{ "lit\"eral %s", "q\"", "lit\"eral q\\\"" },      /* odd quote: inside from there */
	};
	char out[256];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* the case's format is data here: the function is what is being tested */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		log_format(out, sizeof out, cases[i].fmt, cases[i].val, cases[i].val);
#pragma GCC diagnostic pop
		T_EQ_STR(out, cases[i].want);
	}
}

static void conversions(void)
{
	char out[256];
	log_format(out, sizeof out, "d=%d u=%u ld=%ld lu=%lu lld=%lld llu=%llu", -1, 2u, -3L, 4UL,
	           -5LL, 6ULL);
	T_EQ_STR(out, "d=-1 u=2 ld=-3 lu=4 lld=-5 llu=6");
	log_format(out, sizeof out, "zu=%zu zd=%zd x=%x X=%X o=%o j=%jd", (size_t)7, (ssize_t)-8,
	           255u, 255u, 8u, (intmax_t)-9);
	T_EQ_STR(out, "zu=7 zd=-8 x=ff X=FF o=10 j=-9");
	log_format(out, sizeof out, "id=%016llx w=%5d|%-4s|%3s", 0xabcULL, 42, "ab", "toolong");
	T_EQ_STR(out, "id=0000000000000abc w=   42|ab  |toolong");
	log_format(out, sizeof out, "p=%.*s q=%*d r=%-*.*s|", 3, "abcdef", 4, 7, 5, 2, "xyz");
	T_EQ_STR(out, "p=abc q=   7 r=xy   |");
	log_format(out, sizeof out, "pct=100%% c=%c%c f=%.2f g=%g", 'x', '\n', 1.5, 0.25);
	T_EQ_STR(out, "pct=100% c=x\\n f=1.50 g=0.25");
	log_format(out, sizeof out, "u64=%" PRIu64 " h=%hu hh=%hhd", (uint64_t)1 << 40,
	           (unsigned short)65535, (signed char)-1);
	T_EQ_STR(out, "u64=1099511627776 h=65535 hh=-1");
	log_format(out, sizeof out, "nul=%.*s|", 5, "ab\0cd");
	T_EQ_STR(out, "nul=ab|");
}

static void truncation(void)
{
	char out[12];
	size_t n = log_format(out, sizeof out, "v=%s", "abcdefghijklmnop");
	T_EQ_INT(n, 11);
	T_EQ_STR(out, "v=abcdefghi");
	n = log_format(out, sizeof out, "v=%s", "abcdefgh\n");   /* "\n" needs 2: dropped whole */
	T_EQ_STR(out, "v=abcdefgh");
	T_EQ_INT(n, 10);
	n = log_format(out, sizeof out, "v=%s", "abcdef\x01");   /* "\x01" needs 4 */
	T_EQ_STR(out, "v=abcdef");
	n = log_format(out, 1, "v=%s", "x");
	T_EQ_INT(n, 0);
	T_EQ_STR(out, "");
}

static void quote(void)
{
	char q[8];
	T_EQ_STR(log_quote(q, sizeof q, "abc", 3), "abc");
	T_EQ_STR(log_quote(q, sizeof q, "abcdefgh", 8), "abcd...");
	T_EQ_STR(log_quote(q, sizeof q, "ab\0cd", 5), "ab");
	T_EQ_STR(log_quote(q, sizeof q, "a\nb", 3), "a\nb");    /* raw: log_msg escapes it */
}

static void limit(void)
{
	struct log_limit l = { 0, 0 };
	unsigned long long rep = 99;
	T_EQ_INT(log_limit(&l, 60, &rep), 1);
	T_EQ_INT(rep, 0);
	for (int i = 0; i < 1000; i++)
		T_CHECK(log_limit(&l, 60, &rep) == 0);
	l.last -= 61;                        /* the interval is over */
	T_EQ_INT(log_limit(&l, 60, &rep), 1);
	T_EQ_INT(rep, 1000);
	T_EQ_INT(log_limit(&l, 60, &rep), 0);
}

/* a whole line through log_msg: prefix, escaped values, exactly one '\n' at the end */
static void one_line(void)
{
	int p[2];
	char buf[4096];
	T_CHECK(pipe(p) == 0);
	int saved = dup(2);
	dup2(p[1], 2);
	log_init("test", LOG_INFO);
	log_info("event=maildrop file=%s reason=\"%s\"", "x\nevent=forged", "a\r\n\"b\"");
	char big[5000];
	memset(big, '\n', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_info("event=big value=%s", big);
	dup2(saved, 2);
	close(saved);
	close(p[1]);
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	close(p[0]);
	T_CHECK(n > 0);
	buf[n > 0 ? n : 0] = '\0';
	char *nl = strchr(buf, '\n');
	T_CHECK(nl != NULL);
	T_CHECK(nl && strstr(buf, "test[") && strstr(buf, "] info: event=maildrop "
	        "file=x\\nevent=forged reason=\"a\\r\\n\\\"b\\\"\"\n"));
	char *second = nl ? strchr(nl + 1, '\n') : NULL;       /* the big one: one line too */
	T_CHECK(second && second[1] == '\0');
	T_CHECK(second && second - nl <= 2048);
}

static void run(void)
{
	escaping();
	conversions();
	truncation();
	quote();
	limit();
	one_line();
}
T_MAIN(run)
