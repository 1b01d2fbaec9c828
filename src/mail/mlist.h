/* mlist — mailing lists (MMDF's list channel, qmail-group; doc/LISTS.md): the `lists` key
 * (list address -> directory), the files of a list's directory (members, moderators,
 * senders: one address a line; config: key=value), the suffix addresses of a list
 * (LIST-owner, LIST-accept-COOKIE, LIST-reject-COOKIE), the loop check of a message's header
 * and the M_LIST_RESULT payload that carries a list from lookup to the queue.
 * Owns: those formats and their bounds. Trusts: nothing it reads — every file is checked for
 * who could have written it (as aliases files are) and every line, every payload field, is
 * checked before use. */
#ifndef TERN_MLIST_H
#define TERN_MLIST_H
#include <stddef.h>
#include <stdint.h>
#include "mail/config.h"
#include "lib/msg.h"

#define MLIST_MAXMEMBERS  10000      /* members of one list */
#define MLIST_MAXMODS     100        /* moderators */
#define MLIST_MAXSENDERS  1000       /* extra allowed senders */
#define MLIST_MAXOWNERS   10         /* owner addresses */
#define MLIST_ADDRMAX     320        /* bytes of one address */
#define MLIST_FILEMAX     (4u << 20) /* bytes of one file */
#define MLIST_IDMAX       200        /* bytes of a List-Id */
#define MLIST_COOKIEHEX   48         /* hex digits of a moderation cookie: the held message's
                                        id (16) and 16 bytes of its HMAC (32) */
#define MLIST_KEYLEN      32         /* bytes of the queue's cookie key */

#define MLIST_F_MEMBERSONLY   1u     /* only members and allowed senders may post */
#define MLIST_F_MODERATED     2u     /* every post waits for a moderator */
#define MLIST_F_SENDERCONFIRM 4u     /* every post waits for its sender's confirmation */
#define MLIST_F_HOLDOTHERS    8u     /* membersonly: a stranger's post goes to the moderators
                                        instead of bouncing */
#define MLIST_F_VERP          16u    /* one copy per member from LIST-owner-user=host@domain */
#define MLIST_F_ALL           31u

struct mlist_addrs { char **v; size_t n; };

struct mlist {
	unsigned flags;                  /* MLIST_F_* */
	char *listid;                    /* List-Id value without <>, "" = from the address */
	struct mlist_addrs owners, members, moderators, senders;
};

/* the kinds of list address (what follows the list's local part) */
enum mlist_kind { MLIST_POST = 0, MLIST_OWNER, MLIST_ACCEPT, MLIST_REJECT };

void mlist_init(struct mlist *l);
void mlist_free(struct mlist *l);

/* An address as a list file holds it: local@domain, no blanks, controls, <>, quotes or
 * commas; at most MLIST_ADDRMAX bytes. 1 good / 0 not. */
int mlist_addr_ok(const char *s, size_t n);
/* One address file (members, moderators, senders): one address a line, `#` comment lines,
 * blank lines ignored; at most max addresses. 0, or -1 with err "line N: why". */
int mlist_parse_addrs(struct mlist_addrs *a, const char *text, size_t len, size_t max,
                      char *err, size_t errlen);
/* The config file: key=value lines (# comments): membersonly, moderated, senderconfirm,
 * holdothers, verp = yes|no; owner = ADDR[,ADDR...]; listid = TEXT. An unknown key is an error.
 * 0, or -1 with err. */
int mlist_parse_config(struct mlist *l, const char *text, size_t len, char *err, size_t errlen);
/* Read the list in dir: members (required), moderators, senders, config (optional). A file
 * that is group- or world-writable, or owned by someone other than root or owner_ok, is
 * refused. TABLE_FOUND (l filled) / TABLE_TEMP (err says why). A moderated list without
 * moderators is TABLE_TEMP. */
int mlist_load(const char *dir, uint64_t owner_ok, struct mlist *l, char *err, size_t errlen);

/* The `lists` entry of a list address (lowercased local@domain): inline `addr:dir` items,
 * then each table (TABLE_COLON). TABLE_FOUND with *dir malloc'd / TABLE_NOTFOUND /
 * TABLE_TEMP. */
int mlist_find(const struct config *cfg, const char *addr, char **dir);
/* Which list address a (lowercased) local part names: the whole local part (MLIST_POST), or
 * LIST-owner, LIST-accept-COOKIE, LIST-reject-COOKIE whose LIST@domain is in `lists`.
 * TABLE_FOUND with *kind, list (LIST@domain), dir (malloc'd) and cookie (the hex, "" else);
 * TABLE_NOTFOUND; TABLE_TEMP. */
int mlist_route(const struct config *cfg, const char *local, const char *domain, int *kind,
                char *list, size_t listlen, char *cookie, size_t cookielen, char **dir);

/* Does the header (text up to the first empty line; the rest is ignored) already carry this
 * list's mark: a `Mailing-List:` field naming list, or a `List-Id:` field with <listid>?
 * 1 yes (a loop) / 0 no. */
int mlist_loop_check(const char *hdr, size_t len, const char *list, const char *listid);

/* The moderation cookie of held message id on list (lowercased address): hex of the id,
 * then of HMAC-SHA256(key, "tern-list-cookie\n" list "\n" id-hex "\n" purpose)[0..16), where
 * purpose is "moderate" or "confirm". out: MLIST_COOKIEHEX + 1 bytes. 0 / -1. */
int mlist_cookie(const unsigned char *key, size_t keylen, const char *list, uint64_t id,
                 const char *purpose, char *out);
/* Check a cookie: 1 when it is the cookie of its own id (*id set) for list and purpose, 0
 * otherwise (malformed or forged; compared in constant time). */
int mlist_cookie_check(const unsigned char *key, size_t keylen, const char *list,
                       const char *purpose, const char *cookie, uint64_t *id);

/* The M_LIST_RESULT payload: Q verdict, S diag, Q flags, S listid, then four address lists
 * (owners, members, moderators, senders), each Q n, n x S addr. mlist_get checks every
 * bound and every address: 0, or -1 (l empty, r->err set). */
void mlist_put(struct msg *out, uint64_t verdict, const char *diag, const struct mlist *l);
int mlist_get(struct msg_reader *r, uint64_t *verdict, char *diag, size_t diaglen,
              struct mlist *l);
#endif
