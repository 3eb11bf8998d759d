/* spec_json.c - the two other faces of a parsed spec: JSON and prose.
 *
 * JSON is how a spec travels to the store and back, so the round trip
 * jg_spec_from_json(jg_spec_to_json(s)) must give back every field of s
 * exactly: doubles are written with 17 significant digits, absent values are
 * null, ordered lists (envs, volumes, per-job delays) are JSON objects, whose
 * insertion order jansson (>= 2.8) keeps.  Reading is strict in the flux
 * jobspec way: json_unpack_ex with '!' rejects unknown keys, every value's
 * type is checked, and a bad document yields NULL plus a message naming the
 * path (`jobs[2].cpus.value`), never a half-built spec.
 *
 * jg_spec_describe renders what `jgsched validate` prints: the group, then one
 * block per job with its resolved resources.
 */
#include "jgsched/spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ---- to JSON ----------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *amount_json(const jg_amount_t *a)
{
    if (!a->set)
        return json_null();
    return json_pack("{s:f, s:b}", "value", a->value, "at_least", a->at_least);
}

static json_t *kv_json(const jg_kv_t *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, str_or_null(kv[i].value));
    return o;
}

static json_t *job_json(const jg_job_spec_t *j)
{
    json_t *accel = j->accel.name
        ? json_pack("{s:s, s:i}", "name", j->accel.name, "count", j->accel.count)
        : json_null();
    json_t *rec = json_null();
    if (j->recovery.set) {
        json_t *codes = json_array();
        for (size_t i = 0; i < j->recovery.n_recover_on_exit_codes; i++)
            json_array_append_new(codes, json_integer(j->recovery.recover_on_exit_codes[i]));
        json_decref(rec);
        rec = json_pack("{s:i, s:o, s:o}", "max_restarts_on_errors",
                        j->recovery.max_restarts_on_errors, "recover_on_exit_codes", codes,
                        "strategy", str_or_null(j->recovery.strategy));
    }
    return json_pack("{s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "name", str_or_null(j->name),
                     "line", j->line,
                     "num_nodes", j->num_nodes,
                     "cpus", amount_json(&j->cpus),
                     "memory_gb", amount_json(&j->memory_gb),
                     "accelerator", accel,
                     "infra", str_or_null(j->infra),
                     "image_id", str_or_null(j->image_id),
                     "recovery", rec,
                     "envs", kv_json(j->envs, j->n_envs),
                     "setup", str_or_null(j->setup),
                     "run", str_or_null(j->run),
                     "workdir", str_or_null(j->workdir),
                     "volumes", kv_json(j->volumes, j->n_volumes));
}

char *jg_spec_to_json(const jg_group_spec_t *spec)
{
    char *out = NULL;
    json_t *jobs = json_array();
    for (size_t i = 0; i < spec->n_jobs; i++)
        json_array_append_new(jobs, job_json(&spec->jobs[i]));
    json_t *primary = json_array();
    for (size_t i = 0; i < spec->n_primary_tasks; i++)
        json_array_append_new(primary, json_string(spec->primary_tasks[i]));
    json_t *root = json_pack("{s:o, s:o, s:s, s:s, s:o, s:f, s:o, s:o, s:b, s:o}",
                             "name", str_or_null(spec->name),
                             "source", str_or_null(spec->source),
                             "placement", "SAME_INFRA",
                             "execution", "parallel",
                             "primary_tasks", primary,
                             "termination_delay_s", spec->termination_delay_s,
                             "termination_delays",
                             kv_json(spec->termination_delays, spec->n_termination_delays),
                             "policy", str_or_null(spec->policy),
                             "inter_connection", !spec->inter_connection_off,
                             "jobs", jobs);
    if (root)
        out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    return out;
}

/* ---- from JSON --------------------------------------------------------- */

static int get_str(const json_t *v, bool nullable, char **out, const char *path, jg_error_t *err)
{
    if (!v || json_is_null(v)) {
        if (nullable)
            return 0;
        return jg_errprintf(err, "%s: expected a string, got %s", path, v ? "null" : "nothing");
    }
    if (!json_is_string(v))
        return jg_errprintf(err, "%s: expected a string", path);
    *out = jg_xstrdup(json_string_value(v));
    return 0;
}

static int get_int(const json_t *v, long long lo, long long hi, int *out, const char *path,
                   jg_error_t *err)
{
    if (!json_is_integer(v))
        return jg_errprintf(err, "%s: expected an integer", path);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return jg_errprintf(err, "%s: %lld is out of range (%lld..%lld)", path, (long long)x,
                            lo, hi);
    *out = (int)x;
    return 0;
}

