/* lookup_authdir — logins of directory users (users ldap:): the lookup_auth_ask of
 * lookup_auth.h over the lookup role's directory client (ldapc.h). The login's entry is
 * searched with ldapc_login (qmail-ldap's rule: uid, or mail / mailAlternateAddress for a
 * name with '@'); its userPassword is checked by lookup_auth.c in every digest format, or,
 * with `ldaprebind yes`, the password is checked by a simple bind as the entry's DN on a
 * client of its own (never the searching connection, whose identity must not change).
 * CRAM-MD5 and APOP always use userPassword (a bind cannot check a challenge's digest).
 * With ldaprebind an unknown login is bound too, as a DN no entry has (timing).
 * Owns: the questions in flight (each answers its auth_pending exactly once) and the bind
 * client. Trusts: nothing the directory sends: the entry is mapped by routing's own
 * lookup_ldap_map (uid, home, ids, store: the same entries refused as for delivery); the
 * parent checks the ids again before anyone runs as them. */
#include "ternd/lookup/lookup_authdir.h"
#include "ternd/lookup/lookup_ldap.h"
#include "ternd/lookup/lookup_backend.h"
#include "ternd/lookup/ldapc.h"
#include "mail/digest.h"
#include "mail/ldapprof.h"
#include "mail/table.h"
#include "ternd/proto.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct lad {                       /* one login asked of the directory */
	struct auth_pending *p;
	const char *secret;            /* the auth_pending's copy */
	int challenge;
	int account;
	char dn[1024];
	char name[USERS_MAXLOCAL];     /* the entry's uid */
	char pwhash[USERS_MAXHASH];
	char maildir[USERS_MAXHOME];
	struct users_result ur;
};

static struct ldapc *lad_binder;   /* ldaprebind: the client user binds go through */
static int lad_rebind;
static const struct config *lad_cfg;

int lookup_authdir_account(const char *status)
{
	int a = lookup_ldap_account(status);
	if (a >= 0)
		return a;
	/* a word we do not know: no login (closed), as routing defers such an entry's mail */
	log_warn("event=ldap_account_unknown account_status=\"%.40s\" login=refused", status);
	return USERS_DISABLED;
}

static void lad_answer(struct lad *d, int status, const char *diag, int bound)
{
	struct auth_entry e = { .status = status, .diag = diag, .pwhash = d->pwhash,
	                        .bound = bound, .account = d->account, .name = d->name,
	                        .user = &d->ur, .maildir = d->maildir };
	lookup_auth_answer(d->p, &e);
	explicit_bzero(d, sizeof *d);
	free(d);
}

static int lad_copy(char *dst, size_t size, const char *v)
{
	return snprintf(dst, size, "%s", v) < (int)size ? 0 : -1;
}

/* the entry into d with routing's own mapping (lookup_ldap_map: uid, home, ids, the store),
 * so that a login refuses the entries delivery refuses and serves the Maildir delivery
 * writes; d->ur.local holds the login as sent. 0, or -1 (TABLE_TEMP, logged, d->ur.diag) */
static int lad_map(struct lad *d, const struct ldapc_user *u)
{
	char login[USERS_MAXLOCAL], why[96];
	snprintf(login, sizeof login, "%s", d->ur.local);
	str_lower(login);
	if (lookup_ldap_map(lad_cfg, u, login, "", &d->ur) != TABLE_FOUND)
		return -1;
	d->account = d->ur.account;
	struct ldapprof p;
	int rc = ldapprof_decode(d->ur.profile, &p, why, sizeof why);
	if (rc < 0 || lad_copy(d->maildir, sizeof d->maildir, p.store) < 0 ||
	    lad_copy(d->name, sizeof d->name, d->ur.user) < 0 ||
	    lad_copy(d->dn, sizeof d->dn, u->dn) < 0) {
		log_warn("event=ldap_login_garbage dn=\"%.200s\" reason=\"value too long\"", u->dn);
		snprintf(d->ur.diag, sizeof d->ur.diag, "directory entry unusable");
		rc = -1;
	}
	ldapprof_free(&p);
	if (rc < 0)
		return -1;
	if (lad_copy(d->pwhash, sizeof d->pwhash, u->password) < 0) {
		log_warn("event=ldap_password_too_long dn=%s", u->dn);
		d->pwhash[0] = '\0';
	}
	return 0;
}

static void lad_bound(void *arg, int status, const struct ldapc_user *u)
{
	struct lad *d = arg;
	(void)u;
	if (status == TABLE_TEMP)
		lad_answer(d, TABLE_TEMP, "the directory did not answer the user bind",
		           AUTH_BIND_NONE);
	else
		lad_answer(d, TABLE_FOUND, "", status == TABLE_FOUND ? AUTH_BIND_OK : AUTH_BIND_BAD);
}

/* the dummy bind of an unknown login: whatever the directory says, nobody is found */
static void lad_dummy_bound(void *arg, int status, const struct ldapc_user *u)
{
	(void)status;
	(void)u;
	lad_answer(arg, TABLE_NOTFOUND, "", AUTH_BIND_NONE);
}

