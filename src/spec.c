/* spec.c - JobGroup YAML in, a validated jg_group_spec_t out (DESIGN section 3).
 *
 * How it works.  libyaml's document API loads the stream one document at a
 * time; every node keeps its start mark, so every message names file:line:col.
 * One document of look-ahead decides the shape of the stream:
 *   - one document: a group of one job (that document is the job), unless it
 *     holds header-only keys, in which case it is a header without jobs;
 *   - several documents: the first must be the JobGroup header.  A first
 *     document holding a job key is an error, one holding only `name` is a
 *     SkyPilot chain DAG, which jgsched does not run.
 * After that, documents are loaded, checked and freed one by one, so a 10,000
 * job file never holds more than two documents in memory.
 *
 * Validation never stops at the first problem: each field is checked on its
 * own and a bad field records a message and parsing moves on, so one
 * `jgsched validate` lists everything that is wrong.  Cross references that
 * point forward (primary_tasks and termination_delay keys naming jobs) are
 * checked once every job is known; messages are then sorted by position so
 * they read in file order.  Job names go into a small hash index so duplicate
 * detection and reference checks stay linear in the number of jobs.
 *
 * Where the rest lives.  This file reads the stream and the header; one job
 * document's fields are read by spec_job.c (spec_int.h is what the two
 * share).  The YAML reading kit (bounded loading, messages with positions,
 * node helpers, did-you-mean, sizes and durations) is spec_yaml.c, shared
 * with spec_config.c and spec_kubeconfig.c through spec_yaml.h.  The JSON
 * form and the human description live in spec_json.c.
 */
#include "jgsched/spec.h"
#include "spec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Keys whose presence makes a document a job rather than a header. */
static const char *const job_only_keys[] = {
    "run", "setup", "resources", "num_nodes", "envs", "workdir", "volumes",
    "file_mounts", "job_recovery", NULL,
};
static const char *const header_keys[] = {
    "name", "placement", "execution", "primary_tasks", "termination_delay",
    "policy", "inter_connection", NULL,
};
const char *const jg_spec_header_only_keys[] = {
    "placement", "execution", "primary_tasks", "termination_delay", "policy",
    "inter_connection", NULL,
};

/* Shortest of %.15g / %.17g that reads back as the same double. */
static char *fmt_seconds(double s)
{
    char *t = jg_xasprintf("%.15g", s);
    if (strtod(t, NULL) != s) {
        free(t);
        t = jg_xasprintf("%.17g", s);
    }
    return t;
}

static bool has_any_key(pctx_t *c, const yaml_node_t *map, const char *const *keys)
{
    if (map->type != YAML_MAPPING_NODE)
        return false;
    JG_SPEC_FOR_PAIRS(map, p) {
        yaml_node_t *k = jg_spec_node(&c->r, p->key);
        if (k && k->type == YAML_SCALAR_NODE && jg_spec_in_list(JG_SPEC_SVAL(k), keys))
            return true;
    }
    return false;
}

/* The first key of map that is in keys, or NULL. */
static yaml_node_t *first_key_in(pctx_t *c, const yaml_node_t *map, const char *const *keys)
{
    if (map->type != YAML_MAPPING_NODE)
        return NULL;
    JG_SPEC_FOR_PAIRS(map, p) {
        yaml_node_t *k = jg_spec_node(&c->r, p->key);
        if (k && k->type == YAML_SCALAR_NODE && jg_spec_in_list(JG_SPEC_SVAL(k), keys))
            return k;
    }
    return NULL;
}

static bool only_name(pctx_t *c, const yaml_node_t *map)
{
    if (map->type != YAML_MAPPING_NODE ||
        map->data.mapping.pairs.top - map->data.mapping.pairs.start != 1)
        return false;
    yaml_node_t *k = jg_spec_node(&c->r, map->data.mapping.pairs.start->key);
    return k && k->type == YAML_SCALAR_NODE && !strcmp(JG_SPEC_SVAL(k), "name");
}

static void add_ref(pctx_t *c, const char *name, const yaml_node_t *n, const char *field)
{
    if (c->n_refs == c->refs_cap) {
        c->refs_cap = c->refs_cap ? c->refs_cap * 2 : 8;
        c->refs = jg_xrealloc(c->refs, c->refs_cap * sizeof *c->refs);
    }
    c->refs[c->n_refs++] = (ref_t){name, jg_spec_node_pos(n), field};
}

