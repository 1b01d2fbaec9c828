/* lookup_explain — the lookup role's answer to the operator's questions about one address
 * (M_EXPLAIN from the control role: `ternctl verify`, `ternctl ldaplookup`, doc/ADMIN.md).
 * Owns: the explain requests in flight. Trusts: the control role as far as the IPC table
 * lets it speak (it alone may send M_EXPLAIN); the directory's values only as text to print. */
#ifndef TERN_LOOKUP_EXPLAIN_H
#define TERN_LOOKUP_EXPLAIN_H
#include <stdint.h>
#include "mail/config.h"
#include "mail/route.h"
#include "ternd/lookup/lookup_backend.h"
#include "ternd/lookup/lookup_tables.h"

struct chan;
/* lookup.c: the channel to peer if it is still the one of generation gen, else NULL (the
 * peer restarted since it asked, or is down) */
struct chan *lookup_peer_chan(int peer, uint32_t gen);
/* lookup.c, RCPT's check in the order M_RCPT_CHECK asks it, for `ternctl verify` to ask
 * the same: lookup_listed: addr (its <> removed) or its @domain in l, through
 * lookup_tables_ask (ldap: tables answer later); lookup_badrcptto_verdict: what RCPT answers
 * for badrcptto's answer rc (V_OK: not listed, go on; else the verdict and *text);
 * lookup_rcpt_where: where addr goes (route_normalize's answer), with *verdict / *text the
 * refusal RCPT gives (V_OK when none) and *domain the domain (the caller frees it) whose
 * rcpthosts answer decides a remote address; lookup_verdict: a routing verdict as a V_
 * verdict. */
void lookup_listed(const struct cfg_list *l, const char *addr, lookup_tables_cb cb, void *arg);
int lookup_badrcptto_verdict(int rc, const char **text);
int lookup_rcpt_where(const struct config *cfg, const char *addr, char **domain, int *verdict,
                      const char **text);
int lookup_verdict(int route_verdict);

/* Answer M_EXPLAIN (frame id id, from peer of generation gen) about addr: the directory's
 * entry when flags has EXPLAIN_DIRECTORY (with EXPLAIN_UID addr is a uid, and the route is
 * its entry's mail address's), then the routing walk of rc over be (the same session as
 * M_RCPT_CHECK / M_ROUTE). With EXPLAIN_PASSWORD, password is checked as a login's would be
 * (never counted by the throttle); it is copied, and the copy wiped when the answer goes:
 * the caller wipes its own. M_EXPLAIN_RESULT goes out once all is in, possibly before this
 * returns. */
void lookup_explain(const struct config *cfg, struct route_ctx *rc, struct lookup_backend *be,
                    int peer, uint32_t gen, uint32_t id, const char *addr, uint64_t flags,
                    const char *password);
#endif
