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
 * Decisions are not taken here: when a node ends on its own or a job ends,
 * sched_policy.c asks the group's Lua policy (on_node_exit, on_job_end) and
 * calls back into the mechanics below (stop a job, restart it, end the
 * group).  A restart is a job whose nodes are stopped with restart_pending
 * set: once they are all down, evaluate() relaunches it as a new attempt
 * instead of ending it, and the barrier logic releases it when its own nodes
 * pass setup.
 *
 * Active groups are kept in a doubly linked list in submit order, found by id
 * through an index, and the pending ones also sit in their backend's ranked
 * queue (see "the queue" below and sched_queue.c): no submit, event or pass
 * walks every active group.  Terminal groups are freed at once (the store
 * keeps their history), but what they held stays counted against their
 * backend, in a small cleaning record, until the backend reports CLEANED.
 *
 * sched is the only caller of backend operations: it makes the instances
 * through the registry (one per infra string, "kubernetes/ctx-a" made on
 * first use), turns their events into the changes above, and appends their
 * output (LOG events) to the logstore.
 */
#include "jgsched/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jgsched/registry.h"
#include "jgsched/state.h"
#include "sched_int.h"

#define MAX_LAUNCHES_PER_PASS 32

static void evaluate(jg_sched_t *s, group_rt_t *g);

/* ------------------------------------------------------------------ helpers */

void jg_sched_changed(jg_sched_t *s, int64_t id)
{
    if (s->change_cb)
        s->change_cb(s->change_ctx, id);
}

static int64_t now_us(void)
{
    return jg_now_wall_us();
}

/* ------------------------------------------------------- store transactions
 *
 * A top-level entry (a backend event, a cancel, a timer, a launch, the
 * recovery of a group) writes everything it changes inside one transaction,
 * txn_begin .. txn_end; the helpers they call nest.  What a client is told was
 * done (a cancel) and what starts processes (a launch) is committed before
 * memory changes or anything runs: on failure nothing changed and the caller
 * says so.  A backend event cannot be refused, it happened: memory follows it,
 * and if its transaction fails the group is marked unsynced and its whole
 * state is written again from memory every RESYNC_MS until the store takes it
 * (an ended group stays in memory until then).  A daemon restart before that
 * recovers from the last committed state and learns of node exits again from
 * the backend's reattach. */

#define RESYNC_MS 1000

static void resync_fired(jg_loop_t *loop, void *arg);

static void mark_unsynced(jg_sched_t *s, group_rt_t *g)
{
    if (!g->unsynced)
        jg_log("error", "group %lld: the store missed a change; writing it again every %d ms "
                        "until the store takes it", (long long)g->id, RESYNC_MS);
    g->unsynced = true;
    if (!s->resync_timer)
        s->resync_timer = jg_loop_add_timer(s->loop, RESYNC_MS, resync_fired, s);
}

/* A write failed: the open transaction will be rolled back (and its groups
 * rewritten); outside one, g is. */
static void store_failed(jg_sched_t *s, group_rt_t *g, const char *what, const jg_error_t *err)
{
    jg_log("error", "store: %s%s%lld: %s", what, g ? " of group " : "", g ? (long long)g->id : 0LL,
           err->text);
    if (s->txn_depth > 0)
        s->txn_failed = true;
    else if (g)
        mark_unsynced(s, g);
}

/* g is written by the open transaction: txn_end visits it (and only the
 * groups so written, not every active group). */
static void touch(jg_sched_t *s, group_rt_t *g)
{
    if (s->txn_depth > 0 && g->txn_serial != s->txn_serial) {
        if (s->n_touched == s->cap_touched) {
            s->cap_touched = s->cap_touched ? 2 * s->cap_touched : 64;
            s->touched = jg_xrealloc(s->touched, s->cap_touched * sizeof *s->touched);
        }
        s->touched[s->n_touched++] = g->id;
    }
    g->txn_serial = s->txn_serial;
}

static void txn_begin(jg_sched_t *s)
{
    if (s->txn_depth++ > 0)
        return;
    s->txn_serial++;
    s->txn_failed = false;
    s->n_touched = 0;
    jg_error_t err;
    if (jg_store_begin(s->store, &err) < 0)
        store_failed(s, NULL, "begin", &err);
}

static void unlink_and_free(jg_sched_t *s, group_rt_t *g);

/* Ends the outermost transaction: commits it, or rolls it back if a write
 * failed, and then marks the groups it touched unsynced.  Frees the ended
 * groups whose end is in the store.  Returns -1 if the transaction failed. */
static int txn_end(jg_sched_t *s)
{
    if (--s->txn_depth > 0)
        return 0;
    jg_error_t err;
    if (s->txn_failed) {
        jg_store_rollback(s->store);
    } else if (jg_store_commit(s->store, &err) < 0) {
        jg_log("error", "store: commit: %s", err.text);
        s->txn_failed = true;
    }
    bool failed = s->txn_failed;
    s->txn_failed = false;
    /* A group ends inside a transaction only by a write of it, so the
     * touched ones are all that can be freed here. */
    for (size_t i = 0; i < s->n_touched; i++) {
        group_rt_t *g = jg_sched_find(s, s->touched[i]);
        if (!g)
            continue;
        if (failed)
            mark_unsynced(s, g);
        else if (g->finished && !g->unsynced)
            unlink_and_free(s, g);
    }
    s->n_touched = 0;
    return failed ? -1 : 0;
}

static group_rt_t *find_group(jg_sched_t *s, int64_t id)
{
    return jg_sched_find(s, id);
}

static void set_group_state(jg_sched_t *s, group_rt_t *g, jg_state_t st, const char *reason)
{
    jg_error_t err;
    g->state = st;
    jg_sched_text_set(&g->reason, reason);
    touch(s, g);
    if (jg_store_set_group_state(s->store, g->id, st, reason, now_us(), &err) < 0)
        store_failed(s, g, "state", &err);
}

void jg_sched_set_job_state(jg_sched_t *s, job_rt_t *j, jg_state_t st, const char *reason)
{
    jg_error_t err;
    j->state = st;
    jg_sched_text_set(&j->reason, reason);
    touch(s, j->group);
    if (jg_store_set_job_state(s->store, j->group->id, j->index, st, reason, now_us(), &err) < 0)
        store_failed(s, j->group, "job state", &err);
}

static void set_node_state(jg_sched_t *s, job_rt_t *j, int rank, jg_state_t st, int exit_code,
                           const char *reason)
{
    jg_error_t err;
    j->nodes[rank].state = st;
    j->nodes[rank].exit_code = exit_code;
    touch(s, j->group);
    if (jg_store_set_node_state(s->store, j->group->id, j->index, rank, st, j->nodes[rank].attempt,
                                exit_code, reason, now_us(), &err) < 0)
        store_failed(s, j->group, "node state", &err);
}

/* The job's exit code, kept in memory and the store together. */
static void set_job_exit(jg_sched_t *s, job_rt_t *j, int exit_code)
{
    if (j->exit_code == exit_code)
        return;
    j->exit_code = exit_code;
    touch(s, j->group);
    jg_error_t err;
    if (jg_store_set_job_exit(s->store, j->group->id, j->index, exit_code, &err) < 0)
        store_failed(s, j->group, "job exit code", &err);
}

/* Writes the whole in-memory state of g in one transaction of its own. */
static int write_group(jg_sched_t *s, group_rt_t *g, jg_error_t *err)
{
    if (jg_store_begin(s->store, err) < 0)
        return -1;
    int64_t now = now_us();
    int rc = jg_store_set_group_state(s->store, g->id, g->state, jg_sched_text(g->reason), now,
                                      err);
    if (rc == 0 && g->state != JG_PENDING && g->backend)
        rc = jg_store_set_group_infra(s->store, g->id, g->backend->name, err);
    for (size_t i = 0; rc == 0 && i < g->spec->n_jobs; i++) {
        const job_rt_t *j = &g->jobs[i];
        jg_job_row_t row = {.group_id = g->id, .index = j->index, .state = j->state,
                            .reason = (char *)jg_sched_text(j->reason), .attempt = j->attempt,
                            .restarts = j->restarts, .recoveries = j->recoveries,
                            .free_restarts = j->free_restarts, .exit_code = j->exit_code,
                            .restart_count = j->restart_pending ? (int)j->restart_count : -1,
                            .restart_due_us = j->restart_pending ? j->restart_due_us : 0};
        rc = jg_store_put_job(s->store, &row, err);
        for (int r = 0; rc == 0 && r < j->n_nodes; r++)
            rc = jg_store_set_node_state(s->store, g->id, j->index, r, j->nodes[r].state,
                                         j->nodes[r].attempt, j->nodes[r].exit_code,
                                         "written again after a store failure", now, err);
    }
    if (rc == 0)
        return jg_store_commit(s->store, err);
    jg_store_rollback(s->store);
    return -1;
}

static void resync_fired(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_sched_t *s = arg;
    s->resync_timer = 0;
    bool left = false;
    for (group_rt_t *g = s->head, *next; g; g = next) {
        next = g->next;
        if (!g->unsynced)
            continue;
        jg_error_t err;
        if (write_group(s, g, &err) < 0) {
            left = true;
            continue;
        }
        g->unsynced = false;
        jg_log("info", "group %lld: written to the store again", (long long)g->id);
        int64_t id = g->id;
        if (g->finished)
            unlink_and_free(s, g);
        jg_sched_changed(s, id);
    }
    if (left)
        s->resync_timer = jg_loop_add_timer(s->loop, RESYNC_MS, resync_fired, s);
}

static const char *job_name(const job_rt_t *j)
{
    return j->group->spec->jobs[j->index].name;
}

static void add_backend(jg_sched_t *s, jg_backend_t *backend)
{
    s->backends = jg_xrealloc(s->backends, (s->n_backends + 1) * sizeof *s->backends);
    s->backends[s->n_backends++] = (backend_slot_t){.backend = backend};
    s->admission_dirty = true;
}

