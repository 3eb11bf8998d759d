/* test_spec.c - the JobGroup YAML parser: what it accepts, what it rejects and
 * how it says so (file:line:col, the field, the value), the JSON round trip,
 * the description and the small helpers.  Fixtures live in fixtures/spec/:
 * copies of every YAML in the user's test plan (seed_*.yaml) plus full.yaml,
 * which uses every field.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jgsched/spec.h"

#ifndef JG_TEST_FIXTURES
#define JG_TEST_FIXTURES "tests/fixtures"
#endif
#define FIX(name) JG_TEST_FIXTURES "/spec/" name

#define HDR "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n---\n"

/* ---- helpers ----------------------------------------------------------- */

static jg_spec_errors_t errs;

static void reset(void)
{
    jg_spec_errors_free(&errs);
}

TestSuite(spec, .fini = reset);

static jg_group_spec_t *parse(const char *yaml)
{
    jg_spec_errors_free(&errs);
    return jg_spec_parse(yaml, strlen(yaml), "t.yaml", &errs);
}

static bool has(char **list, size_t n, const char *needle)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(list[i], needle))
            return true;
    return false;
}

static void dump(void)
{
    for (size_t i = 0; i < errs.count; i++)
        cr_log_info("error: %s", errs.messages[i]);
    for (size_t i = 0; i < errs.n_warnings; i++)
        cr_log_info("warning: %s", errs.warnings[i]);
}

/* Parse must fail with an error containing every given needle (in one message). */
static void expect_error(const char *yaml, const char *needle, const char *needle2)
{
    jg_group_spec_t *s = parse(yaml);
    if (s)
        jg_spec_free(s);
    cr_assert_null(s, "expected a failure for:\n%s", yaml);
    cr_assert_gt(errs.count, 0);
    bool found = false;
    for (size_t i = 0; i < errs.count; i++)
        if (strstr(errs.messages[i], needle) && (!needle2 || strstr(errs.messages[i], needle2)))
            found = true;
    if (!found)
        dump();
    cr_assert(found, "no error contains '%s'%s%s", needle, needle2 ? " and " : "",
              needle2 ? needle2 : "");
}

static jg_group_spec_t *expect_ok(const char *yaml)
{
    jg_group_spec_t *s = parse(yaml);
    if (!s)
        dump();
    cr_assert_not_null(s, "expected success for:\n%s", yaml);
    cr_assert_eq(errs.count, 0);
    return s;
}

/* One job in a valid group, built from the job body. */
static jg_group_spec_t *job_ok(const char *body)
{
    char *yaml = NULL;
    cr_assert_geq(asprintf(&yaml, HDR "%s", body), 0);
    jg_group_spec_t *s = expect_ok(yaml);
    free(yaml);
    cr_assert_eq(s->n_jobs, 1);
    return s;
}

static void job_error(const char *body, const char *needle, const char *needle2)
{
    char *yaml = NULL;
    cr_assert_geq(asprintf(&yaml, HDR "%s", body), 0);
    expect_error(yaml, needle, needle2);
    free(yaml);
}

/* ---- the Phase 1.1 table of the user's test plan ----------------------- */

Test(spec, valid_jobgroup_detected)
{
    jg_group_spec_t *s = jg_spec_parse_file(FIX("seed_1_1.yaml"), &errs);
    cr_assert_not_null(s);
    cr_assert_str_eq(s->name, "test-group");
    cr_assert_eq(s->placement, JG_PLACEMENT_SAME_INFRA);
    cr_assert_eq(s->execution, JG_EXECUTION_PARALLEL);
    cr_assert_eq(s->n_jobs, 2);
    cr_assert_str_eq(s->jobs[0].name, "job-a");
    cr_assert_str_eq(s->jobs[1].name, "job-b");
    cr_assert_str_eq(s->jobs[1].run, "echo \"Job B\"");
    jg_spec_free(s);
}

Test(spec, missing_job_name_names_file_and_line)
{
    expect_error(HDR "name: a\nrun: echo a\n---\nrun: echo hello\n",
                 "job at t.yaml:9 must have a \"name\" field", NULL);
    expect_error(HDR "name:\nrun: echo hello\n", "job at t.yaml:6 must have a \"name\" field",
                 NULL);
}

Test(spec, duplicate_job_names_point_at_first_definition)
{
    jg_group_spec_t *s = jg_spec_parse_file(FIX("bad_seed_5_5_duplicate.yaml"), &errs);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.messages[0], "bad_seed_5_5_duplicate.yaml:12:7: name: "
                                       "duplicate job name 'my-job' (first defined at "));
    cr_assert(strstr(errs.messages[0], "bad_seed_5_5_duplicate.yaml:6)"));
}

Test(spec, invalid_placement_rejected)
{
    expect_error("---\nname: g\nplacement: INVALID\nexecution: parallel\n---\nname: a\n",
                 "t.yaml:3:12: placement: invalid placement mode 'INVALID' (expected SAME_INFRA)",
                 NULL);
    expect_error("---\nname: g\nplacement: same_infra\n---\nname: a\n",
                 "invalid placement mode 'same_infra'", NULL);
}

Test(spec, invalid_execution_rejected)
{
    expect_error("---\nname: g\nexecution: serial\n---\nname: a\n",
                 "t.yaml:3:12: execution: invalid execution mode 'serial' (expected parallel)",
                 NULL);
}

Test(spec, header_without_jobs_is_an_error)
{
    expect_error("---\nname: empty\nplacement: SAME_INFRA\nexecution: parallel\n",
                 "t.yaml:2:1: JobGroup 'empty' has no jobs", NULL);
    /* a trailing `---` is an empty document, not a job */
    expect_error("---\nname: empty\nexecution: parallel\n---\n", "JobGroup 'empty' has no jobs",
                 NULL);
}

Test(spec, header_plus_one_job_is_a_valid_group)
{
    jg_group_spec_t *s = expect_ok(HDR "name: only\nrun: echo hi\n");
    cr_assert_str_eq(s->name, "g");
    cr_assert_eq(s->n_jobs, 1);
    cr_assert_str_eq(s->jobs[0].name, "only");
    jg_spec_free(s);
}

Test(spec, header_with_only_name_is_a_chain_not_a_jobgroup)
{
    expect_error("name: foo\n---\nname: a\nrun: x\n---\nname: b\nrun: y\n",
                 "t.yaml:1: a header with only 'name' is a chain (jobs run one after another); "
                 "jgsched runs JobGroups only: add 'execution: parallel' to the header",
                 NULL);
}

Test(spec, name_and_execution_is_enough_for_a_header)
{
    jg_group_spec_t *s = expect_ok("name: foo\nexecution: parallel\n---\nname: a\n");
    cr_assert_str_eq(s->name, "foo");
    cr_assert_eq(s->n_jobs, 1);
    cr_assert_null(s->jobs[0].run);
    jg_spec_free(s);
}

Test(spec, single_document_is_a_group_of_one_job)
{
    jg_group_spec_t *s = expect_ok("name: solo\nnum_nodes: 3\nrun: echo hi\n");
    cr_assert_str_eq(s->name, "solo");
    cr_assert_eq(s->n_jobs, 1);
    cr_assert_str_eq(s->jobs[0].name, "solo");
    cr_assert_eq(s->jobs[0].num_nodes, 3);
    cr_assert_eq(jg_spec_total_nodes(s), 3);
    jg_spec_free(s);
    /* a name alone is a (trivial) job, as in SkyPilot */
    s = expect_ok("name: solo\n");
    cr_assert_eq(s->n_jobs, 1);
    jg_spec_free(s);
}

