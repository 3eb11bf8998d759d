/* config.h - the daemon's configuration file, config.yaml (docs/configuration.md).
 *
 * <JGSCHED_HOME>/config.yaml for an instance (jg_paths_t.config),
 * /etc/jgsched/config.yaml in system mode.  The file is optional and so is
 * every key in it: a missing file means all defaults.  Read by the spec module
 * (the only one that reads YAML) with the same rules as a JobGroup file:
 * unknown keys are errors with a "did you mean", and a load either returns a
 * complete, validated config or NULL with every error found, each naming
 * file:line:col, the key path and the offending value.
 *
 * The config is a plain tree of owned C values; whoever holds the jg_config_t
 * owns everything in it and frees it with jg_config_free().  Defaults are
 * filled in, so a consumer reads fields directly; the has_* flags say whether
 * the file set a field (for messages and for `jgsched infra`).
 */
#ifndef JGSCHED_CONFIG_H
#define JGSCHED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "jgsched/spec.h"

/* A per-user limit that is not set: no limit. */
enum { JG_CONFIG_UNLIMITED = -1 };

/* Per-user limits enforced at admission: what one user's groups may hold at
 * once.  Each field is >= 0, or JG_CONFIG_UNLIMITED. */
typedef struct {
    int running_groups;     /* groups admitted and not yet ended */
    int nodes;              /* nodes over those groups */
    int cpus;               /* cpus over those nodes */
} jg_user_limits_t;

typedef struct {
    char *user;
    jg_user_limits_t limits;    /* fields the file left out: limits.default's */
} jg_config_user_limits_t;

/* A resource shape: a backend's whole capacity, or its largest node. */
typedef struct {
    bool has_cpus;
    double cpus;            /* > 0; may exceed the host (oversubscription on purpose) */
    bool has_memory;
    double memory_gb;       /* GiB, > 0 */
    bool has_accels;
    jg_accel_t *accels;     /* name + count (>= 1), in file order, names unique */
    size_t n_accels;
} jg_config_shape_t;

typedef enum {
    JG_CONFIG_NETWORK_ISOLATED = 0,     /* per-node network namespaces */
    JG_CONFIG_NETWORK_HOST,             /* nodes share the host network */
} jg_config_network_t;

typedef enum {
    JG_CONFIG_CGROUPS_AUTO = 0,         /* use cgroups where the daemon can */
    JG_CONFIG_CGROUPS_OFF,
} jg_config_cgroups_t;

typedef struct {
    bool enabled;                   /* always true: the only backend built (false is
                                       refused until another one exists) */
    bool has_enabled;
    jg_config_shape_t capacity;     /* fields not set: the host's own */
    jg_config_shape_t max_node;     /* fields not set: capacity's (set or detected);
                                       set ones never exceed capacity's set ones.
                                       Accelerators are never set: a per-node limit
                                       is refused (nothing could apply it yet) */
    jg_config_network_t network;    /* default isolated */
    bool has_network;
    bool nat;                       /* outbound NAT for nodes when root; default true */
    bool has_nat;
    char *nat_network;              /* the hubs' uplink addresses, "a.b.c.d/p" (checked);
                                       default JG_NETNS_UPLINK_DEFAULT */
    bool has_nat_network;
    jg_config_cgroups_t cgroups;    /* default auto; off: jg_local_config_t.cgroups_off */
    bool has_cgroups;
    double oversubscribe;           /* CPUs admission counts per CPU of the capacity:
                                       1 (default: none), `true` = 4 as Slurm's
                                       OverSubscribe=FORCE, or a factor in [1, 64].
                                       Memory and accelerators are never oversubscribed */
    bool has_oversubscribe;
} jg_config_local_t;

/* backends.kubernetes (docs/configuration.md, docs/kubernetes.md).  Only
 * parsed and checked here; the kubeconfig itself is read when the backend
 * starts (jgsched/kubeconfig.h: jg_kubeconfig_resolve(kubeconfig, context,
 * NULL, err)), so a config can be written before the cluster exists. */
#define JG_CONFIG_DEFAULT_GPU_RESOURCE "nvidia.com/gpu"
#define JG_CONFIG_DEFAULT_IMAGE "ubuntu:22.04"
typedef struct {
    bool enabled;                   /* writing the section enables it (even empty);
                                       `enabled: false` turns it off; default false */
    bool has_enabled;               /* the file wrote the section */
    char *kubeconfig;               /* absolute path; NULL: $KUBECONFIG's first file, else
                                       ~/.kube/config, else (in a pod) in-cluster */
    char *context;                  /* NULL: the kubeconfig's current context */
    char *namespace;                /* NULL: the context's namespace, else "default";
                                       else a DNS label */
    char *gpu_resource;             /* the resource accelerators map to:
                                       JG_CONFIG_DEFAULT_GPU_RESOURCE unless set */
    bool has_gpu_resource;
    char *gpu_label;                /* a node label key naming the accelerator type
                                       (skypilot.co/accelerator): an accelerator job's
                                       pods get a nodeSelector on it; NULL: none */
    bool hosts_writable;            /* the agent's init container runs as uid 0 and
                                       makes /etc/hosts writable for non-root images;
                                       default true; false where uid 0 is forbidden */
    bool has_hosts_writable;
    char *image;                    /* for a job that names none (image_id):
                                       JG_CONFIG_DEFAULT_IMAGE unless set */
    bool has_image;
    char *agent_image;              /* the image of the agent's init container:
                                       "jgsched/agent:<version>" unless set */
    bool has_agent_image;
} jg_config_kubernetes_t;

