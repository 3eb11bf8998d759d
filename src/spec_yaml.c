/* spec_yaml.c - the YAML reading kit of the spec module (spec_yaml.h): what
 * every reader of the module (spec.c and spec_job.c for JobGroups,
 * spec_config.c for config.yaml, spec_kubeconfig.c for kubeconfigs) needs
 * before it can look at a single field.
 *
 * Why a kit of our own.  A user's YAML reaches the root daemon, so loading it
 * must cost a bounded, linear amount of time and memory whatever it holds:
 * libyaml's document loader scans lists for anchors and tag directives
 * (quadratic) and knows no bounds.  So documents are loaded here event by
 * event, checking the limits (size, nesting, keys, string length, alias
 * expansion) as they go; anchors and duplicate keys are found by hashing.
 * Every message a reader records carries file:line:col and the key path, is
 * collected rather than returned (one pass lists every problem), and the
 * messages are put in file order when the parse is done.  The value helpers
 * (sizes, durations, counts, DNS labels, did-you-mean) keep every reader's
 * messages alike.
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

/* Names people reach for that are not ours: unknown key -> the key meant. */
static const struct {
    const char *alias, *key;
} key_aliases[] = {
    {"gpu", "accelerators"}, {"gpus", "accelerators"}, {"accelerator", "accelerators"},
    {"mem", "memory"}, {"nodes", "num_nodes"}, {"replicas", "num_nodes"},
    {"env", "envs"}, {"environment", "envs"}, {"command", "run"}, {"cmd", "run"},
    {"recovery", "job_recovery"}, {"volume", "volumes"}, {"primary", "primary_tasks"},
};

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
jg_spec_pos_t jg_spec_node_pos(const yaml_node_t *n)
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
    vreport(r, false, jg_spec_node_pos(n), field, fmt, ap);
    va_end(ap);
}

void jg_spec_warn(jg_spec_reader_t *r, const yaml_node_t *n, const char *field, const char *fmt,
                  ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(r, true, jg_spec_node_pos(n), field, fmt, ap);
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

void jg_spec_warn_at(jg_spec_reader_t *r, jg_spec_pos_t p, const char *field,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(r, true, p, field, fmt, ap);
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

bool jg_spec_in_list(const char *w, const char *const *l)
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

/* ---- numbers ----------------------------------------------------------- */

/* Parses [0-9]+(.[0-9]*)? | .[0-9]+ at s; returns the length consumed (0: none). */
size_t jg_spec_scan_decimal(const char *s, double *out)
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
    size_t n = jg_spec_scan_decimal(s, &v);
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
    size_t n = jg_spec_scan_decimal(s, &v);
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
    size_t n = jg_spec_scan_decimal(s, &v);
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

/* ---- hashing ----------------------------------------------------------- */

/* FNV-1a from a per-process random basis, then a finaliser so the high bits
 * reach the low ones a table uses: keys chosen to collide in one run's
 * tables (which would make lookups quadratic) cannot be computed ahead. */
size_t jg_spec_hash(const void *data, size_t len)
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

int *jg_spec_strmap_slot(jg_spec_strmap_t *m, const char *key, size_t len, bool insert)
{
    if (insert && (m->n + 1) * 2 > m->cap) {
        jg_spec_strmap_t bigger = {.cap = m->cap ? m->cap * 2 : 64};
        bigger.keys = jg_xcalloc(bigger.cap, sizeof *bigger.keys);
        bigger.lens = jg_xcalloc(bigger.cap, sizeof *bigger.lens);
        bigger.vals = jg_xcalloc(bigger.cap, sizeof *bigger.vals);
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                *jg_spec_strmap_slot(&bigger, m->keys[i], m->lens[i], true) = m->vals[i];
        free(m->keys);
        free(m->lens);
        free(m->vals);
        *m = bigger;
    }
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = jg_spec_hash(key, len) & mask;; i = (i + 1) & mask) {
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

void jg_spec_strmap_free(jg_spec_strmap_t *m)
{
    free(m->keys);
    free(m->lens);
    free(m->vals);
    *m = (jg_spec_strmap_t){0};
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
            for (size_t h = jg_spec_hash(v, len) & mask;; h = (h + 1) & mask) {
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

bool jg_spec_check_directives(jg_spec_reader_t *r, const char *text, size_t len)
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
    jg_spec_strmap_t anchors;       /* anchor name -> node id, this document */
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
    int *v = jg_spec_strmap_slot(&l->anchors, name, strlen(name), true);
    if (*v)
        free(name);         /* the map keeps the first copy of the name */
    *v = id;
}

static void loader_free(loader_t *l)
{
    for (size_t i = 0; i < l->anchors.cap; i++)
        free((char *)l->anchors.keys[i]);
    jg_spec_strmap_free(&l->anchors);
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
            int *v = jg_spec_strmap_slot(&l->anchors, name, strlen(name), false);
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
        jg_spec_pos_t first = jg_spec_node_pos(jg_spec_node(r, first_id));
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

/* ---- names ------------------------------------------------------------ */

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

/* ---- streams and files -------------------------------------------------- */

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

/* Why s cannot be a container image reference (as a pod's image field), or
 * NULL.  Only its form is checked: whether it exists is the registry's say. */
const char *jg_spec_image_problem(const char *s)
{
    size_t len = strlen(s);
    if (len > 1024)
        return "it is longer than 1024 characters";
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._-/:@", ch)))
            return "an image reference holds only letters, digits and . _ - / : @";
    }
    if (strchr("._-/:@", s[0]) || strchr("._-/:@", s[len - 1]))
        return "an image reference starts and ends with a letter or digit";
    if (strstr(s, "//"))
        return "it contains '//'";
    return NULL;
}
