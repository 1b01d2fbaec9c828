/* t.h — the unit-test harness: checks count, failures print file:line, main() reports.
 * Each tests/unit/test_*.c defines `static void run(void)` via T_MAIN(run). */
#ifndef TERN_T_H
#define TERN_T_H
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int t_checks, t_fails;
#define T_CHECK(cond) do { t_checks++; if (!(cond)) { t_fails++; \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define T_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); t_checks++; \
	if (_a != _b) { t_fails++; fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", \
	__FILE__, __LINE__, #a, _a, _b); } } while (0)
#define T_EQ_STR(a, b) do { const char *_a = (a), *_b = (b); t_checks++; \
	if (!_a || !_b || strcmp(_a, _b) != 0) { t_fails++; \
	fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
	_a ? _a : "(null)", _b ? _b : "(null)"); } } while (0)
#define T_MAIN(fn) int main(void) { fn(); \
	printf("%s: %d checks, %d failed\n", __FILE__, t_checks, t_fails); return t_fails != 0; }
#endif
