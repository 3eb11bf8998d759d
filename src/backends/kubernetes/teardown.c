/* teardown.c - stop, cleanup, sweep and reattach (k8s_int.h).
 *
 * stop() asks each targeted node's agent to /kill its setup or run (TERM,
 * KILL after the grace): the agent stays, reports "exited" (so the pod can
 * be restarted in place), and that is the node's end.  A node whose agent
 * cannot be asked (its pod not running yet, or not answering) has its pod
 * deleted; the watch seeing it gone ends the node.  STOPPED follows once
 * every targeted node has ended.
 *
 * cleanup() deletes the owner ConfigMap (the garbage collector takes the
 * rest) and, not to wait for the collector, the group's pods, Service and
 * Secret; CLEANED once the watch shows no pod of the group left.  sweep()
 * does the same for every group of this instance the store no longer
 * lists.  reattach() finds the nodes' pods in the watch (after its first
 * list) and reads the group's owner uid and token back from the cluster.
 */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- deletes */

typedef struct {
    k8s_backend_t *b;
    int64_t group_id;
    bool counts;            /* one of the group's cleanup deletes */
} del_ctx_t;

static void delete_done(void *ctx, const jg_k8s_response_t *resp)
{
    del_ctx_t *dc = ctx;
    k8s_group_t *g = k8s_group_find(dc->b, dc->group_id, false);
    bool counts = dc->counts;
    k8s_ctx_free(dc);
    if (!g)
        return;
    if (resp->status >= 300 && resp->status != 404 && !g->clean_problem[0])
        jg_k8s_response_describe(resp, "deleting", g->clean_problem, sizeof g->clean_problem);
    if (counts && g->pending_deletes > 0 && --g->pending_deletes == 0) {
        g->cleanup_deleted = true;
        k8s_group_check_done(g);
    }
}

static void send_delete(k8s_backend_t *b, k8s_group_t *g, const char *path, const char *query,
                        bool counts)
{
    del_ctx_t *dc = k8s_ctx_new(b, sizeof *dc, NULL);
    *dc = (del_ctx_t){.b = b, .group_id = g ? g->id : 0, .counts = counts};
    jg_k8s_request_opts_t o = {.method = "DELETE", .path = path, .query = query,
                               .on_done = delete_done, .ctx = dc};
    jg_error_t err;
    if (counts && g)
        g->pending_deletes++;
    if (!jg_k8s_request(b->client, &o, &err)) {
        jg_log("error", "kubernetes: DELETE %s: %s", path, err.text);
        if (counts && g && g->pending_deletes > 0)
            g->pending_deletes--;
        k8s_ctx_free(dc);
    }
}

void k8s_delete_pod(k8s_node_t *n, int grace_s)
{
    k8s_backend_t *b = n->g->b;
    n->deleting = true;
    char *path = jg_xasprintf("/api/v1/namespaces/%s/pods/%s", b->namespace, n->pod);
    char query[64];
    snprintf(query, sizeof query, "gracePeriodSeconds=%d", grace_s);
    send_delete(b, n->g, path, query, false);
    free(path);
}

/* Everything of group `id` this instance made. */
static void delete_group_objects(k8s_backend_t *b, k8s_group_t *g, int64_t id, bool counts)
{
    char *q = jg_xasprintf("propagationPolicy=Background");
    char *path = jg_xasprintf("/api/v1/namespaces/%s/configmaps/jg-%lld", b->namespace,
                              (long long)id);
    send_delete(b, g, path, q, counts);
    free(path);
    path = jg_xasprintf("/api/v1/namespaces/%s/services/jg-%lld", b->namespace, (long long)id);
    send_delete(b, g, path, q, counts);
    free(path);
    path = jg_xasprintf("/api/v1/namespaces/%s/secrets/jg-%lld-token", b->namespace,
                        (long long)id);
    send_delete(b, g, path, q, counts);
    free(path);
    free(q);
    /* The pods by label: those of every attempt, also ones this daemon
     * never heard the create answer of. */
    char *sel = jg_xasprintf("%s,jgsched.io/group-id=%lld", b->selector, (long long)id);
    char *esc = curl_easy_escape(NULL, sel, 0);
    q = jg_xasprintf("labelSelector=%s", esc ? esc : "");
    path = k8s_pods_path(b);
    send_delete(b, g, path, q, counts);
    curl_free(esc);
    free(sel);
    free(q);
    free(path);
}

/* ---- stop */

static bool targeted(const k8s_node_t *n, int job_index, int rank)
{
    return (job_index < 0 || n->job_index == job_index) && (rank < 0 || n->rank == rank);
}

