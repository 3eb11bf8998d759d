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

/* The local backend: every node a process tree under a jgsched-shim on this host
 * (src/backend_local.c; the node files in src/shim_protocol.h).
 *  - Events always come from the loop, never from inside an operation: launch()
 *    and reattach() queue them, so the core is not re-entered from its own call.
 *    The event callback may call any operation except destroy.
 *  - Handle: "pid=<shim pid> start=<its /proc starttime> addr=<node address>
 *    dir=<node directory>" (dir last: it may hold spaces).
 *  - reattach() does not repeat NODE_STARTED; it reports SETUP_DONE for a node
 *    that waits at the barrier (not for one already released), then the exit
 *    found in the status file, or NODE_LOST if the shim is gone without one.
 *  - A node stopped at the barrier exits with code 143 (signal 15); one killed
 *    when stop()'s grace ran out exits with code 137 (signal 9), in_setup when
 *    it had not finished setup.
 *  - When the daemon runs as root, nodes run as req->uid/gid (their node
 *    directory belongs to that user), so state_dir must be traversable (0711).
 *  - destroy() leaves nodes running (the daemon may be restarting); cleanup()
 *    kills a group's nodes even when no backend instance follows them.
 *  - Network (jgsched/netns.h, docs/local-backend.md): every node has its own
 *    network, UTS and mount namespace: its own address on a network private
 *    to its group (reported as NODE_STARTED's `address` and in
 *    SKYPILOT_NODE_IPS), `hostname` = <job>-<rank>, an /etc/hosts naming
 *    every node of the group, and a /tmp kept across its attempts until
 *    cleanup().  As root directly; unprivileged inside a user namespace;
 *    where neither works nodes share the host network and warning() says so
 *    (so does every node's log).  A group's network lives in a keeper
 *    process until cleanup() (or sweep()).
 *  - Volumes: a job's `volumes` (mount path -> volume name) are bind mounts,
 *    in the node's own mount namespace, of req->volumes' directory for that
 *    name; a missing name or directory, a system path (/etc, /usr, ...) or no
 *    mount namespace fails the node with LAUNCH_FAILED and the reason.  A
 *    mount point missing on the host is made there by the submitting user
 *    (a child with their uid; refused, naming the volume and path, where
 *    they could not) and left there: another node may use it.
 *  - Deleting: cleanup() moves a node's work and tmp (and, with purge, the
 *    group directory) into <state_dir>/trash at once; a background child
 *    deletes them through directory fds, as their owner (jgsched/fsutil.h).
 *  - GPUs: the host's (nvidia-smi, at create) are handed out by index: a node
 *    of a job asking NAME:k gets k free ones of that type as
 *    CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES (a node asking none gets
 *    CUDA_VISIBLE_DEVICES empty); none is shared by two live nodes; they
 *    return when the node ends and are taken again on reattach.  Declared
 *    GPUs with no nvidia-smi have no index: nothing is exported, and the
 *    node's log says so.
 *  - cgroups: where cgroup v2 with the cpu and memory controllers is usable
 *    and cgroups_off is not set, each node runs in a cgroup of its own with
 *    cpu.max = its job's cpus and memory.max = its memory; an OOM kill is
 *    named in NODE_EXITED's reason.  notes() says whether that is the case. */
typedef struct {
    const char *state_dir;      /* node directories go under <state_dir>/groups/ */
    const char *shim_path;      /* the jgsched-shim executable */
    jg_loop_t *loop;
    jg_backend_event_f on_event;
    void *event_ctx;
    bool share_host_network;    /* no network isolation, on purpose (warned about) */
    bool nat;                   /* nodes reach out through NAT (needs root; notes() says) */
    const char *nat_network;    /* the uplinks' "a.b.c.d/p"; NULL: JG_NETNS_UPLINK_DEFAULT */
    const jg_capacity_t *capacity;  /* declared capacity (copied); NULL: detect the host's */
    bool host_gpus;             /* capacity's accelerators are the host's GPUs, which the
                                 * backend finds (always so when capacity is NULL) */
    const char *cgroup_dir;     /* a cgroup v2 directory (delegated to us, cpu and memory in
                                 * its subtree_control) to put node cgroups under; NULL:
                                 * found by probing the host */
    bool cgroups_off;           /* no cgroups at all, on purpose (config `cgroups: off`):
                                 * nodes are not limited; notes() says why */
} jg_local_config_t;

/* Returns a new backend (destroy with b->ops->destroy) or NULL + err. */
jg_backend_t *jg_backend_local_create(const jg_local_config_t *cfg, jg_error_t *err);

/* The environment of one node (DESIGN section 4) as a NULL-terminated array of
 * "KEY=value" strings, user `envs` last so they can refer to nothing of ours
 * but override nothing either (ours win on conflict).  job_ips: the job's node
 * addresses in rank order (n = num_nodes).  Caller frees with jg_env_free. */
char **jg_node_env(const jg_group_spec_t *spec, int64_t group_id, int job_index, int rank,
                   int attempt, int64_t submitted_us, const char *const *job_ips);
void jg_env_free(char **env);

/* The local backend's GPU allocator: the host's GPUs by index and type, and
 * which ones live nodes hold.  Type names match case-insensitively. */
typedef struct jg_gpu_pool jg_gpu_pool_t;

jg_gpu_pool_t *jg_gpu_pool_create(void);
void jg_gpu_pool_destroy(jg_gpu_pool_t *p);     /* NULL ok */
/* Adds the output of `nvidia-smi --query-gpu=index,name --format=csv,noheader`
 * ("0, NVIDIA H200" a line; names shortened as capacity.h does: "H200", "T4",
 * "A100").  Returns how many GPUs were added; lines it cannot read are skipped. */
size_t jg_gpu_pool_parse(jg_gpu_pool_t *p, const char *csv);
/* GPUs of type name (NULL: every type), all or only the free ones. */
size_t jg_gpu_pool_count(const jg_gpu_pool_t *p, const char *name, bool free_only);
/* Takes the k lowest free indices of type name into out[k]; -1 (nothing
 * taken) when fewer than k are free. */
int jg_gpu_pool_take(jg_gpu_pool_t *p, const char *name, int k, int *out);
/* Marks index in use (a reattached node holds it); -1 if unknown or in use. */
int jg_gpu_pool_claim(jg_gpu_pool_t *p, int index);
/* Returns indices to the pool (unknown or free ones are ignored). */
void jg_gpu_pool_release(jg_gpu_pool_t *p, const int *idx, size_t n);

#endif
