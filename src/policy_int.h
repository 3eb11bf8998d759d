/* policy_int.h - the seam between the policy engine (policy.c: the sandboxed
 * VM, loading, the one protected call helper) and the table conversion
 * (policy_convert.c: C snapshots -> Lua tables, Lua returns -> C decisions,
 * and the built-in last-resort decisions).  Private to the policy module. */
#ifndef JGSCHED_POLICY_INT_H
#define JGSCHED_POLICY_INT_H

#include <lua.h>

#include "jgsched/policy.h"

/* One hook call: its inputs (borrowed from the public call) and the decision
 * read back.  The engine may run the same call twice (the policy, then the
 * default fallback): jg_policy_read_results starts from a clean result each
 * time, so a half-read malformed return never leaks into the next try. */
typedef struct {
    jg_policy_hook_t hook;
    char label[80];                     /* "fail-fast.lua": whose hook runs, for messages */
    const jg_policy_group_t *group;
    size_t job;                         /* on_node_exit, on_job_end */
    const jg_policy_exit_t *ev;         /* on_node_exit */
    const jg_policy_user_t *user;       /* on_submit */
    const jg_policy_infra_t *infras;    /* place */
    size_t n_infras;
    const jg_policy_usage_t *usage;     /* priority */
    size_t n_usage;

    /* Results.  pl.job_infra and je.cancel are allocated by the engine
     * (spec->n_jobs entries) before the call, so reading a return never
     * mallocs inside code that may longjmp. */
    jg_policy_admission_t adm;
    jg_policy_placement_t pl;
    double prio;
    jg_policy_decision_t dec;
    jg_policy_job_end_t je;
} jg_policy_call_t;

/* Pushes the hook's arguments (fresh snapshot tables); returns how many.
 * Runs in protected mode: raises Lua errors (memory). */
int jg_policy_push_args(lua_State *L, const jg_policy_call_t *c);

/* Validates the n values the hook returned, at stack index first..first+n-1,
 * and stores the decision in c.  A malformed return raises a Lua error whose
 * message says what was expected. */
void jg_policy_read_results(lua_State *L, jg_policy_call_t *c, int first, int n);

/* The decision used when neither the policy nor default.lua could make one:
 * accept, refuse to place, FIFO, continue, the primary/auxiliary rule. */
void jg_policy_builtin(jg_policy_call_t *c);

/* Bounded copy of n bytes of src into dst (size bytes), always NUL-terminated. */
void jg_policy_copy_text(char *dst, size_t size, const char *src, size_t n);

/* lua/prelude.lua, built into the library by scripts/embed.py (NUL-terminated). */
extern const char jg_prelude_lua[];
extern const size_t jg_prelude_lua_len;

#endif