Test(spec, single_document_without_name_is_an_error)
{
    expect_error("run: echo hi\n", "job at t.yaml:1 must have a \"name\" field", NULL);
}

Test(spec, empty_stream_is_an_error)
{
    expect_error("", "t.yaml: empty stream", NULL);
    expect_error("# only a comment\n", "empty stream", NULL);
    expect_error("---\n---\n", "empty stream", NULL);
}

Test(spec, first_document_that_is_a_job_is_rejected)
{
    expect_error("---\nname: a\nrun: x\n---\nname: b\nrun: y\n",
                 "t.yaml:2:1: first document must be the JobGroup header (name, placement, "
                 "execution)", NULL);
}

Test(spec, header_requires_a_name)
{
    expect_error("---\nplacement: SAME_INFRA\nexecution: parallel\n---\nname: a\n",
                 "t.yaml:2: the JobGroup header must have a \"name\" field", NULL);
}

/* ---- every YAML of the user's test plan parses ------------------------- */

static const struct {
    const char *file, *group;
    size_t jobs, nodes;
} seeds[] = {
    {"seed_1_1.yaml", "test-group", 2, 2},
    {"seed_2_1.yaml", "test-job-group", 2, 2},
    {"seed_2_2.yaml", "k8s-network-test", 2, 2},
    {"seed_2_3.yaml", "k8s-multinode-group", 2, 3},
    {"seed_3_1.yaml", "k8s-hetero-test", 3, 3},
    {"seed_3_2.yaml", "k8s-gpu-cpu-group", 2, 2},
    {"seed_4.yaml", "rl-experiment", 4, 7},
    {"seed_5_1.yaml", "k8s-failure-test", 2, 2},
    {"seed_5_2.yaml", "k8s-resource-test", 2, 2},
    {"seed_5_3.yaml", "k8s-cancel-test", 2, 2},
    {"seed_5_4.yaml", "k8s-empty-run", 2, 2},
    {"seed_6_1.yaml", "k8s-recovery-test", 2, 2},
    {"seed_7_1.yaml", "k8s-shared-volume", 2, 2},
    {"seed_8_1.yaml", "k8s-scale-test", 5, 5},
};

static jg_group_spec_t *load(const char *file)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/spec/%s", JG_TEST_FIXTURES, file);
    jg_spec_errors_free(&errs);
    jg_group_spec_t *s = jg_spec_parse_file(path, &errs);
    if (!s)
        dump();
    cr_assert_not_null(s, "%s does not parse", file);
    cr_assert_eq(errs.count, 0);
    return s;
}

Test(spec, every_seed_plan_yaml_parses)
{
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        jg_group_spec_t *s = load(seeds[i].file);
        cr_expect_str_eq(s->name, seeds[i].group, "%s", seeds[i].file);
        cr_expect_eq(s->n_jobs, seeds[i].jobs, "%s", seeds[i].file);
        cr_expect_eq(jg_spec_total_nodes(s), seeds[i].nodes, "%s", seeds[i].file);
        cr_expect_eq(errs.n_warnings, 0, "%s has warnings", seeds[i].file);
        jg_spec_free(s);
    }
}

Test(spec, seed_2_1_keeps_block_scalar_run_exactly)
{
    jg_group_spec_t *s = load("seed_2_1.yaml");
    cr_assert_str_eq(s->jobs[0].infra, "kubernetes");
    cr_assert(s->jobs[0].cpus.set && s->jobs[0].cpus.value == 2 && !s->jobs[0].cpus.at_least);
    cr_assert_str_eq(s->jobs[0].run,
                     "echo \"Job A Starting\"\n"
                     "echo \"SKYPILOT_JOBGROUP_NAME: ${SKYPILOT_JOBGROUP_NAME}\"\n"
                     "echo \"Hostname: $(hostname)\"\n"
                     "sleep 10\n"
                     "echo \"Job A done\"\n");
    jg_spec_free(s);
}

Test(spec, seed_4_rl_architecture_has_the_right_shape)
{
    jg_group_spec_t *s = load("seed_4.yaml");
    static const struct {
        const char *name;
        int nodes;
        double cpus, mem;
    } want[] = {
        {"trainer", 2, 4, 8}, {"data-processor", 2, 2, 4}, {"replay-buffer", 1, 4, 16},
        {"env-worker", 2, 8, 8},
    };
    for (size_t i = 0; i < 4; i++) {
        const jg_job_spec_t *j = &s->jobs[i];
        cr_expect_str_eq(j->name, want[i].name);
        cr_expect_eq(j->num_nodes, want[i].nodes);
        cr_expect(j->cpus.set && j->cpus.value == want[i].cpus && !j->cpus.at_least);
        cr_expect(j->memory_gb.set && j->memory_gb.value == want[i].mem &&
                  j->memory_gb.at_least);
        cr_expect_str_eq(j->infra, "kubernetes");
        cr_expect_null(j->accel.name);
    }
    jg_spec_free(s);
}

Test(spec, seed_3_x_resources)
{
    jg_group_spec_t *s = load("seed_3_1.yaml");
    cr_assert_eq(s->jobs[2].cpus.value, 1);
    cr_assert_eq(s->jobs[2].memory_gb.value, 2);
    cr_assert(s->jobs[2].memory_gb.at_least);
    jg_spec_free(s);
    s = load("seed_3_2.yaml");
    cr_assert_str_eq(s->jobs[0].accel.name, "T4");
    cr_assert_eq(s->jobs[0].accel.count, 1);
    cr_assert_not(s->jobs[0].cpus.set);
    cr_assert_null(s->jobs[1].accel.name);
    jg_spec_free(s);
    s = load("seed_5_2.yaml");
    cr_assert_eq(s->jobs[1].cpus.value, 1000);
    cr_assert_eq(s->jobs[1].memory_gb.value, 10000);
    jg_spec_free(s);
}

Test(spec, seed_5_4_job_without_run)
{
    jg_group_spec_t *s = load("seed_5_4.yaml");
    cr_assert_null(s->jobs[0].run);
    cr_assert_null(s->jobs[0].setup);
    cr_assert_not_null(s->jobs[1].run);
    jg_spec_free(s);
}

Test(spec, seed_6_1_recovery_and_7_1_volumes)
{
    jg_group_spec_t *s = load("seed_6_1.yaml");
    const jg_recovery_t *r = &s->jobs[0].recovery;
    cr_assert(r->set);
    cr_assert_eq(r->max_restarts_on_errors, 3);
    cr_assert_eq(r->n_recover_on_exit_codes, 1);
    cr_assert_eq(r->recover_on_exit_codes[0], 29);
    cr_assert_null(r->strategy);
    cr_assert_not(s->jobs[1].recovery.set);
    jg_spec_free(s);
    s = load("seed_7_1.yaml");
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(s->jobs[i].n_volumes, 1);
        cr_assert_str_eq(s->jobs[i].volumes[0].key, "/mnt/shared");
        cr_assert_str_eq(s->jobs[i].volumes[0].value, "shared-volume");
    }
    jg_spec_free(s);
}

