/* ldapc — the lookup role's asynchronous LDAP client (OpenLDAP libldap): qmailUser entries
 * found by mail / mailAlternateAddress (and the @domain catch-all) or by a login name, and
 * user binds that check a password (ldaprebind), answered through a callback from tern's event loop (src/lib/ev.h), never blocking it on a search.
 * Owns: one connection per configured server URI (tried in order, a failing server avoided
 * with exponential back-off, reconnected on demand), the requests in flight and their
 * timers. Trusts: nothing the directory sends — a missing, garbled or ambiguous answer is
 * TABLE_TEMP, and so is a server that is down, frozen or fails TLS verification; never
 * TABLE_NOTFOUND unless a search completed with no matching entry.
 *
 * TLS: ldaps:// always, StartTLS on ldap:// when tls is set; the peer certificate is verified
 * against cafile (LDAP_OPT_X_TLS_REQUIRE_CERT demand, a new TLS context per connection). The
 * process environment gets LDAPNOINIT=1 so that /etc/ldap/ldap.conf, ~/.ldaprc and LDAP*
 * variables cannot change what tern asks for.
 *
 * Asynchronous: the TCP connect of a new connection (LDAP_OPT_CONNECT_ASYNC; its end is
 * seen on the fd from the event loop), the StartTLS request, the bind and the searches. NOT
 * asynchronous: the TLS handshake itself (ldaps://, and after StartTLS's answer), which
 * libldap runs to completion, bounded by the timeout (LDAP_OPT_NETWORK_TIMEOUT): a server
 * that accepts TCP and then stalls the handshake holds the lookup role for at most that
 * long. Loopback and LAN servers answer at once. */
#ifndef TERN_LDAPC_H
#define TERN_LDAPC_H
#include <stddef.h>
#include <stdint.h>

struct config;

struct ldapc_conf {
	const char *servers;      /* URIs separated by blanks or commas, tried in order */
	const char *basedn;
	const char *binddn;       /* "" = anonymous */
	const char *password;     /* the password itself (not file:) */
	const char *objectclass;  /* "qmailUser" */
	const char *cafile;       /* "" = the system bundle */
	const char *messagestore; /* prefix of relative mailMessageStore */
	unsigned timeout_ms;      /* per request, connect and bind included */
	int starttls;             /* StartTLS required on ldap:// */
	uint32_t defuid, defgid;  /* for entries without qmailUID/qmailGID (0 = none) */
};

/* One qmailUser entry. Strings are "" when absent; lists may be empty. Valid only during
 * the callback. */
struct ldapc_user {
	const char *dn;
	const char *uid;           /* the `uid` attribute, else the dn's first uid= RDN */
	const char *mail;          /* the `mail` attribute (first value), "" when none */
	uint32_t qmailuid, qmailgid;  /* the attributes, else the defaults (0 = none) */
	const char *messagestore;  /* absolute: relative values get ldapmessagestore prepended */
	const char *homedir;       /* homeDirectory */
	const char *mailhost;
	const char *accountstatus; /* lowercased; "" = active */
	const char *dotmode;       /* qmailDotMode */
	const char *password;      /* userPassword (first value) */
	const char *replytext;     /* mailReplyText */
	const char *program;       /* deliveryProgramPath (first value) */
	const char *const *deliverymode; size_t ndeliverymode;  /* lowercased */
	const char *const *forward; size_t nforward;            /* mailForwardingAddress */
	uint64_t quotasize, quotacount, sizemax;                /* 0 = none */
	int catchall;              /* found by the @domain catch-all, not the address itself */
	int group;                 /* the entry is also a qmailGroup: a mailing list */
	const char *bounceadmin;   /* a group's bounceAdmin (first value), "" when none */
	const char *const *values; size_t nvalues;  /* ldapc_values: "attr\tvalue" each */
};

/* status: TABLE_FOUND (u set), TABLE_NOTFOUND, TABLE_TEMP (src/mail/table.h) */
typedef void (*ldapc_cb)(void *arg, int status, const struct ldapc_user *u);

struct ldapc;
/* libldap's one-time initialisation (Cyrus SASL scans and loads its plugins, the TLS library
 * its configuration): called by the lookup role before its sandbox forbids that. */
void ldapc_preinit(void);
/* NULL when servers is empty or holds no URI (logged). Needs ev_init() first. */
struct ldapc *ldapc_new(const struct ldapc_conf *c);
/* The conf from tern.conf's ldap* keys (strings point into cfg; password read from a
 * file:PATH into pwbuf of pwsize bytes). 0 / -1 (logged). */
int ldapc_conf_from(struct ldapc_conf *out, const struct config *cfg, char *pwbuf,
                    size_t pwsize);
/* Look address up; cb is called exactly once, possibly before this returns (a dead server,
 * a bad address), never after ldapc_free (which answers TABLE_TEMP to every request left).
 * 0, or -1 when the request could not even be queued (cb not called). */
int ldapc_user(struct ldapc *l, const char *address, ldapc_cb cb, void *arg);
/* A login (qmail-ldap's auth_pop/auth_smtp rule, ldapesc_login_filter): the one entry whose
 * uid is name, or whose mail / mailAlternateAddress is name when it holds an '@' (never a
 * catch-all). No entry, or more than one (logged), is TABLE_NOTFOUND. cb as for ldapc_user
 * (catchall always 0). */
int ldapc_login(struct ldapc *l, const char *name, ldapc_cb cb, void *arg);
/* A simple bind as dn with password (ldaprebind): TABLE_FOUND = accepted, TABLE_NOTFOUND =
 * invalid credentials (or an empty dn or password, refused without asking), TABLE_TEMP =
 * the server could not say; u is always NULL. The connection's identity changes: use an
 * ldapc of its own for binds, never the one that searches. Binds on one connection go one
 * at a time. */
int ldapc_bind(struct ldapc *l, const char *dn, const char *password, ldapc_cb cb, void *arg);
/* A generic search (ldap: tables, src/ternd/lookup/lookup_tables.c): filter (already
 * escaped) under base ("" = basedn) with scope 0 base, 1 one level, 2 subtree. TABLE_FOUND
 * when an entry matched (with attr not "": an entry with a value of attr), TABLE_NOTFOUND
 * when the search completed without one, TABLE_TEMP otherwise; u is always NULL. cb as for
 * ldapc_user. */
int ldapc_search(struct ldapc *l, const char *base, int scope, const char *filter,
                 const char *attr, ldapc_cb cb, void *arg);
/* The values of attrs (NULL-terminated) of every entry filter matches under base ("" =
 * basedn; scope as ldapc_search): u->values holds "attr\tvalue" strings (attr as given),
 * u->dn the first entry's DN. TABLE_FOUND (an entry), TABLE_NOTFOUND (none), TABLE_TEMP
 * (an error, or more than max entries: never a list cut short). cb as for ldapc_user. */
int ldapc_values(struct ldapc *l, const char *base, int scope, const char *filter,
                 const char *const *attrs, size_t max, ldapc_cb cb, void *arg);
/* requests in flight or waiting for a connection */
size_t ldapc_pending(const struct ldapc *l);
/* Answers every request left TABLE_TEMP, closes the connections. Not from a callback. */
void ldapc_free(struct ldapc *l);
#endif
