/* sched_policy.c - where sched asks the Lua policies and carries out what they say.
 *
 * The state machine (sched.c) knows how to stop, restart and end things; this
 * file decides which, by building a snapshot of the group, calling one hook
 * and translating its answer into those mechanics.  Every decision that
 * changes anything, and every hook error, is written to the group's event log
 * (subject "policy"), so `jgsched show` says why a job was restarted or a group
 * failed.  A hook that fails still yields a decision (default.lua's, see
 * policy.h), so a broken policy never stalls a group.
 *
 * Whose policy decides what: a group's own policy (an installed one it names,
 * or Lua text its submitter sent, kept in the store with the group) decides
 * for that group alone: placement, node and job ends, and it may refuse its
 * own group.  What is decided between groups stays with the daemon's
 * configured policy: it admits every group first, and only its priority()
 * orders the queue.  The daemon never loads a policy from a path a user
 * named; only the configured default may be a path (root's config).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_int.h"

/* ------------------------------------------------------------ registry */

static void policy_print(void *ctx, const char *policy, const char *line)
{
    (void)ctx;
    jg_log("info", "policy %s: %s", policy, line);     /* jg_log escapes both */
}

static void slot_free(policy_slot_t *slot)
{
    if (!slot)
        return;
    jg_policy_free(slot->policy);
    free(slot->name);
    free(slot->text);
    free(slot);
}

static policy_slot_t *slot_add(jg_sched_t *s, policy_slot_t *slot)
{
    s->policies = jg_xrealloc(s->policies, (s->n_policies + 1) * sizeof *s->policies);
    s->policies[s->n_policies++] = slot;
    return slot;
}

jg_policy_t *jg_sched_policy(jg_sched_t *s, const char *name, jg_error_t *err)
{
    if (!name || !*name)
        name = s->default_policy;
    for (size_t i = 0; i < s->n_policies; i++)
        if (!s->policies[i]->own && strcmp(s->policies[i]->name, name) == 0)
            return s->policies[i]->policy;
    if (s->n_policies == 0)
        jg_policy_set_log(policy_print, NULL);
    jg_policy_t *p = jg_policy_load(name, s->policy_dir, NULL, err);
    if (!p)
        return NULL;
    policy_slot_t *slot = jg_xcalloc(1, sizeof *slot);
    *slot = (policy_slot_t){.name = jg_xstrdup(name), .policy = p};
    return slot_add(s, slot)->policy;
}

/* Frees the submitted policies no active group uses any more. */
static void sweep_own_policies(jg_sched_t *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->n_policies; i++) {
        policy_slot_t *slot = s->policies[i];
        if (!slot->own || slot->groups > 0)
            s->policies[kept++] = slot;
        else
            slot_free(slot);
    }
    s->n_policies = kept;
}

/* The policy of the Lua text uid submitted under label: loaded once per
 * (user, label, text), never shared between users (a policy's globals persist
 * between its calls). */
static policy_slot_t *own_slot(jg_sched_t *s, uid_t uid, const char *label, const char *text,
                               size_t len, jg_error_t *err)
{
    for (size_t i = 0; i < s->n_policies; i++) {
        policy_slot_t *slot = s->policies[i];
        if (slot->own && slot->uid == uid && slot->len == len && strcmp(slot->name, label) == 0 &&
            memcmp(slot->text, text, len) == 0)
            return slot;
    }
    if (s->n_policies == 0)
        jg_policy_set_log(policy_print, NULL);
    sweep_own_policies(s);
    jg_policy_t *p = jg_policy_load_text(label, text, len, s->policy_dir, NULL, err);
    if (!p)
        return NULL;
    policy_slot_t *slot = jg_xcalloc(1, sizeof *slot);
    *slot = (policy_slot_t){.name = jg_xstrdup(label), .policy = p, .own = true, .uid = uid,
                            .text = jg_xstrndup(text, len), .len = len};
    return slot_add(s, slot);
}

void jg_sched_policies_free(jg_sched_t *s)
{
    for (size_t i = 0; i < s->n_policies; i++)
        slot_free(s->policies[i]);
    free(s->policies);
    s->policies = NULL;
    s->n_policies = 0;
}

