/* client.h - asynchronous Kubernetes API requests on the daemon's loop.
 *
 * One client per API server: a libcurl multi handle whose sockets and timer
 * are watched by jgsched's loop (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION), so
 * no request ever blocks the loop and no thread is started.  Over HTTPS the
 * requests share HTTP/2 connections (many watch and log streams on one).
 *
 * A request either completes (on_done: status, parsed JSON, or the Status
 * error the API server sent) or streams (on_line: each JSON line of a watch,
 * reassembled across chunks; on_data: raw bytes, for logs) and then
 * completes.  429 and 5xx answers, and connection failures of idempotent
 * requests, are retried with exponential backoff and jitter, honouring
 * Retry-After, a bounded number of times; a streaming request is retried only
 * while nothing of it was delivered.  A 401 makes the client fetch fresh
 * credentials once (an exec plugin's token expired early) and try again.
 * A POST is retried after a 5xx too, so a create whose first attempt was
 * applied before the error may answer 409 AlreadyExists: jgsched's objects
 * have fixed names, and the backend takes AlreadyExists of its own object
 * as created (it must anyway, to resume after a daemon restart).
 *
 * Private to the Kubernetes backend.
 */
#ifndef JG_K8S_CLIENT_H
#define JG_K8S_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "auth.h"
#include "jgsched/error.h"
#include "jgsched/loop.h"

typedef struct jg_k8s_client jg_k8s_client_t;
typedef struct jg_k8s_request jg_k8s_request_t;

typedef struct {
    int max_attempts;           /* per request, retries included; 0: 6 */
    int backoff_base_ms;        /* first retry delay before jitter; 0: 250 */
    int backoff_max_ms;         /* cap on one delay (Retry-After included); 0: 30000 */
    int timeout_ms;             /* whole-request limit of non-streaming requests; 0: 30000 */
    int connect_timeout_ms;     /* 0: 10000 */
} jg_k8s_client_opts_t;

/* How a request ended.  Everything is borrowed for the duration of on_done. */
typedef struct {
    int status;                 /* HTTP status of the last attempt; 0: none received */
    json_t *body;               /* the parsed JSON body, or NULL (not JSON, empty, streamed) */
    const char *reason;         /* a Status' reason ("NotFound", "AlreadyExists"), or for a
                                 * transport failure curl's error; "" when none */
    const char *message;        /* a Status' message, or curl's detailed error; "" when none */
    json_t *causes;             /* a Status' details.causes array, or NULL */
    bool transport_error;       /* no complete answer: connection refused, reset, timeout
                                 * (a stream that was cut: status is then its 200) */
    int attempts;               /* how many were made */
} jg_k8s_response_t;

typedef void (*jg_k8s_done_f)(void *ctx, const jg_k8s_response_t *resp);
/* A streaming request's data, only while its status is 2xx (an error's body
 * goes to on_done as a Status).  `obj` / `data` are borrowed. */
typedef void (*jg_k8s_line_f)(void *ctx, json_t *obj);
typedef void (*jg_k8s_data_f)(void *ctx, const char *data, size_t len);

typedef struct {
    const char *method;         /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;           /* "/api/v1/namespaces/ns/pods" (not escaped here) */
    const char *query;          /* "labelSelector=a%3Db&watch=1" (escaped), or NULL */
    json_t *body;               /* borrowed; serialised when the request is made */
    const char *raw_body;       /* instead of body: these bytes as they are (NUL-terminated;
                                 * content_type default text/plain), e.g. to a pod's agent */
    const char *header;         /* one more header line ("X-Jgsched-Token: t"), or NULL */
    const char *content_type;   /* NULL: application/json (with a body); e.g.
                                 * application/merge-patch+json */
    int timeout_ms;             /* 0: the client's; streams (on_line/on_data): none */
    int max_attempts;           /* 0: the client's; 1: no retries */
    jg_k8s_line_f on_line;      /* set: the answer is a stream of JSON lines (watch) */
    jg_k8s_data_f on_data;      /* set: the answer is a raw byte stream (log) */
    jg_k8s_done_f on_done;      /* always called once, unless cancelled */
    void *ctx;
} jg_k8s_request_opts_t;

/* Takes the cluster configuration (copied; see auth.h).  opts may be NULL. */
jg_k8s_client_t *jg_k8s_client_create(jg_loop_t *loop, const jg_k8s_cluster_config_t *cfg,
                                      const jg_k8s_client_opts_t *opts, jg_error_t *err);
/* Frees the client and every request still in flight without calling their
 * callbacks.  Accepts NULL.  Not from inside one of its callbacks. */
void jg_k8s_client_destroy(jg_k8s_client_t *c);

/* Starts a request and returns its handle, valid until on_done returns or
 * jg_k8s_cancel.  Nothing is called back from inside this call.  Fails only
 * on a request that cannot be made (no method or path, a body that is not
 * serialisable). */
jg_k8s_request_t *jg_k8s_request(jg_k8s_client_t *c, const jg_k8s_request_opts_t *opts,
                                 jg_error_t *err);

/* Abandons a request: no callback of it is called any more.  Allowed from any
 * callback, including the request's own on_line/on_data (not its on_done). */
void jg_k8s_cancel(jg_k8s_request_t *req);

/* "GET /api/v1/...: 422 Invalid: <message> (spec.x: Required value; ...)" */
void jg_k8s_response_describe(const jg_k8s_response_t *resp, const char *what, char *buf,
                              size_t len);

/* How long to wait before retry number `attempt` (1 for the first retry):
 * Retry-After when the server sent one (retry_after_ms >= 0), else
 * base * 2^(attempt-1) with jitter in [50%, 100%], capped at max.  Exposed
 * for tests. */
int jg_k8s_backoff_ms(int attempt, int base_ms, int max_ms, int retry_after_ms);

/* The loop the client runs on. */
jg_loop_t *jg_k8s_client_loop(jg_k8s_client_t *c);

/* How many requests are in flight or waiting for a retry: for tests. */
size_t jg_k8s_client_pending(const jg_k8s_client_t *c);

#endif
