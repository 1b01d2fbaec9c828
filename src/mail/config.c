/* config — the one table of tern.conf keys (name, type, default, bounds, doc, offset into
 * struct config), the parser that applies a file to it, the embedded development default,
 * and showctl. See config.h for the syntax.
 * Owns: the meaning and the default of every key. Trusts: nothing in the text it parses —
 * every value is checked, every error is collected with file:line and parsing goes on.
 *
 * config_parse() and config_load() initialise *c from scratch (every default first, then
 * the file, then the defaults derived from `me`); call config_free() before reusing c.
 * Defaults go through the same setters as file values, so a default is checked like one. */
#include "mail/config.h"
#include "mail/ldapprof.h"
#include "mail/cluster.h"
#include "mail/ldaptable.h"
#include "mail/table.h"
#include "mail/tlspolicy.h"
#include "mail/sasl.h"
#include "mail/qmqp.h"
#include "mail/route.h"
#include "lib/buf.h"
#include "lib/netaddr.h"
#include "lib/tls.h"
#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CFG_DEVNAME    "(embedded development default)"
#define CFG_MAXLINE    65536
#define CFG_MAXVALUE   4096
#define CFG_MAXDEPTH   8
#define CFG_MAXFILE    (16u * 1024 * 1024)

enum cfg_type {
	CT_STR,        /* rest of the line, blanks allowed */
	CT_WORD,       /* one word */
	CT_OPTWORD,    /* one word or "" */
	CT_UINT,       /* uint64_t in [min,max] */
	CT_INT,        /* int in [min,max] */
	CT_BOOL,       /* yes/no/on/off/1/0/true/false */
	CT_LIST,       /* struct cfg_list: items and table references, repeatable */
	CT_IPLIST,     /* the same, items are addresses or networks */
	CT_LISTEN,     /* listen KIND ADDR:PORT, repeatable */
	CT_USERS,      /* file:PATH | passwd: | any:DIR */
	CT_ALIASES,    /* "" | file:PATH | /PATH */
	CT_IP,         /* "" or a numeric address */
	CT_HOSTPORT,   /* "" or ADDR[:PORT] / [IPv6]:PORT */
	CT_CHOICE,     /* one word out of cfg_choices[] */
	CT_FILE,       /* "" or a readable file */
	CT_CERT,       /* "" or a PEM file with a private key and its certificate chain */
	CT_PROTOCOLS,  /* TLS protocol versions (tls_protocols_parse) */
	CT_MECHS,      /* SASL mechanisms (sasl_mech_parse) */
	CT_LDAPURIS,   /* "" or ldap://, ldaps://, ldapi:// URIs separated by blanks */
	CT_SECRET,     /* "" or a word, or file:PATH of a readable file */
	CT_OPTSTR,     /* rest of the line, blanks allowed, or "" */
	CT_QMQPSERVERS,/* "" or IP[:PORT] / [IPv6][:PORT] items (mail/qmqp.h) */
	CT_CHANNEL,    /* channel NAME key=value ..., repeatable (mail/channel.h) */
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;
	const char *def;        /* as written in a file; NULL = none or derived from `me` */
	uint64_t min, max;
	const char *doc;
};

