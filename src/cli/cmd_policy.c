/* cmd_policy.c - `jgsched policy check|test|reload`: what a site needs to
 * write Lua policies without guessing (docs/policies.md).
 *
 * check and test run locally, without a daemon: they load the policy exactly
 * as jgschedd does (jg_policy_load, default limits, the same policy
 * directory: $JGSCHED_POLICY_DIR, else <source root>/policies in a build
 * tree, else <datadir>/jgsched/policies), so "ok" here means the daemon will
 * load it too.  test feeds the hooks snapshots made from a YAML (parsed by
 * the spec module, like validate) and a made-up node exit, and reports each
 * decision; nothing is launched or stored.  Its results are first gathered
 * into one JSON object, which --json prints as it is and the text output is
 * rendered from, so the two can never disagree.  A hook that fails is
 * reported with its error and the default decision the daemon would then use
 * (the policy engine's failure contract).
 *
 * reload is the only subcommand that talks to the daemon: it does not start
 * one (a fresh daemon loads the policies anyway).
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jgsched/policy.h"
#include "jgsched/spec.h"

static const char usage[] =
    "usage: jgsched policy check FILE|NAME...\n"
    "       jgsched policy test POLICY FILE.yaml [--event KEY=VALUE,...] [--user NAME]\n"
    "                           [--infras INFRA,...] [--json]\n"
    "       jgsched policy reload\n"
    "\n"
    "Lua policies decide admission, placement, priority and recovery (docs/policies.md).\n"
    "A NAME is <policy dir>/NAME.lua; the policy dir is $JGSCHED_POLICY_DIR, else the\n"
    "checkout's policies/ when jgsched runs from its build tree, else the installed one.\n"
    "\n"
    "  check    load each policy as jgschedd would; print the hooks it defines and\n"
    "           its memory use, or the error with file:line (exit 1)\n"
    "  test     run a policy's hooks on a JobGroup YAML without launching anything:\n"
    "           on_submit, place, priority and, with --event, on_node_exit and\n"
    "           on_job_end for that node exit.  Exit 1 if a hook failed (its error\n"
    "           and the default decision used instead are printed), 2 if the YAML or\n"
    "           an argument is invalid.  The policy's print() output and the\n"
    "           tracebacks of failed hooks go to stderr\n"
    "  reload   ask the running jgschedd to reload its policies; a policy that fails\n"
    "           to load keeps its previous version (exit 1)\n"
    "\n"
    "test options:\n"
    "  --event job=NAME,exit=N,reason=R[,rank=N,attempt=N,restarts=N,recoveries=N]\n"
    "                    the node exit to decide on.  reason: exited (the default),\n"
    "                    setup_failed (both need exit=0..255), preempted, node_lost.\n"
    "                    job= may be left out when the group has one job; attempt\n"
    "                    defaults to 1, the others to 0\n"
    "  --user NAME       the submitting user (default: you)\n"
    "  --infras A,B      infras offered to place, in order of preference, each\n"
    "                    taken to fit the group (default: local)\n"
    "  --json            print the results as one JSON object\n";

#define MAX_INFRAS 16
#define MAX_COUNTER 1000000

/* Loads as the daemon does; prints the error on failure. */
static jg_policy_t *load_policy(const char *name_or_path)
{
    char *dir = jg_policy_default_dir();
    jg_error_t err;
    jg_policy_t *p = jg_policy_load(name_or_path, dir, NULL, &err);
    if (!p)
        jg_cli_errorf("%s", err.text);
    free(dir);
    return p;
}

/* "on_submit, place" of the hooks in mask whose bit is `set`; "" when none. */
static void hook_list(jg_cli_buf_t *b, unsigned mask, bool set)
{
    bool first = true;
    for (int h = 0; h < JG_HOOK_COUNT; h++) {
        if (((mask >> h) & 1u) != set)
            continue;
        jg_cli_buf_printf(b, "%s%s", first ? "" : ", ", jg_policy_hook_name((jg_policy_hook_t)h));
        first = false;
    }
}