void k8s_stops_check(k8s_group_t *g)
{
    k8s_stop_t **pp = &g->stops;
    while (*pp) {
        k8s_stop_t *s = *pp;
        bool all = true;
        for (size_t i = 0; i < g->n_nodes && all; i++) {
            k8s_node_t *n = g->nodes[i];
            if (targeted(n, s->job_index, s->rank) && (!n->ended || n->exit_pending))
                all = false;
        }
        if (!all) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        k8s_emit(g->b, &(jg_backend_event_t){.type = JG_BACKEND_STOPPED, .group_id = g->id,
                                             .job_index = s->job_index, .rank = s->rank});
        free(s);
    }
}

static void killed(k8s_node_t *n, bool ok, const char *why)
{
    if (ok || n->ended)
        return;
    /* The agent cannot be asked: the pod goes, and its end with it. */
    jg_log("warning", "kubernetes: %s; deleting pod %s", why, n->pod);
    k8s_delete_pod(n, (n->g->b->settings.stop_grace_ms + 999) / 1000);
}

int k8s_stop(jg_backend_t *base, int64_t group_id, int job_index, int rank, int grace_ms,
             jg_error_t *err)
{
    (void)err;
    k8s_backend_t *b = base->impl;
    k8s_group_t *g = k8s_group_find(b, group_id, false);
    if (!g) {
        k8s_emit(b, &(jg_backend_event_t){.type = JG_BACKEND_STOPPED, .group_id = group_id,
                                          .job_index = job_index, .rank = rank});
        return 0;
    }
    k8s_stop_t *s = jg_xcalloc(1, sizeof *s);
    s->job_index = job_index;
    s->rank = rank;
    s->next = g->stops;
    g->stops = s;
    char query[64];
    snprintf(query, sizeof query, "grace_ms=%d", grace_ms < 0 ? 0 : grace_ms);
    for (size_t i = 0; i < g->n_nodes; i++) {
        k8s_node_t *n = g->nodes[i];
        if (!targeted(n, job_index, rank) || n->ended)
            continue;
        n->stop_requested = true;
        if (n->started && !n->deleting) {
            k8s_agent_post(n, "kill", query, NULL, killed);
            continue;
        }
        /* Not running yet: no pod to wait for. */
        bool had_pod = n->create_sent || jg_k8s_watch_get(b->pod_watch, b->namespace, n->pod);
        n->want_pod = false;
        if (n->create_timer) {
            jg_loop_cancel_timer(b->loop, n->create_timer);
            n->create_timer = 0;
        }
        if (had_pod && !n->deleting)
            k8s_delete_pod(n, 0);
        if (!had_pod)
            k8s_node_end(n, &(jg_backend_event_t){.type = JG_BACKEND_NODE_EXITED,
                                                  .exit_code = 143, .signal = 15,
                                                  .in_setup = true,
                                                  .reason = "stopped before its pod existed"});
    }
    k8s_stops_check(g);
    return 0;
}

/* ---- cleanup */

int k8s_cleanup(jg_backend_t *base, int64_t group_id, jg_error_t *err)
{
    (void)err;
    k8s_backend_t *b = base->impl;
    k8s_group_t *g = k8s_group_find(b, group_id, true);
    if (g->cleaning)
        return 0;
    g->cleaning = true;
    g->cleaned = false;
    g->cleanup_deleted = false;
    g->clean_problem[0] = '\0';
    for (size_t i = 0; i < g->n_nodes; i++) {
        k8s_node_t *n = g->nodes[i];
        k8s_agent_stop(n);
        k8s_log_stop(n);
        n->want_pod = false;
        n->deleting = true;
        /* Killed without being reported (backend.h). */
        n->ended = true;
        n->exit_pending = false;
        if (n->settle_timer) {
            jg_loop_cancel_timer(b->loop, n->settle_timer);
            n->settle_timer = 0;
        }
        if (n->create_timer) {
            jg_loop_cancel_timer(b->loop, n->create_timer);
            n->create_timer = 0;
        }
    }
    delete_group_objects(b, g, group_id, true);
    return 0;
}

/* ---- sweep */

typedef struct {
    k8s_backend_t *b;
} sweep_ctx_t;

static bool is_live(k8s_backend_t *b, int64_t id)
{
    for (size_t i = 0; i < b->n_sweep_live; i++)
        if (b->sweep_live[i] == id)
            return true;
    return false;
}