/* The whole infra string decides: "kubernetes/ctx-a" and "kubernetes/ctx-b"
 * are two instances, each made on first use. */
jg_backend_t *jg_sched_backend_named(jg_sched_t *s, const char *infra, bool make)
{
    jg_error_t err;
    jg_backend_t *b = jg_sched_backend_make(s, infra, make, &err);
    if (!b && err.text[0])
        jg_log("error", "infra %s: %s", infra, err.text);
    return b;
}

jg_backend_t *jg_sched_backend_make(jg_sched_t *s, const char *infra, bool make, jg_error_t *err)
{
    err->text[0] = '\0';
    if (!infra)
        return NULL;
    for (size_t i = 0; i < s->n_backends; i++)
        if (strcmp(s->backends[i].backend->name, infra) == 0)
            return s->backends[i].backend;
    if (!make || s->opts.no_registry || !jg_registry_knows(&s->env, infra))
        return NULL;
    jg_backend_t *b = jg_registry_create(&s->env, infra, err);
    if (!b)
        return NULL;
    jg_log("info", "infra %s: backend instance made on first use", infra);
    add_backend(s, b);
    return b;
}

static jg_backend_t *backend_for_infra(jg_sched_t *s, const char *infra)
{
    return jg_sched_backend_named(s, infra, true);
}

static void group_free(group_rt_t *g)
{
    if (!g)
        return;
    if (g->jobs) {
        for (size_t i = 0; i < g->spec->n_jobs; i++) {
            free(g->jobs[i].nodes);
            free(g->jobs[i].reason);
            free(g->jobs[i].stop_reason);
            free(g->jobs[i].cancel_reason);
        }
        free(g->jobs);
    }
    free(g->reason);
    free(g->end_reason);
    if (g->own_slot)
        g->own_slot->groups--;      /* a sweep frees it once no group uses it */
    jg_spec_free(g->spec);
    jg_sched_user_unref(g->sched, g->owner);
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
    g->owner = jg_sched_user_ref(s, user ? user : "");
    g->user = g->owner->name;
    g->submitted_us = submitted_us;
    g->state = JG_PENDING;
    g->backend = backend;
    g->end_override = JG_PENDING;
    g->own_policy = -1;
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
            j->nodes[r] = (node_rt_t){.state = JG_PENDING, .attempt = 1, .exit_code = -1};
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
    jg_sched_index_add(s, g);
    s->n_active++;
}

static backend_slot_t *slot_of(const jg_sched_t *s, const jg_backend_t *b)
{
    for (size_t i = 0; i < s->n_backends; i++)
        if (s->backends[i].backend == b)
            return &s->backends[i];
    return NULL;
}

static double group_cpus(const jg_group_spec_t *spec)
{
    double cpus = 0;
    for (size_t i = 0; i < spec->n_jobs; i++)
        cpus += spec->jobs[i].num_nodes * jg_node_cpus(&spec->jobs[i]);
    return cpus;
}

static void kick(jg_sched_t *s);

/* What g's owner holds changes by one admitted group (sign +1 or -1): the
 * per-user limits read it, and so may the configured policy's priority(),
 * which is asked again for that user's queued groups at the next pass (once
 * however many of the user's groups started or ended since the last; the
 * order matters only when a pass admits). */
static void charge_owner(jg_sched_t *s, group_rt_t *g, int sign)
{
    user_rec_t *u = g->owner;
    u->groups += sign;
    u->cpus += sign * group_cpus(g->spec);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        const jg_job_spec_t *job = &g->spec->jobs[i];
        u->nodes += sign * job->num_nodes;
        u->usage_cpus += sign * job->num_nodes * (job->cpus.set ? job->cpus.value : 1);
    }
    bool revisit = (s->ranked && u->queued) || ((u->at_limit || u->n_parked) && sign < 0);
    if (revisit && !s->closing && !u->revisit_due) {
        u->revisit_due = true;
        s->revisit_users = jg_xrealloc(s->revisit_users,
                                      (s->n_revisit_users + 1) * sizeof *s->revisit_users);
        s->revisit_users[s->n_revisit_users++] = u;
        s->admission_dirty = true;
        kick(s);
    }
}

static void hold_resources(jg_sched_t *s, group_rt_t *g)
{
    backend_slot_t *slot = slot_of(s, g->backend);
    if (slot && !g->holds_resources) {
        jg_usage_add_group(&slot->used, g->spec, +1);
        g->holds_resources = true;
        charge_owner(s, g, +1);
    }
}

static void release_resources(jg_sched_t *s, group_rt_t *g)
{
    backend_slot_t *slot = slot_of(s, g->backend);
    if (slot && g->holds_resources) {
        jg_usage_add_group(&slot->used, g->spec, -1);
        g->holds_resources = false;
        s->admission_dirty = true;
        charge_owner(s, g, -1);
    }
}

/* An ended group leaves memory before its backend reported CLEANED: what it
 * holds stays counted, in a record of its own, until then. */
static void keep_until_cleaned(jg_sched_t *s, group_rt_t *g)
{
    cleaning_t *c = jg_xcalloc(1, sizeof *c);
    c->group_id = g->id;
    c->backend = g->backend;
    jg_usage_add_group(&c->used, g->spec, +1);
    c->next = s->cleaning;
    s->cleaning = c;
    g->holds_resources = false;     /* now the record's */
    charge_owner(s, g, -1);         /* the user no longer runs it */
}

/* u -= what; accelerator counts by name. */
static void usage_subtract(jg_usage_t *u, const jg_usage_t *what)
{
    u->cpus -= what->cpus;
    u->memory_gb -= what->memory_gb;
    for (size_t i = 0; i < what->n_accels; i++)
        for (size_t k = 0; k < u->n_accels; k++)
            if (strcasecmp(u->accels[k].name, what->accels[i].name) == 0)
                u->accels[k].count -= what->accels[i].count;
}

/* The backend reported CLEANED for group_id: what the group held is free. */
static void cleaned(jg_sched_t *s, int64_t group_id, const char *reason)
{
    if (reason && *reason)
        jg_log("warn", "group %lld: cleanup left something behind: %s", (long long)group_id,
               reason);
    group_rt_t *g = jg_sched_find(s, group_id);
    if (g && g->finished && g->cleaning) {
        g->cleaning = false;
        release_resources(s, g);
        return;
    }
    for (cleaning_t **pp = &s->cleaning; *pp; pp = &(*pp)->next) {
        cleaning_t *c = *pp;
        if (c->group_id != group_id)
            continue;
        backend_slot_t *slot = slot_of(s, c->backend);
        if (slot)
            usage_subtract(&slot->used, &c->used);
        *pp = c->next;
        jg_usage_clear(&c->used);
        free(c);
        s->admission_dirty = true;
        return;
    }
}

/* ----------------------------------------------------------- the queue
 *
 * Every PENDING group that is not being cancelled sits in its backend's
 * ranked queue (sched_queue.c), keyed by (priority key, id).  The key is the
 * configured policy's priority(), computed when its inputs change: when the
 * group is queued (submit, recovery, a launch the store refused), when its
 * owner's usage changes (one of their groups admitted or giving its
 * resources back), when the policies are reloaded, and, for what a policy
 * may read besides (the clock, other users' usage, its own globals), every
 * PRIORITY_REFRESH_MS for every queued group.  With FIFO (default.lua's
 * priority) the key is 0 for all and the id alone orders: no Lua call.
 *
 * A pass walks each backend's queue from the head and stops at the first
 * group that does not fit (the blocker).  The BEHIND_NAMED groups right
 * behind it wait "behind group N (what N needs)", written at each pass where
 * that changed; those further back wait "in line", a reason that stays true
 * while they stay back there, so neither a submit nor a group starting or
 * ending rewrites the reason of every waiting group: each costs the same
 * whatever the length of the queue. */

#define PRIORITY_REFRESH_MS 30000
#define BEHIND_NAMED 100

static uint32_t reason_hash(const char *text);

/* Records why a pending group waits, when that changed. */
static void set_pending_reason(jg_sched_t *s, group_rt_t *g, const char *why)
{
    uint32_t h = reason_hash(why);
    if (g->pending_hash == h)
        return;
    g->pending_hash = h;
    set_group_state(s, g, JG_PENDING, why);
    jg_sched_changed(s, g->id);
}

static void wait_behind(jg_sched_t *s, const backend_slot_t *slot, group_rt_t *g)
{
    char why[384];
    snprintf(why, sizeof why, "waiting behind group %lld (%s)", (long long)slot->blocker,
             slot->blocker_why);
    set_pending_reason(s, g, why);
}

static void wait_in_line(jg_sched_t *s, const backend_slot_t *slot, group_rt_t *g)
{
    char why[384];
    snprintf(why, sizeof why, "waiting in line on infra %s: more than %d groups ahead of it "
                              "(no backfill)", slot->backend->name, BEHIND_NAMED);
    set_pending_reason(s, g, why);
}

/* Whether g is one of the BEHIND_NAMED groups right behind blocker. */
static bool named_behind(const group_rt_t *blocker, const group_rt_t *g)
{
    const group_rt_t *h = jg_rq_next(blocker);
    for (int k = 0; h && k < BEHIND_NAMED; h = jg_rq_next(h), k++)
        if (h == g)
            return true;
    return false;
}

static void refresh_fired(jg_loop_t *loop, void *arg);

/* g waits off the queues until its owner may run one more group; it says
 * why (a write only when it did not say so already). */
static void park(jg_sched_t *s, group_rt_t *g)
{
    user_rec_t *u = g->owner;
    jg_parked_insert(u, g);
    set_pending_reason(s, g, jg_sched_text(u->limit_why));
}

static void unlink_parked(group_rt_t *g)
{
    jg_parked_remove(g->owner, g);
}

static void queue_group(jg_sched_t *s, group_rt_t *g);

