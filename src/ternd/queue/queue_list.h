/* queue_list — the list channel run by the queue role (queue_list.c, doc/LISTS.md).
 * Owns: the interface between it and queue.c / queue_deliver.c. */
#ifndef TERN_QUEUE_LIST_H
#define TERN_QUEUE_LIST_H
#include "ternd/queue/queue.h"

void queue_list_init(void);
/* run the list slots idx[0..n) of m (routed to a channel of transport list) */
void queue_list_deliver(struct qmsg *m, const uint32_t *idx, size_t n);
/* M_LIST_RESULT from lookup */
void queue_list_result(uint32_t reqid, struct msg_reader *r);
/* the commit batch: the list copy newid of parent is durable (ok) or not */
void queue_list_committed(uint64_t parent, uint64_t newid, int ok);
/* the tick: a held list post older than listmodtimeout is removed, its sender told */
void queue_list_tick(struct qmsg *m, int64_t now);
/* lookup died: its list answers will not come; the slots are deferred */
void queue_list_peer_lost(void);
#endif
