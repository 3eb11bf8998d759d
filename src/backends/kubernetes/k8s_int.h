/* k8s_int.h - the Kubernetes backend's private map (backend.c has the overview).
 *
 *   backend.c   ops table, create/destroy, the event queue, the factory
 *   capacity.c  the Node watch: capacity(), fit(), CAPACITY_CHANGED
 *   launch.c    a group's objects (ConfigMap owner first, then Secret,
 *               Service, Pods), restarts in place, replacement pods
 *   monitor.c   the one pod watch: pod states -> node events
 *   podstate.c  pure: a Pod's JSON -> what it says (unit-tested)
 *   agentctl.c  the agents through pods/proxy: /state long-polls, barrier
 *               (/hosts, /env, /release), /kill, /restart
 *   logs.c      each pod's main-container log -> LOG events
 *   teardown.c  stop, cleanup, sweep, reattach
 */
#ifndef JG_K8S_INT_H
#define JG_K8S_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "jgsched/backend.h"
#include "jgsched/kubeconfig.h"
#include "objects.h"
#include "watch.h"

typedef struct k8s_backend k8s_backend_t;
typedef struct k8s_group k8s_group_t;

/* ---- podstate.c: what one Pod says (pure, no I/O) ---- */

typedef enum {
    K8S_POD_WAITING,    /* not running yet (unscheduled, pulling, initialising) */
    K8S_POD_RUNNING,    /* the main container runs */
    K8S_POD_EXITED,     /* the main container terminated: exit_code, signal */
    K8S_POD_LOST,       /* evicted, preempted, its node gone, deleted by someone */
    K8S_POD_FAILED,     /* could never start (an init container failed, a bad image) */
} k8s_pod_phase_t;

typedef struct {
    k8s_pod_phase_t phase;
    bool deleting;          /* metadata.deletionTimestamp is set */
    int exit_code;
    int signal;
    char ip[64];            /* status.podIP, "" until known */
    char reason[256];       /* WAITING: why (the scheduler's message, image pull);
                             * LOST / FAILED: what happened; else "" */
} k8s_pod_state_t;

/* Reads a Pod object.  deleted_by_us: the backend deleted it (then a
 * deletion is not a loss). */
void k8s_pod_state(json_t *pod, k8s_pod_state_t *out);

/* The labels jgsched put on a pod; false when they are missing. */
bool k8s_pod_labels(json_t *pod, int64_t *group_id, const char **job, int *rank, int *attempt);

/* Kubernetes quantities: "4", "3500m" -> cpus; "8Gi", "8192Mi", "8G", bytes -> GiB.
 * -1 when unreadable. */
double k8s_parse_cpu(const char *q);
double k8s_parse_memory_gib(const char *q);

/* ---- the records ---- */

typedef struct k8s_node {
    k8s_group_t *g;
    int job_index, rank;
    char job[JG_K8S_DNS_LABEL_MAX + 1];
    char pod[JG_K8S_DNS_LABEL_MAX + 1];
    int attempt;            /* the node's current attempt */
    int pod_attempt;        /* the attempt label of the pod we made / found */
    char uid[64];           /* the current pod's uid, "" until known */
    char ip[64];
    bool create_sent;       /* a create of the current pod was sent */
    bool want_pod;          /* a pod must exist for this node (create once the old is gone) */
    bool started;           /* NODE_STARTED reported for the current pod */
    bool setup_done;        /* SETUP_DONE reported for `attempt` */
    bool released;          /* /release sent for `attempt` */
    bool ended;             /* the final event of `attempt` is reported (or queued) */
    bool exit_pending;      /* an end seen, waiting for the log to settle */
    bool end_waits_log;
    int barrier_steps;      /* of /hosts and /env answered for this release */     /* the container ended: wait for its log stream's end */
    jg_backend_event_t pending_end;  /* the end to report (reason in pending_reason) */
    char pending_reason[256];
    bool deleting;          /* we deleted the pod (stop, replace, cleanup) */
    bool stop_requested;    /* stop() asked for this attempt */
    bool in_setup;          /* the agent's last phase was setup */
    bool reattaching;       /* found again after a restart: resolved once the watch synced */
    char last_pending[256]; /* the last NODE_PENDING reason */

    /* the agent */
    jg_k8s_request_t *poll;
    void *poll_ctx;
    uint64_t serial;        /* the agent's last serial seen */
    int agent_attempt;      /* the attempt the agent last reported */
    char agent_phase[16];
    uint64_t poll_timer;
    int poll_failures;
    int restart_sent;       /* /restart?attempt= sent for this attempt, 0: none */

    /* the log */
    jg_k8s_request_t *log;
    void *log_ctx;
    int64_t log_skip;       /* bytes of this pod's log already delivered (reattach) */
    int64_t log_seen;       /* bytes of the current pod's log read so far (all streams) */
    int64_t log_pos;        /* where the current stream is in the pod's log */
    int64_t log_bytes, log_bytes_attempt;   /* from reattach (jg_node_handle_t) */
    int log_attempt;        /* attempt the bytes read now belong to */
    bool log_finished;      /* the stream ended with the container */
    int64_t last_log_ms;
    uint64_t log_timer;     /* a reconnect */
    uint64_t settle_timer;  /* exit_pending: when to report */
    int64_t settle_deadline_ms;

    uint64_t create_timer;  /* a create waiting for the old pod to go */
} k8s_node_t;

