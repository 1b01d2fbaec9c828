/* tern-pop3 — the user side of tern's POP3 server (qmail-pop3d's place): the TRANSACTION and
 * UPDATE states over one Maildir, on a socket given as fds 0 and 1. ternd's parent forks and
 * execs it with the user's uid, gid and home (checked as for deliveries) once the lookup role
 * accepted the login; the smtp role's POP3 session then pumps the client's octets to it. It
 * refuses uid 0. It first sends "+OK …" (the session passes that line to the client as the
 * answer to PASS/APOP/AUTH), or "-ERR …" and exits if the Maildir cannot be read.
 * Owns: the listing of this session and the deletions at QUIT (src/mail/pop3_maildir.c).
 * Trusts: its argv (set by the parent); nothing the client sends, nor the Maildir contents.
 * A connection that drops before QUIT removes nothing. */
#include "helpers/pop3w.h"
#include "mail/pop3_cmd.h"
#include "mail/pop3_maildir.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POP3W_FLUSH   65536         /* send output once this much is queued */
#define POP3W_READSZ  65536

static struct {
	struct pop3_box box;
	struct buf out;
	char in[POP3_MAXLINE + 2];
	size_t inlen;
	int timeout_ms;
	const char *user;
	size_t last;                    /* LAST: the highest message number retrieved */
	size_t retrieved, deleted;
} W;

static void pop3w_flush(void)
{
	if (W.out.len && fs_write_all(1, W.out.p, W.out.len) < 0) {
		log_info("event=pop3_dropped user=%s reason=write", W.user);
		exit(1);                /* nothing was removed */
	}
	buf_reset(&W.out);
}

static void pop3w_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pop3w_reply(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	buf_adds(&W.out, line);
	buf_adds(&W.out, "\r\n");
}

/* the next command line (CR LF removed, NUL-terminated), or NULL at EOF / timeout */
static char *pop3w_getline(size_t *len)
{
	static size_t consumed;
	if (consumed) {
		memmove(W.in, W.in + consumed, W.inlen - consumed);
		W.inlen -= consumed;
		consumed = 0;
	}
	for (;;) {
		char *nl = memchr(W.in, '\n', W.inlen);
		if (nl) {
			size_t n = (size_t)(nl - W.in);
			consumed = n + 1;
			if (n && W.in[n - 1] == '\r')
				n--;
			W.in[n] = '\0';
			*len = n;
			return W.in;
		}
		if (W.inlen > POP3_MAXLINE) {
			pop3w_reply("-ERR line too long");
			pop3w_flush();
			return NULL;
		}
		pop3w_flush();
		struct pollfd p = { 0, POLLIN, 0 };
		int pr = poll(&p, 1, W.timeout_ms);
		ssize_t r = pr > 0 ? read(0, W.in + W.inlen, sizeof W.in - 1 - W.inlen) : -1;
		if (pr == 0)
			log_info("event=pop3_timeout user=%s", W.user);
		if (r <= 0)
			return NULL;
		W.inlen += (size_t)r;
	}
}

/* message number n (1-based) that is not deleted, or NULL with the -ERR sent */
static struct pop3_msg *pop3w_msg(uint64_t n)
{
	if (n < 1 || n > W.box.n || W.box.m[n - 1].deleted) {
		pop3w_reply("-ERR no such message");
		return NULL;
	}
	return &W.box.m[n - 1];
}

static void pop3w_stat(void)
{
	size_t n;
	uint64_t oct;
	pop3_maildir_stat(&W.box, &n, &oct);
	pop3w_reply("+OK %zu %llu", n, (unsigned long long)oct);
}

/* LIST and UIDL, with or without a message number */
static void pop3w_list(const struct pop3_cmd *c, int uidl)
{
	struct pop3_msg *m;
	if (c->nnum) {
		if ((m = pop3w_msg(c->num[0])) != NULL) {
			if (uidl)
				pop3w_reply("+OK %llu %s", (unsigned long long)c->num[0], m->uidl);
			else
				pop3w_reply("+OK %llu %llu", (unsigned long long)c->num[0],
				            (unsigned long long)m->size);
		}
		return;
	}
	pop3w_reply("+OK");
	for (size_t i = 0; i < W.box.n; i++) {
		m = &W.box.m[i];
		if (m->deleted)
			continue;
		if (uidl)
			pop3w_reply("%zu %s", i + 1, m->uidl);
		else
			pop3w_reply("%zu %llu", i + 1, (unsigned long long)m->size);
		if (W.out.len > POP3W_FLUSH)
			pop3w_flush();
	}
	pop3w_reply(".");
}

/* RETR (lines < 0) and TOP: the message, CRLF and dot-stuffed, then "." */
static void pop3w_send(uint64_t n, long lines)
{
	struct pop3_msg *m = pop3w_msg(n);
	if (!m)
		return;
	int fd = pop3_maildir_openmsg(&W.box, (size_t)n - 1);
	if (fd < 0) {
		pop3w_reply("-ERR [SYS/TEMP] message unreadable");
		log_warn("event=pop3_unreadable user=%s file=%s error=\"%s\"", W.user, m->name,
		         strerror(errno));
		return;
	}
	static char rb[POP3W_READSZ];
	struct pop3_enc e;
	ssize_t r;
	if (lines < 0)
		pop3w_reply("+OK %llu octets", (unsigned long long)m->size);
	else
		pop3w_reply("+OK top of message follows");
	pop3_maildir_enc_init(&e, lines, 1);
	while (!e.done && (r = read(fd, rb, sizeof rb)) > 0) {
		pop3_maildir_enc_feed(&e, rb, (size_t)r, &W.out);
		if (W.out.len > POP3W_FLUSH)
			pop3w_flush();
	}
	close(fd);
	pop3_maildir_enc_end(&e, &W.out);        /* a read error: the client sees a short message */
	if ((size_t)n > W.last)
		W.last = (size_t)n;
	W.retrieved++;
}

