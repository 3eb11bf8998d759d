/* sched_int.h - what sched.c (the state machine) and sched_policy.c (the
 * decisions taken through Lua policies) share.  Private to the sched module. */
#ifndef JGSCHED_SCHED_INT_H
#define JGSCHED_SCHED_INT_H

#include "jgsched/capacity.h"
#include "jgsched/policy.h"
#include "jgsched/sched.h"
#include "jgsched/store.h"


typedef struct group_rt group_rt_t;

typedef struct {
    jg_state_t state;
    int attempt;
    int exit_code;              /* -1 if none */
    bool released;
    uint32_t pending_hash;      /* of the last NODE_PENDING reason written (0: none) */
} node_rt_t;

typedef struct {
    group_rt_t *group;
    int index;
    jg_state_t state;
    int attempt;
    int exit_code;              /* of the node that decided the job's fate (see exit_decided) */
    bool exit_decided;          /* a failing exit of this attempt set exit_code: a later
                                 * exit (a sibling stopped for it) does not replace it */
    char reason[256];           /* last reason written with its state */
    node_rt_t *nodes;
    int n_nodes;
    int restarts;               /* attempts charged to errors */
    int recoveries;             /* attempts after preemption / lost nodes */
    int free_restarts;          /* attempts charged to no counter */
    bool stopping;              /* a stop was requested for this job's nodes */
    jg_state_t stop_state;      /* what the job ends as once its nodes are down */
    char stop_reason[256];
    bool restart_pending;       /* relaunch once every node is down (and not before...) */
    int64_t restart_not_before_ms;
    int64_t restart_due_us;     /* the same on the wall clock, as stored */
    jg_attempt_count_t restart_count;
    uint64_t restart_timer;     /* wakes evaluate() when a restart delay ends */
    uint64_t cancel_timer;      /* pending on_job_end cancel (termination_delay) */
    double cancel_delay_s;
    char cancel_reason[256];
} job_rt_t;

struct group_rt {
    jg_sched_t *sched;
    int64_t id;
    jg_group_spec_t *spec;
    uid_t uid;
    gid_t gid;
    char *user;
    int64_t submitted_us;
    jg_state_t state;
    jg_backend_t *backend;
    job_rt_t *jobs;
    bool launching;             /* inside backend->launch: evaluation deferred */
    bool cancelling;
    jg_state_t end_override;    /* JG_PENDING when none; e.g. FAILED_SETUP */
    char end_reason[256];
    bool holds_resources;       /* admitted: counted in its backend's usage */
    bool cleaning;              /* ended, cleanup() asked: holds until CLEANED */
    signed char own_policy;     /* -1 not known yet; 0 an installed policy; 1 Lua text its
                                 * submitter sent (in the store); 2 a file path stored by
                                 * an older jgschedd: the default policy is used */
    struct policy_slot *own_slot;   /* own_policy 1: the loaded text; NULL if it failed */
    char pending_reason[256];   /* why it waits, as last written to the store */
    char reason[256];           /* last reason written with its state */
    bool finished;              /* ended: freed once the end is committed */
    bool unsynced;              /* the store missed a change: rewritten from memory later */
    uint64_t txn_serial;        /* the sched transaction that last wrote it */
    group_rt_t *prev, *next;
};

typedef struct {
    jg_backend_t *backend;
    jg_usage_t used;            /* what admitted groups hold on it, until CLEANED */
} backend_slot_t;

/* What an ended group, freed from memory, still holds on its backend until
 * the backend reports CLEANED. */
typedef struct cleaning {
    struct cleaning *next;
    int64_t group_id;
    jg_backend_t *backend;
    jg_usage_t used;
} cleaning_t;

/* A loaded policy: an installed one (by name, shared by every group that
 * names it) or the Lua text one user submitted with a group (shared only by
 * that user's groups with the very same text, freed once none is active). */
typedef struct policy_slot {
    char *name;                 /* installed: the name (or configured path); own: its label */
    jg_policy_t *policy;
    bool own;
    uid_t uid;                  /* own: whose text it is */
    char *text;                 /* own: the text (for reload) */
    size_t len;
} policy_slot_t;

