/* daemon_int.h - what the files of jgschedd's daemon share, and nothing else.
 *
 * The daemon is cut by concern (see the comment opening each file):
 *   daemon.c    create / run / destroy: config, store, logs, sched, signals
 *   server.c    the listening socket and the connections: peer credentials,
 *               each client's fair share of a loop turn, bounds, timeouts
 *   handlers.c  the table of request ops: parse, authorize, answer
 *   views.c     JSON shaping of groups, jobs, nodes, the queue and infra
 *   logs.c      reading nodes' logs into `logs` replies
 *   volumes.c   the volumes created through the CLI
 *   watches.c   pushing fresh snapshots to `watch` clients
 * Names shared between these files carry the prefix jgd_; the public
 * contract stays include/jgsched/daemon.h.
 */
#ifndef JGSCHED_DAEMON_INT_H
#define JGSCHED_DAEMON_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "jgsched/config.h"
#include "jgsched/daemon.h"
#include "jgsched/fsutil.h"
#include "jgsched/logstore.h"
#include "jgsched/loop.h"
#include "jgsched/proto.h"
#include "jgsched/sched.h"
#include "jgsched/spec.h"
#include "jgsched/store.h"

typedef struct jgd_conn jgd_conn_t;
typedef struct jgd_peer jgd_peer_t;
typedef struct jgd_watch jgd_watch_t;

/* One client connection (server.c owns it; handlers read who is asking). */
struct jgd_conn {
    jg_daemon_t *daemon;
    jgd_peer_t *peer;
    int fd;
    uid_t uid;                      /* from SO_PEERCRED, never from the request */
    gid_t gid;
    pid_t pid;
    char user[64];
    jg_linebuf_t in;
    char *out;
    size_t out_len, out_off, out_cap;
    size_t counted_in, counted_out; /* what peer and daemon totals hold for it */
    uint32_t events;                /* the epoll interest set now */
    int64_t partial_since_ms;       /* an unfinished request began; 0: none */
    jgd_watch_t *watch;             /* the group being watched, NULL if none */
    bool read_eof;                  /* the client shut down its side */
    bool held_back;                 /* requests wait for replies to be taken */
    bool close_after_flush;
    int extra_cost;                 /* a request that did the work of several (submit
                                     * with count) charges this many more to its turn */
    jgd_conn_t *prev, *next;
};

struct jg_daemon {
    jg_paths_t paths;
    jg_loop_t *loop;
    jg_store_t *store;
    jg_config_t *config;
    jg_sched_t *sched;
    int listen_fd;
    int signal_fd;
    jgd_conn_t *conns;
    jg_trash_t *trash;          /* <home>/volumes/.trash: removed volumes, deleted off the loop */
    jg_logstore_t *logs;        /* <state_dir>/logs: every node's output (sched writes it) */
    jgd_peer_t *peers;
    size_t in_bytes, out_bytes;     /* over all connections */
    bool accept_paused;
    uint64_t accept_timer;
    uint64_t sweep_timer;           /* checks unfinished requests; 0: not armed */
    jg_log_limit_t log_refused, log_accept, log_overflow;
    jgd_watch_t *watches;           /* groups some connection watches */
    int64_t *dirty;                 /* groups changed since the last prepare */
    size_t n_dirty, cap_dirty;
    bool stopping;
    jg_jsonw_t reply_text;          /* a reply written as text (a queue page), reused */
};

/* ---------------------------------------------------------------- server.c */

/* Binds and listens at d->paths.socket (refusing if another daemon answers
 * there) and starts accepting on d->loop.  -1 + err. */
int jgd_server_listen(jg_daemon_t *d, jg_error_t *err);

/* Closes every connection, then the listening socket (removing its path). */
void jgd_server_close(jg_daemon_t *d);

/* Hands each connection what is queued for it (the shutdown reply) with a
 * blocking send: the loop has ended and no one else waits. */
void jgd_server_flush_all(jg_daemon_t *d);

/* Queues a reply on c and flushes what the socket takes (steals msg).
 * Returns -1 if the connection was closed (c is then freed). */
int jgd_conn_send(jgd_conn_t *c, json_t *msg);
/* Queues a reply already written as text (one JSON object, no newline). */
int jgd_conn_send_text(jgd_conn_t *c, jg_jsonw_t *text);

