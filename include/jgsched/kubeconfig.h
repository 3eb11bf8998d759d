/* kubeconfig.h - where a Kubernetes API server is and how to authenticate to
 * it, read as kubectl reads it: a kubeconfig file (clusters, users, contexts,
 * current-context) or a pod's in-cluster service account.
 *
 * Part of the spec module (the only module that reads YAML).  A kubeconfig
 * is read with the same bounds as a JobGroup file (jg_spec_limits_default:
 * size, nesting, keys; a string may be as long as the file, since
 * certificate data is long).  The whole file is checked as kubectl checks it
 * (types, base64 of every *-data field, duplicate names); then one context
 * is selected and its cluster and user are checked for use (a server, files
 * that can be read, one way to authenticate).  Relative file paths
 * (certificate-authority, client-certificate, client-key, tokenFile, an exec
 * command holding '/') resolve against the kubeconfig's directory, so every
 * path in the result is absolute.  Nothing here talks to a server or runs an
 * exec plugin: the result says what to do.
 *
 * Errors go to a jg_error_t: the first problem in file order, naming the
 * file, the position and the field ("/x:7:24: users[0].user.client-key-data:
 * not valid base64"; "/x: context \"ctx-b\" not found (contexts: ctx-a,
 * prod)"), with "(and N more problems)" when there are more.
 */
#ifndef JGSCHED_KUBECONFIG_H
#define JGSCHED_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "jgsched/error.h"

/* Where a pod's service account is mounted (the in-cluster config). */
#define JG_KUBE_SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* The two ExecCredential versions client-go still speaks. */
#define JG_KUBE_EXEC_V1 "client.authentication.k8s.io/v1"
#define JG_KUBE_EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"

typedef struct {
    char *name;
    char *value;
} jg_kube_env_t;

/* users[].user.exec: a credential plugin, run with env added to the
 * daemon's, printing an ExecCredential of api_version on stdout. */
typedef struct {
    char *api_version;              /* JG_KUBE_EXEC_V1 or JG_KUBE_EXEC_V1BETA1 */
    char *command;                  /* absolute when it held '/', else looked up in PATH */
    char **args;
    size_t n_args;
    jg_kube_env_t *env;             /* in file order */
    size_t n_env;
    char *install_hint;             /* shown when command cannot be run; may be NULL */
    bool provide_cluster_info;      /* pass the cluster in KUBERNETES_EXEC_INFO */
    char *interactive_mode;         /* "Never" or "IfAvailable" (v1beta1's default);
                                       "Always" is refused: the daemon has no terminal */
} jg_kube_exec_t;

/* One selected context, resolved.  Every string is owned by the struct (free
 * it with jg_kubeconfig_free); NULL means "not given".  Of a kind given as
 * both a file and inline data, kubectl refuses the pair, so at most one is
 * set.  Authentication: token (inline; wins over token_file, as in kubectl),
 * else token_file (read before each use: it rotates), else exec, else none;
 * a client certificate may come with any of them. */
typedef struct {
    char *source;                   /* the kubeconfig's path, or "in-cluster" */
    bool in_cluster;
    char *context;                  /* the selected context's name; NULL in-cluster */
    char *cluster;                  /* its cluster's name; NULL in-cluster */
    char *user;                     /* its user's name; NULL: none (anonymous) */
    char *namespace;                /* the context's namespace, else "default" */
    bool namespace_given;           /* the context (or the pod) named it */

    char *server;                   /* "https://host:port" as written */
    char *tls_server_name;          /* SNI / name to verify instead of the host */
    bool insecure_skip_tls_verify;
    char *ca_file;                  /* certificate-authority, absolute */
    char *ca_pem;                   /* certificate-authority-data, decoded */
    size_t ca_pem_len;

    char *client_cert_file;         /* client-certificate, absolute */
    char *client_cert_pem;          /* client-certificate-data, decoded */
    size_t client_cert_pem_len;
    char *client_key_file;          /* client-key, absolute */
    char *client_key_pem;           /* client-key-data, decoded */
    size_t client_key_pem_len;

    char *token;                    /* inline bearer token */
    char *token_file;               /* tokenFile, absolute */
    jg_kube_exec_t *exec;           /* NULL: no plugin */
} jg_kubeconfig_t;

/* Parses kubeconfig text (len bytes; need not be NUL-terminated).  path names
 * it in messages and is the base of relative paths (NULL: "<kubeconfig>",
 * relative paths against the current directory).  context: the context to
 * select (NULL: current-context).  Returns a new config (caller frees) or
 * NULL with err filled.  Files the result names are checked to be readable
 * regular files (certificate-authority, client-certificate, client-key). */
jg_kubeconfig_t *jg_kubeconfig_parse(const char *text, size_t len, const char *path,
                                     const char *context, jg_error_t *err);

/* Reads (bounded, never blocking on a FIFO, regular files only) and parses
 * the kubeconfig at path; as jg_kubeconfig_parse. */
jg_kubeconfig_t *jg_kubeconfig_load(const char *path, const char *context, jg_error_t *err);

/* The in-cluster config, as client-go's InClusterConfig: the server from
 * $KUBERNETES_SERVICE_HOST and $KUBERNETES_SERVICE_PORT, the token file and
 * CA of sa_dir (NULL: JG_KUBE_SERVICE_ACCOUNT_DIR), the namespace from
 * $POD_NAMESPACE, else sa_dir/namespace, else "default".  Fails when either
 * variable is unset or the token cannot be read. */
jg_kubeconfig_t *jg_kubeconfig_in_cluster(const char *sa_dir, jg_error_t *err);

/* True when $KUBERNETES_SERVICE_HOST and $KUBERNETES_SERVICE_PORT are set
 * (this process runs in a pod). */
bool jg_kubeconfig_in_pod(void);

/* The kubeconfig kubectl would read: the first file of the colon-separated
 * kubeconfig_env ($KUBECONFIG) when it names one, else <home>/.kube/config.
 * Returns a malloc'd path (caller frees), or NULL when neither is known (no
 * kubeconfig_env and no home). */
char *jg_kubeconfig_default_path(const char *kubeconfig_env, const char *home);

/* What the kubernetes backend uses: path when given; else $KUBECONFIG's
 * first file; else, in a pod (jg_kubeconfig_in_pod) with no
 * ~/.kube/config, the in-cluster config of sa_dir; else ~/.kube/config.
 * context: as jg_kubeconfig_parse (ignored in-cluster, where there are no
 * contexts: asking for one is an error). */
jg_kubeconfig_t *jg_kubeconfig_resolve(const char *path, const char *context,
                                       const char *sa_dir, jg_error_t *err);

void jg_kubeconfig_free(jg_kubeconfig_t *kc);

#endif
