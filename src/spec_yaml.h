/* spec_yaml.h - the YAML reading kit shared by the readers of the spec
 * module: spec.c and spec_job.c (JobGroup YAML), spec_config.c (the daemon's
 * config.yaml) and spec_kubeconfig.c (kubeconfig files).  Private to the
 * module; implemented in spec_yaml.c.
 *
 * A jg_spec_reader_t collects every message of one parse into a caller's
 * jg_spec_errors_t, each as "file:line:col: field: what was wrong (value)",
 * remembers where each came from and, when the parse is done, puts them in
 * file order.  The helpers below read libyaml document nodes and never stop at
 * the first problem: a helper that finds one records it and returns NULL /
 * false so the caller moves on to the next field.
 */
#ifndef JGSCHED_SPEC_YAML_H
#define JGSCHED_SPEC_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "jgsched/spec.h"

typedef struct {
    int line, col;              /* 1-based; 0: none */
} jg_spec_pos_t;

typedef struct {
    const char *file;           /* display name in messages */
    yaml_document_t *doc;       /* the document being read */
    jg_spec_errors_t *errs;
    size_t err0, warn0;         /* entries present before this parse */
    jg_spec_pos_t *err_pos, *warn_pos;  /* positions of entries err0.., warn0.. */
    size_t err_pos_cap, warn_pos_cap;
    size_t err_dropped, warn_dropped;   /* past JG_SPEC_MAX_MESSAGES: counted only */

    /* Bounds checked while documents load (jg_spec_next_doc); the defaults
     * unless the caller sets them after jg_spec_reader_init. */
    jg_spec_limits_t limits;
    size_t keys_seen;           /* keys and list items of the stream so far */
    size_t alias_bytes;         /* what aliases add when expanded, stream so far */
    size_t suggest_left;        /* did-you-mean comparisons this parse may still make */

    /* Duplicate keys of `doc`, found with one hashing pass the first time
     * jg_spec_key looks at it (dup_doc says for which document). */
    const yaml_document_t *dup_doc;
    size_t *pair_base;          /* per node: index of its first pair in dup_of */
    int *dup_of;                /* per pair: node id of an earlier equal key, 0 */
} jg_spec_reader_t;

/* The text of a scalar node (NUL-terminated by libyaml). */
#define JG_SPEC_SVAL(n) ((const char *)(n)->data.scalar.value)

/* Iterates a mapping node's pairs: `yaml_node_pair_t *p` in file order. */
#define JG_SPEC_FOR_PAIRS(map, p) \
    for (yaml_node_pair_t *p = (map)->data.mapping.pairs.start; \
         p < (map)->data.mapping.pairs.top; p++)

/* ---- messages --------------------------------------------------------- */

/* Starts a parse whose messages go to errs (not NULL); file: display name. */
void jg_spec_reader_init(jg_spec_reader_t *r, const char *file, jg_spec_errors_t *errs);

/* True once this parse holds JG_SPEC_MAX_MESSAGES errors: later ones are only
 * counted, so costly message work (suggestions) can be skipped. */
bool jg_spec_reader_full(const jg_spec_reader_t *r);

/* Records "size: ..." when len passes r->limits.max_bytes; true if within. */
bool jg_spec_check_size(jg_spec_reader_t *r, const char *text, size_t len);

/* Ends it: sorts the messages this parse added into file order (stably) and
 * frees the bookkeeping.  Returns true when the parse recorded an error. */
bool jg_spec_reader_done(jg_spec_reader_t *r);

