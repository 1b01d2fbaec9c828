/* admin_client — ternctl's side of ternd's control socket <spool>/ternctl.sock
 * (doc/ADMIN.md): one request line, the reply body copied out (dot-unstuffed), the status
 * line turned into ternctl's exit code; and the ternctl commands that only ternd can answer.
 * Owns: the client half of the admin protocol. Trusts: the socket in the configured spool
 * (it is ternd's: the spool directory is root's or the queue user's); the reply only as text
 * to print. */
#ifndef TERN_ADMIN_CLIENT_H
#define TERN_ADMIN_CLIENT_H
#include <stdio.h>
#include "mail/config.h"

#define ADMIN_UNREACHABLE (-1)   /* nothing answers on the socket: ternd is not running */
#define ADMIN_EX_UNREACHABLE 75

/* Send request (one line, no LF) and copy the reply body to out. The status text is printed
 * to stdout when the code is 0 and the text is not "ok", to stderr ("ternctl: …") otherwise.
 * Returns the status code (0 ok, 1 not found or refused, 64 usage, 75 temporary) or
 * ADMIN_UNREACHABLE, having printed nothing, when it cannot connect. */
int admin_client_call(const struct config *cfg, const char *request, FILE *out);

/* ternctl commands served by ternd alone (exit 75 when it does not run); argv[0] is the
 * command name. show queue [--json] | show message ID; remove ID|all; hold ID; release ID;
 * schedule ID|all; tcpto; tcpok; stats. */
int admin_client_cmd(struct config *cfg, int argc, char **argv);

/* The fallback when nothing answers on the socket (`ternctl flush`, and `sendmail -q`, which
 * runs it): send sig to the pid in <spool>/ternd.pid. The spool is the queue account's, so
 * the file is opened without following a link and, when we are root, the process must be
 * root's and run a binary named ternd; otherwise nothing is signalled. Returns 0 when sent;
 * else, having printed why: 1 when ternd does not run (no pid file, no such process),
 * ADMIN_EX_UNREACHABLE when the pid file or its process is refused. */
int admin_client_signal_ternd(const struct config *cfg, int sig);
#endif