struct k8s_group {
    k8s_backend_t *b;
    int64_t id;
    char name[64];              /* the group's name ("" when unknown: a ghost) */
    jg_group_spec_t *spec;      /* a copy from launch; NULL after a restart until one */
    int64_t submitted_us;
    char owner_uid[64];         /* the ConfigMap's uid once created */
    bool owner_requested;
    int deps_pending;           /* Secret and Service creates not answered yet */
    bool deps_ready;            /* both exist: pods may be made (a pod whose Secret is
                                 * missing cannot start its containers) */
    bool reattached;            /* found again after a daemon restart: uid and token are
                                 * read back from the cluster, never made anew */
    char token[65];
    k8s_node_t **nodes;
    size_t n_nodes;
    char **live_pods;           /* names of this group's pods the watch shows */
    size_t n_live;
    bool cleaning;              /* cleanup() called */
    bool cleanup_deleted;       /* its DELETEs were answered */
    bool cleaned;               /* CLEANED queued */
    char clean_problem[256];
    int pending_deletes;
    struct k8s_stop *stops;
};

typedef struct k8s_stop {
    struct k8s_stop *next;
    int job_index, rank;
} k8s_stop_t;

typedef struct k8s_event {
    struct k8s_event *next;
    jg_backend_event_t ev;
    char *reason, *handle, *address, *data;
} k8s_event_t;

struct k8s_backend {
    jg_backend_t base;
    jg_loop_t *loop;
    jg_backend_event_f on_event;
    void *event_ctx;
    jg_k8s_client_t *client;
    jg_k8s_settings_t settings;
    char *namespace;
    char *instance;
    char *agent_image, *default_image, *gpu_resource, *gpu_label;
    char *context;
    char *selector;             /* managed-by=jgsched,jgsched.io/instance=<id> */

    jg_k8s_watch_t *pod_watch;
    bool pods_synced;
    jg_k8s_watch_t *node_watch;
    bool nodes_synced;
    bool api_silent;            /* the Node watch failed several times in a row */
    char api_silent_why[200];   /* its last failure, with the time it began */
    jg_capacity_t capacity;
    json_t *node_objs;          /* name -> the Node as last seen */
    char notes_text[256];
    int64_t *sweep_live;        /* sweep() before the pod watch synced: done then */
    size_t n_sweep_live;
    bool sweep_due;

    k8s_group_t **groups;
    size_t n_groups;

    k8s_event_t *ev_head, *ev_tail;
    uint64_t ev_timer;
    struct k8s_ctx *ctxs;       /* contexts of requests and timers in flight */
};

/* backend.c */
/* The context of a request or timer in flight: zeroed, `size` bytes, freed by
 * k8s_ctx_free or, with whatever is still in flight, by destroy (dtor first,
 * for what the context owns; may be NULL). */
