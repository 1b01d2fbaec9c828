/* fuzz_dreq — the delivery request and result readers of src/ternd/dreq.c on arbitrary
 * payloads. Invariants: a request read is whole (n recipients, each of the request's channel
 * and host) or refused leaving nothing allocated; what was read, written again, reads back
 * equal; a result that dres_check accepts reads to its end without error. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "ternd/dreq.c"
#include "ternd/proto.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_reader r;
	struct dreq d;
	msg_reader_init(&r, data, size);
	if (dreq_get(&r, &d) == 0) {
		if (d.n == 0 || d.n > DREQ_MAXRCPT)
			__builtin_trap();
		for (size_t k = 0; k < d.n; k++)
			if (strcmp(d.r[k].t.channel, d.channel) || strcmp(d.r[k].t.host, d.host))
				__builtin_trap();
		struct msg out;
		msg_init(&out, M_DELIVER, 0);
		dreq_put(&out, &d);
		struct msg_reader r2;
		msg_reader_init(&r2, out.b.p + MSG_HDRLEN, out.b.len - MSG_HDRLEN);
		struct dreq e;
		if (dreq_get(&r2, &e) < 0 || e.n != d.n || strcmp(e.sender, d.sender) ||
		    e.r[d.n - 1].idx != d.r[d.n - 1].idx)
			__builtin_trap();
		dreq_free(&e);
		msg_discard(&out);
	} else if (d.r || d.channel || d.n)
		__builtin_trap();
	dreq_free(&d);

	msg_reader_init(&r, data, size);
	if (dres_check(&r) == 0) {
		uint64_t job, id, n;
		dres_get_head(&r, &job, &id, &n);
		for (uint64_t k = 0; k < n; k++) {
			struct dres x;
			dres_get(&r, &x);
			if (x.st < D_OK || x.st > D_PERM)
				__builtin_trap();
		}
		if (msg_done(&r) < 0)
			__builtin_trap();
	}
	return 0;
}
