/* backend_kubernetes.h - the `kubernetes` backend (src/backends/kubernetes/,
 * docs/kubernetes.md).  Only the registry includes this header; everything
 * else sees a jg_backend_t (jgsched/backend.h).
 *  - kind "kubernetes"; one instance per infra string: "kubernetes" (the
 *    configured context, else the kubeconfig's current one) and
 *    "kubernetes/<context>" (another context of the same kubeconfig).
 *  - every node is a pod; objects carry jgsched.io/instance, an id kept in
 *    <state_dir>/kubernetes/instance-id.
 */
#ifndef JGSCHED_BACKEND_KUBERNETES_H
#define JGSCHED_BACKEND_KUBERNETES_H

#include "jgsched/backend.h"
#include "jgsched/error.h"

/* Reads backends.kubernetes of env->config and the kubeconfig it names
 * (context: NULL for the configured one), then starts watching the cluster
 * (nothing blocks: the API server need not be reachable yet).  NULL + err
 * naming the kubeconfig file and the field when it is missing, unreadable
 * or lacks the context. */
jg_backend_t *jg_backend_kubernetes_from_env(const jg_backend_env_t *env, const char *context,
                                             jg_error_t *err);

#endif
