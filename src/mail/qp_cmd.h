/* qp_cmd — the Bongo queue protocol's text (PROTOCOLS.md §2, doc/QP.md): the command-line
 * parser (one table of verbs, sub-verbs and typed arguments), entry names `<qqq>-<hex id>`,
 * reply formatting, the control-data lines (`D`/`F`/`R`/`L`) built from an envelope, and the
 * byte-stream codecs of message data (CRLF <-> LF, dot-unstuffing, the header/body split).
 * Pure: no I/O. Owns: the vocabulary and the syntax of every argument. Trusts: nothing —
 * every line and byte is client input. */
#ifndef TERN_QP_CMD_H
#define TERN_QP_CMD_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "lib/buf.h"
#include "mail/envelope.h"

#define QP_LINE_MAX  16384      /* a command line, CRLF excluded; longer: 5003 and close */
#define QP_MAXARGS   6
#define QP_MAXSTAGE  999

enum qp_verb {
	QP_NONE = 0, QP_UNKNOWN,
	/* session */
	QP_AUTH, QP_AUTH_SYSTEM, QP_PASS_SYS, QP_PASS_USER, QP_HELP, QP_NOOP, QP_QUIT,
	QP_ADDRESS_RESOLVE, QP_DOMAIN_LOCATION,
	/* creating an entry */
	QP_QCREA, QP_QSTOR_FROM, QP_QSTOR_TO, QP_QSTOR_LOCAL, QP_QSTOR_ADDRESS, QP_QSTOR_FLAGS,
	QP_QSTOR_CAL, QP_QSTOR_RAW, QP_QSTOR_MESSAGE, QP_QRUN, QP_QABRT, QP_QRCP, QP_QADDQ,
	/* reading */
	QP_QINFO, QP_QHEAD, QP_QBODY, QP_QBRAW, QP_QRETR, QP_QGREP, QP_QMIME,
	QP_QSRCH_HEADER, QP_QSRCH_BODY, QP_QSRCH_BRAW, QP_QSRCH_DOMAIN,
	/* moving */
	QP_QDELE, QP_QMOVE, QP_QCOPY, QP_QDSPC, QP_QFLUSH, QP_QWAIT, QP_QADDM,
	/* agent callback */
	QP_QMOD_FROM, QP_QMOD_TO, QP_QMOD_LOCAL, QP_QMOD_MAILBOX, QP_QMOD_FLAGS, QP_QMOD_RAW,
	QP_QRTS, QP_QDONE,
	QP_VERB_COUNT
};

/* what a verb may do (qp_cmd_flags) */
#define QPF_PRELOGIN 0x01   /* allowed before login */
#define QPF_SILENT   0x02   /* no reply when it works (Bongo's QMOD and QRTS) */
#define QPF_CALLBACK 0x04   /* only on a connection the queue opened to an agent (else 3012) */
#define QPF_USER     0x08   /* a user login (PASS USER) suffices; else only the system's
                               login (AUTH, PASS SYS, a trusted address) does */

struct qp_entry {
	unsigned stage;          /* the <qqq> the client wrote (tern looks entries up by id) */
	uint64_t id;
};

struct qp_cmd {
	enum qp_verb verb;       /* set even when the arguments are bad (UNKNOWN for the verb) */
	int argc;
	char *argv[QP_MAXARGS];  /* into the line, NUL-terminated */
	struct qp_entry ent;     /* the entry argument, when the verb has one */
	uint64_t num[QP_MAXARGS];/* numeric arguments (stage, port, offsets), by argument index */
	int hasnum[QP_MAXARGS];
	unsigned flags;          /* QPF_* of the verb; an unknown sub-verb of a known word gets
	                            the flags all its sub-verbs share; an unknown verb PRELOGIN */
	int code;                /* 0 parsed; else 3000 (unknown), 3010 (arguments), 4000 (stage) */
	const char *text;        /* the error reply's text */
};

/* Parse one line of len octets (CRLF removed); line[len] must be writable. 0, or -1 with
 * c->code/c->text set. */
int qp_cmd_parse(char *line, size_t len, struct qp_cmd *c);
const char *qp_cmd_name(enum qp_verb v);      /* "QSTOR FROM", "UNKNOWN", … */
unsigned qp_cmd_flags(enum qp_verb v);
/* the verbs, space-separated, for HELP */
void qp_cmd_help(struct buf *out);

/* `<qqq>-<hex>` (1–3 digits, 1–16 hex digits, case-insensitive) -> e. 0 / -1 */
int qp_entry_parse(const char *s, struct qp_entry *e);
/* "005-0123456789abcdef" */
void qp_entry_format(char out[24], unsigned stage, uint64_t id);

