/* test_local_backend.c - the local backend, its shim and the node environment.
 *
 * Every test gets a fresh state directory and event loop; nodes are real
 * jgsched-shim process trees (the shim's path comes from $JGSCHED_SHIM).  The
 * loop runs until the events a test waits for have arrived, bounded by a
 * timer, and fini kills every shim's process group and removes the directory
 * whatever happened.
 */
#include <criterion/criterion.h>

#include "jgsched/backend.h"
#include "jgsched/backend_local.h"
#include "jgsched/capacity.h"
#include "jgsched/fsutil.h"
#include "jgsched/loop.h"
#include "jgsched/nodeenv.h"
#include "jgsched/proc.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <net/if.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define MAX_SHIMS 64
#define WAIT_MS 10000

typedef struct {
    jg_backend_event_t ev;
    char reason[512];
    char handle[1024];
    int64_t at_ms;
} rec_t;

static char state_dir[128];
static char scratch[256];           /* state_dir/scratch: markers and pid files */
static jg_loop_t *loop;
static jg_backend_t *be, *be2;
static rec_t evs[MAX_EVENTS];
static size_t n_evs;
static pid_t shims[MAX_SHIMS];
static const jg_kv_t *volumes;      /* the daemon's volume registry, as launch gets it */
static size_t n_volumes;
static size_t n_shims;
static pid_t victims[4];            /* processes a test hopes the backend spares */
static size_t n_victims;
static bool (*until)(void);
static bool timed_out;

/* ---- spec building (the test does not link the YAML parser) ------------ */

static jg_group_spec_t *spec;

static jg_group_spec_t *spec_new(const char *name)
{
    jg_group_spec_t *s = calloc(1, sizeof *s);
    s->name = strdup(name);
    return s;
}

static jg_job_spec_t *spec_job(jg_group_spec_t *s, const char *name, int nodes,
                               const char *setup, const char *run)
{
    s->jobs = realloc(s->jobs, (s->n_jobs + 1) * sizeof *s->jobs);
    jg_job_spec_t *j = &s->jobs[s->n_jobs++];
    memset(j, 0, sizeof *j);
    j->name = strdup(name);
    j->num_nodes = nodes;
    j->setup = setup ? strdup(setup) : NULL;
    j->run = run ? strdup(run) : NULL;
    return j;
}

static void job_env(jg_job_spec_t *j, const char *k, const char *v)
{
    j->envs = realloc(j->envs, (j->n_envs + 1) * sizeof *j->envs);
    j->envs[j->n_envs].key = strdup(k);
    j->envs[j->n_envs].value = strdup(v);
    j->n_envs++;
}

static void job_volume(jg_job_spec_t *j, const char *mount, const char *name)
{
    j->volumes = realloc(j->volumes, (j->n_volumes + 1) * sizeof *j->volumes);
    j->volumes[j->n_volumes].key = strdup(mount);
    j->volumes[j->n_volumes].value = strdup(name);
    j->n_volumes++;
}

static void spec_free(jg_group_spec_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_jobs; i++) {
        jg_job_spec_t *j = &s->jobs[i];
        free(j->name);
        free(j->setup);
        free(j->run);
        free(j->workdir);
        free(j->accel.name);
        for (size_t k = 0; k < j->n_envs; k++) {
            free(j->envs[k].key);
            free(j->envs[k].value);
        }
        free(j->envs);
        for (size_t k = 0; k < j->n_volumes; k++) {
            free(j->volumes[k].key);
            free(j->volumes[k].value);
        }
        free(j->volumes);
    }
    free(s->jobs);
    free(s->name);
    free(s);
}

/* ---- harness ------------------------------------------------------------ */

/* LOG events, kept apart from evs: every piece in arrival order. */
#define MAX_LOG_BYTES (256 * 1024)
#define MAX_LOG_PIECES 1024
typedef struct {
    int64_t group_id;
    int job_index, rank, attempt;
    size_t off, len;            /* in log_bytes */
} log_piece_t;
static char log_bytes[MAX_LOG_BYTES];
static size_t log_used;
static log_piece_t log_pieces[MAX_LOG_PIECES];
static size_t n_log_pieces;
static size_t n_stopped, n_cleaned;

/* Everything one node delivered (attempt 0: every attempt), NUL-terminated
 * (static buffer). */
static const char *node_output(int64_t gid, int job, int rank, int attempt)
{
    static char out[MAX_LOG_BYTES + 1];
    size_t n = 0;
    for (size_t i = 0; i < n_log_pieces; i++) {
        const log_piece_t *p = &log_pieces[i];
        if (p->group_id == gid && p->job_index == job && p->rank == rank &&
            (attempt == 0 || p->attempt == attempt)) {
            memcpy(out + n, log_bytes + p->off, p->len);
            n += p->len;
        }
    }
    out[n] = '\0';
    return out;
}

static void on_event(void *ctx, const jg_backend_event_t *ev)
{
    (void)ctx;
    if (ev->type == JG_BACKEND_LOG) {
        cr_assert_lt(n_log_pieces, MAX_LOG_PIECES, "too many LOG events");
        cr_assert_leq(log_used + ev->len, MAX_LOG_BYTES, "too much output");
        memcpy(log_bytes + log_used, ev->data, ev->len);
        log_pieces[n_log_pieces++] = (log_piece_t){.group_id = ev->group_id,
            .job_index = ev->job_index, .rank = ev->rank, .attempt = ev->attempt,
            .off = log_used, .len = ev->len};
        log_used += ev->len;
    } else if (ev->type == JG_BACKEND_STOPPED) {
        n_stopped++;
    } else if (ev->type == JG_BACKEND_CLEANED) {
        n_cleaned++;
    }
    if (ev->type == JG_BACKEND_LOG || ev->type == JG_BACKEND_STOPPED ||
        ev->type == JG_BACKEND_CLEANED) {
        if (until && until())
            jg_loop_stop(loop);
        return;
    }
    cr_assert_lt(n_evs, MAX_EVENTS, "too many events");
    rec_t *r = &evs[n_evs++];
    r->ev = *ev;
    r->ev.reason = NULL;
    r->ev.handle = NULL;
    r->at_ms = jg_now_mono_ms();
    snprintf(r->reason, sizeof r->reason, "%s", ev->reason ? ev->reason : "");
    snprintf(r->handle, sizeof r->handle, "%s", ev->handle ? ev->handle : "");
    int pid;
    if (ev->type == JG_BACKEND_NODE_STARTED && sscanf(r->handle, "pid=%d", &pid) == 1 &&
        n_shims < MAX_SHIMS)
        shims[n_shims++] = pid;
    if (until && until())
        jg_loop_stop(loop);
}

static void on_deadline(jg_loop_t *l, void *arg)
{
    (void)arg;
    timed_out = true;
    jg_loop_stop(l);
}

/* Some conditions (a pid file written by a node) come with no event: check
 * them every 20 ms too. */
static uint64_t tick_id;
static void on_tick(jg_loop_t *l, void *arg)
{
    (void)arg;
    if (until && until()) {
        tick_id = 0;
        jg_loop_stop(l);
        return;
    }
    tick_id = jg_loop_add_timer(l, 20, on_tick, NULL);
}

/* Runs the loop until pred() holds or ms pass; returns pred(). */
static bool run_until(bool (*pred)(void), int ms)
{
    if (pred && pred())
        return true;
    until = pred;
    timed_out = false;
    uint64_t t = jg_loop_add_timer(loop, ms, on_deadline, NULL);
    tick_id = pred ? jg_loop_add_timer(loop, 20, on_tick, NULL) : 0;
    jg_error_t err;
    cr_assert_eq(jg_loop_run(loop, &err), 0, "%s", err.text);
    jg_loop_cancel_timer(loop, t);
    if (tick_id)
        jg_loop_cancel_timer(loop, tick_id);
    until = NULL;
    return pred ? pred() : true;
}

static const char *type_name(jg_backend_event_type_t t)
{
    static const char *names[] = {"STARTED", "PENDING", "SETUP_DONE", "EXITED", "LOST",
                                  "LAUNCH_FAILED", "LOG", "STOPPED", "CLEANED", "CAPACITY"};
    return names[t];
}

/* All events so far, one a line, for failure messages (static buffer). */
static const char *dump(void)
{
    static char buf[8192];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n_evs && off < sizeof buf - 200; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "\n  %s g%" PRId64 " j%d r%d a%d "
                                "setup=%d code=%d sig=%d %s", type_name(evs[i].ev.type),
                                evs[i].ev.group_id, evs[i].ev.job_index, evs[i].ev.rank,
                                evs[i].ev.attempt, evs[i].ev.in_setup, evs[i].ev.exit_code,
                                evs[i].ev.signal, evs[i].reason);
    return buf;
}

static size_t count(jg_backend_event_type_t type)
{
    size_t c = 0;
    for (size_t i = 0; i < n_evs; i++)
        if (evs[i].ev.type == type)
            c++;
    return c;
}

static const rec_t *find(jg_backend_event_type_t type, int job, int rank)
{
    for (size_t i = 0; i < n_evs; i++)
        if (evs[i].ev.type == type && evs[i].ev.job_index == job && evs[i].ev.rank == rank)
            return &evs[i];
    return NULL;
}

/* find() for an event the test goes on to read: its absence fails the test
 * with every event so far, where a NULL would crash it without a word. */
static const rec_t *must_find(jg_backend_event_type_t type, int job, int rank)
{
    const rec_t *r = find(type, job, rank);
    cr_assert(r, "no event %d for job %d rank %d: %s", (int)type, job, rank, dump());
    return r;
}

static size_t want_n;
static jg_backend_event_type_t want_type;
static bool have_wanted(void) { return count(want_type) >= want_n; }
static bool final_count(void)
{
    return count(JG_BACKEND_NODE_EXITED) + count(JG_BACKEND_NODE_LOST) +
           count(JG_BACKEND_LAUNCH_FAILED) >= want_n;
}

static bool wait_for(jg_backend_event_type_t type, size_t n)
{
    want_type = type;
    want_n = n;
    return run_until(have_wanted, WAIT_MS);
}

/* cleanup() returns at once; the rest of it follows from the loop. */
static jg_backend_t *cleaning;
static bool cleaning_done(void) { return jg_backend_local_cleanups_pending(cleaning) == 0; }
static void finish_cleanups(jg_backend_t *b)
{
    cleaning = b;
    cr_assert(run_until(cleaning_done, WAIT_MS), "the cleanup never finished");
}

static bool wait_final(size_t n)
{
    want_n = n;
    return run_until(final_count, WAIT_MS);
}

static jg_backend_t *new_backend(void)
{
    const char *shim = getenv("JGSCHED_SHIM");
    cr_assert(shim && *shim, "set JGSCHED_SHIM to the jgsched-shim executable");
    jg_local_config_t cfg = {.state_dir = state_dir, .shim_path = shim, .loop = loop,
                             .on_event = on_event};
    jg_error_t err = {{0}};
    jg_backend_t *b = jg_backend_local_create(&cfg, &err);
    cr_assert(b, "create: %s", err.text);
    return b;
}

static void launch_on(jg_backend_t *b, int64_t gid, int attempt)
{
    jg_node_ref_t refs[64];
    size_t n = 0;
    for (size_t j = 0; j < spec->n_jobs; j++)
        for (int r = 0; r < spec->jobs[j].num_nodes; r++)
            refs[n++] = (jg_node_ref_t){.job_index = (int)j, .rank = r, .attempt = attempt};
    jg_launch_t req = {.group_id = gid, .spec = spec, .uid = getuid(), .gid = getgid(),
                       .user = NULL, .submitted_us = 1704164645123456LL, .nodes = refs,
                       .n_nodes = n, .volumes = volumes, .n_volumes = n_volumes};
    jg_error_t err = {{0}};
    cr_assert_eq(b->ops->launch(b, &req, &err), 0, "launch: %s", err.text);
}

static void launch(int64_t gid) { launch_on(be, gid, 1); }

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void setup(void)
{
    /* Checked before anything is made: a failed setup gets no teardown. */
    const char *shim = getenv("JGSCHED_SHIM");
    cr_assert(shim && *shim, "set JGSCHED_SHIM to the jgsched-shim executable");
    /* Not under /tmp: nodes do not see the host's /tmp, and they write to scratch. */
    snprintf(state_dir, sizeof state_dir, "/var/tmp/jg-localbackend-XXXXXX");
    cr_assert(mkdtemp(state_dir));
    snprintf(scratch, sizeof scratch, "%s/scratch", state_dir);
    cr_assert_eq(mkdir(scratch, 0755), 0);
    jg_error_t err;
    loop = jg_loop_create(&err);
    cr_assert(loop);
    n_evs = 0;
    n_shims = 0;
    log_used = n_log_pieces = n_stopped = n_cleaned = 0;
    spec = NULL;
    volumes = NULL;
    n_volumes = 0;
    jg_local_config_t cfg = {.state_dir = state_dir, .shim_path = shim, .loop = loop,
                             .on_event = on_event};
    be = jg_backend_local_create(&cfg, &err);
    if (!be)
        nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    cr_assert(be, "create: %s", err.text);
    be2 = NULL;
}

/* Every group directory a test left: cleanup() through a fresh backend,
 * which kills whatever runs there (nodes, the group's network keeper). */
static void cleanup_all_groups(void)
{
    char groups[256];
    snprintf(groups, sizeof groups, "%s/groups", state_dir);
    DIR *d = opendir(groups);
    if (!d)
        return;
    jg_local_config_t cfg = {.state_dir = state_dir, .shim_path = getenv("JGSCHED_SHIM"),
                             .loop = loop, .on_event = on_event};
    jg_error_t err;
    jg_backend_t *b = jg_backend_local_create(&cfg, &err);
    struct dirent *de;
    while (b && (de = readdir(d)))
        if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
            b->ops->cleanup(b, strtoll(de->d_name, NULL, 10), &err);
    closedir(d);
    if (b) {
        cleaning = b;
        run_until(cleaning_done, WAIT_MS);
        b->ops->destroy(b);
    }
}

static char saved_path[4096];       /* $PATH before a test put a fake nvidia-smi first */
static bool path_saved;
static char made_dir[256];          /* a host directory a test made for a mount point */
static char outside_dir[256];       /* a tree a test made outside state_dir (removed) */
static jg_group_spec_t *spec2;

