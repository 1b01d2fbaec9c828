/* parent — the root process of ternd (see parent.c, parent_spool.c, parent_fork.c,
 * parent_env.c). */
#ifndef TERN_PARENT_H
#define TERN_PARENT_H
#include "mail/config.h"
#include <stdint.h>
#include <sys/types.h>
int parent_main(struct config *cfg, const char *path, const char *argv0, int debug);

/* parent_spool.c: create and check the spool as root (exits 78 when it is unsafe); returns
 * a descriptor of the verified spool directory */
int parent_spool_prepare(const struct config *c);
/* log event=spool_unsafe path=DIR/NAME problem=... and exit 78; name may be NULL */
void parent_spool_refuse(const char *dir, const char *name, const char *problem)
	__attribute__((noreturn));

/* parent_pop.c: M_POP_SPAWN from lookup: check the pair, fork and exec tern-pop3 (the program
 * exe), answer the smtp role (M_POP_READY, frame id = id) */
struct chan;
struct msg_reader;
void parent_pop_spawn(const struct config *cfg, const char *exe, struct chan *smtp,
                      uint32_t id, struct msg_reader *r);
/* parent.c: fork() with every signal blocked across it; the child starts with default
 * dispositions and an empty mask */
pid_t parent_fork(void);
/* parent_prog.c: a prog run's environment (HOME USER LOGNAME PATH SHELL TZ), and the
 * child's set-up and exec after parent_fork (never returns) */
char **parent_prog_env(const char *user, const char *home);
void parent_prog_exec(uint64_t uid, uint64_t gid, const char *home, char **argv, char **envp,
                      int msgfd, int sock) __attribute__((noreturn));
/* a reaped pid: 1 if it was a POP3 worker (forgotten now) */
int parent_pop_reaped(pid_t pid);
#endif
