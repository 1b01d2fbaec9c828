/* localargs — see localargs.h. */
#include "mail/localargs.h"
#include <string.h>

/* the value option at argv[i] ("-p", "-Q", "-A"): where its value goes, or NULL */
static const char **localargs_value(struct localargs *a, const char *o)
{
	return strcmp(o, "-p") == 0 ? &a->profile : strcmp(o, "-Q") == 0 ? &a->quota :
	       strcmp(o, "-A") == 0 ? &a->arrival : NULL;
}

int localargs_parse(int argc, char *const *argv, struct localargs *a)
{
	memset(a, 0, sizeof *a);
	int i = 1;
	for (; i < argc; i++) {
		const char **v;
		int *flag = strcmp(argv[i], "-c") == 0 ? &a->create : strcmp(argv[i], "-n") == 0 ?
		            &a->dryrun : strcmp(argv[i], "-q") == 0 ? &a->loose : NULL;
		if (flag) {
			if (*flag)
				return -1;
			*flag = 1;
		} else if ((v = localargs_value(a, argv[i]))) {
			if (*v || i + 1 >= argc)
				return -1;
			*v = argv[++i];
		} else
			break;
	}
	a->first = i;
	a->noperands = argc - i;
	return a->noperands == 8 || a->noperands == 9 ? 0 : -1;
}