#define O(f) offsetof(struct config, f)
#define U64MAX 18446744073709551615ull
static const struct cfg_key cfg_keys[] = {
	{ "me", CT_WORD, O(me), NULL, 0, 0, "this host's name; default for the names below (default: gethostname())" },
	{ "smtpgreeting", CT_STR, O(smtpgreeting), NULL, 0, 0, "text after 220 in the SMTP greeting (default: me)" },
	{ "smtpclustercookie", CT_OPTWORD, O(smtpclustercookie), "", 0, 0, "cluster identifier (1-32 printable characters, no blank; not a secret) that ends the SMTP greeting; a peer whose greeting ends with it is a node of this cluster (doc/CLUSTER.md)" },
	{ "ldapclusterhops", CT_UINT, O(ldapclusterhops), "3", 1, 100, "a cluster delivery of a message that already carries this many X-Tern-Cluster header lines fails (5.4.6): forwarding between nodes is bounded" },
	{ "helohost", CT_WORD, O(helohost), NULL, 0, 0, "name sent in EHLO/HELO by outbound SMTP (default: me)" },
	{ "user", CT_WORD, O(user), "_tern", 0, 0, "unprivileged user of the lookup, mda and control roles" },
	{ "queueuser", CT_WORD, O(queueuser), "_ternq", 0, 0, "user of the queue and scheduler roles (owns the spool)" },
	{ "smtpuser", CT_WORD, O(smtpuser), "_ternsmtp", 0, 0, "user of the smtp role (network-facing: an account of its own)" },
	{ "mtauser", CT_WORD, O(mtauser), "_ternmta", 0, 0, "user of the mta role (network-facing: an account of its own)" },
	{ "sandbox", CT_CHOICE, O(sandbox), "yes", 0, 0, "seccomp filter of each role: yes (a forbidden system call kills the role, logged), log (the kernel logs it and lets it pass), no" },
	{ "rootdir", CT_WORD, O(rootdir), "/var/empty/tern", 0, 0, "empty directory the smtp role chroots into when started as root" },
	{ "defaultprivs", CT_WORD, O(defaultprivs), "nobody", 0, 0, "unprivileged account that runs alias |program and /file deliveries (Postfix's default_privs); never a role account" },
	{ "listen", CT_LISTEN, O(listen), NULL, 0, 0, "KIND ADDR:PORT [OPTION=VALUE...] | KIND unix:PATH; KIND = smtp submission smtps mailq qp pop3 pop3s qmqp metrics; options tls=none|starttls|implicit auth=none|optional|required relayauth=yes|no" },
	{ "loglevel", CT_INT, O(loglevel), "2", 0, 3, "0 errors, 1 warnings, 2 info, 3 debug" },
	{ "spool", CT_WORD, O(spool), "/var/spool/tern", 0, 0, "queue directory, owned by queueuser" },
	{ "libexec", CT_OPTWORD, O(libexec), "", 0, 0, "directory of tern-local, tern-pop3 and tern-queue (default: the directory of the ternd binary)" },
	{ "locals", CT_LIST, O(locals), NULL, 0, 0, "domains delivered on this host (default: me)" },
	{ "rcpthosts", CT_LIST, O(rcpthosts), NULL, 0, 0, "domains accepted from any client besides locals; `.example.com` covers subdomains; also ldap:PROFILE (doc/LDAP.md, Tables)" },
	{ "relayclients", CT_IPLIST, O(relayclients), NULL, 0, 0, "client addresses/networks allowed to relay anywhere (RELAYCLIENT)" },
	{ "qmqpclients", CT_IPLIST, O(qmqpclients), NULL, 0, 0, "client addresses/networks a `listen qmqp` socket accepts (others are closed at once); file: tables are read when the smtp role starts (SIGHUP re-reads them), cdb: is not supported" },
	{ "badmailfrom", CT_LIST, O(badmailfrom), NULL, 0, 0, "senders refused at MAIL: address or @domain; also ldap:PROFILE (doc/LDAP.md, Tables)" },
	{ "badrcptto", CT_LIST, O(badrcptto), NULL, 0, 0, "recipients refused at RCPT: address or @domain; also ldap:PROFILE (doc/LDAP.md, Tables)" },
	{ "databytes", CT_UINT, O(databytes), "10485760", 0, 4294967295ull, "maximum message size accepted over SMTP (0 = unlimited); SIZE advertises it" },
	{ "maxrcptcount", CT_UINT, O(maxrcptcount), "1000", 0, 1000000, "maximum recipients per message (0 = unlimited)" },
	{ "timeoutsmtpd", CT_UINT, O(timeoutsmtpd), "1200", 1, 86400, "seconds an SMTP client may stay silent" },
	{ "timeoutpop3d", CT_UINT, O(timeoutpop3d), "1200", 1, 86400, "seconds a POP3 client may stay silent (qmail-popup's and qmail-pop3d's timeout)" },
	{ "maxsmtpd", CT_UINT, O(maxsmtpd), "20000", 1, 1000000, "concurrent inbound sessions in total, SMTP and POP3 together; also the most POP3 workers at once" },
	{ "maxsmtpdperip", CT_UINT, O(maxsmtpdperip), "100", 0, 1000000, "concurrent inbound sessions per client address, SMTP and POP3 together (0 = unlimited)" },
	{ "tarpitcount", CT_UINT, O(tarpitcount), "0", 0, 1000000, "recipients after which each RCPT is delayed (0 = never)" },
	{ "tarpitdelay", CT_UINT, O(tarpitdelay), "5", 0, 3600, "seconds of delay per RCPT once tarpitting" },
	{ "expn", CT_BOOL, O(expn), "0", 0, 0, "answer EXPN (otherwise 502)" },
	{ "vrfy", CT_BOOL, O(vrfy), "0", 0, 0, "answer VRFY from the users table (otherwise 252)" },
	{ "servercert", CT_CERT, O(servercert), "", 0, 0, "PEM file with the server's private key and certificate chain (qmail's servercert.pem); enables STARTTLS, smtps, POP3's STLS and pop3s" },
	{ "tlsserverciphers", CT_OPTWORD, O(tlsserverciphers), "", 0, 0, "OpenSSL cipher list of the TLS server for TLS 1.2 and older (default: OpenSSL's)" },
	{ "tlsprotocols", CT_PROTOCOLS, O(tlsprotocols), "TLSv1.2 TLSv1.3", 0, 0, "TLS versions the server accepts and the SMTP client offers: TLSv1 TLSv1.1 TLSv1.2 TLSv1.3" },
	{ "dhfile", CT_FILE, O(dhfile), "", 0, 0, "PEM DH parameters for DHE ciphers (default: built-in groups)" },
	{ "authplaintext", CT_BOOL, O(authplaintext), "0", 0, 0, "offer SMTP AUTH and POP3's plaintext logins (USER/PASS, AUTH PLAIN/LOGIN) on connections without TLS (passwords in the clear)" },
	{ "authprepend", CT_BOOL, O(authprepend), "0", 0, 0, "name the authenticated login in the Received: header (otherwise only the log has it)" },
	{ "authmechs", CT_MECHS, O(authmechs), "PLAIN LOGIN CRAM-MD5", 0, 0, "SASL mechanisms offered by SMTP AUTH and POP3 AUTH, in this order: PLAIN LOGIN CRAM-MD5 (CRAM-MD5 works only for users whose pwhash is {PLAIN}; POP3 takes it but does not list it in CAPA)" },
	{ "authfailclose", CT_UINT, O(authfailclose), "5", 0, 1000000, "failed logins (SMTP AUTH, POP3) from one client address within authfailwindow after which it is refused and disconnected until the window passes (0 = never)" },
	{ "authfailwindow", CT_UINT, O(authfailwindow), "600", 1, 86400, "seconds a failed login is remembered for the throttle (per client address and per login)" },
	{ "authfaildelaymax", CT_UINT, O(authfaildelaymax), "16", 0, 3600, "most seconds a login answer is delayed: 1 s after one failure, doubling with each consecutive one (0 = no delay)" },
	{ "pbstimeout", CT_UINT, O(pbstimeout), "600", 0, 86400, "seconds a client address that logged in over POP3 may relay (pop-before-smtp; 0 = off)" },
	{ "users", CT_USERS, O(users), "passwd:", 0, 0, "users table: file:PATH (localpart:uid:gid:home[:pwhash[:quota]]), passwd:, any:DIR, or ldap: (qmailUser entries of the ldapserver directory)" },
	{ "minuid", CT_UINT, O(minuid), "1000", 0, 4294967294ull, "with users passwd: (and ldap:, for qmailUID), accounts with a lower uid get no deliveries (system accounts); defaultprivs excepted" },
	{ "aliases", CT_ALIASES, O(aliases), "", 0, 0, "aliases file in /etc/aliases syntax (file:PATH), or none" },
	{ "dotqmailcheck", CT_CHOICE, O(dotqmailcheck), "strict", 0, 0, "which .qmail files tern-local trusts: strict (owned by the user, the home's owner or root; not writable by a shared group or others) or qmail (only world-writable refused)" },
	{ "aliasempty", CT_STR, O(aliasempty), "./Maildir/", 0, 0, "default delivery when a user has no .qmail file" },
	{ "quotadefaultsize", CT_UINT, O(quotadefaultsize), "0", 0, U64MAX, "Maildir++ size limit (bytes) of users-table users whose line has no quota (0 = no limit; directory users: ldapdefaultquotasize)" },
	{ "quotadefaultcount", CT_UINT, O(quotadefaultcount), "0", 0, U64MAX, "Maildir++ message-count limit of users-table users whose line has no quota (0 = no limit)" },
	{ "quotabounce", CT_UINT, O(quotabounce), "5", 0, 3650, "days a message is deferred (4.2.2) for an over-quota mailbox before it bounces (5.2.2); 0 = bounce at once" },
	{ "quotawarning", CT_STR, O(quotawarning), NULL, 0, 0, "text of the warning put into a Maildir at 90 % of its quota (once a day); empty = no warning" },
	{ "envnoathost", CT_WORD, O(envnoathost), NULL, 0, 0, "domain added to addresses without one (default: me)" },
	{ "percenthack", CT_BOOL, O(percenthack), "0", 0, 0, "rewrite user%host@local-domain to user@host" },
	{ "concurrencylocal", CT_UINT, O(concurrencylocal), "10", 1, 10000, "simultaneous local deliveries" },
	{ "concurrencyremote", CT_UINT, O(concurrencyremote), "20", 1, 10000, "simultaneous remote deliveries" },
	{ "queuelifetime", CT_UINT, O(queuelifetime), "604800", 0, 315360000, "seconds a message may stay in the queue before it bounces" },
	{ "delaywarn", CT_UINT, O(delaywarn), "14400", 0, 315360000, "seconds after arrival at which the sender of a message still not delivered to a recipient already tried gets one RFC 3464 delay notice (0 = never)" },
	{ "retrylocal", CT_UINT, O(retrylocal), "10", 0, 86400, "c in the local retry schedule birth+(sqrt(age)+c)^2, never sooner than max(1, sqrt(age)) s after the last try" },
	{ "retryremote", CT_UINT, O(retryremote), "20", 0, 86400, "c in the remote retry schedule birth+(sqrt(age)+c)^2, never sooner than max(1, sqrt(age)) s after the last try" },
	{ "channel", CT_CHANNEL, O(channels), NULL, 0, 0, "NAME transport=local|smtp|qmqp|cluster|prog|lmtp|list concurrency=N perhost=N retry=N recipients=N grouphost=yes|no [prog: program=\"/PATH args %h %s\" user=ACCOUNT timeout=SECONDS]: change a built-in channel (local, smtp, qmqp, cluster, prog, lmtp, list; defaults from concurrencylocal/remote, retrylocal/remote, smtpconnperhost) or declare another one using a transport (doc/CONFIG.md, doc/PROG.md)" },
	{ "bouncefrom", CT_WORD, O(bouncefrom), "MAILER-DAEMON", 0, 0, "local part of the From: of bounces" },
	{ "bouncehost", CT_WORD, O(bouncehost), NULL, 0, 0, "domain of the From: of bounces (default: me)" },
	{ "doublebounceto", CT_WORD, O(doublebounceto), "postmaster", 0, 0, "recipient of bounces that could not be delivered" },
	{ "doublebouncehost", CT_WORD, O(doublebouncehost), NULL, 0, 0, "domain of doublebounceto (default: the first domain in locals, else me)" },
	{ "bouncemaxbytes", CT_UINT, O(bouncemaxbytes), "16384", 0, 4294967295ull, "a larger original is returned as its header only in a bounce (0 = always all of it)" },
	{ "postmaster", CT_WORD, O(postmaster), "root", 0, 0, "where mail for postmaster goes when no user or alias postmaster exists: a local part or address, expanded like an alias target" },
	{ "virtualdomains", CT_LIST, O(virtualdomains), NULL, 0, 0, "qmail's virtual domains: domain:prepend, .suffix:prepend, user@domain:prepend, :prepend (all); user@domain becomes local part prepend-user (that user's .qmail files); domain: = not virtual; list the domains in rcpthosts too" },
	{ "virtualusers", CT_LIST, O(virtualusers), NULL, 0, 0, "virtual mailboxes, file:/cdb: tables only: `address /path/Maildir/ uid gid` or `address uid:gid:/path/Maildir/`; `@domain` catch-all; a bare `domain` line lists the domain (unknown addresses 5.1.1); list the domains in rcpthosts too" },
	{ "smtproutes", CT_LIST, O(smtproutes), NULL, 0, 0, "domain:relay[:port] routes for outbound SMTP (empty domain = all)" },
	{ "lists", CT_LIST, O(lists), NULL, 0, 0, "mailing lists: listaddress:directory (members, moderators, senders, config files; doc/LISTS.md); a list address goes to channel list" },
	{ "listmodtimeout", CT_UINT, O(listmodtimeout), "432000", 1, 315360000, "seconds a list message held for moderation or sender confirmation waits before it is removed with a notice to its sender" },
	{ "transports", CT_LIST, O(transports), NULL, 0, 0, "address, domain or .domain:channel[:nexthop] routes to any channel, before every other rule (Postfix's transport_maps)" },
	{ "qmqpservers", CT_QMQPSERVERS, O(qmqpservers), "", 0, 0, "QMQP servers IP[:PORT] or [IPv6][:PORT] (port 628), tried in order: when set, every non-local recipient goes to them over QMQP (mini-qmail) instead of SMTP" },
	{ "outgoingip", CT_IP, O(outgoingip), "", 0, 0, "source address of outbound SMTP connections (default: any)" },
	{ "timeoutconnect", CT_UINT, O(timeoutconnect), "60", 1, 3600, "seconds to wait for an outbound SMTP connection" },
	{ "timeoutremote", CT_UINT, O(timeoutremote), "1200", 1, 86400, "seconds to wait for a remote SMTP server's reply" },
	{ "resolver", CT_HOSTPORT, O(resolver), "", 0, 0, "DNS server ADDR[:PORT] (default: the system's resolv.conf)" },
	{ "smtpconnperhost", CT_UINT, O(smtpconnperhost), "10", 1, 1000, "default perhost of the smtp, qmqp and cluster channels: jobs (connections) at once to one destination" },
	{ "smtpreusecount", CT_UINT, O(smtpreusecount), "100", 1, 100000, "messages sent over one outbound connection before it is closed (1 = no reuse)" },
	{ "smtpreusetime", CT_UINT, O(smtpreusetime), "10", 0, 3600, "seconds an idle outbound connection is kept for the next message to its destination" },
	{ "lmtpsocketdirs", CT_OPTSTR, O(lmtpsocketdirs), "", 0, 0, "absolute directories (blank-separated) under which the lmtp channel may connect to unix:/PATH sockets; empty: no unix sockets, and the mta's sandbox allows no AF_UNIX socket (doc/LMTP.md)" },
	{ "smtptls", CT_CHOICE, O(smtptls), "may", 0, 0, "TLS of outbound SMTP: none (never STARTTLS), may (STARTTLS when offered, plaintext if the handshake fails), encrypt (required, else defer 4.7.x), verify (required, certificate chain and MX host name verified)" },
	{ "tlsdestinations", CT_LIST, O(tlsdestinations), NULL, 0, 0, "per-destination smtptls: KEY=LEVEL items or file:PATH of `KEY LEVEL [match=NAME]` lines (KEY: domain, .suffix, relay, [addr]:port)" },
	{ "tlscafile", CT_OPTWORD, O(tlscafile), "", 0, 0, "PEM bundle of the CAs outbound TLS trusts (default: the system store)" },
	{ "clientcert", CT_OPTWORD, O(clientcert), "", 0, 0, "PEM private key and chain the mta shows to servers that ask for a client certificate (default: none)" },
	{ "tlsclientciphers", CT_OPTWORD, O(tlsclientciphers), "", 0, 0, "OpenSSL cipher list of outbound TLS 1.2 (default: OpenSSL's)" },
	{ "smtpauth", CT_OPTWORD, O(smtpauth), "", 0, 0, "file:PATH of `KEY USER:PASSWORD` lines: AUTH PLAIN/LOGIN credentials per smarthost (root-only file, read before the mta drops privileges)" },
	{ "smtpauthplaintext", CT_BOOL, O(smtpauthplaintext), "0", 0, 0, "send AUTH credentials over an unencrypted connection too (default: only over TLS)" },
	{ "spoolsync", CT_CHOICE, O(spoolsync), "syncfs", 0, 0, "group commit: syncfs (one sync of the spool's file system per batch) or fsync (each file)" },
	{ "queuefreebytes", CT_UINT, O(queuefreebytes), "0", 0, U64MAX, "refuse new mail (452 4.3.1) below this much free spool space (0 = 2 x databytes, at least 20 MiB)" },
	{ "mailq_auth", CT_OPTWORD, O(mailq_auth), "", 0, 0, "MAILQ v2 users: file:PATH with user:password:RIGHTS:ACL lines (empty = nobody)" },
	{ "controlgroup", CT_OPTWORD, O(controlgroup), "", 0, 0, "group whose members may read through ternctl's socket (default: queueuser's group)" },
	{ "qp_trusted", CT_IPLIST, O(qp_trusted), NULL, 0, 0, "queue-protocol clients (addresses/networks) authorised at the greeting" },
	{ "qp_secret", CT_OPTWORD, O(qp_secret), "", 0, 0, "queue-protocol system password for AUTH and PASS SYS (empty = refused)" },
	{ "qp_agentpolicy", CT_CHOICE, O(qp_agentpolicy), "skip", 0, 0, "a stage agent down, slow or crashing: skip its stage, or hold the entry" },
	{ "qp_agenttimeout", CT_UINT, O(qp_agenttimeout), "60", 1, 86400, "seconds a stage agent may take for one entry" },
	{ "timeoutqp", CT_UINT, O(timeoutqp), "600", 1, 86400, "seconds a queue-protocol client may stay silent" },
	{ "qp_holdretry", CT_UINT, O(qp_holdretry), "30", 1, 86400, "seconds between pushes of entries held for a missing stage agent" },
	{ "qp_stages", CT_LIST, O(qp_stages), NULL, 0, 0, "stages (0-999) that exist even when no agent is registered: with hold, mail waits there" },
	{ "ldapserver", CT_LDAPURIS, O(ldapserver), "", 0, 0, "LDAP servers, one or more ldap://HOST[:PORT]/, ldaps://HOST[:PORT]/ or ldapi://PATH/ URIs tried in this order (a server that fails or times out is avoided with back-off); empty = no LDAP" },
	{ "ldapbasedn", CT_OPTSTR, O(ldapbasedn), "", 0, 0, "search base of the qmailUser lookups (subtree)" },
	{ "ldaplogin", CT_OPTSTR, O(ldaplogin), "", 0, 0, "DN of the simple bind to the LDAP servers (empty = anonymous)" },
	{ "ldappassword", CT_SECRET, O(ldappassword), "", 0, 0, "password of ldaplogin, or file:PATH whose first line is it (read as root before privileges are dropped)" },
	{ "ldaptimeout", CT_UINT, O(ldaptimeout), "30", 1, 3600, "seconds an LDAP request (connect, bind, search) may take before the lookup answers tempfail" },
	{ "ldaprebind", CT_BOOL, O(ldaprebind), "0", 0, 0, "check directory users' SMTP AUTH and POP3 passwords by binding as the user's DN (on a connection of its own) instead of comparing userPassword, for directories that do not disclose userPassword (qmail-ldap's ldaprebind); CRAM-MD5 and APOP still need a cleartext userPassword" },
	{ "ldapobjectclass", CT_WORD, O(ldapobjectclass), "qmailUser", 0, 0, "objectClass of the user entries searched" },
	{ "ldapuid", CT_UINT, O(ldapuid), "0", 0, 4294967294ull, "uid of entries without qmailUID (0 = none: such entries have no uid)" },
	{ "ldapgid", CT_UINT, O(ldapgid), "0", 0, 4294967294ull, "gid of entries without qmailGID (0 = none)" },
	{ "ldapmessagestore", CT_OPTWORD, O(ldapmessagestore), "", 0, 0, "prefix of relative mailMessageStore values (qmail-ldap's ldapmessagestore)" },
	{ "ldapdefaultdotmode", CT_CHOICE, O(ldapdefaultdotmode), "ldaponly", 0, 0, "qmailDotMode of entries without one: ldaponly, ldapwithprog, dotonly, both, none" },
	{ "ldapdefaultquotasize", CT_UINT, O(ldapdefaultquotasize), "0", 0, U64MAX, "mailQuotaSize (bytes) of entries without one (qmail-ldap's defaultquotasize; 0 = no limit)" },
	{ "ldapdefaultquotacount", CT_UINT, O(ldapdefaultquotacount), "0", 0, U64MAX, "mailQuotaCount (messages) of entries without one (qmail-ldap's defaultquotacount; 0 = no limit)" },
	{ "ldaplocaldelivery", CT_BOOL, O(ldaplocaldelivery), "0", 0, 0, "with users ldap:, an address the directory does not know is looked up in passwd: (system accounts) next (qmail-ldap's ldaplocaldelivery)" },
	{ "ldapcachettl", CT_UINT, O(ldapcachettl), "60", 0, 86400, "seconds a directory user's answer (found or not found; never a temporary failure) is cached by the lookup role (0 = no cache)" },
	{ "ldapcachesize", CT_UINT, O(ldapcachesize), "10000", 0, 10000000, "most directory answers kept in that cache (the oldest go first)" },
	{ "ldapcluster", CT_BOOL, O(ldapcluster), "0", 0, 0, "forward a directory user whose mailHost is another node (neither me nor in ldapclusterhosts) to that node (channel cluster)" },
	{ "ldapclusterhosts", CT_LIST, O(ldapclusterhosts), NULL, 0, 0, "other names of this node for the mailHost comparison (case-insensitive)" },
	{ "ldaptls", CT_BOOL, O(ldaptls), "0", 0, 0, "StartTLS required on ldap:// servers (ldaps:// always speaks TLS); the certificate is verified against ldapcafile (demand)" },
	{ "ldapcafile", CT_FILE, O(ldapcafile), "", 0, 0, "PEM CA bundle the LDAP client trusts (default: /etc/ssl/certs/ca-certificates.crt); ldap.conf and LDAP* variables are ignored" },
};

