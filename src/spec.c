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
 * The JSON form and the human description live in spec_json.c.  The YAML
 * reading kit in the first half of this file (messages with positions, node
 * helpers, did-you-mean, sizes and durations) is shared with spec_config.c,
 * the daemon's config.yaml reader, through the private header spec_yaml.h.
 */
#include "jgsched/spec.h"
#include "spec_yaml.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

/* Keys a job document may hold. */
static const char *const job_keys[] = {
    "name", "num_nodes", "resources", "envs", "setup", "run", "workdir",
    "volumes", "file_mounts", "job_recovery", NULL,
};
/* Keys whose presence makes a document a job rather than a header. */
static const char *const job_only_keys[] = {
    "run", "setup", "resources", "num_nodes", "envs", "workdir", "volumes",
    "file_mounts", "job_recovery", NULL,
};
static const char *const header_keys[] = {
    "name", "placement", "execution", "primary_tasks", "termination_delay",
    "policy", "inter_connection", NULL,
};
static const char *const header_only_keys[] = {
    "placement", "execution", "primary_tasks", "termination_delay", "policy",
    "inter_connection", NULL,
};
static const char *const resource_keys[] = {
    "cpus", "memory", "accelerators", "infra", "job_recovery",
    /* SkyPilot keys accepted and ignored (with a warning) */
    "use_spot", "disk_size", "disk_tier", "ports", "image_id", "labels",
    "cloud", "region", "zone", "instance_type", NULL,
};
static const char *const ignored_resource_keys[] = {
    "use_spot", "disk_size", "disk_tier", "ports", "image_id", "labels",
    "cloud", "region", "zone", "instance_type", NULL,
};
static const char *const recovery_keys[] = {
    "max_restarts_on_errors", "recover_on_exit_codes", "strategy", NULL,
};

/* Names people reach for that are not ours: unknown key -> the key meant. */
static const struct {
    const char *alias, *key;
} key_aliases[] = {
    {"gpu", "accelerators"}, {"gpus", "accelerators"}, {"accelerator", "accelerators"},
    {"mem", "memory"}, {"nodes", "num_nodes"}, {"replicas", "num_nodes"},
    {"env", "envs"}, {"environment", "envs"}, {"command", "run"}, {"cmd", "run"},
    {"recovery", "job_recovery"}, {"volume", "volumes"}, {"primary", "primary_tasks"},
};

/* A name in the header that must turn out to be a job (or `default`). */
typedef struct {
    const char *name;           /* points into the spec */
    jg_spec_pos_t pos;
    const char *field;
} ref_t;

typedef struct {
    jg_spec_reader_t r;         /* messages, positions, the current document */
    const char *path;           /* the file, for workdir resolution; may be NULL */
    char *base_dir;             /* absolute directory of path (lazy) */
    jg_group_spec_t *spec;
    size_t jobs_cap;
    size_t *index;              /* open addressing: job index + 1, 0 empty */
    size_t index_cap;
    ref_t *refs;
    size_t n_refs, refs_cap;
    jg_spec_pos_t header_pos;
    bool header_has_delay;
    jg_spec_pos_t delay_pos;    /* of termination_delay's value */
    size_t group_nodes;         /* num_nodes over the jobs so far */
    bool group_nodes_reported;
    const char *home;           /* for `~` in workdir; NULL: $HOME */
    bool for_another_user;      /* parsing a submit: never look at the filesystem */
} pctx_t;

/* ---- messages (spec_yaml.h) ------------------------------------------- */

static char *xvasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        fputs("jgsched: out of memory\n", stderr);
        abort();
    }
    return s;
}

/* Did-you-mean comparisons one parse may make: plenty for any real typo,
 * bounded for a file of thousands of wrong names. */
#define SUGGEST_BUDGET 4096
/* A message body longer than this is cut: values are shown shortened
 * already; this bounds the rest, whatever a message quotes. */
#define MAX_BODY 400

jg_spec_limits_t jg_spec_limits_default(void)
{
    return (jg_spec_limits_t){
        .max_bytes = JG_SPEC_MAX_BYTES_CEILING,
        .max_depth = 64,
        .max_keys_per_mapping = 1024,
        .max_keys = 65536,
        .max_envs = 1024,
        .max_string = 128 * 1024,
        .max_nodes_per_job = 1024,
        .max_nodes_per_group = 1024,
    };
}

void jg_spec_reader_init(jg_spec_reader_t *r, const char *file, jg_spec_errors_t *errs)
{
    *r = (jg_spec_reader_t){
        .file = file ? file : "<input>",
        .errs = errs,
        .err0 = errs->count,
        .warn0 = errs->n_warnings,
        .limits = jg_spec_limits_default(),
        .suggest_left = SUGGEST_BUDGET,
    };
}

bool jg_spec_reader_full(const jg_spec_reader_t *r)
{
    return r->errs->count - r->err0 >= JG_SPEC_MAX_MESSAGES;
}

/* Grows an array this module alone appends to (from empty) at powers of two,
 * so n appends cost O(n) whatever the allocator does. */
static void *grow_pow2(void *arr, size_t n, size_t elem)
{
    if (n == 0 || (n & (n - 1)) == 0)
        arr = jg_xrealloc(arr, (n ? n * 2 : 1) * elem);
    return arr;
}

static void push_msg(char ***arr, size_t *n, jg_spec_pos_t **pos, size_t *pos_cap,
                     size_t base, jg_spec_pos_t p, char *msg)
{
    *arr = jg_xrealloc(*arr, (*n + 1) * sizeof **arr);    /* at most JG_SPEC_MAX_MESSAGES */
    (*arr)[(*n)++] = msg;
    size_t k = *n - base;
    if (k > *pos_cap) {
        *pos_cap = *pos_cap ? *pos_cap * 2 : 8;
        *pos = jg_xrealloc(*pos, *pos_cap * sizeof **pos);
    }
    (*pos)[k - 1] = p;
}

/* Adds a finished message (takes ownership of msg) at position p. */
static void record_msg(jg_spec_reader_t *r, bool warning, jg_spec_pos_t p, char *msg)
{
    jg_spec_errors_t *e = r->errs;
    if (warning)
        push_msg(&e->warnings, &e->n_warnings, &r->warn_pos, &r->warn_pos_cap, r->warn0, p,
                 msg);
    else
        push_msg(&e->messages, &e->count, &r->err_pos, &r->err_pos_cap, r->err0, p, msg);
}

