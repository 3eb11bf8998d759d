/* backend.h - the one interface between the scheduler core and where nodes run.
 *
 * sched is the only caller of these operations; a backend reports back only
 * through events, delivered on the daemon's loop.  No operation blocks the
 * loop and none reports an event from inside itself (events are queued and
 * delivered from the loop, so sched is never re-entered from its own call).
 * Progress - a node started, finished setup, waits inside the backend, exited,
 * was lost; a stop or a cleanup completed; capacity changed; output arrived -
 * is an event.  That is the shape an asynchronous backend (Kubernetes: API
 * calls and a watch; Slurm: sbatch and squeue) has anyway; the local backend
 * (processes under a shim) fits the same one.  docs/backends.md says how to
 * write a backend, with the local one as the worked example.
 *
 * Whatever identifies a node inside a backend (pid + start time, a pod name) is
 * an opaque handle string reported with JG_BACKEND_NODE_STARTED; sched stores
 * it and gives it back to reattach() after a daemon restart.
 *
 * A backend instance serves one infra string: "local", "kubernetes",
 * "kubernetes/<context>".  Instances are made from the configuration by the
 * registry (jgsched/registry.h); sched owns them.
 */
#ifndef JGSCHED_BACKEND_H
#define JGSCHED_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jgsched/config.h"
#include "jgsched/error.h"
#include "jgsched/loop.h"
#include "jgsched/spec.h"

typedef enum {
    JG_BACKEND_NODE_STARTED,    /* the node exists and runs setup; `handle` is set */
    JG_BACKEND_NODE_PENDING,    /* the node waits inside the backend (a pod Unschedulable or
                                 * pulling its image, a Slurm job PENDING); `reason` says
                                 * why.  May come before NODE_STARTED and repeat with a new
                                 * reason; the next NODE_STARTED / LAUNCH_FAILED ends it */
    JG_BACKEND_SETUP_DONE,      /* setup passed (or there was none): waiting at the barrier */
    JG_BACKEND_NODE_EXITED,     /* setup or run ended; see in_setup, exit_code, signal */
    JG_BACKEND_NODE_LOST,       /* vanished without a recorded exit (killed by someone else,
                                 * evicted, preempted, its machine gone); `reason` says how */
    JG_BACKEND_LAUNCH_FAILED,   /* could not be created at all; see reason */
    JG_BACKEND_LOG,             /* output of a node: `data`/`len`, in order, never repeated
                                 * (after reattach() it resumes where log_bytes says) */
    JG_BACKEND_STOPPED,         /* a stop() completed: every node it targeted has ended (each
                                 * was reported NODE_EXITED / NODE_LOST before this).
                                 * job_index / rank as given to stop() */
    JG_BACKEND_CLEANED,         /* a cleanup() completed: nothing of the group is left in the
                                 * backend (what it holds is free again); job_index -1 */
    JG_BACKEND_CAPACITY_CHANGED,/* what capacity()/fit() answer may have changed (nodes came
                                 * or went, other tenants' load); group_id 0 */
} jg_backend_event_type_t;

typedef struct {
    jg_backend_event_type_t type;
    int64_t group_id;
    int job_index;          /* -1 where the event is about the whole group */
    int rank;               /* -1 where the event is about a whole job or group */
    int attempt;            /* the attempt this event belongs to; stale ones are ignored by sched */
    bool in_setup;          /* NODE_EXITED: it was setup that ended (non-zero: setup failed) */
    int exit_code;          /* NODE_EXITED: 0..255; 128+N when killed by signal N */
    int signal;             /* NODE_EXITED: the signal that killed it, else 0 */
    const char *reason;     /* NODE_PENDING / NODE_LOST / LAUNCH_FAILED: human-readable;
                             * NODE_EXITED: what else is known of the exit (e.g. "killed
                             * by the OOM killer (memory.max 8GB)"), else NULL; CLEANED:
                             * NULL, or what could not be removed; borrowed */
    const char *handle;     /* NODE_STARTED: opaque handle to store; borrowed */
    const char *address;    /* NODE_STARTED: the node's IP as its peers reach it; may be NULL */
    const char *data;       /* LOG: the bytes (not NUL-terminated); borrowed */
    size_t len;             /* LOG: how many */
} jg_backend_event_t;

