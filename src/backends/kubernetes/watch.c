/* watch.c - list, then watch from the list's resourceVersion; relist on 410.
 *
 * The watch keeps every object it was told of (a jansson object keyed by
 * "namespace/name": a hash table for free), because a relist after 410 Gone
 * can only report a deletion by comparing with what was known: the object is
 * gone from the list and the DELETED event itself was compacted away.
 *
 * The caller's callbacks may stop the watch, also from inside an event that
 * arrives in the middle of a stream or a relist's diff; `depth` counts how
 * many of ours are on the stack and the watch is freed once the last of them
 * returns.
 */
#include "watch.h"

#include <stdlib.h>
#include <string.h>

struct jg_k8s_watch {
    jg_k8s_client_t *client;
    jg_k8s_watch_opts_t opts;
    char *path, *selector_query;    /* "labelSelector=...&fieldSelector=..." or "" */
    json_t *known;                  /* key -> object */
    json_t *listing;                /* a relist's pages so far */
    char *rv;
    char *continue_token;
    jg_k8s_request_t *req;
    uint64_t backoff_timer;
    int failures;                   /* consecutive: the backoff's exponent */
    bool unhealthy;                 /* on_health(false) was said, and not undone yet */
    bool stream_had_event;          /* an event or a bookmark: the stream made progress */
    int64_t stream_started_ms;
    bool relist_requested;
    int depth;
    bool stopped;
    jg_log_limit_t log_limit;       /* a flapping server must not flood the log */
    jg_k8s_watch_stats_t stats;
};

static void start_list(jg_k8s_watch_t *w);
static void start_stream(jg_k8s_watch_t *w);

static void watch_free(jg_k8s_watch_t *w)
{
    json_decref(w->known);
    json_decref(w->listing);
    free(w->path);
    free(w->selector_query);
    free(w->rv);
    free(w->continue_token);
    free(w);
}

/* Leaves one of our callbacks; frees the watch if it was stopped inside. */
static bool leave(jg_k8s_watch_t *w)
{
    w->depth--;
    if (w->stopped && !w->depth) {
        watch_free(w);
        return true;
    }
    return w->stopped;
}

static char *object_key(json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    if (!name)
        return NULL;
    return jg_xasprintf("%s/%s", ns ? ns : "", name);
}

