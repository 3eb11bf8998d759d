/* keeper.c - jgsched-keeper, the keeper of one group's network (netns.h).
 *
 * Usage: jgsched-keeper root|userns NETWORK|- [--hold LABEL]
 *
 * The daemon starts it with posix_spawn (jg_netns_hub_start), in a session
 * of its own, with the write end of a pipe as descriptor 3.  It builds the
 * hub in new namespaces of its own (mode userns: a user namespace first;
 * NETWORK a.b.c.d/p: an uplink from that network, with NAT), then closes
 * descriptor 3, which tells the daemon the hub is up, and lives, doing
 * nothing, until it is killed: the namespaces live as long as it does.  A
 * set-up that fails says why in one write on descriptor 3 (at most
 * JG_NETNS_KEEPER_MSG bytes, atomic on a pipe) and exits 1.
 *
 * `--hold LABEL` only labels the process (the group's directory), so that
 * an operator, and the tests, can tell whose hub it keeps.
 *
 * Its own program, not a fork of the daemon: copying the daemon for every
 * group cost it page tables and copy-on-write faults that grow with its size.
 */
#include "jgsched/netns.h"
#include "netns_int.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define READY_FD 3

int main(int argc, char **argv)
{
    char msg[JG_NETNS_KEEPER_MSG] = "";
    if (argc != 3 && !(argc == 5 && strcmp(argv[3], "--hold") == 0)) {
        fprintf(stderr, "usage: jgsched-keeper root|userns NETWORK|- [--hold LABEL] (it is "
                        "started by jgschedd only)\n");
        return 2;
    }
    jg_netns_mode_t mode;
    if (strcmp(argv[1], "root") == 0)
        mode = JG_NETNS_ROOT;
    else if (strcmp(argv[1], "userns") == 0)
        mode = JG_NETNS_USERNS;
    else {
        fprintf(stderr, "jgsched-keeper: unknown mode %s\n", argv[1]);
        return 2;
    }
    jg_netns_uplink_t uplink, *up = NULL;
    if (strcmp(argv[2], "-") != 0) {
        if (jg_netns_uplink_parse(argv[2], &uplink, msg, sizeof msg) < 0)
            goto fail;
        up = &uplink;
    }
    if (fcntl(READY_FD, F_GETFD) < 0) {
        fprintf(stderr, "jgsched-keeper: no ready pipe on descriptor %d\n", READY_FD);
        return 2;
    }
    if (jg_netns_hub_setup(mode, up, msg, sizeof msg) < 0)
        goto fail;
    close(READY_FD);                /* the hub is up */
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    for (;;)
        pause();
fail:
    if (msg[0] == '\0')
        snprintf(msg, sizeof msg, "the set-up failed");
    (void)!write(READY_FD, msg, strlen(msg));
    return 1;
}
