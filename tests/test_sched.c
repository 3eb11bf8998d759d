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
#include "jgsched/config.h"
#include "jgsched/loop.h"
#include "jgsched/sched.h"
#include "jgsched/spec.h"
#include "jgsched/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef JG_TEST_FIXTURES
#define JG_TEST_FIXTURES "tests/fixtures"
#endif
#define POLICY_DIR JG_TEST_FIXTURES "/../../policies"

/* ---- the scripted backend ------------------------------------------------- */

typedef struct {
    int launches;               /* launch() calls, refused ones included */
    int last_attempt;           /* attempt of the first node of the last launch */
    int refuse_launch_from;     /* launch() fails from this call on (0: never) */
    int fail_nodes_from;        /* launch() reports LAUNCH_FAILED for every node, from inside
                                 * the call, from this call on (0: never) */
    int exit_in_launch;         /* this launch() call reports its nodes exiting 3, from inside
                                 * the call (0: none does) */
    bool refuse_reattach;
    int reattached;             /* nodes handed to reattach() */
} fake_t;

static fake_t fake;
static jg_sched_t *sched;

static int fake_launch(jg_backend_t *b, const jg_launch_t *req, jg_error_t *err)
{
    (void)b;
    fake.launches++;
    fake.last_attempt = req->n_nodes ? req->nodes[0].attempt : 0;
    if (fake.refuse_launch_from && fake.launches >= fake.refuse_launch_from)
        return jg_errprintf(err, "the scripted backend refuses launch %d", fake.launches);
    if (fake.fail_nodes_from && fake.launches >= fake.fail_nodes_from) {
        for (size_t i = 0; i < req->n_nodes; i++) {
            jg_backend_event_t ev = {.type = JG_BACKEND_LAUNCH_FAILED, .group_id = req->group_id,
                                     .job_index = req->nodes[i].job_index,
                                     .rank = req->nodes[i].rank,
                                     .attempt = req->nodes[i].attempt,
                                     .reason = "the scripted node cannot be created"};
            jg_sched_backend_event(sched, &ev);
        }
    }
    if (fake.exit_in_launch == fake.launches) {
        for (size_t i = 0; i < req->n_nodes; i++) {
            jg_backend_event_t ev = {.type = JG_BACKEND_NODE_EXITED, .group_id = req->group_id,
                                     .job_index = req->nodes[i].job_index,
                                     .rank = req->nodes[i].rank,
                                     .attempt = req->nodes[i].attempt, .exit_code = 3};
            jg_sched_backend_event(sched, &ev);
        }
    }
    return 0;
}

static int fake_ok(jg_backend_t *b, int64_t group_id, jg_error_t *err)
{
    (void)b, (void)group_id, (void)err;
    return 0;
}

static int fake_stop(jg_backend_t *b, int64_t group_id, int job_index, int rank, int grace_ms,
                     jg_error_t *err)
{
    (void)b, (void)group_id, (void)job_index, (void)rank, (void)grace_ms, (void)err;
    return 0;
}

static int fake_reattach(jg_backend_t *b, int64_t group_id, const jg_node_handle_t *nodes,
                         size_t n, jg_error_t *err)
{
    (void)b, (void)nodes;
    if (fake.refuse_reattach)
        return jg_errprintf(err, "the scripted backend cannot find group %lld's nodes",
                            (long long)group_id);
    fake.reattached += (int)n;
    return 0;
}

static int fake_cleanup(jg_backend_t *b, int64_t group_id, bool purge, jg_error_t *err)
{
    (void)b, (void)group_id, (void)purge, (void)err;
    return 0;
}

static void fake_destroy(jg_backend_t *b)
{
    free(b);
}

static const jg_backend_ops_t fake_ops = {
    .name = "fake",
    .launch = fake_launch,
    .release = fake_ok,
    .stop = fake_stop,
    .reattach = fake_reattach,
    .cleanup = fake_cleanup,
    .destroy = fake_destroy,
};

/* ---- harness ---------------------------------------------------------------- */

static char dir[64];
static char db_path[128];
static jg_store_t *store;
static jg_loop_t *loop;
static int changes;             /* change callbacks since the test last cleared them */
static jg_config_t *config;     /* the daemon's config.yaml; NULL: none */

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

/* A scheduler on the test's store with one fresh scripted backend, as a
 * daemon (re)start makes it (recovery included). */
