/* qp — the Bongo queue protocol inside the control role (PROTOCOLS.md §2, doc/QP.md).
 * Internal interface between its three files:
 *   qp.c        sessions: their connection (an io, src/lib/io.h), login, the command table;
 *   qp_entry.c  creating entries (QCREA … QRUN), moving entries (QDELE QMOVE QCOPY QFLUSH),
 *               QDSPC, ADDRESS RESOLVE / DOMAIN LOCATION;
 *   qp_read.c   reading entries (QINFO, QHEAD, QBODY, QBRAW, QRETR, QGREP, QSRCH, QADDQ):
 *               M_Q_READ, then the data streamed from the descriptor with CRLF line ends;
 *   qp_agent.c  stage agents: QWAIT registrations, the queue's M_Q_STAGE_PUSH, callback
 *               connections to agents and their edits (QMOD, QRTS, QDONE, QADDM), the
 *               skip/hold policy.
 * Owns: the protocol's sessions and the agent registrations (in memory; agents register
 * again after a restart). Trusts: the queue for every fact about an entry; nothing a client
 * or an agent sends. */
#ifndef TERN_QP_H
#define TERN_QP_H
#include <arpa/inet.h>
#include <stdint.h>
#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/msg.h"
#include "mail/config.h"
#include "mail/qp_cmd.h"
#include "ternd/role.h"

enum qpd_mode { QM_CMD = 0, QM_MSGN, QM_MSGDOT };
enum qpd_wait { QW_NONE = 0, QW_IPC, QW_DELAY, QW_STREAM, QW_CONNECT };
enum qpd_auth { QA_NONE = 0, QA_USER, QA_SYS };

struct qpd_new {                  /* the entry being created (QCREA … QRUN) */
	uint64_t msgid;
	int fd;                      /* data file, write only; -1 once closed */
	unsigned stage;
	char *sender;                /* NULL until QSTOR FROM; "" for <> */
	char **rcpt;
	size_t nrcpt, cap;
	char address[64];            /* QSTOR ADDRESS (the original client), for the origin */
	uint64_t bytes;              /* written so far, LF line ends, our Received: included */
	int started;                 /* our Received: line is written */
	int werr;                    /* errno of the first failed write */
	int toobig;                  /* over databytes, or refused data (nul) */
	int nul;                     /* the data held a NUL octet: refused (toobig set too) */
	int committing;              /* M_MSG_COMMIT sent: the queue decides, never abort */
	int srcfd;                   /* QRCP: the committed entry's data, read only, or -1 */
	struct buf pend;             /* written at 64 KiB or at the end */
};

struct qpd_src {                  /* data streamed to the client: file [foff, fend) as CRLF */
	int fd;
	uint64_t foff, fend;
	uint64_t skip, left;         /* wire octets to drop first, then to send at most */
	char trailer[64];            /* sent when the stream ends ("1000 OK\r\n") */
};

struct io;
struct qpd_job;
struct qpd_sess;
typedef void (*qpd_cont_fn)(struct qpd_sess *s, uint32_t type, struct msg_reader *r, int fd);

struct qpd_sess {
	uint32_t id;
	struct io *io;               /* the connection; NULL once closed (an answer still due) */
	struct ev *tev;              /* a failed login's delayed reply */
	long tmo;                    /* the timeout io has now (ms, -1 none) */
	char ip[INET6_ADDRSTRLEN];
	struct qpd_src src;
	char challenge[40];
	uint8_t auth, mode, wait;
	unsigned quit:1, dead:1, pending:1, watching:1, cleanquit:1;
	uint64_t msgleft;            /* QM_MSGN: octets still to come */
	uint64_t listoff;            /* QSRCH DOMAIN: the next page of the queue's listing */
	struct qp_dot dot;
	struct qp_crlf crlf;
	qpd_cont_fn cont;             /* what to do with the answer of the pending ask */
	char *line;                  /* the command being answered (cmd points into it) */
	struct qp_cmd cmd;
	struct qpd_new *nw;
	struct qpd_job *job;          /* a connection the queue opened to an agent: its entry */
	const char *endwhy;
};

