/* test_k8s_objects.c - the Kubernetes object builders (src/backends/kubernetes/objects.c).
 *
 * Golden files: seed-plan YAMLs built into every object of their group and
 * compared, as canonical JSON (sorted keys), with tests/fixtures/k8s/<name>.json.
 * After a deliberate change, JG_UPDATE_GOLDEN=1 rewrites them; the diff is then
 * reviewed like code.  The other tests pin down the rules one by one (names,
 * quantities, images, resources, environment, ownership).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/backends/kubernetes/objects.h"

#ifndef JG_TEST_FIXTURES
#define JG_TEST_FIXTURES "tests/fixtures"
#endif

static const jg_k8s_owner_t owner = {"jg-42", "0b5e7a52-8f0c-4d5e-9a43-3d1f2c6b7a10"};
/* 2026-12-01T10:00:00.123456Z */
static const int64_t submitted_us = 1796119200123456LL;

static jg_k8s_settings_t settings(void)
{
    return (jg_k8s_settings_t){
        .namespace = "team-a",
        .instance = "d7f3c1",
        .agent_image = "jgsched/agent:0.1.0",
        .default_image = "ubuntu:24.04",
        .gpu_resource = NULL,
        .gpu_label = NULL,
        .stop_grace_ms = 10000,
        .hosts_writable = true,
    };
}

static jg_group_spec_t *seed(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/seed/%s", JG_TEST_FIXTURES, file);
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse_file(path, &errs);
    cr_assert_not_null(spec, "%s: %s", path, errs.count ? errs.messages[0] : "?");
    jg_spec_errors_free(&errs);
    return spec;
}

static json_t *pod_of(const jg_k8s_settings_t *s, const jg_group_spec_t *spec, int job, int rank)
{
    jg_error_t err = {{0}};
    json_t *pod = jg_k8s_pod(s, spec, 42, job, rank, 1, submitted_us, &owner,
                             s->default_image, &err);
    cr_assert_not_null(pod, "pod: %s", err.text);
    return pod;
}

static json_t *group_objects(const jg_group_spec_t *spec)
{
    jg_k8s_settings_t s = settings();
    json_t *pods = json_array();
    for (size_t j = 0; j < spec->n_jobs; j++)
        for (int r = 0; r < spec->jobs[j].num_nodes; r++)
            json_array_append_new(pods, pod_of(&s, spec, (int)j, r));
    return json_pack("{s:o, s:o, s:o, s:o}", "configmap",
                     jg_k8s_owner_configmap(&s, spec, 42, "10.0.0.1 a-0.g a-0\n"), "secret",
                     jg_k8s_token_secret(&s, 42, &owner, "0123456789abcdef0123456789abcdef"),
                     "service", jg_k8s_service(&s, 42, &owner), "pods", pods);
}

