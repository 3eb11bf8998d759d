/* registry.c - backend instances from the configuration (jgsched/registry.h).
 *
 * One row per backend kind: its name, whether the configuration enables it,
 * and its factory.  An infra string names a kind and, after a '/', which
 * instance of it ("kubernetes/ctx-a"); create_all makes the plain instance of
 * every enabled kind, create the others on first use. */
#include "jgsched/registry.h"

#include <stdlib.h>
#include <string.h>

#include "jgsched/backend_kubernetes.h"
#include "jgsched/backend_local.h"

typedef struct {
    const char *kind;
    bool (*enabled)(const jg_config_t *config);
    /* NULL instance: the plain one ("local"); else the part after '/'. */
    jg_backend_t *(*make)(const jg_backend_env_t *env, const char *instance, jg_error_t *err);
} factory_t;

static bool local_enabled(const jg_config_t *config)
{
    return !config || !config->local.has_enabled || config->local.enabled;
}

static jg_backend_t *local_make(const jg_backend_env_t *env, const char *instance,
                                jg_error_t *err)
{
    if (instance) {
        jg_errprintf(err, "infra local/%s: the local backend has exactly one instance, "
                          "\"local\"", instance);
        return NULL;
    }
    jg_backend_t *b = jg_backend_local_from_env(env, err);
    if (!b)
        jg_errprefix(err, "backend local");
    return b;
}

static bool kubernetes_enabled(const jg_config_t *config)
{
    return config && config->kubernetes.enabled;
}

/* "kubernetes": the configured context; "kubernetes/<ctx>": that one. */
static jg_backend_t *kubernetes_make(const jg_backend_env_t *env, const char *instance,
                                     jg_error_t *err)
{
    return jg_backend_kubernetes_from_env(env, instance, err);
}

static const factory_t factories[] = {
    {"local", local_enabled, local_make},
    {"kubernetes", kubernetes_enabled, kubernetes_make},
};
#define N_FACTORIES (sizeof factories / sizeof factories[0])

/* The factory for infra's kind, and where its instance part starts (NULL:
 * none).  NULL when no kind matches. */
static const factory_t *factory_for(const char *infra, const char **instance)
{
    if (!infra)
        return NULL;
    size_t len = strcspn(infra, "/");
    *instance = infra[len] == '/' ? infra + len + 1 : NULL;
    for (size_t i = 0; i < N_FACTORIES; i++)
        if (strlen(factories[i].kind) == len && strncmp(factories[i].kind, infra, len) == 0)
            return &factories[i];
    return NULL;
}

int jg_registry_create_all(const jg_backend_env_t *env, jg_backend_t ***out, size_t *n,
                           jg_error_t *err)
{
    jg_backend_t **list = jg_xcalloc(N_FACTORIES, sizeof *list);
    size_t made = 0;
    for (size_t i = 0; i < N_FACTORIES; i++) {
        if (!factories[i].enabled(env->config))
            continue;
        jg_backend_t *b = factories[i].make(env, NULL, err);
        if (!b) {
            while (made > 0) {
                made--;
                list[made]->ops->destroy(list[made]);
            }
            free(list);
            *out = NULL;
            *n = 0;
            return -1;
        }
        list[made++] = b;
    }
    *out = list;
    *n = made;
    return 0;
}

bool jg_registry_knows(const jg_backend_env_t *env, const char *infra)
{
    const char *instance;
    const factory_t *f = factory_for(infra, &instance);
    return f && f->enabled(env->config);
}

jg_backend_t *jg_registry_create(const jg_backend_env_t *env, const char *infra, jg_error_t *err)
{
    const char *instance;
    const factory_t *f = factory_for(infra, &instance);
    if (!f) {
        jg_errprintf(err, "infra %s: no such backend kind", infra ? infra : "(none)");
        return NULL;
    }
    if (!f->enabled(env->config)) {
        jg_errprintf(err, "infra %s: backend %s is disabled in the configuration", infra,
                     f->kind);
        return NULL;
    }
    if (instance && !*instance) {
        jg_errprintf(err, "infra %s: names no instance after '/'", infra);
        return NULL;
    }
    return f->make(env, instance, err);
}
