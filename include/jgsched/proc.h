/* proc.h - naming a process so that a recycled pid is never mistaken for it,
 * and signalling only processes the caller means.
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

/* kill(2) for one process (target > 1) or one process group (target < -1,
 * the group -target).  Every signal the daemon sends to a pid goes through
 * here, because a root daemon handed 0, 1 or -1 (from a bad record) would
 * signal its own group, init, or every process on the host: those, and any
 * target whose group would be 0 or 1, are refused with -1 and EINVAL. */
int jg_proc_kill(pid_t target, int sig);

#endif
