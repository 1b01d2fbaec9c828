/* cluster — the loop rules of a tern cluster (qmail-ldap's model, doc/CLUSTER.md): the
 * cluster cookie (smtpclustercookie) that a node's SMTP greeting ends with, the check of a
 * peer's greeting against it, and the X-Tern-Cluster header lines that count how often a
 * message was forwarded between nodes (ldapclusterhops).
 * Owns: the cookie's syntax, the greeting test, the header line and its counter. Trusts:
 * nothing in the greeting nor in the message — both are only compared and counted. */
#ifndef TERN_CLUSTER_H
#define TERN_CLUSTER_H
#include <stddef.h>

#define CLUSTER_COOKIE_MAX 32            /* characters of smtpclustercookie */
#define CLUSTER_FIELD      "X-Tern-Cluster"
#define CLUSTER_LOOP_DIAG  "Message is looping within cluster, giving up. (#5.4.6)"

/* 1 if c is a usable cookie: 1..CLUSTER_COOKIE_MAX printable ASCII characters, no blank */
int cluster_cookie_ok(const char *c);

/* 1 if the greeting text (a reply's text, lines separated by '\n', code removed) ends with a
 * blank followed by cookie on its last line (trailing blanks and line ends ignored); 0
 * otherwise, and always 0 for an empty cookie. The comparison is exact (case counts). */
int cluster_greeting_has_cookie(const char *text, size_t n, const char *cookie);

/* The line a cluster delivery puts in front of the message: "X-Tern-Cluster: ME\n" into out
 * (bytes of ME that are not printable ASCII become '?'). Returns its length, or -1 when out
 * is too small (out is then ""). */
int cluster_header_line(const char *me, char *out, size_t outsz);

/* Counts the X-Tern-Cluster fields of a message's header section, fed in any pieces: a field
 * is a line that starts (column 0, so never a folded continuation) with the field name in any
 * case, optional blanks, then ':'. The section ends at the first empty line (LF or CRLF);
 * what follows is ignored. */
struct cluster_hops {
	int state;
	size_t matched;                      /* characters of the field name seen on this line */
	unsigned hops;
	int done;                            /* the header section is over */
};
void cluster_hops_init(struct cluster_hops *h);
/* feed n bytes; returns 1 once the header section is over (then h->hops is final) */
int cluster_hops_feed(struct cluster_hops *h, const char *p, size_t n);
#endif