static const char *object_rv(json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

static void set_rv(jg_k8s_watch_t *w, const char *rv)
{
    if (!rv || !rv[0])
        return;
    free(w->rv);
    w->rv = jg_xstrdup(rv);
}

static void emit(jg_k8s_watch_t *w, jg_k8s_event_type_t type, json_t *obj)
{
    if (!w->stopped)
        w->opts.on_event(w->opts.ctx, type, obj);
}

static void on_backoff_done(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_k8s_watch_t *w = arg;
    w->backoff_timer = 0;
    if (w->relist_requested || !w->rv)
        start_list(w);
    else
        start_stream(w);
}

static void backoff(jg_k8s_watch_t *w, bool relist, const char *why)
{
    w->failures++;
    w->stats.errors++;
    w->relist_requested = w->relist_requested || relist;
    int ms = jg_k8s_backoff_ms(w->failures, w->opts.backoff_base_ms, w->opts.backoff_max_ms, -1);
    jg_log_limited(&w->log_limit, "warn", "kubernetes watch %s: %s; again in %d ms", w->path,
                   why, ms);
    w->backoff_timer = jg_loop_add_timer(jg_k8s_client_loop(w->client), ms, on_backoff_done, w);
    if (w->unhealthy || w->failures < w->opts.unhealthy_after)
        return;
    /* A stream resumed after an outage may stay silent for minutes; a list
     * answers at once, so it is what says the server is back. */
    w->unhealthy = true;
    w->relist_requested = true;
    if (w->opts.on_health) {
        w->depth++;
        w->opts.on_health(w->opts.ctx, false, why);
        leave(w);   /* if stopped, the timer was cancelled */
    }
}

/* ---- list ---- */

static void list_done(void *ctx, const jg_k8s_response_t *resp);

static void request_page(jg_k8s_watch_t *w)
{
    char *cont = NULL;
    if (w->continue_token) {
        char *esc = curl_easy_escape(NULL, w->continue_token, 0);
        cont = jg_xasprintf("&continue=%s", esc);
        curl_free(esc);
    }
    char *query = jg_xasprintf("%s%slimit=%d%s", w->selector_query,
                               w->selector_query[0] ? "&" : "", w->opts.page_size,
                               cont ? cont : "");
    free(cont);
    jg_error_t err;
    jg_k8s_request_opts_t o = {.method = "GET", .path = w->path, .query = query,
                               .on_done = list_done, .ctx = w};
    w->req = jg_k8s_request(w->client, &o, &err);
    free(query);
    if (!w->req)
        backoff(w, true, err.text);
}

static void start_list(jg_k8s_watch_t *w)
{
    w->relist_requested = false;
    json_decref(w->listing);
    w->listing = json_object();
    free(w->continue_token);
    w->continue_token = NULL;
    request_page(w);
}

/* The list is complete: report how it differs from what was known. */
static void list_complete(jg_k8s_watch_t *w, const char *rv)
{
    json_t *old = w->known;
    w->known = w->listing;
    w->listing = NULL;
    set_rv(w, rv);
    w->failures = 0;
    w->stats.lists++;
    w->depth++;
    if (w->unhealthy) {
        w->unhealthy = false;
        if (w->opts.on_health)
            w->opts.on_health(w->opts.ctx, true, NULL);
    }
    const char *key;
    json_t *obj;
    json_object_foreach(w->known, key, obj) {
        json_t *before = json_object_get(old, key);
        if (!before) {
            emit(w, JG_K8S_ADDED, obj);
        } else {
            const char *a = object_rv(before), *b = object_rv(obj);
            if (!a || !b || strcmp(a, b) != 0)
                emit(w, JG_K8S_MODIFIED, obj);
        }
        if (w->stopped)
            break;
    }
    json_object_foreach(old, key, obj) {
        if (w->stopped)
            break;
        if (!json_object_get(w->known, key))
            emit(w, JG_K8S_DELETED, obj);
    }
    json_decref(old);
    if (!w->stopped && w->opts.on_synced)
        w->opts.on_synced(w->opts.ctx);
    if (leave(w))
        return;
    start_stream(w);
}

static void list_done(void *ctx, const jg_k8s_response_t *resp)
{
    jg_k8s_watch_t *w = ctx;
    w->req = NULL;
    char why[512];
    if (resp->transport_error || resp->status != 200 || !json_is_object(resp->body)) {
        jg_k8s_response_describe(resp, "list", why, sizeof why);
        if (resp->status == 410 && w->continue_token) {
            /* the continue token expired: a fresh list, not a failure */
            start_list(w);
            return;
        }
        backoff(w, true, why);
        return;
    }
    json_t *md = json_object_get(resp->body, "metadata");
    json_t *items = json_object_get(resp->body, "items");
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        char *key = object_key(item);
        if (key)
            json_object_set(w->listing, key, item);
        free(key);
    }
    const char *cont = json_string_value(json_object_get(md, "continue"));
    free(w->continue_token);
    w->continue_token = cont && cont[0] ? jg_xstrdup(cont) : NULL;
    if (w->continue_token) {
        request_page(w);
        return;
    }
    list_complete(w, json_string_value(json_object_get(md, "resourceVersion")));
}

/* ---- watch stream ---- */

static void stream_line(void *ctx, json_t *ev);
static void stream_done(void *ctx, const jg_k8s_response_t *resp);

static void start_stream(jg_k8s_watch_t *w)
{
    w->stream_had_event = false;
    w->stream_started_ms = jg_now_mono_ms();
    char *esc = curl_easy_escape(NULL, w->rv ? w->rv : "", 0);
    char *query = jg_xasprintf("%s%swatch=1&allowWatchBookmarks=true&resourceVersion=%s"
                               "&timeoutSeconds=%d", w->selector_query,
                               w->selector_query[0] ? "&" : "", esc, w->opts.watch_timeout_s);
    curl_free(esc);
    jg_error_t err;
    jg_k8s_request_opts_t o = {.method = "GET", .path = w->path, .query = query,
                               .on_line = stream_line, .on_done = stream_done, .ctx = w};
    w->req = jg_k8s_request(w->client, &o, &err);
    free(query);
    if (!w->req) {
        backoff(w, false, err.text);
        return;
    }
    w->stats.streams++;
}

static void stream_line(void *ctx, json_t *ev)
{
    jg_k8s_watch_t *w = ctx;
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    if (!type || !json_is_object(obj))
        return;     /* not a watch event: ignored */
    if (!strcmp(type, "BOOKMARK")) {
        set_rv(w, object_rv(obj));
        w->stream_had_event = true;
        return;
    }
    if (!strcmp(type, "ERROR")) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = json_string_value(json_object_get(obj, "message"));
        char why[300];
        snprintf(why, sizeof why, "watch ERROR %lld: %s", (long long)code, msg ? msg : "");
        jg_k8s_cancel(w->req);
        w->req = NULL;
        if (code == 410) {
            jg_log("info", "kubernetes watch %s: resourceVersion %s is gone; listing again",
                   w->path, w->rv ? w->rv : "");
            start_list(w);
        } else {
            backoff(w, false, why);
        }
        return;
    }
    jg_k8s_event_type_t t;
    if (!strcmp(type, "ADDED"))
        t = JG_K8S_ADDED;
    else if (!strcmp(type, "MODIFIED"))
        t = JG_K8S_MODIFIED;
    else if (!strcmp(type, "DELETED"))
        t = JG_K8S_DELETED;
    else
        return;
    char *key = object_key(obj);
    if (!key)
        return;
    w->stream_had_event = true;
    w->failures = 0;
    set_rv(w, object_rv(obj));
    if (t == JG_K8S_DELETED)
        json_object_del(w->known, key);
    else
        json_object_set(w->known, key, obj);
    free(key);
    w->depth++;
    emit(w, t, obj);
    leave(w);   /* if stopped, the request was cancelled: nothing more arrives */
}

