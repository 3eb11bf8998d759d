/* daemon.c - jgschedd's socket server: connections, request dispatch, watches.
 *
 * Pipeline: a client line is decoded (proto), dispatched to one handler per op,
 * and the reply is queued on the connection's output buffer and flushed when
 * the socket is writable.  Handlers read the store for queries and call sched
 * for changes; they never block.  Watching clients are pushed a fresh group
 * snapshot once per loop turn in which their group changed (the prepare hook
 * also runs the scheduler's admission pass), so a burst of node events costs
 * one message, not one per event.
 *
 * Security model: the caller's uid/gid come from SO_PEERCRED at accept time;
 * the request never says who it is.  Everyone may list the queue; details,
 * logs and cancel belong to the group's owner and root.
 *
 * No client can hold up the others (docs/security.md): each connection gets a
 * bounded share of every loop turn (requests served, bytes read) and asks the
 * loop for another turn when it has more; every byte the daemon holds for a
 * client is bounded per connection, per user and overall; an unfinished
 * request times out; connections are capped per user; and when accept() runs
 * out of descriptors the listening socket rests instead of spinning.
 */
#include "jgsched/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "jg_config.h"
#include "jgsched/backend.h"
#include "jgsched/backend_local.h"
#include "jgsched/capacity.h"
#include "jgsched/config.h"
#include "jgsched/fsutil.h"
#include "jgsched/loop.h"
#include "jgsched/policy.h"
#include "jgsched/proto.h"
#include "jgsched/sched.h"
#include "jgsched/spec.h"
#include "jgsched/store.h"

/* What one client may hold of the daemon (docs/security.md).  A connection
 * gets REQUESTS_PER_TURN requests and one READ_CHUNK read per loop turn, and
 * reads nothing more while it holds complete requests not yet served or
 * replies over OUTPUT_HIGH_WATER not yet taken: so its input buffer never
 * exceeds one message plus one chunk, and a client that does not read its
 * replies stops being served instead of growing the daemon.  The byte totals
 * bound what all of one user's connections, and all connections, may hold. */
#define REQUESTS_PER_TURN 16
#define READ_CHUNK 65536
#define ACCEPTS_PER_TURN 64
#define OUTPUT_HIGH_WATER (256 * 1024)
#define MAX_OUTPUT_BUFFER (16 * 1024 * 1024)        /* one connection's unsent replies */
#define USER_INPUT_LIMIT (8 * 1024 * 1024)          /* one uid's unfinished requests */
#define TOTAL_INPUT_LIMIT (64 * 1024 * 1024)
#define USER_OUTPUT_LIMIT (32 * 1024 * 1024)        /* one uid's unsent replies */
#define TOTAL_OUTPUT_LIMIT (256 * 1024 * 1024)
/* At the descriptor limit, accept() fails until a descriptor is freed; the
 * listening socket stays readable meanwhile, so it is set aside until a
 * connection closes or this long has passed. */
#define ACCEPT_PAUSE_MS 250
#define RECENT_WINDOW_US (3600LL * 1000000LL)
#define LOG_CHUNK_DEFAULT 65536
#define LOG_CHUNK_MAX (512 * 1024)
#define QUEUE_PAGE_GROUPS 1000          /* groups per queue page at most */
#define QUEUE_PAGE_BYTES (512 * 1024)   /* JSON per queue page, about (one group at least) */

typedef struct conn conn_t;

/* One local user as a client: their connections and the bytes these hold. */
typedef struct peer {
    uid_t uid;
    char user[64];
    bool unlimited;             /* root, the daemon's owner, an admin: no connection cap */
    int conns;
    size_t in_bytes, out_bytes;
    struct peer *next;
} peer_t;

struct conn {
    jg_daemon_t *daemon;
    peer_t *peer;
    int fd;
    uid_t uid;
    gid_t gid;
    pid_t pid;
    char user[64];
    jg_linebuf_t in;
    char *out;
    size_t out_len, out_off, out_cap;
    size_t counted_in, counted_out; /* what peer and daemon totals hold for it */
    uint32_t events;                /* the epoll interest set now */
    int64_t partial_since_ms;       /* an unfinished request began; 0: none */
    int64_t watch_id;               /* group being watched, 0 if none */
    bool read_eof;                  /* the client shut down its side */
    bool held_back;                 /* requests wait for replies to be taken */
    bool close_after_flush;
    conn_t *prev, *next;
};

struct jg_daemon {
    jg_paths_t paths;
    jg_loop_t *loop;
    jg_store_t *store;
    jg_config_t *config;
    jg_sched_t *sched;
    int listen_fd;
    int signal_fd;
    conn_t *conns;
    jg_trash_t *trash;          /* <home>/volumes/.trash: removed volumes, deleted off the loop */
    peer_t *peers;
    size_t in_bytes, out_bytes;     /* over all connections */
    bool accept_paused;
    uint64_t accept_timer;
    uint64_t sweep_timer;           /* checks unfinished requests; 0: not armed */
    jg_log_limit_t log_refused, log_accept, log_overflow;
    int64_t *dirty;             /* groups changed since the last prepare */
    size_t n_dirty, cap_dirty;
    bool stopping;
};

/* ----------------------------------------------------------- connections */

static peer_t *peer_get(jg_daemon_t *d, uid_t uid, gid_t gid)
{
    for (peer_t *p = d->peers; p; p = p->next)
        if (p->uid == uid)
            return p;
    peer_t *p = jg_xcalloc(1, sizeof *p);
    p->uid = uid;
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf(p->user, sizeof p->user, "%s", res->pw_name);
    else
        snprintf(p->user, sizeof p->user, "%u", (unsigned)uid);
    p->unlimited = uid == 0 || uid == getuid() ||
                   jg_config_is_admin(d->config, p->user, uid, gid);
    p->next = d->peers;
    d->peers = p;
    return p;
}

static void peer_put(jg_daemon_t *d, peer_t *p)
{
    if (--p->conns > 0)
        return;
    for (peer_t **pp = &d->peers; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p);
}

/* Brings the peer's and the daemon's byte totals up to date with c. */
static void conn_count(conn_t *c)
{
    jg_daemon_t *d = c->daemon;
    size_t in = jg_linebuf_pending(&c->in), out = c->out_len - c->out_off;
    c->peer->in_bytes = c->peer->in_bytes - c->counted_in + in;
    d->in_bytes = d->in_bytes - c->counted_in + in;
    c->peer->out_bytes = c->peer->out_bytes - c->counted_out + out;
    d->out_bytes = d->out_bytes - c->counted_out + out;
    c->counted_in = in;
    c->counted_out = out;
}

static void resume_accepting(jg_daemon_t *d);

static void conn_close(conn_t *c)
{
    jg_daemon_t *d = c->daemon;
    jg_loop_del_fd(d->loop, c->fd);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    jg_linebuf_clear(&c->in);
    c->out_len = c->out_off = 0;
    conn_count(c);
    peer_put(d, c->peer);
    free(c->out);
    free(c);
    if (d->accept_paused)
        resume_accepting(d);        /* a descriptor is free again */
}

/* The epoll interest that fits c's state: output to flush; input unless the
 * client shut down its side or has replies over the high-water mark waiting
 * (level-triggered epoll would otherwise report input we refuse to read). */
static void conn_update_events(conn_t *c)
{
    size_t out = c->out_len - c->out_off;
    uint32_t ev = 0;
    if (out)
        ev |= EPOLLOUT;
    if (!c->read_eof && out <= OUTPUT_HIGH_WATER)
        ev |= EPOLLIN;
    if (ev != c->events && jg_loop_mod_fd(c->daemon->loop, c->fd, ev, NULL) == 0)
        c->events = ev;
}

/* Returns -1 if the connection was closed. */
static int conn_flush(conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c);
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->close_after_flush) {
            conn_close(c);
            return -1;
        }
    }
    conn_count(c);
    if (c->held_back && c->out_len - c->out_off <= OUTPUT_HIGH_WATER) {
        /* Its buffered requests get their turn again, input or not. */
        c->held_back = false;
        jg_loop_defer_fd(c->daemon->loop, c->fd);
    }
    conn_update_events(c);
    return 0;
}

/* Appends line[len] to c's output, or closes c when that would exceed a
 * bound on unsent replies.  Returns -1 if the connection was closed. */
static int conn_queue(conn_t *c, const char *line, size_t len)
{
    jg_daemon_t *d = c->daemon;
    const char *over = c->out_len - c->out_off + len > MAX_OUTPUT_BUFFER ? "its connection's"
                       : c->peer->out_bytes + len > USER_OUTPUT_LIMIT    ? "its user's"
                       : d->out_bytes + len > TOTAL_OUTPUT_LIMIT         ? "the daemon's"
                                                                         : NULL;
    if (over) {
        jg_log_limited(&d->log_overflow, "warn",
                       "client pid %d (user %s) does not read its replies: %s bound on unsent "
                       "replies reached; closing it", (int)c->pid, c->user, over);
        conn_close(c);
        return -1;
    }
    /* Compact only when the bytes moved are at most those already sent: a
     * client taking its replies a few bytes at a time must not make each new
     * reply move the whole backlog. */
    if (c->out_len + len > c->out_cap && c->out_off > 0 &&
        c->out_off >= c->out_len - c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        /* Geometric growth: a slow reader costs amortised O(1) per byte. */
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        c->out = jg_xrealloc(c->out, cap);
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, line, len);
    c->out_len += len;
    conn_count(c);
    return 0;
}

