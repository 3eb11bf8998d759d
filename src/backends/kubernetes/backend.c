/* backends/kubernetes/backend.c - the `kubernetes` backend: every node is a pod.
 *
 * docs/kubernetes.md has the design; objects.c builds the objects, client.c
 * and watch.c talk to the API server on the daemon's loop, and
 * src/agent/agent.c runs in every pod.  This backend joins them to the
 * scheduler (include/jgsched/backend.h):
 *
 *   - launch: per group the owner ConfigMap first (its uid is what every
 *     other object's ownerReference names), then the token Secret, the
 *     headless Service and one Pod per node (launch.c);
 *   - ONE pod watch for the whole backend (label selector managed-by +
 *     instance) turns pod states into node events (monitor.c); ONE node
 *     watch keeps capacity current (capacity.c);
 *   - per started pod one long-poll of its agent's /state through the
 *     pods/proxy subresource gives SETUP_DONE and the exit of setup/run; the
 *     barrier sends /hosts, /env and /release (agentctl.c);
 *   - per started pod one log stream (follow) gives LOG events (logs.c);
 *   - stop / cleanup / sweep / reattach in teardown.c.
 *
 * A node's exit comes from its agent while the agent lives (the container
 * stays, so a restart can happen in place: /restart on the same pod), and
 * from the main container's terminated state when the agent itself ended.
 * Nothing here blocks: every API call is asynchronous, and events are queued
 * and delivered from a zero-delay timer, never from inside an operation.
 *
 * The instance id (label jgsched.io/instance) is made once and kept in
 * <state_dir>/kubernetes/instance-id, so a restarted daemon finds its own
 * objects and two daemons sharing a namespace never touch each other's.
 */
#include "k8s_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jgsched/capacity.h"
#include "jgsched/fsutil.h"
#include "jg_config.h"

/* ------------------------------------------------------------ events */

static void deliver(jg_loop_t *loop, void *arg)
{
    (void)loop;
    k8s_backend_t *b = arg;
    b->ev_timer = 0;
    /* Take the queue: the callback may queue more (from another operation),
     * which a new timer delivers. */
    k8s_event_t *e = b->ev_head;
    b->ev_head = b->ev_tail = NULL;
    while (e) {
        k8s_event_t *next = e->next;
        b->on_event(b->event_ctx, &e->ev);
        free(e->reason);
        free(e->handle);
        free(e->address);
        free(e->data);
        free(e);
        e = next;
    }
}

void k8s_emit(k8s_backend_t *b, const jg_backend_event_t *ev)
{
    k8s_event_t *e = jg_xcalloc(1, sizeof *e);
    e->ev = *ev;
    e->reason = jg_xstrdup(ev->reason);
    e->handle = jg_xstrdup(ev->handle);
    e->address = jg_xstrdup(ev->address);
    if (ev->data && ev->len) {
        e->data = jg_xmalloc(ev->len);
        memcpy(e->data, ev->data, ev->len);
    }
    e->ev.reason = e->reason;
    e->ev.handle = e->handle;
    e->ev.address = e->address;
    e->ev.data = e->data;
    if (b->ev_tail)
        b->ev_tail->next = e;
    else
        b->ev_head = e;
    b->ev_tail = e;
    if (!b->ev_timer)
        b->ev_timer = jg_loop_add_timer(b->loop, 0, deliver, b);
}

/* -------------------------------------------------- contexts in flight */

typedef struct k8s_ctx {
    struct k8s_ctx *prev, *next;
    k8s_backend_t *b;
    void (*dtor)(void *ctx);
    max_align_t data[];
} k8s_ctx_t;

void *k8s_ctx_new(k8s_backend_t *b, size_t size, void (*dtor)(void *ctx))
{
    k8s_ctx_t *c = jg_xcalloc(1, sizeof *c + size);
    c->b = b;
    c->dtor = dtor;
    c->next = b->ctxs;
    if (b->ctxs)
        b->ctxs->prev = c;
    b->ctxs = c;
    return c->data;
}

void k8s_ctx_free(void *ctx)
{
    if (!ctx)
        return;
    k8s_ctx_t *c = (k8s_ctx_t *)((char *)ctx - offsetof(k8s_ctx_t, data));
    if (c->prev)
        c->prev->next = c->next;
    else
        c->b->ctxs = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->dtor)
        c->dtor(ctx);
    free(c);
}

/* ------------------------------------------------------ groups, nodes */

