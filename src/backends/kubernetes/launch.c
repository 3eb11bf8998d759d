/* launch.c - a group's objects and its nodes' pods (k8s_int.h).
 *
 * The owner ConfigMap is created first: its uid is what the Secret, the
 * Service and every Pod name in their ownerReference, so deleting it
 * garbage-collects the group.  Names are fixed (jg-<gid>...), so a create
 * that meets AlreadyExists of our own object (a retried POST, a daemon that
 * restarted half-way) takes it as created.
 *
 * A node launched again with a higher attempt is restarted in place when its
 * pod's agent is alive (/restart: same pod, same IP, /tmp kept); otherwise
 * (the pod was lost or its container ended) a new pod of the same name
 * replaces it once the old one is gone: same hostname and subdomain, so its
 * names resolve as before.
 */
#include "k8s_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void make_token(char out[65])
{
    unsigned char raw[24];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof raw)
        abort();    /* no randomness: nothing safe can be made */
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void k8s_launch_failed(k8s_node_t *n, const char *reason)
{
    if (n->ended)
        return;
    n->ended = true;
    n->want_pod = false;
    k8s_emit(n->g->b, &(jg_backend_event_t){.type = JG_BACKEND_LAUNCH_FAILED, .group_id = n->g->id,
                                            .job_index = n->job_index, .rank = n->rank,
                                            .attempt = n->attempt, .reason = reason});
    k8s_stops_check(n->g);
}

static void group_launch_failed(k8s_group_t *g, const char *reason)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->want_pod && !g->nodes[i]->create_sent)
            k8s_launch_failed(g->nodes[i], reason);
}

/* ---- pods */

static void create_again(jg_loop_t *loop, void *arg)
{
    (void)loop;
    k8s_node_t *n = arg;
    n->create_timer = 0;
    k8s_create_pod(n);
}

static void pod_created(void *ctx, const jg_k8s_response_t *resp)
{
    k8s_node_key_t *key = ctx;
    k8s_node_t *n = k8s_node_by_key(key);
    k8s_ctx_free(key);
    if (!n || n->ended)
        return;
    if (resp->status == 201 || resp->status == 200) {
        const char *uid = json_string_value(
            json_object_get(json_object_get(resp->body, "metadata"), "uid"));
        snprintf(n->uid, sizeof n->uid, "%s", uid ? uid : "");
        n->pod_attempt = n->attempt;
        if (!n->want_pod) {
            /* Stopped while its create was under way: it goes at once, and
             * the watch seeing it gone ends the node. */
            k8s_delete_pod(n, 0);
            return;
        }
        n->want_pod = false;
        return;
    }
    if (!n->want_pod) {
        /* Stopped while its create was under way, and nothing was made
         * (or what is there is going): that is its end. */
        n->create_sent = false;
        if (resp->status == 409)
            k8s_delete_pod(n, 0);
        else
            k8s_node_end(n, &(jg_backend_event_t){.type = JG_BACKEND_NODE_EXITED,
                                                  .exit_code = 143, .signal = 15,
                                                  .in_setup = true,
                                                  .reason = "stopped before its pod existed"});
        return;
    }
    if (resp->status == 409) {
        /* Ours already (a retried POST), or the previous pod of this node is
         * still terminating: then try again once it is gone. */
        json_t *pod = jg_k8s_watch_get(n->g->b->pod_watch, n->g->b->namespace, n->pod);
        int64_t gid;
        const char *job;
        int rank, attempt;
        if (pod && k8s_pod_labels(pod, &gid, &job, &rank, &attempt) && attempt == n->attempt &&
            !json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp")) {
            n->pod_attempt = attempt;
            n->want_pod = false;
            return;
        }
        n->create_sent = false;
        n->create_timer = jg_loop_add_timer(n->g->b->loop, 500, create_again, n);
        return;
    }
    char why[512];
    jg_k8s_response_describe(resp, "creating pod", why, sizeof why);
    n->create_sent = false;
    k8s_launch_failed(n, why);
}

/* Whether the watch still shows a pod of this node that is not the one wanted. */
static bool old_pod_present(k8s_node_t *n)
{
    json_t *pod = jg_k8s_watch_get(n->g->b->pod_watch, n->g->b->namespace, n->pod);
    if (!pod)
        return false;
    int64_t gid;
    const char *job;
    int rank, attempt;
    return !k8s_pod_labels(pod, &gid, &job, &rank, &attempt) || attempt != n->attempt;
}

