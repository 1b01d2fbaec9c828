/* test_lookup_auth — the lookup role's login checks (src/ternd/lookup/lookup_auth.c), with
 * a clock of the test's own: every pwhash format against PLAIN/LOGIN/USER, CRAM-MD5 and APOP
 * only against a {PLAIN} secret (RFC 2195's and RFC 1939's examples), logins with a local
 * domain, extensions, authzid, malformed requests, a users table that cannot answer; the
 * throttle (delay doubling per address and per login up to authfaildelaymax, reset on
 * success, close after authfailclose failures from one address and refusal without a check
 * until authfailwindow has passed, the table bounded); the pop-before-smtp table (pbstimeout,
 * pop3 logins only); never a password in the log; the checks under the lookup role's
 * seccomp filter (a system call the role may not make would kill it); and the asynchronous
 * checks of directory users against a fake directory answered later (`directory`). */
#include "t.h"
#include <stdint.h>
static unsigned long long test_now = 1000000;
static uint64_t test_clock(void) { return test_now; }
#define LOOKUP_AUTH_CLOCK test_clock
#include "ternd/lookup/lookup_auth.c"
#pragma GCC diagnostic push                /* clang: sandbox.c's partial initialisers */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "ternd/sandbox.c"
#pragma GCC diagnostic pop
#include "ternd/role.c"
#include <fcntl.h>
#include <time.h>
#include <sys/wait.h>

#define RFC2195_CH "<1896.697170952@postoffice.reston.mci.net>"
#define RFC2195_DG "b913a602c7eda7a495b4e6e7334d3890"
#define RFC1939_CH "<1896.697170952@dbc.mtview.ca.us>"
#define RFC1939_DG "c4c9334bac560ecc979e58001b3e22fb"

static const char users_text[] =
	"joe:1001:100:/home/joe:{SSHA}uJDd0BIdJ9Z7yDCZNWdgYeb33+cBAgME\n"    /* secret */
	"bob:1002:100:/home/bob:{crypt}abNANd1rDfiNc\n"                      /* secret */
	"kim:1003:100:/home/kim:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n"         /* secret */
	"tim:1004:100:/home/tim:{PLAIN}tanstaaftanstaaf\n"
	"pat:1005:100:/home/pat:{CLEARTEXT}tanstaaf\n"
	"ann:1006:100:/home/ann\n"
	"odd:1007:100:/home/odd:{NOPE}x\n";

static struct config cfg;
static struct users *users;

static void reset(void)
{
	struct la_tab *t[] = { &la_ipfail, &la_loginfail, &la_pbs };
	for (size_t i = 0; i < 3; i++)
		while (t[i]->head)
			la_drop(t[i], t[i]->head);
}

static void load_cfg(const char *extra)
{
	char text[1024];
	struct cfg_errors errs;
	errs.n = 0;
	config_free(&cfg);
	snprintf(text, sizeof text, "me mail.example.com\nlocals example.com .sub.example.com\n"
	         "envnoathost example.com\n%s", extra);
	T_EQ_INT(config_parse(&cfg, "t.conf", text, strlen(text), &errs), 0);
}

static struct auth_res res;

static int ask(const char *service, const char *ip, const char *mech, const char *login,
               const char *authzid, const char *secret, const char *response)
{
	struct auth_req q = { service, ip, mech, login, authzid, secret, response };
	lookup_auth_check(&cfg, users, &q, &res);
	return res.verdict;
}

