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

/* A pidfd for pid (close-on-exec, as pidfd_open(2) always makes it); -1 with
 * errno if the process is gone or the kernel has no pidfds.  Caller closes. */
int jg_proc_pidfd_open(pid_t pid);

#endif
