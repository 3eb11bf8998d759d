/* test_sched.c - the scheduler's state machine against a scripted backend.
 *
 * The backend here creates nothing: it records what sched asks of it and can
 * be told to refuse a launch or a reattach, or to report from inside launch()
 * that nodes failed to start or exited; the test plays every other node event
 * itself through jg_sched_backend_event.  Each test gets a fresh store in a
 * temporary directory and the shipped policies; a "daemon restart" is
 * destroying the scheduler and creating another on the same store.
 */
#include <criterion/criterion.h>

#include "jgsched/backend.h"
#include "jgsched/capacity.h"
#include "jgsched/logstore.h"
#include "jgsched/policy.h"
#include "jgsched/registry.h"
#include "jgsched/config.h"
#include "jgsched/loop.h"
#include "jgsched/sched.h"
#include "jgsched/spec.h"
#include "jgsched/store.h"

#include <ftw.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_backend.h"

#ifndef JG_TEST_FIXTURES
#define JG_TEST_FIXTURES "tests/fixtures"
#endif
#define POLICY_DIR JG_TEST_FIXTURES "/../../policies"

/* ---- the scripted backend (fake_backend.h) -------------------------------- */

static fake_state_t fake;           /* the "fake" instance every test has */
static jg_sched_t *sched;
static jg_logstore_t *logs;

/* More instances a test wants besides "fake" (their states outlive restarts). */
#define MAX_EXTRA 4
static const char *extra_names[MAX_EXTRA];
static fake_state_t extra_states[MAX_EXTRA];
static size_t n_extra;
static jg_backend_t *instances[1 + MAX_EXTRA];  /* of the current sched */

/* ---- harness ---------------------------------------------------------------- */

static char dir[64];
static char db_path[128];
static jg_store_t *store;
static jg_loop_t *loop;
static int changes;             /* change callbacks since the test last cleared them */
static jg_config_t *config;     /* the daemon's config.yaml; NULL: none */
static const char *site_policy; /* the configured policy (name or path); NULL: default */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void on_change(void *ctx, int64_t id)
{
    (void)ctx, (void)id;
    changes++;
}

/* A scheduler on the test's store with fresh scripted instances ("fake",
 * then the test's extra ones), as a daemon (re)start makes it (recovery
 * included). */
static void start_sched(void)
{
    jg_error_t err = {{0}};
    instances[0] = fake_backend_create("fake", &fake, loop);
    for (size_t i = 0; i < n_extra; i++)
        instances[1 + i] = fake_backend_create(extra_names[i], &extra_states[i], loop);
    jg_sched_options_t opts = {.policy_dir = POLICY_DIR, .stop_grace_ms = 100,
                               .default_policy = site_policy,
                               .config = config, .logs = logs, .no_registry = true,
                               .extra_backends = instances, .n_extra_backends = 1 + n_extra};
    sched = jg_sched_create(store, loop, &opts, &err);
    cr_assert_not_null(sched, "%s", err.text);
    for (size_t i = 0; i < 1 + n_extra; i++)
        fake_backend_set_sink(instances[i], jg_sched_backend_event, sched);
    jg_sched_set_change_cb(sched, on_change, NULL);
    cr_assert_eq(jg_sched_recover(sched, &err), 0, "%s", err.text);
}

static void restart_sched(void)
{
    jg_sched_destroy(sched);
    start_sched();
}

static void setup(void)
{
    memset(&fake, 0, sizeof fake);
    changes = 0;
    strcpy(dir, "/tmp/jg-sched-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/jgsched.db", dir);
    jg_error_t err = {{0}};
    store = jg_store_open(db_path, &err);
    cr_assert_not_null(store, "%s", err.text);
    loop = jg_loop_create(&err);
    cr_assert_not_null(loop, "%s", err.text);
    char logs_dir[128];
    snprintf(logs_dir, sizeof logs_dir, "%s/logs", dir);
    logs = jg_logstore_open(logs_dir, &err);
    cr_assert_not_null(logs, "%s", err.text);
    n_extra = 0;
    memset(extra_states, 0, sizeof extra_states);
    start_sched();
}

static void teardown(void)
{
    jg_sched_destroy(sched);
    sched = NULL;
    jg_logstore_close(logs);
    logs = NULL;
    jg_loop_destroy(loop);
    jg_store_close(store);
    jg_config_free(config);
    config = NULL;
    site_policy = NULL;
    if (dir[0])
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(sched, .init = setup, .fini = teardown, .timeout = 30);

static void stop_loop(jg_loop_t *l, void *arg)
{
    (void)arg;
    jg_loop_stop(l);
}

/* Runs the loop (timers included) for ms milliseconds. */
static void run_for(int64_t ms)
{
    jg_loop_add_timer(loop, ms, stop_loop, NULL);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_loop_run(loop, &err), 0, "%s", err.text);
}

/* Lets the loop deliver what the backend queued: CLEANED after a group's
 * end, which is when what it held is free. */
static void cleanup_reported(void)
{
    run_for(5);
}

/* A policy its submitter wrote, sent as text the way `jgsched submit
 * --policy FILE` sends it (static: one at a time). */
typedef struct {
    const char *label;
    char text[1024];
} own_policy_t;

static const own_policy_t *own_policy(const char *label, const char *lua)
{
    static own_policy_t p;
    p.label = label;
    snprintf(p.text, sizeof p.text, "%s", lua);
    return &p;
}

/* Parses yaml with the default spec limits; the test fails if it does not parse. */
static jg_group_spec_t *parse_spec(const char *yaml)
{
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse(yaml, strlen(yaml), NULL, &errs);
    cr_assert_not_null(spec, "%s", errs.count ? errs.messages[0] : "?");
    jg_spec_errors_free(&errs);
    return spec;
}

/* Submits, as user, a one-job, one-node group (2 cpus) under policy (NULL:
 * default) whose job restarts once on an error, and admits it.  0 if the
 * submit was refused (err says why). */
static int64_t submit_as(const own_policy_t *policy, const char *user, uid_t uid, jg_error_t *err)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n%s%s%s---\n"
             "name: main\nresources:\n  cpus: 2\njob_recovery:\n  max_restarts_on_errors: 1\n"
             "run: 'true'\n",
             policy ? "policy: " : "", policy ? policy->label : "", policy ? "\n" : "");
    jg_group_spec_t *spec = parse_spec(yaml);
    int64_t id = 0;
    if (jg_sched_submit_own_policy(sched, spec, policy ? policy->text : NULL,
                                   policy ? strlen(policy->text) : 0, uid, (gid_t)uid, user, &id,
                                   err) < 0)
        return 0;
    jg_sched_pass(sched);
    return id;
}

static int64_t submit(const own_policy_t *policy)
{
    jg_error_t err = {{0}};
    int64_t id = submit_as(policy, "alice", getuid(), &err);
    cr_assert_gt(id, 0, "%s", err.text);
    return id;
}

/* What admitted groups hold on instance name (from `jgsched infra`'s view). */
typedef struct {
    const char *name;
    jg_usage_t used;
    bool found;
} usage_probe_t;

static void probe_usage(void *ctx, const jg_sched_infra_t *info)
{
    usage_probe_t *p = ctx;
    if (strcmp(info->name, p->name) == 0 && info->used) {
        p->used = *info->used;      /* shallow: read at once */
        p->found = true;
    }
}

static const jg_usage_t *usage_of(const char *name)
{
    static usage_probe_t p;
    p = (usage_probe_t){.name = name};
    jg_sched_foreach_infra(sched, probe_usage, &p);
    return p.found ? &p.used : NULL;
}

static void event(jg_backend_event_type_t type, int64_t id, int attempt, int exit_code)
{
    jg_backend_event_t ev = {.type = type, .group_id = id, .job_index = 0, .rank = 0,
                             .attempt = attempt, .exit_code = exit_code, .handle = "h"};
    jg_sched_backend_event(sched, &ev);
}

/* Started, through setup and the barrier: the group RUNNING. */
static void run_attempt(int64_t id, int attempt)
{
    event(JG_BACKEND_NODE_STARTED, id, attempt, 0);
    event(JG_BACKEND_SETUP_DONE, id, attempt, 0);
}

static jg_state_t group_state(int64_t id, char *reason, size_t len)
{
    jg_group_row_t row;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_get_group(store, id, &row, &err), 0, "%s", err.text);
    jg_state_t st = row.state;
    if (reason)
        snprintf(reason, len, "%s", row.reason ? row.reason : "");
    jg_group_row_clear(&row);
    return st;
}

static jg_job_row_t job_row(int64_t id)
{
    jg_job_row_t *jobs;
    size_t n;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_list_jobs(store, id, &jobs, &n, &err), 0, "%s", err.text);
    cr_assert_eq(n, 1);
    jg_job_row_t j = jobs[0];
    jobs[0].name = NULL;
    jobs[0].reason = NULL;
    jg_job_rows_free(jobs, n);
    return j;
}

/* ---- a relaunch that cannot start ------------------------------------------ */

