/* agentctl.c - the agents in the pods, through the pods/proxy subresource
 * (k8s_int.h; the agent's API is in src/agent/agent.c and docs/kubernetes.md).
 *
 * Per started pod one long-poll of GET /state: "waiting" is SETUP_DONE,
 * "exited" the end of setup or run (NODE_EXITED with the agent's code: the
 * container stays, so the node can be restarted in place).  The barrier:
 * once sched releases the group, every started pod gets the group's hosts
 * lines (POST /hosts) - so a replacement pod's new IP reaches its peers -
 * and each pod waiting at the barrier its job's IPs (POST /env
 * SKYPILOT_NODE_IPS), then POST /release: all pods at once, each as soon as
 * its own two answers are in.  Every request carries the group's token in
 * X-Jgsched-Token (the API server strips Authorization before proxying).
 */
#include "k8s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_WAIT_S 25
#define POLL_TIMEOUT_MS ((POLL_WAIT_S + 15) * 1000)
#define FIRST_POLL_TIMEOUT_MS 3000
#define POST_TIMEOUT_MS 15000
#define POST_TRIES 8
/* What an agent answers is a few hundred bytes; the job shares its pod. */
#define AGENT_MAX_BODY (64u << 10)

static char *proxy_path(k8s_node_t *n, const char *endpoint)
{
    return jg_xasprintf("/api/v1/namespaces/%s/pods/%s:%d/proxy/%s", n->g->b->namespace, n->pod,
                        JG_K8S_AGENT_PORT, endpoint);
}

/* ---- the /state long-poll */

static void poll_send(k8s_node_t *n);

static void poll_again(jg_loop_t *loop, void *arg)
{
    (void)loop;
    k8s_node_t *n = arg;
    n->poll_timer = 0;
    poll_send(n);
}

static void poll_later(k8s_node_t *n, int ms)
{
    if (!n->poll_timer)
        n->poll_timer = jg_loop_add_timer(n->g->b->loop, ms, poll_again, n);
}

static void state_seen(k8s_node_t *n, json_t *st)
{
    json_int_t serial = json_integer_value(json_object_get(st, "serial"));
    const char *phase = json_string_value(json_object_get(st, "phase"));
    int attempt = (int)json_integer_value(json_object_get(st, "attempt"));
    if (!phase)
        return;
    n->serial = (uint64_t)serial;
    n->agent_attempt = attempt;
    snprintf(n->agent_phase, sizeof n->agent_phase, "%s", phase);
    if (attempt != n->attempt || n->ended)
        return;     /* a /restart not applied yet, or an end already told */
    if (!strcmp(phase, "setup")) {
        n->in_setup = true;
    } else if (!strcmp(phase, "waiting")) {
        n->in_setup = false;
        if (!n->setup_done) {
            n->setup_done = true;
            k8s_emit(n->g->b, &(jg_backend_event_t){.type = JG_BACKEND_SETUP_DONE,
                                                    .group_id = n->g->id,
                                                    .job_index = n->job_index, .rank = n->rank,
                                                    .attempt = n->attempt});
        }
    } else if (!strcmp(phase, "running")) {
        n->in_setup = false;
        n->setup_done = n->released = true;
    } else if (!strcmp(phase, "exited")) {
        /* The agent shares its container with the user's job: what it says
         * is held to the ranges an exit can have. */
        json_int_t code = json_integer_value(json_object_get(st, "exit_code"));
        json_int_t sig = json_integer_value(json_object_get(st, "signal"));
        bool in_setup = json_is_true(json_object_get(st, "in_setup"));
        n->end_waits_log = false;
        k8s_node_end(n, &(jg_backend_event_t){
                            .type = JG_BACKEND_NODE_EXITED, .in_setup = in_setup,
                            .exit_code = code >= 0 && code <= 255 ? (int)code : 255,
                            .signal = sig > 0 && sig < 65 ? (int)sig : 0});
    }
}