static const char *const cfg_spoolsync_values[] = { "syncfs", "fsync", NULL };
static const char *const cfg_policy_values[] = { "skip", "hold", NULL };
static const char *const cfg_dotqmail_values[] = { "strict", "qmail", NULL };
static const char *const cfg_sandbox_values[] = { "yes", "log", "no", NULL };
static const char *const cfg_smtptls_values[] = { "none", "may", "encrypt", "verify", NULL };
static const struct { const char *key; const char *const *values; } cfg_choices[] = {
	{ "spoolsync", cfg_spoolsync_values },
	{ "qp_agentpolicy", cfg_policy_values },
	{ "dotqmailcheck", cfg_dotqmail_values },
	{ "sandbox", cfg_sandbox_values },
	{ "smtptls", cfg_smtptls_values },
	{ "ldapdefaultdotmode", ldapprof_dotmode_words },
};
#undef O
#define CFG_NKEYS (sizeof cfg_keys / sizeof cfg_keys[0])

/* the embedded development default, applied as if it were a file; bare names and double
 * bounces go to localhost so that they stay local (locals is only localhost here) */
static const char cfg_devtext[] =
	"listen smtp 127.0.0.1:2525\n"
	"spool ./var/spool\n"
	"locals localhost\n"
	"users any:./var/mail\n"
	"envnoathost localhost\n"
	"doublebouncehost localhost\n";

struct cfg_parse {
	struct config *c;
	struct cfg_errors *errs;
	const char *name;          /* file being parsed */
	int line;
	int nerr;
	int depth;
	int setline[CFG_NKEYS];    /* where each key was (last) set (0 = default) */
	char *setfile[CFG_NKEYS];
	int listenline[CFG_MAXLISTEN];   /* where each listen line is */
	char *listenfile[CFG_MAXLISTEN];
	int chanline[CHANNEL_MAX];       /* where each channel row was declared (0 = built in) */
	char *chanfile[CHANNEL_MAX];
};

static void cfg_err(struct cfg_parse *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cfg_err(struct cfg_parse *ps, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ps->nerr++;
	table_error(ps->errs, ps->name, ps->line, "%s", msg);
}

/* a warning: ternd -n and the parent's start print it; nothing is refused */
static void cfg_warn(struct cfg_parse *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cfg_warn(struct cfg_parse *ps, const char *fmt, ...)
{
	va_list ap;
	if (!ps->errs || ps->errs->nw >= CFG_MAXWARNS)
		return;
	struct cfg_error *w = &ps->errs->w[ps->errs->nw++];
	snprintf(w->file, sizeof w->file, "%s", ps->name);
	w->line = ps->line;
	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof w->msg, fmt, ap);
	va_end(ap);
}

static void *cfg_field(struct config *c, const struct cfg_key *k)
{
	return (char *)c + k->off;
}

/* ---------------------------------------------------------------- values */

static int cfg_isblank(char c) { return c == ' ' || c == '\t'; }

static int cfg_has_blank(const char *v)
{
	for (; *v; v++)
		if (cfg_isblank(*v))
			return 1;
	return 0;
}

/* strip one pair of surrounding double quotes in place */
static void cfg_unquote(char *v)
{
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		memmove(v, v + 1, n - 2);
		v[n - 2] = '\0';
	}
}

