/* test_parent_env — the environments the parent hands on (parent_env.c): only TZ and, in the
 * test build, the TERN_* hooks pass from the parent's environment; ROLE_*, TERN_CONF and
 * TERN_QUEUE come only from the parent itself; the crash point is dropped for restarts; and
 * the scrub at start leaves nothing else, not even in memory. */
#include "t.h"
#include "ternd/parent/parent_env.c"

static int has(char **env, const char *kv)
{
	for (char **e = env; *e; e++)
		if (strcmp(*e, kv) == 0)
			return 1;
	return 0;
}

static size_t count(char **env)
{
	size_t n = 0;
	while (env[n])
		n++;
	return n;
}

static char *from[] = {
	"HOME=/root", "SECRET_TOKEN=x", "PATH=/usr/sbin:/usr/bin", "TZ=Europe/Paris",
	"TERN_CRASHPOINT=queue:commit", "TERN_STRICT_REPLIES=1", "TERN_CONF=/evil.conf",
	"TERN_QUEUE=/evil/tern-queue", "ROLE_FDS=parent=99", "ROLE_LISTEN=98:0", "LD_PRELOAD=/x.so",
	"TZX=1", "TERN_=", NULL,
};

static void test_build(void)
{
	const char *extra[] = { "ROLE_FDS=parent=4", NULL, "ROLE_LISTEN=" };
	char **e = parent_env_build(from, extra, 3, 0, NULL);       /* production */
	T_EQ_INT(count(e), 3);
	T_CHECK(has(e, "ROLE_FDS=parent=4") && has(e, "ROLE_LISTEN=") && has(e, "TZ=Europe/Paris"));
	parent_env_free(e);

	e = parent_env_build(from, extra, 3, 1, NULL);              /* test build */
	T_EQ_INT(count(e), 6);
	T_CHECK(has(e, "TERN_CRASHPOINT=queue:commit") && has(e, "TERN_STRICT_REPLIES=1"));
	T_CHECK(has(e, "TERN_="));
	T_CHECK(!has(e, "TERN_CONF=/evil.conf") && !has(e, "TERN_QUEUE=/evil/tern-queue"));
	T_CHECK(!has(e, "ROLE_FDS=parent=99") && !has(e, "HOME=/root"));
	parent_env_free(e);

	e = parent_env_build(from, NULL, 0, 1, "TERN_CRASHPOINT");  /* a restarted role */
	T_CHECK(!has(e, "TERN_CRASHPOINT=queue:commit") && has(e, "TERN_STRICT_REPLIES=1"));
	parent_env_free(e);

	e = parent_env_build(NULL, NULL, 0, 1, NULL);
	T_EQ_INT(count(e), 0);
	parent_env_free(e);
}

static void test_role_and_delivery(void)
{
	char **saved = environ;
	char *env[] = { "HOME=/root", "TZ=UTC", "SECRET=1", NULL };
	environ = env;
	char **r = parent_env_role("parent=3,queue=5", "6:0", 0);
	T_CHECK(has(r, "ROLE_FDS=parent=3,queue=5") && has(r, "ROLE_LISTEN=6:0") && has(r, "TZ=UTC"));
	T_EQ_INT(count(r), 3);
	parent_env_free(r);
	char **d = parent_env_delivery("/etc/tern/x.conf", "/usr/lib/tern/tern-queue");
	T_CHECK(has(d, "TERN_CONF=/etc/tern/x.conf") && has(d, "TERN_QUEUE=/usr/lib/tern/tern-queue"));
	T_EQ_INT(count(d), 3);
	parent_env_free(d);
	d = parent_env_delivery(NULL, "/q");
	T_CHECK(has(d, "TERN_QUEUE=/q") && count(d) == 2);
	parent_env_free(d);
	environ = saved;
}

static void test_scrub(void)
{
	char *secret = strdup("SECRET_TOKEN=hunter2");
	char *tz = strdup("TZ=UTC");
	char **saved = environ;
	char *env[] = { secret, tz, NULL };
	environ = env;
	parent_env_scrub();
	T_CHECK(getenv("SECRET_TOKEN") == NULL);
	T_EQ_STR(getenv("TZ"), "UTC");
	T_CHECK(secret[0] == '\0' && strstr(secret + 1, "hunter2") == NULL);  /* wiped in place */
	free(secret);
	free(tz);
	environ = saved;
}

static void run(void)
{
	test_build();
	test_role_and_delivery();
	test_scrub();
}

T_MAIN(run)
