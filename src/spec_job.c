/* spec_job.c - one job document of a JobGroup: its fields, each checked on
 * its own (spec.c reads the stream and the header and calls
 * jg_spec_parse_job once per job document).
 *
 * Every field of a job is read here: name, num_nodes, resources (cpus,
 * memory, accelerators, infra; SkyPilot's cloud keys accepted with a
 * warning), envs, setup/run, workdir (made absolute against the file's
 * directory, never looking at the filesystem when the daemon parses what a
 * user submitted), volumes and job_recovery.  A bad field records a message
 * and leaves the job's default, so one pass lists every problem.  Job names
 * go into a hash index as jobs are added, so duplicate names and the
 * header's references to jobs are found in linear time.
 */
#include "jgsched/spec.h"
#include "spec_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* Keys a job document may hold. */
static const char *const job_keys[] = {
    "name", "num_nodes", "resources", "envs", "setup", "run", "workdir",
    "volumes", "file_mounts", "job_recovery", NULL,
};
static const char *const resource_keys[] = {
    "cpus", "memory", "accelerators", "infra", "job_recovery",
    /* SkyPilot keys accepted and ignored (with a warning) */
    "use_spot", "disk_size", "disk_tier", "ports", "image_id", "labels",
    "cloud", "region", "zone", "instance_type", NULL,
};
static const char *const ignored_resource_keys[] = {
    "use_spot", "disk_size", "disk_tier", "ports", "labels",
    "cloud", "region", "zone", "instance_type", NULL,
};
static const char *const recovery_keys[] = {
    "max_restarts_on_errors", "recover_on_exit_codes", "strategy", NULL,
};

/* Why infra is not `local`, `kubernetes` or `kubernetes/<context>`; NULL if it is. */
const char *jg_spec_infra_problem(const char *s, char *buf, size_t size)
{
    if (!strcmp(s, "local") || !strcmp(s, "kubernetes"))
        return NULL;
    if (!strncmp(s, "kubernetes/", 11)) {
        const char *ctx = s + 11;
        if (!*ctx)
            return "a context name must follow 'kubernetes/'";
        for (const char *p = ctx; *p; p++) {
            if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
                snprintf(buf, size, "the Kubernetes context '%s' contains whitespace or a "
                         "control character", ctx);
                return buf;
            }
        }
        return NULL;
    }
    if (!strncmp(s, "local/", 6)) {
        snprintf(buf, size, "'local' takes no context ('%s' given)", s);
        return buf;
    }
    const char *slash = strchr(s, '/');
    size_t head = slash ? (size_t)(slash - s) : strlen(s);
    char cloud[64];
    if (head >= sizeof cloud)
        head = sizeof cloud - 1;
    memcpy(cloud, s, head);
    cloud[head] = '\0';
    static const char *const known[] = {"local", "kubernetes"};
    const char *meant = NULL;
    if (!strcasecmp(cloud, "k8s"))
        meant = "kubernetes";
    else
        meant = jg_spec_suggest(cloud, known, 2);
    if (meant)
        snprintf(buf, size, "unknown infra '%s' (did you mean '%s%s'?)", s, meant,
                 slash && strcmp(meant, "local") ? slash : "");
    else
        snprintf(buf, size, "unknown infra '%s' (jgsched runs on local, kubernetes or "
                 "kubernetes/<context>)", s);
    return buf;
}

/* Grows an array this module alone appends to (from empty) at powers of two,
 * so n appends cost O(n) whatever the allocator does. */
static void *grow_pow2(void *arr, size_t n, size_t elem)
{
    if (n == 0 || (n & (n - 1)) == 0)
        arr = jg_xrealloc(arr, (n ? n * 2 : 1) * elem);
    return arr;
}

/* ---- job pieces -------------------------------------------------------- */

bool jg_spec_check_dns_name(pctx_t *c, const yaml_node_t *n, const char *what, const char *v)
{
    char buf[160], vb[80];
    const char *why = jg_spec_dns_problem(v, buf, sizeof buf);
    if (why) {
        jg_spec_err(&c->r, n, "name", "'%s' is not a valid %s name: %s",
                    jg_spec_show(v, vb, sizeof vb), what, why);
        return false;
    }
    return true;
}

