/* spec_config.c - the daemon's config.yaml in, a validated jg_config_t out.
 *
 * Why here.  The spec module is the only one that reads YAML, and a config
 * file deserves the same treatment as a JobGroup file: every error found in
 * one pass, each with file:line:col, the key path and the value, and a "did
 * you mean" for unknown keys.  So this file reuses the module's reading kit
 * (spec_yaml.c, spec_yaml.h) rather than a second YAML reader.
 *
 * How it works.  jg_config_defaults() builds the config every key falls back
 * to; the parser walks the one document's mappings and overwrites what the
 * file sets.  Each key is checked on its own: a bad value records a message
 * and leaves the default, so parsing moves on.  Checks that relate two keys
 * run once both are read, whatever their order in the file: per-user limits
 * inherit the fields they leave out from limits.default, and a local
 * backend's max_node may not exceed its capacity.  Messages are put in file
 * order at the end; any error means NULL, never a half-read config.
 *
 * Host lookups (does admin_group exist; is a volume a directory) only warn:
 * the config may be written before the host is set up.  Admin checks resolve
 * the group at call time, so a group created later counts.
 */
#include "jgsched/config.h"
#include "jgsched/netns.h"
#include "jgsched/policy.h"
#include "spec_yaml.h"
#include "jg_config.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STOP_GRACE_S 3600.0
#define DEFAULT_STOP_GRACE_S 5.0

/* A limit the file did not give (internal: resolved to default's at the end). */
enum { LIMIT_NOT_GIVEN = -2 };

static const char *const top_keys[] = {
    "default_policy", "admins", "admin_group", "limits", "stop_grace", "backends", "volumes",
    "spec_limits", "clients", NULL,
};
static const char *const spec_limit_keys[] = {
    "max_bytes", "max_depth", "max_keys_per_mapping", "max_keys", "max_envs", "max_string",
    "max_nodes_per_job", "max_nodes_per_group", NULL,
};
static const char *const clients_keys[] = {"max_connections_per_user", "request_timeout", NULL};
static const char *const limits_keys[] = {"default", "users", NULL};
static const char *const limit_keys[] = {"running_groups", "nodes", "cpus", NULL};
static const char *const backend_keys[] = {"local", "kubernetes", NULL};
static const char *const local_keys[] = {
    "enabled", "capacity", "network", "nat", "nat_network", "cgroups", "oversubscribe", NULL,
};
static const char *const capacity_keys[] = {"cpus", "memory", "accelerators", "max_node", NULL};
static const char *const max_node_keys[] = {"cpus", "memory", "accelerators", NULL};
static const char *const kubernetes_keys[] = {
    "enabled", "kubeconfig", "context", "namespace", "gpu_resource", "gpu_label", "image",
    "agent_image", "hosts_writable", NULL,
};
static const char *const network_modes[] = {"isolated", "host", NULL};
static const char *const cgroups_modes[] = {"auto", "off", NULL};

/* Where the values of a shape came from, for checks between two shapes. */
typedef struct {
    yaml_node_t *cpus, *memory;
} shape_nodes_t;

typedef struct {
    jg_spec_reader_t r;
    jg_config_t *cfg;
} cctx_t;

/* ---- values ------------------------------------------------------------ */

static bool in_keys(const char *w, const char *const *keys)
{
    for (; *keys; keys++)
        if (!strcmp(w, *keys))
            return true;
    return false;
}

/* The mapping v, or NULL: null means "not set" (silently), anything else
 * that is not a mapping is an error naming what was expected. */
static yaml_node_t *want_map(cctx_t *c, yaml_node_t *v, const char *field, const char *what)
{
    if (jg_spec_is_null(v))
        return NULL;
    if (v->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, v, field, "expected a mapping (%s), got %s", what, jg_spec_kind(v));
        return NULL;
    }
    return v;
}

static bool parse_bool(cctx_t *c, yaml_node_t *v, const char *field, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    char buf[80];
    const char *s = jg_spec_scalar(&c->r, v, field, "true or false");
    if (!s)
        return false;
    for (size_t i = 0; yes[i]; i++) {
        if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
            *out = !strcasecmp(s, yes[i]);
            return true;
        }
    }
    jg_spec_err(&c->r, v, field, "expected true or false, got '%s'",
                jg_spec_show(s, buf, sizeof buf));
    return false;
}

/* One of the NULL-terminated words; returns its index or -1 (error recorded). */
static int parse_word(cctx_t *c, yaml_node_t *v, const char *field, const char *const *words,
                      const char *expected)
{
    char buf[80];
    const char *s = jg_spec_scalar(&c->r, v, field, expected);
    if (!s)
        return -1;
    for (int i = 0; words[i]; i++)
        if (!strcmp(s, words[i]))
            return i;
    const char *meant = jg_spec_suggest(s, words, jg_spec_list_len(words));
    if (meant)
        jg_spec_err(&c->r, v, field, "invalid value '%s' (did you mean '%s'? expected %s)",
                    jg_spec_show(s, buf, sizeof buf), meant, expected);
    else
        jg_spec_err(&c->r, v, field, "invalid value '%s' (expected %s)",
                    jg_spec_show(s, buf, sizeof buf), expected);
    return -1;
}

/* Why s cannot be a user or group name (NULL: it can).  Unix names vary by
 * site, so this rejects only what can never be one. */
static const char *account_problem(const char *s)
{
    if (!*s)
        return "it is empty";
    if (strlen(s) > 255)
        return "it is longer than 255 characters";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f)
            return "it contains whitespace or a control character";
        if (*p == ':' || *p == ',' || *p == '/')
            return "it contains ':', ',' or '/'";
    }
    return NULL;
}

static const char *want_account(cctx_t *c, yaml_node_t *v, const char *field, const char *what)
{
    char buf[80], expected[64];
    snprintf(expected, sizeof expected, "a %s", what);
    const char *s = jg_spec_scalar(&c->r, v, field, expected);
    const char *why = s ? account_problem(s) : NULL;
    if (why) {
        jg_spec_err(&c->r, v, field, "invalid %s '%s': %s", what,
                    jg_spec_show(s, buf, sizeof buf), why);
        return NULL;
    }
    return s;
}

/* ---- host lookups ----------------------------------------------------- */

/* 0 and *gid set when group name exists; -1 otherwise. */
static int group_gid(const char *name, gid_t *gid)
{
    struct group gr, *res = NULL;
    size_t size = 1024;
    char *buf = NULL;
    int rc;
    do {
        size *= 2;
        buf = jg_xrealloc(buf, size);
        rc = getgrnam_r(name, &gr, buf, size, &res);
    } while (rc == ERANGE && size < (1u << 20));
    if (rc == 0 && res)
        *gid = gr.gr_gid;
    free(buf);
    return rc == 0 && res ? 0 : -1;
}

static bool user_exists(const char *name)
{
    struct passwd pw, *res = NULL;
    size_t size = 1024;
    char *buf = NULL;
    int rc;
    do {
        size *= 2;
        buf = jg_xrealloc(buf, size);
        rc = getpwnam_r(name, &pw, buf, size, &res);
    } while (rc == ERANGE && size < (1u << 20));
    free(buf);
    return rc == 0 && res;
}

