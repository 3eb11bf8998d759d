/* sched_int.h - what sched.c (the state machine) and sched_policy.c (the
 * decisions taken through Lua policies) share.  Private to the sched module. */
#ifndef JGSCHED_SCHED_INT_H
#define JGSCHED_SCHED_INT_H

#include "jgsched/capacity.h"
#include "jgsched/policy.h"
#include "jgsched/sched.h"
#include "jgsched/store.h"


typedef struct group_rt group_rt_t;

/* One user with an active group: what that user's admitted groups hold (for
 * the per-user limits and priority()'s usage argument) and their queued
 * groups (whose priority is computed again when that usage changes).  Shared
 * by the user's groups, which borrow the name; freed with the last one. */
typedef struct user_rec {
    char *name;
    size_t refs;                /* active groups of this user */
    int groups, nodes;          /* admitted groups holding resources, and their nodes */
    double cpus;                /* their cpus as the limits count them (unset: 0 per node) */
    double usage_cpus;          /* as priority()'s usage counts them (unset: 1 per node) */
    group_rt_t *queued;         /* this user's queued groups, any infra (rq_user_next) */
    /* At their running_groups limit: none of their groups can start, so
     * they are parked off the queues until the user's usage drops, and no
     * pass walks them meanwhile.  When it drops, only the best parked group
     * of each infra comes back to its queue (FIFO), the next one each time
     * one of theirs leaves the queue; so on each infra the user's parked
     * groups rank behind all their queued ones there, and a turnover costs
     * O(log n) however many are parked.  Under a ranked policy every parked
     * group comes back (their priority() is asked again anyway). */
    bool at_limit;
    char *limit_why;            /* the reason the parked groups show */
    group_rt_t *parked;         /* treap by (backend, prio_key, id), the rq_ links */
    size_t n_parked;
    bool revisit_due;           /* usage changed: the next pass ranks the queued groups
                                 * again, or unparks the parked ones (revisit_users) */
} user_rec_t;

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
    char *reason;               /* last reason written with its state (NULL: none); the
                                 * reasons are heap strings: a pending group's memory is
                                 * what it uses, not 256 bytes a field */
    node_rt_t *nodes;
    int n_nodes;
    int restarts;               /* attempts charged to errors */
    int recoveries;             /* attempts after preemption / lost nodes */
    int free_restarts;          /* attempts charged to no counter */
    bool stopping;              /* a stop was requested for this job's nodes */
    jg_state_t stop_state;      /* what the job ends as once its nodes are down */
    char *stop_reason;
    bool restart_pending;       /* relaunch once every node is down (and not before...) */
    int64_t restart_not_before_ms;
    int64_t restart_due_us;     /* the same on the wall clock, as stored */
    jg_attempt_count_t restart_count;
    uint64_t restart_timer;     /* wakes evaluate() when a restart delay ends */
    uint64_t cancel_timer;      /* pending on_job_end cancel (termination_delay) */
    double cancel_delay_s;
    char *cancel_reason;
} job_rt_t;

struct group_rt {
    jg_sched_t *sched;
    int64_t id;
    jg_group_spec_t *spec;
    uid_t uid;
    gid_t gid;
    const char *user;           /* owner->name */
    user_rec_t *owner;
    int64_t submitted_us;
    jg_state_t state;
    jg_backend_t *backend;
    job_rt_t *jobs;
    bool launching;             /* inside backend->launch: evaluation deferred */
    bool cancelling;
    jg_state_t end_override;    /* JG_PENDING when none; e.g. FAILED_SETUP */
    char *end_reason;
    bool holds_resources;       /* admitted: counted in its backend's usage */
    bool cleaning;              /* ended, cleanup() asked: holds until CLEANED */
    signed char own_policy;     /* -1 not known yet; 0 an installed policy; 1 Lua text its
                                 * submitter sent (in the store); 2 a file path stored by
                                 * an older jgschedd: the default policy is used */
    struct policy_slot *own_slot;   /* own_policy 1: the loaded text; NULL if it failed */
    uint32_t pending_hash;      /* of why it waits, as last written to the store (0: none) */
    char *reason;               /* last reason written with its state (NULL: none) */
    bool finished;              /* ended: freed once the end is committed */
    bool unsynced;              /* the store missed a change: rewritten from memory later */
    uint64_t txn_serial;        /* the sched transaction that last wrote it */
    group_rt_t *prev, *next;
    group_rt_t *id_next;        /* chain of the id index */
    /* While queued (PENDING, not cancelling): a node of its backend's ranked
     * queue, ordered by (prio_key, id), and of its owner's list. */
    bool queued;
    bool parked;                /* in owner->parked instead (see user_rec_t) */
    double prio_key;            /* priority() as last computed; 0 for FIFO (id order) */
    uint32_t rq_heap;           /* the treap's random heap priority */
    group_rt_t *rq_left, *rq_right, *rq_parent;
    group_rt_t *rq_user_prev, *rq_user_next;
};