static void teardown(void)
{
    if (be)
        be->ops->destroy(be);
    if (be2)
        be2->ops->destroy(be2);
    be = be2 = NULL;
    until = NULL;
    cleanup_all_groups();
    if (made_dir[0])
        rmdir(made_dir);            /* cleanup leaves mount points in place */
    made_dir[0] = '\0';
    if (outside_dir[0])
        nftw(outside_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    outside_dir[0] = '\0';
    if (path_saved)
        setenv("PATH", saved_path, 1);
    path_saved = false;
    for (size_t i = 0; i < n_shims; i++) {
        kill(-shims[i], SIGKILL);
        kill(shims[i], SIGKILL);
        while (waitpid(shims[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    n_shims = 0;
    for (size_t i = 0; i < n_victims; i++) {
        kill(victims[i], SIGKILL);
        while (waitpid(victims[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    n_victims = 0;
    jg_loop_destroy(loop);
    loop = NULL;
    spec_free(spec);
    spec = NULL;
    spec_free(spec2);
    spec2 = NULL;
    if (state_dir[0])
        nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    state_dir[0] = '\0';
}

TestSuite(local, .init = setup, .fini = teardown, .timeout = 60);

/* ---- small file helpers ------------------------------------------------- */

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static char *node_file(int64_t gid, const char *job, int rank, const char *name)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/groups/%" PRId64 "/%s-%d/%s", state_dir, gid, job, rank, name);
    return p;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Reads a whole file into buf (NUL-terminated); returns its length or -1. */
static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

static int read_pid(const char *path)
{
    char buf[64];
    if (read_file(path, buf, sizeof buf) <= 0)
        return -1;
    return atoi(buf);
}

/* Alive and not a zombie. */
static bool proc_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_file(path, buf, sizeof buf) <= 0)
        return false;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static const char *pid_path;
static bool pid_file_ready(void) { return read_pid(pid_path) > 0; }
static bool pid_file_exists(void) { return exists(pid_path); }

/* Runs the loop until a pid file written by a node appears; returns the pid. */
static int wait_pid_file(const char *path)
{
    pid_path = path;
    cr_assert(run_until(pid_file_ready, WAIT_MS), "no pid file %s", path);
    return read_pid(path);
}

static pid_t gone_pid;
static bool pid_gone(void) { return !proc_alive(gone_pid); }

static bool wait_gone(pid_t pid)
{
    gone_pid = pid;
    return run_until(pid_gone, 3000);
}

/* The address node `index` of a group gets: its own when nodes are isolated
 * (no warning), else the host's loopback.  Static buffer. */
static const char *node_ip(int index)
{
    static char buf[4][32];
    static int k;
    char *p = buf[k++ % 4];
    if (be->ops->warning(be))
        snprintf(p, sizeof buf[0], "127.0.0.1");
    else
        snprintf(p, sizeof buf[0], "10.200.0.%d", index + 2);
    return p;
}

/* ---- the barrier and exits ---------------------------------------------- */

Test(local, two_jobs_start_pass_setup_and_run_only_after_release)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "touch %s/ran-$JGSCHED_JOB-$SKYPILOT_NODE_RANK", scratch);
    spec_job(spec, "a", 1, "echo setup-a", run);
    spec_job(spec, "b", 2, "sleep 0.2; echo setup-b", run);
    launch(7);

    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3), "setup_done: %zu", count(JG_BACKEND_SETUP_DONE));
    cr_assert_eq(count(JG_BACKEND_NODE_STARTED), 3);
    for (int j = 0; j < 2; j++) {
        for (int r = 0; r < (j ? 2 : 1); r++) {
            const rec_t *s = find(JG_BACKEND_NODE_STARTED, j, r);
            cr_assert(s, "no NODE_STARTED for %d/%d", j, r);
            cr_assert_eq(s->ev.group_id, 7);
            cr_assert_eq(s->ev.attempt, 1);
            char addr[64];
            snprintf(addr, sizeof addr, " addr=%s ", node_ip(j == 0 ? 0 : 1 + r));
            cr_assert(strstr(s->handle, "pid=") && strstr(s->handle, " start=") &&
                      strstr(s->handle, addr) && strstr(s->handle, " dir=/"),
                      "handle: %s", s->handle);
            cr_assert(find(JG_BACKEND_SETUP_DONE, j, r));
        }
    }
    /* Nothing runs at the barrier. */
    run_until(NULL, 300);
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 0);
    cr_assert_not(exists(path_in(scratch, "ran-a-0")));
    cr_assert_not(exists(path_in(scratch, "ran-b-1")));

    jg_error_t err;
    cr_assert_eq(be->ops->release(be, 7, &err), 0, "%s", err.text);
    cr_assert(wait_final(3));
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 3);
    for (size_t i = 0; i < n_evs; i++) {
        if (evs[i].ev.type != JG_BACKEND_NODE_EXITED)
            continue;
        cr_assert_eq(evs[i].ev.exit_code, 0);
        cr_assert_eq(evs[i].ev.signal, 0);
        cr_assert_not(evs[i].ev.in_setup);
    }
    cr_assert(exists(path_in(scratch, "ran-a-0")));
    cr_assert(exists(path_in(scratch, "ran-b-0")));
    cr_assert(exists(path_in(scratch, "ran-b-1")));
}

Test(local, failed_setup_reports_its_code_and_never_runs)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "touch %s/ran", scratch);
    spec_job(spec, "a", 1, "echo failing; exit 7", run);
    launch(1);
    cr_assert(wait_final(1));
    const rec_t *e = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(e);
    cr_assert(e->ev.in_setup);
    cr_assert_eq(e->ev.exit_code, 7);
    cr_assert_eq(e->ev.signal, 0);
    cr_assert_eq(count(JG_BACKEND_SETUP_DONE), 0);
    jg_error_t err;
    cr_assert_eq(be->ops->release(be, 1, &err), 0);
    run_until(NULL, 200);
    cr_assert_not(exists(path_in(scratch, "ran")));
}

Test(local, run_exit_code_is_reported)
{
    spec = spec_new("grp");
    spec_job(spec, "a", 1, NULL, "echo bye; exit 3");
    launch(1);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 1, NULL), 0);
    cr_assert(wait_final(1));
    const rec_t *e = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(e);
    cr_assert_not(e->ev.in_setup);
    cr_assert_eq(e->ev.exit_code, 3);
    cr_assert_eq(e->ev.signal, 0);
}

Test(local, killed_run_reports_128_plus_signal_and_leaves_no_process)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "sleep 300 & echo $! > %s/bg.pid; echo $$ > %s/sh.pid; wait",
             scratch, scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(1);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 1, NULL), 0);
    int sh = wait_pid_file(path_in(scratch, "sh.pid"));
    int bg = wait_pid_file(path_in(scratch, "bg.pid"));
    cr_assert_eq(kill(sh, SIGKILL), 0);
    cr_assert(wait_final(1));
    const rec_t *e = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(e);
    cr_assert_eq(e->ev.exit_code, 137);
    cr_assert_eq(e->ev.signal, 9);
    cr_assert(wait_gone(bg), "the background sleep outlived its node");
    cr_assert(wait_gone(shims[0]), "the shim outlived its node");
}

Test(local, killed_shim_reports_node_lost_and_its_tree_is_killed)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "echo $$ > %s/sh.pid; sleep 300; true", scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(1);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 1, NULL), 0);
    int sh = wait_pid_file(path_in(scratch, "sh.pid"));
    cr_assert_eq(n_shims, 1);
    cr_assert_eq(kill(shims[0], SIGKILL), 0);
    cr_assert(wait_final(1));
    const rec_t *e = find(JG_BACKEND_NODE_LOST, 0, 0);
    cr_assert(e, "no NODE_LOST");
    cr_assert(strstr(e->reason, "node process tree was killed"), "reason: %s", e->reason);
    char want[64];
    snprintf(want, sizeof want, "shim pid %d", (int)shims[0]);
    cr_assert(strstr(e->reason, want), "reason: %s", e->reason);
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 0);
    cr_assert(wait_gone(sh), "the run outlived its shim");
}

/* ---- stop --------------------------------------------------------------- */

Test(local, stop_terminates_a_tree_with_a_background_child)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "sleep 300 & echo $! > %s/bg.pid; wait", scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(1);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 1, NULL), 0);
    int bg = wait_pid_file(path_in(scratch, "bg.pid"));
    jg_error_t err;
    cr_assert_eq(be->ops->stop(be, 1, -1, -1, 5000, &err), 0, "%s", err.text);
    int64_t t0 = jg_now_mono_ms();
    cr_assert(wait_final(1));
    cr_assert_lt(jg_now_mono_ms() - t0, 4000, "SIGTERM should have been enough");
    const rec_t *e = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(e);
    cr_assert_eq(e->ev.exit_code, 143);
    cr_assert_eq(e->ev.signal, SIGTERM);
    cr_assert(wait_gone(bg));
    cr_assert(wait_gone(shims[0]));
}

Test(local, stop_kills_after_grace_what_ignores_sigterm)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "trap '' TERM; sleep 300 & echo $! > %s/bg.pid; wait", scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(1);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 1, NULL), 0);
    int bg = wait_pid_file(path_in(scratch, "bg.pid"));
    int64_t t0 = jg_now_mono_ms();
    cr_assert_eq(be->ops->stop(be, 1, 0, -1, 300, NULL), 0);
    cr_assert(wait_final(1));
    cr_assert_geq(jg_now_mono_ms() - t0, 280, "killed before the grace ended");
    const rec_t *e = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(e, "a forced stop is an exit, not a lost node");
    cr_assert_eq(e->ev.exit_code, 137);
    cr_assert_eq(e->ev.signal, SIGKILL);
    cr_assert_not(e->ev.in_setup);
    cr_assert(wait_gone(bg));
}

Test(local, stop_at_the_barrier_cancels_before_run)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "touch %s/ran", scratch);
    spec_job(spec, "a", 2, NULL, run);
    launch(1);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(be->ops->stop(be, 1, 0, 1, 2000, NULL), 0);     /* rank 1 only */
    cr_assert(wait_final(1));
    const rec_t *e = find(JG_BACKEND_NODE_EXITED, 0, 1);
    cr_assert(e);
    cr_assert_eq(e->ev.exit_code, 143);
    cr_assert_not(e->ev.in_setup);
    cr_assert_not(find(JG_BACKEND_NODE_EXITED, 0, 0), "rank 0 was not asked to stop");
    cr_assert_eq(be->ops->release(be, 1, NULL), 0);
    cr_assert(wait_final(2));
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 0)->ev.exit_code, 0);
    /* rank 0 ran, rank 1 never did: both touch the same marker, so check its log of steps */
    char st[512];
    cr_assert_gt(read_file(node_file(1, "a", 1, "status"), st, sizeof st), 0);
    cr_assert(strstr(st, "1 cancelled"), "status: %s", st);
    cr_assert_null(strstr(st, "running"), "status: %s", st);
}

/* ---- environment -------------------------------------------------------- */

static const char *env_get(char **env, const char *key)
{
    size_t l = strlen(key);
    const char *found = NULL;
    for (char **p = env; *p; p++) {
        if (strncmp(*p, key, l) == 0 && (*p)[l] == '=') {
            cr_assert_null(found, "%s appears twice", key);
            found = *p + l + 1;
        }
    }
    return found;
}

Test(local, node_env_has_every_variable_and_ours_win)
{
    spec = spec_new("grp");
    jg_job_spec_t *t = spec_job(spec, "trainer", 2, NULL, "true");
    t->accel.name = strdup("H100");
    t->accel.count = 2;
    job_env(t, "FOO", "bar baz");
    job_env(t, "SKYPILOT_NODE_RANK", "99");
    job_env(t, "PATH", "/custom/bin:/usr/bin");
    job_env(t, "PYTHONUNBUFFERED", "");
    spec_job(spec, "worker", 1, NULL, "true");
    const char *ips[] = {"10.0.0.1", "10.0.0.2"};
    char **env = jg_node_env(spec, 42, 0, 1, 1, 1704164645123456LL, ips);
    cr_assert_str_eq(env_get(env, "SKYPILOT_JOBGROUP_NAME"), "grp");
    cr_assert_str_eq(env_get(env, "SKYPILOT_NODE_RANK"), "1");
    cr_assert_str_eq(env_get(env, "SKYPILOT_NUM_NODES"), "2");
    cr_assert_str_eq(env_get(env, "SKYPILOT_NODE_IPS"), "10.0.0.1\n10.0.0.2");
    cr_assert_str_eq(env_get(env, "SKYPILOT_TASK_ID"),
                     "jgsched-2024-01-02-03-04-05-123456_grp_trainer_42-0");
    cr_assert_str_eq(env_get(env, "SKYPILOT_NUM_GPUS_PER_NODE"), "2");
    cr_assert_str_eq(env_get(env, "JGSCHED_GROUP_ID"), "42");
    cr_assert_str_eq(env_get(env, "JGSCHED_JOB"), "trainer");
    cr_assert_str_eq(env_get(env, "JGSCHED_ATTEMPT"), "1");
    cr_assert_str_eq(env_get(env, "JGSCHED_GROUP_HOSTS"),
                     "trainer-0.grp\ntrainer-1.grp\nworker-0.grp");
    cr_assert_str_eq(env_get(env, "FOO"), "bar baz");
    cr_assert_str_eq(env_get(env, "PATH"), "/custom/bin:/usr/bin");
    cr_assert_str_eq(env_get(env, "LANG"), "C.UTF-8");
    cr_assert_str_eq(env_get(env, "SHELL"), "/bin/bash");
    cr_assert_str_eq(env_get(env, "PYTHONUNBUFFERED"), "", "the user's own setting wins");
    jg_env_free(env);

    env = jg_node_env(spec, 42, 1, 0, 3, 1704164645123456LL, ips);
    cr_assert_str_eq(env_get(env, "SKYPILOT_TASK_ID"),
                     "jgsched-2024-01-02-03-04-05-123456_grp_worker_42-1-3");
    cr_assert_str_eq(env_get(env, "SKYPILOT_NUM_GPUS_PER_NODE"), "0");
    cr_assert_str_eq(env_get(env, "SKYPILOT_NODE_IPS"), "10.0.0.1");
    cr_assert_str_eq(env_get(env, "JGSCHED_ATTEMPT"), "3");
    cr_assert_str_eq(env_get(env, "PATH"),
                     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    cr_assert_null(env_get(env, "FOO"));
    cr_assert_str_eq(env_get(env, "PYTHONUNBUFFERED"), "1",
                     "Python output must reach the log as it is printed");
    jg_env_free(env);
}

Test(local, node_runs_with_exactly_its_environment)
{
    setenv("JG_TEST_LEAK", "1", 1);
    spec = spec_new("envgrp");
    jg_job_spec_t *j = spec_job(spec, "trainer", 2, NULL, "env -0 > env.out");
    job_env(j, "FOO", "bar");
    job_env(j, "JGSCHED_JOB", "hijack");
    launch(5);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(be->ops->release(be, 5, NULL), 0);
    cr_assert(wait_final(2));
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 1)->ev.exit_code, 0);

    char buf[16384];
    ssize_t len = read_file(node_file(5, "trainer", 1, "work/env.out"), buf, sizeof buf);
    cr_assert_gt(len, 0);
    char *envv[256];
    size_t n = 0;
    for (ssize_t i = 0; i < len && n < 255; i += (ssize_t)strlen(buf + i) + 1)
        envv[n++] = buf + i;
    envv[n] = NULL;
    cr_assert_str_eq(env_get(envv, "SKYPILOT_JOBGROUP_NAME"), "envgrp");
    cr_assert_str_eq(env_get(envv, "SKYPILOT_NODE_RANK"), "1");
    cr_assert_str_eq(env_get(envv, "SKYPILOT_NUM_NODES"), "2");
    char ips[64];
    snprintf(ips, sizeof ips, "%s\n", node_ip(0));
    strcat(ips, node_ip(1));
    cr_assert_str_eq(env_get(envv, "SKYPILOT_NODE_IPS"), ips);
    cr_assert_str_eq(env_get(envv, "SKYPILOT_TASK_ID"),
                     "jgsched-2024-01-02-03-04-05-123456_envgrp_trainer_5-0");
    cr_assert_str_eq(env_get(envv, "JGSCHED_GROUP_ID"), "5");
    cr_assert_str_eq(env_get(envv, "JGSCHED_JOB"), "trainer");
    cr_assert_str_eq(env_get(envv, "JGSCHED_GROUP_HOSTS"), "trainer-0.envgrp\ntrainer-1.envgrp");
    cr_assert_str_eq(env_get(envv, "FOO"), "bar");
    cr_assert_str_eq(env_get(envv, "LANG"), "C.UTF-8");
    cr_assert(env_get(envv, "HOME") && env_get(envv, "HOME")[0] == '/');
    cr_assert(env_get(envv, "USER") && env_get(envv, "USER")[0]);
    cr_assert(env_get(envv, "PATH"));
    cr_assert_null(env_get(envv, "JG_TEST_LEAK"), "the daemon's environment leaked");
    cr_assert_null(env_get(envv, "JGSCHED_SHIM"), "the daemon's environment leaked");
    unsetenv("JG_TEST_LEAK");
}

/* ---- logs, workdir, a job without run ----------------------------------- */