static void stream_done(void *ctx, const jg_k8s_response_t *resp)
{
    jg_k8s_watch_t *w = ctx;
    w->req = NULL;
    if (resp->status == 410) {
        start_list(w);
        return;
    }
    bool answered = resp->status >= 200 && resp->status < 300;
    /* A stream that made progress, or one the server answered and kept open
     * a while (it ran its timeoutSeconds, or a proxy cut it later), resumes
     * at once: the server answers, whatever the connection did.  One that
     * ended at once without anything goes through the backoff, never a spin. */
    if (answered && (w->stream_had_event || jg_now_mono_ms() - w->stream_started_ms >= 1000)) {
        w->failures = 0;
        start_stream(w);
        return;
    }
    char why[512];
    if (answered)
        snprintf(why, sizeof why, "the watch stream ended without events%s%s",
                 resp->transport_error ? ": " : "", resp->transport_error ? resp->message : "");
    else
        jg_k8s_response_describe(resp, "watch", why, sizeof why);
    backoff(w, false, why);
}

/* ---- public ---- */

static char *selector_query(const jg_k8s_watch_opts_t *o)
{
    char *ls = o->label_selector ? curl_easy_escape(NULL, o->label_selector, 0) : NULL;
    char *fs = o->field_selector ? curl_easy_escape(NULL, o->field_selector, 0) : NULL;
    char *q = jg_xasprintf("%s%s%s%s%s", ls ? "labelSelector=" : "", ls ? ls : "",
                           ls && fs ? "&" : "", fs ? "fieldSelector=" : "", fs ? fs : "");
    curl_free(ls);
    curl_free(fs);
    return q;
}

jg_k8s_watch_t *jg_k8s_watch_start(jg_k8s_client_t *c, const jg_k8s_watch_opts_t *opts,
                                   jg_error_t *err)
{
    if (!opts->path || opts->path[0] != '/' || !opts->on_event) {
        jg_errprintf(err, "kubernetes watch: a collection path and an event callback are required");
        return NULL;
    }
    jg_k8s_watch_t *w = jg_xcalloc(1, sizeof *w);
    w->client = c;
    w->opts = *opts;
    if (w->opts.page_size <= 0)
        w->opts.page_size = 500;
    if (w->opts.watch_timeout_s <= 0)
        w->opts.watch_timeout_s = 300;
    if (w->opts.backoff_base_ms <= 0)
        w->opts.backoff_base_ms = 500;
    if (w->opts.backoff_max_ms <= 0)
        w->opts.backoff_max_ms = 30000;
    if (w->opts.unhealthy_after <= 0)
        w->opts.unhealthy_after = 3;
    w->path = jg_xstrdup(opts->path);
    w->opts.path = w->path;
    w->opts.label_selector = w->opts.field_selector = NULL;
    w->selector_query = selector_query(opts);
    w->known = json_object();
    start_list(w);
    return w;
}

void jg_k8s_watch_stop(jg_k8s_watch_t *w)
{
    if (!w || w->stopped)
        return;
    w->stopped = true;
    jg_k8s_cancel(w->req);
    w->req = NULL;
    if (w->backoff_timer) {
        jg_loop_cancel_timer(jg_k8s_client_loop(w->client), w->backoff_timer);
        w->backoff_timer = 0;
    }
    if (!w->depth)
        watch_free(w);
}

const char *jg_k8s_watch_resource_version(const jg_k8s_watch_t *w)
{
    return w->rv ? w->rv : "";
}

json_t *jg_k8s_watch_get(const jg_k8s_watch_t *w, const char *ns, const char *name)
{
    char *key = jg_xasprintf("%s/%s", ns ? ns : "", name);
    json_t *obj = json_object_get(w->known, key);
    free(key);
    return obj;
}

jg_k8s_watch_stats_t jg_k8s_watch_stats(const jg_k8s_watch_t *w)
{
    return w->stats;
}