/* ---- sizes ------------------------------------------------------------- */

static jg_amount_t cpus_of(const char *v)
{
    char body[128];
    snprintf(body, sizeof body, "name: a\nresources:\n  cpus: %s\n", v);
    jg_group_spec_t *s = job_ok(body);
    jg_amount_t a = s->jobs[0].cpus;
    jg_spec_free(s);
    return a;
}

static jg_amount_t memory_of(const char *v)
{
    char body[128];
    snprintf(body, sizeof body, "name: a\nresources:\n  memory: %s\n", v);
    jg_group_spec_t *s = job_ok(body);
    jg_amount_t a = s->jobs[0].memory_gb;
    jg_spec_free(s);
    return a;
}

Test(spec, cpus_forms)
{
    jg_amount_t a = cpus_of("4");
    cr_assert(a.set && a.value == 4 && !a.at_least);
    a = cpus_of("4+");
    cr_assert(a.set && a.value == 4 && a.at_least);
    a = cpus_of("0.5");
    cr_assert(a.value == 0.5 && !a.at_least);
    a = cpus_of("\"4\"");
    cr_assert(a.value == 4);
    a = cpus_of("'2.5+'");
    cr_assert(a.value == 2.5 && a.at_least);
}

Test(spec, cpus_malformed_names_position_field_and_value)
{
    job_error("name: a\nresources:\n  cpus: 4x\n", "t.yaml:8:9: resources.cpus: invalid value '4x'",
              NULL);
    const char *bad[] = {"0", "-1", "4++", "+4", "four", "1e3", "''", "[4]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "name: a\nresources:\n  cpus: %s\n", bad[i]);
        job_error(body, "t.yaml:8:9: resources.cpus: ", NULL);
    }
}

Test(spec, memory_forms_are_stored_in_gib)
{
    static const struct {
        const char *text;
        double gib;
        bool plus;
    } ok[] = {
        {"8", 8, false}, {"8+", 8, true}, {"8GB", 8, false}, {"512MB", 0.5, false},
        {"1TB", 1024, false}, {"16GiB", 16, false}, {"32GB+", 32, true}, {"1.5g", 1.5, false},
        {"2048Mi", 2, false}, {"\"4\"", 4, false},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        jg_amount_t a = memory_of(ok[i].text);
        cr_expect(a.set && a.value == ok[i].gib && a.at_least == ok[i].plus,
                  "%s -> %g%s", ok[i].text, a.value, a.at_least ? "+" : "");
    }
}

Test(spec, memory_malformed)
{
    job_error("name: a\nresources:\n  memory: 8XB\n",
              "t.yaml:8:11: resources.memory: invalid value '8XB'", NULL);
    const char *bad[] = {"GB", "0GB", "8 GB", "8+GB", "-8", "eight"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "name: a\nresources:\n  memory: %s\n", bad[i]);
        job_error(body, "resources.memory: invalid value", bad[i]);
    }
}

/* ---- accelerators, infra ------------------------------------------------ */

static jg_accel_t accel_of(const char *v)
{
    char body[128];
    snprintf(body, sizeof body, "name: a\nresources:\n  accelerators: %s\n", v);
    jg_group_spec_t *s = job_ok(body);
    jg_accel_t a = s->jobs[0].accel;
    a.name = a.name ? strdup(a.name) : NULL;
    jg_spec_free(s);
    return a;
}

Test(spec, accelerator_forms)
{
    jg_accel_t a = accel_of("T4:1");
    cr_assert_str_eq(a.name, "T4");
    cr_assert_eq(a.count, 1);
    free(a.name);
    a = accel_of("T4");
    cr_assert_str_eq(a.name, "T4");
    cr_assert_eq(a.count, 1);
    free(a.name);
    a = accel_of("{A100: 8}");
    cr_assert_str_eq(a.name, "A100");
    cr_assert_eq(a.count, 8);
    free(a.name);
    a = accel_of("H100:8");
    cr_assert_str_eq(a.name, "H100");
    cr_assert_eq(a.count, 8);
    free(a.name);
}

Test(spec, accelerator_errors)
{
    job_error("name: a\nresources:\n  accelerators: T4:0\n",
              "t.yaml:8:17: resources.accelerators: accelerator count must be at least 1", "'0'");
    job_error("name: a\nresources:\n  accelerators: T4:x\n",
              "resources.accelerators: invalid accelerator count 'x'", NULL);
    job_error("name: a\nresources:\n  accelerators: T4:0.5\n", "fractional", "'0.5'");
    job_error("name: a\nresources:\n  accelerators: {A100: 8, H100: 1}\n",
              "resources.accelerators: expected one accelerator type", "lists 2");
    job_error("name: a\nresources:\n  accelerators: [T4, V100]\n", "resources.accelerators",
              "not supported");
    job_error("name: a\nresources:\n  accelerators: {A100: 0}\n", "at least 1", NULL);
    job_error("name: a\nresources:\n  accelerators: 'T 4'\n", "invalid accelerator name 'T 4'",
              NULL);
}

static void infra_ok(const char *v, const char *want)
{
    char body[128];
    snprintf(body, sizeof body, "name: a\nresources:\n  infra: %s\n", v);
    jg_group_spec_t *s = job_ok(body);
    cr_assert_str_eq(s->jobs[0].infra, want);
    jg_spec_free(s);
}

Test(spec, infra_forms)
{
    infra_ok("local", "local");
    infra_ok("kubernetes", "kubernetes");
    infra_ok("kubernetes/my-ctx", "kubernetes/my-ctx");
    infra_ok("kubernetes/arn:aws:eks:us-east-1:1:cluster/x", "kubernetes/arn:aws:eks:us-east-1:1:cluster/x");
}

Test(spec, infra_errors_suggest)
{
    job_error("name: a\nresources:\n  infra: k8s\n",
              "t.yaml:8:10: resources.infra: unknown infra 'k8s' (did you mean 'kubernetes'?)",
              NULL);
    job_error("name: a\nresources:\n  infra: k8s/prod\n", "did you mean 'kubernetes/prod'?", NULL);
    job_error("name: a\nresources:\n  infra: Kubernetes\n", "did you mean 'kubernetes'?", NULL);
    job_error("name: a\nresources:\n  infra: kubernets\n", "did you mean 'kubernetes'?", NULL);
    job_error("name: a\nresources:\n  infra: aws\n", "unknown infra 'aws'",
              "local, kubernetes or kubernetes/<context>");
    job_error("name: a\nresources:\n  infra: kubernetes/\n", "context name must follow", NULL);
    job_error("name: a\nresources:\n  infra: local/x\n", "'local' takes no context", NULL);
}

/* ---- job_recovery ----------------------------------------------------- */

