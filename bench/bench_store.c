/* bench_store.c - what the store costs per group: N (argv[1], default 1000)
 * jg_store_add_group calls of a two-job, three-node group into a fresh store,
 * then one listing of the active groups.  Repeats R times (argv[2], default 5),
 * each in a new store, and prints the medians.  A benchmark, not a test: it
 * prints figures and fails only if the store does.  The store lives in
 * $TMPDIR (default /tmp) and is removed afterwards.
 */
#include "jgsched/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static jg_job_spec_t jobs[2] = {
    {.name = "trainer", .num_nodes = 2},
    {.name = "server", .num_nodes = 1},
};
static const jg_group_spec_t spec = {.name = "rl", .jobs = jobs, .n_jobs = 2};

/* One round in a fresh store; fills add_ms and list_ms.  Returns 0 or -1. */
static int round_once(const char *dir, int n, double *add_ms, double *list_ms)
{
    char db[4200];
    snprintf(db, sizeof db, "%s/bench.db", dir);
    jg_error_t err = {{0}};
    jg_store_t *s = jg_store_open(db, &err);
    if (!s) {
        fprintf(stderr, "bench_store: %s\n", err.text);
        return -1;
    }
    int rc = 0;
    double t0 = now_s();
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t id;
        rc = jg_store_add_group(s, &spec, "{\"name\":\"rl\"}", 1000, 100, "alice", i, &id, &err);
    }
    *add_ms = (now_s() - t0) * 1e3;
    jg_group_row_t *rows = NULL;
    size_t n_rows = 0;
    t0 = now_s();
    if (rc == 0)
        rc = jg_store_list_groups(s, &(jg_group_filter_t){.active_only = true}, &rows, &n_rows,
                                  &err);
    *list_ms = (now_s() - t0) * 1e3;
    if (rc == 0)
        jg_group_rows_free(rows, n_rows);
    else
        fprintf(stderr, "bench_store: %s\n", err.text);
    jg_store_close(s);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[4300];
        snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
        unlink(path);
    }
    return rc;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (n <= 0 || rounds <= 0 || rounds > 100) {
        fprintf(stderr, "usage: bench_store [GROUPS] [ROUNDS (1-100)]\n");
        return 2;
    }
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jg-bench-store-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("bench_store: mkdtemp");
        return 1;
    }
    double add_ms[100], list_ms[100];
    int rc = 0;
    for (int r = 0; r < rounds && rc == 0; r++)
        rc = round_once(dir, n, &add_ms[r], &list_ms[r]);
    rmdir(dir);
    if (rc != 0)
        return 1;
    qsort(add_ms, (size_t)rounds, sizeof add_ms[0], cmp_double);
    qsort(list_ms, (size_t)rounds, sizeof list_ms[0], cmp_double);
    printf("store: %d jg_store_add_group calls (2 jobs, 3 nodes): median %.1f ms (%.3f ms/group), "
           "%d rounds\n", n, add_ms[rounds / 2], add_ms[rounds / 2] / n, rounds);
    printf("store: listing %d active groups: median %.1f ms\n", n, list_ms[rounds / 2]);
    return 0;
}
