/* test_config — tern.conf: defaults, the development default, good files, every error with
 * its line number, list keys with file: tables, listen forms, include, showctl. */
#include "t.h"
#include "mail/config.h"
#include <stdio.h>
#include <unistd.h>

static char dir[64];

static int parse(struct config *c, const char *text, struct cfg_errors *errs)
{
	return config_parse(c, "t.conf", text, strlen(text), errs);
}

static void write_file(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	T_CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_defaults(void)
{
	struct config c;
	struct cfg_errors errs;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	T_EQ_INT(parse(&c, "", &errs), 0);
	T_EQ_INT(errs.n, 0);
	T_EQ_INT(c.dev, 0);
	T_EQ_STR(c.path, "t.conf");
	T_EQ_STR(c.me, host);
	T_EQ_STR(c.smtpgreeting, host);
	T_EQ_STR(c.helohost, host);
	T_EQ_STR(c.envnoathost, host);
	T_EQ_STR(c.bouncehost, host);
	T_EQ_STR(c.doublebouncehost, host);
	T_EQ_STR(c.user, "_tern");
	T_EQ_STR(c.queueuser, "_ternq");
	T_EQ_STR(c.defaultprivs, "nobody");
	T_EQ_STR(c.dotqmailcheck, "strict");
	T_EQ_STR(c.smtpuser, "_ternsmtp");
	T_EQ_STR(c.mtauser, "_ternmta");
	T_EQ_STR(c.sandbox, "yes");
	T_EQ_STR(c.rootdir, "/var/empty/tern");
	T_EQ_STR(c.spool, "/var/spool/tern");
	T_EQ_STR(c.libexec, "");
	T_EQ_INT(c.nlisten, 0);
	T_EQ_INT(c.loglevel, 2);
	T_EQ_INT(c.databytes, 10485760);
	T_EQ_INT(c.maxrcptcount, 1000);
	T_EQ_INT(c.timeoutsmtpd, 1200);
	T_EQ_INT(c.maxsmtpd, 20000);
	T_EQ_INT(c.maxsmtpdperip, 100);
	T_EQ_INT(c.tarpitcount, 0);
	T_EQ_INT(c.tarpitdelay, 5);
	T_EQ_INT(c.expn, 0);
	T_EQ_INT(c.vrfy, 0);
	T_EQ_STR(c.users, "passwd:");
	T_EQ_STR(c.aliases, "");
	T_EQ_STR(c.aliasempty, "./Maildir/");
	T_EQ_INT(c.percenthack, 0);
	T_EQ_INT(c.concurrencylocal, 10);
	T_EQ_INT(c.concurrencyremote, 20);
	T_EQ_INT(c.queuelifetime, 604800);
	T_EQ_INT(c.retrylocal, 10);
	T_EQ_INT(c.retryremote, 20);
	T_EQ_STR(c.bouncefrom, "MAILER-DAEMON");
	T_EQ_STR(c.doublebounceto, "postmaster");
	T_EQ_INT(c.bouncemaxbytes, 16384);
	T_EQ_STR(c.postmaster, "root");
	T_EQ_INT(c.timeoutconnect, 60);
	T_EQ_INT(c.timeoutremote, 1200);
	T_EQ_STR(c.resolver, "");
	T_EQ_STR(c.outgoingip, "");
	T_EQ_INT(c.locals.n, 1);          /* locals defaults to me */
	T_CHECK(config_list_has(&c.locals, host));
	T_EQ_INT(c.rcpthosts.n + c.rcpthosts.ntables, 0);
	T_EQ_INT(c.relayclients.n + c.relayclients.ntables, 0);
	config_free(&c);
}

/* double bounces go to a local domain: the first plain one of locals, not me */
static void test_doublebouncehost(void)
{
	static const struct { const char *text, *want; } c[] = {
		{ "me x.test\nlocals a.test, b.test\n", "a.test" },
		{ "me x.test\nlocals .sub.test, [192.0.2.1], C.test\n", "c.test" },
		{ "me x.test\nlocals .sub.test\n", "x.test" },
		{ "me x.test\n", "x.test" },
		{ "me x.test\nlocals a.test\ndoublebouncehost d.test\n", "d.test" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct config cf;
		struct cfg_errors errs;
		T_EQ_INT(parse(&cf, c[i].text, &errs), 0);
		T_EQ_STR(cf.doublebouncehost, c[i].want);
		config_free(&cf);
	}
}

static void test_dev(void)
{
	struct config c;
	struct cfg_errors errs;
	T_EQ_INT(config_load(&c, NULL, &errs), 0);
	T_EQ_INT(c.dev, 1);
	T_EQ_STR(c.path, "(embedded development default)");
	T_EQ_INT(c.nlisten, 1);
	T_EQ_STR(c.listen[0].kind, "smtp");
	T_EQ_STR(c.listen[0].addr, "127.0.0.1");
	T_EQ_INT(c.listen[0].port, 2525);
	T_EQ_STR(c.spool, "./var/spool");
	T_EQ_STR(c.users, "any:./var/mail");
	T_EQ_STR(c.envnoathost, "localhost");
	T_EQ_STR(c.doublebouncehost, "localhost");
	T_EQ_INT(c.locals.n, 1);
	T_EQ_STR(c.locals.v[0], "localhost");
	T_CHECK(config_list_has(&c.locals, "LocalHost"));
	T_EQ_INT(c.relayclients.n + c.relayclients.ntables, 0);
	T_EQ_INT(c.rcpthosts.n + c.rcpthosts.ntables, 0);
	T_EQ_INT(c.databytes, 10485760);
	config_free(&c);
}

static void test_ldap_keys(void)
{
	struct config c;
	struct cfg_errors errs;
	const char *text = "ldapserver ldap://127.0.0.1:389/ LDAPS://h:636/,ldapi://%2Fx/\n"
	                   "ldapbasedn ou=people, dc=example,dc=test\n"
	                   "ldaplogin cn=admin,dc=example,dc=test\n"
	                   "ldappassword s3cret\nldaptimeout 5\nldapuid 100\nldapgid 101\n"
	                   "ldapclusterhosts a.test,b.test\nldaptls yes\n";
	T_EQ_INT(config_parse(&c, "t.conf", text, strlen(text), &errs), 0);
	T_EQ_STR(c.ldapserver, "ldap://127.0.0.1:389/ LDAPS://h:636/,ldapi://%2Fx/");
	T_EQ_STR(c.ldapbasedn, "ou=people, dc=example,dc=test");
	T_EQ_STR(c.ldappassword, "s3cret");
	T_EQ_INT(c.ldaptimeout, 5);
	T_EQ_INT(c.ldapuid, 100);
	T_EQ_INT(c.ldaptls, 1);
	T_EQ_INT(c.ldapclusterhosts.n, 2);
	T_EQ_STR(c.ldapobjectclass, "qmailUser");
	T_EQ_STR(c.ldapdefaultdotmode, "ldaponly");
	T_EQ_STR(c.smtpclustercookie, "");
	T_EQ_INT(c.ldapclusterhops, 3);
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	config_show(&c, f);
	fclose(f);
	T_CHECK(strstr(out, "s3cret") == NULL);       /* showctl never prints the password */
	T_CHECK(strstr(out, "(set)") != NULL);
	free(out);
	config_free(&c);
}

static void test_good(void)
{
	struct config c;
	struct cfg_errors errs;
	const char *text =
		"# a comment\r\n"
		"me mail.example.com\r\n"
		"smtpgreeting \"mail.example.com ESMTP tern\"   # trailing comment\n"
		"helohost out#1.example.com\n"
		"  databytes   0\n"
		"\n"
		"expn yes\nvrfy ON\npercenthack true\n"
		"locals example.com, Example.NET \\\n"
		"   other.org\n"
		"locals more.org\n"
		"rcpthosts .example.com\n"
		"relayclients 127.0.0.1 10.0.0.0/8 ::1 2001:db8::/32 192.168.\n"
		"badmailfrom spam@x.com @Evil.com\n"
		"listen smtp 0.0.0.0:25\n"
		"listen submission [::1]:587 auth=optional relayauth=no\n"
		"listen mailq unix:/run/tern/mailq\n"
		"listen qp 127.0.0.1:8670\n"
		"aliases \"\"\n"
		"users any:/srv/mail\n"
		"outgoingip 192.0.2.1\n"
		"resolver [::1]:5353\n"
		"loglevel 3\n"
		"queuelifetime 0";            /* no newline at the end */
	T_EQ_INT(parse(&c, text, &errs), 0);
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "unexpected %s:%d: %s\n", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
	T_EQ_STR(c.me, "mail.example.com");
	T_EQ_STR(c.smtpgreeting, "mail.example.com ESMTP tern");
	T_EQ_STR(c.helohost, "out#1.example.com");
	T_EQ_STR(c.envnoathost, "mail.example.com");
	T_EQ_STR(c.bouncehost, "mail.example.com");
	T_EQ_INT(c.databytes, 0);
	T_EQ_INT(c.expn, 1);
	T_EQ_INT(c.vrfy, 1);
	T_EQ_INT(c.percenthack, 1);
	T_EQ_INT(c.locals.n, 4);
	T_CHECK(config_list_has(&c.locals, "example.net"));
	T_CHECK(config_list_has(&c.locals, "OTHER.org"));
	T_CHECK(config_list_has(&c.locals, "more.org"));
	T_CHECK(!config_list_has(&c.locals, "mail.example.com"));
	T_CHECK(config_list_has(&c.rcpthosts, "a.example.com"));
	T_CHECK(!config_list_has(&c.rcpthosts, "example.com"));
	T_CHECK(config_list_has(&c.badmailfrom, "@evil.com"));
	T_EQ_INT(c.relayclients.n, 5);
	T_EQ_INT(c.nlisten, 4);
	T_EQ_STR(c.listen[1].kind, "submission");
	T_EQ_STR(c.listen[1].addr, "::1");
	T_EQ_INT(c.listen[1].port, 587);
	T_EQ_INT(c.listen[1].policy.tls, CFG_TLS_NONE);      /* no servercert */
	T_EQ_INT(c.listen[1].policy.auth, CFG_AUTH_OPTIONAL);
	T_EQ_INT(c.listen[1].policy.relayauth, 0);
	T_EQ_INT(c.listen[0].policy.tls, CFG_TLS_NONE);
	T_EQ_INT(c.listen[0].policy.auth, CFG_AUTH_OPTIONAL);
	T_EQ_INT(c.listen[0].policy.relayauth, 1);
	T_EQ_STR(c.listen[2].addr, "unix");
	T_EQ_STR(c.listen[2].path, "/run/tern/mailq");
	T_EQ_STR(c.aliases, "");
	T_EQ_STR(c.users, "any:/srv/mail");
	T_EQ_STR(c.resolver, "[::1]:5353");
	T_EQ_INT(c.loglevel, 3);
	T_EQ_INT(c.queuelifetime, 0);
	config_free(&c);

	const char *bools[] = { "yes", "no", "on", "off", "1", "0", "true", "false", "YES", "False" };
	for (int i = 0; i < 10; i++) {
		char line[64];
		snprintf(line, sizeof line, "vrfy %s\n", bools[i]);
		T_EQ_INT(parse(&c, line, &errs), 0);
		T_EQ_INT(c.vrfy, i % 2 == 0);
		config_free(&c);
	}
}

static void test_errors(void)
{
	static const struct { const char *text; int line; const char *msg; } cases[] = {
		{ "nosuchkey 1\n", 1, "unknown key 'nosuchkey'" },
		{ "lists ldap:groups\n", 1, "lists: only inline entries" },
		{ "listmodtimeout 0\n", 1, "out of bounds" },
		{ "\n\ndatabytes abc\n", 3, "databytes: bad number 'abc'" },
		{ "databytes -1\n", 1, "bad number" },
		{ "databytes 99999999999999999999999\n", 1, "bad number" },
		{ "timeoutsmtpd 0\n", 1, "timeoutsmtpd: 0 is out of bounds (1..86400)" },
		{ "loglevel 4\n", 1, "out of bounds (0..3)" },
		{ "databytes\n", 1, "missing value for 'databytes'" },
		{ "# c\ndatabytes 1\ndatabytes 2\n", 3, "duplicate key 'databytes' (first set at t.conf:2)" },
		{ "me a\nme b\n", 2, "duplicate key 'me'" },
		{ "expn maybe\n", 1, "expected yes/no" },
		{ "me two words\n", 1, "one word" },
		{ "listen smtp 1.2.3.4\n", 1, "listen: bad address" },
		{ "listen smtp 1.2.3.4:0\n", 1, "listen: bad address" },
		{ "listen smtp 1.2.3.4:65536\n", 1, "listen: bad address" },
		{ "listen smtp [::1:25\n", 1, "listen: bad address" },
		{ "listen smtp ::1:25\n", 1, "listen: bad address" },
		{ "listen smtp host.example:25\n", 1, "listen: bad address" },
		{ "listen smtp unix:\n", 1, "listen: bad address" },
		{ "listen bogus 1.2.3.4:25\n", 1, "listen: unknown kind 'bogus'" },
		{ "\nlisten pop3s 127.0.0.1:995\n", 2, "listen pop3s: needs servercert" },
		{ "listen smtp\n", 1, "listen: expected KIND ADDR:PORT" },
		{ "listen smtp 1.2.3.4:25 extra\n", 1, "listen: expected OPTION=VALUE, got 'extra'" },
		{ "listen smtp 1.2.3.4:25 tls=maybe\n", 1, "listen: bad value 'maybe' for tls (none, starttls, implicit)" },
		{ "listen smtp 1.2.3.4:25 auth=yes\n", 1, "listen: bad value 'yes' for auth" },
		{ "listen smtp 1.2.3.4:25 relayauth=1\n", 1, "listen: bad value '1' for relayauth (yes, no)" },
		{ "listen smtp 1.2.3.4:25 color=red\n", 1, "listen: unknown option 'color' (tls, auth, relayauth)" },
		{ "listen qp 1.2.3.4:25 tls=none\n", 1, "listen: qp listeners take no options" },
		{ "\nlisten smtp 1.2.3.4:25 tls=starttls\n", 2, "listen smtp: tls=starttls needs a servercert" },
		{ "listen smtps 1.2.3.4:465\n", 1, "listen smtps: tls=implicit needs a servercert" },
		{ "listen submission 1.2.3.4:587\nme x\n", 1, "listen submission: auth=required but AUTH is offered only after TLS" },
		{ "servercert /nonexistent/cert.pem\n", 1, "servercert: cannot read /nonexistent/cert.pem" },
		{ "dhfile /nonexistent/dh.pem\n", 1, "dhfile: cannot read /nonexistent/dh.pem" },
		{ "authmechs PLAIN DIGEST-MD5\n", 1, "authmechs: unknown mechanism 'DIGEST-MD5' (PLAIN, LOGIN, CRAM-MD5)" },
		{ "authmechs ,\n", 1, "authmechs: no mechanism" },
		{ "locals file:/nonexistent/tern/x\n", 1, "locals: cannot read table file /nonexistent/tern/x" },
		{ "rcpthosts cdb:/nonexistent/x.cdb\n", 1, "cannot read table file" },
		{ "locals ldap:profile\n", 1, "ldap: tables are not supported" },
		{ "relayclients 10.0.0.0/33\n", 1, "relayclients: bad address or network '10.0.0.0/33'" },
		{ "relayclients example.com\n", 1, "bad address or network" },
		{ "users ldap:x\n", 1, "users: expected file:PATH, passwd:, any:DIR or ldap:" },
		{ "\nusers ldap:\n", 2, "users: ldap: needs ldapserver" },
		{ "ldapdefaultdotmode dot\n", 1, "ldapdefaultdotmode: 'dot' is not one of ldaponly" },
		{ "ldapcachettl -1\n", 1, "ldapcachettl: bad number" },
		{ "users file:/nonexistent/users\n", 1, "cannot read table file" },
		{ "aliases relative/path\n", 1, "aliases: expected file:PATH" },
		{ "aliases /nonexistent/aliases\n", 1, "cannot read table file /nonexistent/aliases" },
		{ "include /nonexistent/tern.conf\n", 1, "include: cannot read /nonexistent/tern.conf" },
		{ "outgoingip nope\n", 1, "outgoingip: expected a numeric address" },
		{ "resolver 1.2.3.4:99999\n", 1, "resolver: expected" },
		{ "resolver 1.2.3.4:\n", 1, "resolver: expected" },
		{ "resolver host.example\n", 1, "resolver: expected" },
		{ "smtpgreeting a\001b\n", 1, "control character" },
		{ "me \"\"\n", 1, "me: empty value" },
		{ "me ok\nme\0x\n", 2, "NUL byte in line" },
		{ "defaultprivs _tern\n", 1, "defaultprivs: '_tern' is (or shares the uid of) the user account" },
		{ "\nuser nobody\n", 2, "defaultprivs: 'nobody' is (or shares the uid of) the user account" },
		{ "queueuser x\ndefaultprivs x\n", 2, "the queueuser account" },
		{ "defaultprivs root\n", 1, "defaultprivs: 'root' is root (uid 0)" },
		{ "dotqmailcheck loose\n", 1, "dotqmailcheck: 'loose' is not one of strict, qmail" },
		{ "\nldapserver ldap://a/ http://b/\n", 2, "ldapserver: 'http://b/' is not an ldap://, ldaps:// or ldapi:// URI" },
		{ "ldapserver 127.0.0.1\n", 1, "ldapserver: '127.0.0.1' is not an ldap://" },
		{ "ldappassword file:/nonexistent/pw\n", 1, "ldappassword: cannot read table file /nonexistent/pw" },
		{ "\nsmtpclustercookie 0123456789abcdef0123456789abcdef0\n", 2, "smtpclustercookie: at most 32 printable characters without blanks" },
		{ "smtpclustercookie caf\xc3\xa9\n", 1, "smtpclustercookie: at most 32" },
		{ "smtpclustercookie two words\n", 1, "smtpclustercookie: expected one word" },
		{ "ldapclusterhops 0\n", 1, "ldapclusterhops: 0 is out of bounds (1..100)" },
		{ "ldaptimeout 0\n", 1, "ldaptimeout: 0 is out of bounds (1..3600)" },
		{ "ldapdefaultdotmode dot\n", 1, "ldapdefaultdotmode: 'dot' is not one of ldaponly, ldapwithprog, dotonly, both, none" },
		{ "ldapcafile /nonexistent/ca.pem\n", 1, "ldapcafile: cannot read /nonexistent/ca.pem" },
		{ "ldaptls maybe\n", 1, "ldaptls: expected yes/no" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config c;
		struct cfg_errors errs;
		size_t len = strlen(cases[i].text);
		if (strstr(cases[i].msg, "NUL"))
			len = 10;
		int r = config_parse(&c, "t.conf", cases[i].text, len, &errs);
		if (r != -1 || errs.n != 1)
			fprintf(stderr, "case %zu (%s): r=%d n=%d\n", i, cases[i].text, r, errs.n);
		T_EQ_INT(r, -1);
		T_EQ_INT(errs.n, 1);
		if (errs.n >= 1) {
			T_EQ_STR(errs.e[0].file, "t.conf");
			T_EQ_INT(errs.e[0].line, cases[i].line);
			if (!strstr(errs.e[0].msg, cases[i].msg))
				fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, errs.e[0].msg,
				        cases[i].msg);
			T_CHECK(strstr(errs.e[0].msg, cases[i].msg) != NULL);
		}
		config_free(&c);
	}
}

/* listener options: kind defaults, options written, authplaintext, how showctl prints them */
static void test_listen_options(void)
{
	struct config c;
	struct cfg_errors errs;
	const char *text =
		"listen smtp 127.0.0.1:25 tls=none auth=none\n"
		"listen submission 127.0.0.1:587\n"
		"listen smtp 127.0.0.1:26 auth=required relayauth=no\n"
		"authplaintext yes\n";
	T_EQ_INT(parse(&c, text, &errs), 0);
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "unexpected %s:%d: %s\n", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
	T_EQ_INT(c.authplaintext, 1);
	T_EQ_INT(c.listen[0].policy.tls, CFG_TLS_NONE);
	T_EQ_INT(c.listen[0].policy.auth, CFG_AUTH_NONE);
	T_EQ_INT(c.listen[1].policy.tls, CFG_TLS_NONE);
	T_EQ_INT(c.listen[1].policy.auth, CFG_AUTH_REQUIRED);
	T_EQ_INT(c.listen[1].policy.relayauth, 1);
	T_EQ_INT(c.listen[2].policy.auth, CFG_AUTH_REQUIRED);
	T_EQ_INT(c.listen[2].policy.relayauth, 0);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	config_show(&c, f);
	fclose(f);
	T_CHECK(strstr(out, "listen             smtp 127.0.0.1:25 tls=none auth=none relayauth=yes ") != NULL);
	T_CHECK(strstr(out, "\nlisten             submission 127.0.0.1:587 tls=none auth=required relayauth=yes \n") != NULL);
	T_CHECK(strstr(out, "\nauthplaintext      yes ") != NULL);
	T_CHECK(strstr(out, "\ntlsprotocols       TLSv1.2 TLSv1.3 ") != NULL);
	free(out);
	config_free(&c);
	/* the TLS keys' defaults */
	T_EQ_INT(parse(&c, "", &errs), 0);
	T_EQ_STR(c.servercert, "");
	T_EQ_STR(c.tlsserverciphers, "");
	T_EQ_STR(c.tlsprotocols, "TLSv1.2 TLSv1.3");
	T_EQ_STR(c.dhfile, "");
	T_EQ_INT(c.authplaintext, 0);
	T_EQ_INT(c.authprepend, 0);
	T_EQ_STR(c.authmechs, "PLAIN LOGIN CRAM-MD5");
	T_EQ_INT(c.authmechmask, 7);
	T_EQ_INT(errs.nw, 0);
	config_free(&c);
	T_EQ_INT(parse(&c, "authmechs login,plain login\n", &errs), 0);
	T_EQ_STR(c.authmechs, "LOGIN PLAIN");
	T_EQ_INT(c.authmechmask, 3);
	config_free(&c);
	/* sendmail, ternctl and the roles do not read the key (they may not be able to) */
	config_tls_checks(0);
	T_EQ_INT(parse(&c, "servercert /nonexistent/cert.pem\n", &errs), 0);
	T_EQ_STR(c.servercert, "/nonexistent/cert.pem");
	config_free(&c);
	/* the kind table: who serves each kind, and the pop3 kinds' policies */
	T_EQ_INT(parse(&c, "servercert /nonexistent/cert.pem\nlisten pop3 127.0.0.1:110\n"
	               "listen pop3s 127.0.0.1:995\nlisten qp 127.0.0.1:628\n"
	               "listen smtps 127.0.0.1:465\n", &errs), 0);
	T_EQ_INT(config_listen_kind(&c.listen[0])->server, CFG_SERVER_SMTP);
	T_EQ_INT(config_listen_kind(&c.listen[0])->proto, CFG_PROTO_POP3);
	T_EQ_INT(c.listen[0].policy.tls, CFG_TLS_STARTTLS);
	T_EQ_INT(config_listen_kind(&c.listen[1])->implicit, 1);
	T_EQ_INT(c.listen[1].policy.tls, CFG_TLS_IMPLICIT);
	T_EQ_INT(config_listen_kind(&c.listen[2])->server, CFG_SERVER_CONTROL);
	T_EQ_INT(config_listen_kind(&c.listen[3])->proto, CFG_PROTO_SMTP);
	T_EQ_INT(c.listen[3].policy.tls, CFG_TLS_IMPLICIT);
	config_free(&c);
	T_EQ_INT(parse(&c, "listen pop3 127.0.0.1:110\n", &errs), 0);
	T_EQ_INT(c.listen[0].policy.tls, CFG_TLS_NONE);
	config_free(&c);
	config_tls_checks(1);
}

static void test_many_errors(void)
{
	struct config c;
	struct cfg_errors errs;
	const char *text = "bad1 x\ndatabytes 5\nbad2 y\ntimeoutsmtpd 0\nmaxrcptcount 7\n";
	T_EQ_INT(parse(&c, text, &errs), -1);
	T_EQ_INT(errs.n, 3);
	T_EQ_INT(errs.e[0].line, 1);
	T_EQ_INT(errs.e[1].line, 3);
	T_EQ_INT(errs.e[2].line, 4);
	T_EQ_INT(c.databytes, 5);          /* parsing went on */
	T_EQ_INT(c.maxrcptcount, 7);
	T_EQ_INT(c.timeoutsmtpd, 1200);    /* the bad value left the default */
	config_free(&c);

	/* more listen lines than fit */
	char big[2048] = "";
	for (int i = 0; i < CFG_MAXLISTEN + 1; i++) {
		char l[64];
		snprintf(l, sizeof l, "listen smtp 127.0.0.1:%d\n", 2000 + i);
		strcat(big, l);
	}
	T_EQ_INT(parse(&c, big, &errs), -1);
	T_EQ_INT(errs.n, 1);
	T_EQ_INT(errs.e[0].line, CFG_MAXLISTEN + 1);
	T_EQ_INT(c.nlisten, CFG_MAXLISTEN);
	config_free(&c);

	/* a very long line, and NULL errs */
	size_t n = 200000;
	char *huge = malloc(n + 1);
	memset(huge, 'a', n);
	memcpy(huge, "me ", 3);
	huge[n] = '\0';
	T_EQ_INT(config_parse(&c, "t.conf", huge, n, &errs), -1);
	T_CHECK(errs.n == 1 && strstr(errs.e[0].msg, "longer than"));
	config_free(&c);
	T_EQ_INT(config_parse(&c, "t.conf", "bad key\n", 8, NULL), -1);
	config_free(&c);
	free(huge);
}

/* lists: the address of an inline entry is lowercased, its directory keeps its case */
static void test_lists_key(void)
{
	struct config c;
	T_EQ_INT(parse(&c, "lists Dev@Example.ORG:/srv/Lists/Dev\n", NULL), 0);
	T_EQ_INT(c.lists.n, 1);
	if (c.lists.n)
		T_EQ_STR(c.lists.v[0], "dev@example.org:/srv/Lists/Dev");
	T_EQ_INT(c.listmodtimeout, 432000);
	config_free(&c);
}

static void test_tables(void)
{
	struct config c;
	struct cfg_errors errs;
	char text[1024];
	write_file("rcpthosts", "# accepted\nfiled.example\n.wild.example\n");
	write_file("relay", "10.0.0.0/8\n");
	write_file("inc.conf", "databytes 42\nlocals included.example\nbogus 1\n");
	snprintf(text, sizeof text,
	         "rcpthosts inline.example, file:%s/rcpthosts\n"
	         "relayclients file:%s/relay\n"
	         "include %s/inc.conf\n"
	         "databytes 43\n", dir, dir, dir);
	char path[256];
	snprintf(path, sizeof path, "%s/main.conf", dir);
	write_file("main.conf", text);
	T_EQ_INT(config_load(&c, path, &errs), -1);
	T_EQ_INT(errs.n, 2);
	char inc[256];
	snprintf(inc, sizeof inc, "%s/inc.conf", dir);
	T_EQ_STR(errs.e[0].file, inc);
	T_EQ_INT(errs.e[0].line, 3);
	T_EQ_STR(errs.e[1].file, path);
	T_EQ_INT(errs.e[1].line, 4);
	T_CHECK(strstr(errs.e[1].msg, "duplicate key 'databytes'") != NULL);
	T_EQ_INT(c.databytes, 42);
	T_CHECK(config_list_has(&c.rcpthosts, "inline.example"));
	T_CHECK(config_list_has(&c.rcpthosts, "FILED.example"));
	T_CHECK(config_list_has(&c.rcpthosts, "x.wild.example"));
	T_CHECK(!config_list_has(&c.rcpthosts, "other.example"));
	T_CHECK(config_list_has(&c.locals, "included.example"));
	T_EQ_INT(c.relayclients.ntables, 1);
	config_free(&c);

	/* relative include, resolved against the including file's directory */
	write_file("rel.conf", "include inc2.conf\n");
	write_file("inc2.conf", "maxsmtpd 7\n");
	snprintf(path, sizeof path, "%s/rel.conf", dir);
	T_EQ_INT(config_load(&c, path, &errs), 0);
	T_EQ_INT(c.maxsmtpd, 7);
	config_free(&c);

	/* include loop: stops at the depth limit with an error */
	write_file("loop.conf", "include loop.conf\n");
	snprintf(path, sizeof path, "%s/loop.conf", dir);
	T_EQ_INT(config_load(&c, path, &errs), -1);
	T_CHECK(errs.n >= 1 && strstr(errs.e[0].msg, "nested too deeply"));
	config_free(&c);

	T_EQ_INT(config_load(&c, "/nonexistent/tern.conf", &errs), -1);
	T_EQ_INT(errs.n, 1);
	T_EQ_INT(errs.e[0].line, 0);
	T_CHECK(strstr(errs.e[0].msg, "cannot read config file") != NULL);
	T_EQ_INT(c.databytes, 10485760);   /* defaults are still there */
	config_free(&c);
}

static void test_show(void)
{
	struct config c;
	struct cfg_errors errs;
	T_EQ_INT(config_load(&c, NULL, &errs), 0);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	config_show(&c, f);
	fclose(f);
	T_CHECK(strstr(out, "# tern configuration from (embedded development default)") == out);
	T_CHECK(strstr(out, "\ndatabytes          10485760   maximum message size accepted over "
	                    "SMTP (0 = unlimited); SIZE advertises it\n") != NULL);
	T_CHECK(strstr(out, "\nlisten             smtp 127.0.0.1:2525 ") != NULL);
	T_CHECK(strstr(out, "\nlocals             localhost  ") != NULL);
	T_CHECK(strstr(out, "\nrelayclients       (none)     ") != NULL);
	T_CHECK(strstr(out, "\nexpn               no         ") != NULL);
	free(out);
	config_free(&c);
}

static void cleanup(void)
{
	static const char *files[] = { "rcpthosts", "relay", "inc.conf", "main.conf", "rel.conf",
	                               "inc2.conf", "loop.conf" };
	char p[256];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void run(void)
{
	snprintf(dir, sizeof dir, "/tmp/tern-config-XXXXXX");
	T_CHECK(mkdtemp(dir) != NULL);
	config_tls_checks(1);                /* as ternd's parent parses */
	test_defaults();
	test_dev();
	test_doublebouncehost();
	test_good();
	test_ldap_keys();
	test_errors();
	test_listen_options();
	test_many_errors();
	test_tables();
	test_lists_key();
	test_show();
	cleanup();
}

T_MAIN(run)