Test(spec, job_recovery_forms)
{
    jg_group_spec_t *s = job_ok("name: a\njob_recovery:\n  max_restarts_on_errors: 2\n"
                                "  recover_on_exit_codes: 7\n  strategy: FAILOVER\n");
    const jg_recovery_t *r = &s->jobs[0].recovery;
    cr_assert(r->set);
    cr_assert_eq(r->max_restarts_on_errors, 2);
    cr_assert_eq(r->n_recover_on_exit_codes, 1);
    cr_assert_eq(r->recover_on_exit_codes[0], 7);
    cr_assert_str_eq(r->strategy, "FAILOVER");
    jg_spec_free(s);
    s = job_ok("name: a\nresources:\n  job_recovery: EAGER_NEXT_REGION\n");
    cr_assert(s->jobs[0].recovery.set);
    cr_assert_str_eq(s->jobs[0].recovery.strategy, "EAGER_NEXT_REGION");
    jg_spec_free(s);
    s = job_ok("name: a\nresources:\n  job_recovery: {recover_on_exit_codes: [0, 255, 29]}\n");
    cr_assert_eq(s->jobs[0].recovery.n_recover_on_exit_codes, 3);
    cr_assert_eq(s->jobs[0].recovery.recover_on_exit_codes[1], 255);
    cr_assert_eq(s->jobs[0].recovery.max_restarts_on_errors, 0);
    jg_spec_free(s);
}

Test(spec, job_recovery_errors)
{
    job_error("name: a\njob_recovery: {max_restarts_on_errors: -1}\n",
              "job_recovery.max_restarts_on_errors: expected an integer >= 0, got '-1'", NULL);
    job_error("name: a\njob_recovery: {recover_on_exit_codes: [1, 256]}\n",
              "t.yaml:7:43: job_recovery.recover_on_exit_codes[1]: exit code 256 is out of range",
              NULL);
    job_error("name: a\njob_recovery: {recover_on_exit_codes: oops}\n",
              "expected an exit code (0..255), got 'oops'", NULL);
    job_error("name: a\njob_recovery: {max_restart: 3}\n",
              "unknown key 'max_restart' (did you mean 'max_restarts_on_errors'?)", NULL);
    job_error("name: a\njob_recovery: [1]\n", "job_recovery: expected a mapping", NULL);
    job_error("name: a\nresources:\n  job_recovery: {max_restarts_on_errors: 1}\n"
              "job_recovery: {max_restarts_on_errors: 2}\n",
              "t.yaml:9:1: job_recovery: job_recovery is given twice (also at line 8)", NULL);
}

/* ---- unknown keys, wrong types ---------------------------------------- */

Test(spec, unknown_keys_with_did_you_mean)
{
    expect_error("---\nname: g\nexecution: parallel\npolcy: x\n---\nname: a\n",
                 "t.yaml:4:1: unknown key 'polcy' (did you mean 'policy'?)", NULL);
    job_error("name: a\nrnu: x\n", "t.yaml:7:1: unknown key 'rnu' (did you mean 'run'?)", NULL);
    job_error("name: a\nRun: x\n", "unknown key 'Run' (did you mean 'run'?)", NULL);
    job_error("name: a\nresources: {cpu: 2}\n",
              "resources: unknown key 'cpu' (did you mean 'cpus'?)", NULL);
    job_error("name: a\nresources: {gpus: 2}\n", "did you mean 'accelerators'?", NULL);
    job_error("name: a\nnodes: 2\n", "did you mean 'num_nodes'?", NULL);
    job_error("name: a\nplacement: SAME_INFRA\n", "'placement' belongs in the JobGroup header",
              NULL);
    /* nothing close: no suggestion */
    jg_group_spec_t *s = parse(HDR "name: a\nzzzzzzzz: 1\n");
    cr_assert_null(s);
    cr_assert(has(errs.messages, errs.count, "unknown key 'zzzzzzzz'"));
    cr_assert_not(has(errs.messages, errs.count, "did you mean"));
}

Test(spec, wrong_types_say_what_was_expected)
{
    job_error("name: a\nnum_nodes: two\n",
              "t.yaml:7:12: num_nodes: expected an integer >= 1, got 'two'", NULL);
    job_error("name: a\nnum_nodes: 0\n", "num_nodes: expected an integer >= 1, got '0'", NULL);
    job_error("name: a\nnum_nodes: 1.5\n", "num_nodes: expected an integer >= 1", NULL);
    job_error("name: a\nenvs: [a]\n",
              "t.yaml:7:7: envs: expected a mapping of NAME: value, got a list", NULL);
    job_error("name: a\nrun: {x: 1}\n",
              "t.yaml:7:6: run: expected a shell command (a string), got a mapping", NULL);
    job_error("name: a\nsetup: [a, b]\n", "setup: expected a shell command", "got a list");
    job_error("name: a\nresources: [cpus]\n", "resources: expected a mapping", "got a list");
    job_error("name: [a]\n", "name: expected a job name, got a list", NULL);
    job_error("name: a\nvolumes: [x]\n", "volumes: expected a mapping", NULL);
    job_error("name: a\nworkdir: {git: x}\n", "workdir: expected a directory path", NULL);
    expect_error("---\nname: g\nexecution: parallel\nprimary_tasks: {a: 1}\n---\nname: a\n",
                 "primary_tasks: expected a list of job names, got a mapping", NULL);
    expect_error("- a\n- b\n", "a job document must be a mapping", "got a list");
}

Test(spec, file_mounts_and_any_of_not_supported)
{
    job_error("name: a\nfile_mounts: {/x: /y}\n", "t.yaml:7:1: file_mounts: not supported", NULL);
    job_error("name: a\nresources:\n  any_of: [{cpus: 2}]\n", "'any_of' is not supported", NULL);
    job_error("name: a\nresources:\n  ordered: [{cpus: 2}]\n", "'ordered' is not supported",
              NULL);
}

Test(spec, skypilot_keys_are_ignored_with_a_warning)
{
    jg_group_spec_t *s = job_ok("name: a\nresources:\n  cpus: 2\n  use_spot: true\n"
                                "  disk_size: 100\n  cloud: aws\n  ports: [8080]\n");
    cr_assert_eq(errs.n_warnings, 4);
    cr_assert(has(errs.warnings, errs.n_warnings, "t.yaml:9:3: resources: 'use_spot' is a "
                                                  "SkyPilot key that jgsched accepts and ignores"));
    cr_assert(has(errs.warnings, errs.n_warnings, "'cloud'"));
    cr_assert(has(errs.warnings, errs.n_warnings, "use 'infra'"));
    jg_spec_free(s);
}

Test(spec, duplicate_keys_in_a_mapping_are_errors)
{
    job_error("name: a\nrun: x\nrun: y\n",
              "t.yaml:8:1: duplicate key 'run' (first given at line 7, column 1)", NULL);
    job_error("name: a\nenvs: {A: 1, A: 2}\n", "envs: duplicate key 'A'", NULL);
}

/* ---- names -------------------------------------------------------------- */

Test(spec, dns_label_rules_say_which_rule_failed)
{
    job_error("name: My-Job\n", "t.yaml:6:7: name: 'My-Job' is not a valid job name",
              "uppercase letter 'M'");
    job_error("name: my_job\n", "'my_job' is not a valid job name", "contains '_'");
    job_error("name: -job\n", "must start with a lowercase letter or digit", NULL);
    job_error("name: job-\n", "must end with a lowercase letter or digit", NULL);
    job_error("name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
              "is 64 characters long (a DNS label holds at most 63)", NULL);
    job_error("name: \"\"\n", "it is empty", NULL);
    expect_error("---\nname: Group\nexecution: parallel\n---\nname: a\n",
                 "t.yaml:2:7: name: 'Group' is not a valid JobGroup name", "uppercase");
}