void *k8s_ctx_new(k8s_backend_t *b, size_t size, void (*dtor)(void *ctx));
void k8s_ctx_free(void *ctx);
void k8s_emit(k8s_backend_t *b, const jg_backend_event_t *ev);
k8s_group_t *k8s_group_find(k8s_backend_t *b, int64_t id, bool make);
void k8s_group_maybe_free(k8s_group_t *g);
k8s_node_t *k8s_node_find(k8s_group_t *g, const char *job, int rank);
k8s_node_t *k8s_node_add(k8s_group_t *g, int job_index, const char *job, int rank);

/* A node as a request's or timer's context names it: by the time the answer
 * comes the node may be gone or launched again. */
typedef struct {
    k8s_backend_t *b;
    int64_t group_id;
    char job[JG_K8S_DNS_LABEL_MAX + 1];
    int rank;
    int attempt;
} k8s_node_key_t;
k8s_node_key_t k8s_node_key(const k8s_node_t *n);
/* The node k names, if it is still there and on k's attempt; NULL otherwise. */
k8s_node_t *k8s_node_by_key(const k8s_node_key_t *k);
/* Cancels a node's request in flight (freeing its context, *ctx) and its
 * timer, whichever are set, and clears them. */
void k8s_request_stop(k8s_backend_t *b, jg_k8s_request_t **req, void **ctx, uint64_t *timer);
char *k8s_pods_path(k8s_backend_t *b);     /* "/api/v1/namespaces/<ns>/pods" */

/* capacity.c */
int k8s_capacity_start(k8s_backend_t *b, jg_error_t *err);
jg_fit_t k8s_fit(jg_backend_t *base, const jg_group_spec_t *spec, const jg_usage_t *held,
                 char *why, size_t len);
const jg_capacity_t *k8s_capacity(jg_backend_t *base);

/* launch.c */
int k8s_launch(jg_backend_t *base, const jg_launch_t *req, jg_error_t *err);
void k8s_create_pod(k8s_node_t *n);
void k8s_launch_failed(k8s_node_t *n, const char *reason);
void k8s_group_fetch_owner(k8s_group_t *g);     /* reattach: uid and token from the cluster */

/* monitor.c */
int k8s_monitor_start(k8s_backend_t *b, jg_error_t *err);
void k8s_node_observe(k8s_node_t *n, json_t *pod);
void k8s_node_end(k8s_node_t *n, const jg_backend_event_t *ev);
void k8s_node_gone(k8s_node_t *n, const char *reason);
void k8s_group_check_done(k8s_group_t *g);
void k8s_node_resolve(k8s_node_t *n);
void k8s_node_log_settled(k8s_node_t *n);       /* logs.c: the stream ended */           /* reattach: what the watch shows of it */

/* agentctl.c */
void k8s_agent_poll_start(k8s_node_t *n);
void k8s_agent_stop(k8s_node_t *n);
void k8s_agent_post(k8s_node_t *n, const char *path, const char *query, const char *body,
                    void (*done)(k8s_node_t *n, bool ok, const char *why));
int k8s_release(jg_backend_t *base, int64_t group_id, jg_error_t *err);
void k8s_restart_in_place(k8s_node_t *n);
void k8s_retire(jg_backend_t *base, int64_t group_id, int job_index, int rank);

/* logs.c */
void k8s_log_start(k8s_node_t *n);
void k8s_log_stop(k8s_node_t *n);

/* teardown.c */
int k8s_stop(jg_backend_t *base, int64_t group_id, int job_index, int rank, int grace_ms,
             jg_error_t *err);
int k8s_cleanup(jg_backend_t *base, int64_t group_id, jg_error_t *err);
int k8s_sweep(jg_backend_t *base, const int64_t *live, size_t n, jg_error_t *err);
int k8s_reattach(jg_backend_t *base, int64_t group_id, const jg_node_handle_t *nodes, size_t n,
                 jg_error_t *err);
void k8s_delete_pod(k8s_node_t *n, int grace_s);
void k8s_stops_check(k8s_group_t *g);
void k8s_sweep_now(k8s_backend_t *b);

#endif
