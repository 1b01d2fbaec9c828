/* log — one line per event, key=value, to stderr (or syslog later).
 * Owns: the process-wide log prefix (role name) and level, and the escaping of every logged
 * value. Trusts: the format strings (written by us); nothing in the values: each value a
 * conversion produces is escaped here (\n \r \t \\ \xHH, and \" between the format's
 * double quotes), so callers pass raw text and one event is always one line. */
#ifndef TERN_LOG_H
#define TERN_LOG_H
#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_init(const char *role, int level);
void log_set_level(int level);
int  log_level(void);
/* log_msg(LOG_INFO, "event=accepted id=%s from=%s", ...) -> "role: event=accepted ..." */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
/* fatal: log and exit(111) */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Copy at most len bytes of s (up to a NUL) into out (size outsz), always NUL-terminated,
 * truncated with "..." if too long: a bounded value for a log line (log_msg escapes it).
 * Returns out. */
char *log_quote(char *out, size_t outsz, const char *s, size_t len);
/* The event text log_msg writes after its prefix: fmt with every converted value escaped.
 * Writes at most outsz - 1 bytes and a NUL (what does not fit is dropped, never half an
 * escape); returns the length written. */
size_t log_format(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
size_t log_vformat(char *out, size_t outsz, const char *fmt, va_list ap);

/* Rate limit for an error that may repeat (a full disk): log_limit() is 1 when the event
 * may be logged now — at most once per interval_s seconds — and sets *repeated to the number
 * of occurrences suppressed since the last line, which the line reports (`repeated=N`). */
struct log_limit { long long last; unsigned long long suppressed; };
int log_limit(struct log_limit *l, int interval_s, unsigned long long *repeated);
#endif
