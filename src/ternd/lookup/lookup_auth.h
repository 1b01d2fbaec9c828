/* lookup_auth — logins checked by the lookup role: SMTP AUTH and POP3 passwords against the
 * users table's pwhash (every format `ternctl digest` makes), CRAM-MD5 and APOP where a
 * cleartext secret is stored, the failure throttle per client address and per login, and the
 * pop-before-smtp table (client addresses that logged in to POP3 lately may relay). Directory
 * users (users ldap:) are checked asynchronously: the check parks until lookup_authdir.c
 * answers it with what the directory found (lookup_auth_start, lookup_auth_answer).
 * Owns: the throttle and pbs state (memory of the lookup process). Trusts: nothing in the
 * request (it comes from the network-facing smtp role); the users table for the secrets.
 *
 * The smtp role never sees a hash: it sends what the client sent (M_AUTH_CHECK) and gets a
 * verdict (M_AUTH_RESULT), see doc/IPC.md. */
#ifndef TERN_LOOKUP_AUTH_H
#define TERN_LOOKUP_AUTH_H
#include <stdint.h>
#include "mail/users.h"
#include "ternd/proto.h"              /* enum auth_verdict: part of the IPC contract */

struct auth_req {
	const char *service;     /* "smtp" or "pop3" */
	const char *ip;          /* the client's address */
	const char *mech;        /* "PLAIN" "LOGIN" "CRAM-MD5" "APOP" "USER" */
	const char *login;       /* the authentication identity */
	const char *authzid;     /* PLAIN's authorisation identity, "" if none */
	const char *secret;      /* the password; for CRAM-MD5 and APOP the challenge sent */
	const char *response;    /* CRAM-MD5/APOP: the client's hex digest; else "" */
};

struct auth_res {
	int verdict;             /* enum auth_verdict */
	uint64_t delay_ms;       /* throttle: the asking session waits this long before replying */
	int close;               /* 1: too many failures from this address (its /64 for IPv6);
	                            never per login: that would let anyone lock a user out */
	char login[USERS_MAXLOCAL];      /* the canonical login on success */
	struct users_result user;        /* the account on success (uid, gid, home) */
	int directory;                   /* a directory (users ldap:) user */
	char maildir[USERS_MAXHOME];     /* a directory user's mailMessageStore, else "" */
};

/* What a users backend found for a login, for the verdict (lookup_auth_answer). */
enum { AUTH_BIND_NONE, AUTH_BIND_OK, AUTH_BIND_BAD };
struct auth_entry {
	int status;                      /* TABLE_FOUND / TABLE_NOTFOUND / TABLE_TEMP */
	const char *diag;                /* TABLE_TEMP: why (logged) */
	const char *pwhash;              /* the stored password (every digest.h format), "" */
	int bound;                       /* AUTH_BIND_NONE: check pwhash; AUTH_BIND_OK / _BAD: the
	                                    directory accepted / refused a bind with the secret */
	int account;                     /* enum users_account: only USERS_ACTIVE logs in */
	const char *name;                /* another name the authzid may give (the uid), or "" */
	const struct users_result *user; /* TABLE_FOUND: the account */
	const char *maildir;             /* TABLE_FOUND: the mailbox (auth_res.maildir), or "" */
};

/* The fields M_AUTH_CHECK and M_POP_LOGIN share, in their order (doc/IPC.md): client ip,
 * mechanism, login, authzid, secret, response. The caller checks msg_done(). */
struct msg_reader;
void lookup_auth_decode(struct msg_reader *r, struct auth_req *q);

/* Check one login against the users table; updates the throttle. Synchronous (file, passwd,
 * any: tables). */
void lookup_auth_check(const struct config *cfg, struct users *users, const struct auth_req *q,
                       struct auth_res *r);

/* Asynchronous checks (users ldap:). A check that must ask the directory parks in an
 * auth_pending (the request copied, the secret wiped when it ends) and the directory's asker
 * answers it later from the event loop with lookup_auth_answer(); the throttle and the
 * timing-equal dummy check are the same as for the table. */
struct auth_pending;
/* q and r are valid during the call only */
typedef void (*lookup_auth_done)(void *arg, const struct auth_req *q, const struct auth_res *r);
/* ask the directory about q->login (challenge: CRAM-MD5/APOP, which need the stored
 * password itself), then lookup_auth_answer(p, e) exactly once, at once or later */
typedef void (*lookup_auth_ask)(struct auth_pending *p, const struct auth_req *q, int challenge);
/* NULL (the default): logins are checked against the users table; else by ask */
void lookup_auth_set_directory(lookup_auth_ask ask);
/* Check q; done(arg, q, r) exactly once, at once (the users table, a refusal before any
 * check) or when the directory answers. */
void lookup_auth_start(const struct config *cfg, struct users *users, const struct auth_req *q,
                       lookup_auth_done done, void *arg);
void lookup_auth_answer(struct auth_pending *p, const struct auth_entry *e);
/* pop-before-smtp: remember ip for `pbstimeout` seconds; is ip remembered now? */
void lookup_pbs_add(const struct config *cfg, const char *ip);
int  lookup_pbs_ok(const char *ip);
#endif
