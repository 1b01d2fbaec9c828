/* test_tlspolicy — the tlsdestinations and smtpauth tables (src/mail/tlspolicy.c): entry
 * syntax, lookup order, file errors with file:line, the credentials file's permissions, and
 * the config keys that name them. */
#include "t.h"
#include "mail/config.h"
#include "mail/tlspolicy.h"
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *in; int rc, level; const char *match; } pcases[] = {
	{ "none", 0, TLSP_NONE, "" },
	{ "may", 0, TLSP_MAY, "" },
	{ "  ENCRYPT ", 0, TLSP_ENCRYPT, "" },
	{ "verify", 0, TLSP_VERIFY, "" },
	{ "verify match=mx.example.com", 0, TLSP_VERIFY, "mx.example.com" },
	{ "verify\tmatch=*.example.com", 0, TLSP_VERIFY, "*.example.com" },
	{ "secure", -1, 0, "" },
	{ "", -1, 0, "" },
	{ "may match=mx.example.com", -1, 0, "" },
	{ "verify match=a match=b", -1, 0, "" },
	{ "verify match=", -1, 0, "" },
	{ "verify match=bad/name", -1, 0, "" },
	{ "verify ciphers=high", -1, 0, "" },
};

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
		struct tlspolicy p;
		char err[200] = "";
		int rc = tlspolicy_parse(pcases[i].in, &p, err, sizeof err);
		T_EQ_INT(rc, pcases[i].rc);
		if (rc == 0) {
			T_EQ_INT(p.level, pcases[i].level);
			T_EQ_STR(p.match, pcases[i].match);
		} else
			T_CHECK(err[0] != '\0');
	}
	char *b;
	const char *u, *pw;
	char err[200];
	T_EQ_INT(tlspolicy_auth_parse("joe:pa:ss word", &b, &u, &pw, err, sizeof err), 0);
	T_EQ_STR(u, "joe");
	T_EQ_STR(pw, "pa:ss word");
	free(b);
	T_EQ_INT(tlspolicy_auth_parse("joe", &b, &u, &pw, err, sizeof err), -1);
	T_EQ_INT(tlspolicy_auth_parse(":x", &b, &u, &pw, err, sizeof err), -1);
	T_EQ_INT(tlspolicy_auth_parse("jo e:x", &b, &u, &pw, err, sizeof err), -1);
}

