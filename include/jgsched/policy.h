/* policy.h - the sandboxed Lua 5.4 engine that makes jgsched's decisions
 * (DESIGN section 6; the Lua side is documented in docs/policies.md).
 *
 * A policy is a Lua file returning a table of optional hooks.  Loading one
 * gives a jg_policy_t: its own lua_State with a hard memory cap, only the safe
 * libraries, policies/default.lua loaded first (a hook the policy leaves out
 * resolves to default's) and lua/prelude.lua as the `jg` helper table.  Each
 * hook call gets fresh snapshot tables built from the plain C structs below
 * and returns plain C values; every return is validated strictly.
 *
 * Failure contract of every hook call: 0 on success.  -1 when the hook
 * raised an error, ran past its instruction or time budget, ran out of
 * memory or returned something malformed: err then holds the reason with the
 * policy's file:line ("fail-fast.lua:12: attempt to index a nil value ..."),
 * which the caller records as an event on the group, and `out` STILL holds a
 * usable decision: the one policies/default.lua makes for the same input (or,
 * should default.lua fail too, a built-in equivalent).  So the caller always
 * acts on `out`, and records err when the call returned -1.
 *
 * Not thread-safe: one thread (the daemon's loop) uses a policy at a time.
 * A failed load changes nothing, so a reload is "load the new one; on success
 * free the old one, on failure keep it".
 */
#ifndef JGSCHED_POLICY_H
#define JGSCHED_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jgsched/error.h"
#include "jgsched/spec.h"
#include "jgsched/state.h"

typedef struct jg_policy jg_policy_t;

/* ---- limits ------------------------------------------------------------ */

#define JG_POLICY_DEFAULT_MEMORY        (32u << 20)     /* bytes of Lua heap per policy */
#define JG_POLICY_DEFAULT_INSTRUCTIONS  5000000u        /* VM instructions per hook call */
#define JG_POLICY_DEFAULT_TIME_MS       200u            /* wall time per hook call */

#define JG_POLICY_MAX_TEXT              (256u << 10)    /* bytes of one policy's Lua source */

/* Zero fields take the defaults above; a NULL limits pointer means all defaults. */
typedef struct {
    size_t memory_bytes;    /* hard cap on each Lua state's heap (a policy other than
                             * default holds two: its own and a clean default fallback) */
    uint64_t instructions;  /* per hook call (and per script load) */
    unsigned time_ms;       /* per hook call (and per script load), monotonic clock */
} jg_policy_limits_t;

/* ---- hooks ------------------------------------------------------------- */

typedef enum {
    JG_HOOK_ON_SUBMIT = 0,
    JG_HOOK_PLACE,
    JG_HOOK_PRIORITY,
    JG_HOOK_ON_NODE_EXIT,
    JG_HOOK_ON_JOB_END,
    JG_HOOK_COUNT
} jg_policy_hook_t;

/* "on_submit", "place", ...: static string ("unknown" if out of range). */
const char *jg_policy_hook_name(jg_policy_hook_t hook);

/* ---- snapshots: what the caller hands in (all borrowed for the call) -- */

/* Runtime state of one job, parallel to spec->jobs. */
typedef struct {
    jg_state_t state;       /* PENDING before launch */
    int attempt;            /* 1 for the first run; 0 before launch */
    int restarts;           /* restarts charged to errors so far (JG_POLICY_COUNT_RESTARTS) */
    int recoveries;         /* restarts after preemption / lost nodes so far */
    int exit_code;          /* last exit code of the job; -1 when none yet */
    const char *infra;      /* infra it was placed on; NULL before placement */
} jg_policy_job_state_t;

typedef struct {
    const jg_group_spec_t *spec;            /* required */
    int64_t id;                             /* 0 before the store assigned one */
    const char *user;                       /* owner's user name; may be NULL */
    jg_state_t state;
    int64_t submitted_us;                   /* wall clock of submit, microseconds since the epoch */
    const jg_policy_job_state_t *jobs;      /* spec->n_jobs entries; NULL: none launched yet
                                             * (every job PENDING, attempt 0).  Required by
                                             * on_node_exit and on_job_end. */
} jg_policy_group_t;

/* Who submits (on_submit). */
typedef struct {
    const char *name;
    uid_t uid;
    bool admin;             /* root or a configured admin */
} jg_policy_user_t;

/* One infra the group could go to (place). */
typedef struct {
    const char *name;       /* "local", "kubernetes", "kubernetes/<context>" */
    bool fits;              /* every node of every job of the group can ever fit there */
    const char *reason;     /* when !fits: why, in the backend's words; may be NULL */
} jg_policy_infra_t;

/* One user's current consumption (priority). */
typedef struct {
    const char *user;
    int groups;             /* groups of this user that are not terminal (running or starting) */
    int nodes;              /* nodes of this user now running */
    double cpus;            /* cpus of this user now in use */
} jg_policy_usage_t;

