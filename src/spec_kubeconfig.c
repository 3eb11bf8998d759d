/* spec_kubeconfig.c - a kubeconfig (or a pod's service account) in, one
 * resolved jg_kubeconfig_t out (include/jgsched/kubeconfig.h).
 *
 * Why here.  Only the spec module reads YAML, and a kubeconfig deserves the
 * reading a JobGroup gets: bounded loading, file:line:col and the key path
 * in every message (spec_yaml.c's kit).
 *
 * How it works, following client-go's clientcmd so that a file kubectl
 * accepts is accepted here and one it refuses is refused for the same
 * reason.  Pass 1 reads the whole file: clusters, users and contexts are
 * lists of {name, <kind>: {...}}; every known field is type-checked, every
 * *-data field must be base64 (kubectl's decoder refuses the whole file
 * otherwise) and a name may not repeat.  Unknown keys are ignored, as kubectl
 * ignores them (extensions, preferences, fields of newer versions).  Pass 2
 * selects the context (the one asked for, else current-context) and checks
 * what kubectl's ConfirmUsable checks for it alone: its cluster and user
 * exist, the cluster has a server, a file and inline data are not both given,
 * a certificate has its key, files can be read, one way to authenticate, an
 * exec plugin is complete.  Then the selected entries move into the result.
 */
#include "jgsched/kubeconfig.h"
#include "jgsched/spec.h"
#include "spec_yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* Positions of the fields pass 2 may complain about. */
enum {
    AT_SERVER, AT_CA, AT_CA_DATA, AT_CERT, AT_CERT_DATA, AT_KEY, AT_KEY_DATA, AT_TOKEN,
    AT_TOKEN_FILE, AT_EXEC, AT_EXEC_API, AT_EXEC_MODE, AT_AUTH_PROVIDER, AT_BASIC, AT_AS,
    AT_CLUSTER, AT_USER, AT_NAMESPACE, AT_N
};

/* One item of clusters, users or contexts: what pass 1 read of it. */
typedef struct {
    const char *name;               /* in the document */
    yaml_node_t *name_node, *body;
    char *field;                    /* "users[2].user", for messages */
    jg_kubeconfig_t kc;             /* the fields of its kind, owned until moved */
    char *ctx_cluster, *ctx_user;   /* contexts: the names referred to */
    const yaml_node_t *at[AT_N];
} entry_t;

typedef struct {
    entry_t *items;
    size_t n;
} entries_t;

typedef struct {
    jg_spec_reader_t r;
    const char *base_dir;           /* of the kubeconfig, absolute */
    entries_t clusters, users, contexts;
    yaml_node_t *current_context;   /* its value node; NULL when not set */
} kctx_t;

static void kc_clear(jg_kubeconfig_t *kc);

/* ---- values ------------------------------------------------------------ */

/* Base64 as Go's StdEncoding decodes it (what kubectl uses for *-data):
 * padding required, '\r' and '\n' skipped.  Returns the malloc'd bytes
 * (NUL-terminated, the NUL not counted in *len) or NULL. */
static char *base64_decode(const char *s, size_t *len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0, o = 0;
    char *t = jg_xmalloc(strlen(s) + 1);
    for (const char *c = s; *c; c++)
        if (*c != '\r' && *c != '\n')
            t[n++] = *c;
    char *out = jg_xmalloc(n / 4 * 3 + 1);
    if (n % 4 != 0)
        goto bad;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        unsigned v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *at = strchr(alphabet, t[i + j]);
            if (t[i + j] == '=' && last && j >= 2 && (j == 3 || t[i + 3] == '=')) {
                v[j] = 0;
                pad++;
            } else if (at && t[i + j] && !pad) {
                v[j] = (unsigned)(at - alphabet);
            } else {
                goto bad;
            }
        }
        unsigned q = v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3];
        out[o++] = (char)(q >> 16);
        if (pad < 2)
            out[o++] = (char)(q >> 8);
        if (pad < 1)
            out[o++] = (char)q;
    }
    free(t);
    out[o] = '\0';
    *len = o;
    return out;
bad:
    free(t);
    free(out);
    return NULL;
}

static const char *str_value(kctx_t *k, const yaml_node_t *v, const char *field)
{
    return jg_spec_scalar(&k->r, v, field, "a string");
}

/* A YAML 1.1 boolean, as kubectl's YAML reader takes them. */
static bool bool_value(kctx_t *k, const yaml_node_t *v, const char *field, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "y", NULL};
    static const char *const no[] = {"false", "no", "off", "n", NULL};
    char buf[80];
    const char *s = jg_spec_scalar(&k->r, v, field, "true or false");
    if (!s)
        return false;
    if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (size_t i = 0; yes[i]; i++) {
            if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
                *out = !strcasecmp(s, yes[i]);
                return true;
            }
        }
    }
    jg_spec_err(&k->r, v, field, "expected true or false, got '%s'",
                jg_spec_show(s, buf, sizeof buf));
    return false;
}

