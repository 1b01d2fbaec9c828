/* mdquota — Maildir++ quota (the `maildirsize` file of Courier's README.maildirquota, which
 * qmail-ldap's qmail-local keeps too): the pure parts. The file's first line is the quota
 * definition ("1000000S,500C"; either part may be absent), every further line "BYTES COUNT"
 * (signed: deletions may write negative lines); the usage is their sum.
 * Owns: the file's text format and the over-quota rule. Trusts: nothing it parses (the file
 * lives in the user's Maildir and anybody with the user's rights may have written it). */
#ifndef TERN_MDQUOTA_H
#define TERN_MDQUOTA_H
#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

#define MDQUOTA_MAXFILE 5120     /* a bigger maildirsize is recalculated (Courier's rule) */

struct mdquota_use {
	int64_t bytes, count;
};

/* The definition line for the limits (0 = no limit), without newline: "1000S,50C",
 * "1000S", "50C"; "" when both are 0. */
void mdquota_defline(struct buf *out, uint64_t size, uint64_t count);
/* Parse a maildirsize text: its definition line must equal want (what mdquota_defline
 * makes for the current limits), every further line two signed integers. 0 with the sum
 * in *use; -1 when malformed, when the definition differs (the limits changed), or when
 * the text has no newline at its end (a half-written line): the caller recalculates. */
int mdquota_parse(const char *text, size_t len, const char *want, struct mdquota_use *use);
/* Would adding bytes/count exceed the limits (0 = none)? A negative usage counts as 0. */
int mdquota_over(const struct mdquota_use *use, uint64_t size, uint64_t count,
                 uint64_t addbytes, uint64_t addcount);
/* One more message of size bytes in use (a Maildir scan): both sums saturate at INT64_MAX
 * instead of wrapping (a wrapped, negative sum would read as an empty mailbox). */
void mdquota_add_file(struct mdquota_use *use, uint64_t size);
/* A quota spec in Maildir++ notation ("1000000S,500C", "1000000S", "500C"; the users
 * file's 6th field): each part at most once, at least one, numbers >= 1. 0, or -1. */
int mdquota_spec_parse(const char *s, uint64_t *size, uint64_t *count);
/* tern-local's -Q argument (the mda builds it from tern.conf): the default limits of a
 * users-table user (quotadefaultsize, quotadefaultcount), quotabounce in days, then the
 * quotawarning text (may be empty, may hold commas): "SIZE,COUNT,DAYS,TEXT". */
struct mdquota_args {
	uint64_t size, count, bouncedays;
	const char *warning;         /* points into the parsed string */
};
int mdquota_args_parse(const char *s, struct mdquota_args *a);
/* Has the usage reached MDQUOTA_WARN_PCT percent of either limit (0 = none)? */
#define MDQUOTA_WARN_PCT 90
int mdquota_warn_due(const struct mdquota_use *use, uint64_t size, uint64_t count);
/* The 90 % warning as an RFC 5322 message (LF line ends) for the user `to` (LOCAL@DOMAIN):
 * From Mail Delivery System <MAILER-DAEMON>, To <to>, Subject, Date (now, local time),
 * a Message-ID made from now, usec, pid and to's domain, Auto-Submitted: auto-generated,
 * then text as the body. Control bytes in `to` become '_'. */
#include <time.h>
void mdquota_warning(struct buf *out, const char *to, const char *text, time_t now,
                     long usec, long pid);
/* The size a Maildir++ file name carries in its ",S=NNN" part; 0 ok, -1 when it has none. */
int mdquota_name_size(const char *name, uint64_t *size);
#endif