Test(local, output_is_streamed_as_log_events_before_the_node_ends)
{
    spec = spec_new("grp");
    spec_job(spec, "a", 1, "echo from-setup", "echo from-run; echo to-stderr >&2");
    launch(3);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 3, NULL), 0);
    cr_assert(wait_final(1));
    cr_assert_str_eq(node_output(3, 0, 0, 0), "from-setup\nfrom-run\nto-stderr\n");
    cr_assert_str_eq(node_output(3, 0, 0, 1), "from-setup\nfrom-run\nto-stderr\n",
                     "output tagged with another attempt");
    /* The output came before the end: the core has it all when it learns of the end. */
    size_t pieces = n_log_pieces;
    run_until(NULL, 300);
    cr_assert_eq(n_log_pieces, pieces, "output arrived after the node's end");
}

static bool first_line_seen(void)
{
    return strcmp(node_output(4, 0, 0, 1), "first\n") == 0;
}

Test(local, output_of_a_live_node_arrives_while_it_runs)
{
    spec = spec_new("grp");
    char run[512];
    snprintf(run, sizeof run, "echo first; while [ ! -e %s/go ]; do sleep 0.05; done; echo second",
             scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(4);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 4, NULL), 0);
    cr_assert(run_until(first_line_seen, WAIT_MS), "no output while the node runs");
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 0);
    close(creat(path_in(scratch, "go"), 0644));
    cr_assert(wait_final(1));
    cr_assert_str_eq(node_output(4, 0, 0, 1), "first\nsecond\n");
}

Test(local, job_without_run_exits_zero_after_release)
{
    spec = spec_new("grp");
    spec_job(spec, "a", 1, "true", NULL);
    launch(1);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    run_until(NULL, 200);
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 0, "exited before release");
    cr_assert_eq(be->ops->release(be, 1, NULL), 0);
    cr_assert(wait_final(1));
    const rec_t *e = must_find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert_eq(e->ev.exit_code, 0);
    cr_assert_not(e->ev.in_setup);
}

Test(local, workdir_is_copied_into_the_node_working_directory)
{
    char wd[512];
    snprintf(wd, sizeof wd, "%s/src", scratch);
    cr_assert_eq(mkdir(wd, 0755), 0);
    FILE *f = fopen(path_in(wd, "data.txt"), "w");
    cr_assert(f);
    fputs("payload\n", f);
    fclose(f);
    spec = spec_new("grp");
    jg_job_spec_t *j = spec_job(spec, "a", 1, "cat data.txt", NULL);
    j->workdir = strdup(wd);
    launch(1);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    char buf[256];
    cr_assert_gt(read_file(node_file(1, "a", 0, "output.log"), buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "payload\n");
}

Test(local, seven_nodes_launch_in_parallel)
{
    spec = spec_new("grp");
    spec_job(spec, "a", 4, "sleep 1", "true");
    spec_job(spec, "b", 3, "sleep 1", "true");
    int64_t t0 = jg_now_mono_ms();
    launch(9);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 7));
    int64_t took = jg_now_mono_ms() - t0;
    cr_assert_lt(took, 4000, "7 setups of 1 s took %" PRId64 " ms: not parallel", took);
    /* every NODE_STARTED came before the first SETUP_DONE */
    size_t started = 0;
    for (size_t i = 0; i < n_evs && evs[i].ev.type != JG_BACKEND_SETUP_DONE; i++)
        if (evs[i].ev.type == JG_BACKEND_NODE_STARTED)
            started++;
    cr_assert_eq(started, 7);
    cr_assert_eq(be->ops->release(be, 9, NULL), 0);
    cr_assert(wait_final(7));
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 7);
}

Test(local, launch_failure_of_one_node_does_not_stop_the_others)
{
    spec = spec_new("grp");
    spec_job(spec, "a", 1, NULL, "true");
    spec_job(spec, "b", 1, NULL, "true");
    /* b-0 cannot be created: a file is in the way of its directory */
    char gdir[512];
    snprintf(gdir, sizeof gdir, "%s/groups/4", state_dir);
    cr_assert_eq(mkdir(gdir, 0755), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/b-0", gdir);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    launch(4);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    const rec_t *f = find(JG_BACKEND_LAUNCH_FAILED, 1, 0);
    cr_assert(f, "no LAUNCH_FAILED for b-0");
    cr_assert(strlen(f->reason) > 0);
    cr_assert(find(JG_BACKEND_SETUP_DONE, 0, 0));

    /* a request naming a node the spec does not have fails as a whole */
    jg_node_ref_t bad = {.job_index = 5, .rank = 0, .attempt = 1};
    jg_launch_t req = {.group_id = 4, .spec = spec, .uid = getuid(), .gid = getgid(),
                       .nodes = &bad, .n_nodes = 1};
    jg_error_t err;
    cr_assert_eq(be->ops->launch(be, &req, &err), -1);
    cr_assert(strstr(err.text, "no job 5"), "%s", err.text);
}

Test(local, relaunch_runs_a_new_attempt_in_the_same_node)
{
    spec = spec_new("grp");
    spec_job(spec, "a", 1, NULL, "echo attempt-$JGSCHED_ATTEMPT; exit $((JGSCHED_ATTEMPT == 1 ? 9 : 0))");
    launch(2);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 2, NULL), 0);
    cr_assert(wait_final(1));
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 0)->ev.exit_code, 9);
    launch_on(be, 2, 2);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(evs[n_evs - 1].ev.attempt, 2);
    cr_assert_eq(be->ops->release(be, 2, NULL), 0);
    cr_assert(wait_final(2));
    const rec_t *last = &evs[n_evs - 1];
    cr_assert_eq(last->ev.type, JG_BACKEND_NODE_EXITED);
    cr_assert_eq(last->ev.attempt, 2);
    cr_assert_eq(last->ev.exit_code, 0);
    char buf[256];
    cr_assert_gt(read_file(node_file(2, "a", 0, "output.log"), buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "attempt-1\nattempt-2\n");
    /* Each attempt's output is tagged with it, for `jgsched logs`. */
    cr_expect_str_eq(node_output(2, 0, 0, 1), "attempt-1\n");
    cr_expect_str_eq(node_output(2, 0, 0, 2), "attempt-2\n");
}

/* ---- cleanup ------------------------------------------------------------ */

Test(local, cleanup_kills_the_group_keeps_its_log_and_reports_cleaned)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "sleep 300 & echo $! > %s/bg.pid; echo hi; wait", scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(6);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 6, NULL), 0);
    int bg = wait_pid_file(path_in(scratch, "bg.pid"));
    jg_error_t err;
    cr_assert_eq(be->ops->cleanup(be, 6, &err), 0, "%s", err.text);
    cr_assert_eq(n_cleaned, 0, "CLEANED came from inside cleanup()");
    finish_cleanups(be);
    cr_assert_not(proc_alive(shims[0]), "cleanup finished before the shim died");
    cr_assert(wait_gone(bg), "the background sleep survived cleanup");
    cr_assert_not(exists(node_file(6, "a", 0, "env")));
    cr_assert_not(exists(node_file(6, "a", 0, "run.sh")));
    cr_assert_not(exists(node_file(6, "a", 0, "release")));
    cr_assert_not(exists(node_file(6, "a", 0, "work")));
    cr_assert(exists(node_file(6, "a", 0, "output.log")));
    run_until(NULL, 100);
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED) + count(JG_BACKEND_NODE_LOST), 0,
                 "a cleaned-up group reports nothing more");
    cr_assert_eq(n_cleaned, 1, "no CLEANED after cleanup()");
}

/* ---- cleanup and launch never hold the loop ------------------------------ */

static size_t ticks;
static uint64_t ticker_id;
static void on_ticker(jg_loop_t *l, void *arg)
{
    (void)arg;
    ticks++;
    ticker_id = jg_loop_add_timer(l, 10, on_ticker, NULL);
}

static bool cleanups_done(void) { return jg_backend_local_cleanups_pending(be) == 0; }

/* A "node" of group gid, found again by reattach, that does not die when
 * the backend kills it, as one stuck in the kernel would not: its handle
 * names init (pid 1), which the backend never signals (jg_proc_kill refuses
 * it) and which never ends.  Returns its pid. */
static pid_t reattach_unkillable_node(int64_t gid)
{
    pid_t pid = 1;
    unsigned long long start = 0;
    cr_assert_eq(jg_proc_starttime(pid, &start), 0);
    char dir[512], handle[1024];
    snprintf(dir, sizeof dir, "%s/groups/%" PRId64, state_dir, gid);
    cr_assert_eq(mkdir(dir, 0711), 0);
    snprintf(dir, sizeof dir, "%s/groups/%" PRId64 "/a-0", state_dir, gid);
    cr_assert_eq(mkdir(dir, 0700), 0);
    for (int i = 0; i < 2; i++) {
        int fd = open(path_in(dir, i ? "env" : "status"), O_WRONLY | O_CREAT | O_EXCL, 0644);
        cr_assert_geq(fd, 0, "%s", strerror(errno));
        close(fd);
    }
    snprintf(handle, sizeof handle, "pid=%d start=%llu addr=127.0.0.1 dir=%s", (int)pid, start,
             dir);
    jg_node_handle_t h = {.job_index = 0, .rank = 0, .attempt = 1, .handle = handle};
    jg_error_t err;
    cr_assert_eq(be->ops->reattach(be, gid, &h, 1, &err), 0, "%s", err.text);
    run_until(NULL, 50);
    cr_assert_eq(count(JG_BACKEND_NODE_LOST), 0, "the node was not found again: %s", dump());
    return pid;
}

static size_t cleaned_wanted;
static bool cleaned_enough(void) { return n_cleaned >= cleaned_wanted; }

Test(local, cleanup_returns_at_once_and_finishes_from_the_loop)
{
    pid_t stuck = reattach_unkillable_node(70);
    jg_error_t err;
    int64_t t0 = jg_now_mono_ms();
    cr_assert_eq(be->ops->cleanup(be, 70, &err), 0, "%s", err.text);
    int64_t took = jg_now_mono_ms() - t0;
    cr_assert_lt(took, 1000, "cleanup() waited %lld ms for a node that does not die",
                 (long long)took);
    cr_assert_eq(jg_backend_local_cleanups_pending(be), 1);
    cr_assert(exists(node_file(70, "a", 0, "env")), "files go last, once the node is dealt with");
    cr_assert_eq(be->ops->cleanup(be, 70, &err), 0, "a second cleanup joins the first");
    cr_assert_eq(jg_backend_local_cleanups_pending(be), 1);

    ticks = 0;
    ticker_id = jg_loop_add_timer(loop, 10, on_ticker, NULL);
    cr_assert(run_until(cleanups_done, WAIT_MS), "the cleanup never finished");
    jg_loop_cancel_timer(loop, ticker_id);
    cr_assert_geq(ticks, 10, "the loop served only %zu timer ticks while the cleanup waited "
                  "(about 2 s)", ticks);
    cr_assert_not(exists(node_file(70, "a", 0, "env")), "the runtime files went at the end");
    cr_assert_eq(stuck, 1);
    cleaned_wanted = 1;
    cr_assert(run_until(cleaned_enough, WAIT_MS), "no CLEANED after the cleanup");
    run_until(NULL, 50);
    cr_assert_eq(n_cleaned, 1, "one CLEANED for the joined cleanups, not %zu", n_cleaned);
    cr_assert_eq(n_evs, 0, "a cleaned-up group reports nothing but CLEANED: %s", dump());
}

Test(local, cleanup_completes_after_the_nodes_died)
{
    spec = spec_new("cl");
    spec_job(spec, "a", 2, NULL, "exec sleep 300");
    launch(71);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(be->ops->release(be, 71, NULL), 0);
    jg_error_t err;
    cleaned_wanted = n_cleaned + 1;
    cr_assert_eq(be->ops->cleanup(be, 71, &err), 0, "%s", err.text);
    cr_assert(run_until(cleanups_done, WAIT_MS), "the cleanup never finished");
    cr_assert(run_until(cleaned_enough, WAIT_MS), "no CLEANED after the cleanup");
    for (size_t i = 0; i < n_shims; i++)
        cr_assert_not(proc_alive(shims[i]), "cleanup completed before shim %d died", shims[i]);
    cr_assert_not(exists(node_file(71, "a", 1, "env")));
    cr_assert(exists(node_file(71, "a", 1, "output.log")));
}

Test(local, destroy_in_the_middle_of_a_cleanup_frees_it)
{
    reattach_unkillable_node(72);
    jg_error_t err;
    cr_assert_eq(be->ops->cleanup(be, 72, &err), 0, "%s", err.text);
    cr_assert_eq(jg_backend_local_cleanups_pending(be), 1);
    be->ops->destroy(be);       /* frees the cleanup midway (ASan: nothing leaks) */
    be = NULL;
    run_until(NULL, 50);
}

static size_t started_at_first_turn;
static void note_started(jg_loop_t *l, void *arg)
{
    (void)l;
    (void)arg;
    started_at_first_turn = count(JG_BACKEND_NODE_STARTED) + count(JG_BACKEND_LAUNCH_FAILED);
}

Test(local, a_large_launch_is_spread_over_loop_turns_with_events_in_order)
{
    spec = spec_new("big");
    spec_job(spec, "a", 20, NULL, "exec sleep 300");
    launch(73);
    started_at_first_turn = SIZE_MAX;
    jg_loop_add_timer(loop, 0, note_started, NULL);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 20), "%s", dump());
    cr_assert_lt(started_at_first_turn, 20, "the whole launch ran before the loop served a timer");
    /* (With isolated nodes none may have started by then: they wait for the
     * group's network, which the keeper builds while the loop goes on.) */
    int next = 0;
    for (size_t i = 0; i < n_evs; i++)
        if (evs[i].ev.type == JG_BACKEND_NODE_STARTED)
            cr_assert_eq(evs[i].ev.rank, next++, "out of order: %s", dump());
    cr_assert_eq(next, 20, "%s", dump());
    cr_assert_eq(count(JG_BACKEND_LAUNCH_FAILED), 0, "%s", dump());
}

/* The keeper builds the group's network while the loop goes on: launch()
 * returns with the keeper recorded and no node started, and the nodes start
 * when it reports the network ready. */
Test(local, a_launch_does_not_wait_for_the_group_network)
{
    if (be->ops->warning(be))
        cr_skip_test("nodes are not isolated here: %s", be->ops->warning(be));
    spec = spec_new("netwait");
    spec_job(spec, "a", 2, NULL, "exec sleep 300");
    launch(75);
    /* (Events are delivered on later turns: a node's files tell whether
     * launch() started it.) */
    cr_assert_not(exists(node_file(75, "a", 0, "env")),
                  "launch() waited for the group's network and started a node");
    char *net = jg_xasprintf("%s/groups/75/net", state_dir);
    cr_assert(exists(net), "the keeper is not recorded before it is ready");
    free(net);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2), "%s", dump());
    cr_assert_eq(count(JG_BACKEND_NODE_STARTED), 2, "%s", dump());
    cr_assert_eq(count(JG_BACKEND_LAUNCH_FAILED), 0, "%s", dump());
}

/* Launches group id (name) of one job of n sleeping nodes and stops it at
 * once: every node, queued or not yet, is started and then stopped. */
static void stop_right_after_launch(const char *name, int64_t id, size_t n)
{
    spec = spec_new(name);
    spec_job(spec, "a", (int)n, NULL, "exec sleep 300");
    launch(id);
    jg_error_t err;
    cr_assert_eq(be->ops->stop(be, id, -1, -1, 0, &err), 0, "%s", err.text);
    cr_assert(wait_final(n), "%s", dump());
    cr_assert_eq(count(JG_BACKEND_NODE_STARTED), n, "%s", dump());
}

/* A stop that comes while the group's network is still being built: the
 * queued nodes are started and stopped like the others. */
