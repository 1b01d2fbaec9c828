/* mda_prog — the mda's side of the prog transport (mda_prog.c, doc/PROG.md). */
#ifndef TERN_MDA_PROG_H
#define TERN_MDA_PROG_H
#include <stdint.h>
#include "mail/config.h"
#include "ternd/dreq.h"
#include "lib/msg.h"

/* the mda's config and its channels (pointers to them: a restarted queue replaces one) and
 * its job numbers, shared with the tern-local jobs */
void mda_prog_init(const struct config *c, struct chan **queue, struct chan **parent,
                   uint64_t *seq);
/* one run of row's program for every recipient of d; fd (the message) stays the caller's */
void mda_prog_deliver(const struct dreq *d, const struct channel_row *row, int fd);
/* M_FORKED / M_CHILD_EXIT for job jn: 1 if it was a prog run's (then handled), else 0 */
int mda_prog_forked(uint64_t jn, uint64_t st, int fd);
int mda_prog_exited(uint64_t jn, uint64_t ws);
/* the queue died: the runs in progress finish unreported */
void mda_prog_orphan_all(void);
#endif