/* "file:line:col: field: <fmt>"; field may be NULL. */
static void vreport(jg_spec_reader_t *r, bool warning, jg_spec_pos_t p, const char *field,
                    const char *fmt, va_list ap)
{
    size_t held = warning ? r->errs->n_warnings - r->warn0 : r->errs->count - r->err0;
    if (held >= JG_SPEC_MAX_MESSAGES) {     /* counted, not formatted */
        (*(warning ? &r->warn_dropped : &r->err_dropped))++;
        return;
    }
    char *body = xvasprintf(fmt, ap);
    size_t blen = strlen(body);
    if (blen > MAX_BODY) {      /* "..." and the NUL end at body[MAX_BODY] at most */
        size_t cut = MAX_BODY - 3;
        while (cut > 0 && ((unsigned char)body[cut] & 0xc0) == 0x80)
            cut--;
        memcpy(body + cut, "...", 4);
    }
    char where[64];
    if (p.line > 0 && p.col > 0)
        snprintf(where, sizeof where, ":%d:%d", p.line, p.col);
    else if (p.line > 0)
        snprintf(where, sizeof where, ":%d", p.line);
    else
        where[0] = '\0';
    char *msg = jg_xasprintf("%s%s: %s%s%s", r->file, where, field ? field : "",
                             field ? ": " : "", body);
    free(body);
    record_msg(r, warning, p, msg);
}

/* {0,0} for NULL */
static jg_spec_pos_t node_pos(const yaml_node_t *n)
{
    jg_spec_pos_t p = {0, 0};
    if (n) {
        p.line = (int)n->start_mark.line + 1;
        p.col = (int)n->start_mark.column + 1;
    }
    return p;
}

void jg_spec_err(jg_spec_reader_t *r, const yaml_node_t *n, const char *field, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(r, false, node_pos(n), field, fmt, ap);
    va_end(ap);
}

void jg_spec_warn(jg_spec_reader_t *r, const yaml_node_t *n, const char *field, const char *fmt,
                  ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(r, true, node_pos(n), field, fmt, ap);
    va_end(ap);
}

void jg_spec_err_at(jg_spec_reader_t *r, jg_spec_pos_t p, const char *field, const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(r, false, p, field, fmt, ap);
    va_end(ap);
}

static void vreport_at(jg_spec_reader_t *r, bool warning, jg_spec_pos_t p, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void vreport_at(jg_spec_reader_t *r, bool warning, jg_spec_pos_t p, const char *field,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(r, warning, p, field, fmt, ap);
    va_end(ap);
}

typedef struct {
    jg_spec_pos_t p;
    size_t seq;
    char *msg;
} sortent_t;

static int sortent_cmp(const void *a, const void *b)
{
    const sortent_t *x = a, *y = b;
    if (x->p.line != y->p.line)
        return x->p.line < y->p.line ? -1 : 1;
    if (x->p.col != y->p.col)
        return x->p.col < y->p.col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Puts the messages this parse added into file order (stable). */
static void sort_msgs(char **msgs, size_t base, size_t n, const jg_spec_pos_t *pos)
{
    if (n <= base + 1)
        return;
    size_t k = n - base;
    sortent_t *v = jg_xmalloc(k * sizeof *v);
    for (size_t i = 0; i < k; i++)
        v[i] = (sortent_t){pos[i], i, msgs[base + i]};
    qsort(v, k, sizeof *v, sortent_cmp);
    for (size_t i = 0; i < k; i++)
        msgs[base + i] = v[i].msg;
    free(v);
}

bool jg_spec_reader_done(jg_spec_reader_t *r)
{
    jg_spec_errors_t *e = r->errs;
    sort_msgs(e->messages, r->err0, e->count, r->err_pos);
    sort_msgs(e->warnings, r->warn0, e->n_warnings, r->warn_pos);
    /* After sorting, so the count comes last. */
    if (r->err_dropped) {
        e->messages = jg_xrealloc(e->messages, (e->count + 1) * sizeof *e->messages);
        e->messages[e->count++] =
            jg_xasprintf("%s: %zu more error%s not shown (only the first %d are listed)",
                         r->file, r->err_dropped, r->err_dropped == 1 ? "" : "s",
                         JG_SPEC_MAX_MESSAGES);
    }
    if (r->warn_dropped) {
        e->warnings = jg_xrealloc(e->warnings, (e->n_warnings + 1) * sizeof *e->warnings);
        e->warnings[e->n_warnings++] =
            jg_xasprintf("%s: %zu more warning%s not shown", r->file, r->warn_dropped,
                         r->warn_dropped == 1 ? "" : "s");
    }
    free(r->err_pos);
    free(r->warn_pos);
    r->err_pos = r->warn_pos = NULL;
    r->err_pos_cap = r->warn_pos_cap = 0;
    free(r->pair_base);
    free(r->dup_of);
    r->pair_base = NULL;
    r->dup_of = NULL;
    r->dup_doc = NULL;
    return e->count > r->err0;
}

/* ---- nodes ------------------------------------------------------------- */

yaml_node_t *jg_spec_node(jg_spec_reader_t *r, int id)
{
    return yaml_document_get_node(r->doc, id);
}

bool jg_spec_is_null(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = JG_SPEC_SVAL(n);
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

/* What a node is, for "expected X, got Y". */
const char *jg_spec_kind(const yaml_node_t *n)
{
    if (!n)
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        return jg_spec_is_null(n) ? "null" : "a scalar";
    default:
        return "nothing";
    }
}

/* A short, one-line rendering of a scalar for messages: newlines shown as \n,
 * cut after about 60 bytes, never inside a UTF-8 sequence (messages travel
 * as JSON, which must stay valid UTF-8).  size must be at least 80. */
const char *jg_spec_show(const char *v, char *buf, size_t size)
{
    size_t o = 0;
    for (const char *s = v; *s && o + 8 < size; s++) {
        if (*s == '\n') {
            if (s[1] == '\0')
                break;
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *s;
        }
        bool continuation = ((unsigned char)s[1] & 0xc0) == 0x80;
        if (o >= 60 && s[1] && !continuation) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* The text of a scalar node, or NULL (with an error) when n is not one or is null. */
const char *jg_spec_scalar(jg_spec_reader_t *r, const yaml_node_t *n, const char *field,
                           const char *expected)
{
    if (!n || n->type != YAML_SCALAR_NODE || jg_spec_is_null(n)) {
        jg_spec_err(r, n, field, "expected %s, got %s", expected, jg_spec_kind(n));
        return NULL;
    }
    if (strlen(JG_SPEC_SVAL(n)) != n->data.scalar.length) {
        jg_spec_err(r, n, field, "the value contains a NUL character");
        return NULL;
    }
    return JG_SPEC_SVAL(n);
}

/* ---- words ------------------------------------------------------------- */

/* Edit distance of a and b when it is at most 2, else SIZE_MAX. */
static size_t levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64 || la > lb + 2 || lb > la + 2)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
        size_t low = row[0];
        for (size_t j = 1; j <= lb; j++)
            low = row[j] < low ? row[j] : low;
        if (low > 2)
            return SIZE_MAX;    /* only distances up to 2 are ever used */
    }
    return row[lb];
}

/* The candidate the user probably meant, or NULL: a case-insensitive match, a
 * known alias, an abbreviation (4+ letters), or the closest within edit distance 2. */
const char *jg_spec_suggest(const char *word, const char *const *cands, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(word, cands[i]))
            return cands[i];
    for (size_t a = 0; a < sizeof key_aliases / sizeof key_aliases[0]; a++) {
        if (strcasecmp(word, key_aliases[a].alias))
            continue;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(cands[i], key_aliases[a].key))
                return cands[i];
    }
    const char *best = NULL;
    size_t best_d = 3, wl = strlen(word);
    for (size_t i = 0; wl >= 4 && i < n; i++)      /* an abbreviation: max_restart */
        if (!strncasecmp(cands[i], word, wl))
            return cands[i];
    for (size_t i = 0; i < n; i++) {
        size_t d = levenshtein(word, cands[i]);
        if (d < best_d && d < wl) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}