Test(local, a_stop_before_the_group_network_is_up_stops_every_node)
{
    stop_right_after_launch("netstop", 76, 3);
}

Test(local, a_stop_during_a_spread_launch_stops_its_queued_nodes_too)
{
    stop_right_after_launch("bigstop", 74, 20);
}

/* ---- reattach after a daemon restart ------------------------------------ */

static jg_node_handle_t handles[16];
static char handle_text[16][1024];

static size_t collect_handles(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_evs; i++) {
        if (evs[i].ev.type != JG_BACKEND_NODE_STARTED)
            continue;
        snprintf(handle_text[n], sizeof handle_text[n], "%s", evs[i].handle);
        handles[n] = (jg_node_handle_t){.job_index = evs[i].ev.job_index,
                                        .rank = evs[i].ev.rank,
                                        .attempt = evs[i].ev.attempt,
                                        .handle = handle_text[n]};
        n++;
    }
    return n;
}

Test(local, reattach_reports_exits_that_happened_while_away_and_after)
{
    spec = spec_new("grp");
    char run_c[1024];
    snprintf(run_c, sizeof run_c, "echo $$ > %s/c.pid; sleep 300; true", scratch);
    char run_b[1024];
    snprintf(run_b, sizeof run_b, "while [ ! -e %s/go ]; do sleep 0.05; done; exit 6", scratch);
    char run_a[1024];
    snprintf(run_a, sizeof run_a, "while [ ! -e %s/a-go ]; do sleep 0.05; done; exit 5", scratch);
    spec_job(spec, "a", 1, NULL, run_a);
    spec_job(spec, "b", 1, NULL, run_b);
    spec_job(spec, "c", 1, NULL, run_c);
    launch(8);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3));
    cr_assert_eq(be->ops->release(be, 8, NULL), 0);
    wait_pid_file(path_in(scratch, "c.pid"));
    size_t n = collect_handles();
    cr_assert_eq(n, 3);
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED) + count(JG_BACKEND_NODE_LOST), 0, "%s", dump());

    /* The daemon goes away; a exits, c's shim is killed meanwhile. */
    be->ops->destroy(be);
    be = NULL;
    pid_t c_shim = 0;
    for (size_t i = 0; i < n; i++)
        if (handles[i].job_index == 2)
            sscanf(handles[i].handle, "pid=%d", &c_shim);
    cr_assert_eq(kill(c_shim, SIGKILL), 0);
    int go = open(path_in(scratch, "a-go"), O_CREAT | O_WRONLY, 0644);
    close(go);
    char st[512];
    for (int i = 0; i < 200; i++) {
        if (read_file(node_file(8, "a", 0, "status"), st, sizeof st) > 0 && strstr(st, "exit run"))
            break;
        usleep(20000);
    }
    cr_assert(strstr(st, "1 exit run 5 0"), "status of a: %s", st);

    size_t before = n_evs;
    be2 = new_backend();
    jg_error_t err;
    cr_assert_eq(be2->ops->reattach(be2, 8, handles, n, &err), 0, "%s", err.text);
    cr_assert_eq(n_evs, before, "events must come from the loop, not from inside reattach");
    cr_assert(wait_final(2));
    const rec_t *a = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(a, "a's exit while the daemon was away was not reported:%s", dump());
    cr_assert_eq(a->ev.exit_code, 5);
    const rec_t *c = find(JG_BACKEND_NODE_LOST, 2, 0);
    cr_assert(c, "c's killed shim was not reported:%s", dump());
    cr_assert_null(find(JG_BACKEND_NODE_EXITED, 1, 0));
    for (size_t i = before; i < n_evs; i++)
        cr_assert_neq(evs[i].ev.type, JG_BACKEND_SETUP_DONE, "released nodes replay no SETUP_DONE");

    /* b is still followed live. */
    int fd = open(path_in(scratch, "go"), O_CREAT | O_WRONLY, 0644);
    close(fd);
    cr_assert(wait_final(3));
    const rec_t *b = find(JG_BACKEND_NODE_EXITED, 1, 0);
    cr_assert(b);
    cr_assert_eq(b->ev.exit_code, 6);
    cr_assert_eq(b->ev.attempt, 1);
    cr_assert(wait_gone(c_shim));
}

Test(local, reattach_at_the_barrier_replays_setup_done_and_release_works)
{
    spec = spec_new("grp");
    spec_job(spec, "a", 2, "true", "exit 4");
    launch(11);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    size_t n = collect_handles();
    be->ops->destroy(be);
    be = NULL;

    be2 = new_backend();
    jg_error_t err;
    cr_assert_eq(be2->ops->reattach(be2, 11, handles, n, &err), 0, "%s", err.text);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 4));
    cr_assert_eq(be2->ops->release(be2, 11, &err), 0, "%s", err.text);
    cr_assert(wait_final(2));
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 0)->ev.exit_code, 4);
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 1)->ev.exit_code, 4);

    /* A handle for a process that no longer exists is a lost node. */
    jg_node_handle_t gone = {.job_index = 0, .rank = 0, .attempt = 1,
                             .handle = "pid=999999 start=1 addr=127.0.0.1 dir=/nonexistent"};
    size_t before = n_evs;
    cr_assert_eq(be2->ops->reattach(be2, 12, &gone, 1, &err), 0);
    cr_assert(wait_final(3));
    cr_assert_eq(evs[before].ev.type, JG_BACKEND_NODE_LOST);
    cr_assert_eq(evs[before].ev.group_id, 12);
}

Test(local, cleanup_after_a_restart_kills_nodes_nobody_reattached)
{
    spec = spec_new("grp");
    char run[1024];
    snprintf(run, sizeof run, "echo $$ > %s/sh.pid; sleep 300; true", scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(13);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 13, NULL), 0);
    int sh = wait_pid_file(path_in(scratch, "sh.pid"));
    be->ops->destroy(be);
    be = NULL;

    be2 = new_backend();
    jg_error_t err;
    cr_assert_eq(be2->ops->cleanup(be2, 13, &err), 0, "%s", err.text);
    cr_assert(wait_gone(sh), "the run survived cleanup");
    cr_assert(wait_gone(shims[0]), "the shim survived cleanup");
}

Test(local, a_missing_shim_is_an_error_at_create)
{
    jg_local_config_t cfg = {.state_dir = state_dir, .shim_path = "/nonexistent/jgsched-shim",
                             .loop = loop, .on_event = on_event};
    jg_error_t err;
    cr_assert_null(jg_backend_local_create(&cfg, &err));
    cr_assert(strstr(err.text, "/nonexistent/jgsched-shim"), "%s", err.text);
}

Test(local, root_runs_nodes_as_the_submitting_user)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw)
        cr_skip_test("needs root and a `nobody` user");
    cr_assert_eq(chmod(state_dir, 0711), 0);        /* as a root daemon's state dir must be */
    spec = spec_new("grp");
    spec_job(spec, "a", 1, "id -u > setup.uid", "id -u > run.uid; echo $HOME $USER > who");
    jg_node_ref_t ref = {.job_index = 0, .rank = 0, .attempt = 1};
    jg_launch_t req = {.group_id = 14, .spec = spec, .uid = pw->pw_uid, .gid = pw->pw_gid,
                       .user = "nobody", .submitted_us = 1, .nodes = &ref, .n_nodes = 1};
    jg_error_t err;
    cr_assert_eq(be->ops->launch(be, &req, &err), 0, "%s", err.text);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    cr_assert_eq(be->ops->release(be, 14, NULL), 0);
    cr_assert(wait_final(1));
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 0)->ev.exit_code, 0, "%s", dump());
    char buf[128], want[160];
    snprintf(want, sizeof want, "%d\n", (int)pw->pw_uid);
    cr_assert_gt(read_file(node_file(14, "a", 0, "work/setup.uid"), buf, sizeof buf), 0);
    cr_assert_str_eq(buf, want);
    cr_assert_gt(read_file(node_file(14, "a", 0, "work/run.uid"), buf, sizeof buf), 0);
    cr_assert_str_eq(buf, want);
    cr_assert_gt(read_file(node_file(14, "a", 0, "work/who"), buf, sizeof buf), 0);
    snprintf(want, sizeof want, "%s nobody\n", pw->pw_dir);
    cr_assert_str_eq(buf, want);
    struct stat st;
    cr_assert_eq(stat(node_file(14, "a", 0, "env"), &st), 0);
    cr_assert_eq(st.st_uid, pw->pw_uid);
    cr_assert_eq(st.st_mode & 0777, 0600, "the env may hold secrets");
}

/* ---- networking: addresses, names, isolation, /tmp ------------------------ */

static void need_isolation(void)
{
    if (be->ops->warning(be))
        cr_skip_test("nodes are not isolated here: %s", be->ops->warning(be));
}

/* Launches one node of the spec (a recovery attempt, say). */
static void launch_node(int64_t gid, int job, int rank, int attempt)
{
    jg_node_ref_t ref = {.job_index = job, .rank = rank, .attempt = attempt};
    jg_launch_t req = {.group_id = gid, .spec = spec, .uid = getuid(), .gid = getgid(),
                       .submitted_us = 1, .nodes = &ref, .n_nodes = 1, .volumes = volumes,
                       .n_volumes = n_volumes};
    jg_error_t err = {{0}};
    cr_assert_eq(be->ops->launch(be, &req, &err), 0, "launch: %s", err.text);
}

static pid_t keeper_of(int64_t gid)
{
    char path[512], buf[128];
    snprintf(path, sizeof path, "%s/groups/%" PRId64 "/net", state_dir, gid);
    int pid = 0;
    if (read_file(path, buf, sizeof buf) <= 0 || sscanf(buf, "keeper %d", &pid) != 1)
        return -1;
    return pid;
}

static ino_t netns_of(pid_t pid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* How many processes on the machine are in network namespace `ino`. */
static int members_of(ino_t ino)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] >= '1' && de->d_name[0] <= '9' && netns_of(atoi(de->d_name)) == ino)
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Links of this process's network namespace (sysfs would show the namespace
 * it was mounted in). */
static int host_links(void)
{
    struct if_nameindex *all = if_nameindex();
    int n = 0;
    for (struct if_nameindex *i = all; i && i->if_index; i++)
        n++;
    if_freenameindex(all);
    return n;
}

Test(local, nodes_get_their_own_address_hostname_and_hosts_file)
{
    need_isolation();
    spec = spec_new("netgrp");
    const char *run = "hostname > hn; cat /etc/hosts > hosts; ip -4 -o addr show eth0 > addr; "
                      "getent hosts srv-0.netgrp > srv";
    spec_job(spec, "srv", 1, NULL, run);
    spec_job(spec, "cli", 2, NULL, run);
    launch(40);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3), "%s", dump());
    for (size_t i = 0; i < n_evs; i++) {
        if (evs[i].ev.type != JG_BACKEND_NODE_STARTED)
            continue;
        int index = evs[i].ev.job_index == 0 ? 0 : 1 + evs[i].ev.rank;
        char want[64];
        snprintf(want, sizeof want, " addr=%s ", node_ip(index));
        cr_assert(strstr(evs[i].handle, want), "handle %s lacks%s", evs[i].handle, want);
    }
    cr_assert_eq(be->ops->release(be, 40, NULL), 0);
    cr_assert(wait_final(3));
    for (size_t i = 0; i < n_evs; i++)
        if (evs[i].ev.type == JG_BACKEND_NODE_EXITED)
            cr_assert_eq(evs[i].ev.exit_code, 0, "%s", dump());
    char buf[2048];
    cr_assert_gt(read_file(node_file(40, "cli", 1, "work/hn"), buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "cli-1\n");
    cr_assert_gt(read_file(node_file(40, "cli", 1, "work/hosts"), buf, sizeof buf), 0);
    cr_assert(strstr(buf, "127.0.0.1\tlocalhost\n"), "%s", buf);
    cr_assert(strstr(buf, "10.200.0.2\tsrv-0.netgrp srv-0\n"), "%s", buf);
    cr_assert(strstr(buf, "10.200.0.3\tcli-0.netgrp cli-0\n"), "%s", buf);
    cr_assert(strstr(buf, "10.200.0.4\tcli-1.netgrp cli-1\n"), "%s", buf);
    cr_assert_gt(read_file(node_file(40, "cli", 1, "work/addr"), buf, sizeof buf), 0);
    cr_assert(strstr(buf, "inet 10.200.0.4/16"), "%s", buf);
    cr_assert_gt(read_file(node_file(40, "cli", 0, "work/srv"), buf, sizeof buf), 0);
    cr_assert(strncmp(buf, "10.200.0.2 ", 11) == 0, "getent: %s", buf);
}

Test(local, two_nodes_listen_on_one_port_and_a_peer_reaches_both_by_name)
{
    need_isolation();
    spec = spec_new("web");
    spec_job(spec, "srv", 2, NULL, "exec python3 -m http.server 8080 >/dev/null 2>&1");
    spec_job(spec, "cli", 1, NULL,
             "for i in $(seq 100); do curl -sf -o /dev/null http://srv-0.web:8080/ && "
             "curl -sf -o /dev/null http://srv-1.web:8080/ && exit 0; sleep 0.05; done; exit 1");
    launch(41);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3));
    cr_assert_eq(be->ops->release(be, 41, NULL), 0);
    cr_assert(wait_final(1), "%s", dump());
    const rec_t *c = find(JG_BACKEND_NODE_EXITED, 1, 0);
    cr_assert(c, "%s", dump());
    cr_assert_eq(c->ev.exit_code, 0, "the client did not reach both servers on port 8080");
    cr_assert_null(find(JG_BACKEND_NODE_EXITED, 0, 0), "a server failed to bind:%s", dump());
    cr_assert_null(find(JG_BACKEND_NODE_EXITED, 0, 1), "a server failed to bind:%s", dump());
    cr_assert_eq(be->ops->stop(be, 41, -1, -1, 0, NULL), 0);
    cr_assert(wait_final(3));
}

/* Both nodes of group 42 pinged every node, or one of them ended. */
static bool both_pinged_or_one_ended(void)
{
    int pinged = 0;
    for (int rank = 0; rank < 2; rank++) {
        char log[4096] = "";
        read_file(node_file(42, "w", rank, "output.log"), log, sizeof log);
        pinged += strstr(log, "pinged both") != NULL;
        if (find(JG_BACKEND_NODE_EXITED, 0, rank))
            return true;
    }
    return pinged == 2;
}

/* Each node stays up once it has pinged both: a node that ended takes its
 * namespace, and so its address, with it, and its peer may still be about to
 * ping it (under load that peer can be a whole ping behind). */
Test(local, ping_works_in_nodes_run_as_an_unprivileged_user)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw)
        cr_skip_test("needs root and a `nobody` user");
    need_isolation();
    cr_assert_eq(chmod(state_dir, 0711), 0);
    spec = spec_new("pg");
    spec_job(spec, "w", 2, NULL,
             "ping -c1 -W2 w-0.pg && ping -c1 -W2 w-1.pg && echo pinged both && exec sleep 300");
    jg_node_ref_t refs[] = {{0, 0, 1}, {0, 1, 1}};
    jg_launch_t req = {.group_id = 42, .spec = spec, .uid = pw->pw_uid, .gid = pw->pw_gid,
                       .user = "nobody", .submitted_us = 1, .nodes = refs, .n_nodes = 2};
    jg_error_t err;
    cr_assert_eq(be->ops->launch(be, &req, &err), 0, "%s", err.text);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2), "%s", dump());
    cr_assert_eq(be->ops->release(be, 42, NULL), 0);
    cr_assert(run_until(both_pinged_or_one_ended, WAIT_MS), "the nodes never pinged:%s", dump());
    for (int rank = 0; rank < 2; rank++) {
        char log[4096] = "";
        read_file(node_file(42, "w", rank, "output.log"), log, sizeof log);
        cr_assert(strstr(log, "pinged both"), "w-%d did not reach both nodes:\n%s", rank, log);
    }
    cr_assert_eq(be->ops->stop(be, 42, -1, -1, 0, NULL), 0);
    cr_assert(wait_final(2));
}