/* Called on the loop's thread; `ev` and its strings are valid only during the
 * call.  The callback may call any operation except destroy. */
typedef void (*jg_backend_event_f)(void *ctx, const jg_backend_event_t *ev);

typedef struct {
    int job_index;
    int rank;
    int attempt;            /* 1 for the first; a node launched again with a higher
                             * attempt is restarted in place where the backend can
                             * (same node, its /tmp kept), else replaced */
} jg_node_ref_t;

typedef struct {
    int64_t group_id;
    const char *infra;              /* the backend instance's name ("kubernetes/ctx-a") */
    const jg_group_spec_t *spec;    /* borrowed for the duration of the call */
    uid_t uid;                      /* owner of the group */
    gid_t gid;
    const char *user;
    int64_t submitted_us;           /* wall clock of submit: part of SKYPILOT_TASK_ID */
    const jg_node_ref_t *nodes;     /* which nodes to create: the whole group, or one job's */
    size_t n_nodes;
    const jg_kv_t *volumes;         /* every named volume the group's jobs use: key the
                                     * volume name, value its source as the config
                                     * declares it (local: a host directory); none
                                     * when ops->volumes_in_infra */
    size_t n_volumes;
} jg_launch_t;

typedef struct {
    int job_index;
    int rank;
    int attempt;
    const char *handle;     /* as reported with NODE_STARTED */
    int64_t log_bytes;      /* output of this node already delivered (all attempts):
                             * LOG events resume after it */
    int64_t log_bytes_attempt;  /* of that, what belongs to `attempt` */
} jg_node_handle_t;

typedef struct jg_backend jg_backend_t;

/* One machine (a host, a Kubernetes Node) as a backend offers it. */
typedef struct {
    char *name;
    double cpus;
    double memory_gb;
    jg_accel_t *accels;
    size_t n_accels;
} jg_capacity_node_t;

/* What a backend can hold: the totals (shown by `jgsched infra`), the
 * largest single node, and where known its nodes one by one (fit() decides
 * with those; the totals only describe). */
typedef struct {
    double cpus;
    double memory_gb;
    jg_accel_t *accels;         /* name + count available in total */
    size_t n_accels;
    double max_node_cpus;
    double max_node_memory_gb;
    jg_capacity_node_t *nodes;  /* NULL/0: unknown (e.g. not reachable yet) */
    size_t n_nodes;
    bool reachable;             /* false: the backend cannot reach its infra now;
                                 * `note` says why */
    char source[64];            /* "host" (detected), "config" (declared), "api" (asked) */
    char note[256];             /* "" or one line: why unreachable, what is assumed */
} jg_capacity_t;

typedef enum {
    JG_FIT_NOW,             /* every node of the group can be placed now */
    JG_FIT_NOT_NOW,         /* not now; why says what is short (shown as the PENDING reason) */
    JG_FIT_NEVER,           /* never, even on an idle infra (FAILED_NO_RESOURCE at submit) */
} jg_fit_t;

/* What sched's admitted groups hold on this backend (its own accounting, from
 * admission until CLEANED), for backends that cannot see it themselves.
 * Defined in jgsched/capacity.h (struct jg_usage), with the arithmetic. */
typedef struct jg_usage jg_usage_t;

