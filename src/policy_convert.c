/* policy_convert.c - plain C values in, plain C values out, for the policy hooks.
 *
 * Hooks never see a pointer into the daemon: each call gets fresh Lua tables
 * copied from the caller's C structs (a spec plus per-job runtime state), so
 * whatever a script does to them (setmetatable, rawset, keeping them in a
 * global) changes nothing the C side reads.  What a hook returns is read with
 * raw accesses only (no metamethod ever runs while we read) and validated
 * strictly: an unknown key, a wrong type or a name that does not exist is an
 * error naming the policy file, so a typo in a policy fails loudly and the
 * default decision is used, instead of being taken for "continue".  The exact
 * tables are documented in docs/policies.md; keep the two in step.
 *
 * Everything here runs inside the engine's protected call (policy.c): errors
 * are raised with luaL_error and nothing is malloc'd.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "policy_int.h"

#define MAX_DELAY_S (7 * 24 * 3600.0)   /* a longer delay is certainly a unit mistake */

static const char *const action_names[JG_ACTION_COUNT] = {
    [JG_ACTION_CONTINUE] = "continue",
    [JG_ACTION_RESTART_JOB] = "restart_job",
    [JG_ACTION_RESTART_GROUP] = "restart_group",
    [JG_ACTION_CANCEL_GROUP] = "cancel_group",
    [JG_ACTION_FAIL_GROUP] = "fail_group",
};

static const char *const reason_names[JG_EXIT_REASON_COUNT] = {
    [JG_EXIT_EXITED] = "exited",
    [JG_EXIT_PREEMPTED] = "preempted",
    [JG_EXIT_NODE_LOST] = "node_lost",
    [JG_EXIT_SETUP_FAILED] = "setup_failed",
};

const char *jg_policy_action_name(jg_policy_action_t a)
{
    return (unsigned)a < JG_ACTION_COUNT ? action_names[a] : "unknown";
}

int jg_policy_action_parse(const char *name, jg_policy_action_t *out)
{
    for (int i = 0; name && i < JG_ACTION_COUNT; i++) {
        if (strcmp(name, action_names[i]) == 0) {
            *out = (jg_policy_action_t)i;
            return 0;
        }
    }
    return -1;
}

const char *jg_policy_exit_reason_name(jg_policy_exit_reason_t r)
{
    return (unsigned)r < JG_EXIT_REASON_COUNT ? reason_names[r] : "unknown";
}

int jg_policy_exit_reason_parse(const char *name, jg_policy_exit_reason_t *out)
{
    for (int i = 0; name && i < JG_EXIT_REASON_COUNT; i++) {
        if (strcmp(name, reason_names[i]) == 0) {
            *out = (jg_policy_exit_reason_t)i;
            return 0;
        }
    }
    return -1;
}

/* ---- spec facts computed here so the module stands alone ------------------ */

static bool job_is_primary(const jg_group_spec_t *spec, size_t i)
{
    if (spec->n_primary_tasks == 0)
        return true;
    for (size_t k = 0; k < spec->n_primary_tasks; k++)
        if (spec->primary_tasks[k] && strcmp(spec->primary_tasks[k], spec->jobs[i].name) == 0)
            return true;
    return false;
}

static double job_termination_delay(const jg_group_spec_t *spec, size_t i)
{
    for (size_t k = 0; k < spec->n_termination_delays; k++) {
        const jg_kv_t *kv = &spec->termination_delays[k];
        if (kv->key && kv->value && strcmp(kv->key, spec->jobs[i].name) == 0) {
            char *end;
            double d = strtod(kv->value, &end);
            if (end != kv->value && isfinite(d) && d >= 0)
                return d;
        }
    }
    return spec->termination_delay_s;
}

