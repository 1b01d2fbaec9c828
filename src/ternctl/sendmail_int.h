/* sendmail_int — what sendmail.c (the command line, options, the ordinary submission) shares
 * with sendmail_smtp.c (the -bs dialogue): the options, the stdin reader, the header fields
 * sendmail adds, error reporting and the temporary file a signal must remove.
 * Internal to src/ternctl; nothing else includes it. */
#ifndef TERN_SENDMAIL_INT_H
#define TERN_SENDMAIL_INT_H
#include <stddef.h>
#include "lib/buf.h"

#define SM_BUFSZ 65536

struct sm_opts {
	int t, i, verbose;
	const char *sender;            /* -f / -r; NULL = the user */
	const char *fullname;          /* -F */
	const char *conf;              /* -C */
	const char *qarg;              /* what followed -q ("" for a plain -q) */
	char mode;                     /* 'm' deliver, 'p' mailq, 's' smtp, 'i' newaliases, 'q' */
};

/* "sendmail: <text>" on stderr; returns code */
int sm_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* stdin, read in pieces */
struct sm_in {
	int fd, eof, bol;
	size_t pos, len;
	struct buf *out;               /* -bs: replies written to fd 1 before blocking on a read */
	int outerr;                    /* writing them failed (errno) */
	char b[SM_BUFSZ];
};
/* Next piece of stdin: a line with its LF, the last bytes before EOF, or a buffer-full part
 * of a longer line. *bol: the piece starts a line. 1 = piece, 0 = EOF, -1 = read error.
 * Before it blocks in read(), in->out (if any) is written to fd 1. */
int sm_piece(struct sm_in *in, const char **p, size_t *n, int *bol);
/* write in->out to fd 1 (all of it, EINTR retried); a failure is remembered in outerr */
void sm_flush_out(struct sm_in *in);
/* length of p without its line ending (LF or CRLF) */
size_t sm_trim_eol(const char *p, size_t n);

/* the From: (user@me, with -F's name), Date: and Message-ID: fields a header lacks */
void sm_added(struct buf *b, int has_from, int has_date, int has_msgid,
              const struct sm_opts *o, const char *user, const char *me);

/* block (1) / unblock (0) SIGINT, SIGTERM, SIGHUP around the tmp-path bookkeeping */
void sm_signals(int block);
/* the maildrop tmp file those signals remove before exiting ("" = none) */
void sm_set_tmp(const char *path);

/* sendmail -bs (sendmail_smtp.c): the whole session; returns the exit code */
int sm_smtp_main(const struct sm_opts *o, struct sm_in *in);
#endif