k8s_group_t *k8s_group_find(k8s_backend_t *b, int64_t id, bool make)
{
    for (size_t i = 0; i < b->n_groups; i++)
        if (b->groups[i]->id == id)
            return b->groups[i];
    if (!make)
        return NULL;
    k8s_group_t *g = jg_xcalloc(1, sizeof *g);
    g->b = b;
    g->id = id;
    b->groups = jg_xrealloc(b->groups, (b->n_groups + 1) * sizeof *b->groups);
    b->groups[b->n_groups++] = g;
    return g;
}

k8s_node_t *k8s_node_find(k8s_group_t *g, const char *job, int rank)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->rank == rank && strcmp(g->nodes[i]->job, job) == 0)
            return g->nodes[i];
    return NULL;
}

k8s_node_t *k8s_node_add(k8s_group_t *g, int job_index, const char *job, int rank)
{
    k8s_node_t *n = jg_xcalloc(1, sizeof *n);
    n->g = g;
    n->job_index = job_index;
    n->rank = rank;
    snprintf(n->job, sizeof n->job, "%s", job);
    jg_k8s_pod_name(g->id, job, rank, n->pod);
    g->nodes = jg_xrealloc(g->nodes, (g->n_nodes + 1) * sizeof *g->nodes);
    g->nodes[g->n_nodes++] = n;
    return n;
}

k8s_node_key_t k8s_node_key(const k8s_node_t *n)
{
    k8s_node_key_t k = {.b = n->g->b, .group_id = n->g->id, .rank = n->rank,
                        .attempt = n->attempt};
    snprintf(k.job, sizeof k.job, "%s", n->job);
    return k;
}

k8s_node_t *k8s_node_by_key(const k8s_node_key_t *k)
{
    k8s_group_t *g = k8s_group_find(k->b, k->group_id, false);
    k8s_node_t *n = g ? k8s_node_find(g, k->job, k->rank) : NULL;
    return n && n->attempt == k->attempt ? n : NULL;
}

void k8s_request_stop(k8s_backend_t *b, jg_k8s_request_t **req, void **ctx, uint64_t *timer)
{
    if (*req) {
        jg_k8s_cancel(*req);
        k8s_ctx_free(*ctx);
        *req = NULL;
        *ctx = NULL;
    }
    if (*timer) {
        jg_loop_cancel_timer(b->loop, *timer);
        *timer = 0;
    }
}

static void node_free(k8s_node_t *n)
{
    k8s_backend_t *b = n->g->b;
    k8s_agent_stop(n);
    k8s_log_stop(n);
    if (n->settle_timer)
        jg_loop_cancel_timer(b->loop, n->settle_timer);
    if (n->create_timer)
        jg_loop_cancel_timer(b->loop, n->create_timer);
    free(n);
}

static void group_free(k8s_group_t *g)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        node_free(g->nodes[i]);
    free(g->nodes);
    for (size_t i = 0; i < g->n_live; i++)
        free(g->live_pods[i]);
    free(g->live_pods);
    while (g->stops) {
        k8s_stop_t *s = g->stops;
        g->stops = s->next;
        free(s);
    }
    jg_spec_free(g->spec);
    free(g);
}

/* A group that was cleaned and whose pods are gone is forgotten. */
void k8s_group_maybe_free(k8s_group_t *g)
{
    k8s_backend_t *b = g->b;
    if (!g->cleaned || g->n_live || g->pending_deletes)
        return;
    for (size_t i = 0; i < b->n_groups; i++) {
        if (b->groups[i] == g) {
            b->groups[i] = b->groups[--b->n_groups];
            break;
        }
    }
    group_free(g);
}

char *k8s_pods_path(k8s_backend_t *b)
{
    return jg_xasprintf("/api/v1/namespaces/%s/pods", b->namespace);
}

/* ------------------------------------------------------------- ops */

static const char *k8s_notes(jg_backend_t *base)
{
    k8s_backend_t *b = base->impl;
    return b->notes_text;
}

static void k8s_destroy(jg_backend_t *base)
{
    if (!base)
        return;
    k8s_backend_t *b = base->impl;
    jg_k8s_watch_stop(b->pod_watch);
    jg_k8s_watch_stop(b->node_watch);
    for (size_t i = 0; i < b->n_groups; i++)
        group_free(b->groups[i]);
    free(b->groups);
    /* The client: freeing it drops every request without callbacks; then
     * their contexts (and the timers of retries they hold). */
    jg_k8s_client_destroy(b->client);
    while (b->ctxs)
        k8s_ctx_free(b->ctxs->data);
    json_decref(b->node_objs);
    if (b->ev_timer)
        jg_loop_cancel_timer(b->loop, b->ev_timer);
    while (b->ev_head) {
        k8s_event_t *e = b->ev_head;
        b->ev_head = e->next;
        free(e->reason);
        free(e->handle);
        free(e->address);
        free(e->data);
        free(e);
    }
    jg_capacity_clear(&b->capacity);
    free(b->sweep_live);
    free(b->namespace);
    free(b->instance);
    free(b->agent_image);
    free(b->default_image);
    free(b->gpu_resource);
    free(b->gpu_label);
    free(b->context);
    free(b->selector);
    free(base->name);
    free(b);
}