/* A node may cover /etc with a volume of its own, so a set-user-ID program
 * must give it nothing: a setuid-root copy of id(1) still says the user. */
Test(local, a_setuid_program_in_a_node_gains_no_privileges)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw)
        cr_skip_test("needs root and a `nobody` user");
    cr_assert_eq(chmod(state_dir, 0711), 0);
    char suid[512];
    snprintf(suid, sizeof suid, "%s/suid-id", scratch);
    int in = open("/usr/bin/id", O_RDONLY | O_CLOEXEC);
    int out = open(suid, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    cr_assert(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    cr_assert_eq(chmod(suid, 04755), 0);
    spec = spec_new("suid");
    char run[1024];
    snprintf(run, sizeof run, "%s -u; grep '^NoNewPrivs:' /proc/self/status", suid);
    spec_job(spec, "w", 1, NULL, run);
    jg_node_ref_t refs[] = {{0, 0, 1}};
    jg_launch_t req = {.group_id = 47, .spec = spec, .uid = pw->pw_uid, .gid = pw->pw_gid,
                       .user = "nobody", .submitted_us = 1, .nodes = refs, .n_nodes = 1};
    jg_error_t err;
    cr_assert_eq(be->ops->launch(be, &req, &err), 0, "%s", err.text);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    cr_assert_eq(be->ops->release(be, 47, NULL), 0);
    cr_assert(wait_final(1));
    char log[4096] = "";
    read_file(node_file(47, "w", 0, "output.log"), log, sizeof log);
    char want[64];
    snprintf(want, sizeof want, "%u\n", (unsigned)pw->pw_uid);
    cr_expect(strstr(log, want) == log, "the setuid program ran as: %s", log);
    cr_expect(strstr(log, "NoNewPrivs:\t1"), "%s", log);
}

Test(local, groups_with_the_same_name_cannot_reach_each_other)
{
    need_isolation();
    spec = spec_new("same");
    char run[1024];
    snprintf(run, sizeof run, "for i in $(seq 100); do curl -sf -o /dev/null http://s-1.same:8080/ "
             "&& touch %s/up && exec sleep 300; sleep 0.05; done; exit 1", scratch);
    spec_job(spec, "s", 2, NULL, "exec python3 -m http.server 8080 >/dev/null 2>&1");
    spec_job(spec, "probe", 1, NULL, run);
    launch(43);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3));
    cr_assert_eq(be->ops->release(be, 43, NULL), 0);
    pid_path = path_in(scratch, "up");
    cr_assert(run_until(pid_file_exists, WAIT_MS), "group 43's own probe never reached s-1:%s",
              dump());

    /* Same group name, other group: 10.200.0.3 (s-1 of group 43) is not in its network. */
    jg_group_spec_t *first = spec;
    spec = spec_new("same");
    spec_job(spec, "c", 1, NULL,
             "curl -s -o /dev/null --connect-timeout 1 http://10.200.0.3:8080/ && exit 1; "
             "getent hosts s-1.same && exit 2; ping -c1 -W1 10.200.0.3 && exit 3; "
             "hostname -I | grep -qx '10.200.0.2 *' || exit 4; exit 0");
    launch(44);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 4));
    cr_assert_eq(be->ops->release(be, 44, NULL), 0);
    cr_assert(wait_final(1));
    const rec_t *c = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(c && c->ev.group_id == 44, "%s", dump());
    cr_assert_eq(c->ev.exit_code, 0, "group 44 reached group 43 (exit %d)", c->ev.exit_code);
    spec_free(spec);
    spec = first;
    cr_assert_eq(be->ops->stop(be, 43, -1, -1, 0, NULL), 0);
    cr_assert(wait_final(4));
}

Test(local, tmp_is_the_nodes_own_and_kept_across_its_attempts)
{
    need_isolation();
    spec = spec_new("rec");
    char rec[1024], other[1024];
    snprintf(rec, sizeof rec, "if [ -e /tmp/recovery_marker ]; then cat /tmp/recovery_marker; "
             "exit 0; fi; echo first-$JGSCHED_ATTEMPT > /tmp/recovery_marker; touch %s/written; "
             "exit 29", scratch);
    snprintf(other, sizeof other, "while [ ! -e %s/written ]; do sleep 0.02; done; "
             "test ! -e /tmp/recovery_marker", scratch);
    spec_job(spec, "r", 1, NULL, rec);
    spec_job(spec, "o", 1, NULL, other);
    launch(45);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(be->ops->release(be, 45, NULL), 0);
    cr_assert(wait_final(2));
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 0)->ev.exit_code, 29, "%s", dump());
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 1, 0)->ev.exit_code, 0,
                 "another node saw r-0's /tmp");
    cr_assert(exists(node_file(45, "r", 0, "tmp/recovery_marker")));

    launch_node(45, 0, 0, 2);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3));
    cr_assert_eq(be->ops->release(be, 45, NULL), 0);
    cr_assert(wait_final(3));
    const rec_t *last = &evs[n_evs - 1];
    cr_assert_eq(last->ev.attempt, 2);
    cr_assert_eq(last->ev.exit_code, 0, "attempt 2 did not find its marker:%s", dump());
    char buf[512];
    cr_assert_gt(read_file(node_file(45, "r", 0, "output.log"), buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "first-1\n");

    jg_error_t err;
    cr_assert_eq(be->ops->cleanup(be, 45, &err), 0, "%s", err.text);
    finish_cleanups(be);
    cr_assert_not(exists(node_file(45, "r", 0, "tmp")), "cleanup keeps no /tmp");
}

Test(local, cleanup_removes_the_group_network_and_leaves_nothing)
{
    need_isolation();
    /* A network namespace of its own stands in for the host, so links other
     * work on this machine makes meanwhile are not counted as the group's. */
    cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
    int links_before = host_links();
    spec = spec_new("gone");
    spec_job(spec, "a", 3, NULL, "exec sleep 300");
    launch(46);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3));
    cr_assert_eq(be->ops->release(be, 46, NULL), 0);
    run_until(NULL, 100);
    pid_t keeper = keeper_of(46);
    cr_assert_gt(keeper, 0);
    ino_t hub = netns_of(keeper), nodes[3];
    cr_assert_eq(n_shims, 3);
    for (int i = 0; i < 3; i++) {
        nodes[i] = netns_of(shims[i]);
        cr_assert(nodes[i] && nodes[i] != hub && nodes[i] != netns_of(getpid()));
    }
    cr_assert_neq(nodes[0], nodes[1]);
    cr_assert_eq(host_links(), links_before, "a group adds no link to the host");

    jg_error_t err;
    cr_assert_eq(be->ops->cleanup(be, 46, &err), 0, "%s", err.text);
    finish_cleanups(be);
    cr_assert_not(proc_alive(keeper), "the keeper survived cleanup");
    cr_assert_eq(members_of(hub), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(members_of(nodes[i]), 0, "a process is left in node %d's namespace", i);
    cr_assert_not(exists(path_in(state_dir, "groups/46/net")));
    cr_assert_not(exists(path_in(state_dir, "groups/46/hosts")));
    cr_assert_eq(host_links(), links_before);
}

Test(local, a_dead_keeper_takes_its_groups_nodes_with_it)
{
    need_isolation();
    spec = spec_new("k");
    spec_job(spec, "a", 2, NULL, "exec sleep 300");
    launch(47);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(be->ops->release(be, 47, NULL), 0);
    pid_t keeper = keeper_of(47);
    cr_assert_eq(kill(keeper, SIGKILL), 0);
    cr_assert(wait_final(2));
    for (int r = 0; r < 2; r++) {
        const rec_t *l = find(JG_BACKEND_NODE_LOST, 0, r);
        cr_assert(l, "%s", dump());
        cr_assert(strstr(l->reason, "network is gone"), "%s", l->reason);
    }
}

Test(local, reattach_follows_the_network_and_a_keeper_lost_meanwhile_loses_the_nodes)
{
    need_isolation();
    spec = spec_new("ra");
    spec_job(spec, "a", 1, NULL, "exec sleep 300");
    launch(48);
    launch(49);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(be->ops->release(be, 48, NULL), 0);
    cr_assert_eq(be->ops->release(be, 49, NULL), 0);
    run_until(NULL, 100);
    jg_node_handle_t h48 = {0}, h49 = {0};
    char t48[1024], t49[1024];
    for (size_t i = 0; i < n_evs; i++) {
        if (evs[i].ev.type != JG_BACKEND_NODE_STARTED)
            continue;
        bool first = evs[i].ev.group_id == 48;
        snprintf(first ? t48 : t49, sizeof t48, "%s", evs[i].handle);
        *(first ? &h48 : &h49) = (jg_node_handle_t){.attempt = 1, .handle = first ? t48 : t49};
    }
    be->ops->destroy(be);
    be = NULL;
    pid_t k48 = keeper_of(48), k49 = keeper_of(49);
    cr_assert_eq(kill(k49, SIGKILL), 0);        /* while no daemon watches */

    be2 = new_backend();
    jg_error_t err;
    size_t before = n_evs;
    cr_assert_eq(be2->ops->reattach(be2, 48, &h48, 1, &err), 0, "%s", err.text);
    cr_assert_eq(be2->ops->reattach(be2, 49, &h49, 1, &err), 0, "%s", err.text);
    cr_assert(wait_final(1));
    cr_assert_eq(evs[before].ev.type, JG_BACKEND_NODE_LOST, "%s", dump());
    cr_assert_eq(evs[before].ev.group_id, 49);
    cr_assert(strstr(evs[before].reason, "network is gone"), "%s", evs[before].reason);

    cr_assert_eq(be2->ops->cleanup(be2, 48, &err), 0, "%s", err.text);
    finish_cleanups(be2);
    cr_assert_not(proc_alive(k48), "cleanup after reattach left the keeper");
}

Test(local, sweep_removes_what_dead_groups_left_and_spares_live_ones)
{
    spec = spec_new("sw");
    spec_job(spec, "a", 1, NULL, "exec sleep 300");
    launch(50);
    launch(51);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    pid_t k50 = keeper_of(50), k51 = keeper_of(51);
    pid_t s50 = 0, s51 = 0;
    for (size_t i = 0; i < n_evs; i++)
        if (evs[i].ev.type == JG_BACKEND_NODE_STARTED)
            sscanf(evs[i].handle, "pid=%d", evs[i].ev.group_id == 50 ? &s50 : &s51);
    be->ops->destroy(be);       /* the daemon dies; group 50 ends in the store meanwhile */
    be = NULL;

    be2 = new_backend();
    int64_t live[] = {51};
    jg_error_t err;
    cr_assert_eq(be2->ops->sweep(be2, live, 1, &err), 0, "%s", err.text);
    finish_cleanups(be2);
    cr_assert(wait_gone(s50), "sweep left group 50's node");
    if (k50 > 0)
        cr_assert(wait_gone(k50), "sweep left group 50's network");
    cr_assert_not(exists(node_file(50, "a", 0, "env")));
    cr_assert(exists(node_file(50, "a", 0, "output.log")), "sweep keeps logs");
    cr_assert(proc_alive(s51), "sweep killed a live group's node");
    if (k51 > 0)
        cr_assert(proc_alive(k51), "sweep killed a live group's network");
    cr_assert_eq(be2->ops->sweep(be2, live, 1, &err), 0, "a second sweep: %s", err.text);
    cr_assert_eq(be2->ops->cleanup(be2, 51, &err), 0, "%s", err.text);
    cr_assert(wait_gone(s51));
}

Test(local, a_process_that_left_the_process_group_ends_with_its_node)
{
    need_isolation();
    spec = spec_new("esc");
    char a[1024], b[1024];
    snprintf(a, sizeof a, "setsid -f sh -c 'echo $$ > %s/a.pid; exec sleep 300'; "
             "while [ ! -s %s/a.pid ]; do sleep 0.02; done", scratch, scratch);
    snprintf(b, sizeof b, "setsid -f sh -c 'echo $$ > %s/b.pid; exec sleep 300'; exec sleep 300",
             scratch);
    spec_job(spec, "a", 1, NULL, a);
    spec_job(spec, "b", 1, NULL, b);
    launch(52);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(be->ops->release(be, 52, NULL), 0);
    cr_assert(wait_final(1));
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 0)->ev.exit_code, 0);
    int pa = wait_pid_file(path_in(scratch, "a.pid"));
    cr_assert(wait_gone(pa), "a setsid'd process outlived its node");
    int pb = wait_pid_file(path_in(scratch, "b.pid"));
    cr_assert(proc_alive(pb));
    jg_error_t err;
    cr_assert_eq(be->ops->cleanup(be, 52, &err), 0, "%s", err.text);
    cr_assert(wait_gone(pb), "a setsid'd process outlived cleanup");
}