static void cfg_set_string(struct config *c, const struct cfg_key *k, const char *v)
{
	char **f = cfg_field(c, k);
	free(*f);
	*f = xstrdup(v);
}

static int cfg_set_word(struct cfg_parse *ps, const struct cfg_key *k, char *v, int emptyok)
{
	cfg_unquote(v);
	if (!*v && !emptyok) {
		cfg_err(ps, "%s: empty value", k->name);
		return -1;
	}
	if (k->type != CT_STR && k->type != CT_OPTSTR && k->type != CT_QMQPSERVERS &&
	    cfg_has_blank(v)) {
		cfg_err(ps, "%s: expected one word, got '%s'", k->name, v);
		return -1;
	}
	cfg_set_string(ps->c, k, v);
	return 0;
}

static int cfg_set_number(struct cfg_parse *ps, const struct cfg_key *k, const char *v)
{
	uint64_t n;
	if (str_to_u64(v, 0, U64MAX, &n) < 0) {
		cfg_err(ps, "%s: bad number '%s'", k->name, v);
		return -1;
	}
	if (n < k->min || n > k->max) {
		cfg_err(ps, "%s: %s is out of bounds (%llu..%llu)", k->name, v,
		        (unsigned long long)k->min, (unsigned long long)k->max);
		return -1;
	}
	if (k->type == CT_INT)
		*(int *)cfg_field(ps->c, k) = (int)n;
	else
		*(uint64_t *)cfg_field(ps->c, k) = n;
	return 0;
}

static int cfg_set_bool(struct cfg_parse *ps, const struct cfg_key *k, const char *v)
{
	static const char *const yes[] = { "yes", "on", "1", "true" };
	static const char *const no[] = { "no", "off", "0", "false" };
	for (size_t i = 0; i < 4; i++) {
		if (str_casecmp(v, yes[i]) == 0 || str_casecmp(v, no[i]) == 0) {
			*(int *)cfg_field(ps->c, k) = str_casecmp(v, yes[i]) == 0;
			return 0;
		}
	}
	cfg_err(ps, "%s: expected yes/no/on/off/1/0/true/false, got '%s'", k->name, v);
	return -1;
}

static int cfg_check_readable(struct cfg_parse *ps, const char *what, const char *path)
{
	if (!*path) {
		cfg_err(ps, "%s: empty path", what);
		return -1;
	}
	if (access(path, R_OK) < 0) {
		cfg_err(ps, "%s: cannot read table file %s: %s", what, path, strerror(errno));
		return -1;
	}
	return 0;
}

static void cfg_list_add(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = xstrdup(s);
}

/* The keys whose ldap:PATH tables the lookup role asks asynchronously in the MAIL/RCPT
 * checks (src/ternd/lookup/lookup_tables.c); every other key refuses ldap:. */
static int config_ldap_table_ok(const char *key)
{
	return strcmp(key, "rcpthosts") == 0 || strcmp(key, "badmailfrom") == 0 ||
	       strcmp(key, "badrcptto") == 0;
}

/* ldap:PATH: the profile is read and checked now (its errors name PATH:line) */
static int cfg_list_ldap(struct cfg_parse *ps, const struct cfg_key *k, struct cfg_list *l,
                         const char *item)
{
	struct ldaptable t;
	if (!config_ldap_table_ok(k->name)) {
		cfg_err(ps, "%s: ldap: tables are not supported for %s (only rcpthosts, "
		        "badmailfrom, badrcptto)", k->name, k->name);
		return -1;
	}
	if (!item[5]) {
		cfg_err(ps, "%s: ldap: needs the path of an LDAP profile (ldap:PATH)", k->name);
		return -1;
	}
	if (ldaptable_load(item + 5, &t, ps->errs) < 0) {
		cfg_err(ps, "%s: unusable LDAP profile %s", k->name, item + 5);
		return -1;
	}
	ldaptable_free(&t);
	cfg_list_add(&l->tables, &l->ntables, item);
	return 0;
}

static int cfg_list_item(struct cfg_parse *ps, const struct cfg_key *k, char *item)
{
	struct cfg_list *l = cfg_field(ps->c, k);
	if (strncmp(item, "file:", 5) == 0 || strncmp(item, "cdb:", 4) == 0) {
		if (cfg_check_readable(ps, k->name, strchr(item, ':') + 1) < 0)
			return -1;
		cfg_list_add(&l->tables, &l->ntables, item);
		return 0;
	}
	if (strncmp(item, "ldap:", 5) == 0 && strcmp(k->name, "lists") == 0) {
		cfg_err(ps, "lists: only inline entries and file:PATH or cdb:PATH tables, not '%s'", item);
		return -1;
	}
	if (strncmp(item, "ldap:", 5) == 0)
		return cfg_list_ldap(ps, k, l, item);
	if (strcmp(k->name, "virtualusers") == 0) {     /* inline items would be lowercased */
		cfg_err(ps, "virtualusers: only file:PATH or cdb:PATH tables, not '%s'", item);
		return -1;
	}
	if (k->type == CT_IPLIST && table_ip_match(item, "127.0.0.1") < 0) {
		cfg_err(ps, "%s: bad address or network '%s'", k->name, item);
		return -1;
	}
	/* lowercased up to `cut`: transports keep the nexthop's case (lmtp's unix:/PATH), lists
	 * their directory's */
	char *c1 = strchr(item, ':'), *cut = NULL;
	if (strcmp(k->name, "transports") == 0)
		cut = c1 ? strchr(c1 + 1, ':') : NULL;
	else if (strcmp(k->name, "lists") == 0)
		cut = c1;
	if (cut)
		*cut = '\0';
	str_lower(item);
	if (cut)
		*cut = ':';
	cfg_list_add(&l->v, &l->n, item);
	return 0;
}

static int cfg_set_list(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	int rc = 0;
	char *save = NULL;
	for (char *t = strtok_r(v, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save))
		if (cfg_list_item(ps, k, t) < 0)
			rc = -1;
	return rc;
}

/* ---------------------------------------------------------------- TLS files */

static int cfg_tls_checks;              /* config_tls_checks() */

void config_tls_checks(int on)
{
	cfg_tls_checks = on;
}

static int cfg_set_file(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	cfg_unquote(v);
	if (*v && cfg_tls_checks && access(v, R_OK) < 0) {
		cfg_err(ps, "%s: cannot read %s: %s", k->name, v, strerror(errno));
		return -1;
	}
	cfg_set_string(ps->c, k, v);
	return 0;
}

/* readable, a private key that matches the first certificate; expired is only a warning */
static int cfg_set_cert(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	char err[256], date[64];
	time_t expires = 0;
	if (cfg_set_file(ps, k, v) < 0)
		return -1;
	if (!*v || !cfg_tls_checks)
		return 0;
	if (tls_cert_check(v, &expires, err, sizeof err) < 0) {
		cfg_err(ps, "%s: %s: %s", k->name, v, err);
		return -1;
	}
	if (expires && expires < time(NULL)) {
		struct tm tm;
		gmtime_r(&expires, &tm);
		strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm);
		cfg_warn(ps, "%s: the certificate in %s expired on %s", k->name, v, date);
	}
	return 0;
}

static int cfg_set_protocols(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	int minv, maxv;
	cfg_unquote(v);
	if (tls_protocols_parse(v, &minv, &maxv) < 0) {
		cfg_err(ps, "%s: '%s' is not a list of TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", k->name, v);
		return -1;
	}
	cfg_set_string(ps->c, k, v);
	return 0;
}

/* the mechanisms offered by SMTP AUTH, checked and kept in the order written */
static int cfg_set_mechs(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	unsigned mask = 0;
	struct buf b;
	cfg_unquote(v);
	buf_init(&b);
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, " ,\t");
		int m = n ? sasl_mech_parse(p, n) : -2;
		if (m == -1) {
			cfg_err(ps, "%s: unknown mechanism '%.*s' (PLAIN, LOGIN, CRAM-MD5)", k->name,
			        (int)(n > 64 ? 64 : n), p);
			buf_free(&b);
			return -1;
		}
		if (m >= 0 && !(mask & SASL_MECH_BIT(m)))
			buf_printf(&b, "%s%s", mask ? " " : "", sasl_mech_name(m));
		if (m >= 0)
			mask |= SASL_MECH_BIT(m);
		p += n ? n : 1;
	}
	if (!mask) {
		cfg_err(ps, "%s: no mechanism", k->name);
		buf_free(&b);
		return -1;
	}
	cfg_set_string(ps->c, k, b.p);
	ps->c->authmechmask = mask;
	buf_free(&b);
	return 0;
}

/* ---------------------------------------------------------------- listen */

/* every listen kind: the role serving it, its protocol, implicit TLS, options allowed */
static const struct cfg_kind cfg_kinds[] = {
	{ "smtp",       CFG_SERVER_SMTP,    CFG_PROTO_SMTP,    0, 1 },
	{ "submission", CFG_SERVER_SMTP,    CFG_PROTO_SMTP,    0, 1 },
	{ "smtps",      CFG_SERVER_SMTP,    CFG_PROTO_SMTP,    1, 1 },
	{ "mailq",      CFG_SERVER_CONTROL, CFG_PROTO_MAILQ,   0, 0 },
	{ "qp",         CFG_SERVER_CONTROL, CFG_PROTO_QP,      0, 0 },
	{ "pop3",       CFG_SERVER_SMTP,    CFG_PROTO_POP3,    0, 0 },
	{ "pop3s",      CFG_SERVER_SMTP,    CFG_PROTO_POP3,    1, 0 },
	{ "qmqp",       CFG_SERVER_SMTP,    CFG_PROTO_QMQP,    0, 0 },
	{ "metrics",    CFG_SERVER_CONTROL, CFG_PROTO_METRICS, 0, 0 },
};
#define CFG_NKINDS (sizeof cfg_kinds / sizeof cfg_kinds[0])