void k8s_create_pod(k8s_node_t *n)
{
    k8s_group_t *g = n->g;
    k8s_backend_t *b = g->b;
    if (!n->want_pod || n->create_sent || n->ended || !g->deps_ready || !g->spec)
        return;
    if (old_pod_present(n)) {
        /* The replaced pod must go first (same name); monitor.c calls again
         * when the watch shows it gone, this timer covers a missed event. */
        if (!n->create_timer)
            n->create_timer = jg_loop_add_timer(b->loop, 1000, create_again, n);
        return;
    }
    jg_error_t err;
    const jg_job_spec_t *job = &g->spec->jobs[n->job_index];
    const char *image = jg_k8s_image(&b->settings, job->image_id, &err);
    jg_k8s_owner_t owner;
    char owner_name[JG_K8S_DNS_LABEL_MAX + 1];
    jg_k8s_group_name(g->id, owner_name);
    owner.name = owner_name;
    owner.uid = g->owner_uid;
    json_t *pod = image ? jg_k8s_pod(&b->settings, g->spec, g->id, n->job_index, n->rank,
                                     n->attempt, g->submitted_us, &owner, image, &err)
                        : NULL;
    if (!pod) {
        k8s_launch_failed(n, err.text);
        return;
    }
    k8s_node_key_t *key = k8s_ctx_new(b, sizeof *key, NULL);
    *key = k8s_node_key(n);
    char *path = k8s_pods_path(b);
    jg_k8s_request_opts_t o = {.method = "POST", .path = path, .body = pod,
                               .on_done = pod_created, .ctx = key};
    /* A new pod: nothing of the old one's state carries over. */
    n->started = false;
    n->uid[0] = '\0';
    n->ip[0] = '\0';
    n->log_seen = 0;
    n->log_skip = 0;        /* a new pod's log: nothing of it was delivered */
    n->log_attempt = n->attempt;
    n->log_finished = false;
    n->serial = 0;
    n->agent_phase[0] = '\0';
    n->deleting = false;
    n->create_sent = true;
    if (!jg_k8s_request(b->client, &o, &err)) {
        k8s_ctx_free(key);
        n->create_sent = false;
        k8s_launch_failed(n, err.text);
    }
    free(path);
    json_decref(pod);
}

static void create_wanted_pods(k8s_group_t *g)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        k8s_create_pod(g->nodes[i]);
}

/* ---- the owner and its dependents */

typedef struct {
    k8s_backend_t *b;
    int64_t group_id;
    const char *what;
} obj_ctx_t;

static void dependent_created(void *ctx, const jg_k8s_response_t *resp)
{
    obj_ctx_t *oc = ctx;
    k8s_group_t *g = k8s_group_find(oc->b, oc->group_id, false);
    const char *what = oc->what;
    k8s_ctx_free(oc);
    if (!g)
        return;
    if (resp->status != 201 && resp->status != 200 && resp->status != 409) {
        char why[512];
        jg_k8s_response_describe(resp, what, why, sizeof why);
        g->deps_pending = 0;
        for (size_t i = 0; i < g->n_nodes; i++)
            if (!g->nodes[i]->started && !g->nodes[i]->ended)
                k8s_launch_failed(g->nodes[i], why);
        return;
    }
    if (g->deps_pending > 0 && --g->deps_pending == 0) {
        g->deps_ready = true;
        create_wanted_pods(g);
    }
}

static void create_object(k8s_group_t *g, const char *kind_path, json_t *obj, const char *what)
{
    k8s_backend_t *b = g->b;
    obj_ctx_t *oc = k8s_ctx_new(b, sizeof *oc, NULL);
    *oc = (obj_ctx_t){.b = b, .group_id = g->id, .what = what};
    char *path = jg_xasprintf("/api/v1/namespaces/%s/%s", b->namespace, kind_path);
    jg_k8s_request_opts_t o = {.method = "POST", .path = path, .body = obj,
                               .on_done = dependent_created, .ctx = oc};
    jg_error_t err;
    if (!jg_k8s_request(b->client, &o, &err)) {
        k8s_ctx_free(oc);
        group_launch_failed(g, err.text);
    }
    free(path);
    json_decref(obj);
}

static void owner_ready(k8s_group_t *g, const char *uid)
{
    snprintf(g->owner_uid, sizeof g->owner_uid, "%s", uid);
    jg_k8s_owner_t owner;
    char name[JG_K8S_DNS_LABEL_MAX + 1];
    jg_k8s_group_name(g->id, name);
    owner.name = name;
    owner.uid = g->owner_uid;
    g->deps_pending = 2;
    create_object(g, "secrets", jg_k8s_token_secret(&g->b->settings, g->id, &owner, g->token),
                  "creating the token Secret");
    create_object(g, "services", jg_k8s_service(&g->b->settings, g->id, &owner),
                  "creating the headless Service");
}

static void owner_fetched(void *ctx, const jg_k8s_response_t *resp);

