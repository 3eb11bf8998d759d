/* podstate.c - what a Pod object says about its node (k8s_int.h).  Pure: no
 * I/O, so the mapping from pod statuses to node events is unit-tested
 * (tests/test_k8s_objects.c).
 *
 * Order of precedence: a pod the cluster took away (a DisruptionTarget
 * condition, phase Failed with reason Evicted or without a terminated main
 * container: the node is gone) is LOST, whatever exit code its container was
 * killed with; then an init container that failed or an image that can never
 * be pulled is FAILED; then the main container's state.
 */
#include "k8s_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_t *container_status(json_t *status, const char *list, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, list), i, c)
        if (strcmp(str(c, "name"), name) == 0)
            return c;
    return NULL;
}

static json_t *condition(json_t *status, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
        if (strcmp(str(c, "type"), type) == 0)
            return c;
    return NULL;
}

static void reason_of(char *out, size_t len, const char *reason, const char *message)
{
    if (*reason && *message)
        snprintf(out, len, "%s: %s", reason, message);
    else
        snprintf(out, len, "%s", *reason ? reason : message);
}

/* Waiting reasons that are only the normal way to running. */
static bool ordinary_wait(const char *reason)
{
    return !*reason || !strcmp(reason, "ContainerCreating") || !strcmp(reason, "PodInitializing");
}

/* Waiting reasons no retry will cure. */
static bool hopeless_wait(const char *reason)
{
    return !strcmp(reason, "InvalidImageName") || !strcmp(reason, "ErrImageNeverPull");
}

/* The agent's install (init) container ended with an error: the launch
 * failed.  Fills out and says so. */
static bool install_failed(json_t *status, k8s_pod_state_t *out)
{
    json_t *init = container_status(status, "initContainerStatuses", "jg-agent-install");
    json_t *iterm = json_object_get(json_object_get(init, "state"), "terminated");
    if (!iterm || json_integer_value(json_object_get(iterm, "exitCode")) == 0)
        return false;
    out->phase = K8S_POD_FAILED;
    snprintf(out->reason, sizeof out->reason,
             "the init container jg-agent-install failed (exit code %lld%s%s)",
             (long long)json_integer_value(json_object_get(iterm, "exitCode")),
             *str(iterm, "message") ? ": " : "", str(iterm, "message"));
    return true;
}

