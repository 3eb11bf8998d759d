/* Unit tests of the Kubernetes API client layer (src/backends/kubernetes/):
 * the asynchronous client (retries, Retry-After, timeouts, cancel, streams
 * split across chunks), the watch (resume from resourceVersion, bookmarks,
 * 410 -> relist with synthetic events), and authentication (exec plugins,
 * token files, TLS with CA / client certificate blobs, in-cluster config).
 *
 * The API server here is a tiny scripted HTTP/1.1 server on 127.0.0.1 that
 * runs on the same jgsched loop as the client (non-blocking sockets), so a
 * test can cut a stream mid-line or hold an answer exactly when it wants.
 * TLS is served by `openssl s_server` with a CA and certificates the test
 * makes.  Every wait is on a state, bounded by a generous deadline. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/backends/kubernetes/auth.h"
#include "../src/backends/kubernetes/client.h"
#include "../src/backends/kubernetes/watch.h"

extern char **environ;

/* ---------------- the scripted test server ---------------- */

typedef struct ts_server ts_server_t;
typedef struct ts_conn ts_conn_t;

typedef struct {
    char method[16];
    char path[256];
    char query[1024];
    char authorization[256];
    char content_type[128];
    char body[4096];
    int64_t at_ms;          /* when it arrived (monotonic) */
    ts_conn_t *conn;
} ts_req_t;

typedef void (*ts_handler_f)(ts_server_t *s, ts_conn_t *c, const ts_req_t *req, int index);

struct ts_conn {
    ts_server_t *s;
    int fd;                 /* -1: closed (kept so that late actions are no-ops) */
    char in[16384];
    size_t in_len;
    bool handled;
    char *out;
    size_t out_len;
    bool close_after;
    bool peer_closed;       /* the client closed it (a cancel, a timeout) */
    ts_conn_t *next;
};

struct ts_server {
    jg_loop_t *loop;
    int lfd;
    int port;
    ts_handler_f handler;
    void *ctx;
    ts_req_t reqs[64];
    int n_reqs;
    int n_peer_closed;
    ts_conn_t *conns;
};

static void ts_conn_close(ts_conn_t *c)
{
    if (c->fd < 0)
        return;
    jg_loop_del_fd(c->s->loop, c->fd);
    close(c->fd);
    c->fd = -1;
}

static void ts_flush(ts_conn_t *c)
{
    if (c->fd < 0)
        return;
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) {
                jg_loop_mod_fd(c->s->loop, c->fd, EPOLLIN | EPOLLOUT, NULL);
                return;
            }
            ts_conn_close(c);
            return;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    jg_loop_mod_fd(c->s->loop, c->fd, EPOLLIN, NULL);
    if (c->close_after)
        ts_conn_close(c);
}

static void ts_write(ts_conn_t *c, const char *data, size_t n)
{
    if (c->fd < 0)
        return;
    c->out = realloc(c->out, c->out_len + n);
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    ts_flush(c);
}

static void ts_respond(ts_conn_t *c, int status, const char *headers, const char *body)
{
    char *head = jg_xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                              status, strlen(body), headers ? headers : "");
    c->close_after = false;
    ts_write(c, head, strlen(head));
    c->close_after = true;
    ts_write(c, body, strlen(body));
    free(head);
}

static void ts_stream_begin(ts_conn_t *c)
{
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    ts_write(c, head, strlen(head));
}

static void ts_chunk(ts_conn_t *c, const char *data)
{
    char *chunk = jg_xasprintf("%zx\r\n%s\r\n", strlen(data), data);
    ts_write(c, chunk, strlen(chunk));
    free(chunk);
}

static void ts_stream_end(ts_conn_t *c)
{
    c->close_after = true;
    ts_write(c, "0\r\n\r\n", 5);
}

static void header_value(const char *head, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = head; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= len)
                n = len - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
    }
}

static void ts_on_conn(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    ts_conn_t *c = arg;
    if (revents & EPOLLOUT)
        ts_flush(c);
    if (c->fd < 0 || !(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return;
        c->peer_closed = true;
        c->s->n_peer_closed++;
        ts_conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    c->in[c->in_len] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (c->handled || !end)
        return;
    char cl[32];
    header_value(c->in, "Content-Length", cl, sizeof cl);
    size_t body_len = cl[0] ? (size_t)atol(cl) : 0;
    if (c->in_len < (size_t)(end + 4 - c->in) + body_len)
        return;
    c->handled = true;
    ts_server_t *s = c->s;
    cr_assert_lt(s->n_reqs, 64);
    ts_req_t *r = &s->reqs[s->n_reqs];
    memset(r, 0, sizeof *r);
    char target[1280];
    cr_assert_eq(sscanf(c->in, "%15s %1279s", r->method, target), 2);
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        jg_strlcpy(r->query, q + 1, sizeof r->query);
    }
    jg_strlcpy(r->path, target, sizeof r->path);
    *end = '\0';
    header_value(c->in, "Authorization", r->authorization, sizeof r->authorization);
    header_value(c->in, "Content-Type", r->content_type, sizeof r->content_type);
    memcpy(r->body, end + 4, body_len < sizeof r->body - 1 ? body_len : sizeof r->body - 1);
    r->at_ms = jg_now_mono_ms();
    r->conn = c;
    int index = s->n_reqs++;
    s->handler(s, c, r, index);
}

static void ts_on_accept(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)revents;
    ts_server_t *s = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    ts_conn_t *c = jg_xcalloc(1, sizeof *c);
    c->s = s;
    c->fd = cfd;
    c->next = s->conns;
    s->conns = c;
    cr_assert_eq(jg_loop_add_fd(loop, cfd, EPOLLIN, ts_on_conn, c, NULL), 0);
}

static ts_server_t *ts_start(jg_loop_t *loop, ts_handler_f handler, void *ctx)
{
    ts_server_t *s = jg_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->handler = handler;
    s->ctx = ctx;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    cr_assert_eq(listen(s->lfd, 64), 0);
    cr_assert_eq(jg_loop_add_fd(loop, s->lfd, EPOLLIN, ts_on_accept, s, NULL), 0);
    return s;
}

static void ts_stop(ts_server_t *s)
{
    jg_loop_del_fd(s->loop, s->lfd);
    close(s->lfd);
    while (s->conns) {
        ts_conn_t *c = s->conns;
        s->conns = c->next;
        ts_conn_close(c);
        free(c->out);
        free(c);
    }
    free(s);
}

/* ---------------- waiting on states ---------------- */

typedef bool (*cond_f)(void *arg);
typedef struct {
    cond_f cond;
    void *arg;
    bool timed_out;
} waiter_t;

static void wait_check(jg_loop_t *loop, void *arg)
{
    waiter_t *w = arg;
    if (w->cond(w->arg))
        jg_loop_stop(loop);
}

static void wait_deadline(jg_loop_t *loop, void *arg)
{
    waiter_t *w = arg;
    w->timed_out = true;
    jg_loop_stop(loop);
}

/* Runs the loop until cond holds; fails the test after timeout_ms. */
static void run_until(jg_loop_t *loop, cond_f cond, void *arg, int timeout_ms, const char *what)
{
    waiter_t w = {.cond = cond, .arg = arg};
    if (cond(arg))
        return;
    uint64_t t = jg_loop_add_timer(loop, timeout_ms, wait_deadline, &w);
    jg_loop_set_prepare(loop, wait_check, &w);
    jg_loop_run(loop, NULL);
    jg_loop_set_prepare(loop, NULL, NULL);
    jg_loop_cancel_timer(loop, t);
    cr_assert(!w.timed_out, "timed out waiting for %s", what);
}

static void stop_loop(jg_loop_t *loop, void *arg)
{
    (void)arg;
    jg_loop_stop(loop);
}

/* ---------------- a client and what it answered ---------------- */

typedef struct {
    int done;
    int status;
    bool transport_error;
    int attempts;
    char reason[128];
    char message[512];
    char described[1024];
    char body_kind[64];
    int lines;
    char line_names[16][32];
    char raw[4096];
    size_t raw_len;
    jg_k8s_request_t *req;
    bool cancel_on_first_line;
    int64_t done_at_ms;
} answer_t;

static void on_done(void *ctx, const jg_k8s_response_t *resp)
{
    answer_t *a = ctx;
    a->done++;
    a->status = resp->status;
    a->transport_error = resp->transport_error;
    a->attempts = resp->attempts;
    jg_strlcpy(a->reason, resp->reason, sizeof a->reason);
    jg_strlcpy(a->message, resp->message, sizeof a->message);
    jg_k8s_response_describe(resp, "req", a->described, sizeof a->described);
    const char *kind = json_string_value(json_object_get(resp->body, "kind"));
    jg_strlcpy(a->body_kind, kind ? kind : "", sizeof a->body_kind);
    a->done_at_ms = jg_now_mono_ms();
}

