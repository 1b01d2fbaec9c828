/* users — see users.h. The file backend is parsed into a map (localpart -> record) and
 * reloaded when the file changes; passwd: asks getpwnam_r at each lookup; any: makes up a
 * user for every valid local part.
 * Owns: the parsed users file. Trusts: nothing it reads; uid 0 never becomes a target. */
#include "mail/users.h"
#include "mail/mdquota.h"
#include "mail/table.h"
#include "lib/buf.h"
#include "lib/log.h"
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define USERS_MAXFILE (256u * 1024 * 1024)

enum users_kind { UK_FILE, UK_PASSWD, UK_ANY, UK_LDAP };

struct users_rec {
	uint64_t uid, gid;
	char *home;
	char *pwhash;               /* optional: a password hash in digest's formats, or NULL */
	uint64_t quotasize, quotacount;   /* optional 6th field (Maildir++ "SIZES,COUNTC"), 0 */
};

struct users {
	enum users_kind kind;
	char *path;                 /* file: the users file; any: the absolute base directory */
	struct table_map *map;      /* file: localpart -> struct users_rec */
	int broken;                 /* file: could not be read (errno) */
	struct stat st;
	time_t checked;
	uint64_t minuid;            /* passwd: accounts below it are not mail users (0: all) */
};

static void users_rec_free(void *p)
{
	struct users_rec *r = p;
	if (r) {
		free(r->home);
		free(r->pwhash);
	}
	free(r);
}

int users_valid_local(const char *local)
{
	size_t n = strlen(local);
	if (n == 0 || n > 64 || local[0] == '.')
		return 0;
	for (const char *p = local; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':' || c == '\\')
			return 0;
	}
	return 1;
}

/* ---------------------------------------------------------------- the file format */

/* split "localpart:uid:gid:home[:pwhash[:quota]]" (NUL-terminated, trimmed) into its fields;
 * the optional password hash (`ternctl digest`, e.g. {SSHA}…) is for logins such as the queue
 * protocol's PASS USER; a home may therefore not contain ':'. The optional quota is a
 * Maildir++ spec ("1000000S,500C", src/mail/mdquota.h); with it the hash may be empty. */
static int users_fields(char *s, char *f[6])
{
	f[5] = NULL;
	for (int i = 0; i < 3; i++) {
		f[i] = s;
		s = strchr(s, ':');
		if (!s)
			return -1;
		*s++ = '\0';
	}
	f[3] = s;
	f[4] = strchr(s, ':');
	if (f[4])
		*f[4]++ = '\0';
	if (f[4] && (f[5] = strchr(f[4], ':')))
		*f[5]++ = '\0';
	return 0;
}

static const char *users_check(char *f[6], uint64_t *uid, uint64_t *gid, uint64_t q[2])
{
	str_lower(f[0]);
	if (!users_valid_local(f[0]))
		return "bad local part";
	if (str_to_u64(f[1], 0, 4294967294u, uid) < 0)
		return "bad uid";
	if (str_to_u64(f[2], 0, 4294967294u, gid) < 0)
		return "bad gid";
	if (*uid == 0)
		return "uid 0 is never a delivery target (alias root instead)";
	if (f[3][0] != '/' || strlen(f[3]) >= USERS_MAXHOME)
		return "home must be an absolute path";
	if (f[4] && (f[5] && !*f[4]))
		f[4] = NULL;             /* "home::quota": no password */
	if (f[4] && (f[4][0] != '{' || !strchr(f[4], '}') || strlen(f[4]) >= USERS_MAXHASH))
		return "the 5th field must be a password hash such as {SSHA}... (ternctl digest)";
	if (f[5] && mdquota_spec_parse(f[5], &q[0], &q[1]) < 0)
		return "the 6th field must be a Maildir++ quota such as 1000000S,500C";
	return NULL;
}

static void users_parse_line(struct table_map *m, const char *name, int line, char *s,
                             struct cfg_errors *errs)
{
	char *f[6];
	uint64_t uid, gid, q[2] = { 0, 0 };
	const char *why = users_fields(s, f) < 0 ? "expected localpart:uid:gid:home[:pwhash[:quota]]" :
	                  NULL;
	if (!why)
		why = users_check(f, &uid, &gid, q);
	if (why) {
		table_error(errs, name, line, "%s", why);
		return;
	}
	struct users_rec *r = xcalloc(1, sizeof *r);
	r->uid = uid;
	r->gid = gid;
	r->home = xstrdup(f[3]);
	r->pwhash = f[4] ? xstrdup(f[4]) : NULL;
	r->quotasize = q[0];
	r->quotacount = q[1];
	if (table_map_put(m, f[0], r) != 0) {
		table_error(errs, name, line, "duplicate user '%s' (the first line wins)", f[0]);
		users_rec_free(r);
	}
}

