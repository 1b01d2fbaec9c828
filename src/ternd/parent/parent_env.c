/* parent_env — the environments the parent hands on. Whatever ternd was started with (root's
 * HOME, a shell's secrets) stays in the parent: a role gets ROLE_FDS, ROLE_LISTEN and TZ; a
 * delivery child (tern-local's code) gets TERN_QUEUE, TERN_CONF and TZ. In the test build
 * only, the tests' TERN_* hook variables are passed on too. The parent scrubs its own
 * environment at start, so that no forked child holds the rest even in memory.
 * Owns: those lists. Trusts: nothing in the environment it filters. */
#include "ternd/parent/parent_env.h"
#include "lib/buf.h"
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* set by the parent itself, never taken from its own environment */
static const char *const parent_env_own[] = { "ROLE_FDS=", "ROLE_LISTEN=", "TERN_QUEUE=",
                                              "TERN_CONF=" };

static int parent_env_prefix(const char *var, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(var, list[i], strlen(list[i])) == 0)
			return 1;
	return 0;
}

static int parent_env_keep(const char *var, int test, const char *drop)
{
	size_t nown = sizeof parent_env_own / sizeof parent_env_own[0];
	if (parent_env_prefix(var, parent_env_own, nown))
		return 0;
	if (drop && strncmp(var, drop, strlen(drop)) == 0 && var[strlen(drop)] == '=')
		return 0;
	if (strncmp(var, "TZ=", 3) == 0)
		return 1;
	return test && strncmp(var, "TERN_", 5) == 0;
}

char **parent_env_build(char *const *from, const char *const *extra, size_t nextra, int test,
                        const char *drop)
{
	size_t n = 0, k = 0;
	while (from && from[n])
		n++;
	char **env = xcalloc(n + nextra + 1, sizeof *env);
	for (size_t i = 0; i < nextra; i++)
		if (extra[i])
			env[k++] = xstrdup(extra[i]);
	for (size_t i = 0; i < n; i++)
		if (parent_env_keep(from[i], test, drop))
			env[k++] = xstrdup(from[i]);
	env[k] = NULL;
	return env;
}

void parent_env_free(char **env)
{
	for (char **e = env; e && *e; e++)
		free(*e);
	free(env);
}

#ifdef TERN_TEST
#define PARENT_ENV_TEST 1
#else
#define PARENT_ENV_TEST 0
#endif

static char *parent_env_pair(const char *k, const char *v)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s=%s", k, v);
	return buf_detach(&b);
}

void parent_env_scrub(void)
{
	char **kept = parent_env_build(environ, NULL, 0, PARENT_ENV_TEST, NULL);
	for (char **e = environ; e && *e; e++)
		memset(*e, 0, strlen(*e));   /* also out of the memory every fork inherits */
	clearenv();
	for (char **e = kept; *e; e++)
		putenv(*e);                  /* the strings now belong to the environment */
	free(kept);
}

char **parent_env_role(const char *fds, const char *listen, int restarted)
{
	char *extra[2] = { parent_env_pair("ROLE_FDS", fds), parent_env_pair("ROLE_LISTEN", listen) };
	/* a restarted role must not die again at the crash point that killed its predecessor */
	char **env = parent_env_build(environ, (const char *const *)extra, 2, PARENT_ENV_TEST,
	                              restarted ? "TERN_CRASHPOINT" : NULL);
	free(extra[0]);
	free(extra[1]);
	return env;
}

char **parent_env_delivery(const char *cfgpath, const char *queue_exe)
{
	char *extra[2] = { parent_env_pair("TERN_QUEUE", queue_exe),
	                   cfgpath ? parent_env_pair("TERN_CONF", cfgpath) : NULL };
	char **env = parent_env_build(environ, (const char *const *)extra, 2, PARENT_ENV_TEST, NULL);
	free(extra[0]);
	free(extra[1]);
	return env;
}