/* u's best parked group on infra b, if any, back into b's queue: u may run
 * one more, or one of theirs left b's queue and the next one must be where a
 * pass sees it.  Only the best: the others still rank behind it, and would
 * not start before it anyway.  O(log n), however many are parked.  The
 * others keep the reason they were parked with ("alice runs 2 of at most 2
 * groups"), true again once the one that came back starts; while it cannot
 * (it waits for resources or a nodes/cpus limit) the count they show is the
 * one of when they were parked: telling each of them would make every
 * turnover O(parked) again. */
static void unpark_next(jg_sched_t *s, user_rec_t *u, const jg_backend_t *b)
{
    group_rt_t *g = u->at_limit || s->closing ? NULL : jg_parked_first_on(u, b);
    if (!g)
        return;
    unlink_parked(g);
    jg_sched_compute_priorities(s, &g, 1);
    queue_group(s, g);
}

/* Puts g (its prio_key computed) into its backend's queue.  Behind the
 * blocker it waits at once; anywhere else the next pass looks at it.  A
 * group of a user at their limit is parked instead. */
static void queue_group(jg_sched_t *s, group_rt_t *g)
{
    backend_slot_t *slot = slot_of(s, g->backend);
    if (!slot || g->queued || g->parked)
        return;
    /* At the limit, or ranked behind a group of the same user still parked
     * on this infra (which would start first): parked too. */
    group_rt_t *parked_first = g->owner->n_parked ? jg_parked_first_on(g->owner, g->backend)
                                                   : NULL;
    if (g->owner->at_limit || (parked_first && jg_rq_cmp(g, parked_first) > 0)) {
        txn_begin(s);
        park(s, g);
        txn_end(s);
        return;
    }
    jg_rq_insert(slot, g);
    group_rt_t *blocker = slot->blocker ? jg_sched_find(s, slot->blocker) : NULL;
    if (blocker && blocker != g && blocker->queued && jg_rq_cmp(g, blocker) > 0) {
        txn_begin(s);
        if (named_behind(blocker, g))
            wait_behind(s, slot, g);
        else
            wait_in_line(s, slot, g);
        txn_end(s);
    } else {
        s->admission_dirty = true;
    }
    if (s->ranked && !s->refresh_timer)
        s->refresh_timer = jg_loop_add_timer(s->loop, PRIORITY_REFRESH_MS, refresh_fired, s);
}

static void dequeue_group(jg_sched_t *s, group_rt_t *g)
{
    if (g->parked) {
        unlink_parked(g);
        return;
    }
    backend_slot_t *slot = g->queued ? slot_of(s, g->backend) : NULL;
    if (!slot)
        return;
    jg_rq_remove(slot, g);
    if (slot->blocker == g->id) {
        slot->blocker = 0;      /* the next pass finds the new one */
        s->admission_dirty = true;
    }
    if (g->owner->n_parked)
        unpark_next(s, g->owner, g->backend);     /* the owner's next takes its place */
}

/* A group just made PENDING (submitted, recovered, not launched): ranked and
 * queued. */
static void enqueue(jg_sched_t *s, group_rt_t *g)
{
    jg_sched_compute_priorities(s, &g, 1);
    queue_group(s, g);
}

/* The n queued groups get their priority() asked again; those whose key
 * changed move. */
static void rerank(jg_sched_t *s, group_rt_t **groups, size_t n)
{
    double *old = jg_xcalloc(n ? n : 1, sizeof *old), *key = jg_xcalloc(n ? n : 1, sizeof *key);
    for (size_t i = 0; i < n; i++)
        old[i] = groups[i]->prio_key;
    jg_sched_compute_priorities(s, groups, n);
    /* The tree stays ordered by the keys it was built with until each group
     * is moved. */
    for (size_t i = 0; i < n; i++) {
        key[i] = groups[i]->prio_key;
        groups[i]->prio_key = old[i];
    }
    for (size_t i = 0; i < n; i++) {
        if (key[i] == old[i])
            continue;
        dequeue_group(s, groups[i]);
        groups[i]->prio_key = key[i];
        queue_group(s, groups[i]);
    }
    free(old);
    free(key);
}

/* u reached their running_groups limit: every queued group of theirs, on
 * every infra, leaves the queues and waits, saying why.  Those parked
 * already say it too, rewritten only if the text changed (the limit or what
 * u runs changed with a configuration reload): at each turnover of a user
 * at a limit that stays, it is the same text, and nothing parked is
 * touched. */
static void park_user(jg_sched_t *s, user_rec_t *u, const char *why)
{
    u->at_limit = true;
    if (strcmp(jg_sched_text(u->limit_why), why) != 0) {
        jg_sched_text_set(&u->limit_why, why);
        for (size_t i = 0; i < s->n_backends; i++)
            for (group_rt_t *g = jg_parked_first_on(u, s->backends[i].backend);
                 g && g->backend == s->backends[i].backend; g = jg_rq_next(g))
                set_pending_reason(s, g, why);
    }
    while (u->queued) {
        group_rt_t *g = u->queued;
        dequeue_group(s, g);
        park(s, g);
    }
}

/* Every parked group of u ranked again (their priority() asked with one
 * usage snapshot) and queued (a pass parks them again if u is still at the
 * limit). */
static void unpark_all(jg_sched_t *s, user_rec_t *u)
{
    u->at_limit = false;
    size_t n = 0;
    group_rt_t **groups = jg_xcalloc(u->n_parked ? u->n_parked : 1, sizeof *groups);
    while (u->parked) {
        groups[n] = u->parked;
        unlink_parked(groups[n++]);
    }
    jg_sched_compute_priorities(s, groups, n);
    for (size_t i = 0; i < n; i++)
        queue_group(s, groups[i]);
    free(groups);
}

/* u's usage dropped.  FIFO: the best parked group of each infra comes back
 * to its queue, the next one as each leaves it (dequeue_group), so a
 * turnover costs the same with 10 or 100,000 parked.  Ranked: each parked
 * group's key may depend on that usage, and which is best is only known by
 * asking priority() for all of them: all come back, ranked again. */
static void unpark_user(jg_sched_t *s, user_rec_t *u)
{
    if (s->ranked) {
        unpark_all(s, u);
        return;
    }
    u->at_limit = false;
    for (size_t i = 0; i < s->n_backends && u->n_parked; i++)
        unpark_next(s, u, s->backends[i].backend);
}

static void rerank_user(jg_sched_t *s, user_rec_t *u)
{
    size_t n = 0;
    for (group_rt_t *g = u->queued; g; g = g->rq_user_next)
        n++;
    group_rt_t **groups = jg_xcalloc(n ? n : 1, sizeof *groups);
    n = 0;
    for (group_rt_t *g = u->queued; g; g = g->rq_user_next)
        groups[n++] = g;
    rerank(s, groups, n);
    free(groups);
}

/* Every queued group ranked again (policy reload, the periodic refresh).
 * The blockers are found again too, so each waiting reason is right for the
 * new order (rewritten only where its text changed). */
void jg_sched_rerank_all(jg_sched_t *s)
{
    bool was_ranked = s->ranked;
    s->ranked = jg_sched_policy_ranks(s);
    /* Parked groups keep the keys they were parked with.  Ranked now, a
     * user below their limit has none parked (unpark_user); FIFO now, every
     * key is 0 again, and the parked sets are rebuilt in id order. */
    for (size_t i = 0; i < s->n_users && (was_ranked || s->ranked); i++) {
        user_rec_t *u = s->users[i];
        if (!u->n_parked)
            continue;
        if (s->ranked && !u->at_limit) {
            unpark_all(s, u);
        } else if (!s->ranked) {
            size_t n = 0;
            group_rt_t **groups = jg_xcalloc(u->n_parked, sizeof *groups);
            while (u->parked) {
                groups[n] = u->parked;
                unlink_parked(groups[n++]);
            }
            jg_sched_compute_priorities(s, groups, n);
            for (size_t k = 0; k < n; k++)
                jg_parked_insert(u, groups[k]);
            free(groups);
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < s->n_backends; i++)
        n += s->backends[i].n_queued;
    group_rt_t **groups = jg_xcalloc(n ? n : 1, sizeof *groups);
    n = 0;
    for (size_t i = 0; i < s->n_backends; i++)
        for (group_rt_t *g = jg_rq_first(&s->backends[i]); g; g = jg_rq_next(g))
            groups[n++] = g;
    rerank(s, groups, n);
    free(groups);
    for (size_t i = 0; i < s->n_backends; i++)
        s->backends[i].blocker = 0;
    s->admission_dirty = true;
    if (n && s->ranked && !s->refresh_timer)
        s->refresh_timer = jg_loop_add_timer(s->loop, PRIORITY_REFRESH_MS, refresh_fired, s);
}

static void refresh_fired(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_sched_t *s = arg;
    s->refresh_timer = 0;
    if (s->ranked)
        jg_sched_rerank_all(s);
}

/* Every way out of the active list (an end, a failed recovery, shutdown) passes
 * here, so what a group held is given back exactly once. */
static void unlink_and_free(jg_sched_t *s, group_rt_t *g)
{
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        if (g->jobs[i].cancel_timer)
            jg_loop_cancel_timer(s->loop, g->jobs[i].cancel_timer);
        if (g->jobs[i].restart_timer)
            jg_loop_cancel_timer(s->loop, g->jobs[i].restart_timer);
    }
    if (g->cleaning && g->holds_resources)
        keep_until_cleaned(s, g);
    else
        release_resources(s, g);
    dequeue_group(s, g);
    jg_sched_index_remove(s, g);
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
void jg_sched_stop_job(jg_sched_t *s, job_rt_t *j, jg_state_t stop_state, const char *reason)
{
    if (jg_state_is_terminal(j->state))
        return;
    if (j->restart_pending) {
        /* A stop overrides a restart in progress: the job ends instead. */
        j->restart_pending = false;
        if (j->restart_timer) {
            jg_loop_cancel_timer(s->loop, j->restart_timer);
            j->restart_timer = 0;
        }
        j->stop_state = stop_state;
        jg_sched_text_set(&j->stop_reason, reason);
        if (j->stopping)
            return;     /* its nodes are already being stopped */
    }
    if (j->stopping)
        return;
    j->stopping = true;
    j->stop_state = stop_state;
    jg_sched_text_set(&j->stop_reason, reason);
    jg_error_t err;
    if (j->group->backend->ops->stop(j->group->backend, j->group->id, j->index, -1,
                                     s->opts.stop_grace_ms, &err) < 0)
        jg_log("error", "group %lld: stopping job %s: %s", (long long)j->group->id, job_name(j),
               err.text);
}

/* The group cannot go on: it will end group_state (kept if an earlier reason
 * already decided), the culprit job ends culprit_state, and every other job is
 * stopped, CANCELLED, with "<why_siblings>: <reason>". */
void jg_sched_end_group(jg_sched_t *s, group_rt_t *g, job_rt_t *culprit, jg_state_t culprit_state,
                        jg_state_t group_state, const char *why_siblings, const char *reason)
{
    if (g->end_override == JG_PENDING) {
        g->end_override = group_state;
        jg_sched_text_set(&g->end_reason, reason);
    }
    jg_sched_stop_job(s, culprit, culprit_state, reason);
    char sibling_reason[384];
    snprintf(sibling_reason, sizeof sibling_reason, "%s: %s", why_siblings, reason);
    for (size_t i = 0; i < g->spec->n_jobs; i++)
        if (&g->jobs[i] != culprit)
            jg_sched_stop_job(s, &g->jobs[i], JG_CANCELLED, sibling_reason);
}

/* Setup failed (or a node was lost) before the barrier opened: the group cannot
 * start as a whole, so every other node is stopped. */
void jg_sched_fail_before_barrier(jg_sched_t *s, group_rt_t *g, job_rt_t *culprit,
                                  jg_state_t culprit_state, const char *reason)
{
    jg_sched_end_group(s, g, culprit, culprit_state, culprit_state, "stopped before the barrier",
                       reason);
}

/* The state a job ends in once every node of its current attempt is down. */
static jg_state_t job_outcome(const job_rt_t *j, char *reason, size_t len)
{
    if (j->stopping) {
        snprintf(reason, len, "%s", jg_sched_text(j->stop_reason));
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
        snprintf(reason, len, "%s", jg_sched_text(g->end_reason));
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
        jg_sched_fail_before_barrier(s, g, &g->jobs[0], JG_FAILED, err.text);
        return;
    }
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        if (j->stopping || jg_state_is_terminal(j->state) || !job_all_nodes(j, JG_READY))
            continue;
        for (int r = 0; r < j->n_nodes; r++) {
            j->nodes[r].released = true;
            set_node_state(s, j, r, JG_RUNNING, -1, "barrier released");
        }
        jg_sched_set_job_state(s, j, JG_RUNNING, "barrier released: every node finished setup");
    }
    if (g->state == JG_STARTING)
        set_group_state(s, g, JG_RUNNING, "barrier released: every node of every job finished setup");
}