static void parse_recovery(pctx_t *c, yaml_node_t *v, const char *field, jg_recovery_t *r)
{
    char buf[80];
    if (jg_spec_is_null(v))
        return;
    if (v->type == YAML_SCALAR_NODE) {      /* SkyPilot's short form: the strategy */
        r->set = true;
        r->strategy = jg_xstrdup(JG_SPEC_SVAL(v));
        return;
    }
    if (v->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, v, field,
                    "expected a mapping (max_restarts_on_errors, recover_on_exit_codes, "
                    "strategy), got %s",
                    jg_spec_kind(v));
        return;
    }
    r->set = true;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, field);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        char *f = jg_spec_join_field(field, key);
        if (!strcmp(key, "max_restarts_on_errors")) {
            long long x;
            const char *s = jg_spec_scalar(&c->r, val, f, "an integer >= 0");
            if (s && jg_spec_parse_int(s, 0, INT_MAX, &x) == 0)
                r->max_restarts_on_errors = (int)x;
            else if (s)
                jg_spec_err(&c->r, val, f, "expected an integer >= 0, got '%s'",
                            jg_spec_show(s, buf, sizeof buf));
        } else if (!strcmp(key, "recover_on_exit_codes")) {
            yaml_node_t *single[1] = {val};
            yaml_node_t **items = single;
            size_t n = 1;
            bool is_seq = val->type == YAML_SEQUENCE_NODE;
            if (is_seq) {
                n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
                items = jg_xcalloc(n, sizeof *items);
                for (size_t i = 0; i < n; i++)
                    items[i] = jg_spec_node(&c->r, val->data.sequence.items.start[i]);
            } else if (jg_spec_is_null(val)) {
                n = 0;
            }
            free(r->recover_on_exit_codes);
            r->recover_on_exit_codes = jg_xcalloc(n, sizeof(int));
            r->n_recover_on_exit_codes = 0;
            for (size_t i = 0; i < n; i++) {
                char *fi = is_seq ? jg_xasprintf("%s[%zu]", f, i) : jg_xstrdup(f);
                long long x;
                const char *s = jg_spec_scalar(&c->r, items[i], fi, "an exit code (0..255)");
                int rc = s ? jg_spec_parse_int(s, 0, 255, &x) : 0;
                if (s && rc == 0)
                    r->recover_on_exit_codes[r->n_recover_on_exit_codes++] = (int)x;
                else if (s && rc == -2)
                    jg_spec_err(&c->r, items[i], fi, "exit code %s is out of range (0..255)",
                                jg_spec_show(s, buf, sizeof buf));
                else if (s)
                    jg_spec_err(&c->r, items[i], fi, "expected an exit code (0..255), got '%s'",
                                jg_spec_show(s, buf, sizeof buf));
                free(fi);
            }
            if (is_seq)
                free(items);
        } else if (!strcmp(key, "strategy")) {
            free(r->strategy);
            r->strategy = NULL;
            if (!jg_spec_is_null(val)) {
                const char *s = jg_spec_scalar(&c->r, val, f, "a strategy name");
                if (s)
                    r->strategy = jg_xstrdup(s);
            }
        } else {
            jg_spec_unknown_key(&c->r, k, field, key, recovery_keys);
        }
        free(f);
    }
}

