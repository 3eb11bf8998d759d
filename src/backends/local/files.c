/* backends/local/files.c - paths, and files in directories a node's user can write
 * (open_node_file & co).
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *group_dir(const local_t *b, int64_t group_id)
{
    return jg_xasprintf("%s/groups/%" PRId64, b->state_dir, group_id);
}

char *node_dir(const local_t *b, int64_t group_id, const char *job, int rank)
{
    return jg_xasprintf("%s/groups/%" PRId64 "/%s-%d", b->state_dir, group_id, job, rank);
}

int own(const creds_t *c, const char *path, jg_error_t *err)
{
    if (c->active && lchown(path, c->uid, c->gid) < 0)
        return jg_errprintf(err, "cannot chown %s: %s", path, strerror(errno));
    return 0;
}

/* ---- files the node's user can write -------------------------------------
 *
 * A node directory belongs to the node's user, who may put a symbolic link, a
 * FIFO or a hard link in place of any file the daemon opens there.  Every such
 * open goes through open_node_file: no link is followed, no open blocks, and
 * only a regular file with one name is accepted. */

/* Opens dir/name with flags (O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC added);
 * -1 with errno (ELOOP for a link, EINVAL for what is not a regular file with
 * a single name) and a message in err.  Fills *st when given. */
int open_node_file(const char *dir, const char *name, int flags, mode_t mode,
                   struct stat *st, jg_error_t *err)
{
    struct stat sb;
    char *path = jg_xasprintf("%s/%s", dir, name);
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    int e = errno;
    if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1)) {
        close(fd);
        fd = -1;
        e = EINVAL;
    }
    if (fd < 0 && e == EINVAL)
        jg_errprintf(err, "refusing %s: it is not a regular file of its own (a FIFO, device "
                     "or hard link was put there)", path);
    else if (fd < 0 && e == ELOOP)
        jg_errprintf(err, "refusing %s: it is a symbolic link", path);
    else if (fd < 0)
        jg_errprintf(err, "cannot open %s: %s", path, strerror(e));
    free(path);
    if (fd >= 0 && st)
        *st = sb;
    errno = e;
    return fd;
}

/* Opens a record of our own (a file the daemon wrote in a directory only it
 * may write): refused unless it is a regular file we own that nobody else
 * may write, so a record is never something a user put there. */
int open_own_record(const char *path, int flags, jg_error_t *err)
{
    struct stat st;
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    int e = errno;
    if (fd < 0)
        jg_errprintf(err, "cannot open %s: %s", path, strerror(e));
    else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
             st.st_nlink != 1 || (st.st_mode & 022)) {
        close(fd);
        fd = -1;
        e = EPERM;
        jg_errprintf(err, "refusing %s: not a file only the daemon may write", path);
    }
    errno = e;
    return fd;
}

/* Writes dir/name through a temporary file and rename(), so a process still
 * reading the previous version keeps it whole. */
int write_file(const creds_t *c, const char *dir, const char *name, const char *data,
               size_t len, mode_t mode, jg_error_t *err)
{
    int rc = -1;
    char *path = jg_xasprintf("%s/%s", dir, name);
    char *tmp = jg_xasprintf("%s/.%s.tmp", dir, name);
    int fd = -1;
    /* A fresh file (O_EXCL): whatever the user left at the temporary name,
     * a link or a FIFO, is removed, never opened. */
    if (unlink(tmp) < 0 && errno != ENOENT) {
        jg_errprintf(err, "cannot remove %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        jg_errprintf(err, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            jg_errprintf(err, "cannot write %s: %s", tmp, strerror(errno));
            goto done;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) < 0 || (c->active && fchown(fd, c->uid, c->gid) < 0)) {
        jg_errprintf(err, "cannot set owner or mode of %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) < 0) {
        fd = -1;
        jg_errprintf(err, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        jg_errprintf(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

/* Reads a small file into buf (NUL-terminated); -1 if it cannot be read. */
ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == len - 1)
            break;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}