/* Queues a reply (steals msg).  Returns -1 if the connection was closed. */
static int conn_send(conn_t *c, json_t *msg)
{
    size_t len;
    char *line = jg_proto_encode(msg, &len);
    json_decref(msg);
    int rc = conn_queue(c, line, len);
    free(line);
    return rc < 0 ? -1 : conn_flush(c);
}

/* Ends a connection that broke a rule, telling the client which: the error
 * goes after whatever replies are queued, as much as the socket takes now,
 * and the connection closes at once (a client that does not read could
 * otherwise keep it).  Always returns -1 (the connection is gone). */
static int conn_fail(conn_t *c, json_t *error)
{
    size_t len;
    char *line = jg_proto_encode(error, &len);
    json_decref(error);
    int rc = conn_queue(c, line, len);
    free(line);
    if (rc < 0)
        return -1;
    if (c->out_off < c->out_len)
        (void)send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                   MSG_NOSIGNAL | MSG_DONTWAIT);
    conn_close(c);
    return -1;
}

/* --------------------------------------------------------- JSON builders */

static json_t *job_json(const jg_job_row_t *j)
{
    return json_pack("{s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:o, s:o}", "index",
                     j->index, "name", j->name, "state", jg_state_name(j->state), "num_nodes",
                     j->num_nodes, "attempt", j->attempt, "restarts", j->restarts, "recoveries",
                     j->recoveries, "free_restarts", j->free_restarts, "exit_code", j->exit_code, "reason", j->reason ? j->reason : "",
                     "started", jg_proto_time(j->started_us), "ended",
                     jg_proto_time(j->ended_us));
}

/* GROUP_SUMMARY of docs/protocol.md; jobs is the group's job rows. */
static json_t *group_json(const jg_group_row_t *g, const jg_job_row_t *jobs, size_t n_jobs)
{
    json_t *ja = json_array();
    for (size_t i = 0; i < n_jobs; i++)
        json_array_append_new(ja, job_json(&jobs[i]));
    return json_pack("{s:I, s:s, s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:s, s:o}", "id",
                     (json_int_t)g->id, "name", g->name, "user", g->user, "uid", (int)g->uid,
                     "state", jg_state_name(g->state), "reason", g->reason ? g->reason : "",
                     "submitted", jg_proto_time(g->submitted_us), "started",
                     jg_proto_time(g->started_us), "ended", jg_proto_time(g->ended_us), "infra",
                     g->infra ? g->infra : "", "jobs", ja);
}

static json_t *group_detail_json(jg_daemon_t *d, int64_t id, bool with_events, jg_error_t *err)
{
    jg_group_row_t g;
    if (jg_store_get_group(d->store, id, &g, err) < 0)
        return NULL;
    jg_job_row_t *jobs = NULL;
    jg_node_row_t *nodes = NULL;
    jg_event_row_t *events = NULL;
    size_t n_jobs = 0, n_nodes = 0, n_events = 0;
    json_t *out = NULL;
    jg_group_spec_t *spec = NULL;
    if (jg_store_list_jobs(d->store, id, &jobs, &n_jobs, err) < 0 ||
        jg_store_list_nodes(d->store, id, &nodes, &n_nodes, err) < 0 ||
        (with_events && jg_store_list_events(d->store, id, &events, &n_events, err) < 0))
        goto done;
    spec = jg_spec_from_json(g.spec_json, err);
    if (!spec)
        goto done;
    out = group_json(&g, jobs, n_jobs);
    json_t *primaries = json_array();
    for (size_t i = 0; i < spec->n_primary_tasks; i++)
        json_array_append_new(primaries, json_string(spec->primary_tasks[i]));
    json_object_set_new(out, "policy", json_string(spec->policy ? spec->policy : "default"));
    json_object_set_new(out, "placement", json_string("SAME_INFRA"));
    json_object_set_new(out, "execution", json_string("parallel"));
    json_object_set_new(out, "primary_tasks", primaries);
    json_t *spec_obj = json_loads(g.spec_json, 0, NULL);
    json_object_set_new(out, "spec", spec_obj ? spec_obj : json_null());
    json_t *na = json_array();
    for (size_t i = 0; i < n_nodes; i++) {
        const jg_node_row_t *n = &nodes[i];
        const char *job = (size_t)n->job_index < spec->n_jobs ? spec->jobs[n->job_index].name : "?";
        json_array_append_new(
            na, json_pack("{s:s, s:i, s:i, s:s, s:i, s:i, s:s, s:s}", "job", job, "job_index",
                          n->job_index, "rank", n->rank, "state", jg_state_name(n->state),
                          "attempt", n->attempt, "exit_code", n->exit_code, "hostname",
                          n->hostname ? n->hostname : "", "address",
                          n->address ? n->address : ""));
    }
    json_object_set_new(out, "nodes", na);
    if (with_events) {
        json_t *ea = json_array();
        for (size_t i = 0; i < n_events; i++) {
            const jg_event_row_t *e = &events[i];
            json_array_append_new(ea, json_pack("{s:o, s:s, s:s, s:s}", "ts",
                                                jg_proto_time(e->ts_us), "subject", e->subject,
                                                "what", e->what, "reason",
                                                e->reason ? e->reason : ""));
        }
        json_object_set_new(out, "events", ea);
    }
done:
    jg_spec_free(spec);
    jg_event_rows_free(events, n_events);
    jg_node_rows_free(nodes, n_nodes);
    jg_job_rows_free(jobs, n_jobs);
    jg_group_row_clear(&g);
    return out;
}

/* ------------------------------------------------------------- handlers */

/* The group's owner, root, and the configured admins (user list or group). */
static bool may_act_on(const conn_t *c, const jg_group_row_t *g)
{
    return c->uid == g->uid || jg_config_is_admin(c->daemon->config, c->user, c->uid, c->gid);
}

/* Loads the group and checks that the caller may act on it. */
static json_t *authorize(conn_t *c, int64_t id, jg_group_row_t *row)
{
    jg_error_t err;
    if (jg_store_get_group(c->daemon->store, id, row, &err) < 0)
        return jg_proto_error("%s", err.text);
    if (!may_act_on(c, row)) {
        json_t *e = jg_proto_error("permission denied: group %lld belongs to %s", (long long)id,
                                   row->user);
        jg_group_row_clear(row);
        return e;
    }
    return NULL;
}

/* An optional request field that may be absent, null or a string. */
static int nullable_string(json_t *v, const char *name, const char **out)
{
    (void)name;
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static json_t *op_ping(conn_t *c, json_t *req)
{
    if (json_unpack(req, "{s:s !}", "op", &(const char *){0}) < 0)
        return jg_proto_error("ping takes no arguments");
    return json_pack("{s:b, s:s, s:i, s:s, s:s}", "ok", 1, "version", JG_VERSION, "pid",
                     (int)getpid(), "home", c->daemon->paths.home, "socket",
                     c->daemon->paths.socket);
}

static json_t *op_submit(conn_t *c, json_t *req)
{
    const char *file = NULL, *yaml = NULL, *name = NULL, *infra = NULL, *policy = NULL;
    const char *policy_text = NULL;
    json_t *name_j = NULL, *infra_j = NULL, *policy_j = NULL, *policy_text_j = NULL;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s?s, s:s, s?o, s?o, s?o, s?o !}", "op",
                       &(const char *){0}, "file", &file, "yaml", &yaml, "name", &name_j, "infra",
                       &infra_j, "policy", &policy_j, "policy_text", &policy_text_j) < 0)
        return jg_proto_error("malformed submit request: %s", jerr.text);
    if (nullable_string(name_j, "name", &name) < 0 || nullable_string(infra_j, "infra", &infra) < 0 ||
        nullable_string(policy_j, "policy", &policy) < 0 ||
        nullable_string(policy_text_j, "policy_text", &policy_text) < 0)
        return jg_proto_error("malformed submit request: name, infra, policy and policy_text are "
                              "strings or null");
    /* The daemon never opens a policy file a request names (it may run as
     * root): a user's own policy arrives as text, under a name. */
    size_t policy_len = policy_text ? json_string_length(policy_text_j) : 0;
    if (policy_text && (!policy || !jg_policy_valid_name(policy, strlen(policy))))
        return jg_proto_error("malformed submit request: policy_text needs a policy name in "
                              "policy (letters, digits, '-' and '_')");
    if (policy_text && memchr(policy_text, '\0', policy_len))
        return jg_proto_error("the policy text holds a NUL byte; a policy is Lua source text");
    if (policy_len > JG_POLICY_MAX_TEXT)
        return jg_proto_error("the policy text is larger than a policy may be (%u KiB)",
                              JG_POLICY_MAX_TEXT >> 10);
    if (policy && !policy_text && jg_policy_is_path(policy))
        return jg_proto_error("policy '%s' is a file path: jgschedd never opens a file a request "
                              "names; jgsched submit --policy FILE reads the file as you and "
                              "sends its text", policy);
    /* The CLI checked the default bounds; the daemon never trusts that and
     * checks its own (config.yaml spec_limits) with the same parser, on the
     * user's behalf: `~` is the user's home, and no path is looked at. */
    char home[4096] = "";
    struct passwd pw, *found = NULL;
    char pwbuf[4096];
    if (getpwuid_r(c->uid, &pw, pwbuf, sizeof pwbuf, &found) == 0 && found && found->pw_dir)
        jg_strlcpy(home, found->pw_dir, sizeof home);
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse_for(yaml, strlen(yaml), file,
                                              &c->daemon->config->spec_limits,
                                              home[0] ? home : NULL, &errs);
    if (!spec) {
        json_t *list = json_array();
        for (size_t i = 0; i < errs.count; i++)
            json_array_append_new(list, json_string(errs.messages[i]));
        json_t *r = json_pack("{s:b, s:s+, s:o}", "ok", 0, "error", file ? file : "<input>",
                              errs.count == 1 ? " has 1 error" : " has errors", "errors", list);
        jg_spec_errors_free(&errs);
        return r;
    }
    json_t *warnings = json_array();
    for (size_t i = 0; i < errs.n_warnings; i++)
        json_array_append_new(warnings, json_string(errs.warnings[i]));
    jg_spec_errors_free(&errs);
    jg_error_t err;
    if ((name && jg_spec_set_name(spec, name, &err) < 0) ||
        (infra && jg_spec_set_infra(spec, infra, &err) < 0)) {
        jg_spec_free(spec);
        json_decref(warnings);
        return jg_proto_error("%s", err.text);
    }
    if (policy) {
        free(spec->policy);
        spec->policy = jg_xstrdup(policy);
    }
    char *group_name = jg_xstrdup(spec->name);
    int64_t id;
    int submitted = jg_sched_submit_own_policy(c->daemon->sched, spec, policy_text, policy_len,
                                               c->uid, c->gid, c->user, &id, &err);
    if (submitted < 0) {
        free(group_name);
        json_decref(warnings);
        /* A refusal blames the group; a store failure is ours, and the group
         * may be submitted again. */
        if (submitted == JG_SCHED_STORE_FAILED)
            return jg_proto_failure("%s", err.text);
        return jg_proto_error("%s", err.text);
    }
    jg_group_row_t row;
    const char *state = "PENDING";
    char *reason = NULL;
    if (jg_store_get_group(c->daemon->store, id, &row, &err) == 0) {
        jg_backend_t *b = jg_sched_backend_for(c->daemon->sched, row.infra);
        const char *w = b && b->ops->warning ? b->ops->warning(b) : NULL;
        if (w)
            json_array_append_new(warnings, json_string(w));
        state = jg_state_name(row.state);   /* FAILED_NO_RESOURCE when it can never fit */
        reason = row.reason;
        row.reason = NULL;
        jg_group_row_clear(&row);
    }
    json_t *r = json_pack("{s:b, s:I, s:s, s:s, s:s, s:o}", "ok", 1, "id", (json_int_t)id, "name",
                          group_name, "state", state, "reason", reason ? reason : "", "warnings",
                          warnings);
    free(reason);
    free(group_name);
    return r;
}