static void check_golden(const char *seed_file, const char *golden)
{
    jg_group_spec_t *spec = seed(seed_file);
    json_t *objects = group_objects(spec);
    char *got = json_dumps(objects, JSON_SORT_KEYS | JSON_INDENT(2));
    char path[512];
    snprintf(path, sizeof path, "%s/k8s/%s", JG_TEST_FIXTURES, golden);
    if (getenv("JG_UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "cannot write %s", path);
        fprintf(f, "%s\n", got);
        fclose(f);
    }
    json_error_t jerr;
    json_t *want = json_load_file(path, 0, &jerr);
    cr_assert_not_null(want, "%s: %s (JG_UPDATE_GOLDEN=1 writes it)", path, jerr.text);
    char *want_text = json_dumps(want, JSON_SORT_KEYS | JSON_INDENT(2));
    cr_assert_str_eq(got, want_text, "objects of %s differ from %s", seed_file, path);
    free(want_text);
    free(got);
    json_decref(want);
    json_decref(objects);
    jg_spec_free(spec);
}

Test(k8s_golden, multinode_seed_2_3)
{
    check_golden("2_3_multinode.yaml", "2_3_multinode.json");
}

Test(k8s_golden, heterogeneous_seed_3_1)
{
    check_golden("3_1_heterogeneous.yaml", "3_1_heterogeneous.json");
}

Test(k8s_golden, gpu_seed_3_2)
{
    check_golden("3_2_gpu_cpu.yaml", "3_2_gpu_cpu.json");
}

Test(k8s_golden, recovery_seed_6_1)
{
    check_golden("6_1_recovery.yaml", "6_1_recovery.json");
}

/* Both jobs mount the claim shared-volume at /mnt/shared as pod volume jg-vol-0. */
Test(k8s_golden, shared_volume_seed_7_1)
{
    check_golden("7_1_shared_volume.yaml", "7_1_shared_volume.json");
}

/* A claim over jgsched's own mounts would hide the agent or its token (and a
 * second /tmp mount is refused by the API server): refused with the job named. */
Test(k8s_volumes, reserved_mount_paths_are_refused)
{
    jg_group_spec_t *spec = seed("7_1_shared_volume.yaml");
    jg_k8s_settings_t s = settings();
    jg_job_spec_t *job = &spec->jobs[0];
    const char *bad[] = {"/", "/tmp", "/.jgsched", "/.jgsched/secret", "/mnt/a:b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        free(job->volumes[0].key);
        job->volumes[0].key = strdup(bad[i]);
        jg_error_t err = {{0}};
        cr_expect_eq(jg_k8s_check_volumes(job, &err), -1, "%s accepted", bad[i]);
        cr_expect(strstr(err.text, "job writer mounts volume shared-volume"), "%s", err.text);
        json_t *pod = jg_k8s_pod(&s, spec, 42, 0, 0, 1, submitted_us, &owner,
                                 s.default_image, &err);
        cr_expect_null(pod, "pod built with a mount at %s", bad[i]);
        json_decref(pod);
    }
    const char *good[] = {"/mnt/shared", "/tmp/data", "/.jgschedx"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        free(job->volumes[0].key);
        job->volumes[0].key = strdup(good[i]);
        jg_error_t err = {{0}};
        cr_expect_eq(jg_k8s_check_volumes(job, &err), 0, "%s: %s", good[i], err.text);
    }
    jg_spec_free(spec);
}

static bool is_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

Test(k8s_names, short_names_are_kept_as_they_are)
{
    char out[JG_K8S_DNS_LABEL_MAX + 1];
    jg_k8s_group_name(42, out);
    cr_assert_str_eq(out, "jg-42");
    jg_k8s_secret_name(42, out);
    cr_assert_str_eq(out, "jg-42-token");
    jg_k8s_pod_name(42, "workers", 1, out);
    cr_assert_str_eq(out, "jg-42-workers-1");
    jg_k8s_hostname("workers", 1, out);
    cr_assert_str_eq(out, "workers-1");
}

Test(k8s_names, long_names_are_truncated_with_a_hash_and_stay_distinct)
{
    /* A 63-character job name (the longest DNS label) with a large rank. */
    const char *job_a = "a23456789012345678901234567890123456789012345678901234567890abc";
    const char *job_b = "a23456789012345678901234567890123456789012345678901234567890abd";
    char a[JG_K8S_DNS_LABEL_MAX + 1], b[JG_K8S_DNS_LABEL_MAX + 1];
    jg_k8s_pod_name(9223372036854775807LL, job_a, 1023, a);
    jg_k8s_pod_name(9223372036854775807LL, job_b, 1023, b);
    cr_assert(is_dns_label(a), "%s", a);
    cr_assert(is_dns_label(b), "%s", b);
    cr_assert_str_neq(a, b);
    cr_assert_eq(strncmp(a, "jg-9223372036854775807-a234", 27), 0, "%s", a);
    jg_k8s_hostname(job_a, 10, a);
    jg_k8s_hostname(job_a, 11, b);
    cr_assert(is_dns_label(a) && is_dns_label(b), "%s %s", a, b);
    cr_assert_str_neq(a, b);
    /* A cut that would end on '-' does not. */
    jg_k8s_hostname("x2345678901234567890123456789012345678901234567890123-----------z", 0, a);
    cr_assert(is_dns_label(a), "%s", a);
}

Test(k8s_quantities, cpu_and_memory)
{
    char q[32];
    jg_error_t err;
    cr_assert_eq(jg_k8s_cpu_quantity(2, q, &err), 0);
    cr_assert_str_eq(q, "2");
    cr_assert_eq(jg_k8s_cpu_quantity(0.5, q, &err), 0);
    cr_assert_str_eq(q, "500m");
    cr_assert_eq(jg_k8s_cpu_quantity(1.25, q, &err), 0);
    cr_assert_str_eq(q, "1250m");
    cr_assert_eq(jg_k8s_memory_quantity(8, q, &err), 0);
    cr_assert_str_eq(q, "8Gi");
    cr_assert_eq(jg_k8s_memory_quantity(1.5, q, &err), 0);
    cr_assert_str_eq(q, "1536Mi");
    cr_assert_eq(jg_k8s_cpu_quantity(-1, q, &err), -1);
    cr_assert(strstr(err.text, "cpus") != NULL, "%s", err.text);
    cr_assert_eq(jg_k8s_memory_quantity(1.0 / 0.0, q, &err), -1);
}

Test(k8s_image, docker_prefix_default_and_errors)
{
    jg_k8s_settings_t s = settings();
    jg_error_t err;
    cr_assert_str_eq(jg_k8s_image(&s, "docker:python:3.11-slim", &err), "python:3.11-slim");
    cr_assert_str_eq(jg_k8s_image(&s, NULL, &err), "ubuntu:24.04");
    cr_assert_null(jg_k8s_image(&s, "ami-123", &err));
    cr_assert(strstr(err.text, "docker:<image>") != NULL, "%s", err.text);
    cr_assert_null(jg_k8s_image(&s, "docker:bad image", &err));
    s.default_image = NULL;
    cr_assert_null(jg_k8s_image(&s, "", &err));
    cr_assert(strstr(err.text, "default image") != NULL, "%s", err.text);
}

static json_t *find_env(json_t *pod, const char *name)
{
    json_t *env = json_object_get(
        json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0), "env");
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return json_object_get(e, "value");
    }
    return NULL;
}

