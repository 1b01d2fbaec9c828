/* test_digest — qmail-ldap's password hash formats against values computed independently
 * (Python's hashlib/base64/crypt): {SHA} {SSHA} {MD5} {SMD5} {crypt} made with a given salt,
 * verified (and refused with a wrong password), random salts round-tripping, malformed
 * hashes rejected, and the base64/hex codecs (RFC 4648 test vectors). */
#include "t.h"
#include "mail/digest.h"

static const unsigned char salt4[] = { 1, 2, 3, 4 };

static void make_known(void)
{
	static const struct { int fmt; const char *pw; const unsigned char *salt; size_t n;
	                      const char *want; } cases[] = {
		{ DG_SHA, "secret", NULL, 0, "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=" },
		{ DG_MD5, "secret", NULL, 0, "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==" },
		{ DG_SSHA, "secret", salt4, 4, "{SSHA}uJDd0BIdJ9Z7yDCZNWdgYeb33+cBAgME" },
		{ DG_SMD5, "secret", salt4, 4, "{SMD5}LF/f6q9WuGXFii+gm3ssYQECAwQ=" },
		{ DG_SSHA, "password", (const unsigned char *)"salt", 4,
		  "{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0" },
		{ DG_CRYPT, "secret", (const unsigned char *)"ab", 2, "{crypt}abNANd1rDfiNc" },
		{ DG_CRYPT, "secret", (const unsigned char *)"$1$saltsalt$", 12,
		  "{crypt}$1$saltsalt$9xy1btjgzLYfb7hivXtC//" },
		{ DG_CRYPT, "secret", (const unsigned char *)"$6$saltsalt$", 12,
		  "{crypt}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b;
		buf_init(&b);
		T_EQ_INT(digest_make(cases[i].fmt, cases[i].pw, cases[i].salt, cases[i].n, &b), 0);
		T_EQ_STR(b.p, cases[i].want);
		T_EQ_INT(digest_verify(cases[i].want, cases[i].pw), 1);
		T_EQ_INT(digest_verify(cases[i].want, "Secret"), 0);
		buf_free(&b);
	}
}

static void random_salts(void)
{
	for (int fmt = DG_SSHA; fmt <= DG_CRYPT; fmt++) {
		struct buf a, b;
		buf_init(&a);
		buf_init(&b);
		T_EQ_INT(digest_make(fmt, "pässword", NULL, 0, &a), 0);
		T_EQ_INT(digest_make(fmt, "pässword", NULL, 0, &b), 0);
		T_EQ_INT(digest_verify(a.p, "pässword"), 1);
		T_EQ_INT(digest_verify(a.p, "password"), 0);
		if (fmt == DG_SSHA || fmt == DG_SMD5 || fmt == DG_CRYPT)
			T_CHECK(strcmp(a.p, b.p) != 0);           /* a fresh salt each time */
		if (fmt == DG_CRYPT)
			T_CHECK(strncmp(a.p, "{crypt}$6$", 10) == 0);
		buf_free(&a);
		buf_free(&b);
	}
}

static void verify_forms(void)
{
	/* scheme names are case-insensitive; no scheme means crypt */
	T_EQ_INT(digest_verify("{sha}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret"), 1);
	T_EQ_INT(digest_verify("{CRYPT}abNANd1rDfiNc", "secret"), 1);
	T_EQ_INT(digest_verify("abNANd1rDfiNc", "secret"), 1);
	T_EQ_INT(digest_verify("abNANd1rDfiNc", "secreT"), 0);
	/* malformed */
	static const char *bad[] = {
		"{SHA}", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=AAAA",
		"{SSHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ=!", "{MD4}abcd",
		"{SHA", "", "{crypt}", "{crypt}*", "{verylongschemename}x", "{MD5}Xr4i=lOzQ4PCOq3aQ0qbuaQ=",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = digest_verify(bad[i], "secret");
		if (r != -1)
			fprintf(stderr, "hash '%s'\n", bad[i]);
		T_EQ_INT(r, -1);
	}
	struct buf b;
	buf_init(&b);
	T_EQ_INT(digest_make(DG_SSHA, "x", salt4, 0, &b), -1);
	T_EQ_INT(digest_make(DG_CRYPT, "x", (const unsigned char *)"", 0, &b), -1);
	T_EQ_INT(digest_make(DG_CRYPT, "x", (const unsigned char *)"$6$a\0b", 6, &b), -1);
	T_EQ_INT(digest_make(99, "x", NULL, 0, &b), -1);
	buf_free(&b);
}

static void names(void)
{
	T_EQ_INT(digest_fmt_parse("SSHA"), DG_SSHA);
	T_EQ_INT(digest_fmt_parse("{smd5}"), DG_SMD5);
	T_EQ_INT(digest_fmt_parse("Crypt"), DG_CRYPT);
	T_EQ_INT(digest_fmt_parse("md5"), DG_MD5);
	T_EQ_INT(digest_fmt_parse("MD4"), -1);
	T_EQ_INT(digest_fmt_parse("{}"), -1);
	T_EQ_STR(digest_fmt_name(DG_SHA), "SHA");
}

static void codecs(void)
{
	static const char *vec[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		struct buf b;
		unsigned char out[16];
		buf_init(&b);
		digest_b64_encode(&b, (const unsigned char *)vec[i][0], strlen(vec[i][0]));
		T_EQ_STR(b.len ? b.p : "", vec[i][1]);
		long n = digest_b64_decode(vec[i][1], strlen(vec[i][1]), out, sizeof out);
		T_EQ_INT(n, (long)strlen(vec[i][0]));
		T_CHECK(n >= 0 && memcmp(out, vec[i][0], (size_t)n) == 0);
		buf_free(&b);
	}
	unsigned char out[4];
	T_EQ_INT(digest_b64_decode("Zm9vYmFy", 8, out, sizeof out), -1);   /* no room */
	T_EQ_INT(digest_b64_decode("Zg=", 3, out, sizeof out), -1);
	T_EQ_INT(digest_b64_decode("Z===", 4, out, sizeof out), -1);
	T_EQ_INT(digest_b64_decode("Zg==Zg==", 8, out, sizeof out), -1);
	T_EQ_INT(digest_hex_decode("01aBfF", out, sizeof out), 3);
	T_CHECK(out[0] == 1 && out[1] == 0xab && out[2] == 0xff);
	T_EQ_INT(digest_hex_decode("0g", out, sizeof out), -1);
	T_EQ_INT(digest_hex_decode("012", out, sizeof out), -1);
	T_EQ_INT(digest_hex_decode("0102030405", out, sizeof out), -1);
}

/* {PLAIN}/{CLEARTEXT}: the stored password, for CRAM-MD5 and APOP; the challenge-response
 * digests against RFC 2195's and RFC 1939's examples */
static void cleartext(void)
{
	struct buf b;
	buf_init(&b);
	T_EQ_INT(digest_fmt_parse("plain"), DG_PLAIN);
	T_EQ_INT(digest_fmt_parse("{CLEARTEXT}"), DG_PLAIN);
	T_EQ_STR(digest_fmt_name(DG_PLAIN), "PLAIN");
	T_EQ_INT(digest_make(DG_PLAIN, "tanstaaf:x", NULL, 0, &b), 0);
	T_EQ_STR(b.p, "{PLAIN}tanstaaf:x");
	T_EQ_INT(digest_make(DG_PLAIN, "", NULL, 0, &b), -1);
	T_EQ_INT(digest_verify("{PLAIN}tanstaaf", "tanstaaf"), 1);
	T_EQ_INT(digest_verify("{cleartext}tanstaaf", "tanstaaf"), 1);
	T_EQ_INT(digest_verify("{PLAIN}tanstaaf", "tanstaa"), 0);
	T_EQ_INT(digest_verify("{PLAIN}tanstaaf", "tanstaaff"), 0);
	T_EQ_INT(digest_verify("{PLAIN}", ""), -1);
	T_EQ_STR(digest_cleartext("{PLAIN}tanstaaf"), "tanstaaf");
	T_EQ_STR(digest_cleartext("{CLEARTEXT}a}b"), "a}b");
	T_CHECK(digest_cleartext("{PLAIN}") == NULL);
	T_CHECK(digest_cleartext("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=") == NULL);
	T_CHECK(digest_cleartext("abNANd1rDfiNc") == NULL);
	char hex[33];
	T_EQ_INT(digest_cram_md5("tanstaaftanstaaf", "<1896.697170952@postoffice.reston.mci.net>",
	                         hex), 0);
	T_EQ_STR(hex, "b913a602c7eda7a495b4e6e7334d3890");
	T_EQ_INT(digest_apop("tanstaaf", "<1896.697170952@dbc.mtview.ca.us>", hex), 0);
	T_EQ_STR(hex, "c4c9334bac560ecc979e58001b3e22fb");
	buf_free(&b);
}

static void run(void)
{
	cleartext();
	make_known();
	random_salts();
	verify_forms();
	names();
	codecs();
}

T_MAIN(run)
