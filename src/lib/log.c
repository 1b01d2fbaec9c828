/* log — see log.h. Owns the role prefix and level; writes whole lines with one write(2)
 * so that lines from several processes sharing stderr never interleave.
 *
 * One event is one line, whatever the values hold: the format string is ours and is copied
 * as is, but every value a conversion produces (names from the maildrop, addresses, replies
 * of remote hosts, diagnostics) may come from outside and is escaped here, in one place:
 * \n \r \t \\ and \xHH for any other byte below 0x20 or above 0x7e, and \" when the value
 * stands between double quotes of the format (`reason="%s"`). The conversions are those of
 * printf (flags, width, precision, `*`, the length modifiers hh h l ll z j t L); each value
 * is produced by snprintf with its own specification, then escaped. */
#include "lib/log.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#define LOG_LINE 2048
#define LOG_VALUE 2048

static char log_role[32] = "tern";
static int log_lvl = LOG_INFO;

void log_init(const char *role, int level)
{
	snprintf(log_role, sizeof log_role, "%s", role);
	log_lvl = level;
}

void log_set_level(int level) { log_lvl = level; }
int log_level(void) { return log_lvl; }

/* ---- the output buffer ---------------------------------------------------------------- */

struct log_out {
	char *p;
	size_t len, cap;             /* cap excludes the terminating NUL */
	int full;                    /* something did not fit: the rest is dropped */
};

