/* handlers.c - one function per request op, and the table that names them.
 *
 * A handler unpacks its request strictly (unknown keys are refused), checks
 * that the caller may act, and answers: it reads the store for queries and
 * calls sched for changes, and never blocks.  The caller is who SO_PEERCRED
 * said (server.c); the request never says who it is.  Everyone may list the
 * queue; details, logs and cancel belong to the group's owner and the admins;
 * stopping the daemon and reloading policies to root and the daemon's owner
 * (the table's JGD_OP_OWNER_ONLY).  The JSON shapes are in views.c.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_int.h"
#include "jg_config.h"
#include "jgsched/policy.h"

#define RECENT_WINDOW_US (3600LL * 1000000LL)
#define LOG_CHUNK_DEFAULT 65536
#define LOG_CHUNK_MAX (512 * 1024)
#define QUEUE_PAGE_GROUPS 1000          /* groups per queue page at most */
#define QUEUE_PAGE_BYTES (768 * 1024)   /* JSON per queue page at most (but one group at least) */
#define QUEUE_FILTER_MAX 256            /* bytes of a queue request's user or name */
#define SUBMIT_MAX_COUNT 100            /* copies per submit request: a fair turn of the loop */

/* The group's owner, root, and the configured admins (user list or group). */
static bool may_act_on(const jgd_conn_t *c, const jg_group_row_t *g)
{
    return c->uid == g->uid || jg_config_is_admin(c->daemon->config, c->user, c->uid, c->gid);
}

/* Loads the group and checks that the caller may act on it. */
static json_t *authorize(jgd_conn_t *c, int64_t id, jg_group_row_t *row)
{
    jg_error_t err;
    if (jg_store_get_group(c->daemon->store, id, row, &err) < 0)
        return jg_proto_error("%s", err.text);
    if (!may_act_on(c, row)) {
        json_t *e = jg_proto_error("permission denied: group %lld belongs to %s", (long long)id,
                                   row->user);
        jg_group_row_clear(row);
        return e;
    }
    return NULL;
}

