/* client.c - Kubernetes API requests over libcurl's multi interface, on the loop.
 *
 * libcurl tells us which sockets to watch and when its next timeout is due
 * (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION); the loop calls back into
 * curl_multi_socket_action when one is ready.  Nothing here blocks: DNS runs
 * in curl's resolver, TLS handshakes and HTTP/2 framing are driven by socket
 * readiness.
 *
 * A request goes QUEUED -> (WAIT_AUTH) -> ACTIVE -> done, or ACTIVE ->
 * WAIT_RETRY -> QUEUED again.  Queued requests are started, and cancelled
 * ones freed, from a zero-delay loop timer ("service"), never from inside a
 * libcurl callback: libcurl forbids adding or removing handles there, and the
 * caller's callbacks (which may start or cancel requests) run inside curl's
 * write callback.  That also keeps the promise that nothing is called back
 * from inside jg_k8s_request().
 *
 * Each attempt re-applies the easy handle's options from scratch, because
 * the credentials may have changed in between (a rotated token file, a new
 * exec credential).
 */
#include "client.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "jg_config.h"

#define MAX_BODY_BYTES (256u << 20)     /* a list of every pod of a big namespace */
#define MAX_LINE_BYTES (32u << 20)      /* one watch event: one object */

typedef enum { REQ_QUEUED, REQ_WAIT_AUTH, REQ_ACTIVE, REQ_WAIT_RETRY, REQ_CANCELLED } req_state_t;

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

struct jg_k8s_request {
    jg_k8s_client_t *client;
    jg_k8s_request_t *prev, *next;
    req_state_t state;
    char *method, *url, *content_type, *header;
    char *body;                 /* serialised once: the same bytes on every attempt */
    bool idempotent;
    int timeout_ms, max_attempts;
    jg_k8s_line_f on_line;
    jg_k8s_data_f on_data;
    jg_k8s_done_f on_done;
    void *ctx;

    CURL *easy;
    bool in_multi;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t retry_timer;
    int attempt;                /* attempts started */
    bool auth_retried;
    unsigned auth_gen;

    /* the current attempt's answer */
    long status;
    int retry_after_ms;         /* -1: none */
    bool delivered;             /* a stream gave something to the caller */
    buf_t body_in;              /* non-streamed (or error) body */
    buf_t line;                 /* a watch line not yet complete */
    size_t line_scanned;        /* how much of it is known to hold no newline: each
                                 * byte is searched once, however the line is chunked */
    char stream_error[256];
};

struct jg_k8s_client {
    jg_loop_t *loop;
    CURLM *multi;
    jg_k8s_auth_t *auth;
    jg_k8s_client_opts_t opts;
    uint64_t curl_timer, service_timer;
    jg_k8s_request_t *head;
    size_t n_requests;
    bool auth_refreshing;
};

static void buf_append(buf_t *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = jg_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_free(buf_t *b)
{
    free(b->data);
    *b = (buf_t){0};
}

/* ---- backoff ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    if (!rng_state)
        rng_state = ((uint64_t)jg_now_wall_us() << 16) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

int jg_k8s_backoff_ms(int attempt, int base_ms, int max_ms, int retry_after_ms)
{
    if (retry_after_ms >= 0)
        return retry_after_ms < max_ms ? retry_after_ms : max_ms;
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    /* jitter in [d/2, d]: many clients that failed together do not retry together */
    int64_t half = d / 2;
    return (int)(d - (half > 0 ? (int64_t)(rng_next() % (uint64_t)(half + 1)) : 0));
}

/* ---- scheduling work outside libcurl's callbacks ---- */

static void service(jg_loop_t *loop, void *arg);

static void schedule_service(jg_k8s_client_t *c)
{
    if (!c->service_timer)
        c->service_timer = jg_loop_add_timer(c->loop, 0, service, c);
}

static void request_free(jg_k8s_request_t *r)
{
    jg_k8s_client_t *c = r->client;
    if (r->in_multi)
        curl_multi_remove_handle(c->multi, r->easy);
    if (r->retry_timer)
        jg_loop_cancel_timer(c->loop, r->retry_timer);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_free(&r->body_in);
    buf_free(&r->line);
    free(r->method);
    free(r->url);
    free(r->content_type);
    free(r->header);
    free(r->body);
    if (r->prev)
        r->prev->next = r->next;
    else
        c->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    c->n_requests--;
    free(r);
}