static void poll_done(void *ctx, const jg_k8s_response_t *resp)
{
    k8s_node_key_t *k = ctx;
    k8s_node_t *n = k8s_node_by_key(k);
    if (n && n->poll_ctx == k) {
        n->poll = NULL;
        n->poll_ctx = NULL;
    }
    k8s_ctx_free(k);
    if (!n)
        return;
    if (resp->status == 200 && json_is_object(resp->body)) {
        uint64_t before = n->serial;
        n->poll_failures = 0;
        state_seen(n, resp->body);
        /* The agent answers early only with a new serial; anything else
         * (a long-poll that ran out, or whatever answers in its place) is
         * asked again after a pause, never in a tight loop. */
        if (!n->ended && n->started) {
            if (before && n->serial <= before)
                poll_later(n, 1000);
            else
                poll_send(n);
        }
        return;
    }
    /* Not reachable yet (the agent is starting), or the pod is going: the
     * watch decides about the pod; keep asking while it runs. */
    if (!n->ended && n->started) {
        int delay = 100 << (n->poll_failures < 5 ? n->poll_failures : 5);
        n->poll_failures++;
        poll_later(n, delay);
    }
}

static void poll_send(k8s_node_t *n)
{
    if (n->poll || n->ended || !n->started)
        return;
    if (!n->g->token[0]) {
        poll_later(n, 200);     /* reattached: the token is being read back */
        return;
    }
    char *path = proxy_path(n, "state");
    char query[96];
    if (n->serial)
        snprintf(query, sizeof query, "after=%llu&wait=%d", (unsigned long long)n->serial,
                 POLL_WAIT_S);
    else
        query[0] = '\0';
    char *header = jg_xasprintf("X-Jgsched-Token: %s", n->g->token);
    k8s_node_key_t *k = k8s_ctx_new(n->g->b, sizeof *k, NULL);
    *k = k8s_node_key(n);
    /* The first ask answers at once: a short limit, since a pod whose
     * network is not up yet may leave the proxy's connection hanging. */
    jg_k8s_request_opts_t o = {.method = "GET", .path = path, .query = query, .header = header,
                               .timeout_ms = n->serial ? POLL_TIMEOUT_MS : FIRST_POLL_TIMEOUT_MS,
                               .max_attempts = 1, .max_body = AGENT_MAX_BODY,
                               .on_done = poll_done, .ctx = k};
    jg_error_t err;
    n->poll = jg_k8s_request(n->g->b->client, &o, &err);
    n->poll_ctx = n->poll ? k : NULL;
    if (!n->poll) {
        k8s_ctx_free(k);
        poll_later(n, 1000);
    }
    free(path);
    free(header);
}

void k8s_agent_poll_start(k8s_node_t *n)
{
    poll_send(n);
}

void k8s_agent_stop(k8s_node_t *n)
{
    k8s_request_stop(n->g->b, &n->poll, &n->poll_ctx, &n->poll_timer);
}

/* ---- POSTs */

typedef struct {
    k8s_node_key_t key;
    char *endpoint, *query, *body;
    void (*done)(k8s_node_t *n, bool ok, const char *why);
    int tries;
    uint64_t timer;
} post_t;

static void post_send(post_t *p);

static void post_dtor(void *ctx)
{
    post_t *p = ctx;
    if (p->timer)
        jg_loop_cancel_timer(p->key.b->loop, p->timer);
    free(p->endpoint);
    free(p->query);
    free(p->body);
}

static void post_free(post_t *p)
{
    k8s_ctx_free(p);
}

static void post_retry(jg_loop_t *loop, void *arg)
{
    (void)loop;
    post_t *p = arg;
    p->timer = 0;
    post_send(p);
}

static void post_done(void *ctx, const jg_k8s_response_t *resp)
{
    post_t *p = ctx;
    k8s_node_t *n = k8s_node_by_key(&p->key);
    if (!n) {
        post_free(p);
        return;
    }
    bool ok = resp->status >= 200 && resp->status < 300;
    /* 503: the proxy could not reach the agent yet; 429 and transport
     * errors: the API server.  The agent's own 4xx are final.  Every POST
     * to the agent is idempotent, so a retry is safe. */
    bool again = resp->status == 0 || resp->status == 429 || resp->status >= 500;
    if (!ok && again && p->tries < POST_TRIES) {
        int delay = jg_k8s_backoff_ms(p->tries, 200, 5000, -1);
        p->timer = jg_loop_add_timer(n->g->b->loop, delay, post_retry, p);
        return;
    }
    char why[512] = "";
    if (!ok) {
        char what[96];
        snprintf(what, sizeof what, "the agent of pod %s: POST /%s", n->pod, p->endpoint);
        jg_k8s_response_describe(resp, what, why, sizeof why);
    }
    if (p->done)
        p->done(n, ok, why);
    post_free(p);
}

