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
		{ 0, 99, 0, 81 },                /* c = 0: floor(sqrt(99)) = 9 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		T_EQ_INT(retry_next(cases[i].birth, cases[i].last, cases[i].c), cases[i].want);
	T_EQ_INT(retry_expired(0, 604799, 604800), 0);
	T_EQ_INT(retry_expired(0, 604800, 604800), 1);
}
T_MAIN(run)
