/* fuzz_qp_cmd — the Bongo queue protocol's parser and codecs on arbitrary bytes.
 * Invariants: qp_cmd_parse gives a known verb id and one of its codes, arguments that are
 * non-empty, blank-free at their start and inside the line; an entry name round-trips; the
 * dot decoder gives the same output whatever the split of its input, never more than it was
 * fed, and stops only at a "." line; CRLF -> LF never grows the data; the header/body split
 * accounts for every octet; an agent's edits plan a return alone, deletes of live recipients
 * only, adds of new ones only. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/qp_cmd.h"

static void fuzz_parse(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct qp_cmd c;
	memcpy(line, data, size);
	int r = qp_cmd_parse(line, size, &c);
	if (c.verb <= QP_NONE || c.verb >= QP_VERB_COUNT || c.argc < 0 || c.argc > QP_MAXARGS)
		__builtin_trap();
	if (r == 0 ? c.code != 0 : (c.code != 3000 && c.code != 3010 && c.code != 4000))
		__builtin_trap();
	if (c.code == 3000 && c.verb != QP_UNKNOWN)
		__builtin_trap();
	for (int i = 0; i < c.argc; i++) {
		const char *a = c.argv[i];
		if (a < line || a >= line + size || !*a || *a == ' ' || *a == '\t' ||
		    strlen(a) > size)
			__builtin_trap();
	}
	if (r == 0 && c.ent.id) {
		char name[24];
		struct qp_entry e;
		qp_entry_format(name, c.ent.stage, c.ent.id);
		if (qp_entry_parse(name, &e) < 0 || e.id != c.ent.id || e.stage != c.ent.stage % 1000)
			__builtin_trap();
	}
	char out[300];
	if (qp_addr(line, size & 1, out, sizeof out) == 0 && strlen(out) >= sizeof out)
		__builtin_trap();
	free(line);
}

static void fuzz_dot(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char *a = malloc(size + 2), *b = malloc(size + 2);
	struct qp_dot d1 = { 0 }, d2 = { 0 };
	size_t na, nb1, nb2, cut = size ? data[0] % (size + 1) : 0;
	size_t u1 = qp_dot_feed(&d1, in, size, a, &na);
	size_t u2 = qp_dot_feed(&d2, in, cut, b, &nb1);
	nb2 = 0;
	if (!d2.done)
		u2 += qp_dot_feed(&d2, in + cut, size - cut, b + nb1, &nb2);
	if (u1 != u2 || d1.done != d2.done || na != nb1 + nb2 || memcmp(a, b, na) != 0 ||
	    na > u1 || u1 > size)
		__builtin_trap();
	if (d1.done && (u1 < 2 || in[u1 - 1] != '\n'))
		__builtin_trap();
	struct qp_crlf cr = { 0 };
	size_t n = qp_crlf_feed(&cr, in, size, a);
	n += qp_crlf_end(&cr, a + n);
	if (n > size)
		__builtin_trap();
	free(a);
	free(b);
}

static void fuzz_split(const uint8_t *data, size_t size)
{
	struct qp_split s;
	size_t lf = 0;
	for (size_t i = 0; i < size; i++)
		lf += data[i] == '\n';
	qp_split_init(&s);
	qp_split_feed(&s, (const char *)data, size);
	uint64_t sep = s.found ? 2 : 0;        /* the empty line: LF -> CRLF */
	if (qp_split_hwire(&s) + qp_split_bwire(&s, size) + sep != size + lf)
		__builtin_trap();
	char kind, a[64], b[64];
	char *z = malloc(size + 1);
	memcpy(z, data, size);
	z[size] = '\0';
	if (qp_ctrl_split(z, &kind, a, sizeof a, b, sizeof b) == 0 && (strlen(a) >= 64 || strlen(b) >= 64))
		__builtin_trap();
	if (size > 4 && qp_find(z, size, z + size / 2, size - size / 2) < 0)
		__builtin_trap();
	free(z);
}

/* the input's lines as an agent's QMOD lines (and, for odd lines, QRTS recipients) against
 * an entry for joe and ann: a return is the only op; deletes name live recipients; adds do not */
static void fuzz_plan(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *save = NULL, *work[64], *rts[64];
	size_t nw = 0, nr = 0;
	struct envelope e;
	struct qp_plan p;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *l = strtok_r(text, "\n", &save); l && nw < 64; l = strtok_r(NULL, "\n", &save)) {
		work[nw++] = l;
		if (nw & 1)
			rts[nr++] = l + 1;
	}
	env_init(&e);
	e.sender = xstrdup("s@x");
	env_add_rcpt(&e, "joe@localhost");
	env_add_rcpt(&e, "ann@localhost");
	qp_plan_make(&p, work, nw, size && (data[0] & 1), rts, nr, &e);
	for (size_t i = 0; i < p.n; i++) {
		const char *a = p.v[i].arg;
		int live = strcmp(a, "joe@localhost") == 0 || strcmp(a, "ann@localhost") == 0;
		if ((p.returned && (p.n != 1 || p.v[i].op != QPE_RETURN)) ||
		    (p.v[i].op == QPE_DEL && !live) || (p.v[i].op == QPE_ADD && live))
			__builtin_trap();
	}
	qp_plan_free(&p);
	env_free(&e);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > QP_LINE_MAX)
		return 0;
	fuzz_parse(data, size);
	fuzz_dot(data, size);
	fuzz_split(data, size);
	fuzz_plan(data, size);
	return 0;
}
