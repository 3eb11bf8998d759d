/* bench_spec_limits.c - how long jg_spec_parse takes on hostile inputs of the
 * largest size a submit may have (spec_limits.max_bytes, 512 KiB).
 *
 * Each shape aims at work that could grow faster than the input: one huge
 * mapping, thousands of mappings, deep nesting, duplicate and unknown keys
 * (messages and did-you-mean), long strings, references to jobs that do not
 * exist, thousands of documents, anchors and aliases (expansion), and YAML
 * directives.  Each is generated in memory just under the size bound, parsed
 * N times (argv[1], default 7; argv[2] picks the shapes whose name holds it)
 * with the default limits; its median, min and max wall time, its median CPU
 * time (which a loaded host disturbs less) and the first message are printed.
 * Most shapes are refused, which is the point: refusing must be as cheap as
 * accepting.  A benchmark, not a test: it prints figures; what it shows is
 * "well under 100 ms per shape".
 */
#include "jgsched/spec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *p;
    size_t len, cap;
} text_t;

static void add(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        if (!t->p)
            abort();
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Room left under the size bound, keeping `tail` bytes for the closing text. */
static bool room(const text_t *t, size_t tail)
{
    return t->len + tail + 128 < JG_SPEC_MAX_BYTES_CEILING;
}

static void gen_one_mapping(text_t *t)           /* 40k+ keys in one envs mapping */
{
    add(t, "name: a\nrun: echo\nenvs:\n");
    for (int i = 0; room(t, 0); i++)
        add(t, "  K%d: v\n", i);
}

static void gen_full_mappings(text_t *t)         /* every job at 1000 envs: all accepted */
{
    add(t, "---\nname: g\nexecution: parallel\n");
    for (int j = 0; room(t, 12000); j++) {
        add(t, "---\nname: j%d\nenvs:\n", j);
        for (int i = 0; i < 1000; i++)
            add(t, "  K%d: v\n", i);
    }
}

static void gen_deep_flow(text_t *t)             /* 100k+ levels of [ */
{
    add(t, "name: a\nenvs: ");
    while (room(t, t->len))
        add(t, "[");
    size_t open = t->len - strlen("name: a\nenvs: ");
    for (size_t i = 0; i < open && room(t, 0); i++)
        add(t, "]");
}

static void gen_deep_mappings(text_t *t)         /* {a: {a: {a: ... */
{
    add(t, "name: a\nenvs: ");
    while (room(t, 0))
        add(t, "{a: ");
}

static void gen_deep_block(text_t *t)            /* - - - - ... on one line */
{
    add(t, "name: a\nenvs:\n  ");
    while (room(t, 0))
        add(t, "- ");
    add(t, "x\n");
}

static void gen_duplicate_keys(text_t *t)        /* the same key over and over */
{
    add(t, "---\nname: g\nexecution: parallel\n");
    for (int j = 0; room(t, 11000); j++) {
        add(t, "---\nname: j%d\nenvs:\n", j);
        for (int i = 0; i < 1000; i++)
            add(t, "  KEY: v\n");
    }
}

static void gen_unknown_keys(text_t *t)          /* thousands of errors with did-you-mean */
{
    add(t, "---\nname: g\nexecution: parallel\n");
    for (int j = 0; room(t, 30000); j++) {
        add(t, "---\nname: j%d\nresources:\n", j);
        for (int i = 0; i < 1000; i++)
            add(t, "  cpu%d: 1\n", i);
    }
}

static void gen_long_strings(text_t *t)          /* strings at and past max_string */
{
    add(t, "---\nname: g\nexecution: parallel\n");
    for (int j = 0; room(t, 130 * 1024); j++) {
        add(t, "---\nname: j%d\nrun: \"", j);
        for (int i = 0; i < 128 * 1024 - 1 + j % 2 * 2; i++)
            add(t, "x");
        add(t, "\"\n");
    }
}

static void gen_bad_refs(text_t *t)              /* primary_tasks naming jobs that are not */
{
    add(t, "---\nname: g\nexecution: parallel\nprimary_tasks: [");
    for (int i = 0; i < 20000; i++)
        add(t, "%sjob-number-%05dx", i ? ", " : "", i);
    add(t, "]\n");
    for (int j = 0; room(t, 0); j++)
        add(t, "---\nname: job-number-%05d\n", j);
}

static void gen_many_documents(text_t *t)        /* one tiny job per document */
{
    add(t, "---\nname: g\nexecution: parallel\n");
    for (int j = 0; room(t, 0); j++)
        add(t, "---\nname: j%d\n", j);
}

/* Anchors and aliases, hashed (libyaml's loader scans a list: quadratic).
 * Expanded aliases count against max_bytes, so the text stops at half. */
static void gen_anchors(text_t *t)
{
    add(t, "name: a\nresources:\n  labels:\n");
    for (int i = 0; t->len < JG_SPEC_MAX_BYTES_CEILING / 2; i++) {
        if (i % 500 == 0)
            add(t, "    g%d:\n", i / 500);
        add(t, "      a%d: &x%d v\n      b%d: *x%d\n", i, i, i, i);
    }
}

static void gen_laughs(text_t *t)                /* aliases of aliases (billion laughs) */
{
    add(t, "name: a\nresources:\n  labels:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 30; i++)
        add(t, "    l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
            i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
}

static void gen_directives(text_t *t)            /* %TAG directives before one document */
{
    for (int i = 0; room(t, 0); i++)
        add(t, "%%TAG !t%d! tag:x,2026:%d\n", i, i);
    add(t, "---\nname: a\n");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*gen)(text_t *);
    } shapes[] = {
        {"one mapping, 40k+ keys", gen_one_mapping},
        {"jobs of 1000 envs each (accepted)", gen_full_mappings},
        {"nesting: [[[[ ...", gen_deep_flow},
        {"nesting: {a: {a: ...", gen_deep_mappings},
        {"nesting: - - - ...", gen_deep_block},
        {"duplicate keys", gen_duplicate_keys},
        {"unknown keys (did-you-mean)", gen_unknown_keys},
        {"strings at/over max_string", gen_long_strings},
        {"20k primary_tasks, unknown jobs", gen_bad_refs},
        {"one job per document", gen_many_documents},
        {"10k anchors and aliases (accepted)", gen_anchors},
        {"billion laughs", gen_laughs},
        {"%TAG directives", gen_directives},
    };
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    if (runs < 1)
        runs = 1;
    double *ms = calloc((size_t)runs, sizeof *ms), *cpu = calloc((size_t)runs, sizeof *cpu);
    if (!ms || !cpu)
        return 1;
    double worst = 0, worst_cpu = 0;
    printf("spec_limits: default bounds, %d runs per shape, inputs up to %d KiB\n", runs,
           JG_SPEC_MAX_BYTES_CEILING / 1024);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (argc > 2 && !strstr(shapes[s].name, argv[2]))
            continue;
        text_t t = {0};
        shapes[s].gen(&t);
        char first[160] = "accepted";
        for (int r = 0; r < runs; r++) {
            struct timespec t0, t1, c0, c1;
            jg_spec_errors_t errs = {0};
            clock_gettime(CLOCK_MONOTONIC, &t0);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
            jg_group_spec_t *spec = jg_spec_parse(t.p, t.len, "hostile.yaml", &errs);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            ms[r] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
            cpu[r] = (double)(c1.tv_sec - c0.tv_sec) * 1e3 +
                     (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
            if (r == 0 && errs.count)
                snprintf(first, sizeof first, "%zu error%s: %s", errs.count,
                         errs.count == 1 ? "" : "s", errs.messages[0]);
            jg_spec_free(spec);
            jg_spec_errors_free(&errs);
        }
        qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
        qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
        worst = ms[runs / 2] > worst ? ms[runs / 2] : worst;
        worst_cpu = cpu[runs / 2] > worst_cpu ? cpu[runs / 2] : worst_cpu;
        printf("  %-36s %6.1f KiB  median %7.2f ms (min %.2f, max %.2f; cpu %.2f)  %.100s\n",
               shapes[s].name, (double)t.len / 1024, ms[runs / 2], ms[0], ms[runs - 1],
               cpu[runs / 2], first);
        free(t.p);
    }
    printf("spec_limits: worst median %.2f ms wall, %.2f ms cpu\n", worst, worst_cpu);
    free(ms);
    free(cpu);
    return 0;
}
