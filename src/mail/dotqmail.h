/* dotqmail — the pure parts of qmail-local's semantics, for tern-local: classifying one
 * .qmail line, walking the lines of a file, the extension candidates (.qmail-a-b,
 * .qmail-a-default, .qmail-default), the owner file name, the program environment
 * (EXTn/HOSTn...), the meaning of program exit codes, the qmail-queue envelope of forwards,
 * Maildir file names, and the streaming header scan that finds our own Delivered-To line.
 * Owns: nothing but the memory it returns. Trusts: nothing; every input may be hostile
 * (the bytes of a user's .qmail file, an address extension, a message header). No I/O. */
#ifndef TERN_DOTQMAIL_H
#define TERN_DOTQMAIL_H
#include <stddef.h>
#include "lib/buf.h"

enum dq_kind {
	DQ_BLANK,    /* empty after trimming trailing blanks */
	DQ_COMMENT,  /* '#...' */
	DQ_PROGRAM,  /* '|command': arg = command */
	DQ_MAILDIR,  /* '.' or '/' and ends in '/': arg = path */
	DQ_MBOX,     /* '.' or '/', no trailing '/': arg = path */
	DQ_FORWARD,  /* '&address' or any other text: arg = address */
	DQ_LIST,     /* '+list': makes the file forward-only */
	DQ_IGNORE,   /* any other '+...' line (ignored, as qmail does) */
	DQ_BAD,      /* NUL/control bytes, empty program or address, blanks inside an address */
};

struct dq_line {
	enum dq_kind kind;
	const char *arg;   /* points into the input; not NUL-terminated */
	size_t len;
	unsigned lineno;   /* 1-based, set by dotqmail_next */
};

/* Classify one line (without its '\n'). Trailing spaces, tabs and CRs are trimmed. */
enum dq_kind dotqmail_classify(const char *line, size_t len, struct dq_line *out);
const char *dotqmail_kind_name(enum dq_kind k);

/* Walk the lines of a whole file. A final line without '\n' counts; an empty input has none. */
struct dq_iter {
	const char *p, *end;
	unsigned lineno;
};
void dotqmail_iter_init(struct dq_iter *it, const char *data, size_t len);
/* 1 = *out filled, 0 = no more lines */
int dotqmail_next(struct dq_iter *it, struct dq_line *out);

/* The extension as used in file names: lowercased, '.' and '/' become ':'. Appends to out. */
void dotqmail_safe_ext(struct buf *out, const char *ext, size_t len);
/* The i-th file name to try (i = 0, 1, ...): ".qmail" DASH ext, then ".qmail" DASH
 * <ext up to a '-'> "default" from the longest prefix to the empty one. Without dash and
 * ext only ".qmail". Fills name (reset first) and *dflt = offset into ext of the part
 * matched by "default" (-1 for the exact name). 0 = produced, -1 = no more candidates. */
int dotqmail_candidate(const char *dash, const char *ext, unsigned i, struct buf *name,
		       long *dflt);
/* ".qmail" DASH ext "-owner" (reset first) */
void dotqmail_owner_name(struct buf *name, const char *dash, const char *ext);

/* EXT2..EXT4: the part of ext after the (n-1)th '-' ("" when there are fewer); n >= 1 */
const char *dotqmail_ext_part(const char *ext, int n);
/* HOST2..HOST4: length of the prefix of host before its (n-1)th-from-last '.' (the whole
 * remaining string when there are fewer dots); n >= 1 */
size_t dotqmail_host_part(const char *host, int n);

/* qmail's two forms of a sender given in tern's canonical form (a local part quoted only
 * when it must be, src/mail/addr.h). plain: qmail's internal form, the local part's quotes
 * and backslashes removed (`"a b"@x.org` -> `a b@x.org`), for SENDER and the mbox From_
 * line; a sender that is not a well-formed quoted address is copied as it is. quoted: the
 * plain form with its local part (up to the last '@') quoted again when it is not a
 * dot-string, for Return-Path. Both append to out. */
void dotqmail_sender_plain(struct buf *out, const char *s);
void dotqmail_sender_quoted(struct buf *out, const char *plain);

/* Append s to out as a header value on one line: CR, LF and NUL become '_'. */
void dotqmail_hdr_value(struct buf *out, const char *s);

/* The program environment of PROTOCOLS.md §4, plus PATH and QMAILQUEUE (so that qmail
 * tools run from a .qmail, e.g. ezmlm or forward, inject through tern-queue). */
