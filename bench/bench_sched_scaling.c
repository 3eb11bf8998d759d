/* bench_sched_scaling.c - what the scheduler costs per submit and per event
 * as the queue grows, and what it keeps in memory per group.
 *
 * It drives jg_sched directly (no daemon, no CLI, no socket: their cost does
 * not grow with the queue and would hide the scheduler's) with the scripted
 * backend of the tests (tests/fake_backend.c) declaring 2 cpus.  One group
 * holding both cpus runs; every group submitted after it asks 1 cpu and
 * waits (the first of them is the blocked head, the others wait behind it).
 *
 * For each N in argv[1..] (default 0 1000 10000 100000):
 *   - the queue is filled to N pending groups (a fresh store each N);
 *   - submit: 200 more groups, each submit followed by one admission pass as
 *     the daemon's loop runs it; CPU time (CLOCK_PROCESS_CPUTIME_ID) of each,
 *     median and 90th percentile;
 *   - event: 200 node events (NODE_STARTED of the running group: an event that
 *     admits nothing), median;
 *   - turnover: 20 times the running group ends (node exit, cleanup reported)
 *     and the queue head starts: the event, the CLEANED and the pass, median;
 *     this changes the blocked head, so the groups behind it are told whom
 *     they now wait for (one write each: the one cost here that grows with
 *     the queue);
 *   - fill/group: CPU ms per group of filling the queue (submit + pass);
 *   - RSS: the process's resident memory with the N pending groups, minus
 *     what it was with none, per pending group (kB; the store's page cache
 *     included), and the same of malloc's heap in use (the scheduler's own).
 * Before those rounds, memory with 100,000 groups stored (ended) and 1,000
 * active: 99,000 submitted and cancelled, 1,000 pending; VmRSS of the whole
 * process (store cache included), and what it was before.
 * A benchmark, not a test: it prints figures and fails only if sched does.
 * LIMITED=1: no capacity limit, but config.yaml lets each user run one group
 * and every group is alice's: the queue is one user waiting for their limit
 * (turnover: her group ends, her next starts).
 * POLICY=name (default "default") makes that the configured policy, e.g.
 * POLICY=fair-share to include priority() calls.  STORED (default 100000)
 * sizes the last stage; STORED=0 skips it.
 */
#include "jgsched/config.h"
#include "jgsched/loop.h"
#include "jgsched/sched.h"
#include "jgsched/spec.h"
#include "jgsched/state.h"
#include "jgsched/store.h"

#include <ftw.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_backend.h"

#ifndef JG_BENCH_POLICY_DIR
#define JG_BENCH_POLICY_DIR "policies"
#endif

#define SAMPLES 200
#define TURNOVERS 20

static fake_state_t fake;
static jg_capacity_t two_cpus = {.cpus = 2, .memory_gb = 1024, .max_node_cpus = 2,
                                 .max_node_memory_gb = 1024, .source = "config"};
static jg_sched_t *sched;
static jg_store_t *store;
static jg_loop_t *loop;
static jg_backend_t *instance;
static jg_config_t *config;     /* LIMITED: every user may run one group */
static bool limited;

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* Bytes malloc has handed out and not taken back. */
static double heap_kb(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[(size_t)(p * (double)(n - 1))];
}

static jg_group_spec_t *parse(int cpus)
{
    char yaml[256];
    snprintf(yaml, sizeof yaml, "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n---\n"
                                "name: main\nresources:\n  cpus: %d\nrun: 'true'\n", cpus);
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse(yaml, strlen(yaml), NULL, &errs);
    if (!spec) {
        printf("bench_sched_scaling: %s\n", errs.count ? errs.messages[0] : "?");
        exit(1);
    }
    jg_spec_errors_free(&errs);
    return spec;
}

static int64_t submit(int cpus, const char *user)
{
    jg_error_t err = {{0}};
    int64_t id = 0;
    if (jg_sched_submit(sched, parse(cpus), 1000, 1000, user, &id, &err) < 0) {
        printf("bench_sched_scaling: submit: %s\n", err.text);
        exit(1);
    }
    return id;
}

