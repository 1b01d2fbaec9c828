/* test_lookup_authdir — logins of directory users (src/ternd/lookup/lookup_authdir.c, with
 * lookup_ldap.c, compiled in) over a fake directory client: a login maps its entry with
 * routing's own mapping (lookup_ldap_map), so that the same entries are refused (no uid
 * attribute, a system gid, an unusable store) and a user who receives mail reads it over
 * POP3 (a store without a trailing '/' is the Maildir delivery writes). */
#include "t.h"
#include "ternd/lookup/lookup_ldap.c"
#include "ternd/lookup/lookup_authdir.c"

struct ldapc *lookup_ldap = (struct ldapc *)1;   /* never used by the fakes */
static struct ldapc_user fake_u;
static int fake_status;
static int got_n, got_status;
static char got_maildir[USERS_MAXHOME], got_user[USERS_MAXLOCAL], got_home[USERS_MAXHOME];
static char got_mailhost[256];
static uint64_t got_gid;

int ldapc_user(struct ldapc *l, const char *address, ldapc_cb cb, void *arg)
{
	cb(arg, TABLE_TEMP, NULL);
	return 0;
}

int ldapc_login(struct ldapc *l, const char *name, ldapc_cb cb, void *arg)
{
	cb(arg, fake_status, fake_status == TABLE_FOUND ? &fake_u : NULL);
	return 0;
}

static int fake_binds;
static char fake_binddn[256];

int ldapc_bind(struct ldapc *l, const char *dn, const char *password, ldapc_cb cb, void *arg)
{
	fake_binds++;
	snprintf(fake_binddn, sizeof fake_binddn, "%s", dn);
	cb(arg, TABLE_NOTFOUND, NULL);
	return 0;
}

struct ldapc *ldapc_new(const struct ldapc_conf *c) { return (struct ldapc *)2; }
int ldapc_conf_from(struct ldapc_conf *out, const struct config *cfg, char *pw, size_t n)
{
	memset(out, 0, sizeof *out);
	return 0;
}
void lookup_auth_set_directory(lookup_auth_ask ask) { }

void lookup_auth_answer(struct auth_pending *p, const struct auth_entry *e)
{
	got_n++;
	got_status = e->status;
	snprintf(got_maildir, sizeof got_maildir, "%s", e->maildir ? e->maildir : "");
	snprintf(got_user, sizeof got_user, "%s", e->user ? e->user->user : "");
	snprintf(got_home, sizeof got_home, "%s", e->user ? e->user->home : "");
	snprintf(got_mailhost, sizeof got_mailhost, "%s", e->user ? e->user->mailhost : "");
	got_gid = e->user ? e->user->gid : 0;
}

static struct config cfg;

static void load_cfg(const char *extra)
{
	struct cfg_errors errs;
	char text[512];
	snprintf(text, sizeof text, "users ldap:\nldapserver ldap://127.0.0.1/\n%s", extra);
	config_free(&cfg);
	T_CHECK(config_parse(&cfg, "t", text, strlen(text), &errs) == 0);
}

static void entry(const char *uid, const char *store, const char *home)
{
	memset(&fake_u, 0, sizeof fake_u);
	fake_u.dn = "uid=x,dc=t";
	fake_u.uid = uid;
	fake_u.qmailuid = fake_u.qmailgid = 2001;
	fake_u.messagestore = store;
	fake_u.homedir = home;
	fake_u.mailhost = fake_u.accountstatus = fake_u.dotmode = "";
	fake_u.password = "{CLEARTEXT}x";
	fake_u.replytext = fake_u.program = "";
	fake_status = TABLE_FOUND;
}

static int login(const char *name)
{
	struct auth_req q = { "pop3", "127.0.0.1", "USER", name, "", "x", "" };
	got_n = 0;
	got_status = -1;
	lad_ask((struct auth_pending *)&got_n, &q, 0);
	T_EQ_INT(got_n, 1);
	return got_status;
}

static void run(void)
{
	log_init("test_lookup_authdir", getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	load_cfg("");
	T_CHECK(lookup_authdir_init(&cfg) == 0);
	/* a store without '/': delivery's Maildir, with the '/' */
	entry("dj", "/var/mail/dj/Maildir", "");
	T_EQ_INT(login("dj"), TABLE_FOUND);
	T_EQ_STR(got_maildir, "/var/mail/dj/Maildir/");
	T_EQ_STR(got_user, "dj");
	T_EQ_STR(got_home, "/var/mail/dj");            /* routing's home: the store's parent */
	entry("dj", "/var/mail/dj/Maildir/", "/home/dj");
	T_EQ_INT(login("dj"), TABLE_FOUND);
	T_EQ_STR(got_home, "/home/dj");
	/* refused as routing refuses them */
	entry("", "/var/mail/dj/Maildir/", "");         /* no uid: never the login name */
	T_EQ_INT(login("dj"), TABLE_TEMP);
	entry("d j", "/var/mail/dj/Maildir/", "");      /* not a valid local part */
	T_EQ_INT(login("dj"), TABLE_TEMP);
	entry("dj", "/var/mail/dj/Maildir/", "");
	fake_u.qmailgid = 103;                          /* a system group */
	T_EQ_INT(login("dj"), TABLE_TEMP);
	entry("dj", "/var/mail/dj/Maildir/", "");
	fake_u.qmailuid = 999;                          /* below minuid */
	T_EQ_INT(login("dj"), TABLE_TEMP);
	entry("dj", "/var/mail/../etc/", "");
	T_EQ_INT(login("dj"), TABLE_TEMP);
	entry("dj", "/var/mail/d\001j/", "");
	T_EQ_INT(login("dj"), TABLE_TEMP);
	entry("dj", "/var/mail/dj/", "home/dj");        /* a relative home */
	T_EQ_INT(login("dj"), TABLE_TEMP);
	entry("dj", "/var/mail/dj/", "");
	fake_u.accountstatus = "sleeping";              /* unknown: refused */
	T_CHECK(login("dj") != TABLE_FOUND || got_n == 0);
	/* not found and the directory down pass through */
	fake_status = TABLE_NOTFOUND;
	T_EQ_INT(login("nobody"), TABLE_NOTFOUND);
	fake_status = TABLE_TEMP;
	T_EQ_INT(login("dj"), TABLE_TEMP);
	/* ldaprebind: an unknown login costs a bind too (a dummy DN), as a known one does, so
	 * that the answer's timing does not tell which logins exist */
	load_cfg("ldaprebind yes\nldapbasedn dc=example,dc=test\n");
	T_CHECK(lookup_authdir_init(&cfg) == 0);
	entry("dj", "/var/mail/dj/Maildir/", "");
	fake_binds = 0;
	T_EQ_INT(login("dj"), TABLE_FOUND);
	T_EQ_INT(fake_binds, 1);
	fake_status = TABLE_NOTFOUND;
	fake_binds = 0;
	T_EQ_INT(login("nobody"), TABLE_NOTFOUND);
	T_EQ_INT(fake_binds, 1);
	T_CHECK(strstr(fake_binddn, "dc=example,dc=test") != NULL);
	config_free(&cfg);
}
T_MAIN(run)
