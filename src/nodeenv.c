/* nodeenv.c - the environment every node sees (DESIGN section 4).
 *
 * One function builds it for every backend, so a YAML written for SkyPilot runs
 * unchanged whether its nodes are local process trees or pods.  The result has
 * three layers, in this order:
 *
 *   1. ours: SKYPILOT_* and JGSCHED_* (these win: a user `envs` entry with one
 *      of these names is dropped, since a node that lies about its rank or
 *      its peers breaks the group);
 *   2. process defaults: PATH, SHELL, LANG and PYTHONUNBUFFERED=1 (a job's
 *      `envs` may override them, e.g. to put a virtualenv first in PATH).
 *      PYTHONUNBUFFERED because a node's stdout is a file, not a terminal:
 *      Python would hold its prints in a block buffer until it exits, and
 *      `jgsched logs -f` would show nothing of a long training run;
 *   3. the job's `envs`, in file order.
 *
 * Account variables (HOME, USER, LOGNAME) depend on who runs the node, which
 * only the backend knows; it appends them unless `envs` set them.
 *
 * SKYPILOT_TASK_ID follows SkyPilot's form `jgsched-<submit time>_<group>_<job>_
 * <group id>-<job index>`; the submit time is written in UTC (so a daemon
 * restarted under another TZ forms the same id) as YYYY-MM-DD-HH-MM-SS-ffffff.
 * SkyPilot gives a recovered job a new task id; so do we, by appending
 * `-<attempt>` from the second attempt on.
 */
#include "jgsched/nodeenv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct {
    char **v;
    size_t n, cap;
} envv_t;

static void env_push(envv_t *e, char *kv)
{
    if (e->n + 2 > e->cap) {
        e->cap = e->cap ? e->cap * 2 : 32;
        e->v = jg_xrealloc(e->v, e->cap * sizeof *e->v);
    }
    e->v[e->n++] = kv;
    e->v[e->n] = NULL;
}

/* True when env already has KEY (the part of an entry before '='). */
static bool env_has(const envv_t *e, const char *key, size_t keylen)
{
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->v[i], key, keylen) == 0 && e->v[i][keylen] == '=')
            return true;
    return false;
}

static bool user_sets(const jg_job_spec_t *job, const char *key)
{
    for (size_t i = 0; i < job->n_envs; i++)
        if (job->envs[i].key && strcmp(job->envs[i].key, key) == 0)
            return true;
    return false;
}

static char *task_timestamp(int64_t submitted_us)
{
    time_t secs = (time_t)(submitted_us / 1000000);
    long usec = (long)(submitted_us % 1000000);
    if (usec < 0) {
        usec += 1000000;
        secs -= 1;
    }
    struct tm tm;
    char buf[64];
    if (!gmtime_r(&secs, &tm) || strftime(buf, sizeof buf, "%Y-%m-%d-%H-%M-%S", &tm) == 0)
        snprintf(buf, sizeof buf, "0000-00-00-00-00-00");
    return jg_xasprintf("%s-%06ld", buf, usec);
}

char **jg_node_env(const jg_group_spec_t *spec, int64_t group_id, int job_index, int rank,
                   int attempt, int64_t submitted_us, const char *const *job_ips)
{
    const jg_job_spec_t *job = &spec->jobs[job_index];
    envv_t e = {0};

    /* Layer 1: ours. */
    env_push(&e, jg_xasprintf("SKYPILOT_JOBGROUP_NAME=%s", spec->name));
    env_push(&e, jg_xasprintf("SKYPILOT_NODE_RANK=%d", rank));
    env_push(&e, jg_xasprintf("SKYPILOT_NUM_NODES=%d", job->num_nodes));

    size_t len = strlen("SKYPILOT_NODE_IPS=") + 1;
    for (int i = 0; i < job->num_nodes; i++)
        len += (job_ips && job_ips[i] ? strlen(job_ips[i]) : 0) + 1;
    char *ips = jg_xmalloc(len);
    char *p = ips + sprintf(ips, "SKYPILOT_NODE_IPS=");
    for (int i = 0; i < job->num_nodes; i++)
        p += sprintf(p, "%s%s", i ? "\n" : "", job_ips && job_ips[i] ? job_ips[i] : "");
    env_push(&e, ips);

    char *ts = task_timestamp(submitted_us);
    char attempt_suffix[24] = "";
    if (attempt > 1)
        snprintf(attempt_suffix, sizeof attempt_suffix, "-%d", attempt);
    env_push(&e, jg_xasprintf("SKYPILOT_TASK_ID=jgsched-%s_%s_%s_%" PRId64 "-%d%s", ts,
                              spec->name, job->name, group_id, job_index, attempt_suffix));
    free(ts);
    env_push(&e, jg_xasprintf("SKYPILOT_NUM_GPUS_PER_NODE=%d",
                              job->accel.name ? job->accel.count : 0));
    env_push(&e, jg_xasprintf("JGSCHED_GROUP_ID=%" PRId64, group_id));
    env_push(&e, jg_xasprintf("JGSCHED_JOB=%s", job->name));
    env_push(&e, jg_xasprintf("JGSCHED_ATTEMPT=%d", attempt));

    len = strlen("JGSCHED_GROUP_HOSTS=") + 1;
    for (size_t j = 0; j < spec->n_jobs; j++)
        len += (size_t)spec->jobs[j].num_nodes *
               (strlen(spec->jobs[j].name) + strlen(spec->name) + 16);
    char *hosts = jg_xmalloc(len);
    p = hosts + sprintf(hosts, "JGSCHED_GROUP_HOSTS=");
    bool first = true;
    for (size_t j = 0; j < spec->n_jobs; j++) {
        for (int r = 0; r < spec->jobs[j].num_nodes; r++) {
            p += sprintf(p, "%s%s-%d.%s", first ? "" : "\n", spec->jobs[j].name, r, spec->name);
            first = false;
        }
    }
    env_push(&e, hosts);
    size_t n_ours = e.n;

    /* Layer 2: process defaults the job may override. */
    if (!user_sets(job, "PATH"))
        env_push(&e, jg_xstrdup("PATH=" DEFAULT_PATH));
    if (!user_sets(job, "SHELL"))
        env_push(&e, jg_xstrdup("SHELL=/bin/bash"));
    if (!user_sets(job, "LANG"))
        env_push(&e, jg_xstrdup("LANG=C.UTF-8"));
    if (!user_sets(job, "PYTHONUNBUFFERED"))
        env_push(&e, jg_xstrdup("PYTHONUNBUFFERED=1"));

    /* Layer 3: the job's envs; a later duplicate replaces an earlier one. */
    for (size_t i = 0; i < job->n_envs; i++) {
        const char *k = job->envs[i].key;
        if (!k || !*k || strchr(k, '='))
            continue;
        size_t klen = strlen(k);
        envv_t ours = {.v = e.v, .n = n_ours};
        if (env_has(&ours, k, klen))
            continue;
        for (size_t x = n_ours; x < e.n; x++) {
            if (strncmp(e.v[x], k, klen) == 0 && e.v[x][klen] == '=') {
                free(e.v[x]);
                memmove(&e.v[x], &e.v[x + 1], (e.n - x) * sizeof *e.v);
                e.n--;
                break;
            }
        }
        env_push(&e, jg_xasprintf("%s=%s", k, job->envs[i].value ? job->envs[i].value : ""));
    }
    return e.v;
}

void jg_env_free(char **env)
{
    if (!env)
        return;
    for (char **p = env; *p; p++)
        free(*p);
    free(env);
}