/* An optional request field that may be absent, null or a string. */
static int nullable_string(json_t *v, const char *name, const char **out)
{
    (void)name;
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static json_t *op_ping(jgd_conn_t *c, json_t *req)
{
    if (json_unpack(req, "{s:s !}", "op", &(const char *){0}) < 0)
        return jg_proto_error("ping takes no arguments");
    return json_pack("{s:b, s:s, s:i, s:s, s:s}", "ok", 1, "version", JG_VERSION, "pid",
                     (int)getpid(), "home", c->daemon->paths.home, "socket",
                     c->daemon->paths.socket);
}

/* The state and reason of a group just submitted (FAILED_NO_RESOURCE when it
 * can never fit), and the warning of its backend, if any, added to warnings. */
static void submitted_state(jgd_conn_t *c, int64_t id, json_t *warnings, const char **state,
                            char **reason)
{
    jg_group_row_t row;
    jg_error_t err;
    *state = "PENDING";
    *reason = NULL;
    if (jg_store_get_group(c->daemon->store, id, &row, &err) < 0)
        return;
    const char *w = jg_sched_infra_warning(c->daemon->sched, row.infra);
    bool known = false;
    size_t i;
    json_t *v;
    json_array_foreach(warnings, i, v)
        known = known || (w && strcmp(json_string_value(v), w) == 0);
    if (w && !known)    /* once for all the copies of a group */
        json_array_append_new(warnings, json_string(w));
    *state = jg_state_name(row.state);
    *reason = row.reason;
    row.reason = NULL;
    jg_group_row_clear(&row);
}

/* Submits `count` copies of spec (stolen) named NAME-first .. NAME-(first+count-1),
 * each stored whole or not at all, in order; stops at the first one refused.
 * Returns the reply: {"ok":true,"groups":[{id,name,state,reason}...]} or, when
 * one was refused, ok false with its error and the groups accepted before it. */
static json_t *submit_copies(jgd_conn_t *c, jg_group_spec_t *spec, const char *policy_text,
                             size_t policy_len, json_int_t first, json_int_t count,
                             json_t *warnings)
{
    char *base = jg_xstrdup(spec->name);
    char *spec_json = jg_spec_to_json(spec);
    json_t *groups = json_array();
    json_t *failure = NULL;
    jg_error_t err;
    /* Every name is checked before the first group is stored: a name made
     * too long by its suffix refuses the request whole. */
    char *last = jg_xasprintf("%s-%lld", base, (long long)(first + count - 1));
    if (!jg_spec_is_dns_label(last))
        failure = jg_proto_error("--count: the group name %s (the last of %s-%lld .. %s) is not "
                                 "a DNS label (at most 63 of a-z, 0-9 and '-'); choose a "
                                 "shorter name with -n", last, base, (long long)first, last);
    free(last);
    /* Each copy is a submit's work: the connection's turn is charged so. */
    c->extra_cost = (int)count - 1;
    for (json_int_t i = 0; i < count && !failure; i++) {
        jg_group_spec_t *copy = spec;
        if (i > 0 && !(copy = jg_spec_from_json(spec_json, &err))) {
            failure = jg_proto_failure("%s", err.text);
            break;
        }
        spec = NULL;
        char *name = jg_xasprintf("%s-%lld", base, (long long)(first + i));
        int64_t id;
        int rc = jg_spec_set_name(copy, name, &err);
        if (rc < 0)
            jg_spec_free(copy);
        else
            rc = jg_sched_submit_own_policy(c->daemon->sched, copy, policy_text, policy_len,
                                            c->uid, c->gid, c->user, &id, &err);
        if (rc < 0) {
            failure = rc == JG_SCHED_STORE_FAILED ? jg_proto_failure("%s", err.text)
                                                  : jg_proto_error("%s", err.text);
        } else {
            const char *state;
            char *reason;
            submitted_state(c, id, warnings, &state, &reason);
            json_array_append_new(groups, json_pack("{s:I, s:s, s:s, s:s}", "id",
                                                    (json_int_t)id, "name", name, "state",
                                                    state, "reason", reason ? reason : ""));
            free(reason);
        }
        free(name);
    }
    jg_spec_free(spec);
    free(spec_json);
    free(base);
    json_t *reply = failure ? failure : jg_proto_ok();
    json_object_set_new(reply, "groups", groups);
    json_object_set(reply, "warnings", warnings);
    return reply;
}

static json_t *op_submit(jgd_conn_t *c, json_t *req)
{
    const char *file = NULL, *yaml = NULL, *name = NULL, *infra = NULL, *policy = NULL;
    const char *policy_text = NULL;
    json_t *name_j = NULL, *infra_j = NULL, *policy_j = NULL, *policy_text_j = NULL;
    json_t *count_j = NULL;
    json_int_t first_index = 0;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s?s, s:s, s?o, s?o, s?o, s?o, s?o, s?I !}", "op",
                       &(const char *){0}, "file", &file, "yaml", &yaml, "name", &name_j, "infra",
                       &infra_j, "policy", &policy_j, "policy_text", &policy_text_j, "count",
                       &count_j, "first_index", &first_index) < 0)
        return jg_proto_error("malformed submit request: %s", jerr.text);
    if (nullable_string(name_j, "name", &name) < 0 || nullable_string(infra_j, "infra", &infra) < 0 ||
        nullable_string(policy_j, "policy", &policy) < 0 ||
        nullable_string(policy_text_j, "policy_text", &policy_text) < 0)
        return jg_proto_error("malformed submit request: name, infra, policy and policy_text are "
                              "strings or null");
    json_int_t count = count_j ? (json_is_integer(count_j) ? json_integer_value(count_j) : -1)
                               : 0;
    if (count_j && (count < 1 || count > SUBMIT_MAX_COUNT))
        return jg_proto_error("malformed submit request: count is an integer from 1 to %d (the "
                              "CLI sends a larger --count in several requests)",
                              SUBMIT_MAX_COUNT);
    if (first_index < 0 || first_index > 1000000000)
        return jg_proto_error("malformed submit request: first_index is from 0 to 1000000000");
    /* The daemon never opens a policy file a request names (it may run as
     * root): a user's own policy arrives as text, under a name. */
    size_t policy_len = policy_text ? json_string_length(policy_text_j) : 0;
    if (policy_text && (!policy || !jg_policy_valid_name(policy, strlen(policy))))
        return jg_proto_error("malformed submit request: policy_text needs a policy name in "
                              "policy (letters, digits, '-' and '_')");
    if (policy_text && memchr(policy_text, '\0', policy_len))
        return jg_proto_error("the policy text holds a NUL byte; a policy is Lua source text");
    if (policy_len > JG_POLICY_MAX_TEXT)
        return jg_proto_error("the policy text is larger than a policy may be (%u KiB)",
                              JG_POLICY_MAX_TEXT >> 10);
    if (policy && !policy_text && jg_policy_is_path(policy))
        return jg_proto_error("policy '%s' is a file path: jgschedd never opens a file a request "
                              "names; jgsched submit --policy FILE reads the file as you and "
                              "sends its text", policy);
    /* The CLI checked the default bounds; the daemon never trusts that and
     * checks its own (config.yaml spec_limits) with the same parser, on the
     * user's behalf: `~` is the user's home, and no path is looked at. */
    char home[4096] = "";
    struct passwd pw, *found = NULL;
    char pwbuf[4096];
    if (getpwuid_r(c->uid, &pw, pwbuf, sizeof pwbuf, &found) == 0 && found && found->pw_dir)
        jg_strlcpy(home, found->pw_dir, sizeof home);
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse_for(yaml, strlen(yaml), file,
                                              &c->daemon->config->spec_limits,
                                              home[0] ? home : NULL, &errs);
    if (!spec) {
        json_t *list = json_array();
        for (size_t i = 0; i < errs.count; i++)
            json_array_append_new(list, json_string(errs.messages[i]));
        json_t *r = json_pack("{s:b, s:s+, s:o}", "ok", 0, "error", file ? file : "<input>",
                              errs.count == 1 ? " has 1 error" : " has errors", "errors", list);
        jg_spec_errors_free(&errs);
        return r;
    }
    json_t *warnings = json_array();
    for (size_t i = 0; i < errs.n_warnings; i++)
        json_array_append_new(warnings, json_string(errs.warnings[i]));
    jg_spec_errors_free(&errs);
    jg_error_t err;
    if ((name && jg_spec_set_name(spec, name, &err) < 0) ||
        (infra && jg_spec_set_infra(spec, infra, &err) < 0)) {
        jg_spec_free(spec);
        json_decref(warnings);
        return jg_proto_error("%s", err.text);
    }
    if (policy) {
        free(spec->policy);
        spec->policy = jg_xstrdup(policy);
    }
    if (count_j) {
        json_t *r = submit_copies(c, spec, policy_text, policy_len, first_index, count, warnings);
        json_decref(warnings);
        return r;
    }
    char *group_name = jg_xstrdup(spec->name);
    int64_t id;
    int submitted = jg_sched_submit_own_policy(c->daemon->sched, spec, policy_text, policy_len,
                                               c->uid, c->gid, c->user, &id, &err);
    if (submitted < 0) {
        free(group_name);
        json_decref(warnings);
        /* A refusal blames the group; a store failure is ours, and the group
         * may be submitted again. */
        if (submitted == JG_SCHED_STORE_FAILED)
            return jg_proto_failure("%s", err.text);
        return jg_proto_error("%s", err.text);
    }
    const char *state;
    char *reason;
    submitted_state(c, id, warnings, &state, &reason);
    json_t *r = json_pack("{s:b, s:I, s:s, s:s, s:s, s:o}", "ok", 1, "id", (json_int_t)id, "name",
                          group_name, "state", state, "reason", reason ? reason : "", "warnings",
                          warnings);
    free(reason);
    free(group_name);
    return r;
}

