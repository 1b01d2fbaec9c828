/* parent_env — the environments the parent gives roles and delivery children (parent_env.c). */
#ifndef TERN_PARENT_ENV_H
#define TERN_PARENT_ENV_H
#include <stddef.h>
/* A new environment: the nextra strings of extra (NULL entries skipped) followed by what
 * `from` holds of TZ and, when test is set, of the TERN_* variables; never ROLE_FDS,
 * ROLE_LISTEN, TERN_QUEUE, TERN_CONF from `from`, nor the variable named drop. Free with
 * parent_env_free. */
char **parent_env_build(char *const *from, const char *const *extra, size_t nextra, int test,
                        const char *drop);
void parent_env_free(char **env);
/* at the parent's start: keep only what parent_env_build keeps (TZ, test hooks), and wipe
 * the rest, strings included */
void parent_env_scrub(void);
/* a role's environment: ROLE_FDS, ROLE_LISTEN, TZ (+ test hooks; TERN_CRASHPOINT only for a
 * role's first start) */
char **parent_env_role(const char *fds, const char *listen, int restarted);
/* a delivery child's environment: TERN_QUEUE, TERN_CONF (cfgpath may be NULL), TZ (+ hooks) */
char **parent_env_delivery(const char *cfgpath, const char *queue_exe);
#endif
