/* ternd — main(): command line, config check (-n), and the entry of every re-executed role
 * (`ternd -R ROLE`): rebuild the role context from the inherited fds, drop privileges, run.
 * Owns: the command line, role names, the account of each role and its privilege drop
 * (the sandbox that follows the drop is sandbox.c's), and closing every descriptor a process
 * of ternd inherits but was not handed on purpose.
 * Trusts: the parent for the inherited fds (ROLE_FDS / ROLE_LISTEN in the environment). */
#include "ternd/role.h"
#include "ternd/ipc_acl.h"
#include "ternd/parent/parent.h"
#include "ternd/parent/parent_env.h"
#include "ternd/sandbox.h"
#include "ternd/mta/mta.h"
#include "ternd/lookup/ldapc.h"
#include "lib/log.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: ternd [-n] [-d] [-f FILE]\n"
	                "  -f FILE  read FILE (default: /etc/tern/tern.conf if it exists, else the\n"
	                "           embedded development default)\n"
	                "  -n       check the configuration, report every error as file:line, exit\n"
	                "  -d       debug logging\n");
	exit(64);
}

/* errors go to stderr as file:line; warnings (an expired certificate) too with -n, and to
 * the log when the parent starts (the roles parse the same file: they keep quiet) */
static int load_config(struct config *cfg, const char *path, int check, int parent)
{
	struct cfg_errors errs = { .n = 0 };
	int r = config_load(cfg, path, &errs);
	for (int i = 0; i < errs.nw && (check || parent); i++) {
		const struct cfg_error *w = &errs.w[i];
		if (check)
			fprintf(stderr, "%s:%d: warning: %s\n", w->file, w->line, w->msg);
		else
			log_warn("event=config_warning file=%s line=%d text=\"%s\"", w->file, w->line,
			         w->msg);
	}
	if (r == 0)
		return 0;
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%s:%d: %s\n", errs.e[i].file, errs.e[i].line, errs.e[i].msg);
	return -1;
}

/* ROLE_FDS="queue=4,lookup=5" ROLE_LISTEN="6:0,7:1" */
static void ctx_from_env(struct role_ctx *ctx)
{
	for (int i = 0; i < R_NROLES; i++)
		ctx->peer[i] = -1;
	char *fds = getenv("ROLE_FDS"), *ls = getenv("ROLE_LISTEN");
	char *save = NULL, *copy = xstrdup(fds ? fds : "");
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int r;
		if (eq && (*eq = '\0', r = role_by_name(tok)) >= 0)
			ctx->peer[r] = atoi(eq + 1);
	}
	free(copy);
	copy = xstrdup(ls ? ls : "");
	for (char *tok = strtok_r(copy, ",", &save); tok && ctx->nlisten < CFG_MAXLISTEN;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		if (!colon)
			continue;
		ctx->listen[ctx->nlisten] = atoi(tok);
		ctx->listen_kind[ctx->nlisten++] = atoi(colon + 1);
	}
	free(copy);
}

/* Descriptors inherited from whoever started ternd go no further: the parent keeps only
 * 0-2; a role also keeps the channels and listening sockets its parent named in ROLE_FDS and
 * ROLE_LISTEN (spawn_role in parent.c clears close-on-exec on exactly those). */
static void close_inherited(int is_role)
{
	fs_std_fds();
	if (!is_role) {
		fs_close_except(3, NULL, 0);
		return;
	}
	struct role_ctx ctx = { .nlisten = 0 };
	int keep[R_NROLES + CFG_MAXLISTEN];
	size_t n = 0;
	ctx_from_env(&ctx);
	for (int i = 0; i < R_NROLES; i++)
		if (ctx.peer[i] >= 0)
			keep[n++] = ctx.peer[i];
	for (int i = 0; i < ctx.nlisten; i++)
		keep[n++] = ctx.listen[i];
	fs_close_except(3, keep, n);
}

/* a role that cannot start for a reason a restart won't fix exits 78 (EX_CONFIG): the parent
 * then stops instead of restarting in a loop */
static void config_fatal(const char *event, const char *what, const char *hint)
{
	log_err("event=%s %s hint=\"%s\"", event, what, hint);
	exit(78);
}

