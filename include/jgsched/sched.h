/* sched.h - the state machine of groups, jobs and nodes.
 *
 * sched owns the in-memory view of every active (non-terminal) group, writes
 * every transition to the store (one transaction per event and everything that
 * follows from it, each change with a reason; see sched.c on store failures),
 * makes and drives the backends (the only caller of their operations: it
 * makes them through the registry, one instance per infra), persists their
 * output in the logstore, and turns backend events into decisions: the
 * barrier, failure handling, cancellation, termination of auxiliary jobs.
 * Finished groups live only in the store (a group whose backend has not
 * reported CLEANED yet still holds its resources).  Everything runs on the
 * daemon's single-threaded loop.
 */
#ifndef JGSCHED_SCHED_H
#define JGSCHED_SCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "jgsched/backend.h"
#include "jgsched/capacity.h"
#include "jgsched/config.h"
#include "jgsched/error.h"
#include "jgsched/logstore.h"
#include "jgsched/loop.h"
#include "jgsched/spec.h"
#include "jgsched/store.h"

typedef struct jg_sched jg_sched_t;

/* What jg_sched_submit and jg_sched_cancel return when the store could not
 * record the change: nothing changed (a full disk, ...). */
#define JG_SCHED_STORE_FAILED (-2)

/* Called after any change to a group (state, job, node); used to push updates
 * to watching clients.  May be called several times per loop turn. */
typedef void (*jg_sched_change_f)(void *ctx, int64_t group_id);

typedef struct {
    int stop_grace_ms;          /* SIGTERM -> SIGKILL grace for cancel and stop (default 5000) */
    const char *policy_dir;     /* holds default.lua and the shipped policies; required */
    const char *default_policy; /* for groups that name none; NULL: "default" */
    const jg_config_t *config;  /* per-user limits, admins; borrowed, outlives sched; NULL: none */
    /* The host directory of a named volume (malloc'd), or NULL if there is no
     * such volume; NULL callback: no volumes exist. */
    char *(*volume_path)(void *ctx, const char *name);
    void *volume_ctx;
    jg_logstore_t *logs;            /* where node output is persisted (borrowed); NULL: dropped */
    jg_backend_env_t backend_env;   /* handed to the registry; sched fills on_event/event_ctx
                                     * (and loop, config when left NULL) */
    jg_backend_t **extra_backends;  /* tests: instances made by hand (the fake backend),
                                     * owned by sched from create on (also on failure);
                                     * they report to jg_sched_backend_event */
    size_t n_extra_backends;
    bool no_registry;               /* tests: make no backend from the config */
} jg_sched_options_t;

/* The store and loop are borrowed and must outlive the scheduler.  Makes
 * every backend the configuration enables (jgsched/registry.h); fails (NULL +
 * err) when one cannot be made. */
jg_sched_t *jg_sched_create(jg_store_t *store, jg_loop_t *loop, const jg_sched_options_t *opts,
                            jg_error_t *err);
/* Frees memory only: running nodes keep running (a restart picks them up). */
void jg_sched_destroy(jg_sched_t *sched);

/* The event sink sched gives the backends it makes (ctx = the sched).  A
 * test that makes an instance by hand (extra_backends) points it here once
 * the sched exists. */
void jg_sched_backend_event(void *ctx, const jg_backend_event_t *ev);

void jg_sched_set_change_cb(jg_sched_t *sched, jg_sched_change_f cb, void *ctx);

/* Accepts a validated spec (ownership passes to sched, also on failure): checks
 * placement against the configured backends, stores the group PENDING and
 * queues it.  Fails (-1) with nothing stored if the group cannot be placed,
 * JG_SCHED_STORE_FAILED if the store could not record it. */
int jg_sched_submit(jg_sched_t *sched, jg_group_spec_t *spec, uid_t uid, gid_t gid,
                    const char *user, int64_t *group_id, jg_error_t *err);

