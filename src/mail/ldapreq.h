/* ldapreq — the words of `ldaplookup` (qmail-ldaplookup's -u and -p), as ternctl takes them
 * on its command line and as they travel on the control socket's request line
 * (doc/ADMIN.md). Command line: `[-u] [-p] ARG` (-p: the password is read from stdin, never
 * argv, where ps would show it). Request line: `ldaplookup [-u] [-p HEX] ARG`, HEX the
 * password's bytes in hexadecimal (any byte but NUL travels on one line that way).
 * Owns: the parsing and the encoding. Trusts: nothing it parses (the request line comes from
 * any local caller the socket admits); the password it decodes goes into the caller's
 * struct, which the caller wipes (ldapreq_wipe). */
#ifndef TERN_LDAPREQ_H
#define TERN_LDAPREQ_H
#include "lib/buf.h"

#define LDAPREQ_MAXPW 1024        /* bytes of a password, its NUL included */

struct ldapreq {
	int uid;                      /* -u: arg is a uid */
	int password;                 /* -p */
	char pw[LDAPREQ_MAXPW];       /* the request line's password (ldapreq_parse) */
	const char *arg;              /* the address or uid: points into argv */
};

/* ternctl's words after `ldaplookup`: 0, or -1 (usage) */
int ldapreq_cli(char **argv, int argc, struct ldapreq *q);
/* the request line's words after `ldaplookup`: 0, or -1 (usage; q wiped) */
int ldapreq_parse(char **argv, int argc, struct ldapreq *q);
/* the request line for q, with password pw when q->password (the caller wipes b) */
void ldapreq_line(struct buf *b, const struct ldapreq *q, const char *pw);
/* zero q's password */
void ldapreq_wipe(struct ldapreq *q);
#endif