void jg_sched_reload_policies(jg_sched_t *s, jg_sched_reload_f cb, void *ctx)
{
    for (size_t i = 0; i < s->n_policies; i++) {
        policy_slot_t *slot = s->policies[i];
        jg_error_t err;
        jg_policy_t *p = slot->own ? jg_policy_load_text(slot->name, slot->text, slot->len,
                                                         s->policy_dir, NULL, &err)
                                   : jg_policy_load(slot->name, s->policy_dir, NULL, &err);
        if (p) {
            jg_policy_free(slot->policy);
            slot->policy = p;
            if (!slot->own)
                jg_log("info", "policy %s reloaded", slot->name);
        } else {
            jg_log("warn", "policy %s: reload failed, keeping the loaded version: %s",
                   slot->name, err.text);
        }
        if (cb && !slot->own)
            cb(ctx, slot->name, p ? NULL : err.text);
    }
    jg_sched_rerank_all(s);     /* the configured policy's priority() may be another now */
}

static const char path_refused[] =
    "policy '%s' is a file path: jgschedd never opens a file a request names; "
    "use `jgsched submit --policy FILE`, which reads the file as you and sends its text";

void jg_sched_bind_own_policy(jg_sched_t *s, group_rt_t *g, const char *own_text,
                              size_t own_len)
{
    g->own_policy = own_text ? 1 : 0;
    if (own_text)
        g->own_slot = own_slot(s, g->uid, g->spec->policy ? g->spec->policy : "policy",
                               own_text, own_len, NULL);
    if (g->own_slot)
        g->own_slot->groups++;
}

/* The group's policy: its own submitted text, the installed one it names, or,
 * when that cannot be loaded (a file removed since submit, a path stored by
 * an older jgschedd), the default one, with the problem recorded once. */
static jg_policy_t *group_policy(jg_sched_t *s, group_rt_t *g)
{
    jg_error_t err;
    if (g->own_policy < 0) {
        char *text = NULL;
        size_t len = 0;
        if (jg_store_get_group_policy_text(s->store, g->id, &text, &len, &err) < 0)
            jg_sched_record(s, g->id, "policy", "error", err.text);
        if (text) {
            g->own_policy = 1;
            g->own_slot = own_slot(s, g->uid, g->spec->policy ? g->spec->policy : "policy",
                                   text, len, &err);
            if (g->own_slot)
                g->own_slot->groups++;
            else
                jg_sched_record(s, g->id, "policy", "error", err.text);
        } else if (g->spec->policy && jg_policy_is_path(g->spec->policy)) {
            g->own_policy = 2;
            jg_errprintf(&err, "the group names its policy by the path %s, which this jgschedd "
                               "no longer reads (it never opens a file a user names): the "
                               "default policy governs it", g->spec->policy);
            jg_log("warn", "group %lld: %s", (long long)g->id, err.text);
            jg_sched_record(s, g->id, "policy", "error", err.text);
        } else {
            g->own_policy = 0;
        }
        free(text);
    }
    if (g->own_policy == 1 && g->own_slot)
        return g->own_slot->policy;
    if (g->own_policy == 0) {
        jg_policy_t *p = jg_sched_policy(s, g->spec->policy, &err);
        if (p)
            return p;
        jg_sched_record(s, g->id, "policy", "error", err.text);
    }
    return jg_sched_policy(s, NULL, &err);
}

/* ----------------------------------------------------------- snapshots */

typedef struct {
    jg_policy_group_t group;
    jg_policy_job_state_t *jobs;
} snapshot_t;

static void snapshot_take(const group_rt_t *g, snapshot_t *snap)
{
    snap->jobs = jg_xcalloc(g->spec->n_jobs, sizeof *snap->jobs);
    for (size_t i = 0; i < g->spec->n_jobs; i++) {
        const job_rt_t *j = &g->jobs[i];
        snap->jobs[i] = (jg_policy_job_state_t){
            .state = j->state, .attempt = j->attempt, .restarts = j->restarts,
            .recoveries = j->recoveries, .exit_code = j->exit_code,
            .infra = g->backend ? g->backend->name : NULL};
    }
    snap->group = (jg_policy_group_t){.spec = g->spec, .id = g->id, .user = g->user,
                                      .state = g->state, .submitted_us = g->submitted_us,
                                      .jobs = snap->jobs};
}