const struct cfg_kind *config_listen_kind(const struct cfg_listen *l)
{
	return &cfg_kinds[l->kindno < CFG_NKINDS ? l->kindno : 0];
}

static int cfg_port(const char *s, int *port)
{
	uint64_t p;
	if (str_to_u64(s, 1, 65535, &p) < 0)
		return -1;
	*port = (int)p;
	return 0;
}

/* ADDR:PORT, [IPv6]:PORT, unix:PATH into l; -1 if malformed */
static int cfg_listen_addr(char *a, struct cfg_listen *l)
{
	if (strncmp(a, "unix:", 5) == 0) {
		if (!a[5] || strlen(a + 5) >= sizeof l->path)
			return -1;
		snprintf(l->addr, sizeof l->addr, "unix");
		snprintf(l->path, sizeof l->path, "%s", a + 5);
		return 0;
	}
	return netaddr_parse(a, 0, l->addr, sizeof l->addr, &l->port);  /* a port is required */
}

/* one word of a listen option's value out of words[]: its index + 1, or 0 */
static int cfg_option_word(const char *v, const char *const *words)
{
	for (int i = 0; words[i]; i++)
		if (str_casecmp(v, words[i]) == 0)
			return i + 1;
	return 0;
}

/* OPTION=VALUE after the address (doc/CONFIG.md, "Listener options") */
static int cfg_listen_option(struct cfg_parse *ps, struct cfg_listen *l, char *opt)
{
	static const char *const tls[] = { "none", "starttls", "implicit", NULL };
	static const char *const auth[] = { "none", "optional", "required", NULL };
	static const char *const yesno[] = { "yes", "no", NULL };
	char *eq = strchr(opt, '=');
	int w = 0;
	if (!eq) {
		cfg_err(ps, "listen: expected OPTION=VALUE, got '%s'", opt);
		return -1;
	}
	*eq = '\0';
	if (!config_listen_kind(l)->options) {
		cfg_err(ps, "listen: %s listeners take no options", l->kind);
		return -1;
	}
	if (strcmp(opt, "tls") == 0 && (w = cfg_option_word(eq + 1, tls)) > 0)
		l->policy.tls = (uint8_t)w;          /* CFG_TLS_NONE.. in this order */
	else if (strcmp(opt, "auth") == 0 && (w = cfg_option_word(eq + 1, auth)) > 0)
		l->policy.auth = (uint8_t)w;
	else if (strcmp(opt, "relayauth") == 0 && (w = cfg_option_word(eq + 1, yesno)) > 0) {
		l->policy.relayauth = w == 1;
		l->policy.relayauth_set = 1;
	} else if (strcmp(opt, "tls") == 0 || strcmp(opt, "auth") == 0 ||
	           strcmp(opt, "relayauth") == 0) {
		cfg_err(ps, "listen: bad value '%s' for %s (%s)", eq + 1, opt,
		        opt[0] == 't' ? "none, starttls, implicit" :
		        opt[0] == 'a' ? "none, optional, required" : "yes, no");
		return -1;
	} else {
		cfg_err(ps, "listen: unknown option '%s' (tls, auth, relayauth)", opt);
		return -1;
	}
	return 0;
}

static int cfg_set_listen(struct cfg_parse *ps, char *v)
{
	struct config *c = ps->c;
	char *save = NULL, *kind = strtok_r(v, " \t", &save);
	char *addr = strtok_r(NULL, " \t", &save);
	if (!kind || !addr) {
		cfg_err(ps, "listen: expected KIND ADDR:PORT");
		return -1;
	}
	size_t i;
	for (i = 0; i < CFG_NKINDS; i++)
		if (strcmp(kind, cfg_kinds[i].name) == 0)
			break;
	if (i == CFG_NKINDS) {
		cfg_err(ps, "listen: unknown kind '%s' (smtp submission smtps mailq qp pop3 pop3s qmqp metrics)", kind);
		return -1;
	}
	if (c->nlisten >= CFG_MAXLISTEN) {
		cfg_err(ps, "listen: too many listen lines (at most %d)", CFG_MAXLISTEN);
		return -1;
	}
	struct cfg_listen l;
	memset(&l, 0, sizeof l);
	snprintf(l.kind, sizeof l.kind, "%s", kind);
	l.kindno = (uint8_t)i;
	if (cfg_listen_addr(addr, &l) < 0) {
		cfg_err(ps, "listen: bad address (want ADDR:PORT, [IPv6]:PORT or unix:PATH)");
		return -1;
	}
	for (char *o = strtok_r(NULL, " \t", &save); o; o = strtok_r(NULL, " \t", &save))
		if (cfg_listen_option(ps, &l, o) < 0)
			return -1;
	ps->listenline[c->nlisten] = ps->line;
	ps->listenfile[c->nlisten] = xstrdup(ps->name);
	c->listen[c->nlisten++] = l;
	return 0;
}

/* pop3/pop3s take no options: STLS when a certificate is configured, or TLS from the first
 * octet (pop3s), which without a certificate could serve nobody */
static void cfg_resolve_pop3(struct cfg_parse *ps, struct cfg_listen *l, int cert)
{
	struct cfg_policy *p = &l->policy;
	int implicit = config_listen_kind(l)->implicit;
	p->tls = implicit ? CFG_TLS_IMPLICIT : cert ? CFG_TLS_STARTTLS : CFG_TLS_NONE;
	p->auth = CFG_AUTH_REQUIRED;
	if (implicit && !cert)
		cfg_err(ps, "listen %s: needs servercert (implicit TLS)", l->kind);
}

/* After the file: each smtp listener's policy from its options and its kind's defaults
 * (smtp: STARTTLS when a certificate is configured, AUTH optional; submission: STARTTLS,
 * AUTH required; smtps: TLS from the first octet, AUTH required), and each pop3 one's. A
 * listener that cannot work as written is an error on its line. */
static void cfg_resolve_listen(struct cfg_parse *ps)
{
	struct config *c = ps->c;
	int cert = c->servercert && *c->servercert;
	for (int i = 0; i < c->nlisten; i++) {
		struct cfg_listen *l = &c->listen[i];
		struct cfg_policy *p = &l->policy;
		const struct cfg_kind *k = config_listen_kind(l);
		ps->name = ps->listenfile[i];
		ps->line = ps->listenline[i];
		if (k->proto == CFG_PROTO_POP3)
			cfg_resolve_pop3(ps, l, cert);
		if (k->proto != CFG_PROTO_SMTP)
			continue;
		if (p->tls == CFG_TLS_DEFAULT)
			p->tls = k->implicit ? CFG_TLS_IMPLICIT : cert ? CFG_TLS_STARTTLS : CFG_TLS_NONE;
		if (p->auth == CFG_AUTH_DEFAULT)
			p->auth = strcmp(k->name, "smtp") == 0 ? CFG_AUTH_OPTIONAL : CFG_AUTH_REQUIRED;
		if (!p->relayauth_set)
			p->relayauth = 1;
		if (p->tls != CFG_TLS_NONE && !cert)
			cfg_err(ps, "listen %s: tls=%s needs a servercert", l->kind,
			        p->tls == CFG_TLS_IMPLICIT ? "implicit" : "starttls");
		else if (p->auth == CFG_AUTH_REQUIRED && p->tls == CFG_TLS_NONE && !c->authplaintext)
			cfg_err(ps, "listen %s: auth=required but AUTH is offered only after TLS: "
			        "set servercert (or authplaintext yes)", l->kind);
	}
}

/* ---------------------------------------------------------------- tables and addresses */

static int cfg_set_users(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	cfg_unquote(v);
	if (strcmp(v, "passwd:") == 0 || strcmp(v, "ldap:") == 0 ||
	    (strncmp(v, "any:", 4) == 0 && v[4])) {
		cfg_set_string(ps->c, k, v);
		return 0;
	}
	if (strncmp(v, "file:", 5) == 0) {
		if (cfg_check_readable(ps, k->name, v + 5) < 0)
			return -1;
		cfg_set_string(ps->c, k, v);
		return 0;
	}
	cfg_err(ps, "users: expected file:PATH, passwd:, any:DIR or ldap:, got '%s'", v);
	return -1;
}

static int cfg_set_aliases(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	cfg_unquote(v);
	if (!*v) {
		cfg_set_string(ps->c, k, "");
		return 0;
	}
	const char *path = strncmp(v, "file:", 5) == 0 ? v + 5 : v[0] == '/' ? v : NULL;
	if (!path) {
		cfg_err(ps, "aliases: expected file:PATH, got '%s'", v);
		return -1;
	}
	if (cfg_check_readable(ps, k->name, path) < 0)
		return -1;
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "file:%s", path);
	cfg_set_string(ps->c, k, b.p);
	buf_free(&b);
	return 0;
}

static int cfg_is_ip(const char *a)
{
	unsigned char tmp[16];
	return inet_pton(AF_INET, a, tmp) == 1 || inet_pton(AF_INET6, a, tmp) == 1;
}

static int cfg_set_ip(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	cfg_unquote(v);
	if (*v && !cfg_is_ip(v)) {
		cfg_err(ps, "%s: expected a numeric address, got '%s'", k->name, v);
		return -1;
	}
	cfg_set_string(ps->c, k, v);
	return 0;
}