Test(local, a_node_that_cannot_be_set_up_fails_to_launch_with_the_reason)
{
    need_isolation();
    spec = spec_new("bad");
    spec_job(spec, "a", 1, NULL, "true");
    spec_job(spec, "b", 1, NULL, "true");
    /* a-0's /tmp cannot be mounted: its directory is a file (refused before
     * anything is started: the backend never follows or chmods what is there). */
    char path[512];
    snprintf(path, sizeof path, "%s/groups", state_dir);
    mkdir(path, 0711);
    snprintf(path, sizeof path, "%s/groups/53", state_dir);
    mkdir(path, 0711);
    mkdir(node_file(53, "a", 0, ""), 0700);
    int fd = open(node_file(53, "a", 0, "tmp"), O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    launch(53);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert(wait_final(1));
    const rec_t *f = find(JG_BACKEND_LAUNCH_FAILED, 0, 0);
    cr_assert(f, "%s", dump());
    cr_assert(strstr(f->reason, "a-0/tmp: it is not a directory"), "%s", f->reason);
    cr_assert(find(JG_BACKEND_SETUP_DONE, 1, 0), "the other node is not affected");
}

Test(local, a_shared_host_network_is_announced_never_silent)
{
    const char *shim = getenv("JGSCHED_SHIM");
    jg_local_config_t cfg = {.state_dir = state_dir, .shim_path = shim, .loop = loop,
                             .on_event = on_event, .share_host_network = true};
    jg_error_t err;
    be->ops->destroy(be);
    be = jg_backend_local_create(&cfg, &err);
    cr_assert(be, "%s", err.text);
    const char *w = be->ops->warning(be);
    cr_assert(w && strstr(w, "off by configuration"), "warning: %s", w ? w : "(none)");
    spec = spec_new("shared");
    spec_job(spec, "a", 1, NULL, "hostname > hn; cat /etc/hosts > hosts");
    launch(54);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    const rec_t *s = must_find(JG_BACKEND_NODE_STARTED, 0, 0);
    cr_assert(strstr(s->handle, " addr=127.0.0.1 "), "%s", s->handle);
    cr_assert_eq(be->ops->release(be, 54, NULL), 0);
    cr_assert(wait_final(1));
    char buf[2048];
    cr_assert_gt(read_file(node_file(54, "a", 0, "output.log"), buf, sizeof buf), 0);
    const char *want = "jgsched: warning: network isolation is off";
    cr_assert(strncmp(buf, want, strlen(want)) == 0, "%s", buf);
    if (geteuid() == 0) {       /* root still gives the node its name and hosts */
        cr_assert_gt(read_file(node_file(54, "a", 0, "work/hn"), buf, sizeof buf), 0);
        cr_assert_str_eq(buf, "a-0\n");
        cr_assert_gt(read_file(node_file(54, "a", 0, "work/hosts"), buf, sizeof buf), 0);
        cr_assert(strstr(buf, "127.0.0.1\ta-0.shared a-0\n"), "%s", buf);
    }
}

/* ---- resources: the GPU allocator ----------------------------------------- */

Test(gpu_pool, parses_nvidia_smi_and_hands_out_the_lowest_free_indices)
{
    jg_gpu_pool_t *p = jg_gpu_pool_create();
    size_t added = jg_gpu_pool_parse(p, "2, NVIDIA H200\n0, NVIDIA H200\n1, Tesla T4\r\n"
                                        "bogus line\n3, NVIDIA H200\n0, NVIDIA H200\n");
    cr_assert_eq(added, 4, "a bad line and a repeated index are skipped");
    cr_assert_eq(jg_gpu_pool_count(p, "h200", false), 3, "names match case-insensitively");
    cr_assert_eq(jg_gpu_pool_count(p, "T4", true), 1);
    cr_assert_eq(jg_gpu_pool_count(p, NULL, false), 4);
    int got[2] = {-1, -1}, more[2] = {-1, -1};
    cr_assert_eq(jg_gpu_pool_take(p, "H200", 2, got), 0);
    cr_assert_eq(got[0], 0);
    cr_assert_eq(got[1], 2);
    cr_assert_eq(jg_gpu_pool_take(p, "H200", 2, more), -1, "only one H200 is left");
    cr_assert_eq(jg_gpu_pool_count(p, "H200", true), 1, "a failed take takes nothing");
    cr_assert_eq(jg_gpu_pool_take(p, "A100", 1, more), -1, "no such type");
    jg_gpu_pool_release(p, got, 1);
    cr_assert_eq(jg_gpu_pool_take(p, "H200", 2, more), 0);
    cr_assert_eq(more[0], 0, "a released index is handed out again");
    cr_assert_eq(more[1], 3);
    cr_assert_eq(jg_gpu_pool_count(p, "H200", true), 0);
    jg_gpu_pool_destroy(p);
}

Test(gpu_pool, a_claimed_index_is_held_once_and_release_ignores_strangers)
{
    jg_gpu_pool_t *p = jg_gpu_pool_create();
    cr_assert_eq(jg_gpu_pool_parse(p, "0, NVIDIA A100-SXM4-80GB\n1, NVIDIA A100-SXM4-80GB"), 2);
    cr_assert_eq(jg_gpu_pool_count(p, "A100", false), 2, "named as capacity names them");
    cr_assert_eq(jg_gpu_pool_claim(p, 1), 0);
    cr_assert_eq(jg_gpu_pool_claim(p, 1), -1, "held already");
    cr_assert_eq(jg_gpu_pool_claim(p, 7), -1, "unknown");
    int got = -1;
    cr_assert_eq(jg_gpu_pool_take(p, "A100", 1, &got), 0);
    cr_assert_eq(got, 0);
    cr_assert_eq(jg_gpu_pool_take(p, "A100", 1, &got), -1);
    int back[] = {1, 99};
    jg_gpu_pool_release(p, back, 2);
    cr_assert_eq(jg_gpu_pool_count(p, "A100", true), 1);
    cr_assert_eq(jg_gpu_pool_take(p, "A100", 0, &got), 0, "zero is always there");
    jg_gpu_pool_destroy(p);
    jg_gpu_pool_destroy(NULL);
}

/* ---- resources: GPUs on nodes --------------------------------------------- */

/* Puts an nvidia-smi printing csv first in $PATH and recreates the backend,
 * which reads the host's GPUs at create. */
static void fake_gpus(const char *csv)
{
    char dir[256], file[300];
    snprintf(dir, sizeof dir, "%s/bin", state_dir);
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
    snprintf(file, sizeof file, "%s/nvidia-smi", dir);
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fprintf(f, "#!/bin/sh\nprintf '%s'\n", csv);
    fclose(f);
    cr_assert_eq(chmod(file, 0755), 0);
    const char *old = getenv("PATH");
    snprintf(saved_path, sizeof saved_path, "%s", old ? old : "/usr/bin:/bin");
    path_saved = true;
    char *path = NULL;
    cr_assert_gt(asprintf(&path, "%s:%s", dir, saved_path), 0);
    setenv("PATH", path, 1);
    free(path);
    be->ops->destroy(be);
    be = new_backend();
}

static jg_job_spec_t *gpu_job(jg_group_spec_t *s, const char *name, int nodes, const char *gpu,
                              int count, const char *run)
{
    jg_job_spec_t *j = spec_job(s, name, nodes, NULL, run);
    j->accel.name = strdup(gpu);
    j->accel.count = count;
    return j;
}

static void launch_spec(jg_backend_t *b, jg_group_spec_t *s, int64_t gid)
{
    jg_group_spec_t *keep = spec;
    spec = s;
    launch_on(b, gid, 1);
    spec = keep;
}

Test(local, gpu_nodes_get_distinct_indices_and_other_nodes_none)
{
    fake_gpus("0, NVIDIA H200\\n1, NVIDIA H200\\n");
    const char *notes = be->ops->notes(be);
    cr_assert(notes && strstr(notes, "GPUs: H200 x2"), "%s", notes ? notes : "(none)");
    cr_assert_eq(jg_capacity_accels(be->ops->capacity(be), "H200"), 2,
                 "the capacity offers the GPUs the backend hands out (the same nvidia-smi)");
    spec = spec_new("gpus");
    const char *show = "echo \"${CUDA_VISIBLE_DEVICES-unset}|${NVIDIA_VISIBLE_DEVICES-unset}\" > cvd";
    jg_job_spec_t *g = gpu_job(spec, "g", 2, "h200", 1, show);
    job_env(g, "CUDA_VISIBLE_DEVICES", "7");        /* ours win */
    spec_job(spec, "c", 1, NULL, show);
    launch(61);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3), "%s", dump());
    cr_assert_eq(be->ops->release(be, 61, NULL), 0);
    cr_assert(wait_final(3));
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 3, "%s", dump());
    char a[64], b[64], c[64], log[2048];
    cr_assert_gt(read_file(node_file(61, "g", 0, "work/cvd"), a, sizeof a), 0);
    cr_assert_gt(read_file(node_file(61, "g", 1, "work/cvd"), b, sizeof b), 0);
    cr_assert_gt(read_file(node_file(61, "c", 0, "work/cvd"), c, sizeof c), 0);
    cr_assert_str_eq(a, "0|0\n");
    cr_assert_str_eq(b, "1|1\n");
    cr_assert_str_eq(c, "|unset\n", "a node that asks no GPU sees none");
    cr_assert_gt(read_file(node_file(61, "g", 1, "output.log"), log, sizeof log), 0);
    cr_assert(strstr(log, "jgsched: GPUs 1 (h200:1): CUDA_VISIBLE_DEVICES=1\n"), "%s", log);

    /* The ended nodes gave them back. */
    spec2 = spec_new("again");
    gpu_job(spec2, "h", 2, "H200", 1, "true");
    launch_spec(be, spec2, 62);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 5), "%s", dump());
    cr_assert_eq(count(JG_BACKEND_LAUNCH_FAILED), 0, "%s", dump());
}

static const rec_t *find_in(int64_t gid, jg_backend_event_type_t type)
{
    for (size_t i = 0; i < n_evs; i++)
        if (evs[i].ev.group_id == gid && evs[i].ev.type == type)
            return &evs[i];
    return NULL;
}

static int64_t wait_gid;
static bool group_settled(void)     /* wait_gid's node reached the barrier or failed */
{
    return find_in(wait_gid, JG_BACKEND_SETUP_DONE) || find_in(wait_gid, JG_BACKEND_LAUNCH_FAILED);
}

static bool group63_ended(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_evs; i++)
        n += evs[i].ev.group_id == 63 && evs[i].ev.type == JG_BACKEND_NODE_EXITED;
    return n == 2;
}

Test(local, gpus_are_held_while_nodes_live_and_taken_back_on_reattach)
{
    fake_gpus("0, NVIDIA H200\\n1, NVIDIA H200\\n");
    spec = spec_new("hold");
    gpu_job(spec, "g", 2, "H200", 1, "exec sleep 300");
    launch(63);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    spec2 = spec_new("more");
    gpu_job(spec2, "h", 1, "H200", 1, "true");
    launch_spec(be, spec2, 64);
    cr_assert(wait_for(JG_BACKEND_LAUNCH_FAILED, 1), "%s", dump());
    const rec_t *f = find_in(64, JG_BACKEND_LAUNCH_FAILED);
    cr_assert(f && strstr(f->reason, "no GPU for this node: it asks H200:1, and 0 of the host's "
                                     "2 H200 GPU(s) are free"), "%s", dump());

    /* A restarted daemon takes the running nodes' GPUs back from their files. */
    jg_node_handle_t hs[2];
    char texts[2][1024];
    size_t n = 0;
    for (size_t i = 0; i < n_evs && n < 2; i++) {
        if (evs[i].ev.group_id != 63 || evs[i].ev.type != JG_BACKEND_NODE_STARTED)
            continue;
        snprintf(texts[n], sizeof texts[n], "%s", evs[i].handle);
        hs[n] = (jg_node_handle_t){.job_index = 0, .rank = evs[i].ev.rank, .attempt = 1,
                                   .handle = texts[n]};
        n++;
    }
    cr_assert_eq(n, 2);
    be->ops->destroy(be);
    be = NULL;
    be2 = new_backend();
    jg_error_t err;
    cr_assert_eq(be2->ops->reattach(be2, 63, hs, n, &err), 0, "%s", err.text);
    launch_spec(be2, spec2, 65);
    cr_assert(wait_for(JG_BACKEND_LAUNCH_FAILED, 2), "%s", dump());
    cr_assert(find_in(65, JG_BACKEND_LAUNCH_FAILED), "%s", dump());

    /* Once they end, the GPUs are free again. */
    cr_assert_eq(be2->ops->stop(be2, 63, -1, -1, 0, &err), 0);
    cr_assert(run_until(group63_ended, WAIT_MS), "%s", dump());
    launch_spec(be2, spec2, 66);
    wait_gid = 66;
    cr_assert(run_until(group_settled, WAIT_MS), "%s", dump());
    cr_assert(find_in(66, JG_BACKEND_SETUP_DONE), "%s", dump());
    cr_assert_null(find_in(66, JG_BACKEND_LAUNCH_FAILED));
}

Test(local, declared_gpus_without_nvidia_smi_export_nothing_and_say_so)
{
    if (access("/usr/bin/nvidia-smi", X_OK) == 0)
        cr_skip_test("this host has nvidia-smi");
    fake_gpus("");      /* an nvidia-smi that lists nothing: no index is known */
    spec = spec_new("nosmi");
    gpu_job(spec, "g", 1, "T4", 1, "echo \"${CUDA_VISIBLE_DEVICES-unset}\" > cvd");
    launch(67);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    cr_assert_eq(be->ops->release(be, 67, NULL), 0);
    cr_assert(wait_final(1));
    char buf[2048];
    cr_assert_gt(read_file(node_file(67, "g", 0, "work/cvd"), buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "unset\n");
    cr_assert_gt(read_file(node_file(67, "g", 0, "output.log"), buf, sizeof buf), 0);
    cr_assert(strstr(buf, "jgsched: warning: this node asks T4:1, but no GPU index is known"),
              "%s", buf);
}

/* ---- resources: volumes ----------------------------------------------------- */

static jg_kv_t registry[2];

/* One volume `vol` whose directory is state_dir/vol (created). */
static void volume_registry(void)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/vol", state_dir);
    cr_assert_eq(mkdir(dir, 0777), 0);
    chmod(dir, 0777);
    registry[0] = (jg_kv_t){.key = "vol", .value = dir};
    registry[1] = (jg_kv_t){.key = "gone", .value = "/nonexistent/jgsched-volume"};
    volumes = registry;
    n_volumes = 2;
}

static void need_mounts(void)
{
    const char *w = be->ops->warning(be);
    if (w && strstr(w, "hostnames do not resolve"))
        cr_skip_test("no mount namespace per node here: %s", w);
}

/* Two nodes with the same volume on `mount`: the writer's file reaches the
 * reader, also when the reader runs again (attempt 2 mounts again). */
static void two_nodes_share(const char *mount, int64_t gid)
{
    volume_registry();
    spec = spec_new("share");
    char wr[512], rd[512];
    snprintf(wr, sizeof wr, "echo \"Hello from writer\" > %s/test_file.txt", mount);
    snprintf(rd, sizeof rd, "for i in $(seq 200); do [ -e %s/test_file.txt ] && break; "
             "sleep 0.02; done; cat %s/test_file.txt", mount, mount);
    job_volume(spec_job(spec, "writer", 1, NULL, wr), mount, "vol");
    job_volume(spec_job(spec, "reader", 1, NULL, rd), mount, "vol");
    launch(gid);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2), "%s", dump());
    cr_assert_eq(be->ops->release(be, gid, NULL), 0);
    cr_assert(wait_final(2));
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 2, "%s", dump());
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 1, 0)->ev.exit_code, 0, "%s", dump());
    char buf[1024];
    cr_assert_gt(read_file(node_file(gid, "reader", 0, "output.log"), buf, sizeof buf), 0);
    cr_assert(strstr(buf, "Hello from writer\n"), "reader saw: %s", buf);
    cr_assert_gt(read_file(path_in(registry[0].value, "test_file.txt"), buf, sizeof buf), 0,
                 "the file is in the volume's host directory");

    launch_node(gid, 1, 0, 2);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 3), "%s", dump());
    cr_assert_eq(be->ops->release(be, gid, NULL), 0);
    cr_assert(wait_final(3));
    const rec_t *last = &evs[n_evs - 1];
    cr_assert_eq(last->ev.attempt, 2);
    cr_assert_eq(last->ev.exit_code, 0, "attempt 2 does not see the volume:%s", dump());
}

Test(local, nodes_with_a_volume_see_each_others_files)
{
    need_mounts();
    if (geteuid() != 0)
        cr_skip_test("needs root to create /mnt/jgtest");
    struct stat st;
    bool existed = stat("/mnt/jgtest", &st) == 0;
    if (!existed)
        snprintf(made_dir, sizeof made_dir, "/mnt/jgtest");
    two_nodes_share("/mnt/jgtest", 71);
    jg_error_t err;
    cr_assert_eq(be->ops->cleanup(be, 71, &err), 0, "%s", err.text);
    /* Another group's or instance's node may have a volume mounted there:
     * removing it would unmount that volume.  teardown removes it. */
    cr_assert_eq(stat("/mnt/jgtest", &st), 0, "cleanup leaves the mount point in place");
}

/* A missing mount point is made by the node's user, never by root: under a
 * directory of theirs it is made and theirs; where they could not make it
 * (a root-owned directory, another user's home) the node fails naming the
 * volume and the path, and nothing is made. */
