/* test_smtp_data — table-driven cases for the DATA decoder (end of data, dot-unstuffing,
 * bare CR/LF and smuggling attempts, line length, size), every case also fed split at each
 * byte boundary and byte by byte; plus the Received: line and the date. */
#include "t.h"
#include "mail/smtp_data.h"

static const struct {
	const char *in;
	const char *out;       /* decoded octets */
	int done;
	int rest;              /* octets left after the end of data */
	int toolong;
	uint64_t max;
	int toobig;
} cases[] = {
	{ ".\r\n", "", 1, 0, 0, 0, 0 },
	{ "hello\r\n.\r\n", "hello\n", 1, 0, 0, 0, 0 },
	{ "hello\r\n.\r\nQUIT\r\n", "hello\n", 1, 6, 0, 0, 0 },
	{ "a\r\nb\r\n\r\n.\r\n", "a\nb\n\n", 1, 0, 0, 0, 0 },
	{ "\r\n.\r\n", "\n", 1, 0, 0, 0, 0 },
	{ "..dot\r\n.\r\n", ".dot\n", 1, 0, 0, 0, 0 },
	{ "a\r\n..\r\n.\r\n", "a\n.\n", 1, 0, 0, 0, 0 },
	{ "a\r\n...\r\n.\r\n", "a\n..\n", 1, 0, 0, 0, 0 },
	{ "a\r\n.x\r\n.\r\n", "a\nx\n", 1, 0, 0, 0, 0 },
	{ "a.\r\n.\r\n", "a.\n", 1, 0, 0, 0, 0 },
	/* smuggling: only CRLF.CRLF ends the data */
	{ "a\n.\nb\r\n.\r\n", "a\n.\nb\n", 1, 0, 0, 0, 0 },
	{ "a\r.\rb\r\n.\r\n", "a\r.\rb\n", 1, 0, 0, 0, 0 },
	{ "a\r\n.\nb\r\n.\r\n", "a\n\nb\n", 1, 0, 0, 0, 0 },
	{ "a\n.\r\nb\r\n.\r\n", "a\n.\nb\n", 1, 0, 0, 0, 0 },
	{ "a\r\n.\rb\r\n.\r\n", "a\n\rb\n", 1, 0, 0, 0, 0 },
	{ "a\r\n.\r\rb\r\n.\r\n", "a\n\r\rb\n", 1, 0, 0, 0, 0 },
	{ "a\r\n.\r\r\n.\r\n", "a\n\r\n", 1, 0, 0, 0, 0 },
	{ "a\r\r\n.\r\n", "a\r\n", 1, 0, 0, 0, 0 },
	{ "a\r\n\n.\r\n", "a\n\n.\n", 0, 0, 0, 0, 0 },
	{ "x\n.\n", "x\n.\n", 0, 0, 0, 0, 0 },
	{ "x\r.\r", "x\r.", 0, 0, 0, 0, 0 },
	{ "x\r\n.\n", "x\n\n", 0, 0, 0, 0, 0 },
	{ "x\r\n.\r", "x\n", 0, 0, 0, 0, 0 },
	{ "x\r\n.", "x\n", 0, 0, 0, 0, 0 },
	{ "x\r", "x", 0, 0, 0, 0, 0 },
	{ "\n.\r\n", "\n.\n", 0, 0, 0, 0, 0 },
	{ "MAIL FROM:<a@b>\r\n\n.\nRCPT TO:<c@d>\r\n.\r\n",
	  "MAIL FROM:<a@b>\n\n.\nRCPT TO:<c@d>\n", 1, 0, 0, 0, 0 },
	{ "", "", 0, 0, 0, 0, 0 },
	{ "abc", "abc", 0, 0, 0, 0, 0 },
	{ "8bit \xc3\xa9\x00\xff\r\n.\r\n", "8bit \xc3\xa9\x00\xff\n", 1, 0, 0, 0, 0 },
	/* size */
	{ "hell\r\n.\r\n", "hell\n", 1, 0, 0, 5, 0 },
	{ "hello\r\n.\r\n", "hello\n", 1, 0, 0, 5, 1 },
	{ ".\r\n", "", 1, 0, 0, 1, 0 },
};

/* decode `in` fed in pieces of at most `step` octets (0: one split at `split`) */
static void decode(const char *in, size_t n, size_t split, size_t step, uint64_t max,
                   struct smtp_data *d, char *out, size_t *outn, size_t *used)
{
	size_t off = 0, o = 0;
	smtp_data_init(d, max);
	while (off < n && !d->done) {
		size_t len = step ? step : (off < split ? split - off : n - off);
		if (len > n - off)
			len = n - off;
		size_t k, got;
		k = smtp_data_feed(d, in + off, len, out + o, &got);
		o += got;
		off += k;
		if (k < len && !d->done)
			break;
	}
	*outn = o;
	*used = off;
}

