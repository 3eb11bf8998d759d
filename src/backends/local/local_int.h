/* local_int.h - what the files of the local backend share (not a public header).
 *
 * Where things live (one concern a file):
 *   backend.c    the ops table, create and destroy, the queue that delivers events from the loop,
 *                fit() with the host as one node
 *   factory.c    the registry's factory: a local backend from the daemon's configuration
 *   spawn.c      launch: everything a node gets, then the fork and exec of its shim
 *   status.c     node records, and what a node says: its status file, its shim's pidfd, inotify
 *   network.c    the group's network: its hub, kept by a keeper process; NAT at create
 *   volumes.c    volumes: checking mount paths and making missing mount points as the user
 *   gpus.c       the GPU pool: the host's GPUs by index, handed to nodes
 *   cgroups.c    cgroups: finding where nodes may get their own, limiting and removing them
 *   shims.c      the group's own record of its shims (.shims), and killing a node's process tree
 *   stop.c       release (the barrier), stop, and STOPPED once a stop's nodes ended
 *   logs.c       a node's output: read from output.log into LOG events, by attempt
 *   cleanup.c    cleanup: what a group leaves behind, removed
 *   reattach.c   reattach after a daemon restart, and sweep of what dead groups left
 *   files.c      paths, and files in directories a node's user can write (open_node_file & co)
 */
#ifndef JGSCHED_BACKENDS_LOCAL_INT_H
#define JGSCHED_BACKENDS_LOCAL_INT_H

#include "jgsched/backend.h"
#include "jgsched/backend_local.h"
#include "jgsched/capacity.h"
#include "jgsched/fsutil.h"
#include "jgsched/netns.h"
#include "jgsched/nodeenv.h"
#include "jgsched/paths.h"
#include "jgsched/proc.h"

#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define CLEANUP_WAIT_MS 2000        /* how long cleanup waits for killed shims to die */
#define KEEPER_SETUP_MS 10000       /* the longest a caller that must waits for a hub's set-up */
#define MAX_GROUPS 256              /* supplementary groups carried to a node */
#define GROUP_NET "net"             /* <group dir>/net: "keeper <pid> <starttime>" */
#define GROUP_HOSTS "hosts"         /* <group dir>/hosts: the nodes' /etc/hosts */
#define GROUP_RESOLV "resolv.conf"  /* <group dir>/resolv.conf: theirs (with NAT) */
#define NODE_TMP "tmp"              /* <node dir>/tmp: the node's /tmp, kept across attempts */
#define GROUP_MOUNTS "mountpoints"  /* <group dir>/mountpoints: left by older versions; removed */
#define TRASH_DIR "trash"           /* <state_dir>/trash: trees being deleted (fsutil.h) */
#define GROUP_SHIMS ".shims"        /* <group dir>/.shims: the shims we started (shim_protocol.h) */
#define STATUS_MAX (1 << 20)        /* status bytes read per node attempt, at most */
#define CG_PERIOD_US 100000         /* cpu.max period */
#define MAX_GPUS_PER_NODE 64

typedef struct local local_t;
typedef struct node node_t;
typedef struct cleanup cleanup_t;           /* one group's cleanup under way (cleanup.c) */
typedef struct launch_job launch_job_t;     /* nodes of a launch still to start (spawn.c) */
typedef struct stop_wait stop_wait_t;       /* a stop() whose STOPPED is not reported yet (stop.c) */

/* A node's output.log as it is streamed out in LOG events (logs.c). */
typedef struct {
    int fd;                     /* O_RDONLY, opened once (open_node_file); -1: not yet */
    bool refused;               /* open_node_file refused it: never tried again */
    bool resume_set;            /* reattach() said where to resume (offset) */
    int64_t offset;             /* bytes of output.log already delivered */
    int64_t attempt_start;      /* where this node's attempt starts in output.log */
} node_stream_t;

struct node {
    node_t *next;
    local_t *b;
    int64_t group_id;
    int job_index;
    int rank;
    int attempt;
    char *dir;                  /* absolute node directory */
    pid_t pid;                  /* the shim; also the node's process group */
    unsigned long long start;   /* the shim's starttime, against pid reuse */
    int pidfd;
    int wd;                     /* inotify watch of the status file, -1 if none */
    off_t offset;               /* status bytes already read */
    bool is_child;              /* launched by this process: reap it */
    int errfd;                  /* reads why the child failed before exec; -1 if none */
    char *lost_reason;          /* why we killed it (its group's network died), or NULL */
    bool superseded;            /* a later attempt of the same node exists */
    bool stopping;              /* stop() asked it to end: forced kill after grace */
    bool quiet;                 /* cleaned up: nothing more is reported */
    bool status_refused;        /* the status file was refused once (logged once) */
    bool shim_gone;             /* its shim has ended: the final event may be reported */
    /* What the status file says. */
    bool seen_started, setup_done, released, exited, cancelled;
    bool exit_in_setup;
    int exit_code, exit_signal;
    /* What was reported. */
    bool reported_setup_done, reported_final;
    int *gpus;                  /* GPU indices this attempt holds (n_gpus), or NULL */
    size_t n_gpus;
    char *cgroup;               /* the attempt's cgroup directory, or NULL (none here) */
    node_stream_t stream;       /* its output.log, read into LOG events (logs.c) */
};