/* g ended (its terminal state written): it gives back what it held now and
 * leaves memory once the end is committed (txn_end, or the resync). */
static void end_group_rt(jg_sched_t *s, group_rt_t *g)
{
    g->finished = true;
    if (!g->cleaning)
        release_resources(s, g);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        if (j->cancel_timer)
            jg_loop_cancel_timer(s->loop, j->cancel_timer);
        if (j->restart_timer)
            jg_loop_cancel_timer(s->loop, j->restart_timer);
        j->cancel_timer = j->restart_timer = 0;
    }
    jg_sched_changed(s, g->id);
    if (s->txn_depth == 0 && !g->unsynced)
        unlink_and_free(s, g);
}

static void finish_group(jg_sched_t *s, group_rt_t *g)
{
    char reason[384];
    jg_state_t st = group_outcome(g, reason, sizeof reason);
    set_group_state(s, g, st, reason);
    jg_error_t err;
    /* What it holds is free once the backend says CLEANED, not before: a
     * slow delete (pods) must not let the next group in too early. */
    g->cleaning = g->backend != NULL;
    if (g->backend && g->backend->ops->cleanup(g->backend, g->id, &err) < 0) {
        jg_log("warn", "group %lld: cleanup: %s", (long long)g->id, err.text);
        g->cleaning = false;
    }
    jg_log("info", "group %lld (%s) ended %s: %s", (long long)g->id, g->spec->name,
           jg_state_name(st), reason);
    end_group_rt(s, g);
}

static void launch_nodes(jg_sched_t *s, group_rt_t *g, const jg_node_ref_t *refs, size_t n);

static void free_kv(jg_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

/* A restarted job whose nodes are all down: a new attempt, launched now or
 * when its restart delay ends. */
static void restart_due(jg_loop_t *loop, void *arg)
{
    (void)loop;
    job_rt_t *j = arg;
    jg_sched_t *s = j->group->sched;
    int64_t id = j->group->id;
    j->restart_timer = 0;
    txn_begin(s);
    evaluate(s, j->group);
    jg_sched_changed(s, id);
    txn_end(s);                 /* may free the group */
}

static void relaunch_when_due(jg_sched_t *s, group_rt_t *g, job_rt_t *j)
{
    int64_t wait = j->restart_not_before_ms - jg_now_mono_ms();
    if (wait > 0) {
        if (!j->restart_timer)
            j->restart_timer = jg_loop_add_timer(s->loop, wait, restart_due, j);
        return;
    }
    jg_error_t err;
    j->restart_pending = false;
    j->stopping = false;
    j->exit_decided = false;
    j->attempt++;
    if (j->restart_count == JG_COUNT_RESTART)
        j->restarts++;
    else if (j->restart_count == JG_COUNT_RECOVERY)
        j->recoveries++;
    else
        j->free_restarts++;
    jg_node_ref_t *refs = jg_xcalloc((size_t)j->n_nodes, sizeof *refs);
    touch(s, g);
    if (jg_store_job_new_attempt(s->store, g->id, j->index, j->restart_count, now_us(), &err) < 0)
        store_failed(s, g, "new attempt", &err);
    char reason[96];
    snprintf(reason, sizeof reason, "attempt %d: relaunching", j->attempt);
    for (int r = 0; r < j->n_nodes; r++) {
        j->nodes[r].attempt = j->attempt;
        j->nodes[r].released = false;
        set_node_state(s, j, r, JG_STARTING, -1, reason);
        refs[r] = (jg_node_ref_t){.job_index = j->index, .rank = r, .attempt = j->attempt};
    }
    jg_log("info", "group %lld: job %s attempt %d", (long long)g->id, job_name(j), j->attempt);
    launch_nodes(s, g, refs, (size_t)j->n_nodes);
    free(refs);
    /* A restart asked for during the launch itself (a backend reporting an
     * exit at once) has no event left to wake it: the loop's next turn does. */
    if (j->restart_pending && !j->restart_timer)
        j->restart_timer = jg_loop_add_timer(s->loop, 0, restart_due, j);
}

void jg_sched_request_restart(jg_sched_t *s, job_rt_t *j, jg_attempt_count_t count,
                              double delay_s, const char *reason)
{
    if (j->restart_pending)
        return;
    j->restart_pending = true;
    j->restart_count = count;
    j->restart_not_before_ms = jg_now_mono_ms() + (int64_t)(delay_s * 1000);
    j->restart_due_us = now_us() + (int64_t)(delay_s * 1e6);
    jg_sched_set_job_state(s, j, JG_RECOVERING, reason);
    /* So a daemon restart meanwhile charges the right counter and keeps the delay. */
    jg_error_t serr;
    if (jg_store_set_job_restart(s->store, j->group->id, j->index, (int)count, j->restart_due_us,
                                 &serr) < 0)
        store_failed(s, j->group, "pending restart", &serr);
    if (!job_all_nodes_down(j) && !j->stopping) {
        j->stopping = true;
        j->stop_state = JG_RECOVERING;
        jg_sched_text_set(&j->stop_reason, reason);
        jg_error_t err;
        if (j->group->backend->ops->stop(j->group->backend, j->group->id, j->index, -1,
                                         s->opts.stop_grace_ms, &err) < 0)
            jg_log("error", "group %lld: stopping job %s for a restart: %s",
                   (long long)j->group->id, job_name(j), err.text);
    }
}

void jg_sched_record(jg_sched_t *s, int64_t group_id, const char *subject, const char *what,
                     const char *reason)
{
    jg_error_t err;
    group_rt_t *g = find_group(s, group_id);
    if (g)
        touch(s, g);
    if (jg_store_add_event(s->store, group_id, subject, what, reason, now_us(), &err) < 0)
        store_failed(s, g, "event", &err);
}

/* Derives everything that follows from the current node states. */
static void evaluate(jg_sched_t *s, group_rt_t *g)
{
    if (g->launching || jg_state_is_terminal(g->state) || g->state == JG_PENDING)
        return;
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        if (jg_state_is_terminal(j->state) || !job_all_nodes_down(j))
            continue;
        if (j->restart_pending && !g->cancelling && g->end_override == JG_PENDING) {
            relaunch_when_due(s, g, j);
            /* A launch refused at once leaves every node down and no event to
             * come: the job ends now, as the failure it is. */
            if (j->restart_pending || !job_all_nodes_down(j))
                continue;
        }
        char reason[384];
        jg_state_t st = job_outcome(j, reason, sizeof reason);
        if (j->cancel_timer) {
            jg_loop_cancel_timer(s->loop, j->cancel_timer);
            j->cancel_timer = 0;
        }
        jg_sched_set_job_state(s, j, st, reason);
        jg_sched_job_ended(s, g, j);
    }

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

static void retry_admission_later(jg_sched_t *s);

/* Launches an admitted group; false if the store refused to record the
 * launch (the group is queued again, nothing ran). */
static bool launch_group(jg_sched_t *s, group_rt_t *g)
{
    size_t total = jg_spec_total_nodes(g->spec);
    jg_node_ref_t *refs = jg_xcalloc(total, sizeof *refs);
    size_t n = 0;
    jg_error_t err;
    txn_begin(s);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        for (int r = 0; r < j->n_nodes; r++) {
            refs[n++] = (jg_node_ref_t){.job_index = (int)i, .rank = r, .attempt = j->attempt};
            set_node_state(s, j, r, JG_STARTING, -1, "launching");
        }
        jg_sched_set_job_state(s, j, JG_STARTING, "launching: setup runs on every node");
    }
    if (jg_store_set_group_infra(s->store, g->id, g->backend->name, &err) < 0)
        store_failed(s, g, "infra", &err);
    set_group_state(s, g, JG_STARTING, "admitted: launching every node in parallel");
    if (txn_end(s) < 0) {
        /* Nothing runs that the store does not know of: the group stays
         * PENDING, as the store still has it, and is tried again later. */
        g->unsynced = false;
        g->state = JG_PENDING;
        g->pending_hash = 0;
        for (size_t i = 0; i < g->spec->n_jobs; i++) {
            g->jobs[i].state = JG_PENDING;
            for (int r = 0; r < g->jobs[i].n_nodes; r++)
                g->jobs[i].nodes[r].state = JG_PENDING;
        }
        release_resources(s, g);
        s->n_pending++;
        enqueue(s, g);
        jg_log("error", "group %lld: not launched, the store cannot record it; trying again in "
                        "%d ms", (long long)g->id, RESYNC_MS);
        retry_admission_later(s);
        free(refs);
        return false;
    }
    txn_begin(s);
    launch_nodes(s, g, refs, n);
    free(refs);
    jg_sched_changed(s, g->id);
    evaluate(s, g);
    txn_end(s);     /* may free g */
    return true;
}