static char *fmt_bytes(size_t n, char *buf, size_t size)
{
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(buf, size, "%zu MiB", n >> 20);
    else if (n >= (1u << 20))
        snprintf(buf, size, "%.1f MiB", (double)n / (1u << 20));
    else
        snprintf(buf, size, "%.1f KiB", (double)n / 1024);
    return buf;
}

/* ---- policy check ---- */

/* check reports a load error itself; the traceback the engine logs with it
 * says nothing more for a script that did not load. */
static void quiet_log(void *ctx, const char *policy, const char *line)
{
    (void)ctx, (void)policy, (void)line;
}

static int check_one(const char *arg)
{
    jg_policy_t *p = load_policy(arg);
    if (!p)
        return JG_EXIT_FAIL;
    unsigned mask = jg_policy_hooks(p);
    jg_cli_buf_t line = {0};
    printf("%s: ok\n", arg);
    if (jg_policy_path(p) && strcmp(jg_policy_path(p), arg) != 0)
        printf("file: %s\n", jg_policy_path(p));
    jg_cli_buf_printf(&line, "defines: ");
    if (mask == 0)
        jg_cli_buf_printf(&line, "no hook");
    hook_list(&line, mask, true);
    if (mask != (1u << JG_HOOK_COUNT) - 1) {
        jg_cli_buf_printf(&line, "; from default.lua: ");
        hook_list(&line, mask, false);
    }
    printf("%s\n", jg_cli_buf_str(&line));
    char mem[32], cap[32];
    printf("memory: %s of Lua heap (limit %s per state)\n",
           fmt_bytes(jg_policy_memory(p), mem, sizeof mem),
           fmt_bytes(JG_POLICY_DEFAULT_MEMORY, cap, sizeof cap));
    jg_cli_buf_free(&line);
    jg_policy_free(p);
    return JG_EXIT_OK;
}

static int policy_check(int argc, char **argv)
{
    int rc = jg_cli_getopt_simple(argc, argv, usage, NULL, 1, -1, "a policy FILE or NAME");
    if (rc >= 0)
        return rc;
    jg_policy_set_log(quiet_log, NULL);
    rc = JG_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        if (i > optind)
            putchar('\n');
        if (check_one(argv[i]) != JG_EXIT_OK)
            rc = JG_EXIT_FAIL;
    }
    return rc;
}

/* ---- policy test: arguments ---- */

typedef struct {
    bool given;
    char *job;                  /* NULL: the group's only job */
    jg_policy_exit_reason_t reason;
    bool has_exit;
    int exit_code;
    int rank, attempt, restarts, recoveries;
} event_arg_t;

/* Parses a decimal integer in [lo, hi]; false otherwise. */
static bool parse_int(const char *s, int lo, int hi, int *out)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* Parses "job=NAME,exit=29,reason=exited,..." into ev; prints a usage error
 * naming the bad key or value and returns JG_EXIT_USAGE on failure. */
