/* proto — the message types exchanged between tern's roles over the msg codec, and the
 * order of the fields in each payload. Owns: the IPC vocabulary (doc/IPC.md is its prose).
 * Who may send which type to whom is not here but in src/ternd/ipc_acl.c, the one table the
 * codec enforces (doc/IPC.md, "Who may say what"): a new type needs its rows there.
 * Trusts: no peer blindly — the codec refuses a type the sending peer may not send; every
 * receiver checks the whole payload with msg_done() before acting and drops a malformed one
 * without effect, the codec logging it (doc/IPC.md, "Malformed messages").
 *
 * The `id` in a frame header is the requester's correlation id (e.g. an SMTP session
 * number); the reply carries the same id. Fields are listed in order: Q=u64, S=string, B=bytes.
 */
#ifndef TERN_PROTO_H
#define TERN_PROTO_H

/* verdicts (RCPT/MAIL checks, routing) */
enum verdict {
	V_OK = 0,         /* accept */
	V_NOUSER = 1,     /* 550 5.1.1 no such user */
	V_NORELAY = 2,    /* 553 5.7.1 relaying denied */
	V_TEMP = 3,       /* 451 4.3.0 lookup could not answer */
	V_BAD = 4,        /* 553 5.7.1 badmailfrom / 550 5.7.1 badrcptto */
	V_DISABLED = 5,   /* 550 5.2.1 mailbox disabled (a directory user's accountStatus) */
};

/* login verdicts (M_AUTH_RESULT, M_POP_RESULT): lookup's answer to the smtp role */
enum auth_verdict { AUTH_OK = 0, AUTH_FAIL = 1, AUTH_TEMP = 2 };

/* per-recipient delivery status */
enum dstatus {
	D_PENDING = 0,    /* not tried yet / deferred */
	D_OK = 1,         /* delivered */
	D_TEMP = 2,       /* temporary failure (deferred) */
	D_PERM = 3,       /* permanent failure: bounce */
};

/* recipients of one M_MSG_COMMIT: the queue refuses a commit of more (554), and the smtp role
 * refuses the recipient past it (smtp_commit.h), as it keeps the whole frame below
 * MSG_MAXPAYLOAD */
#define COMMIT_MAXRCPT 100000

enum msgtype {
	/* smtp -> lookup */
	M_MAIL_CHECK = 1,   /* S sender (may be "") -> M_CHECK_RESULT */
	M_RCPT_CHECK,       /* S client ip, S rcpt (localpart@domain, no <>)
	                       [, S authenticated login ("" = none): optional; non-empty = the
	                       session authenticated (SMTP AUTH) and may relay] -> M_CHECK_RESULT */
	M_CHECK_RESULT,     /* Q verdict, S text (for the log) */

	/* smtp -> queue */
	M_MSG_OPEN = 10,    /* (empty) -> M_MSG_OPENED */
	M_MSG_OPENED,       /* Q status (0 ok, else 451/452), Q msgid, + fd: data file, write only */
	M_MSG_COMMIT,       /* Q msgid, S sender, Q nrcpt, nrcpt x S rcpt, S origin
	                       (e.g. "smtp 127.0.0.1 helo=x"), Q data bytes written
	                       [, Q stage: from the control role only, QP QCREA] -> M_MSG_COMMITTED */
	M_MSG_COMMITTED,    /* Q status (250 / 451 / 452 / 554), S queue id or diagnostic */
	M_MSG_ABORT,        /* Q msgid; frame id = the session id; no reply (the data file is removed) */