/* A copy of the string at v, or NULL (error recorded unless v is null). */
static char *dup_str(kctx_t *k, const yaml_node_t *v, const char *field)
{
    if (jg_spec_is_null(v))
        return NULL;
    const char *s = str_value(k, v, field);
    return s && *s ? jg_xstrdup(s) : NULL;
}

/* The decoded bytes of a *-data field, or NULL (error recorded). */
static char *data_value(kctx_t *k, const yaml_node_t *v, const char *field, size_t *len)
{
    if (jg_spec_is_null(v))
        return NULL;
    const char *s = str_value(k, v, field);
    if (!s || !*s)
        return NULL;
    char *out = base64_decode(s, len);
    if (!out)
        jg_spec_err(&k->r, v, field, "not valid base64");
    return out;
}

/* ref against the kubeconfig's directory, as clientcmd's ResolvePaths. */
static char *resolve_path(kctx_t *k, char *ref)
{
    if (!ref || ref[0] == '/')
        return ref;
    char *abs = jg_xasprintf("%s/%s", k->base_dir, ref);
    free(ref);
    return abs;
}

/* ---- pass 1: the whole file ---------------------------------------------- */

static void read_cluster(kctx_t *k, entry_t *e)
{
    jg_kubeconfig_t *kc = &e->kc;
    JG_SPEC_FOR_PAIRS(e->body, p) {
        const char *key = jg_spec_key(&k->r, e->body, p, e->field);
        if (!key)
            continue;
        yaml_node_t *v = jg_spec_node(&k->r, p->value);
        char *f = jg_spec_join_field(e->field, key);
        if (!strcmp(key, "server")) {
            free(kc->server);
            kc->server = dup_str(k, v, f);
            e->at[AT_SERVER] = v;
        } else if (!strcmp(key, "certificate-authority")) {
            free(kc->ca_file);
            kc->ca_file = resolve_path(k, dup_str(k, v, f));
            e->at[AT_CA] = v;
        } else if (!strcmp(key, "certificate-authority-data")) {
            free(kc->ca_pem);
            kc->ca_pem = data_value(k, v, f, &kc->ca_pem_len);
            e->at[AT_CA_DATA] = v;
        } else if (!strcmp(key, "insecure-skip-tls-verify")) {
            if (!jg_spec_is_null(v))
                bool_value(k, v, f, &kc->insecure_skip_tls_verify);
        } else if (!strcmp(key, "tls-server-name")) {
            free(kc->tls_server_name);
            kc->tls_server_name = dup_str(k, v, f);
        }
        free(f);
    }
}

static void read_exec(kctx_t *k, entry_t *e, yaml_node_t *v, const char *field)
{
    e->at[AT_EXEC] = v;
    if (jg_spec_is_null(v))
        return;
    if (v->type != YAML_MAPPING_NODE) {
        jg_spec_err(&k->r, v, field, "expected a mapping (apiVersion, command, args, env), "
                    "got %s", jg_spec_kind(v));
        return;
    }
    jg_kube_exec_t *x = jg_xcalloc(1, sizeof *x);
    e->kc.exec = x;
    JG_SPEC_FOR_PAIRS(v, p) {
        const char *key = jg_spec_key(&k->r, v, p, field);
        if (!key)
            continue;
        yaml_node_t *val = jg_spec_node(&k->r, p->value);
        char *f = jg_spec_join_field(field, key);
        if (!strcmp(key, "apiVersion")) {
            free(x->api_version);
            x->api_version = dup_str(k, val, f);
            e->at[AT_EXEC_API] = val;
        } else if (!strcmp(key, "command")) {
            free(x->command);
            x->command = dup_str(k, val, f);
            if (x->command && strchr(x->command, '/'))
                x->command = resolve_path(k, x->command);
        } else if (!strcmp(key, "installHint")) {
            free(x->install_hint);
            x->install_hint = dup_str(k, val, f);
        } else if (!strcmp(key, "provideClusterInfo")) {
            if (!jg_spec_is_null(val))
                bool_value(k, val, f, &x->provide_cluster_info);
        } else if (!strcmp(key, "interactiveMode")) {
            free(x->interactive_mode);
            x->interactive_mode = dup_str(k, val, f);
            e->at[AT_EXEC_MODE] = val;
        } else if (!strcmp(key, "args") && !jg_spec_is_null(val)) {
            if (val->type != YAML_SEQUENCE_NODE) {
                jg_spec_err(&k->r, val, f, "expected a list of strings, got %s",
                            jg_spec_kind(val));
            } else {
                size_t n = (size_t)(val->data.sequence.items.top -
                                    val->data.sequence.items.start);
                x->args = jg_xcalloc(n ? n : 1, sizeof *x->args);
                for (size_t i = 0; i < n; i++) {
                    char *fi = jg_xasprintf("%s[%zu]", f, i);
                    yaml_node_t *it = jg_spec_node(&k->r, val->data.sequence.items.start[i]);
                    const char *s = str_value(k, it, fi);      /* "" is an argument */
                    if (s)
                        x->args[x->n_args++] = jg_xstrdup(s);
                    free(fi);
                }
            }
        } else if (!strcmp(key, "env") && !jg_spec_is_null(val)) {
            if (val->type != YAML_SEQUENCE_NODE) {
                jg_spec_err(&k->r, val, f, "expected a list of {name, value}, got %s",
                            jg_spec_kind(val));
            } else {
                size_t n = (size_t)(val->data.sequence.items.top -
                                    val->data.sequence.items.start);
                x->env = jg_xcalloc(n ? n : 1, sizeof *x->env);
                for (size_t i = 0; i < n; i++) {
                    char *fi = jg_xasprintf("%s[%zu]", f, i);
                    yaml_node_t *it = jg_spec_node(&k->r, val->data.sequence.items.start[i]);
                    char *name = NULL, *value = NULL;
                    if (it->type != YAML_MAPPING_NODE) {
                        jg_spec_err(&k->r, it, fi, "expected a mapping {name, value}, got %s",
                                    jg_spec_kind(it));
                    } else {
                        JG_SPEC_FOR_PAIRS(it, q) {
                            const char *ek = jg_spec_key(&k->r, it, q, fi);
                            yaml_node_t *ev = jg_spec_node(&k->r, q->value);
                            char *ef = ek ? jg_spec_join_field(fi, ek) : NULL;
                            if (ek && !strcmp(ek, "name")) {
                                free(name);
                                name = dup_str(k, ev, ef);
                            } else if (ek && !strcmp(ek, "value")) {
                                free(value);
                                value = jg_spec_is_null(ev) ? NULL : dup_str(k, ev, ef);
                            }
                            free(ef);
                        }
                        if (!name)
                            jg_spec_err(&k->r, it, fi, "an exec env variable needs a name");
                    }
                    if (name) {
                        x->env[x->n_env++] = (jg_kube_env_t){name, value ? value
                                                                        : jg_xstrdup("")};
                    } else {
                        free(value);
                    }
                    free(fi);
                }
            }
        }
        free(f);
    }
}

