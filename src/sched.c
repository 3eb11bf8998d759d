/* sched.c - the state machine of groups, jobs and nodes.
 *
 * How it works: backend events only update the state of one node (and write it
 * to the store); everything that follows from node states - a job ending, the
 * barrier opening, auxiliary jobs being stopped, the group ending - is derived
 * in one place, evaluate(), which runs after every event.  So a setup failure, a
 * cancel, a lost node and a normal exit all flow through the same few lines,
 * and an event that arrives in the middle of a launch (backends may report
 * synchronously) is simply folded into the evaluation that follows the launch.
 *
 * Decisions about failures are taken in decide_failure(); today it encodes the
 * default lifecycle (DESIGN section 5: a failed node fails its job and stops the
 * job's other nodes; siblings continue; a setup failure before the barrier
 * stops the whole group).  The Lua policy engine plugs in there.
 *
 * Active groups are kept in a doubly linked list in submit order, which is
 * also the FIFO admission order.  Terminal groups are freed at once; the store
 * keeps their history.
 */
#include "jgsched/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jgsched/state.h"

#define MAX_LAUNCHES_PER_PASS 32

typedef struct group_rt group_rt_t;

typedef struct {
    jg_state_t state;
    int attempt;
    bool released;
} node_rt_t;

typedef struct {
    group_rt_t *group;
    int index;
    jg_state_t state;
    int attempt;
    int exit_code;
    node_rt_t *nodes;
    int n_nodes;
    bool stopping;              /* a stop was requested for this job's nodes */
    jg_state_t stop_state;      /* what the job ends as once its nodes are down */
    char stop_reason[256];
    uint64_t aux_timer;         /* pending termination_delay stop, 0 if none */
} job_rt_t;

struct group_rt {
    jg_sched_t *sched;
    int64_t id;
    jg_group_spec_t *spec;
    uid_t uid;
    gid_t gid;
    char *user;
    int64_t submitted_us;
    jg_state_t state;
    jg_backend_t *backend;
    job_rt_t *jobs;
    bool launching;             /* inside backend->launch: evaluation deferred */
    bool cancelling;
    jg_state_t end_override;    /* JG_PENDING when none; e.g. FAILED_SETUP */
    char end_reason[256];
    bool primaries_done;
    group_rt_t *prev, *next;
};

typedef struct {
    jg_backend_t *backend;
} backend_slot_t;

struct jg_sched {
    jg_store_t *store;
    jg_loop_t *loop;
    jg_sched_options_t opts;
    backend_slot_t *backends;
    size_t n_backends;
    group_rt_t *head, *tail;
    size_t n_active;
    size_t n_pending;
    jg_sched_change_f change_cb;
    void *change_ctx;
    uint64_t kick_timer;
};

static void evaluate(jg_sched_t *s, group_rt_t *g);

/* ------------------------------------------------------------------ helpers */

static void changed(jg_sched_t *s, int64_t id)
{
    if (s->change_cb)
        s->change_cb(s->change_ctx, id);
}

static void store_failed(const char *what, const jg_error_t *err)
{
    jg_log("error", "store: %s: %s", what, err->text);
}

static int64_t now_us(void)
{
    return jg_now_wall_us();
}

static group_rt_t *find_group(jg_sched_t *s, int64_t id)
{
    for (group_rt_t *g = s->head; g; g = g->next)
        if (g->id == id)
            return g;
    return NULL;
}

static void set_group_state(jg_sched_t *s, group_rt_t *g, jg_state_t st, const char *reason)
{
    jg_error_t err;
    g->state = st;
    if (jg_store_set_group_state(s->store, g->id, st, reason, now_us(), &err) < 0)
        store_failed("group state", &err);
}

static void set_job_state(jg_sched_t *s, job_rt_t *j, jg_state_t st, const char *reason)
{
    jg_error_t err;
    j->state = st;
    if (jg_store_set_job_state(s->store, j->group->id, j->index, st, reason, now_us(), &err) < 0)
        store_failed("job state", &err);
}

static void set_node_state(jg_sched_t *s, job_rt_t *j, int rank, jg_state_t st, int exit_code,
                           const char *reason)
{
    jg_error_t err;
    j->nodes[rank].state = st;
    if (jg_store_set_node_state(s->store, j->group->id, j->index, rank, st, j->nodes[rank].attempt,
                                exit_code, reason, now_us(), &err) < 0)
        store_failed("node state", &err);
}