Test(spec, job_name_must_leave_room_for_the_rank_in_hostnames)
{
    /* 62 chars + "-0" = 64 > 63 */
    job_error("name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
              "node hostname", "would be 64 characters");
    /* 61 chars + "-0" = 63 fits */
    jg_group_spec_t *s = job_ok("name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
    jg_spec_free(s);
}

Test(spec, is_dns_label)
{
    cr_assert(jg_spec_is_dns_label("a"));
    cr_assert(jg_spec_is_dns_label("job-1"));
    cr_assert(jg_spec_is_dns_label("0abc"));
    cr_assert_not(jg_spec_is_dns_label(""));
    cr_assert_not(jg_spec_is_dns_label(NULL));
    cr_assert_not(jg_spec_is_dns_label("A"));
    cr_assert_not(jg_spec_is_dns_label("a.b"));
    cr_assert_not(jg_spec_is_dns_label("a-"));
    cr_assert_not(jg_spec_is_dns_label("-a"));
    char long_name[65];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    cr_assert_not(jg_spec_is_dns_label(long_name));
    long_name[63] = '\0';
    cr_assert(jg_spec_is_dns_label(long_name));
}

/* ---- YAML syntax, error collection, order ------------------------------ */

Test(spec, yaml_syntax_error_names_position_and_problem)
{
    expect_error(HDR "name: a\nrun: [unclosed\n",
                 "t.yaml:8:1: YAML syntax error: did not find expected ',' or ']'",
                 "while parsing a flow sequence started at line 7, column 6");
    expect_error(HDR "name: a\n\trun: x\n", "YAML syntax error:", "tab");
    expect_error(HDR "name: a\nrun: *nope\n", "t.yaml:7:6: YAML syntax error: found undefined "
                 "alias", NULL);
    expect_error(HDR "name: a\nrun: \xff\n", "t.yaml:7:6: YAML syntax error: invalid leading "
                 "UTF-8 octet", NULL);
}

Test(spec, errors_before_a_syntax_error_are_kept)
{
    jg_group_spec_t *s = parse(HDR "name: a\nnum_nodes: x\n---\nname: b\nrun: [\n");
    cr_assert_null(s);
    cr_assert_eq(errs.count, 2);
    cr_assert(strstr(errs.messages[0], "num_nodes"));
    cr_assert(strstr(errs.messages[1], "YAML syntax error"));
}

Test(spec, all_errors_are_collected_in_file_order)
{
    jg_group_spec_t *s = parse("---\nname: g\nexecution: parallel\nprimary_tasks: [ghost]\n"
                               "---\nname: a\nnum_nodes: two\nresources: {cpus: x}\n"
                               "---\nrun: echo no name\n"
                               "---\nname: a\nenvs: [1]\n");
    cr_assert_null(s);
    if (errs.count != 6)
        dump();
    cr_assert_eq(errs.count, 6);
    cr_assert(strstr(errs.messages[0], "t.yaml:4:17: primary_tasks: 'ghost' is not a job"));
    cr_assert(strstr(errs.messages[1], "t.yaml:7:12: num_nodes"));
    cr_assert(strstr(errs.messages[2], "t.yaml:8:19: resources.cpus: invalid value 'x'"));
    cr_assert(strstr(errs.messages[3], "job at t.yaml:10 must have"));
    cr_assert(strstr(errs.messages[4], "t.yaml:12:7: name: duplicate job name 'a' "
                                       "(first defined at t.yaml:6)"));
    /* the duplicate is still checked field by field */
    cr_assert(strstr(errs.messages[5], "t.yaml:13:7: envs: expected a mapping"));
}

Test(spec, null_errs_is_allowed)
{
    const char *bad = "name: A\n";
    cr_assert_null(jg_spec_parse(bad, strlen(bad), NULL, NULL));
    const char *good = "name: a\n";
    jg_group_spec_t *s = jg_spec_parse(good, strlen(good), NULL, NULL);
    cr_assert_not_null(s);
    cr_assert_null(s->source);
    jg_spec_free(s);
}

Test(spec, unnamed_input_says_input)
{
    const char *bad = "name: a\nnum_nodes: x\n";
    cr_assert_null(jg_spec_parse(bad, strlen(bad), NULL, &errs));
    cr_assert(has(errs.messages, errs.count, "<input>:2:12: num_nodes"));
}

Test(spec, unreadable_file_is_one_error)
{
    jg_group_spec_t *s = jg_spec_parse_file("/nonexistent/jg.yaml", &errs);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.messages[0], "/nonexistent/jg.yaml: cannot read: No such file"));
}

/* ---- scripts, envs, workdir, volumes ----------------------------------- */

Test(spec, block_scalars_keep_their_text)
{
    jg_group_spec_t *s = job_ok("name: a\nsetup: |-\n  one\n    two\nrun: |\n  a\n    b\n\n  c\n");
    cr_assert_str_eq(s->jobs[0].setup, "one\n  two");
    cr_assert_str_eq(s->jobs[0].run, "a\n  b\n\nc\n");
    jg_spec_free(s);
    s = job_ok("name: a\nrun: >\n  folded\n  line\n");
    cr_assert_str_eq(s->jobs[0].run, "folded line\n");
    jg_spec_free(s);
    s = job_ok("name: a\nrun:\nsetup: ~\n");
    cr_assert_null(s->jobs[0].run);
    cr_assert_null(s->jobs[0].setup);
    jg_spec_free(s);
}

Test(spec, envs_keep_scalar_text_in_order)
{
    jg_group_spec_t *s = job_ok("name: a\nenvs:\n  Z: 1\n  B: true\n  C: 1.50\n  D: \"x y\"\n"
                                "  E: ''\n  F: 0x1F\n");
    const jg_job_spec_t *j = &s->jobs[0];
    cr_assert_eq(j->n_envs, 6);
    const char *want[][2] = {{"Z", "1"}, {"B", "true"}, {"C", "1.50"}, {"D", "x y"}, {"E", ""},
                             {"F", "0x1F"}};
    for (size_t i = 0; i < 6; i++) {
        cr_assert_str_eq(j->envs[i].key, want[i][0]);
        cr_assert_str_eq(j->envs[i].value, want[i][1]);
    }
    jg_spec_free(s);
}

Test(spec, envs_errors_and_warnings)
{
    job_error("name: a\nenvs: {A: }\n", "envs.A: no value given", NULL);
    job_error("name: a\nenvs: {9X: y}\n", "envs: invalid variable name '9X'", NULL);
    job_error("name: a\nenvs: {A: [1]}\n", "envs.A: expected a string, number or boolean",
              "got a list");
    jg_group_spec_t *s = job_ok("name: a\nenvs: {SKYPILOT_NODE_RANK: 3}\n");
    cr_assert(has(errs.warnings, errs.n_warnings, "envs.SKYPILOT_NODE_RANK: jgsched sets this"));
    jg_spec_free(s);
}

Test(spec, workdir_is_resolved_against_the_yaml_directory)
{
    jg_group_spec_t *s = load("full.yaml");
    const char *dir = JG_TEST_FIXTURES "/spec";     /* absolute in the meson build */
    if (dir[0] == '/') {
        cr_assert_str_eq(s->jobs[0].workdir, dir);  /* "." */
        cr_assert_str_eq(s->jobs[1].workdir, dir);  /* "../spec/./" */
    }
    cr_assert_eq(s->jobs[0].workdir[0], '/');
    cr_assert_str_eq(s->jobs[0].workdir, s->jobs[1].workdir);
    cr_assert_eq(errs.n_warnings, 0, "the fixture directory exists");
    jg_spec_free(s);
}

