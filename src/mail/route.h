/* route — the routing decision: one recipient address -> verdict and delivery targets,
 * from the config (envnoathost, percenthack, locals), the aliases and the users table.
 * Pure apart from the lookups it makes (file tables, passwd, include files).
 * Owns: the order of the rules (DESIGN.md §4): bare name -> @envnoathost; percent hack for
 * local domains; an address or domain with a `transports` entry -> that channel and nexthop
 * (before every other rule, as Postfix's transport_maps); local domain -> aliases first, then users (qmail's extension rule; an
 * extension is a user only when a .qmail file tern-local would use exists under the home,
 * or when that cannot be seen, or for a directory user: its mailbox takes extensions; a
 * deleted directory account is NOUSER, a disabled one ROUTE_DISABLED, one whose mailHost is
 * another node (ldapcluster) a "cluster" target), then postmaster -> the `postmaster` key
 * (never NOUSER);
 * a domain that is not local: virtualusers (a local target writing the entry's Maildir as
 * its uid:gid; user = the address) then virtualdomains (local part prepend-localpart, routed
 * through the users table), src/mail/virtual.h;
 * anything else -> channel "smtp" with host = the domain, or, when qmqpservers is set,
 * channel "qmqp" with host "qmqpservers" (every remote address goes to those servers).
 * Trusts: the tables it is given; a lookup that cannot answer gives ROUTE_TEMP, never
 * ROUTE_NOUSER.
 *
 * Alias deliveries to `|command` or `/file` of the aliases file run as the `defaultprivs`
 * account (nobody; Postfix's default_privs) — never root, never an account of ternd's roles
 * (whose rights include ternctl's). Those of an :include: file run as the include file's
 * owner (sendmail's rule), or as defaultprivs when root or a role account owns it. In
 * development (this process runs neither as root nor as a role account) a missing
 * defaultprivs account means the running account; otherwise the recipient tempfails. Their
 * home is "/". Alias address targets that name no user are dropped with a warning in the
 * log, as long as one target remains. */
#ifndef TERN_ROUTE_H
#define TERN_ROUTE_H
#include <stddef.h>
#include <stdint.h>
#include "mail/config.h"
#include "mail/users.h"
#include "mail/aliases.h"

/* values match enum verdict in src/ternd/proto.h (V_OK, V_NOUSER, V_TEMP) */
enum route_verdict { ROUTE_OK = 0, ROUTE_NOUSER = 1, ROUTE_TEMP = 3,
	ROUTE_PENDING = 4,           /* a users question is out: ask again once it is answered */
	ROUTE_DISABLED = 5 };        /* a directory user whose accountStatus is disabled */
/* where an address goes after normalisation */
enum route_where { ROUTE_LOCAL = 0, ROUTE_REMOTE = 1, ROUTE_WTEMP = 2, ROUTE_BAD = 3 };

struct route_target {            /* field order = the target of M_ROUTE_RESULT */
	char *channel;               /* "local", "smtp", "qmqp" (qmqpservers set: host
	                                "qmqpservers"), or "cluster" (a directory user homed on
	                                another node: host = route_relay(mailHost)) */
	char *host;                  /* local: ""; smtp: see "The host of an smtp target" above */
	char *address;               /* the final address */
	char *user;                  /* local: account name; smtp: "" */
	uint64_t uid, gid;           /* local: who delivers; smtp: 0 */
	char *home;
	char *local;                 /* local part (whole, lowercased) */
	char *ext;                   /* extension after user- */
	char *domain;
	char *instruction;           /* "" = the user's default delivery; else |cmd or /file */
	char *profile;               /* a directory user's delivery profile (src/mail/ldapprof.h),
	                                else "" */
};

struct route_result {
	int verdict;                 /* enum route_verdict */
	char diag[256];              /* reason, for the log / the bounce */
	struct route_target *t;
	size_t n, cap;
};

/* The users backend as route.c sees it: fill r and return r->status (TABLE_FOUND /
 * TABLE_NOTFOUND / TABLE_TEMP), or return ROUTE_ASKED when the answer comes later (r
 * untouched): the walk goes on, ends with ROUTE_PENDING, and the caller walks again once
 * every question is answered (the hook then answers at once). NULL: users_lookup(). */
#define ROUTE_ASKED 100
typedef int (*route_user_fn)(void *arg, const char *local, const char *domain,
                             struct users_result *r);