static void on_line(void *ctx, json_t *obj)
{
    answer_t *a = ctx;
    const char *name = json_string_value(
        json_object_get(json_object_get(json_object_get(obj, "object"), "metadata"), "name"));
    if (a->lines < 16)
        jg_strlcpy(a->line_names[a->lines], name ? name : "?", sizeof a->line_names[0]);
    a->lines++;
    if (a->cancel_on_first_line)
        jg_k8s_cancel(a->req);
}

static void on_data(void *ctx, const char *data, size_t len)
{
    answer_t *a = ctx;
    if (a->raw_len + len < sizeof a->raw) {
        memcpy(a->raw + a->raw_len, data, len);
        a->raw_len += len;
    }
}

static bool is_done(void *arg)
{
    return ((answer_t *)arg)->done > 0;
}

typedef struct {
    jg_loop_t *loop;
    ts_server_t *server;
    jg_k8s_client_t *client;
    char server_url[64];
} fixture_t;

static fixture_t fx;

static void fx_start(ts_handler_f handler, void *ctx, const jg_k8s_client_opts_t *opts)
{
    memset(&fx, 0, sizeof fx);
    jg_error_t err;
    fx.loop = jg_loop_create(&err);
    cr_assert_not_null(fx.loop);
    fx.server = ts_start(fx.loop, handler, ctx);
    snprintf(fx.server_url, sizeof fx.server_url, "http://127.0.0.1:%d", fx.server->port);
    jg_k8s_cluster_config_t cfg = {.server = fx.server_url, .token = "static-token"};
    jg_k8s_client_opts_t o = opts ? *opts : (jg_k8s_client_opts_t){.backoff_base_ms = 10};
    fx.client = jg_k8s_client_create(fx.loop, &cfg, &o, &err);
    cr_assert_not_null(fx.client, "%s", err.text);
}

static void fx_stop(void)
{
    jg_k8s_client_destroy(fx.client);
    if (fx.server)
        ts_stop(fx.server);
    jg_loop_destroy(fx.loop);
}

static jg_k8s_request_t *get(const char *path, answer_t *a)
{
    jg_error_t err;
    jg_k8s_request_opts_t o = {.method = "GET", .path = path, .on_done = on_done, .ctx = a};
    jg_k8s_request_t *r = jg_k8s_request(fx.client, &o, &err);
    cr_assert_not_null(r, "%s", err.text);
    a->req = r;
    return r;
}

static const char *POD_A = "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}";

/* ---------------- client: retries ---------------- */

static void h_429_then_500_then_ok(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    if (i == 0)
        ts_respond(c, 429, "Retry-After: 1\r\n",
                   "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"TooManyRequests\","
                   "\"code\":429}");
    else if (i == 1)
        ts_respond(c, 500, NULL, "{\"kind\":\"Status\",\"reason\":\"InternalError\",\"code\":500}");
    else
        ts_respond(c, 200, NULL, POD_A);
}

Test(k8s_client, retries_429_after_retry_after_and_500_with_backoff)
{
    fx_start(h_429_then_500_then_ok, NULL, NULL);
    answer_t a = {0};
    get("/api/v1/namespaces/ns/pods/a", &a);
    cr_assert_eq(a.done, 0, "nothing is called back from inside jg_k8s_request");
    run_until(fx.loop, is_done, &a, 10000, "the answer");
    cr_assert_eq(a.status, 200);
    cr_assert_str_eq(a.body_kind, "Pod");
    cr_assert_eq(a.attempts, 3);
    cr_assert_eq(fx.server->n_reqs, 3);
    int64_t after_429 = fx.server->reqs[1].at_ms - fx.server->reqs[0].at_ms;
    int64_t after_500 = fx.server->reqs[2].at_ms - fx.server->reqs[1].at_ms;
    cr_assert_geq(after_429, 990, "Retry-After: 1 honoured (waited %lld ms)", (long long)after_429);
    cr_assert_lt(after_500, 900, "a 500 without Retry-After backs off from 10 ms (%lld ms)",
                 (long long)after_500);
    cr_assert_eq(jg_k8s_client_pending(fx.client), 0);
    fx_stop();
}

static void h_always_503(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    (void)i;
    ts_respond(c, 503, NULL, "{\"kind\":\"Status\",\"reason\":\"ServiceUnavailable\","
                             "\"message\":\"try later\",\"code\":503}");
}

Test(k8s_client, retries_are_bounded_and_the_last_status_is_reported)
{
    jg_k8s_client_opts_t o = {.backoff_base_ms = 5, .max_attempts = 3};
    fx_start(h_always_503, NULL, &o);
    answer_t a = {0};
    get("/api/v1/pods", &a);
    run_until(fx.loop, is_done, &a, 10000, "the answer");
    cr_assert_eq(a.status, 503);
    cr_assert_eq(a.attempts, 3);
    cr_assert_eq(fx.server->n_reqs, 3);
    cr_assert_str_eq(a.reason, "ServiceUnavailable");
    cr_assert_str_eq(a.message, "try later");
    fx_stop();
}

static void h_invalid(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)i;
    cr_assert_str_eq(r->method, "PATCH");
    cr_assert_str_eq(r->content_type, "application/merge-patch+json");
    cr_assert_str_eq(r->body, "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}");
    cr_assert_str_eq(r->authorization, "Bearer static-token");
    ts_respond(c, 422, NULL,
               "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Invalid\","
               "\"message\":\"Pod \\\"x\\\" is invalid\",\"details\":{\"causes\":["
               "{\"reason\":\"FieldValueRequired\",\"message\":\"Required value\","
               "\"field\":\"spec.containers[0].image\"}]},\"code\":422}");
}

Test(k8s_client, a_422_is_not_retried_and_its_causes_are_reported)
{
    fx_start(h_invalid, NULL, NULL);
    answer_t a = {0};
    json_t *patch = json_pack("{s{s{ss}}}", "metadata", "labels", "a", "b");
    jg_k8s_request_opts_t o = {.method = "PATCH", .path = "/api/v1/namespaces/ns/pods/x",
                               .body = patch, .content_type = "application/merge-patch+json",
                               .on_done = on_done, .ctx = &a};
    cr_assert_not_null(jg_k8s_request(fx.client, &o, NULL));
    json_decref(patch);     /* serialised at once: the caller's copy may go */
    run_until(fx.loop, is_done, &a, 10000, "the answer");
    cr_assert_eq(a.status, 422);
    cr_assert_eq(a.attempts, 1);
    cr_assert_eq(fx.server->n_reqs, 1);
    cr_assert_str_eq(a.reason, "Invalid");
    cr_assert_str_eq(a.described,
                     "req: 422 Invalid: Pod \"x\" is invalid (spec.containers[0].image: Required value)");
    fx_stop();
}

static void h_drop(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    (void)i;
    ts_conn_close(c);       /* read the request, then hang up without an answer */
}

Test(k8s_client, a_dropped_connection_is_retried_for_get_but_not_for_post)
{
    jg_k8s_client_opts_t o = {.backoff_base_ms = 5, .max_attempts = 3};
    fx_start(h_drop, NULL, &o);
    answer_t a = {0};
    get("/api/v1/pods", &a);
    run_until(fx.loop, is_done, &a, 10000, "the GET's answer");
    cr_assert(a.transport_error);
    cr_assert_eq(a.status, 0);
    cr_assert_eq(fx.server->n_reqs, 3, "an idempotent GET is tried max_attempts times");

    answer_t b = {0};
    json_t *pod = json_pack("{ss}", "kind", "Pod");
    jg_k8s_request_opts_t post = {.method = "POST", .path = "/api/v1/namespaces/ns/pods",
                                  .body = pod, .on_done = on_done, .ctx = &b};
    cr_assert_not_null(jg_k8s_request(fx.client, &post, NULL));
    json_decref(pod);
    run_until(fx.loop, is_done, &b, 10000, "the POST's answer");
    cr_assert(b.transport_error);
    cr_assert_eq(fx.server->n_reqs, 4, "a POST that may have been applied is not sent again");
    fx_stop();
}

Test(k8s_client, connection_refused_is_retried_then_reported)
{
    jg_k8s_client_opts_t o = {.backoff_base_ms = 5, .max_attempts = 2};
    fx_start(h_drop, NULL, &o);
    jg_loop_del_fd(fx.loop, fx.server->lfd);
    close(fx.server->lfd);          /* nothing listens on the port any more */
    fx.server->lfd = -1;
    answer_t a = {0};
    json_t *pod = json_pack("{ss}", "kind", "Pod");
    jg_k8s_request_opts_t post = {.method = "POST", .path = "/api/v1/namespaces/ns/pods",
                                  .body = pod, .on_done = on_done, .ctx = &a};
    cr_assert_not_null(jg_k8s_request(fx.client, &post, NULL));
    json_decref(pod);
    run_until(fx.loop, is_done, &a, 10000, "the answer");
    cr_assert(a.transport_error);
    cr_assert_eq(a.attempts, 2, "never connected: safe to retry even a POST");
    cr_assert(strstr(a.described, "onnect"), "%s", a.described);
    fx_stop();
}