static void post_send(post_t *p)
{
    k8s_node_t *n = k8s_node_by_key(&p->key);
    if (!n) {
        post_free(p);
        return;
    }
    p->tries++;
    char *path = proxy_path(n, p->endpoint);
    char *header = jg_xasprintf("X-Jgsched-Token: %s", n->g->token);
    jg_k8s_request_opts_t o = {.method = "POST", .path = path, .query = p->query,
                               .raw_body = p->body ? p->body : "", .header = header,
                               .timeout_ms = POST_TIMEOUT_MS, .max_attempts = 1,
                               .max_body = AGENT_MAX_BODY,
                               .on_done = post_done, .ctx = p};
    jg_error_t err;
    if (!jg_k8s_request(n->g->b->client, &o, &err)) {
        if (p->done)
            p->done(n, false, err.text);
        post_free(p);
    }
    free(path);
    free(header);
}

void k8s_agent_post(k8s_node_t *n, const char *endpoint, const char *query, const char *body,
                    void (*done)(k8s_node_t *n, bool ok, const char *why))
{
    post_t *p = k8s_ctx_new(n->g->b, sizeof *p, post_dtor);
    p->key = k8s_node_key(n);
    p->endpoint = jg_xstrdup(endpoint);
    p->query = jg_xstrdup(query);
    p->body = jg_xstrdup(body);
    p->done = done;
    post_send(p);
}

/* ---- the barrier */

/* A step of the barrier failed: the pod cannot be trusted to run the job
 * with working names; it is replaced by nothing - the node is lost. */
static void barrier_failed(k8s_node_t *n, const char *why)
{
    char reason[600];
    snprintf(reason, sizeof reason, "the barrier could not reach its agent: %s", why);
    if (!n->ended) {
        k8s_node_end(n, &(jg_backend_event_t){.type = JG_BACKEND_NODE_LOST, .reason = reason});
        k8s_delete_pod(n, 0);
    }
}

static void released(k8s_node_t *n, bool ok, const char *why)
{
    if (!ok)
        barrier_failed(n, why);
}

typedef struct {
    char *hosts;
    json_t *job_ips;    /* job -> [ip by rank] */
} barrier_t;

/* Each pod waiting at the barrier needs both its /hosts and its /env before
 * /release; the two go at once and the second answer releases it. */
static void step_done(k8s_node_t *n, bool ok, const char *why)
{
    if (!ok) {
        barrier_failed(n, why);
        return;
    }
    if (n->ended || n->released)
        return;
    if (++n->barrier_steps == 2) {
        n->released = true;
        k8s_agent_post(n, "release", NULL, NULL, released);
    }
}

static void hosts_only_done(k8s_node_t *n, bool ok, const char *why)
{
    (void)n;
    if (!ok)
        jg_log("warning", "kubernetes: %s", why);
}

static void build_barrier(k8s_group_t *g, barrier_t *out)
{
    k8s_backend_t *b = g->b;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        abort();
    out->job_ips = json_object();
    const char *group_name = g->name;
    for (size_t i = 0; i < g->n_live; i++) {
        json_t *pod = jg_k8s_watch_get(b->pod_watch, b->namespace, g->live_pods[i]);
        int64_t gid;
        const char *job;
        int rank, attempt;
        if (!pod || !k8s_pod_labels(pod, &gid, &job, &rank, &attempt))
            continue;
        k8s_pod_state_t st;
        k8s_pod_state(pod, &st);
        if (!st.ip[0] || st.deleting)
            continue;
        if (!group_name[0]) {
            const char *ann = json_string_value(json_object_get(
                json_object_get(json_object_get(pod, "metadata"), "annotations"),
                "jgsched.io/group-name"));
            if (ann)
                snprintf(g->name, sizeof g->name, "%s", ann);
        }
        fprintf(f, "%s\t%s-%d.%s %s-%d\n", st.ip, job, rank, g->name, job, rank);
        json_t *ips = json_object_get(out->job_ips, job);
        if (!ips) {
            ips = json_array();
            json_object_set_new(out->job_ips, job, ips);
        }
        while (json_array_size(ips) <= (size_t)rank)
            json_array_append_new(ips, json_string(""));
        json_array_set_new(ips, (size_t)rank, json_string(st.ip));
    }
    if (fclose(f) != 0)
        abort();
    out->hosts = buf;
}