static const char *job_name(const job_rt_t *j)
{
    return j->group->spec->jobs[j->index].name;
}

static jg_backend_t *backend_for_infra(jg_sched_t *s, const char *infra)
{
    size_t len = strcspn(infra, "/");
    for (size_t i = 0; i < s->n_backends; i++) {
        const char *name = s->backends[i].backend->ops->name;
        if (strlen(name) == len && strncmp(name, infra, len) == 0)
            return s->backends[i].backend;
    }
    return NULL;
}

static void group_free(group_rt_t *g)
{
    if (!g)
        return;
    if (g->jobs) {
        for (size_t i = 0; i < g->spec->n_jobs; i++)
            free(g->jobs[i].nodes);
        free(g->jobs);
    }
    jg_spec_free(g->spec);
    free(g->user);
    free(g);
}

static group_rt_t *group_new(jg_sched_t *s, jg_group_spec_t *spec, int64_t id, uid_t uid, gid_t gid,
                             const char *user, int64_t submitted_us, jg_backend_t *backend)
{
    group_rt_t *g = jg_xcalloc(1, sizeof *g);
    g->sched = s;
    g->id = id;
    g->spec = spec;
    g->uid = uid;
    g->gid = gid;
    g->user = jg_xstrdup(user);
    g->submitted_us = submitted_us;
    g->state = JG_PENDING;
    g->backend = backend;
    g->end_override = JG_PENDING;
    g->jobs = jg_xcalloc(spec->n_jobs, sizeof *g->jobs);
    for (size_t i = 0; i < spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        j->group = g;
        j->index = (int)i;
        j->state = JG_PENDING;
        j->attempt = 1;
        j->exit_code = -1;
        j->n_nodes = spec->jobs[i].num_nodes;
        j->nodes = jg_xcalloc((size_t)j->n_nodes, sizeof *j->nodes);
        for (int r = 0; r < j->n_nodes; r++)
            j->nodes[r] = (node_rt_t){.state = JG_PENDING, .attempt = 1};
    }
    return g;
}

static void link_group(jg_sched_t *s, group_rt_t *g)
{
    g->prev = s->tail;
    if (s->tail)
        s->tail->next = g;
    else
        s->head = g;
    s->tail = g;
    s->n_active++;
}

static void unlink_and_free(jg_sched_t *s, group_rt_t *g)
{
    for (size_t i = 0; i < g->spec->n_jobs; i++)
        if (g->jobs[i].aux_timer)
            jg_loop_cancel_timer(s->loop, g->jobs[i].aux_timer);
    if (g->prev)
        g->prev->next = g->next;
    else
        s->head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        s->tail = g->prev;
    s->n_active--;
    group_free(g);
}

/* --------------------------------------------------------------- lifecycle */

/* Asks the backend to stop every live node of one job; the job ends as
 * stop_state once they are down (evaluate() sees that). */
static void stop_job(jg_sched_t *s, job_rt_t *j, jg_state_t stop_state, const char *reason)
{
    if (jg_state_is_terminal(j->state) || j->stopping)
        return;
    j->stopping = true;
    j->stop_state = stop_state;
    jg_strlcpy(j->stop_reason, reason, sizeof j->stop_reason);
    jg_error_t err;
    if (j->group->backend->ops->stop(j->group->backend, j->group->id, j->index, -1,
                                     s->opts.stop_grace_ms, &err) < 0)
        jg_log("error", "group %lld: stopping job %s: %s", (long long)j->group->id, job_name(j),
               err.text);
}

/* What to do when a node of a running job fails (non-zero exit, signal, lost).
 * Default lifecycle: the job fails and its other nodes are stopped; sibling
 * jobs continue. */
static void decide_failure(jg_sched_t *s, job_rt_t *j, int rank, const char *why)
{
    char reason[384];
    snprintf(reason, sizeof reason, "node %s-%d %s", job_name(j), rank, why);
    stop_job(s, j, JG_FAILED, reason);
}

/* Setup failed (or a node was lost) before the barrier opened: the group cannot
 * start as a whole, so every other node is stopped. */
