/* smtp_session — one inbound SMTP conversation inside the smtp role's event loop: command
 * dispatch, the transaction (sender, recipients), asking lookup about addresses and queue for
 * a data file, streaming DATA into it, and the replies (batched for PIPELINING); STARTTLS
 * and implicit TLS (RFC 3207, 8314) and AUTH (RFC 4954) as the listener's policy says (those
 * two in smtp_auth.c, which shares the session's layout through smtp_session_priv.h).
 * A recipient repeated in the transaction is answered 250 and recorded once; DATA holding a
 * NUL octet is refused (554 5.6.0) and nothing of it is kept.
 * Owns: the session's socket, buffers, timers and its open data file. Trusts: nothing the
 * client sends; lookup and queue answers are checked with msg_done() before use.
 *
 * Interface with smtp.c (which owns listeners, limits, the session table and the channels):
 * smtp.c creates a session per accepted socket with a correlation id; every IPC answer whose
 * frame id matches is handed to smtp_session_ops.ipc; when a session ends it calls
 * srv->closed() once, after which smtp.c must forget it. */
#ifndef TERN_SMTP_SESSION_H
#define TERN_SMTP_SESSION_H
#include <stddef.h>
#include <stdint.h>
#include "lib/msg.h"
#include "mail/config.h"

struct smtp_session;
struct tls_ctx;

struct smtp_srv {
	const struct config *cfg;
	struct chan *lookup, *queue;
	int lookup_up, queue_up;     /* 0 once the channel closed: requests tempfail */
	int draining;                /* shutting down: finish transactions, then 421 */
	struct tls_ctx *tls;         /* the server certificate's context, or NULL (no servercert) */
	/* called once when a session ends (from inside a session callback) */
	void (*closed)(struct smtp_srv *srv, struct smtp_session *s, uint32_t id, void *ipslot);
};

/* A session on an accepted non-blocking socket. ip is the numeric client address; ipslot is
 * smtp.c's per-IP record, handed back through srv->closed; policy is the accepting
 * listener's (TLS, AUTH, relay), valid for the session's life. Nothing is sent yet. */
struct smtp_session *smtp_session_new(struct smtp_srv *srv, int fd, uint32_t id,
                                      const char *ip, void *ipslot,
                                      const struct cfg_policy *policy);
/* Send the greeting and start reading. May end the session (srv->closed is called). */
void smtp_session_start(struct smtp_session *s);

/* What smtp.c does with a live session of any protocol (SMTP, POP3, QMQP): each session
 * module exports one table; sess is that module's session. A NULL entry: nothing to do. */
struct smtp_proto_ops {
	/* An answer from lookup, queue or the parent for this session (fd: a passed descriptor
	 * or -1; it is consumed). May end the session. */
	void (*ipc)(void *sess, uint32_t type, struct msg_reader *r, int fd);
	/* A peer channel closed: a request waiting on it is answered with a tempfail. */
	void (*peer_lost)(void *sess);
	/* Shutdown begins: end at the next point where nothing is lost. */
	void (*drain)(void *sess);
	/* End the session now (shutdown grace expired). */
	void (*kill)(void *sess);
};

/* SMTP's: drain answers 421 at once if no data transfer or commit is in progress, else
 * after it; kill ends with a 421. */
extern const struct smtp_proto_ops smtp_session_ops;
#endif
