/* capacity.c - what the cluster can hold, from its Nodes (k8s_int.h).
 *
 * One watch on /api/v1/nodes keeps every Node's allocatable; capacity() sums
 * the Ready, schedulable ones and lists them one by one; fit() decides on
 * that shape: NEVER when no node could ever hold one node of a job, NOT_NOW
 * while the API server was not reached, does not answer now, or what
 * jgsched's groups hold leaves too little.  The same watch says whether the
 * server answers: `reachable` turns false after a few failures in a row and
 * true again with the next complete list.  Other tenants' pods are the cluster scheduler's business: a
 * pod it cannot place is reported NODE_PENDING with its reason.
 */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jgsched/capacity.h"

/* Node labels that name the accelerator type, in the order they are tried. */
static const char *const accel_labels[] = {"skypilot.co/accelerator",
                                           "cloud.google.com/gke-accelerator",
                                           "nvidia.com/gpu.product", NULL};

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool node_usable(json_t *node)
{
    json_t *spec = json_object_get(node, "spec");
    if (json_is_true(json_object_get(spec, "unschedulable")))
        return false;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(node, "status"), "conditions"), i, c) {
        const char *type = str(c, "type"), *status = str(c, "status");
        if (type && status && !strcmp(type, "Ready"))
            return !strcmp(status, "True");
    }
    return false;
}