Test(spec, workdir_forms)
{
    jg_group_spec_t *s = job_ok("name: a\nworkdir: /nonexistent-jg//x/../y/.\n");
    cr_assert_str_eq(s->jobs[0].workdir, "/nonexistent-jg/y");
    cr_assert(has(errs.warnings, errs.n_warnings,
                  "t.yaml:7:10: workdir: '/nonexistent-jg/y' is not a directory"));
    jg_spec_free(s);
    s = job_ok("name: a\nworkdir: /\n");
    cr_assert_str_eq(s->jobs[0].workdir, "/");
    cr_assert_eq(errs.n_warnings, 0);
    jg_spec_free(s);
    /* a relative workdir in unnamed input is relative to the current directory */
    const char *y = "name: a\nworkdir: sub\n";
    s = jg_spec_parse(y, strlen(y), NULL, &errs);
    cr_assert_not_null(s);
    char *cwd = getcwd(NULL, 0);
    char *want = NULL;
    cr_assert_geq(asprintf(&want, "%s/sub", strcmp(cwd, "/") ? cwd : ""), 0);
    cr_assert_str_eq(s->jobs[0].workdir, want);
    free(want);
    free(cwd);
    jg_spec_free(s);
}

Test(spec, volumes)
{
    jg_group_spec_t *s = job_ok("name: a\nvolumes:\n  /mnt/a: vol-a\n  /mnt/b: 2b\n");
    cr_assert_eq(s->jobs[0].n_volumes, 2);
    cr_assert_str_eq(s->jobs[0].volumes[1].key, "/mnt/b");
    cr_assert_str_eq(s->jobs[0].volumes[1].value, "2b");
    jg_spec_free(s);
    job_error("name: a\nvolumes: {mnt/a: v}\n",
              "t.yaml:7:11: volumes: mount path 'mnt/a' must be absolute", NULL);
    job_error("name: a\nvolumes: {/mnt/a: {size: 10}}\n", "volumes./mnt/a: expected a volume "
              "name", NULL);
    job_error("name: a\nvolumes: {/mnt/a: 'a b'}\n", "invalid volume name 'a b'", NULL);
    /* Volumes are named as config.yaml and `volume create` name them (DNS
     * labels): anything else could never resolve at submit. */
    job_error("name: a\nvolumes: {/d: My_Vol}\n",
              "t.yaml:7:15: volumes./d: invalid volume name 'My_Vol': it contains uppercase "
              "letter 'M'", NULL);
    job_error("name: a\nvolumes: {/d: vol_b}\n", "invalid volume name 'vol_b': it contains '_'",
              NULL);
    job_error("name: a\nvolumes: {/d: v.1}\n", "invalid volume name 'v.1': it contains '.'",
              NULL);
    job_error("name: a\nvolumes: {/d: -v}\n", "invalid volume name '-v': it must start", NULL);
}

Test(spec, long_values_are_cut_in_messages_without_breaking_utf8)
{
    char body[512];
    char val[301] = "";
    for (int i = 0; i < 100; i++)
        strcat(val, "\xc3\xa9");                     /* 'é', two bytes each */
    snprintf(body, sizeof body, "name: a\nnum_nodes: x%s\n", val);
    job_error(body, "num_nodes: expected an integer >= 1, got 'x\xc3\xa9", "...'");
    for (size_t i = 0; i < errs.count; i++) {
        const char *cut = strstr(errs.messages[i], "...'");
        cr_assert(cut && ((unsigned char)cut[-1] & 0xc0) == 0x80, "%s", errs.messages[i]);
        cr_assert(cut && (unsigned char)cut[-2] == 0xc3, "%s", errs.messages[i]);
    }
}

Test(spec, yaml_anchors_and_aliases_resolve)
{
    jg_group_spec_t *s = job_ok("name: a\nenvs: {X: &v hello, Y: *v}\n");
    cr_assert_str_eq(s->jobs[0].envs[1].value, "hello");
    jg_spec_free(s);
}

/* ---- header fields ------------------------------------------------------ */

Test(spec, termination_delay_forms)
{
    static const struct {
        const char *text;
        double secs;
    } ok[] = {{"30s", 30}, {"1m", 60}, {"2h", 7200}, {"45", 45}, {"0", 0}, {"1.5m", 90}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "---\nname: g\nexecution: parallel\nprimary_tasks: [a]\n"
                 "termination_delay: %s\n---\nname: a\n---\nname: b\n", ok[i].text);
        jg_group_spec_t *s = expect_ok(yaml);
        cr_expect_eq(s->termination_delay_s, ok[i].secs, "%s", ok[i].text);
        cr_expect_eq(jg_spec_termination_delay(s, "b"), ok[i].secs);
        jg_spec_free(s);
    }
}

Test(spec, termination_delay_mapping)
{
    jg_group_spec_t *s = expect_ok("---\nname: g\nexecution: parallel\nprimary_tasks: [a]\n"
                                   "termination_delay: {default: 10s, b: 1m}\n"
                                   "---\nname: a\n---\nname: b\n---\nname: c\n");
    cr_assert_eq(s->termination_delay_s, 10);
    cr_assert_eq(s->n_termination_delays, 1);
    cr_assert_str_eq(s->termination_delays[0].key, "b");
    cr_assert_eq(jg_spec_termination_delay(s, "b"), 60);
    cr_assert_eq(jg_spec_termination_delay(s, "c"), 10);
    cr_assert_eq(jg_spec_termination_delay(s, NULL), 10);
    jg_spec_free(s);
}

Test(spec, termination_delay_errors)
{
    expect_error("---\nname: g\nexecution: parallel\ntermination_delay: 30x\n---\nname: a\n",
                 "t.yaml:4:20: termination_delay: invalid duration '30x'", NULL);
    expect_error("---\nname: g\nexecution: parallel\ntermination_delay: {defualt: 1m}\n"
                 "---\nname: a\n",
                 "termination_delay: 'defualt' is not a job of this group (did you mean "
                 "'default'?)", NULL);
    expect_error("---\nname: g\nexecution: parallel\ntermination_delay: {a: -1}\n"
                 "---\nname: a\n", "termination_delay.a: invalid duration '-1'", NULL);
}

/* The scheduler arms a timer of int64 milliseconds from the delay; 10^60 hours
 * made that conversion undefined behaviour in the daemon (found while fuzzing). */
Test(spec, a_termination_delay_too_long_for_a_timer_is_refused)
{
    expect_error("---\nname: g\nexecution: parallel\nprimary_tasks: [a]\n"
                 "termination_delay: 999999999999999999999999999999999999999999999999999999999999h\n"
                 "---\nname: a\n---\nname: b\n",
                 "t.yaml:5:20: termination_delay: '99999", "is too long (at most 7 days, 168h)");
    expect_error("---\nname: g\nexecution: parallel\nprimary_tasks: [a]\n"
                 "termination_delay: {default: 10s, b: 169h}\n---\nname: a\n---\nname: b\n",
                 "termination_delay.b: '169h' is too long", NULL);
    jg_group_spec_t *s = expect_ok("---\nname: g\nexecution: parallel\nprimary_tasks: [a]\n"
                                   "termination_delay: {default: 168h, b: 604800}\n"
                                   "---\nname: a\n---\nname: b\n");
    cr_assert_eq(s->termination_delay_s, JG_SPEC_MAX_TERMINATION_DELAY_S);
    cr_assert_eq(jg_spec_termination_delay(s, "b"), JG_SPEC_MAX_TERMINATION_DELAY_S);
    jg_spec_free(s);
}