static void owner_created(void *ctx, const jg_k8s_response_t *resp)
{
    obj_ctx_t *oc = ctx;
    k8s_group_t *g = k8s_group_find(oc->b, oc->group_id, false);
    if (!g || g->cleaning) {
        k8s_ctx_free(oc);
        return;
    }
    if (resp->status == 201 || resp->status == 200) {
        const char *uid = json_string_value(
            json_object_get(json_object_get(resp->body, "metadata"), "uid"));
        k8s_ctx_free(oc);
        owner_ready(g, uid ? uid : "");
        return;
    }
    if (resp->status == 409) {
        /* Ours from an earlier try: its uid, and its Secret's token. */
        char *path = jg_xasprintf("/api/v1/namespaces/%s/configmaps/jg-%lld", oc->b->namespace,
                                  (long long)g->id);
        jg_k8s_request_opts_t o = {.method = "GET", .path = path, .on_done = owner_fetched,
                                   .ctx = oc};
        jg_error_t err;
        if (!jg_k8s_request(oc->b->client, &o, &err)) {
            k8s_ctx_free(oc);
            group_launch_failed(g, err.text);
        }
        free(path);
        return;
    }
    char why[512];
    jg_k8s_response_describe(resp, "creating the owner ConfigMap", why, sizeof why);
    k8s_ctx_free(oc);
    g->owner_requested = false;
    group_launch_failed(g, why);
}

static void owner_fetched(void *ctx, const jg_k8s_response_t *resp)
{
    obj_ctx_t *oc = ctx;
    k8s_group_t *g = k8s_group_find(oc->b, oc->group_id, false);
    k8s_ctx_free(oc);
    if (!g || g->cleaning)
        return;
    json_t *meta = json_object_get(resp->body, "metadata");
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    const char *inst = json_string_value(
        json_object_get(json_object_get(meta, "labels"), "jgsched.io/instance"));
    if (resp->status != 200 || !uid || !inst || strcmp(inst, g->b->instance) != 0) {
        char why[512];
        if (resp->status == 200)
            snprintf(why, sizeof why, "ConfigMap jg-%lld exists and is not this daemon's",
                     (long long)g->id);
        else
            jg_k8s_response_describe(resp, "reading the owner ConfigMap", why, sizeof why);
        g->owner_requested = false;
        group_launch_failed(g, why);
        return;
    }
    if (g->reattached) {
        snprintf(g->owner_uid, sizeof g->owner_uid, "%s", uid);
        g->deps_ready = true;
        create_wanted_pods(g);
        return;
    }
    owner_ready(g, uid);
}

static void token_fetched(void *ctx, const jg_k8s_response_t *resp)
{
    obj_ctx_t *oc = ctx;
    k8s_group_t *g = k8s_group_find(oc->b, oc->group_id, false);
    k8s_ctx_free(oc);
    if (!g)
        return;
    const char *b64 = json_string_value(
        json_object_get(json_object_get(resp->body, "data"), "token"));
    if (resp->status != 200 || !b64) {
        char why[512];
        jg_k8s_response_describe(resp, "reading the group's token Secret", why, sizeof why);
        jg_log("error", "kubernetes: group %lld: %s", (long long)g->id, why);
        return;
    }
    /* Base64 of [0-9a-f]{48}: decode by hand, nothing else is valid. */
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[sizeof g->token];
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = b64; *p && *p != '='; p++) {
        const char *at = strchr(tab, *p);
        if (!at)
            return;
        acc = (acc << 6) | (uint32_t)(at - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= sizeof out)
                return;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    memcpy(g->token, out, o + 1);
}

void k8s_group_fetch_owner(k8s_group_t *g)
{
    k8s_backend_t *b = g->b;
    g->reattached = true;
    if (g->owner_requested)
        return;
    g->owner_requested = true;
    static const struct {
        const char *fmt;
        jg_k8s_done_f done;
    } gets[] = {{"/api/v1/namespaces/%s/configmaps/jg-%lld", owner_fetched},
                {"/api/v1/namespaces/%s/secrets/jg-%lld-token", token_fetched}};
    for (size_t i = 0; i < 2; i++) {
        obj_ctx_t *oc = k8s_ctx_new(b, sizeof *oc, NULL);
        *oc = (obj_ctx_t){.b = b, .group_id = g->id, .what = "reading the group's objects"};
        char *path = jg_xasprintf(gets[i].fmt, b->namespace, (long long)g->id);
        jg_k8s_request_opts_t o = {.method = "GET", .path = path, .on_done = gets[i].done,
                                   .ctx = oc};
        jg_error_t err;
        if (!jg_k8s_request(b->client, &o, &err)) {
            k8s_ctx_free(oc);
            jg_log("error", "kubernetes: group %lld: %s", (long long)g->id, err.text);
        }
        free(path);
    }
}