static void start_sched(void)
{
    jg_error_t err = {{0}};
    jg_sched_options_t opts = {.policy_dir = POLICY_DIR, .stop_grace_ms = 100,
                               .config = config};
    sched = jg_sched_create(store, loop, &opts, &err);
    cr_assert_not_null(sched, "%s", err.text);
    jg_backend_t *b = calloc(1, sizeof *b);
    b->ops = &fake_ops;
    jg_sched_add_backend(sched, b);
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
    start_sched();
}

static void teardown(void)
{
    jg_sched_destroy(sched);
    sched = NULL;
    jg_loop_destroy(loop);
    jg_store_close(store);
    jg_config_free(config);
    config = NULL;
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

/* Writes a policy file into the test's directory; returns its path (static). */
static const char *policy_file(const char *name, const char *lua)
{
    static char path[192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(lua, f);
    fclose(f);
    return path;
}

/* Submits, as user, a one-job, one-node group (2 cpus) under policy (NULL:
 * default) whose job restarts once on an error, and admits it.  0 if the
 * submit was refused (err says why). */
static int64_t submit_as(const char *policy, const char *user, uid_t uid, jg_error_t *err)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n%s%s%s---\n"
             "name: main\nresources:\n  cpus: 2\njob_recovery:\n  max_restarts_on_errors: 1\n"
             "run: 'true'\n",
             policy ? "policy: " : "", policy ? policy : "", policy ? "\n" : "");
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse(yaml, strlen(yaml), NULL, &errs);
    cr_assert_not_null(spec, "%s", errs.count ? errs.messages[0] : "?");
    jg_spec_errors_free(&errs);
    int64_t id = 0;
    if (jg_sched_submit(sched, spec, uid, (gid_t)uid, user, &id, err) < 0)
        return 0;
    jg_sched_pass(sched);
    return id;
}

static int64_t submit(const char *policy)
{
    jg_error_t err = {{0}};
    int64_t id = submit_as(policy, "alice", getuid(), &err);
    cr_assert_gt(id, 0, "%s", err.text);
    return id;
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

static const char *delayed_policy(const char *delay)
{
    char lua[512];
    snprintf(lua, sizeof lua, DELAYED, delay);
    return policy_file("delayed.lua", lua);
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
    const jg_usage_t *used = jg_sched_usage(sched, jg_sched_backend_for(sched, NULL));
    cr_assert_not_null(used);
    cr_expect_eq(used->cpus, 0, "the failed group still holds %g cpus", used->cpus);
}

Test(sched, a_restart_waiting_for_its_delay_survives_a_daemon_restart)
{
    int64_t id = submit(delayed_policy("600"));
    run_attempt(id, 1);
    event(JG_BACKEND_NODE_EXITED, id, 1, 3);
    jg_job_row_t j = job_row(id);
    cr_assert_eq(j.state, JG_RECOVERING, "job %s", jg_state_name(j.state));
    free(j.name);
    free(j.reason);
    fake.launches = 0;
    restart_sched();
    cr_expect_eq(jg_sched_active_count(sched), 1, "the group is still active");
    cr_assert_eq(fake.launches, 1, "the job was relaunched after the restart");
    cr_expect_eq(fake.last_attempt, 2);
    j = job_row(id);
    cr_expect_eq(j.attempt, 2);
    free(j.name);
    free(j.reason);
    run_attempt(id, 2);
    event(JG_BACKEND_NODE_EXITED, id, 2, 0);
    cr_expect_eq(group_state(id, NULL, 0), JG_SUCCEEDED);
}

/* ---- admission ---------------------------------------------------------------- */

Test(sched, a_configured_admin_is_an_admin_to_the_policy)
{
    jg_spec_errors_t errs = {0};
    const char *text = "admins: [alice]\n";
    config = jg_config_parse(text, strlen(text), "config.yaml", &errs);
    cr_assert_not_null(config, "%s", errs.count ? errs.messages[0] : "?");
    jg_spec_errors_free(&errs);
    restart_sched();
    const char *policy = policy_file("admins-only.lua",
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

/* ---- admission arithmetic on what a user wrote ------------------------------ */

static jg_group_spec_t *parse_or_fail(const char *yaml)
{
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse(yaml, strlen(yaml), "t.yaml", &errs);
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
