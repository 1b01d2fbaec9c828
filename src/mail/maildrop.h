/* maildrop — the local submission file format and its durable writer and strict parser.
 * Owns: the format of the files in <spool>/maildrop/ and the commit rule for writing them.
 * Trusts: the writer trusts its caller's envelope only after maildrop_env_check(); the parser
 * trusts nothing — any local user can put any bytes into the maildrop directory.
 *
 * Local submission (sendmail, tern-queue, tern-local's forwards) writes one file per message;
 * the queue role later picks it up and commits it into the queue. A file is:
 *
 *   TERN-MAILDROP 1\n
 *   U<uid>\n        submitting uid, decimal (informational: the pickup uses the file's owner)
 *   T<time>\n       submission time, decimal seconds since the epoch
 *   F<sender>\n     envelope sender; empty = the null sender <>
 *   R<rcpt>\n       one line per recipient, 1..MAILDROP_MAXRCPT of them, never empty
 *   O<origin>\n     optional, at most once, e.g. "sendmail uid=1000"
 *   .\n             end of envelope
 *   <message>       the message, LF line endings, ending with LF (unless empty)
 *
 * Lines appear in exactly this order. Values contain no NUL, CR, LF, other C0 control
 * character or DEL; they are well-formed UTF-8; addresses are at most MAILDROP_MAXADDR bytes,
 * the origin at most MAILDROP_MAXORIGIN. Numbers have no sign and no leading zeros.
 *
 * Commit rule (maildrop_commit): the file is written as tmp.<name>, fsynced, renamed without
 * replacing anything to <name>, and the directory is fsynced (or, when the submitter may not
 * open it — mode 1733 — the file system is synced with syncfs); only then is success reported.
 * Names never start with "tmp." or "."; the pickup ignores tmp.* files (a crash leaves them;
 * the pickup may remove those older than a day). See doc/MAILDROP.md. */
#ifndef TERN_MAILDROP_H
#define TERN_MAILDROP_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAILDROP_MAGIC      "TERN-MAILDROP 1\n"
#define MAILDROP_DIR        "maildrop"
#define MAILDROP_MAXADDR    320
#define MAILDROP_MAXRCPT    10000
#define MAILDROP_MAXORIGIN  256
#define MAILDROP_MAXUID     4294967295ULL
#define MAILDROP_MAXTIME    253402300799ULL        /* 9999-12-31T23:59:59Z */
#define MAILDROP_FILE_MODE  0644  /* the queue user must read a file owned by anyone; the
                                     directory is not listable and names carry 64 random bits */
/* No valid envelope is longer than this: the pickup may read at most this many bytes. */
#define MAILDROP_ENV_MAX (sizeof MAILDROP_MAGIC + 2 * 22 + (MAILDROP_MAXADDR + 2) * \
	(MAILDROP_MAXRCPT + 1) + MAILDROP_MAXORIGIN + 2 + 2)
#define MAILDROP_IDSZ 64          /* enough for any name maildrop_commit reports */

struct maildrop_env {
	uint64_t uid;
	int64_t time;
	char *sender;        /* "" = <> */
	char **rcpt;
	size_t nrcpt;
	char *origin;        /* NULL = absent */
	const char *why;     /* set by the parser / checker on failure: a static reason */
};

/* Envelope helpers: the struct owns its strings (xstrdup'd); free with maildrop_env_free. */
void maildrop_env_init(struct maildrop_env *e);
void maildrop_env_free(struct maildrop_env *e);
void maildrop_env_set_sender(struct maildrop_env *e, const char *sender);
void maildrop_env_set_origin(struct maildrop_env *e, const char *origin);
void maildrop_env_add_rcpt(struct maildrop_env *e, const char *rcpt);

/* Address / value checks shared by every submitter. Return 0 if valid, else -1 and *why. */
int maildrop_addr_ok(const char *a, size_t len, int empty_ok, const char **why);
/* Whole-envelope check the writer applies; -1 sets e->why. *toolong = 1 when the only
 * problem class is a length limit (tern-queue's exit 11). toolong may be NULL. */
int maildrop_env_check(struct maildrop_env *e, int *toolong);

/* Strict parser. buf holds the file (at least its first MAILDROP_ENV_MAX bytes, or all of
 * it). Returns 0 with out filled (free with maildrop_env_free) and *body_offset = the offset
 * of the message's first byte, or -1 with out->why naming the defect (and out empty). */
int maildrop_parse_env(const char *buf, size_t len, struct maildrop_env *out,
                       size_t *body_offset);
/* The same from an open file, reading from offset 0 with pread (no more than needed and never
 * more than MAILDROP_ENV_MAX). -1 sets out->why (also on a read error). */
int maildrop_parse_fd(int fd, struct maildrop_env *out, off_t *body_offset);

/* --- writer ------------------------------------------------------------------------------ */
enum maildrop_errkind {
	MAILDROP_OK = 0,
	MAILDROP_ENOQUEUE,   /* <spool>/maildrop missing or not accessible (sys_errno says which) */
	MAILDROP_ECREATE,    /* could not create the file for another reason (EROFS, ENOSPC...) */
	MAILDROP_EWRITE,     /* write, fsync or rename failed (ENOSPC, EDQUOT, EIO...) */
	MAILDROP_EREAD,      /* reading the message from the caller's fd failed */
	MAILDROP_EENV,       /* envelope rejected by maildrop_env_check */
	MAILDROP_ETOOLONG,   /* envelope rejected: an address or the recipient count too long */
	MAILDROP_EINTERNAL   /* misuse of the API */
};

struct maildrop_err {
	int kind;            /* enum maildrop_errkind */
	int sys_errno;       /* errno of the failing call, 0 if none */
	char text[512];      /* one line for the user: what failed, on which path, why */
};

struct maildrop_w;

/* Create <spool>/maildrop/tmp.<name>. env may be NULL when the envelope is not known yet
 * (tern-queue reads the message first): the message is then held in an unlinked file in the
 * same directory and copied behind the envelope by maildrop_set_env. err must stay valid
 * until commit/abort; it is filled on every failure. Never creates the directory. */
int maildrop_open(struct maildrop_w **wp, const char *spool, const struct maildrop_env *env,
                  struct maildrop_err *err);
/* Supply the envelope later (exactly once, only if open got NULL). */
int maildrop_set_env(struct maildrop_w *w, const struct maildrop_env *env);
/* Append message bytes; CRLF becomes LF (also across calls). */
int maildrop_put(struct maildrop_w *w, const void *p, size_t n);
/* Append everything read from fd until EOF (EINTR retried; a failure is MAILDROP_EREAD). */
int maildrop_put_fd(struct maildrop_w *w, int fd);
/* The temporary file's path (for a signal handler that must unlink it), or "". */
const char *maildrop_tmppath(const struct maildrop_w *w);
/* Durable commit (see the top). Frees w whatever happens; on failure the tmp file is removed.
 * idout receives the file name (the maildrop id). */
int maildrop_commit(struct maildrop_w *w, char *idout, size_t idoutsz);
/* Remove the temporary file and free w. NULL is fine. */
void maildrop_abort(struct maildrop_w *w);

/* The config file local submission programs read: $TERN_CONF if set and non-empty, else
 * /etc/tern/tern.conf if it exists, else NULL (config_load's development default). */
const char *maildrop_config_path(void);

/* One-call writer: msg/msglen first (may be NULL/0), then msgfd until EOF when msgfd >= 0. */
int maildrop_write(const char *spool, const struct maildrop_env *env, int msgfd,
                   const char *msg, size_t msglen, char *idout, size_t idoutsz,
                   struct maildrop_err *err);
#endif
