/* fuzz_mailq2 — MAILQ v2's parsers on arbitrary bytes. The first byte picks the target:
 *   0: a command line (mailq2_parse + the refusal line),
 *   1: an auth file (mailq2_auth_parse, then lookups for a few addresses),
 *   2: a snapshot payload (mailq2_snap_decode, then every reply body),
 *   3: a queue listing payload (mailq2_qlist_decode, then mailq and JSON),
 *   4: a stored password hash (digest_verify; crypt hashes are left out: a crafted
 *      "$6$rounds=…" setting is slow by design, not a bug).
 * Invariants: words point inside the line; a refusal is one line; an entry never has more
 * rights than ALL and its ACL bits fit the family; formatters terminate. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "mail/mailq2.h"
#include "mail/digest.h"

static void in_line(const struct mq2_word *w, const char *p, size_t n)
{
	if (w->n && (w->p < p || w->p + w->n > p + n))
		__builtin_trap();
}

static void fuzz_line(const char *p, size_t n)
{
	struct mq2_cmd c;
	struct buf b;
	mailq2_parse(p, n, &c);
	in_line(&c.vword, p, n);
	in_line(&c.rest, p, n);
	for (size_t i = 0; i < c.nargs; i++)
		in_line(&c.arg[i], p, n);
	if (c.nargs > 2 || (c.verb != MQ2_BAD && c.verb != MQ2_QUIT && c.vword.n == 0))
		__builtin_trap();
	buf_init(&b);
	mailq2_refusal(&b, &c);
	if (memchr(b.p, '\n', b.len) != b.p + b.len - 1)
		__builtin_trap();
	buf_free(&b);
}

static void fuzz_auth(const char *p, size_t n)
{
	struct cfg_errors errs = { .n = 0 };
	struct mq2_auth *a = mailq2_auth_parse("fuzz", p, n, &errs);
	static const char *ips[] = { "127.0.0.1", "10.1.2.3", "::1", "2001:db8::1" };
	for (size_t i = 0; i < a->n; i++) {
		if (a->e[i].rights & ~(unsigned)MQ2_ALL)
			__builtin_trap();
		for (size_t k = 0; k < a->e[i].nacl; k++)
			if (a->e[i].acl[k].bits > (a->e[i].acl[k].family == AF_INET ? 32u : 128u))
				__builtin_trap();
	}
	for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
		struct mq2_addr ad;
		mailq2_addr_parse(ips[i], &ad);
		mailq2_auth_any(a, &ad);
		const struct mq2_entry *e = mailq2_auth_find(a, "root", 4, &ad);
		if (e && strcmp(e->user, "root") != 0)
			__builtin_trap();
	}
	mailq2_auth_free(a);
}

static void fuzz_snap(const char *p, size_t n)
{
	struct msg_reader r;
	struct mq2_snap s;
	msg_reader_init(&r, p, n);
	if (mailq2_snap_decode(&r, &s) < 0)
		return;
	struct buf b;
	buf_init(&b);
	mailq2_fmt_snmp(&b, &s);
	mailq2_fmt_queue(&b, &s, 0);
	mailq2_fmt_queue(&b, &s, 1);
	mailq2_fmt_threads2(&b, &s);
	mailq2_fmt_thread(&b, &s);
	mailq2_fmt_stats(&b, &s);
	mailq2_fmt_metrics(&b, &s);
	struct buf ml;
	buf_init(&ml);
	mailq2_multiline(&ml, b.p ? b.p : "", b.len);
	buf_free(&ml);
	buf_free(&b);
	mailq2_snap_free(&s);
}

static void fuzz_qlist(const char *p, size_t n)
{
	struct msg_reader r;
	struct mq2_qlist l;
	msg_reader_init(&r, p, n);
	if (mailq2_qlist_decode(&r, &l) < 0)
		return;
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < l.n; i++) {
		mailq2_fmt_mailq(&b, &l.m[i]);
		mailq2_fmt_json(&b, &l.m[i]);
	}
	mailq2_fmt_mailq_end(&b, l.total);
	buf_free(&b);
	mailq2_qlist_free(&l);
}

static void fuzz_digest(char *p, size_t n)
{
	if (n < 1 || p[0] != '{' || n > 4096 || memchr(p, '\0', n))
		return;
	char *h = malloc(n + 1);
	memcpy(h, p, n);
	h[n] = '\0';
	if (strncasecmp(h, "{crypt}", 7) != 0 && digest_verify(h, "secret") > 0 &&
	    digest_verify(h, "other") > 0)
		__builtin_trap();
	free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *p = malloc(size);
	memcpy(p, data + 1, size - 1);
	switch (data[0] % 5) {
	case 0: fuzz_line(p, size - 1); break;
	case 1: fuzz_auth(p, size - 1); break;
	case 2: fuzz_snap(p, size - 1); break;
	case 3: fuzz_qlist(p, size - 1); break;
	default: fuzz_digest(p, size - 1); break;
	}
	free(p);
	return 0;
}