/* Asks the backend for these nodes; if it refuses outright, they fail (and,
 * before the barrier, so does the group: nothing is half-launched). */
/* Every volume the group's jobs mount, resolved to its host directory; a
 * volume removed since submit is an error.  None for a backend whose volumes
 * are its infra's own objects (a PVC): only the infra knows those. */
static int resolve_volumes(jg_sched_t *s, const jg_backend_t *b, const jg_group_spec_t *spec,
                           jg_kv_t **out, size_t *n, jg_error_t *err)
{
    *out = NULL;
    *n = 0;
    if (b->ops->volumes_in_infra)
        return 0;
    for (size_t i = 0; i < spec->n_jobs; i++) {
        for (size_t v = 0; v < spec->jobs[i].n_volumes; v++) {
            const char *name = spec->jobs[i].volumes[v].value;
            bool seen = false;
            for (size_t k = 0; k < *n && !seen; k++)
                seen = strcmp((*out)[k].key, name) == 0;
            if (seen)
                continue;
            char *path = s->opts.volume_path ? s->opts.volume_path(s->opts.volume_ctx, name) : NULL;
            if (!path) {
                jg_errprintf(err, "job %s mounts volume %s at %s, but there is no such volume "
                                  "(create it with: jgsched volume create %s)",
                             spec->jobs[i].name, name, spec->jobs[i].volumes[v].key, name);
                free_kv(*out, *n);
                *out = NULL;
                *n = 0;
                return -1;
            }
            *out = jg_xrealloc(*out, (*n + 1) * sizeof **out);
            (*out)[(*n)++] = (jg_kv_t){.key = jg_xstrdup(name), .value = path};
        }
    }
    return 0;
}

static void launch_nodes(jg_sched_t *s, group_rt_t *g, const jg_node_ref_t *refs, size_t n)
{
    jg_launch_t req = {.group_id = g->id, .infra = g->backend->name, .spec = g->spec,
                       .uid = g->uid, .gid = g->gid,
                       .user = g->user, .submitted_us = g->submitted_us, .nodes = refs,
                       .n_nodes = n};
    jg_error_t err;
    jg_kv_t *volumes = NULL;
    size_t n_volumes = 0;
    int rc = resolve_volumes(s, g->backend, g->spec, &volumes, &n_volumes, &err);
    if (rc == 0) {
        req.volumes = volumes;
        req.n_volumes = n_volumes;
        g->launching = true;
        rc = g->backend->ops->launch(g->backend, &req, &err);
        g->launching = false;
        free_kv(volumes, n_volumes);
    }
    if (rc == 0)
        return;
    jg_log("error", "group %lld: launch failed: %s", (long long)g->id, err.text);
    char reason[600];
    snprintf(reason, sizeof reason, "launch failed: %s", err.text);
    if (g->state == JG_STARTING && g->end_override == JG_PENDING) {
        g->end_override = JG_FAILED;
        jg_sched_text_set(&g->end_reason, reason);
    }
    for (size_t i = 0; i < n; i++) {
        job_rt_t *j = &g->jobs[refs[i].job_index];
        set_node_state(s, j, refs[i].rank, JG_FAILED, -1, reason);
        j->stopping = true;
        j->stop_state = JG_FAILED;
        jg_sched_text_set(&j->stop_reason, reason);
    }
    if (g->state == JG_STARTING)
        for (size_t i = 0; i < g->spec->n_jobs; i++)
            jg_sched_stop_job(s, &g->jobs[i], JG_CANCELLED, reason);
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

static void kick(jg_sched_t *s);

/* Output of a node: into the logstore, whatever attempt it belongs to (after
 * a reattach, the tail of an earlier one may come first). */
static void node_output(jg_sched_t *s, const jg_backend_event_t *ev)
{
    group_rt_t *g = find_group(s, ev->group_id);
    if (!s->opts.logs || !g || ev->job_index < 0 || (size_t)ev->job_index >= g->spec->n_jobs ||
        ev->rank < 0 || ev->rank >= g->jobs[ev->job_index].n_nodes || ev->attempt < 1 ||
        (!ev->data && ev->len))
        return;
    jg_error_t err;
    if (jg_logstore_append(s->opts.logs, g->id, g->spec->jobs[ev->job_index].name, ev->rank,
                           ev->attempt, ev->data, ev->len, &err) < 0)
        jg_log("error", "group %lld: output of %s-%d lost: %s", (long long)g->id,
               g->spec->jobs[ev->job_index].name, ev->rank, err.text);
}

static uint32_t reason_hash(const char *text)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h ? h : 1;
}

/* A node waits inside the backend: its reason (and its job's) says why, in
 * the state it has; the same reason again writes nothing. */
static void node_pending(jg_sched_t *s, group_rt_t *g, job_rt_t *j, int rank, const char *why)
{
    node_rt_t *node = &j->nodes[rank];
    char reason[600];
    snprintf(reason, sizeof reason, "waiting in infra %s: %s", g->backend ? g->backend->name : "?",
             why && *why ? why : "no reason given");
    uint32_t h = reason_hash(reason);
    if (node->pending_hash == h)
        return;
    node->pending_hash = h;
    set_node_state(s, j, rank, node->state, node->exit_code, reason);
    char job_reason[700];
    snprintf(job_reason, sizeof job_reason, "node %d %s", rank, reason);
    jg_sched_set_job_state(s, j, j->state, job_reason);
}

void jg_sched_backend_event(void *ctx, const jg_backend_event_t *ev)
{
    jg_sched_t *s = ctx;
    switch (ev->type) {     /* events about no node, or about any attempt of one */
    case JG_BACKEND_LOG:
        node_output(s, ev);
        return;
    case JG_BACKEND_CAPACITY_CHANGED:
        s->admission_dirty = true;
        kick(s);
        return;
    case JG_BACKEND_CLEANED:
        cleaned(s, ev->group_id, ev->reason);
        kick(s);
        return;
    case JG_BACKEND_STOPPED:
        /* Every node it targeted reported its end already: nothing follows
         * from it that those events did not decide. */
        return;
    default:
        break;
    }
    group_rt_t *g = NULL;
    job_rt_t *j = event_job(s, ev, &g);
    if (!j)
        return;
    node_rt_t *node = &j->nodes[ev->rank];
    if (jg_state_is_terminal(node->state))
        return;
    jg_error_t err;
    char reason[600];
    txn_begin(s);

    switch (ev->type) {
    case JG_BACKEND_NODE_PENDING:
        node_pending(s, g, j, ev->rank, ev->reason);
        break;
    case JG_BACKEND_LOG:
    case JG_BACKEND_STOPPED:
    case JG_BACKEND_CLEANED:
    case JG_BACKEND_CAPACITY_CHANGED:
        break;      /* handled above */
    case JG_BACKEND_NODE_STARTED:
        node->pending_hash = 0;
        touch(s, g);
        if (jg_store_set_node_handle(s->store, g->id, j->index, ev->rank,
                                     ev->handle ? ev->handle : "", ev->address, &err) < 0)
            store_failed(s, g, "node handle", &err);
        break;
    case JG_BACKEND_SETUP_DONE:
        if (node->state == JG_STARTING)
            set_node_state(s, j, ev->rank, JG_READY, -1, "setup finished: waiting at the barrier");
        break;
    case JG_BACKEND_NODE_EXITED: {
        if (ev->signal)
            snprintf(reason, sizeof reason, "%s killed by signal %d", ev->in_setup ? "setup" : "run",
                     ev->signal);
        else
            snprintf(reason, sizeof reason, "%s exited with code %d", ev->in_setup ? "setup" : "run",
                     ev->exit_code);
        if (ev->reason && *ev->reason) {      /* e.g. killed by the OOM killer */
            size_t used = strlen(reason);
            snprintf(reason + used, sizeof reason - used, ": %s", ev->reason);
        }
        jg_state_t st;
        if (ev->exit_code == 0 && !ev->in_setup)
            st = JG_SUCCEEDED;
        else if (j->stopping || g->cancelling)
            st = JG_CANCELLED;
        else
            st = ev->in_setup ? JG_FAILED_SETUP : JG_FAILED;
        /* The job's exit is that of the node that decided its fate: the first
         * failure of the attempt, else the last success; never a sibling that
         * was stopped because of it (143 after SIGTERM). */
        if (st != JG_CANCELLED && !j->exit_decided) {
            j->exit_decided = st != JG_SUCCEEDED;
            set_job_exit(s, j, ev->exit_code);
        }
        set_node_state(s, j, ev->rank, st, ev->exit_code, reason);
        if (st != JG_CANCELLED)
            jg_sched_node_ended(s, g, j, ev->rank,
                                ev->in_setup ? JG_EXIT_SETUP_FAILED : JG_EXIT_EXITED,
                                ev->exit_code, st != JG_SUCCEEDED, reason);
        break;
    }
    case JG_BACKEND_NODE_LOST: {
        snprintf(reason, sizeof reason, "node lost: %s", ev->reason ? ev->reason : "no reason given");
        jg_state_t st = (j->stopping || g->cancelling) ? JG_CANCELLED : JG_FAILED;
        set_node_state(s, j, ev->rank, st, -1, reason);
        if (st == JG_FAILED)
            jg_sched_node_ended(s, g, j, ev->rank, JG_EXIT_NODE_LOST, -1, true, reason);
        break;
    }
    case JG_BACKEND_LAUNCH_FAILED: {
        /* Not the policy's call: a node that cannot even be created will not be
         * created by trying again. */
        snprintf(reason, sizeof reason, "launch failed: %s", ev->reason ? ev->reason : "no reason given");
        jg_state_t st = (j->stopping || g->cancelling) ? JG_CANCELLED : JG_FAILED;
        set_node_state(s, j, ev->rank, st, -1, reason);
        if (st == JG_FAILED) {
            if (g->state == JG_STARTING)
                jg_sched_fail_before_barrier(s, g, j, JG_FAILED, reason);
            else
                jg_sched_stop_job(s, j, JG_FAILED, reason);
        }
        break;
    }
    }
    int64_t id = g->id;
    evaluate(s, g);
    jg_sched_changed(s, id);
    txn_end(s);     /* may free g */
}

