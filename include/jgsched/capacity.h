/* capacity.h - resource arithmetic for gang admission.
 *
 * A backend says what it can hold (jg_capacity_t, backend.h); sched keeps what
 * running groups hold (jg_usage_t) and asks here whether a whole group fits
 * now, and whether one node of a job could ever fit.  One node asks its job's
 * cpus and memory (nothing for what it does not state) and accelerators.
 */
#ifndef JGSCHED_CAPACITY_H
#define JGSCHED_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>

#include "jgsched/backend.h"
#include "jgsched/spec.h"

/* Fills out with this host's CPUs (online) and memory (MemTotal), no
 * accelerators: the backend that hands GPUs out by index finds them (one
 * nvidia-smi call, one lookup) and adds them with jg_capacity_add_accel.  The
 * largest node is the host itself.  Caller clears out. */
void jg_capacity_detect_host(jg_capacity_t *out);

/* Adds count accelerators called name (to an entry of the same name, case-
 * insensitively, or a new one). */
void jg_capacity_add_accel(jg_capacity_t *cap, const char *name, int count);

void jg_capacity_clear(jg_capacity_t *cap);     /* frees accels and nodes; NULL ok */

/* The accelerator name jobs use for a GPU model nvidia-smi reports:
 * "NVIDIA A100-SXM4-80GB" -> "A100", "Tesla T4" -> "T4", "NVIDIA H200" -> "H200". */
void jg_capacity_gpu_name(const char *full, char *out, size_t len);
void jg_capacity_copy(jg_capacity_t *dst, const jg_capacity_t *src);

/* Count of accelerator `name` in cap (case-insensitive), 0 if none. */
int jg_capacity_accels(const jg_capacity_t *cap, const char *name);

/* Whether one node of job fits in the largest node of cap.  If not, why
 * ("job x asks cpus=1000 memory=10000GB; the largest node of infra local offers
 * cpus=2 memory=24GB").  infra names the backend in the message. */
bool jg_capacity_node_fits(const jg_capacity_t *cap, const char *infra,
                           const jg_job_spec_t *job, char *why, size_t len);

/* What running groups hold on one backend (jg_usage_t, declared in backend.h). */
struct jg_usage {
    double cpus;
    double memory_gb;
    jg_accel_t *accels;
    size_t n_accels;
};

void jg_usage_clear(jg_usage_t *u);
/* Adds (sign +1) or removes (sign -1) every node of the group. */
void jg_usage_add_group(jg_usage_t *u, const jg_group_spec_t *spec, int sign);
/* Whether every node of the group fits in cap on top of u; if not, what is short
 * ("needs 26 cpus, 2 of 64 free"). */
bool jg_usage_group_fits(const jg_usage_t *u, const jg_capacity_t *cap,
                         const jg_group_spec_t *spec, char *why, size_t len);

/* The resources of one node of job (0 for what it does not state). */
double jg_node_cpus(const jg_job_spec_t *job);
double jg_node_memory_gb(const jg_job_spec_t *job);

#endif