static int parse_event(const char *cmd, const char *text, event_arg_t *ev)
{
    static const char *const keys[] = {"job", "exit", "reason", "rank", "attempt",
                                       "restarts", "recoveries"};
    enum { K_JOB, K_EXIT, K_REASON, K_RANK, K_ATTEMPT, K_RESTARTS, K_RECOVERIES, K_COUNT };
    bool seen[K_COUNT] = {0};
    char *copy = jg_xstrdup(text);
    int rc = JG_EXIT_OK;
    *ev = (event_arg_t){.given = true, .reason = JG_EXIT_EXITED, .exit_code = -1, .attempt = 1};
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            rc = jg_cli_usage_error(cmd, "--event: '%s' is not KEY=VALUE", item);
            goto done;
        }
        *eq = '\0';
        const char *val = eq + 1;
        int k = 0;
        while (k < K_COUNT && strcmp(item, keys[k]) != 0)
            k++;
        if (k == K_COUNT) {
            rc = jg_cli_usage_error(cmd, "--event: unknown key '%s' (keys: job, exit, reason, "
                                         "rank, attempt, restarts, recoveries)", item);
            goto done;
        }
        if (seen[k]) {
            rc = jg_cli_usage_error(cmd, "--event: key '%s' given twice", item);
            goto done;
        }
        seen[k] = true;
        bool good = true;
        switch (k) {
        case K_JOB:
            good = *val != '\0';
            ev->job = jg_xstrdup(val);
            break;
        case K_EXIT:
            good = parse_int(val, 0, 255, &ev->exit_code);
            ev->has_exit = good;
            break;
        case K_REASON:
            good = jg_policy_exit_reason_parse(val, &ev->reason) == 0;
            break;
        case K_RANK:
            good = parse_int(val, 0, INT_MAX, &ev->rank);
            break;
        case K_ATTEMPT:
            good = parse_int(val, 1, MAX_COUNTER, &ev->attempt);
            break;
        case K_RESTARTS:
            good = parse_int(val, 0, MAX_COUNTER, &ev->restarts);
            break;
        case K_RECOVERIES:
            good = parse_int(val, 0, MAX_COUNTER, &ev->recoveries);
            break;
        }
        if (!good) {
            static const char *const want[] = {
                "a job name", "an exit code 0..255",
                "exited, preempted, node_lost or setup_failed", "a rank >= 0",
                "an attempt >= 1", "a count >= 0", "a count >= 0",
            };
            rc = jg_cli_usage_error(cmd, "--event: bad value '%s' for %s (expected %s)", val,
                                    item, want[k]);
            goto done;
        }
    }
    bool needs_exit = ev->reason == JG_EXIT_EXITED || ev->reason == JG_EXIT_SETUP_FAILED;
    if (needs_exit && !ev->has_exit)
        rc = jg_cli_usage_error(cmd, "--event: reason=%s needs exit=CODE",
                                jg_policy_exit_reason_name(ev->reason));
    else if (!needs_exit && ev->has_exit)
        rc = jg_cli_usage_error(cmd, "--event: reason=%s has no exit code; leave exit= out",
                                jg_policy_exit_reason_name(ev->reason));
done:
    free(copy);
    return rc;
}

/* Finds the event's job in spec (by name, or the only job); usage error otherwise. */
static int resolve_event_job(const char *cmd, const jg_group_spec_t *spec, const event_arg_t *ev,
                             size_t *job)
{
    int rc = JG_EXIT_OK;
    jg_cli_buf_t names = {0};
    for (size_t i = 0; i < spec->n_jobs; i++)
        jg_cli_buf_printf(&names, "%s%s", i ? ", " : "", spec->jobs[i].name);
    if (!ev->job) {
        if (spec->n_jobs == 1)
            *job = 0;
        else
            rc = jg_cli_usage_error(cmd, "--event: needs job=NAME (jobs: %s)",
                                    jg_cli_buf_str(&names));
        goto done;
    }
    int i = jg_spec_find_job(spec, ev->job);
    if (i < 0) {
        rc = jg_cli_usage_error(cmd, "--event: no job '%s' in the group (jobs: %s)", ev->job,
                                jg_cli_buf_str(&names));
        goto done;
    }
    *job = (size_t)i;
    if (ev->rank >= spec->jobs[i].num_nodes)
        rc = jg_cli_usage_error(cmd, "--event: rank=%d, but job %s has %d node%s", ev->rank,
                                ev->job, spec->jobs[i].num_nodes,
                                spec->jobs[i].num_nodes == 1 ? "" : "s");
done:
    jg_cli_buf_free(&names);
    return rc;
}

