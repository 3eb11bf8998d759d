/* monitor.c - the one pod watch of the backend (k8s_int.h).
 *
 * Every pod this daemon made carries app.kubernetes.io/managed-by=jgsched and
 * jgsched.io/instance=<id>; one list+watch on that selector (watch.c: resumed
 * from its resourceVersion, relisted after 410) sees them all.  Each change
 * is matched to its node by the labels group-id / job / rank / attempt and
 * turned into node events by what podstate.c reads from it:
 *
 *   waiting with a reason (Unschedulable, an image pull)  -> NODE_PENDING
 *   the main container runs                               -> NODE_STARTED,
 *        then the agent's /state long-poll (agentctl.c) and the log (logs.c)
 *   the main container terminated (the agent itself ended) -> NODE_EXITED
 *   evicted, preempted, node gone, deleted by someone else -> NODE_LOST
 *   an init container failed, an image that cannot be      -> LAUNCH_FAILED
 *
 * A pod the backend deleted itself (stop, cleanup, replacement) is never
 * lost.  A node's end is reported once its output has settled (its log
 * stream quiet or finished), so `jgsched logs -f` gets everything first.
 */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETTLE_QUIET_MS 200
#define SETTLE_MAX_MS 3000

/* ---- ends */

static void emit_end(k8s_node_t *n)
{
    n->exit_pending = false;
    if (n->settle_timer) {
        jg_loop_cancel_timer(n->g->b->loop, n->settle_timer);
        n->settle_timer = 0;
    }
    jg_backend_event_t ev = n->pending_end;
    ev.reason = n->pending_reason[0] ? n->pending_reason : NULL;
    k8s_emit(n->g->b, &ev);
    k8s_stops_check(n->g);
}

static void settle(jg_loop_t *loop, void *arg)
{
    k8s_node_t *n = arg;
    n->settle_timer = 0;
    int64_t now = jg_now_mono_ms();
    /* Quiet for a moment; and when the container itself ended, its log
     * stream finished (everything it wrote was read). */
    bool quiet = now - n->last_log_ms >= SETTLE_QUIET_MS &&
                 (!n->end_waits_log || n->log_finished || (!n->log && !n->log_timer));
    if (!quiet && now < n->settle_deadline_ms) {
        n->settle_timer = jg_loop_add_timer(loop, SETTLE_QUIET_MS, settle, n);
        return;
    }
    emit_end(n);
}

void k8s_node_log_settled(k8s_node_t *n)
{
    if (n->exit_pending && n->settle_timer) {
        jg_loop_cancel_timer(n->g->b->loop, n->settle_timer);
        n->settle_timer = jg_loop_add_timer(n->g->b->loop, 0, settle, n);
    }
}

void k8s_node_end(k8s_node_t *n, const jg_backend_event_t *ev)
{
    if (n->ended)
        return;
    n->ended = true;
    if (ev->type != JG_BACKEND_NODE_EXITED)
        n->end_waits_log = false;
    n->pending_end = *ev;
    n->pending_end.group_id = n->g->id;
    n->pending_end.job_index = n->job_index;
    n->pending_end.rank = n->rank;
    n->pending_end.attempt = n->attempt;
    snprintf(n->pending_reason, sizeof n->pending_reason, "%s", ev->reason ? ev->reason : "");
    n->pending_end.reason = NULL;
    k8s_agent_stop(n);
    if (ev->type == JG_BACKEND_NODE_LOST || (!n->log && !n->log_timer)) {
        emit_end(n);
        return;
    }
    n->exit_pending = true;
    n->settle_deadline_ms = jg_now_mono_ms() + SETTLE_MAX_MS;
    n->settle_timer = jg_loop_add_timer(n->g->b->loop, SETTLE_QUIET_MS, settle, n);
}

static void lost(k8s_node_t *n, const char *reason)
{
    k8s_node_end(n, &(jg_backend_event_t){.type = JG_BACKEND_NODE_LOST, .reason = reason});
}

