/* pop3_main — the tern-pop3 program: main() around pop3w_main() (src/helpers/pop3w.h), so
 * that the worker can also be run by hand or under tcpserver, as qmail-pop3d. Owns nothing. */
#include "helpers/pop3w.h"

int main(int argc, char **argv)
{
	return pop3w_main(argc, argv);
}