static int find_job(const jg_group_spec_t *spec, const char *name)
{
    for (size_t i = 0; i < spec->n_jobs; i++)
        if (strcmp(spec->jobs[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- C -> Lua ----------------------------------------------------------------- */

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, bool v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

static void push_job(lua_State *L, const jg_policy_group_t *g, size_t i)
{
    const jg_group_spec_t *spec = g->spec;
    const jg_job_spec_t *j = &spec->jobs[i];
    const jg_policy_job_state_t *js = g->jobs ? &g->jobs[i] : NULL;
    lua_createtable(L, 0, 24);
    set_str(L, "name", j->name);
    set_int(L, "num_nodes", j->num_nodes);
    if (j->cpus.set) {
        set_num(L, "cpus", j->cpus.value);
        set_bool(L, "cpus_at_least", j->cpus.at_least);
    }
    if (j->memory_gb.set) {
        set_num(L, "memory", j->memory_gb.value);
        set_bool(L, "memory_at_least", j->memory_gb.at_least);
    }
    if (j->accel.name) {
        lua_createtable(L, 0, 1);
        set_int(L, j->accel.name, j->accel.count);
        lua_setfield(L, -2, "accelerators");
    }
    set_str(L, "infra", j->infra);
    if (j->recovery.set) {
        lua_createtable(L, 0, 3);
        set_int(L, "max_restarts_on_errors", j->recovery.max_restarts_on_errors);
        lua_createtable(L, (int)j->recovery.n_recover_on_exit_codes, 0);
        for (size_t k = 0; k < j->recovery.n_recover_on_exit_codes; k++) {
            lua_pushinteger(L, j->recovery.recover_on_exit_codes[k]);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        lua_setfield(L, -2, "recover_on_exit_codes");
        set_str(L, "strategy", j->recovery.strategy);
        lua_setfield(L, -2, "job_recovery");
    }
    lua_createtable(L, 0, (int)j->n_envs);
    for (size_t k = 0; k < j->n_envs; k++)
        if (j->envs[k].key)
            set_str(L, j->envs[k].key, j->envs[k].value ? j->envs[k].value : "");
    lua_setfield(L, -2, "envs");
    set_str(L, "setup", j->setup);
    set_str(L, "run", j->run);
    set_str(L, "workdir", j->workdir);
    set_bool(L, "primary", job_is_primary(spec, i));
    set_num(L, "termination_delay", job_termination_delay(spec, i));

    set_str(L, "state", jg_state_name(js ? js->state : JG_PENDING));
    set_int(L, "attempt", js ? js->attempt : 0);
    set_int(L, "restarts", js ? js->restarts : 0);
    set_int(L, "recoveries", js ? js->recoveries : 0);
    if (js && js->exit_code >= 0)
        set_int(L, "exit_code", js->exit_code);
    if (js)
        set_str(L, "placed_infra", js->infra);
}

/* Pushes the group table; its jobs array is the `job` argument's source. */
static void push_group(lua_State *L, const jg_policy_group_t *g)
{
    const jg_group_spec_t *spec = g->spec;
    lua_createtable(L, 0, 14);
    set_int(L, "id", g->id);
    set_str(L, "name", spec->name);
    set_str(L, "user", g->user);
    set_str(L, "state", jg_state_name(g->state));
    set_num(L, "submitted", (double)g->submitted_us / 1e6);
    set_str(L, "placement", "SAME_INFRA");
    set_str(L, "execution", "parallel");
    set_str(L, "policy", spec->policy);
    set_str(L, "source", spec->source);
    set_num(L, "termination_delay", spec->termination_delay_s);
    lua_createtable(L, (int)spec->n_primary_tasks, 0);
    for (size_t k = 0; k < spec->n_primary_tasks; k++) {
        lua_pushstring(L, spec->primary_tasks[k]);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "primary_tasks");
    lua_createtable(L, (int)spec->n_jobs, 0);
    for (size_t i = 0; i < spec->n_jobs; i++) {
        push_job(L, g, i);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "jobs");
}

static void push_event(lua_State *L, const jg_policy_exit_t *ev, const jg_policy_job_state_t *js)
{
    lua_createtable(L, 0, 7);
    set_str(L, "reason", jg_policy_exit_reason_name(ev->reason));
    if (ev->exit_code >= 0)
        set_int(L, "exit_code", ev->exit_code);
    set_int(L, "rank", ev->rank);
    set_int(L, "attempt", js->attempt);
    set_int(L, "restarts", js->restarts);
    set_int(L, "recoveries", js->recoveries);
    set_str(L, "message", ev->message);
}

int jg_policy_push_args(lua_State *L, const jg_policy_call_t *c)
{
    const jg_policy_group_t *g = c->group;
    push_group(L, g);
    switch (c->hook) {
    case JG_HOOK_ON_SUBMIT:
        lua_createtable(L, 0, 3);
        if (c->user) {
            set_str(L, "name", c->user->name);
            set_int(L, "uid", (lua_Integer)c->user->uid);
            set_bool(L, "admin", c->user->admin);
        }
        return 2;
    case JG_HOOK_PLACE:
        lua_createtable(L, (int)c->n_infras, 0);
        for (size_t i = 0; i < c->n_infras; i++) {
            lua_createtable(L, 0, 3);
            set_str(L, "name", c->infras[i].name);
            set_bool(L, "fits", c->infras[i].fits);
            set_str(L, "reason", c->infras[i].reason);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return 2;
    case JG_HOOK_PRIORITY:
        lua_createtable(L, 0, (int)c->n_usage);
        for (size_t i = 0; i < c->n_usage; i++) {
            if (!c->usage[i].user)
                continue;
            lua_createtable(L, 0, 3);
            set_int(L, "groups", c->usage[i].groups);
            set_int(L, "nodes", c->usage[i].nodes);
            set_num(L, "cpus", c->usage[i].cpus);
            lua_setfield(L, -2, c->usage[i].user);
        }
        return 2;
    case JG_HOOK_ON_NODE_EXIT:
    case JG_HOOK_ON_JOB_END:
        lua_getfield(L, -1, "jobs");
        lua_rawgeti(L, -1, (lua_Integer)c->job + 1);
        lua_remove(L, -2);
        if (c->hook == JG_HOOK_ON_JOB_END)
            return 2;
        push_event(L, c->ev, &g->jobs[c->job]);
        return 3;
    case JG_HOOK_COUNT:
        break;
    }
    return luaL_error(L, "unknown hook");
}

/* ---- Lua -> C ----------------------------------------------------------------- */

static void copy_lua_string(lua_State *L, int idx, char *dst, size_t size)
{
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    jg_policy_copy_text(dst, size, s, n);
}

/* A finite number in [0, MAX_DELAY_S] at idx, else an error naming what. */
static double check_delay(lua_State *L, int idx, const char *label, const char *what)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s: %s must be a number of seconds, not a %s", label, what,
                   luaL_typename(L, idx));
    double d = lua_tonumber(L, idx);
    if (!isfinite(d) || d < 0 || d > MAX_DELAY_S)
        luaL_error(L, "%s: %s must be between 0 and %d seconds (got %f)", label, what,
                   (int)MAX_DELAY_S, d);
    return d;
}

/* Every key of the table at idx must be a string among allowed. */
static void check_keys(lua_State *L, int idx, const char *const *allowed, const char *label,
                       const char *what)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        bool ok = false;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (size_t i = 0; allowed[i] && !ok; i++)
                ok = strcmp(k, allowed[i]) == 0;
            if (!ok)
                luaL_error(L, "%s: %s has an unknown key '%s'", label, what, k);
        }
        if (!ok)
            luaL_error(L, "%s: %s has a %s key; keys are names", label, what,
                       luaL_typename(L, -1));
    }
}

/* Raw t[key] pushed; returns its type. */
static int raw_field(lua_State *L, int idx, const char *key)
{
    idx = lua_absindex(L, idx);
    lua_pushstring(L, key);
    return lua_rawget(L, idx);
}

static void check_count(lua_State *L, int n, int max, const char *label, const char *hook)
{
    if (n > max)
        luaL_error(L, "%s: %s returned %d values; it returns at most %d", label, hook, n, max);
}

/* nil|false, "reason" at first: a rejection.  Errors without a string reason. */
static void read_rejection(lua_State *L, int first, int n, const char *label, const char *hook,
                           char *reason, size_t size)
{
    if (n < 2 || lua_type(L, first + 1) != LUA_TSTRING)
        luaL_error(L, "%s: %s rejected the group without a reason (return nil, \"why\")",
                   label, hook);
    copy_lua_string(L, first + 1, reason, size);
}

/* An optional note after an accepting first value: nil or a string. */
static void read_note(lua_State *L, int first, int n, const char *label, const char *hook,
                      char *reason, size_t size)
{
    if (n < 2 || lua_isnil(L, first + 1))
        return;
    if (lua_type(L, first + 1) != LUA_TSTRING)
        luaL_error(L, "%s: %s returned a %s as its second value; expected a reason string",
                   label, hook, luaL_typename(L, first + 1));
    copy_lua_string(L, first + 1, reason, size);
}

static void read_submit(lua_State *L, jg_policy_call_t *c, int first, int n)
{
    const char *label = c->label;
    jg_policy_admission_t *a = &c->adm;
    memset(a, 0, sizeof *a);
    if (n == 0)
        luaL_error(L, "%s: on_submit returned nothing; return true to accept, "
                      "nil and a reason to reject", label);
    check_count(L, n, 2, label, "on_submit");
    int t = lua_type(L, first);
    if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, first))) {
        read_rejection(L, first, n, label, "on_submit", a->reason, sizeof a->reason);
        return;
    }
    if (t == LUA_TBOOLEAN) {
        a->accepted = true;
    } else if (t == LUA_TTABLE) {
        a->accepted = true;
        int pt = raw_field(L, first, "policy");
        if (pt == LUA_TSTRING) {
            size_t len;
            const char *name = lua_tolstring(L, -1, &len);
            if (!jg_policy_valid_name(name, len))
                luaL_error(L, "%s: on_submit set policy to '%s', which is not a policy name",
                           label, name);
            const char *was = c->group->spec->policy;
            if (!was || strcmp(was, name) != 0)
                jg_policy_copy_text(a->policy, sizeof a->policy, name, len);
        } else if (pt != LUA_TNIL) {
            luaL_error(L, "%s: on_submit set policy to a %s; expected a policy name", label,
                       luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    } else {
        luaL_error(L, "%s: on_submit must return true, the group table, or nil and a reason; "
                      "got a %s", label, luaL_typename(L, first));
    }
    read_note(L, first, n, label, "on_submit", a->reason, sizeof a->reason);
}

static void read_place(lua_State *L, jg_policy_call_t *c, int first, int n)
{
    const char *label = c->label;
    const jg_group_spec_t *spec = c->group->spec;
    jg_policy_placement_t *pl = &c->pl;
    pl->accepted = false;
    pl->reason[0] = '\0';
    if (n == 0)
        luaL_error(L, "%s: place returned nothing; return {[job] = infra} or nil and a reason",
                   label);
    check_count(L, n, 2, label, "place");
    int t = lua_type(L, first);
    if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, first))) {
        read_rejection(L, first, n, label, "place", pl->reason, sizeof pl->reason);
        return;
    }
    if (t != LUA_TTABLE)
        luaL_error(L, "%s: place must return a table {[job name] = infra name} or nil and a "
                      "reason; got a %s", label, luaL_typename(L, first));
    lua_pushnil(L);
    while (lua_next(L, first)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: place returned a %s key; keys are job names", label,
                       luaL_typename(L, -1));
        if (find_job(spec, lua_tostring(L, -1)) < 0)
            luaL_error(L, "%s: place returned an infra for '%s', which is not a job of "
                          "group %s", label, lua_tostring(L, -1), spec->name);
    }
    for (size_t i = 0; i < spec->n_jobs; i++) {
        const char *job = spec->jobs[i].name;
        int vt = raw_field(L, first, job);
        if (vt == LUA_TNIL)
            luaL_error(L, "%s: place left job '%s' without an infra", label, job);
        if (vt != LUA_TSTRING)
            luaL_error(L, "%s: place gave job '%s' a %s; expected an infra name", label, job,
                       luaL_typename(L, -1));
        const char *infra = lua_tostring(L, -1);
        int found = -1;
        for (size_t k = 0; k < c->n_infras && found < 0; k++)
            if (c->infras[k].name && strcmp(c->infras[k].name, infra) == 0)
                found = (int)k;
        if (found < 0) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (size_t k = 0; k < c->n_infras; k++) {
                if (k)
                    luaL_addstring(&b, ", ");
                luaL_addstring(&b, c->infras[k].name ? c->infras[k].name : "?");
            }
            luaL_pushresult(&b);
            luaL_error(L, "%s: place put job '%s' on '%s', which is not an offered infra "
                          "(offered: %s)", label, job, infra, lua_tostring(L, -1));
        }
        pl->job_infra[i] = found;
        lua_pop(L, 1);
    }
    pl->accepted = true;
    read_note(L, first, n, label, "place", pl->reason, sizeof pl->reason);
}