size_t jg_spec_list_len(const char *const *l)
{
    size_t n = 0;
    while (l[n])
        n++;
    return n;
}

static bool in_list(const char *w, const char *const *l)
{
    for (; *l; l++)
        if (!strcmp(w, *l))
            return true;
    return false;
}

/* Why s is not a DNS label, or NULL when it is one. */
const char *jg_spec_dns_problem(const char *s, char *buf, size_t size)
{
    size_t len = strlen(s);
    if (len == 0)
        return "it is empty";
    if (len > 63) {
        snprintf(buf, size, "it is %zu characters long (a DNS label holds at most 63)", len);
        return buf;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')
            continue;
        if (ch >= 'A' && ch <= 'Z')
            snprintf(buf, size, "it contains uppercase letter '%c' (use lowercase letters, "
                     "digits and '-')", ch);
        else if (ch == '_' || ch == '.')
            snprintf(buf, size, "it contains '%c' (only lowercase letters, digits and '-' "
                     "are allowed; use '-')", ch);
        else if (ch > 0x20 && ch < 0x7f)
            snprintf(buf, size, "it contains '%c' (only lowercase letters, digits and '-' "
                     "are allowed)", ch);
        else
            snprintf(buf, size, "it contains the byte 0x%02x (only lowercase letters, digits "
                     "and '-' are allowed)", ch);
        return buf;
    }
    if (s[0] == '-')
        return "it must start with a lowercase letter or digit, not '-'";
    if (s[len - 1] == '-')
        return "it must end with a lowercase letter or digit, not '-'";
    return NULL;
}

bool jg_spec_is_dns_label(const char *s)
{
    char buf[128];
    return s && !jg_spec_dns_problem(s, buf, sizeof buf);
}

/* Why infra is not `local`, `kubernetes` or `kubernetes/<context>`; NULL if it is. */
static const char *infra_problem(const char *s, char *buf, size_t size)
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

/* ---- numbers ----------------------------------------------------------- */

/* Parses [0-9]+(.[0-9]*)? | .[0-9]+ at s; returns the length consumed (0: none). */
static size_t scan_decimal(const char *s, double *out)
{
    size_t i = 0, digits = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (!digits)
        return 0;
    char tmp[64];
    if (i >= sizeof tmp)
        return 0;
    memcpy(tmp, s, i);
    tmp[i] = '\0';
    *out = strtod(tmp, NULL);
    return i;
}

/* Integer text with an optional sign: 0 ok, -1 not an integer, -2 outside lo..hi. */
int jg_spec_parse_int(const char *s, long long lo, long long hi, long long *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi)
        return -2;
    *out = v;
    return 0;
}

/* `4`, `4+`, `0.5`: a positive count, optionally "at least". */
bool jg_spec_parse_cpus(const char *s, jg_amount_t *a)
{
    double v;
    size_t n = scan_decimal(s, &v);
    if (!n)
        return false;
    bool plus = s[n] == '+';
    if (s[n + plus] != '\0' || !(v > 0))
        return false;
    *a = (jg_amount_t){.set = true, .value = v, .at_least = plus};
    return true;
}

/* `8`, `8+`, `8GB`, `512MB`, `1TB`, `16GiB`, `32GB+`: stored in GiB.  Units are
 * binary, as in SkyPilot (GB means 2^30 bytes), and case-insensitive. */
bool jg_spec_parse_memory(const char *s, jg_amount_t *a)
{
    static const struct {
        const char *unit;
        double gib;
    } units[] = {
        {"", 1}, {"b", 1.0 / (1 << 30)}, {"k", 1.0 / (1 << 20)}, {"kb", 1.0 / (1 << 20)},
        {"kib", 1.0 / (1 << 20)}, {"ki", 1.0 / (1 << 20)}, {"m", 1.0 / 1024},
        {"mb", 1.0 / 1024}, {"mib", 1.0 / 1024}, {"mi", 1.0 / 1024}, {"g", 1}, {"gb", 1},
        {"gib", 1}, {"gi", 1}, {"t", 1024}, {"tb", 1024}, {"tib", 1024}, {"ti", 1024},
        {"p", 1024.0 * 1024}, {"pb", 1024.0 * 1024}, {"pib", 1024.0 * 1024},
        {"pi", 1024.0 * 1024},
    };
    double v;
    size_t n = scan_decimal(s, &v);
    if (!n)
        return false;
    const char *unit = s + n;
    size_t ul = strlen(unit);
    bool plus = ul && unit[ul - 1] == '+';
    if (plus)
        ul--;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].unit) == ul && !strncasecmp(unit, units[i].unit, ul)) {
            double gib = v * units[i].gib;
            if (!(gib > 0))
                return false;
            *a = (jg_amount_t){.set = true, .value = gib, .at_least = plus};
            return true;
        }
    }
    return false;
}

