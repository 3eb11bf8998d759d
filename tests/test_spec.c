/* test_spec.c - the JobGroup YAML parser: what it accepts, what it rejects and
 * how it says so (file:line:col, the field, the value), the JSON round trip,
 * the description and the small helpers.  Fixtures live in fixtures/spec/:
 * copies of every YAML in the user's test plan (seed_*.yaml) plus full.yaml,
 * which uses every field.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
                 "t.yaml:9:1: name: this job has no name (every job needs one: add name: "
                 "<job-name>, a DNS label)", NULL);
    expect_error(HDR "name:\nrun: echo hello\n", "t.yaml:6:6: name: this job has no name", NULL);
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
                 "t.yaml:1:1: execution: a header with only 'name' is a chain (jobs run one "
                 "after another); jgsched runs JobGroups only: add 'execution: parallel' to the "
                 "header",
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
    expect_error("run: echo hi\n", "t.yaml:1:1: name: this job has no name", NULL);
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
                 "t.yaml:3:1: run: a JobGroup's first document is its header (name, "
                 "placement, execution, primary_tasks, termination_delay, policy), and 'run' may "
                 "not be in it: put it in a job document after the header, or add a header "
                 "document before this one", NULL);
}

Test(spec, header_requires_a_name)
{
    expect_error("---\nplacement: SAME_INFRA\nexecution: parallel\n---\nname: a\n",
                 "t.yaml:2:1: name: the JobGroup header has no name (add name: <group-name>, "
                 "a DNS label)", NULL);
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

Test(spec, image_id_docker_form)
{
    jg_group_spec_t *s = job_ok("name: a\nresources:\n  image_id: docker:ubuntu:22.04\n");
    cr_assert_str_eq(s->jobs[0].image_id, "docker:ubuntu:22.04");
    /* It survives the store's JSON form. */
    char *json = jg_spec_to_json(s);
    jg_error_t err = {{0}};
    jg_group_spec_t *back = jg_spec_from_json(json, &err);
    cr_assert_not_null(back, "%s", err.text);
    cr_expect_str_eq(back->jobs[0].image_id, "docker:ubuntu:22.04");
    jg_spec_free(back);
    free(json);
    jg_spec_free(s);
    s = job_ok("name: a\nresources:\n  cpus: 1\n");
    cr_expect_null(s->jobs[0].image_id);
    jg_spec_free(s);
    job_error("name: a\nresources:\n  image_id: ubuntu:22.04\n",
              "t.yaml:8:13: resources.image_id: invalid value 'ubuntu:22.04'", "docker:<image>");
    job_error("name: a\nresources:\n  image_id: \"docker:\"\n", "an image must follow", NULL);
    job_error("name: a\nresources:\n  image_id: \"docker:bad image\"\n", "resources.image_id",
              "letters, digits");
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
                 "t.yaml:4:1: polcy: unknown key 'polcy' (did you mean 'policy'?)", NULL);
    job_error("name: a\nrnu: x\n", "t.yaml:7:1: rnu: unknown key 'rnu' (did you mean 'run'?)", NULL);
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
    expect_error(HDR "name: a\nrun: *nope\n", "t.yaml:7:6: run: found undefined alias *nope "
                 "(no anchor &nope comes before it)", NULL);
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
    cr_assert(strstr(errs.messages[3], "t.yaml:10:1: name: this job has no name"));
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

/* Issue 10: the daemon parses a submit for another user, maybe as root: `~`
 * is the submitter's home, and no path is looked at (no warning tells whether
 * /root/secret exists; nothing can hang on a dead mount). */
