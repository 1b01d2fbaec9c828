/* ipc_acl — who may say what over IPC: the one table of (receiving role, sending peer,
 * message type) that tern's processes accept, and the filter that enforces it inside the
 * codec (src/lib/msg.c) before any role's receive callback runs.
 * Owns: that table, the names of the message types of proto.h (for logs and doc/IPC.md) and
 * which types may carry a descriptor. Trusts: nothing a peer sends — a frame whose type is
 * not in the receiver's row for that peer, or that carries a descriptor its type never
 * carries, is refused (logged, its descriptor closed, dropped). A channel's peer is the name
 * its chan_new() was given, which must be the peer's role name (role_name()).
 *
 * The table is the second line of defence: it limits what a compromised role can make its
 * peers do; the first is that the roles run under separate accounts and sandboxes
 * (doc/ARCHITECTURE.md). doc/IPC.md shows the table; tests/unit/test_ipc_acl.c keeps the two
 * in sync. */
#ifndef TERN_IPC_ACL_H
#define TERN_IPC_ACL_H
#include "ternd/role.h"
#include "lib/buf.h"
#include <stdint.h>

/* 1 if a process of role self accepts a frame of type (with a descriptor when hasfd) from a
 * peer of role from, else 0 */
int ipc_acl_allows(enum role self, enum role from, uint32_t type, int hasfd);

/* install the filter for this process, which runs as role self (ternd main(), once) */
void ipc_acl_install(enum role self);

/* "M_Q_OP" for M_Q_OP; NULL for a number proto.h does not name */
const char *ipc_acl_type_name(uint32_t type);
int ipc_acl_type_by_name(const char *name, uint32_t *type);   /* 0 / -1 */

/* append the table as the markdown doc/IPC.md holds between its ipc_acl markers */
void ipc_acl_markdown(struct buf *out);

#ifdef TERN_TEST
/* TERN_TEST_EVIL=ROLE[,ROLE...] names this role: before it starts, it sends each peer every
 * type that peer must refuse from it and a malformed payload of every type it may send
 * (tests/e2e/test_ipc_attack.py). */
void ipc_acl_attack(const struct role_ctx *ctx);
/* TERN_TEST_EVIL_RESULTS=1 (the mda, on each delivery request for message msgid): a
 * well-formed M_DELIVERED claiming slots 0..3 of message msgid - 1 (the one queued just
 * before) delivered, for each request number 1..32 */
struct chan;
void ipc_acl_forge_results(struct chan *queue, uint64_t msgid);
#endif
#endif
