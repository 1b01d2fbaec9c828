/* mta_cluster — the mta's side of the cluster (doc/CLUSTER.md) for a job of channel
 * "cluster": counting the X-Tern-Cluster lines the message already carries (a loop guard),
 * and the size the line mta_session puts in front of it adds.
 * Owns: nothing. Trusts: the queued message (read only; its header section is scanned). */
#ifndef TERN_MTA_CLUSTER_H
#define TERN_MTA_CLUSTER_H
#include "mail/config.h"
#include "ternd/mta/mta_session.h"

/* A forward to another node: -1 once the message went round ldapclusterhops times (nodes
 * whose directories disagree would pass it back and forth for ever; logged, the caller fails
 * every recipient with CLUSTER_LOOP_DIAG); else 0, and j->txn.size counts the X-Tern-Cluster
 * line mta_session puts in front of the message. */
int mta_cluster_job(const struct config *cfg, struct mta_job *j);
#endif