static void parse_primary_tasks(pctx_t *c, yaml_node_t *v)
{
    jg_group_spec_t *s = c->spec;
    if (jg_spec_is_null(v))
        return;
    yaml_node_t **items = NULL;
    size_t n = 0;
    if (v->type == YAML_SEQUENCE_NODE) {
        n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        items = jg_xcalloc(n, sizeof *items);
        for (size_t i = 0; i < n; i++)
            items[i] = jg_spec_node(&c->r, v->data.sequence.items.start[i]);
    } else if (v->type == YAML_SCALAR_NODE) {
        n = 1;
        items = jg_xcalloc(1, sizeof *items);
        items[0] = v;
    } else {
        jg_spec_err(&c->r, v, "primary_tasks", "expected a list of job names, got %s",
                    jg_spec_kind(v));
        return;
    }
    s->primary_tasks = jg_xcalloc(n, sizeof *s->primary_tasks);
    jg_spec_strmap_t listed = {0};          /* duplicates by hashing: the list may be long */
    for (size_t i = 0; i < n; i++) {
        const char *name = jg_spec_scalar(&c->r, items[i], "primary_tasks", "a job name");
        if (!name)
            continue;
        int *seen = jg_spec_strmap_slot(&listed, name, strlen(name), true);     /* names borrowed */
        if (*seen) {
            char buf[80];
            jg_spec_err(&c->r, items[i], "primary_tasks", "job '%s' is listed twice",
                        jg_spec_show(name, buf, sizeof buf));
            continue;
        }
        *seen = 1;
        s->primary_tasks[s->n_primary_tasks] = jg_xstrdup(name);
        add_ref(c, s->primary_tasks[s->n_primary_tasks], items[i], "primary_tasks");
        s->n_primary_tasks++;
    }
    jg_spec_strmap_free(&listed);
    free(items);
}

/* One delay of termination_delay.  Bounded: the scheduler turns it into a
 * timer of int64 milliseconds, and 10^60 hours does not fit in one. */
static bool parse_delay(pctx_t *c, yaml_node_t *v, const char *field, const char *text,
                        double *secs)
{
    char buf[80];
    if (!jg_spec_parse_duration(text, secs)) {
        jg_spec_err(&c->r, v, field,
                    "invalid duration '%s' (expected seconds like 30, 30s, 1m or 2h)",
                    jg_spec_show(text, buf, sizeof buf));
        return false;
    }
    if (!(*secs <= JG_SPEC_MAX_TERMINATION_DELAY_S)) {
        jg_spec_err(&c->r, v, field, "'%s' is too long (at most 7 days, 168h)",
                    jg_spec_show(text, buf, sizeof buf));
        return false;
    }
    return true;
}

static void parse_termination_delay(pctx_t *c, yaml_node_t *v)
{
    static const char *field = "termination_delay";
    jg_group_spec_t *s = c->spec;
    double secs;
    if (jg_spec_is_null(v))
        return;
    c->header_has_delay = true;
    c->delay_pos = jg_spec_node_pos(v);
    if (v->type == YAML_SCALAR_NODE) {
        if (parse_delay(c, v, field, JG_SPEC_SVAL(v), &secs))
            s->termination_delay_s = secs;
        return;
    }
    if (v->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, v, field,
                    "expected a duration (30s) or a mapping {default: 10s, <job>: 1m}, "
                    "got %s",
                    jg_spec_kind(v));
        return;
    }
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, field);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        char *f = jg_spec_join_field(field, key);
        const char *d = jg_spec_scalar(&c->r, val, f, "a duration like 30s");
        if (!d || !parse_delay(c, val, f, d, &secs)) {
            /* reported */
        } else if (!strcmp(key, "default")) {
            s->termination_delay_s = secs;
        } else {
            char *txt = fmt_seconds(secs);
            jg_spec_kv_push(&s->termination_delays, &s->n_termination_delays, key, txt);
            free(txt);
            add_ref(c, s->termination_delays[s->n_termination_delays - 1].key, k, field);
        }
        free(f);
    }
}