static void h_hold(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)c;
    (void)r;
    (void)i;        /* never answers */
}

Test(k8s_client, a_request_times_out)
{
    fx_start(h_hold, NULL, NULL);
    answer_t a = {0};
    int64_t t0 = jg_now_mono_ms();
    jg_k8s_request_opts_t o = {.method = "GET", .path = "/api/v1/pods", .timeout_ms = 300,
                               .max_attempts = 1, .on_done = on_done, .ctx = &a};
    cr_assert_not_null(jg_k8s_request(fx.client, &o, NULL));
    run_until(fx.loop, is_done, &a, 10000, "the timeout");
    cr_assert(a.transport_error);
    cr_assert_geq(a.done_at_ms - t0, 290);
    cr_assert(strstr(a.described, "imeout") || strstr(a.described, "timed out"), "%s", a.described);
    fx_stop();
}

static bool peer_closed_once(void *arg)
{
    return ((ts_server_t *)arg)->n_peer_closed >= 1;
}

static bool got_request(void *arg)
{
    return ((ts_server_t *)arg)->n_reqs >= 1;
}

Test(k8s_client, a_cancelled_request_is_abandoned_without_callback)
{
    fx_start(h_hold, NULL, NULL);
    answer_t a = {0};
    get("/api/v1/pods", &a);
    run_until(fx.loop, got_request, fx.server, 10000, "the request at the server");
    jg_k8s_cancel(a.req);
    run_until(fx.loop, peer_closed_once, fx.server, 10000, "the client to hang up");
    cr_assert_eq(a.done, 0);
    cr_assert_eq(jg_k8s_client_pending(fx.client), 0);

    /* cancelled before it was even sent */
    answer_t b = {0};
    get("/api/v1/pods", &b);
    jg_k8s_cancel(b.req);
    cr_assert_eq(jg_k8s_client_pending(fx.client), 1, "freed from the loop, not inside cancel");
    jg_loop_add_timer(fx.loop, 50, stop_loop, NULL);
    jg_loop_run(fx.loop, NULL);
    cr_assert_eq(b.done, 0);
    cr_assert_eq(fx.server->n_reqs, 1);
    cr_assert_eq(jg_k8s_client_pending(fx.client), 0);
    fx_stop();
}

/* ---------------- scripted streams ---------------- */

typedef enum { A_BEGIN, A_CHUNK, A_END, A_DROP } act_kind_t;
typedef struct {
    int delay_ms;           /* after the previous action */
    act_kind_t kind;
    const char *text;
} act_t;

typedef struct {
    ts_conn_t *c;
    const act_t *acts;
    size_t n, i;
} play_t;

static play_t plays[16];
static size_t n_plays;

static void play_step(jg_loop_t *loop, void *arg)
{
    play_t *p = arg;
    while (p->i < p->n) {
        const act_t *a = &p->acts[p->i];
        if (a->delay_ms) {
            /* a delay pends once: clear it by running the step on the timer */
            static const int done_marker = 0;
            (void)done_marker;
        }
        p->i++;
        switch (a->kind) {
        case A_BEGIN: ts_stream_begin(p->c); break;
        case A_CHUNK: ts_chunk(p->c, a->text); break;
        case A_END: ts_stream_end(p->c); break;
        case A_DROP: ts_conn_close(p->c); break;
        }
        if (p->i < p->n && p->acts[p->i].delay_ms) {
            jg_loop_add_timer(loop, p->acts[p->i].delay_ms, play_step, p);
            return;
        }
    }
}

/* Plays acts on c: the first at once, each next one after its delay. */
static void ts_play(ts_conn_t *c, const act_t *acts, size_t n)
{
    cr_assert_lt(n_plays, 16);
    play_t *p = &plays[n_plays++];
    *p = (play_t){.c = c, .acts = acts, .n = n};
    play_step(c->s->loop, p);
}

