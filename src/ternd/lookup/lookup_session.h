/* lookup_session — one routing request (M_RCPT_CHECK of a local address, M_ROUTE) as a
 * session that parks while the users backend has questions out and resumes on their answers
 * (OpenSMTPD's lka_session is the model; the walk itself stays src/mail/route.c's).
 * Owns: the session (who asked, the address, the answers that came later). Trusts: the
 * backend to answer each question exactly once. */
#ifndef TERN_LOOKUP_SESSION_H
#define TERN_LOOKUP_SESSION_H
#include <stdint.h>
#include "mail/route.h"
#include "ternd/lookup/lookup_backend.h"

struct lookup_asker {            /* who gets the answer: copied into the session */
	int peer;                    /* enum role */
	uint32_t gen;                /* the peer's channel generation when it asked */
	uint32_t id;                 /* the IPC frame id */
	uint32_t type;               /* M_RCPT_CHECK or M_ROUTE */
};

/* called exactly once per session with the final result (never ROUTE_PENDING) */
typedef void (*lookup_session_reply)(const struct lookup_asker *who,
                                     const struct route_result *res);

/* Route rcpt with rc, asking be for users; reply(who, res) exactly once, possibly before
 * this returns (synchronous backends). One allocation: the session. */
void lookup_session_route(struct route_ctx *rc, struct lookup_backend *be,
                          const struct lookup_asker *who, const char *rcpt,
                          lookup_session_reply reply);
/* sessions parked now (tests, logs) */
int lookup_session_parked(void);
#endif
