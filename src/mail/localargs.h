/* localargs — tern-local's command line: its options and where its operands start. tern-local
 * reads its arguments with it, and the root parent reads the same argument vector with it to
 * find the user it must check before it runs tern-local (src/ternd/parent/parent.c): one
 * parser, so that the account the parent checks is the one tern-local delivers for.
 * Owns: the option syntax (-c, -n, -q flags; -p PROFILE, -Q QUOTA, -A ARRIVAL each with a
 * value, each at most once, all before the operands). Trusts: nothing in argv. */
#ifndef TERN_LOCALARGS_H
#define TERN_LOCALARGS_H

struct localargs {
	int create, dryrun, loose;        /* -c, -n, -q */
	const char *profile, *quota, *arrival;   /* -p, -Q, -A (NULL = absent) */
	int first;                        /* argv index of the first operand (the user) */
	int noperands;                    /* 8, or 9 with a delivery instruction */
};

/* 0 when argv is options then 8 or 9 operands; -1 otherwise (a repeated option, an option
 * without its value, too few or too many operands) */
int localargs_parse(int argc, char *const *argv, struct localargs *a);
#endif