/* One page of the queue: the groups after the cursor `after_id`, lowest ids
 * first, at most `limit` of them and no more than QUEUE_PAGE_BYTES of JSON, so
 * that a reply stays far below the protocol's 1 MiB line whatever the store
 * holds; `more` tells the client to ask again from `next_after_id`. */
static json_t *op_queue(conn_t *c, json_t *req)
{
    int all = 0;
    const char *user = NULL;
    json_t *user_j = NULL;
    json_int_t after_id = 0, limit = QUEUE_PAGE_GROUPS;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s?b, s?o, s?I, s?I !}", "op", &(const char *){0},
                       "all", &all, "user", &user_j, "after_id", &after_id, "limit",
                       &limit) < 0)
        return jg_proto_error("malformed queue request: %s", jerr.text);
    if (nullable_string(user_j, "user", &user) < 0)
        return jg_proto_error("malformed queue request: user is a string or null");
    if (after_id < 0 || limit <= 0)
        return jg_proto_error("malformed queue request: after_id is >= 0 and limit > 0");
    if (limit > QUEUE_PAGE_GROUPS)
        limit = QUEUE_PAGE_GROUPS;
    /* One row past the page says whether another page follows. */
    jg_group_filter_t filter = {.user = user, .after_id = after_id, .limit = (size_t)limit + 1};
    if (!all)
        filter.ended_after_us = jg_now_wall_us() - RECENT_WINDOW_US;
    jg_group_row_t *rows = NULL;
    size_t n = 0;
    jg_error_t err;
    if (jg_store_list_groups(c->daemon->store, &filter, &rows, &n, &err) < 0)
        return jg_proto_failure("%s", err.text);
    bool more = n > (size_t)limit;
    size_t listed = more ? (size_t)limit : n;
    /* One query for every listed group's jobs, merged by group id. */
    jg_job_row_t *jobs = NULL;
    size_t n_jobs = 0;
    int64_t *ids = jg_xcalloc(listed ? listed : 1, sizeof *ids);
    for (size_t i = 0; i < listed; i++)
        ids[i] = rows[i].id;
    int rc = listed ? jg_store_list_jobs_of(c->daemon->store, ids, listed, &jobs, &n_jobs, &err)
                    : 0;
    free(ids);
    if (rc < 0) {
        jg_group_rows_free(rows, n);
        return jg_proto_failure("%s", err.text);
    }
    json_t *groups = json_array();
    size_t k = 0, bytes = 0;
    int64_t last_id = after_id;
    for (size_t i = 0; i < listed; i++) {
        while (k < n_jobs && jobs[k].group_id < rows[i].id)
            k++;
        size_t first = k;
        while (k < n_jobs && jobs[k].group_id == rows[i].id)
            k++;
        json_t *g = group_json(&rows[i], jobs + first, k - first);
        size_t size = json_dumpb(g, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII) + 1;
        if (i > 0 && bytes + size > QUEUE_PAGE_BYTES) {
            json_decref(g);
            more = true;        /* the rest comes in the next page */
            break;
        }
        bytes += size;
        json_array_append_new(groups, g);
        last_id = rows[i].id;
    }
    jg_job_rows_free(jobs, n_jobs);
    jg_group_rows_free(rows, n);
    return json_pack("{s:b, s:o, s:b, s:I}", "ok", 1, "groups", groups, "more", more,
                     "next_after_id", (json_int_t)last_id);
}

static json_t *op_show(conn_t *c, json_t *req, bool watch)
{
    json_int_t id;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s:I !}", "op", &(const char *){0}, "id", &id) < 0)
        return jg_proto_error("malformed %s request: %s", watch ? "watch" : "show", jerr.text);
    jg_group_row_t row;
    json_t *denied = authorize(c, id, &row);
    if (denied)
        return denied;
    jg_state_t state = row.state;
    jg_group_row_clear(&row);
    jg_error_t err;
    json_t *group = group_detail_json(c->daemon, id, !watch, &err);
    if (!group)
        return jg_proto_error("%s", err.text);
    if (watch && !jg_state_is_terminal(state))
        c->watch_id = id;
    return json_pack("{s:b, s:o}", "ok", 1, "group", group);
}

/* Replaces every byte that is not part of valid UTF-8 with '?', in place:
 * program output is arbitrary bytes, JSON strings are not.  Overlong forms,
 * surrogates and code points past U+10FFFF count as invalid, as jansson
 * refuses them too.  A sequence cut off by the end of buf becomes '?' as
 * well: read_log_chunk leaves out one that more output will complete. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    if (p[0] < 0x80)
        return p[0] ? 1 : 0;
    size_t len = (p[0] >> 5) == 0x6 ? 2 : (p[0] >> 4) == 0xe ? 3 : (p[0] >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || len > avail)
        return 0;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    unsigned cp = len == 2 ? (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu)
                : len == 3 ? (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu)
                           : (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 |
                                 (p[3] & 0x3fu);
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

static void sanitize_utf8(char *buf, size_t n)
{
    unsigned char *p = (unsigned char *)buf;
    size_t i = 0;
    while (i < n) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0) {
            p[i++] = '?';
            continue;
        }
        i += len;
    }
}

/* Bytes the UTF-8 sequence at p takes once jg_proto_encode escapes it
 * (JSON_ENSURE_ASCII): \uXXXX for control characters and for every code
 * point past ASCII, twice that past U+FFFF. */
static size_t escaped_size(const unsigned char *p, size_t len)
{
    if (len > 1)
        return len == 4 ? 12 : 6;
    if (p[0] == '"' || p[0] == '\\' || p[0] == '\b' || p[0] == '\f' || p[0] == '\n' ||
        p[0] == '\r' || p[0] == '\t')
        return 2;
    return p[0] < 0x20 ? 6 : 1;
}

/* The longest prefix of buf[0..n) (sanitized) whose escaped form fits in
 * budget bytes, ending on a character; cut after its last newline when it had
 * to be shortened and has one, so whole lines travel together. */
static size_t fit_escaped(const char *buf, size_t n, size_t budget)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0, used = 0, last_nl = 0;
    while (i < n) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0)
            len = 1;
        size_t cost = escaped_size(p + i, len);
        if (used + cost > budget)
            return last_nl > 0 ? last_nl : i;
        used += cost;
        i += len;
        if (p[i - 1] == '\n')
            last_nl = i;
    }
    return n;
}

/* What one node's log reader needs to know of the node. */
typedef struct {
    const char *job;
    int rank;
    bool ended;                 /* the node is terminal: its log is complete */
    int64_t next_attempt_at;    /* where the next attempt starts (-1: none) */
} log_node_t;

