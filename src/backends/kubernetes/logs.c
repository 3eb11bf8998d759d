/* logs.c - each pod's main-container log as LOG events (k8s_int.h).
 *
 * One follow=true stream per started pod (pods/log, container main): the
 * agent's children write straight to the container's stdout/stderr, so this
 * is setup's and run's output as written.  Bytes are counted per pod: a
 * stream that is cut is opened again and skips what was already read, and
 * after a daemon restart the first log_skip bytes (what the store already
 * has) are skipped too.  Each piece is tagged with the attempt whose output
 * it is: the pod's attempt, then from a restart in place on (/restart) the
 * new one.  The stream ends when the container does.
 */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    k8s_backend_t *b;
    int64_t group_id;
    char job[JG_K8S_DNS_LABEL_MAX + 1];
    int rank;
    char pod_uid[64];
} log_key_t;

static k8s_node_t *node_for(const log_key_t *k)
{
    k8s_group_t *g = k8s_group_find(k->b, k->group_id, false);
    k8s_node_t *n = g ? k8s_node_find(g, k->job, k->rank) : NULL;
    return n && strcmp(n->uid, k->pod_uid) == 0 ? n : NULL;
}

static void on_log_data(void *ctx, const char *data, size_t len)
{
    k8s_node_t *n = node_for(ctx);
    if (!n)
        return;
    int64_t start = n->log_pos;
    n->log_pos += (int64_t)len;
    int64_t from = n->log_seen > n->log_skip ? n->log_seen : n->log_skip;
    if (n->log_pos <= from)
        return;
    size_t off = start >= from ? 0 : (size_t)(from - start);
    n->log_seen = n->log_pos;
    n->last_log_ms = jg_now_mono_ms();
    k8s_emit(n->g->b, &(jg_backend_event_t){.type = JG_BACKEND_LOG, .group_id = n->g->id,
                                            .job_index = n->job_index, .rank = n->rank,
                                            .attempt = n->log_attempt ? n->log_attempt
                                                                      : n->attempt,
                                            .data = data + off, .len = len - off});
}

static void reopen(jg_loop_t *loop, void *arg)
{
    (void)loop;
    k8s_node_t *n = arg;
    n->log_timer = 0;
    k8s_log_start(n);
}

static void on_log_done(void *ctx, const jg_k8s_response_t *resp)
{
    log_key_t *k = ctx;
    k8s_node_t *n = node_for(k);
    if (n && n->log_ctx == k) {
        n->log = NULL;
        n->log_ctx = NULL;
    }
    k8s_ctx_free(k);
    if (!n)
        return;
    json_t *pod = jg_k8s_watch_get(n->g->b->pod_watch, n->g->b->namespace, n->pod);
    k8s_pod_state_t st = {.phase = K8S_POD_LOST};
    if (pod)
        k8s_pod_state(pod, &st);
    /* A stream that ended cleanly with the container ended is complete. */
    if (resp->status == 200 && !resp->transport_error && st.phase != K8S_POD_RUNNING) {
        n->log_finished = true;
        k8s_node_log_settled(n);
        return;
    }
    if (!pod || st.phase == K8S_POD_LOST) {
        n->log_finished = true;
        k8s_node_log_settled(n);
        return;
    }
    /* Cut (or the container still starting): read again, skipping what was read. */
    n->log_timer = jg_loop_add_timer(n->g->b->loop, 500, reopen, n);
}

void k8s_log_start(k8s_node_t *n)
{
    if (n->log || n->log_finished || !n->uid[0])
        return;
    k8s_backend_t *b = n->g->b;
    log_key_t *k = k8s_ctx_new(b, sizeof *k, NULL);
    *k = (log_key_t){.b = b, .group_id = n->g->id, .rank = n->rank};
    snprintf(k->job, sizeof k->job, "%s", n->job);
    snprintf(k->pod_uid, sizeof k->pod_uid, "%s", n->uid);
    char *path = jg_xasprintf("/api/v1/namespaces/%s/pods/%s/log", b->namespace, n->pod);
    jg_k8s_request_opts_t o = {.method = "GET", .path = path,
                               .query = "container=main&follow=true", .on_data = on_log_data,
                               .on_done = on_log_done, .ctx = k};
    jg_error_t err;
    n->log_pos = 0;
    if (!n->log_attempt)
        n->log_attempt = n->attempt;
    n->log = jg_k8s_request(b->client, &o, &err);
    n->log_ctx = n->log ? k : NULL;
    if (!n->log) {
        k8s_ctx_free(k);
        n->log_timer = jg_loop_add_timer(b->loop, 1000, reopen, n);
    }
    free(path);
}

void k8s_log_stop(k8s_node_t *n)
{
    k8s_request_stop(n->g->b, &n->log, &n->log_ctx, &n->log_timer);
}