static const jg_backend_ops_t k8s_ops = {
    .kind = "kubernetes",
    .volumes_in_infra = true, /* a named volume is the PVC of that name */
    .fit = k8s_fit,
    .launch = k8s_launch,
    .release = k8s_release,
    .retire = k8s_retire,
    .stop = k8s_stop,
    .reattach = k8s_reattach,
    .cleanup = k8s_cleanup,
    .sweep = k8s_sweep,
    .warning = NULL,
    .capacity = k8s_capacity,
    .notes = k8s_notes,
    .destroy = k8s_destroy,
};

/* ------------------------------------------------------ instance id */

/* The daemon's instance id: read from <state_dir>/kubernetes/instance-id
 * (root's own directory), else made and written there.  Without a state
 * directory (unit tests) a fresh one. */
static char *instance_id(const char *state_dir, jg_error_t *err)
{
    unsigned char raw[6];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) {
        if (fd >= 0)
            close(fd);
        jg_errprintf(err, "/dev/urandom: %s", strerror(errno));
        return NULL;
    }
    close(fd);
    char fresh[32];
    snprintf(fresh, sizeof fresh, "jg%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3],
             raw[4], raw[5]);
    if (!state_dir)
        return jg_xstrdup(fresh);
    char *dir = jg_xasprintf("%s/kubernetes", state_dir);
    char *path = jg_xasprintf("%s/instance-id", dir);
    char *id = NULL;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        jg_errprintf(err, "%s: %s", dir, strerror(errno));
        goto done;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        char buf[64] = {0};
        struct stat st;
        ssize_t got = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1)
                                                                 : -1;
        close(fd);
        buf[got > 0 ? got : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        bool good = got > 0 && strlen(buf) >= 4 && strlen(buf) <= 40;
        for (const char *p = buf; good && *p; p++)
            good = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
        if (good) {
            id = jg_xstrdup(buf);
            goto done;
        }
        jg_errprintf(err, "%s: not an instance id (delete it to make a new one)", path);
        goto done;
    }
    if (errno != ENOENT) {
        jg_errprintf(err, "%s: %s", path, strerror(errno));
        goto done;
    }
    char *text = jg_xasprintf("%s\n", fresh);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    if (fd >= 0 && close(fd) < 0)
        ok = false;
    free(text);
    if (!ok)
        jg_errprintf(err, "%s: %s", path, strerror(errno));
    else
        id = jg_xstrdup(fresh);
done:
    free(dir);
    free(path);
    return id;
}

/* ---------------------------------------------------------- factory */

static jg_k8s_client_t *client_from(jg_loop_t *loop, const jg_kubeconfig_t *kc,
                                    jg_error_t *err)
{
    jg_k8s_env_t *env = NULL;
    if (kc->exec && kc->exec->n_env) {
        env = jg_xcalloc(kc->exec->n_env, sizeof *env);
        for (size_t i = 0; i < kc->exec->n_env; i++)
            env[i] = (jg_k8s_env_t){kc->exec->env[i].name, kc->exec->env[i].value};
    }
    jg_k8s_cluster_config_t cfg = {
        .server = kc->server, .ca_file = kc->ca_file, .ca_pem = kc->ca_pem,
        .ca_pem_len = kc->ca_pem_len, .cert_file = kc->client_cert_file,
        .cert_pem = kc->client_cert_pem, .cert_pem_len = kc->client_cert_pem_len,
        .key_file = kc->client_key_file, .key_pem = kc->client_key_pem,
        .key_pem_len = kc->client_key_pem_len, .token = kc->token,
        .token_file = kc->token_file, .insecure_skip_tls_verify = kc->insecure_skip_tls_verify,
        .tls_server_name = kc->tls_server_name};
    if (kc->exec) {
        cfg.exec.command = kc->exec->command;
        cfg.exec.args = (const char *const *)kc->exec->args;
        cfg.exec.n_args = kc->exec->n_args;
        cfg.exec.env = env;
        cfg.exec.n_env = kc->exec->n_env;
        cfg.exec.api_version = kc->exec->api_version;
        cfg.exec.provide_cluster_info = kc->exec->provide_cluster_info;
    }
    jg_k8s_client_t *c = jg_k8s_client_create(loop, &cfg, NULL, err);
    free(env);
    return c;
}