static void create_owner(k8s_group_t *g)
{
    k8s_backend_t *b = g->b;
    g->owner_requested = true;
    json_t *cm = jg_k8s_owner_configmap(&b->settings, g->spec, g->id, NULL);
    obj_ctx_t *oc = k8s_ctx_new(b, sizeof *oc, NULL);
    *oc = (obj_ctx_t){.b = b, .group_id = g->id, .what = "creating the owner ConfigMap"};
    char *path = jg_xasprintf("/api/v1/namespaces/%s/configmaps", b->namespace);
    jg_k8s_request_opts_t o = {.method = "POST", .path = path, .body = cm,
                               .on_done = owner_created, .ctx = oc};
    jg_error_t err;
    if (!jg_k8s_request(b->client, &o, &err)) {
        k8s_ctx_free(oc);
        g->owner_requested = false;
        group_launch_failed(g, err.text);
    }
    free(path);
    json_decref(cm);
}

/* ---- the op */

static jg_group_spec_t *spec_copy(const jg_group_spec_t *spec, jg_error_t *err)
{
    char *json = jg_spec_to_json(spec);
    jg_group_spec_t *copy = json ? jg_spec_from_json(json, err) : NULL;
    free(json);
    return copy;
}

int k8s_launch(jg_backend_t *base, const jg_launch_t *req, jg_error_t *err)
{
    k8s_backend_t *b = base->impl;
    const jg_group_spec_t *spec = req->spec;
    for (size_t i = 0; i < req->n_nodes; i++) {
        int j = req->nodes[i].job_index;
        if (j < 0 || (size_t)j >= spec->n_jobs || req->nodes[i].rank < 0 ||
            req->nodes[i].rank >= spec->jobs[j].num_nodes)
            return jg_errprintf(err, "no node %d of job %d in group %s", req->nodes[i].rank, j,
                                spec->name);
        if (!jg_k8s_image(&b->settings, spec->jobs[j].image_id, err))
            return jg_errprefix(err, "job %s", spec->jobs[j].name);
        if (jg_k8s_check_volumes(&spec->jobs[j], err) < 0)
            return -1;
    }
    jg_group_spec_t *copy = NULL;
    k8s_group_t *g = k8s_group_find(b, req->group_id, false);
    if (!g || !g->spec) {
        copy = spec_copy(spec, err);
        if (!copy)
            return jg_errprefix(err, "group %s", spec->name);
    }
    g = k8s_group_find(b, req->group_id, true);
    if (copy) {
        jg_spec_free(g->spec);
        g->spec = copy;
    }
    g->cleaning = g->cleaned = false;
    snprintf(g->name, sizeof g->name, "%s", spec->name);
    g->submitted_us = req->submitted_us;
    if (!g->token[0] && !g->reattached)
        make_token(g->token);

    for (size_t i = 0; i < req->n_nodes; i++) {
        const jg_node_ref_t *ref = &req->nodes[i];
        const char *job = spec->jobs[ref->job_index].name;
        k8s_node_t *n = k8s_node_find(g, job, ref->rank);
        if (!n)
            n = k8s_node_add(g, ref->job_index, job, ref->rank);
        /* In place only on a pod that runs and nobody is deleting, whose
         * agent answered: a lost pod is replaced. */
        json_t *pod = jg_k8s_watch_get(b->pod_watch, b->namespace, n->pod);
        k8s_pod_state_t st = {.phase = K8S_POD_LOST};
        if (pod)
            k8s_pod_state(pod, &st);
        bool alive = n->started && !n->deleting && n->agent_phase[0] && pod && !st.deleting &&
                     st.phase == K8S_POD_RUNNING;
        bool was_running = n->attempt > 0;
        n->attempt = ref->attempt;
        n->setup_done = n->released = n->ended = n->exit_pending = false;
        n->stop_requested = false;
        n->in_setup = true;
        n->last_pending[0] = '\0';
        if (n->settle_timer) {
            jg_loop_cancel_timer(b->loop, n->settle_timer);
            n->settle_timer = 0;
        }
        if (was_running && alive) {
            /* In place: the same pod, its /tmp kept. */
            n->want_pod = false;
            k8s_restart_in_place(n);
            continue;
        }
        n->want_pod = true;
        n->create_sent = false;
        if (was_running) {
            /* Replaced: the old pod (if any is left) goes first. */
            k8s_agent_stop(n);
            k8s_log_stop(n);
            if (jg_k8s_watch_get(b->pod_watch, b->namespace, n->pod))
                k8s_delete_pod(n, 0);
        }
    }
    if (!g->owner_uid[0]) {
        if (!g->owner_requested)
            create_owner(g);
    } else {
        create_wanted_pods(g);
    }
    return 0;
}