static int get_amount(const json_t *v, jg_amount_t *a, const char *path, jg_error_t *err)
{
    json_error_t jerr;
    json_t *value = NULL;
    int at_least = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_unpack_ex((json_t *)v, &jerr, 0, "{s:o, s:b !}", "value", &value, "at_least",
                       &at_least) < 0)
        return jg_errprintf(err, "%s: %s", path, jerr.text);
    if (!json_is_number(value) || !isfinite(json_number_value(value)))
        return jg_errprintf(err, "%s.value: expected a number", path);
    *a = (jg_amount_t){.set = true, .value = json_number_value(value), .at_least = at_least};
    return 0;
}

static int get_kv(const json_t *v, jg_kv_t **kv, size_t *n, const char *path, jg_error_t *err)
{
    const char *key;
    json_t *val;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return jg_errprintf(err, "%s: expected an object", path);
    *kv = jg_xcalloc(json_object_size(v), sizeof **kv);
    json_object_foreach((json_t *)v, key, val) {
        if (!json_is_string(val))
            return jg_errprintf(err, "%s.%s: expected a string", path, key);
        (*kv)[*n].key = jg_xstrdup(key);
        (*kv)[*n].value = jg_xstrdup(json_string_value(val));
        (*n)++;
    }
    return 0;
}

static int get_recovery(const json_t *v, jg_recovery_t *r, const char *path, jg_error_t *err)
{
    json_error_t jerr;
    json_t *max = NULL, *codes = NULL, *strategy = NULL;
    char p[160];
    if (!v || json_is_null(v))
        return 0;
    if (json_unpack_ex((json_t *)v, &jerr, 0, "{s:o, s:o, s?o !}", "max_restarts_on_errors",
                       &max, "recover_on_exit_codes", &codes, "strategy", &strategy) < 0)
        return jg_errprintf(err, "%s: %s", path, jerr.text);
    r->set = true;
    snprintf(p, sizeof p, "%s.max_restarts_on_errors", path);
    if (get_int(max, 0, 0x7fffffff, &r->max_restarts_on_errors, p, err) < 0)
        return -1;
    if (!json_is_array(codes))
        return jg_errprintf(err, "%s.recover_on_exit_codes: expected an array", path);
    r->recover_on_exit_codes = jg_xcalloc(json_array_size(codes), sizeof(int));
    for (size_t i = 0; i < json_array_size(codes); i++) {
        snprintf(p, sizeof p, "%s.recover_on_exit_codes[%zu]", path, i);
        if (get_int(json_array_get(codes, i), 0, 255,
                    &r->recover_on_exit_codes[r->n_recover_on_exit_codes], p, err) < 0)
            return -1;
        r->n_recover_on_exit_codes++;
    }
    snprintf(p, sizeof p, "%s.strategy", path);
    return get_str(strategy, true, &r->strategy, p, err);
}