static void read_priority(lua_State *L, jg_policy_call_t *c, int first, int n)
{
    const char *label = c->label;
    c->prio = 0;
    if (n == 0)
        luaL_error(L, "%s: priority returned nothing; return a number (smaller first)", label);
    check_count(L, n, 1, label, "priority");
    if (lua_type(L, first) != LUA_TNUMBER)
        luaL_error(L, "%s: priority must return a number (smaller is admitted first), not a %s",
                   label, luaL_typename(L, first));
    double v = lua_tonumber(L, first);
    if (!isfinite(v))
        luaL_error(L, "%s: priority returned %f; it must be a finite number", label, v);
    c->prio = v;
}

static const char *const decision_keys[] = { "action", "delay", "reason", "count", NULL };

static jg_policy_action_t check_action(lua_State *L, int idx, const char *label)
{
    jg_policy_action_t a = JG_ACTION_CONTINUE;
    if (jg_policy_action_parse(lua_tostring(L, idx), &a) < 0)
        luaL_error(L, "%s: on_node_exit returned the unknown action '%s' (actions are "
                      "continue, restart_job, restart_group, cancel_group, fail_group)",
                   label, lua_tostring(L, idx));
    return a;
}

static void read_node_exit(lua_State *L, jg_policy_call_t *c, int first, int n)
{
    const char *label = c->label;
    jg_policy_decision_t *d = &c->dec;
    memset(d, 0, sizeof *d);
    if (n == 0)
        luaL_error(L, "%s: on_node_exit returned nothing; return an action such as "
                      "\"continue\"", label);
    check_count(L, n, 1, label, "on_node_exit");
    int t = lua_type(L, first);
    bool count_given = false;
    if (t == LUA_TSTRING) {
        d->action = check_action(L, first, label);
    } else if (t == LUA_TTABLE) {
        check_keys(L, first, decision_keys, label, "on_node_exit's decision");
        if (raw_field(L, first, "action") != LUA_TSTRING)
            luaL_error(L, "%s: on_node_exit's decision needs action = \"...\" (a string, "
                          "not a %s)", label, luaL_typename(L, -1));
        d->action = check_action(L, -1, label);
        lua_pop(L, 1);
        if (raw_field(L, first, "delay") != LUA_TNIL)
            d->delay_s = check_delay(L, -1, label, "on_node_exit's delay");
        lua_pop(L, 1);
        int rt = raw_field(L, first, "reason");
        if (rt == LUA_TSTRING)
            copy_lua_string(L, -1, d->reason, sizeof d->reason);
        else if (rt != LUA_TNIL)
            luaL_error(L, "%s: on_node_exit's reason must be a string, not a %s", label,
                       luaL_typename(L, -1));
        lua_pop(L, 1);
        int ct = raw_field(L, first, "count");
        if (ct != LUA_TNIL) {
            const char *s = ct == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (strcmp(s, "restarts") == 0)
                d->count = JG_POLICY_COUNT_RESTARTS;
            else if (strcmp(s, "recoveries") == 0)
                d->count = JG_POLICY_COUNT_RECOVERIES;
            else if (strcmp(s, "none") == 0)
                d->count = JG_POLICY_COUNT_NONE;
            else
                luaL_error(L, "%s: on_node_exit's count must be \"restarts\", \"recoveries\" "
                              "or \"none\"", label);
            count_given = true;
        }
        lua_pop(L, 1);
    } else {
        luaL_error(L, "%s: on_node_exit must return an action name or a table {action = ...}, "
                      "not a %s", label, luaL_typename(L, first));
    }
    bool restart = d->action == JG_ACTION_RESTART_JOB || d->action == JG_ACTION_RESTART_GROUP;
    if (!restart)
        d->count = JG_POLICY_COUNT_NONE;
    else if (!count_given)
        d->count = c->ev->reason == JG_EXIT_EXITED || c->ev->reason == JG_EXIT_SETUP_FAILED
                       ? JG_POLICY_COUNT_RESTARTS
                       : JG_POLICY_COUNT_RECOVERIES;
}

