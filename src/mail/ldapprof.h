/* ldapprof — the delivery profile of a directory (qmail-LDAP) user: what the lookup role
 * learned from the qmailUser entry that tern-local needs to deliver (qmail-lspawn hands
 * qmail-local the same through QMAILDOTMODE, QMAILMODE, QMAILFORWARDS … environment
 * variables). It travels inside the target (src/mail/route.h, the `profile` field of
 * M_ROUTE_RESULT and M_DELIVER, the envelope's E records) as one printable line, and reaches
 * tern-local as the argument of `-p`.
 * Encoding: blank-separated `key=value` words, value %XX-escaped (every byte outside
 * 0x21..0x7e, and `%` `=`), keys: store, dotmode, mode (repeated), forward (repeated),
 * program (repeated), quotasize, quotacount, sizemax, reply, table (1: a users-table user's
 * own quota, doc/LOCAL.md "Quotas"). Unknown keys are skipped (a newer
 * lookup role talking to an older tern-local); a key repeated that may not be is an error.
 * Owns: the encoding. Trusts: nothing it decodes — it comes from the journal and argv. */
#ifndef TERN_LDAPPROF_H
#define TERN_LDAPPROF_H
#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

/* deliveryMode flags (qmail-ldap's values; "normal"/"localdelivery" set none) */
enum {
	LDAPPROF_NOMBOX    = 1 << 0,   /* nombox, forwardonly, nolocal: no mailbox delivery */
	LDAPPROF_NOFORWARD = 1 << 1,   /* noforward: mailForwardingAddress ignored */
	LDAPPROF_NOPROGRAM = 1 << 2,   /* noprogram: deliveryProgramPath ignored */
	LDAPPROF_REPLY     = 1 << 3,   /* reply: mailReplyText answers the sender (vacation) */
};

/* qmailDotMode */
enum ldapprof_dotmode { LDAPPROF_LDAPONLY = 0, LDAPPROF_LDAPWITHPROG, LDAPPROF_DOTONLY,
	LDAPPROF_BOTH, LDAPPROF_NONE };

#define LDAPPROF_MAXLIST 64      /* forwards, programs */

struct ldapprof {
	char *store;                 /* absolute Maildir (ends in '/') or mbox path; "" = none */
	int dotmode;                 /* enum ldapprof_dotmode */
	unsigned mode;               /* LDAPPROF_* flags */
	char *forward[LDAPPROF_MAXLIST]; size_t nforward;
	char *program[LDAPPROF_MAXLIST]; size_t nprogram;
	uint64_t quotasize, quotacount, sizemax;   /* 0 = no limit */
	char *reply;                 /* mailReplyText, "" = none */
	int table;                   /* `table=1`: not a directory user but a users-table user
	                              * whose row has a quota; only quotasize/quotacount count */
};

void ldapprof_init(struct ldapprof *p);      /* empty: every string "", dotmode ldaponly */
void ldapprof_free(struct ldapprof *p);      /* frees the strings, leaves p empty */
/* qmailDotMode / deliveryMode words (case-insensitive) -> value; -1 if unknown. Mode words
 * give flags (0 for "normal", "localdelivery"). */
int ldapprof_dotmode(const char *word);
const char *ldapprof_dotmode_name(int dotmode);
int ldapprof_mode(const char *word, unsigned *flags);
/* the qmailDotMode words, indexed by enum ldapprof_dotmode, NULL-terminated (config.c's
 * ldapdefaultdotmode choices) */
extern const char *const ldapprof_dotmode_words[];
/* the deliveryMode word of one LDAPPROF_* flag ("nombox" …), "?" if none */
const char *ldapprof_mode_name(unsigned flag);
/* The one rule for a store (the lookup role's mapping, tern-local's check): absolute, no
 * "/../" (nor a final "/.."), no control byte, no final blank. 1 = usable. */
int ldapprof_store_ok(const char *store);
/* Append p's encoding (one line, no newline) to out. */
void ldapprof_encode(const struct ldapprof *p, struct buf *out);
/* Decode s into p (initialised here; free with ldapprof_free even on error). 0, or -1 with
 * why set (malformed escape, bad number, unknown dotmode or mode word, list too long, a
 * single-valued key twice). */
int ldapprof_decode(const char *s, struct ldapprof *p, char *why, size_t whylen);
#endif