static void snapshot_free(snapshot_t *snap)
{
    free(snap->jobs);
}

static void hook_failed(jg_sched_t *s, int64_t group_id, const jg_error_t *err)
{
    jg_log("warn", "group %lld: policy hook failed, default decision used: %s",
           (long long)group_id, err->text);
    jg_sched_record(s, group_id, "policy", "error", err->text);
}

/* ----------------------------------------------------------- admission */

static void add_note(char *notes, size_t notes_len, const char *fmt, const char *what)
{
    size_t used = strlen(notes);
    snprintf(notes + used, notes_len - used, fmt, used ? "; " : "", what);
}

jg_backend_t *jg_sched_admit(jg_sched_t *s, const jg_group_spec_t *spec, int64_t group_id,
                             const char *own_text, size_t own_len, const char *user,
                             uid_t uid, gid_t gid, char *notes, size_t notes_len, jg_error_t *err)
{
    notes[0] = '\0';
    jg_error_t perr;
    char *stored = NULL;
    size_t stored_len = 0;
    if (!own_text && group_id &&
        jg_store_get_group_policy_text(s->store, group_id, &stored, &stored_len, &perr) == 0 &&
        stored) {
        own_text = stored;
        own_len = stored_len;
    }
    jg_policy_t *site = jg_sched_policy(s, NULL, &perr);
    jg_policy_t *p = NULL;
    if (own_text) {
        policy_slot_t *slot = own_slot(s, uid, spec->policy ? spec->policy : "policy", own_text,
                                       own_len, &perr);
        p = slot ? slot->policy : NULL;
    } else if (spec->policy && jg_policy_is_path(spec->policy)) {
        if (!group_id) {
            free(stored);
            jg_errprintf(err, path_refused, spec->policy);
            return NULL;
        }
        p = site;       /* stored by an older jgschedd: group_policy() says so */
    } else {
        p = jg_sched_policy(s, spec->policy, &perr);
    }
    free(stored);
    if (!p || !site) {
        jg_errprintf(err, "policy %s cannot be used: %s", spec->policy ? spec->policy : "default",
                     perr.text);
        return NULL;
    }
    jg_policy_group_t pg = {.spec = spec, .user = user, .state = JG_PENDING,
                            .submitted_us = jg_now_wall_us()};
    jg_policy_user_t pu = {.name = user, .uid = uid,
                           .admin = jg_config_is_admin(s->opts.config, user, uid, gid)};
    jg_policy_admission_t adm;
    /* The daemon's configured policy admits first: a group that picks its own
     * policy does not thereby pick its own admission rules. */
    if (site != p) {
        if (jg_policy_on_submit(site, &pg, &pu, &adm, &perr) < 0)
            add_note(notes, notes_len, "%son_submit of the configured policy failed (default "
                                       "decision used): %s", perr.text);
        if (!adm.accepted) {
            jg_errprintf(err, "rejected by policy %s: %s", jg_policy_name(site), adm.reason);
            return NULL;
        }
    }
    if (jg_policy_on_submit(p, &pg, &pu, &adm, &perr) < 0)
        add_note(notes, notes_len, "%son_submit failed (default decision used): %s", perr.text);
    if (!adm.accepted) {
        jg_errprintf(err, "rejected by policy %s: %s", jg_policy_name(p), adm.reason);
        return NULL;
    }

    /* A pinned infra not served yet ("kubernetes/ctx-b") is made now, so the
     * policy is offered it. */
    for (size_t i = 0; i < spec->n_jobs; i++) {
        jg_error_t berr;
        if (spec->jobs[i].infra && !jg_sched_backend_make(s, spec->jobs[i].infra, true, &berr) &&
            berr.text[0]) {
            jg_errprintf(err, "job %s: infra %s cannot be used: %s", spec->jobs[i].name,
                         spec->jobs[i].infra, berr.text);
            return NULL;
        }
    }
    jg_policy_infra_t *infras = jg_xcalloc(s->n_backends ? s->n_backends : 1, sizeof *infras);
    for (size_t i = 0; i < s->n_backends; i++)
        infras[i] = (jg_policy_infra_t){.name = s->backends[i].backend->name, .fits = true};
    jg_policy_placement_t pl;
    jg_backend_t *chosen = NULL;
    if (jg_policy_place(p, &pg, infras, s->n_backends, &pl, &perr) < 0)
        add_note(notes, notes_len, "%splace failed (default decision used): %s", perr.text);
    if (!pl.accepted) {
        jg_errprintf(err, "cannot place group %s: %s", spec->name, pl.reason);
        goto done;
    }
    for (size_t i = 0; i < spec->n_jobs; i++) {
        jg_backend_t *b = s->backends[pl.job_infra[i]].backend;
        if (chosen && b != chosen) {
            jg_errprintf(err, "policy %s placed job %s on %s and job %s on %s; a group runs on "
                              "one infra",
                         jg_policy_name(p), spec->jobs[0].name, chosen->name,
                         spec->jobs[i].name, b->name);
            chosen = NULL;
            goto done;
        }
        chosen = b;
    }
done:
    jg_policy_placement_clear(&pl);
    free(infras);
    return chosen;
}