Test(spec, a_submit_parsed_for_another_user_looks_at_no_path)
{
    const char *y = "---\nname: g\nexecution: parallel\n---\nname: a\nworkdir: /root/secret-jg\nrun: 'true'\n"
                    "---\nname: b\nworkdir: ~/proj\nrun: 'true'\n"
                    "---\nname: c\nworkdir: sub\nrun: 'true'\n";
    jg_spec_errors_t e = {0};
    jg_group_spec_t *s = jg_spec_parse_for(y, strlen(y), "/home/alice/g.yaml", NULL,
                                           "/home/alice", &e);
    cr_assert_not_null(s, "%s", e.count ? e.messages[0] : "?");
    cr_expect_eq(e.n_warnings, 0, "a warning tells whether a path exists: %s",
                 e.n_warnings ? e.warnings[0] : "");
    cr_expect_str_eq(s->jobs[1].workdir, "/home/alice/proj");
    cr_expect_str_eq(s->jobs[2].workdir, "/home/alice/sub");
    jg_spec_free(s);
    jg_spec_errors_free(&e);
    /* No home, or no absolute file to resolve against: errors, not the daemon's own. */
    s = jg_spec_parse_for(y, strlen(y), "g.yaml", NULL, NULL, &e);
    cr_assert_null(s);
    cr_expect(has(e.messages, e.count,
                  "workdir: cannot expand '~' in '~/proj': the submitting user has no home"),
              "%s", e.messages[0]);
    cr_expect(has(e.messages, e.count, "workdir: cannot resolve 'sub': the submit named no "
                                       "absolute file"), "%s", e.messages[0]);
    jg_spec_errors_free(&e);
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

/* SkyPilot 0.14's header field, next to termination_delay in both forms. */
Test(spec, inter_connection_is_accepted_recorded_and_round_trips)
{
    static const struct {
        const char *text;
        bool off;
    } forms[] = {{"true", false}, {"false", true}, {"True", false}, {"False", true}};
    static const char *const delays[] = {"30s", "{default: 10s, b: 1m}"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        for (size_t d = 0; d < 2; d++) {
            char yaml[320];
            snprintf(yaml, sizeof yaml,
                     "---\nname: g\nexecution: parallel\ninter_connection: %s\n"
                     "primary_tasks: [a]\ntermination_delay: %s\n---\nname: a\n---\nname: b\n",
                     forms[i].text, delays[d]);
            jg_group_spec_t *s = expect_ok(yaml);
            cr_expect_eq(s->inter_connection_off, forms[i].off, "%s", forms[i].text);
            cr_expect_eq(jg_spec_termination_delay(s, "b"), d ? 60 : 30, "%s", delays[d]);
            char *json = jg_spec_to_json(s);
            jg_error_t err;
            jg_group_spec_t *back = jg_spec_from_json(json, &err);
            cr_assert_not_null(back, "%s", err.text);
            cr_expect_eq(back->inter_connection_off, forms[i].off, "round trip of %s",
                         forms[i].text);
            free(json);
            jg_spec_free(back);
            jg_spec_free(s);
        }
    }
    jg_group_spec_t *s = expect_ok("---\nname: g\nexecution: parallel\n---\nname: a\n");
    cr_expect_not(s->inter_connection_off, "default: true");
    jg_spec_free(s);
    /* A spec stored before the field existed reads as true. */
    jg_error_t err;
    s = jg_spec_from_json("{\"name\":\"g\",\"jobs\":[{\"name\":\"a\"}]}", &err);
    if (s)
        cr_expect_not(s->inter_connection_off);
    jg_spec_free(s);
    expect_error("---\nname: g\nexecution: parallel\ninter_connection: maybe\n---\nname: a\n",
                 "t.yaml:4:19: inter_connection: expected true or false, got 'maybe'", NULL);
    expect_error("---\nname: g\nexecution: parallel\ninter_conection: true\n---\nname: a\n",
                 "did you mean 'inter_connection'", NULL);
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
    /* 2000 jobs: over the default bound of nodes per group, raised here */
    jg_spec_limits_t lim = jg_spec_limits_default();
    lim.max_nodes_per_group = 4000;
    jg_group_spec_t *s = jg_spec_parse_with(y, len, "big.yaml", &lim, &errs);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.messages[0], "duplicate job name 'job-1234' (first defined at "
                                       "big.yaml:"), "%s", errs.messages[0]);
    jg_spec_errors_free(&errs);
    len -= strlen("---\nname: job-1234\n");
    s = jg_spec_parse_with(y, len, "big.yaml", &lim, &errs);
    cr_assert_not_null(s);
    cr_assert_eq(s->n_jobs, 2000);
    cr_assert_str_eq(s->jobs[1999].name, "job-1999");
    jg_spec_free(s);
    free(y);
}

/* ---- bounds (jg_spec_limits_t): at the limit, and one over ------------- */