/* Splits "local,kubernetes" into names (pointers into the caller's copy). */
static int parse_infras(const char *cmd, char *list, jg_policy_infra_t *infras, size_t *n)
{
    *n = 0;
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_INFRAS)
            return jg_cli_usage_error(cmd, "--infras: at most %d infras", MAX_INFRAS);
        for (size_t i = 0; i < *n; i++)
            if (strcmp(infras[i].name, name) == 0)
                return jg_cli_usage_error(cmd, "--infras: '%s' given twice", name);
        infras[(*n)++] = (jg_policy_infra_t){.name = name, .fits = true};
    }
    if (*n == 0)
        return jg_cli_usage_error(cmd, "--infras: expected a comma-separated list of infras");
    return JG_EXIT_OK;
}

/* ---- policy test: running the hooks ---- */

/* The error text without the "<hook>: " the engine puts in front. */
static const char *hook_error(jg_policy_hook_t hook, const jg_error_t *err)
{
    const char *name = jg_policy_hook_name(hook);
    size_t n = strlen(name);
    if (strncmp(err->text, name, n) == 0 && strncmp(err->text + n, ": ", 2) == 0)
        return err->text + n + 2;
    return err->text;
}

/* Adds "error" to a hook's result when the call failed; counts the failure. */
static void note_error(json_t *res, jg_policy_hook_t hook, int rc, const jg_error_t *err,
                       int *failures)
{
    if (rc == 0)
        return;
    json_object_set_new(res, "error", json_string(hook_error(hook, err)));
    (*failures)++;
}

static const char *count_name(jg_policy_count_t c)
{
    switch (c) {
    case JG_POLICY_COUNT_RESTARTS:
        return "restarts";
    case JG_POLICY_COUNT_RECOVERIES:
        return "recoveries";
    default:
        return "none";
    }
}

typedef struct {
    jg_policy_t *p;
    const jg_group_spec_t *spec;
    const char *user;
    const jg_policy_infra_t *infras;
    size_t n_infras;
    const event_arg_t *ev;
    size_t ev_job;
    int failures;               /* hooks that returned -1 */
} test_ctx_t;

static json_t *run_on_submit(test_ctx_t *t, const jg_policy_group_t *g)
{
    struct passwd *pw = getpwnam(t->user);
    jg_policy_user_t user = {
        .name = t->user,
        .uid = pw ? pw->pw_uid : 65534,
        .admin = pw && pw->pw_uid == 0,
    };
    jg_policy_admission_t adm;
    jg_error_t err;
    int rc = jg_policy_on_submit(t->p, g, &user, &adm, &err);
    json_t *res = json_pack("{s:b}", "accepted", adm.accepted);
    if (adm.reason[0])
        json_object_set_new(res, "reason", json_string(adm.reason));
    if (adm.policy[0])
        json_object_set_new(res, "policy", json_string(adm.policy));
    note_error(res, JG_HOOK_ON_SUBMIT, rc, &err, &t->failures);
    return res;
}

/* Runs place; on acceptance fills chosen[job] with the infra name. */
static json_t *run_place(test_ctx_t *t, const jg_policy_group_t *g, const char **chosen)
{
    jg_policy_placement_t pl;
    jg_error_t err;
    int rc = jg_policy_place(t->p, g, t->infras, t->n_infras, &pl, &err);
    json_t *res = json_pack("{s:b}", "accepted", pl.accepted);
    if (pl.accepted && pl.job_infra) {
        json_t *jobs = json_object();
        for (size_t j = 0; j < t->spec->n_jobs; j++) {
            int k = pl.job_infra[j];
            chosen[j] = k >= 0 && (size_t)k < t->n_infras ? t->infras[k].name : NULL;
            json_object_set_new(jobs, t->spec->jobs[j].name,
                                chosen[j] ? json_string(chosen[j]) : json_null());
        }
        json_object_set_new(res, "jobs", jobs);
    }
    if (pl.reason[0])
        json_object_set_new(res, "reason", json_string(pl.reason));
    note_error(res, JG_HOOK_PLACE, rc, &err, &t->failures);
    jg_policy_placement_clear(&pl);
    return res;
}

