/* lookup_pop — the lookup role's side of a POP3 login (doc/IPC.md, "POP3"): check it with
 * lookup_auth_check() (service "pop3"), answer a refusal to the smtp role (M_POP_RESULT) and
 * ask the parent for the user's worker on success (M_POP_SPAWN).
 * Owns nothing beyond the request in hand. Trusts: nothing in M_POP_LOGIN (it comes from the
 * network-facing smtp role); the users table for the account; the parent checks the uid. */
#ifndef TERN_LOOKUP_POP_H
#define TERN_LOOKUP_POP_H
#include <stdint.h>
#include "lib/msg.h"
#include "mail/config.h"
#include "mail/users.h"

/* M_POP_LOGIN (frame id: the session's id) from the smtp channel; parent may be NULL */
void lookup_pop_login(const struct config *cfg, struct users *users, struct chan *smtp,
                      struct chan *parent, uint32_t id, struct msg_reader *r);
/* the Maildir a POP3 login opens, relative to the home: aliasempty when it names a Maildir
 * ("./Maildir/"), else "./Maildir/" (pure, for the unit tests) */
const char *lookup_pop_maildir(const struct config *cfg);
#endif
