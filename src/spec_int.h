/* spec_int.h - what spec.c (the stream and the JobGroup header) and
 * spec_job.c (one job document) share.  Private to the spec module. */
#ifndef JGSCHED_SPEC_INT_H
#define JGSCHED_SPEC_INT_H

#include "jgsched/spec.h"
#include "spec_yaml.h"

/* A name in the header that must turn out to be a job (or `default`). */
typedef struct {
    const char *name;           /* points into the spec */
    jg_spec_pos_t pos;
    const char *field;
} ref_t;

/* One JobGroup parse. */
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


/* Keys only a JobGroup header holds (spec.c). */
extern const char *const jg_spec_header_only_keys[];

/* Reads the job document at root and appends the job to c->spec, or records
 * why it cannot be used (the job is then dropped). */
void jg_spec_parse_job(pctx_t *c, yaml_node_t *root);

/* Frees what a job owns (not j itself). */
void jg_spec_free_job(jg_job_spec_t *j);

/* The index of the job called name in c->spec, or -1. */
long jg_spec_job_index_find(const pctx_t *c, const char *name);

/* Records "name: '<v>' is not a valid <what> name: ..." unless v is a DNS
 * label; true when it is one. */
bool jg_spec_check_dns_name(pctx_t *c, const yaml_node_t *n, const char *what, const char *v);

/* Appends a copy of k: v to an array grown by powers of two. */
void jg_spec_kv_push(jg_kv_t **kv, size_t *n, const char *k, const char *v);

/* Why infra is not `local`, `kubernetes` or `kubernetes/<context>` (written
 * into buf when it needs formatting), or NULL when it is one of them. */
const char *jg_spec_infra_problem(const char *s, char *buf, size_t size);
/* Why s cannot be a container image reference (a pod's image field), or NULL;
 * only its form is checked. */
const char *jg_spec_image_problem(const char *s);

#endif
