/* mta — the outbound SMTP role (MMDF's smtp channel, qmail-remote). See mta.c.
 * Owns: the role's entry point and qmail-tcpto's table of addresses whose connections
 * timed out (in memory). Trusts: the queue for jobs, lookup for DNS answers. */
#ifndef TERN_MTA_H
#define TERN_MTA_H
#include <time.h>
#include "lib/buf.h"

struct role_ctx;
int mta_main(struct role_ctx *ctx);

/* tcpto (qmail-tcpto): an address whose connect timed out MTA_TCPTO_MIN times in a row, the
 * last time less than MTA_TCPTO_SECS ago, is skipped — unless it is the last candidate of a
 * delivery. A completed or refused connection clears its entry. */
#define MTA_TCPTO_MIN   2
#define MTA_TCPTO_SECS  3600
#define MTA_TCPTO_MAX   256        /* entries; the oldest is forgotten first */
int  mta_tcpto_skip(const char *addr, time_t now);      /* 1: skip this address now */
void mta_tcpto_note(const char *addr, int timedout, time_t now);
/* for `ternctl tcpto`: one line per entry,
 * "ADDR timed out N seconds ago; # recent timeouts: K[; skipped]\n" */
void mta_tcpto_dump(struct buf *out, time_t now);
void mta_tcpto_clear(void);                           /* `ternctl tcpok` */
struct config;
/* before the privilege drop: OpenSSL, the client context (clientcert, tlscafile) and the
 * tlsdestinations/smtpauth tables. 0, or -1 (logged: the role exits 78). */
int mta_preinit(struct config *cfg);
#endif
