/* log — one line per event, key=value, to stderr (or syslog later).
 * Owns: the process-wide log prefix (role name) and level. Trusts: nothing; callers pass
 * already-sanitised values (log_quote() makes any byte string safe for a log line). */
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
/* Copy s (len bytes) into out (size outsz) with non-printables, '"', '\\' escaped as \xHH,
 * always NUL-terminated; truncated with "..." if too long. Returns out. */
char *log_quote(char *out, size_t outsz, const char *s, size_t len);
#endif