static const act_t SPLIT_LINES[] = {
    {0, A_BEGIN, NULL},
    {0, A_CHUNK, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","},
    {20, A_CHUNK, "\"resourceVersion\":\"2\"}}}\n{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"na"},
    {20, A_CHUNK, "me\":\"b\"}}}\r\n\n{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\"}}}"},
    {20, A_END, NULL},
};

static void h_split_stream(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    (void)i;
    ts_play(c, SPLIT_LINES, sizeof SPLIT_LINES / sizeof SPLIT_LINES[0]);
}

Test(k8s_client, json_lines_split_across_chunks_arrive_whole)
{
    n_plays = 0;
    fx_start(h_split_stream, NULL, NULL);
    answer_t a = {0};
    jg_k8s_request_opts_t o = {.method = "GET", .path = "/api/v1/pods", .query = "watch=1",
                               .on_line = on_line, .on_done = on_done, .ctx = &a};
    cr_assert_not_null(jg_k8s_request(fx.client, &o, NULL));
    run_until(fx.loop, is_done, &a, 10000, "the end of the stream");
    cr_assert_eq(a.status, 200);
    cr_assert(!a.transport_error, "%s", a.described);
    cr_assert_eq(a.lines, 3);
    cr_assert_str_eq(a.line_names[0], "a");
    cr_assert_str_eq(a.line_names[1], "b");
    cr_assert_str_eq(a.line_names[2], "c", "the last line needs no newline");
    fx_stop();
}

Test(k8s_client, raw_streams_deliver_the_bytes_in_order)
{
    n_plays = 0;
    fx_start(h_split_stream, NULL, NULL);
    answer_t a = {0};
    jg_k8s_request_opts_t o = {.method = "GET", .path = "/api/v1/namespaces/ns/pods/a/log",
                               .query = "follow=true", .on_data = on_data, .on_done = on_done,
                               .ctx = &a};
    cr_assert_not_null(jg_k8s_request(fx.client, &o, NULL));
    run_until(fx.loop, is_done, &a, 10000, "the end of the stream");
    char expect[4096] = "";
    for (size_t i = 1; i < 4; i++)
        strcat(expect, SPLIT_LINES[i].text);
    cr_assert_eq(a.raw_len, strlen(expect));
    cr_assert(memcmp(a.raw, expect, a.raw_len) == 0);
    fx_stop();
}

static const act_t THREE_LINES_THEN_HOLD[] = {
    {0, A_BEGIN, NULL},
    {0, A_CHUNK, "{\"object\":{\"metadata\":{\"name\":\"1\"}}}\n{\"object\":{\"metadata\":{\"name\":\"2\"}}}\n"
                 "{\"object\":{\"metadata\":{\"name\":\"3\"}}}\n"},
};

static void h_three_lines(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    (void)i;
    ts_play(c, THREE_LINES_THEN_HOLD, 2);
}

Test(k8s_client, a_stream_cancelled_from_its_own_line_callback_stops_there)
{
    n_plays = 0;
    fx_start(h_three_lines, NULL, NULL);
    answer_t a = {.cancel_on_first_line = true};
    jg_k8s_request_opts_t o = {.method = "GET", .path = "/api/v1/pods", .query = "watch=1",
                               .on_line = on_line, .on_done = on_done, .ctx = &a};
    a.req = jg_k8s_request(fx.client, &o, NULL);
    cr_assert_not_null(a.req);
    run_until(fx.loop, peer_closed_once, fx.server, 10000, "the client to hang up");
    cr_assert_eq(a.lines, 1);
    cr_assert_eq(a.done, 0);
    fx_stop();
}

Test(k8s_client, backoff_doubles_with_jitter_and_honours_retry_after)
{
    for (int i = 0; i < 200; i++) {
        int d1 = jg_k8s_backoff_ms(1, 100, 10000, -1);
        int d3 = jg_k8s_backoff_ms(3, 100, 10000, -1);
        int d20 = jg_k8s_backoff_ms(20, 100, 10000, -1);
        cr_assert(d1 >= 50 && d1 <= 100, "%d", d1);
        cr_assert(d3 >= 200 && d3 <= 400, "%d", d3);
        cr_assert(d20 >= 5000 && d20 <= 10000, "%d", d20);
    }
    cr_assert_eq(jg_k8s_backoff_ms(1, 100, 10000, 3000), 3000);
    cr_assert_eq(jg_k8s_backoff_ms(1, 100, 10000, 999000), 10000, "capped");
    cr_assert_eq(jg_k8s_backoff_ms(5, 100, 10000, 0), 0);
}

/* ---------------- watch ---------------- */

typedef struct {
    char events[32][48];
    int n;
    int synced;
    char deleted_rv[16];
} seen_t;

static void on_watch_event(void *ctx, jg_k8s_event_type_t t, json_t *obj)
{
    seen_t *s = ctx;
    json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    static const char *names[] = {"ADDED", "MODIFIED", "DELETED"};
    cr_assert_lt(s->n, 32);
    snprintf(s->events[s->n++], sizeof s->events[0], "%s %s", names[t], name);
    if (t == JG_K8S_DELETED)
        jg_strlcpy(s->deleted_rv, json_string_value(json_object_get(md, "resourceVersion")),
                   sizeof s->deleted_rv);
}

static void on_watch_synced(void *ctx)
{
    ((seen_t *)ctx)->synced++;
}

typedef struct {
    seen_t *seen;
    int want;
} want_t;

static bool has_events(void *arg)
{
    want_t *w = arg;
    return w->seen->n >= w->want;
}

static bool has_requests(void *arg)
{
    want_t *w = arg;
    return fx.server->n_reqs >= w->want;
}

#define POD(name, rv) "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns\",\"resourceVersion\":\"" rv "\"}}"

static const act_t WATCH1[] = {
    {0, A_BEGIN, NULL},
    {0, A_CHUNK, "{\"type\":\"ADDED\",\"object\":" POD("b", "11") "}\n{\"type\":\"BOOKM"},
    {20, A_CHUNK, "ARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"15\"}}}\n"
                  "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVer"},
    {20, A_DROP, NULL},     /* cut in the middle of an event */
};
static const act_t WATCH2[] = {
    {0, A_BEGIN, NULL},
    {0, A_CHUNK, "{\"type\":\"MODIFIED\",\"object\":" POD("a", "16") "}\n"},
};

static void h_watch_resume(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    cr_assert_str_eq(r->path, "/api/v1/namespaces/ns/pods");
    cr_assert(strstr(r->query, "labelSelector=app.kubernetes.io%2Fmanaged-by%3Djgsched"), "%s",
              r->query);
    if (i == 0) {
        cr_assert(strstr(r->query, "limit=500") && !strstr(r->query, "watch"), "%s", r->query);
        ts_respond(c, 200, NULL, "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"10\"},"
                                 "\"items\":[" POD("a", "5") "]}");
    } else if (i == 1) {
        cr_assert(strstr(r->query, "watch=1&allowWatchBookmarks=true&resourceVersion=10&"), "%s",
                  r->query);
        ts_play(c, WATCH1, 4);
    } else if (i == 2) {
        cr_assert(strstr(r->query, "resourceVersion=15&"), "resumes from the bookmark: %s",
                  r->query);
        ts_play(c, WATCH2, 2);
    } else {
        cr_assert_fail("unexpected request %d: %s", i, r->query);
    }
}

Test(k8s_watch, a_cut_stream_resumes_from_the_last_bookmark)
{
    n_plays = 0;
    fx_start(h_watch_resume, NULL, NULL);
    seen_t seen = {0};
    jg_k8s_watch_opts_t o = {.path = "/api/v1/namespaces/ns/pods",
                             .label_selector = "app.kubernetes.io/managed-by=jgsched",
                             .backoff_base_ms = 10, .on_event = on_watch_event,
                             .on_synced = on_watch_synced, .ctx = &seen};
    jg_k8s_watch_t *w = jg_k8s_watch_start(fx.client, &o, NULL);
    cr_assert_not_null(w);
    want_t want = {&seen, 3};
    run_until(fx.loop, has_events, &want, 10000, "three events");
    cr_assert_str_eq(seen.events[0], "ADDED a");
    cr_assert_str_eq(seen.events[1], "ADDED b");
    cr_assert_str_eq(seen.events[2], "MODIFIED a");
    cr_assert_eq(seen.synced, 1);
    cr_assert_str_eq(jg_k8s_watch_resource_version(w), "16");
    cr_assert_not_null(jg_k8s_watch_get(w, "ns", "b"));
    jg_k8s_watch_stats_t st = jg_k8s_watch_stats(w);
    cr_assert_eq(st.lists, 1, "a cut stream is resumed, not relisted");
    cr_assert_eq(st.streams, 2);
    jg_k8s_watch_stop(w);
    fx_stop();
}

static const act_t WATCH_ERROR_410[] = {
    {0, A_BEGIN, NULL},
    {0, A_CHUNK, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"status\":\"Failure\","
                 "\"message\":\"too old resource version: 10 (20)\",\"reason\":\"Expired\","
                 "\"code\":410}}\n"},
};
static const act_t WATCH_HOLD[] = {{0, A_BEGIN, NULL}};

static void h_watch_410(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    switch (i) {
    case 0:
        ts_respond(c, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":["
                                 POD("a", "5") "," POD("b", "6") "]}");
        break;
    case 1:
        cr_assert(strstr(r->query, "resourceVersion=10&"), "%s", r->query);
        ts_play(c, WATCH_ERROR_410, 2);
        break;
    case 2:     /* the relist: a changed, b deleted, c added while we were away; paged */
        cr_assert(!strstr(r->query, "watch=1") && !strstr(r->query, "continue"), "%s", r->query);
        ts_respond(c, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"22\",\"continue\":\"p2\"},"
                                 "\"items\":[" POD("a", "20") "]}");
        break;
    case 3:
        cr_assert(strstr(r->query, "&continue=p2"), "%s", r->query);
        ts_respond(c, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"22\"},\"items\":["
                                 POD("c", "21") "]}");
        break;
    case 4:     /* 410 as the HTTP status this time */
        cr_assert(strstr(r->query, "watch=1") && strstr(r->query, "resourceVersion=22&"), "%s",
                  r->query);
        ts_respond(c, 410, NULL, "{\"kind\":\"Status\",\"reason\":\"Expired\",\"code\":410}");
        break;
    case 5:
        ts_respond(c, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"23\"},\"items\":["
                                 POD("a", "20") "," POD("c", "21") "," POD("d", "23") "]}");
        break;
    case 6:
        cr_assert(strstr(r->query, "resourceVersion=23&"), "%s", r->query);
        ts_play(c, WATCH_HOLD, 1);
        break;
    default:
        cr_assert_fail("unexpected request %d: %s", i, r->query);
    }
}

static bool has_event(const seen_t *s, int from, int to, const char *ev)
{
    for (int i = from; i < to; i++)
        if (!strcmp(s->events[i], ev))
            return true;
    return false;
}

Test(k8s_watch, gone_relists_and_reports_the_differences)
{
    n_plays = 0;
    fx_start(h_watch_410, NULL, NULL);
    seen_t seen = {0};
    jg_k8s_watch_opts_t o = {.path = "/api/v1/namespaces/ns/pods", .backoff_base_ms = 10,
                             .on_event = on_watch_event, .on_synced = on_watch_synced,
                             .ctx = &seen};
    jg_k8s_watch_t *w = jg_k8s_watch_start(fx.client, &o, NULL);
    want_t want = {&seen, 7};
    run_until(fx.loop, has_requests, &want, 10000, "the watch after the second relist");
    cr_assert_eq(seen.n, 6, "events: %d", seen.n);
    cr_assert(has_event(&seen, 0, 2, "ADDED a") && has_event(&seen, 0, 2, "ADDED b"));
    cr_assert(has_event(&seen, 2, 5, "MODIFIED a"));
    cr_assert(has_event(&seen, 2, 5, "ADDED c"));
    cr_assert(has_event(&seen, 2, 5, "DELETED b"), "a deletion lost with the 410 is reported");
    cr_assert_str_eq(seen.deleted_rv, "6", "with the last state known");
    cr_assert_str_eq(seen.events[5], "ADDED d", "unchanged objects are not reported again");
    cr_assert_eq(seen.synced, 3);
    cr_assert_null(jg_k8s_watch_get(w, "ns", "b"));
    cr_assert_str_eq(jg_k8s_watch_resource_version(w), "23");
    jg_k8s_watch_stop(w);
    fx_stop();
}

static void h_list_forbidden_once(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    if (i == 0)
        ts_respond(c, 403, NULL, "{\"kind\":\"Status\",\"reason\":\"Forbidden\",\"code\":403}");
    else if (i == 1)
        ts_respond(c, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"3\"},\"items\":["
                                 POD("a", "3") "]}");
    else
        ts_play(c, WATCH_HOLD, 1);
}

static void stop_in_event(void *ctx, jg_k8s_event_type_t t, json_t *obj)
{
    (void)t;
    (void)obj;
    jg_k8s_watch_t **w = ctx;
    jg_k8s_watch_stop(*w);      /* from inside its own callback */
    *w = NULL;
}

Test(k8s_watch, a_failed_list_backs_off_and_a_watch_may_stop_inside_its_callback)
{
    n_plays = 0;
    fx_start(h_list_forbidden_once, NULL, NULL);
    jg_k8s_watch_t *w = NULL;
    jg_k8s_watch_opts_t o = {.path = "/api/v1/namespaces/ns/pods", .backoff_base_ms = 10,
                             .on_event = stop_in_event, .ctx = &w};
    w = jg_k8s_watch_start(fx.client, &o, NULL);
    want_t want = {NULL, 2};
    run_until(fx.loop, has_requests, &want, 10000, "the list after the backoff");
    jg_loop_add_timer(fx.loop, 100, stop_loop, NULL);
    jg_loop_run(fx.loop, NULL);
    cr_assert_null(w, "the event was delivered, and the watch stopped");
    cr_assert_eq(fx.server->n_reqs, 2, "no watch started after the stop");
    fx_stop();
}

/* The server stops answering: after three failures in a row the watch says
 * so (the Kubernetes backend's `reachable` follows it), then lists afresh
 * and says it answers again before that list's events. */
static void h_watch_outage(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    if (i == 0) {
        ts_respond(c, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":["
                                 POD("a", "5") "]}");
    } else if (i <= 3) {
        cr_assert(strstr(r->query, "watch=1"), "request %d resumes the watch: %s", i, r->query);
        ts_respond(c, 503, NULL, "{\"kind\":\"Status\",\"reason\":\"ServiceUnavailable\","
                                 "\"message\":\"etcd is down\",\"code\":503}");
    } else if (i == 4) {
        cr_assert(!strstr(r->query, "watch=1"), "after the outage a list: %s", r->query);
        ts_respond(c, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"12\"},\"items\":["
                                 POD("a", "5") "," POD("b", "11") "]}");
    } else {
        ts_play(c, WATCH_HOLD, 1);
    }
}

typedef struct {
    seen_t seen;
    char health[4][160];
    int n_health;
    int reqs_at_down;
    int events_at_up;
} outage_t;

static void on_outage_event(void *ctx, jg_k8s_event_type_t t, json_t *obj)
{
    on_watch_event(&((outage_t *)ctx)->seen, t, obj);
}

static void on_outage_health(void *ctx, bool answering, const char *why)
{
    outage_t *o = ctx;
    cr_assert_lt(o->n_health, 4);
    snprintf(o->health[o->n_health++], sizeof o->health[0], "%s %s",
             answering ? "up" : "down", why ? why : "-");
    if (answering)
        o->events_at_up = o->seen.n;
    else
        o->reqs_at_down = fx.server->n_reqs;
}

Test(k8s_watch, a_server_that_stops_answering_is_reported_down_then_up)
{
    n_plays = 0;
    jg_k8s_client_opts_t co = {.backoff_base_ms = 5, .max_attempts = 1};
    fx_start(h_watch_outage, NULL, &co);
    outage_t o = {0};
    jg_k8s_watch_opts_t wo = {.path = "/api/v1/nodes", .backoff_base_ms = 10,
                              .on_event = on_outage_event, .on_health = on_outage_health,
                              .ctx = &o};
    jg_k8s_watch_t *w = jg_k8s_watch_start(fx.client, &wo, NULL);
    want_t want = {NULL, 6};
    run_until(fx.loop, has_requests, &want, 10000, "the watch after the outage's list");
    cr_assert_eq(o.n_health, 2, "down, then up: %d calls", o.n_health);
    cr_assert(!strncmp(o.health[0], "down ", 5) && strstr(o.health[0], "503"), "%s",
              o.health[0]);
    cr_assert_eq(o.reqs_at_down, 4, "down after the third failure in a row (%d requests)",
                 o.reqs_at_down);
    cr_assert_str_eq(o.health[1], "up -");
    cr_assert_eq(o.events_at_up, 1, "up before the list's events");
    cr_assert_eq(o.seen.n, 2);
    cr_assert_str_eq(o.seen.events[1], "ADDED b");
    jg_k8s_watch_stop(w);
    fx_stop();
}

/* ---------------- auth ---------------- */

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jg-k8s-test.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    if (tmpdir[0]) {
        char *cmd = jg_xasprintf("rm -rf '%s'", tmpdir);
        cr_expect_eq(system(cmd), 0);
        free(cmd);
    }
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    char *path = jg_xasprintf("%s/%s", tmpdir, name);
    char *tmp = jg_xasprintf("%s.new", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    chmod(tmp, mode);
    cr_assert_eq(rename(tmp, path), 0);    /* as kubelet's atomic writer replaces a token */
    free(path);
    free(tmp);
}

static char *read_file(const char *name)
{
    char *path = jg_xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return jg_xstrdup("");
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    return jg_xstrdup(buf);
}

static void fx_start_cfg(ts_handler_f handler, jg_k8s_cluster_config_t *cfg)
{
    memset(&fx, 0, sizeof fx);
    jg_error_t err;
    fx.loop = jg_loop_create(&err);
    fx.server = ts_start(fx.loop, handler, NULL);
    snprintf(fx.server_url, sizeof fx.server_url, "http://127.0.0.1:%d", fx.server->port);
    cfg->server = fx.server_url;
    jg_k8s_client_opts_t o = {.backoff_base_ms = 10};
    fx.client = jg_k8s_client_create(fx.loop, cfg, &o, &err);
    cr_assert_not_null(fx.client, "%s", err.text);
}

static void h_ok(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    (void)i;
    ts_respond(c, 200, NULL, POD_A);
}

static void h_401_for_tok1(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)i;
    if (!strcmp(r->authorization, "Bearer tok-1"))
        ts_respond(c, 401, NULL, "{\"kind\":\"Status\",\"reason\":\"Unauthorized\",\"code\":401}");
    else
        ts_respond(c, 200, NULL, POD_A);
}