/* ------------------------------------------------------ node and job ends */

static jg_attempt_count_t count_of(const jg_policy_decision_t *d)
{
    switch (d->count) {
    case JG_POLICY_COUNT_RESTARTS:
        return JG_COUNT_RESTART;
    case JG_POLICY_COUNT_RECOVERIES:
        return JG_COUNT_RECOVERY;
    default:
        return JG_COUNT_NONE;
    }
}

void jg_sched_node_ended(jg_sched_t *s, group_rt_t *g, job_rt_t *j, int rank,
                         jg_policy_exit_reason_t why, int exit_code, bool failed,
                         const char *message)
{
    jg_policy_t *p = group_policy(s, g);
    jg_policy_decision_t d = {.action = JG_ACTION_CONTINUE};
    if (p) {
        snapshot_t snap;
        snapshot_take(g, &snap);
        jg_policy_exit_t ev = {.reason = why, .exit_code = exit_code, .rank = rank,
                               .message = message};
        jg_error_t err;
        if (jg_policy_on_node_exit(p, &snap.group, (size_t)j->index, &ev, &d, &err) < 0)
            hook_failed(s, g->id, &err);
        snapshot_free(&snap);
    }
    const char *name = g->spec->jobs[j->index].name;
    char reason[512];
    if (d.reason[0])
        snprintf(reason, sizeof reason, "%s", d.reason);
    else
        snprintf(reason, sizeof reason, "%s-%d: %s", name, rank,
                 message ? message : jg_policy_exit_reason_name(why));
    if (failed || d.action != JG_ACTION_CONTINUE) {
        char what[64];
        snprintf(what, sizeof what, "on_node_exit: %s", jg_policy_action_name(d.action));
        jg_sched_record(s, g->id, "policy", what, reason);
    }

    jg_state_t failed_state = why == JG_EXIT_SETUP_FAILED ? JG_FAILED_SETUP : JG_FAILED;
    /* Nothing restarts this node in place unless the policy said so. */
    if (d.action != JG_ACTION_RESTART_JOB && d.action != JG_ACTION_RESTART_GROUP &&
        g->backend && g->backend->ops->retire)
        g->backend->ops->retire(g->backend, g->id, j->index, rank);
    switch (d.action) {
    case JG_ACTION_CONTINUE:
        if (!failed)
            break;
        /* The job is over: its other nodes stop.  Before the barrier the group
         * cannot start as a whole, so every other node stops too. */
        if (g->state == JG_STARTING)
            jg_sched_fail_before_barrier(s, g, j, failed_state, reason);
        else
            jg_sched_stop_job(s, j, failed_state, reason);
        break;
    case JG_ACTION_RESTART_JOB:
        jg_sched_request_restart(s, j, count_of(&d), d.delay_s, reason);
        break;
    case JG_ACTION_RESTART_GROUP:
        for (size_t i = 0; i < g->spec->n_jobs; i++)
            jg_sched_request_restart(s, &g->jobs[i], &g->jobs[i] == j ? count_of(&d)
                                                                        : JG_COUNT_NONE,
                                     d.delay_s, reason);
        break;
    case JG_ACTION_CANCEL_GROUP:
        jg_sched_end_group(s, g, j, failed ? failed_state : JG_CANCELLED, JG_CANCELLED,
                           "stopped by the policy", reason);
        break;
    case JG_ACTION_FAIL_GROUP:
        jg_sched_end_group(s, g, j, failed ? failed_state : JG_CANCELLED, JG_FAILED,
                           "stopped by the policy", reason);
        break;
    default:
        break;
    }
}

