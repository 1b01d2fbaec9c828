/* fuzz_mlist — the list parsers of src/mail/mlist.c on arbitrary bytes: the address file
 * and config file readers, the loop check, the cookie check and the M_LIST_RESULT payload
 * reader.
 * Invariants: every address an address file yields passes mlist_addr_ok and their number is
 * bounded; flags stay within MLIST_F_ALL; a payload mlist_get accepts, written again with
 * mlist_put, reads back equal; a refused one leaves the list empty. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "mail/mlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addrs(const struct mlist_addrs *a, size_t max)
{
	if (a->n > max)
		__builtin_trap();
	for (size_t i = 0; i < a->n; i++)
		if (!mlist_addr_ok(a->v[i], strlen(a->v[i])))
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mlist l, l2;
	char err[200];
	uint64_t v, v2;
	mlist_init(&l);
	(void)mlist_parse_addrs(&l.members, (const char *)data, size, 50, err, sizeof err);
	check_addrs(&l.members, 50);
	(void)mlist_parse_config(&l, (const char *)data, size, err, sizeof err);
	if (l.flags & ~MLIST_F_ALL)
		__builtin_trap();
	check_addrs(&l.owners, MLIST_MAXOWNERS);
	(void)mlist_loop_check((const char *)data, size, "dev@example.org", "dev.example.org");
	mlist_free(&l);

	/* a cookie of arbitrary text: accepted only if it is the one mlist_cookie makes */
	static const unsigned char key[MLIST_KEYLEN] = { 1 };
	char ck[MLIST_COOKIEHEX + 8], want[MLIST_COOKIEHEX + 1];
	size_t cn = size < sizeof ck - 1 ? size : sizeof ck - 1;
	memcpy(ck, data, cn);
	ck[cn] = '\0';
	uint64_t cid;
	if (mlist_cookie_check(key, sizeof key, "dev@example.org", "moderate", ck, &cid) &&
	    (mlist_cookie(key, sizeof key, "dev@example.org", cid, "moderate", want) < 0 ||
	     strcmp(want, ck) != 0))
		__builtin_trap();

	struct msg_reader r;
	msg_reader_init(&r, data, size);
	mlist_init(&l);
	if (mlist_get(&r, &v, err, sizeof err, &l) == 0) {
		check_addrs(&l.members, MLIST_MAXMEMBERS);
		struct msg out;
		msg_init(&out, 0, 0);
		mlist_put(&out, v, err, &l);
		struct msg_reader r2;
		msg_reader_init(&r2, out.b.p + MSG_HDRLEN, out.b.len - MSG_HDRLEN);
		mlist_init(&l2);
		char err2[200];
		if (mlist_get(&r2, &v2, err2, sizeof err2, &l2) < 0 || v2 != v || l2.flags != l.flags ||
		    l2.members.n != l.members.n || strcmp(l2.listid, l.listid))
			__builtin_trap();
		mlist_free(&l2);
		msg_discard(&out);
	} else if (l.members.n || l.owners.n || l.flags)
		__builtin_trap();
	mlist_free(&l);
	return 0;
}
