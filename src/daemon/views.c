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

/* GROUP_SUMMARY as text: the queue writes 100,000 of them without building a
 * JSON value per field, and jgd_view_group parses this very text, so both
 * show the same fields. */
static void job_text(jg_jsonw_t *w, const jg_job_row_t *j)
{
    jg_jsonw_lit(w, "{\"index\":");
    jg_jsonw_int(w, j->index);
    jg_jsonw_lit(w, ",\"name\":");
    jg_jsonw_str(w, j->name);
    jg_jsonw_lit(w, ",\"state\":");
    jg_jsonw_str(w, jg_state_name(j->state));
    jg_jsonw_lit(w, ",\"num_nodes\":");
    jg_jsonw_int(w, j->num_nodes);
    jg_jsonw_lit(w, ",\"attempt\":");
    jg_jsonw_int(w, j->attempt);
    jg_jsonw_lit(w, ",\"restarts\":");
    jg_jsonw_int(w, j->restarts);
    jg_jsonw_lit(w, ",\"recoveries\":");
    jg_jsonw_int(w, j->recoveries);
    jg_jsonw_lit(w, ",\"free_restarts\":");
    jg_jsonw_int(w, j->free_restarts);
    jg_jsonw_lit(w, ",\"exit_code\":");
    jg_jsonw_int(w, j->exit_code);
    jg_jsonw_lit(w, ",\"reason\":");
    jg_jsonw_str(w, j->reason);
    jg_jsonw_lit(w, ",\"started\":");
    jg_jsonw_time(w, j->started_us);
    jg_jsonw_lit(w, ",\"ended\":");
    jg_jsonw_time(w, j->ended_us);
    jg_jsonw_lit(w, "}");
}

void jgd_view_group_text(jg_jsonw_t *w, const jg_group_row_t *g, const jg_job_row_t *jobs,
                         size_t n_jobs)
{
    jg_jsonw_lit(w, "{\"id\":");
    jg_jsonw_int(w, g->id);
    jg_jsonw_lit(w, ",\"name\":");
    jg_jsonw_str(w, g->name);
    jg_jsonw_lit(w, ",\"user\":");
    jg_jsonw_str(w, g->user);
    jg_jsonw_lit(w, ",\"uid\":");
    jg_jsonw_int(w, (int)g->uid);
    jg_jsonw_lit(w, ",\"state\":");
    jg_jsonw_str(w, jg_state_name(g->state));
    jg_jsonw_lit(w, ",\"reason\":");
    jg_jsonw_str(w, g->reason);
    jg_jsonw_lit(w, ",\"submitted\":");
    jg_jsonw_time(w, g->submitted_us);
    jg_jsonw_lit(w, ",\"started\":");
    jg_jsonw_time(w, g->started_us);
    jg_jsonw_lit(w, ",\"ended\":");
    jg_jsonw_time(w, g->ended_us);
    jg_jsonw_lit(w, ",\"infra\":");
    jg_jsonw_str(w, g->infra);
    jg_jsonw_lit(w, ",\"jobs\":[");
    for (size_t i = 0; i < n_jobs; i++) {
        if (i)
            jg_jsonw_lit(w, ",");
        job_text(w, &jobs[i]);
    }
    jg_jsonw_lit(w, "]}");
}

json_t *jgd_view_group(const jg_group_row_t *g, const jg_job_row_t *jobs, size_t n_jobs)
{
    jg_jsonw_t w = {0};
    jgd_view_group_text(&w, g, jobs, n_jobs);
    json_t *out = json_loadb(w.data, w.len, 0, NULL);
    jg_jsonw_free(&w);
    return out ? out : json_object();
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

void jgd_view_queue_page(jg_jsonw_t *w, const jg_group_row_t *rows, size_t n,
                         const jg_job_row_t *jobs, size_t n_jobs, size_t page_bytes,
                         int64_t after_id, bool *more, int64_t *last_id)
{
    size_t k = 0, start = w->len;
    *last_id = after_id;
    jg_jsonw_lit(w, "[");
    for (size_t i = 0; i < n; i++) {
        while (k < n_jobs && jobs[k].group_id < rows[i].id)
            k++;
        size_t first = k;
        while (k < n_jobs && jobs[k].group_id == rows[i].id)
            k++;
        size_t mark = w->len;
        if (i > 0)
            jg_jsonw_lit(w, ",");
        jgd_view_group_text(w, &rows[i], jobs + first, k - first);
        if (i > 0 && w->len + 1 - start > page_bytes) {
            w->len = mark;      /* the rest comes in the next page */
            w->data[mark] = '\0';
            *more = true;
            break;
        }
        *last_id = rows[i].id;
    }
    jg_jsonw_lit(w, "]");
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