/* `30s`, `1m`, `2h`, `500ms`, `45` (seconds): a duration >= 0. */
bool jg_spec_parse_duration(const char *s, double *secs)
{
    double v;
    size_t n = scan_decimal(s, &v);
    if (!n)
        return false;
    const char *u = s + n;
    double mult;
    if (!*u || !strcmp(u, "s"))
        mult = 1;
    else if (!strcmp(u, "ms"))
        mult = 0.001;
    else if (!strcmp(u, "m"))
        mult = 60;
    else if (!strcmp(u, "h"))
        mult = 3600;
    else
        return false;
    *secs = v * mult;
    return true;
}

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

/* ---- hashing ----------------------------------------------------------- */

/* FNV-1a from a per-process random basis, then a finaliser so the high bits
 * reach the low ones a table uses: keys chosen to collide in one run's
 * tables (which would make lookups quadratic) cannot be computed ahead. */
static size_t hash_bytes(const void *data, size_t len)
{
    static uint64_t seed;
    if (!seed) {
        uint64_t r = 0;
        if (getentropy(&r, sizeof r) < 0)
            r = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
        seed = r | 1;
    }
    const unsigned char *s = data;
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h;
}

static size_t pow2_at_least(size_t n)
{
    size_t cap = 16;
    while (cap < n)
        cap *= 2;
    return cap;
}

/* A string -> int map by open addressing; the strings are borrowed. */
typedef struct {
    const char **keys;
    size_t *lens;
    int *vals;
    size_t cap, n;
} strmap_t;

static int *strmap_slot(strmap_t *m, const char *key, size_t len, bool insert)
{
    if (insert && (m->n + 1) * 2 > m->cap) {
        strmap_t bigger = {.cap = m->cap ? m->cap * 2 : 64};
        bigger.keys = jg_xcalloc(bigger.cap, sizeof *bigger.keys);
        bigger.lens = jg_xcalloc(bigger.cap, sizeof *bigger.lens);
        bigger.vals = jg_xcalloc(bigger.cap, sizeof *bigger.vals);
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                *strmap_slot(&bigger, m->keys[i], m->lens[i], true) = m->vals[i];
        free(m->keys);
        free(m->lens);
        free(m->vals);
        *m = bigger;
    }
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash_bytes(key, len) & mask;; i = (i + 1) & mask) {
        if (!m->keys[i]) {
            if (!insert)
                return NULL;
            m->keys[i] = key;
            m->lens[i] = len;
            m->n++;
            return &m->vals[i];
        }
        if (m->lens[i] == len && !memcmp(m->keys[i], key, len))
            return &m->vals[i];
    }
}

static void strmap_free(strmap_t *m)
{
    free(m->keys);
    free(m->lens);
    free(m->vals);
    *m = (strmap_t){0};
}

/* ---- duplicate keys ------------------------------------------------------ */

/* One pass over every mapping of r->doc: for each pair whose key repeats an
 * earlier scalar key of the same mapping, dup_of holds that key's node id.
 * Linear in the document (a per-mapping table, reused by generation). */
static void find_duplicate_keys(jg_spec_reader_t *r)
{
    yaml_document_t *doc = r->doc;
    size_t n_nodes = (size_t)(doc->nodes.top - doc->nodes.start), pairs = 0, widest = 0;
    free(r->pair_base);
    free(r->dup_of);
    r->pair_base = jg_xcalloc(n_nodes ? n_nodes : 1, sizeof *r->pair_base);
    for (size_t i = 0; i < n_nodes; i++) {
        yaml_node_t *n = &doc->nodes.start[i];
        if (n->type != YAML_MAPPING_NODE)
            continue;
        size_t k = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        r->pair_base[i] = pairs;
        pairs += k;
        widest = k > widest ? k : widest;
    }
    r->dup_of = jg_xcalloc(pairs ? pairs : 1, sizeof *r->dup_of);
    size_t cap = pow2_at_least(widest * 2);
    int *slot = jg_xcalloc(cap, sizeof *slot);          /* pair index + 1 */
    unsigned *gen = jg_xcalloc(cap, sizeof *gen);
    unsigned g = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        yaml_node_t *n = &doc->nodes.start[i];
        if (n->type != YAML_MAPPING_NODE)
            continue;
        yaml_node_pair_t *first = n->data.mapping.pairs.start;
        size_t k = (size_t)(n->data.mapping.pairs.top - first);
        if (k < 2)
            continue;
        size_t mask = pow2_at_least(k * 2) - 1;
        g++;
        for (size_t j = 0; j < k; j++) {
            yaml_node_t *key = yaml_document_get_node(doc, first[j].key);
            if (!key || key->type != YAML_SCALAR_NODE)
                continue;
            const char *v = (const char *)key->data.scalar.value;
            size_t len = key->data.scalar.length;
            for (size_t h = hash_bytes(v, len) & mask;; h = (h + 1) & mask) {
                if (gen[h] != g) {
                    gen[h] = g;
                    slot[h] = (int)j + 1;
                    break;
                }
                yaml_node_t *other = yaml_document_get_node(doc, first[slot[h] - 1].key);
                if (other->data.scalar.length == len && !memcmp(other->data.scalar.value, v, len)) {
                    r->dup_of[r->pair_base[i] + j] = first[slot[h] - 1].key;
                    break;
                }
            }
        }
    }
    free(slot);
    free(gen);
    r->dup_doc = doc;
}

/* ---- loading documents -------------------------------------------------- */

/* A size for limit messages: "512 KiB" when exact, else "524289 bytes". */
static const char *show_bytes(size_t n, char *buf, size_t size)
{
    if (n >= 1024 * 1024 && n % (1024 * 1024) == 0)
        snprintf(buf, size, "%zu MiB", n / (1024 * 1024));
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(buf, size, "%zu KiB", n / 1024);
    else
        snprintf(buf, size, "%zu bytes", n);
    return buf;
}

/* Line and column of byte offset `at` of text. */
static jg_spec_pos_t offset_pos(const char *text, size_t len, size_t at)
{
    jg_spec_pos_t p = {1, 1};
    for (size_t i = 0; i < at && i < len; i++) {
        if (text[i] == '\n')
            p.line++, p.col = 1;
        else
            p.col++;
    }
    return p;
}

bool jg_spec_check_size(jg_spec_reader_t *r, const char *text, size_t len)
{
    size_t max = r->limits.max_bytes;
    if (len <= max)
        return true;
    char b[64];
    jg_spec_err_at(r, offset_pos(text, len, max), "size",
                   "the YAML is %zu bytes, over the limit of %s (spec_limits.max_bytes = %zu); "
                   "the limit is passed here", len, show_bytes(max, b, sizeof b), max);
    return false;
}

