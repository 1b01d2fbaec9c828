/* pop3w — tern-pop3's POP3 TRANSACTION/UPDATE code as a function (src/helpers/tern-pop3.c),
 * main() of the tern-pop3 program (src/helpers/pop3_main.c), which ternd's parent execs for
 * each POP3 login (src/ternd/parent/parent_pop.c). Contract: argv `tern-pop3 [-t SECONDS] [-u USER] MAILDIR`, the client on fds 0
 * and 1 (a socket), running as the user in the user's home; returns the exit code (0 after
 * a clean QUIT).
 * Owns: the session's listing of the Maildir (src/mail/pop3_maildir.h) and its marks.
 * Trusts: nothing the client sends; the parent to have run it as the user (it refuses uid 0)
 * in the user's home, and the smtp role to relay only the logged-in client's octets. */
#ifndef TERN_POP3W_H
#define TERN_POP3W_H
int pop3w_main(int argc, char **argv);
#endif
