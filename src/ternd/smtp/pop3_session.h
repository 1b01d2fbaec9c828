/* pop3_session — one POP3 connection inside the smtp role (qmail-popup's place): the
 * AUTHORIZATION state (CAPA, USER/PASS, APOP, AUTH PLAIN, STLS, QUIT) on io, the login asked
 * of the lookup role (M_POP_LOGIN), and once the parent has forked the user's worker
 * (M_POP_READY, the socket to tern-pop3), a pump of octets both ways between the client (in
 * the clear or over TLS) and the worker, which speaks TRANSACTION and UPDATE as the user.
 * Owns: the client's io, the worker's io, the throttle timer. Trusts: nothing the client
 * sends; lookup and parent answers are checked with msg_done() before use. Never chooses a
 * uid and never sees a password hash.
 *
 * Interface with smtp.c: as smtp_session.h's (one session per accepted socket of a pop3 or
 * pop3s listener, IPC answers by frame id, srv->closed(srv, NULL, id, ipslot) once at the
 * end). */
#ifndef TERN_POP3_SESSION_H
#define TERN_POP3_SESSION_H
#include <stdint.h>
#include "lib/msg.h"
#include "ternd/smtp/smtp_session.h"

struct pop3_session;
struct tls_ctx;

/* tls: the server context (NULL: no STLS, and a pop3s listener refuses); implicit: pop3s */
struct pop3_session *pop3_session_new(struct smtp_srv *srv, struct tls_ctx *tls, int implicit,
                                      int fd, uint32_t id, const char *ip, void *ipslot);
/* ipc: M_POP_RESULT from lookup, M_POP_READY from the parent; drain tells a session that
 * takes commands and cuts one with a worker; kill ends it. */
extern const struct smtp_proto_ops pop3_session_ops;
#endif
