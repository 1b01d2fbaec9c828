/* config — tern.conf: one table of keys (name, type, default, bounds, one-line doc), the
 * parser that fills struct config from a file, and the embedded development default.
 * Owns: the meaning of every key. Trusts: nothing in the file; every value is checked and an
 * error names file:line. Every role parses the file itself (the parent passes the path).
 *
 * File syntax: `key value...` per line, `#` starts a comment (at line start or after blank),
 * blank lines ignored, a trailing `\` continues a line. List keys may repeat (values add up)
 * and take either inline values separated by blanks/commas or a table reference
 * `file:PATH` (one value per line, # comments) / `cdb:PATH`, and for rcpthosts, badmailfrom
 * and badrcptto `ldap:PATH` (an LDAP profile, mail/ldaptable.h). Unknown key = error. */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "mail/channel.h"

/* A list value: inline strings, plus optional table references resolved by table.c */
struct cfg_list {
	char **v;          /* inline items, lowercased for domain/address lists */
	size_t n;
	char **tables;     /* "file:PATH" / "cdb:PATH" / "ldap:PATH" references, as written */
	size_t ntables;
};

#define CFG_MAXLISTEN 16
/* What a listen kind is (the one table is cfg_kinds in config.c): the role that gets its
 * sockets, the protocol spoken on them, TLS from the first octet or not, and whether its
 * listen lines take options. The parent and the smtp role ask this, never compare names. */
enum cfg_server { CFG_SERVER_SMTP = 1, CFG_SERVER_CONTROL };
enum cfg_proto { CFG_PROTO_SMTP = 1, CFG_PROTO_POP3, CFG_PROTO_MAILQ, CFG_PROTO_QP,
                 CFG_PROTO_METRICS, CFG_PROTO_QMQP };
struct cfg_kind {
	const char *name;
	uint8_t server;    /* enum cfg_server */
	uint8_t proto;     /* enum cfg_proto */
	uint8_t implicit;  /* TLS from the first octet (smtps, pop3s) */
	uint8_t options;   /* tls=, auth=, relayauth= allowed on its listen lines */
};
/* What a listener offers and demands (doc/CONFIG.md, "Listener options"): options written
 * after the address of a listen line, the rest from the kind's defaults, resolved once the
 * whole file is read (pop3: STARTTLS/STLS when a certificate is configured; pop3s: implicit).
 * Sessions read this, never the kind's name. */
enum cfg_tls { CFG_TLS_DEFAULT = 0, CFG_TLS_NONE, CFG_TLS_STARTTLS, CFG_TLS_IMPLICIT };
enum cfg_auth { CFG_AUTH_DEFAULT = 0, CFG_AUTH_NONE, CFG_AUTH_OPTIONAL, CFG_AUTH_REQUIRED };
struct cfg_policy {
	uint8_t tls;       /* enum cfg_tls: none, STARTTLS offered, or TLS from the first octet */
	uint8_t auth;      /* enum cfg_auth: AUTH not offered, offered, or required before MAIL */
	uint8_t relayauth; /* authenticated sessions may relay (1), or are treated like others */
	uint8_t relayauth_set; /* parse state: relayauth= was written */
};
struct cfg_listen {
	char kind[16];     /* smtp submission smtps mailq qp pop3 pop3s qmqp metrics */
	char addr[64];     /* numeric IPv4/IPv6 (no brackets) or "unix" */
	char path[256];    /* unix socket path when addr == "unix" */
	int port;
	uint8_t kindno;    /* index into the kind table: config_listen_kind() */
	struct cfg_policy policy;
};

/* the kind of a parsed listen line (never NULL) */
const struct cfg_kind *config_listen_kind(const struct cfg_listen *l);