/* Reads up to max bytes of a node's log from offset, never past the next
 * attempt's start, into a chunk (docs/protocol.md, logs) whose JSON fits in
 * *budget bytes (decreased by what it takes).  Only whole lines come, unless
 * the node ended, the piece ends its attempt, or one line is longer than what
 * fits (it then travels in pieces).  NULL + err when the log cannot be read;
 * NULL without err text when not even the chunk's frame fits. */
static json_t *read_log_chunk(jg_backend_t *b, int64_t id, const log_node_t *node,
                              long long offset, size_t max, size_t *budget, bool *at_end,
                              jg_error_t *err)
{
    err->text[0] = '\0';
    if (node->next_attempt_at >= 0 && node->next_attempt_at >= offset &&
        (size_t)(node->next_attempt_at - offset) < max)
        max = (size_t)(node->next_attempt_at - offset);
    int fd = b->ops->open_log(b, id, node->job, node->rank, err);
    if (fd < 0)
        return NULL;
    char *buf = jg_xmalloc(max ? max : 1);
    ssize_t r = max ? pread(fd, buf, max, (off_t)offset) : 0;
    struct stat st;
    off_t size = fstat(fd, &st) == 0 ? st.st_size : 0;
    close(fd);
    if (r < 0) {
        free(buf);
        jg_errprintf(err, "cannot read the log of %s-%d: %s", node->job, node->rank,
                     strerror(errno));
        return NULL;
    }
    size_t n = (size_t)r;
    bool attempt_done = node->next_attempt_at >= 0 && offset + (long long)n >= node->next_attempt_at;
    if (!node->ended && !attempt_done && n > 0) {
        while (n > 0 && buf[n - 1] != '\n')
            n--;
        if (n == 0 && (size_t)r == max)
            n = (size_t)r;      /* one line longer than max: pass it on in pieces */
    }
    /* A character cut by max (more follows) waits for the next request. */
    if (n == (size_t)r && n == max && offset + (long long)n < (long long)size && !attempt_done) {
        for (size_t back = 1; back <= 3 && back <= n; back++) {
            unsigned char ch = (unsigned char)buf[n - back];
            if ((ch & 0xc0) == 0x80)
                continue;       /* a continuation byte: look further back */
            size_t want = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
            if (want > back && back < n)
                n -= back;
            break;
        }
    }
    sanitize_utf8(buf, n);

    char name[160];
    snprintf(name, sizeof name, "%s-%d", node->job, node->rank);
    json_t *chunk = json_pack("{s:s, s:s, s:i, s:I, s:s}", "node", name, "job", node->job, "rank",
                              node->rank, "offset", (json_int_t)offset, "data", "");
    size_t frame = json_dumpb(chunk, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII) + 64;
    if (frame > *budget) {
        json_decref(chunk);
        free(buf);
        return NULL;
    }
    *budget -= frame;
    n = fit_escaped(buf, n, *budget);
    json_t *data = json_stringn(buf, n);
    free(buf);
    if (!data) {                /* cannot happen after sanitize_utf8; be safe */
        json_decref(chunk);
        jg_errprintf(err, "cannot encode the log of %s-%d", node->job, node->rank);
        return NULL;
    }
    size_t data_size = json_dumpb(data, NULL, 0, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    *budget = *budget > data_size ? *budget - data_size : 0;
    json_object_set_new(chunk, "data", data);
    json_object_set_new(chunk, "offset", json_integer((json_int_t)(offset + (long long)n)));
    *at_end = (off_t)(offset + (long long)n) >= size;
    return chunk;
}

/* "restart_job: <why>": the policy decision that started `attempt` of job,
 * from the group's events (the decision is recorded just before the job's
 * "attempt N" event); "" when none is recorded.  Caller frees. */
static char *attempt_reason(const jg_event_row_t *events, size_t n_events, const char *job,
                            int attempt)
{
    char subject[160], what[32];
    snprintf(subject, sizeof subject, "job %s", job);
    snprintf(what, sizeof what, "attempt %d", attempt);
    for (size_t i = n_events; i-- > 0;) {
        const jg_event_row_t *e = &events[i];
        if (strcmp(e->subject, subject) != 0 || strcmp(e->what, "attempt") != 0 || !e->reason ||
            strcmp(e->reason, what) != 0)
            continue;
        for (size_t k = i; k-- > 0;) {
            const jg_event_row_t *d = &events[k];
            static const char prefix[] = "on_node_exit: ";
            if (strcmp(d->subject, "policy") == 0 &&
                strncmp(d->what, prefix, sizeof prefix - 1) == 0)
                return jg_xasprintf("%s: %s", d->what + sizeof prefix - 1,
                                    d->reason ? d->reason : "");
        }
        break;
    }
    return jg_xstrdup("");
}

#define LOG_MAX_ATTEMPTS 256    /* attempt starts read per node */
#define LOG_REPLY_BUDGET (JG_PROTO_MAX_MESSAGE - 64 * 1024)   /* room for the reply's frame */

static json_t *op_logs(conn_t *c, json_t *req)
{
    json_int_t id, max = LOG_CHUNK_DEFAULT;
    const char *job = NULL;
    json_t *job_j = NULL, *rank_j = NULL, *offsets = NULL;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s:I, s?o, s?o, s?o, s?I !}", "op",
                       &(const char *){0}, "id", &id, "job", &job_j, "rank", &rank_j, "offsets",
                       &offsets, "max", &max) < 0)
        return jg_proto_error("malformed logs request: %s", jerr.text);
    if (nullable_string(job_j, "job", &job) < 0)
        return jg_proto_error("logs: job must be a string or null");
    if (rank_j && !json_is_null(rank_j) && !json_is_integer(rank_j))
        return jg_proto_error("logs: rank must be an integer");
    if (offsets && !json_is_null(offsets) && !json_is_object(offsets))
        return jg_proto_error("logs: offsets must be an object");
    if (max <= 0 || max > LOG_CHUNK_MAX)
        max = LOG_CHUNK_DEFAULT;
    int want_rank = rank_j && json_is_integer(rank_j) ? (int)json_integer_value(rank_j) : -1;
    jg_group_row_t row;
    json_t *denied = authorize(c, id, &row);
    if (denied)
        return denied;
    jg_error_t err;
    json_t *reply = NULL;
    jg_node_row_t *nodes = NULL;
    jg_job_row_t *jobs = NULL;
    jg_event_row_t *events = NULL;
    size_t n_nodes = 0, n_jobs = 0, n_events = 0;
    jg_log_attempt_t *attempts = jg_xcalloc(LOG_MAX_ATTEMPTS, sizeof *attempts);
    if (jg_store_list_jobs(c->daemon->store, id, &jobs, &n_jobs, &err) < 0 ||
        jg_store_list_nodes(c->daemon->store, id, &nodes, &n_nodes, &err) < 0) {
        reply = jg_proto_failure("%s", err.text);
        goto done;
    }
    if (job) {
        bool found = false;
        for (size_t i = 0; i < n_jobs; i++)
            found = found || strcmp(jobs[i].name, job) == 0;
        if (!found) {
            reply = jg_proto_error("group %lld has no job named %s", (long long)id, job);
            goto done;
        }
    }
    jg_backend_t *b = jg_sched_backend_for(c->daemon->sched, row.infra);
    if (!b) {
        reply = jg_proto_error("group %lld ran on infra %s, which this daemon no longer has",
                               (long long)id, row.infra);
        goto done;
    }
    bool group_ended = jg_state_is_terminal(row.state);
    bool all_at_end = true;
    size_t budget = LOG_REPLY_BUDGET;
    json_t *chunks = json_array();
    for (size_t i = 0; i < n_nodes; i++) {
        const jg_node_row_t *n = &nodes[i];
        if ((size_t)n->job_index >= n_jobs)
            continue;
        const char *jname = jobs[n->job_index].name;
        if ((job && strcmp(job, jname) != 0) || (want_rank >= 0 && n->rank != want_rank))
            continue;
        if (n->state == JG_PENDING && n->attempt <= 1)
            continue;       /* never launched: no log yet */
        char key[160];
        snprintf(key, sizeof key, "%s-%d", jname, n->rank);
        json_t *off = offsets ? json_object_get(offsets, key) : NULL;
        long long offset = off && json_is_integer(off) ? json_integer_value(off) : 0;
        if (offset < 0)
            offset = 0;
        /* The attempt the offset lies in, and where the next one starts. */
        size_t n_att = b->ops->log_attempts
                           ? b->ops->log_attempts(b, id, jname, n->rank, attempts, LOG_MAX_ATTEMPTS)
                           : 0;
        int attempt = 1;
        log_node_t ln = {.job = jname, .rank = n->rank, .ended = jg_state_is_terminal(n->state),
                         .next_attempt_at = -1};
        for (size_t k = 0; k < n_att; k++) {
            if (attempts[k].offset <= offset) {
                attempt = attempts[k].attempt;
            } else {
                ln.next_attempt_at = attempts[k].offset;
                ln.ended = false;   /* an earlier attempt: its end is the next one's start */
                break;
            }
        }
        bool at_end = true;
        jg_error_t lerr;
        json_t *chunk = read_log_chunk(b, id, &ln, offset, (size_t)max, &budget, &at_end, &lerr);
        if (!chunk && !lerr.text[0]) {
            all_at_end = false;     /* no room left in this reply: the next one */
            break;
        }
        if (!chunk && errno == ENOENT)
            continue;       /* not created yet (launch in flight) */
        if (!chunk) {       /* there, but refused (a FIFO or link put there) or unreadable */
            json_decref(chunks);
            reply = jg_proto_error("%s", lerr.text);
            goto done;
        }
        json_object_set_new(chunk, "attempt", json_integer(attempt));
        if (attempt > 1) {
            if (!events && jg_store_list_events(c->daemon->store, id, &events, &n_events, &err) < 0)
                n_events = 0;
            char *why = attempt_reason(events, n_events, jname, attempt);
            json_object_set_new(chunk, "attempt_reason", json_string(why));
            free(why);
        }
        bool eof = ln.ended && ln.next_attempt_at < 0 && at_end;
        json_object_set_new(chunk, "eof", json_boolean(eof));
        if (eof) {
            json_object_set_new(chunk, "exit_code", json_integer(n->exit_code));
            json_object_set_new(chunk, "node_state", json_string(jg_state_name(n->state)));
        }
        all_at_end = all_at_end && at_end && ln.next_attempt_at < 0;
        json_array_append_new(chunks, chunk);
    }
    if (want_rank >= 0 && json_array_size(chunks) == 0 && group_ended && job) {
        json_decref(chunks);
        reply = jg_proto_error("job %s of group %lld has no node with rank %d", job, (long long)id,
                               want_rank);
        goto done;
    }
    reply = json_pack("{s:b, s:b, s:s, s:s, s:o}", "ok", 1, "done", group_ended && all_at_end,
                      "state", jg_state_name(row.state), "reason", row.reason ? row.reason : "",
                      "chunks", chunks);