/* The pod is gone (the watch said DELETED, or it is missing after a list). */
void k8s_node_gone(k8s_node_t *n, const char *reason)
{
    n->started = false;
    n->ip[0] = '\0';
    k8s_agent_stop(n);
    k8s_log_stop(n);
    n->log_finished = true;
    if (n->exit_pending)
        emit_end(n);
    if (!n->ended && !n->want_pod) {
        if (n->deleting || n->stop_requested)
            k8s_node_end(n, &(jg_backend_event_t){.type = JG_BACKEND_NODE_EXITED,
                                                  .exit_code = 143, .signal = 15,
                                                  .in_setup = n->in_setup && !n->setup_done,
                                                  .reason = "its pod was deleted by a stop"});
        else
            lost(n, reason);
    }
    n->deleting = false;
    if (n->want_pod)
        k8s_create_pod(n);
}

/* ---- one pod */

void k8s_node_observe(k8s_node_t *n, json_t *pod)
{
    k8s_backend_t *b = n->g->b;
    k8s_pod_state_t st;
    k8s_pod_state(pod, &st);
    const char *uid = json_string_value(
        json_object_get(json_object_get(pod, "metadata"), "uid"));
    if (uid)
        snprintf(n->uid, sizeof n->uid, "%s", uid);
    if (st.ip[0])
        snprintf(n->ip, sizeof n->ip, "%s", st.ip);

    if (n->ended)
        return;
    /* Someone else deletes our pod: the node is lost now, before its agent's
     * TERM could be taken for an exit code. */
    if (st.deleting && !n->deleting && st.phase != K8S_POD_LOST) {
        lost(n, "its pod was deleted by someone else");
        return;
    }
    switch (st.phase) {
    case K8S_POD_WAITING:
        if (st.reason[0] && strcmp(st.reason, n->last_pending) != 0 && !n->started) {
            snprintf(n->last_pending, sizeof n->last_pending, "%s", st.reason);
            k8s_emit(b, &(jg_backend_event_t){.type = JG_BACKEND_NODE_PENDING,
                                              .group_id = n->g->id, .job_index = n->job_index,
                                              .rank = n->rank, .attempt = n->attempt,
                                              .reason = st.reason});
        }
        break;
    case K8S_POD_RUNNING:
        if (!n->started && st.ip[0]) {
            n->started = true;
            n->log_attempt = n->attempt;
            char handle[256];
            snprintf(handle, sizeof handle, "pod=%s uid=%s job=%s", n->pod, n->uid, n->job);
            k8s_emit(b, &(jg_backend_event_t){.type = JG_BACKEND_NODE_STARTED,
                                              .group_id = n->g->id, .job_index = n->job_index,
                                              .rank = n->rank, .attempt = n->attempt,
                                              .handle = handle, .address = n->ip});
        }
        if (n->started) {
            if (!n->poll && !n->poll_timer)
                k8s_agent_poll_start(n);
            if (!n->log && !n->log_timer && !n->log_finished)
                k8s_log_start(n);
        }
        break;
    case K8S_POD_EXITED: {
        if (!n->log && !n->log_timer && !n->log_finished && n->started)
            k8s_log_start(n);   /* the rest of its output (reattach) */
        n->end_waits_log = true;
        const char *why = st.reason[0] ? st.reason : NULL;
        k8s_node_end(n, &(jg_backend_event_t){.type = JG_BACKEND_NODE_EXITED,
                                              .exit_code = st.exit_code, .signal = st.signal,
                                              .in_setup = n->in_setup && !n->setup_done,
                                              .reason = why});
        break;
    }
    case K8S_POD_LOST:
        lost(n, st.reason);
        break;
    case K8S_POD_FAILED:
        if (n->started)
            lost(n, st.reason);
        else
            k8s_launch_failed(n, st.reason);
        break;
    }
}

void k8s_node_resolve(k8s_node_t *n)
{
    k8s_backend_t *b = n->g->b;
    n->reattaching = false;
    json_t *pod = jg_k8s_watch_get(b->pod_watch, b->namespace, n->pod);
    int64_t gid;
    const char *job;
    int rank, attempt;
    if (!pod || !k8s_pod_labels(pod, &gid, &job, &rank, &attempt)) {
        k8s_node_gone(n, "its pod is gone (found missing after a daemon restart)");
        return;
    }
    n->pod_attempt = attempt;
    /* The pod's log holds every attempt it ran: this attempt's alone when
     * the pod was made for it, else (restarted in place) the node's whole. */
    n->log_skip = attempt == n->attempt ? n->log_bytes_attempt : n->log_bytes;
    k8s_node_observe(n, pod);
}

/* ---- the group's pods, for cleanup and sweep */