typedef struct {
    jg_backend_t *backend;
    jg_usage_t used;            /* what admitted groups hold on it, until CLEANED */
    /* Its pending groups in admission order: a treap keyed by (prio_key, id),
     * so a submit, an admission and a priority change cost O(log n) and a
     * pass starts at the head. */
    group_rt_t *queue;
    size_t n_queued;
    /* The queued group that did not fit at the last pass (0: none) and why:
     * every group ranked behind it waits, and says so. */
    int64_t blocker;
    char blocker_why[256];
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
    size_t groups;              /* own: active groups bound to it (freed at 0, on a sweep) */
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
    group_rt_t **by_id;         /* id index of the active groups: chained buckets */
    size_t n_buckets;           /* a power of two */
    user_rec_t **users;         /* users with an active group */
    size_t n_users;
    user_rec_t **revisit_users; /* users the next pass ranks again or unparks */
    size_t n_revisit_users;
    int64_t *touched;           /* groups the open transaction wrote (txn_end visits them) */
    size_t n_touched, cap_touched;
    size_t pass_from;           /* the backend the next pass starts with */
    bool closing;               /* jg_sched_destroy: nothing is ranked or queued any more */
    bool ranked;                /* the configured policy orders the queue by its priority() */
    uint64_t refresh_timer;     /* recomputes every queued group's priority (ranked only) */
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


/* *dst = a copy of src (NULL or "": none), the old text freed; src may be *dst. */
void jg_sched_text_set(char **dst, const char *src);
/* s, or "" for none. */
static inline const char *jg_sched_text(const char *s)
{
    return s ? s : "";
}

/* ---- sched_queue.c: indexes that keep each event's cost independent of
 * how many groups are active ---- */
void jg_sched_index_add(jg_sched_t *s, group_rt_t *g);
void jg_sched_index_remove(jg_sched_t *s, group_rt_t *g);
group_rt_t *jg_sched_find(const jg_sched_t *s, int64_t id);
void jg_sched_index_free(jg_sched_t *s);
/* The record of user name, made on first use; each ref is one active group. */
user_rec_t *jg_sched_user_ref(jg_sched_t *s, const char *name);
void jg_sched_user_unref(jg_sched_t *s, user_rec_t *u);
/* The ranked queue of one backend.  Insert and remove also keep the owner's
 * list of queued groups. */
int jg_rq_cmp(const group_rt_t *a, const group_rt_t *b);
void jg_rq_insert(backend_slot_t *slot, group_rt_t *g);
void jg_rq_remove(backend_slot_t *slot, group_rt_t *g);
group_rt_t *jg_rq_first(const backend_slot_t *slot);
group_rt_t *jg_rq_next(const group_rt_t *g);
/* A user's parked set (user_rec_t); jg_rq_next walks it too. */
void jg_parked_insert(user_rec_t *u, group_rt_t *g);
void jg_parked_remove(user_rec_t *u, group_rt_t *g);
/* u's best parked group on backend b (NULL: none), in O(log n). */
group_rt_t *jg_parked_first_on(const user_rec_t *u, const jg_backend_t *b);

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
/* Every queued group's priority() asked again, the order and the waiting
 * reasons rebuilt (policy reload, the periodic refresh). */
void jg_sched_rerank_all(jg_sched_t *s);
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
/* Admission order is decided by the daemon's configured policy alone (a
 * group's own policy never ranks it against other users' groups).  Whether
 * that policy ranks by its own priority() (false: FIFO, submit order, no Lua
 * call at all). */
bool jg_sched_policy_ranks(jg_sched_t *s);
/* The configured policy's priority() for each of the n groups (their
 * prio_key), with one usage snapshot for all of them; n calls, nothing else
 * is asked.  Not ranked: every key 0. */
void jg_sched_compute_priorities(jg_sched_t *s, group_rt_t **groups, size_t n);

#endif
