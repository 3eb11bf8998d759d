/* fuzz_spec.c - libFuzzer harness for the JobGroup spec parser.
 *
 * The daemon parses the YAML text of every `submit` request, as root in
 * system mode, so jg_spec_parse sees whatever a hostile local user sends.
 * The harness feeds the input to it exactly as given (the buffer is not
 * NUL-terminated, so a read past `len` is caught), and for every spec that
 * parses checks two promises of spec.h: delays are bounded, and the JSON
 * form is lossless:
 * YAML -> spec -> JSON -> spec -> JSON must give the same JSON twice.  It
 * also takes each spec through the admission arithmetic the scheduler applies
 * at submit (capacity.h), where the numbers a user wrote are first used.
 *
 * An input whose first byte is 0x01 is instead a JSON spec (the rest of the
 * input) for jg_spec_from_json, the reader of what the store holds; a YAML
 * stream cannot start with that control character, so the YAML seeds need no
 * mode byte.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jgsched/capacity.h"
#include "jgsched/spec.h"

#define JSON_MODE_BYTE 0x01

/* Turns a failed invariant into a crash libFuzzer reports with the input. */
static void check(int ok, const char *what, const char *a, const char *b)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_spec: %s\n  first:  %s\n  second: %s\n", what, a ? a : "(null)",
            b ? b : "(null)");
    abort();
}

/* What the scheduler does with every submitted spec (sched.c
 * fail_if_never_fits): can each job's node fit the largest node, and can the
 * whole group ever fit an idle backend.  Both format what was asked into the
 * reason the user reads. */
static void admit(const jg_group_spec_t *spec)
{
    static jg_accel_t accels[] = {{"T4", 2}, {"A100", 8}};
    static const jg_capacity_t cap = {.cpus = 64, .memory_gb = 256, .accels = accels,
                                      .n_accels = 2, .max_node_cpus = 32,
                                      .max_node_memory_gb = 128};
    char why[512];
    for (size_t i = 0; i < spec->n_jobs; i++)
        if (!jg_capacity_node_fits(&cap, "local", &spec->jobs[i], why, sizeof why))
            return;
    jg_usage_t idle = {0};
    (void)jg_usage_group_fits(&idle, &cap, spec, why, sizeof why);
}

/* Everything a caller does with a spec after parsing, then the JSON round trip;
 * from_yaml: the spec came from the YAML parser, which promises bounds the
 * JSON reader (of what the daemon itself stored) does not check. */
static void exercise(jg_group_spec_t *spec, bool from_yaml)
{
    char *described = jg_spec_describe(spec);
    free(described);
    admit(spec);
    (void)jg_spec_total_nodes(spec);
    for (size_t i = 0; i < spec->n_jobs; i++) {
        (void)jg_spec_job_is_primary(spec, i);
        (void)jg_spec_termination_delay(spec, spec->jobs[i].name);
        check(jg_spec_find_job(spec, spec->jobs[i].name) >= 0, "a parsed job is not found by name",
              spec->jobs[i].name, NULL);
    }

    /* The scheduler turns delays into millisecond timers (spec.h bounds them). */
    check(!from_yaml || (spec->termination_delay_s >= 0 &&
                         spec->termination_delay_s <= JG_SPEC_MAX_TERMINATION_DELAY_S),
          "termination_delay out of bounds", spec->name, NULL);
    for (size_t i = 0; from_yaml && i < spec->n_termination_delays; i++) {
        double d = strtod(spec->termination_delays[i].value, NULL);
        check(d >= 0 && d <= JG_SPEC_MAX_TERMINATION_DELAY_S, "a job's termination_delay out of bounds",
              spec->termination_delays[i].key, spec->termination_delays[i].value);
    }

    char *json = jg_spec_to_json(spec);
    check(json != NULL, "jg_spec_to_json failed on a valid spec", spec->name, NULL);
    jg_error_t err;
    jg_group_spec_t *back = jg_spec_from_json(json, &err);
    check(back != NULL, "jg_spec_from_json refused jg_spec_to_json's output", json, err.text);
    char *again = jg_spec_to_json(back);
    check(again && strcmp(json, again) == 0, "the JSON form is not lossless", json, again);
    free(again);
    jg_spec_free(back);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == JSON_MODE_BYTE) {
        char *json = malloc(size);
        memcpy(json, data + 1, size - 1);
        json[size - 1] = '\0';
        jg_error_t err;
        jg_group_spec_t *spec = jg_spec_from_json(json, &err);
        free(json);
        if (spec)
            exercise(spec, false);
        jg_spec_free(spec);
        return 0;
    }

    jg_spec_errors_t errs = {0};
    /* An absolute, missing directory: a relative workdir resolves against
     * it and the stat that checks a workdir touches nothing real. */
    jg_group_spec_t *spec =
        jg_spec_parse((const char *)data, size, "/nonexistent-jgsched-fuzz/group.yaml", &errs);
    check((spec != NULL) == (errs.count == 0), "a parse result disagrees with its error count",
          spec ? "spec" : "NULL", NULL);
    if (spec)
        exercise(spec, true);
    jg_spec_free(spec);
    jg_spec_errors_free(&errs);
    return 0;
}
