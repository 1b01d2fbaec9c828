/* fuzz_lookup_ldap — lookup_ldap_map (src/ternd/lookup/lookup_ldap.c, compiled in) on a
 * qmailUser entry made of arbitrary bytes: the first 8 bytes give qmailUID/qmailGID, the
 * rest is split at '\n' into uid, mailMessageStore, homeDirectory, mailHost, accountStatus,
 * qmailDotMode, mailReplyText, deliveryProgramPath, deliveryMode words and
 * mailForwardingAddress values (',' separated). Invariants: an entry mapped TABLE_FOUND never
 * delivers as uid or gid 0 or below minuid, has an absolute home, a known account state and
 * a profile that decodes, whose store is "" or absolute ending in '/'; anything else is
 * TABLE_TEMP with a reason. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "ternd/lookup/lookup_ldap.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int ldapc_user(struct ldapc *l, const char *address, ldapc_cb cb, void *arg)
{
	cb(arg, TABLE_TEMP, NULL);
	return 0;
}

static struct config *fuzz_cfg(void)
{
	static struct config cfg;
	static int done;
	static const char text[] = "users ldap:\nldapserver ldap://127.0.0.1/\n";
	if (!done) {
		struct cfg_errors errs;
		if (config_parse(&cfg, "fuzz", text, sizeof text - 1, &errs) < 0)
			__builtin_trap();
		log_set_level(-1);
		done = 1;
	}
	return &cfg;
}

static size_t fuzz_split(char *s, char sep, const char **out, size_t max)
{
	size_t n = 0;
	while (s && *s && n < max) {
		out[n++] = s;
		s = strchr(s, sep);
		if (s)
			*s++ = '\0';
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = fuzz_cfg();
	if (size < 8 || size > 20000)
		return 0;
	char *s = malloc(size - 8 + 1);
	memcpy(s, data + 8, size - 8);
	s[size - 8] = '\0';
	const char *f[10] = { "", "", "", "", "", "", "", "", "", "" };
	fuzz_split(s, '\n', f, 10);
	char *modes = strdup(f[8]), *fwds = strdup(f[9]);
	const char *mv[80], *fv[80];
	struct ldapc_user u;
	memset(&u, 0, sizeof u);
	memcpy(&u.qmailuid, data, 4);
	memcpy(&u.qmailgid, data + 4, 4);
	u.dn = "uid=fuzz";
	u.uid = f[0];
	u.messagestore = f[1];
	u.homedir = f[2];
	u.mailhost = f[3];
	u.accountstatus = f[4];
	u.dotmode = f[5];
	u.replytext = f[6];
	u.program = f[7];
	u.password = "";
	u.ndeliverymode = fuzz_split(modes, ',', mv, 80);
	u.deliverymode = mv;
	u.nforward = fuzz_split(fwds, ',', fv, 80);
	u.forward = fv;
	struct users_result *r = malloc(sizeof *r);
	int rc = lookup_ldap_map(cfg, &u, "fuzz", "", r);
	if (rc == TABLE_FOUND) {
		struct ldapprof p;
		char why[128];
		if (r->uid == 0 || r->gid == 0 || r->uid < cfg->minuid || r->home[0] != '/' ||
		    r->account < USERS_ACTIVE || r->account > USERS_DELETED || !r->user[0])
			__builtin_trap();
		if (ldapprof_decode(r->profile, &p, why, sizeof why) != 0)
			__builtin_trap();
		size_t n = strlen(p.store);
		if (n && (p.store[0] != '/' || p.store[n - 1] != '/'))
			__builtin_trap();
		ldapprof_free(&p);
	} else if (rc != TABLE_TEMP || !r->diag[0]) {
		__builtin_trap();
	}
	free(r);
	free(modes);
	free(fwds);
	free(s);
	return 0;
}