Test(sched, a_relaunch_the_backend_refuses_ends_the_job_and_the_group)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    cr_assert_eq(group_state(id, NULL, 0), JG_RUNNING);
    fake.refuse_launch_from = 2;
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);    /* job_recovery: restart at once */
    cr_assert_eq(fake.launches, 2, "the job was relaunched");
    cr_expect_eq(jg_sched_active_count(sched), 0, "the group is over");
    char reason[512];
    cr_expect_eq(group_state(id, reason, sizeof reason), JG_FAILED, "group %s (%s)",
                 jg_state_name(group_state(id, NULL, 0)), reason);
    jg_job_row_t j = job_row(id);
    cr_expect_eq(j.state, JG_FAILED, "job %s", jg_state_name(j.state));
    cr_expect(strstr(j.reason, "launch failed: the scripted backend refuses launch 2"),
              "job reason: %s", j.reason);
    free(j.name);
    free(j.reason);
}

Test(sched, a_relaunch_whose_nodes_fail_during_the_launch_ends_the_job_and_the_group)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    fake.fail_nodes_from = 2;
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);
    cr_assert_eq(fake.launches, 2, "the job was relaunched");
    cr_expect_eq(jg_sched_active_count(sched), 0, "the group is over");
    cr_expect_eq(group_state(id, NULL, 0), JG_FAILED);
    jg_job_row_t j = job_row(id);
    cr_expect_eq(j.state, JG_FAILED, "job %s", jg_state_name(j.state));
    cr_expect(strstr(j.reason, "the scripted node cannot be created"), "job reason: %s", j.reason);
    free(j.name);
    free(j.reason);
}

/* Restarts after a short delay: the policy's decision, not default's. */
static const char *DELAYED =
    "return {\n"
    "  on_node_exit = function(group, job, event)\n"
    "    if event.exit_code == 0 then return 'continue' end\n"
    "    return { action = 'restart_job', count = 'restarts', delay = %s }\n"
    "  end,\n"
    "}\n";

static const own_policy_t *delayed_policy(const char *delay)
{
    char lua[512];
    snprintf(lua, sizeof lua, DELAYED, delay);
    return own_policy("delayed", lua);
}

Test(sched, a_relaunch_after_a_delay_is_announced_to_watchers)
{
    int64_t id = submit(delayed_policy("0.05"));
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);
    cr_assert_eq(fake.launches, 1, "the restart waits for its delay");
    changes = 0;
    run_for(300);
    cr_assert_eq(fake.launches, 2, "the job was relaunched once the delay ended");
    cr_expect_eq(fake.last_attempt, 2);
    cr_expect_gt(changes, 0, "watchers were told of the relaunch");
}

Test(sched, a_restart_asked_for_during_a_relaunch_is_carried_out)
{
    int64_t id = submit(delayed_policy("0"));
    run_attempt(id, 1);
    fake.exit_in_launch = 2;
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);
    cr_assert_eq(fake.launches, 2, "the job was relaunched");
    run_for(200);
    cr_expect_eq(fake.launches, 3, "the restart asked for inside launch 2 was carried out");
    cr_expect_eq(fake.last_attempt, 3);
    cr_expect_eq(jg_sched_active_count(sched), 1);
}

/* ---- recovery ----------------------------------------------------------------- */

Test(sched, a_group_whose_recovery_fails_frees_what_it_held)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    cr_assert_eq(group_state(id, NULL, 0), JG_RUNNING);
    fake.refuse_reattach = true;
    restart_sched();
    char reason[512];
    cr_assert_eq(group_state(id, reason, sizeof reason), JG_FAILED, "%s", reason);
    cr_expect(strstr(reason, "cannot find group"), "reason: %s", reason);
    cr_expect_eq(jg_sched_active_count(sched), 0);
    const jg_usage_t *used = usage_of("fake");
    cr_assert_not_null(used);
    cr_expect_eq(used->cpus, 0, "the failed group still holds %g cpus", used->cpus);
}

Test(sched, a_restart_waiting_for_its_delay_survives_a_daemon_restart)
{
    int64_t id = submit(delayed_policy("0.3"));
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);
    jg_job_row_t j = job_row(id);
    cr_assert_eq(j.state, JG_RECOVERING, "job %s", jg_state_name(j.state));
    free(j.name);
    free(j.reason);
    fake.launches = 0;
    restart_sched();
    cr_expect_eq(jg_sched_active_count(sched), 1, "the group is still active");
    cr_assert_eq(fake.launches, 0, "the restart kept its delay across the daemon restart");
    run_for(600);
    cr_assert_eq(fake.launches, 1, "the job was relaunched once the delay ended");
    cr_expect_eq(fake.last_attempt, 2);
    j = job_row(id);
    cr_expect_eq(j.attempt, 2);
    cr_expect_eq(j.restarts, 1, "charged to restarts, as the policy decided");
    free(j.name);
    free(j.reason);
    run_attempt(id, 2);
    event(JG_BACKEND_NODE_EXITED, id, 2, 0);
    cr_expect_eq(group_state(id, NULL, 0), JG_SUCCEEDED);
}

/* ---- admission ---------------------------------------------------------------- */

/* Restarts the scheduler under the config.yaml text; the test fails if it
 * does not parse. */
static void restart_with_config(const char *text)
{
    jg_spec_errors_t errs = {0};
    config = jg_config_parse(text, strlen(text), "config.yaml", &errs);
    cr_assert_not_null(config, "%s", errs.count ? errs.messages[0] : "?");
    jg_spec_errors_free(&errs);
    restart_sched();
}

Test(sched, a_configured_admin_is_an_admin_to_the_policy)
{
    restart_with_config("admins: [alice]\n");
    const own_policy_t *policy = own_policy("admins-only",
        "return {\n"
        "  on_submit = function(group, user)\n"
        "    if user.admin then return true end\n"
        "    return nil, user.name .. ' is no admin'\n"
        "  end,\n"
        "}\n");
    jg_error_t err = {{0}};
    cr_expect_gt(submit_as(policy, "alice", 54321, &err), 0, "alice (in admins): %s", err.text);
    cr_expect_eq(submit_as(policy, "bob", 54322, &err), 0, "bob (not in admins) was admitted");
    cr_expect(strstr(err.text, "bob is no admin"), "bob's refusal: %s", err.text);
}

/* ---- more harness: any spec, any node, the store's rows --------------------- */

/* Submits yaml as user (with the test's own uid) and runs a pass; the test
 * fails if the submit is refused. */
static int64_t submit_yaml_as(const char *yaml, const char *user)
{
    jg_group_spec_t *spec = parse_spec(yaml);
    int64_t id = 0;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_submit(sched, spec, getuid(), getgid(), user, &id, &err), 0, "%s",
                 err.text);
    jg_sched_pass(sched);
    return id;
}

static int64_t submit_yaml(const char *yaml)
{
    return submit_yaml_as(yaml, "alice");
}

static void node_event(jg_backend_event_type_t type, int64_t id, int job, int rank, int attempt,
                       int exit_code, bool in_setup)
{
    jg_backend_event_t ev = {.type = type, .group_id = id, .job_index = job, .rank = rank,
                             .attempt = attempt, .exit_code = exit_code, .in_setup = in_setup,
                             .handle = "h", .reason = type == JG_BACKEND_NODE_LOST ? "gone" : NULL};
    jg_sched_backend_event(sched, &ev);
}

/* Job index of group id, from the store (name and reason freed). */
static jg_job_row_t job_at(int64_t id, int index)
{
    jg_job_row_t *jobs;
    size_t n;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_list_jobs(store, id, &jobs, &n, &err), 0, "%s", err.text);
    cr_assert_gt(n, (size_t)index);
    jg_job_row_t j = jobs[index];
    jg_job_rows_free(jobs, n);
    j.name = j.reason = NULL;
    return j;
}

static jg_state_t node_state(int64_t id, int job, int rank)
{
    jg_node_row_t *nodes;
    size_t n;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_list_nodes(store, id, &nodes, &n, &err), 0, "%s", err.text);
    jg_state_t st = JG_STATE_COUNT;
    for (size_t i = 0; i < n; i++)
        if (nodes[i].job_index == job && nodes[i].rank == rank)
            st = nodes[i].state;
    jg_node_rows_free(nodes, n);
    return st;
}

static size_t event_count(int64_t id)
{
    jg_event_row_t *ev;
    size_t n;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_list_events(store, id, &ev, &n, &err), 0, "%s", err.text);
    jg_event_rows_free(ev, n);
    return n;
}

/* A full disk: the store file is capped at its size and what room is left in
 * its pages is filled, so the next write that adds a row fails. */
static void fill_store(int64_t id)
{
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_limit_pages(store, 1, &err), 0, "%s", err.text);
    static const size_t sizes[] = {3000, 1000, 300, 100, 30, 10, 1};
    char filler[3001];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        memset(filler, 'f', sizes[k]);
        filler[sizes[k]] = '\0';
        for (int i = 0; i < 100000; i++)
            if (jg_store_add_event(store, id, "filler", "x", filler, 1, &err) < 0)
                break;
    }
    cr_assert(strstr(err.text, "full"), "the store did not fill up: %s", err.text);
}

static void unfill_store(void)
{
    jg_error_t err = {{0}};
    cr_assert_eq(jg_store_limit_pages(store, 1 << 30, &err), 0, "%s", err.text);
}

#define TWO_NODES                                                                             \
    "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n---\n"                         \
    "name: main\nnum_nodes: 2\nresources:\n  cpus: 1\nrun: 'true'\n"

/* ---- store failures ----------------------------------------------------------- */