typedef struct {
    jg_backend_event_t ev;
    char *reason;
    char *handle;
    char *address;
    char *data;                 /* LOG: the bytes (ev.len of them) */
} queued_t;

/* A group's network hub, while this backend follows its keeper. */
typedef struct gnet {
    struct gnet *next;
    local_t *b;
    int64_t group_id;
    jg_netns_hub_t hub;
} gnet_t;

typedef struct stop_timer {
    struct stop_timer *next;
    local_t *b;
    uint64_t id;
    int64_t group_id;
    int job_index;
    int rank;
} stop_timer_t;

struct local {
    jg_backend_t base;
    char *state_dir;
    char *shim_path;
    int shim_fd;                /* O_PATH: nodes exec it even where /tmp hides its path */
    char *keeper_path;          /* jgsched-keeper, next to the shim (isolated nodes only) */
    int keeper_fd;              /* O_PATH: hubs' keepers are started through it; -1 if none */
    jg_loop_t *loop;
    jg_backend_event_f on_event;
    void *event_ctx;
    int inotify_fd;
    node_t *nodes;
    queued_t *queue;
    size_t q_head, q_len, q_cap;
    uint64_t flush_timer;
    bool flushing;
    stop_timer_t *stops;
    jg_netns_caps_t net;        /* what nodes get: decided once, at create */
    bool nat;                   /* hubs get an uplink: nodes reach out */
    jg_netns_uplink_t uplink;
    char *nat_note;             /* outbound traffic, in a few words (for notes()) */
    char *warning;              /* NULL when nodes are fully isolated */
    gnet_t *gnets;
    jg_capacity_t capacity;     /* declared in the config, else the host's */
    jg_gpu_pool_t *gpus;        /* the host's GPUs by index (empty without nvidia-smi) */
    bool gpus_known;            /* nvidia-smi listed the host's GPUs */
    char gpus_why[128];         /* !gpus_known: why ("nvidia-smi not found") */
    char *cg_base;              /* this instance's cgroup (v2), or NULL: nodes are not limited */
    char *notes;                /* notes(): cgroups and GPUs, one line */
    jg_trash_t *trash;          /* <state_dir>/trash: users' trees go there to be deleted */
    cleanup_t *cleanups;        /* cleanups under way */
    launch_job_t *launches;     /* launches not finished yet, oldest first */
    uint64_t launch_timer;      /* starts the next nodes of launches; 0: not armed */
    uint64_t stream_timer;      /* reads live nodes' output (0: none armed) */
    stop_wait_t *stop_waits;    /* stop() calls whose STOPPED is not reported yet */
};

typedef struct {
    bool active;                /* run the node as another user */
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
    int n_groups;
} creds_t;

typedef struct {
    char *name;
    int index;
    bool used;
} gpu_t;

struct jg_gpu_pool {
    gpu_t *v;                   /* sorted by index */
    size_t n;
};

/* ---- the group's record of its shims ------------------------------------
 *
 * <group dir>/.shims is root's own account of every shim it started for the
 * group, one line per attempt, appended right after the fork:
 *
 *   <attempt> <pid> <starttime> <gpus: 0,1 or -> <job>-<rank>
 *
 * The group directory is the daemon's (mode 0711), so no node user can write
 * there; cleanup kills what this record names (a daemon that restarted no
 * longer follows every shim), and reattach takes a node's GPUs back from it.
 * The node's own status and gpus files are its user's and are never used
 * to pick a process or a resource. */

typedef struct {
    int attempt;
    pid_t pid;
    unsigned long long start;
    char gpus[MAX_GPUS_PER_NODE * 12];
    char node[NAME_MAX + 1];
} shim_rec_t;
_Static_assert(sizeof ((shim_rec_t *)0)->gpus == 768, "parse_shim_rec reads gpus with %767s");

static inline bool isolated(const local_t *b)
{
    return b->net.mode != JG_NETNS_HOST;
}

/* backend.c */
void flush_events(local_t *b);
queued_t *queue_event(local_t *b, jg_backend_event_type_t type, int64_t group_id,
                 int job_index, int rank, int attempt, const char *reason,
                 const char *handle, bool in_setup, int code, int sig);
void node_event(node_t *n, jg_backend_event_type_t type, const char *reason,
                bool in_setup, int code, int sig);
char *resolve_exec(const char *name);
jg_fit_t local_fit(jg_backend_t *base, const jg_group_spec_t *spec, const jg_usage_t *held,
                   char *why, size_t len);
void describe_host_node(local_t *b);