/* ------------------------------------------------------------- public API */

jg_sched_t *jg_sched_create(jg_store_t *store, jg_loop_t *loop, const jg_sched_options_t *opts,
                            jg_error_t *err)
{
    jg_sched_t *s = jg_xcalloc(1, sizeof *s);
    s->store = store;
    s->loop = loop;
    if (opts)
        s->opts = *opts;    /* strings are copied below; the rest is borrowed */
    if (s->opts.stop_grace_ms <= 0)
        s->opts.stop_grace_ms = 5000;
    s->policy_dir = jg_xstrdup(opts && opts->policy_dir ? opts->policy_dir : "policies");
    s->default_policy = jg_xstrdup(opts && opts->default_policy ? opts->default_policy : "default");
    s->env = s->opts.backend_env;
    s->env.on_event = jg_sched_backend_event;
    s->env.event_ctx = s;
    if (!s->env.loop)
        s->env.loop = loop;
    if (!s->env.config)
        s->env.config = s->opts.config;
    for (size_t i = 0; i < s->opts.n_extra_backends; i++)
        add_backend(s, s->opts.extra_backends[i]);
    s->opts.extra_backends = NULL;      /* ours now; the caller's array is not kept */
    s->opts.n_extra_backends = 0;
    /* Load the default policy now so a broken installation fails at start-up,
     * not at the first submit. */
    if (!jg_sched_policy(s, NULL, err)) {
        jg_errprefix(err, "cannot load the default policy from %s", s->policy_dir);
        jg_sched_destroy(s);
        return NULL;
    }
    s->ranked = jg_sched_policy_ranks(s);
    if (!s->opts.no_registry) {
        jg_backend_t **made = NULL;
        size_t n_made = 0;
        if (!s->env.state_dir) {
            jg_errprintf(err, "no state directory for the backends");
            jg_sched_destroy(s);
            return NULL;
        }
        if (jg_registry_create_all(&s->env, &made, &n_made, err) < 0) {
            jg_sched_destroy(s);
            return NULL;
        }
        /* The registry's order, before any made by hand. */
        size_t extra = s->n_backends;
        for (size_t i = 0; i < n_made; i++)
            add_backend(s, made[i]);
        for (size_t i = 0; i < extra; i++) {
            backend_slot_t first = s->backends[0];
            memmove(s->backends, s->backends + 1, (s->n_backends - 1) * sizeof *s->backends);
            s->backends[s->n_backends - 1] = first;
        }
        free(made);
    }
    return s;
}

void jg_sched_destroy(jg_sched_t *s)
{
    if (!s)
        return;
    s->closing = true;
    uint64_t timers[] = {s->kick_timer, s->resync_timer, s->retry_timer, s->refresh_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
        if (timers[i])
            jg_loop_cancel_timer(s->loop, timers[i]);
    while (s->head)
        unlink_and_free(s, s->head);
    jg_sched_index_free(s);
    free(s->touched);
    while (s->cleaning) {
        cleaning_t *c = s->cleaning;
        s->cleaning = c->next;
        jg_usage_clear(&c->used);
        free(c);
    }
    for (size_t i = 0; i < s->n_backends; i++) {
        s->backends[i].backend->ops->destroy(s->backends[i].backend);
        jg_usage_clear(&s->backends[i].used);
    }
    free(s->backends);
    jg_sched_policies_free(s);
    free(s->policy_dir);
    free(s->default_policy);
    free(s);
}

void jg_sched_set_change_cb(jg_sched_t *s, jg_sched_change_f cb, void *ctx)
{
    s->change_cb = cb;
    s->change_ctx = ctx;
}

void jg_sched_foreach_infra(const jg_sched_t *s, jg_sched_infra_f cb, void *ctx)
{
    for (size_t i = 0; i < s->n_backends; i++) {
        jg_backend_t *b = s->backends[i].backend;
        jg_sched_infra_t info = {
            .name = b->name,
            .kind = b->ops->kind,
            .capacity = b->ops->capacity ? b->ops->capacity(b) : NULL,
            .used = &s->backends[i].used,
            .warning = b->ops->warning ? b->ops->warning(b) : NULL,
            .notes = b->ops->notes ? b->ops->notes(b) : NULL,
        };
        cb(ctx, &info);
    }
}

const char *jg_sched_infra_warning(const jg_sched_t *s, const char *infra)
{
    jg_backend_t *b = NULL;
    if (!infra || !*infra)
        b = s->n_backends ? s->backends[0].backend : NULL;
    else
        for (size_t i = 0; i < s->n_backends && !b; i++)
            if (strcmp(s->backends[i].backend->name, infra) == 0)
                b = s->backends[i].backend;
    return b && b->ops->warning ? b->ops->warning(b) : NULL;
}

void jg_sched_foreach_active(const jg_sched_t *s, jg_sched_group_f cb, void *ctx)
{
    for (const group_rt_t *g = s->head; g; g = g->next)
        cb(ctx, g->id, g->user, g->state, g->backend ? g->backend->name : NULL, g->spec,
           g->holds_resources);
}

int64_t jg_sched_volume_user(const jg_sched_t *s, const char *name)
{
    for (const group_rt_t *g = s->head; g; g = g->next)
        for (size_t i = 0; i < g->spec->n_jobs; i++)
            for (size_t v = 0; v < g->spec->jobs[i].n_volumes; v++)
                if (strcmp(g->spec->jobs[i].volumes[v].value, name) == 0)
                    return g->id;
    return 0;
}

size_t jg_sched_active_count(const jg_sched_t *s)
{
    return s->n_active;
}

/* A group its backend says can never fit (a node larger than any it has, or
 * more than all of it) fails at once, FAILED_NO_RESOURCE, nothing launched. */
static bool fail_if_never_fits(jg_sched_t *s, group_rt_t *g)
{
    if (!g->backend->ops->fit)
        return false;
    char why[512] = "";
    jg_usage_t idle = {0};
    if (g->backend->ops->fit(g->backend, g->spec, &idle, why, sizeof why) != JG_FIT_NEVER)
        return false;
    if (!why[0])
        snprintf(why, sizeof why, "group %s can never start on infra %s", g->spec->name,
                 g->backend->name);
    /* The job the backend blames ("job x asks ..."); n_jobs: the group as a whole. */
    size_t blame = g->spec->n_jobs;
    for (size_t i = 0; i < g->spec->n_jobs && blame == g->spec->n_jobs; i++) {
        size_t len = strlen(g->spec->jobs[i].name);
        if (strncmp(why, "job ", 4) == 0 && strncmp(why + 4, g->spec->jobs[i].name, len) == 0 &&
            why[4 + len] == ' ')
            blame = i;
    }
    txn_begin(s);
    for (size_t k = 0; k < g->spec->n_jobs; k++) {
        job_rt_t *j = &g->jobs[k];
        for (int r = 0; r < j->n_nodes; r++)
            set_node_state(s, j, r, JG_FAILED_NO_RESOURCE, -1, why);
        jg_sched_set_job_state(s, j, JG_FAILED_NO_RESOURCE,
                               k == blame || blame == g->spec->n_jobs
                                   ? why
                                   : "another job of the group can never fit; nothing was launched");
    }
    set_group_state(s, g, JG_FAILED_NO_RESOURCE, why);
    jg_log("info", "group %lld (%s): %s", (long long)g->id, g->spec->name, why);
    end_group_rt(s, g);
    txn_end(s);     /* frees g, or keeps it until the store takes its end */
    return true;
}

int jg_sched_submit(jg_sched_t *s, jg_group_spec_t *spec, uid_t uid, gid_t gid, const char *user,
                    int64_t *group_id, jg_error_t *err)
{
    return jg_sched_submit_own_policy(s, spec, NULL, 0, uid, gid, user, group_id, err);
}

int jg_sched_submit_own_policy(jg_sched_t *s, jg_group_spec_t *spec, const char *policy_text,
                               size_t policy_len, uid_t uid, gid_t gid, const char *user,
                               int64_t *group_id, jg_error_t *err)
{
    char notes[1024];
    /* The parser bounds node counts; a spec that reaches here another way
     * must not make the loop walk millions of nodes either. */
    if (s->opts.config) {
        const jg_spec_limits_t *lim = &s->opts.config->spec_limits;
        size_t total = jg_spec_total_nodes(spec);
        for (size_t i = 0; i < spec->n_jobs; i++) {
            if (spec->jobs[i].num_nodes > lim->max_nodes_per_job) {
                jg_errprintf(err, "job %s has %d nodes, over the limit of %d nodes per job "
                             "(spec_limits.max_nodes_per_job)", spec->jobs[i].name,
                             spec->jobs[i].num_nodes, lim->max_nodes_per_job);
                jg_spec_free(spec);
                return -1;
            }
        }
        if (total > (size_t)lim->max_nodes_per_group) {
            jg_errprintf(err, "group %s has %zu nodes, over the limit of %d nodes per group "
                         "(spec_limits.max_nodes_per_group)", spec->name, total,
                         lim->max_nodes_per_group);
            jg_spec_free(spec);
            return -1;
        }
    }
    jg_backend_t *b = jg_sched_admit(s, spec, 0, policy_text, policy_len, user, uid, gid, notes,
                                     sizeof notes, err);
    jg_kv_t *volumes = NULL;
    size_t n_volumes = 0;
    if (!b || resolve_volumes(s, b, spec, &volumes, &n_volumes, err) < 0) {
        jg_spec_free(spec);
        return -1;
    }
    free_kv(volumes, n_volumes);
    char *json = jg_spec_to_json(spec);
    int64_t submitted = now_us();
    int64_t id;
    /* The group and the policy text it runs under are stored together or not at all. */
    int rc = jg_store_begin(s->store, err);
    if (rc == 0)
        rc = jg_store_add_group(s->store, spec, json, uid, gid, user, submitted, &id, err);
    if (rc == 0 && policy_text)
        rc = jg_store_set_group_policy_text(s->store, id, policy_text, policy_len, err);
    if (rc == 0)
        rc = jg_store_commit(s->store, err);
    else
        jg_store_rollback(s->store);
    free(json);
    if (rc < 0) {
        jg_spec_free(spec);
        return JG_SCHED_STORE_FAILED;
    }
    group_rt_t *g = group_new(s, spec, id, uid, gid, user, submitted, b);
    jg_sched_text_set(&g->reason, "submitted");
    jg_sched_bind_own_policy(s, g, policy_text, policy_len);
    link_group(s, g);
    if (notes[0])
        jg_sched_record(s, id, "policy", "error", notes);
    *group_id = id;
    if (fail_if_never_fits(s, g))
        return 0;
    s->n_pending++;
    enqueue(s, g);
    jg_log("info", "group %lld (%s) submitted by %s: %zu jobs, %zu nodes", (long long)id,
           spec->name, user, spec->n_jobs, jg_spec_total_nodes(spec));
    jg_sched_changed(s, id);
    kick(s);
    return 0;
}

/* Writes the cancel to the store alone, in one transaction: the group
 * CANCELLED at once if pending, else CANCELLING, with its unfinished jobs. */
static int store_cancel(jg_sched_t *s, group_rt_t *g, jg_state_t st, const char *reason,
                        jg_error_t *err)
{
    if (jg_store_begin(s->store, err) < 0)
        return -1;
    int64_t now = now_us();
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        for (int r = 0; rc == 0 && st == JG_CANCELLED && r < j->n_nodes; r++)
            rc = jg_store_set_node_state(s->store, g->id, j->index, r, JG_CANCELLED,
                                         j->nodes[r].attempt, -1, reason, now, err);
        if (rc == 0 && !jg_state_is_terminal(j->state))
            rc = jg_store_set_job_state(s->store, g->id, j->index, st, reason, now, err);
    }
    if (rc == 0)
        rc = jg_store_set_group_state(s->store, g->id, st, reason, now, err);
    if (rc == 0)
        return jg_store_commit(s->store, err);
    jg_store_rollback(s->store);
    return -1;
}