Test(sched, a_cancel_the_store_cannot_record_fails_and_changes_nothing)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    cr_assert_eq(group_state(id, NULL, 0), JG_RUNNING);
    fill_store(id);
    int stops = fake.stops;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, id, "cancelled by alice", &err), JG_SCHED_STORE_FAILED,
                 "the cancel was acknowledged");
    cr_expect(strstr(err.text, "was not cancelled") && strstr(err.text, "full"), "%s", err.text);
    cr_expect_eq(fake.stops, stops, "a node was stopped for a cancel that was not recorded");
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING);
    /* Memory kept the old state too: the group runs on and ends as it would. */
    unfill_store();
    restart_sched();
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING);
    cr_assert_eq(jg_sched_cancel(sched, id, "cancelled by alice", &err), 0, "%s", err.text);
    cr_expect_eq(group_state(id, NULL, 0), JG_CANCELLING);
    event(JG_BACKEND_NODE_EXITED, id, 1, 143);
    cr_expect_eq(group_state(id, NULL, 0), JG_CANCELLED);
}

Test(sched, a_pending_cancel_the_store_cannot_record_leaves_the_group_pending)
{
    jg_capacity_t cap = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 2, .max_node_memory_gb = 64};
    fake.capacity = &cap;
    int64_t first = submit(NULL);
    int64_t second = submit(NULL);
    cr_assert_eq(group_state(second, NULL, 0), JG_PENDING);
    fill_store(second);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, second, "cancelled by alice", &err), JG_SCHED_STORE_FAILED);
    cr_expect_eq(jg_sched_active_count(sched), 2);
    unfill_store();
    run_attempt(first, 1);
    event(JG_BACKEND_NODE_EXITED, first, 1, 0);
    cleanup_reported();
    jg_sched_pass(sched);
    cr_expect_eq(group_state(second, NULL, 0), JG_STARTING, "the uncancelled group did not start");
}

Test(sched, an_event_the_store_misses_is_written_again_once_it_can)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    fill_store(id);
    event(JG_BACKEND_NODE_EXITED, id, 1, 0);
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING, "the failed transaction left a trace");
    run_for(1200);
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING, "still full");
    cr_expect_eq(jg_sched_active_count(sched), 1, "the group left memory before the store had it");
    unfill_store();
    run_for(1500);
    cr_expect_eq(group_state(id, NULL, 0), JG_SUCCEEDED);
    cr_expect_eq(node_state(id, 0, 0), JG_SUCCEEDED);
    cr_expect_eq(jg_sched_active_count(sched), 0);
}

Test(sched, a_launch_the_store_cannot_record_starts_nothing_until_it_can)
{
    jg_capacity_t cap = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 2, .max_node_memory_gb = 64};
    fake.capacity = &cap;
    int64_t first = submit(NULL);
    int64_t second = submit(NULL);
    run_attempt(first, 1);
    event(JG_BACKEND_NODE_EXITED, first, 1, 0);
    fill_store(second);
    jg_sched_pass(sched);
    cr_expect_eq(fake.launches, 1, "a group was launched that the store does not know of");
    cr_expect_eq(group_state(second, NULL, 0), JG_PENDING);
    unfill_store();
    run_for(1300);
    jg_sched_pass(sched);
    cr_expect_eq(fake.launches, 2);
    cr_expect_eq(group_state(second, NULL, 0), JG_STARTING);
}

/* ---- exit codes and counters ---------------------------------------------------- */

Test(sched, the_job_exit_is_the_failing_ranks_not_a_stopped_siblings_even_after_a_restart)
{
    int64_t id = submit_yaml(TWO_NODES);
    for (int r = 0; r < 2; r++) {
        node_event(JG_BACKEND_NODE_STARTED, id, 0, r, 1, 0, false);
        node_event(JG_BACKEND_SETUP_DONE, id, 0, r, 1, 0, false);
    }
    cr_assert_eq(group_state(id, NULL, 0), JG_RUNNING);
    node_event(JG_BACKEND_NODE_EXITED, id, 0, 0, 1, 3, false);     /* no job_recovery: fails */
    cr_expect_eq(job_at(id, 0).exit_code, 3, "the failing rank's exit is stored at once");
    restart_sched();
    node_event(JG_BACKEND_NODE_EXITED, id, 0, 1, 1, 143, false);   /* stopped for it */
    jg_job_row_t j = job_at(id, 0);
    cr_expect_eq(j.state, JG_FAILED, "job %s", jg_state_name(j.state));
    cr_expect_eq(j.exit_code, 3, "job exit %d", j.exit_code);
    cr_expect_eq(group_state(id, NULL, 0), JG_FAILED);
}

Test(sched, a_job_whose_ranks_all_succeed_exits_0)
{
    int64_t id = submit_yaml(TWO_NODES);
    for (int r = 0; r < 2; r++) {
        node_event(JG_BACKEND_NODE_STARTED, id, 0, r, 1, 0, false);
        node_event(JG_BACKEND_SETUP_DONE, id, 0, r, 1, 0, false);
    }
    node_event(JG_BACKEND_NODE_EXITED, id, 0, 1, 1, 0, false);
    node_event(JG_BACKEND_NODE_EXITED, id, 0, 0, 1, 0, false);
    cr_expect_eq(job_at(id, 0).exit_code, 0);
    cr_expect_eq(group_state(id, NULL, 0), JG_SUCCEEDED);
}

Test(sched, a_restart_in_place_is_counted_and_the_count_survives_a_daemon_restart)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);       /* max_restarts_on_errors: 1 */
    cr_assert_eq(fake.launches, 2);
    jg_job_row_t j = job_at(id, 0);
    cr_expect_eq(j.attempt, 2);
    cr_expect_eq(j.restarts, 1);
    cr_expect_eq(j.state, JG_RECOVERING, "job %s", jg_state_name(j.state));
    restart_sched();
    run_attempt(id, 2);
    event(JG_BACKEND_NODE_EXITED, id, 2, 3);       /* the limit reached: the job fails */
    j = job_at(id, 0);
    cr_expect_eq(j.state, JG_FAILED, "job %s", jg_state_name(j.state));
    cr_expect_eq(j.restarts, 1);
    cr_expect_eq(j.exit_code, 3);
}

Test(sched, a_lost_node_is_recovered_and_counted_as_a_recovery)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_LOST, id, 1, 0);
    cr_assert_eq(fake.launches, 2, "the job was relaunched");
    jg_job_row_t j = job_at(id, 0);
    cr_expect_eq(j.recoveries, 1);
    cr_expect_eq(j.restarts, 0);
    cr_expect_eq(j.attempt, 2);
    run_attempt(id, 2);
    cr_expect_eq(job_at(id, 0).state, JG_RUNNING);
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING);
}

Test(sched, a_free_restart_is_counted_apart)
{
    const char *yaml = "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n---\n"
                       "name: main\njob_recovery:\n  recover_on_exit_codes: [7]\nrun: 'true'\n";
    int64_t id = submit_yaml(yaml);
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_EXITED, id, 1, 7);
    cr_assert_eq(fake.launches, 2);
    jg_job_row_t j = job_at(id, 0);
    cr_expect_eq(j.free_restarts, 1);
    cr_expect_eq(j.restarts + j.recoveries, 0);
}

/* ---- why a group waits ------------------------------------------------------------ */

Test(sched, a_group_behind_a_larger_one_says_whom_it_waits_for_and_says_it_once)
{
    jg_capacity_t cap = {.cpus = 4, .memory_gb = 64, .max_node_cpus = 4, .max_node_memory_gb = 64};
    fake.capacity = &cap;
    int64_t running = submit(NULL);                                  /* 2 of 4 cpus */
    int64_t big = submit_yaml("---\nname: big\nplacement: SAME_INFRA\nexecution: parallel\n---\n"
                              "name: main\nresources:\n  cpus: 4\nrun: 'true'\n");
    int64_t small = submit(NULL);                                    /* would fit */
    char reason[512];
    cr_assert_eq(group_state(big, reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "needs 4 cpus, 2 of 4 free"), "big: %s", reason);
    cr_assert_eq(group_state(small, reason, sizeof reason), JG_PENDING);
    char want[64];
    snprintf(want, sizeof want, "waiting behind group %lld (needs 4 cpus", (long long)big);
    cr_expect(strstr(reason, want), "small: %s", reason);
    size_t events = event_count(small);
    jg_error_t err = {{0}};
    submit(NULL);       /* another pass: nothing changed for small */
    cr_expect_eq(event_count(small), events, "an unchanged reason was written again");
    cr_assert_eq(jg_sched_cancel(sched, big, "cancelled", &err), 0, "%s", err.text);
    jg_sched_pass(sched);
    cr_expect_eq(group_state(small, NULL, 0), JG_STARTING);
    (void)running;
}

/* ---- the state machine ------------------------------------------------------------- */

Test(sched, a_failed_setup_fails_the_group_FAILED_SETUP_and_stops_the_rest)
{
    int64_t id = submit_yaml(TWO_NODES);
    node_event(JG_BACKEND_NODE_STARTED, id, 0, 0, 1, 0, false);
    node_event(JG_BACKEND_NODE_STARTED, id, 0, 1, 1, 0, false);
    node_event(JG_BACKEND_SETUP_DONE, id, 0, 1, 1, 0, false);
    node_event(JG_BACKEND_NODE_EXITED, id, 0, 0, 1, 5, true);
    cr_expect_gt(fake.stops, 0, "the other node was not stopped");
    cr_expect_eq(group_state(id, NULL, 0), JG_STARTING, "ended before every node was down");
    node_event(JG_BACKEND_NODE_EXITED, id, 0, 1, 1, 143, false);
    cr_expect_eq(group_state(id, NULL, 0), JG_FAILED_SETUP);
    jg_job_row_t j = job_at(id, 0);
    cr_expect_eq(j.state, JG_FAILED_SETUP);
    cr_expect_eq(j.exit_code, 5);
}

