/* store.h - all persistent state of a jgsched instance, in one SQLite file.
 *
 * The only module that writes SQL.  WAL mode, prepared statements reused,
 * migrations keyed by PRAGMA user_version.  Every state change is written
 * together with an event row (timestamp + reason) so `jgsched show` can replay
 * the history.  A caller that changes several rows for one transition wraps the
 * calls in jg_store_begin / jg_store_commit so the transition lands whole; the
 * single calls work outside a transaction too (each is then atomic on its own).
 *
 * Row structs returned by the query functions are owned by the caller and freed
 * with the matching *_free function.  Timestamps are wall-clock microseconds.
 */
#ifndef JGSCHED_STORE_H
#define JGSCHED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jgsched/error.h"
#include "jgsched/spec.h"
#include "jgsched/state.h"

typedef struct jg_store jg_store_t;

typedef struct {
    int64_t id;
    char *name;
    char *user;
    uid_t uid;
    gid_t gid;
    jg_state_t state;
    char *reason;           /* why it is in that state (waiting reason, failure), may be "" */
    char *spec_json;        /* jg_spec_to_json of the submitted (overridden) spec */
    char *infra;            /* where it was placed, "" until placed */
    int64_t submitted_us;
    int64_t started_us;     /* 0 until launched */
    int64_t ended_us;       /* 0 until terminal */
} jg_group_row_t;

typedef struct {
    int64_t group_id;
    int index;              /* position in the spec */
    char *name;
    int num_nodes;
    jg_state_t state;
    char *reason;
    int attempt;            /* 1-based; a restart increments it */
    int restarts;           /* restarts on errors so far (job_recovery accounting) */
    int recoveries;         /* restarts after preemption / node loss */
    int free_restarts;      /* restarts charged to no counter (recover_on_exit_codes, ...) */
    int exit_code;          /* exit code of the node that decided the job's fate, -1 if none */
    int restart_count;      /* a restart waiting to happen: the jg_attempt_count_t it is
                             * charged to; -1 if none is pending */
    int64_t restart_due_us; /* wall-clock time that pending restart may launch at */
    int64_t started_us;
    int64_t ended_us;
} jg_job_row_t;

typedef struct {
    int64_t group_id;
    int job_index;
    int rank;
    jg_state_t state;
    int attempt;
    int exit_code;          /* -1 if none */
    char *hostname;         /* "<job>-<rank>.<group>" */
    char *address;          /* IP, "" until known */
    char *handle;           /* backend's opaque handle, "" until started */
} jg_node_row_t;

typedef struct {
    int64_t id;
    int64_t group_id;
    int64_t ts_us;
    char *subject;          /* "group", "job <name>", "node <job>-<rank>", "policy" */
    char *what;             /* a state name or a decision */
    char *reason;
} jg_event_row_t;

typedef struct {
    int64_t group_id;       /* 0: all groups; else that group alone, if it passes user,
                             * active_only and ended_after_us (name, states ignored) */
    bool active_only;       /* only non-terminal groups */
    int64_t ended_after_us; /* with !active_only: also terminal groups ended after this (0: all) */
    const char *user;       /* NULL: every user */
    const char *name;       /* NULL: any; "x": named x; "x*": names starting with x */
    uint32_t states;        /* bit (1u << state) per state listed, 0: any; when set,
                             * active_only and ended_after_us are ignored */
    bool summary;           /* leave spec_json "" (a listing that shows no spec reads less) */
    int64_t after_id;       /* only groups with a larger id (0: from the first); a page cursor */
    size_t limit;           /* at most this many groups, the lowest ids (0: all) */
} jg_group_filter_t;

/* Opens (creating if needed) and migrates the store at path.  Refuses, with a
 * message naming the file, a file that is not a jgsched store, is corrupt, or
 * comes from a newer version (nothing is modified then). */