/* Prints an ExecCredential whose token counts the runs; JG_TTL: seconds of validity. */
static const char *EXEC_PLUGIN =
    "#!/bin/sh\n"
    "n=$(cat \"$JG_DIR/count\" 2>/dev/null || echo 0)\n"
    "n=$((n+1))\n"
    "echo \"$n\" > \"$JG_DIR/count\"\n"
    "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$JG_DIR/info\"\n"
    "printf '%s' \"$1\" > \"$JG_DIR/arg\"\n"
    "until=$(( $(date +%s) + $JG_TTL ))\n"
    "echo \"$until\" > \"$JG_DIR/expiry\"\n"
    "exp=$(date -u -d \"@$until\" +%Y-%m-%dT%H:%M:%SZ)\n"
    "printf '{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"tok-%s\","
    "\"expirationTimestamp\":\"%s\"}}\\n' \"${JG_API:-client.authentication.k8s.io/v1}\" \"$n\" \"$exp\"\n";

typedef struct {
    jg_k8s_env_t env[3];
    const char *args[1];
    char plugin[300];
    jg_k8s_cluster_config_t cfg;
} exec_cfg_t;

static void exec_config(exec_cfg_t *e, const char *ttl, const char *api_in_output)
{
    write_file("plugin", EXEC_PLUGIN, 0755);
    snprintf(e->plugin, sizeof e->plugin, "%s/plugin", tmpdir);
    e->env[0] = (jg_k8s_env_t){"JG_DIR", tmpdir};
    e->env[1] = (jg_k8s_env_t){"JG_TTL", ttl};
    e->env[2] = (jg_k8s_env_t){"JG_API", api_in_output};
    e->args[0] = "--cluster=test";
    e->cfg = (jg_k8s_cluster_config_t){0};
    e->cfg.exec.command = e->plugin;
    e->cfg.exec.args = e->args;
    e->cfg.exec.n_args = 1;
    e->cfg.exec.env = e->env;
    e->cfg.exec.n_env = 3;
    e->cfg.exec.api_version = "client.authentication.k8s.io/v1";
}

typedef struct {
    answer_t *a;
    int n;
} all_t;

static bool all_done(void *arg)
{
    all_t *all = arg;
    for (int i = 0; i < all->n; i++)
        if (!all->a[i].done)
            return false;
    return true;
}

static bool clock_past(void *arg)
{
    return time(NULL) >= *(time_t *)arg;
}

static void tick(jg_loop_t *loop, void *arg)
{
    (void)arg;
    jg_loop_add_timer(loop, 50, tick, NULL);   /* so that run_until re-checks the clock */
}

