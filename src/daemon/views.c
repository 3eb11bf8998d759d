/* views.c - the JSON the daemon answers with, shaped from store rows and
 * sched's memory (docs/protocol.md): group summaries and details, queue
 * pages, infra items.
 *
 * Nothing here touches a socket or decides who may see what: handlers.c
 * authorizes, server.c sends.  The group detail can reuse an already parsed
 * spec, so a watched group's pushes cost no parse (watches.c keeps it).
 */
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "jgsched/capacity.h"

static json_t *job_json(const jg_job_row_t *j)
{
    return json_pack("{s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:o, s:o}", "index",
                     j->index, "name", j->name, "state", jg_state_name(j->state), "num_nodes",
                     j->num_nodes, "attempt", j->attempt, "restarts", j->restarts, "recoveries",
                     j->recoveries, "free_restarts", j->free_restarts, "exit_code", j->exit_code, "reason", j->reason ? j->reason : "",
                     "started", jg_proto_time(j->started_us), "ended",
                     jg_proto_time(j->ended_us));
}

json_t *jgd_view_group(const jg_group_row_t *g, const jg_job_row_t *jobs, size_t n_jobs)
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

void jgd_spec_view_clear(jgd_spec_view_t *v)
{
    jg_spec_free(v->spec);
    json_decref(v->json);
    v->spec = NULL;
    v->json = NULL;
}

static json_t *node_json(const jg_node_row_t *n, const jg_group_spec_t *spec)
{
    const char *job = (size_t)n->job_index < spec->n_jobs ? spec->jobs[n->job_index].name : "?";
    return json_pack("{s:s, s:i, s:i, s:s, s:i, s:i, s:s, s:s}", "job", job, "job_index",
                     n->job_index, "rank", n->rank, "state", jg_state_name(n->state), "attempt",
                     n->attempt, "exit_code", n->exit_code, "hostname",
                     n->hostname ? n->hostname : "", "address", n->address ? n->address : "");
}

static json_t *event_json(const jg_event_row_t *e)
{
    return json_pack("{s:o, s:s, s:s, s:s}", "ts", jg_proto_time(e->ts_us), "subject", e->subject,
                     "what", e->what, "reason", e->reason ? e->reason : "");
}

json_t *jgd_view_group_detail(jg_store_t *store, int64_t id, bool with_events,
                              jgd_spec_view_t *sv, jg_error_t *err)
{
    jg_group_row_t g;
    if (jg_store_get_group(store, id, &g, err) < 0)
        return NULL;
    jg_job_row_t *jobs = NULL;
    jg_node_row_t *nodes = NULL;
    jg_event_row_t *events = NULL;
    size_t n_jobs = 0, n_nodes = 0, n_events = 0;
    json_t *out = NULL;
    if (jg_store_list_jobs(store, id, &jobs, &n_jobs, err) < 0 ||
        jg_store_list_nodes(store, id, &nodes, &n_nodes, err) < 0 ||
        (with_events && jg_store_list_events(store, id, &events, &n_events, err) < 0))
        goto done;
    if (!sv->spec) {
        /* The stored spec never changes after submit: once parsed, kept. */
        if (!(sv->spec = jg_spec_from_json(g.spec_json, err)))
            goto done;
        sv->json = json_loads(g.spec_json, 0, NULL);
    }
    const jg_group_spec_t *spec = sv->spec;
    out = jgd_view_group(&g, jobs, n_jobs);
    json_t *primaries = json_array();
    for (size_t i = 0; i < spec->n_primary_tasks; i++)
        json_array_append_new(primaries, json_string(spec->primary_tasks[i]));
    json_object_set_new(out, "policy", json_string(spec->policy ? spec->policy : "default"));
    json_object_set_new(out, "placement", json_string("SAME_INFRA"));
    json_object_set_new(out, "execution", json_string("parallel"));
    json_object_set_new(out, "primary_tasks", primaries);
    json_object_set_new(out, "spec", sv->json ? json_incref(sv->json) : json_null());
    json_t *na = json_array();
    for (size_t i = 0; i < n_nodes; i++)
        json_array_append_new(na, node_json(&nodes[i], spec));
    json_object_set_new(out, "nodes", na);
    if (with_events) {
        json_t *ea = json_array();
        for (size_t i = 0; i < n_events; i++)
            json_array_append_new(ea, event_json(&events[i]));
        json_object_set_new(out, "events", ea);
    }
done:
    jg_event_rows_free(events, n_events);
    jg_node_rows_free(nodes, n_nodes);
    jg_job_rows_free(jobs, n_jobs);
    jg_group_row_clear(&g);
    return out;
}

json_t *jgd_view_queue_page(const jg_group_row_t *rows, size_t n, const jg_job_row_t *jobs,
                            size_t n_jobs, size_t page_bytes, int64_t after_id, bool *more,
                            int64_t *last_id)
{
    json_t *groups = json_array();
    size_t k = 0, bytes = 0;
    *last_id = after_id;
    for (size_t i = 0; i < n; i++) {
        while (k < n_jobs && jobs[k].group_id < rows[i].id)
            k++;
        size_t first = k;
        while (k < n_jobs && jobs[k].group_id == rows[i].id)
            k++;
        json_t *g = jgd_view_group(&rows[i], jobs + first, k - first);
        size_t size = json_dumpb(g, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII) + 1;
        if (i > 0 && bytes + size > page_bytes) {
            json_decref(g);
            *more = true;       /* the rest comes in the next page */
            break;
        }
        bytes += size;
        json_array_append_new(groups, g);
        *last_id = rows[i].id;
    }
    return groups;
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
    const char *infra;
    json_t *groups;
    json_t *pending;
} infra_walk_t;

static void infra_group(void *ctx, int64_t id, const char *user, jg_state_t state,
                        const char *infra, const jg_group_spec_t *spec, bool holds)
{
    infra_walk_t *w = ctx;
    if (!infra || strcmp(infra, w->infra) != 0)
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

json_t *jgd_view_infra_backend(const jg_daemon_t *d, const jg_sched_infra_t *b)
{
    const jg_capacity_t *cap = b->capacity;
    const jg_usage_t *used = b->used;
    infra_walk_t w = {.infra = b->name, .groups = json_array(), .pending = json_array()};
    jg_sched_foreach_active(d->sched, infra_group, &w);
    json_t *notes = json_array();
    if (b->warning)
        json_array_append_new(notes, json_string(b->warning));
    if (b->notes)
        json_array_append_new(notes, json_string(b->notes));
    json_t *item = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "name", b->name,
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
        json_object_set_new(item, "reachable", json_boolean(cap->reachable));
        if (cap->note[0])
            json_object_set_new(item, "capacity_note", json_string(cap->note));
        if (b->kind && strcmp(b->kind, "local") == 0 && d->config->local.oversubscribe > 1)
            json_object_set_new(item, "oversubscribe", json_real(d->config->local.oversubscribe));
    }
    return item;
}
