/* fsutil_open.c - opening a directory a user can write without following
 * their links (jg_fs_open_dir; include/jgsched/fsutil.h).  On its own, beside
 * fsutil.c, because a node's first process (jgsched-shim --node) links it and
 * nothing else of fsutil. */
#include "jgsched/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int jg_fs_open_dir(const char *path, bool create, uid_t uid, gid_t gid)
{
    if (!path || path[0] != '/') {
        errno = EINVAL;
        return -1;
    }
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    const char *p = path;
    char comp[NAME_MAX + 1];
    while (fd >= 0) {
        while (*p == '/')
            p++;
        if (!*p)
            return fd;
        size_t n = strcspn(p, "/");
        if (n > NAME_MAX || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            close(fd);
            errno = n > NAME_MAX ? ENAMETOOLONG : EINVAL;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        p += n;
        int next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, comp, 0755) == 0) {
                next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                /* Given away through the descriptor: whatever sits at the name now. */
                if (next >= 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) &&
                    fchownat(next, "", uid, gid, AT_EMPTY_PATH) < 0) {
                    int e = errno;
                    close(next);
                    next = -1;
                    errno = e;
                }
            } else if (errno == EEXIST) {
                next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            }
        }
        int e = errno;
        struct stat st;
        if (next < 0 && (e == ENOTDIR || e == ELOOP) &&
            fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            e = ELOOP;
        close(fd);
        errno = e;
        fd = next;
    }
    return -1;
}