static void parse_accelerators(pctx_t *c, yaml_node_t *v, jg_accel_t *acc)
{
    static const char *field = "resources.accelerators";
    char buf[80];
    const char *name = NULL, *count = NULL;
    yaml_node_t *count_node = v;
    if (jg_spec_is_null(v))
        return;
    if (v->type == YAML_SEQUENCE_NODE) {
        jg_spec_err(&c->r, v, field,
                    "a list of accelerators (any of them) is not supported; give one "
                    "type, e.g. T4:1");
        return;
    }
    char *owned = NULL;
    if (v->type == YAML_MAPPING_NODE) {
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (n != 1) {
            jg_spec_err(&c->r, v, field,
                        "expected one accelerator type, e.g. {A100: 8}; this mapping "
                        "lists %zu (choosing among several is not supported)",
                        n);
            return;
        }
        yaml_node_t *k = jg_spec_node(&c->r, v->data.mapping.pairs.start->key);
        count_node = jg_spec_node(&c->r, v->data.mapping.pairs.start->value);
        name = jg_spec_scalar(&c->r, k, field, "an accelerator name");
        if (!name)
            return;
        count = jg_spec_scalar(&c->r, count_node, field, "a count >= 1");
        if (!count)
            return;
    } else {
        const char *s = JG_SPEC_SVAL(v);
        const char *colon = strchr(s, ':');
        if (colon) {
            owned = jg_xstrndup(s, (size_t)(colon - s));
            name = owned;
            count = colon + 1;
        } else {
            name = s;
        }
    }
    bool ok = jg_spec_accel_name_ok(name);
    long long x = 1;
    if (!ok) {
        jg_spec_err(&c->r, v, field,
                    "invalid accelerator name '%s' (expected e.g. T4, A100, H100:8)",
                    jg_spec_show(name, buf, sizeof buf));
    } else if (count) {
        int rc = jg_spec_parse_int(count, LLONG_MIN, LLONG_MAX, &x);
        double d;
        if (rc == 0 && x < 1)
            jg_spec_err(&c->r, count_node, field,
                        "accelerator count must be at least 1, got '%s'",
                        jg_spec_show(count, buf, sizeof buf));
        else if (rc == 0 && x > INT_MAX)
            jg_spec_err(&c->r, count_node, field, "accelerator count '%s' is too large",
                        jg_spec_show(count, buf, sizeof buf));
        else if (rc == 0) {
            acc->name = jg_xstrdup(name);
            acc->count = (int)x;
        } else if (strchr(count, '.') && *count && jg_spec_scan_decimal(count, &d) == strlen(count))
            jg_spec_err(&c->r, count_node, field,
                        "fractional accelerator count '%s' is not supported "
                        "(expected a whole number >= 1)",
                        jg_spec_show(count, buf, sizeof buf));
        else
            jg_spec_err(&c->r, count_node, field,
                        "invalid accelerator count '%s' (expected e.g. %s:1)",
                        jg_spec_show(count, buf, sizeof buf), name);
    } else {
        acc->name = jg_xstrdup(name);
        acc->count = 1;
    }
    free(owned);
}

static void parse_resources(pctx_t *c, yaml_node_t *v, jg_job_spec_t *job,
                            yaml_node_t **recovery_key)
{
    char buf[80], why[200];
    if (jg_spec_is_null(v))
        return;
    if (v->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, v, "resources",
                    "expected a mapping (cpus, memory, accelerators, infra, "
                    "job_recovery), got %s",
                    jg_spec_kind(v));
        return;
    }
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, "resources");
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        if (!strcmp(key, "cpus")) {
            const char *s = jg_spec_is_null(val) ? NULL
                                                 : jg_spec_scalar(&c->r, val, "resources.cpus",
                                                                  "a number like 4, 4+ or 0.5");
            if (s && !jg_spec_parse_cpus(s, &job->cpus))
                jg_spec_err(&c->r, val, "resources.cpus",
                            "invalid value '%s' (expected a positive number, "
                            "optionally followed by '+': 4, 4+, 0.5)",
                            jg_spec_show(s, buf, sizeof buf));
        } else if (!strcmp(key, "memory")) {
            const char *s = jg_spec_is_null(val) ? NULL
                                                 : jg_spec_scalar(&c->r, val, "resources.memory",
                                                                  "a size like 8, 8+ or 8GB");
            if (s && !jg_spec_parse_memory(s, &job->memory_gb))
                jg_spec_err(&c->r, val, "resources.memory",
                            "invalid value '%s' (expected a positive size in GiB, optionally "
                            "with a unit and '+': 8, 8+, 8GB, 512MB, 1TB, 16GiB)",
                            jg_spec_show(s, buf, sizeof buf));
        } else if (!strcmp(key, "accelerators")) {
            parse_accelerators(c, val, &job->accel);
        } else if (!strcmp(key, "infra")) {
            const char *s = jg_spec_is_null(val) ? NULL
                                                 : jg_spec_scalar(&c->r, val, "resources.infra",
                                                                  "local, kubernetes or "
                                                                  "kubernetes/<context>");
            const char *bad = s ? jg_spec_infra_problem(s, why, sizeof why) : NULL;
            if (bad)
                jg_spec_err(&c->r, val, "resources.infra", "%s", bad);
            else if (s)
                job->infra = jg_xstrdup(s);
        } else if (!strcmp(key, "image_id")) {
            /* SkyPilot's form for a container image: docker:<image>.  Used by
             * the kubernetes backend; local runs on the host and ignores it. */
            const char *s = jg_spec_is_null(val) ? NULL
                                                 : jg_spec_scalar(&c->r, val, "resources.image_id",
                                                                  "docker:<image>");
            const char *bad = NULL;
            if (s && strncmp(s, "docker:", 7) != 0)
                bad = "only docker:<image> is understood (SkyPilot's form for a container image)";
            else if (s && !s[7])
                bad = "an image must follow 'docker:'";
            else if (s)
                bad = jg_spec_image_problem(s + 7);
            if (bad)
                jg_spec_err(&c->r, val, "resources.image_id", "invalid value '%s': %s",
                            jg_spec_show(s, buf, sizeof buf), bad);
            else if (s) {
                free(job->image_id);
                job->image_id = jg_xstrdup(s);
            }
        } else if (!strcmp(key, "job_recovery")) {
            if (*recovery_key)
                jg_spec_err(&c->r, k, "resources.job_recovery",
                            "job_recovery is given twice (also at "
                            "line %d); keep one",
                            jg_spec_node_pos(*recovery_key).line);
            else {
                *recovery_key = k;
                parse_recovery(c, val, "resources.job_recovery", &job->recovery);
            }
        } else if (jg_spec_in_list(key, ignored_resource_keys)) {
            bool where = !strcmp(key, "cloud") || !strcmp(key, "region") ||
                         !strcmp(key, "zone");
            jg_spec_warn(&c->r, k, "resources",
                         "'%s' is a SkyPilot key that jgsched accepts and ignores%s", key,
                         where ? " (use 'infra' to choose where a job runs)" : "");
        } else if (!strcmp(key, "any_of") || !strcmp(key, "ordered")) {
            jg_spec_err(&c->r, k, "resources",
                        "'%s' is not supported: jgsched needs one resource shape "
                        "per job",
                        key);
        } else {
            jg_spec_unknown_key(&c->r, k, "resources", key, resource_keys);
        }
    }
}