	/* queue -> lookup */
	M_ROUTE = 20,       /* S rcpt, S sender -> M_ROUTE_RESULT */
	M_ROUTE_RESULT,     /* Q verdict (V_OK / V_NOUSER / V_TEMP / V_DISABLED), S diag,
	                       Q ntargets, ntargets x target (see below) */
	/* target: S channel ("local", "smtp", "qmqp": a remote address when qmqpservers is set,
	   host "qmqpservers", "cluster": another node's directory user, host = its mailHost as
	   an smtproutes relay), S host (local: "", smtp: domain or route),
	   S address (the final address), S user, Q uid, Q gid, S home,
	   S local (localpart), S ext, S domain, S instruction (delivery line: "./Maildir/",
	   "/path/mbox", "|command", or "" for the user's default), S profile (a directory
	   user's delivery profile, src/mail/ldapprof.h; "" for everyone else) */

	/* queue <-> scheduler */
	M_SCHED_ADD = 30,   /* Q msgid, Q birth, S sender, Q nrcpt, nrcpt x (Q idx, S channel,
	                       S host, S domain (of the recipient, for ETRN), Q next_try,
	                       Q attempts) */
	M_SCHED_RUN,        /* sched -> queue: Q msgid, S channel, S host, Q n, n x Q idx */
	M_SCHED_RESULT,     /* queue -> sched: Q msgid, Q idx, Q dstatus, Q next_try, S diag,
	                       Q scope (enum dscope of a D_TEMP: 1 = the destination failed) */
	M_SCHED_FLUSH,      /* anyone -> sched: retry everything now */
	M_SCHED_CTL,        /* queue -> sched: Q op (0 = forget every item of the message,
	                       1 = make them ready now), Q msgid */

	/* queue -> the role that runs a channel (mda: local, prog; mta: smtp, qmqp, cluster, lmtp):
	   one delivery request, the same for every transport (ternd/dreq.h); fd = the message file,
	   read only (LF line ends) */
	M_DELIVER = 40,     /* Q job, Q msgid, S channel, S host, S sender, Q size (bytes of the
	                       message), Q arrival (unix time it was queued), Q n (1..DREQ_MAXRCPT),
	                       n x (Q idx, target fields (as above): channel and host equal the
	                       request's). host is the scheduler thread's host: for smtp a domain (MX
	                       lookup) or, from smtproutes or an address literal, "name:port" /
	                       "[1.2.3.4]:port" / "[2001:db8::1]:port" (no MX lookup); for qmqp
	                       "qmqpservers"; for cluster the other node's mailHost as a relay */
	M_DELIVERED,        /* that role -> queue: Q job, Q msgid, Q n, n x (Q idx, Q dstatus,
	                       Q scope (enum dscope: 1 = a temporary failure of the destination, not
	                       of the recipient), S diag, S remote host "name[addr]" or ""). A request
	                       may be answered in several of these; each recipient once. */

	/* mda <-> parent */
	M_FORK_LOCAL = 50,  /* mda -> parent: Q job, Q uid, Q gid, S home, Q argc, argc x S arg,
	                       fd = message (becomes stdin). Parent replies M_FORKED. */
	M_FORKED,           /* Q job, Q status (0 started / -1 failed), fd = read end of the
	                       child's stdout+stderr pipe */
	M_CHILD_EXIT,       /* parent -> mda: Q job, Q wait status (also of a prog run) */
	M_FORK_PROG,        /* mda -> parent: Q job, S channel (a prog row of the parent's own
	                       table: it takes program, account and time limit from there), S host
	                       (%h), S sender (%s; "" = <>), S name (the message's queue id),
	                       fd = message (becomes the program's fd 0). Parent replies M_FORKED
	                       with the mda's end of the address/reply socket (doc/PROG.md) */

	/* anyone -> parent */
	M_LOG_REOPEN = 60,

	/* 70, 71: retired (the mta's own request and result, now M_DELIVER / M_DELIVERED) */

	/* mta -> lookup: DNS (lookup owns the resolver) */
	M_MX_RESOLVE = 80,  /* S name, Q mode (0 = MX then A/AAAA fallback, 1 = A/AAAA of name only)
	                       -> M_MX_RESULT */
	M_MX_RESULT,        /* Q status (enum mxstatus), S diag, Q n, n x (Q preference, S host name,
	                       S address — numeric IPv4 or IPv6), in the order to try them */

