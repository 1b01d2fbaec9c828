/* retry — when to try a deferred recipient again: qmail-send's schedule, a pure function.
 * next = birth + (floor(sqrt(lasttry - birth)) + c)^2, c = retrylocal / retryremote,
 * but never sooner than lasttry + max(1, floor(sqrt(age))): with c = 0 qmail's formula gives
 * next <= lasttry (a retry at once, forever); 0 is the shortest schedule, not none.
 * Owns: the schedule and the expiry rule. Trusts: its arguments. */
#ifndef TERN_RETRY_H
#define TERN_RETRY_H
#include <stdint.h>

int64_t retry_next(int64_t birth, int64_t lasttry, uint64_t c);
/* 1 if a recipient deferred at `now` has outlived queuelifetime and must bounce */
int retry_expired(int64_t birth, int64_t now, uint64_t lifetime);
#endif
