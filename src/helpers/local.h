/* local — tern-local's delivery code as a function (src/helpers/tern-local.c), so that the
 * ternd parent can run it in a forked child without paying for an exec (doc/LOCAL.md has the
 * contract: arguments, the one output line on fd 1, exit codes 0 / 100 / 111). */
#ifndef TERN_LOCAL_H
#define TERN_LOCAL_H
/* argv as for the tern-local program; returns the exit code (or exits itself) */
int local_main(int argc, char **argv);
#endif