/* The state names of a queue request's "states" (an array of names, any
 * case) as a mask of 1u << state; -1 after filling why. */
static int parse_states(json_t *list, uint32_t *mask, char *why, size_t why_len)
{
    *mask = 0;
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list)) {
        snprintf(why, why_len, "states is an array of state names");
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        jg_state_t st;
        if (!json_is_string(v) || jg_state_parse(json_string_value(v), &st) < 0) {
            snprintf(why, why_len, "states: '%.64s' is not a state (PENDING, RUNNING, "
                     "SUCCEEDED, FAILED, CANCELLED, ...)",
                     json_is_string(v) ? json_string_value(v) : "?");
            return -1;
        }
        *mask |= 1u << st;
    }
    return 0;
}

/* One page of the queue: the groups after the cursor `after_id`, lowest ids
 * first, at most `limit` of them and no more than QUEUE_PAGE_BYTES of JSON, so
 * that a reply stays far below the protocol's 1 MiB line whatever the store
 * holds; `more` tells the client to ask again from `next_after_id`.  A page
 * reads its own rows from the store's indexes (never every group), and the
 * first page of a windowed listing says how many ended groups it leaves out. */
static json_t *op_queue(jgd_conn_t *c, json_t *req, jg_jsonw_t *text)
{
    int all = 0;
    const char *user = NULL, *name = NULL;
    json_t *user_j = NULL, *name_j = NULL, *states_j = NULL;
    json_int_t after_id = 0, limit = QUEUE_PAGE_GROUPS;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s?b, s?o, s?o, s?o, s?I, s?I !}", "op",
                       &(const char *){0}, "all", &all, "user", &user_j, "name", &name_j,
                       "states", &states_j, "after_id", &after_id, "limit", &limit) < 0)
        return jg_proto_error("malformed queue request: %s", jerr.text);
    if (nullable_string(user_j, "user", &user) < 0 || nullable_string(name_j, "name", &name) < 0)
        return jg_proto_error("malformed queue request: user and name are strings or null");
    if (after_id < 0 || limit <= 0)
        return jg_proto_error("malformed queue request: after_id is >= 0 and limit > 0");
    if ((user && strlen(user) > QUEUE_FILTER_MAX) || (name && strlen(name) > QUEUE_FILTER_MAX))
        return jg_proto_error("malformed queue request: user and name are at most %d bytes",
                              QUEUE_FILTER_MAX);
    char why[160];
    uint32_t states;
    if (parse_states(states_j, &states, why, sizeof why) < 0)
        return jg_proto_error("malformed queue request: %s", why);
    if (limit > QUEUE_PAGE_GROUPS)
        limit = QUEUE_PAGE_GROUPS;
    /* One row past the page says whether another page follows. */
    jg_group_filter_t filter = {.user = user, .name = name, .states = states, .summary = true,
                                .after_id = after_id, .limit = (size_t)limit + 1};
    bool windowed = !all && !states;
    if (windowed)
        filter.ended_after_us = jg_now_wall_us() - RECENT_WINDOW_US;
    jg_group_row_t *rows = NULL;
    size_t n = 0;
    jg_error_t err;
    int64_t hidden = 0;
    if ((windowed && after_id == 0 &&
         jg_store_count_ended(c->daemon->store, user, name, filter.ended_after_us, &hidden,
                              &err) < 0) ||
        jg_store_list_groups(c->daemon->store, &filter, &rows, &n, &err) < 0)
        return jg_proto_failure("%s", err.text);
    bool more = n > (size_t)limit;
    size_t listed = more ? (size_t)limit : n;
    /* One query for every listed group's jobs, merged by group id. */
    jg_job_row_t *jobs = NULL;
    size_t n_jobs = 0;
    int64_t *ids = jg_xcalloc(listed ? listed : 1, sizeof *ids);
    for (size_t i = 0; i < listed; i++)
        ids[i] = rows[i].id;
    int rc = listed ? jg_store_list_jobs_of(c->daemon->store, ids, listed, &jobs, &n_jobs, &err)
                    : 0;
    free(ids);
    if (rc < 0) {
        jg_group_rows_free(rows, n);
        return jg_proto_failure("%s", err.text);
    }
    /* The page is written as text, straight from the rows: a tree of JSON
     * values per group cost more than the rest of the listing. */
    int64_t last_id;
    jg_jsonw_lit(text, "{\"ok\":true,\"groups\":");
    jgd_view_queue_page(text, rows, listed, jobs, n_jobs, QUEUE_PAGE_BYTES, after_id, &more,
                        &last_id);
    jg_job_rows_free(jobs, n_jobs);
    jg_group_rows_free(rows, n);
    jg_jsonw_lit(text, ",\"more\":");
    jg_jsonw_bool(text, more);
    jg_jsonw_lit(text, ",\"next_after_id\":");
    jg_jsonw_int(text, last_id);
    if (windowed && after_id == 0) {
        jg_jsonw_lit(text, ",\"hidden\":");
        jg_jsonw_int(text, hidden);
    }
    jg_jsonw_lit(text, "}");
    return NULL;
}

