/* bench_spec.c - how long jg_spec_parse takes on a 10,000-job JobGroup.
 *
 * Generates the YAML in memory (a header and 10,000 job documents, each with
 * resources, envs, setup and a multi-line run), parses it, with the size and
 * node bounds raised to fit (bench_spec_limits measures hostile inputs under
 * the default bounds), N times (argv[1],
 * default 7) and prints the median wall time in milliseconds.  A benchmark,
 * not a test: it prints figures and fails only if a parse fails.
 */
#include "jgsched/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_JOBS 10000

static char *generate(size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    fprintf(f, "---\nname: bench-group\nplacement: SAME_INFRA\nexecution: parallel\n"
               "primary_tasks: [job-0]\ntermination_delay: {default: 30s, job-1: 1m}\n");
    for (int i = 0; i < N_JOBS; i++) {
        fprintf(f, "---\nname: job-%d\nnum_nodes: %d\n"
                   "resources:\n  cpus: %d+\n  memory: %dGB\n  accelerators: T4:1\n"
                   "  infra: kubernetes\n"
                   "  job_recovery: {max_restarts_on_errors: 3, recover_on_exit_codes: [29]}\n"
                   "envs:\n  RANK_BASE: %d\n  MODE: train\n"
                   "setup: pip install -r requirements.txt\n"
                   "run: |\n  echo \"job %d on $(hostname)\"\n  python train.py --shard %d\n",
                i, 1 + i % 4, 1 + i % 8, 2 + i % 16, i, i, i);
    }
    fclose(f);
    *len = size;
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    if (runs < 1)
        runs = 1;
    size_t len = 0;
    char *yaml = generate(&len);
    if (!yaml) {
        fputs("bench_spec: cannot generate input\n", stderr);
        return 1;
    }
    /* 10,000 jobs are far past the default bounds (512 KiB, 1024 nodes per
     * group): this measures the parser itself, bounds raised to fit. */
    jg_spec_limits_t limits = jg_spec_limits_default();
    limits.max_bytes = len;
    limits.max_keys = 1 << 30;
    limits.max_nodes_per_group = 1 << 30;
    double *ms = calloc((size_t)runs, sizeof *ms);
    int rc = 0;
    for (int r = 0; r < runs && ms; r++) {
        struct timespec t0, t1;
        jg_spec_errors_t errs = {0};
        clock_gettime(CLOCK_MONOTONIC, &t0);
        jg_group_spec_t *spec = jg_spec_parse_with(yaml, len, "bench.yaml", &limits, &errs);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms[r] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (!spec || spec->n_jobs != N_JOBS) {
            fprintf(stderr, "bench_spec: parse failed: %s\n",
                    errs.count ? errs.messages[0] : "wrong job count");
            rc = 1;
        }
        jg_spec_free(spec);
        jg_spec_errors_free(&errs);
        if (rc)
            break;
    }
    if (!rc && ms) {
        qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
        printf("spec_parse: %d jobs, %.1f KiB of YAML, %d runs, median %.1f ms "
               "(min %.1f, max %.1f)\n", N_JOBS, (double)len / 1024, runs, ms[runs / 2], ms[0],
               ms[runs - 1]);
    }
    free(ms);
    free(yaml);
    return rc;
}