static void parse_header(pctx_t *c, yaml_node_t *root)
{
    char buf[80];
    jg_group_spec_t *s = c->spec;
    yaml_node_t *name_node = NULL;
    c->header_pos = jg_spec_node_pos(root);
    if (root->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, root, NULL,
                    "the JobGroup header must be a mapping (name, placement, "
                    "execution), got %s",
                    jg_spec_kind(root));
        return;
    }
    JG_SPEC_FOR_PAIRS(root, p) {
        const char *key = jg_spec_key(&c->r, root, p, NULL);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *v = jg_spec_node(&c->r, p->value);
        if (!strcmp(key, "name")) {
            name_node = v;
            if (jg_spec_is_null(v))
                continue;   /* reported below as a missing name */
            const char *n = jg_spec_scalar(&c->r, v, "name", "a JobGroup name");
            if (n) {
                jg_spec_check_dns_name(c, v, "JobGroup", n);
                free(s->name);
                s->name = jg_xstrdup(n);
            }
        } else if (!strcmp(key, "placement")) {
            const char *n =
                jg_spec_scalar(&c->r, v, "placement", "a placement mode (SAME_INFRA)");
            if (n && strcmp(n, "SAME_INFRA"))
                jg_spec_err(&c->r, v, "placement",
                            "invalid placement mode '%s' (expected SAME_INFRA)",
                            jg_spec_show(n, buf, sizeof buf));
            s->placement = JG_PLACEMENT_SAME_INFRA;
        } else if (!strcmp(key, "execution")) {
            const char *n =
                jg_spec_scalar(&c->r, v, "execution", "an execution mode (parallel)");
            if (n && strcmp(n, "parallel"))
                jg_spec_err(&c->r, v, "execution",
                            "invalid execution mode '%s' (expected parallel)",
                            jg_spec_show(n, buf, sizeof buf));
            s->execution = JG_EXECUTION_PARALLEL;
        } else if (!strcmp(key, "primary_tasks")) {
            parse_primary_tasks(c, v);
        } else if (!strcmp(key, "termination_delay")) {
            parse_termination_delay(c, v);
        } else if (!strcmp(key, "inter_connection")) {
            /* SkyPilot 0.14: true promises one infra with working names. */
            const char *n = jg_spec_scalar(&c->r, v, "inter_connection", "true or false");
            if (n && (!strcmp(n, "true") || !strcmp(n, "True")))
                s->inter_connection_off = false;
            else if (n && (!strcmp(n, "false") || !strcmp(n, "False")))
                s->inter_connection_off = true;
            else if (n)
                jg_spec_err(&c->r, v, "inter_connection", "expected true or false, got '%s'",
                            jg_spec_show(n, buf, sizeof buf));
        } else if (!strcmp(key, "policy")) {
            if (jg_spec_is_null(v))
                continue;
            const char *n = jg_spec_scalar(&c->r, v, "policy", "a policy name");
            if (n) {
                free(s->policy);
                s->policy = jg_xstrdup(n);
            }
        } else {
            jg_spec_unknown_key(&c->r, k, NULL, key, header_keys);
        }
    }
    if (!s->name)
        jg_spec_err(&c->r, name_node ? name_node : root, "name",
                    "the JobGroup header has no name (add name: <group-name>, a DNS label)");
}

/* Checks the header's references to jobs, now that every job is known. */
static void resolve_refs(pctx_t *c)
{
    jg_group_spec_t *s = c->spec;
    const char **names = NULL;
    for (size_t i = 0; i < c->n_refs; i++) {
        const ref_t *r = &c->refs[i];
        if (jg_spec_job_index_find(c, r->name) >= 0)
            continue;
        if (!names) {
            names = jg_xcalloc(s->n_jobs + 2, sizeof *names);
            for (size_t j = 0; j < s->n_jobs; j++)
                names[j] = s->jobs[j].name;
        }
        bool delay = !strcmp(r->field, "termination_delay");
        size_t n = s->n_jobs;
        if (delay)
            names[n++] = "default";
        const char *meant = NULL;
        if (!jg_spec_reader_full(&c->r) && c->r.suggest_left >= n) {
            c->r.suggest_left -= n;
            meant = jg_spec_suggest(r->name, names, n);
        }
        char buf[80];
        if (meant)
            jg_spec_err_at(&c->r, r->pos, r->field,
                           "'%s' is not a job of this group (did you mean "
                           "'%s'?)",
                           jg_spec_show(r->name, buf, sizeof buf), meant);
        else
            jg_spec_err_at(&c->r, r->pos, r->field, "'%s' is not a job of this group%s",
                           jg_spec_show(r->name, buf, sizeof buf),
                           delay ? " (keys are job names or 'default')" : "");
    }
    free(names);
    if (c->header_has_delay && s->n_primary_tasks == 0)
        jg_spec_warn_at(&c->r, c->delay_pos, "termination_delay",
                   "has no effect without primary_tasks (it is the grace auxiliary jobs get "
                   "once the primary tasks end)");
}

jg_group_spec_t *jg_spec_parse(const char *text, size_t len, const char *filename,
                               jg_spec_errors_t *errs)
{
    return jg_spec_parse_with(text, len, filename, NULL, errs);
}

static jg_group_spec_t *parse_stream(const char *text, size_t len, const char *filename,
                                     const jg_spec_limits_t *limits, bool for_another_user,
                                     const char *home, jg_spec_errors_t *errs);