static void fail_before_barrier(jg_sched_t *s, group_rt_t *g, job_rt_t *culprit,
                                jg_state_t culprit_state, const char *reason)
{
    if (g->end_override == JG_PENDING) {
        g->end_override = culprit_state;
        jg_strlcpy(g->end_reason, reason, sizeof g->end_reason);
    }
    stop_job(s, culprit, culprit_state, reason);
    char sibling_reason[384];
    snprintf(sibling_reason, sizeof sibling_reason, "stopped before the barrier: %s", reason);
    for (size_t i = 0; i < g->spec->n_jobs; i++)
        if (&g->jobs[i] != culprit)
            stop_job(s, &g->jobs[i], JG_CANCELLED, sibling_reason);
}

/* The primary/auxiliary rule (SkyPilot's): once every primary job has ended,
 * auxiliary jobs are stopped - after termination_delay when all primaries
 * succeeded, at once when one failed.  Auxiliaries stopped this way end
 * CANCELLED and do not make the group fail. */
static void aux_stop_now(jg_sched_t *s, job_rt_t *j)
{
    stop_job(s, j, JG_CANCELLED, "auxiliary job stopped: every primary task ended");
}

static void aux_delay_expired(jg_loop_t *loop, void *arg)
{
    (void)loop;
    job_rt_t *j = arg;
    jg_sched_t *s = j->group->sched;
    j->aux_timer = 0;
    aux_stop_now(s, j);
    changed(s, j->group->id);
}

static void check_primaries(jg_sched_t *s, group_rt_t *g)
{
    if (g->primaries_done || g->spec->n_primary_tasks == 0 || g->cancelling)
        return;
    bool all_ok = true;
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        if (!jg_spec_job_is_primary(g->spec, i))
            continue;
        if (!jg_state_is_terminal(g->jobs[i].state))
            return;
        if (g->jobs[i].state != JG_SUCCEEDED)
            all_ok = false;
    }
    g->primaries_done = true;
    jg_error_t err;
    if (jg_store_add_event(s->store, g->id, "group", "primaries-ended",
                           all_ok ? "every primary task succeeded: auxiliaries stop after "
                                    "their termination delay"
                                  : "a primary task failed: auxiliaries stop now",
                           now_us(), &err) < 0)
        store_failed("event", &err);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        if (jg_spec_job_is_primary(g->spec, i) || jg_state_is_terminal(j->state))
            continue;
        double delay = all_ok ? jg_spec_termination_delay(g->spec, job_name(j)) : 0;
        if (delay <= 0)
            aux_stop_now(s, j);
        else
            j->aux_timer = jg_loop_add_timer(s->loop, (int64_t)(delay * 1000), aux_delay_expired, j);
    }
}

/* The state a job ends in once every node of its current attempt is down. */
static jg_state_t job_outcome(const job_rt_t *j, char *reason, size_t len)
{
    if (j->stopping) {
        snprintf(reason, len, "%s", j->stop_reason);
        return j->stop_state;
    }
    for (int r = 0; r < j->n_nodes; r++) {
        if (j->nodes[r].state == JG_FAILED_SETUP) {
            snprintf(reason, len, "setup failed on node %d (exit code %d)", r, j->exit_code);
            return JG_FAILED_SETUP;
        }
    }
    for (int r = 0; r < j->n_nodes; r++) {
        if (j->nodes[r].state == JG_FAILED) {
            snprintf(reason, len, "node %d failed (exit code %d)", r, j->exit_code);
            return JG_FAILED;
        }
    }
    snprintf(reason, len, "every node exited 0");
    return JG_SUCCEEDED;
}

static jg_state_t group_outcome(const group_rt_t *g, char *reason, size_t len)
{
    if (g->cancelling) {
        snprintf(reason, len, "cancelled");
        return JG_CANCELLED;
    }
    if (g->end_override != JG_PENDING) {
        snprintf(reason, len, "%s", g->end_reason);
        return g->end_override;
    }
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        if (jg_state_is_failure(g->jobs[i].state)) {
            snprintf(reason, len, "job %s %s", g->spec->jobs[i].name,
                     jg_state_name(g->jobs[i].state));
            return g->jobs[i].state == JG_FAILED_SETUP ? JG_FAILED_SETUP : JG_FAILED;
        }
    }
    snprintf(reason, len, "every job succeeded");
    return JG_SUCCEEDED;
}