static json_t *run_priority(test_ctx_t *t, const jg_policy_group_t *g)
{
    double key = 0;
    jg_error_t err;
    int rc = jg_policy_priority(t->p, g, NULL, 0, &key, &err);
    json_t *res = json_pack("{s:f}", "key", key);
    note_error(res, JG_HOOK_PRIORITY, rc, &err, &t->failures);
    return res;
}

static json_t *run_on_node_exit(test_ctx_t *t, const jg_policy_group_t *g)
{
    jg_policy_exit_t ex = {
        .reason = t->ev->reason,
        .exit_code = t->ev->has_exit ? t->ev->exit_code : -1,
        .rank = t->ev->rank,
    };
    jg_policy_decision_t dec;
    jg_error_t err;
    int rc = jg_policy_on_node_exit(t->p, g, t->ev_job, &ex, &dec, &err);
    json_t *res = json_pack("{s:s, s:f, s:s}", "action", jg_policy_action_name(dec.action),
                            "delay", dec.delay_s, "count", count_name(dec.count));
    if (dec.reason[0])
        json_object_set_new(res, "reason", json_string(dec.reason));
    note_error(res, JG_HOOK_ON_NODE_EXIT, rc, &err, &t->failures);
    return res;
}

static json_t *run_on_job_end(test_ctx_t *t, const jg_policy_group_t *g, jg_state_t ended)
{
    jg_policy_job_end_t je;
    jg_error_t err;
    int rc = jg_policy_on_job_end(t->p, g, t->ev_job, &je, &err);
    json_t *cancel = json_array();
    for (size_t i = 0; i < je.n_cancel; i++) {
        int j = je.cancel[i].job;
        const char *name = j >= 0 && (size_t)j < t->spec->n_jobs ? t->spec->jobs[j].name : "?";
        json_array_append_new(cancel, json_pack("{s:s, s:f}", "job", name, "delay",
                                                je.cancel[i].delay_s));
    }
    json_t *res = json_pack("{s:s, s:s, s:o}", "job", t->spec->jobs[t->ev_job].name,
                            "job_state", jg_state_name(ended), "cancel", cancel);
    if (je.reason[0])
        json_object_set_new(res, "reason", json_string(je.reason));
    note_error(res, JG_HOOK_ON_JOB_END, rc, &err, &t->failures);
    jg_policy_job_end_clear(&je);
    return res;
}