static bool env_name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

void jg_spec_kv_push(jg_kv_t **kv, size_t *n, const char *k, const char *v)
{
    *kv = grow_pow2(*kv, *n, sizeof **kv);
    (*kv)[*n].key = jg_xstrdup(k);
    (*kv)[*n].value = jg_xstrdup(v);
    (*n)++;
}

static void parse_envs(pctx_t *c, yaml_node_t *v, jg_job_spec_t *job)
{
    char buf[80];
    if (jg_spec_is_null(v))
        return;
    if (v->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, v, "envs", "expected a mapping of NAME: value, got %s",
                    jg_spec_kind(v));
        return;
    }
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n > (size_t)c->r.limits.max_envs) {
        jg_spec_err(&c->r, v, "envs", "%zu variables, over the limit of %d per job "
                    "(spec_limits.max_envs)", n, c->r.limits.max_envs);
        return;
    }
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, "envs");
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        bool reserved = !strncmp(key, "SKYPILOT_", 9) || !strncmp(key, "JGSCHED_", 8);
        if (env_name_ok(key) && !reserved && val->type == YAML_SCALAR_NODE &&
            !jg_spec_is_null(val) && strlen(JG_SPEC_SVAL(val)) == val->data.scalar.length) {
            /* the common case, without building a field name for messages */
            jg_spec_kv_push(&job->envs, &job->n_envs, key, JG_SPEC_SVAL(val));
            continue;
        }
        char *f = jg_spec_join_field("envs", key);
        if (!env_name_ok(key)) {
            jg_spec_err(&c->r, k, "envs",
                        "invalid variable name '%s' (letters, digits and '_', not "
                        "starting with a digit)",
                        jg_spec_show(key, buf, sizeof buf));
        } else if (jg_spec_is_null(val)) {
            jg_spec_err(&c->r, val, f,
                        "no value given (set a value, e.g. %s: \"...\"; an empty value "
                        "is written \"\")",
                        key);
        } else {
            const char *s = jg_spec_scalar(&c->r, val, f, "a string, number or boolean");
            if (s) {
                jg_spec_kv_push(&job->envs, &job->n_envs, key, s);
                if (reserved)
                    jg_spec_warn(&c->r, k, f,
                                 "jgsched sets this variable on every node; your value may "
                                 "be overridden");
            }
        }
        free(f);
    }
}

