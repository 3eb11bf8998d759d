/* state.h - the states of groups, jobs and nodes (DESIGN section 5).
 *
 * One enum for all three levels, named as SkyPilot's managed-job statuses so its
 * users recognise them.  READY exists only for nodes: setup finished, waiting at
 * the barrier.
 */
#ifndef JGSCHED_STATE_H
#define JGSCHED_STATE_H

#include <stdbool.h>

typedef enum {
    JG_PENDING = 0,
    JG_STARTING,            /* launched, setup running */
    JG_READY,               /* node only: setup done, waiting at the barrier */
    JG_RUNNING,
    JG_RECOVERING,
    JG_CANCELLING,
    JG_SUCCEEDED,
    JG_FAILED,
    JG_CANCELLED,
    JG_FAILED_SETUP,
    JG_FAILED_NO_RESOURCE,
    JG_FAILED_PRECHECKS,
    JG_STATE_COUNT
} jg_state_t;

/* "PENDING", "RUNNING", ...: a static string, never NULL ("UNKNOWN" if out of range). */
const char *jg_state_name(jg_state_t s);

/* Parses a name as printed by jg_state_name; returns -1 if unknown. */
int jg_state_parse(const char *name, jg_state_t *out);

/* SUCCEEDED, FAILED, CANCELLED and the FAILED_* states: nothing changes after them. */
bool jg_state_is_terminal(jg_state_t s);

/* A terminal state that counts as a failure (FAILED and FAILED_*). */
bool jg_state_is_failure(jg_state_t s);

#endif