/* ---- top-level keys ---------------------------------------------------- */

static void parse_policy(cctx_t *c, yaml_node_t *v)
{
    static const char *field = "default_policy";
    char buf[80];
    const char *s = jg_spec_scalar(&c->r, v, field, "a policy name or an absolute path");
    if (!s)
        return;
    size_t n = strlen(s);
    if (s[0] != '/' && !jg_policy_valid_name(s, n)) {
        char *bare = n > 4 && !strcmp(s + n - 4, ".lua") ? jg_xstrndup(s, n - 4) : NULL;
        if (bare && jg_policy_valid_name(bare, n - 4))
            jg_spec_err(&c->r, v, field, "invalid policy name '%s' (did you mean '%s'? a "
                        "name has no '.lua'; a file is given by its absolute path)",
                        jg_spec_show(s, buf, sizeof buf), bare);
        else if (strchr(s, '/'))
            jg_spec_err(&c->r, v, field, "policy path '%s' must be absolute (start with '/')",
                        jg_spec_show(s, buf, sizeof buf));
        else
            jg_spec_err(&c->r, v, field, "invalid policy name '%s' (letters, digits, '-' and "
                        "'_', at most 63; or an absolute path to a .lua file)",
                        jg_spec_show(s, buf, sizeof buf));
        free(bare);
        return;
    }
    free(c->cfg->default_policy);
    c->cfg->default_policy = jg_xstrdup(s);
    c->cfg->has_default_policy = true;
}

static void parse_admins(cctx_t *c, yaml_node_t *v)
{
    static const char *field = "admins";
    jg_config_t *cfg = c->cfg;
    yaml_node_t *single[1] = {v};
    yaml_node_t **items = single;
    size_t n = 1;
    bool is_seq = v->type == YAML_SEQUENCE_NODE;
    if (is_seq) {
        n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        items = jg_xcalloc(n ? n : 1, sizeof *items);
        for (size_t i = 0; i < n; i++)
            items[i] = jg_spec_node(&c->r, v->data.sequence.items.start[i]);
    } else if (v->type != YAML_SCALAR_NODE) {
        jg_spec_err(&c->r, v, field, "expected a list of user names, got %s", jg_spec_kind(v));
        return;
    }
    cfg->admins = jg_xcalloc(n ? n : 1, sizeof *cfg->admins);
    for (size_t i = 0; i < n; i++) {
        char *fi = is_seq ? jg_xasprintf("%s[%zu]", field, i) : jg_xstrdup(field);
        const char *name = want_account(c, items[i], fi, "user name");
        bool dup = false;
        for (size_t j = 0; name && j < cfg->n_admins && !dup; j++)
            dup = !strcmp(cfg->admins[j], name);
        char buf[80];
        if (dup)
            jg_spec_err(&c->r, items[i], fi, "user '%s' is listed twice",
                        jg_spec_show(name, buf, sizeof buf));
        else if (name)
            cfg->admins[cfg->n_admins++] = jg_xstrdup(name);
        if (name && !dup && !user_exists(name))
            jg_spec_warn(&c->r, items[i], fi, "no user '%s' on this host (yet)",
                         jg_spec_show(name, buf, sizeof buf));
        free(fi);
    }
    if (is_seq)
        free(items);
}

/* running_groups, nodes, cpus: each an integer >= 0 or `unlimited`. */
static void parse_limit_map(cctx_t *c, yaml_node_t *v, const char *field,
                            jg_user_limits_t *out)
{
    char buf[80];
    if (!want_map(c, v, field, "running_groups, nodes, cpus"))
        return;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, field);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        int *dst = !strcmp(key, "running_groups") ? &out->running_groups
                   : !strcmp(key, "nodes")        ? &out->nodes
                   : !strcmp(key, "cpus")         ? &out->cpus
                                                  : NULL;
        if (!dst) {
            jg_spec_unknown_key(&c->r, k, field, key, limit_keys);
            continue;
        }
        char *f = jg_spec_join_field(field, key);
        const char *s = jg_spec_scalar(&c->r, val, f, "an integer >= 0 or unlimited");
        long long x;
        if (s && !strcmp(s, "unlimited"))
            *dst = JG_CONFIG_UNLIMITED;
        else if (s && jg_spec_parse_int(s, 0, INT_MAX, &x) == 0)
            *dst = (int)x;
        else if (s)
            jg_spec_err(&c->r, val, f, "expected an integer >= 0 or unlimited, got '%s'",
                        jg_spec_show(s, buf, sizeof buf));
        free(f);
    }
}

static void parse_limits(cctx_t *c, yaml_node_t *v)
{
    jg_config_t *cfg = c->cfg;
    if (!want_map(c, v, "limits", "default, users"))
        return;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, "limits");
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        if (!strcmp(key, "default")) {
            parse_limit_map(c, val, "limits.default", &cfg->default_limits);
            continue;
        }
        if (strcmp(key, "users")) {
            jg_spec_unknown_key(&c->r, k, "limits", key, limits_keys);
            continue;
        }
        if (!want_map(c, val, "limits.users", "user name: {running_groups, nodes, cpus}"))
            continue;
        size_t n = (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
        cfg->user_limits = jg_xcalloc(n ? n : 1, sizeof *cfg->user_limits);
        JG_SPEC_FOR_PAIRS(val, q) {
            const char *user = jg_spec_key(&c->r, val, q, "limits.users");
            if (!user)
                continue;
            yaml_node_t *uk = jg_spec_node(&c->r, q->key);
            if (!want_account(c, uk, "limits.users", "user name"))
                continue;
            char *f = jg_spec_join_field("limits.users", user);
            jg_config_user_limits_t *u = &cfg->user_limits[cfg->n_user_limits++];
            u->user = jg_xstrdup(user);
            u->limits = (jg_user_limits_t){LIMIT_NOT_GIVEN, LIMIT_NOT_GIVEN, LIMIT_NOT_GIVEN};
            parse_limit_map(c, jg_spec_node(&c->r, q->value), f, &u->limits);
            free(f);
        }
    }
}

static void parse_stop_grace(cctx_t *c, yaml_node_t *v)
{
    static const char *field = "stop_grace";
    char buf[80];
    double secs;
    const char *s = jg_spec_scalar(&c->r, v, field, "a duration like 5s");
    if (!s)
        return;
    if (!jg_spec_parse_duration(s, &secs))
        jg_spec_err(&c->r, v, field, "invalid duration '%s' (expected e.g. 500ms, 5s, 1m)",
                    jg_spec_show(s, buf, sizeof buf));
    else if (secs > MAX_STOP_GRACE_S)
        jg_spec_err(&c->r, v, field, "'%s' is too long (at most 1h)",
                    jg_spec_show(s, buf, sizeof buf));
    else {
        c->cfg->stop_grace_s = secs;
        c->cfg->has_stop_grace = true;
    }
}

/* ---- spec_limits --------------------------------------------------------- */