static jg_group_spec_t *parse_lim(const char *yaml, size_t len, const jg_spec_limits_t *lim)
{
    jg_spec_errors_free(&errs);
    return jg_spec_parse_with(yaml, len, "t.yaml", lim, &errs);
}

/* The parse with lim fails with exactly one error, equal to want. */
static void expect_one_error(const char *yaml, const jg_spec_limits_t *lim, const char *want)
{
    jg_group_spec_t *s = parse_lim(yaml, strlen(yaml), lim);
    if (s || errs.count != 1)
        dump();
    jg_spec_free(s);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert_str_eq(errs.messages[0], want);
}

static void expect_ok_lim(const char *yaml, const jg_spec_limits_t *lim)
{
    jg_group_spec_t *s = parse_lim(yaml, strlen(yaml), lim);
    if (!s)
        dump();
    cr_assert_not_null(s, "expected success for:\n%s", yaml);
    jg_spec_free(s);
}

/* A growing text built with printf-like appends. */
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
        cr_assert_not_null(t->p);
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

Test(spec, default_limits_are_documented_values)
{
    jg_spec_limits_t l = jg_spec_limits_default();
    cr_assert_eq(l.max_bytes, 512 * 1024);
    cr_assert_eq(l.max_depth, 64);
    cr_assert_eq(l.max_keys_per_mapping, 1024);
    cr_assert_eq(l.max_keys, 65536);
    cr_assert_eq(l.max_envs, 1024);
    cr_assert_eq(l.max_string, 128 * 1024);
    cr_assert_eq(l.max_nodes_per_job, 1024);
    cr_assert_eq(l.max_nodes_per_group, 1024);
}

Test(spec, size_bound_at_and_over)
{
    jg_spec_limits_t lim = jg_spec_limits_default();
    const char *yaml = "name: a\nrun: echo 123456789\n";    /* 28 bytes */
    lim.max_bytes = strlen(yaml);
    expect_ok_lim(yaml, &lim);
    lim.max_bytes = strlen(yaml) - 1;
    expect_one_error(yaml, &lim, "t.yaml:2:20: size: the YAML is 28 bytes, over the limit of 27 "
                     "bytes (spec_limits.max_bytes = 27); the limit is passed here");
    /* the default: 512 KiB exactly passes the size check, one byte more does not */
    text_t t = {0};
    add(&t, "name: a\nrun: echo\n");
    while (t.len < 512 * 1024 - 80)
        add(&t, "# %070d\n", 0);
    add(&t, "#");
    while (t.len < 512 * 1024 - 1)
        add(&t, "x");
    add(&t, "\n");
    cr_assert_eq(t.len, 512 * 1024);
    jg_group_spec_t *s = parse_lim(t.p, t.len, NULL);
    jg_spec_free(s);
    cr_assert_not_null(s);
    add(&t, "\n");
    s = parse_lim(t.p, t.len, NULL);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.messages[0], ": size: the YAML is 524289 bytes, over the limit of "
                                       "512 KiB (spec_limits.max_bytes = 524288)"),
              "%s", errs.messages[0]);
    free(t.p);
}

Test(spec, reading_a_file_stops_past_the_size_bound)
{
    char path[] = "/tmp/jg-spec-big-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("name: a\nrun: |\n", f);
    for (int i = 0; i < 70000; i++)         /* about 5 MB */
        fprintf(f, "  echo %070d\n", i);
    fclose(f);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    jg_group_spec_t *s = jg_spec_parse_file(path, &errs);
    char want[256];
    snprintf(want, sizeof want, "%s:6724:36: size: the YAML is %lld bytes, over the limit of "
             "512 KiB (spec_limits.max_bytes = 524288); the limit is passed here", path,
             (long long)st.st_size);
    unlink(path);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert_str_eq(errs.messages[0], want);
    /* a FIFO is refused, not waited on */
    cr_assert_eq(mkfifo(path, 0600), 0);
    s = jg_spec_parse_file(path, &errs);
    unlink(path);
    cr_assert_null(s);
    cr_assert(has(errs.messages, errs.count, ": cannot read: not a regular file"));
}