typedef enum {
    JG_EXIT_EXITED = 0,     /* `run` ended with exit_code (128+N: killed by signal N) */
    JG_EXIT_PREEMPTED,      /* the infra took the node back (eviction, spot) */
    JG_EXIT_NODE_LOST,      /* the node vanished without a recorded exit */
    JG_EXIT_SETUP_FAILED,   /* `setup` ended non-zero */
    JG_EXIT_REASON_COUNT
} jg_policy_exit_reason_t;

/* One node's end (on_node_exit).  attempt, restarts and recoveries reach the
 * Lua event table from the job's jg_policy_job_state_t. */
typedef struct {
    jg_policy_exit_reason_t reason;
    int exit_code;          /* EXITED / SETUP_FAILED: 0..255; -1 when there is none */
    int rank;               /* the node's rank within its job */
    const char *message;    /* the backend's words (e.g. why it was lost); may be NULL */
} jg_policy_exit_t;

/* "exited", "preempted", "node_lost", "setup_failed" ("unknown" if out of range). */
const char *jg_policy_exit_reason_name(jg_policy_exit_reason_t r);
/* Parses such a name; -1 if unknown. */
int jg_policy_exit_reason_parse(const char *name, jg_policy_exit_reason_t *out);

/* ---- decisions: what comes back (plain values, caller-owned) ---------- */

#define JG_POLICY_REASON_MAX 256

/* on_submit */
typedef struct {
    bool accepted;
    char reason[JG_POLICY_REASON_MAX];  /* why rejected; may be set when accepted */
    char policy[64];                    /* non-empty: the hook chose this policy name for the
                                         * group (a valid name; the caller checks it exists) */
} jg_policy_admission_t;

/* place */
typedef struct {
    bool accepted;                      /* false: the group cannot be placed; see reason */
    char reason[JG_POLICY_REASON_MAX];
    int *job_infra;                     /* accepted: malloc'd, spec->n_jobs indexes into the
                                         * infras array; NULL otherwise.  Free with
                                         * jg_policy_placement_clear. */
} jg_policy_placement_t;

typedef enum {
    JG_ACTION_CONTINUE = 0,     /* let the siblings run; the job ends as it ended */
    JG_ACTION_RESTART_JOB,      /* stop the job's other nodes, relaunch the whole job */
    JG_ACTION_RESTART_GROUP,    /* stop every node of the group, relaunch the whole group */
    JG_ACTION_CANCEL_GROUP,     /* stop every node; the group ends CANCELLED */
    JG_ACTION_FAIL_GROUP,       /* stop every node; the group ends FAILED */
    JG_ACTION_COUNT
} jg_policy_action_t;

/* Which counter a restart is charged to (meaningful for RESTART_*). */
typedef enum {
    JG_POLICY_COUNT_NONE = 0,   /* free restart (SkyPilot: an exit code in recover_on_exit_codes) */
    JG_POLICY_COUNT_RESTARTS,   /* add one to the job's restarts (errors) */
    JG_POLICY_COUNT_RECOVERIES, /* add one to the job's recoveries (preemption, lost node) */
} jg_policy_count_t;

/* on_node_exit */
typedef struct {
    jg_policy_action_t action;
    jg_policy_count_t count;    /* when the hook says nothing: RESTARTS after exited /
                                 * setup_failed, RECOVERIES after preempted / node_lost;
                                 * NONE for actions that are not restarts */
    double delay_s;             /* carry the action out after this many seconds (>= 0) */
    char reason[JG_POLICY_REASON_MAX];
} jg_policy_decision_t;

/* "continue", "restart_job", ... ("unknown" if out of range). */
const char *jg_policy_action_name(jg_policy_action_t a);
int jg_policy_action_parse(const char *name, jg_policy_action_t *out);

/* on_job_end: jobs to cancel because this job ended (the primary/auxiliary rule). */
typedef struct {
    int job;                    /* index into spec->jobs */
    double delay_s;             /* grace before the cancel (termination_delay) */
} jg_policy_cancel_t;

typedef struct {
    jg_policy_cancel_t *cancel; /* malloc'd, n_cancel entries, each job at most once;
                                 * NULL when none.  Free with jg_policy_job_end_clear. */
    size_t n_cancel;
    char reason[JG_POLICY_REASON_MAX];
} jg_policy_job_end_t;

void jg_policy_placement_clear(jg_policy_placement_t *pl);   /* frees job_infra; NULL ok */
void jg_policy_job_end_clear(jg_policy_job_end_t *je);       /* frees cancel; NULL ok */

/* ---- loading ------------------------------------------------------------ */

/* True if the n bytes at s are a policy name: [A-Za-z0-9_-]{1,63}, whatever
 * the locale. */
bool jg_policy_valid_name(const char *s, size_t n);

