/* proc.c - process identity from /proc, and the one kill() the daemon uses
 * (see include/jgsched/proc.h). */
#include "jgsched/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int jg_proc_starttime(pid_t pid, unsigned long long *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* The command name may hold spaces and ')': fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    *out = strtoull(p + 1, NULL, 10);
    return 0;
}

int jg_proc_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0u);
}

int jg_proc_kill(pid_t target, int sig)
{
    /* -target overflows for INT_MIN; every other negative is a group. */
    if ((target >= -1 && target <= 1) || target == (pid_t)-2147483647 - 1) {
        errno = EINVAL;
        return -1;
    }
    return kill(target, sig);
}