int k8s_release(jg_backend_t *base, int64_t group_id, jg_error_t *err)
{
    k8s_backend_t *b = base->impl;
    k8s_group_t *g = k8s_group_find(b, group_id, false);
    if (!g)
        return jg_errprintf(err, "group %lld has no pods on infra %s", (long long)group_id,
                            base->name);
    barrier_t bar;
    build_barrier(g, &bar);
    for (size_t i = 0; i < g->n_nodes; i++) {
        k8s_node_t *n = g->nodes[i];
        if (!n->started || n->ended || !n->ip[0])
            continue;
        if (!n->setup_done || n->released) {
            /* Running already: only the names (a replaced peer's new IP). */
            k8s_agent_post(n, "hosts", NULL, bar.hosts, hosts_only_done);
            continue;
        }
        n->barrier_steps = 0;
        json_t *ips = json_object_get(bar.job_ips, n->job);
        char *list = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&list, &size);
        if (!f)
            abort();
        size_t k;
        json_t *ip;
        json_array_foreach(ips, k, ip)
            fprintf(f, "%s%s", k ? "\n" : "", json_string_value(ip));
        if (fclose(f) != 0)
            abort();
        k8s_agent_post(n, "hosts", NULL, bar.hosts, step_done);
        k8s_agent_post(n, "env", "name=SKYPILOT_NODE_IPS", list, step_done);
        free(list);
    }
    free(bar.hosts);
    json_decref(bar.job_ips);
    return 0;
}

/* ---- restarts in place */

static void restarted(k8s_node_t *n, bool ok, const char *why)
{
    if (ok) {
        /* Output from now on is the new attempt's; the state is polled anew. */
        n->log_attempt = n->attempt;
        k8s_agent_stop(n);
        poll_send(n);
        return;
    }
    /* The agent cannot restart it: a new pod instead. */
    jg_log("warning", "kubernetes: restart in place failed (%s); replacing pod %s", why, n->pod);
    k8s_agent_stop(n);
    k8s_log_stop(n);
    n->want_pod = true;
    n->create_sent = false;
    k8s_delete_pod(n, 0);
}

void k8s_restart_in_place(k8s_node_t *n)
{
    char query[96];
    snprintf(query, sizeof query, "attempt=%d&grace_ms=%d", n->attempt,
             n->g->b->settings.stop_grace_ms);
    k8s_agent_stop(n);
    n->log_attempt = n->attempt;
    k8s_agent_post(n, "restart", query, NULL, restarted);
}

/* ---- a node whose end is final */

static void finished(k8s_node_t *n, bool ok, const char *why)
{
    if (!ok)    /* the pod keeps idling until the group's cleanup deletes it */
        jg_log("warning", "kubernetes: /finish of pod %s: %s", n->pod, why);
}

/* The policy restarts it not: its agent exits with the node's code, so the
 * pod ends (its terminated state shows the job's real exit code) and frees
 * what it requested on its Kubernetes node while the rest of the group runs.
 * A later restart (a whole-group restart of the policy) finds no agent and
 * gets a new pod. */
void k8s_retire(jg_backend_t *base, int64_t group_id, int job_index, int rank)
{
    k8s_backend_t *b = base->impl;
    k8s_group_t *g = k8s_group_find(b, group_id, false);
    if (!g)
        return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        k8s_node_t *n = g->nodes[i];
        if (n->job_index != job_index || n->rank != rank || !n->ended || !n->started ||
            n->deleting || n->pending_end.type != JG_BACKEND_NODE_EXITED)
            continue;
        char query[32];
        snprintf(query, sizeof query, "code=%d", n->pending_end.exit_code & 0xff);
        k8s_agent_post(n, "finish", query, NULL, finished);
    }
}
