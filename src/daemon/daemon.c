/* daemon.c - jgschedd's life: create, run, destroy.
 *
 * jg_daemon_create builds, in order: the directories, the event loop, the
 * volume trash, the configuration, the store (held exclusively), the
 * scheduler, the local backend, the listening socket, the signal handling;
 * then it recovers the groups that were active and sweeps what ended groups
 * left behind.  jg_daemon_destroy tears down in reverse: connections first
 * (they point into everything else), the scheduler before the store it
 * writes, the loop last (everyone registered with it).
 *
 * Each loop turn's prepare hook runs the scheduler's admission pass and then
 * pushes watched groups' snapshots (watches.c), so a watcher sees the pass's
 * outcome in the same turn.  SIGTERM/SIGINT stop the loop (nodes keep
 * running for the next daemon); SIGHUP reloads policies.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon_int.h"
#include "jg_config.h"
#include "jgsched/backend.h"
#include "jgsched/capacity.h"
#include "jgsched/policy.h"

static void on_prepare(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_daemon_t *d = arg;
    jg_sched_pass(d->sched);
    jgd_watch_push(d);
}

static void on_signal(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)revents;
    jg_daemon_t *d = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            jg_log("info", "signal %u: stopping (nodes keep running)", si.ssi_signo);
            d->stopping = true;
            jg_loop_stop(loop);
        } else if (si.ssi_signo == SIGHUP) {
            jg_log("info", "SIGHUP: reloading policies");
            jg_sched_reload_policies(d->sched, NULL, NULL);
        }
    }
}

static int setup_signals(jg_daemon_t *d, jg_error_t *err)
{
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return jg_errprintf(err, "sigprocmask: %s", strerror(errno));
    d->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d->signal_fd < 0)
        return jg_errprintf(err, "signalfd: %s", strerror(errno));
    return jg_loop_add_fd(d->loop, d->signal_fd, EPOLLIN, on_signal, d, err);
}

static char *find_shim(void)
{
    const char *env = getenv("JGSCHED_SHIM");
    if (env && *env)
        return jg_xstrdup(env);
    char *sib = jg_sibling_executable("jgsched-shim");
    if (sib && access(sib, X_OK) == 0)
        return sib;
    free(sib);
    return jg_xstrdup("jgsched-shim");
}

/* After a crash: remove what groups that are no longer active left behind
 * (their namespaces, keepers, stray processes). */
static void sweep_leftovers(jg_daemon_t *d, jg_backend_t *b)
{
    if (!b->ops->sweep)
        return;
    jg_group_filter_t filter = {.active_only = true};
    jg_group_row_t *rows = NULL;
    size_t n = 0;
    jg_error_t err;
    if (jg_store_list_groups(d->store, &filter, &rows, &n, &err) < 0) {
        jg_log("warn", "sweep: %s", err.text);
        return;
    }
    int64_t *ids = jg_xcalloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = rows[i].id;
    if (b->ops->sweep(b, ids, n, &err) < 0)
        jg_log("warn", "sweep of %s: %s", b->ops->name, err.text);
    free(ids);
    jg_group_rows_free(rows, n);
}

static void copy_paths(jg_paths_t *dst, const jg_paths_t *src)
{
    dst->home = jg_xstrdup(src->home);
    dst->run_dir = jg_xstrdup(src->run_dir);
    dst->socket = jg_xstrdup(src->socket);
    dst->store = jg_xstrdup(src->store);
    dst->state_dir = jg_xstrdup(src->state_dir);
    dst->daemon_log = jg_xstrdup(src->daemon_log);
    dst->pid_file = jg_xstrdup(src->pid_file);
    dst->config = jg_xstrdup(src->config);
    dst->system = src->system;
}

/* config.yaml, or a start-up failure that lists every error in it. */
static jg_config_t *load_config(const char *path, jg_error_t *err)
{
    jg_spec_errors_t errs = {0};
    jg_config_t *cfg = jg_config_load(path, &errs);
    for (size_t i = 0; i < errs.n_warnings; i++)
        jg_log("warn", "%s", errs.warnings[i]);
    if (!cfg) {
        char text[sizeof err->text] = "";
        size_t used = 0;
        for (size_t i = 0; i < errs.count && used < sizeof text; i++)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s", i ? "; " : "",
                                     errs.messages[i]);
        jg_errprintf(err, "invalid configuration: %s", text);
    }
    jg_spec_errors_free(&errs);
    return cfg;
}