/* libyaml keeps a document's %TAG directives in a list it scans for each new
 * one and for each tag, which is quadratic in their number; a JobGroup needs
 * none, so a few are allowed and more refused before libyaml sees them.  A
 * directive is a line starting with '%'; such a line inside a multi-line
 * string counts too, which a real file never comes near. */
#define MAX_DIRECTIVES 16

static bool check_directives(jg_spec_reader_t *r, const char *text, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '%' && (i == 0 || text[i - 1] == '\n') && ++n > MAX_DIRECTIVES) {
            jg_spec_err_at(r, offset_pos(text, len, i), "directives",
                           "more than %d lines start with '%%' (YAML directives such as %%TAG; "
                           "a JobGroup needs none)", MAX_DIRECTIVES);
            return false;
        }
        const char *nl = memchr(text + i, '\n', len - i);
        if (!nl)
            break;
        i = (size_t)(nl - text);
    }
    return true;
}

/* A collection being loaded. */
typedef struct {
    int id;
    bool mapping;
    bool await_value;       /* mapping: a key was read, its value comes next */
    int key;                /* mapping: the last key read (node id) */
    size_t n;               /* keys (mapping) or items (list) so far */
    size_t weight;          /* bytes of its children, aliases expanded */
} frame_t;

typedef struct {
    jg_spec_reader_t *r;
    yaml_document_t *doc;
    frame_t *stack;
    int depth;
    strmap_t anchors;       /* anchor name -> node id, this document */
    size_t *weight;         /* per node id - 1, once complete; 0 while open */
    size_t weight_cap;
    size_t text_len;
} loader_t;

/* The key path of the collection being loaded ("envs", "a[3].b"), for
 * messages; `self`: the message is about the innermost collection itself,
 * not about its current child.  Cut at about 60 bytes. */
static char *loader_path(loader_t *l, bool self)
{
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        abort();
    for (int i = 0; i < l->depth && ftell(f) < 60; i++) {
        const frame_t *fr = &l->stack[i];
        bool top = i == l->depth - 1;
        if (self && top)
            break;
        /* Below the top we are inside the value of the frame's last key or
         * item; at the top, inside a key's value only if one is awaited. */
        if (fr->mapping && fr->key && (!top || fr->await_value)) {
            yaml_node_t *k = yaml_document_get_node(l->doc, fr->key);
            char buf[80];
            const char *name = k && k->type == YAML_SCALAR_NODE
                                   ? jg_spec_show(JG_SPEC_SVAL(k), buf, sizeof buf) : "?";
            fprintf(f, "%s%s", ftell(f) ? "." : "", name);
        } else if (!fr->mapping) {
            fprintf(f, "[%zu]", top ? fr->n : fr->n - 1);
        }
    }
    if (ftell(f) >= 60)
        fputs("...", f);
    if (fclose(f) != 0 || !out)
        abort();
    return out;
}