struct config {
	char *path;                 /* file read, or "(embedded development default)" */
	int dev;                    /* 1 when running on the embedded default */
	/* identity */
	char *me;                   /* this host's name; default: gethostname() */
	char *smtpgreeting;         /* default: me */
	char *smtpclustercookie;    /* "" = none; the greeting ends with it (doc/CLUSTER.md) */
	uint64_t ldapclusterhops;   /* X-Tern-Cluster lines a cluster delivery refuses at */
	char *helohost;             /* default: me */
	/* processes */
	char *user;                 /* role user for lookup/mda/control: _tern */
	char *queueuser;            /* role user for queue/scheduler: _ternq */
	char *smtpuser;             /* role user for smtp: _ternsmtp */
	char *mtauser;              /* role user for mta: _ternmta */
	char *sandbox;              /* "yes" (default), "log" or "no": the roles' seccomp filters */
	char *rootdir;              /* chroot for the smtp role when root: /var/empty/tern */
	char *defaultprivs;         /* account of alias |program and /file deliveries: nobody */
	struct cfg_listen listen[CFG_MAXLISTEN];
	int nlisten;
	int loglevel;               /* 0 err .. 3 debug */
	/* paths */
	char *spool;                /* ./var/spool in dev, /var/spool/tern otherwise */
	char *libexec;              /* where tern-local lives: directory of the ternd binary */
	/* SMTP server controls (qmail-smtpd) */
	struct cfg_list locals;     /* domains delivered here */
	struct cfg_list rcpthosts;  /* domains accepted from anyone */
	struct cfg_list relayclients; /* IPs/CIDRs allowed to relay (RELAYCLIENT) */
	struct cfg_list qmqpclients;  /* IPs/CIDRs a qmqp listener accepts */
	struct cfg_list badmailfrom;  /* address or @domain */
	struct cfg_list badrcptto;
	uint64_t databytes;         /* 0 = unlimited */
	uint64_t maxrcptcount;      /* 0 = unlimited */
	uint64_t timeoutsmtpd;      /* seconds */
	uint64_t timeoutpop3d;      /* seconds a POP3 client may stay silent: 1200 */
	uint64_t maxsmtpd;          /* concurrent sessions in total */
	uint64_t maxsmtpdperip;     /* concurrent sessions per client IP (0 = unlimited) */
	uint64_t tarpitcount;       /* 0 = off */
	uint64_t tarpitdelay;       /* seconds */
	int expn;                   /* allow EXPN */
	int vrfy;                   /* answer VRFY from the users table (else 252) */
	/* TLS and AUTH of the SMTP server (issue 8) */
	char *servercert;           /* PEM: private key and chain (qmail's servercert.pem); "" none */
	char *tlsserverciphers;     /* OpenSSL cipher list for TLS <= 1.2; "" the library's */
	char *tlsprotocols;         /* "TLSv1.2 TLSv1.3" */
	char *dhfile;               /* PEM DH parameters; "" built-in groups */
	int authplaintext;          /* offer AUTH (SMTP) and plaintext logins (POP3) without TLS */
	int authprepend;            /* write the authenticated login into Received: */
	char *authmechs;            /* SASL mechanisms offered: "PLAIN LOGIN CRAM-MD5" */
	unsigned authmechmask;      /* the same as SASL_MECH_BIT()s (src/mail/sasl.h) */
	/* logins (SMTP AUTH, POP3): the lookup role's throttle and pop-before-smtp */
	uint64_t authfailclose;     /* failures per client address before 421 / close: 5 (0 = never) */
	uint64_t authfailwindow;    /* seconds failures are remembered: 600 */
	uint64_t authfaildelaymax;  /* cap of the doubling failure delay, seconds: 16 (0 = none) */
	uint64_t pbstimeout;        /* pop-before-smtp: seconds a POP3 login lets relay: 600 (0 = off) */
	/* users, aliases, routing */
	char *users;                /* "file:PATH" | "passwd:" | "any:DIR" (dev) — localpart:uid:gid:home */
	char *aliases;              /* "file:PATH" in /etc/aliases syntax, or "" */
	char *aliasempty;           /* default delivery: ./Maildir/ */
	uint64_t quotadefaultsize, quotadefaultcount;  /* users-table users without a quota */
	uint64_t quotabounce;       /* days over quota is deferred before it bounces */
	char *quotawarning;         /* the 90 % warning's text; "" = none */
	char *dotqmailcheck;        /* "strict" (default) or "qmail": which .qmail files are trusted */
	char *envnoathost;          /* default: me */
	int percenthack;
	/* scheduling (qmail-send) */
	uint64_t concurrencylocal;  /* 10 */
	uint64_t minuid;            /* 1000: users passwd: never delivers as a lower uid */
	uint64_t concurrencyremote; /* 20 */
	uint64_t queuelifetime;     /* 604800 */
	uint64_t delaywarn;         /* 14400: one delay notice after this many seconds; 0 = off */
	uint64_t retrylocal;        /* c in (sqrt(age)+c)^2 for local: 10 */
	uint64_t retryremote;       /* 20 */
	struct channel_table channels; /* built-in rows + `channel` lines (mail/channel.h) */
	/* bounces */
	char *bouncefrom;           /* MAILER-DAEMON */
	char *bouncehost;           /* default: me */
	char *doublebounceto;       /* postmaster */
	char *doublebouncehost;     /* default: the first domain of locals, else me */
	uint64_t bouncemaxbytes;    /* larger originals: header only (16384; 0 = whole message) */
	char *postmaster;           /* implicit alias of postmaster: "root" */
	/* remote delivery (issue 3 consumes these) */
	struct cfg_list smtproutes;
	struct cfg_list lists;           /* mlist.h: list address -> its directory */
	uint64_t listmodtimeout;         /* 432000: a held list message expires after this */
	struct cfg_list transports;      /* route.h: address/domain -> channel[:nexthop] */
	struct cfg_list virtualdomains;  /* qmail's: domain:prepend (src/mail/virtual.h) */
	struct cfg_list virtualusers;    /* address maildir uid gid (tables only) */
	char *qmqpservers;          /* "" or QMQP servers (mail/qmqp.h): non-local mail goes there */
	char *outgoingip;
	uint64_t timeoutconnect;    /* 60 */
	uint64_t timeoutremote;     /* 1200 */
	char *resolver;             /* ADDR[:PORT] or "" (system) */
	uint64_t smtpconnperhost;   /* outbound connections per destination: 10 */
	uint64_t smtpreusecount;    /* transactions per outbound connection (1 = no reuse): 100 */
	char *lmtpsocketdirs;       /* directories of lmtp's unix:/PATH sockets (blank-separated): "" */
	uint64_t smtpreusetime;     /* seconds an idle outbound connection waits for more: 10 */
	char *smtptls;              /* none | may (default) | encrypt | verify */
	struct cfg_list tlsdestinations; /* per-destination TLS policy (mail/tlspolicy.h) */
	/* the LDAP directory (src/ternd/lookup/ldapc.h) */
	char *ldapserver;           /* URIs separated by blanks, tried in order; "" = no LDAP */
	char *ldapbasedn;           /* search base */
	char *ldaplogin;            /* bind DN ("" = anonymous) */
	char *ldappassword;         /* password or "file:PATH" */
	uint64_t ldaptimeout;       /* seconds per request */
	int ldaprebind;             /* logins checked by binding as the user (lookup_authdir.c) */
	char *ldapobjectclass;      /* "qmailUser" */
	uint64_t ldapuid, ldapgid;  /* defaults for entries without qmailUID/qmailGID (0 = none) */
	char *ldapmessagestore;     /* prefix of relative mailMessageStore */
	char *ldapdefaultdotmode;   /* qmailDotMode of entries without one: ldaponly (default) ... */
	uint64_t ldapdefaultquotasize, ldapdefaultquotacount;  /* entries without mailQuota* */
	int ldaplocaldelivery;      /* users ldap:: an address unknown there is asked of passwd: */
	uint64_t ldapcachettl;      /* seconds a directory answer is cached (0 = no cache) */
	uint64_t ldapcachesize;     /* entries in that cache */
	int ldapcluster;            /* mailHost of another node: forward to it (channel cluster) */
	struct cfg_list ldapclusterhosts;
	int ldaptls;                /* StartTLS required on ldap:// URIs */
	char *ldapcafile;           /* CA bundle ("" = the system bundle) */
	char *tlscafile;            /* trusted CAs of the TLS client ("" = the system store) */
	char *clientcert;           /* PEM key + chain shown to servers that ask ("" = none) */
	char *tlsclientciphers;     /* TLS <= 1.2 cipher list of the client ("" = OpenSSL's) */
	char *smtpauth;             /* "file:PATH" of smarthost credentials, or "" */
	int smtpauthplaintext;      /* AUTH allowed over an unencrypted connection */
	/* spool */
	char *spoolsync;            /* "syncfs" (default) or "fsync" */
	uint64_t queuefreebytes;    /* refuse new mail below this free space; 0 = derived */
	/* management */
	char *mailq_auth;           /* MAILQ v2 auth file: "file:PATH" or "" (nobody may log in) */
	char *controlgroup;         /* group that may read through ternctl's socket; "" = queueuser's */
	struct cfg_list qp_trusted; /* queue-protocol clients authorised at the greeting */
	char *qp_secret;            /* the queue protocol's system password ("" = AUTH refused) */
	char *qp_agentpolicy;       /* "skip" or "hold": a stage agent that is down, slow, crashing */
	uint64_t qp_agenttimeout;   /* seconds an agent may take for one entry */
	uint64_t timeoutqp;         /* seconds a queue-protocol client may stay silent */
	uint64_t qp_holdretry;      /* seconds between re-pushes of held entries */
	struct cfg_list qp_stages;  /* stages announced even without an agent (hold waits there) */
};

