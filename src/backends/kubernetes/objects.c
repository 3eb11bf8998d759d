/* objects.c - builds the Kubernetes objects of a group (objects.h).
 *
 * Why the objects look as they do (docs/kubernetes.md has the longer story):
 *   - The ConfigMap is the owner because it is the one object of a group that
 *     exists before all others and carries nothing that runs; deleting it
 *     lets the API server's garbage collector take pods, Service and Secret,
 *     so a cancel or a crashed daemon's sweep is one DELETE.
 *   - Each pod runs the user's image with jgsched-agent as its command, copied
 *     there by an init container from the agent image into an emptyDir: the
 *     only thing assumed of the user's image is /bin/sh.  The agent reads the
 *     job's scripts from the ConfigMap and its token from the Secret, both
 *     mounted as files, so neither ends up in `kubectl describe pod`.
 *   - /tmp is an emptyDir: per pod, and kept across in-place restarts (the
 *     agent restarts setup/run inside the same pod).
 *   - restartPolicy Never: restarts are the policy's decision, taken by the
 *     daemon, never the kubelet's.  No service account token and no service
 *     links: nothing in a pod talks to the API, and a group's environment
 *     holds only what DESIGN section 4 promises.
 */
#include "objects.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jgsched/nodeenv.h"

#define DEFAULT_GPU_RESOURCE "nvidia.com/gpu"
#define HASH_SUFFIX_LEN 9   /* "-" + 8 hex digits */

/* ------------------------------------------------------------------ names */

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Writes name into out as a DNS label, shortening it with a hash when needed. */
static void dns_label(const char *name, char *out)
{
    size_t len = strlen(name);
    if (len <= JG_K8S_DNS_LABEL_MAX) {
        memcpy(out, name, len + 1);
        return;
    }
    size_t keep = JG_K8S_DNS_LABEL_MAX - HASH_SUFFIX_LEN;
    memcpy(out, name, keep);
    while (keep > 0 && out[keep - 1] == '-')
        keep--;
    snprintf(out + keep, JG_K8S_DNS_LABEL_MAX + 1 - keep, "-%08x", fnv1a(name));
}

void jg_k8s_group_name(int64_t group_id, char *out)
{
    snprintf(out, JG_K8S_DNS_LABEL_MAX + 1, "jg-%lld", (long long)group_id);
}

void jg_k8s_secret_name(int64_t group_id, char *out)
{
    snprintf(out, JG_K8S_DNS_LABEL_MAX + 1, "jg-%lld-token", (long long)group_id);
}

void jg_k8s_pod_name(int64_t group_id, const char *job, int rank, char *out)
{
    char *full = jg_xasprintf("jg-%lld-%s-%d", (long long)group_id, job, rank);
    dns_label(full, out);
    free(full);
}

void jg_k8s_hostname(const char *job, int rank, char *out)
{
    char *full = jg_xasprintf("%s-%d", job, rank);
    dns_label(full, out);
    free(full);
}

const char *jg_k8s_image(const jg_k8s_settings_t *settings, const char *image_id,
                         jg_error_t *err)
{
    if (!image_id || !*image_id) {
        if (!settings->default_image || !*settings->default_image) {
            jg_errprintf(err, "the job names no image (image_id: docker:<image>) and "
                              "backends.kubernetes has no default image");
            return NULL;
        }
        return settings->default_image;
    }
    if (strncmp(image_id, "docker:", 7) != 0 || !image_id[7]) {
        jg_errprintf(err, "image_id %.200s: on kubernetes only docker:<image> is understood",
                     image_id);
        return NULL;
    }
    for (const char *p = image_id + 7; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            jg_errprintf(err, "image_id %.200s: an image reference has no blanks or "
                              "control characters", image_id);
            return NULL;
        }
    }
    return image_id + 7;
}

/* ------------------------------------------------------------- quantities */