Test(k8s_pod, resources_gpu_and_memory_limits)
{
    jg_k8s_settings_t s = settings();
    s.gpu_resource = "amd.com/gpu";
    s.gpu_label = "skypilot.co/accelerator";
    jg_group_spec_t *spec = seed("3_2_gpu_cpu.yaml");
    json_t *pod = pod_of(&s, spec, 0, 0);
    json_t *res = json_object_get(
        json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0),
        "resources");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(res, "requests"),
                                                    "amd.com/gpu")), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(res, "limits"),
                                                    "amd.com/gpu")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(pod, "spec"), "nodeSelector"),
                         "skypilot.co/accelerator")), "t4");
    cr_assert_str_eq(json_string_value(find_env(pod, "SKYPILOT_NUM_GPUS_PER_NODE")), "1");
    json_decref(pod);
    jg_spec_free(spec);

    /* memory 8+ is a request only; an exact memory is also the limit. */
    spec = seed("3_1_heterogeneous.yaml");
    pod = pod_of(&s, spec, 1, 0);
    res = json_object_get(
        json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0),
        "resources");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(res, "requests"),
                                                       "memory")), "8Gi");
    cr_assert_null(json_object_get(res, "limits"));
    json_decref(pod);
    spec->jobs[1].memory_gb.at_least = false;
    spec->jobs[1].cpus.value = 0.5;
    pod = pod_of(&s, spec, 1, 0);
    res = json_object_get(
        json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0),
        "resources");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(res, "limits"),
                                                       "memory")), "8Gi");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(res, "requests"),
                                                       "cpu")), "500m");
    cr_assert_null(json_object_get(json_object_get(res, "limits"), "cpu"));
    json_decref(pod);

    jg_error_t err;
    spec->jobs[1].cpus.value = -3;
    cr_assert_null(jg_k8s_pod(&s, spec, 42, 1, 0, 1, submitted_us, &owner, "x", &err));
    cr_assert(strstr(err.text, "cpus") != NULL, "%s", err.text);
    cr_assert_null(jg_k8s_pod(&s, spec, 42, 1, 5, 1, submitted_us, &owner, "x", &err));
    jg_spec_free(spec);
}