Test(spec, termination_delay_without_primary_tasks_warns)
{
    jg_group_spec_t *s = expect_ok("---\nname: g\nexecution: parallel\ntermination_delay: 5s\n"
                                   "---\nname: a\n");
    cr_assert(has(errs.warnings, errs.n_warnings, "has no effect without primary_tasks"));
    jg_spec_free(s);
}

Test(spec, primary_tasks)
{
    jg_group_spec_t *s = expect_ok("---\nname: g\nexecution: parallel\nprimary_tasks: [b]\n"
                                   "---\nname: a\n---\nname: b\n");
    cr_assert_eq(s->n_primary_tasks, 1);
    cr_assert_not(jg_spec_job_is_primary(s, 0));
    cr_assert(jg_spec_job_is_primary(s, 1));
    cr_assert_not(jg_spec_job_is_primary(s, 2));
    jg_spec_free(s);
    /* a single name is a list of one */
    s = expect_ok("---\nname: g\nexecution: parallel\nprimary_tasks: a\n---\nname: a\n");
    cr_assert_eq(s->n_primary_tasks, 1);
    jg_spec_free(s);
    s = load("seed_1_1.yaml");
    cr_assert(jg_spec_job_is_primary(s, 0) && jg_spec_job_is_primary(s, 1));
    jg_spec_free(s);
    expect_error("---\nname: g\nexecution: parallel\nprimary_tasks: [trainr]\n---\nname: trainer\n",
                 "t.yaml:4:17: primary_tasks: 'trainr' is not a job of this group (did you mean "
                 "'trainer'?)", NULL);
    expect_error("---\nname: g\nexecution: parallel\nprimary_tasks: [a, a]\n---\nname: a\n",
                 "primary_tasks: job 'a' is listed twice", NULL);
}

Test(spec, policy_is_kept)
{
    jg_group_spec_t *s = expect_ok("---\nname: g\nexecution: parallel\npolicy: fail-fast\n"
                                   "---\nname: a\n");
    cr_assert_str_eq(s->policy, "fail-fast");
    jg_spec_free(s);
}

/* ---- JSON ---------------------------------------------------------------- */

static void same_str(const char *x, const char *y)
{
    cr_assert((x == NULL) == (y == NULL), "'%s' vs '%s'", x ? x : "(null)", y ? y : "(null)");
    if (x)
        cr_assert_str_eq(x, y);
}

static void assert_same(const jg_group_spec_t *a, const jg_group_spec_t *b)
{
    same_str(a->name, b->name);
    same_str(a->source, b->source);
    cr_assert_eq(a->n_primary_tasks, b->n_primary_tasks);
    cr_assert_eq(a->termination_delay_s, b->termination_delay_s);
    cr_assert_eq(a->n_termination_delays, b->n_termination_delays);
    same_str(a->policy, b->policy);
    for (size_t i = 0; i < a->n_primary_tasks; i++)
        same_str(a->primary_tasks[i], b->primary_tasks[i]);
    for (size_t i = 0; i < a->n_termination_delays; i++) {
        same_str(a->termination_delays[i].key, b->termination_delays[i].key);
        same_str(a->termination_delays[i].value, b->termination_delays[i].value);
    }
    cr_assert_eq(a->n_jobs, b->n_jobs);
    for (size_t i = 0; i < a->n_jobs; i++) {
        const jg_job_spec_t *x = &a->jobs[i], *y = &b->jobs[i];
        cr_assert_str_eq(x->name, y->name);
        cr_assert_eq(x->line, y->line);
        cr_assert_eq(x->num_nodes, y->num_nodes);
        cr_assert(x->cpus.set == y->cpus.set && x->cpus.value == y->cpus.value &&
                  x->cpus.at_least == y->cpus.at_least);
        cr_assert(x->memory_gb.set == y->memory_gb.set &&
                  x->memory_gb.value == y->memory_gb.value &&
                  x->memory_gb.at_least == y->memory_gb.at_least);
        same_str(x->accel.name, y->accel.name);
        cr_assert_eq(x->accel.count, y->accel.count);
        same_str(x->infra, y->infra);
        cr_assert_eq(x->recovery.set, y->recovery.set);
        cr_assert_eq(x->recovery.max_restarts_on_errors, y->recovery.max_restarts_on_errors);
        cr_assert_eq(x->recovery.n_recover_on_exit_codes, y->recovery.n_recover_on_exit_codes);
        for (size_t k = 0; k < x->recovery.n_recover_on_exit_codes; k++)
            cr_assert_eq(x->recovery.recover_on_exit_codes[k], y->recovery.recover_on_exit_codes[k]);
        same_str(x->recovery.strategy, y->recovery.strategy);
        same_str(x->setup, y->setup);
        same_str(x->workdir, y->workdir);
        cr_assert_eq(x->n_envs, y->n_envs);
        for (size_t k = 0; k < x->n_envs; k++) {
            cr_assert_str_eq(x->envs[k].key, y->envs[k].key);
            cr_assert_str_eq(x->envs[k].value, y->envs[k].value);
        }
        cr_assert_eq(x->n_volumes, y->n_volumes);
        for (size_t k = 0; k < x->n_volumes; k++) {
            same_str(x->volumes[k].key, y->volumes[k].key);
            same_str(x->volumes[k].value, y->volumes[k].value);
        }
        same_str(x->run, y->run);
    }
}

Test(spec, json_round_trip_is_lossless)
{
    const char *files[] = {"full.yaml", "seed_4.yaml", "seed_5_4.yaml", "seed_6_1.yaml"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        jg_group_spec_t *s = load(files[f]);
        char *json = jg_spec_to_json(s);
        cr_assert_not_null(json);
        jg_error_t err = {{0}};
        jg_group_spec_t *back = jg_spec_from_json(json, &err);
        cr_assert_not_null(back, "%s: %s", files[f], err.text);
        char *again = jg_spec_to_json(back);
        cr_assert_str_eq(json, again, "%s: JSON differs after a round trip", files[f]);
        assert_same(s, back);
        free(again);
        free(json);
        jg_spec_free(back);
        jg_spec_free(s);
    }
}

