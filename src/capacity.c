/* capacity.c - what a group needs against what a backend holds.
 *
 * Admission is gang admission: a group starts only when every node of every
 * job fits at once, so the checks below always take a whole group.  A node is
 * charged what its job states: cpus, memory, accelerators.  A job that states
 * no cpus or memory is not charged for them (it asked for nothing, and a small
 * test group on a laptop should not wait for cores it never named).
 */
#include "jgsched/capacity.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

double jg_node_cpus(const jg_job_spec_t *job)
{
    return job->cpus.set ? job->cpus.value : 0.0;
}

double jg_node_memory_gb(const jg_job_spec_t *job)
{
    return job->memory_gb.set ? job->memory_gb.value : 0.0;
}

void jg_capacity_clear(jg_capacity_t *cap)
{
    if (!cap)
        return;
    for (size_t i = 0; i < cap->n_accels; i++)
        free(cap->accels[i].name);
    free(cap->accels);
    cap->accels = NULL;
    cap->n_accels = 0;
    for (size_t i = 0; i < cap->n_nodes; i++) {
        free(cap->nodes[i].name);
        for (size_t k = 0; k < cap->nodes[i].n_accels; k++)
            free(cap->nodes[i].accels[k].name);
        free(cap->nodes[i].accels);
    }
    free(cap->nodes);
    cap->nodes = NULL;
    cap->n_nodes = 0;
}

/* Accelerator counts saturate at the ends of int: a job may ask INT_MAX nodes
 * of 8 GPUs each, and the total is only ever compared with a capacity, which
 * is an int too.  A group whose need saturates never fits, so it is never
 * added to the usage of running groups, whose sums stay exact. */
static int saturate(long long v)
{
    return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

static void add_accel(jg_accel_t **list, size_t *n, const char *name, long long count)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcasecmp((*list)[i].name, name) == 0) {
            (*list)[i].count = saturate((*list)[i].count + count);
            return;
        }
    }
    *list = jg_xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = (jg_accel_t){.name = jg_xstrdup(name), .count = saturate(count)};
}

void jg_capacity_copy(jg_capacity_t *dst, const jg_capacity_t *src)
{
    *dst = *src;
    dst->accels = NULL;
    dst->n_accels = 0;
    for (size_t i = 0; i < src->n_accels; i++)
        add_accel(&dst->accels, &dst->n_accels, src->accels[i].name, src->accels[i].count);
    dst->nodes = src->n_nodes ? jg_xcalloc(src->n_nodes, sizeof *dst->nodes) : NULL;
    dst->n_nodes = src->n_nodes;
    for (size_t i = 0; i < src->n_nodes; i++) {
        const jg_capacity_node_t *sn = &src->nodes[i];
        jg_capacity_node_t *dn = &dst->nodes[i];
        *dn = (jg_capacity_node_t){.name = sn->name ? jg_xstrdup(sn->name) : NULL,
                                   .cpus = sn->cpus, .memory_gb = sn->memory_gb};
        for (size_t k = 0; k < sn->n_accels; k++)
            add_accel(&dn->accels, &dn->n_accels, sn->accels[k].name, sn->accels[k].count);
    }
}

int jg_capacity_accels(const jg_capacity_t *cap, const char *name)
{
    for (size_t i = 0; i < cap->n_accels; i++)
        if (strcasecmp(cap->accels[i].name, name) == 0)
            return cap->accels[i].count;
    return 0;
}

void jg_capacity_gpu_name(const char *full, char *out, size_t len)
{
    const char *p = full;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "NVIDIA ", 7) == 0)
            p += 7;
        else if (strncasecmp(p, "Tesla ", 6) == 0)
            p += 6;
        else if (strncasecmp(p, "GeForce ", 8) == 0)
            p += 8;
        else
            break;
    }
    size_t n = strcspn(p, "- \t\r\n");
    if (n >= len)
        n = len - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

void jg_capacity_add_accel(jg_capacity_t *cap, const char *name, int count)
{
    add_accel(&cap->accels, &cap->n_accels, name, count);
}

void jg_capacity_detect_host(jg_capacity_t *out)
{
    memset(out, 0, sizeof *out);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    out->cpus = n > 0 ? (double)n : 1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned long long kb;
            if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
                out->memory_gb = (double)kb / (1024.0 * 1024.0);
                break;
            }
        }
        fclose(f);
    }
    out->max_node_cpus = out->cpus;
    out->max_node_memory_gb = out->memory_gb;
    snprintf(out->source, sizeof out->source, "host");
}