static bool job_all_nodes(const job_rt_t *j, jg_state_t st)
{
    for (int r = 0; r < j->n_nodes; r++)
        if (j->nodes[r].state != st)
            return false;
    return true;
}

static bool job_all_nodes_down(const job_rt_t *j)
{
    for (int r = 0; r < j->n_nodes; r++)
        if (!jg_state_is_terminal(j->nodes[r].state))
            return false;
    return true;
}

static void release_group(jg_sched_t *s, group_rt_t *g)
{
    jg_error_t err;
    if (g->backend->ops->release(g->backend, g->id, &err) < 0) {
        jg_log("error", "group %lld: barrier release failed: %s", (long long)g->id, err.text);
        fail_before_barrier(s, g, &g->jobs[0], JG_FAILED, err.text);
        return;
    }
    if (jg_store_begin(s->store, &err) < 0)
        store_failed("begin", &err);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        if (j->stopping || jg_state_is_terminal(j->state) || !job_all_nodes(j, JG_READY))
            continue;
        for (int r = 0; r < j->n_nodes; r++) {
            j->nodes[r].released = true;
            set_node_state(s, j, r, JG_RUNNING, -1, "barrier released");
        }
        set_job_state(s, j, JG_RUNNING, "barrier released: every node finished setup");
    }
    if (g->state == JG_STARTING)
        set_group_state(s, g, JG_RUNNING, "barrier released: every node of every job finished setup");
    if (jg_store_commit(s->store, &err) < 0)
        store_failed("commit", &err);
}

static void finish_group(jg_sched_t *s, group_rt_t *g)
{
    char reason[384];
    jg_state_t st = group_outcome(g, reason, sizeof reason);
    set_group_state(s, g, st, reason);
    jg_error_t err;
    if (g->backend && g->backend->ops->cleanup(g->backend, g->id, false, &err) < 0)
        jg_log("warn", "group %lld: cleanup: %s", (long long)g->id, err.text);
    jg_log("info", "group %lld (%s) ended %s: %s", (long long)g->id, g->spec->name,
           jg_state_name(st), reason);
    int64_t id = g->id;
    unlink_and_free(s, g);
    changed(s, id);
}

/* Derives everything that follows from the current node states. */
static void evaluate(jg_sched_t *s, group_rt_t *g)
{
    if (g->launching || jg_state_is_terminal(g->state) || g->state == JG_PENDING)
        return;
    jg_error_t err;
    bool any_job_ended = false;
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        if (jg_state_is_terminal(j->state) || !job_all_nodes_down(j))
            continue;
        char reason[384];
        jg_state_t st = job_outcome(j, reason, sizeof reason);
        if (j->aux_timer) {
            jg_loop_cancel_timer(s->loop, j->aux_timer);
            j->aux_timer = 0;
        }
        if (jg_store_set_job_exit(s->store, g->id, j->index, j->exit_code, &err) < 0)
            store_failed("job exit", &err);
        set_job_state(s, j, st, reason);
        any_job_ended = true;
    }
    if (any_job_ended)
        check_primaries(s, g);

    if (!g->cancelling && g->end_override == JG_PENDING) {
        bool all_ready = true, any_waiting = false;
        for (size_t i = 0; i < g->spec->n_jobs; i++) {
            const job_rt_t *j = &g->jobs[i];
            if (jg_state_is_terminal(j->state) || j->stopping)
                continue;
            if (!job_all_nodes(j, JG_READY)) {
                if (j->state == JG_STARTING || j->state == JG_RECOVERING)
                    all_ready = false;
            } else {
                any_waiting = true;
            }
        }
        /* The initial barrier waits for every node of every job; a restarted job
         * (group already RUNNING) waits only for its own nodes. */
        if (any_waiting && (g->state == JG_RUNNING || all_ready))
            release_group(s, g);
    }

    for (size_t i = 0; i < g->spec->n_jobs; i++)
        if (!jg_state_is_terminal(g->jobs[i].state))
            return;
    finish_group(s, g);
}