Test(spec, depth_bound_at_and_over)
{
    /* the root mapping and resources: 2 levels, then 62 lists */
    text_t t = {0};
    add(&t, "name: a\nresources:\n  labels: ");
    for (int i = 0; i < 62; i++)
        add(&t, "[");
    add(&t, "x");
    for (int i = 0; i < 62; i++)
        add(&t, "]");
    add(&t, "\n");
    expect_ok_lim(t.p, NULL);       /* 64 levels: the default limit */
    t.len = 0;
    add(&t, "name: a\nresources:\n  labels: ");
    for (int i = 0; i < 100000; i++)
        add(&t, "[");
    for (int i = 0; i < 100000; i++)
        add(&t, "]");
    add(&t, "\n");
    expect_one_error(t.p, NULL, "t.yaml:3:73: resources.labels[0][0][0][0][0][0][0][0][0][0]"
                     "[0][0][0][0][0]...: nested more than 64 levels deep, the limit "
                     "(spec_limits.max_depth)");
    free(t.p);
    jg_spec_limits_t lim = jg_spec_limits_default();
    lim.max_depth = 3;
    expect_ok_lim("name: a\nresources: {labels: {a: x}}\n", &lim);
    expect_one_error("name: a\nresources: {labels: {a: {b: x}}}\n", &lim,
                     "t.yaml:2:25: resources.labels.a: nested more than 3 levels deep, the limit "
                     "(spec_limits.max_depth)");
}

Test(spec, keys_per_mapping_bound_at_and_over)
{
    text_t t = {0};
    add(&t, "name: a\nenvs:\n");
    for (int i = 0; i < 1024; i++)
        add(&t, "  K%d: v\n", i);
    expect_ok_lim(t.p, NULL);
    add(&t, "  K1024: v\n");
    expect_one_error(t.p, NULL, "t.yaml:1027:3: envs: more than 1024 keys in one mapping, the "
                     "limit (spec_limits.max_keys_per_mapping)");
    /* list items count the same way */
    t.len = 0;
    add(&t, "name: a\njob_recovery:\n  recover_on_exit_codes: [1");
    for (int i = 1; i < 1024; i++)
        add(&t, ", 1");
    add(&t, "]\n");
    expect_ok_lim(t.p, NULL);
    t.p[t.len - 2] = ',';
    add(&t, " 1]\n");
    t.p[t.len - 5] = ' ';
    jg_group_spec_t *s = parse_lim(t.p, t.len, NULL);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.messages[0], ": job_recovery.recover_on_exit_codes: more than 1024 "
                                       "items in one list, the limit "
                                       "(spec_limits.max_keys_per_mapping)"),
              "%s", errs.messages[0]);
    free(t.p);
}

Test(spec, total_keys_bound_at_and_over)
{
    jg_spec_limits_t lim = jg_spec_limits_default();
    const char *yaml = "name: a\nenvs: {A: '1', B: '2'}\n";     /* name, envs, A, B */
    lim.max_keys = 4;
    expect_ok_lim(yaml, &lim);
    lim.max_keys = 3;
    expect_one_error(yaml, &lim, "t.yaml:2:16: envs: more than 3 keys and list items in the "
                     "whole YAML, the limit (spec_limits.max_keys)");
    /* the count runs over every document of the stream */
    lim.max_keys = 5;
    expect_ok_lim(HDR "name: a\n---\nname: b\n", &lim);    /* 3 + 1 + 1 */
    lim.max_keys = 4;
    expect_one_error(HDR "name: a\n---\nname: b\n", &lim, "t.yaml:8:1: document: more than 4 "
                     "keys and list items in the whole YAML, the limit (spec_limits.max_keys)");
}

Test(spec, envs_bound_at_and_over)
{
    jg_spec_limits_t lim = jg_spec_limits_default();
    lim.max_envs = 2;
    expect_ok_lim("name: a\nenvs: {A: '1', B: '2'}\n", &lim);
    expect_one_error("name: a\nenvs: {A: '1', B: '2', C: '3'}\n", &lim,
                     "t.yaml:2:7: envs: 3 variables, over the limit of 2 per job "
                     "(spec_limits.max_envs)");
}