Test(k8s_auth, an_exec_credential_is_shared_cached_until_expiry_then_fetched_again,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
    exec_cfg_t e;
    exec_config(&e, "3", "client.authentication.k8s.io/v1");
    e.cfg.exec.provide_cluster_info = true;
    e.cfg.ca_pem = "-----BEGIN";
    e.cfg.ca_pem_len = 10;
    fx_start_cfg(h_ok, &e.cfg);
    answer_t a[3] = {0};
    for (int i = 0; i < 3; i++)
        get("/api/v1/pods", &a[i]);
    all_t all = {a, 3};
    run_until(fx.loop, all_done, &all, 10000, "three answers");
    char *count = read_file("count");
    cr_assert_str_eq(count, "1", "three requests waiting together run the plugin once");
    free(count);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(a[i].status, 200, "%s", a[i].described);
        cr_assert_str_eq(fx.server->reqs[i].authorization, "Bearer tok-1");
    }
    char *info = read_file("info");
    cr_assert(strstr(info, "\"apiVersion\":\"client.authentication.k8s.io/v1\"") &&
              strstr(info, "\"interactive\":false") &&
              strstr(info, "\"cluster\":{\"server\":\"http://127.0.0.1:") &&
              strstr(info, "\"certificate-authority-data\":\"LS0tLS1CRUdJTg==\""),
              "KUBERNETES_EXEC_INFO: %s", info);
    free(info);
    char *arg = read_file("arg");
    cr_assert_str_eq(arg, "--cluster=test");
    free(arg);

    answer_t b = {0};
    get("/api/v1/pods", &b);
    run_until(fx.loop, is_done, &b, 10000, "the cached answer");
    cr_assert_str_eq(fx.server->reqs[3].authorization, "Bearer tok-1", "cached");

    /* wait for the credential to expire: its expirationTimestamp has passed */
    char *expiry = read_file("expiry");
    time_t expired = (time_t)atol(expiry);
    free(expiry);
    jg_loop_add_timer(fx.loop, 50, tick, NULL);
    run_until(fx.loop, clock_past, &expired, 10000, "the expiry");
    answer_t c = {0};
    get("/api/v1/pods", &c);
    run_until(fx.loop, is_done, &c, 10000, "the answer after the expiry");
    cr_assert_eq(c.status, 200);
    cr_assert_str_eq(fx.server->reqs[4].authorization, "Bearer tok-2", "fetched again");
    fx_stop();
}

Test(k8s_auth, a_401_runs_the_exec_plugin_again_once, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    exec_cfg_t e;
    exec_config(&e, "3600", "client.authentication.k8s.io/v1");
    fx_start_cfg(h_401_for_tok1, &e.cfg);
    answer_t a = {0};
    get("/api/v1/pods", &a);
    run_until(fx.loop, is_done, &a, 10000, "the answer");
    cr_assert_eq(a.status, 200, "%s", a.described);
    cr_assert_eq(fx.server->n_reqs, 2);
    cr_assert_str_eq(fx.server->reqs[1].authorization, "Bearer tok-2");
    char *count = read_file("count");
    cr_assert_str_eq(count, "2");
    free(count);
    fx_stop();
}

Test(k8s_auth, a_failing_or_wrong_exec_plugin_fails_the_request_with_its_reason,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
    write_file("failing", "#!/bin/sh\necho 'no credentials for you' >&2\nexit 3\n", 0755);
    char failing[300];
    snprintf(failing, sizeof failing, "%s/failing", tmpdir);
    jg_k8s_cluster_config_t cfg = {.exec = {.command = failing,
                                            .api_version = "client.authentication.k8s.io/v1beta1"}};
    fx_start_cfg(h_ok, &cfg);
    answer_t a = {0};
    get("/api/v1/pods", &a);
    run_until(fx.loop, is_done, &a, 10000, "the failure");
    cr_assert(a.transport_error);
    cr_assert(strstr(a.message, "exited with 3: no credentials for you"), "%s", a.message);
    cr_assert_eq(fx.server->n_reqs, 0, "nothing is sent without credentials");
    fx_stop();

    exec_cfg_t e;     /* prints apiVersion v1beta1 where the kubeconfig asks for v1 */
    exec_config(&e, "3600", "client.authentication.k8s.io/v1beta1");
    fx_start_cfg(h_ok, &e.cfg);
    answer_t b = {0};
    get("/api/v1/pods", &b);
    run_until(fx.loop, is_done, &b, 10000, "the failure");
    cr_assert(b.transport_error);
    cr_assert(strstr(b.message, "apiVersion"), "%s", b.message);
    fx_stop();
}

Test(k8s_auth, a_token_file_is_read_again_when_it_changes, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    write_file("token", "first\n", 0600);
    char token_file[300];
    snprintf(token_file, sizeof token_file, "%s/token", tmpdir);
    jg_k8s_cluster_config_t cfg = {.token = "inline", .token_file = token_file};
    fx_start_cfg(h_ok, &cfg);
    const char *expect[] = {"Bearer first", "Bearer second-token", "Bearer thirds-token"};
    for (int i = 0; i < 3; i++) {
        if (i == 1) {
            write_file("token", "second-token", 0600);     /* replaced: a new inode */
        } else if (i == 2) {
            char *path = jg_xasprintf("%s/token", tmpdir);  /* rewritten in place, same size */
            FILE *f = fopen(path, "r+");
            fputs("thirds-token", f);
            fclose(f);
            struct timespec later[2] = {{0, UTIME_OMIT}, {time(NULL) + 5, 0}};
            utimensat(AT_FDCWD, path, later, 0);    /* a coarse clock may not move mtime */
            free(path);
        }
        answer_t a = {0};
        get("/api/v1/pods", &a);
        run_until(fx.loop, is_done, &a, 10000, "the answer");
        cr_assert_str_eq(fx.server->reqs[i].authorization, expect[i]);
    }
    fx_stop();

    /* the file missing: the inline token is what is left */
    cfg = (jg_k8s_cluster_config_t){.token = "inline", .token_file = "/nonexistent/jg-token"};
    fx_start_cfg(h_ok, &cfg);
    answer_t a = {0};
    get("/api/v1/pods", &a);
    run_until(fx.loop, is_done, &a, 10000, "the answer");
    cr_assert_str_eq(fx.server->reqs[0].authorization, "Bearer inline");
    fx_stop();

    cfg = (jg_k8s_cluster_config_t){.token_file = "/nonexistent/jg-token"};
    fx_start_cfg(h_ok, &cfg);
    answer_t b = {0};
    get("/api/v1/pods", &b);
    run_until(fx.loop, is_done, &b, 10000, "the failure");
    cr_assert(b.transport_error);
    cr_assert(strstr(b.message, "tokenFile /nonexistent/jg-token"), "%s", b.message);
    fx_stop();
}

Test(k8s_auth, bad_configurations_are_refused_with_the_field)
{
    jg_error_t err;
    jg_k8s_cluster_config_t cfg = {.server = "https://h:6443", .cert_file = "/c.pem"};
    cr_assert_null(jg_k8s_auth_create(NULL, &cfg, NULL, NULL, &err));
    cr_assert(strstr(err.text, "client-key"), "%s", err.text);
    cfg = (jg_k8s_cluster_config_t){.server = "https://h:6443",
                                    .exec = {.command = "x", .api_version = "v0"}};
    cr_assert_null(jg_k8s_auth_create(NULL, &cfg, NULL, NULL, &err));
    cr_assert(strstr(err.text, "apiVersion 'v0'"), "%s", err.text);
    cfg = (jg_k8s_cluster_config_t){.server = "https://h:6443", .token = "a\r\nX-Evil: 1"};
    cr_assert_null(jg_k8s_auth_create(NULL, &cfg, NULL, NULL, &err));
    cfg = (jg_k8s_cluster_config_t){0};
    cr_assert_null(jg_k8s_auth_create(NULL, &cfg, NULL, NULL, &err));
    cr_assert(strstr(err.text, "no server"), "%s", err.text);

    cfg = (jg_k8s_cluster_config_t){.server = "https://10.0.0.1:6443/prefix/",
                                    .tls_server_name = "k8s.test"};
    jg_k8s_auth_t *a = jg_k8s_auth_create(NULL, &cfg, NULL, NULL, &err);
    cr_assert_not_null(a, "%s", err.text);
    cr_assert_str_eq(jg_k8s_auth_server(a), "https://k8s.test:6443/prefix",
                     "the certificate is checked against tls-server-name");
    jg_k8s_auth_destroy(a);
}

Test(k8s_auth, in_cluster_configuration_comes_from_the_service_account,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
    jg_k8s_incluster_t st;
    jg_k8s_cluster_config_t cfg;
    jg_error_t err;
    unsetenv("KUBERNETES_SERVICE_HOST");
    cr_assert_eq(jg_k8s_incluster_config(tmpdir, &st, &cfg, &err), -1);
    cr_assert(strstr(err.text, "not running in a Kubernetes pod"), "%s", err.text);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    cr_assert_eq(jg_k8s_incluster_config(tmpdir, &st, &cfg, &err), -1, "no token file");
    write_file("token", "sa-token\n", 0600);
    write_file("ca.crt", "-----BEGIN CERTIFICATE-----\n", 0644);
    write_file("namespace", "team-a\n", 0644);
    cr_assert_eq(jg_k8s_incluster_config(tmpdir, &st, &cfg, &err), 0, "%s", err.text);
    cr_assert_str_eq(cfg.server, "https://[fd00::1]:443");
    cr_assert(strstr(cfg.token_file, "/token") && strstr(cfg.ca_file, "/ca.crt"));
    cr_assert_str_eq(st.namespace_, "team-a");
    jg_k8s_incluster_free(&st);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
}

/* ---------------- TLS, served by openssl s_server ---------------- */

static pid_t s_server_pid = -1;

