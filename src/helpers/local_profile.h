/* local_profile — the directory user's part of tern-local (src/helpers/local_profile.c):
 * what a -p PROFILE changes in a delivery. Also declares what tern-local.c lends it (the
 * local_ functions below the line), since both are one program.
 * Owns: this interface. Trusts: its callers, one process. */
#ifndef TERN_LOCAL_PROFILE_H
#define TERN_LOCAL_PROFILE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/buf.h"

/* -Q SIZE,COUNT,DAYS,TEXT (src/mail/mdquota.h, doc/LOCAL.md "Quotas"): a users-table user's
 * default limits, quotabounce and the quotawarning text; NULL: no default limits, 5 days, no
 * warning. Call before local_profile_parse (whose limits win). A bad one exits 111. */
void local_profile_quota_args(const char *quota);
/* The recipient (LOCAL@DOMAIN: the quota warning's To:) and -A's arrival time (unix
 * seconds, the message's age for quotabounce; NULL = absent: the age of the spool file on
 * fd 0 instead). A malformed arrival exits 111. */
void local_profile_message(const char *recip, const char *arrival);
/* Does a quota apply, or a profile: Maildir file names then carry ",S=SIZE" */
int local_profile_sized(void);
/* Decode and check the profile; DEFAULTDELIVERY is the store when it names none. A bad
 * profile exits 111 (local_die). A `table=1` profile (a users line's quota) sets only the
 * quota limits and leaves local_profile_on() 0, as without a call: then mailSizeMax and the
 * store rules below do nothing, and the quota only applies when -Q or it gives limits. */
void local_profile_parse(const char *profile, const char *aliasempty);
int local_profile_on(void);
int local_profile_dotmode(void);              /* LDAPPROF_LDAPONLY, ... (mail/ldapprof.h) */
const char *local_profile_storeline(void);    /* the store as a delivery line */
/* mailSizeMax: exits 100 when the message (msglen bytes) is larger */
void local_profile_sizemax(off_t msglen);
/* Is dir the store? It is then created only inside an existing parent directory owned by
 * the user (local_profile_make_store, exits 111 otherwise), never with its parents. */
int local_profile_is_store(const char *dir);
void local_profile_make_store(const char *dir);
/* The quota before a Maildir delivery of add bytes (dfd: the Maildir; may recount and
 * rewrite maildirsize), after it (one line appended; the 90 % warning), and before an mbox
 * append of add bytes (its size only). Over quota exits 111 (#4.2.2) until the message is
 * quotabounce days old, then 100 (#5.2.2). */
void local_profile_quota_maildir(int dfd, const char *dir, uint64_t add);
void local_profile_quota_added(int dfd, uint64_t add);
void local_profile_quota_mbox(const char *path, uint64_t add);
/* The directory's own deliveries as .qmail lines (store, &forwards, |programs) into dir,
 * as the dot mode and deliveryMode allow. */
void local_profile_lines(struct buf *dir);
/* Is an automatic reply asked for? Then local_profile_reply sends it (at most once per
 * sender per window) after the deliveries; its outcome is reported, never fatal. */
int local_profile_reply_wanted(void);
void local_profile_reply(const char *sender, const char *recip, off_t msglen);

/* --- lent by tern-local.c ------------------------------------------------------------ */
/* the one output line, then exit(code) */
void local_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* a success, told at the end with the others */
void local_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* the enhanced status for a write error's errno: "(#4.2.2)" and so on */
const char *local_werr(int e);
/* up to n bytes of the message at off; 0 at its end; -1 on error */
ssize_t local_msg_read(char *p, size_t n, off_t off);
/* one tern-queue run: head (then the message when with_msg), the envelope of sender and n
 * NUL-separated addrs; the wait status, its output in said */
int local_inject(const char *head, size_t hlen, int with_msg, const char *sender,
		 const char *addrs, size_t n, struct buf *said);
/* said as one clean string ("no output" when empty) */
const char *local_said_text(struct buf *said);
#endif
