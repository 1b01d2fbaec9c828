/* autoreply — the pure parts of a directory user's automatic reply (deliveryMode reply,
 * mailReplyText; RFC 3834): whether a message may be answered, the reply itself, and the
 * small "already answered" memory that keeps it to one reply per sender per window.
 * Owns: those decisions and formats; tern-local does the I/O. Trusts: nothing — the header
 * and the memory file are read as hostile text. */
#ifndef TERN_AUTOREPLY_H
#define TERN_AUTOREPLY_H
#include <stddef.h>
#include <time.h>
#include "lib/buf.h"

#define AUTOREPLY_WINDOW  (7 * 24 * 3600)   /* one reply per sender per 7 days */
#define AUTOREPLY_MAXMEM  1000              /* entries kept in the memory file */

/* The first header field called name (case-insensitive) in the header section hdr (up to
 * the first empty line, LF or CRLF), unfolded, blanks trimmed, CR/LF/NUL and other control
 * bytes turned into blanks. 1 found (value in out, replacing it), 0 absent. */
int autoreply_header(const char *hdr, size_t len, const char *name, struct buf *out);
/* Why this message must not be answered, or NULL: an empty or "#@[]" sender, a sender
 * whose local part is MAILER-DAEMON, postmaster, listserv, majordomo, owner-*, *-owner,
 * *-request or (no-)reply-ish; a header section that does not end inside hdr when hdr is
 * not the whole message (whole = 0: a field past what was read could forbid the reply);
 * Precedence bulk/list/junk; List-Id or List-Unsubscribe; Auto-Submitted other than "no";
 * and (RFC 3834 §2) no To, Cc, Resent-To or Resent-Cc field naming recip, the address the
 * message was delivered to. recip is compared whole and case-insensitively, local part
 * included (directory addresses match case-insensitively), standing between address
 * delimiters; only the first 2000 bytes of each field are looked at. */
const char *autoreply_refuse(const char *sender, const char *recip, const char *hdr,
                             size_t len, int whole);
/* The same with several addresses of the user (tern-reply's RECIPIENT and its -a
 * addresses): the To/Cc rule is met when any of the n addresses is named. */
const char *autoreply_refuse_any(const char *sender, const char *const *recips, size_t n,
                                 const char *hdr, size_t len, int whole);
/* The reply message (LF line ends) to `to` from `from` with body text: Auto-Submitted:
 * auto-replied, Subject "Re: " + the original's (once), In-Reply-To / References from the
 * original's Message-ID and References, a Date and a Message-ID made from now, pid and
 * from's domain. */
void autoreply_build(struct buf *out, const char *from, const char *to, const char *hdr,
                     size_t len, const char *text, time_t now, long pid);
/* The memory: lines "SECONDS ADDRESS". Returns 1 when addr (case-insensitive) was answered
 * within the window before now, else 0; newmem (reset) gets the entries still inside the
 * window (at most AUTOREPLY_MAXMEM - 1, the newest), then addr with now when 0 is
 * returned. Malformed lines are dropped. */
int autoreply_seen(const char *mem, size_t len, const char *addr, time_t now,
                   struct buf *newmem);
/* The same with a window of `window` seconds (> 0) instead of AUTOREPLY_WINDOW. */
int autoreply_seen_for(const char *mem, size_t len, const char *addr, time_t now,
                       long long window, struct buf *newmem);
/* An interval as tern-reply's -t takes it: a decimal number of seconds, or followed by one
 * unit s, m, h, d or w; from 1 second to AUTOREPLY_INTERVAL_MAX. 0 (*secs set) / -1. */
#define AUTOREPLY_INTERVAL_MAX (365LL * 24 * 3600)
int autoreply_interval(const char *s, long long *secs);
#endif