static void event(jg_backend_event_type_t type, int64_t id, int exit_code)
{
    jg_backend_event_t ev = {.type = type, .group_id = id, .job_index = 0, .rank = 0,
                             .attempt = 1, .exit_code = exit_code, .handle = "h"};
    jg_sched_backend_event(sched, &ev);
}

static void stop_loop(jg_loop_t *l, void *arg)
{
    (void)arg;
    jg_loop_stop(l);
}

/* Lets the loop deliver what the fake queued (CLEANED). */
static void turn(void)
{
    jg_loop_add_timer(loop, 0, stop_loop, NULL);
    jg_error_t err = {{0}};
    jg_loop_run(loop, &err);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void open_sched(const char *dir)
{
    char db[4200];
    snprintf(db, sizeof db, "%s/bench.db", dir);
    jg_error_t err = {{0}};
    if (!(store = jg_store_open(db, &err)) || !(loop = jg_loop_create(&err))) {
        printf("bench_sched_scaling: %s\n", err.text);
        exit(1);
    }
    memset(&fake, 0, sizeof fake);
    fake.capacity = limited ? NULL : &two_cpus;
    instance = fake_backend_create("fake", &fake, loop);
    const char *policy = getenv("POLICY");
    jg_sched_options_t opts = {.policy_dir = JG_BENCH_POLICY_DIR, .stop_grace_ms = 100,
                               .default_policy = policy && *policy ? policy : NULL,
                               .config = config,
                               .no_registry = true, .extra_backends = &instance,
                               .n_extra_backends = 1};
    if (!(sched = jg_sched_create(store, loop, &opts, &err))) {
        printf("bench_sched_scaling: %s\n", err.text);
        exit(1);
    }
    fake_backend_set_sink(instance, jg_sched_backend_event, sched);
}

static void close_sched(const char *dir)
{
    jg_sched_destroy(sched);
    jg_loop_destroy(loop);
    jg_store_close(store);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

typedef struct {
    int64_t ids[8];
    size_t n;
} live_t;

static void find_live(void *ctx, int64_t id, const char *user, jg_state_t state,
                      const char *infra, const jg_group_spec_t *spec, bool holds)
{
    (void)user, (void)infra, (void)spec;
    live_t *l = ctx;
    if (holds && !jg_state_is_terminal(state) && l->n < 8)
        l->ids[l->n++] = id;
}

static void one_queue(int n)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jg-bench-sched-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR")
                                                                          : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    open_sched(dir);
    int64_t running = submit(2, limited ? "alice" : "root");
    jg_sched_pass(sched);
    event(JG_BACKEND_NODE_STARTED, running, 0);
    event(JG_BACKEND_SETUP_DONE, running, 0);
    long rss0 = rss_kb();
    double heap0 = heap_kb();
    double fill0 = cpu_ms();
    static const char *four[] = {"alice", "bob", "carol", "dave"};
    static const char *one[] = {"alice", "alice", "alice", "alice"};
    const char **users = limited ? one : four;
    for (int i = 0; i < n; i++) {
        submit(1, users[i % 4]);
        jg_sched_pass(sched);
    }
    double fill_ms = cpu_ms() - fill0;
    long rss1 = rss_kb();
    double heap1 = heap_kb();

    double sub[SAMPLES], ev[SAMPLES], turnover[TURNOVERS];
    for (int i = 0; i < SAMPLES; i++) {
        jg_error_t err = {{0}};
        int64_t id;
        jg_group_spec_t *spec = parse(1);
        double t0 = cpu_ms();
        if (jg_sched_submit(sched, spec, 1000, 1000, users[i % 4], &id, &err) < 0) {
            printf("bench_sched_scaling: submit: %s\n", err.text);
            exit(1);
        }
        jg_sched_pass(sched);
        sub[i] = cpu_ms() - t0;
    }
    for (int i = 0; i < SAMPLES; i++) {
        double t0 = cpu_ms();
        event(JG_BACKEND_NODE_STARTED, running, 0);
        jg_sched_pass(sched);
        ev[i] = cpu_ms() - t0;
    }
    /* Turnover: what runs ends; the head (1 cpu) and the next start, the
     * third becomes the blocked head. */
    for (int i = 0; i < TURNOVERS; i++) {
        live_t live = {0};
        jg_sched_foreach_active(sched, find_live, &live);       /* not timed */
        double t0 = cpu_ms();
        for (size_t k = 0; k < live.n; k++)
            event(JG_BACKEND_NODE_EXITED, live.ids[k], 0);
        turn();                     /* CLEANED */
        jg_sched_pass(sched);
        turnover[i] = cpu_ms() - t0;
        live.n = 0;
        jg_sched_foreach_active(sched, find_live, &live);
        for (size_t k = 0; k < live.n; k++) {
            event(JG_BACKEND_NODE_STARTED, live.ids[k], 0);
            event(JG_BACKEND_SETUP_DONE, live.ids[k], 0);
        }
    }
    printf("%8d %10.3f %10.3f %10.3f %10.3f %12.3f %10.2f %10.2f\n", n, pct(sub, SAMPLES, 0.5),
           pct(sub, SAMPLES, 0.9), pct(ev, SAMPLES, 0.5), pct(turnover, TURNOVERS, 0.5),
           n ? fill_ms / n : 0.0, n ? (double)(rss1 - rss0) / n : 0.0,
           n ? (heap1 - heap0) / n : 0.0);
    fflush(stdout);
    close_sched(dir);
}

static void stored_and_active(int stored, int active)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jg-bench-sched-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR")
                                                                          : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    long before = rss_kb();
    open_sched(dir);
    int64_t running = submit(2, "root");
    jg_sched_pass(sched);
    event(JG_BACKEND_NODE_STARTED, running, 0);
    for (int i = 0; i < stored - active; i++) {
        int64_t id = submit(1, "alice");
        jg_error_t err = {{0}};
        if (jg_sched_cancel(sched, id, "bench", &err) < 0) {
            printf("bench_sched_scaling: cancel: %s\n", err.text);
            exit(1);
        }
    }
    for (int i = 0; i < active; i++) {
        submit(1, "bob");
        jg_sched_pass(sched);
    }
    printf("%d stored (%d ended, %zu active): VmRSS %.1f MiB (%.1f MiB before the scheduler "
           "started)\n", stored, stored - active, jg_sched_active_count(sched),
           rss_kb() / 1024.0, before / 1024.0);
    close_sched(dir);
}

