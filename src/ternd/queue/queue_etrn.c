/* queue_etrn — the queue's relay of ETRN (RFC 1985) between the smtp role and the scheduler:
 * M_SCHED_ETRN goes to the scheduler under the smtp session's id, its M_SCHED_ETRN_RESULT
 * back to smtp. A session waits for that answer with no timeout, so one always comes: while
 * the scheduler is down, or when it dies with ETRNs unanswered, the queue answers them
 * itself with SCHED_ETRN_DOWN (smtp says 458, try later).
 * Owns: the ids of the ETRNs relayed and not answered yet. Trusts: the smtp role and the
 * scheduler only as far as the codec's checks go (a result for no pending id is dropped). */
#include "ternd/queue/queue.h"
#include "ternd/proto.h"
#include "ternd/role.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <string.h>

static uint32_t *pending;
static size_t npending, cappending;

static void etrn_answer(uint32_t id, uint64_t n)
{
	struct msg out;
	msg_init(&out, M_SCHED_ETRN_RESULT, id);
	msg_u64(&out, n);
	chan_send(queue_ch_smtp, &out);
}

static int etrn_take(uint32_t id)
{
	for (size_t i = 0; i < npending; i++)
		if (pending[i] == id) {
			pending[i] = pending[--npending];
			return 0;
		}
	return -1;
}

static void etrn_relay(uint32_t id, const char *dom)
{
	if (!queue_peer_up(R_SCHED)) {
		log_info("event=etrn_refused reason=scheduler_down");
		etrn_answer(id, SCHED_ETRN_DOWN);
		return;
	}
	if (npending == cappending) {
		cappending = cappending ? 2 * cappending : 8;
		pending = xrealloc(pending, cappending * sizeof *pending);
	}
	pending[npending++] = id;            /* before the send: a failed send loses the peer */
	struct msg out;
	msg_init(&out, M_SCHED_ETRN, id);
	msg_str(&out, dom);
	chan_send(queue_ch_sched, &out);
}

void queue_etrn_recv(uint32_t type, uint32_t id, struct msg_reader *r)
{
	if (type == M_SCHED_ETRN) {          /* from smtp */
		const char *dom = msg_get_str(r);
		if (msg_done(r) == 0)
			etrn_relay(id, dom);
		return;
	}
	uint64_t n = msg_get_u64(r);         /* M_SCHED_ETRN_RESULT, from the scheduler */
	if (msg_done(r) < 0)
		return;
	if (etrn_take(id) < 0) {
		log_warn("event=etrn_result_unexpected id=%u", id);
		return;
	}
	etrn_answer(id, n);
}

/* The scheduler died: the ETRNs it did not answer never will be. The smtp role died: no
 * session waits for them any more (the scheduler's late answers are dropped). */
void queue_etrn_peer_lost(int role)
{
	if (role == R_SCHED && npending)
		log_info("event=etrn_refused reason=scheduler_lost n=%zu", npending);
	for (size_t i = 0; role == R_SCHED && i < npending; i++)
		etrn_answer(pending[i], SCHED_ETRN_DOWN);
	npending = 0;
}