static const char *accel_type(json_t *node)
{
    json_t *labels = json_object_get(json_object_get(node, "metadata"), "labels");
    for (size_t i = 0; accel_labels[i]; i++) {
        const char *v = str(labels, accel_labels[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

static void rebuild(k8s_backend_t *b)
{
    jg_capacity_t *cap = &b->capacity;
    char source[sizeof cap->source], note[sizeof cap->note];
    snprintf(source, sizeof source, "%s", cap->source);
    jg_capacity_clear(cap);
    memset(cap, 0, sizeof *cap);
    snprintf(cap->source, sizeof cap->source, "%s", source);
    cap->reachable = b->nodes_synced && !b->api_silent;
    note[0] = '\0';
    const char *name;
    json_t *node;
    size_t n = json_object_size(b->node_objs), unusable = 0;
    cap->nodes = jg_xcalloc(n ? n : 1, sizeof *cap->nodes);
    json_object_foreach(b->node_objs, name, node) {
        if (!node_usable(node)) {
            unusable++;
            continue;
        }
        json_t *alloc = json_object_get(json_object_get(node, "status"), "allocatable");
        double cpus = k8s_parse_cpu(str(alloc, "cpu"));
        double mem = k8s_parse_memory_gib(str(alloc, "memory"));
        const char *gq = str(alloc, b->gpu_resource);
        int gpus = gq ? atoi(gq) : 0;
        jg_capacity_node_t *cn = &cap->nodes[cap->n_nodes++];
        cn->name = jg_xstrdup(name);
        cn->cpus = cpus > 0 ? cpus : 0;
        cn->memory_gb = mem > 0 ? mem : 0;
        cap->cpus += cn->cpus;
        cap->memory_gb += cn->memory_gb;
        if (cn->cpus > cap->max_node_cpus)
            cap->max_node_cpus = cn->cpus;
        if (cn->memory_gb > cap->max_node_memory_gb)
            cap->max_node_memory_gb = cn->memory_gb;
        if (gpus > 0) {
            const char *type = accel_type(node);
            cn->accels = jg_xcalloc(1, sizeof *cn->accels);
            cn->accels[0].name = jg_xstrdup(type ? type : b->gpu_resource);
            cn->accels[0].count = gpus;
            cn->n_accels = 1;
            jg_capacity_add_accel(cap, type ? type : b->gpu_resource, gpus);
        }
    }
    if (b->api_silent)
        snprintf(note, sizeof note, "the API server does not answer %s", b->api_silent_why);
    else if (!b->nodes_synced)
        snprintf(note, sizeof note, "the API server was not reached yet");
    else if (unusable)
        snprintf(note, sizeof note, "%zu node%s not Ready or cordoned", unusable,
                 unusable == 1 ? "" : "s");
    snprintf(cap->note, sizeof cap->note, "%s", note);
}

static void on_node(void *ctx, jg_k8s_event_type_t type, json_t *obj)
{
    k8s_backend_t *b = ctx;
    const char *name = str(json_object_get(obj, "metadata"), "name");
    if (!name)
        return;
    if (type == JG_K8S_DELETED)
        json_object_del(b->node_objs, name);
    else
        json_object_set(b->node_objs, name, obj);
    if (b->nodes_synced) {
        rebuild(b);
        k8s_emit(b, &(jg_backend_event_t){.type = JG_BACKEND_CAPACITY_CHANGED, .job_index = -1,
                                          .rank = -1});
    }
}

static void on_nodes_synced(void *ctx)
{
    k8s_backend_t *b = ctx;
    b->nodes_synced = true;
    rebuild(b);
    k8s_emit(b, &(jg_backend_event_t){.type = JG_BACKEND_CAPACITY_CHANGED, .job_index = -1,
                                      .rank = -1});
}

static void on_nodes_health(void *ctx, bool answering, const char *why)
{
    k8s_backend_t *b = ctx;
    b->api_silent = !answering;
    if (!answering) {
        char since[32] = "?";
        time_t now = time(NULL);
        struct tm tm;
        if (gmtime_r(&now, &tm))
            strftime(since, sizeof since, "%H:%M:%S UTC", &tm);
        snprintf(b->api_silent_why, sizeof b->api_silent_why, "(since %s): %s", since, why);
        jg_log("warn", "kubernetes infra %s: the API server does not answer: %s",
               b->base.name, why);
    } else {
        jg_log("info", "kubernetes infra %s: the API server answers again", b->base.name);
    }
    rebuild(b);
    k8s_emit(b, &(jg_backend_event_t){.type = JG_BACKEND_CAPACITY_CHANGED, .job_index = -1,
                                      .rank = -1});
}

int k8s_capacity_start(k8s_backend_t *b, jg_error_t *err)
{
    b->node_objs = json_object();
    rebuild(b);
    jg_k8s_watch_opts_t o = {.path = "/api/v1/nodes", .on_event = on_node,
                             .on_synced = on_nodes_synced, .on_health = on_nodes_health,
                             .ctx = b};
    b->node_watch = jg_k8s_watch_start(b->client, &o, err);
    return b->node_watch ? 0 : -1;
}

const jg_capacity_t *k8s_capacity(jg_backend_t *base)
{
    k8s_backend_t *b = base->impl;
    return &b->capacity;
}

static bool node_holds(const jg_capacity_node_t *cn, const jg_job_spec_t *job)
{
    if (jg_node_cpus(job) > cn->cpus + 1e-9 || jg_node_memory_gb(job) > cn->memory_gb + 1e-9)
        return false;
    if (!job->accel.name || job->accel.count <= 0)
        return true;
    if (!cn->n_accels || cn->accels[0].count < job->accel.count)
        return false;
    /* A node that names its accelerator type must name the one asked for;
     * one that does not (only the resource) may hold any. */
    const char *type = cn->accels[0].name;
    return strchr(type, '/') || strcasestr(type, job->accel.name);
}

jg_fit_t k8s_fit(jg_backend_t *base, const jg_group_spec_t *spec, const jg_usage_t *held,
                 char *why, size_t len)
{
    k8s_backend_t *b = base->impl;
    const jg_capacity_t *cap = &b->capacity;
    if (b->api_silent) {
        snprintf(why, len, "the API server of infra %s does not answer %s", base->name,
                 b->api_silent_why);
        return JG_FIT_NOT_NOW;
    }
    if (!b->nodes_synced) {
        snprintf(why, len, "waiting for the API server of infra %s", base->name);
        return JG_FIT_NOT_NOW;
    }
    if (!cap->n_nodes) {
        snprintf(why, len, "infra %s has no Ready node", base->name);
        return JG_FIT_NOT_NOW;
    }
    double need_cpus = 0, need_mem = 0;
    int need_gpus = 0;
    for (size_t j = 0; j < spec->n_jobs; j++) {
        const jg_job_spec_t *job = &spec->jobs[j];
        bool somewhere = false;
        for (size_t i = 0; i < cap->n_nodes && !somewhere; i++)
            somewhere = node_holds(&cap->nodes[i], job);
        if (!somewhere) {
            char accel[96] = "";
            if (job->accel.name)
                snprintf(accel, sizeof accel, " accelerators=%s:%d", job->accel.name,
                         job->accel.count);
            snprintf(why, len, "job %s asks cpus=%g memory=%gGB%s; no node of infra %s offers "
                               "that (the largest offers cpus=%g memory=%gGB)",
                     job->name, jg_node_cpus(job), jg_node_memory_gb(job), accel, base->name,
                     cap->max_node_cpus, cap->max_node_memory_gb);
            return JG_FIT_NEVER;
        }
        need_cpus += jg_node_cpus(job) * job->num_nodes;
        need_mem += jg_node_memory_gb(job) * job->num_nodes;
        if (job->accel.name)
            need_gpus += job->accel.count * job->num_nodes;
    }
    double used_cpus = held ? held->cpus : 0, used_mem = held ? held->memory_gb : 0;
    int used_gpus = 0, total_gpus = 0;
    for (size_t i = 0; held && i < held->n_accels; i++)
        used_gpus += held->accels[i].count;
    for (size_t i = 0; i < cap->n_accels; i++)
        total_gpus += cap->accels[i].count;
    if (need_cpus > cap->cpus - used_cpus + 1e-9) {
        snprintf(why, len, "waiting for resources: needs %g cpus, %g of %g free", need_cpus,
                 cap->cpus - used_cpus, cap->cpus);
        return JG_FIT_NOT_NOW;
    }
    if (need_mem > cap->memory_gb - used_mem + 1e-9) {
        snprintf(why, len, "waiting for resources: needs %gGB memory, %gGB of %gGB free",
                 need_mem, cap->memory_gb - used_mem, cap->memory_gb);
        return JG_FIT_NOT_NOW;
    }
    if (need_gpus > total_gpus - used_gpus) {
        snprintf(why, len, "waiting for resources: needs %d accelerators, %d of %d free",
                 need_gpus, total_gpus - used_gpus, total_gpus);
        return JG_FIT_NOT_NOW;
    }
    return JG_FIT_NOW;
}