Test(sched, a_group_that_can_never_fit_fails_FAILED_NO_RESOURCE_without_a_launch)
{
    jg_capacity_t cap = {.cpus = 1, .memory_gb = 64, .max_node_cpus = 1, .max_node_memory_gb = 64};
    fake.capacity = &cap;
    int64_t id = submit(NULL);      /* 2 cpus on a 1-cpu backend */
    char reason[512];
    cr_expect_eq(group_state(id, reason, sizeof reason), JG_FAILED_NO_RESOURCE, "%s", reason);
    cr_expect_eq(job_at(id, 0).state, JG_FAILED_NO_RESOURCE);
    cr_expect_eq(node_state(id, 0, 0), JG_FAILED_NO_RESOURCE);
    cr_expect_eq(fake.launches, 0);
    cr_expect_eq(jg_sched_active_count(sched), 0);
}

Test(sched, the_barrier_waits_for_every_job)
{
    const char *yaml = "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n---\n"
                       "name: a\nrun: 'true'\n---\nname: b\nrun: 'true'\n";
    int64_t id = submit_yaml(yaml);
    node_event(JG_BACKEND_NODE_STARTED, id, 0, 0, 1, 0, false);
    node_event(JG_BACKEND_SETUP_DONE, id, 0, 0, 1, 0, false);
    cr_expect_eq(node_state(id, 0, 0), JG_READY);
    cr_expect_eq(group_state(id, NULL, 0), JG_STARTING, "released before job b was ready");
    node_event(JG_BACKEND_NODE_STARTED, id, 1, 0, 1, 0, false);
    node_event(JG_BACKEND_SETUP_DONE, id, 1, 0, 1, 0, false);
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING);
    cr_expect_eq(node_state(id, 0, 0), JG_RUNNING);
    cr_expect_eq(job_at(id, 1).state, JG_RUNNING);
}

static const char *PRIMARY =
    "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\nprimary_tasks: [client]\n"
    "termination_delay: %s\n---\nname: client\nrun: 'true'\n---\nname: server\nrun: 'true'\n";

static int64_t primary_group(const char *delay)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, PRIMARY, delay);
    int64_t id = submit_yaml(yaml);
    for (int job = 0; job < 2; job++) {
        node_event(JG_BACKEND_NODE_STARTED, id, job, 0, 1, 0, false);
        node_event(JG_BACKEND_SETUP_DONE, id, job, 0, 1, 0, false);
    }
    cr_assert_eq(group_state(id, NULL, 0), JG_RUNNING);
    return id;
}

Test(sched, an_auxiliary_job_is_stopped_after_the_termination_delay_once_the_primary_succeeds)
{
    int64_t id = primary_group("0.2s");
    node_event(JG_BACKEND_NODE_EXITED, id, 0, 0, 1, 0, false);
    cr_expect_eq(job_at(id, 0).state, JG_SUCCEEDED);
    cr_expect_eq(fake.stops, 0, "stopped before its termination_delay");
    run_for(500);
    cr_assert_eq(fake.stops, 1, "the auxiliary job was not stopped after its delay");
    cr_expect_eq(fake.last_stop_job, 1);
    node_event(JG_BACKEND_NODE_EXITED, id, 1, 0, 1, 143, false);
    cr_expect_eq(job_at(id, 1).state, JG_CANCELLED);
    cr_expect_eq(group_state(id, NULL, 0), JG_SUCCEEDED);
}

Test(sched, an_auxiliary_job_is_stopped_at_once_when_the_primary_fails)
{
    int64_t id = primary_group("60s");
    node_event(JG_BACKEND_NODE_EXITED, id, 0, 0, 1, 2, false);
    cr_assert_eq(fake.last_stop_job, 1, "the auxiliary job was not stopped at once");
    node_event(JG_BACKEND_NODE_EXITED, id, 1, 0, 1, 143, false);
    cr_expect_eq(group_state(id, NULL, 0), JG_FAILED);
    cr_expect_eq(job_at(id, 0).exit_code, 2);
}

Test(sched, a_cancel_during_a_restart_delay_ends_the_group_without_a_relaunch)
{
    int64_t id = submit(delayed_policy("0.2"));
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);
    cr_assert_eq(job_at(id, 0).state, JG_RECOVERING);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, id, "cancelled by alice", &err), 0, "%s", err.text);
    cr_expect_eq(group_state(id, NULL, 0), JG_CANCELLED);
    run_for(400);
    cr_expect_eq(fake.launches, 1, "relaunched after the cancel");
    cr_expect_eq(jg_sched_active_count(sched), 0);
}

Test(sched, a_cancel_during_a_recovery_stops_it_and_ends_CANCELLED)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_LOST, id, 1, 0);
    cr_assert_eq(fake.launches, 2);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, id, "cancelled by alice", &err), 0, "%s", err.text);
    cr_expect_eq(group_state(id, NULL, 0), JG_CANCELLING);
    event(JG_BACKEND_NODE_EXITED, id, 2, 143);
    cr_expect_eq(group_state(id, NULL, 0), JG_CANCELLED);
    cr_expect_eq(job_at(id, 0).state, JG_CANCELLED);
}

/* ---- a daemon restart in each state ------------------------------------------------ */

Test(sched, a_daemon_restart_keeps_a_pending_group_pending_and_it_starts_later)
{
    jg_capacity_t cap = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 2, .max_node_memory_gb = 64};
    fake.capacity = &cap;
    int64_t first = submit(NULL);
    int64_t second = submit(NULL);
    restart_sched();
    jg_sched_pass(sched);
    cr_expect_eq(group_state(second, NULL, 0), JG_PENDING);
    run_attempt(first, 1);
    event(JG_BACKEND_NODE_EXITED, first, 1, 0);
    cleanup_reported();
    jg_sched_pass(sched);
    cr_expect_eq(group_state(second, NULL, 0), JG_STARTING);
}

Test(sched, a_daemon_restart_during_setup_reattaches_and_the_barrier_still_opens)
{
    int64_t id = submit(NULL);
    event(JG_BACKEND_NODE_STARTED, id, 1, 0);
    restart_sched();
    cr_expect_eq(fake.reattached, 1);
    cr_expect_eq(group_state(id, NULL, 0), JG_STARTING);
    event(JG_BACKEND_SETUP_DONE, id, 1, 0);
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING);
}

Test(sched, a_daemon_restart_while_running_reattaches_and_the_group_ends)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    restart_sched();
    cr_expect_eq(fake.reattached, 1);
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING);
    event(JG_BACKEND_NODE_EXITED, id, 1, 0);
    cr_expect_eq(group_state(id, NULL, 0), JG_SUCCEEDED);
    cr_expect_eq(job_at(id, 0).exit_code, 0);
}

Test(sched, a_daemon_restart_while_cancelling_stops_again_and_ends_CANCELLED)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, id, "cancelled by alice", &err), 0, "%s", err.text);
    restart_sched();
    cr_expect_eq(group_state(id, NULL, 0), JG_CANCELLING);
    cr_expect_gt(fake.stops, 1, "the stop was not issued again after the restart");
    event(JG_BACKEND_NODE_EXITED, id, 1, 137);
    cr_expect_eq(group_state(id, NULL, 0), JG_CANCELLED);
}

/* ---- a user's own policy decides for its own group only -------------------- */

/* Issue 10: a policy whose priority() says -1e300 was used to rank its group
 * against other users' groups.  Room for one group at a time: bob's group,
 * submitted before mallory's, starts first whatever mallory's policy says. */
Test(sched, a_users_own_priority_does_not_jump_the_queue)
{
    static jg_capacity_t room_for_one = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 2,
                                               .max_node_memory_gb = 64, .source = "config"};
    fake.capacity = &room_for_one;
    jg_error_t err = {{0}};
    int64_t first = submit_as(NULL, "alice", 1001, &err);
    cr_assert_gt(first, 0, "%s", err.text);
    cr_assert_eq(group_state(first, NULL, 0), JG_STARTING);
    int64_t bob = submit_as(NULL, "bob", 1002, &err);
    cr_assert_gt(bob, 0, "%s", err.text);
    int64_t mallory = submit_as(own_policy("me-first",
                                           "return { priority = function() return -1e300 end }"),
                                "mallory", 1003, &err);
    cr_assert_gt(mallory, 0, "%s", err.text);
    cr_assert_eq(group_state(bob, NULL, 0), JG_PENDING);
    cr_assert_eq(group_state(mallory, NULL, 0), JG_PENDING);

    run_attempt(first, 1);
    event(JG_BACKEND_NODE_EXITED, first, 1, 0);
    cr_assert_eq(group_state(first, NULL, 0), JG_SUCCEEDED);
    cleanup_reported();
    jg_sched_pass(sched);
    cr_expect_eq(group_state(bob, NULL, 0), JG_STARTING, "bob's earlier group starts first");
    cr_expect_eq(group_state(mallory, NULL, 0), JG_PENDING, "mallory's group jumped the queue");
}