static json_t *show_group(jgd_conn_t *c, json_t *req, bool watch)
{
    json_int_t id;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s:I !}", "op", &(const char *){0}, "id", &id) < 0)
        return jg_proto_error("malformed %s request: %s", watch ? "watch" : "show", jerr.text);
    jg_group_row_t row;
    json_t *denied = authorize(c, id, &row);
    if (denied)
        return denied;
    jg_state_t state = row.state;
    jg_group_row_clear(&row);
    jg_error_t err;
    jgd_spec_view_t spec = {0};
    json_t *group = jgd_view_group_detail(c->daemon->store, id, !watch, &spec, &err);
    if (group && watch && !jg_state_is_terminal(state))
        jgd_watch_start(c, id, &spec);
    jgd_spec_view_clear(&spec);
    if (!group)
        return jg_proto_error("%s", err.text);
    return json_pack("{s:b, s:o}", "ok", 1, "group", group);
}

static json_t *op_show(jgd_conn_t *c, json_t *req)
{
    return show_group(c, req, false);
}

/* show, and later a fresh snapshot each turn the group changed, until it
 * ends (watches.c). */
static json_t *op_watch(jgd_conn_t *c, json_t *req)
{
    return show_group(c, req, true);
}

static json_t *op_logs(jgd_conn_t *c, json_t *req)
{
    json_int_t id, max = LOG_CHUNK_DEFAULT;
    const char *job = NULL;
    json_t *job_j = NULL, *rank_j = NULL, *offsets = NULL;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s:I, s?o, s?o, s?o, s?I !}", "op",
                       &(const char *){0}, "id", &id, "job", &job_j, "rank", &rank_j, "offsets",
                       &offsets, "max", &max) < 0)
        return jg_proto_error("malformed logs request: %s", jerr.text);
    if (nullable_string(job_j, "job", &job) < 0)
        return jg_proto_error("logs: job must be a string or null");
    if (rank_j && !json_is_null(rank_j) && !json_is_integer(rank_j))
        return jg_proto_error("logs: rank must be an integer");
    if (offsets && !json_is_null(offsets) && !json_is_object(offsets))
        return jg_proto_error("logs: offsets must be an object");
    if (max <= 0 || max > LOG_CHUNK_MAX)
        max = LOG_CHUNK_DEFAULT;
    int want_rank = rank_j && json_is_integer(rank_j) ? (int)json_integer_value(rank_j) : -1;
    jg_group_row_t row;
    json_t *denied = authorize(c, id, &row);
    if (denied)
        return denied;
    json_t *reply = jgd_logs_reply(c->daemon, &row, job, want_rank, offsets, (size_t)max);
    jg_group_row_clear(&row);
    return reply;
}