static struct table_map *users_parse(const char *name, const char *text, size_t len,
                                     struct cfg_errors *errs)
{
	struct table_map *m = table_map_new();
	struct table_lines it;
	const char *s;
	size_t n;
	table_lines_init(&it, text, len);
	while (table_lines_next(&it, &s, &n)) {
		if (n > 4096 || memchr(s, '\0', n)) {
			table_error(errs, name, it.line, n > 4096 ? "line too long" : "NUL byte in line");
			continue;
		}
		table_trim(&s, &n);
		if (n == 0 || *s == '#')
			continue;
		char *line = xstrndup(s, n);
		users_parse_line(m, name, it.line, line, errs);
		free(line);
	}
	return m;
}

/* ---------------------------------------------------------------- open / reload */

struct users *users_from_text(const char *name, const char *text, size_t len,
                              struct cfg_errors *errs)
{
	struct users *u = xcalloc(1, sizeof *u);
	u->kind = UK_FILE;
	u->path = xstrdup(name);
	u->map = users_parse(name, text, len, errs);
	u->checked = (time_t)-1;   /* never reloaded from disk */
	return u;
}

static void users_load(struct users *u, struct cfg_errors *errs)
{
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	memset(&st, 0, sizeof st);
	if (stat(u->path, &st) < 0 || table_read_file(u->path, USERS_MAXFILE, &text, &len) < 0) {
		u->broken = errno ? errno : EIO;
		table_error(errs, u->path, 0, "cannot read users file: %s", strerror(u->broken));
		log_err("event=users_unreadable file=%s error=\"%s\"", u->path, strerror(u->broken));
		return;
	}
	table_map_free(u->map, users_rec_free);
	u->map = users_parse(u->path, text, len, errs);
	u->broken = 0;
	u->st = st;
	free(text);
}

static char *users_absdir(const char *dir)
{
	if (dir[0] == '/')
		return xstrdup(dir);
	char cwd[4096];
	if (!getcwd(cwd, sizeof cwd))
		return NULL;
	while (dir[0] == '.' && dir[1] == '/')
		dir += 2;
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s/%s", strcmp(cwd, "/") ? cwd : "", strcmp(dir, ".") ? dir : "");
	while (b.len > 1 && b.p[b.len - 1] == '/')
		b.p[--b.len] = '\0';
	return buf_detach(&b);
}

struct users *users_open(const char *spec, struct cfg_errors *errs)
{
	struct users *u = NULL;
	if (spec && strcmp(spec, "passwd:") == 0) {
		u = xcalloc(1, sizeof *u);
		u->kind = UK_PASSWD;
	} else if (spec && strcmp(spec, "ldap:") == 0) {
		u = xcalloc(1, sizeof *u);
		u->kind = UK_LDAP;
	} else if (spec && strncmp(spec, "any:", 4) == 0 && spec[4]) {
		char *dir = users_absdir(spec + 4);
		if (!dir) {
			table_error(errs, "users", 0, "any: cannot resolve %s", spec + 4);
			return NULL;
		}
		u = xcalloc(1, sizeof *u);
		u->kind = UK_ANY;
		u->path = dir;
	} else if (spec && strncmp(spec, "file:", 5) == 0 && spec[5]) {
		u = xcalloc(1, sizeof *u);
		u->kind = UK_FILE;
		u->path = xstrdup(spec + 5);
		u->checked = time(NULL);
		users_load(u, errs);
	} else {
		table_error(errs, "users", 0, "expected file:PATH, passwd:, any:DIR or ldap:");
	}
	return u;
}

int users_refresh(struct users *u, struct cfg_errors *errs)
{
	if (!u || u->kind != UK_FILE || u->checked == (time_t)-1 || u->checked == time(NULL))
		return 0;
	u->checked = time(NULL);
	struct stat st;
	if (stat(u->path, &st) == 0 && !u->broken && st.st_ino == u->st.st_ino &&
	    st.st_dev == u->st.st_dev && st.st_size == u->st.st_size &&
	    st.st_mtim.tv_sec == u->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == u->st.st_mtim.tv_nsec)
		return 0;
	users_load(u, errs);
	return 1;
}

void users_free(struct users *u)
{
	if (!u)
		return;
	table_map_free(u->map, users_rec_free);
	free(u->path);
	free(u);
}

/* ---------------------------------------------------------------- lookups */