void k8s_pod_state(json_t *pod, k8s_pod_state_t *out)
{
    memset(out, 0, sizeof *out);
    out->phase = K8S_POD_WAITING;
    json_t *meta = json_object_get(pod, "metadata");
    json_t *status = json_object_get(pod, "status");
    out->deleting = json_is_string(json_object_get(meta, "deletionTimestamp"));
    snprintf(out->ip, sizeof out->ip, "%s", str(status, "podIP"));
    const char *phase = str(status, "phase");

    json_t *main_c = container_status(status, "containerStatuses", "main");
    json_t *main_state = json_object_get(main_c, "state");
    json_t *terminated = json_object_get(main_state, "terminated");

    json_t *disruption = condition(status, "DisruptionTarget");
    if (disruption && !strcmp(str(disruption, "status"), "True")) {
        out->phase = K8S_POD_LOST;
        reason_of(out->reason, sizeof out->reason, str(disruption, "reason"),
                  str(disruption, "message"));
        return;
    }
    if (!strcmp(phase, "Failed") && (!strcmp(str(status, "reason"), "Evicted") || !terminated)) {
        if (install_failed(status, out))
            return;
        out->phase = K8S_POD_LOST;
        reason_of(out->reason, sizeof out->reason,
                  *str(status, "reason") ? str(status, "reason") : "pod failed",
                  str(status, "message"));
        return;
    }

    if (install_failed(status, out))
        return;
    json_t *init = container_status(status, "initContainerStatuses", "jg-agent-install");
    json_t *iwait = json_object_get(json_object_get(init, "state"), "waiting");
    if (iwait && !ordinary_wait(str(iwait, "reason"))) {
        out->phase = hopeless_wait(str(iwait, "reason")) ? K8S_POD_FAILED : K8S_POD_WAITING;
        char r[200];
        reason_of(r, sizeof r, str(iwait, "reason"), str(iwait, "message"));
        snprintf(out->reason, sizeof out->reason, "agent image %s", r);
        return;
    }

    if (terminated) {
        out->phase = K8S_POD_EXITED;
        out->exit_code = (int)json_integer_value(json_object_get(terminated, "exitCode"));
        out->signal = (int)json_integer_value(json_object_get(terminated, "signal"));
        if (!out->signal && out->exit_code > 128 && out->exit_code < 128 + 65)
            out->signal = out->exit_code - 128;
        const char *r = str(terminated, "reason");
        if (!strcmp(r, "OOMKilled"))
            snprintf(out->reason, sizeof out->reason,
                     "killed by the OOM killer (the pod's memory limit)");
        return;
    }
    if (json_object_get(main_state, "running")) {
        out->phase = K8S_POD_RUNNING;
        return;
    }
    json_t *wait = json_object_get(main_state, "waiting");
    if (wait && !ordinary_wait(str(wait, "reason"))) {
        out->phase = hopeless_wait(str(wait, "reason")) ? K8S_POD_FAILED : K8S_POD_WAITING;
        reason_of(out->reason, sizeof out->reason, str(wait, "reason"), str(wait, "message"));
        return;
    }
    json_t *sched = condition(status, "PodScheduled");
    if (sched && !strcmp(str(sched, "status"), "False")) {
        reason_of(out->reason, sizeof out->reason, str(sched, "reason"), str(sched, "message"));
        return;
    }
}

bool k8s_pod_labels(json_t *pod, int64_t *group_id, const char **job, int *rank, int *attempt)
{
    json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
    const char *gid = json_string_value(json_object_get(labels, "jgsched.io/group-id"));
    const char *j = json_string_value(json_object_get(labels, "jgsched.io/job"));
    const char *r = json_string_value(json_object_get(labels, "jgsched.io/rank"));
    const char *a = json_string_value(json_object_get(labels, "jgsched.io/attempt"));
    if (!gid || !j || !r || !a)
        return false;
    char *end;
    errno = 0;
    long long g = strtoll(gid, &end, 10);
    if (errno || *end || g <= 0)
        return false;
    long rr = strtol(r, &end, 10);
    if (*end || rr < 0 || rr > 1000000)
        return false;
    long aa = strtol(a, &end, 10);
    if (*end || aa < 1 || aa > 1000000000)
        return false;
    *group_id = g;
    *job = j;
    *rank = (int)rr;
    *attempt = (int)aa;
    return true;
}

/* The number a quantity starts with (*end: its suffix), or -1 if it has none
 * or it is not a finite number >= 0. */
static double quantity_number(const char *q, char **end)
{
    if (!q || !*q)
        return -1;
    double v = strtod(q, end);
    return *end == q || !isfinite(v) || v < 0 ? -1 : v;
}

double k8s_parse_cpu(const char *q)
{
    char *end;
    double v = quantity_number(q, &end);
    if (v < 0)
        return -1;
    if (!strcmp(end, "m"))
        return v / 1000;
    if (!strcmp(end, "n"))
        return v / 1e9;
    if (!strcmp(end, "u"))
        return v / 1e6;
    return *end ? -1 : v;
}

double k8s_parse_memory_gib(const char *q)
{
    static const struct {
        const char *suffix;
        double factor;
    } units[] = {{"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0},
                 {"Ti", 1099511627776.0}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6},
                 {"G", 1e9}, {"T", 1e12}, {"m", 1e-3}, {"", 1}};
    char *end;
    double v = quantity_number(q, &end);
    if (v < 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].suffix))
            return v * units[i].factor / 1073741824.0;
    return -1;
}
