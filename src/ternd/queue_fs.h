/* queue_fs — the spool's files and directories (doc/QUEUE.md): creating, syncing, renaming,
 * appending, removing and quarantining. Owns: the spool directory fds. Trusts: nothing in
 * the spool beyond what the envelope parser accepts. Only the queue role calls this. */
#ifndef TERN_QUEUE_FS_H
#define TERN_QUEUE_FS_H
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

enum qdir { QD_SPOOL = 0, QD_DATA, QD_ENV, QD_TMP, QD_DROP, QD_QUAR, QD_N };

int  qfs_open(const char *spool, int create);         /* open/create dirs, take the lock */
int  qfs_dirfd(enum qdir d);
int  qfs_create_data(uint64_t *id);                    /* O_EXCL; returns rw fd */
int  qfs_open_data(uint64_t id);                       /* read-only fd */
int  qfs_write_tmp_env(uint64_t id, const char *p, size_t n); /* write+keep fd, returns fd */
int  qfs_sync_batch(int *fds, size_t nfds, int use_syncfs);   /* data+tmp env durable */
int  qfs_commit_rename(uint64_t id);                   /* tmp/ID -> env/ID */
int  qfs_sync_dir(enum qdir d);
int  qfs_append(uint64_t id, const char *p, size_t n, int sync);
void qfs_remove(uint64_t id);                          /* env first, then data */
void qfs_discard_uncommitted(uint64_t id);             /* data + tmp */
void qfs_uncommit(uint64_t id);                         /* undo a rename that was not synced */
void qfs_quarantine(enum qdir d, const char *name, const char *why);
int  qfs_read_env(uint64_t id, char **text, size_t *len);
int  qfs_truncate_env(uint64_t id, size_t len);
uint64_t qfs_free_bytes(void);
#endif
