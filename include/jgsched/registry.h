/* registry.h - makes backend instances from the configuration.
 *
 * One factory per backend kind ("local", "kubernetes", later "slurm"), in a
 * table in src/backends/registry.c; the daemon and sched never name a kind.
 * An instance serves one infra string: "local", "kubernetes" (the
 * configured context), "kubernetes/<context>" (another context of the same
 * kubeconfig, made on first use).
 */
#ifndef JGSCHED_REGISTRY_H
#define JGSCHED_REGISTRY_H

#include <stddef.h>

#include "jgsched/backend.h"
#include "jgsched/error.h"

/* Makes one instance of every backend the configuration enables (local is
 * always enabled unless `backends.local.enabled: false`), in a fixed order,
 * local first.  *out (malloc'd array, caller frees it and destroys each
 * instance) holds *n instances.  Fails (-1 + err naming the backend and what
 * is wrong, e.g. the kubeconfig file and field) with nothing made. */
int jg_registry_create_all(const jg_backend_env_t *env, jg_backend_t ***out, size_t *n,
                           jg_error_t *err);

/* Whether infra names a kind the registry knows ("kubernetes/ctx" -> the
 * "kubernetes" kind) and the configuration enables it. */
bool jg_registry_knows(const jg_backend_env_t *env, const char *infra);

/* Makes the instance for one infra string not made by create_all
 * ("kubernetes/<context>"): NULL + err when the kind is unknown or disabled,
 * or the instance cannot be made (e.g. no such context). */
jg_backend_t *jg_registry_create(const jg_backend_env_t *env, const char *infra,
                                 jg_error_t *err);

#endif
