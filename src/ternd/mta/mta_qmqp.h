/* mta_qmqp — the mta's QMQP client (qmail-qmqpc, mini-qmail): a job of channel "qmqp" goes
 * as one request over one connection to the first of qmqpservers that answers.
 * Owns: its connections (lib/io) and their jobs until reported. Trusts: mta.c for the job;
 * nothing from the network (replies read by src/mail/qmqp.c). */
#ifndef TERN_MTA_QMQP_H
#define TERN_MTA_QMQP_H
#include "ternd/mta/mta_session.h"

/* Deliver j; done(j) is called exactly once (at once when no server can even be tried),
 * with every recipient's status and diagnostic set: K delivered, Z deferred, D failed (its
 * text the diagnostic); no server answering: deferred. */
void mta_qmqp_start(const struct config *cfg, struct mta_job *j, void (*done)(struct mta_job *j));
/* shutdown: every job in flight is deferred and reported, its connection closed */
void mta_qmqp_stop_all(void);
#endif