/* A volume is named as the daemon names it (config.yaml, `jgsched volume
 * create`): a DNS label, so a name that could never resolve fails here. */
static void parse_volumes(pctx_t *c, yaml_node_t *v, jg_job_spec_t *job)
{
    char buf[80], buf2[80], why[160];
    if (jg_spec_is_null(v))
        return;
    if (v->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, v, "volumes",
                    "expected a mapping of /mount/path: volume-name, got %s", jg_spec_kind(v));
        return;
    }
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, "volumes");
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        char *f = jg_spec_join_field("volumes", key);
        if (key[0] != '/') {
            jg_spec_err(&c->r, k, "volumes", "mount path '%s' must be absolute (start with '/')",
                        jg_spec_show(key, buf, sizeof buf));
        } else {
            const char *s = jg_spec_scalar(&c->r, val, f, "a volume name");
            const char *bad = s ? jg_spec_dns_problem(s, why, sizeof why) : NULL;
            if (bad)
                jg_spec_err(&c->r, val, f, "invalid volume name '%s': %s",
                            jg_spec_show(s, buf2, sizeof buf2), bad);
            else if (s)
                jg_spec_kv_push(&job->volumes, &job->n_volumes, key, s);
        }
        free(f);
    }
}

/* Lexically normalises an absolute path: collapses '//', '.', '..'. */
static char *normalize_path(const char *abs)
{
    size_t len = strlen(abs);
    char *out = jg_xmalloc(len + 2);
    size_t o = 0;
    const char *p = abs;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

static int base_dir(pctx_t *c, const char **out)
{
    if (!c->base_dir) {
        const char *path = c->path ? c->path : "";
        const char *slash = strrchr(path, '/');
        char *dir = slash ? jg_xstrndup(path, slash == path ? 1 : (size_t)(slash - path))
                          : jg_xstrdup(".");
        if (dir[0] == '/') {
            c->base_dir = dir;
        } else if (c->for_another_user) {
            free(dir);          /* the daemon's own directory means nothing to the user */
            errno = EINVAL;
            return -1;
        } else {
            char *cwd = getcwd(NULL, 0);
            if (!cwd) {
                free(dir);
                return -1;
            }
            c->base_dir = jg_xasprintf("%s/%s", cwd, dir);
            free(cwd);
            free(dir);
        }
    }
    *out = c->base_dir;
    return 0;
}

static void parse_workdir(pctx_t *c, yaml_node_t *v, jg_job_spec_t *job)
{
    char buf[80];
    if (jg_spec_is_null(v))
        return;
    const char *s = jg_spec_scalar(&c->r, v, "workdir", "a directory path");
    if (!s)
        return;
    char *joined = NULL;
    if (s[0] == '~' && (s[1] == '/' || s[1] == '\0')) {
        const char *home = c->for_another_user ? c->home : getenv("HOME");
        if (c->for_another_user && (!home || home[0] != '/')) {
            jg_spec_err(&c->r, v, "workdir", "cannot expand '~' in '%s': the submitting user "
                        "has no home directory", jg_spec_show(s, buf, sizeof buf));
            return;
        }
        if (!home || home[0] != '/') {
            jg_spec_err(&c->r, v, "workdir", "cannot expand '~' in '%s': HOME is not set",
                        jg_spec_show(s, buf, sizeof buf));
            return;
        }
        joined = jg_xasprintf("%s/%s", home, s + 1);
    } else if (s[0] == '/') {
        joined = jg_xstrdup(s);
    } else {
        const char *dir;
        if (base_dir(c, &dir) < 0) {
            if (c->for_another_user)
                jg_spec_err(&c->r, v, "workdir", "cannot resolve '%s': the submit named no "
                            "absolute file to resolve it against",
                            jg_spec_show(s, buf, sizeof buf));
            else
                jg_spec_err(&c->r, v, "workdir",
                            "cannot resolve '%s': current directory unknown: %s",
                            jg_spec_show(s, buf, sizeof buf), strerror(errno));
            return;
        }
        joined = jg_xasprintf("%s/%s", dir, s);
    }
    free(job->workdir);
    job->workdir = normalize_path(joined);
    free(joined);
    /* Only as the user themselves (validate, the CLI): the daemon, root
     * perhaps, must neither tell which paths exist nor hang on a dead mount. */
    struct stat st;
    if (!c->for_another_user && (stat(job->workdir, &st) < 0 || !S_ISDIR(st.st_mode)))
        jg_spec_warn(&c->r, v, "workdir", "'%s' is not a directory here (yet)", job->workdir);
}

/* ---- job index --------------------------------------------------------- */

static size_t hash_name(const char *s)
{
    return jg_spec_hash(s, strlen(s));
}

long jg_spec_job_index_find(const pctx_t *c, const char *name)
{
    if (!c->index_cap)
        return -1;
    size_t mask = c->index_cap - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        size_t slot = c->index[i];
        if (!slot)
            return -1;
        if (!strcmp(c->spec->jobs[slot - 1].name, name))
            return (long)(slot - 1);
    }
}