struct cfg_error {
	char file[256];
	int line;
	char msg[256];
};

#define CFG_MAXERRS 64
#define CFG_MAXWARNS 8
struct cfg_errors {
	struct cfg_error e[CFG_MAXERRS];
	int n;
	struct cfg_error w[CFG_MAXWARNS];  /* warnings (config_parse only): not errors */
	int nw;
};

/* Load path (NULL = embedded development default) into c, after setting every default.
 * Returns 0, or -1 with errs filled (every error, not just the first). */
int config_load(struct config *c, const char *path, struct cfg_errors *errs);
/* Parse from memory (used by config_load and by the unit tests / fuzzer). */
int config_parse(struct config *c, const char *name, const char *text, size_t len,
                 struct cfg_errors *errs);
void config_free(struct config *c);
/* Whether config_parse reads the TLS server files (servercert's key and chain, dhfile) to
 * check them: on only in ternd's parent (start, -n). Off (the default) everywhere else:
 * sendmail, ternctl and the roles run as users that must not, or need not, read the key. */
void config_tls_checks(int on);
/* the server TLS settings (servercert, tlsserverciphers, tlsprotocols, dhfile) as one
 * tls_conf for tls_server_new; its strings point into c */
struct tls_conf;
void config_tls_server(const struct config *c, struct tls_conf *tc);
/* showctl: print the effective settings, one key a line with its value and its meaning. */
void config_show(const struct config *c, FILE *out);
/* membership in a domain list, case-insensitive (inline items and file: tables) */
int config_list_has(const struct cfg_list *l, const char *item);
#endif