/* `524288`, `512KiB`, `512K`, `1MiB`: a byte count (units binary). */
static bool parse_byte_count(const char *s, long long *out)
{
    static const struct {
        const char *unit;
        long long mult;
    } units[] = {
        {"", 1}, {"b", 1}, {"k", 1024}, {"kb", 1024}, {"kib", 1024},
        {"m", 1024 * 1024}, {"mb", 1024 * 1024}, {"mib", 1024 * 1024},
    };
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 12)
        return false;
    char num[16];
    memcpy(num, s, digits);
    num[digits] = '\0';
    long long v = strtoll(num, NULL, 10);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (!strcasecmp(s + digits, units[i].unit)) {
            *out = v * units[i].mult;
            return true;
        }
    }
    return false;
}

/* Each bound has a range: the low end keeps every real JobGroup parseable,
 * the high end keeps the parse bounded (max_bytes: one protocol message). */
static void parse_spec_limits(cctx_t *c, yaml_node_t *v)
{
    static const struct {
        const char *key;
        long long lo, hi;
        bool bytes;
    } ranges[] = {
        {"max_bytes", 1024, JG_SPEC_MAX_BYTES_CEILING, true},
        {"max_depth", 8, 256, false},
        {"max_keys_per_mapping", 16, 1 << 20, false},
        {"max_keys", 64, 1 << 22, false},
        {"max_envs", 0, 1 << 20, false},
        {"max_string", 1024, JG_SPEC_MAX_BYTES_CEILING, true},
        {"max_nodes_per_job", 1, 1 << 20, false},
        {"max_nodes_per_group", 1, 1 << 20, false},
    };
    jg_spec_limits_t *l = &c->cfg->spec_limits;
    yaml_node_t *job_node = NULL, *group_node = NULL;
    char buf[80];
    if (!want_map(c, v, "spec_limits", "max_bytes, max_depth, max_keys_per_mapping, ..."))
        return;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, "spec_limits");
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        size_t i = 0;
        while (i < sizeof ranges / sizeof ranges[0] && strcmp(ranges[i].key, key))
            i++;
        if (i == sizeof ranges / sizeof ranges[0]) {
            jg_spec_unknown_key(&c->r, k, "spec_limits", key, spec_limit_keys);
            continue;
        }
        char *f = jg_spec_join_field("spec_limits", key);
        const char *s = jg_spec_scalar(&c->r, val, f, ranges[i].bytes ? "a size like 512KiB"
                                                                       : "an integer");
        long long x = 0;
        bool ok = s && (ranges[i].bytes ? parse_byte_count(s, &x)
                                        : jg_spec_parse_int(s, LLONG_MIN, LLONG_MAX, &x) == 0);
        if (s && !ok) {
            jg_spec_err(&c->r, val, f, "expected %s, got '%s'",
                        ranges[i].bytes ? "a size (bytes, or with KiB or MiB: 512KiB)"
                                        : "an integer", jg_spec_show(s, buf, sizeof buf));
        } else if (s && (x < ranges[i].lo || x > ranges[i].hi)) {
            jg_spec_err(&c->r, val, f, "%lld is out of range (%lld..%lld)", x, ranges[i].lo,
                        ranges[i].hi);
        } else if (s) {
            c->cfg->has_spec_limits = true;
            switch (i) {
            case 0: l->max_bytes = (size_t)x; break;
            case 1: l->max_depth = (int)x; break;
            case 2: l->max_keys_per_mapping = (int)x; break;
            case 3: l->max_keys = (int)x; break;
            case 4: l->max_envs = (int)x; break;
            case 5: l->max_string = (size_t)x; break;
            case 6: l->max_nodes_per_job = (int)x; job_node = val; break;
            default: l->max_nodes_per_group = (int)x; group_node = val; break;
            }
        }
        free(f);
    }
    if ((job_node || group_node) && l->max_nodes_per_job > l->max_nodes_per_group)
        jg_spec_err(&c->r, job_node ? job_node : group_node, "spec_limits.max_nodes_per_job",
                    "%d is more than max_nodes_per_group (%d): no job could have that many",
                    l->max_nodes_per_job, l->max_nodes_per_group);
}

/* ---- clients: connection limits ----------------------------------------- */

#define MAX_REQUEST_TIMEOUT_S 3600.0

static void parse_clients(cctx_t *c, yaml_node_t *v)
{
    char buf[80];
    jg_config_clients_t *cl = &c->cfg->clients;
    if (!want_map(c, v, "clients", "max_connections_per_user, request_timeout"))
        return;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, "clients");
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        if (!strcmp(key, "max_connections_per_user")) {
            const char *f = "clients.max_connections_per_user";
            const char *s = jg_spec_scalar(&c->r, val, f, "an integer >= 1 or unlimited");
            long long x;
            if (s && !strcmp(s, "unlimited")) {
                cl->max_connections_per_user = JG_CONFIG_UNLIMITED;
                cl->has_max_connections = true;
            } else if (s && jg_spec_parse_int(s, 1, INT_MAX, &x) == 0) {
                cl->max_connections_per_user = (int)x;
                cl->has_max_connections = true;
            } else if (s) {
                jg_spec_err(&c->r, val, f, "expected an integer >= 1 or unlimited, got '%s'",
                            jg_spec_show(s, buf, sizeof buf));
            }
        } else if (!strcmp(key, "request_timeout")) {
            const char *f = "clients.request_timeout";
            const char *s = jg_spec_scalar(&c->r, val, f, "a duration like 10s");
            double secs;
            if (!s)
                continue;
            if (!jg_spec_parse_duration(s, &secs) || secs <= 0)
                jg_spec_err(&c->r, val, f, "invalid duration '%s' (expected e.g. 500ms, 10s, 1m)",
                            jg_spec_show(s, buf, sizeof buf));
            else if (secs > MAX_REQUEST_TIMEOUT_S)
                jg_spec_err(&c->r, val, f, "'%s' is too long (at most 1h)",
                            jg_spec_show(s, buf, sizeof buf));
            else {
                cl->request_timeout_s = secs;
                cl->has_request_timeout = true;
            }
        } else {
            jg_spec_unknown_key(&c->r, k, "clients", key, clients_keys);
        }
    }
}

/* ---- backends ---------------------------------------------------------- */

/* `T4`, `T4:2`: one accelerator as the job syntax writes it.  Returns false
 * (error recorded) when malformed. */
static bool parse_accel_text(cctx_t *c, yaml_node_t *v, const char *field, const char *text,
                             const char *count, yaml_node_t *count_node, jg_accel_t *out)
{
    char buf[80];
    long long x = 1;
    if (!jg_spec_accel_name_ok(text)) {
        jg_spec_err(&c->r, v, field, "invalid accelerator name '%s' (expected e.g. T4, A100)",
                    jg_spec_show(text, buf, sizeof buf));
        return false;
    }
    if (count) {
        int rc = jg_spec_parse_int(count, LLONG_MIN, LLONG_MAX, &x);
        if (rc != 0 || x < 1 || x > INT_MAX) {
            jg_spec_err(&c->r, count_node, field, "invalid accelerator count '%s' (expected "
                        "a whole number >= 1, e.g. %s: 2)", jg_spec_show(count, buf, sizeof buf),
                        text);
            return false;
        }
    }
    out->name = jg_xstrdup(text);
    out->count = (int)x;
    return true;
}