static void fmt_num(char *buf, size_t len, double v)
{
    /* Range first: converting a double long long cannot hold (a user's
     * `cpus: 1e30` written out in digits) is undefined behaviour. */
    if (!(fabs(v) < 1e15))
        snprintf(buf, len, "%g", v);
    else if (v == (double)(long long)v)
        snprintf(buf, len, "%lld", (long long)v);
    else
        snprintf(buf, len, "%.2f", v);
}

bool jg_capacity_node_fits(const jg_capacity_t *cap, const char *infra,
                           const jg_job_spec_t *job, char *why, size_t len)
{
    double cpus = jg_node_cpus(job), mem = jg_node_memory_gb(job);
    bool ok = cpus <= cap->max_node_cpus && mem <= cap->max_node_memory_gb;
    int have = 0;
    if (job->accel.name) {
        have = jg_capacity_accels(cap, job->accel.name);
        ok = ok && job->accel.count <= have;
    }
    if (ok)
        return true;
    char c[32], m[32], oc[32], om[32];
    fmt_num(c, sizeof c, cpus);
    fmt_num(m, sizeof m, mem);
    fmt_num(oc, sizeof oc, cap->max_node_cpus);
    fmt_num(om, sizeof om, cap->max_node_memory_gb);
    char accel_ask[96] = "", accel_have[256] = "";
    if (job->accel.name) {
        snprintf(accel_ask, sizeof accel_ask, " accelerators=%s:%d", job->accel.name,
                 job->accel.count);
        size_t used = 0;
        for (size_t i = 0; i < cap->n_accels && used < sizeof accel_have; i++)
            used += (size_t)snprintf(accel_have + used, sizeof accel_have - used, "%s%s:%d",
                                     i ? "," : " accelerators=", cap->accels[i].name,
                                     cap->accels[i].count);
        if (!cap->n_accels)
            snprintf(accel_have, sizeof accel_have, " no accelerators");
    }
    snprintf(why, len,
             "job %s asks cpus=%s memory=%sGB%s per node; the largest node of infra %s "
             "offers cpus=%s memory=%sGB%s",
             job->name, c, m, accel_ask, infra, oc, om, accel_have);
    return false;
}

void jg_usage_clear(jg_usage_t *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n_accels; i++)
        free(u->accels[i].name);
    free(u->accels);
    memset(u, 0, sizeof *u);
}

void jg_usage_add_group(jg_usage_t *u, const jg_group_spec_t *spec, int sign)
{
    for (size_t i = 0; i < spec->n_jobs; i++) {
        const jg_job_spec_t *j = &spec->jobs[i];
        u->cpus += sign * j->num_nodes * jg_node_cpus(j);
        u->memory_gb += sign * j->num_nodes * jg_node_memory_gb(j);
        if (j->accel.name)
            add_accel(&u->accels, &u->n_accels, j->accel.name,
                      (long long)sign * j->num_nodes * j->accel.count);
    }
    /* Floating-point dust from repeated add/remove must not block admission. */
    if (u->cpus < 1e-9)
        u->cpus = 0;
    if (u->memory_gb < 1e-9)
        u->memory_gb = 0;
}

bool jg_usage_group_fits(const jg_usage_t *u, const jg_capacity_t *cap,
                         const jg_group_spec_t *spec, char *why, size_t len)
{
    jg_usage_t need = {0};
    jg_usage_add_group(&need, spec, 1);
    bool ok = true;
    char a[32], b[32];
    if (u->cpus + need.cpus > cap->cpus + 1e-9) {
        fmt_num(a, sizeof a, need.cpus);
        fmt_num(b, sizeof b, cap->cpus - u->cpus < 0 ? 0 : cap->cpus - u->cpus);
        snprintf(why, len, "waiting for resources: needs %s cpus, %s of %g free", a, b, cap->cpus);
        ok = false;
    } else if (u->memory_gb + need.memory_gb > cap->memory_gb + 1e-9) {
        fmt_num(a, sizeof a, need.memory_gb);
        fmt_num(b, sizeof b, cap->memory_gb - u->memory_gb < 0 ? 0 : cap->memory_gb - u->memory_gb);
        snprintf(why, len, "waiting for resources: needs %sGB memory, %sGB free", a, b);
        ok = false;
    } else {
        for (size_t i = 0; i < need.n_accels; i++) {
            int used = 0;
            for (size_t k = 0; k < u->n_accels; k++)
                if (strcasecmp(u->accels[k].name, need.accels[i].name) == 0)
                    used = u->accels[k].count;
            int total = jg_capacity_accels(cap, need.accels[i].name);
            if ((long long)used + need.accels[i].count > total) {
                snprintf(why, len, "waiting for resources: needs %d %s, %d of %d free",
                         need.accels[i].count, need.accels[i].name, total - used, total);
                ok = false;
                break;
            }
        }
    }
    jg_usage_clear(&need);
    return ok;
}