/* qp.c */
extern const struct config *qpd_cfg;
extern long qpd_timeout_ms;       /* idle clients (TERN_QP_TIMEOUT, s; default 600) */
__attribute__((format(printf, 3, 4)))
void qpd_say(struct qpd_sess *s, int code, const char *fmt, ...);
/* raw output to the client (nothing once the connection is closed), and how much waits */
void qpd_write(struct qpd_sess *s, const void *p, size_t n);
size_t qpd_queued(const struct qpd_sess *s);
/* ask peer (R_QUEUE …); cont runs with the answer, then the session goes on */
void qpd_ask(struct qpd_sess *s, enum role peer, struct msg *m, qpd_cont_fn cont);
/* M_Q_OP on an entry; cont reads the M_Q_OP_RESULT */
void qpd_op(struct qpd_sess *s, uint64_t op, uint64_t msgid, const char *a1, const char *a2,
           qpd_cont_fn cont);
/* read M_Q_OP_RESULT: status, count, newid; -1 when malformed or the queue went away */
int qpd_op_result(uint32_t type, struct msg_reader *r, uint64_t *status, uint64_t *count,
                 uint64_t *newid);
/* a session on an accepted connection; one that connects to an agent (QW_CONNECT until
 * qpd_agent_connected), or NULL with errno set */
struct qpd_sess *qpd_sess_new(struct io *io, const char *ip, int agent);
struct qpd_sess *qpd_sess_dial(const struct sockaddr *sa, socklen_t len, const char *ip);
void qpd_sess_finish(struct qpd_sess *s);   /* after every event: write, read, free when done */
void qpd_sess_close(struct qpd_sess *s, const char *why);

/* qp_entry.c — making and moving entries, ADDRESS RESOLVE, DOMAIN LOCATION */
void qpd_entry_init(void);
void qpd_entry_cmd(struct qpd_sess *s);
void qpd_msg_end(struct qpd_sess *s);               /* the data of QSTOR MESSAGE is in */
/* append to the open entry's data (our Received: line first); 0 / -1 (werr/toobig set) */
int qpd_new_write(struct qpd_sess *s, const char *p, size_t n);
int qpd_new_flush(struct qpd_new *nw);
int qpd_islocal(const char *addr, void *arg);      /* a local recipient (qp_ctrl_build) */
void qpd_new_free(struct qpd_new *nw, int abort);
void qpd_abort_id(uint64_t msgid);                 /* M_MSG_ABORT: an opened entry goes */
int qpd_user_check(const char *user, const char *password);  /* 1 ok, 0 no, -1 tempfail */

/* qp_read.c — the read commands; each starts with M_Q_READ of its entry */
void qpd_read_cmd(struct qpd_sess *s);
void qpd_srch_domain(struct qpd_sess *s);
/* stream file [foff, fend) as CRLF, skipping `skip` wire octets, at most `left`; the
 * session owns fd until the stream ends, then trailer goes out */
void qpd_stream(struct qpd_sess *s, int fd, uint64_t foff, uint64_t fend, uint64_t skip,
               uint64_t left, const char *trailer);
int qpd_stream_pump(struct qpd_sess *s);   /* 1 while streaming */
/* wire size (CRLF) of the whole data and its header/body split; 0 / -1 */
int qpd_scan(int fd, uint64_t size, struct qp_split *sp);

/* qp_agent.c */
void qpd_agent_init(void);
void qpd_agent_cmd(struct qpd_sess *s);             /* QWAIT QADDM QMOD* QRTS QDONE */
void qpd_agent_sess_end(struct qpd_sess *s);        /* a session ends (job or registration) */
int qpd_agent_current(const struct qpd_sess *s, uint64_t msgid); /* the callback's own entry */
void qpd_agent_entry_gone(struct qpd_sess *s);      /* QDELE of the callback's own entry */
/* QW_CONNECT ends: connected (fail NULL), or "connect_failed" / "connect_timeout" */
void qpd_agent_connected(struct qpd_sess *s, const char *fail);
#endif