/* replies: "1000 text\r\n" (last line) / "2002-text\r\n" (more follow) */
void qp_reply(struct buf *out, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void qp_reply_more(struct buf *out, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* --- control data: one CRLF-ended line per envelope item --------------------------------- */
/* is this (normalised) recipient local? 1 yes, 0 no */
typedef int (*qp_islocal_fn)(const char *addr, void *arg);
/* D<arrival>, F<sender> -, then R<rcpt> <rcpt> 0 (remote) or L<rcpt> <rcpt> 0 (local) for
 * every live slot (unrouted or routed). The null sender is written `-`. Returns the number
 * of recipient lines. */
size_t qp_ctrl_build(struct buf *out, const struct envelope *e, qp_islocal_fn islocal, void *arg);

/* One control line split: kind ('F','R','L','D','A','X','B','M', …), first field (address)
 * and second field. Fields are copied into a/b (sizes asz/bsz). 0 / -1 (empty, overlong). */
int qp_ctrl_split(const char *line, char *kind, char *a, size_t asz, char *b, size_t bsz);

/* An address argument (QSTOR FROM/TO, QMOD, QADDM, QRTS) -> canonical address in out:
 * `<a@b>` or `a@b` (domain lowercased), a bare local part kept as is (the queue routes it
 * with envnoathost), the null sender as `-`, `<>` or "" (senders only, out = "").
 * 0 / -1 (bad syntax). */
int qp_addr(const char *arg, int sender, char *out, size_t outsz);

/* --- QDONE: what an agent's QMOD / QRTS lines mean ---------------------------------------- */
enum qp_edit_op { QPE_SENDER = 1, QPE_ADD, QPE_DEL, QPE_RETURN };
struct qp_edit { int op; char *arg; };   /* arg: the new sender / the address ("" for RETURN) */
struct qp_plan {
	struct qp_edit *v;
	size_t n;
	int returned;            /* QRTS named every live recipient: the entry goes back whole */
	int partial;             /* QRTS named only some (tern cannot return single recipients) */
	size_t ignored;          /* lines that name nothing tern keeps (or bad addresses) */
};
/* work: the agent's lines in control-line form (QMOD FROM -> "F…", TO -> "R…", LOCAL -> "L…",
 * RAW -> as sent); raw: one of them was a QMOD RAW; rts: the QRTS recipients (canonical).
 * With raw, the lines are the new envelope (Bongo: the agent rewrites the control file): its
 * F line the sender (none: unchanged), its R/L/C lines the recipients (adds, then deletes).
 * Without, they are edits: F sets the sender, R/L/C add recipients. Adds come before deletes,
 * so that the entry never has no recipient in between. */
void qp_plan_make(struct qp_plan *p, char *const *work, size_t nwork, int raw, char *const *rts,
                  size_t nrts, const struct envelope *e);
void qp_plan_free(struct qp_plan *p);

/* --- message data ---------------------------------------------------------------------- */
/* CRLF -> LF (QSTOR MESSAGE <bytes>): a CR at the end of one chunk waits for the next. */
struct qp_crlf { int cr; };
/* decode in[0..n) into out (room for n + 1 octets); returns octets written */
size_t qp_crlf_feed(struct qp_crlf *d, const char *in, size_t n, char *out);
/* end of input: a pending CR is written as is (0 or 1 octets) */
size_t qp_crlf_end(struct qp_crlf *d, char *out);

/* dot-terminated data (QSTOR MESSAGE without a size): lines end in CRLF or LF and are stored
 * with LF; a leading '.' is removed; a line that is only "." ends the data. */
struct qp_dot { int state; int done; uint64_t bytes; };
/* decode in[0..n) into out (room for n + 1 octets); *outn = octets written; returns octets
 * consumed (fewer than n when the end was reached: the rest is the next command) */
size_t qp_dot_feed(struct qp_dot *d, const char *in, size_t n, char *out, size_t *outn);

/* LF -> CRLF for the wire: out needs room for 2 n octets; returns octets written */
size_t qp_lf2crlf(const char *in, size_t n, char *out);

/* The header/body split of stored (LF) data, fed in order: the header is every line before
 * the first empty line; the empty line belongs to neither; the body is the rest. */
struct qp_split {
	int state;
	uint64_t off;            /* octets fed so far */
	uint64_t hbytes, hlf;    /* header: octets and LFs (no empty line: the whole data) */
	uint64_t bstart;         /* file offset of the body (valid when found) */
	int found;               /* the empty line was seen */
	uint64_t blf;            /* LFs in the body so far */
};
void qp_split_init(struct qp_split *s);
void qp_split_feed(struct qp_split *s, const char *p, size_t n);
/* wire sizes (CRLF line ends) once everything was fed */
uint64_t qp_split_hwire(const struct qp_split *s);
uint64_t qp_split_bwire(const struct qp_split *s, uint64_t total);

/* Does the header line (without its LF) name field? ("Subject" or "Subject:", any case) */
int qp_hdr_is(const char *line, size_t n, const char *field);
/* case-insensitive substring search; returns the offset or -1 */
long qp_find(const char *hay, size_t n, const char *needle, size_t m);

/* The Received: line of an entry made by the protocol (LF line ends) */
void qp_received(struct buf *out, const char *ip, const char *me, uint64_t id, time_t when);
#endif