typedef struct {
    char *name;                     /* DNS label, unique */
    char *path;                     /* absolute host directory */
} jg_config_volume_t;

/* clients: how much of the daemon one local user's connections may hold
 * (docs/security.md).  The byte bounds on what a connection buffers are fixed
 * in src/daemon/server.c; these two are the ones a site may want to tune. */
#define JG_CONFIG_DEFAULT_MAX_CONNECTIONS 64
#define JG_CONFIG_DEFAULT_REQUEST_TIMEOUT_S 10.0
typedef struct {
    int max_connections_per_user;   /* >= 1, or JG_CONFIG_UNLIMITED; root and admins
                                       are not limited */
    bool has_max_connections;
    double request_timeout_s;       /* a request begun must end (its '\n') within it,
                                       else the connection is closed; > 0, <= 1h */
    bool has_request_timeout;
} jg_config_clients_t;

typedef struct {
    char *path;                     /* the file looked at; NULL for jg_config_defaults() */
    bool loaded;                    /* the file existed and was read */

    char *default_policy;           /* never NULL: "default" unless set; a policy
                                       name [A-Za-z0-9_-]{1,63} or an absolute path */
    bool has_default_policy;
    char **admins;                  /* user names with admin rights (root always is) */
    size_t n_admins;
    char *admin_group;              /* NULL: none; members are admins */
    jg_user_limits_t default_limits;        /* limits.default; unlimited unless set */
    jg_config_user_limits_t *user_limits;   /* limits.users, in file order */
    size_t n_user_limits;
    double stop_grace_s;            /* SIGTERM -> SIGKILL grace for cancel; default 5 */
    bool has_stop_grace;
    jg_config_local_t local;
    jg_config_kubernetes_t kubernetes;
    jg_config_volume_t *volumes;    /* named shared volumes, in file order */
    size_t n_volumes;

    /* What a submitted JobGroup YAML may hold (config key spec_limits; every
     * field defaults to jg_spec_limits_default()'s).  The daemon parses
     * submits with these; the CLI knows only the defaults. */
    jg_spec_limits_t spec_limits;
    bool has_spec_limits;           /* the file set at least one of them */
    jg_config_clients_t clients;    /* connection limits (see above) */
} jg_config_t;

/* A new config holding every default (caller frees).  Never fails. */
jg_config_t *jg_config_defaults(void);

/* Reads and validates path.  A missing file (ENOENT) is not an error: the
 * result holds the defaults with loaded false.  A file that exists but cannot
 * be read, or that holds any error, gives NULL with every message in errs
 * (errs may be NULL: messages dropped).  Warnings (e.g. an admin_group that
 * does not exist on this host) may be added either way.  Caller frees. */
jg_config_t *jg_config_load(const char *path, jg_spec_errors_t *errs);

/* Parses config text; filename names it in messages (NULL: "<input>") and
 * becomes cfg->path.  Empty text is all defaults.  As jg_config_load otherwise. */
jg_config_t *jg_config_parse(const char *text, size_t len, const char *filename,
                             jg_spec_errors_t *errs);

/* Frees cfg and everything in it; NULL is fine. */
void jg_config_free(jg_config_t *cfg);

/* The limits that apply to user: their limits.users entry, else
 * limits.default.  Borrowed from cfg (not NULL); never NULL itself; user may
 * be NULL (the default applies). */
const jg_user_limits_t *jg_config_limits_for(const jg_config_t *cfg, const char *user);

/* True if the caller is an admin: uid 0, a user listed in admins, or a member
 * of admin_group (gid is the primary group; supplementary groups of user are
 * looked up with getgrouplist).  user may be NULL (then only uid and gid
 * count); cfg may be NULL (then only root is). */
bool jg_config_is_admin(const jg_config_t *cfg, const char *user, uid_t uid, gid_t gid);

/* The host directory of volume name, or NULL.  Borrowed from cfg. */
const char *jg_config_volume_path(const jg_config_t *cfg, const char *name);

/* A human-readable description of cfg, one setting a line, marking defaults,
 * as `jgsched infra` prints it (malloc'd, caller frees). */
char *jg_config_describe(const jg_config_t *cfg);

#endif