/* The daemon never opens a file a request names: a path as a group's policy
 * is refused, nothing is stored. */
Test(sched, a_policy_path_in_a_submitted_group_is_refused)
{
    const char *yaml = "---\nname: g\npolicy: /etc/shadow\n---\nname: main\nrun: 'true'\n";
    jg_group_spec_t *spec = parse_spec(yaml);
    int64_t id = 0;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_submit(sched, spec, 1003, 1003, "mallory", &id, &err), -1);
    cr_expect(strstr(err.text, "policy '/etc/shadow' is a file path: jgschedd never opens"),
              "%s", err.text);
    cr_expect_eq(jg_sched_active_count(sched), 0);
}

/* A submitted policy's load error quotes the submitter's own text only. */
Test(sched, a_submitted_policy_that_does_not_load_is_refused_with_its_own_error)
{
    jg_error_t err = {{0}};
    cr_assert_eq(submit_as(own_policy("broken", "return { on_submit = function() 'x end }"),
                           "mallory", 1003, &err), 0);
    cr_expect(strstr(err.text, "broken.lua:1:"), "%s", err.text);
    cr_expect_eq(jg_sched_active_count(sched), 0);
}

/* Issue 11: a submitted policy whose on_submit returns the group unchanged was
 * recorded as a hook failure ("on_submit set policy to '/abs/x.lua', which is
 * not a policy name") while `jgsched policy test` accepted it.  Sent as text
 * under its label, the group's policy is a name: nothing to report. */
Test(sched, a_submitted_policy_returning_the_group_unchanged_is_no_error)
{
    jg_error_t err = {{0}};
    int64_t id = submit_as(own_policy("pass-through",
                                      "return { on_submit = function(group) return group end }"),
                           "mallory", 1003, &err);
    cr_assert_gt(id, 0, "%s", err.text);
    jg_event_row_t *events;
    size_t n;
    cr_assert_eq(jg_store_list_events(store, id, &events, &n, &err), 0, "%s", err.text);
    for (size_t i = 0; i < n; i++)
        cr_expect(strcmp(events[i].subject, "policy") != 0, "policy event: %s: %s",
                  events[i].what, events[i].reason);
    jg_event_rows_free(events, n);
}

/* A group stored by an older jgschedd with a path as its policy: after the
 * upgrade the path is not read; the default policy governs the group, and an
 * event says why. */
Test(sched, a_group_stored_with_a_policy_path_runs_under_the_default_policy)
{
    int64_t id = submit(NULL);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    char *sql = sqlite3_mprintf("UPDATE groups SET spec_json = json_set(spec_json, '$.policy', "
                                "'/home/mallory/x.lua') WHERE id = %lld", (long long)id);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_free(sql);
    sqlite3_close(db);
    restart_sched();
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);
    jg_job_row_t j = job_row(id);
    cr_expect_eq(j.state, JG_RECOVERING, "default's job_recovery restarts it: %s",
                 jg_state_name(j.state));
    free(j.name);
    free(j.reason);
    jg_error_t err = {{0}};
    jg_event_row_t *events;
    size_t n;
    cr_assert_eq(jg_store_list_events(store, id, &events, &n, &err), 0, "%s", err.text);
    bool said = false;
    for (size_t i = 0; i < n; i++)
        said = said || (strcmp(events[i].subject, "policy") == 0 &&
                        strstr(events[i].reason, "names its policy by the path "
                                                 "/home/mallory/x.lua, which this jgschedd no "
                                                 "longer reads"));
    jg_event_rows_free(events, n);
    cr_expect(said, "no policy event explains the fallback to the default policy");
}

/* ---- admission arithmetic on what a user wrote ------------------------------ */

/* Parses with node bounds wide open: these tests reach admission with
 * numbers the parser's spec_limits would refuse first. */
static jg_group_spec_t *parse_or_fail(const char *yaml)
{
    jg_spec_errors_t errs = {0};
    jg_spec_limits_t wide = jg_spec_limits_default();
    wide.max_nodes_per_job = wide.max_nodes_per_group = INT32_MAX;
    jg_group_spec_t *spec = jg_spec_parse_with(yaml, strlen(yaml), "t.yaml", &wide, &errs);
    cr_assert_not_null(spec, "%s", errs.count ? errs.messages[0] : "no spec");
    jg_spec_errors_free(&errs);
    return spec;
}

/* Found by tests/fuzz/fuzz_spec: 29 digits of cpus made the reason's number a
 * double -> long long conversion out of range (undefined behaviour). */
Test(sched, a_node_asking_more_cpus_than_a_long_long_holds_is_refused_with_its_number)
{
    jg_group_spec_t *spec = parse_or_fail("---\nname: g\nexecution: parallel\n---\nname: a\n"
                                          "resources: {cpus: 99999999999999999999999999999}\n");
    jg_capacity_t cap = {.cpus = 8, .memory_gb = 16, .max_node_cpus = 8, .max_node_memory_gb = 16};
    char why[512];
    cr_assert_not(jg_capacity_node_fits(&cap, "local", &spec->jobs[0], why, sizeof why));
    cr_assert(strstr(why, "asks cpus=1e+29 memory=0GB"), "%s", why);
    jg_spec_free(spec);
}

/* Found by tests/fuzz/fuzz_spec: num_nodes x accelerators per node overflowed
 * int (undefined behaviour), and in practice wrapped negative, so a group
 * asking 4e9 GPUs "fitted" 2. */
Test(sched, a_group_asking_more_accelerators_than_an_int_holds_never_fits)
{
    jg_group_spec_t *spec = parse_or_fail("---\nname: g\nexecution: parallel\n---\nname: a\n"
                                          "num_nodes: 2000000000\nresources: {accelerators: T4:2}\n");
    jg_accel_t t4 = {.name = "T4", .count = 2};
    jg_capacity_t cap = {.cpus = 8, .memory_gb = 16, .max_node_cpus = 8, .max_node_memory_gb = 16,
                         .accels = &t4, .n_accels = 1};
    char why[512];
    cr_assert(jg_capacity_node_fits(&cap, "local", &spec->jobs[0], why, sizeof why), "%s", why);
    jg_usage_t idle = {0};
    cr_assert_not(jg_usage_group_fits(&idle, &cap, spec, why, sizeof why));
    cr_assert(strstr(why, "T4, 2 of 2 free"), "%s", why);
    jg_spec_free(spec);
}

/* ---- the backend interface's events (fake_backend.h) ------------------------------ */

Test(sched, a_group_holds_its_resources_until_its_backend_reports_cleaned)
{
    jg_capacity_t cap = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 2, .max_node_memory_gb = 64};
    fake.capacity = &cap;
    fake.slow_stop = true;
    fake.slow_cleanup = true;
    int64_t first = submit(NULL);
    int64_t second = submit(NULL);
    run_attempt(first, 1);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, first, "cancelled by alice", &err), 0, "%s", err.text);
    run_for(20);
    jg_sched_pass(sched);
    cr_expect_eq(group_state(first, NULL, 0), JG_CANCELLING, "ended before its node did");
    cr_expect_eq(group_state(second, NULL, 0), JG_PENDING);
    /* The slow stop completes: the end is written, but cleanup is still running. */
    event(JG_BACKEND_NODE_EXITED, first, 1, 143);
    cr_assert_eq(group_state(first, NULL, 0), JG_CANCELLED, "the end was not written");
    cr_expect_eq(fake.cleanups, 1);
    cr_expect_eq(fake.last_cleanup, first);
    run_for(20);
    jg_sched_pass(sched);
    char reason[512];
    cr_expect_eq(group_state(second, reason, sizeof reason), JG_PENDING,
                 "started before the first group's cleanup completed");
    const jg_usage_t *used = usage_of("fake");
    cr_assert_not_null(used);
    cr_expect_eq(used->cpus, 2, "the cleaning group holds %g cpus", used->cpus);
    fake_backend_cleaned(instances[0], first);
    run_for(20);
    jg_sched_pass(sched);
    cr_expect_eq(group_state(second, NULL, 0), JG_STARTING, "CLEANED did not let it start");
}

Test(sched, a_node_pending_in_the_backend_shows_its_reason_once)
{
    int64_t id = submit(NULL);
    cr_assert_eq(group_state(id, NULL, 0), JG_STARTING);
    size_t before = event_count(id);
    jg_backend_event_t ev = {.type = JG_BACKEND_NODE_PENDING, .group_id = id, .job_index = 0,
                             .rank = 0, .attempt = 1,
                             .reason = "0/3 nodes are available: 3 Insufficient cpu"};
    jg_sched_backend_event(sched, &ev);
    jg_job_row_t j = job_row(id);
    cr_expect(j.reason && strstr(j.reason, "0/3 nodes are available: 3 Insufficient cpu"),
              "job reason: %s", j.reason ? j.reason : "(null)");
    cr_expect_eq(j.state, JG_STARTING, "a pending node changed its job's state");
    free(j.name);
    free(j.reason);
    cr_expect_eq(node_state(id, 0, 0), JG_STARTING);
    size_t after = event_count(id);
    cr_expect_gt(after, before, "the reason was not written");
    jg_sched_backend_event(sched, &ev);
    cr_expect_eq(event_count(id), after, "the same reason was written again");
    ev.reason = "pulling image busybox";
    jg_sched_backend_event(sched, &ev);
    cr_expect_gt(event_count(id), after, "a new reason was not written");
    run_attempt(id, 1);
    cr_expect_eq(group_state(id, NULL, 0), JG_RUNNING);
}

