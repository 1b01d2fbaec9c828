/* envelope — the queue's envelope file: its header (sender, recipients) and the append-only
 * per-recipient journal (doc/QUEUE.md is the contract). Pure: formats and parses bytes.
 * Owns: struct envelope and the record syntax. Trusts: nothing it parses — a damaged file
 * is reported, never guessed at. */
#ifndef TERN_ENVELOPE_H
#define TERN_ENVELOPE_H
#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

enum slot_state {
	SL_UNROUTED = 0,   /* original recipient, not routed yet */
	SL_ROUTED,         /* has a target; not final */
	SL_EXPANDED,       /* final: replaced by other slots */
	SL_DONE,           /* final: delivered */
	SL_FAILED,         /* final: failed permanently (bounce) */
	SL_DROPPED,        /* final: withdrawn by an operator or agent (no delivery, no bounce) */
};

#define TARGET_NFIELDS 12    /* 11 in records written before the profile field */
struct target {            /* where and how one slot is delivered */
	char *channel, *host, *address, *user;
	uint64_t uid, gid;
	char *home, *local, *ext, *domain, *instruction;
	char *profile;         /* a directory user's delivery profile (mail/ldapprof.h), or "" */
};

struct slot {
	int state;
	char *rcpt;            /* the address this slot was created for */
	struct target t;       /* valid when state != SL_UNROUTED and it was routed */
	uint32_t attempts;
	int64_t next;          /* next try (unix time), 0 = now */
	int64_t last;          /* time of the last result */
	char *diag;            /* last diagnostic */
	char *remote;          /* remote MTA of the last attempt ("name[addr]"), or NULL */
	char status[12];       /* enhanced status of a permanent failure */
	uint32_t parent;       /* slot it was expanded from, or itself */
	int inflight;          /* queue-process bookkeeping, not stored */
};

enum env_kind { EK_NORMAL = 0, EK_BOUNCE = 1, EK_DOUBLEBOUNCE = 2 };

struct envelope {
	uint64_t id;
	int64_t arrival;
	char *sender;          /* "" for <> */
	int kind;
	char *origin;
	struct slot *slots;
	size_t nslots, cap;
	size_t norig;          /* slots from R lines */
	int64_t bounced_upto;  /* number of P records covered by B records */
	size_t nperm;          /* P records seen */
	int64_t warned;        /* time of the W record: a delay notice was committed; 0 = none */
	uint32_t stage;        /* queue stage (Bongo): routing waits until the stages are done */
	int held;              /* an operator holds it: nothing is delivered */
	int staged;            /* the stage pipeline is over (an S record with "done") */
};

void env_init(struct envelope *e);
void env_free(struct envelope *e);
void target_free(struct target *t);
void target_copy(struct target *dst, const struct target *src);
size_t env_add_rcpt(struct envelope *e, const char *addr);   /* returns slot number */

/* the committed header, ending with ".\n" */
void env_format_header(const struct envelope *e, struct buf *out);
/* journal records (each one line ending in LF) */
void env_rec_expand(struct buf *out, uint32_t slot, size_t n, const struct target *t);
void env_rec_done(struct buf *out, uint32_t slot, int64_t when);
/* remote: the remote MTA "name[addr]" or NULL/"" (stored as "-") */
void env_rec_perm(struct buf *out, uint32_t slot, int64_t when, const char *status,
                  const char *remote, const char *diag);
void env_rec_defer(struct buf *out, uint32_t slot, int64_t when, int64_t next, uint32_t attempts,
                   const char *remote, const char *diag);
void env_rec_bounce(struct buf *out, int64_t when, uint64_t bounce_id);
/* a delay notice (RFC 3464, Action: delayed) was committed as notice_id */
void env_rec_warned(struct buf *out, int64_t when, uint64_t notice_id);
/* management records: stage (done = the pipeline is over and routing may start), hold,
 * an added recipient (a new unrouted slot), a withdrawn slot, a new sender */
void env_rec_stage(struct buf *out, uint32_t stage, int done);
void env_rec_hold(struct buf *out, int held);
void env_rec_add(struct buf *out, const char *addr);
void env_rec_drop(struct buf *out, uint32_t slot);
void env_rec_sender(struct buf *out, const char *sender);

/* Apply one record (without its LF) to e, as the queue does when it appends it. 0 / -1 */
int env_apply(struct envelope *e, const char *line, size_t len);

/* Parse a whole file: header, then journal records. *validlen = bytes up to the end of the
 * last complete record (a torn last line is not counted). 0 ok / -1 damaged (err filled). */
int env_parse(const char *text, size_t len, struct envelope *e, size_t *validlen,
              char *err, size_t errsz);

/* 1 if every slot is final */
int env_all_final(const struct envelope *e);
/* copy s into a buf replacing TAB CR LF NUL 0x1f and other controls by spaces */
void env_clean(struct buf *out, const char *s);
void env_idstr(uint64_t id, char out[17]);
int env_idparse(const char *s, uint64_t *id);
#endif