/* Runs every hook and gathers the results into one object (new reference). */
static json_t *run_hooks(test_ctx_t *t, const char *yaml_path)
{
    const jg_group_spec_t *spec = t->spec;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned mask = jg_policy_hooks(t->p);
    json_t *defines = json_array();
    for (int h = 0; h < JG_HOOK_COUNT; h++)
        if (mask & (1u << h))
            json_array_append_new(defines, json_string(jg_policy_hook_name((jg_policy_hook_t)h)));
    const char *path = jg_policy_path(t->p);
    json_t *out = json_pack("{s:{s:s, s:o, s:o}, s:s, s:s, s:s}",
                            "policy", "name", jg_policy_name(t->p), "path",
                            path ? json_string(path) : json_null(), "defines", defines,
                            "group", spec->name, "file", yaml_path, "user", t->user);
    json_t *infras = json_array();
    for (size_t i = 0; i < t->n_infras; i++)
        json_array_append_new(infras, json_pack("{s:s, s:b}", "name", t->infras[i].name,
                                                "fits", t->infras[i].fits));
    json_object_set_new(out, "infras", infras);

    /* Before launch, as the daemon calls them: not stored yet (id 0) for
     * on_submit, then pending with no job launched. */
    jg_policy_group_t g = {
        .spec = spec,
        .id = 0,
        .user = t->user,
        .state = JG_PENDING,
        .submitted_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000,
        .jobs = NULL,
    };
    const char **chosen = jg_xcalloc(spec->n_jobs, sizeof *chosen);
    jg_policy_job_state_t *jobs = jg_xcalloc(spec->n_jobs, sizeof *jobs);
    json_object_set_new(out, "on_submit", run_on_submit(t, &g));
    g.id = 1;
    json_object_set_new(out, "place", run_place(t, &g, chosen));
    json_object_set_new(out, "priority", run_priority(t, &g));
    if (!t->ev->given)
        goto done;

    /* Running: every job on its attempt 1 (the event's job on the event's
     * attempt, with its counters), on the infra place chose or it pins. */
    const event_arg_t *ev = t->ev;
    for (size_t j = 0; j < spec->n_jobs; j++) {
        const char *infra = chosen[j] ? chosen[j]
                            : spec->jobs[j].infra ? spec->jobs[j].infra
                                                  : t->infras[0].name;
        jobs[j] = (jg_policy_job_state_t){.state = JG_RUNNING, .attempt = 1, .exit_code = -1,
                                          .infra = infra};
    }
    jobs[t->ev_job].attempt = ev->attempt;
    jobs[t->ev_job].restarts = ev->restarts;
    jobs[t->ev_job].recoveries = ev->recoveries;
    g.state = JG_RUNNING;
    g.jobs = jobs;
    json_t *evj = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "job", spec->jobs[t->ev_job].name,
                            "reason", jg_policy_exit_reason_name(ev->reason), "rank", ev->rank,
                            "attempt", ev->attempt, "restarts", ev->restarts, "recoveries",
                            ev->recoveries);
    json_object_set_new(evj, "exit_code",
                        ev->has_exit ? json_integer(ev->exit_code) : json_null());
    json_object_set_new(out, "event", evj);
    json_object_set_new(out, "on_node_exit", run_on_node_exit(t, &g));

    /* The job ended with the event's outcome. */
    jg_state_t ended = ev->reason == JG_EXIT_EXITED && ev->exit_code == 0 ? JG_SUCCEEDED
                                                                           : JG_FAILED;
    jobs[t->ev_job].state = ended;
    jobs[t->ev_job].exit_code = ev->has_exit ? ev->exit_code : -1;
    json_object_set_new(out, "on_job_end", run_on_job_end(t, &g, ended));
done:
    free(chosen);
    free(jobs);
    return out;
}

/* ---- policy test: the text rendering of the results ---- */

static char *fmt_delay(double s, char *buf, size_t n)
{
    snprintf(buf, n, "%gs", s);
    return buf;
}

/* Prints "HOOK: ERROR <text> (the default decision is used:)" when the hook failed. */
static void print_hook_error(const char *hook, const json_t *res)
{
    const char *e = jg_cli_jstr(res, "error");
    if (*e)
        printf("%s: ERROR %s (the default decision is used:)\n", hook, e);
}

