/* fuzz_dotqmail — feeds arbitrary bytes to src/mail/dotqmail and src/mail/mbox: the input is
 * walked as a whole .qmail file (every line classified, invariants checked), used as an
 * address extension for the candidate names, scanned as a message header, and >From-quoted
 * in two chunkings that must agree, and turned into qmail's sender forms and back. Trusts nothing but the code under test. */
#include "mail/dotqmail.h"
#include "mail/mbox.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* qmail's sender forms: quoting the plain form and unquoting it again gives it back */
static void sender_forms(const char *p, size_t n)
{
	char *s = strndup(p, n > 300 ? 300 : n);
	struct buf plain, quoted, again;
	buf_init(&plain);
	buf_init(&quoted);
	buf_init(&again);
	dotqmail_sender_plain(&plain, s);
	const char *pl = plain.p ? plain.p : "";
	dotqmail_sender_quoted(&quoted, pl);
	dotqmail_sender_plain(&again, quoted.p ? quoted.p : "");
	if (plain.len > strlen(s) || quoted.len > 2 * plain.len + 3 ||
	    (strchr(pl, '@') && strcmp(pl, again.p ? again.p : "") != 0))
		abort();
	buf_free(&plain);
	buf_free(&quoted);
	buf_free(&again);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const char *p, size_t n)
{
	struct dq_iter it;
	struct dq_line ln;
	unsigned lines = 0;
	dotqmail_iter_init(&it, p, n);
	while (dotqmail_next(&it, &ln)) {
		if (ln.lineno != ++lines || ln.arg < p || ln.arg + ln.len > p + n)
			abort();
		if (ln.kind == DQ_PROGRAM && ln.len == 0)
			abort();
		if ((ln.kind == DQ_FORWARD || ln.kind == DQ_MAILDIR || ln.kind == DQ_MBOX ||
		     ln.kind == DQ_PROGRAM) && memchr(ln.arg, '\0', ln.len))
			abort();
		if (ln.kind == DQ_FORWARD && (memchr(ln.arg, ' ', ln.len) || ln.arg[0] == '|'))
			abort();
		if (ln.kind == DQ_MAILDIR && ln.arg[ln.len - 1] != '/')
			abort();
	}
}

static void candidates(const char *p, size_t n)
{
	char *ext = strndup(p, n > 200 ? 200 : n);
	struct buf name;
	long dflt;
	buf_init(&name);
	for (unsigned i = 0; dotqmail_candidate("-", ext, i, &name, &dflt) == 0; i++) {
		if (i > 201 || strchr(name.p, '/') || (dflt >= 0 && (size_t)dflt > strlen(ext)))
			abort();
	}
	dotqmail_owner_name(&name, "-", ext);
	for (int k = 1; k <= 4; k++) {
		if (dotqmail_host_part(ext, k) > strlen(ext))
			abort();
		(void)dotqmail_ext_part(ext, k);
	}
	buf_free(&name);
	free(ext);
}

static void quote_twice(const char *p, size_t n)
{
	struct mbox_quote q1, q2;
	struct buf a, b;
	buf_init(&a);
	buf_init(&b);
	mbox_quote_init(&q1);
	mbox_quote_init(&q2);
	mbox_quote_feed(&q1, p, n, &a);
	for (size_t i = 0; i < n; i += 3)
		mbox_quote_feed(&q2, p + i, n - i < 3 ? n - i : 3, &b);
	int e1 = mbox_quote_finish(&q1, &a), e2 = mbox_quote_finish(&q2, &b);
	if (e1 != e2 || a.len != b.len || (a.len && memcmp(a.p, b.p, a.len)) || a.len < n)
		abort();
	buf_free(&a);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct dq_hscan h;
	walk(p, size);
	candidates(p, size);
	dotqmail_hscan_init(&h, "Delivered-To: joe@example.org");
	if (dotqmail_hscan_feed(&h, p, size) == DQ_HS_MORE)
		dotqmail_hscan_eof(&h);
	quote_twice(p, size);
	sender_forms(p, size);
	return 0;
}
