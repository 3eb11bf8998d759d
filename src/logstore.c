/* logstore.c - the daemon's own copy of every node's output (jgsched/logstore.h).
 *
 * Layout under the root-owned directory (0700):
 *   <group id>/                    0700, one per group with output
 *   <group id>/<job>-<rank>.log    the node's output, every attempt in order
 *   <group id>/<job>-<rank>.attempts   "<attempt> <offset>\n" where each starts
 * Everything is opened relative to the directory's descriptor, no link
 * followed.  A few descriptors of recently appended nodes stay open (an LRU
 * of CACHE_SLOTS), with what they hold, so a stream of small pieces costs one
 * write each. */
#include "jgsched/logstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_SLOTS 16
#define ATTEMPTS_MAX 1024           /* attempt lines kept per node */
#define ATTEMPTS_FILE_MAX (64 * 1024)
#define JOB_NAME_MAX 128

typedef struct {
    bool used;
    int64_t group_id;
    char job[JOB_NAME_MAX + 1];
    int rank;
    int fd;                     /* the .log, O_WRONLY|O_APPEND */
    int64_t size;
    int last_attempt;           /* the last attempt in the index (0: none) */
    uint64_t used_at;           /* LRU stamp */
} slot_t;

struct jg_logstore {
    int dirfd;
    char *dir;
    slot_t slots[CACHE_SLOTS];
    uint64_t clock;
};

static bool job_ok(const char *job)
{
    size_t len = job ? strlen(job) : 0;
    return len > 0 && len <= JOB_NAME_MAX && !strchr(job, '/') && job[0] != '.';
}

static void node_names(int64_t group_id, const char *job, int rank, char *log, char *index,
                       size_t len)
{
    snprintf(log, len, "%" PRId64 "/%s-%d.log", group_id, job, rank);
    snprintf(index, len, "%" PRId64 "/%s-%d.attempts", group_id, job, rank);
}

jg_logstore_t *jg_logstore_open(const char *dir, jg_error_t *err)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        jg_errprintf(err, "cannot create the log directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        jg_errprintf(err, "cannot open the log directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    /* Ours alone: nobody else may put a file (or a link) in it. */
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || fchmod(fd, 0700) < 0) {
        jg_errprintf(err, "the log directory %s is not the daemon's own (owner uid %d)", dir,
                     (int)st.st_uid);
        close(fd);
        return NULL;
    }
    jg_logstore_t *ls = jg_xcalloc(1, sizeof *ls);
    ls->dirfd = fd;
    ls->dir = jg_xstrdup(dir);
    return ls;
}

static void slot_close(slot_t *s)
{
    if (s->used && s->fd >= 0)
        close(s->fd);
    *s = (slot_t){.fd = -1};
}

void jg_logstore_close(jg_logstore_t *ls)
{
    if (!ls)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        slot_close(&ls->slots[i]);
    close(ls->dirfd);
    free(ls->dir);
    free(ls);
}

/* Reads the node's attempt index: at most max entries, in order; a line
 * that does not follow the previous one ends it. */
static size_t read_index(jg_logstore_t *ls, const char *index, jg_log_attempt_t *out, size_t max)
{
    int fd = openat(ls->dirfd, index, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char *buf = jg_xmalloc(ATTEMPTS_FILE_MAX + 1);
    size_t have = 0;
    ssize_t r;
    while (have < ATTEMPTS_FILE_MAX &&
           (r = read(fd, buf + have, ATTEMPTS_FILE_MAX - have)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        have += (size_t)r;
    }
    close(fd);
    buf[have] = '\0';
    size_t n = 0;
    char *line = buf, *nl;
    while (n < max && (nl = strchr(line, '\n'))) {
        *nl = '\0';
        int attempt;
        long long offset;
        char extra;
        if (sscanf(line, "%d %lld%c", &attempt, &offset, &extra) != 2 || attempt < 1 ||
            offset < 0 || (n > 0 && (attempt <= out[n - 1].attempt || offset < out[n - 1].offset)))
            break;
        out[n++] = (jg_log_attempt_t){.attempt = attempt, .offset = offset};
        line = nl + 1;
    }
    free(buf);
    return n;
}

static int last_attempt(jg_logstore_t *ls, const char *index)
{
    jg_log_attempt_t *at = jg_xcalloc(ATTEMPTS_MAX, sizeof *at);
    size_t n = read_index(ls, index, at, ATTEMPTS_MAX);
    int last = n ? at[n - 1].attempt : 0;
    free(at);
    return last;
}

static slot_t *slot_find(jg_logstore_t *ls, int64_t group_id, const char *job, int rank)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        slot_t *s = &ls->slots[i];
        if (s->used && s->group_id == group_id && s->rank == rank && strcmp(s->job, job) == 0)
            return s;
    }
    return NULL;
}

