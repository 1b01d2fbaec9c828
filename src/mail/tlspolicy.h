/* tlspolicy — what the outbound SMTP client does about TLS and AUTH for one destination:
 * the policy table `tlsdestinations` (Postfix's smtp_tls_policy_maps shape) over the global
 * `smtptls` level, and the credentials table `smtpauth` (Postfix's smtp_sasl_password_maps
 * shape) for smarthosts.
 * Owns: the syntax of both tables and the order of lookup. Trusts: nothing in the tables —
 * every line is checked (errors with file:line); a destination whose entry is malformed
 * defers, it never falls back to a weaker policy.
 *
 * Tables are loaded whole into memory (tlspolicy_load) by the mta role before it drops its
 * privileges and enters its sandbox (the credentials file is readable by root only).
 *
 * tlsdestinations: inline items `KEY=LEVEL`, or `file:PATH` tables of lines
 *   KEY  LEVEL [match=NAME]
 * LEVEL: none | may | encrypt | verify. match=NAME (verify only): the name the server's
 * certificate must carry instead of the MX host name (one name).
 * smtpauth: `file:PATH` of lines  KEY  USER:PASSWORD  (the password is the rest of the line,
 * blanks at either end trimmed). The file must not be readable or writable by others.
 *
 * KEY (both tables), tried in this order for a destination as the mta sees it ("domain",
 * "relay:port" from smtproutes, "[1.2.3.4]:port"): the destination itself; without its port;
 * then for a name, `.parent` suffixes from the longest (`.example.com` covers every
 * subdomain of example.com, as in rcpthosts). Keys are case-insensitive. */
#ifndef TERN_TLSPOLICY_H
#define TERN_TLSPOLICY_H
#include <stddef.h>
#include "mail/config.h"

enum { TLSP_NONE = 0, TLSP_MAY, TLSP_ENCRYPT, TLSP_VERIFY };   /* = enum smtpc_tls */

struct tlspolicy {
	int level;
	char match[256];           /* "" = the MX host name (or the relay's name) */
	const char *key;           /* the entry that matched, or NULL (the global smtptls) */
};

struct tlspolicy_tables;

/* "none" ... "verify" -> TLSP_*, -1 if unknown; and back */
int tlspolicy_level(const char *word);
const char *tlspolicy_level_name(int level);
/* One value of tlsdestinations ("verify match=mx.example.com") into p. 0, or -1 with err. */
int tlspolicy_parse(const char *value, struct tlspolicy *p, char *err, size_t errlen);
/* One value of smtpauth ("user:password"): 0 with user/pass pointing into a malloc'd copy
 * (*buf, free it), or -1 with err. */
int tlspolicy_auth_parse(const char *value, char **buf, const char **user, const char **pass,
                         char *err, size_t errlen);

/* Load both tables of cfg (tlsdestinations, smtpauth). Every bad line is reported to errs
 * (may be NULL) and makes the load fail; NULL then. */
struct tlspolicy_tables *tlspolicy_load(const struct config *cfg, struct cfg_errors *errs);
void tlspolicy_free(struct tlspolicy_tables *t);
/* The policy of dest: from tlsdestinations, else smtptls. 0, or -1 with err (a malformed
 * entry slipped through: the caller defers). */
int tlspolicy_lookup(const struct tlspolicy_tables *t, const char *dest, struct tlspolicy *p,
                     char *err, size_t errlen);
/* The credentials for dest: 1 found (*user, *pass valid while t lives), 0 none. */
int tlspolicy_auth(const struct tlspolicy_tables *t, const char *dest, const char **user,
                   const char **pass);
/* Check a credentials file as ternd -n does: a regular file, not readable or writable by
 * others. 0, or -1 with err. */
int tlspolicy_auth_file_ok(const char *path, char *err, size_t errlen);
#endif
