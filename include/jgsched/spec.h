/* spec.h - JobGroup YAML in, a validated JobGroup spec out (DESIGN section 3).
 *
 * The only module that reads YAML.  A parse either returns a complete, validated
 * spec or NULL with every error found (not just the first), each naming
 * file:line[:column], the field and the offending value.  The spec is a plain
 * tree of owned C values: whoever holds the jg_group_spec_t owns everything in
 * it and frees it with jg_spec_free().  The JSON form (jg_spec_to_json /
 * jg_spec_from_json) is how the spec travels to the store and back; it is
 * lossless for every field below.
 */
#ifndef JGSCHED_SPEC_H
#define JGSCHED_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "jgsched/error.h"

/* A resource amount: `4` is exactly 4, `4+` is at least 4. */
typedef struct {
    bool set;
    double value;           /* cpus: count; memory: GiB */
    bool at_least;          /* written with a trailing '+' */
} jg_amount_t;

typedef struct {
    char *name;             /* "T4", "A100", ...; NULL when the job asks for none */
    int count;              /* per node; 0 when name is NULL */
} jg_accel_t;

typedef struct {
    char *key;
    char *value;
} jg_kv_t;

typedef struct {
    bool set;                       /* job_recovery was given */
    int max_restarts_on_errors;     /* 0 when not given */
    int *recover_on_exit_codes;
    size_t n_recover_on_exit_codes;
    char *strategy;                 /* SkyPilot's strategy name, kept verbatim; may be NULL */
} jg_recovery_t;

typedef struct {
    char *name;             /* DNS label, unique in the group */
    int line;               /* first line of the job's document (1-based) */
    int num_nodes;          /* >= 1 */
    jg_amount_t cpus;
    jg_amount_t memory_gb;
    jg_accel_t accel;
    char *infra;            /* "local", "kubernetes", "kubernetes/<ctx>"; NULL: not pinned */
    char *image_id;         /* resources.image_id as SkyPilot writes it ("docker:<image>"):
                             * the container image on kubernetes; NULL: the backend's
                             * default.  local runs on the host and ignores it */
    jg_recovery_t recovery;
    jg_kv_t *envs;          /* in file order */
    size_t n_envs;
    char *setup;            /* NULL when absent */
    char *run;              /* NULL when absent: the job succeeds at once */
    char *workdir;          /* NULL when absent */
    jg_kv_t *volumes;       /* key: mount path, value: volume name */
    size_t n_volumes;
} jg_job_spec_t;

typedef enum { JG_PLACEMENT_SAME_INFRA = 0 } jg_placement_t;
typedef enum { JG_EXECUTION_PARALLEL = 0 } jg_execution_t;

/* The longest termination_delay a spec may give: the longest delay a policy
 * may return too, and one the scheduler's millisecond timers always hold. */
#define JG_SPEC_MAX_TERMINATION_DELAY_S (7 * 24 * 3600.0)

typedef struct {
    char *name;             /* DNS label (<= 63) */
    char *source;           /* file the spec came from, for messages; may be NULL */
    jg_placement_t placement;
    jg_execution_t execution;
    char **primary_tasks;   /* job names; empty: every job is primary */
    size_t n_primary_tasks;
    double termination_delay_s;      /* default delay; 0 when not given */
    jg_kv_t *termination_delays;     /* per job: key job name, value seconds as text */
                                     /* every delay: 0..JG_SPEC_MAX_TERMINATION_DELAY_S */
    size_t n_termination_delays;
    char *policy;           /* NULL: the daemon's default */
    bool inter_connection_off;  /* `inter_connection: false` (SkyPilot 0.14): jobs may be
                                 * spread over infras and peers are not promised names.
                                 * Default (true): one infra, working names, a network
                                 * failure fails the group.  Recorded; on local every
                                 * node is on one machine and gets its names anyway */
    jg_job_spec_t *jobs;
    size_t n_jobs;
} jg_group_spec_t;

/* Every error of one parse, in file order.  Owned by the caller; free with
 * jg_spec_errors_free (a zero-initialised struct is empty and valid). */
typedef struct {
    char **messages;        /* "file:line:col: field: what was wrong (value)" */
    size_t count;
    char **warnings;        /* accepted but noteworthy, e.g. a field ignored on local */
    size_t n_warnings;
} jg_spec_errors_t;

void jg_spec_errors_free(jg_spec_errors_t *errs);

/* At most this many errors (and as many warnings) are kept per parse; the
 * rest are counted in one last message, so a hostile file cannot make a reply
 * that outgrows the protocol. */
#define JG_SPEC_MAX_MESSAGES 100

/* Bounds on what one JobGroup YAML may hold, so that parsing a file a user
 * sends costs the daemon a bounded, linear amount of time and memory.  Every
 * bound that is passed is one error naming the limit (its config.yaml key,
 * spec_limits.<field>) and the value found.  The daemon checks its configured
 * bounds (config.yaml `spec_limits`); the CLI (`validate`, `submit`) checks the
 * defaults, since it does not know the daemon's config. */