Test(sched, capacity_that_grows_starts_a_waiting_group_and_shrinking_keeps_one_waiting)
{
    jg_capacity_t cap = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 2, .max_node_memory_gb = 64};
    fake.capacity = &cap;
    int64_t first = submit(NULL);
    int64_t second = submit(NULL);
    cr_assert_eq(group_state(second, NULL, 0), JG_PENDING);
    run_for(20);
    jg_sched_pass(sched);
    cr_assert_eq(group_state(second, NULL, 0), JG_PENDING);
    /* A node joins: the waiting group starts once the backend says so. */
    cap.cpus = 4;
    fake_backend_capacity_changed(instances[0]);
    run_for(20);
    jg_sched_pass(sched);
    cr_expect_eq(group_state(second, NULL, 0), JG_STARTING, "grown capacity not used");
    /* It leaves again: a third group waits, with the backend's reason. */
    int64_t third = submit(NULL);
    cap.cpus = 2;
    fake_backend_capacity_changed(instances[0]);
    run_attempt(first, 1);
    event(JG_BACKEND_NODE_EXITED, first, 1, 0);
    run_for(20);
    jg_sched_pass(sched);
    char reason[512];
    cr_expect_eq(group_state(third, reason, sizeof reason), JG_PENDING,
                 "started on capacity that is gone");
    cr_expect(strstr(reason, "waiting for resources: needs 2 cpus, 0 of 2 free"), "reason: %s",
              reason);
}

Test(sched, a_group_the_backend_says_can_never_fit_fails_at_submit)
{
    jg_capacity_t cap = {.cpus = 1, .memory_gb = 64, .max_node_cpus = 8, .max_node_memory_gb = 64};
    fake.capacity = &cap;
    jg_error_t err = {{0}};
    int64_t id = submit_as(NULL, "alice", getuid(), &err);
    cr_assert_gt(id, 0, "%s", err.text);
    char reason[512];
    cr_expect_eq(group_state(id, reason, sizeof reason), JG_FAILED_NO_RESOURCE);
    cr_expect(strstr(reason, "can never start: even on an idle infra fake"), "reason: %s", reason);
    cr_expect_gt(fake.fits, 0, "fit() was not asked");
    cr_expect_eq(fake.launches, 0);
}

/* The stored log of a node, whole (static buffer). */
static const char *stored_log(int64_t id, const char *job, int rank)
{
    static char buf[4096];
    jg_error_t err = {{0}};
    int fd = jg_logstore_open_read(logs, id, job, rank, &err);
    cr_assert_geq(fd, 0, "%s", err.text);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

Test(sched, output_in_pieces_over_two_attempts_is_stored_with_its_attempts)
{
    int64_t id = submit(NULL);
    run_attempt(id, 1);
    fake_backend_log(instances[0], id, 0, 0, 1, "hel");
    fake_backend_log(instances[0], id, 0, 0, 1, "lo\n");
    run_for(20);
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);
    run_for(20);
    cr_assert_eq(fake.last_attempt, 2, "the job was not restarted");
    run_attempt(id, 2);
    fake_backend_log(instances[0], id, 0, 0, 2, "wor");
    fake_backend_log(instances[0], id, 0, 0, 2, "ld\n");
    run_for(20);
    cr_expect_str_eq(stored_log(id, "main", 0), "hello\nworld\n");
    jg_log_attempt_t at[4];
    cr_assert_eq(jg_logstore_attempts(logs, id, "main", 0, at, 4), 2);
    cr_expect(at[0].attempt == 1 && at[0].offset == 0);
    cr_expect(at[1].attempt == 2 && at[1].offset == 6, "attempt 2 starts at %lld",
              (long long)at[1].offset);
    /* A restarted daemon resumes the node's output after what is stored. */
    restart_sched();
    cr_expect_eq(fake.last_log_bytes, 12);
    cr_expect_eq(fake.last_log_bytes_attempt, 6);
    cr_expect_gt(fake.sweeps, 0, "recovery did not sweep the backend");
}

/* Two instances of one kind, e.g. two Kubernetes contexts. */
static void two_contexts(void)
{
    extra_names[0] = "kubernetes/ctx-a";
    extra_names[1] = "kubernetes/ctx-b";
    n_extra = 2;
    restart_sched();
}

static void count_infra(void *ctx, const jg_sched_infra_t *info)
{
    char *names = ctx;
    strcat(names, info->name);
    strcat(names, ";");
}

Test(sched, two_instances_of_a_kind_are_kept_apart)
{
    two_contexts();
    char names[256] = "";
    jg_sched_foreach_infra(sched, count_infra, names);
    cr_expect_str_eq(names, "fake;kubernetes/ctx-a;kubernetes/ctx-b;");
    const char *yaml = "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n---\n"
                       "name: main\nresources:\n  cpus: 2\n"
                       "  infra: kubernetes/ctx-b\nrun: 'true'\n";
    int64_t id = submit_yaml(yaml);
    cr_assert_eq(extra_states[1].launches, 1, "not launched on ctx-b");
    cr_expect_eq(extra_states[0].launches, 0, "launched on ctx-a");
    cr_expect_eq(fake.launches, 0);
    cr_expect_str_eq(extra_states[1].last_infra, "kubernetes/ctx-b");
    const jg_usage_t *used = usage_of("kubernetes/ctx-b");
    cr_expect(used && used->cpus == 2, "ctx-b's usage not counted");
    used = usage_of("kubernetes/ctx-a");
    cr_expect(used && used->cpus == 0, "ctx-a's usage counted");
    event(JG_BACKEND_NODE_STARTED, id, 1, 0);
    restart_sched();
    cr_expect_eq(extra_states[1].reattached, 1, "ctx-b did not get its node back");
    cr_expect_eq(extra_states[0].reattached, 0, "ctx-a was given ctx-b's node");
}

Test(sched, the_registry_knows_local_and_kubernetes_when_enabled)
{
    jg_backend_env_t env = {.loop = loop};
    cr_expect(jg_registry_knows(&env, "local"));
    cr_expect_not(jg_registry_knows(&env, "kubernetes"), "kubernetes is off without a config");
    cr_expect_not(jg_registry_knows(&env, "kubernetes/ctx-a"));
    cr_expect_not(jg_registry_knows(&env, "slurm"));
    jg_error_t err = {{0}};
    cr_expect_null(jg_registry_create(&env, "kubernetes/ctx-a", &err));
    cr_expect(strstr(err.text, "disabled"), "%s", err.text);
    cr_expect_null(jg_registry_create(&env, "slurm", &err));
    cr_expect(strstr(err.text, "no such backend kind"), "%s", err.text);
    cr_expect_null(jg_registry_create(&env, "local/other", &err));
    cr_expect(strstr(err.text, "exactly one instance"), "%s", err.text);

    /* Enabled with a kubeconfig that is not there: the error names the file
     * and the field. */
    jg_config_t *config = jg_config_defaults();
    config->kubernetes.enabled = true;
    config->kubernetes.kubeconfig = jg_xstrdup("/nonexistent/jgsched-kubeconfig");
    env.config = config;
    cr_expect(jg_registry_knows(&env, "kubernetes/ctx-a"));
    cr_expect_null(jg_registry_create(&env, "kubernetes/ctx-a", &err));
    cr_expect(strstr(err.text, "/nonexistent/jgsched-kubeconfig") &&
                  strstr(err.text, "backends.kubernetes.kubeconfig"),
              "%s", err.text);
    jg_config_free(config);
}

/* ---- the ranked queue ---------------------------------------------------------- */

/* Submits, as user, a one-node group asking cpus on infra (NULL: any) and
 * runs a pass. */
static int64_t submit_cpus(const char *user, int cpus, const char *infra)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n---\n"
             "name: main\nresources:\n  cpus: %d\n%s%s%srun: 'true'\n", cpus,
             infra ? "  infra: " : "", infra ? infra : "", infra ? "\n" : "");
    return submit_yaml_as(yaml, user);
}

/* A running group ends (its one node exits 0) and its backend reports it cleaned. */
static void end_group(int64_t id)
{
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_EXITED, id, 1, 0);
    cleanup_reported();
    jg_sched_pass(sched);
}

/* fair-share ranks by the owner's usage: when alice's running group ends, her
 * waiting group (submitted before bob's) is ranked again and goes first,
 * although bob's was ahead while alice used the infra. */
Test(sched, a_group_moves_up_the_queue_when_its_owners_usage_drops)
{
    site_policy = "fair-share";
    restart_sched();
    static jg_capacity_t two = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 2,
                                .max_node_memory_gb = 64, .source = "config"};
    fake.capacity = &two;
    int64_t running = submit_cpus("alice", 2, NULL);
    cr_assert_eq(group_state(running, NULL, 0), JG_STARTING);
    int64_t alices = submit_cpus("alice", 2, NULL);
    int64_t bobs = submit_cpus("bob", 2, NULL);
    char reason[512], want[64];
    cr_assert_eq(group_state(bobs, reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "waiting for resources"), "bob's group is not the head: %s", reason);
    cr_assert_eq(group_state(alices, reason, sizeof reason), JG_PENDING);
    snprintf(want, sizeof want, "waiting behind group %lld (", (long long)bobs);
    cr_expect(strstr(reason, want), "alice's group: %s", reason);

    end_group(running);
    cr_expect_eq(group_state(alices, NULL, 0), JG_STARTING, "alice's group was not ranked again");
    cr_expect_eq(group_state(bobs, reason, sizeof reason), JG_PENDING);
    snprintf(want, sizeof want, "waiting for resources");
    cr_expect(strstr(reason, want), "bob's group: %s", reason);
}