/* -------------------------------------------------------------- handlers.c */

/* The reply to one decoded request, or NULL when the op wrote its reply as
 * one JSON object's text into *text (emptied first; the caller sends it). */
json_t *jgd_dispatch(jgd_conn_t *c, json_t *req, jg_jsonw_t *text);

/* ----------------------------------------------------------------- views.c */

/* A group's spec as group details show it, parsed from the stored text. */
typedef struct {
    jg_group_spec_t *spec;
    json_t *json;               /* the spec's JSON text loaded; NULL: unreadable */
} jgd_spec_view_t;

void jgd_spec_view_clear(jgd_spec_view_t *v);

/* GROUP_SUMMARY of docs/protocol.md; jobs are the group's job rows. */
json_t *jgd_view_group(const jg_group_row_t *g, const jg_job_row_t *jobs, size_t n_jobs);

/* GROUP_DETAIL of group id from the store, events included on request.  When
 * spec->spec is NULL the stored spec is parsed into *spec, which the caller
 * then owns (and may keep, so the next detail costs no parse); otherwise
 * *spec is used as it is.  NULL + err. */
json_t *jgd_view_group_detail(jg_store_t *store, int64_t id, bool with_events,
                              jgd_spec_view_t *spec, jg_error_t *err);

/* GROUP_SUMMARY's text, appended to w. */
void jgd_view_group_text(jg_jsonw_t *w, const jg_group_row_t *g, const jg_job_row_t *jobs,
                         size_t n_jobs);

/* One queue page of rows[0..n) (lowest id first) with their jobs (jobs of
 * all listed groups, ordered by group id), appended to w as a JSON array: as
 * many groups as fit in page_bytes of it, one at least.  Sets *more when some
 * did not fit, *last_id to the id of the last one listed (after_id if none). */
void jgd_view_queue_page(jg_jsonw_t *w, const jg_group_row_t *rows, size_t n,
                         const jg_job_row_t *jobs, size_t n_jobs, size_t page_bytes,
                         int64_t after_id, bool *more, int64_t *last_id);

/* The `infra` item of one backend instance: capacity, use, groups holding
 * and waiting, notes. */
json_t *jgd_view_infra_backend(const jg_daemon_t *d, const jg_sched_infra_t *b);

/* ------------------------------------------------------------------ logs.c */

/* The `logs` reply for group row (the caller checked the caller may see it):
 * chunks of the nodes of job (NULL: every job) with rank want_rank (-1:
 * every rank), each from its offset in offsets (a JSON object, may be NULL),
 * at most max bytes each. */
json_t *jgd_logs_reply(jg_daemon_t *d, const jg_group_row_t *row, const char *job,
                       int want_rank, json_t *offsets, size_t max);

/* --------------------------------------------------------------- volumes.c */

/* The directory of volume name: config-declared first, then created ones.
 * Caller frees; NULL when there is none.  (sched's volume_path callback.) */
char *jgd_volume_path(void *daemon, const char *name);

/* The replies of volume_create, volume_ls and volume_rm, for caller c. */
json_t *jgd_volume_create(jgd_conn_t *c, const char *name);
json_t *jgd_volume_list(jg_daemon_t *d);
json_t *jgd_volume_remove(jgd_conn_t *c, const char *name);

/* --------------------------------------------------------------- watches.c */

/* Makes c watch group id (and stop watching any other).  The group's parsed
 * spec is kept while anyone watches it, so pushes cost no parse: *spec is
 * taken over (left empty) unless the group's spec is kept already. */
void jgd_watch_start(jgd_conn_t *c, int64_t id, jgd_spec_view_t *spec);

/* c stops watching (its connection closes).  Accepts a c that watches nothing. */
void jgd_watch_stop(jgd_conn_t *c);

/* sched's change callback: notes that group id changed this turn. */
void jgd_watch_group_changed(void *daemon, int64_t id);

/* Sends each watcher of a changed group its fresh snapshot (one per turn). */
void jgd_watch_push(jg_daemon_t *d);

/* Frees what watches and the change list hold (the connections are gone). */
void jgd_watch_free_all(jg_daemon_t *d);

#endif