static const char *const job_end_keys[] = { "cancel", "delay", "reason", NULL };
static const char *const cancel_entry_keys[] = { "job", "delay", NULL };

static void read_job_end(lua_State *L, jg_policy_call_t *c, int first, int n)
{
    const char *label = c->label;
    const jg_group_spec_t *spec = c->group->spec;
    jg_policy_job_end_t *je = &c->je;
    je->n_cancel = 0;
    je->reason[0] = '\0';
    check_count(L, n, 1, label, "on_job_end");
    if (n == 0 || lua_isnil(L, first))
        return;
    if (lua_type(L, first) != LUA_TTABLE)
        luaL_error(L, "%s: on_job_end must return nil or a table {cancel = {...}}, not a %s",
                   label, luaL_typename(L, first));
    check_keys(L, first, job_end_keys, label, "on_job_end's result");
    double delay = 0;
    if (raw_field(L, first, "delay") != LUA_TNIL)
        delay = check_delay(L, -1, label, "on_job_end's delay");
    lua_pop(L, 1);
    int rt = raw_field(L, first, "reason");
    if (rt == LUA_TSTRING)
        copy_lua_string(L, -1, je->reason, sizeof je->reason);
    else if (rt != LUA_TNIL)
        luaL_error(L, "%s: on_job_end's reason must be a string, not a %s", label,
                   luaL_typename(L, -1));
    lua_pop(L, 1);
    int ct = raw_field(L, first, "cancel");
    if (ct == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (ct != LUA_TTABLE)
        luaL_error(L, "%s: on_job_end's cancel must be a list of job names, not a %s", label,
                   luaL_typename(L, -1));
    int list = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, list)) {
        if (!lua_isinteger(L, -2))
            luaL_error(L, "%s: on_job_end's cancel must be a list (it has a %s key)", label,
                       luaL_typename(L, -2));
        int entry = lua_gettop(L);
        double d = delay;
        const char *job = NULL;
        if (lua_type(L, entry) == LUA_TSTRING) {
            job = lua_tostring(L, entry);
        } else if (lua_type(L, entry) == LUA_TTABLE) {
            check_keys(L, entry, cancel_entry_keys, label, "an on_job_end cancel entry");
            if (raw_field(L, entry, "job") != LUA_TSTRING)
                luaL_error(L, "%s: an on_job_end cancel entry needs job = \"name\"", label);
            job = lua_tostring(L, -1);          /* stays on the stack while used */
            if (raw_field(L, entry, "delay") != LUA_TNIL)
                d = check_delay(L, -1, label, "an on_job_end cancel delay");
            lua_pop(L, 1);
        } else {
            luaL_error(L, "%s: on_job_end's cancel entries are job names or {job=, delay=}, "
                          "not a %s", label, luaL_typename(L, entry));
        }
        int idx = find_job(spec, job);
        if (idx < 0)
            luaL_error(L, "%s: on_job_end cancels '%s', which is not a job of group %s", label,
                       job, spec->name);
        for (size_t k = 0; k < je->n_cancel; k++)
            if (je->cancel[k].job == idx)
                luaL_error(L, "%s: on_job_end cancels job '%s' twice", label, job);
        je->cancel[je->n_cancel].job = idx;
        je->cancel[je->n_cancel].delay_s = d;
        je->n_cancel++;
        lua_settop(L, entry - 1);               /* keep the key for lua_next */
    }
    lua_pop(L, 1);
}