static void log_put(struct log_out *o, const char *s, size_t n)
{
	if (o->full)
		return;
	if (n > o->cap - o->len) {
		n = o->cap - o->len;
		o->full = 1;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* one byte of a value, escaped; an escape that does not fit whole is dropped whole */
static void log_put_esc(struct log_out *o, unsigned char c, int quoted)
{
	static const char hex[] = "0123456789abcdef";
	char e[4];
	size_t n = 2;
	e[0] = '\\';
	if (c == '\n')
		e[1] = 'n';
	else if (c == '\r')
		e[1] = 'r';
	else if (c == '\t')
		e[1] = 't';
	else if (c == '\\' || (c == '"' && quoted))
		e[1] = (char)c;
	else if (c < 0x20 || c >= 0x7f) {
		e[1] = 'x';
		e[2] = hex[c >> 4];
		e[3] = hex[c & 15];
		n = 4;
	} else {
		log_put(o, (const char *)&c, 1);
		return;
	}
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	log_put(o, e, n);
}

static void log_put_value(struct log_out *o, const char *v, size_t n, int quoted)
{
	for (size_t i = 0; i < n && !o->full; i++)
		log_put_esc(o, (unsigned char)v[i], quoted);
}

/* ---- one conversion -------------------------------------------------------------------- */

struct log_spec {
	char fmt[24];                /* "%" flags width precision length conversion */
	int nstar, star[2];          /* values of '*' width / precision */
	char len[3];                 /* length modifier */
	char conv;
};

/* parse the specification after '%'; returns the character after it, or NULL if it is not
 * one we know (the rest of the format is then copied as text) */
static const char *log_parse_spec(const char *f, struct log_spec *sp, va_list *ap)
{
	size_t n = 0;
	memset(sp, 0, sizeof *sp);
	sp->fmt[n++] = '%';
	while (*f && strchr("-+ #0", *f) && n < 8)
		sp->fmt[n++] = *f++;
	for (int part = 0; part < 2; part++) {
		if (part == 1) {
			if (*f != '.')
				break;
			sp->fmt[n++] = *f++;
		}
		if (*f == '*') {
			sp->star[sp->nstar++] = va_arg(*ap, int);
			sp->fmt[n++] = *f++;
		} else
			for (int k = 0; *f >= '0' && *f <= '9' && k < 4; k++)
				sp->fmt[n++] = *f++;
	}
	for (int k = 0; *f && strchr("hlzjtL", *f) && k < 2; k++)
		sp->len[k] = sp->fmt[n++] = *f++;
	if (!*f || !strchr("diouxXcspfFeEgGaA", *f))
		return NULL;
	sp->conv = sp->fmt[n++] = *f++;
	sp->fmt[n] = '\0';
	return f;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-security"
#define LOG_SNPRINTF(T) do { T v_ = va_arg(*ap, T); \
	n = sp->nstar == 2 ? snprintf(val, vsz, sp->fmt, sp->star[0], sp->star[1], v_) \
	  : sp->nstar == 1 ? snprintf(val, vsz, sp->fmt, sp->star[0], v_) \
	  : snprintf(val, vsz, sp->fmt, v_); } while (0)

/* the value of one conversion, as printf would write it; returns its length (clamped) */
static size_t log_convert(const struct log_spec *sp, char *val, size_t vsz, va_list *ap)
{
	int n = 0;
	int l = sp->len[0] == 'l' ? (sp->len[1] == 'l' ? 2 : 1) : 0;
	char c = sp->conv;
	if (c == 'd' || c == 'i') {
		if (sp->len[0] == 'z') LOG_SNPRINTF(ssize_t);
		else if (sp->len[0] == 'j') LOG_SNPRINTF(intmax_t);
		else if (sp->len[0] == 't') LOG_SNPRINTF(ptrdiff_t);
		else if (l == 2) LOG_SNPRINTF(long long);
		else if (l == 1) LOG_SNPRINTF(long);
		else LOG_SNPRINTF(int);
	} else if (strchr("ouxX", c)) {
		if (sp->len[0] == 'z') LOG_SNPRINTF(size_t);
		else if (sp->len[0] == 'j') LOG_SNPRINTF(uintmax_t);
		else if (sp->len[0] == 't') LOG_SNPRINTF(ptrdiff_t);
		else if (l == 2) LOG_SNPRINTF(unsigned long long);
		else if (l == 1) LOG_SNPRINTF(unsigned long);
		else LOG_SNPRINTF(unsigned);
	} else if (c == 'c')
		LOG_SNPRINTF(int);
	else if (c == 's')
		LOG_SNPRINTF(const char *);
	else if (c == 'p')
		LOG_SNPRINTF(void *);
	else if (sp->len[0] == 'L')
		LOG_SNPRINTF(long double);
	else
		LOG_SNPRINTF(double);
	if (n < 0)
		return 0;
	return (size_t)n < vsz ? (size_t)n : vsz - 1;
}
#undef LOG_SNPRINTF
#pragma GCC diagnostic pop

/* ---- the event text ---------------------------------------------------------------------- */

static void log_body(struct log_out *o, const char *fmt, va_list *ap)
{
	int quoted = 0;
	char val[LOG_VALUE];
	for (const char *f = fmt; *f && !o->full;) {
		const char *pct = strchr(f, '%');
		size_t lit = pct ? (size_t)(pct - f) : strlen(f);
		for (size_t i = 0; i < lit; i++)
			quoted ^= f[i] == '"';
		log_put(o, f, lit);
		if (!pct)
			break;
		f = pct + 1;
		if (*f == '%') {
			log_put(o, "%", 1);
			f++;
			continue;
		}
		struct log_spec sp;
		const char *next = log_parse_spec(f, &sp, ap);
		if (!next) {                  /* not a conversion we know: keep the text */
			log_put(o, "%", 1);
			continue;
		}
		size_t n = log_convert(&sp, val, sizeof val, ap);
		/* a precision bounds a %s value, which may hold a NUL before it: snprintf stopped
		 * there too, so val is what printf would have shown */
		log_put_value(o, val, n, quoted);
		f = next;
	}
}

size_t log_vformat(char *out, size_t outsz, const char *fmt, va_list ap)
{
	va_list aq;
	if (outsz == 0)
		return 0;
	struct log_out o = { out, 0, outsz - 1, 0 };
	va_copy(aq, ap);
	log_body(&o, fmt, &aq);
	va_end(aq);
	out[o.len] = '\0';
	return o.len;
}

size_t log_format(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = log_vformat(out, outsz, fmt, ap);
	va_end(ap);
	return n;
}

static void log_v(int level, const char *fmt, va_list ap)
{
	static const char *names[] = { "err", "warn", "info", "debug" };
	char line[LOG_LINE];
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
	if (n < 0 || (size_t)n >= sizeof line - 1)
		return;
	size_t len = (size_t)n + log_vformat(line + n, sizeof line - (size_t)n - 1, fmt, ap);
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
	size_t n = 0;
	if (outsz == 0)
		return out;
	while (n < len && s[n])
		n++;
	if (n >= outsz) {                /* keep room for "..." */
		n = outsz > 4 ? outsz - 4 : 0;
		memcpy(out, s, n);
		memcpy(out + n, "...", outsz - 1 - n);
		out[outsz - 1] = '\0';
		return out;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

/* ---- rate limits ---------------------------------------------------------------------------- */

int log_limit(struct log_limit *l, int interval_s, unsigned long long *repeated)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (l->last && ts.tv_sec - l->last < interval_s) {
		l->suppressed++;
		return 0;
	}
	*repeated = l->suppressed;
	l->suppressed = 0;
	l->last = ts.tv_sec ? ts.tv_sec : 1;
	return 1;
}
