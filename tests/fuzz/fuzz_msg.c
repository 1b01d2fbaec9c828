/* fuzz_msg — the IPC codec on arbitrary bytes: frame splitting, then reading the payload as
 * a random sequence of field types driven by the input itself. Nothing may read out of
 * bounds; a reader that reports success must have consumed exactly the payload. */
#include <stdint.h>
#include <stddef.h>
#include "lib/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t type, id;
	int hasfd;
	size_t off = 0;
	while (off < size) {
		long fl = msg_frame(data + off, size - off, &type, &id, &hasfd);
		if (fl <= 0)
			break;
		struct msg_reader r;
		msg_reader_init(&r, data + off + MSG_HDRLEN, (size_t)fl - MSG_HDRLEN);
		for (unsigned i = 0; !r.err && r.off < r.len && i < 1000; i++) {
			size_t n;
			switch ((type + i) % 3) {
			case 0: (void)msg_get_u64(&r); break;
			case 1: (void)msg_get_str(&r); break;
			default: (void)msg_get_bytes(&r, &n); break;
			}
		}
		if (msg_done(&r) == 0 && r.off != r.len)
			__builtin_trap();
		off += (size_t)fl;
	}
	return 0;
}