static void read_user(kctx_t *k, entry_t *e)
{
    jg_kubeconfig_t *kc = &e->kc;
    JG_SPEC_FOR_PAIRS(e->body, p) {
        const char *key = jg_spec_key(&k->r, e->body, p, e->field);
        if (!key)
            continue;
        yaml_node_t *v = jg_spec_node(&k->r, p->value);
        char *f = jg_spec_join_field(e->field, key);
        if (!strcmp(key, "token")) {
            free(kc->token);
            kc->token = dup_str(k, v, f);
            e->at[AT_TOKEN] = v;
        } else if (!strcmp(key, "tokenFile")) {
            free(kc->token_file);
            kc->token_file = resolve_path(k, dup_str(k, v, f));
            e->at[AT_TOKEN_FILE] = v;
        } else if (!strcmp(key, "client-certificate")) {
            free(kc->client_cert_file);
            kc->client_cert_file = resolve_path(k, dup_str(k, v, f));
            e->at[AT_CERT] = v;
        } else if (!strcmp(key, "client-certificate-data")) {
            free(kc->client_cert_pem);
            kc->client_cert_pem = data_value(k, v, f, &kc->client_cert_pem_len);
            e->at[AT_CERT_DATA] = v;
        } else if (!strcmp(key, "client-key")) {
            free(kc->client_key_file);
            kc->client_key_file = resolve_path(k, dup_str(k, v, f));
            e->at[AT_KEY] = v;
        } else if (!strcmp(key, "client-key-data")) {
            free(kc->client_key_pem);
            kc->client_key_pem = data_value(k, v, f, &kc->client_key_pem_len);
            e->at[AT_KEY_DATA] = v;
        } else if (!strcmp(key, "exec")) {
            read_exec(k, e, v, f);      /* once: jg_spec_key refuses a repeated key */
        } else if (!strcmp(key, "auth-provider") && !jg_spec_is_null(v)) {
            e->at[AT_AUTH_PROVIDER] = v;
        } else if ((!strcmp(key, "username") || !strcmp(key, "password")) &&
                   !jg_spec_is_null(v)) {
            e->at[AT_BASIC] = v;
        } else if ((!strcmp(key, "as") || !strcmp(key, "as-groups") || !strcmp(key, "as-uid") ||
                    !strcmp(key, "as-user-extra")) && !jg_spec_is_null(v)) {
            e->at[AT_AS] = v;
        }
        free(f);
    }
}