Test(local, a_mount_point_is_made_as_the_user_or_refused)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw)
        cr_skip_test("needs root and a `nobody` user");
    need_mounts();
    cr_assert_eq(chmod(state_dir, 0711), 0);
    volume_registry();
    /* Mount paths may not lie under /var (a system directory) or /tmp. */
    char theirs[300], roots[300], ok_path[400], no_path[400];
    snprintf(outside_dir, sizeof outside_dir, "/mnt/jgtest-mp-XXXXXX");
    if (!mkdtemp(outside_dir)) {
        outside_dir[0] = '\0';
        cr_skip_test("cannot make a directory under /mnt: %s", strerror(errno));
    }
    cr_assert_eq(chmod(outside_dir, 0755), 0);
    snprintf(theirs, sizeof theirs, "%s/theirs", outside_dir);
    snprintf(roots, sizeof roots, "%s/roots", outside_dir);
    cr_assert_eq(mkdir(theirs, 0755), 0);
    cr_assert_eq(chown(theirs, pw->pw_uid, pw->pw_gid), 0);
    cr_assert_eq(mkdir(roots, 0755), 0);
    snprintf(ok_path, sizeof ok_path, "%s/a/b", theirs);
    snprintf(no_path, sizeof no_path, "%s/x", roots);
    spec = spec_new("mp");
    job_volume(spec_job(spec, "ok", 1, NULL, "true"), ok_path, "vol");
    job_volume(spec_job(spec, "no", 1, NULL, "true"), no_path, "vol");
    jg_node_ref_t refs[] = {{.job_index = 0, .rank = 0, .attempt = 1},
                            {.job_index = 1, .rank = 0, .attempt = 1}};
    jg_launch_t req = {.group_id = 78, .spec = spec, .uid = pw->pw_uid, .gid = pw->pw_gid,
                       .user = "nobody", .submitted_us = 1, .nodes = refs, .n_nodes = 2,
                       .volumes = volumes, .n_volumes = n_volumes};
    jg_error_t err;
    cr_assert_eq(be->ops->launch(be, &req, &err), 0, "%s", err.text);
    cr_assert(wait_for(JG_BACKEND_LAUNCH_FAILED, 1), "%s", dump());
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    const rec_t *f = must_find(JG_BACKEND_LAUNCH_FAILED, 1, 0);
    char want[512];
    snprintf(want, sizeof want, "volume vol: the mount path %s does not exist and nobody may "
             "not create it (Permission denied)", no_path);
    cr_assert(f && strstr(f->reason, want), "%s", dump());
    cr_assert_not(exists(no_path), "root made a mount point the user could not");
    struct stat st;
    cr_assert_eq(stat(ok_path, &st), 0);
    cr_assert_eq(st.st_uid, pw->pw_uid, "the mount point belongs to the node's user");
    snprintf(ok_path, sizeof ok_path, "%s/a", theirs);
    cr_assert_eq(stat(ok_path, &st), 0);
    cr_assert_eq(st.st_uid, pw->pw_uid);
}

Test(local, a_volume_under_tmp_is_mounted_in_the_nodes_own_tmp)
{
    need_mounts();
    two_nodes_share("/tmp/jgtest-volume/data", 72);
    struct stat st;
    cr_assert_neq(stat("/tmp/jgtest-volume", &st), 0, "nothing is made in the host's /tmp");
}

Test(local, a_bad_volume_fails_its_node_with_the_reason)
{
    need_mounts();
    volume_registry();
    spec = spec_new("badvol");
    job_volume(spec_job(spec, "unknown", 1, NULL, "true"), "/mnt/jgtest-x", "nosuch");
    job_volume(spec_job(spec, "missing", 1, NULL, "true"), "/mnt/jgtest-x", "gone");
    job_volume(spec_job(spec, "system", 1, NULL, "true"), "/etc/cron.d/x", "vol");
    job_volume(spec_job(spec, "relative", 1, NULL, "true"), "/mnt/../etc", "vol");
    spec_job(spec, "fine", 1, NULL, "true");
    launch(73);
    cr_assert(wait_for(JG_BACKEND_LAUNCH_FAILED, 4), "%s", dump());
    const char *want[] = {
        "volume nosuch (for /mnt/jgtest-x) is not known to the daemon",
        "volume gone (for /mnt/jgtest-x): its directory /nonexistent/jgsched-volume does not exist",
        "volume vol: the mount path /etc/cron.d/x is under the system directory /etc",
        "volume vol: the mount path /mnt/../etc has an empty, \".\" or \"..\" component",
    };
    for (int j = 0; j < 4; j++) {
        const rec_t *f = find(JG_BACKEND_LAUNCH_FAILED, j, 0);
        cr_assert(f && strstr(f->reason, want[j]), "job %d: %s", j, dump());
    }
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "the node without volumes starts: %s", dump());
    struct stat st;
    cr_assert_neq(stat("/mnt/jgtest-x", &st), 0, "no mount point is made for a failed node");
}

Test(local, a_symbolic_link_cannot_redirect_a_volume_mount)
{
    need_mounts();
    volume_registry();
    spec = spec_new("link");
    /* Attempt 1 plants /tmp/v -> /etc in its own /tmp; attempt 2's volume on
     * /tmp/v/x must not land in /etc. */
    jg_job_spec_t *j = spec_job(spec, "a", 1, NULL,
                                "[ \"$JGSCHED_ATTEMPT\" = 1 ] && ln -s /etc /tmp/v; true");
    launch(74);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    cr_assert_eq(be->ops->release(be, 74, NULL), 0);
    cr_assert(wait_final(1));
    job_volume(j, "/tmp/v/x", "vol");
    launch_node(74, 0, 0, 2);
    cr_assert(wait_final(2), "%s", dump());
    const rec_t *f = find(JG_BACKEND_LAUNCH_FAILED, 0, 0);
    cr_assert(f && strstr(f->reason, "cannot make the mount point /tmp/v/x: a component is a "
                                     "symbolic link"), "%s", dump());
    struct stat st;
    cr_assert_neq(stat("/etc/x", &st), 0);
}

/* ---- deleting users' trees (fsutil.h) ------------------------------------- */

static void make_file(const char *dir, const char *name)
{
    int fd = open(path_in(dir, name), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "%s/%s: %s", dir, name, strerror(errno));
    close(fd);
}

/* rm -rf through descriptors: links are removed, never followed; a directory
 * nested far deeper than the walk's descriptor budget, and one its owner made
 * unwritable, go too. */
Test(local, remove_tree_never_follows_a_link_and_takes_deep_trees)
{
    char decoy[256], tree[256], p[8192];
    snprintf(decoy, sizeof decoy, "%s/decoy", state_dir);
    snprintf(tree, sizeof tree, "%s/tree", state_dir);
    cr_assert_eq(mkdir(decoy, 0755), 0);
    make_file(decoy, "keep");
    cr_assert_eq(mkdir(tree, 0755), 0);
    make_file(tree, "f");
    cr_assert_eq(symlink(decoy, path_in(tree, "link")), 0);
    cr_assert_eq(mkdir(path_in(tree, "ro"), 0755), 0);
    make_file(path_in(tree, "ro"), "x");
    cr_assert_eq(chmod(path_in(tree, "ro"), 0500), 0);
    int len = snprintf(p, sizeof p, "%s/deep", tree);
    for (int i = 0; i < 150; i++) {
        cr_assert_eq(mkdir(p, 0755), 0, "%s", strerror(errno));
        if (i % 40 == 0) {
            char l[8300];
            snprintf(l, sizeof l, "%s/up", p);
            cr_assert_eq(symlink(decoy, l), 0);
        }
        len += snprintf(p + len, sizeof p - (size_t)len, "/d");
        if ((size_t)len > sizeof p - 8)
            break;
    }
    int dfd = open(state_dir, O_PATH | O_DIRECTORY);
    jg_error_t err;
    cr_assert_eq(jg_fs_remove_tree_at(dfd, "tree", &err), 0, "%s", err.text);
    cr_assert_eq(jg_fs_remove_tree_at(dfd, "tree", &err), 0, "a missing tree is no error");
    close(dfd);
    cr_assert_not(exists(tree));
    cr_assert(exists(path_in(decoy, "keep")), "a link was followed");
}

/* The backend's trash: cleanup() takes a node's work tree away at once and a
 * background child deletes it, as the tree's owner, through descriptors. */
static char trash_dir[300];

/* Some tree is in the trash, and no user file (sub/f) is left in any. */
static bool trash_users_files_gone(void)
{
    DIR *d = opendir(trash_dir);
    struct dirent *de;
    bool any = false, left = false;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char probe[1024];
        any = true;
        snprintf(probe, sizeof probe, "%s/%s/sub/f", trash_dir, de->d_name);
        left = left || exists(probe);
    }
    if (d)
        closedir(d);
    return any && !left;
}

Test(local, cleanup_deletes_a_users_tree_off_the_loop_and_as_its_owner)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw)
        cr_skip_test("needs root and a `nobody` user");
    cr_assert_eq(chmod(state_dir, 0711), 0);
    /* A root-owned file the node's user cannot delete, linked into the tree
     * by root (as a user could only by hard link, if at all). */
    char decoy[256];
    snprintf(decoy, sizeof decoy, "%s/rootdir", state_dir);
    cr_assert_eq(mkdir(decoy, 0755), 0);
    make_file(decoy, "secret");
    spec = spec_new("own");
    spec_job(spec, "a", 1, NULL,
             "mkdir -p sub/deeper && touch sub/f sub/deeper/g && ln -s /etc sub/etc");
    jg_node_ref_t ref = {.job_index = 0, .rank = 0, .attempt = 1};
    jg_launch_t req = {.group_id = 79, .spec = spec, .uid = pw->pw_uid, .gid = pw->pw_gid,
                       .user = "nobody", .submitted_us = 1, .nodes = &ref, .n_nodes = 1};
    jg_error_t err;
    cr_assert_eq(be->ops->launch(be, &req, &err), 0, "%s", err.text);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    cr_assert_eq(be->ops->release(be, 79, NULL), 0);
    cr_assert(wait_final(1));
    cr_assert_eq(must_find(JG_BACKEND_NODE_EXITED, 0, 0)->ev.exit_code, 0, "%s", dump());
    /* Root's directory inside the user's tree: the user cannot empty it. */
    char inside[512];
    snprintf(inside, sizeof inside, "%s", node_file(79, "a", 0, "work/sub/rootdir"));
    cr_assert_eq(rename(decoy, inside), 0, "%s", strerror(errno));
    cr_assert_eq(be->ops->cleanup(be, 79, &err), 0, "%s", err.text);
    finish_cleanups(be);
    cr_assert_not(exists(node_file(79, "a", 0, "work")), "work is gone once cleanup finished");
    snprintf(trash_dir, sizeof trash_dir, "%s/trash", state_dir);
    cr_assert(run_until(trash_users_files_gone, WAIT_MS), "the deleter left the user's files");
    /* The user's files went; root's directory (with its file) stayed. */
    DIR *d = opendir(trash_dir);
    cr_assert(d);
    struct dirent *de;
    char left[1024] = "";
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            char probe[1024];
            snprintf(probe, sizeof probe, "%s/%s/sub/rootdir/secret", trash_dir, de->d_name);
            if (exists(probe))
                snprintf(left, sizeof left, "%s", probe);
        }
    closedir(d);
    cr_assert(left[0], "root's file in the user's tree was deleted by the user's deleter");
    cr_assert(exists("/etc/passwd"));
}

/* ---- resources: cgroups ------------------------------------------------------ */

Test(local, notes_say_whether_nodes_are_limited)
{
    const char *n = be->ops->notes(be);
    cr_assert(n && strncmp(n, "cgroups: ", 9) == 0, "%s", n ? n : "(none)");
    cr_assert(strstr(n, "; GPUs: "), "%s", n);
    /* The tests' backends do not ask for NAT (it would change the host). */
    cr_assert(strstr(n, "; outbound: none, NAT is off by configuration") ||
              strstr(n, "; outbound: the host's own network"), "%s", n);
    if (strstr(n, "cgroups: unavailable ("))
        cr_assert(strstr(n, "); nodes are not limited"), "%s", n);
    else
        cr_assert(strstr(n, "cgroups: v2, a cgroup per node under /"), "%s", n);
}

Test(local, cgroups_off_in_the_config_means_no_cgroups)
{
    jg_local_config_t cfg = {.state_dir = state_dir, .shim_path = getenv("JGSCHED_SHIM"),
                             .loop = loop, .on_event = on_event, .cgroups_off = true};
    jg_error_t err = {{0}};
    jg_backend_t *b = jg_backend_local_create(&cfg, &err);
    cr_assert(b, "create: %s", err.text);
    const char *n = b->ops->notes(b);
    cr_expect(n && strstr(n, "cgroups: unavailable (off by configuration "
                             "(backends.local.cgroups)); nodes are not limited"),
              "%s", n ? n : "(none)");
    b->ops->destroy(b);
}

static void teardown(void);

static const char *cgroup_base(void)
{
    static char base[512];
    const char *n = be->ops->notes(be);
    if (!n || sscanf(n, "cgroups: v2, a cgroup per node under %511s", base) != 1) {
        /* Criterion does not run the fini of a skipped test: clean up first
         * (teardown is idempotent). */
        char why[512];
        snprintf(why, sizeof why, "%s", n ? n : "(no notes)");
        teardown();
        cr_skip_test("no cgroups here: %s", why);
    }
    return base;
}

Test(local, a_node_runs_in_its_cgroup_with_its_cpus_and_memory)
{
    const char *base = cgroup_base();
    spec = spec_new("cg");
    jg_job_spec_t *j = spec_job(spec, "a", 1, NULL, "cat /proc/self/cgroup > cg; exec sleep 300");
    j->cpus = (jg_amount_t){.set = true, .value = 0.5};
    j->memory_gb = (jg_amount_t){.set = true, .value = 0.25};
    launch(75);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    cr_assert_eq(be->ops->release(be, 75, NULL), 0);
    pid_path = node_file(75, "a", 0, "work/cg");
    cr_assert(run_until(pid_file_exists, WAIT_MS));
    run_until(NULL, 100);
    char cg[1024], buf[256];
    snprintf(cg, sizeof cg, "%s/g75-a-0.1/cpu.max", base);
    cr_assert_gt(read_file(cg, buf, sizeof buf), 0, "%s", cg);
    cr_assert_str_eq(buf, "50000 100000\n");
    snprintf(cg, sizeof cg, "%s/g75-a-0.1/memory.max", base);
    cr_assert_gt(read_file(cg, buf, sizeof buf), 0, "%s", cg);
    cr_assert_str_eq(buf, "268435456\n");
    cr_assert_gt(read_file(node_file(75, "a", 0, "work/cg"), buf, sizeof buf), 0);
    cr_assert(strstr(buf, "/g75-a-0.1\n"), "%s", buf);
    jg_error_t err;
    cr_assert_eq(be->ops->cleanup(be, 75, &err), 0, "%s", err.text);
    finish_cleanups(be);
    snprintf(cg, sizeof cg, "%s/g75-a-0.1", base);
    struct stat st;
    cr_assert_neq(stat(cg, &st), 0, "cleanup removes the node's cgroup");
}

Test(local, a_node_killed_by_the_oom_killer_says_so)
{
    cgroup_base();
    spec = spec_new("oom");
    jg_job_spec_t *j = spec_job(spec, "a", 1, NULL,
                                "x=$(head -c 400000000 /dev/zero | tr '\\\\0' a); echo survived");
    j->memory_gb = (jg_amount_t){.set = true, .value = 0.0625};
    launch(76);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    cr_assert_eq(be->ops->release(be, 76, NULL), 0);
    cr_assert(wait_final(1));
    const rec_t *e = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(e && e->ev.exit_code != 0, "%s", dump());
    cr_assert(strstr(e->reason, "killed by the OOM killer (memory.max 0.0625GB)"), "%s", dump());
}

/* The cgroup plumbing, on a directory standing in for a delegated cgroup (the
 * knobs are plain files the test made): what the backend writes, where the
 * node's child puts itself, and how an OOM kill reads. */
