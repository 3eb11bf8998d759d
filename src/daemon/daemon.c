/* daemon.c - jgschedd's life: create, run, destroy.
 *
 * jg_daemon_create builds, in order: the directories, the event loop, the
 * volume trash, the configuration, the store (held exclusively), the log
 * store, the scheduler (which makes the backends the configuration enables,
 * through the registry), the listening socket, the signal handling; then
 * sched recovers the groups that were active and has every backend sweep
 * what ended groups left behind.  The daemon never calls a backend itself.
 * jg_daemon_destroy tears down in reverse: connections first (they point
 * into everything else), the scheduler before the log store and the store
 * it writes, the loop last (everyone registered with it).
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

jg_daemon_t *jg_daemon_create(const jg_paths_t *paths, jg_error_t *err)
{
    jg_daemon_t *d = jg_xcalloc(1, sizeof *d);
    d->listen_fd = -1;
    d->signal_fd = -1;
    copy_paths(&d->paths, paths);
    char *policy_dir = NULL;
    if (jg_paths_create_dirs(&d->paths, err) < 0)
        goto fail;
    if (!(d->loop = jg_loop_create(err)))
        goto fail;
    char *trash = jg_xasprintf("%s/volumes/.trash", d->paths.home);
    /* Installed beside the daemon, as its shim is. */
    char *deleter = jg_sibling_executable("jgsched-deleter");
    d->trash = jg_trash_create(trash, deleter ? deleter : "jgsched-deleter", d->loop);
    free(deleter);
    free(trash);
    if (!(d->config = load_config(d->paths.config, err)))
        goto fail;
    if (!(d->store = jg_store_open_exclusive(d->paths.store, err)))
        goto fail;
    char *logs_dir = jg_xasprintf("%s/logs", d->paths.state_dir);
    d->logs = jg_logstore_open(logs_dir, err);
    free(logs_dir);
    if (!d->logs)
        goto fail;
    policy_dir = jg_policy_default_dir();
    jg_sched_options_t sopts = {.policy_dir = policy_dir,
                                .default_policy = d->config->default_policy,
                                .stop_grace_ms = (int)(d->config->stop_grace_s * 1000),
                                .config = d->config,
                                .volume_path = jgd_volume_path,
                                .volume_ctx = d,
                                .logs = d->logs,
                                .backend_env = {.loop = d->loop, .config = d->config,
                                                .state_dir = d->paths.state_dir}};
    if (!(d->sched = jg_sched_create(d->store, d->loop, &sopts, err)))
        goto fail;
    jg_sched_set_change_cb(d->sched, jgd_watch_group_changed, d);
    if (jgd_server_listen(d, err) < 0)
        goto fail;
    if (setup_signals(d, err) < 0)
        goto fail;
    if (jg_sched_recover(d->sched, err) < 0)    /* and sweeps every backend */
        goto fail;
    jg_loop_set_prepare(d->loop, on_prepare, d);
    free(policy_dir);
    return d;
fail:
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
    jg_logstore_close(d->logs);
    jg_store_close(d->store);
    jg_config_free(d->config);
    jg_trash_close(d->trash);
    jg_loop_destroy(d->loop);
    jg_paths_free(&d->paths);
    free(d);
}
