/* pop3_main — the tern-pop3 program: main() around pop3w_main() (src/helpers/pop3w.h), so
 * that the worker can also be run by hand or under tcpserver, as qmail-pop3d.
 * Owns nothing. Trusts: its caller for the arguments and the uid it runs as (pop3w.h). */
#include "helpers/pop3w.h"

int main(int argc, char **argv)
{
	return pop3w_main(argc, argv);
}
