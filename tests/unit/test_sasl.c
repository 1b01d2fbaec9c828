/* test_sasl — SMTP AUTH's exchanges (src/mail/sasl.c), table-driven: the AUTH argument
 * (mechanisms case-insensitive, "=" an empty initial response, "*" cancelling, syntax,
 * unknown or not offered mechanisms, lines too long, bad base64), PLAIN's message (NULs,
 * empty or over-long fields, NUL inside a field, control characters in names), LOGIN's two
 * prompts, CRAM-MD5's challenge (RFC 2195's example) and answer, and the error replies with
 * their RFC 4954 codes. */
#include "t.h"
#include "mail/sasl.h"
#include "mail/digest.h"
#include "lib/buf.h"
#include <ctype.h>

#define ALL SASL_MECH_ALL

static void b64(struct buf *out, const char *raw, size_t n)
{
	digest_b64_encode(out, (const unsigned char *)raw, n);
}

/* AUTH <mech> <base64 of raw>: the decoded initial responses */
static void start_ir(void)
{
	static char longname[300];
	memset(longname, 'a', sizeof longname);
	static const struct { const char *mech; const char *raw; size_t n; int rc;
	                      const char *authzid, *login, *secret; } cases[] = {
		{ "PLAIN", "\0joe\0secret", 11, SASL_DONE, "", "joe", "secret" },
		{ "plain", "admin\0joe\0s3 cr:t", 17, SASL_DONE, "admin", "joe", "s3 cr:t" },
		{ "PlAiN", "\0joe@example.com\0x", 18, SASL_DONE, "", "joe@example.com", "x" },
		{ "PLAIN", "joe\0secret", 10, SASL_E_MALFORMED, NULL, NULL, NULL },   /* one NUL */
		{ "PLAIN", "joesecret", 9, SASL_E_MALFORMED, NULL, NULL, NULL },      /* no NUL */
		{ "PLAIN", "\0\0secret", 8, SASL_E_MALFORMED, NULL, NULL, NULL },     /* no authcid */
		{ "PLAIN", "\0joe\0", 5, SASL_E_MALFORMED, NULL, NULL, NULL },        /* no password */
		{ "PLAIN", "\0joe\0sec\0ret", 12, SASL_E_MALFORMED, NULL, NULL, NULL },/* NUL inside */
		{ "PLAIN", "\0jo\re\0secret", 12, SASL_E_MALFORMED, NULL, NULL, NULL },/* CR in name */
		{ "PLAIN", "a\nb\0joe\0secret", 14, SASL_E_MALFORMED, NULL, NULL, NULL },
		{ "LOGIN", "joe", 3, SASL_NEXT, "", "joe", "" },
		{ "login", "jo\x01", 3, SASL_E_MALFORMED, NULL, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sasl s;
		struct buf a;
		buf_init(&a);
		buf_printf(&a, "%s ", cases[i].mech);
		b64(&a, cases[i].raw, cases[i].n);
		int rc = sasl_start(&s, a.p, ALL, "mx.example");
		if (rc != cases[i].rc)
			fprintf(stderr, "case %zu: %s\n", i, a.p);
		T_EQ_INT(rc, cases[i].rc);
		if (rc == SASL_DONE || rc == SASL_NEXT) {
			T_EQ_STR(s.cred.authzid, cases[i].authzid);
			T_EQ_STR(s.cred.login, cases[i].login);
			T_EQ_STR(s.cred.secret, cases[i].secret);
			T_EQ_STR(s.cred.response, "");
		} else {
			T_EQ_STR(s.reply, sasl_reply(rc));
			T_EQ_STR(s.cred.login, "");          /* wiped */
		}
		if (rc == SASL_NEXT)
			T_EQ_STR(s.reply, SASL_LOGIN_PASS_PROMPT);
		sasl_clear(&s);
		buf_free(&a);
	}
	/* field lengths: 255 bytes fit, 256 do not (login and password alike) */
	for (int field = 0; field < 2; field++)
		for (size_t len = 254; len <= 256; len++) {
			struct buf raw, a;
			struct sasl s;
			buf_init(&raw);
			buf_init(&a);
			buf_add(&raw, "\0", 1);
			if (field == 0)
				buf_add(&raw, longname, len);
			else
				buf_adds(&raw, "joe");
			buf_add(&raw, "\0", 1);
			if (field == 1)
				buf_add(&raw, longname, len);
			else
				buf_adds(&raw, "pw");
			buf_adds(&a, "PLAIN ");
			b64(&a, raw.p, raw.len);
			T_EQ_INT(sasl_start(&s, a.p, ALL, "h"), len <= SASL_MAXFIELD ? SASL_DONE :
			         SASL_E_MALFORMED);
			if (len <= SASL_MAXFIELD)
				T_EQ_INT(strlen(field == 0 ? s.cred.login : s.cred.secret), len);
			buf_free(&raw);
			buf_free(&a);
		}
}

/* the AUTH argument itself */
static void start_arg(void)
{
	static char toolong[6 + SASL_MAXLINE + 5];
	memcpy(toolong, "PLAIN ", 6);
	memset(toolong + 6, 'A', SASL_MAXLINE + 4);
	static const struct { const char *arg; unsigned allowed; int rc; const char *reply; }
	cases[] = {
		{ "PLAIN", ALL, SASL_NEXT, "334 " },
		{ "LOGIN", ALL, SASL_NEXT, SASL_LOGIN_USER_PROMPT },
		{ "login", ALL, SASL_NEXT, "334 VXNlcm5hbWU6" },
		{ "", ALL, SASL_E_SYNTAX, "501 5.5.4 " },
		{ " PLAIN", ALL, SASL_E_SYNTAX, "501 5.5.4 " },
		{ "PLAIN ", ALL, SASL_E_SYNTAX, "501 5.5.4 " },
		{ "PLAIN  AGpvZQBzZWNyZXQ=", ALL, SASL_E_SYNTAX, "501 5.5.4 " },
		{ "PLAIN AGpvZQBzZWNyZXQ= x", ALL, SASL_E_SYNTAX, "501 5.5.4 " },
		{ "CRAM-MD5 =", ALL, SASL_E_SYNTAX, "501 5.5.4 " },    /* server speaks first */
		{ "CRAM-MD5 am9l", ALL, SASL_E_SYNTAX, "501 5.5.4 " },
		{ "GSSAPI", ALL, SASL_E_MECH, "504 5.5.4 " },
		{ "PLAINX", ALL, SASL_E_MECH, "504 5.5.4 " },
		{ "PLAI", ALL, SASL_E_MECH, "504 5.5.4 " },
		{ "X\x01Y", ALL, SASL_E_MECH, "504 5.5.4 " },
		{ "CRAM-MD5", SASL_MECH_BIT(SASL_PLAIN) | SASL_MECH_BIT(SASL_LOGIN), SASL_E_MECH,
		  "504 5.5.4 " },
		{ "PLAIN", 0, SASL_E_MECH, "504 5.5.4 " },
		{ "PLAIN =", ALL, SASL_E_MALFORMED, "501 5.5.2 " },     /* empty PLAIN message */
		{ "LOGIN =", ALL, SASL_E_MALFORMED, "501 5.5.2 " },     /* empty user name */
		{ "PLAIN *", ALL, SASL_E_CANCEL, "501 5.7.0 " },
		{ "PLAIN AGpvZQBzZWNyZXQ", ALL, SASL_E_B64, "501 5.5.2 " },   /* no padding */
		{ "PLAIN AGpvZQBz!WNyZXQ=", ALL, SASL_E_B64, "501 5.5.2 " },
		{ "PLAIN A=pvZQBzZWNyZXQ=", ALL, SASL_E_B64, "501 5.5.2 " },  /* '=' inside */
		{ "PLAIN ====", ALL, SASL_E_B64, "501 5.5.2 " },
		{ toolong, ALL, SASL_E_TOOLONG, "500 5.5.6 " },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sasl s;
		int rc = sasl_start(&s, cases[i].arg, cases[i].allowed, "mx.example");
		if (rc != cases[i].rc)
			fprintf(stderr, "case %zu: %.40s\n", i, cases[i].arg);
		T_EQ_INT(rc, cases[i].rc);
		T_CHECK(strncmp(s.reply, cases[i].reply, strlen(cases[i].reply)) == 0);
		if (rc >= SASL_E_SYNTAX)
			T_EQ_STR(s.reply, sasl_reply(rc));
	}
}

/* exchanges over several lines: AUTH arg, then the client's lines */
static void exchanges(void)
{
	static const struct { const char *arg; const char *lines[3]; int rc; const char *login,
	                      *secret; } cases[] = {
		{ "PLAIN", { "AGpvZQBzZWNyZXQ=" }, SASL_DONE, "joe", "secret" },
		{ "PLAIN", { "*" }, SASL_E_CANCEL, NULL, NULL },
		{ "PLAIN", { "" }, SASL_E_MALFORMED, NULL, NULL },
		{ "PLAIN", { "=" }, SASL_E_B64, NULL, NULL },   /* "=" is for initial responses */
		{ "PLAIN", { "am9l" }, SASL_E_MALFORMED, NULL, NULL },
		{ "LOGIN", { "am9l", "c2VjcmV0" }, SASL_DONE, "joe", "secret" },
		{ "LOGIN am9l", { "c2VjcmV0" }, SASL_DONE, "joe", "secret" },
		{ "LOGIN", { "" }, SASL_E_MALFORMED, NULL, NULL },
		{ "LOGIN", { "am9l", "" }, SASL_E_MALFORMED, NULL, NULL },
		{ "LOGIN", { "am9l", "*" }, SASL_E_CANCEL, NULL, NULL },
		{ "LOGIN", { "*" }, SASL_E_CANCEL, NULL, NULL },
		{ "LOGIN", { "am9l", "c2Vj!A==" }, SASL_E_B64, NULL, NULL },
		{ "LOGIN", { "am9l", "c2VjcmV0c" }, SASL_E_B64, NULL, NULL },
		{ "LOGIN", { "am9sAGU=" }, SASL_E_MALFORMED, NULL, NULL },      /* "jol\0e" */
		{ "LOGIN", { "am9l", "c2UAY3JldA==" }, SASL_E_MALFORMED, NULL, NULL },  /* NUL */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sasl s;
		int rc = sasl_start(&s, cases[i].arg, ALL, "mx.example");
		for (int k = 0; k < 3 && cases[i].lines[k] && rc == SASL_NEXT; k++)
			rc = sasl_step(&s, cases[i].lines[k], strlen(cases[i].lines[k]));
		if (rc != cases[i].rc)
			fprintf(stderr, "exchange %zu\n", i);
		T_EQ_INT(rc, cases[i].rc);
		if (rc == SASL_DONE) {
			T_EQ_STR(s.cred.login, cases[i].login);
			T_EQ_STR(s.cred.secret, cases[i].secret);
			T_EQ_STR(s.reply, "");
			T_EQ_INT(sasl_step(&s, "AAAA", 4), SASL_E_SYNTAX);  /* nothing more expected */
		} else {
			T_EQ_STR(s.reply, sasl_reply(rc));
			T_EQ_STR(s.cred.secret, "");
		}
		sasl_clear(&s);
		T_EQ_STR(s.cred.secret, "");
	}
	/* a line too long in the middle of an exchange */
	struct sasl s;
	static char big[SASL_MAXLINE + 4];
	memset(big, 'A', sizeof big);
	T_EQ_INT(sasl_start(&s, "LOGIN", ALL, "h"), SASL_NEXT);
	T_EQ_INT(sasl_step(&s, big, sizeof big), SASL_E_TOOLONG);
	T_EQ_STR(s.reply, "500 5.5.6 Authentication exchange line is too long");
	T_EQ_INT(sasl_start(&s, "LOGIN", ALL, "h"), SASL_NEXT);
	T_EQ_INT(sasl_step(&s, big, SASL_MAXLINE), SASL_E_MALFORMED);   /* fits, but NULs */
}

static void cram(void)
{
	char ch[SASL_MAXSECRET + 1];
	T_EQ_INT(sasl_cram_challenge(ch, sizeof ch, 1896, 697170952, "postoffice.reston.mci.net"), 0);
	T_EQ_STR(ch, "<1896.697170952@postoffice.reston.mci.net>");
	T_EQ_INT(sasl_cram_challenge(ch, 10, 1896, 697170952, "postoffice.reston.mci.net"), -1);
	char host[400];
	memset(host, 'h', sizeof host - 1);
	host[sizeof host - 1] = '\0';
	T_EQ_INT(sasl_cram_challenge(ch, sizeof ch, UINT64_MAX, UINT64_MAX, host), 0);
	T_EQ_INT(strlen(ch), 1 + 20 + 1 + 20 + 1 + SASL_MAXHOST + 1);

	/* the exchange: the 334 line is the base64 of the challenge, which becomes the secret */
	struct sasl s;
	T_EQ_INT(sasl_start(&s, "cram-md5", ALL, "mx.example"), SASL_NEXT);
	T_EQ_STR(s.cred.mech, "CRAM-MD5");
	T_CHECK(strncmp(s.reply, "334 ", 4) == 0);
	unsigned char dec[512];
	long n = digest_b64_decode(s.reply + 4, strlen(s.reply + 4), dec, sizeof dec);
	T_CHECK(n > 0);
	dec[n > 0 ? n : 0] = '\0';
	T_EQ_STR((char *)dec, s.cred.secret);
	const char *c = (const char *)dec;
	T_CHECK(c[0] == '<' && isdigit((unsigned char)c[1]) && strchr(c, '.') &&
	        strstr(c, "@mx.example>") && c[strlen(c) - 1] == '>');
	struct sasl s2;
	T_EQ_INT(sasl_start(&s2, "CRAM-MD5", ALL, "mx.example"), SASL_NEXT);
	T_CHECK(strcmp(s.cred.secret, s2.cred.secret) != 0);    /* a fresh challenge each time */

	static const struct { const char *answer; int rc; const char *login, *resp; } cases[] = {
		{ "tim b913a602c7eda7a495b4e6e7334d3890", SASL_DONE, "tim",
		  "b913a602c7eda7a495b4e6e7334d3890" },
		{ "tim B913A602C7EDA7A495B4E6E7334D3890", SASL_DONE, "tim",
		  "b913a602c7eda7a495b4e6e7334d3890" },
		{ "t i m b913a602c7eda7a495b4e6e7334d3890", SASL_DONE, "t i m",
		  "b913a602c7eda7a495b4e6e7334d3890" },
		{ "tim b913a602c7eda7a495b4e6e7334d389", SASL_E_MALFORMED, NULL, NULL },
		{ "tim b913a602c7eda7a495b4e6e7334d38900", SASL_E_MALFORMED, NULL, NULL },
		{ "tim b913a602c7eda7a495b4e6e7334d389g", SASL_E_MALFORMED, NULL, NULL },
		{ " b913a602c7eda7a495b4e6e7334d3890", SASL_E_MALFORMED, NULL, NULL },
		{ "b913a602c7eda7a495b4e6e7334d3890", SASL_E_MALFORMED, NULL, NULL },
		{ "tim b913a602c7eda7a495b4e6e7334d3890 ", SASL_E_MALFORMED, NULL, NULL },
		{ "", SASL_E_MALFORMED, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf a;
		buf_init(&a);
		b64(&a, cases[i].answer, strlen(cases[i].answer));
		T_EQ_INT(sasl_start(&s, "CRAM-MD5", ALL, "mx.example"), SASL_NEXT);
		char challenge[sizeof s.cred.secret];
		strcpy(challenge, s.cred.secret);
		int rc = sasl_step(&s, a.p ? a.p : "", a.len);
		if (rc != cases[i].rc)
			fprintf(stderr, "cram %zu\n", i);
		T_EQ_INT(rc, cases[i].rc);
		if (rc == SASL_DONE) {
			T_EQ_STR(s.cred.login, cases[i].login);
			T_EQ_STR(s.cred.response, cases[i].resp);
			T_EQ_STR(s.cred.secret, challenge);
		}
		buf_free(&a);
	}
	/* a user name with a NUL in it */
	struct sasl_cred cr;
	memset(&cr, 0, sizeof cr);
	T_EQ_INT(sasl_cram_decode((const unsigned char *)"t\0m b913a602c7eda7a495b4e6e7334d3890",
	                          36, &cr), SASL_E_MALFORMED);
	T_EQ_STR(cr.response, "");
}

static void names(void)
{
	T_EQ_INT(sasl_mech_parse("cram-md5", 8), SASL_CRAM_MD5);
	T_EQ_INT(sasl_mech_parse("PLAIN", 5), SASL_PLAIN);
	T_EQ_INT(sasl_mech_parse("PLAINX", 5), SASL_PLAIN);
	T_EQ_INT(sasl_mech_parse("PLAIN", 4), -1);
	T_EQ_INT(sasl_mech_parse("APOP", 4), -1);
	T_EQ_STR(sasl_mech_name(SASL_LOGIN), "LOGIN");
	T_EQ_STR(sasl_mech_name(7), "?");
	T_EQ_STR(sasl_reply(SASL_E_CANCEL), "501 5.7.0 Authentication cancelled");
	T_EQ_STR(sasl_reply(SASL_E_MECH), "504 5.5.4 Unrecognized authentication type");
	T_EQ_STR(sasl_reply(SASL_E_B64), "501 5.5.2 Cannot decode base64 data");
	T_EQ_STR(sasl_reply(SASL_DONE), "");
	T_EQ_STR(sasl_reply(99), "");
	unsigned char out[8];
	T_EQ_INT(sasl_b64_line("*", 1, out, sizeof out), -SASL_E_CANCEL);
	T_EQ_INT(sasl_b64_line("", 0, out, sizeof out), 0);
	T_EQ_INT(sasl_b64_line("AAAAAAAAAAAAAAAA", 16, out, sizeof out), -SASL_E_B64);  /* no room */
	T_EQ_INT(sasl_b64_line("am9l", 4, out, sizeof out), 3);
	T_CHECK(memcmp(out, "joe", 3) == 0);
}

static void run(void)
{
	start_ir();
	start_arg();
	exchanges();
	cram();
	names();
}
T_MAIN(run)