int jg_sched_cancel(jg_sched_t *s, int64_t id, const char *reason, jg_error_t *err)
{
    group_rt_t *g = find_group(s, id);
    if (g && g->finished) {
        jg_errprintf(err, "group %lld already ended: %s", (long long)id, jg_state_name(g->state));
        return -1;
    }
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
    /* Committed before anything changes: a cancel the client is told of is
     * never lost, and one that cannot be recorded changes nothing. */
    bool pending = g->state == JG_PENDING;
    jg_state_t st = pending ? JG_CANCELLED : JG_CANCELLING;
    if (store_cancel(s, g, st, reason, err) < 0) {
        jg_log("error", "store: cancel of group %lld: %s", (long long)id, err->text);
        jg_errprefix(err, "group %lld was not cancelled: the store cannot record it", (long long)id);
        return JG_SCHED_STORE_FAILED;
    }
    g->cancelling = true;
    g->state = st;
    jg_sched_text_set(&g->reason, reason);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        job_rt_t *j = &g->jobs[i];
        for (int r = 0; pending && r < j->n_nodes; r++)
            j->nodes[r].state = JG_CANCELLED;
        if (!jg_state_is_terminal(j->state)) {
            j->state = st;
            jg_sched_text_set(&j->reason, reason);
        }
    }
    if (pending) {
        s->n_pending--;
        s->admission_dirty = true;
        dequeue_group(s, g);
        jg_log("info", "group %lld (%s) ended CANCELLED: %s", (long long)id, g->spec->name, reason);
        end_group_rt(s, g);     /* not in a transaction: frees g */
        return 0;
    }
    txn_begin(s);
    for (size_t i = 0; i < g->spec->n_jobs; i++)
        jg_sched_stop_job(s, &g->jobs[i], JG_CANCELLED, reason);
    jg_sched_changed(s, id);
    evaluate(s, g);
    txn_end(s);     /* may free g */
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

static void retry_fired(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_sched_t *s = arg;
    s->retry_timer = 0;
    s->admission_dirty = true;
}

/* A launch the store could not record: admission runs again in a while, not
 * at once (the loop would spin while the disk is full). */
static void retry_admission_later(jg_sched_t *s)
{
    if (!s->retry_timer)
        s->retry_timer = jg_loop_add_timer(s->loop, RESYNC_MS, retry_fired, s);
}

/* Whether admitting g keeps its user within the configured limits; if not, why. */
static bool within_limits(const jg_user_limits_t *lim, const user_rec_t *u,
                          const group_rt_t *g, char *why, size_t len)
{
    int nodes = (int)jg_spec_total_nodes(g->spec);
    double cpus = group_cpus(g->spec);
    if (lim->running_groups != JG_CONFIG_UNLIMITED && u->groups + 1 > lim->running_groups)
        snprintf(why, len, "waiting for user limit: %s runs %d of at most %d groups", g->user,
                 u->groups, lim->running_groups);
    else if (lim->nodes != JG_CONFIG_UNLIMITED && u->nodes + nodes > lim->nodes)
        snprintf(why, len, "waiting for user limit: needs %d nodes, %s holds %d of at most %d",
                 nodes, g->user, u->nodes, lim->nodes);
    else if (lim->cpus != JG_CONFIG_UNLIMITED && u->cpus + cpus > lim->cpus + 1e-9)
        snprintf(why, len, "waiting for user limit: needs %g cpus, %s holds %g of at most %d",
                 cpus, g->user, u->cpus, lim->cpus);
    else
        return true;
    return false;
}

/* The first group of the queue that does not fit blocks it: g.  The groups
 * right behind it are told (a write only where that is news: another
 * blocker, or it waits for something else now, or a group moved up); the
 * rest wait in line, as they were told when queued. */
static void block_queue(jg_sched_t *s, backend_slot_t *slot, group_rt_t *g, const char *need)
{
    slot->blocker = g->id;
    jg_strlcpy(slot->blocker_why, need, sizeof slot->blocker_why);
    group_rt_t *h = jg_rq_next(g);
    for (int k = 0; h && k < BEHIND_NAMED; h = jg_rq_next(h), k++)
        wait_behind(s, slot, h);
}

/* Admits pending groups in the configured policy's priority order, each only
 * when every node of every job fits at once (gang).  No backfill: the first
 * group that does not fit blocks the groups behind it on the same backend, so
 * a large group is never starved by a stream of small ones.  A group over its
 * user's limit is passed over (others may go ahead).  Each backend's queue is
 * walked from its head to its blocker: what the pass costs depends on what
 * can move, not on how many groups wait.  A user at their running_groups
 * limit has all their groups parked off the queues until their usage drops
 * (park_user), then only their best comes back (unpark_user), so a long
 * queue of theirs is neither walked at every pass nor at each turnover; a
 * group over a nodes or cpus limit (which a smaller group of the same user
 * may not be) is passed over where it stands, walked at each pass. */