int jg_k8s_cpu_quantity(double cpus, char *out, jg_error_t *err)
{
    if (!isfinite(cpus) || cpus < 0 || cpus > 1e6)
        return jg_errprintf(err, "cpus %g cannot be requested", cpus);
    long long milli = llround(cpus * 1000);
    if (milli % 1000 == 0)
        snprintf(out, 32, "%lld", milli / 1000);
    else
        snprintf(out, 32, "%lldm", milli);
    return 0;
}

int jg_k8s_memory_quantity(double gib, char *out, jg_error_t *err)
{
    if (!isfinite(gib) || gib < 0 || gib > 1e7)
        return jg_errprintf(err, "memory %g GiB cannot be requested", gib);
    long long mib = llround(gib * 1024);
    if (mib % 1024 == 0)
        snprintf(out, 32, "%lldGi", mib / 1024);
    else
        snprintf(out, 32, "%lldMi", mib);
    return 0;
}

/* --------------------------------------------------------------- metadata */

static json_t *labels(const jg_k8s_settings_t *settings, int64_t group_id)
{
    char gid[32];
    snprintf(gid, sizeof gid, "%lld", (long long)group_id);
    return json_pack("{s:s, s:s, s:s}", "app.kubernetes.io/managed-by", "jgsched",
                     "jgsched.io/group-id", gid, "jgsched.io/instance", settings->instance);
}

static json_t *metadata(const jg_k8s_settings_t *settings, const char *name, json_t *labels_obj,
                        const jg_k8s_owner_t *owner)
{
    json_t *meta = json_pack("{s:s, s:s, s:o}", "name", name, "namespace", settings->namespace,
                             "labels", labels_obj);
    if (owner)
        json_object_set_new(meta, "ownerReferences",
                            json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", "v1",
                                      "kind", "ConfigMap", "name", owner->name, "uid",
                                      owner->uid, "controller", 1, "blockOwnerDeletion", 1));
    return meta;
}

/* ---------------------------------------------------------------- objects */

json_t *jg_k8s_owner_configmap(const jg_k8s_settings_t *settings, const jg_group_spec_t *spec,
                               int64_t group_id, const char *hosts_text)
{
    char name[JG_K8S_DNS_LABEL_MAX + 1];
    jg_k8s_group_name(group_id, name);
    json_t *data = json_pack("{s:s, s:s}", "group", spec->name, "hosts",
                             hosts_text ? hosts_text : "");
    for (size_t i = 0; i < spec->n_jobs; i++) {
        const jg_job_spec_t *job = &spec->jobs[i];
        char key[JG_K8S_DNS_LABEL_MAX + 8];
        if (job->setup) {
            snprintf(key, sizeof key, "%s.setup", job->name);
            json_object_set_new(data, key, json_string(job->setup));
        }
        if (job->run) {
            snprintf(key, sizeof key, "%s.run", job->name);
            json_object_set_new(data, key, json_string(job->run));
        }
    }
    json_t *meta = metadata(settings, name, labels(settings, group_id), NULL);
    json_object_set_new(meta, "annotations", json_pack("{s:s}", "jgsched.io/group-name",
                                                       spec->name));
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", meta, "data", data);
}

static char *base64(const char *in)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(in);
    char *out = jg_xmalloc(4 * ((len + 2) / 3) + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < len)
            v |= (unsigned char)in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

json_t *jg_k8s_token_secret(const jg_k8s_settings_t *settings, int64_t group_id,
                            const jg_k8s_owner_t *owner, const char *token)
{
    char name[JG_K8S_DNS_LABEL_MAX + 1];
    jg_k8s_secret_name(group_id, name);
    char *encoded = base64(token);
    json_t *secret = json_pack("{s:s, s:s, s:o, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
                               "Secret", "metadata",
                               metadata(settings, name, labels(settings, group_id), owner),
                               "type", "Opaque", "data", "token", encoded);
    free(encoded);
    return secret;
}