jg_store_t *jg_store_open(const char *path, jg_error_t *err);
/* The same, for the one process that owns the store (the daemon): holds the
 * file locked for as long as it is open, and keeps WAL's index in memory
 * rather than in the mmap'd -shm file, so damage to that file by another
 * program is an error returned to the caller, never a SIGBUS.  An existing
 * empty (0-byte) file is refused by both: a brand-new store is one whose file
 * does not exist. */
jg_store_t *jg_store_open_exclusive(const char *path, jg_error_t *err);
void jg_store_close(jg_store_t *store);     /* accepts NULL */

/* Caps the store file at max_pages pages (PRAGMA max_page_count): a write that
 * needs more fails as it would on a full disk.  For tests of store failures. */
int jg_store_limit_pages(jg_store_t *store, int64_t max_pages, jg_error_t *err);

int jg_store_begin(jg_store_t *store, jg_error_t *err);     /* BEGIN IMMEDIATE */
int jg_store_commit(jg_store_t *store, jg_error_t *err);
void jg_store_rollback(jg_store_t *store);

/* Inserts a PENDING group with its jobs and nodes (hostnames filled in) and a
 * "submitted" event, in one transaction of its own; sets *group_id. */
int jg_store_add_group(jg_store_t *store, const jg_group_spec_t *spec, const char *spec_json,
                       uid_t uid, gid_t gid, const char *user, int64_t now_us,
                       int64_t *group_id, jg_error_t *err);

/* State setters: each updates the row and appends an event (subject, state name,
 * reason).  Timestamps: started_us is set on the first move to STARTING, ended_us
 * on a move to a terminal state. */
int jg_store_set_group_state(jg_store_t *store, int64_t group_id, jg_state_t state,
                             const char *reason, int64_t now_us, jg_error_t *err);
int jg_store_set_group_infra(jg_store_t *store, int64_t group_id, const char *infra,
                             jg_error_t *err);
int jg_store_set_job_state(jg_store_t *store, int64_t group_id, int job_index,
                           jg_state_t state, const char *reason, int64_t now_us,
                           jg_error_t *err);
/* Which counter a new attempt is charged to (the policy decides). */
typedef enum {
    JG_COUNT_NONE = 0,      /* a free restart (an exit code listed in recover_on_exit_codes) */
    JG_COUNT_RESTART,       /* restarts + 1 (errors, max_restarts_on_errors) */
    JG_COUNT_RECOVERY,      /* recoveries + 1 (preemption, lost node) */
} jg_attempt_count_t;

/* Records a new attempt of the job: attempt+1 and the counter named by count
 * (JG_COUNT_NONE: free_restarts), and clears the pending restart. */
int jg_store_job_new_attempt(jg_store_t *store, int64_t group_id, int job_index,
                             jg_attempt_count_t count, int64_t now_us, jg_error_t *err);
int jg_store_set_job_exit(jg_store_t *store, int64_t group_id, int job_index, int exit_code,
                          jg_error_t *err);
/* Overwrites a job's state, reason, counters, exit code and pending restart
 * with row's (name, num_nodes and times are left alone), without an event:
 * for writing again what a failed transaction lost. */
int jg_store_put_job(jg_store_t *store, const jg_job_row_t *row, jg_error_t *err);
/* Records (count >= 0) or clears (count -1) a restart decided but not launched
 * yet: the counter it is charged to and when it may launch. */
int jg_store_set_job_restart(jg_store_t *store, int64_t group_id, int job_index, int count,
                             int64_t due_us, jg_error_t *err);
int jg_store_set_node_state(jg_store_t *store, int64_t group_id, int job_index, int rank,
                            jg_state_t state, int attempt, int exit_code, const char *reason,
                            int64_t now_us, jg_error_t *err);
int jg_store_set_node_handle(jg_store_t *store, int64_t group_id, int job_index, int rank,
                             const char *handle, const char *address, jg_error_t *err);