jg_group_spec_t *jg_spec_parse_with(const char *text, size_t len, const char *filename,
                                    const jg_spec_limits_t *limits, jg_spec_errors_t *errs)
{
    return parse_stream(text, len, filename, limits, false, NULL, errs);
}

jg_group_spec_t *jg_spec_parse_for(const char *text, size_t len, const char *filename,
                                   const jg_spec_limits_t *limits, const char *home,
                                   jg_spec_errors_t *errs)
{
    return parse_stream(text, len, filename, limits, true, home, errs);
}

static jg_group_spec_t *parse_stream(const char *text, size_t len, const char *filename,
                                     const jg_spec_limits_t *limits, bool for_another_user,
                                     const char *home, jg_spec_errors_t *errs)
{
    jg_spec_errors_t scratch = {0};
    if (!errs)
        errs = &scratch;
    pctx_t c = {.path = filename, .home = home, .for_another_user = for_another_user};
    jg_spec_reader_init(&c.r, filename, errs);
    if (limits)
        c.r.limits = *limits;
    jg_group_spec_t *spec = jg_xcalloc(1, sizeof *spec);
    spec->source = jg_xstrdup(filename);
    c.spec = spec;

    yaml_parser_t parser;
    yaml_document_t docs[2];
    bool live[2] = {false, false};
    if (!jg_spec_check_size(&c.r, text, len) || !jg_spec_check_directives(&c.r, text, len)) {
        bool failed = jg_spec_reader_done(&c.r);
        (void)failed;
        if (errs == &scratch)
            jg_spec_errors_free(&scratch);
        jg_spec_free(spec);
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        jg_spec_err_at(&c.r, (jg_spec_pos_t){0, 0}, NULL, "cannot initialise the YAML parser");
        jg_spec_free(spec);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    int r1 = jg_spec_next_doc(&c.r, &parser, &docs[0], text, len);
    if (r1 == 0) {
        jg_spec_err_at(&c.r, (jg_spec_pos_t){0, 0}, NULL,
                       "empty stream: expected a JobGroup header and at "
                       "least one job document");
        goto done;
    }
    if (r1 < 0)
        goto done;
    live[0] = true;
    int r2 = jg_spec_next_doc(&c.r, &parser, &docs[1], text, len);
    live[1] = r2 == 1;
    c.r.doc = &docs[0];
    yaml_node_t *first = yaml_document_get_root_node(&docs[0]);

    if (r2 == 0) {
        /* One document: a group of one job, unless it is a header. */
        if (first->type == YAML_MAPPING_NODE && !has_any_key(&c, first, job_only_keys) &&
            has_any_key(&c, first, jg_spec_header_only_keys)) {
            parse_header(&c, first);
            jg_spec_err_at(&c.r, c.header_pos, NULL,
                           "JobGroup '%s' has no jobs (add one document per "
                           "job after the header)",
                           spec->name ? spec->name : "");
        } else {
            jg_spec_parse_job(&c, first);
            if (spec->n_jobs == 1)
                spec->name = jg_xstrdup(spec->jobs[0].name);
        }
        goto done;
    }

    /* Several documents: the first is the header. */
    bool header_ok = false;
    yaml_node_t *job_key = first_key_in(&c, first, job_only_keys);
    if (job_key) {
        jg_spec_err(&c.r, job_key, JG_SPEC_SVAL(job_key),
                    "a JobGroup's first document is its header (name, placement, execution, "
                    "primary_tasks, termination_delay, policy), and '%s' may not be in it: "
                    "put it in a job document after the header, or add a header document "
                    "before this one", JG_SPEC_SVAL(job_key));
    } else if (only_name(&c, first)) {
        jg_spec_err(&c.r, first, "execution", "a header with only 'name' is a chain (jobs "
                    "run one after another); jgsched runs JobGroups only: add 'execution: "
                    "parallel' to the header to run these jobs together");
    } else {
        parse_header(&c, first);
        header_ok = true;
    }
    yaml_document_delete(&docs[0]);
    live[0] = false;
    if (r2 < 0)
        goto done;
    c.r.doc = &docs[1];
    jg_spec_parse_job(&c, yaml_document_get_root_node(&docs[1]));
    yaml_document_delete(&docs[1]);
    live[1] = false;
    int r;
    /* Past the group's node bound the rest of the stream is not read: that
     * bounds the jobs, so the work of every later check. */
    while (!c.group_nodes_reported &&
           (r = jg_spec_next_doc(&c.r, &parser, &docs[0], text, len)) == 1) {
        c.r.doc = &docs[0];
        jg_spec_parse_job(&c, yaml_document_get_root_node(&docs[0]));
        yaml_document_delete(&docs[0]);
    }
    if (r == 0 && header_ok)
        resolve_refs(&c);

done:
    for (int i = 0; i < 2; i++)
        if (live[i])
            yaml_document_delete(&docs[i]);
    yaml_parser_delete(&parser);
    bool failed = jg_spec_reader_done(&c.r);
    free(c.index);
    free(c.refs);
    free(c.base_dir);
    if (errs == &scratch)
        jg_spec_errors_free(&scratch);
    if (failed) {
        jg_spec_free(spec);
        return NULL;
    }
    /* The jobs array grew by doubling from 8: a spec lives as long as its
     * group, pending ones included, so it keeps only what it holds. */
    if (spec->n_jobs && c.jobs_cap > spec->n_jobs)
        spec->jobs = jg_xrealloc(spec->jobs, spec->n_jobs * sizeof *spec->jobs);
    return spec;
}

jg_group_spec_t *jg_spec_parse_file(const char *path, jg_spec_errors_t *errs)
{
    jg_spec_errors_t scratch = {0};
    if (!errs)
        errs = &scratch;
    jg_group_spec_t *spec = NULL;
    size_t len = 0;
    char *text = jg_spec_read_bounded(path, NULL, &len, errs);
    if (text) {
        spec = jg_spec_parse(text, len, path, errs);
        free(text);
    }
    if (errs == &scratch)
        jg_spec_errors_free(&scratch);
    return spec;
}

void jg_spec_free(jg_group_spec_t *spec)
{
    if (!spec)
        return;
    free(spec->name);
    free(spec->source);
    for (size_t i = 0; i < spec->n_primary_tasks; i++)
        free(spec->primary_tasks[i]);
    free(spec->primary_tasks);
    for (size_t i = 0; i < spec->n_termination_delays; i++) {
        free(spec->termination_delays[i].key);
        free(spec->termination_delays[i].value);
    }
    free(spec->termination_delays);
    free(spec->policy);
    for (size_t i = 0; i < spec->n_jobs; i++)
        jg_spec_free_job(&spec->jobs[i]);
    free(spec->jobs);
    free(spec);
}

/* ---- small helpers ----------------------------------------------------- */

int jg_spec_set_name(jg_group_spec_t *spec, const char *name, jg_error_t *err)
{
    char buf[160];
    const char *why = name ? jg_spec_dns_problem(name, buf, sizeof buf) : "no name given";
    if (why)
        return jg_errprintf(err, "'%s' is not a valid JobGroup name: %s", name ? name : "",
                            why);
    free(spec->name);
    spec->name = jg_xstrdup(name);
    return 0;
}

int jg_spec_set_infra(jg_group_spec_t *spec, const char *infra, jg_error_t *err)
{
    char buf[200];
    const char *why = infra ? jg_spec_infra_problem(infra, buf, sizeof buf) : "no infra given";
    if (why)
        return jg_errprintf(err, "--infra: %s", why);
    for (size_t i = 0; i < spec->n_jobs; i++) {
        free(spec->jobs[i].infra);
        spec->jobs[i].infra = jg_xstrdup(infra);
    }
    return 0;
}

int jg_spec_find_job(const jg_group_spec_t *spec, const char *name)
{
    if (!spec || !name)
        return -1;
    for (size_t i = 0; i < spec->n_jobs; i++)
        if (spec->jobs[i].name && !strcmp(spec->jobs[i].name, name))
            return (int)i;
    return -1;
}

bool jg_spec_job_is_primary(const jg_group_spec_t *spec, size_t job_index)
{
    if (job_index >= spec->n_jobs)
        return false;
    if (spec->n_primary_tasks == 0)
        return true;
    for (size_t i = 0; i < spec->n_primary_tasks; i++)
        if (!strcmp(spec->primary_tasks[i], spec->jobs[job_index].name))
            return true;
    return false;
}

double jg_spec_termination_delay(const jg_group_spec_t *spec, const char *job)
{
    for (size_t i = 0; job && i < spec->n_termination_delays; i++)
        if (!strcmp(spec->termination_delays[i].key, job))
            return strtod(spec->termination_delays[i].value, NULL);
    return spec->termination_delay_s;
}

size_t jg_spec_total_nodes(const jg_group_spec_t *spec)
{
    size_t n = 0;
    for (size_t i = 0; i < spec->n_jobs; i++)
        n += (size_t)spec->jobs[i].num_nodes;
    return n;
}