typedef struct {
    size_t max_bytes;           /* the YAML text, also with its aliases expanded */
    int max_depth;              /* nesting of mappings and lists */
    int max_keys_per_mapping;   /* keys of one mapping; items of one list */
    int max_keys;               /* keys and list items of the whole stream */
    int max_envs;               /* envs of one job */
    size_t max_string;          /* bytes of one scalar (key or value) */
    int max_nodes_per_job;      /* num_nodes */
    int max_nodes_per_group;    /* num_nodes over the group's jobs */
} jg_spec_limits_t;

/* The request travels as JSON in one protocol message (JG_PROTO_MAX_MESSAGE,
 * 1 MiB) and escaping can double the text: max_bytes may not exceed this. */
#define JG_SPEC_MAX_BYTES_CEILING (512 * 1024)

/* The defaults: 512 KiB, depth 64, 1024 keys per mapping, 65536 keys in all,
 * 1024 envs, 128 KiB per string, 1024 nodes per job and per group. */
jg_spec_limits_t jg_spec_limits_default(void);

/* Reads at most limits->max_bytes + 1 bytes of the file at path (NULL limits:
 * the defaults) into *text (malloc'd, caller frees, NUL-terminated) and *len.
 * A file that cannot be read or is too large is one error in errs (formatted
 * like every other: "file:line:col: size: ..."), NULL returned. */
char *jg_spec_read_bounded(const char *path, const jg_spec_limits_t *limits, size_t *len,
                           jg_spec_errors_t *errs);

/* Parses a YAML stream.  `filename` names the input in messages (NULL:
 * "<input>") and is the base a relative `workdir` is resolved against (NULL:
 * the current directory); workdir always comes out absolute.  Returns a new
 * spec (caller frees) or NULL with errs->count > 0; warnings may be added
 * either way.  errs may be NULL (messages dropped).  The default limits apply
 * (jg_spec_limits_default). */
jg_group_spec_t *jg_spec_parse(const char *text, size_t len, const char *filename,
                               jg_spec_errors_t *errs);

/* As jg_spec_parse, checking limits (NULL: the defaults) instead of the
 * defaults.  jg_spec_parse is this with the defaults. */
jg_group_spec_t *jg_spec_parse_with(const char *text, size_t len, const char *filename,
                                    const jg_spec_limits_t *limits, jg_spec_errors_t *errs);

/* As jg_spec_parse_with, for a daemon parsing what a user submitted: `~` in
 * workdir is home (the submitter's; NULL: an error if used), and nothing on
 * the filesystem is looked at (a relative workdir is resolved against
 * filename's directory as text; no "not a directory" warning), so the daemon
 * neither reveals which paths exist nor blocks on them. */
jg_group_spec_t *jg_spec_parse_for(const char *text, size_t len, const char *filename,
                                   const jg_spec_limits_t *limits, const char *home,
                                   jg_spec_errors_t *errs);

/* Reads (jg_spec_read_bounded) and parses a file with the default limits; a
 * file that cannot be read or is too large is one error in errs. */
jg_group_spec_t *jg_spec_parse_file(const char *path, jg_spec_errors_t *errs);

void jg_spec_free(jg_group_spec_t *spec);

/* True when s is a DNS label: [a-z0-9-], starts and ends alphanumeric, 1..63 long. */
bool jg_spec_is_dns_label(const char *s);

/* Renames the group (`submit -n`); fails if name is not a DNS label. */
int jg_spec_set_name(jg_group_spec_t *spec, const char *name, jg_error_t *err);

/* Pins every job to infra (`submit --infra`); fails if infra is malformed. */
int jg_spec_set_infra(jg_group_spec_t *spec, const char *infra, jg_error_t *err);

/* Index of the job with that name, or -1. */
int jg_spec_find_job(const jg_group_spec_t *spec, const char *name);

/* True if job is listed in primary_tasks, or primary_tasks is empty. */
bool jg_spec_job_is_primary(const jg_group_spec_t *spec, size_t job_index);

/* Termination delay in seconds that applies to job (per-job override or default). */
double jg_spec_termination_delay(const jg_group_spec_t *spec, const char *job);

/* Total nodes over all jobs. */
size_t jg_spec_total_nodes(const jg_group_spec_t *spec);

/* Lossless JSON round trip.  jg_spec_to_json returns a malloc'd compact JSON
 * string (caller frees).  jg_spec_from_json returns a new spec or NULL + err. */
char *jg_spec_to_json(const jg_group_spec_t *spec);
jg_group_spec_t *jg_spec_from_json(const char *json, jg_error_t *err);

/* A human-readable description of the resolved group, as `jgsched validate`
 * prints it (malloc'd, caller frees). */
char *jg_spec_describe(const jg_group_spec_t *spec);

#endif