static void drop_to(const char *user, const char *chrootdir)
{
	char what[512];
	struct passwd *pw = getpwnam(user);
	snprintf(what, sizeof what, "user=%s", user);
	if (!pw)
		config_fatal("no_such_user", what, "create the account (make install does: scripts/users) "
		             "or name another one with the user, queueuser, smtpuser or mtauser keys");
	if (chrootdir && *chrootdir) {
		snprintf(what, sizeof what, "dir=%s error=\"%s\"", chrootdir, strerror(errno));
		if (fs_mkdirs(chrootdir, 0755) < 0 || chroot(chrootdir) < 0 || chdir("/") < 0) {
			snprintf(what, sizeof what, "dir=%s error=\"%s\"", chrootdir, strerror(errno));
			config_fatal("chroot_failed", what, "check the rootdir key");
		}
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		log_fatal("event=setuid_failed user=%s error=\"%s\"", user, strerror(errno));
	if (setuid(0) == 0)
		log_fatal("event=privilege_drop_failed user=%s", user);
}

/* the account of each role: the network-facing ones (smtp, mta) have one each, so that a
 * compromised one cannot signal, ptrace or read the memory of another role */
static const char *role_user(enum role r, const struct config *cfg)
{
	switch (r) {
	case R_SMTP: return cfg->smtpuser;
	case R_MTA: return cfg->mtauser;
	case R_QUEUE: case R_SCHED: return cfg->queueuser;
	default: return cfg->user;
	}
}

static int run_role(enum role r, struct config *cfg)
{
	struct role_ctx ctx = { .self = r, .cfg = cfg };
	ctx_from_env(&ctx);
#ifdef TERN_TEST
	ipc_acl_attack(&ctx);          /* TERN_TEST_EVIL names this role: forbidden frames first */
#endif
	tzset();
	/* capabilities go while we are still root; the filter comes after chroot and setuid.
	 * A sandbox that cannot be set up (logged) will not be fixed by a restart: exit 78. */
	if (r == R_MTA && mta_preinit(cfg) < 0)
		exit(78);                  /* TLS client files and tables, read while root */
	if (r == R_LOOKUP && cfg->ldapserver && *cfg->ldapserver)
		ldapc_preinit();           /* libldap loads its SASL plugins: before the filter */
	if (sandbox_drop_caps() < 0)
		exit(78);
	if (r == R_SMTP && smtp_prepare(&ctx) < 0)
		exit(78);                  /* a certificate that will not load: fix the config */
	if (geteuid() == 0)
		drop_to(role_user(r, cfg), r == R_SMTP ? cfg->rootdir : NULL);
	/* no core file and no ptrace by the role's own account: lookup holds the users table's
	 * password hashes, smtp the TLS key. After the setuid, which resets the flag to the
	 * fs.suid_dumpable sysctl; before the filter. */
	if ((r == R_SMTP || r == R_LOOKUP) && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_fatal("event=prctl_failed error=\"%s\"", strerror(errno));
	if (sandbox_apply(r, cfg->sandbox) < 0)
		exit(78);
	switch (r) {
	case R_SMTP: return smtp_main(&ctx);
	case R_LOOKUP: return lookup_main(&ctx);
	case R_QUEUE: return queue_main(&ctx);
	case R_SCHED: return sched_main(&ctx);
	case R_MDA: return mda_main(&ctx);
	case R_MTA: return mta_main(&ctx);
	case R_CONTROL: return control_main ? control_main(&ctx) : 0;
	default: log_fatal("event=unknown_role role=%d", r);
	}
}

int main(int argc, char **argv)
{
	const char *path = NULL, *role = NULL;
	int check = 0, debug = 0, c;
	while ((c = getopt(argc, argv, "f:ndR:")) != -1) {
		switch (c) {
		case 'f': path = optarg; break;
		case 'n': check = 1; break;
		case 'd': debug = 1; break;
		case 'R': role = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	close_inherited(role != NULL);
	if (!role)
		parent_env_scrub();         /* roles were given a minimal environment already */
	if (!path && access("/etc/tern/tern.conf", F_OK) == 0)
		path = "/etc/tern/tern.conf";
	int r = role ? role_by_name(role) : R_PARENT;
	if (r < 0)
		usage();
	log_init(role_name(r), debug ? LOG_DEBUG : LOG_INFO);
	struct config cfg;
	config_tls_checks(r == R_PARENT);   /* the roles need not read the key to parse */
	if (load_config(&cfg, path, check, r == R_PARENT) < 0) {
		fprintf(stderr, "ternd: configuration %s has errors\n", path ? path : "(default)");
		return 78;
	}
	if (!debug)
		log_set_level(cfg.loglevel);
	if (check) {
		printf("ternd: configuration %s is valid\n", cfg.path);
		return 0;
	}
	ipc_acl_install((enum role)r);   /* every channel of this process: doc/IPC.md's table */
	if (r != R_PARENT)
		return run_role((enum role)r, &cfg);
	return parent_main(&cfg, path, argv[0], debug);
}
