/* backends/local/factory.c - the registry's factory: a local backend made from
 * the daemon's configuration (backends.local) and the environment every
 * backend gets.  Part of the local backend (backend.c has the overview,
 * local_int.h the map). */
#include "local_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The shim: $JGSCHED_SHIM, else in libexec_dir, else next to the daemon,
 * else on $PATH. */
static char *find_shim(const char *libexec_dir)
{
    const char *env = getenv("JGSCHED_SHIM");
    if (env && *env)
        return jg_xstrdup(env);
    char *path = libexec_dir ? jg_xasprintf("%s/jgsched-shim", libexec_dir)
                             : jg_sibling_executable("jgsched-shim");
    if (path && access(path, X_OK) == 0)
        return path;
    free(path);
    return jg_xstrdup("jgsched-shim");
}

/* The capacity: what the config declares, the host's own for everything it
 * leaves out; the largest node defaults to the whole capacity. */
static void capacity_from_config(const jg_config_local_t *lc, jg_capacity_t *cap)
{
    jg_capacity_detect_host(cap);
    const jg_config_shape_t *c = &lc->capacity, *m = &lc->max_node;
    bool declared = c->has_cpus || c->has_memory || c->has_accels;
    if (c->has_cpus)
        cap->cpus = c->cpus;
    if (c->has_memory)
        cap->memory_gb = c->memory_gb;
    if (c->has_accels) {
        jg_capacity_clear(cap);
        jg_capacity_t declared_accels = {.accels = c->accels, .n_accels = c->n_accels};
        jg_capacity_t copy;
        jg_capacity_copy(&copy, &declared_accels);
        cap->accels = copy.accels;
        cap->n_accels = copy.n_accels;
    }
    cap->max_node_cpus = m->has_cpus ? m->cpus : cap->cpus;
    cap->max_node_memory_gb = m->has_memory ? m->memory_gb : cap->memory_gb;
    /* backends.local.oversubscribe: admission hands out more CPUs than there
     * are (memory and accelerators never); nodes then share the cores. */
    if (lc->oversubscribe > 1) {
        cap->cpus *= lc->oversubscribe;
        cap->max_node_cpus *= lc->oversubscribe;
    }
    snprintf(cap->source, sizeof cap->source, "%s", declared ? "config" : "host");
}

jg_backend_t *jg_backend_local_from_env(const jg_backend_env_t *env, jg_error_t *err)
{
    static const jg_config_t defaults_missing = {0};
    const jg_config_local_t *lc = env->config ? &env->config->local
                                              : &defaults_missing.local;
    char *shim = find_shim(env->libexec_dir);
    jg_capacity_t capacity;
    capacity_from_config(lc, &capacity);
    jg_local_config_t local = {.state_dir = env->state_dir, .shim_path = shim,
                               .loop = env->loop, .on_event = env->on_event,
                               .event_ctx = env->event_ctx, .capacity = &capacity,
                               .host_gpus = !lc->capacity.has_accels,
                               .share_host_network = lc->network == JG_CONFIG_NETWORK_HOST,
                               .nat = lc->nat,
                               .nat_network = lc->nat_network,
                               .cgroups_off = lc->cgroups == JG_CONFIG_CGROUPS_OFF};
    jg_backend_t *b = jg_backend_local_create(&local, err);
    jg_capacity_clear(&capacity);
    free(shim);
    return b;
}
