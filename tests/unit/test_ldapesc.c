/* test_ldapesc — RFC 4515 escaping of filter values and the qmail-ldap user filter
 * (src/mail/ldapesc.c), table-driven. Trusts: nothing. */
#include "t.h"
#include "mail/ldapesc.h"

static const struct { const char *in; size_t n; const char *out; } esc_cases[] = {
	{ "joe@example.test", 16, "joe@example.test" },
	{ "*", 1, "\\2a" },
	{ "(", 1, "\\28" },
	{ ")", 1, "\\29" },
	{ "\\", 1, "\\5c" },
	{ "a\0b", 3, "a\\00b" },
	{ "*)(uid=*", 8, "\\2a\\29\\28uid=\\2a" },
	{ "a b", 3, "a\\20b" },
	{ "\xc3\xa9", 2, "\\c3\\a9" },
	{ "\x7f\n", 2, "\\7f\\0a" },
	{ "", 0, "" },
};

static void test_escape(void)
{
	char out[64];
	for (size_t i = 0; i < sizeof esc_cases / sizeof esc_cases[0]; i++) {
		int n = ldapesc_value(esc_cases[i].in, esc_cases[i].n, out, sizeof out);
		T_EQ_STR(out, esc_cases[i].out);
		T_EQ_INT(n, (int)strlen(esc_cases[i].out));
	}
	T_EQ_INT(ldapesc_value("***", 3, out, 9), -1);     /* needs 10 */
	T_EQ_STR(out, "");
	T_EQ_INT(ldapesc_value("***", 3, out, 10), 9);
	T_EQ_INT(ldapesc_value("a", 1, out, 0), -1);
}

static const struct { const char *in; const char *out; } filter_cases[] = {
	{ "joe@example.test", "(&(objectClass=qmailUser)(|(mail=joe@example.test)"
	  "(mailAlternateAddress=joe@example.test)(mailAlternateAddress=@example.test)))" },
	{ "joe", "(&(objectClass=qmailUser)(|(mail=joe)(mailAlternateAddress=joe)))" },
	{ "*)(uid=*", "(&(objectClass=qmailUser)(|(mail=\\2a\\29\\28uid=\\2a)"
	  "(mailAlternateAddress=\\2a\\29\\28uid=\\2a)))" },
	{ "a@b@c", "(&(objectClass=qmailUser)(|(mail=a@b@c)(mailAlternateAddress=a@b@c)))" },
	{ "a@", "(&(objectClass=qmailUser)(|(mail=a@)(mailAlternateAddress=a@)))" },
	{ "x@*", "(&(objectClass=qmailUser)(|(mail=x@\\2a)(mailAlternateAddress=x@\\2a)"
	  "(mailAlternateAddress=@\\2a)))" },
};

static void test_filter(void)
{
	for (size_t i = 0; i < sizeof filter_cases / sizeof filter_cases[0]; i++) {
		char *f = ldapesc_user_filter("qmailUser", filter_cases[i].in,
		                              strlen(filter_cases[i].in));
		T_EQ_STR(f, filter_cases[i].out);
		free(f);
	}
	T_CHECK(ldapesc_user_filter("qmailUser", "", 0) == NULL);
	char big[1100];
	memset(big, 'a', sizeof big);
	T_CHECK(ldapesc_user_filter("qmailUser", big, sizeof big) == NULL);
	char *f = ldapesc_user_filter("x)(y", "a", 1);
	T_EQ_STR(f, "(&(objectClass=x\\29\\28y)(|(mail=a)(mailAlternateAddress=a)))");
	free(f);
}

static const struct { const char *in, *out; } login_cases[] = {
	{ "joe", "(&(objectClass=qmailUser)(uid=joe))" },
	{ "joe@example.test", "(&(objectClass=qmailUser)(|(mail=joe@example.test)"
	  "(mailAlternateAddress=joe@example.test)))" },
	{ "*", "(&(objectClass=qmailUser)(uid=\\2a))" },
	{ "joe)(uid=*", "(&(objectClass=qmailUser)(uid=joe\\29\\28uid=\\2a))" },
	{ "*)(uid=*@x", "(&(objectClass=qmailUser)(|(mail=\\2a\\29\\28uid=\\2a@x)"
	  "(mailAlternateAddress=\\2a\\29\\28uid=\\2a@x)))" },
	{ "a\\b", "(&(objectClass=qmailUser)(uid=a\\5cb))" },
};

static void test_login_filter(void)
{
	for (size_t i = 0; i < sizeof login_cases / sizeof login_cases[0]; i++) {
		char *f = ldapesc_login_filter("qmailUser", login_cases[i].in,
		                               strlen(login_cases[i].in));
		T_EQ_STR(f, login_cases[i].out);
		free(f);
	}
	T_CHECK(ldapesc_login_filter("qmailUser", "", 0) == NULL);
	T_CHECK(ldapesc_login_filter("qmailUser", "@example.test", 13) == NULL);  /* catch-all */
	char *f = ldapesc_login_filter("qmailUser", "a\0b", 3);                   /* NUL */
	T_EQ_STR(f, "(&(objectClass=qmailUser)(uid=a\\00b))");
	free(f);
	char big[1100];
	memset(big, 'a', sizeof big);
	T_CHECK(ldapesc_login_filter("qmailUser", big, sizeof big) == NULL);
}

static void run(void)
{
	test_escape();
	test_filter();
	test_login_filter();
}
T_MAIN(run)
