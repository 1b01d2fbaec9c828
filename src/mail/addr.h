/* addr — RFC 5321 envelope addresses: the argument of MAIL FROM: / RCPT TO: (path, source
 * route, null sender, bare <postmaster>, quoted local parts, domain literals, then ESMTP
 * parameters), splitting local@domain and lowercasing domains. Pure: no I/O, no allocation.
 * Owns: the syntax and length limits of envelope addresses. Trusts: nothing — every input is
 * client-supplied; errors carry a short reason fit for a 501/553 reply text. */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H
#include <stddef.h>

#define ADDR_LOCAL_MAX  64     /* octets in a local part (RFC 5321 4.5.3.1.1) */
#define ADDR_DOMAIN_MAX 255    /* octets in a domain (4.5.3.1.2) */
#define ADDR_PATH_MAX   256    /* octets in a path, "<" ">" and source route included */

enum addr_kind { ADDR_SENDER, ADDR_RCPT };

struct addr {
	char mailbox[ADDR_PATH_MAX];   /* canonical "local@domain" (domain lowercased, needless
	                                  quotes removed); "" for <>; "postmaster" when bare */
	size_t local_len;              /* octets of the local part in mailbox */
	int null;                      /* <> (senders only) */
	int postmaster;                /* <postmaster> without a domain (recipients only) */
	int bracketed;                 /* the path was written inside <> */
	const char *params;            /* into the input: the ESMTP parameters, "" if none */
	int code;                      /* on error: reply code to use (501 syntax, 553 not allowed) */
	const char *why;               /* on error: short reason, e.g. "Bad address syntax" */
};

/* Parse the text after "FROM:" / "TO:" (leading blanks allowed). A path without <> is
 * tolerated (e.g. `MAIL FROM: a@b`). Returns 0, or -1 with a->code and a->why set. */
int addr_parse(const char *arg, enum addr_kind kind, struct addr *a);

/* ESMTP parameters: `KEYWORD[=VALUE]` separated by blanks. The keyword is returned upper
 * case; val is "" when absent (hasval 0). */
struct addr_param {
	char key[32];
	char val[1000];
	int hasval;
};
/* Parse the next parameter at *cur and advance it: 1 one parsed, 0 none left, -1 syntax error
 * (*why set). */
int addr_param_next(const char **cur, struct addr_param *p, const char **why);

/* Split a canonical mailbox at its last '@' outside quotes. Returns 0, or -1 when there is no
 * domain or a part does not fit. */
int addr_split(const char *mailbox, char *local, size_t lsz, char *domain, size_t dsz);
/* ASCII-lowercase a domain in place; a literal's "IPv6:" tag keeps its spelling. */
void addr_domain_lower(char *domain);
/* 1 if s (len octets) is a syntactically valid domain name or address literal, else 0. */
int addr_domain_valid(const char *s, size_t len);
/* 1 if s (len octets) is a dot-string local part (atoms separated by single dots). */
int addr_is_dot_string(const char *s, size_t len);
#endif