static void loader_err(loader_t *l, yaml_mark_t at, bool self, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void loader_err(loader_t *l, yaml_mark_t at, bool self, const char *fmt, ...)
{
    char *path = loader_path(l, self);
    va_list ap;
    va_start(ap, fmt);
    vreport(l->r, false, (jg_spec_pos_t){(int)at.line + 1, (int)at.column + 1},
            *path ? path : "document", fmt, ap);
    va_end(ap);
    free(path);
}

static void set_weight(loader_t *l, int id, size_t w)
{
    size_t i = (size_t)id - 1;
    if (i >= l->weight_cap) {
        size_t cap = pow2_at_least(i + 1);
        l->weight = jg_xrealloc(l->weight, cap * sizeof *l->weight);
        memset(l->weight + l->weight_cap, 0, (cap - l->weight_cap) * sizeof *l->weight);
        l->weight_cap = cap;
    }
    l->weight[i] = w;
}

/* Counts node `id` (new or aliased, of `weight` bytes) into the collection
 * being loaded, checking the per-collection and stream-wide counts. */
static bool loader_attach(loader_t *l, int id, size_t weight, yaml_mark_t at)
{
    if (l->depth == 0)
        return true;        /* the root */
    frame_t *fr = &l->stack[l->depth - 1];
    const jg_spec_limits_t *lim = &l->r->limits;
    fr->weight += weight;
    if (fr->mapping && fr->await_value) {
        if (!yaml_document_append_mapping_pair(l->doc, fr->id, fr->key, id))
            abort();
        fr->await_value = false;
        return true;
    }
    if (fr->n >= (size_t)lim->max_keys_per_mapping) {
        loader_err(l, at, true, "more than %d %s in one %s, the limit "
                   "(spec_limits.max_keys_per_mapping)", lim->max_keys_per_mapping,
                   fr->mapping ? "keys" : "items", fr->mapping ? "mapping" : "list");
        return false;
    }
    if (l->r->keys_seen >= (size_t)lim->max_keys) {
        loader_err(l, at, true, "more than %d keys and list items in the whole YAML, the "
                   "limit (spec_limits.max_keys)", lim->max_keys);
        return false;
    }
    l->r->keys_seen++;
    fr->n++;
    if (fr->mapping) {
        fr->key = id;
        fr->await_value = true;
    } else if (!yaml_document_append_sequence_item(l->doc, fr->id, id)) {
        abort();
    }
    return true;
}

/* Adds node to doc and returns its id.  As libyaml's own loader does, the
 * node takes the event's strings rather than copies (yaml_document_add_*
 * would copy the value, check its UTF-8 again and duplicate a default tag:
 * three allocations a node, most of a parse's time).  Tags stay NULL: the
 * spec module reads no tags.  doc->nodes is grown with realloc, the
 * allocator libyaml frees it with. */
static int push_node(yaml_document_t *doc, const yaml_node_t *node)
{
    if (doc->nodes.top == doc->nodes.end) {
        size_t n = (size_t)(doc->nodes.end - doc->nodes.start), cap = n ? n * 2 : 16;
        yaml_node_t *p = jg_xrealloc(doc->nodes.start, cap * sizeof *p);
        doc->nodes.start = p;
        doc->nodes.top = p + n;
        doc->nodes.end = p + cap;
    }
    *doc->nodes.top++ = *node;
    return (int)(doc->nodes.top - doc->nodes.start);
}

/* A new empty mapping or sequence node (its item stack starts small). */
static int push_collection(yaml_document_t *doc, bool mapping, int style, yaml_mark_t start)
{
    yaml_node_t n = {.type = mapping ? YAML_MAPPING_NODE : YAML_SEQUENCE_NODE,
                     .start_mark = start, .end_mark = start};
    if (mapping) {
        n.data.mapping.pairs.start = jg_xmalloc(8 * sizeof(yaml_node_pair_t));
        n.data.mapping.pairs.top = n.data.mapping.pairs.start;
        n.data.mapping.pairs.end = n.data.mapping.pairs.start + 8;
        n.data.mapping.style = (yaml_mapping_style_t)style;
    } else {
        n.data.sequence.items.start = jg_xmalloc(8 * sizeof(yaml_node_item_t));
        n.data.sequence.items.top = n.data.sequence.items.start;
        n.data.sequence.items.end = n.data.sequence.items.start + 8;
        n.data.sequence.style = (yaml_sequence_style_t)style;
    }
    return push_node(doc, &n);
}

/* Anchors are looked up by hashing (libyaml's own loader scans a list, which
 * is quadratic in the number of anchors).  The map owns its copies of the
 * names (loader_free).  A name defined again means the later node, as YAML
 * says. */
static void loader_anchor(loader_t *l, const yaml_char_t *anchor, int id)
{
    if (!anchor)
        return;
    char *name = jg_xstrdup((const char *)anchor);
    int *v = strmap_slot(&l->anchors, name, strlen(name), true);
    if (*v)
        free(name);         /* the map keeps the first copy of the name */
    *v = id;
}

static void loader_free(loader_t *l)
{
    for (size_t i = 0; i < l->anchors.cap; i++)
        free((char *)l->anchors.keys[i]);
    strmap_free(&l->anchors);
    free(l->weight);
    free(l->stack);
}

/* Loads one document's nodes from the events of parser (after its
 * DOCUMENT-START): 1 done, -1 error recorded. */
static int load_nodes(loader_t *l, yaml_parser_t *parser)
{
    const jg_spec_limits_t *lim = &l->r->limits;
    char b[64];
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev))
            return -2;      /* syntax error: the caller reports it */
        int rc = 0, id = 0;
        switch (ev.type) {
        case YAML_DOCUMENT_END_EVENT:
            l->doc->end_implicit = ev.data.document_end.implicit;
            l->doc->end_mark = ev.end_mark;
            rc = 1;
            break;
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            int *v = strmap_slot(&l->anchors, name, strlen(name), false);
            char buf[80];
            if (!v) {
                loader_err(l, ev.start_mark, false, "found undefined alias *%s (no anchor "
                           "&%s comes before it)", jg_spec_show(name, buf, sizeof buf), buf);
                rc = -1;
                break;
            }
            size_t w = (size_t)*v - 1 < l->weight_cap ? l->weight[*v - 1] : 0;
            if (w == 0) {
                loader_err(l, ev.start_mark, false, "alias *%s refers to a node that "
                           "contains it", jg_spec_show(name, buf, sizeof buf));
                rc = -1;
                break;
            }
            l->r->alias_bytes += w;
            if (l->text_len + l->r->alias_bytes > lim->max_bytes) {
                loader_err(l, ev.start_mark, false, "with its aliases expanded the YAML "
                           "would be over %zu bytes, the limit of %s (spec_limits.max_bytes)",
                           l->text_len + l->r->alias_bytes,
                           show_bytes(lim->max_bytes, b, sizeof b));
                rc = -1;
                break;
            }
            if (!loader_attach(l, *v, w, ev.start_mark))
                rc = -1;
            break;
        }
        case YAML_SCALAR_EVENT: {
            size_t len = ev.data.scalar.length;
            if (len > lim->max_string) {
                loader_err(l, ev.start_mark, false, "a string of %zu bytes, over the limit "
                           "of %s (spec_limits.max_string = %zu)", len,
                           show_bytes(lim->max_string, b, sizeof b), lim->max_string);
                rc = -1;
                break;
            }
            yaml_node_t n = {.type = YAML_SCALAR_NODE, .start_mark = ev.start_mark,
                             .end_mark = ev.end_mark};
            n.data.scalar.value = ev.data.scalar.value;     /* taken from the event */
            n.data.scalar.length = len;
            n.data.scalar.style = ev.data.scalar.style;
            ev.data.scalar.value = NULL;
            id = push_node(l->doc, &n);
            set_weight(l, id, len + 1);
            loader_anchor(l, ev.data.scalar.anchor, id);
            if (!loader_attach(l, id, len + 1, ev.start_mark))
                rc = -1;
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            bool mapping = ev.type == YAML_MAPPING_START_EVENT;
            if (l->depth >= lim->max_depth) {
                loader_err(l, ev.start_mark, false, "nested more than %d levels deep, the "
                           "limit (spec_limits.max_depth)", lim->max_depth);
                rc = -1;
                break;
            }
            id = push_collection(l->doc, mapping,
                                 mapping ? (int)ev.data.mapping_start.style
                                         : (int)ev.data.sequence_start.style, ev.start_mark);
            set_weight(l, id, 0);       /* open: an alias to it is a cycle */
            loader_anchor(l, mapping ? ev.data.mapping_start.anchor
                                     : ev.data.sequence_start.anchor, id);
            if (!loader_attach(l, id, 0, ev.start_mark)) {
                rc = -1;
                break;
            }
            l->stack[l->depth++] = (frame_t){.id = id, .mapping = mapping};
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            frame_t *fr = &l->stack[--l->depth];
            yaml_node_t *n = yaml_document_get_node(l->doc, fr->id);
            n->end_mark = ev.end_mark;
            size_t w = fr->weight + 1;
            set_weight(l, fr->id, w);
            if (l->depth > 0)
                l->stack[l->depth - 1].weight += w;
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc)
            return rc;
    }
}

/* The next document of the stream into doc: 1 loaded, 0 end, -2 syntax
 * error (unreported), -1 limit passed (reported). */
static int load_document(jg_spec_reader_t *r, yaml_parser_t *parser, yaml_document_t *doc,
                         size_t text_len)
{
    yaml_event_t ev;
    for (;;) {
        if (!yaml_parser_parse(parser, &ev))
            return -2;
        if (ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_NO_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT)
            break;
        yaml_event_delete(&ev);     /* STREAM-START */
    }
    if (!yaml_document_initialize(doc, NULL, NULL, NULL, ev.data.document_start.implicit, 1))
        abort();
    doc->start_mark = ev.start_mark;
    yaml_event_delete(&ev);
    loader_t l = {.r = r, .doc = doc, .text_len = text_len};
    l.stack = jg_xcalloc((size_t)(r->limits.max_depth > 0 ? r->limits.max_depth : 1),
                         sizeof *l.stack);
    int rc = load_nodes(&l, parser);
    loader_free(&l);
    if (rc < 0) {
        yaml_document_delete(doc);
        return rc;
    }
    return 1;
}

