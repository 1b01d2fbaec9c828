/* fuzz_qmqp — the QMQP request parser and reply reader on arbitrary bytes. The first byte
 * chooses the piece size; the input is fed whole and in those pieces, and both runs must
 * give the same events, message octets and addresses. Invariants: every event consumes
 * within the input, message pieces lie inside it, the message never exceeds the limit,
 * every address handed out parses again, and a reply the reader accepts is what
 * qmqp_reply() would write for its code and text. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mail/qmqp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run { uint64_t text; uint32_t hash; int last; uint32_t naddr; };

static void fuzz_feed(const char *in, size_t n, size_t step, struct run *r)
{
	struct qmqp_req q;
	size_t off = 0;
	qmqp_req_init(&q, 300, 4);
	memset(r, 0, sizeof *r);
	r->hash = 2166136261u;
	while (off < n) {
		size_t lim = step && n - off > step ? step : n - off, used;
		const char *p;
		size_t pl;
		int ev = qmqp_req_feed(&q, in + off, lim, &used, &p, &pl);
		if (used > lim)
			abort();
		if (ev == QMQP_TEXT) {
			if (p < in + off || p + pl > in + off + used || pl == 0)
				abort();
			r->text += pl;
			for (size_t i = 0; i < pl; i++)
				r->hash = (r->hash ^ (unsigned char)p[i]) * 16777619u;
		} else if (ev == QMQP_SENDER || ev == QMQP_RCPT) {
			struct addr a;
			if (strlen(q.mailbox) >= sizeof q.mailbox ||
			    (*q.mailbox && addr_parse(q.mailbox, ev == QMQP_RCPT ? ADDR_RCPT : ADDR_SENDER,
			                              &a) < 0))
				abort();
			r->naddr++;
			for (const char *c = q.mailbox; *c; c++)
				r->hash = (r->hash ^ (unsigned char)*c) * 16777619u;
		}
		off += used;
		if (ev == QMQP_END || ev == QMQP_ERR) {
			r->last = ev;
			if (ev == QMQP_END && (q.nrcpt == 0 || q.nrcpt > 4))
				abort();
			break;
		}
		if (used == 0 && ev == QMQP_MORE)
			abort();
	}
	if (r->text > 300)
		abort();
}

static void fuzz_reply(const char *in, size_t n)
{
	char code, text[QMQP_REPLY_MAX + 1];
	size_t used = 0;
	if (qmqp_reply_parse(in, n, &code, text, sizeof text, &used) != 1)
		return;
	struct buf b;
	buf_init(&b);
	qmqp_reply(&b, code, text);
	/* the text read never holds control octets, so writing it back is lossless */
	char code2, text2[QMQP_REPLY_MAX + 1];
	size_t used2;
	if (used > n || qmqp_reply_parse(b.p, b.len, &code2, text2, sizeof text2, &used2) != 1 ||
	    code2 != code || strcmp(text, text2) != 0 || used2 != b.len)
		abort();
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	size_t step = data[0] % 17;
	const char *in = (const char *)data + 1;
	struct run a, b;
	fuzz_feed(in, size - 1, 0, &a);
	fuzz_feed(in, size - 1, step, &b);
	if (a.text != b.text || a.hash != b.hash || a.last != b.last || a.naddr != b.naddr)
		abort();
	fuzz_reply(in, size - 1);
	return 0;
}