done:
    free(attempts);
    jg_event_rows_free(events, n_events);
    jg_node_rows_free(nodes, n_nodes);
    jg_job_rows_free(jobs, n_jobs);
    jg_group_row_clear(&row);
    return reply;
}

static json_t *cancel_one(conn_t *c, int64_t id)
{
    jg_group_row_t row;
    json_t *denied = authorize(c, id, &row);
    if (denied) {
        json_t *e = json_pack("{s:I, s:b, s:O}", "id", (json_int_t)id, "ok", 0, "error",
                              json_object_get(denied, "error"));
        json_decref(denied);
        return e;
    }
    jg_error_t err;
    char reason[128];
    snprintf(reason, sizeof reason, "cancelled by %s", c->user);
    json_t *r;
    int rc = jg_sched_cancel(c->daemon->sched, id, reason, &err);
    if (rc < 0) {
        r = json_pack("{s:I, s:b, s:s, s:s}", "id", (json_int_t)id, "ok", 0, "error", err.text,
                      "name", row.name);
        if (rc == JG_SCHED_STORE_FAILED)    /* nothing changed: the CLI exits 4 */
            json_object_set_new(r, "code", json_string(JG_PROTO_DAEMON_FAILED));
    } else
        r = json_pack("{s:I, s:b, s:s, s:s}", "id", (json_int_t)id, "ok", 1, "state", "CANCELLING",
                      "name", row.name);
    jg_group_row_clear(&row);
    return r;
}

static json_t *op_cancel(conn_t *c, json_t *req)
{
    json_t *ids = NULL;
    int all = 0;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s?o, s?b !}", "op", &(const char *){0}, "ids", &ids,
                       "all", &all) < 0)
        return jg_proto_error("malformed cancel request: %s", jerr.text);
    if (ids && !json_is_array(ids))
        return jg_proto_error("cancel: ids must be an array of group ids");
    if (!all && (!ids || json_array_size(ids) == 0))
        return jg_proto_error("cancel: give group ids or all");
    json_t *results = json_array();
    if (all) {
        jg_group_filter_t filter = {.active_only = true};
        jg_group_row_t *rows = NULL;
        size_t n = 0;
        jg_error_t err;
        if (jg_store_list_groups(c->daemon->store, &filter, &rows, &n, &err) < 0) {
            json_decref(results);
            return jg_proto_error("%s", err.text);
        }
        for (size_t i = 0; i < n; i++)
            if (rows[i].uid == c->uid || c->uid == 0)
                json_array_append_new(results, cancel_one(c, rows[i].id));
        jg_group_rows_free(rows, n);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            if (!json_is_integer(v)) {
                json_decref(results);
                return jg_proto_error("cancel: ids must be integers");
            }
            json_array_append_new(results, cancel_one(c, json_integer_value(v)));
        }
    }
    return json_pack("{s:b, s:o}", "ok", 1, "results", results);
}

/* ---------------------------------------------------------------- volumes */

/* Config-declared volumes first (they cannot be created or removed through the
 * CLI), then those created with `jgsched volume create`. */
static char *volume_path(void *ctx, const char *name)
{
    jg_daemon_t *d = ctx;
    const char *declared = jg_config_volume_path(d->config, name);
    if (declared)
        return jg_xstrdup(declared);
    jg_volume_row_t v;
    jg_error_t err;
    if (jg_store_get_volume(d->store, name, &v, &err) < 0)
        return NULL;
    char *path = v.path;
    v.path = NULL;
    jg_volume_row_clear(&v);
    return path;
}

/* The directory holding a volume's directory (<home>/volumes), opened for
 * work through its descriptor.  It must be ours and closed to others: the
 * volume directories in it belong to users, the names in it to us alone. */
static int open_volume_parent(const char *dir, jg_error_t *err)
{
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return jg_errprintf(err, "cannot open %s: %s", dir, strerror(errno));
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
        close(fd);
        return jg_errprintf(err, "%s must belong to uid %d and be writable by no one else",
                            dir, (int)geteuid());
    }
    return fd;
}

static json_t *op_volume_create(conn_t *c, json_t *req)
{
    const char *name;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s:s !}", "op", &(const char *){0}, "name", &name) < 0)
        return jg_proto_error("malformed volume_create request: %s", jerr.text);
    if (!jg_spec_is_dns_label(name))
        return jg_proto_error("invalid volume name '%s': use lowercase letters, digits and '-' "
                              "(a DNS label, at most 63 characters)", name);
    jg_daemon_t *d = c->daemon;
    if (jg_config_volume_path(d->config, name))
        return jg_proto_error("volume %s is declared in %s; it already exists", name,
                              d->paths.config);
    char *dir = jg_xasprintf("%s/volumes", d->paths.home);
    char *path = jg_xasprintf("%s/%s", dir, name);
    json_t *reply = NULL;
    jg_error_t err;
    int vfd = -1, fd = -1;
    if (jg_mkdir_p(dir, 0711, &err) < 0 || (vfd = open_volume_parent(dir, &err)) < 0) {
        reply = jg_proto_error("%s", err.text);
        goto done;
    }
    if (jg_store_add_volume(d->store, name, path, c->uid, c->user, jg_now_wall_us(), &err) < 0) {
        reply = jg_proto_error("%s", err.text);
        goto done;
    }
    /* A directory left by an earlier volume of that name is not handed to a
     * new owner: it goes to the trash, and the volume starts empty. */
    int made = mkdirat(vfd, name, 0750);
    if (made < 0 && errno == EEXIST && jg_trash_put(d->trash, vfd, name, &err) == 0)
        made = mkdirat(vfd, name, 0750);
    /* The volume's files belong to whoever created it, as their jobs write them. */
    if (made < 0 || (fd = openat(vfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        fchown(fd, c->uid, c->gid) < 0) {
        int e = errno;
        jg_store_remove_volume(d->store, name, NULL);
        reply = jg_proto_error("cannot create %s: %s", path, strerror(e));
        goto done;
    }
    jg_log("info", "volume %s created by %s at %s", name, c->user, path);
    reply = json_pack("{s:b, s:s, s:s}", "ok", 1, "name", name, "path", path);
done:
    if (fd >= 0)
        close(fd);
    if (vfd >= 0)
        close(vfd);
    free(path);
    free(dir);
    return reply;
}

static json_t *op_volume_ls(conn_t *c, json_t *req)
{
    (void)req;
    jg_daemon_t *d = c->daemon;
    json_t *list = json_array();
    for (size_t i = 0; i < d->config->n_volumes; i++) {
        const jg_config_volume_t *v = &d->config->volumes[i];
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", v->name, "path",
                                              v->path, "source", "config", "owner", "",
                                              "used_by", (json_int_t)jg_sched_volume_user(
                                                             d->sched, v->name)));
    }
    jg_volume_row_t *rows = NULL;
    size_t n = 0;
    jg_error_t err;
    if (jg_store_list_volumes(d->store, &rows, &n, &err) < 0) {
        json_decref(list);
        return jg_proto_error("%s", err.text);
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:o, s:I}", "name",
                                              rows[i].name, "path", rows[i].path, "source",
                                              "created", "owner", rows[i].user, "created",
                                              jg_proto_time(rows[i].created_us), "used_by",
                                              (json_int_t)jg_sched_volume_user(d->sched,
                                                                               rows[i].name)));
    jg_volume_rows_free(rows, n);
    return json_pack("{s:b, s:o}", "ok", 1, "volumes", list);
}