/* ---- curl callbacks ---- */

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    jg_k8s_request_t *r = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        r->retry_after_ms = -1;     /* a new response (after a 100 Continue, say) */
    } else if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char value[64];
        size_t vl = len - 12 < sizeof value - 1 ? len - 12 : sizeof value - 1;
        memcpy(value, data + 12, vl);
        value[vl] = '\0';
        char *v = value;
        while (*v == ' ' || *v == '\t')
            v++;
        for (char *e = v + strlen(v); e > v && isspace((unsigned char)e[-1]); e--)
            e[-1] = '\0';
        char *end;
        long secs = strtol(v, &end, 10);
        if (end != v && *end == '\0' && secs >= 0) {
            r->retry_after_ms = secs > 86400 ? 86400000 : (int)secs * 1000;
        } else {
            time_t when = curl_getdate(v, NULL);    /* the HTTP-date form */
            if (when > 0) {
                time_t now = time(NULL);
                r->retry_after_ms = when > now ? (int)((when - now > 86400 ? 86400 : when - now) * 1000)
                                               : 0;
            }
        }
    }
    return len;
}

static bool deliver_lines(jg_k8s_request_t *r, bool final)
{
    char *start = r->line.data;
    char *end = r->line.data + r->line.len;
    char *from = start + r->line_scanned;
    while (start < end && r->state != REQ_CANCELLED) {
        char *nl = from < end ? memchr(from, '\n', (size_t)(end - from)) : NULL;
        if (!nl && !final)
            break;
        char *stop = nl ? nl : end;
        size_t n = (size_t)(stop - start);
        while (n && isspace((unsigned char)start[n - 1]))
            n--;
        if (n) {
            json_error_t jerr;
            json_t *obj = json_loadb(start, n, 0, &jerr);
            if (!obj) {
                snprintf(r->stream_error, sizeof r->stream_error,
                         "a streamed line is not JSON: %s", jerr.text);
                return false;
            }
            r->on_line(r->ctx, obj);
            json_decref(obj);
        }
        start = nl ? nl + 1 : end;
        from = start;
    }
    size_t rest = (size_t)(end - start);
    if (r->line.data && start != r->line.data) {    /* else nothing was consumed */
        memmove(r->line.data, start, rest);
        r->line.len = rest;
        r->line.data[rest] = '\0';
    }
    r->line_scanned = rest;
    if (rest > MAX_LINE_BYTES) {
        snprintf(r->stream_error, sizeof r->stream_error, "a streamed line exceeds %u bytes",
                 MAX_LINE_BYTES);
        return false;
    }
    return true;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    jg_k8s_request_t *r = arg;
    size_t len = size * n;
    if (r->state == REQ_CANCELLED)
        return 0;                   /* abort: it is freed once curl lets it go */
    if (!r->status)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    bool streamed = (r->on_line || r->on_data) && r->status >= 200 && r->status < 300;
    if (!streamed) {
        if (r->body_in.len + len > MAX_BODY_BYTES) {
            snprintf(r->stream_error, sizeof r->stream_error, "the answer exceeds %u bytes",
                     MAX_BODY_BYTES);
            return 0;
        }
        buf_append(&r->body_in, data, len);
        return len;
    }
    r->delivered = true;
    if (r->on_data) {
        r->on_data(r->ctx, data, len);
        return r->state == REQ_CANCELLED ? 0 : len;
    }
    buf_append(&r->line, data, len);
    if (!deliver_lines(r, false))
        return 0;
    return r->state == REQ_CANCELLED ? 0 : len;
}