	/* smtp (ETRN) / ternctl -> scheduler, via queue */
	M_SCHED_ETRN = 90,  /* S domain -> M_SCHED_ETRN_RESULT */
	M_SCHED_ETRN_RESULT,/* Q recipients made ready now (0 = nothing queued for it;
	                       SCHED_ETRN_DOWN from the queue: no scheduler now, try later) */

	/* ---- management (the control role asks the owners; it keeps no state) ---- */

	/* control -> scheduler: its view, for MAILQ v2, ternctl stats and metrics */
	M_SCHED_SNAPSHOT = 100, /* Q kind (0 = totals and threads, 1 = also the items of the thread
	                           S channel S host) -> M_SCHED_SNAPSHOT_RESULT */
	M_SCHED_SNAPSHOT_RESULT,/* Q now, Q started, Q msgs_in, Q msgs_out, Q rcpts_in, Q rcpts_out,
	                           Q kids (runs in flight), Q nmsgs, Q nrcpts,
	                           Q nchannels, each: S name, Q limit, Q inflight, Q nthreads;
	                           Q nthreads, each: S channel, S host, Q nmsgs, Q nrcpts,
	                             Q attempts (the most of any item), Q oldest (earliest birth),
	                             Q next (earliest wake-up, 0 = ready now; a dead thread's:
	                             its probe time), Q inflight, Q window, Q perhost (the
	                             window's cap), Q state (0 alive, 1 dead: nothing runs until
	                             next, 2 probe: one job runs to test it; sched_core.h);
	                           Q nitems (kind 1), each: Q msgid, S sender, Q idx, Q expiry,
	                             Q next, Q lastfeed (last run), Q attempts,
	                             S reason ("" / "channel" / "thread" / "dead" when ready but
	                             waiting),
	                             S diag (last diagnostic) */

	/* control -> queue: operations on messages; id = the requester's correlation id */
	M_Q_OP = 110,       /* Q op (enum qop), Q msgid (0 with "all" ops = every message),
	                       S arg1, S arg2 -> M_Q_OP_RESULT */
	M_Q_OP_RESULT,      /* Q status (enum qopstatus), Q count (messages affected),
	                       S text (human readable), Q newid (QOP_COPY / QOP_CREATE) */
	M_Q_LIST,           /* Q offset, Q limit -> M_Q_LIST_RESULT (oldest first) */
	M_Q_LIST_RESULT,    /* Q total, Q n, each: Q msgid, Q arrival, Q size, S sender, Q kind,
	                       Q held, Q stage, Q nslots, each slot (expanded ones left out):
	                       S address, Q state (enum slot_state), Q attempts, Q next, S diag */
	M_Q_READ,           /* Q msgid -> M_Q_READ_RESULT + fd (the data, read only) */
	M_Q_READ_RESULT,    /* Q status (enum qopstatus), S envelope text (env/<ID> as stored),
	                       Q size, Q stage; fd rides along when status is QS_OK */

	/* queue stages and their agents (Bongo QWAIT) */
	M_Q_AGENTS = 120,   /* control -> queue: Q n, n x Q stage — the stages that have agents now
	                       (sent whenever that changes; an empty list routes everything) */
	M_Q_STAGE_PUSH,     /* queue -> control: Q msgid, Q stage — the entry waits for that
	                       stage's agent */
	M_Q_STAGE_DONE,     /* control -> queue: Q msgid, Q stage, Q verdict (enum stageverdict) */

	/* control -> mta: qmail-tcpto's table */
	M_MTA_TCPTO = 130,  /* Q op (0 = list, 1 = clear) -> M_MTA_TCPTO_RESULT */
	M_MTA_TCPTO_RESULT, /* Q n, each: S address, Q since (unix time of the last timeout),
	                       Q failures; then Q cleared (entries removed by op 1, else 0) */