static size_t input_len(size_t i)
{
	/* the 8-bit case holds a NUL: measure up to the last ".\r\n" or the string end */
	const char *in = cases[i].in;
	size_t n = strlen(in);
	if (strncmp(in, "8bit", 4) == 0)
		n = 5 + 2 + 1 + 1 + 2 + 3;  /* "8bit " "\xc3\xa9" "\0" "\xff" "\r\n" ".\r\n" */
	return n;
}

static size_t output_len(size_t i)
{
	const char *o = cases[i].out;
	return strncmp(o, "8bit", 4) == 0 ? 10 : strlen(o);
}

static void check_one(size_t i, size_t split, size_t step)
{
	char out[256];
	size_t n = input_len(i), outn, used;
	struct smtp_data d;
	decode(cases[i].in, n, split, step, cases[i].max, &d, out, &outn, &used);
	size_t want = output_len(i);
	int ok = outn == want && memcmp(out, cases[i].out, want) == 0 && d.done == cases[i].done &&
	    (size_t)cases[i].rest == n - used && d.toolong == cases[i].toolong &&
	    d.toobig == cases[i].toobig && d.bytes == outn;
	if (!ok)
		fprintf(stderr, "data case %zu split=%zu step=%zu: outn=%zu done=%d rest=%zu\n", i,
		    split, step, outn, d.done, n - used);
	T_CHECK(ok);
}

static void run_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = input_len(i);
		check_one(i, n, 0);
		check_one(i, 0, 1);
		for (size_t s = 1; s < n; s++)
			check_one(i, s, 0);
	}
}

static void run_lengths(void)
{
	static char in[4096], out[4200];
	struct smtp_data d;
	size_t o;
	/* 998 octets + CRLF is the longest legal line */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	smtp_data_init(&d, 0);
	T_EQ_INT(smtp_data_feed(&d, in, 1003, out, &o), 1003);
	T_EQ_INT(d.done, 1);
	T_EQ_INT(d.toolong, 0);
	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	smtp_data_init(&d, 0);
	T_EQ_INT(smtp_data_feed(&d, in, 1004, out, &o), 1004);
	T_EQ_INT(d.done, 1);
	T_EQ_INT(d.toolong, 1);
	/* a stuffed dot counts: "." + 998 = 999 on the wire */
	in[0] = '.';
	memset(in + 1, 'x', 998);
	memcpy(in + 999, "\r\n.\r\n", 5);
	smtp_data_init(&d, 0);
	smtp_data_feed(&d, in, 1004, out, &o);
	T_EQ_INT(d.toolong, 1);
	T_EQ_INT(o, 999);
	/* bare LFs break lines when stored: no line is too long */
	memset(in, 'x', 1400);
	in[700] = '\n';
	memcpy(in + 1400, "\r\n.\r\n", 5);
	smtp_data_init(&d, 0);
	smtp_data_feed(&d, in, 1405, out, &o);
	T_EQ_INT(d.done, 1);
	T_EQ_INT(d.toolong, 0);
	T_EQ_INT(d.bare_lf, 1);
	/* ...but bare CRs do not */
	in[700] = '\r';
	smtp_data_init(&d, 0);
	smtp_data_feed(&d, in, 1405, out, &o);
	T_EQ_INT(d.toolong, 1);
	T_EQ_INT(d.bare_cr, 1);
	/* the decoder keeps going after too long / too big, to find the end */
	smtp_data_init(&d, 10);
	memset(in, 'y', 3000);
	memcpy(in + 3000, "\r\n.\r\nNOOP\r\n", 11);
	T_EQ_INT(smtp_data_feed(&d, in, 3011, out, &o), 3005);
	T_EQ_INT(d.done, 1);
	T_EQ_INT(d.toolong, 1);
	T_EQ_INT(d.toobig, 1);
	/* nothing is consumed once done */
	T_EQ_INT(smtp_data_feed(&d, "more", 4, out, &o), 0);
	T_EQ_INT(o, 0);
}

/* NUL octets are counted wherever they are (mid-line, line start, after a dot, after a
 * bare CR) and stored as given: the caller refuses the message */