jg_backend_t *jg_backend_kubernetes_from_env(const jg_backend_env_t *env, const char *context,
                                             jg_error_t *err)
{
    static const jg_config_t none = {0};
    const jg_config_t *config = env->config ? env->config : &none;
    const jg_config_kubernetes_t *kc = &config->kubernetes;
    const char *ctx = context ? context : kc->context;
    jg_kubeconfig_t *kube = jg_kubeconfig_resolve(kc->kubeconfig, ctx, NULL, err);
    if (!kube) {
        char copy[sizeof err->text];
        snprintf(copy, sizeof copy, "%s", err->text);
        const char *ctx_field = context      ? "the context of infra kubernetes/<context>"
                                : kc->context ? "backends.kubernetes.context"
                                              : NULL;
        jg_errprintf(err, "backend kubernetes: %s (%s%s%s)", copy,
                     kc->kubeconfig ? "backends.kubernetes.kubeconfig"
                                    : "no backends.kubernetes.kubeconfig: the default kubeconfig",
                     ctx_field ? ", " : "", ctx_field ? ctx_field : "");
        return NULL;
    }
    k8s_backend_t *b = jg_xcalloc(1, sizeof *b);
    b->loop = env->loop;
    b->on_event = env->on_event;
    b->event_ctx = env->event_ctx;
    b->base.ops = &k8s_ops;
    b->base.impl = b;
    b->base.name = context ? jg_xasprintf("kubernetes/%s", context) : jg_xstrdup("kubernetes");
    b->namespace = jg_xstrdup(kc->namespace ? kc->namespace : kube->namespace);
    b->context = jg_xstrdup(kube->context);
    b->agent_image = jg_xstrdup(kc->agent_image ? kc->agent_image : "jgsched/agent:" JG_VERSION);
    b->default_image = jg_xstrdup(kc->image ? kc->image : JG_CONFIG_DEFAULT_IMAGE);
    b->gpu_resource = jg_xstrdup(kc->gpu_resource ? kc->gpu_resource
                                                  : JG_CONFIG_DEFAULT_GPU_RESOURCE);
    b->gpu_label = kc->gpu_label ? jg_xstrdup(kc->gpu_label) : NULL;
    b->instance = instance_id(env->state_dir, err);
    if (!b->instance)
        goto fail;
    if (context) {
        /* kubernetes/<ctx> is an instance of its own: its objects carry their
         * own id, even in a namespace the plain instance uses too. */
        uint32_t h = 2166136261u;
        for (const char *p = context; *p; p++)
            h = (h ^ (unsigned char)*p) * 16777619u;
        char *both = jg_xasprintf("%s-%08x", b->instance, h);
        free(b->instance);
        b->instance = both;
    }
    b->selector = jg_xasprintf("app.kubernetes.io/managed-by=jgsched,jgsched.io/instance=%s",
                               b->instance);
    double grace_s = config->has_stop_grace ? config->stop_grace_s : 5;
    b->settings = (jg_k8s_settings_t){
        .namespace = b->namespace, .instance = b->instance, .agent_image = b->agent_image,
        .default_image = b->default_image, .gpu_resource = b->gpu_resource,
        .gpu_label = b->gpu_label, .stop_grace_ms = (int)(grace_s * 1000),
        .hosts_writable = env->config ? kc->hosts_writable : true};
    b->client = client_from(env->loop, kube, err);
    if (!b->client)
        goto fail;
    snprintf(b->notes_text, sizeof b->notes_text,
             "pods in namespace %s of %s (context %s); requests/limits per node; instance %s",
             b->namespace, kube->server, kube->context ? kube->context : "in-cluster",
             b->instance);
    snprintf(b->capacity.source, sizeof b->capacity.source, "api");
    snprintf(b->capacity.note, sizeof b->capacity.note, "not reached yet (%s)", kube->server);
    if (k8s_monitor_start(b, err) < 0 || k8s_capacity_start(b, err) < 0)
        goto fail;
    jg_kubeconfig_free(kube);
    return &b->base;
fail:
    jg_errprefix(err, "backend kubernetes (%s)", kube->source ? kube->source : "kubeconfig");
    jg_kubeconfig_free(kube);
    k8s_destroy(&b->base);
    return NULL;
}