static void cancel_delay_expired(jg_loop_t *loop, void *arg)
{
    (void)loop;
    job_rt_t *j = arg;
    jg_sched_t *s = j->group->sched;
    j->cancel_timer = 0;
    jg_sched_stop_job(s, j, JG_CANCELLED, j->cancel_reason);
    jg_sched_changed(s, j->group->id);
}

void jg_sched_job_ended(jg_sched_t *s, group_rt_t *g, job_rt_t *j)
{
    if (g->cancelling || g->end_override != JG_PENDING)
        return;     /* the whole group is going down anyway */
    jg_policy_t *p = group_policy(s, g);
    if (!p)
        return;
    snapshot_t snap;
    snapshot_take(g, &snap);
    jg_policy_job_end_t je;
    jg_error_t err;
    if (jg_policy_on_job_end(p, &snap.group, (size_t)j->index, &je, &err) < 0)
        hook_failed(s, g->id, &err);
    snapshot_free(&snap);
    if (je.n_cancel)
        jg_sched_record(s, g->id, "policy", "on_job_end: cancel",
                        je.reason[0] ? je.reason : "the policy stops other jobs");
    for (size_t i = 0; i < je.n_cancel; i++) {
        job_rt_t *target = &g->jobs[je.cancel[i].job];
        if (jg_state_is_terminal(target->state) || target->stopping || target->cancel_timer)
            continue;
        jg_sched_text_set(&target->cancel_reason,
                          je.reason[0] ? je.reason : "stopped by the policy when another job ended");
        if (je.cancel[i].delay_s <= 0)
            jg_sched_stop_job(s, target, JG_CANCELLED, target->cancel_reason);
        else
            target->cancel_timer = jg_loop_add_timer(
                s->loop, (int64_t)(je.cancel[i].delay_s * 1000), cancel_delay_expired, target);
    }
    jg_policy_job_end_clear(&je);
}

/* ---------------------------------------------------------- admission order */

/* Admission order between groups is the daemon's to decide: only the
 * configured policy's priority() ranks them.  A group's own policy (which a
 * user may have written) is never asked, or it could put its group ahead of
 * everyone else's (-1e300).  With default.lua's priority (FIFO by submit
 * time) the order is the id's, so admission costs no Lua call. */
bool jg_sched_policy_ranks(jg_sched_t *s)
{
    jg_error_t err;
    jg_policy_t *site = jg_sched_policy(s, NULL, &err);
    return site && strcmp(jg_policy_name(site), "default") != 0 &&
           (jg_policy_hooks(site) & (1u << JG_HOOK_PRIORITY));
}

void jg_sched_compute_priorities(jg_sched_t *s, group_rt_t **groups, size_t n)
{
    if (!s->ranked) {
        for (size_t i = 0; i < n; i++)
            groups[i]->prio_key = 0;
        return;
    }
    jg_error_t err;
    jg_policy_t *site = jg_sched_policy(s, NULL, &err);
    /* What each user with an active group runs now: the `usage` argument. */
    jg_policy_usage_t *usage = jg_xcalloc(s->n_users ? s->n_users : 1, sizeof *usage);
    for (size_t i = 0; i < s->n_users; i++) {
        const user_rec_t *u = s->users[i];
        usage[i] = (jg_policy_usage_t){.user = u->name, .groups = u->groups, .nodes = u->nodes,
                                       .cpus = u->usage_cpus};
    }
    for (size_t i = 0; i < n; i++) {
        group_rt_t *g = groups[i];
        double key = (double)g->submitted_us / 1e6;
        jg_policy_group_t pg = {.spec = g->spec, .id = g->id, .user = g->user,
                                .state = g->state, .submitted_us = g->submitted_us};
        if (site && jg_policy_priority(site, &pg, usage, s->n_users, &key, &err) < 0)
            hook_failed(s, g->id, &err);
        g->prio_key = key;
    }
    free(usage);
}