static void live_add(k8s_group_t *g, const char *name)
{
    for (size_t i = 0; i < g->n_live; i++)
        if (strcmp(g->live_pods[i], name) == 0)
            return;
    g->live_pods = jg_xrealloc(g->live_pods, (g->n_live + 1) * sizeof *g->live_pods);
    g->live_pods[g->n_live++] = jg_xstrdup(name);
}

static void live_remove(k8s_group_t *g, const char *name)
{
    for (size_t i = 0; i < g->n_live; i++) {
        if (strcmp(g->live_pods[i], name) == 0) {
            free(g->live_pods[i]);
            g->live_pods[i] = g->live_pods[--g->n_live];
            return;
        }
    }
}

void k8s_group_check_done(k8s_group_t *g)
{
    k8s_backend_t *b = g->b;
    if (!g->cleaning || g->cleaned || !g->cleanup_deleted || g->n_live || !b->pods_synced)
        return;
    g->cleaned = true;
    k8s_emit(b, &(jg_backend_event_t){.type = JG_BACKEND_CLEANED, .group_id = g->id,
                                      .job_index = -1, .rank = -1,
                                      .reason = g->clean_problem[0] ? g->clean_problem : NULL});
    k8s_group_maybe_free(g);
}

/* ---- the watch */

static void on_pod(void *ctx, jg_k8s_event_type_t type, json_t *obj)
{
    k8s_backend_t *b = ctx;
    int64_t gid;
    const char *job;
    int rank, attempt;
    const char *name = json_string_value(
        json_object_get(json_object_get(obj, "metadata"), "name"));
    if (!name || !k8s_pod_labels(obj, &gid, &job, &rank, &attempt))
        return;
    k8s_group_t *g = k8s_group_find(b, gid, true);
    if (type == JG_K8S_DELETED)
        live_remove(g, name);
    else
        live_add(g, name);
    k8s_node_t *n = k8s_node_find(g, job, rank);
    /* The pod of an older attempt being replaced says nothing of the node,
     * except that it is gone (the new one can be made). */
    if (n && !n->reattaching && (attempt > n->attempt || (n->want_pod && attempt < n->attempt))) {
        if (type == JG_K8S_DELETED && n->want_pod)
            k8s_create_pod(n);
        n = NULL;
    }
    if (n && !n->reattaching) {
        if (type == JG_K8S_DELETED) {
            char why[300];
            k8s_pod_state_t st;
            k8s_pod_state(obj, &st);
            snprintf(why, sizeof why, "its pod was deleted%s%s",
                     st.phase == K8S_POD_LOST ? ": " : " by someone else",
                     st.phase == K8S_POD_LOST ? st.reason : "");
            k8s_node_gone(n, why);
        } else {
            k8s_node_observe(n, obj);
        }
    }
    if (type == JG_K8S_DELETED) {
        if (g->n_live == 0 && g->n_nodes == 0 && !g->cleaning && !g->spec) {
            /* A ghost (pods of a group nobody asked about) that is now empty. */
            g->cleaned = true;
            k8s_group_maybe_free(g);
            return;
        }
        k8s_group_check_done(g);    /* may free g */
    }
}

static void on_pods_synced(void *ctx)
{
    k8s_backend_t *b = ctx;
    bool first = !b->pods_synced;
    b->pods_synced = true;
    /* After a relist, a pod the list lacks may have gone unseen: the
     * watch reported it DELETED.  Reattached nodes are resolved now. */
    for (size_t i = 0; i < b->n_groups; i++) {
        k8s_group_t *g = b->groups[i];
        for (size_t j = 0; j < g->n_nodes; j++)
            if (g->nodes[j]->reattaching)
                k8s_node_resolve(g->nodes[j]);
    }
    if (first && b->sweep_due)
        k8s_sweep_now(b);
    for (size_t i = b->n_groups; i > 0; i--)
        k8s_group_check_done(b->groups[i - 1]);
}

int k8s_monitor_start(k8s_backend_t *b, jg_error_t *err)
{
    char *path = k8s_pods_path(b);
    jg_k8s_watch_opts_t o = {.path = path, .label_selector = b->selector, .on_event = on_pod,
                             .on_synced = on_pods_synced, .ctx = b};
    b->pod_watch = jg_k8s_watch_start(b->client, &o, err);
    free(path);
    return b->pod_watch ? 0 : -1;
}
