/* mta_session — one outbound SMTP connection of the mta role (see mta_session.c), and the
 * job it carries. Owns: the connection (lib/io), its park/quit timer and the engine
 * (mail/smtp_client) of one connection. Trusts: mta.c for jobs, addresses and the TLS/AUTH
 * policy of the destination; nothing from the network. */
#ifndef TERN_MTA_SESSION_H
#define TERN_MTA_SESSION_H
#include <arpa/inet.h>
#include <stdint.h>
#include <time.h>
#include "mail/config.h"
#include "mail/smtp_client.h"
#include "mail/tlspolicy.h"

#define MTA_REMOTE_MAX 320

struct mta_addr {                /* one address to try, in order */
	char name[256];              /* the host name (MX target) or the literal; with unixsock
	                                the socket's path */
	char addr[INET6_ADDRSTRLEN]; /* numeric IPv4 or IPv6 ("unix" with unixsock) */
	int port;
	int unixsock;                /* lmtp's unix:/PATH: an AF_UNIX stream socket at name */
};

/* a job's channel: M_DELIVER's channel, parsed once by mta.c; a word it does not know
 * (e.g. "local") defers the job */
enum mta_channel {
	MTA_CH_SMTP = 0,             /* "smtp", or no field: SMTP to host's MX or route */
	MTA_CH_QMQP,                 /* "qmqp": QMQP to qmqpservers (mta_qmqp.c) */
	MTA_CH_CLUSTER,              /* "cluster": a forward to another node (doc/CLUSTER.md) */
	MTA_CH_LMTP,                 /* transport lmtp: LMTP to unix:/PATH or host:port (LMTP.md) */
};

struct mta_job {                 /* one M_DELIVER: one message, n recipients, one host */
	struct mta_job *next, *prev; /* mta.c's lists */
	uint64_t job, msgid;
	char *host, *sender;
	int fd;                      /* the message, read only (pread: the offset is shared) */
	struct smtpc_txn txn;        /* recipients and their results */
	uint64_t *idx;               /* the queue's recipient index of each txn.rcpt[i] */
	uint64_t *badidx;            /* recipients refused before SMTP (malformed address) */
	size_t nbad;
	char remote[MTA_REMOTE_MAX]; /* "name[addr]" of the server that answered, or "" */
	void *dest;                  /* mta.c's destination */
	uint32_t dnsid;              /* pending M_MX_RESOLVE, 0 = none */
	int reused, reuse_fail;      /* sent on a reused connection; how often that failed */
	char tls[200];               /* "tls=TLSv1.3 cipher=... verified=yes" or "tls=no" (logs) */
	int list;                    /* which mta.c list holds it */
	enum mta_channel channel;
};

struct mta_session;
struct mta_session_cb {
	/* the job's transaction is over: every recipient final, or txn.retry set after a
	 * reused connection failed before MAIL (mta.c may send it again) */
	void (*done)(struct mta_session *s, struct mta_job *j);
	void (*idle)(struct mta_session *s);     /* ready for mta_session_send() or park/quit */
	void (*closed)(struct mta_session *s);   /* gone: s is freed when this returns */
};

struct tls_ctx;
struct mta_session_conf {
	const struct config *cfg;                /* helohost, outgoingip, timeouts */
	const struct mta_session_cb *cb;
	struct tls_ctx *tls;                     /* the client context (NULL: no TLS at all) */
	struct tlspolicy pol;                    /* of this destination */
	const char *user, *pass;                 /* AUTH credentials (NULL: none) */
	enum mta_channel channel;                /* MTA_CH_SMTP, MTA_CH_CLUSTER (CLUSTER.md) or
	                                            MTA_CH_LMTP (LHLO, no TLS, no AUTH) */
};

/* Connect to the first usable address (tcpto, timeoutconnect; next address on failure,
 * or on a temporary failure before MAIL) and deliver j. Always reports j through done(). */
void mta_session_start(const struct mta_session_conf *conf, const char *dest,
                       const struct mta_addr *addrs, size_t n, struct mta_job *j, void *arg);
/* Another job on an idle connection (RSET first). */
void mta_session_send(struct mta_session *s, struct mta_job *j);
void mta_session_park(struct mta_session *s, long ms);  /* idle; QUIT after ms */
int mta_session_idle(const struct mta_session *s);      /* 1 if it may take a job now */
/* QUIT and close: when idle, politely (now = 0: wait for the reply; 1: don't wait); when
 * busy, at once — every open recipient of the job becomes D_TEMP. */
void mta_session_quit(struct mta_session *s, int now);
void *mta_session_arg(const struct mta_session *s);
const char *mta_session_dest(const struct mta_session *s);
unsigned mta_session_msgs(const struct mta_session *s);  /* transactions finished */
/* every live session, for shutdown: quit(now) on each */
void mta_session_quit_all(int now);
size_t mta_session_count(void);                          /* live sessions */
/* addresses whose TLS handshake failed under `may` lately: tried in plaintext at once */
int mta_notls_skip(const char *addr, time_t now);
void mta_notls_note(const char *addr, time_t now);
#endif