static void index_put(pctx_t *c, size_t job)
{
    if ((c->spec->n_jobs + 1) * 2 > c->index_cap) {
        size_t cap = c->index_cap ? c->index_cap * 2 : 64;
        free(c->index);
        c->index = jg_xcalloc(cap, sizeof *c->index);
        c->index_cap = cap;
        for (size_t j = 0; j < c->spec->n_jobs; j++)
            if (j != job)
                index_put(c, j);
    }
    size_t mask = c->index_cap - 1;
    size_t i = hash_name(c->spec->jobs[job].name) & mask;
    while (c->index[i])
        i = (i + 1) & mask;
    c->index[i] = job + 1;
}

/* ---- documents --------------------------------------------------------- */

void jg_spec_free_job(jg_job_spec_t *j)
{
    free(j->name);
    free(j->accel.name);
    free(j->infra);
    free(j->image_id);
    free(j->recovery.recover_on_exit_codes);
    free(j->recovery.strategy);
    for (size_t i = 0; i < j->n_envs; i++) {
        free(j->envs[i].key);
        free(j->envs[i].value);
    }
    free(j->envs);
    free(j->setup);
    free(j->run);
    free(j->workdir);
    for (size_t i = 0; i < j->n_volumes; i++) {
        free(j->volumes[i].key);
        free(j->volumes[i].value);
    }
    free(j->volumes);
}