struct jg_sched {
    jg_store_t *store;
    jg_loop_t *loop;
    jg_sched_options_t opts;
    backend_slot_t *backends;
    size_t n_backends;
    jg_backend_env_t env;       /* what the registry makes instances with */
    cleaning_t *cleaning;       /* ended groups whose CLEANED has not come yet */
    group_rt_t *head, *tail;
    size_t n_active;
    size_t n_pending;
    jg_sched_change_f change_cb;
    void *change_ctx;
    uint64_t kick_timer;
    bool admission_dirty;       /* something changed that may let a pending group start */
    char *policy_dir;
    char *default_policy;
    policy_slot_t **policies;   /* loaded policies */
    size_t n_policies;
    int txn_depth;              /* nesting of txn_begin (the store's transaction is one) */
    bool txn_failed;            /* a write of the open transaction failed */
    uint64_t txn_serial;
    uint64_t resync_timer;      /* retries writing unsynced groups */
    uint64_t retry_timer;       /* admission again after a launch the store refused */
};


/* ---- sched.c: mechanics the decisions use ---- */
/* The backend instance serving exactly infra ("kubernetes/ctx-a"), made
 * through the registry on first use when make is set; NULL if none. */
jg_backend_t *jg_sched_backend_named(jg_sched_t *s, const char *infra, bool make);
/* As jg_sched_backend_named; when the registry knows the kind but cannot make
 * the instance (a context the kubeconfig lacks), NULL + err says why; NULL
 * with err->text "" when the kind is unknown or disabled. */
jg_backend_t *jg_sched_backend_make(jg_sched_t *s, const char *infra, bool make, jg_error_t *err);
void jg_sched_changed(jg_sched_t *s, int64_t id);
void jg_sched_set_job_state(jg_sched_t *s, job_rt_t *j, jg_state_t st, const char *reason);
void jg_sched_stop_job(jg_sched_t *s, job_rt_t *j, jg_state_t stop_state, const char *reason);
void jg_sched_end_group(jg_sched_t *s, group_rt_t *g, job_rt_t *culprit, jg_state_t culprit_state,
                        jg_state_t group_state, const char *why_siblings, const char *reason);
void jg_sched_fail_before_barrier(jg_sched_t *s, group_rt_t *g, job_rt_t *culprit,
                                  jg_state_t culprit_state, const char *reason);
void jg_sched_request_restart(jg_sched_t *s, job_rt_t *j, jg_attempt_count_t count,
                              double delay_s, const char *reason);
void jg_sched_record(jg_sched_t *s, int64_t group_id, const char *subject, const char *what,
                     const char *reason);

/* ---- sched_policy.c: the decisions ---- */
/* Loads (once) and returns the named policy, "" or NULL meaning the daemon's default. */
jg_policy_t *jg_sched_policy(jg_sched_t *s, const char *name, jg_error_t *err);
void jg_sched_policies_free(jg_sched_t *s);
/* on_submit + place: the backend the whole group runs on, or NULL + err.
 * own_text (own_len bytes): Lua text the submitter sent as the group's policy
 * (spec->policy is its label); NULL: none, or, with group_id != 0 (a stored
 * group admitted again after a restart), whatever the store holds for it. */
jg_backend_t *jg_sched_admit(jg_sched_t *s, const jg_group_spec_t *spec, int64_t group_id,
                             const char *own_text, size_t own_len, const char *user,
                             uid_t uid, gid_t gid, char *notes, size_t notes_len,
                             jg_error_t *err);
/* Ties a new group to the text it was admitted with (jg_sched_admit). */
void jg_sched_bind_own_policy(jg_sched_t *s, group_rt_t *g, const char *own_text,
                              size_t own_len);
/* A node of a live job ended on its own (not stopped by us): ask on_node_exit and carry
 * the decision out. */
void jg_sched_node_ended(jg_sched_t *s, group_rt_t *g, job_rt_t *j, int rank,
                         jg_policy_exit_reason_t why, int exit_code, bool failed,
                         const char *message);
/* A job reached a terminal state: ask on_job_end (primary/auxiliary rule). */
void jg_sched_job_ended(jg_sched_t *s, group_rt_t *g, job_rt_t *j);
/* Admission order, decided by the daemon's configured policy alone (a
 * group's own policy never ranks it against other users' groups).  false:
 * FIFO (submit order, the active list's own order: walk it, no array).  true:
 * *order (malloc'd, caller frees) holds the *n pending groups ranked by the
 * configured policy's priority hook. */
bool jg_sched_ranked_order(jg_sched_t *s, group_rt_t ***order, size_t *n);

#endif
