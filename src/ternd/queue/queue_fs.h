/* queue_fs — the spool's files and directories (doc/QUEUE.md): creating, syncing, renaming,
 * appending, removing and quarantining. Owns: the spool directory fds. Trusts: nothing in
 * the spool beyond what the envelope parser accepts. Only the queue role calls this. */
#ifndef TERN_QUEUE_FS_H
#define TERN_QUEUE_FS_H
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

enum qdir { QD_SPOOL = 0, QD_DATA, QD_ENV, QD_TMP, QD_DROP, QD_QUAR, QD_N };

int  queue_fs_open(const char *spool, int create);         /* open/create dirs, take the lock */
int  queue_fs_dirfd(enum qdir d);
int  queue_fs_create_data(uint64_t *id);                    /* O_EXCL; write-only fd */
int  queue_fs_open_data(uint64_t id);                       /* read-only fd */
int  queue_fs_write_tmp_env(uint64_t id, const char *p, size_t n); /* write+keep fd, returns fd */
int  queue_fs_sync_batch(int *fds, size_t nfds, int use_syncfs);   /* data+tmp env durable */
int  queue_fs_commit_rename(uint64_t id);                   /* tmp/ID -> env/ID */
int  queue_fs_sync_dir(enum qdir d);
int  queue_fs_append(uint64_t id, const char *p, size_t n, int sync);
void queue_fs_remove(uint64_t id);                          /* env first, then data */
int  queue_fs_unlink_env(uint64_t id);                      /* env only (ENOENT is fine) */
void queue_fs_discard_uncommitted(uint64_t id);             /* data + tmp */
void queue_fs_uncommit(uint64_t id);                         /* undo a rename that was not synced */
void queue_fs_quarantine(enum qdir d, const char *name, const char *why);
int  queue_fs_read_env(uint64_t id, char **text, size_t *len);
int  queue_fs_truncate_env(uint64_t id, size_t len);
uint64_t queue_fs_free_bytes(void);
#endif