void jg_sched_pass(jg_sched_t *s)
{
    if (!s->n_pending || !s->admission_dirty)
        return;
    txn_begin(s);
    while (s->n_revisit_users) {     /* what their usage changes since the last pass moved */
        user_rec_t *u = s->revisit_users[--s->n_revisit_users];
        u->revisit_due = false;
        if (u->at_limit || u->n_parked)   /* at_limit with none parked: all cancelled */
            unpark_user(s, u);
        else
            rerank_user(s, u);
    }
    txn_end(s);
    s->admission_dirty = false;
    int launched = 0;
    bool stop = false;
    txn_begin(s);       /* the reasons written this pass land together */
    /* Turn about, so that a backend with many groups to launch does not hold
     * the others back past the launches one pass allows. */
    size_t first = s->n_backends ? s->pass_from % s->n_backends : 0;
    for (size_t k = 0; k < s->n_backends && !stop; k++) {
        size_t bi = (first + k) % s->n_backends;
        s->pass_from = bi;
        bool blocked = false;
        group_rt_t *g = jg_rq_first(&s->backends[bi]);
        while (g) {
            backend_slot_t *slot = &s->backends[bi];
            if (launched == MAX_LAUNCHES_PER_PASS) {
                s->admission_dirty = true;      /* the rest next turn: keep the loop responsive */
                kick(s);
                stop = true;
                break;
            }
            char why[384];
            const jg_user_limits_t *lim = s->opts.config
                                              ? jg_config_limits_for(s->opts.config, g->user)
                                              : NULL;
            if (lim && !within_limits(lim, g->owner, g, why, sizeof why)) {
                if (lim->running_groups != JG_CONFIG_UNLIMITED &&
                    g->owner->groups + 1 > lim->running_groups) {
                    park_user(s, g->owner, why);    /* none of theirs can start */
                    g = jg_rq_first(&s->backends[bi]);
                    continue;
                }
                set_pending_reason(s, g, why);      /* the user's limit: others may go ahead */
                if (g->owner->n_parked)     /* and so may a smaller one of theirs */
                    unpark_next(s, g->owner, g->backend);
                g = jg_rq_next(g);
                continue;
            }
            why[0] = '\0';
            jg_fit_t fit = g->backend->ops->fit
                               ? g->backend->ops->fit(g->backend, g->spec, &slot->used, why,
                                                      sizeof why)
                               : JG_FIT_NOW;
            if (fit != JG_FIT_NOW) {
                /* NEVER here: the infra shrank since submit; it may grow again. */
                if (!why[0])
                    snprintf(why, sizeof why, "waiting for resources on infra %s",
                             g->backend->name);
                set_pending_reason(s, g, why);
                const char *need = strncmp(why, "waiting for resources: ", 23) == 0 ? why + 23
                                                                                      : why;
                block_queue(s, slot, g, need);
                blocked = true;
                break;
            }
            dequeue_group(s, g);
            s->n_pending--;
            launched++;
            hold_resources(s, g);
            txn_end(s);             /* a launch is committed on its own, before it starts */
            bool ok = launch_group(s, g);   /* may end and free g, never another */
            txn_begin(s);
            if (!ok) {
                stop = true;        /* the store refuses: again after retry_admission_later */
                break;
            }
            /* A launch (and what it reports at once) may change the order. */
            g = jg_rq_first(&s->backends[bi]);
        }
        if (!blocked && !stop)
            s->backends[bi].blocker = 0;
    }
    txn_end(s);
}

/* --------------------------------------------------------------- recovery */

static int recover_group(jg_sched_t *s, const jg_group_row_t *row, jg_error_t *err)
{
    jg_group_spec_t *spec = jg_spec_from_json(row->spec_json, err);
    if (!spec)
        return jg_errprefix(err, "group %lld: stored spec", (long long)row->id);
    char notes[1024];
    jg_backend_t *b = row->infra && *row->infra
                          ? backend_for_infra(s, row->infra)
                          : jg_sched_admit(s, spec, row->id, NULL, 0, row->user, row->uid,
                                           row->gid, notes, sizeof notes, err);
    if (!b) {
        jg_spec_free(spec);
        return jg_errprintf(err, "group %lld: infra %s is not available", (long long)row->id,
                            row->infra ? row->infra : "?");
    }
    group_rt_t *g = group_new(s, spec, row->id, row->uid, row->gid, row->user, row->submitted_us, b);
    g->state = row->state;
    jg_sched_text_set(&g->reason, row->reason ? row->reason : "");
    g->cancelling = row->state == JG_CANCELLING;
    link_group(s, g);
    if (row->state == JG_PENDING) {
        s->n_pending++;
        enqueue(s, g);
        return 0;
    }
    hold_resources(s, g);
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
        j->restarts = jobs[i].restarts;
        j->recoveries = jobs[i].recoveries;
        j->free_restarts = jobs[i].free_restarts;
        j->exit_code = jobs[i].exit_code;
        jg_sched_text_set(&j->reason, jobs[i].reason ? jobs[i].reason : "");
        if (j->state == JG_RECOVERING && jobs[i].restart_count >= 0) {
            /* A restart decided before the daemon stopped and not launched
             * yet goes ahead, charged as decided, after what is left of its
             * delay. */
            int64_t left_ms = (jobs[i].restart_due_us - now_us()) / 1000;
            j->restart_pending = true;
            j->restart_count = (jg_attempt_count_t)jobs[i].restart_count;
            j->restart_due_us = jobs[i].restart_due_us;
            j->restart_not_before_ms = jg_now_mono_ms() + (left_ms > 0 ? left_ms : 0);
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
        node->exit_code = nr->exit_code;
        node->released = nr->state == JG_RUNNING;
        if (!jg_state_is_terminal(nr->state)) {
            /* Output resumes after what the logstore holds. */
            const char *jname = spec->jobs[nr->job_index].name;
            jg_node_handle_t *h = &handles[n_handles++];
            *h = (jg_node_handle_t){.job_index = nr->job_index, .rank = nr->rank,
                                    .attempt = nr->attempt, .handle = nr->handle};
            if (s->opts.logs) {
                h->log_bytes = jg_logstore_size(s->opts.logs, row->id, jname, nr->rank);
                h->log_bytes_attempt = jg_logstore_attempt_size(s->opts.logs, row->id, jname,
                                                                nr->rank, nr->attempt);
            }
        }
    }
    for (size_t i = 0; i < spec->n_jobs; i++) {
        /* A restart stored before schema 3 (no counter, no deadline) whose
         * nodes are down: it goes ahead now, free. */
        job_rt_t *j = &g->jobs[i];
        if (j->state == JG_RECOVERING && !j->restart_pending && job_all_nodes_down(j)) {
            j->restart_pending = true;
            j->restart_count = JG_COUNT_NONE;
            j->restart_not_before_ms = jg_now_mono_ms();
        }
    }
    int rc = 0;
    if (n_handles && b->ops->reattach(b, row->id, handles, n_handles, err) < 0)
        rc = jg_errprefix(err, "group %lld: reattach", (long long)row->id);
    free(handles);
    jg_node_rows_free(nodes, n_nodes);
    jg_job_rows_free(jobs, n_jobs);
    if (rc == 0 && g->cancelling) {
        /* The cancel may have been cut off before its forced kill: stop again
         * (a new grace period, then SIGKILL). */
        for (size_t i = 0; i < spec->n_jobs; i++)
            jg_sched_stop_job(s, &g->jobs[i], JG_CANCELLED, "cancelled (resumed after a restart)");
    }
    for (size_t i = 0; rc == 0 && !g->cancelling && i < spec->n_jobs; i++) {
        /* A job with a failed node that had not ended yet was being stopped
         * for it: its exit code is decided, and its nodes (before the
         * barrier, the group's) are stopped again. */
        job_rt_t *j = &g->jobs[i];
        if (jg_state_is_terminal(j->state) || j->restart_pending)
            continue;
        for (int r = 0; r < j->n_nodes; r++) {
            jg_state_t fs = j->nodes[r].state;
            if (fs != JG_FAILED && fs != JG_FAILED_SETUP)
                continue;
            char why[320];
            snprintf(why, sizeof why, "node %d %s (stop resumed after a restart)", r,
                     jg_state_name(fs));
            j->exit_decided = true;
            if (g->state == JG_STARTING)
                jg_sched_fail_before_barrier(s, g, j, fs, why);
            else
                jg_sched_stop_job(s, j, fs, why);
            break;
        }
    }
    for (size_t i = 0; rc == 0 && !g->cancelling && i < spec->n_jobs; i++) {
        /* A restart cut off while its nodes were being stopped: stop them again. */
        job_rt_t *j = &g->jobs[i];
        if (j->restart_pending && !job_all_nodes_down(j)) {
            j->stopping = true;
            j->stop_state = JG_RECOVERING;
            jg_sched_text_set(&j->stop_reason, j->reason);
            jg_error_t serr;
            if (b->ops->stop(b, g->id, j->index, -1, s->opts.stop_grace_ms, &serr) < 0)
                jg_log("error", "group %lld: stopping job %s for a restart: %s",
                       (long long)g->id, job_name(j), serr.text);
        }
    }
    if (rc == 0)
        evaluate(s, g);
    return rc;
}

/* After recovery: every backend removes what groups no longer active left
 * behind (a daemon that died between a group's end and its cleanup). */
static void sweep_backends(jg_sched_t *s)
{
    int64_t *ids = jg_xcalloc(s->n_active ? s->n_active : 1, sizeof *ids);
    size_t n = 0;
    for (const group_rt_t *g = s->head; g; g = g->next)
        if (!g->finished)
            ids[n++] = g->id;
    for (size_t i = 0; i < s->n_backends; i++) {
        jg_backend_t *b = s->backends[i].backend;
        jg_error_t err;
        if (b->ops->sweep && b->ops->sweep(b, ids, n, &err) < 0)
            jg_log("warn", "sweep of %s: %s", b->name, err.text);
    }
    free(ids);
}

int jg_sched_recover(jg_sched_t *s, jg_error_t *err)
{
    jg_group_filter_t filter = {.active_only = true};
    jg_group_row_t *rows = NULL;
    size_t n = 0;
    if (jg_store_list_groups(s->store, &filter, &rows, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        jg_error_t gerr;
        txn_begin(s);
        int grc = recover_group(s, &rows[i], &gerr);
        if (grc < 0) {
            jg_log("error", "recovery: %s; marking the group FAILED", gerr.text);
            group_rt_t *g = find_group(s, rows[i].id);
            if (g)
                unlink_and_free(s, g);
            if (jg_store_set_group_state(s->store, rows[i].id, JG_FAILED, gerr.text, now_us(),
                                         err) < 0)
                rc = jg_errprefix(err, "recovery: cannot mark group %lld FAILED",
                                  (long long)rows[i].id);
        }
        txn_end(s);
    }
    jg_group_rows_free(rows, n);
    if (rc < 0)
        return -1;
    sweep_backends(s);
    if (s->n_pending)
        kick(s);
    return 0;
}
