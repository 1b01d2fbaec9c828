/* queue_peer — the queue role's channels to its peers, and what a peer's death and return
 * mean for the queue (doc/ARCHITECTURE.md, "Restarts"). A peer channel that closes marks the
 * peer down and fails what waits on it, from the loop (a close can be noticed inside a send):
 * smtp or control gone — the data files they opened go, replies to their commits drop;
 * lookup gone — its route requests are asked again later; mda or mta gone — deliveries in
 * flight on it are deferred (at least once); scheduler gone — the ETRNs it did not answer
 * are answered "try later", and the new one is told about every live message. The
 * restarted peer's channel arrives from the parent (M_PEER_NEW); the parent's channel
 * closing ends the role. The dead peer's last words count: what it wrote before it died
 * (results of deliveries) is read and acted on before its deliveries in flight are
 * deferred, even when its successor's channel is read first.
 * Owns: the peer channels' lifetime and which peers are up. Trusts: the parent for
 * M_PEER_NEW (queue.c reads it from the parent's channel only). */
#include "ternd/queue/queue.h"
#include "ternd/proto.h"
#include "ternd/role.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <stdint.h>
#include <unistd.h>

struct chan *queue_ch_smtp, *queue_ch_parent;

static chan_recv_cb peer_recv;
static int up[R_NROLES], lost_pending[R_NROLES];
static struct ev *lost_ev;

static struct chan **peer_slot(int r)
{
	switch (r) {
	case R_PARENT: return &queue_ch_parent;
	case R_SMTP: return &queue_ch_smtp;
	case R_LOOKUP: return &queue_ch_lookup;
	case R_SCHED: return &queue_ch_sched;
	case R_MDA: return &queue_ch_mda;
	case R_MTA: return &queue_ch_mta;
	case R_CONTROL: return &queue_ch_control;
	default: return NULL;
	}
}

int queue_peer_up(int r) { return r > R_PARENT && r < R_NROLES && up[r]; }

static void peer_lost(int r)
{
	lost_pending[r] = 0;
	if (r == R_SMTP || r == R_CONTROL)
		queue_forget_chan(*peer_slot(r));
	if (r == R_SMTP || r == R_SCHED)
		queue_etrn_peer_lost(r);
	else if (r == R_LOOKUP || r == R_MDA || r == R_MTA)
		queue_deliver_peer_lost(r);
}

static void lost_cb(int fd, short what, void *arg)
{
	for (int r = 1; r < R_NROLES; r++)
		if (lost_pending[r])
			peer_lost(r);
}

static void peer_closed(struct chan *c, void *arg)
{
	int r = (int)(intptr_t)arg;
	if (r == R_PARENT) {
		queue_exit("parent_gone");
		return;
	}
	if (role_peer_lost(c) < 0) {
		queue_exit("peer_channel_broken");
		return;
	}
	up[r] = 0;
	lost_pending[r] = 1;
	ev_add(lost_ev, 0);
}

static void peer_open(int r, int fd)
{
	*peer_slot(r) = chan_new(fd, role_name(r), peer_recv, peer_closed, (void *)(intptr_t)r);
	up[r] = 1;
}

void queue_peers_open(struct role_ctx *ctx, chan_recv_cb cb)
{
	peer_recv = cb;
	lost_ev = ev_new(-1, 0, lost_cb, NULL);
	for (int r = 0; r < R_NROLES; r++)
		if (r != R_QUEUE && ctx->peer[r] >= 0)
			peer_open(r, ctx->peer[r]);
}

void queue_peer_new(struct msg_reader *rd, int fd)
{
	int r = role_peer_new(R_QUEUE, rd, fd);
	if (r < 0)
		return;
	if (up[r]) {                         /* the old channel is not read to its end yet */
		up[r] = 0;                       /* (nothing new goes to the dead peer meanwhile) */
		if (chan_read_to_eof(*peer_slot(r)) < 0 || !lost_pending[r]) {
			log_warn("event=peer_lost peer=%s reason=replaced", role_name(r));
			lost_pending[r] = 1;
		}
	}
	if (lost_pending[r])
		peer_lost(r);
	chan_free(*peer_slot(r));
	peer_open(r, fd);
	log_info("event=peer_new peer=%s", role_name(r));
	if (r == R_SCHED)
		queue_sched_announce_all();
	else if (r == R_LOOKUP || r == R_MDA || r == R_MTA)
		queue_deliver_peer_back(r);
}