/* ---- mappings ---------------------------------------------------------- */

/* Iterates a mapping's pairs with checks every mapping needs: keys are
 * scalars, no key appears twice.  Returns the key text or NULL to skip. */
const char *jg_spec_key(jg_spec_reader_t *r, const yaml_node_t *map, const yaml_node_pair_t *p,
                        const char *field)
{
    yaml_node_t *k = jg_spec_node(r, p->key);
    if (!k || k->type != YAML_SCALAR_NODE || jg_spec_is_null(k)) {
        jg_spec_err(r, k, field, "keys must be strings, got %s", jg_spec_kind(k));
        return NULL;
    }
    const char *key = JG_SPEC_SVAL(k);
    if (r->dup_doc != r->doc)
        find_duplicate_keys(r);
    size_t m = (size_t)(map - r->doc->nodes.start);
    int first_id = r->dup_of[r->pair_base[m] + (size_t)(p - map->data.mapping.pairs.start)];
    if (first_id) {
        char buf[80];
        jg_spec_pos_t first = node_pos(jg_spec_node(r, first_id));
        jg_spec_err(r, k, field, "duplicate key '%s' (first given at line %d, column %d)",
                    jg_spec_show(key, buf, sizeof buf), first.line, first.col);
        return NULL;
    }
    return key;
}

/* "unknown key 'x' (did you mean 'y'?)" */
void jg_spec_unknown_key(jg_spec_reader_t *r, const yaml_node_t *k, const char *field,
                         const char *key, const char *const *cands)
{
    char buf[80], kbuf[80];
    if (!field)         /* at the top of a document the key is the field */
        field = jg_spec_show(key, buf, sizeof buf);
    if (jg_spec_reader_full(r)) {   /* counted only: spare the suggestion */
        jg_spec_err(r, k, field, "unknown key");
        return;
    }
    size_t n = jg_spec_list_len(cands);
    const char *meant = NULL;
    if (r->suggest_left >= n) {
        r->suggest_left -= n;
        meant = jg_spec_suggest(key, cands, n);
    }
    if (meant)
        jg_spec_err(r, k, field, "unknown key '%s' (did you mean '%s'?)",
                    jg_spec_show(key, kbuf, sizeof kbuf), meant);
    else
        jg_spec_err(r, k, field, "unknown key '%s'", jg_spec_show(key, kbuf, sizeof kbuf));
}

char *jg_spec_join_field(const char *a, const char *b)
{
    return a && *a ? jg_xasprintf("%s.%s", a, b) : jg_xstrdup(b);
}

/* ---- job pieces -------------------------------------------------------- */

static bool check_dns_name(pctx_t *c, const yaml_node_t *n, const char *what, const char *v)
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

bool jg_spec_accel_name_ok(const char *name)
{
    if (!*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
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
        } else if (strchr(count, '.') && *count && scan_decimal(count, &d) == strlen(count))
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
            const char *bad = s ? infra_problem(s, why, sizeof why) : NULL;
            if (bad)
                jg_spec_err(&c->r, val, "resources.infra", "%s", bad);
            else if (s)
                job->infra = jg_xstrdup(s);
        } else if (!strcmp(key, "job_recovery")) {
            if (*recovery_key)
                jg_spec_err(&c->r, k, "resources.job_recovery",
                            "job_recovery is given twice (also at "
                            "line %d); keep one",
                            node_pos(*recovery_key).line);
            else {
                *recovery_key = k;
                parse_recovery(c, val, "resources.job_recovery", &job->recovery);
            }
        } else if (in_list(key, ignored_resource_keys)) {
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

static void kv_push(jg_kv_t **kv, size_t *n, const char *k, const char *v)
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
            kv_push(&job->envs, &job->n_envs, key, JG_SPEC_SVAL(val));
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
                kv_push(&job->envs, &job->n_envs, key, s);
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
                kv_push(&job->volumes, &job->n_volumes, key, s);
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
    return hash_bytes(s, strlen(s));
}

static long index_find(const pctx_t *c, const char *name)
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