static int cfg_set_hostport(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	cfg_unquote(v);
	char *a = xstrdup(v);
	int port, ok = !*a || cfg_is_ip(a);
	char *colon = strrchr(a, ':');
	size_t n;
	if (!ok && colon && cfg_port(colon + 1, &port) == 0) {
		*colon = '\0';
		n = strlen(a);
		if (n >= 2 && a[0] == '[' && a[n - 1] == ']') {
			a[n - 1] = '\0';
			ok = cfg_is_ip(a + 1) && strchr(a + 1, ':');
		} else {
			ok = cfg_is_ip(a) && !strchr(a, ':');
		}
	}
	free(a);
	if (!ok) {
		cfg_err(ps, "%s: expected ADDR, ADDR:PORT or [IPv6]:PORT, got '%s'", k->name, v);
		return -1;
	}
	cfg_set_string(ps->c, k, v);
	return 0;
}

static int cfg_set_choice(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	cfg_unquote(v);
	for (size_t i = 0; i < sizeof cfg_choices / sizeof cfg_choices[0]; i++) {
		if (strcmp(cfg_choices[i].key, k->name) != 0)
			continue;
		struct buf all;
		buf_init(&all);
		for (const char *const *c = cfg_choices[i].values; *c; c++) {
			if (strcmp(*c, v) == 0) {
				buf_free(&all);
				cfg_set_string(ps->c, k, v);
				return 0;
			}
			buf_printf(&all, "%s%s", c == cfg_choices[i].values ? "" : ", ", *c);
		}
		cfg_err(ps, "%s: '%s' is not one of %s", k->name, v, all.p);
		buf_free(&all);
		return -1;
	}
	cfg_err(ps, "%s: no choices known", k->name);
	return -1;
}

static int cfg_set_ldapuris(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	static const char *const schemes[] = { "ldap://", "ldaps://", "ldapi://" };
	cfg_unquote(v);
	char *copy = xstrdup(v), *save = NULL;
	int bad = 0;
	for (char *u = strtok_r(copy, " \t,", &save); u && !bad; u = strtok_r(NULL, " \t,", &save)) {
		bad = 1;
		for (size_t i = 0; i < 3; i++)
			if (str_ncasecmp(u, schemes[i], strlen(schemes[i])) == 0)
				bad = 0;
		if (bad)
			cfg_err(ps, "%s: '%s' is not an ldap://, ldaps:// or ldapi:// URI", k->name, u);
	}
	free(copy);
	if (bad)
		return -1;
	cfg_set_string(ps->c, k, v);
	return 0;
}

static int cfg_set_secret(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	if (cfg_set_word(ps, k, v, 1) < 0)
		return -1;
	if (strncmp(v, "file:", 5) == 0 && cfg_check_readable(ps, k->name, v + 5) < 0)
		return -1;
	return 0;
}

static int cfg_set_qmqpservers(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	struct qmqp_server sv[QMQP_MAXSERVERS];
	if (qmqp_servers_parse(v, sv, QMQP_MAXSERVERS) < 0) {
		cfg_err(ps, "%s: expected up to %d items IP[:PORT] or [IPv6][:PORT], got '%s'", k->name,
		        QMQP_MAXSERVERS, v);
		return -1;
	}
	return cfg_set_word(ps, k, v, 1);
}

/* ---------------------------------------------------------------- lines */

static int cfg_set_channel(struct cfg_parse *ps, char *v)
{
	char err[256], name[CHANNEL_NAMEMAX + 2];
	snprintf(name, sizeof name, "%.*s", (int)strcspn(v + strspn(v, " \t"), " \t"),
	         v + strspn(v, " \t"));
	if (channel_parse(&ps->c->channels, v, err, sizeof err) == 0) {
		const struct channel_row *r = channel_find(&ps->c->channels, name);
		size_t i = r ? (size_t)(r - ps->c->channels.row) : 0;
		if (r && !ps->chanfile[i]) {
			ps->chanline[i] = ps->line;
			ps->chanfile[i] = xstrdup(ps->name);
		}
		return 0;
	}
	cfg_err(ps, "%s", err);
	return -1;
}

static int cfg_apply(struct cfg_parse *ps, const struct cfg_key *k, char *v)
{
	switch (k->type) {
	case CT_STR:      return cfg_set_word(ps, k, v, 0);
	case CT_WORD:     return cfg_set_word(ps, k, v, 0);
	case CT_OPTWORD:  return cfg_set_word(ps, k, v, 1);
	case CT_UINT:
	case CT_INT:      return cfg_set_number(ps, k, v);
	case CT_BOOL:     return cfg_set_bool(ps, k, v);
	case CT_LIST:
	case CT_IPLIST:   return cfg_set_list(ps, k, v);
	case CT_LISTEN:   return cfg_set_listen(ps, v);
	case CT_USERS:    return cfg_set_users(ps, k, v);
	case CT_ALIASES:  return cfg_set_aliases(ps, k, v);
	case CT_IP:       return cfg_set_ip(ps, k, v);
	case CT_HOSTPORT: return cfg_set_hostport(ps, k, v);
	case CT_CHOICE:   return cfg_set_choice(ps, k, v);
	case CT_FILE:     return cfg_set_file(ps, k, v);
	case CT_CERT:     return cfg_set_cert(ps, k, v);
	case CT_PROTOCOLS: return cfg_set_protocols(ps, k, v);
	case CT_MECHS:    return cfg_set_mechs(ps, k, v);
	case CT_OPTSTR:   return cfg_set_word(ps, k, v, 1);
	case CT_QMQPSERVERS: return cfg_set_qmqpservers(ps, k, v);
	case CT_LDAPURIS: return cfg_set_ldapuris(ps, k, v);
	case CT_SECRET:   return cfg_set_secret(ps, k, v);
	case CT_CHANNEL:  return cfg_set_channel(ps, v);
	}
	return -1;
}

static int cfg_repeatable(const struct cfg_key *k)
{
	return k->type == CT_LIST || k->type == CT_IPLIST || k->type == CT_LISTEN ||
	       k->type == CT_CHANNEL;
}

static const struct cfg_key *cfg_find(const char *name)
{
	for (size_t i = 0; i < CFG_NKEYS; i++)
		if (str_casecmp(cfg_keys[i].name, name) == 0)
			return &cfg_keys[i];
	return NULL;
}

static void cfg_parse_text(struct cfg_parse *ps, const char *name, const char *text, size_t len);

static void cfg_include(struct cfg_parse *ps, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	struct buf full;
	buf_init(&full);
	const char *slash = strrchr(ps->name, '/');
	if (path[0] != '/' && slash)
		buf_add(&full, ps->name, (size_t)(slash - ps->name) + 1);
	buf_adds(&full, path);
	if (ps->depth >= CFG_MAXDEPTH)
		cfg_err(ps, "include: nested too deeply (at most %d levels)", CFG_MAXDEPTH);
	else if (table_read_file(full.p, CFG_MAXFILE, &text, &len) < 0)
		cfg_err(ps, "include: cannot read %s: %s", full.p, strerror(errno));
	else
		cfg_parse_text(ps, full.p, text, len);
	free(text);
	buf_free(&full);
}

static void cfg_setting(struct cfg_parse *ps, const char *key, char *v)
{
	const struct cfg_key *k = cfg_find(key);
	if (str_casecmp(key, "include") == 0) {
		cfg_unquote(v);
		cfg_include(ps, v);
		return;
	}
	if (!k) {
		cfg_err(ps, "unknown key '%s'", key);
		return;
	}
	size_t i = (size_t)(k - cfg_keys);
	if (!cfg_repeatable(k) && ps->setline[i]) {
		cfg_err(ps, "duplicate key '%s' (first set at %s:%d)", key, ps->setfile[i],
		        ps->setline[i]);
		return;
	}
	if (cfg_apply(ps, k, v) == 0) {      /* a repeatable key: its last line (for errors) */
		ps->setline[i] = ps->line;
		free(ps->setfile[i]);
		ps->setfile[i] = xstrdup(ps->name);
	}
}