static void push_accel(jg_config_shape_t *sh, jg_accel_t a)
{
    sh->accels = jg_xrealloc(sh->accels, (sh->n_accels + 1) * sizeof *sh->accels);
    sh->accels[sh->n_accels++] = a;
}

/* {T4: 2, A100: 8}, or one as `T4:2`; `{}` declares none. */
static void parse_accels(cctx_t *c, yaml_node_t *v, const char *field, jg_config_shape_t *sh)
{
    jg_accel_t a;
    if (jg_spec_is_null(v))
        return;
    sh->has_accels = true;
    if (v->type == YAML_SCALAR_NODE) {
        const char *s = jg_spec_scalar(&c->r, v, field, "accelerators like {T4: 2}");
        if (!s)
            return;
        const char *colon = strchr(s, ':');
        char *name = colon ? jg_xstrndup(s, (size_t)(colon - s)) : jg_xstrdup(s);
        if (parse_accel_text(c, v, field, name, colon ? colon + 1 : NULL, v, &a))
            push_accel(sh, a);
        free(name);
        return;
    }
    if (v->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, v, field, "expected a mapping of name: count, e.g. {T4: 2}, got %s",
                    jg_spec_kind(v));
        return;
    }
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *name = jg_spec_key(&c->r, v, p, field);
        if (!name)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        char *f = jg_spec_join_field(field, name);
        const char *count = jg_spec_scalar(&c->r, val, f, "a count >= 1");
        if (count && parse_accel_text(c, k, f, name, count, val, &a))
            push_accel(sh, a);
        free(f);
    }
}

/* cpus, memory, accelerators (and max_node, for a capacity: its node is
 * returned in *max_node for the caller to parse and compare). */
static void parse_shape(cctx_t *c, yaml_node_t *v, const char *field, jg_config_shape_t *sh,
                        shape_nodes_t *nodes, yaml_node_t **max_node)
{
    char buf[80];
    const char *const *keys = max_node ? capacity_keys : max_node_keys;
    if (!want_map(c, v, field, max_node ? "cpus, memory, accelerators, max_node"
                                        : "cpus, memory, accelerators"))
        return;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, field);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        char *f = jg_spec_join_field(field, key);
        jg_amount_t a = {0};
        if (!strcmp(key, "cpus") && !jg_spec_is_null(val)) {
            const char *s = jg_spec_scalar(&c->r, val, f, "a number of cpus like 64");
            if (s && jg_spec_parse_cpus(s, &a) && !a.at_least) {
                sh->has_cpus = true;
                sh->cpus = a.value;
                nodes->cpus = val;
            } else if (s) {
                jg_spec_err(&c->r, val, f, "invalid value '%s' (expected a positive number "
                            "of cpus, e.g. 64 or 0.5; a capacity takes no '+')",
                            jg_spec_show(s, buf, sizeof buf));
            }
        } else if (!strcmp(key, "memory") && !jg_spec_is_null(val)) {
            const char *s = jg_spec_scalar(&c->r, val, f, "a size like 256GB");
            if (s && jg_spec_parse_memory(s, &a) && !a.at_least) {
                sh->has_memory = true;
                sh->memory_gb = a.value;
                nodes->memory = val;
            } else if (s) {
                jg_spec_err(&c->r, val, f, "invalid value '%s' (expected a positive size, "
                            "e.g. 256GB, 512MB, 1TB or 64 for GiB; a capacity takes no '+')",
                            jg_spec_show(s, buf, sizeof buf));
            }
        } else if (!strcmp(key, "accelerators") && !max_node) {
            /* Nothing limits one node's accelerators below the capacity's yet
             * (jg_capacity_t has no such field): refused rather than ignored. */
            jg_spec_err(&c->r, k, f, "a node's accelerators cannot be limited yet (a node "
                        "may have up to what the capacity lists); leave this out");
        } else if (!strcmp(key, "accelerators")) {
            parse_accels(c, val, f, sh);
        } else if (!strcmp(key, "max_node") && max_node) {
            *max_node = val;
        } else if (!in_keys(key, keys)) {
            jg_spec_unknown_key(&c->r, k, field, key, keys);
        }
        free(f);
    }
}

/* A max_node larger than the capacity could never be offered. */
static void check_max_node(cctx_t *c, const jg_config_shape_t *cap, const jg_config_shape_t *max,
                           const shape_nodes_t *mn)
{
    static const char *field = "backends.local.capacity.max_node";
    if (cap->has_cpus && max->has_cpus && max->cpus > cap->cpus)
        jg_spec_err(&c->r, mn->cpus, field, "cpus %g is more than the capacity's (%g)",
                    max->cpus, cap->cpus);
    if (cap->has_memory && max->has_memory && max->memory_gb > cap->memory_gb)
        jg_spec_err(&c->r, mn->memory, field, "memory %g GiB is more than the capacity's "
                    "(%g GiB)", max->memory_gb, cap->memory_gb);
}

/* oversubscribe: true (Slurm's OverSubscribe=FORCE count, 4), false (1), or
 * a factor from 1 to 64: how many CPUs admission may hand out per CPU. */
#define OVERSUBSCRIBE_TRUE 4.0
#define OVERSUBSCRIBE_MAX 64.0
static void parse_oversubscribe(cctx_t *c, yaml_node_t *v, const char *field,
                                jg_config_local_t *l)
{
    char buf[80];
    const char *s = jg_spec_scalar(&c->r, v, field, "true, false or a factor such as 2");
    if (!s)
        return;
    char *end;
    errno = 0;
    double factor = strtod(s, &end);
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
        factor = OVERSUBSCRIBE_TRUE;
    else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
        factor = 1;
    else if (end == s || *end || errno || !(factor >= 1 && factor <= OVERSUBSCRIBE_MAX)) {
        jg_spec_err(&c->r, v, field, "expected true, false or a factor from 1 to %g (CPUs "
                    "handed out per CPU), got '%s'", OVERSUBSCRIBE_MAX,
                    jg_spec_show(s, buf, sizeof buf));
        return;
    }
    l->oversubscribe = factor;
    l->has_oversubscribe = true;
}

