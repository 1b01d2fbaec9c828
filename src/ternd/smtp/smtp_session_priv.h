/* smtp_session_priv — the inside of one inbound SMTP session, shared by the two files that
 * implement it: smtp_session.c (commands, transaction, DATA, IPC, life cycle) and
 * smtp_auth.c (STARTTLS and AUTH). Nothing else includes this header; smtp.c and the rest of
 * the role see only smtp_session.h.
 * Owns: the layout of struct smtp_session. Trusts: its two includers to keep the invariants
 * smtp_session.c's comments state (one wait at a time, replies staged in out). */
#ifndef TERN_SMTP_SESSION_PRIV_H
#define TERN_SMTP_SESSION_PRIV_H
#include <netinet/in.h>
#include <stdint.h>
#include "ternd/smtp/smtp_session.h"
#include "lib/buf.h"
#include "mail/smtp_cmd.h"
#include "mail/smtp_data.h"

#define SMTP_SINK_SIZE  65536      /* DATA write buffer, allocated only during DATA */
#define SMTP_OUT_HIGH   32768      /* stop reading commands while this much output waits */
#define SMTP_MAX_ERRORS 20         /* syntax/sequence errors before we hang up */
#define SMTP_HELO_MAX   255

enum { W_NONE, W_MAIL, W_RCPT, W_VRFY, W_TARPIT, W_OPEN, W_COMMIT, W_ETRN,
       W_TLS,          /* a TLS handshake runs (STARTTLS, or smtps before the greeting) */
       W_AUTH,         /* M_AUTH_CHECK sent */
       W_AUTHDELAY };  /* the AUTH answer is held back for the throttle's delay */
enum { MODE_CMD, MODE_SKIP, MODE_DATA, MODE_AUTH /* lines answer AUTH's 334 prompts */ };
#define SESSION_AUTH_DELAY_MAX 60000   /* ms: the longest throttle delay honoured */

struct smtp_sink {                 /* the message being received */
	int fd;
	int werr;                      /* errno of the first failed write */
	uint64_t written;
	struct smtp_data dec;
	size_t len;
	char buf[SMTP_SINK_SIZE];
};

struct smtp_session {
	struct smtp_srv *srv;
	const struct cfg_policy *policy;  /* the listener's: TLS, AUTH, relay */
	uint32_t id;
	struct io *io;                 /* the connection: input, output, timeout, TLS */
	struct ev *tev;                /* tarpit / AUTH delay timer, made when first needed */
	void *ipslot;
	char *helo;
	char *sender;                  /* NULL: no transaction; "" for <> */
	char **rcpt;
	uint32_t nrcpt, rcptcap, rcpt_tries;
	uint64_t rcptbytes;            /* the recipients' octets in the commit (smtp_commit.h) */
	struct table_map *rcptset;     /* the recipients recorded (canonical): duplicates */
	char *pend;                    /* the address (or AUTH login) being checked */
	char *mailauth;                /* AUTH= of MAIL FROM (RFC 4954 5), authenticated only */
	char *authlogin;               /* the canonical login after a successful AUTH, or NULL */
	struct sasl *sasl;             /* an AUTH exchange in progress (wiped when it ends) */
	const char *authmech;          /* the mechanism being checked, for the log */
	uint8_t authverdict, authclose;/* lookup's answer, held during the throttle's delay */
	const char *endwhy;            /* why we hang up once the replies are out (quit set) */
	struct buf out;                /* replies staged until the batch goes to io */
	struct smtp_sink *sink;
	uint64_t msgid, msgbytes;
	enum smtp_cmd_id cmd;          /* the command being answered */
	uint8_t wait, mode;
	unsigned esmtp:1, greeted:1, quit:1, dead:1;
	unsigned tls_go:1;             /* STARTTLS answered 220: the handshake starts next */
	uint32_t nmsg, nrcpt_total, ncmd, nerr;
	char ip[INET6_ADDRSTRLEN];
};

/* replies staged in s->out (smtp_session.c); a 5xx counts towards the error limit */
__attribute__((format(printf, 4, 5)))
void smtp_session_reply(struct smtp_session *s, int code, const char *esc, const char *fmt, ...);
/* a complete reply line "NNN text" (src/mail/sasl.h's replies and prompts) */
void smtp_session_reply_line(struct smtp_session *s, const char *line);
/* hand the staged replies to io */
void smtp_session_flush(struct smtp_session *s);
/* log the end; the session is torn down once its callbacks return */
void smtp_session_close(struct smtp_session *s, const char *reason);
void smtp_session_txn_reset(struct smtp_session *s);
/* s->pend := addr (owned), the previous one freed */
void smtp_session_set_pend(struct smtp_session *s, char *addr);
/* the session's one timer: wait (W_TARPIT, W_AUTHDELAY) ends after ms */
void smtp_session_timer_start(struct smtp_session *s, int wait, long ms);
/* the 220 greeting (smtps: once the handshake is done) */
void smtp_session_greet(struct smtp_session *s);
#endif
