/* watch.h - one list+watch per kind, resumed so that no change is lost.
 *
 * Lists the collection (paged), reports every object as ADDED, then watches
 * from the list's resourceVersion with bookmarks.  The last resourceVersion
 * seen (from events and bookmarks) is where a dropped or ended stream
 * resumes.  When the server no longer has it (410 Gone, as the HTTP status or
 * as an ERROR event), the collection is listed again and compared with what
 * was known: the differences are reported as synthetic ADDED / MODIFIED /
 * DELETED, so the caller sees every object's final state even across the
 * gap.  Failures are retried with exponential backoff, for ever, until the
 * watch is stopped; after a few in a row the caller is told that the server
 * does not answer, and the next attempt is a fresh list, whose completion
 * tells it that the server answers again.
 *
 * Private to the Kubernetes backend.
 */
#ifndef JG_K8S_WATCH_H
#define JG_K8S_WATCH_H

#include <jansson.h>
#include <stdbool.h>

#include "client.h"

typedef enum { JG_K8S_ADDED, JG_K8S_MODIFIED, JG_K8S_DELETED } jg_k8s_event_type_t;

/* obj is borrowed (json_incref to keep it).  For DELETED found by a relist it
 * is the last state known.  The callback may stop the watch. */
typedef void (*jg_k8s_watch_event_f)(void *ctx, jg_k8s_event_type_t type, json_t *obj);
/* After every complete (re)list and its events: the known set is current. */
typedef void (*jg_k8s_watch_synced_f)(void *ctx);
/* The server stopped answering (answering false: `unhealthy_after` failures in
 * a row; why is the last one) or answers again (true: the first complete list
 * after that, before its events; why is NULL).  The callback may stop the
 * watch. */
typedef void (*jg_k8s_watch_health_f)(void *ctx, bool answering, const char *why);

typedef struct {
    const char *path;               /* collection: "/api/v1/namespaces/ns/pods" */
    const char *label_selector;     /* unescaped, or NULL */
    const char *field_selector;     /* unescaped, or NULL */
    int page_size;                  /* list limit; 0: 500 */
    int watch_timeout_s;            /* timeoutSeconds of one stream; 0: 300 */
    int backoff_base_ms;            /* 0: 500 */
    int backoff_max_ms;             /* 0: 30000 */
    jg_k8s_watch_event_f on_event;
    jg_k8s_watch_synced_f on_synced;    /* may be NULL */
    int unhealthy_after;            /* failures in a row that make it unhealthy; 0: 3 */
    jg_k8s_watch_health_f on_health;    /* may be NULL */
    void *ctx;
} jg_k8s_watch_opts_t;

typedef struct jg_k8s_watch jg_k8s_watch_t;

/* Starts listing; events follow from the loop.  Strings are copied. */
jg_k8s_watch_t *jg_k8s_watch_start(jg_k8s_client_t *c, const jg_k8s_watch_opts_t *opts,
                                   jg_error_t *err);
/* No callback after this.  Accepts NULL; allowed from the watch's callbacks. */
void jg_k8s_watch_stop(jg_k8s_watch_t *w);

/* The resourceVersion a resumed stream would start from ("" before the first list). */
const char *jg_k8s_watch_resource_version(const jg_k8s_watch_t *w);
/* The object known under "namespace/name", or NULL; borrowed. */
json_t *jg_k8s_watch_get(const jg_k8s_watch_t *w, const char *ns, const char *name);

typedef struct {
    unsigned lists;         /* complete lists (the first included) */
    unsigned streams;       /* watch streams opened */
    unsigned errors;        /* failures that led to a backoff */
} jg_k8s_watch_stats_t;
jg_k8s_watch_stats_t jg_k8s_watch_stats(const jg_k8s_watch_t *w);

#endif