static void read_context(kctx_t *k, entry_t *e)
{
    JG_SPEC_FOR_PAIRS(e->body, p) {
        const char *key = jg_spec_key(&k->r, e->body, p, e->field);
        if (!key)
            continue;
        yaml_node_t *v = jg_spec_node(&k->r, p->value);
        char *f = jg_spec_join_field(e->field, key);
        if (!strcmp(key, "cluster")) {
            free(e->ctx_cluster);
            e->ctx_cluster = dup_str(k, v, f);
            e->at[AT_CLUSTER] = v;
        } else if (!strcmp(key, "user")) {
            free(e->ctx_user);
            e->ctx_user = dup_str(k, v, f);
            e->at[AT_USER] = v;
        } else if (!strcmp(key, "namespace")) {
            free(e->kc.namespace);
            e->kc.namespace = dup_str(k, v, f);
            e->at[AT_NAMESPACE] = v;
        }
        free(f);
    }
}

/* clusters, users or contexts: a list of {name: N, <kind>: {...}}. */
static void read_list(kctx_t *k, yaml_node_t *list, const char *key, const char *kind,
                      entries_t *out, void (*read_body)(kctx_t *, entry_t *))
{
    if (jg_spec_is_null(list))
        return;
    if (list->type != YAML_SEQUENCE_NODE) {
        jg_spec_err(&k->r, list, key, "expected a list of {name, %s}, got %s", kind,
                    jg_spec_kind(list));
        return;
    }
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    out->items = jg_xcalloc(n ? n : 1, sizeof *out->items);
    jg_spec_strmap_t seen = {0};        /* names borrowed from the document */
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = jg_spec_node(&k->r, list->data.sequence.items.start[i]);
        char *field = jg_xasprintf("%s[%zu]", key, i);
        if (item->type != YAML_MAPPING_NODE) {
            jg_spec_err(&k->r, item, field, "expected a mapping {name, %s}, got %s", kind,
                        jg_spec_kind(item));
            free(field);
            continue;
        }
        entry_t e = {0};
        JG_SPEC_FOR_PAIRS(item, p) {
            const char *ik = jg_spec_key(&k->r, item, p, field);
            yaml_node_t *v = jg_spec_node(&k->r, p->value);
            char *f = ik ? jg_spec_join_field(field, ik) : NULL;
            if (ik && !strcmp(ik, "name")) {
                e.name_node = v;
                e.name = str_value(k, v, f);
            } else if (ik && !strcmp(ik, kind)) {
                if (v->type == YAML_MAPPING_NODE)
                    e.body = v;
                else if (!jg_spec_is_null(v))
                    jg_spec_err(&k->r, v, f, "expected a mapping, got %s", jg_spec_kind(v));
            }
            free(f);
        }
        if (!e.name_node) {
            jg_spec_err(&k->r, item, field, "this %s has no name", kind);
        } else if (e.name && !*e.name) {
            jg_spec_err(&k->r, e.name_node, field, "the name may not be empty");
            e.name = NULL;
        }
        if (e.name) {
            int *first = jg_spec_strmap_slot(&seen, e.name, strlen(e.name), true);
            if (*first) {
                char buf[80];
                jg_spec_err(&k->r, e.name_node, field, "duplicate %s name '%s' (also %s[%d])",
                            kind, jg_spec_show(e.name, buf, sizeof buf), key, *first - 1);
                e.name = NULL;
            } else {
                *first = (int)i + 1;
            }
        }
        e.field = jg_spec_join_field(field, kind);
        if (e.body)
            read_body(k, &e);
        free(field);
        if (!e.name) {
            free(e.field);
            kc_clear(&e.kc);
            free(e.ctx_cluster);
            free(e.ctx_user);
            continue;
        }
        out->items[out->n++] = e;
    }
    jg_spec_strmap_free(&seen);
}

static void entries_free(entries_t *es)
{
    for (size_t i = 0; i < es->n; i++) {
        free(es->items[i].field);
        kc_clear(&es->items[i].kc);
        free(es->items[i].ctx_cluster);
        free(es->items[i].ctx_user);
    }
    free(es->items);
    *es = (entries_t){0};
}

static void read_root(kctx_t *k, yaml_node_t *root)
{
    if (jg_spec_is_null(root))
        return;
    if (root->type != YAML_MAPPING_NODE) {
        jg_spec_err(&k->r, root, NULL, "a kubeconfig is a mapping (clusters, users, contexts, "
                    "current-context), got %s", jg_spec_kind(root));
        return;
    }
    JG_SPEC_FOR_PAIRS(root, p) {
        const char *key = jg_spec_key(&k->r, root, p, NULL);
        if (!key)
            continue;
        yaml_node_t *v = jg_spec_node(&k->r, p->value);
        if (!strcmp(key, "clusters"))
            read_list(k, v, key, "cluster", &k->clusters, read_cluster);
        else if (!strcmp(key, "users"))
            read_list(k, v, key, "user", &k->users, read_user);
        else if (!strcmp(key, "contexts"))
            read_list(k, v, key, "context", &k->contexts, read_context);
        else if (!strcmp(key, "current-context") && !jg_spec_is_null(v) &&
                 str_value(k, v, key))
            k->current_context = v;
    }
}

/* ---- pass 2: the selected context ---------------------------------------- */