static json_t *cancel_one(jgd_conn_t *c, int64_t id)
{
    jg_group_row_t row;
    json_t *denied = authorize(c, id, &row);
    if (denied) {
        json_t *e = json_pack("{s:I, s:b, s:O}", "id", (json_int_t)id, "ok", 0, "error",
                              json_object_get(denied, "error"));
        json_decref(denied);
        return e;
    }
    jg_error_t err;
    char reason[128];
    snprintf(reason, sizeof reason, "cancelled by %s", c->user);
    json_t *r;
    int rc = jg_sched_cancel(c->daemon->sched, id, reason, &err);
    if (rc < 0) {
        r = json_pack("{s:I, s:b, s:s, s:s}", "id", (json_int_t)id, "ok", 0, "error", err.text,
                      "name", row.name);
        if (rc == JG_SCHED_STORE_FAILED)    /* nothing changed: the CLI exits 4 */
            json_object_set_new(r, "code", json_string(JG_PROTO_DAEMON_FAILED));
    } else
        r = json_pack("{s:I, s:b, s:s, s:s}", "id", (json_int_t)id, "ok", 1, "state", "CANCELLING",
                      "name", row.name);
    jg_group_row_clear(&row);
    return r;
}

static json_t *op_cancel(jgd_conn_t *c, json_t *req)
{
    json_t *ids = NULL;
    int all = 0;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s?o, s?b !}", "op", &(const char *){0}, "ids", &ids,
                       "all", &all) < 0)
        return jg_proto_error("malformed cancel request: %s", jerr.text);
    if (ids && !json_is_array(ids))
        return jg_proto_error("cancel: ids must be an array of group ids");
    if (!all && (!ids || json_array_size(ids) == 0))
        return jg_proto_error("cancel: give group ids or all");
    json_t *results = json_array();
    if (all) {
        jg_group_filter_t filter = {.active_only = true};
        jg_group_row_t *rows = NULL;
        size_t n = 0;
        jg_error_t err;
        if (jg_store_list_groups(c->daemon->store, &filter, &rows, &n, &err) < 0) {
            json_decref(results);
            return jg_proto_error("%s", err.text);
        }
        for (size_t i = 0; i < n; i++)
            if (rows[i].uid == c->uid || c->uid == 0)
                json_array_append_new(results, cancel_one(c, rows[i].id));
        jg_group_rows_free(rows, n);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            if (!json_is_integer(v)) {
                json_decref(results);
                return jg_proto_error("cancel: ids must be integers");
            }
            json_array_append_new(results, cancel_one(c, json_integer_value(v)));
        }
    }
    return json_pack("{s:b, s:o}", "ok", 1, "results", results);
}