static int users_set(struct users_result *r, const char *name, uint64_t uid, uint64_t gid,
                     const char *home)
{
	if (uid == 0) {
		snprintf(r->diag, sizeof r->diag, "uid 0 is not a delivery target");
		return TABLE_NOTFOUND;
	}
	if (strlen(home) >= sizeof r->home) {
		snprintf(r->diag, sizeof r->diag, "home directory path too long");
		return TABLE_TEMP;
	}
	snprintf(r->user, sizeof r->user, "%s", name);
	snprintf(r->home, sizeof r->home, "%s", home);
	r->uid = uid;
	r->gid = gid;
	return TABLE_FOUND;
}

static int users_passwd(struct users_result *r, const char *name, uint64_t minuid)
{
	struct passwd pw, *res = NULL;
	size_t sz = 1024;
	for (;;) {
		char *bufp = xmalloc(sz);
		int e = getpwnam_r(name, &pw, bufp, sz, &res);
		if (e == ERANGE && sz < 1u << 20) {
			free(bufp);
			sz *= 4;
			continue;
		}
		int rc;
		if (res && pw.pw_uid < minuid) {
			snprintf(r->diag, sizeof r->diag, "system account (uid %lu below minuid)",
			         (unsigned long)pw.pw_uid);
			rc = TABLE_NOTFOUND;
		} else if (res)
			rc = users_set(r, name, pw.pw_uid, pw.pw_gid, pw.pw_dir);
		else if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM)
			rc = TABLE_NOTFOUND;
		else {
			snprintf(r->diag, sizeof r->diag, "passwd lookup failed: %s", strerror(e));
			rc = TABLE_TEMP;
		}
		free(bufp);
		return rc;
	}
}

/* one candidate account name, no extension logic */
static int users_one(struct users *u, struct users_result *r, const char *name)
{
	switch (u->kind) {
	case UK_FILE: {
		if (u->broken) {
			snprintf(r->diag, sizeof r->diag, "users file unreadable: %s",
			         strerror(u->broken));
			return TABLE_TEMP;
		}
		const struct users_rec *rec = table_map_get(u->map, name);
		if (!rec)
			return TABLE_NOTFOUND;
		snprintf(r->pwhash, sizeof r->pwhash, "%s", rec->pwhash ? rec->pwhash : "");
		r->quotasize = rec->quotasize;
		r->quotacount = rec->quotacount;
		return users_set(r, name, rec->uid, rec->gid, rec->home);
	}
	case UK_PASSWD:
		return users_passwd(r, name, u->minuid);
	case UK_ANY: {
		char home[USERS_MAXHOME];
		if ((size_t)snprintf(home, sizeof home, "%s/%s", u->path, name) >= sizeof home)
			return TABLE_NOTFOUND;
		return users_set(r, name, (uint64_t)getuid(), (uint64_t)getgid(), home);
	}
	case UK_LDAP:               /* the lookup role installs its own backend for these */
		snprintf(r->diag, sizeof r->diag, "directory users are asked through the lookup role");
		return TABLE_TEMP;
	}
	return TABLE_TEMP;
}

int users_lookup(struct users *u, const char *local, struct users_result *r)
{
	memset(r, 0, sizeof *r);
	r->status = TABLE_NOTFOUND;
	if (!u || !local || strlen(local) >= sizeof r->local) {
		snprintf(r->diag, sizeof r->diag, "bad local part");
		return r->status;
	}
	snprintf(r->local, sizeof r->local, "%s", local);
	str_lower(r->local);
	if (!users_valid_local(r->local)) {
		snprintf(r->diag, sizeof r->diag, "bad local part");
		return r->status;
	}
	char name[USERS_MAXLOCAL];
	snprintf(name, sizeof name, "%s", r->local);
	size_t cut = strlen(name);
	for (int tries = 0; tries <= USERS_MAXEXT; tries++) {
		name[cut] = '\0';
		int rc = users_one(u, r, name);
		if (rc != TABLE_NOTFOUND || r->diag[0]) {
			r->status = rc;
			if (rc == TABLE_FOUND && cut < strlen(r->local)) {
				snprintf(r->dash, sizeof r->dash, "-");
				snprintf(r->ext, sizeof r->ext, "%s", r->local + cut + 1);
			}
			return rc;
		}
		size_t next = users_ext_next(name, cut);
		if (!next)
			break;
		cut = next;
	}
	snprintf(r->diag, sizeof r->diag, "no such user");
	return r->status;
}

size_t users_ext_next(const char *local, size_t cut)
{
	while (cut > 0 && local[cut - 1] != '-')
		cut--;
	return cut > 1 ? cut - 1 : 0;
}

void users_set_minuid(struct users *u, uint64_t minuid)
{
	if (u)
		u->minuid = minuid;
}