static entry_t *find_entry(entries_t *es, const char *name)
{
    for (size_t i = 0; i < es->n; i++)
        if (!strcmp(es->items[i].name, name))
            return &es->items[i];
    return NULL;
}

/* "a, b, c" for messages (caller frees), cut after about 300 bytes. */
static char *names_of(const entries_t *es)
{
    if (es->n == 0)
        return jg_xstrdup("none in the file");
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        abort();
    for (size_t i = 0; i < es->n; i++) {
        if (ftell(f) > 300) {
            fprintf(f, ", ... (%zu in all)", es->n);
            break;
        }
        char buf[80];
        fprintf(f, "%s%s", i ? ", " : "", jg_spec_show(es->items[i].name, buf, sizeof buf));
    }
    if (fclose(f) != 0 || !out)
        abort();
    return out;
}

/* At e's field `key` (node n, else e's body). */
static void entry_err(kctx_t *k, const entry_t *e, const yaml_node_t *n, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void entry_err(kctx_t *k, const entry_t *e, const yaml_node_t *n, const char *key,
                      const char *fmt, ...)
{
    char *field = key ? jg_spec_join_field(e->field, key) : jg_xstrdup(e->field);
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    jg_spec_err(&k->r, n ? n : e->body ? e->body : e->name_node, field, "%s", msg);
    free(msg);
    free(field);
}

/* A file the result names: kubectl checks it can be read before it is used. */
static void check_readable(kctx_t *k, const entry_t *e, int at, const char *key,
                           const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        entry_err(k, e, e->at[at], key, "cannot read %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        entry_err(k, e, e->at[at], key, "cannot read %s: not a regular file", path);
    if (fd >= 0)
        close(fd);
}

static void check_cluster(kctx_t *k, const entry_t *e)
{
    const jg_kubeconfig_t *c = &e->kc;
    if (!c->server)
        entry_err(k, e, e->at[AT_SERVER], "server", "cluster \"%s\" has no server (add "
                  "server: https://<host>:<port>)", e->name);
    if (c->ca_file && c->ca_pem)
        entry_err(k, e, e->at[AT_CA_DATA], "certificate-authority-data", "certificate-"
                  "authority is given too; keep one");
    else if (c->ca_file)
        check_readable(k, e, AT_CA, "certificate-authority", c->ca_file);
    if (c->insecure_skip_tls_verify && (c->ca_file || c->ca_pem))
        entry_err(k, e, e->at[c->ca_pem ? AT_CA_DATA : AT_CA], c->ca_pem
                  ? "certificate-authority-data" : "certificate-authority",
                  "a certificate authority with insecure-skip-tls-verify: true is not "
                  "allowed (kubectl refuses it too); keep one");
}

static void check_exec(kctx_t *k, const entry_t *e)
{
    jg_kube_exec_t *x = e->kc.exec;
    const yaml_node_t *n = e->at[AT_EXEC];
    if (!x->command)
        entry_err(k, e, n, "exec.command", "an exec plugin needs a command");
    if (!x->api_version) {
        entry_err(k, e, n, "exec.apiVersion", "an exec plugin needs an apiVersion (%s)",
                  JG_KUBE_EXEC_V1);
        return;
    }
    if (strcmp(x->api_version, JG_KUBE_EXEC_V1) && strcmp(x->api_version, JG_KUBE_EXEC_V1BETA1)) {
        char buf[80];
        entry_err(k, e, e->at[AT_EXEC_API], "exec.apiVersion", "'%s' is not supported "
                  "(use %s or %s)", jg_spec_show(x->api_version, buf, sizeof buf),
                  JG_KUBE_EXEC_V1, JG_KUBE_EXEC_V1BETA1);
        return;
    }
    if (!x->interactive_mode) {
        /* v1beta1 kubeconfigs predate the field: kubectl defaults it there. */
        if (!strcmp(x->api_version, JG_KUBE_EXEC_V1BETA1))
            x->interactive_mode = jg_xstrdup("IfAvailable");
        else
            entry_err(k, e, n, "exec.interactiveMode", "%s needs interactiveMode (Never or "
                      "IfAvailable)", JG_KUBE_EXEC_V1);
    } else if (!strcmp(x->interactive_mode, "Always")) {
        entry_err(k, e, e->at[AT_EXEC_MODE], "exec.interactiveMode", "Always needs a "
                  "terminal, and the daemon runs the plugin without one (use Never or "
                  "IfAvailable)");
    } else if (strcmp(x->interactive_mode, "Never") && strcmp(x->interactive_mode,
                                                                 "IfAvailable")) {
        char buf[80];
        entry_err(k, e, e->at[AT_EXEC_MODE], "exec.interactiveMode", "invalid mode '%s' "
                  "(Never, IfAvailable or Always)",
                  jg_spec_show(x->interactive_mode, buf, sizeof buf));
    }
}

static void check_user(kctx_t *k, const entry_t *e)
{
    const jg_kubeconfig_t *u = &e->kc;
    if (u->client_cert_file && u->client_cert_pem)
        entry_err(k, e, e->at[AT_CERT_DATA], "client-certificate-data", "client-certificate "
                  "is given too; keep one");
    else if (u->client_cert_file)
        check_readable(k, e, AT_CERT, "client-certificate", u->client_cert_file);
    if (u->client_key_file && u->client_key_pem)
        entry_err(k, e, e->at[AT_KEY_DATA], "client-key-data", "client-key is given too; "
                  "keep one");
    else if (u->client_key_file)
        check_readable(k, e, AT_KEY, "client-key", u->client_key_file);
    bool cert = u->client_cert_file || u->client_cert_pem;
    bool key = u->client_key_file || u->client_key_pem;
    if (cert && !key)
        entry_err(k, e, e->at[u->client_cert_pem ? AT_CERT_DATA : AT_CERT],
                  u->client_cert_pem ? "client-certificate-data" : "client-certificate",
                  "a client certificate needs its key (client-key or client-key-data)");
    if (key && !cert)
        entry_err(k, e, e->at[u->client_key_pem ? AT_KEY_DATA : AT_KEY],
                  u->client_key_pem ? "client-key-data" : "client-key",
                  "a client key needs its certificate (client-certificate or "
                  "client-certificate-data)");
    if (e->at[AT_AUTH_PROVIDER])
        entry_err(k, e, e->at[AT_AUTH_PROVIDER], "auth-provider", "auth-provider plugins "
                  "are not supported (kubectl removed them): use an exec plugin");
    if (e->at[AT_BASIC])
        entry_err(k, e, e->at[AT_BASIC], NULL, "username/password (basic authentication) "
                  "is not supported: use a token, a client certificate or an exec plugin");
    if (e->at[AT_AS])
        entry_err(k, e, e->at[AT_AS], NULL, "impersonation (as, as-groups, as-uid, "
                  "as-user-extra) is not supported");
    if (u->exec)
        check_exec(k, e);
}

/* Selects the context and moves what it uses into a new result; NULL when
 * something is wrong (recorded). */
static jg_kubeconfig_t *select_context(kctx_t *k, const char *context)
{
    const yaml_node_t *at = NULL;
    const char *field = NULL, *want = context && *context ? context : NULL;
    if (!want && k->current_context) {
        at = k->current_context;
        field = "current-context";
        want = JG_SPEC_SVAL(k->current_context);
    }
    char *names = NULL, buf[80];
    if (!want || !*want) {
        names = names_of(&k->contexts);
        jg_spec_err(&k->r, NULL, NULL, "no context selected: current-context is not set and "
                    "none was named (contexts: %s)", names);
        free(names);
        return NULL;
    }
    entry_t *ctx = find_entry(&k->contexts, want);
    if (!ctx) {
        names = names_of(&k->contexts);
        jg_spec_err(&k->r, at, field, "context \"%s\" not found (contexts: %s)",
                    jg_spec_show(want, buf, sizeof buf), names);
        free(names);
        return NULL;
    }
    entry_t *cl = NULL, *user = NULL;
    if (!ctx->body || !ctx->ctx_cluster) {
        jg_spec_err(&k->r, ctx->at[AT_CLUSTER] ? ctx->at[AT_CLUSTER]
                           : ctx->body ? ctx->body : ctx->name_node,
                    ctx->field, "context \"%s\" names no cluster",
                    ctx->name);
    } else if (!(cl = find_entry(&k->clusters, ctx->ctx_cluster))) {
        names = names_of(&k->clusters);
        entry_err(k, ctx, ctx->at[AT_CLUSTER], "cluster", "cluster \"%s\" not found "
                  "(clusters: %s)", jg_spec_show(ctx->ctx_cluster, buf, sizeof buf), names);
        free(names);
    }
    if (ctx->ctx_user && !(user = find_entry(&k->users, ctx->ctx_user))) {
        names = names_of(&k->users);
        entry_err(k, ctx, ctx->at[AT_USER], "user", "user \"%s\" not found (users: %s)",
                  jg_spec_show(ctx->ctx_user, buf, sizeof buf), names);
        free(names);
    }
    char why[160];
    const char *bad = ctx->kc.namespace ? jg_spec_dns_problem(ctx->kc.namespace, why,
                                                                sizeof why) : NULL;
    if (bad)
        entry_err(k, ctx, ctx->at[AT_NAMESPACE], "namespace", "'%s' is not a valid "
                  "namespace: %s", jg_spec_show(ctx->kc.namespace, buf, sizeof buf), bad);
    if (cl)
        check_cluster(k, cl);
    if (user)
        check_user(k, user);
    if (k->r.errs->count > k->r.err0)
        return NULL;

    jg_kubeconfig_t *kc = jg_xcalloc(1, sizeof *kc);
    if (user) {
        *kc = user->kc;         /* the user's fields; the rest are still empty */
        user->kc = (jg_kubeconfig_t){0};
    }
    const jg_kubeconfig_t *c = &cl->kc;
    kc->server = c->server;
    kc->tls_server_name = c->tls_server_name;
    kc->insecure_skip_tls_verify = c->insecure_skip_tls_verify;
    kc->ca_file = c->ca_file;
    kc->ca_pem = c->ca_pem;
    kc->ca_pem_len = c->ca_pem_len;
    cl->kc = (jg_kubeconfig_t){0};
    kc->source = jg_xstrdup(k->r.file);
    kc->context = jg_xstrdup(ctx->name);
    kc->cluster = jg_xstrdup(cl->name);
    kc->user = user ? jg_xstrdup(user->name) : NULL;
    kc->namespace_given = ctx->kc.namespace != NULL;
    kc->namespace = jg_xstrdup(ctx->kc.namespace ? ctx->kc.namespace : "default");
    return kc;
}

/* ---- the API -------------------------------------------------------------- */

/* The first message of errs into err, with how many more there are. */
static void errs_to_error(const jg_spec_errors_t *errs, jg_error_t *err)
{
    if (errs->count == 0) {
        jg_errprintf(err, "kubeconfig: unknown error");
        return;
    }
    if (errs->count == 1)
        jg_errprintf(err, "%s", errs->messages[0]);
    else
        jg_errprintf(err, "%s (and %zu more problem%s)", errs->messages[0], errs->count - 1,
                     errs->count == 2 ? "" : "s");
}

/* The bounds of a JobGroup file, but a string may fill the file: certificate
 * data is long. */
static jg_spec_limits_t kubeconfig_limits(void)
{
    jg_spec_limits_t lim = jg_spec_limits_default();
    lim.max_string = lim.max_bytes;
    return lim;
}

static char *dir_of(const char *path)
{
    char *abs;
    if (path && path[0] == '/') {
        abs = jg_xstrdup(path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            strcpy(cwd, ".");
        abs = path ? jg_xasprintf("%s/%s", cwd, path) : jg_xasprintf("%s/x", cwd);
    }
    char *slash = strrchr(abs, '/');
    if (slash == abs)
        slash[1] = '\0';
    else
        *slash = '\0';
    return abs;
}

jg_kubeconfig_t *jg_kubeconfig_parse(const char *text, size_t len, const char *path,
                                     const char *context, jg_error_t *err)
{
    jg_spec_errors_t errs = {0};
    char *base = dir_of(path);
    kctx_t k = {.base_dir = base};
    jg_spec_reader_init(&k.r, path ? path : "<kubeconfig>", &errs);
    k.r.limits = kubeconfig_limits();
    jg_kubeconfig_t *kc = NULL;
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool parser_ok = false, live = false;
    if (!jg_spec_check_size(&k.r, text, len) || !jg_spec_check_directives(&k.r, text, len))
        goto done;
    if (!(parser_ok = yaml_parser_initialize(&parser))) {
        jg_spec_err_at(&k.r, (jg_spec_pos_t){0, 0}, NULL, "cannot initialise the YAML parser");
        goto done;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = jg_spec_next_doc(&k.r, &parser, &doc, text, len);
    if (rc < 0)
        goto done;
    live = rc == 1;
    if (live) {
        k.r.doc = &doc;
        read_root(&k, yaml_document_get_root_node(&doc));
        if (jg_spec_next_doc(&k.r, &parser, &extra, text, len) == 1) {
            jg_spec_err(&k.r, yaml_document_get_root_node(&extra), NULL, "a kubeconfig holds "
                        "one YAML document; this is a second one");
            yaml_document_delete(&extra);
        }
    }
    if (errs.count == 0)
        kc = select_context(&k, context);

done:
    entries_free(&k.clusters);
    entries_free(&k.users);
    entries_free(&k.contexts);
    if (live)
        yaml_document_delete(&doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    if (jg_spec_reader_done(&k.r)) {
        errs_to_error(&errs, err);
        jg_kubeconfig_free(kc);
        kc = NULL;
    }
    jg_spec_errors_free(&errs);
    free(base);
    return kc;
}

jg_kubeconfig_t *jg_kubeconfig_load(const char *path, const char *context, jg_error_t *err)
{
    jg_spec_errors_t errs = {0};
    jg_spec_limits_t lim = kubeconfig_limits();
    size_t len = 0;
    char *text = jg_spec_read_bounded(path, &lim, &len, &errs);
    if (!text) {
        errs_to_error(&errs, err);
        jg_spec_errors_free(&errs);
        return NULL;
    }
    jg_kubeconfig_t *kc = jg_kubeconfig_parse(text, len, path, context, err);
    free(text);
    return kc;
}

bool jg_kubeconfig_in_pod(void)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    return host && *host && port && *port;
}

/* The first line of a small file (the service account's namespace), trimmed;
 * NULL when it cannot be read or is empty. */
static char *read_small(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct stat st;
    char buf[256];
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1) : -1;
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
        s[--l] = '\0';
    return l ? jg_xstrdup(s) : NULL;
}

jg_kubeconfig_t *jg_kubeconfig_in_cluster(const char *sa_dir, jg_error_t *err)
{
    if (!sa_dir)
        sa_dir = JG_KUBE_SERVICE_ACCOUNT_DIR;
    if (!jg_kubeconfig_in_pod()) {
        jg_errprintf(err, "in-cluster config: KUBERNETES_SERVICE_HOST and "
                     "KUBERNETES_SERVICE_PORT must be set (is this running in a pod?)");
        return NULL;
    }
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    char *token = jg_xasprintf("%s/token", sa_dir);
    int fd = open(token, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    bool opened = fd >= 0 && fstat(fd, &st) == 0;
    if (!opened || !S_ISREG(st.st_mode)) {
        jg_errprintf(err, "in-cluster config: cannot read the service account token %s: %s",
                     token, opened ? "not a regular file" : strerror(errno));
        if (fd >= 0)
            close(fd);
        free(token);
        return NULL;
    }
    close(fd);
    jg_kubeconfig_t *kc = jg_xcalloc(1, sizeof *kc);
    kc->source = jg_xstrdup("in-cluster");
    kc->in_cluster = true;
    kc->server = strchr(host, ':') ? jg_xasprintf("https://[%s]:%s", host, port)
                                   : jg_xasprintf("https://%s:%s", host, port);
    kc->token_file = token;
    /* As client-go: a CA that cannot be read is left out (system roots). */
    char *ca = jg_xasprintf("%s/ca.crt", sa_dir);
    if (access(ca, R_OK) == 0)
        kc->ca_file = ca;
    else
        free(ca);
    const char *env_ns = getenv("POD_NAMESPACE");
    char *ns_path = jg_xasprintf("%s/namespace", sa_dir);
    kc->namespace = env_ns && *env_ns ? jg_xstrdup(env_ns) : read_small(ns_path);
    free(ns_path);
    kc->namespace_given = kc->namespace != NULL;
    if (!kc->namespace)
        kc->namespace = jg_xstrdup("default");
    return kc;
}

char *jg_kubeconfig_default_path(const char *kubeconfig_env, const char *home)
{
    for (const char *p = kubeconfig_env; p && *p;) {
        size_t n = strcspn(p, ":");
        if (n)
            return jg_xstrndup(p, n);
        p += 1;
    }
    if (home && *home)
        return jg_xasprintf("%s/.kube/config", home);
    return NULL;
}

jg_kubeconfig_t *jg_kubeconfig_resolve(const char *path, const char *context,
                                       const char *sa_dir, jg_error_t *err)
{
    if (path)
        return jg_kubeconfig_load(path, context, err);
    const char *env = getenv("KUBECONFIG");
    char *from_env = jg_kubeconfig_default_path(env, NULL);
    if (from_env) {
        jg_kubeconfig_t *kc = jg_kubeconfig_load(from_env, context, err);
        free(from_env);
        return kc;
    }
    char *home_config = jg_kubeconfig_default_path(NULL, getenv("HOME"));
    if (jg_kubeconfig_in_pod() && (!home_config || access(home_config, F_OK) != 0)) {
        free(home_config);
        if (context) {
            jg_errprintf(err, "in-cluster config: it has no contexts, and context \"%s\" was "
                         "asked for (give a kubeconfig that has it)", context);
            return NULL;
        }
        return jg_kubeconfig_in_cluster(sa_dir, err);
    }
    if (!home_config) {
        jg_errprintf(err, "no kubeconfig: set backends.kubernetes.kubeconfig, $KUBECONFIG or "
                     "$HOME");
        return NULL;
    }
    jg_kubeconfig_t *kc = jg_kubeconfig_load(home_config, context, err);
    free(home_config);
    return kc;
}

static void kc_clear(jg_kubeconfig_t *kc)
{
    free(kc->source);
    free(kc->context);
    free(kc->cluster);
    free(kc->user);
    free(kc->namespace);
    free(kc->server);
    free(kc->tls_server_name);
    free(kc->ca_file);
    free(kc->ca_pem);
    free(kc->client_cert_file);
    free(kc->client_cert_pem);
    free(kc->client_key_file);
    free(kc->client_key_pem);
    free(kc->token);
    free(kc->token_file);
    if (kc->exec) {
        jg_kube_exec_t *x = kc->exec;
        free(x->api_version);
        free(x->command);
        for (size_t i = 0; i < x->n_args; i++)
            free(x->args[i]);
        free(x->args);
        for (size_t i = 0; i < x->n_env; i++) {
            free(x->env[i].name);
            free(x->env[i].value);
        }
        free(x->env);
        free(x->install_hint);
        free(x->interactive_mode);
        free(x);
    }
    *kc = (jg_kubeconfig_t){0};
}

void jg_kubeconfig_free(jg_kubeconfig_t *kc)
{
    if (!kc)
        return;
    kc_clear(kc);
    free(kc);
}
