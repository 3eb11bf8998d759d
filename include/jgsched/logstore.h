/* logstore.h - the daemon's own copy of every node's output.
 *
 * Backends deliver output as JG_BACKEND_LOG events (a stream, in pieces);
 * sched appends each piece here with its attempt, and the daemon serves
 * `jgsched logs` from here, so logs outlive nodes, pods and attempts and
 * never depend on a backend keeping them.  Files live under a root-owned
 * directory (<state_dir>/logs/<group>/<job>-<rank>.log, with an index of where
 * each attempt starts); nothing in it is user-writable, so reading it back
 * needs none of the care files in user directories need.
 *
 * Not thread-safe; one instance per daemon.
 */
#ifndef JGSCHED_LOGSTORE_H
#define JGSCHED_LOGSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "jgsched/error.h"

typedef struct jg_logstore jg_logstore_t;

typedef struct {
    int attempt;            /* 1 for the first */
    int64_t offset;         /* where its output starts in the node's log */
} jg_log_attempt_t;

/* Opens (creating it 0700 if missing) the directory dir.  NULL + err. */
jg_logstore_t *jg_logstore_open(const char *dir, jg_error_t *err);
void jg_logstore_close(jg_logstore_t *ls);     /* NULL ok */

/* Appends len bytes of node job-rank's output for attempt (>= the last one
 * appended for that node; a higher one starts a new attempt in the index).
 * -1 + err (disk full, ...): the bytes are lost, the log stays consistent. */
int jg_logstore_append(jg_logstore_t *ls, int64_t group_id, const char *job, int rank,
                       int attempt, const void *data, size_t len, jg_error_t *err);

/* Bytes stored for the node, all attempts (0 if none), and of those the ones
 * of `attempt`: what reattach() resumes after. */
int64_t jg_logstore_size(jg_logstore_t *ls, int64_t group_id, const char *job, int rank);
int64_t jg_logstore_attempt_size(jg_logstore_t *ls, int64_t group_id, const char *job,
                                 int rank, int attempt);

/* A new read-only descriptor on the node's log (caller closes); -1 + err with
 * errno ENOENT when the node has no output stored. */
int jg_logstore_open_read(jg_logstore_t *ls, int64_t group_id, const char *job, int rank,
                          jg_error_t *err);

/* Where each attempt starts, in attempt order: fills at most max, returns
 * how many (0 when none stored). */
size_t jg_logstore_attempts(jg_logstore_t *ls, int64_t group_id, const char *job, int rank,
                            jg_log_attempt_t *out, size_t max);

/* Deletes every log of the group (purge).  0 also when there was none. */
int jg_logstore_remove_group(jg_logstore_t *ls, int64_t group_id, jg_error_t *err);

#endif
