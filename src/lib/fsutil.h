/* fsutil — small file-system helpers. Owns nothing; callers log failures. */
#ifndef TERN_FSUTIL_H
#define TERN_FSUTIL_H
#include <sys/types.h>
/* mkdir -p: create path and its missing parents with mode; 0, or -1 with errno */
int fs_mkdirs(const char *path, mode_t mode);
/* write all n bytes (EINTR retried); 0 / -1 */
int fs_write_all(int fd, const void *p, size_t n);
#endif