/* The same for a group governed by a policy its submitter wrote: policy_text
 * (policy_len bytes of Lua, read by the CLI as the user; NULL: none) is
 * stored with the group (a restarted daemon loads it from the store) and
 * spec->policy must be its label, a policy name.  The daemon never opens a
 * policy file a request names: a spec->policy that is a path is refused.
 * The text decides its own group's placement, failure and recovery; the
 * configured policy still admits the group first and alone orders the queue. */
int jg_sched_submit_own_policy(jg_sched_t *sched, jg_group_spec_t *spec, const char *policy_text,
                               size_t policy_len, uid_t uid, gid_t gid, const char *user,
                               int64_t *group_id, jg_error_t *err);

/* Cancels a group: a pending group ends CANCELLED at once; a running one goes
 * CANCELLING and every node is stopped.  The cancel is committed to the store
 * before anything changes.  Returns 0, -1 if the group already ended or does
 * not exist, or JG_SCHED_STORE_FAILED if the store could not record the cancel
 * (nothing changed then; err says why). */
int jg_sched_cancel(jg_sched_t *sched, int64_t group_id, const char *reason, jg_error_t *err);

/* One admission pass (launches what can start); the daemon calls it once per
 * loop turn.  It does nothing unless something changed that may let a group
 * start, and then walks each infra's queue, kept in priority order, from its
 * head to the first group that does not fit: its cost follows what can move,
 * not how many groups wait. */
void jg_sched_pass(jg_sched_t *sched);

/* After a daemon start: reloads active groups from the store, requeues pending
 * ones and reattaches running ones to their backends (each node resumes its
 * output after what the logstore holds), then sweeps every backend of what
 * groups no longer active left behind. */
int jg_sched_recover(jg_sched_t *sched, jg_error_t *err);

/* Reloads every policy the scheduler holds (SIGHUP, `jgsched policy reload`).
 * A policy that fails to load keeps its previous version; cb is told the
 * outcome of each (error NULL on success). */
typedef void (*jg_sched_reload_f)(void *ctx, const char *policy, const char *error);
void jg_sched_reload_policies(jg_sched_t *sched, jg_sched_reload_f cb, void *ctx);

/* What `jgsched infra` shows of one backend instance.  Borrowed, valid during
 * the callback. */
typedef struct {
    const char *name;               /* infra string: "local", "kubernetes/ctx-a" */
    const char *kind;               /* "local", "kubernetes" */
    const jg_capacity_t *capacity;  /* NULL: unlimited */
    const jg_usage_t *used;         /* what admitted groups hold on it (until CLEANED) */
    const char *warning;            /* NULL or one sentence (backend warning()) */
    const char *notes;              /* NULL or one line (backend notes()) */
} jg_sched_infra_t;
typedef void (*jg_sched_infra_f)(void *ctx, const jg_sched_infra_t *info);
/* Calls cb once per backend instance, in registry order (then instances made
 * on first use, in the order they were made). */
void jg_sched_foreach_infra(const jg_sched_t *sched, jg_sched_infra_f cb, void *ctx);

/* The warning of the backend serving infra (NULL: the default one), or NULL
 * when there is none or no such backend.  Borrowed from the backend. */
const char *jg_sched_infra_warning(const jg_sched_t *sched, const char *infra);

/* Calls cb for every active group, in submit order.  infra: the backend
 * instance it is placed on (NULL: none).  holds: admitted and counted in its
 * backend's usage.  Borrowed values, valid during the call. */
typedef void (*jg_sched_group_f)(void *ctx, int64_t id, const char *user, jg_state_t state,
                                 const char *infra, const jg_group_spec_t *spec, bool holds);
void jg_sched_foreach_active(const jg_sched_t *sched, jg_sched_group_f cb, void *ctx);

/* The id of an active group that mounts volume name, or 0 if none does. */
int64_t jg_sched_volume_user(const jg_sched_t *sched, const char *name);

/* Number of active groups (for tests and status). */
size_t jg_sched_active_count(const jg_sched_t *sched);

#endif
