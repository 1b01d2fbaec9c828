/* tern-queue — qmail-queue's interface in front of the maildrop (PROTOCOLS.md §4).
 * Reads the message on fd 0, then the envelope on fd 1 (`F<sender>\0T<rcpt>\0...\0`), writes
 * one maildrop file and exits 0 only after its durable commit (fsync, rename, directory sync).
 * Owns: the exit-code contract below and its tmp file. Trusts: nothing on fd 0 or fd 1 (the
 * caller may be any local program); the spool path comes from the config file.
 *
 * Exit codes (qmail-queue's): 0 queued; 11 address too long (or too many recipients);
 * 51 out of memory; 52 timeout (86400 s for the whole input); 53 write error (disk full...);
 * 54 read error; 61 spool or maildrop missing or not accessible, or no usable config;
 * 81 internal bug; 91 envelope format error. */
#include "lib/buf.h"
#include "lib/log.h"
#include "mail/config.h"
#include "mail/maildrop.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_TOOLONG 11
#define EXIT_NOMEM 51
#define EXIT_TIMEOUT 52
#define EXIT_WRITE 53
#define EXIT_READ 54
#define EXIT_QUEUEDIR 61
#define EXIT_BUG 81
#define EXIT_ENVELOPE 91
#define TIMEOUT_SECONDS 86400

static char tq_tmp[4200];         /* the tmp file to remove if the alarm fires */

static void tq_alarm(int sig)
{
	(void)sig;
	if (tq_tmp[0])
		unlink(tq_tmp);
	_exit(EXIT_TIMEOUT);
}

static void tq_block_alarm(int block)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGALRM);
	sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL);
}

static int tq_maildrop_exit(const struct maildrop_err *err)
{
	static const int code[] = {
		[MAILDROP_OK] = EXIT_BUG, [MAILDROP_ENOQUEUE] = EXIT_QUEUEDIR,
		[MAILDROP_ECREATE] = EXIT_WRITE, [MAILDROP_EWRITE] = EXIT_WRITE,
		[MAILDROP_EREAD] = EXIT_READ, [MAILDROP_EENV] = EXIT_ENVELOPE,
		[MAILDROP_ETOOLONG] = EXIT_TOOLONG, [MAILDROP_EINTERNAL] = EXIT_BUG,
	};
	int k = err->kind;
	log_err("event=failed reason=\"%s\"", err->text);
	return k >= 0 && k < (int)(sizeof code / sizeof code[0]) ? code[k] : EXIT_BUG;
}

/* --- the envelope on fd 1 ---------------------------------------------------------------- */

struct tq_in {
	int fd;
	char b[4096];
	size_t pos, len;
};

/* next byte, -1 at EOF, -2 on a read error */
static int tq_getc(struct tq_in *in)
{
	while (in->pos == in->len) {
		ssize_t k = read(in->fd, in->b, sizeof in->b);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -2;
		if (k == 0)
			return -1;
		in->pos = 0;
		in->len = (size_t)k;
	}
	return (unsigned char)in->b[in->pos++];
}

/* One NUL-terminated item into item (at most MAILDROP_MAXADDR + 1 bytes: tag + address).
 * Returns 0, or the exit code to use. */
static int tq_item(struct tq_in *in, char *item, size_t *n)
{
	*n = 0;
	for (;;) {
		int c = tq_getc(in);
		if (c == -2)
			return EXIT_READ;
		if (c == -1)
			return EXIT_ENVELOPE;
		if (c == 0)
			break;
		if (*n >= MAILDROP_MAXADDR + 1)
			return EXIT_TOOLONG;
		item[(*n)++] = (char)c;
	}
	item[*n] = '\0';
	return 0;
}

static int tq_envelope(int fd, struct maildrop_env *e)
{
	struct tq_in in = { .fd = fd };
	char item[MAILDROP_MAXADDR + 2];
	size_t n;
	int r;
	if ((r = tq_item(&in, item, &n)) != 0)
		return r;
	if (n == 0 || item[0] != 'F')
		return EXIT_ENVELOPE;
	maildrop_env_set_sender(e, item + 1);
	for (;;) {
		if ((r = tq_item(&in, item, &n)) != 0)
			return r;
		if (n == 0)
			break;
		if (item[0] != 'T' || n == 1)
			return EXIT_ENVELOPE;
		if (e->nrcpt >= MAILDROP_MAXRCPT)
			return EXIT_TOOLONG;
		maildrop_env_add_rcpt(e, item + 1);
	}
	return e->nrcpt == 0 ? EXIT_ENVELOPE : 0;
}

/* --- main ------------------------------------------------------------------------------- */

static void tq_received(struct buf *b, uid_t uid, time_t now)
{
	char date[64];
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_printf(b, "Received: (tern-queue invoked by uid %lu); %s\n", (unsigned long)uid, date);
}

static int tq_spool(char **spool)
{
	struct config cfg;
	struct cfg_errors errs;
	const char *path = maildrop_config_path();
	if (config_load(&cfg, path, &errs) < 0) {
		for (int i = 0; i < errs.n && i < CFG_MAXERRS; i++)
			log_err("event=config file=%s line=%d error=\"%s\"", errs.e[i].file,
			    errs.e[i].line, errs.e[i].msg);
		config_free(&cfg);
		return -1;
	}
	*spool = xstrdup(cfg.spool);
	config_free(&cfg);
	return 0;
}

/* Everything after the config: message, envelope, commit. Returns the exit code. */
static int tq_run(const char *spool)
{
	struct maildrop_err err;
	struct maildrop_w *w;
	struct maildrop_env e;
	struct buf rcv;
	char id[MAILDROP_IDSZ];
	uid_t uid = getuid();
	time_t now = time(NULL);

	tq_block_alarm(1);
	if (maildrop_open(&w, spool, NULL, &err) < 0)
		return tq_maildrop_exit(&err);
	snprintf(tq_tmp, sizeof tq_tmp, "%s", maildrop_tmppath(w));
	tq_block_alarm(0);

	buf_init(&rcv);
	tq_received(&rcv, uid, now);
	int r = maildrop_put(w, rcv.p, rcv.len);
	buf_free(&rcv);
	if (r < 0 || maildrop_put_fd(w, 0) < 0) {
		maildrop_abort(w);
		return tq_maildrop_exit(&err);
	}
	maildrop_env_init(&e);
	e.uid = uid;
	e.time = now;
	if ((r = tq_envelope(1, &e)) != 0) {
		log_err("event=failed reason=\"%s\"", r == EXIT_READ ? "cannot read the envelope" :
		    r == EXIT_TOOLONG ? "address too long" : "envelope format error");
		maildrop_env_free(&e);
		maildrop_abort(w);
		return r;
	}
	char origin[64];
	snprintf(origin, sizeof origin, "tern-queue uid=%lu", (unsigned long)uid);
	maildrop_env_set_origin(&e, origin);
	tq_block_alarm(1);                 /* from here on the commit runs to its end */
	if (maildrop_set_env(w, &e) < 0) {
		maildrop_abort(w);
		r = -1;
	} else
		r = maildrop_commit(w, id, sizeof id);    /* frees w */
	maildrop_env_free(&e);
	tq_tmp[0] = '\0';
	return r < 0 ? tq_maildrop_exit(&err) : 0;
}

int main(int argc, char **argv)
{
	char *spool;
	(void)argc;
	(void)argv;
	log_init("tern-queue", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, tq_alarm);
	alarm(TIMEOUT_SECONDS);
	if (tq_spool(&spool) < 0)
		return EXIT_QUEUEDIR;
	int r = tq_run(spool);
	free(spool);
	return r;
}