static void launch_group(jg_sched_t *s, group_rt_t *g)
{
    size_t total = jg_spec_total_nodes(g->spec);
    jg_node_ref_t *refs = jg_xcalloc(total, sizeof *refs);
    size_t n = 0;
    jg_error_t err;
    if (jg_store_begin(s->store, &err) < 0)
        store_failed("begin", &err);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        for (int r = 0; r < j->n_nodes; r++) {
            refs[n++] = (jg_node_ref_t){.job_index = (int)i, .rank = r, .attempt = j->attempt};
            set_node_state(s, j, r, JG_STARTING, -1, "launching");
        }
        set_job_state(s, j, JG_STARTING, "launching: setup runs on every node");
    }
    if (jg_store_set_group_infra(s->store, g->id, g->backend->ops->name, &err) < 0)
        store_failed("group infra", &err);
    set_group_state(s, g, JG_STARTING, "admitted: launching every node in parallel");
    if (jg_store_commit(s->store, &err) < 0)
        store_failed("commit", &err);

    jg_launch_t req = {.group_id = g->id, .spec = g->spec, .uid = g->uid, .gid = g->gid,
                       .user = g->user, .submitted_us = g->submitted_us, .nodes = refs,
                       .n_nodes = n};
    g->launching = true;
    int rc = g->backend->ops->launch(g->backend, &req, &err);
    g->launching = false;
    free(refs);
    if (rc < 0) {
        jg_log("error", "group %lld: launch failed: %s", (long long)g->id, err.text);
        char reason[600];
        snprintf(reason, sizeof reason, "launch failed: %s", err.text);
        g->end_override = JG_FAILED;
        jg_strlcpy(g->end_reason, reason, sizeof g->end_reason);
        for (size_t i = 0; i < g->spec->n_jobs; i++) {
            job_rt_t *j = &g->jobs[i];
            for (int r = 0; r < j->n_nodes; r++)
                set_node_state(s, j, r, JG_FAILED, -1, reason);
            j->stopping = true;
            j->stop_state = JG_FAILED;
            jg_strlcpy(j->stop_reason, reason, sizeof j->stop_reason);
        }
    }
    changed(s, g->id);
    evaluate(s, g);
}

/* --------------------------------------------------------- backend events */

static job_rt_t *event_job(jg_sched_t *s, const jg_backend_event_t *ev, group_rt_t **gout)
{
    group_rt_t *g = find_group(s, ev->group_id);
    if (!g || ev->job_index < 0 || (size_t)ev->job_index >= g->spec->n_jobs)
        return NULL;
    job_rt_t *j = &g->jobs[ev->job_index];
    if (ev->rank < 0 || ev->rank >= j->n_nodes || ev->attempt != j->nodes[ev->rank].attempt)
        return NULL;        /* stale: an earlier attempt of a restarted node */
    *gout = g;
    return j;
}