Test(spec, string_bound_at_and_over)
{
    jg_spec_limits_t lim = jg_spec_limits_default();
    lim.max_string = 9;
    expect_ok_lim("name: a\nrun: echo 1234\n", &lim);
    expect_one_error("name: a\nrun: echo 12345\n", &lim, "t.yaml:2:6: run: a string of 10 "
                     "bytes, over the limit of 9 bytes (spec_limits.max_string = 9)");
    /* keys are strings too */
    expect_one_error("name: a\nenvs: {ABCDEFGHIJ: x}\n", &lim, "t.yaml:2:8: envs: a string of "
                     "10 bytes, over the limit of 9 bytes (spec_limits.max_string = 9)");
}

Test(spec, nodes_per_job_bound_at_and_over)
{
    expect_ok_lim("name: a\nnum_nodes: 1024\n", NULL);
    expect_one_error("name: a\nnum_nodes: 1025\n", NULL, "t.yaml:2:12: num_nodes: 1025 nodes, "
                     "over the limit of 1024 nodes per job (spec_limits.max_nodes_per_job)");
    expect_one_error("name: a\nnum_nodes: 2000000\n", NULL, "t.yaml:2:12: num_nodes: 2000000 "
                     "nodes, over the limit of 1024 nodes per job "
                     "(spec_limits.max_nodes_per_job)");
    expect_one_error("name: a\nnum_nodes: 99999999999999999999\n", NULL, "t.yaml:2:12: "
                     "num_nodes: '99999999999999999999' nodes, over the limit of 1024 nodes per "
                     "job (spec_limits.max_nodes_per_job)");
    expect_one_error("name: a\nnum_nodes: 0\n", NULL,
                     "t.yaml:2:12: num_nodes: expected an integer >= 1, got '0'");
}

Test(spec, nodes_per_group_bound_at_and_over)
{
    expect_ok_lim(HDR "name: a\nnum_nodes: 512\n---\nname: b\nnum_nodes: 512\n", NULL);
    expect_one_error(HDR "name: a\nnum_nodes: 512\n---\nname: b\nnum_nodes: 513\n", NULL,
                     "t.yaml:10:12: num_nodes: with this job the group has 1025 nodes, over the "
                     "limit of 1024 nodes per group (spec_limits.max_nodes_per_group); the documents after this "
                     "one are not read");
    /* jobs of one node each count too: the error is at the job that passes it */
    jg_spec_limits_t lim = jg_spec_limits_default();
    lim.max_nodes_per_group = 2;
    expect_ok_lim(HDR "name: a\n---\nname: b\n", &lim);
    expect_one_error(HDR "name: a\n---\nname: b\n---\nname: c\n---\nname: NOT_READ\n", &lim,
                     "t.yaml:10:1: num_nodes: with this job the group has 3 nodes, over the "
                     "limit of 2 nodes per group (spec_limits.max_nodes_per_group); the documents after this one "
                     "are not read");
}

Test(spec, alias_expansion_counts_against_the_size_bound)
{
    jg_spec_limits_t lim = jg_spec_limits_default();
    const char *yaml = "name: a\nresources: {labels: &x '0123456789'}\n"
                       "envs: {A: *x, B: *x}\n";
    lim.max_bytes = strlen(yaml) + 22;          /* two aliases of 11 bytes each */
    expect_ok_lim(yaml, &lim);
    lim.max_bytes = strlen(yaml) + 21;
    char want[200];
    snprintf(want, sizeof want, "t.yaml:3:18: envs.B: with its aliases expanded the YAML would be "
             "over %zu bytes, the limit of %zu bytes (spec_limits.max_bytes)",
             strlen(yaml) + 22, lim.max_bytes);
    expect_one_error(yaml, &lim, want);
    expect_one_error("name: a\nresources: {labels: &x [*x]}\n", NULL,
                     "t.yaml:2:25: resources.labels[0]: alias *x refers to a node that contains "
                     "it");
}

Test(spec, billion_laughs_is_refused_early)
{
    text_t t = {0};
    add(&t, "name: a\nresources:\n  labels:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++)
        add(&t, "    l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
            i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    jg_group_spec_t *s = parse_lim(t.p, t.len, NULL);
    cr_assert_null(s);
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.messages[0], "with its aliases expanded the YAML would be over"),
              "%s", errs.messages[0]);
    free(t.p);
}

