/* deleter.c - jgsched-deleter, the emptier of a trash directory (fsutil.h).
 *
 * Usage: jgsched-deleter DIR, with the trash directory DIR open as
 * descriptor 3 (the daemon checked it is its own, mode 0700).
 *
 * The daemon starts it with posix_spawn (src/trash.c) and reaps it by its
 * pidfd: it empties the trash at a low priority with jg_trash_empty (which,
 * as root, empties a user's directories in children that became the user)
 * and ends.  DIR only names the trash in what it logs on stderr (the
 * daemon's log).  Its own program, so that the daemon never copies itself.
 */
#include "jgsched/fsutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>

#define TRASH_FD 3

int main(int argc, char **argv)
{
    if (argc != 2 || fcntl(TRASH_FD, F_GETFD) < 0) {
        fprintf(stderr, "usage: jgsched-deleter DIR, with DIR open as descriptor %d (it is "
                        "started by jgschedd only)\n", TRASH_FD);
        return 2;
    }
    (void)setpriority(PRIO_PROCESS, 0, 10);
    jg_trash_empty(TRASH_FD, argv[1]);
    return 0;
}