static void run_nul(void)
{
	static const char in[] = "a\0b\r\n\0.\r\n.\0\r\nx\r\0y\r\n.\r\n";
	size_t n = sizeof in - 1;
	for (size_t step = 0; step <= n; step++) {
		char out[64];
		size_t outn, used;
		struct smtp_data d;
		decode(in, n, 0, step, 0, &d, out, &outn, &used);
		T_EQ_INT(d.done, 1);
		T_EQ_INT(used, n);
		T_EQ_INT(d.nul, 4);
		T_EQ_INT(outn, 14);
		T_CHECK(memcmp(out, "a\0b\n\0.\n\0\nx\r\0y\n", 14) == 0);
	}
	struct smtp_data d;
	char out[16];
	size_t o;
	smtp_data_init(&d, 0);
	smtp_data_feed(&d, "clean\r\n.\r\n", 10, out, &o);
	T_EQ_INT(d.nul, 0);
}

static void run_received(void)
{
	struct buf b;
	char date[64];
	setenv("TZ", "UTC0", 1);
	tzset();
	smtp_data_date(date, sizeof date, 1700000000);
	T_EQ_STR(date, "Tue, 14 Nov 2023 22:13:20 +0000");
	smtp_data_date(date, sizeof date, 0);
	T_EQ_STR(date, "Thu, 1 Jan 1970 00:00:00 +0000");
	setenv("TZ", "XXX-5:30", 1);
	tzset();
	smtp_data_date(date, sizeof date, 1700000000);
	T_EQ_STR(date, "Wed, 15 Nov 2023 03:43:20 +0530");
	setenv("TZ", "UTC0", 1);
	tzset();

	struct smtp_received r = { .helo = "client.example", .ip = "127.0.0.1", .me = "mx.example",
	                           .esmtp = 1, .msgid = 0x1234abcdULL, .rcpt = "u@example.org",
	                           .when = 1700000000 };
	buf_init(&b);
	smtp_data_received(&b, &r);
	T_EQ_STR(b.p, "Received: from client.example ([127.0.0.1] [127.0.0.1])\n"
	    "\tby mx.example (tern) with ESMTP id 000000001234abcd\n"
	    "\tfor <u@example.org>; Tue, 14 Nov 2023 22:13:20 +0000\n");
	buf_free(&b);
	r.esmtp = 0;
	r.rcpt = NULL;
	r.helo = "bad (helo)\r\nX: y";
	r.rdns = "host.example";
	smtp_data_received(&b, &r);
	T_EQ_STR(b.p, "Received: from bad??helo???X:?y (host.example [127.0.0.1])\n"
	    "\tby mx.example (tern) with SMTP id 000000001234abcd;\n"
	    "\tTue, 14 Nov 2023 22:13:20 +0000\n");
	buf_free(&b);
	r.helo = "";
	smtp_data_received(&b, &r);
	T_CHECK(strncmp(b.p, "Received: from unknown (", 24) == 0);
	buf_free(&b);

	/* RFC 3848: ESMTPS after STARTTLS (TLS version and cipher in a comment), ESMTPA after
	 * AUTH, ESMTPSA both; the login only when the operator reveals it (authprepend) */
	r = (struct smtp_received){ .helo = "c.example", .ip = "127.0.0.1", .me = "mx.example",
	                            .esmtp = 1, .msgid = 1, .when = 1700000000 };
	r.tls_version = "TLSv1.3";
	r.tls_cipher = "TLS_AES_256_GCM_SHA384";
	r.tls_bits = 256;
	smtp_data_received(&b, &r);
	T_EQ_STR(b.p, "Received: from c.example ([127.0.0.1] [127.0.0.1])\n"
	    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))\n"
	    "\tby mx.example (tern) with ESMTPS id 0000000000000001;\n"
	    "\tTue, 14 Nov 2023 22:13:20 +0000\n");
	buf_free(&b);
	r.auth = 1;
	smtp_data_received(&b, &r);
	T_CHECK(strstr(b.p, " with ESMTPSA id ") != NULL);
	T_CHECK(strstr(b.p, "authenticated") == NULL);
	buf_free(&b);
	r.authlogin = "jo (x)";
	smtp_data_received(&b, &r);
	T_CHECK(strstr(b.p, "\t(authenticated as jo??x?)\n\tby mx.example") != NULL);
	buf_free(&b);
	r.tls_version = NULL;
	r.authlogin = NULL;
	smtp_data_received(&b, &r);
	T_CHECK(strstr(b.p, " with ESMTPA id ") != NULL);
	T_CHECK(strstr(b.p, "using") == NULL);
	buf_free(&b);
}

static void run(void)
{
	run_cases();
	run_lengths();
	run_nul();
	run_received();
}

T_MAIN(run)
