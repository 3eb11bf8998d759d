/* bench_policy.c - what one policy hook call costs.
 *
 * The scheduler calls a hook for every node exit, every placement and, for
 * every pending group, on each admission pass, so the per-call cost of the
 * sandbox (fresh snapshot tables, budget reset, protected call, strict
 * reading of the return) bounds how many events per second the daemon can
 * absorb.  This loads the default policy, builds a two-job group snapshot
 * and times 100k calls of each hook one by one, printing the median (the
 * target for on_node_exit is <= 20 microseconds) and the tail.
 *
 * Usage: bench_policy [POLICY_DIR [CALLS]]   (default: the source tree's policies/)
 * Not a test: it prints figures and exits 0 unless the policy cannot load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jgsched/policy.h"

#if defined(__has_include)
#if __has_include("jg_config.h")
#include "jg_config.h"
#endif
#endif
#ifndef JG_SOURCE_ROOT
#define JG_SOURCE_ROOT "."
#endif

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef int (*call_f)(jg_policy_t *p, void *ctx);

static int report(const char *what, jg_policy_t *p, call_f fn, void *ctx, double *t, size_t n)
{
    for (size_t i = 0; i < n / 10; i++)     /* warm up */
        if (fn(p, ctx) < 0)
            return -1;
    for (size_t i = 0; i < n; i++) {
        double t0 = now_us();
        if (fn(p, ctx) < 0)
            return -1;
        t[i] = now_us() - t0;
    }
    qsort(t, n, sizeof *t, cmp_double);
    printf("%-14s median %6.2f us   p90 %6.2f us   p99 %6.2f us   (%zu calls)\n", what,
           t[n / 2], t[n * 9 / 10], t[n * 99 / 100], n);
    return 0;
}

static int rl_codes[] = { 29 };
static jg_job_spec_t jobs[2] = {
    { .name = "trainer", .num_nodes = 2, .cpus = { true, 4, true }, .memory_gb = { true, 8, true },
      .accel = { "H100", 1 },
      .recovery = { .set = true, .max_restarts_on_errors = 3, .recover_on_exit_codes = rl_codes,
                    .n_recover_on_exit_codes = 1 },
      .run = "python train.py" },
    { .name = "server", .num_nodes = 1, .cpus = { true, 2, false }, .run = "python serve.py" },
};
static char *primaries[] = { "trainer" };
static jg_group_spec_t spec = { .name = "rl", .jobs = jobs, .n_jobs = 2,
                                .primary_tasks = primaries, .n_primary_tasks = 1,
                                .termination_delay_s = 30 };
static jg_policy_job_state_t states[2] = {
    { .state = JG_RUNNING, .attempt = 1, .exit_code = -1, .infra = "local" },
    { .state = JG_RUNNING, .attempt = 1, .exit_code = -1, .infra = "local" },
};
static jg_policy_group_t group = { .spec = &spec, .id = 1, .user = "alice", .state = JG_RUNNING,
                                   .submitted_us = 1700000000000000, .jobs = states };

static int call_node_exit(jg_policy_t *p, void *ctx)
{
    (void)ctx;
    jg_policy_exit_t ev = { .reason = JG_EXIT_EXITED, .exit_code = 29, .rank = 1 };
    jg_policy_decision_t d;
    jg_error_t err;
    int rc = jg_policy_on_node_exit(p, &group, 0, &ev, &d, &err);
    if (rc < 0 || d.action != JG_ACTION_RESTART_JOB) {
        fprintf(stderr, "on_node_exit: unexpected result: %s\n", rc < 0 ? err.text : "action");
        return -1;
    }
    return 0;
}

static int call_place(jg_policy_t *p, void *ctx)
{
    (void)ctx;
    jg_policy_infra_t infras[] = { { "local", true, NULL }, { "kubernetes", true, NULL } };
    jg_policy_placement_t pl;
    jg_error_t err;
    int rc = jg_policy_place(p, &group, infras, 2, &pl, &err);
    if (rc < 0 || !pl.accepted) {
        fprintf(stderr, "place: unexpected result: %s\n", rc < 0 ? err.text : pl.reason);
        return -1;
    }
    jg_policy_placement_clear(&pl);
    return 0;
}

static int call_priority(jg_policy_t *p, void *ctx)
{
    (void)ctx;
    jg_policy_usage_t usage[] = { { "alice", 1, 3, 10 } };
    double key;
    jg_error_t err;
    if (jg_policy_priority(p, &group, usage, 1, &key, &err) < 0) {
        fprintf(stderr, "priority: %s\n", err.text);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : JG_SOURCE_ROOT "/policies";
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 100000;
    if (n < 10)
        n = 10;
    jg_error_t err;
    jg_policy_t *p = jg_policy_load("default", dir, NULL, &err);
    if (!p) {
        fprintf(stderr, "bench_policy: %s\n", err.text);
        return 1;
    }
    double *t = malloc(n * sizeof *t);
    if (!t) {
        jg_policy_free(p);
        return 1;
    }
    int rc = 0;
    printf("policy default from %s\n", dir);
    if (report("on_node_exit", p, call_node_exit, NULL, t, n) < 0 ||
        report("place", p, call_place, NULL, t, n) < 0 ||
        report("priority", p, call_priority, NULL, t, n) < 0)
        rc = 1;
    printf("heap after the run: %zu KiB\n", jg_policy_memory(p) / 1024);
    free(t);
    jg_policy_free(p);
    return rc;
}
