/* pop3w — tern-pop3's POP3 TRANSACTION/UPDATE code as a function (src/helpers/tern-pop3.c),
 * so that the ternd parent can run it in a forked child without an exec, as it does for
 * tern-local. Contract: argv `tern-pop3 [-t SECONDS] [-u USER] MAILDIR`, the client on fds 0
 * and 1 (a socket), running as the user in the user's home; returns the exit code (0 after
 * a clean QUIT). */
#ifndef TERN_POP3W_H
#define TERN_POP3W_H
int pop3w_main(int argc, char **argv);
#endif
