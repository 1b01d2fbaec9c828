/* dsn_driver — test driver for tests/e2e/test_dsn_python.py: builds one report with
 * src/mail/dsn.c from the original on stdin and writes it to stdout.
 * usage: dsn_driver SENDER MAXBYTES ADDR:ACTION:STATUS:REMOTE:DIAG ...
 * (ACTION f or d; fields may be empty). Trusts: its caller, the test. */
#include "mail/dsn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *next_field(char **s)
{
	char *f = *s, *c = strchr(f, ':');
	if (c) {
		*c = '\0';
		*s = c + 1;
	} else
		*s = f + strlen(f);
	return f;
}

int main(int argc, char **argv)
{
	struct dsn_rcpt rc[16];
	size_t n = 0;
	if (argc < 4)
		return 2;
	for (int i = 3; i < argc && n < 16; i++, n++) {
		char *s = argv[i];
		memset(&rc[n], 0, sizeof rc[n]);
		rc[n].addr = next_field(&s);
		rc[n].action = *next_field(&s) == 'd' ? DSN_DELAYED : DSN_FAILED;
		rc[n].status = next_field(&s);
		rc[n].remote_mta = next_field(&s);
		rc[n].diag = s;                      /* the rest, colons and all */
		rc[n].last_attempt = 1700000100;
		rc[n].will_retry_until = rc[n].action == DSN_DELAYED ? 1700604800 : 0;
	}
	struct dsn_report r = { argv[1], "q1.test", 1700000000, rc, n, "mx.test.example",
		"MAILER-DAEMON", "bounces.test.example", strtoull(argv[2], NULL, 10), 1700000500,
		0xfeedfacecafef00dULL };
	struct buf out;
	const char *why = "";
	buf_init(&out);
	if (dsn_build_fd(&r, 0, &out, &why) < 0) {
		fprintf(stderr, "dsn_driver: %s\n", why);
		return 1;
	}
	fwrite(out.p, 1, out.len, stdout);
	buf_free(&out);
	return 0;
}
