/* mailq2 — the pure parts of tern's management protocols: ZMailer's MAILQ v2
 * (PROTOCOLS.md §1: command lines, the auth file with its rights and address ACLs, the
 * challenge/response check, saytime, every reply format) and the text views built from the
 * same data for ternctl's admin socket and the metrics endpoint (mailq listing, JSON, stats,
 * OpenMetrics). Everything works on plain structs decoded from the owners' IPC answers
 * (M_SCHED_SNAPSHOT_RESULT, M_Q_LIST_RESULT); nothing here does I/O or keeps state.
 * Owns: the byte-exact formats. Trusts: nothing it parses — command lines, auth files and
 * IPC payloads are checked field by field; decoded counts are bounded by the payload size. */
#ifndef TERN_MAILQ2_H
#define TERN_MAILQ2_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "lib/buf.h"
#include "lib/msg.h"
#include "mail/config.h"

#define MQ2_LINEMAX (16 * 1024)      /* a longer command line drops the connection */

/* ---- rights (the auth file's RIGHTS field) ------------------------------------------ */
enum {
	MQ2_SNMP = 1 << 0,   /* SHOW SNMP */
	MQ2_QQ = 1 << 1,     /* SHOW QUEUE SHORT */
	MQ2_TT = 1 << 2,     /* SHOW QUEUE THREADS / THREADS2, SHOW THREAD */
	MQ2_ETRN = 1 << 3,   /* ETRN */
	MQ2_KILL = 1 << 4,   /* KILL MSG, KILL THREAD, REQUEUE ROUTER */
	MQ2_ALL = 0x1f,
};

/* ---- command lines -------------------------------------------------------------------- */
enum mq2_verb {
	MQ2_BAD = 0,         /* unknown or wrong arguments: the refusal line */
	MQ2_AUTH, MQ2_QUIT, MQ2_ETRN_CMD, MQ2_SHOW_SNMP, MQ2_SHOW_SHORT, MQ2_SHOW_THREADS,
	MQ2_SHOW_THREADS2, MQ2_SHOW_THREAD, MQ2_KILL_MSG, MQ2_KILL_THREAD, MQ2_REQUEUE,
};

struct mq2_word { const char *p; size_t n; };

struct mq2_cmd {
	enum mq2_verb verb;
	unsigned right;              /* the right it needs (0: none: AUTH, QUIT) */
	struct mq2_word vword, rest; /* the first word and what follows it (for refusals) */
	struct mq2_word arg[2];      /* AUTH user hex · ETRN domain · THREAD channel host ·
	                                MSG / ROUTER spoolid */
	size_t nargs;
};

/* Parse one line (no LF; a CR before it already removed). Never fails: an unknown line
 * gives verb MQ2_BAD. The words point into line. */
void mailq2_parse(const char *line, size_t len, struct mq2_cmd *c);
/* The refusal for c: "-MAILQ2 Unknown command, or refused by access control; VERB='…'
 * REST='…'\n" (control characters shown as '?'). */
void mailq2_refusal(struct buf *out, const struct mq2_cmd *c);

/* ---- the auth file ------------------------------------------------------------------- */
struct mq2_acl {
	int neg;                     /* '!' prefix */
	int family;                  /* AF_INET / AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
};

struct mq2_entry {
	char *user, *password;
	unsigned rights;
	struct mq2_acl *acl;
	size_t nacl;                 /* 0: any address */
	int line;
};

struct mq2_auth { struct mq2_entry *e; size_t n; };

/* Parse `user:password:RIGHTS:ACL` lines (# comments, blank lines). A bad line is reported
 * to errs (may be NULL) as name:line and left out — it never grants anything. */
struct mq2_auth *mailq2_auth_parse(const char *name, const char *text, size_t len,
                                   struct cfg_errors *errs);
void mailq2_auth_free(struct mq2_auth *a);

/* A client address: family AF_INET (4 bytes) or AF_INET6 (16); IPv4-mapped IPv6 addresses
 * are turned into IPv4 by mailq2_addr_from_sockaddr (a UNIX socket counts as 127.0.0.1). */
struct mq2_addr { int family; unsigned char a[16]; };
int mailq2_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct mq2_addr *out);
int mailq2_addr_parse(const char *text, struct mq2_addr *out);     /* numeric; 0 / -1 */

/* 1 if the entry's ACL lets addr in: the first pattern that matches decides (a '!'
 * pattern refuses), no pattern matching refuses, an empty ACL admits every address. */
int mailq2_acl_allows(const struct mq2_entry *e, const struct mq2_addr *addr);
/* 1 if any entry admits addr (else the server says "550 NO ACCESS FOR YOU"). */
int mailq2_auth_any(const struct mq2_auth *a, const struct mq2_addr *addr);
/* The first entry for user whose ACL admits addr, or NULL. */
const struct mq2_entry *mailq2_auth_find(const struct mq2_auth *a, const char *user,
                                         size_t ulen, const struct mq2_addr *addr);