/* The priority() calls of the configured policy, counted from its prints. */
static int priority_calls;

static void count_priority(void *ctx, const char *policy, const char *line)
{
    (void)ctx, (void)policy;
    if (strncmp(line, "priority ", 9) == 0)
        priority_calls++;
}

/* priority() is asked when a group is queued and when what it reads changes,
 * never again for unchanged groups on later passes (issue 14: every pass
 * asked it for every pending group). */
Test(sched, priority_is_not_asked_again_for_unchanged_groups)
{
    char path[160];
    snprintf(path, sizeof path, "%s/counting.lua", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("return { priority = function(group, usage)\n"
          "  print('priority ' .. group.id)\n"
          "  return group.submitted\n"
          "end }\n", f);
    fclose(f);
    site_policy = path;
    restart_sched();
    jg_policy_set_log(count_priority, NULL);
    priority_calls = 0;
    static jg_capacity_t two = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 2,
                                .max_node_memory_gb = 64, .source = "config"};
    fake.capacity = &two;
    int64_t running = submit_cpus("alice", 2, NULL);
    cr_assert_eq(group_state(running, NULL, 0), JG_STARTING);
    int first = priority_calls;
    cr_expect_eq(first, 1, "asked %d times for one submit", first);
    for (int i = 0; i < 5; i++)
        submit_cpus("bob", 2, NULL);
    cr_expect_eq(priority_calls, first + 5, "five submits: %d calls", priority_calls - first);
    int queued = priority_calls;
    for (int i = 0; i < 10; i++) {
        fake_backend_capacity_changed(instances[0]);
        run_for(5);
        jg_sched_pass(sched);
    }
    event(JG_BACKEND_NODE_STARTED, running, 1, 0);
    jg_sched_pass(sched);
    cr_expect_eq(priority_calls, queued, "passes over unchanged groups asked priority() %d times",
                 priority_calls - queued);
    /* alice's group ends (she has nothing queued) and bob's first starts: his
     * usage changed, so his four queued groups, and only they, are asked again. */
    end_group(running);
    cr_expect_eq(jg_sched_active_count(sched), 5);
    jg_sched_pass(sched);       /* the one after the start ranks bob's groups again */
    jg_sched_pass(sched);
    cr_expect_eq(priority_calls, queued + 4, "%d calls after one start", priority_calls - queued);
    int after_end = priority_calls;
    jg_sched_reload_policies(sched, NULL, NULL);
    jg_policy_set_log(count_priority, NULL);
    cr_expect_gt(priority_calls, after_end, "a reload did not rank the queue again");
}

/* A blocked backend blocks only its own groups: behind a group too large
 * for "fake" now, a group on another infra starts. */
Test(sched, a_blocked_infra_blocks_only_its_own_queue)
{
    extra_names[0] = "kubernetes/ctx-a";
    n_extra = 1;
    restart_sched();
    static jg_capacity_t two = {.cpus = 2, .memory_gb = 64, .max_node_cpus = 4,
                                .max_node_memory_gb = 64, .source = "config"};
    fake.capacity = &two;
    extra_states[0].capacity = &two;
    int64_t running = submit_cpus("alice", 2, NULL);       /* the first infra offered: fake */
    int64_t big = submit_cpus("alice", 2, NULL);
    int64_t behind = submit_cpus("alice", 1, NULL);
    int64_t elsewhere = submit_cpus("alice", 1, "kubernetes/ctx-a");
    cr_expect_eq(group_state(running, NULL, 0), JG_STARTING);
    cr_expect_eq(group_state(big, NULL, 0), JG_PENDING);
    char reason[512], want[64];
    cr_expect_eq(group_state(behind, reason, sizeof reason), JG_PENDING);
    snprintf(want, sizeof want, "waiting behind group %lld", (long long)big);
    cr_expect(strstr(reason, want), "%s", reason);
    cr_expect_eq(group_state(elsewhere, NULL, 0), JG_STARTING, "blocked by another infra's queue");
    cr_expect_eq(extra_states[0].launches, 1);
    cr_expect_eq(fake.launches, 1);
}

/* A long FIFO queue drains in submit order; the groups right behind the
 * blocked head name it, those far back wait in line; a cancel in the middle
 * and a change of head keep the order and the reasons right. */
Test(sched, a_long_queue_drains_in_order_and_says_why_each_waits)
{
    static jg_capacity_t one = {.cpus = 1, .memory_gb = 64, .max_node_cpus = 1,
                                .max_node_memory_gb = 64, .source = "config"};
    fake.capacity = &one;
    enum { N = 400 };
    static int64_t ids[N];
    int64_t running = submit_cpus("alice", 1, NULL);
    for (int i = 0; i < N; i++)
        ids[i] = submit_cpus(i % 2 ? "bob" : "carol", 1, NULL);
    char reason[512], want[64];
    cr_assert_eq(group_state(ids[0], reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "waiting for resources"), "head: %s", reason);
    snprintf(want, sizeof want, "waiting behind group %lld (", (long long)ids[0]);
    cr_expect_eq(group_state(ids[1], reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, want), "second: %s", reason);
    cr_expect_eq(group_state(ids[N - 1], reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "waiting in line on infra fake"), "last: %s", reason);

    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, ids[2], "cancelled", &err), 0, "%s", err.text);
    end_group(running);
    cr_expect_eq(group_state(ids[0], NULL, 0), JG_STARTING);
    cr_expect_eq(group_state(ids[1], reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "waiting for resources"), "new head: %s", reason);
    snprintf(want, sizeof want, "waiting behind group %lld (", (long long)ids[1]);
    cr_expect_eq(group_state(ids[3], reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, want), "behind the new head: %s", reason);
    int64_t last = ids[0];
    for (int i = 1; i < 40; i++) {
        if (i == 2)
            continue;
        end_group(last);
        cr_assert_eq(group_state(ids[i], NULL, 0), JG_STARTING, "group %d did not start next", i);
        cr_assert_eq(fake.last_group, ids[i]);
        last = ids[i];
    }
    cr_expect_eq(jg_sched_active_count(sched), (size_t)(N - 1 - 38));
}

/* A user at their limit is passed over, not a blocker: the groups of others
 * behind theirs start; once one of theirs ends, the next of theirs starts,
 * and usage released by the end is counted (the per-user records). */
Test(sched, a_user_at_their_limit_is_passed_over_and_resumes_when_a_group_ends)
{
    restart_with_config("limits:\n  users:\n    alice: {running_groups: 1}\n");
    int64_t first = submit_cpus("alice", 1, NULL);
    int64_t second = submit_cpus("alice", 1, NULL);
    int64_t third = submit_cpus("alice", 1, NULL);
    int64_t bobs = submit_cpus("bob", 1, NULL);
    char reason[512];
    cr_expect_eq(group_state(first, NULL, 0), JG_STARTING);
    cr_expect_eq(group_state(second, reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "waiting for user limit: alice runs 1 of at most 1 groups"), "%s",
              reason);
    cr_expect_eq(group_state(third, NULL, 0), JG_PENDING);
    cr_expect_eq(group_state(bobs, NULL, 0), JG_STARTING, "bob waited behind alice's limit");
    end_group(first);
    cr_expect_eq(group_state(second, NULL, 0), JG_STARTING, "alice's next did not start");
    cr_expect_eq(group_state(third, NULL, 0), JG_PENDING, "alice's limit not counted again");
}

/* Many groups of a user at the limit wait off the queue (parked) and come
 * back in order; a cancel, a submit by others and a daemon restart meanwhile
 * change nothing of that. */
Test(sched, a_long_queue_of_a_user_at_the_limit_starts_one_by_one_in_order)
{
    restart_with_config("limits:\n  users:\n    alice: {running_groups: 1}\n");
    enum { N = 300 };
    static int64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = submit_cpus("alice", 1, NULL);
    cr_assert_eq(group_state(ids[0], NULL, 0), JG_STARTING);
    char reason[512];
    cr_expect_eq(group_state(ids[N - 1], reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "waiting for user limit"), "%s", reason);
    int64_t bobs = submit_cpus("bob", 1, NULL);
    cr_expect_eq(group_state(bobs, NULL, 0), JG_STARTING, "bob waited behind alice's queue");
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, ids[1], "cancelled", &err), 0, "%s", err.text);
    restart_sched();
    int64_t last = ids[0];
    for (int i = 2; i < 12; i++) {
        end_group(last);
        cr_assert_eq(group_state(ids[i], NULL, 0), JG_STARTING, "group %d did not start next", i);
        cr_assert_eq(group_state(ids[i + 1], NULL, 0), JG_PENDING, "two of alice's run");
        last = ids[i];
    }
}