Test(k8s_pod, environment_identity_and_ownership)
{
    jg_k8s_settings_t s = settings();
    jg_group_spec_t *spec = seed("2_3_multinode.yaml");
    jg_error_t err;
    json_t *pod = jg_k8s_pod(&s, spec, 42, 0, 1, 3, submitted_us, &owner, "busybox", &err);
    cr_assert_not_null(pod, "%s", err.text);
    cr_assert_str_eq(json_string_value(find_env(pod, "SKYPILOT_NODE_RANK")), "1");
    cr_assert_str_eq(json_string_value(find_env(pod, "JGSCHED_ATTEMPT")), "3");
    cr_assert_str_eq(json_string_value(find_env(pod, "SKYPILOT_NODE_IPS")), "");
    cr_assert_str_eq(json_string_value(find_env(pod, "SKYPILOT_JOBGROUP_NAME")),
                     "k8s-multinode-group");
    cr_assert_str_eq(json_string_value(find_env(pod, "JGSCHED_AGENT_GRACE_MS")), "10000");
    cr_assert_null(find_env(pod, "PATH"), "the image's PATH must stay");
    cr_assert_null(find_env(pod, "SHELL"));
    json_t *pspec = json_object_get(pod, "spec");
    cr_assert_str_eq(json_string_value(json_object_get(pspec, "hostname")), "workers-1");
    cr_assert_str_eq(json_string_value(json_object_get(pspec, "subdomain")), "jg-42");
    cr_assert(json_is_false(json_object_get(pspec, "automountServiceAccountToken")));
    cr_assert(json_is_false(json_object_get(pspec, "enableServiceLinks")));
    cr_assert_str_eq(json_string_value(json_object_get(pspec, "restartPolicy")), "Never");
    cr_assert_eq(json_integer_value(json_object_get(pspec, "terminationGracePeriodSeconds")),
                 12);
    json_t *meta = json_object_get(pod, "metadata");
    json_t *labels = json_object_get(meta, "labels");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "jgsched.io/attempt")), "3");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "jgsched.io/rank")), "1");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "jgsched.io/job")), "workers");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "app.kubernetes.io/managed-by")),
                     "jgsched");
    json_t *ref = json_array_get(json_object_get(meta, "ownerReferences"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(ref, "uid")), owner.uid);
    cr_assert(json_is_true(json_object_get(ref, "controller")));
    json_decref(pod);

    /* A job that sets PATH keeps it. */
    jg_kv_t *envs = realloc(spec->jobs[0].envs, (spec->jobs[0].n_envs + 1) * sizeof *envs);
    cr_assert_not_null(envs);
    spec->jobs[0].envs = envs;
    envs[spec->jobs[0].n_envs++] = (jg_kv_t){strdup("PATH"), strdup("/opt/conda/bin:/bin")};
    pod = pod_of(&s, spec, 0, 0);
    cr_assert_str_eq(json_string_value(find_env(pod, "PATH")), "/opt/conda/bin:/bin");
    json_decref(pod);
    jg_spec_free(spec);
}

Test(k8s_objects, secret_is_base64_and_configmap_holds_scripts)
{
    jg_k8s_settings_t s = settings();
    json_t *secret = jg_k8s_token_secret(&s, 42, &owner, "abcd");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(secret, "data"), "token")),
                     "YWJjZA==");
    json_decref(secret);
    secret = jg_k8s_token_secret(&s, 42, &owner, "abcde");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(secret, "data"), "token")),
                     "YWJjZGU=");
    json_decref(secret);

    jg_group_spec_t *spec = seed("5_4_empty_run.yaml");
    json_t *cm = jg_k8s_owner_configmap(&s, spec, 42, NULL);
    json_t *data = json_object_get(cm, "data");
    cr_assert_null(json_object_get(data, "empty-job.run"), "a job without run has no key");
    cr_assert_not_null(json_object_get(data, "normal-job.run"));
    cr_assert_null(json_object_get(json_object_get(cm, "metadata"), "ownerReferences"));
    json_decref(cm);
    /* ... and its pod mounts only the keys that exist. */
    json_t *pod = pod_of(&s, spec, 0, 0);
    json_t *vols = json_object_get(json_object_get(pod, "spec"), "volumes");
    size_t i;
    json_t *v;
    bool found = false;
    json_array_foreach(vols, i, v)
    {
        json_t *cmv = json_object_get(v, "configMap");
        if (cmv) {
            cr_assert_eq(json_array_size(json_object_get(cmv, "items")), 0);
            found = true;
        }
    }
    cr_assert(found);
    json_decref(pod);
    jg_spec_free(spec);
}