/* The challenge/response check: hex == lowercase hex of MD5(challenge + password)
 * (uppercase hex accepted too); compared in constant time. 1 ok / 0 not. */
int mailq2_check_response(const char *challenge, const char *password, const char *hex,
                          size_t hexlen);
void mailq2_response(const char *challenge, const char *password, char out[33]);

/* ---- saytime --------------------------------------------------------------------------- */
/* "1d18h", "11h11m28s", "1d31m22s", "5m", "0s": days and hours when not zero, minutes and
 * seconds (when not zero) only if fewer than two of days/hours were printed. */
void mailq2_saytime(long secs, char out[48]);

/* ---- the scheduler's snapshot (M_SCHED_SNAPSHOT_RESULT, field order of proto.h) ------- */
struct mq2_chan { const char *name; uint64_t limit, inflight, nthreads; };
struct mq2_thread {
	const char *channel, *host;
	uint64_t nmsgs, nrcpts, attempts, oldest, next, inflight, window;
	uint64_t perhost;            /* the window's cap (the channel row's perhost) */
	uint64_t state;              /* MQ2_ALIVE, MQ2_DEAD (nothing runs until next), MQ2_PROBE */
};
enum { MQ2_ALIVE = 0, MQ2_DEAD = 1, MQ2_PROBE = 2 };   /* the scheduler's enum sc_state */
struct mq2_item {
	uint64_t msgid;
	const char *sender;
	uint64_t idx, expiry, next, lastfeed, attempts;
	const char *reason, *diag;
};
struct mq2_snap {
	uint64_t now, started, msgs_in, msgs_out, rcpts_in, rcpts_out, kids, nmsgs, nrcpts;
	struct mq2_chan *chans;
	struct mq2_thread *threads;
	struct mq2_item *items;
	size_t nchans, nthreads, nitems;
};
/* Decode a snapshot; the strings point into r's payload (valid while it is). The items
 * part is optional (kind 0 answers may leave it out). 0 / -1 (s is then empty). */
int mailq2_snap_decode(struct msg_reader *r, struct mq2_snap *s);
void mailq2_snap_free(struct mq2_snap *s);

/* MAILQ v2 reply bodies (lines ending in LF, not dot-stuffed yet) */
void mailq2_fmt_snmp(struct buf *out, const struct mq2_snap *s);
void mailq2_fmt_queue(struct buf *out, const struct mq2_snap *s, int threads);  /* SHORT / THREADS */
void mailq2_fmt_threads2(struct buf *out, const struct mq2_snap *s);
void mailq2_fmt_thread(struct buf *out, const struct mq2_snap *s);             /* SHOW THREAD */
/* A multi-line success: "+OK until LF.LF\n", body dot-stuffed, ".\n". */
void mailq2_multiline(struct buf *out, const char *body, size_t len);
/* Dot-stuff p/n onto out; *bol: 1 when the next byte starts a line (carried across calls). */
void mailq2_dotstuff(struct buf *out, const char *p, size_t n, int *bol);

/* ternctl stats and the OpenMetrics exposition (ending "# EOF\n") */
void mailq2_fmt_stats(struct buf *out, const struct mq2_snap *s);
void mailq2_fmt_metrics(struct buf *out, const struct mq2_snap *s);

/* ---- the queue's listing (M_Q_LIST_RESULT) ------------------------------------------------ */
struct mq2_qslot { const char *address; uint64_t state, attempts, next; const char *diag; };
struct mq2_qmsg {
	uint64_t msgid, arrival, size, kind, held, stage;
	const char *sender;
	struct mq2_qslot *slots;
	size_t nslots;
};
struct mq2_qlist { uint64_t total; struct mq2_qmsg *m; size_t n; };
int mailq2_qlist_decode(struct msg_reader *r, struct mq2_qlist *l);   /* 0 / -1 */
void mailq2_qlist_free(struct mq2_qlist *l);

/* slot state as a word: pending deferred done failed unrouted */
const char *mailq2_state_word(uint64_t state, uint64_t attempts);
/* mailq / qmail-qread listing: one block per message; then mailq2_fmt_mailq_end */
void mailq2_fmt_mailq(struct buf *out, const struct mq2_qmsg *m);
void mailq2_fmt_mailq_end(struct buf *out, uint64_t count);
/* one message as a JSON object (no trailing comma or LF) */
void mailq2_fmt_json(struct buf *out, const struct mq2_qmsg *m);
void mailq2_json_str(struct buf *out, const char *s);
/* qmail-qstat's two queue lines */
void mailq2_fmt_qstat(struct buf *out, uint64_t msgs, uint64_t rcpts);
#endif