int main(int argc, char **argv)
{
    if (!getenv("VERBOSE"))
        (void)!freopen("/dev/null", "w", stderr);    /* the daemon's log lines */
    limited = getenv("LIMITED") && *getenv("LIMITED") == '1';
    if (limited) {
        const char *text = "limits:\n  default: {running_groups: 1}\n";
        jg_spec_errors_t errs = {0};
        config = jg_config_parse(text, strlen(text), "config.yaml", &errs);
        jg_spec_errors_free(&errs);
        if (!config)
            return 1;
        printf("LIMITED: no capacity limit; every group is alice's, who may run one\n");
    }
    static const int defaults[] = {0, 1000, 10000, 100000};
    printf("policy %s; times are CPU ms of this process, medians unless said\n",
           getenv("POLICY") && *getenv("POLICY") ? getenv("POLICY") : "default");
    /* First, while the heap is fresh: a queue round leaves its freed memory
     * in malloc's arenas, which would count here. */
    int stored = getenv("STORED") ? atoi(getenv("STORED")) : 100000;
    if (stored > 1000)
        stored_and_active(stored, 1000);
    printf("%8s %10s %10s %10s %10s %12s %10s %10s\n", "pending", "submit", "submit-p90",
           "event", "turnover", "fill/group", "RSS kB/g", "heap kB/g");
    if (argc > 1)
        for (int i = 1; i < argc; i++)
            one_queue(atoi(argv[i]));
    else
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            one_queue(defaults[i]);
    return 0;
}