json_t *jg_k8s_service(const jg_k8s_settings_t *settings, int64_t group_id,
                       const jg_k8s_owner_t *owner)
{
    char name[JG_K8S_DNS_LABEL_MAX + 1];
    jg_k8s_group_name(group_id, name);
    char gid[32];
    snprintf(gid, sizeof gid, "%lld", (long long)group_id);
    /* Headless and publishing not-ready pods: the names must resolve while
     * setup runs, long before anything could be called ready. */
    return json_pack(
        "{s:s, s:s, s:o, s:{s:s, s:b, s:{s:s, s:s}, s:[{s:s, s:i, s:i, s:s}]}}", "apiVersion",
        "v1", "kind", "Service", "metadata",
        metadata(settings, name, labels(settings, group_id), owner), "spec", "clusterIP", "None",
        "publishNotReadyAddresses", 1, "selector", "jgsched.io/group-id", gid,
        "jgsched.io/instance", settings->instance, "ports", "name", "agent", "port",
        JG_K8S_AGENT_PORT, "targetPort", JG_K8S_AGENT_PORT, "protocol", "TCP");
}

static bool job_sets(const jg_job_spec_t *job, const char *key)
{
    for (size_t i = 0; i < job->n_envs; i++)
        if (job->envs[i].key && strcmp(job->envs[i].key, key) == 0)
            return true;
    return false;
}

static json_t *pod_env(const jg_k8s_settings_t *settings, const jg_group_spec_t *spec,
                       int64_t group_id, int job_index, int rank, int attempt,
                       int64_t submitted_us)
{
    const jg_job_spec_t *job = &spec->jobs[job_index];
    char **env = jg_node_env(spec, group_id, job_index, rank, attempt, submitted_us, NULL);
    json_t *list = json_array();
    for (char **e = env; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char *key = jg_xstrndup(*e, (size_t)(eq - *e));
        bool image_default = (strcmp(key, "PATH") == 0 || strcmp(key, "SHELL") == 0) &&
                             !job_sets(job, key);
        if (strcmp(key, "SKYPILOT_NODE_IPS") == 0)
            json_array_append_new(list, json_pack("{s:s, s:s}", "name", key, "value", ""));
        else if (!image_default)
            json_array_append_new(list, json_pack("{s:s, s:s}", "name", key, "value", eq + 1));
        free(key);
    }
    jg_env_free(env);
    char grace[32];
    snprintf(grace, sizeof grace, "%d", settings->stop_grace_ms);
    json_array_append_new(list, json_pack("{s:s, s:s}", "name", "JGSCHED_AGENT_GRACE_MS",
                                          "value", grace));
    return list;
}

static int pod_resources(const jg_k8s_settings_t *settings, const jg_job_spec_t *job,
                         json_t **out, jg_error_t *err)
{
    json_t *requests = json_object(), *limits = json_object();
    char q[32];
    if (job->cpus.set) {
        if (jg_k8s_cpu_quantity(job->cpus.value, q, err) < 0)
            goto fail;
        /* No CPU limit: a limit throttles a job that could use an idle
         * core, and "cpus: 4" asks for at least four on every backend. */
        json_object_set_new(requests, "cpu", json_string(q));
    }
    if (job->memory_gb.set) {
        if (jg_k8s_memory_quantity(job->memory_gb.value, q, err) < 0)
            goto fail;
        json_object_set_new(requests, "memory", json_string(q));
        /* "8" means exactly 8: the limit holds the job to it as the local
         * backend's memory.max does; "8+" is at least 8: no limit. */
        if (!job->memory_gb.at_least)
            json_object_set_new(limits, "memory", json_string(q));
    }
    if (job->accel.name && job->accel.count > 0) {
        const char *res = settings->gpu_resource ? settings->gpu_resource : DEFAULT_GPU_RESOURCE;
        /* Extended resources cannot be overcommitted: requests == limits. */
        json_object_set_new(requests, res, json_integer(job->accel.count));
        json_object_set_new(limits, res, json_integer(job->accel.count));
    }
    *out = json_object();
    if (json_object_size(requests))
        json_object_set_new(*out, "requests", requests);
    else
        json_decref(requests);
    if (json_object_size(limits))
        json_object_set_new(*out, "limits", limits);
    else
        json_decref(limits);
    return 0;
fail:
    json_decref(requests);
    json_decref(limits);
    return -1;
}