static void print_results(const json_t *r)
{
    const json_t *pol = json_object_get(r, "policy");
    const char *path = jg_cli_jstr(pol, "path");
    printf("policy %s%s%s%s on group %s (%s), user %s\n", jg_cli_jstr(pol, "name"),
           *path ? " (" : "", path, *path ? ")" : "", jg_cli_jstr(r, "group"),
           jg_cli_jstr(r, "file"), jg_cli_jstr(r, "user"));

    const json_t *sub = json_object_get(r, "on_submit");
    print_hook_error("on_submit", sub);
    if (jg_cli_jbool(sub, "accepted")) {
        printf("on_submit: accepted");
        if (*jg_cli_jstr(sub, "reason"))
            printf(" (%s)", jg_cli_jstr(sub, "reason"));
        if (*jg_cli_jstr(sub, "policy"))
            printf(", routed to policy %s", jg_cli_jstr(sub, "policy"));
        putchar('\n');
    } else {
        printf("on_submit: rejected: %s\n", jg_cli_jstr(sub, "reason"));
    }

    const json_t *pl = json_object_get(r, "place");
    jg_cli_buf_t line = {0};
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(r, "infras"), i, v)
        jg_cli_buf_printf(&line, "%s%s", i ? ", " : "", jg_cli_jstr(v, "name"));
    print_hook_error("place", pl);
    if (jg_cli_jbool(pl, "accepted")) {
        printf("place (infras: %s):", jg_cli_buf_str(&line));
        const char *job;
        const char *sep = " ";
        json_object_foreach((json_t *)json_object_get(pl, "jobs"), job, v) {
            printf("%s%s -> %s", sep, job, json_is_string(v) ? json_string_value(v) : "?");
            sep = ", ";
        }
        putchar('\n');
    } else {
        printf("place (infras: %s): rejected: %s\n", jg_cli_buf_str(&line),
               jg_cli_jstr(pl, "reason"));
    }
    jg_cli_buf_free(&line);

    const json_t *pr = json_object_get(r, "priority");
    print_hook_error("priority", pr);
    printf("priority: %.6f (the smallest key is admitted first; only the daemon's configured "
           "policy orders the queue)\n", jg_cli_jnum(pr, "key"));

    const json_t *ev = json_object_get(r, "event");
    if (!ev)
        return;
    char d[32];
    printf("event: %s rank %lld %s", jg_cli_jstr(ev, "job"), jg_cli_jint(ev, "rank", 0),
           jg_cli_jstr(ev, "reason"));
    if (json_is_integer(json_object_get(ev, "exit_code")))
        printf(" with code %lld", jg_cli_jint(ev, "exit_code", -1));
    printf(" (attempt %lld, restarts %lld, recoveries %lld)\n", jg_cli_jint(ev, "attempt", 1),
           jg_cli_jint(ev, "restarts", 0), jg_cli_jint(ev, "recoveries", 0));

    const json_t *ne = json_object_get(r, "on_node_exit");
    print_hook_error("on_node_exit", ne);
    printf("on_node_exit: %s", jg_cli_jstr(ne, "action"));
    if (strncmp(jg_cli_jstr(ne, "action"), "restart_", 8) == 0)
        printf(", counted as %s", jg_cli_jstr(ne, "count"));
    printf(", after %s", fmt_delay(jg_cli_jnum(ne, "delay"), d, sizeof d));
    if (*jg_cli_jstr(ne, "reason"))
        printf(": %s", jg_cli_jstr(ne, "reason"));
    putchar('\n');

    const json_t *je = json_object_get(r, "on_job_end");
    print_hook_error("on_job_end", je);
    printf("on_job_end (%s ended %s): ", jg_cli_jstr(je, "job"), jg_cli_jstr(je, "job_state"));
    const json_t *cancel = json_object_get(je, "cancel");
    if (json_array_size(cancel) == 0)
        printf("nothing to cancel");
    json_array_foreach(cancel, i, v)
        printf("%scancel %s after %s", i ? ", " : "", jg_cli_jstr(v, "job"),
               fmt_delay(jg_cli_jnum(v, "delay"), d, sizeof d));
    if (*jg_cli_jstr(je, "reason"))
        printf(": %s", jg_cli_jstr(je, "reason"));
    putchar('\n');
}

/* ---- policy test ---- */