	/* parent -> every role: a restarted peer's fresh channel (doc/ARCHITECTURE.md, Restarts) */
	M_PEER_NEW = 140,   /* Q role (enum role of the peer), + fd: this role's end of the new
	                       socketpair to that peer */

	/* smtp (SMTP AUTH; POP3 sends M_POP_LOGIN) -> lookup; frame id = the asking session's id */
	M_AUTH_CHECK = 150, /* S service ("smtp" | "pop3"), S client ip, S mechanism ("PLAIN"
	                       "LOGIN" "CRAM-MD5" "APOP" "USER"), S login, S authzid, S secret
	                       (the password; for CRAM-MD5 / APOP the challenge sent), S response
	                       (CRAM-MD5 / APOP: the client's hex digest, else "") -> M_AUTH_RESULT */
	M_AUTH_RESULT,      /* lookup -> smtp: Q verdict (enum auth_verdict, above),
	                       Q delay ms (wait this long before answering the client),
	                       Q close (1 = too many failures: 421 / -ERR and hang up),
	                       S canonical login ("" unless the verdict is AUTH_OK) */

	/* POP3 logins (doc/IPC.md, "POP3"); frame id = the smtp role's POP3 session id, kept by
	   lookup and the parent so that M_POP_READY reaches the session that asked */
	M_POP_LOGIN = 160,  /* smtp -> lookup: S client ip, S mechanism ("USER" "APOP" "PLAIN"
	                       "LOGIN" "CRAM-MD5"), S login, S authzid (PLAIN's, else ""),
	                       S secret (the password; APOP / CRAM-MD5: the challenge sent),
	                       S response (APOP / CRAM-MD5: the client's hex digest, else "")
	                       -> M_POP_RESULT (refused), or M_POP_SPAWN to the parent (accepted) */
	M_POP_RESULT,       /* lookup -> smtp: Q verdict (enum auth_verdict, above),
	                       Q delay ms (wait before answering), Q close (1 = hang up),
	                       S text (the -ERR line's text, printable; "" = the verdict's own:
	                       a user homed on another cluster node gets "[SYS/PERM] …") */
	M_POP_SPAWN,        /* lookup -> parent: S user, Q uid, Q gid, S home, S maildir (relative
	                       to home, or absolute) -> M_POP_READY to the smtp role */
	M_POP_READY,        /* parent -> smtp: Q status (0 = the worker runs: + fd, the smtp role's
	                       end of a socketpair to tern-pop3; else refused or failed, no fd) */

	/* control -> lookup: the operator's questions about one address (ternctl verify,
	   ternctl ldaplookup; doc/ADMIN.md); answered asynchronously, with the request's id */
	M_EXPLAIN = 190,    /* S address (with EXPLAIN_UID: a uid), Q flags (EXPLAIN_DIRECTORY:
	                       also what the directory holds for it), [S password: only with
	                       EXPLAIN_PASSWORD, the last field; the sender wipes its frame
	                       (msg_wipe), the lookup role the received bytes; never logged]
	                       -> M_EXPLAIN_RESULT */
	M_EXPLAIN_RESULT,   /* lookup -> control: Q verdict (enum verdict: V_OK, V_NOUSER,
	                       V_DISABLED, V_BAD (badrcptto), V_TEMP), Q directory (enum
	                       explain_dir), S text (lines, each ending in LF, for the operator;
	                       never a password or its hash), Q password check (enum
	                       explain_pw; EXPLAIN_PW_NOTASKED without EXPLAIN_PASSWORD) */

	/* queue -> lookup: a mailing list's definition for the list channel (doc/LISTS.md) */
	M_LIST_GET = 210,   /* S list address (lowercased local@domain) -> M_LIST_RESULT */
	M_LIST_RESULT,      /* Q verdict (V_OK / V_NOUSER: not a list / V_TEMP), S diag, Q flags
	                       (MLIST_F_*), S listid ("" = from the address), then owners,
	                       members, moderators, senders: each Q n, n x S address (bounds:
	                       src/mail/mlist.h; empty lists unless V_OK) */
};