static char *lowercase(const char *s)
{
    char *out = jg_xstrdup(s);
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* Paths the pod itself mounts: a claim there would shadow the agent, its
 * scripts or its token (or the whole image, at /), and the API server refuses
 * a mountPath twice. */
static bool reserved_mount(const char *path)
{
    if (!strcmp(path, "/") || !strcmp(path, "/tmp") || !strcmp(path, "/tmp/"))
        return true;
    return !strncmp(path, "/.jgsched", 9) && (path[9] == '\0' || path[9] == '/');
}

int jg_k8s_check_volumes(const jg_job_spec_t *job, jg_error_t *err)
{
    for (size_t i = 0; i < job->n_volumes; i++) {
        const char *path = job->volumes[i].key;
        if (reserved_mount(path))
            return jg_errprintf(err,
                                "job %s mounts volume %s at %s: on kubernetes /, /tmp and "
                                "/.jgsched are jgsched's own mounts; choose another path",
                                job->name, job->volumes[i].value, path);
        if (strchr(path, ':'))
            return jg_errprintf(err, "job %s mounts volume %s at %s: a kubernetes mountPath "
                                     "cannot contain ':'",
                                job->name, job->volumes[i].value, path);
    }
    return 0;
}

/* Each named volume is the PersistentVolumeClaim of that name, which the
 * admin created in the namespace (ReadWriteMany to be shared across nodes).
 * The pod's volume names are ours (jg-vol-<i>): a claim name could clash
 * with jg-agent and friends. */
static void add_claim_volumes(const jg_job_spec_t *job, json_t *mounts, json_t *volumes)
{
    for (size_t i = 0; i < job->n_volumes; i++) {
        char name[32];
        snprintf(name, sizeof name, "jg-vol-%zu", i);
        json_array_append_new(mounts, json_pack("{s:s, s:s}", "name", name, "mountPath",
                                                job->volumes[i].key));
        json_array_append_new(volumes,
                              json_pack("{s:s, s:{s:s}}", "name", name, "persistentVolumeClaim",
                                        "claimName", job->volumes[i].value));
    }
}

json_t *jg_k8s_pod(const jg_k8s_settings_t *settings, const jg_group_spec_t *spec,
                   int64_t group_id, int job_index, int rank, int attempt, int64_t submitted_us,
                   const jg_k8s_owner_t *owner, const char *image, jg_error_t *err)
{
    if (job_index < 0 || (size_t)job_index >= spec->n_jobs || rank < 0 ||
        rank >= spec->jobs[job_index].num_nodes) {
        jg_errprintf(err, "no node %d of job %d in group %s", rank, job_index, spec->name);
        return NULL;
    }
    const jg_job_spec_t *job = &spec->jobs[job_index];
    if (jg_k8s_check_volumes(job, err) < 0)
        return NULL;
    json_t *resources;
    if (pod_resources(settings, job, &resources, err) < 0)
        return NULL;

    char name[JG_K8S_DNS_LABEL_MAX + 1], host[JG_K8S_DNS_LABEL_MAX + 1],
        group[JG_K8S_DNS_LABEL_MAX + 1], secret[JG_K8S_DNS_LABEL_MAX + 1];
    jg_k8s_pod_name(group_id, job->name, rank, name);
    jg_k8s_hostname(job->name, rank, host);
    jg_k8s_group_name(group_id, group);
    jg_k8s_secret_name(group_id, secret);

    json_t *lab = labels(settings, group_id);
    char num[32];
    json_object_set_new(lab, "jgsched.io/job", json_string(job->name));
    snprintf(num, sizeof num, "%d", rank);
    json_object_set_new(lab, "jgsched.io/rank", json_string(num));
    snprintf(num, sizeof num, "%d", attempt);
    json_object_set_new(lab, "jgsched.io/attempt", json_string(num));
    json_t *meta = metadata(settings, name, lab, owner);
    json_object_set_new(meta, "annotations", json_pack("{s:s}", "jgsched.io/group-name",
                                                       spec->name));

    /* Only the scripts the job has: a configMap item naming a missing key
     * would keep the pod from starting. */
    json_t *items = json_array();
    char key[JG_K8S_DNS_LABEL_MAX + 8];
    if (job->setup) {
        snprintf(key, sizeof key, "%s.setup", job->name);
        json_array_append_new(items, json_pack("{s:s, s:s}", "key", key, "path", "setup"));
    }
    if (job->run) {
        snprintf(key, sizeof key, "%s.run", job->name);
        json_array_append_new(items, json_pack("{s:s, s:s}", "key", key, "path", "run"));
    }

    json_t *install_cmd = json_pack("[s, s, s]", "/jgsched-agent", "install", "/.jgsched");
    json_t *install = json_pack(
        "{s:s, s:s, s:o, s:[{s:s, s:s}], s:{s:{s:s, s:s}, s:{s:s, s:s}}}", "name",
        "jg-agent-install", "image", settings->agent_image, "command", install_cmd,
        "volumeMounts", "name", "jg-agent", "mountPath", "/.jgsched", "resources", "requests",
        "cpu", "10m", "memory", "16Mi", "limits", "cpu", "100m", "memory", "32Mi");
    if (settings->hosts_writable) {
        json_array_append_new(install_cmd, json_string("--hosts-writable"));
        json_object_set_new(install, "securityContext", json_pack("{s:i}", "runAsUser", 0));
    }

    json_t *main_c = json_pack(
        "{s:s, s:s, s:[s], s:o, s:[{s:s, s:i, s:s}], s:o, s:["
        "{s:s, s:s}, {s:s, s:s, s:b}, {s:s, s:s, s:b}, {s:s, s:s}]}",
        "name", "main", "image", image, "command", "/.jgsched/jgsched-agent", "env",
        pod_env(settings, spec, group_id, job_index, rank, attempt, submitted_us), "ports",
        "name", "agent", "containerPort", JG_K8S_AGENT_PORT, "protocol", "TCP", "resources",
        resources, "volumeMounts", "name", "jg-agent", "mountPath", "/.jgsched", "name",
        "jg-job", "mountPath", "/.jgsched/job", "readOnly", 1, "name", "jg-secret", "mountPath",
        "/.jgsched/secret", "readOnly", 1, "name", "jg-tmp", "mountPath", "/tmp");

    /* The kubelet's grace must outlast the agent's own (TERM, grace, KILL,
     * exit), or a stop's exit code would be the kubelet's KILL instead. */
    int termination_s = (settings->stop_grace_ms + 999) / 1000 + 2;
    json_t *spec_obj = json_pack(
        "{s:s, s:s, s:s, s:b, s:b, s:i, s:[o], s:[o], s:["
        "{s:s, s:{}}, {s:s, s:{}}, {s:s, s:{s:s, s:o, s:i}}, "
        "{s:s, s:{s:s, s:[{s:s, s:s}], s:i}}]}",
        "hostname", host, "subdomain", group, "restartPolicy", "Never",
        "automountServiceAccountToken", 0, "enableServiceLinks", 0,
        "terminationGracePeriodSeconds", termination_s, "initContainers", install, "containers",
        main_c, "volumes", "name", "jg-agent", "emptyDir", "name", "jg-tmp", "emptyDir", "name",
        "jg-job", "configMap", "name", group, "items", items, "defaultMode", 0444, "name",
        "jg-secret", "secret", "secretName", secret, "items", "key", "token", "path", "token",
        "defaultMode", 0444);
    add_claim_volumes(job, json_object_get(main_c, "volumeMounts"),
                      json_object_get(spec_obj, "volumes"));
    if (settings->gpu_label && job->accel.name && job->accel.count > 0) {
        char *value = lowercase(job->accel.name);
        json_object_set_new(spec_obj, "nodeSelector",
                            json_pack("{s:s}", settings->gpu_label, value));
        free(value);
    }
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", meta,
                     "spec", spec_obj);
}
