/* backend_local.h - the `local` backend (src/backends/local/): its configuration,
 * how the registry makes it, its constructor and its GPU pool.  Only the
 * registry and the local backend's own tests include this header; everything
 * else sees a jg_backend_t (jgsched/backend.h). */
#ifndef JGSCHED_BACKEND_LOCAL_H
#define JGSCHED_BACKEND_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

#include "jgsched/backend.h"
#include "jgsched/error.h"
#include "jgsched/loop.h"

/* The local backend: every node a process tree under a jgsched-shim on this host
 * (src/backends/local/; the node files in src/shim_protocol.h).
 *  - kind "local", one instance, named "local" (backends.local of the config).
 *  - fit(): the host is one node; a group fits now when it fits in what is
 *    free of the capacity (oversubscribe included) after `held`.
 *  - Output: each node's output.log (in its node directory, written by the
 *    node's user) is read on a timer while the node lives and drained when
 *    it ends, and delivered as LOG events tagged with the attempt whose
 *    output it is (the node's `attempts` file says where each starts).
 *  - cleanup() queues CLEANED once the group's processes, network and
 *    runtime files are gone; stop() queues STOPPED once every node it
 *    targeted has ended.
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
 *  - Deleting: cleanup() moves a node's work and tmp into <state_dir>/trash
 *    (one rename each); a background child deletes them through directory
 *    fds, as their owner (jgsched/fsutil.h).
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
    const char *shim_path;      /* the jgsched-shim executable; jgsched-keeper (isolated
                                 * groups' networks: create fails without it) and
                                 * jgsched-deleter (the trash) are taken beside it */
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

/* The local factory of the registry: the configuration's backends.local
 * (capacity, max_node, oversubscribe, network, nat, cgroups), the shim next
 * to the daemon (or $JGSCHED_SHIM, or env->libexec_dir), env's loop and
 * event sink.  NULL + err. */
jg_backend_t *jg_backend_local_from_env(const jg_backend_env_t *env, jg_error_t *err);

/* How many cleanup()s of this (local) backend are still under way: cleanup()
 * kills at once and returns; the rest (waiting for the processes to end,
 * removing cgroups, the group's network, files) finishes from the loop. */
size_t jg_backend_local_cleanups_pending(const jg_backend_t *b);

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