typedef struct {
    jg_daemon_t *daemon;
    json_t *list;
} infra_list_t;

static void infra_item(void *ctx, const jg_sched_infra_t *b)
{
    infra_list_t *l = ctx;
    json_array_append_new(l->list, jgd_view_infra_backend(l->daemon, b));
}

/* One item per backend instance (docs/protocol.md, infra). */
static json_t *op_infra(jgd_conn_t *c, json_t *req)
{
    (void)req;
    jg_daemon_t *d = c->daemon;
    infra_list_t l = {.daemon = d, .list = json_array()};
    jg_sched_foreach_infra(d->sched, infra_item, &l);
    json_t *list = l.list;
    char *settings = jg_config_describe(d->config);
    json_t *reply = json_pack("{s:b, s:o, s:s, s:s}", "ok", 1, "backends", list, "config",
                              d->config->loaded ? d->config->path : "(none: defaults)",
                              "settings", settings);
    free(settings);
    return reply;
}

static void reload_result(void *ctx, const char *policy, const char *error)
{
    json_t *list = ctx;
    json_t *item = json_pack("{s:s, s:b}", "name", policy, "ok", error == NULL);
    if (error)
        json_object_set_new(item, "error", json_string(error));
    json_array_append_new(list, item);
}

static json_t *op_policy_reload(jgd_conn_t *c, json_t *req)
{
    (void)req;
    json_t *list = json_array();
    jg_sched_reload_policies(c->daemon->sched, reload_result, list);
    return json_pack("{s:b, s:o}", "ok", 1, "policies", list);
}

