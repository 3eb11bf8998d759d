/* shim_node.h - how the local backend starts a node: `jgsched-shim --node`.
 *
 * The daemon does not fork itself for a node (copying a large process costs
 * its loop time that grows with its memory): it posix_spawns the shim binary
 * (a vfork-like start, then exec) in --node mode, which, still as the daemon's
 * user, becomes the node (session, cgroup, namespaces, the checked /tmp, the
 * user's credentials, no new privileges) and then execs the shim proper.  Its
 * arguments come from the daemon alone (never a file a user can write), its
 * environment is empty, its descriptors are the daemon's, inherited by
 * number:
 *
 *   jgsched-shim --node err=FD shim=FD [hub=FD] [cg=FD cgpath=PATH] [tmpfd=FD]
 *       mode=N mounts=0|1 index=N host=NAME [hosts=PATH] [resolv=PATH] route=0|1
 *       [tmp=PATH] [keep=PATH] uid=N gid=N [user=UID:GID:G1,G2,...]
 *       [src=PATH dst=PATH]... -- SHIM ARGV...
 *
 *   err     the write end of the daemon's error pipe: why the node could not
 *           start, one message, before exit 126 (close-on-exec: it ends when
 *           the shim is executed)
 *   shim    the shim binary, opened by the daemon (O_PATH), executed through
 *           the descriptor with the ARGV after "--"
 *   hub     the group keeper's pidfd (isolated nodes)
 *   cg      the node's cgroup.procs, opened for writing; cgpath names it in
 *           messages
 *   tmpfd   the node's /tmp as the daemon opened it; after the mounts, /tmp
 *           must be that very directory
 *   user    switch to this uid, gid and supplementary groups (a daemon
 *           running as root for another user)
 *   the rest: the fields of jg_netns_node_t (netns.h), src/dst one volume each
 */
#ifndef JGSCHED_SHIM_NODE_H
#define JGSCHED_SHIM_NODE_H

#define JG_SHIM_NODE_ARG "--node"
#define JG_SHIM_NODE_MAX_GROUPS 256     /* supplementary groups carried to a node */
#define JG_SHIM_NODE_EXIT 126           /* the node could not be started (see err) */

/* jgsched-shim --node: becomes the node and execs the shim; returns only on
 * a usage error (exit status 2). */
int jg_shim_node_main(int argc, char **argv);

#endif