enum qop {
	QOP_REMOVE = 1,     /* delete without a bounce (ternctl remove, QP QDELE) */
	QOP_HOLD,           /* keep, deliver nothing until released */
	QOP_RELEASE,
	QOP_SCHEDULE,       /* try every live recipient now */
	QOP_KILL,           /* expire: every live recipient fails and bounces (MAILQ KILL MSG) */
	QOP_KILL_THREAD,    /* arg1 channel, arg2 host: expire the thread's recipients */
	QOP_REQUEUE,        /* route every live recipient again (REQUEUE ROUTER) */
	QOP_MOVE,           /* arg1 = target stage (QP QMOVE) */
	QOP_COPY,           /* arg1 = target stage (QP QCOPY): a new message, same data */
	QOP_SET_SENDER,     /* arg1 = new sender (agent QMOD FROM) */
	QOP_ADD_RCPT,       /* arg1 = address (agent QMOD TO / QADDM / QSTOR TO on an entry) */
	QOP_DEL_RCPT,       /* arg1 = address: its live slots end without delivery or bounce */
	QOP_FLUSH,          /* every deferred recipient of every message now (QFLUSH) */
	QOP_FAIL_RCPT,      /* arg1 = address, arg2 = diagnostic (or ""): its live slots fail
	                       and bounce to the sender (an agent's QRTS for some recipients) */
};

enum qopstatus { QS_OK = 0, QS_NOENT = 1, QS_BADARG = 2, QS_ERROR = 3, QS_NOSPACE = 4 };

enum stageverdict {
	SV_NEXT = 0,        /* the agent is done: on to the next stage with an agent, then routing */
	SV_HOLD = 1,        /* keep the entry at this stage; pushed again when the agent returns */
	SV_GONE = 2,        /* the agent deleted the entry (QDELE) */
};

/* M_EXPLAIN flags and the directory part of M_EXPLAIN_RESULT */
enum {
	EXPLAIN_DIRECTORY = 1,
	EXPLAIN_UID = 2,           /* the address field is a uid: the entry ldapc_login finds,
	                              then the route of its mail address (implies DIRECTORY) */
	EXPLAIN_PASSWORD = 4,      /* check the password field as a login would (implies
	                              DIRECTORY); control sends it only for callers with change
	                              rights, at most one a second */
};
enum explain_pw {
	EXPLAIN_PW_NOTASKED = 0,
	EXPLAIN_PW_OK = 1,
	EXPLAIN_PW_WRONG = 2,
	EXPLAIN_PW_NONE = 3,       /* no userPassword stored (or no entry, no directory) */
	EXPLAIN_PW_TEMP = 4,       /* the directory could not say */
};
enum explain_dir {
	EXPLAIN_DIR_NOTASKED = 0,  /* not asked (verify) */
	EXPLAIN_DIR_NONE = 1,      /* no directory configured (ldapserver is empty) */
	EXPLAIN_DIR_FOUND = 2,
	EXPLAIN_DIR_NOTFOUND = 3,
	EXPLAIN_DIR_TEMP = 4,      /* the directory could not answer */
};

#define SCHED_ETRN_DOWN UINT64_MAX   /* M_SCHED_ETRN_RESULT: smtp answers 458 */

enum mxstatus {
	MX_OK = 0,          /* addresses found */
	MX_NODOMAIN = 1,    /* NXDOMAIN, or no MX and no A/AAAA: permanent, 5.1.2 */
	MX_NULLMX = 2,      /* RFC 7505 null MX: permanent, 5.1.10 */
	MX_TEMP = 3,        /* SERVFAIL, timeout, resolver error: defer, 4.4.3 */
};

/* target (de)serialisation, the field order given above M_ROUTE_RESULT */
#include "lib/msg.h"
#include "mail/envelope.h"
void proto_put_target(struct msg *m, const struct target *t);
int  proto_get_target(struct msg_reader *r, struct target *t);   /* 0 / -1; t owns copies */
#endif