static json_t *op_shutdown(jgd_conn_t *c, json_t *req)
{
    (void)req;
    c->daemon->stopping = true;
    c->close_after_flush = true;
    jg_loop_stop(c->daemon->loop);
    return jg_proto_ok();
}


static json_t *op_volume_create(jgd_conn_t *c, json_t *req)
{
    const char *name;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s:s !}", "op", &(const char *){0}, "name", &name) < 0)
        return jg_proto_error("malformed volume_create request: %s", jerr.text);
    return jgd_volume_create(c, name);
}

static json_t *op_volume_ls(jgd_conn_t *c, json_t *req)
{
    (void)req;
    return jgd_volume_list(c->daemon);
}

static json_t *op_volume_rm(jgd_conn_t *c, json_t *req)
{
    const char *name;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s:s !}", "op", &(const char *){0}, "name", &name) < 0)
        return jg_proto_error("malformed volume_rm request: %s", jerr.text);
    return jgd_volume_remove(c, name);
}

/* ------------------------------------------------------------- the table */

enum {
    /* Only root and the user the daemon runs as, not the configured admins:
     * what the op does concerns the daemon, not one user's groups. */
    JGD_OP_OWNER_ONLY = 1 << 0,
};

typedef json_t *jgd_handler_f(jgd_conn_t *c, json_t *req);
/* An op whose reply is large: NULL when it wrote the reply into *text. */
typedef json_t *jgd_text_handler_f(jgd_conn_t *c, json_t *req, jg_jsonw_t *text);

typedef struct {
    const char *op;
    jgd_handler_f *handler;
    unsigned flags;
    const char *action;         /* JGD_OP_OWNER_ONLY: what others are told they may not do */
    jgd_text_handler_f *text_handler;   /* instead of handler */
} op_entry_t;

static const op_entry_t op_table[] = {
    {"ping", op_ping, 0, NULL, NULL},
    {"submit", op_submit, 0, NULL, NULL},
    {"queue", NULL, 0, NULL, op_queue},
    {"show", op_show, 0, NULL, NULL},
    {"watch", op_watch, 0, NULL, NULL},
    {"logs", op_logs, 0, NULL, NULL},
    {"cancel", op_cancel, 0, NULL, NULL},
    {"shutdown", op_shutdown, JGD_OP_OWNER_ONLY, "stop it", NULL},
    {"policy_reload", op_policy_reload, JGD_OP_OWNER_ONLY, "reload policies", NULL},
    {"infra", op_infra, 0, NULL, NULL},
    {"volume_create", op_volume_create, 0, NULL, NULL},
    {"volume_ls", op_volume_ls, 0, NULL, NULL},
    {"volume_rm", op_volume_rm, 0, NULL, NULL},
};

json_t *jgd_dispatch(jgd_conn_t *c, json_t *req, jg_jsonw_t *text)
{
    jg_jsonw_reset(text);
    json_t *op = json_object_get(req, "op");
    if (!json_is_string(op))
        return jg_proto_error("a request needs a string field \"op\"");
    const char *name = json_string_value(op);
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++) {
        const op_entry_t *e = &op_table[i];
        if (strcmp(name, e->op) != 0)
            continue;
        if ((e->flags & JGD_OP_OWNER_ONLY) && c->uid != 0 && c->uid != getuid())
            return jg_proto_error("permission denied: only root or the daemon's owner may %s",
                                  e->action);
        return e->text_handler ? e->text_handler(c, req, text) : e->handler(c, req);
    }
    return jg_proto_error("unknown op \"%s\"", name);
}