Test(spec, duplicate_keys_in_a_large_mapping_name_the_first)
{
    text_t t = {0};
    add(&t, "name: a\nenvs:\n");
    for (int i = 0; i < 1000; i++)
        add(&t, "  K%d: v\n", i);
    add(&t, "  K7: w\n");
    expect_one_error(t.p, NULL, "t.yaml:1003:3: envs: duplicate key 'K7' (first given at line "
                     "10, column 3)");
    free(t.p);
}

Test(spec, errors_past_the_cap_are_counted_not_listed)
{
    text_t t = {0};
    add(&t, "name: a\nresources:\n");
    for (int i = 0; i < 150; i++)
        add(&t, "  bogus%d: 1\n", i);
    jg_group_spec_t *s = parse_lim(t.p, t.len, NULL);
    cr_assert_null(s);
    cr_assert_eq(errs.count, JG_SPEC_MAX_MESSAGES + 1);
    cr_assert(strstr(errs.messages[0], "t.yaml:3:3: resources: unknown key 'bogus0'"), "%s",
              errs.messages[0]);
    cr_assert_str_eq(errs.messages[JG_SPEC_MAX_MESSAGES],
                     "t.yaml: 50 more errors not shown (only the first 100 are listed)");
    free(t.p);
}

/* Every message about a place in a file reads file:line:column: field: message. */
Test(spec, every_error_names_file_line_column_and_field)
{
    static const char *const bad[] = {
        HDR "name: a\nrun: echo a\n---\nrun: echo hello\n",     /* job without a name */
        "---\nplacement: SAME_INFRA\nexecution: parallel\n---\nname: a\n",  /* header */
        "name: foo\n---\nname: a\nrun: x\n",                    /* chain */
        "---\nname: a\nrun: x\n---\nname: b\n",                 /* header holding run */
        HDR "name: a\nrun: *nope\n",
        HDR "name: a\nnum_nodes: 5000\n",
        HDR "name: a\nenvs: {A: 1, A: 2}\n",
        HDR "name: a\nnum_node: 2\n",
        HDR "name: a\nrun: [\n",
    };
    regex_t re;
    cr_assert_eq(regcomp(&re, "^t\\.yaml:[0-9]+:[0-9]+: [A-Za-z_.]+[^:]*: [^ ]", REG_EXTENDED), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jg_group_spec_t *s = parse(bad[i]);
        cr_assert_null(s);
        cr_assert_gt(errs.count, 0);
        for (size_t k = 0; k < errs.count; k++)
            cr_expect_eq(regexec(&re, errs.messages[k], 0, NULL, 0), 0,
                         "not file:line:column: field: message: %s", errs.messages[k]);
    }
    regfree(&re);
}

Test(spec, yaml_directives_are_bounded)
{
    text_t t = {0};
    for (int i = 0; i < 16; i++)
        add(&t, "%%TAG !t%d! tag:x,2026:%d\n", i, i);
    add(&t, "---\nname: a\n");
    expect_ok_lim(t.p, NULL);
    t.len = 0;
    for (int i = 0; i < 17; i++)
        add(&t, "%%TAG !t%d! tag:x,2026:%d\n", i, i);
    add(&t, "---\nname: a\n");
    expect_one_error(t.p, NULL, "t.yaml:17:1: directives: more than 16 lines start with '%' "
                     "(YAML directives such as %TAG; a JobGroup needs none)");
    free(t.p);
}

Test(spec, a_message_quoting_a_long_value_is_cut)
{
    text_t t = {0}, name = {0};
    for (int i = 0; i < 1000; i++)
        add(&name, "a");
    add(&t, HDR "name: %s\n---\nname: %s\n", name.p, name.p);
    jg_group_spec_t *s = parse_lim(t.p, t.len, NULL);
    cr_assert_null(s);
    bool cut = false;
    for (size_t i = 0; i < errs.count; i++) {
        cr_assert_leq(strlen(errs.messages[i]), 400 + 64, "%s", errs.messages[i]);
        cut = cut || (strstr(errs.messages[i], "duplicate job name 'aaaa") &&
                      strcmp(errs.messages[i] + strlen(errs.messages[i]) - 3, "...") == 0);
    }
    cr_assert(cut, "the duplicate-name message quoting 1000 bytes is cut with '...'");
    free(t.p);
    free(name.p);
}
