/* log — see log.h. Owns the role prefix and level; writes whole lines with one write(2)
 * so that lines from several processes sharing stderr never interleave. */
#include "lib/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

static char log_role[32] = "tern";
static int log_lvl = LOG_INFO;

void log_init(const char *role, int level)
{
	snprintf(log_role, sizeof log_role, "%s", role);
	log_lvl = level;
}

void log_set_level(int level) { log_lvl = level; }
int log_level(void) { return log_lvl; }

static void log_v(int level, const char *fmt, va_list ap)
{
	static const char *names[] = { "err", "warn", "info", "debug" };
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int saved = errno;
	if (level > log_lvl)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, log_role, (long)getpid(), names[level & 3]);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(2, line, len);
	(void)w;
	errno = saved;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v(level, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(111);
}

char *log_quote(char *out, size_t outsz, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (outsz == 0)
		return out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int esc = c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
		size_t need = esc ? 4 : 1;
		if (o + need + 4 > outsz) {
			if (o + 4 <= outsz) { memcpy(out + o, "...", 3); o += 3; }
			break;
		}
		if (esc) {
			out[o++] = '\\'; out[o++] = 'x';
			out[o++] = hex[c >> 4]; out[o++] = hex[c & 15];
		} else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}