/* spawn.c */
int local_launch(jg_backend_t *base, const jg_launch_t *req, jg_error_t *err);
void launches_drop(local_t *b, int64_t group_id);
void launches_finish(local_t *b, int64_t group_id);
void launches_net_settled(local_t *b, int64_t group_id, const char *failure);
void launches_free(local_t *b);

/* status.c */
void read_status(node_t *n);
void report(node_t *n, bool replay);
void node_free(local_t *b, node_t *n);
void node_dead(local_t *b, node_t *n);
void on_pidfd(jg_loop_t *loop, int fd, uint32_t revents, void *arg);
void on_inotify(jg_loop_t *loop, int fd, uint32_t revents, void *arg);
node_t *node_new(local_t *b, int64_t group_id, int job_index, int rank, int attempt,
                 const char *dir);
void node_link(local_t *b, node_t *n);

/* network.c */
void node_address(const local_t *b, const jg_group_spec_t *spec, int job_index, int rank,
                  char *buf, size_t len);
gnet_t *gnet_find(local_t *b, int64_t group_id);
int gnet_free(local_t *b, gnet_t *g, bool kill_keeper, jg_error_t *err);
void lose_group_nodes(local_t *b, int64_t group_id, const char *reason);
gnet_t *gnet_watch(local_t *b, int64_t group_id, jg_netns_hub_t *hub, jg_error_t *err);
int read_net_file(const local_t *b, int64_t group_id, pid_t *pid,
                  unsigned long long *start);
gnet_t *group_hub(local_t *b, int64_t group_id, jg_error_t *err);
bool group_hub_take(local_t *b, int64_t group_id, jg_netns_hub_t *out);
void gnet_wait_setup(gnet_t *g);
int setup_nat(local_t *b, const jg_local_config_t *cfg, jg_error_t *err);

/* volumes.c */
int plan_volumes(const local_t *b, const jg_launch_t *req, const jg_job_spec_t *job,
                 const creds_t *creds, jg_netns_bind_t **out, jg_error_t *err);

/* gpus.c */
void detect_gpus(local_t *b);
void add_pool_to_capacity(local_t *b);
void node_put_gpus(node_t *n);
void format_indices(const int *idx, size_t n, char *buf, size_t len);

/* cgroups.c */
int cg_probe(local_t *b, char *why, size_t len);
char *cg_node_path(const local_t *b, int64_t group_id, const char *node_dir, int attempt);
int cg_node_create(const char *cg, const jg_job_spec_t *job, jg_error_t *err);
bool cg_node_remove(const char *cg);
void oom_note(const node_t *n, char *buf, size_t len);
size_t cg_group_try_remove(const local_t *b, int64_t group_id);
bool cg_group_exists(const local_t *b, int64_t group_id);

/* shims.c */
void kill_node_tree(const local_t *b, pid_t pid, unsigned long long start);
int record_shim(const char *gdir, const char *node, int attempt, pid_t pid,
                unsigned long long start, const char *gpus, jg_error_t *err);
shim_rec_t *read_shim_records(const char *gdir, size_t *n);
void kill_recorded_shims(const local_t *b, const char *gdir);

/* stop.c */
int local_release(jg_backend_t *base, int64_t group_id, jg_error_t *err);
int local_stop(jg_backend_t *base, int64_t group_id, int job_index, int rank,
               int grace_ms, jg_error_t *err);
void stop_waits_check(local_t *b);
void stop_wait_free(local_t *b, stop_wait_t *w);

/* logs.c */
void note_attempt_start(const char *dir, int attempt, int64_t offset);
void stream_arm(local_t *b, int64_t delay_ms);
void stream_drain(node_t *n);
void stream_close(node_t *n);

/* cleanup.c */
void cleanup_node_gone(local_t *b, int64_t group_id);
bool cleanup_running(const local_t *b, int64_t group_id);
void cleanups_free(local_t *b);
/* Starts a group's cleanup (or joins the one under way); report: queue CLEANED
 * at its end (sweep()'s cleanups report nothing). */
void cleanup_start(local_t *b, int64_t group_id, bool report);
int local_cleanup(jg_backend_t *base, int64_t group_id, jg_error_t *err);

/* reattach.c */
int local_reattach(jg_backend_t *base, int64_t group_id, const jg_node_handle_t *nodes,
                   size_t n_nodes, jg_error_t *err);
int local_sweep(jg_backend_t *base, const int64_t *live, size_t n_live, jg_error_t *err);

/* files.c */
char *group_dir(const local_t *b, int64_t group_id);
char *node_dir(const local_t *b, int64_t group_id, const char *job, int rank);
int own(const creds_t *c, const char *path, jg_error_t *err);
int open_node_file(const char *dir, const char *name, int flags, mode_t mode,
                   struct stat *st, jg_error_t *err);
int open_own_record(const char *path, int flags, jg_error_t *err);
int write_file(const creds_t *c, const char *dir, const char *name, const char *data,
               size_t len, mode_t mode, jg_error_t *err);
ssize_t read_small(const char *path, char *buf, size_t len);

#endif