void jg_policy_read_results(lua_State *L, jg_policy_call_t *c, int first, int n)
{
    switch (c->hook) {
    case JG_HOOK_ON_SUBMIT:
        read_submit(L, c, first, n);
        break;
    case JG_HOOK_PLACE:
        read_place(L, c, first, n);
        break;
    case JG_HOOK_PRIORITY:
        read_priority(L, c, first, n);
        break;
    case JG_HOOK_ON_NODE_EXIT:
        read_node_exit(L, c, first, n);
        break;
    case JG_HOOK_ON_JOB_END:
        read_job_end(L, c, first, n);
        break;
    case JG_HOOK_COUNT:
        break;
    }
}

/* ---- the last resort ---------------------------------------------------------- */

/* default.lua's primary/auxiliary rule, for when Lua cannot run at all. */
static void builtin_job_end(jg_policy_call_t *c)
{
    jg_policy_job_end_t *je = &c->je;
    je->n_cancel = 0;
    je->reason[0] = '\0';
    const jg_policy_group_t *g = c->group;
    if (!g || !g->spec || !g->jobs || !je->cancel)
        return;
    const jg_group_spec_t *spec = g->spec;
    bool all_ended = true, all_succeeded = true;
    for (size_t i = 0; i < spec->n_jobs; i++) {
        if (!job_is_primary(spec, i))
            continue;
        all_ended = all_ended && jg_state_is_terminal(g->jobs[i].state);
        all_succeeded = all_succeeded && g->jobs[i].state == JG_SUCCEEDED;
    }
    if (!all_ended)
        return;
    for (size_t i = 0; i < spec->n_jobs; i++) {
        if (job_is_primary(spec, i) || jg_state_is_terminal(g->jobs[i].state))
            continue;
        je->cancel[je->n_cancel].job = (int)i;
        je->cancel[je->n_cancel].delay_s = all_succeeded ? job_termination_delay(spec, i) : 0;
        je->n_cancel++;
    }
    if (je->n_cancel)
        snprintf(je->reason, sizeof je->reason, "every primary job has ended%s",
                 all_succeeded ? "" : " and one failed");
}

void jg_policy_builtin(jg_policy_call_t *c)
{
    switch (c->hook) {
    case JG_HOOK_ON_SUBMIT:
        memset(&c->adm, 0, sizeof c->adm);
        c->adm.accepted = true;
        break;
    case JG_HOOK_PLACE:
        c->pl.accepted = false;
        snprintf(c->pl.reason, sizeof c->pl.reason,
                 "cannot place the group: its placement policy failed");
        break;
    case JG_HOOK_PRIORITY:
        c->prio = c->group ? (double)c->group->submitted_us / 1e6 : 0;
        break;
    case JG_HOOK_ON_NODE_EXIT:
        memset(&c->dec, 0, sizeof c->dec);
        c->dec.action = JG_ACTION_CONTINUE;
        snprintf(c->dec.reason, sizeof c->dec.reason, "built-in decision: the policy failed");
        break;
    case JG_HOOK_ON_JOB_END:
        builtin_job_end(c);
        break;
    case JG_HOOK_COUNT:
        break;
    }
}
