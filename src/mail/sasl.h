/* sasl — the server side of SMTP AUTH's exchanges (RFC 4954) for PLAIN (RFC 4616), LOGIN
 * (the de-facto draft) and CRAM-MD5 (RFC 2195): the AUTH command's argument, the 334
 * prompts, base64 lines, and the credentials they carry. Pure: no I/O, no allocation (the
 * state is one fixed-size struct the session keeps only while an exchange runs); the
 * random part of a CRAM-MD5 challenge comes from getentropy.
 * It does not check a password: the session sends the credentials to the lookup role
 * (M_AUTH_CHECK, doc/IPC.md), which answers with a verdict.
 * Use: rc = sasl_start(&s, arg, allowed, me); while rc == SASL_NEXT: send s.reply, read a
 * line, rc = sasl_step(&s, line, len); on SASL_DONE send M_AUTH_CHECK with service, ip,
 * s.cred.mech, .login, .authzid, .secret, .response, then sasl_clear(&s); on an error send
 * s.reply. POP3's AUTH (RFC 5034) uses the same machine: a prompt "334 X" goes out as "+ X",
 * an error as -ERR.
 * Owns: the exchange's syntax and its error replies. Trusts: nothing the client sends —
 * every line is length-checked, strictly base64-decoded, and every field is checked
 * (no NUL inside, not empty where it must not be, at most SASL_MAXFIELD bytes). */
#ifndef TERN_SASL_H
#define TERN_SASL_H
#include <stddef.h>
#include <stdint.h>

enum sasl_mech { SASL_PLAIN = 0, SASL_LOGIN = 1, SASL_CRAM_MD5 = 2, SASL_NMECH };
#define SASL_MECH_BIT(m) (1u << (m))
#define SASL_MECH_ALL    (SASL_MECH_BIT(SASL_PLAIN) | SASL_MECH_BIT(SASL_LOGIN) | \
                          SASL_MECH_BIT(SASL_CRAM_MD5))

/* Return codes of sasl_start/sasl_step; the error codes index sasl_reply(). */
enum sasl_rc {
	SASL_DONE = 0,        /* credentials complete in s->cred: ask the lookup role */
	SASL_NEXT = 1,        /* send s->reply (a 334 line), then sasl_step the client's answer */
	SASL_E_SYNTAX,        /* 501 5.5.4 Syntax: AUTH mechanism [initial-response] */
	SASL_E_MECH,          /* 504 5.5.4 Unrecognized authentication type (or not offered) */
	SASL_E_B64,           /* 501 5.5.2 Cannot decode base64 data */
	SASL_E_TOOLONG,       /* 500 5.5.6 Authentication exchange line is too long */
	SASL_E_CANCEL,        /* 501 5.7.0 Authentication cancelled (the client sent "*") */
	SASL_E_MALFORMED,     /* 501 5.5.2 Malformed authentication data (PLAIN without its NULs,
	                         an empty login, a NUL inside a field, a field too long, a CRAM-MD5
	                         answer that is not "user SP 32-hex-digits") */
	SASL_NRC
};

/* The replies the session sends around an exchange (without CRLF), for M_AUTH_RESULT */
#define SASL_REPLY_OK      "235 2.7.0 Authentication successful"
#define SASL_REPLY_FAIL    "535 5.7.8 Authentication credentials invalid"
#define SASL_REPLY_TEMP    "454 4.7.0 Temporary authentication failure"
#define SASL_REPLY_CLOSE   "421 4.7.0 Too many authentication failures, closing connection"
#define SASL_REPLY_DONE    "503 5.5.1 Already authenticated"
#define SASL_REPLY_NEEDED  "530 5.7.0 Authentication required"
#define SASL_REPLY_NOTLS   "538 5.7.11 Encryption required for requested authentication mechanism"
/* LOGIN's prompts: base64 of "Username:" and "Password:" */
#define SASL_LOGIN_USER_PROMPT "334 VXNlcm5hbWU6"
#define SASL_LOGIN_PASS_PROMPT "334 UGFzc3dvcmQ6"

#define SASL_MAXFIELD   255   /* bytes of authzid, login or password */
#define SASL_MAXLINE    2048  /* base64 characters in one client line / initial response */
#define SASL_MAXSECRET  320   /* a password, or a CRAM-MD5 challenge "<rnd.time@host>" */
#define SASL_MAXHOST    253   /* the host name in a challenge (longer ones are cut) */
#define SASL_HEXDIGEST  32    /* CRAM-MD5 / APOP: hex of an MD5-sized digest */

/* What the exchange yielded: the fields of M_AUTH_CHECK (doc/IPC.md). */
struct sasl_cred {
	const char *mech;                  /* "PLAIN" "LOGIN" "CRAM-MD5" */
	char authzid[SASL_MAXFIELD + 1];   /* PLAIN's authorisation identity, or "" */
	char login[SASL_MAXFIELD + 1];     /* the authentication identity */
	char secret[SASL_MAXSECRET + 1];   /* the password; CRAM-MD5: the challenge sent */
	char response[SASL_HEXDIGEST + 1]; /* CRAM-MD5: the client's digest, lowercase; else "" */
};

struct sasl {
	int mech;                          /* enum sasl_mech, -1 before sasl_start */
	int step;                          /* what the next client line answers */
	struct sasl_cred cred;
	char reply[512];                   /* the line to send on SASL_NEXT or an error */
};

/* Begin an exchange: arg is the AUTH command's argument ("MECH [initial-response]", "="
 * = an empty initial response); allowed: SASL_MECH_BIT()s of the mechanisms offered now;
 * host: this server's name for the CRAM-MD5 challenge. Returns enum sasl_rc; s->reply holds
 * the 334 prompt (SASL_NEXT) or the error reply. */
int sasl_start(struct sasl *s, const char *arg, unsigned allowed, const char *host);
/* One client line of the exchange (without CRLF; "*" cancels). Returns enum sasl_rc. */
int sasl_step(struct sasl *s, const char *line, size_t len);
/* Wipe the state (passwords) when the exchange is over, whatever its outcome. */
void sasl_clear(struct sasl *s);

/* The reply for an error code (SASL_E_*), "" for SASL_DONE/SASL_NEXT. */
const char *sasl_reply(int rc);
/* "PLAIN" -> SASL_PLAIN … case-insensitive; -1 if unknown */
int sasl_mech_parse(const char *name, size_t len);
const char *sasl_mech_name(int mech);

/* The pieces, for the tests and for POP3's AUTH PLAIN:
 * decode one base64 line (len chars) into out (outsz bytes); returns bytes or a -SASL_E_*
 * (too long, bad base64, "*" cancel). */
long sasl_b64_line(const char *line, size_t len, unsigned char *out, size_t outsz);
/* PLAIN's message "authzid NUL authcid NUL passwd" into c; SASL_DONE or SASL_E_MALFORMED */
int sasl_plain_decode(const unsigned char *p, size_t n, struct sasl_cred *c);
/* CRAM-MD5's answer "user SP hexdigest" into c->login and c->response; SASL_DONE or
 * SASL_E_MALFORMED */
int sasl_cram_decode(const unsigned char *p, size_t n, struct sasl_cred *c);
/* The challenge "<rnd.unixtime@host>" into out (RFC 2195; host cut at SASL_MAXHOST); 0 / -1 */
int sasl_cram_challenge(char *out, size_t outsz, uint64_t rnd, uint64_t unixtime,
                        const char *host);
#endif