void jg_sched_backend_event(void *ctx, const jg_backend_event_t *ev)
{
    jg_sched_t *s = ctx;
    group_rt_t *g = NULL;
    job_rt_t *j = event_job(s, ev, &g);
    if (!j)
        return;
    node_rt_t *node = &j->nodes[ev->rank];
    if (jg_state_is_terminal(node->state))
        return;
    jg_error_t err;
    char reason[600];

    switch (ev->type) {
    case JG_BACKEND_NODE_STARTED:
        if (jg_store_set_node_handle(s->store, g->id, j->index, ev->rank,
                                     ev->handle ? ev->handle : "", ev->address, &err) < 0)
            store_failed("node handle", &err);
        break;
    case JG_BACKEND_SETUP_DONE:
        if (node->state == JG_STARTING)
            set_node_state(s, j, ev->rank, JG_READY, -1, "setup finished: waiting at the barrier");
        break;
    case JG_BACKEND_NODE_EXITED: {
        j->exit_code = ev->exit_code;
        if (ev->signal)
            snprintf(reason, sizeof reason, "%s killed by signal %d", ev->in_setup ? "setup" : "run",
                     ev->signal);
        else
            snprintf(reason, sizeof reason, "%s exited with code %d", ev->in_setup ? "setup" : "run",
                     ev->exit_code);
        jg_state_t st;
        if (ev->exit_code == 0 && !ev->in_setup)
            st = JG_SUCCEEDED;
        else if (j->stopping || g->cancelling)
            st = JG_CANCELLED;
        else
            st = ev->in_setup ? JG_FAILED_SETUP : JG_FAILED;
        set_node_state(s, j, ev->rank, st, ev->exit_code, reason);
        if (st == JG_FAILED_SETUP) {
            char why[700];
            snprintf(why, sizeof why, "job %s: setup failed on node %s-%d (exit code %d)",
                     job_name(j), job_name(j), ev->rank, ev->exit_code);
            if (g->state == JG_STARTING)
                fail_before_barrier(s, g, j, JG_FAILED_SETUP, why);
            else
                stop_job(s, j, JG_FAILED_SETUP, why);
        } else if (st == JG_FAILED) {
            decide_failure(s, j, ev->rank, reason);
        }
        break;
    }
    case JG_BACKEND_NODE_LOST:
    case JG_BACKEND_LAUNCH_FAILED: {
        bool lost = ev->type == JG_BACKEND_NODE_LOST;
        snprintf(reason, sizeof reason, "%s: %s", lost ? "node lost" : "launch failed",
                 ev->reason ? ev->reason : "no reason given");
        jg_state_t st = (j->stopping || g->cancelling) ? JG_CANCELLED : JG_FAILED;
        set_node_state(s, j, ev->rank, st, -1, reason);
        if (st == JG_FAILED) {
            if (g->state == JG_STARTING)
                fail_before_barrier(s, g, j, JG_FAILED, reason);
            else
                decide_failure(s, j, ev->rank, reason);
        }
        break;
    }
    }
    int64_t id = g->id;
    evaluate(s, g);
    changed(s, id);
}

/* ------------------------------------------------------------- public API */

jg_sched_t *jg_sched_create(jg_store_t *store, jg_loop_t *loop, const jg_sched_options_t *opts,
                            jg_error_t *err)
{
    (void)err;
    jg_sched_t *s = jg_xcalloc(1, sizeof *s);
    s->store = store;
    s->loop = loop;
    s->opts.stop_grace_ms = 5000;
    if (opts && opts->stop_grace_ms > 0)
        s->opts.stop_grace_ms = opts->stop_grace_ms;
    return s;
}

void jg_sched_destroy(jg_sched_t *s)
{
    if (!s)
        return;
    while (s->head)
        unlink_and_free(s, s->head);
    for (size_t i = 0; i < s->n_backends; i++)
        s->backends[i].backend->ops->destroy(s->backends[i].backend);
    free(s->backends);
    free(s);
}

void jg_sched_add_backend(jg_sched_t *s, jg_backend_t *backend)
{
    s->backends = jg_xrealloc(s->backends, (s->n_backends + 1) * sizeof *s->backends);
    s->backends[s->n_backends++] = (backend_slot_t){.backend = backend};
}

void jg_sched_set_change_cb(jg_sched_t *s, jg_sched_change_f cb, void *ctx)
{
    s->change_cb = cb;
    s->change_ctx = ctx;
}

jg_backend_t *jg_sched_backend_for(jg_sched_t *s, const char *infra)
{
    if (!infra || !*infra)
        return s->n_backends ? s->backends[0].backend : NULL;
    return backend_for_infra(s, infra);
}

size_t jg_sched_active_count(const jg_sched_t *s)
{
    return s->n_active;
}

static void list_backends(const jg_sched_t *s, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < s->n_backends; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? ", " : "", s->backends[i].backend->ops->name);
    }
}