static int get_job(const json_t *v, jg_job_spec_t *j, size_t idx, jg_error_t *err)
{
    json_error_t jerr;
    json_t *name = NULL, *line = NULL, *num_nodes = NULL, *cpus = NULL, *mem = NULL,
           *accel = NULL, *infra = NULL, *image_id = NULL, *rec = NULL, *envs = NULL, *setup = NULL,
           *run = NULL, *workdir = NULL, *volumes = NULL;
    char path[64], p[96];
    snprintf(path, sizeof path, "jobs[%zu]", idx);
    if (json_unpack_ex((json_t *)v, &jerr, 0,
                       "{s:o, s?o, s:o, s?o, s?o, s?o, s?o, s?o, s?o, s?o, s?o, s?o, s?o, s?o !}",
                       "name", &name, "line", &line, "num_nodes", &num_nodes, "cpus", &cpus,
                       "memory_gb", &mem, "accelerator", &accel, "infra", &infra,
                       "image_id", &image_id,
                       "recovery", &rec, "envs", &envs, "setup", &setup, "run", &run,
                       "workdir", &workdir, "volumes", &volumes) < 0)
        return jg_errprintf(err, "%s: %s", path, jerr.text);
    snprintf(p, sizeof p, "%s.name", path);
    if (get_str(name, false, &j->name, p, err) < 0)
        return -1;
    if (!jg_spec_is_dns_label(j->name))
        return jg_errprintf(err, "%s: '%s' is not a DNS label", p, j->name);
    snprintf(p, sizeof p, "%s.line", path);
    if (line && get_int(line, 0, 0x7fffffff, &j->line, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.num_nodes", path);
    if (get_int(num_nodes, 1, 0x7fffffff, &j->num_nodes, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.cpus", path);
    if (get_amount(cpus, &j->cpus, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.memory_gb", path);
    if (get_amount(mem, &j->memory_gb, p, err) < 0)
        return -1;
    if (accel && !json_is_null(accel)) {
        const char *an;
        int count;
        snprintf(p, sizeof p, "%s.accelerator", path);
        if (json_unpack_ex(accel, &jerr, 0, "{s:s, s:i !}", "name", &an, "count", &count) < 0)
            return jg_errprintf(err, "%s: %s", p, jerr.text);
        if (count < 1)
            return jg_errprintf(err, "%s.count: must be at least 1", p);
        j->accel.name = jg_xstrdup(an);
        j->accel.count = count;
    }
    snprintf(p, sizeof p, "%s.infra", path);
    if (get_str(infra, true, &j->infra, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.image_id", path);
    if (get_str(image_id, true, &j->image_id, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.recovery", path);
    if (get_recovery(rec, &j->recovery, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.envs", path);
    if (get_kv(envs, &j->envs, &j->n_envs, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.setup", path);
    if (get_str(setup, true, &j->setup, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.run", path);
    if (get_str(run, true, &j->run, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.workdir", path);
    if (get_str(workdir, true, &j->workdir, p, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.volumes", path);
    return get_kv(volumes, &j->volumes, &j->n_volumes, p, err);
}

jg_group_spec_t *jg_spec_from_json(const char *json, jg_error_t *err)
{
    json_error_t jerr;
    json_t *name = NULL, *source = NULL, *primary = NULL, *delay = NULL, *delays = NULL,
           *policy = NULL, *jobs = NULL;
    const char *placement = "SAME_INFRA", *execution = "parallel";
    jg_group_spec_t *spec = jg_xcalloc(1, sizeof *spec);
    json_t *root = json ? json_loads(json, 0, &jerr) : NULL;
    if (!root) {
        jg_errprintf(err, "spec JSON: %s", json ? jerr.text : "no input");
        goto fail;
    }
    int inter_connection = 1;   /* absent in specs stored before it existed */
    if (json_unpack_ex(root, &jerr, 0, "{s:o, s?o, s?s, s?s, s?o, s?o, s?o, s?o, s?b, s:o !}",
                       "name", &name, "source", &source, "placement", &placement,
                       "execution", &execution, "primary_tasks", &primary,
                       "termination_delay_s", &delay, "termination_delays", &delays,
                       "policy", &policy, "inter_connection", &inter_connection,
                       "jobs", &jobs) < 0) {
        jg_errprintf(err, "spec JSON: %s", jerr.text);
        goto fail;
    }
    if (get_str(name, false, &spec->name, "name", err) < 0)
        goto fail;
    if (!jg_spec_is_dns_label(spec->name)) {
        jg_errprintf(err, "name: '%s' is not a DNS label", spec->name);
        goto fail;
    }
    if (get_str(source, true, &spec->source, "source", err) < 0)
        goto fail;
    spec->inter_connection_off = !inter_connection;
    if (strcmp(placement, "SAME_INFRA") || strcmp(execution, "parallel")) {
        jg_errprintf(err, "placement/execution: unknown mode '%s'/'%s'", placement, execution);
        goto fail;
    }
    if (primary && !json_is_null(primary)) {
        if (!json_is_array(primary)) {
            jg_errprintf(err, "primary_tasks: expected an array");
            goto fail;
        }
        spec->primary_tasks = jg_xcalloc(json_array_size(primary), sizeof(char *));
        for (size_t i = 0; i < json_array_size(primary); i++) {
            if (get_str(json_array_get(primary, i), false,
                        &spec->primary_tasks[spec->n_primary_tasks], "primary_tasks", err) < 0)
                goto fail;
            spec->n_primary_tasks++;
        }
    }
    if (delay && !json_is_null(delay)) {
        if (!json_is_number(delay) || !isfinite(json_number_value(delay))) {
            jg_errprintf(err, "termination_delay_s: expected a number");
            goto fail;
        }
        spec->termination_delay_s = json_number_value(delay);
    }
    if (get_kv(delays, &spec->termination_delays, &spec->n_termination_delays,
               "termination_delays", err) < 0)
        goto fail;
    if (get_str(policy, true, &spec->policy, "policy", err) < 0)
        goto fail;
    if (!json_is_array(jobs)) {
        jg_errprintf(err, "jobs: expected an array");
        goto fail;
    }
    spec->jobs = jg_xcalloc(json_array_size(jobs), sizeof *spec->jobs);
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        /* counted before filling, so jg_spec_free releases a half-read job too */
        spec->n_jobs++;
        if (get_job(json_array_get(jobs, i), &spec->jobs[i], i, err) < 0)
            goto fail;
    }
    json_decref(root);
    return spec;
fail:
    json_decref(root);
    jg_spec_free(spec);
    return NULL;
}

/* ---- description ------------------------------------------------------- */

static void put_amount(FILE *f, const jg_amount_t *a, const char *unit)
{
    if (!a->set)
        fputs("any", f);
    else
        fprintf(f, "%g%s%s", a->value, a->at_least ? "+" : "", unit);
}

/* The first line of a script, and how many lines follow. */
static void put_script(FILE *f, const char *label, const char *s)
{
    fprintf(f, "    %-13s ", label);
    if (!s) {
        fputs(strcmp(label, "run:") ? "none\n" : "none (the job succeeds at once)\n", f);
        return;
    }
    const char *nl = strchr(s, '\n');
    size_t first = nl ? (size_t)(nl - s) : strlen(s);
    size_t more = 0;
    for (const char *p = nl; p && p[1]; p = strchr(p + 1, '\n'))
        more++;
    fprintf(f, "%.*s", (int)(first > 100 ? 100 : first), s);
    if (first > 100)
        fputs("...", f);
    if (more)
        fprintf(f, "  (+%zu more line%s)", more, more == 1 ? "" : "s");
    fputc('\n', f);
}

char *jg_spec_describe(const jg_group_spec_t *spec)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return jg_xstrdup("(out of memory)\n");
    fprintf(f, "JobGroup %s%s%s%s\n", spec->name ? spec->name : "(unnamed)",
            spec->source ? "  (from " : "", spec->source ? spec->source : "",
            spec->source ? ")" : "");
    fprintf(f, "  placement:          SAME_INFRA\n");
    fprintf(f, "  execution:          parallel\n");
    fprintf(f, "  primary tasks:      ");
    if (!spec->n_primary_tasks)
        fputs("all jobs", f);
    for (size_t i = 0; i < spec->n_primary_tasks; i++)
        fprintf(f, "%s%s", i ? ", " : "", spec->primary_tasks[i]);
    fprintf(f, "\n  termination delay:  %gs", spec->termination_delay_s);
    for (size_t i = 0; i < spec->n_termination_delays; i++)
        fprintf(f, "%s%s: %ss", i ? ", " : " (", spec->termination_delays[i].key,
                spec->termination_delays[i].value);
    fprintf(f, "%s\n", spec->n_termination_delays ? ")" : "");
    fprintf(f, "  policy:             %s\n", spec->policy ? spec->policy : "(daemon default)");
    fprintf(f, "  jobs:               %zu (%zu node%s)\n", spec->n_jobs,
            jg_spec_total_nodes(spec), jg_spec_total_nodes(spec) == 1 ? "" : "s");
    for (size_t i = 0; i < spec->n_jobs; i++) {
        const jg_job_spec_t *j = &spec->jobs[i];
        fprintf(f, "\n  job %s%s", j->name ? j->name : "(unnamed)",
                jg_spec_job_is_primary(spec, i) && spec->n_primary_tasks ? "  [primary]" : "");
        if (j->line)
            fprintf(f, "  (line %d)", j->line);
        fprintf(f, "\n    %-13s %d\n", "num_nodes:", j->num_nodes);
        fprintf(f, "    %-13s ", "cpus:");
        put_amount(f, &j->cpus, "");
        fprintf(f, "\n    %-13s ", "memory:");
        put_amount(f, &j->memory_gb, " GiB");
        fprintf(f, "\n    %-13s ", "accelerators:");
        if (j->accel.name)
            fprintf(f, "%s:%d\n", j->accel.name, j->accel.count);
        else
            fputs("none\n", f);
        fprintf(f, "    %-13s %s\n", "infra:", j->infra ? j->infra : "any (not pinned)");
        fprintf(f, "    %-13s ", "recovery:");
        if (!j->recovery.set) {
            fputs("none\n", f);
        } else {
            fprintf(f, "up to %d restart%s on errors", j->recovery.max_restarts_on_errors,
                    j->recovery.max_restarts_on_errors == 1 ? "" : "s");
            for (size_t k = 0; k < j->recovery.n_recover_on_exit_codes; k++)
                fprintf(f, "%s%d", k ? ", " : "; always recovers on exit codes ",
                        j->recovery.recover_on_exit_codes[k]);
            if (j->recovery.strategy)
                fprintf(f, "; strategy %s", j->recovery.strategy);
            fputc('\n', f);
        }
        if (j->n_envs) {
            fprintf(f, "    %-13s ", "envs:");
            for (size_t k = 0; k < j->n_envs; k++)
                fprintf(f, "%s%s=%s", k ? ", " : "", j->envs[k].key, j->envs[k].value);
            fputc('\n', f);
        }
        if (j->workdir)
            fprintf(f, "    %-13s %s\n", "workdir:", j->workdir);
        if (j->n_volumes) {
            fprintf(f, "    %-13s ", "volumes:");
            for (size_t k = 0; k < j->n_volumes; k++)
                fprintf(f, "%s%s <- %s", k ? ", " : "", j->volumes[k].key,
                        j->volumes[k].value);
            fputc('\n', f);
        }
        put_script(f, "setup:", j->setup);
        put_script(f, "run:", j->run);
    }
    fclose(f);
    return buf;
}
