/* test_ldaptable — the ldap: table profile parser and its filters (src/mail/ldaptable.c),
 * table-driven. Trusts: nothing. */
#include "t.h"
#include "mail/config.h"
#include "mail/ldaptable.h"
#include <stdlib.h>
#include <string.h>

static const struct { const char *text; int line; const char *err; } bad_cases[] = {
	{ "", 0, "query_filter missing" },
	{ "# only a comment\n\nscope = one\n", 3, "query_filter missing" },
	{ "query_filter\n", 1, "expected name = value" },
	{ "query_filter (ou=%s)\n", 1, "unknown name 'query_filter (ou'" },
	{ "query_filter = ou=%s\n", 1, "one filter in parentheses" },
	{ "query_filter = (&(ou=%s)\n", 1, "unbalanced parentheses" },
	{ "query_filter = (&(ou=%s)))\n", 1, "text after the filter's last ')'" },
	{ "query_filter = (ou=%s)(cn=%s)\n", 1, "text after the filter's last ')'" },
	{ "query_filter = ((ou=%s)\n", 1, "unbalanced parentheses" },
	{ "query_filter = (ou=%x)\n", 1, "unknown escape '%x'" },
	{ "query_filter = (ou=%)\n", 1, "unknown escape '%)'" },
	{ "query_filter = (ou=%1)\n", 1, "unknown escape '%1'" },
	{ "query_filter = (ou=x)\n", 1, "no %s, %u or %d" },
	{ "query_filter = (ou=%%)\n", 1, "no %s, %u or %d" },
	{ "query_filter = (ou=a\tb%s)\n", 1, "control character" },
	{ "query_filter = (ou=%s)\nscope = subtree\n", 2, "scope: expected sub, one or base" },
	{ "query_filter = (ou=%s)\nresult_attribute = a,b\n", 2, "not one attribute name" },
	{ "query_filter = (ou=%s)\nresult_attribute =\n", 2, "not one attribute name" },
	{ "query_filter = (ou=%s)\nsearch_base = a\nsearch_base = b\n", 3, "set twice" },
	{ "query_filter = (ou=%s)\nbind_dn = cn=x\n", 2, "unknown name 'bind_dn'" },
	{ "query_filter = (ou=%s)\nQuery_Filter = (ou=%s)\n", 2, "unknown name" },
	{ "query_filter = (ou=%s)\nx\0y = 1\n", 2, "NUL byte" },
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		struct ldaptable t;
		struct cfg_errors errs;
		const char *s = bad_cases[i].text;
		size_t n = strlen(s);
		if (strcmp(bad_cases[i].err, "NUL byte") == 0)        /* the text goes on after it */
			n += 1 + strlen(s + n + 1);
		errs.n = 0;
		T_EQ_INT(ldaptable_parse("p.cf", s, n, &t, &errs), -1);
		T_CHECK(errs.n >= 1);
		if (errs.n >= 1) {
			T_EQ_STR(errs.e[0].file, "p.cf");
			T_EQ_INT(errs.e[0].line, bad_cases[i].line);
			T_CHECK(strstr(errs.e[0].msg, bad_cases[i].err) != NULL);
			if (!strstr(errs.e[0].msg, bad_cases[i].err))
				fprintf(stderr, "case %zu: %s\n", i, errs.e[0].msg);
		}
		T_CHECK(t.filter == NULL && t.base == NULL && t.attr == NULL);
	}
}

static void test_good(void)
{
	struct ldaptable t;
	struct cfg_errors errs;
	const char *s = "# relay domains\r\n  query_filter =  (&(objectClass=x)(|(a=%s)(b=%u)(c=%d)(d=%%)))  \r\n"
	                "search_base = ou=relay, dc=example\nresult_attribute = description\n"
	                "scope = base\n";
	errs.n = 0;
	T_EQ_INT(ldaptable_parse("p.cf", s, strlen(s), &t, &errs), 0);
	T_EQ_INT(errs.n, 0);
	T_EQ_STR(t.filter, "(&(objectClass=x)(|(a=%s)(b=%u)(c=%d)(d=%%)))");
	T_EQ_STR(t.base, "ou=relay, dc=example");
	T_EQ_STR(t.attr, "description");
	T_EQ_INT(t.scope, LDAPTABLE_BASE);
	char *f = ldaptable_filter(&t, "Joe*@Ex(ample)");
	T_EQ_STR(f, "(&(objectClass=x)(|(a=Joe\\2a@Ex\\28ample\\29)(b=Joe\\2a)(c=Ex\\28ample\\29)(d=%)))");
	free(f);
	T_CHECK(ldaptable_filter(&t, "@example.test") == NULL);   /* empty %u */
	T_CHECK(ldaptable_filter(&t, "example.test") == NULL);    /* no domain for %d */
	T_CHECK(ldaptable_filter(&t, "") == NULL);
	ldaptable_free(&t);

	s = "query_filter=(ou=%s)\n";
	T_EQ_INT(ldaptable_parse("p.cf", s, strlen(s), &t, &errs), 0);
	T_EQ_STR(t.base, "");
	T_EQ_STR(t.attr, "");
	T_EQ_INT(t.scope, LDAPTABLE_SUB);
	f = ldaptable_filter(&t, "*)(objectClass=*");
	T_EQ_STR(f, "(ou=\\2a\\29\\28objectClass=\\2a)");
	free(f);
	f = ldaptable_filter(&t, "no-at-sign");                  /* %s: any key */
	T_EQ_STR(f, "(ou=no-at-sign)");
	free(f);
	char big[1100];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	T_CHECK(ldaptable_filter(&t, big) == NULL);
	ldaptable_free(&t);

	s = "query_filter = (uid=%u)\n";                           /* %u alone: no domain needed */
	T_EQ_INT(ldaptable_parse("p.cf", s, strlen(s), &t, &errs), 0);
	f = ldaptable_filter(&t, "plain");
	T_EQ_STR(f, "(uid=plain)");
	free(f);
	f = ldaptable_filter(&t, "a@b@c");                        /* the last '@' splits */
	T_EQ_STR(f, "(uid=a@b)");
	free(f);
	ldaptable_free(&t);
}

static void test_load(void)
{
	struct ldaptable t;
	struct cfg_errors errs;
	errs.n = 0;
	T_EQ_INT(ldaptable_load("/nonexistent/tern-profile.cf", &t, &errs), -1);
	T_EQ_INT(errs.n, 1);
	T_CHECK(strstr(errs.e[0].msg, "cannot read LDAP profile") != NULL);
	char why[128];
	T_EQ_INT(ldaptable_check_filter("(mail=%s)", why, sizeof why), 0);
	T_EQ_INT(ldaptable_check_filter("", why, sizeof why), -1);
}

static void run(void)
{
	test_bad();
	test_good();
	test_load();
}
T_MAIN(run)