static void sweep_listed(void *ctx, const jg_k8s_response_t *resp)
{
    sweep_ctx_t *sc = ctx;
    k8s_backend_t *b = sc->b;
    k8s_ctx_free(sc);
    if (resp->status != 200) {
        char why[512];
        jg_k8s_response_describe(resp, "sweep: listing ConfigMaps", why, sizeof why);
        jg_log("warning", "kubernetes: %s", why);
        return;
    }
    size_t i;
    json_t *cm;
    json_array_foreach(json_object_get(resp->body, "items"), i, cm) {
        const char *gid = json_string_value(json_object_get(
            json_object_get(json_object_get(cm, "metadata"), "labels"), "jgsched.io/group-id"));
        long long id = gid ? strtoll(gid, NULL, 10) : 0;
        if (id <= 0 || is_live(b, id))
            continue;
        k8s_group_t *g = k8s_group_find(b, id, false);
        if (g && (g->spec || g->n_nodes || g->cleaning))
            continue;   /* known to this daemon since */
        jg_log("info", "kubernetes: sweep: deleting the objects of group %lld", id);
        delete_group_objects(b, NULL, id, false);
    }
}

void k8s_sweep_now(k8s_backend_t *b)
{
    b->sweep_due = false;
    /* Pods of groups not listed (their ConfigMap may be gone already). */
    for (size_t i = 0; i < b->n_groups; i++) {
        k8s_group_t *g = b->groups[i];
        if (g->n_live && !g->spec && !g->n_nodes && !g->cleaning && !is_live(b, g->id)) {
            jg_log("info", "kubernetes: sweep: deleting the pods of group %lld",
                   (long long)g->id);
            delete_group_objects(b, NULL, g->id, false);
        }
    }
    sweep_ctx_t *sc = k8s_ctx_new(b, sizeof *sc, NULL);
    sc->b = b;
    char *path = jg_xasprintf("/api/v1/namespaces/%s/configmaps", b->namespace);
    char *esc = curl_easy_escape(NULL, b->selector, 0);
    char *q = jg_xasprintf("labelSelector=%s", esc ? esc : "");
    jg_k8s_request_opts_t o = {.method = "GET", .path = path, .query = q,
                               .on_done = sweep_listed, .ctx = sc};
    jg_error_t err;
    if (!jg_k8s_request(b->client, &o, &err)) {
        k8s_ctx_free(sc);
        jg_log("warning", "kubernetes: sweep: %s", err.text);
    }
    curl_free(esc);
    free(q);
    free(path);
}

int k8s_sweep(jg_backend_t *base, const int64_t *live, size_t n, jg_error_t *err)
{
    (void)err;
    k8s_backend_t *b = base->impl;
    free(b->sweep_live);
    b->sweep_live = jg_xcalloc(n ? n : 1, sizeof *live);
    if (n)
        memcpy(b->sweep_live, live, n * sizeof *live);
    b->n_sweep_live = n;
    b->sweep_due = true;
    if (b->pods_synced)
        k8s_sweep_now(b);
    return 0;
}

/* ---- reattach */

/* "pod=<name> uid=<uid> job=<job>": the job's name. */
static bool handle_job(const char *handle, char *job, size_t len)
{
    const char *p = handle ? strstr(handle, "job=") : NULL;
    if (!p)
        return false;
    p += 4;
    size_t n = strcspn(p, " ");
    if (!n || n >= len)
        return false;
    memcpy(job, p, n);
    job[n] = '\0';
    return true;
}

int k8s_reattach(jg_backend_t *base, int64_t group_id, const jg_node_handle_t *nodes, size_t n,
                 jg_error_t *err)
{
    k8s_backend_t *b = base->impl;
    k8s_group_t *g = k8s_group_find(b, group_id, true);
    for (size_t i = 0; i < n; i++) {
        char job[JG_K8S_DNS_LABEL_MAX + 1];
        if (!handle_job(nodes[i].handle, job, sizeof job))
            return jg_errprintf(err, "group %lld: node handle '%s' is not a kubernetes pod's",
                                (long long)group_id, nodes[i].handle ? nodes[i].handle : "");
    }
    for (size_t i = 0; i < n; i++) {
        char job[JG_K8S_DNS_LABEL_MAX + 1];
        handle_job(nodes[i].handle, job, sizeof job);
        k8s_node_t *node = k8s_node_find(g, job, nodes[i].rank);
        if (!node)
            node = k8s_node_add(g, nodes[i].job_index, job, nodes[i].rank);
        node->attempt = nodes[i].attempt;
        node->started = true;       /* NODE_STARTED is not told again */
        node->log_bytes = nodes[i].log_bytes;
        node->log_bytes_attempt = nodes[i].log_bytes_attempt;
        node->log_attempt = nodes[i].attempt;
        node->reattaching = true;
    }
    k8s_group_fetch_owner(g);
    if (b->pods_synced)
        for (size_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->reattaching)
                k8s_node_resolve(g->nodes[i]);
    return 0;
}