static void put(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

static int load(struct config *c, const char *text, struct cfg_errors *errs)
{
	return config_parse(c, "t.conf", text, strlen(text), errs);
}

static void test_lookup(const char *dir)
{
	char pol[300], auth[300], conf[1200];
	snprintf(pol, sizeof pol, "%s/tlspol", dir);
	snprintf(auth, sizeof auth, "%s/auth", dir);
	put(pol, "# policy\nexample.com verify match=mx.example.com\n.example.com encrypt\n"
	         "[127.0.0.1]:2526 verify\nrelay.test may\nrelay.test:587 none\n", 0644);
	put(auth, "relay.test:587 joe:s3cret\n[127.0.0.1] ann:pw with blanks  \n", 0600);
	snprintf(conf, sizeof conf, "smtptls encrypt\ntlsdestinations file:%s\n"
	         "tlsdestinations plain.test=none\nsmtpauth file:%s\n", pol, auth);
	struct config c;
	struct cfg_errors errs;
	T_EQ_INT(load(&c, conf, &errs), 0);
	/* credentials for destinations whose level is not verify: a ternd -n warning each */
	T_EQ_INT(errs.nw, 2);
	T_CHECK(strcmp(errs.w[0].file, auth) == 0 && errs.w[0].line == 1);
	T_CHECK(strstr(errs.w[0].msg, "password for relay.test:587 goes out under TLS level none"));
	T_CHECK(strstr(errs.w[1].msg, "[127.0.0.1]") && strstr(errs.w[1].msg, "level encrypt"));
	struct tlspolicy_tables *t = tlspolicy_load(&c, &errs);
	T_CHECK(t != NULL);
	static const struct { const char *dest; int level; const char *match; } l[] = {
		{ "example.com", TLSP_VERIFY, "mx.example.com" },
		{ "a.b.example.com", TLSP_ENCRYPT, "" },
		{ "EXAMPLE.COM", TLSP_VERIFY, "mx.example.com" },
		{ "example.org", TLSP_ENCRYPT, "" },             /* the global smtptls */
		{ "[127.0.0.1]:2526", TLSP_VERIFY, "" },
		{ "[127.0.0.1]:2527", TLSP_ENCRYPT, "" },
		{ "relay.test:587", TLSP_NONE, "" },
		{ "relay.test:25", TLSP_MAY, "" },
		{ "plain.test", TLSP_NONE, "" },
		{ "xexample.com", TLSP_ENCRYPT, "" },
	};
	for (size_t i = 0; t && i < sizeof l / sizeof l[0]; i++) {
		struct tlspolicy p;
		char err[100];
		T_EQ_INT(tlspolicy_lookup(t, l[i].dest, &p, err, sizeof err), 0);
		T_EQ_INT(p.level, l[i].level);
		T_EQ_STR(p.match, l[i].match);
	}
	const char *u = NULL, *pw = NULL;
	T_EQ_INT(tlspolicy_auth(t, "relay.test:587", &u, &pw), 1);
	T_EQ_STR(u, "joe");
	T_EQ_STR(pw, "s3cret");
	T_EQ_INT(tlspolicy_auth(t, "[127.0.0.1]:2525", &u, &pw), 1);
	T_EQ_STR(u, "ann");
	T_EQ_STR(pw, "pw with blanks");
	T_EQ_INT(tlspolicy_auth(t, "relay.test", &u, &pw), 0);
	tlspolicy_free(t);
	config_free(&c);

	/* a world-readable credentials file, a bad policy line: ternd -n errors with file:line */
	chmod(auth, 0644);
	T_EQ_INT(load(&c, conf, &errs), -1);
	T_CHECK(errs.n >= 1 && strstr(errs.e[0].msg, "readable or writable by others"));
	T_EQ_INT(errs.e[0].line, 4);
	config_free(&c);
	chmod(auth, 0600);
	put(pol, "ok.test may\nbad.test secure\n", 0644);
	T_EQ_INT(load(&c, conf, &errs), -1);
	T_CHECK(errs.n == 1 && strcmp(errs.e[0].file, pol) == 0 && errs.e[0].line == 2);
	config_free(&c);
	put(auth, "relay.test nopassword\n", 0600);
	put(pol, "ok.test may\n", 0644);
	T_EQ_INT(load(&c, conf, &errs), -1);
	T_CHECK(errs.n == 1 && strcmp(errs.e[0].file, auth) == 0 && errs.e[0].line == 1);
	config_free(&c);
	T_EQ_INT(load(&c, "smtptls paranoid\n", &errs), -1);
	config_free(&c);
	T_EQ_INT(load(&c, "tlsdestinations example.com\n", &errs), -1);
	config_free(&c);
	T_EQ_INT(load(&c, "smtpauth /etc/passwd\n", &errs), -1);
	config_free(&c);
	snprintf(conf, sizeof conf, "tlscafile %s/nonexistent\n", dir);
	T_EQ_INT(load(&c, conf, &errs), -1);
	T_EQ_INT(errs.e[0].line, 1);
	config_free(&c);
	T_EQ_INT(load(&c, "", &errs), 0);
	T_EQ_STR(c.smtptls, "may");
	config_free(&c);
	/* verify for the smarthost: no warning */
	put(pol, "relay.test:587 verify\n", 0644);
	put(auth, "relay.test:587 joe:s3cret\n", 0600);
	snprintf(conf, sizeof conf, "tlsdestinations file:%s\nsmtpauth file:%s\n", pol, auth);
	T_EQ_INT(load(&c, conf, &errs), 0);
	T_EQ_INT(errs.nw, 0);
	config_free(&c);
	unlink(pol);
	unlink(auth);
}

static void run(void)
{
	char dir[] = "/tmp/test_tlspolicy.XXXXXX";
	test_parse();
	if (!mkdtemp(dir)) {
		T_CHECK(0);
		return;
	}
	test_lookup(dir);
	rmdir(dir);
}

T_MAIN(run)