/* ldaprebind: a known login costs a bind round trip; an unknown one costs a bind too, as a
 * DN no entry has, so that the answer's timing does not tell which logins exist */
static int lad_dummy_bind(struct lad *d)
{
	if (!lad_rebind || d->challenge || !lad_binder || !*d->secret)
		return 0;
	snprintf(d->dn, sizeof d->dn, "uid=tern-no-such-login,%s",
	         lad_cfg->ldapbasedn && *lad_cfg->ldapbasedn ? lad_cfg->ldapbasedn : "dc=invalid");
	if (ldapc_bind(lad_binder, d->dn, d->secret, lad_dummy_bound, d) < 0)
		return 0;                  /* not even queued: answered at once, as before */
	return 1;
}

static void lad_found(void *arg, int status, const struct ldapc_user *u)
{
	struct lad *d = arg;
	if (status == TABLE_NOTFOUND && lad_dummy_bind(d))
		return;
	if (status != TABLE_FOUND || !u) {
		lad_answer(d, status == TABLE_FOUND ? TABLE_TEMP : status,
		           "the directory did not answer", AUTH_BIND_NONE);
		return;
	}
	if (lad_map(d, u) < 0) {
		char diag[sizeof d->ur.diag];
		snprintf(diag, sizeof diag, "%s", d->ur.diag);
		lad_answer(d, TABLE_TEMP, diag, AUTH_BIND_NONE);
		return;
	}
	if (!lad_rebind || d->challenge || !lad_binder) {
		lad_answer(d, TABLE_FOUND, "", AUTH_BIND_NONE);
		return;
	}
	d->pwhash[0] = '\0';           /* the bind decides, whatever the entry disclosed */
	if (ldapc_bind(lad_binder, d->dn, d->secret, lad_bound, d) < 0)
		lad_answer(d, TABLE_TEMP, "the user bind could not be queued", AUTH_BIND_NONE);
}

static void lad_ask(struct auth_pending *p, const struct auth_req *q, int challenge)
{
	struct lad *d = xcalloc(1, sizeof *d);
	d->p = p;
	d->secret = q->secret;
	d->challenge = challenge;
	snprintf(d->ur.local, sizeof d->ur.local, "%s", q->login);   /* < USERS_MAXLOCAL */
	if (!lookup_ldap) {
		lad_answer(d, TABLE_TEMP, "no directory client", AUTH_BIND_NONE);
		return;
	}
	log_debug("event=ldap_login_asked service=%s ip=%s rebind=%d", q->service, q->ip,
	          lad_rebind && !challenge);
	ldapc_login(lookup_ldap, q->login, lad_found, d);
}

/* ---- ternctl ldaplookup -p: the same check, outside the throttle ------------------------------ */

struct lad_pw {                    /* one bind for ldaplookup -p */
	lookup_authdir_pw_done done;
	void *arg;
};

static void lad_pw_bound(void *arg, int status, const struct ldapc_user *u)
{
	struct lad_pw *w = arg;
	(void)u;
	w->done(w->arg, status == TABLE_FOUND ? EXPLAIN_PW_OK :
	        status == TABLE_NOTFOUND ? EXPLAIN_PW_WRONG : EXPLAIN_PW_TEMP);
	free(w);
}

void lookup_authdir_password(const char *dn, const char *pwhash, const char *password,
                             lookup_authdir_pw_done done, void *arg)
{
	if (lad_rebind && lad_binder) {    /* the bind decides, as for a login */
		struct lad_pw *w = xcalloc(1, sizeof *w);
		w->done = done;
		w->arg = arg;
		if (ldapc_bind(lad_binder, dn, password, lad_pw_bound, w) < 0)   /* copies both */
			lad_pw_bound(w, TABLE_TEMP, NULL);
		return;
	}
	if (!*pwhash) {
		done(arg, EXPLAIN_PW_NONE);
		return;
	}
	int v = digest_verify(pwhash, password);
	if (v < 0)
		log_warn("event=bad_pwhash dn=%s: not a hash tern knows (ternctl digest)", dn);
	done(arg, v == 1 ? EXPLAIN_PW_OK : EXPLAIN_PW_WRONG);
}

int lookup_authdir_init(const struct config *cfg)
{
	if (strcmp(cfg->users, "ldap:") != 0)
		return 0;
	if (!lookup_ldap) {
		log_err("event=ldap_unusable reason=\"users ldap: needs ldapserver\"");
		return -1;
	}
	lookup_auth_set_directory(lad_ask);
	lad_cfg = cfg;
	lad_rebind = cfg->ldaprebind;
	if (!lad_rebind)
		return 0;
	struct ldapc_conf lc;
	char pw[1024];
	int rc = ldapc_conf_from(&lc, cfg, pw, sizeof pw);
	explicit_bzero(pw, sizeof pw);
	if (rc < 0)
		return -1;
	lc.binddn = "";                /* the bind client's own identity: anonymous, then users */
	lc.password = "";
	lad_binder = ldapc_new(&lc);
	return lad_binder ? 0 : -1;
}
