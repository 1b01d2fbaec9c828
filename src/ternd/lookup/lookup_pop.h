/* lookup_pop — the lookup role's side of a POP3 login (doc/IPC.md, "POP3"): once
 * lookup_auth_start() (service "pop3") has checked it, answer a refusal to the smtp role
 * (M_POP_RESULT) or ask the parent for the user's worker on success (M_POP_SPAWN).
 * Owns nothing beyond the request in hand. Trusts: nothing in M_POP_LOGIN (it comes from the
 * network-facing smtp role); the users table for the account; the parent checks the uid. */
#ifndef TERN_LOOKUP_POP_H
#define TERN_LOOKUP_POP_H
#include <stdint.h>
#include "lib/msg.h"
#include "mail/config.h"
#include "mail/users.h"

struct auth_req;
struct auth_res;
/* The checked M_POP_LOGIN q (frame id: the session's id) answered: a refusal (M_POP_RESULT)
 * to smtp, or M_POP_SPAWN to parent (NULL: AUTH_TEMP) with the user, uid, gid, home and the
 * Maildir (a directory user's mailMessageStore, checked by lookup_pop_dircheck first: a bad
 * one answers AUTH_TEMP and is logged). */
void lookup_pop_answer(const struct config *cfg, struct chan *smtp, struct chan *parent,
                       uint32_t id, const struct auth_req *q, const struct auth_res *res);
/* what POP3 itself needs of a directory user whose entry lookup_ldap_map accepted (pure, for
 * the unit tests): NULL when the mailbox may be served, else why not */
const char *lookup_pop_dircheck(const struct config *cfg, const struct auth_res *res);
/* a directory user homed on another cluster node (mailHost, as routing tells:
 * route_other_node): 1 with text the -ERR line's text ("[SYS/PERM] … NODE …", the node named
 * only when it is a plain host name), else 0. SMTP AUTH is not refused: relaying from any node
 * is fine. (pure, for the unit tests) */
int lookup_pop_elsewhere(const struct config *cfg, const struct auth_res *res, char *text,
                         size_t size);
/* the Maildir a POP3 login opens, relative to the home: aliasempty when it names a Maildir
 * ("./Maildir/"), else "./Maildir/" (pure, for the unit tests) */
const char *lookup_pop_maildir(const struct config *cfg);
#endif