/* True if name_or_path names a file rather than a policy: it contains '/' or
 * ends in ".lua" (the rule of jg_policy_load). */
bool jg_policy_is_path(const char *name_or_path);

/* Reads a policy file (at most JG_POLICY_MAX_TEXT bytes) for the caller,
 * with the caller's own rights: returns the text (malloc'd, NUL-terminated,
 * *len bytes) or NULL + err ("cannot read PATH: Permission denied").  Never
 * blocks: anything but a regular file (a FIFO, a device) is refused. */
char *jg_policy_read_file(const char *path, size_t *len, jg_error_t *err);

/* Where policies are found by name (malloc'd): $JGSCHED_POLICY_DIR, else the
 * source tree's policies/ when running from a build tree, else the installed
 * ones.  The daemon and `jgsched policy` share it, so both load the same file. */
char *jg_policy_default_dir(void);

/* Loads a policy.  name_or_path: a policy name ("fail-fast": [A-Za-z0-9_-]+,
 * read from <policy_dir>/<name>.lua) or, when it contains '/' or ends in
 * ".lua", a file path.  policy_dir holds default.lua (always loaded first) and
 * <policy_dir>/../lua/prelude.lua is the helper table; the daemon passes
 * jg_policy_default_dir().  Returns a new policy (free with jg_policy_free) or NULL + err:
 * unreadable file, syntax error ("x.lua:3: ... near ..."), an error or
 * overrun while running the chunk, a return value that is not a table of
 * known hook names mapped to functions. */
jg_policy_t *jg_policy_load(const char *name_or_path, const char *policy_dir,
                            const jg_policy_limits_t *limits, jg_error_t *err);

/* The same from text already in memory (`jgsched policy test`, tests).  name
 * labels messages ("<name>.lua:3: ..."); "default" loads text as THE default
 * policy (no fallback state).  text need not be NUL-terminated. */
jg_policy_t *jg_policy_load_text(const char *name, const char *text, size_t len,
                                 const char *policy_dir, const jg_policy_limits_t *limits,
                                 jg_error_t *err);

void jg_policy_free(jg_policy_t *p);     /* NULL ok */

const char *jg_policy_name(const jg_policy_t *p);   /* owned by p */
const char *jg_policy_path(const jg_policy_t *p);   /* owned by p; NULL when loaded from text */

/* Bitmask (1u << jg_policy_hook_t) of the hooks the policy file itself
 * defines; the others resolve to default.lua's. */
unsigned jg_policy_hooks(const jg_policy_t *p);

/* Bytes of Lua heap the policy holds now (all its states). */
size_t jg_policy_memory(const jg_policy_t *p);

/* Where `print` of every policy goes: cb(ctx, policy name, line).  NULL cb:
 * stderr, "policy NAME: line".  Process-wide; set it once at start-up. */
typedef void (*jg_policy_log_f)(void *ctx, const char *policy, const char *line);
void jg_policy_set_log(jg_policy_log_f cb, void *ctx);

/* ---- hook calls (see the failure contract at the top) ----------------- */

/* on_submit(group, user) -> true | group table | nil, reason. */
int jg_policy_on_submit(jg_policy_t *p, const jg_policy_group_t *group,
                        const jg_policy_user_t *user, jg_policy_admission_t *out,
                        jg_error_t *err);

/* place(group, infras) -> {[job name] = infra name} for every job | nil, reason.
 * The default enforces SAME_INFRA.  On success with out->accepted, the caller
 * owns out->job_infra. */
int jg_policy_place(jg_policy_t *p, const jg_policy_group_t *group,
                    const jg_policy_infra_t *infras, size_t n_infras,
                    jg_policy_placement_t *out, jg_error_t *err);

/* priority(group, usage) -> a finite number: the admission sort key.  The
 * pending group with the SMALLEST key is admitted first; ties go to the lower
 * group id.  The default returns the submit time (FIFO). */
int jg_policy_priority(jg_policy_t *p, const jg_policy_group_t *group,
                       const jg_policy_usage_t *usage, size_t n_usage, double *out,
                       jg_error_t *err);

/* on_node_exit(group, job, event) -> action name | {action=, delay=, reason=, count=}.
 * job_index indexes spec->jobs; group->jobs is required. */
int jg_policy_on_node_exit(jg_policy_t *p, const jg_policy_group_t *group, size_t job_index,
                           const jg_policy_exit_t *ev, jg_policy_decision_t *out,
                           jg_error_t *err);

/* on_job_end(group, job) -> nil | {cancel = {...}, reason=}.  Called once when
 * a job reached a terminal state (group->jobs already shows it); the default
 * implements primary_tasks / termination_delay.  The caller owns out->cancel. */
int jg_policy_on_job_end(jg_policy_t *p, const jg_policy_group_t *group, size_t job_index,
                         jg_policy_job_end_t *out, jg_error_t *err);

#endif
