/* buf — a growable byte buffer and small string helpers. Owns only the memory it allocates.
 * Allocation failure is fatal (xmalloc logs and exits 111: a tempfail for any caller). */
#ifndef TERN_BUF_H
#define TERN_BUF_H
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *p;      /* NUL-terminated whenever len < cap */
	size_t len;
	size_t cap;
};

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* remove the first n bytes */
void buf_consume(struct buf *b, size_t n);
/* detach: returns the malloc'd NUL-terminated string and reinitialises b */
char *buf_detach(struct buf *b);

/* Write as much of b to the socket or pipe fd as it takes now (EINTR retried, SIGPIPE never
 * raised), consuming what was written. 0 = all written, 1 = the rest would block, -1 = the
 * peer is gone or another error. */
int buf_send(struct buf *b, int fd);

/* ASCII case-insensitive compare helpers (locale independent) */
int str_casecmp(const char *a, const char *b);
int str_ncasecmp(const char *a, const char *b, size_t n);
void str_lower(char *s);
/* the value of one hex digit (either case), -1 if c is none */
int str_hexval(int c);
/* strict decimal parse of the whole string into [min,max]; 0 ok / -1 */
int str_to_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
#endif