static json_t *op_volume_rm(conn_t *c, json_t *req)
{
    const char *name;
    json_error_t jerr;
    if (json_unpack_ex(req, &jerr, 0, "{s:s, s:s !}", "op", &(const char *){0}, "name", &name) < 0)
        return jg_proto_error("malformed volume_rm request: %s", jerr.text);
    jg_daemon_t *d = c->daemon;
    if (jg_config_volume_path(d->config, name))
        return jg_proto_error("volume %s is declared in %s; remove it there", name, d->paths.config);
    jg_volume_row_t v;
    jg_error_t err;
    if (jg_store_get_volume(d->store, name, &v, &err) < 0)
        return jg_proto_error("%s", err.text);
    json_t *reply = NULL;
    int64_t user_group = jg_sched_volume_user(d->sched, name);
    if (v.uid != c->uid && !jg_config_is_admin(d->config, c->user, c->uid, c->gid))
        reply = jg_proto_error("permission denied: volume %s belongs to %s", name, v.user);
    else if (user_group)
        reply = jg_proto_error("volume %s is in use by group %lld; it can be removed once that "
                               "group ended", name, (long long)user_group);
    else if (jg_store_remove_volume(d->store, name, &err) < 0)
        reply = jg_proto_error("%s", err.text);
    if (!reply) {
        /* Its files are its owner's: moved to the trash through the
         * descriptor of the directory holding it, deleted off the loop as
         * that owner (fsutil.h); no path into the user's tree is followed. */
        char *slash = strrchr(v.path, '/');
        char *parent = slash && slash != v.path ? jg_xstrndup(v.path, (size_t)(slash - v.path))
                                                : jg_xstrdup("/");
        int pfd = open_volume_parent(parent, &err);
        if (pfd < 0 || jg_trash_put(d->trash, pfd, slash ? slash + 1 : v.path, &err) < 0)
            jg_log("warn", "volume %s: cannot remove %s: %s", name, v.path, err.text);
        if (pfd >= 0)
            close(pfd);
        free(parent);
        jg_log("info", "volume %s removed by %s", name, c->user);
        reply = jg_proto_ok();
    }
    jg_volume_row_clear(&v);
    return reply;
}

/* ------------------------------------------------------------------ infra */

static json_t *shape_json(double cpus, double memory_gb, const jg_accel_t *accels, size_t n)
{
    json_t *a = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(a, accels[i].name, json_integer(accels[i].count));
    return json_pack("{s:f, s:f, s:o}", "cpus", cpus, "memory_gb", memory_gb, "accelerators", a);
}

typedef struct {
    const jg_backend_t *backend;
    json_t *groups;
    json_t *pending;
} infra_walk_t;

static void infra_group(void *ctx, int64_t id, const char *user, jg_state_t state,
                        const jg_backend_t *backend, const jg_group_spec_t *spec, bool holds)
{
    infra_walk_t *w = ctx;
    if (backend != w->backend)
        return;
    jg_usage_t u = {0};
    jg_usage_add_group(&u, spec, 1);
    json_t *g = json_pack("{s:I, s:s, s:s, s:s, s:I, s:o}", "id", (json_int_t)id, "name",
                          spec->name, "user", user, "state", jg_state_name(state), "nodes",
                          (json_int_t)jg_spec_total_nodes(spec), "resources",
                          shape_json(u.cpus, u.memory_gb, u.accels, u.n_accels));
    jg_usage_clear(&u);
    json_array_append_new(holds ? w->groups : w->pending, g);
}

static json_t *op_infra(conn_t *c, json_t *req)
{
    (void)req;
    jg_daemon_t *d = c->daemon;
    json_t *list = json_array();
    jg_backend_t *b = jg_sched_backend_for(d->sched, NULL);
    if (b) {
        const jg_capacity_t *cap = b->ops->capacity ? b->ops->capacity(b) : NULL;
        const jg_usage_t *used = jg_sched_usage(d->sched, b);
        infra_walk_t w = {.backend = b, .groups = json_array(), .pending = json_array()};
        jg_sched_foreach_active(d->sched, infra_group, &w);
        json_t *notes = json_array();
        const char *warn = b->ops->warning ? b->ops->warning(b) : NULL;
        if (warn)
            json_array_append_new(notes, json_string(warn));
        const char *more = b->ops->notes ? b->ops->notes(b) : NULL;
        if (more)
            json_array_append_new(notes, json_string(more));
        json_t *item = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "name", b->ops->name,
                                 "used", used ? shape_json(used->cpus, used->memory_gb,
                                                           used->accels, used->n_accels)
                                              : json_null(),
                                 "groups", w.groups, "pending", w.pending, "notes", notes,
                                 "capacity", cap ? shape_json(cap->cpus, cap->memory_gb,
                                                              cap->accels, cap->n_accels)
                                                 : json_null());
        if (cap) {
            json_object_set_new(item, "max_node",
                                shape_json(cap->max_node_cpus, cap->max_node_memory_gb, NULL, 0));
            json_object_set_new(item, "source", json_string(cap->source));
            if (strcmp(b->ops->name, "local") == 0 && c->daemon->config->local.oversubscribe > 1)
                json_object_set_new(item, "oversubscribe",
                                    json_real(c->daemon->config->local.oversubscribe));
        }
        json_array_append_new(list, item);
    }
    char *settings = jg_config_describe(d->config);
    json_t *reply = json_pack("{s:b, s:o, s:s, s:s}", "ok", 1, "backends", list, "config",
                              d->config->loaded ? d->config->path : "(none: defaults)",
                              "settings", settings);
    free(settings);
    return reply;
}

static void reload_result(void *ctx, const char *policy, const char *error)
{
    json_t *list = ctx;
    json_t *item = json_pack("{s:s, s:b}", "name", policy, "ok", error == NULL);
    if (error)
        json_object_set_new(item, "error", json_string(error));
    json_array_append_new(list, item);
}

static json_t *op_policy_reload(conn_t *c, json_t *req)
{
    (void)req;
    if (c->uid != 0 && c->uid != getuid())
        return jg_proto_error("permission denied: only root or the daemon's owner may reload policies");
    json_t *list = json_array();
    jg_sched_reload_policies(c->daemon->sched, reload_result, list);
    return json_pack("{s:b, s:o}", "ok", 1, "policies", list);
}

static json_t *op_shutdown(conn_t *c, json_t *req)
{
    (void)req;
    if (c->uid != 0 && c->uid != getuid())
        return jg_proto_error("permission denied: only root or the daemon's owner may stop it");
    c->daemon->stopping = true;
    c->close_after_flush = true;
    jg_loop_stop(c->daemon->loop);
    return jg_proto_ok();
}

static json_t *dispatch(conn_t *c, json_t *req)
{
    json_t *op = json_object_get(req, "op");
    if (!json_is_string(op))
        return jg_proto_error("a request needs a string field \"op\"");
    const char *name = json_string_value(op);
    if (strcmp(name, "ping") == 0)
        return op_ping(c, req);
    if (strcmp(name, "submit") == 0)
        return op_submit(c, req);
    if (strcmp(name, "queue") == 0)
        return op_queue(c, req);
    if (strcmp(name, "show") == 0)
        return op_show(c, req, false);
    if (strcmp(name, "watch") == 0)
        return op_show(c, req, true);
    if (strcmp(name, "logs") == 0)
        return op_logs(c, req);
    if (strcmp(name, "cancel") == 0)
        return op_cancel(c, req);
    if (strcmp(name, "shutdown") == 0)
        return op_shutdown(c, req);
    if (strcmp(name, "policy_reload") == 0)
        return op_policy_reload(c, req);
    if (strcmp(name, "infra") == 0)
        return op_infra(c, req);
    if (strcmp(name, "volume_create") == 0)
        return op_volume_create(c, req);
    if (strcmp(name, "volume_ls") == 0)
        return op_volume_ls(c, req);
    if (strcmp(name, "volume_rm") == 0)
        return op_volume_rm(c, req);
    return jg_proto_error("unknown op \"%s\"", name);
}

static void sweep_unfinished(jg_loop_t *loop, void *arg);

static int64_t request_timeout_ms(const jg_daemon_t *d)
{
    return (int64_t)(d->config->clients.request_timeout_s * 1000);
}

/* An unfinished request started on c now: make sure someone checks on it. */
static void note_unfinished(conn_t *c)
{
    jg_daemon_t *d = c->daemon;
    if (c->partial_since_ms)
        return;
    c->partial_since_ms = jg_now_mono_ms();
    if (!d->sweep_timer) {
        int64_t every = request_timeout_ms(d) / 4;
        d->sweep_timer = jg_loop_add_timer(d->loop, every < 100 ? 100 : every > 1000 ? 1000 : every,
                                           sweep_unfinished, d);
    }
}

/* Closes the connections whose unfinished request is older than the request
 * timeout: a client that starts a request must finish it, or it could hold
 * its buffer (up to 1 MiB) forever. */
static void sweep_unfinished(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_daemon_t *d = arg;
    d->sweep_timer = 0;
    int64_t now = jg_now_mono_ms(), limit = request_timeout_ms(d);
    bool waiting = false;
    conn_t *next;
    for (conn_t *c = d->conns; c; c = next) {
        next = c->next;
        if (!c->partial_since_ms)
            continue;
        if (now - c->partial_since_ms < limit) {
            waiting = true;
            continue;
        }
        conn_fail(c, jg_proto_error("request not completed within %g s (clients.request_timeout): "
                                    "a request is one line ending in a newline; closing the "
                                    "connection", d->config->clients.request_timeout_s));
    }
    if (waiting) {
        int64_t every = limit / 4;
        d->sweep_timer = jg_loop_add_timer(d->loop, every < 100 ? 100 : every > 1000 ? 1000 : every,
                                           sweep_unfinished, d);
    }
}