/* The local backend's capacity: what the config declares, the host's own for
 * everything it leaves out; the largest node defaults to the whole capacity. */
static void local_capacity(const jg_config_local_t *lc, jg_capacity_t *cap)
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

jg_daemon_t *jg_daemon_create(const jg_paths_t *paths, jg_error_t *err)
{
    jg_daemon_t *d = jg_xcalloc(1, sizeof *d);
    d->listen_fd = -1;
    d->signal_fd = -1;
    copy_paths(&d->paths, paths);
    char *shim = NULL;
    char *policy_dir = NULL;
    if (jg_paths_create_dirs(&d->paths, err) < 0)
        goto fail;
    if (!(d->loop = jg_loop_create(err)))
        goto fail;
    char *trash = jg_xasprintf("%s/volumes/.trash", d->paths.home);
    d->trash = jg_trash_create(trash, d->loop);
    free(trash);
    if (!(d->config = load_config(d->paths.config, err)))
        goto fail;
    if (!(d->store = jg_store_open_exclusive(d->paths.store, err)))
        goto fail;
    policy_dir = jg_policy_default_dir();
    jg_sched_options_t sopts = {.policy_dir = policy_dir,
                                .default_policy = d->config->default_policy,
                                .stop_grace_ms = (int)(d->config->stop_grace_s * 1000),
                                .config = d->config,
                                .volume_path = jgd_volume_path,
                                .volume_ctx = d};
    if (!(d->sched = jg_sched_create(d->store, d->loop, &sopts, err)))
        goto fail;
    jg_sched_set_change_cb(d->sched, jgd_watch_group_changed, d);
    shim = find_shim();
    jg_capacity_t capacity;
    local_capacity(&d->config->local, &capacity);
    jg_local_config_t local = {.state_dir = d->paths.state_dir, .shim_path = shim,
                               .loop = d->loop, .on_event = jg_sched_backend_event,
                               .event_ctx = d->sched, .capacity = &capacity,
                               .host_gpus = !d->config->local.capacity.has_accels,
                               .share_host_network =
                                   d->config->local.network == JG_CONFIG_NETWORK_HOST,
                               .nat = d->config->local.nat,
                               .nat_network = d->config->local.nat_network,
                               .cgroups_off =
                                   d->config->local.cgroups == JG_CONFIG_CGROUPS_OFF};
    jg_backend_t *b = jg_backend_local_create(&local, err);
    jg_capacity_clear(&capacity);
    if (!b)
        goto fail;
    jg_sched_add_backend(d->sched, b);
    if (jgd_server_listen(d, err) < 0)
        goto fail;
    if (setup_signals(d, err) < 0)
        goto fail;
    if (jg_sched_recover(d->sched, err) < 0)
        goto fail;
    sweep_leftovers(d, b);
    jg_loop_set_prepare(d->loop, on_prepare, d);
    free(shim);
    free(policy_dir);
    return d;
fail:
    free(shim);
    free(policy_dir);
    if (d->listen_fd >= 0)
        unlink(d->paths.socket);
    jg_daemon_destroy(d);
    return NULL;
}

int jg_daemon_run(jg_daemon_t *d, jg_error_t *err)
{
    jg_log("info", "jgschedd %s serving %s (store %s)", JG_VERSION, d->paths.socket, d->paths.store);
    int rc = jg_loop_run(d->loop, err);
    /* Deliver what is queued (the shutdown reply) before closing. */
    jgd_server_flush_all(d);
    return rc;
}

void jg_daemon_destroy(jg_daemon_t *d)
{
    if (!d)
        return;
    jgd_server_close(d);
    jgd_watch_free_all(d);
    if (d->signal_fd >= 0)
        close(d->signal_fd);
    jg_sched_destroy(d->sched);
    jg_store_close(d->store);
    jg_config_free(d->config);
    jg_trash_close(d->trash);
    jg_loop_destroy(d->loop);
    jg_paths_free(&d->paths);
    free(d);
}