/* The node's cached slot, opening (and creating) its log when needed. */
static slot_t *slot_get(jg_logstore_t *ls, int64_t group_id, const char *job, int rank,
                        jg_error_t *err)
{
    slot_t *s = slot_find(ls, group_id, job, rank);
    if (s) {
        s->used_at = ++ls->clock;
        return s;
    }
    char gname[32], log[256], index[256];
    snprintf(gname, sizeof gname, "%" PRId64, group_id);
    if (mkdirat(ls->dirfd, gname, 0700) < 0 && errno != EEXIST) {
        jg_errprintf(err, "cannot create %s/%s: %s", ls->dir, gname, strerror(errno));
        return NULL;
    }
    node_names(group_id, job, rank, log, index, sizeof log);
    int fd = openat(ls->dirfd, log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        jg_errprintf(err, "cannot open %s/%s: %s", ls->dir, log, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    slot_t *victim = &ls->slots[0];
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (!ls->slots[i].used) {
            victim = &ls->slots[i];
            break;
        }
        if (ls->slots[i].used_at < victim->used_at)
            victim = &ls->slots[i];
    }
    slot_close(victim);
    *victim = (slot_t){.used = true, .group_id = group_id, .rank = rank, .fd = fd,
                       .size = st.st_size, .last_attempt = last_attempt(ls, index),
                       .used_at = ++ls->clock};
    snprintf(victim->job, sizeof victim->job, "%s", job);
    return victim;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int jg_logstore_append(jg_logstore_t *ls, int64_t group_id, const char *job, int rank,
                       int attempt, const void *data, size_t len, jg_error_t *err)
{
    if (!job_ok(job) || rank < 0 || attempt < 1)
        return jg_errprintf(err, "log of %s-%d: bad node name or attempt", job ? job : "?", rank);
    slot_t *s = slot_get(ls, group_id, job, rank, err);
    if (!s)
        return -1;
    if (attempt > s->last_attempt) {
        char log[256], index[256], line[64];
        node_names(group_id, job, rank, log, index, sizeof log);
        int ifd = openat(ls->dirfd, index, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
                         0600);
        int n = snprintf(line, sizeof line, "%d %lld\n", attempt, (long long)s->size);
        int rc = ifd < 0 ? -1 : write_all(ifd, line, (size_t)n);
        int e = errno;
        if (ifd >= 0)
            close(ifd);
        if (rc < 0)
            return jg_errprintf(err, "cannot record attempt %d in %s/%s: %s", attempt, ls->dir,
                                index, strerror(e));
        s->last_attempt = attempt;
    }
    if (len == 0)
        return 0;
    if (write_all(s->fd, data, len) < 0) {
        int e = errno;
        /* Whatever part went in comes out: the log holds whole pieces only. */
        if (ftruncate(s->fd, (off_t)s->size) < 0)
            jg_log("error", "logstore: cannot take back a partial write to %s: %s", ls->dir,
                   strerror(errno));
        return jg_errprintf(err, "cannot append to the log of %s-%d of group %" PRId64 ": %s",
                            job, rank, group_id, strerror(e));
    }
    s->size += (int64_t)len;
    return 0;
}

int64_t jg_logstore_size(jg_logstore_t *ls, int64_t group_id, const char *job, int rank)
{
    if (!job_ok(job))
        return 0;
    slot_t *s = slot_find(ls, group_id, job, rank);
    if (s)
        return s->size;
    char log[256], index[256];
    node_names(group_id, job, rank, log, index, sizeof log);
    struct stat st;
    return fstatat(ls->dirfd, log, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (int64_t)st.st_size : 0;
}

int64_t jg_logstore_attempt_size(jg_logstore_t *ls, int64_t group_id, const char *job, int rank,
                                 int attempt)
{
    int64_t size = jg_logstore_size(ls, group_id, job, rank);
    jg_log_attempt_t *at = jg_xcalloc(ATTEMPTS_MAX, sizeof *at);
    size_t n = jg_logstore_attempts(ls, group_id, job, rank, at, ATTEMPTS_MAX);
    int64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (at[i].attempt != attempt)
            continue;
        int64_t end = i + 1 < n ? at[i + 1].offset : size;
        bytes = end - at[i].offset;
        break;
    }
    free(at);
    return bytes > 0 ? bytes : 0;
}

int jg_logstore_open_read(jg_logstore_t *ls, int64_t group_id, const char *job, int rank,
                          jg_error_t *err)
{
    if (!job_ok(job)) {
        jg_errprintf(err, "no log for %s-%d of group %" PRId64, job ? job : "?", rank, group_id);
        errno = ENOENT;
        return -1;
    }
    char log[256], index[256];
    node_names(group_id, job, rank, log, index, sizeof log);
    int fd = openat(ls->dirfd, log, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    if (fd < 0 && e == ENOENT)
        jg_errprintf(err, "no log for %s-%d of group %" PRId64, job, rank, group_id);
    else if (fd < 0)
        jg_errprintf(err, "cannot read the log of %s-%d of group %" PRId64 ": %s", job, rank,
                     group_id, strerror(e));
    errno = e;
    return fd;
}

size_t jg_logstore_attempts(jg_logstore_t *ls, int64_t group_id, const char *job, int rank,
                            jg_log_attempt_t *out, size_t max)
{
    if (!job_ok(job))
        return 0;
    char log[256], index[256];
    node_names(group_id, job, rank, log, index, sizeof log);
    return read_index(ls, index, out, max);
}

int jg_logstore_remove_group(jg_logstore_t *ls, int64_t group_id, jg_error_t *err)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (ls->slots[i].used && ls->slots[i].group_id == group_id)
            slot_close(&ls->slots[i]);
    char gname[32];
    snprintf(gname, sizeof gname, "%" PRId64, group_id);
    int gfd = openat(ls->dirfd, gname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (gfd < 0)
        return errno == ENOENT ? 0 : jg_errprintf(err, "cannot open %s/%s: %s", ls->dir, gname,
                                                  strerror(errno));
    DIR *d = fdopendir(gfd);
    if (!d) {
        close(gfd);
        return jg_errprintf(err, "cannot read %s/%s: %s", ls->dir, gname, strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            unlinkat(gfd, de->d_name, 0) < 0 && rc == 0)
            rc = jg_errprintf(err, "cannot remove %s/%s/%s: %s", ls->dir, gname, de->d_name,
                              strerror(errno));
    closedir(d);
    if (rc == 0 && unlinkat(ls->dirfd, gname, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = jg_errprintf(err, "cannot remove %s/%s: %s", ls->dir, gname, strerror(errno));
    return rc;
}
