/* fuzz_smtp_client — two targets chosen by the first byte:
 *  even: the body transformer on random bytes, fed whole and in random pieces; the output
 *        must equal a plain reference (NULs dropped, line ends CRLF, bare CR/LF -> CRLF,
 *        leading dots doubled, lines folded at 998 octets, then ".\r\n"), contain no bare
 *        CR or LF, no NUL, no line over 998 octets, and no "\r\n.\r\n" before its end;
 *  odd:  random server bytes into the engine, in random pieces, with transactions started
 *        whenever it is idle; every finished transaction has a final status and a diagnostic
 *        for each recipient, and every byte the engine writes is CRLF-terminated text. The
 *        seed also picks a TLS level and AUTH credentials; when the engine asks for the
 *        handshake it "succeeds" at once, and the password never appears in clear.
 *        With bit 1 of the first byte the engine speaks LMTP (RFC 2033): it never says
 *        EHLO or HELO, and a recipient delivered or failed after the dot has its own reply. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the reference: NULs removed first; then CRLF line ends, leading dots doubled, and a line
 * reaching 998 octets on the wire continued on a new line starting with a blank */
static size_t ref_body(const char *raw, size_t rawn, char *out)
{
	size_t o = 0, n = 0, col = 0;
	char *in = malloc(rawn + 1);
	for (size_t i = 0; i < rawn; i++)
		if (raw[i] != '\0')
			in[n++] = raw[i];
	int bol = 1;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\r' || in[i] == '\n') {
			if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
				i++;
			out[o++] = '\r';
			out[o++] = '\n';
			bol = 1;
			col = 0;
			continue;
		}
		size_t need = bol && in[i] == '.' ? 2 : 1;
		if (col + need > SMTPC_TEXT_LINE_MAX) {
			memcpy(out + o, "\r\n ", 3);
			o += 3;
			col = 1;
			bol = 0;
		}
		if (bol && in[i] == '.') {
			out[o++] = '.';
			col++;
		}
		out[o++] = in[i];
		col++;
		bol = 0;
	}
	if (!bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	free(in);
	return o + 3;
}

static void check_crlf(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			__builtin_trap();
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			__builtin_trap();
	}
	if (n && (n < 2 || p[n - 1] != '\n'))
		__builtin_trap();
	if (n && memchr(p, '\0', n))                 /* no NUL is ever sent */
		__builtin_trap();
	for (size_t i = 0, col = 1; i < n; i++) {      /* no line over 998 octets + CRLF */
		col = p[i] == '\r' ? 0 : col + 1;
		if (col > SMTPC_TEXT_LINE_MAX + 1)
			__builtin_trap();
	}
}

static void fuzz_body(const char *in, size_t n, unsigned seed)
{
	struct buf a, b;
	struct smtpc_body ba, bb;
	char *ref = malloc(3 * n + 8);
	size_t rn = ref_body(in, n, ref);
	buf_init(&a);
	buf_init(&b);
	smtpc_body_init(&ba);
	smtpc_body_feed(&ba, in, n, &a);
	smtpc_body_end(&ba, &a);
	smtpc_body_init(&bb);
	for (size_t off = 0; off < n;) {
		size_t len = 1 + (seed = seed * 1103515245u + 12345u) % 13;
		if (len > n - off)
			len = n - off;
		smtpc_body_feed(&bb, in + off, len, &b);
		off += len;
	}
	smtpc_body_end(&bb, &b);
	if (a.len != rn || b.len != rn || memcmp(a.p, ref, rn) || memcmp(b.p, ref, rn))
		__builtin_trap();
	check_crlf(a.p, a.len);
	if ((a.len > 3 && memcmp(a.p, ".\r\n", 3) == 0) || ba.out != a.len || ba.in != n)
		__builtin_trap();
	for (size_t i = 0; i + 5 <= a.len; i++)
		if (memcmp(a.p + i, "\r\n.\r\n", 5) == 0 && i + 5 != a.len)
			__builtin_trap();
	buf_free(&a);
	buf_free(&b);
	free(ref);
}

static void check_txn(struct smtpc_txn *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->rcpt[i].status < SMTPC_OK || t->rcpt[i].status > SMTPC_PERM ||
		    !t->rcpt[i].diag || strlen(t->rcpt[i].diag) > SMTPC_DIAG_MAX + 64)
			__builtin_trap();
	if (!t->done)
		__builtin_trap();
}

/* LMTP: no EHLO or HELO ever goes out */
static void check_lmtp_out(const struct smtpc *c, const struct buf *out)
{
	if (!smtpc_lmtp(c) || !out->len)
		return;
	for (size_t i = 0; i + 5 <= out->len; i++)
		if ((i == 0 || out->p[i - 1] == '\n') && (memcmp(out->p + i, "EHLO ", 5) == 0 ||
		                                           memcmp(out->p + i, "HELO ", 5) == 0))
			__builtin_trap();
}

static void engine_turn(struct smtpc *c, struct smtpc_txn *t, int *started, int *fed)
{
	struct smtpc_txn *f = smtpc_finished(c);
	if (f) {
		check_txn(f);
		*started = 0;
	}
	if (smtpc_want(c) == SMTPC_W_BODY && !*fed) {
		smtpc_body_feed(smtpc_body(c), "a\n.b\r\n", 6, smtpc_out(c));
		smtpc_text_done(c);
		*fed = 1;
	}
	if (smtpc_want(c) == SMTPC_W_TXN && !*started) {
		if (smtpc_begin(c, t) != 0)
			__builtin_trap();
		*started = 1;
		*fed = 0;
	}
	if (smtpc_want(c) == SMTPC_W_TLS)
		smtpc_tls_done(c);
	struct buf *out = smtpc_out(c);
	check_crlf(out->p, out->len);
	check_lmtp_out(c, out);
	if (out->len && memmem(out->p, out->len, "Zpw9", 4))
		__builtin_trap();
	buf_reset(out);
}

static void fuzz_engine(const char *in, size_t n, unsigned seed, int lmtp)
{
	struct smtpc_rcpt r[3] = { { "a@b", 0, 0, NULL, 0 }, { "c@d", 0, 0, NULL, 0 },
	                           { "e@f", 0, 0, NULL, 0 } };
	struct smtpc_txn t = { "s@x", 10, seed & 1, r, 1 + seed % 3, 0, 0, 0 };
	struct smtpc *c = smtpc_new("fuzz.test");
	int started = 1, fed = 0;
	smtpc_set_tls(c, (enum smtpc_tls)((seed >> 2) % 4));
	smtpc_set_lmtp(c, lmtp);
	if (seed & 2)
		smtpc_set_auth(c, "joe", "Zpw9", (seed >> 4) & 1);
	if (smtpc_begin(c, &t) != 0)
		__builtin_trap();
	for (size_t off = 0; off < n && smtpc_want(c) != SMTPC_W_CLOSE;) {
		size_t len = 1 + (seed = seed * 1103515245u + 12345u) % 97;
		if (len > n - off)
			len = n - off;
		smtpc_feed(c, in + off, len);
		off += len;
		engine_turn(c, &t, &started, &fed);
	}
	smtpc_lost(c, "end of input");
	engine_turn(c, &t, &started, &fed);
	if (started)                       /* a transaction still running was finished by lost */
		__builtin_trap();
	smtpc_txn_reset(&t);
	smtpc_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned seed = data[1];
	if (data[0] & 1)
		fuzz_engine((const char *)data + 2, size - 2, seed, (data[0] & 2) != 0);
	else
		fuzz_body((const char *)data + 2, size - 2, seed);
	return 0;
}
