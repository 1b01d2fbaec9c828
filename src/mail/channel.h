/* channel — the channel table (MMDF's channels, seed 004): one row per channel with the role
 * that runs it, its concurrency, per-host limit, retry constant and batching rule, and for
 * the prog transport the program, its account and time limit. The built-in rows (local,
 * smtp, qmqp, cluster, prog, lmtp, list) always exist; tern.conf's `channel NAME
 * key=value ...` lines change a built-in's numbers or declare another name that uses an
 * existing transport. Every other module asks this table about a channel name; no string
 * compares on channel names outside it.
 * Owns: the rows and the `channel` line syntax. Trusts: nothing in the text it parses. */
#ifndef TERN_CHANNEL_H
#define TERN_CHANNEL_H
#include <stddef.h>
#include <stdint.h>

/* the transport a row uses: what runs a job of it (the mda for local, the mta otherwise) */
enum channel_transport {
	CHANNEL_T_LOCAL = 0,         /* the mda: tern-local, one recipient per job */
	CHANNEL_T_SMTP,              /* the mta: SMTP to the host's MX or route */
	CHANNEL_T_QMQP,              /* the mta: QMQP to qmqpservers */
	CHANNEL_T_CLUSTER,           /* the mta: SMTP to another node of the cluster */
	CHANNEL_T_PROG,              /* the mda: the row's program, MMDF's interface (doc/PROG.md) */
	CHANNEL_T_LMTP,              /* the mta: LMTP (RFC 2033) to unix:/path or host:port */
	CHANNEL_T_LIST,              /* the queue itself: a mailing list's expansion (doc/LISTS.md) */
	CHANNEL_T_COUNT
};
enum channel_role { CHANNEL_MDA, CHANNEL_MTA, CHANNEL_QUEUE };

#define CHANNEL_MAX      32      /* rows, built-ins included */
#define CHANNEL_NAMEMAX  32      /* bytes of a name: [a-z0-9_-] */
#define CHANNEL_RCPTMAX  100     /* recipients per job at most */
#define CHANNEL_PROGMAX  400     /* bytes of a prog row's program (its words, unsplit) */
#define CHANNEL_USERMAX  32      /* bytes of a prog row's account name */
#define CHANNEL_TIMEOUT  3600    /* a prog run's time limit unless timeout= says (seconds) */

/* bits of channel_row.set: the fields a `channel` line gave */
#define CHANNEL_SET_CONC    1u
#define CHANNEL_SET_PERHOST 2u
#define CHANNEL_SET_RETRY   4u
#define CHANNEL_SET_RCPTS   8u
#define CHANNEL_SET_GROUP   16u
#define CHANNEL_SET_TIMEOUT 32u

struct channel_row {
	char name[CHANNEL_NAMEMAX + 1];
	enum channel_transport transport;
	uint64_t concurrency;        /* jobs of the channel at once, in total */
	uint64_t perhost;            /* connections to one destination at once (mta transports) */
	uint64_t retry;              /* qmail's c in birth + (sqrt(age) + c)^2 */
	uint64_t rcpts;              /* recipients per job (1 = one delivery per recipient) */
	int grouphost;               /* a job's recipients of one host go in one transaction */
	char program[CHANNEL_PROGMAX + 1];  /* prog: "PATH word ..." with %h %s %% ("" = none) */
	char user[CHANNEL_USERMAX + 1];     /* prog: the account it runs as ("" = none) */
	uint64_t timeout;            /* prog: seconds before the parent kills the run */
	unsigned set;                /* CHANNEL_SET_*: given by a `channel` line */
	int declared;                /* a `channel` line named it */
};

struct channel_table {
	struct channel_row row[CHANNEL_MAX];
	size_t n;
};

/* the values of today's keys that the built-in rows take unless a `channel` line sets them */
struct channel_keys {
	uint64_t concurrencylocal, concurrencyremote, retrylocal, retryremote, smtpconnperhost;
};

/* the built-in rows, values unset (channel_table_finish fills them) */
void channel_table_init(struct channel_table *t);
/* one `channel` value: "NAME key=value ..." (s is modified). 0, or -1 with err set */
int channel_parse(struct channel_table *t, char *s, char *err, size_t errlen);
/* fill every field no `channel` line set: built-ins from k, others from their transport's row */
void channel_table_finish(struct channel_table *t, const struct channel_keys *k);

/* the row of name, or NULL (not a configured channel) */
const struct channel_row *channel_find(const struct channel_table *t, const char *name);
/* the built-in row of a transport */
const struct channel_row *channel_builtin(const struct channel_table *t, enum channel_transport tr);
enum channel_role channel_role(const struct channel_row *r);
/* 1 if name is a configured channel of the local transport (tern-local: the thread's host is
 * the user; a prog channel, also run by the mda, keeps its host) */
int channel_is_local(const struct channel_table *t, const char *name);
const char *channel_transport_name(enum channel_transport tr);
/* "NAME transport=T concurrency=N perhost=N retry=N recipients=N grouphost=yes|no", and for
 * a prog row ` program="..." user=U timeout=N` */
void channel_format(const struct channel_row *r, char *out, size_t outlen);
#endif