static void parse_local(cctx_t *c, yaml_node_t *v)
{
    static const char *field = "backends.local";
    jg_config_local_t *l = &c->cfg->local;
    if (!want_map(c, v, field,
                  "enabled, capacity, network, nat, nat_network, cgroups, oversubscribe"))
        return;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, field);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        char *f = jg_spec_join_field(field, key);
        int i;
        if (!strcmp(key, "enabled")) {
            l->has_enabled = parse_bool(c, val, f, &l->enabled) || l->has_enabled;
            if (!l->enabled)
                jg_spec_err(&c->r, val, f, "the local backend is the only one built and "
                            "cannot be disabled yet");
        } else if (!strcmp(key, "capacity")) {
            shape_nodes_t cn = {0}, mn = {0};
            yaml_node_t *max_node = NULL;
            parse_shape(c, val, f, &l->capacity, &cn, &max_node);
            if (max_node) {
                char *mf = jg_spec_join_field(f, "max_node");
                parse_shape(c, max_node, mf, &l->max_node, &mn, NULL);
                check_max_node(c, &l->capacity, &l->max_node, &mn);
                free(mf);
            }
        } else if (!strcmp(key, "network")) {
            i = parse_word(c, val, f, network_modes, "isolated or host");
            if (i >= 0) {
                l->network = i ? JG_CONFIG_NETWORK_HOST : JG_CONFIG_NETWORK_ISOLATED;
                l->has_network = true;
            }
        } else if (!strcmp(key, "nat")) {
            l->has_nat = parse_bool(c, val, f, &l->nat) || l->has_nat;
        } else if (!strcmp(key, "nat_network")) {
            const char *text = jg_spec_scalar(&c->r, val, f, "an IPv4 network such as "
                                              JG_NETNS_UPLINK_DEFAULT);
            jg_netns_uplink_t up;
            char why[200];
            if (text && jg_netns_uplink_parse(text, &up, why, sizeof why) < 0) {
                jg_spec_err(&c->r, val, f, "%s", why);
            } else if (text) {
                free(l->nat_network);
                l->nat_network = jg_xstrdup(text);
                l->has_nat_network = true;
            }
        } else if (!strcmp(key, "oversubscribe")) {
            parse_oversubscribe(c, val, f, l);
        } else if (!strcmp(key, "cgroups")) {
            i = parse_word(c, val, f, cgroups_modes, "auto or off");
            if (i >= 0) {
                l->cgroups = i ? JG_CONFIG_CGROUPS_OFF : JG_CONFIG_CGROUPS_AUTO;
                l->has_cgroups = true;
            }
        } else {
            jg_spec_unknown_key(&c->r, k, field, key, local_keys);
        }
        free(f);
    }
}

/* Why s is not a Kubernetes extended resource name (<domain>/<name>, as
 * nvidia.com/gpu), or NULL. */
/* A Kubernetes qualified name: [<DNS subdomain>/]<name>, the form of resource
 * names and label keys.  NULL when valid, else why not. */
static const char *qualified_name_problem(const char *s, bool domain_required)
{
    const char *slash = strchr(s, '/');
    if (slash && strchr(slash + 1, '/'))
        return "expected at most one '/', between a domain and a name";
    if (!slash && domain_required)
        return "expected <domain>/<name>, e.g. nvidia.com/gpu or amd.com/gpu";
    size_t dl = slash ? (size_t)(slash - s) : 0;
    if (slash && (dl == 0 || dl > 253))
        return "the domain before '/' must be 1 to 253 characters";
    for (size_t i = 0; i < dl;) {              /* DNS labels joined by '.' */
        size_t l = 0;
        while (i + l < dl && s[i + l] != '.')
            l++;
        bool ok = l > 0 && l <= 63 && s[i] != '-' && s[i + l - 1] != '-';
        for (size_t j = i; ok && j < i + l; j++)
            ok = (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= '0' && s[j] <= '9') || s[j] == '-';
        if (!ok || (i + l < dl && i + l + 1 == dl))
            return "the domain before '/' must be lowercase DNS labels joined by '.'";
        i += l + 1;
    }
    const char *n = slash ? slash + 1 : s;
    size_t nl = strlen(n);
    if (nl == 0 || nl > 63)
        return slash ? "the name after '/' must be 1 to 63 characters"
                     : "the name must be 1 to 63 characters";
    for (size_t i = 0; i < nl; i++) {
        char ch = n[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9');
        if (!alnum && ((i == 0 || i == nl - 1) || (ch != '-' && ch != '_' && ch != '.')))
            return slash ? "the name after '/' must be letters, digits, '-', '_' or '.', "
                           "starting and ending with a letter or digit"
                         : "the name must be letters, digits, '-', '_' or '.', starting and "
                           "ending with a letter or digit";
    }
    return NULL;
}

static const char *resource_name_problem(const char *s)
{
    const char *bad = qualified_name_problem(s, true);
    if (bad)
        return bad;
    size_t dl = (size_t)(strchr(s, '/') - s);
    if ((dl == 13 && !strncmp(s, "kubernetes.io", 13)) ||
        (dl > 14 && !strncmp(s + dl - 14, ".kubernetes.io", 14)))
        return "the domain may not be kubernetes.io (reserved for Kubernetes' own resources)";
    return NULL;
}

static const char *label_key_problem(const char *s)
{
    return qualified_name_problem(s, false);
}

/* A string value checked by problem(); stored into *dst. */
static void parse_checked(cctx_t *c, yaml_node_t *val, const char *f, const char *expected,
                          const char *what, const char *(*problem)(const char *), char **dst,
                          bool *has)
{
    char buf[80];
    const char *s = jg_spec_scalar(&c->r, val, f, expected);
    const char *bad = s ? problem(s) : NULL;
    if (bad) {
        jg_spec_err(&c->r, val, f, "invalid %s '%s': %s", what,
                    jg_spec_show(s, buf, sizeof buf), bad);
    } else if (s) {
        free(*dst);
        *dst = jg_xstrdup(s);
        *has = true;
    }
}

static void parse_kubernetes(cctx_t *c, yaml_node_t *v)
{
    static const char *field = "backends.kubernetes";
    jg_config_kubernetes_t *kc = &c->cfg->kubernetes;
    char buf[80], why[160];
    /* Writing the section enables it, even with nothing under it. */
    kc->enabled = true;
    kc->has_enabled = true;
    if (!want_map(c, v, field, "enabled, kubeconfig, context, namespace, gpu_resource, "
                  "gpu_label, image, agent_image, hosts_writable"))
        return;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, field);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        char *f = jg_spec_join_field(field, key);
        if (!strcmp(key, "enabled")) {
            parse_bool(c, val, f, &kc->enabled);
        } else if (!strcmp(key, "kubeconfig") && !jg_spec_is_null(val)) {
            const char *s = jg_spec_scalar(&c->r, val, f, "the path of a kubeconfig file");
            if (s && s[0] != '/')
                jg_spec_err(&c->r, val, f, "'%s' is not an absolute path (the daemon's "
                            "working directory is /; leave it out for $KUBECONFIG or "
                            "~/.kube/config)", jg_spec_show(s, buf, sizeof buf));
            else if (s) {
                free(kc->kubeconfig);
                kc->kubeconfig = jg_xstrdup(s);
            }
        } else if (!strcmp(key, "context") && !jg_spec_is_null(val)) {
            const char *s = jg_spec_scalar(&c->r, val, f, "a kubeconfig context name");
            bool ok = s != NULL;
            for (const unsigned char *q = (const unsigned char *)s; ok && *q; q++)
                ok = *q > 0x20 && *q != 0x7f;
            if (s && !ok)
                jg_spec_err(&c->r, val, f, "invalid context '%s': it contains whitespace or "
                            "a control character", jg_spec_show(s, buf, sizeof buf));
            else if (s) {
                free(kc->context);
                kc->context = jg_xstrdup(s);
            }
        } else if (!strcmp(key, "namespace") && !jg_spec_is_null(val)) {
            const char *s = jg_spec_scalar(&c->r, val, f, "a namespace name");
            const char *bad = s ? jg_spec_dns_problem(s, why, sizeof why) : NULL;
            if (bad)
                jg_spec_err(&c->r, val, f, "invalid namespace '%s': %s",
                            jg_spec_show(s, buf, sizeof buf), bad);
            else if (s) {
                free(kc->namespace);
                kc->namespace = jg_xstrdup(s);
            }
        } else if (!strcmp(key, "gpu_resource") && !jg_spec_is_null(val)) {
            parse_checked(c, val, f, "a resource name like nvidia.com/gpu", "resource name",
                          resource_name_problem, &kc->gpu_resource, &kc->has_gpu_resource);
        } else if (!strcmp(key, "gpu_label") && !jg_spec_is_null(val)) {
            bool has = false;
            parse_checked(c, val, f, "a node label key like skypilot.co/accelerator",
                          "label key", label_key_problem, &kc->gpu_label, &has);
        } else if (!strcmp(key, "hosts_writable")) {
            kc->has_hosts_writable = parse_bool(c, val, f, &kc->hosts_writable) ||
                                     kc->has_hosts_writable;
        } else if (!strcmp(key, "image") && !jg_spec_is_null(val)) {
            parse_checked(c, val, f, "a container image like ubuntu:22.04", "image",
                          jg_spec_image_problem, &kc->image, &kc->has_image);
        } else if (!strcmp(key, "agent_image") && !jg_spec_is_null(val)) {
            parse_checked(c, val, f, "a container image like jgsched/agent:" JG_VERSION,
                          "image", jg_spec_image_problem, &kc->agent_image, &kc->has_agent_image);
        } else if (!in_keys(key, kubernetes_keys)) {
            jg_spec_unknown_key(&c->r, k, field, key, kubernetes_keys);
        }
        free(f);
    }
}