Test(local, node_cgroup_knobs_and_an_oom_kill_on_a_stand_in_cgroup)
{
    char fake[256], node[300], path[400], buf[256];
    snprintf(fake, sizeof fake, "%s/cgroup", state_dir);
    cr_assert_eq(mkdir(fake, 0755), 0);
    snprintf(node, sizeof node, "%s/g77-a-0.1", fake);
    cr_assert_eq(mkdir(node, 0755), 0);
    const char *knobs[] = {"cpu.max", "memory.max", "memory.swap.max", "cgroup.procs",
                           "cgroup.kill", "memory.events"};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", node, knobs[i]);
        FILE *f = fopen(path, "w");
        cr_assert(f);
        if (strcmp(knobs[i], "memory.events") == 0)
            fputs("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", f);
        fclose(f);
    }
    be->ops->destroy(be);
    jg_local_config_t cfg = {.state_dir = state_dir, .shim_path = getenv("JGSCHED_SHIM"),
                             .loop = loop, .on_event = on_event, .cgroup_dir = fake};
    jg_error_t err;
    be = jg_backend_local_create(&cfg, &err);
    cr_assert(be, "%s", err.text);
    char want[400];
    snprintf(want, sizeof want, "cgroups: v2, a cgroup per node under %s (", fake);
    cr_assert(strstr(be->ops->notes(be), want), "%s", be->ops->notes(be));

    spec = spec_new("cg");
    jg_job_spec_t *j = spec_job(spec, "a", 1, NULL, "kill -9 $$");
    j->cpus = (jg_amount_t){.set = true, .value = 0.5};
    j->memory_gb = (jg_amount_t){.set = true, .value = 0.25};
    spec_job(spec, "b", 1, NULL, "true");       /* its cgroup cannot be made: no knobs */
    launch(77);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1), "%s", dump());
    const rec_t *f = must_find(JG_BACKEND_LAUNCH_FAILED, 1, 0);
    snprintf(want, sizeof want, "cannot open %s/g77-b-0.1/cgroup.procs", fake);
    cr_assert(f && strstr(f->reason, want), "a node that cannot join its cgroup fails:%s",
              dump());
    cr_assert_eq(be->ops->release(be, 77, NULL), 0);
    cr_assert(wait_final(2));
    const rec_t *e = find(JG_BACKEND_NODE_EXITED, 0, 0);
    cr_assert(e && e->ev.exit_code == 137, "%s", dump());
    cr_assert_str_eq(e->reason, "killed by the OOM killer (memory.max 0.25GB)", "%s", dump());
    const char *expect[][2] = {{"cpu.max", "50000 100000"}, {"memory.max", "268435456"},
                               {"memory.swap.max", "0"}, {"cgroup.procs", "0"}};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", node, expect[i][0]);
        cr_assert_geq(read_file(path, buf, sizeof buf), 0);
        cr_assert_str_eq(buf, expect[i][1], "%s", expect[i][0]);
    }
    static char kill_path[400];
    snprintf(kill_path, sizeof kill_path, "%s/cgroup.kill", node);
    pid_path = kill_path;
    cr_assert(run_until(pid_file_ready, WAIT_MS), "the ended node's cgroup is not killed");
    cr_assert_eq(read_pid(kill_path), 1);
}

/* ---- what a node's user can write --------------------------------------
 *
 * A node directory belongs to the node's user.  Whatever they put there (a
 * forged status line, a FIFO, a symbolic link) must not make the backend
 * signal another process, block, or touch a file outside the node. */

Test(proc, kill_refuses_the_targets_that_mean_everybody)
{
    pid_t bad[] = {0, 1, -1, (pid_t)-2147483647 - 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        cr_assert_eq(jg_proc_kill(bad[i], 0), -1, "target %d was accepted", (int)bad[i]);
        cr_assert_eq(errno, EINVAL);
    }
    cr_assert_eq(jg_proc_kill(getpid(), 0), 0, "a plain pid is signalled");
    if (getpgrp() > 1)
        cr_assert_eq(jg_proc_kill(-getpgrp(), 0), 0, "a process group is signalled");
}

/* A process of the test's own, leading its own process group (as a shim
 * does), which the backend has no reason to touch. */
static pid_t start_victim(void)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sleep", "sleep", "300", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    victims[n_victims++] = pid;
    unsigned long long start = 0;
    for (int i = 0; i < 500 && (jg_proc_starttime(pid, &start) < 0 || !start); i++)
        usleep(1000);
    return pid;
}

static void append_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

Test(local, a_forged_status_line_never_chooses_what_cleanup_kills)
{
    spec = spec_new("forge");
    char run[1024];
    snprintf(run, sizeof run, "echo $$ > %s/sh.pid; sleep 300; true", scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(91);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 91, NULL), 0);
    int sh = wait_pid_file(path_in(scratch, "sh.pid"));

    /* What the node's user writes: the latest `started` line names the victim. */
    pid_t victim = start_victim();
    unsigned long long start = 0;
    cr_assert_eq(jg_proc_starttime(victim, &start), 0);
    char line[128];
    snprintf(line, sizeof line, "1 started %d %llu\n1 started 1 0\n", (int)victim, start);
    append_text(node_file(91, "a", 0, "status"), line);
    snprintf(line, sizeof line, "1 started %d %llu\n", (int)victim, start);
    append_text(node_file(91, "a", 0, "status"), line);

    /* A restarted daemon follows nobody: cleanup goes by its own record. */
    be->ops->destroy(be);
    be = NULL;
    be2 = new_backend();
    jg_error_t err;
    cr_assert_eq(be2->ops->cleanup(be2, 91, &err), 0, "%s", err.text);
    cr_assert(wait_gone(sh), "the node's run survived cleanup");
    cr_assert(wait_gone(shims[0]), "the node's shim survived cleanup");
    cr_assert(proc_alive(victim), "cleanup killed the process a forged status line named");
}

Test(local, a_fifo_for_output_log_or_status_never_blocks_the_backend)
{
    spec = spec_new("fifo");
    spec_job(spec, "a", 1, NULL, "exit 3");
    launch(92);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    const char *log = node_file(92, "a", 0, "output.log");
    const char *status = node_file(92, "a", 0, "status");
    cr_assert_eq(unlink(log), 0);
    cr_assert_eq(mkfifo(log, 0644), 0);
    /* The stream's next tick meets the FIFO: refused, without blocking. */
    int64_t t0 = jg_now_mono_ms();
    run_until(NULL, 300);
    cr_assert_lt(jg_now_mono_ms() - t0, 1000);

    /* status, read again when the shim ends: refused, so the node is lost. */
    cr_assert_eq(rename(status, path_in(scratch, "status.old")), 0);
    cr_assert_eq(mkfifo(status, 0644), 0);
    cr_assert_eq(be->ops->release(be, 92, NULL), 0);
    cr_assert(wait_final(1), "the backend blocked on the FIFO:%s", dump());
    cr_assert(find(JG_BACKEND_NODE_LOST, 0, 0), "%s", dump());
}

Test(local, a_link_for_the_release_fifo_never_gets_the_byte)
{
    spec = spec_new("rel");
    spec_job(spec, "a", 1, NULL, "true");
    launch(93);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    char target[512];
    snprintf(target, sizeof target, "%s/precious", scratch);
    int fd = open(target, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "data\n", 5), 5);
    close(fd);
    const char *release = node_file(93, "a", 0, "release");
    cr_assert_eq(unlink(release), 0);
    cr_assert_eq(symlink(target, release), 0);
    jg_error_t err = {{0}};
    cr_assert_eq(be->ops->release(be, 93, &err), -1);
    char buf[64];
    cr_assert_eq(read_file(target, buf, sizeof buf), 5);
    cr_assert_str_eq(buf, "data\n", "release wrote through the link");
    cr_assert_eq(be->ops->stop(be, 93, -1, -1, 0, &err), 0);
    cr_assert(wait_final(1), "%s", dump());
}

Test(local, a_link_for_the_nodes_tmp_is_refused_and_its_target_untouched)
{
    need_isolation();
    spec = spec_new("tmpl");
    spec_job(spec, "a", 1, NULL, "exit 1");
    launch(94);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 94, NULL), 0);
    cr_assert(wait_final(1));

    /* Between attempts the user swaps their /tmp for a link to a directory of root's. */
    char target[512];
    snprintf(target, sizeof target, "%s/rootdir", scratch);
    cr_assert_eq(mkdir(target, 0755), 0);
    cr_assert_eq(chmod(target, 0755), 0);
    const char *tmp = node_file(94, "a", 0, "tmp");
    cr_assert_eq(rename(tmp, node_file(94, "a", 0, "tmp.old")), 0);
    cr_assert_eq(symlink(target, tmp), 0);
    launch_node(94, 0, 0, 2);
    cr_assert(wait_for(JG_BACKEND_LAUNCH_FAILED, 1), "%s", dump());
    cr_assert(strstr(must_find(JG_BACKEND_LAUNCH_FAILED, 0, 0)->reason, "it is not a directory"),
              "%s", dump());
    struct stat st;
    cr_assert_eq(stat(target, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0755, "the link's target became mode %o",
                 st.st_mode & 07777);
}

Test(local, a_forged_gpus_file_claims_no_gpu_on_reattach)
{
    fake_gpus("0, NVIDIA H200\n1, NVIDIA H200\n");
    spec = spec_new("gf");
    gpu_job(spec, "g", 1, "H200", 1, "exec sleep 300");
    launch(95);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    const rec_t *s = find_in(95, JG_BACKEND_NODE_STARTED);
    cr_assert(s);
    char text[1024];
    snprintf(text, sizeof text, "%s", s->handle);
    jg_node_handle_t h = {.job_index = 0, .rank = 0, .attempt = 1, .handle = text};

    /* The node's user claims both GPUs in their own gpus file. */
    const char *gpus = node_file(95, "g", 0, "gpus");
    cr_assert_eq(unlink(gpus), 0);
    int fd = open(gpus, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "1 0,1\n", 6), 6);
    close(fd);
    be->ops->destroy(be);
    be = NULL;
    be2 = new_backend();
    jg_error_t err;
    cr_assert_eq(be2->ops->reattach(be2, 95, &h, 1, &err), 0, "%s", err.text);
    spec2 = spec_new("other");
    gpu_job(spec2, "h", 1, "H200", 1, "true");
    launch_spec(be2, spec2, 96);
    wait_gid = 96;
    cr_assert(run_until(group_settled, WAIT_MS), "%s", dump());
    cr_assert(find_in(96, JG_BACKEND_SETUP_DONE), "the forged file took the free GPU:%s", dump());
}

Test(local, a_forged_exit_line_ends_nothing_while_the_node_runs)
{
    spec = spec_new("early");
    char run[1024];
    snprintf(run, sizeof run, "echo $$ > %s/sh.pid; exec sleep 300", scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(97);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 97, NULL), 0);
    int sh = wait_pid_file(path_in(scratch, "sh.pid"));

    /* The node's user claims it is over: its GPUs and capacity would go to
     * others while it still runs. */
    append_text(node_file(97, "a", 0, "status"), "1 exit run 0 0\n");
    run_until(NULL, 300);
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED), 0, "a forged line ended a running node:%s",
                 dump());
    cr_assert(proc_alive(sh));
    jg_error_t err;
    cr_assert_eq(be->ops->stop(be, 97, -1, -1, 0, &err), 0);
    cr_assert(wait_final(1), "%s", dump());
    cr_assert(wait_gone(sh));
}

/* ---- the new interface: output after a reattach, STOPPED, fit ------------- */

static bool first_line_of_120(void)
{
    return strcmp(node_output(120, 0, 0, 1), "first\n") == 0;
}

static bool second_line_seen(void)
{
    return strstr(node_output(120, 0, 0, 0), "second\n") != NULL;
}

Test(local, reattach_resumes_output_after_what_the_core_has)
{
    spec = spec_new("resume");
    char run[512];
    snprintf(run, sizeof run,
             "echo first; while [ ! -e %s/go ]; do sleep 0.05; done; echo second; sleep 300",
             scratch);
    spec_job(spec, "a", 1, NULL, run);
    launch(120);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 1));
    cr_assert_eq(be->ops->release(be, 120, NULL), 0);
    cr_assert(run_until(first_line_of_120, WAIT_MS), "got \"%s\"", node_output(120, 0, 0, 1));
    size_t n = collect_handles();
    cr_assert_eq(n, 1);
    be->ops->destroy(be);
    be = NULL;
    /* While nobody follows the node, it writes more. */
    close(creat(path_in(scratch, "go"), 0644));
    log_used = n_log_pieces = 0;
    be2 = new_backend();
    handles[0].log_bytes = (int64_t)strlen("first\n");
    handles[0].log_bytes_attempt = handles[0].log_bytes;
    jg_error_t err = {{0}};
    cr_assert_eq(be2->ops->reattach(be2, 120, handles, n, &err), 0, "%s", err.text);
    cr_assert(run_until(second_line_seen, WAIT_MS), "no output after the reattach");
    cr_assert_str_eq(node_output(120, 0, 0, 1), "second\n", "output repeated or lost");
    cr_assert_eq(be2->ops->cleanup(be2, 120, &err), 0, "%s", err.text);
}

static bool one_stopped(void)
{
    return n_stopped >= 1;
}

Test(local, stop_reports_stopped_after_the_ends_of_its_nodes)
{
    spec = spec_new("stopme");
    spec_job(spec, "a", 2, NULL, "sleep 300");
    launch(121);
    cr_assert(wait_for(JG_BACKEND_SETUP_DONE, 2));
    cr_assert_eq(be->ops->release(be, 121, NULL), 0);
    run_until(NULL, 100);
    jg_error_t err = {{0}};
    cr_assert_eq(be->ops->stop(be, 121, -1, -1, 2000, &err), 0, "%s", err.text);
    cr_assert_eq(n_stopped, 0, "STOPPED came from inside stop()");
    cr_assert(run_until(one_stopped, WAIT_MS), "no STOPPED:%s", dump());
    cr_assert_eq(count(JG_BACKEND_NODE_EXITED) + count(JG_BACKEND_NODE_LOST), 2,
                 "STOPPED came before its nodes' ends:%s", dump());
    /* A stop with nothing left to stop completes at once (from the loop). */
    n_stopped = 0;
    cr_assert_eq(be->ops->stop(be, 121, 0, 1, 2000, &err), 0, "%s", err.text);
    cr_assert(run_until(one_stopped, 1000), "no STOPPED for a stop of ended nodes");
}

Test(local, fit_places_the_host_as_one_node)
{
    jg_error_t err = {{0}};
    const char *shim = getenv("JGSCHED_SHIM");
    jg_capacity_t cap = {.cpus = 4, .memory_gb = 8, .max_node_cpus = 4, .max_node_memory_gb = 8};
    snprintf(cap.source, sizeof cap.source, "config");
    jg_local_config_t cfg = {.state_dir = state_dir, .shim_path = shim, .loop = loop,
                             .on_event = on_event, .capacity = &cap};
    be2 = jg_backend_local_create(&cfg, &err);
    cr_assert(be2, "%s", err.text);
    cr_assert_str_eq(be2->name, "local");
    cr_assert_str_eq(be2->ops->kind, "local");
    const jg_capacity_t *c = be2->ops->capacity(be2);
    cr_assert(c->reachable);
    cr_assert_eq(c->n_nodes, 1);
    cr_expect_eq(c->nodes[0].cpus, 4);

    spec = spec_new("fits");
    jg_job_spec_t *j = spec_job(spec, "a", 1, NULL, "true");
    j->cpus = (jg_amount_t){.set = true, .value = 3};
    char why[256] = "";
    jg_usage_t held = {0};
    cr_expect_eq(be2->ops->fit(be2, spec, &held, why, sizeof why), JG_FIT_NOW, "%s", why);
    held.cpus = 2;
    cr_expect_eq(be2->ops->fit(be2, spec, &held, why, sizeof why), JG_FIT_NOT_NOW);
    cr_expect(strstr(why, "waiting for resources"), "%s", why);
    j->cpus = (jg_amount_t){.set = true, .value = 5};
    cr_expect_eq(be2->ops->fit(be2, spec, &held, why, sizeof why), JG_FIT_NEVER);
    cr_expect(strstr(why, "largest node of infra local"), "%s", why);
    j->cpus = (jg_amount_t){.set = true, .value = 3};
    j->num_nodes = 2;
    held.cpus = 0;
    cr_expect_eq(be2->ops->fit(be2, spec, &held, why, sizeof why), JG_FIT_NEVER);
    cr_expect(strstr(why, "can never start"), "%s", why);
}