static void on_socket_ready(jg_loop_t *loop, int fd, uint32_t revents, void *arg);

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    jg_k8s_client_t *c = userp;
    if (what == CURL_POLL_REMOVE) {
        if (socketp) {
            jg_loop_del_fd(c->loop, s);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    uint32_t events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    jg_error_t err;
    if (!socketp) {
        if (jg_loop_add_fd(c->loop, s, events, on_socket_ready, c, &err) < 0) {
            jg_log("error", "kubernetes client: %s", err.text);
            return -1;
        }
        curl_multi_assign(c->multi, s, c);      /* any non-NULL marker: watched */
    } else if (jg_loop_mod_fd(c->loop, s, events, &err) < 0) {
        jg_log("error", "kubernetes client: %s", err.text);
        return -1;
    }
    return 0;
}

static void check_done(jg_k8s_client_t *c);

static void on_curl_timeout(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_k8s_client_t *c = arg;
    c->curl_timer = 0;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    jg_k8s_client_t *c = userp;
    if (c->curl_timer) {
        jg_loop_cancel_timer(c->loop, c->curl_timer);
        c->curl_timer = 0;
    }
    if (timeout_ms >= 0)
        c->curl_timer = jg_loop_add_timer(c->loop, timeout_ms, on_curl_timeout, c);
    return 0;
}

static void on_socket_ready(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    jg_k8s_client_t *c = arg;
    int flags = 0;
    if (revents & (EPOLLIN | EPOLLHUP))
        flags |= CURL_CSELECT_IN;
    if (revents & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (revents & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    check_done(c);
}

/* ---- attempts ---- */

static void finish(jg_k8s_request_t *r, CURLcode result);

static void fail_now(jg_k8s_request_t *r, const char *reason, const char *message)
{
    jg_k8s_response_t resp = {.reason = reason, .message = message, .transport_error = true,
                              .attempts = r->attempt};
    if (r->on_done)
        r->on_done(r->ctx, &resp);
    request_free(r);
}

static int setup_easy(jg_k8s_request_t *r, jg_error_t *err)
{
    jg_k8s_client_t *c = r->client;
    CURL *e = r->easy;
    curl_easy_reset(e);
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    r->headers = curl_slist_append(r->headers, "Accept: application/json");
    r->headers = curl_slist_append(r->headers, "Expect:");   /* no 100-continue round trip */
    if (r->header)
        r->headers = curl_slist_append(r->headers, r->header);
    if (r->body) {
        char *ct = jg_xasprintf("Content-Type: %s",
                                r->content_type ? r->content_type : "application/json");
        r->headers = curl_slist_append(r->headers, ct);
        free(ct);
    }
    if (jg_k8s_auth_apply(c->auth, e, &r->headers, &r->auth_gen, err) < 0)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "jgsched/" JG_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    /* HTTP/2 over TLS (negotiated by ALPN), one connection for many streams */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->opts.connect_timeout_ms);
    if (r->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    if (strcmp(r->method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    if (r->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
    }
    return 0;
}

static void start_attempt(jg_k8s_request_t *r, bool auth_checked)
{
    jg_k8s_client_t *c = r->client;
    if (!auth_checked && !jg_k8s_auth_usable(c->auth)) {
        r->state = REQ_WAIT_AUTH;
        if (!c->auth_refreshing) {
            c->auth_refreshing = true;
            jg_k8s_auth_refresh(c->auth);
        }
        return;
    }
    jg_error_t err;
    r->attempt++;
    r->status = 0;
    r->retry_after_ms = -1;
    r->delivered = false;
    r->errbuf[0] = '\0';
    r->stream_error[0] = '\0';
    r->body_in.len = 0;
    r->line.len = 0;
    r->line_scanned = 0;
    if (setup_easy(r, &err) < 0) {
        fail_now(r, "CredentialsUnavailable", err.text);
        return;
    }
    CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
    if (mc != CURLM_OK) {
        fail_now(r, "ClientError", curl_multi_strerror(mc));
        return;
    }
    r->in_multi = true;
    r->state = REQ_ACTIVE;
}

static void service(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_k8s_client_t *c = arg;
    c->service_timer = 0;
    /* Restart the scan after every step: a step may call back into the caller,
     * who may cancel or add any request. */
    for (bool again = true; again;) {
        again = false;
        for (jg_k8s_request_t *r = c->head; r; r = r->next) {
            if (r->state == REQ_CANCELLED) {
                request_free(r);
                again = true;
                break;
            }
            if (r->state == REQ_QUEUED) {
                start_attempt(r, false);
                again = true;
                break;
            }
        }
    }
}

static void on_retry_due(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_k8s_request_t *r = arg;
    r->retry_timer = 0;
    r->state = REQ_QUEUED;
    schedule_service(r->client);
}

static void on_auth_ready(void *ctx, bool ok, const jg_error_t *err)
{
    jg_k8s_client_t *c = ctx;
    c->auth_refreshing = false;
    for (bool again = true; again;) {
        again = false;
        for (jg_k8s_request_t *r = c->head; r; r = r->next) {
            if (r->state != REQ_WAIT_AUTH)
                continue;
            if (ok)
                start_attempt(r, true);
            else
                fail_now(r, "CredentialsUnavailable", err ? err->text : "no credentials");
            again = true;
            break;
        }
    }
}

static bool is_idempotent(const char *method)
{
    return !strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "PUT") ||
           !strcmp(method, "DELETE");
}

static void handle_done(jg_k8s_request_t *r, CURLcode result)
{
    jg_k8s_client_t *c = r->client;
    curl_multi_remove_handle(c->multi, r->easy);
    r->in_multi = false;
    if (r->state == REQ_CANCELLED) {
        request_free(r);
        return;
    }
    if (!r->status)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    bool transport = result != CURLE_OK;
    if (r->status == 401 && !r->auth_retried && !r->delivered &&
        jg_k8s_auth_invalidate(c->auth, r->auth_gen)) {
        r->auth_retried = true;     /* once: the credentials were stale, not wrong */
        r->state = REQ_QUEUED;
        schedule_service(c);
        return;
    }
    bool retryable;
    if (transport)
        retryable = !r->delivered && !r->stream_error[0] &&
                    (r->idempotent || (r->status == 0 && (result == CURLE_COULDNT_CONNECT ||
                                                          result == CURLE_COULDNT_RESOLVE_HOST)));
    else
        retryable = r->status == 429 || r->status >= 500;
    if (retryable && r->attempt < r->max_attempts) {
        int delay = jg_k8s_backoff_ms(r->attempt, c->opts.backoff_base_ms, c->opts.backoff_max_ms,
                                      transport ? -1 : r->retry_after_ms);
        r->state = REQ_WAIT_RETRY;
        r->retry_timer = jg_loop_add_timer(c->loop, delay, on_retry_due, r);
        return;
    }
    finish(r, result);
}

static void check_done(jg_k8s_client_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        jg_k8s_request_t *r;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        handle_done(r, m->data.result);
    }
}

static void finish(jg_k8s_request_t *r, CURLcode result)
{
    jg_k8s_response_t resp = {.status = (int)r->status, .reason = "", .message = "",
                              .attempts = r->attempt};
    json_t *body = NULL;
    char message[512];
    bool streamed = (r->on_line || r->on_data) && r->status >= 200 && r->status < 300;
    if (streamed && r->on_line && result == CURLE_OK && r->line.len)
        deliver_lines(r, true);     /* a last line without its newline */
    if (r->state == REQ_CANCELLED) {
        request_free(r);
        return;
    }
    if (result != CURLE_OK || r->stream_error[0]) {
        resp.transport_error = true;
        resp.reason = curl_easy_strerror(result);
        resp.message = r->stream_error[0] ? r->stream_error : r->errbuf[0] ? r->errbuf : resp.reason;
    }
    if (!streamed && r->body_in.len) {
        body = json_loadb(r->body_in.data, r->body_in.len, 0, NULL);
        resp.body = body;
        const char *kind = json_string_value(json_object_get(body, "kind"));
        if (body && kind && !strcmp(kind, "Status") && (r->status < 200 || r->status >= 300)) {
            const char *reason = json_string_value(json_object_get(body, "reason"));
            const char *msg = json_string_value(json_object_get(body, "message"));
            json_t *causes = json_object_get(json_object_get(body, "details"), "causes");
            resp.reason = reason ? reason : "";
            resp.message = msg ? msg : "";
            resp.causes = json_is_array(causes) ? causes : NULL;
        } else if (!body && (r->status < 200 || r->status >= 300) && !resp.transport_error) {
            jg_strlcpy(message, r->body_in.data, sizeof message);   /* a proxy's text */
            resp.message = message;
        }
    }
    if (r->on_done)
        r->on_done(r->ctx, &resp);
    json_decref(body);
    request_free(r);
}

/* ---- public ---- */

jg_k8s_client_t *jg_k8s_client_create(jg_loop_t *loop, const jg_k8s_cluster_config_t *cfg,
                                      const jg_k8s_client_opts_t *opts, jg_error_t *err)
{
    static bool curl_ready;
    if (!curl_ready) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
            jg_errprintf(err, "libcurl: %s", curl_easy_strerror(rc));
            return NULL;
        }
        curl_ready = true;
    }
    jg_k8s_client_t *c = jg_xcalloc(1, sizeof *c);
    c->loop = loop;
    if (opts)
        c->opts = *opts;
    if (c->opts.max_attempts <= 0)
        c->opts.max_attempts = 6;
    if (c->opts.backoff_base_ms <= 0)
        c->opts.backoff_base_ms = 250;
    if (c->opts.backoff_max_ms <= 0)
        c->opts.backoff_max_ms = 30000;
    if (c->opts.timeout_ms <= 0)
        c->opts.timeout_ms = 30000;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = 10000;
    c->auth = jg_k8s_auth_create(loop, cfg, on_auth_ready, c, err);
    if (!c->auth) {
        free(c);
        return NULL;
    }
    c->multi = curl_multi_init();
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* the server's SETTINGS bound it further (kube-apiserver: 100 or 250) */
    curl_multi_setopt(c->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
    return c;
}

void jg_k8s_client_destroy(jg_k8s_client_t *c)
{
    if (!c)
        return;
    while (c->head)
        request_free(c->head);
    curl_multi_cleanup(c->multi);
    if (c->curl_timer)
        jg_loop_cancel_timer(c->loop, c->curl_timer);
    if (c->service_timer)
        jg_loop_cancel_timer(c->loop, c->service_timer);
    jg_k8s_auth_destroy(c->auth);
    free(c);
}

jg_k8s_request_t *jg_k8s_request(jg_k8s_client_t *c, const jg_k8s_request_opts_t *o,
                                 jg_error_t *err)
{
    if (!o->method || !o->method[0] || !o->path || o->path[0] != '/') {
        jg_errprintf(err, "kubernetes request: a method and an absolute path are required");
        return NULL;
    }
    char *body = NULL;
    if (o->raw_body) {
        body = jg_xstrdup(o->raw_body);
    } else if (o->body) {
        body = json_dumps(o->body, JSON_COMPACT);
        if (!body) {
            jg_errprintf(err, "kubernetes request %s %s: the body cannot be serialised",
                         o->method, o->path);
            return NULL;
        }
    }
    jg_k8s_request_t *r = jg_xcalloc(1, sizeof *r);
    r->client = c;
    r->method = jg_xstrdup(o->method);
    r->url = jg_xasprintf("%s%s%s%s", jg_k8s_auth_server(c->auth), o->path,
                          o->query && o->query[0] ? "?" : "", o->query ? o->query : "");
    r->content_type = jg_xstrdup(o->content_type ? o->content_type
                                 : o->raw_body ? "text/plain" : NULL);
    r->header = jg_xstrdup(o->header);
    r->body = body;
    r->idempotent = is_idempotent(o->method);
    bool stream = o->on_line || o->on_data;
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : stream ? 0 : c->opts.timeout_ms;
    r->max_attempts = o->max_attempts > 0 ? o->max_attempts : c->opts.max_attempts;
    r->on_line = o->on_line;
    r->on_data = o->on_line ? NULL : o->on_data;
    r->on_done = o->on_done;
    r->ctx = o->ctx;
    r->easy = curl_easy_init();
    if (!r->easy) {
        free(r->method);
        free(r->url);
        free(r->content_type);
        free(r->header);
        free(r->body);
        free(r);
        jg_errprintf(err, "libcurl: cannot create a transfer");
        return NULL;
    }
    r->retry_after_ms = -1;
    r->state = REQ_QUEUED;
    r->next = c->head;
    if (c->head)
        c->head->prev = r;
    c->head = r;
    c->n_requests++;
    schedule_service(c);
    return r;
}

void jg_k8s_cancel(jg_k8s_request_t *r)
{
    if (!r || r->state == REQ_CANCELLED)
        return;
    if (r->retry_timer) {
        jg_loop_cancel_timer(r->client->loop, r->retry_timer);
        r->retry_timer = 0;
    }
    r->state = REQ_CANCELLED;
    schedule_service(r->client);
}

jg_loop_t *jg_k8s_client_loop(jg_k8s_client_t *c)
{
    return c->loop;
}

size_t jg_k8s_client_pending(const jg_k8s_client_t *c)
{
    return c->n_requests;
}

void jg_k8s_response_describe(const jg_k8s_response_t *resp, const char *what, char *buf,
                              size_t len)
{
    int n;
    if (resp->transport_error)
        n = snprintf(buf, len, "%s: %s", what, resp->message[0] ? resp->message : resp->reason);
    else
        n = snprintf(buf, len, "%s: %d %s%s%s", what, resp->status, resp->reason,
                     resp->message[0] ? ": " : "", resp->message);
    size_t i;
    json_t *cause;
    json_array_foreach(resp->causes, i, cause) {
        if (n < 0 || (size_t)n >= len)
            break;
        const char *field = json_string_value(json_object_get(cause, "field"));
        const char *msg = json_string_value(json_object_get(cause, "message"));
        n += snprintf(buf + n, len - (size_t)n, "%s%s%s%s", i ? "; " : " (", field ? field : "",
                      field && msg ? ": " : "", msg ? msg : "");
        if (i + 1 == json_array_size(resp->causes) && (size_t)n < len)
            n += snprintf(buf + n, len - (size_t)n, ")");
    }
}