static void pop3w_dele(uint64_t n)
{
	struct pop3_msg *m = pop3w_msg(n);
	if (!m)
		return;
	m->deleted = 1;
	W.deleted++;
	pop3w_reply("+OK message %llu deleted", (unsigned long long)n);
}

static void pop3w_rset(void)
{
	for (size_t i = 0; i < W.box.n; i++)
		W.box.m[i].deleted = 0;
	W.deleted = 0;
	W.last = 0;
	pop3w_stat();
}

/* UPDATE: the marked messages go; exit */
static int pop3w_quit(void)
{
	size_t failed, n = pop3_maildir_commit(&W.box, &failed);
	if (failed)
		pop3w_reply("-ERR [SYS/TEMP] %zu messages could not be removed", failed);
	else
		pop3w_reply("+OK bye");
	pop3w_flush();
	log_info("event=pop3_quit user=%s messages=%zu retrieved=%zu deleted=%zu failed=%zu",
	         W.user, W.box.n, W.retrieved, n, failed);
	return failed ? 1 : 0;
}

/* TRANSACTION state's capabilities: the session's (src/ternd/smtp/pop3_session.c) without
 * the login methods (USER, SASL, STLS, AUTH-RESP-CODE), as RFC 2449 allows per state */
static void pop3w_capa(void)
{
	pop3w_reply("+OK capability list follows");
	static const char *const caps[] = { "TOP", "UIDL", "RESP-CODES", "PIPELINING",
		"IMPLEMENTATION tern", "." };
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		pop3w_reply("%s", caps[i]);
}

/* one command; 1 when the session is over (QUIT) */
static int pop3w_command(char *line, size_t len, int *rc)
{
	struct pop3_cmd c;
	int perr = pop3_cmd_parse(line, len, POP3_TRANS, &c);
	if (perr != P3E_OK) {
		pop3w_reply("-ERR %s", pop3_cmd_error(perr));
		return 0;
	}
	switch (c.verb) {
	case P3_STAT: pop3w_stat(); break;
	case P3_LIST: pop3w_list(&c, 0); break;
	case P3_UIDL: pop3w_list(&c, 1); break;
	case P3_RETR: pop3w_send(c.num[0], -1); break;
	case P3_TOP:  pop3w_send(c.num[0], (long)c.num[1]); break;
	case P3_DELE: pop3w_dele(c.num[0]); break;
	case P3_NOOP: pop3w_reply("+OK"); break;
	case P3_RSET: pop3w_rset(); break;
	case P3_LAST: pop3w_reply("+OK %zu", W.last); break;
	case P3_CAPA: pop3w_capa(); break;
	case P3_QUIT: *rc = pop3w_quit(); return 1;
	default:      pop3w_reply("-ERR %s", pop3_cmd_error(P3E_UNKNOWN)); break;
	}
	return 0;
}

static int pop3w_usage(void)
{
	static const char msg[] = "-ERR [SYS/PERM] usage: tern-pop3 [-t SECONDS] [-u USER] MAILDIR\r\n";
	if (fs_write_all(1, msg, sizeof msg - 1) < 0)
		return 1;
	return 1;
}

static int pop3w_args(int argc, char **argv, const char **maildir)
{
	int i = 1;
	W.timeout_ms = 1200 * 1000;
	W.user = "-";
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (strcmp(argv[i], "-t") == 0)
			W.timeout_ms = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) * 1000 : W.timeout_ms;
		else if (strcmp(argv[i], "-u") == 0)
			W.user = argv[i + 1];
		else
			return -1;
	}
	if (i + 1 != argc || !*argv[i])
		return -1;
	*maildir = argv[i];
	return 0;
}

int pop3w_main(int argc, char **argv)
{
	const char *maildir;
	int rc = 1;
	log_init("tern-pop3", LOG_INFO);
	buf_init(&W.out);
	if (pop3w_args(argc, argv, &maildir) < 0)
		return pop3w_usage();
	if (geteuid() == 0 && getuid() == 0) {
		pop3w_reply("-ERR [SYS/PERM] refusing to run as root");
		pop3w_flush();
		log_err("event=pop3_refused user=%s reason=\"uid 0\"", W.user);
		return 1;
	}
	int dfd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno == ENOENT) {        /* no mail delivered yet: an empty maildrop */
		memset(&W.box, 0, sizeof W.box);
		W.box.dfd = -1;
	} else if (dfd < 0 || pop3_maildir_open(&W.box, dfd) < 0) {
		log_warn("event=pop3_maildir_error user=%s maildir=%s error=\"%s\"", W.user, maildir,
		         strerror(errno));
		pop3w_reply("-ERR [SYS/TEMP] unable to open the mailbox");
		pop3w_flush();
		return 1;
	}
	size_t n;
	uint64_t oct;
	pop3_maildir_stat(&W.box, &n, &oct);
	log_info("event=pop3_open user=%s uid=%u messages=%zu octets=%llu", W.user,
	         (unsigned)getuid(), n, (unsigned long long)oct);
	pop3w_reply("+OK %zu messages (%llu octets)", n, (unsigned long long)oct);
	char *line;
	size_t len;
	int over = 0;
	while (!over && (line = pop3w_getline(&len)) != NULL)
		over = pop3w_command(line, len, &rc);
	if (!over)
		log_info("event=pop3_dropped user=%s retrieved=%zu marked=%zu removed=0", W.user,
		         W.retrieved, W.deleted);
	pop3w_flush();
	pop3_maildir_free(&W.box);
	buf_free(&W.out);
	return rc;
}
