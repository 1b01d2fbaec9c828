/* role — what every role's main function receives from the parent: the parsed config and
 * one channel fd per peer it talks to. Owns: the role names and the peer table (who may
 * talk to whom). Trusts: the parent, which created every socketpair before exec.
 *
 * ternd re-executes itself as `ternd -R <role> [-f FILE]` with the peer fds and listening
 * sockets inherited; ROLE_FDS in the environment lists them (see parent.c). */
#ifndef TERN_ROLE_H
#define TERN_ROLE_H
#include "mail/config.h"

enum role {
	R_PARENT = 0, R_SMTP, R_LOOKUP, R_QUEUE, R_SCHED, R_MDA, R_MTA, R_CONTROL, R_NROLES
};

struct role_ctx {
	enum role self;
	struct config *cfg;
	int peer[R_NROLES];            /* fd of the channel to each peer, or -1 */
	int listen[CFG_MAXLISTEN];     /* listening sockets, each to the role its kind names
	                                  (config_listen_kind: smtp role smtp, submission, smtps,
	                                  pop3, pop3s; control role mailq, qp, metrics, admin) */
	int nlisten;
	int listen_kind[CFG_MAXLISTEN];/* index into cfg->listen */
};

const char *role_name(enum role r);
int role_by_name(const char *name);  /* -1 if unknown */

/* role entry points; each runs its event loop and returns the process exit code */
int smtp_main(struct role_ctx *ctx);
/* the smtp role's start while still root, before chroot and sandbox: TLS keys; 0 / -1 */
int smtp_prepare(struct role_ctx *ctx);
int lookup_main(struct role_ctx *ctx);
int queue_main(struct role_ctx *ctx);
int sched_main(struct role_ctx *ctx);
int mda_main(struct role_ctx *ctx);
int mta_main(struct role_ctx *ctx);
/* weak until every build has the control role: the parent starts it only if it is linked */
int control_main(struct role_ctx *ctx) __attribute__((weak));

/* M_PEER_NEW from the parent (a restarted peer's fresh channel, doc/ARCHITECTURE.md,
 * "Restarts"): the peer's role if the message is well formed and names a peer of self, else
 * -1 (logged; fd closed). */
struct msg_reader;
int role_peer_new(enum role self, struct msg_reader *r, int fd);
/* A peer channel closed (call from its close callback). 0: the peer died (logged at warn;
 * mark it down and wait for M_PEER_NEW). -1: this side closed it for a malformed frame and
 * the peer lives on, so nobody would ever reconnect us (logged at err): the caller exits and
 * the parent restarts this role with fresh channels. */
struct chan;
int role_peer_lost(struct chan *c);

/* crash points for the crash tests: if TERN_CRASHPOINT names this point ("role:name"),
 * the process dies here by SIGKILL. The parent clears the variable for restarted roles. */
void role_crashpoint(const char *name);
int role_crashpoint_armed(const char *name);       /* 1 if role_crashpoint(name) would kill */
#endif
