/* proc.h - naming a process so that a recycled pid is never mistaken for it.
 *
 * A pid alone is not an identity: after a daemon restart the pid recorded for a
 * node may belong to something else.  pid + start time (field 22 of
 * /proc/<pid>/stat, in clock ticks since boot) is.
 */
#ifndef JGSCHED_PROC_H
#define JGSCHED_PROC_H

#include <sys/types.h>

/* The start time of pid; -1 if there is no such process. */
int jg_proc_starttime(pid_t pid, unsigned long long *out);

#endif
