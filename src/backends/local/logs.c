/* backends/local/logs.c - a node's output: where each attempt starts in its
 * output.log, and the stream of it the core gets as LOG events.
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

/* One line of a node's "attempts" file: where an attempt's output starts. */
typedef struct {
    int attempt;
    int64_t offset;
} attempt_start_t;

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
static size_t read_attempts_file(const char *dir, attempt_start_t *out, size_t max)
{
    if (max == 0)
        return 0;
    jg_error_t err;
    int fd = open_node_file(dir, JG_SHIM_ATTEMPTS, O_RDONLY, 0, NULL, &err);
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
        out[n++] = (attempt_start_t){.attempt = attempt, .offset = offset};
        line = nl + 1;
    }
    return n;
}

/* ---- output streams -------------------------------------------------------
 *
 * A node's output.log is the node's user's file: it is opened once, by
 * open_node_file (no link, no FIFO, a regular file of its own), and the
 * descriptor kept; new bytes are read on a timer while the node lives
 * (STREAM_TICK_MS, at most STREAM_TICK_MAX bytes a node a tick, again at once
 * when a node had more) and drained when it ends, before its final event, so
 * the core holds all of a node's output by the time it learns of its end.
 * Each piece is tagged with the attempt whose output it is: bytes before
 * this attempt's start (the node's `attempts` file) belong to earlier ones,
 * which only happens after a reattach that resumes behind them. */

#define STREAM_TICK_MS 100
#define STREAM_TICK_MAX (256 * 1024)        /* bytes a node a tick */
#define STREAM_DRAIN_MAX (64 * 1024 * 1024) /* bytes read at a node's end, at most */
#define STREAM_MAX_ATTEMPTS 64

static void stream_tick(jg_loop_t *loop, void *arg);

void stream_arm(local_t *b, int64_t delay_ms)
{
    if (!b->stream_timer)
        b->stream_timer = jg_loop_add_timer(b->loop, delay_ms, stream_tick, b);
}

void stream_close(node_t *n)
{
    if (n->stream.fd >= 0)
        close(n->stream.fd);
    n->stream.fd = -1;
}

/* Opens output.log once; false when it is not there (yet) or was refused. */
static bool stream_open(node_t *n)
{
    if (n->stream.fd >= 0)
        return true;
    if (n->stream.refused)
        return false;
    jg_error_t err;
    int fd = open_node_file(n->dir, JG_SHIM_LOG, O_RDONLY, 0, NULL, &err);
    if (fd < 0) {
        if (errno != ENOENT) {
            n->stream.refused = true;       /* once: the user may provoke it at will */
            jg_log("warn", "group %" PRId64 ": its output is not collected: %s", n->group_id,
                   err.text);
        }
        return false;
    }
    n->stream.fd = fd;
    attempt_start_t at[STREAM_MAX_ATTEMPTS];
    size_t k = read_attempts_file(n->dir, at, STREAM_MAX_ATTEMPTS);
    for (size_t i = 0; i < k; i++)
        if (at[i].attempt == n->attempt)
            n->stream.attempt_start = at[i].offset;
    if (!n->stream.resume_set)
        n->stream.offset = n->stream.attempt_start;
    return true;
}

/* The attempt that wrote the byte at offset, and where its output ends
 * (INT64_MAX: open-ended). */
static int stream_attempt_at(const node_t *n, int64_t offset, int64_t *ends)
{
    *ends = INT64_MAX;
    if (offset >= n->stream.attempt_start)
        return n->attempt;
    *ends = n->stream.attempt_start;
    attempt_start_t at[STREAM_MAX_ATTEMPTS];
    size_t k = read_attempts_file(n->dir, at, STREAM_MAX_ATTEMPTS);
    int attempt = 1;
    for (size_t i = 0; i < k; i++) {
        if (at[i].offset <= offset)
            attempt = at[i].attempt;
        else if (at[i].offset < *ends) {
            *ends = at[i].offset;
            break;
        }
    }
    return attempt < n->attempt ? attempt : n->attempt;
}

/* Reads at most max new bytes of the node's output into LOG events; returns
 * how many. */
static size_t stream_read(node_t *n, size_t max)
{
    if (n->quiet || !stream_open(n))
        return 0;
    size_t total = 0;
    char *buf = jg_xmalloc(64 * 1024);
    while (total < max) {
        int64_t ends;
        int attempt = stream_attempt_at(n, n->stream.offset, &ends);
        size_t want = 64 * 1024;
        if (want > max - total)
            want = max - total;
        if (ends != INT64_MAX && (int64_t)want > ends - n->stream.offset)
            want = (size_t)(ends - n->stream.offset);
        ssize_t r = pread(n->stream.fd, buf, want, (off_t)n->stream.offset);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        queued_t *q = queue_event(n->b, JG_BACKEND_LOG, n->group_id, n->job_index, n->rank,
                                  attempt, NULL, NULL, false, 0, 0);
        q->data = jg_xmalloc((size_t)r);
        memcpy(q->data, buf, (size_t)r);
        q->ev.len = (size_t)r;
        n->stream.offset += r;
        total += (size_t)r;
    }
    free(buf);
    return total;
}

void stream_drain(node_t *n)
{
    size_t got = stream_read(n, STREAM_DRAIN_MAX);
    if (got == STREAM_DRAIN_MAX)
        jg_log("warn", "group %" PRId64 ": node %d-%d ended with more than %d MiB of output "
               "not collected yet; the rest is not kept", n->group_id, n->job_index, n->rank,
               STREAM_DRAIN_MAX >> 20);
}

static void stream_tick(jg_loop_t *loop, void *arg)
{
    (void)loop;
    local_t *b = arg;
    b->stream_timer = 0;
    bool any = false, behind = false;
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->quiet || n->shim_gone)
            continue;
        any = true;
        if (stream_read(n, STREAM_TICK_MAX) == STREAM_TICK_MAX)
            behind = true;
    }
    flush_events(b);
    if (any)
        stream_arm(b, behind ? 0 : STREAM_TICK_MS);
}