/* SAME_INFRA: every job on one infra.  Returns the chosen backend or NULL + err. */
static jg_backend_t *place(jg_sched_t *s, const jg_group_spec_t *spec, jg_error_t *err)
{
    const char *pinned = NULL;
    const char *pinned_by = NULL;
    for (size_t i = 0; i < spec->n_jobs; i++) {
        const char *infra = spec->jobs[i].infra;
        if (!infra)
            continue;
        if (!pinned) {
            pinned = infra;
            pinned_by = spec->jobs[i].name;
        } else if (strcmp(pinned, infra) != 0) {
            jg_errprintf(err,
                         "placement SAME_INFRA: job %s pins infra %s but job %s pins infra %s; "
                         "a JobGroup runs on one infra (use --infra to override every job)",
                         pinned_by, pinned, spec->jobs[i].name, infra);
            return NULL;
        }
    }
    char names[256];
    list_backends(s, names, sizeof names);
    jg_backend_t *b = pinned ? backend_for_infra(s, pinned) : jg_sched_backend_for(s, NULL);
    if (!b) {
        if (pinned)
            jg_errprintf(err,
                         "job %s asks for infra %s, which this jgschedd does not offer "
                         "(available: %s); pass --infra local to run the group on this machine",
                         pinned_by, pinned, names);
        else
            jg_errprintf(err, "no backend is configured on this jgschedd");
        return NULL;
    }
    return b;
}

static void kick(jg_sched_t *s);

int jg_sched_submit(jg_sched_t *s, jg_group_spec_t *spec, uid_t uid, gid_t gid, const char *user,
                    int64_t *group_id, jg_error_t *err)
{
    jg_backend_t *b = place(s, spec, err);
    if (!b) {
        jg_spec_free(spec);
        return -1;
    }
    char *json = jg_spec_to_json(spec);
    int64_t submitted = now_us();
    int64_t id;
    int rc = jg_store_add_group(s->store, spec, json, uid, gid, user, submitted, &id, err);
    free(json);
    if (rc < 0) {
        jg_spec_free(spec);
        return -1;
    }
    group_rt_t *g = group_new(s, spec, id, uid, gid, user, submitted, b);
    link_group(s, g);
    s->n_pending++;
    *group_id = id;
    jg_log("info", "group %lld (%s) submitted by %s: %zu jobs, %zu nodes", (long long)id,
           spec->name, user, spec->n_jobs, jg_spec_total_nodes(spec));
    changed(s, id);
    kick(s);
    return 0;
}

int jg_sched_cancel(jg_sched_t *s, int64_t id, const char *reason, jg_error_t *err)
{
    group_rt_t *g = find_group(s, id);
    if (!g) {
        jg_group_row_t row;
        if (jg_store_get_group(s->store, id, &row, err) < 0)
            return -1;
        jg_errprintf(err, "group %lld already ended: %s", (long long)id, jg_state_name(row.state));
        jg_group_row_clear(&row);
        return -1;
    }
    if (g->cancelling)
        return 0;
    g->cancelling = true;
    if (g->state == JG_PENDING) {
        if (jg_store_begin(s->store, err) < 0)
            store_failed("begin", err);
        for (size_t i = 0; i < g->spec->n_jobs; i++) {
            job_rt_t *j = &g->jobs[i];
            for (int r = 0; r < j->n_nodes; r++)
                set_node_state(s, j, r, JG_CANCELLED, -1, reason);
            set_job_state(s, j, JG_CANCELLED, reason);
        }
        set_group_state(s, g, JG_CANCELLED, reason);
        if (jg_store_commit(s->store, err) < 0)
            store_failed("commit", err);
        s->n_pending--;
        unlink_and_free(s, g);
        changed(s, id);
        return 0;
    }
    if (jg_store_begin(s->store, err) < 0)
        store_failed("begin", err);
    set_group_state(s, g, JG_CANCELLING, reason);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        if (!jg_state_is_terminal(j->state))
            set_job_state(s, j, JG_CANCELLING, reason);
    }
    if (jg_store_commit(s->store, err) < 0)
        store_failed("commit", err);
    for (size_t i = 0; i < g->spec->n_jobs; i++)
        stop_job(s, &g->jobs[i], JG_CANCELLED, reason);
    changed(s, id);
    evaluate(s, g);
    return 0;
}

static void kick_fired(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_sched_t *s = arg;
    s->kick_timer = 0;
}

/* Makes sure the loop turns (and so runs a pass) soon even if nothing else
 * happens: used when pending groups remain after a bounded pass. */
static void kick(jg_sched_t *s)
{
    if (!s->kick_timer)
        s->kick_timer = jg_loop_add_timer(s->loop, 0, kick_fired, s);
}