/* one logical line (continuations joined, comment removed) */
static void cfg_line(struct cfg_parse *ps, char *s)
{
	while (cfg_isblank(*s))
		s++;
	size_t n = strlen(s);
	while (n && (cfg_isblank(s[n - 1]) || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (!*s)
		return;
	char *v = s;
	while (*v && !cfg_isblank(*v))
		v++;
	if (*v)
		*v++ = '\0';
	while (cfg_isblank(*v))
		v++;
	if (!*v) {
		cfg_err(ps, "missing value for '%s'", s);
		return;
	}
	for (const char *p = v; *p; p++) {
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
			cfg_err(ps, "control character in the value of '%s'", s);
			return;
		}
	}
	if (strlen(v) > CFG_MAXVALUE) {
		cfg_err(ps, "value of '%s' longer than %d bytes", s, CFG_MAXVALUE);
		return;
	}
	cfg_setting(ps, s, v);
}

/* cut a comment: `#` at the start or after a blank, outside double quotes */
static void cfg_uncomment(char *s)
{
	int q = 0;
	for (char *p = s; *p; p++) {
		if (*p == '"')
			q = !q;
		else if (*p == '#' && !q && (p == s || cfg_isblank(p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

/* append one physical line to the logical line in lb; 1 if it continues */
static int cfg_physical(struct cfg_parse *ps, struct buf *lb, const char *s, size_t n, int *bad)
{
	if (memchr(s, '\0', n)) {
		if (!*bad)
			cfg_err(ps, "NUL byte in line");
		*bad = 1;
	} else if (lb->len + n > CFG_MAXLINE) {
		if (!*bad)
			cfg_err(ps, "line longer than %d bytes", CFG_MAXLINE);
		*bad = 1;
	}
	size_t start = lb->len;
	if (!*bad)
		buf_add(lb, s, n);
	if (*bad || !lb->p)
		return n && s[n - 1] == '\\';
	cfg_uncomment(lb->p + start);
	lb->len = strlen(lb->p);
	while (lb->len > start && (cfg_isblank(lb->p[lb->len - 1]) || lb->p[lb->len - 1] == '\r'))
		lb->p[--lb->len] = '\0';
	if (lb->len > start && lb->p[lb->len - 1] == '\\') {
		lb->p[lb->len - 1] = ' ';
		return 1;
	}
	return 0;
}

static void cfg_parse_text(struct cfg_parse *ps, const char *name, const char *text, size_t len)
{
	const char *oname = ps->name, *s;
	int oline = ps->line, bad = 0, first = 0;
	size_t n;
	struct table_lines it;
	struct buf lb;
	buf_init(&lb);
	ps->name = name;
	ps->depth++;
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		if (!first)
			first = it.line;
		ps->line = first;
		if (cfg_physical(ps, &lb, s, n, &bad))
			continue;
		if (!bad && lb.p)
			cfg_line(ps, lb.p);
		buf_reset(&lb);
		bad = first = 0;
	}
	if (lb.len && !bad)
		cfg_line(ps, lb.p);   /* a continuation at end of file */
	buf_free(&lb);
	ps->depth--;
	ps->name = oname;
	ps->line = oline;
}

/* ---------------------------------------------------------------- defaults */

static void cfg_defaults(struct cfg_parse *ps)
{
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		if (!k->def)
			continue;
		char *v = xstrdup(k->def);
		cfg_apply(ps, k, v);
		free(v);
	}
}

/* double bounces must stay here: the first plain domain of the inline locals list (not a
 * `.suffix` or `[literal]` entry), else me */
static const char *cfg_first_local(const struct config *c)
{
	for (size_t i = 0; i < c->locals.n; i++)
		if (c->locals.v[i][0] && c->locals.v[i][0] != '.' && c->locals.v[i][0] != '[')
			return c->locals.v[i];
	return c->me;
}

static void cfg_derived(struct config *c)
{
	if (!c->me) {
		char h[256];
		if (gethostname(h, sizeof h - 1) < 0 || !h[0])
			snprintf(h, sizeof h, "localhost");
		h[sizeof h - 1] = '\0';
		c->me = xstrdup(h);
	}
	char **d[] = { &c->smtpgreeting, &c->helohost, &c->envnoathost, &c->bouncehost };
	for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
		if (!*d[i])
			*d[i] = xstrdup(c->me);
	if (c->locals.n == 0 && c->locals.ntables == 0) {
		char *me = xstrdup(c->me);
		str_lower(me);
		cfg_list_add(&c->locals.v, &c->locals.n, me);
		free(me);
	}
	if (!c->doublebouncehost)
		c->doublebouncehost = xstrdup(cfg_first_local(c));
	struct channel_keys ck = { c->concurrencylocal, c->concurrencyremote, c->retrylocal,
	                           c->retryremote, c->smtpconnperhost };
	channel_table_finish(&c->channels, &ck);
}

/* the uid of account name, or -1 when there is no such account */
static long long cfg_uid(const char *name)
{
	struct passwd pw, *res = NULL;
	char b[4096];
	if (!name || getpwnam_r(name, &pw, b, sizeof b, &res) != 0 || !res)
		return -1;
	return (long long)pw.pw_uid;
}

/* point the next error at the line that set dp, else at the one that set k */
static void cfg_blame(struct cfg_parse *ps, const struct cfg_key *dp, const struct cfg_key *k)
{
	size_t at = (size_t)((ps->setline[dp - cfg_keys] ? dp : k) - cfg_keys);
	ps->line = ps->setline[at];
	ps->name = ps->setfile[at] ? ps->setfile[at] : ps->c->path;
}

static const char *const cfg_role_keys[] = { "user", "queueuser", "smtpuser", "mtauser" };

/* is account name (uid: its uid or -1) one of ternd's role accounts, by name or by uid? */
static int cfg_is_role(struct config *c, const char *role_key, const char *name,
                       long long uid)
{
	const char *role = *(char **)cfg_field(c, cfg_find(role_key));
	return role && (strcmp(role, name) == 0 || (uid >= 0 && cfg_uid(role) == uid));
}

/* defaultprivs runs programs named in the aliases file: it must never be root nor an
 * account of ternd's roles (whose rights include ternctl's and the spool), by name or by
 * uid. Blamed on the line that set defaultprivs, or on the role key's line when
 * defaultprivs kept its default. ternd then exits 78 before starting anything. */
static void cfg_check_defaultprivs(struct cfg_parse *ps)
{
	const char *const *roles = cfg_role_keys;
	const struct cfg_key *dp = cfg_find("defaultprivs");
	const char *privs = ps->c->defaultprivs;
	long long uid = cfg_uid(privs);
	if (!privs)
		return;
	if (uid == 0) {
		cfg_blame(ps, dp, dp);
		cfg_err(ps, "defaultprivs: '%s' is root (uid 0); alias programs need an "
		        "unprivileged account of their own (default nobody)", privs);
	}
	for (size_t i = 0; i < sizeof cfg_role_keys / sizeof cfg_role_keys[0]; i++) {
		const struct cfg_key *k = cfg_find(roles[i]);
		if (!cfg_is_role(ps->c, roles[i], privs, uid))
			continue;
		cfg_blame(ps, dp, k);
		cfg_err(ps, "defaultprivs: '%s' is (or shares the uid of) the %s account of ternd's "
		        "roles; alias programs need an account of their own (default nobody)", privs,
		        roles[i]);
	}
}

/* a prog channel's program runs as its user= account (doc/PROG.md): an account that exists,
 * never root nor a role account; its program a file that exists and may be executed.
 * Blamed on the row's `channel` line. */
static void cfg_check_prog(struct cfg_parse *ps)
{
	const struct channel_table *t = &ps->c->channels;
	for (size_t i = 0; i < t->n; i++) {
		const struct channel_row *r = &t->row[i];
		if (r->transport != CHANNEL_T_PROG || !r->declared)
			continue;
		ps->name = ps->chanfile[i] ? ps->chanfile[i] : ps->c->path;
		ps->line = ps->chanline[i];
		long long uid = cfg_uid(r->user);
		if (uid < 0)
			cfg_err(ps, "channel %s: user %s: no such account", r->name, r->user);
		else if (uid == 0)
			cfg_err(ps, "channel %s: user %s is root (uid 0); the program needs an "
			        "unprivileged account of its own", r->name, r->user);
		for (size_t k = 0; uid > 0 && k < sizeof cfg_role_keys / sizeof cfg_role_keys[0]; k++)
			if (cfg_is_role(ps->c, cfg_role_keys[k], r->user, uid))
				cfg_err(ps, "channel %s: user %s is (or shares the uid of) the %s account of "
				        "ternd's roles; the program needs an account of its own", r->name,
				        r->user, cfg_role_keys[k]);
		char path[CHANNEL_PROGMAX + 1];
		struct stat st;
		snprintf(path, sizeof path, "%.*s", (int)strcspn(r->program, " \t"), r->program);
		if (stat(path, &st) < 0 && errno == ENOENT)
			cfg_err(ps, "channel %s: program %s: no such file", r->name, path);
		else if (stat(path, &st) == 0 && (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)))
			cfg_err(ps, "channel %s: program %s is not an executable file", r->name, path);
	}
}

/* inline transports entries: each readable, naming a configured channel that is not local
 * (route.c defers a recipient whose entry is bad: the operator hears of it at start) */
static void cfg_check_transports(struct cfg_parse *ps)
{
	const struct cfg_key *k = cfg_find("transports");
	const struct cfg_list *l = &ps->c->transports;
	char key[ROUTE_HOSTLEN], ch[ROUTE_CHANLEN], next[ROUTE_HOSTLEN];
	for (size_t i = 0; i < l->n; i++) {
		const struct channel_row *r = NULL;
		if (route_transport_parse(l->v[i], key, sizeof key, ch, sizeof ch, next, sizeof next) == 0 &&
		    (r = channel_find(&ps->c->channels, ch)) && r->transport != CHANNEL_T_LOCAL)
			continue;
		cfg_blame(ps, k, k);
		cfg_err(ps, "transports: entry '%.80s' %s", l->v[i], !key[0] ?
		        "is not key:channel[:nexthop] (channel: a-z 0-9 _ -, a nexthop without blanks)" :
		        !r ? "names a channel that is not configured" :
		        "names a local channel (local domains go in locals)");
	}
}

/* users ldap: asks the directory: without ldapserver there is none */
static void cfg_check_ldapusers(struct cfg_parse *ps)
{
	const struct cfg_key *k = cfg_find("users");
	if (!ps->c->users || strcmp(ps->c->users, "ldap:") != 0 || *ps->c->ldapserver)
		return;
	cfg_blame(ps, k, k);
	cfg_err(ps, "users: ldap: needs ldapserver (the directory to ask)");
}

/* ldap: tables ask the directory: without ldapserver there is none */
static void cfg_check_ldaptables(struct cfg_parse *ps)
{
	static const char *const keys[] = { "rcpthosts", "badmailfrom", "badrcptto" };
	if (*ps->c->ldapserver)
		return;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct cfg_key *k = cfg_find(keys[i]);
		const struct cfg_list *l = cfg_field(ps->c, k);
		for (size_t j = 0; j < l->ntables; j++)
			if (strncmp(l->tables[j], "ldap:", 5) == 0) {
				cfg_blame(ps, k, k);
				cfg_err(ps, "%s: ldap: tables need ldapserver (the directory to ask)",
				        keys[i]);
				break;
			}
	}
}

/* the files of the TLS client: tlscafile readable, clientcert present with a key matching
 * its certificate (when this process may read it; the mta checks again as it loads it), smtpauth a file:PATH nobody else may read, and the lines of the
 * tlsdestinations and smtpauth tables (smtpauth's only when this process may read it). */
static void cfg_check_tls_client(struct cfg_parse *ps)
{
	static char none[1];
	struct config *c = ps->c;
	char err[300], *auth = c->smtpauth;
	const struct cfg_key *k;
	if (c->tlscafile && *c->tlscafile && access(c->tlscafile, R_OK) < 0) {
		k = cfg_find("tlscafile");
		cfg_blame(ps, k, k);
		cfg_err(ps, "tlscafile: cannot read %s: %s", c->tlscafile, strerror(errno));
	}
	time_t expires;
	if (c->clientcert && *c->clientcert && (access(c->clientcert, F_OK) < 0 ||
	    (access(c->clientcert, R_OK) == 0 &&
	     tls_cert_check(c->clientcert, &expires, err, sizeof err) < 0))) {
		k = cfg_find("clientcert");
		cfg_blame(ps, k, k);
		if (access(c->clientcert, F_OK) < 0)
			cfg_err(ps, "clientcert: %s: %s", c->clientcert, strerror(errno));
		else
			cfg_err(ps, "clientcert: %s", err);
	}
	if (auth && *auth) {
		k = cfg_find("smtpauth");
		cfg_blame(ps, k, k);
		if (strncmp(auth, "file:", 5) != 0 || !auth[5])
			cfg_err(ps, "smtpauth: expected file:PATH, got '%s'", auth);
		else if (tlspolicy_auth_file_ok(auth + 5, err, sizeof err) < 0)
			cfg_err(ps, "smtpauth: %s", err);
		else if (access(auth + 5, R_OK) < 0)
			c->smtpauth = none;            /* ternctl as a user: the mta checks it */
	}
	struct tlspolicy_tables *t = ps->nerr ? NULL : tlspolicy_load(c, ps->errs);
	if (!ps->nerr && !t)
		ps->nerr++;
	tlspolicy_free(t);
	c->smtpauth = auth;
}

void config_tls_server(const struct config *c, struct tls_conf *tc)
{
	*tc = (struct tls_conf){ c->servercert, NULL,
	                         *c->tlsserverciphers ? c->tlsserverciphers : NULL,
	                         c->tlsprotocols, *c->dhfile ? c->dhfile : NULL };
}

/* smtpclustercookie ends the greeting and is compared word for word: no blank, printable */
static void cfg_check_cookie(struct cfg_parse *ps)
{
	const struct cfg_key *k = cfg_find("smtpclustercookie");
	const char *v = ps->c->smtpclustercookie;
	if (!v || !*v || cluster_cookie_ok(v))
		return;
	cfg_blame(ps, k, k);
	cfg_err(ps, "smtpclustercookie: at most %d printable characters without blanks",
	        CLUSTER_COOKIE_MAX);
}

/* The server context is built once as the smtp role will build it, so that a cipher list
 * or DH file OpenSSL refuses is a `ternd -n` error, blamed on the key that set it. */
static void cfg_check_tls(struct cfg_parse *ps)
{
	const struct config *c = ps->c;
	char err[256];
	if (!cfg_tls_checks || !c->servercert || !*c->servercert)
		return;
	struct tls_conf tc;
	config_tls_server(c, &tc);
	struct tls_ctx *ctx = tls_server_new(&tc, err, sizeof err);
	if (ctx) {
		tls_ctx_free(ctx);
		return;
	}
	const struct cfg_key *sc = cfg_find("servercert"), *ci = cfg_find("tlsserverciphers");
	const struct cfg_key *dh = cfg_find("dhfile");
	cfg_blame(ps, ps->setline[ci - cfg_keys] ? ci : ps->setline[dh - cfg_keys] ? dh : sc, sc);
	cfg_err(ps, "TLS server settings refused: %s", err);
}

int config_parse(struct config *c, const char *name, const char *text, size_t len,
                 struct cfg_errors *errs)
{
	struct cfg_parse ps;
	memset(c, 0, sizeof *c);
	memset(&ps, 0, sizeof ps);
	ps.c = c;
	ps.errs = errs;
	ps.name = name ? name : "(config)";
	if (errs)
		errs->n = errs->nw = 0;
	c->path = xstrdup(ps.name);
	channel_table_init(&c->channels);
	cfg_defaults(&ps);
	cfg_parse_text(&ps, ps.name, text, len);
	cfg_derived(c);
	cfg_check_cookie(&ps);
	cfg_check_defaultprivs(&ps);
	cfg_check_prog(&ps);
	cfg_check_transports(&ps);
	cfg_check_tls_client(&ps);
	cfg_check_ldapusers(&ps);
	cfg_check_ldaptables(&ps);
	if (ps.nerr == 0)
		cfg_check_tls(&ps);
	cfg_resolve_listen(&ps);
	for (size_t i = 0; i < CFG_NKEYS; i++)
		free(ps.setfile[i]);
	for (int i = 0; i < CFG_MAXLISTEN; i++)
		free(ps.listenfile[i]);
	for (int i = 0; i < CHANNEL_MAX; i++)
		free(ps.chanfile[i]);
	return ps.nerr ? -1 : 0;
}

int config_load(struct config *c, const char *path, struct cfg_errors *errs)
{
	if (!path) {
		int r = config_parse(c, CFG_DEVNAME, cfg_devtext, sizeof cfg_devtext - 1, errs);
		c->dev = 1;
		return r;
	}
	char *text = NULL;
	size_t len = 0;
	if (table_read_file(path, CFG_MAXFILE, &text, &len) < 0) {
		int e = errno;
		config_parse(c, path, "", 0, errs);
		table_error(errs, path, 0, "cannot read config file: %s", strerror(e));
		return -1;
	}
	int r = config_parse(c, path, text, len, errs);
	free(text);
	return r;
}

static void cfg_list_free(struct cfg_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	for (size_t i = 0; i < l->ntables; i++)
		free(l->tables[i]);
	free(l->v);
	free(l->tables);
	memset(l, 0, sizeof *l);
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		void *f = cfg_field(c, k);
		if (k->type == CT_LIST || k->type == CT_IPLIST)
			cfg_list_free(f);
		else if (k->type != CT_UINT && k->type != CT_INT && k->type != CT_BOOL &&
		         k->type != CT_LISTEN && k->type != CT_CHANNEL)
			free(*(char **)f);
	}
	free(c->path);
	memset(c, 0, sizeof *c);
}

/* 1 only when found: a table that cannot be read answers 0 here (fail closed, logged);
 * callers that must tell "no" from "could not tell" use table_list_lookup(). */
int config_list_has(const struct cfg_list *l, const char *item)
{
	return table_list_lookup(l, item) == TABLE_FOUND;
}

/* ---------------------------------------------------------------- showctl */

static void cfg_show_value(const struct config *c, const struct cfg_key *k, struct buf *b)
{
	const void *f = (const char *)c + k->off;
	switch (k->type) {
	case CT_UINT:
		buf_printf(b, "%llu", (unsigned long long)*(const uint64_t *)f);
		break;
	case CT_INT:
		buf_printf(b, "%d", *(const int *)f);
		break;
	case CT_BOOL:
		buf_adds(b, *(const int *)f ? "yes" : "no");
		break;
	case CT_LIST:
	case CT_IPLIST: {
		const struct cfg_list *l = f;
		for (size_t i = 0; i < l->n; i++)
			buf_printf(b, "%s%s", b->len ? "," : "", l->v[i]);
		for (size_t i = 0; i < l->ntables; i++)
			buf_printf(b, "%s%s", b->len ? "," : "", l->tables[i]);
		break;
	}
	case CT_LISTEN:
		break;
	case CT_SECRET: {   /* never print a password: only a file's name */
		const char *s = *(char *const *)f;
		buf_adds(b, !s || !*s ? "" : strncmp(s, "file:", 5) == 0 ? s : "(set)");
		break;
	}
	default: {
		const char *s = *(char *const *)f;
		buf_adds(b, s ? s : "");
	}
	}
	if (!b->len)
		buf_adds(b, "(none)");
}

static void cfg_show_listen(const struct config *c, const struct cfg_key *k, FILE *out)
{
	if (c->nlisten == 0)
		fprintf(out, "%-18s %-10s %s\n", k->name, "(none)", k->doc);
	for (int i = 0; i < c->nlisten; i++) {
		const struct cfg_listen *l = &c->listen[i];
		char v[400];
		if (strcmp(l->addr, "unix") == 0)
			snprintf(v, sizeof v, "%s unix:%s", l->kind, l->path);
		else if (strchr(l->addr, ':'))
			snprintf(v, sizeof v, "%s [%s]:%d", l->kind, l->addr, l->port);
		else
			snprintf(v, sizeof v, "%s %s:%d", l->kind, l->addr, l->port);
		if (config_listen_kind(l)->options) {
			static const char *const tls[] = { "?", "none", "starttls", "implicit" };
			static const char *const auth[] = { "?", "none", "optional", "required" };
			size_t n = strlen(v);
			snprintf(v + n, sizeof v - n, " tls=%s auth=%s relayauth=%s",
			         tls[l->policy.tls & 3], auth[l->policy.auth & 3],
			         l->policy.relayauth ? "yes" : "no");
		}
		fprintf(out, "%-18s %-10s %s\n", k->name, v, i ? "" : k->doc);
	}
}

static void cfg_show_channels(const struct config *c, const struct cfg_key *k, FILE *out)
{
	for (size_t i = 0; i < c->channels.n; i++) {
		char v[400];
		channel_format(&c->channels.row[i], v, sizeof v);
		fprintf(out, "%-18s %-10s %s\n", k->name, v, i ? "" : k->doc);
	}
}

void config_show(const struct config *c, FILE *out)
{
	fprintf(out, "# tern configuration from %s%s\n", c->path ? c->path : "(unset)",
	        c->dev ? " (development instance)" : "");
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		if (k->type == CT_LISTEN) {
			cfg_show_listen(c, k, out);
			continue;
		}
		if (k->type == CT_CHANNEL) {
			cfg_show_channels(c, k, out);
			continue;
		}
		struct buf b;
		buf_init(&b);
		cfg_show_value(c, k, &b);
		fprintf(out, "%-18s %-10s %s\n", k->name, b.p, k->doc);
		buf_free(&b);
	}
}