struct dq_vars {
	const char *sender, *newsender, *recipient, *user, *home, *host, *local, *ext;
	const char *dflt;                      /* DEFAULT; NULL = not set */
	const char *dtline, *rpline, *ufline;  /* as written, with their '\n' */
	const char *path;
	const char *qmailqueue;                /* NULL = not set */
	const char *ternconf;                  /* TERN_CONF for injecting programs; NULL = not set */
};
/* NULL-terminated "KEY=value" array; free with dotqmail_env_free */
char **dotqmail_env(const struct dq_vars *v);
void dotqmail_env_free(char **env);

/* qmail-queue envelope: "F<sender>\0" then "T<addr>\0" for each of the n NUL-terminated
 * addresses packed in addrs, then "\0". Appends to out. */
void dotqmail_envelope(struct buf *out, const char *sender, const char *addrs, size_t n);

/* What a program's exit code means: 0 ok, 99 ok and stop, 64 65 70 76 77 78 100 112
 * permanent, anything else temporary. */
enum dq_prog { DQ_PROG_OK, DQ_PROG_STOP, DQ_PROG_PERM, DQ_PROG_TEMP };
enum dq_prog dotqmail_prog_status(int code);
/* What tern-queue's exit code (the qmail-queue interface) means for a forward, read as
 * qmail-local reads qmail-queue's: 0 ok; 11-40 and 115 permanent (DQ_PROG_PERM); anything
 * else temporary. *what = a short reason, *status = the enhanced status ("" for 0). */
enum dq_prog dotqmail_queue_status(int code, const char **what, const char **status);

/* Which .qmail files tern-local follows (doc/LOCAL.md, "Which .qmail files are trusted").
 * strict (dotqmailcheck strict, the default): owned by the user, the home's owner or root,
 * not world-writable, and not group-writable when the file's group has members besides its
 * owner. qmail (loose = 1): qmail-local's rule, only world-writable is refused. */
enum dq_trust { DQ_TRUST_OK, DQ_TRUST_WORLD, DQ_TRUST_OWNER, DQ_TRUST_GROUP };
struct dq_trustctx {
	unsigned long long user;       /* the recipient's uid (tern-local runs as it) */
	unsigned long long homeowner;  /* owner of HOME */
	int loose;                     /* qmail-local's rule */
	int shared_group;              /* the file's group has members besides its owner (the
	                                  caller finds out, only when dotqmail_trust_group()) */
};
struct stat;
/* The decision for the fstat of an opened .qmail file (a symlink: of its target). */
enum dq_trust dotqmail_trust(const struct stat *st, const struct dq_trustctx *c);
/* 1 if the decision depends on shared_group (a group-writable file under the strict rule) */
int dotqmail_trust_group(const struct stat *st, const struct dq_trustctx *c);
/* The owner rule alone (for a symlinked .qmail: the link's own owner). 1 = acceptable. */
int dotqmail_trust_owner(unsigned long long uid, const struct dq_trustctx *c);

/* Maildir file name "<sec>.M<usec>P<pid>_<seq>.<host>"; '/' and ':' in host are written as
 * \057 and \072 (the Maildir spec). Appends to out. */
void dotqmail_maildir_name(struct buf *out, long long sec, long usec, long pid,
			   unsigned seq, const char *host);

/* Streaming header scan: does the header section contain `needle` as a whole line
 * (byte for byte, as qmail-local compares; a trailing CR ignored)? Feed message bytes in
 * any chunks. */
enum { DQ_HS_MORE = 0, DQ_HS_FOUND = 1, DQ_HS_END = 2 };
struct dq_hscan {
	const char *needle;
	size_t nlen;
	size_t pos;      /* bytes of the current line seen */
	int match;       /* current line still equal to the needle's prefix */
	char first, last; /* first and last byte of the current line */
	int state;       /* DQ_HS_* once decided */
};
void dotqmail_hscan_init(struct dq_hscan *h, const char *needle);
/* returns DQ_HS_MORE (need more), DQ_HS_FOUND, or DQ_HS_END (end of header, not found);
 * once decided, further calls return the same answer. At end of input with DQ_HS_MORE,
 * call dotqmail_hscan_eof(). */
int dotqmail_hscan_feed(struct dq_hscan *h, const char *p, size_t n);
int dotqmail_hscan_eof(struct dq_hscan *h);
#endif
