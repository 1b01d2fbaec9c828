/* fsutil — small file-system and descriptor helpers. Owns nothing; callers log failures. */
#ifndef TERN_FSUTIL_H
#define TERN_FSUTIL_H
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
/* mkdir -p: create path and its missing parents with mode; 0, or -1 with errno */
int fs_mkdirs(const char *path, mode_t mode);
/* write all n bytes (EINTR retried); 0 / -1 */
int fs_write_all(int fd, const void *p, size_t n);
/* Open the directory `name` under dirfd without following a symbolic link at name
 * (O_DIRECTORY|O_NOFOLLOW, close-on-exec) and fstat it into st. Returns the fd, or -1 with
 * errno: ELOOP for a symbolic link, ENOTDIR for something else than a directory. */
int fs_opendir_at(int dirfd, const char *name, struct stat *st);
/* Close every descriptor >= low except the n listed in keep (any order, duplicates and
 * values below low allowed). 0 / -1 (too many to keep). */
int fs_close_except(int low, const int *keep, size_t n);
/* Make sure descriptors 0, 1 and 2 are open (on /dev/null if they were not), so that no
 * file opened later takes their place. */
void fs_std_fds(void);
#endif