static void tls_fini(void)
{
    if (s_server_pid > 0) {
        kill(s_server_pid, SIGKILL);
        waitpid(s_server_pid, NULL, 0);
        s_server_pid = -1;
    }
    remove_tmpdir();
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

static bool port_open(void *arg)
{
    int port = *(int *)arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static char *slurp(const char *name, size_t *len)
{
    char *text = read_file(name);
    *len = strlen(text);
    return text;
}

/* One GET against the TLS server with cfg; returns what came back. */
static answer_t tls_get(jg_k8s_cluster_config_t *cfg)
{
    jg_error_t err;
    jg_k8s_client_opts_t o = {.max_attempts = 1, .timeout_ms = 10000};
    fx.client = jg_k8s_client_create(fx.loop, cfg, &o, &err);
    cr_assert_not_null(fx.client, "%s", err.text);
    answer_t a = {0};
    get("/", &a);
    run_until(fx.loop, is_done, &a, 15000, "the TLS answer");
    jg_k8s_client_destroy(fx.client);
    fx.client = NULL;
    return a;
}

/* A CA, a server certificate for k8s.test, a client certificate, and an
 * unrelated CA, in tmpdir. */
static void make_certificates(void)
{
    char *script = jg_xasprintf(
        "set -e; cd '%s'\n"
        "ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
        "openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=jg-test-ca\n"
        "openssl req $ec -keyout srv.key -out srv.csr -subj /CN=k8s.test\n"
        "printf 'subjectAltName=DNS:k8s.test\\n' > srv.ext\n"
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
        "-days 2 -extfile srv.ext\n"
        "openssl req $ec -keyout cli.key -out cli.csr -subj /CN=jg-client\n"
        "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 2\n"
        "openssl req -x509 $ec -keyout other.key -out other.pem -days 2 -subj /CN=other-ca\n",
        tmpdir);
    char *cmd = jg_xasprintf("sh -c \"$(cat <<'JGEOF'\n%sJGEOF\n)\" >/dev/null 2>&1", script);
    cr_assert_eq(system(cmd), 0, "openssl could not make the certificates");
    free(cmd);
    free(script);
}

Test(k8s_auth, tls_with_ca_and_client_certificate_blobs_files_server_name_and_insecure,
     .init = make_tmpdir, .fini = tls_fini, .timeout = 60)
{
    make_certificates();

    int port = free_port();
    char accept[64], srv_pem[300], srv_key[300], ca_pem_path[300], log[300];
    snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
    snprintf(srv_pem, sizeof srv_pem, "%s/srv.pem", tmpdir);
    snprintf(srv_key, sizeof srv_key, "%s/srv.key", tmpdir);
    snprintf(ca_pem_path, sizeof ca_pem_path, "%s/ca.pem", tmpdir);
    snprintf(log, sizeof log, "%s/s_server.log", tmpdir);
    char *argv[] = {"openssl", "s_server", "-quiet", "-accept", accept, "-cert", srv_pem,
                    "-key", srv_key, "-CAfile", ca_pem_path, "-Verify", "1", "-www", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    cr_assert_eq(posix_spawnp(&s_server_pid, "openssl", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);

    memset(&fx, 0, sizeof fx);
    fx.loop = jg_loop_create(NULL);
    jg_loop_add_timer(fx.loop, 50, tick, NULL);
    run_until(fx.loop, port_open, &port, 15000, "openssl s_server to listen");

    size_t ca_len, cert_len, key_len, other_len;
    char *ca = slurp("ca.pem", &ca_len), *cert = slurp("cli.pem", &cert_len);
    char *key = slurp("cli.key", &key_len), *other = slurp("other.pem", &other_len);
    char url[64], cli_pem[300], cli_key[300];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    snprintf(cli_pem, sizeof cli_pem, "%s/cli.pem", tmpdir);
    snprintf(cli_key, sizeof cli_key, "%s/cli.key", tmpdir);

    /* PEM bytes (certificate-authority-data, client-*-data) and tls-server-name */
    jg_k8s_cluster_config_t cfg = {.server = url, .ca_pem = ca, .ca_pem_len = ca_len,
                                   .cert_pem = cert, .cert_pem_len = cert_len,
                                   .key_pem = key, .key_pem_len = key_len,
                                   .tls_server_name = "k8s.test"};
    answer_t a = tls_get(&cfg);
    cr_assert_eq(a.status, 200, "blobs: %s", a.described);

    /* files */
    cfg = (jg_k8s_cluster_config_t){.server = url, .ca_file = ca_pem_path, .cert_file = cli_pem,
                                    .key_file = cli_key, .tls_server_name = "k8s.test"};
    a = tls_get(&cfg);
    cr_assert_eq(a.status, 200, "files: %s", a.described);

    /* without tls-server-name the name 127.0.0.1 is not in the certificate */
    cfg = (jg_k8s_cluster_config_t){.server = url, .ca_pem = ca, .ca_pem_len = ca_len,
                                    .cert_pem = cert, .cert_pem_len = cert_len,
                                    .key_pem = key, .key_pem_len = key_len};
    a = tls_get(&cfg);
    cr_assert(a.transport_error && a.status == 0, "name mismatch accepted: %s", a.described);

    /* another CA does not vouch for the server */
    cfg.ca_pem = other;
    cfg.ca_pem_len = other_len;
    cfg.tls_server_name = "k8s.test";
    a = tls_get(&cfg);
    cr_assert(a.transport_error && a.status == 0, "wrong CA accepted: %s", a.described);

    /* insecure-skip-tls-verify: neither CA nor name checked */
    cfg = (jg_k8s_cluster_config_t){.server = url, .insecure_skip_tls_verify = true,
                                    .cert_pem = cert, .cert_pem_len = cert_len,
                                    .key_pem = key, .key_pem_len = key_len};
    a = tls_get(&cfg);
    cr_assert_eq(a.status, 200, "insecure: %s", a.described);

    /* an exec plugin's clientCertificateData / clientKeyData */
    write_file("cert-plugin",
               "#!/bin/sh\n"
               "pem() { awk '{printf \"%s\\\\n\", $0}' \"$1\"; }\n"
               "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":"
               "\"ExecCredential\",\"status\":{\"clientCertificateData\":\"%s\","
               "\"clientKeyData\":\"%s\"}}' \"$(pem \"$JG_DIR/cli.pem\")\" "
               "\"$(pem \"$JG_DIR/cli.key\")\"\n", 0755);
    char plugin[300];
    snprintf(plugin, sizeof plugin, "%s/cert-plugin", tmpdir);
    jg_k8s_env_t env[] = {{"JG_DIR", tmpdir}};
    cfg = (jg_k8s_cluster_config_t){.server = url, .ca_pem = ca, .ca_pem_len = ca_len,
                                    .tls_server_name = "k8s.test",
                                    .exec = {.command = plugin, .env = env, .n_env = 1,
                                             .api_version = "client.authentication.k8s.io/v1beta1"}};
    a = tls_get(&cfg);
    cr_assert_eq(a.status, 200, "exec client certificate: %s", a.described);

    /* the server demands a client certificate */
    cfg = (jg_k8s_cluster_config_t){.server = url, .ca_pem = ca, .ca_pem_len = ca_len,
                                    .tls_server_name = "k8s.test"};
    a = tls_get(&cfg);
    cr_assert_neq(a.status, 200, "no client certificate accepted: %s", a.described);

    free(ca);
    free(cert);
    free(key);
    free(other);
    jg_loop_destroy(fx.loop);
}

Test(k8s_auth, a_hanging_exec_plugin_is_killed_after_its_timeout, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    /* exec: the plugin is the process killed, nothing of it is left behind */
    write_file("hang", "#!/bin/sh\nexec sleep 30\n", 0755);
    char hang[300];
    snprintf(hang, sizeof hang, "%s/hang", tmpdir);
    jg_k8s_cluster_config_t cfg = {.exec = {.command = hang, .timeout_ms = 200,
                                            .api_version = "client.authentication.k8s.io/v1"}};
    fx_start_cfg(h_ok, &cfg);
    answer_t a = {0};
    get("/api/v1/pods", &a);
    run_until(fx.loop, is_done, &a, 10000, "the plugin's timeout");
    cr_assert(a.transport_error);
    cr_assert(strstr(a.message, "killed by signal 9"), "%s", a.message);
    cr_assert_eq(fx.server->n_reqs, 0);
    fx_stop();
}

static char *big_line;

static void h_big_line(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    (void)i;
    ts_stream_begin(c);
    size_t len = strlen(big_line);
    for (size_t off = 0; off < len; off += 65536) {
        char save = 0;
        size_t n = len - off < 65536 ? len - off : 65536;
        save = big_line[off + n];
        big_line[off + n] = '\0';
        ts_chunk(c, big_line + off);
        big_line[off + n] = save;
    }
    ts_stream_end(c);
}

Test(k8s_client, a_large_object_streamed_in_many_chunks_is_one_line)
{
    size_t pad = 4 << 20;
    big_line = jg_xmalloc(pad + 200);
    int n = sprintf(big_line, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"big\"},\"data\":\"");
    memset(big_line + n, 'x', pad);
    strcpy(big_line + n + pad, "\"}}\n{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"next\"}}}\n");
    fx_start(h_big_line, NULL, NULL);
    answer_t a = {0};
    jg_k8s_request_opts_t o = {.method = "GET", .path = "/api/v1/pods", .query = "watch=1",
                               .on_line = on_line, .on_done = on_done, .ctx = &a};
    cr_assert_not_null(jg_k8s_request(fx.client, &o, NULL));
    run_until(fx.loop, is_done, &a, 20000, "the end of the stream");
    cr_assert(!a.transport_error, "%s", a.described);
    cr_assert_eq(a.lines, 2);
    cr_assert_str_eq(a.line_names[0], "big");
    cr_assert_str_eq(a.line_names[1], "next");
    fx_stop();
    free(big_line);
}

/* ---------------- HTTP/2: many streams, one connection ---------------- */

static const char *H2_SERVER =
    "const http2 = require('http2'), fs = require('fs'), dir = process.argv[2];\n"
    "const server = http2.createSecureServer({key: fs.readFileSync(dir + '/srv.key'),\n"
    "  cert: fs.readFileSync(dir + '/srv.pem'), allowHTTP1: true});\n"
    "let sessions = 0;\n"
    "server.on('session', () => sessions++);\n"
    "server.on('request', (req, res) => {\n"
    "  res.writeHead(200, {'content-type': 'application/json'});\n"
    "  if (req.url.startsWith('/sessions')) {\n"
    "    res.end(JSON.stringify({kind: 'Sessions', metadata: {name: String(sessions)}}));\n"
    "    return;\n"
    "  }\n"
    "  res.write(JSON.stringify({type: 'ADDED', object: {metadata: {name: 'http-' + req.httpVersion}}}) + '\\n');\n"
    "});\n"
    "server.listen(0, '127.0.0.1', () => console.log(server.address().port));\n";

static int h2_port_fd = -1;

static bool h2_port_known(void *arg)
{
    int *port = arg;
    char buf[32];
    ssize_t n = read(h2_port_fd, buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        *port = atoi(buf);
    }
    return *port > 0;
}

static void on_sessions(void *ctx, const jg_k8s_response_t *resp)
{
    answer_t *a = ctx;
    on_done(ctx, resp);
    const char *name = json_string_value(
        json_object_get(json_object_get(resp->body, "metadata"), "name"));
    jg_strlcpy(a->line_names[0], name ? name : "?", sizeof a->line_names[0]);
}

static bool all_streams_started(void *arg)
{
    all_t *all = arg;
    for (int i = 0; i < all->n; i++)
        if (!all->a[i].lines)
            return false;
    return true;
}

Test(k8s_client, streams_share_one_http2_connection_over_tls, .init = make_tmpdir,
     .fini = tls_fini, .timeout = 60)
{
    if (system("command -v node >/dev/null 2>&1") != 0)
        cr_skip_test("node is not installed: no HTTP/2 server to test against");
    make_certificates();
    write_file("h2.js", H2_SERVER, 0644);
    char script[300];
    snprintf(script, sizeof script, "%s/h2.js", tmpdir);
    int out[2];
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char *argv[] = {"node", script, tmpdir, NULL};
    cr_assert_eq(posix_spawnp(&s_server_pid, "node", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    h2_port_fd = out[0];
    fcntl(h2_port_fd, F_SETFL, O_NONBLOCK);

    memset(&fx, 0, sizeof fx);
    fx.loop = jg_loop_create(NULL);
    jg_loop_add_timer(fx.loop, 50, tick, NULL);
    int port = 0;
    run_until(fx.loop, h2_port_known, &port, 20000, "the HTTP/2 server's port");
    close(h2_port_fd);

    size_t ca_len;
    char *ca = slurp("ca.pem", &ca_len);
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    jg_k8s_cluster_config_t cfg = {.server = url, .ca_pem = ca, .ca_pem_len = ca_len,
                                   .tls_server_name = "k8s.test"};
    jg_error_t err;
    fx.client = jg_k8s_client_create(fx.loop, &cfg, NULL, &err);
    cr_assert_not_null(fx.client, "%s", err.text);
    enum { N = 8 };
    answer_t a[N] = {0};
    for (int i = 0; i < N; i++) {
        jg_k8s_request_opts_t o = {.method = "GET", .path = "/api/v1/pods", .query = "watch=1",
                                   .on_line = on_line, .on_done = on_done, .ctx = &a[i]};
        a[i].req = jg_k8s_request(fx.client, &o, NULL);
    }
    all_t all = {a, N};
    run_until(fx.loop, all_streams_started, &all, 20000, "every stream's first event");
    for (int i = 0; i < N; i++)
        cr_assert_str_eq(a[i].line_names[0], "http-2.0");
    answer_t s = {0};
    jg_k8s_request_opts_t o = {.method = "GET", .path = "/sessions", .on_done = on_sessions,
                               .ctx = &s};
    cr_assert_not_null(jg_k8s_request(fx.client, &o, NULL));
    run_until(fx.loop, is_done, &s, 20000, "the session count");
    cr_assert_str_eq(s.line_names[0], "1", "%d streams and a request on one connection", N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(a[i].done, 0, "the streams are still open");
    jg_k8s_client_destroy(fx.client);
    fx.client = NULL;
    free(ca);
    jg_loop_destroy(fx.loop);
}

static void h_retry_after_30(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    (void)i;
    ts_respond(c, 429, "Retry-After: 30\r\n", "{\"kind\":\"Status\",\"code\":429}");
}

static bool waits_for_retry(void *arg)
{
    (void)arg;
    return fx.server->n_reqs == 1 && fx.server->reqs[0].conn->fd < 0;  /* answered, closed */
}

Test(k8s_client, a_request_waiting_for_its_retry_can_be_cancelled)
{
    fx_start(h_retry_after_30, NULL, NULL);
    answer_t a = {0};
    get("/api/v1/pods", &a);
    run_until(fx.loop, waits_for_retry, NULL, 10000, "the 429");
    jg_loop_add_timer(fx.loop, 50, stop_loop, NULL);
    jg_loop_run(fx.loop, NULL);
    cr_assert_eq(jg_k8s_client_pending(fx.client), 1, "waiting 30 s for its retry");
    jg_k8s_cancel(a.req);
    jg_loop_add_timer(fx.loop, 50, stop_loop, NULL);
    jg_loop_run(fx.loop, NULL);
    cr_assert_eq(jg_k8s_client_pending(fx.client), 0);
    cr_assert_eq(a.done, 0);
    cr_assert_eq(fx.server->n_reqs, 1);
    fx_stop();
}

static const act_t TWO_EVENTS[] = {
    {0, A_BEGIN, NULL},
    {0, A_CHUNK, "{\"type\":\"ADDED\",\"object\":" POD("x", "4") "}\n"
                 "{\"type\":\"ADDED\",\"object\":" POD("y", "5") "}\n"},
};

static void h_empty_list_then_two_events(ts_server_t *s, ts_conn_t *c, const ts_req_t *r, int i)
{
    (void)s;
    (void)r;
    if (i == 0)
        ts_respond(c, 200, NULL, "{\"metadata\":{\"resourceVersion\":\"3\"},\"items\":[]}");
    else
        ts_play(c, TWO_EVENTS, 2);
}

typedef struct {
    jg_k8s_watch_t *w;
    int events;
} stopper_t;

static void count_and_stop(void *ctx, jg_k8s_event_type_t t, json_t *obj)
{
    (void)t;
    (void)obj;
    stopper_t *st = ctx;
    st->events++;
    jg_k8s_watch_stop(st->w);
    st->w = NULL;
}

static bool stopper_stopped(void *arg)
{
    return ((stopper_t *)arg)->w == NULL;
}

Test(k8s_watch, a_watch_stopped_inside_a_streamed_event_hears_nothing_more)
{
    n_plays = 0;
    fx_start(h_empty_list_then_two_events, NULL, NULL);
    stopper_t st = {0};
    jg_k8s_watch_opts_t o = {.path = "/api/v1/namespaces/ns/pods", .on_event = count_and_stop,
                             .ctx = &st};
    st.w = jg_k8s_watch_start(fx.client, &o, NULL);
    run_until(fx.loop, stopper_stopped, &st, 10000, "the first streamed event");
    jg_loop_add_timer(fx.loop, 50, stop_loop, NULL);
    jg_loop_run(fx.loop, NULL);
    cr_assert_eq(st.events, 1, "the second event of the same chunk is not delivered");
    cr_assert_eq(jg_k8s_client_pending(fx.client), 0, "the stream was cancelled");
    fx_stop();
}
