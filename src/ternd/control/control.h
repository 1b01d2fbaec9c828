/* control — the control role's shared core (control.c) and the interface its protocol
 * modules use: admin.c (ternctl's socket), mailq2.c (ZMailer MAILQ v2), qp.c (Bongo queue
 * protocol and its stage agents), metrics.c (OpenMetrics). The role keeps no state of its
 * own about mail: it asks the owners (queue, scheduler, mta, lookup) over IPC (src/ternd/proto.h).
 * Owns: the listeners it is handed, the request/reply bookkeeping to the other roles.
 * Trusts: the parent for the listening sockets; nothing a client sends. */
#ifndef TERN_CONTROL_H
#define TERN_CONTROL_H
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "lib/msg.h"
#include "mail/config.h"
#include "ternd/role.h"

/* A reply from a peer role: r reads the payload, fd is a passed descriptor or -1 (the
 * callback owns it). type == 0 and r == NULL means the peer went away (answer the client
 * with a temporary error). */
typedef void (*control_reply_fn)(void *arg, uint32_t type, struct msg_reader *r, int fd);

/* Send m (its frame id is replaced) to peer (R_QUEUE, R_SCHED, R_MTA or R_LOOKUP); cb(arg, …) runs
 * once with the reply. */
void control_ask(enum role peer, struct msg *m, control_reply_fn cb, void *arg);
/* Forget every pending reply for arg (its session closed); the callbacks will not run. */
void control_cancel(void *arg);
/* Send without expecting a reply (e.g. M_Q_AGENTS, M_Q_STAGE_DONE). */
void control_send(enum role peer, struct msg *m);
/* Receive unsolicited messages of this type from any peer (e.g. M_Q_STAGE_PUSH). */
void control_on(uint32_t type, void (*fn)(struct msg_reader *r, int fd));
const struct config *control_cfg(void);

/* Protocol modules: each is handed accepted, non-blocking client sockets of its kind. */
void mailq2d_init(void);
void mailq2d_accept(int fd, const struct sockaddr *peer, socklen_t len);
void qpd_init(void);
void qpd_accept(int fd, const struct sockaddr *peer, socklen_t len);
void metrics_accept(int fd, const struct sockaddr *peer, socklen_t len);
/* The UNIX admin socket: control.c checks the peer's rights first (SO_PEERCRED /
 * SO_PEERGROUPS: 0 none, 1 read, 2 change; *uid set) and counts the connection under them,
 * then hands it over with them. A peer without rights gets a short idle timeout. */
int  admin_rights(int fd, uid_t *uid);
void admin_accept(int fd, int rights, uid_t uid);

int control_main(struct role_ctx *ctx);
#endif