static void free_job(jg_job_spec_t *j)
{
    free(j->name);
    free(j->accel.name);
    free(j->infra);
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

static bool has_any_key(pctx_t *c, const yaml_node_t *map, const char *const *keys)
{
    if (map->type != YAML_MAPPING_NODE)
        return false;
    JG_SPEC_FOR_PAIRS(map, p) {
        yaml_node_t *k = jg_spec_node(&c->r, p->key);
        if (k && k->type == YAML_SCALAR_NODE && in_list(JG_SPEC_SVAL(k), keys))
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
        if (k && k->type == YAML_SCALAR_NODE && in_list(JG_SPEC_SVAL(k), keys))
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

static void parse_job(pctx_t *c, yaml_node_t *root)
{
    char buf[80];
    jg_job_spec_t job = {0};
    job.num_nodes = 1;
    job.line = node_pos(root).line;
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
                name_ok = check_dns_name(c, v, "job", s);
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
                            node_pos(recovery_key).line);
            else {
                recovery_key = k;
                parse_recovery(c, v, "job_recovery", &job.recovery);
            }
        } else if (!strcmp(key, "file_mounts")) {
            jg_spec_err(&c->r, k, "file_mounts", "not supported (use workdir or volumes)");
        } else if (in_list(key, header_only_keys)) {
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
        free_job(&job);
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
    long prev = index_find(c, job.name);
    if (prev >= 0) {
        jg_spec_err(&c->r, name_node, "name", "duplicate job name '%s' (first defined at %s:%d)",
                    job.name, c->r.file, c->spec->jobs[prev].line);
        free_job(&job);
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

static void add_ref(pctx_t *c, const char *name, const yaml_node_t *n, const char *field)
{
    if (c->n_refs == c->refs_cap) {
        c->refs_cap = c->refs_cap ? c->refs_cap * 2 : 8;
        c->refs = jg_xrealloc(c->refs, c->refs_cap * sizeof *c->refs);
    }
    c->refs[c->n_refs++] = (ref_t){name, node_pos(n), field};
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
    strmap_t listed = {0};          /* duplicates by hashing: the list may be long */
    for (size_t i = 0; i < n; i++) {
        const char *name = jg_spec_scalar(&c->r, items[i], "primary_tasks", "a job name");
        if (!name)
            continue;
        int *seen = strmap_slot(&listed, name, strlen(name), true);     /* names borrowed */
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
    strmap_free(&listed);
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
    c->delay_pos = node_pos(v);
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
            kv_push(&s->termination_delays, &s->n_termination_delays, key, txt);
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
    c->header_pos = node_pos(root);
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
                check_dns_name(c, v, "JobGroup", n);
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
        if (index_find(c, r->name) >= 0)
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
        vreport_at(&c->r, true, c->delay_pos, "termination_delay",
                   "has no effect without primary_tasks (it is the grace auxiliary jobs get "
                   "once the primary tasks end)");
}

/* Loads the next non-empty document (spec_yaml.h). */
int jg_spec_next_doc(jg_spec_reader_t *r, yaml_parser_t *parser, yaml_document_t *doc,
                     const char *text, size_t len)
{
    if (r->dup_doc == doc)
        r->dup_doc = NULL;      /* its duplicate table is about to be stale */
    for (;;) {
        int loaded = load_document(r, parser, doc, len);
        if (loaded == -1)
            return -1;
        if (loaded == 0)
            return 0;
        if (loaded == -2) {
            jg_spec_pos_t p = {(int)parser->problem_mark.line + 1,
                               (int)parser->problem_mark.column + 1};
            const char *problem = parser->problem ? parser->problem : "invalid YAML";
            if (parser->error == YAML_READER_ERROR) {
                p = (jg_spec_pos_t){1, 1};
                for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
                    if (text[i] == '\n')
                        p.line++, p.col = 1;
                    else
                        p.col++;
                }
                jg_spec_err_at(r, p, NULL, "YAML syntax error: %s (byte 0x%02x at offset %zu)",
                               parser->problem ? parser->problem : "unreadable input",
                               (unsigned)parser->problem_value & 0xff, parser->problem_offset);
            } else if (parser->error == YAML_MEMORY_ERROR) {
                jg_spec_err_at(r, (jg_spec_pos_t){0, 0}, NULL, "out of memory reading the YAML");
            } else if (parser->context) {
                jg_spec_err_at(r, p, NULL,
                               "YAML syntax error: %s %s started at line %d, "
                               "column %d",
                               problem, parser->context, (int)parser->context_mark.line + 1,
                               (int)parser->context_mark.column + 1);
            } else {
                jg_spec_err_at(r, p, NULL, "YAML syntax error: %s", problem);
            }
            return -1;
        }
        yaml_node_t *root = yaml_document_get_root_node(doc);
        if (root && !jg_spec_is_null(root))
            return 1;
        yaml_document_delete(doc);   /* an empty document (`---` alone): skip it */
    }
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
    if (!jg_spec_check_size(&c.r, text, len) || !check_directives(&c.r, text, len)) {
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
            has_any_key(&c, first, header_only_keys)) {
            parse_header(&c, first);
            jg_spec_err_at(&c.r, c.header_pos, NULL,
                           "JobGroup '%s' has no jobs (add one document per "
                           "job after the header)",
                           spec->name ? spec->name : "");
        } else {
            parse_job(&c, first);
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
    parse_job(&c, yaml_document_get_root_node(&docs[1]));
    yaml_document_delete(&docs[1]);
    live[1] = false;
    int r;
    /* Past the group's node bound the rest of the stream is not read: that
     * bounds the jobs, so the work of every later check. */
    while (!c.group_nodes_reported &&
           (r = jg_spec_next_doc(&c.r, &parser, &docs[0], text, len)) == 1) {
        c.r.doc = &docs[0];
        parse_job(&c, yaml_document_get_root_node(&docs[0]));
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
    return spec;
}

int jg_spec_read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16384;
            buf = jg_xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int saved = errno;
        fclose(f);
        free(buf);
        errno = saved;
        return -1;
    }
    fclose(f);
    *text = buf;
    *len = n;
    return 0;
}

/* One error of a file that cannot be used at all. */
static void file_error(jg_spec_errors_t *errs, char *msg)
{
    errs->messages = jg_xrealloc(errs->messages, (errs->count + 1) * sizeof(char *));
    errs->messages[errs->count++] = msg;
}

char *jg_spec_read_bounded(const char *path, const jg_spec_limits_t *limits, size_t *len,
                           jg_spec_errors_t *errs)
{
    jg_spec_limits_t lim = limits ? *limits : jg_spec_limits_default();
    jg_spec_errors_t scratch = {0};
    if (!errs)
        errs = &scratch;
    /* No blocking open of a FIFO, and only regular files are read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    char *text = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        file_error(errs, jg_xasprintf("%s: cannot read: %s", path, strerror(errno)));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        file_error(errs, jg_xasprintf("%s: cannot read: not a regular file", path));
        goto done;
    }
    size_t want = lim.max_bytes + 1, n = 0;
    text = jg_xmalloc(want + 1);
    while (n < want) {
        ssize_t got = read(fd, text + n, want - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            file_error(errs, jg_xasprintf("%s: cannot read: %s", path, strerror(errno)));
            free(text);
            text = NULL;
            goto done;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    text[n] = '\0';
    if (n > lim.max_bytes) {
        /* The same message as a parse of the whole text gives, with the
         * file's real size where it has one. */
        jg_spec_reader_t r;
        jg_spec_reader_init(&r, path, errs);
        r.limits = lim;
        size_t size = (size_t)st.st_size > n ? (size_t)st.st_size : n;
        char b[64];
        jg_spec_err_at(&r, offset_pos(text, n, lim.max_bytes), "size",
                       "the YAML is %s%zu bytes, over the limit of %s (spec_limits.max_bytes "
                       "= %zu); the limit is passed here",
                       (size_t)st.st_size > lim.max_bytes ? "" : "more than ", size,
                       show_bytes(lim.max_bytes, b, sizeof b), lim.max_bytes);
        jg_spec_reader_done(&r);
        free(text);
        text = NULL;
        goto done;
    }
    *len = n;
done:
    if (fd >= 0)
        close(fd);
    if (errs == &scratch)
        jg_spec_errors_free(&scratch);
    return text;
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

void jg_spec_errors_free(jg_spec_errors_t *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->count; i++)
        free(errs->messages[i]);
    free(errs->messages);
    for (size_t i = 0; i < errs->n_warnings; i++)
        free(errs->warnings[i]);
    free(errs->warnings);
    memset(errs, 0, sizeof *errs);
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
        free_job(&spec->jobs[i]);
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
    const char *why = infra ? infra_problem(infra, buf, sizeof buf) : "no infra given";
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
