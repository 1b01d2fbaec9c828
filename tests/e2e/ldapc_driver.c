/* ldapc_driver — test driver for tests/e2e/test_ldapc.py: runs the LDAP client
 * (src/ternd/lookup/ldapc.c) in tern's event loop with the ldap* keys of CONFIG and takes
 * commands on stdin while the loop runs, so the test can stop, freeze and restart slapd
 * between requests.
 *
 * usage: ldapc_driver CONFIG     (a wall-clock limit: LDAPC_DRIVER_TIMEOUT s, 60)
 * stdin, one command a line:
 *   lookup TAG ADDRESS           start a lookup (ADDRESS is the rest of the line)
 *   login TAG NAME               start a login search (ldapc_login; NAME: the rest)
 *   bind TAG DN PASSWORD         start a user bind (ldapc_bind; DN without blanks)
 *   ping TAG                     answer "pong TAG" (a synchronisation point)
 * Output, one line each, flushed: "result TAG found|notfound|temp ms=ELAPSED [FIELD=VALUE...]"
 * with the mapped fields of a found entry (lists comma-separated), "pong TAG", "ready".
 * At end of input: ldapc_free (answers what is left), "exit 0". Logs go to stderr.
 * Trusts: its caller, the test. */
#include "ternd/lookup/ldapc.h"
#include "mail/config.h"
#include "mail/table.h"
#include "lib/ev.h"
#include "lib/log.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dreq { char tag[64]; long long start; };

static struct ldapc *drv_ldap;
static char drv_in[65536];
static size_t drv_len;

static void drv_list(const char *name, const char *const *v, size_t n)
{
	printf(" %s=", name);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? "," : "", v[i]);
}

static void drv_answer(void *arg, int status, const struct ldapc_user *u)
{
	struct dreq *d = arg;
	static const char *const names[] = { "found", "notfound", "temp" };
	printf("result %s %s ms=%lld", d->tag, names[status], ev_now_ms() - d->start);
	if (u) {
		printf(" dn=%s uid=%s quid=%u qgid=%u store=%s home=%s host=%s status=%s dotmode=%s"
		       " pw=%s prog=%s reply=%zu qsize=%llu qcount=%llu smax=%llu catchall=%d", u->dn,
		       u->uid,
		       u->qmailuid, u->qmailgid, u->messagestore, u->homedir, u->mailhost,
		       u->accountstatus, u->dotmode, u->password, u->program, strlen(u->replytext),
		       (unsigned long long)u->quotasize, (unsigned long long)u->quotacount,
		       (unsigned long long)u->sizemax, u->catchall);
		drv_list("mode", u->deliverymode, u->ndeliverymode);
		drv_list("fwd", u->forward, u->nforward);
	}
	printf("\n");
	fflush(stdout);
	free(d);
}

static void drv_command(char *line)
{
	char *sp = strchr(line, ' ');
	if (strncmp(line, "ping ", 5) == 0) {
		printf("pong %s\n", line + 5);
		fflush(stdout);
		return;
	}
	int kind = strncmp(line, "lookup ", 7) == 0 ? 0 : strncmp(line, "login ", 6) == 0 ? 1 :
	           strncmp(line, "bind ", 5) == 0 ? 2 : -1;
	char *tag = kind < 0 ? NULL : strchr(line, ' ') + 1;
	if (!tag || !(sp = strchr(tag, ' '))) {
		fprintf(stderr, "ldapc_driver: bad command '%s'\n", line);
		exit(2);
	}
	struct dreq *d = calloc(1, sizeof *d);
	snprintf(d->tag, sizeof d->tag, "%.*s", (int)(sp - tag), tag);
	d->start = ev_now_ms();
	char *pw = kind == 2 ? strchr(sp + 1, ' ') : NULL;     /* bind: DN (no blank) PASSWORD */
	if (pw)
		*pw++ = '\0';
	int rc = kind == 0 ? ldapc_user(drv_ldap, sp + 1, drv_answer, d) :
	         kind == 1 ? ldapc_login(drv_ldap, sp + 1, drv_answer, d) :
	         ldapc_bind(drv_ldap, sp + 1, pw ? pw : "", drv_answer, d);
	if (rc < 0) {
		printf("result %s error\n", d->tag);
		fflush(stdout);
		free(d);
	}
}

static void drv_stdin(int fd, short what, void *arg)
{
	ssize_t n = read(fd, drv_in + drv_len, sizeof drv_in - 1 - drv_len);
	if (n <= 0) {
		ldapc_free(drv_ldap);
		printf("exit 0\n");
		fflush(stdout);
		exit(0);
	}
	drv_len += (size_t)n;
	char *nl;
	while ((nl = memchr(drv_in, '\n', drv_len)) != NULL) {
		*nl = '\0';
		drv_command(drv_in);
		size_t used = (size_t)(nl + 1 - drv_in);
		memmove(drv_in, nl + 1, drv_len - used);
		drv_len -= used;
	}
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct cfg_errors errs = { .n = 0 };
	char pw[512];
	struct ldapc_conf lc;
	const char *lim = getenv("LDAPC_DRIVER_TIMEOUT");
	if (argc != 2) {
		fprintf(stderr, "usage: ldapc_driver CONFIG\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	alarm(lim ? (unsigned)atoi(lim) : 60);
	log_init("ldapc", LOG_DEBUG);
	if (config_load(&cfg, argv[1], &errs) < 0) {
		for (int i = 0; i < errs.n; i++)
			fprintf(stderr, "%s:%d: %s\n", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
		return 78;
	}
	ev_init();
	if (ldapc_conf_from(&lc, &cfg, pw, sizeof pw) < 0 || !(drv_ldap = ldapc_new(&lc)))
		return 78;
	struct ev *in = ev_new(0, EV_R | EV_PERSIST, drv_stdin, NULL);
	ev_add(in, -1);
	printf("ready\n");
	fflush(stdout);
	ev_run();
	return 1;
}
