/* nodeenv.h - the environment every node sees (DESIGN section 4), the same
 * for every backend (src/nodeenv.c). */
#ifndef JGSCHED_NODEENV_H
#define JGSCHED_NODEENV_H

#include <stdint.h>

#include "jgsched/spec.h"

/* The environment of one node as a NULL-terminated array of "KEY=value"
 * strings, user `envs` last so they can refer to nothing of ours but override
 * nothing either (ours win on conflict).  job_ips: the job's node addresses in
 * rank order (n = num_nodes).  Caller frees with jg_env_free. */
char **jg_node_env(const jg_group_spec_t *spec, int64_t group_id, int job_index, int rank,
                   int attempt, int64_t submitted_us, const char *const *job_ips);
void jg_env_free(char **env);

#endif