typedef struct {
    const char *kind;       /* "local", "kubernetes": what the registry made it as */

    /* true: a job's named volume is the infra's own object of that name
     * (kubernetes: the PersistentVolumeClaim), not a directory the daemon
     * knows; launch then gets no jg_launch_t.volumes and no error for a
     * volume the daemon does not have. */
    bool volumes_in_infra;

    /* Whether every node of spec can be placed now, on the backend's real
     * shape (nodes, not totals), on top of `held` (what jgsched's admitted
     * groups hold here; a backend that sees its own load may ignore it).
     * NOT_NOW and NEVER fill why ("waiting for resources: needs 26 cpus, 2 of
     * 64 free", "job x asks cpus=1000; the largest node of infra local offers
     * cpus=2").  Never blocks: answers from what the backend already knows. */
    jg_fit_t (*fit)(jg_backend_t *b, const jg_group_spec_t *spec, const jg_usage_t *held,
                    char *why, size_t len);

    /* Creates every listed node at once and returns; each node then reports
     * (NODE_PENDING...) NODE_STARTED, SETUP_DONE or NODE_EXITED(in_setup), or
     * LAUNCH_FAILED.  A backend may spread a large launch over several loop
     * turns.  Fails (with nothing created) only if the request itself is
     * unusable. */
    int (*launch)(jg_backend_t *b, const jg_launch_t *req, jg_error_t *err);

    /* The barrier: lets `run` start on every node of the group that reported
     * SETUP_DONE and has not been released yet. */
    int (*release)(jg_backend_t *b, int64_t group_id, jg_error_t *err);

    /* Optional (NULL: nothing to do).  The node's last end is final: the
     * policy restarts it not, so what still holds it (an idle pod kept for a
     * restart in place) may go.  Reports nothing; a later launch of a higher
     * attempt must still work (on a new pod, say). */
    void (*retire)(jg_backend_t *b, int64_t group_id, int job_index, int rank);

    /* Stops the group (job_index -1), one job (rank -1) or one node: a polite
     * signal now, a forced kill after grace_ms.  Each node's end is reported
     * (NODE_EXITED / NODE_LOST), then one STOPPED for the target. */
    int (*stop)(jg_backend_t *b, int64_t group_id, int job_index, int rank, int grace_ms,
                jg_error_t *err);

    /* After a daemon restart: find these nodes again from their handles and
     * resume reporting their events (including exits that happened meanwhile)
     * and their output after log_bytes. */
    int (*reattach)(jg_backend_t *b, int64_t group_id, const jg_node_handle_t *nodes,
                    size_t n, jg_error_t *err);

    /* Starts removing what the group left in the backend (processes,
     * namespaces, pods, services, runtime files) and returns; CLEANED follows
     * once it is all gone.  Kills nodes still there without reporting them.
     * Output was delivered as LOG events: the backend need not keep it. */
    int (*cleanup)(jg_backend_t *b, int64_t group_id, jg_error_t *err);

    /* After a daemon (re)start, once every active group was reattached: removes
     * what any group NOT in live_groups left behind, as cleanup() would (a
     * daemon that died between a group's end and its cleanup, or a group the
     * store no longer lists), reporting nothing.  May be NULL. */
    int (*sweep)(jg_backend_t *b, const int64_t *live_groups, size_t n, jg_error_t *err);

    /* NULL when nodes get everything DESIGN section 4 promises; else one
     * sentence saying what they lack and why (e.g. they share the host
     * network), to show at submit and in `jgsched infra`.  Owned by the
     * backend, valid until destroy.  May be NULL (the op). */
    const char *(*warning)(jg_backend_t *b);

    /* What the backend can hold now; owned by the backend, valid until the
     * next loop turn.  NULL op: unlimited (fit must then be NULL too). */
    const jg_capacity_t *(*capacity)(jg_backend_t *b);

    /* One line on how nodes are held to their resources, for the daemon's log
     * and `jgsched infra`.  Owned by the backend, valid until destroy.  May be
     * NULL (the op, or its result). */
    const char *(*notes)(jg_backend_t *b);

    /* Frees the instance; nodes keep running (the daemon may be restarting). */
    void (*destroy)(jg_backend_t *b);
} jg_backend_ops_t;

struct jg_backend {
    const jg_backend_ops_t *ops;
    char *name;             /* the infra it serves ("local", "kubernetes/ctx-a"); owned */
    void *impl;
};

/* What every backend gets from the daemon at creation (the registry passes
 * it on).  Borrowed: all of it outlives the backend. */
typedef struct {
    jg_loop_t *loop;
    jg_backend_event_f on_event;
    void *event_ctx;
    const jg_config_t *config;  /* the daemon's configuration (backends.<kind>) */
    const char *state_dir;      /* a root-owned directory the backend may use below
                                 * <state_dir>/<kind>/ (local keeps groups/ at the top
                                 * for compatibility) */
    const char *libexec_dir;    /* where helper programs (jgsched-shim) were installed;
                                 * NULL: next to the daemon's own executable */
} jg_backend_env_t;

#endif
