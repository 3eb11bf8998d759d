/* backend.h - the one interface between the scheduler core and where nodes run.
 *
 * The core (sched) calls these operations and learns what happened only through
 * events the backend reports back on the daemon's event loop; it never asks
 * which backend it drives.  Every operation returns at once: progress (a node
 * started, finished setup, exited, was lost) arrives later as an event, which is
 * how the Kubernetes backend (asynchronous API calls, a watch stream) fits the
 * same shape as local processes.
 *
 * Whatever identifies a node inside a backend (pid + start time, a pod name) is
 * an opaque handle string reported with JG_BACKEND_NODE_STARTED; the core stores
 * it and gives it back to reattach() after a daemon restart.
 */
#ifndef JGSCHED_BACKEND_H
#define JGSCHED_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jgsched/error.h"
#include "jgsched/loop.h"
#include "jgsched/spec.h"

typedef enum {
    JG_BACKEND_NODE_STARTED,    /* the node exists and runs setup; `handle` is set */
    JG_BACKEND_SETUP_DONE,      /* setup passed (or there was none): waiting at the barrier */
    JG_BACKEND_NODE_EXITED,     /* setup or run ended; see in_setup, exit_code, signal */
    JG_BACKEND_NODE_LOST,       /* vanished without a recorded exit (killed, evicted) */
    JG_BACKEND_LAUNCH_FAILED,   /* could not be created at all; see reason */
} jg_backend_event_type_t;

typedef struct {
    jg_backend_event_type_t type;
    int64_t group_id;
    int job_index;
    int rank;
    int attempt;            /* the attempt this event belongs to; stale ones are ignored by sched */
    bool in_setup;          /* NODE_EXITED: it was setup that ended (non-zero: setup failed) */
    int exit_code;          /* NODE_EXITED: 0..255; 128+N when killed by signal N */
    int signal;             /* NODE_EXITED: the signal that killed it, else 0 */
    const char *reason;     /* NODE_LOST / LAUNCH_FAILED: human-readable; NODE_EXITED: what
                             * else is known of the exit (e.g. "killed by the OOM killer
                             * (memory.max 8GB)"), else NULL; borrowed */
    const char *handle;     /* NODE_STARTED: opaque handle to store; borrowed */
    const char *address;    /* NODE_STARTED: the node's IP as its peers reach it; may be NULL */
} jg_backend_event_t;

/* Called on the loop's thread; `ev` and its strings are valid only during the call. */
typedef void (*jg_backend_event_f)(void *ctx, const jg_backend_event_t *ev);

typedef struct {
    int job_index;
    int rank;
    int attempt;            /* 1 for the first attempt */
} jg_node_ref_t;

typedef struct {
    int64_t group_id;
    const jg_group_spec_t *spec;    /* borrowed for the duration of the call */
    uid_t uid;                      /* owner of the group */
    gid_t gid;
    const char *user;
    int64_t submitted_us;           /* wall clock of submit: part of SKYPILOT_TASK_ID */
    const jg_node_ref_t *nodes;     /* which nodes to create: the whole group, or one job's */
    size_t n_nodes;
    const jg_kv_t *volumes;         /* every named volume the group's jobs use: key the
                                     * volume name, value its host directory */
    size_t n_volumes;
} jg_launch_t;

typedef struct {
    int job_index;
    int rank;
    int attempt;
    const char *handle;     /* as reported with NODE_STARTED */
} jg_node_handle_t;

typedef struct jg_backend jg_backend_t;

typedef struct {
    int attempt;            /* 1 for the first */
    int64_t offset;         /* where its output starts in the node's log */
} jg_log_attempt_t;

/* What a backend can hold: the total (admission is all-or-nothing against it)
 * and the largest single node (a job whose node is larger can never run). */
typedef struct {
    double cpus;
    double memory_gb;
    jg_accel_t *accels;         /* name + count available in total */
    size_t n_accels;
    double max_node_cpus;
    double max_node_memory_gb;
    char source[64];            /* "host" (detected) or "config" (declared) */
} jg_capacity_t;

typedef struct {
    const char *name;       /* "local", "kubernetes" */

    /* Creates every listed node at once and returns; each node then reports
     * NODE_STARTED, SETUP_DONE or NODE_EXITED(in_setup), or LAUNCH_FAILED.
     * Fails (with nothing created) only if the request itself is unusable. */
    int (*launch)(jg_backend_t *b, const jg_launch_t *req, jg_error_t *err);

    /* The barrier: lets `run` start on every node of the group that reported
     * SETUP_DONE and has not been released yet. */
    int (*release)(jg_backend_t *b, int64_t group_id, jg_error_t *err);

    /* Stops the group (job_index -1), one job (rank -1) or one node: a polite
     * signal now, a forced kill after grace_ms.  Exits are reported as events. */
    int (*stop)(jg_backend_t *b, int64_t group_id, int job_index, int rank, int grace_ms,
                jg_error_t *err);

    /* A new descriptor reading the node's output from the start (all attempts,
     * in order); the caller owns and closes it.  Works after the group ended and
     * after a daemon restart, until cleanup(purge).  -1 + err on failure, with
     * errno ENOENT when the node has no log (yet); any other errno means the
     * log is there but may not be read (e.g. it is not a regular file). */
    int (*open_log)(jg_backend_t *b, int64_t group_id, const char *job, int rank,
                    jg_error_t *err);

    /* Optional (NULL: the log is one undivided stream): where each attempt's
     * output starts in the log open_log reads.  Fills at most max entries in
     * attempt order and returns how many, 0 when unknown; never fails (these
     * only decorate `jgsched logs`). */
    size_t (*log_attempts)(jg_backend_t *b, int64_t group_id, const char *job, int rank,
                           jg_log_attempt_t *out, size_t max);

    /* After a daemon restart: find these nodes again from their handles and
     * resume reporting their events (including exits that happened meanwhile). */
    int (*reattach)(jg_backend_t *b, int64_t group_id, const jg_node_handle_t *nodes,
                    size_t n, jg_error_t *err);

    /* Removes what the group left behind (processes, namespaces, pods, runtime
     * files).  Logs are kept unless purge is true. */
    int (*cleanup)(jg_backend_t *b, int64_t group_id, bool purge, jg_error_t *err);

    /* After a daemon (re)start, once every active group was reattached: removes
     * what any group NOT in live_groups left behind, as cleanup(purge=false)
     * would (a daemon that died between a group's end and its cleanup, or a
     * group the store no longer lists).  Logs are kept.  May be NULL. */
    int (*sweep)(jg_backend_t *b, const int64_t *live_groups, size_t n, jg_error_t *err);

    /* NULL when nodes get everything DESIGN section 4 promises; else one
     * sentence saying what they lack and why (e.g. they share the host
     * network), to show at submit and in `jgsched infra`.  Owned by the
     * backend, valid until destroy.  May be NULL (the op). */
    const char *(*warning)(jg_backend_t *b);

    /* What the backend can hold; owned by the backend, valid until destroy.
     * NULL op: unlimited (no admission control). */
    const jg_capacity_t *(*capacity)(jg_backend_t *b);

    /* One line on how nodes are held to their resources, for the daemon's log
     * and `jgsched infra` (e.g. "cgroups: unavailable (...); nodes are not
     * limited; GPUs: none (nvidia-smi not found)").  Owned by the backend,
     * valid until destroy.  May be NULL (the op, or its result). */
    const char *(*notes)(jg_backend_t *b);

    void (*destroy)(jg_backend_t *b);
} jg_backend_ops_t;

struct jg_backend {
    const jg_backend_ops_t *ops;
    void *impl;
};

#endif