/* Appends an event that is not a state change (a policy decision, a warning). */
int jg_store_add_event(jg_store_t *store, int64_t group_id, const char *subject,
                       const char *what, const char *reason, int64_t now_us, jg_error_t *err);

/* Queries.  Arrays are malloc'd; free with the matching function. */
/* The Lua text of a policy the submitter sent with the group (len bytes; NULL
 * text: none, the group uses an installed policy).  Set once, at submit, in
 * the caller's transaction with jg_store_add_group. */
int jg_store_set_group_policy_text(jg_store_t *store, int64_t group_id, const char *text,
                                   size_t len, jg_error_t *err);
/* *text (malloc'd, NUL-terminated, *len bytes) or NULL when the group has none;
 * -1 + "no group N" if absent. */
int jg_store_get_group_policy_text(jg_store_t *store, int64_t group_id, char **text,
                                   size_t *len, jg_error_t *err);

int jg_store_get_group(jg_store_t *store, int64_t group_id, jg_group_row_t *out,
                       jg_error_t *err);   /* -1 + "no group N" if absent */
/* By id.  Served by an index whatever the filter (state, user, name), so a
 * page of `limit` groups costs about its own rows with 100,000 stored. */
int jg_store_list_groups(jg_store_t *store, const jg_group_filter_t *filter,
                         jg_group_row_t **out, size_t *n, jg_error_t *err);
/* *count: the terminal groups that ended at or before before_us, of user
 * (NULL: any) and matching name (NULL: any; "x*" a prefix, as in the filter):
 * what a listing of active and recently ended groups leaves out. */
int jg_store_count_ended(jg_store_t *store, const char *user, const char *name,
                         int64_t before_us, int64_t *count, jg_error_t *err);
/* group_id 0: the jobs of every group, ordered by group id then index. */
int jg_store_list_jobs(jg_store_t *store, int64_t group_id, jg_job_row_t **out, size_t *n,
                       jg_error_t *err);   /* by index */
/* The jobs of the n_ids groups listed (ids naming no group add nothing), ordered
 * by group id then index: one query for a listing of groups instead of one per
 * group. */
int jg_store_list_jobs_of(jg_store_t *store, const int64_t *group_ids, size_t n_ids,
                          jg_job_row_t **out, size_t *n, jg_error_t *err);
int jg_store_list_nodes(jg_store_t *store, int64_t group_id, jg_node_row_t **out, size_t *n,
                        jg_error_t *err);  /* by job index, rank */
int jg_store_list_events(jg_store_t *store, int64_t group_id, jg_event_row_t **out, size_t *n,
                         jg_error_t *err); /* by id */

/* Named shared volumes created with `jgsched volume create` (volumes declared
 * in config.yaml are not stored). */
typedef struct {
    char *name;
    char *path;             /* host directory */
    uid_t uid;              /* creator, who owns its files */
    char *user;
    int64_t created_us;
} jg_volume_row_t;

int jg_store_add_volume(jg_store_t *store, const char *name, const char *path, uid_t uid,
                        const char *user, int64_t now_us, jg_error_t *err);  /* "already exists" */
int jg_store_get_volume(jg_store_t *store, const char *name, jg_volume_row_t *out,
                        jg_error_t *err);   /* -1 + "no volume NAME" if absent */
int jg_store_list_volumes(jg_store_t *store, jg_volume_row_t **out, size_t *n, jg_error_t *err);
int jg_store_remove_volume(jg_store_t *store, const char *name, jg_error_t *err);
void jg_volume_row_clear(jg_volume_row_t *row);
void jg_volume_rows_free(jg_volume_row_t *rows, size_t n);

void jg_group_row_clear(jg_group_row_t *row);
void jg_group_rows_free(jg_group_row_t *rows, size_t n);
void jg_job_rows_free(jg_job_row_t *rows, size_t n);
void jg_node_rows_free(jg_node_row_t *rows, size_t n);
void jg_event_rows_free(jg_event_row_t *rows, size_t n);

#endif