static void verify(void)
{
	static const struct { const char *svc, *mech, *login, *authzid, *secret, *resp;
	                      int verdict; const char *canon; } c[] = {
		{ "smtp", "PLAIN", "joe", "", "secret", "", AUTH_OK, "joe" },
		{ "smtp", "LOGIN", "JOE@Example.COM", "", "secret", "", AUTH_OK, "joe" },
		{ "smtp", "PLAIN", "joe@x.sub.example.com", "", "secret", "", AUTH_OK, "joe" },
		{ "pop3", "USER", "joe", "", "secret", "", AUTH_OK, "joe" },
		{ "smtp", "PLAIN", "joe", "joe", "secret", "", AUTH_OK, "joe" },
		{ "smtp", "PLAIN", "joe@example.com", "JOE", "secret", "", AUTH_OK, "joe" },
		{ "smtp", "PLAIN", "joe", "Joe@Example.com", "secret", "", AUTH_OK, "joe" },
		{ "smtp", "PLAIN", "joe", "joe@other.example", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "joe", "bob@example.com", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "bob", "", "secret", "", AUTH_OK, "bob" },
		{ "smtp", "PLAIN", "kim", "", "secret", "", AUTH_OK, "kim" },
		{ "smtp", "PLAIN", "tim", "", "tanstaaftanstaaf", "", AUTH_OK, "tim" },
		{ "smtp", "CRAM-MD5", "tim", "", RFC2195_CH, RFC2195_DG, AUTH_OK, "tim" },
		{ "smtp", "CRAM-MD5", "Tim", "", RFC2195_CH, "B913A602C7EDA7A495B4E6E7334D3890",
		  AUTH_OK, "tim" },
		{ "pop3", "APOP", "pat", "", RFC1939_CH, RFC1939_DG, AUTH_OK, "pat" },
		/* failures */
		{ "smtp", "PLAIN", "joe", "", "Secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "joe", "", "", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "joe", "admin", "secret", "", AUTH_FAIL, "" },   /* authzid */
		{ "smtp", "PLAIN", "joe@other.example", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "joe@", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "joe-ext", "", "secret", "", AUTH_FAIL, "" },   /* an extension */
		{ "smtp", "PLAIN", "nobody", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "ann", "", "", "", AUTH_FAIL, "" },             /* no pwhash */
		{ "smtp", "PLAIN", "ann", "", "x", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "odd", "", "x", "", AUTH_FAIL, "" },            /* bad scheme */
		{ "smtp", "PLAIN", "jo e", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "../joe", "", "secret", "", AUTH_FAIL, "" },
		{ "imap", "PLAIN", "joe", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "GSSAPI", "joe", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "plain", "joe", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "CRAM-MD5", "tim", "", RFC2195_CH, "b913a602c7eda7a495b4e6e7334d3891",
		  AUTH_FAIL, "" },
		{ "smtp", "CRAM-MD5", "tim", "", RFC2195_CH, "b913a602", AUTH_FAIL, "" },
		{ "smtp", "CRAM-MD5", "tim", "", "", RFC2195_DG, AUTH_FAIL, "" },
		{ "smtp", "CRAM-MD5", "tim", "", RFC2195_CH, "", AUTH_FAIL, "" },
		{ "smtp", "APOP", "tim", "", RFC1939_CH, RFC1939_DG, AUTH_FAIL, "" },  /* tim's pw */
		/* CRAM-MD5 and APOP need the cleartext: a hash does not do, whatever is sent */
		{ "smtp", "CRAM-MD5", "joe", "", RFC2195_CH, RFC2195_DG, AUTH_FAIL, "" },
		{ "pop3", "APOP", "joe", "", "secret", "", AUTH_FAIL, "" },
		{ "smtp", "PLAIN", "tim", "", "{PLAIN}tanstaaftanstaaf", "", AUTH_FAIL, "" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		reset();
		int v = ask(c[i].svc, "192.0.2.1", c[i].mech, c[i].login, c[i].authzid, c[i].secret,
		            c[i].resp);
		if (v != c[i].verdict)
			fprintf(stderr, "verify case %zu: %s %s verdict %d\n", i, c[i].mech, c[i].login, v);
		T_EQ_INT(v, c[i].verdict);
		T_EQ_STR(res.login, c[i].canon);
		T_EQ_INT(res.close, 0);
		T_EQ_INT(res.delay_ms, v == AUTH_OK ? 0 : 1000);
		if (v == AUTH_OK) {
			T_EQ_STR(res.user.user, c[i].canon);
			T_CHECK(res.user.uid >= 1001 && res.user.uid <= 1005);
			T_EQ_STR(res.user.pwhash, "");            /* the hash does not leave */
		}
	}
	/* a client address that is no address */
	reset();
	char longip[200];
	memset(longip, '1', sizeof longip - 1);
	longip[sizeof longip - 1] = '\0';
	T_EQ_INT(ask("smtp", longip, "PLAIN", "joe", "", "secret", ""), AUTH_FAIL);
	T_EQ_INT(res.close, 1);
	T_EQ_INT(ask("smtp", "", "PLAIN", "joe", "", "secret", ""), AUTH_FAIL);
	/* a users table that cannot answer: a temporary failure, not counted */
	struct cfg_errors errs;
	errs.n = 0;
	struct users *bad = users_open("file:/nonexistent/tern-users", &errs);
	T_CHECK(bad != NULL);
	struct auth_req q = { "smtp", "192.0.2.2", "PLAIN", "joe", "", "secret", "" };
	lookup_auth_check(&cfg, bad, &q, &res);
	T_EQ_INT(res.verdict, AUTH_TEMP);
	T_EQ_INT(res.delay_ms, 0);
	T_EQ_INT(la_count(&la_ipfail, "192.0.2.2"), 0);
	users_free(bad);
}

static void throttle(void)
{
	load_cfg("authfailclose 3\nauthfailwindow 100\nauthfaildelaymax 4\n");
	reset();
	/* one address: 1 s, 2 s, 4 s and close; then refused unchecked until the window passes */
	T_EQ_INT(ask("smtp", "192.0.2.10", "PLAIN", "joe", "", "x1", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 1000);
	T_EQ_INT(res.close, 0);
	test_now += 10;
	T_EQ_INT(ask("smtp", "192.0.2.10", "PLAIN", "bob", "", "x2", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 2000);
	T_EQ_INT(res.close, 0);
	test_now += 10;
	T_EQ_INT(ask("smtp", "192.0.2.10", "PLAIN", "kim", "", "x3", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 4000);
	T_EQ_INT(res.close, 1);
	T_EQ_INT(ask("smtp", "192.0.2.10", "PLAIN", "joe", "", "secret", ""), AUTH_FAIL);
	T_EQ_INT(res.close, 1);                         /* the right password does not help */
	T_EQ_INT(res.delay_ms, 4000);
	T_EQ_INT(la_count(&la_ipfail, "192.0.2.10"), 3);    /* refused attempts do not count */
	T_EQ_INT(ask("smtp", "192.0.2.11", "PLAIN", "joe", "", "secret", ""), AUTH_OK);
	T_EQ_INT(res.delay_ms, 1000);                   /* joe failed once (from .10) */
	test_now += 100;                                /* 100 s after .10's last failure */
	T_EQ_INT(ask("smtp", "192.0.2.10", "PLAIN", "joe", "", "secret", ""), AUTH_OK);
	T_EQ_INT(res.delay_ms, 0);
	T_EQ_INT(res.close, 0);
	T_EQ_INT(la_ipfail.n, 0);

	/* one login from many addresses: the delay doubles, nobody is closed; capped at 4 s */
	reset();
	const char *ips[] = { "192.0.2.21", "192.0.2.22", "2001:db8::23", "192.0.2.24" };
	uint64_t want[] = { 1000, 2000, 4000, 4000 };
	for (int i = 0; i < 4; i++) {
		T_EQ_INT(ask("smtp", ips[i], "LOGIN", i % 2 ? "JOE@example.com" : "joe", "", "bad",
		             ""), AUTH_FAIL);
		T_EQ_INT(res.delay_ms, want[i]);
		T_EQ_INT(res.close, 0);
	}
	/* a success answers after the delay the failures before it earned, then forgets them */
	T_EQ_INT(ask("smtp", "192.0.2.25", "PLAIN", "joe", "", "secret", ""), AUTH_OK);
	T_EQ_INT(res.delay_ms, 4000);
	T_EQ_INT(ask("smtp", "192.0.2.25", "PLAIN", "joe", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 1000);
	/* unknown logins are counted too (and bounded) */
	T_EQ_INT(ask("smtp", "192.0.2.26", "PLAIN", "nobody", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(ask("smtp", "192.0.2.27", "PLAIN", "nobody", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 2000);

	/* authfailclose 0: never closed; authfaildelaymax 0: never delayed */
	load_cfg("authfailclose 0\nauthfaildelaymax 0\n");
	reset();
	for (int i = 0; i < 50; i++) {
		T_EQ_INT(ask("smtp", "192.0.2.30", "PLAIN", "joe", "", "bad", ""), AUTH_FAIL);
		T_EQ_INT(res.close, 0);
		T_EQ_INT(res.delay_ms, 0);
	}
	T_EQ_INT(ask("smtp", "192.0.2.30", "PLAIN", "joe", "", "secret", ""), AUTH_OK);

	/* the defaults: 5 failures close, 16 s at most */
	load_cfg("");
	reset();
	uint64_t dflt[] = { 1000, 2000, 4000, 8000, 16000 };
	for (int i = 0; i < 5; i++) {
		T_EQ_INT(ask("pop3", "192.0.2.31", "USER", "joe", "", "bad", ""), AUTH_FAIL);
		T_EQ_INT(res.delay_ms, dflt[i]);
		T_EQ_INT(res.close, i == 4);
	}

	/* bounded: many addresses and logins never hold more than LA_MAX entries each */
	reset();
	char ip[64], login[64];
	for (int i = 0; i < LA_MAX + 100; i++) {
		snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(login, sizeof login, "u%d", i);
		ask("smtp", ip, "PLAIN", login, "", "bad", "");
	}
	T_EQ_INT(la_ipfail.n, LA_MAX);
	T_EQ_INT(la_loginfail.n, LA_MAX);
	T_EQ_INT(la_count(&la_ipfail, "10.0.0.0"), 0);       /* the oldest went */
	T_EQ_INT(la_count(&la_ipfail, ip), 1);
	test_now += cfg.authfailwindow;                      /* all expire */
	ask("smtp", "192.0.2.40", "PLAIN", "joe", "", "secret", "");
	T_EQ_INT(la_ipfail.n, 0);
	T_EQ_INT(la_loginfail.n, 0);
}

static void pbs(void)
{
	load_cfg("pbstimeout 600\n");
	reset();
	T_EQ_INT(lookup_pbs_ok("192.0.2.50"), 0);
	/* an smtp login does not make a pop-before-smtp client, a pop3 login does */
	T_EQ_INT(ask("smtp", "192.0.2.50", "PLAIN", "joe", "", "secret", ""), AUTH_OK);
	T_EQ_INT(lookup_pbs_ok("192.0.2.50"), 0);
	T_EQ_INT(ask("pop3", "192.0.2.50", "USER", "joe", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(lookup_pbs_ok("192.0.2.50"), 0);
	T_EQ_INT(ask("pop3", "192.0.2.50", "USER", "joe", "", "secret", ""), AUTH_OK);
	T_EQ_INT(lookup_pbs_ok("192.0.2.50"), 1);
	T_EQ_INT(lookup_pbs_ok("192.0.2.51"), 0);
	test_now += 599;
	T_EQ_INT(lookup_pbs_ok("192.0.2.50"), 1);
	test_now += 1;
	T_EQ_INT(lookup_pbs_ok("192.0.2.50"), 0);
	T_EQ_INT(la_pbs.n, 0);
	/* a new login renews it */
	lookup_pbs_add(&cfg, "2001:db8::50");
	test_now += 300;
	lookup_pbs_add(&cfg, "2001:db8::50");
	test_now += 500;
	T_EQ_INT(lookup_pbs_ok("2001:db8::50"), 1);
	T_EQ_INT(lookup_pbs_ok(""), 0);
	/* pbstimeout 0: off */
	load_cfg("pbstimeout 0\n");
	reset();
	T_EQ_INT(ask("pop3", "192.0.2.52", "APOP", "pat", "", RFC1939_CH, RFC1939_DG), AUTH_OK);
	T_EQ_INT(lookup_pbs_ok("192.0.2.52"), 0);
	/* bounded */
	load_cfg("");
	char ip[64];
	for (int i = 0; i < LA_MAX + 10; i++) {
		snprintf(ip, sizeof ip, "10.9.%d.%d", i >> 8, i & 255);
		lookup_pbs_add(&cfg, ip);
	}
	T_EQ_INT(la_pbs.n, LA_MAX);
	T_EQ_INT(lookup_pbs_ok(ip), 1);
	T_EQ_INT(lookup_pbs_ok("10.9.0.0"), 0);
}

/* the log names the failure and never carries the password */
static void logged(void)
{
	char path[] = "/tmp/tern-authlog-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	T_CHECK(fd >= 0);
	log_set_level(LOG_INFO);
	dup2(fd, 2);
	reset();
	ask("smtp", "192.0.2.60", "PLAIN", "joe", "", "Sup3rS3cret", "");
	ask("smtp", "192.0.2.60", "LOGIN", "jo\"e x", "", "Sup3rS3cret", "");
	ask("smtp", "192.0.2.60", "PLAIN", "joe", "", "secret", "");
	ask("smtp", "192.0.2.60", "CRAM-MD5", "joe", "", RFC2195_CH, RFC2195_DG);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log_set_level(LOG_ERR);
	char buf[8192];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	T_CHECK(strstr(buf, "event=auth_fail service=smtp ip=192.0.2.60 login=\"joe\" mech=PLAIN "
	                    "reason=bad_password") != NULL);
	T_CHECK(strstr(buf, "login=\"jo\\\"e x\" mech=LOGIN reason=bad_request") != NULL);
	T_CHECK(strstr(buf, "event=auth_ok service=smtp ip=192.0.2.60 login=joe mech=PLAIN") != NULL);
	T_CHECK(strstr(buf, "reason=no_cleartext") != NULL);
	T_CHECK(strstr(buf, "Sup3rS3cret") == NULL);
	T_CHECK(strstr(buf, "secret") == NULL);
	if (!strstr(buf, "reason=bad_password"))
		fprintf(stderr, "log was: %s\n", buf);
}

/* every hash format, CRAM-MD5 and APOP under the lookup role's seccomp filter (not under
 * the sanitizers: their runtime makes calls of its own, sigaltstack, that no role may make) */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TEST_SANITIZED)
#define TEST_SANITIZED 1
#endif
static void sandboxed(void)
{
#ifdef TEST_SANITIZED
	return;
#endif
	load_cfg("");
	pid_t pid = fork();
	if (pid == 0) {
		if (sandbox_apply(R_LOOKUP, "yes") < 0)
			_exit(2);
		reset();
		int bad = 0;
		bad |= ask("smtp", "192.0.2.70", "PLAIN", "joe", "", "secret", "") != AUTH_OK;
		bad |= ask("smtp", "192.0.2.70", "PLAIN", "bob", "", "secret", "") != AUTH_OK;
		bad |= ask("smtp", "192.0.2.70", "PLAIN", "kim", "", "secret", "") != AUTH_OK;
		bad |= ask("smtp", "192.0.2.70", "CRAM-MD5", "tim", "", RFC2195_CH, RFC2195_DG)
		       != AUTH_OK;
		bad |= ask("pop3", "192.0.2.70", "APOP", "pat", "", RFC1939_CH, RFC1939_DG) != AUTH_OK;
		bad |= ask("smtp", "192.0.2.70", "PLAIN", "joe", "", "bad", "") != AUTH_FAIL;
		bad |= !lookup_pbs_ok("192.0.2.70");
		struct buf b;
		buf_init(&b);
		for (int f = DG_SSHA; f <= DG_PLAIN; f++)
			bad |= digest_make(f, "pw", NULL, 0, &b) < 0;
		_exit(bad ? 1 : 0);
	}
	int st = -1;
	T_EQ_INT(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st))
		fprintf(stderr, "sandboxed child: signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static double ask_ms(const char *login, const char *pw)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	ask("smtp", "192.0.2.60", "PLAIN", login, "", pw, "");
	clock_gettime(CLOCK_MONOTONIC, &b);
	reset();
	return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

static double median3(double x, double y, double z)
{
	return x > y ? (y > z ? y : (x > z ? z : x)) : (x > z ? x : (y > z ? z : y));
}

/* An unknown login, or one without a pwhash, costs what a wrong password of a known one
 * costs: the dummy check follows the scheme (and crypt's cost) of the hashes the table
 * holds, so that the answer's timing does not tell which logins exist. */
static void timing(void)
{
	struct buf h, text;
	buf_init(&h);
	buf_init(&text);
	static const char set[] = "$6$rounds=40000$saltsalt$";
	T_EQ_INT(digest_make(DG_CRYPT, "secret", (const unsigned char *)set, strlen(set), &h), 0);
	buf_printf(&text, "sue:1010:100:/home/sue:%.*s\nnop:1011:100:/home/nop\n", (int)h.len,
	         h.p);
	struct cfg_errors errs;
	errs.n = 0;
	struct users *saved = users;
	users = users_from_text("users", text.p, text.len, &errs);
	T_EQ_INT(errs.n, 0);
	load_cfg("");
	reset();
	T_EQ_INT(ask("smtp", "192.0.2.60", "PLAIN", "sue", "", "secret", ""), AUTH_OK);
	reset();
	double known = median3(ask_ms("sue", "bad"), ask_ms("sue", "bad"), ask_ms("sue", "bad"));
	double unknown = median3(ask_ms("nobody", "bad"), ask_ms("nobody", "bad"),
	                         ask_ms("nobody", "bad"));
	double nopw = median3(ask_ms("nop", "bad"), ask_ms("nop", "bad"), ask_ms("nop", "bad"));
	if (unknown * 3 < known || nopw * 3 < known)
		fprintf(stderr, "timing: known %.3f ms unknown %.3f ms no pwhash %.3f ms\n", known,
		        unknown, nopw);
	T_CHECK(unknown * 3 >= known);
	T_CHECK(nopw * 3 >= known);
	T_CHECK(strncmp(la_dummy, "{crypt}$6$rounds=40000$", 23) == 0);
	users_free(users);
	users = saved;
	buf_free(&h);
	buf_free(&text);
}

/* the throttle's address: an IPv6 client by its /64 (one host has them all), an IPv4-mapped
 * address as its IPv4 address */
static void ipkey(void)
{
	load_cfg("authfailclose 3\n");
	reset();
	T_EQ_INT(ask("smtp", "2001:db8:1:2::1", "PLAIN", "u1", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(ask("smtp", "2001:db8:1:2:ffff::2", "PLAIN", "u2", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 2000);
	T_EQ_INT(ask("smtp", "2001:db8:1:3::1", "PLAIN", "u3", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 1000);                   /* another /64 */
	T_EQ_INT(ask("smtp", "2001:db8:1:2::abcd", "PLAIN", "u4", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(res.close, 1);                         /* the third from 2001:db8:1:2::/64 */
	T_EQ_INT(ask("smtp", "192.0.2.70", "PLAIN", "u5", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(ask("smtp", "::ffff:192.0.2.70", "PLAIN", "u6", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 2000);
	T_EQ_INT(ask("smtp", "192.0.2.71", "PLAIN", "u7", "", "bad", ""), AUTH_FAIL);
	T_EQ_INT(res.delay_ms, 1000);
	load_cfg("");
	reset();
}

/* ---- asynchronous checks (users ldap:): a fake directory keeps the question, the test
 * answers it later */
static struct auth_pending *dir_p;
static char dir_login[256];
static int dir_challenge, dir_asked, dir_done;
static struct auth_res dir_res;
static char dir_donelogin[256];

static void dir_ask(struct auth_pending *p, const struct auth_req *q, int challenge)
{
	dir_p = p;
	dir_asked++;
	dir_challenge = challenge;
	snprintf(dir_login, sizeof dir_login, "%s", q->login);
}

static void dir_answered(void *arg, const struct auth_req *q, const struct auth_res *r)
{
	T_CHECK(arg == &dir_done);
	dir_done++;
	dir_res = *r;
	snprintf(dir_donelogin, sizeof dir_donelogin, "%s", q->login);
}

static void dir_start(const char *mech, const char *login, const char *authzid,
                      const char *secret, const char *response)
{
	char sec[64];                /* the channel's buffer: wiped by the caller afterwards */
	snprintf(sec, sizeof sec, "%s", secret);
	struct auth_req q = { "smtp", "192.0.2.70", mech, login, authzid, sec, response };
	dir_p = NULL;
	dir_asked = dir_done = 0;
	lookup_auth_start(&cfg, users, &q, dir_answered, &dir_done);
	memset(sec, 'X', strlen(sec));
}

/* the entry of uid "dj" (mail dj@example.org) with pwhash and accountStatus account */
static void dir_reply(int status, const char *pwhash, int account, int bound)
{
	static struct users_result ur;
	memset(&ur, 0, sizeof ur);
	ur.status = status;
	snprintf(ur.user, sizeof ur.user, "dj");
	ur.uid = ur.gid = 2001;
	snprintf(ur.home, sizeof ur.home, "/var/mail/dj/");
	struct auth_entry e = { .status = status, .diag = "fake directory down",
	                        .pwhash = pwhash, .bound = bound, .account = account,
	                        .name = "dj", .user = &ur, .maildir = "/var/mail/dj/Maildir/" };
	T_CHECK(dir_p != NULL);
	lookup_auth_answer(dir_p, &e);
	dir_p = NULL;
}

#define JOE_SSHA "{SSHA}uJDd0BIdJ9Z7yDCZNWdgYeb33+cBAgME"     /* secret */

static void directory(void)
{
	load_cfg("authfaildelaymax 4\n");
	reset();
	lookup_auth_set_directory(dir_ask);
	/* parked until the directory answers; the request was copied (the secret too) */
	dir_start("PLAIN", "dj@example.org", "", "secret", "");
	T_EQ_INT(dir_asked, 1);
	T_EQ_INT(dir_done, 0);
	T_EQ_STR(dir_login, "dj@example.org");       /* as sent: the directory's rule */
	T_EQ_INT(dir_challenge, 0);
	dir_reply(TABLE_FOUND, JOE_SSHA, USERS_ACTIVE, AUTH_BIND_NONE);
	T_EQ_INT(dir_done, 1);
	T_EQ_INT(dir_res.verdict, AUTH_OK);
	T_EQ_STR(dir_res.login, "dj");
	T_EQ_INT(dir_res.directory, 1);
	T_EQ_STR(dir_res.maildir, "/var/mail/dj/Maildir/");
	T_EQ_STR(dir_donelogin, "dj@example.org");
	/* a wrong password, counted; the dummy is not needed: the entry was found */
	dir_start("LOGIN", "dj", "", "wrong", "");
	dir_reply(TABLE_FOUND, JOE_SSHA, USERS_ACTIVE, AUTH_BIND_NONE);
	T_EQ_INT(dir_res.verdict, AUTH_FAIL);
	T_EQ_INT(dir_res.delay_ms, 1000);
	T_EQ_INT(la_count(&la_loginfail, "dj"), 1);
	/* accountStatus: refused with the right password, without it as any wrong one */
	for (int acct = USERS_NOACCESS; acct <= USERS_DELETED; acct++) {
		reset();
		dir_start("PLAIN", "dj", "", "secret", "");
		dir_reply(TABLE_FOUND, JOE_SSHA, acct, AUTH_BIND_NONE);
		T_EQ_INT(dir_res.verdict, AUTH_FAIL);
		T_EQ_STR(dir_res.login, "");
	}
	/* the directory down: AUTH_TEMP, not counted */
	reset();
	dir_start("PLAIN", "dj", "", "secret", "");
	dir_reply(TABLE_TEMP, "", USERS_ACTIVE, AUTH_BIND_NONE);
	T_EQ_INT(dir_res.verdict, AUTH_TEMP);
	T_EQ_INT(dir_res.delay_ms, 0);
	T_EQ_INT(la_count(&la_ipfail, "192.0.2.70"), 0);
	T_EQ_INT(la_count(&la_loginfail, "dj"), 0);
	/* unknown; no userPassword disclosed */
	dir_start("PLAIN", "nobody", "", "secret", "");
	dir_reply(TABLE_NOTFOUND, "", USERS_ACTIVE, AUTH_BIND_NONE);
	T_EQ_INT(dir_res.verdict, AUTH_FAIL);
	dir_start("PLAIN", "dj", "", "secret", "");
	dir_reply(TABLE_FOUND, "", USERS_ACTIVE, AUTH_BIND_NONE);
	T_EQ_INT(dir_res.verdict, AUTH_FAIL);
	/* ldaprebind: the bind decides, whatever pwhash says */
	reset();
	dir_start("PLAIN", "dj", "", "secret", "");
	dir_reply(TABLE_FOUND, "", USERS_ACTIVE, AUTH_BIND_OK);
	T_EQ_INT(dir_res.verdict, AUTH_OK);
	dir_start("PLAIN", "dj", "", "secret", "");
	dir_reply(TABLE_FOUND, JOE_SSHA, USERS_ACTIVE, AUTH_BIND_BAD);
	T_EQ_INT(dir_res.verdict, AUTH_FAIL);
	reset();
	dir_start("PLAIN", "dj", "", "secret", "");
	dir_reply(TABLE_FOUND, "", USERS_DISABLED, AUTH_BIND_OK);
	T_EQ_INT(dir_res.verdict, AUTH_FAIL);
	/* CRAM-MD5 is asked as a challenge (the directory must give the cleartext) */
	reset();
	dir_start("CRAM-MD5", "dj", "", RFC2195_CH, RFC2195_DG);
	T_EQ_INT(dir_challenge, 1);
	dir_reply(TABLE_FOUND, "{CLEARTEXT}tanstaaftanstaaf", USERS_ACTIVE, AUTH_BIND_NONE);
	T_EQ_INT(dir_res.verdict, AUTH_OK);
	/* authzid: the login, or the entry's uid; nobody else */
	dir_start("PLAIN", "dj@example.org", "DJ", "secret", "");
	dir_reply(TABLE_FOUND, JOE_SSHA, USERS_ACTIVE, AUTH_BIND_NONE);
	T_EQ_INT(dir_res.verdict, AUTH_OK);
	dir_start("PLAIN", "dj@example.org", "joe", "secret", "");
	dir_reply(TABLE_FOUND, JOE_SSHA, USERS_ACTIVE, AUTH_BIND_NONE);
	T_EQ_INT(dir_res.verdict, AUTH_FAIL);
	/* never asked: a catch-all value, a malformed login; answered at once */
	reset();
	const char *bad[] = { "@example.org", "", "a b", "x\x7f" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		dir_start("PLAIN", bad[i], "", "secret", "");
		T_EQ_INT(dir_asked, 0);
		T_EQ_INT(dir_done, 1);
		T_EQ_INT(dir_res.verdict, AUTH_FAIL);
	}
	/* too many failures from the address: refused unchecked, the directory not asked */
	load_cfg("authfailclose 2\nauthfaildelaymax 0\n");
	reset();
	for (int i = 0; i < 2; i++) {
		dir_start("PLAIN", "dj", "", "wrong", "");
		dir_reply(TABLE_FOUND, JOE_SSHA, USERS_ACTIVE, AUTH_BIND_NONE);
	}
	dir_start("PLAIN", "dj", "", "secret", "");
	T_EQ_INT(dir_asked, 0);
	T_EQ_INT(dir_res.close, 1);
	/* no directory: the table, answered at once */
	lookup_auth_set_directory(NULL);
	load_cfg("");
	reset();
	dir_start("PLAIN", "joe", "", "secret", "");
	T_EQ_INT(dir_asked, 0);
	T_EQ_INT(dir_done, 1);
	T_EQ_INT(dir_res.verdict, AUTH_OK);
	T_EQ_INT(dir_res.directory, 0);
}

/* parallel checks: each parks until the directory answers; those in flight count with the
 * failures, so that 100 parallel AUTHs are not 100 guesses (authfailclose) */
static struct auth_pending *par_p[16];
static int par_n, par_done;
static struct auth_res par_res;

static void par_ask(struct auth_pending *p, const struct auth_req *q, int challenge)
{
	par_p[par_n++] = p;
}

static void par_answered(void *arg, const struct auth_req *q, const struct auth_res *r)
{
	par_done++;
	par_res = *r;
}

static void par_start(const char *ip, const char *login)
{
	struct auth_req q = { "smtp", ip, "PLAIN", login, "", "wrong", "" };
	lookup_auth_start(&cfg, users, &q, par_answered, NULL);
}

static void par_reply(void)
{
	static struct users_result ur;
	memset(&ur, 0, sizeof ur);
	ur.status = TABLE_FOUND;
	snprintf(ur.user, sizeof ur.user, "dj");
	struct auth_entry e = { .status = TABLE_FOUND, .diag = "", .pwhash = JOE_SSHA,
	                        .bound = AUTH_BIND_NONE, .account = USERS_ACTIVE, .name = "dj",
	                        .user = &ur, .maildir = "" };
	T_CHECK(par_n > 0);
	lookup_auth_answer(par_p[--par_n], &e);
}

static void parallel(void)
{
	load_cfg("authfailclose 5\nauthfaildelaymax 0\n");
	reset();
	lookup_auth_set_directory(par_ask);
	par_n = par_done = 0;
	char login[16];
	for (int i = 0; i < 6; i++) {            /* one address, six logins at once */
		snprintf(login, sizeof login, "u%d", i);
		par_start("192.0.2.80", login);
	}
	T_EQ_INT(par_n, 5);                      /* the 6th never reached the directory */
	T_EQ_INT(par_done, 1);
	T_EQ_INT(par_res.verdict, AUTH_FAIL);
	T_EQ_INT(par_res.close, 1);
	while (par_n)                            /* five wrong passwords: five failures */
		par_reply();
	T_EQ_INT(par_done, 6);
	par_start("192.0.2.80", "u9");
	T_EQ_INT(par_n, 0);
	/* released on the answer: 2 failures + 3 in flight, the 4th refused */
	reset();
	par_done = 0;
	for (int i = 0; i < 2; i++) {
		par_start("192.0.2.81", "v");
		par_reply();
	}
	for (int i = 0; i < 4; i++)
		par_start("192.0.2.81", "v");
	T_EQ_INT(par_n, 3);
	T_EQ_INT(par_done, 3);
	while (par_n)
		par_reply();
	/* one login from many addresses at once: at most authfailclose in flight, not closed */
	reset();
	par_done = 0;
	char ip[32];
	for (int i = 0; i < 6; i++) {
		snprintf(ip, sizeof ip, "192.0.2.%d", 100 + i);
		par_start(ip, "dj");
	}
	T_EQ_INT(par_n, 5);
	T_EQ_INT(par_done, 1);
	T_EQ_INT(par_res.close, 0);
	while (par_n)
		par_reply();
	par_start("192.0.2.120", "dj");          /* answered: a new check is asked again */
	T_EQ_INT(par_n, 1);
	par_reply();
	lookup_auth_set_directory(NULL);
	load_cfg("");
	reset();
}

static void run(void)
{
	struct cfg_errors errs;
	errs.n = 0;
	log_init("test_lookup_auth", getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	users = users_from_text("users", users_text, strlen(users_text), &errs);
	T_EQ_INT(errs.n, 0);
	load_cfg("");
	verify();
	throttle();
	ipkey();
	timing();
	pbs();
	logged();
	sandboxed();
	directory();
	parallel();
	users_free(users);
	config_free(&cfg);
}
T_MAIN(run)
