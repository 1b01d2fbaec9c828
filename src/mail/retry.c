/* retry — see retry.h. Integer arithmetic only (no libm), saturating. */
#include "mail/retry.h"

static int64_t isqrt(int64_t v)
{
	if (v <= 0)
		return 0;
	int64_t r = 0, bit = (int64_t)1 << 62;
	while (bit > v)
		bit >>= 2;
	while (bit) {
		if (v >= r + bit) {
			v -= r + bit;
			r = (r >> 1) + bit;
		} else
			r >>= 1;
		bit >>= 2;
	}
	return r;
}

int64_t retry_next(int64_t birth, int64_t lasttry, uint64_t c)
{
	int64_t age = lasttry - birth;
	if (age < 0)
		age = 0;
	if (c > 1000000)
		c = 1000000;
	int64_t root = isqrt(age), s = root + (int64_t)c;
	int64_t next = birth + s * s, floor = lasttry + (root > 1 ? root : 1);
	return next > floor ? next : floor;
}

int retry_expired(int64_t birth, int64_t now, uint64_t lifetime)
{
	return now - birth >= (int64_t)lifetime;
}