/* Reads at most one chunk into c's buffer, within the per-user and overall
 * bounds on unfinished requests.  Returns -1 if the connection was closed. */
static int conn_read(conn_t *c)
{
    jg_daemon_t *d = c->daemon;
    size_t user_room = USER_INPUT_LIMIT - c->peer->in_bytes;
    size_t all_room = TOTAL_INPUT_LIMIT - d->in_bytes;
    size_t room = user_room < all_room ? user_room : all_room;
    if (room > READ_CHUNK)
        room = READ_CHUNK;
    if (room == 0) {
        bool user = user_room == 0;
        jg_log_limited(&d->log_overflow, "warn",
                       "client pid %d (user %s): %s unfinished requests reach %d MiB; closing it",
                       (int)c->pid, c->user, user ? "the user's" : "all clients'",
                       (user ? USER_INPUT_LIMIT : TOTAL_INPUT_LIMIT) >> 20);
        return conn_fail(c, user ? jg_proto_error("jgschedd holds %d MiB of unfinished requests from "
                                                  "user %s, its limit per user; closing this "
                                                  "connection", USER_INPUT_LIMIT >> 20, c->user)
                                 : jg_proto_error("jgschedd holds %d MiB of unfinished requests, its "
                                                  "limit; closing this connection",
                                                  TOTAL_INPUT_LIMIT >> 20));
    }
    char buf[READ_CHUNK];
    ssize_t r;
    do
        r = recv(c->fd, buf, room, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        conn_close(c);
        return -1;
    }
    if (r == 0) {
        c->read_eof = true;
        return 0;
    }
    jg_linebuf_append(&c->in, buf, (size_t)r);
    conn_count(c);
    return 0;
}

/* Serves c's fair share of this turn: buffered requests first, then one read,
 * at most REQUESTS_PER_TURN requests in all; with requests left over it asks
 * the loop for another turn.  Nothing more is read while complete requests
 * wait, nor served while the replies over OUTPUT_HIGH_WATER are not taken
 * (conn_flush resumes it once they are). */
static void conn_serve(conn_t *c)
{
    int budget = REQUESTS_PER_TURN;
    bool have_read = false, starved = false;
    for (;;) {
        if (c->out_len - c->out_off > OUTPUT_HIGH_WATER) {
            c->held_back = true;
            break;
        }
        int too_long;
        char *line = jg_linebuf_next(&c->in, &too_long);
        if (too_long) {
            conn_fail(c, jg_proto_error("request exceeds %d bytes (1 MiB), the protocol's limit; "
                                        "closing the connection", JG_PROTO_MAX_MESSAGE));
            return;
        }
        if (!line) {
            if (have_read || c->read_eof) {
                starved = true;
                break;
            }
            have_read = true;
            if (conn_read(c) < 0)
                return;
            continue;
        }
        c->partial_since_ms = 0;
        jg_error_t err;
        json_t *req = jg_proto_decode(line, &err);
        free(line);
        json_t *reply = req ? dispatch(c, req) : jg_proto_error("%s", err.text);
        json_decref(req);
        if (conn_send(c, reply) < 0 || c->close_after_flush)
            return;
        if (--budget == 0) {
            jg_loop_defer_fd(c->daemon->loop, c->fd);
            break;
        }
    }
    conn_count(c);
    if (starved && c->read_eof) {
        /* Every complete request is answered and no more can come: what is
         * left, if anything, is a request cut off by the close. */
        c->close_after_flush = true;
        conn_flush(c);
        return;
    }
    if (starved && jg_linebuf_pending(&c->in) > 0)
        note_unfinished(c);
    conn_update_events(c);
}

static void on_conn_io(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    conn_t *c = arg;
    if (revents & EPOLLERR) {
        conn_close(c);
        return;
    }
    /* EPOLLHUP: the client closed its socket.  Flushing then fails and
     * closes ours; requests it sent before closing are still served. */
    if ((revents & (EPOLLOUT | EPOLLHUP)) && c->out_off < c->out_len && conn_flush(c) < 0)
        return;
    conn_serve(c);
}

/* ---------------------------------------------------------- accepting */

static void on_accept(jg_loop_t *loop, int fd, uint32_t revents, void *arg);

static void resume_accepting(jg_daemon_t *d)
{
    if (d->accept_timer)
        jg_loop_cancel_timer(d->loop, d->accept_timer);
    d->accept_timer = 0;
    d->accept_paused = false;
    jg_loop_mod_fd(d->loop, d->listen_fd, EPOLLIN, NULL);
}

static void on_accept_pause_over(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_daemon_t *d = arg;
    d->accept_timer = 0;
    resume_accepting(d);
}

/* accept() failed for want of descriptors or memory: the pending connection
 * stays in the backlog and the listening socket stays readable, so polling it
 * now would spin.  Stop until a connection closes or the pause ends. */
static void pause_accepting(jg_daemon_t *d, int error)
{
    int open = 0;
    for (conn_t *c = d->conns; c; c = c->next)
        open++;
    jg_log_limited(&d->log_accept, "warn",
                   "cannot accept clients: %s (%d connections open); not accepting until one "
                   "closes (at most %d ms)", strerror(error), open, ACCEPT_PAUSE_MS);
    jg_loop_mod_fd(d->loop, d->listen_fd, 0, NULL);
    d->accept_paused = true;
    if (!d->accept_timer)
        d->accept_timer = jg_loop_add_timer(d->loop, ACCEPT_PAUSE_MS, on_accept_pause_over, d);
}

/* Tells a connection we will not serve why, and closes it.  A fresh socket's
 * buffer is empty, so the one line fits without blocking. */
static void refuse(int fd, json_t *error)
{
    size_t len;
    char *line = jg_proto_encode(error, &len);
    json_decref(error);
    (void)send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    free(line);
    close(fd);
}

static void on_accept(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)revents;
    jg_daemon_t *d = arg;
    /* A fair share here too: a burst of connects waits for the next turn. */
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(d, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                     errno != ECONNABORTED)
                jg_log_limited(&d->log_accept, "warn", "accept: %s", strerror(errno));
            return;
        }
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
            jg_log_limited(&d->log_accept, "warn", "SO_PEERCRED: %s; dropping the client",
                           strerror(errno));
            close(cfd);
            continue;
        }
        peer_t *p = peer_get(d, cred.uid, cred.gid);
        int cap = d->config->clients.max_connections_per_user;
        if (!p->unlimited && cap != JG_CONFIG_UNLIMITED && p->conns >= cap) {
            jg_log_limited(&d->log_refused, "warn",
                           "refused a connection of user %s (pid %d): %d connections open, the "
                           "limit (clients.max_connections_per_user)", p->user, (int)cred.pid, cap);
            refuse(cfd, jg_proto_error("too many connections: user %s has %d connections open to "
                                       "jgschedd, the limit per user "
                                       "(clients.max_connections_per_user)", p->user, cap));
            continue;
        }
        conn_t *c = jg_xcalloc(1, sizeof *c);
        c->daemon = d;
        c->peer = p;
        p->conns++;
        c->fd = cfd;
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->pid = cred.pid;
        snprintf(c->user, sizeof c->user, "%s", p->user);
        c->events = EPOLLIN;
        jg_linebuf_init(&c->in);
        jg_error_t err;
        if (jg_loop_add_fd(loop, cfd, EPOLLIN, on_conn_io, c, &err) < 0) {
            jg_log_limited(&d->log_accept, "warn", "%s", err.text);
            close(cfd);
            peer_put(d, p);
            free(c);
            continue;
        }
        c->next = d->conns;
        if (d->conns)
            d->conns->prev = c;
        d->conns = c;
    }
}

/* ------------------------------------------------------ watches and loop */

static void on_group_changed(void *ctx, int64_t id)
{
    jg_daemon_t *d = ctx;
    for (size_t i = 0; i < d->n_dirty; i++)
        if (d->dirty[i] == id)
            return;
    if (d->n_dirty == d->cap_dirty) {
        d->cap_dirty = d->cap_dirty ? d->cap_dirty * 2 : 64;
        d->dirty = jg_xrealloc(d->dirty, d->cap_dirty * sizeof *d->dirty);
    }
    d->dirty[d->n_dirty++] = id;
}

static void push_watches(jg_daemon_t *d)
{
    for (size_t i = 0; i < d->n_dirty; i++) {
        int64_t id = d->dirty[i];
        json_t *group = NULL;
        conn_t *next;
        for (conn_t *c = d->conns; c; c = next) {
            next = c->next;
            if (c->watch_id != id)
                continue;
            if (!group) {
                jg_error_t err;
                group = group_detail_json(d, id, false, &err);
                if (!group)
                    break;
            }
            const char *state = json_string_value(json_object_get(group, "state"));
            jg_state_t st;
            if (state && jg_state_parse(state, &st) == 0 && jg_state_is_terminal(st))
                c->watch_id = 0;
            conn_send(c, json_pack("{s:b, s:O}", "ok", 1, "group", group));
        }
        json_decref(group);
    }
    d->n_dirty = 0;
}

static void on_prepare(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_daemon_t *d = arg;
    jg_sched_pass(d->sched);
    push_watches(d);
}

static void on_signal(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)revents;
    jg_daemon_t *d = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            jg_log("info", "signal %u: stopping (nodes keep running)", si.ssi_signo);
            d->stopping = true;
            jg_loop_stop(loop);
        } else if (si.ssi_signo == SIGHUP) {
            jg_log("info", "SIGHUP: reloading policies");
            jg_sched_reload_policies(d->sched, NULL, NULL);
        }
    }
}