Test(spec, json_round_trip_keeps_awkward_values)
{
    jg_group_spec_t *s = expect_ok("---\nname: g\nexecution: parallel\nprimary_tasks: [a]\n"
                                   "termination_delay: {default: 0.1s, a: 0.3m}\n---\nname: a\n"
                                   "resources: {cpus: 0.1, memory: 1000MB+}\n"
                                   "envs: {U: \"\\u00e9\\n\\ttab\"}\n");
    jg_spec_free(s);
    s = expect_ok("---\nname: g\nexecution: parallel\nprimary_tasks: [a]\n"
                  "termination_delay: {default: 0.1s, a: 0.3m}\n---\nname: a\n"
                  "resources: {cpus: 0.1, memory: 1000MB+}\n"
                  "envs: {U: \"\\u00e9\\n\\ttab\"}\n");
    char *json = jg_spec_to_json(s);
    jg_group_spec_t *back = jg_spec_from_json(json, NULL);
    cr_assert_not_null(back);
    cr_assert_eq(back->jobs[0].cpus.value, 0.1);
    cr_assert_eq(back->jobs[0].memory_gb.value, 1000.0 / 1024);
    cr_assert_eq(back->termination_delay_s, 0.1);
    cr_assert_eq(jg_spec_termination_delay(back, "a"), 0.3 * 60);
    cr_assert_str_eq(back->jobs[0].envs[0].value, "\xc3\xa9\n\ttab");
    free(json);
    jg_spec_free(back);
    jg_spec_free(s);
}

Test(spec, json_reading_is_strict)
{
    jg_error_t err = {{0}};
    cr_assert_null(jg_spec_from_json("{", &err));
    cr_assert(strstr(err.text, "spec JSON"));
    cr_assert_null(jg_spec_from_json(NULL, &err));
    cr_assert_null(jg_spec_from_json("{\"name\":\"g\",\"jobs\":[],\"bogus\":1}", &err));
    cr_assert(strstr(err.text, "bogus"), "%s", err.text);
    cr_assert_null(jg_spec_from_json("{\"name\":\"G\",\"jobs\":[]}", &err));
    cr_assert(strstr(err.text, "not a DNS label"), "%s", err.text);
    cr_assert_null(jg_spec_from_json("{\"name\":\"g\",\"jobs\":[{\"name\":\"a\","
                                     "\"num_nodes\":0}]}", &err));
    cr_assert(strstr(err.text, "jobs[0].num_nodes"), "%s", err.text);
    cr_assert_null(jg_spec_from_json("{\"name\":\"g\",\"jobs\":[{\"name\":\"a\",\"num_nodes\":1,"
                                     "\"envs\":{\"A\":1}}]}", &err));
    cr_assert(strstr(err.text, "jobs[0].envs.A"), "%s", err.text);
    cr_assert_null(jg_spec_from_json("{\"name\":\"g\",\"jobs\":[{\"name\":\"a\",\"num_nodes\":1,"
                                     "\"recovery\":{\"max_restarts_on_errors\":1,"
                                     "\"recover_on_exit_codes\":[300]}}]}", &err));
    cr_assert(strstr(err.text, "recover_on_exit_codes[0]"), "%s", err.text);
    jg_group_spec_t *s = jg_spec_from_json("{\"name\":\"g\",\"jobs\":[{\"name\":\"a\","
                                           "\"num_nodes\":2}]}", &err);
    cr_assert_not_null(s, "%s", err.text);
    cr_assert_eq(s->jobs[0].num_nodes, 2);
    cr_assert_not(s->jobs[0].cpus.set);
    jg_spec_free(s);
}

/* ---- describe, helpers -------------------------------------------------- */

Test(spec, describe_summarises_group_and_jobs)
{
    jg_group_spec_t *s = load("full.yaml");
    char *d = jg_spec_describe(s);
    cr_assert_not_null(d);
    const char *want[] = {
        "JobGroup rl-full", "placement:          SAME_INFRA", "execution:          parallel",
        "primary tasks:      trainer", "termination delay:  30s (replay-buffer: 120s)",
        "policy:             fail-fast", "jobs:               2 (3 nodes)",
        "job trainer  [primary]", "num_nodes:    2", "cpus:         4+",
        "memory:       8+ GiB", "accelerators: H100:8", "infra:        kubernetes/gke-prod",
        "up to 3 restarts on errors", "29, 137", "EAGER_NEXT_REGION", "LR=0.001",
        "/mnt/ckpt <- checkpoints", "setup:        pip install -r requirements.txt  (+1 more line)",
        "run:          python train.py \\  (+3 more lines)", "job replay-buffer",
        "memory:       0.5 GiB", "accelerators: A100:2", "infra:        local",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(d, want[i]), "description lacks '%s':\n%s", want[i], d);
    free(d);
    jg_spec_free(s);
    s = load("seed_5_4.yaml");
    d = jg_spec_describe(s);
    cr_assert(strstr(d, "run:          none (the job succeeds at once)"), "%s", d);
    cr_assert(strstr(d, "primary tasks:      all jobs"), "%s", d);
    free(d);
    jg_spec_free(s);
}

Test(spec, set_name_and_infra)
{
    jg_group_spec_t *s = load("seed_1_1.yaml");
    jg_error_t err = {{0}};
    cr_assert_eq(jg_spec_set_name(s, "group-1", &err), 0);
    cr_assert_str_eq(s->name, "group-1");
    cr_assert_eq(jg_spec_set_name(s, "Group_1", &err), -1);
    cr_assert(strstr(err.text, "'Group_1' is not a valid JobGroup name"), "%s", err.text);
    cr_assert_str_eq(s->name, "group-1");
    cr_assert_eq(jg_spec_set_infra(s, "kubernetes/ctx", &err), 0);
    cr_assert_str_eq(s->jobs[0].infra, "kubernetes/ctx");
    cr_assert_str_eq(s->jobs[1].infra, "kubernetes/ctx");
    cr_assert_eq(jg_spec_set_infra(s, "k8s", &err), -1);
    cr_assert(strstr(err.text, "did you mean 'kubernetes'"), "%s", err.text);
    cr_assert_str_eq(s->jobs[0].infra, "kubernetes/ctx");
    jg_spec_free(s);
}

Test(spec, find_job_and_total_nodes)
{
    jg_group_spec_t *s = load("seed_4.yaml");
    cr_assert_eq(jg_spec_find_job(s, "trainer"), 0);
    cr_assert_eq(jg_spec_find_job(s, "env-worker"), 3);
    cr_assert_eq(jg_spec_find_job(s, "nope"), -1);
    cr_assert_eq(jg_spec_find_job(s, NULL), -1);
    cr_assert_eq(jg_spec_total_nodes(s), 7);
    jg_spec_free(s);
    jg_spec_free(NULL);
    jg_spec_errors_free(NULL);
}

Test(spec, many_jobs_parse_and_duplicates_are_found)
{
    size_t cap = 1 << 20, len = 0;
    char *y = malloc(cap);
    cr_assert_not_null(y);
    len += (size_t)snprintf(y + len, cap - len, "name: big\nexecution: parallel\n");
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(y + len, cap - len, "---\nname: job-%d\nrun: echo %d\n", i, i);
    len += (size_t)snprintf(y + len, cap - len, "---\nname: job-1234\n");
    jg_group_spec_t *s = jg_spec_parse(y, len, "big.yaml", &errs);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.messages[0], "duplicate job name 'job-1234' (first defined at "
                                       "big.yaml:"), "%s", errs.messages[0]);
    jg_spec_errors_free(&errs);
    len -= strlen("---\nname: job-1234\n");
    s = jg_spec_parse(y, len, "big.yaml", &errs);
    cr_assert_not_null(s);
    cr_assert_eq(s->n_jobs, 2000);
    cr_assert_str_eq(s->jobs[1999].name, "job-1999");
    jg_spec_free(s);
    free(y);
}