static void parse_backends(cctx_t *c, yaml_node_t *v)
{
    if (!want_map(c, v, "backends", "local, kubernetes"))
        return;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&c->r, v, p, "backends");
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        if (!strcmp(key, "local"))
            parse_local(c, val);
        else if (!strcmp(key, "kubernetes"))
            parse_kubernetes(c, val);
        else if (!strcasecmp(key, "k8s"))
            jg_spec_err(&c->r, k, "backends", "unknown backend 'k8s' (did you mean "
                        "'kubernetes'?)");
        else
            jg_spec_unknown_key(&c->r, k, "backends", key, backend_keys);
    }
}

static void parse_volumes(cctx_t *c, yaml_node_t *v)
{
    jg_config_t *cfg = c->cfg;
    char buf[80], buf2[80], why[160];
    if (!want_map(c, v, "volumes", "volume name: /host/directory"))
        return;
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    cfg->volumes = jg_xcalloc(n ? n : 1, sizeof *cfg->volumes);
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *name = jg_spec_key(&c->r, v, p, "volumes");
        if (!name)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *val = jg_spec_node(&c->r, p->value);
        char *f = jg_spec_join_field("volumes", name);
        const char *bad = jg_spec_dns_problem(name, why, sizeof why);
        const char *path = jg_spec_scalar(&c->r, val, f, "an absolute directory path");
        if (bad)
            jg_spec_err(&c->r, k, "volumes", "invalid volume name '%s': %s",
                        jg_spec_show(name, buf, sizeof buf), bad);
        if (path && path[0] != '/')
            jg_spec_err(&c->r, val, f, "volume path '%s' must be absolute (start with '/')",
                        jg_spec_show(path, buf2, sizeof buf2));
        if (!bad && path && path[0] == '/') {
            jg_config_volume_t *vol = &cfg->volumes[cfg->n_volumes++];
            vol->name = jg_xstrdup(name);
            vol->path = jg_xstrdup(path);
            struct stat st;
            if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
                jg_spec_warn(&c->r, val, f, "'%s' is not a directory here (yet)",
                             jg_spec_show(path, buf2, sizeof buf2));
        }
        free(f);
    }
}

/* ---- the document ------------------------------------------------------ */

static void parse_root(cctx_t *c, yaml_node_t *root)
{
    yaml_node_t *group_node = NULL;
    if (root->type != YAML_MAPPING_NODE) {
        jg_spec_err(&c->r, root, NULL, "the configuration must be a mapping of settings "
                    "(default_policy, admins, limits, backends, ...), got %s",
                    jg_spec_kind(root));
        return;
    }
    JG_SPEC_FOR_PAIRS(root, p) {
        const char *key = jg_spec_key(&c->r, root, p, NULL);
        if (!key)
            continue;
        yaml_node_t *k = jg_spec_node(&c->r, p->key), *v = jg_spec_node(&c->r, p->value);
        if (!in_keys(key, top_keys)) {
            jg_spec_unknown_key(&c->r, k, NULL, key, top_keys);
        } else if (jg_spec_is_null(v)) {
            continue;       /* `key:` with nothing: the default */
        } else if (!strcmp(key, "default_policy")) {
            parse_policy(c, v);
        } else if (!strcmp(key, "admins")) {
            parse_admins(c, v);
        } else if (!strcmp(key, "admin_group")) {
            const char *s = want_account(c, v, "admin_group", "group name");
            if (s) {
                free(c->cfg->admin_group);
                c->cfg->admin_group = jg_xstrdup(s);
                group_node = v;
            }
        } else if (!strcmp(key, "limits")) {
            parse_limits(c, v);
        } else if (!strcmp(key, "stop_grace")) {
            parse_stop_grace(c, v);
        } else if (!strcmp(key, "backends")) {
            parse_backends(c, v);
        } else if (!strcmp(key, "spec_limits")) {
            parse_spec_limits(c, v);
        } else if (!strcmp(key, "clients")) {
            parse_clients(c, v);
        } else {
            parse_volumes(c, v);
        }
    }

    /* A group the host lacks only warns: it may be created later. */
    char buf[80];
    gid_t gid;
    if (group_node && group_gid(c->cfg->admin_group, &gid) < 0)
        jg_spec_warn(&c->r, group_node, "admin_group", "no group '%s' on this host (yet): "
                     "nobody is an admin through it",
                     jg_spec_show(c->cfg->admin_group, buf, sizeof buf));
}

/* Per-user limits take what they leave out from limits.default. */
static void inherit_limits(jg_config_t *cfg)
{
    const jg_user_limits_t *d = &cfg->default_limits;
    for (size_t i = 0; i < cfg->n_user_limits; i++) {
        jg_user_limits_t *u = &cfg->user_limits[i].limits;
        if (u->running_groups == LIMIT_NOT_GIVEN)
            u->running_groups = d->running_groups;
        if (u->nodes == LIMIT_NOT_GIVEN)
            u->nodes = d->nodes;
        if (u->cpus == LIMIT_NOT_GIVEN)
            u->cpus = d->cpus;
    }
}

/* ---- public ------------------------------------------------------------ */