/* "file:line:col: field: <fmt>"; field may be NULL. */
void jg_spec_err(jg_spec_reader_t *r, const yaml_node_t *n, const char *field,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void jg_spec_warn(jg_spec_reader_t *r, const yaml_node_t *n, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void jg_spec_err_at(jg_spec_reader_t *r, jg_spec_pos_t p, const char *field,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void jg_spec_warn_at(jg_spec_reader_t *r, jg_spec_pos_t p, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- nodes ------------------------------------------------------------- */

yaml_node_t *jg_spec_node(jg_spec_reader_t *r, int id);

/* Where node n starts (1-based); {0, 0} for NULL. */
jg_spec_pos_t jg_spec_node_pos(const yaml_node_t *n);

/* A plain scalar spelling null: empty, ~, null, Null, NULL. */
bool jg_spec_is_null(const yaml_node_t *n);

/* "a mapping", "a list", "a scalar", "null", "nothing": for "expected X, got Y". */
const char *jg_spec_kind(const yaml_node_t *n);

/* One-line rendering of v for messages (newlines as \n, cut near 60 bytes on a
 * UTF-8 boundary) into buf (size >= 80); returns buf. */
const char *jg_spec_show(const char *v, char *buf, size_t size);

/* The text of scalar node n, or NULL after recording "field: expected
 * <expected>, got <kind>" when n is not a non-null scalar. */
const char *jg_spec_scalar(jg_spec_reader_t *r, const yaml_node_t *n, const char *field,
                           const char *expected);

/* The key of pair p of map, or NULL after recording why it cannot be used
 * (not a string, or a duplicate of an earlier key). */
const char *jg_spec_key(jg_spec_reader_t *r, const yaml_node_t *map,
                        const yaml_node_pair_t *p, const char *field);

/* Records "field: unknown key 'x' (did you mean 'y'?)" at key node k;
 * cands: NULL-terminated list of the keys allowed there. */
void jg_spec_unknown_key(jg_spec_reader_t *r, const yaml_node_t *k, const char *field,
                         const char *key, const char *const *cands);

/* "a.b" (or "b" when a is NULL or empty); caller frees. */
char *jg_spec_join_field(const char *a, const char *b);

/* Loads the next non-empty document of parser into doc: 1 loaded, 0 end of
 * stream, -1 syntax error or a bound of r->limits passed (recorded with its
 * position; the stream is then abandoned).  Loading is event by event, so it
 * stops at the first bound passed: nesting, keys per mapping and in all,
 * string length, alias expansion.  Anchors are found by hashing and duplicate
 * keys with one pass, so the whole load is linear.  text/len: the input, to
 * place reader errors. */
int jg_spec_next_doc(jg_spec_reader_t *r, yaml_parser_t *parser, yaml_document_t *doc,
                     const char *text, size_t len);

/* Records "directives: more than 16 lines start with '%'" and returns false
 * when text holds more directive lines than any real file needs (libyaml
 * keeps them in a list it scans for each, which is quadratic). */
bool jg_spec_check_directives(jg_spec_reader_t *r, const char *text, size_t len);

/* Reads a whole file into *text (malloc'd, caller frees; not NUL-terminated)
 * and *len.  Returns 0, or -1 with errno set and nothing allocated. */
int jg_spec_read_file(const char *path, char **text, size_t *len);

/* ---- words and numbers ------------------------------------------------- */

/* The candidate the user probably meant (case, alias, abbreviation or edit
 * distance <= 2), or NULL. */
const char *jg_spec_suggest(const char *word, const char *const *cands, size_t n);
size_t jg_spec_list_len(const char *const *list);     /* of a NULL-terminated list */
bool jg_spec_in_list(const char *word, const char *const *list);   /* NULL-terminated */

/* ---- hashing ------------------------------------------------------------ */

/* A hash of len bytes from a per-process random basis, so keys chosen to
 * collide in one run's tables cannot be computed ahead. */
size_t jg_spec_hash(const void *data, size_t len);

/* A string -> int map by open addressing; the strings are borrowed (they must
 * outlive the map).  A zero-initialised map is empty; free with
 * jg_spec_strmap_free. */
typedef struct {
    const char **keys;
    size_t *lens;
    int *vals;
    size_t cap, n;
} jg_spec_strmap_t;

/* The value slot of key: with insert, added (value 0) when absent; without,
 * NULL when absent. */
int *jg_spec_strmap_slot(jg_spec_strmap_t *m, const char *key, size_t len, bool insert);
void jg_spec_strmap_free(jg_spec_strmap_t *m);

/* Why s is not a DNS label (written into buf when it needs formatting), or NULL. */
const char *jg_spec_dns_problem(const char *s, char *buf, size_t size);

/* Why s cannot be a container image reference (a pod's image field), or NULL;
 * only its form is checked. */
const char *jg_spec_image_problem(const char *s);

/* True for an accelerator name: [A-Za-z0-9._-]+. */
bool jg_spec_accel_name_ok(const char *name);

/* Parses [0-9]+(.[0-9]*)? | .[0-9]+ at s into *out; returns the length
 * consumed (0: none). */
size_t jg_spec_scan_decimal(const char *s, double *out);

/* Integer text with an optional sign: 0 ok, -1 not an integer, -2 outside lo..hi. */
int jg_spec_parse_int(const char *s, long long lo, long long hi, long long *out);

/* `4`, `4+`, `0.5`: a positive count, optionally "at least". */
bool jg_spec_parse_cpus(const char *s, jg_amount_t *a);

/* `8`, `8+`, `8GB`, `512MB`, `1TB`, `16GiB`: a positive size in GiB (binary
 * units, case-insensitive), optionally "at least". */
bool jg_spec_parse_memory(const char *s, jg_amount_t *a);

/* `45` (seconds), `500ms`, `30s`, `1m`, `2h`: a duration >= 0 in seconds. */
bool jg_spec_parse_duration(const char *s, double *secs);

#endif