static void limit_alice(const char *limits)
{
    jg_spec_errors_t errs = {0};
    char text[256];
    snprintf(text, sizeof text, "limits:\n  users:\n    alice: %s\n", limits);
    config = jg_config_parse(text, strlen(text), "config.yaml", &errs);
    cr_assert_not_null(config, "%s", errs.count ? errs.messages[0] : "?");
    jg_spec_errors_free(&errs);
    restart_sched();
}

/* Each pending group of alice's in ids[0..n) (0: cancelled or started)
 * says it waits for her limit. */
static void expect_parked_reasons(const int64_t *ids, int n, const char *want)
{
    char reason[512];
    for (int i = 0; i < n; i++) {
        if (!ids[i])
            continue;
        cr_assert_eq(group_state(ids[i], reason, sizeof reason), JG_PENDING, "group %d", i);
        cr_assert(strstr(reason, want), "group %d: %s", i, reason);
    }
}

/* alice at her limit (2 running) with many groups parked: as each of hers
 * ends, exactly her best parked group starts (submit order; cancelled ones
 * skipped; those submitted meanwhile behind), bob's groups never wait for
 * her, and every parked group keeps saying why it waits. */
static void parked_groups_start_one_by_one_best_first(void)
{
    limit_alice("{running_groups: 2}");
    enum { N = 150, LATE = 4 };
    static int64_t ids[N + LATE];       /* pending ones; 0 once started or cancelled */
    int n = 0;
    for (int i = 0; i < N; i++) {
        ids[n++] = submit_cpus("alice", 1, NULL);
        if (i % 25 == 0)
            cr_assert_eq(group_state(submit_cpus("bob", 1, NULL), NULL, 0), JG_STARTING,
                         "bob waited behind alice's queue");
    }
    int64_t running[2] = {ids[0], ids[1]};
    cr_assert_eq(group_state(running[0], NULL, 0), JG_STARTING);
    cr_assert_eq(group_state(running[1], NULL, 0), JG_STARTING);
    ids[0] = ids[1] = 0;
    const char *why = "waiting for user limit: alice runs 2 of at most 2 groups";
    expect_parked_reasons(ids, n, why);
    jg_error_t err = {{0}};
    for (int i = 5; i < 8; i++) {
        cr_assert_eq(jg_sched_cancel(sched, ids[i], "cancelled", &err), 0, "%s", err.text);
        ids[i] = 0;
    }
    int next = 2;
    for (int turn = 0; turn < 40; turn++) {
        while (!ids[next])
            next++;
        int launches = fake.launches;
        end_group(running[turn % 2]);
        cr_assert_eq(fake.launches, launches + 1, "turn %d: %d launches", turn,
                     fake.launches - launches);
        cr_assert_eq(fake.last_group, ids[next], "turn %d: %lld started, not %lld", turn,
                     (long long)fake.last_group, (long long)ids[next]);
        cr_assert_eq(group_state(ids[next], NULL, 0), JG_STARTING);
        running[turn % 2] = ids[next];
        ids[next] = 0;
        if (turn == 10) {
            for (int k = 0; k < LATE; k++)
                ids[n++] = submit_cpus("alice", 1, NULL);
        }
        if (turn == 20) {
            cr_assert_eq(group_state(submit_cpus("bob", 1, NULL), NULL, 0), JG_STARTING);
            cr_assert_eq(jg_sched_cancel(sched, ids[n - 1], "cancelled", &err), 0, "%s",
                         err.text);
            ids[n - 1] = 0;
        }
        expect_parked_reasons(ids, n, why);
    }
}

Test(sched, parked_groups_of_a_user_at_the_limit_start_one_by_one_best_first)
{
    parked_groups_start_one_by_one_best_first();
}

/* The same with a ranked policy (fair-share: alice's groups rank by her
 * usage, so among hers submit order decides). */
Test(sched, parked_groups_start_one_by_one_best_first_under_a_ranked_policy)
{
    site_policy = "fair-share";
    parked_groups_start_one_by_one_best_first();
}

/* Over a cpus limit her best parked group is passed over where it stands,
 * and her next one, small enough, starts in its place (as when every parked
 * group came back at once). */
Test(sched, a_parked_group_over_a_cpus_limit_lets_her_smaller_next_one_start)
{
    limit_alice("{running_groups: 2, cpus: 2}");
    int64_t a = submit_cpus("alice", 1, NULL);
    int64_t b = submit_cpus("alice", 1, NULL);
    int64_t big = submit_cpus("alice", 2, NULL);
    int64_t small = submit_cpus("alice", 1, NULL);
    int64_t last = submit_cpus("alice", 1, NULL);
    cr_assert_eq(group_state(b, NULL, 0), JG_STARTING);
    char reason[512];
    cr_assert_eq(group_state(big, reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "alice runs 2 of at most 2 groups"), "%s", reason);
    end_group(a);
    cr_expect_eq(group_state(small, NULL, 0), JG_STARTING, "her smaller next did not start");
    cr_expect_eq(group_state(big, reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "alice runs 2 of at most 2 groups"), "%s", reason);
    cr_expect_eq(group_state(last, reason, sizeof reason), JG_PENDING);
    cr_expect(strstr(reason, "alice runs 2 of at most 2 groups"), "%s", reason);
    end_group(b);
    cr_expect_eq(group_state(last, NULL, 0), JG_STARTING, "passed over again, it holds no one");
    cr_expect_eq(group_state(big, NULL, 0), JG_PENDING);
    end_group(small);
    cr_expect_eq(group_state(big, NULL, 0), JG_PENDING, "over her cpus limit");
    end_group(last);
    cr_expect_eq(group_state(big, NULL, 0), JG_STARTING, "her big one did not start once it fit");
}

/* Her parked groups all cancelled while she is at the limit: once one of
 * her running groups ends she is below it again (and still has a group, so
 * her record stays), and her next submit starts. */
Test(sched, a_user_whose_parked_groups_were_all_cancelled_runs_her_next_submit)
{
    limit_alice("{running_groups: 2}");
    int64_t a = submit_cpus("alice", 1, NULL);
    int64_t b = submit_cpus("alice", 1, NULL);
    int64_t parked = submit_cpus("alice", 1, NULL);
    cr_assert_eq(group_state(b, NULL, 0), JG_STARTING);
    cr_assert_eq(group_state(parked, NULL, 0), JG_PENDING);
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_cancel(sched, parked, "cancelled", &err), 0, "%s", err.text);
    end_group(a);
    int64_t next = submit_cpus("alice", 1, NULL);
    cr_expect_eq(group_state(next, NULL, 0), JG_STARTING, "alice stayed at her limit");
}

/* Parked on two infras: each time one of hers ends, exactly one starts, the
 * best parked one of its infra (which infra goes first is the pass's turn
 * about, as before), and both infras' parked groups all start in order. */
Test(sched, parked_groups_on_two_infras_start_best_first_on_each)
{
    extra_names[0] = "kubernetes/ctx-a";
    n_extra = 1;
    limit_alice("{running_groups: 1}");
    enum { N = 30 };
    int64_t on[2][N];
    int next[2] = {0, 0};
    int64_t running = submit_cpus("alice", 1, NULL);
    cr_assert_eq(fake.last_group, running);
    for (int i = 0; i < N; i++) {
        on[0][i] = submit_cpus("alice", 1, NULL);  /* the first infra offered: fake */
        on[1][i] = submit_cpus("alice", 1, "kubernetes/ctx-a");
    }
    for (int turn = 0; turn < 2 * N; turn++) {
        int launches = fake.launches + extra_states[0].launches;
        end_group(running);
        cr_assert_eq(fake.launches + extra_states[0].launches, launches + 1, "turn %d", turn);
        int k = next[1] < N && group_state(on[1][next[1]], NULL, 0) == JG_STARTING ? 1 : 0;
        cr_assert_lt(next[k], N, "turn %d", turn);
        cr_assert_eq(group_state(on[k][next[k]], NULL, 0), JG_STARTING,
                     "turn %d: neither infra's best parked group started", turn);
        running = on[k][next[k]++];
        for (int b = 0; b < 2; b++)
            expect_parked_reasons(on[b] + next[b], N - next[b],
                                  "waiting for user limit: alice runs 1 of at most 1 groups");
    }
    cr_expect(next[0] == N && next[1] == N, "%d and %d started", next[0], next[1]);
}

/* A named volume is a daemon directory on a host backend (none here: the
 * submit is refused), the infra's own object where the backend says so
 * (kubernetes' PVC): accepted, and launch gets no daemon volumes. */
Test(sched, volumes_of_the_infra_are_not_resolved_by_the_daemon)
{
    const char *yaml = "name: v\nvolumes:\n  /mnt/shared: shared-volume\nrun: 'true'\n";
    jg_group_spec_t *spec = parse_spec(yaml);
    int64_t id = 0;
    jg_error_t err = {{0}};
    cr_assert_eq(jg_sched_submit(sched, spec, getuid(), getgid(), "alice", &id, &err), -1);
    cr_assert(strstr(err.text, "no such volume"), "%s", err.text);

    fake.volumes_in_infra = true;
    restart_sched();
    id = submit_yaml(yaml);
    cr_assert_gt(id, 0);
    cr_assert_eq(fake.launches, 1, "the group was launched");
    cr_assert_eq(fake.last_group, id);
    cr_assert_eq(fake.last_n_volumes, 0);
}