static int policy_test(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"event", required_argument, NULL, 'e'},
        {"user", required_argument, NULL, 'u'},
        {"infras", required_argument, NULL, 'i'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *cmd = argv[0];
    const char *event_text = NULL, *user = NULL;
    char *infra_list = NULL, *self = NULL;
    bool json_out = false;
    event_arg_t ev = {0};
    jg_policy_infra_t infras[MAX_INFRAS];
    size_t n_infras = 0;
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = NULL;
    jg_policy_t *p = NULL;
    json_t *results = NULL;
    size_t ev_job = 0;
    int rc = JG_EXIT_OK;
    int opt;
    while ((opt = jg_cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'e':
            event_text = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'i':
            free(infra_list);
            infra_list = jg_xstrdup(optarg);
            break;
        case 'j':
            json_out = true;
            break;
        case 'h':
            fputs(usage, stdout);
            goto done;
        default:
            rc = JG_EXIT_USAGE;
            goto done;
        }
    }
    if (argc - optind < 2) {
        rc = jg_cli_usage_error(cmd, "expected a POLICY and a FILE.yaml");
        goto done;
    }
    if (argc - optind > 2) {
        rc = jg_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 2]);
        goto done;
    }
    const char *policy_arg = argv[optind], *yaml_path = argv[optind + 1];
    if (event_text && (rc = parse_event(cmd, event_text, &ev)) != JG_EXIT_OK)
        goto done;
    if (!infra_list)
        infra_list = jg_xstrdup("local");
    if ((rc = parse_infras(cmd, infra_list, infras, &n_infras)) != JG_EXIT_OK)
        goto done;
    if (user && !*user) {
        rc = jg_cli_usage_error(cmd, "--user: expected a user name");
        goto done;
    }
    if (!user) {
        struct passwd *pw = getpwuid(getuid());
        self = pw ? jg_xstrdup(pw->pw_name) : jg_xasprintf("%u", (unsigned)getuid());
        user = self;
    }

    spec = jg_spec_parse_file(yaml_path, &errs);
    if (!spec) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.messages[i]);
        fprintf(stderr, "%s: %zu error%s\n", yaml_path, errs.count, errs.count == 1 ? "" : "s");
        rc = JG_EXIT_USAGE;
        goto done;
    }
    if (ev.given && (rc = resolve_event_job(cmd, spec, &ev, &ev_job)) != JG_EXIT_OK)
        goto done;
    if (!(p = load_policy(policy_arg))) {
        rc = JG_EXIT_FAIL;
        goto done;
    }

    test_ctx_t t = {
        .p = p, .spec = spec, .user = user, .infras = infras, .n_infras = n_infras,
        .ev = &ev, .ev_job = ev_job,
    };
    results = run_hooks(&t, yaml_path);
    if (json_out)
        jg_cli_print_json(results);
    else
        print_results(results);
    if (t.failures > 0)
        rc = JG_EXIT_FAIL;
done:
    json_decref(results);
    jg_policy_free(p);
    jg_spec_free(spec);
    jg_spec_errors_free(&errs);
    free(ev.job);
    free(infra_list);
    free(self);
    return rc;
}

/* ---- policy reload ---- */

static int policy_reload(int argc, char **argv)
{
    int rc = jg_cli_getopt_simple(argc, argv, usage, NULL, 0, 0, NULL);
    if (rc >= 0)
        return rc;

    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL;
    jg_error_t err;
    /* No autostart: a daemon started now would load the policies anyway. */
    if (jg_cli_connect(&c, false, &err) < 0) {
        jg_cli_errorf("%s", err.text);
        rc = JG_EXIT_NO_DAEMON;
        goto done;
    }
    if ((rc = jg_cli_request(&c, json_pack("{s:s}", "op", "policy_reload"), &reply)) !=
        JG_EXIT_OK)
        goto done;
    size_t i;
    json_t *pol;
    json_array_foreach(json_object_get(reply, "policies"), i, pol) {
        const char *name = jg_cli_jstr(pol, "name");
        if (jg_cli_jbool(pol, "ok")) {
            printf("%s: reloaded\n", name);
        } else {
            const char *e = jg_cli_jstr(pol, "error");
            printf("%s: FAILED: %s (the previous version stays in use)\n", name,
                   *e ? e : "cannot be loaded");
            rc = JG_EXIT_FAIL;
        }
    }
done:
    json_decref(reply);
    jg_cli_close(&c);
    return rc;
}

/* ---- dispatch ---- */

int jg_cli_cmd_policy(int argc, char **argv)
{
    static const jg_cli_sub_t subs[] = {
        {"check", policy_check},
        {"test", policy_test},
        {"reload", policy_reload},
    };
    return jg_cli_dispatch(argc, argv, usage, subs, sizeof subs / sizeof subs[0]);
}
