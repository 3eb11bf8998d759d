/* auth.h - how the Kubernetes client proves who it is and whom it talks to.
 *
 * Consumes a cluster configuration already resolved from a kubeconfig (the
 * spec module reads the YAML; this module never does) and turns it into the
 * curl settings of each request: TLS trust (CA file or PEM bytes, or none
 * with insecure-skip-tls-verify), the server name to verify, a client
 * certificate and key (files or PEM bytes), and a bearer token (inline, from
 * a tokenFile re-read whenever the file changes, or from an exec credential
 * plugin).  An exec plugin runs as a child process whose pipes are watched
 * by the loop, never waited for; its credential is cached until its
 * expirationTimestamp and fetched again after a 401.
 *
 * Private to the Kubernetes backend.
 */
#ifndef JG_K8S_AUTH_H
#define JG_K8S_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "jgsched/error.h"
#include "jgsched/loop.h"

typedef struct {
    const char *name;
    const char *value;
} jg_k8s_env_t;

/* One cluster + user of a kubeconfig, resolved: every path absolute (relative
 * ones are relative to the kubeconfig's directory, which the parser knows),
 * every *-data field base64-decoded into the *_pem bytes.  All borrowed by
 * jg_k8s_auth_create, which copies what it keeps. */
typedef struct {
    const char *server;             /* "https://host:6443" (a path prefix is kept) */
    const char *ca_file;            /* certificate-authority */
    const char *ca_pem;             /* certificate-authority-data, decoded */
    size_t ca_pem_len;
    const char *cert_file;          /* client-certificate */
    const char *cert_pem;           /* client-certificate-data, decoded */
    size_t cert_pem_len;
    const char *key_file;           /* client-key */
    const char *key_pem;            /* client-key-data, decoded */
    size_t key_pem_len;
    const char *token;              /* token */
    const char *token_file;         /* tokenFile: re-read when it changes */
    bool insecure_skip_tls_verify;
    const char *tls_server_name;    /* tls-server-name: the name the server's
                                     * certificate must carry instead of server's host */
    struct {
        const char *command;        /* NULL: no exec plugin */
        const char *const *args;
        size_t n_args;
        const jg_k8s_env_t *env;    /* added to the daemon's environment */
        size_t n_env;
        const char *api_version;    /* client.authentication.k8s.io/v1 or /v1beta1 */
        int timeout_ms;             /* 0: 60 s */
        bool provide_cluster_info;  /* provideClusterInfo: KUBERNETES_EXEC_INFO carries
                                     * spec.cluster (server, CA data, tls-server-name,
                                     * insecure-skip-tls-verify) */
    } exec;
} jg_k8s_cluster_config_t;

typedef struct jg_k8s_auth jg_k8s_auth_t;

/* Told once per jg_k8s_auth_refresh when credentials are usable again (ok) or
 * could not be obtained (!ok, err says why).  Called from the loop. */
typedef void (*jg_k8s_auth_ready_f)(void *ctx, bool ok, const jg_error_t *err);

/* Copies cfg.  Fails on a configuration that cannot work (no server, a
 * certificate without a key, an exec apiVersion it does not know). */
jg_k8s_auth_t *jg_k8s_auth_create(jg_loop_t *loop, const jg_k8s_cluster_config_t *cfg,
                                  jg_k8s_auth_ready_f on_ready, void *ctx, jg_error_t *err);
void jg_k8s_auth_destroy(jg_k8s_auth_t *auth);  /* accepts NULL; kills a running plugin */

const char *jg_k8s_auth_server(const jg_k8s_auth_t *auth);  /* without a trailing '/' */

/* Whether a request can be sent now: false while an exec credential is
 * missing or expired (then call jg_k8s_auth_refresh and wait for on_ready). */
bool jg_k8s_auth_usable(jg_k8s_auth_t *auth);

/* Starts fetching credentials (runs the exec plugin) unless that is under way;
 * on_ready follows, from the loop.  Without an exec plugin: re-reads the token
 * file and reports on the next loop turn. */
void jg_k8s_auth_refresh(jg_k8s_auth_t *auth);

/* A request was answered 401 with the credentials of generation `gen`: drops
 * them if they are still the current ones (the next refresh fetches anew).
 * Returns whether fresh credentials may help (false: a static token). */
bool jg_k8s_auth_invalidate(jg_k8s_auth_t *auth, unsigned gen);

/* Sets TLS options on `easy` and appends the Authorization header to
 * *headers (the caller frees the list).  Re-reads a token file whose
 * identity or mtime changed.  *gen receives the credentials' generation. */
int jg_k8s_auth_apply(jg_k8s_auth_t *auth, CURL *easy, struct curl_slist **headers,
                      unsigned *gen, jg_error_t *err);

/* The in-cluster configuration of a pod's service account, as client-go's
 * InClusterConfig: KUBERNETES_SERVICE_HOST/PORT and the files under
 * `sa_dir` (NULL: /var/run/secrets/kubernetes.io/serviceaccount).  Fills
 * *cfg with strings owned by *storage (free with jg_k8s_incluster_free);
 * *namespace_out (may be NULL) gets the pod's namespace, owned by storage. */
typedef struct {
    char *server, *ca_file, *token_file, *namespace_;
} jg_k8s_incluster_t;
int jg_k8s_incluster_config(const char *sa_dir, jg_k8s_incluster_t *storage,
                            jg_k8s_cluster_config_t *cfg, jg_error_t *err);
void jg_k8s_incluster_free(jg_k8s_incluster_t *storage);

#endif