struct route_ctx {
	const struct config *cfg;
	struct users *users;
	struct aliases *aliases;
	route_user_fn user_fn;       /* set per walk by the lookup session; NULL = users_lookup */
	void *user_arg;
	/* resolved on first use: the defaultprivs account (alias commands and files) */
	int privs_ok;
	uint64_t privs_uid, privs_gid;
	char privs_user[64];
};

void route_init(struct route_ctx *rc, const struct config *cfg, struct users *users,
                struct aliases *aliases);
/* 1 if uid is the account of one of ternd's roles (the user and queueuser keys) */
int route_role_uid(const struct config *cfg, uint64_t uid);
/* The account besides root that may own the aliases file (aliases_open's owner_ok): the
 * running account when this process runs neither as root nor as a role account
 * (development); 0 otherwise (root only). */
uint64_t route_aliases_owner(const struct config *cfg);
/* Normalise addr (`<>` stripped, bare name -> @envnoathost, domain lowercased without a
 * trailing dot, percent hack for local domains) into *local and *domain (malloc'd; NULL on
 * ROUTE_BAD) and say where it goes. */
int route_normalize(const struct config *cfg, const char *addr, char **local, char **domain);
/* Route one recipient. res is initialised here; free it with route_result_free(). Returns
 * res->verdict: ROUTE_PENDING (no targets) when rc->user_fn asked a question that is not
 * answered yet. The walk is a pure function of the answers, so walking again gives the same
 * questions in the same order. */
int route_address(struct route_ctx *rc, const char *addr, struct route_result *res);
void route_result_free(struct route_result *res);

/* --- smtproutes ------------------------------------------------------------------------ */
#define ROUTE_HOSTLEN 320        /* a host as encoded above, with its NUL */
/* One smtproutes entry `key:relay[:port]` -> key (lowercased: a domain, `.suffix`, `[literal]`
 * or "" for the default route) and host ("" = use MX for the recipient's domain; else
 * "relay:port" as encoded above). 0; -1 if the key cannot be read (key = ""); -2 if the
 * key was read (key set) but the relay part is malformed. */
int route_smtproute_parse(const char *entry, char *key, size_t keylen, char *host,
                          size_t hostlen);
/* The relay part of an entry ("", "relay", "relay:port", "[1.2.3.4]:port",
 * "[IPv6:...]:port") -> host as encoded above ("" for ""). 0 / -1 if malformed. */
/* Is mailhost another node of the cluster (ldapcluster yes, neither `me` nor one of
 * ldapclusterhosts, compared case-insensitively)? 1 yes, 0 no, -1 cannot tell. Routing and
 * POP3 logins (lookup_pop.c) ask the same. */
int route_other_node(const struct config *cfg, const char *mailhost);
int route_relay(const char *relay, char *host, size_t hostlen);
/* The host of an smtp target for a (normalised) recipient domain: ROUTE_OK with host set;
 * ROUTE_TEMP when a table cannot be read or the matching entry is malformed; ROUTE_NOUSER
 * when domain is an address literal that is not an address. diag says why. */
int route_smtp_host(const struct config *cfg, const char *domain, char *host, size_t hostlen,
                    char *diag, size_t diaglen);

/* --- transports (Postfix's transport(5)): an address or domain -> any channel ---------- */
#define ROUTE_CHANLEN 64         /* a channel name as read, with its NUL */
/* One transports value "channel[:nexthop]" -> channel and nexthop (verbatim, "" = none).
 * 0; -1 when the channel is not a name of [a-z0-9_-] (1..32) or a part is too long. */
int route_transport_value(const char *v, char *channel, size_t chlen, char *next,
                          size_t nextlen);
/* One inline entry "key:channel[:nexthop]": key (lowercased: "local@domain", "domain" or
 * ".suffix") and the value as above. 0; -1 unreadable. */
int route_transport_parse(const char *entry, char *key, size_t keylen, char *channel,
                          size_t chlen, char *next, size_t nextlen);
/* The transports entry for a normalised recipient: the address, then the domain, then its
 * .parent suffixes, longest first (address literals: the address and the literal only).
 * ROUTE_OK (found: channel and host set; host is the nexthop made ready for the channel's
 * transport, the domain when the entry names none), -1 (no entry), ROUTE_TEMP (a table
 * cannot be read, the entry is malformed, names no configured channel or a local one). */
int route_transport(const struct config *cfg, const char *local, const char *domain,
                    char *channel, size_t chlen, char *host, size_t hostlen, char *diag,
                    size_t diaglen);
#endif