/* ---------------- pod status -> what the backend reports (podstate.c) */

#include "../src/backends/kubernetes/k8s_int.h"

static k8s_pod_state_t state_of(const char *json)
{
    json_error_t jerr;
    json_t *pod = json_loads(json, 0, &jerr);
    cr_assert_not_null(pod, "%s: %s", json, jerr.text);
    k8s_pod_state_t st;
    k8s_pod_state(pod, &st);
    json_decref(pod);
    return st;
}

Test(k8s_podstate, unschedulable_is_pending_with_the_schedulers_message)
{
    k8s_pod_state_t st = state_of(
        "{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Pending\",\"conditions\":["
        "{\"type\":\"PodScheduled\",\"status\":\"False\",\"reason\":\"Unschedulable\","
        "\"message\":\"0/2 nodes are available: 2 Insufficient cpu.\"}]}}");
    cr_expect_eq(st.phase, K8S_POD_WAITING);
    cr_expect_str_eq(st.reason, "Unschedulable: 0/2 nodes are available: 2 Insufficient cpu.");
}

Test(k8s_podstate, initialising_is_a_wait_without_reason)
{
    k8s_pod_state_t st = state_of(
        "{\"status\":{\"phase\":\"Pending\",\"podIP\":\"10.0.0.5\",\"initContainerStatuses\":["
        "{\"name\":\"jg-agent-install\",\"state\":{\"running\":{}}}],\"containerStatuses\":["
        "{\"name\":\"main\",\"state\":{\"waiting\":{\"reason\":\"PodInitializing\"}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_WAITING);
    cr_expect_str_eq(st.reason, "");
    cr_expect_str_eq(st.ip, "10.0.0.5");
}

Test(k8s_podstate, image_pull_backoff_waits_and_an_invalid_image_fails)
{
    k8s_pod_state_t st = state_of(
        "{\"status\":{\"phase\":\"Pending\",\"containerStatuses\":[{\"name\":\"main\",\"state\":"
        "{\"waiting\":{\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off pulling image "
        "\\\"nope:1\\\"\"}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_WAITING);
    cr_expect(strstr(st.reason, "ImagePullBackOff") && strstr(st.reason, "nope:1"), "%s",
              st.reason);
    st = state_of("{\"status\":{\"phase\":\"Pending\",\"containerStatuses\":[{\"name\":\"main\","
                  "\"state\":{\"waiting\":{\"reason\":\"InvalidImageName\"}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_FAILED);
}

Test(k8s_podstate, running_then_exit_code_from_the_terminated_state)
{
    k8s_pod_state_t st = state_of(
        "{\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.7\",\"containerStatuses\":["
        "{\"name\":\"main\",\"state\":{\"running\":{\"startedAt\":\"x\"}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_RUNNING);
    st = state_of("{\"status\":{\"phase\":\"Failed\",\"containerStatuses\":[{\"name\":\"main\","
                  "\"state\":{\"terminated\":{\"exitCode\":29,\"reason\":\"Error\"}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_EXITED);
    cr_expect_eq(st.exit_code, 29);
    cr_expect_eq(st.signal, 0);
    st = state_of("{\"status\":{\"phase\":\"Failed\",\"containerStatuses\":[{\"name\":\"main\","
                  "\"state\":{\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\"}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_EXITED);
    cr_expect_eq(st.signal, 9);
    cr_expect(strstr(st.reason, "OOM"), "%s", st.reason);
}

Test(k8s_podstate, a_disrupted_pod_is_lost_never_an_exit_code)
{
    /* The taint manager killed it: its container says 137, but the node was lost. */
    k8s_pod_state_t st = state_of(
        "{\"metadata\":{\"deletionTimestamp\":\"2026-12-03T00:00:00Z\"},\"status\":{"
        "\"phase\":\"Running\",\"conditions\":[{\"type\":\"DisruptionTarget\",\"status\":\"True\","
        "\"reason\":\"DeletionByTaintManager\",\"message\":\"Taint manager: deleting due to "
        "NoExecute taint\"}],\"containerStatuses\":[{\"name\":\"main\",\"state\":{\"terminated\":"
        "{\"exitCode\":137}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_LOST);
    cr_expect(st.deleting);
    cr_expect_str_eq(st.reason, "DeletionByTaintManager: Taint manager: deleting due to NoExecute "
                                "taint");
    st = state_of("{\"status\":{\"phase\":\"Failed\",\"reason\":\"Evicted\",\"message\":\"The node "
                  "was low on resource: memory.\",\"containerStatuses\":[{\"name\":\"main\","
                  "\"state\":{\"terminated\":{\"exitCode\":143}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_LOST);
    cr_expect(strstr(st.reason, "Evicted"), "%s", st.reason);
}

Test(k8s_podstate, a_failed_install_container_is_a_launch_failure)
{
    k8s_pod_state_t st = state_of(
        "{\"status\":{\"phase\":\"Failed\",\"initContainerStatuses\":[{\"name\":"
        "\"jg-agent-install\",\"state\":{\"terminated\":{\"exitCode\":127,\"message\":\"no such "
        "file\"}}}],\"containerStatuses\":[{\"name\":\"main\",\"state\":{\"waiting\":{\"reason\":"
        "\"PodInitializing\"}}}]}}");
    cr_expect_eq(st.phase, K8S_POD_FAILED);
    cr_expect(strstr(st.reason, "jg-agent-install") && strstr(st.reason, "127"), "%s", st.reason);
}

Test(k8s_podstate, labels_and_quantities)
{
    json_t *pod = json_pack("{s:{s:{s:s, s:s, s:s, s:s}}}", "metadata", "labels",
                            "jgsched.io/group-id", "42", "jgsched.io/job", "server",
                            "jgsched.io/rank", "1", "jgsched.io/attempt", "3");
    int64_t gid;
    const char *job;
    int rank, attempt;
    cr_assert(k8s_pod_labels(pod, &gid, &job, &rank, &attempt));
    cr_expect_eq(gid, 42);
    cr_expect_str_eq(job, "server");
    cr_expect_eq(rank, 1);
    cr_expect_eq(attempt, 3);
    json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "labels"),
                        "jgsched.io/rank", json_string("x"));
    cr_expect_not(k8s_pod_labels(pod, &gid, &job, &rank, &attempt));
    json_decref(pod);

    cr_expect_float_eq(k8s_parse_cpu("4"), 4, 1e-9);
    cr_expect_float_eq(k8s_parse_cpu("3500m"), 3.5, 1e-9);
    cr_expect_lt(k8s_parse_cpu("4x"), 0);
    cr_expect_float_eq(k8s_parse_memory_gib("8Gi"), 8, 1e-9);
    cr_expect_float_eq(k8s_parse_memory_gib("8192Mi"), 8, 1e-9);
    cr_expect_float_eq(k8s_parse_memory_gib("16777216Ki"), 16, 1e-9);
    cr_expect_float_eq(k8s_parse_memory_gib("1073741824"), 1, 1e-9);
    cr_expect_lt(k8s_parse_memory_gib("8Qi"), 0);
}

/* ---------------- fit() on the Nodes' shape (capacity.c) */

#include "jgsched/capacity.h"

/* A backend that knows two Ready nodes of 4 cpus / 8 GiB, one with 2 T4s. */
static void two_nodes(k8s_backend_t *b, jg_backend_t **base)
{
    memset(b, 0, sizeof *b);
    b->base.impl = b;
    b->base.name = "kubernetes";
    b->nodes_synced = true;
    jg_capacity_t *cap = &b->capacity;
    cap->nodes = calloc(2, sizeof *cap->nodes);
    cap->n_nodes = 2;
    for (int i = 0; i < 2; i++) {
        cap->nodes[i].name = strdup(i ? "n2" : "n1");
        cap->nodes[i].cpus = 4;
        cap->nodes[i].memory_gb = 8;
    }
    cap->nodes[1].accels = calloc(1, sizeof *cap->nodes[1].accels);
    cap->nodes[1].accels[0].name = strdup("tesla-t4");
    cap->nodes[1].accels[0].count = 2;
    cap->nodes[1].n_accels = 1;
    cap->cpus = 8;
    cap->memory_gb = 16;
    cap->max_node_cpus = 4;
    cap->max_node_memory_gb = 8;
    jg_capacity_add_accel(cap, "tesla-t4", 2);
    *base = &b->base;
}

static jg_group_spec_t *group_of(const char *jobs)
{
    char *yaml = NULL;
    cr_assert_geq(asprintf(&yaml, "---\nname: g\nplacement: SAME_INFRA\nexecution: parallel\n%s",
                           jobs), 0);
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse(yaml, strlen(yaml), "g.yaml", &errs);
    cr_assert_not_null(spec, "%s", errs.count ? errs.messages[0] : "?");
    jg_spec_errors_free(&errs);
    free(yaml);
    return spec;
}

Test(k8s_fit, never_when_no_node_could_hold_one_node_of_a_job)
{
    k8s_backend_t b;
    jg_backend_t *base;
    two_nodes(&b, &base);
    char why[512];
    jg_usage_t held = {0};
    jg_group_spec_t *spec = group_of("---\nname: big\nresources:\n  cpus: 6\n");
    cr_expect_eq(k8s_fit(base, spec, &held, why, sizeof why), JG_FIT_NEVER);
    cr_expect(strstr(why, "job big asks cpus=6") && strstr(why, "the largest offers cpus=4"), "%s",
              why);
    jg_spec_free(spec);
    /* 2 x 3 cpus: more than one node holds, but each fits on one. */
    spec = group_of("---\nname: w\nnum_nodes: 2\nresources:\n  cpus: 3\n");
    cr_expect_eq(k8s_fit(base, spec, &held, why, sizeof why), JG_FIT_NOW, "%s", why);
    jg_spec_free(spec);
    /* Accelerators: the node that names its type must name the one asked for. */
    spec = group_of("---\nname: g\nresources:\n  accelerators: T4:2\n");
    cr_expect_eq(k8s_fit(base, spec, &held, why, sizeof why), JG_FIT_NOW, "%s", why);
    jg_spec_free(spec);
    spec = group_of("---\nname: g\nresources:\n  accelerators: A100:1\n");
    cr_expect_eq(k8s_fit(base, spec, &held, why, sizeof why), JG_FIT_NEVER);
    jg_spec_free(spec);
    jg_capacity_clear(&b.capacity);
}

Test(k8s_fit, not_now_when_held_or_not_reached)
{
    k8s_backend_t b;
    jg_backend_t *base;
    two_nodes(&b, &base);
    char why[512];
    jg_group_spec_t *spec = group_of("---\nname: w\nnum_nodes: 2\nresources:\n  cpus: 2\n");
    jg_usage_t held = {.cpus = 6};
    cr_expect_eq(k8s_fit(base, spec, &held, why, sizeof why), JG_FIT_NOT_NOW);
    cr_expect(strstr(why, "needs 4 cpus, 2 of 8 free"), "%s", why);
    held.cpus = 4;
    cr_expect_eq(k8s_fit(base, spec, &held, why, sizeof why), JG_FIT_NOW, "%s", why);
    b.nodes_synced = false;
    cr_expect_eq(k8s_fit(base, spec, &held, why, sizeof why), JG_FIT_NOT_NOW);
    cr_expect(strstr(why, "waiting for the API server"), "%s", why);
    jg_spec_free(spec);
    jg_capacity_clear(&b.capacity);
}