void jg_spec_parse_job(pctx_t *c, yaml_node_t *root)
{
    char buf[80];
    jg_job_spec_t job = {0};
    job.num_nodes = 1;
    job.line = jg_spec_node_pos(root).line;
    if (root->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, root, NULL,
                    "a job document must be a mapping (name, resources, run, ...), "
                    "got %s",
                    jg_spec_kind(root));
        return;
    }
    yaml_node_t *name_node = NULL, *recovery_key = NULL, *num_nodes_node = NULL;
    bool name_ok = false;
    JG_SPEC_FOR_PAIRS(root, p) {
        const char *key = jg_spec_key(&c->r, root, p, NULL);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *v = jg_spec_node(&c->r, p->value);
        if (!strcmp(key, "name")) {
            name_node = v;
            if (jg_spec_is_null(v))
                continue;   /* reported below as a missing name */
            const char *s = jg_spec_scalar(&c->r, v, "name", "a job name");
            if (s) {
                job.name = jg_xstrdup(s);
                name_ok = jg_spec_check_dns_name(c, v, "job", s);
            }
        } else if (!strcmp(key, "num_nodes")) {
            long long x;
            const char *s = jg_spec_scalar(&c->r, v, "num_nodes", "an integer >= 1");
            int rc = s ? jg_spec_parse_int(s, 1, INT_MAX, &x) : -3;
            int max = c->r.limits.max_nodes_per_job;
            if (rc == 0 && x > max) {
                jg_spec_err(&c->r, v, "num_nodes", "%lld nodes, over the limit of %d nodes "
                            "per job (spec_limits.max_nodes_per_job)", x, max);
            } else if (rc == 0) {
                job.num_nodes = (int)x;
                num_nodes_node = v;
            } else if (rc == -2 && strtod(s, NULL) >= 1)    /* past INT_MAX */
                jg_spec_err(&c->r, v, "num_nodes", "'%s' nodes, over the limit of %d nodes "
                            "per job (spec_limits.max_nodes_per_job)",
                            jg_spec_show(s, buf, sizeof buf), max);
            else if (rc == -2)
                jg_spec_err(&c->r, v, "num_nodes", "expected an integer >= 1, got '%s'",
                            jg_spec_show(s, buf, sizeof buf));
            else if (rc == -1)
                jg_spec_err(&c->r, v, "num_nodes", "expected an integer >= 1, got '%s'",
                            jg_spec_show(s, buf, sizeof buf));
        } else if (!strcmp(key, "resources")) {
            parse_resources(c, v, &job, &recovery_key);
        } else if (!strcmp(key, "envs")) {
            parse_envs(c, v, &job);
        } else if (!strcmp(key, "setup") || !strcmp(key, "run")) {
            char **dst = key[0] == 's' ? &job.setup : &job.run;
            if (jg_spec_is_null(v))
                continue;
            const char *s = jg_spec_scalar(&c->r, v, key, "a shell command (a string)");
            if (s) {
                free(*dst);
                *dst = jg_xstrdup(s);
            }
        } else if (!strcmp(key, "workdir")) {
            parse_workdir(c, v, &job);
        } else if (!strcmp(key, "volumes")) {
            parse_volumes(c, v, &job);
        } else if (!strcmp(key, "job_recovery")) {
            if (recovery_key)
                jg_spec_err(&c->r, k, "job_recovery",
                            "job_recovery is given twice (also at line %d); "
                            "keep one",
                            jg_spec_node_pos(recovery_key).line);
            else {
                recovery_key = k;
                parse_recovery(c, v, "job_recovery", &job.recovery);
            }
        } else if (!strcmp(key, "file_mounts")) {
            jg_spec_err(&c->r, k, "file_mounts", "not supported (use workdir or volumes)");
        } else if (jg_spec_in_list(key, jg_spec_header_only_keys)) {
            jg_spec_err(&c->r, k, key,
                        "'%s' belongs in the JobGroup header (the first document), not "
                        "in a job",
                        key);
        } else {
            jg_spec_unknown_key(&c->r, k, NULL, key, job_keys);
        }
    }

    /* Counted before the name is checked, so a nameless job still counts. */
    c->group_nodes += (size_t)job.num_nodes;
    size_t group_max = (size_t)c->r.limits.max_nodes_per_group;
    if (c->group_nodes > group_max && !c->group_nodes_reported) {
        c->group_nodes_reported = true;
        jg_spec_err(&c->r, num_nodes_node ? num_nodes_node : root, "num_nodes",
                    "with this job the group has %zu nodes, over the limit of %zu nodes per "
                    "group (spec_limits.max_nodes_per_group); the documents after this one "
                    "are not read", c->group_nodes, group_max);
    }
    if (!job.name) {
        if (!name_node || jg_spec_is_null(name_node))
            jg_spec_err(&c->r, name_node ? name_node : root, "name",
                        "this job has no name (every job needs one: add name: <job-name>, "
                        "a DNS label)");
        jg_spec_free_job(&job);
        return;
    }
    if (name_ok) {
        /* node hostnames are <job>-<rank>: that label must fit in 63 too */
        char rank[16];
        int rl = snprintf(rank, sizeof rank, "%d", job.num_nodes - 1);
        size_t label = strlen(job.name) + 1 + (size_t)rl;
        if (label > 63)
            jg_spec_err(&c->r, name_node, "name",
                        "job name '%s' is too long: node hostname '%s-%s' "
                        "would be %zu characters (a DNS label holds at most 63)",
                        job.name, job.name, rank, label);
    }
    long prev = jg_spec_job_index_find(c, job.name);
    if (prev >= 0) {
        jg_spec_err(&c->r, name_node, "name", "duplicate job name '%s' (first defined at %s:%d)",
                    job.name, c->r.file, c->spec->jobs[prev].line);
        jg_spec_free_job(&job);
        return;
    }
    jg_group_spec_t *s = c->spec;
    if (s->n_jobs == c->jobs_cap) {
        c->jobs_cap = c->jobs_cap ? c->jobs_cap * 2 : 8;
        s->jobs = jg_xrealloc(s->jobs, c->jobs_cap * sizeof *s->jobs);
    }
    s->jobs[s->n_jobs] = job;
    index_put(c, s->n_jobs);
    s->n_jobs++;
}