/* --------------------------------------------------------------- set-up */

static int socket_answers(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return ok;
}

static int bind_socket(jg_daemon_t *d, jg_error_t *err)
{
    const char *path = d->paths.socket;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return jg_errprintf(err, "socket path %s is too long (max %zu bytes); set JGSCHED_HOME to a "
                                 "shorter directory",
                            path, sizeof addr.sun_path - 1);
    if (socket_answers(path))
        return jg_errprintf(err, "another jgschedd already answers at %s", path);
    unlink(path);       /* stale socket of a dead daemon */
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return jg_errprintf(err, "socket: %s", strerror(errno));
    /* Per-user: only the owner may connect.  System mode: everyone may, and
     * SO_PEERCRED tells who is asking. */
    mode_t old = umask(d->paths.system ? 0111 : 0077);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return jg_errprintf(err, "cannot listen on %s: %s", path, strerror(e));
    }
    d->listen_fd = fd;
    return 0;
}

static int setup_signals(jg_daemon_t *d, jg_error_t *err)
{
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return jg_errprintf(err, "sigprocmask: %s", strerror(errno));
    d->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d->signal_fd < 0)
        return jg_errprintf(err, "signalfd: %s", strerror(errno));
    return jg_loop_add_fd(d->loop, d->signal_fd, EPOLLIN, on_signal, d, err);
}

static char *find_shim(void)
{
    const char *env = getenv("JGSCHED_SHIM");
    if (env && *env)
        return jg_xstrdup(env);
    char *sib = jg_sibling_executable("jgsched-shim");
    if (sib && access(sib, X_OK) == 0)
        return sib;
    free(sib);
    return jg_xstrdup("jgsched-shim");
}

/* After a crash: remove what groups that are no longer active left behind
 * (their namespaces, keepers, stray processes). */
static void sweep_leftovers(jg_daemon_t *d, jg_backend_t *b)
{
    if (!b->ops->sweep)
        return;
    jg_group_filter_t filter = {.active_only = true};
    jg_group_row_t *rows = NULL;
    size_t n = 0;
    jg_error_t err;
    if (jg_store_list_groups(d->store, &filter, &rows, &n, &err) < 0) {
        jg_log("warn", "sweep: %s", err.text);
        return;
    }
    int64_t *ids = jg_xcalloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = rows[i].id;
    if (b->ops->sweep(b, ids, n, &err) < 0)
        jg_log("warn", "sweep of %s: %s", b->ops->name, err.text);
    free(ids);
    jg_group_rows_free(rows, n);
}

static void copy_paths(jg_paths_t *dst, const jg_paths_t *src)
{
    dst->home = jg_xstrdup(src->home);
    dst->run_dir = jg_xstrdup(src->run_dir);
    dst->socket = jg_xstrdup(src->socket);
    dst->store = jg_xstrdup(src->store);
    dst->state_dir = jg_xstrdup(src->state_dir);
    dst->daemon_log = jg_xstrdup(src->daemon_log);
    dst->pid_file = jg_xstrdup(src->pid_file);
    dst->config = jg_xstrdup(src->config);
    dst->system = src->system;
}

/* config.yaml, or a start-up failure that lists every error in it. */
static jg_config_t *load_config(const char *path, jg_error_t *err)
{
    jg_spec_errors_t errs = {0};
    jg_config_t *cfg = jg_config_load(path, &errs);
    for (size_t i = 0; i < errs.n_warnings; i++)
        jg_log("warn", "%s", errs.warnings[i]);
    if (!cfg) {
        char text[sizeof err->text] = "";
        size_t used = 0;
        for (size_t i = 0; i < errs.count && used < sizeof text; i++)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s", i ? "; " : "",
                                     errs.messages[i]);
        jg_errprintf(err, "invalid configuration: %s", text);
    }
    jg_spec_errors_free(&errs);
    return cfg;
}

/* The local backend's capacity: what the config declares, the host's own for
 * everything it leaves out; the largest node defaults to the whole capacity. */
static void local_capacity(const jg_config_local_t *lc, jg_capacity_t *cap)
{
    jg_capacity_detect_host(cap);
    const jg_config_shape_t *c = &lc->capacity, *m = &lc->max_node;
    bool declared = c->has_cpus || c->has_memory || c->has_accels;
    if (c->has_cpus)
        cap->cpus = c->cpus;
    if (c->has_memory)
        cap->memory_gb = c->memory_gb;
    if (c->has_accels) {
        jg_capacity_clear(cap);
        jg_capacity_t declared_accels = {.accels = c->accels, .n_accels = c->n_accels};
        jg_capacity_t copy;
        jg_capacity_copy(&copy, &declared_accels);
        cap->accels = copy.accels;
        cap->n_accels = copy.n_accels;
    }
    cap->max_node_cpus = m->has_cpus ? m->cpus : cap->cpus;
    cap->max_node_memory_gb = m->has_memory ? m->memory_gb : cap->memory_gb;
    /* backends.local.oversubscribe: admission hands out more CPUs than there
     * are (memory and accelerators never); nodes then share the cores. */
    if (lc->oversubscribe > 1) {
        cap->cpus *= lc->oversubscribe;
        cap->max_node_cpus *= lc->oversubscribe;
    }
    snprintf(cap->source, sizeof cap->source, "%s", declared ? "config" : "host");
}

jg_daemon_t *jg_daemon_create(const jg_paths_t *paths, jg_error_t *err)
{
    jg_daemon_t *d = jg_xcalloc(1, sizeof *d);
    d->listen_fd = -1;
    d->signal_fd = -1;
    copy_paths(&d->paths, paths);
    char *shim = NULL;
    char *policy_dir = NULL;
    if (jg_paths_create_dirs(&d->paths, err) < 0)
        goto fail;
    if (!(d->loop = jg_loop_create(err)))
        goto fail;
    char *trash = jg_xasprintf("%s/volumes/.trash", d->paths.home);
    d->trash = jg_trash_create(trash, d->loop);
    free(trash);
    if (!(d->config = load_config(d->paths.config, err)))
        goto fail;
    if (!(d->store = jg_store_open_exclusive(d->paths.store, err)))
        goto fail;
    policy_dir = jg_policy_default_dir();
    jg_sched_options_t sopts = {.policy_dir = policy_dir,
                                .default_policy = d->config->default_policy,
                                .stop_grace_ms = (int)(d->config->stop_grace_s * 1000),
                                .config = d->config,
                                .volume_path = volume_path,
                                .volume_ctx = d};
    if (!(d->sched = jg_sched_create(d->store, d->loop, &sopts, err)))
        goto fail;
    jg_sched_set_change_cb(d->sched, on_group_changed, d);
    shim = find_shim();
    jg_capacity_t capacity;
    local_capacity(&d->config->local, &capacity);
    jg_local_config_t local = {.state_dir = d->paths.state_dir, .shim_path = shim,
                               .loop = d->loop, .on_event = jg_sched_backend_event,
                               .event_ctx = d->sched, .capacity = &capacity,
                               .host_gpus = !d->config->local.capacity.has_accels,
                               .share_host_network =
                                   d->config->local.network == JG_CONFIG_NETWORK_HOST,
                               .nat = d->config->local.nat,
                               .nat_network = d->config->local.nat_network,
                               .cgroups_off =
                                   d->config->local.cgroups == JG_CONFIG_CGROUPS_OFF};
    jg_backend_t *b = jg_backend_local_create(&local, err);
    jg_capacity_clear(&capacity);
    if (!b)
        goto fail;
    jg_sched_add_backend(d->sched, b);
    if (bind_socket(d, err) < 0)
        goto fail;
    if (jg_loop_add_fd(d->loop, d->listen_fd, EPOLLIN, on_accept, d, err) < 0)
        goto fail;
    if (setup_signals(d, err) < 0)
        goto fail;
    if (jg_sched_recover(d->sched, err) < 0)
        goto fail;
    sweep_leftovers(d, b);
    jg_loop_set_prepare(d->loop, on_prepare, d);
    free(shim);
    free(policy_dir);
    return d;
fail:
    free(shim);
    free(policy_dir);
    if (d->listen_fd >= 0)
        unlink(d->paths.socket);
    jg_daemon_destroy(d);
    return NULL;
}

int jg_daemon_run(jg_daemon_t *d, jg_error_t *err)
{
    jg_log("info", "jgschedd %s serving %s (store %s)", JG_VERSION, d->paths.socket, d->paths.store);
    int rc = jg_loop_run(d->loop, err);
    /* Deliver what is queued (the shutdown reply) before closing. */
    for (conn_t *c = d->conns; c; c = c->next)
        if (c->out_len > c->out_off)
            (void)send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    return rc;
}

void jg_daemon_destroy(jg_daemon_t *d)
{
    if (!d)
        return;
    while (d->conns)
        conn_close(d->conns);
    if (d->listen_fd >= 0) {
        close(d->listen_fd);
        unlink(d->paths.socket);
    }
    if (d->signal_fd >= 0)
        close(d->signal_fd);
    jg_sched_destroy(d->sched);
    jg_store_close(d->store);
    jg_config_free(d->config);
    jg_trash_close(d->trash);
    jg_loop_destroy(d->loop);
    free(d->dirty);
    jg_paths_free(&d->paths);
    free(d);
}