void jg_sched_pass(jg_sched_t *s)
{
    if (!s->n_pending)
        return;
    int launched = 0;
    group_rt_t *next;
    for (group_rt_t *g = s->head; g; g = next) {
        next = g->next;
        if (g->state != JG_PENDING || g->cancelling)
            continue;
        if (launched == MAX_LAUNCHES_PER_PASS) {
            kick(s);
            return;
        }
        s->n_pending--;
        launched++;
        launch_group(s, g);     /* may free g; next was read before */
    }
}

/* --------------------------------------------------------------- recovery */

static int recover_group(jg_sched_t *s, const jg_group_row_t *row, jg_error_t *err)
{
    jg_group_spec_t *spec = jg_spec_from_json(row->spec_json, err);
    if (!spec)
        return jg_errprefix(err, "group %lld: stored spec", (long long)row->id);
    jg_backend_t *b = row->infra && *row->infra ? backend_for_infra(s, row->infra)
                                                 : place(s, spec, err);
    if (!b) {
        jg_spec_free(spec);
        return jg_errprintf(err, "group %lld: infra %s is not available", (long long)row->id,
                            row->infra ? row->infra : "?");
    }
    group_rt_t *g = group_new(s, spec, row->id, row->uid, row->gid, row->user, row->submitted_us, b);
    g->state = row->state;
    g->cancelling = row->state == JG_CANCELLING;
    link_group(s, g);
    if (row->state == JG_PENDING) {
        s->n_pending++;
        return 0;
    }
    jg_job_row_t *jobs = NULL;
    jg_node_row_t *nodes = NULL;
    size_t n_jobs = 0, n_nodes = 0;
    if (jg_store_list_jobs(s->store, row->id, &jobs, &n_jobs, err) < 0 ||
        jg_store_list_nodes(s->store, row->id, &nodes, &n_nodes, err) < 0) {
        jg_job_rows_free(jobs, n_jobs);
        return -1;
    }
    for (size_t i = 0; i < n_jobs && i < spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[jobs[i].index];
        j->state = jobs[i].state;
        j->attempt = jobs[i].attempt;
        j->exit_code = jobs[i].exit_code;
        if (j->state == JG_CANCELLING) {
            j->stopping = true;
            j->stop_state = JG_CANCELLED;
            snprintf(j->stop_reason, sizeof j->stop_reason, "cancelled");
        }
    }
    jg_node_handle_t *handles = jg_xcalloc(n_nodes ? n_nodes : 1, sizeof *handles);
    size_t n_handles = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        const jg_node_row_t *nr = &nodes[i];
        if ((size_t)nr->job_index >= spec->n_jobs || nr->rank >= g->jobs[nr->job_index].n_nodes)
            continue;
        node_rt_t *node = &g->jobs[nr->job_index].nodes[nr->rank];
        node->state = nr->state;
        node->attempt = nr->attempt;
        node->released = nr->state == JG_RUNNING;
        if (!jg_state_is_terminal(nr->state))
            handles[n_handles++] = (jg_node_handle_t){.job_index = nr->job_index, .rank = nr->rank,
                                                      .attempt = nr->attempt, .handle = nr->handle};
    }
    int rc = 0;
    if (n_handles && b->ops->reattach(b, row->id, handles, n_handles, err) < 0)
        rc = jg_errprefix(err, "group %lld: reattach", (long long)row->id);
    free(handles);
    jg_node_rows_free(nodes, n_nodes);
    jg_job_rows_free(jobs, n_jobs);
    if (rc == 0)
        evaluate(s, g);
    return rc;
}

int jg_sched_recover(jg_sched_t *s, jg_error_t *err)
{
    jg_group_filter_t filter = {.active_only = true};
    jg_group_row_t *rows = NULL;
    size_t n = 0;
    if (jg_store_list_groups(s->store, &filter, &rows, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        jg_error_t gerr;
        if (recover_group(s, &rows[i], &gerr) < 0) {
            jg_log("error", "recovery: %s; marking the group FAILED", gerr.text);
            group_rt_t *g = find_group(s, rows[i].id);
            if (g)
                unlink_and_free(s, g);
            if (jg_store_set_group_state(s->store, rows[i].id, JG_FAILED, gerr.text, now_us(),
                                         &gerr) < 0)
                store_failed("group state", &gerr);
        }
    }
    jg_group_rows_free(rows, n);
    if (s->n_pending)
        kick(s);
    return 0;
}