jg_config_t *jg_config_defaults(void)
{
    jg_config_t *cfg = jg_xcalloc(1, sizeof *cfg);
    cfg->default_policy = jg_xstrdup("default");
    cfg->default_limits = (jg_user_limits_t){JG_CONFIG_UNLIMITED, JG_CONFIG_UNLIMITED,
                                             JG_CONFIG_UNLIMITED};
    cfg->stop_grace_s = DEFAULT_STOP_GRACE_S;
    cfg->local.enabled = true;
    cfg->local.network = JG_CONFIG_NETWORK_ISOLATED;
    cfg->local.nat = true;
    cfg->local.oversubscribe = 1;
    cfg->local.nat_network = jg_xstrdup(JG_NETNS_UPLINK_DEFAULT);
    cfg->local.cgroups = JG_CONFIG_CGROUPS_AUTO;
    cfg->kubernetes.enabled = false;
    cfg->kubernetes.gpu_resource = jg_xstrdup(JG_CONFIG_DEFAULT_GPU_RESOURCE);
    cfg->kubernetes.hosts_writable = true;
    cfg->kubernetes.image = jg_xstrdup(JG_CONFIG_DEFAULT_IMAGE);
    cfg->kubernetes.agent_image = jg_xstrdup("jgsched/agent:" JG_VERSION);
    cfg->spec_limits = jg_spec_limits_default();

    cfg->clients.max_connections_per_user = JG_CONFIG_DEFAULT_MAX_CONNECTIONS;
    cfg->clients.request_timeout_s = JG_CONFIG_DEFAULT_REQUEST_TIMEOUT_S;
    return cfg;
}

jg_config_t *jg_config_parse(const char *text, size_t len, const char *filename,
                             jg_spec_errors_t *errs)
{
    jg_spec_errors_t scratch = {0};
    if (!errs)
        errs = &scratch;
    cctx_t c = {.cfg = jg_config_defaults()};
    c.cfg->path = jg_xstrdup(filename);
    c.cfg->loaded = true;
    jg_spec_reader_init(&c.r, filename, errs);
    /* The file is the admin's, not a user's: only nesting is bounded (a
     * site may list thousands of users under limits.users). */
    c.r.limits.max_bytes = SIZE_MAX;
    c.r.limits.max_keys_per_mapping = INT_MAX;
    c.r.limits.max_keys = INT_MAX;
    c.r.limits.max_string = SIZE_MAX;

    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool parser_ok = yaml_parser_initialize(&parser), live = false;
    if (!parser_ok) {
        jg_spec_err_at(&c.r, (jg_spec_pos_t){0, 0}, NULL, "cannot initialise the YAML parser");
        goto done;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (jg_spec_next_doc(&c.r, &parser, &doc, text, len) != 1)
        goto done;      /* empty: all defaults; a syntax error is recorded */
    live = true;
    c.r.doc = &doc;
    parse_root(&c, yaml_document_get_root_node(&doc));
    inherit_limits(c.cfg);
    if (jg_spec_next_doc(&c.r, &parser, &extra, text, len) == 1) {
        jg_spec_err(&c.r, yaml_document_get_root_node(&extra), NULL, "a configuration file "
                    "holds one YAML document; this is a second one (remove the '---')");
        yaml_document_delete(&extra);
    }

done:
    if (live)
        yaml_document_delete(&doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    bool failed = jg_spec_reader_done(&c.r);
    if (errs == &scratch)
        jg_spec_errors_free(&scratch);
    if (failed) {
        jg_config_free(c.cfg);
        return NULL;
    }
    return c.cfg;
}

jg_config_t *jg_config_load(const char *path, jg_spec_errors_t *errs)
{
    char *text = NULL;
    size_t len = 0;
    if (jg_spec_read_file(path, &text, &len) < 0) {
        if (errno == ENOENT) {
            jg_config_t *cfg = jg_config_defaults();
            cfg->path = jg_xstrdup(path);
            return cfg;
        }
        if (errs) {
            char *msg = jg_xasprintf("%s: cannot read: %s", path, strerror(errno));
            errs->messages = jg_xrealloc(errs->messages, (errs->count + 1) * sizeof(char *));
            errs->messages[errs->count++] = msg;
        }
        return NULL;
    }
    jg_config_t *cfg = jg_config_parse(text, len, path, errs);
    free(text);
    return cfg;
}

static void free_shape(jg_config_shape_t *sh)
{
    for (size_t i = 0; i < sh->n_accels; i++)
        free(sh->accels[i].name);
    free(sh->accels);
}

void jg_config_free(jg_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->default_policy);
    for (size_t i = 0; i < cfg->n_admins; i++)
        free(cfg->admins[i]);
    free(cfg->admins);
    free(cfg->admin_group);
    for (size_t i = 0; i < cfg->n_user_limits; i++)
        free(cfg->user_limits[i].user);
    free(cfg->user_limits);
    free_shape(&cfg->local.capacity);
    free_shape(&cfg->local.max_node);
    free(cfg->local.nat_network);
    free(cfg->kubernetes.kubeconfig);
    free(cfg->kubernetes.context);
    free(cfg->kubernetes.namespace);
    free(cfg->kubernetes.gpu_resource);
    free(cfg->kubernetes.gpu_label);
    free(cfg->kubernetes.image);
    free(cfg->kubernetes.agent_image);
    for (size_t i = 0; i < cfg->n_volumes; i++) {
        free(cfg->volumes[i].name);
        free(cfg->volumes[i].path);
    }
    free(cfg->volumes);
    free(cfg);
}

const jg_user_limits_t *jg_config_limits_for(const jg_config_t *cfg, const char *user)
{
    for (size_t i = 0; user && i < cfg->n_user_limits; i++)
        if (!strcmp(cfg->user_limits[i].user, user))
            return &cfg->user_limits[i].limits;
    return &cfg->default_limits;
}

bool jg_config_is_admin(const jg_config_t *cfg, const char *user, uid_t uid, gid_t gid)
{
    if (uid == 0)
        return true;
    if (!cfg)
        return false;
    for (size_t i = 0; user && i < cfg->n_admins; i++)
        if (!strcmp(cfg->admins[i], user))
            return true;
    gid_t admin_gid = (gid_t)-1;   /* set by group_gid; the initializer only quiets -O3 */
    if (!cfg->admin_group || group_gid(cfg->admin_group, &admin_gid) < 0)
        return false;
    if (gid == admin_gid)
        return true;
    if (!user)
        return false;
    bool member = false;
    int cap = 64, n = cap;
    gid_t *groups = jg_xmalloc((size_t)cap * sizeof *groups);
    while (getgrouplist(user, gid, groups, &n) < 0 && n > cap && n < 65536) {
        cap = n;
        groups = jg_xrealloc(groups, (size_t)cap * sizeof *groups);
    }
    for (int i = 0; i < n && i < cap; i++)
        member = member || groups[i] == admin_gid;
    free(groups);
    return member;
}

const char *jg_config_volume_path(const jg_config_t *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->n_volumes; i++)
        if (!strcmp(cfg->volumes[i].name, name))
            return cfg->volumes[i].path;
    return NULL;
}

/* ---- description ------------------------------------------------------- */

static void put_limit(FILE *f, const char *name, int v)
{
    if (v == JG_CONFIG_UNLIMITED)
        fprintf(f, " %s=unlimited", name);
    else
        fprintf(f, " %s=%d", name, v);
}

