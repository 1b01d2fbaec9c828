/* test_retry — qmail's schedule, table-driven. */
#include "t.h"
#include "mail/retry.h"

static void run(void)
{
	static const struct { int64_t birth, last; uint64_t c; int64_t want; } cases[] = {
		{ 1000, 1000, 10, 1100 },        /* first local retry after 100 s */
		{ 1000, 1100, 10, 1400 },        /* sqrt(100)=10 -> (10+10)^2 = 400 */
		{ 1000, 1400, 10, 1900 },        /* sqrt(400)=20 -> 900 */
		{ 1000, 1000, 20, 1400 },        /* remote: 400 s */
		{ 1000, 1400, 20, 2600 },        /* sqrt(400)=20 -> (40)^2 = 1600 */
		{ 1000, 2600, 20, 4600 },        /* sqrt(1600)=40 -> 3600 */
		{ 1000, 1000, 1, 1001 },         /* test schedule: 1 s */
		{ 1000, 1001, 1, 1004 },
		{ 1000, 999, 10, 1100 },         /* clock went back */
		/* c = 0 is a minimum delay, not none: at least max(1, sqrt(age)) after the try */
		{ 0, 99, 0, 108 },               /* qmail: floor(sqrt(99))^2 = 81, in the past */
		{ 1000, 1000, 0, 1001 },         /* age 0: 1 s, never 0 */
		{ 1000, 1001, 0, 1002 },
		{ 1000, 1003, 0, 1004 },
		{ 1000, 1004, 0, 1006 },         /* sqrt(4) = 2 */
		{ 1000, 1100, 0, 1110 },         /* sqrt(100) = 10 */
		{ 0, 86400, 0, 86693 },          /* a day old: every 293 s */
		{ 1000, 500, 0, 1000 },          /* clock went back: 1 s after the try */
		{ 1000, 1000, 1, 1001 },         /* c = 1 is above the floor already */
		{ 0, 3600, 1, 3721 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		T_EQ_INT(retry_next(cases[i].birth, cases[i].last, cases[i].c), cases[i].want);
	T_EQ_INT(retry_expired(0, 604799, 604800), 0);
	T_EQ_INT(retry_expired(0, 604800, 604800), 1);
}
T_MAIN(run)
