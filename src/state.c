/* state.c - names of the lifecycle states; the transitions themselves live in sched. */
#include "jgsched/state.h"

#include <string.h>

static const char *const names[JG_STATE_COUNT] = {
    [JG_PENDING] = "PENDING",
    [JG_STARTING] = "STARTING",
    [JG_READY] = "READY",
    [JG_RUNNING] = "RUNNING",
    [JG_RECOVERING] = "RECOVERING",
    [JG_CANCELLING] = "CANCELLING",
    [JG_SUCCEEDED] = "SUCCEEDED",
    [JG_FAILED] = "FAILED",
    [JG_CANCELLED] = "CANCELLED",
    [JG_FAILED_SETUP] = "FAILED_SETUP",
    [JG_FAILED_NO_RESOURCE] = "FAILED_NO_RESOURCE",
    [JG_FAILED_PRECHECKS] = "FAILED_PRECHECKS",
};

const char *jg_state_name(jg_state_t s)
{
    return (unsigned)s < JG_STATE_COUNT ? names[s] : "UNKNOWN";
}

int jg_state_parse(const char *name, jg_state_t *out)
{
    for (int i = 0; i < JG_STATE_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *out = (jg_state_t)i;
            return 0;
        }
    }
    return -1;
}

bool jg_state_is_terminal(jg_state_t s)
{
    return s >= JG_SUCCEEDED && s < JG_STATE_COUNT;
}

bool jg_state_is_failure(jg_state_t s)
{
    return s == JG_FAILED || s == JG_FAILED_SETUP || s == JG_FAILED_NO_RESOURCE ||
           s == JG_FAILED_PRECHECKS;
}