static void put_limits(FILE *f, const char *who, const jg_user_limits_t *l)
{
    fprintf(f, "  %-14s", who);
    put_limit(f, "running_groups", l->running_groups);
    put_limit(f, "nodes", l->nodes);
    put_limit(f, "cpus", l->cpus);
    fputc('\n', f);
}

/* "cpus 64, memory 256 GiB, accelerators T4:2"; a field not set reads `unset`. */
static void put_shape(FILE *f, const char *label, const jg_config_shape_t *sh,
                      const char *unset)
{
    fprintf(f, "    %-11s", label);
    if (sh->has_cpus)
        fprintf(f, "cpus %g", sh->cpus);
    else
        fprintf(f, "cpus %s", unset);
    if (sh->has_memory)
        fprintf(f, ", memory %g GiB", sh->memory_gb);
    else
        fprintf(f, ", memory %s", unset);
    if (!sh->has_accels)
        fprintf(f, ", accelerators %s", unset);
    else if (sh->n_accels == 0)
        fprintf(f, ", accelerators none");
    for (size_t i = 0; i < sh->n_accels; i++)
        fprintf(f, "%s%s:%d", i ? " " : ", accelerators ", sh->accels[i].name,
                sh->accels[i].count);
    fputc('\n', f);
}

static const char *dflt(bool set)
{
    return set ? "" : " (default)";
}

char *jg_config_describe(const jg_config_t *cfg)
{
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f) {
        fputs("jgsched: out of memory\n", stderr);
        abort();
    }
    if (cfg->loaded)
        fprintf(f, "config: %s\n", cfg->path ? cfg->path : "<input>");
    else if (cfg->path)
        fprintf(f, "config: %s (no such file: defaults)\n", cfg->path);
    else
        fprintf(f, "config: built-in defaults\n");
    fprintf(f, "default_policy: %s%s\n", cfg->default_policy, dflt(cfg->has_default_policy));
    fprintf(f, "admins: root");
    for (size_t i = 0; i < cfg->n_admins; i++)
        fprintf(f, ", %s", cfg->admins[i]);
    fprintf(f, "\nadmin_group: %s\n", cfg->admin_group ? cfg->admin_group : "none");
    if (cfg->stop_grace_s < 1 && cfg->stop_grace_s > 0)
        fprintf(f, "stop_grace: %gms%s\n", cfg->stop_grace_s * 1000, dflt(cfg->has_stop_grace));
    else
        fprintf(f, "stop_grace: %gs%s\n", cfg->stop_grace_s, dflt(cfg->has_stop_grace));
    fprintf(f, "limits:\n");
    put_limits(f, "default", &cfg->default_limits);
    for (size_t i = 0; i < cfg->n_user_limits; i++) {
        char who[80];
        snprintf(who, sizeof who, "user %s", cfg->user_limits[i].user);
        put_limits(f, who, &cfg->user_limits[i].limits);
    }

    const jg_config_local_t *l = &cfg->local;
    fprintf(f, "backends:\n  local: %s%s\n", l->enabled ? "enabled" : "disabled",
            dflt(l->has_enabled));
    put_shape(f, "capacity:", &l->capacity, "of the host");
    put_shape(f, "max_node:", &l->max_node, "= capacity");
    fprintf(f, "    %-11s%s%s\n", "network:",
            l->network == JG_CONFIG_NETWORK_HOST ? "host" : "isolated", dflt(l->has_network));
    fprintf(f, "    %-11s%s%s\n", "nat:", l->nat ? "on (when the daemon runs as root)" : "off",
            dflt(l->has_nat));
    fprintf(f, "    nat_network: %s%s\n", l->nat_network, dflt(l->has_nat_network));
    fprintf(f, "    %-11s%s%s\n", "cgroups:",
            l->cgroups == JG_CONFIG_CGROUPS_OFF ? "off" : "auto", dflt(l->has_cgroups));
    if (l->oversubscribe > 1)
        fprintf(f, "    oversubscribe: %g CPUs handed out per CPU of the capacity%s\n",
                l->oversubscribe, dflt(l->has_oversubscribe));
    else
        fprintf(f, "    oversubscribe: off%s\n", dflt(l->has_oversubscribe));
    const jg_config_kubernetes_t *k = &cfg->kubernetes;
    fprintf(f, "  kubernetes: %s%s\n", k->enabled ? "enabled" : "disabled",
            dflt(k->has_enabled));
    fprintf(f, "    kubeconfig: %s\n", k->kubeconfig ? k->kubeconfig
            : "$KUBECONFIG (first file), else ~/.kube/config, else in-cluster");
    fprintf(f, "    %-11s%s\n", "context:", k->context ? k->context : "the current one");
    fprintf(f, "    %-11s%s\n", "namespace:", k->namespace ? k->namespace
            : "the context's, else default");
    fprintf(f, "    gpu_resource: %s%s\n", k->gpu_resource, dflt(k->has_gpu_resource));
    fprintf(f, "    %-11s%s\n", "gpu_label:", k->gpu_label ? k->gpu_label
            : "none (accelerator jobs get no nodeSelector)");
    fprintf(f, "    hosts_writable: %s%s\n", k->hosts_writable ? "yes (a uid-0 init container)"
            : "no (no uid-0 container; non-root images cannot have the group's hosts)",
            dflt(k->has_hosts_writable));
    fprintf(f, "    %-11s%s%s\n", "image:", k->image, dflt(k->has_image));
    fprintf(f, "    agent_image: %s%s\n", k->agent_image, dflt(k->has_agent_image));
    const jg_spec_limits_t *sl = &cfg->spec_limits;
    fprintf(f, "spec_limits:%s\n  max_bytes=%zu max_depth=%d max_keys_per_mapping=%d "
            "max_keys=%d\n  max_envs=%d max_string=%zu max_nodes_per_job=%d "
            "max_nodes_per_group=%d\n", cfg->has_spec_limits ? "" : " (defaults)",
            sl->max_bytes, sl->max_depth, sl->max_keys_per_mapping, sl->max_keys, sl->max_envs,
            sl->max_string, sl->max_nodes_per_job, sl->max_nodes_per_group);
    fprintf(f, "volumes:%s\n", cfg->n_volumes ? "" : " none");
    for (size_t i = 0; i < cfg->n_volumes; i++)
        fprintf(f, "  %-14s %s\n", cfg->volumes[i].name, cfg->volumes[i].path);
    const jg_config_clients_t *cl = &cfg->clients;
    fprintf(f, "clients:\n");
    if (cl->max_connections_per_user == JG_CONFIG_UNLIMITED)
        fprintf(f, "  max_connections_per_user: unlimited%s\n", dflt(cl->has_max_connections));
    else
        fprintf(f, "  max_connections_per_user: %d%s\n", cl->max_connections_per_user,
                dflt(cl->has_max_connections));
    fprintf(f, "  request_timeout: %gs%s\n", cl->request_timeout_s, dflt(cl->has_request_timeout));
    if (fclose(f) != 0 || !out) {
        fputs("jgsched: out of memory\n", stderr);
        abort();
    }
    return out;
}
