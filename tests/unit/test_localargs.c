/* test_localargs — tern-local's command line (src/mail/localargs.c), which tern-local and the
 * root parent both read: options before operands, each once, and 8 or 9 operands. */
#include "t.h"
#include "mail/localargs.h"

#define OPS "joe", "/home/joe", "joe", "", "", "example.com", "s@x", "./Maildir/"

static void run(void)
{
	static const struct {
		const char *argv[24];
		int rc, first;
		const char *profile, *quota, *arrival;
	} c[] = {
		{ { "tern-local", OPS }, 0, 1, NULL, NULL, NULL },
		{ { "tern-local", "-c", "-q", OPS, "|prog" }, 0, 3, NULL, NULL, NULL },
		/* the mda's full form: the user is after -p and -A, never one of their values */
		{ { "tern-local", "-c", "-Q", "1,2,3,", "-p", "table=1", "-A", "1700000000", OPS },
		  0, 8, "table=1", "1,2,3,", "1700000000" },
		{ { "tern-local", "-A", "5", "-c", OPS }, 0, 4, NULL, NULL, "5" },
		{ { "tern-local", "-p", "a", "-p", "b", OPS }, -1, 0, NULL, NULL, NULL },   /* twice */
		{ { "tern-local", "-c", "-c", OPS }, -1, 0, NULL, NULL, NULL },
		{ { "tern-local", "joe", "/home/joe" }, -1, 0, NULL, NULL, NULL },          /* too few */
		{ { "tern-local", OPS, "|a", "|b" }, -1, 0, NULL, NULL, NULL },              /* too many */
		{ { "tern-local", "-p" }, -1, 0, NULL, NULL, NULL },                      /* no value */
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int argc = 0;
		while (c[i].argv[argc])
			argc++;
		struct localargs a;
		T_EQ_INT(localargs_parse(argc, (char *const *)c[i].argv, &a), c[i].rc);
		if (c[i].rc != 0)
			continue;
		T_EQ_INT(a.first, c[i].first);
		T_EQ_STR(c[i].argv[a.first], "joe");
		T_CHECK((a.profile == NULL) == (c[i].profile == NULL));
		if (c[i].profile)
			T_EQ_STR(a.profile, c[i].profile);
		if (c[i].quota)
			T_EQ_STR(a.quota, c[i].quota);
		if (c[i].arrival)
			T_EQ_STR(a.arrival, c[i].arrival);
	}
}
T_MAIN(run)
