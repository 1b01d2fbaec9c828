/* local_main — the tern-local program: main() around local_main(). Owns nothing else. */
#include "helpers/local.h"

int main(int argc, char **argv)
{
	return local_main(argc, argv);
}
