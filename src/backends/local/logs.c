/* backends/local/logs.c - a node's log and where each attempt's output starts in it.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"
#include "../../shim_protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTEMPTS_FILE_MAX 16384     /* what we read of a node's "attempts" file */

/* Appends "<attempt> <offset>" to the node's attempts file, so `jgsched logs`
 * can mark where each attempt's output starts.  Only decoration: a failure is
 * logged, never fatal.  The node directory belongs to the node's user, hence
 * open_node_file. */
void note_attempt_start(const char *dir, int attempt, int64_t offset)
{
    jg_error_t err;
    int fd = open_node_file(dir, JG_SHIM_ATTEMPTS, O_WRONLY | O_CREAT | O_APPEND, 0644, NULL,
                            &err);
    if (fd < 0) {
        jg_log("warn", "cannot record attempt %d: %s", attempt, err.text);
        return;
    }
    char line[64];
    int len = snprintf(line, sizeof line, "%d %lld\n", attempt, (long long)offset);
    (void)!write(fd, line, (size_t)len);
    close(fd);
}

/* Reads back the "attempts" lines of a node directory (shim_protocol.h): a
 * bounded, non-blocking read of a regular file, parsed line by line; anything
 * odd ends the list where it is. */
size_t local_log_attempts(jg_backend_t *base, int64_t group_id, const char *job, int rank,
                          jg_log_attempt_t *out, size_t max)
{
    local_t *b = base->impl;
    if (!job || !*job || strchr(job, '/') || job[0] == '.' || max == 0)
        return 0;
    char *dir = node_dir(b, group_id, job, rank);
    jg_error_t err;
    int fd = open_node_file(dir, JG_SHIM_ATTEMPTS, O_RDONLY, 0, NULL, &err);
    free(dir);
    if (fd < 0)
        return 0;
    char buf[ATTEMPTS_FILE_MAX + 1];
    ssize_t r = read(fd, buf, ATTEMPTS_FILE_MAX);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    size_t n = 0;
    char *line = buf;
    while (n < max) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        int attempt;
        long long offset;
        char extra;
        if (sscanf(line, "%d %lld%c", &attempt, &offset, &extra) != 2 || attempt < 1 ||
            offset < 0 || (n > 0 && (attempt <= out[n - 1].attempt ||
                                     offset < out[n - 1].offset)))
            break;
        out[n++] = (jg_log_attempt_t){.attempt = attempt, .offset = offset};
        line = nl + 1;
    }
    return n;
}

int local_open_log(jg_backend_t *base, int64_t group_id, const char *job, int rank,
                   jg_error_t *err)
{
    local_t *b = base->impl;
    if (!job || !*job || strchr(job, '/') || job[0] == '.') {
        jg_errprintf(err, "no log for %s-%d of group %" PRId64, job ? job : "?", rank, group_id);
        errno = ENOENT;
        return -1;
    }
    char *dir = node_dir(b, group_id, job, rank);
    jg_error_t why;
    int fd = open_node_file(dir, JG_SHIM_LOG, O_RDONLY, 0, NULL, &why);
    int e = errno;
    free(dir);
    if (fd < 0 && e == ENOENT)
        jg_errprintf(err, "no log for %s-%d of group %" PRId64, job, rank, group_id);
    else if (fd < 0 && (e == ELOOP || e == EINVAL)) {
        jg_log("warn", "group %" PRId64 ": %s", group_id, why.text);
        jg_errprintf(err, "the log of %s-%d of group %" PRId64 " is not a regular file "
                     "(output.log was replaced by a link, FIFO or device): refused", job, rank,
                     group_id);
    } else if (fd < 0)
        jg_errprintf(err, "cannot read the log of %s-%d of group %" PRId64 ": %s", job, rank,
                     group_id, strerror(e));
    errno = e;      /* open_log's contract: ENOENT means no log yet */
    return fd;
}
