/* qmqp_session — one QMQP connection inside the smtp role (qmail-qmqpd's place): a data file
 * asked of the queue (M_MSG_OPEN) as the connection starts, the request read on io through
 * the incremental parser (src/mail/qmqp.c) with the message streamed into the data file after
 * our Received: line, the commit (M_MSG_COMMIT), and the one reply netstring: K only once the
 * queue committed, Z on any queue trouble, D for a refused request. Then the connection ends.
 * Owns: the client's io, the open data file, the envelope read so far, and the qmqpclients
 * list as the role holds it (file: tables read before the chroot). Trusts: nothing the client
 * sends; queue answers are checked with msg_done() before use.
 *
 * Interface with smtp.c: as pop3_session.h's (one session per accepted socket of a qmqp
 * listener, IPC answers by frame id, srv->closed(srv, NULL, id, ipslot) once at the end). */
#ifndef TERN_QMQP_SESSION_H
#define TERN_QMQP_SESSION_H
#include <stdint.h>
#include "lib/msg.h"
#include "ternd/smtp/smtp_session.h"

struct qmqp_session;

/* Before the chroot: qmqpclients with its file: tables read into memory. 0, or -1 (logged). */
int qmqp_session_prepare(const struct config *cfg);
/* 1 when ip may use a qmqp listener (qmqpclients), else 0 */
int qmqp_session_client_ok(const char *ip);
/* A session on an accepted socket from an allowed client; it asks the queue for a data file
 * at once. NULL if it ended already (srv->closed was called). */
struct qmqp_session *qmqp_session_new(struct smtp_srv *srv, int fd, uint32_t id,
                                      const char *ip, void *ipslot);
/* ipc: the queue's answers (M_MSG_OPENED, M_MSG_COMMITTED); peer_lost: Z unless the reply
 * is out already; no drain (the request in flight may finish within the role's grace
 * period); kill ends the connection. */
extern const struct smtp_proto_ops qmqp_session_ops;
#endif
