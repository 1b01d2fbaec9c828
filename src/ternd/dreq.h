/* dreq — the one delivery request and the one per-recipient result that every transport
 * reads and writes (Postfix's deliver_request is the model). The queue sends a request
 * (M_DELIVER) to the role that runs the recipients' channel (mail/channel.h: the mda, the
 * mta, or the queue itself for the list channel); that role answers with one or more
 * M_DELIVERED, each carrying results for some of the request's recipients, until every
 * recipient has one. Adding a channel is adding a table row and a transport that reads a
 * struct dreq and writes struct dres.
 * Owns: the two payload layouts and their checks. Trusts: nothing it reads — dreq_get and
 * dres_check look at the whole payload before anything is used. */
#ifndef TERN_DREQ_H
#define TERN_DREQ_H
#include <stddef.h>
#include <stdint.h>
#include "ternd/proto.h"

#define DREQ_MAXRCPT 1000          /* recipients of one request at most */

struct dreq_rcpt {
	uint64_t idx;                  /* the queue's slot number */
	struct target t;               /* where and how (its channel and host equal the request's
	                                  for every recipient) */
};

struct dreq {
	uint64_t job;                  /* the queue's request number: every result names it */
	uint64_t msgid;
	char *channel, *host, *sender; /* sender "" = <> */
	uint64_t size;                 /* bytes of the message file */
	int64_t arrival;               /* when the message was queued (unix time) */
	size_t n;
	struct dreq_rcpt *r;
};

/* the payload of M_DELIVER (after msg_init; the caller adds the message fd) */
void dreq_put(struct msg *out, const struct dreq *d);
/* read a whole M_DELIVER payload into d: 0, or -1 when it is malformed (d is then empty;
 * d->job and d->msgid hold what could be read, for the answer) */
int dreq_get(struct msg_reader *r, struct dreq *d);
void dreq_free(struct dreq *d);

/* a temporary failure belongs to the recipient (over quota, greylisted, 4xx to RCPT) or to
 * the destination (no connection, 421, a 4xx to MAIL or DATA of the whole transaction): only
 * the destination's failures shrink the scheduler's window and count toward a dead site */
enum dscope { DSCOPE_RCPT = 0, DSCOPE_SITE = 1 };

struct dres {
	uint64_t idx;
	int st;                        /* enum dstatus: D_OK, D_TEMP, D_PERM */
	int scope;                     /* enum dscope (D_TEMP only; 0 otherwise) */
	const char *diag;              /* for the log, the bounce and the journal */
	const char *remote;            /* "name[addr]" of the server that answered, or "" */
};

/* M_DELIVERED: dres_begin, then exactly n dres_put */
void dres_begin(struct msg *out, uint64_t job, uint64_t msgid, size_t n);
void dres_put(struct msg *out, const struct dres *x);
/* 0 when the whole M_DELIVERED payload is well formed (r is not advanced), else -1 */
int dres_check(const struct msg_reader *r);
/* after dres_check: the header, then n times dres_get (strings point into the frame) */
void dres_get_head(struct msg_reader *r, uint64_t *job, uint64_t *msgid, uint64_t *n);
void dres_get(struct msg_reader *r, struct dres *x);
#endif
